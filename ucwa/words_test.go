package ucwa

import "testing"

// TestWordError: the message names the accepted words, says so when the
// value is one of them in another letter case, and shows no value that
// holds a digit (a mistyped value may be a phone number).
func TestWordError(t *testing.T) {
	for _, c := range []struct {
		value string
		words []string
		want  string
	}{
		{"audit", []string{"enforce", "report"}, `mode: "audit" is neither enforce nor report`},
		{"Report", []string{"enforce", "report"}, `mode: "Report" is neither enforce nor report (the words are lower-case)`},
		{"REPORT", []string{"report"}, `mode: "REPORT" is not report (the words are lower-case)`},
		{"Key", []string{"key", "international", "forwarding"}, `mode: "Key" is none of key, international, forwarding (the words are lower-case)`},
		{"+19005551234", []string{"enforce", "report"}, `mode: the value is neither enforce nor report`},
		{"E164", []string{"tel", "e164"}, `mode: the value is neither tel nor e164 (the words are lower-case)`},
	} {
		if got := WordError("mode", c.value, c.words...).Error(); got != c.want {
			t.Errorf("WordError(%q, %q) = %q, want %q", c.value, c.words, got, c.want)
		}
	}
}
