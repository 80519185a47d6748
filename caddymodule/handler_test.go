package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// edgeConfigs returns the same edge configured from a Caddyfile and from
// JSON, so that every case runs through both adapters.
func edgeConfigs(upstream, options string) map[string][2]string {
	caddyfile := fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		jwt off
		default_region US
		max_body_size 1KiB
		%s
	}
	reverse_proxy %s
}`, options, upstream)
	var extra string
	for line := range strings.SplitSeq(options, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "number_format":
			extra += `,"number_format":"` + f[1] + `"`
		case len(f) == 2 && f[0] == "phone_audio" && f[1] == "disabled":
			extra += `,"disable_phone_audio":true`
		case len(f) > 1 && f[0] == "paths":
			b, _ := json.Marshal(f[1:])
			extra += `,"paths":` + string(b)
		}
	}
	jsonConfig := fmt.Sprintf(`{
	"apps": {"http": {"servers": {"edge": {
		"listen": [":EDGE_PORT"],
		"routes": [{"handle": [
			{"handler": "ucwa", "jwt": {"off": true}, "default_region": "US", "max_body_size": 1024%s},
			{"handler": "reverse_proxy", "upstreams": [{"dial": %q}]}
		]}]
	}}}}
}`, extra, upstream)
	return map[string][2]string{"caddyfile": {caddyfile, "caddyfile"}, "json": {jsonConfig, "json"}}
}

func TestTerminate(t *testing.T) {
	tests := []struct {
		name        string
		options     string // extra ucwa subdirectives
		method      string
		path        string
		contentType string
		accept      string
		body        string
		header      http.Header // more request headers
		// what the client gets
		status   int
		code     string
		subcode  string
		params   []string // names in "parameters"
		errorXML bool
		// what the upstream gets; "" means it must get nothing
		upstreamBody  string
		upstreamQuery string
	}{
		{
			name: "seed JSON sample normalized", method: "POST", path: startPath,
			contentType: "application/json", body: seedJSON, status: 201,
			upstreamBody: strings.NewReplacer(`"tel : +14255551234"`, `"tel:+14255551234"`, `"sip : john@contoso.com"`, `"sip:john@contoso.com"`,
				`"data : text/plain;base64,somebase64encodedmessage"`, `"data:text/plain;base64,somebase64encodedmessage"`).Replace(seedJSON),
		},
		{
			name: "seed XML sample forwarded as is", method: "POST", path: startPath,
			contentType: "application/xml", body: seedXML, status: 201, upstreamBody: seedXML,
		},
		{
			name: "oauth path and vendor type with charset", method: "POST",
			path:        "/ucwa/oauth/v1/applications/7/communication/phoneAudioInvitations",
			contentType: "application/vnd.microsoft.com.ucwa+json; charset=utf-8",
			body:        `{"to":"(425) 555-1234","phoneNumber":"4255551234","importance":"URGENT","direction":null,"joinAudioMuted":false}`,
			status:      201, upstreamBody: `{"to":"tel:+14255551234","phoneNumber":"tel:+14255551234","importance":"Urgent","direction":null,"joinAudioMuted":false}`,
		},
		{
			name: "path matched in any letter case", method: "POST",
			path:        "/ucwa/v1/applications/1/COMMUNICATION/startphoneaudio",
			contentType: "application/json", body: `{"to":"+1 425 555 1234"}`,
			status: 201, upstreamBody: `{"to":"tel:+14255551234"}`,
		},
		{
			name: "path variant IIS may route: backslash", method: "POST", path: "/ucwa/v1/applications/1/communication%5CstartPhoneAudio",
			contentType: "application/json", body: `{"to":"4255551234"}`,
			status: 201, upstreamBody: `{"to":"tel:+14255551234"}`,
		},
		{
			name: "path variant IIS may route: trailing dot", method: "POST", path: "/ucwa/v1/applications/1/communication/startPhoneAudio.",
			contentType: "application/json", body: `{"to":"4255551234"}`,
			status: 201, upstreamBody: `{"to":"tel:+14255551234"}`,
		},
		{
			name: "path variant IIS may route: trailing space", method: "POST", path: "/ucwa/v1/applications/1/communication/startPhoneAudio%20",
			contentType: "application/json", body: `{"to":"4255551234"}`,
			status: 201, upstreamBody: `{"to":"tel:+14255551234"}`,
		},
		{
			name: "path variant IIS may route: segment parameter", method: "POST", path: "/ucwa/v1/applications/1/communication/startPhoneAudio;x=1",
			contentType: "application/json", body: `{"to":"4255551234"}`,
			status: 201, upstreamBody: `{"to":"tel:+14255551234"}`,
		},
		{
			name: "path variant IIS may route: dot segment", method: "POST", path: "/ucwa/v1/applications/1/communication/x/../startPhoneAudio",
			contentType: "application/json", body: `{"to":"4255551234"}`,
			status: 201, upstreamBody: `{"to":"tel:+14255551234"}`,
		},
		{
			name: "path variant IIS may route: long s", method: "POST", path: "/ucwa/v1/applications/1/communication/%C5%BFtartPhoneAudio",
			contentType: "application/json", body: `{"to":"4255551234"}`,
			status: 201, upstreamBody: `{"to":"tel:+14255551234"}`,
		},
		{
			name: "path variant IIS may route: dotless i", method: "POST", path: "/ucwa/v1/applications/1/commun%C4%B1cation/startPhoneAudio",
			contentType: "application/json", body: `{"to":"4255551234"}`,
			status: 201, upstreamBody: `{"to":"tel:+14255551234"}`,
		},
		{
			name: "e164 number format", options: "number_format e164", method: "POST", path: startPath,
			contentType: "application/json", body: `{"to":"sip:john@contoso.com","phoneNumber":"tel:+1-425-555-1234;ext=123"}`,
			status: 201, upstreamBody: `{"to":"sip:john@contoso.com","phoneNumber":"+14255551234;ext=123"}`,
		},
		{
			name: "to from the query, normalized there", method: "POST", path: startPath + "?to=4255551234",
			contentType: "application/json", body: `{"phoneNumber":"+14255551234"}`,
			status: 201, upstreamBody: `{"phoneNumber":"tel:+14255551234"}`, upstreamQuery: "to=tel%3A%2B14255551234",
		},
		{
			name: "other paths pass untouched", method: "GET", path: "/ucwa/v1/applications/192/events?ack=1",
			status: 201, upstreamBody: "", upstreamQuery: "ack=1",
		},
		{
			name: "custom paths", options: "paths /call", method: "POST", path: "/x/call",
			contentType: "application/json", body: `{"to":"4255551234"}`,
			status: 201, upstreamBody: `{"to":"tel:+14255551234"}`,
		},
		{
			name: "GET on a terminated path", method: "GET", path: startPath,
			status: 405, code: "MethodNotAllowed", subcode: "MethodNotAllowed",
		},
		{
			name: "unsupported media type", method: "POST", path: startPath, contentType: "text/plain",
			body: `to=x`, status: 415, code: "UnsupportedMediaType", subcode: "UnsupportedMediaType",
		},
		{
			name: "two Content-Types", method: "POST", path: startPath, contentType: "application/json",
			header: http.Header{"Content-Type": {"application/xml"}}, body: `{"to":"4255551234"}`,
			status: 415, code: "UnsupportedMediaType", subcode: "UnsupportedMediaType",
		},
		{
			// A pool without RFC 2231 reads charset=utf-16; the edge read the
			// extended parameter's UTF-8.
			name: "charset behind an extended parameter", method: "POST", path: startPath,
			contentType: "application/json; charset=utf-16; charset*=utf-8''utf-8", body: `{"to":"4255551234"}`,
			status: 415, code: "UnsupportedMediaType", subcode: "UnsupportedMediaType",
		},
		{
			// System.Web finds charset=utf-16 inside the quoted value.
			name: "charset inside a quoted parameter", method: "POST", path: startPath,
			contentType: `application/json; x="; charset=utf-16"`, body: `{"to":"4255551234"}`,
			status: 415, code: "UnsupportedMediaType", subcode: "UnsupportedMediaType",
		},
		{
			name: "compressed body", method: "POST", path: startPath, contentType: "application/json",
			header: http.Header{"Content-Encoding": {"gzip"}}, body: `{"to":"4255551234"}`,
			status: 415, code: "UnsupportedMediaType", subcode: "UnsupportedMediaType",
		},
		{
			name: "body over max_body_size", method: "POST", path: startPath, contentType: "application/json",
			body:   `{"to":"4255551234","subject":"` + strings.Repeat("a", 1100) + `"}`,
			status: 413, code: "EntityTooLarge", subcode: "EntityTooLarge",
		},
		{
			name: "malformed JSON", method: "POST", path: startPath, contentType: "application/json",
			body: "{\"to\": \"sip:a@b.c\",\n \"subject\": }", status: 400, code: "BadRequest", subcode: "DeserializationFailure",
		},
		{
			name: "duplicate property in other letter case", method: "POST", path: startPath, contentType: "application/json",
			body: `{"to":"sip:a@b.c","To":"4255551234"}`, status: 400, code: "BadRequest", subcode: "DeserializationFailure",
		},
		{
			name: "XML with a DOCTYPE", method: "POST", path: startPath, contentType: "application/xml",
			body:   `<?xml version="1.0"?><!DOCTYPE input [<!ENTITY x "y">]><input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"/>`,
			status: 400, code: "BadRequest", subcode: "DeserializationFailure", errorXML: true,
		},
		{
			name: "every failing property named", method: "POST", path: startPath, contentType: "application/json",
			body:   `{"operationId":"` + strings.Repeat("é", 51) + `","importance":"high","subject":"` + strings.Repeat("ü", 251) + `"}`,
			status: 400, code: "BadRequest", subcode: "ParameterValidationFailure",
			params: []string{"to", "operationId", "subject", "importance"},
		},
		{
			name: "limits are in characters", method: "POST", path: startPath, contentType: "application/json",
			body:   `{"to":"sip:a@b.c","operationId":"` + strings.Repeat("é", 50) + `","subject":"` + strings.Repeat("ü", 250) + `"}`,
			status: 201, upstreamBody: `{"to":"sip:a@b.c","operationId":"` + strings.Repeat("é", 50) + `","subject":"` + strings.Repeat("ü", 250) + `"}`,
		},
		{
			name: "body and query name different targets", method: "POST", path: startPath + "?to=sip:b@c.d",
			contentType: "application/json", body: `{"to":"sip:a@b.c"}`,
			status: 400, code: "BadRequest", subcode: "ParameterValidationFailure", params: []string{"to"},
		},
		{
			name: "query the edge cannot read whole (a semicolon)", method: "POST", path: startPath + "?to=tel:%2B19005550100;x",
			contentType: "application/json", body: `{"to":"sip:john@contoso.com"}`,
			status: 400, code: "BadRequest", subcode: "ParameterValidationFailure",
		},
		{
			name: "query the edge cannot read whole (IIS %u escape)", method: "POST", path: startPath + "?%u0074o=tel:%2B19005550100",
			contentType: "application/json", body: `{"to":"sip:john@contoso.com"}`,
			status: 400, code: "BadRequest", subcode: "ParameterValidationFailure",
		},
		{
			name: "to twice in the query, in other letter case", method: "POST", path: startPath + "?to=sip:a@b.c&TO=sip:b@c.d",
			contentType: "application/json", body: `{"to":"sip:a@b.c"}`,
			status: 400, code: "BadRequest", subcode: "ParameterValidationFailure", params: []string{"to"},
		},
		{
			name: "body name folding onto a property (trailing space)", method: "POST", path: startPath, contentType: "application/json",
			body:   `{"to":"sip:a@contoso.com","phoneNumber ":"+1 900 555 1234"}`,
			status: 400, code: "BadRequest", subcode: "ParameterValidationFailure", params: []string{"phoneNumber"},
		},
		{
			name: "body name folding onto a property (NUL)", method: "POST", path: startPath, contentType: "application/json",
			body:   `{"to":"sip:a@contoso.com","phone\u0000Number":"+1 900 555 1234"}`,
			status: 400, code: "BadRequest", subcode: "ParameterValidationFailure", params: []string{"phoneNumber"},
		},
		{
			name: "XML name folding onto a property", method: "POST", path: startPath, contentType: "application/xml",
			body:   `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><property name="to">sip:a@contoso.com</property><property name="phoneNumber ">+1 900 555 1234</property></input>`,
			status: 400, code: "BadRequest", subcode: "ParameterValidationFailure", params: []string{"phoneNumber"}, errorXML: true,
		},
		{
			name: "impossible number", method: "POST", path: startPath, contentType: "application/json",
			body: `{"to":"sip:a@b.c","phoneNumber":"+1 425"}`, status: 400, code: "BadRequest", subcode: "NormalizationFailed",
			params: []string{"phoneNumber"},
		},
		{
			name: "XML error when Accept prefers XML", method: "POST", path: startPath, contentType: "application/json",
			accept: "application/json;q=0.5, application/xml", body: `{}`,
			status: 400, code: "BadRequest", subcode: "ParameterValidationFailure", errorXML: true,
		},
		{
			name: "phone audio disabled", options: "phone_audio disabled", method: "POST", path: startPath,
			contentType: "application/json", body: `{"to":"sip:a@b.c"}`, status: 403, code: "Forbidden",
		},
	}
	for _, adapter := range []string{"caddyfile", "json"} {
		t.Run(adapter, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					up := testkit.NewUpstream(t)
					cfg := edgeConfigs(up.Addr(), tc.options)[adapter]
					e := startEdge(t, cfg[1], cfg[0])
					headers := http.Header{"Authorization": {"Bearer cwt=opaque"}, "X-Ms-Origin": {"https://app.contoso.com"}, "Client-Request-Id": {"abc"}}
					resp := e.send(testkit.Request{Method: tc.method, URL: tc.path, ContentType: tc.contentType, Accept: tc.accept,
						Body: tc.body, Header: mergeHeaders(headers, tc.header)})

					if resp.Status != tc.status {
						t.Fatalf("status = %d, want %d; body: %s", resp.Status, tc.status, resp.Body)
					}
					got := up.Received()
					if tc.code != "" {
						assertUCWAError(t, resp, tc.code, tc.subcode, tc.params, tc.errorXML)
						if len(got) != 0 {
							t.Fatalf("upstream received %d requests, want none", len(got))
						}
						if tc.status == 405 && resp.Header.Get("Allow") != "POST" {
							t.Errorf("Allow = %q, want POST", resp.Header.Get("Allow"))
						}
						return
					}
					if len(got) != 1 {
						t.Fatalf("upstream received %d requests, want 1", len(got))
					}
					rec := got[0]
					if rec.Body != tc.upstreamBody {
						t.Errorf("upstream body:\n%s\nwant:\n%s", rec.Body, tc.upstreamBody)
					}
					if cl := rec.Header.Get("Content-Length"); tc.method == "POST" && cl != strconv.Itoa(len(rec.Body)) {
						t.Errorf("upstream Content-Length = %q for a %d-byte body", cl, len(rec.Body))
					}
					if rec.RawQuery != tc.upstreamQuery {
						t.Errorf("upstream query = %q, want %q", rec.RawQuery, tc.upstreamQuery)
					}
					for name, want := range headers {
						if rec.Header.Get(name) != want[0] {
							t.Errorf("upstream %s = %q, want %q", name, rec.Header.Get(name), want[0])
						}
					}
					// The pool's answer passes back unchanged.
					if resp.Header.Get("Location") != "/ucwa/v1/applications/1/communication/invitations/upstream" || resp.Header.Get("X-MS-UcwaVersion") != "2" {
						t.Errorf("pool headers not passed back: %v", resp.Header)
					}
				})
			}
		})
	}
}

// mergeHeaders returns a's and b's values in one header.
func mergeHeaders(a, b http.Header) http.Header {
	h := a.Clone()
	for name, values := range b {
		h[name] = append(h[name], values...)
	}
	return h
}

// TestAccessLogNamesRejection checks that a rejection's UCWA code reaches
// the access log, and that no property value (a phone number) does.
func TestAccessLogNamesRejection(t *testing.T) {
	up := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	log {
		format json
	}
	ucwa {
		jwt off
	}
	reverse_proxy %s
}`, up.Addr()))
	resp := e.postJSON(startPath, `{"to":"sip:a@b.c","phoneNumber":"4255550199"}`, nil)
	if resp.Status != 400 {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	// The access log is written after the answer went out.
	line := e.Logs().Wait(t, `"msg":"handled request"`, `"status":400`)
	if !strings.Contains(line, `"ucwa_error":"BadRequest/NormalizationFailed"`) {
		t.Errorf("access log lacks the rejection: %s", line)
	}
	if logs := e.Logs().String(); strings.Contains(logs, "4255550199") {
		t.Errorf("a log line holds the phone number: %s", logs)
	}
}
