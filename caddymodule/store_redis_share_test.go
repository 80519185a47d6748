package caddymodule

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestRedisCallerShare: two edges (Caddy processes) sharing one Redis
// with max_entries_per_caller 3 hold one caller to 3 reservations
// between them, whichever edge each request reaches. Over it, on_error
// closed answers 429 TooManyRequests and delivers nothing, open
// delivers without idempotency (a repeat is delivered again); either
// way Redis holds nothing of the refused requests, another caller goes
// on at both edges, a repeat of a request Redis holds is replayed at
// the other edge, and the edges warn of the caller's full share.
func TestRedisCallerShare(t *testing.T) {
	for _, tc := range []struct {
		onError string
		refused int   // the status of mallory's requests over her share
		pooled  int64 // the pool's requests in all
	}{
		{onErrorClosed, http.StatusTooManyRequests, 3 + 2},
		{onErrorOpen, http.StatusCreated, 3 + 4 + 1 + 2},
	} {
		t.Run(tc.onError, func(t *testing.T) {
			srv := testkit.StartRedis(t)
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			defer rdb.Close()
			pool := testkit.NewUpstream(t)
			config := limitCaddyfile(t, pool, "store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t\ton_error "+tc.onError+
				"\n\t\t\tmax_entries_per_caller 3\n\t\t}", "idempotency")
			edges := []*testkit.Process{testkit.StartCaddyProcess(t, "caddyfile", config), testkit.StartCaddyProcess(t, "caddyfile", config)}
			mallory := caller{"tenant-1", "mallory"}.header(t)
			alice := caller{"tenant-1", "alice"}.header(t)
			// send sends op of h to edge i.
			send := func(i int, op string, h http.Header) testkit.Response {
				t.Helper()
				req := limitRequest("/communication/startPhoneAudio", `{"to":"+14255551234","operationId":"`+op+`"}`, h)
				req.URL = edges[i].URL("EDGE_PORT", req.URL)
				resp, err := testkit.Do(edges[i].Client(), req)
				if err != nil {
					t.Fatalf("%s to edge %d: %v", op, i, err)
				}
				return resp
			}
			var first testkit.Response
			for i := 1; i <= 3; i++ {
				resp := send(i%2, "m-"+strconv.Itoa(i), mallory)
				if resp.Status != http.StatusCreated || resp.Header.Get(headerReplayed) != "" {
					t.Fatalf("mallory's m-%d, within her share: %d %s", i, resp.Status, resp.Body)
				}
				if i == 1 {
					first = resp
				}
			}
			for i := 4; i <= 7; i++ {
				resp := send(i%2, "m-"+strconv.Itoa(i), mallory)
				if resp.Status != tc.refused || resp.Header.Get(headerReplayed) != "" {
					t.Fatalf("mallory's m-%d at edge %d, over her share: %d %s, want %d", i, i%2, resp.Status, resp.Body, tc.refused)
				}
				if tc.refused == http.StatusTooManyRequests {
					assertUCWAError(t, resp, "TooManyRequests", "", nil, false)
					if e := ucwaError(t, resp.Body); e.Message != errCallerShareFull.Message {
						t.Errorf("m-%d: %s, want the edge's 429 of a caller's full share", i, resp.Body)
					}
				}
			}
			// A repeat of a refused request: refused again (closed), or
			// delivered again, held by no key (open).
			if resp := send(1, "m-4", mallory); resp.Status != tc.refused || resp.Header.Get(headerReplayed) != "" {
				t.Errorf("a repeat of m-4: %d %s (replayed %q), want %d, not replayed", resp.Status, resp.Body, resp.Header.Get(headerReplayed), tc.refused)
			}
			for i, op := range []string{"a-1", "a-2"} {
				if resp := send(i, op, alice); resp.Status != http.StatusCreated || resp.Header.Get(headerReplayed) != "" {
					t.Fatalf("alice's %s at edge %d, while mallory holds her share: %d %s, want 201", op, i, resp.Status, resp.Body)
				}
			}
			assertReplay(t, send(0, "m-1", mallory), first)
			if got := pool.Requests.Load(); got != tc.pooled {
				t.Errorf("the pool got %d requests, want %d", got, tc.pooled)
			}
			keys, err := rdb.Keys(context.Background(), "ucwa:idem:*").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 5 {
				t.Errorf("Redis holds %d reservations, want mallory's 3 and alice's 2", len(keys))
			}
			owners, err := rdb.Keys(context.Background(), "ucwa:owner:*").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(owners) != 2 {
				t.Errorf("Redis holds the counts %q, want mallory's and alice's", owners)
			}
			// Each edge refused some of mallory's requests, and warned.
			for _, e := range edges {
				e.WaitLog(t, `"msg":"a caller holds max_entries_per_caller reservations of redis`)
			}
		})
	}
}
