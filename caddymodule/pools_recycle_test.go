package caddymodule

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestHookedConnTraceNotRecycledWhileWriting: a pool that answers before
// it reads the body leaves net/http writing the request after the round
// trip returned, and the write reports its end (WroteRequest, one of the
// attempt's hooks) only later, once the pool reads on or the transport
// closes the connection. The attempt's connTrace, recycled for the next
// attempt on a pool whose hooks are set on send, must not go back while
// that hook may still be called: the race detector sees the late hook
// write into a connTrace the attempt cleared and handed on (run with
// -race). The pool answers at once to a request without Expect:
// 100-continue, or with a final answer before 100 Continue to one with it,
// on a connection it keeps (net/http then sends the body after the
// answer); it reads on only once the edge logged the request, after the
// attempt returned. The next request is delivered.
func TestHookedConnTraceNotRecycledWhileWriting(t *testing.T) {
	size := largerThanSocketBuffers(t)
	for _, tc := range []struct {
		name, pool, answer string
		status             int
	}{
		{"answered at once, no Expect", "\t\theader_up -Expect\n",
			"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}", http.StatusCreated},
		{"417 before 100 Continue, connection kept", "\t\ttransport http {\n\t\t\texpect_continue_timeout 10m\n\t\t}\n",
			"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n", http.StatusExpectationFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release, firstEnded := make(chan struct{}), make(chan struct{})
			pool := newBarePool(t)
			pool.start(func(conn net.Conn) {
				// As rawPool: the body the pool leaves unread stays mostly with
				// the edge, whose write blocks.
				if tcp, ok := conn.(*net.TCPConn); ok {
					_ = tcp.SetReadBuffer(64 << 10)
				}
				br := bufio.NewReader(conn)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if req.ContentLength < int64(size) {
						// The next request: read whole and answered.
						if req.Header.Get("Expect") != "" {
							if _, err := io.WriteString(conn, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
								return
							}
						}
						_, _ = io.Copy(io.Discard, req.Body)
						if _, err := io.WriteString(conn, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"); err != nil {
							return
						}
						continue
					}
					// Answered at once, the body unread until the test says so;
					// the edge's transport closes the connection meanwhile, or
					// the body is read whole.
					if _, err := io.WriteString(conn, tc.answer); err != nil {
						return
					}
					<-release
					_, err = io.Copy(io.Discard, req.Body)
					close(firstEnded)
					if err != nil {
						return
					}
				}
			})
			e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	log
	ucwa {
		jwt off
		default_region US
		max_body_size %d
		expect_continue_after_idle 0
		primary %s {
%s		}
	}
}`, size+1<<10, pool.Addr(), tc.pool))

			body := fmt.Sprintf(`{"to":"4255551234","operationId":"op-early","x":%q}`, strings.Repeat("a", size))
			if resp := e.postJSON(startPath, body, nil); resp.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.Status, tc.status, resp.Body)
			}
			e.Logs().Wait(t, `"msg":"handled request"`, fmt.Sprintf(`"status":%d`, tc.status))
			close(release)
			<-firstEnded

			resp := e.postJSON(startPath, `{"to":"4255551234","operationId":"op-next"}`, nil)
			if resp.Status != http.StatusCreated {
				t.Fatalf("the next request: status %d: %s", resp.Status, resp.Body)
			}
		})
	}
}

// TestGuardDial: where an attempt's request variables are recycled, a
// dial of the pool's transport reads them only while guardDial counts it
// in: a dial the transport goes on with after the attempt is over (it was
// given another connection) keeps reading the attempt's own, which go
// back only with the attempt's, whatever the next attempt does meanwhile;
// a dial that begins once the attempt is over does not dial (a DialError,
// as nothing was sent on it), and the attempt's context has no variables
// any more.
func TestGuardDial(t *testing.T) {
	const key = "reverse_proxy.proxy_protocol_info"
	newAttempt := func(value string) *attemptContext {
		c := &attemptContext{Context: context.Background(), conn: new(connTrace)}
		c.vars, c.recycledVars = attemptVarMaps.Get().(map[string]any), true
		c.vars[key] = value
		return c
	}
	t.Run("dial in flight when the attempt ends", func(t *testing.T) {
		c := newAttempt("the first attempt's")
		entered, proceed := make(chan struct{}), make(chan struct{})
		var read any
		dial := guardDial(func(ctx context.Context, _, _ string) (net.Conn, error) {
			close(entered)
			<-proceed
			// As Caddy's dial reads the PROXY protocol info once connected.
			read = caddyhttp.GetVar(ctx, key)
			return nil, errors.New("refused")
		})
		done := make(chan error)
		go func() {
			_, err := dial(c, "tcp", "pool:443")
			done <- err
		}()
		<-entered
		c.releaseVars()
		next := newAttempt("the next attempt's")
		close(proceed)
		<-done
		if read != "the first attempt's" {
			t.Errorf("the dial read %v, want the first attempt's", read)
		}
		next.releaseVars()
	})
	t.Run("dial that begins once the attempt is over", func(t *testing.T) {
		c := newAttempt("the attempt's")
		c.releaseVars()
		dialed := false
		_, err := guardDial(func(context.Context, string, string) (net.Conn, error) {
			dialed = true
			return nil, nil
		})(c, "tcp", "pool:443")
		if dialed || err != error(reverseproxy.NewDialError(errAttemptOver)) {
			t.Errorf("dialed %v, error %v; want no dial and a DialError", dialed, err)
		}
		if v := caddyhttp.GetVar(c, key); v != nil {
			t.Errorf("the attempt's context, once over, has %v", v)
		}
	})
	t.Run("variables not recycled", func(t *testing.T) {
		c := &attemptContext{Context: context.Background(), vars: map[string]any{key: "own"}}
		var got context.Context
		_, _ = guardDial(func(ctx context.Context, _, _ string) (net.Conn, error) {
			got = ctx
			return nil, nil
		})(c, "tcp", "pool:443")
		if got != c {
			t.Errorf("the dial got %v, want the attempt's context as it is", got)
		}
	})
}

// TestPoolDialsGuarded: the dials of a pool's transport, which read the
// attempt's recycled variables, are guarded (guardDial): DialContext,
// and DialTLSContext, which Caddy sets for a TLS server name with
// placeholders.
func TestPoolDialsGuarded(t *testing.T) {
	ctx, down := benchContext(t), testkit.DownAddr(t)
	for _, tc := range []struct{ name, transport string }{
		{"default", ``},
		{"TLS server name with a placeholder", `,"transport":{"protocol":"http","tls":{"server_name":"{http.request.host}"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := provision(t, ctx, new(Handler), `{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"`+down+`"}]`+tc.transport+`}}`)
			if !h.pools[0].reportsWrites {
				t.Fatal("the pool's transport is not net/http's: its variables are not recycled")
			}
			ht, _ := poolHTTPTransport(h.pools[0].proxy.Transport)
			rt := ht.Transport
			dials := map[string]func(context.Context, string, string) (net.Conn, error){"DialContext": rt.DialContext}
			if tc.transport != "" {
				if rt.DialTLSContext == nil {
					t.Fatal("Caddy set no DialTLSContext")
				}
				dials["DialTLSContext"] = rt.DialTLSContext
			}
			for name, dial := range dials {
				over := &attemptContext{Context: context.Background(), vars: map[string]any{}, recycledVars: true}
				over.over.Store(true)
				if _, err := dial(over, "tcp", down); err != error(reverseproxy.NewDialError(errAttemptOver)) {
					t.Errorf("%s for an attempt that is over: %v, want the DialError errAttemptOver", name, err)
				}
			}
		})
	}
}

// TestOrphanDialReadsAttemptVars: a dial the pool's transport goes on
// with after the attempt it was made for is over reads that attempt's
// request variables: Caddy's dial with proxy_protocol reads the client's
// address there once it has connected. The pool's name resolves through
// a resolver that holds its answer until the client went away and the
// edge logged the request (the attempt over, its variables released);
// the dial then connects and sends the PROXY header, which it could not
// had the attempt handed its variables back for another attempt.
func TestOrphanDialReadsAttemptVars(t *testing.T) {
	asked, answer := make(chan struct{}), make(chan struct{})
	resolver := newHeldResolver(t, asked, answer)
	proxyLines := make(chan string, 1)
	pool := newBarePool(t)
	pool.start(func(conn net.Conn) {
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return
		}
		proxyLines <- line
	})
	_, port, _ := net.SplitHostPort(pool.Addr())
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	log
	ucwa {
		jwt off
		default_region US
		primary pool.test:%s {
			transport http {
				proxy_protocol v1
				resolvers %s
			}
		}
	}
}`, port, resolver))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		_, err := testkit.Do(e.Client(), testkit.Request{Context: ctx, URL: e.url(startPath),
			ContentType: "application/json", Body: `{"to":"4255551234","operationId":"op-gone"}`})
		sent <- err
	}()
	<-asked
	cancel()
	<-sent
	e.Logs().Wait(t, `"msg":"handled request"`, `"uri":"`+startPath)
	close(answer)
	bound := time.NewTimer(time.Minute)
	defer bound.Stop()
	select {
	case line := <-proxyLines:
		if want := "PROXY TCP4 127.0.0.1 0.0.0.0 0 0\r\n"; line != want {
			t.Errorf("the pool's connection began with %q, want %q", line, want)
		}
	case <-bound.C:
		t.Fatal("the dial the transport went on with never reached the pool")
	}
}

// newHeldResolver serves DNS on a loopback UDP port, and returns its
// address: every name is 127.0.0.1 (A; no AAAA), answered only once
// answer is closed; asked is closed at the first question.
func newHeldResolver(t *testing.T, asked, answer chan struct{}) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	var once sync.Once
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			query := append([]byte(nil), buf[:n]...)
			once.Do(func() { close(asked) })
			go func() {
				<-answer
				if reply := dnsReply(query); reply != nil {
					_, _ = conn.WriteTo(reply, from)
				}
			}()
		}
	}()
	return conn.LocalAddr().String()
}

// dnsReply answers a DNS query of one question: 127.0.0.1 for type A,
// no records for any other type; nil for a query it cannot read.
func dnsReply(query []byte) []byte {
	if len(query) < 12 {
		return nil
	}
	end := 12
	for end < len(query) && query[end] != 0 {
		end += int(query[end]) + 1
	}
	end += 5 // the root label, type, class
	if end > len(query) {
		return nil
	}
	qtype := int(query[end-4])<<8 | int(query[end-3])
	reply := append([]byte(nil), query[:end]...)
	reply[2], reply[3] = 0x81, 0x80                     // a response, recursion available, no error
	reply[6], reply[7], reply[8], reply[9] = 0, 0, 0, 0 // answers, authority
	reply[10], reply[11] = 0, 0                         // additional
	if qtype == 1 {
		reply[7] = 1
		reply = append(reply, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1)
	}
	return reply
}
