package main

import (
	"fmt"
	"strings"
	"testing"
)

// The helpers write govulncheck's JSON messages as v1.9.0 does (pretty
// printed values one after another), each with the fields report reads.

func configMessage(level string) string {
	return fmt.Sprintf(`{
  "config": {"protocol_version": "v1.0.0", "scanner_name": "govulncheck", "scanner_version": "v1.9.0",
    "db": "file:///db", "go_version": "go1.26.8", "scan_level": %q, "scan_mode": "source"}
}
{"SBOM": {"go_version": "go1.26.8", "modules": [{"path": "example.com/edge"}]}}
`, level)
}

func osvMessage(id, summary string) string {
	return fmt.Sprintf(`{"osv": {"schema_version": "1.3.1", "id": %q, "summary": %q}}
`, id, summary)
}

// findingMessage is a call when function is set, an import when only pkg
// is, a required module when neither is.
func findingMessage(id, fixed, module, version, pkg, function string) string {
	top := fmt.Sprintf(`{"module": %q, "version": %q`, module, version)
	if pkg != "" {
		top += fmt.Sprintf(`, "package": %q`, pkg)
	}
	if function != "" {
		top += fmt.Sprintf(`, "function": %q, "position": {"filename": "x.go", "line": 3}`, function)
	}
	top += "}"
	caller := `{"module": "example.com/edge", "package": "example.com/edge", "function": "Serve"}`
	return fmt.Sprintf(`{"finding": {"osv": %q, "fixed_version": %q, "trace": [%s, %s]}}
`, id, fixed, top, caller)
}

func TestReport(t *testing.T) {
	for _, tc := range []struct {
		name       string
		input      string
		wantFailed bool
		want       []string // lines of the report, each in it
		wantNot    []string
	}{{
		name: "standard library called, a module imported only",
		input: configMessage("symbol") +
			osvMessage("GO-2026-0001", "Crash in net/http") +
			osvMessage("GO-2026-0002", "Bad certificates in crypto/x509") +
			osvMessage("GO-2026-0003", "Loop in golang.org/x/net/html") +
			// Each is found as required, then imported, then called, as
			// govulncheck reports them.
			findingMessage("GO-2026-0001", "v1.26.9", "stdlib", "v1.26.8", "", "") +
			findingMessage("GO-2026-0001", "v1.26.9", "stdlib", "v1.26.8", "net/http", "") +
			findingMessage("GO-2026-0001", "v1.26.9", "stdlib", "v1.26.8", "net/http", "Get") +
			findingMessage("GO-2026-0001", "v1.26.9", "stdlib", "v1.26.8", "net/http", "Post") +
			findingMessage("GO-2026-0002", "v1.26.10", "stdlib", "v1.26.8", "crypto/x509", "Certificate.Verify") +
			findingMessage("GO-2026-0003", "v0.62.0", "golang.org/x/net", "v0.60.0", "", "") +
			findingMessage("GO-2026-0003", "v0.62.0", "golang.org/x/net", "v0.60.0", "golang.org/x/net/html", ""),
		want: []string{
			"govulncheck v1.9.0, source scan, go1.26.8, database file:///db",
			"Go standard library of go1.26.8: 2 called",
			"  GO-2026-0001  fixed in go1.26.9  net/http: Crash in net/http",
			"  GO-2026-0002  fixed in go1.26.10  crypto/x509: Bad certificates in crypto/x509",
			// 1.26.10 is later than 1.26.9, though not as a string.
			"Build release binaries with go1.26.10 or later.",
			"Imported or required but not called (not failed): GO-2026-0003 (golang.org/x/net@v0.60.0)",
			"ok: no module dependency's vulnerability is called",
		},
		wantNot: []string{"Module dependencies", "FAIL"},
	}, {
		name: "a module called",
		input: configMessage("symbol") +
			osvMessage("GO-2026-0004", "Panic in compress") +
			findingMessage("GO-2026-0004", "v1.20.2", "github.com/klauspost/compress", "v1.20.1", "", "") +
			findingMessage("GO-2026-0004", "v1.20.2", "github.com/klauspost/compress", "v1.20.1", "github.com/klauspost/compress/huff0", "ReadTable") +
			findingMessage("GO-2026-0004", "v1.20.2", "github.com/klauspost/compress", "v1.20.1", "github.com/klauspost/compress/fse", "Compress"),
		wantFailed: true,
		want: []string{
			"Module dependencies: 1 called:",
			"  GO-2026-0004  github.com/klauspost/compress@v1.20.1, fixed in v1.20.2  github.com/klauspost/compress/fse, github.com/klauspost/compress/huff0: Panic in compress",
			"FAIL: a module dependency's vulnerability is called",
		},
		wantNot: []string{"Go standard library", "Build release binaries", "not called", "ok:"},
	}, {
		name: "one entry in the standard library and a module, both called, the module's without a fix",
		input: configMessage("symbol") +
			osvMessage("GO-2026-0005", "HTTP/2 flaw") +
			findingMessage("GO-2026-0005", "v1.26.9", "stdlib", "v1.26.8", "net/http", "Serve") +
			findingMessage("GO-2026-0005", "", "golang.org/x/net", "v0.60.0", "golang.org/x/net/http2", "Server.ServeConn"),
		wantFailed: true,
		want: []string{
			"  GO-2026-0005  fixed in go1.26.9  net/http: HTTP/2 flaw",
			"  GO-2026-0005  golang.org/x/net@v0.60.0, no fix released  golang.org/x/net/http2: HTTP/2 flaw",
			"FAIL:",
		},
	}, {
		name:  "nothing found",
		input: configMessage("symbol"),
		want:  []string{"ok: no module dependency's vulnerability is called"},
		wantNot: []string{
			"Go standard library", "Module dependencies", "not called", "FAIL",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			failed, err := report(strings.NewReader(tc.input), &out)
			if err != nil {
				t.Fatalf("report: %v", err)
			}
			if failed != tc.wantFailed {
				t.Errorf("failed = %v, want %v", failed, tc.wantFailed)
			}
			lines := strings.Split(out.String(), "\n")
			for _, want := range tc.want {
				found := false
				for _, line := range lines {
					found = found || strings.HasPrefix(line, want)
				}
				if !found {
					t.Errorf("no line starts with %q", want)
				}
			}
			for _, not := range tc.wantNot {
				if strings.Contains(out.String(), not) {
					t.Errorf("report says %q", not)
				}
			}
			if t.Failed() {
				t.Logf("report:\n%s", out.String())
			}
		})
	}
}

func TestReportRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, input, wantErr string
	}{
		{"no input", "", "no govulncheck report"},
		{"text output", "=== Symbol Results ===\n", "reading govulncheck's JSON"},
		{"findings without a config", findingMessage("GO-2026-0004", "v1.20.2", "github.com/klauspost/compress", "v1.20.1", "github.com/klauspost/compress/fse", "Compress"), "no govulncheck report"},
		{"package-level scan", configMessage("package") +
			findingMessage("GO-2026-0004", "v1.20.2", "github.com/klauspost/compress", "v1.20.1", "github.com/klauspost/compress/fse", ""), `the scan is at "package" level`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			failed, err := report(strings.NewReader(tc.input), &out)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("report: error %v, want one saying %q", err, tc.wantErr)
			}
			if failed {
				t.Errorf("failed = true with an error")
			}
		})
	}
}
