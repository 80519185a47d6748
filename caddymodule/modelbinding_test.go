package caddymodule

import (
	"net/http"
	"strings"
	"testing"
)

// TestBodyModelBindingNames: a body name that is a .NET model-binding
// spelling of an input ("x.to", "model.phoneNumber", "to[0]", "[0].to",
// "x[to]") is refused with 400 ParameterValidationFailure naming the
// input, alone or as a batch part, in JSON and in XML, and never reaches
// the pool, as the same spelling in the query always was
// (TestModelBindingQueryNames). ASP.NET MVC's JsonValueProviderFactory
// flattens a JSON body into the keys a query has: {"model.to":...} is the
// key "model.to", exactly as {"model":{"to":...}} (which the edge refuses
// as a destination inside a value it does not read) and as ?model.to=;
// and its DefaultModelBinder binds a complex parameter named model under
// that prefix once any key starts with "model.", reading its to from
// "model.to" and never from the body's "to". So
// {"to":"sip:john@x.contoso.com","model.to":"tel:+19005551234"} passed
// the edge as a call to a person and reached the pool, which rang
// +1 900 555 1234.
func TestBodyModelBindingNames(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
			sip_domains *.contoso.com
		}`)
	auth := callerBearer(t)
	const (
		ok     = `"to":"sip:john@x.contoso.com"`
		xmlOK  = `<property name="to">sip:john@x.contoso.com</property>`
		number = "tel:+19005551234"
	)
	xmlInput := func(props string) string {
		return `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">` + props + `</input>`
	}
	for _, tc := range []struct {
		name, method, path, contentType, body, param string
	}{
		{"JSON, the call's to under a prefix", "POST", startOpsPath, "application/json", `{` + ok + `,"model.to":"` + number + `"}`, "to"},
		{"JSON, the callback number under a prefix", "POST", startOpsPath, "application/json", `{` + ok + `,"request.PhoneNumber":"` + number + `"}`, "phoneNumber"},
		{"JSON, an index", "POST", startOpsPath, "application/json", `{` + ok + `,"to[0]":"` + number + `"}`, "to"},
		{"JSON, an index before the name", "POST", startOpsPath, "application/json", `{` + ok + `,"[0].to":"` + number + `"}`, "to"},
		{"JSON, a bracketed name", "POST", startOpsPath, "application/json", `{` + ok + `,"x[phoneNumber]":"` + number + `"}`, "phoneNumber"},
		{"JSON, two prefixes", "POST", startOpsPath, "application/json", `{` + ok + `,"x.y.phoneNumber":"` + number + `"}`, "phoneNumber"},
		{"JSON, a destination the operation does not take", "POST", startOpsPath, "application/json", `{` + ok + `,"x.target":"` + number + `"}`, "target"},
		{"JSON, inside a value the edge does not read", "POST", startOpsPath, "application/json", `{` + ok + `,"x":{"y.to":"` + number + `"}}`, "to"},
		{"JSON, the stored number of PUT communication", "PUT", opsApp + "/communication", "application/json", `{"model.phoneNumber":"` + number + `"}`, "phoneNumber"},
		{"JSON, a forwarding target", "POST", opsApp + "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact", "application/json",
			`{"target":"sip:john@x.contoso.com","input.target":"` + number + `"}`, "target"},
		{"XML, the call's to under a prefix", "POST", startOpsPath, "application/xml", xmlInput(xmlOK + `<property name="model.to">` + number + `</property>`), "to"},
		{"XML, the callback number under a prefix", "POST", startOpsPath, "application/xml", xmlInput(xmlOK + `<property name="model.phoneNumber">` + number + `</property>`), "phoneNumber"},
		{"XML, an index", "POST", startOpsPath, "application/xml", xmlInput(xmlOK + `<property name="to[0]">` + number + `</property>`), "to"},
	} {
		for _, batch := range []bool{false, true} {
			name := tc.name
			if batch {
				name += ", batched"
			}
			t.Run(name, func(t *testing.T) {
				resp, got := e.sendBody(auth, tc.method, tc.path, tc.contentType, tc.body, batch)
				if resp.Status != http.StatusBadRequest || len(got) != 0 {
					t.Fatalf("status %d (%s), the pool got %d requests; want 400 and none", resp.Status, resp.Body, len(got))
				}
				if !strings.Contains(resp.Body, `<property name="`+tc.param+`">`) && !strings.Contains(resp.Body, `{"name":"`+tc.param+`"`) {
					t.Fatalf("the refusal does not name %s: %s", tc.param, resp.Body)
				}
				if strings.Contains(resp.Body, "9005551234") {
					t.Fatalf("the refusal shows the number: %s", resp.Body)
				}
			})
		}
	}

	// The same operationId under a prefix: a pool binding under it keys
	// the call by another operationId than the edge did.
	resp, got := e.sendBody(auth, "POST", startOpsPath, "application/json", `{`+ok+`,"operationId":"a","x.operationId":"b"}`, false)
	if resp.Status != http.StatusBadRequest || len(got) != 0 || !strings.Contains(resp.Body, `{"name":"operationId"`) {
		t.Fatalf("operationId under a prefix: status %d (%s), the pool got %d requests; want 400 naming operationId and none", resp.Status, resp.Body, len(got))
	}

	// Names that are no spelling of an input pass as sent.
	for _, body := range []string{
		`{` + ok + `,"x_y":"` + number + `","x.y":1,"client.version":"1.0"}`,
		`{` + ok + `,"x":{"y.z":"` + number + `"}}`,
	} {
		resp, got := e.sendBody(auth, "POST", startOpsPath, "application/json", body, false)
		assertDeliveredAsSent(t, resp, got, body)
	}
	xmlBody := xmlInput(xmlOK + `<property name="client.version">1.0</property>`)
	resp, got = e.sendBody(auth, "POST", startOpsPath, "application/xml", xmlBody, false)
	assertDeliveredAsSent(t, resp, got, xmlBody)
}
