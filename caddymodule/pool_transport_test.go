package caddymodule

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// TestPoolRequestWrites: the edge writes a request whose headers and
// body fit the connection's write buffer to the pool in one write(2)
// (see poolTransport), on a new connection and on a kept-alive one; with
// Expect: 100-continue, the headers go first and the body once the pool
// said 100 Continue. The pool is on a Unix socket of SOCK_SEQPACKET
// type, which keeps each write of the edge's a message of its own: the
// pool counts the messages each request came in.
func TestPoolRequestWrites(t *testing.T) {
	for _, tc := range []struct {
		name, pool      string // the primary's subdirectives
		expectAfterIdle string
		wantWrites      []int // each request's, in order
		wantExpect      bool
	}{
		{"without Expect", "\t\theader_up -Expect\n", "1s", []int{1, 1}, false},
		{"Expect: 100-continue on every connection", "", "0", []int{2, 2}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := newPacketPool(t)
			e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		jwt off
		default_region US
		expect_continue_after_idle %s
		primary unixpacket/%s {
%s		}
	}
}`, tc.expectAfterIdle, pool.path, tc.pool))
			for i := range tc.wantWrites {
				body := fmt.Sprintf(`{"to":"4255551234","operationId":"op-writes-%d"}`, i)
				if resp := e.postJSON(startPath, body, nil); resp.Status != http.StatusNoContent {
					t.Fatalf("request %d: status %d: %s", i, resp.Status, resp.Body)
				}
			}
			got := pool.requests()
			var writes []int
			for i, r := range got {
				writes = append(writes, r.writes)
				if r.expect != tc.wantExpect {
					t.Errorf("request %d: Expect: 100-continue %v, want %v", i, r.expect, tc.wantExpect)
				}
			}
			if !slices.Equal(writes, tc.wantWrites) {
				t.Errorf("the requests came in %v writes each, want %v", writes, tc.wantWrites)
			}
		})
	}
}

// packetPool is a pool on a Unix socket of SOCK_SEQPACKET type, where
// each write of the edge's to the connection arrives as a message of its
// own. It answers every request 204, after 100 Continue to one that
// expects it, and records how many messages each came in.
type packetPool struct {
	path string
	mu   sync.Mutex
	got  []packetRequest
}

// packetRequest is a request a packetPool received: in how many writes,
// and whether it expected 100 Continue.
type packetRequest struct {
	writes int
	expect bool
}

func newPacketPool(t *testing.T) *packetPool {
	t.Helper()
	p := &packetPool{path: filepath.Join(t.TempDir(), "pool.sock")}
	serveSocket(t, "unixpacket", p.path, func(conn net.Conn, _ int) { p.serve(conn) })
	return p
}

// serveSocket listens on network and path and serves each connection it
// accepts with serve (n counts them from 1) on a goroutine of its own,
// until the test ends: then it closes the listener and every connection,
// and waits for the goroutines.
func serveSocket(t *testing.T, network, path string, serve func(conn net.Conn, n int)) {
	t.Helper()
	ln, err := net.Listen(network, path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for n := 1; ; n++ {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[conn] = true
			mu.Unlock()
			wg.Go(func() {
				defer conn.Close()
				serve(conn, n)
			})
		}
	})
}

// serve reads the requests on conn one message at a time, a message
// being one write of the edge's (the buffer holds any the edge writes).
func (p *packetPool) serve(conn net.Conn) {
	msg := make([]byte, 256<<10)
	var pending []byte
	for {
		var r packetRequest
		var req *http.Request
		var head int
		for req == nil {
			n, err := conn.Read(msg)
			if err != nil {
				return
			}
			pending = append(pending, msg[:n]...)
			r.writes++
			if head = bytes.Index(pending, []byte("\r\n\r\n")) + 4; head < 4 {
				continue
			}
			if req, err = http.ReadRequest(bufio.NewReader(bytes.NewReader(pending[:head]))); err != nil {
				return
			}
		}
		r.expect = req.Header.Get("Expect") == "100-continue"
		end := head + int(req.ContentLength)
		if r.expect && len(pending) < end {
			if _, err := io.WriteString(conn, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
				return
			}
		}
		for len(pending) < end {
			n, err := conn.Read(msg)
			if err != nil {
				return
			}
			pending = append(pending, msg[:n]...)
			r.writes++
		}
		pending = pending[end:]
		p.mu.Lock()
		p.got = append(p.got, r)
		p.mu.Unlock()
		if _, err := io.WriteString(conn, "HTTP/1.1 204 No Content\r\n\r\n"); err != nil {
			return
		}
	}
}

// requests returns the requests the pool received, in order.
func (p *packetPool) requests() []packetRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}
