package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestXMLValueSplitByMarkup: an XML property whose text a comment, a
// processing instruction or a CDATA section splits is judged whole (the
// text of every run), and reaches the pool as one run of that text. A
// .NET reader that stops at the first markup (XmlReader.ReadString stops
// at comments and processing instructions), or that takes the first text
// node, would otherwise read another destination than the one judged:
// sip:bob@evil.co<!---->.contoso.com is a contoso.com address to the
// edge and sip:bob@evil.co to such a pool, a federated call to a domain
// sip_domains refuses.
func TestXMLValueSplitByMarkup(t *testing.T) {
	e := startGuardEdge(t, `number_format e164
		destinations {
			deny +1900
			sip_domains *.contoso.com
		}`)
	auth := callerBearer(t)
	input := func(to string) string {
		return `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="operationId">op</property><property name="to">` + to + `</property></input>`
	}
	for _, tc := range []struct{ name, to, want string }{
		{"comment in a SIP host", "sip:bob@evil.co<!---->.contoso.com", "sip:bob@evil.co.contoso.com"},
		{"processing instruction in a SIP host", "sip:bob@evil.co<?x y?>.contoso.com", "sip:bob@evil.co.contoso.com"},
		{"CDATA section in a SIP host", "sip:bob@evil.co<![CDATA[.contoso.com]]>", "sip:bob@evil.co.contoso.com"},
		{"comment in a number", "+1425555<!-- -->1234", "+14255551234"},
		{"comment before the value", "<!---->+14255551234", "+14255551234"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.pool.Received())
			resp := e.send(testkit.Request{URL: startOpsPath, ContentType: "application/xml", Body: input(tc.to),
				Header: http.Header{"Authorization": {auth}}})
			got := e.pool.Received()[before:]
			if resp.Status != http.StatusCreated || len(got) != 1 {
				t.Fatalf("status %d (%s), the pool got %d requests; want 201 and one", resp.Status, resp.Body, len(got))
			}
			if want := input(tc.want); got[0].Body != want {
				t.Fatalf("the pool got\n%s\nwant\n%s", got[0].Body, want)
			}
			if strings.Contains(got[0].Body, "<!--") || strings.Contains(got[0].Body, "<?") || strings.Contains(got[0].Body, "CDATA") {
				t.Fatalf("the pool got markup inside the value: %s", got[0].Body)
			}
		})
	}
}

// TestSIPUserFullwidthPlus: a SIP user that starts with a fullwidth plus
// (U+FF0B, escaped), which the number rules read as '+' in any number,
// is a telephone number there too: it was a name, judged by sip_domains
// alone, so sip:%EF%BC%8B19005551234@gw.contoso.com reached the pool
// past deny +1900.
func TestSIPUserFullwidthPlus(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
			sip_domains *.contoso.com
		}`)
	auth := callerBearer(t)
	for _, tc := range []struct{ to, delivered string }{
		{to: "sip:%EF%BC%8B19005551234@gw.contoso.com"},
		{to: "sip:%ef%bc%8b1-900-555-1234@gw.contoso.com;user=ip"},
		{to: "sip:%EF%BC%8B1-425-555-1234@gw.contoso.com", delivered: "sip:+14255551234@gw.contoso.com"},
	} {
		t.Run(tc.to, func(t *testing.T) {
			before := len(e.pool.Received())
			resp := e.send(testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: `{"to":"` + tc.to + `"}`,
				Header: http.Header{"Authorization": {auth}}})
			got := e.pool.Received()[before:]
			switch {
			case tc.delivered == "" && (resp.Status != http.StatusForbidden || len(got) != 0):
				t.Fatalf("status %d (%s), the pool got %d requests; want 403 and none", resp.Status, resp.Body, len(got))
			case tc.delivered != "" && (resp.Status != http.StatusCreated || len(got) != 1 || got[0].Body != `{"to":"`+tc.delivered+`"}`):
				t.Fatalf("status %d (%s), the pool got %+v; want %s", resp.Status, resp.Body, got, tc.delivered)
			}
		})
	}
}

// TestModelBindingQueryNames: a query name that .NET model binding may
// read as a property of the operation (ASP.NET Core's jQuery query
// reader takes to[] and model[to] for to and model.to; MVC and Web API
// bind a complex parameter under a prefix, request.to, falling back to
// the bare name; collections bind to[0] and [0].to) is refused with 400,
// naming the property, and never reaches the pool: the edge judged the
// body's to, and such a pool could dial the query's.
func TestModelBindingQueryNames(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	const body = `{"to":"sip:john@contoso.com"}`
	for _, tc := range []struct {
		query, param string
		status       int
	}{
		{"to%5B%5D=tel:%2B19005551234", "to", http.StatusBadRequest},
		{"to[]=tel:%2B19005551234", "to", http.StatusBadRequest},
		{"to[0]=tel:%2B19005551234", "to", http.StatusBadRequest},
		{"to[x]=tel:%2B19005551234", "to", http.StatusBadRequest},
		{"x.to=tel:%2B19005551234", "to", http.StatusBadRequest},
		{"request.To=tel:%2B19005551234", "to", http.StatusBadRequest},
		{"%5B0%5D.to=tel:%2B19005551234", "to", http.StatusBadRequest},
		{"model[to]=tel:%2B19005551234", "to", http.StatusBadRequest},
		{"input.phoneNumber=%2B19005551234", "phoneNumber", http.StatusBadRequest},
		// Names whose parts are no property pass, byte for byte.
		{"a.b=1&c[0]=2&tos[]=3", "", http.StatusCreated},
	} {
		t.Run(tc.query, func(t *testing.T) {
			before := len(e.pool.Received())
			resp := e.send(testkit.Request{URL: startOpsPath + "?" + tc.query, ContentType: "application/json", Body: body,
				Header: http.Header{"Authorization": {auth}}})
			got := e.pool.Received()[before:]
			if tc.status == http.StatusCreated {
				if resp.Status != tc.status || len(got) != 1 || got[0].RawQuery != tc.query || got[0].Body != body {
					t.Fatalf("status %d (%s), the pool got %+v; want 201 and the request as sent", resp.Status, resp.Body, got)
				}
				return
			}
			if resp.Status != tc.status || len(got) != 0 {
				t.Fatalf("status %d (%s), the pool got %d requests; want %d and none", resp.Status, resp.Body, len(got), tc.status)
			}
			if !strings.Contains(resp.Body, `"`+tc.param+`"`) || !strings.Contains(resp.Body, "ParameterValidationFailure") || strings.Contains(resp.Body, "9005551234") {
				t.Fatalf("the refusal does not name %s alone: %s", tc.param, resp.Body)
			}
		})
	}
}

// TestXMLPropertyAttributes: a <property> gives its value as text and has
// only a name attribute (namespace declarations aside). One with another
// attribute (value="...") or an empty name is refused with 400, as other
// malformed bodies are, and never reaches the pool: the edge read the
// property's text, blank, and a pool reading the attribute would dial a
// number the edge never judged.
func TestXMLPropertyAttributes(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	const open = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">sip:john@contoso.com</property>`
	for _, tc := range []struct {
		name, props string
		status      int
	}{
		{"value attribute on a property of the operation", `<property name="phoneNumber" value="+19005551234"/>`, http.StatusBadRequest},
		{"value attribute beside text", `<property value="+19005551234" name="phoneNumber">+14255551234</property>`, http.StatusBadRequest},
		{"prefixed value attribute", `<property xmlns:p="urn:p" name="phoneNumber" p:value="+19005551234"/>`, http.StatusBadRequest},
		{"value attribute on another property", `<property name="subject" value="+19005551234"/>`, http.StatusBadRequest},
		{"empty name", `<property name="">+19005551234</property>`, http.StatusBadRequest},
		{"namespace declarations pass", `<property xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa" xmlns:p="urn:p" name="subject">hi</property>`, http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := open + tc.props + `</input>`
			before := len(e.pool.Received())
			resp := e.send(testkit.Request{URL: startOpsPath, ContentType: "application/xml", Body: body,
				Header: http.Header{"Authorization": {auth}}})
			got := e.pool.Received()[before:]
			if tc.status == http.StatusCreated {
				if resp.Status != tc.status || len(got) != 1 || got[0].Body != body {
					t.Fatalf("status %d (%s), the pool got %+v; want 201 and the body as sent", resp.Status, resp.Body, got)
				}
				return
			}
			if resp.Status != tc.status || len(got) != 0 || !strings.Contains(resp.Body, "DeserializationFailure") || strings.Contains(resp.Body, "9005551234") {
				t.Fatalf("status %d (%s), the pool got %d requests; want %d DeserializationFailure and none", resp.Status, resp.Body, len(got), tc.status)
			}
		})
	}
}

// TestXMLAttributeNamedLikeDestination: an XML body whose element (the
// root, a link, a property list's item, a PUT's resource or one nested in
// it) has an attribute named like a phone destination of the table, in
// any letter case or namespace, is refused with 400 naming the
// destination (alone, or as a batch part), and never reaches the pool:
// the edge reads no such attribute, and a pool whose model maps
// attributes would ring the number it holds, which the edge never judged,
// after or instead of the judged one. Such an attribute that is blank or
// one of the destination's words passes unchanged.
func TestXMLAttributeNamedLikeDestination(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	const ns = `xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"`
	const forwarding = opsApp + "/me/callForwardingSettings"
	for _, tc := range []struct {
		name, method, path, body, param string
		batch                           bool
	}{
		{name: "to on the root", path: startOpsPath, param: "to",
			body: `<input ` + ns + ` to="tel:+19005551234"><property name="to">sip:john@contoso.com</property></input>`},
		{name: "phoneNumber on the root, another letter case and a prefix", path: startOpsPath, param: "phoneNumber",
			body: `<input ` + ns + ` xmlns:p="urn:p" p:PHONENUMBER="+19005551234"><property name="to">+14255551234</property></input>`},
		{name: "target on a link", path: immediateForwardPath, param: "target",
			body: `<input ` + ns + `><property name="target">+14255551234</property><link rel="self" href="/x" target="+19005551234"/></input>`},
		{name: "number on a property list's item", path: startOpsPath, param: "number",
			body: `<input ` + ns + `><property name="to">sip:john@contoso.com</property><propertyList name="x"><item number="+19005551234">a</item></propertyList></input>`},
		{name: "target on a PUT's resource", method: "PUT", path: forwarding, param: "target",
			body: `<resource ` + ns + ` rel="callForwardingSettings" href="/x" target="+19005551234"><property name="activeSetting">ImmediateForward</property></resource>`},
		{name: "contact on an embedded resource", method: "PUT", path: forwarding, param: "contact",
			body: `<resource ` + ns + ` rel="callForwardingSettings" href="/x"><resource rel="simultaneousRingSettings" href="/y" contact="tel:+19005551234"><property name="target">Contact</property></resource></resource>`},
		{name: "to on the root of a batch part", path: startOpsPath, param: "to", batch: true,
			body: `<input ` + ns + ` to="tel:+19005551234"><property name="to">sip:john@contoso.com</property></input>`},
		{name: "blank and words pass", path: startOpsPath,
			body: `<input ` + ns + ` to=" "><link rel="self" href="/x" target="Contact"/><property name="to">sip:john@contoso.com</property></input>`},
		{name: "other attributes pass", method: "PUT", path: forwarding,
			body: `<resource ` + ns + ` rel="callForwardingSettings" href="/x" title="t"><property name="activeSetting">ImmediateForward</property></resource>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := e.sendBody(auth, tc.method, tc.path, "application/xml", tc.body, tc.batch)
			if tc.param == "" {
				assertDeliveredAsSent(t, resp, got, tc.body)
				return
			}
			assertRefusedUndelivered(t, resp, got, tc.param, "ParameterValidationFailure", "as an XML attribute")
		})
	}
}

// TestXMLNestedConstruct: a <property>, <propertyList>, <link> or
// <resource> inside a property list, a link, a property of an embedded
// resource or an element the edge does not read is refused with 400
// DeserializationFailure (alone, or as a batch part), and never reaches
// the pool: the edge skipped what such an element holds, and a pool that
// finds properties and resources wherever they stand would ring, or
// forward calls to, a number the edge never judged. UCWA's own nesting
// (items in a property list, resources in a PUT's resource) passes.
func TestXMLNestedConstruct(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	const ns = `xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"`
	const forwarding = opsApp + "/me/callForwardingSettings"
	for _, tc := range []struct {
		name, method, path, body string
		batch, pass              bool
	}{
		{name: "a property in a property list", path: startOpsPath,
			body: `<input ` + ns + `><property name="to">+14255551234</property><propertyList name="x"><property name="phoneNumber">+19005551234</property></propertyList></input>`},
		{name: "a property in an item", path: startOpsPath,
			body: `<input ` + ns + `><property name="to">+14255551234</property><propertyList name="x"><item><property name="phoneNumber">+19005551234</property></item></propertyList></input>`},
		{name: "a property in a link", path: immediateForwardPath,
			body: `<input ` + ns + `><property name="target">+14255551234</property><link rel="self" href="/x"><property name="target">+19005551234</property></link></input>`},
		{name: "an embedded resource in a link of a PUT", method: "PUT", path: forwarding,
			body: `<resource ` + ns + `><property name="activeSetting">SimultaneousRing</property><link rel="simultaneousRingSettings" href="/y"><resource rel="simultaneousRingSettings"><property name="target">+19005551234</property></resource></link></resource>`},
		{name: "an embedded resource in a property list of a PUT", method: "PUT", path: forwarding,
			body: `<resource ` + ns + `><property name="activeSetting">SimultaneousRing</property><propertyList name="x"><resource rel="simultaneousRingSettings"><property name="target">+19005551234</property></resource></propertyList></resource>`},
		{name: "a property in an embedded resource's link", method: "PUT", path: forwarding,
			body: `<resource ` + ns + `><resource rel="simultaneousRingSettings"><property name="target">Contact</property><link rel="self" href="/y"><property name="target">+19005551234</property></link></resource></resource>`},
		{name: "a property in a property list of a batch part", path: startOpsPath, batch: true,
			body: `<input ` + ns + `><property name="to">+14255551234</property><propertyList name="x"><property name="phoneNumber">+19005551234</property></propertyList></input>`},
		{name: "items and embedded resources pass", method: "PUT", path: forwarding, pass: true,
			body: `<resource ` + ns + ` rel="callForwardingSettings" href="/x"><propertyList name="x"><item>a</item></propertyList><resource rel="simultaneousRingSettings" href="/y"><property name="target">Contact</property><link rel="self" href="/y"/></resource></resource>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := e.sendBody(auth, tc.method, tc.path, "application/xml", tc.body, tc.batch)
			if tc.pass {
				assertDeliveredAsSent(t, resp, got, tc.body)
				return
			}
			assertRefusedUndelivered(t, resp, got, "", "DeserializationFailure", "inside an element whose content the edge does not read")
		})
	}
}

// TestXMLNestedDestination: an XML body holding, inside a property
// list, an item or a link (whose content the edge does not read), an
// element named like a phone destination of the table (any letter case
// or namespace), or one whose name or rel names one, is refused 400
// naming the destination, never the value (alone, or as a batch part),
// and never reaches the pool: a pool binding elements by name, or a
// property list's items by a name, would ring a number the edge never
// judged. UCWA's items pass as sent.
func TestXMLNestedDestination(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	const in = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">sip:john@contoso.com</property>`
	for _, tc := range []struct {
		name, body, bad string
		batch           bool
	}{
		{name: "an item named phoneNumber", bad: "phoneNumber",
			body: in + `<propertyList name="x"><item name="phoneNumber">+19005551234</item></propertyList></input>`},
		{name: "a phoneNumber element in a property list", bad: "phoneNumber",
			body: in + `<propertyList name="x"><phoneNumber>+19005551234</phoneNumber></propertyList></input>`},
		{name: "a to element in a link, another letter case", bad: "to",
			body: in + `<link rel="self" href="/x"><TO>+19005551234</TO></link></input>`},
		{name: "an item named phoneNumber in a batch part", bad: "phoneNumber", batch: true,
			body: in + `<propertyList name="x"><item name="phoneNumber">+19005551234</item></propertyList></input>`},
		{name: "items pass",
			body: in + `<propertyList name="x"><item>a</item><item>b</item></propertyList><link rel="self" href="/x"/></input>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := e.sendBody(auth, "", startOpsPath, "application/xml", tc.body, tc.batch)
			if tc.bad == "" {
				assertDeliveredAsSent(t, resp, got, tc.body)
				return
			}
			assertRefusedUndelivered(t, resp, got, tc.bad, "ParameterValidationFailure", "inside an element whose content the edge does not read")
		})
	}
}

// TestJSONUnreadDestination: a JSON body holding, where the edge does
// not read (a link's member other than href, a link the operation does
// not take, an unknown property's value, at any depth, in arrays too), a
// member named like a phone destination of the table (any letter case)
// that is not null, blank or one of its words, or an "_embedded", is
// refused with 400 naming it and where, never the value (alone, or as a
// batch part), and never reaches the pool: a pool finding members
// wherever they stand would ring, or forward calls to, a number the edge
// never judged. XML refuses the same (TestXMLAttributeNamedLikeDestination,
// TestXMLNestedConstruct); UCWA's own shapes pass as sent.
func TestJSONUnreadDestination(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	const forwarding = opsApp + "/me/callForwardingSettings"
	for _, tc := range []struct {
		name, method, path, body string
		bad                      string // the destination named, "_embedded", or "": delivered
		batch                    bool
	}{
		{name: "to in the self link", path: startOpsPath, bad: "to",
			body: `{"to":"+14255551234","_links":{"self":{"href":"/x","to":"+19005551234"}}}`},
		{name: "phoneNumber in the operation's link", path: startOpsPath, bad: "phoneNumber",
			body: `{"to":"+14255551234","_links":{"customContent":{"href":"data:,x","PHONENUMBER":"+19005551234"}}}`},
		{name: "number deep in an unknown property", path: startOpsPath, bad: "number",
			body: `{"to":"+14255551234","x":{"y":[1,{"number":"+19005551234"}]}}`},
		{name: "_embedded in an unknown property of a PUT", method: "PUT", path: forwarding, bad: "_embedded",
			body: `{"activeSetting":"None","x":{"_embedded":{"simultaneousRingSettings":{"target":"+19005551234"}}}}`},
		{name: "_embedded in an array of a PUT", method: "PUT", path: forwarding, bad: "_embedded",
			body: `{"activeSetting":"None","x":[{"_embedded":{"simultaneousRingSettings":{"target":"+19005551234"}}}]}`},
		{name: "_embedded in a link of a PUT", method: "PUT", path: forwarding, bad: "_embedded",
			body: `{"activeSetting":"None","_links":{"self":{"href":"/x","_embedded":{"simultaneousRingSettings":{"target":"+19005551234"}}}}}`},
		{name: "target in an embedded resource's unknown member", method: "PUT", path: forwarding, bad: "target",
			body: `{"activeSetting":"None","_embedded":{"simultaneousRingSettings":{"x":{"target":"+19005551234"}}}}`},
		{name: "to in the self link of a batch part", path: startOpsPath, bad: "to", batch: true,
			body: `{"to":"+14255551234","_links":{"self":{"href":"/x","to":"+19005551234"}}}`},
		{name: "_embedded in an unknown property of a batch part", method: "PUT", path: forwarding, bad: "_embedded", batch: true,
			body: `{"activeSetting":"None","x":{"_embedded":{"simultaneousRingSettings":{"target":"+19005551234"}}}}`},
		{name: "links, blanks and words pass", path: startOpsPath,
			body: `{"to":"tel:+14255551234","_links":{"self":{"href":"/x","title":"t","to":null},"customContent":{"href":"data:,x","phoneNumber":" "}},"x":{"target":"Contact","y":["+19005551234"]}}`},
		{name: "a PUT as served passes", method: "PUT", path: forwarding,
			body: `{"activeSetting":"SimultaneousRing","_links":{"self":{"href":"/x"}},"_embedded":{"simultaneousRingSettings":{"target":"Contact","ringDelay":5,"_links":{"self":{"href":"/y"},"contact":{"href":"/ucwa/v1/people/282","title":"t"}}}},"rel":"callForwardingSettings"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := e.sendBody(auth, tc.method, tc.path, "application/json", tc.body, tc.batch)
			if tc.bad == "" {
				assertDeliveredAsSent(t, resp, got, tc.body)
				return
			}
			if tc.bad == "_embedded" {
				assertRefusedUndelivered(t, resp, got, "", "DeserializationFailure", `An \"_embedded\" inside`, "line 1, column")
				return
			}
			assertRefusedUndelivered(t, resp, got, tc.bad, "ParameterValidationFailure", "where the edge does not judge it", "line 1, column")
		})
	}
}

// TestJSONUnreadLikeXMLSkipped: what JSON holds where the edge does not
// read (an unknown property's value, a link the operation does not take,
// a link's member other than href) is refused as what XML holds where
// the edge skips (a property list, an item, a link), each pair with 400
// DeserializationFailure (alone, or as a batch part), never reaching the
// pool: a link inside ("_links", as <link>), a .NET type hint ("$type",
// as xsi:type), a name twice (as an attribute twice). A pool that finds
// links wherever they stand would read an href the edge never judged,
// one honouring type hints builds the type the body chooses, and one
// reading a name twice reads the copy the edge did not look at. Content
// that holds none of them passes as sent, in both formats.
func TestJSONUnreadLikeXMLSkipped(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	const (
		in     = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><property name="to">tel:+14255551234</property>`
		to     = `{"to":"tel:+14255551234",`
		skipsX = "inside an element whose content the edge does not read"
	)
	for _, tc := range []struct {
		name, body string
		xml, batch bool
		want       []string // what the refusal says; nil: delivered as sent
	}{
		{name: "JSON: a link in an unknown property",
			body: to + `"x":{"_links":{"customContent":{"href":"data:,x"}}}}`,
			want: []string{`A \"_links\" inside the value of a property the operation does not take`}},
		{name: "XML: a link in a property list", xml: true,
			body: in + `<propertyList name="x"><link rel="customContent" href="data:,x"/></propertyList></input>`,
			want: []string{skipsX}},
		{name: "JSON: links in the operation's link", body: to + `"_links":{"customContent":{"href":"data:,x","_links":{"self":{"href":"/y"}}}}}`,
			want: []string{`A \"_links\" inside a link's member other than \"href\"`}},
		{name: "XML: a link in the operation's link", xml: true,
			body: in + `<link rel="customContent" href="data:,x"><link rel="self" href="/y"/></link></input>`,
			want: []string{skipsX}},
		{name: "JSON: a link in an unknown property of a batch part", batch: true,
			body: to + `"x":[{"_LINKS":{"customContent":{"href":"data:,x"}}}]}`,
			want: []string{`A \"_links\" inside the value of a property the operation does not take`}},
		{name: "JSON: a type hint in an unknown property",
			body: to + `"x":{"y":{"$type":"System.Windows.Data.ObjectDataProvider, PresentationFramework"}}}`,
			want: []string{"A member inside the value of a property the operation does not take is .NET metadata"}},
		{name: "XML: a type hint in a property list", xml: true,
			body: in + `<propertyList name="x"><item xsi:type="ObjectDataProvider">a</item></propertyList></input>`,
			want: []string{"XML Schema instance attribute (xsi:type)"}},
		{name: "JSON: a type hint in a link the operation does not take",
			body: to + `"_links":{"self":{"href":"/x","__type":"X:#Y"}}}`,
			want: []string{"A member inside a link the operation does not take is .NET metadata"}},
		{name: "JSON: a name twice in an unknown property",
			body: to + `"x":{"+19005551234":"a","+19005551234":"b"}}`,
			want: []string{"A member's name inside the value of a property the operation does not take appears twice"}},
		{name: "XML: an attribute twice in an item", xml: true,
			body: in + `<propertyList name="x"><item a="1" a="2">a</item></propertyList></input>`,
			want: []string{"twice"}},
		{name: "JSON: unread content without them passes",
			body: to + `"x":{"a":1,"b":[{"a":2},{"A":3}],"links":{"href":"/x"},"type":"$type"},"_links":{"self":{"href":"/x","title":"t"}}}`},
		{name: "XML: skipped content without them passes", xml: true,
			body: in + `<propertyList name="x"><item a="1" A="2">a</item><item>b</item></propertyList><link rel="self" href="/x"/></input>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			contentType := "application/json"
			if tc.xml {
				contentType = "application/xml"
			}
			resp, got := e.sendBody(auth, "", startOpsPath, contentType, tc.body, tc.batch)
			if tc.want == nil {
				assertDeliveredAsSent(t, resp, got, tc.body)
				return
			}
			assertRefusedUndelivered(t, resp, got, "", append([]string{"DeserializationFailure", "line 1, column"}, tc.want...)...)
		})
	}
}

// TestCookieNamedLikeDestination: a guarded request (alone, or a batch)
// whose Cookie names a phone destination of the table, in any letter
// case or folding onto it, is refused with 400 naming the destination,
// and never reaches the pool: ASP.NET's Request[name] reads a cookie of
// that name when the query and the form have none, so a pool reading its
// inputs so would ring the cookie's number, which the edge read as no
// input, after the judged to. Other cookies, and a destination's name
// with a blank value or one of its words, pass unchanged.
func TestCookieNamedLikeDestination(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	const body = `{"to":"sip:john@contoso.com"}`
	batch := batchBody("POST " + startOpsPath + " HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + body)
	for _, tc := range []struct {
		name, cookie, param string
		batch               bool
	}{
		{name: "phoneNumber", cookie: "phoneNumber=tel:+19005551234", param: "phoneNumber"},
		{name: "another letter case, among others", cookie: "cwt=abc; TO=tel:+19005551234", param: "to"},
		{name: "after a comma", cookie: "x=1,Target=sip:+19005551234@gw;user=phone", param: "target"},
		{name: "a zero-width space in the name", cookie: "phone\u200bNumber=+19005551234", param: "phoneNumber"},
		{name: "a batch's own cookie", cookie: "number=+19005551234", param: "number", batch: true},
		{name: "other cookies, a blank destination and a word pass", cookie: "cwt=abc; ASP.NET_SessionId=x; to=; target=Contact"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := testkit.Request{URL: startOpsPath, ContentType: "application/json", Body: body,
				Header: http.Header{"Authorization": {auth}, "Cookie": {tc.cookie}}}
			if tc.batch {
				req.URL, req.ContentType, req.Body = opsApp+"/batch", batchType, batch
			}
			before := len(e.pool.Received())
			resp := e.send(req)
			got := e.pool.Received()[before:]
			if tc.param == "" {
				if resp.Status != http.StatusCreated || len(got) != 1 || got[0].Body != body || got[0].Header.Get("Cookie") != tc.cookie {
					t.Fatalf("status %d (%s), the pool got %+v; want 201 and the request as sent", resp.Status, resp.Body, got)
				}
				return
			}
			if resp.Status != http.StatusBadRequest || len(got) != 0 {
				t.Fatalf("status %d (%s), the pool got %d requests; want 400 and none", resp.Status, resp.Body, len(got))
			}
			assertUCWAError(t, resp, "BadRequest", "ParameterValidationFailure", []string{tc.param}, false)
			if strings.Contains(resp.Body, "9005551234") {
				t.Errorf("the refusal shows the value: %s", resp.Body)
			}
		})
	}
}

// TestXMLElementNamedLikeDestination: an element named like a phone
// destination where the edge does not read it (in an item, a link, an
// embedded resource or its property) is refused 400 naming the
// destination, never the number, and nothing is delivered; directly
// inside an embedded resource too (<target> in a PUT's
// simultaneousRingSettings, or an element whose name or rel names one,
// <item name="target">).
func TestXMLElementNamedLikeDestination(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	const ns = `xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"`
	const forwarding = opsApp + "/me/callForwardingSettings"
	for _, tc := range []struct {
		name, method, path, body, param string
		batch                           bool
	}{
		{name: "phoneNumber in an item", path: startOpsPath, param: "phoneNumber",
			body: `<input ` + ns + `><property name="to">+14255551234</property><propertyList name="x"><item><phoneNumber>+19005551234</phoneNumber></item></propertyList></input>`},
		{name: "to in a link, another letter case", path: startOpsPath, param: "to",
			body: `<input ` + ns + `><property name="to">sip:john@contoso.com</property><link rel="x" href="/y"><TO>tel:+19005551234</TO></link></input>`},
		{name: "target in a link, in another namespace", path: immediateForwardPath, param: "target",
			body: `<input ` + ns + `><property name="target">+14255551234</property><link rel="self" href="/x"><p:target xmlns:p="urn:p">+19005551234</p:target></link></input>`},
		{name: "target in an embedded resource", method: "PUT", path: forwarding, param: "target",
			body: `<resource ` + ns + ` rel="callForwardingSettings" href="/x"><resource rel="simultaneousRingSettings" href="/y"><target>+19005551234</target></resource></resource>`},
		{name: "an item named target in an embedded resource", method: "PUT", path: forwarding, param: "target",
			body: `<resource ` + ns + ` rel="callForwardingSettings" href="/x"><resource rel="simultaneousRingSettings" href="/y"><item name="target">+19005551234</item></resource></resource>`},
		{name: "an element whose rel is phoneNumber in an embedded resource, in another namespace and letter case", method: "PUT", path: forwarding, param: "phoneNumber",
			body: `<resource ` + ns + ` rel="callForwardingSettings" href="/x"><resource rel="simultaneousRingSettings" href="/y"><x p:REL="PhoneNumber" xmlns:p="urn:p">+19005551234</x></resource></resource>`},
		{name: "number in an embedded resource's property", method: "PUT", path: forwarding, param: "number",
			body: `<resource ` + ns + ` rel="callForwardingSettings" href="/x"><resource rel="simultaneousRingSettings" href="/y"><property name="x"><number>+19005551234</number></property></resource></resource>`},
		{name: "phoneNumber in an item of a batch part", path: startOpsPath, param: "phoneNumber", batch: true,
			body: `<input ` + ns + `><property name="to">+14255551234</property><propertyList name="x"><item><phoneNumber>+19005551234</phoneNumber></item></propertyList></input>`},
		{name: "other elements pass", path: startOpsPath,
			body: `<input ` + ns + `><property name="to">sip:john@contoso.com</property><link rel="x" href="/y"><title>t</title></link></input>`},
		{name: "other names pass in an embedded resource", method: "PUT", path: forwarding,
			body: `<resource ` + ns + ` rel="callForwardingSettings" href="/x"><resource rel="simultaneousRingSettings" href="/y"><item name="x">t</item><link rel="contact" href="/ucwa/v1/applications/192/people/282"/><property name="target">None</property></resource></resource>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := e.sendBody(auth, tc.method, tc.path, "application/xml", tc.body, tc.batch)
			if tc.param == "" {
				assertDeliveredAsSent(t, resp, got, tc.body)
				return
			}
			assertRefusedUndelivered(t, resp, got, tc.param, "ParameterValidationFailure")
		})
	}
}

// sendBody sends body to path as contentType with the Authorization auth
// (a PUT with If-Match when method is PUT), alone or as a batch's part,
// and returns the answer and what the pool received of it.
func (e guardEdge) sendBody(auth, method, path, contentType, body string, batch bool) (testkit.Response, []testkit.Received) {
	before := len(e.pool.Received())
	req := testkit.Request{Method: method, URL: path, ContentType: contentType, Body: body,
		Header: http.Header{"Authorization": {auth}}}
	if method == "PUT" {
		req.Header.Set("If-Match", `"1"`)
	}
	if batch {
		partMethod, header := "POST", ""
		if method == "PUT" {
			partMethod, header = "PUT", "If-Match: \"1\"\r\n"
		}
		req.Method, req.URL, req.ContentType = "", opsApp+"/batch", batchType
		req.Body = batchBody(partMethod + " " + path + " HTTP/1.1\r\nContent-Type: " + contentType + "\r\n" + header + "\r\n" + body)
		req.Header.Del("If-Match")
	}
	resp := e.send(req)
	return resp, e.pool.Received()[before:]
}

// assertDeliveredAsSent fails unless resp is a 201 to the one request
// the pool got, with body as sent.
func assertDeliveredAsSent(t *testing.T, resp testkit.Response, got []testkit.Received, body string) {
	t.Helper()
	if resp.Status != http.StatusCreated || len(got) != 1 || got[0].Body != body {
		t.Fatalf("status %d (%s), the pool got %+v; want 201 and the body as sent", resp.Status, resp.Body, got)
	}
}

// assertRefusedUndelivered fails unless resp is a 400 that reached no
// pool, names param (when not "") as its XML or JSON error body does (a
// batch's refusal is JSON: the batch is no XML body), holds every text of
// want, and shows no number.
func assertRefusedUndelivered(t *testing.T, resp testkit.Response, got []testkit.Received, param string, want ...string) {
	t.Helper()
	if resp.Status != http.StatusBadRequest || len(got) != 0 {
		t.Fatalf("status %d (%s), the pool got %d requests; want 400 and none", resp.Status, resp.Body, len(got))
	}
	if param != "" && !strings.Contains(resp.Body, `<property name="`+param+`">`) && !strings.Contains(resp.Body, `{"name":"`+param+`"`) {
		t.Fatalf("the refusal does not name %s: %s", param, resp.Body)
	}
	for _, w := range want {
		if !strings.Contains(resp.Body, w) {
			t.Fatalf("the refusal lacks %q: %s", w, resp.Body)
		}
	}
	if strings.Contains(resp.Body, "9005551234") {
		t.Fatalf("the refusal shows the number: %s", resp.Body)
	}
}

// TestXMLDeclarationEncoding: an XML body whose declaration encoding/xml
// reads otherwise than XML does (white space around the "=" of encoding
// = "utf-7", which it passes over, reading the body as UTF-8) is refused
// with 400 DeserializationFailure (alone, or as a batch part), and never
// reaches the pool: a .NET XmlReader reading the body's bytes honours the
// declaration, and in UTF-7 the subject the edge judged as text is
// markup holding a phoneNumber of +1900, which the pool would ring. A
// declaration written so for UTF-8 passes as sent.
func TestXMLDeclarationEncoding(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	const in = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">sip:john@contoso.com</property>`
	// In UTF-7: </property><property name="phoneNumber">+19005551234</property><property name="x">
	const hidden = `<property name="subject">+ADw-/property+AD4APA-property name+AD0AIg-phoneNumber+ACIAPg-+-19005551234+ADw-/property+AD4APA-property name+AD0AIg-x+ACIAPg-</property></input>`
	for _, tc := range []struct {
		name, body  string
		batch, pass bool
	}{
		{name: "UTF-7 declared with spaces around the =", body: `<?xml version="1.0" encoding = "utf-7"?>` + in + hidden},
		{name: "UTF-7 declared with a tab after the =", body: "<?xml version='1.0' encoding=\t'UTF-7'?>" + in + hidden},
		{name: "UTF-7 declared in a batch part", batch: true, body: `<?xml version="1.0" encoding = "utf-7"?>` + in + hidden},
		{name: "UTF-8 declared with spaces around the = passes", pass: true,
			body: `<?xml version = "1.0" encoding = "utf-8" standalone = "yes" ?>` + in + `<property name="subject">+1 is a plus</property></input>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := e.sendBody(auth, "", startOpsPath, "application/xml", tc.body, tc.batch)
			if tc.pass {
				assertDeliveredAsSent(t, resp, got, tc.body)
				return
			}
			assertRefusedUndelivered(t, resp, got, "", "DeserializationFailure", "declaration")
		})
	}
}

// TestXMLEmbeddedSplitText: a PUT callForwardingSettings whose embedded
// resource has a property its rules read (rel, ringDelay, target) with
// text split by a comment or a CDATA section is refused with 400
// DeserializationFailure (alone, or as a batch part), and never reaches
// the pool: the edge judges the joined text, a pool reading up to the
// first comment (XmlReader.ReadString) reads rel unansweredCallSettings,
// whose ringDelay of 1 the edge never held to 5 to 60, or a ringDelay of
// 1 where the edge judged 10. Text in one run, and a split property the
// rules do not read, pass as sent.
func TestXMLEmbeddedSplitText(t *testing.T) {
	assertEmbeddedXMLRefused(t, "is split by a comment", []embeddedXMLCase{
		{name: "rel split by a comment", body: embeddedXMLOpen + `<resource href="/y"><property name="rel">unansweredCallSettings<!---->x</property><property name="ringDelay">1</property></resource></resource>`},
		{name: "ringDelay split by a comment", body: embeddedXMLOpen + `<resource rel="unansweredCallSettings" href="/y"><property name="ringDelay">1<!---->0</property></resource></resource>`},
		{name: "ringDelay split by a CDATA section in a batch part", batch: true, body: embeddedXMLOpen + `<resource rel="unansweredCallSettings" href="/y"><property name="ringDelay">1<![CDATA[0]]></property></resource></resource>`},
		{name: "one run passes", pass: true, body: embeddedXMLOpen + `<resource rel="unansweredCallSettings" href="/y"><!-- c --><property name="ringDelay">10</property><property name="x">a<!---->b</property></resource></resource>`},
	})
}

// TestXMLEmbeddedValueAttribute: a PUT callForwardingSettings whose
// embedded resource has a property its rules read (rel, ringDelay) with
// an attribute beside its name (value="1") is refused with 400
// DeserializationFailure (alone, or as a batch part), and never reaches
// the pool, as such a property at the top level is: the edge judges the
// text, a pool reading the attribute reads a ringDelay of 1 in
// unansweredCallSettings, which the edge never held to 5 to 60, or names
// the resource by a rel the edge never read. Another property's
// attribute passes as sent.
func TestXMLEmbeddedValueAttribute(t *testing.T) {
	assertEmbeddedXMLRefused(t, "has the attribute", []embeddedXMLCase{
		{name: "ringDelay in a value attribute", body: embeddedXMLOpen + `<resource rel="unansweredCallSettings" href="/y"><property name="ringDelay" value="1">10</property></resource></resource>`},
		{name: "rel in a value attribute", body: embeddedXMLOpen + `<resource href="/y"><property name="rel" value="unansweredCallSettings"/><property name="ringDelay">1</property></resource></resource>`},
		{name: "ringDelay in a value attribute in a batch part", batch: true, body: embeddedXMLOpen + `<resource rel="unansweredCallSettings" href="/y"><property name="ringDelay" value="1">10</property></resource></resource>`},
		{name: "another property's attribute passes", pass: true, body: embeddedXMLOpen + `<resource rel="unansweredCallSettings" href="/y"><property name="ringDelay">10</property><property name="x" value="1">a</property></resource></resource>`},
	})
}

// embeddedXMLOpen opens an XML PUT callForwardingSettings, whose
// embedded resources a case adds.
const embeddedXMLOpen = `<resource xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa" rel="callForwardingSettings" href="/x"><property name="unansweredCallHandling">Enabled</property>`

// embeddedXMLCase is a PUT callForwardingSettings body, sent alone or as
// a batch part, that is refused, or passes as sent.
type embeddedXMLCase struct {
	name, body  string
	batch, pass bool
}

// assertEmbeddedXMLRefused sends each case through a guard edge: one
// that does not pass is refused 400 DeserializationFailure with message
// in its answer, and not delivered.
func assertEmbeddedXMLRefused(t *testing.T, message string, cases []embeddedXMLCase) {
	t.Helper()
	e := startGuardEdge(t, ``)
	auth := callerBearer(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := e.sendBody(auth, "PUT", opsApp+"/me/callForwardingSettings", "application/xml", tc.body, tc.batch)
			if tc.pass {
				assertDeliveredAsSent(t, resp, got, tc.body)
				return
			}
			assertRefusedUndelivered(t, resp, got, "", "DeserializationFailure", message)
		})
	}
}

// TestContentTypeCharsetReadOtherwise: a Content-Type whose charset
// mime.ParseMediaType reads as UTF-8 but .NET otherwise (System.Web's
// HttpRequest.ContentEncoding takes the first charset=, and ignores RFC
// 2231's charset*= that Go decodes and lets win) is refused with 415
// (alone, or as a batch part's), and never reaches the pool: a pool
// decoding the body as that UTF-7 reads "+ADw-" as "<" ("+ACI-" as a
// quote in JSON), a phoneNumber of +1900 in the subject the edge judged
// as text. A plain charset=utf-8 passes as sent.
func TestContentTypeCharsetReadOtherwise(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	const xmlBody = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">sip:john@contoso.com</property>` +
		`<property name="subject">+ADw-/property+AD4APA-property name+AD0AIg-phoneNumber+ACIAPg-+-19005551234+ADw-/property+AD4APA-property name+AD0AIg-x+ACIAPg-</property></input>`
	const jsonBody = `{"to":"sip:john@contoso.com","subject":"+ACI-,+ACI-phoneNumber+ACI-:+ACI-+-19005551234+ACI-,+ACI-x+ACI-:+ACI-"}`
	for _, tc := range []struct {
		name, contentType, body string
		batch, pass             bool
	}{
		{name: "XML, charset*= beside charset=utf-7", contentType: "application/xml; charset*=utf-8'en'utf-8; charset=utf-7", body: xmlBody},
		{name: "XML, continued charset* beside charset=utf-7", contentType: "application/vnd.microsoft.com.ucwa+xml; charset*0=utf-; charset*1=8; charset=utf-7", body: xmlBody},
		{name: "XML, charset=utf-7 inside a quoted value", contentType: `application/xml; x="; charset=utf-7"`, body: xmlBody},
		{name: "JSON, charset*= beside charset=utf-7", contentType: "application/json; charset*=utf-8'en'utf-8; charset=utf-7", body: jsonBody},
		{name: "XML in a batch part", batch: true, contentType: "application/xml; charset*=utf-8'en'utf-8; charset=utf-7", body: xmlBody},
		{name: "charset=utf-8 passes", pass: true, contentType: "application/xml; charset=utf-8; x=1", body: xmlBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := e.sendBody(auth, "", startOpsPath, tc.contentType, tc.body, tc.batch)
			if tc.pass {
				assertDeliveredAsSent(t, resp, got, tc.body)
				return
			}
			if resp.Status != http.StatusUnsupportedMediaType || len(got) != 0 || !strings.Contains(resp.Body, "UnsupportedMediaType") {
				t.Fatalf("status %d (%s), the pool got %d requests; want 415 UnsupportedMediaType and none", resp.Status, resp.Body, len(got))
			}
		})
	}
}

// TestXMLSerializationAttributes: an XML body with an attribute in
// .NET's serialization namespace (z:Ref, z:Id), which a
// DataContractSerializer honours by reading another element in the
// element's place, is refused with 400 DeserializationFailure (alone, or
// as a batch part), and never reaches the pool, as JSON's "$ref" is. The
// prefix declared alone passes as sent.
func TestXMLSerializationAttributes(t *testing.T) {
	e := startGuardEdge(t, ``)
	auth := callerBearer(t)
	const open = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa" xmlns:z="http://schemas.microsoft.com/2003/10/Serialization/"><property name="to">sip:john@contoso.com</property>`
	const refs = `<link rel="customContent" href="data:,a" z:Ref="i1"/><propertyList name="x"><item z:Id="i1" href="data:,b"/></propertyList></input>`
	for _, tc := range []struct {
		name, body  string
		batch, pass bool
	}{
		{name: "z:Ref on the link the edge reads", body: open + refs},
		{name: "z:Ref in a batch part", batch: true, body: open + refs},
		{name: "the prefix declared alone passes", pass: true, body: open + `<link rel="customContent" href="data:,a"/></input>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := e.sendBody(auth, "", startOpsPath, "application/xml", tc.body, tc.batch)
			if tc.pass {
				assertDeliveredAsSent(t, resp, got, tc.body)
				return
			}
			assertRefusedUndelivered(t, resp, got, "", "DeserializationFailure", ".NET serialization attribute")
		})
	}
}
