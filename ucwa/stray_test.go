package ucwa

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// strayRefusal checks that err refuses the stray destination name,
// without echoing the value or the name as written.
func strayRefusal(t *testing.T, what string, err *Error, name string, leaks ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: accepted", what)
		return
	}
	if err.Status != 400 || err.Subcode != SubcodeParameterValidationFailure || len(err.Parameters) != 1 || err.Parameters[0].Name != name {
		t.Errorf("%s: %v %v, want 400 ParameterValidationFailure naming %s", what, err, err.Parameters, name)
		return
	}
	for _, leak := range append(leaks, "900", "tel:") {
		if strings.Contains(err.Message, leak) {
			t.Errorf("%s: message %q holds %q", what, err.Message, leak)
		}
	}
}

// TestStrayDestinationEveryRow walks every row of the table: a body (JSON
// and XML) and a query holding each of the row's own properties are read,
// whatever the destinations of the table are named, while each phone
// destination of the table that the row does not take is refused, naming
// it, at the top level of the body, as a link and in the query, unless its
// value is null or blank.
func TestStrayDestinationEveryRow(t *testing.T) {
	refused := 0
	for i := range testOps {
		op := &testOps[i]
		if op.Body == BatchBody {
			continue
		}
		// The row's own properties, the destinations among them included.
		var query []string
		for j := range op.Properties {
			in, _ := goodValue(&op.Properties[j], false)
			query = append(query, op.Properties[j].Name+"="+url.QueryEscape(in))
		}
		if _, err := ParseQuery(op, strings.Join(query, "&")); err != nil {
			t.Errorf("%s: its own properties in the query: %v %v", op.Rel, err, err.Parameters)
		}
		if op.Body == PropertiesBody {
			for _, f := range []Format{JSON, XML} {
				if _, err := decodeOp(op, f, goodBody(op, f)); err != nil {
					t.Errorf("%s: its own properties in %v: %v %v", op.Rel, f, err, err.Parameters)
				}
			}
		}

		for _, d := range namedDestinations {
			if op.propertyIndex(d.name) >= 0 {
				continue
			}
			refused++
			_, err := ParseQuery(op, "x=1&"+d.name+"=tel:%2B19005551234")
			strayRefusal(t, op.Rel+" query "+d.name, err, d.name)
			if _, err := ParseQuery(op, d.name+"=+&x=1"); err != nil {
				t.Errorf("%s: a blank %s in the query: %v", op.Rel, d.name, err)
			}
			if op.Body != PropertiesBody {
				continue
			}
			own := goodBody(op, JSON)
			withJSON := func(member string) []byte {
				return append([]byte(`{`+member+`,`), own[1:]...)
			}
			_, err = decodeOp(op, JSON, withJSON(`"`+d.name+`":"tel:+19005551234"`))
			strayRefusal(t, op.Rel+" JSON "+d.name, err, d.name)
			_, err = decodeOp(op, JSON, bytes.Replace(own, []byte(`"_links":{`), []byte(`"_links":{"`+d.name+`":{"href":"tel:+19005551234"},`), 1))
			strayRefusal(t, op.Rel+" JSON link "+d.name, err, d.name)
			for _, ok := range []string{`null`, `" "`} {
				if _, err := decodeOp(op, JSON, withJSON(`"`+d.name+`":`+ok)); err != nil {
					t.Errorf("%s: %s %s in JSON: %v", op.Rel, d.name, ok, err)
				}
			}

			xmlOwn := string(goodBody(op, XML))
			open := strings.Index(xmlOwn, `">`) + 2
			withXML := func(elem string) []byte { return []byte(xmlOwn[:open] + elem + xmlOwn[open:]) }
			for what, elem := range map[string]string{
				"property":      `<property name="` + d.name + `">tel:+19005551234</property>`,
				"property list": `<propertyList name="` + d.name + `"><item>tel:+19005551234</item></propertyList>`,
				"link":          `<link rel="` + d.name + `" href="tel:+19005551234"/>`,
			} {
				_, err := decodeOp(op, XML, withXML(elem))
				strayRefusal(t, op.Rel+" XML "+what+" "+d.name, err, d.name)
			}
			if _, err := decodeOp(op, XML, withXML(`<property name="`+d.name+`"> </property>`)); err != nil {
				t.Errorf("%s: a blank %s in XML: %v", op.Rel, d.name, err)
			}
		}
	}
	if refused == 0 {
		t.Fatal("no row leaves a destination of the table out")
	}
}

// TestDecodeStrayDestination: a top-level property, property list or
// link named like a phone destination of the table that the operation
// does not take (in any letter case, or folding onto it) is refused
// naming the destination, unless it is a property whose value is null,
// blank or a word the table's properties of that name take; the
// operation's own properties keep their own rules.
func TestDecodeStrayDestination(t *testing.T) {
	const (
		in  = `<input xmlns="` + Namespace + `">`
		res = `<resource xmlns="` + Namespace + `">`
	)
	tests := []struct {
		rel    string
		format Format
		body   string
		bad    string // "": accepted
	}{
		{"callForwardingSettings", JSON, `{"activeSetting":"SimultaneousRing","target":"tel:+19005551234"}`, "target"},
		{"callForwardingSettings", JSON, `{"TARGET":"+1 900 555 1234"}`, "target"},
		{"callForwardingSettings", JSON, `{"target ":"+19005551234"}`, "target"},
		{"callForwardingSettings", JSON, `{"target":19005551234}`, "target"},
		{"callForwardingSettings", JSON, `{"target":["Contact"]}`, "target"},
		{"callForwardingSettings", JSON, `{"_links":{"Target":{"href":"tel:+19005551234"}}}`, "target"},
		{"communication", JSON, `{"phoneNumber":"4255551234","number":"+19005551234"}`, "number"},
		{"startAudio", JSON, `{"to":"sip:a@contoso.com","delegator":"tel:+19005551234"}`, "delegator"},
		{"startAudio", JSON, `{"to":"sip:a@contoso.com","phone\u0000Number":"+19005551234"}`, "phoneNumber"},
		{"immediateForwardToContact", JSON, `{"target":"sip:a@contoso.com","to":"+19005551234"}`, "to"},
		{"changeNumber", JSON, `{"number":"4255551234","phoneNumber":"+19005551234"}`, "phoneNumber"},
		{"callForwardingSettings", XML, res + `<property name="target">tel:+19005551234</property></resource>`, "target"},
		{"callForwardingSettings", XML, `<resource><property name="Target">+19005551234</property></resource>`, "target"},
		{"callForwardingSettings", XML, res + `<property name="target&#9;">1</property></resource>`, "target"},
		{"communication", XML, res + `<propertyList name="number"><item>+19005551234</item></propertyList></resource>`, "number"},
		{"communication", XML, res + `<link rel="To" href="tel:+19005551234"/></resource>`, "to"},
		{"communication", XML, `<resource xmlns:p="urn:p"><property name="x" p:name="number">+19005551234</property></resource>`, "number"},
		{"startAudio", XML, in + `<property name="to">sip:a@contoso.com</property><property name="delegator">tel:+19005551234</property></input>`, "delegator"},

		{"callForwardingSettings", JSON, `{"activeSetting":"SimultaneousRing","target":"contact","phoneNumber":null,"to":" ","_links":{"self":{"href":"/x"}}}`, ""},
		{"callForwardingSettings", JSON, `{"target":" Voicemail "}`, ""},
		{"callForwardingSettings", XML, res + `<property name="target">Contact</property><property name="number"></property></resource>`, ""},
		{"callForwardingSettings", XML, `<resource><property name="target">Contact</property></resource>`, ""},
		{"simultaneousRingSettings", JSON, `{"target":"Team","ringDelay":0}`, ""},
		{"communication", JSON, `{"phoneNumber":"4255551234","phoneNumbers":"+19005551234","x":{"number":null}}`, ""},
		{"startPhoneAudio", JSON, `{"to":"sip:a@contoso.com","phoneNumber":"4255551234"}`, ""},
		{"startPhoneAudio", XML, in + `<property name="to">sip:a@contoso.com</property><property name="phoneNumber">4255551234</property></input>`, ""},
	}
	for _, tt := range tests {
		op := mustOperation(tt.rel)
		_, err := decodeOp(op, tt.format, []byte(tt.body))
		if tt.format == XML {
			// The plain reader hands a stray destination to the full one,
			// which judges it.
			if _, ok := simpleXML(op, []byte(tt.body)); ok && tt.bad != "" {
				t.Errorf("%s: decodeSimpleXML accepted it", tt.body)
			}
		}
		if tt.bad == "" {
			if err != nil {
				t.Errorf("%s: %v %v", tt.body, err, err.Parameters)
			}
			continue
		}
		strayRefusal(t, tt.body, err, tt.bad, "TARGET", "\x00", "\t")
		if err != nil && !strings.Contains(err.Message, "line 1, column") {
			t.Errorf("%s: message %q says not where", tt.body, err.Message)
		}
	}
}

// TestParseQueryStrayDestination: a query parameter that is, or folds
// onto, a phone destination of the table that the operation does not
// take is refused naming the destination, unless it is blank or one of
// the destination's words.
func TestParseQueryStrayDestination(t *testing.T) {
	tests := []struct {
		rel, query, bad string
	}{
		{"callForwardingSettings", "target=tel:%2B19005551234", "target"},
		{"callForwardingSettings", "x=1&Target=%2B19005551234", "target"},
		{"callForwardingSettings", "targe%74=1", "target"},
		{"callForwardingSettings", "target%E2%80%8B=1", "target"},
		{"escalateAudio", "operationId=1&sessionContext=2&to=tel:%2B19005551234", "to"},
		{"acceptWithPhoneAudio", "phoneNumber=%2B19005551234", "phoneNumber"},
		{"startAudio", "to=sip:a@contoso.com&delegator=%2B19005551234", "delegator"},
		{"communication", "number=%2B19005551234", "number"},

		{"callForwardingSettings", "target=Contact&phoneNumber=&to=+", ""},
		{"simultaneousRingSettings", "target=tel:%2B19005551234", ""}, // its own: its own rules judge it
		{"startPhoneAudio", "phoneNumber=%2B14255551234&to=sip:a@contoso.com&phoneNumbers=1", ""},
	}
	for _, tt := range tests {
		_, err := ParseQuery(mustOperation(tt.rel), tt.query)
		if tt.bad == "" {
			if err != nil {
				t.Errorf("%s ? %s: %v", tt.rel, tt.query, err)
			}
			continue
		}
		strayRefusal(t, tt.rel+" ? "+tt.query, err, tt.bad, "Target", "%")
		if err != nil && !strings.Contains(err.Message, "query parameter") {
			t.Errorf("%s ? %s: message %q does not say the query", tt.rel, tt.query, err.Message)
		}
	}
}

// TestCookieDestination: a cookie named like a phone destination of the
// table, in any letter case or folding onto it, after a ';' or a ',', is
// refused naming the destination, unless its value is blank or one of the
// words the table's properties of that name take; other cookies pass.
func TestCookieDestination(t *testing.T) {
	for _, tc := range []struct{ cookie, name string }{
		{"phoneNumber=tel:+19005551234", "phoneNumber"},
		{"a=1; To=+19005551234", "to"},
		{"a=1,NUMBER=+19005551234", "number"},
		{" delegator = sip:+19005551234@gw", "delegator"},
		{"target=+19005551234; target=Contact", "target"},
		{"phone\u200bNumber=+19005551234", "phoneNumber"},
		{"ｔｏ=+19005551234", "to"},
		{"to=\"+19005551234\"", "to"},
		{"cwt=abc; ASP.NET_SessionId=x", ""},
		// A cookie is read whole, its parts no name: with a space or
		// without, as printable ASCII is.
		{"a.to=+19005551234; a .to=+19005551234; x[\u200bnumber]=+19005551234", ""},
		{"to=; phoneNumber= ; target=Contact; target=voicemail", ""},
		{"tos=+19005551234; xto=+19005551234; phone%4Eumber=+19005551234", ""},
		{"to", ""},
		{";;,,", ""},
		{"", ""},
	} {
		err := CookieDestination(http.Header{"Cookie": {tc.cookie}})
		if tc.name == "" {
			if err != nil {
				t.Errorf("%q: refused: %v", tc.cookie, err)
			}
			continue
		}
		strayRefusal(t, tc.cookie, err, tc.name)
	}
	strayRefusal(t, "the second Cookie line", CookieDestination(http.Header{"Cookie": {"a=b", "to=+19005551234"}}), "to")
}

// TestContactLink: the forwarding settings' contact, which a pool serves
// as a link to a person of its own, passes as such a path (and blank or
// null) as a link, a property, in JSON and XML, at the top level and in
// an embedded resource; a contact that names anything else (a tel: or
// sip: URI, a bare number, another scheme, a host, a ':' in any reading
// of the path) is refused, naming contact and not its value.
func TestContactLink(t *testing.T) {
	ring, forwarding := mustOperation("simultaneousRingSettings"), mustOperation("callForwardingSettings")
	const ns = `xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"`
	bodies := []struct {
		op       *Operation
		f        Format
		template string
	}{
		{ring, JSON, `{"target":"Contact","_links":{"contact":{"href":"%s"}}}`},
		{ring, JSON, `{"target":"Contact","_links":{"contact":{"HREF":"%s"}}}`},
		{ring, JSON, `{"target":"Contact","contact":"%s"}`},
		{ring, XML, `<resource ` + ns + `><link rel="contact" href="%s"/></resource>`},
		{ring, XML, `<resource ` + ns + `><link rel="contact" HREF="%s"/></resource>`},
		{ring, XML, `<resource ` + ns + `><property name="contact">%s</property></resource>`},
		{spa, JSON, `{"to":"sip:john@contoso.com","_links":{"contact":{"href":"%s"}}}`},
		{forwarding, JSON, `{"_embedded":{"simultaneousRingSettings":{"target":"Contact","_links":{"contact":{"href":"%s"}}}}}`},
		{forwarding, JSON, `{"_embedded":{"unansweredCallSettings":[{"contact":"%s"}]}}`},
		{forwarding, XML, `<resource ` + ns + `><resource rel="simultaneousRingSettings"><link rel="contact" href="%s"/></resource></resource>`},
		{forwarding, XML, `<resource ` + ns + `><resource rel="x"><property name="contact">%s</property></resource></resource>`},
	}
	for _, tt := range []struct {
		href string
		ok   bool
	}{
		{"/ucwa/v1/applications/192/people/282", true},
		{"/ucwa/oauth/v1/applications/192/people/john@contoso.com", true},
		{"/people/a%2Fb", true},
		{"", true},
		{"  ", true},
		{"tel:+19005551234", false},
		{"sip:+19005551234@gw.contoso.com;user=phone", false},
		{"+19005551234", false},
		{"19005551234", false},
		{"https://pool.contoso.com/ucwa/v1/applications/192/people/282", false},
		{"//gw.contoso.com/people/282", false},
		{"/people/tel:+19005551234", false},
		{"/people/tel%3A+19005551234", false},
		{"/people/tel%253A+19005551234", false},
		// Decoded three times is read; deeper is refused unread.
		{"/people/282?x=%252541", true},
		{"/people/282?x=%25252541", false},
		{"/people/tel%u003A+19005551234", false},
		{"/ucwa/v1/applications/192/people/+19005551234@contoso.com;user=phone", false},
		{"/ucwa/v1/applications/192/people/+19005551234", false},
		{"/ucwa/v1/applications/192/people/%2B19005551234", false},
		{"/ucwa/v1/applications/192/people/19005551234%3Buser=phone", false},
		{`/people\x`, false},
		{"/people/%5Cx", false},
		{"/people/282 x", false},
		{"/people/2\u0668", false},
		{"/people/tel%uFF1A+19005551234", false},
		{"/people/tel%EF%BC%9A+19005551234", false},
		{"/people/tel%C0%BA+19005551234", false},
		{"/people/tel%25EF%25BC%259A+19005551234", false},
		{"/%2Fgw.contoso.com/people/282", false},
		{"/people/282%00", false},
		{"/people/john%40contoso.com", true},
		// A person's SIP address without its scheme whose user may be a
		// number: six digits or more, or a vanity number.
		{"/ucwa/v1/applications/192/people/19005551234@gw.contoso.com", false},
		{"/ucwa/v1/applications/192/people/1-900-555-1234@gw.contoso.com", false},
		{"/ucwa/v1/applications/192/people/9,19005551234@gw.contoso.com", false},
		{"/ucwa/v1/applications/192/people/1900FLOWERS@gw.contoso.com", false},
		{"/ucwa/v1/applications/192/people/%3190%3005551234@gw.contoso.com", false},
		{"/ucwa/v1/applications/192/people/19005551234/presence", false},
		{"/ucwa/v1/applications/192/people/12345@contoso.com", true},
		{"/ucwa/v1/applications/192/people/john.smith2@contoso.com", true},
		{"/ucwa/v1/applications/101246165550/people/282", true},
		{"/ucwa/v1/Applications/101246165550/people/282", true},
	} {
		if got := isResourcePath(strings.TrimSpace(tt.href)); got != tt.ok && strings.TrimSpace(tt.href) != "" {
			t.Errorf("isResourcePath(%q) = %v", tt.href, got)
		}
		for _, b := range bodies {
			href := tt.href
			if b.f == JSON {
				href = strings.ReplaceAll(href, `\`, `\\`)
			}
			body := []byte(strings.Replace(b.template, "%s", href, 1))
			_, err := decodeOp(b.op, b.f, body)
			switch {
			case tt.ok && err != nil:
				t.Errorf("%s %s: %v %v", b.op.Rel, body, err, err.Parameters)
			case !tt.ok:
				strayRefusal(t, string(body), err, "contact")
			}
		}
		q := "contact=" + url.QueryEscape(tt.href)
		if _, err := ParseQuery(ring, q); tt.ok != (err == nil) {
			t.Errorf("query %s: %v", q, err)
		}
	}
	// A contact link that is no object is refused as any link is.
	if _, err := decodeOp(ring, JSON, []byte(`{"_links":{"contact":"/people/282"}}`)); err == nil {
		t.Error("a contact link that is a string: accepted")
	}
	// A member that folds onto href is one the edge does not judge, and a
	// pool that folds it would read: refused whatever it holds.
	for _, body := range []string{
		`{"target":"Contact","_links":{"contact":{"\uff48\uff52\uff45\uff46":"tel:+19005551234"}}}`,
		`{"target":"Contact","_links":{"contact":{"href":"/people/282","h\u200bref":"/people/283"}}}`,
	} {
		_, err := decodeOp(ring, JSON, []byte(body))
		strayRefusal(t, body, err, "contact")
	}
}
