package caddymodule

import (
	"net/http"
	"testing"
)

// TestUnreadOperationID: an operationId given where the edge reads no
// input (a member of a JSON value it does not read, of a link, of an
// embedded resource; an XML attribute; an item of a property list named
// so) is refused with 400 ParameterValidationFailure naming operationId,
// alone or as a batch part, and never reaches the pool. The edge keys a
// request by the operationId it reads, or by none, while a pool that
// finds its inputs wherever they stand (Json.NET's
// SelectToken("..operationId"), a model that maps XML attributes) would
// key the call by the one the edge never read: two requests the edge
// delivers under two keys would be one operation to it, run twice.
// Inside a JSON value the edge does not read it
// is refused whatever it holds, as its flat spelling "x.operationId" is
// (TestBodyModelBindingNames); a blank attribute passes. So in an
// operation that takes no operationId (PUT callForwardingSettings), as in
// an embedded resource or an XML attribute, unless null or blank.
func TestUnreadOperationID(t *testing.T) {
	e := startBindingEdge(t)
	auth := callerBearer(t)
	const (
		ok    = `"to":"sip:john@x.contoso.com","operationId":"a"`
		xmlIn = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"`
		xmlOK = `<property name="to">sip:john@x.contoso.com</property><property name="operationId">a</property>`
	)
	const (
		forwarding = opsApp + "/me/callForwardingSettings"
		xmlRes     = `<resource xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="activeSetting">None</property>`
	)
	for _, tc := range []struct {
		name, contentType, body string
		refused                 bool
		path                    string // PUT; "": POST startPhoneAudio
	}{
		{"JSON, inside a property the operation does not take", "application/json", `{` + ok + `,"x":{"operationId":"b"}}`, true, ""},
		{"JSON, inside an array", "application/json", `{` + ok + `,"x":[{"operationId":"b"}]}`, true, ""},
		{"JSON, with none where the edge reads it", "application/json", `{"to":"sip:john@x.contoso.com","x":{"OperationId":"b"}}`, true, ""},
		{"JSON, a link's member", "application/json", `{` + ok + `,"_links":{"self":{"href":"/x","operationId":"b"}}}`, true, ""},
		{"JSON, an embedded resource's member", "application/json", `{` + ok + `,"_embedded":{"x":{"operationId":"b"}}}`, true, ""},
		{"XML, an attribute of the input", "application/xml", xmlIn + ` operationId="b">` + xmlOK + `</input>`, true, ""},
		{"XML, an item named so", "application/xml", xmlIn + `>` + xmlOK + `<propertyList name="x"><item name="operationId">b</item></propertyList></input>`, true, ""},

		{"JSON, null inside a property the operation does not take", "application/json", `{` + ok + `,"x":{"operationId":null}}`, true, ""},

		{"XML, a blank attribute", "application/xml", xmlIn + ` operationId="">` + xmlOK + `</input>`, false, ""},
		{"JSON, other members nested", "application/json", `{` + ok + `,"x":{"operationIds":"b","y":[{"id":"c"}]}}`, false, ""},

		{"JSON, inside a property, in an operation that takes none", "application/json", `{"activeSetting":"None","x":{"operationId":"b"}}`, true, forwarding},
		{"JSON, a link's member, in an operation that takes none", "application/json", `{"activeSetting":"None","_links":{"self":{"href":"/x","OperationId":"b"}}}`, true, forwarding},
		{"XML, an item named so, in an operation that takes none", "application/xml", xmlRes + `<propertyList name="x"><item name="operationId">b</item></propertyList></resource>`, true, forwarding},
		{"JSON, null inside a property, in an operation that takes none", "application/json", `{"activeSetting":"None","x":{"operationId":null}}`, false, forwarding},
	} {
		for _, batch := range []bool{false, true} {
			name := tc.name
			if batch {
				name += ", batched"
			}
			t.Run(name, func(t *testing.T) {
				method, path := http.MethodPost, startOpsPath
				if tc.path != "" {
					method, path = http.MethodPut, tc.path
				}
				resp, got := e.sendBody(auth, method, path, tc.contentType, tc.body, batch)
				if !tc.refused {
					if resp.Status != http.StatusCreated || len(got) != 1 {
						t.Fatalf("status %d (%s), the pool got %d requests; want 201 and one", resp.Status, resp.Body, len(got))
					}
					return
				}
				assertRefusedUndelivered(t, resp, got, "operationId", "ParameterValidationFailure")
			})
		}
	}
}
