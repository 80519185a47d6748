package ucwa

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Run each target locally with, for example,
//
//	go test -run='^$' -fuzz='^FuzzDecodeJSON$' -fuzztime=60s ./ucwa/
//
// Crashers land in testdata/fuzz/<target>/ and are replayed by go test.

var jsonSeeds = []string{
	`{"_embedded":{},"_links":{"x.RingDelay":{"href":"/x"},"self":{"href":"/y"}}}`,
	`{"_embedded":{"x":{"operationId":"b","_links":{"operationId":{"href":"/b"}}}},"x":{"operationId":null,"y":{"OperationId":"b"}}}`,
	`{"to":"sip:a@b.c","operationId":"a","x":{"OperationId ":"b","y":[{"key":"subject","value":1}]},"_links":{"self":{"href":"/x","y.importance":"Urgent"}}}`,
	`{"to":"sip:a@b.c","index":"a","[a]":"tel:+19005551234","[0]":null,"x[a].key":"ringDelay","x[a].value":1}`,
	`{"unansweredCallSettings":{"ringDelay":1},"x.ringDelay":2,"_embedded":{"unansweredCallSettings":{"ringDelay":10,"x":{"ringDelay":1}}}}`,
	`{"_links":{"self":{"href":"/x","to":"1","Title":[{"ｔｏ":" "}]},"customContent":{"number":null}},"x":[{"_embedded":{}}],"_embedded":{"y":{"a":{"target":"Contact"},"_links":{"contact":{"href":"/p","contact":"/q"}}}}}`,
	`{}`,
	`{"to":"sip:a@b.c","contact":"/people/1","_links":{"contact":{"href":"/ucwa/v1/applications/192/people/282"}}}`,
	`{"to":"sip:a@b.c","_links":{"contact":{"HREF":"/people/tel%253A1","href":"tel:+19005551234"}},"_embedded":{"x":{"_links":{"contact":{"href":"/p%u003a1"}}}}}`,
	`{"to":"sip:a@b.c","_links":{"self":{"$id":"1","href":"data:,x"},"customContent":{"$ref":"1"}},"x":{"$ref":"1"}}`,
	`{"__type":"x:#y","to":"sip:a@b.c","_links":{"customContent":{"$TYPE":"z","href":"data:,x"}}}`,
	`{"to":"sip:john@contoso.com","phoneNumber":"4255551234","operationId":"1"}`,
	`{"TO":"tel:+1-425-555-1234","_LINKS":{"CustomContent":{"HREF":"data : ,x"}},"x":[1,{"to":null}]}`,
	`{"direction":null,"state":null,"joinAudioMuted":false,"privateLine":false,"operationId":"0f8fad5b-d9cb-469f-a165-70867728950e","to":"(425) 555-1234","subject":null}`,
	`{"t\u006f":"sip:a\u0040b.c","subject":"\u00e9\ud83d\ude00\ud800"}`,
	`{"to":"a","To":"b"}`,
	`{"subject":"a","ſubject":"b"}`,
	`{"_links":{"customContent":{"href":"a","Href":"b"}}}`,
	`{"_links":{"customContent":{"href":5},"self":null}}`,
	`{"to":1,"importance":["Urgent"],"threadId":{}}`,
	`{"to":"a"}{}`,
	`{"to":"a",}`,
	`[]`,
	``,
	"{\"to\":\"a\x01\"}",
	"{\"subject\":\"\xff\"}",
	`{"to":"sip:a@contoso.com","phoneNumber ":"+1 900 555 1234"}`,
	`{"phone\u0000Number":"1","_links ":{"custom\tContent":{" href":"data:,x"}}}`,
	`{"to":"sip:a@b.c","_links":{"phoneNumber":{"href":"+19005551234"},"TO\u0000":null,"self":{"href":"/x"}}}`,
	`{"_embedded":{"simultaneousRingSettings":{"target":"Contact","_links":{"self":{"href":"/x"}}},"x":[{"_embedded":{"y":{"to":null}}}]}}`,
	`{"_Embedded":{"x":{"Target":"tel:+19005551234"}},"_embedded ":[{"_links":{"phoneNumber":{"href":"1"}}}]}`,
	`{"target":"tel:+19005551234","activeSetting":"None","_links":{"number":{"href":"1"}}}`,
	`{"Target":" contact ","phone\u0000Number":null,"delegator":"","_links":{"self":{"href":"/x"}}}`,
	`{"customContent":null,"MediaOffer":"data:,x","customContent ":1}`,
	`{"_embedded":{"unansweredCallSettings":{"ringDelay":4,"target":"Team"},"x":[{"REL":"simultaneousRingSettings","ringDelay":-1,"target":" team "}]}}`,
	`{"to":"a","x":{"_links":{"customContent":{"href":"data:,x"}}},"_links":{"self":{"href":"/x","_LINKS ":null,"__type":"t"}}}`,
	`{"to":"a","x":[{"a":1,"A":2},{"\u00e9":1,"$Type":"t"}],"_embedded":{"y":{"z":{"_links":{}}}}}`,
	`{"to":"a","x":{"a":1,"b":[{"a":2},{"A":3}],"links":{"href":"/x"},"c d":"_links","e":"$type"}}`,
}

var xmlSeeds = []string{
	`<input/>`,
	`<input OperationId="b"><property name="to">sip:a@b.c</property><propertyList name="x"><item name="operationId">b</item></propertyList></input>`,
	`<resource operationId=" "><propertyList name="x"><item name="x.operationId">b</item></propertyList></resource>`,
	`<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">sip:a@b.c</property><link rel="customContent" href="data:,x"/></input>`,
	`<u:input xmlns:u="http://schemas.microsoft.com/rtc/2012/03/ucwa"><u:property name="TO"><![CDATA[tel : +1 425 555 1234]]></u:property><u:link xmlns:u="http://schemas.microsoft.com/rtc/2012/03/ucwa" rel="customContent" href='data:,"a"'></u:link></u:input>`,
	`<input><property name="subject">a &amp; &#233;<!-- c --></property><propertyList name="x"><item>1</item></propertyList><x:y xmlns:x="urn:x"/></input>`,
	`<!DOCTYPE input [<!ENTITY x "y">]><input/>`,
	`<input><property name="to" name="x">a</property></input>`,
	`<input><property name="to">a</property><property name="TO">b</property></input>`,
	`<?xml version="1.0" encoding="utf-16"?><input/>`,
	`<input xmlns:z="http://schemas.microsoft.com/2003/10/Serialization/"><link rel="customContent" z:Ref="i1"/><propertyList name="x"><item z:Id="i1" href="data:,x"/></propertyList></input>`,
	"<?xml version = '1.0' encoding= \"utf-7\"\tstandalone='no' ?><input><property name=\"subject\">+ADw-/property+AD4-</property></input>",
	`<input>text</input>`,
	`<input></input><input/>`,
	`<input><property name="to"><b/></property></input>`,
	"<?xml version=\"1.0\"?>\r\n<input>\r\n <property name=\"to\">a\r\nb</property>\t</input>\n",
	`<input><property name="subject">]]&gt;]]></property><property name="a.b-c_">é😀</property></input>`,
	`<input><property name="TO">a</property><property name="to">b</property></input>`,
	`<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">a</property></input><!---->`,
	`<input><property name="phoneNumber ">+1 900 555 1234</property><property name="&#9;to">1</property><link rel="customContent&#x200B;" href="x"/></input>`,
	`<input><link rel="self" href="/x"/><link rel="phoneNumber" href="+19005551234"/><link rel="To&#9;"/></input>`,
	`<input xmlns:p="urn:p"><property p:name="phoneNumber" name="x">1</property><link rel="self" REL="self"/></input>`,
	`<input><property NAME="to" name="y">1</property></input>`,
	`<input xmlns:p="urn:p"><link rel="self" p:rel="to" href="1"/></input>`,
	`<input><link rel="customContent" href="data:,x" HREF="2"/></input>`,
	`<resource><resource rel="x"><property name="target">Contact</property><resource><link rel="self" href="/x"/><propertyList name="items"><item>1</item></propertyList></resource></resource></resource>`,
	`<resource><resource rel="x"><property name="Target">+1 900 555 1234</property></resource><resource><link rel="phoneNumber" href="1"/></resource></resource>`,
	`<resource><property name="target">Contact</property><property name="number">+1 900 555 1234</property></resource>`,
	`<input><propertyList name="Delegator"><item>1</item></propertyList><link rel="target" href="1"/><property xmlns:p="urn:p" p:name="number" name="x">1</property></input>`,
	`<input><property name="target">Voicemail</property><property name="delegator"> </property></input>`,
	`<input><property name="customContent">data:,x</property><property name="CUSTOMCONTENT"> </property><propertyList name="_Links"/><property name="mediaOffer&#9;"/></input>`,
	`<resource><resource rel="unansweredCallSettings"><property name="ringDelay">4</property><propertyList name="Target"/></resource><resource><property name="rel">simultaneousRingSettings</property><property name="ringDelay">-1</property></resource></resource>`,
	"<input xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><property name=\"to\" xsi:nil=\"true\">a</property><link rel=\"customContent\" href='data:,a\tb\r\nc&#9;&#xD;&amp;'/></input>",
}

// knownDecodeError checks that a decoder error is the 400 it must be: a
// DeserializationFailure, the ParameterValidationFailure of a name that
// folds onto one the decoder reads, naming a property of op (or _links),
// or that of a link named like a property of op that is not a link,
// naming it, or that of a phone destination op does not take (in an
// embedded resource, at the top level or in an attribute spelled
// otherwise), naming the destination.
func knownDecodeError(t *testing.T, op *Operation, err *Error) {
	t.Helper()
	if err.Status != 400 || err.Message == "" {
		t.Fatalf("decoder error %+v", err)
	}
	switch err.Subcode {
	case SubcodeDeserializationFailure:
		if err.Parameters == nil {
			return
		}
	case SubcodeParameterValidationFailure:
		if embeddedRuleError(op, err) {
			return
		}
		if len(err.Parameters) != 1 {
			break
		}
		p, ok := op.Property(err.Parameters[0].Name)
		_, stray := referenceStray(op, err.Parameters[0].Name)
		switch {
		case strings.Contains(err.Message, "spelled otherwise") && (ok || stray || err.Parameters[0].Name == linksName):
			return
		case strings.Contains(err.Message, strayWhat+op.Rel+" ") && stray:
			return
		case strings.Contains(err.Message, "is not a link") && ok && p.Type != DataURLValue:
			return
		case strings.Contains(err.Message, "is a link: write it as") && ok && p.Type == DataURLValue:
			return
		case strings.Contains(err.Message, "inside an embedded resource"), strings.Contains(err.Message, "as an XML attribute"),
			strings.Contains(err.Message, "; give it where the operation takes it"), strings.Contains(err.Message, "as an XML element, or an element's name or rel"):
			if _, ok := referenceDestinations[strings.ToLower(err.Parameters[0].Name)]; ok || err.Parameters[0].Name == propOperationID.Name {
				return
			}
			if slices.Contains(referenceInputs(op), err.Parameters[0].Name) && !strings.Contains(err.Message, "as an XML attribute") {
				return
			}
		case strings.Contains(err.Message, "a resource the operation embeds"):
			if slices.Contains(referenceInputs(op), err.Parameters[0].Name) {
				return
			}

		}
	}
	t.Fatalf("decoder error %+v %+v", err, err.Parameters)
}

// embeddedRuleError reports whether err names only properties of op's
// embedded resources, each refused inside one.
func embeddedRuleError(op *Operation, err *Error) bool {
	for _, param := range err.Parameters {
		known := false
		for _, e := range op.Embedded {
			for _, p := range e.Properties {
				known = known || p.Name == param.Name && strings.Contains(param.Reason, "(in the embedded "+e.Rel+", at ")
			}
		}
		if !known {
			return false
		}
	}
	return len(err.Parameters) > 0
}

// referenceLookalike reports whether an ASCII name folds onto one of
// words without being it in another letter case, as a reader that drops
// controls and spaces and ignores letter case reads it: the reference
// for the decoders' fold, on the only names they accept (non-ASCII names
// are refused whatever they fold onto).
func referenceLookalike(name string, words []string) bool {
	folded := strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return -1
		}
		return r
	}, name)
	for _, w := range words {
		if strings.EqualFold(folded, w) && !strings.EqualFold(name, w) {
			return true
		}
	}
	return false
}

// referenceNamed reports whether an ASCII name is one of words in any
// letter case or folds onto one (see referenceLookalike).
func referenceNamed(name string, words []string) bool {
	for _, w := range words {
		if strings.EqualFold(name, w) {
			return true
		}
	}
	return referenceLookalike(name, words)
}

// readNames lists the names the decoders read at each level of a body
// of op: the value properties and _links, the links, and href.
func readNames(op *Operation) (top, links []string) {
	top = []string{linksName}
	for _, p := range op.Properties {
		if p.Type == DataURLValue {
			links = append(links, p.Name)
		} else {
			top = append(top, p.Name)
		}
	}
	return top, links
}

// replacement turns fuzzer text into a value every field can hold: valid
// UTF-8, only characters XML allows, and not blank.
func replacement(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF {
			return r
		}
		return -1
	}, strings.ToValidUTF8(s, ""))
	if strings.TrimSpace(s) == "" || strings.ContainsRune(s, utf8.RuneError) {
		return "x" + s + "x"
	}
	return s
}

// propertyOps are the operations with a properties body.
var propertyOps = func() []*Operation {
	var ops []*Operation
	for i := range testOps {
		if testOps[i].Body == PropertiesBody {
			ops = append(ops, &testOps[i])
		}
	}
	return ops
}()

// otherOp picks a properties operation from fuzzer text, so that every
// operation's table is fuzzed as the corpus grows.
func otherOp(v string) *Operation {
	h := uint32(len(v))
	for _, c := range []byte(v) {
		h = h*31 + uint32(c)
	}
	return propertyOps[h%uint32(len(propertyOps))]
}

// valueFor is a value property p can hold in a body, from fuzzer text.
func valueFor(p *Property, v string) string {
	switch p.Type {
	case BooleanValue:
		if len(v)%2 == 0 {
			return "true"
		}
		return "false"
	case IntegerValue:
		return strconv.Itoa(len(v) - 3)
	}
	return v
}

// checkRoundTrip asserts the encoder's invariants on an accepted body:
// unchanged, Encode returns the input itself; with every property set to
// v (or a value of its type), the output decodes to exactly those values
// (and nothing else moves).
func checkRoundTrip(t *testing.T, f Format, body []byte, r *Request, v string) {
	t.Helper()
	body = bytes.TrimPrefix(body, utf8BOM) // decodeInto drops it
	want := snapshot(r)
	if f == XML && splitXMLValue(r) {
		// A value that markup splits goes on as one run of its text: the
		// output holds the same values, none of them split, and reads
		// back as itself.
		out := r.Encode()
		r2, err := decodeOp(r.op, f, out)
		if err != nil {
			t.Fatalf("a body with a split value re-encodes as one that does not decode: %v\n%q", err, out)
		}
		if got := snapshot(r2); got != want || splitXMLValue(r2) || !bytes.Equal(r2.Encode(), out) {
			t.Fatalf("a body with a split value re-encodes as %q, holding %v, want %v unsplit", out, got, want)
		}
		return
	}
	if out := r.Encode(); !bytes.Equal(out, body) {
		t.Fatalf("unchanged request re-encodes as %q", out)
	}
	for i := range r.op.Properties {
		p := &r.op.Properties[i]
		if _, ok := r.Get(p.Name); ok {
			r.Set(p.Name, valueFor(p, v))
			want[i].v = valueFor(p, v)
		}
	}
	out := r.Encode()
	r2, err := decodeOp(r.op, f, out)
	if err != nil {
		t.Fatalf("re-encoded body does not decode: %v\n%q", err, out)
	}
	if got := snapshot(r2); got != want {
		t.Fatalf("re-encoded body holds %v, want %v\n%q", got, want, out)
	}
	for _, p := range r.op.Properties {
		if problem(r2, p.Name) != problem(r, p.Name) {
			t.Fatalf("re-encoded body has type problem %q for %s, want %q", problem(r2, p.Name), p.Name, problem(r, p.Name))
		}
	}
	if f == JSON && !json.Valid(out) {
		t.Fatalf("re-encoded body is not JSON: %q", out)
	}
}

// splitXMLValue reports whether a value of an XML request, present,
// is written as more than one run of text (a comment, a processing
// instruction or a CDATA section inside it), reading its element's
// content with encoding/xml.
func splitXMLValue(r *Request) bool {
	for i := range r.op.Properties {
		v := &r.vals[i]
		if !v.present {
			continue
		}
		d := xml.NewDecoder(bytes.NewReader(r.raw[v.span.start:v.span.end]))
		for {
			tok, err := d.RawToken()
			if err != nil {
				break
			}
			if _, text := tok.(xml.CharData); !text || bytes.Contains(r.raw[v.span.start:v.span.end], []byte("<![CDATA[")) {
				return true
			}
		}
	}
	return false
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add(readSeed(f, "seed.json"), "tel:+14255551234")
	for _, s := range jsonSeeds {
		f.Add([]byte(s), `"\<>&`+"\u2028\x7f")
	}
	forwarding := mustOperation("callForwardingSettings")
	f.Fuzz(func(t *testing.T, body []byte, v string) {
		ops := []*Operation{spa, otherOp(v)}
		if bytes.Contains(bytes.ToLower(body), []byte("embedded")) {
			ops = append(ops, forwarding) // a PUT that embeds resources judged by their own rules
		}
		for _, op := range ops {
			r, err := decodeOp(op, JSON, body)
			ref, refErr := referenceJSON(op, bytes.TrimPrefix(body, utf8BOM))
			if (err == nil) != (refErr == nil) {
				t.Fatalf("%s: decode error %v, encoding/json says %v", op.Rel, err, refErr)
			}
			if err != nil {
				knownDecodeError(t, op, err)
				continue
			}
			for _, p := range op.Properties {
				got, ok := r.Get(p.Name)
				want, wok := ref.fields[p.Name]
				if got != want || ok != wok || problem(r, p.Name) != ref.typeErr[p.Name] {
					t.Fatalf("%s: %v = %q, %v, %q; encoding/json says %q, %v, %q", op.Rel, p.Name, got, ok, problem(r, p.Name), want, wok, ref.typeErr[p.Name])
				}
			}
			checkRoundTrip(t, JSON, body, r, replacement(v))
		}
	})
}

func FuzzDecodeXML(f *testing.F) {
	f.Add(readSeed(f, "seed.xml"), "tel:+14255551234")
	for _, s := range []string{`<input><property name="to" value="1"/><property xmlns:p="u" name="x" p:v="2"/></input>`,
		`<input><property name="">1</property><propertyList name=""/></input>`,
		`<resource><resource rel="x"><property name="target" value="1"/><property name="y" z="2"/></resource></resource>`,
		`<resource><link rel="contact" href="/people/282"/><resource rel="x"><link rel="contact" HREF="/p%3A1" href="/people/282"/><property name="contact">tel:1</property></resource></resource>`,
		`<input xmlns:p="u" To="1" p:phoneNumber=" "><link rel="x" href="/y" target="Contact"/><propertyList name="x"><item number="2">a</item></propertyList></input>`,
		`<resource><propertyList name="x"><item><property name="to">1</property></item></propertyList><resource rel="y"><link rel="z"><RESOURCE/></link><property name="a"><p:link xmlns:p="u"/></property></resource></resource>`,
		`<input><propertyList name="x"><item name="phoneNumber">1</item><item>2</item></propertyList><link rel="self" href="/x"><To>1</To><y rel="z"/></link></input>`,
		`<resource><resource rel="simultaneousRingSettings"><item name="target">1</item><x rel="y"/></resource></resource>`,
		`<resource><resource><property name="rel">unansweredCallSettings<!---->x</property><property name="ringDelay">1<![CDATA[0]]></property><property name="y">a<?p?>b</property></resource></resource>`} {
		f.Add([]byte(s), "v")
	}
	for _, s := range xmlSeeds {
		f.Add([]byte(s), `"'<>&]]>`+"\r\n\t")
	}
	// Resources nested one past maxXMLDepth, refused at the first too deep.
	f.Add([]byte(`<resource>`+strings.Repeat(`<resource>`, maxXMLDepth)+strings.Repeat(`</resource>`, maxXMLDepth)+`</resource>`), "v")
	communication, forwarding := mustOperation("communication"), mustOperation("callForwardingSettings")
	f.Fuzz(func(t *testing.T, body []byte, v string) {
		ops := []*Operation{spa, otherOp(v)}
		if bytes.Contains(body, []byte("<resource")) {
			// PUTs' roots, which may nest resources, judged by their own
			// rules in callForwardingSettings.
			ops = append(ops, communication, forwarding)
		}
		for _, op := range ops {
			if simple, ok := simpleXML(op, body); ok {
				full, err := fullXML(op, body)
				if err != nil {
					t.Fatalf("%s: decodeSimpleXML accepted a body encoding/xml refuses: %v", op.Rel, err)
				}
				if !reflect.DeepEqual(simple, full) {
					t.Fatalf("%s: decodeSimpleXML read %+v, encoding/xml %+v", op.Rel, simple, full)
				}
			}
			r, err := decodeOp(op, XML, body)
			if err != nil {
				knownDecodeError(t, op, err)
				continue
			}
			if !wellFormedXML(body) {
				t.Fatalf("%s: accepted a body encoding/xml refuses", op.Rel)
			}
			if decl, ok := xmlDeclarationsRead(body); !ok {
				t.Fatalf("%s: accepted the declaration %q", op.Rel, decl)
			}
			if name, ok := xmlNamesRead(op, body); !ok {
				t.Fatalf("%s: accepted the name %q, outside ASCII, folding onto a property's or in an attribute spelled otherwise", op.Rel, name)
			}
			if name, ok := xmlEmbeddedRead(body); !ok {
				t.Fatalf("%s: accepted an embedded resource holding the destination %q", op.Rel, name)
			}
			if name, ok := xmlStrayRead(op, body); !ok {
				t.Fatalf("%s: accepted the destination %q, which it does not take", op.Rel, name)
			}
			if name, ok := xmlEmbeddedSplitRead(op, body); !ok {
				t.Fatalf("%s: accepted the embedded property %q, whose text markup splits", op.Rel, name)
			}
			if name, ok := xmlEmbeddedRulesRead(op, body); !ok {
				t.Fatalf("%s: accepted an embedded %s its own PUT refuses", op.Rel, name)
			}
			if what, ok := xmlPropertyAttrsRead(body); !ok {
				t.Fatalf("%s: accepted %s", op.Rel, what)
			}
			if attr, ok := xmlSchemaInstanceRead(body); !ok {
				t.Fatalf("%s: accepted the XML Schema instance or .NET serialization attribute %q", op.Rel, attr)
			}
			if attr, ok := xmlDestinationAttrsRead(body); !ok {
				t.Fatalf("%s: accepted the attribute %q, named like a destination", op.Rel, attr)
			}
			if name, ok := xmlNestedConstructsRead(body); !ok {
				t.Fatalf("%s: accepted a <%s> where the edge does not read it", op.Rel, name)
			}
			if name, ok := xmlNestedDestinationsRead(op, body); !ok {
				t.Fatalf("%s: accepted the destination %q where the edge does not read it", op.Rel, name)
			}
			if name, ok := xmlAttrValuesRead(r); !ok {
				t.Fatalf("%s: read %s otherwise than XML's attribute-value normalization", op.Rel, name)
			}
			checkRoundTrip(t, XML, body, r, replacement(v))
		}
	})
}

// xmlDeclarationsRead checks, with encoding/xml and a regular
// expression of XML 1.0's grammar (§2.8), that every processing
// instruction outside the root of a body the decoder accepted whose
// target is xml, in any letter case, is an XML declaration of version
// 1.0 and, if any encoding, UTF-8, and returns one that is not.
func xmlDeclarationsRead(body []byte) (string, bool) {
	d := xml.NewDecoder(bytes.NewReader(body))
	depth := 0
	for {
		before := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			return "", true
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.ProcInst:
			if decl := body[before:d.InputOffset()]; depth == 0 && strings.EqualFold(t.Target, "xml") && !referenceXMLDeclaration.Match(decl) {
				return string(decl), false
			}
		}
	}
}

var referenceXMLDeclaration = regexp.MustCompile(`^<\?(?i:xml)[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*("1\.0"|'1\.0')` +
	`([ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*("(?i:utf-8)"|'(?i:utf-8)'))?` +
	`([ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*("(yes|no)"|'(yes|no)'))?[ \t\r\n]*\?>$`)

// xmlEmbeddedSplitRead checks, with encoding/xml, that no <property>
// (any letter case or namespace) holding no element, directly in a
// resource the root of an accepted body holds, when op embeds resources,
// named (see referenceNamed) rel or like a property of one of them, has
// markup (a comment, a processing instruction, a CDATA section) in it,
// and returns the name of one that has.
func xmlEmbeddedSplitRead(op *Operation, body []byte) (string, bool) {
	if len(op.Embedded) == 0 {
		return "", true
	}
	ruled := []string{"rel"}
	for _, e := range op.Embedded {
		for _, p := range e.Properties {
			ruled = append(ruled, p.Name)
		}
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	var stack []string // the open elements' local names
	for {
		tok, err := d.Token()
		if err != nil {
			return "", true
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) != 2 || !strings.EqualFold(stack[1], "resource") || !strings.EqualFold(t.Name.Local, "property") {
				stack = append(stack, t.Name.Local)
				continue
			}
			judged := ""
			for _, a := range t.Attr {
				if !strings.EqualFold(a.Name.Local, "name") {
					continue
				}
				if referenceNamed(a.Value, ruled) {
					judged = a.Value
				}
			}
			start, end, element := d.InputOffset(), int64(0), false
			for depth := 1; depth > 0; {
				end = d.InputOffset()
				tok, err := d.Token()
				if err != nil {
					return "", true
				}
				switch tok.(type) {
				case xml.StartElement:
					element = true
					depth++
				case xml.EndElement:
					depth--
				}
			}
			if judged != "" && !element && bytes.Contains(body[start:end], []byte("<")) {
				return judged, false
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
}

// xmlEmbeddedRulesRead checks, with encoding/xml, every <resource> (any
// letter case, any namespace) a body of op the decoder accepted nests in
// its root: named (a rel attribute in any letter case or namespace, or
// a rel property) as one of op's embedded resources, none of its
// properties so named holds text its own PUT refuses, nor is a
// propertyList or holds an element. It returns the property that does.
func xmlEmbeddedRulesRead(op *Operation, body []byte) (string, bool) {
	if len(op.Embedded) == 0 {
		return "", true
	}
	type prop struct {
		names []string
		text  string
		list  bool
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	depth := 0
	var rels []string
	var props []prop
	for {
		tok, err := d.Token()
		if err != nil {
			return "", true
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			local := strings.ToLower(t.Name.Local)
			var names []string
			for _, a := range t.Attr {
				switch {
				case depth == 2 && strings.EqualFold(a.Name.Local, "rel"):
					rels = append(rels, a.Value)
				case depth == 3 && strings.EqualFold(a.Name.Local, "name"):
					names = append(names, a.Value)
				}
			}
			if depth == 2 {
				rels, props = rels[:0], props[:0]
			}
			if depth != 3 || local != "property" && local != "propertylist" {
				continue
			}
			p := prop{names: names, list: local == "propertylist"}
			for inside := 1; inside > 0; {
				tok, err := d.Token()
				if err != nil {
					return "", true
				}
				switch tt := tok.(type) {
				case xml.CharData:
					if inside == 1 {
						p.text += string(tt)
					}
				case xml.StartElement:
					p.list = true
					inside++
				case xml.EndElement:
					inside--
				}
			}
			depth--
			if !p.list && slices.ContainsFunc(names, func(n string) bool { return referenceNamed(n, []string{"rel"}) }) {
				rels = append(rels, p.text)
			}
			props = append(props, p)
		case xml.EndElement:
			if depth == 2 {
				for _, e := range op.Embedded {
					if !slices.ContainsFunc(rels, func(r string) bool { return referenceRel(r, e.Rel) }) {
						continue
					}
					for _, p := range props {
						for i := range e.Properties {
							q := &e.Properties[i]
							if !slices.ContainsFunc(p.names, func(n string) bool { return referenceNamed(n, []string{q.Name}) }) {
								continue
							}
							raw, _ := json.Marshal(p.text)
							if p.list || strings.TrimSpace(p.text) != "" && q.Type == IntegerValue {
								if n, err := strconv.ParseInt(strings.TrimSpace(p.text), 10, 64); p.list || err != nil || n < q.Min || n > q.Max {
									return q.Name, false
								}
								continue
							}
							if !referenceEmbeddedValue(q, raw) {
								return q.Name, false
							}
						}
					}
				}
			}
			depth--
		}
	}
}

// xmlSchemaInstanceRead checks, with encoding/xml, that no element of a
// body the decoder accepted has an attribute in the XML Schema instance
// namespace (or with the prefix xsi undeclared) or in .NET's
// serialization namespace, and returns one that has.
func xmlSchemaInstanceRead(body []byte) (string, bool) {
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.Token()
		if err != nil {
			return "", true
		}
		if t, ok := tok.(xml.StartElement); ok {
			for _, a := range t.Attr {
				if a.Name.Space == "http://www.w3.org/2001/XMLSchema-instance" || strings.ToLower(a.Name.Space) == "xsi" ||
					a.Name.Space == "http://schemas.microsoft.com/2003/10/Serialization/" {
					return a.Name.Local, false
				}
			}
		}
	}
}

// xmlDestinationAttrsRead checks, with encoding/xml, that no element of a
// body the decoder accepted has an attribute (namespace declarations
// aside) whose local name is a destination of the table or operationId
// in any letter case or folding onto it (see referenceUnreadInput),
// unless its value is blank or one of the destination's words, and
// returns one that has.
func xmlDestinationAttrsRead(body []byte) (string, bool) {
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.Token()
		if err != nil {
			return "", true
		}
		if t, ok := tok.(xml.StartElement); ok {
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || a.Name == (xml.Name{Local: "xmlns"}) {
					continue
				}
				if words, ok := referenceUnreadInput(a.Name.Local); ok && !referenceWord(words, a.Value) {
					return a.Name.Local, false
				}
			}
		}
	}
}

// xmlNestedConstructsRead checks, with encoding/xml, that every element
// of an accepted body named, in any letter case, property, propertyList,
// link or resource stands in the root or in a chain of resources below
// it, where the decoders read such elements, and returns one that does
// not.
func xmlNestedConstructsRead(body []byte) (string, bool) {
	d := xml.NewDecoder(bytes.NewReader(body))
	var stack []string // the open elements' local names
	for {
		tok, err := d.Token()
		if err != nil {
			return "", true
		}
		switch t := tok.(type) {
		case xml.StartElement:
			construct := slices.ContainsFunc([]string{"property", "propertyList", "link", "resource"}, func(c string) bool { return strings.EqualFold(c, t.Name.Local) })
			if construct && len(stack) > 0 && slices.ContainsFunc(stack[1:], func(s string) bool { return !strings.EqualFold(s, "resource") }) {
				return t.Name.Local, false
			}
			stack = append(stack, t.Name.Local)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
}

// xmlNestedDestinationsRead checks, with encoding/xml, that no element
// of an accepted body but its root is named like a destination,
// operationId or an input of op (see referenceInputs; its local name, see
// referenceUnreadName), and that none inside a property list, an item,
// a link or any element but the root and a chain of resources below it
// has an attribute named name or rel (any letter case or namespace)
// whose value is so named, and returns one that is.
func xmlNestedDestinationsRead(op *Operation, body []byte) (string, bool) {
	inputs := referenceInputs(op)
	named := func(name string) bool {
		name = referenceUnreadName(name)
		_, dest := referenceUnreadInput(name)
		return dest || referenceNamed(name, inputs) || referenceBindingNamed(name, inputs)
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	var stack []string // the open elements' local names
	for {
		tok, err := d.Token()
		if err != nil {
			return "", true
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if named(t.Name.Local) && len(stack) > 0 {
				return t.Name.Local, false
			}
			skipped := len(stack) > 0 && slices.ContainsFunc(stack[1:], func(s string) bool { return !strings.EqualFold(s, "resource") })
			// An element other than UCWA's constructs directly inside an
			// embedded resource is skipped as a whole too.
			unknownInEmbedded := len(stack) > 1 && !skipped &&
				!slices.ContainsFunc([]string{"property", "propertyList", "link", "resource"}, func(s string) bool { return strings.EqualFold(s, t.Name.Local) })
			if skipped || unknownInEmbedded {
				for _, a := range t.Attr {
					if a.Name.Space == "xmlns" || !strings.EqualFold(a.Name.Local, "name") && !strings.EqualFold(a.Name.Local, "rel") {
						continue
					}
					if named(a.Value) {
						return a.Value, false
					}
				}
			}
			stack = append(stack, t.Name.Local)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
}

// xmlAttrValuesRead checks that every value the decoder read from an
// attribute (an href) is the one XML 1.0 §3.3.3 makes of the attribute
// as written: white space written as it is (a CR LF pair as one) a
// space, then the references replaced. It returns the property read
// otherwise.
func xmlAttrValuesRead(r *Request) (string, bool) {
	for i := range r.op.Properties {
		v := &r.vals[i]
		if !v.present || v.span.start == 0 || (r.raw[v.span.start-1] != '"' && r.raw[v.span.start-1] != '\'') {
			continue
		}
		raw := strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ", "\t", " ").Replace(string(r.raw[v.span.start:v.span.end]))
		var want strings.Builder
		for raw != "" {
			amp := strings.IndexByte(raw, '&')
			if amp < 0 {
				want.WriteString(raw)
				break
			}
			want.WriteString(raw[:amp])
			semi := strings.IndexByte(raw[amp:], ';')
			ref := raw[amp+1 : amp+semi]
			raw = raw[amp+semi+1:]
			switch {
			case strings.HasPrefix(ref, "#x"):
				n, _ := strconv.ParseUint(ref[2:], 16, 32)
				want.WriteRune(rune(n))
			case strings.HasPrefix(ref, "#"):
				n, _ := strconv.ParseUint(ref[1:], 10, 32)
				want.WriteRune(rune(n))
			default:
				want.WriteString(map[string]string{"lt": "<", "gt": ">", "amp": "&", "apos": "'", "quot": `"`}[ref])
			}
		}
		if v.text != want.String() {
			return r.op.Properties[i].Name, false
		}
	}
	return "", true
}

// FuzzNormalizeNumber puts one number in every phone-number and
// destination property of every operation, in the body and in the
// query: what the edge forwards is exactly what Numbers made of it, and
// what Numbers refuses is refused, naming the property.
func FuzzNormalizeNumber(f *testing.F) {
	for _, s := range []string{"+14255551234", "tel:+14255551234", "tel:+1-425-555-1234", "(425) 555-1234", "4255551234",
		"tel : +14255551234", "tel:+14255551234;ext=123", "+1 425 555 1234 x123", "+44 20 7946 0958", "011 44 20 7946 0958",
		"123", "+999123", "tel:", "sip:john@contoso.com", "++1", "+1" + strings.Repeat("2", 120), "tel:+1-425-555-1234;phone-context=x", "٤٢٥٥٥٥١٢٣٤",
		"911", "sip:+1-900-555-1234@gw.contoso.com;user=phone", "sip:john@contoso.com;maddr=evil"} {
		f.Add(s)
	}
	us, none := mustCleaner(f, "US", TelURI), mustCleaner(f, "", E164)
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range []*Cleaner{us, none} {
			for i := range testOps {
				op := &testOps[i]
				for j := range op.Properties {
					p := &op.Properties[j]
					if p.Type != NumberValue && p.Type != DestinationValue {
						continue
					}
					want, problem := c.numbers.Destination(s)
					if p.Type == NumberValue {
						var num Number
						num, problem = c.numbers.Number(s)
						want = Destination{Value: num.Forwarded(), Number: num}
					}
					// The other required properties are given good values,
					// so that a refusal is this property's.
					fields := map[string]any{p.Name: s}
					query := url.Values{p.Name: {s}}
					for k := range op.Properties {
						if other := &op.Properties[k]; other.Required && k != j {
							in, _ := goodValue(other, true)
							fields[other.Name], query[other.Name] = in, []string{in}
						}
					}
					body, _ := json.Marshal(fields)
					ins := []Incoming{{Method: op.Method, Header: http.Header{"If-Match": {"1"}}, RawQuery: query.Encode()}}
					if utf8.ValidString(s) && op.Body == PropertiesBody {
						ins = append(ins, Incoming{Method: op.Method, Header: http.Header{"Content-Type": {"application/json"}, "If-Match": {"1"}}, Body: body})
					}
					if strings.TrimSpace(s) == "" {
						continue // absent
					}
					for _, in := range ins {
						cl, err := c.Intake(op, in)
						if !problem.OK() {
							if err == nil || err.Status != 400 || len(err.Parameters) != 1 || err.Parameters[0].Name != p.Name {
								t.Fatalf("%s %s: Numbers refuses %q (%v), Intake says %v", op.Rel, p.Name, s, problem, err)
							}
							continue
						}
						if err != nil {
							// Another rule (a required property, a length) may refuse it.
							if err.Subcode == SubcodeNormalizationFailed {
								t.Fatalf("%s %s: Numbers takes %q, Intake says %v %v", op.Rel, p.Name, s, err, err.Parameters)
							}
							continue
						}
						if v, _ := cl.Value(p.Name); v != want.Value {
							t.Fatalf("%s %s: %q forwarded as %q, Numbers made %q", op.Rel, p.Name, s, v, want.Value)
						}
						found := false
						for _, d := range cl.Destinations() {
							if d.Property == p.Name {
								found = d.Destination == want && d.Kind == p.Destination
							}
						}
						if !found {
							t.Fatalf("%s %s: destinations %+v, want %+v", op.Rel, p.Name, cl.Destinations(), want)
						}
					}
				}
			}
		}
	})
}

// FuzzClean runs the whole terminate pipeline of startPhoneAudio, with
// queryTo as the to query parameter, and of another operation, with
// queryTo as its whole query: whatever Clean accepts re-encodes to a body
// and query that Clean accepts again without changing them.
func FuzzClean(f *testing.F) {
	f.Add(readSeed(f, "seed.json"), false, "")
	f.Add(readSeed(f, "seed.xml"), true, "sip:JOHN@contoso.com")
	for _, s := range jsonSeeds {
		f.Add([]byte(s), false, "4255551234")
	}
	for _, s := range xmlSeeds {
		f.Add([]byte(s), true, "")
	}
	f.Add([]byte(`{"importance":"uRGENT","_links":{"customContent":{"href":"data:;base64,aGVs bG8="}}}`), false, "tel:+1-425-555-1234")
	f.Add([]byte(`{"target":"+1 425 555 1234","ringDelay":5}`), false, "ringDelay=06&target=tel:%2B14255551234&x=1")
	f.Add([]byte(`<resource><property name="phoneNumber">4255551234</property><property name="publishEndpointLocation">False</property></resource>`), true, "")
	c := mustCleaner(f, "US", TelURI)
	f.Fuzz(func(t *testing.T, body []byte, isXML bool, queryTo string) {
		format := JSON
		if isXML {
			format = XML
		}
		spaQuery := ""
		if queryTo != "" {
			spaQuery = "to=" + url.QueryEscape(queryTo)
		}
		checkClean(t, c, spa, format, body, spaQuery)
		checkClean(t, c, otherOp(queryTo), format, body, queryTo)
	})
}

// checkClean holds Clean to its contract on one body and query of op.
func checkClean(t *testing.T, c *Cleaner, op *Operation, format Format, body []byte, rawQuery string) {
	t.Helper()
	r, derr := decodeOp(op, format, body)
	if derr != nil {
		return
	}
	q, qerr := ParseQuery(op, rawQuery)
	if qerr != nil {
		return
	}
	cl, err := c.Clean(op, r, q)
	if err != nil {
		if err.Status != 400 || (err.Subcode != SubcodeParameterValidationFailure && err.Subcode != SubcodeNormalizationFailed) || len(err.Parameters) == 0 {
			t.Fatalf("%s: Clean error %+v", op.Rel, err)
		}
		for _, p := range err.Parameters {
			if _, known := op.Property(p.Name); !known {
				t.Fatalf("%s: Clean names %q", op.Rel, p.Name)
			}
		}
		return
	}
	for _, d := range cl.Destinations() {
		p, _ := op.Property(d.Property)
		if p == nil || p.Destination != d.Kind || d.Value == "" {
			t.Fatalf("%s: destination %+v", op.Rel, d)
		}
		if v, _ := cl.Value(d.Property); d.Source == InBody && v != d.Value {
			t.Fatalf("%s: destination %+v, forwarded %q", op.Rel, d, v)
		}
	}
	r2, derr := decodeOp(op, format, cl.Body())
	if derr != nil {
		t.Fatalf("%s: cleaned body does not decode: %v\n%q", op.Rel, derr, cl.Body())
	}
	q2, qerr := ParseQuery(op, cl.RawQuery())
	if qerr != nil {
		t.Fatalf("%s: cleaned query does not parse: %v\n%q", op.Rel, qerr, cl.RawQuery())
	}
	if _, err := c.Clean(op, r2, q2); err != nil {
		t.Fatalf("%s: cleaned request fails Clean: %v %v\n%q\n%q", op.Rel, err, err.Parameters, cl.Body(), cl.RawQuery())
	}
	if r2.Changed() || q2.Changed() {
		t.Fatalf("%s: Clean is not idempotent: %v\n%q\n%q", op.Rel, snapshot(r2), cl.Body(), cl.RawQuery())
	}
}

// xmlNamesRead checks, with encoding/xml, the name of every property and
// propertyList and the rel of every link inside the root of a body the
// decoder accepted: ASCII, none folding onto a property (a value or a
// link, as the element is) without being one, and no rel being or
// folding onto a value's name; and no name or rel attribute spelled
// otherwise (another letter case, a namespace prefix) naming a property,
// nor an href so spelled on a link the edge reads. It returns a name that
// is not.
func xmlNamesRead(op *Operation, body []byte) (string, bool) {
	top, links := readNames(op)
	d := xml.NewDecoder(bytes.NewReader(body))
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return "", true
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth++; depth != 2 {
				continue
			}
			var attrName string
			var words, notWords []string
			switch t.Name.Local {
			case "property", "propertyList":
				attrName, words = "name", top[1:] // no _links in XML
			case "link":
				attrName, words, notWords = "rel", links, top[1:]
			default:
				continue
			}
			rel, _ := attr(t, "rel")
			for _, a := range t.Attr {
				other := a.Name.Space != "xmlns" && !(a.Name.Space == "" && a.Name.Local == "xmlns") && !(a.Name.Space == "" && a.Name.Local == strings.ToLower(a.Name.Local))
				switch {
				case other && strings.EqualFold(a.Name.Local, attrName) && referenceNamed(a.Value, append(words, notWords...)):
					return a.Value, false // a name or rel spelled otherwise
				case other && strings.EqualFold(a.Name.Local, attrName) && isStray(op, a.Value):
					return a.Value, false // a destination op does not take, so spelled
				case other && t.Name.Local == "link" && strings.EqualFold(a.Name.Local, "href") && slices.ContainsFunc(links, func(l string) bool { return strings.EqualFold(l, rel) }):
					return a.Name.Local, false // the href of a link the edge reads, spelled otherwise
				}
				if a.Name.Space != "" || a.Name.Local != attrName {
					continue
				}
				for _, c := range []byte(a.Value) {
					if c >= utf8.RuneSelf {
						return a.Value, false
					}
				}
				if referenceLookalike(a.Value, words) || referenceNamed(a.Value, notWords) {
					return a.Value, false
				}
				if attrName == "name" && (referenceLookalike(a.Value, links) || referenceNamed(a.Value, []string{linksName, embeddedName})) {
					return a.Value, false // a link's name, or JSON's _links or _embedded, as a property
				}
			}
		case xml.EndElement:
			depth--
		}
	}
}

func isStray(op *Operation, name string) bool {
	_, ok := referenceStray(op, name)
	return ok
}

// xmlStrayRead checks, with encoding/xml, every element inside the root
// of a body of op the decoder accepted: no link or propertyList has a rel
// or name that is or folds onto a destination op does not take (see
// referenceStray), and no property so named holds anything but blank
// text or one of its words. It returns a name that breaks that.
func xmlStrayRead(op *Operation, body []byte) (string, bool) {
	d := xml.NewDecoder(bytes.NewReader(body))
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return "", true
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth++; depth != 2 {
				continue
			}
			attrName := map[string]string{"link": "rel", "propertyList": "name", "property": "name"}[t.Name.Local]
			name, ok := attr(t, attrName)
			if attrName == "" || !ok {
				continue
			}
			words, stray := referenceStray(op, name)
			if !stray && t.Name.Local != "link" && propIndex(op, name, true) >= 0 {
				words, stray = nil, true // a link's name as a property: blank only
			}
			if !stray || t.Name.Local == "link" && propIndex(op, name, true) >= 0 {
				continue
			}
			if t.Name.Local == "link" && referenceXMLLinkAllowed(words, t) {
				continue
			}
			if t.Name.Local != "property" {
				return name, false
			}
			var text []byte
			for inside := true; inside; {
				tok, err := d.Token()
				if err != nil {
					return "", true
				}
				switch tt := tok.(type) {
				case xml.CharData:
					text = append(text, tt...)
				case xml.StartElement:
					return name, false
				case xml.EndElement:
					inside = false
					depth--
				}
			}
			if !referenceWord(words, string(text)) {
				return name, false
			}
		case xml.EndElement:
			depth--
		}
	}
}

// xmlEmbeddedRead checks, with encoding/xml, every <resource> nested in
// the root of a body the decoder accepted, at any depth: no link or
// propertyList in it has a rel or name that is or folds onto a
// destination's (see referenceDestination), and no property so named
// holds anything but blank text or one of its words. It returns a name
// that breaks that.
func xmlEmbeddedRead(body []byte) (string, bool) {
	d := xml.NewDecoder(bytes.NewReader(body))
	var stack []string // the open elements' local names, lower case
	inEmbedded := func() bool {
		if len(stack) < 2 {
			return false
		}
		for _, name := range stack[1:] {
			if name != "resource" {
				return false
			}
		}
		return true
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return "", true
		}
		switch t := tok.(type) {
		case xml.StartElement:
			local := strings.ToLower(t.Name.Local)
			if inEmbedded() {
				attrName := map[string]string{"link": "rel", "propertylist": "name", "property": "name"}[local]
			attrs:
				for _, a := range t.Attr {
					if attrName == "" || !strings.EqualFold(a.Name.Local, attrName) {
						continue
					}
					words, ok := referenceDestination(a.Value)
					if !ok || local == "link" && referenceXMLLinkAllowed(words, t) {
						continue
					}
					if local != "property" || slices.ContainsFunc(t.Attr, func(b xml.Attr) bool { return !referenceNameOrXMLNS(b, true) }) {
						return a.Value, false
					}
					var text []byte
					for depth := 1; depth > 0; {
						tok, err := d.Token()
						if err != nil {
							return "", true
						}
						switch tt := tok.(type) {
						case xml.CharData:
							text = append(text, tt...)
						case xml.StartElement:
							return a.Value, false
						case xml.EndElement:
							depth--
						}
					}
					if !referenceWord(words, string(text)) {
						return a.Value, false
					}
					local = "" // its end tag is read
					break attrs
				}
			}
			if local != "" {
				stack = append(stack, local)
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
}

// xmlPropertyAttrsRead checks, with encoding/xml, every element inside
// the root of an accepted body: no <property> has an attribute but its
// name and namespace declarations, and no <property> or <propertyList>
// has an empty name. It says what breaks that.
func xmlPropertyAttrsRead(body []byte) (string, bool) {
	d := xml.NewDecoder(bytes.NewReader(body))
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return "", true
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth++; depth != 2 || t.Name.Local != "property" && t.Name.Local != "propertyList" {
				continue
			}
			for _, a := range t.Attr {
				if a.Name == (xml.Name{Local: "name"}) && a.Value == "" {
					return "a " + t.Name.Local + " with an empty name", false
				}
				if t.Name.Local == "property" && !referenceNameOrXMLNS(a, false) {
					return "a property with the attribute " + a.Name.Local, false
				}
			}
		case xml.EndElement:
			depth--
		}
	}
}

// referenceNameOrXMLNS reports whether a is a namespace declaration or a
// property's name: written name, or, loose, name in any letter case and
// namespace.
func referenceNameOrXMLNS(a xml.Attr, loose bool) bool {
	return a.Name.Space == "xmlns" || a.Name == (xml.Name{Local: "xmlns"}) || a.Name == (xml.Name{Local: "name"}) ||
		loose && strings.EqualFold(a.Name.Local, "name")
}

func wellFormedXML(body []byte) bool {
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		if _, err := d.Token(); err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}

// jsonNesting is how deeply the arrays and objects of a valid JSON text
// nest: 1 for an object of scalars.
func jsonNesting(body []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// referenceJSON decodes a body of op with encoding/json alone, as the
// oracle for the fuzzer: the documented properties of a body that is
// valid JSON nested no deeper than maxJSONDepth, an object, with objects
// (or null) for _links and the operation's links, no name twice in any
// letter case at those three levels, and no link named, or folding onto
// the name of, a property that is not a link; what it does not read is
// checked by referenceUnread.
func referenceJSON(op *Operation, body []byte) (values, error) {
	v := fv()
	if !utf8.Valid(body) || !json.Valid(body) {
		return v, errors.New("not valid JSON")
	}
	if jsonNesting(body) > maxJSONDepth {
		return v, errors.New("nested too deeply")
	}
	topNames, linkNames := readNames(op)
	top, err := referenceObject(body, topNames)
	if err != nil {
		return v, err
	}
	read := func(p *Property, raw json.RawMessage) {
		typ := p.Type
		switch {
		case string(raw) == "null":
		case raw[0] == '"':
			var s string
			_ = json.Unmarshal(raw, &s)
			switch {
			case strings.TrimSpace(s) == "":
			case typ == BooleanValue || typ == IntegerValue:
				v.typeErr[p.Name] = typeReasons[problemFor(typ)]
			default:
				v.fields[p.Name] = s
			}
		case typ == BooleanValue && (string(raw) == "true" || string(raw) == "false"):
			v.fields[p.Name] = string(raw)
		case typ == IntegerValue && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') && !bytes.ContainsAny(raw, ".eE"):
			v.fields[p.Name] = string(raw)
		default:
			v.typeErr[p.Name] = typeReasons[problemFor(typ)]
		}
	}
	propNames := referencePropertyNames(op)
	inputs := referenceInputs(op)
	for _, m := range top {
		if referenceBindingNamed(m.name, propNames) {
			return v, errors.New("a model-binding spelling of a property " + m.name)
		}
		if referenceBindingNamed(m.name, referenceEmbeddedInputs(op)) {
			return v, errors.New("a model-binding spelling of an embedded resource's property " + m.name)
		}
		if referenceNamed(m.name, linkNames) && (referenceLookalike(m.name, linkNames) || !referenceAllowed(nil, m.value)) {
			return v, errors.New("a property named like a link " + m.name)
		}
		if i := propIndex(op, m.name, false); i >= 0 {
			// The operation's own property: read, and refused by its type
			// (Clean) when it is no scalar, whatever it holds.
			read(&op.Properties[i], m.value)
			continue
		}
		if words, ok := referenceStray(op, m.name); ok {
			if !referenceAllowed(words, m.value) {
				return v, errors.New("a destination the operation does not take " + m.name)
			}
			continue
		}
		if referenceNamed(m.name, []string{embeddedName}) {
			if err := referenceEmbedded(m.value, op.Embedded, inputs); err != nil {
				return v, err
			}
			continue
		}
		if !strings.EqualFold(m.name, "_links") {
			if referenceIndexesOnly.MatchString(referenceKept(m.name)) && !referenceAllowed(nil, m.value) {
				return v, errors.New("a name that is an index alone " + m.name)
			}
			if referenceEntryKeyName(m.name) && referenceEntryKey(op, m.value) {
				return v, errors.New("a dictionary entry keyed by an input " + m.name)
			}
			if err := referenceUnread(m.value, inputs); err != nil {
				return v, err
			}
			continue
		}
		if string(m.value) == "null" {
			continue
		}
		links, err := referenceObject(m.value, linkNames)
		if err != nil {
			return v, err
		}
		for _, l := range links {
			if referenceBindingNamed(l.name, propNames) {
				return v, errors.New("a model-binding spelling of a property " + l.name)
			}
			if referenceBindingNamed(l.name, referenceEmbeddedInputs(op)) {
				return v, errors.New("a link named by a model-binding spelling of an embedded resource's property " + l.name)
			}
			if referenceNamed(l.name, topNames[1:]) { // the values' names, after _links
				return v, errors.New("a link named like a property " + l.name)
			}
			if words, ok := referenceStray(op, l.name); ok && propIndex(op, l.name, true) < 0 {
				if !referenceLinkAllowed(words, l.value, inputs) {
					return v, errors.New("a link named like a destination the operation does not take " + l.name)
				}
				continue
			}
			i := propIndex(op, l.name, true)
			if i < 0 {
				if err := referenceUnread(l.value, inputs); err != nil {
					return v, err
				}
				continue
			}
			if string(l.value) == "null" {
				continue
			}
			link, err := referenceObject(l.value, []string{hrefName})
			if err != nil {
				return v, err
			}
			for _, h := range link {
				if strings.EqualFold(h.name, "href") {
					read(&op.Properties[i], h.value)
				} else if err := referenceUnreadMember(h.name, h.value, inputs); err != nil {
					return v, err
				}
			}
		}
	}
	return v, nil
}

// referenceDestinations are the names of the table's destination
// properties, each with the words the table's enum properties of that
// name take: what an embedded resource may not hold, but as those words.
var referenceDestinations = func() map[string][]string {
	m := map[string][]string{}
	for _, op := range DefaultOperations() {
		for _, p := range op.Properties {
			if p.Destination != NotDestination {
				m[strings.ToLower(p.Name)] = nil
			}
		}
	}
	for _, op := range DefaultOperations() {
		for _, p := range op.Properties {
			if words, ok := m[strings.ToLower(p.Name)]; ok && p.Type == EnumValue {
				m[strings.ToLower(p.Name)] = append(words, p.Values...)
			}
		}
	}
	// The forwarding settings' contact link, which a pool serves as a
	// person of its own.
	m["contact"] = []string{referencePath}
	return m
}()

// referencePath stands, among a destination's words, for a path to a
// resource of the pool as it serves one in a link (see
// referenceResourcePath).
const referencePath = "/(a path to a resource of the pool)"

// referenceResourcePath reports whether v is a path to a resource of the
// pool that names no scheme nor host: neither it nor any decoding of it
// (%XX, and IIS's %uXXXX, again and again) does anything but start with
// one "/" and hold printable ASCII other than spaces, ':' and backslashes;
// and no segment of one, but the one after "applications", holds a SIP
// user (before any '@') of six digits or more, or a vanity number.
func referenceResourcePath(v string) bool {
	for {
		if len(v) < 1 || v[0] != '/' || len(v) > 1 && v[1] == '/' {
			return false
		}
		for _, r := range v {
			if r <= ' ' || r >= 0x7f || r == ':' || r == '\\' || r == '+' || r == ';' {
				return false
			}
		}
		path, _, _ := strings.Cut(v[1:], "?")
		segments := strings.Split(path, "/")
		for i, segment := range segments {
			if i > 0 && strings.EqualFold(segments[i-1], "applications") {
				continue
			}
			user, _, _ := strings.Cut(segment, "@")
			digits := 0
			for _, c := range user {
				if '0' <= c && c <= '9' {
					digits++
				}
			}
			if _, vanity := referenceKeypadUser(user); vanity || digits >= 6 {
				return false
			}
		}
		decoded := referenceUnescape(v)
		if decoded == v {
			return true
		}
		v = decoded
	}
}

// referenceEscape is a %XX or %uXXXX escape.
var referenceEscape = regexp.MustCompile(`%[0-9A-Fa-f]{2}|%[uU][0-9A-Fa-f]{4}`)

// referenceUnescape decodes every escape of s once.
func referenceUnescape(s string) string {
	return referenceEscape.ReplaceAllStringFunc(s, func(e string) string {
		n, _ := strconv.ParseUint(strings.TrimLeft(e[1:], "uU"), 16, 32)
		if len(e) == 3 {
			return string([]byte{byte(n)})
		}
		return string(rune(n))
	})
}

// referenceLinkAllowed reports whether a JSON link value named like a
// destination with those words may stand outside the operation's rules:
// the destination is one a pool serves as a link (its words hold
// referencePath), and the link is null or an object whose members named
// href hold what the words allow (see referenceAllowed).
func referenceLinkAllowed(words []string, raw json.RawMessage, inputs []string) bool {
	if !slices.Contains(words, referencePath) {
		return false
	}
	if string(raw) == "null" {
		return true
	}
	members, err := referenceObject(raw, nil)
	if err != nil {
		return false
	}
	for _, m := range members {
		if referenceNamed(m.name, []string{hrefName}) && !referenceAllowed(words, m.value) ||
			!strings.EqualFold(m.name, hrefName) && referenceUnreadMember(m.name, m.value, inputs) != nil {
			return false
		}
	}
	return true
}

// referenceXMLLinkAllowed is referenceLinkAllowed for a <link>: each
// attribute named href in any letter case or namespace holds what the
// words allow.
func referenceXMLLinkAllowed(words []string, t xml.StartElement) bool {
	if !slices.Contains(words, referencePath) {
		return false
	}
	for _, a := range t.Attr {
		if a.Name.Space != "xmlns" && strings.EqualFold(a.Name.Local, hrefName) && !referenceWord(words, a.Value) {
			return false
		}
	}
	return true
}

// referenceDestination returns the words of the destination an ASCII name
// is (see referenceNamed), and whether it is one.
func referenceDestination(name string) ([]string, bool) {
	for d, words := range referenceDestinations {
		if referenceNamed(name, []string{d}) || referenceBindingNamed(name, []string{d}) {
			return words, true
		}
	}
	return nil, false
}

// referenceOperationID reports whether a name is operationId, read as
// referenceDestination reads a destination's.
func referenceOperationID(name string) bool {
	return referenceNamed(name, []string{propOperationID.Name}) || referenceBindingNamed(name, []string{propOperationID.Name})
}

// referenceUnreadInput is referenceDestination, or operationId, which
// has no words, where the decoder reads no input (an embedded resource,
// an XML attribute, an element it skips).
func referenceUnreadInput(name string) ([]string, bool) {
	if words, ok := referenceDestination(name); ok {
		return words, true
	}
	return nil, referenceOperationID(name)
}

// referenceBindingNamed reports whether a name is a .NET model-binding
// spelling of one of words: with its controls and spaces dropped (see
// referenceLookalike), a part of it between '.', '[' and ']' is one in
// any letter case.
func referenceBindingNamed(name string, words []string) bool {
	folded := strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return -1
		}
		return r
	}, name)
	if !strings.ContainsAny(folded, ".[]") {
		return false
	}
	for _, part := range strings.FieldsFunc(folded, func(r rune) bool { return r == '.' || r == '[' || r == ']' }) {
		for _, w := range words {
			if strings.EqualFold(part, w) {
				return true
			}
		}
	}
	return false
}

// referencePropertyNames are the names of op's properties, links and
// values alike.
func referencePropertyNames(op *Operation) []string {
	names := make([]string, len(op.Properties))
	for i, p := range op.Properties {
		names[i] = p.Name
	}
	return names
}

// referenceStray returns the words of the destination a name is (see
// referenceDestination) when op has no property of that name, and
// whether it is such a stray destination.
func referenceStray(op *Operation, name string) ([]string, bool) {
	for d, words := range referenceDestinations {
		if referenceNamed(name, []string{d}) || referenceBindingNamed(name, []string{d}) {
			_, own := op.Property(d)
			return words, !own
		}
	}
	return nil, false
}

// referenceAllowed reports whether a JSON value of a property named like
// a destination with those words is one it may hold outside the
// operation's rules: null, a blank string or one of the words.
func referenceAllowed(words []string, raw json.RawMessage) bool {
	var s string
	return string(raw) == "null" || json.Unmarshal(raw, &s) == nil && referenceWord(words, s)
}

// referenceWord reports whether text is blank or one of words (a
// resource path for referencePath).
func referenceWord(words []string, text string) bool {
	text = strings.TrimSpace(text)
	return text == "" || slices.ContainsFunc(words, func(w string) bool { return strings.EqualFold(w, text) }) ||
		slices.Contains(words, referencePath) && referenceResourcePath(text)
}

// referenceEmbedded checks the value of "_embedded" (an object of
// resources or arrays of them, an array of resources, anything else
// skipped) with encoding/json alone, the oracle for the decoder: no
// resource in it, at any depth, holds a property named like a destination
// or operationId (see referenceUnreadInput) unless null, blank or one of
// its words, nor a link so named; no name
// outside ASCII or twice in any letter case in its objects.
func referenceEmbedded(raw json.RawMessage, known []EmbeddedResource, inputs []string) error {
	resources := func(raw json.RawMessage, key string) error {
		switch raw[0] {
		case '{':
			return referenceEmbeddedResource(raw, known, key, inputs)
		case '[':
			var elems []json.RawMessage
			_ = json.Unmarshal(raw, &elems)
			for _, e := range elems {
				var err error
				if e[0] == '{' {
					err = referenceEmbeddedResource(e, known, key, inputs)
				} else {
					err = referenceUnread(e, inputs)
				}
				if err != nil {
					return err
				}
			}
		}
		return nil
	}
	switch raw[0] {
	case '{':
		members, err := referenceObject(raw, nil)
		if err != nil {
			return err
		}
		for _, m := range members {
			if err := resources(m.value, m.name); err != nil {
				return err
			}
		}
	case '[':
		return resources(raw, "")
	}
	return nil
}

// referenceRel reports whether a name an embedded resource goes by (its
// key, its rel) names the rel of a known resource: any letter case,
// controls and spaces dropped; one outside ASCII names any.
func referenceRel(name, rel string) bool {
	for _, c := range name {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	return referenceNamed(name, []string{rel})
}

// referenceEmbeddedValue reports whether a JSON value of p in an embedded
// resource is one its own PUT takes: null, a blank string, or a value of
// its type within its rules (the table embeds integers and enums only).
func referenceEmbeddedValue(p *Property, raw json.RawMessage) bool {
	var str string
	isString := json.Unmarshal(raw, &str) == nil
	switch {
	case string(raw) == "null", isString && strings.TrimSpace(str) == "":
		return true
	case p.Type == IntegerValue:
		var n int64
		return !isString && !bytes.ContainsAny(raw, ".eE") && json.Unmarshal(raw, &n) == nil && n >= p.Min && n <= p.Max
	case p.Type == EnumValue:
		return isString && slices.ContainsFunc(p.Values, func(v string) bool { return strings.EqualFold(v, strings.TrimSpace(str)) })
	}
	panic("the table embeds a " + p.Type.String())
}

func referenceEmbeddedResource(raw json.RawMessage, known []EmbeddedResource, key string, inputs []string) error {
	members, err := referenceObject(raw, nil)
	if err != nil {
		return err
	}
	rels := []string{key}
	for _, m := range members {
		var rel string
		if referenceNamed(m.name, []string{"rel"}) && json.Unmarshal(m.value, &rel) == nil {
			rels = append(rels, rel)
		}
	}
	for _, e := range known {
		if !slices.ContainsFunc(rels, func(r string) bool { return r != "" && referenceRel(r, e.Rel) }) {
			continue
		}
		for _, m := range members {
			for i := range e.Properties {
				if p := &e.Properties[i]; referenceNamed(m.name, []string{p.Name}) && !referenceEmbeddedValue(p, m.value) {
					return errors.New("an embedded " + e.Rel + " " + p.Name + " its own PUT refuses")
				}
			}
		}
	}
	for _, m := range members {
		if words, ok := referenceUnreadInput(m.name); ok {
			if referenceAllowed(words, m.value) {
				continue
			}
			return errors.New("an embedded destination " + m.name)
		}
		switch {
		case referenceNamed(m.name, []string{embeddedName}):
			if err := referenceEmbedded(m.value, nil, inputs); err != nil {
				return err
			}
		case referenceNamed(m.name, []string{linksName}) && m.value[0] == '{':
			links, err := referenceObject(m.value, nil)
			if err != nil {
				return err
			}
			for _, l := range links {
				words, ok := referenceUnreadInput(l.name)
				if ok && !referenceLinkAllowed(words, l.value, inputs) {
					return errors.New("an embedded link named like a destination " + l.name)
				}
				if !ok {
					if err := referenceUnread(l.value, inputs); err != nil {
						return err
					}
				}
			}
		default:
			if strings.ContainsAny(referenceKept(m.name), ".[]") && referenceBindingNamed(m.name, inputs) {
				return errors.New("an embedded member whose model-binding spelling names an input " + m.name)
			}
			if err := referenceUnread(m.value, inputs); err != nil {
				return err
			}
		}
	}
	return nil
}

// referenceUnread checks, with encoding/json, a value the decoder does
// not read: every object in it, at any depth, is one referenceObject
// takes (ASCII names, none twice in any letter case, no .NET metadata),
// and has no member named like a destination (see referenceNamed) unless
// null, blank or one of its words, nor one named like one of inputs
// (see referenceInputs), whatever it holds, nor operationId unless null
// or blank, nor a dictionary entry's key naming an input, nor one named
// "_links" or "_embedded", whatever it holds.
func referenceUnread(raw json.RawMessage, inputs []string) error {
	switch raw[0] {
	case '[':
		var elems []json.RawMessage
		_ = json.Unmarshal(raw, &elems)
		for _, e := range elems {
			if err := referenceUnread(e, inputs); err != nil {
				return err
			}
		}
	case '{':
		members, err := referenceObject(raw, nil)
		if err != nil {
			return err
		}
		for _, m := range members {
			if err := referenceUnreadMember(m.name, m.value, inputs); err != nil {
				return err
			}
		}
	}
	return nil
}

// referenceUnreadMember checks a member of an object the decoder does not
// read, or a link's member other than href (see referenceUnread).
func referenceUnreadMember(name string, value json.RawMessage, inputs []string) error {
	if words, ok := referenceDestination(name); ok {
		if !referenceAllowed(words, value) {
			return errors.New("a destination where the decoder does not read it " + name)
		}
		return nil
	}
	if referenceNamed(name, inputs) || referenceBindingNamed(name, inputs) {
		// MVC's JsonValueProviderFactory keys it by the members it
		// stands in (x.operationId), which a parameter x binds.
		return errors.New("an input where the decoder does not read it " + name)
	}
	if referenceOperationID(name) {
		// An operation that takes none: as in an embedded resource.
		if !referenceAllowed(nil, value) {
			return errors.New("an operationId where the decoder does not read it " + name)
		}
		return nil
	}
	var key string
	if (strings.EqualFold(name, "key") || referenceEntryKeyName(name)) && json.Unmarshal(value, &key) == nil {
		// A dictionary entry's key, which .NET model binding reads as
		// the name of the entry's value.
		if referenceEntryKeyNames(key, inputs) {
			return errors.New("a dictionary entry keyed by an input where the decoder does not read it")
		}
		return nil
	}
	if referenceNamed(name, []string{linksName, embeddedName}) {
		return errors.New(`a "_links" or "_embedded" where the decoder does not read it`)
	}
	return referenceUnread(value, inputs)
}

// referenceInputs are the names of op's inputs other than the table's
// destinations: its properties, links included, and the properties of
// the resources it embeds.
func referenceInputs(op *Operation) []string {
	var names []string
	add := func(p Property) {
		if _, dest := referenceDestinations[strings.ToLower(p.Name)]; !dest && !slices.Contains(names, p.Name) {
			names = append(names, p.Name)
		}
	}
	for _, p := range op.Properties {
		add(p)
	}
	for _, e := range op.Embedded {
		for _, p := range e.Properties {
			add(p)
		}
	}
	return names
}

// referenceEmbeddedInputs are the names of the properties of the
// resources op embeds that are neither the table's destinations nor
// op's own properties.
func referenceEmbeddedInputs(op *Operation) []string {
	var names []string
	for _, in := range referenceInputs(op) {
		if _, own := op.Property(in); !own {
			names = append(names, in)
		}
	}
	return names
}

// referenceKept is an ASCII name with its controls and spaces dropped,
// as referenceLookalike reads it.
func referenceKept(name string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return -1
		}
		return r
	}, name)
}

// referenceEntryKeyName reports whether a name, its controls and spaces
// dropped, is a model-binding spelling whose last part is key
// (x[0].key, [a].KEY): a dictionary entry's key.
func referenceEntryKeyName(name string) bool {
	kept := referenceKept(name)
	parts := strings.FieldsFunc(kept, func(r rune) bool { return r == '.' || r == '[' || r == ']' })
	return strings.ContainsAny(kept, ".[]") && len(parts) > 0 && strings.EqualFold(parts[len(parts)-1], "key")
}

// referenceEntryKey reports whether a JSON value is a string that, as a
// dictionary entry's key, names an input of op (see
// referenceEntryKeyNames).
func referenceEntryKey(op *Operation, raw json.RawMessage) bool {
	var key string
	return json.Unmarshal(raw, &key) == nil && referenceEntryKeyNames(key, referenceInputs(op))
}

// referenceEntryKeyNames reports whether a dictionary entry's key names
// a destination, operationId or one of inputs, read carelessly (see
// referenceUnreadName).
func referenceEntryKeyNames(key string, inputs []string) bool {
	key = referenceUnreadName(strings.TrimSpace(key))
	inputs = append([]string{"operationId"}, inputs...)
	_, dest := referenceDestination(key)
	return dest || referenceNamed(key, inputs) || referenceBindingNamed(key, inputs)
}

// referenceUnreadName is a name as a careless reader reads it: its
// compatibility decomposition without invisible characters (controls,
// format characters, white space, combining marks), so that a name
// outside ASCII, which XML's decoder accepts where it does not read, is
// compared as referenceNamed compares an ASCII one.
func referenceUnreadName(name string) string {
	return strings.Map(func(r rune) rune {
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Z, unicode.Mn, unicode.Me, unicode.Variation_Selector, unicode.White_Space) {
			return -1
		}
		return r
	}, norm.NFKD.String(name))
}

type referenceMember struct {
	name  string
	value json.RawMessage
}

// referenceObject lists the members of a JSON object in order, refusing
// a name outside ASCII, a name twice in any letter case, a name that
// folds onto one of read (see referenceLookalike), and .NET metadata
// ("$ref", "$type", "__type") in any letter case.
func referenceObject(b []byte, read []string) ([]referenceMember, error) {
	var object map[string]json.RawMessage
	if err := json.Unmarshal(b, &object); err != nil || object == nil {
		return nil, errors.New("not an object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.Token() // {
	var members []referenceMember
	for dec.More() {
		tok, _ := dec.Token()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		name := tok.(string)
		if name == "" {
			return nil, errors.New("a member without a name")
		}
		for _, c := range name {
			if c >= utf8.RuneSelf {
				return nil, errors.New("non-ASCII name " + name)
			}
		}
		if referenceLookalike(name, read) {
			return nil, errors.New("look-alike " + name)
		}
		if strings.EqualFold(name, "$ref") || strings.EqualFold(name, "$type") || strings.EqualFold(name, "__type") {
			return nil, errors.New(".NET metadata " + name)
		}
		for _, m := range members {
			if strings.EqualFold(m.name, name) {
				return nil, errors.New("duplicate " + name)
			}
		}
		members = append(members, referenceMember{name, raw})
	}
	return members, nil
}

// referenceDotnetCharset reads the charsets of a Content-Type value as
// System.Web's HttpRequest does, and a careful reader besides: every
// "charset" (any letter case) after ';', ',' or white space and before
// '=' (white space around it allowed), its value quoted or up to white
// space, ',' or ';'; and RFC 2231's charset*, which .NET ignores. It
// returns one that is not UTF-8, and whether all are.
func referenceDotnetCharset(s string) (string, bool) {
	lower := strings.ToLower(s)
	if strings.Contains(lower, "charset*") {
		return "charset*", false
	}
	for i := 0; ; {
		k := strings.Index(lower[i:], "charset")
		if k < 0 {
			return "", true
		}
		at := i + k
		i = at + len("charset")
		if at > 0 && !strings.ContainsRune(";, \t\r\n", rune(lower[at-1])) && !unicode.IsSpace(rune(lower[at-1])) {
			continue
		}
		rest := strings.TrimLeftFunc(lower[i:], unicode.IsSpace)
		if !strings.HasPrefix(rest, "=") {
			continue
		}
		rest = strings.TrimLeftFunc(rest[1:], unicode.IsSpace)
		var v string
		if strings.HasPrefix(rest, `"`) {
			v, _, _ = strings.Cut(rest[1:], `"`)
		} else {
			v = rest[:strings.IndexFunc(rest+" ", func(r rune) bool { return unicode.IsSpace(r) || r == ',' || r == ';' })]
		}
		if v = strings.TrimSpace(v); v != "utf-8" && v != "utf8" {
			return v, false
		}
	}
}

// FuzzHelpers holds the allocation-free helpers to the standard library
// functions they stand in for.
func FuzzHelpers(f *testing.F) {
	for _, s := range []string{"", "aGVsbG8=", "aGVsbG8", "aGV=bG8=", "somebase64encodedmessage", strings.Repeat("QUJD", 200) + "QQ==",
		strings.Repeat("QUJD", 127) + "QQ==" + "QUJD", "text/plain", "text", "text/", "/plain", "a/b/c", " text/plain ", "text/pl ain",
		`a "quoted" <tag> & 'apos'` + "\t\r\n\x00\x7f\xff\ufffd\u2028\U0001F600", "\ud7ff\ue000\ufffe",
		"application/json; charset=UTF-8", "application/json ;charset=utf8 ", "application/json; charset=latin1", "APPLICATION/JSON; charset=utf-8",
		`application/xml; charset="utf-8"`, "application/json;charset=utf-8;q=1", "application/xml; charset*=utf-8'en'utf-8; charset=utf-7",
		`application/json; x="a; charset=utf-7"`, "application/xml; charset*0=utf-; charset*1=8", "text/xml", "application/xml;q=0, */*", "application/XML;q=0.5, application/json;q=0.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		noLineEnds := strings.NewReplacer("\r", "", "\n", "").Replace(s)
		_, err := base64.StdEncoding.DecodeString(noLineEnds)
		if got := validBase64(noLineEnds); got != (err == nil) {
			t.Fatalf("validBase64(%q) = %v, DecodeString: %v", noLineEnds, got, err)
		}
		if simpleMediaType(s) {
			if _, _, err := mime.ParseMediaType(s); err != nil {
				t.Fatalf("simpleMediaType(%q) but ParseMediaType: %v", s, err)
			}
		}
		if f, ok := MediaFormat(s); f != 0 && !ok {
			t.Fatalf("MediaFormat(%q) = %v, false", s, f)
		} else if rf, rok := parseMediaFormat(s); f != rf || ok != rok {
			t.Fatalf("MediaFormat(%q) = %v, %v; mime.ParseMediaType gives %v, %v", s, f, ok, rf, rok)
		} else if cs, utf8 := referenceDotnetCharset(s); ok && !utf8 {
			t.Fatalf("MediaFormat(%q) = %v, true; .NET reads the charset %q", s, f, cs)
		}
		// A request's format is its media type's, whatever MediaFormat
		// makes of its parameters.
		base, _, _ := strings.Cut(s, ";")
		if got, want := RequestFormat(s), RequestFormat(base); got != want {
			t.Fatalf("RequestFormat(%q) = %v, of its media type %v", s, got, want)
		} else if mf, ok := MediaFormat(s); ok && got != mf {
			t.Fatalf("RequestFormat(%q) = %v, MediaFormat %v", s, got, mf)
		}
		if got, want := ErrorFormat(JSON, s), acceptFormat(s); got != want {
			t.Fatalf("ErrorFormat(%q) = %v, acceptFormat %v", s, got, want)
		}
		var want bytes.Buffer
		_ = xml.EscapeText(&want, []byte(s))
		if got := appendXMLText(nil, s); string(got) != want.String() {
			t.Fatalf("appendXMLText(%q) = %q, xml.EscapeText %q", s, got, want.String())
		}
		var back string
		if err := json.Unmarshal(appendJSONString(nil, s), &back); err != nil || back != string([]rune(s)) {
			t.Fatalf("appendJSONString(%q) reads back as %q, %v", s, back, err)
		}
		var escaped strings.Builder
		if writeQueryEscaped(&escaped, s); escaped.String() != url.QueryEscape(s) {
			t.Fatalf("writeQueryEscaped(%q) = %q, url.QueryEscape %q", s, escaped.String(), url.QueryEscape(s))
		}
		if got, want := isBlank(s), strings.TrimSpace(s) == ""; got != want {
			t.Fatalf("isBlank(%q) = %v, strings.TrimSpace says %v", s, got, want)
		}
		if got, want := appendJSONString(nil, s), referenceAppendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("appendJSONString(%q) = %s, one byte at a time %s", s, got, want)
		}
	})
}

// FuzzParseQuery holds the query reader to url.ParseQuery (read by
// referenceQuery, without its cap on the number of pairs): it refuses
// what url.ParseQuery cannot read, reads each property as it does, and
// re-encodes byte for byte, changing only the values set.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "to=sip:a@b.c", "To=tel:%2B14255551234&x=1", "to=a&to=b", "%74o=1", "to;=1", "%u0074o=1",
		"target=%2B1+425&ringDelay=5&&x", "t%E2%80%8Bo=1", "to%00=1", "a=%zz", "number=+14255551234&includeInContactCard", "=x&=&x=",
		"target=tel:%2B19005551234&x=1", "Number=1&delegator=+&target=Contact", "phone%00Number=1",
		"to[]=1", "to%5B0%5D=1", "x.to=1", "%5B0%5D.To=1", "model[to]=1", "a.b=1&c[d]=2", "x.phoneNumber=%2B19005551234", "operationId=op%FF",
		"to=sip:a@b.c&=tel:%2B19005551234", "[]=1", "%5B%5D%5B%5D=x&to=1", "=+",
		"x.index=a&x%5Ba%5D.key=subject&x%5Ba%5D.value=1", "unansweredCallSettings.ringDelay=1&ringDelay=1"} {
		f.Add(s, "x")
	}
	f.Fuzz(func(t *testing.T, raw, v string) {
		for _, op := range []*Operation{spa, otherOp(v)} {
			q, err := ParseQuery(op, raw)
			values, perr := referenceQuery(raw)
			if perr != nil {
				if err != errMalformedQuery {
					t.Fatalf("%s: url.ParseQuery: %v, ParseQuery: %v", op.Rel, perr, err)
				}
				continue
			}
			if err != nil {
				if err.Status != 400 || err.Subcode != SubcodeParameterValidationFailure || len(err.Parameters) == 0 {
					t.Fatalf("%s: %+v", op.Rel, err)
				}
				for _, p := range err.Parameters {
					embedded := slices.Contains(referenceInputs(op), p.Name) &&
						(strings.Contains(p.Reason, "resource the operation embeds") || strings.Contains(p.Reason, "dictionary entry"))
					if _, ok := op.Property(p.Name); !ok && !embedded && !(isStray(op, p.Name) && strings.HasPrefix(p.Reason, strayWhat+op.Rel+" ")) {
						t.Fatalf("%s: names %q", op.Rel, p.Name)
					}
				}
				continue
			}
			// No name that is, or folds onto, a destination op does not
			// take holds more than blank text or one of its words, nor
			// does one with such a part; no name but a property's own
			// has a part that is one in any letter case.
			for name, vs := range values {
				for _, part := range referenceBindingParts(name) {
					if words, ok := referenceStray(op, part); ok {
						for _, v := range vs {
							if !referenceWord(words, v) {
								t.Fatalf("%s: accepted %q=%q, a destination it does not take", op.Rel, name, v)
							}
						}
					}
					if _, own := op.Property(name); !own && slices.ContainsFunc(op.Properties, func(p Property) bool { return strings.EqualFold(p.Name, part) }) {
						t.Fatalf("%s: accepted %q, a spelling of a property", op.Rel, name)
					}
					if strings.ContainsAny(name, ".[]") && slices.ContainsFunc(referenceEmbeddedInputs(op), func(in string) bool { return strings.EqualFold(in, part) }) {
						t.Fatalf("%s: accepted %q, a model-binding spelling of an embedded resource's property", op.Rel, name)
					}
				}
			}
			// No value without a name ("", or brackets only) that is not
			// blank: ASP.NET Web API binds every parameter the query
			// does not name to it, the pool's beyond op's inputs too,
			// and a collection parameter to "[0]" or an index listed.
			for name, vs := range values {
				if referenceIndexesOnly.MatchString(name) && slices.ContainsFunc(vs, func(v string) bool { return strings.TrimSpace(v) != "" }) {
					t.Fatalf("%s: accepted %q=%q, a value without a name", op.Rel, name, vs)
				}
			}
			// No dictionary entry (x[0].key) keyed by a destination,
			// operationId or another input of op: MVC and Web API bind its
			// x[0].value as that entry of a dictionary parameter.
			for name, vs := range values {
				if !strings.HasSuffix(strings.ToLower(name), ".key") {
					continue
				}
				for _, v := range vs {
					key := strings.TrimSpace(v)
					if referenceEntryKeys[strings.ToLower(key)] || slices.ContainsFunc(referenceInputs(op), func(in string) bool { return strings.EqualFold(in, key) }) {
						t.Fatalf("%s: accepted %q=%q, a dictionary entry keyed by an input", op.Rel, name, v)
					}
				}
			}
			if q.Encode() != raw {
				t.Fatalf("%s: unchanged query re-encodes as %q", op.Rel, q.Encode())
			}
			for _, p := range op.Properties {
				got, ok := q.Get(p.Name)
				want := values[p.Name]
				if len(want) > 1 || ok != (len(want) == 1 && strings.TrimSpace(want[0]) != "") || ok && got != want[0] {
					t.Fatalf("%s: %s = %q, %v; url.ParseQuery reads %q", op.Rel, p.Name, got, ok, want)
				}
				if ok {
					q.Set(p.Name, v)
					values[p.Name] = []string{v}
				}
			}
			out := q.Encode()
			back, perr := referenceQuery(out)
			if perr != nil || !reflect.DeepEqual(back, values) {
				t.Fatalf("%s: re-encoded %q reads %v, %v; want %v", op.Rel, out, back, perr, values)
			}
		}
	})
}

// referenceIndexesOnly matches a query name that is no name to .NET
// model binding: empty, or brackets only, empty or holding an index.
var referenceIndexesOnly = regexp.MustCompile(`^(\[[^\]]*\])*$`)

// referenceEntryKeys are the dictionary keys of an input the query may
// not give as x[0].key: the table's destinations and operationId.
var referenceEntryKeys = map[string]bool{"phonenumber": true, "to": true, "target": true, "number": true, "delegator": true, "contact": true, "operationid": true}

// referenceBindingParts lists the names a .NET model binder might read
// in a decoded query name: the name itself and, for an ASCII name, the
// name with controls and spaces dropped and every part of that between
// '.', '[' and ']' ("x.to", "to[]", "model[to]" hold "to").
func referenceBindingParts(name string) []string {
	parts := []string{name}
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			return parts
		}
	}
	kept := strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return -1
		}
		return r
	}, name)
	return append(parts, strings.FieldsFunc(kept, func(r rune) bool { return r == '.' || r == '[' || r == ']' })...)
}

// referenceQuery reads a raw query as url.ParseQuery does, pair by pair,
// without its cap on the number of pairs (10000, GODEBUG
// urlmaxqueryparams): a bound on work, not a rule of syntax. The edge
// reads every pair whatever their number, so a query of many pairs is
// one it reads whole.
func referenceQuery(raw string) (url.Values, error) {
	const chunk = 1000 // pairs per url.ParseQuery, well under its cap
	values := url.Values{}
	pairs := strings.Split(raw, "&")
	for len(pairs) > 0 {
		n := min(chunk, len(pairs))
		part, err := url.ParseQuery(strings.Join(pairs[:n], "&"))
		if err != nil {
			return nil, err
		}
		for k, vs := range part {
			values[k] = append(values[k], vs...)
		}
		pairs = pairs[n:]
	}
	return values, nil
}

// TestReferenceQuery: the oracle of FuzzParseQuery reads as
// url.ParseQuery does, in any number of pairs, a malformed one too.
func TestReferenceQuery(t *testing.T) {
	many := "to=1" + strings.Repeat("&x=2", 10000)
	for _, raw := range []string{"", "to=a&to=b&&x", "a=%zz", "to=1;x", many, many + "&to=3", many + "&to;=1", many + "&%zz"} {
		got, err := referenceQuery(raw)
		want, werr := url.ParseQuery(raw)
		if raw == many || raw == many+"&to=3" {
			// Past url.ParseQuery's cap: it refuses, the reference reads.
			if werr == nil || err != nil || len(got["x"]) != 10000 || len(got["to"]) != strings.Count(raw, "to=") {
				t.Errorf("%d pairs: %v, %d x and %q; url.ParseQuery: %v", strings.Count(raw, "&")+1, err, len(got["x"]), got["to"], werr)
			}
			continue
		}
		if (err == nil) != (werr == nil) || err == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%.40q: %v, %v; url.ParseQuery: %v, %v", raw, got, err, want, werr)
		}
	}
}

// FuzzMatch holds the matcher to its promises on any path: no panic, a
// near miss is never an operation, and every suffix of the table is its
// operation behind any canonical prefix, but for one with a segment that
// spells a leaf's name, behind which it is a near miss.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{"/", "/ucwa/v1/applications/1/communication/startPhoneAudio", "/a\\b/startPhoneAudio.aspx", "/x/startPhoneAudio\u200b",
		"/ſtartPhoneAudio/extra", "/batch/x/y", "/startPhoneAudio/..;/x", "/communication/startPhoneAudio%23x", "/communication#/x", "/a%252Fb%u0073", "STARTP~1", "/communication/startPhoneAudio::$DATA", "/communication\t", "/a/./../b;c=d/e. .", "\xff\xfe/\x00", "/ucwa/v1/applications/1?x", "/me/(S(x))/phones/work"} {
		f.Add("POST", s)
	}
	f.Add("GET", "/events")
	f.Add("PUT", "/communication")
	f.Add("DELETE", "/me/phones/work")
	f.Add("PUT", "/me/(S(x))/phones/work")
	f.Add("PUT", "/communication//..")
	f.Add("POST", "/ucwa/v1/applications/(S(x))/1/communication/startPhoneAudio")
	f.Add("PUT", "/me/(S(x)). \\phones/work")
	f.Add("POST", "/ucwa/v1/applications/1/communication/conversations/137/audioVideo/transfer")
	f.Add("POST", "/conversations/137/audioVideo.aspx/x")
	f.Add("DELETE", "/conversations/137/participants/196")
	f.Add("POST", "/ucwa/v1/applications/1/communication/invitations/507/forward")
	f.Add("POST", "/audioVideoInvitations/507/acceptWithAnswer")
	f.Add("POST", "/conversations/137/transfer")
	f.Add("PUT", "/conversations/137/messaging/x")
	m := mustMatcher(f)
	hasSuffixFoldAny := func(p string, suffixes []string) bool {
		for _, s := range suffixes {
			if hasSegmentSuffixFold(CanonicalPath(p), s) {
				return true
			}
		}
		return false
	}
	f.Fuzz(func(t *testing.T, method, p string) {
		if got, want := hasOtherReadings(p), !utf8.ValidString(p) || strings.ContainsAny(p, "?#%)") || strings.Contains(p, ".") && strings.ContainsAny(p, "\\") || strings.Contains(p, ".") && strings.Contains(p, "//"); got != want {
			t.Fatalf("hasOtherReadings(%q) = %v, want %v", p, got, want)
		}
		got := m.Match(method, p)
		if got.Operation != nil && got.NearMiss {
			t.Fatalf("Match(%q, %q) is both %s and a near miss", method, p, got.Operation.Rel)
		}
		if got.NearMiss && (method == "GET" || method == "HEAD") {
			t.Fatalf("a read is a near miss: %q", p)
		}
		// With its dot segments resolved as RFC 3986 resolves them, also
		// against empty segments, it is what it is as it came, or a near
		// miss.
		if method != "GET" && method != "HEAD" && !got.NearMiss {
			resolved := (&url.URL{Path: "/"}).ResolveReference(&url.URL{Path: strings.ReplaceAll(p, "\\", "/")}).Path
			if other := m.Match(method, resolved); other.NearMiss || other.Operation != got.Operation || otherApplication(got, other) {
				t.Fatalf("Match(%s, %q) = %+v, but resolved as RFC 3986 does, %q, it is %+v", method, p, got, resolved, other)
			}
		}
		// Without the segment of cookieless values that ASP.NET takes
		// out, it is what it is as it came, or a near miss.
		for _, q := range []string{p, referenceIISSegments(p)} {
			if stripped, ok := referenceWithoutCookieless(q); ok && method != "GET" && method != "HEAD" && !got.NearMiss {
				if other := m.Match(method, stripped); other.NearMiss || other.Operation != got.Operation || otherApplication(got, other) {
					t.Fatalf("Match(%s, %q) = %+v, but without its cookieless values, %q, it is %+v", method, p, got, stripped, other)
				}
			}
		}
		// An operation comes with the path's canonical form, which its
		// application id and resource are read from.
		if want := ""; got.Operation != nil && got.Path != CanonicalPath(p) || got.Operation == nil && got.Path != want {
			t.Fatalf("Match(%q, %q).Path = %q, want CanonicalPath's %q for an operation, %q otherwise", method, p, got.Path, CanonicalPath(p), want)
		}
		if got.Operation != nil && CanonicalApplicationID(got.Path) != ApplicationID(p) {
			t.Fatalf("CanonicalApplicationID(%q) = %q, ApplicationID(%q) = %q", got.Path, CanonicalApplicationID(got.Path), p, ApplicationID(p))
		}
		// A plain path is matched as url.ParseRequestURI reads it.
		if isPlainPath(p) {
			if u, err := url.ParseRequestURI(p); err != nil || u.Path != p {
				t.Fatalf("%q is taken as a plain path; url.ParseRequestURI gives %+v, %v", p, u, err)
			}
		}
		// The one-pass check of a canonical path agrees with the full
		// canonicalization.
		if rooted := "/" + strings.TrimPrefix(p, "/"); isCanonicalASCII(rooted) {
			if clean := path.Clean(rooted); clean != rooted || strings.ContainsAny(rooted, "\\;. ") || !isASCII(rooted) {
				t.Fatalf("%q is taken as canonical; path.Clean gives %q", rooted, clean)
			}
		}
		// A few of the table's suffixes, chosen by the input, behind it.
		prefix := strings.TrimSuffix(CanonicalPath(p), "/")
		k := len(p)
		// nearName's printable ASCII shortcut agrees with folding.
		if seg := lastSegment(CanonicalPath(p)); printableASCII(seg) && !plainName(seg) && nearName(seg, m.names) != nearFolded(seg, m.names) {
			t.Fatalf("nearName(%q) = %v, folded %v", seg, nearName(seg, m.names), nearFolded(seg, m.names))
		}
		// A leaf's name with segments after it (ASP.NET's PathInfo) is a
		// near miss for any method but a read, also when they spell an
		// item whose row passes the method (a phone's DELETE).
		if method != "GET" && method != "HEAD" {
			leaf := m.leaves[k%len(m.leaves)]
			for _, rest := range []string{"/x/y", "/me/phones/x"} {
				if got := m.Match(method, prefix+"/"+leaf+rest); !got.NearMiss && (rest == "/x/y" || got.Operation == nil) {
					t.Fatalf("Match(%s, %q) = %+v, want a near miss", method, prefix+"/"+leaf+rest, got)
				}
			}
		}
		// Below a PUT row's resource, a write to what the reference has
		// as no resource taking it is a near miss (or an operation of the
		// table, which matches first); one to what it has so, behind a
		// clean prefix, is none.
		if !isRead(method) {
			leaf := m.parentNames[k%len(m.parentNames)]
			if tail := CanonicalPath(p)[1:]; tail != "" && !referenceTakesBelow(leaf, method, tail) {
				if got := m.Match(method, prefix+"/"+leaf+"/"+tail); !got.NearMiss && got.Operation == nil {
					t.Fatalf("Match(%s, %q) = %+v, want a near miss", method, prefix+"/"+leaf+"/"+tail, got)
				}
			}
			below := referenceBelowPUT[leaf]
			entry, writes, _ := strings.Cut(below[k%len(below)], " ")
			item := strings.NewReplacer("*", "x", "{}", "x").Replace(entry)
			target := "/ucwa/v1/applications/1/" + referenceAt[leaf] + leaf + "/" + item
			if got := m.Match(method, target); got.NearMiss != !referenceTakesBelow(leaf, method, item) && got.Operation == nil {
				t.Fatalf("Match(%s, %q) = %+v; the reference has %q taking %q", method, target, got, entry, writes)
			}
		}
		for i := range m.ops {
			op := &m.ops[i]
			for _, s := range op.Paths {
				if k++; k%8 != 0 {
					continue
				}
				got := m.Match(op.Method, prefix+s)
				// A leaf's name before it (ASP.NET's PathInfo: the pool
				// may run the leaf) makes a near miss of it.
				if leafSegment(prefix, m.leaves) {
					if !got.NearMiss {
						t.Fatalf("Match(%s, %q) = %+v, want a near miss: a leaf's name stands before %s", op.Method, prefix+s, got, s)
					}
					continue
				}
				// So does one before a "..;", which is no dot segment to
				// IIS.
				if leafy := prefix + "/" + m.leaves[k%len(m.leaves)] + "/..;" + s; !m.Match(op.Method, leafy).NearMiss {
					t.Fatalf("Match(%s, %q) = %+v, want a near miss: a leaf's name stands before %s", op.Method, leafy, m.Match(op.Method, leafy), s)
				}
				// A prefix that a pool may read otherwise (cut at '?' or
				// '#', decoded again) may make a near miss of it.
				if got.Operation == nil && !(got.NearMiss && hasOtherReadings(prefix)) || got.NearMiss && !hasOtherReadings(prefix) ||
					got.Operation != nil && got.Operation.Method != op.Method {
					t.Fatalf("Match(%s, %q) = %+v, want %s", op.Method, prefix+s, got, op.Rel)
				}
				// An operation that the prefix's '?' or '#' cuts short to
				// something else (no operation among them: to a pool
				// reading Request.Url, the rest is a query of its own) is
				// a near miss.
				if i := strings.IndexAny(prefix, "?#"); i >= 0 && got.Operation != nil {
					if cut := m.Match(op.Method, prefix[:i]); cut.Operation != got.Operation {
						t.Fatalf("Match(%s, %q) = %s, but cut at %q it is %+v", op.Method, prefix+s, got.Operation.Rel, prefix[i], cut)
					}
				}
				// Cut at '#' or '?' (as ASP.NET 4.5's Request.Url reads a
				// decoded path), whatever follows, it is the operation
				// or a near miss (when nothing before cuts it first).
				for _, cut := range []string{"#", "?"} {
					if strings.ContainsAny(prefix, "?#") {
						break
					}
					got := m.Match(op.Method, prefix+s+cut+p)
					if !got.NearMiss && (got.Operation == nil || got.Operation.Method != op.Method || !hasSuffixFoldAny(prefix+s, got.Operation.Paths)) {
						t.Fatalf("Match(%s, %q) = %+v, want %s or a near miss", op.Method, prefix+s+cut+p, got, op.Rel)
					}
				}
			}
		}
	})
}

// referenceCookieless is a segment's cookieless values as ASP.NET's
// CookielessHelper.IsValidHeader reads them.
var referenceCookieless = regexp.MustCompile(`^(?:[A-Z]\([^/)]*\))+$`)

// referenceWithoutCookieless is p as ASP.NET's
// CookielessHelper.RemoveCookielessValuesFromPath leaves it: without the
// segment between the last "/(" and the last ")/" after it, when that
// segment holds cookieless values.
func referenceWithoutCookieless(p string) (string, bool) {
	end := strings.LastIndex(p, ")/")
	if end <= 2 {
		return "", false
	}
	start := strings.LastIndex(p[:end], "/(")
	if start < 0 || !referenceCookieless.MatchString(p[start+2:end]) {
		return "", false
	}
	return p[:start] + p[end+1:], true
}

// otherApplication reports whether two matches of one operation name
// other applications, which idempotency would key apart.
func otherApplication(a, b Match) bool {
	return a.Operation != nil && ApplicationID(a.Path) != ApplicationID(b.Path)
}

// referenceIISSegments is p with each backslash a slash and each segment
// but "." and ".." without its trailing dots and spaces, as the edge
// takes IIS to read it.
func referenceIISSegments(p string) string {
	segs := strings.Split(strings.ReplaceAll(p, "\\", "/"), "/")
	for i, seg := range segs {
		if seg != "." && seg != ".." {
			for strings.HasSuffix(seg, ".") || strings.HasSuffix(seg, " ") {
				seg = seg[:len(seg)-1]
			}
		}
		segs[i] = seg
	}
	return strings.Join(segs, "/")
}

// referenceBelowPUT lists, by the name of a resource with resources below
// it (a PUT row's, or the phones collection's), the resources below it
// as the reference has them: a path (lower case, "*" for any item of a
// collection and what lies below it, "{}" for any item that is a
// resource with its own) and the writes it takes ("*": any).
var referenceBelowPUT = map[string][]string{
	"communication": slices.Concat([]string{
		"conversations", "conversations/{} DELETE", "conversations/{}/addparticipant POST",
		"conversations/{}/audiovideo",
		"conversations/{}/audiovideo/addaudio POST", "conversations/{}/audiovideo/addaudiovideo POST",
		"conversations/{}/audiovideo/addvideo POST", "conversations/{}/audiovideo/audiovideopolicies",
		"conversations/{}/audiovideo/audiovideosession", "conversations/{}/audiovideo/audiovideosession/publishcallqualityfeedback POST",
		"conversations/{}/audiovideo/audiovideosession/renegotiations POST", "conversations/{}/audiovideo/audiovideosession/renegotiations/*",
		"conversations/{}/audiovideo/audiovideosession/resumeaudio POST", "conversations/{}/audiovideo/audiovideosession/resumeaudiovideo POST",
		"conversations/{}/audiovideo/conversation", "conversations/{}/audiovideo/escalateaudio POST",
		"conversations/{}/audiovideo/escalateaudiovideo POST", "conversations/{}/audiovideo/replacewithphoneaudio POST",
		"conversations/{}/audiovideo/reportmediadiagnostics POST", "conversations/{}/audiovideo/stopaudio POST",
		"conversations/{}/audiovideo/stopaudiovideo POST", "conversations/{}/audiovideo/stopvideo POST",
		"conversations/{}/audiovideo/videofreeze POST", "conversations/{}/audiovideo/videolockedonparticipant",
		"conversations/{}/phoneaudio", "conversations/{}/phoneaudio/addphoneaudio POST", "conversations/{}/phoneaudio/holdphoneaudio POST",
		"conversations/{}/phoneaudio/resumephoneaudio POST", "conversations/{}/phoneaudio/stopphoneaudio POST",
		"conversations/{}/participants", "conversations/{}/participants/*",
		"conversationlogs", "conversationlogs/{} DELETE",
		"conversationlogs/{}/continueaudio POST", "conversationlogs/{}/continueaudiovideo POST",
		"conversationlogs/{}/continuemessaging POST", "conversationlogs/{}/continuephoneaudio POST",
		"conversationlogs/{}/continuevideo POST", "conversationlogs/{}/markasread POST",
		"conversationlogs/{}/conversationlogrecipient", "conversationlogs/{}/conversationlogtranscripts",
		"invitations", "invitations/{}",
		"audiovideoinvitations POST", "audiovideoinvitations/{}", "messaginginvitations POST", "messaginginvitations/{}",
		"onlinemeetinginvitations POST", "onlinemeetinginvitations/{}", "participantinvitations POST", "participantinvitations/{}",
		"phoneaudioinvitations POST", "phoneaudioinvitations/{}",
		"mediapolicies", "mediarelayaccesstoken", "misseditems",
		"phoneaudio", "phoneaudio/addphoneaudio POST", "phoneaudio/holdphoneaudio POST",
		"phoneaudio/resumephoneaudio POST", "phoneaudio/stopphoneaudio POST", "addvideo POST",
		"joinonlinemeeting POST", "replaymessage POST", "startmessaging POST", "startonlinemeeting POST", "makemeavailable POST",
		"startaudio POST", "startaudioonbehalfofdelegator POST", "startaudiovideo POST", "startaudiovideoonbehalfofdelegator POST",
		"startemergencycall POST", "startphoneaudio POST", "startphoneaudioonbehalfofdelegator POST", "startvideo POST",
	},
		// A conversation's links that cannot bring a phone into the
		// call: any write to them and below them.
		referenceBelow("conversations/{}/", "applicationsharing *", "applicationsharing/*", "attendees *", "attendees/*",
			"datacollaboration *", "datacollaboration/*", "disableaudiencemessaging *", "disableaudiencemessaging/*",
			"disableaudiencemutelock *", "disableaudiencemutelock/*", "enableaudiencemessaging *", "enableaudiencemessaging/*",
			"enableaudiencemutelock *", "enableaudiencemutelock/*", "leaders *", "leaders/*", "lobby *", "lobby/*",
			"localparticipant *", "localparticipant/*", "messaging *", "messaging/*", "onlinemeeting *", "onlinemeeting/*",
			"useracknowledged *", "useracknowledged/*"),
		// Each kind of invitation's links, and all of them below an
		// item of invitations.
		referenceBelow("audiovideoinvitations/{}/", referenceAudioVideoInvitation...),
		referenceBelow("messaginginvitations/{}/", referenceMessagingInvitation...),
		referenceBelow("onlinemeetinginvitations/{}/", referenceOnlineMeetingInvitation...),
		referenceBelow("participantinvitations/{}/", referenceParticipantInvitation...),
		referenceBelow("phoneaudioinvitations/{}/", referencePhoneAudioInvitation...),
		referenceBelow("invitations/{}/", slices.Concat(referenceAudioVideoInvitation, referenceMessagingInvitation,
			referenceOnlineMeetingInvitation, referenceParticipantInvitation, referencePhoneAudioInvitation)...),
	),
	"callforwardingsettings": {
		"turnoffcallforwarding POST", "immediateforwardsettings",
		"immediateforwardsettings/immediateforwardtocontact POST", "immediateforwardsettings/immediateforwardtodelegates POST",
		"immediateforwardsettings/immediateforwardtovoicemail POST",
		"simultaneousringsettings PUT", "simultaneousringsettings/simultaneousringtocontact POST",
		"simultaneousringsettings/simultaneousringtodelegates POST", "simultaneousringsettings/simultaneousringtoteam POST",
		"unansweredcallsettings PUT", "unansweredcallsettings/resetunansweredcallsettings POST",
		"unansweredcallsettings/unansweredcalltocontact POST", "unansweredcallsettings/unansweredcalltovoicemail POST",
	},
	"phones":                   {"{} PUT DELETE", "{}/changenumber POST", "{}/changevisibility POST"},
	"simultaneousringsettings": {"simultaneousringtocontact POST", "simultaneousringtodelegates POST", "simultaneousringtoteam POST"},
	"unansweredcallsettings":   {"resetunansweredcallsettings POST", "unansweredcalltocontact POST", "unansweredcalltovoicemail POST"},
}

// The links of each kind of invitation, as its reference page lists
// them, with the writes their own pages give (conversation: read only
// there, as below audioVideo).
var (
	referenceAudioVideoInvitation = []string{
		"acceptwithanswer POST", "acceptwithphoneaudio POST", "cancel POST", "decline POST", "reportmediadiagnostics POST",
		"sendprovisionalanswer POST", "acceptedbycontact", "acceptedbyparticipant", "audiovideo", "conversation", "delegator",
		"derivedaudiovideo", "derivedconversation", "forwardedby", "from", "onbehalfof", "replacesaudiovideo", "to", "transferredby",
	}
	referenceMessagingInvitation = []string{
		"accept POST", "cancel POST", "decline POST", "acceptedbycontact", "acceptedbyparticipant", "conversation", "derivedmessaging",
		"from", "messaging", "onbehalfof", "to",
	}
	referenceOnlineMeetingInvitation = []string{"accept POST", "cancel POST", "decline POST", "acceptedbycontact", "conversation", "from", "onbehalfof", "to"}
	referenceParticipantInvitation   = []string{"cancel POST", "acceptedbyparticipant", "conversation", "from", "participant", "to"}
	referencePhoneAudioInvitation    = []string{
		"accept POST", "cancel POST", "decline POST", "acceptedbycontact", "acceptedbyparticipant", "conversation", "delegator",
		"derivedconversation", "derivedphoneaudio", "forwardedby", "from", "onbehalfof", "phoneaudio", "replacesphoneaudio", "to",
		"transferredby",
	}
)

// referenceAt is where the reference has a resource of referenceBelowPUT
// below the application, when not directly: the phones collection is
// me's (anywhere else its items take no write but DELETE).
var referenceAt = map[string]string{"phones": "me/"}

// referenceBelow is entries of referenceBelowPUT with their paths below
// prefix.
func referenceBelow(prefix string, entries ...string) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = prefix + e
	}
	return out
}

// referenceTakesBelow reports whether the reference has tail, a clean
// path below the PUT row's resource leaf (without a leading "/"), as a
// resource taking method (in any letter case) or below an item of a
// collection.
func referenceTakesBelow(leaf, method, tail string) bool {
	lower := []byte(tail)
	for i, c := range lower {
		if 'A' <= c && c <= 'Z' {
			lower[i] = c + 'a' - 'A'
		}
	}
	tail = string(lower)
	for _, entry := range referenceBelowPUT[leaf] {
		path, writes, _ := strings.Cut(entry, " ")
		if stem, ok := strings.CutSuffix(path, "/*"); ok {
			if len(strings.Split(tail, "/")) > len(strings.Split(stem, "/")) && segmentsPrefix(tail, stem) {
				return true
			}
			continue
		}
		if segmentsMatch(tail, path) && (writes == "*" || slices.ContainsFunc(strings.Fields(writes), func(w string) bool { return strings.EqualFold(w, method) })) {
			return true
		}
	}
	return false
}

// segmentsMatch reports whether path is pattern, whose segment "{}"
// stands for any one segment.
func segmentsMatch(path, pattern string) bool {
	got, want := strings.Split(path, "/"), strings.Split(pattern, "/")
	return slices.EqualFunc(got, want, func(g, w string) bool { return g == w || w == "{}" && g != "" })
}

// segmentsPrefix reports whether path starts with pattern's segments
// (see segmentsMatch).
func segmentsPrefix(path, pattern string) bool {
	got, want := strings.Split(path, "/"), strings.Split(pattern, "/")
	return len(got) >= len(want) && segmentsMatch(strings.Join(got[:len(want)], "/"), pattern)
}

// TestReferenceBelowPUT: every PUT row of the table has its resources
// below it in the reference list, and the matcher's names are the list's.
func TestReferenceBelowPUT(t *testing.T) {
	m := mustMatcher(t)
	if len(m.parentNames) != len(referenceBelowPUT) {
		t.Fatalf("the matcher has %v below PUT resources, the reference %d", m.parentNames, len(referenceBelowPUT))
	}
	for _, name := range m.parentNames {
		if len(referenceBelowPUT[name]) == 0 {
			t.Errorf("no reference list below %s", name)
		}
	}
}

// FuzzIntake runs any request through Intake for any operation: it never
// panics, answers only the errors a request can earn, and what it
// forwards it takes again unchanged.
func FuzzIntake(f *testing.F) {
	f.Add(uint8(0), "POST", "application/json", "to=sip:a@b.c", readSeed(f, "seed.json"))
	f.Add(uint8(0), "POST", "application/xml", "", readSeed(f, "seed.xml"))
	f.Add(uint8(17), "POST", "application/sdp", "operationId=1&sessionContext=2", []byte("v=0"))
	f.Add(uint8(21), "PUT", "application/xml", "", []byte(`<resource><property name="phoneNumber">4255551234</property></resource>`))
	f.Add(uint8(25), "POST", "", "target=%2B1+425+555+1234&ringDelay=5", []byte(nil))
	f.Add(uint8(5), "POST", "application/json", "", []byte(`{}`))
	f.Add(uint8(0), "POST", "application/json", "", []byte(`{"to":"sip:a@contoso.com","phoneNumber ":"+1 900 555 1234"}`))
	f.Add(uint8(0), "POST", "application/xml", "", []byte(`<input><property name="to">sip:a@contoso.com</property><property name="phoneNumber&#32;">+1 900 555 1234</property></input>`))
	f.Add(uint8(0), "POST", "application/json", "", []byte(`{"to":"sip:19005551234;user=phone@gw.contoso.com"}`))
	f.Add(uint8(0), "POST", "application/json", "", []byte(`{"to":"sip:a@contoso.com","_links":{"phoneNumber":{"href":"+1 900 555 1234"}}}`))
	f.Add(uint8(26), "PUT", "application/json", "target=Contact", []byte(`{"target":"tel:+19005551234"}`))
	f.Add(uint8(26), "PUT", "application/xml", "number=1", []byte(`<resource><property name="target">Contact</property></resource>`))
	c := mustCleaner(f, "US", TelURI)
	f.Fuzz(func(t *testing.T, which uint8, method, contentType, rawQuery string, body []byte) {
		op := &testOps[int(which)%len(testOps)]
		header := http.Header{"If-Match": {"1"}}
		if contentType != "" {
			header.Set("Content-Type", contentType)
		}
		cl, err := c.Intake(op, Incoming{Method: method, Header: header, RawQuery: rawQuery, Body: body})
		if err != nil {
			switch err.Status {
			case 400, 405, 413, 415, 428:
			case 500:
				if op.Body != BatchBody {
					t.Fatalf("%s: %v", op.Rel, err)
				}
			default:
				t.Fatalf("%s: %v", op.Rel, err)
			}
			if err.Message == "" {
				t.Fatalf("%s: an error without a message", op.Rel)
			}
			// What a refusal names is a property of the operation (or
			// _links, for a body name folding onto it), never the name as
			// the request wrote it.
			for _, p := range err.Parameters {
				// A destination named where the edge reads nothing (an
				// unknown property's value, a link it does not take) is
				// refused by its name, whatever the operation takes.
				if _, named := referenceDestinations[strings.ToLower(p.Name)]; named && (strings.Contains(err.Message, "inside an embedded resource") ||
					strings.Contains(p.Reason, "where the edge does not judge it")) {
					continue
				}
				if isStray(op, p.Name) && (strings.HasPrefix(p.Reason, strayWhat+op.Rel+" ") || strings.Contains(p.Reason, "spelled otherwise")) {
					continue
				}
				if _, ok := op.Property(p.Name); !ok && p.Name != linksName && op.Body != BatchBody {
					t.Fatalf("%s: a refusal names %q", op.Rel, p.Name)
				}
			}
			return
		}
		again, err := c.Intake(op, Incoming{Method: method, Header: header, RawQuery: cl.RawQuery(), Body: cl.Body()})
		if err != nil {
			t.Fatalf("%s: the forwarded request is refused: %v %v\n%q ? %q", op.Rel, err, err.Parameters, cl.Body(), cl.RawQuery())
		}
		if again.BodyChanged() || again.RawQuery() != cl.RawQuery() || !bytes.Equal(again.Body(), cl.Body()) {
			t.Fatalf("%s: Intake is not idempotent:\n%q ? %q\n%q ? %q", op.Rel, cl.Body(), cl.RawQuery(), again.Body(), again.RawQuery())
		}
	})
}

// FuzzTargetPath holds TargetPath, whose fast path skips the URL parser
// for plain paths, to url.ParseRequestURI, which net/http's server reads
// a request target with: the same path, and a refusal exactly where it
// refuses.
func FuzzTargetPath(f *testing.F) {
	for _, s := range []string{"/ucwa/v1/applications/1/communication/startPhoneAudio", "/a%2Fb?x=1", "/a b", "/a#b", "/a\x7f", "/a\xff",
		"http://h/a%41", "*", "", "a/b", "//h/x", "/a;b=c", "/%zz", "/a\tb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		got, ok := TargetPath(target)
		u, err := url.ParseRequestURI(target)
		if ok != (err == nil) || ok && got != u.Path {
			t.Fatalf("TargetPath(%q) = %q, %v; url.ParseRequestURI: %+v, %v", target, got, ok, u, err)
		}
	})
}

// leafSegment reports whether a segment of a canonical path spells one
// of leaves, with or without junk added (see nearName).
func leafSegment(p string, leaves []string) bool {
	for _, seg := range strings.Split(p, "/") {
		if nearName(seg, leaves) {
			return true
		}
	}
	return false
}
