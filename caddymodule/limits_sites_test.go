package caddymodule

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

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

// TestIssuersApartAcrossSites: two sites of one config on one store,
// each listing its own identity provider first (as the README advises
// for issuers with keys of their own), tell their callers without tid
// apart by their iss: a user of one provider and another of the other
// with the same sub are two callers, with a budget each, and neither gets
// the other's idempotent answer. Both sites' first issuer had no tenant,
// so the second provider's user got the first's answer replayed (its
// Location too) and found its calls budget spent. Sites that list one
// issuer first still know its users as one caller across them.
func TestIssuersApartAcrossSites(t *testing.T) {
	const issA, issC = "https://idp-a.example/", "https://idp-c.example/"
	for _, st := range limitStores {
		for _, tc := range []struct {
			name                 string
			issuers1, issuers2   string // the sites' issuer lines ("": none)
			tokenIss1, tokenIss2 string
			oneCaller            bool
		}{
			{"a site for each issuer", "issuer " + issA, "issuer " + issC, issA, issC, false},
			{"no issuer on one site", "issuer " + issA, "", issA, issC, false},
			{"other issuers listed first", "issuer " + issA + " " + issC, "issuer " + issC + " " + issA, issA, issC, false},
			{"one issuer first on both", "issuer " + issA, "issuer " + issA + " " + issC, issA, issA, true},
		} {
			t.Run(st.name+"/"+tc.name, func(t *testing.T) {
				pool := testkit.NewUpstream(t)
				storeConfig := st.config(t)
				pem := testkit.WriteFile(t, t.TempDir(), "ec.pem", testkit.PublicPEM(t, testkit.Keys(t).EC))
				site := func(port, issuers string) string {
					return fmt.Sprintf("%s {\n\tucwa {\n\t\tdefault_region US\n\t\tjwt {\n\t\t\talgorithms ES256\n\t\t\tpublic_key_file %s\n\t\t\t%s\n\t\t}\n\t\t%s\n\t\tidempotency\n\t\tlimit calls 1 per 1h\n\t\tprimary %s\n\t}\n}\n",
						port, pem, issuers, storeConfig, pool.Addr())
				}
				e := startEdge(t, "caddyfile", site(":EDGE_PORT", tc.issuers1)+site(":OTHER_PORT", tc.issuers2))
				send := func(port, iss, op string) testkit.Response {
					t.Helper()
					claims := testkit.Claims(time.Now(), jwt.MapClaims{"iss": iss, "sub": "alice", "scp": "Conversations.Initiate"})
					h := http.Header{"Authorization": {"Bearer " + testkit.Mint(t, jwt.SigningMethodES256, testkit.Keys(t).EC, "", claims)}}
					req := limitRequest("/communication/startPhoneAudio", `{"to":"+14255551234","operationId":"`+op+`"}`, h)
					req.URL = e.URL(port, req.URL)
					return testkit.Send(t, e.Client(), req)
				}
				if resp := send("EDGE_PORT", tc.tokenIss1, "op-1"); resp.Status != http.StatusCreated {
					t.Fatalf("the first site's call: %d %s", resp.Status, resp.Body)
				}
				resp := send("OTHER_PORT", tc.tokenIss2, "op-1")
				replayed := resp.Header.Get(headerReplayed) != ""
				if resp.Status != http.StatusCreated || replayed != tc.oneCaller {
					t.Fatalf("the other site's call of the same operationId: %d (replayed %v) %s, want 201 replayed %v", resp.Status, replayed, resp.Body, tc.oneCaller)
				}
				want := int64(2)
				if tc.oneCaller {
					want = 1
				}
				if got := pool.Requests.Load(); got != want {
					t.Fatalf("the pool got %d calls, want %d", got, want)
				}
				if !tc.oneCaller {
					// Each has spent its own budget, and no other's.
					assertLimited(t, send("OTHER_PORT", tc.tokenIss2, "op-2"), "calls", 3600)
					assertLimited(t, send("EDGE_PORT", tc.tokenIss1, "op-3"), "calls", 3600)
				}
			})
		}
	}
}
