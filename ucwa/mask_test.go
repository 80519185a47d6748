package ucwa

import (
	"strings"
	"testing"
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
		{us, "sips:john.smith@eu.contoso.com:5061;transport=tls", "sips:****@eu.contoso.com"},
		{us, "sip:+14255551234@gw.contoso.com;user=phone", "sip:+1425555****@gw.contoso.com"},
		{us, "sip:+1-425-555-1234;ext=7@GW.contoso.com;user=phone", "sip:+1425555****;ext=****@gw.contoso.com"},
		{us, "sip:911@gw.contoso.com;user=phone", "sip:911@gw.contoso.com"},
		{us, "sip:19005551234@gw.contoso.com", "sip:****@gw.contoso.com"},
		{us, "sip:john@19005551234.example", "sip:****@***********.example"},
		{us, "sip:john@gw1234.a12345b.example", "sip:****@gw1234.a*****b.example"},
		{us, "sip:john@192.0.2.10", "sip:****@192.0.2.10"},
		{us, "sip:john@[2001:db8::1234]", "sip:****@[2001:db8::1234]"},
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
	m := d.Masked()
	if strings.Contains(m, d.Value) && d.Value != "" && !(d.Number.Emergency && !strings.HasPrefix(d.Number.E164, "+")) {
		t.Fatalf("%q is masked as itself", d.Value)
	}
	if d.Number.Emergency && !strings.HasPrefix(d.Number.E164, "+") {
		return
	}
	digits := strings.TrimPrefix(d.Number.E164, "+")
	if digits != "" && strings.Contains(m, digits) {
		t.Fatalf("%q is masked as %q, which holds its digits", d.Value, m)
	}
	for k := maskedRun; k <= len(digits); k++ {
		if strings.Contains(m, digits[len(digits)-k:]) {
			t.Fatalf("%q is masked as %q, which holds its last %d digits", d.Value, m, k)
		}
	}
	if ext := d.Number.Extension; len(ext) >= maskedRun && strings.Contains(withoutShownPrefix(m), ext) {
		t.Fatalf("%q is masked as %q, which holds its extension", d.Value, m)
	}
	if d.SIP {
		if user, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(m, "sip:"), "sips:"), "@"); !d.IsNumber() && user != maskedSecret {
			t.Fatalf("%q is masked as %q, which shows its user", d.Value, m)
		}
		host := m[strings.IndexByte(m, '@')+1:]
		run := 0
		for i := 0; i < len(host); i++ {
			if host[i] >= '0' && host[i] <= '9' {
				run++
			} else {
				run = 0
			}
			if run >= maskedRun {
				t.Fatalf("%q is masked as %q, whose host shows %d digits in a row", d.Value, m, run)
			}
		}
	}
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
	for _, v := range []string{"+14255551234", "sip:john@eu.contoso.com", "sip:+14255551234@gw.contoso.com;user=phone"} {
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
