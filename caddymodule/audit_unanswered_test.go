package caddymodule

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestAuditStatusOfUnansweredNext: without pools the edge hands an
// accepted request to the next handler; when no handler after it writes
// an answer (the edge is the last handler of its `handle` block, or what
// follows writes nothing) and they return, net/http answers 200 with an
// empty body. The audit line says 200, the status the client got, not 0,
// which says the client got no answer at all (a handler that aborted).
func TestAuditStatusOfUnansweredNext(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	for _, tc := range []struct{ name, site string }{
		{"the edge last in its handle block", `handle /ucwa/* {
		ucwa {
			%s
			default_region US
		}
	}
	handle {
		respond 404
	}`},
		{"a handler after the edge that writes nothing", `route {
		ucwa {
			%s
			default_region US
			idempotency
		}
		vars seen yes
	}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEdge(t, "caddyfile", ":EDGE_PORT {\n\t"+fmt.Sprintf(tc.site, opsJWT)+"\n}")
			resp := e.postJSON(startOpsPath, `{"to":"+14255551234","operationId":"none-1"}`, http.Header{"Authorization": {callerBearer(t)}})
			if resp.Status != http.StatusOK || resp.Body != "" {
				t.Fatalf("the client got %d %q, want net/http's empty 200", resp.Status, resp.Body)
			}
			var lines []auditLine
			testkit.Eventually(t, "the audit line", func() bool {
				lines = auditLines(t, e.Logs().String())
				return len(lines) > 0
			})
			if len(lines) != 1 || lines[0].Status != http.StatusOK || lines[0].OperationID != "none-1" || lines[0].Duration == nil {
				t.Errorf("audit lines %+v, want one with status 200", lines)
			}
		})
	}
}
