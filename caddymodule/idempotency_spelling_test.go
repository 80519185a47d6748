package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
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

// TestIdempotencyBatchQueryOperationID: an operationId in a batch's own
// query, in any spelling a pool may read as one (letter case, a binding
// part), is refused 400 and nothing is delivered. A pool that runs the
// parts in the batch's request reads a part's operationId there first
// (as the edge refuses a destination there); the edge keyed each part by
// its own, or none, and delivered the batch again.
func TestIdempotencyBatchQueryOperationID(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	const app = "/ucwa/v1/applications/1"
	part := func(body string) string {
		return innerPOST(app+"/communication/startPhoneAudio", "application/json", body)
	}
	for _, st := range idemStores {
		t.Run(st.name, func(t *testing.T) {
			pool := newIdemPool(t, "primary")
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.config(t), "primary "+pool.Addr()))
			for _, c := range []struct{ query, body string }{
				{"operationId=q-batch", `{"to":"4255551234"}`},
				{"operationId=q-batch", `{"to":"4255551234"}`},
				{"operationId=q-batch", `{"to":"4255551234","operationId":"own-1"}`},
				{"operationId=q-batch", `{"to":"4255551234","operationId":"own-2"}`},
				{"OperationID=q-batch", `{"to":"4255551234"}`},
				{"x.operationId=q-batch", `{"to":"4255551234"}`},
			} {
				resp := e.send(testkit.Request{URL: app + "/batch?" + c.query, ContentType: batchType, Header: caller.Clone(), Body: batchBody(part(c.body))})
				if resp.Status != http.StatusBadRequest || !strings.Contains(resp.Body, "operationId") {
					t.Errorf("?%s, part %s: %d %s, want 400 naming operationId", c.query, c.body, resp.Status, resp.Body)
				}
			}
			if got := pool.Requests.Load(); got != 0 {
				t.Fatalf("the pool received %d batches of one operationId, want none", got)
			}
			// A blank one is none, and another name passes.
			for _, query := range []string{"operationId=", "operationIdx=1"} {
				resp := e.send(testkit.Request{URL: app + "/batch?" + query, ContentType: batchType, Header: caller.Clone(),
					Body: batchBody(part(`{"to":"4255551234","operationId":"` + query + `"}`))})
				if resp.Status != http.StatusCreated {
					t.Errorf("?%s: %d %s, want 201", query, resp.Status, resp.Body)
				}
			}
		})
	}
}

// TestIdempotencyCookieOperationID: a Cookie named operationId (any
// letter case, trimmed) with a value is refused 400 and not delivered,
// on a request and on a batch. ASP.NET's Request[name] reads a cookie
// when the query and the form have none (as the edge refuses a
// destination there): a pool reading operationId so read the cookie's,
// where the edge keyed the body's, or none, and delivered the request
// again.
func TestIdempotencyCookieOperationID(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	const app = "/ucwa/v1/applications/1"
	withCookie := func(cookie string) http.Header {
		h := caller.Clone()
		h.Set("Cookie", cookie)
		return h
	}
	for _, st := range idemStores {
		t.Run(st.name, func(t *testing.T) {
			pool := newIdemPool(t, "primary")
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.config(t), "primary "+pool.Addr()))
			for _, c := range []struct{ cookie, body string }{
				{"operationId=c-1", `{"to":"4255551234"}`},
				{"operationId=c-1", `{"to":"4255551234"}`},
				{"operationId=c-1", `{"to":"4255551234","operationId":"own-1"}`},
				{"operationId=c-1", `{"to":"4255551234","operationId":"own-2"}`},
				{"a=1; OPERATIONID =c-1", `{"to":"4255551234"}`},
				{"a=1, operationid=c-1", `{"to":"4255551234"}`},
			} {
				resp := e.call(idemCall{header: withCookie(c.cookie), body: c.body})
				if resp.Status != http.StatusBadRequest || !strings.Contains(resp.Body, "operationId") {
					t.Errorf("Cookie %s, body %s: %d %s, want 400 naming operationId", c.cookie, c.body, resp.Status, resp.Body)
				}
			}
			batch := e.send(testkit.Request{URL: app + "/batch", ContentType: batchType, Header: withCookie("operationId=c-1"),
				Body: batchBody(innerPOST(app+"/communication/startPhoneAudio", "application/json", `{"to":"4255551234"}`))})
			if batch.Status != http.StatusBadRequest {
				t.Errorf("a batch with the cookie: %d %s, want 400", batch.Status, batch.Body)
			}
			if got := pool.Requests.Load(); got != 0 {
				t.Fatalf("the pool received %d requests of one operationId, want none", got)
			}
			// A blank one is none, and another name passes.
			for _, cookie := range []string{"operationId=", "operationIds=1"} {
				if resp := e.call(idemCall{header: withCookie(cookie), op: cookie}); resp.Status != http.StatusCreated {
					t.Errorf("Cookie %s: %d %s, want 201", cookie, resp.Status, resp.Body)
				}
			}
		})
	}
}
