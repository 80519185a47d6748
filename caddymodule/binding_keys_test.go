package caddymodule

import (
	"net/http"
	"strings"
	"testing"
)

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
//     empty prefix from [0], [1], ... when the query does not name it.
func TestModelBindingKeys(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
			sip_domains *.contoso.com
		}`)
	auth := callerBearer(t)
	const (
		ok     = `"to":"sip:john@x.contoso.com"`
		number = "tel:+19005551234"
		json   = "application/json"
	)
	fwd := opsApp + "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact"
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
	} {
		resp, got := e.sendBody(auth, "POST", tc.path, json, tc.body, false)
		assertDeliveredAsSent(t, resp, got, tc.body)
	}
}
