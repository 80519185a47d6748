package store_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/store"
)

// TestMemoryBounded writes 100,000 distinct keys into a store bounded at
// 10,000: it holds 10,000 of them, refuses the rest with ErrFull, and its
// heap stays where the first 10,000 put it; once they expire, it takes
// new keys again.
func TestMemoryBounded(t *testing.T) {
	const keys, bound = 100_000, 10_000
	ctx := context.Background()
	for _, kind := range []string{"reservations", "limits"} {
		t.Run(kind, func(t *testing.T) {
			clock := newFakeClock()
			m, err := store.NewMemory(store.MemoryOptions{MaxEntries: bound, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			write := func(i int) error {
				key := "caller-" + strconv.Itoa(i) + "/operation/0123456789abcdef"
				if kind == "reservations" {
					ok, _, err := m.Reserve(ctx, "", key, "reservation-token-0123456789abcdef", 10*time.Minute)
					if err == nil && !ok {
						t.Fatalf("reserve %d: taken", i)
					}
					return err
				}
				d, err := m.Allow(ctx, key, store.Limit{Count: 20, Period: time.Hour})
				if err == nil && !d.Allowed {
					t.Fatalf("allow %d: %+v", i, d)
				}
				return err
			}
			before := heapInUse()
			for i := 0; i < bound; i++ {
				if err := write(i); err != nil {
					t.Fatalf("key %d of %d: %v", i, bound, err)
				}
			}
			full := heapInUse()
			for i := bound; i < keys; i++ {
				if err := write(i); !errors.Is(err, store.ErrFull) {
					t.Fatalf("key %d past the bound: %v, want ErrFull", i, err)
				}
			}
			after := heapInUse()
			runtime.KeepAlive(m)
			if n := m.Len(); n != bound {
				t.Fatalf("%d entries after %d keys, want %d", n, keys, bound)
			}
			// The refused keys may not grow the heap by more than a tenth
			// of what the bound's worth took; a store that kept every key
			// would grow tenfold.
			grown := int64(after) - int64(full)
			filled := int64(full) - int64(before)
			t.Logf("heap: %d bytes for %d keys (%d per entry), %+d bytes after %d keys",
				filled, bound, filled/bound, grown, keys)
			if grown > filled/10 {
				t.Fatalf("heap grew by %d bytes past the bound (%d bytes held the first %d keys)", grown, filled, bound)
			}
			clock.Advance(time.Hour)
			if err := write(keys); err != nil {
				t.Fatalf("a new key once every entry expired: %v", err)
			}
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestMemoryFull: a store that holds MaxEntries live entries drops none of
// them; it refuses a write that needs a new entry with ErrFull, while the
// entries it holds go on being read, replaced, released and counted. An
// expired or released entry, in any shard, makes room.
func TestMemoryFull(t *testing.T) {
	ctx := context.Background()
	const max = 100 // spread over the shards
	limit := store.Limit{Count: 20, Period: time.Hour}
	full := func(t *testing.T, m *store.Memory, entries int) {
		t.Helper()
		if _, _, err := m.Reserve(ctx, "", "not held", "v", time.Hour); !errors.Is(err, store.ErrFull) {
			t.Fatalf("reserve of a new key: %v, want ErrFull", err)
		}
		if _, err := m.Allow(ctx, "new caller", limit); !errors.Is(err, store.ErrFull) {
			t.Fatalf("allow of a new key: %v, want ErrFull", err)
		}
		if n := m.Len(); n != entries {
			t.Fatalf("%d entries, want %d", n, entries)
		}
	}
	fill := func(t *testing.T, m *store.Memory, ttl func(i int) time.Duration) {
		t.Helper()
		for i := 0; i < max; i++ {
			mustReserve(t, m, strconv.Itoa(i), "v", ttl(i))
		}
	}
	hour := func(int) time.Duration { return time.Hour }
	cases := []struct {
		name string
		run  func(t *testing.T, m *store.Memory, clock *fakeClock)
	}{
		{"full of live entries, it refuses new keys and keeps every entry", func(t *testing.T, m *store.Memory, clock *fakeClock) {
			fill(t, m, hour)
			clock.Advance(59 * time.Minute)
			full(t, m, max)
			for i := 0; i < max; i++ {
				if ok, current, err := m.Reserve(ctx, "", strconv.Itoa(i), "w", time.Hour); ok || current != "v" || err != nil {
					t.Fatalf("key %d: %v, %q, %v", i, ok, current, err)
				}
			}
		}},
		{"its entries are still replaced, released and counted", func(t *testing.T, m *store.Memory, clock *fakeClock) {
			for i := 0; i < max-1; i++ {
				mustReserve(t, m, strconv.Itoa(i), "v", time.Hour)
			}
			if d, err := m.Allow(ctx, "caller", limit); err != nil || !d.Allowed {
				t.Fatalf("allow: %+v, %v", d, err)
			}
			full(t, m, max)
			if ok, err := m.Replace(ctx, "", "0", "v", "answer", time.Hour); err != nil || !ok {
				t.Fatalf("replace: %v, %v", ok, err)
			}
			if d, err := m.Allow(ctx, "caller", limit); err != nil || !d.Allowed || d.Remaining != 18 {
				t.Fatalf("allow of a held limit: %+v, %v", d, err)
			}
			if ok, err := m.Release(ctx, "", "1", "v"); err != nil || !ok {
				t.Fatalf("release: %v, %v", ok, err)
			}
			mustReserve(t, m, "new", "v", time.Hour)
			full(t, m, max)
		}},
		{"expired entries, in any shard, make room", func(t *testing.T, m *store.Memory, clock *fakeClock) {
			fill(t, m, func(i int) time.Duration {
				if i%2 == 0 {
					return time.Minute
				}
				return time.Hour
			})
			clock.Advance(time.Minute)
			for i := 0; i < max/2; i++ {
				mustReserve(t, m, "new-"+strconv.Itoa(i), "v", time.Hour)
			}
			full(t, m, max)
			for i := 1; i < max; i += 2 {
				if ok, _, _ := m.Reserve(ctx, "", strconv.Itoa(i), "w", time.Hour); ok {
					t.Fatalf("live key %d was dropped", i)
				}
			}
		}},
		{"a limit's entry lives until its bucket is full again", func(t *testing.T, m *store.Memory, clock *fakeClock) {
			for i := 0; i < max-1; i++ {
				mustReserve(t, m, strconv.Itoa(i), "v", time.Hour)
			}
			if d, err := m.Allow(ctx, "caller", limit); err != nil || !d.Allowed {
				t.Fatalf("allow: %+v, %v", d, err)
			}
			// One event of 20 per hour comes back in 3m.
			clock.Advance(3*time.Minute - time.Second)
			full(t, m, max)
			clock.Advance(time.Second)
			mustReserve(t, m, "new", "v", time.Hour)
		}},
		{"a larger bound makes room, a smaller one keeps what is held", func(t *testing.T, m *store.Memory, clock *fakeClock) {
			fill(t, m, hour)
			if err := m.SetMaxEntries(max + 1); err != nil {
				t.Fatal(err)
			}
			mustReserve(t, m, "new", "v", time.Hour)
			if err := m.SetMaxEntries(max - 1); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				if ok, err := m.Release(ctx, "", strconv.Itoa(i), "v"); err != nil || !ok {
					t.Fatalf("release: %v, %v", ok, err)
				}
			}
			full(t, m, max-1)
			if ok, err := m.Release(ctx, "", "2", "v"); err != nil || !ok {
				t.Fatalf("release: %v, %v", ok, err)
			}
			mustReserve(t, m, "0", "v", time.Hour)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			m, err := store.NewMemory(store.MemoryOptions{MaxEntries: max, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			tc.run(t, m, clock)
		})
	}
}

// TestMemoryFullConcurrent: requests racing for the last room of a store
// and for the same keys: the store takes exactly MaxEntries entries, each
// key once, and refuses the rest with ErrFull.
func TestMemoryFullConcurrent(t *testing.T) {
	const max, workers, keys = 100, 8, 400
	m, err := store.NewMemory(store.MemoryOptions{MaxEntries: max, Now: newFakeClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	var reserved, full atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			// Every worker tries every key, each from another start.
			for i := range keys {
				key := strconv.Itoa((i + w*keys/workers) % keys)
				ok, _, err := m.Reserve(context.Background(), "", key, "v", time.Hour)
				switch {
				case errors.Is(err, store.ErrFull):
					full.Add(1)
				case err != nil:
					t.Error(err)
				case ok:
					reserved.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := reserved.Load(); got != max {
		t.Errorf("%d keys reserved, want %d", got, max)
	}
	if n := m.Len(); n != max {
		t.Errorf("%d entries, want %d", n, max)
	}
	if full.Load() == 0 {
		t.Error("no reservation was refused")
	}
}

func TestMemoryOptions(t *testing.T) {
	cases := []struct {
		max     int
		wantErr bool
	}{
		{-1, true},
		{0, false},
		{1, false},
		{63, false},
		{1_000_000, false},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.max), func(t *testing.T) {
			m, err := store.NewMemory(store.MemoryOptions{MaxEntries: tc.max})
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			want := tc.max
			if want == 0 {
				want = store.DefaultMaxEntries
			}
			// A store with room for n entries takes n keys, however they
			// spread over its shards, and refuses the next one.
			n := min(want, 20_000)
			for i := 0; i < n; i++ {
				mustReserve(t, m, strconv.Itoa(i), "v", time.Hour)
			}
			_, _, err = m.Reserve(context.Background(), "", "one more", "v", time.Hour)
			if full := errors.Is(err, store.ErrFull); full != (n == want) {
				t.Fatalf("key %d of a bound of %d: %v", n+1, want, err)
			}
		})
	}
}

// TestMemoryFullChurn: workers reserve and release long-lived keys,
// write short-lived ones, take events from limits and move the clock, on
// a store too small for all of it, so that writes find it full, make
// room from expired entries of other shards and race each other for it.
// No key is held by two at once, no held key is dropped, no limit gives
// more than its count, and once everything has expired the store takes
// exactly MaxEntries new keys again: its count did not drift.
func TestMemoryFullChurn(t *testing.T) {
	const max, workers, rounds = 24, 6, 3000
	const held, short, limits = 16, 32, 8
	ctx := context.Background()
	clock := newFakeClock()
	m, err := store.NewMemory(store.MemoryOptions{MaxEntries: max, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	limit := store.Limit{Count: 3, Period: time.Hour}
	var holders [held]atomic.Int32
	var allowed [limits]atomic.Int32
	var full atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				i := (r*7 + w*13) % 97
				var err error
				switch r % 4 {
				case 0:
					k := i % held
					token := strconv.Itoa(w) + "-" + strconv.Itoa(r)
					var ok bool
					ok, _, err = m.Reserve(ctx, "", "held"+strconv.Itoa(k), token, time.Hour)
					if ok {
						if !holders[k].CompareAndSwap(0, int32(w+1)) {
							t.Errorf("held%d reserved by two at once", k)
							return
						}
						runtime.Gosched()
						holders[k].Store(0)
						if ok, err := m.Release(ctx, "", "held"+strconv.Itoa(k), token); err != nil || !ok {
							t.Errorf("held%d: a live reservation was dropped: %v, %v", k, ok, err)
							return
						}
					}
				case 1:
					_, _, err = m.Reserve(ctx, "", "short"+strconv.Itoa(i%short), "v", time.Duration(1+i%5)*time.Millisecond)
				case 2:
					k := i % limits
					var d store.Decision
					d, err = m.Allow(ctx, "limit"+strconv.Itoa(k), limit)
					if err == nil && d.Allowed && allowed[k].Add(1) > int32(limit.Count) {
						t.Errorf("limit%d allowed more than %d events", k, limit.Count)
						return
					}
				case 3:
					if w == 0 {
						clock.Advance(time.Millisecond)
					}
				}
				switch {
				case errors.Is(err, store.ErrFull):
					full.Add(1)
				case err != nil:
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if full.Load() == 0 {
		t.Error("the store was never full")
	}
	if n := m.Len(); n > max {
		t.Errorf("%d entries, over the bound %d", n, max)
	}
	clock.Advance(2 * time.Hour)
	for i := range max {
		mustReserve(t, m, "after"+strconv.Itoa(i), "v", time.Hour)
	}
	if _, _, err := m.Reserve(ctx, "", "one more", "v", time.Hour); !errors.Is(err, store.ErrFull) {
		t.Errorf("reserve over the bound: %v, want ErrFull", err)
	}
	if n := m.Len(); n != max {
		t.Errorf("%d entries, want %d", n, max)
	}
}

// TestMemoryAllowAllFull: AllowAll that needs a new bucket in a full
// store fails with ErrFull and takes nothing from the buckets it has,
// and succeeds once an entry has expired.
func TestMemoryAllowAllFull(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m, err := store.NewMemory(store.MemoryOptions{MaxEntries: 2, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	limit := store.Limit{Count: 2, Period: time.Hour}
	if d, err := m.AllowN(ctx, "a", limit, 1); err != nil || !d.Allowed {
		t.Fatalf("a: %+v, %v", d, err)
	}
	mustReserve(t, m, "r", "v", time.Minute)
	takes := []store.Take{{"a", limit, 1}, {"b", limit, 1}}
	if _, err := m.AllowAll(ctx, takes); !errors.Is(err, store.ErrFull) {
		t.Fatalf("a and a new b in a full store: %v, want ErrFull", err)
	}
	if n := m.Len(); n != 2 {
		t.Fatalf("%d entries, want the 2 held before", n)
	}
	clock.Advance(time.Minute)
	ds, err := m.AllowAll(ctx, takes)
	if err != nil || !ds[0].Allowed || ds[0].Remaining != 0 || ds[1].Remaining != 1 {
		t.Fatalf("once the reservation expired: %+v, %v", ds, err)
	}
}

// TestMemoryAllowAllRoomForSome: AllowAll that needs more new buckets
// than a store has room for fails with ErrFull, once, whether the store
// has room for none of them or for some, leaving the store as it was,
// and succeeds once expired entries make room for all.
func TestMemoryAllowAllRoomForSome(t *testing.T) {
	limit := store.Limit{Count: 2, Period: time.Hour}
	takes := []store.Take{{"a", limit, 1}, {"b", limit, 1}, {"c", limit, 1}}
	for _, tc := range []struct {
		name     string
		reserved int // of a store of 3 entries
	}{
		{"room for none", 3},
		{"room for one", 2},
		{"room for two", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			clock := newFakeClock()
			m, err := store.NewMemory(store.MemoryOptions{MaxEntries: 3, Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for i := range tc.reserved {
				mustReserve(t, m, fmt.Sprint("r", i), "v", time.Minute)
			}
			if _, err := m.AllowAll(ctx, takes); !errors.Is(err, store.ErrFull) {
				t.Fatalf("three new buckets: %v, want ErrFull", err)
			}
			if n := m.Len(); n != tc.reserved {
				t.Fatalf("%d entries, want the %d held before", n, tc.reserved)
			}
			clock.Advance(time.Minute)
			ds, err := m.AllowAll(ctx, takes)
			if err != nil || !ds[0].Allowed || !ds[1].Allowed || !ds[2].Allowed {
				t.Fatalf("once the reservations expired: %+v, %v", ds, err)
			}
		})
	}
}

// TestMemoryFullBucketTakenAgain: a limit's bucket that is full again is
// taken as a new one, its whole budget, while the store holds one entry
// for it, and without an allocation: a caller's bucket is full again
// between calls far apart, and its entry, not yet dropped, serves again.
func TestMemoryFullBucketTakenAgain(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m, err := store.NewMemory(store.MemoryOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	limit := store.Limit{Count: 5, Period: time.Minute}
	allocs := testing.AllocsPerRun(100, func() {
		clock.Advance(time.Minute)
		d, err := m.AllowN(ctx, "caller", limit, 2)
		if err != nil || !d.Allowed || d.Remaining != 3 {
			t.Fatalf("a full bucket: %+v, %v; want 3 remaining", d, err)
		}
		if n := m.Len(); n != 1 {
			t.Fatalf("%d entries, want 1", n)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations to take from a bucket full again, want 0", allocs)
	}
	// Taken from within its period, it is the same bucket still.
	if d, err := m.AllowN(ctx, "caller", limit, 3); err != nil || !d.Allowed || d.Remaining != 0 {
		t.Fatalf("the rest of the budget: %+v, %v", d, err)
	}
	if d, err := m.AllowN(ctx, "caller", limit, 1); err != nil || d.Allowed {
		t.Fatalf("over the budget: %+v, %v", d, err)
	}
}

// TestMemoryAllowAllInto: AllowAllInto decides as AllowAll, into the
// caller's decisions, and keeps neither slice: with both on the caller's
// stack, taking from buckets the store holds costs no allocation.
func TestMemoryAllowAllInto(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m, err := store.NewMemory(store.MemoryOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	small, large := store.Limit{Count: 4, Period: time.Minute}, store.Limit{Count: 1000, Period: time.Hour}
	takes := [...]store.Take{{"a", small, 3}, {"b", large, 2}}
	if ds, err := m.AllowAll(ctx, takes[:]); err != nil || !ds[0].Allowed || ds[0].Remaining != 1 || ds[1].Remaining != 998 {
		t.Fatalf("AllowAll: %+v, %v", ds, err)
	}
	// Taken and given back, the buckets are as they were for each run.
	allocs := testing.AllocsPerRun(100, func() {
		ts := [...]store.Take{{"a", small, 1}, {"b", large, 2}}
		var ds [len(ts)]store.Decision
		if err := m.AllowAllInto(ts[:], ds[:]); err != nil || !ds[0].Allowed || !ds[1].Allowed || ds[0].Remaining != 0 || ds[1].Remaining != 996 {
			t.Fatalf("%+v, %v; want both allowed", ds, err)
		}
		if err := m.RefundAll(ctx, ts[:], 0); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
	ds := make([]store.Decision, 2)
	if err := m.AllowAllInto(takes[:], ds); err != nil || ds[0].Allowed || ds[0].RetryAfter != 30*time.Second || ds[1] != (store.Decision{}) {
		t.Fatalf("%+v, %v; want a's refusal alone", ds, err)
	}
}

// TestMemoryMaxPerOwner: an owner holds at most MaxPerOwner live
// reservations, while the store has room for other owners' and for
// reservations of no owner; a repeat of a key the owner holds is still
// answered with its value; a reservation released or expired gives its
// owner room again, and a replaced one counts as before.
func TestMemoryMaxPerOwner(t *testing.T) {
	clock := newFakeClock()
	m, err := store.NewMemory(store.MemoryOptions{MaxEntries: 10, MaxPerOwner: 2, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	reserve := func(owner, key string) error {
		t.Helper()
		ok, _, err := m.Reserve(context.Background(), owner, key, "v-"+key, time.Minute)
		if err == nil && !ok {
			t.Fatalf("%s: held already", key)
		}
		return err
	}
	for _, k := range []string{"a1", "a2"} {
		if err := reserve("a", k); err != nil {
			t.Fatal(err)
		}
	}
	err = reserve("a", "a3")
	if !errors.Is(err, store.ErrOwnerFull) || errors.Is(err, store.ErrFull) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a3 over a's share: %v, want ErrOwnerFull alone", err)
	}
	if ok, current, err := m.Reserve(context.Background(), "a", "a1", "other", time.Minute); err != nil || ok || current != "v-a1" {
		t.Fatalf("a repeat of a1: %v %q %v, want its value", ok, current, err)
	}
	for _, k := range []string{"b1", "b2"} {
		if err := reserve("b", k); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	if err := reserve("", "none"); err != nil {
		t.Fatalf("no owner: %v", err)
	}
	if ok, err := m.Replace(context.Background(), "a", "a2", "v-a2", "answer", time.Minute); err != nil || !ok {
		t.Fatalf("replace a2: %v %v", ok, err)
	}
	if err := reserve("a", "a3"); !errors.Is(err, store.ErrOwnerFull) {
		t.Fatalf("a3 after a replace: %v, want ErrOwnerFull", err)
	}
	if ok, err := m.Release(context.Background(), "a", "a1", "v-a1"); err != nil || !ok {
		t.Fatalf("release a1: %v %v", ok, err)
	}
	if err := reserve("a", "a3"); err != nil {
		t.Fatalf("a3 once a1 is released: %v", err)
	}
	clock.Advance(time.Minute)
	for _, k := range []string{"a4", "a5"} {
		if err := reserve("a", k); err != nil {
			t.Fatalf("%s once a's reservations expired: %v", k, err)
		}
	}
	if n := m.Len(); n != 2 {
		t.Errorf("%d entries, want a4 and a5", n)
	}
}

// TestMemoryFullAtOwnersShare: an owner at its share is refused with
// ErrOwnerFull while the store has room for others, and with ErrFull once
// the store holds its bound of entries: the store is then what is full,
// for every owner, and a caller must not be told that its own share is
// what refused it.
func TestMemoryFullAtOwnersShare(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxEntries int
		want, not  error
	}{
		{"room for others", 3, store.ErrOwnerFull, store.ErrFull},
		{"the store full too", 2, store.ErrFull, store.ErrOwnerFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := store.NewMemory(store.MemoryOptions{MaxEntries: tc.maxEntries, MaxPerOwner: 2, Now: newFakeClock().Now})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for _, k := range []string{"a1", "a2"} {
				if ok, _, err := m.Reserve(context.Background(), "a", k, "v", time.Minute); err != nil || !ok {
					t.Fatalf("%s: %v %v", k, ok, err)
				}
			}
			_, _, err = m.Reserve(context.Background(), "a", "a3", "v", time.Minute)
			if !errors.Is(err, tc.want) || errors.Is(err, tc.not) {
				t.Fatalf("a3 over a's share: %v, want %v alone", err, tc.want)
			}
		})
	}
}

// TestMemoryFullTakesNoShare: a reservation the full store refuses
// counts nothing in its owner's share: once the store has room, the
// owner reserves its whole share.
func TestMemoryFullTakesNoShare(t *testing.T) {
	m, err := store.NewMemory(store.MemoryOptions{MaxEntries: 1, MaxPerOwner: 1, Now: newFakeClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	reserve := func(owner, key string) error {
		_, _, err := m.Reserve(context.Background(), owner, key, "v", time.Minute)
		return err
	}
	if err := reserve("b", "b1"); err != nil {
		t.Fatal(err)
	}
	if err := reserve("a", "a1"); !errors.Is(err, store.ErrFull) {
		t.Fatalf("a1 in the full store: %v, want ErrFull", err)
	}
	if err := m.SetMaxEntries(10); err != nil {
		t.Fatal(err)
	}
	if err := reserve("a", "a1"); err != nil {
		t.Fatalf("a1 once the store has room: %v, want it reserved", err)
	}
}

// TestMemoryMaxPerOwnerConcurrent: reservations of one owner racing for
// distinct keys get exactly its share, while another owner's all pass.
func TestMemoryMaxPerOwnerConcurrent(t *testing.T) {
	m, err := store.NewMemory(store.MemoryOptions{MaxEntries: 1000, MaxPerOwner: 30})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	raceOwnerShare(t, m, 30)
	if n := m.Len(); n != 50 {
		t.Errorf("%d entries, want 50", n)
	}
}

// raceOwnerShare races 100 reservations of distinct keys by owner "a"
// against s, whose share is share (below 100), with 20 of owner "b":
// exactly share of a's are reserved, the rest refused with ErrOwnerFull,
// and all of b's pass.
func raceOwnerShare(t *testing.T, s store.Store, share int64) {
	t.Helper()
	var reserved, refused, other atomic.Int64
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			ok, _, err := s.Reserve(context.Background(), "a", "a"+strconv.Itoa(i), "v", time.Minute)
			switch {
			case err == nil && ok:
				reserved.Add(1)
			case errors.Is(err, store.ErrOwnerFull):
				refused.Add(1)
			default:
				t.Errorf("a%d: %v %v", i, ok, err)
			}
		})
		if i < 20 {
			wg.Go(func() {
				if ok, _, err := s.Reserve(context.Background(), "b", "b"+strconv.Itoa(i), "v", time.Minute); err == nil && ok {
					other.Add(1)
				}
			})
		}
	}
	wg.Wait()
	if reserved.Load() != share || refused.Load() != 100-share || other.Load() != 20 {
		t.Fatalf("a reserved %d, refused %d; b reserved %d; want %d, %d, 20", reserved.Load(), refused.Load(), other.Load(), share, 100-share)
	}
}

// TestMemoryOwnerFollowsKey: as in a Redis store (see
// TestRedisOwnerFollowsKey), a reservation renewed or replaced counts
// for its owner until its new TTL is over, not the one it was reserved
// with, and one released gives its owner the share back at once.
func TestMemoryOwnerFollowsKey(t *testing.T) {
	clock := newFakeClock()
	m, err := store.NewMemory(store.MemoryOptions{MaxEntries: 10, MaxPerOwner: 2, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, k := range []string{"b1", "b2"} {
		if ok, _, err := m.Reserve(context.Background(), "b", k, "v-"+k, time.Minute); err != nil || !ok {
			t.Fatalf("%s: %v %v", k, ok, err)
		}
	}
	if ok, err := m.Replace(context.Background(), "b", "b1", "v-b1", "v-b1", time.Hour); err != nil || !ok {
		t.Fatalf("renew b1: %v %v", ok, err)
	}
	if ok, err := m.Replace(context.Background(), "b", "b2", "v-b2", "answer", time.Hour); err != nil || !ok {
		t.Fatalf("replace b2: %v %v", ok, err)
	}
	clock.Advance(2 * time.Minute)
	if _, _, err := m.Reserve(context.Background(), "b", "b3", "v", time.Minute); !errors.Is(err, store.ErrOwnerFull) {
		t.Fatalf("b3 past the TTL b1 and b2 were reserved with: %v, want ErrOwnerFull", err)
	}
	if ok, err := m.Release(context.Background(), "b", "b1", "v-b1"); err != nil || !ok {
		t.Fatalf("release b1: %v %v", ok, err)
	}
	if ok, _, err := m.Reserve(context.Background(), "b", "b3", "v", time.Minute); err != nil || !ok {
		t.Fatalf("b3 once b1 is released: %v %v", ok, err)
	}
}

// TestMemoryLive: Live counts the entries that have not expired by the
// store's clock, dropping the others, where Len, read without a write
// since, still counts them; an entry that lives on is kept.
func TestMemoryLive(t *testing.T) {
	clock := newFakeClock()
	m, err := store.NewMemory(store.MemoryOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for i := range 10 {
		mustReserve(t, m, fmt.Sprint("short-", i), "v", time.Minute)
	}
	mustReserve(t, m, "long", "v", time.Hour)
	if n := m.Live(); n != 11 {
		t.Fatalf("Live %d before any expired, want 11", n)
	}
	clock.Advance(time.Minute)
	if n := m.Len(); n != 11 {
		t.Fatalf("Len %d with no write since the expiry, want the 11 not yet dropped", n)
	}
	if n := m.Live(); n != 1 {
		t.Errorf("Live %d once 10 expired, want 1", n)
	}
	if n := m.Len(); n != 1 {
		t.Errorf("Len %d after Live, want 1: the expired entries are dropped", n)
	}
	if ok, _, err := m.Reserve(context.Background(), "", "long", "w", time.Hour); err != nil || ok {
		t.Errorf("the live entry after Live: reserved %v, %v; want it held", ok, err)
	}
}
