package caddymodule

import (
	"net/http"
	"testing"

	"golang.org/x/net/http2"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestPoolHTTP2StallCountsAsFailure: a pool that speaks HTTP/2 and
// leaves a request's stream without an answer (nor a flow-control window
// for its body) past its response_header_timeout plus
// expect_continue_timeout is a failure of its upstream for passive health
// checks, as the same silence is over HTTP/1.1 (the transport's response
// header timeout): with fail_duration (and max_fails 1, Caddy's default)
// the next request goes to the backup, or is answered 410 CannotRedirect
// without one, rather than to the pool that stalled. The stalled request
// itself is answered the edge's 504, sent to neither pool again, and with
// idempotency its operationId stays taken: a repeat is not delivered.
func TestPoolHTTP2StallCountsAsFailure(t *testing.T) {
	for _, setup := range h2Setups {
		for _, withBackup := range []bool{true, false} {
			name := setup.name + "/without backup"
			if withBackup {
				name = setup.name + "/with backup"
			}
			t.Run(name, func(t *testing.T) {
				// Its connections start with a stream window of 0: the
				// first request is granted its body and answered, the
				// second gets nothing until the edge resets its stream,
				// and the later ones are answered on the same connection.
				primary := newH2PoolWithSettings(t, setup.overTLS, []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 0}},
					func(c *h2Conn, _ int) bool {
						req := c.head()
						if req == nil {
							return false
						}
						if c.p.nextTurn() == 1 {
							for {
								switch f := c.next().(type) {
								case nil:
									return false
								case *http2.RSTStreamFrame:
									if f.StreamID == req.stream {
										return true
									}
								}
							}
						}
						return c.cont(req) && c.grant(req, req.contentLength) && c.body(req) && c.created(req)
					})
				caFile := ""
				if setup.overTLS {
					caFile = primary.caFile(t)
				}
				pools := "\t\tidempotency\n\t\tprimary " + primary.URL() + h2TransportWith(setup.versions, caFile, stallTimeouts, "fail_duration 10m")
				var backup *testkit.Pool
				if withBackup {
					backup = testkit.NewPool(t, "backup", testkit.AnswerCreated)
					pools += "\n\t\tbackup " + backup.Addr()
				}
				e := startEdge(t, "caddyfile", poolsCaddyfile(pools), testkit.WithAdmin())

				if resp := e.startPhoneAudio("warm"); resp.Status != http.StatusCreated {
					t.Fatalf("the first request: %d %s", resp.Status, resp.Body)
				}
				resp := e.startPhoneAudio("stalled")
				if resp.Status != http.StatusGatewayTimeout {
					t.Fatalf("the stalled request: %d %s, want 504", resp.Status, resp.Body)
				}
				if got := ucwaError(t, resp.Body); got.Code != "Timeout" || got.Subcode != "ServiceTimeout" {
					t.Errorf("the stalled request's body: %s, want the edge's Timeout/ServiceTimeout", resp.Body)
				}
				// The key stays taken (jwt off: a repeat is refused, never
				// given the first answer).
				if resp := e.startPhoneAudio("stalled"); resp.Status != http.StatusConflict {
					t.Errorf("the stalled request's repeat: %d %s, want 409", resp.Status, resp.Body)
				}

				next := e.startPhoneAudio("next")
				switch {
				case withBackup && (next.Status != http.StatusCreated || next.Header.Get("X-Ucwa-Pool") != "pool=backup"):
					t.Errorf("the request after the stall: %d %s (%s), want the backup's 201", next.Status, next.Body, next.Header.Get("X-Ucwa-Pool"))
				case !withBackup && next.Status != http.StatusGone:
					t.Errorf("the request after the stall: %d %s, want 410 CannotRedirect", next.Status, next.Body)
				}
				if n := countOp(primary.Complete(), "next"); n != 0 {
					t.Errorf("the primary, held back, got the request after the stall %d times", n)
				}
				if n := countOp(primary.Complete(), "stalled"); n != 0 {
					t.Errorf("the primary read the stalled request whole %d times", n)
				}
				if backup != nil {
					if n := countOp(backup.OperationIDs(), "stalled"); n != 0 {
						t.Errorf("the backup got the stalled request %d times", n)
					}
				}
				if got := e.Metric(`caddy_ucwa_pool_requests_total{outcome="timeout",pool="primary"}`); got != 1 {
					t.Errorf("primary timeouts: %v, want 1", got)
				}
			})
		}
	}
}

// TestPoolHTTP2StallNotTriedOnAnotherUpstream: a stall, which reverse_proxy
// is told is a timeout of the upstream (see
// TestPoolHTTP2StallCountsAsFailure), ends the pool's attempt even where
// the pool's load balancing retries (lb_retries, lb_try_duration): the
// request may have reached the upstream that stalled, and goes neither to
// the pool's other upstream nor to the backup.
func TestPoolHTTP2StallNotTriedOnAnotherUpstream(t *testing.T) {
	stalling := newStallingH2Pool(t, false)
	other := newH2Pool(t, false, func(c *h2Conn, _ int) bool { return serveH2(c) })
	backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
	e := startEdge(t, "caddyfile", poolsCaddyfile("\t\tprimary "+stalling.URL()+" "+other.URL()+
		h2TransportWith("h2c", "", stallTimeouts, "lb_policy first\n\t\t\tlb_retries 3\n\t\t\tlb_try_duration 1m\n\t\t\tfail_duration 10m")+
		"\n\t\tbackup "+backup.Addr()))
	if resp := e.startPhoneAudio("warm"); resp.Status != http.StatusCreated {
		t.Fatalf("the first request: %d %s", resp.Status, resp.Body)
	}
	if resp := e.startPhoneAudio("stalled"); resp.Status != http.StatusGatewayTimeout {
		t.Fatalf("the stalled request: %d %s, want 504", resp.Status, resp.Body)
	}
	if n := countOp(other.Complete(), "stalled"); n != 0 {
		t.Errorf("the pool's other upstream got the stalled request %d times", n)
	}
	if n := countOp(backup.OperationIDs(), "stalled"); n != 0 {
		t.Errorf("the backup got the stalled request %d times", n)
	}
	// The upstream that stalled is held back: the next request goes to
	// the pool's other one.
	if resp := e.startPhoneAudio("next"); resp.Status != http.StatusCreated || countOp(other.Complete(), "next") != 1 {
		t.Errorf("the request after the stall: %d %s, want 201 from the pool's other upstream (it read %v)", resp.Status, resp.Body, other.Complete())
	}
}
