package caddymodule

import (
	"net/http"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestPoolHooksOnRetriedRoundTrip: reverse_proxy's lb_retries makes a new
// client trace for each round trip, and the attempt's hooks are set on
// each: after a first upstream that cannot be dialed, a second that reads
// the request and resets may have had it, so the request is answered 502
// and not sent to the backup.
func TestPoolHooksOnRetriedRoundTrip(t *testing.T) {
	second := testkit.NewPool(t, "second", testkit.AnswerReset)
	backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
	e := startEdge(t, "caddyfile", poolsCaddyfile("\t\tprimary "+testkit.DownAddr(t)+" "+second.Addr()+
		" {\n\t\t\tlb_policy first\n\t\t\tlb_retries 1\n\t\t\tfail_duration 1m\n\t\t}\n\t\tbackup "+backup.Addr()+"\n"))
	resp := e.startPhoneAudio("op-retried")
	if resp.Status != http.StatusBadGateway {
		t.Errorf("status %d, want 502; body %s", resp.Status, resp.Body)
	}
	if got := len(second.Received()); got != 1 {
		t.Errorf("the second upstream received %d requests, want 1", got)
	}
	if got := len(backup.Received()); got != 0 {
		t.Errorf("the backup received %d requests, want 0: delivered twice", got)
	}
}
