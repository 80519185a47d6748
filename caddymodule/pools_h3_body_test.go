package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestPoolHTTP3FailsMidBody: a pool over HTTP/3 that fails a request
// (resets its stream) while quic-go is still writing the body, from a
// goroutine of its own that the failed round trip does not wait for,
// never has the request delivered twice. Reset as its head arrives, the
// pool never received the request: the backup gets it (201) when quic-go
// had not taken the whole body yet as the attempt told what the pool may
// have received, and the client gets 502 otherwise (quic-go may have sent
// it all), whichever came first; a late read of the body gets nothing
// more out. Reset once it read the body whole, the pool received it once,
// and the client gets 502.
//
// The body is larger than quic-go writes at once (8 KiB), so that it is
// still being read as the pool's reset comes back; under the race
// detector the requests are many, so that in every run the attempt tells
// what is left of the body while quic-go reads it (a race on the
// reader's position, and on the count of what reverse_proxy's wrappers
// of the body read, which quic-go closes on the round trip's goroutine).
func TestPoolHTTP3FailsMidBody(t *testing.T) {
	const startPath = "/ucwa/v1/applications/1/communication/startPhoneAudio"
	abort := func(*testkit.Pool, http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }
	pad := strings.Repeat("a", 32<<10)
	for _, tc := range []struct {
		name string
		// early: the pool fails the request as its head arrives, before
		// it reads the body; else once it read the body whole.
		early    bool
		requests int
	}{
		{name: "resets the stream as the head arrives", early: true, requests: 40},
		{name: "resets the stream once it read the body whole", requests: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer := abort
			if tc.early {
				answer = testkit.AnswerCreated
			}
			primary := testkit.NewHTTP3Pool(t, "primary", answer)
			if tc.early {
				primary.SetEarly(func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) bool {
					abort(p, w, r)
					return true
				})
			}
			backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
			e := startEdge(t, "caddyfile", poolsCaddyfile("\t\tprimary "+primary.URL()+h2Transport("3", primary.CAFile(t))+"\n\t\tbackup "+backup.Addr()))
			requests := tc.requests
			if !raceDetector {
				requests = min(requests, 4)
			}
			for i := range requests {
				op := fmt.Sprintf("op-h3-mid-%d", i)
				resp := e.send(testkit.Request{URL: startPath, ContentType: "application/json",
					Body: `{"to":"4255551234","operationId":"` + op + `","x":"` + pad + `"}`})
				toPrimary, toBackup := deliveries(primary, op), deliveries(backup, op)
				switch {
				case toPrimary+toBackup > 1:
					t.Errorf("%s: delivered %d times (primary %d, backup %d)", op, toPrimary+toBackup, toPrimary, toBackup)
				case !tc.early && (resp.Status != http.StatusBadGateway || toPrimary != 1):
					t.Errorf("%s: status %d, the primary received it %d times; want 502 and once", op, resp.Status, toPrimary)
				case tc.early && toPrimary != 0:
					t.Errorf("%s: the primary received it, which it reset as its head arrived", op)
				case tc.early && resp.Status == http.StatusCreated && (toBackup != 1 || resp.Header.Get("X-Ucwa-Pool") != "pool=backup"):
					t.Errorf("%s: 201 from %q, the backup received it %d times", op, resp.Header.Get("X-Ucwa-Pool"), toBackup)
				case tc.early && resp.Status == http.StatusBadGateway && toBackup != 0:
					t.Errorf("%s: 502, but the backup received it", op)
				case tc.early && resp.Status != http.StatusCreated && resp.Status != http.StatusBadGateway:
					t.Errorf("%s: status %d %s, want 201 from the backup or 502", op, resp.Status, resp.Body)
				}
			}
		})
	}
}
