package caddymodule

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestPoolAnswerCutShort: a pool that reads the request whole, sends the
// headers of its answer and part of its body, then closes the
// connection. reverse_proxy cannot pass the answer on whole once it
// began to: it aborts the client's connection (it panics with
// http.ErrAbortHandler, out of the edge's attempt). The client gets the
// headers and part of the body at most; the request is not sent again,
// to the pool or the backup; the edge counts the attempt
// (outcome="cut_short") and warns; with idempotency the key stays
// reserved, so a repeat gets 409.
func TestPoolAnswerCutShort(t *testing.T) {
	for _, st := range idemStores {
		t.Run(st.name, func(t *testing.T) {
			primary := newCutShortPool(t)
			backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.config(t),
				"primary "+primary.Addr(), "backup "+backup.Addr()), testkit.WithAdmin())
			c := idemCall{header: idemToken(t, "tenant-1", "oid-a", "sub-a"), op: "cut-short-1"}
			resp, err := e.Client().Do(mustRequest(t, e, c))
			if err == nil {
				body, readErr := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if readErr == nil {
					t.Fatalf("the client got a whole answer: %d %q", resp.StatusCode, body)
				}
			}
			// The README's What to watch row: a warning of the edge's
			// logger, once; the edge gave no answer of its own.
			e.Logs().Wait(t, `"msg":"pool answer cut short"`, `"pool":"primary"`, `"level":"warn"`, `"logger":"http.handlers.ucwa"`)
			if got := e.Metric(`caddy_ucwa_pool_requests_total{outcome="cut_short",pool="primary"}`); got != 1 {
				t.Errorf("cut_short attempts of the primary: %v, want 1", got)
			}
			if metrics := e.Metrics(); strings.Contains(metrics, "caddy_ucwa_edge_answers_total{") {
				t.Errorf("an answer of the edge's counted for an answer cut short:\n%s", metrics)
			}
			assertConflict(t, e.call(c))
			if n := len(e.Logs().Lines(`"msg":"pool answer cut short"`)); n != 1 {
				t.Errorf("%d warnings of the answer cut short, want one", n)
			}
			if got, want := primary.Complete(), []string{c.op}; strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("the primary read %v whole, want %v", got, want)
			}
			if got := len(backup.Received()); got != 0 {
				t.Errorf("the backup received %d requests", got)
			}
		})
	}
}

// mustRequest is c as an *http.Request to the edge.
func mustRequest(t *testing.T, e edge, c idemCall) *http.Request {
	t.Helper()
	tr := c.request()
	req, err := http.NewRequest(http.MethodPost, e.url(tr.URL), strings.NewReader(tr.Body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = tr.Header.Clone()
	req.Header.Set("Content-Type", tr.ContentType)
	return req
}

// newCutShortPool is a pool that reads each request whole, then answers
// 201 with a Content-Length of 100 and closes after a few bytes of it.
func newCutShortPool(t *testing.T) *scriptPool {
	return newScriptPool(t, func(c *scriptConn, _ int) bool {
		req := c.head()
		if !c.cont(req) || !c.body(req) {
			return false
		}
		c.send("HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"cut\":")
		return false
	})
}
