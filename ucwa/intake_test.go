package ucwa

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// destSummary is what a test checks of a PropertyDestination.
type destSummary struct {
	Property string
	Kind     DestinationKind
	Source   Source
	Value    string
	Number   bool
}

func summarize(ds []PropertyDestination) []destSummary {
	var out []destSummary
	for _, d := range ds {
		out = append(out, destSummary{Property: d.Property, Kind: d.Kind, Source: d.Source, Value: d.Value, Number: d.IsNumber()})
	}
	return out
}

// goodValue is a value of p as a client might write it, and what the edge
// forwards for it.
func goodValue(p *Property, xml bool) (in, out string) {
	switch p.Type {
	case EnumValue:
		return strings.ToLower(p.Values[0]), p.Values[0]
	case BooleanValue:
		if xml {
			return "True", "true"
		}
		return "true", "true"
	case IntegerValue:
		n := strconv.FormatInt(p.Min, 10)
		if xml {
			return " +" + n, n
		}
		return n, n
	case NumberValue:
		return "(425) 555-1234", "tel:+14255551234"
	case DestinationValue:
		return "tel:+1-425-555-1234", "tel:+14255551234"
	case DataURLValue:
		return "data : ,hello", "data:,hello"
	}
	return "v-" + p.Name, "v-" + p.Name
}

// goodBody is a body of op with every property set to a good value.
func goodBody(op *Operation, f Format) []byte {
	var b bytes.Buffer
	if f == XML {
		b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n<" + op.XMLRoot + ` xmlns="` + Namespace + `">`)
		for i := range op.Properties {
			p := &op.Properties[i]
			in, _ := goodValue(p, true)
			if p.Type == DataURLValue {
				b.WriteString(`<link rel="` + p.Name + `" href="` + in + `"/>`)
				continue
			}
			b.WriteString(`<property name="` + p.Name + `">` + in + `</property>`)
		}
		b.WriteString("<propertyList name=\"supportedModalities\"><item>PhoneAudio</item></propertyList></" + op.XMLRoot + ">")
		return b.Bytes()
	}
	body := map[string]any{"direction": nil, "unknownProperty": []int{1}}
	links := map[string]any{"self": map[string]string{"href": "/x"}}
	for i := range op.Properties {
		p := &op.Properties[i]
		in, _ := goodValue(p, false)
		switch p.Type {
		case DataURLValue:
			links[p.Name] = map[string]string{"href": in}
		case BooleanValue:
			body[p.Name] = in == "true"
		case IntegerValue:
			body[p.Name] = json.Number(in)
		default:
			body[p.Name] = in
		}
	}
	body["_links"] = links
	out, _ := json.Marshal(body)
	return out
}

func intakeHeader(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// TestIntakeEveryOperation sends each operation of the table a good
// request, in JSON, in XML and in the query, and checks what it forwards.
func TestIntakeEveryOperation(t *testing.T) {
	c := mustCleaner(t, "US", TelURI)
	for i := range testOps {
		op := &testOps[i]
		header := intakeHeader("If-Match", `"1925102412"`)
		switch op.Body {
		case BatchBody:
			if _, err := c.Intake(op, Incoming{Method: "POST", Header: header}); err == nil || err.Status != 500 {
				t.Errorf("%s: Intake took a batch: %v", op.Rel, err)
			}
			continue
		case NoBody:
			cl, err := c.Intake(op, Incoming{Method: op.Method, Header: header, RawQuery: "x=1"})
			if err != nil || len(cl.Body()) != 0 || cl.RawQuery() != "x=1" {
				t.Errorf("%s: %v", op.Rel, err)
			}
			continue
		case SDPBody:
			sdp := []byte("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n")
			header.Set("Content-Type", "application/sdp")
			cl, err := c.Intake(op, Incoming{Method: op.Method, Header: header, RawQuery: "operationId=1&sessionContext=2&key=x", Body: sdp})
			if err != nil || !bytes.Equal(cl.Body(), sdp) || &cl.Body()[0] != &sdp[0] || cl.RawQuery() != "operationId=1&sessionContext=2&key=x" {
				t.Errorf("%s: %v", op.Rel, err)
			}
			continue
		}
		for _, f := range []Format{JSON, XML} {
			body := goodBody(op, f)
			header.Set("Content-Type", map[Format]string{JSON: "application/json", XML: "application/vnd.microsoft.com.ucwa+xml; charset=utf-8"}[f])
			cl, err := c.Intake(op, Incoming{Method: op.Method, Header: header, RawQuery: "conversation=eee0", Body: body})
			if err != nil {
				t.Errorf("%s %v: %v %v\n%s", op.Rel, f, err, err.Parameters, body)
				continue
			}
			checkCleaned(t, op, f, cl, f == XML, InBody)
			if cl.RawQuery() != "conversation=eee0" {
				t.Errorf("%s: query %q", op.Rel, cl.RawQuery())
			}
			// The forwarded body holds the normalized values.
			r, derr := decodeOp(op, f, cl.Body())
			if derr != nil {
				t.Fatalf("%s %v: forwarded body does not decode: %v", op.Rel, f, derr)
			}
			for _, p := range op.Properties {
				_, want := goodValue(&p, f == XML)
				if got, _ := r.Get(p.Name); got != want {
					t.Errorf("%s %v: forwarded %s = %q, want %q", op.Rel, f, p.Name, got, want)
				}
			}
			if f == JSON && !json.Valid(cl.Body()) {
				t.Errorf("%s: forwarded body is not JSON: %s", op.Rel, cl.Body())
			}
		}
		// Every input but the links in the query, and no body.
		query := url.Values{}
		for i := range op.Properties {
			if p := &op.Properties[i]; p.Type != DataURLValue {
				in, _ := goodValue(p, true)
				query.Set(p.Name, in)
			}
		}
		cl, err := c.Intake(op, Incoming{Method: op.Method, Header: intakeHeader("If-Match", "1"), RawQuery: query.Encode()})
		if err != nil {
			t.Errorf("%s in the query: %v %v", op.Rel, err, err.Parameters)
			continue
		}
		checkCleaned(t, op, 0, cl, true, InQuery)
		forwarded, _ := url.ParseQuery(cl.RawQuery())
		for i := range op.Properties {
			if p := &op.Properties[i]; p.Type != DataURLValue {
				if _, want := goodValue(p, true); forwarded.Get(p.Name) != want {
					t.Errorf("%s: forwarded query %s = %q, want %q", op.Rel, p.Name, forwarded.Get(p.Name), want)
				}
			}
		}
	}
}

// checkCleaned checks the values and destinations of a good request.
func checkCleaned(t *testing.T, op *Operation, f Format, cl *Cleaned, xml bool, src Source) {
	t.Helper()
	var dests []destSummary
	for i := range op.Properties {
		p := &op.Properties[i]
		if src == InQuery && p.Type == DataURLValue {
			continue
		}
		_, want := goodValue(p, xml)
		if got, ok := cl.Value(p.Name); !ok || got != want {
			t.Errorf("%s %v: %s = %q, %v; want %q", op.Rel, f, p.Name, got, ok, want)
		}
		if p.Destination != NotDestination {
			dests = append(dests, destSummary{Property: p.Name, Kind: p.Destination, Source: src, Value: want, Number: true})
		}
	}
	if got := summarize(cl.Destinations()); !reflect.DeepEqual(got, dests) {
		t.Errorf("%s %v: destinations %+v, want %+v", op.Rel, f, got, dests)
	}
	if cl.Operation != op {
		t.Errorf("%s: operation %v", op.Rel, cl.Operation)
	}
}

// TestIntake checks each protocol step and the cases of issue 10.
func TestIntake(t *testing.T) {
	const (
		pvf = SubcodeParameterValidationFailure
		nf  = SubcodeNormalizationFailed
		umt = SubcodeUnsupportedMediaType
	)
	js := intakeHeader("Content-Type", "application/json")
	tests := []struct {
		name   string
		rel    string
		method string
		header http.Header
		query  string
		body   string
		// the error, or what is forwarded
		status    int
		subcode   string
		params    []string
		allow     string
		wantBody  string
		wantQuery string
		dests     []destSummary
	}{
		// Methods, If-Match, media types, encodings.
		{name: "GET of an operation", rel: "startPhoneAudio", method: "GET", header: js, status: 405, subcode: SubcodeMethodNotAllowed, allow: "POST"},
		{name: "POST of a PUT resource", rel: "communication", method: "POST", header: js, body: `{}`, status: 405, subcode: SubcodeMethodNotAllowed, allow: "GET, HEAD, OPTIONS, PUT"},
		{name: "PUT without If-Match", rel: "communication", method: "PUT", header: js, body: `{"phoneNumber":"4255551234"}`, status: 428},
		{name: "PUT with a blank If-Match", rel: "callForwardingSettings", method: "PUT", header: intakeHeader("Content-Type", "application/json", "If-Match", " "), body: `{}`, status: 428},
		{name: "compressed body", rel: "startPhoneAudio", header: intakeHeader("Content-Type", "application/json", "Content-Encoding", "gzip"), body: `{"to":"sip:a@b.c"}`, status: 415, subcode: umt},
		{name: "identity encoding", rel: "startPhoneAudio", header: intakeHeader("Content-Type", "application/json", "Content-Encoding", "Identity"), body: `{"to":"sip:a@b.c"}`, wantBody: `{"to":"sip:a@b.c"}`,
			dests: []destSummary{{Property: "to", Kind: DialledNow, Source: InBody, Value: "sip:a@b.c"}}},
		{name: "two Content-Types", rel: "startPhoneAudio", header: intakeHeader("Content-Type", "application/json", "Content-Type", "application/json"), body: `{"to":"sip:a@b.c"}`, status: 415, subcode: umt},
		{name: "body without a Content-Type", rel: "startPhoneAudio", header: http.Header{}, body: `{"to":"sip:a@b.c"}`, status: 415, subcode: umt},
		{name: "text/plain", rel: "startPhoneAudio", header: intakeHeader("Content-Type", "text/plain"), body: `to=x`, status: 415, subcode: umt},
		{name: "no body, inputs in the query", rel: "immediateForwardToContact", header: http.Header{}, query: "target=%2B1+425+555+1234",
			wantQuery: "target=tel%3A%2B14255551234", dests: []destSummary{{Property: "target", Kind: ForwardingTarget, Source: InQuery, Value: "tel:+14255551234", Number: true}}},
		{name: "no body, a Content-Type", rel: "simultaneousRingToContact", header: js, query: "target=sip:john@contoso.com", wantQuery: "target=sip:john@contoso.com",
			dests: []destSummary{{Property: "target", Kind: ForwardingTarget, Source: InQuery, Value: "sip:john@contoso.com"}}},
		{name: "no body, required input missing", rel: "immediateForwardToContact", header: http.Header{}, status: 400, subcode: pvf, params: []string{"target"}},
		{name: "SDP with parameters", rel: "escalateAudioVideo", header: intakeHeader("Content-Type", "application/SDP; charset=utf-8"), query: "operationId=a&sessionContext=b", body: "v=0",
			wantBody: "v=0", wantQuery: "operationId=a&sessionContext=b"},
		{name: "SDP as JSON", rel: "escalateAudio", header: js, query: "operationId=a&sessionContext=b", body: `{}`, status: 415, subcode: umt},
		{name: "SDP without its query inputs", rel: "escalateAudio", header: intakeHeader("Content-Type", "application/sdp"), body: "v=0", status: 400, subcode: pvf, params: []string{"operationId", "sessionContext"}},
		{name: "SDP with a long operationId", rel: "escalateAudio", header: intakeHeader("Content-Type", "application/sdp"), query: "operationId=" + strings.Repeat("x", 51) + "&sessionContext=b", body: "v=0",
			status: 400, subcode: pvf, params: []string{"operationId"}},
		{name: "no-body operation with a body", rel: "acceptWithPhoneAudio", header: js, body: `{"phoneNumber":"+19005551234"}`, status: 415, subcode: umt},
		{name: "no-body operation, empty body with a type", rel: "acceptWithPhoneAudio", header: js},
		{name: "PUT body with an input root", rel: "communication", method: "PUT", header: intakeHeader("Content-Type", "application/xml", "If-Match", "1"),
			body: `<input><property name="phoneNumber">4255551234</property></input>`, status: 400, subcode: SubcodeDeserializationFailure},
		{name: "PUT resource as a pool serves it", rel: "communication", method: "PUT", header: intakeHeader("Content-Type", "application/xml", "If-Match", "1"),
			body: `<resource rel="communication" href="/x" xmlns="` + Namespace + `"><link rel="conversations" href="/y"/><property name="rel">communication</property>` +
				`<property name="phoneNumber">tel:+1 425 555 2222</property><property name="publishEndpointLocation">False</property><property name="c558dd5a-d323">please pass this in a PUT request</property>` +
				`<propertyList name="supportedModalities"><item>PhoneAudio</item></propertyList><resource rel="x" href="/z"><property name="target">Contact</property><property name="name">1</property></resource></resource>`,
			wantBody: `<resource rel="communication" href="/x" xmlns="` + Namespace + `"><link rel="conversations" href="/y"/><property name="rel">communication</property>` +
				`<property name="phoneNumber">tel:+14255552222</property><property name="publishEndpointLocation">false</property><property name="c558dd5a-d323">please pass this in a PUT request</property>` +
				`<propertyList name="supportedModalities"><item>PhoneAudio</item></propertyList><resource rel="x" href="/z"><property name="target">Contact</property><property name="name">1</property></resource></resource>`,
			dests: []destSummary{{Property: "phoneNumber", Kind: StoredForLater, Source: InBody, Value: "tel:+14255552222", Number: true}}},
		{name: "PUT resource embedding a number", rel: "communication", method: "PUT", header: intakeHeader("Content-Type", "application/xml", "If-Match", "1"),
			body: `<resource><resource rel="x" href="/z"><property name="phoneNumber">1</property></resource></resource>`, status: 400, subcode: SubcodeParameterValidationFailure},
		{name: "embedded resource in an input", rel: "startPhoneAudio", header: intakeHeader("Content-Type", "application/xml"),
			body: `<input><resource><property name="to">1</property></resource></input>`, status: 400, subcode: SubcodeDeserializationFailure},

		// Issue 10's doors.
		{name: "addPhoneAudio with garbage", rel: "addPhoneAudio", header: js,
			body: `{"to":"sip:john@contoso.com","phoneNumber":"+1 900 555 9999 garbage","operationId":"` + strings.Repeat("o", 400) + `"}`, status: 400, subcode: pvf, params: []string{"operationId"}},
		{name: "addPhoneAudio with a garbage number", rel: "addPhoneAudio", header: js,
			body: `{"to":"sip:john@contoso.com","phoneNumber":"+1 900 555 9999 garbage"}`, status: 400, subcode: nf, params: []string{"phoneNumber"}},
		{name: "continuePhoneAudio normalized", rel: "continuePhoneAudio", header: js, body: `{"phoneNumber":"+1 (900) 555-1234"}`,
			wantBody: `{"phoneNumber":"tel:+19005551234"}`, dests: []destSummary{{Property: "phoneNumber", Kind: DialledNow, Source: InBody, Value: "tel:+19005551234", Number: true}}},
		{name: "changeNumber in the query, raw +", rel: "changeNumber", header: http.Header{}, query: "number=+1+425+555+1234&includeInContactCard", wantQuery: "number=tel%3A%2B14255551234&includeInContactCard",
			dests: []destSummary{{Property: "number", Kind: StoredForLater, Source: InQuery, Value: "tel:+14255551234", Number: true}}},
		{name: "changeNumber, an impossible extension", rel: "changeNumber", header: js, body: `{"number":"+1 425 555 1234 x` + strings.Repeat("1", 62) + `"}`,
			status: 400, subcode: nf, params: []string{"number"}},
		{name: "forwarding target, a number", rel: "unansweredCallToContact", header: js, body: `{"target":"4255551234","ringDelay":"10"}`, status: 400, subcode: pvf, params: []string{"ringDelay"}},
		{name: "ringDelay out of range in the query", rel: "unansweredCallToContact", header: http.Header{}, query: "target=sip:a@b.c&ringDelay=61", status: 400, subcode: pvf, params: []string{"ringDelay"}},
		{name: "ringDelay as written", rel: "unansweredCallToContact", header: http.Header{}, query: "target=sip:a@b.c&ringDelay=+07", wantQuery: "target=sip:a@b.c&ringDelay=7",
			dests: []destSummary{{Property: "target", Kind: ForwardingTarget, Source: InQuery, Value: "sip:a@b.c"}}},
		{name: "forwarding target as an enum name (an SDK bug)", rel: "immediateForwardToContact", header: http.Header{}, query: "target=Contact", status: 400, subcode: pvf, params: []string{"target"}},
		{name: "forwarding target over 80", rel: "simultaneousRingToContact", header: js, body: `{"target":"sip:` + strings.Repeat("a", 80) + `@b.c"}`, status: 400, subcode: pvf, params: []string{"target"}},
		{name: "makeMeAvailable stores a number", rel: "makeMeAvailable", header: js, body: `{"SupportedModalities":["PhoneAudio"],"audioPreference":"phoneaudio","phoneNumber":"4255552222"}`,
			wantBody: `{"SupportedModalities":["PhoneAudio"],"audioPreference":"PhoneAudio","phoneNumber":"tel:+14255552222"}`,
			dests:    []destSummary{{Property: "phoneNumber", Kind: StoredForLater, Source: InBody, Value: "tel:+14255552222", Number: true}}},
		{name: "delegator identity", rel: "startPhoneAudioOnBehalfOfDelegator", header: js, body: `{"to":"sip:a@b.c","delegator":"sip : boss@contoso.com"}`,
			wantBody: `{"to":"sip:a@b.c","delegator":"sip:boss@contoso.com"}`,
			dests:    []destSummary{{Property: "to", Kind: DialledNow, Source: InBody, Value: "sip:a@b.c"}, {Property: "delegator", Kind: OnBehalfOf, Source: InBody, Value: "sip:boss@contoso.com"}}},
		{name: "emergency call", rel: "startEmergencyCall", header: js, body: `{"to":"+1 425 555 1234","city":"Redmond","joinAudioMuted":false}`,
			wantBody: `{"to":"tel:+14255551234","city":"Redmond","joinAudioMuted":false}`,
			dests:    []destSummary{{Property: "to", Kind: DialledNow, Source: InBody, Value: "tel:+14255551234", Number: true}}},
		{name: "SIP URI with a telephone user, normalized", rel: "startPhoneAudio", header: js, body: `{"to":"sip:+1-900-555-1234@gw;user=phone"}`,
			wantBody: `{"to":"sip:+19005551234@gw;user=phone"}`, dests: []destSummary{{Property: "to", Kind: DialledNow, Source: InBody, Value: "sip:+19005551234@gw;user=phone", Number: true}}},
		{name: "emergency short code", rel: "startEmergencyCall", header: js, body: `{"to":"911"}`,
			wantBody: `{"to":"tel:911"}`, dests: []destSummary{{Property: "to", Kind: DialledNow, Source: InBody, Value: "tel:911", Number: true}}},
		{name: "SIP header injection", rel: "addAudio", header: js, body: `{"to":"sip:john@contoso.com;x\r\nRecord-Route: <sip:evil.example>"}`, status: 400, subcode: pvf, params: []string{"to"}},
		{name: "boolean as a string", rel: "startAudio", header: js, body: `{"to":"sip:a@b.c","joinAudioMuted":"false"}`, status: 400, subcode: pvf, params: []string{"joinAudioMuted"}},
		{name: "boolean in XML", rel: "startAudio", header: intakeHeader("Content-Type", "application/xml"), body: `<input><property name="to">sip:a@b.c</property><property name="joinAudioMuted">yes</property></input>`,
			status: 400, subcode: pvf, params: []string{"joinAudioMuted"}},
		{name: "mediaOffer link", rel: "addAudio", header: js, body: `{"to":"sip:a@b.c","_links":{"mediaOffer":{"href":"https://x"}}}`, status: 400, subcode: pvf, params: []string{"mediaOffer"}},
		{name: "phoneNumber as a link", rel: "startPhoneAudio", header: js, body: `{"to":"sip:john@contoso.com","_links":{"phoneNumber":{"href":"+19005551234"}}}`, status: 400, subcode: pvf, params: []string{"phoneNumber"}},
		{name: "to as a link, in XML", rel: "startPhoneAudio", header: intakeHeader("Content-Type", "application/xml"),
			body: `<input><property name="to">sip:john@contoso.com</property><link rel="To" href="tel:+19005551234"/></input>`, status: 400, subcode: pvf, params: []string{"to"}},
		{name: "target as a link, folded", rel: "immediateForwardToContact", header: js, body: `{"target":"sip:a@b.c","_links":{"target\u0000":{"href":"tel:+19005551234"}}}`, status: 400, subcode: pvf, params: []string{"target"}},

		// Body and query together.
		{name: "in both, agreeing", rel: "startPhoneAudio", header: js, query: "to=(425)+555-1234", body: `{"to":"tel:+1-425-555-1234"}`,
			wantBody: `{"to":"tel:+14255551234"}`, wantQuery: "to=tel%3A%2B14255551234",
			dests: []destSummary{{Property: "to", Kind: DialledNow, Source: InBody, Value: "tel:+14255551234", Number: true}, {Property: "to", Kind: DialledNow, Source: InQuery, Value: "tel:+14255551234", Number: true}}},
		{name: "in both, differing", rel: "startAudio", header: js, query: "subject=a", body: `{"to":"sip:a@b.c","subject":"b"}`, status: 400, subcode: pvf, params: []string{"subject"}},
		{name: "query name in other letter case", rel: "addParticipant", header: js, query: "TO=tel:%2B19005551234", body: `{"to":"sip:a@b.c"}`, status: 400, subcode: pvf, params: []string{"to"}},
		{name: "malformed query", rel: "addParticipant", header: js, query: "to=a;b", body: `{"to":"sip:a@b.c"}`, status: 400, subcode: pvf},

		// Lengths as the pool counts them.
		{name: "operationId of 50 emoji", rel: "startPhoneAudio", header: js, body: `{"to":"sip:a@b.c","operationId":"` + strings.Repeat("😀", 50) + `"}`, status: 400, subcode: pvf, params: []string{"operationId"}},
		{name: "subject of 250 emoji", rel: "startPhoneAudio", header: js, body: `{"to":"sip:a@b.c","subject":"` + strings.Repeat("😀", 250) + `"}`, status: 400, subcode: pvf, params: []string{"subject"}},
		{name: "sessionContext of 25 emoji", rel: "startAudio", header: js, body: `{"to":"sip:a@b.c","sessionContext":"` + strings.Repeat("😀", 25) + `"}`,
			wantBody: `{"to":"sip:a@b.c","sessionContext":"` + strings.Repeat("😀", 25) + `"}`, dests: []destSummary{{Property: "to", Kind: DialledNow, Source: InBody, Value: "sip:a@b.c"}}},
	}
	c := mustCleaner(t, "US", TelURI)
	for _, tt := range tests {
		op := mustOperation(tt.rel)
		method := tt.method
		if method == "" {
			method = "POST"
		}
		body := []byte(tt.body)
		cl, err := c.Intake(op, Incoming{Method: method, Header: tt.header, RawQuery: tt.query, Body: body})
		if tt.status != 0 {
			if err == nil {
				t.Errorf("%s: accepted, want %d", tt.name, tt.status)
				continue
			}
			var names []string
			for _, p := range err.Parameters {
				names = append(names, p.Name)
			}
			if err.Status != tt.status || err.Subcode != tt.subcode || err.Allow != tt.allow || tt.params != nil && !reflect.DeepEqual(names, tt.params) {
				t.Errorf("%s: %v %v (Allow %q), want %d %s %v", tt.name, err, names, err.Allow, tt.status, tt.subcode, tt.params)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v %v", tt.name, err, err.Parameters)
			continue
		}
		if string(cl.Body()) != tt.wantBody || cl.RawQuery() != tt.wantQuery {
			t.Errorf("%s: forwards\n%s ? %s\nwant\n%s ? %s", tt.name, cl.Body(), cl.RawQuery(), tt.wantBody, tt.wantQuery)
		}
		if cl.BodyChanged() != (tt.wantBody != tt.body) {
			t.Errorf("%s: BodyChanged %v", tt.name, cl.BodyChanged())
		}
		if !cl.BodyChanged() && len(body) > 0 && &cl.Body()[0] != &body[0] {
			t.Errorf("%s: an unchanged body was copied", tt.name)
		}
		if got := summarize(cl.Destinations()); !reflect.DeepEqual(got, tt.dests) {
			t.Errorf("%s: destinations %+v, want %+v", tt.name, got, tt.dests)
		}
	}
}

// TestIntakeClassifiesDestinations checks that a destination policy gets
// the number's classification with each destination.
func TestIntakeClassifiesDestinations(t *testing.T) {
	c := mustCleaner(t, "US", TelURI)
	cl, err := c.Intake(mustOperation("startPhoneAudio"), Incoming{Method: "POST", Header: intakeHeader("Content-Type", "application/json"),
		RawQuery: "to=sip:%2B19005551234@gw.contoso.com%3Buser=phone", Body: []byte(`{"phoneNumber":"+44 20 7946 0958","to":"sip:+1-900-555-1234@GW.contoso.com;user=phone"}`)})
	if err != nil {
		t.Fatal(err, err.Parameters)
	}
	ds := cl.Destinations()
	if len(ds) != 3 {
		t.Fatalf("%+v", ds)
	}
	if d := ds[0]; d.Property != "phoneNumber" || d.Number.Region != "GB" || d.SIP || d.Value != "tel:+442079460958" {
		t.Errorf("phoneNumber: %+v", d)
	}
	for _, d := range ds[1:] {
		if d.Property != "to" || d.Number.Type != NumberPremiumRate || d.Number.E164 != "+19005551234" || !d.SIP || d.Host != "gw.contoso.com" ||
			d.Value != "sip:+19005551234@gw.contoso.com;user=phone" {
			t.Errorf("to: %+v", d)
		}
	}
	cl, err = c.Intake(mustOperation("startEmergencyCall"), Incoming{Method: "POST", RawQuery: "to=112"})
	if err != nil || len(cl.Destinations()) != 1 || !cl.Destinations()[0].Number.Emergency || !cl.Operation.Emergency {
		t.Errorf("emergency: %v %+v", err, cl)
	}
}

// TestCleanLengthOnceNormalized checks that a number's length is that of
// the number forwarded: shorter as written is not enough.
func TestCleanLengthOnceNormalized(t *testing.T) {
	op := &Operation{Rel: "x", Method: "POST", Body: PropertiesBody, XMLRoot: "input",
		Properties: []Property{{Name: "n", Type: NumberValue, MaxLength: 12, Destination: StoredForLater}, {Name: "s", Type: StringValue, MaxLength: 3}}}
	c := mustCleaner(t, "US", TelURI)
	r, derr := decodeOp(op, JSON, []byte(`{"n":"4255551234","s":"😀x"}`))
	if derr != nil {
		t.Fatal(derr)
	}
	_, err := c.Clean(op, r, nil)
	if err == nil || err.Subcode != SubcodeParameterValidationFailure || len(err.Parameters) != 1 || err.Parameters[0] != (Parameter{Name: "n",
		Reason: "must be at most 12 characters, counted in UTF-16 code units once normalized"}) {
		t.Errorf("%v %v", err, err.Parameters)
	}
	r, _ = decodeOp(op, JSON, []byte(`{"n":"+1 (425) 555-1234","s":"😀xy"}`))
	if _, err := c.Clean(op, r, nil); err == nil || err.Parameters[0].Name != "s" {
		t.Errorf("a 4-unit string passed: %v", err)
	}
}

// BenchmarkIntake is the whole protocol path of the samples: media type,
// decode, query, clean, re-encode.
func BenchmarkIntake(b *testing.B) {
	c := mustCleaner(b, "US", TelURI)
	for _, s := range benchSamples(b) {
		header := intakeHeader("Content-Type", map[Format]string{JSON: "application/json", XML: "application/xml"}[s.format])
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(s.body)))
			for b.Loop() {
				cl, err := c.Intake(spa, Incoming{Method: "POST", Header: header, Body: s.body})
				if err != nil || len(cl.Body()) == 0 {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIntakeQuery takes in requests whose inputs are all in the
// query, as the forwarding operations' samples send them, released as
// the edge releases them.
func BenchmarkIntakeQuery(b *testing.B) {
	c := mustCleaner(b, "US", TelURI)
	op := mustOperation("immediateForwardToContact")
	b.ReportAllocs()
	for b.Loop() {
		cl, err := c.Intake(op, Incoming{Method: "POST", Header: http.Header{}, RawQuery: "target=%2B1+425+555+1234"})
		if err != nil || len(cl.Destinations()) != 1 {
			b.Fatal(err)
		}
		cl.Release()
	}
}

// TestIntakeBatchParts takes the parts of a batch in as the edge does:
// the matcher (the same canonical paths as for a request alone) tells a
// guarded part, a near miss or a nested batch; Intake checks a guarded
// part with its own method, headers, query and body; the cleaned part is
// written back in place.
func TestIntakeBatchParts(t *testing.T) {
	const boundary = "77f2569d"
	app := "/ucwa/oauth/v1/applications/104"
	part := func(lines ...string) string {
		return "--" + boundary + "\r\nContent-Type: application/http; msgtype=request\r\n\r\n" + strings.Join(lines, "\r\n")
	}
	body := part("GET "+app+"/events?ack=1 HTTP/1.1", "Host: fe1", "", "") + "\r\n" +
		part("POST "+app+"/communication/startPhoneAudio HTTP/1.1", "Content-Type: application/json", "", `{"to":"(425) 555-1234","operationId":"1"}`) + "\r\n" +
		part("POST "+app+"/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact?target=%2B1+425+555+0000 HTTP/1.1", "", "") + "\r\n" +
		part("POST "+app+"/communication/conversations/eee0/addParticipant HTTP/1.1", `Data: {"to":"tel:+1-425-555-9999"}`, "") + "\r\n" +
		"--" + boundary + "--\r\n"
	b, err := ParseBatch("multipart/batching; boundary="+boundary, []byte(body), DefaultMaxBatchParts)
	if err != nil {
		t.Fatal(err)
	}
	m := mustMatcher(t)
	c := mustCleaner(t, "US", TelURI)
	var guarded []string
	for _, p := range b.Parts() {
		match, ok := m.MatchTarget(p.Method, p.Target())
		if !ok || match.NearMiss {
			t.Fatalf("part %d: %v %+v", p.Index, ok, match)
		}
		if match.Operation == nil {
			continue
		}
		if match.Operation.Body == BatchBody {
			t.Fatalf("part %d: a nested batch", p.Index)
		}
		guarded = append(guarded, match.Operation.Rel)
		header := p.Header
		if p.Source() == BodyInDataHeader && header.Get("Content-Type") == "" {
			// batch.js sends JSON.stringify output, with no Content-Type.
			header = header.Clone()
			header.Set("Content-Type", "application/json")
		}
		cl, uerr := c.Intake(match.Operation, Incoming{Method: p.Method, Header: header, RawQuery: p.RawQuery(), Body: p.Body()})
		if uerr != nil {
			t.Fatalf("part %d: %v %v", p.Index, uerr, uerr.Parameters)
		}
		if err := p.SetBody(cl.Body()); err != nil {
			t.Fatal(err)
		}
		if cl.RawQuery() != p.RawQuery() {
			if err := p.SetTarget(p.Path() + "?" + cl.RawQuery()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if strings.Join(guarded, ",") != "startPhoneAudio,immediateForwardToContact,addParticipant" {
		t.Errorf("guarded parts: %v", guarded)
	}
	out, err := ParseBatch("multipart/batching; boundary="+boundary, b.Encode(), DefaultMaxBatchParts)
	if err != nil {
		t.Fatalf("re-encoded batch: %v\n%s", err, b.Encode())
	}
	want := []struct{ target, body string }{
		{app + "/events?ack=1", ""},
		{app + "/communication/startPhoneAudio", `{"to":"tel:+14255551234","operationId":"1"}`},
		{app + "/me/callForwardingSettings/immediateForwardSettings/immediateForwardToContact?target=tel%3A%2B14255550000", ""},
		{app + "/communication/conversations/eee0/addParticipant", `{"to":"tel:+14255559999"}`},
	}
	for i, p := range out.Parts() {
		if p.Target() != want[i].target || string(p.Body()) != want[i].body {
			t.Errorf("part %d: %s %q, want %s %q", i+1, p.Target(), p.Body(), want[i].target, want[i].body)
		}
	}
	// A near miss and a nested batch, as parts.
	for target, want := range map[string]string{
		app + "/communication/startPhoneAudio%E2%80%8B": "near miss",
		app + "/communication/startPhoneAudio.aspx":     "near miss",
		app + "/BATCH":                 "batch",
		app + "/people/search?query=x": "none",
	} {
		if got, _ := m.MatchTarget("POST", target); matchResult(got) != want {
			t.Errorf("%s: %s, want %s", target, matchResult(got), want)
		}
	}
}

// TestIntakeRelease takes requests in one after the other, releasing
// each: a released request's memory goes to the next, and what the
// released one returned as strings and its Body stay as they were.
func TestIntakeRelease(t *testing.T) {
	c := mustCleaner(t, "US", TelURI)
	js := intakeHeader("Content-Type", "application/json")
	tests := []struct {
		name, query, body           string
		wantBody, wantQuery, wantTo string
	}{
		{name: "number in the body", body: `{"to":"(425) 555-1234","operationId":"a1"}`,
			wantBody: `{"to":"tel:+14255551234","operationId":"a1"}`, wantTo: "tel:+14255551234"},
		{name: "SIP URI in the body, unchanged", body: `{"to":"sip:john@contoso.com","operationId":"b2"}`,
			wantBody: `{"to":"sip:john@contoso.com","operationId":"b2"}`, wantTo: "sip:john@contoso.com"},
		{name: "number in the query", query: "to=%2B1+206+555+0100&operationId=c3",
			wantQuery: "to=tel%3A%2B12065550100&operationId=c3", wantTo: "tel:+12065550100"},
	}
	type kept struct {
		body, query, to, operationID string
		dests                        []destSummary
	}
	var previous []kept
	for round := range 3 {
		for _, tc := range tests {
			cl, err := c.Intake(spa, Incoming{Method: "POST", Header: js, RawQuery: tc.query, Body: []byte(tc.body)})
			if err != nil {
				t.Fatalf("round %d, %s: %v", round, tc.name, err)
			}
			k := kept{body: string(cl.Body()), query: cl.RawQuery(), dests: summarize(cl.Destinations())}
			k.to, _ = cl.Value(To)
			k.operationID, _ = cl.Value(OperationID)
			if k.body != tc.wantBody || k.query != tc.wantQuery || k.to != tc.wantTo || len(k.dests) != 1 || k.dests[0].Value != tc.wantTo {
				t.Errorf("round %d, %s: body %q, query %q, to %q, destinations %+v", round, tc.name, k.body, k.query, k.to, k.dests)
			}
			body, to, operationID := cl.Body(), k.to, k.operationID
			cl.Release()
			if string(body) != k.body || to != k.to || operationID != k.operationID {
				t.Errorf("round %d, %s: released request's body or values changed", round, tc.name)
			}
			previous = append(previous, k)
		}
	}
	for i, k := range previous {
		if want := previous[i%len(tests)]; !reflect.DeepEqual(k, want) {
			t.Errorf("request %d: %+v, want %+v", i, k, want)
		}
	}
	// A request of Clean has no memory to give back.
	q, err := ParseQuery(spa, "to=sip:john@contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := c.Clean(spa, nil, q)
	if err != nil {
		t.Fatal(err)
	}
	cl.Release()
	if v, _ := cl.Value(To); v != "sip:john@contoso.com" {
		t.Errorf("Clean's request after Release: to %q", v)
	}
}

// TestCleanedValueAt: the value of a property by its index is its value
// by name, from the body, from the query, from both, and absent.
func TestCleanedValueAt(t *testing.T) {
	c := mustCleaner(t, "US", TelURI)
	js := intakeHeader("Content-Type", "application/json")
	for _, tc := range []struct{ name, query, body string }{
		{"body", "", `{"to":"(425) 555-1234","operationId":"a1","subject":"s"}`},
		{"query", "to=%2B1+206+555+0100&operationId=c3", ""},
		{"both", "subject=s&to=sip:john@contoso.com", `{"to":"sip:john@contoso.com","importance":"urgent"}`},
	} {
		cl, err := c.Intake(spa, Incoming{Method: "POST", Header: js, RawQuery: tc.query, Body: []byte(tc.body)})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		present := 0
		for i, p := range spa.Properties {
			v, ok := cl.ValueAt(i)
			if wantV, wantOK := cl.Value(p.Name); v != wantV || ok != wantOK {
				t.Errorf("%s: ValueAt(%d) = %q, %v; Value(%q) = %q, %v", tc.name, i, v, ok, p.Name, wantV, wantOK)
			}
			if ok {
				present++
			}
		}
		if present < 2 || present == len(spa.Properties) {
			t.Errorf("%s: %d of %d properties present: the case tells nothing", tc.name, present, len(spa.Properties))
		}
		cl.Release()
	}
}
