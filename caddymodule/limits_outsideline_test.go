package caddymodule

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestLimitShortCodeAfterOutsideLine: a SIP user of digits that reads as
// a number of default_region as written, and as a short code after an
// outside-line prefix (sip:011880@gw with outside_line 0 in Germany: +49
// 11880 as written, 11880, directory enquiries, at a gateway that takes
// 0), counts as international, as the short code alone (sip:11880@gw)
// does: the international limit counted it as a call within Germany,
// and in report mode (or under a policy without number rules, which
// delivers short codes) a caller rang the short code as often as calls
// allowed. The digits after the prefix the rule short_code takes (at
// most max_extension_digits) count by the readings alone.
func TestLimitShortCodeAfterOutsideLine(t *testing.T) {
	for _, tc := range []struct {
		what, to, policy string
		international    bool
	}{
		{"a short code after the outside line", "sip:011880@gw.contoso.com", "", true},
		{"the same short code alone", "sip:11880@gw.contoso.com", "", true},
		{"within max_extension_digits", "sip:011880@gw.contoso.com", "max_extension_digits 5", false},
	} {
		t.Run(tc.what, func(t *testing.T) {
			pool := testkit.NewUpstream(t)
			e := limitEdge{startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		default_region DE
		%s
		destinations {
			mode report
			outside_line 0
			%s
		}
		limit calls 10 per 1h
		limit international 1 per 24h international
		primary %s
	}
}`, idemAuth(t), tc.policy, pool.Addr()), testkit.WithAdmin()), pool}
			alice := caller{"tenant-1", "alice"}.header(t)
			if resp := e.send(audioCallTo(tc.to, alice)); resp.Status != http.StatusCreated {
				t.Fatalf("the first call: %d %s", resp.Status, resp.Body)
			}
			resp := e.send(audioCallTo(tc.to, alice))
			if tc.international {
				assertLimited(t, resp, "international", 24*3600)
				return
			}
			if resp.Status != http.StatusCreated {
				t.Fatalf("the second call: %d %s", resp.Status, resp.Body)
			}
		})
	}
}
