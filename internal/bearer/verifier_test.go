package bearer

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestVerifyErrors: a refused token's Error says what was wrong for the
// client and keeps the cause for the operator, and neither repeats the
// token.
func TestVerifyErrors(t *testing.T) {
	k := testkit.Keys(t)
	v := newTester(t, &Config{Algorithms: []string{"RS256"}, Issuers: []string{"https://issuer.example/"},
		PublicKeyFiles: []string{testkit.WriteFile(t, t.TempDir(), "rsa.pem", testkit.PublicPEM(t, k.RSA))}})
	now := v.clock.Now()
	for _, tc := range []struct {
		name, token, message string
		cause                error
	}{
		{"expired", testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, jwt.MapClaims{"exp": now.Add(-time.Second).Unix()})),
			"The token has expired.", jwt.ErrTokenExpired},
		{"other key", testkit.Mint(t, jwt.SigningMethodRS256, k.RSA2, "", testkit.Claims(now, nil)),
			"The token's signature is invalid.", jwt.ErrTokenSignatureInvalid},
		{"malformed", "not.a.jwt", "The bearer token is malformed.", jwt.ErrTokenMalformed},
		{"issuer", testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "", testkit.Claims(now, jwt.MapClaims{"iss": "https://evil.example/"})),
			"The token's issuer (iss) is not accepted here.", errIssuer},
		{"algorithm", testkit.Mint(t, jwt.SigningMethodHS256, k.HMAC, "", testkit.Claims(now, nil)),
			"The token's signing algorithm (alg) is not accepted here.", jwt.ErrTokenSignatureInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := v.refuse(t, tc.token, tc.message)
			if e.Message != tc.message {
				t.Errorf("message %q, want %q", e.Message, tc.message)
			}
			if !errors.Is(e, tc.cause) {
				t.Errorf("cause %v, want %v", e.Cause, tc.cause)
			}
			sig := tc.token[strings.LastIndex(tc.token, ".")+1:]
			if len(sig) > 8 && strings.Contains(e.Error(), sig) {
				t.Error("the error repeats the token")
			}
		})
	}
}

// TestClaims: the claims a grant is made from, and the scopes from scp,
// scope (strings or arrays) and roles.
func TestClaims(t *testing.T) {
	k := testkit.Keys(t)
	v := newTester(t, &Config{Algorithms: []string{"ES256"},
		PublicKeyFiles: []string{testkit.WriteFile(t, t.TempDir(), "ec.pem", testkit.PublicPEM(t, k.EC))}})
	claims := v.accept(t, testkit.Mint(t, jwt.SigningMethodES256, k.EC, "", testkit.Claims(v.clock.Now(), jwt.MapClaims{
		"oid": "oid-1", "scp": "a b", "scope": []string{"c"}, "roles": []any{"d", 7},
	})))
	if claims.String("sub") != "user-sub" || claims.String("oid") != "oid-1" || claims.String("exp") != "" {
		t.Errorf("claims %v", claims)
	}
	if got := strings.Join(claims.Scopes(), " "); got != "a b c d" {
		t.Errorf("scopes %q, want a b c d", got)
	}
}

// TestNewErrors: settings that cannot work are refused with a message
// naming the problem; an unset environment variable is named too.
func TestNewErrors(t *testing.T) {
	k := testkit.Keys(t)
	rsaFile := testkit.WriteFile(t, t.TempDir(), "rsa.pem", testkit.PublicPEM(t, k.RSA))
	t.Setenv("UCWA_TEST_EMPTY", "")
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"off", Config{Off: true}, "off"},
		{"unset audience", Config{Algorithms: []string{"RS256"}, PublicKeyFiles: []string{rsaFile}, Audiences: []string{"{env.UCWA_TEST_EMPTY}"}},
			"audience: evaluated placeholder {env.UCWA_TEST_EMPTY} is empty"},
		{"unset jwks_url part", Config{Algorithms: []string{"RS256"}, JWKSURL: "https://login.example/{env.UCWA_TEST_EMPTY}/keys"},
			"jwks_url: evaluated placeholder {env.UCWA_TEST_EMPTY} is empty"},
		{"negative leeway", Config{Algorithms: []string{"RS256"}, PublicKeyFiles: []string{rsaFile}, Leeway: -1}, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(&tc.c, func(c Claims) Claims { return c }, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}
