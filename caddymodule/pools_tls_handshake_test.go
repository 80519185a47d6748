package caddymodule

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestPoolTLSHandshakeStalls: a pool over TLS, or an https forward proxy
// in front of a pool, that takes the TCP connection but never answers
// the TLS handshake (a front end whose TLS layer hangs, an appliance in
// front of one that accepts for it) never had the request: once the
// transport's handshake timeout passed, it goes to the backup (410
// CannotRedirect without one), rather than waiting, past the transport's
// response_header_timeout, until the client gives up. Caddy's transport
// sets no handshake timeout of its own.
func TestPoolTLSHandshakeStalls(t *testing.T) {
	saved := poolTLSHandshakeTimeout
	poolTLSHandshakeTimeout = 200 * time.Millisecond
	t.Cleanup(func() { poolTLSHandshakeTimeout = saved })
	for _, stalls := range []string{"pool", "forward proxy"} {
		for _, withBackup := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/backup=%v", stalls, withBackup), func(t *testing.T) {
				stalled := newBarePool(t)
				stalled.start(func(conn net.Conn) { _, _ = io.Copy(io.Discard, conn) }) // reads the ClientHello, answers nothing
				primary, proxy := "https://"+stalled.Addr(), ""
				if stalls == "forward proxy" {
					// A pool that would answer, behind the proxy.
					primary = testkit.NewPool(t, "primary", testkit.AnswerCreated).URL()
					proxy = "\n\t\t\t\tnetwork_proxy ucwa_test_fixed https://" + stalled.Addr()
				}
				pools := "\t\tprimary " + primary + " {\n\t\t\ttransport http {\n\t\t\t\tresponse_header_timeout 1s" + proxy + "\n\t\t\t}\n\t\t}"
				var backup *testkit.Pool
				if withBackup {
					backup = testkit.NewPool(t, "backup", testkit.AnswerCreated)
					pools += "\n\t\tbackup " + backup.Addr()
				}
				assertStalledPrimaryFailsOver(t, pools, backup)
			})
		}
	}
}

// assertStalledPrimaryFailsOver starts an edge with pools, whose primary
// stalls before it could have the request, and asserts that a request
// gets the backup's 201 once (410 without a backup) and counts the
// primary unavailable once.
func assertStalledPrimaryFailsOver(t *testing.T, pools string, backup *testkit.Pool) {
	t.Helper()
	e := startEdge(t, "caddyfile", poolsCaddyfile(pools), testkit.WithAdmin())
	// Only a bound for the test: without a bound on the stall the
	// request waits for the client.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := testkit.Do(e.Client(), testkit.Request{URL: e.url("/ucwa/v1/applications/1/communication/startPhoneAudio"),
		ContentType: "application/json", Body: `{"to":"4255551234","operationId":"stalled"}`, Context: ctx})
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	want := http.StatusGone
	if backup != nil {
		want = http.StatusCreated
	}
	if resp.Status != want {
		t.Errorf("%d %s, want %d", resp.Status, resp.Body, want)
	}
	if backup != nil {
		if n := countOp(backup.OperationIDs(), "stalled"); n != 1 {
			t.Errorf("the backup got the request %d times, want once", n)
		}
	}
	if got := e.Metric(`caddy_ucwa_pool_requests_total{outcome="unavailable",pool="primary"}`); got != 1 {
		t.Errorf("primary unavailable: %v, want 1", got)
	}
}
