package caddymodule

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// scriptPool is a front-end pool on a bare listener whose every
// connection runs a script: what a misbehaving IIS (or an appliance in
// front of one) does on the wire. It counts the requests it read whole
// (headers and the body to its Content-Length).
type scriptPool struct {
	*barePool
	script func(c *scriptConn, nth int) bool // false: the connection ends

	complete []string // operationIds of requests read whole
	heads    int      // requests whose headers were read
}

type scriptConn struct {
	net.Conn
	br *bufio.Reader
	p  *scriptPool
}

func newScriptPool(t *testing.T, script func(c *scriptConn, nth int) bool) *scriptPool {
	t.Helper()
	p := &scriptPool{barePool: newBarePool(t), script: script}
	p.start(func(conn net.Conn) {
		c := &scriptConn{conn, bufio.NewReader(conn), p}
		for nth := 0; p.script(c, nth); nth++ {
		}
	})
	return p
}

// startScriptEdge starts an edge whose primary pool is primary, each of
// its requests carrying Expect: 100-continue, with a recording backup
// pool that answers 201 when withBackup (nil without).
func startScriptEdge(t *testing.T, primary *scriptPool, withBackup bool) (edge, *testkit.Pool) {
	t.Helper()
	pools := expectOnEveryRequest + "\t\tprimary " + primary.Addr() + waitForBody
	var backup *testkit.Pool
	if withBackup {
		backup = testkit.NewPool(t, "backup", testkit.AnswerCreated)
		pools += "\n\t\tbackup " + backup.Addr()
	}
	return startEdge(t, "caddyfile", poolsCaddyfile(pools)), backup
}

func (p *scriptPool) Complete() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.complete...)
}

// head reads a request's headers; nil when the connection ended.
func (c *scriptConn) head() *http.Request {
	req, err := http.ReadRequest(c.br)
	if err != nil {
		return nil
	}
	c.p.mu.Lock()
	c.p.heads++
	c.p.mu.Unlock()
	return req
}

// body reads req's body whole, and records the request as received.
func (c *scriptConn) body(req *http.Request) bool {
	if req == nil {
		return false
	}
	b, err := io.ReadAll(req.Body)
	if err != nil || int64(len(b)) != req.ContentLength {
		return false
	}
	c.p.mu.Lock()
	c.p.complete = append(c.p.complete, testkit.Received{Body: string(b)}.OperationID())
	c.p.mu.Unlock()
	return true
}

func (c *scriptConn) send(s string) bool {
	_, err := io.WriteString(c.Conn, s)
	return err == nil
}

func (c *scriptConn) cont(req *http.Request) bool {
	if req == nil {
		return false
	}
	if req.Header.Get("Expect") == "100-continue" {
		return c.send("HTTP/1.1 100 Continue\r\n\r\n")
	}
	return true
}

func (c *scriptConn) halfClose() {
	if tcp, ok := c.Conn.(*net.TCPConn); ok {
		_ = tcp.CloseWrite()
	}
}

const created = "HTTP/1.1 201 Created\r\nLocation: /ucwa/v1/applications/1/communication/invitations/primary\r\nContent-Length: 0\r\n\r\n"

// serveWhole is a well-behaved pool's turn: 100 Continue, body, 201.
func serveWhole(c *scriptConn) bool {
	req := c.head()
	return req != nil && c.cont(req) && c.body(req) && c.send(created)
}

// TestPoolMisbehaving: whatever a pool does on the wire, no request is
// read whole twice (across primary and backup), and the client's answer
// is the pool's, or the edge's for the pools.
func TestPoolMisbehaving(t *testing.T) {
	const (
		answered    = "answered"    // the pool's status (want) reaches the client
		failed      = "failed"      // 502 ServiceFailure
		unavailable = "unavailable" // the backup's 201, or 410 without one
		either      = "either"      // failed or unavailable
	)
	type scenario struct {
		name   string
		warm   bool // a first request is served on the connection first
		turn   func(c *scriptConn) bool
		want   string
		status int
	}
	scenarios := []scenario{
		{"reads part of the headers, closes", false, func(c *scriptConn) bool {
			_, _ = c.br.Peek(10)
			return false
		}, unavailable, 0},
		{"reads the headers, closes", false, func(c *scriptConn) bool { c.head(); return false }, unavailable, 0},
		{"reads the headers, resets", false, func(c *scriptConn) bool { c.head(); resetConn(c.Conn); return false }, unavailable, 0},
		{"100 Continue, then closes", false, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			return false
		}, either, 0},
		{"100 Continue, half the body, closes", false, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			_, _ = io.CopyN(io.Discard, req.Body, req.ContentLength/2)
			return false
		}, either, 0},
		{"early 400 with Connection: close, closes", false, func(c *scriptConn) bool {
			c.head()
			c.send("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbad")
			return false
		}, answered, 400},
		{"early 413, keeps the connection and reads on", false, func(c *scriptConn) bool {
			c.head()
			return c.send("HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\n\r\n")
		}, answered, 413},
		{"early 401 without Connection: close, closes", false, func(c *scriptConn) bool {
			c.head()
			c.send("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
			return false
		}, answered, 401},
		{"early 401, resets", false, func(c *scriptConn) bool {
			c.head()
			c.send("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
			resetConn(c.Conn)
			return false
		}, "any", 0},
		{"417", false, func(c *scriptConn) bool {
			c.head()
			return c.send("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n")
		}, answered, 417},
		{"100 Continue, early 400 before the body, closes", false, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			c.send("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
			return false
		}, "any", 0},
		{"201 with Connection: close, then resets", false, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			c.body(req)
			c.send("HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
			resetConn(c.Conn)
			return false
		}, answered, 201},
		{"reads whole, half-closes without an answer", false, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			c.body(req)
			c.halfClose()
			_, _ = io.Copy(io.Discard, c.br)
			return false
		}, failed, 0},
		{"half-closes after the headers, reads on", false, func(c *scriptConn) bool {
			req := c.head()
			c.halfClose()
			c.body(req)
			_, _ = io.Copy(io.Discard, c.br)
			return false
		}, "any", 0},
		{"100 Continue, half-closes, reads on", false, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			c.halfClose()
			c.body(req)
			_, _ = io.Copy(io.Discard, c.br)
			return false
		}, "any", 0},
		{"reads whole, bad status line", false, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			c.body(req)
			c.send("HTTP/1.1 2O1 Created\r\nContent-Length: 0\r\n\r\n")
			return false
		}, failed, 0},
		{"reads whole, garbage", false, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			c.body(req)
			c.send("\x00\x01garbage\r\n\r\n")
			return false
		}, failed, 0},
		{"reads whole, HTTP/1.0 answer without length", false, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			c.body(req)
			c.send("HTTP/1.0 201 Created\r\nLocation: /x\r\n\r\nbody")
			return false
		}, answered, 201},
		{"reads whole, headers over the limit", false, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			c.body(req)
			c.send("HTTP/1.1 201 Created\r\nX-Big: " + strings.Repeat("a", 11<<20) + "\r\nContent-Length: 0\r\n\r\n")
			return false
		}, failed, 0},
		{"reads whole, 102 then 201", false, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			c.body(req)
			return c.send("HTTP/1.1 102 Processing\r\n\r\n" + created)
		}, answered, 201},
		{"103 before 100, then 201", false, func(c *scriptConn) bool {
			req := c.head()
			c.send("HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n")
			c.cont(req)
			c.body(req)
			return c.send(created)
		}, answered, 201},
		{"102 before 100, then closes", false, func(c *scriptConn) bool {
			c.head()
			c.send("HTTP/1.1 102 Processing\r\n\r\n")
			return false
		}, "any", 0},
		{"reads whole, 102, closes", false, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			c.body(req)
			c.send("HTTP/1.1 102 Processing\r\n\r\n")
			return false
		}, failed, 0},
		{"reads whole, twenty 103s", false, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			c.body(req)
			return c.send(strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 20) + created)
		}, "any", 0},
		{"100 Continue twice, then 201", false, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			c.cont(req)
			c.body(req)
			return c.send(created)
		}, answered, 201},
		{"reads whole, two answers", true, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			c.body(req)
			return c.send(created + created)
		}, "any", 0},
		{"kept-alive: reads the headers, closes (FIN)", true, func(c *scriptConn) bool { c.head(); return false }, answered, 201},
		{"kept-alive: closes before the headers", true, func(*scriptConn) bool { return false }, answered, 201},
		{"kept-alive: 101 without body", true, func(c *scriptConn) bool {
			c.head()
			c.send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n")
			return false
		}, "any", 0},
		{"early 201 before the body, keeps", false, func(c *scriptConn) bool {
			c.head()
			return c.send(created)
		}, answered, 201},
	}
	for _, sc := range scenarios {
		for _, withBackup := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/backup=%v", sc.name, withBackup), func(t *testing.T) {
				primary := newScriptPool(t, func(c *scriptConn, nth int) bool {
					if sc.warm && nth == 0 {
						return serveWhole(c)
					}
					return sc.turn(c)
				})
				e, backup := startScriptEdge(t, primary, withBackup)
				if sc.warm {
					if resp := e.startPhoneAudio("op-warm"); resp.Status != http.StatusCreated {
						t.Fatalf("warm: %d %s", resp.Status, resp.Body)
					}
				}
				resp := e.startPhoneAudio("op-x")
				count := 0
				for _, op := range primary.Complete() {
					if op == "op-x" {
						count++
					}
				}
				backupGot := 0
				if backup != nil {
					for _, op := range backup.OperationIDs() {
						if op == "op-x" {
							backupGot++
						}
					}
				}
				t.Logf("status %d pool=%s; primary read whole %d, backup %d; conns %d heads %d; body %.120q",
					resp.Status, resp.Header.Get("X-Ucwa-Pool"), count, backupGot, primary.Conns(), primary.heads, resp.Body)
				if count+backupGot > 1 {
					t.Errorf("TWICE: primary %d backup %d", count, backupGot)
				}
				switch sc.want {
				case answered:
					if resp.Status != sc.status {
						t.Errorf("status %d, want the pool's %d", resp.Status, sc.status)
					}
				case failed:
					if resp.Status != http.StatusBadGateway {
						t.Errorf("status %d, want 502", resp.Status)
					}
				case unavailable:
					if want := map[bool]int{true: 201, false: 410}[withBackup]; resp.Status != want || count != 0 {
						t.Errorf("status %d, want %d (primary read %d)", resp.Status, want, count)
					}
				case either:
					if resp.Status != http.StatusBadGateway && resp.Status != map[bool]int{true: 201, false: 410}[withBackup] {
						t.Errorf("status %d", resp.Status)
					}
				}
				if resp.Status == http.StatusBadGateway && !strings.Contains(resp.Body, "ServiceFailure") {
					t.Errorf("502 body %q", resp.Body)
				}
			})
		}
	}
}

// TestPoolTwoUpstreamsRetries: a pool of two upstreams with lb_retries
// and lb_try_duration: reverse_proxy's own retries never send a request
// the first upstream may have had to the second.
func TestPoolTwoUpstreamsRetries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		warm   bool
		turn   func(c *scriptConn) bool
		method string
	}{
		{"reads whole, resets", false, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			c.body(req)
			resetConn(c.Conn)
			return false
		}, "POST"},
		{"reads the headers, closes", false, func(c *scriptConn) bool { c.head(); return false }, "POST"},
		{"kept-alive: reads the headers, closes", true, func(c *scriptConn) bool { c.head(); return false }, "POST"},
		{"reads whole, hangs past response_header_timeout", false, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			c.body(req)
			_, _ = io.Copy(io.Discard, c.br)
			return false
		}, "POST"},
		{"GET: reads, resets", false, func(c *scriptConn) bool {
			c.head()
			resetConn(c.Conn)
			return false
		}, "GET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var u1Conns sync.Mutex
			first := true
			u1 := newScriptPool(t, func(c *scriptConn, nth int) bool {
				u1Conns.Lock()
				warmTurn := tc.warm && first && nth == 0
				if warmTurn {
					first = false
				}
				u1Conns.Unlock()
				if warmTurn {
					return serveWhole(c)
				}
				return tc.turn(c)
			})
			// A request the first upstream certainly did not have goes to
			// the second (see TestPoolOtherUpstreams).
			u2 := newScriptPool(t, func(c *scriptConn, _ int) bool {
				req := c.head()
				if req != nil && req.Method == "GET" {
					return c.send(created)
				}
				return req != nil && c.cont(req) && c.body(req) && c.send(created)
			})
			backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
			e := startEdge(t, "caddyfile", "{\n\tlog {\n\t\tlevel DEBUG\n\t}\n}\n"+poolsCaddyfile(expectOnEveryRequest+"\t\tprimary "+u1.Addr()+" "+u2.Addr()+
				" {\n\t\t\tlb_policy first\n\t\t\tlb_retries 3\n\t\t\tlb_try_duration 5s\n\t\t\ttransport http {\n\t\t\t\texpect_continue_timeout 10m\n\t\t\t\tresponse_header_timeout 500ms\n\t\t\t}\n\t\t}\n\t\tbackup "+backup.Addr()))
			if tc.warm {
				if resp := e.startPhoneAudio("op-warm"); resp.Status != http.StatusCreated {
					t.Fatalf("warm: %d %s", resp.Status, resp.Body)
				}
			}
			var resp testkit.Response
			if tc.method == "GET" {
				resp = e.send(testkit.Request{Method: "GET", URL: "/ucwa/v1/applications/1/communication/conversations"})
			} else {
				resp = e.startPhoneAudio("op-x")
			}
			t.Logf("status %d %s; u1 heads %d whole %v; u2 heads %d whole %v; backup %v", resp.Status, resp.Header.Get("X-Ucwa-Pool"),
				u1.heads, u1.Complete(), u2.heads, u2.Complete(), backup.OperationIDs())
			if tc.method == "GET" {
				return
			}
			if n := countOp(u1.Complete(), "op-x") + countOp(u2.Complete(), "op-x") + countOp(backup.OperationIDs(), "op-x"); n > 1 {
				t.Errorf("read whole %d times", n)
			}
		})
	}
}

// TestPoolReloadInFlight: a reload while a request is at the primary
// (the old config's pools cleaned up under it) sends it to the backup
// only when the primary never had it whole.
func TestPoolReloadInFlight(t *testing.T) {
	for _, tc := range []struct {
		name       string
		whole      bool
		wantStatus int
		wantBackup int
	}{
		{"headers only, then closes", false, 201, 1},
		{"read whole, then resets", true, 502, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			held, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			primary := newScriptPool(t, func(c *scriptConn, _ int) bool {
				req := c.head()
				if req == nil {
					return false
				}
				if tc.whole {
					c.cont(req)
					c.body(req)
				}
				once.Do(func() { close(held) })
				<-release
				if tc.whole {
					resetConn(c.Conn)
				}
				return false
			})
			backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
			cfg := poolsCaddyfile(expectOnEveryRequest + "\t\tprimary " + primary.Addr() + waitForBody + "\n\t\tbackup " + backup.Addr())
			e := startEdge(t, "caddyfile", cfg)
			done := make(chan testkit.Response, 1)
			go func() {
				resp, err := testkit.Do(e.Client(), testkit.Request{URL: e.url("/ucwa/v1/applications/1/communication/startPhoneAudio"),
					ContentType: "application/json", Body: `{"to":"4255551234","operationId":"op-reload"}`})
				if err != nil {
					resp.Status = -1
					resp.Body = err.Error()
				}
				done <- resp
			}()
			<-held
			e.Load("caddyfile", strings.Replace(cfg, "default_region US", "default_region GB", 1))
			close(release)
			resp := <-done
			t.Logf("status %d %s %q; primary whole %v; backup %v", resp.Status, resp.Header.Get("X-Ucwa-Pool"), resp.Body, primary.Complete(), backup.OperationIDs())
			if resp.Status != tc.wantStatus || len(backup.OperationIDs()) != tc.wantBackup {
				t.Errorf("status %d, backup %d; want %d, %d", resp.Status, len(backup.OperationIDs()), tc.wantStatus, tc.wantBackup)
			}
		})
	}
}

// TestPoolDynamicUpstreams: a pool whose upstreams come from a dynamic
// source (DNS A of localhost), with lb_retries.
func TestPoolDynamicUpstreams(t *testing.T) {
	for _, tc := range []struct {
		name string
		turn func(c *scriptConn) bool
	}{
		{"reads whole, resets", func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			c.body(req)
			resetConn(c.Conn)
			return false
		}},
		{"reads the headers, closes", func(c *scriptConn) bool { c.head(); return false }},
		{"serves", serveWhole},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u1 := newScriptPool(t, func(c *scriptConn, _ int) bool { return tc.turn(c) })
			_, port, _ := net.SplitHostPort(u1.Addr())
			backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
			e := startEdge(t, "caddyfile", poolsCaddyfile(expectOnEveryRequest+"\t\tprimary {\n\t\t\tdynamic a localhost "+port+"\n\t\t\tlb_retries 3\n\t\t}\n\t\tbackup "+backup.Addr()))
			resp := e.startPhoneAudio("op-x")
			t.Logf("status %d %s; u1 heads %d whole %v; backup %v", resp.Status, resp.Header.Get("X-Ucwa-Pool"), u1.heads, u1.Complete(), backup.OperationIDs())
			if len(u1.Complete())+len(backup.OperationIDs()) > 1 {
				t.Error("TWICE")
			}
		})
	}
}

// countOp counts op among operationIds.
func countOp(ops []string, op string) int {
	n := 0
	for _, o := range ops {
		if o == op {
			n++
		}
	}
	return n
}

// TestPoolInformationalDropped: a pool's 102 and 103 (whose Link names
// the pool's host) do not reach the client, which gets the final answer
// alone: they speak of an attempt that may yet end otherwise, and their
// headers are not rewritten.
func TestPoolInformationalDropped(t *testing.T) {
	primary := newScriptPool(t, func(c *scriptConn, _ int) bool {
		req := c.head()
		return req != nil && c.send("HTTP/1.1 103 Early Hints\r\nLink: <http://"+c.LocalAddr().String()+"/x>; rel=preload\r\n\r\n") &&
			c.cont(req) && c.body(req) && c.send("HTTP/1.1 102 Processing\r\n\r\n"+created)
	})
	e := startEdge(t, "caddyfile", poolsCaddyfile("\t\tprimary "+primary.Addr()))
	var informational []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
		informational = append(informational, code)
		return nil
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodPost,
		e.url("/ucwa/v1/applications/1/communication/startPhoneAudio"), strings.NewReader(`{"to":"4255551234","operationId":"op-1xx"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || len(informational) != 0 {
		t.Errorf("status %d after informational answers %v, want 201 alone", resp.StatusCode, informational)
	}
	if got := primary.Complete(); len(got) != 1 {
		t.Errorf("the pool read %v whole", got)
	}
}
