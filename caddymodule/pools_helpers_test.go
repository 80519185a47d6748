package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// poolServer is a real loopback front-end pool that records the
// operationId of every startPhoneAudio request it receives completely and
// answers it with its answer function. /health answers 200 while healthy,
// else 503, and counts its hits. It can be killed and restarted on the
// same address.
type poolServer struct {
	t       *testing.T
	name    string
	addr    string
	answer  func(p *poolServer, w http.ResponseWriter, r *http.Request)
	tls     bool
	healthy atomic.Bool
	health  atomic.Int64
	arrived chan struct{} // one value per request received
	release chan struct{} // closed at cleanup, so hanging answers return
	mu      sync.Mutex
	ops     []string // operationIds received
	srv     *http.Server
	tlsSrv  *httptest.Server
}

// newPoolServer starts a pool on a fresh loopback port.
func newPoolServer(t *testing.T, name string, answer func(*poolServer, http.ResponseWriter, *http.Request)) *poolServer {
	t.Helper()
	p := &poolServer{t: t, name: name, answer: answer, arrived: make(chan struct{}, 1024), release: make(chan struct{})}
	p.healthy.Store(true)
	p.start("127.0.0.1:0")
	t.Cleanup(func() {
		close(p.release)
		p.kill()
	})
	return p
}

// newTLSPoolServer starts a pool that speaks TLS with a certificate the
// edge does not trust: every handshake fails.
func newTLSPoolServer(t *testing.T, name string) *poolServer {
	t.Helper()
	p := &poolServer{t: t, name: name, answer: answerCreated, tls: true, arrived: make(chan struct{}, 1024), release: make(chan struct{})}
	p.tlsSrv = httptest.NewTLSServer(p)
	p.addr = p.tlsSrv.Listener.Addr().String()
	t.Cleanup(func() {
		close(p.release)
		p.tlsSrv.Close()
	})
	return p
}

// start listens on addr (a fixed one for a restart) and serves.
func (p *poolServer) start(addr string) {
	p.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	srv := &http.Server{Handler: p}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// kill closes the listener and every connection at once, as a crash would.
func (p *poolServer) kill() {
	p.mu.Lock()
	srv := p.srv
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (p *poolServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		p.health.Add(1)
		if !p.healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // not received completely
	}
	var in struct {
		OperationID string `json:"operationId"`
	}
	_ = json.Unmarshal(body, &in)
	p.mu.Lock()
	p.ops = append(p.ops, in.OperationID)
	p.mu.Unlock()
	select {
	case p.arrived <- struct{}{}:
	default: // nobody waits for that many
	}
	p.answer(p, w, r)
}

// received returns the operationIds received so far.
func (p *poolServer) received() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.ops...)
}

// url is the pool's address as reverse_proxy takes it (https:// for TLS).
func (p *poolServer) url() string {
	if p.tls {
		return "https://" + p.addr
	}
	return p.addr
}

// answerCreated answers 201 as a pool does, naming itself in Location.
func answerCreated(p *poolServer, w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Location", "/ucwa/v1/applications/1/communication/invitations/"+p.name)
	w.Header().Set("X-MS-UcwaVersion", "2")
	w.WriteHeader(http.StatusCreated)
}

// answerStatus answers with a fixed status, headers and body.
func answerStatus(status int, header map[string]string, body string) func(*poolServer, http.ResponseWriter, *http.Request) {
	return func(_ *poolServer, w http.ResponseWriter, _ *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// answerAbsoluteLocation answers 201 with a Location on the pool's own
// host, as a pool that builds links from its own name does.
func answerAbsoluteLocation(p *poolServer, w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Location", "http://"+p.addr+"/ucwa/v1/applications/1/communication/invitations/7?x=1")
	w.WriteHeader(http.StatusCreated)
}

// answerReset resets the connection after the whole request was read.
func answerReset(_ *poolServer, w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// answerHang never answers: it waits for the edge to give up or for the
// test to end.
func answerHang(p *poolServer, _ http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-p.release:
	}
}

// closedAddr is a loopback address nobody listens on: a down pool.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// startPhoneAudio posts a startPhoneAudio request with operationId op to
// the edge and returns the response with its body read.
func startPhoneAudio(t *testing.T, client *http.Client, op string) (*http.Response, string) {
	t.Helper()
	return send(t, client, http.MethodPost, edgeURL("/ucwa/v1/applications/1/communication/startPhoneAudio"),
		"application/json", "", fmt.Sprintf(`{"to":"4255551234","operationId":%q}`, op), nil)
}

// adminMetrics returns the admin endpoint's /metrics text.
func adminMetrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://localhost:%d/metrics", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}
