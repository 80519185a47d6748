package caddymodule

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// TestDenyCallersEveryOperation: through a real Caddy, a barred caller's
// request to each guarded operation, at each of its path spellings, in
// its body (and its query), in its query alone, answered in XML and as a
// POST with X-HTTP-Method-Override, is refused 403 Forbidden without a
// challenge, and neither the pool nor the next handler gets anything;
// the same request of an allowed caller is delivered.
func TestDenyCallersEveryOperation(t *testing.T) {
	e := startOpsEdge(t, "INFO", "deny_callers {\n\t\t\tsub barred-sub\n\t\t}")
	barred := "Bearer " + testkit.Mint(t, jwt.SigningMethodHS256, testkit.Keys(t).HMAC, "",
		testkit.Claims(time.Now(), jwt.MapClaims{"sub": "barred-sub", "scp": strings.Join(allScopes, " ")}))
	for _, op := range ucwa.DefaultOperations() {
		if op.Body == ucwa.BatchBody {
			continue // TestDenyCallers
		}
		t.Run(op.Rel, func(t *testing.T) {
			for _, suffix := range op.Paths {
				path := opPath(suffix)
				for _, form := range []string{"body", "query", "xml answer", "method override"} {
					req := opRequest(&op, path, barred, goodQuery(&op).Encode(), goodBody(&op))
					switch form {
					case "query":
						req = opRequest(&op, path, barred, goodQuery(&op).Encode(), nil)
					case "xml answer":
						req.Accept = "application/xml"
					case "method override": // a POST that a pool reads as op's method
						req.Header.Set("X-HTTP-Method-Override", op.Method)
						req.Method = http.MethodPost
					}
					before, beforeNext := len(e.pool.Received()), len(e.next.Received())
					resp := e.send(req)
					if resp.Status != http.StatusForbidden || len(e.pool.Received()) != before || len(e.next.Received()) != beforeNext {
						t.Fatalf("%s %s: %d %s; want 403, nothing delivered", suffix, form, resp.Status, resp.Body)
					}
					if !strings.Contains(resp.Body, "barred this caller from "+op.Rel) || resp.Header.Get("WWW-Authenticate") != "" {
						t.Errorf("%s %s: %v %s", suffix, form, resp.Header, resp.Body)
					}
					if form == "xml answer" && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") {
						t.Errorf("%s: Content-Type %q", suffix, resp.Header.Get("Content-Type"))
					}
				}
			}
			query := ""
			if op.Body == ucwa.SDPBody { // its properties are in the query
				query = goodQuery(&op).Encode()
			}
			req := opRequest(&op, opPath(op.Paths[0]), bearerFor(t, allScopes...), query, goodBody(&op))
			before := len(e.pool.Received())
			if resp := e.send(req); resp.Status != http.StatusCreated || len(e.pool.Received()) != before+1 {
				t.Fatalf("allowed caller: %d %s", resp.Status, resp.Body)
			}
		})
	}
}
