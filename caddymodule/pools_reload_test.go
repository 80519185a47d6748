package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestPoolReloadAnswersInFlight: a request at the pool while a reload
// cleans the old config up gets the pool's answer, delivered once, over
// every HTTP version a pool's transport speaks: the old config's
// transports are cleaned up once its requests are done (HTTP/3's closed
// the request's connection, and the client got 502 though the pool had
// the request). Then they are: the old config's idle connections to an
// HTTP/1.1 pool are closed. (An HTTP/2 connection may still count its
// stream as open then, and closes when idle for its timeout.)
func TestPoolReloadAnswersInFlight(t *testing.T) {
	for _, tc := range []struct {
		name    string
		newPool func(t testing.TB, name string, answer testkit.Answer) *testkit.Pool
		// The pool's block, given the pool; "": none.
		block func(p *testkit.Pool) string
		// Whether the old config's connections close with its cleanup.
		closesConns bool
	}{
		{"HTTP/1.1", testkit.NewPool, func(*testkit.Pool) string { return "" }, true},
		{"HTTP/2", testkit.NewHTTP2Pool, func(p *testkit.Pool) string { return h2Transport("2", p.CAFile(t)) }, true},
		{"HTTP/3", testkit.NewHTTP3Pool, func(p *testkit.Pool) string { return h2Transport("3", p.CAFile(t)) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			pool := tc.newPool(t, "primary", func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) {
				<-release
				testkit.AnswerCreated(p, w, r)
			})
			cfg := poolsCaddyfile("\t\tprimary " + pool.URL() + tc.block(pool))
			e := startEdge(t, "caddyfile", cfg)
			answer := e.sendHeld(t, idemCall{op: "op-reload"})
			pool.Requests.WaitFor(t, 1, "requests at the pool")
			e.Load("caddyfile", strings.Replace(cfg, "default_region US", "default_region GB", 1))
			close(release)
			if resp := <-answer; resp.Status != http.StatusCreated {
				t.Fatalf("the request at the pool during the reload: %d %s, want the pool's 201", resp.Status, resp.Body)
			}
			if got := deliveries(pool, "op-reload"); got != 1 {
				t.Errorf("delivered %d times", got)
			}
			if tc.closesConns {
				pool.Closed.WaitFor(t, pool.Conns.Load(), "the old config's connections to the pool to close")
			}
		})
	}
}

// TestPoolReloadKeepsWaiting: a request waiting for its pool to come
// back (lb_try_duration) while a reload cleans the old config up keeps
// waiting, and gets what it would have got without the reload: the
// pool's answer once it is back, delivered once, with nothing for the
// backup. The proxies waited on the config's context, which Caddy
// cancels at the reload: the request went to the backup at once (410
// without one), and the old config's health checker stopped, so that
// nothing would have told it the pool was back.
func TestPoolReloadKeepsWaiting(t *testing.T) {
	for _, tc := range []struct {
		name string
		// The primary's subdirectives besides lb_try_duration.
		directives string
		// down takes the primary down, back brings it back.
		down, back func(t *testing.T, p *testkit.Pool)
		// waiting returns once the request waits for the primary.
		waiting func(t *testing.T, e edge, p *testkit.Pool)
	}{
		{"connection refused", "",
			func(_ *testing.T, p *testkit.Pool) { p.Kill() },
			func(t *testing.T, p *testkit.Pool) { p.Restart(t) },
			func(t *testing.T, e edge, p *testkit.Pool) {
				// A failed try: the request waits for the next.
				e.Logs().Wait(t, `"msg":"upstream roundtrip"`, `"upstream":"`+p.Addr()+`"`, `"error"`)
			}},
		{"marked down by its health check", "\n\t\t\thealth_uri /health\n\t\t\thealth_interval 50ms",
			func(t *testing.T, p *testkit.Pool) { p.SetHealthy(false) },
			func(_ *testing.T, p *testkit.Pool) { p.SetHealthy(true) },
			func(t *testing.T, _ edge, _ *testkit.Pool) {
				// No upstream to try: the request is at the pool, and
				// waits for one.
				testkit.Eventually(t, "the request at the pool", func() bool { return requestsAtPool() == 1 })
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary := testkit.NewPool(t, "primary", testkit.AnswerCreated)
			backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
			tc.down(t, primary)
			cfg := "{\n\tmetrics\n\tlog {\n\t\tlevel DEBUG\n\t}\n}\n" + poolsCaddyfile("\t\tprimary "+primary.Addr()+
				" {\n\t\t\tlb_try_duration 1h"+tc.directives+"\n\t\t}\n\t\tbackup "+backup.Addr())
			e := startEdge(t, "caddyfile", cfg, testkit.WithAdmin())
			if tc.directives != "" {
				e.Logs().Wait(t, `"msg":"event"`, `"name":"unhealthy"`, primary.Addr())
			}
			answer := e.sendHeld(t, idemCall{op: "op-waiting"})
			tc.waiting(t, e, primary)
			// Load returns once the old config is cleaned up.
			e.Load("caddyfile", strings.Replace(cfg, "default_region US", "default_region GB", 1))
			tc.back(t, primary)
			if resp := <-answer; resp.Status != http.StatusCreated {
				t.Fatalf("the request waiting for the primary during the reload: %d %s, want the primary's 201", resp.Status, resp.Body)
			}
			if got := deliveries(primary, "op-waiting"); got != 1 {
				t.Errorf("delivered %d times to the primary", got)
			}
			if got := len(backup.Received()); got != 0 {
				t.Errorf("the backup received %d requests", got)
			}
		})
	}
}

// TestPoolReloadClosesHTTP2Conns: the old config's HTTP/2 connection to
// a pool closes once its requests are done, although a stream that is no
// request's of the old config's is still open on it then (here its
// health check, which hangs; otherwise the stream of a request that just
// ended, which net/http forgets a moment later): closing the transports
// closes only connections without a stream, and the connection stayed
// open until its idle timeout.
func TestPoolReloadClosesHTTP2Conns(t *testing.T) {
	release := make(chan struct{})
	var checks testkit.Counter
	pool := testkit.NewHTTP2Pool(t, "primary", func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			checks.Add()
			testkit.AnswerHang(p, w, r)
			return
		}
		<-release
		testkit.AnswerCreated(p, w, r)
	})
	cfg := poolsCaddyfile("\t\tprimary " + pool.URL() + " {\n\t\t\thealth_uri /hang\n\t\t\thealth_interval 1h\n\t\t\thealth_timeout 1h" +
		"\n\t\t\ttransport http {\n\t\t\t\tversions 2\n\t\t\t\ttls_trust_pool file " + pool.CAFile(t) + "\n\t\t\t}\n\t\t}")
	e := startEdge(t, "caddyfile", cfg)
	// The health check's connection, which the request then shares.
	checks.WaitFor(t, 1, "health checks at the pool")
	answer := e.sendHeld(t, idemCall{op: "op-reload"})
	pool.Arrived.WaitFor(t, 2, "the health check and the request at the pool")
	e.Load("caddyfile", strings.Replace(cfg, "default_region US", "default_region GB", 1))
	close(release)
	if resp := <-answer; resp.Status != http.StatusCreated {
		t.Fatalf("the request at the pool during the reload: %d %s, want the pool's 201", resp.Status, resp.Body)
	}
	// The new config's health check holds a connection of its own.
	pool.Closed.WaitFor(t, 1, "the old config's connection to the pool to close")
}

// behindForwardAuth is the Caddyfile of an edge whose ucwa handler (jwt
// off, default_region US, and the given subdirectives) comes after a
// forward_auth to auth: a request waits there until auth answers, as
// one a handler before the edge holds up while a reload begins.
func behindForwardAuth(auth *testkit.Pool, subdirectives string) string {
	return `:EDGE_PORT {
	route {
		forward_auth ` + auth.Addr() + ` {
			uri /auth
		}
		ucwa {
			jwt off
			default_region US
			` + subdirectives + `
		}
	}
}`
}

// TestPoolReloadStraggler pins what befalls a request that reaches the
// old config's ucwa handler only after the reload cleaned the old config
// up, with no request at its pools then (the set closed at once): one
// held up in a handler before ucwa (here forward_auth), or whose head the
// old server read just as it shut down. The set is closed for good by
// then. Over HTTP/1.1 and HTTP/2 the closed transport still dials, and
// the request is delivered once; over HTTP/3 the closed transport fails
// the request before it is sent, which the edge answers as a pool that
// cannot take it (410 without a backup; a backup's transport is closed
// too). Never twice either way. (Nor does the request wait out a pool's
// lb_try_duration: its proxy's context has ended.)
func TestPoolReloadStraggler(t *testing.T) {
	for _, tc := range []struct {
		name    string
		newPool func(t testing.TB, name string, answer testkit.Answer) *testkit.Pool
		// The pool's block, given the pool; "": none.
		block      func(p *testkit.Pool) string
		wantStatus int
		// Whether the pool receives the request.
		delivered bool
	}{
		{"HTTP/1.1", testkit.NewPool, func(*testkit.Pool) string { return "" }, http.StatusCreated, true},
		{"HTTP/2", testkit.NewHTTP2Pool, func(p *testkit.Pool) string { return h2Transport("2", p.CAFile(t)) }, http.StatusCreated, true},
		{"HTTP/3", testkit.NewHTTP3Pool, func(p *testkit.Pool) string { return h2Transport("3", p.CAFile(t)) }, http.StatusGone, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			auth := testkit.NewPool(t, "auth", func(_ *testkit.Pool, w http.ResponseWriter, _ *http.Request) {
				<-release
				w.WriteHeader(http.StatusOK)
			})
			pool := tc.newPool(t, "primary", testkit.AnswerCreated)
			cfg := behindForwardAuth(auth, "primary "+pool.URL()+tc.block(pool))
			e := startEdge(t, "caddyfile", cfg)
			answer := e.sendHeld(t, idemCall{op: "op-straggler"})
			auth.Arrived.WaitFor(t, 1, "requests at forward_auth")
			e.Load("caddyfile", strings.Replace(cfg, "default_region US", "default_region GB", 1))
			close(release)
			if resp := <-answer; resp.Status != tc.wantStatus {
				t.Errorf("the request that reached the old handler after the reload: %d %s, want %d", resp.Status, resp.Body, tc.wantStatus)
			}
			want := 0
			if tc.delivered {
				want = 1
			}
			if got := deliveries(pool, "op-straggler"); got != want {
				t.Errorf("delivered %d times, want %d", got, want)
			}
		})
	}
}
