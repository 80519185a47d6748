package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// TestPoolChaos runs steady concurrent load through the edge while the
// primary pool is killed and later restarted; the load stops once the
// restarted primary has served againAfter requests (bounded by maxTotal
// requests and two minutes). Every request must get a definite answer
// (201 from one pool, or a UCWA 502 for a request that was in flight on
// the primary when it died), and no operationId may reach the pools twice.
func TestPoolChaos(t *testing.T) {
	const (
		workers    = 8
		maxTotal   = 20000
		killAfter  = 200 // answers before the primary is killed
		backAfter  = 400 // answers before it is restarted
		againAfter = 200 // answers of the restarted primary before the load stops
	)
	primary := testkit.NewPool(t, "primary", testkit.AnswerCreated)
	backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
	e := startEdge(t, "caddyfile", poolsCaddyfile(fmt.Sprintf(`		primary %s {
			fail_duration 500ms
		}
		backup %s`, primary.Addr(), backup.Addr())))

	type result struct {
		op     string
		status int
		pool   string // from Location, for a 201
		at     time.Time
		err    error
		body   string
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		issued, answered atomic.Int64
		restarted, stop  atomic.Bool
		primaryAgain     atomic.Int64
		mu               sync.Mutex
		results          []result
		kill, restart    = make(chan struct{}), make(chan struct{})
		wg               sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				n := issued.Add(1)
				if n > maxTotal || stop.Load() || ctx.Err() != nil {
					return
				}
				res := result{op: fmt.Sprintf("chaos-%d", n)}
				resp, err := testkit.Do(e.Client(), testkit.Request{Context: ctx, URL: e.url("/ucwa/v1/applications/1/communication/startPhoneAudio"),
					ContentType: "application/json", Body: fmt.Sprintf(`{"to":"4255551234","operationId":%q}`, res.op)})
				res.at, res.err = time.Now(), err
				if err == nil {
					res.status, res.body = resp.Status, resp.Body
					if resp.Status == http.StatusCreated {
						res.pool = path.Base(resp.Header.Get("Location"))
					}
				}
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
				if res.pool == "primary" && restarted.Load() && primaryAgain.Add(1) == againAfter {
					stop.Store(true)
				}
				switch answered.Add(1) {
				case killAfter:
					close(kill)
				case backAfter:
					close(restart)
				}
			}
		})
	}

	var killAt, restartAt time.Time
	select {
	case <-kill:
		killAt = time.Now() // before the kill: requests fail over while it closes
		primary.Crash()
	case <-ctx.Done():
	}
	select {
	case <-restart:
		primary.Restart(t)
		restartAt = time.Now()
		restarted.Store(true)
	case <-ctx.Done():
	}
	wg.Wait()

	if !stop.Load() {
		t.Fatalf("the restarted primary served %d of %d requests within the bounds (%d requests)",
			primaryAgain.Load(), againAfter, len(results))
	}
	served := map[string]int{}
	var failedInFlight int
	var firstBackup, firstPrimaryAgain time.Time
	for _, res := range results {
		switch {
		case res.err != nil:
			t.Errorf("%s: no answer: %v", res.op, res.err)
		case res.status == http.StatusCreated:
			served[res.pool]++
			if res.pool == "backup" && res.at.After(killAt) && (firstBackup.IsZero() || res.at.Before(firstBackup)) {
				firstBackup = res.at
			}
			if res.pool == "primary" && res.at.After(restartAt) && (firstPrimaryAgain.IsZero() || res.at.Before(firstPrimaryAgain)) {
				firstPrimaryAgain = res.at
			}
		case res.status == http.StatusBadGateway:
			var e struct{ Code, Subcode string }
			if json.Unmarshal([]byte(res.body), &e) != nil || e.Code != "ServiceFailure" || e.Subcode != ucwa.SubcodeServiceFailure {
				t.Errorf("%s: 502 without a UCWA ServiceFailure body: %q", res.op, res.body)
			}
			failedInFlight++
		default:
			t.Errorf("%s: unexpected answer %d %q", res.op, res.status, res.body)
		}
	}

	seen := map[string]string{}
	for _, p := range []*testkit.Pool{primary, backup} {
		for _, op := range p.OperationIDs() {
			if other, dup := seen[op]; dup {
				t.Errorf("operationId %s reached the pools twice: %s and %s", op, other, p.Name())
			}
			seen[op] = p.Name()
		}
	}
	for _, res := range results {
		if res.status == http.StatusCreated && seen[res.op] != res.pool {
			t.Errorf("%s: answered by %s, but recorded by %q", res.op, res.pool, seen[res.op])
		}
	}
	if served["backup"] == 0 || firstPrimaryAgain.IsZero() {
		t.Errorf("the backup served %d requests and the restarted primary served again: %v; want both", served["backup"], !firstPrimaryAgain.IsZero())
	}
	t.Logf("chaos: %d requests, %d workers: primary served %d, backup served %d, %d in flight on the primary when it died answered 502",
		len(results), workers, served["primary"], served["backup"], failedInFlight)
	t.Logf("chaos: failover took %v (kill to first backup answer), recovery %v (restart to first primary answer)",
		firstBackup.Sub(killAt), firstPrimaryAgain.Sub(restartAt))
	t.Logf("chaos: pools received %d operationIds (primary %d, backup %d), none twice",
		len(seen), len(primary.Received()), len(backup.Received()))
}
