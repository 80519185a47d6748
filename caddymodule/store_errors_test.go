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

// TestAuditRefusedByStore: a request the edge answers for its store (a
// Redis that is down under a limit, a memory store full, a caller at its
// max_entries_per_caller) has refused_by "store" in its audit line, so
// that an on-call reader tells its 503 from that of no pool taking the
// request, whose line has no refused_by and the same error.
func TestAuditRefusedByStore(t *testing.T) {
	alice := caller{"tenant-1", "alice"}.header(t)
	for _, tc := range []struct {
		name         string
		subdirective []string
		before       func(e limitEdge) // what makes the next call fail
		status       int
		refusedBy    string
	}{
		{"redis down under a limit", nil, nil, http.StatusServiceUnavailable, refusedByStore},
		{"memory store full", []string{"store memory 1", "idempotency"}, func(e limitEdge) {
			if resp := e.callOp("first", alice); resp.Status != http.StatusCreated {
				t.Fatalf("the first call: %d %s", resp.Status, resp.Body)
			}
		}, http.StatusServiceUnavailable, refusedByStore},
		{"caller at its share", []string{"store memory {\n\t\t\tmax_entries_per_caller 1\n\t\t}", "idempotency"}, func(e limitEdge) {
			if resp := e.callOp("first", alice); resp.Status != http.StatusCreated {
				t.Fatalf("the first call: %d %s", resp.Status, resp.Body)
			}
		}, http.StatusTooManyRequests, refusedByStore},
		{"no pool", []string{"store memory", "idempotency", fmt.Sprintf("backup 127.0.0.1:%d", testkit.FreePort(t))}, func(e limitEdge) {
			e.pool.Kill()
		}, http.StatusServiceUnavailable, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			subdirectives := tc.subdirective
			before := tc.before
			if subdirectives == nil {
				srv := testkit.StartRedis(t)
				subdirectives = []string{"store redis " + srv.URL() + " {\n\t\t\ttimeout 2s\n\t\t}", "limit calls 5 per 1h"}
				before = func(limitEdge) { srv.Kill() }
			}
			e := startLimitEdge(t, subdirectives...)
			before(e)
			n := len(auditLines(t, e.Logs().String()))
			if resp := e.callOp("refused", alice); resp.Status != tc.status {
				t.Fatalf("%d %s, want %d", resp.Status, resp.Body, tc.status)
			}
			var lines []auditLine
			testkit.Eventually(t, "the refusal's audit line", func() bool {
				lines = auditLines(t, e.Logs().String())
				return len(lines) > n
			})
			if got := lines[n]; got.Status != tc.status || got.RefusedBy != tc.refusedBy || got.Pool != "" {
				t.Errorf("the audit line %+v, want status %d, refused_by %q, no pool", got, tc.status, tc.refusedBy)
			}
		})
	}
}
