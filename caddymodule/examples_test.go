package caddymodule

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/ucwa-edge/caddy-ucwa/internal/demotoken"
	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// tenantKeys is the JWK Set URL of an Entra ID tenant, as the README and
// the entra-id example name it; tests serve a loopback copy in its place.
var tenantKeys = regexp.MustCompile(`https://login\.microsoftonline\.com/[^/\s]+/discovery/v2\.0/keys`)

// exampleEnv sets the environment the example configs read, with files of
// the test's own, and returns a loopback identity provider for their
// jwks_url.
func exampleEnv(t testing.TB) *testkit.JWKSServer {
	t.Helper()
	k := testkit.Keys(t)
	dir := t.TempDir()
	keys := testkit.JWKS(t, testkit.JWK(t, "test-key", k.RSA))
	t.Setenv("UCWA_TENANT_ID", "00000000-0000-0000-0000-000000000000")
	t.Setenv("UCWA_AUDIENCE", "api://caddy-ucwa-test")
	t.Setenv("UCWA_JWT_PUBLIC_KEY", testkit.WriteFile(t, dir, "jwt-public.pem", testkit.PublicPEM(t, k.RSA)))
	t.Setenv("UCWA_POOL_CA", testkit.WriteFile(t, dir, "pools-ca.pem", testkit.CACertificatePEM(t)))
	t.Setenv("UCWA_JWKS_FILE", testkit.WriteFile(t, dir, "jwks.json", keys))
	return testkit.NewJWKSServer(t, keys)
}

// readRepoFile reads a file of the repository, the tests' working
// directory being its root.
func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestExampleConfigs: the demo Caddyfile and every example config adapt
// and provision (keys loaded, pools and their TLS set up) as `caddy
// validate` would, in-process. Paths in them are relative to the
// repository's root, where the demo runs.
func TestExampleConfigs(t *testing.T) {
	t.Chdir("..")
	idp := exampleEnv(t)
	configs, err := filepath.Glob("examples/*/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	configs = append(configs, "Caddyfile")
	if len(configs) < 4 {
		t.Fatalf("found only %v", configs)
	}
	for _, name := range configs {
		t.Run(name, func(t *testing.T) {
			config := readRepoFile(t, name)
			// The command its comment gives: a Caddy built with the
			// plugin (the demo's own is go run ./cmd/caddy-ucwa).
			if run := "\t./caddy run --config " + name + "\n"; name != "Caddyfile" && !strings.Contains(config, run) {
				t.Errorf("%s: its comment does not give the command %q", name, strings.TrimSpace(run))
			}
			// Validation fetches a jwks_url's keys: from a loopback copy of
			// the tenant's key endpoint, not from the Internet.
			config = tenantKeys.ReplaceAllString(config, idp.URL+"/keys")
			if err := testkit.Validate(t, "caddyfile", config); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		})
	}
}

// TestDemoJWKS: examples/demo/jwks.json is the demo key's public half as
// a JWK Set: an edge that reads it with jwks_file takes a demo token
// (which has no kid: the set's only ES256 key verifies it) and delivers
// its call.
func TestDemoJWKS(t *testing.T) {
	pool := testkit.NewUpstream(t)
	jwks, err := filepath.Abs("../examples/demo/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		jwt {
			algorithms ES256
			jwks_file %s
			issuer %s
			audience %s
		}
		primary %s
	}
}`, jwks, demotoken.Issuer, demotoken.Audience, pool.Addr()))
	token, err := demotoken.Mint("../"+demotoken.KeyFile, demotoken.Issuer, demotoken.Audience, demotoken.Subject, demotoken.Scope, demotoken.TTL, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp := e.postJSON(startPath, `{"to":"+14255551234"}`, http.Header{"Authorization": {"Bearer " + token}})
	if resp.Status != http.StatusCreated || len(pool.Received()) != 1 {
		t.Fatalf("a demo token's call: %d %s, %d delivered; want the pool's 201, delivered once", resp.Status, resp.Body, len(pool.Received()))
	}
}

// readmeBlock is a fenced block of the README: its info string ("" for
// an untagged fence) and its text.
type readmeBlock struct{ tag, text string }

// readmeBlocks are the README's fenced blocks, in order.
func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	var blocks []readmeBlock
	var text strings.Builder
	in, tag := false, ""
	for line := range strings.Lines(readRepoFile(t, "../README.md")) {
		switch {
		case strings.HasPrefix(line, "```") && !in:
			in, tag = true, strings.TrimSpace(strings.TrimPrefix(line, "```"))
			text.Reset()
		case strings.HasPrefix(line, "```"):
			in = false
			blocks = append(blocks, readmeBlock{tag, text.String()})
		case in:
			text.WriteString(line)
		}
	}
	return blocks
}

// caddyfileSnippet reports whether b is Caddyfile text: a ```caddyfile
// block, or an untagged one that begins as a ucwa block, a jwt block, a
// site's log or global options do.
func (b readmeBlock) caddyfileSnippet() bool {
	first, _, _ := strings.Cut(b.text, "\n")
	return b.tag == "caddyfile" || b.tag == "" && (first == "ucwa {" || first == "jwt {" || first == "log {" || first == "{")
}

// TestReadmeCaddyfiles: every ```caddyfile block of the README adapts to
// a ucwa handler and provisions.
func TestReadmeCaddyfiles(t *testing.T) {
	idp := exampleEnv(t)
	n := 0
	for _, block := range readmeBlocks(t) {
		if block.tag != "caddyfile" {
			continue
		}
		n++
		config := tenantKeys.ReplaceAllString(block.text, idp.URL+"/keys")
		if !strings.Contains(config, "ucwa {") {
			t.Errorf("README Caddyfile #%d has no ucwa handler", n)
		}
		if err := testkit.Validate(t, "caddyfile", config); err != nil {
			t.Errorf("README Caddyfile #%d: %v\n%s", n, err, block.text)
		}
	}
	if n == 0 {
		t.Fatal("the README has no ```caddyfile example")
	}
}

// TestCaddyfilesFormatted: the README's Caddyfile text and the
// repository's Caddyfiles are as `caddy fmt` writes them, so that one
// pasted or run starts without Caddy's warning that its input is not
// formatted.
func TestCaddyfilesFormatted(t *testing.T) {
	files, err := filepath.Glob("../examples/*/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{}
	for _, name := range append(files, "../Caddyfile") {
		texts[name] = readRepoFile(t, name)
	}
	for i, block := range readmeBlocks(t) {
		if block.caddyfileSnippet() {
			texts[fmt.Sprintf("README block #%d", i+1)] = block.text
		}
	}
	if len(texts) < 12 {
		t.Fatalf("found %d Caddyfile texts, want 12 or more", len(texts))
	}
	for name, text := range texts {
		if formatted := string(caddyfile.Format([]byte(text))); formatted != text {
			t.Errorf("%s is not as caddy fmt writes it:\n%s\ncaddy fmt:\n%s", name, text, formatted)
		}
	}
}

// TestExampleMissingVariable: an example whose required environment
// variable is not set stops at startup with a message that names the
// variable, not with a syntax error about an argument it lost.
func TestExampleMissingVariable(t *testing.T) {
	t.Chdir("..")
	idp := exampleEnv(t)
	config := tenantKeys.ReplaceAllString(readRepoFile(t, "examples/entra-id/Caddyfile"), idp.URL+"/keys")
	for _, variable := range []string{"UCWA_TENANT_ID", "UCWA_AUDIENCE"} {
		t.Run(variable, func(t *testing.T) {
			t.Setenv(variable, "")
			err := testkit.Validate(t, "caddyfile", config)
			if err == nil || !strings.Contains(err.Error(), "{env."+variable+"} is empty") {
				t.Fatalf("error %v, want one naming %s", err, variable)
			}
		})
	}
}

// TestReadmeSnippets: the README's untagged Caddyfile snippets (a ucwa
// block with "..." for the rest, given HS256 tokens when it has no jwt
// of its own; a jwt block, a site's log, global options) adapt and
// provision once put in a config of their own, so
// that the syntax they show is the parser's. The syntax block (with
// <placeholders>) is TestCaddyfileSyntaxDocumented's.
func TestReadmeSnippets(t *testing.T) {
	t.Setenv("UCWA_JWT_SECRET", strings.Repeat("s", 64))
	t.Setenv("UCWA_REDIS_PASSWORD", "secret")
	tested := 0
	for _, block := range readmeBlocks(t) {
		if block.tag != "" {
			continue
		}
		var lines strings.Builder
		for line := range strings.Lines(block.text) {
			if strings.TrimSpace(line) != "..." {
				lines.WriteString(line)
			}
		}
		snippet := lines.String()
		var config string
		switch first, _, _ := strings.Cut(snippet, "\n"); first {
		case "ucwa {":
			if strings.Contains(snippet, "<") {
				continue
			}
			if !strings.Contains(snippet, "\tjwt ") {
				snippet = strings.Replace(snippet, "ucwa {\n", "ucwa {\n\tjwt {\n\t\talgorithms HS256\n\t\thmac_secret {env.UCWA_JWT_SECRET}\n\t}\n", 1)
			}
			config = ":0 {\n" + snippet + "}\n"
		case "jwt {":
			config = ":0 {\nucwa {\n" + snippet + "}\n}\n"
		case "log {":
			config = ":0 {\n" + snippet + "ucwa {\n\tjwt off\n}\n}\n"
		case "{":
			config = snippet + ":0 {\nucwa {\n\tjwt off\n}\n}\n"
		default:
			continue
		}
		tested++
		if err := testkit.Validate(t, "caddyfile", config); err != nil {
			t.Errorf("README snippet: %v\n%s", err, snippet)
		}
	}
	if tested < 8 {
		t.Errorf("tested %d snippets of the README, want 8 or more", tested)
	}
}
