package caddymodule

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestJWKSOneBrokenKey: a JWK Set, fetched from a jwks_url or read from a
// jwks_file, with one key the edge cannot read (a member of another JSON
// type, an unknown kty, a key that is no object, an alg that does not
// fit its key, an RSA key with an even exponent or of 16384 bits) and
// one good key still verifies tokens the good key signs, through a real
// Caddy; the broken
// key is warned of by its index and kid, without its key material, by
// the logger and with the url or path the README's What to watch gives.
func TestJWKSOneBrokenKey(t *testing.T) {
	k := testkit.Keys(t)
	good := testkit.JWK(t, "good", k.RSA)
	// A key of its own, whose material must stay out of the log.
	broken := func(change func(map[string]any)) json.RawMessage {
		m := map[string]any{}
		for name, v := range testkit.JWK(t, "broken", k.RSA2) {
			m[name] = v
		}
		change(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	brokenN := testkit.JWK(t, "broken", k.RSA2)["n"]
	// An odd modulus of 16384 bits, which the edge judges by its size.
	large := new(big.Int).Lsh(big.NewInt(1), 16383)
	largeModulus := base64.RawURLEncoding.EncodeToString(large.SetBit(large, 0, 1).Bytes())
	pinned := func(jwk map[string]string, alg string) json.RawMessage {
		jwk["alg"] = alg
		b, err := json.Marshal(jwk)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		key  json.RawMessage
		kid  string // the kid the warning names; "" when it names none
		why  string
	}{
		{"n a number", broken(func(m map[string]any) { m["n"] = 5 }), "broken", `member \"n\" is not a string`},
		{"kid a number", broken(func(m map[string]any) { m["kid"] = 7 }), "", `member \"kid\" is not a string`},
		{"key_ops a string", broken(func(m map[string]any) { delete(m, "use"); m["key_ops"] = "verify" }), "broken", `member \"key_ops\" is not an array of strings`},
		{"an unknown kty", broken(func(m map[string]any) { m["kty"] = "AKP" }), "broken", `unsupported kty \"AKP\"`},
		{"a key that is no object", json.RawMessage(`"` + brokenN + `"`), "", "not a JSON object"},
		// A key pinned to an algorithm it cannot verify, and RSA key
		// material that is no RSA key's.
		{"an EC alg on an RSA key", broken(func(m map[string]any) { m["alg"] = "ES256" }), "broken", `alg \"ES256\" does not fit its RSA key`},
		{"an EC alg of another curve", pinned(testkit.JWK(t, "broken", k.EC384), "ES256"), "broken", `alg \"ES256\" does not fit its P-384 key`},
		{"an even RSA exponent", broken(func(m map[string]any) { m["e"] = "AQAA" }), "broken", "RSA key with an even modulus or exponent"},
		// A modulus past 8192 bits, which would make each token's check
		// dearer by the square of its size.
		{"an RSA key of 16384 bits", broken(func(m map[string]any) { m["n"] = largeModulus }), "broken", "RSA key of 16384 bits is longer than 8192"},
	} {
		set, err := json.Marshal(map[string]any{"keys": []any{tc.key, good}})
		if err != nil {
			t.Fatal(err)
		}
		for _, source := range []string{"jwks_url", "jwks_file"} {
			t.Run(tc.name+", "+source, func(t *testing.T) {
				where := testkit.WriteFile(t, t.TempDir(), "keys.json", set)
				if source == "jwks_url" {
					where = testkit.NewJWKSServer(t, set).URL + "/keys"
				}
				up := testkit.NewUpstream(t)
				e := startEdge(t, "caddyfile", authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			%s %s
			issuer https://issuer.example/
		}`, source, where), up.Addr()))
				claims := testkit.Claims(time.Now(), nil)
				e.expect(testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "good", claims), http.StatusCreated, "")
				e.expect(testkit.Mint(t, jwt.SigningMethodRS256, k.RSA2, "broken", claims), http.StatusUnauthorized, "")
				if got := len(up.Received()); got != 1 {
					t.Errorf("the pool got %d requests, want the good key's token's only", got)
				}
				line := e.Logs().Wait(t, "JWK Set key skipped", `"index":0`)
				if !strings.Contains(line, tc.why) || strings.Contains(line, `"kid"`) != (tc.kid != "") || !strings.Contains(line, `"kid":"`+tc.kid+`"`) && tc.kid != "" {
					t.Errorf("the warning does not name the key (kid %q) and why (%s): %s", tc.kid, tc.why, line)
				}
				// The README's What to watch row: at warn level, by
				// http.handlers.ucwa.jwks with its url for a jwks_url,
				// by http.handlers.ucwa with its path for a jwks_file.
				parts := []string{`"level":"warn"`, `"logger":"http.handlers.ucwa"`, `"path":"` + where + `"`}
				if source == "jwks_url" {
					parts = []string{`"level":"warn"`, `"logger":"http.handlers.ucwa.jwks"`, `"url":"` + where + `"`}
				}
				for _, part := range parts {
					if !strings.Contains(line, part) {
						t.Errorf("the warning holds no %s: %s", part, line)
					}
				}
				logs := e.Logs().String()
				if n := strings.Count(logs, "JWK Set key skipped"); n != 1 {
					t.Errorf("%d warnings of the broken key, want one", n)
				}
				if strings.Contains(logs, brokenN[:32]) || strings.Contains(logs, good["n"][:32]) {
					t.Errorf("the log holds key material:\n%s", logs)
				}
			})
		}
	}
}
