package demotoken

import (
	"os"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestMint: a demo token verifies with the demo's public key and carries
// the claims the demo Caddyfile checks.
func TestMint(t *testing.T) {
	now := time.Now()
	raw, err := Mint("../../"+KeyFile, Issuer, Audience, Subject, Scope, TTL, now)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile("../../examples/demo/jwt-public.pem")
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwt.ParseECPublicKeyFromPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(Issuer), jwt.WithAudience(Audience),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return now })).
		ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return key, nil }); err != nil {
		t.Fatal(err)
	}
	if claims["sub"] != Subject || claims["scp"] != Scope {
		t.Errorf("claims %v", claims)
	}
	if _, err := Mint("../../"+KeyFile, Issuer, Audience, Subject, Scope, 0, now); err == nil {
		t.Error("a token with no lifetime was minted")
	}
}
