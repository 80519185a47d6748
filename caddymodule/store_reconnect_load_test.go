package caddymodule

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestRedisConnectionsClosedUnderLoad: requests that come at once after
// Redis closed the edge's connections (a restart, a failover's CLIENT
// KILL) are each delivered once, none answered 503, though their
// reservations meet the closed connections of the pool one after
// another while others dial new ones: a reservation's script is sent
// again after its connection ended, and another request's new
// connection ends none of its retries (only a new connection that ends
// before Redis answered on it does: see TestRedisConnectionsClosedAtOnce).
func TestRedisConnectionsClosedUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		name string
		// start starts Redis, and returns it and the store's config.
		start func(t *testing.T) (*testkit.RedisServer, string)
	}{
		{"plain", func(t *testing.T) (*testkit.RedisServer, string) {
			srv := testkit.StartRedis(t)
			return srv, "store redis " + srv.URL() + " {\n\t\t\ttimeout 5s\n\t\t}"
		}},
		{"TLS", func(t *testing.T) (*testkit.RedisServer, string) {
			srv := testkit.StartRedisWith(t, testkit.RedisConfig{TLS: true})
			return srv, "store redis " + srv.URL() + " {\n\t\t\ttimeout 5s\n\t\t\ttls {\n\t\t\t\tca " + srv.CAFile() + "\n\t\t\t}\n\t\t}"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, store := tc.start(t)
			e := startLimitEdge(t, store, "idempotency")
			alice := caller{"tenant-1", "alice"}.header(t)
			const rounds, requests = 5, 40
			// send sends requests calls at once, with the operationIds
			// prefix-i, and fails the test for any answer but the pool's
			// 201.
			send := func(prefix string) {
				var wg sync.WaitGroup
				for i := range requests {
					wg.Go(func() {
						req := limitRequest("/communication/startPhoneAudio",
							fmt.Sprintf(`{"to":"+14255551234","operationId":"%s-%d"}`, prefix, i), alice)
						req.URL = e.url(req.URL)
						resp, err := testkit.Do(e.Client(), req)
						if err != nil || resp.Status != http.StatusCreated {
							t.Errorf("%s-%d: %d %s, %v; want the pool's 201", prefix, i, resp.Status, resp.Body, err)
						}
					})
				}
				wg.Wait()
			}
			for round := range rounds {
				// Requests at once leave the pool of reservations'
				// connections with many connections, which Redis then
				// closes.
				send(fmt.Sprintf("before-%d", round))
				if n := srv.KillClients(t); n == 0 {
					t.Fatal("CLIENT KILL closed none of the edge's connections")
				}
				send(fmt.Sprintf("after-%d", round))
			}
			if got, want := e.pool.Requests.Load(), int64(2*rounds*requests); got != want {
				t.Errorf("the pool got %d requests, want %d", got, want)
			}
			if strings.Contains(e.Logs().String(), `"msg":"store failing`) {
				t.Error("the edge saw the store fail")
			}
		})
	}
}

// TestRedisTLSLimitsConnectionsClosed: with a TLS Redis, requests under a
// limit after Redis closed the edge's connections (a failover's CLIENT
// KILL, or a restart on the same port) get their normal answers, none
// 503: the limit's script, which is not sent again, would fail on a
// closed connection, and go-redis looks into the limits' pooled TLS
// connections before a command, as into those without TLS (see
// store.checkedTLSDial). More requests one after another than the pool
// holds connections, then requests at once.
func TestRedisTLSLimitsConnectionsClosed(t *testing.T) {
	testTLSLimitsConnectionsClosed(t, false)
}

// TestRedisSentinelTLSLimitsConnectionsClosed: as
// TestRedisTLSLimitsConnectionsClosed, with a store that reaches a TLS
// master through a sentinel over TLS (sentinel edge), whose
// connections the master closes.
func TestRedisSentinelTLSLimitsConnectionsClosed(t *testing.T) {
	testTLSLimitsConnectionsClosed(t, true)
}

// testTLSLimitsConnectionsClosed runs TestRedisTLSLimitsConnectionsClosed,
// through a sentinel when sentinel is true.
func testTLSLimitsConnectionsClosed(t *testing.T, sentinel bool) {
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, srv *testkit.RedisServer)
	}{
		{"CLIENT KILL", func(t *testing.T, srv *testkit.RedisServer) {
			if n := srv.KillClients(t); n < 2 {
				t.Fatalf("CLIENT KILL closed %d of the edge's connections; want several", n)
			}
		}},
		{"restart", func(t *testing.T, srv *testkit.RedisServer) {
			srv.Kill()
			srv.Restart()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testkit.StartRedisWith(t, testkit.RedisConfig{TLS: true})
			url, sentinelLine := srv.URL(), ""
			if sentinel {
				s := testkit.StartRedisSentinel(t, srv, "edge")
				url, sentinelLine = s.URL(), "\t\t\tsentinel edge\n"
			}
			e := startLimitEdge(t, "store redis "+url+" {\n\t\t\ttimeout 5s\n"+sentinelLine+"\t\t\ttls {\n\t\t\t\tca "+srv.CAFile()+"\n\t\t\t}\n\t\t}",
				"limit calls 100000 per 1h")
			alice := caller{"tenant-1", "alice"}.header(t)
			// atOnce sends n calls at once, which mostly leave the limits'
			// pool with several connections, and fails the test for any
			// answer but the pool's 201.
			atOnce := func(what string, n int) {
				t.Helper()
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range n {
					wg.Go(func() {
						<-start
						if resp := e.callOp("", alice); resp.Status != http.StatusCreated {
							t.Errorf("%s, request %d: %d %s; want the pool's 201", what, i, resp.Status, resp.Body)
						}
					})
				}
				close(start)
				wg.Wait()
			}
			const requests = 40
			sent := 0
			// several sends calls at once until the edge holds several
			// connections to Redis: on a loaded machine the calls of one
			// round may each find a connection that another put back.
			several := func(what string) {
				t.Helper()
				testkit.Eventually(t, "the edge to hold several connections to Redis", func() bool {
					atOnce(what, requests)
					sent += requests
					return srv.Clients(t) >= 2
				})
			}
			several("before")
			tc.end(t, srv)
			sequential := 10*runtime.GOMAXPROCS(0) + 1
			for i := range sequential {
				if resp := e.callOp("", alice); resp.Status != http.StatusCreated {
					t.Fatalf("request %d after the connections closed: %d %s; want the pool's 201", i, resp.Status, resp.Body)
				}
			}
			several("before again")
			tc.end(t, srv)
			atOnce("after", requests)
			if got, want := e.pool.Requests.Load(), int64(sent+requests+sequential); got != want {
				t.Errorf("the pool got %d requests, want %d", got, want)
			}
			if strings.Contains(e.Logs().String(), `"msg":"store failing`) {
				t.Error("the edge saw the store fail")
			}
		})
	}
}
