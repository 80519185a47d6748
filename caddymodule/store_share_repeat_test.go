package caddymodule

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestCallerShareRepeatEndsWithKey: with max_entries_per_caller 1 and
// a window of 2s, a caller's request answered and its repeat, replayed
// a second later, hold the caller's share until the request's key
// expires, not a window from the repeat: once the key is gone the
// caller's next request is taken, as by a memory store, on a single
// Redis and on a cluster whose key_prefix puts a caller's keys and its
// count in one hash slot.
func TestCallerShareRepeatEndsWithKey(t *testing.T) {
	const window = 2 * time.Second
	single := testkit.StartRedis(t)
	cluster := testkit.StartRedisCluster(t, 2)
	for _, tc := range []struct{ name, store string }{
		{"memory", "store memory {\n\t\t\tmax_entries_per_caller 1\n\t\t}"},
		{"redis", "store redis " + single.URL() + " {\n\t\t\ttimeout 100ms\n\t\t\tmax_entries_per_caller 1\n\t\t}"},
		{"cluster, one slot", "store redis " + cluster[0].URL() + " {\n\t\t\ttimeout 100ms\n\t\t\tmax_entries_per_caller 1\n\t\t\tkey_prefix {edge}:\n\t\t\tcluster " + cluster[1].Addr() + "\n\t\t}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := newIdemPool(t, "primary")
			config := idemCaddyfile(idemAuth(t), tc.store, "primary "+pool.Addr())
			e := startEdge(t, "caddyfile", strings.Replace(config, "idempotency\n", "idempotency "+window.String()+"\n", 1))
			caller := idemToken(t, "tenant-1", "oid-"+tc.name, "sub-a")

			first := idemCall{header: caller, op: "share-first"}
			answer := e.call(first)
			// The key's window starts before the answer arrives: it has
			// ended a window after this.
			answered := time.Now()
			if answer.Status != http.StatusCreated {
				t.Fatalf("a request: %d %s", answer.Status, answer.Body)
			}
			time.Sleep(window / 2)
			assertReplay(t, e.call(first), answer)
			// The first request's key has expired by then.
			time.Sleep(time.Until(answered.Add(window + 300*time.Millisecond)))
			next := idemCall{header: caller, op: "share-next"}
			if resp := e.call(next); resp.Status != http.StatusCreated || deliveries(pool.Pool, next.op) != 1 {
				t.Fatalf("the caller's next request once the first's key expired: %d %s, delivered %d times; want 201, once",
					resp.Status, resp.Body, deliveries(pool.Pool, next.op))
			}
		})
	}
}
