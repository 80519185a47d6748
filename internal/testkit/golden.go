package testkit

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

var update = flag.Bool("update", false, "rewrite golden files from what the code gives: the expected JSON of golden Caddyfile tests (testdata/caddyfile_adapt), and the expected lines of golden log tests (see Golden)")

// Golden compares got with the golden file path, or, with -update,
// rewrites the file with got.
func Golden(t testing.TB, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (rewrite it with -update if the change is meant); got:\n%s", path, got)
	}
}

// goldenSeparator parts a golden file's Caddyfile from its expected JSON,
// as in Caddy's own caddytest/integration/caddyfile_adapt.
const goldenSeparator = "----------"

// AdaptGolden runs the golden Caddyfile tests in dir, as Caddy's own
// repository keeps them: each *.caddyfiletest file holds a Caddyfile, a
// line of dashes, and the JSON that Caddy's caddyfile adapter must make of
// it (indented with tabs), or, when that part does not start with "{",
// text that the adapter's error must contain. It runs in-process. With
// -update, files whose JSON differs are rewritten.
func AdaptGolden(t *testing.T, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.caddyfiletest"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no golden Caddyfile tests in %s", dir)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			caddyfile, expected, ok := strings.Cut(string(data), goldenSeparator)
			if !ok {
				t.Fatalf("%s has no line of dashes (%s)", path, goldenSeparator)
			}
			caddyfile = strings.TrimSpace(caddyfile) + "\n"
			expected = strings.TrimSpace(strings.TrimLeft(expected, "-"))
			got, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
			if !strings.HasPrefix(expected, "{") {
				if err == nil || !strings.Contains(err.Error(), expected) {
					t.Fatalf("adapting: error %v, want one containing %q", err, expected)
				}
				return
			}
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			var indented bytes.Buffer
			if err := json.Indent(&indented, got, "", "\t"); err != nil {
				t.Fatal(err)
			}
			if indented.String() == expected {
				return
			}
			if *update {
				WriteFile(t, filepath.Dir(path), filepath.Base(path), []byte(caddyfile+goldenSeparator+"\n"+indented.String()+"\n"))
				t.Logf("rewrote %s", path)
				return
			}
			t.Errorf("the adapted JSON differs from %s (-update rewrites it):\n%s", path, lineDiff(expected, indented.String()))
		})
	}
}

// lineDiff lists the lines from the first that differs on, expected and
// got, so that the difference stands out.
func lineDiff(expected, got string) string {
	want, have := strings.Split(expected, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(want) && i < len(have) && want[i] == have[i] {
		i++
	}
	var b strings.Builder
	b.WriteString("from line " + strconv.Itoa(i+1) + ":\n--- expected\n")
	b.WriteString(strings.Join(want[i:min(len(want), i+12)], "\n"))
	b.WriteString("\n+++ adapted\n")
	b.WriteString(strings.Join(have[i:min(len(have), i+12)], "\n"))
	return b.String()
}
