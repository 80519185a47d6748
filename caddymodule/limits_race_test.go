package caddymodule

import (
	"net/http"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestLimitRace: requests of one caller that race a limit on one edge
// take no more than its count between them, in both stores; and copies
// of one request with an operationId that race each other reach the
// pool once, whatever the limit has room for.
func TestLimitRace(t *testing.T) {
	const racers, count = 16, 4
	for _, st := range limitStores {
		t.Run(st.name, func(t *testing.T) {
			e := startLimitEdge(t, st.config(t), "idempotency", "limit calls 4 per 1h")
			t.Run("calls without operationId", func(t *testing.T) {
				alice := caller{"tenant-1", "alice"}.header(t)
				reqs := make([]testkit.Request, racers)
				for i := range reqs {
					reqs[i] = callTo("+14255551234", alice)
				}
				created := 0
				for _, resp := range sendAtOnce(t, []*testkit.Caddy{e.Caddy}, reqs) {
					if resp.Status == http.StatusCreated {
						created++
					} else {
						assertLimited(t, resp, "calls", 900)
					}
				}
				if created != count {
					t.Errorf("%d calls answered 201, want %d", created, count)
				}
			})
			t.Run("copies of one call", func(t *testing.T) {
				bob := caller{"tenant-1", "bob"}.header(t)
				before := deliveries(e.pool, "race-1")
				reqs := make([]testkit.Request, racers)
				for i := range reqs {
					reqs[i] = limitRequest("/communication/startPhoneAudio", `{"to":"+14255551234","operationId":"race-1"}`, bob)
				}
				for i, resp := range sendAtOnce(t, []*testkit.Caddy{e.Caddy}, reqs) {
					switch {
					case resp.Status == http.StatusCreated:
					case resp.Status == http.StatusConflict && resp.Header.Get(headerReplayed) == "":
					default:
						t.Errorf("copy %d: %d %s, want 201 (the call or its replay) or 409", i, resp.Status, resp.Body)
					}
				}
				if got := deliveries(e.pool, "race-1") - before; got != 1 {
					t.Errorf("the pool got the call %d times, want once", got)
				}
				// One event taken: bob has count-1 left.
				for i := range count - 1 {
					if resp := e.send(callTo("+14255551234", bob)); resp.Status != http.StatusCreated {
						t.Fatalf("bob's call %d after the race: %d %s", i+1, resp.Status, resp.Body)
					}
				}
				assertLimited(t, e.send(callTo("+14255551234", bob)), "calls", 900)
			})
		})
	}
}
