package bearer

import (
	"strings"
	"testing"
)

// TestFirstIssuer: the first issuer listed, its placeholders resolved as
// New resolves the issuers it accepts; "" when none is listed; an unset
// variable is New's error too.
func TestFirstIssuer(t *testing.T) {
	t.Setenv("UCWA_TEST_FIRST_ISSUER", "https://sts.windows.net/tenant/")
	for _, tc := range []struct {
		name    string
		issuers []string
		want    string
		err     string
	}{
		{"none", nil, "", ""},
		{"one", []string{"https://issuer.example/"}, "https://issuer.example/", ""},
		{"the first of two", []string{"https://b.example/", "https://a.example/"}, "https://b.example/", ""},
		{"a placeholder", []string{"{env.UCWA_TEST_FIRST_ISSUER}", "https://a.example/"}, "https://sts.windows.net/tenant/", ""},
		{"an unset variable", []string{"{env.UCWA_TEST_FIRST_ISSUER_UNSET}"}, "", "issuer:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := (&Config{Issuers: tc.issuers}).FirstIssuer()
			if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q, %v; want %q, an error containing %q", got, err, tc.want, tc.err)
			}
		})
	}
}
