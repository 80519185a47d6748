package caddymodule

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestCallerShareRepeatEndsWithKey: with max_entries_per_caller 1 and
// a window of 5s, a caller's request answered and its repeat, replayed
// half a window later, hold the caller's share until the request's key
// expires, not a window from the repeat: once the key is gone the
// caller's next request is taken, as by a memory store, on a single
// Redis and on a cluster whose key_prefix puts a caller's keys and its
// count in one hash slot.
func TestCallerShareRepeatEndsWithKey(t *testing.T) {
	// The window is at least 10 times the Redis timeout, which must bear
	// a loaded machine: 100ms did not, once in a flake check.
	const window = 5 * time.Second
	single := testkit.StartRedis(t)
	cluster := testkit.StartRedisCluster(t, 2)
	rows := []struct {
		name, port, store string
		pool              *idemPool
	}{
		{name: "memory", port: "MEMORY_PORT", store: "store memory {\n\t\t\tmax_entries_per_caller 1\n\t\t}"},
		{name: "redis", port: "REDIS_PORT", store: "store redis " + single.URL() + " {\n\t\t\ttimeout 500ms\n\t\t\tmax_entries_per_caller 1\n\t\t}"},
		{name: "cluster, one slot", port: "CLUSTER_PORT", store: "store redis " + cluster[0].URL() + " {\n\t\t\ttimeout 500ms\n\t\t\tmax_entries_per_caller 1\n\t\t\tkey_prefix {edge}:\n\t\t\tcluster " + cluster[1].Addr() + "\n\t\t}"},
	}
	// One config of a site for each store, whose rows wait out their
	// windows together.
	var config string
	for i := range rows {
		tc := &rows[i]
		tc.pool = newIdemPool(t, "primary")
		global, site, _ := strings.Cut(idemCaddyfile(idemAuth(t), tc.store, "primary "+tc.pool.Addr()), "\n:EDGE_PORT {")
		if config == "" {
			config = global
		}
		config += "\n:" + tc.port + " {" + strings.Replace(site, "idempotency\n", "idempotency "+window.String()+"\n", 1)
	}
	edges := startEdge(t, "caddyfile", config)
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := edges.site(t, tc.port)
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
			if resp := e.call(next); resp.Status != http.StatusCreated || deliveries(tc.pool.Pool, next.op) != 1 {
				t.Fatalf("the caller's next request once the first's key expired: %d %s, delivered %d times; want 201, once",
					resp.Status, resp.Body, deliveries(tc.pool.Pool, next.op))
			}
		})
	}
}
