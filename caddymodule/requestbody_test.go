package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestRequestBodyMaxSizeBeforeEdge: Caddy's request_body before the
// edge bounds a body lower than max_body_size. A chunked body over that
// bound (Caddy refuses a Content-Length over it itself, before the edge)
// is refused 413 EntityTooLarge naming the bound that refused it, not
// max_body_size, which the body is within; nothing reaches the pool. A
// body within both passes.
func TestRequestBodyMaxSizeBeforeEdge(t *testing.T) {
	pool := testkit.NewUpstream(t)
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	request_body {
		max_size 100
	}
	ucwa {
		jwt {
			algorithms HS256
			hmac_secret {env.UCWA_TEST_JWT_SECRET}
		}
		default_region US
	}
	reverse_proxy %s
}`, pool.Addr()))
	addr := testkit.Addr(e.Port("EDGE_PORT"))
	token := bearerFor(t, allScopes...)
	for _, tc := range []struct {
		name    string
		subject int // the length of the body's subject
		status  int
	}{
		{"over request_body's max_size", 150, http.StatusRequestEntityTooLarge},
		{"within it", 10, http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"to":"4255551234","subject":"` + strings.Repeat("x", tc.subject) + `"}`
			before := len(pool.Received())
			resp := testkit.SendRaw(t, addr, "POST "+startPath+" HTTP/1.1\r\nHost: edge\r\nAuthorization: "+token+
				"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"+
				fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body))
			got := len(pool.Received()) - before
			if resp.Status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, tc.status)
			}
			if tc.status == http.StatusCreated {
				if got != 1 {
					t.Fatalf("the pool got %d requests, want 1", got)
				}
				return
			}
			assertUCWAError(t, resp, "EntityTooLarge", "EntityTooLarge", nil, false)
			if msg := ucwaError(t, resp.Body).Message; msg != "The body is larger than 100 bytes." {
				t.Errorf("message %q, want it to name request_body's max_size, 100 bytes", msg)
			}
			if got != 0 {
				t.Errorf("the pool got %d requests, want none", got)
			}
		})
	}
}

// TestMaxBodySizeChunked: a chunked body, whose length nothing declares,
// is read up to max_body_size and refused 413 EntityTooLarge naming that
// bound once it goes past it, its first byte past the bound included;
// nothing reaches the pool. A body of exactly the bound passes.
func TestMaxBodySizeChunked(t *testing.T) {
	pool := testkit.NewUpstream(t)
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		jwt {
			algorithms HS256
			hmac_secret {env.UCWA_TEST_JWT_SECRET}
		}
		default_region US
		max_body_size 100
	}
	reverse_proxy %s
}`, pool.Addr()))
	addr := testkit.Addr(e.Port("EDGE_PORT"))
	token := bearerFor(t, allScopes...)
	const frame = `{"to":"4255551234","subject":""}` // the body, its subject empty
	for _, tc := range []struct {
		name   string
		size   int // of the body
		status int
	}{
		{"one byte over max_body_size", 101, http.StatusRequestEntityTooLarge},
		{"far over it", 5000, http.StatusRequestEntityTooLarge},
		{"exactly max_body_size", 100, http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"to":"4255551234","subject":"` + strings.Repeat("x", tc.size-len(frame)) + `"}`
			// In chunks of 10 bytes, so that the body's length shows
			// nowhere but in its end.
			var chunks strings.Builder
			for rest := body; rest != ""; {
				n := min(10, len(rest))
				fmt.Fprintf(&chunks, "%x\r\n%s\r\n", n, rest[:n])
				rest = rest[n:]
			}
			before := len(pool.Received())
			resp := testkit.SendRaw(t, addr, "POST "+startPath+" HTTP/1.1\r\nHost: edge\r\nAuthorization: "+token+
				"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"+chunks.String()+"0\r\n\r\n")
			got := len(pool.Received()) - before
			if resp.Status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, tc.status)
			}
			if tc.status == http.StatusCreated {
				if got != 1 {
					t.Fatalf("the pool got %d requests, want 1", got)
				}
				return
			}
			assertUCWAError(t, resp, "EntityTooLarge", "EntityTooLarge", nil, false)
			if msg := ucwaError(t, resp.Body).Message; msg != "The body is larger than 100 bytes." {
				t.Errorf("message %q, want it to name max_body_size, 100 bytes", msg)
			}
			if got != 0 {
				t.Errorf("the pool got %d requests, want none", got)
			}
		})
	}
}
