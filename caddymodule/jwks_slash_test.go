package caddymodule

import (
	"net"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestJWKSURLPasswordWithSlashNotLogged: a jwks_url whose password
// (from {env.*}) holds a '/', which ends the URL's host early when what
// is before it reads as a port (https://localhost:42/s3cret@idp/keys is
// the host localhost:42 and the path /s3cret@idp/keys), is shown without
// its password, through a real Caddy: in the startup error, and in the
// line of a fetch that failed, at debug level.
func TestJWKSURLPasswordWithSlashNotLogged(t *testing.T) {
	const secret = "jwks-slash-secret-7c1e"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closedPort, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	for _, tc := range []struct {
		name, user, password, scheme string
		fetched                      bool // a Caddy runs and fetches; else its startup fails
	}{
		{name: "digits before the slash, startup error", user: "edge", password: "42/" + secret, scheme: "http"},
		{name: "a slash first, startup error", user: "edge", password: "/" + secret, scheme: "http"},
		{name: "two slashes, startup error", user: "edge", password: "42/" + secret + "/x", scheme: "http"},
		{name: "fetch failed", user: "localhost", password: closedPort + "/" + secret, scheme: "https", fetched: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("UCWA_TEST_JWKS_URL_PASSWORD", tc.password)
			jwksURL := tc.scheme + "://" + tc.user + ":{env.UCWA_TEST_JWKS_URL_PASSWORD}@idp.contoso.test/keys"
			if !tc.fetched {
				err := testkit.Validate(t, "json", handlerJSON(`"jwt":{"algorithms":["RS256"],"jwks_url":"`+jwksURL+`"}`))
				if err == nil || !strings.Contains(err.Error(), "must use https") || strings.Contains(err.Error(), secret) {
					t.Fatalf("error %v, want one that refuses plain http without the password", err)
				}
				return
			}
			e := startEdge(t, "caddyfile", authSite(`jwt {
			algorithms RS256
			jwks_url "`+jwksURL+`"
			issuer https://issuer.test/
		}`, testkit.NewUpstream(t).Addr()))
			line := e.Logs().Wait(t, `"logger":"http.handlers.ucwa.jwks"`, "jwks_url fetch failed")
			if !strings.Contains(line, `xxxxx@`) {
				t.Errorf("the line does not show the URL redacted: %s", line)
			}
			if logs := e.Logs().String(); strings.Contains(logs, secret) {
				t.Errorf("the log shows the jwks_url's password:\n%s", logs)
			}
		})
	}
}
