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
// reservation before it ends (a Redis store deletes its key, as an
// eviction, a FLUSHDB or a restart without persistence would; a memory
// store's key expires, its renewals never run). The edge counts it in
// caddy_ucwa_idempotency_reservations_lost_total, logs the error
// reservationLostWarning, naming no key, caller or number, and marks the
// request's audit line reservation_lost, which names its caller and
// operationId; no other line has the field. It writes the
// key back when it finds it free, so that a repeat is held back as if
// nothing had been lost (counted in _restored_total too): replayed after
// a recorded answer, 409 after one that cannot be replayed (longer than
// the edge records, or cut short by the pool: reverse_proxy panics). A
// repeat sent while the key was gone holds it by then, and was
// delivered: the first's answer is not written over it. A request that
// kept its key counts nothing, and its repeat is replayed.
func TestReservationLostInFlight(t *testing.T) {
	const (
		lostMetric     = "caddy_ucwa_idempotency_reservations_lost_total"
		restoredMetric = "caddy_ucwa_idempotency_reservations_restored_total"
	)
	deleteKey := func(t *testing.T, rdb *redis.Client) {
		ctx := context.Background()
		keys := rdb.Keys(ctx, "*").Val()
		if len(keys) != 1 {
			t.Fatalf("keys %q, want the request's", keys)
		}
		if n := rdb.Del(ctx, keys[0]).Val(); n != 1 {
			t.Fatalf("deleted %d keys", n)
		}
	}
	type lose func(t *testing.T, e edge, caller http.Header) (repeatInGap <-chan testkit.Response)
	// The stores, and how each loses the key (or keeps it).
	redisDeleted := func(t *testing.T) (string, lose) {
		config, rdb := lostRedisStore(t)
		return config, func(t *testing.T, _ edge, _ http.Header) <-chan testkit.Response { deleteKey(t, rdb); return nil }
	}
	memoryExpired := func(t *testing.T) (string, lose) {
		clock := lostMemoryClock(t)
		return "store memory", func(*testing.T, edge, http.Header) <-chan testkit.Response {
			clock.Advance(DefaultIdempotencyWindow + time.Second)
			return nil
		}
	}
	memoryKept := func(*testing.T) (string, lose) {
		return "store memory", func(*testing.T, edge, http.Header) <-chan testkit.Response { return nil }
	}
	for _, tc := range []struct {
		name   string
		store  func(t *testing.T) (config string, lose lose)
		answer string // the first request's
		// What the first gets, and what its repeat gets afterwards.
		firstStatus, repeatStatus int
		replayed                  bool
		deliveries                int
		lost, restored            float64
	}{
		{"redis key deleted, written back", redisDeleted, "hold", http.StatusCreated, http.StatusCreated, true, 1, 1, 1},
		{"redis key deleted, answer too long to record, written back", redisDeleted, "holdbig", http.StatusCreated, http.StatusConflict, false, 1, 1, 1},
		{"redis key deleted, answer cut short, written back", redisDeleted, "holdcut", cutShort, http.StatusConflict, false, 1, 1, 1},
		{"redis key deleted, taken by a repeat", func(t *testing.T) (string, lose) {
			config, rdb := lostRedisStore(t)
			return config, func(t *testing.T, e edge, caller http.Header) <-chan testkit.Response {
				deleteKey(t, rdb)
				return e.sendHeld(t, idemCall{header: caller, op: "lost-1", answer: "hold"})
			}
		}, "hold", http.StatusCreated, http.StatusCreated, true, 2, 1, 0},
		{"memory key expired, written back", memoryExpired, "hold", http.StatusCreated, http.StatusCreated, true, 1, 1, 1},
		{"memory key expired, answer cut short, written back", memoryExpired, "holdcut", cutShort, http.StatusConflict, false, 1, 1, 1},
		{"memory key kept", memoryKept, "hold", http.StatusCreated, http.StatusCreated, true, 1, 0, 0},
		{"memory key kept, answer too long to record", memoryKept, "holdbig", http.StatusCreated, http.StatusConflict, false, 1, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config, lose := tc.store(t)
			pool := newIdemPool(t, "primary")
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), config, "primary "+pool.Addr()), testkit.WithAdmin())
			caller := idemToken(t, "tenant-1", "oid-a", "sub-a")

			send := e.sendHeld
			if tc.firstStatus == cutShort {
				send = e.sendCutShort
			}
			first := send(t, idemCall{header: caller, op: "lost-1", answer: tc.answer})
			pool.Requests.WaitFor(t, 1, "requests at the pool")
			inGap := lose(t, e, caller)
			if inGap != nil {
				pool.Requests.WaitFor(t, 2, "the repeat sent while the key was gone, at the pool")
			}
			pool.Release()
			if resp := <-first; resp.Status != tc.firstStatus {
				t.Fatalf("first: %d %s, want %d", resp.Status, resp.Body, tc.firstStatus)
			}
			if inGap != nil {
				if resp := <-inGap; resp.Status != http.StatusCreated {
					t.Fatalf("repeat sent while the key was gone: %d %s", resp.Status, resp.Body)
				}
			}
			// Logged once the handlers returned, their answers recorded or not.
			handled := 1
			if inGap != nil {
				handled = 2
			}
			testkit.Eventually(t, "the requests' access log lines", func() bool {
				return len(e.Logs().Lines(`"msg":"handled request"`)) >= handled
			})

			repeat := e.call(idemCall{header: caller, op: "lost-1"})
			replayed := repeat.Header.Get(headerReplayed) == "true"
			if repeat.Status != tc.repeatStatus || replayed != tc.replayed || deliveries(pool.Pool, "lost-1") != tc.deliveries {
				t.Errorf("repeat: %d replayed %v, %d deliveries; want %d replayed %v, %d deliveries",
					repeat.Status, replayed, deliveries(pool.Pool, "lost-1"), tc.repeatStatus, tc.replayed, tc.deliveries)
			}
			for metric, want := range map[string]float64{lostMetric: tc.lost, restoredMetric: tc.restored} {
				if got := e.Metric(metric); got != want {
					t.Errorf("%s = %v, want %v", metric, got, want)
				}
			}
			// The requests' lines, the repeat's too.
			var audits []auditLine
			testkit.Eventually(t, "the requests' audit lines", func() bool {
				audits = auditLines(t, e.Logs().String())
				return len(audits) >= handled+1
			})
			if len(audits) != handled+1 {
				t.Fatalf("%d audit lines, want %d", len(audits), handled+1)
			}
			marked := 0
			for _, a := range audits {
				if a.ReservationLost == nil {
					continue
				}
				marked++
				if !*a.ReservationLost || a.OperationID != "lost-1" || a.Idempotency != "reserved" || a.Caller.OID != "oid-a" || a.Status != http.StatusCreated {
					t.Errorf("audit line marked reservation_lost %v: %+v; want true on the first request's (reserved, the pool's 201)", *a.ReservationLost, a)
				}
			}
			if marked != int(tc.lost) {
				t.Errorf("%d audit lines with reservation_lost, want %v", marked, tc.lost)
			}
			lines := e.Logs().Lines(`"msg":"idempotency reservation lost`)
			if tc.lost == 0 {
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

// cutShort is the status of an answer the pool cut short: the client's
// round trip fails.
const cutShort = 0

// sendCutShort sends c in the background, for an answer that the pool
// cuts short: the channel gets a Response with Status cutShort once the
// client's round trip failed, as it must.
func (e edge) sendCutShort(t *testing.T, c idemCall) <-chan testkit.Response {
	answer := make(chan testkit.Response, 1)
	go func() {
		if resp, err := testkit.Do(e.Client(), e.request(c)); err == nil {
			t.Errorf("a whole answer cut short by the pool: %d %q", resp.Status, resp.Body)
		}
		answer <- testkit.Response{Status: cutShort}
	}()
	return answer
}

// TestBatchReservationsLostInFlight: a batch, whose answer is never
// recorded, loses its parts' keys while the pool holds it (Redis
// flushed; a memory store's keys expired). Once it ends, the edge finds
// them in one renewal and writes each back, so that a part sent again
// alone is answered 409 and not delivered; each counts as lost and
// written back, and the batch's audit line is marked reservation_lost.
func TestBatchReservationsLostInFlight(t *testing.T) {
	const app = "/ucwa/v1/applications/1"
	start := func(op string) string {
		return innerPOST(app+"/communication/startPhoneAudio", "application/json", `{"to":"4255551234","operationId":"`+op+`"}`)
	}
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) (config string, lose func(t *testing.T))
	}{
		{"redis flushed", func(t *testing.T) (string, func(*testing.T)) {
			config, rdb := lostRedisStore(t)
			return config, func(t *testing.T) {
				ctx := context.Background()
				if n := rdb.DBSize(ctx).Val(); n != 2 {
					t.Fatalf("%d keys, want the batch's two", n)
				}
				if err := rdb.FlushDB(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"memory keys expired", func(t *testing.T) (string, func(*testing.T)) {
			clock := lostMemoryClock(t)
			return "store memory", func(*testing.T) { clock.Advance(DefaultIdempotencyWindow + time.Second) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config, lose := tc.store(t)
			pool := newIdemPool(t, "primary")
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), config, "primary "+pool.Addr()), testkit.WithAdmin())
			caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
			header := caller.Clone()
			header.Set("X-Test-Answer", "hold")
			batch := e.sendAsync(t, testkit.Request{URL: e.url(app + "/batch"), ContentType: batchType, Header: header, Body: batchBody(start("lost-b1"), start("lost-b2"))})
			pool.Requests.WaitFor(t, 1, "the batch at the pool")
			lose(t)
			pool.Release()
			if resp := <-batch; resp.Status != http.StatusCreated {
				t.Fatalf("batch: %d %s", resp.Status, resp.Body)
			}
			testkit.Eventually(t, "the batch's access log line", func() bool {
				return len(e.Logs().Lines(`"msg":"handled request"`)) >= 1
			})
			for _, op := range []string{"lost-b1", "lost-b2"} {
				assertConflict(t, e.call(idemCall{header: caller, op: op}))
			}
			if got := len(pool.Received()); got != 1 {
				t.Errorf("the pool got %d requests, want the batch alone", got)
			}
			var a []auditLine
			testkit.Eventually(t, "the batch's and its parts' audit lines", func() bool {
				a = auditLines(t, e.Logs().String())
				return len(a) >= 3
			})
			if len(a) != 3 || a[0].Operation != "batch" || a[0].ReservationLost == nil || !*a[0].ReservationLost ||
				a[1].ReservationLost != nil || a[2].ReservationLost != nil {
				t.Errorf("audit lines %+v, want the batch's marked reservation_lost and the parts' sent again not", a)
			}
			for metric, want := range map[string]float64{
				"caddy_ucwa_idempotency_reservations_lost_total":     2,
				"caddy_ucwa_idempotency_reservations_restored_total": 2,
			} {
				if got := e.Metric(metric); got != want {
					t.Errorf("%s = %v, want %v", metric, got, want)
				}
			}
		})
	}
}

// lostRedisStore starts a redis-server for a test that deletes the
// edge's keys behind its back: the edge's store config, and a client.
func lostRedisStore(t *testing.T) (string, *redis.Client) {
	srv := testkit.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return "store redis redis://" + srv.Addr() + " {\n\t\t\ttimeout 5s\n\t\t}", rdb
}

// lostMemoryClock puts the memory store on a clock the test advances to
// expire its keys; the renewals tick on one it never moves.
func lostMemoryClock(t *testing.T) *testkit.Clock {
	renewalClock(t)
	clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	memoryStoreClock = clock.Now
	t.Cleanup(func() { memoryStoreClock = nil })
	return clock
}
