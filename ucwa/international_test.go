package ucwa

import (
	"math/rand"
	"strings"
	"testing"
)

func TestInternational(t *testing.T) {
	for _, c := range []struct {
		region string // as numbersFor reads it
		value  string
		want   bool
	}{
		{"", "+14255551234", false},
		{"", "(425) 555-1234", false},
		{"", "sip:+14255551234@gw.contoso.com;user=phone", false},
		{"", "+442071234567", true},
		{"", "sip:+442071234567@gw.contoso.com;user=phone", true},
		{"", "+14165551234", true},  // Canada shares +1
		{"", "+19765551234", true},  // no known region
		{"", "+881631234567", true}, // non-geographic
		// North American numbers outside the US are other regions.
		{"", "+18765551234", true},   // Jamaica
		{"", "(809) 555-1234", true}, // the Dominican Republic, written nationally
		{"", "+13405551234", true},   // the US Virgin Islands
		{"", "+16715551234", true},   // Guam
		{"", "+16845551234", true},   // American Samoa
		{"", "+18005551234", false},  // toll-free, which phonenumbers puts in the US
		{"", "+1 911 555 1234", true},
		{"CA", "+18005551234", true}, // phonenumbers puts toll-free in the US
		{"CA", "+14165551234", false},
		{"GB", "+441534123456", true}, // Jersey shares +44
		{"GB", "07781 123456", true},  // a Guernsey mobile, written nationally
		{"", "911", false},
		{"", "sip:john@contoso.co.uk", false},
		// A SIP name of digits is judged by the numbers a gateway could
		// dial from it.
		{"", "sip:442071234567@contoso.co.uk", true}, // +44 20..., read with a '+'
		{"", "sip:14255551234@gw.contoso.com", false},
		{"", "sip:1-425-555-1234@gw.contoso.com", false},
		{"", "sip:4255551234@gw.contoso.com", false},
		{"", "sip:011442071234567@gw.contoso.com", true}, // 011, the US's international prefix
		{"", "sip:9,14255551234@gw.contoso.com", true},   // no rule can judge it
		{"", "sip:john1234@contoso.com", false},          // a name
		// Digits of no reading: a short code, when the limits count it
		// (beyond max_extension_digits); an emergency one never is.
		{"", "sip:118118@contoso.com", true},
		{"", "sip:911@contoso.com", false},
		{"GB", "sip:442071234567@gw.contoso.co.uk", false},
		{"GB", "sip:02071234567@gw.contoso.co.uk", false},
		{"GB", "+442071234567", false},
		{"GB", "+14255551234", true},
		{"GB", "112", false},
		{"-", "+14255551234", true},
		{"-", "+442071234567", true},
		{"-", "sip:john@contoso.com", false},
	} {
		n := numbersFor(t, c.region, nil)
		d, p := n.Destination(c.value)
		if !p.OK() {
			t.Fatalf("%s: %s", c.value, p.Reason)
		}
		if got := n.International(&d); got != c.want {
			t.Errorf("default region %q: %s is international: %v, want %v", n.DefaultRegion(), c.value, got, c.want)
		}
		if allocs := testing.AllocsPerRun(10, func() { n.International(&d) }); allocs != 0 {
			t.Errorf("International allocates %v times", allocs)
		}
	}
	// An emergency number as written is no international call, though a
	// gateway that maps letters to keys reads its pauses (w, p) as the
	// short code 9999911 (a number, as 999wwww911 reads, makes it no
	// emergency number): the policy allows it as an emergency number
	// first, and the limits count no emergency number as international.
	n999 := mustNumbers(t, "US", TelURI, nil, "999")
	for _, v := range []string{"sip:999w911@gw.contoso.com", "sip:999p911@gw.contoso.com", "sip:999,,911@gw.contoso.com", "sip:999,911@gw.contoso.com"} {
		d, p := n999.Destination(v)
		if !p.OK() || d.Dial == nil || !d.Dial.Emergency {
			t.Fatalf("%s: %+v %+v, want an emergency number", v, d.Dial, p)
		}
		if n999.International(&d) {
			t.Errorf("outside_line 999: %s, an emergency number, is international", v)
		}
	}
	n := numbersFor(t, "", []string{"+14255550100"})
	d, _ := n.Destination("+14255550100")
	if n.International(&d) {
		t.Error("a configured emergency number is international")
	}
	// Nor is the reading of a SIP name's digits that is one, with or
	// without a default region (without one, every other number is).
	for _, region := range []string{"", "-"} {
		n := numbersFor(t, region, []string{"+14255550100"})
		d, p := n.Destination("sip:14255550100@gw.contoso.com")
		if !p.OK() || d.Dial == nil || len(d.Dial.Readings) == 0 || !d.Dial.Readings[0].Emergency {
			t.Fatalf("default region %q: %+v %+v, want a reading that is an emergency number", n.DefaultRegion(), d.Dial, p)
		}
		if n.International(&d) {
			t.Errorf("default region %q: a reading that is a configured emergency number is international", n.DefaultRegion())
		}
	}
}

// TestInternationalCoversReportRefusals: whatever a report-mode policy
// of allow_regions <home> would refuse because it leads out of the home
// region or past what its readings say (allow_regions, short_code,
// dial_string, max_extension_digits), the limits count as dialled and
// international (Numbers.International, Policy.DialsThrough,
// Policy.DialsShortCode): report mode delivers it, and the limits are all
// that stands in its way. Short codes after an outside-line prefix
// (sip:011880@gw, +49 11880 as written) and extensions dialled through
// (+14255551234;ext=011442071234567) counted as home calls. The inputs
// are the policy fuzz seeds and pseudo-random dial strings, numbers and
// vanity numbers, the same on every run: 20,000 of them, the first
// 2,000 under the race detector, which finds nothing in these pure
// functions of one goroutine and makes each twenty times as slow (.ci/run
// runs them all without it).
func TestInternationalCoversReportRefusals(t *testing.T) {
	inputs := append([]string(nil), fuzzPolicySeeds...)
	r := rand.New(rand.NewSource(1))
	alphabet := []string{"0", "1", "9", "8", "4", "2", "3", "5", "6", "7", ",", "p", "w", "*", "#", "A", "x", "-", ";", "F", "L", "O"}
	count := 20000
	if raceDetector {
		count = 2000
	}
	for range count {
		var s strings.Builder
		for range 3 + r.Intn(14) {
			s.WriteString(alphabet[r.Intn(len(alphabet))])
		}
		inputs = append(inputs, [...]string{"sip:" + s.String() + "@gw.contoso.com", "sip:" + s.String() + "@gw.contoso.com;user=phone",
			"tel:" + s.String(), s.String()}[r.Intn(4)])
	}
	for _, c := range []struct {
		region      string
		outsideLine []string
		emergency   []string
	}{
		{"US", []string{"9"}, nil}, {"US", []string{"9", "81"}, []string{"911", "+14255550100"}},
		{"DE", []string{"0"}, nil}, {"AT", []string{"0"}, nil}, {"FR", []string{"0"}, nil}, {"GB", []string{"9"}, nil},
	} {
		n, err := NewNumbers(c.region, TelURI, c.emergency, c.outsideLine...)
		if err != nil {
			t.Fatal(err)
		}
		for _, most := range []int{0, 4} {
			p, err := NewPolicy(DestinationPolicy{Mode: PolicyReport, AllowRegions: []string{c.region}, DenyTypes: []string{"none"},
				OutsideLine: c.outsideLine, SIPDomains: []string{"*.contoso.com"}, MaxExtensionDigits: ptr(most)})
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range inputs {
				d, problem := n.Destination(v)
				if !problem.OK() {
					continue
				}
				pd := PropertyDestination{Property: "to", Kind: DialledNow, Destination: d}
				dec := p.Judge(nil, &pd)
				switch dec.Rule {
				case RuleAllowRegions, RuleShortCode, RuleDialString, RuleMaxExtensionDigits:
				default:
					continue
				}
				if !p.IsDialled(&d) || p.IsEmergencyCall(&pd) ||
					!n.International(&d) && !p.DialsThrough(&d) && !p.DialsShortCode(&d) {
					t.Errorf("%s, outside_line %v, max_extension_digits %d: %q, which report mode would refuse (%s), is no international call to the limits",
						c.region, c.outsideLine, most, v, dec.Rule)
				}
			}
		}
	}
}
