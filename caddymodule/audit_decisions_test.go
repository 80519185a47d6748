package caddymodule

import (
	"net/http"
	"slices"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestAuditDecisionsOfEveryDestination: the audit line of a batch in
// report mode, whose parts all go on to the pool, gives each destination
// of every part, in order, the decision and rule the policy judged it
// by, however many the batch has: more than the audit record keeps the
// policy's decisions of (maxJudged), the others judged again as the line
// is written. The request's decision is the first destination it would
// refuse. A request alone with two destinations of two decisions has
// each its own.
func TestAuditDecisionsOfEveryDestination(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			mode report
			deny +1900
			allow_regions US
			sip_domains contoso.com
		}`)
	auth := callerBearer(t)
	type dest struct{ to, masked, region, typ, decision, rule string }
	kinds := []dest{
		{"+14255551234", "+1425555****", "US", "fixed_line_or_mobile", "allowed", "default"},
		{"+19005551234", "+1900555****", "US", "premium_rate", "would_refuse", "deny"},
		{"sip:john@contoso.com", "sip:****@contoso.com", "", "", "allowed", "default"},
		{"+442071234567", "+44207123****", "GB", "fixed_line", "would_refuse", "allow_regions"},
		{"sip:john@fabrikam.com", "sip:****@fabrikam.com", "", "", "would_refuse", "sip_domains"},
	}
	var parts []string
	var want []auditDestJSON
	for i := range maxJudged + 4 {
		d := kinds[i%len(kinds)]
		parts = append(parts, startPart(`{"to":"`+d.to+`"}`))
		want = append(want, auditDestJSON{Property: "to", Part: i + 1, Kind: "dialled now", Destination: d.masked,
			Region: d.region, Type: d.typ, Decision: d.decision, Rule: d.rule})
	}
	for _, tc := range []struct {
		name, path, contentType, body string
		want                          []auditDestJSON
		decision, rule                string
	}{
		{"a batch of more destinations than the record keeps decisions of", opsApp + "/batch", batchType, batchBody(parts...),
			want, "would_refuse", "deny"},
		{"a request alone with two destinations", addPhoneAudioPath, "application/json",
			`{"to":"sip:john@fabrikam.com","phoneNumber":"+14255551234"}`,
			[]auditDestJSON{
				{Property: "phoneNumber", Kind: "dialled now", Destination: "+1425555****", Region: "US", Type: "fixed_line_or_mobile", Decision: "allowed", Rule: "default"},
				{Property: "to", Kind: "dialled now", Destination: "sip:****@fabrikam.com", Decision: "would_refuse", Rule: "sip_domains"},
			}, "would_refuse", "sip_domains"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			audits := len(auditLines(t, e.Logs().String()))
			resp := e.send(testkit.Request{URL: tc.path, ContentType: tc.contentType, Body: tc.body, Header: http.Header{"Authorization": {auth}}})
			if resp.Status == http.StatusForbidden || resp.Status >= 400 {
				t.Fatalf("status %d (%s), want the request delivered", resp.Status, resp.Body)
			}
			a := e.nextAudit(t, audits)
			if !slices.Equal(a.Destinations, tc.want) {
				t.Errorf("audit destinations\n%+v\nwant\n%+v", a.Destinations, tc.want)
			}
			if a.Decision != tc.decision || a.Rule != tc.rule || a.RefusedBy != "" {
				t.Errorf("audit line %+v: want decision %s, rule %s, refused by none", a, tc.decision, tc.rule)
			}
		})
	}
}
