package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// referenceDoor is one input of a UCWA reference page that names a
// number a pool dials, stores or forwards to, spelled as the page prints
// it: the request line of its sample (the application 192 of the samples
// moved to opsApp) and the name in its request body table; required is
// another input the page requires, given the sample's value (to, a SIP
// URI), so that the request is refused for the number alone.
type referenceDoor struct {
	page, method, path, property string
	required                     bool
}

// referenceDoors are the doors of OfficeDev/skype-docs-migration,
// SkypeSDK-ops-redirect/UCWA (2018), page by page. They are written out
// here, not taken from the operation table, so that a row whose path or
// property the reference spells otherwise lets its door through and fails
// the test. Not here: startEmergencyCall, whose to no destination rule
// refuses (TestDestinationRules); delegator, which names the identity a
// call is placed for, never a number dialled; the phones collection's
// POST and the phone's PUT, whose inputs the reference does not document
// (TestPhonesWrites).
var referenceDoors = []referenceDoor{
	{"startPhoneAudio_ref.md", "POST", "/communication/startPhoneAudio", "phoneNumber", true},
	{"startPhoneAudio_ref.md", "POST", "/communication/startPhoneAudio", "to", false},
	{"startPhoneAudioOnBehalfOfDelegator_ref.md", "POST", "/communication/startPhoneAudioOnBehalfOfDelegator", "phoneNumber", true},
	{"startPhoneAudioOnBehalfOfDelegator_ref.md", "POST", "/communication/startPhoneAudioOnBehalfOfDelegator", "to", false},
	{"addPhoneAudio_ref.md", "POST", "/communication/phoneAudio/addPhoneAudio", "phoneNumber", true},
	{"addPhoneAudio_ref.md", "POST", "/communication/phoneAudio/addPhoneAudio", "to", false},
	{"replaceWithPhoneAudio_ref.md", "POST", "/communication/conversations/137/audioVideo/replaceWithPhoneAudio", "phoneNumber", true},
	{"replaceWithPhoneAudio_ref.md", "POST", "/communication/conversations/137/audioVideo/replaceWithPhoneAudio", "to", false},
	{"continuePhoneAudio_ref.md", "POST", "/communication/conversationLogs/conversationLog/continuePhoneAudio", "phoneNumber", false},
	{"startAudio_ref.md", "POST", "/communication/startAudio", "to", false},
	{"startAudioOnBehalfOfDelegator_ref.md", "POST", "/communication/startAudioOnBehalfOfDelegator", "to", false},
	{"startAudioVideo_ref.md", "POST", "/communication/startAudioVideo", "to", false},
	{"startAudioVideoOnBehalfOfDelegator_ref.md", "POST", "/communication/startAudioVideoOnBehalfOfDelegator", "to", false},
	{"startVideo_ref.md", "POST", "/communication/startVideo", "to", false},
	{"addAudio_ref.md", "POST", "/communication/conversations/137/audioVideo/addAudio", "to", false},
	{"addAudioVideo_ref.md", "POST", "/communication/conversations/137/audioVideo/addAudioVideo", "to", false},
	{"addVideo_ref.md", "POST", "/communication/addVideo", "to", false},
	{"addParticipant_ref.md", "POST", "/communication/conversations/137/addParticipant", "to", false},
	{"makeMeAvailable_ref.md", "POST", "/communication/makeMeAvailable", "phoneNumber", false},
	{"communication_ref.md", "PUT", "/communication", "phoneNumber", false},
	{"changeNumber_ref.md", "POST", "/me/phones/phone/changeNumber", "number", false},
	{"immediateForwardToContact_ref.md", "POST", "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact", "target", false},
	{"simultaneousRingToContact_ref.md", "POST", "/me/callForwardingSettings/simultaneousRingSettings/simultaneousRingToContact", "target", false},
	{"unansweredCallToContact_ref.md", "POST", "/me/callForwardingSettings/unansweredCallSettings/unansweredCallToContact", "target", false},
}

// TestReferenceDoors: every door of the reference (referenceDoors)
// carrying a premium-rate number, which the default deny_types refuse, as
// a client may send it (a JSON body, an XML body, the query, a batch
// part) is refused 403 DialoutNotAllowed naming the property, and the
// pool gets nothing: it is also the reverse_proxy behind the edge
// (doorsSite), so a request the edge does not take for a door reaches it.
func TestReferenceDoors(t *testing.T) {
	pool := testkit.NewUpstream(t)
	e := doorsSiteWith(t, pool.Addr(), "destinations")
	auth := bearerFor(t, allScopes...)
	const number, sample = "tel:+19005551234", "sip:john@contoso.com"
	for _, d := range referenceDoors {
		path := opsApp + d.path
		inputs := [][2]string{{d.property, number}}
		if d.required {
			inputs = append(inputs, [2]string{"to", sample})
		}
		var json, xml []string
		query := url.Values{}
		for _, in := range inputs {
			json = append(json, `"`+in[0]+`":"`+in[1]+`"`)
			xml = append(xml, `<property name="`+in[0]+`">`+in[1]+`</property>`)
			query.Set(in[0], in[1])
		}
		jsonBody := "{" + strings.Join(json, ",") + "}"
		root, ifMatch := "input", ""
		if d.method == http.MethodPut {
			root, ifMatch = "resource", `"1925102412"`
		}
		xmlBody := `<?xml version="1.0" encoding="utf-8"?><` + root + ` xmlns="` + ucwa.Namespace + `">` + strings.Join(xml, "") + `</` + root + `>`
		header := http.Header{"Authorization": {auth}}
		part := d.method + " " + path + " HTTP/1.1\r\nHost: fe1.contoso.com\r\nContent-Type: application/json\r\n"
		if ifMatch != "" {
			header.Set("If-Match", ifMatch)
			part += "If-Match: " + ifMatch + "\r\n"
		}
		for _, tc := range []struct {
			name  string
			req   testkit.Request
			isXML bool
		}{
			{"JSON", testkit.Request{Method: d.method, URL: path, ContentType: "application/json", Body: jsonBody, Header: header}, false},
			{"XML", testkit.Request{Method: d.method, URL: path, ContentType: "application/xml", Body: xmlBody, Header: header}, true},
			{"query", testkit.Request{Method: d.method, URL: path + "?" + query.Encode(), Header: header}, false},
			{"batch part", testkit.Request{URL: opsApp + "/batch", ContentType: batchType, Header: http.Header{"Authorization": {auth}},
				Body: batchBody(part + "\r\n" + jsonBody)}, false},
		} {
			t.Run(strings.TrimSuffix(d.page, "_ref.md")+" "+d.property+" "+tc.name, func(t *testing.T) {
				before := len(pool.Received())
				resp := e.send(tc.req)
				if got := len(pool.Received()) - before; resp.Status != http.StatusForbidden || got != 0 {
					t.Fatalf("status %d (%s), the pool got %d requests; want 403 and none", resp.Status, resp.Body, got)
				}
				assertUCWAError(t, resp, "Forbidden", "DialoutNotAllowed", []string{d.property}, tc.isXML)
			})
		}
	}
}
