package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestDestinationDialStrings: a SIP URI whose user is digits without '+'
// or user=phone, at a host sip_domains allows (the site's own gateway),
// is judged as the numbers a gateway could dial from it: a premium
// number in national form, with separators or after the international
// prefix is answered 403 and never delivered, a dial string with a
// pause, a DTMF key or digits behind a number too, and so is a user whose
// parameters hold a number (sip:x;19005551234@gw, sip:%3B19005551234@gw:
// a gateway that keeps only the digits of its user dials them); an
// allowed one is delivered byte for byte, as written; an extension, and
// a name with a few digits in a parameter, stay names. The audit line
// shows the reading, masked.
func TestDestinationDialStrings(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			allow_regions US CA
			sip_domains contoso.com *.contoso.com
		}`)
	auth := callerBearer(t)
	dialled := func(masked, region, typ, decision, rule string) []auditDestJSON {
		return []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: masked, Region: region, Type: typ, DialString: true, Decision: decision, Rule: rule}}
	}
	refused := func(name, to, rule string, dests []auditDestJSON) guardCase {
		return guardCase{name: name, path: startOpsPath, body: `{"to":"` + to + `"}`, status: 403, property: "to", rule: rule,
			operation: "startPhoneAudio", decision: "refused", auditRule: rule, dests: dests}
	}
	delivered := func(name, to string, dests []auditDestJSON) guardCase {
		return guardCase{name: name, path: startOpsPath, body: `{"to":"` + to + `","operationId":"op-1"}`, status: 201,
			operation: "startPhoneAudio", decision: "allowed", auditRule: "default", dests: dests}
	}
	premium := dialled("sip:+1900555****@gw.contoso.com", "US", "premium_rate", "refused", "deny_types")
	cases := []guardCase{
		refused("digits of a premium number", "sip:19005551234@gw.contoso.com", "deny_types", premium),
		refused("with separators", "sip:1-900-555-1234@gw.contoso.com", "deny_types", premium),
		refused("in parentheses, without the 1", "sip:(900)555-1234@gw.contoso.com", "deny_types", premium),
		refused("after the international prefix", "sip:011442071234567@gw.contoso.com", "allow_regions",
			dialled("sip:+44207123****@gw.contoso.com", "GB", "fixed_line", "refused", "allow_regions")),
		refused("a dial string with a pause", "sip:9,19005551234@gw.contoso.com", "dial_string",
			[]auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@gw.contoso.com", DialString: true, Decision: "refused", Rule: "dial_string"}}),
		refused("a dial string with a DTMF key", "sip:19005551234D@gw.contoso.com", "dial_string",
			[]auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@gw.contoso.com", DialString: true, Decision: "refused", Rule: "dial_string"}}),
		refused("with underscores and a Unicode hyphen", "sip:1900_555%E2%80%901234@gw.contoso.com", "deny_types", premium),
		refused("with digits behind the number", "sip:1900555123499@gw.contoso.com", "dial_string",
			[]auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@gw.contoso.com", DialString: true, Decision: "refused", Rule: "dial_string"}}),
		refused("a name whose parameter is a number", "sip:x;19005551234@gw.contoso.com", "dial_string",
			[]auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@gw.contoso.com", DialString: true, Decision: "refused", Rule: "dial_string"}}),
		refused("a number after an escaped ';' alone", "sip:%3B19005551234@gw.contoso.com", "dial_string",
			[]auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@gw.contoso.com", DialString: true, Decision: "refused", Rule: "dial_string"}}),
		delivered("digits of an allowed number", "sip:14255551234@gw.contoso.com",
			dialled("sip:+1425555****@gw.contoso.com", "US", "fixed_line_or_mobile", "allowed", "default")),
		delivered("an allowed number with separators and a parameter", "sip:1-425-555-1234;day=tuesday@gw.contoso.com;transport=tls",
			dialled("sip:+1425555****@gw.contoso.com", "US", "fixed_line_or_mobile", "allowed", "default")),
		delivered("an extension is a name", "sip:1234@contoso.com",
			[]auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@contoso.com", Decision: "allowed", Rule: "default"}}),
		delivered("a name and a few digits in a parameter is a name", "sip:alice;room=1234@contoso.com",
			[]auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@contoso.com", Decision: "allowed", Rule: "default"}}),
	}
	e.run(t, auth, cases, []string{"9005551234", "2071234567", "4255551234"})
	for sample, want := range map[string]float64{
		`caddy_ucwa_destinations_total{decision="refused",rule="deny_types"}`:    4,
		`caddy_ucwa_destinations_total{decision="refused",rule="allow_regions"}`: 1,
		`caddy_ucwa_destinations_total{decision="refused",rule="dial_string"}`:   5,
		`caddy_ucwa_destinations_total{decision="allowed",rule="default"}`:       4,
	} {
		if got := e.Metric(sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
}

// TestDestinationNationalLength: under the default policy with
// default_region US, a SIP user of more digits than a national number
// is judged also as its first ten, which a NANP switch completes the
// call on: sip:900555123400@gw.contoso.com, whose only other reading is
// the Turkish +90 0555123400, is +1 900 555 1234 to a US gateway,
// answered 403 deny_types and never delivered, with separators, escaped
// or as a name of its digits alike; as a tel: URI, a bare number or a
// telephone SIP user it is no possible number (400, never delivered).
// A long SIP name, an allowed number with a digit more, and a number
// with an extension are delivered as before.
func TestDestinationNationalLength(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			sip_domains contoso.com *.contoso.com
		}`)
	auth := callerBearer(t)
	premium := []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:+1900555****@gw.contoso.com", Region: "US", Type: "premium_rate",
		DialString: true, Decision: "refused", Rule: "deny_types"}}
	refused := func(name, to string) guardCase {
		return guardCase{name: name, path: startOpsPath, body: `{"to":"` + to + `"}`, status: 403, property: "to", rule: "deny_types",
			operation: "startPhoneAudio", decision: "refused", auditRule: "deny_types", dests: premium}
	}
	delivered := func(name, to, forwarded string, dest auditDestJSON) guardCase {
		dest.Property, dest.Kind, dest.Decision, dest.Rule = "to", "dialled now", "allowed", "default"
		c := guardCase{name: name, path: startOpsPath, body: `{"to":"` + to + `","operationId":"op-1"}`, status: 201,
			operation: "startPhoneAudio", decision: "allowed", auditRule: "default", dests: []auditDestJSON{dest}}
		if forwarded != "" {
			c.delivered = `{"to":"` + forwarded + `","operationId":"op-1"}`
		}
		return c
	}
	cases := []guardCase{
		refused("two digits behind a premium number", "sip:900555123400@gw.contoso.com"),
		refused("with separators", "sip:(900)-555-1234-00@gw.contoso.com"),
		refused("escaped", "sip:%39%30%30555123400@gw.contoso.com"),
		refused("a name of its digits", "sip:x900555123400@gw.contoso.com"),
		refused("with a URI parameter", "sip:900555123400@gw.contoso.com;transport=tls"),
		delivered("a long SIP name", "sip:firstname.lastname.2024@contoso.com", "",
			auditDestJSON{Destination: "sip:****@contoso.com"}),
		delivered("an allowed number and a digit more", "sip:61255512345@gw.contoso.com", "",
			auditDestJSON{Destination: "sip:+6125551****@gw.contoso.com", Region: "AU", Type: "fixed_line", DialString: true}),
		delivered("an allowed number with an extension", "tel:+14255551234;ext=12", "",
			auditDestJSON{Destination: "+1425555****;ext=****", Region: "US", Type: "fixed_line_or_mobile"}),
		delivered("a telephone SIP user with an extension", "sip:+14255551234;ext=12@gw.contoso.com;user=phone", "",
			auditDestJSON{Destination: "sip:+1425555****;ext=****@gw.contoso.com", Region: "US", Type: "fixed_line_or_mobile"}),
	}
	e.run(t, auth, cases, []string{"9005551234", "55512345", "4255551234"})
	for _, to := range []string{"tel:900555123400", "900555123400", "sip:900555123400@gw.contoso.com;user=phone"} {
		e.assertNotNormalized(t, auth, to)
	}
	resp := e.send(testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"sip:900555123400@gw.contoso.com"}`,
		Header: http.Header{"Authorization": {auth}}})
	if msg := ucwaError(t, resp.Body).Message; !strings.Contains(msg, "its SIP user's digits are such a number as a gateway may dial them") {
		t.Errorf("message %q does not say the SIP user's digits are such a number", msg)
	}
	if got, want := e.Metric(`caddy_ucwa_destinations_total{decision="refused",rule="deny_types"}`), 6.0; got != want {
		t.Errorf("refused by deny_types: %v, want %v", got, want)
	}
}

// TestLimitDialStrings: the limits count a SIP URI whose user is digits
// a gateway could dial as the number it may be, international when a
// reading of it is outside default_region (a name whose parameter is a
// number, which no rule can judge, as international); an extension counts
// nothing. Audio calls, which ring no phone of the caller's: only their to counts.
func TestLimitDialStrings(t *testing.T) {
	e := startLimitEdge(t, "store memory", `limit calls 3 per 1h
		limit international 1 per 24h international`)
	alice := caller{"tenant-1", "alice"}.header(t)
	for i, s := range []struct {
		to      string
		limited string
	}{
		{"sip:1234@contoso.com", ""},
		{"sip:1234@contoso.com", ""},
		{"sip:1234@contoso.com", ""},
		{"sip:1234@contoso.com", ""},
		{"sip:14255551234@gw.contoso.com", ""},
		{"sip:442071234567@gw.contoso.com", ""},
		{"sip:011442071234567@gw.contoso.com", "international"},
		{"sip:9,14255551234@gw.contoso.com", "international"},
		{"sip:x;442071234567@gw.contoso.com", "international"},
		{"sip:1-425-555-1234@gw.contoso.com", ""},
		{"sip:4255551234@gw.contoso.com", "calls"},
	} {
		resp := e.send(audioCallTo(s.to, alice))
		if s.limited != "" {
			assertLimited(t, resp, s.limited, 24*3600)
			continue
		}
		if resp.Status != http.StatusCreated {
			t.Fatalf("call %d: %d %s", i+1, resp.Status, resp.Body)
		}
	}
	if got := e.pool.Requests.Load(); got != 7 {
		t.Errorf("the pool got %d requests, want 7", got)
	}
}

// TestDestinationOutsideLine: with outside_line, a dial string that
// starts with a prefix the site's gateways take for an outside line is
// judged also as the digits after it: sip:919005551234@gw, an Indian
// number as written, rings +1 900 555 1234 at a gateway that takes 9,
// and is refused, the message saying so; a number after the prefix that
// the policy allows is delivered byte for byte. The audit line shows
// the reading judged, masked, with its region and type.
func TestDestinationOutsideLine(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
			sip_domains contoso.com *.contoso.com
			outside_line 9 81
		}`)
	auth := callerBearer(t)
	dialled := func(masked, region, typ, decision, rule string) []auditDestJSON {
		return []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: masked, Region: region, Type: typ, DialString: true, Decision: decision, Rule: rule}}
	}
	refused := func(name, to string, dests []auditDestJSON) guardCase {
		return guardCase{name: name, path: startOpsPath, body: `{"to":"` + to + `"}`, status: 403, property: "to", rule: "deny",
			operation: "startPhoneAudio", decision: "refused", auditRule: "deny", dests: dests}
	}
	delivered := func(name, to string, dests []auditDestJSON) guardCase {
		return guardCase{name: name, path: startOpsPath, body: `{"to":"` + to + `","operationId":"op-1"}`, status: 201,
			operation: "startPhoneAudio", decision: "allowed", auditRule: "default", dests: dests}
	}
	cases := []guardCase{
		refused("9 and a premium number", "sip:919005551234@gw.contoso.com",
			dialled("sip:+1900555****@gw.contoso.com", "US", "premium_rate", "refused", "deny")),
		refused("81 and a premium number, with separators", "sip:81-1-900-555-1234@gw.contoso.com",
			dialled("sip:+1900555****@gw.contoso.com", "US", "premium_rate", "refused", "deny")),
		delivered("9 and an allowed number", "sip:9-425-555-1234@gw.contoso.com",
			dialled("sip:+9425555****@gw.contoso.com", "LK", "fixed_line", "allowed", "default")),
	}
	e.run(t, auth, cases, []string{"9005551234", "4255551234"})
	resp := e.send(testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"sip:919005551234@gw.contoso.com"}`,
		Header: http.Header{"Authorization": {auth}}})
	if msg := ucwaError(t, resp.Body).Message; !strings.Contains(msg, "digits after an outside-line prefix") {
		t.Errorf("message %q does not say the digits after an outside-line prefix were refused", msg)
	}
	if got, want := e.Metric(`caddy_ucwa_destinations_total{decision="refused",rule="deny"}`), 3.0; got != want {
		t.Errorf("refused by deny: %v, want %v", got, want)
	}
}

// TestDestinationShortCodes: a SIP user of digits that is no number in
// any reading, with more digits than max_extension_digits (4), is a
// service's short code a gateway dials (118118, directory enquiries at a
// premium rate in the UK; 11880 in Germany, also after an outside line):
// answered 403 short_code, in a batch part too, and never delivered; the
// audit line shows it masked. An extension is delivered as a name, and
// 911 as an emergency number.
func TestDestinationShortCodes(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			sip_domains contoso.com *.contoso.com
			outside_line 9
		}`)
	auth := callerBearer(t)
	short := []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@gw.contoso.com", DialString: true, Decision: "refused", Rule: "short_code"}}
	refused := func(name, to string) guardCase {
		return guardCase{name: name, path: startOpsPath, body: `{"to":"` + to + `"}`, status: 403, property: "to", rule: "short_code",
			operation: "startPhoneAudio", decision: "refused", auditRule: "short_code", dests: short}
	}
	inPart := short[0]
	inPart.Part = 1
	cases := []guardCase{
		refused("six digits", "sip:118118@gw.contoso.com"),
		refused("five digits, with a separator", "sip:1-1880@gw.contoso.com"),
		refused("an outside line and five digits", "sip:911880@gw.contoso.com"),
		refused("five digits and a key", "sip:11880%23@gw.contoso.com"),
		{name: "in a batch part", batch: true, body: batchBody(startPart(`{"to":"sip:118118@gw.contoso.com"}`)),
			status: 403, property: "to", rule: "short_code", operation: "batch", decision: "refused", auditRule: "short_code", dests: []auditDestJSON{inPart}},
		{name: "an extension is a name", path: startOpsPath, body: `{"to":"sip:1234@contoso.com","operationId":"op-1"}`, status: 201,
			operation: "startPhoneAudio", decision: "allowed", auditRule: "default",
			dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@contoso.com", Decision: "allowed", Rule: "default"}}},
		{name: "911 is an emergency number", path: startOpsPath, body: `{"to":"sip:911@gw.contoso.com","operationId":"op-2"}`, status: 201,
			operation: "startPhoneAudio", decision: "allowed", auditRule: "emergency",
			dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@gw.contoso.com", Emergency: true, DialString: true, Decision: "allowed", Rule: "emergency"}}},
	}
	e.run(t, auth, cases, []string{"sip:118118", "sip:11880", "sip:1-1880", "sip:911880", "sip:1234"})
	resp := e.send(testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"sip:118118@gw.contoso.com"}`,
		Header: http.Header{"Authorization": {auth}}})
	if msg := ucwaError(t, resp.Body).Message; !strings.Contains(msg, "short code") || !strings.Contains(msg, "max_extension_digits") {
		t.Errorf("message %q does not say the digits are a short code beyond max_extension_digits", msg)
	}
	if got, want := e.Metric(`caddy_ucwa_destinations_total{decision="refused",rule="short_code"}`), 6.0; got != want {
		t.Errorf("refused by short_code: %v, want %v", got, want)
	}
}

// TestLimitShortCodes: in report mode a short code is delivered, and the
// limits count it as a call, international (no reading puts it in
// default_region); an extension counts nothing, and without a policy a
// user of no reading is a name, as before.
func TestLimitShortCodes(t *testing.T) {
	for _, c := range []struct {
		name     string
		policy   string
		to       []string
		limited  string // of the last call
		received int64
	}{
		{"report mode", "destinations {\n\t\t\tmode report\n\t\t}", []string{"sip:1234@contoso.com", "sip:1234@contoso.com", "sip:118118@gw.contoso.com", "sip:11880@gw.contoso.com"}, "international", 3},
		{"calls", "destinations {\n\t\t\tmode report\n\t\t}", []string{"sip:911@gw.contoso.com", "sip:118118@gw.contoso.com", "sip:4255551234@gw.contoso.com"}, "calls", 2},
		{"no policy", "", []string{"sip:118118@gw.contoso.com", "sip:11880@gw.contoso.com", "sip:11880@gw.contoso.com", "sip:11880@gw.contoso.com"}, "", 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := startLimitEdge(t, "store memory", c.policy, `limit calls 2 per 1h
		limit international 1 per 24h international`)
			alice := caller{"tenant-1", "alice"}.header(t)
			for i, to := range c.to {
				resp := e.send(audioCallTo(to, alice))
				if i == len(c.to)-1 && c.limited != "" {
					assertLimited(t, resp, c.limited, 24*3600)
					continue
				}
				if resp.Status != http.StatusCreated {
					t.Fatalf("call %d: %d %s", i+1, resp.Status, resp.Body)
				}
			}
			if got := e.pool.Requests.Load(); got != c.received {
				t.Errorf("the pool got %d requests, want %d", got, c.received)
			}
		})
	}
}

// TestDialCharacterNoEmergency: a SIP user of an emergency number's
// digits with a dial character among them (sip:9*11@gw, which a gateway
// dials as 9*11) is no emergency call: a call-via-work to it takes from
// the limits for its phoneNumber, as any call does, where sip:911@gw and
// sip:9911@gw (outside_line 9) are emergency calls the limits never
// refuse; and under max_extension_digits 2 it is refused as a short
// code, where 911 passes as an emergency number. Pauses between the
// outside_line prefix and the emergency number (sip:9,911@gw,
// sip:9w911@gw) keep it an emergency call, delivered with the budget
// spent; pauses elsewhere (sip:9,9,11@gw), or without an outside_line
// prefix, do not.
func TestDialCharacterNoEmergency(t *testing.T) {
	alice := caller{"tenant-1", "alice"}.header(t)
	call := func(e limitEdge, to string) testkit.Response {
		return e.send(limitRequest("/communication/startPhoneAudio", `{"to":"`+to+`","phoneNumber":"+14255551234"}`, alice))
	}
	t.Run("short code", func(t *testing.T) {
		policy := "destinations {\n\t\t\tsip_domains contoso.com *.contoso.com\n\t\t\toutside_line 9\n\t\t\tmax_extension_digits 2\n\t\t}"
		e := startLimitEdge(t, "store memory", policy, "limit calls 1 per 1h")
		// The first call spends the budget; emergency calls pass all the
		// same, a call to 9*11 does not.
		passing := []string{"sip:14255550000@gw.contoso.com", "sip:911@gw.contoso.com", "sip:9911@gw.contoso.com", "sip:9-1-1@gw.contoso.com",
			"sip:9,911@gw.contoso.com", "sip:9w911@gw.contoso.com", "sip:9p,112@gw.contoso.com"}
		for i, to := range passing {
			if resp := call(e, to); resp.Status != http.StatusCreated {
				t.Fatalf("call %d (%s): %d %s", i+1, to, resp.Status, resp.Body)
			}
		}
		for _, to := range []string{"sip:9*11@gw.contoso.com", "sip:9,9,11@gw.contoso.com", "sip:9,911%23@gw.contoso.com"} {
			resp := call(e, to)
			if resp.Status != http.StatusForbidden {
				t.Fatalf("%s: %d %s, want 403", to, resp.Status, resp.Body)
			}
			if e := ucwaError(t, resp.Body); e.Subcode != "DialoutNotAllowed" || !strings.Contains(e.Message, "short_code") {
				t.Errorf("%s: refused with %+v, want DialoutNotAllowed by short_code", to, e)
			}
		}
		if got, want := e.pool.Requests.Load(), int64(len(passing)); got != want {
			t.Errorf("the pool got %d requests, want %d", got, want)
		}
	})
	// Under the default max_extension_digits it is an extension, and the
	// call takes from the budget for its phoneNumber.
	t.Run("extension", func(t *testing.T) {
		e := startLimitEdge(t, "store memory", "destinations {\n\t\t\tsip_domains contoso.com *.contoso.com\n\t\t}", "limit calls 1 per 1h")
		for i, to := range []string{"sip:14255550000@gw.contoso.com", "sip:911@gw.contoso.com"} {
			if resp := call(e, to); resp.Status != http.StatusCreated {
				t.Fatalf("call %d: %d %s", i+1, resp.Status, resp.Body)
			}
		}
		assertLimited(t, call(e, "sip:9*11@gw.contoso.com"), "calls", 3600)
		// Without an outside_line prefix, 9, a pause and 911 is a
		// 4-digit extension.
		assertLimited(t, call(e, "sip:9,911@gw.contoso.com"), "calls", 3600)
	})
	// With outside_line 9 and max_extension_digits by default, 9, a pause
	// and 911 is an emergency call with the budget spent, 9*11 a call.
	t.Run("outside line", func(t *testing.T) {
		e := startLimitEdge(t, "store memory", "destinations {\n\t\t\tsip_domains contoso.com *.contoso.com\n\t\t\toutside_line 9\n\t\t}", "limit calls 1 per 1h")
		for i, to := range []string{"sip:14255550000@gw.contoso.com", "sip:9,911@gw.contoso.com", "sip:9W911@gw.contoso.com"} {
			if resp := call(e, to); resp.Status != http.StatusCreated {
				t.Fatalf("call %d (%s): %d %s", i+1, to, resp.Status, resp.Body)
			}
		}
		assertLimited(t, call(e, "sip:9*11@gw.contoso.com"), "calls", 3600)
		assertLimited(t, call(e, "sip:,911@gw.contoso.com"), "calls", 3600)
	})
}

// TestDialCharacterCompatibilityForms: the fullwidth and small forms of
// the dial characters ',', '*' and '#' (U+FF0C, U+FE50, U+FE10; U+FF0A,
// U+FE61; U+FF03, U+FE5F), and the circled A to D, P and W (symbols, no
// letters, to Unicode), which a gateway that folds Unicode
// compatibility forms dials as those characters (as the fullwidth digits
// and '+' the edge reads as digits and '+'), are those dial characters
// to the edge: sip:9＊11@gw and sip:911＃@gw are no emergency calls, so
// a call-via-work to them takes from the limits for its phoneNumber
// (429 with the budget spent), as sip:9*11@gw does, and
// sip:14255551234＃@gw or sip:1425555，1234@gw is a dial string no rule
// can judge (403 dial_string), as sip:14255551234%23@gw is, never
// delivered. A fullwidth comma between the outside_line prefix and 911
// is a pause there, as ',' is: an emergency call, delivered with the
// budget spent.
func TestDialCharacterCompatibilityForms(t *testing.T) {
	alice := caller{"tenant-1", "alice"}.header(t)
	call := func(e limitEdge, to string) testkit.Response {
		return e.send(limitRequest("/communication/startPhoneAudio", `{"to":"`+to+`","phoneNumber":"+14255551234"}`, alice))
	}
	e := startLimitEdge(t, "store memory", "destinations {\n\t\t\tallow_regions US CA\n\t\t\tsip_domains contoso.com *.contoso.com\n\t\t\toutside_line 9\n\t\t}",
		"limit calls 1 per 1h")
	for _, to := range []string{"sip:14255551234%EF%BC%83@gw.contoso.com", "sip:14255551234%EF%B9%9F@gw.contoso.com",
		"sip:1425555%EF%BC%8C1234@gw.contoso.com", "sip:1425555%EF%BC%8A1234@gw.contoso.com",
		"sip:14255551234%E2%92%B6@gw.contoso.com", "sip:1425555%E2%93%A61234@gw.contoso.com"} {
		assertRefusedAsDialString(t, call(e, to), to)
	}
	// The first call spends the budget; an emergency call passes all the
	// same.
	for i, to := range []string{"sip:14255550000@gw.contoso.com", "sip:9%EF%BC%8C911@gw.contoso.com", "sip:9%EF%B9%90911@gw.contoso.com"} {
		if resp := call(e, to); resp.Status != http.StatusCreated {
			t.Fatalf("call %d (%s): %d %s", i+1, to, resp.Status, resp.Body)
		}
	}
	for _, to := range []string{"sip:9%EF%BC%8A11@gw.contoso.com", "sip:9%EF%B9%A111@gw.contoso.com", "sip:911%EF%BC%83@gw.contoso.com",
		"sip:911%EF%B9%9F@gw.contoso.com", "sip:%EF%BC%8C911@gw.contoso.com", "sip:9%EF%BC%8C9%EF%BC%8C11@gw.contoso.com",
		"sip:%E2%93%9F911@gw.contoso.com", "sip:911%E2%92%B7@gw.contoso.com"} {
		assertLimited(t, call(e, to), "calls", 3600)
	}
	if got := e.pool.Requests.Load(); got != 3 {
		t.Errorf("the pool got %d requests, want 3", got)
	}
}

// TestDialStringCompatibilityDigits: a SIP user whose digits are written
// in a compatibility form (superscripts ¹⁹⁰⁰..., circled ①⑨⓪⓪...: numbers
// to Unicode, no decimal digits), which a gateway that folds
// compatibility forms dials as the digits they fold onto and one that
// keeps only decimal digits drops, is a dial string no rule can judge:
// refused 403 dial_string and never delivered, the audit line showing it
// masked. Read as separators, sip:⁴⁴²⁰⁷¹²³⁴⁵⁶⁷@gw was a name, delivered
// and counted by no limit, for a London number under allow_regions US
// CA. So is a vanity number whose digits are (¹⁹⁰⁰FLOWERS), by its keypad
// reading.
func TestDialStringCompatibilityDigits(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			allow_regions US CA
			sip_domains contoso.com *.contoso.com
		}`)
	auth := callerBearer(t)
	refused := func(name, to string) guardCase {
		return guardCase{name: name, path: startOpsPath, body: `{"to":"` + to + `"}`, status: 403, property: "to", rule: "dial_string",
			operation: "startPhoneAudio", decision: "refused", auditRule: "dial_string",
			dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@gw.contoso.com", DialString: true, Decision: "refused", Rule: "dial_string"}}}
	}
	const london = "%E2%81%B4%E2%81%B4%C2%B2%E2%81%B0%E2%81%B7%C2%B9%C2%B2%C2%B3%E2%81%B4%E2%81%B5%E2%81%B6%E2%81%B7"
	const premium = "%C2%B9%E2%81%B9%E2%81%B0%E2%81%B0%E2%81%B5%E2%81%B5%E2%81%B5%C2%B9%C2%B2%C2%B3%E2%81%B4"
	cases := []guardCase{
		refused("a London number in superscript digits", "sip:"+london+"@gw.contoso.com"),
		refused("a premium number in superscript digits", "sip:"+premium+"@gw.contoso.com"),
		refused("one superscript digit among decimal ones", "sip:1%E2%81%B9005551234@gw.contoso.com"),
		refused("circled digits", "sip:%E2%91%A0%E2%91%A8%E2%93%AA%E2%93%AA5551234@gw.contoso.com"),
		refused("a vanity number", "sip:%C2%B9%E2%81%B9%E2%81%B0%E2%81%B0FLOWERS@gw.contoso.com"),
	}
	e.run(t, auth, cases, []string{london, premium})
	if got := e.Metric(`caddy_ucwa_destinations_total{decision="refused",rule="dial_string"}`); got != float64(len(cases)) {
		t.Errorf("refused by dial_string: %v, want %d", got, len(cases))
	}
}

// unassignedDigits writes digits, escaped for a URI, as code points the
// edge's Unicode tables (unicode.Version) leave unassigned, which a
// gateway with newer tables may read as digits: Unicode 16's outlined
// digits (U+1CCF0 to U+1CCF9) where the tables are older, as Go 1.26's
// 15.0; else the first ten unassigned code points after them.
func unassignedDigits(digits string) string {
	assigned := func(r rune) bool {
		return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
	}
	base := rune(0x1CCF0)
	for i := rune(0); i < 10; i++ {
		if assigned(base + i) {
			base, i = base+i+1, -1
		}
	}
	var b strings.Builder
	for _, d := range digits {
		b.WriteString(url.PathEscape(string(base + d - '0')))
	}
	return b.String()
}

// outlinedDigits writes digits, escaped for a URI, as Unicode 16's
// outlined digits (U+1CCF0 to U+1CCF9).
func outlinedDigits(digits string) string {
	var b strings.Builder
	for _, d := range digits {
		b.WriteString(url.PathEscape(string(rune(0x1CCF0 + d - '0'))))
	}
	return b.String()
}

// TestDialStringUnassignedCodePoints: a SIP user written in code points
// the edge's Unicode tables leave unassigned (Unicode 16's outlined
// digits, U+1CCF0 to U+1CCF9, to Go 1.26's tables, 15.0), which a gateway
// with newer tables reads as digits, is a dial string no rule can judge,
// each such code point a digit of unknown value: refused 403 dial_string
// and never delivered, the audit line showing it masked, where it was a
// name (delivered, counted by no limit, under allow_regions US CA); so is
// such a vanity number, by its keypad reading. Where the tables know the
// outlined digits (Go 1.27's, 17.0), a number written in them is judged
// by its digits, as one in any script's decimal digits.
func TestDialStringUnassignedCodePoints(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			allow_regions US CA
			sip_domains contoso.com *.contoso.com
		}`)
	refused := func(name, to string) guardCase {
		return guardCase{name: name, path: startOpsPath, body: `{"to":"` + to + `"}`, status: 403, property: "to", rule: "dial_string",
			operation: "startPhoneAudio", decision: "refused", auditRule: "dial_string",
			dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@gw.contoso.com", DialString: true, Decision: "refused", Rule: "dial_string"}}}
	}
	cases := []guardCase{
		refused("a London number in unassigned code points", "sip:"+unassignedDigits("442071234567")+"@gw.contoso.com"),
		refused("a premium number in unassigned code points", "sip:"+unassignedDigits("19005551234")+"@gw.contoso.com"),
		refused("a vanity number", "sip:"+unassignedDigits("1900")+"FLOWERS@gw.contoso.com"),
	}
	secrets := []string{unassignedDigits("44207"), unassignedDigits("19005")}
	if unicode.Is(unicode.Nd, 0x1CCF0) {
		judged := func(name, to, rule, masked, region, kind string) guardCase {
			return guardCase{name: name, path: startOpsPath, body: `{"to":"` + to + `"}`, status: 403, property: "to", rule: rule,
				operation: "startPhoneAudio", decision: "refused", auditRule: rule,
				dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: masked, Region: region, Type: kind, DialString: true, Decision: "refused", Rule: rule}}}
		}
		cases = append(cases,
			judged("a London number in outlined digits", "sip:"+outlinedDigits("442071234567")+"@gw.contoso.com", "allow_regions", "sip:+44207123****@gw.contoso.com", "GB", "fixed_line"),
			judged("a premium number in outlined digits", "sip:"+outlinedDigits("19005551234")+"@gw.contoso.com", "deny_types", "sip:+1900555****@gw.contoso.com", "US", "premium_rate"))
		secrets = append(secrets, outlinedDigits("44207"), outlinedDigits("19005"))
	}
	e.run(t, callerBearer(t), cases, secrets)
}

// TestDialStringParameterCompatibilityDigits: digits in a SIP user's
// parameters written in a compatibility form (circled ①⑨⓪⓪...,
// superscript ¹⁹⁰⁰...) or as code points the edge's Unicode tables leave
// unassigned (see unassignedDigits), which a gateway that folds
// such forms dials as digits, make the user a dial string no rule can
// judge, as decimal digits there do (sip:911;19005551234@gw): refused
// 403 dial_string and never delivered under a policy with a number rule,
// and no emergency call to the limits without one (429 once the budget is
// spent). Read as no digits, sip:911;①⑨⓪⓪⑤⑤⑤①②③④@gw was the emergency
// number 911: allowed by the rule emergency whatever the policy, and
// delivered over the limits as an emergency call.
func TestDialStringParameterCompatibilityDigits(t *testing.T) {
	const (
		circled     = "%E2%91%A0%E2%91%A8%E2%93%AA%E2%93%AA%E2%91%A4%E2%91%A4%E2%91%A4%E2%91%A0%E2%91%A1%E2%91%A2%E2%91%A3"
		superscript = "%C2%B9%E2%81%B9%E2%81%B0%E2%81%B0%E2%81%B5%E2%81%B5%E2%81%B5%C2%B9%C2%B2%C2%B3%E2%81%B4"
	)
	users := []struct{ name, user string }{
		{"decimal digits", "911;19005551234"},
		{"circled digits", "911;" + circled},
		{"superscript digits in a named parameter", "911;x=" + superscript},
		{"unassigned code points", "911;" + unassignedDigits("19005551234")},
	}
	t.Run("policy", func(t *testing.T) {
		e := startGuardEdge(t, `destinations {
			allow_regions US CA
			sip_domains contoso.com *.contoso.com
		}`)
		var cases []guardCase
		for _, u := range users {
			cases = append(cases, guardCase{name: u.name, path: startOpsPath, body: `{"to":"sip:` + u.user + `@gw.contoso.com"}`, status: 403,
				property: "to", rule: "dial_string", operation: "startPhoneAudio", decision: "refused", auditRule: "dial_string",
				dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@gw.contoso.com", DialString: true, Decision: "refused", Rule: "dial_string"}}})
		}
		e.run(t, callerBearer(t), cases, []string{"19005551234", circled, superscript})
	})
	t.Run("limits", func(t *testing.T) {
		alice := caller{"tenant-1", "alice"}.header(t)
		e := startLimitEdge(t, "store memory", "destinations {\n\t\t\tdeny_types none\n\t\t\tsip_domains contoso.com *.contoso.com\n\t\t}", "limit calls 1 per 1h")
		call := func(to string) testkit.Response {
			return e.send(limitRequest("/communication/startPhoneAudio", `{"to":"`+to+`","phoneNumber":"+14255551234"}`, alice))
		}
		// The first call spends the budget; an emergency call passes all
		// the same.
		for i, to := range []string{"sip:14255550000@gw.contoso.com", "sip:911@gw.contoso.com"} {
			if resp := call(to); resp.Status != http.StatusCreated {
				t.Fatalf("call %d: %d %s", i+1, resp.Status, resp.Body)
			}
		}
		for _, u := range users {
			t.Run(u.name, func(t *testing.T) {
				assertLimited(t, call("sip:"+u.user+"@gw.contoso.com"), "calls", 3600)
			})
		}
		if got := e.pool.Requests.Load(); got != 2 {
			t.Errorf("the pool got %d requests, want 2", got)
		}
	})
}

// TestDestinationVanityCompatibilityLetters: a vanity number written
// wholly in a compatibility form (fullwidth １９００ＦＬＯＷＥＲＳ), which a
// gateway that folds such forms (NFKC) before it maps letters to keys
// dials as 1900FLOWERS, is judged with its letters as keypad digits, as
// sip:1900FLOWERS@gw is: +1 900 356 9377, refused deny under deny +1900
// and never delivered, the audit line showing the reading masked. ASCII
// digits beside letters in such a form (1900ＦＬＯＷＥＲＳ, circled
// 1900ⒻⓁⓄⓌⒺⓇⓈ, mathematical 1900𝐅𝐋𝐎𝐖𝐄𝐑𝐒) are refused dial_string: a
// gateway that keeps only the ASCII it can dial drops the letters, so
// no reading can judge what is dialled. A name in fullwidth letters is
// still a name.
func TestDestinationVanityCompatibilityLetters(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
			sip_domains contoso.com *.contoso.com
		}`)
	auth := callerBearer(t)
	refused := func(name, to string) guardCase {
		return guardCase{name: name, path: startOpsPath, body: `{"to":"` + to + `"}`, status: 403, property: "to", rule: "deny",
			operation: "startPhoneAudio", decision: "refused", auditRule: "deny",
			dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:+1900356****@gw.contoso.com", Region: "US", Type: "premium_rate",
				DialString: true, Decision: "refused", Rule: "deny"}}}
	}
	unjudgeable := func(name, to string) guardCase {
		return guardCase{name: name, path: startOpsPath, body: `{"to":"` + to + `"}`, status: 403, property: "to", rule: "dial_string",
			operation: "startPhoneAudio", decision: "refused", auditRule: "dial_string",
			dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@gw.contoso.com", DialString: true, Decision: "refused", Rule: "dial_string"}}}
	}
	cases := []guardCase{
		unjudgeable("ASCII digits and fullwidth letters", "sip:1900%EF%BC%A6%EF%BC%AC%EF%BC%AF%EF%BC%B7%EF%BC%A5%EF%BC%B2%EF%BC%B3@gw.contoso.com"),
		refused("fullwidth digits and letters", "sip:%EF%BC%91%EF%BC%99%EF%BC%90%EF%BC%90%EF%BD%86%EF%BD%8C%EF%BD%8F%EF%BD%97%EF%BD%85%EF%BD%92%EF%BD%93@gw.contoso.com"),
		unjudgeable("ASCII digits and circled letters", "sip:1900%E2%92%BB%E2%93%81%E2%93%84%E2%93%8C%E2%92%BA%E2%93%87%E2%93%88@gw.contoso.com"),
		unjudgeable("ASCII digits and mathematical letters", "sip:1900%F0%9D%90%85%F0%9D%90%8B%F0%9D%90%8E%F0%9D%90%96%F0%9D%90%84%F0%9D%90%91%F0%9D%90%92@gw.contoso.com"),
		{name: "a name in fullwidth letters", path: startOpsPath, body: `{"to":"sip:%EF%BD%8A%EF%BD%8F%EF%BD%88%EF%BD%8E@gw.contoso.com","operationId":"op-1"}`, status: 201,
			operation: "startPhoneAudio", decision: "allowed", auditRule: "default",
			dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@gw.contoso.com", Decision: "allowed", Rule: "default"}}},
	}
	e.run(t, auth, cases, []string{"3569377", "%EF%BC%A6%EF%BC%AC"})
}

// TestDestinationPremiumShortCodes: in France (default_region FR) a SIP
// user of four digits that is a premium-rate short code by phonenumbers'
// short-number data (3651, 3615), as written or after an outside-line
// prefix, is refused short_code, though max_extension_digits (here 6)
// lets that many digits pass as an extension; the message says why, the
// audit line shows it masked. So is such an extension of a French
// number (max_extension_digits). An extension of no premium (1234) is
// delivered as a name, and 112 as an emergency number. In report mode it
// is delivered, and the log line shows it masked.
func TestDestinationPremiumShortCodes(t *testing.T) {
	short := []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@gw.contoso.com", DialString: true, Decision: "refused", Rule: "short_code"}}
	t.Run("enforce", func(t *testing.T) {
		e := startGuardEdgeIn(t, "FR", `destinations {
			sip_domains contoso.com *.contoso.com
			outside_line 0
			max_extension_digits 6
		}`)
		auth := callerBearer(t)
		refused := func(name, to string) guardCase {
			return guardCase{name: name, path: startOpsPath, body: `{"to":"` + to + `"}`, status: 403, property: "to", rule: "short_code",
				operation: "startPhoneAudio", decision: "refused", auditRule: "short_code", dests: short}
		}
		cases := []guardCase{
			refused("3651", "sip:3651@gw.contoso.com"),
			refused("3615 after an outside line", "sip:03615@gw.contoso.com"),
			refused("with a separator", "sip:36-51@gw.contoso.com"),
			{name: "an extension is a name", path: startOpsPath, body: `{"to":"sip:1234@gw.contoso.com","operationId":"op-1"}`, status: 201,
				operation: "startPhoneAudio", decision: "allowed", auditRule: "default",
				dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@gw.contoso.com", Decision: "allowed", Rule: "default"}}},
			{name: "a number's extension", path: startOpsPath, body: `{"to":"tel:+33142345678;ext=3651"}`, status: 403, property: "to", rule: "max_extension_digits",
				operation: "startPhoneAudio", decision: "refused", auditRule: "max_extension_digits",
				dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "+3314234****;ext=****", Region: "FR", Type: "fixed_line", Decision: "refused", Rule: "max_extension_digits"}}},
			{name: "112 is an emergency number", path: startOpsPath, body: `{"to":"sip:112@gw.contoso.com","operationId":"op-2"}`, status: 201,
				operation: "startPhoneAudio", decision: "allowed", auditRule: "emergency",
				dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@gw.contoso.com", Emergency: true, DialString: true, Decision: "allowed", Rule: "emergency"}}},
		}
		e.run(t, auth, cases, []string{"sip:3651", "sip:03615", "sip:36-51", "sip:1234", "ext=3651", "42345678"})
		resp := e.send(testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"sip:3651@gw.contoso.com"}`,
			Header: http.Header{"Authorization": {auth}}})
		if msg := ucwaError(t, resp.Body).Message; !strings.Contains(msg, "premium-rate short code") {
			t.Errorf("message %q does not say the digits are a premium-rate short code", msg)
		}
		if got, want := e.Metric(`caddy_ucwa_destinations_total{decision="refused",rule="short_code"}`), 4.0; got != want {
			t.Errorf("refused by short_code: %v, want %v", got, want)
		}
	})
	t.Run("report", func(t *testing.T) {
		e := startGuardEdgeIn(t, "FR", `destinations {
			mode report
		}`)
		auth := callerBearer(t)
		would := short[0]
		would.Destination, would.Decision = "sip:****@gw.example", "would_refuse"
		e.run(t, auth, []guardCase{{name: "3651 is delivered", path: startOpsPath, body: `{"to":"sip:3651@gw.example","operationId":"op-1"}`, status: 201,
			operation: "startPhoneAudio", decision: "would_refuse", auditRule: "short_code", dests: []auditDestJSON{would}}}, []string{"sip:3651"})
		if log := e.Logs().String(); !strings.Contains(log, `"rule":"short_code","destination":"sip:****@gw.example"`) {
			t.Errorf("no masked report-mode line for the short code in the log:\n%s", log)
		}
	})
}

// TestDestinationPremiumShortCodesAllow: with default_region FR,
// sip:3651@gw and the extension 3651 of a French number are refused as
// premium-rate short codes by default (short_code, max_extension_digits),
// and delivered under premium_short_codes allow, which judges the
// digits by their count alone: the SIP user is then an extension, a
// name to the audit trail, and 118118, past max_extension_digits, is
// still refused for its count.
func TestDestinationPremiumShortCodesAllow(t *testing.T) {
	sip := func(decision, rule string, dialString bool) []auditDestJSON {
		return []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@gw.contoso.com", DialString: dialString, Decision: decision, Rule: rule}}
	}
	ext := func(decision, rule string) []auditDestJSON {
		return []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "+3314234****;ext=****", Region: "FR", Type: "fixed_line", Decision: decision, Rule: rule}}
	}
	const sipUser, extension, shortCode = `{"to":"sip:3651@gw.contoso.com"}`, `{"to":"tel:+33142345678;ext=3651"}`, `{"to":"sip:118118@gw.contoso.com"}`
	longCode := guardCase{name: "118118 past max_extension_digits", path: startOpsPath, body: shortCode, status: 403, property: "to", rule: "short_code",
		operation: "startPhoneAudio", decision: "refused", auditRule: "short_code", dests: sip("refused", "short_code", true)}
	for _, c := range []struct {
		name, option string
		cases        []guardCase
	}{
		{"default", "", []guardCase{
			{name: "sip:3651 refused", path: startOpsPath, body: sipUser, status: 403, property: "to", rule: "short_code",
				operation: "startPhoneAudio", decision: "refused", auditRule: "short_code", dests: sip("refused", "short_code", true)},
			{name: "ext=3651 refused", path: startOpsPath, body: extension, status: 403, property: "to", rule: "max_extension_digits",
				operation: "startPhoneAudio", decision: "refused", auditRule: "max_extension_digits", dests: ext("refused", "max_extension_digits")},
			longCode,
		}},
		{"refuse", "premium_short_codes refuse", []guardCase{
			{name: "sip:3651 refused", path: startOpsPath, body: sipUser, status: 403, property: "to", rule: "short_code",
				operation: "startPhoneAudio", decision: "refused", auditRule: "short_code", dests: sip("refused", "short_code", true)},
		}},
		{"allow", "premium_short_codes allow", []guardCase{
			{name: "sip:3651 delivered", path: startOpsPath, body: sipUser, status: 201,
				operation: "startPhoneAudio", decision: "allowed", auditRule: "default", dests: sip("allowed", "default", false)},
			{name: "ext=3651 delivered", path: startOpsPath, body: extension, status: 201,
				operation: "startPhoneAudio", decision: "allowed", auditRule: "default", dests: ext("allowed", "default")},
			longCode,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := startGuardEdgeIn(t, "FR", `destinations {
			sip_domains contoso.com *.contoso.com
			`+c.option+`
		}`)
			e.run(t, callerBearer(t), c.cases, []string{"sip:3651", "sip:118118", "ext=3651", "42345678"})
		})
	}
}

// TestDestinationVanityNumbers: a SIP user that is a vanity number
// (sip:1900FLOWERS@gw, sip:1-900-FLOWERS@gw, sip:(900)FLOWERS@gw) is
// judged also with its letters as the digits of a phone keypad, as a
// gateway that maps them dials it: +1 900 356 9377 is refused under deny +1900 and never
// delivered, with a message that says why and an audit line that shows
// the reading masked; so is one whose letters are all dial characters
// (1900PAWPAWP, an extension of four digits as written), and a number
// with a letter or a few for its digits wherever they stand, six digits
// or more left (sip:1X005551234@gw, sip:1W00JJJ1234@gw). An allowed one
// and a name are delivered as written; a telephone user with letters
// (sip:+1800FLOWERS@gw) is refused 400 as before. The limits count a
// vanity number as a call, with or without a policy.
func TestDestinationVanityNumbers(t *testing.T) {
	t.Run("policy", func(t *testing.T) {
		e := startGuardEdge(t, `destinations {
			deny +1900
			sip_domains contoso.com *.contoso.com
		}`)
		auth := callerBearer(t)
		vanity := func(masked, typ, decision, rule string) []auditDestJSON {
			return []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: masked, Region: "US", Type: typ, DialString: true, Decision: decision, Rule: rule}}
		}
		refused := func(name, to, masked string) guardCase {
			return guardCase{name: name, path: startOpsPath, body: `{"to":"` + to + `"}`, status: 403, property: "to", rule: "deny",
				operation: "startPhoneAudio", decision: "refused", auditRule: "deny", dests: vanity(masked, "premium_rate", "refused", "deny")}
		}
		cases := []guardCase{
			refused("letters", "sip:1900FLOWERS@gw.contoso.com", "sip:+1900356****@gw.contoso.com"),
			refused("with separators, lower case", "sip:1-900-flowers@gw.contoso.com", "sip:+1900356****@gw.contoso.com"),
			refused("letters that are dial characters", "sip:1900PAWPAWP@gw.contoso.com", "sip:+1900729****@gw.contoso.com"),
			refused("after a separator", "sip:(1)900-FLOWERS@gw.contoso.com", "sip:+1900356****@gw.contoso.com"),
			refused("in parentheses", "sip:(900)FLOWERS@gw.contoso.com", "sip:+1900356****@gw.contoso.com"),
			refused("a letter for a digit", "sip:1X005551234@gw.contoso.com", "sip:+1900555****@gw.contoso.com"),
			// Its digits alone, 1001234, which a gateway that keeps only
			// digits dials, are a short code first.
			{name: "letters among six digits", path: startOpsPath, body: `{"to":"sip:1W00JJJ1234@gw.contoso.com"}`, status: 403, property: "to", rule: "short_code",
				operation: "startPhoneAudio", decision: "refused", auditRule: "short_code", dests: vanity("sip:+1900555****@gw.contoso.com", "premium_rate", "refused", "short_code")},
			{name: "an allowed vanity number", path: startOpsPath, body: `{"to":"sip:1800FLOWERS@gw.contoso.com","operationId":"op-1"}`, status: 201,
				operation: "startPhoneAudio", decision: "allowed", auditRule: "default",
				dests: vanity("sip:+1800356****@gw.contoso.com", "toll_free", "allowed", "default")},
			{name: "a name", path: startOpsPath, body: `{"to":"sip:john.smith@gw.contoso.com","operationId":"op-2"}`, status: 201,
				operation: "startPhoneAudio", decision: "allowed", auditRule: "default",
				dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@gw.contoso.com", Decision: "allowed", Rule: "default"}}},
			{name: "a name with a digit", path: startOpsPath, body: `{"to":"sip:john.smith2@contoso.com","operationId":"op-3"}`, status: 201,
				operation: "startPhoneAudio", decision: "allowed", auditRule: "default",
				dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@contoso.com", Decision: "allowed", Rule: "default"}}},
			// As many letters as digits or more: a name with a number in
			// it, neither read by its digits alone nor on a keypad.
			{name: "a name with six digits", path: startOpsPath, body: `{"to":"sip:john.smith.123456@contoso.com","operationId":"op-4"}`, status: 201,
				operation: "startPhoneAudio", decision: "allowed", auditRule: "default",
				dests: []auditDestJSON{{Property: "to", Kind: "dialled now", Destination: "sip:****@contoso.com", Decision: "allowed", Rule: "default"}}},
			// Fewer letters than digits: a number with a letter for a
			// digit, 19005551234 to a gateway that keeps only digits.
			{name: "a letter before a number", path: startOpsPath, body: `{"to":"sip:jo19005551234@gw.contoso.com"}`, status: 403, property: "to", rule: "deny",
				operation: "startPhoneAudio", decision: "refused", auditRule: "deny", dests: vanity("sip:+1900555****@gw.contoso.com", "premium_rate", "refused", "deny")},
		}
		e.run(t, auth, cases, []string{"3569377", "7297297", "FLOWERS", "flowers", "PAWPAWP", "5551234", "X00555", "JJJ1234", "smith2", "123456"})
		send := func(to string) testkit.Response {
			return e.send(testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"` + to + `"}`,
				Header: http.Header{"Authorization": {auth}}})
		}
		if msg := ucwaError(t, send("sip:1900FLOWERS@gw.contoso.com").Body).Message; !strings.Contains(msg, "keypad") {
			t.Errorf("message %q does not say the letters were read as keypad digits", msg)
		}
		if resp := send("sip:+1800FLOWERS@gw.contoso.com"); resp.Status != http.StatusBadRequest {
			t.Errorf("a telephone user with letters: %d %s, want 400", resp.Status, resp.Body)
		}
	})
	t.Run("limits", func(t *testing.T) {
		e := startLimitEdge(t, "store memory", "limit calls 1 per 1h")
		alice := caller{"tenant-1", "alice"}.header(t)
		for i, to := range []string{"sip:alice@contoso.com", "sip:1800FLOWERS@gw.contoso.com", "sip:alice@contoso.com"} {
			if resp := e.send(audioCallTo(to, alice)); resp.Status != http.StatusCreated {
				t.Fatalf("call %d: %d %s", i+1, resp.Status, resp.Body)
			}
		}
		assertLimited(t, e.send(audioCallTo("sip:1-800-FLOWERS@gw.contoso.com", alice)), "calls", 3600)
	})
}

// TestSIPUserHoldsURI: a SIP URI whose user, decoded once or more, holds
// a URI (tel:, sip:, sips:, any letter case) is refused 400 naming the
// property, never the value (alone, or as a batch part), and never
// reaches the pool: RFC 3261 makes sip:tel%3A%2B19005551234@gw a name,
// yet a gateway that decodes its user reads tel:+19005551234 and dials
// it, a number the edge never judged; written unescaped, the colon is
// no SIP URI's. So is one whose colon, or a letter of whose scheme, is a
// look-alike that NFKC or a map of confusables reads as ':' or as the
// letter (sip:tel%EF%BC%9A%2B14255551234@gw, a fullwidth colon), even
// when the number is one the policy allows. Names that only hold those
// letters pass as written.
func TestSIPUserHoldsURI(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	for _, tc := range []startPhoneAudioCase{
		{name: "an escaped tel URI", to: "sip:tel%3A%2B19005551234@gw"},
		{name: "an escaped tel URI in capitals", to: "sip:TEL%3a19005551234@gw"},
		{name: "escaped twice", to: "sip:tel%253A%252B19005551234@gw"},
		{name: "an escaped sip URI after a dot", to: "sip:x.sip%3A19005551234%40gw@gw"},
		{name: "an escaped tel URI and a letter no keypad has", to: "sip:tel%3A%2B19005551234%C3%A9@gw"},
		{name: "an escaped tel URI in a batch part", to: "sip:tel%3A%2B19005551234@gw", batch: true},
		{name: "a fullwidth colon", to: "sip:tel%EF%BC%9A%2B14255551234@gw"},
		{name: "a small colon", to: "sip:tel%EF%B9%95%2B14255551234@gw"},
		{name: "a ratio sign for the colon", to: "sip:tel%E2%88%B6%2B14255551234@gw"},
		{name: "a modifier letter colon", to: "sip:tel%EA%9E%89%2B14255551234@gw"},
		{name: "fullwidth letters and colon", to: "sip:%EF%BD%94%EF%BD%85%EF%BD%8C%EF%BC%9A%2B14255551234@gw"},
		{name: "a fullwidth colon escaped twice", to: "sip:tel%25EF%25BC%259A%252B14255551234@gw"},
		{name: "a fullwidth colon in a batch part", to: "sip:tel%EF%BC%9A%2B14255551234@gw", batch: true},
		{name: "a name ending in sip", to: "sip:gossip%3A1@contoso.com", pass: true},
		{name: "a name ending in sip, a fullwidth colon", to: "sip:gossip%EF%BC%9A1@contoso.com", pass: true},
		{name: "a name", to: "sip:lenea@contoso.com", pass: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"to":"` + tc.to + `"}`
			resp, got := e.sendBody(auth, "", startOpsPath, "application/json", body, tc.batch)
			if tc.pass {
				assertDeliveredAsSent(t, resp, got, body)
				return
			}
			assertRefusedUndelivered(t, resp, got, "to", "ParameterValidationFailure", "holds no URI")
		})
	}
}

// TestSIPNameDigitsAlone: a SIP user that holds letters besides six
// digits or more is read also by its digits alone, as a gateway that
// keeps only digits dials it, and judged by that reading besides the
// user as written: sip:19005551234%C3%A9@gw (a letter no keypad has
// after the digits) and sip:x19005551234@gw (whose keypad reading,
// +91 900 555 1234, is allowed) are refused under deny +1900 (alone, or
// as a batch part) and never delivered, the refusal never showing the
// number. The reading only adds refusals: names of fewer digits pass as
// written.
func TestSIPNameDigitsAlone(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	e.assertStartPhoneAudioCases(t, auth, "deny", []startPhoneAudioCase{
		{name: "a letter no keypad has after the digits", to: "sip:19005551234%C3%A9@gw"},
		{name: "a letter before the digits", to: "sip:x19005551234@gw"},
		{name: "letters around the digits", to: "sip:john.19005551234.smith@gw"},
		{name: "a letter no keypad has, in a batch part", to: "sip:19005551234%C3%A9@gw", batch: true},
		{name: "lenea", to: "sip:lenea@gw", pass: true},
		{name: "john.smith2", to: "sip:john.smith2@gw", pass: true},
		{name: "j.smith.12345", to: "sip:j.smith.12345@gw", pass: true},
		{name: "alice", to: "sip:alice@gw", pass: true},
		{name: "user1", to: "sip:user1@gw", pass: true},
		{name: "a name with a letter no keypad has", to: "sip:1900%C3%A9t%C3%A9@gw", pass: true},
	})
}

// TestSIPUserMixedScriptDigits: a SIP user that mixes ASCII digits with
// decimal digits of another script is refused 403 dial_string under
// deny +1900 (alone, or as a batch part), never delivered:
// sip:%E0%A5%AF19005551234@gw, a Devanagari 9 before 19005551234, reads
// as the Indian mobile +91 90055 51234, yet a gateway that keeps only
// the ASCII digits it can dial rings +1 900 555 1234. A user of another
// script's digits alone, and a short mixed one (an extension by its
// count), pass as written. So with a vanity number's keypad reading:
// sip:%E0%A5%AF1900FLOWERS@gw is +91 90035 69377 with its letters as
// keypad digits, and +1 900 356 9377 without the Devanagari 9.
func TestSIPUserMixedScriptDigits(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	e.assertStartPhoneAudioCases(t, auth, "dial_string", []startPhoneAudioCase{
		{name: "a Devanagari digit before the digits", to: "sip:%E0%A5%AF19005551234@gw"},
		{name: "a fullwidth digit before the digits", to: "sip:%EF%BC%9819005551234@gw"},
		{name: "an Arabic-Indic digit before the digits", to: "sip:%D9%A819005551234@gw"},
		{name: "a letter and a Devanagari digit before the digits", to: "sip:x%E0%A5%AF19005551234@gw"},
		{name: "a Devanagari digit before the digits, in a batch part", to: "sip:%E0%A5%AF19005551234@gw", batch: true},
		{name: "a Devanagari digit before a vanity number", to: "sip:%E0%A5%AF1900FLOWERS@gw"},
		{name: "Devanagari digits alone", to: "sip:%E0%A5%AA%E0%A5%A8%E0%A5%AB%E0%A5%AB%E0%A5%AB%E0%A5%AB%E0%A5%A7%E0%A5%A8%E0%A5%A9%E0%A5%AA@gw", pass: true},
		{name: "a short mixed user", to: "sip:9%EF%BC%911@gw", pass: true},
	})
}

// TestSIPNameCompatibilityDigits: a SIP name read by its digits alone
// that holds digits in a compatibility form is refused 403 dial_string
// under deny +1900 (alone, or as a batch part), never delivered, as a
// user of digits holding them is: sip:%C3%A9%E2%81%B919005551234@gw (é,
// a superscript 9, then 19005551234) reads as the Indian mobile
// +91 90055 51234 with the superscript as a 9, yet a gateway that keeps
// only decimal digits rings +1 900 555 1234. A name of few digits
// (john²) passes as written.
func TestSIPNameCompatibilityDigits(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	e.assertStartPhoneAudioCases(t, auth, "dial_string", []startPhoneAudioCase{
		{name: "a letter no keypad has and a superscript digit before the digits", to: "sip:%C3%A9%E2%81%B919005551234@gw"},
		{name: "a letter no keypad has and a circled digit before the digits", to: "sip:%C3%A9%E2%91%A819005551234@gw"},
		{name: "a superscript digit before the digits, in a batch part", to: "sip:%C3%A9%E2%81%B919005551234@gw", batch: true},
		{name: "a name of few digits", to: "sip:john%C2%B2@gw", pass: true},
	})
}

// TestVanityMixedCompatibilityForms: under deny +1976 alone, a vanity
// number that mixes ASCII letters or digits with characters in a
// compatibility form is refused 403 dial_string (alone, or as a batch
// part), never delivered, the refusal showing no digit of it:
// sip:１２３WPMJJJJ@gw (fullwidth 123, then ASCII WPMJJJJ) is read as
// +1 123 976 5555 with the fullwidth digits folded, which deny +1976
// lets pass, yet a gateway that maps ASCII letters to keys and drops
// what it cannot dial rings 9765555, a local 976 premium line. So with
// ASCII digits beside fullwidth, circled or mathematical letters, and
// superscript digits beside ASCII letters. Written wholly in ASCII or
// wholly in fullwidth, an allowed vanity number is delivered as sent.
func TestVanityMixedCompatibilityForms(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1976
		}`)
	auth := callerBearer(t)
	for _, tc := range []startPhoneAudioCase{
		{name: "fullwidth digits, then ASCII letters", to: "sip:%EF%BC%91%EF%BC%92%EF%BC%93WPMJJJJ@gw"},
		{name: "fullwidth digits, then ASCII letters, in a batch part", to: "sip:%EF%BC%91%EF%BC%92%EF%BC%93WPMJJJJ@gw", batch: true},
		{name: "superscript digits, then ASCII letters", to: "sip:%C2%B9%C2%B2%C2%B3WPMJJJJ@gw"},
		{name: "ASCII digits, then fullwidth letters", to: "sip:976%EF%BC%AA%EF%BC%AA%EF%BC%AA%EF%BC%AA@gw"},
		{name: "ASCII digits, then circled letters", to: "sip:976%E2%92%BF%E2%92%BF%E2%92%BF%E2%92%BF@gw"},
		{name: "ASCII digits and letters, then a mathematical letter", to: "sip:976JJJ%F0%9D%90%89@gw"},
		{name: "ASCII letters", to: "sip:1425FLOWERS@gw", pass: true},
		{name: "fullwidth digits and letters", to: "sip:%EF%BC%91%EF%BC%94%EF%BC%92%EF%BC%95%EF%BC%A6%EF%BC%AC%EF%BC%AF%EF%BC%B7%EF%BC%A5%EF%BC%B2%EF%BC%B3@gw", pass: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.assertStartPhoneAudioTo(t, auth, tc.to, tc.batch, tc.pass, "dial_string")
			if tc.pass {
				return
			}
			for _, digits := range []string{"976", "5555", "123", "%EF%BC%91", "%C2%B9"} {
				if strings.Contains(resp.Body, digits) {
					t.Fatalf("the refusal shows %s: %s", digits, resp.Body)
				}
			}
		})
	}
}

// TestSIPUserEscapedTwice: under the default policy (which refuses
// sip:19005551234@gw, a +1 900 premium number), a SIP name escaped twice
// is refused 403 dial_string (alone, or as a batch part) and never
// delivered: sip:%2531%2539005551234@gw is %31%39005551234 to the edge,
// whose digits read as a Dutch number the policy allows, yet
// 19005551234 to a gateway that decodes its user once more, as one may
// that finds a URI in it. A name escaped twice that no decoding makes
// digits passes as written.
func TestSIPUserEscapedTwice(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			sip_domains gw.contoso.com contoso.com
		}`)
	auth := callerBearer(t)
	e.assertStartPhoneAudioCases(t, auth, "dial_string", []startPhoneAudioCase{
		{name: "digits escaped twice", to: "sip:%2531%2539005551234@gw.contoso.com"},
		{name: "a letter escaped twice before the digits", to: "sip:%254919005551234@gw.contoso.com"},
		{name: "digits escaped twice, in a batch part", to: "sip:%2531%2539005551234@gw.contoso.com", batch: true},
		{name: "a name escaped twice", to: "sip:john%2525smith@contoso.com", pass: true},
	})
}

// TestLimitNameDigitsNoEmergencyCall: a SIP name read by its digits alone
// (letters besides six digits or more), or with its letters as keypad
// digits, is never an emergency number, also when that reading is a
// number of the emergency list (a site's security desk): a gateway that
// routes the name as written places no emergency call. So a call-via-work
// to such a name is no emergency call that the limits let through when
// they have no room: over its limit it is 429, and the pool never gets
// it, while the listed number itself, as a tel: URI or the digits alone,
// is still an emergency call delivered over the limit.
func TestLimitNameDigitsNoEmergencyCall(t *testing.T) {
	policy := "destinations {\n\t\t\tsip_domains contoso.com\n\t\t\temergency 911 +14255550100\n\t\t}"
	for _, tc := range []struct {
		what, to  string
		emergency bool
	}{
		{"the listed number", "tel:+14255550100", true},
		{"the listed number's digits as a SIP user", "sip:14255550100@contoso.com", true},
		{"a letter no keypad has, then the digits", "sip:%C3%A914255550100@contoso.com", false},
		{"a keypad letter, then the digits", "sip:x14255550100@contoso.com", false},
		{"the digits, then a letter no keypad has", "sip:14255550100%C3%A9@contoso.com", false},
	} {
		t.Run(tc.what, func(t *testing.T) {
			e := startLimitEdge(t, "store memory", policy, "limit calls 1 per 1h")
			alice := caller{"tenant-1", "alice"}.header(t)
			if resp := e.send(callTo("+14255551234", alice)); resp.Status != http.StatusCreated {
				t.Fatalf("first call: %d %s", resp.Status, resp.Body)
			}
			resp := e.send(limitRequest("/communication/startPhoneAudio", `{"to":"`+tc.to+`","phoneNumber":"+33142685300"}`, alice))
			want := int64(1)
			if tc.emergency {
				if resp.Status != http.StatusCreated {
					t.Fatalf("%d %s, want 201 (an emergency call)", resp.Status, resp.Body)
				}
				want = 2
			} else {
				assertLimited(t, resp, "calls", 3600)
			}
			if got := e.pool.Requests.Load(); got != want {
				t.Errorf("the pool got %d requests, want %d", got, want)
			}
		})
	}
}

// assertStartPhoneAudioTo sends a startPhoneAudio to `to` (alone, or as
// a batch part) and fails unless it is delivered as sent (pass), or
// else refused 403 DialoutNotAllowed by rule, reaching no pool and
// showing none of the number 9005551234.
// startPhoneAudioCase is a startPhoneAudio to to, alone or as a batch
// part, that the edge delivers as sent (pass) or refuses.
type startPhoneAudioCase struct {
	name, to string
	batch    bool
	pass     bool
}

// assertStartPhoneAudioCases runs each case as a subtest of
// assertStartPhoneAudioTo, refusals by rule.
func (e guardEdge) assertStartPhoneAudioCases(t *testing.T, auth, rule string, cases []startPhoneAudioCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.assertStartPhoneAudioTo(t, auth, tc.to, tc.batch, tc.pass, rule)
		})
	}
}

func (e guardEdge) assertStartPhoneAudioTo(t *testing.T, auth, to string, batch, pass bool, rule string) testkit.Response {
	t.Helper()
	body := `{"to":"` + to + `"}`
	resp, got := e.sendBody(auth, "", startOpsPath, "application/json", body, batch)
	if pass {
		assertDeliveredAsSent(t, resp, got, body)
		return resp
	}
	if resp.Status != http.StatusForbidden || len(got) != 0 || !strings.Contains(resp.Body, "DialoutNotAllowed") ||
		!strings.Contains(resp.Body, "("+rule+":") || strings.Contains(resp.Body, "9005551234") {
		t.Fatalf("status %d (%s), the pool got %d requests; want 403 %s and none", resp.Status, resp.Body, len(got), rule)
	}
	return resp
}

// TestPausedEmergencyReadOtherwise: an outside_line prefix, pauses and
// an emergency number is an emergency call only when a gateway that
// reads the pauses otherwise dials nothing else. With outside_line 9 and
// +14255550100 listed, sip:9,14255550100@gw is 914255550100 to a gateway
// that drops the pause, the Indian +91 42555 50100, or +1 914 255 5501 to
// a US switch; in Germany with outside_line 0 and the list's 12345 and
// +49 30 123456, sip:0,12345@gw is +49 12345, and sip:0w030123456@gw is
// 09030123456 to a gateway that maps letters to keys, +49 9030 123456,
// and so, whatever its count of digits, is sip:9pwwwwwww911@gw in the
// US, 979999999911 to such a gateway, the premium-rate +979 999999911:
// each is refused as a dial string no rule can judge (403 dial_string),
// never delivered, with the calls budget spent. The emergency numbers,
// written plainly or after the prefix and pauses that read as nothing
// else (sip:9,911@gw, sip:0,030123456@gw), are delivered all the same.
func TestPausedEmergencyReadOtherwise(t *testing.T) {
	alice := caller{"tenant-1", "alice"}.header(t)
	for _, c := range []struct {
		region, outsideLine, emergency, spend string
		delivered, refused                    []string
	}{
		{"US", "9", "911 +14255550100", "+14255550000",
			[]string{"tel:911", "tel:+14255550100", "sip:14255550100@gw.contoso.com", "sip:9,911@gw.contoso.com", "sip:9w911@gw.contoso.com", "sip:9911@gw.contoso.com"},
			[]string{"sip:9,14255550100@gw.contoso.com", "sip:9w14255550100@gw.contoso.com", "sip:9p,14255550100@gw.contoso.com",
				// Pauses of many letters among few digits: 979999999911,
				// the international premium-rate +979 999999911, and
				// 9797979911, +1 979 797 9911, to a gateway that maps
				// letters to keys.
				"sip:9pwwwwwww911@gw.contoso.com", "sip:9pwpwpw911@gw.contoso.com",
				// Two digits, an extension as pauses: 979999999999,
				// +979 999999999, on a keypad.
				"sip:9p9wwwwwwwww@gw.contoso.com"}},
		{"DE", "0", "112 110 12345 +4930123456", "+4930123457",
			[]string{"tel:112", "tel:12345", "sip:12345@gw.contoso.com", "tel:+4930123456", "sip:0,030123456@gw.contoso.com", "sip:0,112@gw.contoso.com", "sip:0w110@gw.contoso.com"},
			[]string{"sip:0,12345@gw.contoso.com", "sip:0w030123456@gw.contoso.com", "sip:0p030123456@gw.contoso.com"}},
	} {
		t.Run(c.region, func(t *testing.T) {
			policy := "destinations {\n\t\t\tallow_regions " + c.region + "\n\t\t\tsip_domains contoso.com *.contoso.com\n\t\t\toutside_line " + c.outsideLine +
				"\n\t\t\temergency " + c.emergency + "\n\t\t}"
			pool := testkit.NewUpstream(t)
			config := strings.Replace(limitCaddyfile(t, pool, "store memory", policy, "limit calls 1 per 1h"),
				"default_region US", "default_region "+c.region, 1)
			e := limitEdge{startEdge(t, "caddyfile", config, testkit.WithAdmin()), pool}
			// An audio call rings no phone of the caller's: only its to
			// counts.
			if resp := e.send(audioCallTo(c.spend, alice)); resp.Status != http.StatusCreated {
				t.Fatalf("the first call: %d %s", resp.Status, resp.Body)
			}
			assertLimited(t, e.send(audioCallTo(c.spend, alice)), "calls", 3600)
			for _, to := range c.delivered {
				if resp := e.send(audioCallTo(to, alice)); resp.Status != http.StatusCreated {
					t.Errorf("%s: %d %s, want it delivered as an emergency call", to, resp.Status, resp.Body)
				}
			}
			for _, to := range c.refused {
				assertRefusedAsDialString(t, e.send(audioCallTo(to, alice)), to)
			}
			if got, want := e.pool.Requests.Load(), int64(1+len(c.delivered)); got != want {
				t.Errorf("the pool got %d requests, want %d", got, want)
			}
		})
	}
}

// TestLetterFormNoEmergency: a SIP user whose digits are an emergency
// number but that holds a compatibility form of a letter (a circled Ⓕ,
// a Roman numeral Ⅹ), which the edge reads between digits as a
// separator, is no emergency call: a gateway that folds Unicode
// compatibility forms reads a letter there, a name, or with its letters
// as keypad digits other digits (911ⒻⒻⒻⒻⒻⒻⒻ is 9113333333). With the
// calls budget spent, a call-via-work to sip:911Ⓕ@gw or
// sip:9ⅩⅩⅩ911@gw (outside_line 9) takes from it for its phoneNumber
// (429), as a call to sip:911F@gw would; sip:911ⒻⒻⒻⒻⒻⒻⒻ@gw is refused
// as a dial string no rule can judge (its keypad reading), and so is
// sip:1425555ⒻⒻ0100@gw, though +14255550100 is listed. sip:911@gw and
// the circled wait of sip:9ⓦ911@gw stay emergency calls, delivered.
func TestLetterFormNoEmergency(t *testing.T) {
	alice := caller{"tenant-1", "alice"}.header(t)
	callViaWork := func(e limitEdge, to string) testkit.Response {
		return e.send(limitRequest("/communication/startPhoneAudio", `{"to":"`+to+`","phoneNumber":"+14255551234"}`, alice))
	}
	policy := "destinations {\n\t\t\tallow_regions US\n\t\t\tsip_domains contoso.com *.contoso.com\n\t\t\toutside_line 9\n\t\t\temergency 911 +14255550100\n\t\t}"
	e := startLimitEdge(t, "store memory", policy, "limit calls 1 per 1h")
	if resp := e.send(audioCallTo("+14255550000", alice)); resp.Status != http.StatusCreated {
		t.Fatalf("the first call: %d %s", resp.Status, resp.Body)
	}
	assertLimited(t, e.send(audioCallTo("+14255550000", alice)), "calls", 3600)
	delivered := []string{"sip:911@gw.contoso.com", "sip:9%E2%93%A6911@gw.contoso.com"}
	for _, to := range delivered {
		if resp := callViaWork(e, to); resp.Status != http.StatusCreated {
			t.Errorf("%s: %d %s, want it delivered as an emergency call", to, resp.Status, resp.Body)
		}
	}
	for _, to := range []string{"sip:911%E2%92%BB@gw.contoso.com", "sip:9%E2%85%A9%E2%85%A9%E2%85%A9911@gw.contoso.com"} {
		assertLimited(t, callViaWork(e, to), "calls", 3600)
	}
	for _, to := range []string{"sip:911%E2%92%BB%E2%92%BB%E2%92%BB%E2%92%BB%E2%92%BB%E2%92%BB%E2%92%BB@gw.contoso.com",
		"sip:1425555%E2%92%BB%E2%92%BB0100@gw.contoso.com"} {
		assertRefusedAsDialString(t, e.send(audioCallTo(to, alice)), to)
	}
	if got, want := e.pool.Requests.Load(), int64(1+len(delivered)); got != want {
		t.Errorf("the pool got %d requests, want %d", got, want)
	}
}

// assertRefusedAsDialString checks that resp, the answer to a call to
// to, is a 403 DialoutNotAllowed by the rule dial_string.
func assertRefusedAsDialString(t *testing.T, resp testkit.Response, to string) {
	t.Helper()
	if resp.Status != http.StatusForbidden {
		t.Errorf("%s: %d %s, want 403", to, resp.Status, resp.Body)
		return
	}
	if e := ucwaError(t, resp.Body); e.Subcode != "DialoutNotAllowed" || !strings.Contains(e.Message, "dial_string") {
		t.Errorf("%s: refused with %+v, want DialoutNotAllowed by dial_string", to, e)
	}
}
