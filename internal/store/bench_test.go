package store_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/store"
	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// benchKeys are distinct keys shaped like the edge's (caller, application,
// operation, operationId), made before the clock starts.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "tid/oid-" + strconv.Itoa(i) + "/app-0123456789/startPhoneAudio/op-" + strconv.Itoa(i*7919)
	}
	return keys
}

func newBenchMemory(b *testing.B) *store.Memory {
	m, err := store.NewMemory(store.MemoryOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkMemoryReserveRelease is the idempotency round of a request that
// the edge refused or that certainly did not reach a pool.
func BenchmarkMemoryReserveRelease(b *testing.B) {
	m := newBenchMemory(b)
	keys := benchKeys(4096)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			key := keys[i&4095]
			i++
			if ok, _, err := m.Reserve(ctx, "", key, "token", 10*time.Minute); !ok || err != nil {
				b.Fatal("reserve failed")
			}
			if ok, err := m.Release(ctx, "", key, "token"); !ok || err != nil {
				b.Fatal("release failed")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var worker atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			// Each worker its own keys, so every reserve succeeds.
			own := benchKeys(256)
			w := strconv.FormatInt(worker.Add(1), 10)
			for i := range own {
				own[i] = w + "/" + own[i]
			}
			i := 0
			for pb.Next() {
				key := own[i&255]
				i++
				if ok, _, err := m.Reserve(ctx, "", key, "token", 10*time.Minute); !ok || err != nil {
					b.Fatal("reserve failed")
				}
				if ok, err := m.Release(ctx, "", key, "token"); !ok || err != nil {
					b.Fatal("release failed")
				}
			}
		})
	})
}

// BenchmarkMemoryReserveOwned is the idempotency round of a caller's
// request with a share (room: Reserve and its release), in a store of
// a hundred thousand entries where other callers are at their shares
// and were refused; and the refusal of a caller at its share (full),
// over and over, which must not cost as much as the store holds.
func BenchmarkMemoryReserveOwned(b *testing.B) {
	m, err := store.NewMemory(store.MemoryOptions{MaxPerOwner: 99})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	keys := benchKeys(99 * 1000)
	for i, k := range keys {
		owner := "caller-" + strconv.Itoa(i%1000)
		if _, _, err := m.Reserve(ctx, owner, k, "token", time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 1000 {
		if _, _, err := m.Reserve(ctx, "caller-"+strconv.Itoa(i), "over", "token", time.Hour); err == nil {
			b.Fatal("a caller over its share was not refused")
		}
	}
	b.Run("room", func(b *testing.B) {
		b.ReportAllocs()
		own := benchKeys(512)
		for i := range own {
			own[i] = "room/" + own[i]
		}
		i := 0
		for b.Loop() {
			key := own[i&511]
			i++
			if ok, _, err := m.Reserve(ctx, "room", key, "token", 10*time.Minute); !ok || err != nil {
				b.Fatal("reserve failed")
			}
			if ok, err := m.Release(ctx, "room", key, "token"); !ok || err != nil {
				b.Fatal("release failed")
			}
		}
	})
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := m.Reserve(ctx, "caller-7", "over", "token", 10*time.Minute); err == nil {
				b.Fatal("a caller over its share was not refused")
			}
		}
	})
}

// BenchmarkMemoryAllow is a velocity limit check per request: allowed (the
// common case) and refused.
func BenchmarkMemoryAllow(b *testing.B) {
	keys := benchKeys(4096)
	ctx := context.Background()
	for _, bc := range []struct {
		name  string
		limit store.Limit
	}{
		{"allowed", store.Limit{Count: 1 << 30, Period: store.MaxDuration}},
		{"refused", store.Limit{Count: 1, Period: 24 * time.Hour}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := newBenchMemory(b)
			for _, k := range keys {
				if _, err := m.Allow(ctx, k, bc.limit); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				d, err := m.Allow(ctx, keys[i&4095], bc.limit)
				i++
				if err != nil || d.Allowed != (bc.name == "allowed") {
					b.Fatalf("allow: %+v, %v", d, err)
				}
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			m := newBenchMemory(b)
			for _, k := range keys {
				if _, err := m.Allow(ctx, k, bc.limit); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			var worker atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				i := int(worker.Add(1)) * 512
				for pb.Next() {
					d, err := m.Allow(ctx, keys[i&4095], bc.limit)
					i++
					if err != nil || d.Allowed != (bc.name == "allowed") {
						b.Fatalf("allow: %+v, %v", d, err)
					}
				}
			})
		})
	}
}

// BenchmarkRedisReserve is one reservation on a redis-server on loopback:
// one round trip, with its owner's count too (owned).
func BenchmarkRedisReserve(b *testing.B) {
	srv := testkit.StartRedis(b)
	// A generous timeout: the benchmark measures round trips, and a
	// loaded machine may stall one past the default.
	r, err := store.NewRedis(store.RedisOptions{URL: srv.URL(), Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	var n atomic.Int64
	next := func() string { return "bench/op-" + strconv.FormatInt(n.Add(1), 10) }
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ok, _, err := r.Reserve(ctx, "", next(), "token", time.Minute); !ok || err != nil {
				b.Fatalf("reserve: %v", err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if ok, _, err := r.Reserve(ctx, "", next(), "token", time.Minute); !ok || err != nil {
					b.Fatalf("reserve: %v", err)
				}
			}
		})
	})
	b.Run("owned", func(b *testing.B) {
		// With a share for the owner: its count in the same pipeline.
		owned, err := store.NewRedis(store.RedisOptions{URL: srv.URL(), Timeout: time.Second, MaxPerOwner: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		defer owned.Close()
		b.ReportAllocs()
		for b.Loop() {
			if ok, _, err := owned.Reserve(ctx, "bench-owner", next(), "token", time.Minute); !ok || err != nil {
				b.Fatalf("reserve: %v", err)
			}
		}
	})
	b.Run("allow", func(b *testing.B) {
		b.ReportAllocs()
		limit := store.Limit{Count: 1 << 30, Period: time.Hour}
		for b.Loop() {
			if d, err := r.Allow(ctx, "bench/caller", limit); !d.Allowed || err != nil {
				b.Fatalf("allow: %+v, %v", d, err)
			}
		}
	})
}

// BenchmarkMemoryTurnover is the idempotency round of a delivered request
// (a reservation, then its answer) in a store of the default bound whose
// traffic fills half of it and nearly all of it (99%: requests that read
// the clock one after the other reach the store in another order): on a clock that moves a share
// of the window at every call, each reservation's entry expires a window
// later. A store at its bound finds room for a new entry only by dropping
// the expired entries of every shard.
func BenchmarkMemoryTurnover(b *testing.B) {
	const window, size = 10 * time.Minute, store.DefaultMaxEntries
	for _, fill := range []struct {
		name string
		live int // entries live at once
	}{{"half", size / 2}, {"full", size - size/100}} {
		b.Run(fill.name, func(b *testing.B) {
			start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
			// Two calls per round: a round a window's share.
			tick := window / time.Duration(2*fill.live)
			var calls atomic.Int64
			now := func() time.Time { return start.Add(time.Duration(calls.Add(1)) * tick) }
			m, err := store.NewMemory(store.MemoryOptions{MaxEntries: size, Now: now})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var n atomic.Int64
			round := func() error {
				k := "tid/oid/app-0123456789/startPhoneAudio/op-" + strconv.FormatInt(n.Add(1), 10)
				if ok, _, err := m.Reserve(ctx, "", k, "token", window); !ok || err != nil {
					return fmt.Errorf("reserve: %v, %v", ok, err)
				}
				_, err := m.Replace(ctx, "", k, "token", "answer", window)
				return err
			}
			// A window's worth of rounds, before the clock starts.
			for range fill.live {
				if err := round(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := round(); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkMemoryAnswered is the idempotency round of a request a pool
// answered, as the edge makes it: a reservation of a new key, for its
// caller, then its answer in the place of the reservation's token, for
// the rest of the window. The store grows by an entry a round, as an
// edge's does for its window's first requests.
func BenchmarkMemoryAnswered(b *testing.B) {
	const window = 10 * time.Minute
	m, err := store.NewMemory(store.MemoryOptions{MaxEntries: 100_000_000})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	token := "n" + strings.Repeat("d", 22) + strings.Repeat("r", 22)
	answer := "A" + strings.Repeat("d", 22) + "2010:16:application/json" + strings.Repeat("b", 80)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		key := fmt.Sprintf("idem:%043d", n)
		if ok, _, err := m.Reserve(ctx, "caller-0123456", key, token, window); !ok || err != nil {
			b.Fatal("reserve failed", err)
		}
		if ok, err := m.Replace(ctx, "caller-0123456", key, token, answer, window-time.Millisecond); !ok || err != nil {
			b.Fatal("replace failed", err)
		}
	}
}
