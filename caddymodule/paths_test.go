package caddymodule

import (
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
		// them.
		{"GET", startPath + "/x/y", false},
		{"POST", opsApp + "/communication/phoneAudioInvitations/42/cancel", false},
		{"PUT", opsApp + "/me/callForwardingSettings/immediateForwardSettings/x", false},
	})
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

// TestBatchPartPaths: a batch part is matched by the same rules, its
// other readings too (ucwa.MatchTarget decodes its target as a server
// does).
func TestBatchPartPaths(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := doorsSite(t, pool.Addr())
	for _, target := range []string{
		opsApp + "/communication/startPhoneAudio%23x",
		opsApp + "/communication/startPhoneAudio/x/y",
	} {
		t.Run(target, func(t *testing.T) {
			resp := e.send(testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {bearerFor(t, allScopes...)}},
				Body: batchBody("POST " + target + " HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + `{"to":"+19005551234"}`)})
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
