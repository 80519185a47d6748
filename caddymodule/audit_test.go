package caddymodule

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/logging"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// TestAuditTrail: with the README's logging (the audit trail in a file of
// its own, out of the default log), every terminated request gets one
// line, whoever answered it (the edge refusing it at any step, the
// destination policy or a velocity limit refusing it, the pool,
// idempotency replaying an answer), and a near miss too; a request the
// edge passes gets none. No full number and no token is in the file.
func TestAuditTrail(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	auditFile := filepath.Join(t.TempDir(), "ucwa-audit.log")
	pool := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`{
	log default {
		exclude http.handlers.ucwa.audit
	}
	log ucwa_audit {
		include http.handlers.ucwa.audit
		output file %s {
			roll_size 100MiB
			roll_keep 30
			roll_keep_for 2160h
			roll_compression zstd
		}
		format json
	}
}
:EDGE_PORT {
	ucwa {
		`+opsJWT+`
		default_region US
		idempotency
		limit calls 1 per 1h
		destinations
		primary %s
	}
	reverse_proxy %s
}`, auditFile, pool.Addr(), pool.Addr()))
	auth := callerBearer(t)
	readAudit := func() string {
		b, err := os.ReadFile(auditFile)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return string(b)
	}
	type want struct {
		operation, error, operationID, idempotency, refusedBy string
		application                                           string // "104" when ""; none for a near miss
		status, dests                                         int
		caller                                                bool
		parts                                                 []auditPartJSON
		destination                                           string // the first, masked; "" unchecked
	}
	for _, tc := range []struct {
		name string
		req  testkit.Request
		want *want // nil: no audit line
	}{
		{name: "no token", req: testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"+14255551234"}`},
			want: &want{operation: "startPhoneAudio", status: 401, error: "Unauthorized"}},
		{name: "a token without the operation's scopes",
			req:  testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"+14255551234"}`, Header: http.Header{"Authorization": {bearerFor(t, "Contacts.ReadWrite")}}},
			want: &want{operation: "startPhoneAudio", status: 403, error: "Forbidden"}},
		{name: "a number that does not normalize",
			req:  testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"+1425555123 garbage"}`, Header: http.Header{"Authorization": {auth}}},
			want: &want{operation: "startPhoneAudio", status: 400, error: "BadRequest/NormalizationFailed", caller: true}},
		{name: "a body that does not parse",
			req:  testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"+14255551234"`, Header: http.Header{"Authorization": {auth}}},
			want: &want{operation: "startPhoneAudio", status: 400, error: "BadRequest/DeserializationFailure", caller: true}},
		{name: "a premium number, refused by the default policy",
			req:  testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"+19005551234","operationId":"a-19005551234"}`, Header: http.Header{"Authorization": {auth}}},
			want: &want{operation: "startPhoneAudio", status: 403, error: "Forbidden/DialoutNotAllowed", operationID: "a-***********", refusedBy: "destinations:deny_types", dests: 1, caller: true}},
		{name: "delivered",
			req:  testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"+14255551234","operationId":"call-1"}`, Header: http.Header{"Authorization": {auth}}},
			want: &want{operation: "startPhoneAudio", status: 201, operationID: "call-1", idempotency: "reserved", dests: 1, caller: true}},
		{name: "replayed by idempotency",
			req:  testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"+14255551234","operationId":"call-1"}`, Header: http.Header{"Authorization": {auth}}},
			want: &want{operation: "startPhoneAudio", status: 201, operationID: "call-1", idempotency: "replayed", dests: 1, caller: true}},
		{name: "over the velocity limit",
			req:  testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"+14255551234","operationId":"call-2"}`, Header: http.Header{"Authorization": {auth}}},
			want: &want{operation: "startPhoneAudio", status: 429, error: "TooManyRequests/LimitExceeded", operationID: "call-2", idempotency: "reserved", refusedBy: "limit:calls", dests: 1, caller: true}},
		// Numbers written with separators, and SIP hosts that spell one.
		{name: "an operationId that is a number with separators",
			req:  testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"tel:+14255551234","operationId":"+1 (425) 555-1234"}`, Header: http.Header{"Authorization": {auth}}},
			want: &want{operation: "startPhoneAudio", status: 429, error: "TooManyRequests/LimitExceeded", operationID: "+* (***) ***-****", idempotency: "reserved", refusedBy: "limit:calls", dests: 1, caller: true, destination: "+1425555****"}},
		{name: "an operationId with a hyphenated number",
			req:  testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"+14255551234","operationId":"call-1-425-555-1234"}`, Header: http.Header{"Authorization": {auth}}},
			want: &want{operation: "startPhoneAudio", status: 429, error: "TooManyRequests/LimitExceeded", operationID: "call-*-***-***-****", idempotency: "reserved", refusedBy: "limit:calls", dests: 1, caller: true}},
		{name: "an ENUM host",
			req: testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"sip:+14255551234@4.3.2.1.5.5.5.5.2.4.1.e164.arpa;user=phone","operationId":"call-3"}`, Header: http.Header{"Authorization": {auth}}},
			want: &want{operation: "startPhoneAudio", status: 429, error: "TooManyRequests/LimitExceeded", operationID: "call-3", idempotency: "reserved", refusedBy: "limit:calls", dests: 1, caller: true,
				destination: "sip:+1425555****@*.*.*.*.*.*.*.*.*.*.*.e***.arpa"}},
		{name: "a host with a hyphenated number, a name the limit does not count",
			req: testkit.Request{URL: startAudioPath, ContentType: "application/json", Body: `{"to":"sip:john@1-425-555-1234.example.com","operationId":"call-4"}`, Header: http.Header{"Authorization": {auth}}},
			want: &want{operation: "startAudio", status: 201, operationID: "call-4", idempotency: "reserved", dests: 1, caller: true,
				destination: "sip:****@*-***-***-****.example.com"}},
		{name: "a batch, its guarded parts listed",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {auth}}, Body: batchBody(
				startPart(`{"to":"+14255551234","operationId":"b-19005550000"}`),
				"GET "+opsApp+"/people/contacts HTTP/1.1\r\nAccept: application/json\r\n\r\n",
				"POST "+immediateForwardPath+" HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"+`{"target":"+14255550100"}`)},
			want: &want{operation: "batch", status: 429, error: "TooManyRequests/LimitExceeded", idempotency: "reserved", refusedBy: "limit:calls", dests: 2, caller: true,
				parts: []auditPartJSON{{1, "startPhoneAudio", "b-***********"}, {3, "immediateForwardToContact", ""}}}},
		{name: "an application id in upper case, another spelling of the path",
			req:  testkit.Request{URL: "/ucwa/oauth/v1/Applications/AbC/./communication/startPhoneAudio", ContentType: "application/json", Body: `{"to":"+14255551234","operationId":"call-5"}`, Header: http.Header{"Authorization": {auth}}},
			want: &want{operation: "startPhoneAudio", application: "abc", status: 429, error: "TooManyRequests/LimitExceeded", operationID: "call-5", idempotency: "reserved", refusedBy: "limit:calls", dests: 1, caller: true}},
		{name: "a near miss", req: testkit.Request{URL: startOpsPath + "/4255551234", ContentType: "application/json", Body: `{"to":"+14255551234"}`},
			want: &want{operation: "(near miss)", status: 404, error: "NotFound"}},
		{name: "a call transfer below a conversation, a near miss",
			req:  testkit.Request{URL: opsApp + "/communication/conversations/137/audioVideo/transfer?to=tel:%2B19005551234", ContentType: "application/json", Body: `{"to":"tel:+19005551234"}`},
			want: &want{operation: "(near miss)", status: 404, error: "NotFound"}},
		{name: "a forward below an invitation, a near miss",
			req:  testkit.Request{URL: opsApp + "/communication/invitations/507/forward?to=tel:%2B19005551234", ContentType: "application/json", Body: `{"to":"tel:+19005551234"}`},
			want: &want{operation: "(near miss)", status: 404, error: "NotFound"}},
		{name: "a transfer of a conversation, a near miss",
			req:  testkit.Request{URL: opsApp + "/communication/conversations/137/transfer?to=tel:%2B19005551234", ContentType: "application/json", Body: `{"to":"tel:+19005551234"}`},
			want: &want{operation: "(near miss)", status: 404, error: "NotFound"}},
		{name: "passed on", req: testkit.Request{Method: "GET", URL: opsApp + "/communication"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := len(auditLines(t, readAudit()))
			before := len(pool.Received())
			resp := e.send(tc.req)
			if tc.want == nil {
				if resp.Status != http.StatusCreated || len(pool.Received()) != before+1 {
					t.Fatalf("status %d, want 201 from the pool", resp.Status)
				}
				// The next request's line is the next line: this one wrote none.
				return
			}
			if resp.Status != tc.want.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, tc.want.status)
			}
			var got []auditLine
			testkit.Eventually(t, "the audit line", func() bool {
				got = auditLines(t, readAudit())
				return len(got) > lines
			})
			if len(got) != lines+1 {
				t.Fatalf("%d audit lines, want %d", len(got), lines+1)
			}
			a := got[lines]
			w := tc.want
			if a.Msg != "guarded request" || a.Operation != w.operation || a.Status != w.status || a.Error != w.error ||
				a.OperationID != w.operationID || a.Idempotency != w.idempotency || a.RefusedBy != w.refusedBy || len(a.Destinations) != w.dests || a.RemoteIP != "127.0.0.1" || a.Duration == nil {
				t.Errorf("audit line %+v, want %+v", a, *w)
			}
			wantApplication := w.application
			if wantApplication == "" && w.operation != nearMissOperation {
				wantApplication = "104"
			}
			if a.Application != wantApplication {
				t.Errorf("audit line's application %q, want %q", a.Application, wantApplication)
			}
			if w.destination != "" && (len(a.Destinations) == 0 || a.Destinations[0].Destination != w.destination) {
				t.Errorf("audit line's destinations %+v, want the first %s", a.Destinations, w.destination)
			}
			if !slices.Equal(a.Parts, w.parts) {
				t.Errorf("audit line's parts %+v, want %+v", a.Parts, w.parts)
			}
			if hasCaller := a.Caller.Sub == callerSub && a.Caller.TID == callerTID; hasCaller != w.caller {
				t.Errorf("audit line's caller %+v, want one: %v", a.Caller, w.caller)
			}
			if wantPool := w.status == http.StatusCreated && w.idempotency == "reserved"; (a.Pool == "primary") != wantPool {
				t.Errorf("audit line's pool %q, want primary: %v", a.Pool, wantPool)
			}
		})
	}
	trail := readAudit()
	// A number is found with its separators dropped, and backwards too
	// (an ENUM host spells it so).
	bare := strings.Map(func(r rune) rune {
		if isSeparator(r) {
			return -1
		}
		return r
	}, trail)
	for _, secret := range []string{"9005551234", "4255551234", "4321555524", strings.TrimPrefix(auth, "Bearer ")} {
		if strings.Contains(trail, secret) || strings.Contains(bare, secret) {
			t.Errorf("the audit trail holds %s", secret)
		}
	}
	// What a client wrote shows no run of more than four digits, and a
	// SIP host no more than four digits at all.
	for _, a := range auditLines(t, trail) {
		ids := []string{a.OperationID}
		for _, p := range a.Parts {
			ids = append(ids, p.OperationID)
		}
		for _, id := range ids {
			if longestDigitRun(id) > maxShownDigitRun {
				t.Errorf("the audit trail holds the operationId %q", id)
			}
		}
		for _, d := range a.Destinations {
			digits := 0
			if _, host, sip := strings.Cut(d.Destination, "@"); sip {
				for _, c := range host {
					if unicode.IsDigit(c) {
						digits++
					}
				}
			}
			if digits > maxShownDigitRun {
				t.Errorf("the audit trail holds the destination %s", d.Destination)
			}
		}
	}
	if strings.Contains(e.Logs().String(), "http.handlers.ucwa.audit") {
		t.Errorf("the default log holds audit lines")
	}
	// Every line as Caddy's JSON encoder wrote it, byte for byte (keys,
	// their order, values and escaping), but for its time and duration.
	testkit.Golden(t, filepath.Join("testdata", "audit_trail.golden"), auditTimes.ReplaceAllString(trail, `"$1":0`))
}

// auditTimes matches the values of an audit line that change from run to
// run: its time and duration.
var auditTimes = regexp.MustCompile(`"(ts|duration)":[0-9.e+-]+`)

// TestAuditStatusOfNextHandler: without pools the edge hands an accepted
// request to the next handler, and when that one fails (reverse_proxy
// to an upstream that is down returns its 502 as an error, which Caddy
// writes once the handlers have returned), the audit line has the status
// the client got, not 0.
func TestAuditStatusOfNextHandler(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	down := testkit.NewUpstream(t)
	down.Kill()
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		`+opsJWT+`
		default_region US
	}
	reverse_proxy %s
}`, down.Addr()))
	resp := e.postJSON(startOpsPath, `{"to":"+14255551234","operationId":"next-1"}`, http.Header{"Authorization": {callerBearer(t)}})
	if resp.Status != http.StatusBadGateway {
		t.Fatalf("status %d, want 502 from reverse_proxy", resp.Status)
	}
	var lines []auditLine
	testkit.Eventually(t, "the audit line", func() bool {
		lines = auditLines(t, e.Logs().String())
		return len(lines) > 0
	})
	if len(lines) != 1 || lines[0].Status != http.StatusBadGateway || lines[0].OperationID != "next-1" {
		t.Errorf("audit lines %+v, want one with status 502", lines)
	}
}

// TestMaskDigitRuns: an operationId keeps what cannot be a number.
func TestMaskDigitRuns(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"call-1", "call-1"},
		{"3f2504e0-4f89-11d3-9a0c-0305e82c3301", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"},
		{"1234", "1234"},
		{"12345", "*****"},
		{"op+19005551234x", "op+***********x"},
		{"a1234b56789", "a1234b*****"},
		{"١٢٣٤٥٦", "******"},   // Arabic-Indic digits read as a number too
		{"１９００５５５", "*******"}, // fullwidth
		{"é12345é", "é*****é"},
		{"12345a12b123456", "*****a12b******"},
		{"12345Z123456", "*****Z******"},
		{"12345é", "*****é"},
		{"000000000000000000000000000001f4", "******************************f4"},
		{"a\xff12345\xff1", "a\ufffd*****\ufffd*"}, // as a rune each, as logs write them
		// A run goes on across the separators a number may have (and
		// anything else but a letter), which stay as they are.
		{"+1 (425) 555-1234", "+* (***) ***-****"},
		{"call-1-425-555-1234", "call-*-***-***-****"},
		{"1.425.555.1234", "*.***.***.****"},
		{"1/425/555/1234", "*/***/***/****"},
		{"(42)(555)", "(**)(***)"},
		{"12 345", "** ***"},
		{"12\u00a0345", "**\u00a0***"}, // no-break space
		{"12\u3000345", "**\u3000***"}, // ideographic space
		{"１２-３４５", "**-***"},           // fullwidth, hyphenated
		{"12--..345", "**--..***"},     // several in a row
		{"-12-34-", "-12-34-"},         // four digits, separators about them
		{"(1 2 3 4)", "(1 2 3 4)"},
		{"call 1234 x", "call 1234 x"},
		// A letter ends a run; anything else a client may put between
		// the digits of a number does not.
		{"12a345", "12a345"},
		{"1234-a-5678", "1234-a-5678"},
		{"1234_5678", "****_****"},
		{"call_1_425_555_1234", "call_*_***_***_****"},
		{"12+345", "**+***"},
		{"12:345", "**:***"},
		{"1\t2\t3\t4\t5", "*\t*\t*\t*\t*"},
		// A GUID's hyphens join digits about them.
		{"74cb7404e0a247d5a2d4eb0376a47dbf", "74cb7404e0a247d5a2d4eb0376a47dbf"},
		{"74cb7404-e0a2-47d5-a2d4-eb0376a47dbf", "74cb7404-e0a2-47d5-a2d4-eb0376a47dbf"},
		{"74cb7404-e0a2-4715-a2d4-eb0376a47dbf", "74cb7404-e0a*-****-a2d4-eb0376a47dbf"},
	} {
		if got := maskDigitRuns(tc.in); got != tc.want {
			t.Errorf("maskDigitRuns(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzMaskDigitRuns: what maskDigitRuns gives holds no run of more than
// four digits counted across anything but letters, differs from its input
// only in digits turned to '*', and turns only digits of such runs; and
// appendMaskedDigitRuns appends what it appends rune by rune; and
// appendMaskedRunTails masks the last four digits of each such run, a
// part of what maskDigitRuns masks, and appends what it appends rune by
// rune; a claim that numberLike tells a number has its last four digits
// masked; and auditApplicationID cuts a long id at a character's start.
func FuzzMaskDigitRuns(f *testing.F) {
	for _, s := range []string{"call-1", "+19005551234", "tel:+1 (425) 555-1234", "12345678-1234-1234-1234-123456789012", "١٢٣٤٥٦", "a\xff12345", "+1 (425) 555-1234", "call-1-425-555-1234", "12\u00a034.5", "74cb7404-e0a2-4715-a2d4", "¹⁹⁰⁰⁵⁵⁵¹²³⁴", "①⑨⓪⓪5", "⑲⑲⑳", "123⑩4567"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if long := hasLongDigitRun(s); long != (longestDigitRun(s) > maxShownDigitRun) {
			t.Fatalf("hasLongDigitRun(%q) = %v, longest run %d", s, long, longestDigitRun(s))
		}
		got := maskDigitRuns(s)
		in, out := []rune(s), []rune(got)
		if len(in) != len(out) {
			t.Fatalf("%q -> %q: %d runes, want %d", s, got, len(out), len(in))
		}
		if run := longestDigitRun(got); run > maxShownDigitRun {
			t.Fatalf("%q -> %q shows a run of %d digits", s, got, run)
		}
		long := inLongDigitRun(in)
		for i, c := range out {
			if c != in[i] && (c != '*' || ucwa.DialDigits(in[i]) == 0) {
				t.Fatalf("%q -> %q: rune %d changed to %q", s, got, i, c)
			}
			if c != in[i] && !long[i] {
				t.Fatalf("%q -> %q: rune %d, of no run of more than %d digits, is masked", s, got, i, maxShownDigitRun)
			}
		}
		if masked, runes := appendMaskedDigitRuns(nil, s), appendMaskedRunes(nil, s, false); string(masked) != string(runes) {
			t.Fatalf("%q appended as %q, rune by rune %q", s, masked, runes)
		}
		if (got != s) != hasLongDigitRun(s) {
			t.Fatalf("%q -> %q, which hasLongDigitRun tells %v", s, got, hasLongDigitRun(s))
		}
		// The tails of the long runs: a part of what maskDigitRuns masks,
		// the last four digits of each run.
		tails := appendMaskedRunTails(nil, s)
		if runes := appendMaskedRunes(nil, s, true); string(tails) != string(runes) {
			t.Fatalf("%q tails appended as %q, rune by rune %q", s, tails, runes)
		}
		if strings.Count(string(tails), "*")-strings.Count(s, "*") != tailsMasked(s) {
			t.Fatalf("%q tails masked as %q: not all but the first %d digits, at most, and at least the last %d of each long run", s, tails, maxShownRunHead, maskedTailDigits)
		}
		for i, c := range []rune(string(tails)) {
			if c != in[i] && out[i] != '*' {
				t.Fatalf("%q tails masked as %q: rune %d, which maskDigitRuns shows, is masked", s, tails, i)
			}
		}
		// A claim that reads as a number is one long run: masked, its
		// last four digits do not show.
		maskedDigits := 0
		for i, c := range []rune(string(tails)) {
			if c != in[i] {
				maskedDigits += ucwa.DialDigits(in[i])
			}
		}
		if numberLike(s) && maskedDigits < maskedTailDigits {
			t.Fatalf("%q reads as a number, masked as %q", s, tails)
		}
		// An application id is cut where no character is split, no more
		// than a character's bytes before the bound, whole below it.
		app := auditApplicationID(s)
		if cut, ok := strings.CutSuffix(app, "…"); len(s) <= maxAuditApplicationID && app != s ||
			len(s) > maxAuditApplicationID && (!ok || len(cut) > maxAuditApplicationID || len(cut) <= maxAuditApplicationID-utf8.UTFMax ||
				!strings.HasPrefix(s, cut) || splitsCharacter(s, len(cut))) {
			t.Fatalf("%d bytes of application id kept as %q", len(s), app)
		}
	})
}

// splitsCharacter reports whether cutting s at i splits a character: a
// valid UTF-8 encoding that begins before i and ends after it.
func splitsCharacter(s string, i int) bool {
	for start := max(i-utf8.UTFMax+1, 0); start < i; start++ {
		if r, n := utf8.DecodeRuneInString(s[start:]); (r != utf8.RuneError || n > 1) && start+n > i {
			return true
		}
	}
	return false
}

// tailsMasked counts the characters appendMaskedRunTails masks in s: of
// each run of more than four digits, anything but letters between them,
// as maskDigitRuns reads them (a character of several digits, ⑩, counts
// them all), all but the first seven digits, and at least the last four:
// a character whose digits would pass the seven is masked, and all
// after it.
func tailsMasked(s string) int {
	n := 0
	var run []int // the digits of each character of the current run
	end := func() {
		digits := 0
		for _, w := range run {
			digits += w
		}
		if digits > 4 {
			shown := min(digits-4, 7)
			for _, w := range run {
				if w <= shown {
					shown -= w
				} else {
					shown = 0
					n++
				}
			}
		}
		run = run[:0]
	}
	for _, c := range s {
		switch w := ucwa.DialDigits(c); {
		case w > 0:
			run = append(run, w)
		case unicode.IsLetter(c):
			end()
		}
	}
	end()
	return n
}

// longestDigitRun returns the most digits s holds in a row, anything but
// letters between them (what maskDigitRuns may show at most four of).
func longestDigitRun(s string) int {
	longest, run := 0, 0
	for _, c := range s {
		switch w := ucwa.DialDigits(c); {
		case w > 0:
			run += w
			longest = max(longest, run)
		case !isSeparator(c):
			run = 0
		}
	}
	return longest
}

// inLongDigitRun tells, for each rune of s, whether it is a digit of a
// run of more than four digits, anything but letters between them: a run
// is measured back to front as well as front to back.
func inLongDigitRun(s []rune) []bool {
	long := make([]bool, len(s))
	ahead := make([]int, len(s)) // digits of the run from s[i] on
	for i, n := len(s)-1, 0; i >= 0; i-- {
		switch w := ucwa.DialDigits(s[i]); {
		case w > 0:
			n += w
		case !isSeparator(s[i]):
			n = 0
		}
		ahead[i] = n
	}
	for i, n := 0, 0; i < len(s); i++ {
		switch w := ucwa.DialDigits(s[i]); {
		case w > 0:
			n += w
			// n counts s[i] from behind and ahead[i] from ahead.
			long[i] = n+ahead[i]-w > maxShownDigitRun
		case !isSeparator(s[i]):
			n = 0
		}
	}
	return long
}

// isSeparator tells what a run of digits goes on across: anything but a
// letter (or a digit, which the run counts).
func isSeparator(r rune) bool {
	return !unicode.IsLetter(r) && ucwa.DialDigits(r) == 0
}

// BenchmarkAudit measures the audit trail's own cost per request: taking
// the record, the destination policy judging the request's destinations
// into it (as in ServeHTTP: the line reads its decisions), writing the
// line through a core with Caddy's JSON encoder into a writer that
// discards it, and giving the record back. The file write is left out:
// it is one write call per line, whatever the line holds. "edge" is
// BenchmarkHandler's (`jwt off`, no pools, the seed sample); "auth" a
// line with all a delivered call has: a verified caller, a number and a
// SIP address judged by the destination policy, the pool, idempotency
// and an operationId with digits to mask. "logs" is "auth" with the
// audit logger Caddy gives a handler it loads, under the README's
// logging (the trail in a file of its own, out of the default log):
// Caddy's cores, name filters and all, and the file write (one write
// call per line) too; "buffered" is "logs" through the README's buffered
// writer of that file, a write call per buffer. The file is not rolled:
// rolling it every 100 MiB, and compressing the rolled file in the
// background, would measure the compressor too.
//
//	go test -run '^$' -bench BenchmarkAudit -benchmem ./caddymodule/
func BenchmarkAudit(b *testing.B) {
	k := testkit.Keys(b)
	token := testkit.Mint(b, jwt.SigningMethodRS256, k.RSA, "bench", testkit.EntraClaims(time.Now()))
	jwksPath := testkit.WriteFile(b, b.TempDir(), "jwks.json", testkit.JWKS(b, testkit.JWK(b, "bench", k.RSA)))
	authConfig := fmt.Sprintf(`{"jwt":{"algorithms":["RS256"],"jwks_file":%q,
			"issuers":["https://issuer.example/"],"audiences":["api://ucwa"]},"default_region":"US",
			"destinations":{"allow_regions":["US","CA"],"sip_domains":["contoso.com"]}}`, jwksPath)
	fileWriter := `{"output":"file","filename":%q,"roll":false}`
	for _, tc := range []struct {
		name, config, operationID, pool string
		// writer is the audit log's writer (its file's name a verb),
		// through Caddy's cores; none: a core of its own that discards.
		writer string
	}{
		{"edge", `{"jwt":{"off":true},"default_region":"US"}`, seedOperationID, "", ""},
		{"auth", authConfig, "call-1-425-555-1234", "primary", ""},
		{"logs", authConfig, "call-1-425-555-1234", "primary", fileWriter},
		{"buffered", authConfig, "call-1-425-555-1234", "primary", `{"output":"buffered","writer":` + fileWriter + `}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			writer := tc.writer
			if writer == "" {
				writer = fileWriter
			}
			ctx := benchContext(b, fmt.Sprintf(`{"logging":{"logs":{
				"default":{"exclude":["http.handlers.ucwa.audit"]},
				"audit":{"include":["http.handlers.ucwa.audit"],"encoder":{"format":"json"},"writer":`+writer+`}}}}`,
				filepath.Join(b.TempDir(), "audit.log")))
			var h *Handler
			if tc.writer != "" {
				m, err := ctx.LoadModuleByID("http.handlers.ucwa", json.RawMessage(tc.config))
				if err != nil {
					b.Fatal(err)
				}
				h = m.(*Handler)
			} else {
				encoder := new(logging.JSONEncoder)
				if err := encoder.Provision(ctx); err != nil {
					b.Fatal(err)
				}
				h = provision(b, ctx, new(Handler), tc.config)
				h.setAudit(zap.New(zapcore.NewCore(encoder, zapcore.AddSync(io.Discard), zapcore.InfoLevel)).
					Named("http.handlers.ucwa").Named(auditLoggerName))
			}
			body := strings.Replace(seedJSON, seedOperationID, tc.operationID, 1)
			req := httptest.NewRequest(http.MethodPost, startPath, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			w := httptest.NewRecorder()
			req = caddyhttp.PrepareRequest(req, caddy.NewReplacer(), w, new(caddyhttp.Server))
			var in intake
			in.start(req, ucwa.ReadHeader(req.Header), ucwa.ReadQueryNames(req.URL.RawQuery), h.matcher.Match(req.Method, req.URL.Path))
			defer in.release()
			if !h.authorize(w, &in) {
				b.Fatalf("not authorized: %d %s", w.Code, w.Body)
			}
			if e := h.accept(&in); e != nil {
				b.Fatal(e)
			}
			if tc.pool != "" {
				setServingPool(req, tc.pool, zap.Skip())
				in.idempotency = resultReserved + 1
			}
			b.ReportAllocs()
			for b.Loop() {
				in.startAudit(h, w)
				// The policy judges the destinations once the record is
				// the request's, as in ServeHTTP.
				if e := h.judge(&in, in.cleaned, 0); e != nil {
					b.Fatal(e)
				}
				in.rec.status = http.StatusCreated
				var err error
				h.writeAudit(&in, &err)
				in.releaseRecord()
			}
		})
	}
}

// TestAuditApplicationMasked: the audit line's application, the
// application id a client writes in the path, is masked as operation_id
// is, so that a number written there does not reach the trail whole,
// through a real Caddy; an application id without a long run of digits
// reads as written (in lower case), its first 128 bytes when it is
// longer.
func TestAuditApplicationMasked(t *testing.T) {
	e := startGuardEdge(t, "")
	auth := http.Header{"Authorization": {callerBearer(t)}}
	for _, tc := range []struct{ app, want string }{
		{"104", "104"},
		{"App-7f3E", "app-7f3e"},
		{"101246165550", "1012461*****"},
		{"14255551234", "1425555****"},
		{"1-425-555-1234", "1-425-555-****"},
		{"tel:+1(425)5551234", "tel:+1(425)555****"},
		// A number followed by more digits is one run: its first seven
		// digits show, no more.
		{"14255551234-0000", "1425555****-****"},
		{"14255551234-14255559876", "1425555****-***********"},
		// A long one is cut at 128 bytes, on a whole character, and its
		// cut digit run masked as it ends there.
		{strings.Repeat("a", 128), strings.Repeat("a", 128)},
		{strings.Repeat("a", 4000), strings.Repeat("a", 128) + "…"},
		{strings.Repeat("a", 127) + "é" + strings.Repeat("b", 100), strings.Repeat("a", 127) + "…"},
		{strings.Repeat("1", 300), strings.Repeat("1", 7) + strings.Repeat("*", 121) + "…"},
	} {
		t.Run(tc.app[:min(len(tc.app), 20)], func(t *testing.T) {
			audits := len(auditLines(t, e.Logs().String()))
			path := "/ucwa/oauth/v1/applications/" + url.PathEscape(tc.app) + "/communication/startPhoneAudio"
			if resp := e.postJSON(path, `{"to":"+14255550100"}`, auth); resp.Status != http.StatusCreated {
				t.Fatalf("status %d (%s), want 201", resp.Status, resp.Body)
			}
			if a := e.nextAudit(t, audits); a.Application != tc.want {
				t.Errorf("application %q, want %q", a.Application, tc.want)
			}
		})
	}
	if strings.Contains(e.Logs().String(), "4255551234") || strings.Contains(e.Logs().String(), "5551234") {
		t.Errorf("the log holds the number written as an application id")
	}
}

// TestAuditLinesOfOneToken: one token's requests, concurrent, to two
// operations of three applications, through a real Caddy: each audit
// line has its own request's operation and application (masked), and
// the token's caller, though the line's first fields come encoded from
// a logger the token's grant keeps for its last operation and
// application (see grant.auditLogger), which the requests keep taking
// from one another.
func TestAuditLinesOfOneToken(t *testing.T) {
	e := startGuardEdge(t, "")
	auth := http.Header{"Authorization": {callerBearer(t)}}
	type sent struct{ operation, application string }
	apps := []sent{{"startPhoneAudio", "104"}, {"startAudio", "104"}, {"startPhoneAudio", "101246165550"},
		{"startAudio", "app-7f3e"}, {"startPhoneAudio", "app-7f3e"}}
	masked := map[string]string{"104": "104", "101246165550": "1012461*****", "app-7f3e": "app-7f3e"}
	const requests = 60
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := w; i < requests; i += 6 {
				a := apps[i%len(apps)]
				resp, err := testkit.Do(e.Client(), testkit.Request{URL: e.url("/ucwa/oauth/v1/applications/" + a.application + "/communication/" + a.operation),
					ContentType: "application/json", Body: fmt.Sprintf(`{"to":"+14255550100","operationId":"req-%d"}`, i), Header: auth})
				if err != nil || resp.Status != http.StatusCreated {
					t.Errorf("request %d: status %d (%s), %v; want 201", i, resp.Status, resp.Body, err)
				}
			}
		})
	}
	wg.Wait()
	var lines []auditLine
	testkit.Eventually(t, "the audit lines", func() bool {
		lines = auditLines(t, e.Logs().String())
		return len(lines) >= requests
	})
	if len(lines) != requests {
		t.Fatalf("%d audit lines, want %d", len(lines), requests)
	}
	seen := map[int]bool{}
	for _, l := range lines {
		var i int
		if _, err := fmt.Sscanf(l.OperationID, "req-%d", &i); err != nil || i < 0 || i >= requests || seen[i] {
			t.Fatalf("audit line of operation_id %q: not one of the requests, or twice", l.OperationID)
		}
		seen[i] = true
		a := apps[i%len(apps)]
		if l.Operation != a.operation || l.Application != masked[a.application] ||
			l.Caller.Sub != callerSub || l.Caller.OID != callerOID || l.Caller.TID != callerTID || l.Caller.ClientID != callerApp {
			t.Errorf("request %d to %s of application %s: audit line's operation %q, application %q, caller %+v",
				i, a.operation, a.application, l.Operation, l.Application, l.Caller)
		}
	}
}

// TestAuditTrailFormats: the audit line through Caddy's other encoders,
// as operators route and filter it with `log`: the filter encoder filters
// its fields, the operation and a caller's claim among them, and the
// console encoder writes its fields as spaced JSON, the operation first, for a
// request and for a near miss alike, and the duration follows the log's
// duration_format, as in Caddy's access log.
func TestAuditTrailFormats(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	for _, tc := range []struct {
		name, format string
		want         []string // the lines' fields, each from the operation on
		duration     *regexp.Regexp
	}{
		{"filter", `format filter {
			wrap json
			fields {
				operation replace guarded
				caller>oid delete
			}
		}`, []string{
			`"operation":"guarded","application":"104","caller":{"sub":"sub-guard","tid":"tid-guard","iss":"https://issuer.example/","client_id":"app-guard"},"remote_ip":"127.0.0.1",`,
			`"operation":"guarded","remote_ip":"127.0.0.1","error":"NotFound","status":404,`,
		}, nil},
		{"duration_format string", `format json {
			duration_format string
		}`, []string{
			`"operation":"startPhoneAudio","application":"104",`,
			`"operation":"(near miss)","remote_ip":"127.0.0.1","error":"NotFound","status":404,"duration":"`,
		}, regexp.MustCompile(`"duration":"[0-9.]+[µnm]?s"`)},
		{"console", `format console`, []string{
			`{"operation": "startPhoneAudio", "application": "104", "caller": {"sub": "sub-guard", "oid": "oid-guard", "tid": "tid-guard", "iss": "https://issuer.example/", "client_id": "app-guard"}, "remote_ip": "127.0.0.1", `,
			`{"operation": "(near miss)", "remote_ip": "127.0.0.1", "error": "NotFound", "status": 404, `,
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auditFile := filepath.Join(t.TempDir(), "ucwa-audit.log")
			pool := testkit.NewUpstream(t)
			e := startEdge(t, "caddyfile", auditFileCaddyfile(auditFile, tc.format, pool.Addr()))
			if resp := e.send(testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"+14255551234"}`, Header: http.Header{"Authorization": {callerBearer(t)}}}); resp.Status != http.StatusCreated {
				t.Fatalf("status %d (%s), want 201", resp.Status, resp.Body)
			}
			if resp := e.send(testkit.Request{URL: startOpsPath + "/4255551234", ContentType: "application/json", Body: `{"to":"+14255551234"}`}); resp.Status != http.StatusNotFound {
				t.Fatalf("near miss: status %d (%s), want 404", resp.Status, resp.Body)
			}
			var lines []string
			testkit.Eventually(t, "the audit lines", func() bool {
				b, _ := os.ReadFile(auditFile)
				lines = slices.Collect(strings.Lines(string(b)))
				return len(lines) >= len(tc.want)
			})
			if len(lines) != len(tc.want) {
				t.Fatalf("%d lines, want %d: %q", len(lines), len(tc.want), lines)
			}
			for i, want := range tc.want {
				if _, fields, ok := strings.Cut(lines[i], `"msg":"guarded request",`); tc.name != "console" && (!ok || !strings.HasPrefix(fields, want)) ||
					tc.name == "console" && !strings.Contains(lines[i], "\tguarded request\t"+want) {
					t.Errorf("line %d: %s\nwant its fields from %s", i, lines[i], want)
				}
				if tc.duration != nil && !tc.duration.MatchString(lines[i]) {
					t.Errorf("line %d: %s\nwant its duration as %s", i, lines[i], tc.duration)
				}
			}
		})
	}
}

// auditFileCaddyfile is an edge of opsJWT and a primary pool at
// upstream whose audit trail goes to file alone, in the log's format
// (a `format` line or block).
func auditFileCaddyfile(file, format, upstream string) string {
	return trailConfig("file "+file, format, upstream, "")
}

// TestAuditFilterOfMaskedFields: through a real Caddy, a filter
// encoder's hash filter on the audit line's application, operation_id
// and a caller's claim hashes them when the edge masked digits in them
// too (a pool's long application id, an operationId with a number, a
// sub that reads as a number), as it hashes them when it masked none:
// the filter gets each as a string, as Caddy's filters take one, and
// writes the hash, not the masked value in base64.
func TestAuditFilterOfMaskedFields(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	auditFile := filepath.Join(t.TempDir(), "ucwa-audit.log")
	pool := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", auditFileCaddyfile(auditFile, `format filter {
			wrap json
			fields {
				application hash
				operation_id hash
				caller>sub hash
			}
		}`, pool.Addr()))
	hash := func(s string) string { return fmt.Sprintf("%.4x", sha256.Sum256([]byte(s))) }
	numberSub := "Bearer " + testkit.Mint(t, jwt.SigningMethodHS256, testkit.Keys(t).HMAC, "",
		testkit.Claims(time.Now(), jwt.MapClaims{"scp": strings.Join(allScopes, " "), "sub": "+14255551234"}))
	for _, tc := range []struct {
		name, application, operationID, auth string
		status                               int
		want                                 map[string]string // a field (caller>sub: the caller's sub) and its value
	}{
		{"nothing masked", "104", "call-a", callerBearer(t), http.StatusCreated,
			map[string]string{"application": hash("104"), "operation_id": hash("call-a"), "caller>sub": hash(callerSub)}},
		{"masked, a caller's grant", "101246165550", "call-1-425-555-1234", numberSub, http.StatusCreated,
			map[string]string{"application": hash("1012461*****"), "operation_id": hash("call-*-***-***-****"), "caller>sub": hash("+1425555****")}},
		{"masked, no token", "101246165550", "call-1-425-555-1234", "", http.StatusUnauthorized,
			map[string]string{"application": hash("1012461*****")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(fileLines(t, auditFile))
			header := http.Header{}
			if tc.auth != "" {
				header.Set("Authorization", tc.auth)
			}
			resp := e.send(testkit.Request{URL: "/ucwa/oauth/v1/applications/" + tc.application + "/communication/startPhoneAudio",
				ContentType: "application/json", Body: `{"to":"+14255551234","operationId":"` + tc.operationID + `"}`, Header: header})
			if resp.Status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, tc.status)
			}
			var lines []string
			testkit.Eventually(t, "the audit line", func() bool {
				lines = fileLines(t, auditFile)
				return len(lines) > before
			})
			var line struct {
				Application string `json:"application"`
				OperationID string `json:"operation_id"`
				Caller      struct {
					Sub string `json:"sub"`
				} `json:"caller"`
			}
			if err := json.Unmarshal([]byte(lines[before]), &line); err != nil {
				t.Fatalf("the audit line is not JSON: %v: %s", err, lines[before])
			}
			got := map[string]string{"application": line.Application, "operation_id": line.OperationID}
			if line.Caller.Sub != "" {
				got["caller>sub"] = line.Caller.Sub
			}
			for field, want := range tc.want {
				if got[field] != want {
					t.Errorf("%s %q, want its hash %q: %s", field, got[field], want, lines[before])
				}
			}
		})
	}
}

// fileLines returns the whole lines of the file at path (a line being
// written is not one yet), none when it is not there yet.
func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.Lines(string(b)) {
		if strings.HasSuffix(line, "\n") {
			lines = append(lines, line)
		}
	}
	return lines
}
