package ucwa

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// TestParseSIPURIAccepts holds real SIP URIs: each parses into its parts
// and String spells it canonically.
func TestParseSIPURIAccepts(t *testing.T) {
	tests := []struct {
		in    string
		want  SIPURI
		str   string // String(); "" means the input itself
		phone bool
	}{
		{in: "sip:john@contoso.com", want: SIPURI{Scheme: "sip", User: "john", Host: "contoso.com"}},
		{in: "sips:john.doe@contoso.com:5061;transport=tls",
			want: SIPURI{Scheme: "sips", User: "john.doe", Host: "contoso.com", Port: 5061, Params: []SIPParam{{"transport", "tls"}}}},
		{in: "sip:+14255551234@gw.contoso.com;user=phone", phone: true,
			want: SIPURI{Scheme: "sip", User: "+14255551234", Host: "gw.contoso.com", Params: []SIPParam{{"user", "phone"}}}},
		{in: "sip:+1-425-555-1234@gw.contoso.com", phone: true, want: SIPURI{Scheme: "sip", User: "+1-425-555-1234", Host: "gw.contoso.com"}},
		{in: "sip:+1.425.555.1234;ext=12@gw.contoso.com", phone: true, want: SIPURI{Scheme: "sip", User: "+1.425.555.1234;ext=12", Host: "gw.contoso.com"}},
		{in: "sip:+1(425)5551234;postd=pp22@gw.contoso.com", phone: true, want: SIPURI{Scheme: "sip", User: "+1(425)5551234;postd=pp22", Host: "gw.contoso.com"}},
		{in: "sip:4255551234@gw.contoso.com;user=phone", phone: true,
			want: SIPURI{Scheme: "sip", User: "4255551234", Host: "gw.contoso.com", Params: []SIPParam{{"user", "phone"}}}},
		{in: "sip:john@gw.contoso.com;USER=Phone", phone: true,
			want: SIPURI{Scheme: "sip", User: "john", Host: "gw.contoso.com", Params: []SIPParam{{"USER", "Phone"}}}},
		{in: "sip:john@gw.contoso.com;user=ph%6Fne", phone: true,
			want: SIPURI{Scheme: "sip", User: "john", Host: "gw.contoso.com", Params: []SIPParam{{"user", "ph%6Fne"}}}},
		{in: "sip:%2B14255551234@gw.contoso.com", phone: true, want: SIPURI{Scheme: "sip", User: "%2B14255551234", Host: "gw.contoso.com"}},
		{in: "sip:14255551234@gw.contoso.com", want: SIPURI{Scheme: "sip", User: "14255551234", Host: "gw.contoso.com"}},
		{in: "sip:john@gw.contoso.com;user=ip", want: SIPURI{Scheme: "sip", User: "john", Host: "gw.contoso.com", Params: []SIPParam{{"user", "ip"}}}},
		{in: "sip:+alice@contoso.com", want: SIPURI{Scheme: "sip", User: "+alice", Host: "contoso.com"}},
		{in: "sip:user@[2001:db8::1]:5060", want: SIPURI{Scheme: "sip", User: "user", Host: "[2001:db8::1]", Port: 5060}},
		{in: "sip:user@[2001:DB8::1]", str: "sip:user@[2001:db8::1]", want: SIPURI{Scheme: "sip", User: "user", Host: "[2001:db8::1]"}},
		{in: "sip:user@[::ffff:192.0.2.1]", want: SIPURI{Scheme: "sip", User: "user", Host: "[::ffff:192.0.2.1]"}},
		{in: "sip:user@192.0.2.1", want: SIPURI{Scheme: "sip", User: "user", Host: "192.0.2.1"}},
		{in: "sip:user@192.0.2.1:65535", want: SIPURI{Scheme: "sip", User: "user", Host: "192.0.2.1", Port: 65535}},
		{in: "sip:user@h:1", want: SIPURI{Scheme: "sip", User: "user", Host: "h", Port: 1}},
		{in: "sip:j%40hn@contoso.com", want: SIPURI{Scheme: "sip", User: "j%40hn", Host: "contoso.com"}},
		{in: "sip:j%C3%A9r%C3%B4me@contoso.com", want: SIPURI{Scheme: "sip", User: "j%C3%A9r%C3%B4me", Host: "contoso.com"}},
		{in: "sip:alice;day=tuesday@atlanta.com", want: SIPURI{Scheme: "sip", User: "alice;day=tuesday", Host: "atlanta.com"}},
		{in: "sip:a-_.!~*'()&=+$,;/b@contoso.com", want: SIPURI{Scheme: "sip", User: "a-_.!~*'()&=+$,;/b", Host: "contoso.com"}},
		{in: "sip:john@contoso.com.", want: SIPURI{Scheme: "sip", User: "john", Host: "contoso.com."}},
		{in: "sip:john@a-1.b2.c-d", want: SIPURI{Scheme: "sip", User: "john", Host: "a-1.b2.c-d"}},
		{in: "sip:john@9.contoso.com", want: SIPURI{Scheme: "sip", User: "john", Host: "9.contoso.com"}},
		{in: "sip:john@contoso.com;lr;ttl=15;method=INVITE;x-[a]/:&+$=%41b",
			want: SIPURI{Scheme: "sip", User: "john", Host: "contoso.com", Params: []SIPParam{{"lr", ""}, {"ttl", "15"}, {"method", "INVITE"}, {"x-[a]/:&+$", "%41b"}}}},
		// Spelling the edge canonicalizes.
		{in: "SIP:john@CONTOSO.com", str: "sip:john@contoso.com", want: SIPURI{Scheme: "sip", User: "john", Host: "contoso.com"}},
		{in: "sip : john@contoso.com", str: "sip:john@contoso.com", want: SIPURI{Scheme: "sip", User: "john", Host: "contoso.com"}},
		{in: " SiPs :\tJohn@Contoso.COM:5061 ", str: "sips:John@contoso.com:5061", want: SIPURI{Scheme: "sips", User: "John", Host: "contoso.com", Port: 5061}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, reason := ParseSIPURI(tt.in)
			if reason != "" {
				t.Fatalf("refused: %s", reason)
			}
			if !reflect.DeepEqual(u, tt.want) {
				t.Errorf("parts %+v, want %+v", u, tt.want)
			}
			want := tt.str
			if want == "" {
				want = tt.in
			}
			if got := u.String(); got != want {
				t.Errorf("String() = %q, want %q", got, want)
			}
			if got := u.IsPhone(); got != tt.phone {
				t.Errorf("IsPhone() = %v", got)
			}
			again, reason := ParseSIPURI(u.String())
			if reason != "" || !reflect.DeepEqual(again, u) {
				t.Errorf("String() parses as %+v, %q", again, reason)
			}
		})
	}
}

// TestParseSIPURIRefuses holds what must not reach a pool: each issue
// example, and a case for every rule. The reason names the rule and
// never quotes the input.
func TestParseSIPURIRefuses(t *testing.T) {
	tests := []struct {
		in, reason string
	}{
		// The examples, all delivered with 201 before.
		{"sip:john@contoso.com;x\r\nRecord-Route: <sip:evil.example>", sipControl},
		{"sip:john@contoso.com?\r\nContact: <sip:+19005551234@gw>", sipControl},
		{"sip:john@contoso.com;user=phone\u0000+19005551234", sipControl},
		{"sip:a@b.com;<script>", sipDelimiter},
		{"sip:john@contoso.com;maddr=gw.evil.example", sipMaddr},

		// Not SIP at all.
		{"", sipNotSIP},
		{"john@contoso.com", sipNotSIP},
		{"tel:+14255551234", sipNotSIP},
		{"sipx:john@contoso.com", sipNotSIP},
		{"s ip:john@contoso.com", sipNotSIP},
		{"sip", sipNotSIP},

		// Characters no SIP URI holds raw.
		{"sip:jo\thn@contoso.com", sipControl},
		{"sip:john@contoso.com\x7f", sipControl},
		{"sip:john@contoso.com;a=\u0085b", sipControl},
		{"sip:jo hn@contoso.com", sipSpace},
		{"sip:john@contoso.com;a=\u00a0b", sipSpace},
		{"sip:john@contoso.com;a=b\u2028c", sipSpace},
		{`sip:"john"@contoso.com`, sipDelimiter},
		{"sip:<john@contoso.com>", sipDelimiter},
		{"sip:jöhn@contoso.com", sipNonASCII},
		{"sip:john@cöntoso.com", sipNonASCII},
		{"sip:john@contoso.com;a=\xff", sipNonASCII},
		{"sip:jo\u200bhn@contoso.com", sipFormat},
		{"sip:john\u200e@contoso.com", sipFormat},
		{"sip:\u202emoc.osotnoc@nhoj", sipFormat},
		{"sip:john@contoso.com\u2066", sipFormat},
		{"sip:john@contoso.com\ufeff;x", sipFormat},
		{"sip:john@contoso.com;x=\u00ad", sipFormat},

		// User.
		{"sip:contoso.com", sipNoUser},
		{"sip:john", sipNoUser},
		{"sip:@contoso.com", sipNoUser},
		{"sip:", sipNoUser},
		{"sip:a@evil.com@contoso.com", sipSecondAt},
		{"sip:john@contoso.com;a=b@c", sipSecondAt},
		{"sip:john:secret@contoso.com", sipPassword},
		{"sip:john:@contoso.com", sipPassword},
		{"sip:jo#hn@contoso.com", sipUserChar},
		{"sip:jo[hn@contoso.com", sipUserChar},
		{"sip:jo\\hn@contoso.com", sipUserChar},
		{"sip:john?x=y@contoso.com", sipUserQuery},
		{"sip:j%4@contoso.com", sipEscape},
		{"sip:j%@contoso.com", sipEscape},
		{"sip:j%zzhn@contoso.com", sipEscape},
		{"sip:jo%00hn@contoso.com", sipEscapeDecode},
		{"sip:jo%0D%0Ahn@contoso.com", sipEscapeDecode},
		{"sip:jo%20hn@contoso.com", sipEscapeDecode},
		{"sip:jo%E2%80%8Bhn@contoso.com", sipEscapeDecode},
		{"sip:john%E2%80%AE@contoso.com", sipEscapeDecode},
		{"sip:john%E2%81%A6@contoso.com", sipEscapeDecode},
		{"sip:john%C2%85@contoso.com", sipEscapeDecode},
		{"sip:john%FF@contoso.com", sipEscapeDecode},
		{"sip:john%C3@contoso.com", sipEscapeDecode},
		{"sip:alice;maddr=evil.example@atlanta.com", sipMaddr},
		{"sip:alice;MADDR=evil.example@atlanta.com", sipMaddr},
		{"sip:alice%3Bmaddr=evil.example@atlanta.com", sipMaddr},
		// A parser that ends the user at its first ';' reads these as
		// telephone numbers; the edge would judge them as names.
		{"sip:19005551234;user=phone@gw.contoso.com", sipUserInUser},
		{"sip:19005551234;USER=Phone@gw.contoso.com", sipUserInUser},
		{"sip:19005551234;us%65r=phone@gw.contoso.com", sipUserInUser},
		{"sip:19005551234%3Buser=phone@gw.contoso.com", sipUserInUser},
		{"sip:19005551234%3buser%3dphone@gw.contoso.com", sipUserInUser},
		{"sip:19005551234;user=ip@gw.contoso.com", sipUserInUser},
		{"sip:19005551234;user@gw.contoso.com", sipUserInUser},
		{"sip:+19005551234;ext=1;user=phone@gw.contoso.com", sipUserInUser},
		{"sip:19005551234;user=phone@gw.contoso.com;user=phone", sipUserInUser},
		{"sip:alice;user=dialstring@atlanta.com", sipUserInUser},

		// Host and port.
		{"sip:john@", sipHost},
		{"sip:john@:5060", sipHost},
		{"sip:john@-contoso-.com", sipHost},
		{"sip:john@contoso-.com", sipHost},
		{"sip:john@contoso..com", sipHost},
		{"sip:john@.contoso.com", sipHost},
		{"sip:john@contoso.com..", sipHost},
		{"sip:john@contoso_1.com", sipHost},
		{"sip:john@contoso.123", sipHost},
		{"sip:john@1.2.3", sipHost},
		{"sip:john@192.0.2.01", sipHost},
		{"sip:john@192.0.2.256", sipHost},
		{"sip:john@192.0.2.1.", sipHost},
		{"sip:john@2001:db8::1", sipHost},
		{"sip:john@[2001:db8::1", sipHost},
		{"sip:john@[192.0.2.1]", sipHost},
		{"sip:john@[fe80::1%25eth0]", sipHost},
		{"sip:john@[2001:db8::g]", sipHost},
		{"sip:john@[2001:db8::1]x", sipHost},
		{"sip:john@[]", sipHost},
		{"sip:john@contoso.com%2Eevil.example", sipHost},
		{"sip:" + strings.Repeat("a", 257) + "@contoso.com", sipUserLength},
		{"sip:" + strings.Repeat("%C2%B9", 43) + "@contoso.com", sipUserLength},
		{"sip:john@" + strings.Repeat("a", 64) + ".com", sipHost},
		{"sip:john@" + strings.Repeat("a.", 127) + "com", sipHost},
		{"sip:john@contoso.com:", sipPort},
		{"sip:john@contoso.com:0", sipPort},
		{"sip:john@contoso.com:05060", sipPort},
		{"sip:john@contoso.com:65536", sipPort},
		{"sip:john@contoso.com:+5060", sipPort},
		{"sip:john@contoso.com:50a", sipPort},
		{"sip:john@contoso.com:5060:5061", sipPort},
		{"sip:john@[2001:db8::1]:0", sipPort},

		// Parameters and headers.
		{"sip:john@contoso.com;", sipParam},
		{"sip:john@contoso.com;;lr", sipParam},
		{"sip:john@contoso.com;=x", sipParam},
		{"sip:john@contoso.com;x=", sipParam},
		{"sip:john@contoso.com;x=a=b", sipParam},
		{"sip:john@contoso.com;x=a,b", sipParam},
		{"sip:john@contoso.com;x={}", sipParam},
		{"sip:john@contoso.com;x=%", sipEscape},
		{"sip:john@contoso.com;x=%0a", sipEscapeDecode},
		{"sip:john@contoso.com;x%0a=1", sipEscapeDecode},
		{"sip:john@contoso.com;x=%E2%80%8B", sipEscapeDecode},
		{"sip:john@contoso.com;MADDR=gw.evil.example", sipMaddr},
		{"sip:john@contoso.com;m%61ddr=gw.evil.example", sipMaddr},
		{"sip:john@contoso.com;maddr", sipMaddr},
		// A telephone number's parameters belong to the user.
		{"sip:+14255551234@gw.contoso.com;user=phone;ext=011442071234567", sipTelParam},
		{"sip:+14255551234@gw.contoso.com;user=phone;EXT=1", sipTelParam},
		{"sip:+14255551234@gw.contoso.com;user=phone;%65xt=1", sipTelParam},
		{"sip:+14255551234@gw.contoso.com;postd=pp011442071234567", sipTelParam},
		{"sip:+14255551234@gw.contoso.com;user=phone;cic=+1-5062", sipTelParam},
		{"sip:+14255551234@gw.contoso.com;user=phone;rn=+19005551234;npdi", sipTelParam},
		{"sip:+14255551234@gw.contoso.com;user=phone;tgrp=intl;trunk-context=gw.contoso.com", sipTelParam},
		{"sip:+14255551234@gw.contoso.com;user=phone;dtg=intl", sipTelParam},
		{"sip:+14255551234@gw.contoso.com;user=phone;OTG=intl", sipTelParam},
		{"sip:john@contoso.com;%64tg=intl", sipTelParam},
		{"sip:john@contoso.com;phone-context=+1", sipTelParam},
		{"sip:john@contoso.com;isub=1234", sipTelParam},
		{"sip:john@contoso.com;user=ip;user=phone", sipParamTwice},
		{"sip:john@contoso.com;user=ip;USER=ip", sipParamTwice},
		// RFC 4967's dial strings are dialled, yet are no number to judge.
		{"sip:19005551234@gw.contoso.com;user=dialstring", sipUserKind},
		{"sip:*67;phone-context=contoso.com@gw.contoso.com;user=dialstring", sipUserKind},
		{"sip:19005551234@gw.contoso.com;USER=DialString", sipUserKind},
		{"sip:19005551234@gw.contoso.com;user=%64ialstring", sipUserKind},
		{"sip:19005551234@gw.contoso.com;%75ser=dialstring", sipUserKind},
		{"sip:19005551234@gw.contoso.com;user=phone2", sipUserKind},
		{"sip:19005551234@gw.contoso.com;user=phon%65x", sipUserKind},
		{"sip:19005551234@gw.contoso.com;user", sipUserKind},
		{"sip:19005551234@gw.contoso.com;lr;user=tel", sipUserKind},
		{"sip:john@contoso.com;lr;LR", sipParamTwice},
		{"sip:john@contoso.com;transport=tcp;tr%61nsport=udp", sipParamTwice},
		{"sip:john@contoso.com?subject=hi", sipHeaders},
		{"sip:john@contoso.com?", sipHeaders},
		{"sip:john@contoso.com;lr?x=y", sipHeaders},
		{"sip:john@contoso.com?Route=%3Csip:evil.example%3E", sipHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, reason := ParseSIPURI(tt.in)
			if reason != tt.reason {
				t.Fatalf("reason %q, want %q (parts %+v)", reason, tt.reason, u)
			}
			if !reflect.DeepEqual(u, SIPURI{}) {
				t.Errorf("refused, yet parts %+v", u)
			}
			for _, word := range []string{"john", "contoso", "evil", "1900", "alice"} {
				if strings.Contains(reason, word) {
					t.Errorf("reason %q quotes the input", reason)
				}
			}
		})
	}
}

// TestParseSIPURIManyParams shows that a long run of parameters is
// accepted and that a duplicate far from its twin is found.
func TestParseSIPURIManyParams(t *testing.T) {
	var b strings.Builder
	b.WriteString("sip:john@contoso.com")
	for i := range 5000 {
		b.WriteString(";p")
		b.WriteString(strconv.Itoa(i))
	}
	u, reason := ParseSIPURI(b.String())
	if reason != "" || len(u.Params) != 5000 {
		t.Fatalf("%d params, %q", len(u.Params), reason)
	}
	if _, reason := ParseSIPURI(b.String() + ";P0=x"); reason != sipParamTwice {
		t.Errorf("a late duplicate: %q", reason)
	}
}

func TestSIPURIParam(t *testing.T) {
	u, reason := ParseSIPURI("sip:john@contoso.com;Transport=TLS;lr;us%65r=phone")
	if reason != "" {
		t.Fatal(reason)
	}
	for _, tt := range []struct {
		name, value string
		ok          bool
	}{{"transport", "TLS", true}, {"TRANSPORT", "TLS", true}, {"lr", "", true}, {"user", "phone", true}, {"maddr", "", false}, {"t", "", false}} {
		if v, ok := u.Param(tt.name); v != tt.value || ok != tt.ok {
			t.Errorf("Param(%q) = %q, %v", tt.name, v, ok)
		}
	}
	if !u.IsPhone() {
		t.Errorf("us%%65r=phone is not user=phone")
	}
	if got := u.DecodedUser(); got != "john" {
		t.Errorf("DecodedUser() = %q", got)
	}
	u, _ = ParseSIPURI("sip:j%40hn%2B@contoso.com")
	if got := u.DecodedUser(); got != "j@hn+" {
		t.Errorf("DecodedUser() = %q", got)
	}
}

// sipSeeds start FuzzParseSIPURI and FuzzDestination: real URIs, the
// issue's attacks, and the edges of every rule.
var sipSeeds = []string{
	"sip:john@contoso.com",
	"sips:john.doe@contoso.com:5061;transport=tls",
	"sip:+14255551234@gw.contoso.com;user=phone",
	"sip:+1-900-555-1234@gw.contoso.com;user=phone",
	"sip:user@[2001:db8::1]:5060",
	"sip:user@192.0.2.1",
	"sip:j%40hn@contoso.com",
	"sip:alice;day=tuesday@atlanta.com",
	"sip : john@contoso.com",
	"SIP:John@CONTOSO.com.",
	"sip:%2B1-425-555-1234;ext=7@gw.contoso.com;lr;ttl=15",
	"sip:911@gw.contoso.com;user=phone",
	"sip:john@contoso.com;x\r\nRecord-Route: <sip:evil.example>",
	"sip:john@contoso.com?\r\nContact: <sip:+19005551234@gw>",
	"sip:john@contoso.com;user=phone\u0000+19005551234",
	"sip:a@b.com;<script>",
	"sip:john@contoso.com;maddr=gw.evil.example",
	"sip:a@evil.com@contoso.com",
	"sip:alice;maddr=evil.example@atlanta.com",
	"sip:jo\u200bhn@contoso.com",
	"sip:john%E2%80%AE@contoso.com",
	"sip:john@contoso.com;user=ip;user=phone",
	"sip:john@[fe80::1%25eth0]",
	"sip:john@contoso.com:05060",
	"sip:john:pw@contoso.com?subject=x&priority=urgent",
	"sip:19005551234;user=phone@gw.contoso.com",
	"sip:19005551234%3Buser=phone@gw.contoso.com",
	"sip:19005551234@gw.contoso.com;user=dialstring",
	"sip:john@contoso.com;user=ip",
}

// TestSIPUserParameterCleaned shows the two user-parameter rules through
// Clean: the URI is refused as a destination, naming the property and
// the rule, never the number.
func TestSIPUserParameterCleaned(t *testing.T) {
	c := mustCleaner(t, "US", TelURI)
	for _, tt := range []struct{ to, reason string }{
		{"sip:19005551234;user=phone@gw.contoso.com", sipUserInUser},
		{"sip:19005551234%3Buser=phone@gw.contoso.com", sipUserInUser},
		{"sip:19005551234@gw.contoso.com;user=dialstring", sipUserKind},
	} {
		for _, f := range []Format{JSON, XML} {
			body := jsonBody(To, tt.to)
			if f == XML {
				body = `<input><property name="to">` + tt.to + `</property></input>`
			}
			r, err := decodeOp(spa, f, []byte(body))
			if err != nil {
				t.Fatalf("%s: %v", tt.to, err)
			}
			_, err = c.Clean(spa, r, nil)
			if err == nil {
				t.Errorf("%s (%v): accepted", tt.to, f)
				continue
			}
			if err.Status != 400 || len(err.Parameters) != 1 || err.Parameters[0].Name != To || !strings.Contains(err.Parameters[0].Reason, tt.reason) {
				t.Errorf("%s (%v): %v %+v, want 400 naming to: %s", tt.to, f, err, err.Parameters, tt.reason)
			}
			if strings.Contains(err.Message, "1900") {
				t.Errorf("%s (%v): message %q holds the number", tt.to, f, err.Message)
			}
		}
	}
	// user=ip, RFC 3261's other value, stays a name.
	r, err := decodeOp(spa, JSON, []byte(jsonBody(To, "sip:john@contoso.com;user=ip")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Clean(spa, r, nil); err != nil {
		t.Errorf("user=ip: %v", err)
	}
}

func FuzzParseSIPURI(f *testing.F) {
	for _, s := range sipSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, reason := ParseSIPURI(s)
		if reason != "" {
			if !reflect.DeepEqual(u, SIPURI{}) {
				t.Fatalf("refused (%s), yet %+v", reason, u)
			}
			if !strings.HasPrefix(reason, "must be a SIP URI") {
				t.Fatalf("reason %q", reason)
			}
			return
		}
		out := u.String()
		for i := 0; i < len(out); i++ {
			if c := out[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '?' {
				t.Fatalf("accepted URI %q holds %q", out, c)
			}
		}
		if u.Scheme != "sip" && u.Scheme != "sips" || u.User == "" || u.Host == "" || u.Host != strings.ToLower(u.Host) {
			t.Fatalf("parts %+v", u)
		}
		if strings.Count(out, "@") != 1 {
			t.Fatalf("accepted URI %q has other than one @", out)
		}
		if _, ok := u.Param("maddr"); ok {
			t.Fatalf("accepted URI %q has a maddr parameter", out)
		}
		if v, ok := u.Param("user"); ok && !strings.EqualFold(sipUnescapeValid(v), "phone") && !strings.EqualFold(sipUnescapeValid(v), "ip") {
			t.Fatalf("accepted URI %q has a user parameter other than phone or ip", out)
		}
		// Read as a parser that ends the user at its first ';' reads it,
		// the user holds neither parameter the edge refuses.
		if _, userParams, _ := strings.Cut(u.DecodedUser(), ";"); userParams != "" {
			for seg := range strings.SplitSeq(userParams, ";") {
				name, _, _ := strings.Cut(seg, "=")
				if strings.EqualFold(name, "user") || strings.EqualFold(name, "maddr") {
					t.Fatalf("accepted URI %q has %s in its user", out, name)
				}
			}
		}
		for _, r := range u.DecodedUser() {
			if unicode.IsControl(r) || unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("accepted URI %q has a user holding %U", out, r)
			}
		}
		again, reason := ParseSIPURI(out)
		if reason != "" || !reflect.DeepEqual(again, u) {
			t.Fatalf("String() = %q parses as %+v, %q; want %+v", out, again, reason, u)
		}
		if again.String() != out {
			t.Fatalf("String() is not a fixed point: %q, %q", out, again.String())
		}
	})
}
