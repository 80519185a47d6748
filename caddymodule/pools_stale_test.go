package caddymodule

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// waitForBody is the pool block the tests below give their pools: the
// body of a request waits for the pool's 100 Continue however long it
// takes (the default, 1s, is a time a loaded machine might exceed), so
// that no outcome depends on how fast the machine is.
const waitForBody = " {\n\t\t\ttransport http {\n\t\t\t\texpect_continue_timeout 10m\n\t\t\t}\n\t\t}"

// expectOnEveryRequest makes every request to the pools carry
// `Expect: 100-continue`: the pools of the tests below close a kept-alive
// connection the moment it is idle (a keep-alive timeout of 0), against
// which only an expectation on every request guards.
const expectOnEveryRequest = "\t\texpect_continue_after_idle 0\n"

// TestPoolClosingIdleConnections: a pool that closes every kept-alive
// connection as soon as it has answered on it races the edge's next
// request on that connection. A request the pool never received is never
// failed (every answer is the pool's 201) and none is received twice,
// whether or not a backup is configured. A request with its inputs in the
// query alone has no body to hold back until the pool asks for it: one
// that went out on a connection the pool was closing may have reached it,
// and is answered 502 (see the README), never sent again; one whose write
// failed with nothing written goes out again on another connection.
func TestPoolClosingIdleConnections(t *testing.T) {
	const (
		requests = 1000
		workers  = 8
	)
	for _, tc := range []struct {
		name                   string
		withBackup, queryAlone bool
	}{
		{"one pool", false, false},
		{"with backup", true, false},
		{"query alone", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary := testkit.NewPool(t, "primary", testkit.AnswerCreated)
			primary.CloseWhenIdle(true)
			pools := expectOnEveryRequest + "\t\tprimary " + primary.Addr() + waitForBody
			var backup *testkit.Pool
			if tc.withBackup {
				backup = testkit.NewPool(t, "backup", testkit.AnswerCreated)
				pools += "\n\t\tbackup " + backup.Addr() + waitForBody
			}
			e := startEdge(t, "caddyfile", poolsCaddyfile(pools), testkit.WithAdmin())

			status := sendConcurrently(t, e, requests, workers, tc.queryAlone)
			received := receivedOnce(t, primary, backup)
			if tc.queryAlone {
				if status[http.StatusCreated]+status[http.StatusBadGateway] != requests || len(received) < status[http.StatusCreated] {
					t.Errorf("answers by status %v, received %d: want %d 201 or 502, each 201 received", status, len(received), requests)
				}
			} else if status[http.StatusCreated] != requests || len(received) != requests {
				t.Errorf("answers by status %v, received %d: want %d 201, each received", status, len(received), requests)
			}
			// The race did happen: requests met connections the pool had
			// closed, and went out again.
			stale := e.Metric(`caddy_ucwa_pool_requests_total{outcome="stale_connection",pool="primary"}`)
			if stale == 0 {
				t.Error("no request met a connection the pool had closed: the test tested nothing")
			}
			t.Logf("%d requests from %d clients: answers by status %v; %v met a closed connection and went out again; the primary accepted %d connections",
				requests, workers, status, stale, primary.Conns.Load())
		})
	}
}

// TestPoolStaleConnections: a request whose kept-alive connection ends
// after its headers, before the pool asks for its body, goes out again on
// another connection of the same pool; after 1+maxStaleConns such
// connections, the pool counts as unable to take it and the backup does.
// The pool ends each such connection with a reset, as a crashed worker or
// an appliance on the way does.
func TestPoolStaleConnections(t *testing.T) {
	const idle = maxStaleConns + 2 // kept-alive connections made beforehand
	for _, tc := range []struct {
		name        string
		reset       int64 // kept-alive connections the pool resets after the headers
		wantStale   float64
		wantPrimary bool // the primary, else the backup, takes the request
	}{
		{"two stale connections, then one that takes it", 2, 2, true},
		{"every kept-alive connection stale", idle, 1 + maxStaleConns, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary, reset := newStalePool(t, idle)
			backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
			e := startEdge(t, "caddyfile", "{\n\tlog {\n\t\tlevel DEBUG\n\t}\n}\n"+
				poolsCaddyfile(expectOnEveryRequest+"\t\tprimary "+primary.Addr()+waitForBody+"\n\t\tbackup "+backup.Addr()+waitForBody), testkit.WithAdmin())

			warmStalePool(t, e, primary, idle)

			reset.Store(tc.reset)
			resp := e.startPhoneAudio("op-stale")
			if resp.Status != http.StatusCreated {
				t.Fatalf("status %d, want 201: %s", resp.Status, resp.Body)
			}
			primaryGot := strings.Count(strings.Join(primary.OperationIDs(), ","), "op-stale")
			backupGot := strings.Count(strings.Join(backup.OperationIDs(), ","), "op-stale")
			if wantPrimary := map[bool]int{true: 1}[tc.wantPrimary]; primaryGot != wantPrimary || backupGot != 1-wantPrimary {
				t.Errorf("the primary received the request %d times, the backup %d; want %d and %d", primaryGot, backupGot, wantPrimary, 1-wantPrimary)
			}
			if got := e.Metric(`caddy_ucwa_pool_requests_total{outcome="stale_connection",pool="primary"}`); got != tc.wantStale {
				t.Errorf("stale connections met: %v, want %v", got, tc.wantStale)
			}
			for _, h := range primary.Headers() {
				if h.Get("Expect") != "100-continue" {
					t.Errorf("the pool got a request with Expect %q, want 100-continue", h.Get("Expect"))
				}
			}
			e.Logs().Wait(t, `"msg":"kept-alive pool connection ended before the pool took the request; trying another connection"`, `"stale_connections":2`)
		})
	}
}

// TestPoolWriteFails: a request whose body the pool stops reading and
// resets partway was not received whole, so the pool cannot have carried
// it out: it goes to the backup. The body is larger than every buffer on
// the way, so that its write fails for certain.
func TestPoolWriteFails(t *testing.T) {
	size := largerThanSocketBuffers(t)
	primary := newRawPool(t, func(*http.Request, int) rawAction { return rawResetInBody })
	backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
	e := startEdge(t, "caddyfile", strings.Replace(poolsCaddyfile("\t\tprimary "+primary.Addr()+waitForBody+"\n\t\tbackup "+backup.Addr()),
		"jwt off", fmt.Sprintf("jwt off\n\t\tmax_body_size %d", size+1<<10), 1), testkit.WithAdmin())

	body := fmt.Sprintf(`{"to":"4255551234","operationId":"op-big","x":%q}`, strings.Repeat("a", size))
	resp := e.postJSON("/ucwa/v1/applications/1/communication/startPhoneAudio", body, nil)
	if resp.Status != http.StatusCreated || len(backup.Received()) != 1 || len(primary.OperationIDs()) != 0 {
		t.Fatalf("%d %s; the backup received %d requests, the primary %d whole; want 201 from the backup only",
			resp.Status, resp.Body, len(backup.Received()), len(primary.OperationIDs()))
	}
	if got := len(primary.Headers()); got != 1 {
		t.Errorf("the primary read the headers of %d requests, want 1", got)
	}
	for sample, want := range map[string]float64{
		`caddy_ucwa_pool_requests_total{outcome="unavailable",pool="primary"}`: 1,
		`caddy_ucwa_pool_failovers_total`:                                      1,
	} {
		if got := e.Metric(sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
}

// largerThanSocketBuffers is a body size that the send buffer of the
// edge's connection and the raw pool's receive buffer (kept small, see
// rawPool) cannot hold together, with room to spare: at least 16 MiB,
// more where Linux lets a TCP send buffer grow larger (tcp_wmem, its
// largest size).
func largerThanSocketBuffers(t *testing.T) int {
	sendBuffer := 0
	if data, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem"); err == nil {
		if fields := strings.Fields(string(data)); len(fields) == 3 {
			sendBuffer, _ = strconv.Atoi(fields[2])
		}
	}
	size := max(16<<20, 2*sendBuffer+(8<<20))
	if size > maxMaxBodySize-(1<<20) {
		t.Skipf("a TCP send buffer may grow to %d bytes: no body within max_body_size outgrows it", sendBuffer)
	}
	return size
}

// TestPoolExpectContinue: which requests carry Expect: 100-continue to
// the pool. Two requests go out one after the other, the second on the
// connection of the first: a new connection always carries it, a
// kept-alive one only when it was idle for expect_continue_after_idle or
// longer (0: always); header_up -Expect takes it off every request. The
// pool's 100 Continue never reaches the client, which has sent its body
// to the edge already: a client that asked for a 100 itself gets the
// edge's own.
func TestPoolExpectContinue(t *testing.T) {
	const unchecked = "(not checked)"
	for _, tc := range []struct {
		name       string
		directive  string // a line of the ucwa block
		block      string // the primary's block
		header     http.Header
		wantExpect [2]string // what the pool receives: on a new connection, then on a kept-alive one
		want1xx    int       // informational answers the client gets
	}{
		// The second request goes out well within the default (1s), but
		// a busy machine could make it wait that long.
		{"default", "", "", nil, [2]string{"100-continue", unchecked}, 0},
		{"kept-alive connection idle for less", "expect_continue_after_idle 1m", "", nil, [2]string{"100-continue", ""}, 0},
		{"kept-alive connection idle for longer", "expect_continue_after_idle 1ns", "", nil, [2]string{"100-continue", "100-continue"}, 0},
		{"every request", "expect_continue_after_idle 0", "", nil, [2]string{"100-continue", "100-continue"}, 0},
		{"removed by header_up", "expect_continue_after_idle 0", " {\n\t\t\theader_up -Expect\n\t\t}", nil, [2]string{"", ""}, 0},
		{"client expects 100 itself", "expect_continue_after_idle 1m", "", http.Header{"Expect": {"100-continue"}}, [2]string{"100-continue", ""}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary := testkit.NewPool(t, "primary", testkit.AnswerCreated)
			e := startEdge(t, "caddyfile", poolsCaddyfile("\t\t"+tc.directive+"\n\t\tprimary "+primary.Addr()+tc.block))
			var informational atomic.Int64
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				Got1xxResponse: func(int, textproto.MIMEHeader) error { informational.Add(1); return nil },
			})
			for i := range 2 {
				resp, err := testkit.Do(e.Client(), testkit.Request{Context: ctx, URL: e.url("/ucwa/v1/applications/1/communication/startPhoneAudio"),
					ContentType: "application/json", Body: fmt.Sprintf(`{"to":"4255551234","operationId":"op-expect-%d"}`, i), Header: tc.header})
				if err != nil {
					t.Fatal(err)
				}
				if resp.Status != http.StatusCreated {
					t.Fatalf("status %d: %s", resp.Status, resp.Body)
				}
			}
			got := primary.Received()
			if len(got) != 2 || got[0].RemoteAddr != got[1].RemoteAddr {
				t.Fatalf("the pool received %d requests (%v), want 2 on one connection", len(got), got)
			}
			for i, want := range tc.wantExpect {
				if got[i].OperationID() != fmt.Sprint("op-expect-", i) {
					t.Errorf("request %d: the pool received operationId %q", i, got[i].OperationID())
				}
				if want != unchecked && got[i].Header.Get("Expect") != want {
					t.Errorf("request %d: the pool received Expect %q, want %q", i, got[i].Header.Get("Expect"), want)
				}
			}
			if got := informational.Load(); got != int64(tc.want1xx) {
				t.Errorf("the client got %d informational answers, want %d", got, tc.want1xx)
			}
		})
	}
}

// TestConnTrace: what the client trace of an attempt tells about whether
// the request may have reached the pool, fact by fact.
func TestConnTrace(t *testing.T) {
	writeErr := &net.OpError{Op: "write", Net: "tcp", Err: errors.New("broken pipe")}
	for _, tc := range []struct {
		name          string
		events        func(*httptrace.ClientTrace)
		reportsWrites bool
		err           error
		wantReached   bool
		wantStale     bool
	}{
		{"written whole", func(t *httptrace.ClientTrace) {
			t.GetConn("pool:443")
			t.GotConn(httptrace.GotConnInfo{Reused: true})
			t.WroteRequest(httptrace.WroteRequestInfo{})
		}, true, errors.New("read: connection reset by peer"), true, true},
		{"write failed on a kept-alive connection", func(t *httptrace.ClientTrace) {
			t.GetConn("pool:443")
			t.GotConn(httptrace.GotConnInfo{Reused: true})
			t.WroteRequest(httptrace.WroteRequestInfo{Err: writeErr})
		}, true, writeErr, false, true},
		{"write failed on a new connection", func(t *httptrace.ClientTrace) {
			t.GetConn("pool:443")
			t.GotConn(httptrace.GotConnInfo{})
			t.WroteRequest(httptrace.WroteRequestInfo{Err: writeErr})
		}, true, writeErr, false, false},
		{"write failed on a connection dialed ahead and parked", func(t *httptrace.ClientTrace) {
			t.GetConn("pool:443")
			t.GotConn(httptrace.GotConnInfo{WasIdle: true, IdleTime: 2 * time.Minute})
			t.WroteRequest(httptrace.WroteRequestInfo{Err: writeErr})
		}, true, writeErr, false, true},
		{"connection ended before the write began", func(t *httptrace.ClientTrace) {
			t.GetConn("pool:443")
			t.GotConn(httptrace.GotConnInfo{Reused: true})
		}, true, errors.New("http: server closed idle connection"), false, true},
		{"connection, transport that does not report writes", func(t *httptrace.ClientTrace) {
			t.GetConn("pool:443")
			t.GotConn(httptrace.GotConnInfo{Reused: true})
		}, false, errors.New("EOF"), true, true},
		{"no connection handed out", func(t *httptrace.ClientTrace) {
			t.GetConn("pool:443")
		}, true, errors.New("dial tcp: i/o timeout"), false, false},
		{"no trace, dial error", func(*httptrace.ClientTrace) {}, false, reverseproxy.NewDialError(errors.New("refused")), false, false},
		{"no trace, no upstream", func(*httptrace.ClientTrace) {}, false, caddyhttp.Error(http.StatusServiceUnavailable, errors.New("no upstreams available")), false, false},
		{"no trace, other error", func(*httptrace.ClientTrace) {}, false, errors.New("EOF"), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c connTrace
			var trace httptrace.ClientTrace
			c.trace(&trace, true)
			tc.events(&trace)
			if got := c.mayHaveReached(tc.err, tc.reportsWrites); got != tc.wantReached {
				t.Errorf("mayHaveReached = %v, want %v", got, tc.wantReached)
			}
			if got := c.staleConn(); got != tc.wantStale {
				t.Errorf("staleConn = %v, want %v", got, tc.wantStale)
			}
		})
	}
}

// TestAttemptGoneUnsent: whether an attempt the client went away from
// certainly did not reach the pool, so that its operationId is released
// and its limit events given back. Its round trip may return before the
// request's write ended (net/http's HTTP/2 transport returns once it
// resets the stream, while the stream's writer may still be flushing the
// request's last frame, its body already read whole): until the write
// reports its end, a request handed a connection may have reached the
// pool whole.
func TestAttemptGoneUnsent(t *testing.T) {
	writeErr := &net.OpError{Op: "write", Net: "tcp", Err: errors.New("broken pipe")}
	for _, tc := range []struct {
		name       string
		events     func(*httptrace.ClientTrace)
		bodyRead   bool
		wantUnsent bool
	}{
		{"no connection handed out", func(t *httptrace.ClientTrace) {
			t.GetConn("pool:443")
		}, false, true},
		{"connection handed, write not ended, body read whole", func(t *httptrace.ClientTrace) {
			t.GetConn("pool:443")
			t.GotConn(httptrace.GotConnInfo{})
		}, true, false},
		{"connection handed, write not ended, body unread", func(t *httptrace.ClientTrace) {
			t.GetConn("pool:443")
			t.GotConn(httptrace.GotConnInfo{})
		}, false, false},
		{"write failed", func(t *httptrace.ClientTrace) {
			t.GetConn("pool:443")
			t.GotConn(httptrace.GotConnInfo{})
			t.WroteRequest(httptrace.WroteRequestInfo{Err: writeErr})
		}, true, true},
		{"headers written, pool never asked for the body", func(t *httptrace.ClientTrace) {
			t.GetConn("pool:443")
			t.GotConn(httptrace.GotConnInfo{})
			t.WroteRequest(httptrace.WroteRequestInfo{})
		}, false, true},
		{"written whole", func(t *httptrace.ClientTrace) {
			t.GetConn("pool:443")
			t.GotConn(httptrace.GotConnInfo{})
			t.WroteRequest(httptrace.WroteRequestInfo{})
		}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			traced := new(tracedAttemptState)
			st := &traced.attemptState
			st.conn = &traced.ownConn
			st.conn.trace(&traced.trace, true)
			st.body.Reset([]byte(`{"phoneNumber":"tel:+15551230000"}`))
			tc.events(&traced.trace)
			if tc.bodyRead {
				if _, err := io.Copy(io.Discard, &st.body); err != nil {
					t.Fatal(err)
				}
			}
			if got := st.goneUnsent(context.Canceled, true); got != tc.wantUnsent {
				t.Errorf("goneUnsent = %v, want %v", got, tc.wantUnsent)
			}
			// A transport that reports no writes (HTTP/3) tells nothing
			// of them: the request may have reached the pool.
			if st.goneUnsent(context.Canceled, false) {
				t.Error("goneUnsent with a transport that reports no writes = true, want false")
			}
		})
	}
}

// rawAction is what a rawPool does with a request whose headers it read.
type rawAction int

const (
	// rawServe asks for the body (100 Continue, when expected), reads it,
	// records the request and answers 201, keeping the connection.
	rawServe rawAction = iota
	// rawReset resets the connection without asking for the body.
	rawReset
	// rawResetInBody asks for the body, reads 1 MiB of it and resets
	// the connection.
	rawResetInBody
)

// barePool is a front-end pool written on a bare listener, for what
// net/http's server cannot be made to do (end a connection after a
// request's headers, answer out of turn): it serves each connection it
// accepts with the function given to start, and closes them all when the
// test ends.
type barePool struct {
	ln net.Listener
	wg sync.WaitGroup

	// mu guards conns and made, and the records of the pools built on
	// it.
	mu    sync.Mutex
	conns map[net.Conn]bool
	made  int
}

// newBarePool listens on a reserved loopback port; start serves it.
func newBarePool(t *testing.T) *barePool {
	t.Helper()
	ln, err := testkit.Listen(testkit.Port(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &barePool{ln: ln, conns: map[net.Conn]bool{}}
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// start accepts connections, each served by serve and closed once it
// returns.
func (p *barePool) start(serve func(conn net.Conn)) {
	p.wg.Go(func() {
		for {
			conn, err := p.ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns[conn] = true
			p.made++
			p.mu.Unlock()
			p.wg.Go(func() {
				defer func() {
					p.mu.Lock()
					delete(p.conns, conn)
					p.mu.Unlock()
					_ = conn.Close()
				}()
				serve(conn)
			})
		}
	})
}

func (p *barePool) Addr() string { return p.ln.Addr().String() }

// Conns is the number of connections the pool accepted.
func (p *barePool) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.made
}

// rawPool is a barePool that ends a connection after a request's headers,
// before asking for its body, or partway through the body, as decide
// says. It speaks HTTP/1.1 with keep-alive and answers Expect:
// 100-continue.
type rawPool struct {
	*barePool
	decide func(r *http.Request, nth int) rawAction // nth: requests before it on its connection

	headers []http.Header // of every request whose headers were read
	ops     []string      // operationIds of the requests read whole
}

// warmStalePool sends idle requests at once through e, so that the edge
// then holds idle kept-alive connections to primary, one for each new
// (see newStalePool).
func warmStalePool(t *testing.T, e edge, primary *rawPool, idle int) {
	t.Helper()
	before := primary.Conns()
	var wg sync.WaitGroup
	for i := range idle {
		wg.Go(func() {
			if resp := e.startPhoneAudio(fmt.Sprint("warm-", i)); resp.Status != http.StatusCreated {
				t.Errorf("warming up: %d %s", resp.Status, resp.Body)
			}
		})
	}
	wg.Wait()
	if got := primary.Conns() - before; got != idle {
		t.Fatalf("the edge made %d connections to the pool, want %d", got, idle)
	}
}

// newStalePool starts a raw pool that holds each connection's first
// answer until idle requests are in, so that the edge then keeps idle
// connections to it, and resets as many of the later requests as reset
// holds when they come, as a connection the pool closed while it was
// idle takes none.
func newStalePool(t *testing.T, idle int) (*rawPool, *atomic.Int64) {
	var warm sync.WaitGroup
	warm.Add(idle)
	reset := new(atomic.Int64)
	return newRawPool(t, func(_ *http.Request, nth int) rawAction {
		if nth == 0 {
			warm.Done()
			warm.Wait()
			return rawServe
		}
		if reset.Add(-1) >= 0 {
			return rawReset
		}
		return rawServe
	}), reset
}

// newRawPool starts a raw pool on a reserved loopback port; decide says
// what becomes of each request once its headers are read.
func newRawPool(t *testing.T, decide func(r *http.Request, nth int) rawAction) *rawPool {
	t.Helper()
	p := &rawPool{barePool: newBarePool(t), decide: decide}
	p.start(p.serve)
	return p
}

// Headers are the headers of every request whose headers the pool read.
func (p *rawPool) Headers() []http.Header {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]http.Header(nil), p.headers...)
}

// OperationIDs are those of the requests the pool read whole.
func (p *rawPool) OperationIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.ops...)
}

func (p *rawPool) serve(conn net.Conn) {
	// A small receive buffer, set before any body is asked for: a body
	// the pool stops reading stays mostly with the sender.
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetReadBuffer(64 << 10)
	}
	br := bufio.NewReader(conn)
	for nth := 0; ; nth++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		p.mu.Lock()
		p.headers = append(p.headers, req.Header.Clone())
		p.mu.Unlock()
		action := p.decide(req, nth)
		if action == rawReset {
			resetConn(conn)
			return
		}
		if req.Header.Get("Expect") == "100-continue" {
			if _, err := io.WriteString(conn, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
				return
			}
		}
		if action == rawResetInBody {
			_, _ = io.CopyN(io.Discard, req.Body, 1<<20)
			resetConn(conn)
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		p.mu.Lock()
		p.ops = append(p.ops, testkit.Received{Body: string(body)}.OperationID())
		p.mu.Unlock()
		if _, err := io.WriteString(conn, "HTTP/1.1 201 Created\r\n"+
			"Location: /ucwa/v1/applications/1/communication/invitations/primary\r\nContent-Length: 0\r\n\r\n"); err != nil {
			return
		}
	}
}

// resetConn ends a connection with a reset (RST) rather than an orderly
// close.
func resetConn(conn net.Conn) {
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// TestAttemptContextTrace: an attempt's context holds the attempt's client
// trace itself, and net/http finds it as it finds one that
// httptrace.WithClientTrace adds: under the trace reverse_proxy adds on
// top, composed with it, and composed with a trace of the request's own.
func TestAttemptContextTrace(t *testing.T) {
	if clientTraceKey == nil {
		t.Fatal("httptrace's context key was not learned: every attempt pays a context of its own")
	}
	for _, tc := range []struct {
		name     string
		ownTrace bool
	}{{"request without a trace", false}, {"request with a trace of its own", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var requestsHook bool
			parent := context.Background()
			if tc.ownTrace {
				parent = httptrace.WithClientTrace(parent, &httptrace.ClientTrace{
					GotConn: func(httptrace.GotConnInfo) { requestsHook = true }})
			}
			var c connTrace
			var trace httptrace.ClientTrace
			c.trace(&trace, true)
			ctx := (&attemptContext{Context: parent, conn: &c}).withTrace(&trace)
			// As reverse_proxy adds its own before the round trip.
			var proxysHook bool
			ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
				Got1xxResponse: func(int, textproto.MIMEHeader) error { proxysHook = true; return nil }})
			found := httptrace.ContextClientTrace(ctx)
			if found == nil || found.GetConn == nil || found.GotConn == nil || found.WroteRequest == nil || found.Got1xxResponse == nil {
				t.Fatalf("net/http finds %+v, want the attempt's hooks and reverse_proxy's", found)
			}
			found.GetConn("pool:443")
			found.GotConn(httptrace.GotConnInfo{Reused: true})
			found.WroteRequest(httptrace.WroteRequestInfo{})
			_ = found.Got1xxResponse(http.StatusContinue, nil)
			if !c.askedConn.Load() || !c.gotConn.Load() || !c.wasIdle.Load() || !c.wrote.Load() || !proxysHook {
				t.Errorf("asked %v, got %v, was idle %v, wrote %v; reverse_proxy's hook %v",
					c.askedConn.Load(), c.gotConn.Load(), c.wasIdle.Load(), c.wrote.Load(), proxysHook)
			}
			if requestsHook != tc.ownTrace {
				t.Errorf("the request's own hook called: %v", requestsHook)
			}
			if got := ctx.Value(connTraceKey{}); got != &c {
				t.Errorf("connTrace %v, want the attempt's", got)
			}
		})
	}
}

// TestConnTraceHookedOnSend: on a pool whose every round trip passes the
// transport's Proxy hook (reportOutgoing), the hook sets the attempt's
// trace hooks on the client trace reverse_proxy made for the round trip,
// where net/http reads them: once for each trace, whatever times the
// transport asks, composed with hooks of the request's own, which are
// called after the attempt's. A round trip with no client trace leaves
// the attempt knowing neither whether the request got a connection nor
// whether it was written: it may have reached the pool, unless the pool's
// error says it did not.
func TestConnTraceHookedOnSend(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ownHooks bool
	}{{"trace of reverse_proxy's", false}, {"trace with hooks of the request's own", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var ownGotConn, ownWrote int
			roundTrip := &httptrace.ClientTrace{Got1xxResponse: func(int, textproto.MIMEHeader) error { return nil }}
			if tc.ownHooks {
				roundTrip.GotConn = func(httptrace.GotConnInfo) { ownGotConn++ }
				roundTrip.WroteRequest = func(httptrace.WroteRequestInfo) { ownWrote++ }
			}
			var hooks httptrace.ClientTrace
			c := new(connTrace)
			c.trace(&hooks, false)
			attemptsGotConn, gotConn := 0, hooks.GotConn
			hooks.GotConn = func(info httptrace.GotConnInfo) { attemptsGotConn++; gotConn(info) }
			c.hooks = &hooks
			ctx := httptrace.WithClientTrace(&attemptContext{Context: context.Background(), conn: c}, roundTrip)
			req := httptest.NewRequest(http.MethodPost, "http://pool/x", nil).WithContext(ctx)
			// The transport asks again for each time it sends the request.
			for range 2 {
				if _, err := reportOutgoing(nil)(req); err != nil {
					t.Fatal(err)
				}
			}
			found := httptrace.ContextClientTrace(req.Context())
			if found != roundTrip || found.GotConn == nil || found.WroteRequest == nil {
				t.Fatalf("the round trip's trace %p has GotConn %v, WroteRequest %v; want %p with both",
					found, found.GotConn != nil, found.WroteRequest != nil, roundTrip)
			}
			found.GotConn(httptrace.GotConnInfo{Reused: true})
			found.WroteRequest(httptrace.WroteRequestInfo{})
			if !c.askedConn.Load() || !c.gotConn.Load() || !c.wasIdle.Load() || !c.wrote.Load() || !c.writeEnded.Load() {
				t.Errorf("asked %v, got %v, reused %v, wrote %v, write ended %v",
					c.askedConn.Load(), c.gotConn.Load(), c.wasIdle.Load(), c.wrote.Load(), c.writeEnded.Load())
			}
			if attemptsGotConn != 1 {
				t.Errorf("the attempt's GotConn called %d times, want once", attemptsGotConn)
			}
			if want := map[bool]int{true: 1}[tc.ownHooks]; ownGotConn != want || ownWrote != want {
				t.Errorf("the request's own hooks called %d and %d times, want %d", ownGotConn, ownWrote, want)
			}
			// A request written whole is not sent again.
			if _, err := reportOutgoing(nil)(req); !errors.Is(err, errSentAlready) {
				t.Errorf("asking again after the request was written: %v, want errSentAlready", err)
			}
		})
	}
	t.Run("round trip without a trace", func(t *testing.T) {
		var hooks httptrace.ClientTrace
		traced := new(tracedAttemptState)
		st := &traced.attemptState
		st.conn = &traced.ownConn
		st.conn.trace(&hooks, false)
		st.conn.hooks = &hooks
		st.body.Reset([]byte(`{"phoneNumber":"tel:+15551230000"}`))
		if _, err := io.Copy(io.Discard, &st.body); err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "http://pool/x", nil).
			WithContext(&attemptContext{Context: context.Background(), conn: st.conn})
		if _, err := reportOutgoing(nil)(req); err != nil {
			t.Fatal(err)
		}
		if !st.conn.untraced {
			t.Fatal("a round trip without a client trace is not marked untraced")
		}
		for _, e := range []struct {
			err    error
			unsent bool
		}{
			{errors.New("read: connection reset by peer"), false},
			{reverseproxy.NewDialError(errors.New("refused")), true},
		} {
			if got := st.unsent(e.err, true); got != e.unsent {
				t.Errorf("unsent after %v = %v, want %v", e.err, got, e.unsent)
			}
			if st.goneUnsent(e.err, true) {
				t.Errorf("goneUnsent after %v = true, want false", e.err)
			}
		}
	})
}

// sendConcurrently sends requests startPhoneAudio requests to e, each
// with an operationId of its own (idle-1, idle-2, ...), from workers
// goroutines, with a JSON body or with the inputs in the query alone,
// and returns the answers by status (-1: no answer).
func sendConcurrently(t *testing.T, e edge, requests, workers int, queryAlone bool) map[int]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		next   atomic.Int64
		mu     sync.Mutex
		status = map[int]int{}
		wg     sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for n := next.Add(1); n <= int64(requests) && ctx.Err() == nil; n = next.Add(1) {
				req := testkit.Request{Context: ctx, URL: e.url("/ucwa/v1/applications/1/communication/startPhoneAudio"),
					ContentType: "application/json", Body: fmt.Sprintf(`{"to":"4255551234","operationId":"idle-%d"}`, n)}
				if queryAlone {
					req = testkit.Request{Context: ctx, Method: http.MethodPost,
						URL: e.url(fmt.Sprintf("/ucwa/v1/applications/1/communication/startPhoneAudio?to=4255551234&operationId=idle-%d", n))}
				}
				resp, err := testkit.Do(e.Client(), req)
				mu.Lock()
				if err != nil {
					status[-1]++
				} else {
					status[resp.Status]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return status
}

// receivedOnce returns the requests the pools (a nil one left out)
// received, by operationId, failing for one received more than once.
func receivedOnce(t *testing.T, pools ...*testkit.Pool) map[string]int {
	t.Helper()
	received := map[string]int{}
	for _, p := range pools {
		if p != nil {
			for _, op := range p.OperationIDs() {
				received[op]++
			}
		}
	}
	for op, n := range received {
		if n > 1 {
			t.Errorf("operationId %s reached the pools %d times", op, n)
		}
	}
	return received
}
