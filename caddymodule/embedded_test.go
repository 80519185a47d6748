package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// The XML namespace attribute and the callForwardingSettings path of the
// tests of destinations where the edge does not judge them.
const (
	xmlnsUCWA              = `xmlns="` + ucwa.Namespace + `"`
	forwardingSettingsPath = opsApp + "/me/callForwardingSettings"
)

// startDenyEdge starts an edge that denies +1900, and returns builders
// of PUT (with If-Match) and POST requests with a token of every scope.
func startDenyEdge(t *testing.T) (e opsEdge, put, post func(path, contentType, body string) testkit.Request) {
	e = startOpsEdge(t, "INFO", "destinations {\n\t\t\tdeny +1900\n\t\t}")
	good := bearerFor(t, allScopes...)
	put = func(path, contentType, body string) testkit.Request {
		return testkit.Request{Method: http.MethodPut, URL: path, ContentType: contentType, Body: body,
			Header: http.Header{"Authorization": {good}, "If-Match": {"1"}}}
	}
	post = func(path, contentType, body string) testkit.Request {
		return testkit.Request{URL: path, ContentType: contentType, Body: body, Header: http.Header{"Authorization": {good}}}
	}
	return e, put, post
}

// TestEmbeddedDestinations: an embedded resource (JSON "_embedded", a
// nested XML <resource>) is another resource's representation, which the
// edge judges by no operation's rules; a property or link in it named like
// a phone destination (phoneNumber, to, target, number, delegator) is
// refused 400 naming the property, unless its value is one of the words
// the table's properties of that name take (a target of Contact): a pool
// that reads embedded resources (callForwardingSettings embeds the
// forwarding settings whose target it forwards calls to) would otherwise
// store a number the edge never judged. A representation echoed as a
// pool serves it passes byte for byte.
func TestEmbeddedDestinations(t *testing.T) {
	e, put, post := startDenyEdge(t)
	spa := opsApp + "/communication/startPhoneAudio"
	for _, tc := range []struct {
		name  string
		req   testkit.Request
		param string // "": accepted and forwarded byte for byte
	}{
		{name: "JSON forwarding target in callForwardingSettings", param: "target",
			req: put(forwardingSettingsPath, "application/json", `{"activeSetting":"SimultaneousRing","_embedded":{"simultaneousRingSettings":{"ringDelay":0,"target":"tel:+19005551234"}}}`)},
		{name: "JSON immediate forward target", param: "target",
			req: put(forwardingSettingsPath, "application/json", `{"activeSetting":"ImmediateForward","_embedded":{"immediateForwardSettings":{"target":"+1 900 555 1234"}}}`)},
		{name: "JSON target as an array", param: "target",
			req: put(forwardingSettingsPath, "application/json", `{"_embedded":{"unansweredCallSettings":{"target":["tel:+19005551234"]}}}`)},
		{name: "JSON phoneNumber in communication", param: "phoneNumber",
			req: put(opsApp+"/communication", "application/json", `{"_embedded":{"x":{"PhoneNumber":"tel:+19005551234"}}}`)},
		{name: "JSON a link inside _embedded", param: "phoneNumber",
			req: put(opsApp+"/communication", "application/json", `{"_embedded":{"x":{"_links":{"phoneNumber":{"href":"tel:+19005551234"}}}}}`)},
		{name: "JSON nested _embedded, array of resources", param: "number",
			req: put(opsApp+"/communication", "application/json", `{"_embedded":{"x":[{"_embedded":{"y":{"number\t":"+19005551234"}}}]}}`)},
		{name: "JSON _embedded in an input", param: "to",
			req: post(spa, "application/json", `{"to":"sip:a@contoso.com","_embedded":{"x":{"to":"tel:+19005551234"}}}`)},
		{name: "XML nested resource", param: "target",
			req: put(forwardingSettingsPath, "application/xml", `<resource `+xmlnsUCWA+`><property name="activeSetting">SimultaneousRing</property><resource rel="simultaneousRingSettings" href="/x"><property name="target">tel:+19005551234</property></resource></resource>`)},
		{name: "XML link in a nested resource", param: "phoneNumber",
			req: put(opsApp+"/communication", "application/xml", `<resource `+xmlnsUCWA+`><resource rel="x"><link rel="phoneNumber" href="tel:+19005551234"/></resource></resource>`)},
		{name: "XML propertyList in a resource nested twice", param: "target",
			req: put(forwardingSettingsPath, "application/xml", `<resource `+xmlnsUCWA+`><resource rel="x"><resource rel="y"><propertyList name="TARGET"><item>tel:+19005551234</item></propertyList></resource></resource></resource>`)},
		{name: "in a batch", param: "target",
			req: post(opsApp+"/batch", batchType, batchBody("PUT "+forwardingSettingsPath+" HTTP/1.1\r\nIf-Match: 1\r\nContent-Type: application/json\r\n\r\n"+
				`{"_embedded":{"unansweredCallSettings":{"target":"tel:+19005551234"}}}`))},

		{name: "JSON representation echoed",
			req: put(forwardingSettingsPath, "application/json", `{"activeSetting":"SimultaneousRing","_links":{"self":{"href":"/x"}},"_embedded":{"immediateForwardSettings":{"target":"Voicemail","_links":{"self":{"href":"/y"},"immediateForwardToContact":{"href":"/z"}}},"simultaneousRingSettings":{"ringDelay":0,"target":"contact"},"unansweredCallSettings":{"ringDelay":20,"target":null}}}`)},
		{name: "XML representation echoed",
			req: put(forwardingSettingsPath, "application/xml", `<resource `+xmlnsUCWA+`><property name="activeSetting">None</property><resource rel="unansweredCallSettings" href="/x"><link rel="self" href="/x"/><property name="target"> Voicemail </property><property name="ringDelay">20</property></resource></resource>`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.sendGuarded(t, tc.req, tc.param)
			if tc.param == "" {
				return
			}
			assertUCWAError(t, resp, "BadRequest", "ParameterValidationFailure", []string{tc.param}, strings.Contains(tc.req.ContentType, "xml"))
			for _, leak := range []string{"900", "tel:"} {
				if strings.Contains(resp.Body, leak) {
					t.Errorf("the answer echoes %q: %s", leak, resp.Body)
				}
			}
			if !strings.Contains(resp.Body, "embedded") {
				t.Errorf("the answer does not say the property is embedded: %s", resp.Body)
			}
		})
	}
}

// TestXMLAttributeSpelledOtherwise: a property's name, a link's rel or
// href given again in an attribute spelled otherwise (another letter case,
// a namespace prefix, bound to the UCWA namespace or another) is refused
// 400 naming the property it names: the edge reads only name, rel and
// href as XML spells them, while a pool reading attributes by their local
// name, or in any letter case, might take the other for the one it reads
// (p:name="phoneNumber" before name="x": a number nobody judged).
func TestXMLAttributeSpelledOtherwise(t *testing.T) {
	e := startOpsEdge(t, "INFO", "destinations {\n\t\t\tdeny +1900\n\t\t}")
	good := bearerFor(t, allScopes...)
	const input = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa" xmlns:p="http://schemas.microsoft.com/rtc/2012/03/ucwa" xmlns:q="urn:q"><property name="to">sip:a@contoso.com</property>`
	spa := opsApp + "/communication/startPhoneAudio"
	for _, tc := range []struct {
		name, path, method, body, param string
	}{
		{"a prefix bound to the UCWA namespace", spa, "POST", input + `<property p:name="phoneNumber" name="x">+19005551234</property></input>`, "phoneNumber"},
		{"another namespace", spa, "POST", input + `<property q:name="phoneNumber" name="x">+19005551234</property></input>`, "phoneNumber"},
		{"another letter case", spa, "POST", input + `<property NAME="phoneNumber" name="x">+19005551234</property></input>`, "phoneNumber"},
		{"a name folding onto a property's", spa, "POST", input + `<property q:name="phone&#x200B;Ｎｕｍｂｅｒ" name="x">+19005551234</property></input>`, "phoneNumber"},
		{"a propertyList", spa, "POST", input + `<propertyList Name="phoneNumber" name="x"><item>+19005551234</item></propertyList></input>`, "phoneNumber"},
		{"a link's rel", spa, "POST", input + `<link rel="self" q:rel="phoneNumber" href="tel:+19005551234"/></input>`, "phoneNumber"},
		{"a link's href", spa, "POST", input + `<link rel="customContent" href="data:,x" HREF="data:text/plain,y"/></input>`, "customContent"},
		{"in a PUT", opsApp + "/communication", "PUT", `<resource xmlns:p="urn:p"><property name="x" p:name="PhoneNumber">+19005551234</property></resource>`, "phoneNumber"},
		{"an attribute of no property's name", spa, "POST", input + `<propertyList q:name="self" name="x"><item>1</item></propertyList><link rel="self" REL="other" href="/x"/></input>`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.sendGuarded(t, testkit.Request{Method: tc.method, URL: tc.path, ContentType: "application/xml", Body: tc.body,
				Header: http.Header{"Authorization": {good}, "If-Match": {"1"}}}, tc.param)
			if tc.param == "" {
				return
			}
			assertUCWAError(t, resp, "BadRequest", "ParameterValidationFailure", nil, true)
			if !strings.Contains(resp.Body, `<property name="`+tc.param+`">`) || strings.Contains(resp.Body, "900") {
				t.Errorf("the answer does not name %s alone, or echoes the value: %s", tc.param, resp.Body)
			}
		})
	}
}

// TestStrayDestinations: a property, property list, link or query
// parameter named like a phone destination of the table (phoneNumber,
// to, target, number, delegator) that the operation does not take is
// refused 400 naming it, and nothing reaches the pool, unless its value
// is null, blank or a word the table's properties of that name take (a
// target of Contact): the edge judges it by none of the operation's
// rules, while a pool reading the resource might store it (a target in
// callForwardingSettings, a number in communication). The operation's own
// properties keep their own rules.
func TestStrayDestinations(t *testing.T) {
	e, put, post := startDenyEdge(t)
	for _, tc := range []struct {
		name  string
		req   testkit.Request
		param string // "": accepted and forwarded byte for byte
	}{
		{name: "JSON target in callForwardingSettings", param: "target",
			req: put(forwardingSettingsPath, "application/json", `{"activeSetting":"ImmediateForward","target":"tel:+19005551234"}`)},
		{name: "JSON target in another letter case", param: "target",
			req: put(forwardingSettingsPath, "application/json", `{"activeSetting":"ImmediateForward","Target":"+1 900 555 1234"}`)},
		{name: "JSON number in communication", param: "number",
			req: put(opsApp+"/communication", "application/json", `{"phoneNumber":"4255551234","number":"+19005551234"}`)},
		{name: "JSON delegator in startAudio", param: "delegator",
			req: post(opsApp+"/communication/startAudio", "application/json", `{"to":"sip:a@contoso.com","delegator":"tel:+19005551234"}`)},
		{name: "JSON link named target", param: "target",
			req: put(forwardingSettingsPath, "application/json", `{"_links":{"target":{"href":"tel:+19005551234"}}}`)},
		{name: "XML target in callForwardingSettings", param: "target",
			req: put(forwardingSettingsPath, "application/xml", `<resource `+xmlnsUCWA+`><property name="activeSetting">ImmediateForward</property><property name="target">tel:+19005551234</property></resource>`)},
		{name: "XML number list in communication", param: "number",
			req: put(opsApp+"/communication", "application/xml", `<resource `+xmlnsUCWA+`><propertyList name="number"><item>+19005551234</item></propertyList></resource>`)},
		{name: "query target in callForwardingSettings", param: "target",
			req: put(forwardingSettingsPath+"?target=tel:%2B19005551234", "application/json", `{"activeSetting":"ImmediateForward"}`)},
		{name: "query phoneNumber in startVideo", param: "phoneNumber",
			req: post(opsApp+"/communication/startVideo?x=1&PhoneNumber=%2B19005551234", "application/json", `{"to":"sip:a@contoso.com"}`)},
		{name: "in a batch", param: "target",
			req: post(opsApp+"/batch", batchType, batchBody("PUT "+forwardingSettingsPath+" HTTP/1.1\r\nIf-Match: 1\r\nContent-Type: application/json\r\n\r\n"+
				`{"target":"tel:+19005551234"}`))},

		{name: "JSON target Contact in callForwardingSettings",
			req: put(forwardingSettingsPath, "application/json", `{"activeSetting":"SimultaneousRing","target":"Contact","phoneNumber":null,"_links":{"self":{"href":"/x"}}}`)},
		{name: "XML target Voicemail in callForwardingSettings",
			req: put(forwardingSettingsPath, "application/xml", `<resource `+xmlnsUCWA+`><property name="activeSetting">None</property><property name="target"> Voicemail </property></resource>`)},
		{name: "query target Contact in callForwardingSettings",
			req: put(forwardingSettingsPath+"?target=Contact", "application/json", `{"activeSetting":"None"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.sendGuarded(t, tc.req, tc.param)
			if tc.param == "" {
				return
			}
			assertUCWAError(t, resp, "BadRequest", "ParameterValidationFailure", []string{tc.param}, strings.Contains(tc.req.ContentType, "xml"))
			for _, leak := range []string{"900", "tel:", "Target"} {
				if strings.Contains(resp.Body, leak) {
					t.Errorf("the answer echoes %q: %s", leak, resp.Body)
				}
			}
			if !strings.Contains(resp.Body, "is not an input of") {
				t.Errorf("the answer does not say the operation does not take it: %s", resp.Body)
			}
		})
	}
}

// sendGuarded sends req to e and checks what came of it: with param "",
// a 201 and the body delivered byte for byte; otherwise a 400 and
// nothing delivered. It returns the answer.
func (e opsEdge) sendGuarded(t *testing.T, req testkit.Request, param string) testkit.Response {
	t.Helper()
	before := len(e.pool.Received())
	resp := e.send(req)
	got := e.pool.Received()[before:]
	switch {
	case param == "" && (resp.Status != http.StatusCreated || len(got) != 1 || got[0].Body != req.Body):
		t.Fatalf("status %d (%s), the pool got %+v; want the body byte for byte", resp.Status, resp.Body, got)
	case param != "" && (resp.Status != http.StatusBadRequest || len(got) != 0):
		t.Fatalf("status %d (%s), the pool got %d requests; want 400 and none", resp.Status, resp.Body, len(got))
	}
	return resp
}

// TestEmbeddedSettingsRules: a settings resource embedded in PUT
// callForwardingSettings (unansweredCallSettings, simultaneousRingSettings,
// named by its key in "_embedded", its rel member or property, or the rel
// attribute of a nested XML <resource>; an XML rel property holding an
// element, whose text a pool reading it whole takes for the rel, names
// both) is held to the rules of its own PUT: a ringDelay that PUT unansweredCallSettings refuses is refused
// there too, 400 naming it, and nothing reaches the pool; the values a
// pool serves pass byte for byte.
func TestEmbeddedSettingsRules(t *testing.T) {
	e, put, post := startDenyEdge(t)
	for _, tc := range []struct {
		name  string
		req   testkit.Request
		param string // "": accepted and forwarded byte for byte
	}{
		{name: "on its own resource", param: "ringDelay",
			req: put(opsApp+"/me/callForwardingSettings/unansweredCallSettings", "application/json", `{"ringDelay":99,"target":"Voicemail"}`)},
		{name: "JSON embedded", param: "ringDelay",
			req: put(forwardingSettingsPath, "application/json", `{"unansweredCallHandling":"Enabled","_embedded":{"unansweredCallSettings":{"rel":"unansweredCallSettings","ringDelay":99,"target":"Voicemail"}}}`)},
		{name: "JSON named by its rel in an array", param: "ringDelay",
			req: put(forwardingSettingsPath, "application/json", `{"_embedded":[{"rel":"unansweredCallSettings","ringDelay":2}]}`)},
		{name: "JSON an enum value of another resource", param: "target",
			req: put(forwardingSettingsPath, "application/json", `{"_embedded":{"unansweredCallSettings":{"target":"Team"}}}`)},
		{name: "XML nested resource", param: "ringDelay",
			req: put(forwardingSettingsPath, "application/xml", `<resource `+xmlnsUCWA+`><resource rel="unansweredCallSettings" href="/x"><property name="ringDelay">99</property></resource></resource>`)},
		{name: "XML a rel holding an element", param: "ringDelay",
			req: put(forwardingSettingsPath, "application/xml", `<resource `+xmlnsUCWA+`><resource href="/x"><property name="rel">unansweredCallSettings<b/></property><property name="ringDelay">1</property></resource></resource>`)},
		{name: "XML a rel's text inside an element", param: "ringDelay",
			req: put(forwardingSettingsPath, "application/xml", `<resource `+xmlnsUCWA+`><resource href="/x"><property name="rel"><b>unansweredCallSettings</b></property><property name="ringDelay">1</property></resource></resource>`)},
		{name: "in a batch", param: "ringDelay",
			req: post(opsApp+"/batch", batchType, batchBody("PUT "+forwardingSettingsPath+" HTTP/1.1\r\nIf-Match: 1\r\nContent-Type: application/json\r\n\r\n"+
				`{"_embedded":{"unansweredCallSettings":{"ringDelay":-1}}}`))},

		{name: "JSON a ringDelay of 0 where simultaneous ring takes it",
			req: put(forwardingSettingsPath, "application/json", `{"_embedded":{"simultaneousRingSettings":{"rel":"simultaneousRingSettings","ringDelay":0,"target":"Team"},"unansweredCallSettings":{"rel":"unansweredCallSettings","ringDelay":5,"target":"None"}}}`)},
		{name: "XML as a pool serves it",
			req: put(forwardingSettingsPath, "application/xml", `<resource `+xmlnsUCWA+`><resource rel="simultaneousRingSettings" href="/x"><property name="rel">simultaneousRingSettings</property><property name="ringDelay">0</property><property name="target">None</property></resource><resource rel="unansweredCallSettings" href="/y"><property name="ringDelay">60</property></resource></resource>`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.sendGuarded(t, tc.req, tc.param)
			if tc.param == "" {
				return
			}
			assertUCWAError(t, resp, "BadRequest", "ParameterValidationFailure", []string{tc.param}, strings.Contains(tc.req.ContentType, "xml"))
			if tc.name != "on its own resource" && !strings.Contains(resp.Body, "embedded") {
				t.Errorf("the answer does not say the property is embedded: %s", resp.Body)
			}
		})
	}
}

// TestXMLNestedTooDeeply: an XML body nesting elements deeper than a JSON
// body may nest (64 levels from the root) is refused 400
// DeserializationFailure, saying so, and nothing reaches the pool, with
// max_body_size raised far above such a body, in a batch too; a body
// nested to the limit passes byte for byte. Nested <resource> elements of
// a PUT are read a call a level: unbounded, a body of a few million of
// them (within the 1 GiB max_body_size allows) would overflow the
// goroutine's stack, a fatal error that ends the whole process.
func TestXMLNestedTooDeeply(t *testing.T) {
	e := startOpsEdge(t, "ERROR", "max_body_size 16MiB")
	good := bearerFor(t, allScopes...)
	const limit = jsonNestingLimit
	nested := func(n int) string { // n levels, the root's included
		return `<resource ` + xmlnsUCWA + ` rel="communication" href="/x">` + strings.Repeat(`<resource>`, n-1) + strings.Repeat(`</resource>`, n-1) + `</resource>`
	}
	put := testkit.Request{Method: http.MethodPut, URL: opsApp + "/communication", ContentType: "application/xml",
		Header: http.Header{"Authorization": {good}, "If-Match": {"1"}}}
	for _, tc := range []struct {
		name, body string
		batch      bool
		refused    bool
	}{
		{name: "nested to the limit", body: nested(limit)},
		{name: "one level past the limit", body: nested(limit + 1), refused: true},
		{name: "200,000 levels deep", body: nested(200_000), refused: true},
		{name: "one level past the limit, in a batch", body: nested(limit + 1), batch: true, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := put
			req.Body = tc.body
			if tc.batch {
				req = testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
					Body: batchBody("PUT " + opsApp + "/communication HTTP/1.1\r\nIf-Match: 1\r\nContent-Type: application/xml\r\n\r\n" + tc.body)}
			}
			// sendGuarded wants 201 and the body byte for byte at the
			// pool for "", 400 and nothing at the pool for any other.
			param := ""
			if tc.refused {
				param = "too deep"
			}
			resp := e.sendGuarded(t, req, param)
			if !tc.refused {
				return
			}
			assertUCWAError(t, resp, "BadRequest", "DeserializationFailure", nil, !tc.batch)
			if !strings.Contains(resp.Body, "The XML body is nested too deeply at line 1, column ") {
				t.Errorf("the answer does not say the body is nested too deeply: %s", resp.Body)
			}
		})
	}
}
