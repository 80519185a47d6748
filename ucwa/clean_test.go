package ucwa

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"maps"
	"reflect"
	"strings"
	"testing"
)

// jsonBody builds a JSON body from name/value pairs, in order.
func jsonBody(kv ...string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			b.WriteString(",")
		}
		name, _ := json.Marshal(kv[i])
		value, _ := json.Marshal(kv[i+1])
		b.Write(name)
		b.WriteString(":")
		b.Write(value)
	}
	b.WriteString("}")
	return b.String()
}

// cleanCase is one body (JSON unless xml is set) and query "to", and
// what Clean must make of them: the normalized values and query "to", or
// the error's subcode and parameters.
type cleanCase struct {
	name    string
	body    string
	xml     bool
	queryTo string
	noReg   bool // no default region (else US)
	format  NumberFormat

	want      map[string]string // only the properties listed are checked
	wantQuery string
	subcode   string
	params    []Parameter
}

func runCleanCases(t *testing.T, cases []cleanCase) {
	t.Helper()
	for _, tt := range cases {
		region := "US"
		if tt.noReg {
			region = ""
		}
		c := mustCleaner(t, region, tt.format)
		f := JSON
		if tt.xml {
			f = XML
		}
		r, derr := decode(f, []byte(tt.body))
		if derr != nil {
			t.Errorf("%s: decode: %v", tt.name, derr)
			continue
		}
		q, err := cleanSPA(c, r, tt.queryTo)
		if tt.subcode != "" {
			if err == nil {
				t.Errorf("%s: accepted, want %s %v", tt.name, tt.subcode, tt.params)
				continue
			}
			if err.Status != 400 || err.Subcode != tt.subcode || !reflect.DeepEqual(err.Parameters, tt.params) {
				t.Errorf("%s: error %d %s %#v\nwant 400 %s %#v", tt.name, err.Status, err.Subcode, err.Parameters, tt.subcode, tt.params)
			}
			for _, p := range err.Parameters {
				if !strings.Contains(err.Message, p.Name+" "+p.Reason) && err.Subcode == SubcodeParameterValidationFailure {
					t.Errorf("%s: message %q does not name %v", tt.name, err.Message, p)
				}
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v %v", tt.name, err, err.Parameters)
			continue
		}
		if q != tt.wantQuery {
			t.Errorf("%s: query to %q, want %q", tt.name, q, tt.wantQuery)
		}
		for name, want := range tt.want {
			if got, _ := r.Get(name); got != want {
				t.Errorf("%s: %v = %q, want %q", tt.name, name, got, want)
			}
		}
	}
}

const toSIP = "sip:john@contoso.com"

var (
	badTo       = Parameter{Name: "to", Reason: "must be a SIP URI (sip:user@host) or a phone number"}
	badQueryTo  = Parameter{Name: "to", Reason: "must be a SIP URI (sip:user@host) or a phone number (the to query parameter)"}
	badSIP      = func(rule string) Parameter { return Parameter{Name: "to", Reason: "must be a SIP URI " + rule} }
	noRegion    = func(name string) Parameter { return Parameter{Name: name, Reason: numNoRegion} }
	badNumber   = func(name string) Parameter { return Parameter{Name: name, Reason: "is not a possible phone number"} }
	requiredTo  = Parameter{Name: "to", Reason: "is required, in the body or as the to query parameter"}
	differentTo = Parameter{Name: "to", Reason: "differs between the body and the query"}
)

func TestCleanValidation(t *testing.T) {
	pvf := SubcodeParameterValidationFailure
	runCleanCases(t, []cleanCase{
		// to: body or query
		{name: "to missing", body: `{"subject":"s"}`, subcode: pvf, params: []Parameter{requiredTo}},
		{name: "to null", body: `{"to":null}`, subcode: pvf, params: []Parameter{requiredTo}},
		{name: "to blank", body: `{"to":"  "}`, queryTo: " ", subcode: pvf, params: []Parameter{requiredTo}},
		{name: "to from the query", body: `{}`, queryTo: "sip : john@contoso.com", wantQuery: toSIP},
		{name: "to in the body only", body: jsonBody("to", toSIP), want: map[string]string{To: toSIP}},
		{name: "to in both, same", body: jsonBody("to", toSIP), queryTo: toSIP, wantQuery: toSIP, want: map[string]string{To: toSIP}},
		{name: "to in both, same after normalization", body: jsonBody("to", "tel:+1-425-555-1234"), queryTo: "(425) 555-1234",
			wantQuery: "tel:+14255551234", want: map[string]string{To: "tel:+14255551234"}},
		{name: "to in both, SIP host and scheme in any case", body: jsonBody("to", "sip:john@contoso.com"), queryTo: "SIP:john@CONTOSO.com",
			wantQuery: "sip:john@contoso.com", want: map[string]string{To: toSIP}},
		{name: "to in both, different", body: jsonBody("to", toSIP), queryTo: "sip:jane@contoso.com", subcode: pvf, params: []Parameter{differentTo}},
		{name: "to in both, SIP users differ in case", body: jsonBody("to", toSIP), queryTo: "sip:John@contoso.com", subcode: pvf, params: []Parameter{differentTo}},
		{name: "to in both, different numbers", body: jsonBody("to", "+14255551234"), queryTo: "+14255551235", subcode: pvf, params: []Parameter{differentTo}},
		{name: "to of the wrong type", body: `{"to":1}`, subcode: pvf, params: []Parameter{{Name: "to", Reason: "must be a string"}}},

		// to: SIP URI or phone number
		{name: "sips with port and params", body: jsonBody("to", "sips:john@contoso.com:5061;transport=tls"), want: map[string]string{To: "sips:john@contoso.com:5061;transport=tls"}},
		{name: "sip with IPv6", body: jsonBody("to", "sip:john@[2001:db8::1]"), want: map[string]string{To: "sip:john@[2001:db8::1]"}},
		{name: "sip with IPv4 and port", body: jsonBody("to", "sip:john@192.0.2.1:5060"), want: map[string]string{To: "sip:john@192.0.2.1:5060"}},
		{name: "SIP scheme in capitals", body: jsonBody("to", "SIP:john@contoso.com"), want: map[string]string{To: toSIP}},
		{name: "sip without user", body: jsonBody("to", "sip:@contoso.com"), subcode: pvf, params: []Parameter{badSIP("with a user (sip:user@host)")}},
		{name: "sip without host", body: jsonBody("to", "sip:john"), subcode: pvf, params: []Parameter{badSIP("with a user (sip:user@host)")}},
		{name: "sip with a bad host", body: jsonBody("to", "sip:john@-contoso-.com"), subcode: pvf, params: []Parameter{badSIP("whose host is a host name, an IPv4 address or an IPv6 address in brackets")}},
		{name: "sip with a bad port", body: jsonBody("to", "sip:john@contoso.com:99999"), subcode: pvf, params: []Parameter{badSIP("whose port is a number from 1 to 65535")}},
		{name: "sip with a second @", body: jsonBody("to", "sip:a@evil.com@contoso.com"), subcode: pvf, params: []Parameter{badSIP("with one @ (an @ in the user is escaped as %40)")}},
		{name: "sip with a second @ in the query", body: jsonBody("to", toSIP), queryTo: "sip:john@evil.com@contoso.com", subcode: pvf,
			params: []Parameter{{Name: "to", Reason: "must be a SIP URI with one @ (an @ in the user is escaped as %40) (the to query parameter)"}}},
		{name: "sip with an escaped @ in the user", body: jsonBody("to", "sip:a%40evil.com@contoso.com"), want: map[string]string{To: "sip:a%40evil.com@contoso.com"}},
		{name: "sip with headers", body: jsonBody("to", "sip:john@contoso.com?subject=a"), subcode: pvf, params: []Parameter{badSIP("without ?headers")}},
		{name: "sip with maddr", body: jsonBody("to", "sip:john@contoso.com;maddr=gw.evil.example"), subcode: pvf,
			params: []Parameter{badSIP("without a maddr parameter (it sends the request to another host)")}},
		{name: "sip with a telephone user, normalized", body: jsonBody("to", "sip:+1-900-555-1234@gw.contoso.com;user=phone"), want: map[string]string{To: "sip:+19005551234@gw.contoso.com;user=phone"}},
		{name: "sip with space in user", body: jsonBody("to", "sip:jo hn@contoso.com"), subcode: pvf, params: []Parameter{badSIP("without white space")}},
		{name: "mailto", body: jsonBody("to", "mailto:john@contoso.com"), subcode: pvf, params: []Parameter{badTo}},
		{name: "bare address", body: jsonBody("to", "john@contoso.com"), subcode: pvf, params: []Parameter{badTo}},
		{name: "word", body: jsonBody("to", "john"), subcode: pvf, params: []Parameter{badTo}},
		{name: "bad query to", body: `{}`, queryTo: "sip:john", subcode: pvf, params: []Parameter{{Name: "to", Reason: "must be a SIP URI with a user (sip:user@host) (the to query parameter)"}}},
		{name: "bad body and query to", body: jsonBody("to", "x"), queryTo: "y", subcode: pvf, params: []Parameter{badTo, badQueryTo}},

		// lengths in characters
		{name: "operationId 50 two-byte characters", body: jsonBody("to", toSIP, "operationId", strings.Repeat("é", 50))},
		{name: "operationId 25 emoji (50 UTF-16 code units)", body: jsonBody("to", toSIP, "operationId", strings.Repeat("😀", 25))},
		{name: "operationId 50 emoji (100 UTF-16 code units)", body: jsonBody("to", toSIP, "operationId", strings.Repeat("😀", 50)), subcode: pvf,
			params: []Parameter{{Name: "operationId", Reason: "must be at most 50 characters, counted in UTF-16 code units"}}},
		{name: "subject 125 emoji and nothing else", body: jsonBody("to", toSIP, "subject", strings.Repeat("😀", 125))},
		{name: "subject 250 emoji", body: jsonBody("to", toSIP, "subject", strings.Repeat("😀", 250)), subcode: pvf,
			params: []Parameter{{Name: "subject", Reason: "must be at most 250 characters, counted in UTF-16 code units"}}},
		{name: "subject 124 emoji and three characters", body: jsonBody("to", toSIP, "subject", strings.Repeat("😀", 124)+"abc"), subcode: pvf,
			params: []Parameter{{Name: "subject", Reason: "must be at most 250 characters, counted in UTF-16 code units"}}},
		{name: "operationId 51", body: jsonBody("to", toSIP, "operationId", strings.Repeat("é", 51)), subcode: pvf,
			params: []Parameter{{Name: "operationId", Reason: "must be at most 50 characters, counted in UTF-16 code units"}}},
		{name: "operationId 51 ASCII in XML", xml: true, body: `<input><property name="to">sip:a@b.c</property><property name="operationId">` + strings.Repeat("a", 51) + `</property></input>`,
			subcode: pvf, params: []Parameter{{Name: "operationId", Reason: "must be at most 50 characters, counted in UTF-16 code units"}}},
		{name: "operationId 50 as entities in XML", xml: true, body: `<input><property name="to">sip:a@b.c</property><property name="operationId">` + strings.Repeat("&#233;", 50) + `</property></input>`},
		{name: "subject 250 three-byte characters", body: jsonBody("to", toSIP, "subject", strings.Repeat("日", 250))},
		{name: "subject 251", body: jsonBody("to", toSIP, "subject", strings.Repeat("日", 251)), subcode: pvf,
			params: []Parameter{{Name: "subject", Reason: "must be at most 250 characters, counted in UTF-16 code units"}}},
		{name: "subject 251 escaped in JSON", body: `{"to":"sip:a@b.c","subject":"` + strings.Repeat(`\u00e9`, 251) + `"}`, subcode: pvf,
			params: []Parameter{{Name: "subject", Reason: "must be at most 250 characters, counted in UTF-16 code units"}}},

		// importance
		{name: "importance lower case", body: jsonBody("to", toSIP, "importance", "urgent"), want: map[string]string{Importance: "Urgent"}},
		{name: "importance upper case", body: jsonBody("to", toSIP, "importance", "EMERGENCY"), want: map[string]string{Importance: "Emergency"}},
		{name: "importance with white space", body: jsonBody("to", toSIP, "importance", " nORMAL "), want: map[string]string{Importance: "Normal"}},
		{name: "importance unknown", body: jsonBody("to", toSIP, "importance", "High"), subcode: pvf,
			params: []Parameter{{Name: "importance", Reason: "must be Normal, Urgent or Emergency"}}},

		// customContent
		{name: "data URL, plain", body: `{"to":"sip:a@b.c","_links":{"customContent":{"href":"data:,hello%20world"}}}`, want: map[string]string{CustomContent: "data:,hello%20world"}},
		{name: "data URL, base64", body: `{"to":"sip:a@b.c","_links":{"customContent":{"href":"data:text/plain;base64,aGVsbG8="}}}`, want: map[string]string{CustomContent: "data:text/plain;base64,aGVsbG8="}},
		{name: "data URL, base64 with stray white space", body: `{"to":"sip:a@b.c","_links":{"customContent":{"href":"DATA : text/plain; charset=utf-8 ;base64,aGVs\n  bG8="}}}`,
			want: map[string]string{CustomContent: "data:text/plain; charset=utf-8;base64,aGVsbG8="}},
		{name: "data URL, only parameters", body: `{"to":"sip:a@b.c","_links":{"customContent":{"href":"data:;charset=utf-8,x"}}}`, want: map[string]string{CustomContent: "data:;charset=utf-8,x"}},
		{name: "data URL in XML", xml: true, body: `<input><property name="to">sip:a@b.c</property><link rel="customContent" href="data:application/json;base64,e30="/></input>`,
			want: map[string]string{CustomContent: "data:application/json;base64,e30="}},
		{name: "data URL, bad base64", body: `{"to":"sip:a@b.c","_links":{"customContent":{"href":"data:text/plain;base64,aGVsbG8"}}}`, subcode: pvf,
			params: []Parameter{{Name: "customContent", Reason: "must hold valid base64 data"}}},
		{name: "not a data URL", body: `{"to":"sip:a@b.c","_links":{"customContent":{"href":"https://contoso.com/x"}}}`, subcode: pvf,
			params: []Parameter{{Name: "customContent", Reason: "must be a data: URL (RFC 2397)"}}},
		{name: "data URL without comma", body: `{"to":"sip:a@b.c","_links":{"customContent":{"href":"data:text/plain"}}}`, subcode: pvf,
			params: []Parameter{{Name: "customContent", Reason: "must be a data: URL (RFC 2397)"}}},
		{name: "data URL with a bad media type", body: `{"to":"sip:a@b.c","_links":{"customContent":{"href":"data:text/plain;x,abc"}}}`, subcode: pvf,
			params: []Parameter{{Name: "customContent", Reason: "must have a valid media type"}}},
		{name: "data URL with bad percent-encoding", body: `{"to":"sip:a@b.c","_links":{"customContent":{"href":"data:,%zz"}}}`, subcode: pvf,
			params: []Parameter{{Name: "customContent", Reason: "must hold valid percent-encoded data"}}},
		{name: "customContent of the wrong type", body: `{"to":"sip:a@b.c","_links":{"customContent":{"href":{}}}}`, subcode: pvf,
			params: []Parameter{{Name: "customContent", Reason: "must be a string"}}},

		// every failing property at once, in field order, "to" last but one
		{name: "every failure listed",
			body: `{"operationId":"` + strings.Repeat("x", 51) + `","phoneNumber":5,"importance":"low","subject":"` + strings.Repeat("s", 251) +
				`","threadId":[],"to":"nobody","_links":{"customContent":{"href":"nope"}}}`,
			queryTo: "sip:x", subcode: pvf, params: []Parameter{
				{Name: "phoneNumber", Reason: "must be a string"},
				{Name: "threadId", Reason: "must be a string"},
				{Name: "operationId", Reason: "must be at most 50 characters, counted in UTF-16 code units"},
				{Name: "subject", Reason: "must be at most 250 characters, counted in UTF-16 code units"},
				{Name: "importance", Reason: "must be Normal, Urgent or Emergency"},
				{Name: "customContent", Reason: "must be a data: URL (RFC 2397)"},
				badTo, {Name: "to", Reason: "must be a SIP URI with a user (sip:user@host) (the to query parameter)"},
			}},
	})
}

func TestCleanNormalization(t *testing.T) {
	const want = "tel:+14255551234"
	nf, pvf := SubcodeNormalizationFailed, SubcodeParameterValidationFailure
	var cases []cleanCase
	// Every documented spelling, as phoneNumber and as to, in JSON and XML.
	for _, in := range []string{"+14255551234", "tel:+14255551234", "tel:+1-425-555-1234", "(425) 555-1234", "4255551234",
		"tel : +14255551234", " +1 425 555 1234 ", "1-425-555-1234", "+1.425.555.1234", "\u0664\u0662\u0665\u0665\u0665\u0665\u0661\u0662\u0663\u0664"} {
		cases = append(cases,
			cleanCase{name: "JSON " + in, body: jsonBody("phoneNumber", in, "to", in), want: map[string]string{PhoneNumber: want, To: want}},
			cleanCase{name: "XML " + in, xml: true, body: `<input><property name="phoneNumber">` + in + `</property><property name="to">` + in + `</property></input>`,
				want: map[string]string{PhoneNumber: want, To: want}},
			cleanCase{name: "query " + in, body: `{}`, queryTo: in, wantQuery: want},
			cleanCase{name: "e164 " + in, format: E164, body: jsonBody("phoneNumber", in, "to", in), want: map[string]string{PhoneNumber: "+14255551234", To: "+14255551234"}},
		)
	}
	cases = append(cases, []cleanCase{
		{name: "extension kept", body: jsonBody("phoneNumber", "tel:+14255551234;ext=123", "to", "+1 425 555 1234 x123"),
			want: map[string]string{PhoneNumber: "tel:+14255551234;ext=123", To: "tel:+14255551234;ext=123"}},
		{name: "extension in other digits made ASCII", body: jsonBody("phoneNumber", "+1 425 555 1234 x١٢٣", "to", toSIP),
			want: map[string]string{PhoneNumber: "tel:+14255551234;ext=123"}},
		{name: "extension kept in e164", format: E164, body: jsonBody("phoneNumber", "tel:+14255551234;ext=123", "to", toSIP),
			want: map[string]string{PhoneNumber: "+14255551234;ext=123", To: toSIP}},
		{name: "other country", body: jsonBody("phoneNumber", "+44 20 7946 0958", "to", toSIP), want: map[string]string{PhoneNumber: "tel:+442079460958"}},
		{name: "SIP cleaned", body: jsonBody("to", " sip : john@contoso.com "), want: map[string]string{To: toSIP}},
		{name: "seed sample", body: string(readSeed(t, "seed.json")), want: map[string]string{
			PhoneNumber: want, To: toSIP, CustomContent: "data:text/plain;base64,somebase64encodedmessage",
			Importance: "Urgent", OperationID: "74cb7404e0a247d5a2d4eb0376a47dbf", Subject: "SkypeforBusiness"}},
		{name: "seed sample XML", xml: true, body: string(readSeed(t, "seed.xml")), want: map[string]string{PhoneNumber: want, To: toSIP, Subject: "Skype for Business"}},
		{name: "no region, with country code", noReg: true, body: jsonBody("phoneNumber", "+1 (425) 555-1234", "to", "tel:+1-425-555-1234"),
			want: map[string]string{PhoneNumber: want, To: want}},

		{name: "no region, no country code", noReg: true, body: jsonBody("phoneNumber", "(425) 555-1234", "to", "4255551234"), subcode: nf,
			params: []Parameter{noRegion("phoneNumber"), noRegion("to")}},
		{name: "no region, query without country code", noReg: true, body: jsonBody("to", "+14255551234"), queryTo: "4255551234", subcode: nf,
			params: []Parameter{{Name: "to", Reason: numNoRegion + " (the to query parameter)"}}},
		{name: "possible only locally", body: jsonBody("phoneNumber", "555-1234", "to", toSIP), subcode: nf, params: []Parameter{badNumber("phoneNumber")}},
		{name: "too short", body: jsonBody("phoneNumber", "123", "to", toSIP), subcode: nf, params: []Parameter{badNumber("phoneNumber")}},
		{name: "too long", body: jsonBody("phoneNumber", "+1425555123456789", "to", toSIP), subcode: nf, params: []Parameter{badNumber("phoneNumber")}},
		{name: "unknown country code", body: jsonBody("phoneNumber", "+999 123 456", "to", toSIP), subcode: nf, params: []Parameter{badNumber("phoneNumber")}},
		{name: "letters", body: jsonBody("phoneNumber", "call me", "to", toSIP), subcode: pvf, params: []Parameter{{Name: "phoneNumber", Reason: numNotNumber}}},
		{name: "SIP as phoneNumber", body: jsonBody("phoneNumber", toSIP, "to", toSIP), subcode: pvf, params: []Parameter{{Name: "phoneNumber", Reason: numNotNumber}}},
		{name: "tel without a number", body: jsonBody("to", "tel:abc"), subcode: nf, params: []Parameter{{Name: "to", Reason: numLetters}}},
		{name: "national prefix after the country code reads back as another number", body: jsonBody("phoneNumber", "+910000000000", "to", toSIP), subcode: nf,
			params: []Parameter{{Name: "phoneNumber", Reason: numReadBack}}},
		{name: "more than 15 digits", body: jsonBody("phoneNumber", "+49 100 000 000 000 000 00", "to", toSIP), subcode: nf, params: []Parameter{badNumber("phoneNumber")}},
		{name: "very long", body: jsonBody("phoneNumber", "+1"+strings.Repeat("2", 200), "to", toSIP), subcode: nf, params: []Parameter{{Name: "phoneNumber", Reason: numTooLong}}},
		{name: "phone-context", body: jsonBody("phoneNumber", "tel:+1-425-555-1234;phone-context=example.com", "to", toSIP), subcode: nf,
			params: []Parameter{{Name: "phoneNumber", Reason: numParameter}}},
		{name: "emergency number as to", body: jsonBody("to", "911"), want: map[string]string{To: "tel:911"}},
		{name: "vanity number", body: jsonBody("to", "1-800-FLOWERS"), subcode: nf, params: []Parameter{{Name: "to", Reason: numLetters}}},
	}...)
	runCleanCases(t, cases)
}

func TestNormalizeNumberJavaScriptSample(t *testing.T) {
	// Microsoft's JavaScript call-via-work sample accepts these three forms.
	for _, region := range []string{"US", "us"} {
		c := mustCleaner(t, region, TelURI)
		for _, in := range []string{"4255551234", "+14255551234", "tel:+14255551234"} {
			if got, p := c.Numbers().Number(in); !p.OK() || got.Forwarded() != "tel:+14255551234" {
				t.Errorf("region %s: Number(%q) = %q, %v", region, in, got.Forwarded(), p)
			}
		}
	}
}

func TestNewCleaner(t *testing.T) {
	tests := []struct {
		region string
		format NumberFormat
		ok     bool
	}{
		{"", TelURI, true}, {"US", E164, true}, {"de", TelURI, true},
		{"XX", TelURI, false}, {"USA", TelURI, false}, {"US", NumberFormat(9), false},
	}
	for _, tt := range tests {
		if _, err := NewCleaner(tt.region, tt.format); (err == nil) != tt.ok {
			t.Errorf("NewCleaner(%q, %d): %v", tt.region, tt.format, err)
		}
	}
	// Any letter case: a config that wrote E164 keeps starting.
	formats := map[string]NumberFormat{"": TelURI, "tel": TelURI, "TEL": TelURI, "Tel": TelURI, "e164": E164, "E164": E164}
	for in, want := range formats {
		if got, err := ParseNumberFormat(in); err != nil || got != want {
			t.Errorf("ParseNumberFormat(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseNumberFormat("international"); err == nil || !strings.Contains(err.Error(), `"international"`) {
		t.Errorf("ParseNumberFormat(international): %v", err)
	}
	if _, err := ParseNumberFormat("National"); err == nil || err.Error() != `number_format: "National" is neither tel nor e164` {
		t.Errorf("ParseNumberFormat(National): %v", err)
	}
}

// TestEncode checks the whole terminate pipeline (decode, clean, encode):
// only the normalized values change, byte for byte.
func TestEncode(t *testing.T) {
	seedJSON := string(readSeed(t, "seed.json"))
	seedXML := string(readSeed(t, "seed.xml"))
	dotnet := `{"direction":null,"state":null,"joinAudioMuted":false,"privateLine":false,` +
		`"operationId":"` + dotnetGUID1 + `","threadId":"` + dotnetGUID2 + `","to":"tel:+1-425-555-1234","phoneNumber":"(425) 555-0000","importance":"urgent","subject":null}`
	const open = `<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">`
	tests := []struct {
		name      string
		f         Format
		in, want  string
		unchanged bool
	}{
		{name: "seed JSON", f: JSON, in: seedJSON, want: strings.NewReplacer(
			`"tel : +14255551234"`, `"tel:+14255551234"`, `"sip : john@contoso.com"`, `"sip:john@contoso.com"`,
			`"data : text/plain`, `"data:text/plain`).Replace(seedJSON)},
		{name: "seed XML", f: XML, in: seedXML, want: seedXML, unchanged: true},
		{name: ".NET SDK model", f: JSON, in: dotnet, want: strings.NewReplacer(
			`"tel:+1-425-555-1234"`, `"tel:+14255551234"`, `"(425) 555-0000"`, `"tel:+14255550000"`, `"urgent"`, `"Urgent"`).Replace(dotnet)},
		{name: "JavaScript sample", f: JSON, in: `{"to":"sip:john@contoso.com","phoneNumber":"4255551234","operationId":"x"}`,
			want: `{"to":"sip:john@contoso.com","phoneNumber":"tel:+14255551234","operationId":"x"}`},
		{name: "JSON with escapes and unknown link", f: JSON, in: "{\n \"PHONENUMBER\" : \"\\u002b1 425 555 1234\" ,\n \"To\":\"sip:a@b.c\", \"_links\":{\"self\":{\"href\":\"/x\"},\"customContent\":{\"href\":\"data : ,a<b>&\"}}}",
			want: "{\n \"PHONENUMBER\" : \"tel:+14255551234\" ,\n \"To\":\"sip:a@b.c\", \"_links\":{\"self\":{\"href\":\"/x\"},\"customContent\":{\"href\":\"data:,a<b>&\"}}}"},
		{name: "XML with every kind of value", f: XML,
			in: `<?xml version="1.0"?>` + "\n" + open + `<property name="phoneNumber"> (425) 555-1234 <!-- mine --></property>` +
				`<property name="to"><![CDATA[sip : john@contoso.com]]></property><property name="importance">EMERGENCY</property>` +
				`<propertyList name="x"><item>1</item></propertyList><u:link xmlns:u="http://schemas.microsoft.com/rtc/2012/03/ucwa" title="t" rel="customContent" href='data : ,"a"&amp;b'/></input>`,
			want: `<?xml version="1.0"?>` + "\n" + open + `<property name="phoneNumber">tel:+14255551234</property>` +
				`<property name="to">sip:john@contoso.com</property><property name="importance">Emergency</property>` +
				`<propertyList name="x"><item>1</item></propertyList><u:link xmlns:u="http://schemas.microsoft.com/rtc/2012/03/ucwa" title="t" rel="customContent" href='data:,&#34;a&#34;&amp;b'/></input>`},
		{name: "XML value needing escapes", f: XML, in: open + `<property name="to">sip:a@b.c</property><property name="importance">NORMAL</property><property name="subject">a&lt;b</property></input>`,
			want: open + `<property name="to">sip:a@b.c</property><property name="importance">Normal</property><property name="subject">a&lt;b</property></input>`},
	}
	c := mustCleaner(t, "US", TelURI)
	for _, tt := range tests {
		in := []byte(tt.in)
		r, err := decode(tt.f, in)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		before := snapshot(r)
		if _, err := c.Clean(spa, r, nil); err != nil {
			t.Fatalf("%s: %v %v", tt.name, err, err.Parameters)
		}
		out := r.Encode()
		if string(out) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, out, tt.want)
		}
		if r.Changed() == tt.unchanged {
			t.Errorf("%s: Changed() = %v", tt.name, r.Changed())
		}
		if tt.unchanged && (len(out) == 0 || &out[0] != &in[0]) {
			t.Errorf("%s: an unchanged body is copied", tt.name)
		}
		// The output decodes to the cleaned values, and everything else
		// in it is as it was.
		r2, err := decode(tt.f, out)
		if err != nil {
			t.Fatalf("%s: re-encoded body does not decode: %v\n%s", tt.name, err, out)
		}
		if got, want := snapshot(r2), snapshot(r); got != want {
			t.Errorf("%s: re-encoded body holds %v, want %v", tt.name, got, want)
		}
		if before != snapshot(r) && bytes.Equal(out, in) {
			t.Errorf("%s: values changed but the body did not", tt.name)
		}
		if tt.f == JSON {
			assertSameJSONBesides(t, tt.name, in, out)
		} else {
			assertWellFormedXML(t, tt.name, out)
		}
	}
}

// assertSameJSONBesides checks that two JSON objects have the same
// properties with the same values, apart from the documented fields.
func assertSameJSONBesides(t *testing.T, name string, in, out []byte) {
	t.Helper()
	var a, b map[string]any
	if err := json.Unmarshal(in, &a); err != nil {
		t.Fatalf("%s: input: %v", name, err)
	}
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatalf("%s: output is not JSON: %v", name, err)
	}
	strip := func(m map[string]any) map[string]any {
		m = maps.Clone(m)
		for k := range m {
			if _, known := spa.Property(k); known || strings.EqualFold(k, "_links") {
				delete(m, k)
			}
		}
		return m
	}
	if !reflect.DeepEqual(strip(a), strip(b)) {
		t.Errorf("%s: unknown properties changed:\n%v\n%v", name, a, b)
	}
}

func assertWellFormedXML(t *testing.T, name string, out []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(out))
	for {
		_, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Errorf("%s: output is not XML: %v", name, err)
			}
			return
		}
	}
}
