package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// startBindingEdge starts an edge whose policy refuses +1900 and SIP
// destinations outside contoso.com, before a recording pool: what the
// model-binding tests get past the edge, the pool holds.
func startBindingEdge(t *testing.T) guardEdge {
	t.Helper()
	return startGuardEdge(t, `destinations {
			deny +1900
			sip_domains *.contoso.com
		}`)
}

// TestBodyModelBindingNames: a body name that is a .NET model-binding
// spelling of an input ("x.to", "model.phoneNumber", "to[0]", "[0].to",
// "x[to]") is refused with 400 ParameterValidationFailure naming the
// input, alone or as a batch part, in JSON and in XML, and never reaches
// the pool, as the same spelling in the query always was
// (TestModelBindingQueryNames). ASP.NET MVC's JsonValueProviderFactory
// flattens a JSON body into the keys a query has: {"model.to":...} is the
// key "model.to", exactly as {"model":{"to":...}} (which the edge refuses
// as a destination inside a value it does not read) and as ?model.to=;
// and its DefaultModelBinder binds a complex parameter named model under
// that prefix once any key starts with "model.", reading its to from
// "model.to" and never from the body's "to". So
// {"to":"sip:john@x.contoso.com","model.to":"tel:+19005551234"} passed
// the edge as a call to a person and reached the pool, which rang
// +1 900 555 1234.
//
// The other inputs of the operation nested in a value the edge does not
// read are refused the same way, naming them: {"x":{"operationId":"b"}}
// is the key x.operationId to MVC, a second operationId the edge never
// keyed the call by, and {"x":{"ringDelay":1}} a ringDelay it never held
// to 5-60; so are a PUT's embedded resource's properties outside
// "_embedded" ({"unansweredCallSettings":{"ringDelay":1}}, which MVC
// binds to a model's unansweredCallSettings) and under a prefix.
func TestBodyModelBindingNames(t *testing.T) {
	e := startBindingEdge(t)
	auth := callerBearer(t)
	const (
		ok     = `"to":"sip:john@x.contoso.com"`
		xmlOK  = `<property name="to">sip:john@x.contoso.com</property>`
		number = "tel:+19005551234"
	)
	xmlInput := func(props string) string {
		return `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">` + props + `</input>`
	}
	for _, tc := range []struct {
		name, method, path, contentType, body, param string
	}{
		{"JSON, the call's to under a prefix", "POST", startOpsPath, "application/json", `{` + ok + `,"model.to":"` + number + `"}`, "to"},
		{"JSON, the callback number under a prefix", "POST", startOpsPath, "application/json", `{` + ok + `,"request.PhoneNumber":"` + number + `"}`, "phoneNumber"},
		{"JSON, an index", "POST", startOpsPath, "application/json", `{` + ok + `,"to[0]":"` + number + `"}`, "to"},
		{"JSON, an index before the name", "POST", startOpsPath, "application/json", `{` + ok + `,"[0].to":"` + number + `"}`, "to"},
		{"JSON, a bracketed name", "POST", startOpsPath, "application/json", `{` + ok + `,"x[phoneNumber]":"` + number + `"}`, "phoneNumber"},
		{"JSON, two prefixes", "POST", startOpsPath, "application/json", `{` + ok + `,"x.y.phoneNumber":"` + number + `"}`, "phoneNumber"},
		{"JSON, a destination the operation does not take", "POST", startOpsPath, "application/json", `{` + ok + `,"x.target":"` + number + `"}`, "target"},
		{"JSON, inside a value the edge does not read", "POST", startOpsPath, "application/json", `{` + ok + `,"x":{"y.to":"` + number + `"}}`, "to"},
		{"JSON, the stored number of PUT communication", "PUT", opsApp + "/communication", "application/json", `{"model.phoneNumber":"` + number + `"}`, "phoneNumber"},
		{"JSON, a forwarding target", "POST", opsApp + "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact", "application/json",
			`{"target":"sip:john@x.contoso.com","input.target":"` + number + `"}`, "target"},
		{"XML, the call's to under a prefix", "POST", startOpsPath, "application/xml", xmlInput(xmlOK + `<property name="model.to">` + number + `</property>`), "to"},
		{"XML, the callback number under a prefix", "POST", startOpsPath, "application/xml", xmlInput(xmlOK + `<property name="model.phoneNumber">` + number + `</property>`), "phoneNumber"},
		{"XML, an index", "POST", startOpsPath, "application/xml", xmlInput(xmlOK + `<property name="to[0]">` + number + `</property>`), "to"},
		// Inputs other than destinations nested in a value the edge does
		// not read: MVC's JsonValueProviderFactory keys them as the flat
		// spelling (x.operationId), which a parameter x binds.
		{"JSON, a second operationId nested in a value the edge does not read", "POST", startOpsPath, "application/json", `{` + ok + `,"operationId":"a","x":{"operationId":"b"}}`, "operationId"},
		{"JSON, an operationId nested in an array", "POST", startOpsPath, "application/json", `{` + ok + `,"x":[{"y":{"OperationId":"b"}}]}`, "operationId"},
		{"JSON, an operationId in a link's member", "POST", startOpsPath, "application/json", `{` + ok + `,"_links":{"self":{"href":"/x","operationId":"b"}}}`, "operationId"},
		{"JSON, a ringDelay nested in a value the edge does not read", "POST", opsApp + "/me/callForwardingSettings/unansweredCallSettings/unansweredCallToContact", "application/json",
			`{"target":"sip:john@x.contoso.com","ringDelay":10,"x":{"ringDelay":1}}`, "ringDelay"},
		{"JSON, an embedded resource's ringDelay outside _embedded", "PUT", opsApp + "/me/callForwardingSettings", "application/json",
			`{"activeSetting":"None","unansweredCallSettings":{"ringDelay":1}}`, "ringDelay"},
		{"JSON, an embedded resource's ringDelay under a prefix", "PUT", opsApp + "/me/callForwardingSettings", "application/json",
			`{"activeSetting":"None","unansweredCallSettings.ringDelay":1}`, "ringDelay"},
		{"JSON, a link named by an embedded resource's ringDelay under a prefix", "PUT", opsApp + "/me/callForwardingSettings", "application/json",
			`{"activeSetting":"None","_links":{"unansweredCallSettings.ringDelay":{"href":"/x"}}}`, "ringDelay"},
		{"XML, a link named by an embedded resource's ringDelay under a prefix", "PUT", opsApp + "/me/callForwardingSettings", "application/xml",
			`<resource xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><link rel="unansweredCallSettings.ringDelay" href="/x"/></resource>`, "ringDelay"},
		{"XML, an operationId named by an item", "POST", startOpsPath, "application/xml",
			xmlInput(xmlOK + `<propertyList name="x"><item name="operationId">b</item></propertyList>`), "operationId"},
	} {
		for _, batch := range []bool{false, true} {
			name := tc.name
			if batch {
				name += ", batched"
			}
			t.Run(name, func(t *testing.T) {
				resp, got := e.sendBody(auth, tc.method, tc.path, tc.contentType, tc.body, batch)
				if resp.Status != http.StatusBadRequest || len(got) != 0 {
					t.Fatalf("status %d (%s), the pool got %d requests; want 400 and none", resp.Status, resp.Body, len(got))
				}
				if !strings.Contains(resp.Body, `<property name="`+tc.param+`">`) && !strings.Contains(resp.Body, `{"name":"`+tc.param+`"`) {
					t.Fatalf("the refusal does not name %s: %s", tc.param, resp.Body)
				}
				if strings.Contains(resp.Body, "9005551234") {
					t.Fatalf("the refusal shows the number: %s", resp.Body)
				}
			})
		}
	}

	// The same operationId under a prefix: a pool binding under it keys
	// the call by another operationId than the edge did.
	resp, got := e.sendBody(auth, "POST", startOpsPath, "application/json", `{`+ok+`,"operationId":"a","x.operationId":"b"}`, false)
	if resp.Status != http.StatusBadRequest || len(got) != 0 || !strings.Contains(resp.Body, `{"name":"operationId"`) {
		t.Fatalf("operationId under a prefix: status %d (%s), the pool got %d requests; want 400 naming operationId and none", resp.Status, resp.Body, len(got))
	}

	// Names that are no spelling of an input pass as sent.
	for _, body := range []string{
		`{` + ok + `,"x_y":"` + number + `","x.y":1,"client.version":"1.0"}`,
		`{` + ok + `,"x":{"y.z":"` + number + `"}}`,
		`{` + ok + `,"x":{"y":1,"operations":"b"},"_links":{"self":{"href":"/x","title":"t"}}}`,
	} {
		resp, got := e.sendBody(auth, "POST", startOpsPath, "application/json", body, false)
		assertDeliveredAsSent(t, resp, got, body)
	}
	xmlBody := xmlInput(xmlOK + `<property name="client.version">1.0</property>`)
	resp, got = e.sendBody(auth, "POST", startOpsPath, "application/xml", xmlBody, false)
	assertDeliveredAsSent(t, resp, got, xmlBody)
}

// TestNamelessQueryValue: a query value without a name ("=tel:+1900...",
// "[]=...", "%5B%5D=...") is refused with 400 ParameterValidationFailure
// naming the inputs the query does not name, alone or as a batch part,
// and never reaches the pool. ASP.NET Web API binds a simple parameter
// (Post(string to, string phoneNumber)) from the query by its name and,
// when the query has none, again under the empty prefix
// (CompositeModelBinder, FallbackToEmptyPrefix), where its query value
// provider holds "=value" (and "[]=value": its jQuery reader drops empty
// brackets) under "". So ?to=sip:john@...&=tel:+19005551234 passed the
// edge as a call to a person with no callback number, and a pool rang
// +1 900 555 1234 as phoneNumber; likewise a PUT communication's stored
// number and a forwarding target the body gave otherwise.
func TestNamelessQueryValue(t *testing.T) {
	e := startBindingEdge(t)
	auth := callerBearer(t)
	const (
		person = "sip:john@x.contoso.com"
		number = "tel:%2B19005551234"
	)
	forward := opsApp + "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact"
	for _, tc := range []struct {
		name, method, path, query, contentType, body, param string
	}{
		{"every input in the query, the callback number without a name", "POST", startOpsPath, "to=" + person + "&=" + number, "", "", "phoneNumber"},
		{"the call's to in the body, a number without a name", "POST", startOpsPath, "=" + number, "application/json", `{"to":"` + person + `"}`, "to"},
		{"empty brackets", "POST", startOpsPath, "[]=" + number, "application/json", `{"to":"` + person + `"}`, "phoneNumber"},
		{"escaped empty brackets", "POST", startOpsPath, "%5B%5D=" + number, "application/xml",
			`<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">` + person + `</property></input>`, "to"},
		{"the stored number of PUT communication", "PUT", opsApp + "/communication", "=" + number, "application/json", `{"audioPreference":"PhoneAudio"}`, "phoneNumber"},
		{"a forwarding target", "POST", forward, "=" + number, "application/json", `{"target":"` + person + `"}`, "target"},
		{"a changed number", "POST", opsApp + "/me/phones/work/changeNumber", "=" + number, "application/json", `{"includeInContactCard":true}`, "number"},
		// Every input the forwarding takes is named: the value binds a
		// parameter of the pool's beyond them, as phoneNumber= would.
		{"every input named", "POST", forward, "target=" + person + "&=" + number, "", "", "phoneNumber"},
		// MVC's and Web API's collection binders read the indexes an
		// "index" lists, any text, under the empty prefix.
		{"an index the query lists", "POST", startOpsPath, "index=x&[x]=" + number, "application/json", `{"to":"` + person + `"}`, "phoneNumber"},
	} {
		for _, batch := range []bool{false, true} {
			name, query := tc.name, tc.query
			if batch {
				// A part's target holds no raw brackets (RFC 3986).
				name, query = name+", batched", strings.NewReplacer("[", "%5B", "]", "%5D").Replace(query)
			}
			t.Run(name, func(t *testing.T) {
				resp, got := e.sendBody(auth, tc.method, tc.path+"?"+query, tc.contentType, tc.body, batch)
				assertRefusedUndelivered(t, resp, got, tc.param, "without a name")
			})
		}
	}

	// A blank value without a name binds nothing a pool would act on
	// (Web API reads it as null) and passes as sent.
	for _, query := range []string{"=", "[]=+", "[0]=%20"} {
		before := len(e.pool.Received())
		resp := e.send(testkit.Request{URL: startOpsPath + "?" + query, ContentType: "application/json",
			Body: `{"to":"` + person + `"}`, Header: http.Header{"Authorization": {auth}}})
		got := e.pool.Received()[before:]
		if resp.Status != http.StatusCreated || len(got) != 1 || got[0].RawQuery != query {
			t.Fatalf("?%s: status %d (%s), the pool got %+v; want 201 and the query as sent", query, resp.Status, resp.Body, got)
		}
	}
	if strings.Contains(e.Logs().String(), "9005551234") {
		t.Fatal("the log shows the number")
	}
}

// TestModelBindingKeys: keys that ASP.NET MVC's and Web API's model
// binding read as an input although the edge sees no name of one are
// refused 400 and never reach the pool, alone or as a batch part:
//
//   - a JSON member without a name: MVC's JsonValueProviderFactory keys
//     a member by its parent's key alone when its own name is empty
//     (MakePropertyKey), so {"":{"operationId":"b"}} is the key
//     operationId, which a pool's parameter operationId binds, where the
//     edge read no operationId at all and keyed the request by none;
//   - a dictionary entry keyed by an input: MVC's DefaultModelBinder
//     (UpdateDictionary) and Web API's DictionaryModelBinder bind
//     x[0].key and x[0].value (in the query, or from a JSON body's
//     {"x":[{"key":...,"value":...}]}) as the entry x["phoneNumber"] of a
//     Dictionary<string,string> parameter x, the input's name in a value;
//   - an index alone, [0]=: both bind a collection parameter under the
//     empty prefix from [0], [1], ... when the query does not name it;
//     a JSON body's {"[0]":...} and {"index":"a","[a]":...} are the
//     same keys to MVC's JsonValueProviderFactory;
//   - a dictionary entry keyed by any other input of the operation
//     (subject, ringDelay), and the flat JSON spellings of an entry
//     ({"x[0].key":...}, {"index":"a","[a].key":...}), which MVC keys as
//     the query's.
func TestModelBindingKeys(t *testing.T) {
	e := startBindingEdge(t)
	auth := callerBearer(t)
	const (
		ok     = `"to":"sip:john@x.contoso.com"`
		number = "tel:+19005551234"
		json   = "application/json"
	)
	fwd := opsApp + "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact"
	fwdUnanswered := opsApp + "/me/callForwardingSettings/unansweredCallSettings/unansweredCallToContact"
	for _, tc := range []struct {
		name, path, body, param, want string
	}{
		{"a nameless member's operationId", startOpsPath, `{` + ok + `,"":{"operationId":"b"}}`, "", "without a name"},
		{"a nameless member's nameless member", startOpsPath, `{` + ok + `,"":{"":{"subject":"b"}}}`, "", "without a name"},
		{"a nameless member's value", startOpsPath, `{` + ok + `,"":"` + number + `"}`, "", "without a name"},
		{"a nameless member inside a value the edge does not read", startOpsPath, `{` + ok + `,"x":[{"":1}]}`, "", "without a name"},
		{"a nameless link member", startOpsPath, `{` + ok + `,"_links":{"customContent":{"href":"data:,x","":{"operationId":"b"}}}}`, "", "without a name"},
		{"a dictionary entry keyed by the callback number", startOpsPath, `{` + ok + `,"inputs":[{"key":"phoneNumber","value":"` + number + `"}]}`, "phoneNumber", "dictionary entry"},
		{"a dictionary entry keyed by operationId", startOpsPath, `{` + ok + `,"inputs":[{"Value":"b","KEY":"operationId"}]}`, "operationId", "dictionary entry"},
		{"a dictionary entry keyed by a stray destination", fwd, `{"target":"sip:john@x.contoso.com","x":{"y":[{"key":" to ","value":"` + number + `"}]}}`, "to", "dictionary entry"},
		{"a query dictionary entry", startOpsPath + "?x%5B0%5D.key=phoneNumber&x%5B0%5D.value=tel:%2B19005551234", `{` + ok + `}`, "phoneNumber", "dictionary entry"},
		{"a query dictionary entry under the empty prefix", startOpsPath + "?%5B0%5D.Key=operationId&%5B0%5D.Value=b", `{` + ok + `}`, "operationId", "dictionary entry"},
		{"a query dictionary entry by index", fwd + "?x.index=a&x%5Ba%5D.key=to&x%5Ba%5D.value=tel:%2B19005551234", `{"target":"sip:john@x.contoso.com"}`, "to", "dictionary entry"},
		{"a query index alone", startOpsPath + "?%5B0%5D=tel:%2B19005551234", `{` + ok + `}`, "phoneNumber", "without a name"},
		// An entry keyed by an input other than a destination or
		// operationId: a pool reading x["subject"] or x["ringDelay"]
		// takes a value the edge never held to the input's limits.
		{"a dictionary entry keyed by another input", startOpsPath, `{` + ok + `,"inputs":[{"key":"subject","value":"b"}]}`, "subject", "dictionary entry"},
		{"a query dictionary entry keyed by another input, by index", fwdUnanswered + "?x.index=a&x%5Ba%5D.key=ringDelay&x%5Ba%5D.value=1",
			`{"target":"sip:john@x.contoso.com"}`, "ringDelay", "dictionary entry"},
		// The flat JSON spellings of an entry and of an index, as the
		// query's: MVC's JsonValueProviderFactory keys them alike.
		{"a flat JSON dictionary entry", startOpsPath, `{` + ok + `,"x[0].key":"phoneNumber","x[0].value":"` + number + `"}`, "phoneNumber", "dictionary entry"},
		{"a flat JSON dictionary entry under the empty prefix, by index", startOpsPath, `{` + ok + `,"index":"a","[a].key":"operationId","[a].value":"b"}`, "operationId", "dictionary entry"},
		{"a JSON index alone", startOpsPath, `{` + ok + `,"[0]":"` + number + `"}`, "", "index alone"},
		{"a JSON index the body lists", startOpsPath, `{` + ok + `,"index":"a","[a]":"` + number + `"}`, "", "index alone"},
		{"a query element by index, its to", startOpsPath + "?x.index=a&x%5Ba%5D.to=tel:%2B19005551234", `{` + ok + `}`, "to", "spelled otherwise"},
	} {
		for _, batch := range []bool{false, true} {
			name := tc.name
			if batch {
				name += ", batched"
			}
			t.Run(name, func(t *testing.T) {
				resp, got := e.sendBody(auth, "POST", tc.path, json, tc.body, batch)
				if resp.Status != http.StatusBadRequest || len(got) != 0 {
					t.Fatalf("status %d (%s), the pool got %d requests; want 400 and none", resp.Status, resp.Body, len(got))
				}
				if tc.param != "" && !strings.Contains(resp.Body, `{"name":"`+tc.param+`"`) {
					t.Fatalf("the refusal does not name %s: %s", tc.param, resp.Body)
				}
				if !strings.Contains(resp.Body, tc.want) || strings.Contains(resp.Body, "9005551234") {
					t.Fatalf("the refusal lacks %q or shows the number: %s", tc.want, resp.Body)
				}
			})
		}
	}

	// Entries keyed by no input, and indexes under a name, pass as sent.
	for _, tc := range []struct{ path, body string }{
		{startOpsPath, `{` + ok + `,"inputs":[{"key":"locale","value":"en-US"}],"x":{"key":"tos"}}`},
		{startOpsPath + "?x%5B0%5D.key=locale&x%5B0%5D.value=en&y%5B0%5D=1&%5B0%5D=", `{` + ok + `}`},
		{startOpsPath + "?x.index=a&x%5Ba%5D=1", `{` + ok + `,"[0]":null,"x[0].key":"locale","x[0].value":"en","y.index":"a","y[a]":1}`},
	} {
		resp, got := e.sendBody(auth, "POST", tc.path, json, tc.body, false)
		assertDeliveredAsSent(t, resp, got, tc.body)
	}
}
