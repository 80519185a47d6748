package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestBatchOperationsLimit: a batch holds at most max_batch_operations
// requests to guarded operations (20 unless set), whatever else it
// holds; one more is answered 400 ParameterValidationFailure naming the
// part and the limit, nothing is delivered, and the parts past the
// limit are not read: after a first part the policy refuses, the edge
// reads and counts the others' destinations (caddy_ucwa_destinations_total),
// up to the limit and not one more. Each such part is judged as a
// request alone, its numbers normalized and its SIP users read as dial
// strings, and a batch of 100 of them (max_batch_parts) cost the edge
// about 20 ms of CPU.
func TestBatchOperationsLimit(t *testing.T) {
	const refusedDeny = `caddy_ucwa_destinations_total{decision="refused",rule="deny"}`
	const allowed = `caddy_ucwa_destinations_total{decision="allowed",rule="default"}`
	get := "GET " + opsApp + "/me HTTP/1.1\r\n\r\n"
	call := func(n int) string { return startPart(fmt.Sprintf(`{"to":"tel:+1425555%04d"}`, n)) }
	premium := startPart(`{"to":"tel:+19005551234"}`)
	// batch is a batch of calls guarded parts (calls, then premium
	// first when asked) among gets GETs.
	batch := func(calls, gets int, premiumFirst bool) string {
		var parts []string
		if premiumFirst {
			parts = append(parts, premium)
			calls--
		}
		for i := range calls {
			parts = append(parts, call(i))
			if i < gets {
				parts = append(parts, get)
			}
		}
		for range gets - calls {
			parts = append(parts, get)
		}
		return batchBody(parts...)
	}
	for _, tc := range []struct {
		name, options string
		body          string
		status        int
		message       string
		// Destinations judged and counted: refused by deny, allowed
		// (those of the parts before a refusal too).
		refused, allowed float64
		// Startup warned that max_batch_operations cannot be reached.
		unreachable bool
	}{
		{name: "20 calls among GETs", body: batch(20, 60, false), status: http.StatusCreated, allowed: 20},
		{name: "21 calls", body: batch(21, 0, false), status: http.StatusBadRequest,
			message: "Batch part 21: The batch holds more than 20 requests to operations that dial, store or forward to a number, the limit.", allowed: 20},
		{name: "21 calls among GETs", body: batch(21, 60, false), status: http.StatusBadRequest, message: "Batch part 41: The batch holds more than 20 ", allowed: 20},
		{name: "a refused call, then 29 more", body: batch(30, 0, true), status: http.StatusForbidden,
			message: "Batch part 1: to is refused by the destination policy", refused: 1, allowed: 19},
		{name: "max_batch_operations 2, 2 calls", options: "max_batch_operations 2", body: batch(2, 3, false), status: http.StatusCreated, allowed: 2},
		{name: "max_batch_operations 2, 3 calls", options: "max_batch_operations 2", body: batch(3, 3, false), status: http.StatusBadRequest,
			message: "Batch part 5: The batch holds more than 2 requests", allowed: 2},
		{name: "max_batch_operations 50, 50 calls", options: "max_batch_operations 50", body: batch(50, 0, false), status: http.StatusCreated, allowed: 50},
		{name: "max_batch_parts 10, 10 calls", options: "max_batch_parts 10", body: batch(10, 0, false), status: http.StatusCreated, allowed: 10},
		{name: "max_batch_operations 11 above max_batch_parts 10", options: "max_batch_parts 10\n\t\tmax_batch_operations 11",
			body: batch(10, 0, false), status: http.StatusCreated, allowed: 10, unreachable: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startGuardEdge(t, tc.options+"\n\t\tdestinations {\n\t\t\tdeny +1900\n\t\t}")
			assertWarnedOnce(t, e.Logs(), batchOperationsUnreachableWarning, tc.unreachable)
			resp := e.send(testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Body: tc.body,
				Header: http.Header{"Authorization": {callerBearer(t)}}})
			if resp.Status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, tc.status)
			}
			want := 0
			if tc.status == http.StatusCreated {
				want = 1
			}
			if got := e.pool.Received(); len(got) != want || want == 1 && got[0].Body != tc.body {
				t.Errorf("the pool got %d requests, want %d (the batch as sent)", len(got), want)
			}
			if tc.message != "" {
				if m := ucwaError(t, resp.Body).Message; !strings.HasPrefix(m, tc.message) {
					t.Errorf("message %q, want %q", m, tc.message)
				}
			}
			if tc.status == http.StatusBadRequest {
				assertUCWAError(t, resp, "BadRequest", "ParameterValidationFailure", nil, false)
			}
			if got := e.Metric(refusedDeny); got != tc.refused {
				t.Errorf("%s = %v, want %v", refusedDeny, got, tc.refused)
			}
			if got := e.Metric(allowed); got != tc.allowed {
				t.Errorf("%s = %v, want %v", allowed, got, tc.allowed)
			}
		})
	}
}
