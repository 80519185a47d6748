package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestStopWithRequestInFlight: a Caddy process is stopped (SIGTERM, as
// a service manager stops it) while a guarded request is at the pool,
// and started again; the client then sends the request once more, as
// the README's "A stop" says it is answered. Without a grace_period the
// stop waits for the pool: the client gets its answer, the audit trail
// one line of it, and the answer is recorded, so that a Redis store
// replays it after the restart; a memory store goes with the process,
// and the repeat is delivered again. With a grace_period that ends while
// the pool still holds the request, the process exits under it: the
// client gets no answer, and the key stays reserved in Redis, so that
// the repeat after the restart gets 409 and reaches no pool.
func TestStopWithRequestInFlight(t *testing.T) {
	for _, tc := range []struct {
		name, store string
		grace       bool
		// After the restart the repeat gets: the first answer again, a
		// new delivery, or the edge's 409.
		replayed, delivered bool
	}{
		{name: "redis", store: "redis", replayed: true},
		{name: "memory", store: "memory", delivered: true},
		{name: "redis/grace_period over", store: "redis", grace: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storeConfig := "store memory"
			if tc.store == "redis" {
				storeConfig = "store redis " + testkit.StartRedis(t).URL() + " {\n\t\t\ttimeout 5s\n\t\t}"
			}
			pool := newIdemPool(t, "primary")
			config := idemCaddyfile(idemAuth(t), storeConfig, "primary "+pool.Addr())
			if tc.grace {
				config = strings.Replace(config, "{\n\tlog {", "{\n\tgrace_period 10ms\n\tlog {", 1)
			}
			p := testkit.StartCaddyProcess(t, "caddyfile", config)
			caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
			call := func(answer string) testkit.Request {
				req := idemCall{header: caller, op: "stop-1", answer: answer}.request()
				req.URL = p.URL("EDGE_PORT", req.URL)
				return req
			}
			type result struct {
				resp testkit.Response
				err  error
			}
			held := make(chan result, 1)
			go func() {
				resp, err := testkit.Do(p.Client(), call("hold"))
				held <- result{resp, err}
			}()
			pool.Requests.WaitFor(t, 1, "the request at the pool")

			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				p.Stop()
			}()
			var first result
			if tc.grace {
				<-stopped
				first = <-held
				if first.err == nil {
					t.Fatalf("the request still at the pool when the grace period was over: %d %s, want no answer", first.resp.Status, first.resp.Body)
				}
			} else {
				p.WaitLog(t, "servers shutting down")
				pool.Release()
				first = <-held
				<-stopped
				if first.err != nil || first.resp.Status != http.StatusCreated {
					t.Fatalf("the request in flight at the stop: %d %s %v, want the pool's 201", first.resp.Status, first.resp.Body, first.err)
				}
				if n := strings.Count(p.Log(), `"msg":"guarded request"`); n != 1 {
					t.Errorf("%d audit lines, want 1", n)
				}
			}

			p.Restart()
			resp := testkit.Send(t, p.Client(), call(""))
			switch {
			case tc.replayed:
				assertReplay(t, resp, first.resp)
			case tc.delivered:
				if resp.Status != http.StatusCreated || resp.Header.Get(headerReplayed) != "" {
					t.Errorf("the repeat after the restart: %d %s, want a new delivery", resp.Status, resp.Body)
				}
			default:
				assertConflict(t, resp)
			}
			want := 1
			if tc.delivered {
				want = 2
			}
			if got := deliveries(pool.Pool, "stop-1"); got != want {
				t.Errorf("delivered %d times, want %d", got, want)
			}
			if tc.grace {
				pool.Release()
			}
		})
	}
}
