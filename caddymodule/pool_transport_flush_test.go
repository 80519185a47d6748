package caddymodule

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestPoolRequestWriteFailsAtFlush: a request that fits the connection's
// write buffer is written to the pool at the transport's flush, after
// net/http reported its write ended without an error (WroteRequest comes
// at the end of Request.write, whose bytes are still in the buffer then);
// a flush that fails wrote nothing, or not the whole request. Such a
// request was not received: on a kept-alive connection it goes out again
// on another one, where the pool takes it once.
//
// The pool is on a Unix socket: after answering the first request on its
// first connection it shuts that connection's reading side down, before
// its answer goes out, so that the edge's next request on it fails to be
// written (EPIPE) with nothing written, while the edge sees no end of the
// connection. The request goes without Expect (the connection is not
// idle for a second): in one write, at the flush. With the expectation
// the headers go alone, flushed before Request.write waits for 100
// Continue, and their write fails within it.
func TestPoolRequestWriteFailsAtFlush(t *testing.T) {
	for _, tc := range []struct {
		name, expectAfterIdle string
		// bodyless: the request is a POST without a body, whose write
		// fails with nothing written: net/http sends it again itself on a
		// new connection, which the attempt lets through (see
		// reportOutgoing); the attempt itself then ends answered.
		bodyless bool
	}{
		{"without Expect", "1s", false},
		{"Expect: 100-continue on every connection", "0", false},
		{"a POST without a body", "1s", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := newDeafPool(t)
			e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		jwt off
		default_region US
		expect_continue_after_idle %s
		primary unix/%s
	}
}`, tc.expectAfterIdle, pool.path), testkit.WithAdmin())
			for i := range 2 {
				req := testkit.Request{URL: startPath, ContentType: "application/json",
					Body: fmt.Sprintf(`{"to":"4255551234","operationId":"op-flush-%d"}`, i)}
				if tc.bodyless {
					req = testkit.Request{Method: http.MethodPost, URL: acceptPath}
				}
				if resp := e.send(req); resp.Status != http.StatusNoContent {
					t.Fatalf("request %d: %d %s, want the pool's 204", i, resp.Status, resp.Body)
				}
			}
			if got, want := pool.received(), 2; got != want {
				t.Errorf("the pool received %d requests, want %d", got, want)
			}
			if got := pool.connections(); got != 2 {
				t.Errorf("the edge made %d connections to the pool, want 2 (the second request on a new one)", got)
			}
			if got, want := e.Metric(`caddy_ucwa_pool_requests_total{outcome="stale_connection",pool="primary"}`), 1.0; got != want && !tc.bodyless {
				t.Errorf("stale connections %v, want %v", got, want)
			}
		})
	}
}

const acceptPath = "/ucwa/v1/applications/192/communication/invitations/i1/acceptWithPhoneAudio"

// deafPool is a pool on a Unix stream socket that answers every request
// 204, and stops reading its first connection (shutdown SHUT_RD) once it
// has read the first request on it, before it answers: a write of the
// edge's to that connection then fails (EPIPE) with nothing written,
// while the connection stays open for the edge's reads.
type deafPool struct {
	path  string
	done  chan struct{} // closed at the test's end
	mu    sync.Mutex
	got   int
	conns int
}

func newDeafPool(t *testing.T) *deafPool {
	t.Helper()
	p := &deafPool{path: filepath.Join(t.TempDir(), "pool.sock"), done: make(chan struct{})}
	serveSocket(t, "unix", p.path, func(conn net.Conn, n int) {
		p.mu.Lock()
		p.conns++
		p.mu.Unlock()
		p.serve(conn.(*net.UnixConn), n == 1)
	})
	// Cleanups run last first: the first connection's serve returns
	// before serveSocket waits for it.
	t.Cleanup(func() { close(p.done) })
	return p
}

func (p *deafPool) serve(conn *net.UnixConn, deafAfterOne bool) {
	br := bufio.NewReader(conn)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if req.Header.Get("Expect") == "100-continue" {
			if _, err := io.WriteString(conn, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
				return
			}
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		p.mu.Lock()
		p.got++
		p.mu.Unlock()
		if deafAfterOne {
			if err := conn.CloseRead(); err != nil {
				return
			}
		}
		if _, err := io.WriteString(conn, "HTTP/1.1 204 No Content\r\n\r\n"); err != nil {
			return
		}
		if deafAfterOne {
			// Open for the edge's reads, as a connection it keeps
			// alive, until the test ends.
			<-p.done
			return
		}
	}
}

func (p *deafPool) received() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got
}

func (p *deafPool) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

// TestIsWriteError: the errors a round trip ends with when its request's
// write failed (see isWriteError), however net/http wraps them, and the
// errors of a round trip whose request may have reached the pool, or
// that ended for a reason of its own.
func TestIsWriteError(t *testing.T) {
	epipe := &net.OpError{Op: "write", Net: "unix", Err: syscall.EPIPE}
	closedRead := &net.OpError{Op: "read", Net: "unix", Err: net.ErrClosed}
	for _, tc := range []struct {
		name         string
		err          error
		renegotiates bool
		want         bool
	}{
		{"the flush's write error", epipe, false, true},
		{"the write error, wrapped", fmt.Errorf("write error: %w", epipe), false, true},
		{"the reader of the connection the write error closed", fmt.Errorf("net/http: Transport failed to read from server: %w", closedRead), false, true},
		{"the pool reset the connection after the request", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, false, false},
		{"the pool closed the connection after the request", io.ErrUnexpectedEOF, false, false},
		{"a read timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, false, false},
		{"the request was canceled", context.Canceled, false, false},
		{"a dial error", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, false, false},
		// The reader's renegotiation handshake, whose write fails in
		// Read once the request went out whole.
		{"a write error where TLS renegotiates", fmt.Errorf("net/http: Transport failed to read from server: %w", epipe), true, false},
		{"the reader of the connection the write error closed, where TLS renegotiates", fmt.Errorf("net/http: Transport failed to read from server: %w", closedRead), true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isWriteError(tc.err, tc.renegotiates); got != tc.want {
				t.Errorf("isWriteError(%v, %v) = %v, want %v", tc.err, tc.renegotiates, got, tc.want)
			}
		})
	}
}
