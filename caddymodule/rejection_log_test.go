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

// TestRejectionLogMasksNumbers: the debug line of a refusal ("request
// rejected at the edge") gives the refusal's message, which names what
// was wrong; a name is the client's to choose, and one that is a phone
// number (a property, an XML element, in a request alone or in a batch
// part) shows in that line with its digits masked, never whole.
func TestRejectionLogMasksNumbers(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", authSite("jwt off", pool.Addr()))
	for _, tc := range []struct {
		name        string
		path        string
		contentType string
		body        string
	}{
		{"a JSON property given twice", startPath, "application/json",
			`{"to":"sip:john@contoso.com","+19005551234":1,"+19005551234":2}`},
		{"an XML property given twice", startPath, "application/xml",
			`<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">sip:john@contoso.com</property>` +
				`<property name="19005551234">a</property><property name="19005551234">b</property></input>`},
		{"a batch part's property given twice", opsApp + "/batch", batchType,
			batchBody("POST " + startPath + " HTTP/1.1\r\nHost: fe.contoso.com\r\nContent-Type: application/json\r\n\r\n" +
				`{"to":"sip:john@contoso.com","x19005551234":1,"x19005551234":2}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := testkit.Send(t, e.Client(), testkit.Request{URL: e.url(tc.path), ContentType: tc.contentType, Body: tc.body,
				Header: http.Header{"X-Test-Case": {tc.name}}})
			if resp.Status != http.StatusBadRequest || !strings.Contains(resp.Body, "9005551234") {
				t.Fatalf("status %d, want 400 naming the property to the client: %s", resp.Status, resp.Body)
			}
			e.Logs().Wait(t, `"msg":"handled request"`, tc.name)
		})
	}
	lines := e.Logs().Lines("request rejected at the edge")
	if len(lines) != 3 {
		t.Fatalf("%d lines say a request was rejected, want 3: %v", len(lines), lines)
	}
	for _, line := range lines {
		if !strings.Contains(line, `appears twice`) || !strings.Contains(line, "*******") {
			t.Errorf("the line does not give the message, its number masked: %s", line)
		}
	}
	if logs := e.Logs().String(); strings.Contains(logs, "9005551234") {
		t.Errorf("the log shows the number:\n%s", logs)
	}
}
