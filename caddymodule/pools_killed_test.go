package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// TestPoolKilledWithKeptAliveConnection: the primary is killed right
// after it answered, and the next request may meet the connection it
// answered on before the edge noticed that connection close. With
// `Expect: 100-continue` on every connection (expect_continue_after_idle
// 0), such a request never leaves more than its headers, which the edge
// knows the pool did not act on: it goes to the backup, never 502. Without
// it (the default, for a connection idle less than 1s), the request goes
// out whole in one write (see poolTransport): when the dead connection's
// kernel takes it, the pool may have had it as far as the edge can tell,
// and it is answered 502; when the write fails (the pool's reset came
// first), it goes to the backup. Either way nothing reaches a pool twice,
// and the dead primary gets nothing.
//
// The test goes round by round (restart the primary, a request that
// leaves a kept-alive connection to it, kill it, the request under test)
// until enough requests met the dead connection (which depends on the
// scheduler: a request that did not was refused its dial and went to the
// backup), within a bound of rounds.
func TestPoolKilledWithKeptAliveConnection(t *testing.T) {
	const (
		wantMet   = 5   // rounds whose request met the dead connection
		maxRounds = 200 // bound on the rounds
	)
	for _, tc := range []struct {
		name     string
		h2c      bool
		expect   bool // expect_continue_after_idle 0
		failOver bool // every request under test goes to the backup
	}{
		{"HTTP/1.1, Expect on every connection", false, true, true},
		{"h2c, Expect on every connection", true, true, true},
		{"HTTP/1.1, default", false, false, false},
		{"h2c, default", true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// expect_continue_timeout as in waitForBody: a loaded machine
			// may take a while to see the dead connection's reset, and the
			// body is not to go out meanwhile.
			transport := "\t\t\t\texpect_continue_timeout 10m\n"
			primary := testkit.NewPool(t, "primary", testkit.AnswerCreated)
			if tc.h2c {
				primary = testkit.NewH2CPool(t, "primary", testkit.AnswerCreated)
				transport += "\t\t\t\tversions h2c\n"
			}
			pools := ""
			if tc.expect {
				pools = expectOnEveryRequest
			}
			backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
			e := startEdge(t, "caddyfile", poolsCaddyfile(pools+"\t\tprimary "+primary.Addr()+" {\n\t\t\ttransport http {\n"+transport+"\t\t\t}\n\t\t}"+
				"\n\t\tbackup "+backup.Addr()), testkit.WithAdmin())
			stale := func() float64 {
				return e.Metric(`caddy_ucwa_pool_requests_total{outcome="stale_connection",pool="primary"}`)
			}

			status := map[int]int{}
			var met, rounds int
			var killedOps []string
			for rounds = 0; met < wantMet && rounds < maxRounds; rounds++ {
				if rounds > 0 {
					primary.Restart(t)
				}
				if resp := e.startPhoneAudio(fmt.Sprintf("warm-%d", rounds)); resp.Status != http.StatusCreated || servedBy(resp) != "primary" {
					t.Fatalf("round %d, the primary up: %d %s from %q, want 201 from the primary", rounds, resp.Status, resp.Body, servedBy(resp))
				}
				// Read before the kill: a request to the edge's admin
				// endpoint in between gives it time to see the close.
				staleBefore := stale()
				primary.Crash()
				op := fmt.Sprintf("killed-%d", rounds)
				killedOps = append(killedOps, op)
				resp := e.startPhoneAudio(op)
				status[resp.Status]++
				switch {
				case resp.Status == http.StatusCreated && servedBy(resp) == "backup":
					if stale() > staleBefore {
						met++ // stale, then refused: the backup took it
					}
				case resp.Status == http.StatusBadGateway && !tc.failOver:
					var body struct{ Code, Subcode string }
					if json.Unmarshal([]byte(resp.Body), &body) != nil || body.Code != "ServiceFailure" || body.Subcode != ucwa.SubcodeServiceFailure {
						t.Fatalf("round %d: 502 without a UCWA ServiceFailure body: %s", rounds, resp.Body)
					}
					met++ // written whole on the dead connection
				default:
					t.Fatalf("round %d, the primary killed: %d %s from %q, want 201 from the backup%s",
						rounds, resp.Status, resp.Body, servedBy(resp), map[bool]string{false: " or 502"}[tc.failOver])
				}
			}
			t.Logf("%d rounds: answers by status %v after the kill; %d met the dead connection (%v stale)", rounds, status, met, stale())
			if met == 0 {
				t.Errorf("no request met the dead connection in %d rounds: the test tested nothing", rounds)
			}
			receivedOnce(t, primary, backup)
			atPrimary := map[string]bool{}
			for _, op := range primary.OperationIDs() {
				atPrimary[op] = true
			}
			for _, op := range killedOps {
				if atPrimary[op] {
					t.Errorf("%s reached the primary after it was killed", op)
				}
			}
		})
	}
}

// servedBy is the pool that served a request, from the header
// poolsCaddyfile adds ("" when none did).
func servedBy(resp testkit.Response) string {
	return strings.TrimPrefix(resp.Header.Get("X-Ucwa-Pool"), "pool=")
}
