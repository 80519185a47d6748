package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// pathCase is a request to a path, and whether the edge refuses it as a
// near miss (404, nothing reaches the pool) or passes it on as it came.
type pathCase struct {
	method, path string
	near         bool
}

// checkPaths sends each case to the edge, with a body a pool would run
// as startPhoneAudio to a premium-rate number and no token, and checks
// what the pool got.
func checkPaths(t *testing.T, cases []pathCase) {
	t.Helper()
	pool := testkit.NewUpstream(t)
	e := doorsSite(t, pool.Addr())
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			before := len(pool.Received())
			resp := e.send(testkit.Request{Method: tc.method, URL: tc.path, ContentType: "application/json", Body: `{"to":"+19005551234"}`})
			got := pool.Received()[before:]
			switch {
			case tc.near && (resp.Status != http.StatusNotFound || len(got) != 0 || !strings.Contains(ucwaError(t, resp.Body).Message, "no resource")):
				t.Fatalf("status %d (%s), the pool got %d requests; want a near miss, 404 and none", resp.Status, resp.Body, len(got))
			case !tc.near && (resp.Status != http.StatusCreated || len(got) != 1):
				t.Fatalf("status %d (%s), the pool got %d requests; want it passed on", resp.Status, resp.Body, len(got))
			}
		})
	}
}

// TestPathInfoNearMiss: ASP.NET gives a handler every segment after its
// name as PathInfo (page.aspx/a/b), so a POST to startPhoneAudio/x/y may
// reach startPhoneAudio as surely as one to startPhoneAudio/x, which the
// edge refused while it passed the first to the pool unchecked; "..;" is
// no dot segment to IIS, but the edge read startPhoneAudio/..;/x as
// communication/x.
func TestPathInfoNearMiss(t *testing.T) {
	checkPaths(t, []pathCase{
		{"POST", startPath + "/x/y", true},
		{"POST", startPath + "/x/y/z", true},
		{"POST", startPath + ".aspx/x/y", true},
		{"POST", startPath + "/..;/x", true},
		{"POST", startPath + "%2F..%3B%2Fx", true},
		{"POST", opsApp + "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact/x/y", true},
		{"POST", opsApp + "/batch/a/b", true},
		// Reads pass, and so do the sub-resources of resources that have
		// them (see TestPathBelowPUTResource).
		{"GET", startPath + "/x/y", false},
		{"POST", opsApp + "/communication/phoneAudioInvitations/42/cancel", false},
	})
}

// TestOperationBehindLeaf: a path that ends in an operation's suffix but
// holds, before it, the name of an operation without sub-resources (a
// leaf) is a near miss as any other path with segments after a leaf's
// name is: ASP.NET may hand it to the leaf with the rest as PathInfo, and
// the edge had judged it as the operation it ends in. So
// startPhoneAudio/x/communication/startEmergencyCall (or
// startPhoneAudio/..;/communication/startEmergencyCall: "..;" is no dot
// segment to IIS), judged as an emergency call, which no destination rule refuses, reached the pool
// with a premium-rate to that startPhoneAudio would dial; a batch of reads
// behind acceptWithPhoneAudio, or an addParticipant to a SIP name behind
// startPhoneAudio, reached it counted by no limit as the call-via-work a
// pool may run. Operations below resources that have sub-resources, and
// reads, pass as before.
func TestOperationBehindLeaf(t *testing.T) {
	e := startGuardEdge(t, `destinations {
			deny +1900
		}`)
	auth := callerBearer(t)
	const emergency = "/communication/startEmergencyCall"
	reads := batchBody("GET " + opsApp + "/me HTTP/1.1\r\n")
	for _, tc := range []struct {
		method, path, contentType, body string
		near                            bool
	}{
		{"POST", startOpsPath + "/x" + emergency, "application/json", `{"to":"tel:+19005551234"}`, true},
		{"POST", startOpsPath + emergency, "application/json", `{"to":"tel:+19005551234"}`, true},
		{"POST", startOpsPath + ".aspx" + emergency, "application/json", `{"to":"tel:+19005551234"}`, true},
		// "..;" is no dot segment to IIS: the leaf stays before it there.
		{"POST", startOpsPath + "/..;" + emergency, "application/json", `{"to":"tel:+19005551234"}`, true},
		{"POST", startOpsPath + ";x/x/..;/..;/startEmergencyCall", "application/json", `{"to":"tel:+19005551234"}`, true},
		{"POST", opsApp + "/communication/conversations/c1/audioVideo/addAudio" + emergency, "application/json", `{"to":"tel:+19005551234"}`, true},
		{"POST", startOpsPath + "/addParticipant", "application/json", `{"to":"sip:john@contoso.com"}`, true},
		{"POST", startOpsPath + "/continuePhoneAudio", "application/json", `{"phoneNumber":"tel:+14255551234"}`, true},
		{"POST", opsApp + "/communication/invitations/i1/acceptWithPhoneAudio/batch", batchType, reads, true},
		{"PUT", opsApp + "/me/makeMeAvailable/x/me/phones/work", "application/json", `{"number":"tel:+14255551234"}`, true},
		// The operations as pools hand them out, below resources that
		// have sub-resources, pass.
		{"POST", opsApp + emergency, "application/json", `{"to":"911"}`, false},
		// A dot segment removes the leaf, there as at the edge.
		{"POST", startOpsPath + "/.." + emergency[len("/communication"):], "application/json", `{"to":"911"}`, false},
		{"POST", opsApp + "/communication/conversations/c1/participants/addParticipant", "application/json", `{"to":"sip:john@contoso.com"}`, false},
		{"POST", opsApp + "/communication/conversationLogs/l1/continuePhoneAudio", "application/json", `{"phoneNumber":"tel:+14255551234"}`, false},
		{"POST", opsApp + "/communication/invitations/i1/acceptWithPhoneAudio", "", "", false},
		{"POST", opsApp + "/batch", batchType, reads, false},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			header := http.Header{"Authorization": {auth}}
			if tc.method == "PUT" {
				header.Set("If-Match", `"1"`)
			}
			before := len(e.pool.Received())
			resp := e.send(testkit.Request{Method: tc.method, URL: tc.path, ContentType: tc.contentType, Body: tc.body, Header: header})
			got := e.pool.Received()[before:]
			if tc.near {
				if resp.Status != http.StatusNotFound || len(got) != 0 {
					t.Fatalf("status %d (%s), the pool got %d requests; want a near miss, 404 and none", resp.Status, resp.Body, len(got))
				}
				return
			}
			if resp.Status/100 != 2 || len(got) != 1 {
				t.Fatalf("status %d (%s), the pool got %d requests; want it delivered", resp.Status, resp.Body, len(got))
			}
		})
	}
}

// TestPathOtherReadings: a path a pool on ASP.NET may read otherwise than
// the edge does. ASP.NET 4.5's Request.Url (and later versions' with
// aspnet:UseLegacyRequestUrlGeneration) is parsed from the decoded path,
// so %23 or %3F ends its path: startPhoneAudio%23x was passed on to be
// read as startPhoneAudio. A pool that allows double escaping and decodes
// again reads communication%252FstartPhoneAudio as startPhoneAudio.
func TestPathOtherReadings(t *testing.T) {
	checkPaths(t, []pathCase{
		{"POST", startPath + "%23", true},
		{"POST", startPath + "%23x", true},
		{"POST", startPath + "%3F", true},
		{"POST", startPath + "%3Fto=sip:a@b.c", true},
		{"PUT", opsApp + "/communication%23/x", true},
		{"PUT", opsApp + "/me/callForwardingSettings%3F/x", true},
		{"POST", opsApp + "/communication%252FstartPhoneAudio", true},
		{"POST", startPath + "%2523", true},
		{"POST", opsApp + "/communication/%25u0073tartPhoneAudio", true},
		// An operation that a reading cuts short before it, to no
		// operation (see TestPathHoldsQuery).
		{"POST", opsApp + "/communication/conversations/c%23/addParticipant", true},
		{"POST", opsApp + "/communication/conversationLogs/x%253FphoneNumber=1/continuePhoneAudio", true},
		// What no reading makes an operation passes, and so do reads.
		{"POST", opsApp + "/people/search%23x", false},
		{"POST", opsApp + "/communication/conversations/eee0/messaging/sendMessage%3Fx", false},
		{"GET", startPath + "%23x", false},
	})
}

// TestPathCookielessSegment: ASP.NET (System.Web's CookielessHelper)
// takes a path segment of cookieless values, "/(S(x))/" (capital
// letters, each with its value in parentheses), out of every request's
// path before it routes it, wherever it stands, whatever the site's
// session and forms settings: PUT me/(S(x))/phones/work, which no
// operation's path spells, reached the pool unchecked to be run as PUT
// me/phones/work, storing the number of its body as a phone.
func TestPathCookielessSegment(t *testing.T) {
	checkPaths(t, []pathCase{
		{"PUT", opsApp + "/me/(S(x))/phones/work", true},
		{"PUT", opsApp + "/me/(A(x)F(y))/phones/mobile", true},
		{"PUT", opsApp + "/me/%28S%28x%29%29/phones/work", true},
		{"PUT", opsApp + "/me/(S(x))/(X(y))/phones/work", true},
		{"POST", opsApp + "/me/(S(x))/phones", true},
		{"PUT", opsApp + "/me/(S(x))/callForwardingSettings", true},
		// The segment as IIS reads it: a backslash is a slash, trailing
		// dots and spaces are trimmed.
		{"PUT", opsApp + `/me/(S(x))\phones/work`, true},
		{"PUT", opsApp + "/me/(S(x)). /phones/work", true},
		// What ASP.NET leaves as it is (a small letter, nothing after the
		// segment), reads, and a phone's DELETE pass.
		{"POST", opsApp + "/communication/conversations/(s(x))/messaging/sendMessage", false},
		// A phone below another prefix than me, left as it is, is a near
		// miss all the same (see TestPhonesWrites).
		{"PUT", opsApp + "/me/(s(x))/phones/work", true},
		{"PUT", opsApp + "/me/phones/work/(S(x))", true}, // below a phone, as without the segment
		{"GET", opsApp + "/me/(S(x))/phones/work", false},
		{"DELETE", opsApp + "/me/(S(x))/phones/work", false},
		{"POST", opsApp + "/communication/conversations/137/messaging/(S(x))/sendMessage", false},
		// Without the segment, a conversation "messaging" and a write
		// to sendMessage directly below it, no link of a conversation.
		{"POST", opsApp + "/communication/conversations/(S(x))/messaging/sendMessage", true},
	})
}

// TestPathDotSegmentAfterEmpty: a ".." after an empty segment removes
// the empty segment to RFC 3986 (remove_dot_segments, as System.Uri and
// proxies that normalize URIs resolve it), where the edge, as IIS does,
// dropped empty segments first: PUT communication//.. was the
// application to the edge, which passed it on unchecked, and is PUT
// communication/ to such a reader, storing a number.
func TestPathDotSegmentAfterEmpty(t *testing.T) {
	checkPaths(t, []pathCase{
		{"PUT", opsApp + "/communication//..", true},
		{"PUT", opsApp + "/communication/%2F..", true},
		{"PUT", opsApp + `/communication\\..`, true},
		{"PUT", opsApp + "/me/callForwardingSettings/x//../..", true},
		{"POST", opsApp + "/me/phones//..", true},
		{"POST", opsApp + "/me/makeMeAvailable//..", true},
		{"POST", opsApp + "/communication/conversationLogs/l1/continuePhoneAudio//..", true},
		// Where both readings are alike, and reads, it passes.
		{"POST", opsApp + "/communication/conversations/c1//x/../messaging/sendMessage", false},
		{"GET", opsApp + "/communication//..", false},
	})
}

// TestBatchPartPaths: a batch part is matched by the same rules, its
// other readings too (ucwa.MatchTarget decodes its target as a server
// does).
func TestBatchPartPaths(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := doorsSite(t, pool.Addr())
	for _, part := range []string{
		"POST " + opsApp + "/communication/startPhoneAudio%23x",
		"POST " + opsApp + "/communication/startPhoneAudio/x/y",
		"PUT " + opsApp + "/me/(S(x))/phones/work",
		"PUT " + opsApp + "/communication//..",
	} {
		t.Run(part, func(t *testing.T) {
			resp := e.send(testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {bearerFor(t, allScopes...)}},
				Body: batchBody(part + " HTTP/1.1\r\nContent-Type: application/json\r\nIf-Match: \"1\"\r\n\r\n" + `{"to":"+19005551234","number":"+19005551234"}`)})
			if resp.Status != http.StatusNotFound || len(pool.Received()) != 0 || !strings.Contains(ucwaError(t, resp.Body).Message, "Batch part 1: There is no resource") {
				t.Fatalf("status %d (%s), the pool got %d requests; want 404 and none", resp.Status, resp.Body, len(pool.Received()))
			}
		})
	}
}

// TestPathHoldsQuery: an escaped '?' in a guarded operation's path starts
// a query of its own in ASP.NET 4.5's Request.Url, which is parsed from
// the decoded path. There the path cut short is no operation; a pool that
// routes by the decoded path but reads its inputs from Request.Url's
// query would ring the phoneNumber of the path's "query", which the edge
// never read, for continuePhoneAudio judged with no number at all. With a
// token, such a request is a near miss (404) and reaches no pool.
func TestPathHoldsQuery(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := doorsSite(t, pool.Addr())
	path := opsApp + "/communication/conversationLogs/x%3FphoneNumber=tel:%252B19005551234%26y=/continuePhoneAudio"
	resp := e.send(testkit.Request{URL: path, ContentType: "application/json", Body: `{"operationId":"op-1"}`,
		Header: http.Header{"Authorization": {bearerFor(t, allScopes...)}}})
	if got := pool.Received(); resp.Status != http.StatusNotFound || len(got) != 0 {
		t.Fatalf("status %d (%s), the pool got %+v; want a near miss, 404 and none", resp.Status, resp.Body, got)
	}
}

// TestPathBelowPUTResource: a path below a PUT operation's resource
// (communication, callForwardingSettings and its forwarding settings)
// may reach that resource's handler with the rest as PathInfo, which runs
// a PUT, or a write a pool takes as one (.NET reads "put" as PUT, ASP.NET
// MVC a POST as the method an override names), as the PUT that stores a
// number: PUT communication/x reached the pool unchecked. A write to a
// path below one that is no resource of the reference's taking that
// method is a near miss; the resources below that take it (the
// conversations, an invitation's accept, the forwarding operations) pass,
// and so do reads.
func TestPathBelowPUTResource(t *testing.T) {
	comm := opsApp + "/communication"
	cfs := opsApp + "/me/callForwardingSettings"
	checkPaths(t, []pathCase{
		{"PUT", comm + "/x", true},
		{"PUT", comm + "/x/y", true},
		{"put", comm + "/x", true},
		{"POST", comm + "/x", true},
		{"PATCH", comm + "/x", true},
		{"MERGE", comm + "/x", true},
		{"DELETE", comm + "/x", true},
		{"get", comm + "/x", true},
		{"PUT", comm + ".aspx/x", true},
		{"PUT", comm + "/..;/x", true},
		{"PUT", comm + "/%78", true},
		// Resources of communication that take no write, or not this one.
		{"PUT", comm + "/conversations", true},
		{"POST", comm + "/conversations", true},
		{"PUT", comm + "/mediaRelayAccessToken", true},
		{"PUT", comm + "/mediaRelayAccessToken/x", true},
		{"POST", comm + "/missedItems", true},
		{"PUT", comm + "/startMessaging", true},
		{"PUT", comm + "/messagingInvitations", true},
		{"PUT", comm + "/phoneAudio", true},
		{"POST", comm + "/phoneAudio", true},
		{"POST", comm + "/phoneAudio/x", true},
		{"PUT", comm + "/phoneAudio/stopPhoneAudio", true},
		{"PUT", cfs + "/x", true},
		{"POST", cfs + "/x/y", true},
		{"PUT", cfs + "/immediateForwardSettings", true},
		{"PUT", cfs + "/immediateForwardSettings/x", true},
		{"POST", cfs + "/simultaneousRingSettings/x", true},
		{"PUT", cfs + "/unansweredCallSettings/x", true},
		{"PUT", cfs + "/turnOffCallForwarding", true},
		{"PUT", opsApp + "/x/callForwardingSettings/unansweredCallSettings/x", true},
		// Reads pass, and so do the resources below that take the method.
		{"GET", comm + "/x", false},
		{"HEAD", comm + "/x/y", false},
		{"OPTIONS", comm + "/x", false},
		{"GET", cfs + "/immediateForwardSettings", false},
		{"POST", comm + "/startMessaging", false},
		{"POST", comm + "/joinOnlineMeeting", false},
		{"POST", comm + "/replayMessage", false},
		{"POST", comm + "/messagingInvitations", false},
		{"POST", comm + "/onlineMeetingInvitations", false},
		{"POST", comm + "/messagingInvitations/60c6/accept", false},
		{"POST", comm + "/invitations/146/decline", false},
		{"POST", comm + "/conversations/eee0/messaging/sendMessage", false},
		{"DELETE", comm + "/conversations/eee0", false},
		{"POST", comm + "/conversationLogs/conversationLog/markAsRead", false},
		// The phone audio modality where the reference's conversation
		// and phoneAudio pages link it: hanging up a call-via-work.
		{"POST", comm + "/phoneAudio/holdPhoneAudio", false},
		{"POST", comm + "/phoneAudio/resumePhoneAudio", false},
		{"POST", comm + "/phoneAudio/stopPhoneAudio", false},
		{"POST", cfs + "/turnOffCallForwarding", false},
		{"POST", cfs + "/immediateForwardSettings/immediateForwardToDelegates", false},
		{"POST", cfs + "/immediateForwardSettings/immediateForwardToVoicemail", false},
		{"POST", cfs + "/simultaneousRingSettings/simultaneousRingToTeam", false},
		{"POST", cfs + "/simultaneousRingSettings/simultaneousRingToDelegates", false},
		{"POST", cfs + "/unansweredCallSettings/resetUnansweredCallSettings", false},
		{"POST", cfs + "/unansweredCallSettings/unansweredCallToVoicemail", false},
	})
}

// TestPUTResourceDoors: the doors to a PUT resource's handler beside a
// plain request below it: a read below it with a method override (which
// a pool honouring it runs as a write), a batch part, a URL named in
// X-Original-URL, are near misses too; and the operations refuse another
// method, 405, whatever its case: a POST, PATCH or MERGE to a PUT
// resource, a PUT to a POST operation. None reaches the pool.
func TestPUTResourceDoors(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := doorsSite(t, pool.Addr())
	good := bearerFor(t, allScopes...)
	comm := opsApp + "/communication"
	body := `{"phoneNumber":"+19005551234","to":"+19005551234"}`
	auth := func(h http.Header) http.Header {
		h = h.Clone()
		if h == nil {
			h = http.Header{}
		}
		h.Set("Authorization", good)
		h.Set("If-Match", "x")
		return h
	}
	for _, tc := range []struct {
		name, method, path string
		header             http.Header
		status             int
		allow, message     string
	}{
		{name: "GET below communication with an override", method: "GET", path: comm + "/x", header: http.Header{"X-Http-Method-Override": {"PUT"}}, status: 404, message: "no resource"},
		{name: "a batch part PUT below communication", method: "POST", path: opsApp + "/batch", status: 404, message: "Batch part 1: There is no resource"},
		{name: "X-Original-URL below communication", method: "PUT", path: opsApp + "/people/search", header: http.Header{"X-Original-Url": {comm + "/x"}}, status: 404, message: "no resource"},
		{name: "POST of communication", method: "POST", path: comm, status: 405, allow: "GET, HEAD, OPTIONS, PUT"},
		{name: "PATCH of communication", method: "PATCH", path: comm, status: 405, allow: "GET, HEAD, OPTIONS, PUT"},
		{name: "MERGE of communication", method: "MERGE", path: comm, status: 405, allow: "GET, HEAD, OPTIONS, PUT"},
		{name: "POST of callForwardingSettings", method: "POST", path: opsApp + "/me/callForwardingSettings", status: 405, allow: "GET, HEAD, OPTIONS, PUT"},
		{name: "PATCH of simultaneousRingSettings", method: "PATCH", path: opsApp + "/me/callForwardingSettings/simultaneousRingSettings", status: 405, allow: "GET, HEAD, OPTIONS, PUT"},
		{name: "PUT of startPhoneAudio", method: "PUT", path: comm + "/startPhoneAudio", status: 405, allow: "POST"},
		{name: "put of phoneAudioInvitations", method: "put", path: comm + "/phoneAudioInvitations", status: 405, allow: "POST"},
		{name: "PUT below startPhoneAudio", method: "PUT", path: comm + "/startPhoneAudio/x", status: 404, message: "no resource"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := testkit.Request{Method: tc.method, URL: tc.path, ContentType: "application/json", Body: body, Header: auth(tc.header)}
			if tc.path == opsApp+"/batch" {
				req.ContentType = batchType
				req.Body = batchBody("PUT " + comm + "/x HTTP/1.1\r\nIf-Match: \"1\"\r\nContent-Type: application/json\r\n\r\n" + body)
			}
			before := len(pool.Received())
			resp := e.send(req)
			if got := pool.Received()[before:]; resp.Status != tc.status || len(got) != 0 {
				t.Fatalf("status %d (%s), the pool got %d requests; want %d and none", resp.Status, resp.Body, len(got), tc.status)
			}
			if resp.Header.Get("Allow") != tc.allow || !strings.Contains(ucwaError(t, resp.Body).Message, tc.message) {
				t.Errorf("answer Allow %q, %s; want Allow %q and a message with %q", resp.Header.Get("Allow"), resp.Body, tc.allow, tc.message)
			}
		})
	}
}

// TestWriteWithMethodOverrideBelowPUT: a write to a resource below a PUT
// operation's resource that asks in a header to be taken as another
// method is run by a pool honouring it (ASP.NET MVC takes a POST as the
// method X-HTTP-Method-Override names) as that method: POST
// communication/startMessaging with X-HTTP-Method-Override: PUT as PUT
// communication/startMessaging, which the edge refuses as a near miss (a
// pool may hand it to communication with the rest as PathInfo, and store
// the number). It was passed on as the POST startMessaging takes, alone
// and as a batch part; it is a near miss too, whatever the override
// names, and so is one that asks in its query (?X-HTTP-Method-Override=PUT,
// ?_method=PUT) or may ask in a form field (a form body). Below a collection's items, and without an override, writes
// pass as before.
func TestWriteWithMethodOverrideBelowPUT(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := doorsSite(t, pool.Addr())
	good := bearerFor(t, allScopes...)
	comm := opsApp + "/communication"
	cfs := opsApp + "/me/callForwardingSettings"
	body := `{"phoneNumber":"+19005551234","target":"tel:+19005551234"}`
	part := func(method, path, override string) string {
		return batchBody(method + " " + path + " HTTP/1.1\r\n" + override + ": PUT\r\nContent-Type: application/json\r\nContent-Length: " +
			fmt.Sprint(len(body)) + "\r\n\r\n" + body)
	}
	for _, tc := range []struct {
		name     string
		req      testkit.Request
		status   int
		message  string
		poolGets int
	}{
		{name: "POST startMessaging taken as PUT", status: 404, message: "no resource",
			req: testkit.Request{URL: comm + "/startMessaging", ContentType: "application/json", Body: body, Header: http.Header{"X-Http-Method-Override": {"PUT"}}}},
		{name: "POST stopPhoneAudio taken as PUT", status: 404, message: "no resource",
			req: testkit.Request{URL: comm + "/phoneAudio/stopPhoneAudio", ContentType: "application/json", Body: body, Header: http.Header{"X-Http-Method": {"PUT"}}}},
		{name: "POST turnOffCallForwarding taken as PUT", status: 404, message: "no resource",
			req: testkit.Request{URL: cfs + "/turnOffCallForwarding", ContentType: "application/json", Body: body, Header: http.Header{"X-Method-Override": {"PUT"}}}},
		{name: "POST immediateForwardToVoicemail taken as MERGE", status: 404, message: "no resource",
			req: testkit.Request{URL: cfs + "/immediateForwardSettings/immediateForwardToVoicemail", ContentType: "application/json", Body: body,
				Header: http.Header{"X-Http-Method-Override": {"MERGE"}}}},
		{name: "GET startMessaging taken as PUT", status: 404, message: "no resource",
			req: testkit.Request{Method: "GET", URL: comm + "/startMessaging", ContentType: "application/json", Body: body, Header: http.Header{"X-Http-Method-Override": {"PUT"}}}},
		{name: "a batch part POST startMessaging taken as PUT", status: 404, message: "Batch part 1: There is no resource",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
				Body: part("POST", comm+"/startMessaging", "X-HTTP-Method-Override")}},
		{name: "a batch part POST turnOffCallForwarding taken as PUT, the override spelled with _", status: 404, message: "Batch part 1: There is no resource",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
				Body: part("POST", cfs+"/turnOffCallForwarding", "X_HTTP_Method_Override")}},
		{name: "POST startMessaging taken as PUT by its query", status: 404, message: "no resource",
			req: testkit.Request{URL: comm + "/startMessaging?X-HTTP-Method-Override=PUT", ContentType: "application/json", Body: body}},
		{name: "POST turnOffCallForwarding taken as PUT by _method in its query", status: 404, message: "no resource",
			req: testkit.Request{URL: cfs + "/turnOffCallForwarding?%5Fmethod=put", ContentType: "application/json", Body: body}},
		{name: "POST startMessaging taken as PUT by .method in its query, PHP's _method", status: 404, message: "no resource",
			req: testkit.Request{URL: comm + "/startMessaging?.method=PUT", ContentType: "application/json", Body: body}},
		{name: "POST startMessaging with a form body", status: 404, message: "no resource",
			req: testkit.Request{URL: comm + "/startMessaging", ContentType: "application/x-www-form-urlencoded", Body: "X-HTTP-Method-Override=PUT&phoneNumber=%2B19005551234"}},
		{name: "a batch part POST startMessaging taken as PUT by its query", status: 404, message: "Batch part 1: There is no resource",
			req: testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {good}},
				Body: batchBody("POST " + comm + "/startMessaging?X-Http-Method=PUT HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: " +
					fmt.Sprint(len(body)) + "\r\n\r\n" + body)}},
		// What stays a pool's own.
		{name: "POST startMessaging", status: 201, poolGets: 1,
			req: testkit.Request{URL: comm + "/startMessaging", ContentType: "application/json", Body: `{"to":"sip:john@contoso.com"}`}},
		{name: "POST below a conversation taken as PUT", status: 201, poolGets: 1,
			req: testkit.Request{URL: comm + "/conversations/eee0/messaging/sendMessage", ContentType: "text/plain", Body: "hello", Header: http.Header{"X-Http-Method-Override": {"PUT"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(pool.Received())
			resp := e.send(tc.req)
			if got := pool.Received()[before:]; resp.Status != tc.status || len(got) != tc.poolGets {
				t.Fatalf("status %d (%s), the pool got %d requests; want %d and %d", resp.Status, resp.Body, len(got), tc.status, tc.poolGets)
			}
			if tc.message != "" && !strings.Contains(ucwaError(t, resp.Body).Message, tc.message) {
				t.Errorf("answer %s, want a message with %q", resp.Body, tc.message)
			}
		})
	}
}

// TestConversationModalityNearMiss: below a conversation, a write to the
// audioVideo or phoneAudio modality, or to its participants, reached the
// pool unchecked, though a pool's operation the reference does not list
// may dial there: the Web SDK transfers a call to a phone number with
// POST .../audioVideo/transfer?to=tel:..., which no destination policy,
// limit or audit line saw. A write there that is none of the reference's
// links taking it is a near miss, with the number in the query or the
// body, alone or as a batch part, with a token or without; the
// modalities' links, reads, and what lies below the conversation
// outside them pass.
func TestConversationModalityNearMiss(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := doorsSite(t, pool.Addr())
	good := http.Header{"Authorization": {bearerFor(t, allScopes...)}}
	conv := opsApp + "/communication/conversations/137"
	runDeliveryCases(t, e, pool, []deliveryCase{
		{name: "a transfer to a number in the query", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: conv + "/audioVideo/transfer?to=tel:+19005551234"}},
		{name: "a transfer to a number in a JSON body", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: conv + "/audioVideo/transfer", ContentType: "application/json", Body: `{"to":"tel:+19005551234"}`}},
		{name: "a transfer to a number in an XML body, with a token", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: conv + "/audioVideo/transfer", ContentType: "application/xml", Accept: "application/json", Header: good,
				Body: `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">tel:+19005551234</property></input>`}},
		{name: "a transfer in other letter cases", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: conv + "/AudioVideo/TRANSFER?to=tel:+19005551234"}},
		{name: "a transfer below the modality spelled with junk", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: conv + "/audioVideo.aspx/transfer?to=tel:+19005551234"}},
		{name: "a transfer of phone audio", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: conv + "/phoneAudio/transfer", ContentType: "application/json", Body: `{"to":"tel:+19005551234"}`}},
		{name: "a POST to the participants", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: conv + "/participants", ContentType: "application/json", Body: `{"to":"tel:+19005551234"}`}},
		{name: "a PUT of a listed operation", status: 404, message: "no resource",
			req: testkit.Request{Method: "PUT", URL: conv + "/audioVideo/stopAudio", ContentType: "application/json", Body: `{"to":"tel:+19005551234"}`}},
		{name: "a transfer as a batch part", status: 404, message: "Batch part 1: There is no resource",
			req: testkit.Request{Method: "POST", URL: opsApp + "/batch", ContentType: batchType, Header: good,
				Body: batchBody("POST " + conv + "/audioVideo/transfer?to=tel:%2B19005551234 HTTP/1.1\r\n")}},
		// What stays a pool's own.
		{name: "stopAudio", status: 201, poolGets: 1,
			req: testkit.Request{Method: "POST", URL: conv + "/audioVideo/stopAudio"}},
		{name: "reportMediaDiagnostics", status: 201, poolGets: 1,
			req: testkit.Request{Method: "POST", URL: conv + "/audioVideo/reportMediaDiagnostics", ContentType: "application/json", Body: `{"errorCode":"BadRequest"}`}},
		{name: "holdPhoneAudio", status: 201, poolGets: 1,
			req: testkit.Request{Method: "POST", URL: conv + "/phoneAudio/holdPhoneAudio"}},
		{name: "a participant's eject", status: 201, poolGets: 1,
			req: testkit.Request{Method: "POST", URL: conv + "/participants/196/eject"}},
		{name: "a GET of audioVideo", status: 201, poolGets: 1,
			req: testkit.Request{Method: "GET", URL: conv + "/audioVideo"}},
		{name: "a GET below audioVideo", status: 201, poolGets: 1,
			req: testkit.Request{Method: "GET", URL: conv + "/audioVideo/transfer"}},
		{name: "sendMessage", status: 201, poolGets: 1,
			req: testkit.Request{Method: "POST", URL: conv + "/messaging/sendMessage", ContentType: "text/plain", Body: "hello"}},
		{name: "a DELETE of the conversation", status: 201, poolGets: 1,
			req: testkit.Request{Method: "DELETE", URL: conv}},
	})
}

// deliveryCase is a request, the status it gets, words of its
// answer's message, and how many requests the pool gets for it.
type deliveryCase struct {
	name     string
	req      testkit.Request
	status   int
	message  string
	poolGets int
}

// runDeliveryCases sends each case's request to e, in front of pool, as a
// subtest.
func runDeliveryCases(t *testing.T, e edge, pool *testkit.Pool, cases []deliveryCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(pool.Received())
			resp := e.send(tc.req)
			if got := pool.Received()[before:]; resp.Status != tc.status || len(got) != tc.poolGets {
				t.Fatalf("status %d (%s), the pool got %d requests; want %d and %d", resp.Status, resp.Body, len(got), tc.status, tc.poolGets)
			}
			if tc.message != "" && !strings.Contains(resp.Body, tc.message) { // JSON or XML, as the request's
				t.Errorf("answer %s, want a message with %q", resp.Body, tc.message)
			}
		})
	}
}

// TestInvitationAndConversationNearMiss: a write below an invitation or
// a conversation log, or directly below a conversation, reached the pool
// unchecked, though a
// pool's operation the reference does not list may dial there: a
// forward of an incoming call to a phone number,
// POST .../invitations/507/forward?to=tel:..., or a call transfer of the
// conversation, POST .../conversations/137/transfer?to=tel:.... A write
// there that is none of the links the reference's invitation,
// conversation log or conversation page gives, with the method their
// pages give, is a near
// miss, below every kind of invitation, with the number in the query or
// the body, alone or as a batch part, with a token or without; the
// links, reads, a conversation's DELETE and what lies below its links
// that cannot dial pass.
func TestInvitationAndConversationNearMiss(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := doorsSite(t, pool.Addr())
	good := http.Header{"Authorization": {bearerFor(t, allScopes...)}}
	comm := opsApp + "/communication"
	conv := comm + "/conversations/137"
	var cases []deliveryCase
	for _, inv := range []string{"invitations/507", "audioVideoInvitations/507", "phoneAudioInvitations/146", "participantInvitations/303",
		"onlineMeetingInvitations/711", "messagingInvitations/602"} {
		cases = append(cases, deliveryCase{name: "a forward below " + inv, status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: comm + "/" + inv + "/forward?to=tel:+19005551234"}})
	}
	cases = append(cases, []deliveryCase{
		{name: "a forward to a number in a JSON body", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: comm + "/invitations/507/forward", ContentType: "application/json", Body: `{"to":"tel:+19005551234"}`}},
		{name: "a forward to a number in an XML body, with a token", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: comm + "/invitations/507/forward", ContentType: "application/xml", Accept: "application/json", Header: good,
				Body: `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">tel:+19005551234</property></input>`}},
		{name: "a forward in other letter cases", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: comm + "/Invitations/507/FORWARD?to=tel:+19005551234"}},
		{name: "a listed link spelled with junk", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: comm + "/invitations/507/decline.aspx?to=tel:+19005551234"}},
		{name: "a write below a listed link", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: comm + "/invitations/507/accept/forward?to=tel:+19005551234"}},
		{name: "a POST to the invitation", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: comm + "/invitations/507?to=tel:+19005551234"}},
		{name: "a link another kind of invitation has", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: comm + "/participantInvitations/303/accept"}},
		{name: "a forward as a batch part", status: 404, message: "Batch part 1: There is no resource",
			req: testkit.Request{Method: "POST", URL: opsApp + "/batch", ContentType: batchType, Header: good,
				Body: batchBody("POST " + comm + "/invitations/507/forward?to=tel:%2B19005551234 HTTP/1.1\r\n")}},
		{name: "a transfer of the conversation", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: conv + "/transfer?to=tel:+19005551234"}},
		{name: "a transfer of the conversation in a JSON body", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: conv + "/transfer", ContentType: "application/json", Body: `{"to":"tel:+19005551234"}`}},
		{name: "a transfer of the conversation in other letter cases", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: conv + "/Transfer?to=tel:+19005551234"}},
		{name: "a transfer of the conversation spelled with junk", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: conv + "/transfer.aspx?to=tel:+19005551234"}},
		{name: "a POST to the conversation", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: conv + "?to=tel:+19005551234"}},
		{name: "a transfer of the conversation as a batch part", status: 404, message: "Batch part 1: There is no resource",
			req: testkit.Request{Method: "POST", URL: opsApp + "/batch", ContentType: batchType, Header: good,
				Body: batchBody("POST " + conv + "/transfer?to=tel:%2B19005551234 HTTP/1.1\r\n")}},
		{name: "a call back below a conversation log", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: comm + "/conversationLogs/log1/callBack?to=tel:+19005551234"}},
		{name: "a POST to a conversation log", status: 404, message: "no resource",
			req: testkit.Request{Method: "POST", URL: comm + "/conversationLogs/log1", ContentType: "application/json", Body: `{"to":"tel:+19005551234"}`}},
		// What stays a pool's own.
		{name: "markAsRead of a conversation log", status: 201, poolGets: 1,
			req: testkit.Request{Method: "POST", URL: comm + "/conversationLogs/log1/markAsRead"}},
		{name: "accept", status: 201, poolGets: 1,
			req: testkit.Request{Method: "POST", URL: comm + "/invitations/507/accept"}},
		{name: "decline", status: 201, poolGets: 1,
			req: testkit.Request{Method: "POST", URL: comm + "/invitations/507/decline", ContentType: "application/json", Body: `{"reason":"Local"}`}},
		{name: "cancel of a participant invitation", status: 201, poolGets: 1,
			req: testkit.Request{Method: "POST", URL: comm + "/participantInvitations/303/cancel"}},
		{name: "acceptWithAnswer", status: 201, poolGets: 1,
			req: testkit.Request{Method: "POST", URL: comm + "/audioVideoInvitations/507/acceptWithAnswer?sessionContext=1", ContentType: "application/sdp", Body: "v=0\r\n"}},
		{name: "sendProvisionalAnswer", status: 201, poolGets: 1,
			req: testkit.Request{Method: "POST", URL: comm + "/invitations/507/sendProvisionalAnswer?sessionContext=1", ContentType: "application/sdp", Body: "v=0\r\n"}},
		{name: "decline of a phone audio invitation", status: 201, poolGets: 1,
			req: testkit.Request{Method: "POST", URL: comm + "/phoneAudioInvitations/146/decline"}},
		{name: "a GET below an invitation", status: 201, poolGets: 1,
			req: testkit.Request{Method: "GET", URL: comm + "/invitations/507/forward"}},
		{name: "a GET of an invitation", status: 201, poolGets: 1,
			req: testkit.Request{Method: "GET", URL: comm + "/invitations/507"}},
		{name: "a GET below the conversation", status: 201, poolGets: 1,
			req: testkit.Request{Method: "GET", URL: conv + "/transfer"}},
		{name: "enableAudienceMuteLock", status: 201, poolGets: 1,
			req: testkit.Request{Method: "POST", URL: conv + "/enableAudienceMuteLock"}},
		{name: "sendMessage", status: 201, poolGets: 1,
			req: testkit.Request{Method: "POST", URL: conv + "/messaging/sendMessage", ContentType: "text/plain", Body: "hello"}},
		{name: "a lobby's admit", status: 201, poolGets: 1,
			req: testkit.Request{Method: "POST", URL: conv + "/lobby/196/admit"}},
		{name: "a DELETE of the conversation", status: 201, poolGets: 1,
			req: testkit.Request{Method: "DELETE", URL: conv}},
	}...)
	runDeliveryCases(t, e, pool, cases)
}

// TestPathApplicationReadOtherwise: idempotency keys a request by the
// application its path names. Where a pool on ASP.NET reads another
// application there (without a segment of cookieless values:
// applications/(S(x))/104 is application 104), a repeat of a request
// with its operationId, so spelled, was keyed apart from the first and
// delivered a second time. A path whose other reading names another
// application (also 104x//../104, application 104x to RFC 3986) is a
// near miss.
func TestPathApplicationReadOtherwise(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := doorsSiteWith(t, pool.Addr(), "idempotency")
	auth := http.Header{"Authorization": {callerBearer(t)}}
	for i, path := range []string{
		"/ucwa/oauth/v1/applications/(S(x))/104/communication/startPhoneAudio",
		"/ucwa/oauth/v1/applications/104x//../104/communication/startPhoneAudio",
	} {
		body := fmt.Sprintf(`{"to":"+14255551234","operationId":"op-%d"}`, i)
		if first := e.postJSON("/ucwa/oauth/v1/applications/104/communication/startPhoneAudio", body, auth); first.Status != http.StatusCreated {
			t.Fatalf("first: status %d (%s)", first.Status, first.Body)
		}
		before := len(pool.Received())
		resp := e.postJSON(path, body, auth)
		if got := len(pool.Received()) - before; got != 0 || resp.Status != http.StatusNotFound {
			t.Errorf("%s: status %d (%s), the pool got %d more requests; want a near miss, 404 and none", path, resp.Status, resp.Body, got)
		}
	}
}

// TestPathNotUTF8: IIS (HTTP.sys, whose EnableNonUtf8 is on by default)
// reads a path whose bytes are not UTF-8 in the server's ANSI or DBCS
// code page, where %FD is the Turkish dotless ı (windows-1254), which
// .NET's case-insensitive routing takes for an I, as the edge does the
// UTF-8 ı: so POST me/makeMeAva%FDlable, with a phoneNumber to store,
// is makeMeAvailable to such a pool, and PUT communicat%FDon the PUT
// that stores one; the edge, reading the byte as no letter, passed them
// on unjudged. A write to a path that is not UTF-8 is a near miss; a
// read passes.
func TestPathNotUTF8(t *testing.T) {
	checkPaths(t, []pathCase{
		{"POST", opsApp + "/me/makeMeAva%FDlable", true},
		{"PUT", opsApp + "/communicat%FDon", true},
		{"POST", opsApp + "/me/ph%FDnes", true},
		{"PUT", opsApp + "/me/callForwardingSett%FDngs", true},
		{"POST", opsApp + "/communication/startPhoneAud%FDo", true},
		{"POST", opsApp + "/people/%E9", true},
		{"GET", opsApp + "/me/makeMeAva%FDlable", false},
		{"POST", opsApp + "/people/%C3%A9", false},
	})
}
