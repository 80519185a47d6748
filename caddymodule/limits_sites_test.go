package caddymodule

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestLimitKeysApartAcrossSites: two sites of one config on one store
// define the limit "calls", one keyed by default (the verified caller),
// the other by a header its clients set. A client of the second that
// sends the first's caller's value ({http.ucwa.tenant_caller}: tid/sub)
// in that header, as often as the count allows, takes nothing from that
// caller's budget on the first: its calls are delivered. Each limit
// still counts on its own site.
func TestLimitKeysApartAcrossSites(t *testing.T) {
	for _, st := range limitStores {
		t.Run(st.name, func(t *testing.T) {
			pool := testkit.NewUpstream(t)
			storeConfig := st.config(t)
			site := func(port, limit string) string {
				return fmt.Sprintf("%s {\n\tucwa {\n\t\tdefault_region US\n\t\t%s\n\t\t%s\n\t\t%s\n\t\tprimary %s\n\t}\n}\n",
					port, idemAuth(t), storeConfig, limit, pool.Addr())
			}
			e := startEdge(t, "caddyfile", site(":EDGE_PORT", "limit calls 2 per 1h")+
				site(":OTHER_PORT", "limit calls 2 per 1h key {http.request.header.X-Client}"))
			victim := caller{"72f988bf-86f1-41af-91ab-2d7cd011db47", "victim-" + st.name}
			attacker := caller{"0b5f2c5e-1d7a-4c1e-9a55-3f1e2d4c6b7a", "attacker-" + st.name}
			send := func(port string, h http.Header) testkit.Response {
				t.Helper()
				req := callTo("+14255551234", h)
				req.URL = e.URL(port, req.URL)
				return testkit.Send(t, e.Client(), req)
			}
			spoofed := attacker.header(t)
			spoofed.Set("X-Client", victim.tid+"/"+victim.sub)
			for i := range 2 {
				if resp := send("OTHER_PORT", spoofed); resp.Status != http.StatusCreated {
					t.Fatalf("the other site's call %d: %d %s", i+1, resp.Status, resp.Body)
				}
			}
			assertLimited(t, send("OTHER_PORT", spoofed), "calls", 3600)
			for i := range 2 {
				if resp := send("EDGE_PORT", victim.header(t)); resp.Status != http.StatusCreated {
					t.Fatalf("the caller's call %d, after the other site's client spent its header's budget: %d %s, want it delivered", i+1, resp.Status, resp.Body)
				}
			}
			assertLimited(t, send("EDGE_PORT", victim.header(t)), "calls", 3600)
			if got := pool.Requests.Load(); got != 4 {
				t.Errorf("the pool got %d requests, want 4", got)
			}
		})
	}
}
