package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestChunkedBodyBounds: a chunked body, whose length nothing declares,
// is read up to the lowest bound on it and refused 413 EntityTooLarge
// naming that bound once it goes past it, by one byte or by far; nothing
// reaches the pool. A body of exactly the bound passes. The bound is the
// edge's max_body_size, or Caddy's request_body before the edge when its
// max_size is lower (Caddy refuses a Content-Length over it itself,
// before the edge), within which the body is.
func TestChunkedBodyBounds(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	token := bearerFor(t, allScopes...)
	const frame = `{"to":"4255551234","subject":""}` // a body, its subject empty
	for _, bound := range []struct{ name, before, option string }{
		{"max_body_size", "", "max_body_size 100"},
		{"request_body's max_size", "request_body {\n\t\tmax_size 100\n\t}", ""},
	} {
		t.Run(bound.name, func(t *testing.T) {
			pool := testkit.NewUpstream(t)
			e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	%s
	ucwa {
		jwt {
			algorithms HS256
			hmac_secret {env.UCWA_TEST_JWT_SECRET}
		}
		default_region US
		%s
	}
	reverse_proxy %s
}`, bound.before, bound.option, pool.Addr()))
			addr := testkit.Addr(e.Port("EDGE_PORT"))
			for _, tc := range []struct {
				name   string
				size   int // of the body
				status int
			}{
				{"one byte over the bound", 101, http.StatusRequestEntityTooLarge},
				{"far over it", 5000, http.StatusRequestEntityTooLarge},
				{"exactly the bound", 100, http.StatusCreated},
			} {
				t.Run(tc.name, func(t *testing.T) {
					body := `{"to":"4255551234","subject":"` + strings.Repeat("x", tc.size-len(frame)) + `"}`
					// In chunks of 10 bytes, so that the body's length
					// shows nowhere but in its end.
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
						t.Errorf("message %q, want it to name the bound, 100 bytes", msg)
					}
					if got != 0 {
						t.Errorf("the pool got %d requests, want none", got)
					}
				})
			}
		})
	}
}
