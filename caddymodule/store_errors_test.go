package caddymodule

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestStoreErrorsOncePerRequest: through a real Caddy and a real
// redis-server, stopped or paused, a request whose reservation fails
// (on_error closed) counts once in caddy_ucwa_store_errors_total, as the
// README says (each key a request could not reserve): the release of
// that key the edge tries behind the 503, in case Redis made the
// reservation without answering, fails too and is not counted again
// (one failing request counted two). The counters are read once the
// store is held by no request, the release's goroutine included.
func TestStoreErrorsOncePerRequest(t *testing.T) {
	const storeErrors = `caddy_ucwa_store_errors_total{on_error="closed"}`
	for _, tc := range []struct {
		name string
		down func(*testkit.RedisServer)
	}{
		{"stopped", (*testkit.RedisServer).Kill},
		{"paused", (*testkit.RedisServer).Freeze},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testkit.StartRedis(t)
			e := startLimitEdge(t, "store redis "+srv.URL()+" {\n\t\t\ttimeout 2s\n\t\t}", "idempotency")
			alice := caller{"tenant-1", "alice"}.header(t)
			if resp := e.callOp("before", alice); resp.Status != http.StatusCreated {
				t.Fatalf("with Redis up: %d %s", resp.Status, resp.Body)
			}
			s := onlyRedisStore(t)
			tc.down(srv)
			for i := 1; i <= 2; i++ {
				op := fmt.Sprint("down-", i)
				if resp := e.callOp(op, alice); resp.Status != http.StatusServiceUnavailable {
					t.Fatalf("%s with Redis %s: %d %s, want 503", op, tc.name, resp.Status, resp.Body)
				}
				testkit.Eventually(t, "the store held by no request", func() bool { return s.drained.requests.Load() == 0 })
				for sample, want := range map[string]float64{
					storeErrors: float64(i),
					`caddy_ucwa_idempotency_total{result="store_error"}`:                     float64(i),
					`caddy_ucwa_edge_answers_total{error="ServiceUnavailable",status="503"}`: float64(i),
				} {
					if got := e.Metric(sample); got != want {
						t.Errorf("after %d failing requests: %s = %v, want %v", i, sample, got, want)
					}
				}
			}
			if got := len(e.pool.Received()); got != 1 {
				t.Errorf("the pool got %d requests, want 1", got)
			}
		})
	}
}

// onlyRedisStore is the Redis store in use, the only one.
func onlyRedisStore(t *testing.T) *sharedStore {
	t.Helper()
	var found []*sharedStore
	stores.Range(func(_, v any) bool {
		if s, ok := v.(*sharedStore); ok && s.redis != nil {
			found = append(found, s)
		}
		return true
	})
	if len(found) != 1 {
		t.Fatalf("%d Redis stores in use, want 1", len(found))
	}
	return found[0]
}
