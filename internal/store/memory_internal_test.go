package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMemoryDigestCollision puts another key's entry at the digest of a
// key, as two keys of one digest would be, and checks that the store
// never takes one for the other: a reservation or a limit of the key
// fails as a full store's does (nothing is delivered), and neither
// Replace nor Release touches the other key's entry.
func TestMemoryDigestCollision(t *testing.T) {
	ctx := context.Background()
	limit := Limit{Count: 2, Period: time.Minute}
	for _, tc := range []struct {
		name  string
		limit bool
	}{{"reservation", false}, {"limit", true}} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewMemory(MemoryOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.limit {
				if _, err := m.Allow(ctx, "other", limit); err != nil {
					t.Fatal(err)
				}
			} else if ok, _, err := m.Reserve(ctx, "", "other", "v1", time.Minute); !ok || err != nil {
				t.Fatal(ok, err)
			}
			// Move the other key's entry to the digest of "key".
			from, to := m.key("other", tc.limit), m.key("key", tc.limit)
			fs, ts := m.shardOf(from), m.shardOf(to)
			it := fs.items[from]
			delete(fs.items, from)
			it.off, it.size, _ = ts.store("other", fs.value(it))
			it.keyLen = uint32(len("other"))
			ts.items[to] = it
			ts.pushExpiry(to, it.expires)

			if tc.limit {
				if _, err := m.Allow(ctx, "key", limit); !errors.Is(err, ErrFull) {
					t.Fatalf("Allow of a key whose digest another's bucket holds: %v, want ErrFull", err)
				}
				var ds [1]Decision
				if err := m.AllowAllInto([]Take{{Key: "key", Limit: limit, N: 1}}, ds[:]); !errors.Is(err, ErrFull) {
					t.Fatalf("AllowAll: %v, want ErrFull", err)
				}
				if err := m.RefundAll(ctx, []Take{{Key: "key", Limit: limit, N: 1}}, 0); err != nil {
					t.Fatal(err)
				}
				if got := ts.items[to].tat; got != it.tat {
					t.Fatalf("RefundAll of the key changed the other key's bucket: tat %d, was %d", got, it.tat)
				}
				return
			}
			if ok, current, err := m.Reserve(ctx, "", "key", "v2", time.Minute); ok || current != "" || !errors.Is(err, ErrFull) {
				t.Fatalf("Reserve of a key whose digest another's entry holds: %v %q %v, want ErrFull", ok, current, err)
			}
			if ok, err := m.Replace(ctx, "", "key", "v1", "v3", time.Minute); ok || err != nil {
				t.Fatalf("Replace: %v %v, want false", ok, err)
			}
			if ok, err := m.Release(ctx, "", "key", "v1"); ok || err != nil {
				t.Fatalf("Release: %v %v, want false", ok, err)
			}
			if got := m.RemainingTTL("key"); got != -1 {
				t.Fatalf("RemainingTTL: %v, want -1", got)
			}
			if got := ts.items[to]; !ts.holds(got, "other") || ts.value(got) != "v1" {
				t.Fatalf("the other key's entry changed: %q", ts.value(got))
			}
		})
	}
}

// TestMemoryDataChurned replaces and releases every entry, round after
// round, and checks every live entry's value after each round, and that
// the data stays within about twice the live entries' bytes: the chunks
// the churn empties are let go of.
func TestMemoryDataChurned(t *testing.T) {
	m, err := NewMemory(MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const keys = 2000
	value := func(i, round int) string {
		return strings.Repeat(strconv.Itoa(round), 1+(i*7+round)%300) + "/" + strconv.Itoa(i)
	}
	churn(t, m, keys, 60, value, func(i, round int) bool { return (i+round)%5 == 0 }, nil)
	checkDataBound(t, m, "after the churn", minGarbage+4096)
}

// TestMemoryDataRebuiltAroundPinnedEntries churns entries beside entries
// that stay (as a day's limit does among ten minutes' reservations), a
// few of them written after each round, so that no chunk ever empties:
// only making the shards' data again of the live entries bounds it. After
// each round every entry, churned and staying, must hold its value, and
// the data at most about twice the live entries' bytes.
func TestMemoryDataRebuiltAroundPinnedEntries(t *testing.T) {
	m, err := NewMemory(MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const keys, rounds, pinnedPerRound = 2000, 60, 64
	value := func(i, round int) string {
		return strings.Repeat(strconv.Itoa(round%10), 100+(i*13+round)%200) + "/" + strconv.Itoa(i)
	}
	pinned := map[string]string{}
	round := 0
	check := func() {
		for j := range pinnedPerRound {
			key, v := "pinned-"+strconv.Itoa(round)+"-"+strconv.Itoa(j), value(j, round)
			if ok, _, err := m.Reserve(ctx, "", key, v, 24*time.Hour); !ok || err != nil {
				t.Fatalf("round %d: reserve %s: %v %v", round, key, ok, err)
			}
			pinned[key] = v
		}
		round++
		for key, want := range pinned {
			if ok, current, err := m.Reserve(ctx, "", key, "other", time.Hour); ok || current != want || err != nil {
				t.Fatalf("round %d: %s holds %d bytes %.20q (%v %v), want %d bytes %.20q", round, key, len(current), current, ok, err, len(want), want)
			}
		}
		checkDataBound(t, m, "round "+strconv.Itoa(round), minGarbage+chunkSize)
	}
	churn(t, m, keys, rounds, value, func(i, round int) bool { return (i+round)%7 == 0 }, check)
}

// checkDataBound fails unless every shard's data counts as live the bytes
// its entries hold, and all of it is at most twice the live bytes and
// slack a shard.
func checkDataBound(t *testing.T, m *Memory, when string, slack int) {
	t.Helper()
	var data, liveBytes int
	for i := range m.shards {
		s := &m.shards[i]
		data += s.data.held
		liveBytes += sumSizes(s)
		if s.data.live() != sumSizes(s) {
			t.Fatalf("%s, shard %d: %d bytes of data, %d garbage, %d live", when, i, s.data.held, s.data.garbage, sumSizes(s))
		}
	}
	if bound := 2*liveBytes + len(m.shards)*slack; data > bound {
		t.Fatalf("%s: data %d bytes for %d live, want at most %d", when, data, liveBytes, bound)
	}
}

// churn runs rounds of writes of keys k0 to k<keys-1> in m: a key not
// held is reserved with value(i, round), one held released when
// release(i, round), else replaced with value(i, round). After each
// round it checks that every key held holds its value, then runs
// check (when not nil).
func churn(t *testing.T, m *Memory, keys, rounds int, value func(i, round int) string, release func(i, round int) bool, check func()) {
	t.Helper()
	ctx := context.Background()
	live := map[int]string{}
	for round := range rounds {
		for i := range keys {
			key := "k" + strconv.Itoa(i)
			old, held := live[i]
			switch {
			case !held:
				if ok, _, err := m.Reserve(ctx, "", key, value(i, round), time.Hour); !ok || err != nil {
					t.Fatalf("round %d: reserve %s: %v %v", round, key, ok, err)
				}
				live[i] = value(i, round)
			case release(i, round):
				if ok, err := m.Release(ctx, "", key, old); !ok || err != nil {
					t.Fatalf("round %d: release %s: %v %v", round, key, ok, err)
				}
				delete(live, i)
			default:
				if ok, err := m.Replace(ctx, "", key, old, value(i, round), time.Hour); !ok || err != nil {
					t.Fatalf("round %d: replace %s: %v %v", round, key, ok, err)
				}
				live[i] = value(i, round)
			}
		}
		for i, want := range live {
			if ok, current, err := m.Reserve(ctx, "", "k"+strconv.Itoa(i), "other", time.Hour); ok || current != want || err != nil {
				t.Fatalf("round %d: k%d holds %d bytes %.20q (%v %v), want %d bytes %.20q", round, i, len(current), current, ok, err, len(want), want)
			}
		}
		if check != nil {
			check()
		}
	}
}

func sumSizes(s *memoryShard) int {
	n := 0
	for _, it := range s.items {
		n += int(it.size)
	}
	return n
}

// TestMemoryExpiryMovesLater extends reservations (Replace, as an answer
// replaces a reservation) and checks that the heap keeps one expiry per
// entry, and that a full store finds room once the extended entries
// expire: their expiries move when their first time comes.
func TestMemoryExpiryMovesLater(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	m, err := NewMemory(MemoryOptions{MaxEntries: 500, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		key := "k" + strconv.Itoa(i)
		if ok, _, err := m.Reserve(ctx, "", key, "token", time.Second); !ok || err != nil {
			t.Fatalf("reserve %s: %v %v", key, ok, err)
		}
		if ok, err := m.Replace(ctx, "", key, "token", "answer", time.Minute); !ok || err != nil {
			t.Fatalf("replace %s: %v %v", key, ok, err)
		}
	}
	heap := 0
	for i := range m.shards {
		heap += len(m.shards[i].expiry)
	}
	if heap != 500 {
		t.Fatalf("%d expiries in the heaps for 500 entries, want one each", heap)
	}
	// Past the reservations' expiry, within the answers': still full.
	now = now.Add(30 * time.Second)
	if _, _, err := m.Reserve(ctx, "", "new", "token", time.Second); !errors.Is(err, ErrFull) {
		t.Fatalf("reserve in a store of live answers: %v, want ErrFull", err)
	}
	// Past the answers': room again, every entry dropped.
	now = now.Add(31 * time.Second)
	if ok, _, err := m.Reserve(ctx, "", "new", "token", time.Second); !ok || err != nil {
		t.Fatalf("reserve once the answers expired: %v %v", ok, err)
	}
	// Each shard drops its expired entries when it takes a new one; all
	// of them, when the store is full.
	m.dropAllExpired(m.clock(), 0)
	if n := m.Len(); n != 1 {
		t.Fatalf("Len %d once every shard dropped its expired entries, want 1", n)
	}
}

// TestMemoryShardDataFull fills a shard's data to its bound and checks
// that a write that needs more fails as a full store does, at once,
// rather than look for room that expired entries cannot make.
func TestMemoryShardDataFull(t *testing.T) {
	defer func(n uint64) { maxShardData = n }(maxShardData)
	maxShardData = 64
	ctx := context.Background()
	m, err := NewMemory(MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := m.Reserve(ctx, "", "key", strings.Repeat("v", 40), time.Minute); !ok || err != nil {
		t.Fatalf("reserve within the bound: %v %v", ok, err)
	}
	if ok, err := m.Replace(ctx, "", "key", strings.Repeat("v", 40), strings.Repeat("w", 60), time.Minute); ok || !errors.Is(err, ErrFull) {
		t.Fatalf("replace past the bound: %v %v, want ErrFull", ok, err)
	}
	if ok, _, err := m.Reserve(ctx, "", "key", "x", time.Minute); ok || err != nil {
		t.Fatalf("the entry lost its value: %v %v", ok, err)
	}
	long := strings.Repeat("k", 70)
	if ok, _, err := m.Reserve(ctx, "", long, "v", time.Minute); ok || !errors.Is(err, ErrFull) {
		t.Fatalf("reserve past the bound: %v %v, want ErrFull", ok, err)
	}
	if _, err := m.Allow(ctx, long, Limit{Count: 1, Period: time.Minute}); !errors.Is(err, ErrFull) {
		t.Fatalf("allow past the bound: %v, want ErrFull", err)
	}
	if n := m.Len(); n != 1 {
		t.Fatalf("Len %d, want 1", n)
	}
}

// TestMemoryOwnerRetryAfterLooks: the store's entries are looked
// through for an owner refused for its share once, not at each refusal:
// an owner that keeps asking, in a store of many other entries, is told
// its RetryAfter from the reservation found first until that one goes,
// its expiry moves, or the owner reserves again.
func TestMemoryOwnerRetryAfterLooks(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	m, err := NewMemory(MemoryOptions{MaxPerOwner: 2, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	for i := range 10_000 {
		if _, _, err := m.Reserve(ctx, "", "other-"+strconv.Itoa(i), "v", time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	owner := m.owners.digest("a")
	looks := func() int64 { return m.owners.shards[owner%memoryShards].looks }
	reserve := func(key string, ttl time.Duration) error {
		_, _, err := m.Reserve(ctx, "a", key, "v", ttl)
		return err
	}
	if err := reserve("a1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := reserve("a2", 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	refusals := func(n int, want time.Duration) {
		t.Helper()
		for range n {
			var e *Error
			if err := reserve("over", time.Minute); !errors.As(err, &e) || e.Err != ErrOwnerFull || e.RetryAfter != want {
				t.Fatalf("%v, want ErrOwnerFull with RetryAfter %v", err, want)
			}
		}
	}
	for _, step := range []struct {
		name   string
		change func()
		want   time.Duration
		looks  int64
	}{
		{"refused over and over", func() {}, time.Minute, 1},
		{"a1 renewed", func() {
			now = now.Add(time.Second)
			if ok, err := m.Replace(ctx, "a", "a1", "v", "v", time.Minute); !ok || err != nil {
				t.Fatal(ok, err)
			}
		}, time.Minute, 2},
		{"a2 released, a3 reserved", func() {
			if ok, err := m.Release(ctx, "a", "a2", "v"); !ok || err != nil {
				t.Fatal(ok, err)
			}
			if err := reserve("a3", 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}, 10 * time.Second, 3},
		{"other owners come and go", func() {
			for i := range 100 {
				if ok, err := m.Release(ctx, "", "other-"+strconv.Itoa(i), "v"); !ok || err != nil {
					t.Fatal(ok, err)
				}
			}
		}, 10 * time.Second, 3},
	} {
		step.change()
		refusals(1000, step.want)
		if got := looks(); got != step.looks {
			t.Errorf("%s: the store looked through %d times, want %d", step.name, got, step.looks)
		}
	}
}

// TestMemoryDataChunks reserves, replaces and releases entries of sizes
// around a chunk's bounds (none, within one, past maxInChunk, past a
// whole chunk) and checks every live entry's value after each round,
// and that each chunk counts the bytes its entries hold, and that a
// chunk let go of is held by no entry.
func TestMemoryDataChunks(t *testing.T) {
	m, err := NewMemory(MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{0, 1, 200, maxInChunk - 3, maxInChunk - 2, maxInChunk + 1, chunkSize + 1}
	const keys = 200
	value := func(i, round int) string {
		return strings.Repeat(strconv.Itoa(round%10), sizes[(i+round)%len(sizes)])
	}
	churn(t, m, keys, 15, value, func(i, round int) bool { return (i+round)%3 == 0 }, func() {
		for i := range m.shards {
			checkChunks(t, &m.shards[i])
		}
	})
}

// checkChunks checks that each chunk of s counts the bytes its entries
// hold, that no entry holds bytes of a chunk let go of, and that the
// shard's counts add up.
func checkChunks(t *testing.T, s *memoryShard) {
	t.Helper()
	d := &s.data
	inChunk := make([]int, len(d.chunks))
	for _, it := range s.items {
		if it.size == 0 {
			continue
		}
		c := d.chunks[it.off.chunk]
		if c.b == nil || int(it.off.off+it.size) > len(c.b) {
			t.Fatalf("an entry of %d bytes at %+v, past its chunk of %d", it.size, it.off, len(c.b))
		}
		inChunk[it.off.chunk] += int(it.size)
	}
	held := 0
	for i, c := range d.chunks {
		if c.live != inChunk[i] {
			t.Fatalf("chunk %d counts %d live bytes, its entries hold %d", i, c.live, inChunk[i])
		}
		held += len(c.b)
	}
	for _, i := range d.free {
		if d.chunks[i].b != nil {
			t.Fatalf("chunk %d is free and held", i)
		}
	}
	if held != d.held || d.live() != sumSizes(s) {
		t.Fatalf("%d bytes held (%d counted), %d live (%d counted)", held, d.held, sumSizes(s), d.live())
	}
}

// TestMemoryChunksLetGo turns a store's entries over as an edge's do,
// each expiring a window after it came, on a clock that moves a share
// of the window at every reservation, and checks that the chunks of the
// entries gone are let go of as they empty: each shard holds its live
// entries' bytes and at most a few chunks more, all along, where data
// made again only once half of it is garbage would hold up to twice its
// live entries'.
func TestMemoryChunksLetGo(t *testing.T) {
	ctx := context.Background()
	const window, live = time.Minute, 20_000
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	m, err := NewMemory(MemoryOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	// About five chunks of answers a shard.
	token, answer := strings.Repeat("t", 45), strings.Repeat("a", 1000)
	for i := range 4 * live {
		now = now.Add(window / live)
		key := "idem:" + strconv.Itoa(i)
		if ok, _, err := m.Reserve(ctx, "", key, token, window); !ok || err != nil {
			t.Fatalf("reserve %d: %v %v", i, ok, err)
		}
		if ok, err := m.Replace(ctx, "", key, token, answer, window); !ok || err != nil {
			t.Fatalf("replace %d: %v %v", i, ok, err)
		}
		if i%500 != 0 {
			continue
		}
		for j := range m.shards {
			s := &m.shards[j]
			if bound := s.data.live() + 2*chunkSize; s.data.held > bound {
				t.Fatalf("round %d: shard %d holds %d bytes for %d live, want at most %d", i, j, s.data.held, s.data.live(), bound)
			}
		}
	}
	for i := range m.shards {
		checkChunks(t, &m.shards[i])
	}
}

// TestMemoryClockMonotonic: a store on its default clock counts its
// times (expiries, limits' arrival times) from an epoch and by readings
// that both carry time.Now's monotonic reading (a time.Time shows one as
// " m="), so that the time between them is the monotonic clock's. A wall
// clock stepped forward (NTP's makestep, an operator fixing a clock that
// ran behind) then expires no reservation early, which would let a
// retry of a request in flight be delivered a second time, and one
// stepped back neither holds reservations nor empties buckets late.
func TestMemoryClockMonotonic(t *testing.T) {
	m, err := NewMemory(MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, at := range map[string]time.Time{"epoch": m.epoch, "reading": m.now()} {
		if s := at.String(); !strings.Contains(s, " m=") {
			t.Errorf("the store's %s %s has no monotonic reading", name, s)
		}
	}
}
