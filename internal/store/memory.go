package store

import (
	"context"
	"errors"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxEntries bounds a Memory store whose MaxEntries is zero. A
// hundred thousand entries hold one edge's reservations for a 10-minute
// window at about 160 protected requests a second, or the live limits of
// a hundred thousand callers, in about 45 MB (about 450 MB if every value
// were a 4 KiB answer); larger fleets share a Redis store.
const DefaultMaxEntries = 100_000

// MemoryOptions configures a Memory store.
type MemoryOptions struct {
	// MaxEntries bounds how many live entries (reservations and limits
	// together) the store holds. Default: DefaultMaxEntries.
	MaxEntries int

	// MaxPerOwner bounds how many live reservations one owner (see
	// Store) holds, so that one owner cannot fill the store for all:
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
// lock; the bound is the store's as a whole. An entry holds no pointer:
// it is found by a 128-bit digest of its key, and its key and value are
// copied into its shard's data (see shardData). The garbage collector,
// which marks what is live on every cycle, has nothing to scan in the
// store and an object to mark per 64 KiB of its keys and values, where
// a store of a busy edge holds hundreds of thousands of entries.
type Memory struct {
	now func() time.Time
	// epoch is the time the store's times count from (see memoryItem).
	epoch  time.Time
	seeds  [2]maphash.Seed
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

// ownerCounts counts the live reservations of each owner, by the owner's
// digest (see digest), in shards of their own: a shard of entries
// locks one of them while it holds its own lock, never the other way
// round. Two owners of one digest would share a count (a share of the
// store, never a reservation): at 64 bits of a keyed hash, it takes
// billions of owners for two to be likely.
//
// first holds, of owners refused for their share, the reservation
// found to expire first (see Memory.roomIn): a count says nothing of
// when its reservations expire, and a look through the store's entries
// for them, at each refusal of an owner that keeps asking, would cost
// as much as the store holds, each time.
type ownerCounts struct {
	seed   maphash.Seed
	shards [memoryShards]struct {
		mu    sync.Mutex
		n     map[uint64]int
		first map[uint64]ownerFirst
		// looks numbers the looks for owners' first reservations begun
		// in the shard (see look).
		looks int64
		_     [64]byte
	}
}

// ownerFirst is an owner's reservation that expires first, as found
// when the owner was refused: its key's digest and its expiry (at), or,
// while the store is looked through for it, that look's mark (at
// negative, see look). It holds while that entry is the owner's, with
// that expiry: the owner's other reservations expired no sooner then,
// and only a new reservation or one set to expire sooner could expire
// sooner than it, each of which forgets it, or the look under way.
type ownerFirst struct {
	key memoryKey
	at  int64
}

// digest is owner's digest, never 0 (which is none).
func (o *ownerCounts) digest(owner string) uint64 {
	if d := maphash.String(o.seed, owner); d != 0 {
		return d
	}
	return 1
}

// take counts a new reservation of owner, if it holds fewer than bound
// (0: no bound), and reports whether it did.
func (o *ownerCounts) take(owner uint64, bound int64) bool {
	sh := &o.shards[owner%memoryShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if bound > 0 && int64(sh.n[owner]) >= bound {
		return false
	}
	if sh.n == nil {
		sh.n = make(map[uint64]int)
	}
	sh.n[owner]++
	if len(sh.first) != 0 {
		// The new reservation may expire before the one found first.
		delete(sh.first, owner)
	}
	return true
}

// give uncounts a reservation of owner.
func (o *ownerCounts) give(owner uint64) {
	sh := &o.shards[owner%memoryShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.n[owner]--; sh.n[owner] <= 0 {
		delete(sh.n, owner)
		delete(sh.first, owner)
	}
}

// forget forgets owner's reservation found to expire first, for one of
// its reservations set to expire sooner.
func (o *ownerCounts) forget(owner uint64) {
	sh := &o.shards[owner%memoryShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	delete(sh.first, owner)
}

// firstOf is owner's reservation found to expire first, if one is kept.
func (o *ownerCounts) firstOf(owner uint64) (ownerFirst, bool) {
	sh := &o.shards[owner%memoryShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	f, ok := sh.first[owner]
	return f, ok && f.at > 0
}

// look marks owner as looked for, before the store is looked through
// for its first reservation, and returns the mark for keepFirst, 0 for
// an owner that holds none.
func (o *ownerCounts) look(owner uint64) int64 {
	sh := &o.shards[owner%memoryShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.n[owner] == 0 {
		return 0
	}
	if sh.first == nil {
		sh.first = make(map[uint64]ownerFirst)
	}
	sh.looks++
	sh.first[owner] = ownerFirst{at: -sh.looks}
	return -sh.looks
}

// keepFirst keeps f as owner's reservation that expires first, found
// by the look that mark is of (found: else none was), unless the owner
// changed since the look began (it went, or another look began since):
// a reservation made meanwhile, in a shard the look was through
// already, may expire sooner.
func (o *ownerCounts) keepFirst(owner uint64, mark int64, f ownerFirst, found bool) {
	sh := &o.shards[owner%memoryShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if cur, ok := sh.first[owner]; !ok || cur.at != mark {
		return
	}
	if !found {
		delete(sh.first, owner)
		return
	}
	sh.first[owner] = f
}

// count is how many reservations owner holds.
func (o *ownerCounts) count(owner uint64) int64 {
	sh := &o.shards[owner%memoryShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return int64(sh.n[owner])
}

var _ Store = (*Memory)(nil)

// memoryShards is how many locks a Memory store's entries are spread
// over: enough that the handlers of a busy edge seldom wait for one.
const memoryShards = 64

// memoryShard is one lock's share of a Memory store.
type memoryShard struct {
	mu     sync.Mutex
	items  map[memoryKey]memoryItem
	expiry expiryHeap
	// data holds the keys and values of the shard's entries (see
	// shardData).
	data shardData
	// entries is the store's count of entries (Memory.entries), which
	// the shard's removals keep.
	entries *atomic.Int64
	owners  *ownerCounts
	_       [64]byte // keeps shards' locks off one another's cache lines
}

// memoryKey is a key's digest: two 64-bit hashes of it, of seeds of the
// store's own, the second of a limit's key marked (limitMark) so that
// limits live apart from reservations of the same key, as Redis keeps
// limits under a prefix of their own. It is 16 bytes without padding,
// which the map hashes and compares as one block of memory.
type memoryKey struct {
	hi, lo uint64
}

// limitMark tells a limit's digest from a reservation's of the same key:
// the two differ in it, whatever the key. Two keys of other texts whose
// digests meet are told apart by their texts (see holds).
const limitMark = 0x9e3779b97f4a7c15

// memoryItem is an entry of a Memory store. Its times count from the
// store's epoch, in nanoseconds of the store's clock (a monotonic one, of
// time.Now), so that it holds no pointer.
type memoryItem struct {
	// off and size are where the entry's key, then its value (a
	// limit's: its key alone), are in its shard's data (see shardData),
	// and keyLen how long the key is. The key tells an entry from one of
	// another key of the same digest, which the store refuses as it
	// refuses an entry it has no room for, rather than take one key's
	// entry for another's.
	off          dataAt
	size, keyLen uint32
	// owner is the digest of the owner a reservation counts for, 0 for
	// none.
	owner uint64
	// tat is a limit's theoretical arrival time (GCRA): the bucket holds
	// its whole Count once it is now or past.
	tat     int64
	expires int64
}

// holds reports whether it is the entry of key, rather than of another
// key of the same digest.
func (s *memoryShard) holds(it memoryItem, key string) bool {
	return int(it.keyLen) == len(key) && string(s.data.bytes(it.off, it.keyLen)) == key
}

// valueIs reports whether the entry it holds value.
func (s *memoryShard) valueIs(it memoryItem, value string) bool {
	return string(s.data.bytes(it.off, it.size)[it.keyLen:]) == value
}

// value is a copy of the value of the entry it.
func (s *memoryShard) value(it memoryItem) string {
	return string(s.data.bytes(it.off, it.size)[it.keyLen:])
}

// NewMemory returns an empty Memory store.
func NewMemory(opts MemoryOptions) (*Memory, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	m := &Memory{now: now, epoch: now(), seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	m.owners.seed = maphash.MakeSeed()
	if err := m.SetMaxEntries(opts.MaxEntries); err != nil {
		return nil, err
	}
	if err := m.SetMaxPerOwner(opts.MaxPerOwner); err != nil {
		return nil, err
	}
	for i := range m.shards {
		m.shards[i].items = make(map[memoryKey]memoryItem)
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

// Live reports how many live entries the store holds: it drops the
// expired ones of every shard first, as a write that finds the store
// full does. A store drops a shard's expired entries only when a write
// comes to that shard, so Len of a store no one writes to stays where
// its last writes left it, past every expiry; Live is for whoever reads
// the count now and then (a metrics scrape), not for every request: it
// takes each shard's lock in turn.
func (m *Memory) Live() int {
	m.dropAllExpired(m.clock(), 0)
	return int(m.entries.Load())
}

// Reserve implements Store: one over its owner's bound fails with
// ErrOwnerFull. It does not block, and ignores ctx.
func (m *Memory) Reserve(_ context.Context, owner, key, value string, ttl time.Duration) (bool, string, error) {
	if err := validateTTL(ttl); err != nil {
		return false, "", invalid("reserve", err)
	}
	if m.closed.Load() {
		return false, "", closedError("reserve")
	}
	now := m.clock()
	var ownerDigest uint64
	if owner != "" {
		ownerDigest = m.owners.digest(owner)
	}
	k := m.key(key, false)
	s := m.shardOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if it, ok := s.lookup(k, now); ok {
			if !s.holds(it, key) {
				return false, "", fullError("reserve")
			}
			return false, s.value(it), nil
		}
		if ownerDigest != 0 && !m.owners.take(ownerDigest, m.maxPerOwner.Load()) {
			// Its expired reservations may not have been dropped yet.
			if !m.makeRoomFor(s, ownerDigest, now) {
				if m.entries.Load() >= m.maxEntries.Load() {
					// Full for every owner: the store is what is full.
					return false, "", fullError("reserve")
				}
				return false, "", ownerFullError("reserve", m.roomIn(s, ownerDigest, now))
			}
			continue
		}
		it := memoryItem{owner: ownerDigest, expires: now + int64(ttl.Truncate(time.Millisecond))}
		err := s.insert(k, it, key, value, now, m.maxEntries.Load(), "reserve")
		if err == nil {
			return true, "", nil
		}
		if ownerDigest != 0 {
			m.owners.give(ownerDigest)
		}
		if err != errNoRoom || !m.makeRoom(s, now) {
			return false, "", fullError("reserve")
		}
	}
}

// Replace implements Store. It does not block, and ignores ctx and
// owner: the key's entry keeps its owner's count, which goes with it.
func (m *Memory) Replace(_ context.Context, _, key, expect, value string, ttl time.Duration) (bool, error) {
	if err := validateTTL(ttl); err != nil {
		return false, invalid("replace", err)
	}
	if m.closed.Load() {
		return false, closedError("replace")
	}
	now := m.clock()
	k := m.key(key, false)
	s := m.shardOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.lookup(k, now)
	if !ok {
		return false, nil
	}
	if !s.holds(it, key) || !s.valueIs(it, expect) {
		return false, nil
	}
	if value != expect {
		var ok bool
		if it, ok = s.setValue(k, it, key, value); !ok {
			return false, fullError("replace")
		}
	}
	s.items[k] = s.expireAt(k, it, now+int64(ttl.Truncate(time.Millisecond)))
	return true, nil
}

// Release implements Store. It does not block, and ignores ctx and
// owner: the key's entry gives its owner's count back.
func (m *Memory) Release(_ context.Context, _, key, expect string) (bool, error) {
	if m.closed.Load() {
		return false, closedError("release")
	}
	now := m.clock()
	k := m.key(key, false)
	s := m.shardOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.lookup(k, now)
	if !ok {
		return false, nil
	}
	if !s.holds(it, key) || !s.valueIs(it, expect) {
		return false, nil
	}
	s.remove(k)
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
	k := m.key(key, true)
	s := m.shardOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := m.clock() // under the lock (see AllowAllInto)
	tat, added, err := m.bucketIn(s, k, key, now)
	for err == errNoRoom {
		if !m.makeRoom(s, now) {
			return Decision{}, fullError("allow")
		}
		tat, added, err = m.bucketIn(s, k, key, now)
	}
	if err != nil {
		return Decision{}, err
	}
	d, tat := takeFrom(tat, limit, n, now)
	if d.Allowed {
		s.setTAT(k, tat)
	} else if added {
		s.remove(k)
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
	var keysArr [8]memoryKey
	keys := keysArr[:0]
	for _, t := range takes {
		keys = append(keys, m.key(t.Key, true))
	}
	var shardsArr [8]int
	shards := m.lockShards(shardsArr[:0], keys)
	// The clock is read under the shards' locks, so that the calls on a
	// bucket see its time go forward: one that read it before another
	// took the lock would judge the bucket from an earlier now, and
	// answer a Retry-After longer than the limit's interval.
	now := m.clock()
	var tatsArr [8]int64
	var createdArr [8]bool
	tats, created := tatsArr[:], createdArr[:]
	if len(takes) > len(tatsArr) {
		tats, created = make([]int64, len(takes)), make([]bool, len(takes))
	}
	tats, created = tats[:len(takes)], created[:len(takes)]
	for {
		err := m.bucketsOf(takes, keys, now, tats, created)
		if err == nil {
			break
		}
		if err != errNoRoom {
			m.dropCreated(keys, created)
			m.unlockShards(shards)
			return err
		}
		// No room for a new bucket: the buckets this call added go, and
		// the expired entries of every shard, with no lock held. The
		// call goes on if the store then has room for those buckets and
		// the one it had none for: each try that finds the store as it
		// left it gets one bucket further, and one with room for fewer
		// gives up.
		m.dropCreated(keys, created)
		m.unlockShards(shards)
		need := int64(1 + countTrue(created))
		clear(tats)
		clear(created)
		if !m.dropAllExpired(now, need) {
			return fullError("allow")
		}
		shards = m.lockShards(shards[:0], keys)
		now = m.clock()
	}
	defer m.unlockShards(shards)
	ds = ds[:len(takes)]
	allowed := true
	for j, t := range takes {
		// Each bucket's time becomes what it would be after the take.
		ds[j], tats[j] = takeFrom(tats[j], t.Limit, t.N, now)
		allowed = allowed && ds[j].Allowed
	}
	if !allowed {
		// Refused events take nothing, from any budget; a budget that
		// had room says nothing of it.
		for j := range takes {
			ds[j] = Decision{RetryAfter: ds[j].RetryAfter}
		}
		m.dropCreated(keys, created)
		return nil
	}
	for j := range takes {
		m.shardOf(keys[j]).setTAT(keys[j], tats[j])
	}
	return nil
}

// dropCreated removes the buckets of keys that a call created (the
// same index of created), with their shards locked.
func (m *Memory) dropCreated(keys []memoryKey, created []bool) {
	for j, k := range keys {
		if created[j] {
			m.shardOf(k).remove(k)
		}
	}
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
	var keysArr [8]memoryKey
	keys := keysArr[:0]
	for _, t := range takes {
		keys = append(keys, m.key(t.Key, true))
	}
	var shardsArr [8]int
	defer m.unlockShards(m.lockShards(shardsArr[:0], keys))
	now := m.clock() // under the locks (see AllowAllInto)
	for j, t := range takes {
		s := m.shardOf(keys[j])
		it, ok := s.lookup(keys[j], now)
		if !ok {
			continue // full already
		}
		if !s.holds(it, t.Key) {
			continue // another key's bucket
		}
		if tat := it.tat - int64(outstanding(t, held)); tat > now {
			s.setTAT(keys[j], tat)
		} else {
			s.remove(keys[j])
		}
	}
	return nil
}

// ResetLimit implements Store: the bucket of key is dropped, whole
// again. It does not block, and ignores ctx.
func (m *Memory) ResetLimit(_ context.Context, key string) (reset bool, err error) {
	err = m.withBucket("reset", key, func(s *memoryShard, k memoryKey, it memoryItem, now int64) {
		s.remove(k)
		// A bucket made for a take that was then refused holds the time
		// it was made: whole.
		reset = it.tat > now
	})
	return reset, err
}

// PeekLimit implements Store. It does not block, and ignores ctx.
func (m *Memory) PeekLimit(_ context.Context, key string) (ahead time.Duration, err error) {
	err = m.withBucket("peek", key, func(_ *memoryShard, _ memoryKey, it memoryItem, now int64) {
		ahead = time.Duration(max(it.tat-now, 0))
	})
	return ahead, err
}

// withBucket calls f with the bucket of key, under its shard's lock, if
// the store holds one; op names the call in an error.
func (m *Memory) withBucket(op, key string, f func(s *memoryShard, k memoryKey, it memoryItem, now int64)) error {
	if m.closed.Load() {
		return closedError(op)
	}
	k := m.key(key, true)
	s := m.shardOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := m.clock() // under the lock (see AllowAllInto)
	if it, ok := s.lookup(k, now); ok && s.holds(it, key) {
		f(s, k, it, now)
	}
	return nil
}

// outstanding is what RefundAll gives back of take t held after it was
// taken, no more than the take still holds of its budget, as a time of
// the bucket: its N emission intervals, less the time since. A take
// from a full bucket (its time past) holds that: the time since
// refilled the budget by as much, whatever became of the take. One from
// a bucket not full moved its time N intervals on, all of which it
// still holds until the bucket's time passes, so that its refund falls
// short by up to held: never more than was taken, which the bucket
// cannot tell (GCRA keeps one time, not the takes that made it).
func outstanding(t Take, held time.Duration) time.Duration {
	return max(time.Duration(t.N)*t.Limit.interval()-max(held, 0), 0)
}

// lockShards locks the shards of keys, in the order of the shards, and
// returns them for unlockShards, appended to shards (room on the
// caller's stack for the usual few).
func (m *Memory) lockShards(shards []int, keys []memoryKey) []int {
	for _, k := range keys {
		i := shardIndex(k)
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

// takeFrom judges n events of the bucket whose theoretical arrival time
// is tat under limit at now (GCRA): it returns the decision and, when
// they are allowed, the bucket's new theoretical arrival time, which the
// caller sets. A bucket holds Count events when its time is now or
// past; each event taken moves it one interval on, and no further than
// Count intervals from now.
func takeFrom(tat int64, limit Limit, n int, now int64) (Decision, int64) {
	interval := limit.interval()
	burst := time.Duration(limit.Count) * interval
	tat = max(tat, now) + int64(time.Duration(n)*interval)
	ahead := time.Duration(tat - now)
	if ahead > burst {
		return Decision{RetryAfter: ahead - burst}, 0
	}
	return Decision{Allowed: true, Remaining: int((burst - ahead) / interval)}, tat
}

// setTAT sets the theoretical arrival time of the bucket at k: the
// bucket is full again, and its entry no different from none, then.
func (s *memoryShard) setTAT(k memoryKey, tat int64) {
	it := s.items[k]
	it.tat = tat
	s.items[k] = s.expireAt(k, it, tat)
}

// bucketsOf looks up (or adds) the bucket of each take, whose keys are
// keys, with the takes' shards locked, setting each one's time in tats
// and whether it was created; it fails with errNoRoom when the store
// had no room for a new one.
func (m *Memory) bucketsOf(takes []Take, keys []memoryKey, now int64, tats []int64, created []bool) error {
	for j, t := range takes {
		tat, added, err := m.bucketIn(m.shardOf(keys[j]), keys[j], t.Key, now)
		if err != nil {
			return err
		}
		tats[j], created[j] = tat, added
	}
	return nil
}

// errNoRoom is the error of insert and bucketIn when the store holds its
// bound of entries: expired ones may make room (see makeRoom).
var errNoRoom = errors.New("store: no room")

// bucketIn returns the time (tat) of the bucket of key at k in s, whose
// lock the caller holds: the one s has, else a new, full one (added), or
// errNoRoom when s has no room for it. A new bucket lives until its
// first take sets its time, or is removed by the caller. A live bucket
// of another key of k's digest fails as a full store does.
func (m *Memory) bucketIn(s *memoryShard, k memoryKey, key string, now int64) (tat int64, added bool, err error) {
	if it, ok := s.items[k]; ok {
		if !s.holds(it, key) {
			if it.expires > now {
				return 0, false, fullError("allow")
			}
			// Another key's bucket, full again: it goes.
			s.remove(k)
		} else {
			if now < it.expires {
				return it.tat, false, nil
			}
			// A bucket that is full again, not yet dropped: its entry,
			// which the store counts already, is the new bucket, rather
			// than one dropped and another made for the same key (a
			// caller's bucket is full again between calls far apart).
			it.tat = now
			s.items[k] = s.expireAt(k, it, now+int64(time.Hour))
			return now, true, nil
		}
	}
	it := memoryItem{tat: now, expires: now + int64(time.Hour)}
	if err := s.insert(k, it, key, "", now, m.maxEntries.Load(), "allow"); err != nil {
		return 0, false, err
	}
	return now, true, nil
}

// dropAllExpired drops the expired entries of every shard, with none of
// their locks held by the caller, and reports whether the store has room
// now for need new entries.
func (m *Memory) dropAllExpired(now, need int64) bool {
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		s.dropExpired(now)
		s.mu.Unlock()
	}
	return m.entries.Load()+need <= m.maxEntries.Load()
}

// countTrue is how many of bs are true.
func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// Close implements Store: it drops every entry.
func (m *Memory) Close() error {
	m.closed.Store(true)
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		s.entries.Add(-int64(len(s.items)))
		for _, it := range s.items {
			if it.owner != 0 {
				s.owners.give(it.owner)
			}
		}
		clear(s.items)
		s.expiry, s.data = nil, shardData{}
		s.mu.Unlock()
	}
	return nil
}

// clock is the store's time now, from its epoch.
func (m *Memory) clock() int64 { return int64(m.now().Sub(m.epoch)) }

// key is the digest of key, a limit's or a reservation's.
func (m *Memory) key(key string, limit bool) memoryKey {
	k := memoryKey{hi: maphash.String(m.seeds[0], key), lo: maphash.String(m.seeds[1], key)}
	if limit {
		k.lo ^= limitMark
	}
	return k
}

func (m *Memory) shardOf(k memoryKey) *memoryShard { return &m.shards[shardIndex(k)] }

func shardIndex(k memoryKey) int { return int(k.hi % memoryShards) }

// lookup returns k's live entry, dropping it if it has expired.
func (s *memoryShard) lookup(k memoryKey, now int64) (memoryItem, bool) {
	it, ok := s.items[k]
	if ok && now >= it.expires {
		s.remove(k)
		return memoryItem{}, false
	}
	return it, ok
}

// dropExpired drops the shard's entries that have expired by now. An
// expiry of the heap whose entry has gone goes alone; one whose entry
// lives on past it, its expiry set later since (see expireAt), goes
// back into the heap at the entry's expiry.
func (s *memoryShard) dropExpired(now int64) {
	for len(s.expiry) > 0 && now >= s.expiry[0].at {
		k := s.expiry.pop().key
		it, ok := s.items[k]
		switch {
		case !ok:
		case now >= it.expires:
			s.remove(k)
		default:
			s.expiry.push(expiry{at: it.expires, key: k})
		}
	}
}

// insert adds it at k, a key the shard does not hold, with key and value,
// after dropping the shard's expired entries. It fails with errNoRoom
// when the store holds maxEntries entries (expired ones of other shards
// may make room, see makeRoom), and as a full store when the shard's
// data has no room for key and value (see maxShardData).
func (s *memoryShard) insert(k memoryKey, it memoryItem, key, value string, now int64, maxEntries int64, op string) error {
	s.dropExpired(now)
	for {
		n := s.entries.Load()
		if n >= maxEntries {
			return errNoRoom
		}
		if s.entries.CompareAndSwap(n, n+1) {
			break
		}
	}
	var ok bool
	if it.off, it.size, ok = s.store(key, value); !ok {
		s.entries.Add(-1)
		return fullError(op)
	}
	it.keyLen = uint32(len(key))
	s.items[k] = it
	s.pushExpiry(k, it.expires)
	return nil
}

// setValue stores value as the value of it, the entry at k, whose key
// is key, and returns the entry with it, which the caller sets at k (in the
// same write as its other changes); false when the shard had no room
// for it, storing nothing.
func (s *memoryShard) setValue(k memoryKey, it memoryItem, key, value string) (memoryItem, bool) {
	need := len(key) + len(value)
	if uint64(s.data.live()+need) > maxShardData {
		return memoryItem{}, false
	}
	if b, ok := s.data.resize(it.off, it.size, need); ok {
		copy(b[it.keyLen:], value)
		it.size = uint32(need)
		return it, true
	}
	off, size, ok := s.store(key, value)
	if !ok {
		return memoryItem{}, false
	}
	it = s.items[k] // after store, which may have moved it
	s.data.drop(it.off, it.size)
	it.off, it.size = off, size
	return it, true
}

// expireAt returns it, the entry at k, set to expire at expires, which
// the caller sets at k. The heap holds an expiry of every entry at or
// before the entry's own: an expiry set later leaves it as it is (it
// moves when its time comes, see dropExpired), so that a reservation
// replaced by its answer has one; one set sooner adds its own.
func (s *memoryShard) expireAt(k memoryKey, it memoryItem, expires int64) memoryItem {
	if expires < it.expires {
		if n := len(s.expiry); n > 0 && s.expiry[n-1] == (expiry{at: it.expires, key: k}) {
			// The expiry the heap took last is the entry's (a
			// reservation's, replaced by its answer before the shard took
			// another): it moves sooner in its place, rather than stay
			// in the heap beside a new one until its time.
			s.expiry[n-1].at = expires
			s.expiry.up(n - 1)
		} else {
			s.pushExpiry(k, expires)
		}
		if it.owner != 0 {
			// It may now expire before the one found first.
			s.owners.forget(it.owner)
		}
	}
	it.expires = expires
	return it
}

// store appends key and value to the shard's data and returns where
// they are. The bytes of entries gone or given other values are garbage
// until their chunk empties (see shardData) or the data is made again
// of the live entries' alone, once garbage is more than half of it: an
// entry's bytes are copied at most about once per entry, and the data
// holds at most about twice the live entries'. Making it again moves
// the entries (their off): an entry read before a store is read again
// from items after it. It reports false, storing nothing, when the live
// entries' bytes and these would be more than maxShardData.
func (s *memoryShard) store(key, value string) (off dataAt, size uint32, ok bool) {
	need := len(key) + len(value)
	if uint64(s.data.live()+need) > maxShardData {
		return dataAt{}, 0, false
	}
	if s.data.garbage > minGarbage && 2*s.data.garbage > s.data.held {
		live := shardData{spare: s.data.spare}
		for k, it := range s.items {
			at, b := live.add(int(it.size))
			copy(b, s.data.bytes(it.off, it.size))
			it.off = at
			s.items[k] = it
		}
		s.data = live
	}
	off, b := s.data.add(need)
	copy(b, key)
	copy(b[len(key):], value)
	return off, uint32(need), true
}

// maxShardData bounds the bytes a shard's entries hold, whose sizes are
// 32-bit: 4 GiB a shard, far more than MaxEntries entries of the edge's
// hold. A variable for the tests.
var maxShardData uint64 = math.MaxUint32

// minGarbage is how many bytes of garbage a shard's data may hold
// whatever its size: a shard of few entries is not made again at every
// few writes.
const minGarbage = 64 << 10

// pushExpiry adds an expiry of k to the heap. An entry's other expiries
// stay in the heap until their time (see dropExpired); when the heap
// holds twice as many as there are live entries, it is made again of
// theirs alone, so that it holds at most about twice as many.
func (s *memoryShard) pushExpiry(k memoryKey, at int64) {
	if len(s.expiry) >= 2*len(s.items)+64 {
		s.expiry = s.expiry[:0]
		for k, it := range s.items {
			s.expiry = append(s.expiry, expiry{at: it.expires, key: k})
		}
		s.expiry.init()
	}
	s.expiry.push(expiry{at: at, key: k})
}

func (s *memoryShard) remove(k memoryKey) {
	it, ok := s.items[k]
	if !ok {
		return
	}
	s.data.drop(it.off, it.size)
	delete(s.items, k)
	s.entries.Add(-1)
	if it.owner != 0 {
		s.owners.give(it.owner)
	}
}

// makeRoom drops the expired entries of every shard, for a write that
// found the store full, and reports whether the store has room now. The
// caller holds locked, its shard's lock, which makeRoom lets go of while
// it works: the caller must look its key up again.
func (m *Memory) makeRoom(locked *memoryShard, now int64) bool {
	locked.mu.Unlock()
	defer locked.mu.Lock()
	return m.dropAllExpired(now, 1)
}

// makeRoomFor drops the expired entries of every shard, for a
// reservation whose owner holds its whole share, and reports whether the
// owner has room now. The caller holds locked, as for makeRoom.
func (m *Memory) makeRoomFor(locked *memoryShard, owner uint64, now int64) bool {
	locked.mu.Unlock()
	defer locked.mu.Lock()
	m.dropAllExpired(now, 0)
	bound := m.maxPerOwner.Load()
	return bound == 0 || m.owners.count(owner) < bound
}

// roomIn is how long from now until owner, refused for its share, has
// room again: until its reservation that expires first does (0 if it
// holds none by now). The caller holds locked, as for makeRoom.
//
// The reservation found first is kept (ownerFirst) and checked, in its
// shard alone, at the owner's next refusal: the store's entries are
// looked through again only once it went, or its expiry moved, or the
// owner reserved again since, each of which takes a reservation of the
// owner's, not a refusal. An owner that keeps asking while its share is
// full costs one entry's look-up a refusal; a reservation that succeeds
// costs a look at whether any owner is kept, in the lock it takes.
func (m *Memory) roomIn(locked *memoryShard, owner uint64, now int64) time.Duration {
	locked.mu.Unlock()
	defer locked.mu.Lock()
	if f, ok := m.owners.firstOf(owner); ok {
		s := m.shardOf(f.key)
		s.mu.Lock()
		it, held := s.items[f.key]
		s.mu.Unlock()
		if held && it.owner == owner && it.expires == f.at && f.at > now {
			return time.Duration(f.at - now)
		}
	}
	mark := m.owners.look(owner)
	if mark == 0 {
		return 0
	}
	var first ownerFirst
	found := false
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for k, it := range s.items {
			if it.owner == owner && it.expires > now && (!found || it.expires < first.at) {
				first, found = ownerFirst{key: k, at: it.expires}, true
			}
		}
		s.mu.Unlock()
	}
	m.owners.keepFirst(owner, mark, first, found)
	if !found {
		return 0
	}
	return time.Duration(first.at - now)
}

// expiry is a time an entry of a shard expires at, unless a later one
// was set since.
type expiry struct {
	at  int64
	key memoryKey
}

// expiryHeap orders a shard's expiries, soonest first: a binary heap of
// values, without pointers for the garbage collector to scan.
type expiryHeap []expiry

func (h *expiryHeap) push(e expiry) {
	*h = append(*h, e)
	h.up(len(*h) - 1)
}

func (h *expiryHeap) pop() expiry {
	old := *h
	e := old[0]
	n := len(old) - 1
	old[0] = old[n]
	*h = old[:n]
	h.down(0)
	return e
}

func (h expiryHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h expiryHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].at <= h[i].at {
			return
		}
		h[parent], h[i] = h[i], h[parent]
		i = parent
	}
}

func (h expiryHeap) down(i int) {
	for {
		child := 2*i + 1
		if child >= len(h) {
			return
		}
		if right := child + 1; right < len(h) && h[right].at < h[child].at {
			child = right
		}
		if h[i].at <= h[child].at {
			return
		}
		h[i], h[child] = h[child], h[i]
		i = child
	}
}
