package emulator

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests run the caddy-ucwa command itself (built once into a
// temporary directory) on the repository's demo Caddyfile and on the
// configs in examples/.

// repoRoot is where the demo's relative paths (examples/demo/...) resolve.
const repoRoot = ".."

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// binaries builds cmd/caddy-ucwa and examples/mint-token once per test
// binary and returns the directory that holds them.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "caddy-ucwa-emulator-test")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{"./cmd/caddy-ucwa", "./examples/mint-token"} {
			cmd := exec.Command("go", "build", "-o", buildDir+string(filepath.Separator), pkg)
			cmd.Dir = repoRoot
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// caddyCommand runs `caddy-ucwa args...` in the repository root.
func caddyCommand(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binaries(t), "caddy-ucwa"), args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustAdapt fails the test when `caddy adapt` refuses a config.
func mustAdapt(t *testing.T, config string, env []string) {
	t.Helper()
	if out, err := caddyCommand(t, env, "adapt", "--config", config, "--adapter", "caddyfile"); err != nil {
		t.Fatalf("caddy adapt %s: %v\n%s", config, err, out)
	}
}

func TestExampleConfigsValidate(t *testing.T) {
	dir := t.TempDir()
	jwks := jwksServer(t)
	env := []string{
		"UCWA_TENANT_ID=00000000-0000-0000-0000-000000000000",
		"UCWA_AUDIENCE=api://caddy-ucwa-test",
		"UCWA_JWT_PUBLIC_KEY=" + writeRSAPublicKey(t, dir),
		"UCWA_POOL_CA=" + writeCA(t, dir),
		"UCWA_JWKS_FILE=" + writeFile(t, dir, "jwks.json", jwks.body),
	}
	for _, config := range []string{"Caddyfile", "examples/entra-id/Caddyfile", "examples/paired-pools-tls/Caddyfile", "examples/web-tickets/Caddyfile"} {
		t.Run(config, func(t *testing.T) {
			path := config
			if config == "examples/entra-id/Caddyfile" {
				// Validation fetches the JWKS: from a loopback copy of the
				// tenant's key endpoint, not from the Internet.
				b, err := os.ReadFile(filepath.Join(repoRoot, config))
				if err != nil {
					t.Fatal(err)
				}
				const tenantKeys = "https://login.microsoftonline.com/{$UCWA_TENANT_ID}/discovery/v2.0/keys"
				if !bytes.Contains(b, []byte(tenantKeys)) {
					t.Fatalf("%s does not use the tenant's JWKS (%s)", config, tenantKeys)
				}
				path = writeFile(t, dir, "entra-id.Caddyfile", string(bytes.ReplaceAll(b, []byte(tenantKeys), []byte(jwks.URL))))
			}
			if out, err := caddyCommand(t, env, "validate", "--config", path, "--adapter", "caddyfile"); err != nil {
				t.Fatalf("caddy validate %s: %v\n%s", config, err, out)
			}
		})
	}
}

// demoPorts moves the demo's fixed ports into this package's range, so
// that the test runs beside a demo (or anything else) on the usual ones.
func demoPorts() map[string]int {
	return map[string]int{"2019": httpPort + 10, "8080": httpPort + 11, "8081": httpPort + 12, "9001": httpPort + 13, "9002": httpPort + 14}
}

func TestDemoEndToEnd(t *testing.T) {
	mustAdapt(t, "Caddyfile", nil)
	bin := binaries(t)
	ports := demoPorts()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	config := string(b)
	for from, to := range ports {
		if !strings.Contains(config, ":"+from) {
			t.Fatalf("the demo Caddyfile does not use port %s", from)
		}
		config = strings.ReplaceAll(config, ":"+from, ":"+strconv.Itoa(to))
	}
	configPath := writeFile(t, t.TempDir(), "Caddyfile", config)

	ctx, cancel := context.WithCancel(context.Background())
	caddy := exec.CommandContext(ctx, filepath.Join(bin, "caddy-ucwa"), "run", "--config", configPath, "--adapter", "caddyfile")
	caddy.Dir = repoRoot
	var log bytes.Buffer
	caddy.Stdout, caddy.Stderr = &log, &log
	if err := caddy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = caddy.Wait()
		if t.Failed() {
			t.Logf("caddy-ucwa log:\n%s", log.String())
		}
	})
	base := func(port string) string { return "http://localhost:" + strconv.Itoa(ports[port]) }
	client := &http.Client{Timeout: 10 * time.Second}
	waitUntil(t, "the demo to start", func() bool {
		resp, err := client.Get(base("8080") + "/ucwa/oauth/v1/applications/probe/events?timeout=1ms")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	})

	mint := exec.Command(filepath.Join(bin, "mint-token"))
	mint.Dir = repoRoot
	out, err := mint.Output()
	if err != nil {
		t.Fatalf("mint-token: %v", err)
	}
	token := strings.TrimSpace(string(out))

	// call places a call through an edge, after opening the application's
	// event channel, and returns the answer.
	call := func(edge, app, auth string) response {
		t.Helper()
		if ch := send(t, client, "GET", edge+app+"/events?timeout=1ms", "", ""); ch.status != http.StatusOK {
			t.Fatalf("opening the event channel through the edge: %d %s", ch.status, ch.body)
		}
		return send(t, client, "POST", edge+app+"/communication/startPhoneAudio", auth,
			`{"to":"sip:john@contoso.com","phoneNumber":"(425) 555-1234","operationId":"demo-e2e"}`)
	}

	t.Run("auth is on", func(t *testing.T) {
		r := call(base("8080"), "/ucwa/oauth/v1/applications/demo-no-token", "")
		if r.status != http.StatusUnauthorized {
			t.Fatalf("call without a token = %d %s, want 401", r.status, r.body)
		}
	})

	t.Run("call completes through the edge", func(t *testing.T) {
		const app = "/ucwa/oauth/v1/applications/demo-e2e"
		r := call(base("8080"), app, "Bearer "+token)
		if r.status != http.StatusCreated {
			t.Fatalf("call = %d %s, want 201", r.status, r.body)
		}
		location := r.header.Get("Location")
		got := followEvents(t, client, base("8080"), app+"/events", location)
		if last := got[len(got)-1]; last.status != "Success" {
			t.Fatalf("events = %+v, want the call to complete with Success", got)
		}
	})

	t.Run("failover to the backup, and 410 without one", func(t *testing.T) {
		// The README's failover step: remove the primary pool's server.
		req, _ := http.NewRequest("DELETE", base("2019")+"/config/apps/http/servers/primary_pool", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("DELETE primary_pool = %d", resp.StatusCode)
		}
		r := call(base("8080"), "/ucwa/oauth/v1/applications/demo-failover", "Bearer "+token)
		if r.status != http.StatusCreated {
			t.Fatalf("call with the primary gone = %d %s, want 201 from the backup", r.status, r.body)
		}
		// The edge without a backup: the request reaches no pool (and there
		// is no event channel to open).
		r = send(t, client, "POST", base("8081")+"/ucwa/oauth/v1/applications/demo-no-backup/communication/startPhoneAudio",
			"Bearer "+token, `{"to":"sip:john@contoso.com"}`)
		if r.status != http.StatusGone || !strings.Contains(r.body, `"subcode":"CannotRedirect"`) {
			t.Fatalf("call without a backup = %d %s, want 410 CannotRedirect", r.status, r.body)
		}
	})
}

// send sends a request to an absolute URL with an optional Authorization.
func send(t *testing.T, client *http.Client, method, url, auth, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", jsonType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b.String()}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeCA writes a self-signed CA certificate, as a pools' CA would be.
func writeCA(t *testing.T, dir string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Contoso pools test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, "pools-ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
}

// writeRSAPublicKey writes the PEM public key of a new RSA key, as an
// identity provider's would be.
func writeRSAPublicKey(t *testing.T, dir string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, "jwt-public.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
}

type jwks struct {
	URL  string
	body string
}

// jwksServer serves a JWK Set with one RSA key on loopback.
func jwksServer(t *testing.T) jwks {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	body, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "test-key",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return jwks{URL: srv.URL, body: string(body)}
}
