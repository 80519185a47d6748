package caddymodule

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestNoPoolRetryAfterPoolsFull: a request that no pool takes because
// every upstream of both is at its unhealthy_request_count (or
// max_requests) gets a 503 with Retry-After: 1, not the pools'
// fail_duration: no health check holds an upstream back, and each is
// tried again at the next request, as soon as one of its requests is
// done; whether a pool names its upstreams or finds them by a dynamic
// upstream source. The requests that filled them are answered by their
// pools.
func TestNoPoolRetryAfterPoolsFull(t *testing.T) {
	for _, tc := range []struct {
		name string
		// dynamic: whether the primary's and the backup's upstreams come
		// from a dynamic upstream source.
		dynamic [2]bool
	}{
		{"named", [2]bool{false, false}},
		{"dynamic", [2]bool{true, true}},
		{"dynamic primary, named backup", [2]bool{true, false}},
		{"named primary, dynamic backup", [2]bool{false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			held := func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) {
				<-release
				testkit.AnswerCreated(p, w, r)
			}
			var pools string
			fes := make([]*testkit.Pool, 2)
			for i, name := range []string{"primary", "backup"} {
				fes[i] = testkit.NewPool(t, name, held)
				addr := fes[i].Addr() + " {"
				if tc.dynamic[i] {
					addr = "{\n\t\t\t" + dynamicUpstreams(t, []string{fes[i].Addr()})
				}
				pools += "\t\t" + name + " " + addr + "\n\t\t\tfail_duration 30s\n\t\t\tunhealthy_request_count 1\n\t\t}\n"
			}
			e := startEdge(t, "caddyfile", poolsCaddyfile(pools))
			var answers []<-chan testkit.Response
			for i, p := range fes {
				answers = append(answers, e.sendHeld(t, idemCall{op: fmt.Sprint("filling-", i)}))
				p.Arrived.WaitFor(t, 1, "requests at the "+p.Name())
			}
			resp := e.startPhoneAudio("op-full")
			if resp.Status != http.StatusServiceUnavailable {
				t.Fatalf("%d %s, want 503", resp.Status, resp.Body)
			}
			assertRetryAfter(t, resp, "1")
			close(release)
			for i, answer := range answers {
				if resp := <-answer; resp.Status != http.StatusCreated {
					t.Errorf("filling-%d: %d %s, want 201", i, resp.Status, resp.Body)
				}
			}
			for _, p := range fes {
				if got := p.OperationIDs(); len(got) != 1 {
					t.Errorf("the %s received %v, want its filling request alone", p.Name(), got)
				}
			}
		})
	}
}
