package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// inScript writes the ASCII digits of s in the script whose zero is
// zero (U+FF10 fullwidth, U+0660 Arabic-Indic, U+0966 Devanagari), the
// rest of s as it is.
func inScript(s string, zero rune) string {
	return strings.Map(func(r rune) rune {
		if '0' <= r && r <= '9' {
			return zero + r - '0'
		}
		return r
	}, s)
}

// asASCIIDigits returns s percent-decoded where it can be (a log holds a
// URI as the client escaped it) with every Unicode decimal digit written
// as its ASCII digit, a compatibility form folded (NFKC: a superscript ¹
// and a circled ① are 1, as a gateway that folds them dials them), and
// the separators a number is written with ("+1 (425) 555-0162")
// dropped, as a reader of the log would read a number.
func asASCIIDigits(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if c, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(c))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(" ()-.+＋", r) {
			return -1
		}
		if r >= 0x80 && unicode.IsDigit(r) {
			for _, rg := range unicode.Nd.R16 {
				if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
					return '0' + (r-rune(rg.Lo))%10
				}
			}
			for _, rg := range unicode.Nd.R32 {
				if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
					return '0' + (r-rune(rg.Lo))%10
				}
			}
		}
		return r
	}, norm.NFKC.String(b.String()))
}

// poolGotLogsHide checks that number (national digits, ASCII) is in what
// the pool received (so the log had it to hide), read as asASCIIDigits
// reads it, and that no log line of e holds it.
func poolGotLogsHide(t *testing.T, e edge, received, number string) {
	t.Helper()
	if !strings.Contains(asASCIIDigits(received), number) {
		t.Fatalf("the pool did not get %s: %s", number, received)
	}
	for l := range strings.Lines(withoutTimings(e.Logs().String())) {
		if strings.Contains(asASCIIDigits(l), number[3:]) {
			t.Errorf("a log line holds the number %s: %s", number, l)
		}
	}
}

// TestAccessLogHidesNumbersOfAnyScript: through a real Caddy whose access
// log and debug-level default log are filtered with ucwa_numbers, a
// number written in digits of another script (fullwidth, as a Japanese
// input method types them; Arabic-Indic; Devanagari), which the edge
// reads as the digits they are, in a parameter that names no property (a
// people search's query, a name no operation takes), as a parameter's
// name, or in a Referer, is hidden as the same number in ASCII digits
// is: no log line holds it, percent-escaped or not. The pool gets it.
func TestAccessLogHidesNumbersOfAnyScript(t *testing.T) {
	up := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", numbersFilteredEdge(up.Addr()))

	const people = "/ucwa/oauth/v1/applications/%s/people/search"
	for _, tc := range []struct {
		name, app, query, referer string
		number                    string // its national digits, in ASCII
	}{
		{name: "fullwidth search", app: "fw01", query: "query=" + url.QueryEscape(inScript("+14255550161", 0xFF10)) + "&limit=5", number: "4255550161"},
		{name: "fullwidth plus and separators", app: "fw02", query: "query=" + url.QueryEscape("＋"+inScript("1 (425) 555-0162", 0xFF10)), number: "4255550162"},
		{name: "Arabic-Indic, a name no operation takes", app: "ar01", query: "phone=" + url.QueryEscape(inScript("4255550163", 0x0660)), number: "4255550163"},
		{name: "Devanagari", app: "dv01", query: "q=" + url.QueryEscape(inScript("4255550164", 0x0966)), number: "4255550164"},
		{name: "fullwidth as a name", app: "fw03", query: url.QueryEscape(inScript("4255550165", 0xFF10)) + "&limit=5", number: "4255550165"},
		{name: "fullwidth, unescaped", app: "fw04", query: "query=" + inScript("4255550166", 0xFF10), number: "4255550166"},
		{name: "Referer", app: "fw05", query: "limit=5", referer: "https://app.contoso.com/dial?n=" + url.QueryEscape(inScript("4255550167", 0xFF10)), number: "4255550167"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := fmt.Sprintf(people, tc.app)
			req := testkit.Request{Method: http.MethodGet, URL: path + "?" + tc.query, Header: http.Header{}}
			if tc.referer != "" {
				req.Header.Set("Referer", tc.referer)
			}
			if resp := e.send(req); resp.Status != http.StatusCreated && resp.Status != http.StatusOK {
				t.Fatalf("status %d: %s", resp.Status, resp.Body)
			}
			line := e.Logs().Wait(t, `"msg":"handled request"`, `"uri":"`+path+"?")
			if !strings.Contains(line, ucwaRedacted) {
				t.Errorf("the access log line hides nothing: %s", line)
			}
			got := ""
			for _, r := range up.Received() {
				got += r.RawQuery + " " + r.Header.Get("Referer") + "\n"
			}
			poolGotLogsHide(t, e, got, tc.number)
		})
	}
}

// TestAccessLogHidesNumbersInPaths: through a real Caddy whose access log
// and debug-level default log are filtered with ucwa_numbers, a number
// in a request's path (a contact named by its number, as a SIP URI of
// user=phone or a tel: URI; a guarded operation below a long application
// id) or in a Referer's path, also escaped as a client sends it
// (tel:+1%2D425%2D555%2D0174; fullwidth digits as %EF%BC%91..., which
// a browser always escapes: the escapes' hex letters end no run), is in
// no log line, while the access log
// still tells the pool's long application id apart (its first digits
// shown). The pool gets the path as it came.
func TestAccessLogHidesNumbersInPaths(t *testing.T) {
	up := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", numbersFilteredEdge(up.Addr()))

	const app = "/ucwa/oauth/v1/applications/101246165550"
	for _, tc := range []struct {
		name    string
		req     testkit.Request
		referer string
		number  string // its national digits
		logged  string // the access log's uri
	}{
		{name: "a contact's SIP URI", req: testkit.Request{Method: http.MethodGet, URL: app + "/people/sip:+14255550171@contoso.com;user=phone/presence"},
			number: "4255550171", logged: "/ucwa/oauth/v1/applications/1012461*****/people/sip:+1425555****@contoso.com;user=phone/presence"},
		{name: "a tel: URI, escaped", req: testkit.Request{Method: http.MethodGet, URL: app + "/people/tel:%2B14255550172/contactPhoto"},
			number: "4255550172", logged: "/ucwa/oauth/v1/applications/1012461*****/people/tel:%2B1425555****/contactPhoto"},
		{name: "a guarded operation", req: testkit.Request{Method: http.MethodPost, URL: app + "/communication/startPhoneAudio?to=sip:john@contoso.com", ContentType: "application/json", Body: "{}"},
			number: "1246165550", logged: "/ucwa/oauth/v1/applications/1012461*****/communication/startPhoneAudio?to=REDACTED"},
		{name: "a tel: URI, its separators escaped", req: testkit.Request{Method: http.MethodGet, URL: app + "/people/tel:+1%2D425%2D555%2D0174/presence"},
			number: "4255550174", logged: "/ucwa/oauth/v1/applications/1012461*****/people/tel:+1%2D425%2D555%2D****/presence"},
		{name: "fullwidth digits, escaped as a client sends them", req: testkit.Request{Method: http.MethodGet, URL: app + "/people/tel:" + url.PathEscape(inScript("+14255550175", 0xFF10)) + "/presence"},
			number: "4255550175", logged: "/ucwa/oauth/v1/applications/1012461*****/people/tel:+" + url.PathEscape(inScript("1425555", 0xFF10)) + "****/presence"},
		{name: "a Referer's path, escaped", req: testkit.Request{Method: http.MethodGet, URL: app + "/people/search?limit=6"},
			referer: "https://app.contoso.com/contacts/425%2E555%2E0176/call", number: "4255550176", logged: "/ucwa/oauth/v1/applications/1012461*****/people/search?limit=6"},
		{name: "a Referer's path", req: testkit.Request{Method: http.MethodGet, URL: app + "/people/search?limit=5"},
			referer: "https://app.contoso.com/contacts/14255550173/call", number: "4255550173", logged: "/ucwa/oauth/v1/applications/1012461*****/people/search?limit=5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Header = http.Header{}
			if tc.referer != "" {
				tc.req.Header.Set("Referer", tc.referer)
			}
			if resp := e.send(tc.req); resp.Status >= 300 {
				t.Fatalf("status %d: %s", resp.Status, resp.Body)
			}
			e.Logs().Wait(t, `"msg":"handled request"`, `"uri":"`+tc.logged+`"`)
			got := ""
			for _, r := range up.Received() {
				got += r.Path + " " + r.Header.Get("Referer") + "\n"
			}
			poolGotLogsHide(t, e, got, tc.number)
		})
	}
}
