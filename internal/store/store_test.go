package store_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/store"
	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// fakeClock is the Memory store's injected clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// backend is one Store implementation under test. start prepares it for a
// test (Redis: starts a redis-server, or skips the test without one) and
// returns open, which gives an empty store that lives until its test ends,
// and an inspector to look behind it.
type backend struct {
	name  string
	start func(t *testing.T) (open func(t *testing.T) (store.Store, *inspector))
}

type inspector struct {
	// ttl is the remaining TTL of the reservation at key, -1 when absent.
	ttl func(key string) time.Duration
	// expire returns once the reservation at key, written with ttl, has
	// expired: the memory store's clock moves, and Redis is waited on.
	expire func(t *testing.T, key string, ttl time.Duration)
}

// backends are the memory store and a Redis store on a redis-server started
// for the test; every Redis store opened gets a key prefix of its own.
var backends = []backend{
	{name: "memory", start: func(*testing.T) func(t *testing.T) (store.Store, *inspector) {
		return func(t *testing.T) (store.Store, *inspector) {
			clock := newFakeClock()
			m, err := store.NewMemory(store.MemoryOptions{Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Close() })
			return m, &inspector{
				ttl:    m.RemainingTTL,
				expire: func(_ *testing.T, _ string, ttl time.Duration) { clock.Advance(ttl) },
			}
		}
	}},
	{name: "redis", start: redisBackend(false)},
}

// limitBackends are backends and a Redis store on a one-node Redis
// Cluster, whose limits' scripts carry a ran marker (see store.Redis's
// ranMarker) and must answer as without one. (A cluster takes seconds to
// start: the other tests leave it out.)
var limitBackends = append(slices.Clone(backends), backend{name: "redis-cluster", start: redisBackend(true)})

// redisBackend is the start of a Redis backend, of a one-node Redis
// Cluster when cluster.
func redisBackend(cluster bool) func(t *testing.T) func(t *testing.T) (store.Store, *inspector) {
	return func(t *testing.T) func(t *testing.T) (store.Store, *inspector) {
		srv := testkit.StartRedisWith(t, testkit.RedisConfig{Cluster: cluster})
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		t.Cleanup(func() { rdb.Close() })
		var n atomic.Int64
		return func(t *testing.T) (store.Store, *inspector) {
			prefix := fmt.Sprintf("test%d:", n.Add(1))
			r, err := store.NewRedis(store.RedisOptions{URL: srv.URL(), KeyPrefix: prefix, Cluster: cluster, Timeout: easyTimeout})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			return r, &inspector{
				ttl: func(key string) time.Duration {
					d, err := rdb.PTTL(context.Background(), prefix+key).Result()
					if err != nil {
						t.Fatal(err)
					}
					if d < 0 {
						return -1
					}
					return d
				},
				expire: func(t *testing.T, key string, _ time.Duration) {
					waitUntil(t, "the key to expire", func() bool {
						return rdb.Exists(context.Background(), prefix+key).Val() == 0
					})
				},
			}
		}
	}
}

// waitUntil polls cond until it holds, failing the test after 10 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: gave up", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// step is one call in a sequence, with the answer it must get.
type step struct {
	op            string // reserve, replace, release
	key           string
	expect, value string
	ttl           time.Duration
	ok            bool
	current       string // for a reserve that fails
}

func TestReserveReplaceRelease(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{
		{"reserve a free key", []step{
			{op: "reserve", key: "k", value: "a", ok: true},
		}},
		{"reserve a held key answers its value", []step{
			{op: "reserve", key: "k", value: "a", ok: true},
			{op: "reserve", key: "k", value: "b", current: "a"},
		}},
		{"an empty value is a value", []step{
			{op: "reserve", key: "k", value: "", ok: true},
			{op: "reserve", key: "k", value: "b", current: ""},
			{op: "replace", key: "k", expect: "", value: "c", ok: true},
		}},
		{"keys are independent", []step{
			{op: "reserve", key: "k1", value: "a", ok: true},
			{op: "reserve", key: "k2", value: "b", ok: true},
			{op: "release", key: "k1", expect: "a", ok: true},
			{op: "reserve", key: "k2", value: "c", current: "b"},
		}},
		{"replace what this request reserved", []step{
			{op: "reserve", key: "k", value: "token1", ok: true},
			{op: "replace", key: "k", expect: "token1", value: "answer", ok: true},
			{op: "reserve", key: "k", value: "token2", current: "answer"},
		}},
		{"replace someone else's reservation is refused", []step{
			{op: "reserve", key: "k", value: "token2", ok: true},
			{op: "replace", key: "k", expect: "token1", value: "late answer"},
			{op: "reserve", key: "k", value: "token3", current: "token2"},
		}},
		{"replace a missing key creates nothing", []step{
			{op: "replace", key: "k", expect: "token1", value: "answer"},
			{op: "reserve", key: "k", value: "token2", ok: true},
		}},
		{"replace after release is refused", []step{
			{op: "reserve", key: "k", value: "token1", ok: true},
			{op: "release", key: "k", expect: "token1", ok: true},
			{op: "replace", key: "k", expect: "token1", value: "answer"},
			{op: "reserve", key: "k", value: "token2", ok: true},
		}},
		{"replace twice: the second expects the first's value", []step{
			{op: "reserve", key: "k", value: "token1", ok: true},
			{op: "replace", key: "k", expect: "token1", value: "answer", ok: true},
			{op: "replace", key: "k", expect: "token1", value: "other"},
			{op: "replace", key: "k", expect: "answer", value: "other", ok: true},
			{op: "reserve", key: "k", value: "token2", current: "other"},
		}},
		{"release frees the key", []step{
			{op: "reserve", key: "k", value: "token1", ok: true},
			{op: "release", key: "k", expect: "token1", ok: true},
			{op: "reserve", key: "k", value: "token2", ok: true},
		}},
		{"release someone else's reservation is refused", []step{
			{op: "reserve", key: "k", value: "token2", ok: true},
			{op: "release", key: "k", expect: "token1"},
			{op: "reserve", key: "k", value: "token3", current: "token2"},
		}},
		{"release a missing key", []step{
			{op: "release", key: "k", expect: "token1"},
		}},
		{"release twice", []step{
			{op: "reserve", key: "k", value: "token1", ok: true},
			{op: "release", key: "k", expect: "token1", ok: true},
			{op: "release", key: "k", expect: "token1"},
		}},
		{"values compare as bytes", []step{
			{op: "reserve", key: "k", value: "Token", ok: true},
			{op: "release", key: "k", expect: "token"},
			{op: "replace", key: "k", expect: "Token ", value: "x"},
			{op: "reserve", key: "k", value: "y", current: "Token"},
		}},
		{"binary keys and values", []step{
			{op: "reserve", key: "k\x00\xff\n", value: "v\x00\r\n\xfe", ok: true},
			{op: "reserve", key: "k\x00\xff\n", value: "w", current: "v\x00\r\n\xfe"},
			{op: "reserve", key: "k\x00\xff", value: "w", ok: true},
			{op: "release", key: "k\x00\xff\n", expect: "v\x00\r\n\xfe", ok: true},
		}},
	}
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			open := b.start(t)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					s, _ := open(t)
					for i, st := range tc.steps {
						ttl := st.ttl
						if ttl == 0 {
							ttl = time.Minute
						}
						var ok bool
						var current string
						var err error
						switch st.op {
						case "reserve":
							ok, current, err = s.Reserve(ctx, "", st.key, st.value, ttl)
						case "replace":
							ok, err = s.Replace(ctx, "", st.key, st.expect, st.value, ttl)
						case "release":
							ok, err = s.Release(ctx, "", st.key, st.expect)
						}
						if err != nil {
							t.Fatalf("step %d (%s): %v", i, st.op, err)
						}
						if ok != st.ok || current != st.current {
							t.Fatalf("step %d (%s): got (%v, %q), want (%v, %q)", i, st.op, ok, current, st.ok, st.current)
						}
					}
				})
			}
		})
	}
}

func TestTTL(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			open := b.start(t)
			t.Run("reserve sets the TTL", func(t *testing.T) {
				s, in := open(t)
				start := time.Now()
				mustReserve(t, s, "k", "a", 10*time.Minute)
				assertTTL(t, in, "k", 10*time.Minute, start)
			})
			t.Run("replace sets a new TTL from now", func(t *testing.T) {
				s, in := open(t)
				mustReserve(t, s, "k", "a", time.Minute)
				start := time.Now()
				if ok, err := s.Replace(ctx, "", "k", "a", "b", 10*time.Minute); err != nil || !ok {
					t.Fatalf("replace: %v, %v", ok, err)
				}
				assertTTL(t, in, "k", 10*time.Minute, start)
			})
			t.Run("a refused replace keeps the TTL", func(t *testing.T) {
				s, in := open(t)
				start := time.Now()
				mustReserve(t, s, "k", "a", time.Minute)
				if ok, err := s.Replace(ctx, "", "k", "x", "b", 10*time.Minute); err != nil || ok {
					t.Fatalf("replace: %v, %v", ok, err)
				}
				assertTTL(t, in, "k", time.Minute, start)
			})
			t.Run("a failed reserve keeps the TTL", func(t *testing.T) {
				s, in := open(t)
				start := time.Now()
				mustReserve(t, s, "k", "a", time.Minute)
				if ok, _, err := s.Reserve(ctx, "", "k", "b", 10*time.Minute); err != nil || ok {
					t.Fatalf("reserve: %v, %v", ok, err)
				}
				assertTTL(t, in, "k", time.Minute, start)
			})
			t.Run("an expired reservation frees its key", func(t *testing.T) {
				s, in := open(t)
				const ttl = 50 * time.Millisecond
				mustReserve(t, s, "k", "a", ttl)
				in.expire(t, "k", ttl)
				if in.ttl("k") != -1 {
					t.Fatal("the key outlived its TTL")
				}
				if ok, err := s.Replace(ctx, "", "k", "a", "b", time.Minute); err != nil || ok {
					t.Fatalf("replace of an expired key: %v, %v", ok, err)
				}
				if ok, err := s.Release(ctx, "", "k", "a"); err != nil || ok {
					t.Fatalf("release of an expired key: %v, %v", ok, err)
				}
				mustReserve(t, s, "k", "c", time.Minute)
			})
			t.Run("a replaced answer expires too", func(t *testing.T) {
				s, in := open(t)
				const ttl = 50 * time.Millisecond
				mustReserve(t, s, "k", "a", time.Minute)
				if ok, err := s.Replace(ctx, "", "k", "a", "b", ttl); err != nil || !ok {
					t.Fatalf("replace: %v, %v", ok, err)
				}
				in.expire(t, "k", ttl)
				mustReserve(t, s, "k", "c", time.Minute)
			})
		})
	}
}

// TestMemoryTTLEdge holds the memory store to the instant of expiry, which
// only an injected clock can show: a key lives for exactly its TTL.
func TestMemoryTTLEdge(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m, err := store.NewMemory(store.MemoryOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	mustReserve(t, m, "k", "a", time.Minute)
	clock.Advance(time.Minute - time.Nanosecond)
	if ok, current, err := m.Reserve(ctx, "", "k", "b", time.Minute); err != nil || ok || current != "a" {
		t.Fatalf("just before expiry: %v, %q, %v", ok, current, err)
	}
	clock.Advance(time.Nanosecond)
	mustReserve(t, m, "k", "b", time.Minute)
}

func mustReserve(t *testing.T, s store.Store, key, value string, ttl time.Duration) {
	t.Helper()
	ok, current, err := s.Reserve(context.Background(), "", key, value, ttl)
	if err != nil || !ok {
		t.Fatalf("reserve %q: %v, %q, %v", key, ok, current, err)
	}
}

// assertTTL checks the TTL of a key set to want after start: the memory
// store's clock stands still, and Redis has counted down by at most the
// time since start (and a millisecond, its resolution).
func assertTTL(t *testing.T, in *inspector, key string, want time.Duration, start time.Time) {
	t.Helper()
	got := in.ttl(key)
	if elapsed := time.Since(start); got > want || got < want-elapsed-time.Millisecond {
		t.Fatalf("TTL %s, want %s less at most the %s since it was set", got, want, elapsed)
	}
}

func TestConcurrentReserve(t *testing.T) {
	const n = 100
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			open := b.start(t)
			s, _ := open(t)
			for round := 0; round < 5; round++ {
				key := fmt.Sprintf("k%d", round)
				var wg sync.WaitGroup
				start := make(chan struct{})
				won := make([]bool, n)
				currents := make([]string, n)
				errs := make([]error, n)
				for i := 0; i < n; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						won[i], currents[i], errs[i] = s.Reserve(ctx, "", key, fmt.Sprintf("token%d", i), time.Minute)
					}()
				}
				close(start)
				wg.Wait()
				winner := -1
				for i := 0; i < n; i++ {
					if errs[i] != nil {
						t.Fatalf("reserve %d: %v", i, errs[i])
					}
					if won[i] {
						if winner >= 0 {
							t.Fatalf("round %d: both %d and %d reserved the key", round, winner, i)
						}
						winner = i
					}
				}
				if winner < 0 {
					t.Fatalf("round %d: nobody reserved the key", round)
				}
				for i := 0; i < n; i++ {
					if !won[i] && currents[i] != fmt.Sprintf("token%d", winner) {
						t.Fatalf("round %d: loser %d saw %q, the winner was %d", round, i, currents[i], winner)
					}
				}
			}
		})
	}
}

// TestConcurrentLifecycle runs many requests through reserve, replace and
// release on a few keys at once: every compare-and-set must act only for
// the request holding the key.
func TestConcurrentLifecycle(t *testing.T) {
	const workers, rounds, keys = 32, 50, 4
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			open := b.start(t)
			s, _ := open(t)
			var wg sync.WaitGroup
			errc := make(chan error, workers)
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for r := 0; r < rounds; r++ {
						key := fmt.Sprintf("k%d", (w+r)%keys)
						token := fmt.Sprintf("w%d-r%d", w, r)
						ok, _, err := s.Reserve(ctx, "", key, token, time.Minute)
						if err != nil {
							errc <- err
							return
						}
						if !ok {
							if ok, err := s.Release(ctx, "", key, token); err != nil || ok {
								errc <- fmt.Errorf("released a key it did not hold: %v, %v", ok, err)
								return
							}
							continue
						}
						if ok, err := s.Replace(ctx, "", key, token, token+"-done", time.Minute); err != nil || !ok {
							errc <- fmt.Errorf("lost its own reservation: %v, %v", ok, err)
							return
						}
						if ok, err := s.Release(ctx, "", key, token+"-done"); err != nil || !ok {
							errc <- fmt.Errorf("could not release its own answer: %v, %v", ok, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				t.Fatal(err)
			}
		})
	}
}

func TestAllow(t *testing.T) {
	hour := time.Hour
	cases := []struct {
		name   string
		limit  store.Limit
		events int
	}{
		{"20 per 1h", store.Limit{Count: 20, Period: hour}, 21},
		{"5 per 24h", store.Limit{Count: 5, Period: 24 * hour}, 7},
		{"3 per 24h", store.Limit{Count: 3, Period: 24 * hour}, 4},
		{"500 per 1h", store.Limit{Count: 500, Period: hour}, 502},
		{"1 per 1m", store.Limit{Count: 1, Period: time.Minute}, 3},
	}
	ctx := context.Background()
	type run struct {
		decisions []store.Decision
		elapsed   time.Duration
	}
	runs := map[string][]run{}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			open := b.start(t)
			s, _ := open(t)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					var got []store.Decision
					start := time.Now()
					for i := 0; i < tc.events; i++ {
						d, err := s.Allow(ctx, tc.name, tc.limit)
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, d)
					}
					// Redis's clock runs during the test: by at most
					// elapsed between the first event and the last. The
					// memory store's clock stands still.
					elapsed := time.Since(start)
					runs[tc.name] = append(runs[tc.name], run{got, elapsed})
					// The first Count events pass, each leaving one fewer;
					// the rest are refused until one token has come back,
					// Period/Count after the first event.
					interval := tc.limit.Period / time.Duration(tc.limit.Count)
					for i, d := range got {
						if i < tc.limit.Count {
							if !d.Allowed || d.Remaining != tc.limit.Count-1-i || d.RetryAfter != 0 {
								t.Fatalf("event %d: %+v, want allowed with %d remaining", i+1, d, tc.limit.Count-1-i)
							}
							continue
						}
						if d.Allowed || d.Remaining != 0 {
							t.Fatalf("event %d: %+v, want refused", i+1, d)
						}
						if d.RetryAfter > interval+time.Microsecond || d.RetryAfter < interval-elapsed {
							t.Fatalf("event %d: retry after %s, want %s less at most the %s the events took", i+1, d.RetryAfter, interval, elapsed)
						}
					}
				})
			}
		})
	}
	// The same sequence gets the same answers from both stores, but for
	// the time Redis's clock ran.
	for name, r := range runs {
		if len(r) != 2 {
			continue
		}
		for i := range r[0].decisions {
			m, rd := r[0].decisions[i], r[1].decisions[i]
			if m.Allowed != rd.Allowed || m.Remaining != rd.Remaining || (m.RetryAfter-rd.RetryAfter).Abs() > r[1].elapsed {
				t.Errorf("%s event %d: memory %+v, redis %+v", name, i+1, m, rd)
			}
		}
	}
}

// TestAllowRefill: a refused event takes nothing, and one token comes back
// per Period/Count. The memory store shows it to the nanosecond; Redis,
// whose clock cannot be moved, is waited on with a short period.
func TestAllowRefill(t *testing.T) {
	ctx := context.Background()
	t.Run("memory", func(t *testing.T) {
		clock := newFakeClock()
		// Room for one entry, so that a new key finds room only once the
		// caller's bucket is gone.
		m, err := store.NewMemory(store.MemoryOptions{MaxEntries: 1, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		limit := store.Limit{Count: 20, Period: time.Hour}
		for i := 0; i < 20; i++ {
			if d, _ := m.Allow(ctx, "caller", limit); !d.Allowed {
				t.Fatalf("event %d refused", i+1)
			}
		}
		var d store.Decision
		for i := 0; i < 5; i++ {
			d, _ = m.Allow(ctx, "caller", limit)
			if d.Allowed || !near(d.RetryAfter, 3*time.Minute) {
				t.Fatalf("refusal %d: %+v, want retry after 3m", i+1, d)
			}
		}
		clock.Advance(d.RetryAfter - time.Second)
		if d, _ := m.Allow(ctx, "caller", limit); d.Allowed || !near(d.RetryAfter, time.Second) {
			t.Fatalf("a second early: %+v", d)
		}
		clock.Advance(time.Second)
		if d, _ := m.Allow(ctx, "caller", limit); !d.Allowed || d.Remaining != 0 {
			t.Fatalf("on time: %+v", d)
		}
		if d, _ := m.Allow(ctx, "caller", limit); d.Allowed {
			t.Fatalf("one token came back, two were taken: %+v", d)
		}
		// A bucket idle for a whole period is full again.
		clock.Advance(time.Hour)
		if d, _ := m.Allow(ctx, "caller", limit); !d.Allowed || d.Remaining != 19 {
			t.Fatalf("after an idle hour: %+v", d)
		}
		// A full bucket is dropped: no entry is kept for an idle caller.
		clock.Advance(3 * time.Minute)
		mustReserve(t, m, "other", "x", time.Minute)
		if n := m.Len(); n != 1 {
			t.Fatalf("%d entries, want only the reservation", n)
		}
	})
	t.Run("redis", func(t *testing.T) {
		srv := testkit.StartRedis(t)
		r, err := store.NewRedis(store.RedisOptions{URL: srv.URL(), Timeout: easyTimeout})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		limit := store.Limit{Count: 2, Period: 2 * time.Second}
		for i := 0; i < 2; i++ {
			if d, err := r.Allow(ctx, "caller", limit); err != nil || !d.Allowed {
				t.Fatalf("event %d: %+v, %v", i+1, d, err)
			}
		}
		d, err := r.Allow(ctx, "caller", limit)
		if err != nil || d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > time.Second {
			t.Fatalf("third event: %+v, %v", d, err)
		}
		var allowed store.Decision
		waitUntil(t, "a token to come back", func() bool {
			allowed, err = r.Allow(ctx, "caller", limit)
			return err == nil && allowed.Allowed
		})
		if d, err := r.Allow(ctx, "caller", limit); err != nil || (d.Allowed && allowed.Remaining == 0) {
			t.Fatalf("after one token came back: %+v then %+v, %v", allowed, d, err)
		}
	})
}

// near reports whether d is want, but for float rounding in the limiter.
func near(d, want time.Duration) bool { return (d - want).Abs() <= time.Microsecond }

// TestAllowN: n events are taken all or none, and the same sequence gets
// the same answers from both stores.
func TestAllowN(t *testing.T) {
	limit := store.Limit{Count: 5, Period: time.Hour}
	interval := limit.Period / time.Duration(limit.Count)
	steps := []struct {
		n          int
		allowed    bool
		remaining  int
		retryAfter time.Duration // for a refusal: how long until n fit
	}{
		{3, true, 2, 0},
		{3, false, 0, interval}, // two left: none is taken
		{2, true, 0, 0},
		{1, false, 0, interval},
		{5, false, 0, 5 * interval},
	}
	ctx := context.Background()
	for _, b := range limitBackends {
		t.Run(b.name, func(t *testing.T) {
			open := b.start(t)
			s, _ := open(t)
			start := time.Now()
			for i, st := range steps {
				d, err := s.AllowN(ctx, "caller", limit, st.n)
				if err != nil {
					t.Fatal(err)
				}
				// Redis's clock runs during the test: a refusal's wait
				// is shorter by at most the time the steps took.
				elapsed := time.Since(start)
				if d.Allowed != st.allowed || d.Remaining != st.remaining ||
					d.RetryAfter > st.retryAfter+time.Microsecond || d.RetryAfter < st.retryAfter-elapsed {
					t.Fatalf("step %d (%d events): %+v, want allowed %v, %d remaining, retry after %s", i+1, st.n, d, st.allowed, st.remaining, st.retryAfter)
				}
			}
		})
	}
}

// TestAllowAll: the takes of AllowAll are taken all or none: a budget
// that had room keeps it when another refuses, the refusal says how long
// each budget without room would take, and both stores give the same
// answers to the same sequence.
func TestAllowAll(t *testing.T) {
	hour := time.Hour
	a := store.Limit{Count: 2, Period: hour}      // a token every 30m
	b := store.Limit{Count: 1, Period: 24 * hour} // a token every 24h
	c := store.Limit{Count: 3, Period: 3 * hour}  // a token every 1h
	type want struct {
		allowed    bool
		remaining  int
		retryAfter time.Duration // for a budget without room
	}
	steps := []struct {
		takes []store.Take
		want  []want
	}{
		{[]store.Take{{"a", a, 1}, {"b", b, 1}}, []want{{true, 1, 0}, {true, 0, 0}}},
		// b has no room: a keeps its token.
		{[]store.Take{{"a", a, 1}, {"b", b, 1}}, []want{{false, 0, 0}, {false, 0, 24 * hour}}},
		{[]store.Take{{"a", a, 1}}, []want{{true, 0, 0}}},
		// A new budget (c) that had room takes nothing either.
		{[]store.Take{{"c", c, 2}, {"a", a, 1}}, []want{{false, 0, 0}, {false, 0, 30 * time.Minute}}},
		{[]store.Take{{"c", c, 3}}, []want{{true, 0, 0}}},
		// Two budgets without room: each says its own wait.
		{[]store.Take{{"b", b, 1}, {"a", a, 2}, {"c", c, 1}}, []want{{false, 0, 24 * hour}, {false, 0, hour}, {false, 0, hour}}},
		{[]store.Take{{"d", a, 2}}, []want{{true, 0, 0}}},
	}
	ctx := context.Background()
	answers := map[string][][]store.Decision{}
	var elapsed time.Duration
	for _, be := range limitBackends {
		t.Run(be.name, func(t *testing.T) {
			open := be.start(t)
			s, _ := open(t)
			start := time.Now()
			for i, st := range steps {
				ds, err := s.AllowAll(ctx, st.takes)
				if err != nil {
					t.Fatal(err)
				}
				answers[be.name] = append(answers[be.name], ds)
				// Redis's clock runs during the test: a wait is shorter
				// by at most the time the steps took.
				el := time.Since(start)
				elapsed = max(elapsed, el)
				for j, w := range st.want {
					d := ds[j]
					if d.Allowed != w.allowed || d.Remaining != w.remaining ||
						d.RetryAfter > w.retryAfter+time.Microsecond || d.RetryAfter < w.retryAfter-el || w.retryAfter == 0 && d.RetryAfter != 0 {
						t.Fatalf("step %d, take %d (%s): %+v, want %+v", i+1, j+1, st.takes[j].Key, d, w)
					}
				}
			}
		})
	}
	m, r := answers["memory"], answers["redis"]
	for i := range r {
		for j := range r[i] {
			if md, rd := m[i][j], r[i][j]; md.Allowed != rd.Allowed || md.Remaining != rd.Remaining || (md.RetryAfter-rd.RetryAfter).Abs() > elapsed {
				t.Errorf("step %d, take %d: memory %+v, redis %+v", i+1, j+1, md, rd)
			}
		}
	}
}

// TestAllowRemaining: a take's Remaining is the events left after it,
// Count less those taken, from either store and either call, for limits
// whose interval no float holds exactly (a third of a second, an hour
// over 7, 3.6µs). Each sequence starts on a budget never taken from, whose
// first take leaves Count-n whatever the time; a sequence of more takes
// has an interval of minutes, far more than its takes last, so that no
// event comes back meanwhile. Then every event taken is given back, and
// the first take takes again from a whole budget.
func TestAllowRemaining(t *testing.T) {
	cases := []struct {
		limit store.Limit
		takes []int
	}{
		{store.Limit{Count: 3, Period: time.Second}, []int{2}},
		{store.Limit{Count: 6, Period: time.Second}, []int{1}},
		{store.Limit{Count: 7, Period: time.Second}, []int{6}},
		{store.Limit{Count: 10, Period: time.Second}, []int{1}},
		{store.Limit{Count: 100, Period: time.Minute}, []int{1}},
		{store.Limit{Count: 1000, Period: time.Second}, []int{999}},
		{store.Limit{Count: 999999, Period: time.Second}, []int{2}},
		{store.Limit{Count: 1000000000, Period: time.Hour}, []int{2}},
		{store.Limit{Count: 1000000000, Period: time.Hour}, []int{999999999}},
		{store.Limit{Count: 7, Period: time.Hour}, []int{2, 1, 3, 1}},
		{store.Limit{Count: 7, Period: time.Hour}, []int{6, 1}},
		{store.Limit{Count: 13, Period: 24 * time.Hour}, []int{12, 1}},
		{store.Limit{Count: 20, Period: time.Hour}, []int{1, 1, 17, 1}},
	}
	calls := []struct {
		name  string
		allow func(s store.Store, key string, limit store.Limit, n int) (store.Decision, error)
	}{
		{"AllowAll", func(s store.Store, key string, limit store.Limit, n int) (store.Decision, error) {
			ds, err := s.AllowAll(context.Background(), []store.Take{{Key: key, Limit: limit, N: n}})
			if err != nil {
				return store.Decision{}, err
			}
			return ds[0], nil
		}},
		{"AllowN", func(s store.Store, key string, limit store.Limit, n int) (store.Decision, error) {
			return s.AllowN(context.Background(), key, limit, n)
		}},
	}
	for _, b := range limitBackends {
		t.Run(b.name, func(t *testing.T) {
			open := b.start(t)
			s, _ := open(t)
			for _, call := range calls {
				for _, tc := range cases {
					name := fmt.Sprintf("%s/%d per %s/%v", call.name, tc.limit.Count, tc.limit.Period, tc.takes)
					t.Run(name, func(t *testing.T) {
						take := func(what string, n, left int) {
							t.Helper()
							d, err := call.allow(s, name, tc.limit, n)
							if err != nil {
								t.Fatal(err)
							}
							if !d.Allowed || d.Remaining != left || d.RetryAfter != 0 {
								t.Errorf("%s, %d events: %+v, want allowed with %d remaining", what, n, d, left)
							}
						}
						taken := 0
						for _, n := range tc.takes {
							taken += n
							take("take", n, tc.limit.Count-taken)
						}
						err := s.RefundAll(context.Background(), []store.Take{{Key: name, Limit: tc.limit, N: taken}}, 0)
						if err != nil {
							t.Fatal(err)
						}
						take("after the refund", tc.takes[0], tc.limit.Count-tc.takes[0])
					})
				}
			}
		})
	}
}

// TestRefundAll: events given back are there to take again, in every
// budget of the refund; a budget is never given more than its Count
// (a refund of events it no longer misses, a refund given twice), and a
// budget the store does not hold takes a refund as a whole budget.
func TestRefundAll(t *testing.T) {
	a := store.Limit{Count: 2, Period: time.Hour}      // an event every 30m
	b := store.Limit{Count: 1, Period: 24 * time.Hour} // an event every 24h
	ctx := context.Background()
	for _, be := range limitBackends {
		t.Run(be.name, func(t *testing.T) {
			open := be.start(t)
			s, _ := open(t)
			allow := func(what string, takes []store.Take, allowed bool, remaining ...int) {
				t.Helper()
				ds, err := s.AllowAll(ctx, takes)
				if err != nil {
					t.Fatal(err)
				}
				for j, d := range ds {
					if d.Allowed != allowed || allowed && d.Remaining != remaining[j] {
						t.Fatalf("%s, take %d (%s): %+v, want allowed %v, remaining %v", what, j+1, takes[j].Key, d, allowed, remaining)
					}
				}
			}
			refundHeld := func(held time.Duration, takes ...store.Take) {
				t.Helper()
				if err := s.RefundAll(ctx, takes, held); err != nil {
					t.Fatal(err)
				}
			}
			refund := func(takes ...store.Take) { t.Helper(); refundHeld(0, takes...) }
			allow("first", []store.Take{{"a", a, 1}, {"b", b, 1}}, true, 1, 0)
			allow("b empty", []store.Take{{"a", a, 1}, {"b", b, 1}}, false)
			refund(store.Take{"a", a, 1}, store.Take{"b", b, 1})
			allow("both back", []store.Take{{"a", a, 2}, {"b", b, 1}}, true, 0, 0)
			allow("a empty", []store.Take{{"a", a, 1}}, false)
			// Given back twice, and more than a misses: whole, no more.
			refund(store.Take{"a", a, 2})
			refund(store.Take{"a", a, 2}, store.Take{"b", b, 1})
			refund(store.Take{"b", b, 1})
			allow("whole, no more", []store.Take{{"a", a, 2}, {"b", b, 1}}, true, 0, 0)
			allow("no more than whole", []store.Take{{"a", a, 1}}, false)
			allow("no more than whole", []store.Take{{"b", b, 1}}, false)
			// A budget never taken from.
			refund(store.Take{"c", a, 2})
			allow("never taken", []store.Take{{"c", a, 2}}, true, 0)
			allow("never taken, then empty", []store.Take{{"c", a, 1}}, false)
			// The events of AllowN are given back too.
			if d, err := s.AllowN(ctx, "d", b, 1); err != nil || !d.Allowed {
				t.Fatalf("AllowN: %+v, %v", d, err)
			}
			refund(store.Take{"d", b, 1})
			allow("AllowN's back", []store.Take{{"d", b, 1}}, true, 0)
			// A late refund gives back only what the take still holds:
			// N intervals less the time since it was taken.
			allow("e, one of two", []store.Take{{"e", a, 1}}, true, 1)
			refundHeld(30*time.Minute, store.Take{"e", a, 1})
			allow("e, nothing back after an interval", []store.Take{{"e", a, 2}}, false)
			refundHeld(10*time.Minute, store.Take{"e", a, 1})
			allow("e, two thirds of an event back", []store.Take{{"e", a, 2}}, false)
			allow("e, the one left", []store.Take{{"e", a, 1}}, true, 0)
		})
	}
}

// TestResetLimit: a reset makes a budget whole, whatever it held and
// under whichever limit, and reports whether it was not whole; it leaves
// other budgets and the reservation of the same key alone, and a budget
// reset takes events again as a new one does.
func TestResetLimit(t *testing.T) {
	a := store.Limit{Count: 2, Period: time.Hour}
	ctx := context.Background()
	for _, be := range limitBackends {
		t.Run(be.name, func(t *testing.T) {
			open := be.start(t)
			s, _ := open(t)
			allow := func(what, key string, n int, allowed bool) {
				t.Helper()
				d, err := s.AllowN(ctx, key, a, n)
				if err != nil || d.Allowed != allowed {
					t.Fatalf("%s: %+v, %v, want allowed %v", what, d, err, allowed)
				}
			}
			reset := func(what, key string, want bool) {
				t.Helper()
				if got, err := s.ResetLimit(ctx, key); err != nil || got != want {
					t.Fatalf("%s: reset %v, %v, want %v", what, got, err, want)
				}
			}
			reset("a budget never taken from", "k", false)
			mustReserve(t, s, "k", "v", time.Minute)
			allow("k, both", "k", 2, true)
			allow("k, empty", "k", 1, false)
			allow("other, one", "other", 1, true)
			reset("k, empty", "k", true)
			reset("k, whole again", "k", false)
			allow("k, both again", "k", 2, true)
			allow("k, empty again", "k", 1, false)
			allow("other, untouched", "other", 2, false)
			if ok, current, err := s.Reserve(ctx, "", "k", "w", time.Minute); err != nil || ok || current != "v" {
				t.Fatalf("the reservation of k after its budget's reset: %v, %q, %v", ok, current, err)
			}
			// A budget whose take another refused is whole.
			if ds, err := s.AllowAll(ctx, []store.Take{{"new", a, 1}, {"k", a, 1}}); err != nil || ds[0].Allowed {
				t.Fatalf("new and k, k empty: %+v, %v", ds, err)
			}
			reset("new, its take refused", "new", false)
		})
	}
}

// TestPeekLimit: a peek reads how long a budget needs to be whole again,
// on every backend alike, and takes nothing: a budget never taken from or
// reset reads zero, one taken from reads its events' intervals, less the
// time since (Redis's clock runs: at most the time the test took).
func TestPeekLimit(t *testing.T) {
	a := store.Limit{Count: 2, Period: time.Hour} // an event every 30m
	ctx := context.Background()
	for _, be := range limitBackends {
		t.Run(be.name, func(t *testing.T) {
			open := be.start(t)
			s, _ := open(t)
			start := time.Now()
			peek := func(what, key string, want time.Duration) {
				t.Helper()
				got, err := s.PeekLimit(ctx, key)
				if err != nil || got > want || got < want-time.Since(start)-time.Millisecond {
					t.Fatalf("%s: %v, %v, want %v less at most the %v since the first take", what, got, err, want, time.Since(start))
				}
			}
			peek("never taken from", "k", 0)
			mustReserve(t, s, "k", "v", time.Minute)
			peek("a reservation of the same key", "k", 0)
			if d, err := s.AllowN(ctx, "k", a, 1); err != nil || !d.Allowed {
				t.Fatalf("take one: %+v, %v", d, err)
			}
			peek("one taken", "k", 30*time.Minute)
			peek("one taken, again", "k", 30*time.Minute)
			if d, err := s.AllowN(ctx, "k", a, 1); err != nil || !d.Allowed {
				t.Fatalf("take the second: %+v, %v", d, err)
			}
			peek("both taken", "k", time.Hour)
			peek("another key", "other", 0)
			if d, err := s.AllowN(ctx, "k", a, 1); err != nil || d.Allowed {
				t.Fatalf("a third after the peeks: %+v, %v", d, err)
			}
			if _, err := s.ResetLimit(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			peek("reset", "k", 0)
		})
	}
}

// TestLimitStanding: what a budget allows, read from how far its time is
// ahead, is what a take of one would be answered.
func TestLimitStanding(t *testing.T) {
	l := store.Limit{Count: 3, Period: 3 * time.Minute} // an event a minute
	for _, c := range []struct {
		ahead     time.Duration
		remaining int
		next      time.Duration
	}{
		{0, 3, 0},
		{-time.Minute, 3, 0},
		{time.Second, 2, 0},
		{time.Minute, 2, 0},
		{2 * time.Minute, 1, 0},
		{2*time.Minute + time.Second, 0, time.Second},
		{3 * time.Minute, 0, time.Minute},
	} {
		remaining, next := l.Standing(c.ahead)
		if remaining != c.remaining || next != c.next {
			t.Errorf("ahead %v: %d, %v; want %d, %v", c.ahead, remaining, next, c.remaining, c.next)
		}
	}
}

// TestMemoryRefundLate: a refund gives back what its take still holds
// of the budget, its events less the time since it was taken, so that a
// request that took longer than an event's share of the period to fail
// gives back nothing that later requests took. Limit 1 per minute: A
// takes, B a minute later; A's refund then must not let C through.
func TestMemoryRefundLate(t *testing.T) {
	clock := newFakeClock()
	m, err := store.NewMemory(store.MemoryOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	one := store.Limit{Count: 1, Period: time.Minute}
	take := func(what string, allowed bool, retryAfter time.Duration) {
		t.Helper()
		d, err := m.AllowN(ctx, "k", one, 1)
		if err != nil || d.Allowed != allowed || d.RetryAfter != retryAfter {
			t.Fatalf("%s: %+v, %v; want allowed %v, retry after %v", what, d, err, allowed, retryAfter)
		}
	}
	take("A", true, 0)
	clock.Advance(61 * time.Second)
	take("B", true, 0)
	if err := m.RefundAll(ctx, []store.Take{{"k", one, 1}}, 61*time.Second); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	take("C", false, 59*time.Second)

	// Counted from when the take was asked for, not from where the bucket
	// stood: a refund half an event late gives back half an event.
	two := store.Limit{Count: 2, Period: time.Hour} // an event every 30m
	if d, err := m.AllowN(ctx, "j", two, 2); err != nil || !d.Allowed {
		t.Fatalf("%+v, %v", d, err)
	}
	clock.Advance(15 * time.Minute)
	if err := m.RefundAll(ctx, []store.Take{{"j", two, 2}}, 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	// The budget refilled half an event itself and got three halves
	// back: whole, and its entry gone.
	if d, err := m.AllowN(ctx, "j", two, 2); err != nil || !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after the refund: %+v, %v", d, err)
	}
}

// TestAllowAllConcurrent: callers racing over two budgets, taking from
// them in either order, get exactly the smaller budget, and the refused
// ones leave the larger budget its room.
func TestAllowAllConcurrent(t *testing.T) {
	big := store.Limit{Count: 50, Period: time.Hour}
	small := store.Limit{Count: 30, Period: time.Hour}
	ctx := context.Background()
	for _, be := range limitBackends {
		t.Run(be.name, func(t *testing.T) {
			open := be.start(t)
			s, _ := open(t)
			var allowed atomic.Int64
			var wg sync.WaitGroup
			for i := range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					takes := []store.Take{{"big", big, 1}, {"small", small, 1}}
					if i%2 == 1 {
						takes[0], takes[1] = takes[1], takes[0]
					}
					ds, err := s.AllowAll(ctx, takes)
					if err != nil {
						t.Error(err)
						return
					}
					if ds[0].Allowed {
						allowed.Add(1)
					}
				}()
			}
			wg.Wait()
			if n := allowed.Load(); n != 30 {
				t.Fatalf("%d allowed, want 30", n)
			}
			if d, err := s.AllowN(ctx, "big", big, 20); err != nil || !d.Allowed || d.Remaining != 0 {
				t.Fatalf("the rest of big: %+v, %v", d, err)
			}
		})
	}
}

func TestAllowIsApartFromReservations(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			open := b.start(t)
			s, _ := open(t)
			mustReserve(t, s, "k", "a", time.Minute)
			limit := store.Limit{Count: 1, Period: time.Hour}
			if d, err := s.Allow(ctx, "k", limit); err != nil || !d.Allowed {
				t.Fatalf("allow: %+v, %v", d, err)
			}
			if ok, current, err := s.Reserve(ctx, "", "k", "b", time.Minute); err != nil || ok || current != "a" {
				t.Fatalf("reserve after allow: %v, %q, %v", ok, current, err)
			}
			if ok, err := s.Release(ctx, "", "k", "a"); err != nil || !ok {
				t.Fatalf("release: %v, %v", ok, err)
			}
			if d, err := s.Allow(ctx, "k", limit); err != nil || d.Allowed {
				t.Fatalf("the limit forgot its event: %+v, %v", d, err)
			}
		})
	}
}

func TestInvalidArguments(t *testing.T) {
	ctx := context.Background()
	calls := []struct {
		name string
		call func(store.Store) error
	}{
		{"reserve ttl 0", func(s store.Store) error { _, _, err := s.Reserve(ctx, "", "k", "v", 0); return err }},
		{"reserve ttl below 1ms", func(s store.Store) error { _, _, err := s.Reserve(ctx, "", "k", "v", time.Microsecond); return err }},
		{"replace negative ttl", func(s store.Store) error { _, err := s.Replace(ctx, "", "k", "v", "w", -time.Second); return err }},
		// The memory store's times, nanoseconds in an int64, would wrap
		// past the entry's expiry: the entry taken as expired at once.
		{"reserve ttl over a century", func(s store.Store) error {
			_, _, err := s.Reserve(ctx, "", "k", "v", store.MaxDuration+time.Millisecond)
			return err
		}},
		{"replace ttl over a century", func(s store.Store) error {
			_, err := s.Replace(ctx, "", "k", "v", "w", math.MaxInt64)
			return err
		}},
		{"allow, a period over a century", func(s store.Store) error {
			_, err := s.Allow(ctx, "k", store.Limit{Count: 1, Period: math.MaxInt64})
			return err
		}},
		{"allow all, a period over a century", func(s store.Store) error {
			_, err := s.AllowAll(ctx, []store.Take{{"k", store.Limit{Count: 5, Period: store.MaxDuration + time.Second}, 1}})
			return err
		}},
		{"allow count 0", func(s store.Store) error {
			_, err := s.Allow(ctx, "k", store.Limit{Count: 0, Period: time.Hour})
			return err
		}},
		{"allow period 0", func(s store.Store) error { _, err := s.Allow(ctx, "k", store.Limit{Count: 1}); return err }},
		// An interval (Period/Count) under the clocks' microsecond: the
		// memory store divided by a zero interval and panicked.
		{"allow period shorter than its count", func(s store.Store) error {
			_, err := s.Allow(ctx, "k", store.Limit{Count: 2, Period: time.Nanosecond})
			return err
		}},
		{"allow all, a period shorter than its count", func(s store.Store) error {
			_, err := s.AllowAll(ctx, []store.Take{{"k", store.Limit{Count: 2000, Period: time.Millisecond}, 1}})
			return err
		}},
		{"allow 0 events", func(s store.Store) error {
			_, err := s.AllowN(ctx, "k", store.Limit{Count: 5, Period: time.Hour}, 0)
			return err
		}},
		{"allow more events than the count", func(s store.Store) error {
			_, err := s.AllowN(ctx, "k", store.Limit{Count: 5, Period: time.Hour}, 6)
			return err
		}},
		{"allow all of nothing", func(s store.Store) error { _, err := s.AllowAll(ctx, nil); return err }},
		{"allow all, more events than the count", func(s store.Store) error {
			_, err := s.AllowAll(ctx, []store.Take{{"j", store.Limit{Count: 5, Period: time.Hour}, 1}, {"k", store.Limit{Count: 5, Period: time.Hour}, 6}})
			return err
		}},
		{"refund nothing", func(s store.Store) error { return s.RefundAll(ctx, nil, 0) }},
		{"refund more events than the count", func(s store.Store) error {
			return s.RefundAll(ctx, []store.Take{{"k", store.Limit{Count: 5, Period: time.Hour}, 6}}, 0)
		}},
		{"allow all, a key twice", func(s store.Store) error {
			l := store.Limit{Count: 5, Period: time.Hour}
			_, err := s.AllowAll(ctx, []store.Take{{"k", l, 1}, {"k", l, 1}})
			return err
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			open := b.start(t)
			s, _ := open(t)
			for _, c := range calls {
				err := c.call(s)
				var se *store.Error
				if !errors.As(err, &se) || errors.Is(err, store.ErrUnavailable) {
					t.Errorf("%s: %v, want an invalid-argument *store.Error", c.name, err)
				}
			}
			mustReserve(t, s, "k", "v", time.Minute)
		})
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			open := b.start(t)
			s, _ := open(t)
			mustReserve(t, s, "k", "v", time.Minute)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("second close: %v", err)
			}
			_, _, err1 := s.Reserve(ctx, "", "k", "v", time.Minute)
			_, err2 := s.Replace(ctx, "", "k", "v", "w", time.Minute)
			_, err3 := s.Release(ctx, "", "k", "v")
			_, err4 := s.Allow(ctx, "k", store.Limit{Count: 1, Period: time.Hour})
			_, err5 := s.AllowAll(ctx, []store.Take{{"k", store.Limit{Count: 1, Period: time.Hour}, 1}})
			err6 := s.RefundAll(ctx, []store.Take{{"k", store.Limit{Count: 1, Period: time.Hour}, 1}}, 0)
			_, err7 := s.ResetLimit(ctx, "k")
			_, err8 := s.PeekLimit(ctx, "k")
			for i, err := range []error{err1, err2, err3, err4, err5, err6, err7, err8} {
				if !errors.Is(err, store.ErrClosed) || !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrTimeout) {
					t.Errorf("call %d after close: %v", i+1, err)
				}
				if err != nil && !strings.HasPrefix(err.Error(), "store: ") {
					t.Errorf("call %d after close: message %q", i+1, err)
				}
			}
		})
	}
}
