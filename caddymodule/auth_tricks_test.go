package caddymodule

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/bearer"
	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestAuthTokenTricks: tokens shaped to slip past a JWT check are
// refused (a genuine token's signature spelled otherwise among them),
// and headers that name keys of the token's own choosing (jwk, jku, x5u,
// x5c) are never used to verify it.
func TestAuthTokenTricks(t *testing.T) {
	k := testkit.Keys(t)
	now := time.Now()
	up := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			public_key_file %s
			issuer https://issuer.example/
			audience api://ucwa
			leeway 10m
		}
		challenge realm edge
		challenge authorization_uri https://login.windows.net/common/oauth2/authorize
		challenge client_id 00000004-0000-0ff1-ce00-000000000000`,
		testkit.WriteFile(t, t.TempDir(), "rsa.pem", testkit.PublicPEM(t, k.RSA))), up.Addr()))

	bearer := func(s string) []string { return []string{"Bearer " + s} }
	b64 := base64.RawURLEncoding.EncodeToString
	validJSON := testkit.ClaimsJSON(t, testkit.Claims(now, nil))
	claims := func(extra jwt.MapClaims) string { return testkit.ClaimsJSON(t, testkit.Claims(now, extra)) }
	attackerJWK := fmt.Sprintf(`{"kty":"RSA","n":%q,"e":"AQAB"}`, b64(k.RSA2.N.Bytes()))
	// A header of 28 bytes: its base64 has padding in the standard form.
	genuineHeader := `{"alg":"RS256","typ":"JWTx"}`
	genuine := testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, genuineHeader, validJSON)
	header, rest, _ := strings.Cut(genuine, ".")
	payload, sig, _ := strings.Cut(rest, ".")
	rawSig, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	cases := []authCase{
		{"jwk header with the attacker's key", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA2, `{"alg":"RS256","jwk":`+attackerJWK+`}`, validJSON)), 401, invalidToken, "signature is invalid"},
		{"jku header to the attacker's set", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA2, `{"alg":"RS256","jku":"https://evil.example/keys","kid":"evil"}`, validJSON)), 401, invalidToken, "signature is invalid"},
		{"x5u header to the attacker's certificate", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA2, `{"alg":"RS256","x5u":"https://evil.example/cert.pem"}`, validJSON)), 401, invalidToken, "signature is invalid"},
		{"x5c header", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA2, `{"alg":"RS256","x5c":["MIIB"]}`, validJSON)), 401, invalidToken, "signature is invalid"},
		{"kid a path", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA2, `{"alg":"RS256","kid":"../../../../dev/null"}`, validJSON)), 401, invalidToken, "signature is invalid"},
		{"kid SQL", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA2, `{"alg":"RS256","kid":"x' UNION SELECT 'secret"}`, validJSON)), 401, invalidToken, "signature is invalid"},
		{"alg in lower case", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"rs256"}`, validJSON)), 401, invalidToken, "algorithm"},
		{"alg None", bearer(b64([]byte(`{"alg":"None"}`)) + "." + b64([]byte(validJSON)) + "."), 401, invalidToken, "algorithm"},
		{"alg HS256 with the key's modulus as secret", bearer(testkit.MintRaw(t, jwt.SigningMethodHS256, k.RSA.N.Bytes(), `{"alg":"HS256"}`, validJSON)), 401, invalidToken, "algorithm"},
		{"header padded", bearer(base64.URLEncoding.EncodeToString([]byte(genuineHeader)) + "." + payload + "." + sig), 401, invalidToken, "malformed"},
		{"signature in the standard alphabet, padded", bearer(header + "." + payload + "." + base64.StdEncoding.EncodeToString(rawSig)), 401, invalidToken, "malformed"},
		// The same signature bytes in another string (RFC 7515 2: unused
		// bits zero), after the genuine token is verified and cached.
		{"the genuine token", bearer(genuine), 201, "", ""},
		{"its signature with an unused bit set", bearer(testkit.PadBitSet(t, genuine)), 401, invalidToken, "malformed"},
		{"space inside", bearer(header + ". " + payload + "." + sig), 401, invalidToken, "malformed"},
		{"a fourth segment", bearer(genuine + "." + sig), 401, invalidToken, "malformed"},
		{"JWE-shaped", bearer(header + "..." + payload + "." + sig), 401, invalidToken, "malformed"},
		{"nested token as the payload", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256","cty":"JWT"}`, `"`+genuine+`"`)), 401, invalidToken, "malformed"},
		{"exp a numeric string", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256"}`, claims(jwt.MapClaims{"exp": fmt.Sprint(now.Add(time.Hour).Unix())}))), 401, invalidToken, "malformed"},
		{"nbf a string in the future", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256"}`, claims(jwt.MapClaims{"nbf": fmt.Sprint(now.Add(time.Hour).Unix())}))), 401, invalidToken, "malformed"},
		{"iat a string in the future", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256"}`, claims(jwt.MapClaims{"iat": fmt.Sprint(now.Add(time.Hour).Unix())}))), 401, invalidToken, "malformed"},
		{"exp a negative number", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256"}`, claims(jwt.MapClaims{"exp": -1}))), 401, invalidToken, "expired"},
		{"exp a fraction past the leeway", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256"}`, claims(jwt.MapClaims{"exp": float64(now.Add(-11*time.Minute).Unix()) + 0.5}))), 401, invalidToken, "expired"},
		{"iss with a trailing space", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256"}`, claims(jwt.MapClaims{"iss": "https://issuer.example/ "}))), 401, invalidToken, "issuer"},
		{"aud an array with one accepted", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256"}`, claims(jwt.MapClaims{"aud": []string{"api://other", "api://ucwa"}}))), 201, "", ""},
		{"scp separated by commas", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256"}`, claims(jwt.MapClaims{"scp": "User.Read,Conversations.Initiate"}))), 403, scopeDenied, "none of the scopes"},
		{"scp with an ideographic space", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256"}`, claims(jwt.MapClaims{"scp": "User.Read\u3000Conversations.Initiate"}))), 403, scopeDenied, "none of the scopes"},
		{"scp in another letter case", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256"}`, claims(jwt.MapClaims{"scp": "CONVERSATIONS.INITIATE"}))), 403, scopeDenied, "none of the scopes"},
		{"scope claim named in another case", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256"}`, claims(jwt.MapClaims{"scp": nil, "SCP": "Conversations.Initiate"}))), 403, scopeDenied, "none of the scopes"},
		{"exp given twice by case", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256"}`, claims(jwt.MapClaims{"exp": now.Add(-time.Hour).Unix(), "EXP": now.Add(time.Hour).Unix()}))), 401, invalidToken, "expired"},
		{"jwk header, signed by the configured key", bearer(testkit.MintRaw(t, jwt.SigningMethodRS256, k.RSA, `{"alg":"RS256","jwk":`+attackerJWK+`,"jku":"https://evil.example/keys","typ":"JWE"}`, validJSON)), 201, "", ""},
	}
	runAuthCases(t, e, up, cases)
}

// TestTokenCacheHoldsNoLonger: a token the edge verified and cached is
// refused once its exp and the leeway (the default, a minute) have
// passed, and once the jwks_file that held its key holds another
// instead, though the edge verified it before: the cache never answers
// for a token past its exp and leeway or for keys gone. The edge's
// token clock is the test's.
func TestTokenCacheHoldsNoLonger(t *testing.T) {
	k := testkit.Keys(t)
	clk := testkit.NewClock(time.Now().Truncate(time.Second))
	bearerNow = clk.Now
	t.Cleanup(func() { bearerNow = time.Now })
	jwks := testkit.WriteFile(t, t.TempDir(), "keys.json", testkit.JWKS(t, testkit.JWK(t, "first", k.RSA)))
	up := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			jwks_file %s
		}
		challenge realm edge
		challenge authorization_uri https://login.windows.net/common/oauth2/authorize
		challenge client_id 00000004-0000-0ff1-ce00-000000000000`, jwks), up.Addr()))
	mint := func(life time.Duration) string {
		return "Bearer " + testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "first", testkit.Claims(clk.Now(), jwt.MapClaims{"exp": clk.Now().Add(life).Unix()}))
	}
	short, long := mint(time.Minute), mint(time.Hour)
	for _, token := range []string{short, long} {
		for range 2 { // verified, then from the cache
			if resp := e.sendWithAuth("", token); resp.Status != http.StatusCreated {
				t.Fatalf("%d %s, want 201", resp.Status, resp.Body)
			}
		}
	}
	clk.Advance(time.Minute + bearer.DefaultLeeway - time.Second)
	if resp := e.sendWithAuth("", short); resp.Status != http.StatusCreated {
		t.Errorf("a cached token a second before its exp and the leeway: %d %s, want 201", resp.Status, resp.Body)
	}
	clk.Advance(time.Second)
	if resp := e.sendWithAuth("", short); resp.Status != http.StatusUnauthorized || !strings.Contains(resp.Body, "expired") {
		t.Errorf("a cached token at its exp and the leeway: %d %s, want 401 expired", resp.Status, resp.Body)
	}
	if resp := e.sendWithAuth("", long); resp.Status != http.StatusCreated {
		t.Fatalf("a cached token within its exp: %d %s, want 201", resp.Status, resp.Body)
	}
	testkit.WriteFile(t, filepath.Dir(jwks), "keys.json", testkit.JWKS(t, testkit.JWK(t, "second-key", k.RSA2)))
	clk.Advance(2 * time.Second) // past the file's check interval
	if resp := e.sendWithAuth("", long); resp.Status != http.StatusUnauthorized {
		t.Errorf("a cached token whose key the jwks_file no longer holds: %d %s, want 401", resp.Status, resp.Body)
	}
}
