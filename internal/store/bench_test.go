package store_test

import (
	"context"
	"strconv"
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
			if ok, _, err := m.Reserve(ctx, key, "token", 10*time.Minute); !ok || err != nil {
				b.Fatal("reserve failed")
			}
			if ok, err := m.Release(ctx, key, "token"); !ok || err != nil {
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
				if ok, _, err := m.Reserve(ctx, key, "token", 10*time.Minute); !ok || err != nil {
					b.Fatal("reserve failed")
				}
				if ok, err := m.Release(ctx, key, "token"); !ok || err != nil {
					b.Fatal("release failed")
				}
			}
		})
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
		{"allowed", store.Limit{Count: 1 << 30, Period: 1_000_000 * time.Hour}},
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
// one round trip.
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
			if ok, _, err := r.Reserve(ctx, next(), "token", time.Minute); !ok || err != nil {
				b.Fatalf("reserve: %v", err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if ok, _, err := r.Reserve(ctx, next(), "token", time.Minute); !ok || err != nil {
					b.Fatalf("reserve: %v", err)
				}
			}
		})
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

// BenchmarkMemoryFull is the idempotency round of a delivered request in
// a store that is full, as an edge's store is once its traffic fills the
// window: every reservation evicts the entry closest to expiring, and
// the answer replaces the reservation. The default bound and a large one.
// Here the whole store turns over in milliseconds, so a reservation whose
// goroutine is descheduled that long is evicted before its answer (as the
// store documents); the benchmark does not count on Replace finding it.
func BenchmarkMemoryFull(b *testing.B) {
	for _, size := range []int{store.DefaultMaxEntries, 200_000} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			m, err := store.NewMemory(store.MemoryOptions{MaxEntries: size})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var n atomic.Int64
			key := func() string {
				return "tid/oid/app-0123456789/startPhoneAudio/op-" + strconv.FormatInt(n.Add(1), 10)
			}
			// The store filled (every shard: twice its share) with
			// entries that expire before any the benchmark writes.
			for range 2 * size {
				if _, _, err := m.Reserve(ctx, key(), "token", 5*time.Minute); err != nil {
					b.Fatal(err)
				}
			}
			evicted := m.Evictions()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := key()
					if ok, _, err := m.Reserve(ctx, k, "token", 10*time.Minute); !ok || err != nil {
						b.Fatal("reserve failed")
					}
					if _, err := m.Replace(ctx, k, "token", "answer", 10*time.Minute); err != nil {
						b.Fatal(err)
					}
				}
			})
			if m.Evictions() == evicted {
				b.Fatal("the benchmark's reservations evicted nothing: the store was not full")
			}
		})
	}
}
