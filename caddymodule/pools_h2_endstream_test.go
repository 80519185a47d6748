package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// grant gives req's stream n bytes of flow control (a pool that starts
// its connections with an initial window of 0).
func (c *h2Conn) grant(req *h2Request, n int64) bool {
	return req != nil && (n <= 0 || c.fr.WriteWindowUpdate(req.stream, uint32(n)) == nil)
}

// TestPoolHTTP2BodyReadWhole: over HTTP/2 a request whose body the
// pool's transport read whole may have reached the pool, whatever the
// transport says of its write: the edge answers 502 and sends it nowhere
// else. Go's HTTP/2 client (x/net's, which Caddy's transport uses over
// TLS and for h2c; net/http's bundled copy alike) ends a request whose
// Trailer is not nil, as reverse_proxy makes it for every request with a
// body, with an empty DATA frame of its own after the body's last byte,
// and reports the write failed when the stream or connection ends before
// that frame goes out: a pool that acts once it has the request's
// Content-Length bytes has it, and failing the request over (to the
// backup, or on a kept-alive connection to the pool again) would deliver
// it twice. That race (TestPoolHTTP2Misbehaving's "reads the
// content-length" rows) is the transport's writer against the pool's
// reset, microseconds wide, which no pool wins on purpose; this test
// gives the edge the same facts (a connection handed over, the body read
// whole, the write ended in error) by a pool that withholds the last
// byte's flow control: its connections start with an initial window of
// 0, it grants each request its length, and the scenario's request one
// byte less (the transport reads a body this small in one read, before
// it waits for the window), and then resets the stream or the
// connection. On a kept-alive connection, whose settings the transport
// had applied before the request's stream opened; a new connection's
// request may send its body under the default window before the
// settings arrive.
func TestPoolHTTP2BodyReadWhole(t *testing.T) {
	for _, sc := range []struct {
		name string
		end  func(c *h2Conn, req *h2Request) bool // false ends the connection
	}{
		{"RST_STREAM INTERNAL_ERROR", func(c *h2Conn, req *h2Request) bool {
			_ = c.fr.WriteRSTStream(req.stream, http2.ErrCodeInternal)
			return true
		}},
		{"RST_STREAM CANCEL", func(c *h2Conn, req *h2Request) bool {
			_ = c.fr.WriteRSTStream(req.stream, http2.ErrCodeCancel)
			return true
		}},
		{"GOAWAY covering the stream, closes", func(c *h2Conn, req *h2Request) bool {
			_ = c.fr.WriteGoAway(req.stream, http2.ErrCodeNo, nil)
			return false
		}},
		{"closes", func(*h2Conn, *h2Request) bool { return false }},
		{"resets the connection", func(c *h2Conn, _ *h2Request) bool { resetConn(c.raw); return false }},
	} {
		for _, setup := range h2Setups {
			for _, withBackup := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/%s/backup=%v", sc.name, setup.name, withBackup), func(t *testing.T) {
					var scenarioBytes int // body bytes the scenario's request sent
					var scenarioLength int64
					primary := newH2PoolWithSettings(t, setup.overTLS, []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 0}},
						func(c *h2Conn, _ int) bool {
							req := c.head()
							if req == nil {
								return false
							}
							if c.p.nextTurn() != 1 {
								return c.cont(req) && c.grant(req, req.contentLength) && c.body(req) && c.created(req)
							}
							if !c.cont(req) || !c.grant(req, req.contentLength-1) {
								return false
							}
							body, ok := c.bodyBytes(req, req.contentLength-1)
							c.p.mu.Lock()
							scenarioBytes, scenarioLength = len(body), req.contentLength
							c.p.mu.Unlock()
							if !ok {
								return false
							}
							return sc.end(c, req)
						})
					caFile := ""
					if setup.overTLS {
						caFile = primary.caFile(t)
					}
					pools := "\t\tprimary " + primary.URL() + h2Transport(setup.versions, caFile)
					var backup *testkit.Pool
					if withBackup {
						backup = testkit.NewPool(t, "backup", testkit.AnswerCreated)
						pools += "\n\t\tbackup " + backup.Addr()
					}
					e := startEdge(t, "caddyfile", poolsCaddyfile(pools))
					if resp := e.startPhoneAudio("op-warm"); resp.Status != http.StatusCreated {
						t.Fatalf("warm: %d %s", resp.Status, resp.Body)
					}
					resp := e.startPhoneAudio("op-x")
					backupGot := 0
					if backup != nil {
						backupGot = countOp(backup.OperationIDs(), "op-x")
					}
					primary.mu.Lock()
					sent, length, primaryTurns, conns := scenarioBytes, scenarioLength, primary.turns, primary.made
					primary.mu.Unlock()
					t.Logf("status %d; primary: %d requests on %d connections, the scenario's %d of %d bytes; backup %d; body %.120q",
						resp.Status, primaryTurns, conns, sent, length, backupGot, resp.Body)
					if length < 2 || length >= 16<<10 || int64(sent) != length-1 {
						t.Fatalf("the scenario's request sent %d of %d bytes, want all but its last (a body the transport reads in one read)", sent, length)
					}
					if resp.Status != http.StatusBadGateway || !strings.Contains(resp.Body, "ServiceFailure") {
						t.Errorf("status %d %q, want 502 ServiceFailure: the transport had read the body whole", resp.Status, resp.Body)
					}
					if backupGot != 0 || primaryTurns != 2 {
						t.Errorf("sent again: backup %d, primary %d requests (want 2: the warm one and the scenario's)", backupGot, primaryTurns)
					}
				})
			}
		}
	}
}
