package testkit

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// RawUpstream is a loopback HTTP/1.1 server that records every request
// exactly as it came on the wire (request line, headers, body framing,
// trailers), for tests of what a proxy sends. It answers each request 201
// Created with an empty body and keeps connections alive. A request that
// expects 100-continue gets its 100 Continue before its body is read, as
// from net/http's server: the proxy's body does not wait out its
// expect_continue_timeout (1s for a pool of the edge).
type RawUpstream struct {
	ln net.Listener

	mu       sync.Mutex
	received []RawRequest
	conns    map[net.Conn]bool
}

// RawRequest is one request a RawUpstream received.
type RawRequest struct {
	// Raw is the request's bytes as they came.
	Raw string
	// Request is the request as net/http reads it, its Trailer filled
	// in; its body, read whole, is Body.
	*http.Request
	Body string
}

// NewRawUpstream starts a RawUpstream on a reserved loopback port; it
// stops when the test ends.
func NewRawUpstream(t testing.TB) *RawUpstream {
	t.Helper()
	ln, err := Listen(Port(t))
	if err != nil {
		t.Fatal(err)
	}
	u := &RawUpstream{ln: ln, conns: map[net.Conn]bool{}}
	go u.accept()
	t.Cleanup(u.close)
	return u
}

// Addr is the upstream's address ("127.0.0.1:port").
func (u *RawUpstream) Addr() string { return u.ln.Addr().String() }

// Received returns the requests received so far.
func (u *RawUpstream) Received() []RawRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]RawRequest(nil), u.received...)
}

func (u *RawUpstream) close() {
	_ = u.ln.Close()
	u.mu.Lock()
	defer u.mu.Unlock()
	for c := range u.conns {
		_ = c.Close()
	}
}

func (u *RawUpstream) accept() {
	for {
		c, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.mu.Lock()
		u.conns[c] = true
		u.mu.Unlock()
		go u.serve(c)
	}
}

// serve reads requests off one connection. The proxy sends the next
// request only after the answer to the last, so every byte read before an
// answer belongs to the request it answers.
func (u *RawUpstream) serve(c net.Conn) {
	defer func() {
		_ = c.Close()
		u.mu.Lock()
		delete(u.conns, c)
		u.mu.Unlock()
	}()
	var raw bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &raw))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if req.ProtoAtLeast(1, 1) && strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
			_ = c.SetWriteDeadline(time.Now().Add(time.Minute))
			if _, err := io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
				return
			}
		}
		body, err := io.ReadAll(req.Body) // and the trailers
		if err != nil {
			return
		}
		// What br holds already belongs to the next request.
		n := raw.Len() - br.Buffered()
		rec := RawRequest{Raw: string(raw.Bytes()[:n]), Request: req, Body: string(body)}
		rest := append([]byte(nil), raw.Bytes()[n:]...)
		raw.Reset()
		raw.Write(rest)
		u.mu.Lock()
		u.received = append(u.received, rec)
		u.mu.Unlock()
		_ = c.SetWriteDeadline(time.Now().Add(time.Minute))
		if _, err := io.WriteString(c, "HTTP/1.1 201 Created\r\nLocation: /ucwa/v1/applications/1/communication/invitations/raw\r\nContent-Length: 0\r\n\r\n"); err != nil {
			return
		}
	}
}

// SendRaw writes request, exactly as given, on a new connection to addr
// and reads the final answer (after any 100 Continue). The connection is
// closed afterwards.
func SendRaw(t testing.TB, addr, request string) Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	for err == nil && resp.StatusCode == http.StatusContinue {
		resp, err = http.ReadResponse(br, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}
