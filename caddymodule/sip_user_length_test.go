package caddymodule

import (
	"net/http"
	"strings"
	"testing"
)

// TestSIPUserLength: a SIP user longer than 256 bytes as written is
// refused 400 ParameterValidationFailure before it is judged, and never
// delivered; one of 256 bytes is judged and delivered. Judging a user
// reads each of its characters that is neither ASCII, a letter nor a
// digit through Unicode's compatibility folding, several microseconds a
// character: a body of escaped superscript digits would cost the edge
// tens of milliseconds.
func TestSIPUserLength(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			sip_domains contoso.com *.contoso.com
			outside_line 9
		}`)
	header := http.Header{"Authorization": {callerBearer(t)}}
	name := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct {
		name, user string
		status     int
	}{
		{"a name of 256 bytes", name(256), http.StatusCreated},
		{"a name of 257 bytes", name(257), http.StatusBadRequest},
		{"escaped superscript digits", strings.Repeat("%C2%B9", 10000), http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.pool.Received())
			resp := e.postJSON(startOpsPath, `{"to":"sip:`+tc.user+`@gw.contoso.com"}`, header)
			if resp.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tc.status, resp.Body)
			}
			delivered := len(e.pool.Received()) - before
			if tc.status != http.StatusCreated {
				got := ucwaError(t, resp.Body)
				if got.Subcode != "ParameterValidationFailure" || len(got.Parameters) != 1 || got.Parameters[0].Name != "to" ||
					!strings.Contains(got.Parameters[0].Reason, "at most 256 bytes") {
					t.Errorf("error %+v, want ParameterValidationFailure of to, at most 256 bytes", got)
				}
				if delivered != 0 {
					t.Errorf("delivered %d, want none", delivered)
				}
			} else if delivered != 1 {
				t.Errorf("delivered %d, want 1", delivered)
			}
		})
	}
}
