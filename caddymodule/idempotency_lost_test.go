package caddymodule

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestReservationLostInFlight: a request held at the pool loses its
// reservation before its answer comes (a Redis store deletes its key,
// as an eviction, a FLUSHDB or a restart without persistence would; a
// memory store's key expires, its renewals never run), so that its
// answer cannot be recorded and a repeat is delivered again. The edge
// counts it in caddy_ucwa_idempotency_reservations_lost_total and logs
// the error reservationLostWarning, naming no key, caller or number;
// a request that kept its key counts nothing, and its repeat is
// replayed.
func TestReservationLostInFlight(t *testing.T) {
	const lostMetric = "caddy_ucwa_idempotency_reservations_lost_total"
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) (config string, lose func(t *testing.T))
		lost  bool
	}{
		{"redis key deleted", func(t *testing.T) (string, func(*testing.T)) {
			srv := testkit.StartRedis(t)
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			t.Cleanup(func() { _ = rdb.Close() })
			return "store redis redis://" + srv.Addr() + " {\n\t\t\ttimeout 5s\n\t\t}", func(t *testing.T) {
				ctx := context.Background()
				keys := rdb.Keys(ctx, "*").Val()
				if len(keys) != 1 {
					t.Fatalf("keys %q, want the request's", keys)
				}
				if n := rdb.Del(ctx, keys[0]).Val(); n != 1 {
					t.Fatalf("deleted %d keys", n)
				}
			}
		}, true},
		{"memory key expired", func(t *testing.T) (string, func(*testing.T)) {
			// The renewals tick on a clock the test never moves.
			renewalClock(t)
			clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
			memoryStoreClock = clock.Now
			t.Cleanup(func() { memoryStoreClock = nil })
			return "store memory", func(*testing.T) { clock.Advance(DefaultIdempotencyWindow + time.Second) }
		}, true},
		{"memory key kept", func(*testing.T) (string, func(*testing.T)) {
			return "store memory", func(*testing.T) {}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config, lose := tc.store(t)
			pool := newIdemPool(t, "primary")
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), config, "primary "+pool.Addr()), testkit.WithAdmin())
			caller := idemToken(t, "tenant-1", "oid-a", "sub-a")

			first := e.sendHeld(t, idemCall{header: caller, op: "lost-1", answer: "hold"})
			pool.Requests.WaitFor(t, 1, "requests at the pool")
			lose(t)
			pool.Release()
			if resp := <-first; resp.Status != http.StatusCreated {
				t.Fatalf("first: %d %s", resp.Status, resp.Body)
			}
			// Logged once the handler returned, its answer recorded or not.
			e.Logs().Wait(t, `"msg":"handled request"`, `/communication/startPhoneAudio`)

			repeat := e.call(idemCall{header: caller, op: "lost-1"})
			replayed := repeat.Header.Get(headerReplayed) == "true"
			if want := 2; tc.lost && (repeat.Status != http.StatusCreated || replayed || deliveries(pool.Pool, "lost-1") != want) {
				t.Errorf("repeat after the key was lost: %d replayed %v, %d deliveries; want 201 delivered again (the case the signal is for)",
					repeat.Status, replayed, deliveries(pool.Pool, "lost-1"))
			}
			if !tc.lost && (!replayed || deliveries(pool.Pool, "lost-1") != 1) {
				t.Errorf("repeat of a request that kept its key: %d replayed %v, %d deliveries; want the first answer again", repeat.Status, replayed, deliveries(pool.Pool, "lost-1"))
			}

			var want float64
			if tc.lost {
				want = 1
			}
			if got := e.Metric(lostMetric); got != want {
				t.Errorf("%s = %v, want %v", lostMetric, got, want)
			}
			lines := e.Logs().Lines(`"msg":"idempotency reservation lost`)
			if !tc.lost {
				if len(lines) != 0 {
					t.Errorf("a request that kept its key logged %q", lines)
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("%d lines of the lost reservation, want 1: %q", len(lines), lines)
			}
			for _, part := range []string{`"level":"error"`, `"logger":"http.handlers.ucwa"`, `"requests":1`} {
				if !strings.Contains(lines[0], part) {
					t.Errorf("line without %s: %s", part, lines[0])
				}
			}
			for _, secret := range []string{"lost-1", "4255551234", "oid-a", "sub-a", "tenant-1", "Bearer"} {
				if strings.Contains(lines[0], secret) {
					t.Errorf("line holds %q: %s", secret, lines[0])
				}
			}
		})
	}
}
