package caddymodule

import (
	"net/http"
	"testing"
)

// TestLimitExtensionDialledThrough: with a destination policy, a number
// whose extension the rule max_extension_digits refuses (more digits
// than it allows) counts as international, as a short code does: a PBX
// that dials extensions through rings what follows the number it
// reaches, +14255551234;ext=011442071234567 a number in London. Report
// mode delivers it, and so does startEmergencyCall under any policy;
// the international limit counted it as a call to the US, and a caller
// placed as many of them as calls allows. An extension the policy takes
// (at most max_extension_digits) counts by its number alone.
func TestLimitExtensionDialledThrough(t *testing.T) {
	const throughLondon = "tel:+14255551234;ext=011442071234567"
	for _, tc := range []struct{ what, policy string }{
		{"report mode", "destinations {\n\t\t\tmode report\n\t\t}"},
		{"an emergency call", "destinations"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			e := startLimitEdge(t, "store memory", tc.policy, "limit calls 10 per 1h", "limit international 1 per 24h international")
			alice := caller{"tenant-1", "alice"}.header(t)
			send := audioCallTo
			if tc.what == "an emergency call" {
				send = emergencyCallTo
			}
			// A short extension is the number's own: no call abroad.
			for range 2 {
				if resp := e.send(send("tel:+14255551234;ext=1234", alice)); resp.Status != http.StatusCreated {
					t.Fatalf("an extension of four digits: %d %s", resp.Status, resp.Body)
				}
			}
			if resp := e.send(send(throughLondon, alice)); resp.Status != http.StatusCreated {
				t.Fatalf("the first call through: %d %s", resp.Status, resp.Body)
			}
			resp := e.send(send(throughLondon, alice))
			if tc.what == "an emergency call" {
				// Delivered all the same, over the limit.
				if resp.Status != http.StatusCreated {
					t.Fatalf("the second call through: %d %s", resp.Status, resp.Body)
				}
				if got := e.Metric(`caddy_ucwa_limit_exempted_total{limit="international"}`); got != 1 {
					t.Errorf(`caddy_ucwa_limit_exempted_total{limit="international"} = %v, want 1`, got)
				}
				return
			}
			assertLimited(t, resp, "international", 24*3600)
			if got := e.pool.Requests.Load(); got != 3 {
				t.Errorf("the pool got %d requests, want 3", got)
			}
		})
	}
}
