package caddymodule

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestHTTP3BodyShorterThanContentLength: over HTTP/3, a body that ends
// (the client's FIN) before the Content-Length it declared is malformed
// (RFC 9114 4.1.2), and an intermediary must not forward it; quic-go's
// server checks only a body longer than its Content-Length. The edge
// refuses it 400 DeserializationFailure, as net/http's HTTP/1.1 and
// HTTP/2 servers fail such a body (TestBodyCutShort), and it reaches no
// pool: a body cut short, its query (which may carry every input) or a
// body that still parses, is not the request the client sent. A body
// of its length, and one without a Content-Length, still go through.
func TestHTTP3BodyShorterThanContentLength(t *testing.T) {
	pool := newTrailerPool(t)
	e := startClientEdge(t, pool.Addr(), "")
	conn := dialH3(t, e)
	query := "?to=tel:%2B14255551234&operationId=q"
	for _, tc := range []struct {
		name, path, body string
		length           string // "" for no Content-Length
		status           int
	}{
		{"JSON body, Content-Length 100", startPath, h2h3Body, "100", http.StatusBadRequest},
		{"no body, inputs in the query, Content-Length 100", startPath + query, "", "100", http.StatusBadRequest},
		{"JSON body of its Content-Length", startPath, h2h3Body, strconv.Itoa(len(h2h3Body)), http.StatusCreated},
		{"JSON body, no Content-Length", startPath, h2h3Body, "", http.StatusCreated},
		{"no body, inputs in the query, Content-Length 0", startPath + query, "", "0", http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(pool.Received())
			s := openH3(t, conn)
			fields := []string{":method", "POST", ":scheme", "https", ":authority", e.host, ":path", tc.path}
			if tc.body != "" {
				fields = append(fields, "content-type", "application/json")
			}
			if tc.length != "" {
				fields = append(fields, "content-length", tc.length)
			}
			s.headers(fields...)
			if tc.body != "" {
				s.data(tc.body)
			}
			_ = s.str.Close()
			status, body, err := s.answer()
			if err != nil || status != tc.status {
				t.Fatalf("status %d, %v, body %s; want %d", status, err, body, tc.status)
			}
			if tc.status == http.StatusBadRequest && !strings.Contains(body, `"subcode":"DeserializationFailure"`) {
				t.Errorf("body %s, want DeserializationFailure", body)
			}
			want := 0
			if tc.status == http.StatusCreated {
				want = 1
			}
			if n := len(pool.Received()) - before; n != want {
				t.Errorf("the pool got %d requests, want %d", n, want)
			}
		})
	}
}
