package ucwa

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestCode(t *testing.T) {
	// The notes' table: the code is one-to-one with the status.
	want := map[int]string{
		400: "BadRequest", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
		408: "ClientTimeout", 409: "Conflict", 410: "Gone", 412: "PreConditionFailed",
		413: "EntityTooLarge", 415: "UnsupportedMediaType", 428: "PreConditionRequired",
		429: "TooManyRequests", 500: "ServiceFailure", 503: "ServiceUnavailable", 504: "Timeout",
		// no UCWA code: the edge's choices
		401: "Unauthorized", 502: "ServiceFailure", 418: "BadRequest", 599: "ServiceFailure",
	}
	for status, code := range want {
		if got := Code(status); got != code {
			t.Errorf("Code(%d) = %q, want %q", status, got, code)
		}
	}
}

func TestErrorMarshal(t *testing.T) {
	tests := []struct {
		name     string
		err      *Error
		wantJSON string
		wantXML  string
	}{
		{
			name:     "conflict with subcode",
			err:      NewError(409, SubcodeAlreadyExists, "The already exists error."),
			wantJSON: `{"code":"Conflict","subcode":"AlreadyExists","message":"The already exists error."}`,
			wantXML: `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
				`<reason xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><code>Conflict</code><subcode>AlreadyExists</subcode><message>The already exists error.</message><debugInfo/></reason>`,
		},
		{
			name:     "forbidden without subcode",
			err:      NewError(403, "", MessagePhoneAudioNotInCapabilities),
			wantJSON: `{"code":"Forbidden","message":"Phone audio is not listed in the capabilities."}`,
			wantXML: `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
				`<reason xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><code>Forbidden</code><message>Phone audio is not listed in the capabilities.</message><debugInfo/></reason>`,
		},
		{
			name: "bad request with parameters, escaped",
			err: &Error{Status: 400, Subcode: SubcodeParameterValidationFailure, Message: `a <b> & "c"`,
				Parameters: []Parameter{{Name: "to", Reason: "is required"}, {Name: "subject", Reason: "must be <= 250"}}},
			wantJSON: `{"code":"BadRequest","subcode":"ParameterValidationFailure","message":"a \u003cb\u003e \u0026 \"c\"","parameters":[{"name":"to","reason":"is required"},{"name":"subject","reason":"must be \u003c= 250"}]}`,
			wantXML: `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
				`<reason xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa"><code>BadRequest</code><subcode>ParameterValidationFailure</subcode><message>a &lt;b&gt; &amp; &#34;c&#34;</message><debugInfo/>` +
				`<parameters><property name="to">is required</property><property name="subject">must be &lt;= 250</property></parameters></reason>`,
		},
	}
	for _, tt := range tests {
		if got := string(tt.err.Marshal(JSON)); got != tt.wantJSON {
			t.Errorf("%s: JSON\n got %s\nwant %s", tt.name, got, tt.wantJSON)
		}
		if got := string(tt.err.Marshal(XML)); got != tt.wantXML {
			t.Errorf("%s: XML\n got %s\nwant %s", tt.name, got, tt.wantXML)
		}
		// Both bodies read back to the same content.
		var j struct {
			Code, Subcode, Message string
			Parameters             []Parameter
		}
		if err := json.Unmarshal(tt.err.Marshal(JSON), &j); err != nil {
			t.Fatalf("%s: JSON body does not parse: %v", tt.name, err)
		}
		var x struct {
			XMLName    xml.Name
			Code       string    `xml:"code"`
			Subcode    string    `xml:"subcode"`
			Message    string    `xml:"message"`
			DebugInfo  *struct{} `xml:"debugInfo"`
			Parameters []struct {
				Name   string `xml:"name,attr"`
				Reason string `xml:",chardata"`
			} `xml:"parameters>property"`
		}
		if err := xml.Unmarshal(tt.err.Marshal(XML), &x); err != nil {
			t.Fatalf("%s: XML body does not parse: %v", tt.name, err)
		}
		if x.XMLName.Space != Namespace || x.XMLName.Local != "reason" || x.DebugInfo == nil {
			t.Errorf("%s: XML root %v, debugInfo %v", tt.name, x.XMLName, x.DebugInfo)
		}
		if j.Code != tt.err.Code() || x.Code != j.Code || x.Subcode != j.Subcode || x.Message != j.Message || x.Message != tt.err.Message {
			t.Errorf("%s: JSON %+v and XML %+v differ", tt.name, j, x)
		}
		if len(x.Parameters) != len(tt.err.Parameters) || len(j.Parameters) != len(tt.err.Parameters) {
			t.Fatalf("%s: parameters JSON %v XML %v", tt.name, j.Parameters, x.Parameters)
		}
		for i, p := range tt.err.Parameters {
			if j.Parameters[i] != p || x.Parameters[i].Name != p.Name || x.Parameters[i].Reason != p.Reason {
				t.Errorf("%s: parameter %d: JSON %v XML %v want %v", tt.name, i, j.Parameters[i], x.Parameters[i], p)
			}
		}
	}
}

func TestErrorWrite(t *testing.T) {
	for _, f := range []Format{JSON, XML} {
		e := NewError(http.StatusRequestEntityTooLarge, SubcodeEntityTooLarge, "too large")
		w := httptest.NewRecorder()
		w.Header().Set("Content-Encoding", "gzip") // set by an earlier handler; the body is not compressed
		e.Write(w, f)
		res := w.Result()
		body := w.Body.Bytes()
		if res.StatusCode != 413 {
			t.Errorf("%v: status %d", f, res.StatusCode)
		}
		if got := res.Header.Get("Content-Type"); got != f.ContentType() {
			t.Errorf("%v: Content-Type %q", f, got)
		}
		if got := res.Header.Get("Content-Length"); got != strconv.Itoa(len(body)) || len(body) == 0 {
			t.Errorf("%v: Content-Length %q for %d bytes", f, got, len(body))
		}
		if res.Header.Get("Content-Encoding") != "" || res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%v: headers %v", f, res.Header)
		}
		if string(body) != string(e.Marshal(f)) {
			t.Errorf("%v: body %s", f, body)
		}
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{NewError(400, SubcodeNormalizationFailed, MessageNormalizationFailed), "400 BadRequest/NormalizationFailed: The phone normalization failed."},
		{NewError(403, "", ""), "403 Forbidden"},
		{NewError(410, SubcodeCannotRedirect, ""), "410 Gone/CannotRedirect"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
