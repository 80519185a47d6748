package caddymodule

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
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
					// answered (those before it are, however long the test
					// takes to send it).
					if c.head() == nil {
						return false
					}
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
			block := h2TransportWith(setup.versions, caFile, "response_header_timeout 1s", "")
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

// newStallingH2Pool starts an HTTP/2 pool whose connections start with
// a stream window of 0: its first request is granted its body and
// answered, every later one is never granted a byte.
func newStallingH2Pool(t *testing.T, overTLS bool) *h2Pool {
	return newH2PoolWithSettings(t, overTLS, []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 0}},
		func(c *h2Conn, _ int) bool {
			req := c.head()
			if req == nil {
				return false
			}
			if c.p.nextTurn() == 0 {
				return c.cont(req) && c.grant(req, req.contentLength) && c.body(req) && c.created(req)
			}
			for c.next() != nil { // no window, ever
			}
			return false
		})
}

// TestPoolHTTP2FlowControlStall: a pool that speaks HTTP/2, starts its
// connections with a stream window of 0 (which is legal) and grants the
// second request's stream none, so its body never goes out and Go's
// response header timer never starts: the attempt ends once the pool's
// response_header_timeout plus expect_continue_timeout passed, answered
// 504 (the stream was reset while its last frame may have been going
// out), and is sent neither to the backup nor again.
func TestPoolHTTP2FlowControlStall(t *testing.T) {
	for _, setup := range h2Setups {
		t.Run(setup.name, func(t *testing.T) {
			primary := newStallingH2Pool(t, setup.overTLS)
			caFile := ""
			if setup.overTLS {
				caFile = primary.caFile(t)
			}
			backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
			e := startEdge(t, "caddyfile", poolsCaddyfile("\t\tprimary "+primary.URL()+stallTransport(setup.versions, caFile)+"\n\t\tbackup "+backup.Addr()), testkit.WithAdmin())
			if resp := e.startPhoneAudio("warm"); resp.Status != http.StatusCreated {
				t.Fatalf("the first request: %d %s", resp.Status, resp.Body)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			resp, err := testkit.Do(e.Client(), testkit.Request{URL: e.url("/ucwa/v1/applications/1/communication/startPhoneAudio"),
				ContentType: "application/json", Body: `{"to":"4255551234","operationId":"stalled"}`, Context: ctx})
			if err != nil || resp.Status != http.StatusGatewayTimeout {
				t.Fatalf("the stalled request: %d %s %v, want 504", resp.Status, resp.Body, err)
			}
			if n := countOp(backup.OperationIDs(), "stalled"); n != 0 {
				t.Errorf("the backup got the stalled request %d times", n)
			}
			if got := e.Metric(`caddy_ucwa_pool_requests_total{outcome="timeout",pool="primary"}`); got != 1 {
				t.Errorf("primary timeouts: %v, want 1", got)
			}
		})
	}
}

// TestPoolHTTP2SlowBodyNotCut: a pool that speaks HTTP/2 answers 201 in
// time and takes longer than the stall clock's bound to send the body:
// the client gets the whole answer, with reverse_proxy's
// response_buffers too (which reads the body before the header goes on).
// Each case is a site of one config, and the slow bodies come side by
// side.
func TestPoolHTTP2SlowBodyNotCut(t *testing.T) {
	const chunk, chunks = "0123456789", 6
	type site struct{ name, port string }
	var sites []site
	config := ""
	for _, buffers := range []string{"", "response_buffers 1MB"} {
		for _, setup := range h2Setups {
			primary := newH2Pool(t, setup.overTLS, func(c *h2Conn, _ int) bool {
				req := c.head()
				if !c.cont(req) || !c.body(req) ||
					!c.headers(req.stream, false, ":status", "201", "content-type", "text/plain", "content-length", strconv.Itoa(chunks*len(chunk))) {
					return false
				}
				for i := range chunks {
					time.Sleep(250 * time.Millisecond)
					if c.fr.WriteData(req.stream, i == chunks-1, []byte(chunk)) != nil {
						return false
					}
				}
				return true
			})
			caFile := ""
			if setup.overTLS {
				caFile = primary.caFile(t)
			}
			block := h2TransportWith(setup.versions, caFile, stallTimeouts, buffers)
			s := site{fmt.Sprintf("%s/buffers=%v", setup.name, buffers != ""), fmt.Sprintf("CASE%d_PORT", len(sites))}
			config += poolsSite(s.port, "\t\tprimary "+primary.URL()+block)
			sites = append(sites, s)
		}
	}
	edges := startEdge(t, "caddyfile", config)
	for _, s := range sites {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			if resp := edges.site(t, s.port).startPhoneAudio("slow-body"); resp.Status != http.StatusCreated || resp.Body != strings.Repeat(chunk, chunks) {
				t.Errorf("%d %q, want 201 and the pool's %d bytes", resp.Status, resp.Body, chunks*len(chunk))
			}
		})
	}
}

// TestPoolHTTP1NoStallClock: a pool whose transport may speak HTTP/2
// (versions 1.1 2) but whose ALPN chose HTTP/1.1 (IIS before 10) reads
// a large body only after the stall clock's bound: Go's own response
// header timer, which starts once the body went out, is the only clock,
// and the pool's answer reaches the client.
func TestPoolHTTP1NoStallClock(t *testing.T) {
	pool := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(3 * time.Second) // past the stall clock's 2s
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	pool.EnableHTTP2 = false
	pool.StartTLS()
	t.Cleanup(pool.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pool.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	// Go's response header timer, 1.5s from the body's end, leaves the
	// pool room to answer however busy the machine.
	block := h2TransportWith("1.1 2", caFile, "response_header_timeout 1500ms\n\t\t\t\texpect_continue_timeout 500ms", "")
	e := startEdge(t, "caddyfile", strings.Replace(poolsCaddyfile("\t\tprimary "+pool.URL+block),
		"jwt off", "jwt off\n\t\tmax_body_size 32MiB", 1))
	// More than the kernel's buffers hold while the pool does not read.
	body := `{"to":"4255551234","operationId":"big","x":"` + strings.Repeat("a", 16<<20) + `"}`
	if resp := e.postJSON("/ucwa/v1/applications/1/communication/startPhoneAudio", body, nil); resp.Status != http.StatusCreated {
		t.Errorf("%d %.200s, want the pool's 201", resp.Status, resp.Body)
	}
}

// stallTimeouts give a pool's transport a stall clock of 700ms.
const stallTimeouts = "response_header_timeout 500ms\n\t\t\t\texpect_continue_timeout 200ms"

// stallTransport is a pool block whose transport speaks versions, trusts
// caFile ("": the system's roots), and has a stall clock of 700ms.
func stallTransport(versions, caFile string) string {
	return h2TransportWith(versions, caFile, stallTimeouts, "")
}
