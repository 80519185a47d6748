package caddymodule

import (
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// referenceHeaderSpelling reports which header a name is as IIS, CGI and
// PHP read one (any ASCII letter case, '_' or '.' for each '-'): one of
// names, or "" for another.
func referenceHeaderSpelling(name string, names ...string) string {
	for _, want := range names {
		if len(name) != len(want) {
			continue
		}
		same := true
		for i := range len(name) {
			c := name[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			same = same && (c == want[i] || want[i] == '-' && (c == '_' || c == '.'))
		}
		if same {
			return want
		}
	}
	return ""
}

// filterHeaderLines reads fuzzer text as header lines, "name:value"
// each, into the header a server reads (each name canonicalized as
// net/http canonicalizes it, when canonical is set, else as written).
func filterHeaderLines(s string, canonical bool) http.Header {
	h := http.Header{}
	for l := range strings.SplitSeq(s, "\n") {
		if name, value, ok := strings.Cut(l, ":"); ok {
			if canonical {
				name = textproto.CanonicalMIMEHeaderKey(name)
			}
			h[name] = append(h[name], value)
		}
	}
	return h
}

// loggedStrings is an array as zap's map encoder holds it, as strings.
func loggedStrings(t *testing.T, v any) []string {
	t.Helper()
	items, ok := v.([]any)
	if !ok {
		t.Fatalf("logged %T %v, not an array", v, v)
	}
	var ss []string
	for _, item := range items {
		s, ok := item.(string)
		if !ok {
			t.Fatalf("logged %T %v in an array", item, item)
		}
		ss = append(ss, s)
	}
	return ss
}

// wholeDigitRun returns the length of the first run of more than
// maxShownRunHead digits that s shows whole, counted as the audit trail
// counts them (across anything but letters and '*'), or 0.
func wholeDigitRun(s string) int {
	run := 0
	for _, r := range s {
		switch {
		case ucwa.DialDigits(r) > 0:
			if run += ucwa.DialDigits(r); run > maxShownRunHead {
				return run
			}
		case unicode.IsLetter(r), r == '*':
			run = 0
		}
	}
	return 0
}

// FuzzNumberFilter: the ucwa_numbers log filter, on a request's headers
// of any names and values (as net/http canonicalizes the names, and as
// written), logs every header but X-MS-WebTicket and Data, which it drops
// in every spelling IIS reads (any ASCII letter case, '_' or '.' for a
// '-'; referenceHeaderSpelling), and no other; logs Referer,
// X-Original-URL, X-Rewrite-URL and Location, in every such spelling,
// as redactURI has each of their values, Caddy's credentials (Cookie,
// Authorization) redacted, and every other header as it came; and leaves
// the request's own header as it was. A string field is redactURI's, a
// byte string too (as a string), an array each of its items; the
// caller's field (user_id) is left whole unless it reads as a number,
// and then shows no run of more than maxShownRunHead digits whole.
func FuzzNumberFilter(f *testing.F) {
	for _, seed := range []struct{ lines, value string }{
		{"X-Ms-Webticket:cwt=AAEB\nReferer:https://app.contoso.com/?to=4255550100\nAccept:application/json", "+14255550100"},
		{"X_MS_WEBTICKET:cwt=A\nx.ms.webticket:cwt=B\nX-MS_WebTicket.:cwt=C\nDATA:{\"to\":\"4255550100\"}\nData_:x", "sip:+14255550100@contoso.com;user=phone"},
		{"x_original_url:/ucwa/v1/applications/101246165550/people/14255551234?to=4255550100\nX.Rewrite.URL:/a?to=1\nLOCATION:https://fe/x/14255551234", "0f6e27c1-1234-5678-9abc-def012345678"},
		{"Authorization:Bearer eyJ\nCookie:cwt=A\nProxy-Authorization:Basic x\nSet-Cookie:a=1", "tel:+1 (425) 555-0100"},
		{"X-Ms-Webtic\u212aet:cwt=A\nRefer\u0435r:/a/14255551234\n:x\nX-MS-WebTicket :y", "４２５５５５０１００"},
		{"referer:1\nReferer:2\nREFERER:/a/%34%32%35%35%35%35%30%31%30%30", "+1425555010"},
	} {
		f.Add(seed.lines, seed.value)
	}
	var filter NumberFilter
	f.Fuzz(func(t *testing.T, lines, value string) {
		for _, canonical := range []bool{true, false} {
			h := filterHeaderLines(lines, canonical)
			before := h.Clone()
			enc := zapcore.NewMapObjectEncoder()
			filter.Filter(zap.Object("headers", caddyhttp.LoggableHTTPHeader{Header: h})).AddTo(enc)
			logged, ok := enc.Fields["headers"].(map[string]any)
			if !ok {
				t.Fatalf("%q: headers logged as %T %v", lines, enc.Fields["headers"], enc.Fields["headers"])
			}
			for name, values := range h {
				got, ok := logged[name]
				var want []string
				switch referenceHeaderSpelling(name, "x-ms-webticket", "data", "referer", "x-original-url", "x-rewrite-url", "location") {
				case "x-ms-webticket", "data":
					if ok {
						t.Fatalf("%q: %s logged as %q", lines, name, got)
					}
					continue
				case "":
					want = values
				default:
					for _, v := range values {
						want = append(want, redactURI(v))
					}
				}
				switch strings.ToLower(name) {
				case "cookie", "set-cookie", "authorization", "proxy-authorization":
					want = []string{"REDACTED"}
				}
				if !ok {
					t.Fatalf("%q: %s not logged", lines, name)
				}
				if got := loggedStrings(t, got); !slices.Equal(got, want) {
					t.Fatalf("%q: %s logged as %q, want %q", lines, name, got, want)
				}
			}
			for name := range logged {
				if _, ok := h[name]; !ok {
					t.Fatalf("%q: logged %s, which the request has not", lines, name)
				}
			}
			for name, values := range before {
				if !slices.Equal(h[name], values) || len(h) != len(before) {
					t.Fatalf("%q: the filter changed the request's header to %q", lines, h)
				}
			}
		}

		want := redactURI(value)
		for _, in := range []zap.Field{zap.String("uri", value), zap.ByteString("uri", []byte(value))} {
			if got := filter.Filter(in); got.Type != zapcore.StringType || got.String != want {
				t.Fatalf("%v %q: %v %q, want %q", in.Type, value, got.Type, got.String, want)
			}
		}
		array := caddyhttp.LoggableStringArray{value, lines}
		got, ok := filter.Filter(zap.Array("Referer", array)).Interface.(caddyhttp.LoggableStringArray)
		if !ok || !slices.Equal(got, caddyhttp.LoggableStringArray{want, redactURI(lines)}) {
			t.Fatalf("array %q: %q", array, got)
		}
		if array[0] != value || array[1] != lines {
			t.Fatalf("the filter changed the logged array to %q", array)
		}

		caller := filter.Filter(zap.String(userIDField, value)).String
		if !numberLike(value) {
			if caller != value {
				t.Fatalf("user_id %q, no number, logged as %q", value, caller)
			}
		} else if run := wholeDigitRun(caller); run > 0 {
			t.Fatalf("user_id %q logged as %q, with a run of %d digits whole", value, caller, run)
		}
	})
}
