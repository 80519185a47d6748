package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestPoolStaleConnectionsNotFailures: a kept-alive connection that the
// pool closed while it was idle is not a failure of the pool's upstream
// for passive health checks. The request that met it goes out again on
// another connection of the same pool, and so do the requests after it:
// with fail_duration (and max_fails 1, Caddy's default) the upstream
// would otherwise be held back for fail_duration, every request going to
// the backup, or answered 410 CannotRedirect without one.
func TestPoolStaleConnectionsNotFailures(t *testing.T) {
	const idle = 2 // kept-alive connections made beforehand
	for _, tc := range []struct {
		name       string
		withBackup bool
	}{
		{"with backup", true},
		{"without backup", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary, reset := newStalePool(t, idle)
			pools := expectOnEveryRequest + "\t\tprimary " + primary.Addr() +
				" {\n\t\t\tfail_duration 10m\n\t\t\ttransport http {\n\t\t\t\texpect_continue_timeout 10m\n\t\t\t}\n\t\t}"
			var backup *testkit.Pool
			if tc.withBackup {
				backup = testkit.NewPool(t, "backup", testkit.AnswerCreated)
				pools += "\n\t\tbackup " + backup.Addr() + waitForBody
			}
			e := startEdge(t, "caddyfile", poolsCaddyfile(pools), testkit.WithAdmin())

			warmStalePool(t, e, primary, idle)

			reset.Store(1)
			for _, op := range []string{"op-stale", "op-next"} {
				if resp := e.startPhoneAudio(op); resp.Status != http.StatusCreated {
					t.Fatalf("%s: status %d, want 201: %s", op, resp.Status, resp.Body)
				}
				if got := strings.Count(strings.Join(primary.OperationIDs(), ","), op); got != 1 {
					t.Errorf("the primary received %s %d times, want once", op, got)
				}
				if backup != nil && len(backup.Received()) != 0 {
					t.Errorf("the backup received %d requests, want none", len(backup.Received()))
				}
			}
			if got := e.Metric(`caddy_ucwa_pool_requests_total{outcome="stale_connection",pool="primary"}`); got != 1 {
				t.Errorf("stale connections met: %v, want 1", got)
			}
			if got := e.Metric(`caddy_ucwa_pool_requests_total{outcome="unavailable",pool="primary"}`); got != 0 {
				t.Errorf("attempts that found the primary unavailable: %v, want 0", got)
			}
		})
	}
}
