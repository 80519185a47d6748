package caddymodule

import (
	"net/http"
	"testing"
)

// TestClientsH2H3Framing: what the edge's framing and cookie checks
// read holds over HTTP/2 and HTTP/3 as over HTTP/1.1, where the servers
// frame a request otherwise:
//
//   - trailers declared (the servers take the Trailer field out of the
//     header into Request.Trailer) and sent after the body, carrying a
//     destination: 400, no delivery;
//   - trailer fields sent without a declaration: the servers keep them
//     on their own copy of the request (HTTP/2 drops them, quic-go sets
//     them on its request after the edge's copy was made), so the
//     request is delivered once with the body it came with, and the pool
//     gets no trailer and no header of that name;
//   - cookies split across several cookie fields (RFC 9113 8.2.3; Go's
//     HTTP/2 server joins them, quic-go does not), one named like a
//     destination: 400 naming it, no delivery;
//   - over HTTP/2, DATA after END_STREAM: the stream is reset, and the
//     request is delivered once.
func TestClientsH2H3Framing(t *testing.T) {
	pool := newTrailerPool(t)
	e := startClientEdge(t, pool.Addr(), "")
	h3conn := dialH3(t, e)
	type outcome struct {
		status int
		body   string
	}
	for _, tc := range []struct {
		name     string
		h2       func(c *h2Client) h2Answer
		h3       func(s *h3Stream)
		status   int
		param    string // the parameter a 400 names, if any
		delivers bool
	}{
		{
			name: "trailer declared and sent",
			h2: func(c *h2Client) h2Answer {
				c.request(e, 1, false, "trailer", "to")
				c.data(1, false, h2h3Body)
				c.headers(1, true, "to", "tel:+19005551234")
				return c.answer(1)
			},
			h3: func(s *h3Stream) {
				s.request(e, "trailer", "to")
				s.data(h2h3Body)
				s.headers("to", "tel:+19005551234")
			},
			status: http.StatusBadRequest,
		},
		{
			name: "trailer sent undeclared",
			h2: func(c *h2Client) h2Answer {
				c.request(e, 1, false)
				c.data(1, false, h2h3Body)
				c.headers(1, true, "to", "tel:+19005551234")
				return c.answer(1)
			},
			h3: func(s *h3Stream) {
				s.request(e)
				s.data(h2h3Body)
				s.headers("to", "tel:+19005551234")
			},
			status: http.StatusCreated, delivers: true,
		},
		{
			name: "cookies split, one a destination",
			h2: func(c *h2Client) h2Answer {
				c.request(e, 1, false, "cookie", "a=b", "cookie", "to=tel:+19005551234")
				c.data(1, true, h2h3Body)
				return c.answer(1)
			},
			h3: func(s *h3Stream) {
				s.request(e, "cookie", "a=b", "cookie", "to=tel:+19005551234")
				s.data(h2h3Body)
			},
			status: http.StatusBadRequest, param: "to",
		},
	} {
		check := func(t *testing.T, before int, got outcome, reset string) {
			t.Helper()
			if got.status != tc.status {
				t.Fatalf("status %d (%s), body %s; want %d", got.status, reset, got.body, tc.status)
			}
			if tc.param != "" {
				e := ucwaError(t, got.body)
				if len(e.Parameters) != 1 || e.Parameters[0].Name != tc.param {
					t.Errorf("parameters %+v, want %s", e.Parameters, tc.param)
				}
			}
			received := pool.Received()[before:]
			if !tc.delivers {
				if len(received) != 0 {
					t.Fatalf("the pool got %d requests, want none", len(received))
				}
				return
			}
			if len(received) != 1 {
				t.Fatalf("the pool got %d requests, want 1", len(received))
			}
			if r := received[0]; r.Body != h2h3Body || len(r.Header["To"]) > 0 {
				t.Errorf("the pool got %q with header %v, want the body as sent and no To", r.Body, r.Header)
			}
			pool.mu.Lock()
			trailer := pool.trailers[len(pool.trailers)-1]
			pool.mu.Unlock()
			if len(trailer) > 0 {
				t.Errorf("the pool got trailers %v", trailer)
			}
		}
		t.Run("h2/"+tc.name, func(t *testing.T) {
			before := len(pool.Received())
			a := tc.h2(dialH2(t, e))
			check(t, before, outcome{a.status, a.body}, a.reset)
		})
		t.Run("h3/"+tc.name, func(t *testing.T) {
			before := len(pool.Received())
			s := openH3(t, h3conn)
			tc.h3(s)
			_ = s.str.Close()
			status, body, reset := s.answer()
			check(t, before, outcome{status, body}, reset)
		})
	}

	t.Run("h2/DATA after END_STREAM", func(t *testing.T) {
		before := len(pool.Received())
		c := dialH2(t, e)
		const body = `{"to":"tel:+14255551234","operationId":"after-end"}`
		c.request(e, 1, false)
		c.data(1, true, body)
		c.data(1, true, body)
		// The server resets the stream for the second DATA, which cancels
		// the request as a client gone would, wherever it is: it reaches
		// the pool once or not at all.
		a := c.answer(1)
		if a.status != http.StatusCreated && a.reset != "RST_STREAM STREAM_CLOSED" {
			t.Errorf("status %d (%s), want 201 or the stream reset", a.status, a.reset)
		}
		e.Logs().Wait(t, `"msg":"guarded request"`, `"operation_id":"after-end"`)
		if n := len(pool.Received()) - before; n > 1 {
			t.Errorf("the pool got %d requests, want one at most", n)
		}
	})
}
