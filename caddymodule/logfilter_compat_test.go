package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// superscript writes the ASCII digits of s as superscript digits (¹⁴²⁵),
// circled as circled ones (①④②⑤), the rest of s as it is: compatibility
// forms that are no decimal digits to Unicode, and that a gateway
// folding them (NFKC) dials as the digits they stand for.
func superscript(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '1':
			return '¹'
		case r == '2':
			return '²'
		case r == '3':
			return '³'
		case '0' <= r && r <= '9':
			return 0x2070 + r - '0'
		}
		return r
	}, s)
}

func circled(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '0':
			return '⓪'
		case '1' <= r && r <= '9':
			return 0x2460 + r - '1'
		}
		return r
	}, s)
}

// TestLogsHideNumbersOfCompatibilityDigits: through a real Caddy whose
// access log and debug-level default log are filtered with ucwa_numbers,
// a number written in superscript or circled digits, which the edge
// reads as a gateway's dial digits (sip:¹⁴²⁵...@gw is a dial string),
// is hidden as the same number in ASCII digits is: in a query's value
// or name, in a path (a contact named by it, escaped as a client sends
// it), in a Referer, and in an operationId on the audit trail. No log
// line holds it, read as those digits; the pool gets it.
func TestLogsHideNumbersOfCompatibilityDigits(t *testing.T) {
	up := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", numbersFilteredEdge(up.Addr()))

	// Each case its own application, so that its access log line is told
	// apart from the others'.
	const app = "/ucwa/oauth/v1/applications/cf"
	get := func(target string) testkit.Request { return testkit.Request{Method: http.MethodGet, URL: app + target} }
	for i, tc := range []struct {
		name    string
		req     testkit.Request
		referer string
		number  string // its national digits, in ASCII
		logged  string // a part of the line that logs it
	}{
		{name: "superscript search", req: get("/people/search?query=" + url.QueryEscape(superscript("+14255550181"))),
			number: "4255550181", logged: `"uri":"` + app + "/people/search?query=" + ucwaRedacted},
		{name: "circled, unescaped", req: get("/people/search?q=" + circled("4255550182")),
			number: "4255550182", logged: `"uri":"` + app + "/people/search?q=" + ucwaRedacted},
		{name: "superscript as a name", req: get("/people/search?" + url.QueryEscape(superscript("4255550183")) + "&limit=5"),
			number: "4255550183", logged: `"uri":"` + app + "/people/search?" + ucwaRedacted + "&limit=5"},
		{name: "a contact's SIP URI in superscript, escaped", req: get("/people/sip:" + url.PathEscape(superscript("+14255550184")) + "@contoso.com;user=phone/presence"),
			number: "4255550184", logged: `"uri":"` + app + "/people/sip:"},
		{name: "a contact's SIP URI in circled digits", req: get("/people/sip:" + circled("14255550185") + "@gw.contoso.com/presence"),
			number: "4255550185", logged: `"uri":"` + app + "/people/sip:"},
		{name: "a Referer's path in superscript", req: get("/people/search?limit=7"), referer: "https://app.contoso.com/contacts/" + superscript("4255550186") + "/call",
			number: "4255550186", logged: `"uri":"` + app + "/people/search?limit=7"},
		{name: "an operationId on the audit trail", req: testkit.Request{Method: http.MethodPost, URL: app + "/communication/startPhoneAudio", ContentType: "application/json",
			Body: `{"to":"sip:john@contoso.com","operationId":"call-` + superscript("14255550187") + `"}`},
			number: "4255550187", logged: `"msg":"guarded request"`},
		{name: "an operationId in circled digits on the audit trail", req: testkit.Request{Method: http.MethodPost, URL: app + "/communication/startPhoneAudio", ContentType: "application/json",
			Body: `{"to":"sip:john@contoso.com","operationId":"call ` + circled("1 425 555 0188") + `"}`},
			number: "4255550188", logged: `"operation_id":"call `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			own := app + string(rune('a'+i))
			tc.req.URL = strings.Replace(tc.req.URL, app, own, 1)
			tc.logged = strings.Replace(tc.logged, app, own, 1)
			tc.req.Header = http.Header{}
			if tc.referer != "" {
				tc.req.Header.Set("Referer", tc.referer)
			}
			before := len(up.Received())
			if resp := e.send(tc.req); resp.Status >= 300 {
				t.Fatalf("status %d: %s", resp.Status, resp.Body)
			}
			// The access log line comes last: the handler wrote the audit
			// line before it returned.
			e.Logs().Wait(t, `"msg":"handled request"`, `"uri":"`+own+"/")
			if !strings.Contains(e.Logs().String(), tc.logged) {
				t.Errorf("no log line holds %s", tc.logged)
			}
			got := ""
			for _, r := range up.Received()[before:] {
				got += r.Path + " " + r.RawQuery + " " + r.Header.Get("Referer") + " " + r.Body + "\n"
			}
			poolGotLogsHide(t, e, got, tc.number)
		})
	}
}
