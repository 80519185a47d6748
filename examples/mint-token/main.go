// Command mint-token prints a short-lived ES256 bearer token for the
// caddy-ucwa demo (the repository's root Caddyfile):
//
//	TOKEN=$(go run ./examples/mint-token)
//
// DEMO ONLY: it signs with examples/demo/jwt-private.pem, a private key
// that is published in this repository. Never configure an edge to trust
// examples/demo/jwt-public.pem outside the demo.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The issuer and audience the demo Caddyfile accepts.
const (
	DemoIssuer   = "https://issuer.demo.caddy-ucwa.invalid/"
	DemoAudience = "https://edge.demo.caddy-ucwa.invalid/"
)

func main() {
	keyFile := flag.String("key", "examples/demo/jwt-private.pem", "PEM file of the EC P-256 private key to sign with (DEMO ONLY key by default)")
	issuer := flag.String("issuer", DemoIssuer, "the iss claim")
	audience := flag.String("audience", DemoAudience, "the aud claim")
	subject := flag.String("subject", "demo-user", "the sub claim")
	scope := flag.String("scope", "Conversations.Initiate", "the scp claim: space-separated scopes")
	ttl := flag.Duration("ttl", 15*time.Minute, "how long the token is valid")
	flag.Parse()

	token, err := mint(*keyFile, *issuer, *audience, *subject, *scope, *ttl, time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, "mint-token:", err)
		os.Exit(1)
	}
	fmt.Println(token)
}

// mint signs an ES256 token with the key in keyFile.
func mint(keyFile, issuer, audience, subject, scope string, ttl time.Duration, now time.Time) (string, error) {
	if ttl <= 0 {
		return "", errors.New("ttl must be positive")
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
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(ttl).Unix(),
	}).SignedString(key)
}
