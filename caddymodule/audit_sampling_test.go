package caddymodule

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestAuditSampling: as README's Audit trail says, Caddy's `sampling`
// in the log that takes the trail drops audit lines (every one has the
// same message, which the sampler counts by): only the first of an
// interval are kept. Sampling the default log, with the trail excluded
// from it and in a log of its own, keeps every line.
func TestAuditSampling(t *testing.T) {
	const requests = 5
	sampling := `sampling {
			interval 1h
			first 2
			thereafter 1000
		}`
	for _, tc := range []struct {
		name string
		// The sampling of the default log and of the trail's.
		defaultSampling, auditSampling string
		lines                          int
	}{
		{"the trail's log sampled", "", sampling, 2},
		{"the default log sampled, the trail excluded from it", sampling, "", requests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
			dir := t.TempDir()
			auditFile, accessFile := filepath.Join(dir, "ucwa-audit.log"), filepath.Join(dir, "access.log")
			pool := testkit.NewUpstream(t)
			e := startEdge(t, "caddyfile", fmt.Sprintf(`{
	log default {
		exclude http.handlers.ucwa.audit
		%s
	}
	log ucwa_audit {
		include http.handlers.ucwa.audit
		output file %s
		format json
		%s
	}
}
:EDGE_PORT {
	log {
		output file %s
		format json
	}
	ucwa {
		`+opsJWT+`
		default_region US
		primary %s
	}
}`, tc.defaultSampling, auditFile, tc.auditSampling, accessFile, pool.Addr()))
			auth := http.Header{"Authorization": {callerBearer(t)}}
			for i := range requests {
				if resp := e.send(idemCall{header: auth, op: fmt.Sprint("op-", i)}.request()); resp.Status != http.StatusCreated {
					t.Fatalf("op-%d: %d %s", i, resp.Status, resp.Body)
				}
			}
			// An access log line, in a log of its own (unsampled), is
			// written once the handler, and its audit line, is done.
			testkit.Eventually(t, "the access log lines", func() bool {
				b, _ := os.ReadFile(accessFile)
				return strings.Count(string(b), `"msg":"handled request"`) >= requests
			})
			b, err := os.ReadFile(auditFile)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(auditLines(t, string(b))); got != tc.lines {
				t.Errorf("%d audit lines of %d requests, want %d", got, requests, tc.lines)
			}
		})
	}
}
