package caddymodule

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// secretConfig is an edge with debug logging whose HS256 secret is given
// as secret (a placeholder, or the value itself).
func secretConfig(secret, pool string) string {
	return fmt.Sprintf(`{
	log {
		level DEBUG
	}
}
:EDGE_PORT {
	log
	ucwa {
		jwt {
			algorithms HS256
			hmac_secret %s
		}
	}
	reverse_proxy %s
}`, secret, pool)
}

// TestSecretFromEnvironment: an hmac_secret given as {env.UCWA_JWT_SECRET}
// verifies tokens, yet its value shows neither in the adapted JSON, nor
// in the admin API's GET /config/, nor in any line Caddy logs at debug
// level (which prints the whole config as "adjusted config"). The same
// checks find the value when the config holds it: given literally, or as
// {$UCWA_JWT_SECRET}, which the Caddyfile adapter replaces when it adapts.
func TestSecretFromEnvironment(t *testing.T) {
	random := make([]byte, 32)
	_, _ = rand.Read(random)
	secret := "edge-secret-" + hex.EncodeToString(random)
	t.Setenv("UCWA_JWT_SECRET", secret)
	pool := testkit.NewUpstream(t)

	adapted := func(t *testing.T, config string) string {
		t.Helper()
		config = strings.ReplaceAll(config, "EDGE_PORT", "8080") // adapted, not run
		cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(config), nil)
		if err != nil {
			t.Fatal(err)
		}
		return string(cfg)
	}
	configJSON := func(t *testing.T, e edge) string {
		t.Helper()
		resp := testkit.Send(t, e.Client(), testkit.Request{URL: e.AdminURL("/config/")})
		if resp.Status != http.StatusOK {
			t.Fatalf("GET /config/: %d %s", resp.Status, resp.Body)
		}
		return resp.Body
	}
	send := func(e edge, key []byte) int {
		token := testkit.Mint(t, jwt.SigningMethodHS256, key, "", testkit.Claims(time.Now(), nil))
		return e.postJSON(startPath, `{"to":"sip:john@contoso.com"}`, http.Header{"Authorization": {"Bearer " + token}}).Status
	}

	config := secretConfig("{env.UCWA_JWT_SECRET}", pool.Addr())
	if got := adapted(t, config); strings.Contains(got, secret) || !strings.Contains(got, "{env.UCWA_JWT_SECRET}") {
		t.Fatalf("the adapted JSON holds the secret, or not the placeholder: %s", got)
	}
	e := startEdge(t, "caddyfile", config, testkit.WithAdmin(), testkit.WithAutomaticHTTPS())
	if status := send(e, []byte(secret)); status != http.StatusCreated {
		t.Fatalf("a token signed with the secret: status %d", status)
	}
	if status := send(e, []byte(strings.ToUpper(secret))); status != http.StatusUnauthorized {
		t.Fatalf("a token signed with another secret: status %d", status)
	}
	if got := configJSON(t, e); strings.Contains(got, secret) || !strings.Contains(got, "{env.UCWA_JWT_SECRET}") {
		t.Fatalf("GET /config/ shows the secret, or not the placeholder: %s", got)
	}
	e.Logs().Wait(t, `"msg":"adjusted config"`, "{env.UCWA_JWT_SECRET}")
	e.Logs().Wait(t, `"msg":"bearer token rejected"`)
	e.Logs().Wait(t, `"msg":"handled request"`, `"status":401`)
	if strings.Contains(e.Logs().String(), secret) {
		t.Fatal("a log line holds the secret")
	}

	// The checks see a secret that is in the config.
	if got := adapted(t, secretConfig("{$UCWA_JWT_SECRET}", pool.Addr())); !strings.Contains(got, secret) {
		t.Errorf("{$UCWA_JWT_SECRET} is not replaced when the Caddyfile is adapted: %s", got)
	}
	e.Load("caddyfile", secretConfig(secret, pool.Addr()))
	if status := send(e, []byte(secret)); status != http.StatusCreated {
		t.Fatalf("a token signed with the literal secret: status %d", status)
	}
	if !strings.Contains(configJSON(t, e), secret) {
		t.Error("GET /config/ does not show a literal secret: the check above proves nothing")
	}
	e.Logs().Wait(t, `"msg":"adjusted config"`, secret)

	// A secret in a file, as a container's secrets are mounted, written
	// with the line break echo adds: the file's name is in the config,
	// its secret is not, and the line break is not part of it.
	file := testkit.WriteFile(t, t.TempDir(), "ucwa_jwt_secret", []byte(secret+"\n"))
	e.Load("caddyfile", secretConfig("{file."+file+"}", pool.Addr()))
	if status := send(e, []byte(secret)); status != http.StatusCreated {
		t.Fatalf("a token signed with the file's secret: status %d", status)
	}
	if got := configJSON(t, e); strings.Contains(got, secret) || !strings.Contains(got, "{file."+file+"}") {
		t.Fatalf("GET /config/ shows the file's secret, or not its placeholder: %s", got)
	}
}
