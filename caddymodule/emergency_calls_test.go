package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// emergencyCallOutcome is what the edge does with one startEmergencyCall
// under one emergency_calls setting.
type emergencyCallOutcome struct {
	// status: 201 (delivered), 403 (DialoutNotAllowed) or 429 (the
	// limit calls).
	status int
	// decision, rule: the audit line's (and, for a 403, the refusal's
	// rule).
	decision, rule string
	// overLimit: the limit the call was delivered over, in its audit
	// line.
	overLimit string
}

// TestEmergencyCallsEmergencyNumbers: under a policy that denies +1900
// and lists the site's SIP domain, with `limit calls 1 per 1h`, the
// caller's startEmergencyCalls, one after the other. By default
// (emergency_calls any) every one is an emergency call: delivered
// whatever the rules say (would_refuse, with the warning line) and over
// the limit (over_limit). With emergency_calls emergency_numbers only the
// one to 911 is: the others are judged as any call to their `to` (403
// DialoutNotAllowed for +1900 and a SIP host sip_domains does not list,
// never delivered; a SIP name of the site's domain delivered, counted by
// no limit) and limited as calls (the second to an allowed number 429),
// while 911 is delivered past the spent limit; no would_refuse series
// and no warning. In report mode such a call is delivered as report mode
// delivers any, with the report mode's line, and still counted as a
// call. A batch is no emergency call under either setting: its
// startEmergencyCall part to +1900 meets the spent limit (429), but under
// emergency_numbers in enforce mode the policy refuses it first (403).
func TestEmergencyCallsEmergencyNumbers(t *testing.T) {
	type step struct {
		what, to               string
		batch                  bool // sent as the one part of a batch
		any, numbers, reported emergencyCallOutcome
	}
	delivered := func(decision, rule, overLimit string) emergencyCallOutcome {
		return emergencyCallOutcome{http.StatusCreated, decision, rule, overLimit}
	}
	refused := func(rule string) emergencyCallOutcome {
		return emergencyCallOutcome{http.StatusForbidden, "refused", rule, ""}
	}
	limitedAs := func(decision, rule string) emergencyCallOutcome {
		return emergencyCallOutcome{http.StatusTooManyRequests, decision, rule, ""}
	}
	limited := limitedAs("allowed", "default")
	steps := []step{
		{"a premium number", "tel:+19005551234", false,
			delivered("would_refuse", "deny", ""), refused("deny"), delivered("would_refuse", "deny", "")},
		{"a SIP address elsewhere", "sip:psap@elsewhere.example", false,
			delivered("would_refuse", "sip_domains", ""), refused("sip_domains"), delivered("would_refuse", "sip_domains", "")},
		{"a SIP name of the site", "sip:security@contoso.com", false,
			delivered("allowed", "default", ""), delivered("allowed", "default", ""), delivered("allowed", "default", "")},
		{"an allowed number", "tel:+14255551234", false,
			delivered("allowed", "default", "calls"), delivered("allowed", "default", ""), limited},
		{"the allowed number again", "tel:+14255551234", false,
			delivered("allowed", "default", "calls"), limited, limited},
		{"911", "911", false,
			delivered("allowed", "emergency", ""), delivered("allowed", "emergency", ""), delivered("allowed", "emergency", "")},
		{"a premium number in a batch", "tel:+19005551234", true,
			limitedAs("would_refuse", "deny"), refused("deny"), limitedAs("would_refuse", "deny")},
	}
	const warning = `"destination policy would refuse this destination of an emergency call: not refused by the policy, as no emergency call is"`
	const reportLine = `"destination policy would refuse this destination (report mode): not refused by the policy"`
	auth := http.Header{"Authorization": {callerBearer(t)}}
	for _, setting := range []struct {
		name, options string
		outcome       func(step) emergencyCallOutcome
	}{
		{"any by default", "", func(s step) emergencyCallOutcome { return s.any }},
		{"emergency_numbers", "emergency_calls emergency_numbers", func(s step) emergencyCallOutcome { return s.numbers }},
		{"emergency_numbers in report mode", "emergency_calls emergency_numbers\n\t\t\tmode report", func(s step) emergencyCallOutcome { return s.reported }},
	} {
		t.Run(setting.name, func(t *testing.T) {
			e := startGuardEdge(t, "destinations {\n\t\t\tdeny +1900\n\t\t\tsip_domains contoso.com\n\t\t\t"+setting.options+"\n\t\t}\n\t\tlimit calls 1 per 1h")
			for i, s := range steps {
				want := setting.outcome(s)
				before := len(e.pool.Received())
				req := testkit.Request{URL: emergencyPath, ContentType: "application/json", Body: `{"to":"` + s.to + `"}`, Header: auth}
				operation, part := "startEmergencyCall", 0
				if s.batch {
					req = testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: auth,
						Body: batchBody("POST " + emergencyPath + " HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + req.Body)}
					operation, part = "batch", 1
				}
				resp := e.send(req)
				if resp.Status != want.status {
					t.Fatalf("%s: %d %s, want %d", s.what, resp.Status, resp.Body, want.status)
				}
				switch want.status {
				case http.StatusForbidden:
					assertUCWAError(t, resp, "Forbidden", "DialoutNotAllowed", []string{"to"}, false)
					if msg := ucwaError(t, resp.Body).Message; !strings.Contains(msg, "to is refused by the destination policy ("+want.rule+":") {
						t.Errorf("%s: message %q names not the rule %s", s.what, msg, want.rule)
					}
				case http.StatusTooManyRequests:
					assertLimited(t, resp, "calls", 3600)
				}
				wantDelivered := 0
				if want.status == http.StatusCreated {
					wantDelivered = 1
				}
				if got := len(e.pool.Received()) - before; got != wantDelivered {
					t.Errorf("%s: the pool got %d requests, want %d", s.what, got, wantDelivered)
				}
				a := e.nextAudit(t, i)
				if a.Operation != operation || a.Status != want.status || a.Decision != want.decision || a.Rule != want.rule || a.OverLimit != want.overLimit {
					t.Errorf("%s: audit line %+v, want status %d, decision %s, rule %s, over_limit %q",
						s.what, a, want.status, want.decision, want.rule, want.overLimit)
				}
				if len(a.Destinations) != 1 || a.Destinations[0].Emergency != (s.to == "911") || a.Destinations[0].Part != part {
					t.Errorf("%s: audit destinations %+v, want one, an emergency number only for 911", s.what, a.Destinations)
				}
			}
			metrics := e.Metrics()
			log := e.Logs().String()
			switch setting.name {
			case "any by default":
				e.Logs().Wait(t, warning, `"rule":"deny"`, `"destination":"+1900555****"`)
			case "emergency_numbers":
				// Enforced, and no emergency call let through: no destination
				// is ever delivered refused.
				if strings.Contains(metrics, `decision="would_refuse"`) {
					t.Errorf("/metrics holds would_refuse series under emergency_numbers in enforce mode")
				}
				if got := testkit.MetricValue(t, metrics, `caddy_ucwa_destinations_total{decision="refused",rule="deny"}`); got != 2 {
					t.Errorf(`caddy_ucwa_destinations_total{decision="refused",rule="deny"} = %v, want 2 (the call and the batch)`, got)
				}
			case "emergency_numbers in report mode":
				e.Logs().Wait(t, reportLine, `"operation":"startEmergencyCall"`, `"rule":"deny"`)
			}
			if setting.name != "any by default" && strings.Contains(log, warning) {
				t.Errorf("the log holds the emergency call's warning under emergency_numbers")
			}
			if got := testkit.MetricValue(t, metrics, `caddy_ucwa_limit_exempted_total{limit="calls"}`); got != map[string]float64{"any by default": 2}[setting.name] {
				t.Errorf(`caddy_ucwa_limit_exempted_total{limit="calls"} = %v`, got)
			}
			if strings.Contains(log, "9005551234") || strings.Contains(log, "4255551234") {
				t.Errorf("the log holds a full number")
			}
		})
	}
}

// TestEmergencyCallsIdempotency: a startEmergencyCall with an operationId
// that the pool answered with a failure (it may have been placed) is sent
// again. By default it is an emergency call, which nothing the edge adds
// holds back: delivered again. Under emergency_calls emergency_numbers
// one to an allowed number is no emergency call: its repeat gets the
// failure again, never delivered a second time; one to 911 still is,
// delivered again. In each store.
func TestEmergencyCallsIdempotency(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	for _, st := range idemStores {
		for _, tc := range []struct {
			name, options string
			to            string
			deliveries    int // of the first and its repeat
		}{
			{"any by default, an allowed number", "", "tel:+14255551234", 2},
			{"emergency_numbers, an allowed number", "emergency_calls emergency_numbers", "tel:+14255551234", 1},
			{"emergency_numbers, 911", "emergency_calls emergency_numbers", "911", 2},
		} {
			t.Run(st.name+"/"+tc.name, func(t *testing.T) {
				pool := newIdemPool(t, "primary")
				e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.config(t), "primary "+pool.Addr(),
					"destinations {\n\t\t\t"+tc.options+"\n\t\t}"))
				call := func(answer string) idemCall {
					return idemCall{header: caller, op: "e-1", answer: answer, path: "/communication/startEmergencyCall",
						body: `{"to":"` + tc.to + `","operationId":"e-1"}`}
				}
				failed := e.call(call("conflict"))
				if failed.Status != http.StatusConflict {
					t.Fatalf("first: %d %s, want the pool's 409", failed.Status, failed.Body)
				}
				again := e.call(call(""))
				if tc.deliveries == 1 {
					assertReplay(t, again, failed)
				} else if again.Status != http.StatusCreated || again.Header.Get(headerReplayed) != "" {
					t.Errorf("the repeat of a failed emergency call: %d %s, want it delivered", again.Status, again.Body)
				}
				if got := deliveries(pool.Pool, "e-1"); got != tc.deliveries {
					t.Errorf("delivered %d times, want %d", got, tc.deliveries)
				}
			})
		}
	}
}

// TestEmergencyCallsStartupWarnings: startup warns of an emergency_calls
// setting that leaves a door the administrator likely did not mean.
// emergency_numbers without default_region and without an emergency list
// leaves no number an emergency number, so that every startEmergencyCall
// is judged and limited as any call. emergency_calls left unset beside a
// policy that refuses destinations (enforce mode) or a limit lets every
// startEmergencyCall past both, whatever it dials; set either way, it is
// quiet, as it is where nothing would refuse the call anyway.
func TestEmergencyCallsStartupWarnings(t *testing.T) {
	const noNumbers = "emergency_calls emergency_numbers without default_region or an emergency list"
	for _, tc := range []struct {
		name, options    string
		noNumbers, unset bool
	}{
		{"emergency_numbers, neither", "destinations {\n\t\t\temergency_calls emergency_numbers\n\t\t}", true, false},
		{"emergency_numbers, default_region", "default_region US\n\t\tdestinations {\n\t\t\temergency_calls emergency_numbers\n\t\t}", false, false},
		{"emergency_numbers, an emergency list", "destinations {\n\t\t\temergency +14255550199\n\t\t\temergency_calls emergency_numbers\n\t\t}", false, false},
		{"any", "destinations {\n\t\t\temergency_calls any\n\t\t}", false, false},
		{"any, a limit", "destinations {\n\t\t\temergency_calls any\n\t\t}\n\t\tlimit calls 20 per 1h", false, false},
		{"unset, a policy", "destinations {\n\t\t\tdeny +1900\n\t\t}", false, true},
		{"unset, a policy in report mode", "destinations {\n\t\t\tmode report\n\t\t\tdeny +1900\n\t\t}", false, false},
		{"unset, a policy in report mode and a limit", "destinations {\n\t\t\tmode report\n\t\t}\n\t\tlimit calls 20 per 1h", false, true},
		{"emergency_numbers in report mode, a limit", "default_region US\n\t\tdestinations {\n\t\t\tmode report\n\t\t\temergency_calls emergency_numbers\n\t\t}\n\t\tlimit calls 20 per 1h", false, false},
		{"unset, a limit", "limit calls 20 per 1h", false, true},
		{"unset, neither a policy nor a limit", "default_region US", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := testkit.NewUpstream(t)
			e := startEdge(t, "caddyfile", ":EDGE_PORT {\n\tucwa {\n\t\tjwt off\n\t\t"+tc.options+"\n\t\tprimary "+pool.Addr()+"\n\t}\n}")
			assertWarnedOnce(t, e.Logs(), noNumbers, tc.noNumbers)
			assertWarnedOnce(t, e.Logs(), emergencyCallsUnsetWarning, tc.unset)
		})
	}
}
