package emulator

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestOperations: the operations the emulator serves besides
// startPhoneAudio, each taken in through ucwa's Intake (bad input is
// answered as a pool answers it) and answered as a pool does: a call
// with 201 and the Location of its invitation, whose call then plays on
// the event channel; a setting with 204; PUT communication with 200.
func TestOperations(t *testing.T) {
	emu := startEmulator(t, "caddyfile", emulatorCaddyfile)
	const app = "/ucwa/oauth/v1/applications/app-operations"
	emu.openEventChannel(app)
	for _, tc := range []struct {
		name, method, path, contentType, body string
		header                                http.Header
		status                                int
		// a call: the invitation's phoneNumber and to, as normalized
		phoneNumber, to string
	}{
		{name: "addPhoneAudio", path: "/communication/conversations/eee0/phoneAudio/addPhoneAudio", contentType: jsonType,
			body: `{"to":"sip:+1-425-555-0199@gw.contoso.com;user=phone","phoneNumber":"(425) 555-1234","operationId":"add"}`, status: 201,
			phoneNumber: "tel:+14255551234", to: "sip:+14255550199@gw.contoso.com;user=phone"},
		{name: "startPhoneAudioOnBehalfOfDelegator", path: "/communication/startPhoneAudioOnBehalfOfDelegator", contentType: xmlType,
			body:   `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">sip:john@contoso.com</property><property name="delegator">sip:boss@contoso.com</property></input>`,
			status: 201, to: "sip:john@contoso.com"},
		{name: "replaceWithPhoneAudio", path: "/communication/conversations/eee0/audioVideo/replaceWithPhoneAudio?to=4255550123", status: 201, to: "tel:+14255550123"},
		{name: "continuePhoneAudio", path: "/communication/conversationLogs/log1/continuePhoneAudio", contentType: jsonType,
			body: `{"phoneNumber":"+1 425 555 1234"}`, status: 201, phoneNumber: "tel:+14255551234"},
		{name: "acceptWithPhoneAudio", path: "/communication/invitations/7/acceptWithPhoneAudio", status: 204},
		{name: "makeMeAvailable", path: "/me/makeMeAvailable", contentType: jsonType, body: `{"SupportedModalities":["PhoneAudio"],"phoneNumber":"4255551234"}`, status: 204},
		{name: "changeNumber", path: "/me/phones/mobile/changeNumber?number=4255551234", status: 204},
		{name: "immediateForwardToContact", path: "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact?target=tel:%2B14255551234", status: 204},
		{name: "simultaneousRingToContact", path: "/me/callForwardingSettings/simultaneousRingSettings/simultaneousRingToContact?target=sip:jane@contoso.com", status: 204},
		{name: "unansweredCallToContact", path: "/me/callForwardingSettings/unansweredCallSettings/unansweredCallToContact", contentType: jsonType,
			body: `{"target":"4255551234","ringDelay":20}`, status: 204},
		{name: "PUT communication", method: "PUT", path: "/communication", contentType: jsonType, header: http.Header{"If-Match": {`"1"`}},
			body: `{"phoneNumber":"4255551234"}`, status: 200},

		{name: "addPhoneAudio without to", path: "/communication/conversations/eee0/phoneAudio/addPhoneAudio", contentType: jsonType, body: `{"phoneNumber":"4255551234"}`, status: 400},
		{name: "makeMeAvailable with a bad number", path: "/me/makeMeAvailable", contentType: jsonType, body: `{"phoneNumber":"+1 425"}`, status: 400},
		{name: "forwarding without a target", path: "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact", status: 400},
		{name: "ringDelay out of range", path: "/me/callForwardingSettings/unansweredCallSettings/unansweredCallToContact?target=sip:a@b.c&ringDelay=61", status: 400},
		{name: "PUT communication without If-Match", method: "PUT", path: "/communication", contentType: jsonType, body: `{}`, status: 428},
		{name: "GET of a forwarding request", method: "GET", path: "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact", status: 405},
		{name: "an operation the emulator does not serve", path: "/communication/startAudio?to=sip:a@b.c", status: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "POST"
			}
			r := testkit.Send(t, emu.Client(), testkit.Request{Method: method, URL: emu.origin() + app + tc.path, ContentType: tc.contentType, Body: tc.body, Header: tc.header})
			if r.Status != tc.status {
				t.Fatalf("status %d %s, want %d", r.Status, r.Body, tc.status)
			}
			switch tc.status {
			case http.StatusOK:
				if r.Body != `{"phoneNumber":"tel:+14255551234"}` {
					t.Errorf("body %q, want the resource as cleaned", r.Body)
				}
			case http.StatusCreated:
				location := r.Header.Get("Location")
				if !regexp.MustCompile("^" + app + "/communication/invitations/[0-9]+$").MatchString(location) {
					t.Fatalf("Location %q", location)
				}
				inv := emu.do("GET", location, "", jsonType, "")
				if !strings.Contains(inv.Body, `"to":"`+tc.to+`"`) && tc.to != "" || !strings.Contains(inv.Body, `"phoneNumber":"`+tc.phoneNumber+`"`) && tc.phoneNumber != "" {
					t.Errorf("invitation %s, want phoneNumber %q and to %q", inv.Body, tc.phoneNumber, tc.to)
				}
				got := testkit.FollowEvents(t, emu.Client(), emu.origin(), app+"/events", location)
				if last := got[len(got)-1]; last.Type != "completed" {
					t.Errorf("events %+v, want the call to complete", got)
				}
			}
		})
	}
}

// TestBatch: a batch is answered in one multipart/batching answer, one
// response part per request in request order, each part answered as if it
// came alone (a Data header's value read as a JSON body).
func TestBatch(t *testing.T) {
	emu := startEmulator(t, "caddyfile", emulatorCaddyfile)
	const app = "/ucwa/v1/applications/app-batch"
	emu.openEventChannel(app)
	part := func(request string) string {
		return "--b\r\nContent-Type: application/http; msgtype=request\r\n\r\n" + request + "\r\n"
	}
	body := part("POST "+app+"/communication/startPhoneAudio HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"+`{"to":"sip:john@contoso.com","operationId":"batch-1"}`) +
		part("GET "+app+"/communication/invitations/999999 HTTP/1.1\r\nAccept: application/json\r\n") +
		part("POST "+app+"/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact?target=sip:jane@contoso.com HTTP/1.1\r\n") +
		part("POST "+app+"/communication/conversations/eee0/phoneAudio/addPhoneAudio HTTP/1.1\r\n"+`Data: {"to":"4255551234","operationId":"batch-2"}`+"\r\n") +
		part("POST "+app+"/communication/conversations/eee0/phoneAudio/addPhoneAudio HTTP/1.1\r\n"+`Data: {"phoneNumber":"4255551234"}`+"\r\n") +
		part("GET "+app+"/events?ack=1 HTTP/1.1\r\n") +
		"--b--\r\n"
	r := emu.do("POST", app+"/batch", "multipart/batching; boundary=b", "multipart/batching", body)
	if r.Status != http.StatusOK {
		t.Fatalf("status %d %s", r.Status, r.Body)
	}
	answers, uerr := testkit.ReadBatch(r.Header.Get("Content-Type"), []byte(r.Body))
	if uerr != nil {
		t.Fatalf("%v\n%s", uerr, r.Body)
	}
	want := []int{201, 404, 204, 201, 400, 400}
	if len(answers) != len(want) {
		t.Fatalf("%d answers, want %d:\n%s", len(answers), len(want), r.Body)
	}
	for i, a := range answers {
		if a.Status != want[i] || a.Header.Get("X-MS-UcwaVersion") != UcwaVersion {
			t.Errorf("answer %d: %d %v %s, want %d", i+1, a.Status, a.Header, a.Body, want[i])
		}
	}
	for i, op := range []string{"batch-1", "batch-2"} {
		location := answers[[]int{0, 3}[i]].Header.Get("Location")
		if inv := emu.do("GET", location, "", jsonType, ""); !strings.Contains(inv.Body, `"operationId":"`+op+`"`) {
			t.Errorf("%s: the invitation at %q is %d %s", op, location, inv.Status, inv.Body)
		}
	}
	for _, bad := range []struct{ method, contentType, body string }{
		{"POST", "application/json", "{}"},
		{"POST", "multipart/batching; boundary=b", part("POST "+app+"/batch HTTP/1.1\r\n") + "--b--\r\n"},
		{"GET", "", ""},
	} {
		if r := emu.do(bad.method, app+"/batch", bad.contentType, "", bad.body); r.Status < 400 || r.Status > 415 {
			t.Errorf("%s %s: %d %s, want a refusal", bad.method, bad.contentType, r.Status, r.Body)
		}
	}
}
