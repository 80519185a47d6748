package ucwa

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// values is what a decoded body holds: the present properties and their
// values, and the properties whose value has the wrong type.
type values struct {
	fields  map[string]string
	typeErr map[string]string
}

// decodeCase is one body and what decoding must make of it: values on
// success, or a DeserializationFailure whose message holds every string
// in errHas.
type decodeCase struct {
	name   string
	body   string
	want   values
	errHas []string
	// encoded is the body Encode returns without a change, when it is
	// not the body itself (an XML value that markup splits goes on as
	// one run of its text).
	encoded string
}

func readSeed(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkDecoded compares what r holds with want.
func checkDecoded(t *testing.T, name string, r *Request, want values) {
	t.Helper()
	for _, p := range r.op.Properties {
		f := p.Name
		v, ok := r.Get(f)
		wv, wok := want.fields[f]
		if ok != wok || v != wv {
			t.Errorf("%s: %v = %q, %v; want %q, %v", name, f, v, ok, wv, wok)
		}
		if problem(r, f) != want.typeErr[f] {
			t.Errorf("%s: %v type error %q, want %q", name, f, problem(r, f), want.typeErr[f])
		}
	}
}

func runDecodeCases(t *testing.T, f Format, cases []decodeCase) {
	t.Helper()
	for _, tt := range cases {
		body := []byte(tt.body)
		r, err := decode(f, body)
		if tt.errHas != nil {
			if err == nil {
				t.Errorf("%s: accepted, want an error holding %q", tt.name, tt.errHas)
				continue
			}
			if err.Status != 400 || err.Subcode != SubcodeDeserializationFailure || err.Parameters != nil {
				t.Errorf("%s: error %+v, want 400 DeserializationFailure", tt.name, err)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Message, s) {
					t.Errorf("%s: message %q does not say %q", tt.name, err.Message, s)
				}
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if r.Format != f {
			t.Errorf("%s: format %v", tt.name, r.Format)
		}
		checkDecoded(t, tt.name, r, tt.want)
		wantOut := bytes.TrimPrefix(body, utf8BOM)
		if tt.encoded != "" {
			wantOut = []byte(tt.encoded)
		}
		if out := r.Encode(); !bytes.Equal(out, wantOut) {
			t.Errorf("%s: unchanged request re-encodes as\n%s", tt.name, out)
		}
	}
}

func fv(kv ...any) values {
	v := values{fields: map[string]string{}, typeErr: map[string]string{}}
	for i := 0; i < len(kv); i += 2 {
		v.fields[kv[i].(string)] = kv[i+1].(string)
	}
	return v
}

func (v values) withTypeErr(f string, reason string) values {
	v.typeErr[f] = reason
	return v
}

const (
	dotnetGUID1 = "0f8fad5b-d9cb-469f-a165-70867728950e"
	dotnetGUID2 = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
)

func TestDecodeJSON(t *testing.T) {
	seed := string(readSeed(t, "seed.json"))
	runDecodeCases(t, JSON, []decodeCase{
		{name: "seed sample, repaired", body: seed, want: fv(
			OperationID, "74cb7404e0a247d5a2d4eb0376a47dbf", PhoneNumber, "tel : +14255551234",
			Importance, "Urgent", Subject, "SkypeforBusiness", ThreadID, "292e0aaef36c426a97757f43dda19d06",
			To, "sip : john@contoso.com", CustomContent, "data : text/plain;base64,somebase64encodedmessage")},
		{name: "JavaScript sample", body: `{"to":"sip:john@contoso.com","phoneNumber":"4255551234","operationId":"1"}`,
			want: fv(To, "sip:john@contoso.com", PhoneNumber, "4255551234", OperationID, "1")},
		{name: ".NET SDK model", body: `{"direction":null,"state":null,"joinAudioMuted":false,"privateLine":false,` +
			`"operationId":"` + dotnetGUID1 + `","threadId":"` + dotnetGUID2 + `","to":"tel:+14255551234","phoneNumber":"+14255550000","importance":"Normal","subject":null}`,
			want: fv(OperationID, dotnetGUID1, ThreadID, dotnetGUID2, To, "tel:+14255551234", PhoneNumber, "+14255550000", Importance, "Normal")},
		{name: "names in any letter case", body: `{"TO":"sip:a@b.c","PhoneNumber":"1","OPERATIONID":"o","Importance":"x","SUBJECT":"s","threadid":"t","_LINKS":{"CustomContent":{"HREF":"data:,x"}}}`,
			want: fv(To, "sip:a@b.c", PhoneNumber, "1", OperationID, "o", Importance, "x", Subject, "s", ThreadID, "t", CustomContent, "data:,x")},
		{name: "escaped name and value", body: `{"t\u006f":"sip:a\u0040b.c\n","subject":"\u00e9\ud83d\ude00"}`,
			want: fv(To, "sip:a@b.c\n", Subject, "é😀")},
		{name: "null is absent", body: `{"to":null,"phoneNumber":null,"importance":null,"subject":null,"operationId":null,"threadId":null,"_links":null}`, want: fv()},
		{name: "null link is absent", body: `{"_links":{"customContent":null}}`, want: fv()},
		{name: "null href is absent", body: `{"_links":{"customContent":{"href":null}}}`, want: fv()},
		{name: "blank is absent", body: `{"to":"","subject":"  ","phoneNumber":"\t"}`, want: fv()},
		{name: "empty object", body: `{}`, want: fv()},
		{name: "byte order mark", body: "\uFEFF{\"to\":\"sip:a@b.c\"}", want: fv(To, "sip:a@b.c")},
		{name: "byte order mark, then white space", body: "\uFEFF \n{}", want: fv()},
		{name: "byte order mark twice", body: "\uFEFF\uFEFF{}", errHas: []string{"malformed", "line 1, column 1"}},
		{name: "byte order mark not at the start", body: " \uFEFF{}", errHas: []string{"malformed", "line 1, column 2"}},
		{name: "white space everywhere", body: " \r\n\t{ \"to\" \n:\n \"x\" \t}\n\n ", want: fv(To, "x")},
		{name: "nested names are not properties", body: `{"to":"a","extra":{"to":"","a":[1,{"TO":" "},{"to":null}]},"list":["to","to"]}`, want: fv(To, "a")},
		{name: "other links kept", body: `{"_links":{"self":{"href":"/x"},"customContent":{"title":"t","href":"data:,a","x":[1]},"other":null}}`, want: fv(CustomContent, "data:,a")},
		{name: "customContent is a link, not a property: null is nothing", body: `{"customContent":null}`, want: fv()},
		{name: "wrong types", body: `{"to":123,"phoneNumber":true,"subject":{"a":1},"importance":["Urgent"],"threadId":1.5e3,"operationId":false}`,
			want: fv().withTypeErr(To, "must be a string").withTypeErr(PhoneNumber, "must be a string").withTypeErr(Subject, "must be a string").
				withTypeErr(Importance, "must be a string").withTypeErr(ThreadID, "must be a string").withTypeErr(OperationID, "must be a string")},
		{name: "href of the wrong type", body: `{"_links":{"customContent":{"href":5}}}`, want: fv().withTypeErr(CustomContent, "must be a string")},

		{name: "empty body", body: ``, errHas: []string{"malformed", "line 1, column 1", "end of input"}},
		{name: "only white space", body: "  \n", errHas: []string{"malformed", "line 2, column 1"}},
		{name: "array", body: `[{"to":"a"}]`, errHas: []string{"must be a JSON object"}},
		{name: "string", body: `"to"`, errHas: []string{"must be a JSON object"}},
		{name: "null body", body: `null`, errHas: []string{"must be a JSON object"}},
		{name: "links not an object", body: `{"_links":"data:,x"}`, errHas: []string{`"_links" must be a JSON object`}},
		{name: "link not an object", body: `{"_links":{"customContent":"data:,x"}}`, errHas: []string{`"_links.customContent" must be a JSON object`}},
		{name: "trailing comma", body: "{\"to\":\"a\",\n}", errHas: []string{"malformed", "line 2, column 1"}},
		{name: "missing comma", body: `{"to":"a" "subject":"b"}`, errHas: []string{"malformed", "line 1, column 11"}},
		{name: "missing colon", body: `{"to" "a"}`, errHas: []string{"malformed"}},
		{name: "single quotes", body: `{'to':'a'}`, errHas: []string{"malformed", "line 1, column 2"}},
		{name: "unterminated", body: "{\n\"to\":\"a\"", errHas: []string{"malformed", "line 2, column 9", "end of input"}},
		{name: "unterminated string", body: `{"to":"a`, errHas: []string{"malformed", "end of input"}},
		{name: "raw line break in a string (the seed as printed)", body: "{\"href\" : \"data : text/plain;base64,\n      somebase64\"}", errHas: []string{"malformed", "line 1, column 37"}},
		{name: "control character", body: "{\"to\":\"a\x01\"}", errHas: []string{"malformed"}},
		{name: "bad escape", body: `{"to":"\x"}`, errHas: []string{"malformed"}},
		{name: "bare word", body: `{"to":sip}`, errHas: []string{"malformed"}},
		{name: "second object", body: `{"to":"a"}{"to":"b"}`, errHas: []string{"data after its object", "line 1, column 11"}},
		{name: "trailing garbage", body: "{\"to\":\"a\"}\n x", errHas: []string{"data after its object"}},
		{name: "invalid UTF-8", body: "{\"subject\":\"\xff\"}", errHas: []string{"UTF-8"}},
		{name: "duplicate", body: "{\"to\":\"a\",\n\"to\":\"b\"}", errHas: []string{`"to" appears twice`, "line 2, column 1"}},
		{name: "duplicate in other letter case", body: `{"to":"a","To":"b"}`, errHas: []string{`"To" appears twice (also as "to")`, "line 1, column 11"}},
		{name: "duplicate unknown property", body: `{"x":1,"X":null}`, errHas: []string{`"X" appears twice`}},
		{name: "duplicate by escape", body: `{"to":"a","t\u006f":"b"}`, errHas: []string{`"to" appears twice`}},
		{name: "non-ASCII name (Kelvin sign, escaped)", body: `{"kind":"a","\u212aind":"b"}`, errHas: []string{"\"\u212aind\" has a character outside ASCII"}},
		{name: "non-ASCII unknown name", body: `{"é":1}`, errHas: []string{`"é" has a character outside ASCII`}},
		{name: "non-ASCII unknown name folding near a property", body: `{"subject":"a","ſubjects":"b"}`, errHas: []string{`"ſubjects" has a character outside ASCII`, "line 1, column 16"}},
		{name: "non-ASCII unknown link name", body: `{"_links":{"cuſtomContents":{"href":"data:,x"}}}`, errHas: []string{`"_links.cuſtomContents" has a character outside ASCII`}},
		{name: "non-ASCII name inside customContent", body: `{"_links":{"customContent":{"hreſ":"data:,x"}}}`, errHas: []string{`"_links.customContent.hreſ" has a character outside ASCII`}},
		{name: "duplicate _links", body: `{"_links":{},"_LINKS":{}}`, errHas: []string{`"_LINKS" appears twice`}},
		{name: "duplicate link, with position in the body", body: "{\n  \"to\": \"a\",\n  \"_links\": {\n    \"customContent\": {\"href\": \"data:,a\"},\n    \"CUSTOMCONTENT\": {\"href\": \"data:,b\"}\n  }\n}",
			errHas: []string{`"_links.CUSTOMCONTENT" appears twice (also as "_links.customContent")`, "line 5, column 5"}},
		{name: "duplicate href, with position in the body", body: "{\"_links\": {\"customContent\": {\n\"href\": \"data:,a\",\n\"Href\": \"data:,b\"}}}",
			errHas: []string{`"_links.customContent.Href" appears twice`, "line 3, column 1"}},
	})
}

func TestDecodeXML(t *testing.T) {
	seed := string(readSeed(t, "seed.xml"))
	const open = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">`
	runDecodeCases(t, XML, []decodeCase{
		{name: "seed sample", body: seed, want: fv(
			OperationID, "74cb7404e0a247d5a2d4eb0376a47dbf", PhoneNumber, "tel:+14255551234",
			Importance, "Urgent", Subject, "Skype for Business", ThreadID, "292e0aaef36c426a97757f43dda19d06",
			To, "sip:john@contoso.com")},
		{name: "names in any letter case", body: open + `<property name="TO">sip:a@b.c</property><property name="PhoneNumber">1</property><link rel="CUSTOMCONTENT" href="data:,x"/></input>`,
			want: fv(To, "sip:a@b.c", PhoneNumber, "1", CustomContent, "data:,x")},
		{name: "link with end tag and other attributes", body: open + `<link title="t" rel="customContent" href="data:,x"></link><link rel="self" href="/x"/></input>`,
			want: fv(CustomContent, "data:,x")},
		{name: "entities, character references and CDATA", body: open + `<property name="subject">a &amp; &lt;b&gt; &#233;<![CDATA[ <c> ]]></property></input>`,
			want: fv(Subject, "a & <b> é <c> "), encoded: open + `<property name="subject">a &amp; &lt;b&gt; é &lt;c&gt; </property></input>`},
		{name: "comment inside a property", body: open + `<property name="to">sip:a<!-- c -->@b.c</property></input>`, want: fv(To, "sip:a@b.c"),
			encoded: open + `<property name="to">sip:a@b.c</property></input>`},
		{name: "processing instruction inside a property", body: open + `<property name="to">sip:a@b<?x y?>.c</property></input>`, want: fv(To, "sip:a@b.c"),
			encoded: open + `<property name="to">sip:a@b.c</property></input>`},
		{name: "root without namespace", body: `<input><property name="to">x</property></input>`, want: fv(To, "x")},
		{name: "prefixed namespace", body: `<u:input xmlns:u="http://schemas.microsoft.com/rtc/2012/03/ucwa"><u:property name="to">x</u:property></u:input>`, want: fv(To, "x")},
		{name: ".NET SDK model", body: open + `<property name="direction"/><property name="joinAudioMuted">false</property><property name="privateLine">false</property>` +
			`<property name="operationId">` + dotnetGUID1 + `</property><property name="threadId">` + dotnetGUID2 + `</property><property name="to">tel:+14255551234</property></input>`,
			want: fv(OperationID, dotnetGUID1, ThreadID, dotnetGUID2, To, "tel:+14255551234")},
		{name: "propertyList items and other links kept", body: open + `<propertyList name="modalities"><item>a</item><x:y xmlns:x="urn:x"/></propertyList><link rel="self" href="/x"><z/></link><property name="to">yes</property></input>`,
			want: fv(To, "yes")},
		{name: "property named like the link's duplicate key", body: open + `<property name="link customContent">x</property><property name="LINK CUSTOMCONTENT ">y</property><link rel="customContent" href="data:,x"/></input>`,
			want: fv(CustomContent, "data:,x")},
		{name: "empty and blank are absent", body: open + `<property name="to"/><property name="subject">  </property><link rel="customContent"/></input>`, want: fv()},
		{name: "value keeps its white space", body: open + "<property name=\"to\">\n  sip:a@b.c\n</property></input>", want: fv(To, "\n  sip:a@b.c\n")},
		{name: "known propertyList", body: open + `<propertyList name="to"><item>a</item></propertyList></input>`, want: fv().withTypeErr(To, "must be a single value, not a propertyList")},
		{name: "comments, processing instructions and white space around the root", body: "<?xml version=\"1.0\"?>\n<!-- c -->\n" + open + "</input>\n<!-- d -->\n", want: fv()},

		{name: "byte order mark", body: "\uFEFF<?xml version=\"1.0\" encoding=\"utf-8\"?>" + open + `<property name="to">x</property></input>`, want: fv(To, "x")},
		{name: "byte order mark, no declaration", body: "\uFEFF" + open + `<property name="to">x</property></input>`, want: fv(To, "x")},
		{name: "empty body", body: ``, errHas: []string{"no <input> element"}},
		{name: "byte order mark twice", body: "\uFEFF\uFEFF" + open + `</input>`, errHas: []string{"text outside any property"}},
		{name: "DOCTYPE", body: "<?xml version=\"1.0\"?>\n<!DOCTYPE input [<!ENTITY x \"sip:a@b.c\">]>" + open + `<property name="to">&x;</property></input>`, errHas: []string{"DOCTYPE", "line 2, column 1"}},
		{name: "directive inside a property", body: open + "<property name=\"to\">sip:a@b.c<!DOCTYPE x></property></input>", errHas: []string{"DOCTYPE", "line 1, column 91"}},
		{name: "directive inside a propertyList", body: open + "<propertyList name=\"x\"><!DOCTYPE x><item>a</item></propertyList></input>", errHas: []string{"DOCTYPE"}},
		{name: "directive inside a link", body: open + "<link rel=\"customContent\" href=\"data:,x\">\n<!ENTITY e \"y\"></link></input>", errHas: []string{"directive", "line 2, column 1"}},
		{name: "directive between properties", body: open + "<!DOCTYPE x><property name=\"to\">x</property></input>", errHas: []string{"DOCTYPE", "line 1, column 62"}},
		{name: "undefined entity", body: open + `<property name="to">&x;</property></input>`, errHas: []string{"malformed on line 1"}},
		{name: "mismatched end tag", body: open + "\n<property name=\"to\">x</input>", errHas: []string{"malformed on line 2"}},
		{name: "unclosed", body: open + `<property name="to">x</property>`, errHas: []string{"malformed on line 1", "unexpected end of input"}},
		{name: "root is not input", body: `<output xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"/>`, errHas: []string{"root element must be <input", "not <output>"}},
		{name: "root in another namespace", body: `<input xmlns="urn:other"/>`, errHas: []string{"root element must be <input"}},
		{name: "text outside properties", body: open + "\nhello</input>", errHas: []string{"text outside any property", "line 1, column 62"}},
		{name: "second root", body: open + `</input><input/>`, errHas: []string{"second root element"}},
		{name: "no-break space between elements", body: open + "\u00a0<property name=\"to\">x</property></input>", errHas: []string{"text outside any property", "line 1, column 62"}},
		{name: "next line (U+0085) after the root", body: open + "</input>\n\u0085", errHas: []string{"text outside any property"}},
		{name: "ideographic space before the root", body: "\u3000" + open + "</input>", errHas: []string{"text outside any property", "line 1, column 1"}},
		{name: "trailing text", body: open + `</input>x`, errHas: []string{"text outside any property"}},
		{name: "property without a name", body: open + `<property>x</property></input>`, errHas: []string{"without a name attribute"}},
		{name: "property holding an element", body: open + `<property name="to"><b>x</b></property></input>`, errHas: []string{"holds an element"}},
		{name: "duplicate property", body: open + "<property name=\"to\">a</property>\n<property name=\"to\">b</property></input>", errHas: []string{`"to" appears twice`, "line 2, column 1"}},
		{name: "duplicate in other letter case", body: open + `<property name="to">a</property><property name="TO">b</property></input>`, errHas: []string{`"TO" appears twice (also as "to")`}},
		{name: "duplicate property and propertyList", body: open + `<property name="x">a</property><propertyList name="X"/></input>`, errHas: []string{`appears twice`}},
		{name: "duplicate link", body: open + `<link rel="customContent" href="data:,a"/><link rel="CustomContent" href="data:,b"/></input>`, errHas: []string{`The link "CustomContent" appears twice (also as "customContent")`}},
		{name: "duplicate attribute", body: open + `<property name="to" name="phoneNumber">a</property></input>`, errHas: []string{`attribute "name" twice`}},
		{name: "many attributes", body: open + `<link rel="self" href="/x"` + manyAttrs(100, -1) + `/><property name="to">x</property></input>`, want: fv(To, "x")},
		{name: "property with a value attribute", body: open + `<property name="to" value="tel:+19005551234"/></input>`, errHas: []string{`<property> has the attribute "value"`, "line 1, column 62"}},
		{name: "property with a value attribute and text", body: open + `<property value="tel:+19005551234" name="to">sip:a@b.c</property></input>`, errHas: []string{`attribute "value"`}},
		{name: "unknown property with a value attribute", body: open + `<property name="x" value="1"/></input>`, errHas: []string{`attribute "value"`}},
		{name: "property with a prefixed attribute", body: open + `<property xmlns:p="urn:p" name="to" p:value="1">a</property></input>`, errHas: []string{`attribute "value"`}},
		{name: "property inside a propertyList", body: open + `<property name="to">a</property><propertyList name="x"><property name="phoneNumber">tel:+19005551234</property></propertyList></input>`, errHas: []string{"A <property> inside an element whose content the edge does not read", "line 1, column 117"}},
		{name: "property inside an item", body: open + `<property name="to">a</property><propertyList name="x"><item><Property name="phoneNumber">1</Property></item></propertyList></input>`, errHas: []string{"A <property> inside"}},
		{name: "property list inside a link", body: open + `<property name="to">a</property><link rel="self" href="/x"><x:propertylist xmlns:x="urn:x" name="to"/></link></input>`, errHas: []string{"A <propertyList> inside"}},
		{name: "link inside the operation's link", body: open + `<link rel="customContent" href="data:,x"><link rel="phoneNumber" href="tel:1"/></link></input>`, errHas: []string{"A <link> inside"}},
		{name: "resource inside a propertyList", body: open + `<propertyList name="x"><resource rel="y"/></propertyList></input>`, errHas: []string{"A <resource> inside"}},
		{name: "property with xml:lang", body: open + `<property name="subject" xml:lang="en">a</property></input>`, errHas: []string{`attribute "lang"`}},
		{name: "property declaring namespaces", body: open + `<property xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa" xmlns:p="urn:p" name="to">a</property></input>`, want: fv(To, "a")},
		{name: "property with an empty name", body: open + `<property name="">tel:+19005551234</property></input>`, errHas: []string{`<property> with an empty name`}},
		{name: "propertyList with an empty name", body: open + `<propertyList name=""><item>1</item></propertyList></input>`, errHas: []string{`<propertyList> with an empty name`}},
		{name: "duplicate among many attributes", body: open + `<property name="to"` + manyAttrs(100, 40) + `>x</property></input>`, errHas: []string{`attribute "a40" twice`}},
		{name: "duplicate within the pairwise limit", body: open + `<property name="to"` + manyAttrs(maxAttrsCompared-2, 3) + `>x</property></input>`, errHas: []string{`attribute "a3" twice`}},
		{name: "duplicate href", body: open + `<link rel="customContent" href="data:,a" href="data:,b"/></input>`, errHas: []string{`attribute "href" twice`}},
		{name: "UTF-16 declared", body: `<?xml version="1.0" encoding="utf-16"?>` + open + `</input>`, errHas: []string{"an encoding other than UTF-8"}},
		{name: "invalid UTF-8", body: open + "<property name=\"subject\">\xff</property></input>", errHas: []string{"UTF-8"}},
		{name: "non-ASCII unknown property name", body: open + `<property name="ſubjects">x</property></input>`, errHas: []string{`"ſubjects" has a character outside ASCII`, "line 1, column 62"}},
		{name: "non-ASCII unknown link rel", body: open + `<link rel="cuſtomContents" href="data:,x"/></input>`, errHas: []string{`link rel "cuſtomContents" has a character outside ASCII`}},
		{name: "property in another namespace", body: open + "\n" + `<x:property xmlns:x="urn:evil" name="to">sip:a@b.c</x:property></input>`, errHas: []string{`<property> in namespace "urn:evil"`, "line 2, column 1"}},
		{name: "property in another letter case", body: open + `<Property name="to">sip:a@b.c</Property></input>`, errHas: []string{"<Property> inside <input>", "line 1, column 62"}},
		{name: "property nested in another element", body: open + `<foo><property name="to">sip:a@b.c</property></foo></input>`, errHas: []string{"<foo> inside <input>"}},
		{name: "unknown empty element", body: `<input><other/></input>`, errHas: []string{"<other> inside <input>"}},
		{name: "JSON sent as XML", body: `{"to":"a"}`, errHas: []string{"text outside any property"}},
		{name: "prefix bound to no namespace on a link (read past the tag)", body: `<input><link rel="customContent" xmlns:p="" p:href="data:,x"/></input>`, errHas: []string{`xmlns:p=""`, "line 1, column 8"}},
		{name: "prefix bound to no namespace on a property name", body: open + `<property xmlns:p="" p:name="subject">s</property></input>`, errHas: []string{`xmlns:p=""`}},
		{name: "xsi declared on the root, as XmlSerializer does", body: `<input xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">x</property></input>`,
			want: fv(To, "x")},
		{name: "xsi:nil on a property", body: `<input xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><property name="to" xsi:nil="true">sip:a@b.c</property></input>`, errHas: []string{"XML Schema instance attribute (xsi:nil)", "line 1, column 62"}},
		{name: "xsi:type under another prefix", body: open + "\n" + `<property xmlns:s="http://www.w3.org/2001/XMLSchema-instance" s:type="q:int" name="phoneNumber">1</property></input>`, errHas: []string{"(xsi:type)", "line 2, column 1"}},
		{name: "xsi:nil with the prefix undeclared", body: open + `<property name="to" xsi:nil="true">x</property></input>`, errHas: []string{"(xsi:nil)"}},
		{name: "xsi:nil on a link", body: open + `<link xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" rel="customContent" href="data:,x" xsi:nil="true"/></input>`, errHas: []string{"(xsi:nil)"}},
		{name: "xsi:nil on the root", body: `<input xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true"/>`, errHas: []string{"(xsi:nil)"}},
		{name: "other xsi attribute inside a propertyList", body: open + `<propertyList name="x"><item xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:foo="1">a</item></propertyList></input>`, errHas: []string{"(xsi:...)"}},
		{name: "white space written as it is in an href is a space", body: open + "<link rel=\"customContent\" href=\"data:,a\tb\r\nc\nd\re&#9;f&#13;&#10;g\"/></input>",
			want: fv(CustomContent, "data:,a b c d e\tf\r\ng")},
		{name: "white space in a single-quoted href", body: open + "<link rel=\"customContent\" href='data:,\"a\"\tb'/></input>", want: fv(CustomContent, "data:,\"a\" b")},
		{name: "prefix bound to no namespace on the root", body: `<input xmlns:p=""><property p:name="to">x</property></input>`, errHas: []string{`xmlns:p=""`, "line 1, column 1"}},
	})
}

// TestDecodeJSONDepth holds the decoder to its nesting limit, counted as
// encoding/json counts it (the body's object is depth 1), at every level
// where it reads names.
func TestDecodeJSONDepth(t *testing.T) {
	wrap := map[string][2]string{
		"body":                 {``, ``},
		"property":             {`{"x":`, `}`},
		"documented property":  {`{"to":`, `}`},
		"_links":               {`{"_links":`, `}`},
		"link":                 {`{"_links":{"x":`, `}}`},
		"customContent":        {`{"_links":{"customContent":`, `}}`},
		"customContent member": {`{"_links":{"customContent":{"x":`, `}}}`},
		"customContent href":   {`{"_links":{"customContent":{"href":`, `}}}`},
	}
	for name, w := range wrap {
		outcomes := map[bool]bool{}
		for _, n := range []int{maxJSONDepth - 4, maxJSONDepth - 3, maxJSONDepth - 2, maxJSONDepth - 1, maxJSONDepth, maxJSONDepth + 1} {
			body := []byte(w[0] + strings.Repeat("[", n) + strings.Repeat("]", n) + w[1])
			_, err := decode(JSON, body)
			// Where the body is valid JSON, the message must say whether
			// it was the nesting (not the shape) that was refused.
			tooDeep := err != nil && strings.Contains(err.Message, "nested too deeply")
			if json.Unmarshal(body, new(any)) != nil {
				t.Fatalf("%s, %d arrays deep: not valid JSON", name, n)
			}
			deep := jsonNesting(body) > maxJSONDepth
			if tooDeep != deep {
				t.Errorf("%s, %d arrays deep: decode error %v; nested past %d: %v", name, n, err, maxJSONDepth, deep)
			}
			outcomes[deep] = true
		}
		if len(outcomes) != 2 {
			t.Errorf("%s: the depths tried do not straddle the limit", name)
		}
	}
}

// TestDecodeSimpleXML checks which bodies the encoding/xml-free reader
// takes, and that it reads them exactly as encoding/xml does.
func TestDecodeSimpleXML(t *testing.T) {
	const open = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">`
	tests := []struct {
		name   string
		body   string
		simple bool
	}{
		{"seed sample", string(readSeed(t, "seed.xml")), true},
		{"seed sample with CRLF", strings.ReplaceAll(string(readSeed(t, "seed.xml")), "\n", "\r\n"), true},
		{"bare root, no declaration", `<input><property name="to">x</property><property name="x-y_z">1</property></input>`, true},
		// A name with a '.' may be a .NET model-binding spelling of a
		// property ("x.to"): decodeFullXML judges it.
		{"a name with a dot", `<input><property name="to">x</property><property name="x.y">1</property></input>`, false},
		{"empty input", open + `</input>`, true},
		{"empty property", open + `<property name="to"></property></input>`, true},
		{"multi-byte text and >", open + `<property name="subject">日本 > 😀</property></input>`, true},
		{"entity", open + `<property name="subject">a &amp; b</property></input>`, false},
		{"CR in a value", open + "<property name=\"subject\">a\rb</property></input>", false},
		{"comment", open + `<!-- c --><property name="to">x</property></input>`, false},
		{"link", open + `<link rel="customContent" href="data:,x"/></input>`, false},
		{"self-closing property", open + `<property name="to"/></input>`, false},
		{"single quotes", open + `<property name='to'>x</property></input>`, false},
		{"other namespace", `<input xmlns="urn:x"><property name="to">x</property></input>`, false},
		{"duplicate", open + `<property name="to">x</property><property name="TO">y</property></input>`, false},
		{"trailing data", open + `</input>x`, false},
		{"unclosed", open + `<property name="to">x</property>`, false},
		{"control character", open + "<property name=\"to\">\x01</property></input>", false},
		{"invalid UTF-8", open + "<property name=\"to\">\xff</property></input>", false},
		{"CDATA end", open + `<property name="to">]]></property></input>`, false},
		{"DOCTYPE", `<!DOCTYPE input>` + open + `</input>`, false},
		{"directive inside a property", open + `<property name="to">x<!DOCTYPE x></property></input>`, false},
		{"directive between properties", open + `<!DOCTYPE x><property name="to">x</property></input>`, false},
	}
	for _, tt := range tests {
		simple, ok := simpleXML(spa, []byte(tt.body))
		if ok != tt.simple {
			t.Errorf("%s: simple %v, want %v", tt.name, ok, tt.simple)
		}
		if !ok {
			continue
		}
		full, err := fullXML(spa, []byte(tt.body))
		if err != nil || !reflect.DeepEqual(simple, full) {
			t.Errorf("%s: simple reading %+v, encoding/xml %+v, %v", tt.name, simple, full, err)
		}
	}
}

// TestAttrValueSpan checks the attribute finder on tags the decoder
// reports differently from how they are written: it must say "not found",
// never read past the tag.
func TestAttrValueSpan(t *testing.T) {
	tests := []struct {
		tag, name string
		want      string
		ok        bool
	}{
		{`<link rel="customContent" href="data:,x"/>`, "href", "data:,x", true},
		{`<link href='a"b' rel="x">`, "href", `a"b`, true},
		{"<link\n\trel = \"x\"\r\nhref\t=\t'y' >", "href", "y", true},
		{`<link rel="customContent" xmlns:p="" p:href="data:,x"/>`, "href", "", false},
		{`<link/>`, "href", "", false},
		{`<link rel="x`, "href", "", false},
		{`<link rel`, "href", "", false},
		{`<link `, "href", "", false},
	}
	for _, tt := range tests {
		from, to, ok := attrValueSpan([]byte(tt.tag), tt.name)
		if ok != tt.ok || ok && tt.tag[from:to] != tt.want {
			t.Errorf("attrValueSpan(%q, %q) = %d, %d, %v; want %q, %v", tt.tag, tt.name, from, to, ok, tt.want, tt.ok)
		}
	}
}

// manyAttrs returns n attributes a0="v" .. a<n-1>="v" and, if dup >= 0,
// a<dup> once more at the end.
func manyAttrs(n, dup int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(` a` + strconv.Itoa(i) + `="v"`)
	}
	if dup >= 0 {
		b.WriteString(` a` + strconv.Itoa(dup) + `="w"`)
	}
	return b.String()
}

// TestEncodeKeepsLiterals: a boolean or integer property given as a JSON
// literal and changed by Clean (-0 read as 0) is written back as a
// literal, not as a string a pool would refuse for that type; a number
// beside it is written as a string.
func TestEncodeKeepsLiterals(t *testing.T) {
	op := &Operation{Rel: "x", Method: "POST", Body: PropertiesBody, XMLRoot: "input", Properties: []Property{
		{Name: "i", Type: IntegerValue, Min: -5, Max: 5},
		{Name: "b", Type: BooleanValue},
		{Name: "n", Type: NumberValue, Destination: StoredForLater},
	}}
	c := mustCleaner(t, "US", TelURI)
	for _, tc := range []struct{ body, want string }{
		{`{"i":-0,"b":true,"n":"4255551234"}`, `{"i":0,"b":true,"n":"tel:+14255551234"}`},
		{`{"i": -0 ,"b":false}`, `{"i": 0 ,"b":false}`},
		{`{"i":3,"b":true}`, `{"i":3,"b":true}`},
	} {
		r, derr := decodeOp(op, JSON, []byte(tc.body))
		if derr != nil {
			t.Fatalf("%s: %v", tc.body, derr)
		}
		if _, err := c.Clean(op, r, nil); err != nil {
			t.Fatalf("%s: %v %v", tc.body, err, err.Parameters)
		}
		if got := string(r.Encode()); got != tc.want {
			t.Errorf("%s: encoded %s, want %s", tc.body, got, tc.want)
		}
	}
}
