package caddymodule

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

var (
	caddyBinOnce sync.Once
	caddyBin     string
	caddyBinErr  error
)

// caddyBinary builds cmd/caddy-ucwa once per test run: `caddy adapt` and
// `caddy validate` are checked through the real command users run.
func caddyBinary(t *testing.T) string {
	t.Helper()
	caddyBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "caddy-ucwa-bin")
		if err != nil {
			caddyBinErr = err
			return
		}
		caddyBin = filepath.Join(dir, "caddy")
		out, err := exec.Command("go", "build", "-o", caddyBin, "../cmd/caddy-ucwa").CombinedOutput()
		if err != nil {
			caddyBinErr = err
			caddyBin = string(out)
		}
	})
	if caddyBinErr != nil {
		t.Fatalf("building caddy-ucwa: %v\n%s", caddyBinErr, caddyBin)
	}
	return caddyBin
}

// caddyCommand runs the built caddy with a Caddyfile and returns its output.
func caddyCommand(t *testing.T, verb, caddyfile string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(caddyBinary(t), verb, "--config", path, "--adapter", "caddyfile")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	// Caddy logs errors as JSON: unescape quotes so tests match messages as written.
	return strings.ReplaceAll(string(out), `\"`, `"`), err
}

// readmeCaddyfiles returns the ```caddyfile blocks of the README.
func readmeCaddyfiles(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) == 0 {
		t.Fatal("the README has no ```caddyfile example")
	}
	return blocks
}

func TestReadmeCaddyfilesAdapt(t *testing.T) {
	for i, block := range readmeCaddyfiles(t) {
		out, err := caddyCommand(t, "adapt", block)
		if err != nil || !strings.Contains(out, `"handler":"ucwa"`) {
			t.Errorf("README Caddyfile #%d does not adapt to a ucwa handler: %v\n%s\n%s", i+1, err, out, block)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name, subdirectives, want string
	}{
		{"unknown subdirective", "colour blue", `unrecognized subdirective "colour"`},
		{"bad default_region", "default_region XX", `default region "XX" is not a region`},
		{"bad number_format", "number_format national", `number_format: "national" is neither tel nor e164`},
		{"bad max_body_size", "max_body_size lots", `max_body_size: "lots" is not a size`},
		{"zero max_body_size", "max_body_size 0", `max_body_size: "0" is not a size`},
		{"bad phone_audio", "phone_audio maybe", `phone_audio: "maybe" is neither enabled nor disabled`},
		{"no jwt at all", "", "jwt is not configured"},
		{"unclean path suffix", "paths /communication/call/", `path suffix "/communication/call/" must start with / and be clean`},
		{"jwt off with scopes", "scopes Conversations.Initiate", "`off` cannot be combined with other jwt settings, scopes"},
		{"jwks_url in the clear", "jwt {\n\t\t\talgorithms RS256\n\t\t\tjwks_url http://login.example.com/keys\n\t\t}", `jwks_url "http://login.example.com/keys" must use https`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jwt := "jwt off"
			if tc.subdirectives == "" || strings.HasPrefix(tc.subdirectives, "jwt {") {
				jwt = ""
			}
			out, err := caddyCommand(t, "validate", ":8080 {\n\tucwa {\n\t\t"+jwt+"\n\t\t"+tc.subdirectives+"\n\t}\n\trespond 204\n}\n")
			if err == nil {
				t.Fatalf("caddy validate accepted the config:\n%s", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("caddy validate output does not name the problem (%q):\n%s", tc.want, out)
			}
		})
	}
	t.Run("valid config", func(t *testing.T) {
		out, err := caddyCommand(t, "validate", ":8080 {\n\tucwa {\n\t\tjwt off\n\t\tdefault_region de\n\t\tnumber_format e164\n\t\tmax_body_size 16KiB\n\t}\n\trespond 204\n}\n")
		if err != nil {
			t.Fatalf("caddy validate rejected a valid config: %v\n%s", err, out)
		}
	})
}

func TestListModules(t *testing.T) {
	out, err := exec.Command(caddyBinary(t), "list-modules").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "http.handlers.ucwa\n") {
		t.Fatalf("caddy list-modules does not show http.handlers.ucwa: %v\n%s", err, out)
	}
}

// TestReadmeJSONExample: the README's JSON handler decodes into Handler
// with no unknown field, so its field names follow the code.
func TestReadmeJSONExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```json\n(\\{\n  \"handler\": \"ucwa\".*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("the README has no JSON example of the ucwa handler")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(m[1], &raw); err != nil {
		t.Fatalf("README JSON example: %v", err)
	}
	delete(raw, "handler") // the module's name, not a field
	b, _ := json.Marshal(raw)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var h Handler
	if err := dec.Decode(&h); err != nil {
		t.Fatalf("README JSON example does not match Handler: %v", err)
	}
	if h.JWT == nil || len(h.JWT.Algorithms) == 0 || h.Primary == nil || h.Backup == nil {
		t.Fatalf("README JSON example lost its jwt or pools: %+v", h)
	}
}
