package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// limitApp is the application of the limit tests' requests.
const limitApp = "/ucwa/oauth/v1/applications/7"

// limitEdge is an edge with ES256 tokens (default_region US), the given
// store and subdirectives, delivering to a recording pool.
type limitEdge struct {
	edge
	pool *testkit.Pool
}

// limitCaddyfile is the config of a limit edge on EDGE_PORT.
func limitCaddyfile(t *testing.T, pool *testkit.Pool, subdirectives ...string) string {
	return fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		default_region US
		%s
		%s
		primary %s
	}
}`, idemAuth(t), strings.Join(subdirectives, "\n\t\t"), pool.Addr())
}

func startLimitEdge(t *testing.T, subdirectives ...string) limitEdge {
	t.Helper()
	pool := testkit.NewUpstream(t)
	return limitEdge{startEdge(t, "caddyfile", limitCaddyfile(t, pool, subdirectives...), testkit.WithAdmin()), pool}
}

// limitStores are the stores the limit tests run on: memory, and Redis
// on a redis-server started for the test, with a timeout generous enough
// for a loaded machine.
var limitStores = []struct {
	name   string
	config func(t *testing.T) string
}{
	{"memory", func(*testing.T) string { return "store memory" }},
	{"redis", func(t *testing.T) string {
		return "store redis " + testkit.StartRedis(t).URL() + " {\n\t\t\ttimeout 5s\n\t\t}"
	}},
}

// caller is a verified caller of the limit tests.
type caller struct{ tid, sub string }

// header is the Authorization of a token of the caller, granting calls
// and forwarding.
func (c caller) header(t *testing.T) http.Header {
	claims := testkit.Claims(time.Now(), jwt.MapClaims{"tid": c.tid, "sub": c.sub, "scp": "Conversations.Initiate User.ReadWrite"})
	token := testkit.Mint(t, jwt.SigningMethodES256, testkit.Keys(t).EC, "", claims)
	return http.Header{"Authorization": {"Bearer " + token}}
}

// Requests of the limit tests: an operation of limitApp with a JSON body.
func limitRequest(path, body string, header http.Header) testkit.Request {
	return testkit.Request{URL: limitApp + path, ContentType: "application/json", Body: body, Header: header.Clone()}
}

// callOp sends a startPhoneAudio to +14255551234 with the operationId op
// ("": none) and the header h to the edge.
func (e limitEdge) callOp(op string, h http.Header) testkit.Response {
	e.t.Helper()
	body := `{"to":"+14255551234","operationId":"` + op + `"}`
	if op == "" {
		body = `{"to":"+14255551234"}`
	}
	return e.send(limitRequest("/communication/startPhoneAudio", body, h))
}

func callTo(to string, h http.Header) testkit.Request {
	return limitRequest("/communication/startPhoneAudio", `{"to":"`+to+`"}`, h)
}

// audioCallTo is an audio call (VoIP): unlike call-via-work, it rings no
// phone of the caller's.
func audioCallTo(to string, h http.Header) testkit.Request {
	return limitRequest("/communication/startAudio", `{"to":"`+to+`"}`, h)
}

func emergencyCallTo(to string, h http.Header) testkit.Request {
	return limitRequest("/communication/startEmergencyCall", `{"to":"`+to+`"}`, h)
}

func forwardTo(target string, h http.Header) testkit.Request {
	return limitRequest("/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact", `{"target":"`+target+`"}`, h)
}

// assertLimited checks that resp is a 429 LimitExceeded naming limit,
// with a Retry-After of whole seconds in [1, most] (no Retry-After when
// most is 0).
func assertLimited(t *testing.T, resp testkit.Response, limit string, most int) {
	t.Helper()
	if resp.Status != http.StatusTooManyRequests {
		t.Fatalf("status %d (%s), want 429", resp.Status, resp.Body)
	}
	assertUCWAError(t, resp, "TooManyRequests", "LimitExceeded", nil, false)
	if e := ucwaError(t, resp.Body); !strings.Contains(e.Message, strconv.Quote(limit)) {
		t.Errorf("message %q does not name the limit %q", e.Message, limit)
	}
	ra := resp.Header.Get("Retry-After")
	if most == 0 {
		if ra != "" {
			t.Errorf("Retry-After %q on a request that can never fit", ra)
		}
		return
	}
	secs, err := strconv.Atoi(ra)
	if err != nil || secs < 1 || secs > most {
		t.Errorf("Retry-After %q, want whole seconds in [1, %d]", ra, most)
	}
}

// TestLimit21stCall: with `limit calls 20 per 1h`, the 21st call of a
// caller in an hour is answered 429 with Retry-After (at most the 180s a
// token takes to come back) and not delivered, and counted in
// caddy_ucwa_limited_total; another caller still calls, and an audio
// call to a person (a SIP URI, no number, no phone of the caller's) does
// not count.
func TestLimit21stCall(t *testing.T) {
	for _, st := range limitStores {
		t.Run(st.name, func(t *testing.T) {
			e := startLimitEdge(t, st.config(t), "limit calls 20 per 1h")
			alice := caller{"tenant-1", "alice"}.header(t)
			for i := range 20 {
				if resp := e.send(callTo("+14255551234", alice)); resp.Status != http.StatusCreated {
					t.Fatalf("call %d: %d %s", i+1, resp.Status, resp.Body)
				}
			}
			assertLimited(t, e.send(callTo("+14255551234", alice)), "calls", 180)
			if got := e.pool.Requests.Load(); got != 20 {
				t.Fatalf("the pool got %d requests, want 20", got)
			}
			if got := e.Metric(`caddy_ucwa_limited_total{limit="calls"}`); got != 1 {
				t.Errorf(`caddy_ucwa_limited_total{limit="calls"} = %v, want 1`, got)
			}
			if resp := e.send(audioCallTo("sip:john@contoso.com", alice)); resp.Status != http.StatusCreated {
				t.Errorf("an audio call to a person: %d %s", resp.Status, resp.Body)
			}
			if resp := e.send(callTo("+14255551234", caller{"tenant-1", "bob"}.header(t))); resp.Status != http.StatusCreated {
				t.Errorf("another caller: %d %s", resp.Status, resp.Body)
			}
			if got := e.pool.Requests.Load(); got != 22 {
				t.Fatalf("the pool got %d requests, want 22", got)
			}
		})
	}
}

// TestLimitSequence: one sequence of requests through four limits, a
// class and a key each, gets the same answers on the memory store and on
// Redis: international counts only calls outside default_region,
// forwarding only forwarding targets, the tenant key puts every caller of
// a tenant in one budget and other tenants in others. A request that one
// limit refuses takes nothing from the others, and its Retry-After is the
// longest wait of the limits that refuse it. Emergency calls
// pass every limit: their emergency numbers take nothing, and their other
// numbers take what is left, so that an emergency number added to a call
// does not make the rest of it free.
func TestLimitSequence(t *testing.T) {
	const limits = `limit calls 3 per 1h
		limit international 1 per 24h international
		limit forwarding 1 per 24h forwarding
		limit tenant 8 per 1h key {http.ucwa.tid}`
	a, b, c, d := caller{"T1", "a"}, caller{"T1", "b"}, caller{"T2", "c"}, caller{"T1", "d"}
	steps := []struct {
		what    string
		who     caller
		req     func(http.Header) testkit.Request
		limited string // the limit that refuses it; "" for delivered
		// The least Retry-After of a refusal, in seconds.
		retryAtLeast int
		// The limit an emergency call is delivered over, in its audit
		// line.
		overLimit string
	}{
		{what: "a home call", who: a, req: func(h http.Header) testkit.Request { return callTo("+14255551234", h) }},
		{what: "a call abroad", who: a, req: func(h http.Header) testkit.Request { return callTo("+442071234567", h) }},
		{what: "a second call abroad", who: a, req: func(h http.Header) testkit.Request { return callTo("+33142685300", h) }, limited: "international"},
		// The call abroad the international limit refused took nothing
		// from calls, listed before it, nor from tenant, listed after.
		{what: "a third call", who: a, req: func(h http.Header) testkit.Request { return callTo("+14255551234", h) }},
		{what: "a fourth call", who: a, req: func(h http.Header) testkit.Request { return callTo("+14255551234", h) }, limited: "calls"},
		// Refused by calls (a token back within 20 minutes) and by
		// international (within 24 hours): named by the first, told to
		// wait for the second.
		{what: "a call abroad over both", who: a, req: func(h http.Header) testkit.Request { return callTo("+442071234567", h) }, limited: "calls", retryAtLeast: 3600},
		{what: "a's emergency call", who: a, req: func(h http.Header) testkit.Request { return emergencyCallTo("911", h) }},
		// The pool rings a's own phone first, the number it keeps: over
		// calls, delivered; the tenant's fourth.
		{what: "a's call-via-work to 911", who: a, req: func(h http.Header) testkit.Request { return callTo("911", h) }, overLimit: "calls"},
		// Over calls and international, delivered; the tenant's fifth.
		{what: "a's emergency call to a number abroad", who: a, req: func(h http.Header) testkit.Request { return emergencyCallTo("+442071234567", h) }, overLimit: "calls"},
		// The pool rings phoneNumber first: the tenant's sixth.
		{what: "a's call-via-work to 911 with a callback abroad", who: a, req: func(h http.Header) testkit.Request {
			return limitRequest("/communication/startPhoneAudio", `{"to":"911","phoneNumber":"+33142685300"}`, h)
		}, overLimit: "calls"},
		{what: "a forwarding target", who: b, req: func(h http.Header) testkit.Request { return forwardTo("+14255550000", h) }},
		{what: "a second forwarding target", who: b, req: func(h http.Header) testkit.Request { return forwardTo("+14255550001", h) }, limited: "forwarding"},
		{what: "forwarding to a person", who: b, req: func(h http.Header) testkit.Request { return forwardTo("sip:john@contoso.com", h) }},
		{what: "an audio call to a person", who: b, req: func(h http.Header) testkit.Request { return audioCallTo("sip:john@contoso.com", h) }},
		{what: "b's call", who: b, req: func(h http.Header) testkit.Request { return callTo("+14255551234", h) }},
		{what: "another tenant's call", who: c, req: func(h http.Header) testkit.Request { return callTo("+14255551234", h) }},
		{what: "the tenant's ninth", who: d, req: func(h http.Header) testkit.Request { return callTo("+14255551234", h) }, limited: "tenant"},
		{what: "another tenant's second", who: c, req: func(h http.Header) testkit.Request { return callTo("+14255551234", h) }},
	}
	answers := map[string][]int{}
	for _, st := range limitStores {
		t.Run(st.name, func(t *testing.T) {
			e := startLimitEdge(t, st.config(t), limits)
			delivered := int64(0)
			for i, s := range steps {
				resp := e.send(s.req(s.who.header(t)))
				answers[st.name] = append(answers[st.name], resp.Status)
				if s.limited != "" {
					assertLimited(t, resp, s.limited, 24*3600)
					if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < s.retryAtLeast {
						t.Errorf("step %d (%s): Retry-After %d, want at least %d", i+1, s.what, ra, s.retryAtLeast)
					}
				} else if resp.Status != http.StatusCreated {
					t.Fatalf("step %d (%s): %d %s", i+1, s.what, resp.Status, resp.Body)
				} else {
					delivered++
				}
				if got := e.pool.Requests.Load(); got != delivered {
					t.Fatalf("step %d (%s): the pool got %d requests, want %d", i+1, s.what, got, delivered)
				}
				var lines []auditLine
				testkit.Eventually(t, "the step's audit line", func() bool {
					lines = auditLines(t, e.Logs().String())
					return len(lines) > i
				})
				if got := lines[i].OverLimit; got != s.overLimit {
					t.Errorf("step %d (%s): audit over_limit %q, want %q", i+1, s.what, got, s.overLimit)
				}
			}
			// Every limit that refused a request counts it.
			for name, want := range map[string]float64{"calls": 2, "international": 2, "forwarding": 1, "tenant": 1} {
				if got := e.Metric(`caddy_ucwa_limited_total{limit="` + name + `"}`); got != want {
					t.Errorf("caddy_ucwa_limited_total{limit=%q} = %v, want %v", name, got, want)
				}
			}
			for name, want := range map[string]float64{"calls": 3, "international": 2, "forwarding": 0, "tenant": 0} {
				if got := e.Metric(`caddy_ucwa_limit_exempted_total{limit="` + name + `"}`); got != want {
					t.Errorf("caddy_ucwa_limit_exempted_total{limit=%q} = %v, want %v", name, got, want)
				}
			}
		})
	}
	if m, r := answers["memory"], answers["redis"]; r != nil && !slices.Equal(m, r) {
		t.Errorf("memory answered %v, redis %v", m, r)
	}
}

// TestLimitRefusedTakesNothing: a request that one limit refuses takes
// nothing from the others, so that a caller hammering a refused limit
// does not drain them, and a request several limits refuse is named by
// the first and told the longest wait. The memory store runs on a fake
// clock, to the second; Redis, on its own clock, within a minute. A
// Redis Cluster takes from both limits, whose keys differ, in one script.
func TestLimitRefusedTakesNothing(t *testing.T) {
	const limits = `limit calls 2 per 1h
		limit international 1 per 24h international`
	abroad := func(h http.Header) testkit.Request { return callTo("+442071234567", h) }
	home := func(h http.Header) testkit.Request { return callTo("+14255551234", h) }
	type step struct {
		what    string
		req     func(http.Header) testkit.Request
		limited string // "" for delivered
		retry   int    // Retry-After of a refusal, in seconds
	}
	steps := []step{{what: "a call abroad", req: abroad}}
	for range 10 {
		steps = append(steps, step{"another call abroad", abroad, "international", 24 * 3600})
	}
	steps = append(steps,
		step{what: "a home call, calls' second", req: home},
		step{"a third home call", home, "calls", 1800},
		step{"a call abroad over both", abroad, "calls", 24 * 3600},
	)
	stores := append(slices.Clone(limitStores), limitStores[0])
	stores[len(stores)-1].name = "redis cluster"
	stores[len(stores)-1].config = func(t *testing.T) string {
		srv := testkit.StartRedisWith(t, testkit.RedisConfig{Cluster: true})
		return "store redis " + srv.URL() + " {\n\t\t\ttimeout 5s\n\t\t\tcluster\n\t\t}"
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			slack := 60
			if st.name == "memory" {
				clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
				memoryStoreClock = clock.Now
				t.Cleanup(func() { memoryStoreClock = nil })
				slack = 0
			}
			e := startLimitEdge(t, st.config(t), limits)
			alice := caller{"tenant-1", "alice"}.header(t)
			delivered := int64(0)
			for i, s := range steps {
				resp := e.send(s.req(alice))
				if s.limited == "" {
					if resp.Status != http.StatusCreated {
						t.Fatalf("step %d (%s): %d %s", i+1, s.what, resp.Status, resp.Body)
					}
					delivered++
					continue
				}
				assertLimited(t, resp, s.limited, s.retry)
				if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < s.retry-slack {
					t.Fatalf("step %d (%s): Retry-After %d, want %d", i+1, s.what, ra, s.retry)
				}
			}
			if got := e.pool.Requests.Load(); got != delivered {
				t.Errorf("the pool got %d requests, want %d", got, delivered)
			}
			for name, want := range map[string]float64{"calls": 2, "international": 11} {
				if got := e.Metric(`caddy_ucwa_limited_total{limit="` + name + `"}`); got != want {
					t.Errorf("caddy_ucwa_limited_total{limit=%q} = %v, want %v", name, got, want)
				}
			}
		})
	}
}

// TestLimitRetryAfterOfLongestWait: a call that two limits refuse is
// answered with the Retry-After of the longer wait, whichever limit is
// listed first (and named): sent again after the shorter one, it would
// be refused by the other. The memory store on a fake clock, so that the
// waits are exact.
func TestLimitRetryAfterOfLongestWait(t *testing.T) {
	const (
		calls         = "limit calls 1 per 1h"
		international = "limit international 1 per 24h international"
	)
	for _, tc := range []struct {
		name   string
		limits []string
		named  string // the limit the 429 names: the first listed
	}{
		{"the longer wait listed last", []string{calls, international}, "calls"},
		{"the longer wait listed first", []string{international, calls}, "international"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
			memoryStoreClock = clock.Now
			t.Cleanup(func() { memoryStoreClock = nil })
			e := startLimitEdge(t, append([]string{"store memory"}, tc.limits...)...)
			alice := caller{"tenant-1", "alice"}.header(t)
			if resp := e.send(callTo("+442071234567", alice)); resp.Status != http.StatusCreated {
				t.Fatalf("the first call abroad: %d %s", resp.Status, resp.Body)
			}
			resp := e.send(callTo("+442071234567", alice))
			assertLimited(t, resp, tc.named, 24*3600)
			if ra := resp.Header.Get("Retry-After"); ra != strconv.Itoa(24*3600) {
				t.Errorf("Retry-After %q, want %d, the longer wait", ra, 24*3600)
			}
			if got := e.pool.Requests.Load(); got != 1 {
				t.Errorf("the pool got %d requests, want 1", got)
			}
		})
	}
}

// TestLimitRefill: Retry-After says when the refused call fits, on the
// edge's clock, in whole seconds rounded up: a second early it is still
// refused, then it is delivered.
func TestLimitRefill(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	memoryStoreClock = clock.Now
	t.Cleanup(func() { memoryStoreClock = nil })
	e := startLimitEdge(t, "store memory", "limit calls 2 per 1h")
	alice := caller{"tenant-1", "alice"}.header(t)
	for range 2 {
		if resp := e.send(callTo("+14255551234", alice)); resp.Status != http.StatusCreated {
			t.Fatalf("%d %s", resp.Status, resp.Body)
		}
	}
	resp := e.send(callTo("+14255551234", alice))
	assertLimited(t, resp, "calls", 1800)
	if ra := resp.Header.Get("Retry-After"); ra != "1800" {
		t.Fatalf("Retry-After %q, want 1800 (one of 2 per 1h)", ra)
	}
	// Any part of a second left counts as a second, however small: a
	// client told 1 would be refused again.
	clock.Advance(1799*time.Second - 500*time.Microsecond)
	resp = e.send(callTo("+14255551234", alice))
	assertLimited(t, resp, "calls", 2)
	if ra := resp.Header.Get("Retry-After"); ra != "2" {
		t.Fatalf("Retry-After %q a second and half a millisecond before it fits, want 2", ra)
	}
	clock.Advance(500 * time.Microsecond)
	resp = e.send(callTo("+14255551234", alice))
	assertLimited(t, resp, "calls", 1)
	clock.Advance(time.Second)
	if resp := e.send(callTo("+14255551234", alice)); resp.Status != http.StatusCreated {
		t.Fatalf("after Retry-After: %d %s", resp.Status, resp.Body)
	}
	if got := e.pool.Requests.Load(); got != 3 {
		t.Errorf("the pool got %d requests, want 3", got)
	}
}

// TestLimitIdempotency: idempotency comes first: a replayed repeat takes
// nothing from a limit, and a request the limit refuses releases its
// operationId, so that the same request is delivered once it fits.
func TestLimitIdempotency(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	memoryStoreClock = clock.Now
	t.Cleanup(func() { memoryStoreClock = nil })
	e := startLimitEdge(t, "store memory", "idempotency", "limit calls 2 per 1h")
	alice := caller{"tenant-1", "alice"}.header(t)
	call := func(op string) testkit.Response {
		return e.send(limitRequest("/communication/startPhoneAudio", `{"to":"+14255551234","operationId":"`+op+`"}`, alice))
	}
	if resp := call("op-1"); resp.Status != http.StatusCreated {
		t.Fatalf("op-1: %d %s", resp.Status, resp.Body)
	}
	for range 3 {
		if resp := call("op-1"); resp.Status != http.StatusCreated || resp.Header.Get(headerReplayed) != "true" {
			t.Fatalf("op-1 again: %d %v %s, want the first answer replayed", resp.Status, resp.Header, resp.Body)
		}
	}
	if resp := call("op-2"); resp.Status != http.StatusCreated || resp.Header.Get(headerReplayed) != "" {
		t.Fatalf("op-2, within the limit despite op-1's replays: %d %s", resp.Status, resp.Body)
	}
	assertLimited(t, call("op-3"), "calls", 1800)
	// Refused, not 409: the refusal released op-3.
	assertLimited(t, call("op-3"), "calls", 1800)
	clock.Advance(30 * time.Minute)
	if resp := call("op-3"); resp.Status != http.StatusCreated || resp.Header.Get(headerReplayed) != "" {
		t.Fatalf("op-3 once it fits: %d %s", resp.Status, resp.Body)
	}
	if got := deliveries(e.pool, "op-3"); got != 1 {
		t.Errorf("op-3 delivered %d times, want once", got)
	}
	if got := e.pool.Requests.Load(); got != 3 {
		t.Errorf("the pool got %d requests, want 3", got)
	}
}

// TestLimitBatch: each counted part of a batch takes an event, all or
// none: a batch that does not fit is refused whole, delivers nothing and
// takes nothing; an emergency part takes nothing; a batch with more
// counted parts than the limit's count is refused without Retry-After.
func TestLimitBatch(t *testing.T) {
	e := startLimitEdge(t, "store memory", "limit calls 3 per 1h")
	alice := caller{"tenant-1", "alice"}.header(t)
	part := func(path, body string) string {
		return batchPart(true, innerPOST(limitApp+path, "application/json", body))
	}
	call := part("/communication/startPhoneAudio", `{"to":"+14255551234"}`)
	emergency := part("/communication/startEmergencyCall", `{"to":"911"}`)
	person := part("/communication/startAudio", `{"to":"sip:john@contoso.com"}`)
	batch := func(parts ...string) testkit.Response {
		return e.send(testkit.Request{URL: limitApp + "/batch", ContentType: batchType, Accept: "multipart/batching",
			Header: alice.Clone(), Body: strings.Join(parts, "") + "--b--\r\n"})
	}
	steps := []struct {
		what    string
		parts   []string
		retry   int // for a refusal: the most Retry-After; -1 for delivered
		pooling int64
	}{
		{"two calls", []string{call, person, call}, -1, 1},
		{"two more, one fits", []string{call, call}, 1200, 1},
		{"one call and an emergency call", []string{emergency, call, emergency}, -1, 2},
		{"four calls, more than the limit", []string{call, call, call, call}, 0, 2},
		{"an emergency call alone", []string{emergency}, -1, 3},
	}
	for _, s := range steps {
		resp := batch(s.parts...)
		if s.retry >= 0 {
			assertLimited(t, resp, "calls", s.retry)
		} else if resp.Status != http.StatusCreated {
			t.Fatalf("%s: %d %s", s.what, resp.Status, resp.Body)
		}
		if got := e.pool.Requests.Load(); got != s.pooling {
			t.Fatalf("%s: the pool got %d batches, want %d", s.what, got, s.pooling)
		}
	}
}

// TestLimitTooLargeCountsEveryLimit: a batch larger than two limits can
// ever allow is refused naming the first, without Retry-After, and
// caddy_ucwa_limited_total counts it in both, as in every limit without
// room for a request.
func TestLimitTooLargeCountsEveryLimit(t *testing.T) {
	e := startLimitEdge(t, "store memory", "limit calls 1 per 1h", "limit tenant 2 per 1h key {http.ucwa.tid}", "limit roomy 10 per 1h")
	alice := caller{"tenant-1", "alice"}.header(t)
	call := batchPart(true, innerPOST(limitApp+"/communication/startPhoneAudio", "application/json", `{"to":"+14255551234"}`))
	resp := e.send(testkit.Request{URL: limitApp + "/batch", ContentType: batchType, Accept: "multipart/batching",
		Header: alice, Body: strings.Repeat(call, 3) + "--b--\r\n"})
	assertLimited(t, resp, "calls", 0)
	if got := e.pool.Requests.Load(); got != 0 {
		t.Fatalf("the pool got %d batches, want none", got)
	}
	for name, want := range map[string]float64{"calls": 1, "tenant": 1, "roomy": 0} {
		if got := e.Metric(`caddy_ucwa_limited_total{limit="` + name + `"}`); got != want {
			t.Errorf("caddy_ucwa_limited_total{limit=%q} = %v, want %v", name, got, want)
		}
	}
}

// TestLimitTwoEdges: two edges (Caddy processes) sharing one Redis share
// a limit's count: of 20 calls sent at once, 10 to each edge, exactly the
// limit's 5 are delivered; the caller's budget, shown spent on one
// edge's admin endpoint, is reset there, which lifts the limit on the
// other.
func TestLimitTwoEdges(t *testing.T) {
	const calls, count = 20, 5
	redisURL := testkit.StartRedis(t).URL()
	pool := testkit.NewUpstream(t)
	config := limitCaddyfile(t, pool, "store redis "+redisURL+" {\n\t\t\ttimeout 5s\n\t\t}", "limit calls "+strconv.Itoa(count)+" per 1h")
	edges := []*testkit.Process{testkit.StartCaddyProcess(t, "caddyfile", config), testkit.StartCaddyProcess(t, "caddyfile", config, testkit.WithAdmin())}
	alice := caller{"tenant-1", "alice"}.header(t)
	reqs := make([]testkit.Request, calls)
	for i := range reqs {
		reqs[i] = callTo("+14255551234", alice)
	}
	created := 0
	for _, resp := range sendAtOnce(t, edges, reqs) {
		if resp.Status == http.StatusCreated {
			created++
		} else {
			assertLimited(t, resp, "calls", 720)
		}
	}
	if created != count {
		t.Errorf("%d calls answered 201, want %d", created, count)
	}
	if got := pool.Requests.Load(); got != count {
		t.Errorf("the pool got %d requests, want %d", got, count)
	}

	// The second edge's admin endpoint shows the shared budget spent, and
	// a reset there makes it whole: the first edge delivers the caller's
	// calls again.
	show := testkit.Send(t, edges[1].Client(), testkit.Request{Method: http.MethodPost, URL: edges[1].AdminURL("/ucwa/limits/show"),
		ContentType: "application/json", Body: `{"limit":"calls","key":"tenant-1/alice"}`})
	var shown limitShowAnswer
	if show.Status != http.StatusOK || json.Unmarshal([]byte(show.Body), &shown) != nil || len(shown.Budgets) != 1 ||
		shown.Budgets[0].Count != count || shown.Budgets[0].Remaining != 0 || shown.Budgets[0].NextIn == "0s" {
		t.Fatalf("the show on the second edge: %d %s", show.Status, show.Body)
	}
	reset := testkit.Send(t, edges[1].Client(), testkit.Request{Method: http.MethodPost, URL: edges[1].AdminURL("/ucwa/limits/reset"),
		ContentType: "application/json", Body: `{"limit":"calls","key":"tenant-1/alice"}`})
	if reset.Status != http.StatusOK || reset.Body != `{"limit":"calls","budgets":1,"reset":1}`+"\n" {
		t.Fatalf("the reset on the second edge: %d %s", reset.Status, reset.Body)
	}
	req := callTo("+14255551234", alice)
	req.URL = edges[0].URL("EDGE_PORT", req.URL)
	if resp := testkit.Send(t, edges[0].Client(), req); resp.Status != http.StatusCreated {
		t.Fatalf("a call to the first edge after the reset on the second: %d %s", resp.Status, resp.Body)
	}
}

// TestLimitSharedAcrossReload: a config reload that keeps the store's
// data keeps the limits' counts, as the README says: the same config, a
// limit's count raised (a budget started afresh would take the call), its
// period lowered, or the store's settings changed where its keys stay
// (Redis's timeout, the memory store's max_entries). Both stores keep a
// bucket's time, not its tokens, and judge it by the new count and
// period alike: two calls of 2 per 1h leave the bucket full an hour from
// now, which 2 per 30m reads as 45 minutes over (a store that kept the
// bucket's empty tokens would answer the 15 minutes one takes to come
// back).
func TestLimitSharedAcrossReload(t *testing.T) {
	for _, st := range limitStores {
		for _, tc := range []struct {
			name string
			// reload makes the config loaded after the calls from the
			// first one.
			reload func(config string) string
			// most and least bound the Retry-After of the refusal
			// (least: above it; 0 for no bound).
			most, least int
		}{
			{"same config", func(c string) string { return c }, 1800, 0},
			{"count raised", func(c string) string {
				return strings.Replace(c, "limit calls 2 per 1h", "limit calls 3 per 1h", 1)
			}, 1200, 0},
			{"period lowered", func(c string) string {
				return strings.Replace(c, "limit calls 2 per 1h", "limit calls 2 per 30m", 1)
			}, 2700, 1800},
			{"store settings changed", func(c string) string {
				if st.name == "memory" {
					return strings.Replace(c, "store memory", "store memory 50000", 1)
				}
				return strings.Replace(c, "timeout 5s", "timeout 4s", 1)
			}, 1800, 0},
		} {
			t.Run(st.name+"/"+tc.name, func(t *testing.T) {
				pool := testkit.NewUpstream(t)
				config := limitCaddyfile(t, pool, st.config(t), "limit calls 2 per 1h")
				e := startEdge(t, "caddyfile", config)
				alice := caller{"tenant-1", "alice"}.header(t)
				for range 2 {
					if resp := e.send(callTo("+14255551234", alice)); resp.Status != http.StatusCreated {
						t.Fatalf("%d %s", resp.Status, resp.Body)
					}
				}
				reloaded := tc.reload(config)
				if reloaded == config && tc.name != "same config" {
					t.Fatal("the reload changes nothing")
				}
				e.Load("caddyfile", reloaded)
				resp := e.send(callTo("+14255551234", alice))
				assertLimited(t, resp, "calls", tc.most)
				if secs, _ := strconv.Atoi(resp.Header.Get("Retry-After")); secs <= tc.least {
					t.Errorf("Retry-After %q, want above %d", resp.Header.Get("Retry-After"), tc.least)
				}
				if got := pool.Requests.Load(); got != 2 {
					t.Errorf("the pool got %d requests, want 2", got)
				}
			})
		}
	}
}

// TestLimitStoreDown: while the store fails, on_error closed answers 503
// and delivers nothing; open delivers, uncounted.
func TestLimitStoreDown(t *testing.T) {
	for _, tc := range []struct {
		onError string
		status  int
		pooled  int64
	}{
		{onErrorClosed, http.StatusServiceUnavailable, 0},
		{onErrorOpen, http.StatusCreated, 3},
	} {
		t.Run(tc.onError, func(t *testing.T) {
			srv := testkit.StartRedis(t)
			e := startLimitEdge(t, "store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t\ton_error "+tc.onError+"\n\t\t}", "limit calls 1 per 1h")
			srv.Kill()
			alice := caller{"tenant-1", "alice"}.header(t)
			for range 3 {
				if resp := e.send(callTo("+14255551234", alice)); resp.Status != tc.status {
					t.Fatalf("%d %s, want %d", resp.Status, resp.Body, tc.status)
				}
			}
			if got := e.pool.Requests.Load(); got != tc.pooled {
				t.Errorf("the pool got %d requests, want %d", got, tc.pooled)
			}
			if got := e.Metric(`caddy_ucwa_store_errors_total{on_error="` + tc.onError + `"}`); got != 3 {
				t.Errorf("store errors %v, want 3", got)
			}
		})
	}
}

// TestLimitCaddyfileErrors: syntax errors of limit, each naming it.
func TestLimitCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ name, line, want string }{
		{"no arguments", "limit", "expected `limit <name> <count> per <duration>"},
		{"no per", "limit calls 20 1h", "expected `limit <name> <count> per <duration>"},
		{"count not a number", "limit calls many per 1h", `limit calls: "many" is not a whole number`},
		{"period not a duration", "limit calls 20 per hour", `limit calls: "hour" is not a duration`},
		{"key without a value", "limit calls 20 per 1h key", "expected `limit <name> <count> per <duration>"},
		{"key twice", "limit calls 20 per 1h key {a} key {b}", "limit calls: key given twice"},
		{"key empty", `limit tenant 500 per 1h key ""`, `limit tenant: key "" is read as not given, the default key (each verified caller): leave key out for it, or give a placeholder`},
		{"two classes", "limit calls 20 per 1h international forwarding", "limit calls: give at most one of international and forwarding"},
		{"unknown argument", "limit calls 20 per 1h domestic", `limit calls: "domestic" is none of key, international, forwarding`},
		{"two classes in capitals", "limit calls 20 per 1h International FORWARDING", "limit calls: give at most one of international and forwarding"},
		{"key twice in capitals", "limit calls 20 per 1h KEY {a} key {b}", "limit calls: key given twice"},
		{"a block", "limit calls 20 per 1h {\n key {a}\n}", "limit calls: takes no block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("ucwa {\n" + tc.line + "\n}"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestLimitStartupErrors: limit values that cannot work stop startup,
// from a Caddyfile and from JSON alike, with one message.
func TestLimitStartupErrors(t *testing.T) {
	t.Setenv("UCWA_TEST_UNSET_VARIABLE", "")
	for _, tc := range []struct {
		name      string
		caddyfile string // the ucwa block's lines after `jwt off`; "" for a JSON-only case
		json      string // the handler's fields after jwt; "" for a Caddyfile-only case
		want      string
	}{
		{"count 0", "limit calls 0 per 1h", `"limits":[{"name":"calls","count":0,"per":3600000000000}]`, "limit calls: count must be at least 1: 0"},
		{"negative count", "limit calls -1 per 1h", `"limits":[{"name":"calls","count":-1,"per":3600000000000}]`, "limit calls: count must be at least 1: -1"},
		{"period 0", "limit calls 20 per 0s", `"limits":[{"name":"calls","count":20}]`, "limit calls: per must be a duration above 0: 0s"},
		// A period of a nanosecond per event panicked the memory store
		// (a zero interval) at the first request.
		{"period under a second", "limit calls 2 per 1ns", `"limits":[{"name":"calls","count":2,"per":1}]`, "limit calls: per must be at least 1s: 1ns"},
		{"more than one a microsecond", "limit calls 2000000 per 1s", `"limits":[{"name":"calls","count":2000000,"per":"1s"}]`,
			"limit calls: count 2000000 per 1s is more than one event a microsecond"},
		{"period over a century", "limit calls 20 per 1000000h", `"limits":[{"name":"calls","count":20,"per":"1000000h"}]`, "limit calls: per must be at most 876000h0m0s: 1000000h0m0s"},
		{"negative period", "limit calls 20 per -1h", `"limits":[{"name":"calls","count":20,"per":"-1h"}]`, "limit calls: per must be a duration above 0: -1h0m0s"},
		{"name twice", "limit calls 20 per 1h\nlimit calls 5 per 1m", `"limits":[{"name":"calls","count":20,"per":"1h"},{"name":"calls","count":5,"per":"1m"}]`, "limit calls: name given twice"},
		{"name twice in another letter case", "limit calls 20 per 1h\nlimit Calls 5 per 1m", `"limits":[{"name":"calls","count":20,"per":"1h"},{"name":"Calls","count":5,"per":"1m"}]`, `limit Calls: name given twice, as "calls" too`},
		{"bad name", `limit "a b" 20 per 1h`, `"limits":[{"name":"a b","count":20,"per":"1h"}]`, `limits[0]: name "a b" must be letters, digits`},
		{"no name", "", `"limits":[{"count":20,"per":"1h"}]`, `limits[0]: name "" must be letters, digits`},
		{"null limit", "", `"limits":[null]`, "limits[0]: missing"},
		{"bad applies_to", "", `"limits":[{"name":"calls","count":20,"per":"1h","applies_to":"domestic"}]`, `limit calls: applies_to: "domestic" is neither international nor forwarding`},
		// A misspelt placeholder of the edge's own would expand to nothing
		// and count every caller by address, without a word.
		{"key of an unknown claim", "limit tenant 20 per 1h key {http.ucwa.tenant_id}", `"limits":[{"name":"tenant","count":20,"per":"1h","key":"{http.ucwa.tenant_id}"}]`,
			"limit tenant: key: {http.ucwa.tenant_id} is not a placeholder of the edge (http.ucwa.sub, http.ucwa.oid, http.ucwa.tid, http.ucwa.client_id, http.ucwa.scopes, http.ucwa.caller, http.ucwa.iss, http.ucwa.tenant, http.ucwa.tenant_caller)"},
		{"key of a misspelt claim among others", "limit tenant 20 per 1h key {http.ucwa.tid}/{http.ucwa.clientid}", "",
			"limit tenant: key: {http.ucwa.clientid} is not a placeholder of the edge"},
		{"key of the pool", "limit tenant 20 per 1h key {http.ucwa.pool}", "",
			"limit tenant: key: {http.ucwa.pool} is set only once a pool takes the request, after the limits"},
		// A placeholder left open is the key's text, one budget for every
		// caller; a doubled brace or {} expands to nothing, and the limit
		// would count callers by address.
		{"key of an unclosed placeholder", "limit tenant 20 per 1h key {http.ucwa.tid", `"limits":[{"name":"tenant","count":20,"per":"1h","key":"{http.ucwa.tid"}]`,
			`limit tenant: key: "{http.ucwa.tid" is not closed (a literal brace is written \{)`},
		{"key of an unclosed placeholder after another", "", `"limits":[{"name":"tenant","count":20,"per":"1h","key":"{http.ucwa.tid}/{http.ucwa.oid"}]`,
			`limit tenant: key: "{http.ucwa.oid" is not closed (a literal brace is written \{)`},
		{"key of doubled braces", "limit tenant 20 per 1h key {{http.ucwa.tid}}", `"limits":[{"name":"tenant","count":20,"per":"1h","key":"{{http.ucwa.tid}}"}]`,
			`limit tenant: key: "{{http.ucwa.tid}" is not a placeholder (a literal brace is written \{)`},
		{"key of empty braces", "", `"limits":[{"name":"tenant","count":20,"per":"1h","key":"x{}"}]`,
			`limit tenant: key: "{}" is not a placeholder (a literal brace is written \{)`},
		// An unset variable expands to nothing at every request, as it
		// does in the jwt settings, where it stops startup: the limit
		// would count every caller by address instead.
		{"key of an unset variable", "limit site 20 per 1h key {env.UCWA_TEST_UNSET_VARIABLE}", `"limits":[{"name":"site","count":20,"per":"1h","key":"{env.UCWA_TEST_UNSET_VARIABLE}"}]`,
			"limit site: key: {env.UCWA_TEST_UNSET_VARIABLE} is empty at startup (an unset variable)"},
		// Written for the class, the word is the key's text: one budget
		// for every request, of every class.
		{"key of the international class's word", "limit calls 20 per 1h key international", `"limits":[{"name":"calls","count":20,"per":"1h","key":"international"}]`,
			`limit calls: key "international" is a class, not a placeholder: a key of text is one budget for every request; give the class after the key (key {http.ucwa.tid} international)`},
		{"key of the forwarding class's word", "limit calls 20 per 1h key Forwarding forwarding", "",
			`limit calls: key "Forwarding" is a class, not a placeholder`},
		// A placeholder's name without its braces is the key's text too:
		// one budget for every caller, where one per tenant was meant.
		{"key of a claim's name", "limit tenant 500 per 1h key tid", `"limits":[{"name":"tenant","count":500,"per":"1h","key":"tid"}]`,
			`limit tenant: key "tid" is a placeholder's name without its braces: a key of text is one budget for every request; write {http.ucwa.tid}, or name one budget for all otherwise (key global)`},
		{"key of a claim's name in capitals", "limit calls 20 per 1h key OID", "",
			`limit calls: key "OID" is a placeholder's name without its braces: a key of text is one budget for every request; write {http.ucwa.oid}`},
		{"key of the default's name", "limit calls 20 per 1h key tenant_caller", "",
			`limit calls: key "tenant_caller" is a placeholder's name without its braces: a key of text is one budget for every request; write {http.ucwa.tenant_caller}`},
		{"key of a placeholder's full name", "limit tenant 500 per 1h key http.ucwa.tid", `"limits":[{"name":"tenant","count":500,"per":"1h","key":"http.ucwa.tid"}]`,
			`limit tenant: key "http.ucwa.tid" is a placeholder's name without its braces: a key of text is one budget for every request; write {http.ucwa.tid}`},
		{"key of a header placeholder's name", "limit tenant 500 per 1h key http.request.header.X-Tenant", "",
			`limit tenant: key "http.request.header.X-Tenant" is a placeholder's name without its braces: a key of text is one budget for every request; write {http.request.header.X-Tenant}`},
		{"key of an unset variable among others", "limit site 20 per 1h key {http.ucwa.tid}/{env.UCWA_TEST_UNSET_VARIABLE}", "",
			"limit site: key: {env.UCWA_TEST_UNSET_VARIABLE} is empty at startup (an unset variable)"},
		// Placeholder names are case-sensitive: one written in another
		// case expands to nothing, and the limit counted every caller by
		// address, with only a warning a minute. The message names the
		// spelling to write; a namespaced name keeps its rest as written.
		{"key of the edge's placeholder in capitals", "limit tenant 500 per 1h key {HTTP.ucwa.tid}", `"limits":[{"name":"tenant","count":500,"per":"1h","key":"{HTTP.ucwa.tid}"}]`,
			"limit tenant: key: {HTTP.ucwa.tid} expands to nothing at every request, and the limit would count callers by their address (placeholder names are case-sensitive): write {http.ucwa.tid}"},
		{"key of a claim in capitals", "limit tenant 500 per 1h key {http.ucwa.TID}", `"limits":[{"name":"tenant","count":500,"per":"1h","key":"{http.ucwa.TID}"}]`,
			"limit tenant: key: {http.ucwa.TID} expands to nothing at every request, and the limit would count callers by their address (placeholder names are case-sensitive): write {http.ucwa.tid}"},
		{"key of the user id in title case", "limit user 20 per 1h key {Http.Auth.User.Id}", `"limits":[{"name":"user","count":20,"per":"1h","key":"{Http.Auth.User.Id}"}]`,
			"limit user: key: {Http.Auth.User.Id} expands to nothing at every request, and the limit would count callers by their address (placeholder names are case-sensitive): write {http.auth.user.id}"},
		{"key of Caddy's placeholder in capitals", "limit host 20 per 1h key {HTTP.REQUEST.HOST}", "",
			"limit host: key: {HTTP.REQUEST.HOST} expands to nothing at every request, and the limit would count callers by their address (placeholder names are case-sensitive): write {http.request.host}"},
		{"key of a header in title case", "limit tenant 500 per 1h key {Http.Request.Header.X-Tenant}", `"limits":[{"name":"tenant","count":500,"per":"1h","key":"{Http.Request.Header.X-Tenant}"}]`,
			"limit tenant: key: {Http.Request.Header.X-Tenant} expands to nothing at every request, and the limit would count callers by their address (placeholder names are case-sensitive): write {http.request.header.X-Tenant}"},
		{"key of a variable in capitals", "limit site 20 per 1h key {ENV.UCWA_TEST_SITE}", `"limits":[{"name":"site","count":20,"per":"1h","key":"{ENV.UCWA_TEST_SITE}"}]`,
			"limit site: key: {ENV.UCWA_TEST_SITE} expands to nothing at every request, and the limit would count callers by their address (placeholder names are case-sensitive): write {env.UCWA_TEST_SITE}"},
		{"key of a misspelt placeholder among others", "limit tenant 500 per 1h key {http.ucwa.tid}/{Http.Ucwa.Oid}", "",
			"limit tenant: key: {Http.Ucwa.Oid} expands to nothing at every request"},
		{"key of a claim's short name", "limit tenant 500 per 1h key {tid}", `"limits":[{"name":"tenant","count":500,"per":"1h","key":"{tid}"}]`,
			"limit tenant: key: {tid} expands to nothing at every request, and the limit would count callers by their address (the edge's placeholders are named http.ucwa.*): write {http.ucwa.tid}"},
		// A Caddyfile shorthand is expanded by the Caddyfile's adapter
		// alone, and only in lower case.
		{"key of a shorthand in capitals", "limit tenant 500 per 1h key {Header.X-Tenant}", `"limits":[{"name":"tenant","count":500,"per":"1h","key":"{header.X-Tenant}"}]`,
			"is a shorthand of the Caddyfile, which expands it only in lower case, and JSON not at all): write {http.request.header.X-Tenant}"},
		{"key of a shorthand in JSON", "", `"limits":[{"name":"calls","count":20,"per":"1h","key":"{remote_host}"}]`,
			"limit calls: key: {remote_host} expands to nothing at every request, and the limit would count callers by their address ({remote_host} is a shorthand of the Caddyfile, which expands it only in lower case, and JSON not at all): write {http.request.remote.host}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			configs := map[string][2]string{}
			if tc.caddyfile != "" {
				configs["Caddyfile"] = [2]string{"caddyfile", "127.0.0.1:0 {\n\tucwa {\n\t\tjwt off\n" + tc.caddyfile + "\n\t}\n}\n"}
			}
			if tc.json != "" {
				configs["JSON"] = [2]string{"json", handlerJSON(`"jwt":{"off":true},` + tc.json)}
			}
			for source, cfg := range configs {
				err := testkit.Validate(t, cfg[0], cfg[1])
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: error %v, want one containing %q", source, err, tc.want)
				}
			}
		})
	}
	// What Caddy resolves as written stays a key: a header's or a
	// cookie's name in any case (Caddy reads them so), the rest of a
	// namespaced name as written (a query parameter, a variable a
	// handler may set, a variable of the environment), and the
	// Caddyfile's shorthands, which its adapter expands.
	t.Run("good keys validate", func(t *testing.T) {
		t.Setenv("UCWA_TEST_SITE", "west")
		for _, key := range []string{
			"{http.request.header.x-tenant}", "{http.request.header.X-TENANT}", "{http.request.cookie.Tenant}",
			"{http.request.uri.query.Tenant}", "{http.request.tls.Client.Subject}", "{http.vars.Client_IP}",
			"{http.auth.user.Role}", "{env.UCWA_TEST_SITE}", "{http.request.remote.host/24}",
			"{http.ucwa.tid}/{http.ucwa.oid}", "{http.request.host.labels.0}", "{client_ip}", "{header.X-Tenant}",
		} {
			config := "127.0.0.1:0 {\n\tucwa {\n\t\tjwt off\n\t\tlimit calls 20 per 1h key " + key + "\n\t}\n}\n"
			if err := testkit.Validate(t, "caddyfile", config); err != nil {
				t.Errorf("key %s: %v", key, err)
			}
		}
	})
}

// TestLimitKeyFallback: a key that expands to "" (jwt off: no caller)
// takes from the client address's budget; the store keys hold the
// SHA-256 of the expanded key, never the key.
func TestLimitKeyFallback(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		jwt off
		default_region US
		limit calls 1 per 1h
		limit tenant 1 per 1h key {http.request.header.X-Tenant}
		primary %s
	}
}`, pool.Addr()))
	tenant := func(name string) http.Header { return http.Header{"X-Tenant": {name}} }
	if resp := e.send(callTo("+14255551234", tenant("a"))); resp.Status != http.StatusCreated {
		t.Fatalf("first call: %d %s", resp.Status, resp.Body)
	}
	// Another tenant, but the same address: the calls limit counts the
	// address, as no caller is verified.
	assertLimited(t, e.send(callTo("+14255551234", tenant("b"))), "calls", 3600)

	l := limit{key: "{http.request.header.X-Tenant}", storePrefix: "limit:tenant:"}
	req, _ := http.NewRequest(http.MethodPost, "http://edge/", nil)
	req.RemoteAddr = "192.0.2.1:1234"
	req.Header.Set("X-Tenant", "contoso")
	repl := caddyhttp.NewTestReplacer(req)
	k := l.storeKey(repl, req, nil)
	if !strings.HasPrefix(k, "limit:tenant:") || strings.Contains(k, "contoso") || len(k) != len("limit:tenant:")+43 {
		t.Errorf("store key %q", k)
	}
	req.Header.Del("X-Tenant")
	if k2 := l.storeKey(repl, req, nil); k2 == k || strings.Contains(k2, "192.0.2.1") {
		t.Errorf("store key without a tenant %q", k2)
	}
}

// TestLimitKeyAddressApart: the budget of a client's address, which a
// key that expands to "" takes from, is not the budget of a key that
// expands to the same text: a client that sets the key's header to
// another client's address does not spend that client's budget.
func TestLimitKeyAddressApart(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		jwt off
		default_region US
		limit tenant 1 per 1h key {http.request.header.X-Tenant}
		primary %s
	}
}`, pool.Addr()))
	if resp := e.send(callTo("+14255551234", http.Header{"X-Tenant": {"127.0.0.1"}})); resp.Status != http.StatusCreated {
		t.Fatalf("a tenant named as the address: %d %s", resp.Status, resp.Body)
	}
	if resp := e.send(callTo("+14255551234", nil)); resp.Status != http.StatusCreated {
		t.Fatalf("no tenant, the address's budget: %d %s", resp.Status, resp.Body)
	}
	assertLimited(t, e.send(callTo("+14255551234", nil)), "tenant", 3600)
}

// BenchmarkLimits measures the handler in-process (jwt off, so the key is
// the client's address; the JSON seed) without limits, with one and with
// three on the memory store, and with one on Redis (a redis-server
// started for the benchmark); every request is allowed. The differences
// are what the limit checks cost.
//
//	go test -run '^$' -bench BenchmarkLimits -benchmem ./caddymodule/
func BenchmarkLimits(b *testing.B) {
	ctx := benchContext(b)
	base := `"jwt":{"off":true},"default_region":"US"`
	const one = `{"name":"calls","count":1000000000,"per":"876000h"}`
	const three = one + `,{"name":"international","count":1000000000,"per":"876000h","applies_to":"international"},` +
		`{"name":"tenant","count":1000000000,"per":"876000h","key":"{http.request.header.X-Tenant}"}`
	variants := []struct{ name, fields string }{
		{"off", base},
		{"memory/one", base + `,"limits":[` + one + `]`},
		{"memory/three", base + `,"limits":[` + three + `]`},
	}
	if _, err := exec.LookPath("redis-server"); err == nil {
		variants = append(variants, struct{ name, fields string }{"redis/one",
			base + `,"limits":[` + one + `],"store":{"backend":"redis","url":"` + testkit.StartRedis(b).URL() + `","timeout":"1s"}`})
		// A cluster's limits' scripts carry a ran marker each.
		variants = append(variants, struct{ name, fields string }{"redis-cluster/one",
			base + `,"limits":[` + one + `],"store":{"backend":"redis","url":"` +
				testkit.StartRedisWith(b, testkit.RedisConfig{Cluster: true}).URL() + `","cluster":true,"timeout":"1s"}`})
	}
	server := new(caddyhttp.Server)
	for _, v := range variants {
		h := provision(b, ctx, new(Handler), `{`+v.fields+`}`)
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, startPath, strings.NewReader(seedJSON))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Tenant", "contoso")
				w := httptest.NewRecorder()
				req = caddyhttp.PrepareRequest(req, caddy.NewReplacer(), w, server)
				if err := h.ServeHTTP(w, req, poolStandIn); err != nil || w.Code != http.StatusCreated {
					b.Fatalf("status %d, error %v: %s", w.Code, err, w.Body)
				}
			}
		})
	}
}

// TestEmergencyCallStoreDown: nothing the edge adds refuses an emergency
// call, not even a store that does not answer with on_error closed, for
// idempotency or a limit: the emergency call, and a call-via-work to 911
// with a callback number, are delivered, while another call is answered
// 503.
func TestEmergencyCallStoreDown(t *testing.T) {
	srv := testkit.StartRedis(t)
	e := startLimitEdge(t, "store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t\ton_error closed\n\t\t}", "idempotency", "limit calls 1 per 1h")
	alice := caller{"tenant-1", "alice"}.header(t)
	srv.Kill()
	for i, tc := range []struct {
		what   string
		req    testkit.Request
		status int
	}{
		{"the emergency call", limitRequest("/communication/startEmergencyCall", `{"to":"911","operationId":"e-1"}`, alice), http.StatusCreated},
		{"a call-via-work to 911", limitRequest("/communication/startPhoneAudio", `{"to":"911","phoneNumber":"+33142685300","operationId":"e-2"}`, alice), http.StatusCreated},
		{"another call", limitRequest("/communication/startPhoneAudio", `{"to":"+14255551234","operationId":"e-3"}`, alice), http.StatusServiceUnavailable},
		{"another call without an operationId", callTo("+14255551234", alice), http.StatusServiceUnavailable},
	} {
		before := e.pool.Requests.Load()
		resp := e.send(tc.req)
		delivered := e.pool.Requests.Load() - before
		if resp.Status != tc.status || delivered != map[bool]int64{true: 1, false: 0}[tc.status == http.StatusCreated] {
			t.Errorf("%d. %s with the store down: %d %s, delivered %d times", i+1, tc.what, resp.Status, resp.Body, delivered)
		}
	}
}

// TestLimitDefaultKey: the default key is the verified caller as
// idempotency knows it, the token's oid, else its sub: Entra ID gives a
// user a sub for each client application and one oid, so two client
// applications of one user share a budget, and a token without oid has
// its sub's.
func TestLimitDefaultKey(t *testing.T) {
	e := startLimitEdge(t, "store memory", "limit calls 1 per 1h")
	token := func(claims jwt.MapClaims) http.Header {
		claims["tid"], claims["scp"] = "tenant-1", "Conversations.Initiate"
		return http.Header{"Authorization": {"Bearer " + testkit.Mint(t, jwt.SigningMethodES256, testkit.Keys(t).EC, "", testkit.Claims(time.Now(), claims))}}
	}
	for i, tc := range []struct {
		what   string
		header http.Header
		status int
	}{
		{"a user's call from one client application", token(jwt.MapClaims{"oid": "oid-1", "sub": "pairwise-app-1"}), http.StatusCreated},
		{"the user's call from another", token(jwt.MapClaims{"oid": "oid-1", "sub": "pairwise-app-2"}), http.StatusTooManyRequests},
		{"a caller without oid", token(jwt.MapClaims{"sub": "pairwise-app-1"}), http.StatusCreated},
		{"the same again", token(jwt.MapClaims{"sub": "pairwise-app-1"}), http.StatusTooManyRequests},
	} {
		if resp := e.send(callTo("+14255551234", tc.header)); resp.Status != tc.status {
			t.Errorf("%d. %s: %d %s, want %d", i+1, tc.what, resp.Status, resp.Body, tc.status)
		}
	}
}

// TestLimitCallersOwnPhone: call-via-work rings the caller's own phone
// over the trunks, the number the request gives or, without one, the
// number the pool keeps (makeMeAvailable, PUT communication): each such
// request takes an event, whatever its to, so that a caller over its
// limit cannot ring a kept number by leaving phoneNumber out; so does a
// continue request, which calls back a conversation log's party the
// request does not name. An audio call to a person rings no phone and
// takes none.
func TestLimitCallersOwnPhone(t *testing.T) {
	const conversation = "/communication/conversations/c1"
	for _, tc := range []struct {
		what    string
		path    string
		body    string
		limited bool
	}{
		{"startPhoneAudio to a person, no phoneNumber", "/communication/startPhoneAudio", `{"to":"sip:john@contoso.com"}`, true},
		{"startPhoneAudioOnBehalfOfDelegator to a person", "/communication/startPhoneAudioOnBehalfOfDelegator", `{"to":"sip:john@contoso.com","delegator":"sip:boss@contoso.com"}`, true},
		{"addPhoneAudio to a person", conversation + "/phoneAudio/addPhoneAudio", `{"to":"sip:john@contoso.com"}`, true},
		{"replaceWithPhoneAudio to a person", conversation + "/audioVideo/replaceWithPhoneAudio", `{"to":"sip:john@contoso.com"}`, true},
		{"continuePhoneAudio, no phoneNumber", "/communication/conversationLogs/l1/continuePhoneAudio", `{"operationId":"x"}`, true},
		{"acceptWithPhoneAudio", "/communication/invitations/i1/acceptWithPhoneAudio", "", true},
		{"continueAudio, a conversation log's party", "/communication/conversationLogs/l1/continueAudio", `{"operationId":"x"}`, true},
		{"continueAudioVideo, a conversation log's party", "/communication/conversationLogs/l1/continueAudioVideo", `{"operationId":"x"}`, true},
		{"continueVideo, a conversation log's party", "/communication/conversationLogs/l1/continueVideo", `{"operationId":"x"}`, true},
		{"startAudio to a person", "/communication/startAudio", `{"to":"sip:john@contoso.com"}`, false},
	} {
		t.Run(tc.what, func(t *testing.T) {
			e := startLimitEdge(t, "store memory", "limit calls 1 per 1h")
			alice := caller{"tenant-1", "alice"}.header(t)
			req := limitRequest(tc.path, tc.body, alice)
			req.Method = http.MethodPost
			if tc.body == "" {
				req.ContentType = ""
			}
			for i := range 2 {
				resp := e.send(req)
				if i == 1 && tc.limited {
					assertLimited(t, resp, "calls", 3600)
					break
				}
				if resp.Status != http.StatusCreated {
					t.Fatalf("request %d: %d %s", i+1, resp.Status, resp.Body)
				}
			}
			want := int64(2)
			if tc.limited {
				want = 1
			}
			if got := e.pool.Requests.Load(); got != want {
				t.Errorf("the pool got %d requests, want %d", got, want)
			}
		})
	}
}

// TestLimitEmergencySIPHost: an emergency number in a SIP URI makes a
// request an emergency call, which no limit refuses, only at a host
// sip_domains lists: the host decides where the pool sends the call, and
// at any other (or with no sip_domains to say which are the site's own)
// the call need reach no emergency service, so a caller over its limits
// rang a callback number at will with to sip:911@anywhere;user=phone,
// and no emergency service heard of it. tel:911 stays an emergency call.
// So does a telephone user of an outside-line prefix and 911.
func TestLimitEmergencySIPHost(t *testing.T) {
	callback := func(to string, h http.Header) testkit.Request {
		return limitRequest("/communication/startPhoneAudio", `{"to":"`+to+`","phoneNumber":"+33142685300"}`, h)
	}
	for _, tc := range []struct {
		what, destinations, to string
		status                 int
	}{
		{"no destination policy, a foreign host", "", "sip:911@evil.example;user=phone", http.StatusTooManyRequests},
		{"no sip_domains, a foreign host", "destinations", "sip:911@evil.example;user=phone", http.StatusTooManyRequests},
		{"no sip_domains, the site's host", "destinations", "sip:911@contoso.com;user=phone", http.StatusTooManyRequests},
		{"a listed host", "destinations {\n\t\t\tsip_domains contoso.com\n\t\t}", "sip:911@contoso.com;user=phone", http.StatusCreated},
		// The outside-line digit and 911, as a telephone user dials it
		// (EmergencyDialMask): an emergency number as tel:9911 is.
		{"an outside line, a listed host", "destinations {\n\t\t\tsip_domains contoso.com\n\t\t\toutside_line 9\n\t\t}", "sip:9911@contoso.com;user=phone", http.StatusCreated},
		{"an outside line, no sip_domains", "destinations {\n\t\t\toutside_line 9\n\t\t}", "sip:9911@contoso.com;user=phone", http.StatusTooManyRequests},
		{"no destination policy, tel:911", "", "tel:911", http.StatusCreated},
		{"no sip_domains, 911", "destinations", "911", http.StatusCreated},
	} {
		t.Run(tc.what, func(t *testing.T) {
			e := startLimitEdge(t, "store memory", tc.destinations, "limit calls 1 per 1h")
			alice := caller{"tenant-1", "alice"}.header(t)
			if resp := e.send(callTo("+14255551234", alice)); resp.Status != http.StatusCreated {
				t.Fatalf("first call: %d %s", resp.Status, resp.Body)
			}
			resp := e.send(callback(tc.to, alice))
			if tc.status == http.StatusTooManyRequests {
				assertLimited(t, resp, "calls", 3600)
			} else if resp.Status != tc.status {
				t.Fatalf("%d %s, want %d", resp.Status, resp.Body, tc.status)
			}
			want := int64(1)
			if tc.status == http.StatusCreated {
				want = 2
			}
			if got := e.pool.Requests.Load(); got != want {
				t.Errorf("the pool got %d requests, want %d", got, want)
			}
		})
	}
}

// TestLimitKeyAllEmpty: a key of several placeholders that all expand to
// nothing (jwt off: no tid, no oid) takes from the client address's
// budget, as a key of one placeholder does: it expanded to "/", one
// budget for every client without those claims, which one client spent
// for all. A key of which a placeholder expands to something is that
// key.
func TestLimitKeyAllEmpty(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`{
	servers {
		trusted_proxies static 127.0.0.1/32
	}
}

:EDGE_PORT {
	ucwa {
		jwt off
		default_region US
		limit user 1 per 1h key {http.ucwa.tid}/{http.ucwa.oid}
		limit tenant 1 per 1h key {http.request.header.X-Tenant}/{http.request.header.X-User}
		primary %s
	}
}`, pool.Addr()))
	from := func(ip string, more ...string) http.Header {
		h := http.Header{"X-Forwarded-For": {ip}}
		for i := 0; i+1 < len(more); i += 2 {
			h.Set(more[i], more[i+1])
		}
		return h
	}
	for i, tc := range []struct {
		what    string
		header  http.Header
		limited string
	}{
		{"a client", from("192.0.2.1"), ""},
		{"another client, without the claims either", from("192.0.2.2"), ""},
		{"the first again", from("192.0.2.1"), "user"},
		{"a third client of a tenant", from("192.0.2.3", "X-Tenant", "t1"), ""},
		{"a fourth of the same tenant", from("192.0.2.4", "X-Tenant", "t1"), "tenant"},
	} {
		resp := e.send(callTo("+14255551234", tc.header))
		if tc.limited != "" {
			assertLimited(t, resp, tc.limited, 3600)
		} else if resp.Status != http.StatusCreated {
			t.Errorf("%d. %s: %d %s, want 201", i+1, tc.what, resp.Status, resp.Body)
		}
	}
	if got := pool.Requests.Load(); got != 3 {
		t.Errorf("the pool got %d requests, want 3", got)
	}
}

// TestClientAddressIPv6Network: a client without a verified caller is
// its address's /64 when it comes over IPv6, for the limits' budget of
// the client address and for its share of the memory store: a host is
// given a /64 of its own, and takes a new address of it for each request
// at no cost, which made each request a new budget and a new share.
func TestClientAddressIPv6Network(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`{
	servers {
		trusted_proxies static 127.0.0.1/32
	}
}

:EDGE_PORT {
	ucwa {
		jwt off
		default_region US
		store memory 100 {
			max_entries_per_caller 2
		}
		idempotency
		limit calls 3 per 1h key {http.ucwa.tid}/{http.ucwa.oid}
		primary %s
	}
}`, pool.Addr()))
	from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
	call := func(ip, op string) testkit.Response {
		t.Helper()
		return e.send(limitRequest("/communication/startPhoneAudio", `{"to":"+14255551234","operationId":"`+op+`"}`, from(ip)))
	}
	for i, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2:aaaa::2"} {
		if resp := call(ip, "op-"+strconv.Itoa(i)); resp.Status != http.StatusCreated {
			t.Fatalf("%d. from %s: %d %s, want 201", i+1, ip, resp.Status, resp.Body)
		}
	}
	// Its share of the store: 2 reservations, held by the first two.
	resp := call("2001:db8:1:2::3", "op-9")
	assertUCWAError(t, resp, "TooManyRequests", "", nil, false)
	if resp.Status != http.StatusTooManyRequests {
		t.Fatalf("a third operationId from the same /64: %d %s, want 429", resp.Status, resp.Body)
	}
	// Its budget of 3: one more request, from yet another address of it.
	if resp := e.send(callTo("+14255551234", from("2001:db8:1:2::4"))); resp.Status != http.StatusCreated {
		t.Fatalf("a third call from the same /64: %d %s, want 201", resp.Status, resp.Body)
	}
	assertLimited(t, e.send(callTo("+14255551234", from("2001:db8:1:2::5"))), "calls", 3600)
	// Another /64 and an IPv4 client go on.
	for _, ip := range []string{"2001:db8:1:3::1", "192.0.2.1"} {
		if resp := call(ip, "other-"+ip); resp.Status != http.StatusCreated {
			t.Fatalf("from %s: %d %s, want 201", ip, resp.Status, resp.Body)
		}
	}
	if got := pool.Requests.Load(); got != 5 {
		t.Errorf("the pool got %d requests, want 5", got)
	}
}

// TestLimitNoPoolRefunds: a request the limits allowed that certainly
// reached no pool (410 CannotRedirect with the primary down and no
// backup, 503 with both pools down) gives its events back, in both
// stores, with and without idempotency, a batch all its parts' events,
// an emergency call those it took from the budgets that had room: the caller still calls once the
// pool is up, as many times as the limit allows and no more. One that
// may have reached a pool (the edge's 502 and 504) keeps them.
func TestLimitNoPoolRefunds(t *testing.T) {
	for _, st := range limitStores {
		for _, idem := range []string{"", "idempotency"} {
			name := st.name
			if idem != "" {
				name += "/idempotency"
			}
			t.Run(name, func(t *testing.T) {
				storeConfig := st.config(t)
				ops := 0
				// A caller of its own for each case: the Redis store
				// is the same for all.
				send := func(e edge, operation, to string) testkit.Response {
					e.t.Helper()
					ops++
					return e.send(limitRequest("/communication/"+operation,
						`{"to":"`+to+`","operationId":"op-`+strconv.Itoa(ops)+`"}`, caller{"tenant-1", e.t.Name()}.header(t)))
				}
				call := func(e edge) testkit.Response { return send(e, "startPhoneAudio", "+14255551234") }
				// An emergency call of startEmergencyCall's default
				// (emergency_calls any) to a number abroad.
				emergencyCall := func(e edge) testkit.Response { return send(e, "startEmergencyCall", "+442071234567") }
				start := func(t *testing.T, pools ...string) edge {
					return startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		default_region US
		%s
		%s
		%s
		limit calls 2 per 1h
		%s
	}
}`, idemAuth(t), storeConfig, idem, strings.Join(pools, "\n\t\t")))
				}
				t.Run("410 CannotRedirect", func(t *testing.T) {
					primary := testkit.NewUpstream(t)
					primary.Kill()
					e := start(t, "primary "+primary.Addr())
					for range 3 {
						if resp := call(e); resp.Status != http.StatusGone {
							t.Fatalf("%d %s, want 410", resp.Status, resp.Body)
						}
					}
					primary.Restart(t)
					for range 2 {
						if resp := call(e); resp.Status != http.StatusCreated {
							t.Fatalf("once the pool is up: %d %s, want 201", resp.Status, resp.Body)
						}
					}
					assertLimited(t, call(e), "calls", 1800)
				})
				t.Run("503 no pool", func(t *testing.T) {
					primary, backup := testkit.NewUpstream(t), testkit.NewUpstream(t)
					primary.Kill()
					backup.Kill()
					e := start(t, "primary "+primary.Addr(), "backup "+backup.Addr())
					for range 3 {
						if resp := call(e); resp.Status != http.StatusServiceUnavailable {
							t.Fatalf("%d %s, want 503", resp.Status, resp.Body)
						}
					}
					backup.Restart(t)
					for range 2 {
						if resp := call(e); resp.Status != http.StatusCreated {
							t.Fatalf("once the backup is up: %d %s, want 201", resp.Status, resp.Body)
						}
					}
					assertLimited(t, call(e), "calls", 1800)
					if got := primary.Requests.Load() + backup.Requests.Load(); got != 2 {
						t.Errorf("the pools got %d requests, want 2", got)
					}
				})
				t.Run("a batch's events", func(t *testing.T) {
					primary := testkit.NewUpstream(t)
					primary.Kill()
					e := start(t, "primary "+primary.Addr())
					batch := func() testkit.Response {
						var parts strings.Builder
						for range 2 {
							ops++
							parts.WriteString(batchPart(true, innerPOST(limitApp+"/communication/startPhoneAudio", "application/json",
								`{"to":"+14255551234","operationId":"op-`+strconv.Itoa(ops)+`"}`)))
						}
						return e.send(testkit.Request{URL: limitApp + "/batch", ContentType: batchType, Accept: "multipart/batching",
							Header: caller{"tenant-1", t.Name()}.header(t), Body: parts.String() + "--b--\r\n"})
					}
					for range 2 {
						if resp := batch(); resp.Status != http.StatusGone {
							t.Fatalf("%d %s, want 410", resp.Status, resp.Body)
						}
					}
					primary.Restart(t)
					if resp := batch(); resp.Status != http.StatusCreated {
						t.Fatalf("once the pool is up: %d %s, want 201", resp.Status, resp.Body)
					}
					assertLimited(t, call(e), "calls", 1800)
				})
				// An emergency call is never refused, but takes from the
				// budgets that have room for its other numbers.
				t.Run("an emergency call's events", func(t *testing.T) {
					primary := testkit.NewUpstream(t)
					primary.Kill()
					e := start(t, "primary "+primary.Addr())
					for range 2 {
						if resp := emergencyCall(e); resp.Status != http.StatusGone {
							t.Fatalf("%d %s, want 410", resp.Status, resp.Body)
						}
					}
					primary.Restart(t)
					for range 2 {
						if resp := call(e); resp.Status != http.StatusCreated {
							t.Fatalf("once the pool is up: %d %s, want 201", resp.Status, resp.Body)
						}
					}
					assertLimited(t, call(e), "calls", 1800)
				})
				// An emergency call over a spent budget takes nothing from
				// it, so one that reached no pool gives nothing back: the
				// caller's next call is still refused.
				t.Run("an emergency call over the limit gives nothing back", func(t *testing.T) {
					primary := testkit.NewUpstream(t)
					e := start(t, "primary "+primary.Addr())
					for range 2 {
						if resp := call(e); resp.Status != http.StatusCreated {
							t.Fatalf("%d %s, want 201", resp.Status, resp.Body)
						}
					}
					primary.Kill()
					if resp := emergencyCall(e); resp.Status != http.StatusGone {
						t.Fatalf("the emergency call: %d %s, want 410", resp.Status, resp.Body)
					}
					primary.Restart(t)
					assertLimited(t, call(e), "calls", 1800)
					if got := primary.Requests.Load(); got != 2 {
						t.Errorf("the pool got %d requests, want 2", got)
					}
				})
				t.Run("502 and 504 keep", func(t *testing.T) {
					reset := testkit.NewPool(t, "reset", testkit.AnswerReset)
					hang := testkit.NewPool(t, "hang", testkit.AnswerHang)
					e := start(t, "primary "+reset.Addr())
					if resp := call(e); resp.Status != http.StatusBadGateway {
						t.Fatalf("%d %s, want 502", resp.Status, resp.Body)
					}
					e.Load("caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		default_region US
		%s
		%s
		%s
		limit calls 2 per 1h
		primary %s {
			transport http {
				response_header_timeout 100ms
			}
		}
	}
}`, idemAuth(t), storeConfig, idem, hang.Addr()))
					if resp := call(e); resp.Status != http.StatusGatewayTimeout {
						t.Fatalf("%d %s, want 504", resp.Status, resp.Body)
					}
					assertLimited(t, call(e), "calls", 1800)
				})
			})
		}
	}
}
