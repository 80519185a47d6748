package caddymodule

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestObservabilityMore: what TestObservabilityMatrix checks (the
// caddy_ucwa_ counters each request moves, its one audit line, no number
// of a request in any log line) for the cases that need an edge of their
// own: report mode, the pools' failures, the store down or full, a
// refused token or body, numbers in the query and a pool's Location.
// Every case's edge has the README's log filters, the default log at
// debug level, so that every line a request can make is searched for its
// numbers and token; its access log line's ucwa_ fields say what its
// audit line says. A counter the case moves shows beforehand (at 0, an
// edge answer's series not until given). A case sent more than once
// moves the same counters each time, and the warning of its state (one
// every request meets while it lasts) is logged once.
func TestObservabilityMore(t *testing.T) {
	auth := http.Header{"Authorization": {callerBearer(t)}}
	call := func(body string) testkit.Request {
		return testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: body, Header: auth}
	}
	type audit struct {
		operation, sub, decision, rule, refusedBy, idempotency, error, pool string
		status                                                              int
	}
	storeDown := func(onError string) string {
		return "store redis REDIS {\n\t\t\ttimeout 5s\n\t\t\ton_error " + onError + "\n\t\t}\n\t\tidempotency"
	}
	const (
		answered  = `pool_requests_total{outcome="answered",pool="primary"}`
		storeErr  = `idempotency_total{result="store_error"}`
		noPrimary = `pool_requests_total{outcome="unavailable",pool="primary"}`
	)
	for _, tc := range []struct {
		name string
		// options: the ucwa block's, REDIS standing for a redis-server's
		// URL; pools: its pools, DOWN for an address that refuses
		// connections, PRIMARY and BACKUP for pools that answer 201 with a
		// Location on their own host that carries the request's query.
		options, pools string
		// fill: requests (of their own operationIds) the pool answers
		// before the case's; killRedis: Redis is killed after them.
		fill      int
		killRedis bool
		req       testkit.Request
		times     int // the request is sent so often (once when 0)
		status    int
		retry     string // Retry-After: "" none, "*" any
		deltas    map[string]float64
		audit     audit
		delivered string // the pool that gets the request, if any
		// logged: the one line of the case's state, its message first,
		// whatever times says; access: what its access log lines hold.
		logged []string
		access []string
	}{
		{name: "report mode, a number the rules refuse",
			options: "destinations {\n\t\t\tmode report\n\t\t\tdeny +1900\n\t\t}",
			req:     call(`{"to":"+19005551234","operationId":"r-1"}`),
			status:  201,
			deltas:  map[string]float64{`destinations_total{decision="would_refuse",rule="deny"}`: 1, answered: 1},
			audit:   audit{operation: "startPhoneAudio", sub: callerSub, decision: "would_refuse", rule: "deny", pool: "primary", status: 201},
			logged: []string{`"msg":"destination policy would refuse this destination (report mode): not refused by the policy"`, `"level":"info"`,
				`"operation":"startPhoneAudio"`, `"property":"to"`, `"rule":"deny"`, `"destination":"+1900555****"`},
			delivered: "primary"},
		{name: "primary down, a backup",
			pools:     "primary DOWN\n\t\tbackup BACKUP",
			req:       call(`{"to":"+14255550101"}`),
			times:     2,
			status:    201,
			deltas:    map[string]float64{noPrimary: 1, `pool_requests_total{outcome="answered",pool="backup"}`: 1, `pool_failovers_total`: 1},
			audit:     audit{operation: "startPhoneAudio", sub: callerSub, pool: "backup", status: 201},
			logged:    []string{`"msg":"primary pool cannot take the request; failing over to the backup pool"`, `"level":"warn"`, `"pool":"primary"`},
			delivered: "backup"},
		{name: "primary down, no backup",
			pools:  "primary DOWN",
			req:    call(`{"to":"+14255550102"}`),
			times:  2,
			status: 410,
			deltas: map[string]float64{noPrimary: 1, `cannot_redirect_total`: 1, `edge_answers_total{error="Gone/CannotRedirect",status="410"}`: 1},
			audit:  audit{operation: "startPhoneAudio", sub: callerSub, error: "Gone/CannotRedirect", status: 410},
			logged: []string{`"msg":"primary pool cannot take the request and no backup pool is configured: 410 CannotRedirect"`, `"level":"warn"`, `"pool":"primary"`}},
		{name: "both pools down",
			pools:  "primary DOWN\n\t\tbackup DOWN",
			req:    call(`{"to":"+14255550103"}`),
			times:  2,
			status: 503,
			retry:  "1",
			deltas: map[string]float64{noPrimary: 1, `pool_requests_total{outcome="unavailable",pool="backup"}`: 1, `pool_failovers_total`: 1,
				`edge_answers_total{error="ServiceUnavailable",status="503"}`: 1},
			audit:  audit{operation: "startPhoneAudio", sub: callerSub, error: "ServiceUnavailable", status: 503},
			logged: []string{`"msg":"no pool can take the request: 503"`, `"level":"error"`, `"pool":"backup"`}},
		{name: "primary down, no backup, idempotency and a limit of one call",
			options: "idempotency\n\t\tlimit calls 1 per 1h",
			pools:   "primary DOWN",
			// Reaching no pool, the request is released and refunded: its
			// repeats are neither replayed nor refused.
			req:    call(`{"to":"+14255550114","operationId":"p-1"}`),
			times:  3,
			status: 410,
			deltas: map[string]float64{noPrimary: 1, `cannot_redirect_total`: 1, `idempotency_total{result="reserved"}`: 1,
				`edge_answers_total{error="Gone/CannotRedirect",status="410"}`: 1},
			audit:  audit{operation: "startPhoneAudio", sub: callerSub, idempotency: "reserved", error: "Gone/CannotRedirect", status: 410},
			logged: []string{`"msg":"primary pool cannot take the request and no backup pool is configured: 410 CannotRedirect"`, `"level":"warn"`, `"pool":"primary"`}},
		{name: "both pools down, idempotency and a limit of one call",
			options: "idempotency\n\t\tlimit calls 1 per 1h",
			pools:   "primary DOWN\n\t\tbackup DOWN",
			req:     call(`{"to":"+14255550115","operationId":"p-2"}`),
			times:   3,
			status:  503,
			retry:   "1",
			deltas: map[string]float64{noPrimary: 1, `pool_requests_total{outcome="unavailable",pool="backup"}`: 1, `pool_failovers_total`: 1,
				`idempotency_total{result="reserved"}`: 1, `edge_answers_total{error="ServiceUnavailable",status="503"}`: 1},
			audit:  audit{operation: "startPhoneAudio", sub: callerSub, idempotency: "reserved", error: "ServiceUnavailable", status: 503},
			logged: []string{`"msg":"no pool can take the request: 503"`, `"level":"error"`, `"pool":"backup"`}},
		{name: "redis down, on_error closed",
			options: storeDown("closed"), fill: 1, killRedis: true,
			req:    call(`{"to":"+14255550104","operationId":"s-1"}`),
			times:  3,
			status: 503,
			retry:  "1",
			// The reservation fails, and counts once: its release behind
			// the 503 fails too, and counts not again.
			deltas: map[string]float64{storeErr: 1, `store_errors_total{on_error="closed"}`: 1, `edge_answers_total{error="ServiceUnavailable",status="503"}`: 1},
			audit:  audit{operation: "startPhoneAudio", sub: callerSub, refusedBy: refusedByStore, idempotency: "store_error", error: "ServiceUnavailable", status: 503},
			logged: []string{`"msg":"store failing: requests that need it are answered 503 until it answers again`, `"level":"warn"`}},
		{name: "redis down, on_error closed, a limit",
			options: "store redis REDIS {\n\t\t\ttimeout 5s\n\t\t}\n\t\tlimit calls 5 per 1h", fill: 1, killRedis: true,
			req:    call(`{"to":"+14255550116"}`),
			times:  2,
			status: 503,
			retry:  "1",
			deltas: map[string]float64{`store_errors_total{on_error="closed"}`: 1, `edge_answers_total{error="ServiceUnavailable",status="503"}`: 1},
			audit:  audit{operation: "startPhoneAudio", sub: callerSub, refusedBy: refusedByStore, error: "ServiceUnavailable", status: 503},
			logged: []string{`"msg":"store failing: requests that need it are answered 503 until it answers again`, `"level":"warn"`}},
		{name: "redis down, on_error open, a limit",
			options: "store redis REDIS {\n\t\t\ttimeout 5s\n\t\t\ton_error open\n\t\t}\n\t\tlimit calls 5 per 1h", fill: 1, killRedis: true,
			req:       call(`{"to":"+14255550117"}`),
			times:     2,
			status:    201,
			deltas:    map[string]float64{`store_errors_total{on_error="open"}`: 1, answered: 1},
			audit:     audit{operation: "startPhoneAudio", sub: callerSub, pool: "primary", status: 201},
			logged:    []string{`"msg":"store failing: requests that need it go on without it until it answers again"`, `"level":"warn"`},
			delivered: "primary"},
		{name: "redis down, on_error open",
			options: storeDown("open"), fill: 1, killRedis: true,
			req:       call(`{"to":"+14255550105","operationId":"s-2"}`),
			times:     3,
			status:    201,
			deltas:    map[string]float64{storeErr: 1, `store_errors_total{on_error="open"}`: 1, answered: 1},
			audit:     audit{operation: "startPhoneAudio", sub: callerSub, idempotency: "store_error", pool: "primary", status: 201},
			logged:    []string{`"msg":"store failing: requests that need it go on without it until it answers again"`, `"level":"warn"`},
			delivered: "primary"},
		{name: "redis down, on_error closed, an emergency call",
			options: storeDown("closed"), fill: 1, killRedis: true,
			req:    testkit.Request{URL: emergencyPath, ContentType: "application/json", Body: `{"to":"911","operationId":"s-3"}`, Header: auth},
			times:  2,
			status: 201,
			// Delivered, its reservation is not released.
			deltas:    map[string]float64{storeErr: 1, `store_errors_total{on_error="closed"}`: 1, answered: 1},
			audit:     audit{operation: "startEmergencyCall", sub: callerSub, idempotency: "store_error", pool: "primary", status: 201},
			logged:    []string{`"msg":"store failing: requests that need it are answered 503 until it answers again`, `"level":"warn"`},
			delivered: "primary"},
		{name: "memory store full",
			// A share of max_entries bounds no caller but by the store's size.
			options: "store memory 1 {\n\t\t\tmax_entries_per_caller 1\n\t\t}\n\t\tidempotency", fill: 1,
			req:    call(`{"to":"+14255550106","operationId":"f-1"}`),
			times:  2,
			status: 503,
			retry:  "1",
			deltas: map[string]float64{storeErr: 1, `store_errors_total{on_error="closed"}`: 1, `store_full_total`: 1,
				`edge_answers_total{error="ServiceUnavailable",status="503"}`: 1},
			audit:  audit{operation: "startPhoneAudio", sub: callerSub, refusedBy: refusedByStore, idempotency: "store_error", error: "ServiceUnavailable", status: 503},
			logged: []string{`"msg":"memory store full: `, `"level":"warn"`, `"max_entries":1`}},
		{name: "memory store full, on_error open",
			options: "store memory 1 {\n\t\t\tmax_entries_per_caller 1\n\t\t\ton_error open\n\t\t}\n\t\tidempotency", fill: 1,
			req:       call(`{"to":"+14255550112","operationId":"f-3"}`),
			times:     2,
			status:    201,
			deltas:    map[string]float64{storeErr: 1, `store_errors_total{on_error="open"}`: 1, `store_full_total`: 1, answered: 1},
			audit:     audit{operation: "startPhoneAudio", sub: callerSub, idempotency: "store_error", pool: "primary", status: 201},
			logged:    []string{`"msg":"memory store full: `, `"level":"warn"`, `go on without it`},
			delivered: "primary"},
		{name: "a caller at max_entries_per_caller",
			options: "store memory 10 {\n\t\t\tmax_entries_per_caller 1\n\t\t}\n\t\tidempotency", fill: 1,
			req:    call(`{"to":"+14255550107","operationId":"f-2"}`),
			times:  2,
			status: 429,
			retry:  "*",
			deltas: map[string]float64{storeErr: 1, `store_errors_total{on_error="closed"}`: 1,
				`edge_answers_total{error="TooManyRequests",status="429"}`: 1},
			audit:  audit{operation: "startPhoneAudio", sub: callerSub, refusedBy: refusedByStore, idempotency: "store_error", error: "TooManyRequests", status: 429},
			logged: []string{`"msg":"a caller holds max_entries_per_caller reservations of the memory store`, `"level":"warn"`, `"max_entries_per_caller":1`}},
		{name: "a caller at max_entries_per_caller, on_error open",
			options: "store memory 10 {\n\t\t\tmax_entries_per_caller 1\n\t\t\ton_error open\n\t\t}\n\t\tidempotency", fill: 1,
			req:       call(`{"to":"+14255550113","operationId":"f-4"}`),
			times:     2,
			status:    201,
			deltas:    map[string]float64{storeErr: 1, `store_errors_total{on_error="open"}`: 1, answered: 1},
			audit:     audit{operation: "startPhoneAudio", sub: callerSub, idempotency: "store_error", pool: "primary", status: 201},
			logged:    []string{`"msg":"a caller holds max_entries_per_caller reservations of the memory store`, `"level":"warn"`, `go on without idempotency`},
			delivered: "primary"},
		{name: "no token",
			req:    testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"+14255550108"}`},
			status: 401,
			deltas: map[string]float64{`edge_answers_total{error="Unauthorized",status="401"}`: 1},
			audit:  audit{operation: "startPhoneAudio", error: "Unauthorized", status: 401}},
		{name: "an invalid token",
			req: testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"+14255550109"}`,
				Header: http.Header{"Authorization": {callerBearer(t) + "x"}}},
			status: 401,
			deltas: map[string]float64{`edge_answers_total{error="Unauthorized",status="401"}`: 1},
			audit:  audit{operation: "startPhoneAudio", error: "Unauthorized", status: 401}},
		{name: "a body too large",
			options: "max_body_size 1KiB",
			req:     call(`{"to":"+14255550110","subject":"` + strings.Repeat("s", 1024) + `"}`),
			status:  413,
			deltas:  map[string]float64{`edge_answers_total{error="EntityTooLarge/EntityTooLarge",status="413"}`: 1},
			audit:   audit{operation: "startPhoneAudio", sub: callerSub, error: "EntityTooLarge/EntityTooLarge", status: 413}},
		{name: "numbers in the query and the Location",
			req:       testkit.Request{URL: startOpsPath + "?to=%2B14255550111&operationId=q-14255550111&ack=1", Method: http.MethodPost, Header: auth},
			status:    201,
			deltas:    map[string]float64{answered: 1},
			audit:     audit{operation: "startPhoneAudio", sub: callerSub, pool: "primary", status: 201},
			delivered: "primary",
			access: []string{`"uri":"` + startOpsPath + `?to=REDACTED&operationId=REDACTED&ack=1"`,
				`/invitations/primary?to=REDACTED&operationId=REDACTED&ack=1"]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pools := map[string]*testkit.Pool{}
			for _, name := range []string{"primary", "backup"} {
				pools[name] = testkit.NewPool(t, name, func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Location", "http://"+p.Addr()+"/ucwa/oauth/v1/applications/104/communication/invitations/"+p.Name()+"?"+r.URL.RawQuery)
					w.WriteHeader(http.StatusCreated)
				})
			}
			options, poolLines := tc.options, cmpOr(tc.pools, "primary PRIMARY")
			poolLines = strings.NewReplacer("PRIMARY", pools["primary"].Addr(), "BACKUP", pools["backup"].Addr()).Replace(poolLines)
			for strings.Contains(poolLines, "DOWN") {
				poolLines = strings.Replace(poolLines, "DOWN", testkit.DownAddr(t), 1)
			}
			var redis *testkit.RedisServer
			if strings.Contains(options, "REDIS") {
				redis = testkit.StartRedis(t)
				options = strings.ReplaceAll(options, "REDIS", redis.URL())
			}
			t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
			e := guardEdge{startEdge(t, "caddyfile", readmeLoggedConfig(t, opsJWT+"\n\t\tdefault_region US\n\t\t"+options+"\n\t\t"+poolLines),
				testkit.WithAdmin()), pools["primary"]}
			for i := range tc.fill {
				if resp := e.send(call(fmt.Sprintf(`{"to":"+14255550000","operationId":"fill-%d"}`, i))); resp.Status != http.StatusCreated {
					t.Fatalf("filling: %d %s", resp.Status, resp.Body)
				}
			}
			if tc.killRedis {
				redis.Kill()
			}
			accessLines := func() []string { return e.Logs().Lines(`"logger":"http.log.access`) }
			for i := range max(tc.times, 1) {
				before := counters(t, e.Metrics())
				// A counter shows at 0 once its feature is configured, an
				// answer of the edge's once it is given.
				for series := range tc.deltas {
					if _, shown := before[series]; i == 0 && shown == strings.HasPrefix(series, "edge_answers_total") {
						t.Errorf("%s shown %v before the case's first request", series, shown)
					}
				}
				lines, accessed := len(auditLines(t, e.Logs().String())), len(accessLines())
				received := map[string]int{"primary": len(pools["primary"].Received()), "backup": len(pools["backup"].Received())}
				resp := e.send(tc.req)
				if resp.Status != tc.status {
					t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, tc.status)
				}
				if got := resp.Header.Get("Retry-After"); tc.retry == "*" && got == "" || tc.retry != "*" && got != tc.retry {
					t.Errorf("Retry-After %q, want %q", got, tc.retry)
				}
				for name, pool := range pools {
					want := 0
					if name == tc.delivered {
						want = 1
					}
					if got := len(pool.Received()) - received[name]; got != want {
						t.Errorf("the %s pool got %d requests, want %d", name, got, want)
					}
				}
				a := e.nextAudit(t, lines)
				moved := func() map[string]float64 {
					after, deltas := counters(t, e.Metrics()), map[string]float64{}
					for series := range maps.Keys(after) {
						if d := after[series] - before[series]; d != 0 {
							deltas[series] = d
						}
					}
					return deltas
				}
				// A store call may fail after the answer went out (the
				// release of a reservation Redis may have made, see
				// releaseUnanswered): the counters are compared once each
				// the case names has moved as far.
				testkit.Eventually(t, "the counters to move", func() bool {
					deltas := moved()
					for series, d := range tc.deltas {
						if deltas[series] < d {
							return false
						}
					}
					return true
				})
				if deltas := moved(); !maps.Equal(deltas, tc.deltas) {
					t.Errorf("counters moved by %v, want %v", deltas, tc.deltas)
				}
				got := audit{a.Operation, a.Caller.Sub, a.Decision, a.Rule, a.RefusedBy, a.Idempotency, a.Error, a.Pool, a.Status}
				if got != tc.audit {
					t.Errorf("audit line %+v, want %+v", got, tc.audit)
				}
				// The access log line is written after the answer went out.
				var logged []string
				testkit.Eventually(t, "an access log line", func() bool { logged = accessLines(); return len(logged) > accessed })
				line := logged[accessed]
				if len(logged) != accessed+1 || !strings.Contains(line, fmt.Sprintf(`"status":%d`, tc.status)) {
					t.Errorf("%d access log lines after %d, the next %s; want one of status %d", len(logged), accessed, line, tc.status)
				}
				// Its ucwa_ fields say what the audit line says.
				var fields struct{ Error, Pool, Idempotency string }
				if err := json.Unmarshal([]byte(line), &struct {
					Error       *string `json:"ucwa_error"`
					Pool        *string `json:"ucwa_pool"`
					Idempotency *string `json:"ucwa_idempotency"`
				}{&fields.Error, &fields.Pool, &fields.Idempotency}); err != nil {
					t.Fatal(err)
				}
				want := a.Idempotency // the access log's, of an answer idempotency gave or failed
				if want == "reserved" || want == "unprotected" {
					want = ""
				}
				if fields.Error != a.Error || fields.Pool != a.Pool || fields.Idempotency != want {
					t.Errorf("the access log's ucwa_ fields %+v, want error %q, pool %q, idempotency %q", fields, a.Error, a.Pool, want)
				}
				for _, want := range tc.access {
					if !strings.Contains(line, want) {
						t.Errorf("the access log line holds no %s: %s", want, line)
					}
				}
			}
			if n, want := len(auditLines(t, e.Logs().String())), tc.fill+max(tc.times, 1); n != want {
				t.Errorf("%d audit lines, want %d", n, want)
			}
			if tc.logged != nil {
				e.Logs().Wait(t, tc.logged...)
				if n := len(e.Logs().Lines(tc.logged[0])); n != 1 {
					t.Errorf("%d lines %s, want one", n, tc.logged[0])
				}
			}
			logs := withoutTimings(e.Logs().String())
			if token := strings.TrimPrefix(tc.req.Header.Get("Authorization"), "Bearer "); token != "" && strings.Contains(logs, token[strings.LastIndex(token, "."):]) {
				t.Error("the logs hold the token's signature")
			}
			for _, run := range digitRuns.FindAllString(tc.req.URL+tc.req.Body, -1) {
				if number := run[len(run)-10:]; strings.Contains(logs, number) {
					t.Errorf("the logs hold %s", number)
				}
			}
		})
	}
}
