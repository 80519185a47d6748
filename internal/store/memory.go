package store

import (
	"container/heap"
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxEntries bounds a Memory store whose MaxEntries is zero. Ten
// thousand entries hold one edge's reservations for a 10-minute window at
// about 16 protected requests a second, or the live limits of ten thousand
// callers, in a few megabytes (about 45 MB if every value were a 4 KiB
// answer); larger fleets share a Redis store.
const DefaultMaxEntries = 10_000

// MemoryOptions configures a Memory store.
type MemoryOptions struct {
	// MaxEntries bounds how many entries (reservations and limits
	// together) the store holds. Default: DefaultMaxEntries.
	MaxEntries int

	// Now is the store's clock. Default: time.Now.
	Now func() time.Time

	// OnEvict, when set, is called for every entry evicted to make room
	// (not for expired ones), while the store holds a lock: it must be
	// quick and must not call the store.
	OnEvict func()
}

// Memory is a Store in this process's memory: per edge, gone on restart.
//
// It holds at most MaxEntries entries. Expired entries are dropped as new
// ones are written; when the store is still full, the entry closest to
// expiring is evicted to make room (for entries written with the same TTL,
// that is the oldest). An evicted reservation no longer protects its key: a
// repeat of that request is taken as new. An evicted limit starts again
// with its whole budget. Evictions counts them.
//
// Entries are spread over up to 64 shards by a hash of the key, each with
// its own lock and its own share of MaxEntries, so a shard may evict a
// little before the store as a whole holds MaxEntries. The store keeps the
// key and value strings it is given, not copies: a substring of a large
// buffer keeps the whole buffer alive.
type Memory struct {
	now       func() time.Time
	onEvict   func()
	seed      maphash.Seed
	mask      uint64
	shards    []memoryShard
	evictions atomic.Uint64
	closed    atomic.Bool
}

var _ Store = (*Memory)(nil)

// memoryShard is one lock's share of a Memory store.
type memoryShard struct {
	mu     sync.Mutex
	items  map[memoryKey]*memoryItem
	expiry expiryHeap
	max    int
	_      [64]byte // keeps shards' locks off one another's cache lines
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
	maxEntries := opts.MaxEntries
	switch {
	case maxEntries < 0:
		return nil, errors.New("store: max entries must not be negative")
	case maxEntries == 0:
		maxEntries = DefaultMaxEntries
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	// Shards hold at least 64 entries each, so that a small store does
	// not evict long before it is full.
	n := 1
	for n < 64 && maxEntries/(2*n) >= 64 {
		n *= 2
	}
	m := &Memory{now: now, onEvict: opts.OnEvict, seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]memoryShard, n)}
	for i := range m.shards {
		s := &m.shards[i]
		s.max = maxEntries / n
		if i < maxEntries%n {
			s.max++
		}
		s.items = make(map[memoryKey]*memoryItem)
	}
	return m, nil
}

// Len reports how many entries the store holds, expired ones not yet
// dropped included.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.items)
		s.mu.Unlock()
	}
	return n
}

// Evictions reports how many entries the store has evicted before they
// expired, to make room for new ones.
func (m *Memory) Evictions() uint64 { return m.evictions.Load() }

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
	if it := s.lookup(k, now); it != nil {
		return false, it.value, nil
	}
	s.insert(&memoryItem{key: k, value: value, expires: now.Add(ttl.Truncate(time.Millisecond))}, now, m)
	return true, "", nil
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
	r := rate.Limit(float64(limit.Count) / limit.Period.Seconds())
	now := m.now()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	k := memoryKey{key: key, limit: true}
	it := s.lookup(k, now)
	if it == nil {
		it = &memoryItem{key: k, limiter: rate.NewLimiter(r, limit.Count), expires: now.Add(limit.Period)}
		s.insert(it, now, m)
	} else if lim := it.limiter; lim.Limit() != r || lim.Burst() != limit.Count {
		lim.SetLimitAt(now, r)
		lim.SetBurstAt(now, limit.Count)
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
	it.expires = now.Add(time.Duration((float64(limit.Count) - tokens) / float64(r) * float64(time.Second)))
	heap.Fix(&s.expiry, it.index)
	return d, nil
}

// Close implements Store: it drops every entry.
func (m *Memory) Close() error {
	m.closed.Store(true)
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		clear(s.items)
		clear(s.expiry)
		s.expiry = s.expiry[:0]
		s.mu.Unlock()
	}
	return nil
}

func (m *Memory) shard(key string) *memoryShard {
	return &m.shards[maphash.String(m.seed, key)&m.mask]
}

// lookup returns k's live entry, dropping it if it has expired.
func (s *memoryShard) lookup(k memoryKey, now time.Time) *memoryItem {
	it := s.items[k]
	if it != nil && !now.Before(it.expires) {
		s.remove(it)
		return nil
	}
	return it
}

// insert adds an entry for a key the shard does not hold, after dropping
// the entries that have expired and, while the shard is still full, the
// entries closest to expiring.
func (s *memoryShard) insert(it *memoryItem, now time.Time, m *Memory) {
	for len(s.expiry) > 0 && !now.Before(s.expiry[0].expires) {
		s.remove(s.expiry[0])
	}
	for len(s.items) >= s.max {
		s.remove(s.expiry[0])
		m.evictions.Add(1)
		if m.onEvict != nil {
			m.onEvict()
		}
	}
	s.items[it.key] = it
	heap.Push(&s.expiry, it)
}

func (s *memoryShard) remove(it *memoryItem) {
	heap.Remove(&s.expiry, it.index)
	delete(s.items, it.key)
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
