package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// doorsSite is the demo's layout: the edge, then a fallback reverse_proxy
// to the pool, which gets both what the edge accepted and what it passes.
func doorsSite(t *testing.T, pool string) edge {
	t.Helper()
	return doorsSiteWith(t, pool, "")
}

// doorsSiteWith is doorsSite with more options for the ucwa handler.
func doorsSiteWith(t *testing.T, pool, options string) edge {
	t.Helper()
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	return startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		jwt {
			algorithms HS256
			hmac_secret {env.UCWA_TEST_JWT_SECRET}
		}
		default_region US
		%s
	}
	reverse_proxy %s
}`, options, pool))
}

// batchBody is a multipart/batching body of boundary "b" holding the
// given inner requests (request line, headers, empty line, body).
func batchBody(requests ...string) string {
	var b strings.Builder
	for _, r := range requests {
		b.WriteString("--b\r\nContent-Type: application/http; msgtype=request\r\n\r\n" + r + "\r\n")
	}
	b.WriteString("--b--\r\n")
	return b.String()
}

const batchType = "multipart/batching; boundary=b"

// TestIssue10Doors: each door of issue 10's "Why", tried as a new user
// would against the demo's layout, and the doors reviews found since.
// Each was passed to the pool unchecked before the edge guarded it.
func TestIssue10Doors(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := doorsSite(t, pool.Addr())
	good := bearerFor(t, allScopes...)
	long := func(n int) string { return strings.Repeat("o", n) }
	addPhoneAudio := opsApp + "/communication/conversations/eee0/phoneAudio/addPhoneAudio"
	issueBody := `{"to":"sip:+19005551234@gw;user=phone","phoneNumber":"+1 900 555 9999 garbage","operationId":"` + long(400) + `","subject":"` + long(5000) + `"}`
	tests := []struct {
		name   string
		req    testkit.Request
		status int
		// refused: the parameters named (nil: not checked) and a part of
		// the message; accepted: what the pool gets.
		params   []string
		message  string
		poolBody string
	}{
		{name: "addPhoneAudio as in the issue, no Authorization", status: 401,
			req: testkit.Request{URL: addPhoneAudio, ContentType: "application/json", Body: issueBody}},
		{name: "addPhoneAudio as in the issue, with a token", status: 400, params: []string{"operationId"},
			req: testkit.Request{URL: addPhoneAudio, ContentType: "application/json", Body: issueBody, Header: http.Header{"Authorization": {good}}}},
		{name: "addPhoneAudio, a SIP to with a 900 number", status: 201, poolBody: `{"to":"sip:+19005551234@gw;user=phone"}`,
			req: testkit.Request{URL: addPhoneAudio, ContentType: "application/json", Body: `{"to":"sip:+1-900-555-1234@gw;user=phone"}`, Header: http.Header{"Authorization": {good}}}},
		{name: "addPhoneAudio, a garbage phoneNumber", status: 400, params: []string{"phoneNumber"}, message: "normalization",
			req: testkit.Request{URL: addPhoneAudio, ContentType: "application/json", Body: `{"to":"sip:john@contoso.com","phoneNumber":"+1 900 555 9999 garbage"}`, Header: http.Header{"Authorization": {good}}}},
		{name: "addPhoneAudio, a 400-character operationId", status: 400, params: []string{"operationId"},
			req: testkit.Request{URL: addPhoneAudio, ContentType: "application/json", Body: `{"to":"sip:john@contoso.com","operationId":"` + long(400) + `"}`, Header: http.Header{"Authorization": {good}}}},
		// subject is no input of addPhoneAudio (the reference lists
		// operationId, phoneNumber and to): a pool ignores it, and the
		// edge forwards it as it does every property it does not know.
		{name: "addPhoneAudio, a 5,000-character subject", status: 201, poolBody: `{"to":"tel:+14255551234","subject":"` + long(5000) + `"}`,
			req: testkit.Request{URL: addPhoneAudio, ContentType: "application/json", Body: `{"to":"4255551234","subject":"` + long(5000) + `"}`, Header: http.Header{"Authorization": {good}}}},
		{name: "continuePhoneAudio without a token", status: 401,
			req: testkit.Request{URL: opsApp + "/communication/conversationLogs/conversationLog/continuePhoneAudio", ContentType: "application/json", Body: `{"phoneNumber":"+19005551234"}`}},
		// continueVideo calls back a conversation log's party, as
		// continueAudio and continueAudioVideo do (the reference's
		// continueVideo_ref): it was passed to the pool unchecked.
		{name: "continueVideo without a token", status: 401,
			req: testkit.Request{URL: opsApp + "/communication/conversationLogs/conversationLog/continueVideo", ContentType: "application/json", Body: `{"operationId":"x"}`}},
		{name: "continueVideo, a 400-character operationId", status: 400, params: []string{"operationId"},
			req: testkit.Request{URL: opsApp + "/communication/conversationLogs/conversationLog/continueVideo", ContentType: "application/json",
				Body: `{"operationId":"` + long(400) + `"}`, Header: http.Header{"Authorization": {good}}}},
		{name: "continueVideo, a stray to", status: 400, params: []string{"to"},
			req: testkit.Request{URL: opsApp + "/communication/conversationLogs/conversationLog/continueVideo", ContentType: "application/json",
				Body: `{"operationId":"x","to":"tel:+19005551234"}`, Header: http.Header{"Authorization": {good}}}},
		{name: "a batch of a continueVideo with a 300-character operationId", status: 400, params: []string{"operationId"}, message: "Batch part 1: ",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
				Body: batchBody("POST " + opsApp + "/communication/conversationLogs/l1/continueVideo HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + `{"operationId":"` + long(300) + `"}`)}},
		{name: "a batch of a startPhoneAudio with a 300-character operationId", status: 400, params: []string{"operationId"}, message: "Batch part 1: ",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
				Body: batchBody("POST " + opsApp + "/communication/startPhoneAudio HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + `{"to":"+19005551234","operationId":"` + long(300) + `"}`)}},
		{name: "a batch without a token", status: 401,
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType,
				Body: batchBody("POST " + opsApp + "/communication/startPhoneAudio HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + `{"to":"+19005551234"}`)}},
		{name: "startPhoneAudio, a SIP to with a telephone user", status: 201, poolBody: `{"to":"sip:+19005551234@gw;user=phone"}`,
			req: testkit.Request{URL: startPath, ContentType: "application/json", Body: `{"to":"sip:+19005551234@gw;user=phone"}`, Header: http.Header{"Authorization": {good}}}},
		{name: "startPhoneAudio, a SIP user escaped ten thousand levels deep", status: 400, params: []string{"to"},
			req: testkit.Request{URL: startPath, ContentType: "application/json", Body: `{"to":"sip:%` + strings.Repeat("25", 10000) + `41@b.c"}`, Header: http.Header{"Authorization": {good}}}},
		{name: "startPhoneAudio, a SIP to with a telephone user written with separators", status: 201, poolBody: `{"to":"sip:+19005551234@gw;user=phone"}`,
			req: testkit.Request{URL: startPath, ContentType: "application/json", Body: `{"to":"sip:+1(900)555-1234@gw;user=phone"}`, Header: http.Header{"Authorization": {good}}}},
		// An extension or a carrier among the URI's own parameters,
		// which a lenient gateway might dial behind the judged number.
		{name: "startPhoneAudio, a SIP to with an extension among the URI's parameters", status: 400, params: []string{"to"}, message: "telephone number's parameter",
			req: testkit.Request{URL: startPath, ContentType: "application/json", Body: `{"to":"sip:+14255551234@gw;user=phone;ext=011442071234567"}`, Header: http.Header{"Authorization": {good}}}},
		{name: "forwarding to a SIP target with a carrier among the URI's parameters", status: 400, params: []string{"target"}, message: "telephone number's parameter",
			req: testkit.Request{URL: opsApp + "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact", ContentType: "application/json",
				Body: `{"target":"sip:+14255551234@gw;user=phone;cic=+1-5062"}`, Header: http.Header{"Authorization": {good}}}},
		// A trunk group in the non-standard spellings gateways take
		// (Cisco and Sonus read dtg and otg as tgrp): a lenient gateway
		// would route the judged number over a trunk the edge never saw.
		{name: "startPhoneAudio, a SIP to with a destination trunk group among the URI's parameters", status: 400, params: []string{"to"}, message: "telephone number's parameter",
			req: testkit.Request{URL: startPath, ContentType: "application/json", Body: `{"to":"sip:+14255551234@gw;user=phone;dtg=INTL"}`, Header: http.Header{"Authorization": {good}}}},
		{name: "forwarding to a SIP target with an originating trunk group among the URI's parameters", status: 400, params: []string{"target"}, message: "telephone number's parameter",
			req: testkit.Request{URL: opsApp + "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact", ContentType: "application/json",
				Body: `{"target":"sip:+14255551234@gw;user=phone;OTG=intl"}`, Header: http.Header{"Authorization": {good}}}},
		{name: "startPhoneAudio, a SIP name that RFC 3966 reads as a local number", status: 400, params: []string{"to"}, message: "telephone number's parameter",
			req: testkit.Request{URL: startPath, ContentType: "application/json", Body: `{"to":"sip:5551234;phone-context=+1900@gw"}`, Header: http.Header{"Authorization": {good}}}},
		// A link named like a property that is not a link: the edge reads
		// no such link, and a lenient pool might read its href as the
		// property.
		{name: "startPhoneAudio, phoneNumber as a link", status: 400, params: []string{"phoneNumber"}, message: `as a link, "_links.phoneNumber"`,
			req: testkit.Request{URL: startPath, ContentType: "application/json", Body: `{"to":"sip:john@contoso.com","_links":{"phoneNumber":{"href":"+19005551234"}}}`, Header: http.Header{"Authorization": {good}}}},
		{name: "startPhoneAudio, to as a link in another letter case", status: 400, params: []string{"to"}, message: `as a link, "_links.to"`,
			req: testkit.Request{URL: startPath, ContentType: "application/json", Body: `{"to":"sip:john@contoso.com","_links":{"To":{"href":"tel:+19005551234"}}}`, Header: http.Header{"Authorization": {good}}}},
		// SfB's web services take a web ticket in X-MS-WebTicket: a pool
		// that read it would run the request as a user the edge never
		// verified (and as a web ticket, which web_tickets reject refuses).
		{name: "startPhoneAudio with a web ticket in X-MS-WebTicket beside the token", status: 400, message: "X-MS-WebTicket",
			req: testkit.Request{URL: startPath, ContentType: "application/json", Body: `{"to":"sip:john@contoso.com"}`,
				Header: http.Header{"Authorization": {good}, "X-Ms-Webticket": {"opaque=PHNhbWw6QXNzZXJ0aW9u"}}}},
		// Microsoft's batch.js sends a POST's body in a Data header, which
		// the edge reads as the body of a batched request: one on a
		// request alone (or on the batch itself) is a body the edge would
		// forward unread, beside the one it judged or with no body at all.
		{name: "startPhoneAudio with its inputs in the query and a body in a Data header", status: 400, message: "Data header",
			req: testkit.Request{URL: startPath + "?to=sip:john@contoso.com", Header: http.Header{"Authorization": {good}, "Data": {`{"phoneNumber":"+19005551234"}`}}}},
		{name: "startPhoneAudio with a JSON body and another in a Data header", status: 400, message: "Data header",
			req: testkit.Request{URL: startPath, ContentType: "application/json", Body: `{"to":"sip:john@contoso.com"}`,
				Header: http.Header{"Authorization": {good}, "Data": {`{"to":"tel:+19005551234"}`}}}},
		{name: "a batch with a body in a Data header of its own", status: 400, message: "Data header",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}, "Data": {`{"to":"tel:+19005551234"}`}},
				Body: batchBody("GET " + opsApp + "/me HTTP/1.1\r\n\r\n")}},
		// RFC 6750 (2.3) lets a token come in the query, and OWIN and
		// ASP.NET bearer handlers can read it there: a pool that did would
		// run the request as that token's user, one the edge never
		// verified (a web ticket, which web_tickets reject refuses, or a
		// token without the operation's scopes).
		{name: "startPhoneAudio with an access_token in the query beside the token", status: 400, params: []string{"access_token"}, message: "access token in its query",
			req: testkit.Request{URL: startPath + "?access_token=cwt%3DAAEBHAEFAAAAAAAF", ContentType: "application/json", Body: `{"to":"sip:john@contoso.com"}`,
				Header: http.Header{"Authorization": {good}}}},
		{name: "startPhoneAudio with an access_token in the query and no Authorization", status: 401, message: "no bearer token",
			req: testkit.Request{URL: startPath + "?to=sip:john@contoso.com&access_token=" + strings.TrimPrefix(good, "Bearer ")}},
		{name: "startPhoneAudio with an ACCESS_TOKEN in the query", status: 400, params: []string{"access_token"}, message: "access token in its query",
			req: testkit.Request{URL: startPath + "?to=sip:john@contoso.com&ACCESS_TOKEN=x", Header: http.Header{"Authorization": {good}}}},
		{name: "startPhoneAudio with an escaped, zero-width access_token in the query", status: 400, params: []string{"access_token"}, message: "access token in its query",
			req: testkit.Request{URL: startPath + "?to=sip:john@contoso.com&access%5F%E2%80%8Btoken=x", Header: http.Header{"Authorization": {good}}}},
		{name: "startPhoneAudio with a model-binding access_token in the query", status: 400, params: []string{"access_token"}, message: "access token in its query",
			req: testkit.Request{URL: startPath + "?to=sip:john@contoso.com&model.access_token=x", Header: http.Header{"Authorization": {good}}}},
		// PHP registers access.token, access+token and access[token as
		// access_token: a PHP front before a pool (an OAuth server
		// reading $_GET) would take the token there.
		{name: "startPhoneAudio with an access.token in the query", status: 400, params: []string{"access_token"}, message: "access token in its query",
			req: testkit.Request{URL: startPath + "?access.token=cwt%3DAAEBHAEFAAAAAAAF", ContentType: "application/json", Body: `{"to":"sip:john@contoso.com"}`,
				Header: http.Header{"Authorization": {good}}}},
		{name: "startPhoneAudio with an access+token in the query", status: 400, params: []string{"access_token"}, message: "access token in its query",
			req: testkit.Request{URL: startPath + "?to=sip:john@contoso.com&access+token=x", Header: http.Header{"Authorization": {good}}}},
		{name: "startPhoneAudio with an escaped access[token in the query", status: 400, params: []string{"access_token"}, message: "access token in its query",
			req: testkit.Request{URL: startPath + "?to=sip:john@contoso.com&access%5Btoken=x", Header: http.Header{"Authorization": {good}}}},
		{name: "startPhoneAudio with a query parameter named like, but not, access_token", status: 201, poolBody: `{"to":"sip:john@contoso.com"}`,
			req: testkit.Request{URL: startPath + "?x_access_token=1&access_tokens=2&x.access.token=3&access[token]=4", ContentType: "application/json", Body: `{"to":"sip:john@contoso.com"}`,
				Header: http.Header{"Authorization": {good}}}},
		{name: "a batch of a startPhoneAudio with an access_token in its query", status: 400, message: "Batch part 1: A batched request carries no credentials of its own",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
				Body: batchBody("POST " + opsApp + "/communication/startPhoneAudio?access_token=cwt%3Dother HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + `{"to":"+14255551234"}`)}},
		{name: "a batch of a startPhoneAudio with an access.token in its query", status: 400, message: "Batch part 1: A batched request carries no credentials of its own",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
				Body: batchBody("POST " + opsApp + "/communication/startPhoneAudio?access.token=cwt%3Dother HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + `{"to":"+14255551234"}`)}},
		// .NET reads methods without regard to case: "put" is a PUT.
		{name: "PUT of communication in lower case, no Authorization", status: 401,
			req: testkit.Request{Method: "put", URL: opsApp + "/communication", ContentType: "application/json", Body: `{"phoneNumber":"+1 900 555 1234"}`}},
		{name: "PUT of communication in lower case, with a token", status: 405,
			req: testkit.Request{Method: "put", URL: opsApp + "/communication", ContentType: "application/json", Body: `{"phoneNumber":"+1 900 555 1234"}`,
				Header: http.Header{"Authorization": {good}, "If-Match": {"x"}}}},
		// ASP.NET MVC takes a POST as the method a form field or query
		// parameter X-HTTP-Method-Override names.
		{name: "POST of communication with a method override in the query and the form", status: 400, params: []string{"X-HTTP-Method-Override"},
			req: testkit.Request{URL: opsApp + "/communication?X-HTTP-Method-Override=PUT", ContentType: "application/x-www-form-urlencoded",
				Body: "X-HTTP-Method-Override=PUT&phoneNumber=%2B19005551234", Header: http.Header{"Authorization": {good}, "If-Match": {"x"}}}},
		{name: "PUT of unansweredCallSettings in mixed case, with a token", status: 405,
			req: testkit.Request{Method: "pUT", URL: opsApp + "/me/callForwardingSettings/unansweredCallSettings", ContentType: "application/json",
				Body: `{"target":"Contact","ringDelay":1}`, Header: http.Header{"Authorization": {good}, "If-Match": {"x"}}}},
	}
	for _, suffix := range []string{"%09", "%00", "%E2%80%8B", "/extra", ".aspx", "::$DATA", "~1", "%C2%A0", "%EF%BC%8E", "%E2%84%AA", "%E2%84%AA.aspx"} {
		tests = append(tests, struct {
			name     string
			req      testkit.Request
			status   int
			params   []string
			message  string
			poolBody string
		}{name: "near miss startPhoneAudio" + suffix, status: 404, message: "no resource",
			req: testkit.Request{URL: startPath + suffix, ContentType: "application/json", Body: `{"to":"+19005551234"}`}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(pool.Received())
			resp := e.send(tc.req)
			if resp.Status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, tc.status)
			}
			got := pool.Received()[before:]
			if tc.status != http.StatusCreated {
				if len(got) != 0 {
					t.Fatalf("the pool got %d requests, want none", len(got))
				}
				body := ucwaError(t, resp.Body)
				var names []string
				for _, p := range body.Parameters {
					names = append(names, p.Name)
				}
				if tc.params != nil && !slices.Equal(names, tc.params) || !strings.Contains(body.Message, tc.message) {
					t.Errorf("answer %s, want parameters %v and a message with %q", resp.Body, tc.params, tc.message)
				}
				return
			}
			if len(got) != 1 || got[0].Body != tc.poolBody {
				t.Fatalf("the pool got %+v, want one request with %s", got, tc.poolBody)
			}
		})
	}
}

// TestPhonesWrites: the phones collection "can be used to both create new
// phone resources" (phones_ref), numbers the pool rings for incoming
// calls (phone_ref): a POST of me/phones and a PUT of a phone (any id)
// store a number, and were passed to the pool unchecked. They are
// checked as changeNumber is (a token with User.ReadWrite, the number
// normalized and judged as one stored for later), alone and as batch
// parts; reads, a phone's DELETE and its operations pass as before, and
// a write anywhere else below a phone is a near miss.
func TestPhonesWrites(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := doorsSiteWith(t, pool.Addr(), "destinations {\n\t\t\tdeny +1900\n\t\t}")
	user := http.Header{"Authorization": {bearerFor(t, ucwa.ScopeUserReadWrite)}}
	userIfMatch := http.Header{"Authorization": user["Authorization"], "If-Match": {"x"}}
	callsOnly := http.Header{"Authorization": {bearerFor(t, ucwa.ScopeConversationsInitiate, ucwa.ScopeConversationsReceive)}, "If-Match": {"x"}}
	phones := opsApp + "/me/phones"
	premium := `{"number":"tel:+19005551234","type":"Mobile"}`
	for _, tc := range []struct {
		name    string
		req     testkit.Request
		status  int
		subcode string
		// poolGets is what the pool gets for a 201 ("" for no body).
		poolGets string
	}{
		{name: "POST me/phones, no token", status: 401,
			req: testkit.Request{URL: phones, ContentType: "application/json", Body: premium}},
		{name: "POST me/phones, a denied number", status: 403, subcode: "DialoutNotAllowed",
			req: testkit.Request{URL: phones, ContentType: "application/json", Body: premium, Header: user}},
		{name: "POST me/phones, a token without User.ReadWrite", status: 403,
			req: testkit.Request{URL: phones, ContentType: "application/json", Body: `{"number":"4255551234"}`, Header: callsOnly}},
		{name: "POST me/phones, a garbage number", status: 400, subcode: "NormalizationFailed",
			req: testkit.Request{URL: phones, ContentType: "application/json", Body: `{"number":"+1 425 555 1234 garbage"}`, Header: user}},
		{name: "POST me/phones, a denied number in the query", status: 403, subcode: "DialoutNotAllowed",
			req: testkit.Request{Method: "POST", URL: phones + "?number=%2B19005551234", Header: user}},
		{name: "POST me/phones, an XML body", status: 403, subcode: "DialoutNotAllowed",
			req: testkit.Request{URL: phones, ContentType: "application/xml", Header: user,
				Body: `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="number">+19005551234</property></input>`}},
		{name: "POST me/phones, an XML resource", status: 400, subcode: "DeserializationFailure",
			req: testkit.Request{URL: phones, ContentType: "application/xml", Header: user,
				Body: `<resource xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="number">+19005551234</property></resource>`}},
		{name: "POST me/phones, a phoneNumber beside the number", status: 400,
			req: testkit.Request{URL: phones, ContentType: "application/json", Body: `{"number":"4255551234","phoneNumber":"+19005551234"}`, Header: user}},
		{name: "POST me/phones, an allowed number", status: 201, poolGets: `{"number":"tel:+14255551234","type":"Mobile"}`,
			req: testkit.Request{URL: phones, ContentType: "application/json", Body: `{"number":"(425) 555-1234","type":"Mobile"}`, Header: user}},
		{name: "DELETE me/phones", status: 405,
			req: testkit.Request{Method: "DELETE", URL: phones, Header: user}},
		{name: "PUT a phone, no token", status: 401,
			req: testkit.Request{Method: "PUT", URL: phones + "/work", ContentType: "application/json", Body: premium}},
		{name: "PUT a phone, a denied number", status: 403, subcode: "DialoutNotAllowed",
			req: testkit.Request{Method: "PUT", URL: phones + "/work", ContentType: "application/json", Body: premium, Header: userIfMatch}},
		{name: "PUT the reference's phone, a denied number", status: 403, subcode: "DialoutNotAllowed",
			req: testkit.Request{Method: "PUT", URL: phones + "/phone", ContentType: "application/json", Body: premium, Header: userIfMatch}},
		{name: "PUT a phone of another id, a denied number", status: 403, subcode: "DialoutNotAllowed",
			req: testkit.Request{Method: "PUT", URL: opsApp + "/ME/Phones/Fax", ContentType: "application/json", Body: premium, Header: userIfMatch}},
		// A pool serves some of me's links at the application's root
		// (photo, reportMyActivity): a phone there, or below another
		// prefix, may be a phone as much as one of me/phones, and its PUT
		// was passed unjudged where a POST of that phones was a near
		// miss. It is a near miss too; its reads and DELETE pass.
		{name: "PUT a phone of phones at the application's root", status: 404,
			req: testkit.Request{Method: "PUT", URL: opsApp + "/phones/work", ContentType: "application/json", Body: premium, Header: userIfMatch}},
		{name: "PUT a phone of phones below another prefix", status: 404,
			req: testkit.Request{Method: "PUT", URL: opsApp + "/me/x/phones/work", ContentType: "application/json", Body: premium, Header: userIfMatch}},
		{name: "a POST a pool takes as a PUT of a phone at the application's root", status: 404,
			req: testkit.Request{URL: opsApp + "/phones/work", ContentType: "application/json", Body: premium, Header: userIfMatch}},
		{name: "PUT a phone without If-Match", status: 428,
			req: testkit.Request{Method: "PUT", URL: phones + "/work", ContentType: "application/json", Body: `{"number":"4255551234"}`, Header: user}},
		{name: "PUT a phone, an allowed number", status: 201, poolGets: `{"number":"tel:+14255551234"}`,
			req: testkit.Request{Method: "PUT", URL: phones + "/work", ContentType: "application/json", Body: `{"number":"425 555 1234"}`, Header: userIfMatch}},
		{name: "a POST of a phone with a method override", status: 400, subcode: "DeserializationFailure",
			req: testkit.Request{URL: phones + "/work", ContentType: "application/json", Body: premium,
				Header: http.Header{"Authorization": user["Authorization"], "If-Match": {"x"}, "X-Http-Method-Override": {"PUT"}}}},
		{name: "a batch of a PUT of a phone", status: 403, subcode: "DialoutNotAllowed",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: user,
				Body: batchBody("PUT " + phones + "/mobile HTTP/1.1\r\nContent-Type: application/json\r\nIf-Match: x\r\n\r\n" + premium)}},
		{name: "a batch of a POST of me/phones", status: 403, subcode: "DialoutNotAllowed",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: user,
				Body: batchBody("POST " + phones + " HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + premium)}},
		// "..;" is no dot segment to IIS: me/phones/..; is a phone there,
		// whose PUT stores a number, where the edge read me.
		{name: "PUT a phone whose id is ..;", status: 404,
			req: testkit.Request{Method: "PUT", URL: phones + "/..;", ContentType: "application/json", Body: premium, Header: userIfMatch}},
		{name: "PUT a phone whose id begins ..;", status: 404,
			req: testkit.Request{Method: "PUT", URL: phones + "/..;x", ContentType: "application/json", Body: premium, Header: userIfMatch}},
		{name: "PUT a phone whose id is an escaped ..;", status: 404,
			req: testkit.Request{Method: "PUT", URL: phones + "/%2E%2E%3B", ContentType: "application/json", Body: premium, Header: userIfMatch}},
		{name: "a write below a phone", status: 404,
			req: testkit.Request{URL: phones + "/work/x", ContentType: "application/json", Body: premium}},
		{name: "a PUT of a phone's changeVisibility", status: 404,
			req: testkit.Request{Method: "PUT", URL: phones + "/work/changeVisibility", ContentType: "application/json", Body: premium}},
		// A DELETE passes on a phone, but not one whose path is a near miss
		// as any other path is: an ASP.NET pool may hand startPhoneAudio.aspx
		// the rest as PathInfo, or route a last segment that spells an
		// operation to it.
		{name: "a DELETE of a phone below a leaf with junk", status: 404,
			req: testkit.Request{Method: "DELETE", URL: opsApp + "/communication/startPhoneAudio.aspx/me/phones/work", ContentType: "application/json",
				Body: `{"phoneNumber":"tel:+19005551234"}`}},
		{name: "a DELETE of a phone that spells an operation with junk", status: 404,
			req: testkit.Request{Method: "DELETE", URL: phones + "/startPhoneAudio.aspx", ContentType: "application/json",
				Body: `{"phoneNumber":"tel:+19005551234"}`}},
		{name: "changeNumber, no token, as before", status: 401,
			req: testkit.Request{URL: phones + "/work/changeNumber", ContentType: "application/json", Body: premium}},
		// Passed as they came, without a token.
		{name: "GET me/phones", status: 201, req: testkit.Request{Method: "GET", URL: phones}},
		{name: "HEAD me/phones", status: 201, req: testkit.Request{Method: "HEAD", URL: phones}},
		{name: "OPTIONS me/phones", status: 201, req: testkit.Request{Method: "OPTIONS", URL: phones}},
		{name: "GET a phone", status: 201, req: testkit.Request{Method: "GET", URL: phones + "/work"}},
		{name: "DELETE a phone", status: 201, req: testkit.Request{Method: "DELETE", URL: phones + "/work"}},
		{name: "DELETE the reference's phone", status: 201, req: testkit.Request{Method: "DELETE", URL: phones + "/phone"}},
		{name: "DELETE a phone of another id", status: 201, req: testkit.Request{Method: "DELETE", URL: opsApp + "/ME/Phones/Mobile"}},
		{name: "GET a phone at the application's root", status: 201, req: testkit.Request{Method: "GET", URL: opsApp + "/phones/work"}},
		{name: "DELETE a phone at the application's root", status: 201, req: testkit.Request{Method: "DELETE", URL: opsApp + "/phones/work"}},
		{name: "POST a phone's changeVisibility", status: 201, poolGets: `{"includeInContactCard":true}`,
			req: testkit.Request{URL: phones + "/work/changeVisibility", ContentType: "application/json", Body: `{"includeInContactCard":true}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(pool.Received())
			resp := e.send(tc.req)
			if resp.Status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, tc.status)
			}
			got := pool.Received()[before:]
			if tc.status != http.StatusCreated {
				if len(got) != 0 {
					t.Fatalf("the pool got %d requests, want none", len(got))
				}
				if tc.subcode != "" && !strings.Contains(resp.Body, `"subcode":"`+tc.subcode+`"`) && !strings.Contains(resp.Body, "<subcode>"+tc.subcode+"</subcode>") {
					t.Errorf("answer %s, want subcode %s", resp.Body, tc.subcode)
				}
				return
			}
			if len(got) != 1 || got[0].Body != tc.poolGets {
				t.Fatalf("the pool got %+v, want one request with %q", got, tc.poolGets)
			}
		})
	}
}

// TestForwardingContact: the contact link of the forwarding settings
// names where calls ring; a pool serves it as a person of its own
// (_links.contact = /ucwa/v1/applications/192/people/282) and a client
// echoes it in the PUT. A contact that is a phone number (tel:, sip:, a
// bare number, another scheme or an absolute URL), as a link or a
// property, in JSON or XML, of simultaneousRingSettings,
// unansweredCallSettings or inside callForwardingSettings' _embedded, was
// delivered unjudged; it is refused 400, naming contact and not its
// value, while a served contact and a blank one pass as before.
func TestForwardingContact(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := doorsSite(t, pool.Addr())
	h := http.Header{"Authorization": {bearerFor(t, ucwa.ScopeUserReadWrite)}, "If-Match": {"x"}}
	settings := opsApp + "/me/callForwardingSettings"
	ring, unanswered := settings+"/simultaneousRingSettings", settings+"/unansweredCallSettings"
	served := "/ucwa/v1/applications/192/people/282"
	jsonLink := func(href string) string { return `{"target":"Contact","_links":{"contact":{"href":"` + href + `"}}}` }
	xmlLink := func(href string) string {
		return `<resource xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa" rel="simultaneousRingSettings"><link rel="contact" href="` + href +
			`"/><property name="target">Contact</property></resource>`
	}
	embedded := func(inner string) string {
		return `{"activeSetting":"SimultaneousRing","_embedded":{"simultaneousRingSettings":` + inner + `}}`
	}
	xmlEmbedded := func(href string) string {
		return `<resource xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa" rel="callForwardingSettings"><property name="activeSetting">SimultaneousRing</property>` +
			`<resource rel="simultaneousRingSettings"><link rel="contact" href="` + href + `"/><property name="target">Contact</property></resource></resource>`
	}
	for _, tc := range []struct {
		name, url, contentType, body string
		delivered                    bool
	}{
		{"a tel: contact link", ring, "application/json", jsonLink("tel:+19005551234"), false},
		{"a sip: contact link with a number", ring, "application/json", jsonLink("sip:+19005551234@gw.contoso.com;user=phone"), false},
		{"a bare number contact link", ring, "application/json", jsonLink("+19005551234"), false},
		{"an absolute URL contact link", ring, "application/json", jsonLink("https://pool.contoso.com/ucwa/v1/applications/192/people/282"), false},
		{"a protocol-relative contact link", ring, "application/json", jsonLink("//gw.contoso.com/19005551234"), false},
		{"a contact link with an escaped scheme in its path", ring, "application/json", jsonLink("/people/tel%3A+19005551234"), false},
		// Readings a pool may fold onto a scheme or a host: a fullwidth
		// colon (IIS's %u escape, or UTF-8), an overlong UTF-8 colon, an
		// escaped second slash.
		{"a contact link with a %u-escaped fullwidth colon", ring, "application/json", jsonLink("/people/tel%uFF1A+19005551234"), false},
		{"a contact link with a UTF-8 fullwidth colon", ring, "application/json", jsonLink("/people/tel%EF%BC%9A+19005551234"), false},
		{"a contact link with an overlong colon", ring, "application/json", jsonLink("/people/tel%C0%BA+19005551234"), false},
		{"a contact link with an escaped second slash", ring, "application/json", jsonLink("/%2Fgw.contoso.com/19005551234"), false},
		{"an XML contact link with a fullwidth colon", ring, "application/xml", xmlLink("/people/tel%EF%BC%9A+19005551234"), false},
		{"a contact link with an href in capitals", ring, "application/json", `{"target":"Contact","_links":{"contact":{"HREF":"tel:+19005551234"}}}`, false},
		{"a contact link that is a string", ring, "application/json", `{"target":"Contact","_links":{"contact":"tel:+19005551234"}}`, false},
		{"a contact property", ring, "application/json", `{"target":"Contact","contact":"tel:+19005551234"}`, false},
		{"a contact link of unansweredCallSettings", unanswered, "application/json", `{"target":"Contact","ringDelay":10,"_links":{"contact":{"href":"tel:+19005551234"}}}`, false},
		{"an XML contact link", ring, "application/xml", xmlLink("tel:+19005551234"), false},
		{"an XML contact property", ring, "application/xml",
			`<resource xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="contact">tel:+19005551234</property></resource>`, false},
		{"a contact link embedded in callForwardingSettings", settings, "application/json", embedded(jsonLink("tel:+19005551234")), false},
		{"a contact property embedded in callForwardingSettings", settings, "application/json", embedded(`{"contact":"tel:+19005551234"}`), false},
		{"an XML contact link embedded in callForwardingSettings", settings, "application/xml", xmlEmbedded("tel:+19005551234"), false},
		{"a contact link to a person whose id is a telephone SIP user", ring, "application/json", jsonLink("/ucwa/v1/applications/192/people/+19005551234@contoso.com;user=phone"), false},
		{"a contact link to a person whose id is a number", ring, "application/json", jsonLink("/ucwa/v1/applications/192/people/%2B19005551234"), false},
		// A pool serves a person as its SIP address without the scheme:
		// one that builds the URI from these ids gets a SIP user a
		// gateway dials (+1 900 555 1234, 1-900-FLOWERS).
		{"a contact link to a person whose SIP user is a number", ring, "application/json", jsonLink("/ucwa/oauth/v1/applications/104/people/19005551234@gw.contoso.com"), false},
		{"a contact link to a person whose SIP user is a number with separators", ring, "application/json", jsonLink("/ucwa/oauth/v1/applications/104/people/1-900-555-1234@gw.contoso.com"), false},
		{"a contact link to a person whose SIP user is a dial string", ring, "application/json", jsonLink("/ucwa/oauth/v1/applications/104/people/9,19005551234@gw.contoso.com"), false},
		{"a contact link to a person whose SIP user is a vanity number", ring, "application/json", jsonLink("/ucwa/oauth/v1/applications/104/people/1900FLOWERS@gw.contoso.com"), false},
		{"a contact link to a person whose id is a number without a host", ring, "application/json", jsonLink("/ucwa/oauth/v1/applications/104/people/19005551234"), false},
		{"a contact link to a person whose SIP user is an escaped number", ring, "application/json", jsonLink("/ucwa/oauth/v1/applications/104/people/%31%39%30%30%35%35%35%31%32%33%34@gw.contoso.com"), false},
		{"an XML contact link to a person whose SIP user is a number", ring, "application/xml", xmlLink("/ucwa/oauth/v1/applications/104/people/19005551234@gw.contoso.com"), false},
		{"an embedded contact link to a person whose SIP user is a number", settings, "application/json", embedded(jsonLink("/ucwa/oauth/v1/applications/104/people/19005551234@gw.contoso.com")), false},
		// An escape of an escape of ... peels a level a decoding: a
		// path escaped deeper than a client writes one is refused
		// unread, not decoded thousands of times; twice is read.
		{"a contact link escaped ten thousand levels deep", ring, "application/json", jsonLink("/p/@%" + strings.Repeat("25", 10000) + "41"), false},
		{"a contact link escaped twice", ring, "application/json", jsonLink("/p/@%252541"), true},
		// As a pool serves them, and blank.
		{"the served contact link", ring, "application/json", jsonLink(served), true},
		{"a served contact link of an application id of many digits", ring, "application/json", jsonLink("/ucwa/oauth/v1/applications/101246165550/people/lenea@contoso.com"), true},
		{"a served contact link of a SIP user with a digit or two", ring, "application/json", jsonLink("/ucwa/oauth/v1/applications/104/people/john.smith2@contoso.com"), true},
		{"a served contact link with a mail address", ring, "application/json", jsonLink("/ucwa/oauth/v1/applications/104/people/lenea@contoso.com"), true},
		{"a blank contact link", ring, "application/json", jsonLink(""), true},
		{"a null contact link", ring, "application/json", `{"target":"Contact","_links":{"contact":null}}`, true},
		{"the served contact link, XML", ring, "application/xml", xmlLink(served), true},
		{"the served contact link embedded in callForwardingSettings", settings, "application/json", embedded(jsonLink(served)), true},
		{"the served contact link embedded in callForwardingSettings, XML", settings, "application/xml", xmlEmbedded(served), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(pool.Received())
			resp := e.send(testkit.Request{Method: "PUT", URL: tc.url, ContentType: tc.contentType, Body: tc.body, Header: h})
			got := pool.Received()[before:]
			if tc.delivered {
				if resp.Status != http.StatusCreated || len(got) != 1 {
					t.Fatalf("status %d (%s), the pool got %d requests; want it delivered", resp.Status, resp.Body, len(got))
				}
				return
			}
			if resp.Status != http.StatusBadRequest || len(got) != 0 {
				t.Fatalf("status %d (%s), the pool got %d requests; want 400 and none", resp.Status, resp.Body, len(got))
			}
			if !strings.Contains(resp.Body, "contact") || strings.Contains(resp.Body, "900") {
				t.Errorf("answer %s: want contact named, no number", resp.Body)
			}
		})
	}
}

// TestPassThrough: what is no guarded operation, nor a near miss of one,
// reaches the next handler as it came, without a token: the event
// channel, reads of resources (also of a PUT resource, and at paths that
// would be near misses for a POST), unrelated POSTs. (A POST to a PUT
// resource is guarded: a pool may run it as the PUT.)
func TestPassThrough(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := doorsSite(t, pool.Addr())
	for _, tc := range []struct{ method, path, body string }{
		{"GET", opsApp + "/events?ack=1&timeout=180", ""},
		{"GET", opsApp + "/communication/invitations/146", ""},
		{"GET", opsApp + "/communication", ""},
		{"GET", opsApp + "/me/callForwardingSettings", ""},
		{"GET", opsApp + "/communication/startPhoneAudio.aspx", ""},
		{"HEAD", opsApp + "/communication/startPhoneAudio%E2%80%8B", ""},
		{"POST", opsApp + "/communication/conversations/eee0/messaging/sendMessage?x=%2B19005551234", "hello +19005551234"},
		{"OPTIONS", opsApp + "/communication", ""},
		{"DELETE", opsApp + "/communication/conversations/eee0", ""},
		{"POST", "/autodiscover/autodiscoverservice.svc/root", "x"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			before := len(pool.Received())
			resp := e.send(testkit.Request{Method: tc.method, URL: tc.path, ContentType: "text/plain", Body: tc.body})
			got := pool.Received()[before:]
			if resp.Status != http.StatusCreated || len(got) != 1 {
				t.Fatalf("status %d (%s), the pool got %d requests; want 201 and one", resp.Status, resp.Body, len(got))
			}
			rawPath, wantQuery, _ := strings.Cut(tc.path, "?")
			wantPath, _ := url.PathUnescape(rawPath)
			if r := got[0]; r.Method != tc.method || r.Path != wantPath || r.RawQuery != wantQuery || r.Body != tc.body {
				t.Errorf("the pool got %s %s ? %s %q", r.Method, r.Path, r.RawQuery, r.Body)
			}
		})
	}
}

// TestReadWithMethodOverride: a read (GET, HEAD, OPTIONS) of a PUT
// operation's resource passes as a read, but one that asks in a header to
// be taken as another method is the operation: a pool honouring
// X-HTTP-Method-Override would run a GET of communication with a body as
// the PUT that stores a number, so the edge refuses it as it refuses the
// override on every operation, alone and as a batch part, and the pool
// gets no premium-rate number from it. So is one that asks in its query
// (?X-HTTP-Method-Override=PUT, _method, in any letter case or escaping:
// ASP.NET MVC reads the override there too; also .method and
// X+HTTP+Method+Override, which PHP registers as _method and
// X_HTTP_Method_Override), refused 400 naming the
// parameter, and one with a form body, which may ask in a field the edge
// does not read on a request it passes (405, a read of the operation).
func TestReadWithMethodOverride(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := doorsSite(t, pool.Addr())
	good := bearerFor(t, allScopes...)
	communication := opsApp + "/communication"
	body := `{"phoneNumber":"+19005551234"}`
	type tc struct {
		name    string
		req     testkit.Request
		status  int
		message string
	}
	var tests []tc
	for _, method := range []string{"GET", "HEAD", "OPTIONS"} {
		for _, override := range []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"} {
			tests = append(tests,
				tc{name: method + " with " + override + ", no Authorization", status: 401,
					req: testkit.Request{Method: method, URL: communication, ContentType: "application/json", Body: body,
						Header: http.Header{override: {"PUT"}, "If-Match": {"x"}}}},
				tc{name: method + " with " + override, status: 400, message: "another method",
					req: testkit.Request{Method: method, URL: communication, ContentType: "application/json", Body: body,
						Header: http.Header{override: {"PUT"}, "If-Match": {"x"}, "Authorization": {good}}}})
		}
	}
	// ASP.NET MVC reads the override in the query and a form field too.
	for _, query := range []string{"X-HTTP-Method-Override=PUT", "x-http-method-override=put", "_method=PUT", "X-HTTP-Method=PUT",
		"x=1&X%2DHTTP%2DMethod%2DOverride=PUT", "%u0058-HTTP-Method-Override=PUT", "model.X_HTTP_Method_Override=PUT",
		// PHP registers these as _method and X_HTTP_Method_Override.
		".method=PUT", "%2Emethod=PUT", "+.method=PUT", "X+HTTP+Method+Override=PUT", "X[HTTP-Method-Override=PUT"} {
		for _, method := range []string{"GET", "HEAD", "OPTIONS"} {
			tests = append(tests,
				tc{name: method + " with ?" + query + ", no Authorization", status: 401,
					req: testkit.Request{Method: method, URL: communication + "?" + query, ContentType: "application/json", Body: body,
						Header: http.Header{"If-Match": {"x"}}}},
				tc{name: method + " with ?" + query, status: 400, message: "another method",
					req: testkit.Request{Method: method, URL: communication + "?" + query, ContentType: "application/json", Body: body,
						Header: http.Header{"If-Match": {"x"}, "Authorization": {good}}}})
		}
	}
	tests = append(tests,
		tc{name: "a GET with a form body", status: 405,
			req: testkit.Request{Method: "GET", URL: communication, ContentType: "application/x-www-form-urlencoded",
				Body: "X-HTTP-Method-Override=PUT&phoneNumber=%2B19005551234", Header: http.Header{"If-Match": {"x"}, "Authorization": {good}}}},
		tc{name: "a batch part GET with ?_method=PUT", status: 400, message: "Batch part 1: The request asks in its query to be taken as another method (_method)",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
				Body: batchBody("GET " + communication + "?_method=PUT HTTP/1.1\r\nIf-Match: \"1\"\r\nContent-Type: application/json\r\nContent-Length: " +
					fmt.Sprint(len(body)) + "\r\n\r\n" + body)}},
		tc{name: "a batch part GET with ?.method=PUT", status: 400, message: "Batch part 1: The request asks in its query to be taken as another method (_method)",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
				Body: batchBody("GET " + communication + "?.method=PUT HTTP/1.1\r\nIf-Match: \"1\"\r\nContent-Type: application/json\r\nContent-Length: " +
					fmt.Sprint(len(body)) + "\r\n\r\n" + body)}},
		tc{name: "startPhoneAudio with ?%2Emethod=PUT", status: 400, message: "in its query to be taken as another method (_method)",
			req: testkit.Request{URL: opsApp + "/communication/startPhoneAudio?%2Emethod=PUT", ContentType: "application/json",
				Body: `{"to":"sip:john@contoso.com"}`, Header: http.Header{"Authorization": {good}}}},
		tc{name: "startPhoneAudio with ?X-HTTP-Method-Override=PUT", status: 400, message: "in its query to be taken as another method (X-HTTP-Method-Override)",
			req: testkit.Request{URL: opsApp + "/communication/startPhoneAudio?X-HTTP-Method-Override=PUT", ContentType: "application/json",
				Body: `{"to":"sip:john@contoso.com"}`, Header: http.Header{"Authorization": {good}}}},
		tc{name: "a forwarding settings GET with an override", status: 400, message: "another method",
			req: testkit.Request{Method: "GET", URL: opsApp + "/me/callForwardingSettings/unansweredCallSettings", ContentType: "application/json",
				Body: `{"target":"Contact","ringDelay":5}`, Header: http.Header{"X-Http-Method-Override": {"PUT"}, "If-Match": {"x"}, "Authorization": {good}}}},
		tc{name: "a batch part GET with an override", status: 400, message: "Batch part 1: The request asks to be taken as another method",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
				Body: batchBody("GET " + communication + " HTTP/1.1\r\nX-HTTP-Method-Override: PUT\r\nIf-Match: \"1\"\r\nContent-Type: application/json\r\nContent-Length: " +
					fmt.Sprint(len(body)) + "\r\n\r\n" + body)}},
		tc{name: "a batch part GET with an override spelled X_HTTP_Method_Override", status: 400, message: "Batch part 1: The request asks to be taken as another method",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
				Body: batchBody("GET " + communication + " HTTP/1.1\r\nX_HTTP_Method_Override: PUT\r\nIf-Match: \"1\"\r\nContent-Type: application/json\r\nContent-Length: " +
					fmt.Sprint(len(body)) + "\r\n\r\n" + body)}})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(pool.Received())
			resp := e.send(tc.req)
			if got := pool.Received()[before:]; resp.Status != tc.status || len(got) != 0 {
				t.Fatalf("status %d (%s), the pool got %d requests; want %d and none", resp.Status, resp.Body, len(got), tc.status)
			}
			if tc.message != "" && tc.req.Method != "HEAD" && !strings.Contains(ucwaError(t, resp.Body).Message, tc.message) {
				t.Errorf("answer %s, want a message with %q", resp.Body, tc.message)
			}
		})
	}
	// Reads without an override pass as they came, also with a query
	// whose values, not names, spell one.
	for _, method := range []string{"GET", "HEAD", "OPTIONS"} {
		for _, url := range []string{communication, communication + "?x=_method&y=X-HTTP-Method-Override"} {
			before := len(pool.Received())
			resp := e.send(testkit.Request{Method: method, URL: url})
			if got := pool.Received()[before:]; resp.Status != http.StatusCreated || len(got) != 1 || got[0].Method != method {
				t.Fatalf("%s %s: status %d, the pool got %+v; want it passed on", method, url, resp.Status, got)
			}
		}
	}
}

// TestRewriteURLHeaders: applications on IIS (whose URL Rewrite module a
// Skype for Business front end requires) take X-Original-URL or
// X-Rewrite-URL for the request's URL. A request that is no operation but
// names a guarded operation's URL there (or a near miss) is a near miss,
// 404, or it would reach the pool unchecked, without a token and with a
// premium-rate number; a guarded request naming any URL is refused, 400,
// or it would be judged without the query it names. Alone and as a batch
// part; a URL that is no operation passes.
func TestRewriteURLHeaders(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := doorsSite(t, pool.Addr())
	good := bearerFor(t, allScopes...)
	search := opsApp + "/people/search"
	body := `{"to":"+19005551234"}`
	tests := []struct {
		name    string
		req     testkit.Request
		status  int
		message string
	}{
		{name: "an unguarded POST naming startPhoneAudio in X-Original-URL", status: 404, message: "There is no resource",
			req: testkit.Request{URL: search, ContentType: "application/json", Body: body, Header: http.Header{"X-Original-Url": {startPath}}}},
		{name: "an unguarded POST naming startPhoneAudio in X-Rewrite-URL", status: 404, message: "There is no resource",
			req: testkit.Request{URL: search, ContentType: "application/json", Body: body, Header: http.Header{"X-Rewrite-Url": {startPath + "?x=1"}}}},
		{name: "an unguarded POST naming startPhoneAudio's absolute URL", status: 404, message: "There is no resource",
			req: testkit.Request{URL: search, ContentType: "application/json", Body: body, Header: http.Header{"X-Original-Url": {"https://pool.contoso.com" + startPath}}}},
		{name: "an unguarded POST naming a near miss", status: 404, message: "There is no resource",
			req: testkit.Request{URL: search, ContentType: "application/json", Body: body, Header: http.Header{"X-Original-Url": {startPath + ".aspx"}}}},
		{name: "an unguarded POST naming communication, the PUT that stores a number", status: 404, message: "There is no resource",
			req: testkit.Request{URL: search, ContentType: "application/json", Body: `{"phoneNumber":"+19005551234"}`, Header: http.Header{"X-Original-Url": {opsApp + "/communication"}}}},
		{name: "a GET naming startPhoneAudio", status: 404, message: "There is no resource",
			req: testkit.Request{Method: "GET", URL: opsApp + "/events", ContentType: "application/json", Body: body, Header: http.Header{"X-Original-Url": {startPath}}}},
		// ASP.NET reads a header's lines joined by ',': two reads here
		// would be /communication/x,/../startPhoneAudio.
		{name: "a GET naming two reads in two lines of X-Original-URL", status: 404, message: "There is no resource",
			req: testkit.Request{Method: "GET", URL: opsApp + "/events", Header: http.Header{"X-Original-Url": {opsApp + "/communication/x", "/../startPhoneAudio"}}}},
		{name: "startPhoneAudio naming itself with another query", status: 400, message: "another URL",
			req: testkit.Request{URL: startPath, ContentType: "application/json", Body: `{"to":"+14255551234"}`,
				Header: http.Header{"X-Original-Url": {startPath + "?to=tel:%2B19005551234"}, "Authorization": {good}}}},
		{name: "a batch's unguarded part naming startPhoneAudio", status: 404, message: "Batch part 1: There is no resource",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
				Body: batchBody("POST " + search + " HTTP/1.1\r\nX-Original-URL: " + startPath + "\r\nContent-Type: application/json\r\n\r\n" + body)}},
		// Caddy drops a request's own headers spelled with '_'; a batch
		// part's are the edge's to read, and IIS takes X_Original_URL for
		// X-Original-URL.
		{name: "a batch's unguarded part naming startPhoneAudio in X_Original_URL", status: 404, message: "Batch part 1: There is no resource",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
				Body: batchBody("POST " + search + " HTTP/1.1\r\nX_Original_URL: " + startPath + "\r\nContent-Type: application/json\r\n\r\n" + body)}},
		{name: "a batch's guarded part naming a URL in X_Rewrite_URL", status: 400, message: "Batch part 1: The request names another URL",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
				Body: batchBody("POST " + startPath + " HTTP/1.1\r\nX_Rewrite_URL: " + startPath + "\r\nContent-Type: application/json\r\n\r\n" + `{"to":"+14255551234"}`)}},
		{name: "a batch's guarded part naming a URL", status: 400, message: "Batch part 1: The request names another URL",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
				Body: batchBody("POST " + startPath + " HTTP/1.1\r\nX-Rewrite-URL: " + startPath + "\r\nContent-Type: application/json\r\n\r\n" + `{"to":"+14255551234"}`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(pool.Received())
			resp := e.send(tc.req)
			if got := pool.Received()[before:]; resp.Status != tc.status || len(got) != 0 {
				t.Fatalf("status %d (%s), the pool got %d requests; want %d and none", resp.Status, resp.Body, len(got), tc.status)
			}
			if !strings.Contains(ucwaError(t, resp.Body).Message, tc.message) {
				t.Errorf("answer %s, want a message with %q", resp.Body, tc.message)
			}
		})
	}
	// A URL that is no operation passes, as the request does.
	before := len(pool.Received())
	resp := e.send(testkit.Request{URL: search, ContentType: "application/json", Body: body, Header: http.Header{"X-Original-Url": {opsApp + "/people/search?q=x"}}})
	if got := pool.Received()[before:]; resp.Status != http.StatusCreated || len(got) != 1 {
		t.Fatalf("status %d (%s), the pool got %d requests; want it passed on", resp.Status, resp.Body, len(got))
	}
}
