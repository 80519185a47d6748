package caddymodule

import (
	"crypto/rsa"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestTokenWithoutKidAgainstKeySet: through a real Caddy, a token without
// kid is verified by a jwks_file's or jwks_url's set only when the set
// has one key of its algorithm. One signed by the fifth of eight RSA keys
// (Entra ID publishes about as many) is refused 401 invalid_token saying
// that a kid is required, and reaches no pool; the same token with its
// kid passes, and so do a token without kid against a set of one key and
// one a public_key_file's key signed, beside the eight.
func TestTokenWithoutKidAgainstKeySet(t *testing.T) {
	k := testkit.Keys(t)
	eight := testkit.JWKS(t, testkit.RSAJWKs(t, 8, 5, k.RSA, k.RSA2)...) // k5 is k.RSA's
	one := testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA))
	pem := testkit.WriteFile(t, t.TempDir(), "internal.pem", testkit.PublicPEM(t, k.RSA2))
	type token struct {
		name   string
		kid    string
		signer *rsa.PrivateKey
		status int
		want   string // part of the refusal's message
	}
	for _, source := range []string{"jwks_file", "jwks_url"} {
		for _, set := range []struct {
			name   string
			keys   []byte
			pem    bool // a public_key_file of k.RSA2 too
			tokens []token
		}{
			{"eight keys and a PEM key", eight, true, []token{
				{"no kid, signed by the set's fifth key", "", k.RSA, http.StatusUnauthorized, "no key id (kid), which is required"},
				{"its kid, signed by the set's fifth key", "k5", k.RSA, http.StatusCreated, ""},
				{"no kid, signed by the PEM key", "", k.RSA2, http.StatusCreated, ""},
			}},
			{"one key", one, false, []token{
				{"no kid, signed by the set's key", "", k.RSA, http.StatusCreated, ""},
			}},
		} {
			t.Run(source+", "+set.name, func(t *testing.T) {
				where := testkit.WriteFile(t, t.TempDir(), "keys.json", set.keys)
				if source == "jwks_url" {
					where = testkit.NewJWKSServer(t, set.keys).URL + "/keys"
				}
				keys := source + " " + where
				if set.pem {
					keys += "\n\t\t\tpublic_key_file " + pem
				}
				up := testkit.NewUpstream(t)
				e := startEdge(t, "caddyfile", authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			%s
			issuer https://issuer.example/
		}`, keys), up.Addr()))
				for _, tc := range set.tokens {
					t.Run(tc.name, func(t *testing.T) {
						before := len(up.Received())
						resp := e.sendWithAuth("", "Bearer "+testkit.Mint(t, jwt.SigningMethodRS256, tc.signer, tc.kid, testkit.Claims(time.Now(), nil)))
						if resp.Status != tc.status {
							t.Fatalf("status %d, want %d: %s", resp.Status, tc.status, resp.Body)
						}
						delivered := len(up.Received()) - before
						if tc.status == http.StatusCreated {
							if delivered != 1 {
								t.Fatalf("the pool got %d requests, want 1", delivered)
							}
							return
						}
						if delivered != 0 {
							t.Error("a refused request reached the pool")
						}
						if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
							t.Errorf("WWW-Authenticate %q, want an invalid_token challenge", got)
						}
						if got := ucwaError(t, resp.Body); got.Code != "Unauthorized" || !strings.Contains(got.Message, tc.want) {
							t.Errorf("body %s, want Unauthorized saying %q", resp.Body, tc.want)
						}
					})
				}
			})
		}
	}
}
