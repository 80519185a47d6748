package caddymodule

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// referenceSample is one request sample of a UCWA reference page
// (testdata/reference): its method, path, headers and body as printed.
type referenceSample struct {
	name, method, path, body string
	header                   http.Header
}

// readReferenceSamples reads every sample of testdata/reference.
func readReferenceSamples(t *testing.T) []referenceSample {
	t.Helper()
	files, err := filepath.Glob("testdata/reference/*.txt")
	if err != nil || len(files) < 10 {
		t.Fatalf("samples %v: %v", files, err)
	}
	var samples []referenceSample
	for _, file := range files {
		if filepath.Base(file) == "README.txt" {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(string(b), "\n=== ")
		if !strings.HasPrefix(parts[0], "source: SkypeSDK-ops-redirect/UCWA/") || len(parts) < 2 {
			t.Fatalf("%s: no source line or no sample", file)
		}
		for _, part := range parts[1:] {
			kind, text, _ := strings.Cut(part, "\n")
			lines := strings.Split(text, "\n")
			method, rest, _ := strings.Cut(lines[0], " ")
			target, _, _ := strings.Cut(rest, " ")
			s := referenceSample{
				name:   strings.TrimSuffix(filepath.Base(file), ".txt") + "/" + kind,
				method: strings.ToUpper(method),
				path:   strings.TrimPrefix(target, "https://fe1.contoso.com:443"),
				header: http.Header{},
			}
			i := 1
			for ; i < len(lines) && lines[i] != "" && !strings.HasPrefix(lines[i], "{") && !strings.HasPrefix(lines[i], "<"); i++ {
				name, value, _ := strings.Cut(lines[i], ": ")
				s.header.Add(name, value)
			}
			s.body = strings.TrimSpace(strings.Join(lines[i:], "\n"))
			samples = append(samples, s)
		}
	}
	return samples
}

// referenceNormalized is what the edge changes in the reference's samples:
// the numbers, to E.164, the spaces its JSON samples print around a URI's
// colon, and an XML boolean property it reads, written as XML Schema
// writes it.
var referenceNormalized = strings.NewReplacer(`"tel : `, `"tel:`, `"sip : `, `"sip:`,
	`"4255552222"`, `"tel:+14255552222"`, `>4255552222<`, `>tel:+14255552222<`, `>False<`, `>false<`)

// TestReferenceSamples: every request sample of the UCWA reference for an
// operation of the table (testdata/reference, as printed) is delivered
// through the edge with the README's guards (a destination policy, a
// limit), with the headers a browser client of the UCWA SDK adds, its
// Content-Type as printed and as the SDK writes it (the vendor type and
// "; charset=utf-8"); the pool gets it with only its numbers in E.164.
func TestReferenceSamples(t *testing.T) {
	e := startOpsEdge(t, "error", `destinations {
			allow_regions US CA
			deny +1900 +1976 +881 +882 +883
		}
		limit calls 1000 per 1h`)
	samples := readReferenceSamples(t)
	for _, s := range samples {
		for _, variant := range []string{"as printed", "sdk"} {
			t.Run(s.name+"/"+variant, func(t *testing.T) {
				req := testkit.Request{Method: s.method, URL: s.path, Body: s.body, Header: http.Header{}}
				if s.path == "/ucwa/v1/applications/192/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact" {
					req.URL += "?target=" + "tel%3A%2B14255551234"
				}
				for name, values := range s.header {
					switch http.CanonicalHeaderKey(name) {
					case "Authorization", "Host", "Content-Length":
					case "Content-Type":
						req.ContentType = values[0]
					default:
						req.Header[http.CanonicalHeaderKey(name)] = values
					}
				}
				req.Header.Set("Authorization", bearerFor(t, allScopes...))
				req.Header.Set("X-Requested-With", "XMLHttpRequest")
				req.Header.Set("X-Ms-Origin", "https://app.contoso.com")
				if variant == "sdk" {
					req.Header.Set("Accept", "application/vnd.microsoft.com.ucwa+json")
					switch req.ContentType {
					case "application/json":
						req.ContentType = "application/vnd.microsoft.com.ucwa+json; charset=utf-8"
					case "application/xml":
						req.ContentType = "application/vnd.microsoft.com.ucwa+xml; charset=utf-8"
						req.Header.Set("Accept", "application/vnd.microsoft.com.ucwa+xml")
					}
				}
				before := len(e.pool.Received())
				r := e.send(req)
				if r.Status/100 != 2 {
					t.Fatalf("status %d %s", r.Status, r.Body)
				}
				got := e.pool.Received()
				if len(got) != before+1 {
					t.Fatalf("the pool got %d requests, want 1", len(got)-before)
				}
				delivered := got[len(got)-1]
				if want := referenceNormalized.Replace(s.body); delivered.Body != want {
					t.Errorf("the pool got\n%s\nwant\n%s", delivered.Body, want)
				}
				for _, name := range []string{"X-Requested-With", "X-Ms-Origin", "If-Match"} {
					if delivered.Header.Get(name) != req.Header.Get(name) {
						t.Errorf("%s: the pool got %q, want %q", name, delivered.Header.Get(name), req.Header.Get(name))
					}
				}
			})
		}
	}
}
