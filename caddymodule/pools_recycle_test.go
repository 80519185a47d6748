package caddymodule

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestHookedConnTraceNotRecycledWhileWriting: a pool that answers before
// it reads the body leaves net/http writing the request after the round
// trip returned, and the write reports its end (WroteRequest, one of the
// attempt's hooks) only later, once the pool reads on or the transport
// closes the connection. The attempt's connTrace, recycled for the next
// attempt on a pool whose hooks are set on send, must not go back while
// that hook may still be called: the race detector sees the late hook
// write into a connTrace the attempt cleared and handed on (run with
// -race). The pool reads on only once the edge logged the request, after
// the attempt returned. The next request is delivered.
func TestHookedConnTraceNotRecycledWhileWriting(t *testing.T) {
	size := largerThanSocketBuffers(t)
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
				_, _ = io.Copy(io.Discard, req.Body)
				if _, err := io.WriteString(conn, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"); err != nil {
					return
				}
				continue
			}
			// Answered at once, the body unread until the test says so; the
			// edge's transport closes the connection meanwhile, or the body
			// is read whole.
			if _, err := io.WriteString(conn, "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"); err != nil {
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
	// No Expect: 100-continue (which would hold the body back until the
	// pool asked for it): the body goes out with the headers.
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	log
	ucwa {
		jwt off
		default_region US
		max_body_size %d
		primary %s {
			header_up -Expect
		}
	}
}`, size+1<<10, pool.Addr()))

	body := fmt.Sprintf(`{"to":"4255551234","operationId":"op-early","x":%q}`, strings.Repeat("a", size))
	if resp := e.postJSON(startPath, body, nil); resp.Status != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	e.Logs().Wait(t, `"msg":"handled request"`, `"status":201`)
	close(release)
	<-firstEnded

	resp := e.postJSON(startPath, `{"to":"4255551234","operationId":"op-next"}`, nil)
	if resp.Status != http.StatusCreated {
		t.Fatalf("the next request: status %d: %s", resp.Status, resp.Body)
	}
}
