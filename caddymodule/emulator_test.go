package caddymodule

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestEmulatorEndToEnd: each group of operations through the edge to the
// pool emulator, as the demo runs them: call-via-work from a conversation,
// on behalf of a delegator and from a conversation log (201, the call plays
// on the event channel), a number stored with makeMeAvailable and PUT
// communication, calls forwarded, and a batch answered part by part in
// request order, its guarded parts cleaned by the edge.
func TestEmulatorEndToEnd(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	e := startEdge(t, "caddyfile", `:EDGE_PORT {
	ucwa {
		jwt {
			algorithms HS256
			hmac_secret {env.UCWA_TEST_JWT_SECRET}
		}
		default_region US
		primary 127.0.0.1:EMULATOR_PORT
	}
	reverse_proxy 127.0.0.1:EMULATOR_PORT
}
:EMULATOR_PORT {
	ucwa_pool_emulator {
		step_duration 10ms
		default_region US
	}
}`)
	auth := http.Header{"Authorization": {bearerFor(t, allScopes...)}, "If-Match": {`"1"`}}
	const app = opsApp
	e.send(testkit.Request{URL: app + "/events?timeout=1ms"}) // the application's event channel, opened as a client does
	for _, tc := range []struct {
		name, method, path, contentType, body string
		status                                int
	}{
		{"addPhoneAudio", "POST", "/communication/conversations/eee0/phoneAudio/addPhoneAudio", "application/json", `{"to":"(425) 555-0199","phoneNumber":"4255551234"}`, 201},
		{"startPhoneAudioOnBehalfOfDelegator", "POST", "/communication/startPhoneAudioOnBehalfOfDelegator", "application/json",
			`{"to":"sip:john@contoso.com","delegator":"sip:boss@contoso.com","operationId":"delegated"}`, 201},
		{"continuePhoneAudio", "POST", "/communication/conversationLogs/log1/continuePhoneAudio", "application/xml",
			`<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="phoneNumber">+1 425 555 1234</property></input>`, 201},
		{"makeMeAvailable", "POST", "/me/makeMeAvailable", "application/json", `{"SupportedModalities":["PhoneAudio"],"audioPreference":"phoneaudio","phoneNumber":"4255551234"}`, 204},
		{"PUT communication", "PUT", "/communication", "application/json", `{"phoneNumber":"(425) 555-1234"}`, 200},
		{"immediateForwardToContact", "POST", "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact?target=%2B1+425+555+1234", "", "", 204},
		{"refused at the edge", "POST", "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact?target=%2B1+900+555+1234+x", "", "", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.send(testkit.Request{Method: tc.method, URL: app + tc.path, ContentType: tc.contentType, Body: tc.body, Header: auth})
			if r.Status != tc.status {
				t.Fatalf("status %d %s, want %d", r.Status, r.Body, tc.status)
			}
			if tc.status == http.StatusOK && r.Body != `{"phoneNumber":"tel:+14255551234"}` {
				t.Errorf("the pool stored %s, want the number normalized", r.Body)
			}
			if tc.status == http.StatusCreated {
				got := testkit.FollowEvents(t, e.Client(), e.url(""), app+"/events", r.Header.Get("Location"))
				if last := got[len(got)-1]; last.Status != "Success" {
					t.Errorf("events %+v, want the call to complete with Success", got)
				}
			}
		})
	}
	t.Run("batch", func(t *testing.T) {
		r := e.send(testkit.Request{URL: app + "/batch", ContentType: batchType, Accept: "multipart/batching", Header: auth, Body: batchBody(
			"POST "+app+"/communication/conversations/eee0/phoneAudio/addPhoneAudio HTTP/1.1\r\n"+`Data: {"to":"(425) 555-0199","operationId":"in-batch"}`+"\r\n",
			"GET "+app+"/communication/invitations/999 HTTP/1.1\r\n",
			"POST "+app+"/me/callForwardingSettings/simultaneousRingSettings/simultaneousRingToContact?target=sip:jane@contoso.com HTTP/1.1\r\n",
		)})
		if r.Status != http.StatusOK {
			t.Fatalf("status %d %s", r.Status, r.Body)
		}
		answers, uerr := testkit.ReadBatch(r.Header.Get("Content-Type"), []byte(r.Body))
		if uerr != nil || len(answers) != 3 || answers[0].Status != 201 || answers[1].Status != 404 || answers[2].Status != 204 {
			t.Fatalf("answers %+v (%v), want 201, 404, 204 in order", answers, uerr)
		}
		inv := e.send(testkit.Request{URL: answers[0].Header.Get("Location"), Accept: "application/json"})
		if !strings.Contains(inv.Body, `"to":"tel:+14255550199"`) || !strings.Contains(inv.Body, `"operationId":"in-batch"`) {
			t.Errorf("the batched call's invitation: %d %s, want to normalized by the edge", inv.Status, inv.Body)
		}
	})
}
