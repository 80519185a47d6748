package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// BenchmarkServer sends the JSON seed sample through a real Caddy server
// (net/http's connection handling, Caddy's routes, the response's
// finishing) on loopback, with one kept-alive client connection, to a
// plain reverse_proxy ("proxy") and to the edge routes of the bench
// ("edge": a primary pool; "idem": idempotency in the memory store;
// "all": the bench's all-features route), each in front of the same
// loopback upstream, the edge's audit trail written to a file. The
// difference between "proxy" and "edge" is what the edge adds to a
// proxied request, net/http's share of it included, which
// BenchmarkHandler leaves out; count its instructions (see the README's
// Performance) rather than time it.
//
//	go test -run '^$' -bench BenchmarkServer -benchmem ./caddymodule/
func BenchmarkServer(b *testing.B) {
	token, jwksPath := benchToken(b)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Location", "/ucwa/v1/applications/192/communication/invitations/146")
		w.WriteHeader(http.StatusCreated)
	}))
	b.Cleanup(upstream.Close)
	dial := strings.TrimPrefix(upstream.URL, "http://")
	site := func(port, more string) string {
		return fmt.Sprintf(`:%s {
	ucwa {
		jwt {
			algorithms RS256
			jwks_file %s
			issuer https://issuer.example/
			audience api://ucwa
		}
		default_region US
		primary %s
		%s
	}
}
`, port, jwksPath, dial, more)
	}
	const memoryStore = "store memory 10000000 {\n\t\t\tmax_entries_per_caller 10000000\n\t\t}\n\t\tidempotency"
	config := fmt.Sprintf(`{
	log {
		level WARN
		exclude http.handlers.ucwa.audit
	}
	log ucwa_audit {
		include http.handlers.ucwa.audit
		output file %s {
			roll_size 1000MiB
			roll_keep 2
		}
		format json
		level INFO
	}
}
:PROXY_PORT {
	reverse_proxy %s
}
`, filepath.Join(b.TempDir(), "audit.log"), dial) +
		site("EDGE_PORT", "") +
		site("IDEM_PORT", memoryStore) +
		site("ALL_PORT", memoryStore+`
		destinations {
			allow_regions US CA
			deny +1900 +1976 +881 +882 +883
			sip_domains contoso.com *.contoso.com
		}
		limit calls 1000000000 per 1h`)
	c := testkit.Start(b, "caddyfile", config)
	client := testkit.NewClient(b)
	prefix, suffix, _ := strings.Cut(seedJSON, seedOperationID)
	n := 0
	for _, route := range []struct{ name, port string }{
		{"proxy", "PROXY_PORT"}, {"edge", "EDGE_PORT"}, {"idem", "IDEM_PORT"}, {"all", "ALL_PORT"},
	} {
		b.Run(route.name, func(b *testing.B) {
			url := c.URL(route.port, startPath)
			b.ReportAllocs()
			for b.Loop() {
				n++
				body := prefix + fmt.Sprintf("%032x", n) + suffix
				req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Content-Length", strconv.Itoa(len(body)))
				req.Header.Set("Accept", "application/vnd.microsoft.com.ucwa+json")
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
