package testkit

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Pool is a real loopback HTTP server standing in for a front-end pool
// (or any upstream): it records every request it receives completely and
// answers it with its Answer. GET /health answers 200 while the pool is
// healthy, else 503. A pool can be killed (Kill, Crash) and started
// again on the same port, which stays reserved for it meanwhile (a
// connection to a killed pool is refused). It can also close every
// kept-alive connection as soon as it is idle (CloseWhenIdle), as a pool
// whose keep-alive timeout runs out does.
type Pool struct {
	name      string
	host      string // the loopback address it listens on (NewPoolAt); "": 127.0.0.1
	port      int
	answer    Answer
	tls       *httptest.Server // for NewTLSPool, NewHTTP2Pool and NewHTTPSPool
	protocols *http.Protocols  // of the server Restart starts; nil: net/http's default
	healthy   atomic.Bool
	closeIdle atomic.Bool
	early     atomic.Pointer[Early]
	release   chan struct{} // closed at the test's end, so hanging answers return

	// Requests counts the requests received completely; Health the
	// health checks; Conns the connections accepted, Closed those
	// closed since (over TCP).
	Requests, Health, Conns, Closed Counter
	// Arrived counts the requests whose headers arrived, complete or
	// not: a request that reached the pool at all.
	Arrived Counter

	mu       sync.Mutex
	received []Received
	srv      *http.Server
	ln       net.Listener
	conns    map[net.Conn]*poolConn // of srv, until they close
}

// poolConn is what Kill needs of a connection: whether it is idle, how
// many handlers run on it, whether it carried a request, and when it
// changed or closed.
type poolConn struct {
	idle    bool
	serving int  // handlers running on it
	served  bool // it carried a request
	ended   bool // Kill ended it from its side
	// changed, made by Kill, is closed when the connection goes idle,
	// starts a handler, or closes: Kill looks at it again then.
	changed chan struct{}
	closed  chan struct{}
}

// change wakes Kill, if it waits for c; p.mu is held.
func (c *poolConn) change() {
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// poolConnKey is the key under which a request's context holds the
// connection it came on (see Restart).
type poolConnKey struct{}

// Received is one request a Pool received.
type Received struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   string
	// Proto is the protocol the request came by: HTTP/1.1, HTTP/2.0.
	Proto string
	// RemoteAddr is the address of the connection it came on.
	RemoteAddr string
}

// OperationID is the operationId of a JSON body, else of the query, ""
// if none.
func (r Received) OperationID() string {
	var in struct {
		OperationID string `json:"operationId"`
	}
	_ = json.Unmarshal([]byte(r.Body), &in)
	if in.OperationID == "" {
		q, _ := url.ParseQuery(r.RawQuery)
		return q.Get("operationId")
	}
	return in.OperationID
}

// Answer is how a Pool answers a request it received.
type Answer func(p *Pool, w http.ResponseWriter, r *http.Request)

// Early is what a Pool does with a request as soon as its head arrived,
// before it reads the body: it reports whether it dealt with the request
// (failed it, say), which the pool then neither receives nor answers.
type Early func(p *Pool, w http.ResponseWriter, r *http.Request) bool

// SetEarly makes the pool hand each request to early as soon as its head
// arrived (nil: none).
func (p *Pool) SetEarly(early Early) {
	if early == nil {
		p.early.Store(nil)
		return
	}
	p.early.Store(&early)
}

// NewPool starts a pool on a reserved loopback port. The name is its
// Location's last segment (AnswerCreated).
func NewPool(t testing.TB, name string, answer Answer) *Pool {
	t.Helper()
	return NewPoolAt(t, "127.0.0.1", Port(t), name, answer)
}

// NewPoolAt starts a pool on host, a loopback address, at port, which
// Port reserved (on 127.0.0.1): a pool on 127.0.0.2 (the whole of
// 127.0.0.0/8 is loopback on Linux) leaves 127.0.0.1 refusing
// connections at the same port, as a name with several A records, one
// of whose addresses is down, has it.
func NewPoolAt(t testing.TB, host string, port int, name string, answer Answer) *Pool {
	t.Helper()
	p := &Pool{name: name, host: host, port: port, answer: answer, release: make(chan struct{})}
	p.healthy.Store(true)
	p.Restart(t)
	t.Cleanup(func() {
		close(p.release)
		p.Kill()
	})
	return p
}

// NewUpstream is a pool that answers every request 201 Created.
func NewUpstream(t testing.TB) *Pool {
	t.Helper()
	return NewPool(t, "upstream", AnswerCreated)
}

// NewTLSPool starts a pool that speaks TLS with a certificate nobody
// trusts: every handshake with it fails.
func NewTLSPool(t testing.TB, name string) *Pool {
	t.Helper()
	p := &Pool{name: name, answer: AnswerCreated, release: make(chan struct{})}
	p.tls = httptest.NewUnstartedServer(p)
	p.tls.Config.ErrorLog = quietLog
	p.tls.StartTLS()
	p.port = p.tls.Listener.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() {
		close(p.release)
		p.tls.Close()
	})
	return p
}

// NewHTTP2Pool starts a pool that speaks TLS, with a certificate for
// 127.0.0.1 that CAFile names, and offers HTTP/2 (ALPN h2) before
// HTTP/1.1, as IIS 10 does.
func NewHTTP2Pool(t testing.TB, name string, answer Answer) *Pool {
	t.Helper()
	return newHTTPSPool(t, name, answer, true)
}

// NewHTTPSPool starts a pool that speaks TLS, with a certificate for
// 127.0.0.1 that CAFile names, and HTTP/1.1 alone, as IIS before version
// 10 does.
func NewHTTPSPool(t testing.TB, name string, answer Answer) *Pool {
	t.Helper()
	return newHTTPSPool(t, name, answer, false)
}

func newHTTPSPool(t testing.TB, name string, answer Answer, http2 bool) *Pool {
	t.Helper()
	p := &Pool{name: name, answer: answer, release: make(chan struct{})}
	p.healthy.Store(true)
	p.tls = httptest.NewUnstartedServer(p)
	p.tls.EnableHTTP2 = http2
	p.tls.Config.ErrorLog = quietLog
	p.tls.Config.ConnState = p.connState
	p.tls.StartTLS()
	p.port = p.tls.Listener.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() {
		close(p.release)
		p.tls.Close()
	})
	return p
}

// NewH2CPool starts a pool that speaks HTTP/2 without TLS to a client
// that starts with HTTP/2's preface (prior knowledge, as a transport's
// versions h2c does), and HTTP/1.1 to any other.
func NewH2CPool(t testing.TB, name string, answer Answer) *Pool {
	t.Helper()
	p := &Pool{name: name, port: Port(t), answer: answer, release: make(chan struct{})}
	p.protocols = new(http.Protocols)
	p.protocols.SetHTTP1(true)
	p.protocols.SetUnencryptedHTTP2(true)
	p.healthy.Store(true)
	p.Restart(t)
	t.Cleanup(func() {
		close(p.release)
		p.Kill()
	})
	return p
}

// CAFile writes the certificate of a TLS pool to a PEM file in a
// directory of the test, for a transport's tls_trust_pool file.
func (p *Pool) CAFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), p.name+"-ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.tls.Certificate().Raw})
	if err := os.WriteFile(path, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// quietLog drops net/http's server errors (a reset connection, a failed
// handshake): the tests provoke them.
var quietLog = log.New(io.Discard, "", 0)

// Restart starts the pool again after Kill, on the same port.
func (p *Pool) Restart(t testing.TB) {
	t.Helper()
	ln, err := listenAt(p.host, p.port)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p, ErrorLog: quietLog, ConnState: p.connState, Protocols: p.protocols,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, poolConnKey{}, c)
		}}
	p.mu.Lock()
	p.srv, p.ln = srv, ln
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Kill takes the pool down: it closes the listener and every
// connection. It ends each idle kept-alive connection first, from its
// own side, and waits (killWait at most) until the client has closed it
// too, so that a request sent after Kill returns finds no connection to
// reuse and is refused, as one to a pool that is down is. A connection
// that answered a request and is not idle yet (net/http marks it idle
// only after the answer went out, so its client may have read the answer
// and called Kill first) is waited for to go idle, and ended so. Crash
// leaves the race in: such a request may be written whole on a
// connection the client has not yet seen end, and lost with it. A
// request in a handler when Kill is called is cut off with its
// connection, as in a crash.
func (p *Pool) Kill() {
	p.mu.Lock()
	srv, ln := p.srv, p.ln
	p.mu.Unlock()
	if srv == nil {
		return
	}
	_ = ln.Close()
	deadline := time.After(killWait)
	for {
		var wait []chan struct{}
		p.mu.Lock()
		for conn, c := range p.conns {
			switch {
			case c.idle:
				if tcp, ok := conn.(*net.TCPConn); ok {
					if !c.ended {
						_ = tcp.CloseWrite()
						c.ended = true
					}
					wait = append(wait, c.closed)
				}
			case c.served && c.serving == 0:
				if c.changed == nil {
					c.changed = make(chan struct{})
				}
				wait = append(wait, c.changed)
			}
		}
		p.mu.Unlock()
		if len(wait) == 0 {
			break
		}
		select {
		case <-wait[0]:
		case <-deadline:
			p.Crash()
			return
		}
	}
	p.Crash()
}

// Crash closes the listener and every connection at once, as a crash
// does: a client may yet send a request on a kept-alive connection it
// has not seen end.
func (p *Pool) Crash() {
	p.mu.Lock()
	srv := p.srv
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// killWait bounds how long Kill waits for clients to close the idle
// connections it ended: a client that never does (one that sent nothing
// more) costs a test no more than this.
const killWait = 10 * time.Second

// connState counts the connections, keeps track of those Kill ends
// first and, with CloseWhenIdle, closes each one as soon as it is idle:
// right after an answer went out.
func (p *Pool) connState(conn net.Conn, state http.ConnState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		p.conns = map[net.Conn]*poolConn{}
	}
	switch state {
	case http.StateNew:
		p.Conns.Add()
		p.conns[conn] = &poolConn{closed: make(chan struct{})}
	case http.StateClosed, http.StateHijacked:
		p.Closed.Add()
		if c := p.conns[conn]; c != nil {
			c.change()
			close(c.closed)
			delete(p.conns, conn)
		}
	case http.StateIdle:
		if c := p.conns[conn]; c != nil {
			c.idle = true
			c.change()
		}
		if p.closeIdle.Load() {
			_ = conn.Close()
		}
	case http.StateActive:
		if c := p.conns[conn]; c != nil {
			c.idle = false
		}
	}
}

// CloseWhenIdle makes the pool close every kept-alive connection as soon
// as it has answered on it (on: true), without a word to the client, as a
// server does whose keep-alive timeout ran out: a client that sends its
// next request on that connection races the close.
func (p *Pool) CloseWhenIdle(on bool) { p.closeIdle.Store(on) }

// SetHealthy sets what /health answers: 200, or 503.
func (p *Pool) SetHealthy(healthy bool) { p.healthy.Store(healthy) }

// Name is the pool's name.
func (p *Pool) Name() string { return p.name }

// Addr is the pool's address as reverse_proxy dials it ("127.0.0.1:port").
func (p *Pool) Addr() string {
	if p.host != "" {
		return net.JoinHostPort(p.host, strconv.Itoa(p.port))
	}
	return Addr(p.port)
}

// URL is the pool's address as reverse_proxy takes it: https:// for a
// TLS pool.
func (p *Pool) URL() string {
	if p.tls != nil {
		return "https://" + p.Addr()
	}
	return p.Addr()
}

// ServeHTTP records a request and answers it.
func (p *Pool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if conn, ok := r.Context().Value(poolConnKey{}).(net.Conn); ok {
		p.serving(conn, 1)
		defer p.serving(conn, -1)
	}
	if r.URL.Path == "/health" {
		p.Health.Add()
		if !p.healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		return
	}
	p.Arrived.Add()
	if early := p.early.Load(); early != nil && (*early)(p, w, r) {
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // not received completely
	}
	p.mu.Lock()
	p.received = append(p.received, Received{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(body), r.Proto, r.RemoteAddr})
	p.mu.Unlock()
	p.Requests.Add()
	p.answer(p, w, r)
}

// serving counts a handler starting (1) or ending (-1) on conn.
func (p *Pool) serving(conn net.Conn, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[conn]; c != nil {
		c.serving += n
		c.served = true
		c.change()
	}
}

// Received returns the requests received so far.
func (p *Pool) Received() []Received {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Received(nil), p.received...)
}

// OperationIDs returns the operationIds of the requests received so far.
func (p *Pool) OperationIDs() []string {
	var ids []string
	for _, r := range p.Received() {
		ids = append(ids, r.OperationID())
	}
	return ids
}

// AnswerCreated answers 201 Created as a pool does, naming the pool in
// Location: /ucwa/v1/applications/1/communication/invitations/{name}.
func AnswerCreated(p *Pool, w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Location", "/ucwa/v1/applications/1/communication/invitations/"+p.name)
	w.Header().Set("X-MS-UcwaVersion", "2")
	w.WriteHeader(http.StatusCreated)
}

// AnswerStatus answers with a fixed status, headers and body.
func AnswerStatus(status int, header map[string]string, body string) Answer {
	return func(_ *Pool, w http.ResponseWriter, _ *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// AnswerAbsoluteLocation answers 201 with a Location on the pool's own
// host, as a pool that builds links from its own name does.
func AnswerAbsoluteLocation(p *Pool, w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Location", "http://"+p.Addr()+"/ucwa/v1/applications/1/communication/invitations/7?x=1")
	w.WriteHeader(http.StatusCreated)
}

// AnswerReset resets the connection after the whole request was read.
func AnswerReset(_ *Pool, w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// AnswerClose closes the connection after the whole request was read,
// without an answer.
func AnswerClose(_ *Pool, w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// AnswerHang never answers: it waits for the client to give up or for
// the test to end.
func AnswerHang(p *Pool, _ http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-p.release:
	}
}
