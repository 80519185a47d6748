package ucwa

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// numberPropertyNames returns the documented names of the properties of
// ops that hold a phone number or a destination (NumberValue,
// DestinationValue), each name once, in table order.
func numberPropertyNames(ops []Operation) []string {
	var names []string
	seen := map[string]bool{}
	for i := range ops {
		for _, p := range ops[i].Properties {
			if (p.Type == NumberValue || p.Type == DestinationValue) && !seen[p.Name] {
				seen[p.Name] = true
				names = append(names, p.Name)
			}
		}
	}
	return names
}

// TestNumberPropertyNames holds the names RedactQueryProperties's godoc
// and NumberFilter's list as the number-bearing ones to the table.
func TestNumberPropertyNames(t *testing.T) {
	if maxRedactedName > maxPropertyName {
		t.Fatalf("the longest property name has %d bytes, more than maxPropertyName", maxRedactedName)
	}
	got := numberPropertyNames(DefaultOperations())
	slices.Sort(got)
	want := []string{"delegator", "number", "phoneNumber", "target", "to"}
	if !slices.Equal(got, want) {
		t.Fatalf("number-bearing properties %v, want %v", got, want)
	}
}

// redactPath is the path of the redaction tests.
const redactPath = "/ucwa/oauth/v1/applications/103/communication/startPhoneAudio"

// redactCases are URIs and what RedactQueryProperties makes of them; they
// seed its fuzz target too.
var redactCases = []struct{ name, in, want string }{
	{"no query", redactPath, redactPath},
	{"empty query", redactPath + "?", redactPath + "?"},
	{"no property name", redactPath + "?x=1&tos=1&t=2&call=4255550100",
		redactPath + "?x=1&tos=1&t=2&call=REDACTED"},
	// Any parameter that holds a number: a search, a name no operation
	// takes, a number as a name.
	{"a number in another parameter", "/people/search?query=%2B14255550131&limit=5&ack=12&timeout=180&id=12345",
		"/people/search?query=REDACTED&limit=5&ack=12&timeout=180&id=12345"},
	{"a number escaped digit by digit", "?q=%34%32%35%35%35%35%30%31%33%31", "?q=REDACTED"},
	{"a number in digits of another script", "/people/search?query=%EF%BC%8B%EF%BC%91%EF%BC%94%EF%BC%92%EF%BC%95%EF%BC%95%EF%BC%95%EF%BC%90%EF%BC%91%EF%BC%93%EF%BC%91&q=\u0664\u0662\u0665\u0665\u0665\u0665\u0660\u0661\u0663\u0661&limit=5",
		"/people/search?query=REDACTED&q=REDACTED&limit=5"},
	{"a number in digits of another script as a name", "?%EF%BC%94%EF%BC%92%EF%BC%95%EF%BC%95%EF%BC%95%EF%BC%95%EF%BC%90%EF%BC%91%EF%BC%93%EF%BC%91&x=1", "?REDACTED&x=1"},
	{"a number as a name", "/x/startPhoneAudio?%2B14255550134&to=sip:a@b.c&1-425-555-0135=x",
		"/x/startPhoneAudio?REDACTED&to=REDACTED&REDACTED"},
	{"every other property", redactPath + "?x=1&operationId=call-1-425-555-0100&subject=hi+5551234&tos=1&SUBJECT=Secret&address=1+Main+St&zip=98052",
		redactPath + "?x=1&operationId=REDACTED&subject=REDACTED&tos=1&SUBJECT=REDACTED&address=REDACTED&zip=REDACTED"},
	{"the longest property name", "?videoBasedScreenSharing=1&publishEndpointLocation%E2%80%8B=2", "?videoBasedScreenSharing=REDACTED&publishEndpointLocation%E2%80%8B=REDACTED"},
	{"to", redactPath + "?to=%2B19005551234", redactPath + "?to=REDACTED"},
	{"access_token, however spelled", "/events?ack=1&access_token=eyJ.eyJ.sig&ACCESS%5FTOKEN=cwt%3DAAE&x.access_token=t&access_tokens=1",
		"/events?ack=1&access_token=REDACTED&ACCESS%5FTOKEN=REDACTED&x.access_token=REDACTED&access_tokens=1"},
	{"access_token as PHP registers it", "/events?ack=1&access.token=eyJ.eyJ.sig&access+token=cwt%3DAAE&access%5Btoken=t&ACCESS%2ETOKEN=1&x.access.token=1&access[token]=1",
		"/events?ack=1&access.token=REDACTED&access+token=REDACTED&access%5Btoken=REDACTED&ACCESS%2ETOKEN=REDACTED&x.access.token=1&access[token]=1"},
	{"every occurrence, others kept", redactPath + "?a=1&to=tel:%2B19005551234&b=2&to=4255550100&c",
		redactPath + "?a=1&to=REDACTED&b=2&to=REDACTED&c"},
	{"phoneNumber", "?phoneNumber=4255550100", "?phoneNumber=REDACTED"},
	{"number", "/x/changeNumber?number=4255550100&includeInContactCard=true", "/x/changeNumber?number=REDACTED&includeInContactCard=REDACTED"},
	{"target", "?target=sip:%2B14255550100@gw", "?target=REDACTED"},
	{"delegator", "?delegator=tel:%2B14255550100", "?delegator=REDACTED"},
	{"model-binding spellings", "?to[]=1&to%5B0%5D=2&x.phoneNumber=3&%5B0%5D.target=4&model[number]=5&a.b=6&tos[]=7",
		"?to[]=REDACTED&to%5B0%5D=REDACTED&x.phoneNumber=REDACTED&%5B0%5D.target=REDACTED&model[number]=REDACTED&a.b=6&tos[]=7"},
	{"empty and valueless values stay", "?to=&to&phoneNumber=", "?to=&to&phoneNumber="},
	{"value with =", "?to==4255550100", "?to=REDACTED"},
	{"a raw # is in the query", "/p?x=1#f&to=4255550100", "/p?x=1#f&to=REDACTED"},
	{"absolute URI", "https://edge.contoso.com/p?to=4255550100", "https://edge.contoso.com/p?to=REDACTED"},
	{"a ? in a value is a value", "/p?a=1?to=4255550100", "/p?a=REDACTED"},
	{"a ? in a value is a value, without a number", "/p?a=1?to=x", "/p?a=1?to=x"},

	// Names the edge reads as a number-bearing property.
	{"capitals", "?TO=4255550100&PhoneNUMBER=4255550101", "?TO=REDACTED&PhoneNUMBER=REDACTED"},
	{"escaped letter", "?%74o=4255550100", "?%74o=REDACTED"},
	{"t escaped O", "?t%4F=4255550100", "?t%4F=REDACTED"},
	{"escaped capitals after another pair", "?x=1&%54%4F=+19005551234", "?x=1&%54%4F=REDACTED"},
	{"every letter escaped", "?%70%68%6F%6E%65%4E%75%6D%62%65%72=4255550100", "?%70%68%6F%6E%65%4E%75%6D%62%65%72=REDACTED"},
	{"NUL", "?to%00=4255550100", "?to%00=REDACTED"},
	{"plus as space", "?to+=4255550100&+number=4255550101", "?to+=REDACTED&+number=REDACTED"},
	{"escaped space", "?t%20o=4255550100", "?t%20o=REDACTED"},
	{"tab", "?%09target=4255550100", "?%09target=REDACTED"},
	{"zero-width space", "?t%E2%80%8Bo=4255550100", "?t%E2%80%8Bo=REDACTED"},
	{"soft hyphen", "?phone%C2%ADNumber=4255550100", "?phone%C2%ADNumber=REDACTED"},
	{"bidirectional control", "?delegator%E2%80%AE=4255550100", "?delegator%E2%80%AE=REDACTED"},
	{"byte order mark", "?%EF%BB%BFnumber=4255550100", "?%EF%BB%BFnumber=REDACTED"},
	{"fullwidth", "?%EF%BD%94%EF%BD%8F=4255550100", "?%EF%BD%94%EF%BD%8F=REDACTED"},
	{"no-break space", "?target%C2%A0=4255550100", "?target%C2%A0=REDACTED"},
	{"combining accent", "?to%CC%81=4255550100", "?to%CC%81=REDACTED"},
	{"invalid UTF-8 byte", "?t%FFo=4255550100", "?t%FFo=REDACTED"},
	{"escaped twice", "?%2574o=4255550100", "?%2574o=REDACTED"},
	{"escaped three times", "?%252574o=4255550100", "?%252574o=REDACTED"},
	{"similar names are other names", "?too=4255550100&tos=1&numbers=2&phone=3",
		"?too=REDACTED&tos=1&numbers=2&phone=3"},

	// Queries the edge cannot read: kept up to the first malformed
	// pair.
	{"semicolon after a number", "/p?to=4255550100;x=1", "/p?REDACTED"},
	{"semicolon before a number", "/p?a=1&x=1;to=4255550100&b=2", "/p?a=1&REDACTED"},
	{"semicolon without =", "/p?to;4255550100", "/p?REDACTED"},
	{"bad escape in a value", "/p?a=1&x=%zz&to=4255550100", "/p?a=1&REDACTED"},
	{"bad escape in a number", "/p?to=%2B1900555123%", "/p?REDACTED"},
	{"bad escape in a name", "/p?a=1&%zz=1&to=4255550100", "/p?a=1&REDACTED"},
	{"IIS %u escape", "/p?%u0074o=4255550100", "/p?REDACTED"},
	{"numbers before are hidden too", "/p?to=4255550100&x=%", "/p?to=REDACTED&REDACTED"},
}

func TestRedactQueryProperties(t *testing.T) {
	for _, tt := range redactCases {
		t.Run(tt.name, func(t *testing.T) {
			if got := RedactQueryProperties(tt.in); got != tt.want {
				t.Errorf("RedactQueryProperties(%q)\n = %q\nwant %q", tt.in, got, tt.want)
			}
			if again := RedactQueryProperties(tt.want); again != tt.want {
				t.Errorf("not idempotent: %q gives %q", tt.want, again)
			}
		})
	}
}

// TestRedactQueryPropertiesFollowsTheEdge: every name that ParseQuery reads
// as a property, exactly or folded (and so refused), has its value
// hidden, for every operation of the table.
func TestRedactQueryPropertiesFollowsTheEdge(t *testing.T) {
	spellings := func(name string) []string {
		return []string{name, strings.ToUpper(name), fmt.Sprintf("%%%02X%s", name[0], name[1:]),
			name[:1] + "%E2%80%8B" + name[1:], name + "%00", name + "+", url.QueryEscape(strings.ToUpper(name[:1])) + name[1:]}
	}
	for _, op := range testOps {
		for _, p := range op.Properties {
			for _, spelling := range spellings(p.Name) {
				raw := "a=1&" + spelling + "=%2B19005551234"
				q, err := ParseQuery(&op, raw)
				readAsProperty := false
				if err == nil {
					_, readAsProperty = q.Get(p.Name)
				} else {
					for _, bad := range err.Parameters {
						readAsProperty = readAsProperty || bad.Name == p.Name
					}
				}
				if !readAsProperty {
					t.Fatalf("%s: the edge does not read %q as %s", op.Rel, spelling, p.Name)
				}
				got := RedactQueryProperties("/p?" + raw)
				hidden := !strings.Contains(got, "19005551234")
				if !hidden {
					t.Errorf("%s %s (%s): %q gives %q", op.Rel, p.Name, p.Type, raw, got)
				}
			}
		}
	}
}

func BenchmarkRedactQueryProperties(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"no query", "/ucwa/oauth/v1/applications/103/communication/startPhoneAudio"},
		{"nothing to hide", "/ucwa/oauth/v1/applications/103/events?ack=12&timeout=180"},
		{"a number", "/ucwa/oauth/v1/applications/103/communication/startPhoneAudio?to=tel:%2B14255550100&operationId=abc"},
	} {
		in := bc.in
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				RedactQueryProperties(in)
			}
		})
	}
}

// digitRun matches the digits a value could give away.
var digitRun = regexp.MustCompile(`[0-9]{3,}`)

// FuzzRedactQueryProperties: RedactQueryProperties never panics, is
// idempotent, and its output holds no digit run of a value that the edge
// reads (as ParseQuery does) under a property's name in any spelling,
// nor of an access_token's (read as ParseQuery reads names, or as PHP
// registers them, see FuzzQueryNamesAccessToken), nor of any value in a query
// from its first malformed pair on, unless the same digits are elsewhere
// in the input.
func FuzzRedactQueryProperties(f *testing.F) {
	for _, seed := range []string{
		"/p?to=4255550100",
		"/p?x=1&%54%4F=+19005551234",
		"/p?%74o=%2B19005551234&t%4F=4255550100",
		"/p?phone%E2%80%8BNumber=4255550100&%EF%BD%94%EF%BD%8F=1",
		"/p?a=1;to=4255550100",
		"/p?%u0074o=4255550100",
		"/p?to=%zz4255550100",
		"/p?%2574o=4255550100#x&target=sip:+14255550100@gw",
		"https://e/p?delegator=1&number=42555501009",
		"?&&=&to",
		"/events?access.token=eyJ4255550100&access+token=4255550101",
	} {
		f.Add(seed)
	}
	for _, c := range redactCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := RedactQueryProperties(in)
		if again := RedactQueryProperties(out); again != out {
			t.Fatalf("not idempotent: %q gives %q, then %q", in, out, again)
		}
		q := strings.IndexByte(in, '?')
		if q < 0 {
			if out != in {
				t.Fatalf("%q without a query became %q", in, out)
			}
			return
		}
		if !strings.HasPrefix(out, in[:q+1]) {
			t.Fatalf("the path of %q changed: %q", in, out)
		}
		// hidden checks that the digits of s[start:end] do not show in
		// out, unless the input has them elsewhere.
		hidden := func(start, end int, why string) {
			rest := in[:start] + "&" + in[end:]
			value := in[start:end]
			decoded, _ := url.QueryUnescape(value)
			for _, d := range append(digitRun.FindAllString(value, -1), digitRun.FindAllString(decoded, -1)...) {
				if strings.Contains(out, d) && !strings.Contains(rest, d) {
					t.Fatalf("%s: %q gives %q, which shows %s", why, in, out, d)
				}
			}
		}
		for at := q + 1; at <= len(in); {
			end := strings.IndexByte(in[at:], '&')
			if end < 0 {
				end = len(in)
			} else {
				end += at
			}
			pairStart, pair := at, in[at:end]
			at = end + 1
			name, value, _ := strings.Cut(pair, "=")
			decodedName, nameErr := url.QueryUnescape(name)
			_, valueErr := url.QueryUnescape(value)
			if strings.Contains(pair, ";") || nameErr != nil || valueErr != nil {
				hidden(pairStart, len(in), "a malformed query")
				return
			}
			for i := range testOps {
				op := &testOps[i]
				if p, _, _ := queryProperty(op, name, decodedName); p >= 0 {
					hidden(end-len(value), end, op.Properties[p].Name)
				}
			}
			token := name != "" && strings.EqualFold(referencePHPName(referenceASPNETUnescape(name)), AccessTokenParameter)
			for _, part := range referenceBindingParts(decodedName) {
				token = token || name != "" && strings.EqualFold(part, AccessTokenParameter)
			}
			if token {
				hidden(end-len(value), end, AccessTokenParameter)
			}
		}
	})
}
