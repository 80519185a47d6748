package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// TestEveryOwnAnswerNamed: every answer the edge gives itself, not only
// those of the intake's steps, is named by its UCWA code on the request's
// access log line (ucwa_error) and in its audit line (error): a 401 for a
// missing token, a 403 for a token without the operation's scopes, and
// the answers the edge gives for the pools (410 CannotRedirect, 503 when
// no pool can take the request, 502 when the pool failed after it may
// have received it). An operator who counts the edge's refusals by
// ucwa_error, or reads the trail for why a call was not placed, saw none
// of them.
func TestEveryOwnAnswerNamed(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	reset := testkit.NewPool(t, "reset", testkit.AnswerReset)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	log
	ucwa {
		`+opsJWT+`
		default_region US
		primary %[1]s
	}
}
:BOTH_DOWN_PORT {
	log
	ucwa {
		jwt off
		primary %[1]s
		backup %[2]s
	}
}
:RESET_PORT {
	log
	ucwa {
		jwt off
		primary %[3]s
	}
}`, testkit.DownAddr(t), testkit.DownAddr(t), reset.Addr()))
	body := `{"to":"sip:john@contoso.com"}`
	for _, tc := range []struct {
		name   string
		port   string
		header http.Header
		status int
		want   string // the UCWA code (and subcode) both lines name
	}{
		{"no token", "EDGE_PORT", nil, 401, "Unauthorized"},
		{"a token without the operation's scopes", "EDGE_PORT",
			http.Header{"Authorization": {bearerFor(t, "Contacts.ReadWrite")}}, 403, "Forbidden"},
		{"primary down, no backup", "EDGE_PORT",
			http.Header{"Authorization": {callerBearer(t)}}, 410, errorCode(errCannotRedirect)},
		{"both pools down", "BOTH_DOWN_PORT", nil, 503, errorCode(errNoPool)},
		{"the pool failed after it may have received the request", "RESET_PORT", nil, 502, errorCode(errPoolFailed)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := http.Header{"X-Test-Case": {tc.name}}
			for k, v := range tc.header {
				header[k] = v
			}
			resp := testkit.Send(t, e.Client(), testkit.Request{URL: e.URL(tc.port, startPath),
				ContentType: "application/json", Body: body, Header: header})
			if resp.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tc.status, resp.Body)
			}
			if got := ucwaError(t, resp.Body); errorCode(&ucwa.Error{Status: resp.Status, Subcode: got.Subcode}) != tc.want {
				t.Fatalf("answered %s/%s, want %s", got.Code, got.Subcode, tc.want)
			}
			access := e.Logs().Wait(t, `"msg":"handled request"`, tc.name)
			if !strings.Contains(access, `"ucwa_error":"`+tc.want+`"`) {
				t.Errorf("the access log line does not name the answer %s: %s", tc.want, access)
			}
			var audit struct {
				Error string `json:"error"`
			}
			line := e.Logs().Wait(t, `"logger":"http.handlers.ucwa.audit"`, fmt.Sprintf(`"status":%d`, tc.status))
			if err := json.Unmarshal([]byte(line), &audit); err != nil {
				t.Fatal(err)
			}
			if audit.Error != tc.want {
				t.Errorf("the audit line's error is %q, want %q: %s", audit.Error, tc.want, line)
			}
		})
	}
}
