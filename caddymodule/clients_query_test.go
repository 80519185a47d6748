package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestQueryRawSpace: over HTTP/2 and HTTP/3 a request's :path may hold a
// raw space, which no HTTP/1.1 request line can carry (the space ends
// its target). A raw space in the query of a terminated request is
// refused 400 DeserializationFailure, as a '#' is, and reaches no pool:
// the edge forwards the query as it came (but the values it
// normalizes), and the request line it wrote to the pool was malformed
// (`?operationId=a b HTTP/1.1`), which a pool refused or broke off,
// answered 502 ServiceFailure by the edge itself and logged as a pool
// failure, its operationId taken for one that may have been carried out.
// The space percent-encoded (%20), or `+`, goes through; a space in the
// path is escaped by the proxy and goes through too (a trailing one is
// trimmed, as IIS does).
func TestQueryRawSpace(t *testing.T) {
	pool := testkit.NewRawUpstream(t)
	e := startClientEdge(t, pool.Addr(), "")
	h3conn := dialH3(t, e)
	const to = "?to=tel:%2B14255551234"
	for _, tc := range []struct {
		name, path string
		status     int
	}{
		{"a space in a value", startPath + to + "&operationId=a b", http.StatusBadRequest},
		{"a space in a value the edge does not read", startPath + to + "&operationId=ab&x=1 2", http.StatusBadRequest},
		{"a space after the query", startPath + to + "&operationId=ab ", http.StatusBadRequest},
		{"a space percent-encoded", startPath + to + "&operationId=a%20b", http.StatusCreated},
		{"a space as +", startPath + to + "&operationId=a+b", http.StatusCreated},
		{"a space at the end of the path", startPath + " " + to + "&operationId=ab", http.StatusCreated},
	} {
		fields := []string{":method", "POST", ":scheme", "https", ":authority", e.host, ":path", tc.path}
		check := func(t *testing.T, before, status int, body, reset string) {
			t.Helper()
			if status != tc.status {
				t.Fatalf("status %d (%s), body %s; want %d", status, reset, body, tc.status)
			}
			want := 1
			if tc.status == http.StatusBadRequest {
				want = 0
				if !strings.Contains(body, `"subcode":"DeserializationFailure"`) {
					t.Errorf("body %s, want DeserializationFailure", body)
				}
			}
			if n := len(pool.Received()) - before; n != want {
				t.Errorf("the pool got %d requests, want %d", n, want)
			}
		}
		t.Run("h2/"+tc.name, func(t *testing.T) {
			before := len(pool.Received())
			a := sendH2(t, e, fields, "")
			check(t, before, a.status, a.body, a.reset)
		})
		t.Run("h3/"+tc.name, func(t *testing.T) {
			before := len(pool.Received())
			a := sendH3(t, h3conn, fields, "")
			check(t, before, a.status, a.body, a.reset)
		})
	}
}
