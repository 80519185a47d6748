package caddymodule

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestEdgeBeforeRoutingBlocks: a site's `ucwa` beside routing blocks
// (handle, handle_path, route, invoke) that send requests to the pool
// with a reverse_proxy of their own, as Caddy's docs write a site, judges
// what those blocks would send: a guarded request without a token is
// refused 401 and reaches no pool, wherever `ucwa` is written in the
// site; a request the edge does not guard goes through the block to the
// pool. Caddy runs those blocks before the handlers that answer: ordered
// before reverse_proxy alone, the edge never saw such a request, and a
// call to a premium-rate number went to the pool unjudged.
func TestEdgeBeforeRoutingBlocks(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	const edgeBlock = `ucwa {
		jwt {
			algorithms HS256
			hmac_secret {env.UCWA_TEST_JWT_SECRET}
		}
		default_region US
	}`
	for _, tc := range []struct {
		name string
		// outside is what the config holds before the site (a named
		// route); site, the site's block, both with %[1]s for the edge
		// and %[2]s for the pool.
		outside, site, prefix string
	}{
		{name: "a fallback handle", site: `handle /autodiscover/* {
		respond "autodiscover"
	}
	handle {
		reverse_proxy %[2]s
	}
	%[1]s`},
		{name: "handle_path", prefix: "/edge", site: `%[1]s
	handle_path /edge/* {
		reverse_proxy %[2]s
	}`},
		{name: "route", site: `route {
		reverse_proxy %[2]s
	}
	%[1]s`},
		{name: "invoke", outside: "&(pool) {\n\treverse_proxy %[2]s\n}\n", site: `invoke pool
	%[1]s`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := testkit.NewUpstream(t)
			e := startEdge(t, "caddyfile", fmt.Sprintf(tc.outside+":EDGE_PORT {\n\t"+tc.site+"\n}", edgeBlock, pool.Addr()))
			checkRoutedEdge(t, e, pool, tc.prefix)
		})
	}
}

// checkRoutedEdge sends e a guarded request without a token and a read
// of a resource, under prefix, and checks that only the read reached
// pool.
func checkRoutedEdge(t *testing.T, e edge, pool *testkit.Pool, prefix string) {
	t.Helper()
	resp := e.postJSON(prefix+startPath, `{"to":"+19005551234"}`, nil)
	if resp.Status != http.StatusUnauthorized {
		t.Errorf("a startPhoneAudio without a token: %d %q, want 401", resp.Status, resp.Body)
	}
	if got := len(pool.Received()); got != 0 {
		t.Fatalf("the pool got %d requests, want none", got)
	}
	resp = e.send(testkit.Request{Method: http.MethodGet, URL: prefix + "/ucwa/v1/applications/192/me"})
	if resp.Status != http.StatusCreated || len(pool.Received()) != 1 {
		t.Errorf("a read passed on: %d, the pool got %d requests, want the pool's answer and 1", resp.Status, len(pool.Received()))
	}
}
