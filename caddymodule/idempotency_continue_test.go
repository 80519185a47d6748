package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestIdempotencyGoneBeforeContinue: the edge sends a request's head
// with Expect: 100-continue, and the pool holds it without asking for the
// body; the client goes away. With its inputs in the body, the pool never
// had them: the request reached no pool, its operationId is released, and
// the client's repeat is delivered (once), not answered 409. With its
// inputs in the query too, a pool may have acted on the head alone: the
// key is kept, and the repeat gets 409.
func TestIdempotencyGoneBeforeContinue(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	for _, tc := range []struct {
		name     string
		call     idemCall
		released bool
	}{
		{"inputs in the body", idemCall{header: caller, op: "gone-before-continue"}, true},
		{"inputs in the query", idemCall{header: caller, query: "to=4255551234&operationId=gone-query", body: `{"subject":"s"}`}, false},
	} {
		for _, st := range idemStores {
			t.Run(tc.name+"/"+st.name, func(t *testing.T) {
				pool := newIdemPool(t, "primary")
				arrived := make(chan string, 1)
				pool.SetEarly(func(_ *testkit.Pool, _ http.ResponseWriter, r *http.Request) bool {
					arrived <- r.Header.Get("Expect")
					<-r.Context().Done() // the edge gave up on it
					return true
				})
				e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.config(t), "primary "+pool.Addr(), "expect_continue_after_idle 0"),
					testkit.WithAdmin())
				c := tc.call

				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				done := make(chan error, 1)
				go func() {
					req := e.request(c)
					req.Context = ctx
					resp, err := testkit.Do(e.Client(), req)
					if err == nil {
						err = fmt.Errorf("answered %d %s", resp.Status, resp.Body)
					}
					done <- err
				}()
				select {
				case expect := <-arrived:
					if expect != "100-continue" {
						t.Fatalf("the pool got Expect %q, want 100-continue", expect)
					}
				case err := <-done:
					t.Fatalf("before the pool had the request's head: %v", err)
				}
				cancel()
				if err := <-done; !errors.Is(err, context.Canceled) {
					t.Fatalf("the client got %v, want its own cancellation", err)
				}
				e.Logs().Wait(t, `"msg":"handled request"`, `"status":499`)
				if got := e.Metric(`caddy_ucwa_pool_requests_total{outcome="client_gone",pool="primary"}`); got != 1 {
					t.Errorf("client_gone attempts: %v, want 1", got)
				}

				pool.SetEarly(nil)
				resp := e.call(c)
				if !tc.released {
					assertConflict(t, resp)
					if got := pool.Requests.Load(); got != 0 {
						t.Errorf("the pool received %d requests, want none", got)
					}
					return
				}
				if resp.Status != http.StatusCreated || resp.Header.Get(headerReplayed) != "" {
					t.Fatalf("sent again: %d %v %s, want a new delivery", resp.Status, resp.Header, resp.Body)
				}
				if got := deliveries(pool.Pool, c.op); got != 1 {
					t.Errorf("delivered %d times, want once", got)
				}
			})
		}
	}
}
