package ucwa

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/nyaruka/phonenumbers/v2"
)

func TestMasked(t *testing.T) {
	us := numbersFor(t, "", nil)
	e164 := func() *Numbers {
		n, err := NewNumbers("US", E164, []string{"911", "+14255550100", "12345"})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}()
	for _, c := range []struct {
		n     *Numbers
		value string
		want  string
	}{
		{us, "+14255551234", "+1425555****"},
		{us, "tel:+1-425-555-1234", "+1425555****"},
		{e164, "(425) 555-1234", "+1425555****"},
		{us, "+442071234567", "+44207123****"},
		{us, "+4930123456", "+493012****"},
		{us, "+881631234567", "+88163123****"},
		{us, "+6831234", "+683****"},
		{us, "+11111111111", "+1111*******"},
		{us, "+12222222222", "+12222******"},
		{us, "+12225552222", "+1222555****"},
		{us, "+14255551234;ext=12", "+1425555****;ext=****"},
		{us, "911", "911"},
		{us, "tel:112", "112"},
		{e164, "12345", "12345"},
		{e164, "+14255550100", "+1425555****"},
		{us, "sip:john@contoso.com", "sip:****@contoso.com"},
		{us, "sip:****@contoso.com", "sip:****@contoso.com"},
		{us, "sips:john.smith@eu.contoso.com:5061;transport=tls", "sips:****@eu.contoso.com"},
		{us, "sip:+14255551234@gw.contoso.com;user=phone", "sip:+1425555****@gw.contoso.com"},
		{us, "sip:+1-425-555-1234;ext=7@GW.contoso.com;user=phone", "sip:+1425555****;ext=****@gw.contoso.com"},
		{us, "sip:911@gw.contoso.com;user=phone", "sip:911@gw.contoso.com"},
		{us, "sip:19005551234@gw.contoso.com", "sip:+1900555****@gw.contoso.com"},
		{us, "sip:1-900-555-1234;day=tuesday@gw.contoso.com", "sip:+1900555****@gw.contoso.com"},
		{us, "sip:9,19005551234@gw.contoso.com", "sip:****@gw.contoso.com"},
		{us, "sip:1234@contoso.com", "sip:****@contoso.com"},
		{us, "sip:john@19005551234.example", "sip:****@***********.example"},
		// A host of more than four digits in all shows none, however they
		// are split: a label each (ENUM, backwards), hyphens, letters.
		{us, "sip:+14255551234@4.3.2.1.5.5.5.5.2.4.1.e164.arpa;user=phone", "sip:+1425555****@*.*.*.*.*.*.*.*.*.*.*.e***.arpa"},
		{us, "sip:john@1-425-555-1234.example.com", "sip:****@*-***-***-****.example.com"},
		{us, "sip:john@gw1234.a12345b.example", "sip:****@gw****.a*****b.example"},
		{us, "sip:john@a1.b2.c3.d4.e5.example", "sip:****@a*.b*.c*.d*.e*.example"},
		{us, "sip:john@192.0.2.10", "sip:****@***.*.*.**"},
		{us, "sip:john@[2001:db8::1234]", "sip:****@[****:db*::****]"},
		// Four digits in all are shown.
		{us, "sip:john@gw12.b-3.4.example", "sip:****@gw12.b-3.4.example"},
		{us, "sip:john@1.2.3.4", "sip:****@1.2.3.4"},
		{us, "sip:john@[::1]", "sip:****@[::1]"},
		{us, "sip:+14255551234@gw.contoso.com:51234;user=phone", "sip:+1425555****@gw.contoso.com"},
	} {
		d, p := c.n.Destination(c.value)
		if !p.OK() {
			t.Fatalf("%s: %s", c.value, p.Reason)
		}
		if got := d.Masked(); got != c.want {
			t.Errorf("%s is masked as %s, want %s", c.value, got, c.want)
		}
		checkMasked(t, d)
		if d.IsNumber() && !d.SIP {
			if got := d.Number.Masked(); got != c.want {
				t.Errorf("%s: its number is masked as %s, want %s", c.value, got, c.want)
			}
		}
	}
	// Values no Numbers makes.
	for _, c := range []struct {
		d    Destination
		want string
	}{
		{Destination{}, ""},
		{Destination{Value: "x"}, "****"},
		{Destination{Value: "x", Number: Number{E164: "14255551234"}}, "****"},
		{Destination{Value: "x", Number: Number{E164: "+1425x551234"}}, "****"},
		{Destination{Value: "x", Number: Number{E164: "1234567", Emergency: true}}, "****"},
		{Destination{Value: "x", Number: Number{E164: "+1"}}, "+*"},
		{Destination{Value: "x", Number: Number{E164: "+999123456"}}, "+99912****"},
	} {
		if got := c.d.Masked(); got != c.want {
			t.Errorf("%#v is masked as %s, want %s", c.d, got, c.want)
		}
	}
}

// checkMasked fails when the masked form of d shows its number: every
// digit of it, or five or more of its last digits in a row. An emergency
// short code is shown whole. A SIP URI shows no run of five digits at
// all.
func checkMasked(t *testing.T, d Destination) {
	t.Helper()
	if leak := maskedLeak(d, d.Masked()); leak != "" {
		t.Fatal(leak)
	}
}

// maskedLeak returns what m, given as the masked form of d, shows of d
// that it must not; "" when nothing.
func maskedLeak(d Destination, m string) string {
	// A SIP user of four '*' (RFC 3261 allows the mark) is masked as
	// itself, and shown by no mistake: whatever the user, it reads
	// "****", which the user check below holds to.
	secretUser := d.SIP && !d.IsNumber() && sipUser(d.Value) == maskedSecret
	if strings.Contains(m, d.Value) && d.Value != "" && !(d.Number.Emergency && !strings.HasPrefix(d.Number.E164, "+")) && !secretUser {
		return fmt.Sprintf("%q is masked as itself", d.Value)
	}
	if d.Number.Emergency && !strings.HasPrefix(d.Number.E164, "+") {
		return ""
	}
	digits := strings.TrimPrefix(d.Number.E164, "+")
	if digits != "" && strings.Contains(m, digits) {
		return fmt.Sprintf("%q is masked as %q, which holds its digits", d.Value, m)
	}
	for k := maskedRun; k <= len(digits); k++ {
		if strings.Contains(m, digits[len(digits)-k:]) {
			return fmt.Sprintf("%q is masked as %q, which holds its last %d digits", d.Value, m, k)
		}
	}
	if ext := d.Number.Extension; len(ext) >= maskedRun && strings.Contains(withoutShownPrefix(m), ext) {
		return fmt.Sprintf("%q is masked as %q, which holds its extension", d.Value, m)
	}
	if d.SIP {
		if user := sipUser(m); !d.IsNumber() && user != maskedSecret {
			// A dial string shows its first reading, masked as a number
			// is: no reading, nor the digits of the user it was read
			// from (those before a ';': its parameters are never
			// shown, whatever digits they hold), shows its end.
			// A vanity number (Keypad) shows a reading of its letters as
			// keypad digits the same way.
			var readings []Number
			for _, dial := range []*DialString{d.Dial, d.Keypad} {
				if dial != nil {
					readings = append(readings, dial.Readings...)
				}
			}
			if len(readings) == 0 || !strings.HasPrefix(user, "+") {
				return fmt.Sprintf("%q is masked as %q, which shows its user", d.Value, m)
			}
			keepDigits := func(r rune) rune {
				if r >= '0' && r <= '9' {
					return r
				}
				return -1
			}
			// The digits a reading was read from: a vanity number's
			// keypad reading (the only one it has: as written its
			// letters make it a name or unjudgeable) is read from its
			// user with the letters as digits, whose first digits are
			// those written, and which a masked reading shows by right.
			source := sipUser(d.Value)
			if keypad, ok := referenceKeypad(&d); ok {
				source = keypad
			}
			secrets := []string{strings.Map(keepDigits, strings.SplitN(source, ";", 2)[0])}
			for _, r := range readings {
				secrets = append(secrets, strings.TrimPrefix(r.E164, "+"))
			}
			// The reading shown, whose first digits the mask shows by
			// right: another reading (a name's digits alone, Dial, beside
			// its keypad reading) may end in digits those happen to hold.
			shown := ""
			for _, r := range readings {
				if masked := strings.TrimRight(user, "*"); len(masked) < len(r.E164) && strings.HasPrefix(r.E164, masked) {
					shown = strings.TrimPrefix(r.E164, "+")
				}
			}
			// The shown reading leaks its end when the mask shows its last
			// digits where they stand: its prefix, shown by right, may
			// hold the same digits (+4990000**** of 499000090000). With
			// no reading shown, those digits anywhere are a leak.
			visible := len(strings.TrimPrefix(strings.TrimRight(user, "*"), "+"))
			for _, digits := range secrets {
				if len(digits) < maskedRun {
					continue
				}
				if shown == "" && strings.Contains(user, digits[len(digits)-maskedRun:]) || digits == shown && visible >= len(digits) {
					return fmt.Sprintf("%q is masked as %q, which shows the end of its digits", d.Value, m)
				}
			}
		}
		// Digits in all, not in a row: a host spells a number across
		// dots and hyphens (4.3.2.1.5.5.5.5.2.4.1.e164.arpa).
		host := m[strings.LastIndexByte(m, '@')+1:]
		digits := 0
		for _, c := range host {
			if unicode.IsDigit(c) {
				digits++
			}
		}
		if digits > maskedHostDigits {
			return fmt.Sprintf("%q is masked as %q, whose host shows %d digits", d.Value, m, digits)
		}
	}
	return ""
}

// TestLeakOracles holds the fuzz targets' leak checks to what they must
// tell: a masked form or refusal that shows by right what happens to
// spell the secret passes, one that shows the secret fails.
func TestLeakOracles(t *testing.T) {
	n := numbersFor(t, "", nil)
	dest := func(v string) Destination {
		d, p := n.Destination(v)
		if !p.OK() {
			t.Fatalf("%s: %s", v, p.Reason)
		}
		return d
	}
	for _, c := range []struct {
		value, masked string // masked "" is Masked's own
		leaks         bool
	}{
		// The user "****" is masked as itself.
		{"sip:****@contoso.com", "", false},
		{"sip:****@contoso.com", "sip:****@contoso.com", false},
		{"sip:john@contoso.com", "sip:john@contoso.com", true},
		{"sip:****@contoso.com", "sip:*@contoso.com", true},
		// The country code and area spell the extension.
		{"sip:+4555551234;ext=55555@g", "", false},
		{"sip:+4555551234;ext=55555@g", "sip:+455555****;ext=55555@g", true},
		{"+14255551234", "+1425551234", true},
		{"+14255551234", "+142555****", false},
		{"+14255551234", "+1425**51234", true},
		{"sip:a@gw12345.example", "sip:****@gw12345.example", true},
		{"sip:a@1-425-555-1234.example", "", false},
		{"sip:a@1-425-555-1234.example", "sip:****@1-425-555-1234.example", true},
		{"sip:a@4.3.2.1.5.5.5.5.2.4.1.e164.arpa", "", false},
		{"sip:a@4.3.2.1.5.5.5.5.2.4.1.e164.arpa", "sip:****@4.3.2.1.5.5.5.5.2.4.1.e164.arpa", true},
		{"sip:a@4.3.2.1.5.5.5.5.2.4.1.e164.arpa", "sip:****@4.*.2.*.5.*.5.*.2.*.1.e164.arpa", true},
		{"sip:a@gw12.b34.example", "", false},
	} {
		d := dest(c.value)
		m := c.masked
		if m == "" {
			m = d.Masked()
		}
		if leak := maskedLeak(d, m); (leak != "") != c.leaks {
			t.Errorf("%s masked as %s: leak %q, want a leak %v", c.value, m, leak, c.leaks)
		}
	}
	p, err := NewPolicy(DestinationPolicy{Deny: []string{"+1"}, SIPDomains: []string{"contoso.com"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		value   string
		message string // "" is RefusalError's own
		leaks   bool
	}{
		{"+14255551234", "", false},
		{"+14255551234", "to is refused: 14255551234 is denied.", true},
		{"sip:a@t.example", "", false},
		{"sip:a@t.example", "to is refused: t.example is not allowed.", true},
		{"sip:a@T.example", "to is refused: t.EXAMPLE is not allowed.", true},
		{"sip:****@x.example", "", false},
	} {
		pd := &PropertyDestination{Property: "to", Kind: DialledNow, Destination: dest(c.value)}
		dec := p.Judge(spa, pd)
		e := RefusalError(pd, dec)
		if e == nil {
			t.Fatalf("%s: %s by %s", c.value, dec.Verdict, dec.Rule)
		}
		if c.message != "" {
			e.Message = c.message
		}
		if leak := refusalLeak(pd, e); (leak != "") != c.leaks {
			t.Errorf("%s refused with %q: leak %q, want a leak %v", c.value, e.Message, leak, c.leaks)
		}
	}
}

// sipUser returns the user of a SIP URI as written: what lies between
// the scheme and the '@'.
func sipUser(uri string) string {
	user, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(uri, "sip:"), "sips:"), "@")
	return user
}

// withoutShownPrefix returns m without the digits it shows of the
// number (its '+', country code and area): they may spell the extension
// by chance (+4555551234;ext=55555) without telling anything of it.
func withoutShownPrefix(m string) string {
	i := strings.IndexByte(m, '+')
	if i < 0 {
		return m
	}
	j := i + 1
	for j < len(m) && m[j] >= '0' && m[j] <= '9' {
		j++
	}
	return m[:i] + m[j:]
}

func BenchmarkMasked(b *testing.B) {
	n := numbersFor(b, "", nil)
	for _, v := range []string{"+14255551234", "sip:john@eu.contoso.com", "sip:+14255551234@gw.contoso.com;user=phone", "sip:+14255551234@4.3.2.1.5.5.5.5.2.4.1.e164.arpa;user=phone"} {
		d, p := n.Destination(v)
		if !p.OK() {
			b.Fatal(p.Reason)
		}
		b.Run(d.Masked(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = d.Masked()
			}
		})
	}
}

// TestDecisionMasked: a dial string is masked, in the audit trail, as the
// reading its decision judged: the refused one, else the first; any
// other destination as Masked has it.
func TestDecisionMasked(t *testing.T) {
	n := mustNumbers(t, "US", TelURI, nil, "9")
	p, err := NewPolicy(DestinationPolicy{Deny: []string{"+1900"}, AllowRegions: []string{"US", "NL", "IN"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ value, masked, judged string }{
		{"sip:919005551234@gw.contoso.com", "sip:+91900555****@gw.contoso.com", "sip:+1900555****@gw.contoso.com"},
		{"sip:3129005551@gw.contoso.com", "sip:+1312900****@gw.contoso.com", "sip:+1312900****@gw.contoso.com"},
		{"sip:6125551234@gw.contoso.com", "sip:+1612555****@gw.contoso.com", "sip:+612555****@gw.contoso.com"},
		{"sip:9-1-425-555-1234@gw.contoso.com", "sip:+91425555****@gw.contoso.com", "sip:+91425555****@gw.contoso.com"},
		{"sip:99005551234@gw.contoso.com", "sip:****@gw.contoso.com", "sip:****@gw.contoso.com"},
		{"sip:+19005551234@gw.contoso.com;user=phone", "sip:+1900555****@gw.contoso.com", "sip:+1900555****@gw.contoso.com"},
		{"sip:john@contoso.com", "sip:****@contoso.com", "sip:****@contoso.com"},
		{"tel:+14255551234", "+1425555****", "+1425555****"},
	} {
		d, problem := n.Destination(c.value)
		if !problem.OK() {
			t.Fatalf("%s: %s", c.value, problem.Reason)
		}
		dec := p.Judge(spa, &PropertyDestination{Property: "to", Kind: DialledNow, Destination: d})
		if got := d.Masked(); got != c.masked {
			t.Errorf("%s: Masked %q, want %q", c.value, got, c.masked)
		}
		if got := dec.Masked(&d); got != c.judged {
			t.Errorf("%s: %s by %s, masked %q, want %q", c.value, dec.Verdict, dec.Rule, got, c.judged)
		}
	}
}

// TestMaskedReadings masks a SIP user of digits and letters, which reads
// as written and on the keypad: the digits shown of the one never hold
// the other whole.
func TestMaskedReadings(t *testing.T) {
	n := mustNumbers(t, "DE", TelURI, []string{"112"}, "0")
	p, err := NewPolicy(DestinationPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	d, problem := n.Destination("sip:900555soco@gw.contoso.com")
	if !problem.OK() {
		t.Fatal(problem.Reason)
	}
	var readings []string
	for _, dial := range []*DialString{d.Dial, d.Keypad} {
		if dial != nil {
			for _, r := range dial.Readings {
				readings = append(readings, r.E164)
			}
		}
	}
	if !slices.Contains(readings, "+49900555") || !slices.Contains(readings, "+499005557626") {
		t.Fatalf("read as %q, want +49900555 and +499005557626 among them", readings)
	}
	dec := p.Judge(spa, &PropertyDestination{Property: "to", Kind: DialledNow, Destination: d})
	if got, want := dec.Masked(&d), "sip:+4990055*****@gw.contoso.com"; got != want {
		t.Fatalf("masked %q, want %q", got, want)
	}
}

// TestCountryCodeLength: the country code a masked number shows whole is
// the one phonenumbers knows regions of, for every three leading digits
// a number may have.
func TestCountryCodeLength(t *testing.T) {
	for n := range 1000 {
		digits := fmt.Sprintf("%03d", n)
		want, cc := 0, 0
		for i := range 3 {
			cc = cc*10 + int(digits[i]-'0')
			if len(phonenumbers.GetRegionCodesForCountryCode(cc)) > 0 {
				want = i + 1
				break
			}
		}
		if got := countryCodeLength(digits + "5551234"); got != want {
			t.Errorf("countryCodeLength(%s...) = %d, want %d", digits, got, want)
		}
	}
}
