package store_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/store"
)

// TestMemoryBounded writes 100,000 distinct keys into a store with the
// default bound: it holds DefaultMaxEntries of them, counts the rest as
// evicted, and its heap stays where the first DefaultMaxEntries put it.
func TestMemoryBounded(t *testing.T) {
	const keys = 100_000
	ctx := context.Background()
	for _, kind := range []string{"reservations", "limits"} {
		t.Run(kind, func(t *testing.T) {
			clock := newFakeClock()
			m, err := store.NewMemory(store.MemoryOptions{Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			write := func(i int) {
				key := "caller-" + strconv.Itoa(i) + "/operation/0123456789abcdef"
				if kind == "reservations" {
					mustReserve(t, m, key, "reservation-token-0123456789abcdef", 10*time.Minute)
					return
				}
				if d, err := m.Allow(ctx, key, store.Limit{Count: 20, Period: time.Hour}); err != nil || !d.Allowed {
					t.Fatalf("allow: %+v, %v", d, err)
				}
			}
			before := heapInUse()
			for i := 0; i < store.DefaultMaxEntries; i++ {
				write(i)
			}
			full := heapInUse()
			if n := m.Len(); n > store.DefaultMaxEntries || n < store.DefaultMaxEntries*9/10 {
				t.Fatalf("%d entries after %d keys", n, store.DefaultMaxEntries)
			}
			for i := store.DefaultMaxEntries; i < keys; i++ {
				write(i)
			}
			after := heapInUse()
			runtime.KeepAlive(m)
			if n := m.Len(); n != store.DefaultMaxEntries {
				t.Fatalf("%d entries after %d keys, want %d", n, keys, store.DefaultMaxEntries)
			}
			if got, want := m.Evictions(), uint64(keys-store.DefaultMaxEntries); got != want {
				t.Fatalf("%d evictions, want %d", got, want)
			}
			// Nine times as many keys again may not grow the heap by more
			// than half of what the first bound's worth took (the maps
			// settle about 15% above it under churn); a store that kept
			// every key would grow ninefold.
			grown := int64(after) - int64(full)
			filled := int64(full) - int64(before)
			t.Logf("heap: %d bytes for the first %d keys (%d per entry), %+d bytes after %d keys",
				filled, store.DefaultMaxEntries, filled/store.DefaultMaxEntries, grown, keys)
			if grown > filled/2 {
				t.Fatalf("heap grew by %d bytes past the bound (%d bytes held the first %d keys)", grown, filled, store.DefaultMaxEntries)
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

// TestMemoryEviction: when full, the store drops expired entries first,
// then the entry closest to expiring; only the latter counts as an
// eviction, and is reported to OnEvict.
func TestMemoryEviction(t *testing.T) {
	ctx := context.Background()
	const max = 64 // one shard
	cases := []struct {
		name      string
		run       func(t *testing.T, m *store.Memory, clock *fakeClock)
		evictions uint64
	}{
		{"expired entries go first, uncounted", func(t *testing.T, m *store.Memory, clock *fakeClock) {
			for i := 0; i < max; i++ {
				ttl := time.Hour
				if i%2 == 0 {
					ttl = time.Minute
				}
				mustReserve(t, m, fmt.Sprint(i), "v", ttl)
			}
			clock.Advance(time.Minute)
			mustReserve(t, m, "new", "v", time.Hour)
			if n := m.Len(); n != max/2+1 {
				t.Fatalf("%d entries, want the %d live ones and the new one", n, max/2)
			}
			for i := 1; i < max; i += 2 {
				if ok, _, _ := m.Reserve(ctx, fmt.Sprint(i), "w", time.Hour); ok {
					t.Fatalf("live key %d was dropped", i)
				}
			}
		}, 0},
		{"then the entry closest to expiring", func(t *testing.T, m *store.Memory, clock *fakeClock) {
			for i := 0; i < max; i++ {
				ttl := time.Hour
				if i == 17 {
					ttl = 30 * time.Minute
				}
				mustReserve(t, m, fmt.Sprint(i), "v", ttl)
			}
			mustReserve(t, m, "new", "v", time.Hour)
			if n := m.Len(); n != max {
				t.Fatalf("%d entries, want %d", n, max)
			}
			if ok, _, _ := m.Reserve(ctx, "17", "w", time.Hour); !ok {
				t.Fatal("key 17, closest to expiring, was kept")
			}
		}, 2},
		{"with one TTL, the oldest", func(t *testing.T, m *store.Memory, clock *fakeClock) {
			for i := 0; i < max; i++ {
				mustReserve(t, m, fmt.Sprint(i), "v", time.Hour)
				clock.Advance(time.Second)
			}
			mustReserve(t, m, "new", "v", time.Hour)
			if ok, _, _ := m.Reserve(ctx, "1", "w", time.Hour); ok {
				t.Fatal("key 1 was evicted before key 0")
			}
			if ok, _, _ := m.Reserve(ctx, "0", "w", time.Hour); !ok {
				t.Fatal("key 0, the oldest, was kept")
			}
		}, 2},
		{"a replaced entry lives from its replacement", func(t *testing.T, m *store.Memory, clock *fakeClock) {
			for i := 0; i < max; i++ {
				mustReserve(t, m, fmt.Sprint(i), "v", time.Hour)
				clock.Advance(time.Second)
			}
			if ok, err := m.Replace(ctx, "0", "v", "answer", time.Hour); err != nil || !ok {
				t.Fatalf("replace: %v, %v", ok, err)
			}
			mustReserve(t, m, "new", "v", time.Hour)
			if ok, current, _ := m.Reserve(ctx, "0", "w", time.Hour); ok || current != "answer" {
				t.Fatal("the replaced key 0 was evicted")
			}
			if ok, _, _ := m.Reserve(ctx, "1", "w", time.Hour); !ok {
				t.Fatal("key 1, now the oldest, was kept")
			}
		}, 2},
		{"released entries free their room", func(t *testing.T, m *store.Memory, clock *fakeClock) {
			for i := 0; i < max; i++ {
				mustReserve(t, m, fmt.Sprint(i), "v", time.Hour)
			}
			if ok, err := m.Release(ctx, "5", "v"); err != nil || !ok {
				t.Fatalf("release: %v, %v", ok, err)
			}
			mustReserve(t, m, "new", "v", time.Hour)
		}, 0},
		{"limits and reservations share the bound", func(t *testing.T, m *store.Memory, clock *fakeClock) {
			for i := 0; i < max; i++ {
				mustReserve(t, m, fmt.Sprint(i), "v", time.Hour)
			}
			// A limit's entry lives until its bucket is full again: 3m
			// for one event of 20 per 1h, sooner than every reservation.
			if d, err := m.Allow(ctx, "caller", store.Limit{Count: 20, Period: time.Hour}); err != nil || !d.Allowed {
				t.Fatalf("allow: %+v, %v", d, err)
			}
			if n := m.Len(); n != max {
				t.Fatalf("%d entries, want %d", n, max)
			}
			mustReserve(t, m, "new", "v", time.Hour)
			// The evicted limit starts again with its whole budget.
			if d, _ := m.Allow(ctx, "caller", store.Limit{Count: 20, Period: time.Hour}); d.Remaining != 19 {
				t.Fatalf("the evicted limit remembered its event: %+v", d)
			}
		}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			var onEvict uint64
			m, err := store.NewMemory(store.MemoryOptions{MaxEntries: max, Now: clock.Now, OnEvict: func() { onEvict++ }})
			if err != nil {
				t.Fatal(err)
			}
			tc.run(t, m, clock)
			if got := m.Evictions(); got != tc.evictions {
				t.Fatalf("%d evictions, want %d", got, tc.evictions)
			}
			if onEvict != tc.evictions {
				t.Fatalf("OnEvict called %d times, want %d", onEvict, tc.evictions)
			}
		})
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
			// A store with room for n entries holds n of n+100 keys when
			// the keys spread over its shards, and always at most n.
			for i := 0; i < want+100 && i < 20_000; i++ {
				mustReserve(t, m, strconv.Itoa(i), "v", time.Hour)
			}
			if n := m.Len(); n > want || (want <= 64 && n != want) {
				t.Fatalf("%d entries, bound %d", n, want)
			}
		})
	}
}
