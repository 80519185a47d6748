package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestDenyCallersAnswerSeries: through a real Caddy, a caller barred by
// deny_callers and a token that lacks the operation's scope, both
// answered 403, count in series of caddy_ucwa_edge_answers_total of
// their own (error "Forbidden/CallerDenied" and "Forbidden"), as their
// access log lines' ucwa_error and their answers' subcodes tell them
// apart: an operator sees a barred application apart from a
// misconfigured one in the metrics, as in the audit trail. A barred
// caller is one whatever its token's scopes.
func TestDenyCallersAnswerSeries(t *testing.T) {
	pool := newIdemPool(t, "primary")
	e := startEdge(t, "caddyfile", denyCallersCaddyfile(t, "sub barred-sub", pool.Pool), testkit.WithAdmin())
	series := func(code string) string {
		return `caddy_ucwa_edge_answers_total{error="` + code + `",status="403"}`
	}
	const noScope = "User.Read"
	accessLines := func() []string { return e.Logs().Lines(`"logger":"http.log.access`) }
	counts := map[string]float64{}
	for i, tc := range []struct {
		name    string
		claims  jwt.MapClaims
		code    string // the answer's code/subcode: its series and ucwa_error
		subcode string
	}{
		{"barred caller", jwt.MapClaims{"sub": "barred-sub"}, "Forbidden/CallerDenied", "CallerDenied"},
		{"token without the scope", jwt.MapClaims{"scp": noScope}, "Forbidden", ""},
		{"barred caller, token without the scope", jwt.MapClaims{"sub": "barred-sub", "scp": noScope}, "Forbidden/CallerDenied", "CallerDenied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			accessed := len(accessLines())
			resp := e.call(idemCall{header: denyCallersToken(t, tc.claims), op: fmt.Sprint("series-", i)})
			if resp.Status != http.StatusForbidden {
				t.Fatalf("%d %s, want 403", resp.Status, resp.Body)
			}
			if body := ucwaError(t, resp.Body); body.Subcode != tc.subcode {
				t.Errorf("subcode %q, want %q", body.Subcode, tc.subcode)
			}
			counts[tc.code]++
			for _, code := range []string{"Forbidden/CallerDenied", "Forbidden"} {
				want := counts[code]
				if want == 0 {
					want = -1 // a series shows from the edge's first such answer
				}
				if got := e.Metric(series(code)); got != want {
					t.Errorf("%s = %v, want %v", series(code), got, want)
				}
			}
			var lines []string
			testkit.Eventually(t, "an access log line", func() bool { lines = accessLines(); return len(lines) > accessed })
			var fields struct {
				Error string `json:"ucwa_error"`
			}
			if err := json.Unmarshal([]byte(lines[accessed]), &fields); err != nil {
				t.Fatal(err)
			}
			if fields.Error != tc.code {
				t.Errorf("the access log's ucwa_error %q, want %q", fields.Error, tc.code)
			}
		})
	}
	if got := len(pool.Received()); got != 0 {
		t.Errorf("the pool got %d requests, want none", got)
	}
}
