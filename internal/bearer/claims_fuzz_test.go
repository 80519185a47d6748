package bearer

import (
	"encoding/json"
	"slices"
	"testing"
)

// referenceScopes are the scopes of claims as RFC 6749 3.3 and the
// providers' tokens have them, read apart from Scopes: scp, then scope,
// each a string of scopes separated by U+0020 alone (a tab or another
// space is part of a scope; runs of spaces separate nothing more) or an
// array whose string items are scopes; then roles, an array only.
func referenceScopes(claims map[string]any) []string {
	var scopes []string
	for _, name := range []string{"scp", "scope", "roles"} {
		switch v := claims[name].(type) {
		case string:
			if name == "roles" {
				continue
			}
			start := 0
			for i := 0; i <= len(v); i++ {
				if i == len(v) || v[i] == ' ' {
					if i > start {
						scopes = append(scopes, v[start:i])
					}
					start = i + 1
				}
			}
		case []any:
			for _, item := range v {
				if s, ok := item.(string); ok {
					scopes = append(scopes, s)
				}
			}
		}
	}
	return scopes
}

// FuzzClaimsScopes: of a token's claims of any JSON (as the JWT parser
// decodes them), Scopes gives the scopes referenceScopes reads, in its
// order, and String gives a claim that is a string and "" for any other.
func FuzzClaimsScopes(f *testing.F) {
	for _, seed := range []string{
		`{"scp":"Contacts.ReadWrite  Calls.Initiate","roles":["Admin"]}`,
		`{"scope":"a\tb c\u00a0d","scp":["x",1,null,"",["y"]],"roles":"Admin"}`,
		`{"scp":" ","scope":[],"roles":[{"a":"b"},"r"]}`,
		`{"scp":null,"scope":7,"roles":true}`,
		`{"sub":"a","oid":1.5,"tid":["t"]}`,
		`[]`,
	} {
		f.Add([]byte(seed), "sub")
	}
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		var claims map[string]any
		if json.Unmarshal(data, &claims) != nil {
			return
		}
		got, want := Claims(claims).Scopes(), referenceScopes(claims)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: scopes %q, want %q", data, got, want)
		}
		s, isString := claims[name].(string)
		if got := Claims(claims).String(name); got != s || !isString && got != "" {
			t.Fatalf("%s: String(%q) = %q", data, name, got)
		}
	})
}
