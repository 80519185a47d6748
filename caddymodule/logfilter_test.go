package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// TestNumberFilterFields: the filter hides numbers in string fields,
// byte strings, string arrays (a header) and headers as a whole, masks a
// caller's number (user_id), and passes other fields.
func TestNumberFilterFields(t *testing.T) {
	const in, want = "/a/startPhoneAudio?%74o=4255550100&x=1", "/a/startPhoneAudio?%74o=REDACTED&x=1"
	var f NumberFilter

	if got := f.Filter(zap.String("uri", in)); got.String != want || got.Type != zapcore.StringType {
		t.Errorf("string field: %+v", got)
	}
	if got := f.Filter(zap.ByteString("uri", []byte(in))); got.String != want || got.Type != zapcore.StringType {
		t.Errorf("byte string field: %+v", got)
	}
	header := caddyhttp.LoggableStringArray{"https://app.contoso.com/?TO=4255550100", in}
	got := f.Filter(zap.Array("Referer", header))
	if a, ok := got.Interface.(caddyhttp.LoggableStringArray); !ok || len(a) != 2 ||
		a[0] != "https://app.contoso.com/?TO=REDACTED" || a[1] != want {
		t.Errorf("string array field: %+v", got.Interface)
	}
	if header[0] != "https://app.contoso.com/?TO=4255550100" {
		t.Error("the filter changed the logged request's own header")
	}
	// The caller: a number masked as the audit trail masks it, an
	// object id whole.
	for sub, want := range map[string]string{
		"+14255550100": "+1425555****", "sip:+14255550100@contoso.com;user=phone": "sip:+1425555****@contoso.com;user=phone",
		"0f6e27c1-1234-5678-9abc-def012345678": "0f6e27c1-1234-5678-9abc-def012345678", "john@contoso.com": "john@contoso.com",
	} {
		if got := f.Filter(zap.String("user_id", sub)); got.String != want {
			t.Errorf("user_id %s: %s, want %s", sub, got.String, want)
		}
	}
	if got := f.Filter(zap.Int64("status", 4255550100)); got.Integer != 4255550100 || got.Type != zapcore.Int64Type {
		t.Errorf("an int field changed: %+v", got)
	}

	// Headers as a whole: Caddy's credentials redacted still, a web
	// ticket and a Data body dropped in any spelling, the URI headers
	// filtered, the others kept; the request's own header unchanged.
	headers := http.Header{
		"Authorization": {"Bearer eyJ"}, "X_ms_webticket": {"cwt=A"}, "Data": {`{"to":"4255550100"}`},
		"Referer": {"https://app.contoso.com/?to=4255550100"}, "X.original.url": {in}, "Accept": {"application/json"},
	}
	enc := zapcore.NewMapObjectEncoder()
	f.Filter(zap.Object("headers", caddyhttp.LoggableHTTPHeader{Header: headers})).AddTo(enc)
	logged := fmt.Sprint(enc.Fields["headers"])
	for _, want := range []string{"Authorization:[REDACTED]", "Referer:[https://app.contoso.com/?to=REDACTED]", "X.original.url:[" + want + "]", "Accept:[application/json]"} {
		if !strings.Contains(logged, want) {
			t.Errorf("headers logged as %s, without %s", logged, want)
		}
	}
	if strings.Contains(logged, "X_ms_webticket") || strings.Contains(logged, "Data") {
		t.Errorf("headers logged as %s, with a web ticket or a Data body", logged)
	}
	if len(headers) != 6 || headers.Get("Referer") != "https://app.contoso.com/?to=4255550100" {
		t.Errorf("the filter changed the logged request's own headers: %v", headers)
	}
}

// TestNumberFilterCaddyfile: the filter takes no arguments and no block.
func TestNumberFilterCaddyfile(t *testing.T) {
	if _, err := caddy.GetModule("caddy.logging.encoders.filter.ucwa_numbers"); err != nil {
		t.Fatal(err)
	}
	for input, wantErr := range map[string]string{
		"ucwa_numbers":           "",
		"ucwa_numbers REDACTED":  "takes no arguments",
		"ucwa_numbers {\n\tx\n}": "takes no block",
	} {
		err := new(NumberFilter).UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if wantErr == "" && err != nil || wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("%q: error %v, want %q", input, err, wantErr)
		}
	}
}

// numberedRequest is one request of TestAccessLogHidesNumbers: a path on
// an application of its own, so that its access log line can be told
// apart, and a query holding a number.
type numberedRequest struct {
	name, method, op, query string
	number                  string // the national digits of the number in the query
	referer                 string // a Referer header, holding the number instead
	status                  int    // the edge's answer; 0 when another handler may answer
}

// numbersFilteredEdge is the Caddyfile of an edge without auth in front
// of upstream whose access log and debug-level default log filter the
// request's URI and Referer with ucwa_numbers.
func numbersFilteredEdge(upstream string) string {
	return fmt.Sprintf(`{
	log {
		level DEBUG
		format filter {
			request>uri ucwa_numbers
			request>headers>Referer ucwa_numbers
		}
	}
}
:EDGE_PORT {
	log {
		format filter {
			request>uri ucwa_numbers
			request>headers>Referer ucwa_numbers
		}
	}
	ucwa {
		jwt off
		default_region US
	}
	reverse_proxy %s
}`, upstream)
}

// TestAccessLogHidesNumbers: through a real Caddy with an access log and
// a debug-level default log, both filtered with ucwa_numbers, requests
// with phone numbers in the query under every spelling the edge reads as
// a number-bearing property, in the value of another property (an
// operationId, a subject), and in a Referer, leave no number in any log
// line, while the access log still names each path and keeps the
// parameters that are no property. The pool gets the numbers: the log
// hides them, the edge does not drop them.
func TestAccessLogHidesNumbers(t *testing.T) {
	up := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", numbersFilteredEdge(up.Addr()))

	requests := []numberedRequest{
		{name: "to", op: "communication/startPhoneAudio", query: "to=tel:%2B14255550101&operationId=op-1", number: "4255550101", status: 201},
		{name: "phoneNumber", op: "communication/startPhoneAudio", query: "to=sip:john@contoso.com&phoneNumber=4255550102", number: "4255550102", status: 201},
		{name: "escaped t", op: "communication/startPhoneAudio", query: "%74o=4255550103&operationId=op-3", number: "4255550103", status: 400},
		{name: "escaped O", op: "communication/startPhoneAudio", query: "t%4F=4255550104", number: "4255550104", status: 400},
		{name: "escaped capitals after x", op: "communication/startPhoneAudio", query: "x=1&%54%4F=+14255550105", number: "4255550105", status: 400},
		{name: "zero-width space", op: "communication/startPhoneAudio", query: "phone%E2%80%8BNumber=4255550106&to=sip:john@contoso.com", number: "4255550106", status: 400},
		{name: "fullwidth", op: "communication/startPhoneAudio", query: "%EF%BD%94%EF%BD%8F=4255550107", number: "4255550107", status: 400},
		{name: "NUL and capitals", op: "communication/startPhoneAudio", query: "PHONENUMBER%00=4255550108&to=sip:john@contoso.com", number: "4255550108", status: 400},
		{name: "semicolon", op: "communication/startPhoneAudio", query: "operationId=op-9&to=tel:%2B14255550109;x", number: "4255550109", status: 400},
		{name: "IIS %u escape", op: "communication/startPhoneAudio", query: "%u0074o=4255550110", number: "4255550110", status: 400},
		{name: "number", op: "me/changeNumber", query: "number=4255550111&includeInContactCard=true", number: "4255550111"},
		{name: "target", op: "immediateForwardSettings/immediateForwardToContact", query: "TARGET=tel:%2B14255550112", number: "4255550112", status: 400},
		{name: "delegator", op: "communication/startPhoneAudioOnBehalfOfDelegator", query: "to=sip:john@contoso.com&deleg%61tor=tel:%2B14255550113", number: "4255550113", status: 400},
		{name: "model-binding index", op: "communication/startPhoneAudio", query: "to[]=4255550116", number: "4255550116", status: 400},
		{name: "model-binding prefix", op: "communication/startPhoneAudio", query: "to=sip:john@contoso.com&x.phoneNumber=4255550117", number: "4255550117", status: 400},
		{name: "event channel", method: http.MethodGet, op: "events", query: "ack=1&timeout=1&to=4255550114", number: "4255550114"},
		// A token in the query of a request the edge passes on: the pool
		// gets it, the log hides it.
		{name: "access_token", method: http.MethodGet, op: "events", query: "ack=1&Access_Token=eyJ4255550118", number: "4255550118"},
		{name: "access.token", method: http.MethodGet, op: "events", query: "ack=1&access.token=eyJ4255550119", number: "4255550119"},
		{name: "access+token on a refused request", op: "communication/startPhoneAudio", query: "to=sip:john@contoso.com&access+token=eyJ4255550120", number: "4255550120", status: 400},
		{name: "operationId", op: "communication/startPhoneAudio", query: "to=sip:john@contoso.com&operationId=call-4255550116", number: "4255550116", status: 201},
		{name: "subject", op: "communication/startPhoneAudio", query: "to=sip:john@contoso.com&subject=Call+back+4255550117", number: "4255550117", status: 201},
		{name: "Referer", op: "communication/startPhoneAudio", query: "to=sip:john@contoso.com", referer: "https://app.contoso.com/call?to=4255550115&x=1", number: "4255550115", status: 201},
	}
	for i, rq := range requests {
		path := fmt.Sprintf("/ucwa/oauth/v1/applications/app%02d/%s", i, rq.op)
		t.Run(rq.name, func(t *testing.T) {
			req := testkit.Request{Method: rq.method, URL: path + "?" + rq.query, Header: http.Header{}}
			if rq.method == "" {
				req.Method, req.ContentType, req.Body = http.MethodPost, "application/json", "{}"
			}
			if rq.referer != "" {
				req.Header.Set("Referer", rq.referer)
			}
			resp := e.send(req)
			if rq.status != 0 && resp.Status != rq.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, rq.status, resp.Body)
			}
			line := e.Logs().Wait(t, `"msg":"handled request"`, `"uri":"`+path+"?")
			if said := withoutTimings(line); strings.Contains(said, rq.number) || strings.Contains(said, rq.number[3:]) {
				t.Errorf("the access log line holds the number: %s", line)
			}
			if !strings.Contains(line, ucwaRedacted) {
				t.Errorf("the access log line hides nothing: %s", line)
			}
		})
	}
	if t.Failed() {
		return
	}

	// The numbers reached the pool, or the edge that read them: the log
	// had them to hide.
	received := ""
	for _, r := range up.Received() {
		received += r.RawQuery + " " + r.Header.Get("Referer") + "\n"
	}
	for _, rq := range requests {
		if rq.status != 400 && !strings.Contains(received, rq.number[3:]) {
			t.Errorf("%s: the pool did not get the number %s: %s", rq.name, rq.number, received)
		}
	}
	// Every property's value hidden, the other parameters kept as they
	// came, in the access log.
	e.Logs().Wait(t, `"msg":"handled request"`, `"uri":"/ucwa/oauth/v1/applications/app00/communication/startPhoneAudio?to=REDACTED&operationId=REDACTED"`)
	e.Logs().Wait(t, `"msg":"handled request"`, `?number=REDACTED&includeInContactCard=REDACTED"`)
	e.Logs().Wait(t, `"msg":"handled request"`, `/events?ack=1&timeout=1&to=REDACTED"`)
	e.Logs().Wait(t, `"msg":"handled request"`, `"Referer":["https://app.contoso.com/call?to=REDACTED&x=1"]`)

	logs := e.Logs().String()
	if !strings.Contains(logs, `"level":"debug"`) {
		t.Fatal("nothing was logged at debug level")
	}
	said := withoutTimings(logs)
	for _, rq := range requests {
		if strings.Contains(said, rq.number[3:]) {
			t.Errorf("%s: a log line holds the number %s", rq.name, rq.number)
		}
	}
}

// TestAccessLogHidesWebTicket: with the README's log filters (a site's
// access log, and the default log at debug level, where reverse_proxy
// logs the headers it sends), a web ticket sent in X-MS-WebTicket is in
// no log line: Caddy redacts Authorization and Cookie by itself, not this
// credential, on a guarded request the edge refuses for it nor on one it
// passes to the pool with it.
func TestAccessLogHidesWebTicket(t *testing.T) {
	global, site := readmeLogBlocks(t)
	up := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", global+":EDGE_PORT {\n"+site+"ucwa {\n\tjwt off\n}\nreverse_proxy "+up.Addr()+"\n}\n")
	const ticket = "cwt=AAEBHAAAWebTicketSecret"
	for _, req := range []testkit.Request{
		{Method: http.MethodPost, URL: "/ucwa/oauth/v1/applications/app01/communication/startPhoneAudio", ContentType: "application/json", Body: `{"to":"sip:john@contoso.com"}`},
		{Method: http.MethodGet, URL: "/ucwa/oauth/v1/applications/app02/events?ack=1"},
	} {
		req.Header = http.Header{"X-Ms-Webticket": {ticket}}
		e.send(req)
		e.Logs().Wait(t, `"msg":"handled request"`, `"uri":"`+req.URL+`"`)
	}
	if got := up.Received(); len(got) != 1 || got[0].Header.Get("X-MS-WebTicket") != ticket {
		t.Fatalf("the pool got %d requests, want the event channel's with its ticket", len(got))
	}
	logs := e.Logs().String()
	if !strings.Contains(logs, `"msg":"upstream roundtrip"`) {
		t.Fatal("reverse_proxy logged no upstream roundtrip at debug level")
	}
	for line := range strings.Lines(logs) {
		if strings.Contains(line, "WebTicketSecret") {
			t.Errorf("a log line holds the web ticket: %s", line)
		}
	}
}

// readmeLogBlocks returns the README's Logs section's filters: the
// global options with the default log's (at debug level), and a site's
// access log.
func readmeLogBlocks(t *testing.T) (global, site string) {
	t.Helper()
	_, section, _ := strings.Cut(readRepoFile(t, "../README.md"), "\n## Logs\n")
	section, _, _ = strings.Cut(section, "\n## ")
	for _, b := range regexp.MustCompile("(?s)```\n(.*?)```").FindAllStringSubmatch(section, -1) {
		switch {
		case strings.HasPrefix(b[1], "log {"):
			site = b[1]
		case strings.HasPrefix(b[1], "{\n\tlog {"):
			global = strings.Replace(b[1], "\tlog {\n", "\tlog {\n\t\tlevel DEBUG\n", 1)
		}
	}
	if site == "" || global == "" {
		t.Fatalf("the README's Logs section has no site log (%t) or default log (%t) block", site != "", global != "")
	}
	return global, site
}

// TestAccessLogHidesCallerNumber: with the README's log filters, a
// caller whose token names it by its telephone number (sub +1425...,
// tel:, sip:...;user=phone, the national digits alone: an identity
// provider that names users by their numbers, as Skype for Business may)
// leaves no full number in any log line. Caddy's access log writes the
// sub as user_id ({http.auth.user.id}), on a request the pool took and
// on one the edge refused alike; the filter masks it as the audit trail
// masks the caller's claims (+1425555****), and keeps a sub that is no
// number (an object id) whole, so that its caller can still be found.
func TestAccessLogHidesCallerNumber(t *testing.T) {
	global, site := readmeLogBlocks(t)
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	up := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", global+":EDGE_PORT {\n"+site+"ucwa {\n"+opsJWT+"\ndefault_region US\n}\nreverse_proxy "+up.Addr()+"\n}\n")
	const objectID = "0f6e27c1-1234-5678-9abc-def012345678"
	var numbers []string
	for i, tc := range []struct {
		sub    string
		digits string // what no line may hold; "" for a sub kept whole
		masked string // its user_id
	}{
		{"+14255550188", "4255550188", "+1425555****"},
		{"tel:+1-425-555-0187", "555-0187", "tel:+1-425-555-****"},
		{"sip:+14255550186@contoso.com;user=phone", "4255550186", "sip:+1425555****@contoso.com;user=phone"},
		{"4255550185", "4255550185", "425555****"},
		{objectID, "", objectID},
	} {
		if tc.digits != "" {
			numbers = append(numbers, tc.digits)
		}
		t.Run(tc.sub, func(t *testing.T) {
			for j, scopes := range [][]string{allScopes, {"Contacts.ReadWrite"}} {
				name := fmt.Sprintf("sub %d, scopes %d", i, j)
				auth := "Bearer " + testkit.Mint(t, jwt.SigningMethodHS256, testkit.Keys(t).HMAC, "",
					testkit.Claims(time.Now(), jwt.MapClaims{"scp": strings.Join(scopes, " "), "sub": tc.sub}))
				resp := e.postJSON(startPath, `{"to":"sip:john@contoso.com"}`, http.Header{"Authorization": {auth}, "X-Test-Case": {name}})
				if want := map[bool]int{true: 201, false: 403}[len(scopes) > 1]; resp.Status != want {
					t.Fatalf("status %d, want %d: %s", resp.Status, want, resp.Body)
				}
				line := e.Logs().Wait(t, `"msg":"handled request"`, `"`+name+`"`)
				if !strings.Contains(line, `"user_id":"`+tc.masked+`"`) {
					t.Errorf("the access log's user_id is not %s: %s", tc.masked, line)
				}
			}
		})
	}
	said := withoutTimings(e.Logs().String())
	if !strings.Contains(said, `"logger":"http.handlers.ucwa.audit"`) {
		t.Fatal("no audit line: the test saw too little")
	}
	for line := range strings.Lines(said) {
		for _, number := range numbers {
			if strings.Contains(line, number) {
				t.Errorf("a log line holds the caller's number %s: %s", number, line)
			}
		}
	}
}

// timings matches the times a log line gives as numbers: their random
// fractions (ts 1796100671.4279792, duration 0.000555010) may spell
// seven digits of a number by chance, and no request writes them.
var timings = regexp.MustCompile(`"(ts|duration)":[-+0-9.eE]+`)

// withoutTimings returns log lines with their times zeroed, for a search
// of the numbers the requests carried.
func withoutTimings(logs string) string {
	return timings.ReplaceAllString(logs, `"$1":0`)
}

// TestWithoutTimings: a time that spells a number's digits is no leak,
// the number in a logged value is.
func TestWithoutTimings(t *testing.T) {
	line := `{"ts":1796100671.5550101,"uri":"/p?to=4255550111","duration":0.000555010,"size":0}`
	got := withoutTimings(line)
	if want := `{"ts":0,"uri":"/p?to=4255550111","duration":0,"size":0}`; got != want {
		t.Fatalf("%s, want %s", got, want)
	}
	if strings.Contains(got, "5550101") || !strings.Contains(got, "5550111") {
		t.Fatalf("%s", got)
	}
}

// ucwaRedacted is what the filter writes in place of a number.
const ucwaRedacted = "REDACTED"

// TestRedactURI: the path of a URI keeps no run of more than four digits
// whole (a contact named by its number, a long application id), its
// first digits shown as the audit trail shows an application id; an
// absolute URI keeps its scheme and host; the query is redacted as
// ucwa.RedactQueryProperties redacts it.
func TestRedactURI(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"short ids kept", "/ucwa/v1/applications/192/communication/invitations/146", "/ucwa/v1/applications/192/communication/invitations/146"},
		{"a long application id", "/ucwa/oauth/v1/applications/101246165550/me", "/ucwa/oauth/v1/applications/1012461*****/me"},
		{"a contact's SIP URI", "/ucwa/v1/applications/192/people/sip:+14255551234@contoso.com;user=phone/presence", "/ucwa/v1/applications/192/people/sip:+1425555****@contoso.com;user=phone/presence"},
		{"escaped", "/a/people/tel:%2B14255551234", "/a/people/tel:%2B1425555****"},
		{"separated", "/a/people/425-555-1234", "/a/people/425-555-****"},
		{"fullwidth digits", "/a/people/４２５５５５１２３４", "/a/people/４２５５５５****"},
		{"escaped separators", "/a/people/tel:+1%2D425%2D555%2D1234", "/a/people/tel:+1%2D425%2D555%2D****"},
		{"escaped fullwidth digits", "/a/" + url.PathEscape("４２５５５５１２３４"), "/a/" + url.PathEscape("４２５５５５") + "****"},
		{"escaped digits", "/a/%34%32%35%35%35%35%31%32%33%34", "/a/%34%32%35%35%35%35****"},
		{"an escaped letter ends a run", "/a/1234%4156789", "/a/1234%415****"},
		{"an escape of no character", "/a/%FF%ZZ1%2", "/a/%FF%ZZ1%2"},
		{"five digits", "/a/items/12345", "/a/items/1****"},
		{"the query too", "/a/people/14255551234?to=4255550100&x=1", "/a/people/1425555****?to=REDACTED&x=1"},
		{"the query's digits are the query's", "/a/events?ack=12345", "/a/events?ack=12345"},
		{"an absolute URI keeps its host", "https://10.20.30.40:8443/call/14255551234?n=1", "https://10.20.30.40:8443/call/1425555****?n=1"},
		{"user info is masked", "https://14255551234@app.contoso.com/x", "https://1425555****@app.contoso.com/x"},
		{"a fragment", "https://app.contoso.com/dial#14255551234", "https://app.contoso.com/dial#1425555****"},
		{"no path", "https://app.contoso.com:4430", "https://app.contoso.com:4430"},
		{"a relative reference with a colon", "people/x://14255551234", "people/x://1425555****"},
		{"no scheme of digits", "14255551234://host/x", "1425555****://host/x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := redactURI(tt.in); got != tt.want {
				t.Errorf("redactURI(%q)\n = %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// decodeEscapes returns s with each sequence of percent-escapes decoded
// as the bytes it stands for, and the rest as it is: a reader reads
// %2D as '-' and %EF%BC%91 as a fullwidth digit. (Not url.PathUnescape,
// which refuses a whole string for one malformed escape, and would make
// a character of escaped bytes and the raw byte after them.)
func decodeEscapes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		var group []byte
		for i+2 < len(s) && s[i] == '%' {
			c, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				break
			}
			group = append(group, byte(c))
			i += 3
		}
		if group != nil {
			// Bytes that are no UTF-8 read as U+FFFD, apart from what
			// follows the sequence.
			b.WriteString(strings.ToValidUTF8(string(group), "\uFFFD"))
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// uriScheme matches a URI scheme (RFC 3986 3.1).
var uriScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// FuzzRedactURI: redactURI never panics, leaves the query as
// ucwa.RedactQueryProperties does, and leaves no run of more than
// maxShownRunHead digits (counted across anything but letters, as the
// audit trail counts them) whole before the query, but in an absolute
// URI's host.
func FuzzRedactURI(f *testing.F) {
	for _, seed := range []string{
		"/ucwa/oauth/v1/applications/101246165550/people/sip:+14255551234@contoso.com",
		"https://10.20.30.40:8443/call/14255551234?to=1",
		"https://1@h/", "x://", "://1234567890", "/a#14255551234?b",
		"/a/４２５５５５１２３４/\xff1234567",
		"/a/tel:+1%2D425%2D555%2D1234", "/a/%EF%BC%94%EF%BC%92%EF%BC%95%EF%BC%95%EF%BC%95%EF%BC%95%EF%BC%91",
		"/a/%F0%31%31%31%31%31%31%31%31%31", "/a/%EF%BC\x911234567%",
		"/a/sip:¹⁹⁰⁰⁵⁵⁵¹²³⁴@gw", "/a/%C2%B9%E2%81%B9%E2%81%B0%E2%81%B0%E2%81%B5%E2%81%B5%E2%81%B5", "/a/⑲⑲⑳⑳",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := redactURI(in)
		query := ucwa.RedactQueryProperties(in)
		if q := strings.IndexByte(query, '?'); q >= 0 && !strings.HasSuffix(out, query[q:]) {
			t.Fatalf("%q: the query of %q is not %q", in, out, query[q:])
		}
		before, _, _ := strings.Cut(out, "?")
		if scheme, rest, ok := strings.Cut(before, "://"); ok && uriScheme.MatchString(scheme) {
			host := rest
			if i := strings.IndexAny(rest, "/#"); i >= 0 {
				host = rest[:i]
			}
			if !strings.Contains(host, "@") {
				before = rest[len(host):]
			}
		}
		run := 0
		for _, r := range decodeEscapes(before) {
			switch {
			case ucwa.DialDigits(r) > 0:
				if run += ucwa.DialDigits(r); run > maxShownRunHead {
					t.Fatalf("%q gives %q, with a run of %d digits whole", in, out, run)
				}
			case unicode.IsLetter(r), r == '*':
				run = 0
			}
		}
	})
}
