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

	// MaxPerOwner bounds how many live reservations one owner (see
	// WithOwner) holds, so that one owner cannot fill the store for all:
	// a reservation over it fails with ErrOwnerFull. Default: 0, no
	// bound but MaxEntries.
	MaxPerOwner int

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
	// owners counts the reservations of each owner, expired ones not yet
	// dropped included; maxPerOwner bounds it (0: no bound).
	owners      ownerCounts
	maxPerOwner atomic.Int64
	closed      atomic.Bool
}

// ownerCounts counts the live reservations of each owner, in shards of
// their own: a shard of entries locks one of them while it holds its
// own lock, never the other way round.
type ownerCounts struct {
	seed   maphash.Seed
	shards [memoryShards]struct {
		mu sync.Mutex
		n  map[string]int
		_  [64]byte
	}
}

// take counts a new reservation of owner, if it holds fewer than bound
// (0: no bound), and reports whether it did.
func (o *ownerCounts) take(owner string, bound int64) bool {
	sh := &o.shards[maphash.String(o.seed, owner)%memoryShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if bound > 0 && int64(sh.n[owner]) >= bound {
		return false
	}
	if sh.n == nil {
		sh.n = make(map[string]int)
	}
	sh.n[owner]++
	return true
}

// give uncounts a reservation of owner.
func (o *ownerCounts) give(owner string) {
	sh := &o.shards[maphash.String(o.seed, owner)%memoryShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.n[owner]--; sh.n[owner] <= 0 {
		delete(sh.n, owner)
	}
}

// count is how many reservations owner holds.
func (o *ownerCounts) count(owner string) int64 {
	sh := &o.shards[maphash.String(o.seed, owner)%memoryShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return int64(sh.n[owner])
}

type ownerKey struct{}

// WithOwner returns ctx carrying owner, the one a reservation made with
// it counts for: a Memory or a Redis store with MaxPerOwner refuses an
// owner's reservation over that bound. An owner is opaque to the store;
// "" is none.
func WithOwner(ctx context.Context, owner string) context.Context {
	return context.WithValue(ctx, ownerKey{}, owner)
}

func ownerOf(ctx context.Context) string {
	owner, _ := ctx.Value(ownerKey{}).(string)
	return owner
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
	owners  *ownerCounts
	_       [64]byte // keeps shards' locks off one another's cache lines
}

// memoryKey keeps limits apart from reservations of the same key, as Redis
// does with its own key prefix for limits.
type memoryKey struct {
	key   string
	limit bool
}

type memoryItem struct {
	key   memoryKey
	value string
	// owner is the owner a reservation counts for, "" for none.
	owner string
	// tat is a limit's theoretical arrival time (GCRA): the bucket holds
	// its whole Count once it is now or past.
	tat     time.Time
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
	m.owners.seed = maphash.MakeSeed()
	if err := m.SetMaxEntries(opts.MaxEntries); err != nil {
		return nil, err
	}
	if err := m.SetMaxPerOwner(opts.MaxPerOwner); err != nil {
		return nil, err
	}
	for i := range m.shards {
		m.shards[i].items = make(map[memoryKey]*memoryItem)
		m.shards[i].entries = &m.entries
		m.shards[i].owners = &m.owners
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

// SetMaxPerOwner changes how many live reservations one owner holds (0:
// no bound). An owner that holds more than its new bound keeps them:
// its new reservations fail until enough have expired or been
// released.
func (m *Memory) SetMaxPerOwner(n int) error {
	if n < 0 {
		return errors.New("store: max per owner must not be negative")
	}
	m.maxPerOwner.Store(int64(n))
	return nil
}

// MaxPerOwner reports the bound of one owner's reservations (0: none).
func (m *Memory) MaxPerOwner() int { return int(m.maxPerOwner.Load()) }

// MaxEntries reports the store's bound.
func (m *Memory) MaxEntries() int { return int(m.maxEntries.Load()) }

// Len reports how many entries the store holds, expired ones not yet
// dropped included.
func (m *Memory) Len() int { return int(m.entries.Load()) }

// Reserve implements Store. The reservation counts for the owner ctx
// carries (WithOwner): one over its owner's bound fails with
// ErrOwnerFull. It does not block, and reads nothing else of ctx.
func (m *Memory) Reserve(ctx context.Context, key, value string, ttl time.Duration) (bool, string, error) {
	return m.ReserveFor(ownerOf(ctx), key, value, ttl)
}

// ReserveFor is Reserve for owner ("" for none) as WithOwner gives it,
// without a context to carry it: a caller that knows it holds a Memory
// store spares the context's allocations.
func (m *Memory) ReserveFor(owner, key, value string, ttl time.Duration) (bool, string, error) {
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
		if owner != "" && !m.owners.take(owner, m.maxPerOwner.Load()) {
			// Its expired reservations may not have been dropped yet.
			if !m.makeRoomFor(s, owner, now) {
				if m.entries.Load() >= m.maxEntries.Load() {
					// Full for every owner: the store is what is full.
					return false, "", fullError("reserve")
				}
				return false, "", ownerFullError("reserve")
			}
			continue
		}
		if s.insert(&memoryItem{key: k, value: value, owner: owner, expires: now.Add(ttl.Truncate(time.Millisecond))}, now, m.maxEntries.Load()) {
			return true, "", nil
		}
		if owner != "" {
			m.owners.give(owner)
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

// AllowN implements Store with a token bucket per key (GCRA, as Redis):
// rate Count/Period, burst Count. A key's bucket is dropped once it has
// refilled, as Redis drops the key of a full bucket. It does not block,
// and ignores ctx.
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
	it, added := m.bucketIn(s, key, now)
	for it == nil {
		if !m.makeRoom(s, now) {
			return Decision{}, fullError("allow")
		}
		it, added = m.bucketIn(s, key, now)
	}
	d, tat := takeFrom(it, limit, n, now)
	if d.Allowed {
		s.setTAT(it, tat)
	} else if added {
		s.remove(it)
	}
	return d, nil
}

// AllowAll implements Store with the token buckets of AllowN (see
// AllowAllInto). It does not block, and ignores ctx.
func (m *Memory) AllowAll(_ context.Context, takes []Take) ([]Decision, error) {
	ds := make([]Decision, len(takes))
	if err := m.AllowAllInto(takes, ds); err != nil {
		return nil, err
	}
	return ds, nil
}

// AllowAllInto is AllowAll with the decision of each take written to ds,
// which has room for them all (len(ds) >= len(takes)): it keeps neither
// slice, so that a caller that knows it holds a Memory store may have
// both on its stack. It locks the shards of every take's key, in the
// order of the shards, so that no other call sees a budget between the
// check and the take. It does not block. Of a call that fails, ds is
// undefined.
func (m *Memory) AllowAllInto(takes []Take, ds []Decision) error {
	if err := validateTakes(takes); err != nil {
		return invalid("allow", err)
	}
	if m.closed.Load() {
		return closedError("allow")
	}
	now := m.now()
	var shardsArr [8]int
	shards := m.lockShards(shardsArr[:0], takes)
	items := make([]*memoryItem, len(takes))
	created := make([]bool, len(takes))
	for !m.bucketsOf(takes, now, items, created) {
		// No room for a new bucket: the buckets this call added go, and
		// the expired entries of every shard, with no lock held.
		for j, it := range items {
			if it != nil && created[j] {
				m.shard(takes[j].Key).remove(it)
			}
		}
		m.unlockShards(shards)
		clear(items)
		clear(created)
		if !m.dropAllExpired(now) {
			return fullError("allow")
		}
		shards = m.lockShards(shards[:0], takes)
	}
	defer m.unlockShards(shards)
	ds = ds[:len(takes)]
	var tatsArr [8]time.Time
	tats := tatsArr[:0]
	allowed := true
	for j, t := range takes {
		d, tat := takeFrom(items[j], t.Limit, t.N, now)
		ds[j], tats = d, append(tats, tat)
		allowed = allowed && d.Allowed
	}
	for j, t := range takes {
		if !allowed {
			// Refused events take nothing, from any budget; a budget
			// that had room says nothing of it.
			ds[j] = Decision{RetryAfter: ds[j].RetryAfter}
			if created[j] {
				m.shard(t.Key).remove(items[j])
			}
			continue
		}
		m.shard(t.Key).setTAT(items[j], tats[j])
	}
	return nil
}

// RefundAll implements Store: each bucket's theoretical arrival time goes
// back by its take's events, and a bucket that is full again is dropped.
// It locks the shards of every take's key, as AllowAll. It does not
// block, and ignores ctx.
func (m *Memory) RefundAll(_ context.Context, takes []Take, held time.Duration) error {
	if err := validateTakes(takes); err != nil {
		return invalid("refund", err)
	}
	if m.closed.Load() {
		return closedError("refund")
	}
	now := m.now()
	var shardsArr [8]int
	defer m.unlockShards(m.lockShards(shardsArr[:0], takes))
	for _, t := range takes {
		s := m.shard(t.Key)
		it := s.lookup(memoryKey{key: t.Key, limit: true}, now)
		if it == nil {
			continue // full already
		}
		if tat := it.tat.Add(-outstanding(t, held)); tat.After(now) {
			s.setTAT(it, tat)
		} else {
			s.remove(it)
		}
	}
	return nil
}

// outstanding is what take t still holds of its budget held after it
// was taken, as a time of the bucket: its N emission intervals, less
// the time since, which refilled the budget by as much whatever became
// of the take (GCRA: a take moves the bucket's time N intervals past
// max(its time, now), so that after held it is at most N intervals less
// held ahead of what it would have been without the take).
func outstanding(t Take, held time.Duration) time.Duration {
	return max(time.Duration(t.N)*t.Limit.interval()-max(held, 0), 0)
}

// lockShards locks the shards of the takes' keys, in the order of the
// shards, and returns them for unlockShards, appended to shards (room on
// the caller's stack for the usual few).
func (m *Memory) lockShards(shards []int, takes []Take) []int {
	for _, t := range takes {
		i := m.shardIndex(t.Key)
		if !slices.Contains(shards, i) {
			shards = append(shards, i)
		}
	}
	slices.Sort(shards)
	for _, i := range shards {
		m.shards[i].mu.Lock()
	}
	return shards
}

func (m *Memory) unlockShards(shards []int) {
	for _, i := range shards {
		m.shards[i].mu.Unlock()
	}
}

// interval is how long a limit's bucket takes to get one event back
// (GCRA's emission interval), in whole nanoseconds: a bucket's state is
// a time, so that events taken and given back (RefundAll) cancel out
// exactly.
func (l Limit) interval() time.Duration { return l.Period / time.Duration(l.Count) }

// takeFrom judges n events of the bucket it under limit at now (GCRA): it
// returns the decision and, when they are allowed, the bucket's new
// theoretical arrival time, which the caller sets. A bucket holds Count
// events when its time is now or past; each event taken moves it one
// interval on, and no further than Count intervals from now.
func takeFrom(it *memoryItem, limit Limit, n int, now time.Time) (Decision, time.Time) {
	interval := limit.interval()
	burst := time.Duration(limit.Count) * interval
	tat := it.tat
	if tat.Before(now) {
		tat = now
	}
	tat = tat.Add(time.Duration(n) * interval)
	ahead := tat.Sub(now)
	if ahead > burst {
		return Decision{RetryAfter: ahead - burst}, time.Time{}
	}
	return Decision{Allowed: true, Remaining: int((burst - ahead) / interval)}, tat
}

// setTAT sets the theoretical arrival time of the bucket it: the bucket
// is full again, and its entry no different from none, then.
func (s *memoryShard) setTAT(it *memoryItem, tat time.Time) {
	it.tat, it.expires = tat, tat
	heap.Fix(&s.expiry, it.index)
}

// bucketsOf looks up (or adds) the bucket of each take, with the takes'
// shards locked, setting items and whether each was created; it reports
// false when the store had no room for a new one.
func (m *Memory) bucketsOf(takes []Take, now time.Time, items []*memoryItem, created []bool) bool {
	for j, t := range takes {
		it, added := m.bucketIn(m.shard(t.Key), t.Key, now)
		if it == nil {
			return false
		}
		items[j], created[j] = it, added
	}
	return true
}

// bucketIn returns the bucket of key in s, whose lock the caller holds:
// the one s has, else a new, full one (added), or nil when s has no room
// for it. A new bucket lives until its first take sets its time, or is
// removed by the caller.
func (m *Memory) bucketIn(s *memoryShard, key string, now time.Time) (it *memoryItem, added bool) {
	k := memoryKey{key: key, limit: true}
	if it = s.items[k]; it != nil {
		if now.Before(it.expires) {
			return it, false
		}
		// A bucket that is full again, not yet dropped: its entry, which
		// the store counts already, is the new bucket, rather than one
		// dropped and another allocated for the same key (a caller's
		// bucket is full again between calls far apart).
		it.tat, it.expires = now, now.Add(time.Hour)
		heap.Fix(&s.expiry, it.index)
		return it, true
	}
	it = &memoryItem{key: k, tat: now, expires: now.Add(time.Hour)}
	if !s.insert(it, now, m.maxEntries.Load()) {
		return nil, false
	}
	return it, true
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
		for _, it := range s.items {
			if it.owner != "" {
				s.owners.give(it.owner)
			}
		}
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
	if it.owner != "" {
		s.owners.give(it.owner)
	}
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

// makeRoomFor drops the expired entries of every shard, for a
// reservation whose owner holds its whole share, and reports whether the
// owner has room now. The caller holds locked, as for makeRoom.
func (m *Memory) makeRoomFor(locked *memoryShard, owner string, now time.Time) bool {
	locked.mu.Unlock()
	defer locked.mu.Lock()
	m.dropAllExpired(now)
	bound := m.maxPerOwner.Load()
	return bound == 0 || m.owners.count(owner) < bound
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
