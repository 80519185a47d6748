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
// done. The requests that filled them are answered by their pools.
func TestNoPoolRetryAfterPoolsFull(t *testing.T) {
	release := make(chan struct{})
	held := func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) {
		<-release
		testkit.AnswerCreated(p, w, r)
	}
	primary := testkit.NewPool(t, "primary", held)
	backup := testkit.NewPool(t, "backup", held)
	const block = " {\n\t\t\tfail_duration 30s\n\t\t\tunhealthy_request_count 1\n\t\t}"
	e := startEdge(t, "caddyfile", poolsCaddyfile(
		"\t\tprimary "+primary.Addr()+block+"\n\t\tbackup "+backup.Addr()+block))
	var answers []<-chan testkit.Response
	for i, p := range []*testkit.Pool{primary, backup} {
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
}
