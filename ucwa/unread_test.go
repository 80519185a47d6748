package ucwa

import (
	"strings"
	"testing"
)

// TestDecodeUnreadOperationID: an operationId (any letter case, folding
// onto it, or as a model-binding part) given where the edge reads no
// input is refused 400 ParameterValidationFailure naming operationId, as
// a phone destination there is: inside a JSON value the edge does not
// read (an unknown property's, a link's member other than href, at any
// depth, in arrays too), in an embedded resource (a member, a link), as
// an XML attribute on any element, or as an XML element, or an element's
// name or rel, inside what the edge skips. The edge keys a request by the
// operationId it reads; a pool that finds its inputs wherever they stand
// would key the call by the other one. A blank attribute passes, as
// does an operationId where the edge reads it. In an operation that
// takes none, it is refused there too, unless null or blank.
func TestDecodeUnreadOperationID(t *testing.T) {
	const in = `<input xmlns="` + Namespace + `"`
	const props = `<property name="to">sip:a@contoso.com</property><property name="operationId">a</property>`
	for _, tt := range []struct {
		rel    string
		format Format
		body   string
		bad    bool
	}{
		{"startPhoneAudio", JSON, `{"to":"+14255551234","operationId":"a","x":{"operationId":"b"}}`, true},
		{"startPhoneAudio", JSON, `{"to":"+14255551234","x":{"OPERATIONID":"b"}}`, true},
		{"startPhoneAudio", JSON, `{"to":"+14255551234","operationId":"a","x":[1,{"y":{"operationId":"b"}}]}`, true},
		{"startPhoneAudio", JSON, `{"to":"+14255551234","operationId":"a","x":{"model.operationId":"b"}}`, true},
		{"startPhoneAudio", JSON, `{"to":"+14255551234","operationId":"a","x":{"operation Id":"b"}}`, true},
		{"startPhoneAudio", JSON, `{"to":"+14255551234","operationId":"a","_links":{"self":{"href":"/x","operationId":"b"}}}`, true},
		{"startPhoneAudio", JSON, `{"to":"+14255551234","operationId":"a","_links":{"customContent":{"href":"data:,x","operationId":"b"}}}`, true},
		{"startPhoneAudio", JSON, `{"to":"+14255551234","operationId":"a","_embedded":{"x":{"operationId":"b"}}}`, true},
		{"startPhoneAudio", JSON, `{"to":"+14255551234","operationId":"a","_embedded":{"x":{"_links":{"operationId":{"href":"/b"}}}}}`, true},
		{"addParticipant", JSON, `{"to":"sip:a@contoso.com","x":{"operationId":1}}`, true},
		{"startPhoneAudio", XML, in + ` operationId="b">` + props + `</input>`, true},
		{"startPhoneAudio", XML, in + ` xmlns:p="urn:p" p:OperationId="b">` + props + `</input>`, true},
		{"startPhoneAudio", XML, in + `>` + props + `<link rel="customContent" href="data:,x" operationId="b"/></input>`, true},
		{"startPhoneAudio", XML, in + `>` + props + `<propertyList name="x"><item name="operationId">b</item></propertyList></input>`, true},
		{"startPhoneAudio", XML, in + `>` + props + `<propertyList name="x"><operationId>b</operationId></propertyList></input>`, true},
		{"startPhoneAudio", XML, in + `>` + props + `<link rel="self" href="/x"><x rel="operationId">b</x></link></input>`, true},

		// Inside a JSON value the edge does not read, it is refused
		// whatever it holds, as its flat spelling "x.operationId" is.
		{"startPhoneAudio", JSON, `{"to":"+14255551234","operationId":"a","x":{"operationId":null}}`, true},
		{"startPhoneAudio", JSON, `{"to":"+14255551234","operationId":"a","x":{"y":{"operationId":" "},"z":"b"}}`, true},
		{"startPhoneAudio", JSON, `{"to":"+14255551234","OperationId":"a","_links":{"self":{"href":"/x","operationIds":"b"}}}`, false},
		{"startPhoneAudio", XML, in + ` operationId="">` + props + `<propertyList name="x"><item>b</item></propertyList></input>`, false},

		// An operation that takes none: refused as in an embedded
		// resource or an XML attribute, unless null or blank.
		{"callForwardingSettings", JSON, `{"activeSetting":"None","x":{"operationId":"b"}}`, true},
		{"callForwardingSettings", JSON, `{"_links":{"self":{"href":"/x","x.OperationId":"b"}}}`, true},
		{"callForwardingSettings", XML, `<resource xmlns="` + Namespace + `"><propertyList name="x"><item name="operationId">b</item></propertyList></resource>`, true},
		{"callForwardingSettings", XML, `<resource xmlns="` + Namespace + `"><link rel="self" href="/x"><operationId>b</operationId></link></resource>`, true},
		{"callForwardingSettings", JSON, `{"activeSetting":"None","x":{"operationId":null,"y":{"operationId":" "}}}`, false},
	} {
		_, err := decodeOp(mustOperation(tt.rel), tt.format, []byte(tt.body))
		if !tt.bad {
			if err != nil {
				t.Errorf("%s: %v", tt.body, err)
			}
			continue
		}
		if err == nil || err.Status != 400 || err.Subcode != SubcodeParameterValidationFailure || len(err.Parameters) != 1 ||
			err.Parameters[0].Name != propOperationID.Name || !strings.Contains(err.Message, "line 1, column") {
			t.Errorf("%s: %v, want 400 ParameterValidationFailure naming operationId, saying where", tt.body, err)
			continue
		}
		if strings.Contains(err.Message, `"b"`) || strings.Contains(err.Message, "OPERATIONID") {
			t.Errorf("%s: the message quotes the body: %s", tt.body, err.Message)
		}
	}
}
