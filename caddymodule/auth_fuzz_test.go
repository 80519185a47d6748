package caddymodule

import (
	"strings"
	"testing"
)

// FuzzBearerCredentials: an Authorization value gives a token exactly
// when it is "Bearer" or starts with "Bearer ", in any letter case, and
// the token is the rest with spaces and tabs trimmed (no other white
// space; an empty token is the verifier's to refuse); otherwise a
// refusal, which names no part of the value.
func FuzzBearerCredentials(f *testing.F) {
	for _, seed := range []string{
		"Bearer abc", "bearer  abc \t", "BEARER\tabc", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz",
		"BearerToken abc", "Bearer \u00a0abc\u00a0", "Bearer cwt=AAEA", " Bearer abc", "Bearer\t\tabc def",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		token, refusal := bearerCredentials(value)
		bearer := strings.EqualFold(value, "Bearer") ||
			len(value) >= len("Bearer ") && strings.EqualFold(value[:len("Bearer ")], "Bearer ")
		if bearer != (refusal == "") {
			t.Fatalf("%q: refusal %q, want one: %v", value, refusal, !bearer)
		}
		if !bearer {
			if token != "" {
				t.Fatalf("%q: refused with a token %q", value, token)
			}
			if refusal != noBearerToken && !strings.HasPrefix(strings.ToLower(value), "bearer\t") {
				t.Fatalf("%q: refusal %q", value, refusal)
			}
			return
		}
		if want := strings.Trim(value[len("Bearer"):], " \t"); token != want {
			t.Fatalf("%q: token %q, want %q", value, token, want)
		}
	})
}
