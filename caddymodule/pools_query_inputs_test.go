package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"testing"
)

// TestPoolQueryInputsWithBody: a request with inputs in its query and a
// body may be acted on by a pool that has its head alone (a pool reading
// its inputs with Request[name] needs no body), so a body the pool never
// read says nothing: a pool that took the head and failed may have placed
// the call, and the request is answered 502, never sent to the backup. The
// same failures with every input in the body go to the backup (410
// without one): the pool could not have acted on a body it never read.
func TestPoolQueryInputsWithBody(t *testing.T) {
	const path = "/ucwa/v1/applications/1/communication/startPhoneAudio"
	// unread: with its inputs in the body, the request is known not to
	// have reached the pool whole (the body was held back for the
	// pool's 100 Continue); after it, the body may be in the pool's
	// buffers, whatever it read of it.
	turns := []struct {
		name   string
		unread bool
		turn   func(c *scriptConn) bool
	}{
		{"reads the headers, closes", true, func(c *scriptConn) bool { c.head(); return false }},
		{"reads the headers, resets", true, func(c *scriptConn) bool { c.head(); resetConn(c.Conn); return false }},
		{"100 Continue, half the body, closes", false, func(c *scriptConn) bool {
			req := c.head()
			c.cont(req)
			if req != nil {
				_, _ = io.CopyN(io.Discard, req.Body, req.ContentLength/2)
			}
			return false
		}},
	}
	requests := []struct {
		name, query, body string
		mayHaveReached    bool
	}{
		{"inputs in the query", "?to=4255551234&operationId=op-q", `{"subject":"a call"}`, true},
		{"operationId in the query", "?operationId=op-q", `{"to":"4255551234","subject":"a call"}`, true},
		{"inputs in the body", "", `{"to":"4255551234","operationId":"op-q","subject":"a call"}`, false},
	}
	for _, tc := range turns {
		for _, rq := range requests {
			for _, withBackup := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/%s/backup=%v", tc.name, rq.name, withBackup), func(t *testing.T) {
					primary := newScriptPool(t, func(c *scriptConn, nth int) bool { return tc.turn(c) })
					e, backup := startScriptEdge(t, primary, withBackup)
					resp := e.postJSON(path+rq.query, rq.body, nil)
					primary.mu.Lock()
					heads := primary.heads
					primary.mu.Unlock()
					if heads != 1 {
						t.Fatalf("the primary read %d request heads, want 1", heads)
					}
					backupGot := 0
					if backup != nil {
						backupGot = len(backup.Received())
					}
					switch {
					case rq.mayHaveReached || !tc.unread:
						if resp.Status != http.StatusBadGateway || backupGot != 0 {
							t.Errorf("status %d, backup got %d: want 502 and nothing at the backup (the primary had the head)", resp.Status, backupGot)
						}
						assertUCWAError(t, resp, "ServiceFailure", "ServiceFailure", nil, false)
					case withBackup:
						if resp.Status != http.StatusCreated || backupGot != 1 {
							t.Errorf("status %d, backup got %d: want the backup's 201", resp.Status, backupGot)
						}
					default:
						if resp.Status != http.StatusGone {
							t.Errorf("status %d, want 410", resp.Status)
						}
					}
				})
			}
		}
	}
}
