package ucwa

import (
	"strings"
	"testing"
)

// TestDecodeEmbeddedRules: in PUT callForwardingSettings, an embedded
// resource named (by its key in "_embedded", its rel member or property,
// or the rel attribute of a nested <resource>; any letter case, or
// folding onto it) as unansweredCallSettings or simultaneousRingSettings
// is held to the rules of that resource's own PUT, read as a top-level
// value is (a JSON ringDelay is a number; null and blank are nothing);
// one named as both is held to both; one named as neither, or embedded
// deeper, to none. The 400 names the property and the resource, never
// the value.
func TestDecodeEmbeddedRules(t *testing.T) {
	op := mustOperation("callForwardingSettings")
	const open = `<resource xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">`
	tests := []struct {
		name   string
		format Format
		body   string
		bad    string // the property the 400 names; "" to accept
		reason string
	}{
		{"JSON out of range", JSON, `{"_embedded":{"unansweredCallSettings":{"ringDelay":61}}}`, "ringDelay", "must be a whole number from 5 to 60 (in the embedded unansweredCallSettings, at line 1, column 41)"},
		{"JSON key in another letter case", JSON, `{"_embedded":{"UNANSWEREDCALLSETTINGS":{"ringDelay":4}}}`, "ringDelay", "from 5 to 60"},
		{"JSON named by rel alone", JSON, `{"_embedded":{"x":{"ringDelay":4,"rel":"unansweredCallSettings"}}}`, "ringDelay", "from 5 to 60"},
		{"JSON rel folding onto it", JSON, `{"_embedded":{"x":{"ringDelay":4,"REL ":"unanswered\tCallSettings"}}}`, "ringDelay", "from 5 to 60"},
		{"JSON rel outside ASCII names any", JSON, `{"_embedded":{"x":{"ringDelay":4,"rel":"ｕnansweredCallSettings"}}}`, "ringDelay", "from 5 to 60"},
		{"JSON named as both", JSON, `{"_embedded":{"simultaneousRingSettings":{"rel":"unansweredCallSettings","ringDelay":0}}}`, "ringDelay", "unansweredCallSettings"},
		{"JSON a name folding onto ringDelay", JSON, `{"_embedded":{"unansweredCallSettings":{"ring\u0000Delay":99}}}`, "ringDelay", "from 5 to 60"},
		{"JSON a string", JSON, `{"_embedded":{"unansweredCallSettings":{"ringDelay":"20"}}}`, "ringDelay", "must be a whole number"},
		{"JSON a fraction", JSON, `{"_embedded":{"unansweredCallSettings":{"ringDelay":20.5}}}`, "ringDelay", "must be a whole number"},
		{"JSON a boolean", JSON, `{"_embedded":{"unansweredCallSettings":{"ringDelay":true}}}`, "ringDelay", "must be a whole number"},
		{"JSON a boolean for a target", JSON, `{"_embedded":{"simultaneousRingSettings":{"target":false}}}`, "target", "inside an embedded resource"},
		{"JSON an array", JSON, `{"_embedded":{"unansweredCallSettings":[{"ringDelay":[20]}]}}`, "ringDelay", "must be a whole number"},
		{"JSON an enum value it does not take", JSON, `{"_embedded":{"unansweredCallSettings":{"target":"Delegates"}}}`, "target", "must be None, Voicemail or Contact"},
		{"JSON the reference's echo", JSON, `{"rel":"callForwardingSettings","_embedded":{"simultaneousRingSettings":{"rel":"simultaneousRingSettings","ringDelay":0,"target":"Delegates"},"unansweredCallSettings":{"rel":"unansweredCallSettings","ringDelay":5,"target":"none"}}}`, "", ""},
		{"JSON null and blank", JSON, `{"_embedded":{"unansweredCallSettings":{"ringDelay":null,"target":" "}}}`, "", ""},
		{"JSON named as neither", JSON, `{"_embedded":{"x":{"ringDelay":99},"y":[{"rel":"immediateForwardSettings","ringDelay":-1}]}}`, "", ""},
		{"JSON embedded deeper", JSON, `{"_embedded":{"x":{"_embedded":{"unansweredCallSettings":{"ringDelay":99}}}}}`, "", ""},
		{"XML rel attribute", XML, open + `<resource rel="unansweredCallSettings"><property name="ringDelay">99</property></resource></resource>`, "ringDelay", "(in the embedded unansweredCallSettings, at line 1, column 104)"},
		{"XML rel property, after", XML, open + `<resource><property name="ringDelay">1</property><property name="Rel">unansweredCallSettings</property></resource></resource>`, "ringDelay", "from 5 to 60"},
		{"XML rel in another namespace", XML, open + `<resource xmlns:p="urn:p" p:rel="unansweredCallSettings"><property name="ringDelay">1</property></resource></resource>`, "ringDelay", "from 5 to 60"},
		{"XML a propertyList", XML, open + `<resource rel="unansweredCallSettings"><propertyList name="ringDelay"><item>20</item></propertyList></resource></resource>`, "ringDelay", "must be a single value"},
		{"XML rel holding an element after its text", XML, open + `<resource><property name="rel">unansweredCallSettings<b/></property><property name="ringDelay">1</property></resource></resource>`, "ringDelay", "from 5 to 60"},
		{"XML rel's text inside an element", XML, open + `<resource><property name="rel"><b>unansweredCallSettings</b></property><property name="ringDelay">1</property></resource></resource>`, "ringDelay", "from 5 to 60"},
		{"XML a propertyList named rel", XML, open + `<resource><propertyList name="rel"><item>unansweredCallSettings</item></propertyList><property name="ringDelay">1</property></resource></resource>`, "ringDelay", "from 5 to 60"},
		{"XML a property holding an element", XML, open + `<resource rel="unansweredCallSettings"><property name="ringDelay">20<b/></property></resource></resource>`, "ringDelay", "must be a single value"},
		{"JSON a link named like a property", JSON, `{"_embedded":{"unansweredCallSettings":{"_links":{"ringDelay":{"href":"1"}}}}}`, "ringDelay", "is given as a link"},
		{"JSON a link folding onto a property, named by rel after", JSON, `{"_embedded":{"x":{"_links":{"Ring Delay":{"href":"1"}},"rel":"simultaneousRingSettings"}}}`, "ringDelay", "is given as a link"},
		{"JSON a link named like a property, null", JSON, `{"_embedded":{"unansweredCallSettings":{"_links":{"ringDelay":null}}}}`, "ringDelay", "is given as a link"},
		{"JSON a link named like a property, in a resource named as neither", JSON, `{"_embedded":{"x":{"_links":{"ringDelay":{"href":"1"}}}}}`, "", ""},
		{"XML a link named like a property", XML, open + `<resource rel="unansweredCallSettings"><link rel="ringDelay" href="1"/></resource></resource>`, "ringDelay", "is given as a link"},
		{"XML a link named like a property, rel in another letter case and namespace", XML, open + `<resource><property name="rel">unansweredCallSettings</property><link xmlns:p="urn:p" p:REL="RingDelay" href="1"/></resource></resource>`, "ringDelay", "is given as a link"},
		{"XML as a pool serves it", XML, open + `<resource rel="simultaneousRingSettings" href="/x"><property name="rel">simultaneousRingSettings</property><property name="ringDelay">0</property><property name="target">Team</property></resource><resource rel="unansweredCallSettings"><property name="ringDelay"> 60 </property><property name="target"/></resource></resource>`, "", ""},
	}
	for _, tt := range tests {
		_, err := decodeOp(op, tt.format, []byte(tt.body))
		if tt.bad == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || err.Status != 400 || err.Subcode != SubcodeParameterValidationFailure || len(err.Parameters) < 1 || err.Parameters[0].Name != tt.bad {
			t.Errorf("%s: %v, want 400 ParameterValidationFailure naming %s", tt.name, err, tt.bad)
			continue
		}
		if !strings.Contains(err.Parameters[0].Reason, tt.reason) || !strings.Contains(err.Message, "embedded") {
			t.Errorf("%s: %q does not say %q", tt.name, err.Message, tt.reason)
		}
		for _, leak := range []string{"99", "61", "Delegates", "20.5"} {
			if strings.Contains(err.Message, leak) {
				t.Errorf("%s: %q holds %q", tt.name, err.Message, leak)
			}
		}
	}
}

// TestDecodeEmbeddedValueAttribute: in a PUT's embedded resource, a
// property the resource's rules read (its rel, a ringDelay) with an
// attribute beside its name is refused, as one at the top level is: a
// pool reading value="1" reads what the edge did not judge. Another
// property's attribute, and namespace declarations, pass.
func TestDecodeEmbeddedValueAttribute(t *testing.T) {
	op := mustOperation("callForwardingSettings")
	const open = `<resource xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa" rel="callForwardingSettings" href="/x">`
	for _, tt := range []struct {
		name, inner string
		ok          bool
	}{
		{"ringDelay in a value attribute", `<resource rel="unansweredCallSettings"><property name="ringDelay" value="1">10</property></resource>`, false},
		{"rel in a value attribute", `<resource><property name="Rel" p:value="unansweredCallSettings" xmlns:p="urn:p"/><property name="ringDelay">1</property></resource>`, false},
		{"a namespace declaration", `<resource rel="unansweredCallSettings"><property name="ringDelay" xmlns:p="urn:p">10</property></resource>`, true},
		{"another property's attribute", `<resource rel="unansweredCallSettings"><property name="x" value="1">a</property></resource>`, true},
	} {
		body := open + tt.inner + `</resource>`
		_, err := decodeOp(op, XML, []byte(body))
		checkDeserialization(t, tt.name, body, tt.ok, err, `has the attribute "`, "line 1, column")
	}
}
