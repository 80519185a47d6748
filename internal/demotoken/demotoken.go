// Package demotoken mints the bearer tokens of the caddy-ucwa demo:
// examples/mint-token prints them, and the demo's end-to-end test uses
// them as a reader of the README would.
//
// DEMO ONLY: the demo's key (examples/demo/jwt-private.pem) is published
// with the source, so a token it signs proves nothing.
package demotoken

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The claims the demo Caddyfile accepts, and the key that signs them
// (a path relative to the repository's root).
const (
	Issuer   = "https://issuer.demo.caddy-ucwa.invalid/"
	Audience = "https://edge.demo.caddy-ucwa.invalid/"
	Subject  = "demo-user"
	Scope    = "Conversations.Initiate"
	KeyFile  = "examples/demo/jwt-private.pem"
	TTL      = 15 * time.Minute
)

// Mint signs an ES256 token with the EC P-256 private key in keyFile;
// scope is the scp claim. A positive ttl gives a token issued at now and
// valid for ttl. A negative one gives a token that expired -ttl before
// now, after a lifetime of TTL, so that a reader can see the edge refuse
// an expired token without waiting for one to expire.
func Mint(keyFile, issuer, audience, subject, scope string, ttl time.Duration, now time.Time) (string, error) {
	if ttl == 0 {
		return "", errors.New("ttl must not be 0")
	}
	issued := now
	if ttl < 0 {
		issued = now.Add(ttl - TTL)
		ttl = TTL
	}
	pemBytes, err := os.ReadFile(keyFile)
	if err != nil {
		return "", err
	}
	key, err := jwt.ParseECPrivateKeyFromPEM(pemBytes)
	if err != nil {
		return "", fmt.Errorf("%s: %w", keyFile, err)
	}
	return jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": issuer,
		"aud": audience,
		"sub": subject,
		"scp": scope,
		"iat": issued.Unix(),
		"nbf": issued.Unix(),
		"exp": issued.Add(ttl).Unix(),
	}).SignedString(key)
}
