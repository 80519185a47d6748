// Command vulnfindings reads govulncheck's JSON output (-format json) on
// stdin and reports the vulnerabilities that the scanned code calls (for
// a binary: whose functions it contains). It exits 1 when one of them is
// in a module dependency, which a go.mod change fixes; the Go standard
// library's are only printed, with the Go release that fixes each, since
// they come with whatever Go builds the binary, not with this repository.
// Vulnerabilities in code that is imported or required but not called
// are listed on one line and fail nothing.
//
//	govulncheck -format json ./... | go run ./scripts/vulnfindings
//
// scripts/vulncheck runs it so, on the Go vulnerability database as the
// module proxy serves it. Exit status 2 is input it cannot read: no
// govulncheck report, or one not scanned at symbol level, where nothing
// says what is called.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/version"
	"io"
	"os"
	"slices"
	"strings"
)

func main() {
	failed, err := report(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulnfindings:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// message is one value of govulncheck's JSON stream, of which exactly one
// field is set (golang.org/x/vuln/internal/govulncheck.Message); the
// fields left out here are not read.
type message struct {
	Config  *scanConfig `json:"config"`
	SBOM    *sbom       `json:"SBOM"`
	OSV     *osvEntry   `json:"osv"`
	Finding *finding    `json:"finding"`
}

type scanConfig struct {
	ScannerVersion string `json:"scanner_version"`
	DB             string `json:"db"`
	ScanLevel      string `json:"scan_level"`
	ScanMode       string `json:"scan_mode"`
}

type sbom struct {
	// GoVersion is the Go whose standard library was scanned: the
	// toolchain's for source, the one that built it for a binary.
	GoVersion string `json:"go_version"`
}

type osvEntry struct {
	ID      string `json:"id"`
	Summary string `json:"summary"`
}

// finding is one of govulncheck's findings. Its trace starts at the
// vulnerable symbol: a first frame with a function is a call (symbol
// level); one with a package only, an import; one with neither, a
// required module.
type finding struct {
	OSV          string   `json:"osv"`
	FixedVersion string   `json:"fixed_version"`
	Trace        []*frame `json:"trace"`
}

type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
}

// vuln is one vulnerability in one module: an OSV entry can name several
// (net/http and golang.org/x/net/http2 for one HTTP/2 flaw), each fixed
// its own way.
type vuln struct {
	id, module, version, fixed string
	called                     bool
	packages                   []string
}

// isGo reports whether module is the Go distribution as govulncheck names
// it: its standard library, or the go command and other tools.
func isGo(module string) bool {
	return module == "stdlib" || module == "toolchain"
}

// goVersion turns govulncheck's semver of a Go release (v1.26.9) into
// Go's own name for it (go1.26.9), which is what go.dev/dl and `go
// version` show.
func goVersion(semver string) string {
	if v := "go" + strings.TrimPrefix(semver, "v"); version.IsValid(v) {
		return v
	}
	return semver
}

func report(r io.Reader, w io.Writer) (failed bool, err error) {
	var cfg *scanConfig
	goUsed := ""
	summaries := map[string]string{}
	vulns := map[[2]string]*vuln{}
	dec := json.NewDecoder(r)
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return false, fmt.Errorf("reading govulncheck's JSON: %w", err)
		}
		switch {
		case m.Config != nil:
			cfg = m.Config
		case m.SBOM != nil:
			goUsed = m.SBOM.GoVersion
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil && len(m.Finding.Trace) > 0:
			f, top := m.Finding, m.Finding.Trace[0]
			key := [2]string{f.OSV, top.Module}
			v := vulns[key]
			if v == nil {
				v = &vuln{id: f.OSV, module: top.Module, version: top.Version, fixed: f.FixedVersion}
				vulns[key] = v
			}
			if top.Function != "" {
				v.called = true
				if !slices.Contains(v.packages, top.Package) {
					v.packages = append(v.packages, top.Package)
				}
			}
		}
	}
	if cfg == nil {
		return false, errors.New("no govulncheck report on stdin (its first value, config, is missing)")
	}
	if cfg.ScanLevel != "symbol" {
		return false, fmt.Errorf("the scan is at %q level: only a symbol-level scan says what is called", cfg.ScanLevel)
	}

	var goCalled, modCalled, notCalled []*vuln
	for _, v := range vulns {
		slices.Sort(v.packages)
		switch {
		case !v.called:
			notCalled = append(notCalled, v)
		case isGo(v.module):
			goCalled = append(goCalled, v)
		default:
			modCalled = append(modCalled, v)
		}
	}
	byModuleAndID := func(a, b *vuln) int {
		return strings.Compare(a.module+" "+a.id, b.module+" "+b.id)
	}
	slices.SortFunc(goCalled, byModuleAndID)
	slices.SortFunc(modCalled, byModuleAndID)
	slices.SortFunc(notCalled, byModuleAndID)

	fmt.Fprintf(w, "govulncheck %s, %s scan, %s, database %s\n", cfg.ScannerVersion, cfg.ScanMode, goUsed, cfg.DB)
	if len(goCalled) > 0 {
		fmt.Fprintf(w, "\nGo standard library of %s: %d called, fixed in a later Go (printed, not failed: the Go that builds a binary brings them):\n", goUsed, len(goCalled))
		newest := ""
		for _, v := range goCalled {
			fixed := "no fix released"
			if v.fixed != "" {
				fixed = "fixed in " + goVersion(v.fixed)
				if version.Compare(goVersion(v.fixed), newest) > 0 {
					newest = goVersion(v.fixed)
				}
			}
			fmt.Fprintf(w, "  %s  %s  %s: %s\n", v.id, fixed, strings.Join(v.packages, ", "), summaries[v.id])
		}
		if newest != "" {
			fmt.Fprintf(w, "Build release binaries with %s or later.\n", newest)
		}
	}
	if len(modCalled) > 0 {
		fmt.Fprintf(w, "\nModule dependencies: %d called:\n", len(modCalled))
		for _, v := range modCalled {
			fixed := "no fix released"
			if v.fixed != "" {
				fixed = "fixed in " + v.fixed
			}
			fmt.Fprintf(w, "  %s  %s@%s, %s  %s: %s\n", v.id, v.module, v.version, fixed, strings.Join(v.packages, ", "), summaries[v.id])
		}
	}
	if len(notCalled) > 0 {
		names := make([]string, len(notCalled))
		for i, v := range notCalled {
			names[i] = v.id + " (" + v.module + "@" + v.version + ")"
		}
		fmt.Fprintf(w, "\nImported or required but not called (not failed): %s\n", strings.Join(names, ", "))
	}
	if len(modCalled) > 0 {
		fmt.Fprintln(w, "\nFAIL: a module dependency's vulnerability is called: raise the module to its fixed version (go get MODULE@VERSION && go mod tidy).")
		return true, nil
	}
	fmt.Fprintln(w, "\nok: no module dependency's vulnerability is called")
	return false, nil
}
