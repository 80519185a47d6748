package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// guardEdge is an edge with a destination policy in front of a recording
// pool, its admin endpoint on for /metrics.
type guardEdge struct {
	edge
	pool *testkit.Pool
}

// startGuardEdge runs an edge with the given ucwa options (a
// destinations block) and default_region US, delivering to a recording
// pool, logging at INFO.
func startGuardEdge(t *testing.T, options string) guardEdge {
	t.Helper()
	return startGuardEdgeIn(t, "US", options)
}

// assertNotNormalized sends a call to to and asserts that the edge
// refuses it 400 NormalizationFailed and that the pool gets nothing.
func (e guardEdge) assertNotNormalized(t *testing.T, auth, to string) {
	t.Helper()
	before := len(e.pool.Received())
	resp := e.send(testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"` + to + `"}`,
		Header: http.Header{"Authorization": {auth}}})
	if resp.Status != http.StatusBadRequest || ucwaError(t, resp.Body).Subcode != "NormalizationFailed" {
		t.Errorf("%s: %d %s, want 400 NormalizationFailed", to, resp.Status, resp.Body)
	}
	if got := e.pool.Received()[before:]; len(got) != 0 {
		t.Errorf("%s: the pool got %d requests, want none", to, len(got))
	}
}

// startGuardEdgeIn is startGuardEdge with another default_region.
func startGuardEdgeIn(t *testing.T, region, options string) guardEdge {
	t.Helper()
	return startGuardEdgeWith(t, "", region, options)
}

// startGuardEdgeWith is startGuardEdgeIn with global, a Caddyfile's
// global options block, before the site ("" for none).
func startGuardEdgeWith(t *testing.T, global, region, options string) guardEdge {
	t.Helper()
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	pool := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`%s
:EDGE_PORT {
	ucwa {
		`+opsJWT+`
		default_region %s
		%s
		primary %s
	}
}`, global, region, options, pool.Addr()), testkit.WithAdmin())
	return guardEdge{e, pool}
}

// The caller of the tests' tokens.
const (
	callerSub, callerOID, callerTID, callerApp = "sub-guard", "oid-guard", "tid-guard", "app-guard"
)

// callerBearer is the Authorization of a valid token of the test caller
// granting every UCWA scope.
func callerBearer(t testing.TB) string {
	t.Helper()
	return "Bearer " + testkit.Mint(t, jwt.SigningMethodHS256, testkit.Keys(t).HMAC, "",
		testkit.Claims(time.Now(), jwt.MapClaims{"scp": strings.Join(allScopes, " "), "sub": callerSub,
			"oid": callerOID, "tid": callerTID, "appid": callerApp}))
}

// auditLine is a line of the audit trail as the tests read it.
type auditLine struct {
	Logger      string `json:"logger"`
	Msg         string `json:"msg"`
	Operation   string `json:"operation"`
	Application string `json:"application"`
	Caller      struct {
		Sub      string `json:"sub"`
		OID      string `json:"oid"`
		TID      string `json:"tid"`
		ISS      string `json:"iss"`
		ClientID string `json:"client_id"`
	} `json:"caller"`
	RemoteIP     string          `json:"remote_ip"`
	Destinations []auditDestJSON `json:"destinations"`
	Decision     string          `json:"decision"`
	Rule         string          `json:"rule"`
	RefusedBy    string          `json:"refused_by"`
	OverLimit    string          `json:"over_limit"`
	Error        string          `json:"error"`
	Pool         string          `json:"pool"`
	Status       int             `json:"status"`
	Duration     *float64        `json:"duration"`
	OperationID  string          `json:"operation_id"`
	Idempotency  string          `json:"idempotency"`
	// ReservationLost is the field's value, and its presence.
	ReservationLost *bool           `json:"reservation_lost"`
	Parts           []auditPartJSON `json:"parts"`
	CutByStop       string          `json:"cut_by_stop"`
}

type auditPartJSON struct {
	Part        int    `json:"part"`
	Operation   string `json:"operation"`
	OperationID string `json:"operation_id"`
}

type auditDestJSON struct {
	Property    string `json:"property"`
	Part        int    `json:"part"`
	Kind        string `json:"kind"`
	Destination string `json:"destination"`
	Region      string `json:"region"`
	Type        string `json:"type"`
	Emergency   bool   `json:"emergency"`
	DialString  bool   `json:"dial_string"`
	Decision    string `json:"decision"`
	Rule        string `json:"rule"`
}

// auditLines are the audit trail's lines in a log, each parsed as JSON.
func auditLines(t testing.TB, log string) []auditLine {
	t.Helper()
	var lines []auditLine
	for line := range strings.Lines(log) {
		if !strings.Contains(line, `"http.handlers.ucwa.audit"`) {
			continue
		}
		var a auditLine
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("an audit line is not JSON: %v: %s", err, line)
		}
		if a.Logger != "http.handlers.ucwa.audit" {
			continue
		}
		lines = append(lines, a)
	}
	return lines
}

// nextAudit waits for the audit line after the first n and returns it.
func (e guardEdge) nextAudit(t testing.TB, n int) auditLine {
	t.Helper()
	var lines []auditLine
	testkit.Eventually(t, "an audit line", func() bool {
		lines = auditLines(t, e.Logs().String())
		return len(lines) > n
	})
	if len(lines) != n+1 {
		t.Fatalf("%d audit lines after %d, want one more", len(lines), n)
	}
	return lines[n]
}

const (
	immediateForwardPath = opsApp + "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact"
	addPhoneAudioPath    = opsApp + "/communication/conversations/eee0/phoneAudio/addPhoneAudio"
	startOpsPath         = opsApp + "/communication/startPhoneAudio"
	startAudioPath       = opsApp + "/communication/startAudio"
	emergencyPath        = opsApp + "/communication/startEmergencyCall"
)

// guardCase is a request and what the edge must do with it.
type guardCase struct {
	name string
	path string
	body string // JSON, or a batch when batch is set
	// batch: body holds the parts of a batch (see batchBody).
	batch bool
	// status: 201 (delivered) or 403 (DialoutNotAllowed).
	status int
	// refused: the property and rule the 403 names.
	property, rule string
	// delivered: what the pool gets, in place of body.
	delivered string
	// audit: the line's operation, decision, rule, and its destinations'
	// properties, masked forms, regions and types.
	operation, decision, auditRule string
	dests                          []auditDestJSON
}

// run sends each case and checks the answer, the pool, the audit line
// and that no full number is in the log.
func (e guardEdge) run(t *testing.T, auth string, cases []guardCase, secrets []string) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.pool.Received())
			audits := len(auditLines(t, e.Logs().String()))
			req := testkit.Request{URL: tc.path, ContentType: "application/json", Body: tc.body, Header: http.Header{"Authorization": {auth}}}
			if tc.batch {
				req.URL, req.ContentType = opsApp+"/batch", batchType
			}
			resp := e.send(req)
			if resp.Status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, tc.status)
			}
			got := e.pool.Received()[before:]
			switch tc.status {
			case http.StatusForbidden:
				if len(got) != 0 {
					t.Fatalf("the pool got %d requests, want none", len(got))
				}
				assertUCWAError(t, resp, "Forbidden", "DialoutNotAllowed", []string{tc.property}, false)
				msg := ucwaError(t, resp.Body).Message
				if !strings.Contains(msg, tc.property+" is refused by the destination policy ("+tc.rule+":") {
					t.Errorf("message %q names not %s and %s", msg, tc.property, tc.rule)
				}
				if tc.batch && !strings.HasPrefix(msg, "Batch part ") {
					t.Errorf("message %q names no batch part", msg)
				}
			default:
				want := cmpOr(tc.delivered, tc.body)
				if len(got) != 1 || got[0].Body != want {
					t.Fatalf("the pool got %+v, want one request with %s", got, want)
				}
			}
			for _, s := range secrets {
				if strings.Contains(resp.Body, s) {
					t.Errorf("the answer holds %s: %s", s, resp.Body)
				}
			}
			a := e.nextAudit(t, audits)
			if a.Operation != tc.operation || a.Status != tc.status || a.Decision != tc.decision || a.Rule != tc.auditRule {
				t.Errorf("audit line %+v: want operation %s, status %d, decision %s, rule %s", a, tc.operation, tc.status, tc.decision, tc.auditRule)
			}
			if a.Application != "104" || a.Caller.Sub != callerSub || a.Caller.OID != callerOID || a.Caller.TID != callerTID ||
				a.Caller.ClientID != callerApp || a.RemoteIP != "127.0.0.1" || a.Duration == nil || *a.Duration < 0 {
				t.Errorf("audit line %+v: application, caller, remote_ip or duration wrong", a)
			}
			if tc.status == http.StatusForbidden {
				if a.RefusedBy != "destinations:"+tc.rule || a.Error != "Forbidden/DialoutNotAllowed" || a.Pool != "" {
					t.Errorf("audit line %+v: want refused by destinations, %s, no pool", a, tc.rule)
				}
			} else if a.RefusedBy != "" || a.Pool != "primary" {
				t.Errorf("audit line %+v: want no refusal and pool primary", a)
			}
			if !slices.Equal(a.Destinations, tc.dests) {
				t.Errorf("audit destinations\n%+v\nwant\n%+v", a.Destinations, tc.dests)
			}
		})
	}
	log := e.Logs().String()
	for _, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("the log holds %s", s)
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// startPart is a batch part: a startPhoneAudio of body.
func startPart(body string) string {
	return "POST " + startOpsPath + " HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + body
}

// startAudioPart is an inner request of a batch: a startAudio with body.
func startAudioPart(body string) string {
	return "POST " + startAudioPath + " HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + body
}

// TestDestinationPolicy: every kind of destination (dialled now, the
// caller's callback number, a number in a SIP URI, a forwarding target,
// one stored for later, one in a batch part) refused by a deny prefix is answered 403 DialoutNotAllowed
// and never delivered, and an allowed one is delivered; each gets an
// audit line with its masked destinations, the decision and the rule,
// and the metric counts them. No full number is logged.
func TestDestinationPolicy(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900 +1976
		}`)
	auth := callerBearer(t)
	dest := func(property, kind, masked, region, typ, decision, rule string) auditDestJSON {
		return auditDestJSON{Property: property, Kind: kind, Destination: masked, Region: region, Type: typ, Decision: decision, Rule: rule}
	}
	premium := dest("to", "dialled now", "+1900555****", "US", "premium_rate", "refused", "deny")
	home := dest("to", "dialled now", "+1425555****", "US", "fixed_line_or_mobile", "allowed", "default")
	inPart := func(d auditDestJSON) auditDestJSON { d.Part = 1; return d }
	cases := []guardCase{
		{name: "startPhoneAudio to a denied number", path: startOpsPath, body: `{"to":"+1 900 555 1234","operationId":"op-1"}`,
			status: 403, property: "to", rule: "deny", operation: "startPhoneAudio", decision: "refused", auditRule: "deny", dests: []auditDestJSON{premium}},
		{name: "startPhoneAudio to an allowed number", path: startOpsPath, body: `{"to":"+1 425 555 1234","operationId":"op-2"}`,
			status: 201, delivered: `{"to":"tel:+14255551234","operationId":"op-2"}`, operation: "startPhoneAudio", decision: "allowed", auditRule: "default", dests: []auditDestJSON{home}},
		{name: "addPhoneAudio calling back a denied number", path: addPhoneAudioPath, body: `{"to":"sip:john@contoso.com","phoneNumber":"+19005551234"}`,
			status: 403, property: "phoneNumber", rule: "deny", operation: "addPhoneAudio", decision: "refused", auditRule: "deny",
			dests: []auditDestJSON{
				{Property: "phoneNumber", Kind: "dialled now", Destination: "+1900555****", Region: "US", Type: "premium_rate", Decision: "refused", Rule: "deny"},
				{Property: "to", Kind: "dialled now", Destination: "sip:****@contoso.com", Decision: "allowed", Rule: "default"},
			}},
		{name: "addPhoneAudio calling back an allowed number", path: addPhoneAudioPath, body: `{"to":"sip:john@contoso.com","phoneNumber":"+14255551234"}`,
			status: 201, delivered: `{"to":"sip:john@contoso.com","phoneNumber":"tel:+14255551234"}`, operation: "addPhoneAudio", decision: "allowed", auditRule: "default",
			dests: []auditDestJSON{
				{Property: "phoneNumber", Kind: "dialled now", Destination: "+1425555****", Region: "US", Type: "fixed_line_or_mobile", Decision: "allowed", Rule: "default"},
				{Property: "to", Kind: "dialled now", Destination: "sip:****@contoso.com", Decision: "allowed", Rule: "default"},
			}},
		{name: "a denied number in a SIP URI", path: startOpsPath, body: `{"to":"sip:+19005551234@gw;user=phone"}`,
			status: 403, property: "to", rule: "deny", operation: "startPhoneAudio", decision: "refused", auditRule: "deny",
			dests: []auditDestJSON{dest("to", "dialled now", "sip:+1900555****@gw", "US", "premium_rate", "refused", "deny")}},
		{name: "an allowed number in a SIP URI", path: startOpsPath, body: `{"to":"sip:+1-425-555-1234@gw;user=phone"}`,
			status: 201, delivered: `{"to":"sip:+14255551234@gw;user=phone"}`, operation: "startPhoneAudio", decision: "allowed", auditRule: "default",
			dests: []auditDestJSON{dest("to", "dialled now", "sip:+1425555****@gw", "US", "fixed_line_or_mobile", "allowed", "default")}},
		{name: "forwarding to a denied number", path: immediateForwardPath, body: `{"target":"tel:+19005551234"}`,
			status: 403, property: "target", rule: "deny", operation: "immediateForwardToContact", decision: "refused", auditRule: "deny",
			dests: []auditDestJSON{dest("target", "forwarding target", "+1900555****", "US", "premium_rate", "refused", "deny")}},
		{name: "forwarding to an allowed number", path: immediateForwardPath, body: `{"target":"tel:+14255551234"}`,
			status: 201, operation: "immediateForwardToContact", decision: "allowed", auditRule: "default",
			dests: []auditDestJSON{dest("target", "forwarding target", "+1425555****", "US", "fixed_line_or_mobile", "allowed", "default")}},
		{name: "makeMeAvailable storing a denied number", path: opsApp + "/me/makeMeAvailable", body: `{"phoneNumber":"+19005551234"}`,
			status: 403, property: "phoneNumber", rule: "deny", operation: "makeMeAvailable", decision: "refused", auditRule: "deny",
			dests: []auditDestJSON{dest("phoneNumber", "stored for later", "+1900555****", "US", "premium_rate", "refused", "deny")}},
		{name: "makeMeAvailable storing an allowed number", path: opsApp + "/me/makeMeAvailable", body: `{"phoneNumber":"+14255551234"}`,
			status: 201, delivered: `{"phoneNumber":"tel:+14255551234"}`, operation: "makeMeAvailable", decision: "allowed", auditRule: "default",
			dests: []auditDestJSON{dest("phoneNumber", "stored for later", "+1425555****", "US", "fixed_line_or_mobile", "allowed", "default")}},
		{name: "a batch part to a denied number", batch: true, body: batchBody(startPart(`{"to":"+19005551234"}`)),
			status: 403, property: "to", rule: "deny", operation: "batch", decision: "refused", auditRule: "deny", dests: []auditDestJSON{inPart(premium)}},
		{name: "a batch part to an allowed number", batch: true, body: batchBody(startPart(`{"to":"+14255551234"}`)),
			status: 201, delivered: batchBody(startPart(`{"to":"tel:+14255551234"}`)), operation: "batch", decision: "allowed", auditRule: "default",
			dests: []auditDestJSON{inPart(home)}},
	}
	e.run(t, auth, cases, []string{"9005551234", "4255551234"})
	for sample, want := range map[string]float64{
		`caddy_ucwa_destinations_total{decision="refused",rule="deny"}`:       6,
		`caddy_ucwa_destinations_total{decision="allowed",rule="default"}`:    8,
		`caddy_ucwa_destinations_total{decision="refused",rule="deny_types"}`: 0,
	} {
		if got := e.Metric(sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
}

// TestDestinationRules: allow_regions, allow before deny_types, report
// mode, and emergency numbers and calls under a policy that refuses
// every other number and every SIP domain and a limit of one call (four
// emergency calls pass it); each with its audit line and metric.
func TestDestinationRules(t *testing.T) {
	auth := callerBearer(t)
	number := func(property, kind, masked, region, typ, decision, rule string) auditDestJSON {
		return auditDestJSON{Property: property, Kind: kind, Destination: masked, Region: region, Type: typ, Decision: decision, Rule: rule}
	}
	to := func(masked, region, typ, decision, rule string) auditDestJSON {
		return number("to", "dialled now", masked, region, typ, decision, rule)
	}
	emergency := func(d auditDestJSON) auditDestJSON { d.Emergency = true; return d }
	for _, tc := range []struct {
		name    string
		region  string // default_region; "" for US
		policy  string
		options string // more ucwa options
		cases   []guardCase
		secrets []string
		metrics map[string]float64
		// logged: a line of the handler's log must hold these.
		logged []string
	}{
		{name: "allow_regions US", policy: "allow_regions US", cases: []guardCase{
			{name: "a number in GB", path: startOpsPath, body: `{"to":"+44 20 7123 4567"}`, status: 403, property: "to", rule: "allow_regions",
				operation: "startPhoneAudio", decision: "refused", auditRule: "allow_regions",
				dests: []auditDestJSON{to("+44207123****", "GB", "fixed_line", "refused", "allow_regions")}},
			{name: "a number in the US", path: startOpsPath, body: `{"to":"+14255551234"}`, status: 201, delivered: `{"to":"tel:+14255551234"}`,
				operation: "startPhoneAudio", decision: "allowed", auditRule: "default",
				dests: []auditDestJSON{to("+1425555****", "US", "fixed_line_or_mobile", "allowed", "default")}},
		}, secrets: []string{"2071234567", "4255551234"}, metrics: map[string]float64{
			`caddy_ucwa_destinations_total{decision="refused",rule="allow_regions"}`: 1,
			`caddy_ucwa_destinations_total{decision="allowed",rule="default"}`:       1,
		}},
		// Carriers route every +7 number into Russia or Kazakhstan,
		// including those no numbering plan phonenumbers knows lists
		// (revenue-share fraud dials such ranges).
		{name: "deny_regions RU", policy: "deny_regions RU", cases: []guardCase{
			{name: "a +7 number of no known region", path: startOpsPath, body: `{"to":"+7 600 123 4567"}`, status: 403, property: "to", rule: "deny_regions",
				operation: "startPhoneAudio", decision: "refused", auditRule: "deny_regions",
				dests: []auditDestJSON{to("+7600123****", "", "unknown", "refused", "deny_regions")}},
			{name: "a +7 number in RU", path: startOpsPath, body: `{"to":"+7 900 123 4567"}`, status: 403, property: "to", rule: "deny_regions",
				operation: "startPhoneAudio", decision: "refused", auditRule: "deny_regions",
				dests: []auditDestJSON{to("+7900123****", "RU", "mobile", "refused", "deny_regions")}},
			{name: "a +1 number of no known region", path: startOpsPath, body: `{"to":"+1 999 555 1234"}`, status: 201, delivered: `{"to":"tel:+19995551234"}`,
				operation: "startPhoneAudio", decision: "allowed", auditRule: "default",
				dests: []auditDestJSON{to("+1999555****", "", "unknown", "allowed", "default")}},
		}, secrets: []string{"6001234567", "9001234567", "9995551234"}, metrics: map[string]float64{
			`caddy_ucwa_destinations_total{decision="refused",rule="deny_regions"}`: 2,
			`caddy_ucwa_destinations_total{decision="allowed",rule="default"}`:      1,
		}},
		// A premium-rate number and a digit more is possible in Japan,
		// whose numbers have many lengths, and typed unknown; a switch
		// completing the call on the digits that make a number rings the
		// premium line, so the default deny_types refuses it.
		{name: "deny_types in Japan", region: "JP", policy: "allow_regions JP KR", cases: []guardCase{
			{name: "a premium number and a digit", path: startOpsPath, body: `{"to":"+81 990 123 456 9"}`, status: 403, property: "to", rule: "deny_types",
				operation: "startPhoneAudio", decision: "refused", auditRule: "deny_types",
				dests: []auditDestJSON{to("+81990123****", "JP", "unknown", "refused", "deny_types")}},
			{name: "a premium number and a digit, nationally", path: startOpsPath, body: `{"to":"0990-123-4569"}`, status: 403, property: "to", rule: "deny_types",
				operation: "startPhoneAudio", decision: "refused", auditRule: "deny_types",
				dests: []auditDestJSON{to("+81990123****", "JP", "unknown", "refused", "deny_types")}},
			{name: "a number in Tokyo", path: startOpsPath, body: `{"to":"03-1234-5678"}`, status: 201, delivered: `{"to":"tel:+81312345678"}`,
				operation: "startPhoneAudio", decision: "allowed", auditRule: "default",
				dests: []auditDestJSON{to("+8131234****", "JP", "fixed_line", "allowed", "default")}},
		}, secrets: []string{"9901234569", "312345678"}, metrics: map[string]float64{
			`caddy_ucwa_destinations_total{decision="refused",rule="deny_types"}`: 2,
			`caddy_ucwa_destinations_total{decision="allowed",rule="default"}`:    1,
		}},
		{name: "allow before deny_types", policy: "allow +1900555", cases: []guardCase{
			{name: "a premium number of an allow prefix", path: startOpsPath, body: `{"to":"+19005551234"}`, status: 201, delivered: `{"to":"tel:+19005551234"}`,
				operation: "startPhoneAudio", decision: "allowed", auditRule: "allow",
				dests: []auditDestJSON{to("+1900555****", "US", "premium_rate", "allowed", "allow")}},
			{name: "a premium number of no allow prefix", path: startOpsPath, body: `{"to":"+19004441234"}`, status: 403, property: "to", rule: "deny_types",
				operation: "startPhoneAudio", decision: "refused", auditRule: "deny_types",
				dests: []auditDestJSON{to("+1900444****", "US", "premium_rate", "refused", "deny_types")}},
		}, secrets: []string{"9005551234", "9004441234"}, metrics: map[string]float64{
			`caddy_ucwa_destinations_total{decision="allowed",rule="allow"}`:      1,
			`caddy_ucwa_destinations_total{decision="refused",rule="deny_types"}`: 1,
		}},
		// A PBX that dials an extension through would dial an
		// international number behind an allowed one.
		{name: "max_extension_digits before allow", policy: "allow +1425555\n\t\t\tmax_extension_digits 4", cases: []guardCase{
			{name: "an allowed number with a long extension", path: startOpsPath, body: `{"to":"+14255551234;ext=011442071234567"}`, status: 403, property: "to", rule: "max_extension_digits",
				operation: "startPhoneAudio", decision: "refused", auditRule: "max_extension_digits",
				dests: []auditDestJSON{to("+1425555****;ext=****", "US", "fixed_line_or_mobile", "refused", "max_extension_digits")}},
			{name: "an allowed number with a short extension", path: startOpsPath, body: `{"to":"+1 425 555 1234 x1234"}`, status: 201, delivered: `{"to":"tel:+14255551234;ext=1234"}`,
				operation: "startPhoneAudio", decision: "allowed", auditRule: "allow",
				dests: []auditDestJSON{to("+1425555****;ext=****", "US", "fixed_line_or_mobile", "allowed", "allow")}},
			// An escaped ';' and '=' in a telephone SIP user are an
			// extension's too, forwarded unescaped as judged.
			{name: "an escaped long extension of a telephone SIP user", path: startOpsPath, body: `{"to":"sip:+14255551234%3Bext%3D19005551234@gw.contoso.com;user=phone"}`, status: 403, property: "to", rule: "max_extension_digits",
				operation: "startPhoneAudio", decision: "refused", auditRule: "max_extension_digits",
				dests: []auditDestJSON{to("sip:+1425555****;ext=****@gw.contoso.com", "US", "fixed_line_or_mobile", "refused", "max_extension_digits")}},
			{name: "an escaped short extension of a telephone SIP user", path: startOpsPath, body: `{"to":"sip:+14255551234%3bext=12@gw.contoso.com;user=phone"}`, status: 201,
				delivered: `{"to":"sip:+14255551234;ext=12@gw.contoso.com;user=phone"}`, operation: "startPhoneAudio", decision: "allowed", auditRule: "allow",
				dests: []auditDestJSON{to("sip:+1425555****;ext=****@gw.contoso.com", "US", "fixed_line_or_mobile", "allowed", "allow")}},
		}, secrets: []string{"4255551234", "2071234567", "9005551234"}, metrics: map[string]float64{
			`caddy_ucwa_destinations_total{decision="refused",rule="max_extension_digits"}`: 2,
			`caddy_ucwa_destinations_total{decision="allowed",rule="allow"}`:                2,
		}},
		// By default an extension of 5 or more digits is refused: it is
		// too often a premium service's short code where the number is.
		{name: "max_extension_digits by default", policy: "allow +442071234567", cases: []guardCase{
			{name: "an allowed number and a 6-digit short code", path: startOpsPath, body: `{"to":"+44 20 7123 4567;ext=118118"}`, status: 403, property: "to", rule: "max_extension_digits",
				operation: "startPhoneAudio", decision: "refused", auditRule: "max_extension_digits",
				dests: []auditDestJSON{to("+44207123****;ext=****", "GB", "fixed_line", "refused", "max_extension_digits")}},
			{name: "a number and 0 and a 5-digit short code", path: startOpsPath, body: `{"to":"+49 30 123456 x011880"}`, status: 403, property: "to", rule: "max_extension_digits",
				operation: "startPhoneAudio", decision: "refused", auditRule: "max_extension_digits",
				dests: []auditDestJSON{to("+493012****;ext=****", "DE", "fixed_line", "refused", "max_extension_digits")}},
			{name: "an allowed number and a 4-digit extension", path: startOpsPath, body: `{"to":"+44 20 7123 4567 x1234"}`, status: 201, delivered: `{"to":"tel:+442071234567;ext=1234"}`,
				operation: "startPhoneAudio", decision: "allowed", auditRule: "allow",
				dests: []auditDestJSON{to("+44207123****;ext=****", "GB", "fixed_line", "allowed", "allow")}},
		}, secrets: []string{"2071234567", "30123456", "118118", "11880"}, metrics: map[string]float64{
			`caddy_ucwa_destinations_total{decision="refused",rule="max_extension_digits"}`: 2,
			`caddy_ucwa_destinations_total{decision="allowed",rule="allow"}`:                1,
		}},
		// A request with two refused destinations is refused, and
		// audited, by its first (phoneNumber comes before to): the answer
		// names the destination the client must change first, and the
		// audit line the rule that refused the request.
		{name: "the first of two refused destinations", policy: "allow_regions US", cases: []guardCase{
			{name: "a callback number abroad and a premium number", path: startOpsPath, body: `{"phoneNumber":"+44 20 7123 4567","to":"+1 900 555 1234"}`,
				status: 403, property: "phoneNumber", rule: "allow_regions", operation: "startPhoneAudio", decision: "refused", auditRule: "allow_regions",
				dests: []auditDestJSON{number("phoneNumber", "dialled now", "+44207123****", "GB", "fixed_line", "refused", "allow_regions"),
					to("+1900555****", "US", "premium_rate", "refused", "deny_types")}},
		}, secrets: []string{"2071234567", "9005551234"}, metrics: map[string]float64{
			`caddy_ucwa_destinations_total{decision="refused",rule="allow_regions"}`: 1,
			`caddy_ucwa_destinations_total{decision="refused",rule="deny_types"}`:    1,
		}},
		// So report mode names the first it would refuse, not the last.
		{name: "the first of two destinations report mode would refuse", policy: "mode report\n\t\t\tallow_regions US", cases: []guardCase{
			{name: "a callback number abroad and a premium number", path: startOpsPath, body: `{"phoneNumber":"+44 20 7123 4567","to":"+1 900 555 1234"}`,
				status: 201, delivered: `{"phoneNumber":"tel:+442071234567","to":"tel:+19005551234"}`,
				operation: "startPhoneAudio", decision: "would_refuse", auditRule: "allow_regions",
				dests: []auditDestJSON{number("phoneNumber", "dialled now", "+44207123****", "GB", "fixed_line", "would_refuse", "allow_regions"),
					to("+1900555****", "US", "premium_rate", "would_refuse", "deny_types")}},
		}, secrets: []string{"2071234567", "9005551234"}, metrics: map[string]float64{
			`caddy_ucwa_destinations_total{decision="would_refuse",rule="allow_regions"}`: 1,
			`caddy_ucwa_destinations_total{decision="would_refuse",rule="deny_types"}`:    1,
		}},
		{name: "report mode", policy: "mode report\n\t\t\tdeny +1900", cases: []guardCase{
			{name: "a denied number, delivered", path: startOpsPath, body: `{"to":"+19005551234","operationId":"op-19005551234"}`, status: 201,
				delivered: `{"to":"tel:+19005551234","operationId":"op-19005551234"}`, operation: "startPhoneAudio", decision: "would_refuse", auditRule: "deny",
				dests: []auditDestJSON{to("+1900555****", "US", "premium_rate", "would_refuse", "deny")}},
			{name: "a forwarding target in a batch, delivered", batch: true, status: 201,
				body:      batchBody("POST " + immediateForwardPath + " HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + `{"target":"+19005551234"}`),
				delivered: batchBody("POST " + immediateForwardPath + " HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + `{"target":"tel:+19005551234"}`),
				operation: "batch", decision: "would_refuse", auditRule: "deny",
				dests: []auditDestJSON{{Property: "target", Part: 1, Kind: "forwarding target", Destination: "+1900555****", Region: "US", Type: "premium_rate", Decision: "would_refuse", Rule: "deny"}}},
		}, secrets: []string{"9005551234"}, metrics: map[string]float64{
			`caddy_ucwa_destinations_total{decision="would_refuse",rule="deny"}`: 2,
		}, logged: []string{`"destination policy would refuse this destination (report mode): not refused by the policy"`, `"operation":"startPhoneAudio"`,
			`"property":"to"`, `"rule":"deny"`, `"destination":"+1900555****"`}},
		{name: "emergency under a policy that refuses everything else, and a limit of one call",
			options: "limit calls 1 per 1h",
			policy:  "deny +1 +2 +3 +4 +5 +6 +7 +8 +9\n\t\t\tallow_regions KP\n\t\t\tdeny_types fixed_line fixed_line_or_mobile unknown\n\t\t\tsip_domains refused.invalid",
			cases: []guardCase{
				{name: "startEmergencyCall to 911", path: emergencyPath, body: `{"to":"911","address":"1 Main St"}`, status: 201, delivered: `{"to":"tel:911","address":"1 Main St"}`,
					operation: "startEmergencyCall", decision: "allowed", auditRule: "emergency",
					dests: []auditDestJSON{emergency(to("911", "US", "unknown", "allowed", "emergency"))}},
				// The emergency call is never refused, and what it reaches
				// is judged all the same.
				{name: "startEmergencyCall to a SIP address", path: emergencyPath, body: `{"to":"sip:psap@elsewhere.example"}`, status: 201,
					operation: "startEmergencyCall", decision: "would_refuse", auditRule: "sip_domains",
					dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@elsewhere.example", Decision: "would_refuse", Rule: "sip_domains"}}},
				{name: "startEmergencyCall to a denied number", path: emergencyPath, body: `{"to":"+1 900 555 1234"}`, status: 201, delivered: `{"to":"tel:+19005551234"}`,
					operation: "startEmergencyCall", decision: "would_refuse", auditRule: "deny",
					dests: []auditDestJSON{to("+1900555****", "US", "premium_rate", "would_refuse", "deny")}},
				{name: "startPhoneAudio to 911", path: startOpsPath, body: `{"to":"911"}`, status: 201, delivered: `{"to":"tel:911"}`,
					operation: "startPhoneAudio", decision: "allowed", auditRule: "emergency",
					dests: []auditDestJSON{emergency(to("911", "US", "unknown", "allowed", "emergency"))}},
				// An audio call rings no phone of the caller's: the
				// emergency number takes nothing, even in a batch.
				{name: "startAudio to 112 in a batch", batch: true, body: batchBody(startAudioPart(`{"to":"112"}`)), status: 201,
					delivered: batchBody(startAudioPart(`{"to":"tel:112"}`)), operation: "batch", decision: "allowed", auditRule: "emergency",
					dests: []auditDestJSON{{Property: "to", Part: 1, Kind: "dialled now", Destination: "112", Region: "US", Type: "unknown", Emergency: true, Decision: "allowed", Rule: "emergency"}}},
				{name: "startPhoneAudio to another number", path: startOpsPath, body: `{"to":"+14255551234"}`, status: 403, property: "to", rule: "deny",
					operation: "startPhoneAudio", decision: "refused", auditRule: "deny",
					dests: []auditDestJSON{to("+1425555****", "US", "fixed_line_or_mobile", "refused", "deny")}},
			}, secrets: []string{"4255551234", "9005551234"}, metrics: map[string]float64{
				`caddy_ucwa_destinations_total{decision="allowed",rule="emergency"}`:          3,
				`caddy_ucwa_destinations_total{decision="refused",rule="deny"}`:               1,
				`caddy_ucwa_destinations_total{decision="would_refuse",rule="deny"}`:          1,
				`caddy_ucwa_destinations_total{decision="would_refuse",rule="sip_domains"}`:   1,
				`caddy_ucwa_destinations_total{decision="would_refuse",rule="allow_regions"}`: 0,
			}, logged: []string{`"destination policy would refuse this destination of an emergency call: not refused by the policy, as no emergency call is"`,
				`"operation":"startEmergencyCall"`, `"rule":"deny"`, `"destination":"+1900555****"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			region := tc.region
			if region == "" {
				region = "US"
			}
			e := startGuardEdgeIn(t, region, "destinations {\n\t\t\t"+tc.policy+"\n\t\t}\n\t\t"+tc.options)
			e.run(t, auth, tc.cases, tc.secrets)
			for sample, want := range tc.metrics {
				if got := e.Metric(sample); got != want {
					t.Errorf("%s = %v, want %v", sample, got, want)
				}
			}
			if tc.logged != nil {
				e.Logs().Wait(t, tc.logged...)
			}
		})
	}
}

// TestDestinationBatchCountsAlike: report mode counts what enforce
// refuses, destination by destination, also in a batch: enforce judges
// every part of a refused batch, not only those up to the first part it
// refuses, so that the refused count of a policy is the would_refuse
// count it had in report mode. The batch is refused by its first refused
// part all the same, and nothing is delivered.
func TestDestinationBatchCountsAlike(t *testing.T) {
	auth := callerBearer(t)
	batch := batchBody(startPart(`{"to":"+19005551234"}`), startPart(`{"to":"+14255551234"}`), startPart(`{"to":"+19005554321"}`))
	for _, mode := range []struct {
		name, decision string
		status         int
	}{{"enforce", "refused", http.StatusForbidden}, {"report", "would_refuse", http.StatusCreated}} {
		t.Run(mode.name, func(t *testing.T) {
			e := startGuardEdge(t, "destinations {\n\t\t\tmode "+mode.name+"\n\t\t\tdeny +1900\n\t\t}")
			resp := e.send(testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Body: batch, Header: http.Header{"Authorization": {auth}}})
			if resp.Status != mode.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, mode.status)
			}
			if mode.status == http.StatusForbidden {
				if msg := ucwaError(t, resp.Body).Message; !strings.HasPrefix(msg, "Batch part 1: to is refused by the destination policy (deny:") {
					t.Errorf("message %q names not the first refused part", msg)
				}
				if got := e.pool.Received(); len(got) != 0 {
					t.Fatalf("the pool got %d requests, want none", len(got))
				}
			}
			// A part that fails its own checks ends the batch in report
			// mode: what follows it is counted in neither mode, and
			// enforce answers for the first refused part all the same.
			failing := batchBody(startPart(`{"to":"+19005551234"}`), startPart(`{"to":"not a number"}`), startPart(`{"to":"+19005554321"}`))
			resp = e.send(testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Body: failing, Header: http.Header{"Authorization": {auth}}})
			if want := map[string]int{"enforce": http.StatusForbidden, "report": http.StatusBadRequest}[mode.name]; resp.Status != want {
				t.Fatalf("a batch with a failing part: status %d (%s), want %d", resp.Status, resp.Body, want)
			}
			if got := e.pool.Received(); len(got) != map[string]int{"enforce": 0, "report": 1}[mode.name] {
				t.Fatalf("the pool got %d requests", len(got))
			}
			for sample, want := range map[string]float64{
				`caddy_ucwa_destinations_total{decision="` + mode.decision + `",rule="deny"}`: 3,
				`caddy_ucwa_destinations_total{decision="allowed",rule="default"}`:            1,
			} {
				if got := e.Metric(sample); got != want {
					t.Errorf("%s = %v, want %v", sample, got, want)
				}
			}
		})
	}
}

// TestDestinationWouldRefuseLogClaimsNoDelivery: the line that logs a
// destination the policy would refuse but lets pass is written when the
// destination is judged, before the request's outcome is known, so it
// claims no delivery: in report mode, a batch whose later part fails
// (400, nothing delivered); in enforce mode, a batch whose
// startEmergencyCall part comes before a refused part (403). Each line
// says the policy did not refuse the destination, and none says
// "delivered".
func TestDestinationWouldRefuseLogClaimsNoDelivery(t *testing.T) {
	auth := callerBearer(t)
	emergencyPart := "POST " + emergencyPath + " HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + `{"to":"+19005551234"}`
	for _, tc := range []struct {
		name, policy, batch string
		status              int
		logged              string
	}{
		{"report mode, a later part fails", "mode report\n\t\t\tdeny +1900",
			batchBody(startPart(`{"to":"+19005551234"}`), startPart(`{"to":"not a number"}`)), http.StatusBadRequest,
			`"msg":"destination policy would refuse this destination (report mode): not refused by the policy"`},
		{"enforce mode, an emergency call before a refused part", "deny +1900",
			batchBody(emergencyPart, startPart(`{"to":"+19005551234"}`)), http.StatusForbidden,
			`"msg":"destination policy would refuse this destination of an emergency call: not refused by the policy, as no emergency call is"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startGuardEdge(t, "destinations {\n\t\t\t"+tc.policy+"\n\t\t}")
			audits := len(auditLines(t, e.Logs().String()))
			resp := e.send(testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Body: tc.batch, Header: http.Header{"Authorization": {auth}}})
			if resp.Status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, tc.status)
			}
			if a := e.nextAudit(t, audits); a.Status != tc.status {
				t.Fatalf("the audit line has status %d, want %d", a.Status, tc.status)
			}
			if got := e.pool.Received(); len(got) != 0 {
				t.Fatalf("the pool got %d requests, want none", len(got))
			}
			lines := e.Logs().Lines("would refuse this destination")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.logged) || !strings.Contains(lines[0], `"part":1`) {
				t.Fatalf("the lines of a destination the policy would refuse are %q, want one with %s for part 1", lines, tc.logged)
			}
			if strings.Contains(lines[0], "delivered") {
				t.Errorf("the line claims a delivery that did not happen: %s", lines[0])
			}
		})
	}
}

// TestDestinationNationallyAbroad: a number of the default region's
// country code that, dialled nationally (its national prefix and
// national number), starts with the region's international prefix is
// refused as no number (400 NormalizationFailed, nothing delivered): a
// gateway that turns +81 numbers into Japan's national form dials
// +81 10 683 1234 as 010 683 1234, a call to Niue, where the policy
// judged a Japanese number of allow_regions JP; so does an Indian one
// +91 0 6831234 as 006831234. Every spelling the edge forwards in E.164
// is refused; a number of the region is delivered.
func TestDestinationNationallyAbroad(t *testing.T) {
	auth := callerBearer(t)
	for _, c := range []struct {
		region, policy string
		refused        []string
		allowed        guardCase
	}{
		{"JP", "allow_regions JP KR", []string{"+81 10 683 1234", "tel:+81-10-683-1234", "sip:+81106831234@gw.contoso.com;user=phone", "+81 10 44 20 7946 00"},
			guardCase{name: "a number in Tokyo", path: startOpsPath, body: `{"to":"03-1234-5678"}`, status: 201, delivered: `{"to":"tel:+81312345678"}`,
				operation: "startPhoneAudio", decision: "allowed", auditRule: "default",
				dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "+8131234****", Region: "JP", Type: "fixed_line", Decision: "allowed", Rule: "default"}}}},
		{"IN", "allow_regions IN NP", []string{"+91 0 6831234", "tel:+91-00-683-1234", "sip:+9106831234@gw.contoso.com;user=phone"},
			guardCase{name: "a mobile in India", path: startOpsPath, body: `{"to":"098123 45678"}`, status: 201, delivered: `{"to":"tel:+919812345678"}`,
				operation: "startPhoneAudio", decision: "allowed", auditRule: "default",
				dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "+91981234****", Region: "IN", Type: "mobile", Decision: "allowed", Rule: "default"}}}},
	} {
		t.Run(c.region, func(t *testing.T) {
			e := startGuardEdgeIn(t, c.region, "destinations {\n\t\t\t"+c.policy+"\n\t\t}")
			for _, to := range c.refused {
				e.assertNotNormalized(t, auth, to)
			}
			e.run(t, auth, []guardCase{c.allowed}, []string{"6831234", "312345678", "9812345678"})
		})
	}
}
