package ucwa

import (
	"reflect"
	"strings"
	"testing"
)

// TestDecodeLookalikeNames holds both decoders to the query's rule for
// names: a body name that only folds onto a name the decoder reads (white
// space, controls, invisible or compatibility characters) is a 400
// ParameterValidationFailure naming the property and where it sits, never
// the name as written or any value; a name in another letter case is the
// property itself, as it always was; names that fold onto nothing pass.
func TestDecodeLookalikeNames(t *testing.T) {
	const open = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">`
	const number = "+1 900 555 1234"
	prop := func(name string) string {
		return open + `<property name="` + name + `">` + number + `</property></input>`
	}
	tests := []struct {
		name   string
		format Format
		body   string
		bad    string // the property the 400 names; "" to accept
		where  string // where the 400 says the name sits
		write  string // the spelling the 400 asks for
		want   values // when accepted
	}{
		// JSON: a top-level property.
		{name: "trailing space", format: JSON, body: `{"to":"sip:a@contoso.com","phoneNumber ":"` + number + `"}`, bad: PhoneNumber, where: "line 1, column 27", write: "write it phoneNumber"},
		{name: "leading space", format: JSON, body: `{" phoneNumber":"` + number + `"}`, bad: PhoneNumber},
		{name: "NUL", format: JSON, body: `{"phone\u0000Number":"` + number + `"}`, bad: PhoneNumber},
		{name: "tab", format: JSON, body: `{"phone\tNumber":"` + number + `"}`, bad: PhoneNumber},
		{name: "line feed", format: JSON, body: `{"to\n":"tel:` + number + `"}`, bad: To},
		{name: "DEL", format: JSON, body: `{"to` + "\x7f" + `":"tel:` + number + `"}`, bad: To},
		{name: "zero-width space", format: JSON, body: `{"phone` + "\u200b" + `Number":"` + number + `"}`, bad: PhoneNumber},
		{name: "zero-width space, escaped", format: JSON, body: `{"t\u200bo":"tel:` + number + `"}`, bad: To},
		{name: "bidirectional control", format: JSON, body: `{"to\u202e":"tel:` + number + `"}`, bad: To},
		{name: "no-break space", format: JSON, body: `{"to\u00a0":"tel:` + number + `"}`, bad: To},
		{name: "fullwidth", format: JSON, body: `{"ｔｏ":"tel:` + number + `"}`, bad: To},
		{name: "long s", format: JSON, body: `{"subject":"a","ſubject":"b"}`, bad: Subject, where: "line 1, column 16"},
		{name: "dotless i", format: JSON, body: `{"ımportance":"Bogus","to":"sip:a@b.c"}`, bad: Importance},
		{name: "combining accent", format: JSON, body: `{"to\u0301":"tel:` + number + `"}`, bad: To},
		{name: "other letter case and a space", format: JSON, body: `{"PHONENUMBER ":"` + number + `"}`, bad: PhoneNumber},
		{name: "beside the exact name", format: JSON, body: `{"to":"sip:a@b.c","to ":"tel:` + number + `"}`, bad: To},
		{name: "_links with a space", format: JSON, body: `{"_links ":{"customContent":{"href":"data:,x"}}}`, bad: "_links", write: "write it _links"},
		{name: "link name with a NUL", format: JSON, body: `{"_links":{"custom\u0000Content":{"href":"data:,x"}}}`, bad: CustomContent, where: "line 1, column 12", write: "write it _links.customContent"},
		{name: "link name, non-ASCII", format: JSON, body: `{"_links":{"cuſtomContent":{"href":"data:,x"}}}`, bad: CustomContent},
		{name: "href with a space", format: JSON, body: `{"_links":{"customContent":{" href":"data:,x"}}}`, bad: CustomContent, write: "write it _links.customContent.href"},
		{name: "href with a zero-width joiner", format: JSON, body: `{"_links":{"customContent":{"hr\u200def":"data:,x"}}}`, bad: CustomContent},

		{name: "exact names", format: JSON, body: `{"to":"sip:a@b.c","phoneNumber":"1","_links":{"customContent":{"href":"data:,x"}}}`,
			want: fv(To, "sip:a@b.c", PhoneNumber, "1", CustomContent, "data:,x")},
		{name: "other letter case is the property", format: JSON, body: `{"TO":"sip:a@b.c","PhoneNUMBER":"1","_LINKS":{"CUSTOMcontent":{"HREF":"data:,x"}}}`,
			want: fv(To, "sip:a@b.c", PhoneNumber, "1", CustomContent, "data:,x")},
		{name: "escaped letters are the property", format: JSON, body: `{"t\u006f":"sip:a@b.c"}`, want: fv(To, "sip:a@b.c")},
		// A JSON reader does not read %-escapes in names: the name is
		// another one, as it is to the pool.
		{name: "%-escape is another name", format: JSON, body: `{"t%6F":"tel:` + number + `"}`, want: fv()},
		{name: "names that fold onto nothing", format: JSON, body: `{"to s":1,"phone_Number":2,"t o o":3,"_links":{"custom Contents":{}},"x y":{"too":1}}`, want: fv()},
		{name: "nested objects are not read", format: JSON, body: `{"x":{"to ":" "}}`, want: fv()},

		// XML: the name attribute, as encoding/xml reads it.
		{name: "XML trailing space", format: XML, body: prop("phoneNumber "), bad: PhoneNumber, where: "line 1, column 62", write: "write it phoneNumber"},
		{name: "XML leading space", format: XML, body: prop(" phoneNumber"), bad: PhoneNumber},
		{name: "XML tab", format: XML, body: prop("phone\tNumber"), bad: PhoneNumber},
		{name: "XML line feed", format: XML, body: prop("phoneNumber\n"), bad: PhoneNumber},
		{name: "XML space reference", format: XML, body: prop("phoneNumber&#32;"), bad: PhoneNumber},
		{name: "XML tab reference", format: XML, body: prop("&#9;phoneNumber"), bad: PhoneNumber},
		{name: "XML hexadecimal reference", format: XML, body: prop("phone&#xA;Number"), bad: PhoneNumber},
		{name: "XML zero-width space reference", format: XML, body: prop("phone&#x200B;Number"), bad: PhoneNumber},
		{name: "XML zero-width space", format: XML, body: prop("phone\u200bNumber"), bad: PhoneNumber},
		{name: "XML fullwidth", format: XML, body: prop("ｔｏ"), bad: To},
		{name: "XML dotless i", format: XML, body: open + `<property name="ımportance">Bogus</property></input>`, bad: Importance, where: "line 1, column 62"},
		{name: "XML propertyList", format: XML, body: open + `<propertyList name="ſubject"/></input>`, bad: Subject},
		{name: "XML propertyList with a space", format: XML, body: open + `<propertyList name="to "><item>1</item></propertyList></input>`, bad: To},
		{name: "XML link rel with a space", format: XML, body: open + `<link rel="customContent " href="data:,x"/></input>`, bad: CustomContent, write: "write it customContent"},
		{name: "XML link rel, non-ASCII", format: XML, body: open + `<link rel="cuſtomContent" href="data:,x"/></input>`, bad: CustomContent},
		{name: "XML beside the exact name", format: XML, body: open + `<property name="to">sip:a@b.c</property><property name="to ">tel:1</property></input>`, bad: To},
		{name: "XML prefixed elements", format: XML, body: `<u:input xmlns:u="http://schemas.microsoft.com/rtc/2012/03/ucwa"><u:property name="to&#xD;">tel:1</u:property></u:input>`, bad: To},

		{name: "XML exact names", format: XML, body: open + `<property name="to">sip:a@b.c</property><property name="phoneNumber">1</property><link rel="customContent" href="data:,x"/></input>`,
			want: fv(To, "sip:a@b.c", PhoneNumber, "1", CustomContent, "data:,x")},
		{name: "XML other letter case is the property", format: XML, body: open + `<property name="TO">sip:a@b.c</property><property name="PHONEnumber">1</property></input>`,
			want: fv(To, "sip:a@b.c", PhoneNumber, "1")},
		{name: "XML names that fold onto nothing", format: XML, body: open + `<property name="to s">1</property><property name="phone_Number">2</property><link rel="custom Contents" href="x"/></input>`, want: fv()},
	}
	for _, tt := range tests {
		r, err := decode(tt.format, []byte(tt.body))
		if tt.bad == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
				continue
			}
			checkDecoded(t, tt.name, r, tt.want)
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
			continue
		}
		want := []Parameter{{Name: tt.bad}}
		var got []Parameter
		for _, p := range err.Parameters {
			got = append(got, Parameter{Name: p.Name})
		}
		if err.Status != 400 || err.Subcode != SubcodeParameterValidationFailure || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v %v, want 400 ParameterValidationFailure naming %s", tt.name, err, err.Parameters, tt.bad)
			continue
		}
		for _, s := range []string{"spelled otherwise", tt.where, tt.write} {
			if !strings.Contains(err.Message, s) {
				t.Errorf("%s: message %q does not say %q", tt.name, err.Message, s)
			}
		}
		// The message names the property, never a value or the name as
		// written.
		for _, leak := range []string{"900", "555", "sip:", "data:", "Bogus", "\x00", "\u200b", "ſ", "ı", "ｔ", `"`} {
			if strings.Contains(err.Message, leak) {
				t.Errorf("%s: message %q holds %q", tt.name, err.Message, leak)
			}
		}
	}
}

// TestDecodeLinkNamedLikeValue: a link (JSON _links.<name>, XML
// <link rel>) whose name is, in any letter case, or folds onto that of a
// property that is not a link is a 400 ParameterValidationFailure naming
// the property and the link as documented, never the name as written or
// the href; its value does not matter. Links of other names pass
// unread.
func TestDecodeLinkNamedLikeValue(t *testing.T) {
	const open = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">`
	link := func(rel string) string {
		return open + `<link rel="` + rel + `" href="tel:+19005551234"/></input>`
	}
	jsonLink := func(name string) string {
		return `{"to":"sip:john@contoso.com","_links":{"` + name + `":{"href":"tel:+19005551234"}}}`
	}
	tests := []struct {
		name   string
		rel    string // the operation; "" for startPhoneAudio
		format Format
		body   string
		bad    string // the property the 400 names; "" to accept
		link   string // how the 400 names the link
		where  string // where the 400 says the link sits
		want   values // when accepted
	}{
		{name: "phoneNumber", format: JSON, body: jsonLink("phoneNumber"), bad: PhoneNumber, link: `"_links.phoneNumber"`, where: "line 1, column 40"},
		{name: "to", format: JSON, body: `{"_links":{"to":{"href":"tel:+19005551234"}}}`, bad: To, link: `"_links.to"`, where: "line 1, column 12"},
		{name: "other letter case", format: JSON, body: jsonLink("PHONEnumber"), bad: PhoneNumber, link: `"_links.phoneNumber"`},
		{name: "trailing space", format: JSON, body: jsonLink("phoneNumber "), bad: PhoneNumber},
		{name: "NUL", format: JSON, body: jsonLink(`phone\u0000Number`), bad: PhoneNumber},
		{name: "tab", format: JSON, body: jsonLink(`\tto`), bad: To, link: `"_links.to"`},
		{name: "zero-width space", format: JSON, body: jsonLink("phone\u200bNumber"), bad: PhoneNumber},
		{name: "zero-width space, escaped", format: JSON, body: jsonLink(`phone\u200bNumber`), bad: PhoneNumber},
		{name: "fullwidth", format: JSON, body: jsonLink("ｔｏ"), bad: To},
		{name: "a property that is no destination", format: JSON, body: jsonLink("operationId"), bad: OperationID},
		{name: "a null link", format: JSON, body: `{"_links":{"subject":null}}`, bad: Subject},
		{name: "beside a link", format: JSON, body: `{"_links":{"customContent":{"href":"data:,x"},"to":{"href":"tel:+19005551234"}}}`, bad: To},
		{name: "forwarding target", rel: "immediateForwardToContact", format: JSON, body: `{"target":"sip:a@b.c","_links":{"target":{"href":"tel:+19005551234"}}}`, bad: "target"},
		{name: "links of no property's name", format: JSON, body: `{"_links":{"self":{"href":"/x"},"phoneNumbers":{"href":"tel:+19005551234"},"phone_Number":{},"customContent":{"to":""}}}`, want: fv()},
		// A JSON reader does not read %-escapes in names.
		{name: "%-escape is another name", format: JSON, body: jsonLink("phone%4Eumber"), want: fv(To, "sip:john@contoso.com")},

		{name: "XML phoneNumber", format: XML, body: link("phoneNumber"), bad: PhoneNumber, link: `<link rel="phoneNumber">`, where: "line 1, column 62"},
		{name: "XML other letter case", format: XML, body: link("TO"), bad: To, link: `<link rel="to">`},
		{name: "XML trailing space", format: XML, body: link("phoneNumber "), bad: PhoneNumber},
		{name: "XML tab reference", format: XML, body: link("&#9;to"), bad: To},
		{name: "XML zero-width space reference", format: XML, body: link("phone&#x200B;Number"), bad: PhoneNumber},
		{name: "XML zero-width space", format: XML, body: link("phone\u200bNumber"), bad: PhoneNumber},
		{name: "XML fullwidth", format: XML, body: link("ｔｏ"), bad: To},
		{name: "XML a property that is no destination", format: XML, body: link("subject"), bad: Subject},
		{name: "XML without href", format: XML, body: open + `<link rel="to"/></input>`, bad: To},
		{name: "XML in a resource", rel: "communication", format: XML, body: `<resource><link rel="phoneNumber" href="tel:+19005551234"/></resource>`, bad: PhoneNumber},
		{name: "XML links of no property's name", format: XML, body: open + `<link rel="self" href="/x"/>` + `<link rel="phoneNumbers" href="tel:+19005551234"/></input>`, want: fv()},
		// A link named like a destination in an embedded resource: TestDecodeEmbeddedDestination.
		{name: "XML in an embedded resource", rel: "communication", format: XML, body: `<resource><resource rel="x"><link rel="self" href="/x"/><link rel="customContent" href="data:,x"/></resource></resource>`, want: fv()},
	}
	for _, tt := range tests {
		op := spa
		if tt.rel != "" {
			op = mustOperation(tt.rel)
		}
		r, err := decodeOp(op, tt.format, []byte(tt.body))
		if tt.bad == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
				continue
			}
			checkDecoded(t, tt.name, r, tt.want)
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
			continue
		}
		if err.Status != 400 || err.Subcode != SubcodeParameterValidationFailure || len(err.Parameters) != 1 || err.Parameters[0].Name != tt.bad {
			t.Errorf("%s: %v %v, want 400 ParameterValidationFailure naming %s", tt.name, err, err.Parameters, tt.bad)
			continue
		}
		for _, s := range []string{"is not a link", tt.link, tt.where} {
			if !strings.Contains(err.Message, s) {
				t.Errorf("%s: message %q does not say %q", tt.name, err.Message, s)
			}
		}
		for _, leak := range []string{"900", "tel:", "\\", "\x00", "\u200b", "&#", "ｔ", "PHONE", "TO"} {
			if strings.Contains(err.Message, leak) {
				t.Errorf("%s: message %q holds %q", tt.name, err.Message, leak)
			}
		}
	}
}

// TestDecodeLookalikeNamesPlain checks that the check costs the names
// clients send no allocation: a body of plain names decodes into a
// request with one, the copy of the body as text that values share.
func TestDecodeLookalikeNamesPlain(t *testing.T) {
	for _, s := range []struct {
		format Format
		body   string
	}{
		{JSON, `{"to":"sip:a@b.c","phoneNumber":"+14255551234","operationId":"1","x_y-z":1}`},
		{XML, `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">sip:a@b.c</property><property name="phoneNumber">1</property></input>`},
	} {
		body := []byte(s.body)
		var r Request
		allocs := testing.AllocsPerRun(100, func() {
			if err := decodeInto(&r, spa, s.format, body); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 1 {
			t.Errorf("%v: %v allocations a decoding of plain names", s.format, allocs)
		}
	}
}

// TestDecodeXMLAttributeNamedLikeDestination: an XML attribute whose
// local name is a phone destination of the table, in any letter case or
// folding onto it, on any element (the root, a link, a property list's
// item, a PUT's resource, one nested in it), is refused naming the
// destination, unless it is blank or one of the destination's words: the
// edge reads no attribute so named, and a pool whose model maps
// attributes would dial the number it holds.
func TestDecodeXMLAttributeNamedLikeDestination(t *testing.T) {
	const input = `<input xmlns="` + Namespace + `"`
	const resource = `<resource xmlns="` + Namespace + `"`
	tests := []struct {
		rel  string
		body string
		bad  string // "": accepted
	}{
		{"startPhoneAudio", input + ` to="tel:+19005551234"><property name="to">sip:a@b.c</property></input>`, "to"},
		{"startPhoneAudio", input + ` PhoneNumber="+19005551234"><property name="to">sip:a@b.c</property></input>`, "phoneNumber"},
		{"startPhoneAudio", input + ` xmlns:p="urn:p" p:tO="1"><property name="to">a</property></input>`, "to"},
		{"startPhoneAudio", input + `><link rel="customContent" href="data:,x" TARGET="+19005551234"/><property name="to">a</property></input>`, "target"},
		{"startPhoneAudio", input + `><property name="to">a</property><propertyList name="x" delegator="1"><item number="+19005551234">a</item></propertyList></input>`, "delegator"},
		{"startPhoneAudio", input + `><property name="to">a</property><propertyList name="x"><item number="+19005551234">a</item></propertyList></input>`, "number"},
		{"immediateForwardToContact", input + ` target="+19005551234"><property name="target">tel:+14255551234</property></input>`, "target"},
		{"callForwardingSettings", resource + ` rel="callForwardingSettings" href="/x" target="+19005551234"><property name="activeSetting">None</property></resource>`, "target"},
		{"callForwardingSettings", resource + `><resource rel="immediateForwardSettings" href="/y" contact="tel:+19005551234"><property name="target">Contact</property></resource></resource>`, "contact"},

		{"startPhoneAudio", input + ` to=" " value="+19005551234"><link rel="customContent" href="data:,x" target="Contact" contact="/ucwa/v1/applications/1/people/2"/><property name="to">a</property></input>`, ""},
		{"callForwardingSettings", resource + ` rel="callForwardingSettings" href="/x"><resource rel="unansweredCallSettings" href="/y" target=" voicemail "><property name="target">Voicemail</property></resource></resource>`, ""},
	}
	for _, tt := range tests {
		_, err := decodeOp(mustOperation(tt.rel), XML, []byte(tt.body))
		if tt.bad == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.body, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tt.body)
			continue
		}
		if err.Status != 400 || err.Subcode != SubcodeParameterValidationFailure || len(err.Parameters) != 1 || err.Parameters[0].Name != tt.bad ||
			!strings.Contains(err.Message, "as an XML attribute") || !strings.Contains(err.Message, "line 1, column") {
			t.Errorf("%s: %v %v, want 400 ParameterValidationFailure naming %s", tt.body, err, err.Parameters, tt.bad)
		}
		for _, leak := range []string{"900", "tel:", "TARGET", "tO"} {
			if strings.Contains(err.Message, leak) {
				t.Errorf("%s: the message holds %q: %s", tt.body, leak, err.Message)
			}
		}
	}
}

// TestDecodeXMLNestedConstruct: a <property>, <propertyList>, <link> or
// <resource> (any letter case or namespace) inside a PUT's embedded
// resource's property list, link, property or unknown element, where the
// edge skips what it holds, is refused 400 DeserializationFailure: a pool
// that finds such elements wherever they stand would read a forwarding
// target the edge never judged. In the resource chain itself they are
// read and judged as before.
func TestDecodeXMLNestedConstruct(t *testing.T) {
	const open = `<resource xmlns="` + Namespace + `">`
	for _, tt := range []struct {
		body string
		bad  string // the construct refused; "": accepted
	}{
		{open + `<resource rel="simultaneousRingSettings"><link rel="self" href="/x"><property name="target">tel:+19005551234</property></link></resource></resource>`, "property"},
		{open + `<resource rel="x"><propertyList name="y"><item><RESOURCE rel="simultaneousRingSettings"/></item></propertyList></resource></resource>`, "resource"},
		{open + `<resource rel="x"><property name="subject"><p:link xmlns:p="urn:p" rel="contact" href="tel:1"/></property></resource></resource>`, "link"},
		{open + `<resource rel="x"><x><propertyList name="target"/></x></resource></resource>`, "propertyList"},
		{open + `<link rel="self" href="/x"><resource rel="simultaneousRingSettings"><property name="target">tel:+19005551234</property></resource></link></resource>`, "resource"},

		{open + `<resource rel="x"><resource rel="y"><property name="target">Contact</property><propertyList name="z"><item>a</item><x/></propertyList><link rel="self" href="/x"><y/></link></resource></resource></resource>`, ""},
	} {
		_, err := decodeOp(mustOperation("communication"), XML, []byte(tt.body))
		if tt.bad == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.body, err)
			}
			continue
		}
		if err == nil || err.Status != 400 || err.Subcode != SubcodeDeserializationFailure || !strings.Contains(err.Message, "A <"+tt.bad+"> inside an element whose content the edge does not read") {
			t.Errorf("%s: %v, want 400 DeserializationFailure naming <%s>", tt.body, err, tt.bad)
		}
	}
}

// TestDecodeXMLNestedDestination: an element inside what the edge skips
// (a property list's items, a link's content, an embedded resource's
// property or unknown element) named like a phone destination of the
// table, in any letter case or namespace, or whose name or rel attribute
// names one, is refused 400 ParameterValidationFailure naming the
// destination, never the value: a pool binding elements by name, or
// items by a name, would dial a number the edge never judged.
func TestDecodeXMLNestedDestination(t *testing.T) {
	const in = `<input xmlns="` + Namespace + `"><property name="to">sip:a@contoso.com</property>`
	const res = `<resource xmlns="` + Namespace + `">`
	for _, tt := range []struct {
		rel, body string
		bad       string // the destination refused; "": accepted
	}{
		{"startPhoneAudio", in + `<propertyList name="x"><item name="phoneNumber">+19005551234</item></propertyList></input>`, "phoneNumber"},
		{"startPhoneAudio", in + `<propertyList name="x"><item xmlns:p="urn:p" p:NAME="Number">+19005551234</item></propertyList></input>`, "number"},
		{"startPhoneAudio", in + `<propertyList name="x"><phoneNumber>+19005551234</phoneNumber></propertyList></input>`, "phoneNumber"},
		{"startPhoneAudio", in + `<link rel="self" href="/x"><p:TO xmlns:p="urn:p">+19005551234</p:TO></link></input>`, "to"},
		{"startPhoneAudio", in + `<link rel="self" href="/x"><x rel="target"/></link></input>`, "target"},
		{"communication", res + `<resource rel="x"><propertyList name="y"><item><delegator>1</delegator></item></propertyList></resource></resource>`, "delegator"},
		{"communication", res + `<resource rel="x"><property name="subject"><contact/></property></resource></resource>`, "contact"},

		{"startPhoneAudio", in + `<propertyList name="x"><item>+19005551234</item><item>a</item></propertyList><link rel="self" href="/x"><x name="y"/></link></input>`, ""},
	} {
		_, err := decodeOp(mustOperation(tt.rel), XML, []byte(tt.body))
		if tt.bad == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.body, err)
			}
			continue
		}
		if err == nil || err.Status != 400 || err.Subcode != SubcodeParameterValidationFailure || len(err.Parameters) != 1 || err.Parameters[0].Name != tt.bad ||
			!strings.Contains(err.Message, "inside an element whose content the edge does not read, at line 1, column") || strings.Contains(err.Message, "900") {
			t.Errorf("%s: %v, want 400 ParameterValidationFailure naming %s", tt.body, err, tt.bad)
		}
	}
}

// TestDecodeEmbeddedDestination: a property, property list or link named
// like a phone destination of the table inside an embedded resource
// (JSON "_embedded", at any depth, also in arrays and under a name
// folding onto it; a <resource> nested in a PUT's) is refused naming the
// destination, unless it is a property whose value is null, blank or a
// word the table's properties of that name take. Everything else in an
// embedded resource passes as it came.
func TestDecodeEmbeddedDestination(t *testing.T) {
	const open = `<resource xmlns="` + Namespace + `">`
	tests := []struct {
		rel    string
		format Format
		body   string
		bad    string // "": accepted
	}{
		{"callForwardingSettings", JSON, `{"_embedded":{"simultaneousRingSettings":{"target":"tel:+19005551234"}}}`, "target"},
		{"callForwardingSettings", JSON, `{"_embedded":{"simultaneousRingSettings":{"Target":"+19005551234"}}}`, "target"},
		{"callForwardingSettings", JSON, `{"_embedded":{"simultaneousRingSettings":{"target ":"+19005551234"}}}`, "target"},
		{"callForwardingSettings", JSON, `{"_embedded":{"x":{"target":19005551234}}}`, "target"},
		{"callForwardingSettings", JSON, `{"_embedded":{"x":{"target":{"href":"tel:+19005551234"}}}}`, "target"},
		{"callForwardingSettings", JSON, `{"_embedded":{"x":{"target":"Contact","_links":{"TARGET":null}}}}`, "target"},
		{"callForwardingSettings", JSON, `{"_embedded":{"x":[null,{"delegator":"sip:a@b"}]}}`, "delegator"},
		{"callForwardingSettings", JSON, `{"_embedded":[{"number":"1"}]}`, "number"},
		{"callForwardingSettings", JSON, `{"_EMBEDDED":{"x":{"_embedded":{"y":{"phone\u0000Number":"1"}}}}}`, "phoneNumber"},
		{"callForwardingSettings", JSON, `{"_embedded\t":{"x":{"to":"1"}}}`, "to"},
		{"startPhoneAudio", JSON, `{"to":"sip:a@b.c","_embedded":{"x":{"to":"tel:+19005551234"}}}`, "to"},
		{"communication", XML, open + `<resource rel="x"><property name="phoneNumber">1</property></resource></resource>`, "phoneNumber"},
		{"communication", XML, open + `<resource rel="x"><property name="target">Con<b/>tact</property></resource></resource>`, "target"},
		{"communication", XML, open + `<resource rel="x"><Resource><LINK REL="to" href="1"/></Resource></resource></resource>`, "to"},
		{"communication", XML, open + `<resource rel="x"><propertyList name="number"><item>1</item></propertyList></resource></resource>`, "number"},
		{"communication", XML, open + `<resource rel="x"><property xmlns:p="urn:p" p:name="phoneNumber">1</property></resource></resource>`, "phoneNumber"},
		{"communication", XML, open + `<resource rel="x"><property name="target&#9;">1</property></resource></resource>`, "target"},
		{"communication", XML, open + `<resource rel="x"><property name="target" value="tel:+19005551234"/></resource></resource>`, "target"},
		{"communication", XML, open + `<resource rel="x"><property NAME="phoneNumber" xmlns:p="urn:p" p:value="1"/></resource></resource>`, "phoneNumber"},
		{"communication", XML, open + `<resource rel="x"><x name="to"/></resource></resource>`, "to"},
		{"communication", XML, open + `<resource rel="x"><item p:Rel="Target" xmlns:p="urn:p">1</item></resource></resource>`, "target"},

		{"callForwardingSettings", JSON, `{"_embedded":{"simultaneousRingSettings":{"target":"contact","ringDelay":5,"_links":{"self":{"href":"/x"}}},"immediateForwardSettings":{"target":" Voicemail "},"unansweredCallSettings":{"target":null,"phoneNumber":""}}}`, ""},
		{"callForwardingSettings", JSON, `{"_embedded":null,"x":{"target":"Contact"},"_links":{"self":{"href":"/x"}}}`, ""},
		{"callForwardingSettings", JSON, `{"_embedded":{"x":"tel:+19005551234","y":[1,{"name":"to"}]}}`, ""},
		{"communication", XML, open + `<resource rel="x"><property name="target"><!-- c -->Contact</property><property name="name">tel:+19005551234</property><link rel="self" href="/x"/><x name="y"/></resource></resource>`, ""},
		{"communication", XML, open + `<resource rel="x"><property name="subject" value="1">a</property><property xmlns="urn:x" Name="target">Contact</property></resource></resource>`, ""},
	}
	for _, tt := range tests {
		op := mustOperation(tt.rel)
		_, err := decodeOp(op, tt.format, []byte(tt.body))
		if tt.bad == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.body, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tt.body)
			continue
		}
		if err.Status != 400 || err.Subcode != SubcodeParameterValidationFailure || len(err.Parameters) != 1 || err.Parameters[0].Name != tt.bad ||
			!strings.Contains(err.Message, "embedded resource") || !strings.Contains(err.Message, "line 1, column") {
			t.Errorf("%s: %v %v, want 400 ParameterValidationFailure naming %s", tt.body, err, err.Parameters, tt.bad)
		}
		for _, leak := range []string{"900", "tel:", "TARGET", "\x00", "\t"} {
			if strings.Contains(err.Message, leak) {
				t.Errorf("%s: message %q holds %q", tt.body, err.Message, leak)
			}
		}
	}
}

// TestDecodeJSONUnreadDestination: a member named like a phone
// destination of the table (any letter case, or folding onto it), unless
// null, blank or one of its words, or named "_embedded", inside a JSON
// value the edge does not read (a link's member other than href, a link
// no operation takes, an unknown property's value, an embedded
// resource's member no rules read; at any depth, in arrays too) is
// refused 400, naming the destination and where, never the value: a pool
// finding members wherever they stand would read a number never judged.
// XML refuses the same as attributes and nested constructs.
func TestDecodeJSONUnreadDestination(t *testing.T) {
	for _, tt := range []struct {
		rel, body string
		bad       string // the destination refused, "_embedded", or "": accepted
		where     string
	}{
		{"startPhoneAudio", `{"to":"+14255551234","_links":{"self":{"href":"/x","to":"+19005551234"}}}`, "to", "line 1, column 52"},
		{"startPhoneAudio", `{"to":"+14255551234","_links":{"self":[{"href":"/x"},{"PhoneNumber":"+19005551234"}]}}`, "phoneNumber", ""},
		{"startPhoneAudio", `{"to":"+14255551234","_links":{"customContent":{"href":"data:,x","target":"+19005551234"}}}`, "target", ""},
		{"startPhoneAudio", `{"to":"+14255551234","x":{"y":[1,{"number ":"+19005551234"}]}}`, "number", ""},
		{"startPhoneAudio", `{"to":"+14255551234","x":{"delegator":{"href":"tel:+19005551234"}}}`, "delegator", ""},
		{"startPhoneAudio", `{"to":"+14255551234","x":{"contact":"tel:+19005551234"}}`, "contact", ""},
		{"callForwardingSettings", `{"activeSetting":"None","x":{"_embedded":{"simultaneousRingSettings":{"target":"+19005551234"}}}}`, "_embedded", "line 1, column 30"},
		{"callForwardingSettings", `{"activeSetting":"None","x":[{"_EMBEDDED":{}}]}`, "_embedded", ""},
		{"callForwardingSettings", `{"_links":{"self":{"href":"/x","_embedded":{"simultaneousRingSettings":{"target":"+19005551234"}}}}}`, "_embedded", ""},
		{"callForwardingSettings", `{"_embedded":{"x":{"y":{"target":"+19005551234"}}}}`, "target", ""},
		{"callForwardingSettings", `{"_embedded":{"x":{"_links":{"self":{"href":"/x","to":"+19005551234"}}}}}`, "to", ""},
		{"callForwardingSettings", `{"_embedded":{"x":{"_links":{"contact":{"href":"/people/1","number":"+19005551234"}}}}}`, "number", ""},
		{"callForwardingSettings", `{"_embedded":{"x":[[{"target":"+19005551234"}]]}}`, "target", ""},
		{"callForwardingSettings", `{"_embedded":{"simultaneousRingSettings":{"rel":{"target":"+19005551234"}}}}`, "target", ""},
		{"callForwardingSettings", `{"_embedded":{"x":{"y":{"_embedded":{}}}}}`, "_embedded", ""},

		{"startPhoneAudio", `{"to":"+14255551234","_links":{"self":{"href":"/x","title":"t","to":null,"phoneNumber":" "}},"x":{"target":"Contact","a":[{"b":"+19005551234"}]}}`, "", ""},
		{"callForwardingSettings", `{"activeSetting":"None","x":{"contact":"/ucwa/v1/people/282","embedded":1},"_embedded":{"x":{"y":{"z":"+19005551234"},"_links":{"contact":{"href":"/people/1","title":"t"}}}}}`, "", ""},
	} {
		_, err := decodeOp(mustOperation(tt.rel), JSON, []byte(tt.body))
		if tt.bad == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.body, err)
			}
			continue
		}
		if err == nil || err.Status != 400 || !strings.Contains(err.Message, "line 1, column") || !strings.Contains(err.Message, tt.where) || strings.Contains(err.Message, "900") {
			t.Errorf("%s: %v, want 400 saying where, not the value", tt.body, err)
			continue
		}
		if tt.bad == embeddedName {
			if err.Subcode != SubcodeDeserializationFailure || !strings.Contains(err.Message, `An "_embedded" inside`) {
				t.Errorf("%s: %v, want DeserializationFailure naming _embedded", tt.body, err)
			}
			continue
		}
		if err.Subcode != SubcodeParameterValidationFailure || len(err.Parameters) != 1 || err.Parameters[0].Name != tt.bad ||
			!strings.Contains(err.Message, "where the edge does not judge it") {
			t.Errorf("%s: %v %v, want ParameterValidationFailure naming %s", tt.body, err, err.Parameters, tt.bad)
		}
	}
}

// TestDecodeJSONUnreadAsRead: inside a JSON value the edge does not
// read (an unknown property's, a link the operation does not take, a
// link's member other than href, an embedded resource's member no rules
// read; at any depth, in arrays too), a "_links" or "_embedded" (any
// letter case, or folding onto it), whatever it holds, is refused 400
// DeserializationFailure, as XML refuses a <link> or <resource> where it
// skips: a pool finding links wherever they stand would read an href the
// edge never judged. Its objects are held to the rules of those the edge
// reads: no .NET metadata member, no name twice in any letter case, no
// name outside ASCII. The message says where, never a name as written or
// a value; unread content without such a thing passes as sent.
func TestDecodeJSONUnreadAsRead(t *testing.T) {
	for _, tt := range []struct {
		rel, body string
		want      []string // what the refusal says; nil: accepted as sent
	}{
		{"startPhoneAudio", `{"to":"+14255551234","x":{"_links":{"customContent":{"href":"data:,x"}}}}`,
			[]string{`A "_links" inside the value of a property the operation does not take, at line 1, column 27`}},
		{"startPhoneAudio", `{"to":"+14255551234","_links":{"self":{"href":"/x","_links":{}}}}`,
			[]string{`A "_links" inside a link the operation does not take`}},
		{"startPhoneAudio", `{"to":"+14255551234","_links":{"customContent":{"href":"data:,x","_LINKS":null}}}`,
			[]string{`A "_links" inside a link's member other than "href"`}},
		{"startPhoneAudio", `{"to":"+14255551234","x":[1,{"_links\u0000":null}]}`,
			[]string{`A "_links" inside the value of a property`, "line 1, column 30"}},
		{"callForwardingSettings", `{"_embedded":{"simultaneousRingSettings":{"x":{"_links":{"self":{"href":"/y"}}}}}}`,
			[]string{`A "_links" inside an embedded resource's member that no rules read`}},
		{"startPhoneAudio", `{"to":"+14255551234","x":{"y":{"$type":"X, Y"}}}`,
			[]string{"A member inside the value of a property the operation does not take is .NET metadata", "line 1, column 32"}},
		{"startPhoneAudio", `{"to":"+14255551234","_links":{"self":{"href":"/x","$REF":"1"}}}`,
			[]string{"A member inside a link the operation does not take is .NET metadata"}},
		{"startPhoneAudio", `{"to":"+14255551234","x":{"a":1,"A":2}}`,
			[]string{"A member's name inside the value of a property the operation does not take appears twice (in any letter case), at line 1, column 33"}},
		{"startPhoneAudio", `{"to":"+14255551234","x":[{"+19005551234":1,"+19005551234":2}]}`,
			[]string{"appears twice", "line 1, column 45"}},
		{"startPhoneAudio", `{"to":"+14255551234","x":{"y\u00e9":1}}`,
			[]string{"A member's name inside the value of a property the operation does not take has a character outside ASCII, at line 1, column 27"}},

		{"startPhoneAudio", `{"to":"+14255551234","x":{"a":1,"b":[{"a":2},{"A":3}],"links":{"href":"/x"},"embedded":null,"type":"$type","c d":"_links"},"_links":{"self":{"href":"/x","title":"t"}}}`, nil},
		{"callForwardingSettings", `{"activeSetting":"SimultaneousRing","_links":{"self":{"href":"/x"}},"_embedded":{"simultaneousRingSettings":{"target":"Contact","ringDelay":5,"x":{"y":[1,{"z":"w"}]},"_links":{"self":{"href":"/y","title":"t"},"contact":{"href":"/ucwa/v1/people/282"}}}}}`, nil},
	} {
		r, err := decodeOp(mustOperation(tt.rel), JSON, []byte(tt.body))
		if tt.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tt.body, err)
			} else if out := r.Encode(); string(out) != tt.body {
				t.Errorf("%s: re-encodes as %s", tt.body, out)
			}
			continue
		}
		if err == nil || err.Status != 400 || err.Subcode != SubcodeDeserializationFailure || err.Parameters != nil {
			t.Errorf("%s: %v, want 400 DeserializationFailure", tt.body, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Message, w) {
				t.Errorf("%s: message %q does not say %q", tt.body, err.Message, w)
			}
		}
		for _, leak := range []string{"900", "$type", "$REF", "_LINKS", `"A"`, "é", "data:", `\u`} {
			if strings.Contains(err.Message, leak) {
				t.Errorf("%s: message %q holds %q", tt.body, err.Message, leak)
			}
		}
	}
}

// TestDecodeJSONRefusesDotNetMetadata: Json.NET resolves an object whose
// member is "$ref" to the object registered under that "$id" elsewhere in
// the body, whatever PreserveReferencesHandling says (its
// JsonSerializerInternalReader reads $ref unconditionally). A link given
// as {"$ref":"1"} is absent to the edge and, to a .NET pool, the href of
// another link the edge never judged. "$type" (Json.NET) and "__type"
// (DataContractJsonSerializer) choose the type the pool builds, and with
// it what it reads. The edge refuses all three in every object of the
// body, those it reads and those it skips (a pool building the skipped
// value honours its type hint all the same).
func TestDecodeJSONRefusesDotNetMetadata(t *testing.T) {
	for _, body := range []string{
		`{"to":"sip:a@b.c","_links":{"self":{"$id":"1","href":"data:,unjudged"},"customContent":{"$ref":"1"}}}`,
		`{"to":"sip:a@b.c","_links":{"self":{"$id":"1","href":"data:,unjudged"},"customContent":{"\u0024ref":"1"}}}`,
		`{"to":"sip:a@b.c","_links":{"customContent":{"$id":"2","$ref":"1"}}}`,
		`{"$ref":"1"}`,
		`{"to":"sip:a@b.c","_links":{"$ref":"1"}}`,
		`{"to":"sip:a@b.c","_embedded":{"x":{"$ref":"1"}}}`,
		`{"to":"sip:a@b.c","_embedded":{"x":{"_links":{"$REF":"1"}}}}`,
		`{"$type":"Microsoft.Rtc.X, Y","to":"sip:a@b.c"}`,
		`{"__type":"X:#Y","to":"sip:a@b.c"}`,
		`{"to":"sip:a@b.c","_links":{"customContent":{"$Type":"X","href":"data:,x"}}}`,
		`{"to":"sip:a@b.c","other":{"$ref":"1"}}`,
		`{"to":"sip:a@b.c","other":[{"a":{"$type":"System.Windows.Data.ObjectDataProvider, PresentationFramework"}}]}`,
		`{"to":"sip:a@b.c","_links":{"self":{"href":"/x","__TYPE":"X:#Y"}}}`,
	} {
		_, err := decodeOp(spa, JSON, []byte(body))
		if err == nil || err.Status != 400 || err.Subcode != SubcodeDeserializationFailure || !strings.Contains(err.Message, ".NET metadata") {
			t.Errorf("%s: got %+v, want a 400 DeserializationFailure naming .NET metadata", body, err)
		}
	}
	// As a value it is nothing a pool reads as metadata.
	for _, body := range []string{
		`{"to":"sip:a@b.c","subject":"$ref"}`,
		`{"to":"sip:a@b.c","other":{"a":"$type"}}`,
		`{"to":"sip:a@b.c","subject":"__type"}`,
	} {
		if _, err := decodeOp(spa, JSON, []byte(body)); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

// TestDecodePropertyNamedLikeLink: a top-level property (JSON member,
// XML <property> or <propertyList>) whose name is, in any letter case, or
// folds onto that of a link of the operation is a 400
// ParameterValidationFailure naming the link and where to give it, never
// the name as written or the value, unless it holds null or blank text
// (nothing a pool could take for the link). XML has no _links or
// _embedded property.
func TestDecodePropertyNamedLikeLink(t *testing.T) {
	const open = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">`
	tests := []struct {
		name   string
		format Format
		body   string
		write  string // the link the 400 asks for; "" to accept
		where  string
	}{
		{"JSON", JSON, `{"to":"sip:a@b.c","customContent":"data:,x"}`, "_links.customContent.href", "line 1, column 19"},
		{"JSON other letter case", JSON, `{"CUSTOMCONTENT":"data:,x"}`, "_links.customContent.href", "line 1, column 2"},
		{"JSON an object", JSON, `{"customContent":{"href":"data:,x"}}`, "_links.customContent.href", "line 1, column 2"},
		{"JSON folding onto the link", JSON, `{"customContent\u0000":null}`, "_links.customContent.href", "line 1, column 2"},
		{"JSON trailing space", JSON, `{"customContent ":"data:,x"}`, "_links.customContent.href", "line 1, column 2"},
		{"JSON null", JSON, `{"customContent":null,"_links":{"customContent":{"href":"data:,x"}}}`, "", ""},
		{"JSON blank", JSON, `{"customContent":" "}`, "", ""},
		{"XML", XML, open + `<property name="customContent">data:,x</property></input>`, `<link rel="customContent">`, "line 1, column 62"},
		{"XML other letter case", XML, open + `<property name="CustomContent">data:,x</property></input>`, `<link rel="customContent">`, "line 1, column 62"},
		{"XML folding onto the link", XML, open + `<property name="customContent&#9;"/></input>`, `<link rel="customContent">`, "line 1, column 62"},
		{"XML propertyList", XML, open + `<propertyList name="customContent"><item>data:,x</item></propertyList></input>`, `<link rel="customContent">`, "line 1, column 62"},
		{"XML blank", XML, open + `<property name="customContent"> </property><property name="customcontent_x">1</property></input>`, "", ""},
	}
	for _, tt := range tests {
		_, err := decode(tt.format, []byte(tt.body))
		if tt.write == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || err.Status != 400 || err.Subcode != SubcodeParameterValidationFailure || len(err.Parameters) != 1 || err.Parameters[0].Name != CustomContent {
			t.Errorf("%s: %v, want 400 ParameterValidationFailure naming customContent", tt.name, err)
			continue
		}
		for _, s := range []string{"is a link: write it as " + tt.write, tt.where} {
			if !strings.Contains(err.Message, s) {
				t.Errorf("%s: message %q does not say %q", tt.name, err.Message, s)
			}
		}
		if strings.Contains(err.Message, "data:") || strings.Contains(err.Message, "\x00") || strings.Contains(err.Message, "CUSTOM") {
			t.Errorf("%s: message %q holds the value or the name as written", tt.name, err.Message)
		}
	}
	for _, name := range []string{"_links", "_EMBEDDED", "_links&#9;"} {
		for _, elem := range []string{"property", "propertyList"} {
			body := open + `<` + elem + ` name="` + name + `">x</` + elem + `></input>`
			if _, err := decode(XML, []byte(body)); err == nil || err.Subcode != SubcodeDeserializationFailure || !strings.Contains(err.Message, "named like JSON's _links or _embedded") {
				t.Errorf("XML %s %s: %v, want 400 DeserializationFailure", elem, name, err)
			}
		}
	}
}

// TestDecodeUnreadInput: a member named like an input of the operation
// other than a phone destination (operationId, ringDelay, subject, a
// link's name, the properties of the resources a PUT embeds), in any
// letter case, folding onto it or as a part of a model-binding spelling,
// inside a JSON value the edge does not read (an unknown property's, a
// link's member other than href, an embedded resource's member no rules
// read; at any depth, in arrays too) is refused 400
// ParameterValidationFailure naming the input and where, never the
// value, whatever it holds, as the flat spelling "x.operationId" is: ASP.NET
// MVC's JsonValueProviderFactory reads {"x":{"operationId":"b"}} as the
// key x.operationId, which a pool's parameter x binds. XML refuses an
// element so named, or named so by its name or rel, where it skips.
// Members named otherwise pass as sent.
func TestDecodeUnreadInput(t *testing.T) {
	const in = `<input xmlns="` + Namespace + `"><property name="to">sip:a@contoso.com</property>`
	const res = `<resource xmlns="` + Namespace + `">`
	for _, tt := range []struct {
		rel    string
		format Format
		body   string
		bad    string // the input refused; "": accepted
		where  string
	}{
		{"startPhoneAudio", JSON, `{"to":"sip:a@b.c","operationId":"a","x":{"operationId":"b"}}`, "operationId", "the value of a property the operation does not take, at line 1, column 42"},
		{"startPhoneAudio", JSON, `{"to":"sip:a@b.c","x":{"OPERATIONID":null}}`, "operationId", ""},
		{"startPhoneAudio", JSON, `{"to":"sip:a@b.c","x":[{"y":{"operationId ":"b"}}]}`, "operationId", ""},
		{"startPhoneAudio", JSON, `{"to":"sip:a@b.c","x":{"y.subject":"b"}}`, "subject", ""},
		{"startPhoneAudio", JSON, `{"to":"sip:a@b.c","x":{"customContent":{"href":"data:,x"}}}`, "customContent", ""},
		{"startPhoneAudio", JSON, `{"to":"sip:a@b.c","_links":{"customContent":{"href":"data:,x","operationId":"b"}}}`, "operationId", `a link's member other than "href"`},
		{"startPhoneAudio", JSON, `{"to":"sip:a@b.c","_links":{"self":{"href":"/x","importance":"Emergency"}}}`, "importance", "a link the operation does not take"},
		{"unansweredCallToContact", JSON, `{"target":"sip:a@b.c","x":{"ringDelay":1}}`, "ringDelay", ""},
		{"unansweredCallSettings", JSON, `{"ringDelay":10,"x":{"ringDelay":1}}`, "ringDelay", ""},
		{"continueAudio", JSON, `{"x":{"sessionContext":"b"}}`, "sessionContext", ""},
		// A PUT's embedded resources' properties are its inputs too: MVC
		// binds {"unansweredCallSettings":{"ringDelay":1}} to a model's
		// unansweredCallSettings.
		{"callForwardingSettings", JSON, `{"activeSetting":"None","unansweredCallSettings":{"ringDelay":1}}`, "ringDelay", ""},
		{"callForwardingSettings", JSON, `{"_embedded":{"unansweredCallSettings":{"ringDelay":10,"x":{"ringDelay":1}}}}`, "ringDelay", "an embedded resource's member that no rules read"},
		{"callForwardingSettings", JSON, `{"x":{"activePeriod":"Always"}}`, "activePeriod", ""},
		// Inside an embedded resource, the flat spelling too.
		{"callForwardingSettings", JSON, `{"_embedded":{"unansweredCallSettings":{"ringDelay":10,"x.ringDelay":1}}}`, "ringDelay", "inside an embedded resource"},
		{"callForwardingSettings", JSON, `{"_embedded":{"x":[{"y[0].activeSetting":"None"}]}}`, "activeSetting", "inside an embedded resource"},
		{"callForwardingSettings", XML, res + `<resource rel="unansweredCallSettings"><property name="x.ringDelay">1</property></resource></resource>`, "ringDelay", "inside an embedded resource"},
		{"callForwardingSettings", XML, res + `<resource rel="x"><propertyList name="x[0].RingDelay"/></resource></resource>`, "ringDelay", "inside an embedded resource"},

		{"startPhoneAudio", XML, in + `<propertyList name="x"><item name="operationId">b</item></propertyList></input>`, "operationId", "inside an element whose content the edge does not read, at line 1, column"},
		{"startPhoneAudio", XML, in + `<link rel="self" href="/x"><x rel="operationId"/></link></input>`, "operationId", ""},
		{"unansweredCallToContact", XML, `<input xmlns="` + Namespace + `"><property name="target">sip:a@b.c</property><propertyList name="x"><ringDelay>1</ringDelay></propertyList></input>`, "ringDelay", ""},
		{"callForwardingSettings", XML, res + `<resource rel="unansweredCallSettings"><property name="ringDelay">10</property><propertyList name="x"><item name="ringDelay">1</item></propertyList></resource></resource>`, "ringDelay", ""},
		{"callForwardingSettings", XML, res + `<resource rel="x"><ringDelay>1</ringDelay></resource></resource>`, "ringDelay", "inside an embedded resource"},

		// Names that are no input pass as sent, and destinations keep
		// their words.
		{"startPhoneAudio", JSON, `{"to":"sip:a@b.c","x":{"y":1,"operations":"b","id":2},"_links":{"self":{"href":"/x","title":"t","revision":"2"}}}`, "", ""},
		{"callForwardingSettings", JSON, `{"activeSetting":"None","x":{"target":"Voicemail"},"_embedded":{"simultaneousRingSettings":{"ringDelay":5,"target":"Contact","_links":{"self":{"href":"/x"}}}}}`, "", ""},
		{"callForwardingSettings", JSON, `{"_embedded":{"unansweredCallSettings":{"x.target":"Contact","x.y":1},"x":{"_embedded":{"y":{"ringDelay":1}}}}}`, "", ""},
		{"callForwardingSettings", XML, res + `<resource rel="unansweredCallSettings"><property name="ringDelay">10</property><property name="x.y">1</property></resource></resource>`, "", ""},
		{"startPhoneAudio", XML, in + `<propertyList name="x"><item name="y">b</item></propertyList><link rel="self" href="/x"><x name="z"/></link></input>`, "", ""},
	} {
		_, err := decodeOp(mustOperation(tt.rel), tt.format, []byte(tt.body))
		if tt.bad == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.body, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tt.body)
			continue
		}
		if err.Status != 400 || err.Subcode != SubcodeParameterValidationFailure || len(err.Parameters) != 1 || err.Parameters[0].Name != tt.bad ||
			!strings.Contains(err.Message, "line 1, column") || !strings.Contains(err.Message, tt.where) || !strings.Contains(err.Message, "where the edge does not") {
			t.Errorf("%s: %v %v, want 400 ParameterValidationFailure naming %s", tt.body, err, err.Parameters, tt.bad)
			continue
		}
		for _, leak := range []string{`"b"`, "Always", "OPERATIONID", "Emergency"} {
			if strings.Contains(err.Message, leak) {
				t.Errorf("%s: message %q holds %q", tt.body, err.Message, leak)
			}
		}
	}
}

// TestDecodeBodyBindingKeys: the body's spellings of the keys ASP.NET
// MVC's model binding reads as an input although the edge sees no name
// of one. A dictionary entry keyed by any input of the operation (a
// destination, operationId, or another: subject, ringDelay), given as a
// JSON value's {"key":...} or flat ("x[0].key", "[a].key" as "index"
// lists it, or an XML property so named), is refused naming the input:
// DefaultModelBinder.UpdateDictionary binds x[i].key and x[i].value as
// the entry x[key]. A top-level name that is an index alone ("[0]",
// "[a]") holding anything but null or a blank string is refused: MVC
// binds it as an element of a collection parameter under the empty
// prefix (UpdateCollection). A PUT's embedded resource's property under
// a model-binding prefix ("unansweredCallSettings.ringDelay") is refused
// naming it.
func TestDecodeBodyBindingKeys(t *testing.T) {
	const in = `<input xmlns="` + Namespace + `"><property name="to">sip:a@contoso.com</property>`
	const res = `<resource xmlns="` + Namespace + `">`
	for _, tt := range []struct {
		rel    string
		format Format
		body   string
		bad    string // the input refused; "[]": the index alone; "": accepted
		want   string
	}{
		{"startPhoneAudio", JSON, `{"to":"sip:a@b.c","x":[{"key":"subject","value":"b"}]}`, "subject", "dictionary entry"},
		{"unansweredCallToContact", JSON, `{"target":"sip:a@b.c","x":{"y":[{"key":"ringDelay","value":1}]}}`, "ringDelay", "dictionary entry"},
		{"callForwardingSettings", JSON, `{"x":[{"key":"ringDelay","value":1}]}`, "ringDelay", "dictionary entry"},
		{"startPhoneAudio", JSON, `{"to":"sip:a@b.c","x[0].key":"phoneNumber","x[0].value":"tel:+19005551234"}`, "phoneNumber", "dictionary entry"},
		{"startPhoneAudio", JSON, `{"to":"sip:a@b.c","index":"a","[a].Key":"operationId","[a].value":"b"}`, "operationId", "dictionary entry"},
		{"unansweredCallToContact", JSON, `{"target":"sip:a@b.c","x":{"index":"a"},"x[a].key":"ringDelay","x[a].value":1}`, "ringDelay", "dictionary entry"},
		{"startPhoneAudio", JSON, `{"to":"sip:a@b.c","x":{"y[0].key":"to","y[0].value":"tel:+19005551234"}}`, "to", "dictionary entry"},
		{"startPhoneAudio", XML, in + `<property name="x[0].key">phoneNumber</property><property name="x[0].value">tel:+19005551234</property></input>`, "phoneNumber", "dictionary entry"},
		{"startPhoneAudio", JSON, `{"to":"sip:a@b.c","[0]":"tel:+19005551234"}`, "[]", "index alone"},
		{"startPhoneAudio", JSON, `{"to":"sip:a@b.c","index":"a","[a]":"tel:+19005551234"}`, "[]", "index alone"},
		{"startPhoneAudio", JSON, `{"to":"sip:a@b.c","[0]":{"x":1}}`, "[]", "index alone"},
		{"startPhoneAudio", XML, in + `<property name="[a]">tel:+19005551234</property></input>`, "[]", "index alone"},
		{"startPhoneAudio", XML, in + `<propertyList name="[0]"><item>tel:+19005551234</item></propertyList></input>`, "[]", "index alone"},
		{"callForwardingSettings", JSON, `{"unansweredCallSettings.ringDelay":1}`, "ringDelay", "resource the operation embeds"},
		{"callForwardingSettings", JSON, `{"x[0].RingDelay":1}`, "ringDelay", "resource the operation embeds"},
		{"callForwardingSettings", XML, res + `<property name="unansweredCallSettings.ringDelay">1</property></resource>`, "ringDelay", "resource the operation embeds"},
		{"callForwardingSettings", XML, res + `<link rel="unansweredCallSettings.ringDelay" href="/x"/></resource>`, "ringDelay", "resource the operation embeds"},
		{"callForwardingSettings", JSON, `{"_links":{"unansweredCallSettings.ringDelay":{"href":"/x"}}}`, "ringDelay", "resource the operation embeds"},

		{"startPhoneAudio", JSON, `{"to":"sip:a@b.c","[0]":null,"[1]":" ","x[0].key":"locale","x[0].value":"en","y":[{"key":"tos"}]}`, "", ""},
		{"startPhoneAudio", XML, in + `<property name="[0]"> </property><property name="x[0].key">locale</property></input>`, "", ""},
		{"callForwardingSettings", JSON, `{"ringDelay":1,"x.y":1,"_embedded":{"unansweredCallSettings":{"ringDelay":10}}}`, "", ""},
	} {
		_, err := decodeOp(mustOperation(tt.rel), tt.format, []byte(tt.body))
		switch {
		case tt.bad == "":
			if err != nil {
				t.Errorf("%s: %v", tt.body, err)
			}
			continue
		case err == nil:
			t.Errorf("%s: accepted", tt.body)
			continue
		case tt.bad == "[]":
			if err.Status != 400 || err.Subcode != SubcodeDeserializationFailure || err.Parameters != nil {
				t.Errorf("%s: %v, want 400 DeserializationFailure", tt.body, err)
			}
		case err.Status != 400 || err.Subcode != SubcodeParameterValidationFailure || len(err.Parameters) != 1 || err.Parameters[0].Name != tt.bad:
			t.Errorf("%s: %v %v, want 400 ParameterValidationFailure naming %s", tt.body, err, err.Parameters, tt.bad)
		}
		if !strings.Contains(err.Message, tt.want) || !strings.Contains(err.Message, "line 1, column") || strings.Contains(err.Message, "900") {
			t.Errorf("%s: message %q, want one saying %q and where, never the value", tt.body, err.Message, tt.want)
		}
	}
}
