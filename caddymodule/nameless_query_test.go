package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestNamelessQueryValue: a query value without a name ("=tel:+1900...",
// "[]=...", "%5B%5D=...") is refused with 400 ParameterValidationFailure
// naming the inputs the query does not name, alone or as a batch part,
// and never reaches the pool. ASP.NET Web API binds a simple parameter
// (Post(string to, string phoneNumber)) from the query by its name and,
// when the query has none, again under the empty prefix
// (CompositeModelBinder, FallbackToEmptyPrefix), where its query value
// provider holds "=value" (and "[]=value": its jQuery reader drops empty
// brackets) under "". So ?to=sip:john@...&=tel:+19005551234 passed the
// edge as a call to a person with no callback number, and a pool rang
// +1 900 555 1234 as phoneNumber; likewise a PUT communication's stored
// number and a forwarding target the body gave otherwise.
func TestNamelessQueryValue(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
			sip_domains *.contoso.com
		}`)
	auth := callerBearer(t)
	const (
		person = "sip:john@x.contoso.com"
		number = "tel:%2B19005551234"
	)
	forward := opsApp + "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact"
	for _, tc := range []struct {
		name, method, path, query, contentType, body, param string
	}{
		{"every input in the query, the callback number without a name", "POST", startOpsPath, "to=" + person + "&=" + number, "", "", "phoneNumber"},
		{"the call's to in the body, a number without a name", "POST", startOpsPath, "=" + number, "application/json", `{"to":"` + person + `"}`, "to"},
		{"empty brackets", "POST", startOpsPath, "[]=" + number, "application/json", `{"to":"` + person + `"}`, "phoneNumber"},
		{"escaped empty brackets", "POST", startOpsPath, "%5B%5D=" + number, "application/xml",
			`<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">` + person + `</property></input>`, "to"},
		{"the stored number of PUT communication", "PUT", opsApp + "/communication", "=" + number, "application/json", `{"audioPreference":"PhoneAudio"}`, "phoneNumber"},
		{"a forwarding target", "POST", forward, "=" + number, "application/json", `{"target":"` + person + `"}`, "target"},
		{"a changed number", "POST", opsApp + "/me/phones/work/changeNumber", "=" + number, "application/json", `{"includeInContactCard":true}`, "number"},
	} {
		for _, batch := range []bool{false, true} {
			name, query := tc.name, tc.query
			if batch {
				// A part's target holds no raw brackets (RFC 3986).
				name, query = name+", batched", strings.NewReplacer("[", "%5B", "]", "%5D").Replace(query)
			}
			t.Run(name, func(t *testing.T) {
				resp, got := e.sendBody(auth, tc.method, tc.path+"?"+query, tc.contentType, tc.body, batch)
				assertRefusedUndelivered(t, resp, got, tc.param, "without a name")
			})
		}
	}

	// A blank value without a name binds nothing a pool would act on
	// (Web API reads it as null) and passes as sent, as does a value
	// whose brackets are a name ("[x]" is "x" to Web API).
	for _, query := range []string{"=", "[]=+", "[x]=" + number} {
		before := len(e.pool.Received())
		resp := e.send(testkit.Request{URL: startOpsPath + "?" + query, ContentType: "application/json",
			Body: `{"to":"` + person + `"}`, Header: http.Header{"Authorization": {auth}}})
		got := e.pool.Received()[before:]
		if resp.Status != http.StatusCreated || len(got) != 1 || got[0].RawQuery != query {
			t.Fatalf("?%s: status %d (%s), the pool got %+v; want 201 and the query as sent", query, resp.Status, resp.Body, got)
		}
	}
	if strings.Contains(e.Logs().String(), "9005551234") {
		t.Fatal("the log shows the number")
	}
}
