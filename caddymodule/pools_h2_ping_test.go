package caddymodule

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestPoolHTTP2SilentConnRetired: a pool's HTTP/2 connection that goes
// silent after a request (it reads and drops every frame, answers none,
// not even a PING, and stays open, as behind a NAT that lost it), while
// new connections are served: the request on it is answered 502 or 504
// (it may have reached the pool), and once the transport's ping of the
// connection goes unanswered it is closed, so that later requests go out
// on a new connection and are delivered, each once.
func TestPoolHTTP2SilentConnRetired(t *testing.T) {
	saved := poolHTTP2Ping
	poolHTTP2Ping.idle, poolHTTP2Ping.timeout = 200*time.Millisecond, 200*time.Millisecond
	t.Cleanup(func() { poolHTTP2Ping = saved })
	for _, setup := range h2Setups {
		t.Run(setup.name, func(t *testing.T) {
			var conns int
			primary := newH2Pool(t, setup.overTLS, func(c *h2Conn, nth int) bool {
				c.p.mu.Lock()
				if nth == 0 {
					conns++
				}
				conn := conns
				c.p.mu.Unlock()
				if conn == 1 && nth == 1 {
					// Silent from the second request on: not even a PING is
					// answered.
					for {
						if _, err := c.fr.ReadFrame(); err != nil {
							return false
						}
					}
				}
				return serveH2(c)
			})
			caFile := ""
			if setup.overTLS {
				caFile = primary.caFile(t)
			}
			block := h2Transport(setup.versions, caFile)
			block = block[:len(block)-len("\n\t\t\t}\n\t\t}")] + "\n\t\t\t\tresponse_header_timeout 1s\n\t\t\t}\n\t\t}"
			e := startEdge(t, "caddyfile", poolsCaddyfile("\t\tprimary "+primary.URL()+block))
			if resp := e.startPhoneAudio("warm"); resp.Status != http.StatusCreated {
				t.Fatalf("the first request: %d %s", resp.Status, resp.Body)
			}
			// It may have reached the pool: 502 once the unanswered ping
			// closed the connection, 504 if response_header_timeout came
			// first.
			if resp := e.startPhoneAudio("on-the-silent-connection"); resp.Status != http.StatusBadGateway && resp.Status != http.StatusGatewayTimeout {
				t.Fatalf("the request on the silent connection: %d %s, want 502 or 504", resp.Status, resp.Body)
			}
			// Requests would go on to the silent connection (504) until its
			// ping goes unanswered; then to a new one.
			delivered := ""
			for i := 0; delivered == "" && i < 40; i++ {
				op := fmt.Sprintf("after-%d", i)
				switch resp := e.startPhoneAudio(op); resp.Status {
				case http.StatusCreated:
					delivered = op
				case http.StatusGatewayTimeout:
				default:
					t.Fatalf("%s: %d %s", op, resp.Status, resp.Body)
				}
			}
			if delivered == "" {
				t.Fatal("no request was delivered after the silent connection: it was never closed")
			}
			seen := map[string]int{}
			for _, op := range primary.Complete() {
				seen[op]++
			}
			for op, n := range seen {
				if n > 1 {
					t.Errorf("the pool got %s %d times", op, n)
				}
			}
		})
	}
}
