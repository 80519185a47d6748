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
		{"HTTP/2", testkit.NewHTTP2Pool, func(p *testkit.Pool) string { return h2Transport("2", p.CAFile(t)) }, false},
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
