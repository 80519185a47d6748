package caddymodule

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestNoPoolRetryAfter: the 503 of a request that no pool can take
// carries a Retry-After: when the pool whose health checks hold an
// upstream back the shortest has let one that came back be tried again
// (passive fail_duration; active health_interval times health_passes,
// which do not check dynamic upstreams; the longer of both in one pool),
// in whole seconds rounded up, and a second for a pool with neither,
// which is tried again at the next request. The 410 of a primary alone,
// which says not to retry, carries none.
func TestNoPoolRetryAfter(t *testing.T) {
	// block is a pool's block of reverse_proxy subdirectives.
	block := func(lines ...string) string {
		return " {\n\t\t\t" + strings.Join(lines, "\n\t\t\t") + "\n\t\t}"
	}
	for _, tc := range []struct {
		name string
		// primary and backup follow `primary` and `backup` (none for
		// backup ""); DOWN is an address, PORT a port, that nothing
		// listens on, another for each pool.
		primary, backup string
		status          int
		retryAfter      string
	}{
		{"no health checks", "DOWN", "DOWN", http.StatusServiceUnavailable, "1"},
		{"passive, rounded up", "DOWN" + block("fail_duration 20s"), "DOWN" + block("fail_duration 2500ms"), http.StatusServiceUnavailable, "3"},
		{"a pool without health checks", "DOWN" + block("fail_duration 20s"), "DOWN", http.StatusServiceUnavailable, "1"},
		{"active, its passes", "DOWN" + block("health_uri /health", "health_interval 4s", "health_passes 3"), "DOWN" + block("fail_duration 30s"), http.StatusServiceUnavailable, "12"},
		{"active, its default interval", "DOWN" + block("health_uri /health"), "DOWN" + block("fail_duration 45s"), http.StatusServiceUnavailable, "30"},
		{"active and passive, the longer", "DOWN" + block("fail_duration 10s", "health_uri /health", "health_interval 4s"), "DOWN" + block("fail_duration 45s"), http.StatusServiceUnavailable, "10"},
		{"dynamic upstreams, no active checks", block("dynamic a localhost PORT", "fail_duration 5s", "health_uri /health", "health_interval 40s"), "DOWN" + block("fail_duration 45s"), http.StatusServiceUnavailable, "5"},
		{"no backup: 410, no retry", "DOWN" + block("fail_duration 20s"), "", http.StatusGone, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := func(name, line string) string {
				port := testkit.Port(t)
				line = strings.ReplaceAll(line, "DOWN", testkit.Addr(port))
				return "\t\t" + name + " " + strings.ReplaceAll(line, "PORT", strconv.Itoa(port)) + "\n"
			}
			pools := pool("primary", tc.primary)
			if tc.backup != "" {
				pools += pool("backup", tc.backup)
			}
			e := startEdge(t, "caddyfile", poolsCaddyfile(pools))
			resp := e.startPhoneAudio("op-retry-after")
			if resp.Status != tc.status {
				t.Fatalf("%d %s, want %d", resp.Status, resp.Body, tc.status)
			}
			assertRetryAfter(t, resp, tc.retryAfter)
			if tc.status == http.StatusServiceUnavailable {
				if e := ucwaError(t, resp.Body); e.Code != "ServiceUnavailable" || e.Message != errNoPool.Message {
					t.Errorf("%s, want the edge's 503 of no pool", resp.Body)
				}
			}
		})
	}
}

// TestStoreRetryAfter: a request refused because the store failed it
// with on_error closed (Redis down, a full memory store or Redis over
// its maxmemory; for idempotency and for the limits) gets a 503 with
// Retry-After: 1 and is not delivered. A caller at its own share of the
// store gets 429 with a Retry-After of when its share has room again
// (see TestCallerShareRetryAfter): on the memory store's clock, which
// stands still, the whole idempotency window.
func TestStoreRetryAfter(t *testing.T) {
	alice := caller{"tenant-1", "alice"}.header(t)
	bob := caller{"tenant-2", "bob"}.header(t)
	redisDown := func(t *testing.T, feature string) (limitEdge, func(limitEdge)) {
		srv := testkit.StartRedis(t)
		e := startLimitEdge(t, "store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t}", feature)
		return e, func(limitEdge) { srv.Kill() }
	}
	for _, tc := range []struct {
		name string
		// start starts the edge and returns what brings the store to
		// fail bob's call.
		start      func(t *testing.T) (limitEdge, func(limitEdge))
		status     int
		message    string
		retryAfter string
	}{
		{"redis down, idempotency", func(t *testing.T) (limitEdge, func(limitEdge)) {
			return redisDown(t, "idempotency")
		}, http.StatusServiceUnavailable, errStoreUnavailable.Message, "1"},
		{"redis down, a limit", func(t *testing.T) (limitEdge, func(limitEdge)) {
			return redisDown(t, "limit calls 5 per 1h")
		}, http.StatusServiceUnavailable, errStoreUnavailable.Message, "1"},
		{"redis over its maxmemory", func(t *testing.T) (limitEdge, func(limitEdge)) {
			srv := testkit.StartRedis(t)
			e := startLimitEdge(t, "store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t}", "idempotency")
			return e, func(limitEdge) {
				rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
				defer rdb.Close()
				overMaxmemory(t, rdb)
			}
		}, http.StatusServiceUnavailable, errStoreFull.Message, "1"},
		{"memory full, idempotency", func(t *testing.T) (limitEdge, func(limitEdge)) {
			e := startLimitEdge(t, "store memory 2 {\n\t\t\tmax_entries_per_caller 2\n\t\t}", "idempotency")
			return e, func(e limitEdge) { fillWithCalls(t, e, alice, 2) }
		}, http.StatusServiceUnavailable, errStoreFull.Message, "1"},
		{"memory full, a limit", func(t *testing.T) (limitEdge, func(limitEdge)) {
			// alice's call takes the store's one entry: her budget.
			e := startLimitEdge(t, "store memory 1 {\n\t\t\tmax_entries_per_caller 1\n\t\t}", "limit calls 5 per 1h")
			return e, func(e limitEdge) { fillWithCalls(t, e, alice, 1) }
		}, http.StatusServiceUnavailable, errStoreFull.Message, "1"},
		{"a caller's share full: 429", func(t *testing.T) (limitEdge, func(limitEdge)) {
			memoryStoreClock = testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)).Now
			t.Cleanup(func() { memoryStoreClock = nil })
			e := startLimitEdge(t, "store memory 10 {\n\t\t\tmax_entries_per_caller 1\n\t\t}", "idempotency")
			return e, func(e limitEdge) { fillWithCalls(t, e, bob, 1) }
		}, http.StatusTooManyRequests, errCallerShareFull.Message, "600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, fail := tc.start(t)
			fail(e)
			before := e.pool.Requests.Load()
			resp := e.callOp("bob-1", bob)
			if resp.Status != tc.status || ucwaError(t, resp.Body).Message != tc.message {
				t.Fatalf("%d %s, want %d %q", resp.Status, resp.Body, tc.status, tc.message)
			}
			assertRetryAfter(t, resp, tc.retryAfter)
			if got := e.pool.Requests.Load() - before; got != 0 {
				t.Errorf("the pool got %d requests, want none", got)
			}
		})
	}
}

// TestCallerShareRetryAfter: a caller refused for its share of the
// store (max_entries_per_caller, on_error closed) gets 429 with a
// Retry-After of when its reservation that expires first does, in
// whole seconds rounded up. On the memory store's clock, exactly: a
// second before, the caller is refused again, with Retry-After: 1 for
// the half second left, and its retry then is delivered. On Redis's
// own, the seconds until the caller's count, on the server's clock, is
// past the member of its reservation, whose score the test reads: the
// refusal read that clock between the test's readings before and after
// it. (That Redis's count has room at that time is TestOwnerRetryAfter's;
// waiting for it here would put the real clock in an HTTP test.)
func TestCallerShareRetryAfter(t *testing.T) {
	bob := caller{"tenant-2", "bob"}.header(t)
	alice := caller{"tenant-1", "alice"}.header(t)
	refused := func(t *testing.T, e limitEdge, op string) testkit.Response {
		t.Helper()
		resp := e.callOp(op, bob)
		if resp.Status != http.StatusTooManyRequests || ucwaError(t, resp.Body).Message != errCallerShareFull.Message {
			t.Fatalf("%s: %d %s, want the 429 of a caller's share", op, resp.Status, resp.Body)
		}
		return resp
	}
	delivered := func(t *testing.T, e limitEdge, op string, h http.Header) {
		t.Helper()
		if resp := e.callOp(op, h); resp.Status != http.StatusCreated {
			t.Fatalf("%s: %d %s, want it delivered", op, resp.Status, resp.Body)
		}
	}
	t.Run("memory", func(t *testing.T) {
		clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
		memoryStoreClock = clock.Now
		t.Cleanup(func() { memoryStoreClock = nil })
		e := startLimitEdge(t, "store memory 10 {\n\t\t\tmax_entries_per_caller 2\n\t\t}", "idempotency 10m")
		delivered(t, e, "first", bob)
		clock.Advance(90 * time.Second)
		delivered(t, e, "second", bob)
		before := e.pool.Requests.Load()
		for _, step := range []struct {
			advance    time.Duration
			retryAfter string
		}{
			// first expires 600s after it was answered.
			{30*time.Second + 500*time.Millisecond, "480"},
			{479 * time.Second, "1"},
		} {
			clock.Advance(step.advance)
			assertRetryAfter(t, refused(t, e, "over"), step.retryAfter)
		}
		delivered(t, e, "alice", alice)
		if got := e.pool.Requests.Load() - before; got != 1 {
			t.Errorf("the pool got %d requests, want alice's alone", got)
		}
		clock.Advance(500 * time.Millisecond)
		delivered(t, e, "over", bob)
		// Now second, answered 90s after first, expires first.
		assertRetryAfter(t, refused(t, e, "over-again"), "90")
	})
	t.Run("redis", func(t *testing.T) {
		srv := testkit.StartRedis(t)
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		t.Cleanup(func() { rdb.Close() })
		ctx := context.Background()
		serverMs := func() int64 {
			now, err := rdb.Time(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			return now.UnixMilli()
		}
		e := startLimitEdge(t, "store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t\tmax_entries_per_caller 1\n\t\t}", "idempotency 10m")
		delivered(t, e, "first", bob)
		owners, err := rdb.Keys(ctx, "*owner:*").Result()
		if err != nil || len(owners) != 1 {
			t.Fatalf("the counts in Redis: %q %v, want bob's", owners, err)
		}
		members, err := rdb.ZRangeWithScores(ctx, owners[0], 0, -1).Result()
		if err != nil || len(members) != 1 {
			t.Fatalf("bob's count: %v %v, want first's reservation", members, err)
		}
		room := int64(members[0].Score) + 1 // counted until the clock is past it
		seconds := func(ms int64) int64 { return max((ms+999)/1000, 1) }
		earliest := serverMs()
		resp := refused(t, e, "over")
		latest := serverMs()
		got := resp.Header.Values("Retry-After")
		secs, err := strconv.ParseInt(strings.Join(got, ","), 10, 64)
		if most, least := seconds(room-earliest), seconds(room-latest); err != nil || secs < least || secs > most {
			t.Fatalf("Retry-After %q, want %d (or down to %d, by when Redis read its clock)", got, most, least)
		}
	})
}

// fillWithCalls has the caller of h make n calls, with operationIds of
// their own, that the edge delivers.
func fillWithCalls(t *testing.T, e limitEdge, h http.Header, n int) {
	t.Helper()
	for i := range n {
		if resp := e.callOp("fill-"+strconv.Itoa(i), h); resp.Status != http.StatusCreated {
			t.Fatalf("filling the store: %d %s", resp.Status, resp.Body)
		}
	}
}

// assertRetryAfter checks that resp has one Retry-After, want, or none
// for want "".
func assertRetryAfter(t *testing.T, resp testkit.Response, want string) {
	t.Helper()
	if got := resp.Header.Values("Retry-After"); want == "" && len(got) != 0 || want != "" && (len(got) != 1 || got[0] != want) {
		t.Errorf("Retry-After %q, want %q", got, want)
	}
}

// TestNoPoolRetryAfterStraggler: a request that comes to the old
// configuration's handler once a reload cleaned its pools up (its head
// read just as the old server shut down) and that no pool takes gets a
// 503 with Retry-After: 1, not what the old pools' health checks said:
// its retry reaches the new configuration's pools, which hold back no
// upstream for a failure the old ones counted.
func TestNoPoolRetryAfterStraggler(t *testing.T) {
	release := make(chan struct{})
	auth := testkit.NewPool(t, "auth", func(_ *testkit.Pool, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test-Hold") != "" {
			<-release
		}
		w.WriteHeader(http.StatusOK)
	})
	down := func() string {
		return testkit.Addr(testkit.Port(t)) + " {\n\t\t\t\tfail_duration 30s\n\t\t\t}"
	}
	cfg := behindForwardAuth(auth, "primary "+down()+"\n\t\t\tbackup "+down())
	e := startEdge(t, "caddyfile", cfg)
	// Before the reload: the pools' own.
	before := e.send(idemCall{op: "op-before"}.request())
	if before.Status != http.StatusServiceUnavailable {
		t.Fatalf("%d %s, want 503", before.Status, before.Body)
	}
	assertRetryAfter(t, before, "30")
	answer := e.sendHeld(t, idemCall{op: "op-straggler", header: http.Header{"X-Test-Hold": {"1"}}})
	auth.Arrived.WaitFor(t, 2, "requests at forward_auth")
	e.Load("caddyfile", strings.Replace(cfg, "default_region US", "default_region GB", 1))
	close(release)
	resp := <-answer
	if resp.Status != http.StatusServiceUnavailable {
		t.Fatalf("the request that reached the old handler after the reload: %d %s, want 503", resp.Status, resp.Body)
	}
	assertRetryAfter(t, resp, "1")
}
