package caddymodule

import (
	"net/http"
	"testing"
)

// TestIdempotencyQueryNotUTF8: an operationId in the query that is not
// UTF-8 once percent-decoded (op%FF, op%FE) is refused 400 and not
// delivered. A pool on ASP.NET decodes the query in UTF-8, each invalid
// byte becoming U+FFFD: it reads op%FF, op%FE and op%EF%BF%BD as one
// operationId, which the edge, keying the bytes, took for three, and
// delivered each.
func TestIdempotencyQueryNotUTF8(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	const body = `{"to":"4255551234"}`
	for _, st := range idemStores {
		t.Run(st.name, func(t *testing.T) {
			pool := newIdemPool(t, "primary")
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.config(t), "primary "+pool.Addr()))
			for _, query := range []string{"operationId=op%FF", "operationId=op%FE", "operationId=op%80"} {
				resp := e.call(idemCall{header: caller, query: query, body: body})
				if resp.Status != http.StatusBadRequest {
					t.Errorf("%s: %d %s, want 400", query, resp.Status, resp.Body)
				}
			}
			if got := pool.Requests.Load(); got != 0 {
				t.Fatalf("the pool received %d requests of operationIds it reads as one, want none", got)
			}
			first := e.call(idemCall{header: caller, query: "operationId=op%EF%BF%BD", body: body})
			if first.Status != http.StatusCreated {
				t.Fatalf("U+FFFD itself: %d %s, want 201", first.Status, first.Body)
			}
			assertReplay(t, e.call(idemCall{header: caller, op: "op\uFFFD"}), first)
			if got := pool.Requests.Load(); got != 1 {
				t.Fatalf("the pool received %d requests, want 1", got)
			}
		})
	}
}
