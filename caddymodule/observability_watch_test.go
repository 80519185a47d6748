package caddymodule

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// counterDeltas are the caddy_ucwa_ counters (see counters) that moved
// between two expositions, by how much.
func counterDeltas(t *testing.T, before, after string) map[string]float64 {
	t.Helper()
	b, a := counters(t, before), counters(t, after)
	deltas := map[string]float64{}
	for series := range maps.Keys(a) {
		if d := a[series] - b[series]; d != 0 {
			deltas[series] = d
		}
	}
	return deltas
}

// TestWatchPoolMayHaveActed: the README's What to watch row of a pool
// that may have acted on a request without answering it (it reset the
// connection once it had read the request, or did not answer within
// response_header_timeout), through a real Caddy with the README's log
// filters, idempotency in a memory store: the client gets 502 or 504;
// caddy_ucwa_pool_requests_total{outcome="failed"} or "timeout" of the
// primary and caddy_ucwa_edge_answers_total{status, error} move by one;
// the error `pool failed after the request may have reached it` or
// `pool timed out ...` is logged once by http.handlers.ucwa, at error
// level, with the pool; a repeat of the request within the window gets
// the same answer again without reaching the pool nor being logged as a
// failure again.
func TestWatchPoolMayHaveActed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  testkit.Answer
		block   string
		status  int
		outcome string
		error   string
		msg     string
	}{
		{"the pool resets the connection", testkit.AnswerReset, "", 502, "failed", "ServiceFailure/ServiceFailure",
			"pool failed after the request may have reached it; not sent again"},
		{"the pool does not answer in time", testkit.AnswerHang, "transport http {\n\t\t\t\tresponse_header_timeout 300ms\n\t\t\t}", 504, "timeout", "Timeout/ServiceTimeout",
			"pool timed out after the request may have reached it; not sent again"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
			pool := testkit.NewPool(t, "primary", tc.answer)
			e := startEdge(t, "caddyfile", readmeLoggedConfig(t, opsJWT+"\n\t\tdefault_region US\n\t\tstore memory\n\t\tidempotency\n\t\t"+
				fmt.Sprintf("primary %s {\n\t\t\t%s\n\t\t}", pool.Addr(), tc.block)), testkit.WithAdmin())
			req := testkit.Request{URL: e.url(startOpsPath), ContentType: "application/json",
				Body: `{"to":"+14255550120","operationId":"w-1"}`, Header: http.Header{"Authorization": {callerBearer(t)}}}
			// The pool's series shows at 0 before the first failure, as
			// the README's Metrics section says.
			if _, shown := counters(t, e.Metrics())[`pool_requests_total{outcome="`+tc.outcome+`",pool="primary"}`]; !shown {
				t.Errorf("the %s series does not show before the first request", tc.outcome)
			}
			for i, want := range []map[string]float64{
				{`pool_requests_total{outcome="` + tc.outcome + `",pool="primary"}`: 1, `idempotency_total{result="reserved"}`: 1,
					`edge_answers_total{error="` + tc.error + `",status="` + fmt.Sprint(tc.status) + `"}`: 1},
				{`idempotency_total{result="replayed"}`: 1},
			} {
				before := e.Metrics()
				resp := testkit.Send(t, e.Client(), req)
				if resp.Status != tc.status {
					t.Fatalf("request %d: status %d (%s), want %d", i+1, resp.Status, resp.Body, tc.status)
				}
				if got := len(pool.Received()); got != 1 {
					t.Errorf("after request %d the pool got %d requests, want 1", i+1, got)
				}
				if got := counterDeltas(t, before, e.Metrics()); !maps.Equal(got, want) {
					t.Errorf("request %d moved the counters by %v, want %v", i+1, got, want)
				}
			}
			line := e.Logs().Wait(t, `"msg":"`+tc.msg+`"`)
			for _, want := range []string{`"level":"error"`, `"logger":"http.handlers.ucwa"`, `"pool":"primary"`} {
				if !strings.Contains(line, want) {
					t.Errorf("the line holds no %s: %s", want, line)
				}
			}
			if n := len(e.Logs().Lines(`"msg":"` + tc.msg + `"`)); n != 1 {
				t.Errorf("%d lines %q, want one", n, tc.msg)
			}
		})
	}
}

// TestWatchDynamicLookupFailed: the README's What to watch row of a
// dynamic pool whose lookup fails (a dynamic srv source whose domain the
// DNS server does not know): Caddy's error `failed getting dynamic
// upstreams; falling back to static upstreams` is logged by
// http.handlers.ucwa.pools, at error level, at every request, each of
// which goes to the backup (caddy_ucwa_pool_failovers_total, the
// primary's unavailable attempts); with the domain's records in place no
// such line is written and nothing fails over.
func TestWatchDynamicLookupFailed(t *testing.T) {
	const (
		requests = 3
		msg      = `"msg":"failed getting dynamic upstreams; falling back to static upstreams"`
	)
	for _, known := range []bool{false, true} {
		t.Run(fmt.Sprintf("records %v", known), func(t *testing.T) {
			dns := testkit.NewDNS(t)
			zone := srvZone()
			fe := testkit.NewPool(t, "fe", testkit.AnswerCreated)
			if known {
				_, port, _ := strings.Cut(fe.Addr(), ":")
				var p uint16
				fmt.Sscan(port, &p)
				dns.SetA("fe1."+zone, "127.0.0.1")
				dns.SetSRV("_ucwa._tcp."+zone, testkit.SRV{Priority: 1, Port: p, Target: "fe1." + zone})
			}
			backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
			pools := fmt.Sprintf("\t\tprimary {\n\t\t\t%s\n\t\t}\n\t\tbackup %s\n", srvSource(zone, dns), backup.Addr())
			e := startEdge(t, "caddyfile", poolsCaddyfile(pools), testkit.WithAdmin())
			for i := range requests {
				if resp := e.startPhoneAudio(fmt.Sprintf("op-%d", i)); resp.Status != http.StatusCreated {
					t.Fatalf("request %d: status %d, want 201; body %s", i, resp.Status, resp.Body)
				}
			}
			lines := e.Logs().Lines(msg)
			want, failovers := 0, 0
			if !known {
				want, failovers = requests, requests
			}
			if len(lines) != want {
				t.Errorf("%d lines %s, want %d", len(lines), msg, want)
			}
			for _, line := range lines {
				for _, part := range []string{`"level":"error"`, `"logger":"http.handlers.ucwa.pools"`} {
					if !strings.Contains(line, part) {
						t.Errorf("the line holds no %s: %s", part, line)
					}
				}
			}
			for sample, want := range map[string]int{
				"caddy_ucwa_pool_failovers_total":                                      failovers,
				`caddy_ucwa_pool_requests_total{outcome="unavailable",pool="primary"}`: failovers,
				`caddy_ucwa_pool_requests_total{outcome="answered",pool="backup"}`:     failovers,
				`caddy_ucwa_pool_requests_total{outcome="answered",pool="primary"}`:    requests - failovers,
			} {
				if got := e.Metric(sample); got != float64(want) {
					t.Errorf("%s = %v, want %d", sample, got, want)
				}
			}
		})
	}
}

// TestWatchHealthyEdgeQuiet: an edge configured as the README advises
// (tokens of a jwks_url with issuer and audience, a store shared through
// Redis that persists its keys and bounds each caller, or in memory,
// idempotency, limits, a destination policy with emergency_calls
// emergency_numbers, a primary and a backup pool that both answer),
// through a real Caddy, serving ordinary traffic
// (calls, a repeat, a batch, a call without operationId, an emergency
// call, on two sites that share the store, before and after a reload)
// raises none of the README's What to watch signals: no line at
// warn level or above of the edge's loggers (http.handlers.ucwa and
// those under it), from startup on, no caddy_ucwa_edge_answers_total
// series, and no counter of a failure, a refusal or a failover moves.
// An operator alerting on those gets no false alarm.
func TestWatchHealthyEdgeQuiet(t *testing.T) {
	k := testkit.Keys(t)
	set := testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA))
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			jwks := testkit.NewJWKSServer(t, set)
			storeBlock := "store memory"
			if store == "redis" {
				srv := testkit.StartRedis(t)
				if err := testkit.RedisClients(t, srv)[0].ConfigSet(t.Context(), "appendonly", "yes").Err(); err != nil {
					t.Fatal(err)
				}
				storeBlock = "store redis " + srv.URL() + " {\n\t\t\ttimeout 5s\n\t\t\tmax_entries_per_caller 1000\n\t\t}"
			}
			primary := testkit.NewPool(t, "primary", testkit.AnswerCreated)
			backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
			// Two sites share the store, as the README's example of an
			// identity provider a site does; calls is the first's count.
			config := func(calls int) string {
				site := func(port, limit string) string {
					return fmt.Sprintf(`:%s {
	log
	ucwa {
		jwt {
			algorithms RS256
			jwks_url %s/keys
			issuer https://issuer.example/
			audience api://ucwa
		}
		default_region US
		%s
		idempotency
		%s
		destinations {
			deny +1900
			emergency_calls emergency_numbers
		}
		primary %s
		backup %s
	}
}
`, port, jwks.URL, storeBlock, limit, primary.Addr(), backup.Addr())
				}
				return site("EDGE_PORT", fmt.Sprintf("limit calls %d per 1h", calls)) + site("OTHER_PORT", "limit other 20 per 1h")
			}
			e := startEdge(t, "caddyfile", config(20), testkit.WithAdmin())
			// What the process counted before: store_full_total counts
			// for the process, across configs and the tests before.
			before := e.Metrics()
			auth := http.Header{"Authorization": {"Bearer " + testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k1",
				testkit.Claims(time.Now(), jwt.MapClaims{"scp": strings.Join(allScopes, " "), "oid": callerOID, "tid": callerTID}))}}
			call := func(path, body string) testkit.Request {
				return testkit.Request{URL: e.url(path), ContentType: "application/json", Body: body, Header: auth}
			}
			traffic := func(round string) {
				t.Helper()
				for i, req := range []testkit.Request{
					call(startOpsPath, `{"to":"+14255550130","operationId":"h-1`+round+`"}`),
					call(startOpsPath, `{"to":"+14255550130","operationId":"h-1`+round+`"}`),
					call(startOpsPath, `{"to":"+14255550131"}`),
					call(emergencyPath, `{"to":"911","operationId":"h-2`+round+`"}`),
					{URL: e.url(opsApp + "/batch"), ContentType: batchType, Header: auth, Body: batchBody(
						startPart(`{"to":"+14255550133","operationId":"h-4`+round+`"}`),
						startPart(`{"to":"+14255550134","operationId":"h-5`+round+`"}`))},
					{URL: e.URL("OTHER_PORT", startOpsPath), ContentType: "application/json", Body: `{"to":"+14255550132","operationId":"h-3` + round + `"}`, Header: auth},
				} {
					if resp := testkit.Send(t, e.Client(), req); resp.Status != http.StatusCreated {
						t.Fatalf("%s request %d: status %d (%s), want 201", round, i+1, resp.Status, resp.Body)
					}
				}
			}
			traffic("")
			// A reload (the first site's count changed) keeps the store.
			e.Load("caddyfile", config(30))
			traffic("-after")
			// Every request's access log line, written after its answer.
			testkit.Eventually(t, "the access log lines", func() bool { return len(e.Logs().Lines(`"msg":"handled request"`)) == 12 })
			for line := range strings.Lines(e.Logs().String()) {
				if strings.Contains(line, `"logger":"http.handlers.ucwa`) && !strings.Contains(line, `"level":"info"`) && !strings.Contains(line, `"level":"debug"`) {
					t.Errorf("a healthy edge logged: %s", line)
				}
			}
			for series, v := range counterDeltas(t, before, e.Metrics()) {
				quiet := strings.HasPrefix(series, `pool_requests_total{outcome="answered",pool="primary"}`) ||
					strings.HasPrefix(series, `destinations_total{decision="allowed"`) ||
					series == `idempotency_total{result="reserved"}` || series == `idempotency_total{result="replayed"}` ||
					series == `idempotency_total{result="unprotected"}`
				if v != 0 && !quiet {
					t.Errorf("a healthy edge's %s is %v", series, v)
				}
				if strings.HasPrefix(series, "edge_answers_total") {
					t.Errorf("a healthy edge shows %s", series)
				}
			}
		})
	}
}

// TestWatchEdgeAnswersOnce: a request the edge refuses counts once in
// caddy_ucwa_edge_answers_total, in the series of its status and UCWA
// code the README's Metrics table gives (its access log line's
// ucwa_error), whether it is a request alone or a batch of several parts
// each of which the same step would refuse: phone audio disabled, no
// token, a token without the scope, a number that does not normalise,
// the policy.
func TestWatchEdgeAnswersOnce(t *testing.T) {
	bearer := callerBearer(t)
	lacking := bearerFor(t, "User.Read")
	for _, tc := range []struct {
		name, options string
		batch         bool
		parts         []string // the bodies of the startPhoneAudio requests
		authorization string
		status        int
		series        string
	}{
		{"phone audio disabled", "phone_audio disabled", false, []string{`{"to":"+14255550140"}`}, bearer, 403, `error="Forbidden",status="403"`},
		{"phone audio disabled, a batch", "phone_audio disabled", true, []string{`{"to":"+14255550141"}`, `{"to":"+14255550142"}`}, bearer, 403, `error="Forbidden",status="403"`},
		{"no token, a batch", "", true, []string{`{"to":"+14255550143"}`, `{"to":"+14255550144"}`}, "", 401, `error="Unauthorized",status="401"`},
		{"a token without the scope, a batch", "", true, []string{`{"to":"+14255550145"}`, `{"to":"+14255550146"}`}, lacking, 403, `error="Forbidden",status="403"`},
		{"numbers that do not normalise, a batch", "", true, []string{`{"to":"+1425555014x"}`, `{"to":"+1425555014y"}`}, bearer, 400, `error="BadRequest/NormalizationFailed",status="400"`},
		{"the policy refuses, a batch", "destinations {\n\t\t\tdeny +1900\n\t\t}", true, []string{`{"to":"+19005550147"}`, `{"to":"+19005550148"}`}, bearer, 403, `error="Forbidden/DialoutNotAllowed",status="403"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startGuardEdge(t, tc.options)
			header := http.Header{}
			if tc.authorization != "" {
				header.Set("Authorization", tc.authorization)
			}
			req := testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: tc.parts[0], Header: header}
			if tc.batch {
				var parts []string
				for _, p := range tc.parts {
					parts = append(parts, startPart(p))
				}
				req = testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Body: batchBody(parts...), Header: header}
			}
			before := e.Metrics()
			if resp := e.send(req); resp.Status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, tc.status)
			}
			answers := map[string]float64{}
			for series, d := range counterDeltas(t, before, e.Metrics()) {
				if strings.HasPrefix(series, "edge_answers_total") {
					answers[series] = d
				}
			}
			if want := map[string]float64{"edge_answers_total{" + tc.series + "}": 1}; !maps.Equal(answers, want) {
				t.Errorf("caddy_ucwa_edge_answers_total moved by %v, want %v", answers, want)
			}
			if n := len(e.pool.Received()); n != 0 {
				t.Errorf("the pool got %d requests", n)
			}
		})
	}
}

// TestWatchJWKSFileUnusable: the README's What to watch row of a
// jwks_file rewritten unreadable, through a real Caddy: the error
// `jwks_file unusable; keeping the previous keys ...` is logged by
// http.handlers.ucwa, at error level, with the file's path, and tokens
// are still verified with the keys it held before; written again with a
// usable key, `jwks_file reloaded` (info) says it was taken, and the
// broken file was reported once.
func TestWatchJWKSFileUnusable(t *testing.T) {
	k := testkit.Keys(t)
	dir := t.TempDir()
	path := testkit.WriteFile(t, dir, "keys.json", testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	up := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", authSite(fmt.Sprintf(`jwt {
			algorithms RS256
			jwks_file %s
			issuer https://issuer.example/
		}`, path), up.Addr()))
	mtime := time.Now()
	rewrite := func(data []byte) {
		t.Helper()
		testkit.WriteFile(t, dir, "keys.json", data)
		// a distinct modification time, whatever the file system's granularity
		mtime = mtime.Add(time.Hour)
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	// The file is looked at again when a token is verified, once a
	// second at most: requests are sent until the line shows.
	sendUntil := func(msg string) string {
		t.Helper()
		testkit.Eventually(t, msg, func() bool {
			e.expect(testkit.Mint(t, jwt.SigningMethodRS256, k.RSA, "k1", testkit.Claims(time.Now(), nil)), http.StatusCreated, "")
			return len(e.Logs().Lines(msg)) > 0
		})
		return e.Logs().Lines(msg)[0]
	}
	const unusable = `"msg":"jwks_file unusable; keeping the previous keys`
	rewrite([]byte(`{"keys": [`))
	line := sendUntil(unusable)
	for _, want := range []string{`"level":"error"`, `"logger":"http.handlers.ucwa"`, `"path":"` + path + `"`} {
		if !strings.Contains(line, want) {
			t.Errorf("the line holds no %s: %s", want, line)
		}
	}
	rewrite(testkit.JWKS(t, testkit.JWK(t, "k1", k.RSA)))
	line = sendUntil(`"msg":"jwks_file reloaded"`)
	for _, want := range []string{`"level":"info"`, `"logger":"http.handlers.ucwa"`, `"path":"` + path + `"`} {
		if !strings.Contains(line, want) {
			t.Errorf("the line holds no %s: %s", want, line)
		}
	}
	if n := len(e.Logs().Lines(unusable)); n != 1 {
		t.Errorf("%d lines %s, want one", n, unusable)
	}
}
