package caddymodule

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestAuditStatusOfAbort: Caddy (v2.11) does not answer a handler that
// panics: net/http closes the connection, and the client gets no answer
// at all. A handler after the edge that aborts (`abort`, which panics
// with http.ErrAbortHandler) leaves the request without one; its audit
// line says status 0, as Caddy's access log does, never a status the
// client did not get. With idempotency the key stays reserved (the
// handler may have acted on the request): a repeat gets 409.
func TestAuditStatusOfAbort(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	log
	route {
		ucwa {
			%s
			default_region US
			idempotency
		}
		abort
	}
}`, opsJWT))
	req := testkit.Request{URL: e.url(startOpsPath), ContentType: "application/json", Body: `{"to":"+14255551234","operationId":"abort-1"}`,
		Header: http.Header{"Authorization": {callerBearer(t)}}}
	if resp, err := testkit.Do(e.Client(), req); err == nil {
		t.Fatalf("the client got an answer: %d %s", resp.Status, resp.Body)
	}
	e.Logs().Wait(t, `"msg":"handled request"`, `"status":0`)
	var lines []auditLine
	testkit.Eventually(t, "the audit line", func() bool {
		lines = auditLines(t, e.Logs().String())
		return len(lines) > 0
	})
	if len(lines) != 1 || lines[0].Status != 0 || lines[0].OperationID != "abort-1" || lines[0].Idempotency != "reserved" || lines[0].Duration == nil {
		t.Errorf("audit lines %+v, want one with status 0", lines)
	}
	assertConflict(t, e.postJSON(startOpsPath, `{"to":"+14255551234","operationId":"abort-1"}`, http.Header{"Authorization": {callerBearer(t)}}))
}
