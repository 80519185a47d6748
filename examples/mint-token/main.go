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
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/demotoken"
)

func main() {
	keyFile := flag.String("key", demotoken.KeyFile, "PEM file of the EC P-256 private key to sign with (DEMO ONLY key by default, a path from the repository's root, where the demo runs)")
	issuer := flag.String("issuer", demotoken.Issuer, "the iss claim")
	audience := flag.String("audience", demotoken.Audience, "the aud claim")
	subject := flag.String("subject", demotoken.Subject, "the sub claim")
	scope := flag.String("scope", demotoken.Scope, "the scp claim: space-separated scopes")
	ttl := flag.Duration("ttl", demotoken.TTL, "how long the token is valid; a negative value mints a token that expired that long ago (-ttl -2m: the edge allows clocks a minute of leeway)")
	flag.Parse()

	token, err := demotoken.Mint(*keyFile, *issuer, *audience, *subject, *scope, *ttl, time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, "mint-token:", err)
		os.Exit(1)
	}
	fmt.Println(token)
}
