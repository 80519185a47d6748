package emulator

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

func TestCreateAndRead(t *testing.T) {
	// Calls that stay Connecting while the test reads them twice.
	emu := startEmulator(t, "caddyfile", strings.Replace(emulatorCaddyfile, "step_duration 20ms", "step_duration 1h", 1))
	for i, tc := range []struct {
		prefix, resource, contentType, body string
		// wantCollection is the collection the Location points into.
		wantCollection string
	}{
		{"/ucwa/v1", "startPhoneAudio", jsonType, "seed.json", "invitations"},
		{"/ucwa/v1", "phoneAudioInvitations", xmlType, "seed.xml", "phoneAudioInvitations"},
		{"/ucwa/oauth/v1", "phoneAudioInvitations", "application/vnd.microsoft.com.ucwa+json; charset=utf-8", "seed.json", "phoneAudioInvitations"},
		{"/ucwa/oauth/v1", "startPhoneAudio", "application/vnd.microsoft.com.ucwa+xml", "seed.xml", "invitations"},
	} {
		t.Run(tc.prefix+"/"+tc.resource+"/"+tc.body, func(t *testing.T) {
			app := tc.prefix + "/applications/app-create-" + string(rune('a'+i))
			emu.openEventChannel(app)
			r := emu.do("POST", app+"/communication/"+tc.resource, tc.contentType, "", seedBody(t, tc.body))
			if r.Status != http.StatusCreated || r.Body != "" || r.Header.Get("X-MS-UcwaVersion") == "" {
				t.Fatalf("POST = %d %q, headers %v; want 201, an empty body and X-MS-UcwaVersion", r.Status, r.Body, r.Header)
			}
			location := r.Header.Get("Location")
			if !regexp.MustCompile("^" + regexp.QuoteMeta(app+"/communication/"+tc.wantCollection+"/") + "[0-9]+$").MatchString(location) {
				t.Fatalf("Location = %q", location)
			}

			r = emu.do("GET", location, "", jsonType, "")
			var inv struct {
				Rel, State, Direction, OperationID, PhoneNumber, To, Subject, Importance, ThreadID string
				Links                                                                              map[string]struct{ Href string } `json:"_links"`
			}
			if err := json.Unmarshal([]byte(r.Body), &inv); r.Status != http.StatusOK || err != nil {
				t.Fatalf("GET (JSON) = %d %s (%v)", r.Status, r.Body, err)
			}
			// The seed bodies, validated and normalized as a pool would.
			want := map[string]string{"rel": "phoneAudioInvitation", "state": "Connecting", "direction": "Outgoing",
				"operationId": "74cb7404e0a247d5a2d4eb0376a47dbf", "phoneNumber": "tel:+14255551234", "to": "sip:john@contoso.com",
				"importance": "Urgent", "threadId": "292e0aaef36c426a97757f43dda19d06", "self": location}
			got := map[string]string{"rel": inv.Rel, "state": inv.State, "direction": inv.Direction, "operationId": inv.OperationID,
				"phoneNumber": inv.PhoneNumber, "to": inv.To, "importance": inv.Importance, "threadId": inv.ThreadID, "self": inv.Links["self"].Href}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("JSON %s = %q, want %q", k, got[k], v)
				}
			}
			if inv.Subject == "" {
				t.Error("JSON subject missing")
			}

			r = emu.do("GET", location, "", "application/vnd.microsoft.com.ucwa+xml", "")
			var x struct {
				XMLName    xml.Name
				Rel        string `xml:"rel,attr"`
				Href       string `xml:"href,attr"`
				Properties []struct {
					Name  string `xml:"name,attr"`
					Value string `xml:",chardata"`
				} `xml:"property"`
			}
			if err := xml.Unmarshal([]byte(r.Body), &x); r.Status != http.StatusOK || err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), xmlType) {
				t.Fatalf("GET (XML) = %d %s %s (%v)", r.Status, r.Header.Get("Content-Type"), r.Body, err)
			}
			gotXML := map[string]string{"rel": x.Rel, "self": x.Href}
			for _, p := range x.Properties {
				gotXML[p.Name] = p.Value
			}
			if x.XMLName.Space != "http://schemas.microsoft.com/rtc/2012/03/ucwa" || x.XMLName.Local != "resource" {
				t.Errorf("XML root = %+v", x.XMLName)
			}
			for k, v := range want {
				if gotXML[k] != v {
					t.Errorf("XML %s = %q, want %q", k, gotXML[k], v)
				}
			}
		})
	}
}

func TestEventSequencePerOutcome(t *testing.T) {
	emu := startEmulator(t, "caddyfile", emulatorCaddyfile)
	for _, tc := range []struct {
		name, to string
		want     []testkit.Event
	}{
		{"answer", "sip:john@contoso.com", []testkit.Event{
			{Type: "started", State: "Connecting"},
			{Type: "updated", State: "Alerting"},
			{Type: "updated", State: "Connected"},
			{Type: "completed", State: "Connected", Status: "Success"},
		}},
		{"decline", "SIP:Decline@Contoso.com", []testkit.Event{
			{Type: "started", State: "Connecting"},
			{Type: "updated", State: "Alerting"},
			{Type: "completed", State: "Failed", Status: "Failure", Reason: "RemoteFailure/Declined"},
		}},
		{"no_answer", "(425) 555-0100", []testkit.Event{
			{Type: "started", State: "Connecting"},
			{Type: "completed", State: "Failed", Status: "Failure", Reason: "LocalFailure/PstnCallFailed"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := "/ucwa/oauth/v1/applications/app-" + tc.name
			emu.openEventChannel(app)
			r := emu.do("POST", app+"/communication/startPhoneAudio", jsonType, "",
				`{"to":"`+tc.to+`","phoneNumber":"+14255551234","operationId":"op-`+tc.name+`"}`)
			if r.Status != http.StatusCreated {
				t.Fatalf("POST = %d %s", r.Status, r.Body)
			}
			location := r.Header.Get("Location")
			got := testkit.FollowEvents(t, emu.Client(), emu.origin(), app+"/events", location)
			if len(got) != len(tc.want) {
				t.Fatalf("events = %+v, want %+v", got, tc.want)
			}
			for i := range got {
				tc.want[i].Href = location
				if got[i] != tc.want[i] {
					t.Errorf("event %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	emu := startEmulator(t, "caddyfile", emulatorCaddyfile)
	const app = "/ucwa/v1/applications/app-errors"
	emu.openEventChannel(app)
	live := emu.do("POST", app+"/communication/startPhoneAudio", jsonType, "", `{"to":"sip:slow@contoso.com","operationId":"live-op"}`)
	if live.Status != http.StatusCreated {
		t.Fatalf("setup POST = %d %s", live.Status, live.Body)
	}
	for _, tc := range []struct {
		name, method, path, contentType, accept, body string
		status                                        int
		subcode                                       string
		xml                                           bool
	}{
		{"never polled", "POST", "/ucwa/v1/applications/app-never-polled/communication/startPhoneAudio", jsonType, "", `{"to":"sip:john@contoso.com"}`,
			500, "CallbackChannelError", false},
		{"operationId in progress", "POST", app + "/communication/phoneAudioInvitations", jsonType, "", `{"to":"sip:slow@contoso.com","operationId":"live-op"}`,
			409, "AlreadyExists", false},
		{"operationId in progress, XML", "POST", app + "/communication/startPhoneAudio", xmlType, "",
			`<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">sip:slow@contoso.com</property><property name="operationId">live-op</property></input>`,
			409, "AlreadyExists", true},
		{"no to", "POST", app + "/communication/startPhoneAudio", jsonType, "", `{"operationId":"x"}`, 400, "ParameterValidationFailure", false},
		{"bad number", "POST", app + "/communication/startPhoneAudio", jsonType, "", `{"to":"tel:12"}`, 400, "NormalizationFailed", false},
		{"malformed JSON", "POST", app + "/communication/startPhoneAudio", jsonType, "", `{"to":`, 400, "DeserializationFailure", false},
		{"malformed XML", "POST", app + "/communication/startPhoneAudio", xmlType, "", `<input>`, 400, "DeserializationFailure", true},
		{"media type", "POST", app + "/communication/startPhoneAudio", "text/plain", "", `to=x`, 415, "UnsupportedMediaType", false},
		{"method", "GET", app + "/communication/startPhoneAudio", "", "", "", 405, "MethodNotAllowed", false},
		{"method, XML by Accept", "DELETE", app + "/events", "", xmlType, "", 405, "MethodNotAllowed", true},
		{"unknown invitation", "GET", app + "/communication/invitations/999999", "", "", "", 404, "", false},
		{"unknown path", "GET", "/somewhere/else", "", "", "", 404, "", false},
		{"bad ack", "GET", app + "/events?ack=x", "", "", "", 400, "ParameterValidationFailure", false},
		{"bad timeout", "GET", app + "/events?timeout=soon", "", "", "", 400, "ParameterValidationFailure", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := emu.do(tc.method, tc.path, tc.contentType, tc.accept, tc.body)
			if r.Status != tc.status {
				t.Fatalf("status = %d %s, want %d", r.Status, r.Body, tc.status)
			}
			var e struct {
				Code    string `json:"code" xml:"code"`
				Subcode string `json:"subcode" xml:"subcode"`
			}
			var err error
			if tc.xml {
				err = xml.Unmarshal([]byte(r.Body), &e)
			} else {
				err = json.Unmarshal([]byte(r.Body), &e)
			}
			if err != nil || e.Code == "" || e.Subcode != tc.subcode {
				t.Fatalf("body = %q (%v), want a UCWA error with subcode %q", r.Body, err, tc.subcode)
			}
		})
	}
}

func TestEventChannel(t *testing.T) {
	emu := startEmulator(t, "caddyfile", emulatorCaddyfile)
	t.Run("a poll without events ends at its timeout", func(t *testing.T) {
		const app = "/ucwa/v1/applications/app-timeout"
		p := testkit.ParseEvents(t, emu.do("GET", app+"/events?ack=0&timeout=50ms", "", "", ""))
		if len(p.Events()) != 0 || p.Links["next"].Href != app+"/events?ack=0" {
			t.Fatalf("page = %+v, want no events and next ack=0", p)
		}
	})
	t.Run("a newer poll replaces the pending one", func(t *testing.T) {
		const app = "/ucwa/v1/applications/app-replaced"
		// The first poll acknowledges far ahead, so that no event ends it.
		// Both polls may wait as long as max_poll_timeout: only the second
		// one ends the first, and the call's started event the second.
		type result struct {
			testkit.Response
			err error
		}
		first := make(chan result, 1)
		go func() {
			r, err := testkit.Do(emu.Client(), testkit.Request{URL: emu.origin() + app + "/events?ack=1000&timeout=600"})
			first <- result{r, err}
		}()
		// A call is accepted once the first poll is pending (before, the
		// application has no event channel: CallbackChannelError).
		testkit.Eventually(t, "the first poll to be pending", func() bool {
			return emu.do("POST", app+"/communication/startPhoneAudio", jsonType, "", `{"to":"sip:slow@contoso.com"}`).Status == http.StatusCreated
		})
		second := testkit.ParseEvents(t, emu.do("GET", app+"/events?ack=0&timeout=600", "", "", ""))
		if got := second.Events(); len(got) != 1 || got[0].Type != "started" {
			t.Errorf("second poll = %+v, want the started event", got)
		}
		r := <-first
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.Status != http.StatusConflict || !strings.Contains(r.Body, `"subcode":"PGetReplaced"`) {
			t.Fatalf("first poll = %d %s, want 409 PGetReplaced", r.Status, r.Body)
		}
	})
}

func TestHealth(t *testing.T) {
	emu := startEmulator(t, "caddyfile", emulatorCaddyfile)
	if r := emu.do("GET", "/health", "", "", ""); r.Status != http.StatusOK {
		t.Fatalf("GET /health = %d %s", r.Status, r.Body)
	}
	if r := emu.do("POST", "/health", jsonType, "", "{}"); r.Status != http.StatusMethodNotAllowed {
		t.Fatalf("POST /health = %d %s", r.Status, r.Body)
	}
}

func TestJSONConfig(t *testing.T) {
	emu := startEmulator(t, "json", `{
	"apps": {"http": {"servers": {"emulator": {
		"listen": [":EMULATOR_PORT"],
		"routes": [{"handle": [{
			"handler": "ucwa_pool_emulator",
			"event_channel_optional": true,
			"step_duration": "20ms",
			"health_path": "/ready",
			"default_outcome": "Decline",
			"outcomes": [{"to": "sip:john@contoso.com", "result": "No_Answer", "step_duration": "10ms"}]
		}]}]
	}}}}
}`)
	if r := emu.do("GET", "/ready", "", "", ""); r.Status != http.StatusOK {
		t.Fatalf("GET /ready = %d", r.Status)
	}
	for _, tc := range []struct{ to, reason string }{
		{"sip:john@contoso.com", "LocalFailure/PstnCallFailed"},
		{"sip:jane@contoso.com", "RemoteFailure/Declined"},
	} {
		// event_channel_optional: no poll before the call.
		const app = "/ucwa/v1/applications/app-json"
		r := emu.do("POST", app+"/communication/startPhoneAudio", jsonType, "", `{"to":"`+tc.to+`"}`)
		if r.Status != http.StatusCreated {
			t.Fatalf("POST = %d %s", r.Status, r.Body)
		}
		got := testkit.FollowEvents(t, emu.Client(), emu.origin(), app+"/events", r.Header.Get("Location"))
		if last := got[len(got)-1]; last.Reason != tc.reason {
			t.Errorf("to %s completed with %+v, want reason %s", tc.to, last, tc.reason)
		}
	}
}
