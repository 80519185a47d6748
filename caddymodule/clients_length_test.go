package caddymodule

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestBodyShorterThanContentLength: a request whose body ends before the
// Content-Length it declared is malformed (RFC 9113 8.1.1, RFC 9114
// 4.1.2), and an intermediary must not forward it. net/http's HTTP/1.1
// server fails the read of such a body (TestBodyCutShort), and its
// HTTP/2 server that of a body ending in a DATA frame; but the HTTP/2
// server takes HEADERS that end the stream as a request without a body
// whatever its content-length (Go 1.26; Go 1.27's resets the stream
// itself, PROTOCOL_ERROR, as it does a request with two content-length
// fields of different values), and quic-go's HTTP/3 server checks only a
// body longer than its Content-Length, ending a shorter one at the
// client's FIN as if it were whole. The edge refuses them all 400
// DeserializationFailure, and none reaches a pool: a request with every
// input in its query, or with a body that still parses, is not the
// request the client sent. So is a request with two content-length
// fields of different values, which quic-go's HTTP/3 server refuses and
// Go's HTTP/2 server takes, holding the body to the first alone: a body
// of the first's length went through, though the second declared
// another. A body of its length (in one field or two that agree), one
// without a Content-Length, and a query-only request with Content-Length
// 0 (or none) still go through.
func TestBodyShorterThanContentLength(t *testing.T) {
	pool := newTrailerPool(t)
	e := startClientEdge(t, pool.Addr(), "")
	h3conn := dialH3(t, e)
	const query = "?to=tel:%2B14255551234&operationId=q"
	length := strconv.Itoa(len(h2h3Body))
	for _, tc := range []struct {
		name, path, body string
		lengths          []string // the content-length fields, none for no Content-Length
		status           int
		// Over HTTP/2 from Go 1.27 on (h2Resets) and HTTP/3 (h3Resets) the
		// server resets the stream instead: the request never reaches the
		// edge.
		h2Resets, h3Resets bool
	}{
		{"JSON body, Content-Length 100", startPath, h2h3Body, []string{"100"}, http.StatusBadRequest, false, false},
		{"no body, inputs in the query, Content-Length 100", startPath + query, "", []string{"100"}, http.StatusBadRequest, true, false},
		{"JSON body of its Content-Length, then Content-Length 100", startPath, h2h3Body, []string{length, "100"}, http.StatusBadRequest, true, true},
		{"JSON body, Content-Length 100, then its Content-Length", startPath, h2h3Body, []string{"100", length}, http.StatusBadRequest, true, true},
		{"no body, inputs in the query, Content-Length 0, then 100", startPath + query, "", []string{"0", "100"}, http.StatusBadRequest, true, true},
		{"JSON body of its Content-Length", startPath, h2h3Body, []string{length}, http.StatusCreated, false, false},
		{"JSON body of its Content-Length, twice", startPath, h2h3Body, []string{length, length}, http.StatusCreated, false, false},
		{"JSON body, no Content-Length", startPath, h2h3Body, nil, http.StatusCreated, false, false},
		{"no body, inputs in the query, Content-Length 0", startPath + query, "", []string{"0"}, http.StatusCreated, false, false},
		{"no body, inputs in the query, no Content-Length", startPath + query, "", nil, http.StatusCreated, false, false},
	} {
		fields := []string{":method", "POST", ":scheme", "https", ":authority", e.host, ":path", tc.path}
		if tc.body != "" {
			fields = append(fields, "content-type", "application/json")
		}
		for _, l := range tc.lengths {
			fields = append(fields, "content-length", l)
		}
		check := func(t *testing.T, before, status int, body, reset string, resets bool) {
			t.Helper()
			if resets {
				if status != 0 || reset == "" {
					t.Errorf("status %d (%s), body %s; want the stream reset", status, reset, body)
				}
			} else if status != tc.status {
				t.Fatalf("status %d (%s), body %s; want %d", status, reset, body, tc.status)
			} else if tc.status == http.StatusBadRequest && !strings.Contains(body, `"subcode":"DeserializationFailure"`) {
				t.Errorf("body %s, want DeserializationFailure", body)
			}
			want := 0
			if tc.status == http.StatusCreated {
				want = 1
			}
			if n := len(pool.Received()) - before; n != want {
				t.Errorf("the pool got %d requests, want %d", n, want)
			}
		}
		t.Run("h2/"+tc.name, func(t *testing.T) {
			before := len(pool.Received())
			a := sendH2(t, e, fields, tc.body)
			check(t, before, a.status, a.body, a.reset, tc.h2Resets && h2ServerResetsMalformedLength)
		})
		t.Run("h3/"+tc.name, func(t *testing.T) {
			before := len(pool.Received())
			a := sendH3(t, h3conn, fields, tc.body)
			check(t, before, a.status, a.body, a.reset, tc.h3Resets)
		})
	}
}

// TestBodySetBeforeEdge: a body that a handler before the edge set
// (request_body's set) is the one judged and delivered, although the
// client's Content-Length, still in the header, gave another length:
// the edge compares the body with the length the server read
// (Request.ContentLength, which request_body sets), and reads the
// content-length field itself only where Go's HTTP/2 server ignored it
// (HEADERS that end the stream).
func TestBodySetBeforeEdge(t *testing.T) {
	pool := testkit.NewUpstream(t)
	const set = `{"to":"tel:+14255551234","operationId":"set"}`
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	route {
		request_body {
			set %s
		}
		ucwa {
			jwt off
			default_region US
			primary %s
		}
	}
}`, "`"+set+"`", pool.Addr()))
	resp := e.postJSON(startPath, h2h3Body, nil)
	if resp.Status != http.StatusCreated {
		t.Fatalf("status %d %s, want 201", resp.Status, resp.Body)
	}
	if got := pool.Received(); len(got) != 1 || got[0].Body != set {
		t.Fatalf("the pool got %+v, want the body set once", got)
	}
}
