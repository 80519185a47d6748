package store

import (
	"container/heap"
	"context"
	"errors"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxEntries bounds a Memory store whose MaxEntries is zero. A
// hundred thousand entries hold one edge's reservations for a 10-minute
// window at about 160 protected requests a second, or the live limits of
// a hundred thousand callers, in about 30 MB (about 450 MB if every value
// were a 4 KiB answer); larger fleets share a Redis store.
const DefaultMaxEntries = 100_000

// MemoryOptions configures a Memory store.
type MemoryOptions struct {
	// MaxEntries bounds how many live entries (reservations and limits
	// together) the store holds. Default: DefaultMaxEntries.
	MaxEntries int

	// Now is the store's clock. Default: time.Now.
	Now func() time.Time
}

// Memory is a Store in this process's memory: per edge, gone on restart.
//
// It holds at most MaxEntries live entries, and never drops one before it
// expires: a reservation dropped early would no longer keep its request
// from a second delivery, and a limit dropped early would start again
// with its whole budget. When it is full, a write that needs a new entry
// fails with ErrFull until entries expire or are released, as Redis with
// maxmemory-policy noeviction refuses writes.
//
// Entries are spread over shards by a hash of the key, each with its own
// lock; the bound is the store's as a whole. The store keeps the key and
// value strings it is given, not copies: a substring of a large buffer
// keeps the whole buffer alive.
type Memory struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [memoryShards]memoryShard
	// entries counts the entries of all shards, expired ones not yet
	// dropped included; maxEntries bounds it.
	entries    atomic.Int64
	maxEntries atomic.Int64
	closed     atomic.Bool
}

var _ Store = (*Memory)(nil)

// memoryShards is how many locks a Memory store's entries are spread
// over: enough that the handlers of a busy edge seldom wait for one.
const memoryShards = 64

// memoryShard is one lock's share of a Memory store.
type memoryShard struct {
	mu     sync.Mutex
	items  map[memoryKey]*memoryItem
	expiry expiryHeap
	// entries is the store's count of entries (Memory.entries), which
	// the shard's removals keep.
	entries *atomic.Int64
	_       [64]byte // keeps shards' locks off one another's cache lines
}

// memoryKey keeps limits apart from reservations of the same key, as Redis
// does with its own key prefix for limits.
type memoryKey struct {
	key   string
	limit bool
}

type memoryItem struct {
	key     memoryKey
	value   string
	limiter *rate.Limiter // for a limit
	expires time.Time
	index   int // in the shard's expiry heap
}

// NewMemory returns an empty Memory store.
func NewMemory(opts MemoryOptions) (*Memory, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	m := &Memory{now: now, seed: maphash.MakeSeed()}
	if err := m.SetMaxEntries(opts.MaxEntries); err != nil {
		return nil, err
	}
	for i := range m.shards {
		m.shards[i].items = make(map[memoryKey]*memoryItem)
		m.shards[i].entries = &m.entries
	}
	return m, nil
}

// SetMaxEntries changes the store's bound (0: DefaultMaxEntries). A store
// that holds more live entries than its new bound keeps them: writes that
// need a new entry fail until enough have expired or been released.
func (m *Memory) SetMaxEntries(n int) error {
	switch {
	case n < 0:
		return errors.New("store: max entries must not be negative")
	case n == 0:
		n = DefaultMaxEntries
	}
	m.maxEntries.Store(int64(n))
	return nil
}

// MaxEntries reports the store's bound.
func (m *Memory) MaxEntries() int { return int(m.maxEntries.Load()) }

// Len reports how many entries the store holds, expired ones not yet
// dropped included.
func (m *Memory) Len() int { return int(m.entries.Load()) }

// Reserve implements Store. It does not block, and ignores ctx.
func (m *Memory) Reserve(_ context.Context, key, value string, ttl time.Duration) (bool, string, error) {
	if err := validateTTL(ttl); err != nil {
		return false, "", invalid("reserve", err)
	}
	if m.closed.Load() {
		return false, "", closedError("reserve")
	}
	now := m.now()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	k := memoryKey{key: key}
	for {
		if it := s.lookup(k, now); it != nil {
			return false, it.value, nil
		}
		if s.insert(&memoryItem{key: k, value: value, expires: now.Add(ttl.Truncate(time.Millisecond))}, now, m.maxEntries.Load()) {
			return true, "", nil
		}
		if !m.makeRoom(s, now) {
			return false, "", fullError("reserve")
		}
	}
}

// Replace implements Store. It does not block, and ignores ctx.
func (m *Memory) Replace(_ context.Context, key, expect, value string, ttl time.Duration) (bool, error) {
	if err := validateTTL(ttl); err != nil {
		return false, invalid("replace", err)
	}
	if m.closed.Load() {
		return false, closedError("replace")
	}
	now := m.now()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.lookup(memoryKey{key: key}, now)
	if it == nil || it.value != expect {
		return false, nil
	}
	it.value = value
	it.expires = now.Add(ttl.Truncate(time.Millisecond))
	heap.Fix(&s.expiry, it.index)
	return true, nil
}

// Release implements Store. It does not block, and ignores ctx.
func (m *Memory) Release(_ context.Context, key, expect string) (bool, error) {
	if m.closed.Load() {
		return false, closedError("release")
	}
	now := m.now()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.lookup(memoryKey{key: key}, now)
	if it == nil || it.value != expect {
		return false, nil
	}
	s.remove(it)
	return true, nil
}

// Allow implements Store: AllowN for one event.
func (m *Memory) Allow(ctx context.Context, key string, limit Limit) (Decision, error) {
	return m.AllowN(ctx, key, limit, 1)
}

// AllowN implements Store with a golang.org/x/time/rate token bucket per
// key: rate Count/Period, burst Count. A key's bucket is dropped once it
// has refilled, as Redis drops the key of a full bucket. It does not
// block, and ignores ctx.
func (m *Memory) AllowN(_ context.Context, key string, limit Limit, n int) (Decision, error) {
	if err := limit.validate(n); err != nil {
		return Decision{}, invalid("allow", err)
	}
	if m.closed.Load() {
		return Decision{}, closedError("allow")
	}
	now := m.now()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	it, _ := m.bucketIn(s, key, limit, now)
	for it == nil {
		if !m.makeRoom(s, now) {
			return Decision{}, fullError("allow")
		}
		it, _ = m.bucketIn(s, key, limit, now)
	}
	lim := it.limiter
	var d Decision
	if lim.AllowN(now, n) {
		d.Allowed = true
	} else {
		// The reservation is only asked how long the events would wait,
		// then cancelled: refused events take nothing.
		res := lim.ReserveN(now, n)
		d.RetryAfter = res.DelayFrom(now)
		res.CancelAt(now)
	}
	tokens := lim.TokensAt(now)
	if d.Allowed {
		d.Remaining = int(tokens)
	}
	// The bucket is full again, and the entry no different from none, once
	// the missing tokens have come back.
	it.expires = now.Add(time.Duration((float64(limit.Count) - tokens) / float64(lim.Limit()) * float64(time.Second)))
	heap.Fix(&s.expiry, it.index)
	return d, nil
}

// AllowAll implements Store with the token buckets of AllowN. It locks
// the shards of every take's key, in the order of the shards, so that
// no other call sees a budget between the check and the take. It does
// not block, and ignores ctx.
func (m *Memory) AllowAll(_ context.Context, takes []Take) ([]Decision, error) {
	if err := validateTakes(takes); err != nil {
		return nil, invalid("allow", err)
	}
	if m.closed.Load() {
		return nil, closedError("allow")
	}
	now := m.now()
	var shardsArr [8]int
	shards := shardsArr[:0]
	for _, t := range takes {
		i := m.shardIndex(t.Key)
		if !slices.Contains(shards, i) {
			shards = append(shards, i)
		}
	}
	slices.Sort(shards)
	items := make([]*memoryItem, len(takes))
	created := make([]bool, len(takes))
	for {
		for _, i := range shards {
			m.shards[i].mu.Lock()
		}
		if m.bucketsOf(takes, now, items, created) {
			break
		}
		// No room for a new bucket: the buckets this call added go, and
		// the expired entries of every shard, with no lock held.
		for j, it := range items {
			if it != nil && created[j] {
				m.shard(takes[j].Key).remove(it)
			}
		}
		for _, i := range shards {
			m.shards[i].mu.Unlock()
		}
		clear(items)
		clear(created)
		if !m.dropAllExpired(now) {
			return nil, fullError("allow")
		}
	}
	defer func() {
		for _, i := range shards {
			m.shards[i].mu.Unlock()
		}
	}()
	ds := make([]Decision, len(takes))
	var resArr [8]*rate.Reservation
	res := resArr[:0]
	allowed := true
	for j, t := range takes {
		r := items[j].limiter.ReserveN(now, t.N)
		res = append(res, r)
		if d := r.DelayFrom(now); d > 0 {
			ds[j].RetryAfter = d
			allowed = false
		}
	}
	for j, t := range takes {
		it, lim := items[j], items[j].limiter
		if !allowed {
			// Asked only how long the events would wait: refused events
			// take nothing, from any budget.
			res[j].CancelAt(now)
			if created[j] {
				m.shard(t.Key).remove(it)
				continue
			}
		}
		tokens := lim.TokensAt(now)
		if allowed {
			ds[j].Allowed = true
			ds[j].Remaining = int(tokens)
		}
		it.expires = now.Add(time.Duration((float64(t.Limit.Count) - tokens) / float64(lim.Limit()) * float64(time.Second)))
		heap.Fix(&m.shard(t.Key).expiry, it.index)
	}
	return ds, nil
}

// bucketsOf looks up (or adds) the bucket of each take, with the takes'
// shards locked, setting items and whether each was created; it reports
// false when the store had no room for a new one.
func (m *Memory) bucketsOf(takes []Take, now time.Time, items []*memoryItem, created []bool) bool {
	for j, t := range takes {
		it, added := m.bucketIn(m.shard(t.Key), t.Key, t.Limit, now)
		if it == nil {
			return false
		}
		items[j], created[j] = it, added
	}
	return true
}

// bucketIn returns the bucket of key in s, whose lock the caller holds,
// set to limit's rate and burst: the one s has, else a new one (added),
// or nil when s has no room for it.
func (m *Memory) bucketIn(s *memoryShard, key string, limit Limit, now time.Time) (it *memoryItem, added bool) {
	r := rate.Limit(float64(limit.Count) / limit.Period.Seconds())
	k := memoryKey{key: key, limit: true}
	if it = s.lookup(k, now); it == nil {
		it = &memoryItem{key: k, limiter: rate.NewLimiter(r, limit.Count), expires: now.Add(limit.Period)}
		if !s.insert(it, now, m.maxEntries.Load()) {
			return nil, false
		}
		added = true
	}
	if lim := it.limiter; lim.Limit() != r || lim.Burst() != limit.Count {
		lim.SetLimitAt(now, r)
		lim.SetBurstAt(now, limit.Count)
	}
	return it, added
}

// dropAllExpired drops the expired entries of every shard, with none of
// their locks held by the caller, and reports whether the store has room
// now.
func (m *Memory) dropAllExpired(now time.Time) bool {
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		s.dropExpired(now)
		s.mu.Unlock()
	}
	return m.entries.Load() < m.maxEntries.Load()
}

// Close implements Store: it drops every entry.
func (m *Memory) Close() error {
	m.closed.Store(true)
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		s.entries.Add(-int64(len(s.items)))
		clear(s.items)
		clear(s.expiry)
		s.expiry = s.expiry[:0]
		s.mu.Unlock()
	}
	return nil
}

func (m *Memory) shard(key string) *memoryShard { return &m.shards[m.shardIndex(key)] }

func (m *Memory) shardIndex(key string) int { return int(maphash.String(m.seed, key) % memoryShards) }

// lookup returns k's live entry, dropping it if it has expired.
func (s *memoryShard) lookup(k memoryKey, now time.Time) *memoryItem {
	it := s.items[k]
	if it != nil && !now.Before(it.expires) {
		s.remove(it)
		return nil
	}
	return it
}

// dropExpired drops the shard's entries that have expired by now.
func (s *memoryShard) dropExpired(now time.Time) {
	for len(s.expiry) > 0 && !now.Before(s.expiry[0].expires) {
		s.remove(s.expiry[0])
	}
}

// insert adds an entry for a key the shard does not hold, after dropping
// the shard's expired entries, and reports whether the store had room for
// it.
func (s *memoryShard) insert(it *memoryItem, now time.Time, maxEntries int64) bool {
	s.dropExpired(now)
	for {
		n := s.entries.Load()
		if n >= maxEntries {
			return false
		}
		if s.entries.CompareAndSwap(n, n+1) {
			break
		}
	}
	s.items[it.key] = it
	heap.Push(&s.expiry, it)
	return true
}

func (s *memoryShard) remove(it *memoryItem) {
	heap.Remove(&s.expiry, it.index)
	delete(s.items, it.key)
	s.entries.Add(-1)
}

// makeRoom drops the expired entries of every shard, for a write that
// found the store full, and reports whether the store has room now. The
// caller holds locked, its shard's lock, which makeRoom lets go of while
// it works: the caller must look its key up again.
func (m *Memory) makeRoom(locked *memoryShard, now time.Time) bool {
	locked.mu.Unlock()
	defer locked.mu.Lock()
	return m.dropAllExpired(now)
}

// expiryHeap orders a shard's entries by expiry, soonest first.
type expiryHeap []*memoryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *expiryHeap) Push(x any) {
	it := x.(*memoryItem)
	it.index = len(*h)
	*h = append(*h, it)
}

func (h *expiryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}
