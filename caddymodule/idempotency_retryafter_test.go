package caddymodule

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// retryAfterPool answers with the status of the request's X-Test-Status
// and each X-Test-Retry-After value as a Retry-After header of its own.
func retryAfterPool(_ *testkit.Pool, w http.ResponseWriter, r *http.Request) {
	for _, v := range r.Header.Values("X-Test-Retry-After") {
		w.Header().Add("Retry-After", v)
	}
	status, _ := strconv.Atoi(r.Header.Get("X-Test-Status"))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"code":"ServiceFailure"}`))
}

// fakeIdempotencyClock puts recorded answers' Retry-After on a clock the
// test moves (Unix milliseconds).
func fakeIdempotencyClock(t *testing.T) *atomic.Int64 {
	var now atomic.Int64
	now.Store(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).UnixMilli())
	idempotencyNow = func() time.Time { return time.UnixMilli(now.Load()) }
	t.Cleanup(func() { idempotencyNow = time.Now })
	return &now
}

// TestIdempotencyReplayRetryAfter: a pool's 503 or 429 is replayed with
// its Retry-After, which a repeat needs to know when to try again: in
// delta-seconds counted down from when the first answer went out, an
// HTTP-date as an IMF-fixdate; none once it has passed (a Retry-After of
// 0 would have a client send the repeat again at once, to the same
// answer, for the rest of the window). A Retry-After that is neither, or given
// twice, is not replayed; nor is one on a success, whose record stays in
// the format older edges read.
func TestIdempotencyReplayRetryAfter(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	tests := []struct {
		name       string
		status     int
		retryAfter []string
		later      time.Duration // from the first answer to the repeat
		want       string        // the repeat's Retry-After; "": none
	}{
		{"503 counted down", 503, []string{"120"}, 100 * time.Second, "20"},
		{"429 counted down, rounded up", 429, []string{"120"}, 99500 * time.Millisecond, "21"},
		{"at once", 503, []string{"120"}, 0, "120"},
		// A repeat whose edge's clock is behind the recording edge's
		// gets no longer a wait than the pool gave.
		{"on a clock behind", 503, []string{"120"}, -time.Minute, "120"},
		{"just past it", 503, []string{"120"}, 120 * time.Second, ""},
		{"past it", 503, []string{"120"}, time.Hour, ""},
		{"an IMF-fixdate gone by", 503, []string{"Sun, 01 Mar 2026 09:05:00 GMT"}, 10 * time.Minute, ""},
		{"leading zeros", 503, []string{"0030"}, 10 * time.Second, "20"},
		{"an IMF-fixdate", 503, []string{"Sun, 01 Mar 2026 09:05:00 GMT"}, time.Minute, "Sun, 01 Mar 2026 09:05:00 GMT"},
		{"an RFC 850 date", 429, []string{"Sunday, 01-Mar-26 09:05:00 GMT"}, time.Minute, "Sun, 01 Mar 2026 09:05:00 GMT"},
		{"neither", 503, []string{"soon"}, 0, ""},
		{"negative", 503, []string{"-5"}, 0, ""},
		{"too many digits", 503, []string{"12345678901"}, 0, ""},
		{"given twice", 503, []string{"5", "6"}, 0, ""},
		{"none", 503, nil, 0, ""},
		{"on a success", 201, []string{"5"}, 0, ""},
	}
	for _, st := range idemStores {
		t.Run(st.name, func(t *testing.T) {
			now := fakeIdempotencyClock(t)
			start := now.Load()
			pool := testkit.NewPool(t, "primary", retryAfterPool)
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.config(t), "primary "+pool.Addr()))
			for i, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					now.Store(start)
					c := idemCall{header: caller.Clone(), op: "retry-after-" + strconv.Itoa(i)}
					c.header.Set("X-Test-Status", strconv.Itoa(tc.status))
					c.header["X-Test-Retry-After"] = tc.retryAfter
					first := e.call(c)
					if first.Status != tc.status || first.Header.Get(headerReplayed) != "" {
						t.Fatalf("first: %d %v %s", first.Status, first.Header, first.Body)
					}
					now.Add(tc.later.Milliseconds())
					again := e.call(c)
					assertReplay(t, again, first)
					if got := again.Header.Values("Retry-After"); tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
						t.Errorf("replay's Retry-After %q, want %q", got, tc.want)
					}
					if got := deliveries(pool, c.op); got != 1 {
						t.Errorf("delivered %d times", got)
					}
				})
			}
		})
	}
}

// TestRecordedRetryAfterFormat pins the letters of recorded answers: a
// failure of a request that was no emergency call, with its Retry-After
// or without, is "R" or "S", which edges that know only "a", "e", "A"
// and "E" do not read as an answer (they answer 409), and reads back as
// written; a success, and a failure without the mark, keep "a" to "E";
// a record with a sealed body starts with "~", which no edge before
// reads.
func TestRecordedRetryAfterFormat(t *testing.T) {
	const inputs = "AAAAAAAAAAAAAAAAAAAAAA"
	for _, tc := range []struct {
		a    recordedAnswer
		kind byte
	}{
		{recordedAnswer{status: 503, contentType: "application/json", body: "{}", inputs: inputs, retryAfter: "120", recordedAt: 1772355600000, notEmergency: true}, 'R'},
		{recordedAnswer{status: 429, location: "/x", onEdge: true, inputs: inputs, retryAfter: "Sun, 01 Mar 2026 09:05:00 GMT", recordedAt: 1, notEmergency: true}, 'S'},
		{recordedAnswer{status: 409, body: "{}", inputs: inputs, notEmergency: true}, 'R'},
		{recordedAnswer{status: 503, inputs: inputs}, 'A'},
		{recordedAnswer{status: 201, inputs: inputs}, 'A'},
		// A sealed body (see answer_seal.go): "~" before any kind.
		{recordedAnswer{status: 201, body: "sealed", inputs: inputs, sealed: true}, '~'},
		{recordedAnswer{status: 409, body: "sealed", inputs: inputs, notEmergency: true, sealed: true}, '~'},
	} {
		v := tc.a.encode()
		if v[0] != tc.kind {
			t.Errorf("%+v encoded as %q, want kind %c", tc.a, v, tc.kind)
		}
		if got, ok := decodeAnswer(v); !ok || got != tc.a {
			t.Errorf("decodeAnswer(%q) = %+v, %v; want %+v", v, got, ok, tc.a)
		}
	}
	// Damaged or forged: unread, never replayed with another header.
	for _, v := range []string{
		"R" + inputs + "5030:0:3:0:1\r\nX{}",
		"R" + inputs + "2010:0:1:0:5",
		"R" + inputs + "5030:0:9:0:12",
		"R" + inputs + "5030:0:2:x:12",
	} {
		if a, ok := decodeAnswer(v); ok {
			t.Errorf("decodeAnswer(%q) = %+v, want unread", v, a)
		}
	}
}

// TestIdempotencyEmergencyJudgedAsFirst: a reload makes a number an
// emergency number (destinations' emergency list, or sip_domains for an
// emergency number in a SIP URI) between a request that dials it and the
// request's repeat. The repeat is held back as
// the first request was, not delivered a second time: one still in
// flight gets 409, one that failed gets its failure again. A repeat with
// other inputs (another number) is another request, delivered as an
// emergency call is; and under the new config, an emergency call that
// fails is still delivered again.
func TestIdempotencyEmergencyJudgedAsFirst(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	reloads := []struct {
		name, before, after string // the destinations' subdirectives
		number              string
	}{
		{"emergency", "emergency 911", "emergency 911 +14255550100", "4255550100"},
		{"sip_domains", "allow_regions US", "sip_domains contoso.com", "sip:911@contoso.com;user=phone"},
	}
	for _, st := range idemStores {
		for _, rl := range reloads {
			t.Run(st.name+"/"+rl.name, func(t *testing.T) {
				pool := newIdemPool(t, "primary")
				storeConfig := st.config(t)
				config := func(destinations string) string {
					return idemCaddyfile(idemAuth(t), storeConfig, "primary "+pool.Addr(), "destinations {\n\t\t\t"+destinations+"\n\t\t}")
				}
				call := func(op, to, answer string) idemCall {
					return idemCall{header: caller, op: op, answer: answer, body: `{"to":"` + to + `","operationId":"` + op + `"}`}
				}
				number := rl.number
				e := startEdge(t, "caddyfile", config(rl.before))

				failed := e.call(call("judged-failed", number, "conflict"))
				if failed.Status != http.StatusConflict {
					t.Fatalf("first: %d %s, want the pool's 409", failed.Status, failed.Body)
				}
				atPool := pool.Requests.Load()
				first := e.sendHeld(t, call("judged-in-flight", number, "hold"))
				pool.Requests.WaitFor(t, atPool+1, "requests at the pool")

				e.Load("caddyfile", config(rl.after))

				assertReplay(t, e.call(call("judged-failed", number, "")), failed)
				assertConflict(t, e.call(call("judged-in-flight", number, "")))
				for _, op := range []string{"judged-failed", "judged-in-flight"} {
					if other := e.call(call(op, "911", "")); other.Status != http.StatusCreated || other.Header.Get(headerReplayed) != "" {
						t.Errorf("%s to another number, an emergency call: %d %s, want it delivered", op, other.Status, other.Body)
					}
				}
				// That emergency call took the key of the failure over
				// no more than it was held back by it: the first
				// request's repeat still gets its failure again.
				assertReplay(t, e.call(call("judged-failed", number, "")), failed)
				if now := e.call(call("emergency-now", number, "conflict")); now.Status != http.StatusConflict {
					t.Fatalf("an emergency call now: %d %s", now.Status, now.Body)
				}
				if again := e.call(call("emergency-now", number, "")); again.Status != http.StatusCreated || again.Header.Get(headerReplayed) != "" {
					t.Errorf("the repeat of a failed emergency call: %d %s, want it delivered", again.Status, again.Body)
				}
				pool.Release()
				if answer := <-first; answer.Status != http.StatusCreated {
					t.Fatalf("the request in flight: %d %s", answer.Status, answer.Body)
				}
				for op, want := range map[string]int{"judged-failed": 2, "judged-in-flight": 2, "emergency-now": 2} {
					if got := deliveries(pool.Pool, op); got != want {
						t.Errorf("%s: delivered %d times, want %d", op, got, want)
					}
				}
			})
		}
	}
}

// TestIdempotencyEmergencyBatchPart: a batch part that dials a number
// is no emergency call when it comes; a reload then makes the number an
// emergency number. The part sent again alone, an emergency call now, is
// held back as the part would be (409: a batch's answer is never given
// again), not delivered a second time; alone with another number it is
// another request, delivered. A part that dialed an emergency number
// when it came holds no repeat that is an emergency call back: sent
// again alone, it is delivered.
func TestIdempotencyEmergencyBatchPart(t *testing.T) {
	token := testkit.Mint(t, jwt.SigningMethodES256, testkit.Keys(t).EC, "", testkit.Claims(time.Now(),
		jwt.MapClaims{"tid": "tenant-1", "oid": "oid-a", "scp": "Conversations.Initiate"}))
	caller := http.Header{"Authorization": {"Bearer " + token}}
	const app = "/ucwa/v1/applications/1"
	body := func(op, to string) string { return `{"to":"` + to + `","operationId":"` + op + `"}` }
	part := func(op, to string) string {
		return innerPOST(app+"/communication/startPhoneAudio", "application/json", body(op, to))
	}
	for _, st := range idemStores {
		t.Run(st.name, func(t *testing.T) {
			pool := newIdemPool(t, "primary")
			storeConfig := st.config(t)
			config := emergencyCaddyfile(t, storeConfig, pool)
			e := startEdge(t, "caddyfile", config("911"))
			batch := e.send(testkit.Request{URL: app + "/batch", ContentType: batchType, Header: caller.Clone(),
				Body: batchBody(part("part-then-emergency", "4255550100"), part("part-other-number", "4255550100"), part("part-was-emergency", "911"))})
			if batch.Status != http.StatusCreated || len(pool.Received()) != 1 {
				t.Fatalf("batch: %d %s, %d requests at the pool", batch.Status, batch.Body, len(pool.Received()))
			}

			e.Load("caddyfile", config("911 +14255550100"))

			assertConflict(t, e.call(idemCall{header: caller, op: "part-then-emergency", body: body("part-then-emergency", "4255550100")}))
			if got := len(pool.Received()); got != 1 {
				t.Fatalf("the part alone, an emergency call now, reached the pool: %d requests", got)
			}
			for _, c := range []struct{ op, to string }{{"part-other-number", "911"}, {"part-was-emergency", "911"}} {
				if resp := e.call(idemCall{header: caller, op: c.op, body: body(c.op, c.to)}); resp.Status != http.StatusCreated || resp.Header.Get(headerReplayed) != "" {
					t.Errorf("%s alone to %s, an emergency call: %d %s, want it delivered", c.op, c.to, resp.Status, resp.Body)
				}
			}
			if got := len(pool.Received()); got != 3 {
				t.Errorf("%d requests at the pool, want 3", got)
			}
		})
	}
}

// TestIdempotencyEmergencyNoLonger: an emergency call that failed (the
// pool's 409, the edge's 502 after a reset, a failure too long to record)
// may have been placed; a reload then takes its number off the emergency
// numbers. Its repeat, no emergency call now, is held back as any repeat
// is, never delivered a second time: it gets the failure again, or 409
// when there is none to give. Under the first config, a repeat that is
// still an emergency call is delivered, and its own answer is then
// recorded for its repeats.
func TestIdempotencyEmergencyNoLonger(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	for _, st := range idemStores {
		t.Run(st.name, func(t *testing.T) {
			pool := newIdemPool(t, "primary")
			storeConfig := st.config(t)
			// The pool is killed for one request (see
			// expectOnEveryConnection).
			config := emergencyCaddyfile(t, storeConfig, pool, expectOnEveryConnection)
			call := func(op, answer string) idemCall {
				return idemCall{header: caller, op: op, answer: answer, body: `{"to":"4255550100","operationId":"` + op + `"}`}
			}
			e := startEdge(t, "caddyfile", config("911 +14255550100"))

			first := map[string]testkit.Response{}
			for op, want := range map[string]struct {
				answer string
				status int
			}{
				"no-longer-failed": {"conflict", http.StatusConflict},
				"no-longer-502":    {"reset", http.StatusBadGateway},
				"no-longer-long":   {"bigfailure", http.StatusInternalServerError},
				"still":            {"conflict", http.StatusConflict},
			} {
				if first[op] = e.call(call(op, want.answer)); first[op].Status != want.status {
					t.Fatalf("%s: %d %s, want %d", op, first[op].Status, first[op].Body, want.status)
				}
			}
			again := e.call(call("still", ""))
			if again.Status != http.StatusCreated || again.Header.Get(headerReplayed) != "" {
				t.Fatalf("the repeat of a failed emergency call: %d %s, want it delivered", again.Status, again.Body)
			}
			assertReplay(t, e.call(call("still", "")), again)
			// A repeat that reaches no pool gives the key back as it was.
			pool.Kill()
			if resp := e.call(call("no-longer-failed", "")); resp.Status != http.StatusGone {
				t.Fatalf("no pool: %d %s, want 410", resp.Status, resp.Body)
			}
			pool.Restart(t)

			e.Load("caddyfile", config("911"))

			assertReplay(t, e.call(call("no-longer-failed", "")), first["no-longer-failed"])
			assertReplay(t, e.call(call("no-longer-502", "")), first["no-longer-502"])
			assertConflict(t, e.call(call("no-longer-long", "")))
			for op, want := range map[string]int{"no-longer-failed": 1, "no-longer-502": 1, "no-longer-long": 1, "still": 2} {
				if got := deliveries(pool.Pool, op); got != want {
					t.Errorf("%s: delivered %d times, want %d", op, got, want)
				}
			}
		})
	}
}

// TestIdempotencyEmergencyOlderRecords: a reservation or a failure an
// older edge wrote in a shared Redis (a token "f", a failure of kind
// "A") says nothing of whether the first request was an emergency call:
// a repeat that is one now is delivered, as any repeat of an emergency
// call, never held back by a record that may be an emergency call's.
func TestIdempotencyEmergencyOlderRecords(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	srv := testkit.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	pool := newIdemPool(t, "primary")
	config := emergencyCaddyfile(t, "store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t}", pool)
	call := func(op, answer string) idemCall {
		return idemCall{header: caller, op: op, answer: answer, body: `{"to":"4255550100","operationId":"` + op + `"}`}
	}
	e := startEdge(t, "caddyfile", config("911"))
	// older rewrites the value of kind the store holds as an older edge
	// writes it (a body sealed as this version seals it: what is judged
	// here is read from the record's kind and status).
	older := func(kind byte, old func(string) string) {
		t.Helper()
		n := 0
		for _, key := range rdb.Keys(ctx, "*").Val() {
			if v := rdb.Get(ctx, key).Val(); strings.HasPrefix(strings.TrimPrefix(v, "~"), string(kind)) {
				n++
				if err := rdb.SetArgs(ctx, key, old(v), redis.SetArgs{KeepTTL: true}).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if n != 1 {
			t.Fatalf("%d values of kind %c", n, kind)
		}
	}

	if failed := e.call(call("older-failed", "conflict")); failed.Status != http.StatusConflict {
		t.Fatalf("first: %d %s", failed.Status, failed.Body)
	}
	older('R', func(v string) string {
		a, _ := decodeAnswer(v)
		a.notEmergency = false
		return a.encode()
	})
	atPool := pool.Requests.Load()
	first := e.sendHeld(t, call("older-in-flight", "hold"))
	pool.Requests.WaitFor(t, atPool+1, "requests at the pool")
	older('n', func(string) string { return reservationToken() })

	e.Load("caddyfile", config("911 +14255550100"))
	for _, op := range []string{"older-failed", "older-in-flight"} {
		if again := e.call(call(op, "")); again.Status != http.StatusCreated || again.Header.Get(headerReplayed) != "" {
			t.Errorf("%s: the repeat, an emergency call now: %d %s, want it delivered", op, again.Status, again.Body)
		}
		if got := deliveries(pool.Pool, op); got != 2 {
			t.Errorf("%s: delivered %d times, want 2", op, got)
		}
	}
	pool.Release()
	<-first
}

// emergencyCaddyfile returns the Caddyfile of an edge with idempotency in
// storeConfig's store, delivering to pool, whose emergency numbers are
// those given: the tests reload it with others, as an administrator adds
// or takes off a number within a request's window. extra are more
// subdirectives of the ucwa handler.
func emergencyCaddyfile(t *testing.T, storeConfig string, pool *idemPool, extra ...string) func(emergency string) string {
	return func(emergency string) string {
		return idemCaddyfile(append([]string{idemAuth(t), storeConfig, "primary " + pool.Addr(),
			"destinations {\n\t\t\temergency " + emergency + "\n\t\t}"}, extra...)...)
	}
}

// expectOnEveryConnection is the ucwa subdirective that makes every
// request with a body carry Expect: 100-continue to the pool, for a test
// that kills a pool the edge holds kept-alive connections to and then
// sends a request it wants to reach no pool: the request may meet one of
// those connections before the edge noticed it closed, and the edge
// knows the pool did not take it only when the pool never asked for the
// body (see pool_expect.go). Without the expectation, the request goes
// out in one write whole, and the pool may have had it.
const expectOnEveryConnection = "expect_continue_after_idle 0"
