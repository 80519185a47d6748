package caddymodule

import (
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestObservabilityMatrix: one edge with a destination policy, two
// limits, idempotency in the memory store and a primary pool; each request of a
// matrix moves exactly the counters the README's Metrics table promises
// for its case (those series, by those amounts, with those labels, and
// no other), writes exactly one audit line with the fields the README's
// Audit trail table gives, and no full number of a request is in any
// log line.
func TestObservabilityMatrix(t *testing.T) {
	e := startGuardEdge(t, `store memory
		idempotency
		limit calls 5 per 1h
		limit burst 6 per 1h
		destinations {
			deny +1900
		}`)
	auth := http.Header{"Authorization": {callerBearer(t)}}
	call := func(body string) testkit.Request {
		return testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: body, Header: auth}
	}
	batch := func(body string) testkit.Request {
		return testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Body: body, Header: auth}
	}
	type audit struct {
		operation, decision, rule, refusedBy, overLimit, idempotency, error, pool string
		status                                                                    int
	}
	var numbers []string
	allowed := `destinations_total{decision="allowed",rule="default"}`
	for _, tc := range []struct {
		name   string
		req    testkit.Request
		status int
		deltas map[string]float64 // caddy_ucwa_ counters, less the prefix
		audit  audit
		parts  []auditPartJSON // a batch's, when not nil
		// noRetryAfter: a 429 without Retry-After (a batch no limit can
		// ever take).
		noRetryAfter bool
	}{
		{name: "allowed",
			req:    call(`{"to":"+14255551234","operationId":"m-1"}`),
			status: 201,
			deltas: map[string]float64{allowed: 1, `idempotency_total{result="reserved"}`: 1, `pool_requests_total{outcome="answered",pool="primary"}`: 1},
			audit:  audit{operation: "startPhoneAudio", decision: "allowed", rule: "default", idempotency: "reserved", pool: "primary", status: 201}},
		{name: "replayed",
			req:    call(`{"to":"+14255551234","operationId":"m-1"}`),
			status: 201,
			deltas: map[string]float64{allowed: 1, `idempotency_total{result="replayed"}`: 1},
			audit:  audit{operation: "startPhoneAudio", decision: "allowed", rule: "default", idempotency: "replayed", status: 201}},
		{name: "the operationId of another request",
			req:    call(`{"to":"+14255550000","operationId":"m-1"}`),
			status: 409,
			deltas: map[string]float64{allowed: 1, `idempotency_total{result="conflict"}`: 1, `edge_answers_total{error="Conflict/AlreadyExists",status="409"}`: 1},
			audit:  audit{operation: "startPhoneAudio", decision: "allowed", rule: "default", idempotency: "conflict", error: "Conflict/AlreadyExists", status: 409}},
		{name: "refused by deny",
			req:    call(`{"to":"+19005551234","operationId":"m-2"}`),
			status: 403,
			deltas: map[string]float64{`destinations_total{decision="refused",rule="deny"}`: 1, `edge_answers_total{error="Forbidden/DialoutNotAllowed",status="403"}`: 1},
			audit:  audit{operation: "startPhoneAudio", decision: "refused", rule: "deny", refusedBy: "destinations:deny", error: "Forbidden/DialoutNotAllowed", status: 403}},
		{name: "malformed",
			req:    call(`{"to":"+1425555123x","operationId":"m-3"}`),
			status: 400,
			deltas: map[string]float64{`edge_answers_total{error="BadRequest/NormalizationFailed",status="400"}`: 1},
			audit:  audit{operation: "startPhoneAudio", error: "BadRequest/NormalizationFailed", status: 400}},
		{name: "a near miss",
			req:    testkit.Request{URL: startOpsPath + "/4255551234", ContentType: "application/json", Body: `{"to":"+14255551234"}`, Header: auth},
			status: 404,
			deltas: map[string]float64{`edge_answers_total{error="NotFound",status="404"}`: 1},
			audit:  audit{operation: "(near miss)", error: "NotFound", status: 404}},
		{name: "a batch, one part refused",
			req: batch(batchBody(
				startPart(`{"to":"+14255551111","operationId":"b-1"}`),
				startPart(`{"to":"+19005552222","operationId":"b-2"}`))),
			status: 403,
			deltas: map[string]float64{allowed: 1, `destinations_total{decision="refused",rule="deny"}`: 1, `edge_answers_total{error="Forbidden/DialoutNotAllowed",status="403"}`: 1},
			audit:  audit{operation: "batch", decision: "refused", rule: "deny", refusedBy: "destinations:deny", error: "Forbidden/DialoutNotAllowed", status: 403}},
		{name: "a batch, its first part refused",
			req: batch(batchBody(
				startPart(`{"to":"+19005558888","operationId":"b-5"}`),
				startPart(`{"to":"+14255558889","operationId":"b-6"}`))),
			status: 403,
			// The part after the refused one is judged and counted (as
			// report mode would), but the audit line tells only of the
			// parts up to the refused one.
			deltas: map[string]float64{allowed: 1, `destinations_total{decision="refused",rule="deny"}`: 1, `edge_answers_total{error="Forbidden/DialoutNotAllowed",status="403"}`: 1},
			audit:  audit{operation: "batch", decision: "refused", rule: "deny", refusedBy: "destinations:deny", error: "Forbidden/DialoutNotAllowed", status: 403},
			parts:  []auditPartJSON{{1, "startPhoneAudio", "b-5"}}},
		{name: "a part of a refused batch alone",
			req:    call(`{"to":"+14255551111","operationId":"b-1"}`),
			status: 201,
			deltas: map[string]float64{allowed: 1, `idempotency_total{result="reserved"}`: 1, `pool_requests_total{outcome="answered",pool="primary"}`: 1},
			audit:  audit{operation: "startPhoneAudio", decision: "allowed", rule: "default", idempotency: "reserved", pool: "primary", status: 201}},
		{name: "under the limit",
			req:    call(`{"to":"+14255553333","operationId":"m-4"}`),
			status: 201,
			deltas: map[string]float64{allowed: 1, `idempotency_total{result="reserved"}`: 1, `pool_requests_total{outcome="answered",pool="primary"}`: 1},
			audit:  audit{operation: "startPhoneAudio", decision: "allowed", rule: "default", idempotency: "reserved", pool: "primary", status: 201}},
		{name: "a batch, delivered",
			req:    batch(twoPartBatch),
			status: 201, // the recording pool's
			deltas: map[string]float64{allowed: 2, `idempotency_total{result="reserved"}`: 1, `pool_requests_total{outcome="answered",pool="primary"}`: 1},
			audit:  audit{operation: "batch", decision: "allowed", rule: "default", idempotency: "reserved", pool: "primary", status: 201}},
		{name: "the batch again",
			req:    batch(twoPartBatch),
			status: 409,
			deltas: map[string]float64{allowed: 2, `idempotency_total{result="conflict"}`: 1, `edge_answers_total{error="Conflict/AlreadyExists",status="409"}`: 1},
			audit:  audit{operation: "batch", decision: "allowed", rule: "default", idempotency: "conflict", error: "Conflict/AlreadyExists", status: 409}},
		{name: "a part of the batch alone",
			req:    call(`{"to":"+14255554445","operationId":"b-4"}`),
			status: 409,
			deltas: map[string]float64{allowed: 1, `idempotency_total{result="conflict"}`: 1, `edge_answers_total{error="Conflict/AlreadyExists",status="409"}`: 1},
			audit:  audit{operation: "startPhoneAudio", decision: "allowed", rule: "default", idempotency: "conflict", error: "Conflict/AlreadyExists", status: 409}},
		{name: "a request alone, then in a batch",
			req: batch(batchBody(
				startPart(`{"to":"+14255551234","operationId":"m-1"}`))),
			status: 409,
			deltas: map[string]float64{allowed: 1, `idempotency_total{result="conflict"}`: 1, `edge_answers_total{error="Conflict/AlreadyExists",status="409"}`: 1},
			audit:  audit{operation: "batch", decision: "allowed", rule: "default", idempotency: "conflict", error: "Conflict/AlreadyExists", status: 409}},
		{name: "a batch too large for both limits",
			req: batch(batchBody(
				startPart(`{"to":"+14255557001"}`), startPart(`{"to":"+14255557002"}`), startPart(`{"to":"+14255557003"}`),
				startPart(`{"to":"+14255557004"}`), startPart(`{"to":"+14255557005"}`), startPart(`{"to":"+14255557006"}`), startPart(`{"to":"+14255557007"}`))),
			status:       429,
			noRetryAfter: true,
			deltas:       map[string]float64{allowed: 7, `idempotency_total{result="unprotected"}`: 1, `limited_total{limit="calls"}`: 1, `limited_total{limit="burst"}`: 1, `edge_answers_total{error="TooManyRequests/LimitExceeded",status="429"}`: 1},
			audit:        audit{operation: "batch", decision: "allowed", rule: "default", refusedBy: "limit:calls", idempotency: "unprotected", error: "TooManyRequests/LimitExceeded", status: 429}},
		{name: "over the limit",
			req:    call(`{"to":"+14255555555","operationId":"m-5"}`),
			status: 429,
			deltas: map[string]float64{allowed: 1, `idempotency_total{result="reserved"}`: 1, `limited_total{limit="calls"}`: 1, `edge_answers_total{error="TooManyRequests/LimitExceeded",status="429"}`: 1},
			audit:  audit{operation: "startPhoneAudio", decision: "allowed", rule: "default", refusedBy: "limit:calls", idempotency: "reserved", error: "TooManyRequests/LimitExceeded", status: 429}},
		{name: "without an operationId",
			req:    call(`{"to":"+14255556666"}`),
			status: 429,
			deltas: map[string]float64{allowed: 1, `idempotency_total{result="unprotected"}`: 1, `limited_total{limit="calls"}`: 1, `edge_answers_total{error="TooManyRequests/LimitExceeded",status="429"}`: 1},
			audit:  audit{operation: "startPhoneAudio", decision: "allowed", rule: "default", refusedBy: "limit:calls", idempotency: "unprotected", error: "TooManyRequests/LimitExceeded", status: 429}},
		{name: "an emergency call over the limit",
			req:    call(`{"to":"911","operationId":"m-6"}`),
			status: 201,
			deltas: map[string]float64{`destinations_total{decision="allowed",rule="emergency"}`: 1, `idempotency_total{result="reserved"}`: 1, `limit_exempted_total{limit="calls"}`: 1, `pool_requests_total{outcome="answered",pool="primary"}`: 1},
			audit:  audit{operation: "startPhoneAudio", decision: "allowed", rule: "emergency", overLimit: "calls", idempotency: "reserved", pool: "primary", status: 201}},
	} {
		for _, run := range digitRuns.FindAllString(tc.req.URL+tc.req.Body, -1) {
			numbers = append(numbers, run[len(run)-10:])
		}
		t.Run(tc.name, func(t *testing.T) {
			before := counters(t, e.Metrics())
			lines := len(auditLines(t, e.Logs().String()))
			resp := e.send(tc.req)
			if resp.Status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, tc.status)
			}
			// A 429 says when to retry.
			if retry := resp.Header.Get("Retry-After"); (retry != "") != (tc.status == http.StatusTooManyRequests && !tc.noRetryAfter) {
				t.Errorf("Retry-After %q", retry)
			}
			a := e.nextAudit(t, lines)
			after := counters(t, e.Metrics())
			deltas := map[string]float64{}
			for series := range maps.Keys(after) {
				if d := after[series] - before[series]; d != 0 {
					deltas[series] = d
				}
			}
			if !maps.Equal(deltas, tc.deltas) {
				t.Errorf("counters moved by %v, want %v", deltas, tc.deltas)
			}
			got := audit{a.Operation, a.Decision, a.Rule, a.RefusedBy, a.OverLimit, a.Idempotency, a.Error, a.Pool, a.Status}
			if got != tc.audit {
				t.Errorf("audit line %+v, want %+v", got, tc.audit)
			}
			if tc.parts != nil && !slices.Equal(a.Parts, tc.parts) {
				t.Errorf("audit line's parts %+v, want %+v", a.Parts, tc.parts)
			}
			if n := len(auditLines(t, e.Logs().String())); n != lines+1 {
				t.Errorf("%d audit lines, want %d", n, lines+1)
			}
		})
	}
	// No number a request held (its last ten digits: a national number)
	// is in a log line; the audit trail shows seven digits of one at most.
	if len(numbers) < 10 {
		t.Fatalf("only %d numbers in the requests", len(numbers))
	}
	logs := e.Logs().String()
	for _, number := range numbers {
		if strings.Contains(logs, number) {
			t.Errorf("the logs hold %s", number)
		}
	}
}

// twoPartBatch is a batch of two guarded parts, each with an
// operationId.
var twoPartBatch = batchBody(
	startPart(`{"to":"+14255554444","operationId":"b-3"}`),
	"GET "+opsApp+"/people/contacts HTTP/1.1\r\nAccept: application/json\r\n\r\n",
	startPart(`{"to":"+14255554445","operationId":"b-4"}`))

// digitRuns are the runs of digits of a request that a log line must not
// hold whole.
var digitRuns = regexp.MustCompile(`[0-9]{10,}`)

var counterSample = regexp.MustCompile(`^caddy_ucwa_([a-z_]+_total(?:\{[^}]*\})?) `)

// counters are the caddy_ucwa_ counters of an exposition, by series
// without the prefix.
func counters(t *testing.T, exposition string) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	for line := range strings.Lines(exposition) {
		if s := counterSample.FindStringSubmatch(line); s != nil {
			m[s[1]] = testkit.MetricValue(t, line, "caddy_ucwa_"+s[1])
		}
	}
	delete(m, "token_cache_lookups_total{result=\"hit\"}")
	delete(m, "token_cache_lookups_total{result=\"miss\"}")
	return m
}
