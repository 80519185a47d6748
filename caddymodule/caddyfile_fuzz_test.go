package caddymodule

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// FuzzUnmarshalCaddyfile adapts a Caddyfile whose ucwa block holds any
// text, as Caddy's caddyfile adapter reads it: the parser never panics;
// an error names where in the Caddyfile it is; a block it reads becomes
// handler JSON that decodes into Handler with no unknown field and
// encodes back the same, so that what it read is what runs.
func FuzzUnmarshalCaddyfile(f *testing.F) {
	// Seeds: the ucwa blocks of the golden files, and each line of the
	// syntax in UnmarshalCaddyfile's comment alone.
	files, err := filepath.Glob("testdata/caddyfile_adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		f.Fatalf("no golden files: %v", err)
	}
	block := regexp.MustCompile(`(?s)\tucwa \{\n(.*?)\n\t\}\n`)
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		if m := block.FindSubmatch(data); m != nil {
			f.Add(string(m[1]))
		}
	}
	src, err := os.ReadFile("caddyfile.go")
	if err != nil {
		f.Fatal(err)
	}
	for line := range strings.Lines(string(regexp.MustCompile(`(?s)\n//\tucwa \{\n.*?\n//\t\}\n`).Find(src))) {
		f.Add(strings.TrimSpace(strings.TrimPrefix(line, "//")))
	}
	for _, seed := range []string{
		"jwt off\nlimit a 1 per 1s key {http.ucwa.tid} forwarding",
		"store memory 10 {\n on_error open\n}\nidempotency 1h",
		"jwt {\n leeway 0\n cache_size -1\n jwks_url https://a/k 2h\n}",
		"destinations {\n max_extension_digits 4\n}\nprimary a:1 {\n lb_policy first\n}",
		"operation batch {\n paths /b\n}\nchallenge realm x",
	} {
		f.Add(seed)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	f.Fuzz(func(t *testing.T, body string) {
		if strings.Contains(body, "{$") || strings.Contains(body, "import") {
			// {$VAR} is replaced from this process's environment, and an
			// import reads files of this machine.
			return
		}
		config := ":80 {\n\tucwa {\n" + body + "\n\t}\n}\n"
		adapted, _, err := adapter.Adapt([]byte(config), nil)
		if err != nil {
			// Errors of the ucwa directive name their line; those of the
			// rest of the Caddyfile (a body that closes the block) are
			// Caddy's.
			if strings.Contains(err.Error(), "for 'ucwa'") && !strings.Contains(err.Error(), "Caddyfile:") {
				t.Fatalf("the error names no line of the Caddyfile: %v", err)
			}
			return
		}
		for _, raw := range ucwaHandlerJSON(t, adapted) {
			if err := handlerRoundTrip(raw); err != nil {
				t.Fatal(err)
			}
		}
	})
}
