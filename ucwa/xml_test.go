package ucwa

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"unicode/utf16"
)

// TestXMLDeclaration: an XML declaration is taken only as XML 1.0
// writes one, declaring version 1.0 and UTF-8 (or no encoding).
// encoding/xml finds the encoding only in encoding="..." with nothing
// around the "=", so encoding = "utf-7" went through, the body read as
// UTF-8, while a .NET XmlReader reading the body's bytes decodes it as
// UTF-7, where the subject the edge judged as text holds a phoneNumber
// property (see TestXMLDeclarationUTF7Reading).
func TestXMLDeclaration(t *testing.T) {
	const in = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">sip:john@contoso.com</property></input>`
	for _, tt := range []struct {
		name, decl string
		ok         bool
	}{
		{"plain", `<?xml version="1.0"?>`, true},
		{"UTF-8", `<?xml version="1.0" encoding="utf-8"?>`, true},
		{"every pseudo-attribute, white space around the =, single quotes", "<?xml\tversion = '1.0'\r\nencoding\n=\"UTF-8\" standalone= 'yes' ?>", true},
		{"standalone without encoding", `<?xml version="1.0" standalone="no"?>`, true},
		{"UTF-7, spaces around the =", `<?xml version="1.0" encoding = "utf-7"?>`, false},
		{"UTF-7, a space after the =", `<?xml version="1.0" encoding= "utf-7"?>`, false},
		{"UTF-7, a tab before the =", "<?xml version=\"1.0\" encoding\t='utf-7'?>", false},
		{"UTF-16, a space after the =", `<?xml version="1.0" encoding= "utf-16"?>`, false},
		{"Latin-1, spaces around the =", `<?xml version="1.0" encoding = "iso-8859-1"?>`, false},
		{"version 1.1, spaces around the =", `<?xml version = "1.1"?>`, false},
		{"no version", `<?xml encoding="utf-8"?>`, false},
		{"nothing declared", `<?xml?>`, false},
		{"encoding after standalone", `<?xml version="1.0" standalone="yes" encoding="utf-8"?>`, false},
		{"encoding twice", `<?xml version="1.0" encoding="utf-8" encoding = "utf-7"?>`, false},
		{"an unknown pseudo-attribute", `<?xml version="1.0" xencoding="utf-8" encoding = "utf-7"?>`, false},
		{"no white space between pseudo-attributes", `<?xml version="1.0"encoding = "utf-7"?>`, false},
		{"unquoted", `<?xml version=1.0?>`, false},
		{"no =", `<?xml version "1.0" encoding "utf-7"?>`, false},
		{"unterminated value", `<?xml version="1.0?>`, false},
		{"standalone other than yes or no", `<?xml version="1.0" standalone="true"?>`, false},
		{"another letter case", `<?XML version="1.0" encoding = "utf-7"?>`, false},
	} {
		body := tt.decl + in
		_, err := decode(XML, []byte(body))
		checkDeserialization(t, tt.name, body, tt.ok, err, "declaration", "line 1, column 1")
	}
}

// TestXMLDeclarationUTF7Reading shows the reading TestXMLDeclaration
// guards against: the body that encoding/xml reads as UTF-8, with a
// subject and a to, holds a phoneNumber when read as the UTF-7 it
// declares.
func TestXMLDeclarationUTF7Reading(t *testing.T) {
	body := []byte(utf7DeclaredBody)
	d := xml.NewDecoder(bytes.NewReader(body))
	names := xmlPropertyNames(t, d)
	if strings.Join(names, ",") != "to,subject" {
		t.Fatalf("encoding/xml reads the properties %v", names)
	}
	asUTF7 := decodeUTF7(body[bytes.Index(body, []byte("?>"))+2:])
	names = xmlPropertyNames(t, xml.NewDecoder(bytes.NewReader(asUTF7)))
	if strings.Join(names, ",") != "to,subject,phoneNumber,x" {
		t.Fatalf("read as UTF-7, the body has the properties %v:\n%s", names, asUTF7)
	}
	if _, err := decode(XML, body); err == nil {
		t.Fatal("accepted")
	}
}

// utf7DeclaredBody declares UTF-7 so that encoding/xml does not see it,
// and holds in a subject, in UTF-7, a phoneNumber property.
const utf7DeclaredBody = `<?xml version="1.0" encoding = "utf-7"?><input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">` +
	`<property name="to">sip:john@contoso.com</property><property name="subject">` +
	`+ADw-/property+AD4APA-property name+AD0AIg-phoneNumber+ACIAPg-+-19005551234+ADw-/property+AD4APA-property name+AD0AIg-x+ACIAPg-` +
	`</property></input>`

// xmlPropertyNames returns the name of every <property> d reads.
func xmlPropertyNames(t *testing.T, d *xml.Decoder) []string {
	t.Helper()
	var names []string
	for {
		tok, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("%v", err)
			}
			return names
		}
		if s, ok := tok.(xml.StartElement); ok && s.Name.Local == "property" {
			names = append(names, s.Attr[0].Value)
		}
	}
}

// decodeUTF7 decodes UTF-7 (RFC 2152) as .NET's UTF7Encoding does: "+"
// starts base64 of UTF-16 up to the first character outside base64, a
// "-" there is dropped, "+-" is "+", and every other ASCII character is
// itself.
func decodeUTF7(b []byte) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] != '+' {
			out = append(out, b[i])
			continue
		}
		i++
		if i < len(b) && b[i] == '-' {
			out = append(out, '+')
			continue
		}
		var bits, n uint32
		var units []uint16
		for ; i < len(b) && strings.IndexByte(alphabet, b[i]) >= 0; i++ {
			bits = bits<<6 | uint32(strings.IndexByte(alphabet, b[i]))
			if n += 6; n >= 16 {
				n -= 16
				units = append(units, uint16(bits>>n))
			}
		}
		out = append(out, string(utf16.Decode(units))...)
		if i < len(b) && b[i] != '-' {
			out = append(out, b[i])
		}
	}
	return out
}

// TestDecodeEmbeddedSplitText: in a PUT's embedded resource, a property
// the resource's rules read (its rel, a ringDelay, a target) whose text a
// comment, a processing instruction or a CDATA section splits is refused:
// the edge judges the text of every run, a pool reading with
// XmlReader.ReadString (to the first comment) or the first text node
// reads another value. A destination's text split so (every run part of
// a word), and any other property's, pass.
func TestDecodeEmbeddedSplitText(t *testing.T) {
	op := mustOperation("callForwardingSettings")
	const open = `<resource xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa" rel="callForwardingSettings" href="/x">`
	for _, tt := range []struct {
		name, inner string
		ok          bool
	}{
		{"rel split by a comment, naming unansweredCallSettings up to it", `<resource><property name="rel">unansweredCallSettings<!---->x</property><property name="ringDelay">1</property></resource>`, false},
		{"ringDelay split by a comment", `<resource rel="unansweredCallSettings"><property name="ringDelay">1<!---->0</property></resource>`, false},
		{"ringDelay split by a CDATA section", `<resource rel="unansweredCallSettings"><property name="ringDelay">1<![CDATA[0]]></property></resource>`, false},
		{"target after a processing instruction", `<resource rel="simultaneousRingSettings"><property name="Target"><?p?>Team</property></resource>`, false},
		{"ringDelay of an unnamed resource", `<resource><property name="ringDelay">1<!---->0</property></resource>`, false},
		{"one run", `<resource rel="unansweredCallSettings"><property name="ringDelay">10</property><property name="target">Voicemail</property></resource>`, true},
		{"comments around properties", `<resource rel="unansweredCallSettings"><!-- a --><property name="ringDelay">10</property><!-- b --></resource>`, true},
		{"another property split", `<resource rel="unansweredCallSettings"><property name="x">a<!---->b</property></resource>`, true},
		{"a destination's word split, in a resource nested deeper", `<resource rel="x"><resource><property name="target">Con<!---->tact</property></resource></resource>`, true},
	} {
		body := open + tt.inner + `</resource>`
		_, err := decodeOp(op, XML, []byte(body))
		checkDeserialization(t, tt.name, body, tt.ok, err, "is split by a comment", "line 1, column")
	}
}

// TestDecodeXMLSerializationAttributes: an attribute in .NET's
// serialization namespace (z:Ref, z:Id, z:Type), on any element, is
// refused, as JSON's "$ref" and "$type" are: a DataContractSerializer
// resolves z:Ref to another element of the body and z:Type chooses what
// it builds. Declaring the prefix alone, and other namespaces, pass.
func TestDecodeXMLSerializationAttributes(t *testing.T) {
	const z = `xmlns:z="http://schemas.microsoft.com/2003/10/Serialization/"`
	const open = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa" ` + z + `>`
	for _, tt := range []struct {
		name, body, want string
	}{
		{"z:Ref on a link", open + `<link rel="customContent" href="data:,a" z:Ref="i1"/><propertyList name="x"><item z:Id="i1"/></propertyList></input>`, "(z:Ref in "},
		{"z:Id on an item", open + `<propertyList name="x"><item z:Id="i1">a</item></propertyList></input>`, "(z:Id in "},
		{"z:Type on the root", `<input ` + z + ` z:Type="T"/>`, "(z:Type in "},
		{"another attribute in the namespace, another prefix", `<input xmlns:s="http://schemas.microsoft.com/2003/10/Serialization/"><link rel="self" href="/x" s:other="1"/></input>`, "(z:... in "},
		{"the prefix declared alone", open + `<property name="to">x</property></input>`, ""},
		{"the arrays namespace", `<input xmlns:a="http://schemas.microsoft.com/2003/10/Serialization/Arrays"><link rel="self" href="/x" a:Ref="1"/></input>`, ""},
	} {
		_, err := decode(XML, []byte(tt.body))
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || err.Status != 400 || err.Subcode != SubcodeDeserializationFailure || !strings.Contains(err.Message, tt.want) || !strings.Contains(err.Message, "line 1, column") {
			t.Errorf("%s: error %+v, want 400 DeserializationFailure holding %q", tt.name, err, tt.want)
		}
	}
}

// checkDeserialization checks what decoding body (a row named name) gave:
// nothing when ok, else a 400 DeserializationFailure whose message holds
// about and where it stands.
func checkDeserialization(t *testing.T, name, body string, ok bool, err *Error, about, where string) {
	t.Helper()
	switch {
	case ok && err != nil:
		t.Errorf("%s: %v", name, err)
	case ok:
	case err == nil:
		t.Errorf("%s: accepted %q", name, body)
	case err.Status != 400 || err.Subcode != SubcodeDeserializationFailure || !strings.Contains(err.Message, about) || !strings.Contains(err.Message, where):
		t.Errorf("%s: error %+v, want 400 DeserializationFailure holding %q", name, err, about)
	}
}

// TestDecodeXMLDepth holds every XML reader to maxXMLDepth, one count of
// element depth from the root (depth 1) down, as JSON is held to
// maxJSONDepth: a body whose deepest element stands at the limit is read
// as it would be at any depth (accepted, or refused for what it holds),
// and one nested deeper is refused 400 DeserializationFailure at the first
// element past the limit, naming where and nothing of the body, however
// deep it goes on: nothing past that element is read, so no reader
// recurses (nested <resource> elements do, a call a level) past the limit.
func TestDecodeXMLDepth(t *testing.T) {
	const ns = `xmlns="` + Namespace + `"`
	const half = maxXMLDepth / 2
	const tooDeep = "nested too deeply"
	communication, forwarding := mustOperation("communication"), mustOperation("callForwardingSettings")
	for _, tt := range []struct {
		name string
		op   *Operation
		// outer opens outerDepth elements, closed by outerEnd; chain
		// opens the elements below them, one a level, down to the depth
		// tried, each closed by chainEnd.
		outer      string
		outerDepth int
		outerEnd   string
		chain      string
		chainEnd   string
		// atLimit is what the body nested to the limit is refused for,
		// "": accepted; pastLimit what one nested deeper is refused for,
		// "": its depth, at the first element past the limit.
		atLimit, pastLimit string
	}{
		{name: "a property list's items, in an input (skipped)", op: spa,
			outer: `<input ` + ns + `><propertyList name="x">`, outerDepth: 2, outerEnd: `</propertyList></input>`, chain: `<item>`, chainEnd: `</item>`},
		{name: "a link's content, in an input (skipped)", op: spa,
			outer: `<input ` + ns + `><link rel="self" href="/x">`, outerDepth: 2, outerEnd: `</link></input>`, chain: `<x>`, chainEnd: `</x>`},
		{name: "a property's text, in an input: an element there is refused at depth 3, before any depth counts", op: spa,
			outer: `<input ` + ns + `><property name="subject">`, outerDepth: 2, outerEnd: `</property></input>`, chain: `<x>`, chainEnd: `</x>`,
			atLimit: "A <property> holds an element", pastLimit: "A <property> holds an element"},
		{name: "a property list in a PUT's resource (skipped)", op: communication,
			outer: `<resource ` + ns + `><propertyList name="x">`, outerDepth: 2, outerEnd: `</propertyList></resource>`, chain: `<item>`, chainEnd: `</item>`},
		{name: "nested resources, in PUT communication", op: communication,
			outer: `<resource ` + ns + ` rel="communication" href="/x">`, outerDepth: 1, outerEnd: `</resource>`, chain: `<resource>`, chainEnd: `</resource>`},
		{name: "nested resources under a settings resource, in PUT callForwardingSettings", op: forwarding,
			outer:      `<resource ` + ns + ` rel="callForwardingSettings" href="/x"><resource rel="unansweredCallSettings" href="/y"><property name="ringDelay">20</property>`,
			outerDepth: 2, outerEnd: `</resource></resource>`, chain: `<resource>`, chainEnd: `</resource>`},
		{name: "an embedded resource's property", op: communication,
			outer: `<resource ` + ns + `><resource rel="x"><property name="y">`, outerDepth: 3, outerEnd: `</property></resource></resource>`, chain: `<x>`, chainEnd: `</x>`},
		{name: "an embedded resource's unknown element (skipped)", op: communication,
			outer: `<resource ` + ns + `><resource rel="x">`, outerDepth: 2, outerEnd: `</resource></resource>`, chain: `<x>`, chainEnd: `</x>`},
		{name: "one count across readers: resources to half the limit, then an unknown element's content", op: forwarding,
			outer: `<resource ` + ns + `>` + strings.Repeat(`<resource>`, half-1), outerDepth: half, outerEnd: strings.Repeat(`</resource>`, half), chain: `<x>`, chainEnd: `</x>`},
	} {
		for _, n := range []int{maxXMLDepth, maxXMLDepth + 1, 2 * maxXMLDepth} {
			below := n - tt.outerDepth
			body := []byte(tt.outer + strings.Repeat(tt.chain, below) + strings.Repeat(tt.chainEnd, below) + tt.outerEnd)
			// The start tag of the element at maxXMLDepth+1.
			at := len(tt.outer) + len(tt.chain)*(maxXMLDepth-tt.outerDepth)
			_, err := decodeOp(tt.op, XML, body)
			want := tt.pastLimit
			if n == maxXMLDepth {
				want = tt.atLimit
			}
			switch {
			case n == maxXMLDepth && want == "":
				if err != nil {
					t.Errorf("%s, %d deep: %v", tt.name, n, err)
				}
			case want != "":
				if err == nil || err.Status != 400 || err.Subcode != SubcodeDeserializationFailure || !strings.Contains(err.Message, want) || strings.Contains(err.Message, tooDeep) {
					t.Errorf("%s, %d deep: %+v, want 400 DeserializationFailure for %q", tt.name, n, err, want)
				}
			default:
				if msg := "The XML body is nested too deeply at " + position(body, int64(at)) + "."; err == nil || err.Status != 400 || err.Subcode != SubcodeDeserializationFailure || err.Message != msg || err.Parameters != nil {
					t.Errorf("%s, %d deep: %+v, want 400 DeserializationFailure %q", tt.name, n, err, msg)
				}
			}
		}
	}
}

// TestDecodeXMLUnknownElement: an element a body's root does not hold is
// refused naming the elements it holds, a PUT's <resource> its nested
// <resource> too.
func TestDecodeXMLUnknownElement(t *testing.T) {
	for _, tt := range []struct{ rel, body, holds string }{
		{"startPhoneAudio", `<input xmlns="` + Namespace + `"><other/></input>`, "<input> holds only <property>, <propertyList> and <link> elements"},
		{"communication", `<resource xmlns="` + Namespace + `"><other/></resource>`, "<resource> holds only <property>, <propertyList>, <link> and <resource> elements"},
	} {
		_, err := decodeOp(mustOperation(tt.rel), XML, []byte(tt.body))
		if err == nil || err.Subcode != SubcodeDeserializationFailure || !strings.Contains(err.Message, "An element <other> inside") || !strings.Contains(err.Message, tt.holds) {
			t.Errorf("%s: %v, want a DeserializationFailure saying %q", tt.rel, err, tt.holds)
		}
	}
}
