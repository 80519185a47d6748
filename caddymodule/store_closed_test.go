package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestStoreClosedByReload: a request held up before the edge (here in
// forward_auth) while a reload changes the store's settings reaches the
// old configuration's handler once its store is closed (the new
// configuration's is another, and the old one had no request holding
// it). It is answered 503 with the message of errStoreClosed and
// Retry-After: 1, and reaches no pool, with on_error open too: the closed
// store may hold the request's key (a repeat of it), so going on without
// it could deliver a request twice. A closed store is no outage: none is
// logged. Its retry reaches the new store and is delivered once. For
// idempotency's reservation and for a limit's count, the two calls a
// request makes to the store before delivery.
func TestStoreClosedByReload(t *testing.T) {
	for _, st := range []struct {
		name string
		// before is the store block of the configuration the request
		// comes in under, after the one the reload brings, whose settings
		// differ, so that the reload closes the store of before: given
		// the URL of a redis-server of the test and on_error.
		before, after func(redisURL, onError string) string
	}{
		// The memory stores of a process are one store: a reload closes
		// it only when the new configuration uses none.
		{"memory", func(_, onError string) string {
			return "store memory {\n\t\t\t\ton_error " + onError + "\n\t\t\t}"
		}, func(redisURL, _ string) string {
			return "store redis " + redisURL + " {\n\t\t\t\ttimeout 5s\n\t\t\t}"
		}},
		// A Redis store of another key_prefix is another store.
		{"redis", func(redisURL, onError string) string {
			return "store redis " + redisURL + " {\n\t\t\t\ttimeout 5s\n\t\t\t\ton_error " + onError + "\n\t\t\t}"
		}, func(redisURL, onError string) string {
			return "store redis " + redisURL + " {\n\t\t\t\ttimeout 5s\n\t\t\t\ton_error " + onError + "\n\t\t\t\tkey_prefix reloaded:\n\t\t\t}"
		}},
	} {
		for _, onError := range []string{onErrorClosed, onErrorOpen} {
			for _, feature := range []string{"idempotency", "limit calls 5 per 1h"} {
				t.Run(st.name+"/"+onError+"/"+strings.Fields(feature)[0], func(t *testing.T) {
					redisURL := testkit.StartRedis(t).URL()
					release := make(chan struct{})
					auth := testkit.NewPool(t, "auth", func(_ *testkit.Pool, w http.ResponseWriter, r *http.Request) {
						if r.Header.Get("X-Test-Hold") != "" {
							<-release
						}
						w.WriteHeader(http.StatusOK)
					})
					pool := testkit.NewPool(t, "primary", testkit.AnswerCreated)
					config := func(store string) string {
						return behindForwardAuth(auth, "primary "+pool.URL()+"\n\t\t\t"+feature+"\n\t\t\t"+store)
					}
					e := startEdge(t, "caddyfile", config(st.before(redisURL, onError)))
					held := idemCall{op: "op-closed", header: http.Header{"X-Test-Hold": {"1"}}}
					answer := e.sendHeld(t, held)
					auth.Arrived.WaitFor(t, 1, "requests at forward_auth")
					// Load returns once the old configuration is cleaned
					// up, its store closed with it.
					e.Load("caddyfile", config(st.after(redisURL, onError)))
					close(release)
					resp := <-answer
					if resp.Status != http.StatusServiceUnavailable {
						t.Fatalf("the request held across the reload: %d %s, want 503", resp.Status, resp.Body)
					}
					if got := ucwaError(t, resp.Body); got.Code != "ServiceUnavailable" || got.Message != errStoreClosed.Message {
						t.Errorf("the request held across the reload: %s, want the edge's 503 of a store closed by a reload", resp.Body)
					}
					assertRetryAfter(t, resp, "1")
					// An outage is logged before the answer goes out: it
					// would be in the log by now.
					if got := e.Logs().Lines("store failing"); len(got) != 0 {
						t.Errorf("a store closed by a reload logged as an outage: %q", got)
					}
					if got := pool.Received(); len(got) != 0 {
						t.Fatalf("the pool received %d requests (%v), want none", len(got), pool.OperationIDs())
					}
					// The pool takes requests: the 503 was the closed
					// store's, and a retry goes through the new store.
					if retry := e.send(held.request()); retry.Status != http.StatusCreated {
						t.Fatalf("the retry: %d %s, want the pool's 201", retry.Status, retry.Body)
					}
					if got := deliveries(pool, held.op); got != 1 {
						t.Errorf("delivered %d times, want once (the retry)", got)
					}
				})
			}
		}
	}
}
