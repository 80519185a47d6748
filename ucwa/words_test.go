package ucwa

import "testing"

// TestWord: an option word in any letter case, as strings.EqualFold
// compares them (the Kelvin sign is a K), is the word; anything else is
// itself.
func TestWord(t *testing.T) {
	for _, c := range []struct {
		value string
		words []string
		want  string
	}{
		{"report", []string{"enforce", "report"}, "report"},
		{"Report", []string{"enforce", "report"}, "report"},
		{"ENFORCE", []string{"enforce", "report"}, "enforce"},
		{"\u212Aey", []string{"key"}, "key"},
		{"Audit", []string{"enforce", "report"}, "Audit"},
		{"", []string{"enforce", "report"}, ""},
	} {
		if got := Word(c.value, c.words...); got != c.want {
			t.Errorf("Word(%q, %q) = %q, want %q", c.value, c.words, got, c.want)
		}
	}
}

// TestEither: an option of two words reads "" and the first, in any
// letter case, as the first, the second as the second, and anything else
// as an error that names both.
func TestEither(t *testing.T) {
	for _, c := range []struct {
		value    string
		isSecond bool
		err      string
	}{
		{"", false, ""},
		{"open", false, ""},
		{"OPEN", false, ""},
		{"closed", true, ""},
		{"Closed", true, ""},
		{"refuse", false, `audit_on_error: "refuse" is neither open nor closed`},
	} {
		isSecond, err := Either("audit_on_error", c.value, "open", "closed")
		if isSecond != c.isSecond || (err == nil) != (c.err == "") || err != nil && err.Error() != c.err {
			t.Errorf("Either(%q) = %t, %v; want %t, %q", c.value, isSecond, err, c.isSecond, c.err)
		}
	}
}

// TestWordError: the message names the accepted words and shows no value
// that holds a digit (a mistyped value may be a phone number).
func TestWordError(t *testing.T) {
	for _, c := range []struct {
		value string
		words []string
		want  string
	}{
		{"audit", []string{"enforce", "report"}, `mode: "audit" is neither enforce nor report`},
		{"audit", []string{"report"}, `mode: "audit" is not report`},
		{"Domestic", []string{"key", "international", "forwarding"}, `mode: "Domestic" is none of key, international, forwarding`},
		{"+19005551234", []string{"enforce", "report"}, `mode: the value is neither enforce nor report`},
		{"E165", []string{"tel", "e164"}, `mode: the value is neither tel nor e164`},
	} {
		if got := WordError("mode", c.value, c.words...).Error(); got != c.want {
			t.Errorf("WordError(%q, %q) = %q, want %q", c.value, c.words, got, c.want)
		}
	}
}
