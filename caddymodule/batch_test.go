package caddymodule

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// batchPart is one part of a batch of boundary "b": its own headers
// (with a Content-Length of the inner request when withLength), then the
// inner request.
func batchPart(withLength bool, inner string) string {
	head := "--b\r\nContent-Type: application/http; msgtype=request\r\n"
	if withLength {
		head += "Content-Length: " + strconv.Itoa(len(inner)) + "\r\n"
	}
	return head + "\r\n" + inner + "\r\n"
}

// innerPOST is an inner request with a body and its Content-Length.
func innerPOST(target, contentType, body string) string {
	return "POST " + target + " HTTP/1.1\r\nHost: fe1.contoso.com\r\nContent-Type: " + contentType + "\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// TestBatchCleanedInPlace: the guarded parts of a batch are checked as if
// each came alone and cleaned in place (bodies, a Data header, a query),
// with the lengths that describe them corrected; every other byte, the
// unguarded parts among them, reaches the pool as it came.
func TestBatchCleanedInPlace(t *testing.T) {
	e := startOpsEdge(t, "INFO", "")
	events := "GET " + opsApp + "/events?ack=1 HTTP/1.1\r\nHost: fe1.contoso.com\r\n\r\n"
	me := "GET " + opsApp + "/me HTTP/1.1\r\nAccept: application/json\r\n" // no empty line, as Microsoft's examples send a GET
	build := func(start, forward, data string) string {
		return "\r\n" +
			batchPart(false, events) +
			batchPart(true, innerPOST(opsApp+"/communication/startPhoneAudio", "application/json", start)) +
			batchPart(true, "POST "+opsApp+"/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact?"+forward+" HTTP/1.1\r\n\r\n") +
			batchPart(false, "POST "+opsApp+"/communication/conversations/eee0/addParticipant HTTP/1.1\r\nData: "+data+"\r\n") +
			batchPart(true, me) +
			"--b--\r\n"
	}
	sent := build(`{"to":"(425) 555-1234","operationId":"1"}`, "target=%2B1+425+555+0000&x=1", `{"to":"tel:+1-425-555-9999"}`)
	want := build(`{"to":"tel:+14255551234","operationId":"1"}`, "target=tel%3A%2B14255550000&x=1", `{"to":"tel:+14255559999"}`)
	resp := e.send(testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Accept: "multipart/batching",
		Header: http.Header{"Authorization": {bearerFor(t, "Conversations.Initiate", "User.ReadWrite")}}, Body: sent})
	got := e.pool.Received()
	if resp.Status != http.StatusCreated || len(got) != 1 {
		t.Fatalf("status %d (%s), the pool got %d requests; want one", resp.Status, resp.Body, len(got))
	}
	if got[0].Body != want {
		t.Errorf("the pool got\n%q\nwant\n%q", got[0].Body, want)
	}
	if got[0].Header.Get("Content-Length") != strconv.Itoa(len(want)) || got[0].Header.Get("Content-Type") != batchType {
		t.Errorf("the pool got headers %v", got[0].Header)
	}
}

// TestBatchForwardedUnchanged: a batch without guarded parts (ten GETs,
// as clients batch reads) and one whose guarded parts are clean already
// reach the pool byte for byte, after the token check.
func TestBatchForwardedUnchanged(t *testing.T) {
	e := startOpsEdge(t, "INFO", "")
	var gets []string
	for i := range 10 {
		gets = append(gets, fmt.Sprintf("GET %s/people/contacts/%d?x=%%2B1900 HTTP/1.1\r\nAccept: application/json\r\n\r\n", opsApp, i))
	}
	clean := batchBody(innerPOST(opsApp+"/communication/startPhoneAudio", "application/xml",
		`<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">tel:+14255551234</property></input>`),
		"GET "+opsApp+"/me HTTP/1.1\r\n")
	for name, body := range map[string]string{"ten GETs": batchBody(gets...), "clean guarded parts": clean} {
		t.Run(name, func(t *testing.T) {
			before := len(e.pool.Received())
			if resp := e.send(testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Body: body}); resp.Status != http.StatusUnauthorized {
				t.Fatalf("without a token: %d", resp.Status)
			}
			resp := e.send(testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Body: body,
				Header: http.Header{"Authorization": {bearerFor(t, "Contacts.ReadWrite", "Conversations.Receive")}}})
			got := e.pool.Received()[before:]
			if resp.Status != http.StatusCreated || len(got) != 1 || got[0].Body != body {
				t.Fatalf("status %d, the pool got %+v; want the batch byte for byte", resp.Status, got)
			}
		})
	}
}

// TestBatchRefused: a batch the edge refuses as a whole, nothing of it
// delivered; a part's refusal names its position.
func TestBatchRefused(t *testing.T) {
	// The 403s of a batch and of its parts carry the 401's realm and
	// challenge parameters.
	e := startOpsEdge(t, "INFO", "max_batch_parts 100\nchallenge realm edge\nchallenge client_id c1")
	good := bearerFor(t, allScopes...)
	start := func(body string) string {
		return innerPOST(opsApp+"/communication/startPhoneAudio", "application/json", body)
	}
	get := "GET " + opsApp + "/me HTTP/1.1\r\n"
	many := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = get
		}
		return batchBody(parts...)
	}
	for _, tc := range []struct {
		name        string
		auth        string
		method      string
		contentType string
		body        string
		status      int
		message     string   // part of the message
		params      []string // nil: not checked
		challenge   string
		encodings   []string // the batch's Content-Encoding fields
	}{
		{name: "no token", body: batchBody(get), status: 401, challenge: `Bearer realm="edge", client_id="c1"`},
		{name: "a token with none of the batch's scopes", auth: bearerFor(t, "User.Read"), body: batchBody(get), status: 403,
			challenge: `Bearer realm="edge", error="insufficient_scope", scope="User.ReadWrite Contacts.ReadWrite Conversations.Initiate Conversations.Receive Meetings.ReadWrite", client_id="c1"`},
		{name: "a part the token may not make", auth: bearerFor(t, "Conversations.Initiate"), status: 403, message: "Batch part 2: The token grants none of the scopes immediateForwardToContact needs: User.ReadWrite.",
			body:      batchBody(start(`{"to":"sip:a@b.c"}`), "POST "+opsApp+"/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact?target=sip:a@b.c HTTP/1.1\r\n"),
			challenge: `Bearer realm="edge", error="insufficient_scope", scope="User.ReadWrite", client_id="c1"`},
		{name: "a guarded part with a token of its own", body: batchBody(get, "POST "+opsApp+"/communication/startPhoneAudio?to=sip:a@b.c HTTP/1.1\r\nAuthorization: Bearer cwt=other\r\n"),
			status: 400, message: "Batch part 2: A batched request carries no credentials of its own"},
		// A web ticket or cookie is a credential too: SfB's web services
		// take a ticket in X-MS-WebTicket, and a pool that ran the part as
		// their user would run it as one the edge never verified.
		{name: "a guarded part with a web ticket of its own", body: batchBody(get, "POST "+opsApp+"/communication/startPhoneAudio?to=sip:a@b.c HTTP/1.1\r\nX-MS-WebTicket: opaque=other\r\n"),
			status: 400, message: "Batch part 2: A batched request carries no credentials of its own"},
		{name: "a guarded part with a web ticket spelled X_MS_WebTicket (IIS reads it as X-MS-WebTicket)", body: batchBody(get, "POST "+opsApp+"/communication/startPhoneAudio?to=sip:a@b.c HTTP/1.1\r\nX_MS_WebTicket: opaque=other\r\n"),
			status: 400, message: "Batch part 2: A batched request carries no credentials of its own"},
		{name: "a guarded part with a cookie", body: batchBody(get, "POST "+opsApp+"/communication/startPhoneAudio?to=sip:a@b.c HTTP/1.1\r\ncookie: cwt=other\r\n"),
			status: 400, message: "Batch part 2: A batched request carries no credentials of its own"},
		{name: "a failing part", body: batchBody(get, start(`{"to":"sip:a@b.c"}`), start(`{"to":"sip:a@b.c","phoneNumber":"+1 900 555 9999 garbage"}`)),
			status: 400, message: "Batch part 3: The phone normalization failed.", params: []string{"phoneNumber"}},
		{name: "a failing part in the query", body: batchBody(get, "POST "+opsApp+"/communication/startPhoneAudio?to=%2B1900 HTTP/1.1\r\n"),
			status: 400, message: "Batch part 2: ", params: []string{"to"}},
		{name: "a failing Data part", body: batchBody("POST " + opsApp + `/communication/conversations/eee0/addParticipant HTTP/1.1` + "\r\nData: {\"to\":\"sip:a@b.c?Contact=x\"}\r\n"),
			status: 400, message: "Batch part 1: ", params: []string{"to"}},
		{name: "a Data part that is not JSON", body: batchBody("POST " + opsApp + "/communication/conversations/eee0/addParticipant HTTP/1.1\r\nData: to=sip:a@b.c\r\n"),
			status: 400, message: "Batch part 1: "},
		{name: "a near miss", body: batchBody(get, "POST "+opsApp+"/communication/startPhoneAudio%E2%80%8B HTTP/1.1\r\n"),
			status: 404, message: "Batch part 2: There is no resource at this path."},
		{name: "a nested batch", body: batchBody(get, "POST "+opsApp+"/batch HTTP/1.1\r\nContent-Type: multipart/batching; boundary=c\r\n\r\n--c--\r\n"),
			status: 400, message: "Batch part 2: a batch cannot hold another batch."},
		{name: "a part of the wrong method", body: batchBody("GET " + opsApp + "/communication/startPhoneAudio HTTP/1.1\r\n"),
			status: 400, message: "Batch part 1: startPhoneAudio accepts POST only"},
		{name: "a PUT part without If-Match", body: batchBody("PUT " + opsApp + "/communication HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{}"),
			status: 428, message: "Batch part 1: "},
		// .NET's ReadAsHttpRequestMessageAsync runs a part at scheme "://"
		// Host target: an unguarded POST whose Host ends in a guarded path
		// and "?" (or "#") would run startPhoneAudio with a body the edge
		// never checked.
		{name: "an unguarded part whose Host holds a guarded path", body: batchBody(get, "POST "+opsApp+"/people/search HTTP/1.1\r\nHost: fe1.contoso.com"+opsApp+
			"/communication/startPhoneAudio?\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n{\"to\":\"+19005551234\"}"),
			status: 400, message: "Batch part 2: its request's Host is not a host name"},
		{name: "a part whose Host holds a fragment", body: batchBody("POST " + opsApp + "/people/search HTTP/1.1\r\nHost: fe1.contoso.com" + opsApp +
			"/communication/startPhoneAudio#\r\nData: {\"to\":\"+19005551234\"}\r\n"),
			status: 400, message: "Batch part 1: its request's Host is not a host name"},
		// application/http may hold a pipeline of requests, and HTTP/1.1
		// gives a GET without Content-Length no body: a reader that frames
		// the part as HTTP runs its "body" as a second request.
		{name: "a request pipelined in an unguarded part", body: batchBody(get, "GET "+opsApp+"/me HTTP/1.1\r\nHost: fe1.contoso.com\r\n\r\n"+
			innerPOST(opsApp+"/communication/startPhoneAudio", "application/json", `{"to":"+19005551234"}`)),
			status: 400, message: "Batch part 2: its request has a body without Content-Length that reads as another request"},
		{name: "101 parts", body: many(101), status: 400, message: "more than 100 parts"},
		{name: "a part that does not parse", body: batchBody(get, "POST /x"), status: 400, message: "Batch part 2: "},
		{name: "not a batch", contentType: "application/json", body: `{}`, status: 415},
		{name: "two Content-Types", contentType: batchType + "\x00", body: batchBody(get), status: 415},
		// A pool would decode it, and run parts the edge never read.
		{name: "an encoded batch", encodings: []string{"gzip"}, body: batchBody(get), status: 415, message: "encoded"},
		// A pool decodes each coding of each field in turn.
		{name: "an encoded batch behind an identity field", encodings: []string{"identity", "gzip"}, body: batchBody(get), status: 415, message: "encoded"},
		{name: "GET of the batch", method: "GET", status: 405},
		{name: "larger than max_body_size", body: batchBody(get, start(`{"to":"sip:a@b.c","x":"`+strings.Repeat("x", 70_000)+`"}`)), status: 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := tc.auth
			if auth == "" && tc.status != 401 {
				auth = good
			}
			req := testkit.Request{Method: tc.method, URL: opsApp + "/batch", ContentType: tc.contentType, Body: tc.body, Header: http.Header{}}
			if req.Method == "" {
				req.Method = "POST"
			}
			if req.ContentType == "" {
				req.ContentType = batchType
			}
			if strings.HasSuffix(req.ContentType, "\x00") {
				req.ContentType = strings.TrimSuffix(req.ContentType, "\x00")
				req.Header.Add("Content-Type", batchType)
			}
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			if tc.encodings != nil {
				req.Header["Content-Encoding"] = tc.encodings
			}
			before := len(e.pool.Received())
			resp := e.send(req)
			if resp.Status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, tc.status)
			}
			if n := len(e.pool.Received()) - before; n != 0 || len(e.next.Received()) != 0 {
				t.Fatalf("the pool got %d requests, want none", n)
			}
			body := ucwaError(t, resp.Body)
			var names []string
			for _, p := range body.Parameters {
				names = append(names, p.Name)
			}
			if !strings.Contains(body.Message, tc.message) || tc.params != nil && !slices.Equal(names, tc.params) {
				t.Errorf("answer %s, want a message with %q and parameters %v", resp.Body, tc.message, tc.params)
			}
			if got := resp.Header.Get("WWW-Authenticate"); tc.challenge != "" && got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			if allow := resp.Header.Get("Allow"); tc.method == "" && allow != "" {
				t.Errorf("a part's Allow %q answers the batch", allow)
			}
		})
	}
	t.Run("100 parts", func(t *testing.T) {
		body := many(100)
		resp := e.send(testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Body: body, Header: http.Header{"Authorization": {good}}})
		if got := e.pool.Received(); resp.Status != http.StatusCreated || len(got) != 1 || got[0].Body != body {
			t.Fatalf("status %d (%s), the pool got %d requests", resp.Status, resp.Body, len(got))
		}
	})
}

// TestBatchPreambleEpilogue: a batch with text before its first
// boundary delimiter (a preamble) or after its closing one (an
// epilogue), such as a request to a premium number, is refused 400 and
// never reaches the pool: RFC 2046 has readers ignore both, but a pool's
// reader that does not would run a request the edge never judged. Blank
// ones, as UCWA's batch.js writes (its body starts with the CRLF of its
// first delimiter and ends with the CRLF after its closing one), pass as
// sent.
func TestBatchPreambleEpilogue(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	part := "--b\r\nContent-Type: application/http; msgtype=request\r\n\r\nGET " + opsApp + "/me HTTP/1.1\r\nHost: fe1.contoso.com\r\n\r\n\r\n--b--\r\n"
	request := "POST " + startOpsPath + " HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"to\":\"tel:+19005551234\"}\r\n"
	for _, tc := range []struct {
		name, preamble, epilogue string
		refusal                  string // what the refusal names; "" for a batch that passes
	}{
		{name: "a request in the preamble", preamble: request, refusal: "(a preamble)"},
		{name: "a word in the preamble", preamble: "This is a preamble.\r\n", refusal: "(a preamble)"},
		{name: "a request in the epilogue", epilogue: request, refusal: "(an epilogue)"},
		{name: "a word in the epilogue", epilogue: "This is an epilogue.", refusal: "(an epilogue)"},
		{name: "batch.js's blank preamble", preamble: "\r\n"},
		{name: "a blank epilogue", epilogue: "\r\n\t "},
		{name: "no preamble, no epilogue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.pool.Received())
			body := tc.preamble + part + tc.epilogue
			resp := e.send(testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Accept: "multipart/batching", Body: body,
				Header: http.Header{"Authorization": {auth}}})
			got := e.pool.Received()[before:]
			if tc.refusal == "" {
				if len(got) != 1 || got[0].Body != body {
					t.Fatalf("status %d (%s), the pool got %+v; want the batch as sent", resp.Status, resp.Body, got)
				}
				return
			}
			if resp.Status != http.StatusBadRequest || len(got) != 0 || !strings.Contains(resp.Body, "DeserializationFailure") ||
				!strings.Contains(resp.Body, tc.refusal) || strings.Contains(resp.Body, "9005551234") {
				t.Fatalf("status %d (%s), the pool got %d requests; want 400 and none", resp.Status, resp.Body, len(got))
			}
		})
	}
}

// TestBatchPartEscapedDotSegments: a part whose path escapes a dot, a
// slash, a backslash or a percent sign is refused 400, the batch never
// reaching the pool: the edge reads startPhoneAudio/%2E%2E/%2E%2E/me as
// me (no guarded operation), where a pool's batch handler that keeps the
// escapes may route it to startPhoneAudio and dial the number the part
// carries. The same part with its query escaped passes.
func TestBatchPartEscapedDotSegments(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	batch := func(target string) string {
		return "--b\r\nContent-Type: application/http; msgtype=request\r\n\r\nPOST " + target +
			" HTTP/1.1\r\nHost: fe1.contoso.com\r\nContent-Type: application/json\r\nContent-Length: 25\r\n\r\n{\"to\":\"tel:+19005551234\"}\r\n--b--\r\n"
	}
	send := func(body string) testkit.Response {
		return e.send(testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Accept: "multipart/batching", Body: body,
			Header: http.Header{"Authorization": {auth}}})
	}
	for _, target := range []string{
		startOpsPath + "/%2E%2E/%2e%2e/me",
		startOpsPath + "%2F..%2F..%2Fme",
		startOpsPath + "/.%2E/.%2E/me",
		startOpsPath + "/%252E%252E/%252E%252E/me",
	} {
		t.Run(target[len(startOpsPath):], func(t *testing.T) {
			before := len(e.pool.Received())
			resp := send(batch(target))
			if got := e.pool.Received()[before:]; resp.Status != http.StatusBadRequest || len(got) != 0 || !strings.Contains(resp.Body, "escapes a '.'") {
				t.Fatalf("status %d (%s), the pool got %d requests; want 400 and none", resp.Status, resp.Body, len(got))
			}
		})
	}
	before := len(e.pool.Received())
	body := batch(opsApp + "/me?x=%2E%2E%2F")
	resp := send(body)
	if got := e.pool.Received()[before:]; len(got) != 1 || got[0].Body != body {
		t.Fatalf("a query with escapes: status %d (%s), the pool got %+v; want the batch as sent", resp.Status, resp.Body, got)
	}
}

// TestBatchOwnQuery: the batch's own query is read as any operation's
// (the batch takes no inputs): a phone destination named there (in any
// letter case, or as a model-binding part) is refused 400 naming it, and
// a query that does not parse whole is refused too, with nothing
// delivered. A pool that runs the parts in the batch's request reads
// that query where a part's Request[name] looks first, before the
// batch's cookies, which are refused already. A query without one, a
// blank destination and a word of its property pass as they came.
func TestBatchOwnQuery(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	body := batchBody("POST " + startOpsPath + " HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + `{"to":"sip:john@contoso.com"}`)
	for _, tc := range []struct {
		name, query string
		params      []string // nil: passes
		malformed   bool
	}{
		{name: "to", query: "to=tel:%2B19005551234", params: []string{"to"}},
		{name: "phoneNumber and target", query: "phoneNumber=%2B19005551234&target=%2B19005551234", params: []string{"phoneNumber", "target"}},
		{name: "another letter case", query: "x=1&NUMBER=%2B19005551234", params: []string{"number"}},
		{name: "a model-binding part", query: "model.delegator=%2B19005551234", params: []string{"delegator"}},
		{name: "a ; separator", query: "x=1;to=%2B19005551234", malformed: true},
		{name: "a malformed escape", query: "to=%2B1900555%zz", malformed: true},
		{name: "no destination, a blank one and a word pass", query: "x=%2B19005551234&to=&target=Contact"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.pool.Received())
			resp := e.send(testkit.Request{URL: opsApp + "/batch?" + tc.query, ContentType: batchType, Body: body,
				Header: http.Header{"Authorization": {auth}}})
			got := e.pool.Received()[before:]
			if tc.params == nil && !tc.malformed {
				if resp.Status != http.StatusCreated || len(got) != 1 || got[0].RawQuery != tc.query || got[0].Body != body {
					t.Fatalf("status %d (%s), the pool got %+v; want 201 and the batch as sent", resp.Status, resp.Body, got)
				}
				return
			}
			if resp.Status != http.StatusBadRequest || len(got) != 0 {
				t.Fatalf("status %d (%s), the pool got %d requests; want 400 and none", resp.Status, resp.Body, len(got))
			}
			if tc.malformed {
				assertUCWAError(t, resp, "BadRequest", "ParameterValidationFailure", nil, false)
				return
			}
			assertUCWAError(t, resp, "BadRequest", "ParameterValidationFailure", tc.params, false)
			if strings.Contains(resp.Body, "9005551234") {
				t.Errorf("the refusal shows the value: %s", resp.Body)
			}
		})
	}
}
