package caddymodule

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestIdempotencyTakeoverLost: two repeats of an emergency call that
// failed both find its failure and try to take the key over; the one
// that loses, because the other took it and was answered with success
// meanwhile, gets that success again, as any repeat of an emergency call
// answered with success does, rather than a second call to the
// emergency service.
func TestIdempotencyTakeoverLost(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	call := func(answer string) idemCall {
		return idemCall{header: caller, op: "takeover", answer: answer, body: `{"to":"4255550100","operationId":"takeover"}`}
	}
	for _, st := range idemStores {
		t.Run(st.name, func(t *testing.T) {
			pool := newIdemPool(t, "primary")
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.config(t), "primary "+pool.Addr(),
				"destinations {\n\t\t\temergency 911 +14255550100\n\t\t}"))
			if first := e.call(call("conflict")); first.Status != http.StatusConflict {
				t.Fatalf("first: %d %s, want the pool's 409", first.Status, first.Body)
			}

			// The first repeat to try the takeover waits there until the
			// second has taken the key and been answered.
			var calls atomic.Int32
			waiting, release := make(chan struct{}), make(chan struct{})
			beforeTakeover = func() {
				if calls.Add(1) == 1 {
					close(waiting)
					<-release
				}
			}
			t.Cleanup(func() { beforeTakeover = func() {} })
			lost := make(chan testkit.Response, 1)
			go func() { lost <- e.call(call("")) }()
			<-waiting
			won := e.call(call(""))
			if won.Status != http.StatusCreated || won.Header.Get(headerReplayed) != "" {
				t.Fatalf("the repeat that took the key over: %d %s, want it delivered", won.Status, won.Body)
			}
			close(release)
			assertReplay(t, <-lost, won)
			if got := deliveries(pool.Pool, "takeover"); got != 2 {
				t.Errorf("delivered %d times, want 2 (the first, and the repeat that took the key over)", got)
			}
		})
	}
}
