package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestAuditClientGone: a client that goes away while its request is at
// the pool gets one audit line, status 499 as in Caddy's access log (the
// request reached the pool, which may act on it; the client got no
// answer), and no second one; with idempotency its operationId stays
// reserved. A repeat of it gets one line of its own: 409 (conflict)
// with idempotency, the pool's 201 without.
func TestAuditClientGone(t *testing.T) {
	for _, tc := range []struct {
		name, idempotency string
		// The first line's idempotency; the repeat's status and
		// idempotency.
		goneIdempotency   string
		repeat            int
		repeatIdempotency string
	}{
		{"with idempotency", "idempotency", "reserved", http.StatusConflict, "conflict"},
		{"without idempotency", "", "", http.StatusCreated, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := newIdemPool(t, "primary")
			e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	log
	ucwa {
		%s
		default_region US
		%s
		primary %s
	}
}`, idemAuth(t), tc.idempotency, pool.Addr()))
			header := idemToken(t, "tenant-1", "oid-a", "sub-a")
			ctx, cancel := context.WithCancel(context.Background())
			req := e.request(idemCall{header: header, op: "op-gone", answer: "hang"})
			req.Context = ctx
			done := make(chan error, 1)
			go func() {
				resp, err := testkit.Do(e.Client(), req)
				if err == nil {
					err = fmt.Errorf("answered %d %s", resp.Status, resp.Body)
				}
				done <- err
			}()
			pool.Requests.WaitFor(t, 1, "the request at the pool")
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("the client got %v, want its own cancellation", err)
			}
			e.Logs().Wait(t, `"msg":"handled request"`, `"status":499`)
			if resp := e.call(idemCall{header: header, op: "op-gone"}); resp.Status != tc.repeat {
				t.Fatalf("the repeat: %d %s, want %d", resp.Status, resp.Body, tc.repeat)
			}
			var lines []auditLine
			testkit.Eventually(t, "the audit lines", func() bool {
				lines = auditLines(t, e.Logs().String())
				return len(lines) >= 2
			})
			if n := len(e.Logs().Lines(`"msg":"handled request"`)); n != 2 {
				t.Fatalf("%d access log lines, want 2", n)
			}
			if len(lines) != 2 {
				t.Fatalf("%d audit lines, want 2: %+v", len(lines), lines)
			}
			for i, want := range []struct {
				status      int
				idempotency string
			}{{499, tc.goneIdempotency}, {tc.repeat, tc.repeatIdempotency}} {
				if l := lines[i]; l.OperationID != "op-gone" || l.Status != want.status || l.Idempotency != want.idempotency || l.Caller.Sub != "sub-a" {
					t.Errorf("audit line %d: %+v, want status %d, idempotency %q", i, l, want.status, want.idempotency)
				}
			}
		})
	}
}

// TestAuditClientGoneUnsent: a client that goes away before any pool had
// its request (the pool's TLS handshake still going on) gets an audit
// line of status 0 and no pool, as the README says, not reverse_proxy's
// 499 for a request a pool may act on: its operationId is released, and
// the attempt is counted client_gone.
func TestAuditClientGoneUnsent(t *testing.T) {
	stalled := newBarePool(t)
	stalled.start(func(conn net.Conn) { _, _ = io.Copy(io.Discard, conn) }) // reads the ClientHello, answers nothing
	e := startEdge(t, "caddyfile", poolsCaddyfile("\t\tprimary https://"+stalled.Addr()+"\n\t\tidempotency"), testkit.WithAdmin())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		resp, err := testkit.Do(e.Client(), testkit.Request{URL: e.url("/ucwa/v1/applications/1/communication/startPhoneAudio"),
			ContentType: "application/json", Body: `{"to":"4255551234","operationId":"unsent"}`, Context: ctx})
		if err == nil {
			err = fmt.Errorf("answered %d %s", resp.Status, resp.Body)
		}
		done <- err
	}()
	testkit.Eventually(t, "the pool's connection", func() bool { return stalled.Conns() > 0 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the client got %v, want its own cancellation", err)
	}
	var lines []auditLine
	testkit.Eventually(t, "the audit line", func() bool {
		lines = auditLines(t, e.Logs().String())
		return len(lines) >= 1
	})
	if l := lines[0]; len(lines) != 1 || l.Status != 0 || l.Pool != "" || l.Idempotency != "reserved" {
		t.Errorf("audit lines %+v, want one of status 0, no pool, idempotency reserved", lines)
	}
	if got := e.Metric(`caddy_ucwa_pool_requests_total{outcome="client_gone",pool="primary"}`); got != 1 {
		t.Errorf("primary client_gone: %v, want 1", got)
	}
}
