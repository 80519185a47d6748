package demotoken

import (
	"errors"
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

	// A negative ttl: a token that expired that long ago, after a
	// lifetime of TTL.
	expired, err := Mint("../../"+KeyFile, Issuer, Audience, Subject, Scope, -2*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	parseAt := func(at time.Time) error {
		_, err := jwt.NewParser(jwt.WithValidMethods([]string{"ES256"}), jwt.WithExpirationRequired(),
			jwt.WithTimeFunc(func() time.Time { return at })).
			Parse(expired, func(*jwt.Token) (any, error) { return key, nil })
		return err
	}
	if err := parseAt(now); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Errorf("a token minted with ttl -2m, read now: %v, want it expired", err)
	}
	if err := parseAt(now.Add(-2*time.Minute - time.Second)); err != nil {
		t.Errorf("a token minted with ttl -2m, read 2m1s ago: %v, want it valid", err)
	}
	if err := parseAt(now.Add(-2*time.Minute - TTL - time.Second)); !errors.Is(err, jwt.ErrTokenNotValidYet) {
		t.Errorf("a token minted with ttl -2m, read before its lifetime: %v, want it not valid yet", err)
	}
}
