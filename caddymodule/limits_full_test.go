package caddymodule

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestLimitFullStoreOpen: with on_error open, a store that is full
// (which callers can bring about: with Redis, one caller's requests that
// no limit counts, each holding an operationId for the window) still
// keeps every caller to its limits: a counted request the limits cannot
// take from a full store is answered 503 and not delivered, rather than
// delivered uncounted, over and over. A request no limit counts, a
// replay, and an emergency call go on as before.
func TestLimitFullStoreOpen(t *testing.T) {
	for _, st := range []struct {
		name string
		// start starts the edge and returns what fills its store:
		// mallory's requests that no limit counts (memory), or Redis
		// over its maxmemory.
		start func(t *testing.T) (limitEdge, func(e limitEdge, mallory http.Header))
	}{
		{"memory", func(t *testing.T) (limitEdge, func(limitEdge, http.Header)) {
			clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
			memoryStoreClock = clock.Now
			t.Cleanup(func() { memoryStoreClock = nil })
			e := startLimitEdge(t, "store memory 4 {\n\t\t\ton_error open\n\t\t\tmax_entries_per_caller 4\n\t\t}", "idempotency", "limit calls 2 per 1h")
			return e, func(e limitEdge, mallory http.Header) {
				for i := range 4 {
					resp := e.send(limitRequest("/communication/startAudio", `{"to":"sip:john@contoso.com","operationId":"fill-`+strconv.Itoa(i)+`"}`, mallory))
					if resp.Status != http.StatusCreated {
						t.Fatalf("filling the store: %d %s", resp.Status, resp.Body)
					}
				}
			}
		}},
		{"redis", func(t *testing.T) (limitEdge, func(limitEdge, http.Header)) {
			srv := testkit.StartRedis(t)
			e := startLimitEdge(t, "store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t\ton_error open\n\t\t}", "idempotency", "limit calls 2 per 1h")
			return e, func(limitEdge, http.Header) {
				rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
				defer rdb.Close()
				overMaxmemory(t, rdb)
				if err := rdb.Ping(context.Background()).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(st.name, func(t *testing.T) {
			e, fill := st.start(t)
			mallory := caller{"tenant-1", "mallory"}.header(t)
			alice := caller{"tenant-1", "alice"}.header(t)
			first := e.send(limitRequest("/communication/startAudio", `{"to":"sip:john@contoso.com","operationId":"replayed"}`, alice))
			if first.Status != http.StatusCreated {
				t.Fatalf("with room: %d %s", first.Status, first.Body)
			}
			fill(e, mallory)
			before := e.pool.Requests.Load()
			for i := range 5 {
				resp := e.send(callTo("+14255551234", mallory))
				if resp.Status != http.StatusServiceUnavailable {
					t.Fatalf("call %d of a caller with a limit of 2, the store full: %d %s, want 503", i+1, resp.Status, resp.Body)
				}
				if e := ucwaError(t, resp.Body); e.Message != errStoreFull.Message {
					t.Errorf("503 %s, want the edge's of a full store", resp.Body)
				}
			}
			if got := e.pool.Requests.Load() - before; got != 0 {
				t.Errorf("the pool got %d counted calls the limits could not count, want none", got)
			}
			if resp := e.send(audioCallTo("sip:john@contoso.com", alice)); resp.Status != http.StatusCreated {
				t.Errorf("a request no limit counts: %d %s, want 201", resp.Status, resp.Body)
			}
			assertReplay(t, e.send(limitRequest("/communication/startAudio", `{"to":"sip:john@contoso.com","operationId":"replayed"}`, alice)), first)
			if resp := e.send(emergencyCallTo("911", alice)); resp.Status != http.StatusCreated {
				t.Errorf("an emergency call: %d %s, want 201", resp.Status, resp.Body)
			}
		})
	}
}

// TestLimitsStoreRoomForSome: a request whose limits need more new
// budgets than the memory store has room for is answered as by a full
// store, at once, and not delivered, whether the store has room for
// none of them or for some (a store that had room for one of two spun
// forever, the request never answered); once the budgets held expire,
// it goes.
func TestLimitsStoreRoomForSome(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	memoryStoreClock = clock.Now
	t.Cleanup(func() { memoryStoreClock = nil })
	// alice's call takes two budgets, her own and her tenant's, of the
	// store's three entries: room for one of bob's two.
	e := startLimitEdge(t, "store memory 3 {\n\t\t\tmax_entries_per_caller 3\n\t\t}", "limit calls 2 per 1h", "limit tenant 10 per 1h key {http.ucwa.tid}")
	alice := caller{"tenant-1", "alice"}.header(t)
	if resp := e.send(callTo("+14255551234", alice)); resp.Status != http.StatusCreated {
		t.Fatalf("alice, with room: %d %s", resp.Status, resp.Body)
	}
	before := e.pool.Requests.Load()
	bob := caller{"tenant-2", "bob"}.header(t)
	for range 2 {
		resp := e.send(callTo("+14255551234", bob))
		if resp.Status != http.StatusServiceUnavailable {
			t.Fatalf("bob, room for one of his two budgets: %d %s, want 503", resp.Status, resp.Body)
		}
		if e := ucwaError(t, resp.Body); e.Message != errStoreFull.Message {
			t.Errorf("503 %s, want the edge's of a full store", resp.Body)
		}
	}
	if got := e.pool.Requests.Load() - before; got != 0 {
		t.Errorf("the pool got %d of bob's calls, want none", got)
	}
	// Alice's budgets are whole again an hour on: their entries expire.
	clock.Advance(time.Hour)
	if resp := e.send(callTo("+14255551234", bob)); resp.Status != http.StatusCreated {
		t.Errorf("bob, once alice's budgets expired: %d %s, want 201", resp.Status, resp.Body)
	}
}
