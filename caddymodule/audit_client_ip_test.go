package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestAuditClientIP: an audit line's remote_ip is the connection's
// address, and client_ip, only when Caddy's trusted_proxies make the
// client another, the client's: for a guarded request, a token's
// refusal and a near miss alike. A server without trusted_proxies takes
// no X-Forwarded-For, and its lines have no client_ip.
func TestAuditClientIP(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	pool := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`{
	servers :PROXIED_PORT {
		trusted_proxies static 127.0.0.1/32
	}
}
(edge) {
	ucwa {
		`+opsJWT+`
		default_region US
		primary %s
	}
}
:PROXIED_PORT {
	import edge
}
:EDGE_PORT {
	import edge
}`, pool.Addr()))
	forwarded := http.Header{"X-Forwarded-For": {"203.0.113.7"}}
	withToken := http.Header{"X-Forwarded-For": {"203.0.113.7"}, "Authorization": {callerBearer(t)}}
	for _, tc := range []struct {
		name     string
		port     string
		path     string
		header   http.Header
		status   int
		clientIP string // "": none
	}{
		{"a guarded request through a trusted proxy", "PROXIED_PORT", startOpsPath, withToken, http.StatusCreated, "203.0.113.7"},
		{"a refused token through a trusted proxy", "PROXIED_PORT", startOpsPath, forwarded, http.StatusUnauthorized, "203.0.113.7"},
		{"a near miss through a trusted proxy", "PROXIED_PORT", startOpsPath + "/x", forwarded, http.StatusNotFound, "203.0.113.7"},
		{"a guarded request straight from the client", "PROXIED_PORT", startOpsPath, http.Header{"Authorization": {callerBearer(t)}}, http.StatusCreated, ""},
		{"a guarded request on a server without trusted_proxies", "EDGE_PORT", startOpsPath, withToken, http.StatusCreated, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(auditLines(t, e.Logs().String()))
			resp := testkit.Send(t, e.Client(), testkit.Request{URL: e.URL(tc.port, tc.path),
				ContentType: "application/json", Body: `{"to":"+14255551234"}`, Header: tc.header})
			if resp.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tc.status, resp.Body)
			}
			var lines []map[string]any
			testkit.Eventually(t, "the request's audit line", func() bool {
				lines = nil
				for _, line := range e.Logs().Lines(`"logger":"http.handlers.ucwa.audit"`) {
					var m map[string]any
					if err := json.Unmarshal([]byte(line), &m); err != nil {
						t.Fatalf("an audit line is not JSON: %v: %s", err, line)
					}
					lines = append(lines, m)
				}
				return len(lines) > before
			})
			if len(lines) != before+1 {
				t.Fatalf("%d audit lines after %d, want one more", len(lines), before)
			}
			line := lines[before]
			if line["remote_ip"] != "127.0.0.1" {
				t.Errorf("remote_ip %v, want 127.0.0.1", line["remote_ip"])
			}
			if got, ok := line["client_ip"]; tc.clientIP == "" && ok || tc.clientIP != "" && got != tc.clientIP {
				t.Errorf("client_ip %v (present: %v), want %q", got, ok, tc.clientIP)
			}
		})
	}
}
