package ucwa

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// plainNumber is a value every reader takes for a telephone number.
var plainNumber = regexp.MustCompile(`^\+?[0-9]{4,}$`)

// FuzzCookieDestination: CookieDestination reads two Cookie lines as it
// reads them joined by ';', refuses only with a 400 naming a destination
// of the table or operationId, and refuses every cookie named exactly so
// (any letter case, trimmed) whose value is a plain number (operationId:
// any value that is not blank).
func FuzzCookieDestination(f *testing.F) {
	for _, s := range []string{"phoneNumber=tel:+19005551234", "a=1; To=+19005551234", "a=1,NUMBER=+19005551234",
		" delegator = sip:+19005551234@gw", "target=+19005551234; target=Contact", "phone\u200bNumber=+19005551234",
		"ｔｏ=+19005551234", "to=\"+19005551234\"", "cwt=abc; ASP.NET_SessionId=x", "to=; phoneNumber= ; target=Contact",
		"operationId=1", "contact=/ucwa/v1/applications/1/people/2", "contact=+19005551234", "to", ";;,,", ""} {
		f.Add(s, "x=1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		two := CookieDestination(http.Header{"Cookie": {a, b}})
		joined := CookieDestination(http.Header{"Cookie": {a + ";" + b}})
		names := func(e *Error) []string {
			if e == nil {
				return nil
			}
			var out []string
			for _, p := range e.Parameters {
				out = append(out, p.Name)
			}
			return out
		}
		if !slices.Equal(names(two), names(joined)) {
			t.Fatalf("two lines refuse %v, joined %v", names(two), names(joined))
		}
		if two != nil {
			if two.Status != 400 || two.Subcode != SubcodeParameterValidationFailure || two.Message == "" || len(two.Parameters) == 0 {
				t.Fatalf("bad refusal %#v", two)
			}
			for _, p := range two.Parameters {
				if p.Name != propOperationID.Name && !slices.ContainsFunc(namedDestinations, func(d namedDestination) bool { return d.name == p.Name }) {
					t.Fatalf("a refusal names %q", p.Name)
				}
			}
		}
		for _, line := range []string{a, b} {
			for pair := range strings.FieldsFuncSeq(line, func(r rune) bool { return r == ';' || r == ',' }) {
				name, value, _ := strings.Cut(pair, "=")
				name, value = strings.TrimSpace(name), strings.TrimSpace(value)
				want := ""
				switch {
				case strings.EqualFold(name, propOperationID.Name) && value != "":
					want = propOperationID.Name
				case plainNumber.MatchString(value):
					for _, d := range namedDestinations {
						if strings.EqualFold(name, d.name) {
							want = d.name
						}
					}
				}
				if want != "" && !slices.Contains(names(two), want) {
					t.Fatalf("the cookie %q passes (refused: %v)", pair, names(two))
				}
			}
		}
	})
}
