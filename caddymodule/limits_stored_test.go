package caddymodule

import (
	"net/http"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestLimitStoredAndForwarding: every operation of the table that stores
// a number to ring later (makeMeAvailable under both paths, PUT
// communication, changeNumber, a POST of me/phones, a PUT of a phone) or
// sets one as a forwarding target (the three ...ToContact operations,
// the number in the body or the query) takes from a limit, international
// for a number abroad, as a call does; a forwarding target takes from
// forwarding too, a stored number does not.
func TestLimitStoredAndForwarding(t *testing.T) {
	const abroad = "+442071234567"
	for _, tc := range []struct {
		method, path, body string
		forwarding         bool
	}{
		{"POST", "/me/makeMeAvailable", `{"phoneNumber":"` + abroad + `"}`, false},
		{"POST", "/communication/makeMeAvailable", `{"phoneNumber":"` + abroad + `"}`, false},
		{"PUT", "/communication", `{"phoneNumber":"` + abroad + `"}`, false},
		{"POST", "/me/phones/work/changeNumber", `{"number":"` + abroad + `"}`, false},
		{"POST", "/me/phones", `{"number":"` + abroad + `"}`, false},
		{"PUT", "/me/phones/work", `{"number":"` + abroad + `"}`, false},
		{"POST", "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact", `{"target":"` + abroad + `"}`, true},
		{"POST", "/me/callForwardingSettings/simultaneousRingSettings/simultaneousRingToContact", `{"target":"` + abroad + `"}`, true},
		{"POST", "/me/callForwardingSettings/unansweredCallSettings/unansweredCallToContact", `{"target":"` + abroad + `"}`, true},
		{"POST", "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact?target=%2B442071234567", "", true},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			for _, limited := range []string{"international", "forwarding"} {
				t.Run(limited, func(t *testing.T) {
					e := startLimitEdge(t, "store memory", "limit calls 10 per 1h", "limit "+limited+" 1 per 24h "+limited)
					alice := caller{"tenant-1", "alice"}.header(t)
					send := func() testkit.Response {
						h := alice.Clone()
						if tc.method == http.MethodPut {
							h.Set("If-Match", `"1"`)
						}
						req := testkit.Request{Method: tc.method, URL: limitApp + tc.path, ContentType: "application/json", Body: tc.body, Header: h}
						if tc.body == "" {
							req.ContentType = ""
						}
						return e.send(req)
					}
					if resp := send(); resp.Status != http.StatusCreated {
						t.Fatalf("the first: %d %s", resp.Status, resp.Body)
					}
					delivered := int64(1)
					if limited == "international" || tc.forwarding {
						assertLimited(t, send(), limited, 24*3600)
					} else if resp := send(); resp.Status != http.StatusCreated {
						t.Fatalf("a stored number, the second: %d %s", resp.Status, resp.Body)
					} else {
						delivered++
					}
					if got := e.pool.Requests.Load(); got != delivered {
						t.Errorf("the pool got %d requests, want %d", got, delivered)
					}
				})
			}
		})
	}
}
