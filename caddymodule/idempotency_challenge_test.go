package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// challengePool answers 401 with two challenges, as a pool's IIS offers
// several schemes: a pool that did not take the caller's credentials.
func challengePool(_ *testkit.Pool, w http.ResponseWriter, _ *http.Request) {
	w.Header().Add("WWW-Authenticate", `Bearer trusted_issuers="", client_id="00000004-0000-0ff1-ce00-000000000000"`)
	w.Header().Add("WWW-Authenticate", `MsRtcOAuth href="https://pool.contoso.internal/WebTicket/oauthtoken",grant_type="urn:microsoft.rtc:windows"`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(`{"code":"Unauthorized","message":"No valid security token."}`))
}

// TestIdempotencyPoolUnauthorized: a pool's 401 reaches the client with
// its challenges, and is not recorded for replay: it speaks of the first
// request's credentials, which a repeat may have renewed, and a 401
// replayed without its challenges is no 401 a client can act on. The key
// stays reserved for the window (the pool had the request): a repeat gets
// the edge's 409, never a second delivery.
func TestIdempotencyPoolUnauthorized(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	for _, st := range idemStores {
		t.Run(st.name, func(t *testing.T) {
			pool := testkit.NewPool(t, "primary", challengePool)
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.config(t), "primary "+pool.Addr()))
			c := idemCall{header: caller, op: "unauthorized-1"}
			first := e.call(c)
			want := []string{`Bearer trusted_issuers="", client_id="00000004-0000-0ff1-ce00-000000000000"`, `MsRtcOAuth href="https://pool.contoso.internal/WebTicket/oauthtoken",grant_type="urn:microsoft.rtc:windows"`}
			if first.Status != http.StatusUnauthorized || !slices.Equal(first.Header.Values("WWW-Authenticate"), want) {
				t.Fatalf("first: %d %v, want the pool's 401 with its challenges", first.Status, first.Header)
			}
			assertConflict(t, e.call(c))
			if got := deliveries(pool, c.op); got != 1 {
				t.Errorf("delivered %d times, want once", got)
			}
		})
	}
}

// TestIdempotencyHeaderBound: an answer whose meaning rests on a header
// the record does not keep (a 403 challenging the token's scopes, a 405
// and its Allow, a 407 and a 426) reaches the client whole, but for the
// hop-by-hop Proxy-Authenticate and Upgrade, which the proxy drops, and
// is not recorded: a repeat gets the edge's 409, never the answer without
// that header, and is not delivered. A 403 without a challenge is
// replayed as any failure, and so is a 500 whose only challenge was a
// Proxy-Authenticate: the client got it without one.
func TestIdempotencyHeaderBound(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	for _, tc := range []struct {
		name    string
		status  int
		header  map[string]string
		dropped []string // hop-by-hop headers of header that never reach the client
		replay  bool
	}{
		{"403 insufficient_scope", http.StatusForbidden, map[string]string{"WWW-Authenticate": `Bearer error="insufficient_scope", scope="Conversations.Initiate"`}, nil, false},
		{"405 Allow", http.StatusMethodNotAllowed, map[string]string{"Allow": "GET"}, nil, false},
		{"407 Proxy-Authenticate", http.StatusProxyAuthRequired, map[string]string{"Proxy-Authenticate": `Basic realm="pool"`}, []string{"Proxy-Authenticate"}, false},
		{"426 Upgrade", http.StatusUpgradeRequired, map[string]string{"Upgrade": "TLS/1.2", "Connection": "Upgrade"}, []string{"Upgrade", "Connection"}, false},
		{"403 without a challenge", http.StatusForbidden, map[string]string{"X-Ms-Diagnostics": `28070;reason="Service does not allow a cross domain request from this origin."`}, nil, true},
		{"500 with Proxy-Authenticate", http.StatusInternalServerError, map[string]string{"Proxy-Authenticate": `Basic realm="pool"`}, []string{"Proxy-Authenticate"}, true},
	} {
		for _, st := range idemStores {
			t.Run(tc.name+"/"+st.name, func(t *testing.T) {
				pool := testkit.NewPool(t, "primary", testkit.AnswerStatus(tc.status, tc.header, `{"code":"Forbidden"}`))
				e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.config(t), "primary "+pool.Addr()))
				c := idemCall{header: caller, op: "header-bound-1"}
				first := e.call(c)
				if first.Status != tc.status {
					t.Fatalf("first: %d %s", first.Status, first.Body)
				}
				for k, v := range tc.header {
					if slices.Contains(tc.dropped, k) {
						v = ""
					}
					if got := first.Header.Get(k); got != v {
						t.Fatalf("first's %s %q, want %q", k, got, v)
					}
				}
				repeat := e.call(c)
				if tc.replay {
					assertReplay(t, repeat, first)
				} else {
					assertConflict(t, repeat)
				}
				if got := deliveries(pool, c.op); got != 1 {
					t.Errorf("delivered %d times, want once", got)
				}
			})
		}
	}
}

// TestIdempotencyOlderUnauthorized: a pool's 401, 405, 407 or 426 that
// an older edge recorded in a shared Redis (without its challenges,
// Allow or Upgrade) is not replayed either: a repeat gets the edge's 409,
// and is not delivered.
func TestIdempotencyOlderUnauthorized(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusMethodNotAllowed, http.StatusProxyAuthRequired, http.StatusUpgradeRequired} {
		t.Run(strconv.Itoa(status), func(t *testing.T) { testIdempotencyOlderRecord(t, status) })
	}
}

func testIdempotencyOlderRecord(t *testing.T, status int) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	srv := testkit.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	pool := testkit.NewPool(t, "primary", challengePool)
	e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), "store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t}", "primary "+pool.Addr()))
	c := idemCall{header: caller, op: "older-unauthorized"}
	first := e.call(c)
	if first.Status != http.StatusUnauthorized {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}
	// The reservation this version keeps becomes the record an older edge
	// writes: a failure of a request that was no emergency call.
	keys := rdb.Keys(ctx, "*").Val()
	if len(keys) != 1 {
		t.Fatalf("keys %v, want one", keys)
	}
	v := rdb.Get(ctx, keys[0]).Val()
	if len(v) != heldTokenLen || v[0] != 'n' {
		t.Fatalf("the key holds %q, want the held reservation", v)
	}
	older := recordedAnswer{status: status, contentType: first.Header.Get("Content-Type"), body: first.Body,
		inputs: v[1 : 1+inputsDigestLen], notEmergency: true}
	if err := rdb.SetArgs(ctx, keys[0], older.encode(), redis.SetArgs{KeepTTL: true}).Err(); err != nil {
		t.Fatal(err)
	}
	assertConflict(t, e.call(c))
	if got := deliveries(pool, c.op); got != 1 {
		t.Errorf("delivered %d times, want once", got)
	}
}

// TestIdempotencyNextHandlerChallenge: an edge without pools delivers to
// the next handler, whose answer keeps every header it sets, the
// hop-by-hop Proxy-Authenticate too (no proxy drops it). A failure that
// challenges the credentials in either header is not recorded: a repeat
// gets the edge's 409, never the failure without the challenge it rests
// on. One without a challenge is replayed as any failure.
func TestIdempotencyNextHandlerChallenge(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	for _, tc := range []struct {
		name, header string // header: "" for none
		replay       bool
	}{
		{"Proxy-Authenticate", "Proxy-Authenticate", false},
		{"WWW-Authenticate", "WWW-Authenticate", false},
		{"no challenge", "", true},
	} {
		for _, st := range idemStores {
			t.Run(tc.name+"/"+st.name, func(t *testing.T) {
				next := "respond 403"
				if tc.header != "" {
					next = "header " + tc.header + ` "Basic realm=\"edge\""` + "\n\t\t" + next
				}
				e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	route {
		ucwa {
			default_region US
			idempotency
			%s
			%s
		}
		%s
	}
}`, idemAuth(t), st.config(t), next))
				c := idemCall{header: caller, op: "next-handler-1"}
				first := e.call(c)
				if first.Status != http.StatusForbidden || tc.header != "" && first.Header.Get(tc.header) != `Basic realm="edge"` {
					t.Fatalf("first: %d %v, want the next handler's 403 with its %s", first.Status, first.Header, tc.header)
				}
				again := e.call(c)
				if tc.replay {
					assertReplay(t, again, first)
				} else {
					assertConflict(t, again)
				}
			})
		}
	}
}
