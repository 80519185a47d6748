package ucwa

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/nyaruka/phonenumbers/v2"
	"github.com/nyaruka/phonenumbers/v2/metadata"
	"golang.org/x/text/unicode/norm"
)

// fuzzPolicies are the policies FuzzPolicy judges with, each beside the
// configuration a plain reading of the rules (referenceRule) judges by.
var fuzzPolicies = []DestinationPolicy{
	{},
	{Mode: "report", AllowRegions: []string{"US", "CA", "001"}, DenyTypes: []string{"none"}, MaxExtensionDigits: ptr(0)},
	{
		AllowRegions:       []string{"US", "GB"},
		DenyRegions:        []string{"DE", "RU"},
		DenyTypes:          []string{"premium_rate", "unknown", "mobile"},
		Allow:              []string{"+1425555", "+4420", "+19005", "+8816"},
		Deny:               []string{"+1900", "+1976", "+881", "+882", "+883", "+44", "+142555"},
		SIPDomains:         []string{"contoso.com", "*.contoso.com", "*.b.example", "192.0.2.10", "2001:db8::1"},
		MaxExtensionDigits: ptr(3),
	},
	{DenyTypes: []string{"premium_rate"}, SIPDomains: []string{"*.contoso.com"}, MaxExtensionDigits: ptr(5), PremiumShortCodes: "Allow", EmergencyCalls: "Emergency_Numbers"},
}

var fuzzPolicySeeds = []string{
	"+14255551234", "+19005551234", "tel:+1-976-555-1234", "(425) 555-1234", "+442071234567", "+447400123456",
	"+881631234567", "+80012345678", "+4930123456", "+76001234567", "+14165551234", "+11111111111", "+14255551234;ext=12",
	"+14255551234;ext=1234567", "0000X0000000", "+1 425 555 1234 x123", "sip:+900000000;eXt=0000000@A",
	"911", "112", "110", "tel:911", "12345",
	"sip:john@contoso.com", "sip:john@gw.contoso.com.", "sips:a@x.b.example:5061;transport=tls", "sip:a@notcontoso.com",
	"sip:+19005551234@gw.contoso.com;user=phone", "sip:+14255551234;ext=55555@GW.contoso.com;user=phone",
	"sip:19005551234@gw.evil.example", "sip:a@19005551234.example", "sip:a@192.0.2.10", "sip:a@[2001:db8:0::1]",
	"sip:+14255551234@gw.contoso.com:51234;user=phone", "sip:911@gw;user=phone", "sip:%2B14255551234@contoso.com",
	"sip:19005551234@gw.contoso.com", "sip:1-900-555-1234@a.contoso.com", "sip:0119005551234@gw.contoso.com", "sip:(900)555-1234@contoso.com",
	"sip:9,19005551234@gw.contoso.com", "sip:*67p14255551234%23@x.b.example", "sip:6125551234@contoso.com", "sip:442071234567;x=y@contoso.com",
	"sip:1234@contoso.com", "sip:911@contoso.com", "sip:004930123456@contoso.com", "sip:%D9%A1%D9%A49005551234@contoso.com",
	"sip:1900555123a4@gw.contoso.com", "sip:1900_555%E2%80%901234@gw.contoso.com",
	"sip:919005551234@gw.contoso.com", "sip:8119005551234@gw.contoso.com", "sip:009001234567@gw.contoso.com",
	"sip:00301234567@gw.contoso.com", "sip:9011442071234567@gw.contoso.com", "sip:9411@gw.contoso.com",
	"sip:118118@gw.contoso.com", "sip:11880@gw.contoso.com", "sip:911880@gw.contoso.com", "sip:1-1880#@contoso.com",
	"sip:9911@gw.contoso.com", "sip:112@evil.example", "sip:5551234@contoso.com", "sip:*67@contoso.com", "sip:011880@gw.contoso.com",
	"sip:1;9005551234@gw.contoso.com", "sip:9%3B19005551234@gw.contoso.com", "sip:911;19005551234@gw.contoso.com",
	"sip:911;%E2%91%A0%E2%91%A8%E2%93%AA%E2%93%AA@gw.contoso.com", "sip:911;x=%C2%B9%E2%81%B9@gw.contoso.com", "sip:911;%F0%9C%B3%B1@gw.contoso.com",
	"sip:x;19005551234@gw.contoso.com", "sip:-;19005551234@gw.contoso.com", "sip:%3B19005551234@gw.contoso.com", "sip:x12345;6@gw.contoso.com",
	"sip:alice;day=tuesday;room=123456@gw.contoso.com", "sip:x19005551234;qqqqqqqqqqqqqqqq1@gw.contoso.com",
	"sip:3651@gw.contoso.com", "sip:03615@gw.contoso.com", "tel:+33142345678;ext=3651", "+33 1 42 34 56 78 x 3615", "tel:+14255551234;ext=3651",
	"sip:+33142345678;ext=3651@gw.contoso.com;user=phone", "sip:36*51@gw.contoso.com", "sip:1000@gw.contoso.com", "sip:0411@gw.contoso.com",
	"sip:1900FLOWERS@gw.contoso.com", "sip:1-900-FLOWERS;x=1@gw.contoso.com", "sip:1900PAWPAWP@gw.contoso.com", "sip:24hours@contoso.com",
	"sip:365days@gw.contoso.com", "sip:0800FLOWERS@gw.contoso.com", "sip:911HELP@gw.contoso.com", "sip:123%C3%A9t%C3%A9@gw.contoso.com",
	"sip:911A@gw.contoso.com", "sip:9*11@gw.contoso.com", "sip:1X005551234@gw.contoso.com", "sip:G42071234567@gw.contoso.com",
	"sip:lenea@contoso.com", "sip:john.smith2@contoso.com", "sip:u12345@gw.contoso.com", "sip:u123456@gw.contoso.com", "sip:ab-1234-56;x=1@gw.contoso.com", "sip:9,911@gw.contoso.com",
	"sip:9w911@gw.contoso.com", "sip:9,,P9-1-1@gw.contoso.com", "sip:9,9,11@gw.contoso.com", "sip:,911@gw.contoso.com", "sip:911,@gw.contoso.com",
	"sip:9,911,@gw.contoso.com", "sip:81p112;x=y@gw.contoso.com", "sip:0,12345@gw.contoso.com", "sip:0w030123456@gw.contoso.com", "sip:0,123AB@gw.contoso.com",
	"sip:9,911;1@gw.contoso.com", "sip:99,11@gw.contoso.com", "sip:9,*911@gw.contoso.com", "sip:91%231@gw.contoso.com", "sip:9-1-1@gw.contoso.com", "sip:11p2@gw.contoso.com",
	"sip:999w911@gw.contoso.com", "sip:999p112@gw.contoso.com", "sip:999wwww911@gw.contoso.com", "sip:9pwwwwwww911@gw.contoso.com", "sip:9pwpwpw911@gw.contoso.com", "sip:9,19005551234p@gw.contoso.com",
	"sip:911%E2%92%BB@gw.contoso.com", "sip:911%E2%92%BB%E2%92%BB%E2%92%BB%E2%92%BB%E2%92%BB%E2%92%BB%E2%92%BB@gw.contoso.com",
	"sip:9%E2%85%A9%E2%85%A9%E2%85%A9911@gw.contoso.com", "sip:1900555%E2%92%BB%E2%92%BB1234@gw.contoso.com", "sip:9%E2%93%A6911@gw.contoso.com",
	"sip:911%E2%92%A1%E2%92%A1%E2%92%A1@gw.contoso.com", "sip:0,0301234567@gw.contoso.com", "sip:0w030123456@gw.contoso.com",
	"sip:9%E2%93%A6911@gw.contoso.com", "sip:14255551234%E2%92%B6@gw.contoso.com", "sip:%E2%93%9F911@gw.contoso.com",
	"sip:9%EF%BC%8A11@gw.contoso.com", "sip:911%EF%BC%83@gw.contoso.com", "sip:9%EF%B9%A111@gw.contoso.com", "sip:911%EF%B9%9F@gw.contoso.com",
	"sip:%EF%BC%8C911@gw.contoso.com", "sip:9%EF%BC%8C911@gw.contoso.com", "sip:9%EF%B9%90911@gw.contoso.com", "sip:9%EF%B8%90911@gw.contoso.com",
	"sip:14255551234%EF%BC%83@gw.contoso.com", "sip:1425555%EF%BC%8C1234@gw.contoso.com",
	"sip:%C2%B9%E2%81%B9%E2%81%B0%E2%81%B0%E2%81%B5%E2%81%B5%E2%81%B5%C2%B9%C2%B2%C2%B3%E2%81%B4@gw.contoso.com", "sip:1%E2%81%B9005551234@gw.contoso.com",
	"sip:%E2%91%A0%E2%91%A8%E2%93%AA%E2%93%AA5551234@gw.contoso.com", "sip:9%C2%B9%C2%B9@gw.contoso.com", "sip:%E2%91%A9%E2%91%A8@gw.contoso.com",
	"sip:%C2%B9%E2%81%B9%E2%81%B0%E2%81%B0FLOWERS@gw.contoso.com", "sip:x%C2%B9%E2%81%B9%E2%81%B0%E2%81%B05551234@gw.contoso.com",
	"sip:1900%EF%BC%A6%EF%BC%AC%EF%BC%AF%EF%BC%B7%EF%BC%A5%EF%BC%B2%EF%BC%B3@gw.contoso.com", "sip:1900%E2%92%BB%E2%93%81%E2%93%84%E2%93%8C%E2%92%BA%E2%93%87%E2%93%88@gw.contoso.com",
	"sip:1900%F0%9D%90%85%F0%9D%90%8B%F0%9D%90%8E%F0%9D%90%96%F0%9D%90%84%F0%9D%90%91%F0%9D%90%92@gw.contoso.com", "sip:1%EF%BC%B8005551234@gw.contoso.com",
	"sip:%EF%BD%8A%EF%BD%8F%EF%BD%88%EF%BD%8E@gw.contoso.com", "sip:1900%E2%85%AD%E2%85%AE@gw.contoso.com",
	"sip:%F0%9C%B3%B1%F0%9C%B3%B9%F0%9C%B3%B0%F0%9C%B3%B0%F0%9C%B3%B5%F0%9C%B3%B5%F0%9C%B3%B5%F0%9C%B3%B1%F0%9C%B3%B2%F0%9C%B3%B3%F0%9C%B3%B4@gw.contoso.com",
	"sip:%F0%9C%B3%B1%F0%9C%B3%B9%F0%9C%B3%B0%F0%9C%B3%B0FLOWERS@gw.contoso.com", "sip:9%CD%B8%CD%B8@gw.contoso.com", "sip:john%CD%B8@contoso.com",
	"sip:900555123400@gw.contoso.com", "sip:81-900555123400@gw.contoso.com", "sip:x900555123400@gw.contoso.com", "sip:61255512345@gw.contoso.com",
	"sip:33142345678@gw.contoso.com", "sip:0033142345678@gw.contoso.com", "sip:1900555123400@gw.contoso.com", "sip:1900FLOWERS00@gw.contoso.com",
	"sip:%E0%A5%AF19005551234@gw.contoso.com", "sip:%E0%A5%AF1900FLOWERS@gw.contoso.com", "sip:9%EF%BC%911@gw.contoso.com", "sip:9%E0%A5%A7%E0%A5%A7@gw.contoso.com",
	"sip:3%E0%A5%AC%E0%A5%AB%E0%A5%A7@gw.contoso.com", "sip:9,%E0%A5%AF11@gw.contoso.com",
	"sip:%C3%A9%E2%81%B919005551234@gw.contoso.com", "sip:%C3%A9%E2%91%A819005551234@gw.contoso.com", "sip:john%C2%B2@gw.contoso.com",
	"sip:%EF%BC%91%EF%BC%92%EF%BC%93WPMJJJJ@gw.contoso.com", "sip:%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%B7%EF%BC%B0%EF%BC%AD%EF%BC%AA%EF%BC%AA%EF%BC%AA%EF%BC%AA@gw.contoso.com",
	"sip:%EF%BC%911900FLOWERS@gw.contoso.com", "sip:%EF%BC%91%EF%BC%92%EF%BC%93AB@gw.contoso.com", "sip:365%EF%BC%A1@gw.contoso.com", "sip:%C2%B9%C2%B2%C2%B3AB@gw.contoso.com",
}

// FuzzPolicy reads a value as every Numbers the edge may have and judges
// it by several policies: the compiled policy must decide as a plain
// reading of the rules does, allocate nothing, and neither its refusal
// nor the masked destination may show the number.
func FuzzPolicy(f *testing.F) {
	for _, s := range fuzzPolicySeeds {
		f.Add(s)
	}
	var numbers []*Numbers
	for _, c := range []struct {
		region      string
		format      NumberFormat
		emergency   []string
		outsideLine []string
	}{
		{"US", TelURI, nil, nil}, {"", E164, nil, nil}, {"DE", TelURI, []string{"112", "+4930123456", "12345"}, []string{"0"}},
		{"US", E164, nil, []string{"9", "81"}}, {"FR", TelURI, nil, []string{"0"}},
		// An outside line of three digits: its pauses (w, p) are letters
		// after three digits, which read as a vanity number's.
		{"US", TelURI, nil, []string{"999"}},
		// Canada dials the NANP's ten digits, though its data has
		// seven-digit numbers too.
		{"CA", E164, []string{"911", "+19005551234"}, []string{"9"}},
	} {
		n, err := NewNumbers(c.region, c.format, c.emergency, c.outsideLine...)
		if err != nil {
			f.Fatal(err)
		}
		numbers = append(numbers, n)
	}
	var policies []*Policy
	for _, c := range fuzzPolicies {
		p, err := NewPolicy(c)
		if err != nil {
			f.Fatal(err)
		}
		policies = append(policies, p)
	}
	emergencyCall := mustOperation("startEmergencyCall")
	f.Fuzz(func(t *testing.T, v string) {
		for _, n := range numbers {
			d, problem := n.Destination(v)
			if !problem.OK() {
				continue
			}
			checkMasked(t, d)
			ref := referenceRead(&d, n)
			readings, unjudgeable := ref.readings, ref.unjudgeable
			if got := dialSummary(d.Dial); !slices.Equal(got, readingSummary(readings, unjudgeable)) {
				t.Fatalf("%q: read as the dial string %q, a plain reading %q", v, got, readingSummary(readings, unjudgeable))
			}
			if n.International(&d) && (d.Number.Emergency || d.Dial != nil && d.Dial.Emergency || !d.IsNumber() && d.Dial == nil && d.Keypad == nil) {
				t.Fatalf("%q: an emergency number or a SIP name is international", v)
			}
			short := ref.short
			if got := d.Dial != nil && len(d.Dial.Readings) == 0 && !d.Dial.Unjudgeable; got != short.ok ||
				short.ok && (d.Dial.Digits != short.digits || d.Dial.Emergency != short.emergency) ||
				d.Dial != nil && (d.Dial.Rest != short.rest || d.Dial.Premium != short.premium) {
				t.Fatalf("%q: read as %+v, a plain reading %+v", v, d.Dial, short)
			}
			readings, unjudgeable, keypadShort, vanity := ref.keypadReadings, ref.keypadUnjudgeable, ref.keypadShort, ref.vanity
			if vanity {
				// The keypad reading is never an emergency number: 911A
				// at a gateway that takes 9 is no 9 112.
				keypadShort.emergency = false
				if d.Keypad == nil {
					t.Fatalf("%q: a vanity number, yet not read with its letters as keypad digits, a plain reading %q", v, readingSummary(readings, unjudgeable))
				}
				if got := dialSummary(d.Keypad); !slices.Equal(got, readingSummary(readings, unjudgeable)) || d.Keypad.Emergency {
					t.Fatalf("%q: read with its letters as keypad digits as %q (emergency %v), a plain reading %q", v, got, d.Keypad.Emergency, readingSummary(readings, unjudgeable))
				}
			} else if d.Keypad != nil {
				t.Fatalf("%q: no vanity number, yet read as %+v with its letters as keypad digits", v, d.Keypad)
			}
			if short.ok && d.Keypad == nil && n.International(&d) == short.emergency {
				t.Fatalf("%q: a short code (emergency %v) is international: %v", v, short.emergency, !short.emergency)
			}
			for i, p := range policies {
				for kind := DialledNow; kind <= OnBehalfOf; kind++ {
					pd := &PropertyDestination{Property: "to", Kind: kind, Source: InBody, Destination: d}
					got := p.Judge(spa, pd)
					want := referenceRule(&fuzzPolicies[i], pd, &ref)
					if got.Rule != want {
						t.Fatalf("policy %d, %s %q: decided by %s, a plain reading by %s", i, kind, v, got.Rule, want)
					}
					dialled := func(s referenceShort) bool {
						return s.emergency || s.premium && referenceRefusesPremium(&fuzzPolicies[i]) || s.digits > referenceMaxExtension(&fuzzPolicies[i])
					}
					if short.ok && (!vanity || keypadShort.ok) && p.IsDialled(&d) != (dialled(short) || vanity && dialled(keypadShort)) {
						t.Fatalf("policy %d, %q: a short code of %d digits is dialled: %v", i, v, short.digits, p.IsDialled(&d))
					}
					switch {
					case want.allows() && got.Verdict != VerdictAllowed,
						!want.allows() && p.Report() && got.Verdict != VerdictWouldRefuse,
						!want.allows() && !p.Report() && got.Verdict != VerdictRefused:
						t.Fatalf("policy %d, %q: %s by %s", i, v, got.Verdict, got.Rule)
					}
					// The emergency call is judged by the same rules and
					// never refused, but under emergency_calls
					// emergency_numbers, where it is judged as any request.
					wantVerdict := got.Verdict
					if got.Verdict == VerdictRefused && !strings.EqualFold(fuzzPolicies[i].EmergencyCalls, EmergencyCallsNumbers) {
						wantVerdict = VerdictWouldRefuse
					}
					if e := p.Judge(emergencyCall, pd); e.Rule != want || e.Verdict != wantVerdict {
						t.Fatalf("policy %d, %q: the emergency call is %s by %s, another request %s by %s", i, v, e.Verdict, e.Rule, got.Verdict, got.Rule)
					}
					checkRefusal(t, pd, got)
					checkDecisionMasked(t, &d, got)
				}
			}
			pd := &PropertyDestination{Property: "to", Kind: DialledNow, Destination: d}
			if allocs := testing.AllocsPerRun(1, func() { policies[2].Judge(spa, pd) }); allocs != 0 {
				t.Fatalf("%q: Judge allocates %v times", v, allocs)
			}
		}
	})
}

// checkDecisionMasked fails when d, masked as dec judged it, shows what
// Masked may not, or a reading's digits.
func checkDecisionMasked(t *testing.T, d *Destination, dec Decision) {
	t.Helper()
	m := dec.Masked(d)
	if leak := maskedLeak(*d, m); leak != "" {
		t.Fatal(leak)
	}
	if d.Dial == nil && d.Keypad == nil {
		if m != d.Masked() {
			t.Fatalf("%q: masked as %q by its decision, %q alone", d.Value, m, d.Masked())
		}
		return
	}
	for _, dial := range []*DialString{d.Dial, d.Keypad} {
		if dial == nil {
			continue
		}
		for _, r := range dial.Readings {
			if digits := strings.TrimPrefix(r.E164, "+"); strings.Contains(m, digits) {
				t.Fatalf("%q: masked as %q, which holds a reading's digits", d.Value, m)
			}
		}
	}
}

// checkRefusal fails when the refusal of d shows its value or number.
func checkRefusal(t *testing.T, d *PropertyDestination, dec Decision) {
	t.Helper()
	e := RefusalError(d, dec)
	if e == nil {
		if dec.Verdict == VerdictRefused || dec.Verdict == VerdictWouldRefuse {
			t.Fatalf("%q: refused without an error", d.Value)
		}
		return
	}
	if leak := refusalLeak(d, e); leak != "" {
		t.Fatal(leak)
	}
}

// refusalLeak returns what the refusal e of d shows of it that it must
// not; "" when nothing.
func refusalLeak(d *PropertyDestination, e *Error) string {
	// What the refusal says, not the body's fixed text around it (the XML
	// namespace's "microsoft.com" holds "t." and "2012"): the bodies are
	// built from these alone.
	said := []string{e.Message}
	for _, p := range e.Parameters {
		said = append(said, p.Name, p.Reason)
	}
	numbers := []string{strings.TrimPrefix(d.Number.E164, "+")}
	for _, dial := range []*DialString{d.Dial, d.Keypad} {
		if dial != nil {
			for _, r := range dial.Readings {
				numbers = append(numbers, strings.TrimPrefix(r.E164, "+"))
			}
		}
	}
	// A host of one label may be a word of the message.
	host := strings.ToLower(strings.TrimSuffix(d.Host, "."))
	for _, text := range said {
		if strings.Contains(text, d.Value) {
			return fmt.Sprintf("%q: the refusal shows it: %s", d.Value, text)
		}
		for _, digits := range numbers {
			if len(digits) >= 3 && strings.Contains(text, digits) {
				return fmt.Sprintf("%q: the refusal shows its number: %s", d.Value, text)
			}
		}
		if d.SIP && strings.Contains(host, ".") && strings.Contains(strings.ToLower(text), host) {
			return fmt.Sprintf("%q: the refusal shows its host: %s", d.Value, text)
		}
	}
	return ""
}

// referenceDialString reads a SIP destination's user as the rules of a
// dial string say, plainly: no telephone user; before its first ';', no
// letter but the dial characters , p w * # A B C D (any letter case),
// every other character but a digit (of any script) a separator; at
// least six digits (the shortest number phonenumbers has, +98 and four
// digits). With a dial character, or more than maxNumberLength digits,
// no rule can judge it; else its readings are the digits read by n as a
// bare number and with a '+', each when n reads it, then the same of the
// digits after each of n's outside-line prefixes they start with, when
// six or more are left; a reading only when no reading before it is the
// same number; after the two readings of digits (as written or after a
// prefix), their reading by a switch that completes a call on a
// national number's one length (referenceNationalReadings). Digits of
// neither of the first two readings, as written or after a prefix, that
// phonenumbers finds too long in either make it unjudgeable; a
// user of no reading at all is a name. A digit in its parameters (after
// the first ';') makes it unjudgeable, unless it is a name read with its
// parameters as well as without.
func referenceDialString(d *Destination, n *Numbers) (readings []Number, unjudgeable bool) {
	user, ok := referenceUser(d)
	if !ok {
		return nil, false
	}
	if referenceDecodedAgain(user, n) {
		return nil, true
	}
	return referenceDialUser(user, n, false)
}

// referenceDecodedAgain reports whether a decoded SIP user still holds
// an escape (%XX or %uXXXX) and, as it is or with its escapes decoded
// again and again, reads as a dial string (with readings, unjudgeable or
// a short code) or a vanity number: a gateway that decodes it once more
// dials digits the edge never read, so it is unjudgeable.
func referenceDecodedAgain(user string, n *Numbers) bool {
	if !referenceEscape.MatchString(user) {
		return false
	}
	for {
		readings, unjudgeable := referenceDialUser(user, n, false)
		if _, vanity := referenceKeypadUser(user); unjudgeable || len(readings) > 0 || vanity || referenceShortUser(user, n, false).ok {
			return true
		}
		decoded := referenceUnescape(user)
		if decoded == user {
			return false
		}
		user = decoded
	}
}

// referenceUser is the decoded user of a SIP destination that is no
// telephone number; ok is false for any other destination.
func referenceUser(d *Destination) (string, bool) {
	if !d.SIP || d.IsNumber() {
		return "", false
	}
	u, reason := ParseSIPURI(d.Value)
	if reason != "" {
		panic(reason)
	}
	return u.DecodedUser(), true
}

// referenceKeypad is a SIP destination's user read as a vanity number,
// plainly: before its first ';' it holds a letter, and three digits or
// more come before its first letter (whatever else stands before them)
// or six digits or more stand anywhere in it, and every letter is an
// ASCII one, which becomes the digit of its key on a phone keypad
// (ABC 2, DEF 3, GHI 4, JKL 5, MNO 6, PQRS 7, TUV 8, WXYZ 9); ok is false
// for a user that is none.
func referenceKeypad(d *Destination) (string, bool) {
	user, ok := referenceUser(d)
	if !ok {
		return "", false
	}
	return referenceKeypadUser(user)
}

// referenceKeypadUser is referenceKeypad of a decoded SIP user.
func referenceKeypadUser(user string) (string, bool) {
	main, params, hasParams := strings.Cut(user, ";")
	const keys = "22233344455566677778889999"
	var out strings.Builder
	digitsBefore, digitsInAll, letters := 0, 0, 0
	for _, r := range main {
		// A compatibility form of an ASCII letter (Ｆ, 𝐅, Ⓕ) is that
		// letter to a gateway that folds them before it maps letters.
		if f := norm.NFKC.String(string(r)); r >= 0x80 && !unicode.IsDigit(r) && len(f) == 1 && ('a' <= f[0] && f[0] <= 'z' || 'A' <= f[0] && f[0] <= 'Z') {
			r = rune(f[0])
		}
		// So is a compatibility form of an ASCII digit (１, 𝟏) that digit;
		// a Devanagari ९, which NFKC keeps, stays.
		if f := norm.NFKC.String(string(r)); r >= 0x80 && unicode.IsDigit(r) && len(f) == 1 && '0' <= f[0] && f[0] <= '9' {
			r = rune(f[0])
		}
		switch {
		case unicode.IsDigit(r):
			if letters == 0 {
				digitsBefore++
			}
			digitsInAll++
			out.WriteRune(r)
		case referenceCompatDigits(r) != "":
			if letters == 0 {
				digitsBefore += len(referenceCompatDigits(r))
			}
			digitsInAll += len(referenceCompatDigits(r))
			out.WriteRune(r)
		case 'a' <= r && r <= 'z':
			letters++
			out.WriteByte(keys[r-'a'])
		case 'A' <= r && r <= 'Z':
			letters++
			out.WriteByte(keys[r-'A'])
		case unicode.IsLetter(r):
			return "", false
		default:
			out.WriteRune(r)
		}
	}
	if letters == 0 || digitsBefore < 3 && (digitsInAll < 6 || letters >= digitsInAll) {
		return "", false
	}
	if hasParams {
		out.WriteString(";" + params)
	}
	return out.String(), true
}

// referenceKeypadReading reads a SIP destination's user as a vanity
// number (referenceKeypad): its keypad reading's readings, whether it
// is unjudgeable, and what it is as a short code; ok is false for a
// user that is none. A user that holds an ASCII letter or digit and a
// character that NFKC folds onto one (a fullwidth １ or Ｆ, a circled
// Ⓕ, a mathematical 𝐅) or onto digits (a superscript ¹) is read
// neither way: a gateway that keeps only the ASCII it can dial drops
// the folded ones. With six digits or more it is unjudgeable, with
// fewer a short code that is a premium-rate one also when the keypad
// digits of its ASCII letters and digits are one, as written or after
// an outside-line prefix.
func referenceKeypadReading(d *Destination, n *Numbers) (readings []Number, unjudgeable bool, short referenceShort, ok bool) {
	user, ok := referenceUser(d)
	if !ok {
		return nil, false, referenceShort{}, false
	}
	keypad, ok := referenceKeypadUser(user)
	if !ok {
		return nil, false, referenceShort{}, false
	}
	readings, unjudgeable = referenceDialUser(keypad, n, true)
	short = referenceShortUser(keypad, n, true)
	main, _, _ := strings.Cut(user, ";")
	const keys = "22233344455566677778889999"
	var ascii strings.Builder
	folded := false
	for _, r := range main {
		f := norm.NFKC.String(string(r))
		switch {
		case '0' <= r && r <= '9':
			ascii.WriteRune(r)
		case 'a' <= r && r <= 'z':
			ascii.WriteByte(keys[r-'a'])
		case 'A' <= r && r <= 'Z':
			ascii.WriteByte(keys[r-'A'])
		case r >= 0x80 && len(f) == 1 && ('0' <= f[0] && f[0] <= '9' || 'a' <= f[0] && f[0] <= 'z' || 'A' <= f[0] && f[0] <= 'Z'),
			referenceCompatDigits(r) != "":
			folded = true
		}
	}
	if unjudgeable || !folded || ascii.Len() == 0 {
		return readings, unjudgeable, short, true
	}
	if !short.ok || short.digits >= 6 {
		return nil, true, referenceShort{}, true
	}
	kept := ascii.String()
	short.premium = short.premium || referencePremium(kept, n.region)
	for _, prefix := range n.outsideLine {
		if rest, ok := strings.CutPrefix(kept, prefix); ok {
			short.premium = short.premium || referencePremium(rest, n.region)
		}
	}
	return readings, false, short, true
}

// referenceDialUser is referenceDialString of a decoded user; keypad
// tells that it is a vanity number's keypad reading, which is never an
// emergency number. A user that is an outside-line prefix, pauses and an
// emergency number (referencePausedEmergency) has no reading, and is
// judgeable.
func referenceDialUser(whole string, n *Numbers, keypad bool) (readings []Number, unjudgeable bool) {
	user, params, _ := strings.Cut(whole, ";")
	digits, unjudgeable, letter, name := referenceDialDigits(user)
	if _, _, _, wholeName := referenceDialDigits(whole); name && wholeName {
		// A name before its first ';' and with its parameters too.
		return nil, false
	}
	if strings.IndexFunc(params, func(r rune) bool { return unicode.IsDigit(r) || referenceCompatDigits(r) != "" }) >= 0 {
		// A digit-dialling gateway dials its parameters' digits too, in
		// a compatibility form as well, also when they are its only
		// digits, or make a name mostly digits.
		return nil, true
	}
	if !keypad && (referencePausedShape(user, n) || !name && len(digits) > 0 && len(digits) < 6) && referencePausesDial(user, n) {
		// Its pauses read as keypad digits dial a number, where as
		// pauses they dial an emergency number or a short code: no rule
		// can tell which a gateway dials.
		return nil, true
	}
	if len(digits) < 6 || !keypad && referencePausedEmergency(user, n) {
		return nil, false
	}
	if unjudgeable || len(digits) > maxNumberLength {
		return nil, true
	}
	read := func(digits string) {
		possible := false
		for _, text := range []string{digits, "+" + digits} {
			// Read as a SIP user's digits are: an outside-line prefix and
			// an emergency code is a reading of a tel: URI or a bare
			// number (Number.OutsideLine), never of a dial string's
			// digits, which are read as written and after the prefix.
			num, p := n.read(text, sipUserNumber)
			if !p.OK() {
				continue
			}
			possible = true
			if !slices.ContainsFunc(readings, func(r Number) bool { return r.E164 == num.E164 }) {
				readings = append(readings, num)
			}
		}
		for _, num := range referenceNationalReadings(digits, n) {
			if !slices.ContainsFunc(readings, func(r Number) bool { return r.E164 == num.E164 }) {
				readings = append(readings, num)
			}
		}
		if possible {
			return
		}
		// Too long for the number the digits start, in either reading:
		// no rule can tell which digits a gateway takes.
		for _, c := range []struct{ text, region string }{{digits, n.region}, {"+" + digits, "ZZ"}} {
			if c.region == "" {
				continue
			}
			pn, err := phonenumbers.Parse(c.text, c.region)
			if err == phonenumbers.ErrNumTooLong || err == nil && phonenumbers.IsPossibleNumberWithReason(pn) == phonenumbers.TOO_LONG {
				unjudgeable = true
			}
		}
	}
	read(string(digits))
	for _, prefix := range n.outsideLine {
		if rest, ok := strings.CutPrefix(string(digits), prefix); ok && len(rest) >= 6 {
			read(rest)
		}
	}
	if unjudgeable {
		return nil, true
	}
	// A name read by its digits alone, or a keypad reading, is never an
	// emergency number, though a reading be one of the emergency list:
	// a gateway routing the name as written places no emergency call.
	// Nor is a user with a letter in a compatibility form, a name to a
	// gateway that folds them.
	if letter || keypad || referenceLetterForm(whole) {
		for i := range readings {
			readings[i].Emergency = false
		}
	}
	return readings, false
}

// referenceNonDigits is what referenceNationalReadings leaves out of a
// formatted number.
var referenceNonDigits = regexp.MustCompile(`\D`)

// referenceNationalReadings are the numbers a switch of n's region
// completes a call on when it gets more digits than a national number
// has, plainly: where every national number has one length L by
// phonenumbers' metadata (the possible lengths of the region's general
// description, or else of the main region of its country code when
// that is one and one of the region's: the NANP's 10 in Canada too),
// the first L digits after the region's national prefix when digits
// start with it, else the first L digits as written when the region
// writes that number nationally without a prefix (its national format
// holds just its national significant number); only when, with a
// '+' and the region's country code, it is a valid number written as
// it formats in E.164, and n reads it. None is an emergency number.
func referenceNationalReadings(digits string, n *Numbers) []Number {
	md := referenceMetadata()[n.region]
	if md == nil || n.region == "001" {
		return nil
	}
	lengths := md.GetGeneralDesc().GetPossibleLength()
	if main := referenceMetadata()[phonenumbers.GetRegionCodeForCountryCode(int(md.GetCountryCode()))]; main != nil && len(lengths) > 1 {
		if ml := main.GetGeneralDesc().GetPossibleLength(); len(ml) == 1 && slices.Contains(lengths, ml[0]) {
			lengths = ml
		}
	}
	if len(lengths) != 1 {
		return nil
	}
	l := int(lengths[0])
	cc := "+" + strconv.Itoa(int(md.GetCountryCode()))
	var out []Number
	take := func(national string, asWritten bool) {
		if len(national) <= l {
			return
		}
		pn, err := phonenumbers.Parse(cc+national[:l], "ZZ")
		if err != nil || !phonenumbers.IsValidNumber(pn) || phonenumbers.Format(pn, phonenumbers.E164) != cc+national[:l] {
			return
		}
		if asWritten && referenceNonDigits.ReplaceAllString(phonenumbers.Format(pn, phonenumbers.NATIONAL), "") != phonenumbers.GetNationalSignificantNumber(pn) {
			return
		}
		num, p := n.read(cc+national[:l], sipUserNumber)
		if !p.OK() {
			return
		}
		num.Emergency = false
		out = append(out, num)
	}
	if prefix := strings.ReplaceAll(md.GetNationalPrefix(), "~", ""); prefix != "" && strings.HasPrefix(digits, prefix) {
		take(digits[len(prefix):], false)
	} else {
		take(digits, true)
	}
	return out
}

// referenceMetadata is phonenumbers' metadata by region.
var referenceMetadata = sync.OnceValue(func() map[string]*metadata.PhoneMetadata {
	return byRegion(phonenumbers.MetadataCollection())
})

// byRegion is a metadata collection's metadata by region.
func byRegion(c *metadata.PhoneMetadataCollection, err error) map[string]*metadata.PhoneMetadata {
	if err != nil {
		panic(err)
	}
	m := map[string]*metadata.PhoneMetadata{}
	for _, md := range c.GetMetadata() {
		m[md.GetId()] = md
	}
	return m
}

// referenceShort is what referenceShortCode reads.
type referenceShort struct {
	ok        bool // a short code: a user of digits of no reading
	digits    int
	emergency bool
	// rest is, for a user with readings, the most digits after an
	// outside-line prefix it starts with, when fewer than six.
	rest int
	// premium: the digits of a short code, or the digits after a prefix
	// that rest counts, are a premium-rate short code of n's region, as
	// written or after an outside-line prefix.
	premium bool
}

// referencePremium reports whether digits are a premium-rate short code
// of region by the patterns of phonenumbers' short-number metadata,
// matched whole: of a possible length and the pattern of the region's
// short codes, of its premium-rate ones, and not of its SMS services.
func referencePremium(digits, region string) bool {
	md := referenceShortMetadata()[region]
	if md == nil || digits == "" {
		return false
	}
	matches := func(desc *metadata.PhoneNumberDesc) bool {
		if desc == nil || desc.GetNationalNumberPattern() == "" {
			return false
		}
		if len(desc.PossibleLength) > 0 && !slices.Contains(desc.PossibleLength, int32(len(digits))) {
			return false
		}
		return referenceWholeMatch(desc.GetNationalNumberPattern()).MatchString(digits)
	}
	general := md.GetGeneralDesc()
	return slices.Contains(general.PossibleLength, int32(len(digits))) && matches(general) &&
		matches(md.GetShortCode()) && matches(md.GetPremiumRate()) && !matches(md.GetSmsServices())
}

// referenceWholeMatches are the patterns of referenceWholeMatch,
// compiled once each: the oracle matches the same few patterns of the
// metadata over and over.
var referenceWholeMatches sync.Map // string -> *regexp.Regexp

// referenceWholeMatch is a pattern of phonenumbers' metadata as a
// regular expression that matches a whole string.
func referenceWholeMatch(pattern string) *regexp.Regexp {
	if re, ok := referenceWholeMatches.Load(pattern); ok {
		return re.(*regexp.Regexp)
	}
	re, _ := referenceWholeMatches.LoadOrStore(pattern, regexp.MustCompile(`^(?:`+pattern+`)$`))
	return re.(*regexp.Regexp)
}

// referenceShortMetadata is phonenumbers' short-number metadata by
// region.
var referenceShortMetadata = sync.OnceValue(func() map[string]*metadata.PhoneMetadata {
	return byRegion(phonenumbers.ShortNumberMetadataCollection())
})

// referenceShortCode reads a SIP destination's user as the rules of a
// short code say, plainly: a user that is a dial string by
// referenceDialString's characters, of at least one digit, that has no
// reading and is not unjudgeable. Its digits are an emergency number
// when the user holds no dial character and n reads them (or, for each
// outside-line prefix they start with, the digits after it) as one. Of a user with readings only rest is
// read.
func referenceShortCode(d *Destination, n *Numbers) referenceShort {
	whole, ok := referenceUser(d)
	if !ok || referenceDecodedAgain(whole, n) {
		return referenceShort{}
	}
	return referenceShortUser(whole, n, false)
}

// referencePausedEmergency reports whether a SIP user (before its ';')
// is, its separators left out, an outside-line prefix of n, one or more
// pauses (, p w, any letter case) and digits that n reads as an
// emergency number, and nothing else to a gateway that reads the pauses
// otherwise: its digits without them are an emergency number in every
// reading, with no short code after a prefix and no premium-rate one,
// and read as a vanity number (p and w as keypad digits) they have no
// reading and are no premium-rate short code.
func referencePausedEmergency(user string, n *Numbers) bool {
	if !referencePausedShape(user, n) || referencePausesDial(user, n) {
		return false
	}
	if keypad, ok := referenceKeypadUser(user); ok {
		readings, unjudgeable := referenceDialUser(keypad, n, true)
		if unjudgeable || len(readings) > 0 || referenceShortUser(keypad, n, true).premium {
			return false
		}
	}
	return true
}

// referencePausesDial reports whether a user's p and w (any letter case,
// a compatibility form too), as the keypad digits 7 and 9, with its
// digits and without its other characters, are digits with a reading,
// digits no rule can judge, or a premium-rate short code, whatever its
// count of digits and letters.
func referencePausesDial(user string, n *Numbers) bool {
	user, _, _ = strings.Cut(user, ";")
	var b strings.Builder
	letters := false
	for _, r := range user {
		switch r = referenceFoldDialCharacter(r); {
		case unicode.IsDigit(r):
			b.WriteByte(digitValue(r))
		case r == 'p' || r == 'P':
			b.WriteByte('7')
			letters = true
		case r == 'w' || r == 'W':
			b.WriteByte('9')
			letters = true
		}
	}
	if !letters {
		return false
	}
	readings, unjudgeable := referenceDialUser(b.String(), n, true)
	return unjudgeable || len(readings) > 0 || referenceShortUser(b.String(), n, true).premium
}

// referencePrefixPausesDigits is the shape referencePausedShape reads:
// digits (an outside-line prefix), pauses and digits.
var referencePrefixPausesDigits = regexp.MustCompile(`^([0-9]+)[,pPwW]+([0-9]+)$`)

// referencePausedShape is referencePausedEmergency of the user's digits
// and pauses, its p and w not read as keypad digits.
func referencePausedShape(user string, n *Numbers) bool {
	if referenceMixedDigits(user) {
		return false
	}
	var b strings.Builder
	for _, r := range user {
		r = referenceFoldDialCharacter(r)
		switch {
		case unicode.IsDigit(r):
			b.WriteByte(digitValue(r))
		case referenceCompatDigits(r) != "":
			b.WriteByte('*') // no rule can tell what a gateway dials for it
		case strings.ContainsRune(",pPwW*#aAbBcCdD", r):
			b.WriteRune(r)
		case unicode.IsLetter(r):
			return false
		}
	}
	m := referencePrefixPausesDigits.FindStringSubmatch(b.String())
	if m == nil || !slices.Contains(n.outsideLine, m[1]) {
		return false
	}
	// The digits after the pauses are the emergency number itself: a
	// second outside-line prefix (9,9911) makes no emergency number.
	num, p := n.Number(m[2])
	if !p.OK() || !num.Emergency || num.OutsideLine {
		return false
	}
	digits := m[1] + m[2]
	readings, unjudgeable := referenceDialUser(digits, n, false)
	short := referenceShortUser(digits, n, false)
	switch {
	case unjudgeable, short.premium, short.rest > 0:
		return false
	case len(readings) == 0 && !short.emergency:
		return false
	}
	for _, r := range readings {
		if !r.Emergency {
			return false
		}
	}
	return true
}

// referenceShortUser is referenceShortCode of a decoded user; keypad as
// for referenceDialUser.
func referenceShortUser(whole string, n *Numbers, keypad bool) referenceShort {
	readings, unjudgeable := referenceDialUser(whole, n, keypad)
	if unjudgeable {
		return referenceShort{}
	}
	user, _, _ := strings.Cut(whole, ";")
	digits, dialCharacter, letter, name := referenceDialDigits(user)
	if name {
		return referenceShort{}
	}
	if len(digits) == 0 {
		return referenceShort{}
	}
	if len(readings) > 0 {
		var short referenceShort
		for _, prefix := range n.outsideLine {
			if rest, ok := strings.CutPrefix(string(digits), prefix); ok && len(rest) < 6 {
				short.rest = max(short.rest, len(rest))
				short.premium = short.premium || referencePremium(rest, n.region)
			}
		}
		return short
	}
	// A dial character makes what a gateway dials something else than
	// the digits alone, but for pauses after an outside-line prefix.
	emergency := func(s string) bool {
		// The digits themselves: a bare number reads an outside-line
		// prefix and a code as one too (Number.OutsideLine), which after
		// a prefix would be two prefixes.
		num, p := n.Number(s)
		return !dialCharacter && s != "" && p.OK() && num.Emergency && !num.OutsideLine
	}
	short := referenceShort{ok: true, digits: len(digits), emergency: emergency(string(digits)), premium: referencePremium(string(digits), n.region)}
	short.emergency = short.emergency || !keypad && referencePausedEmergency(user, n)
	dialled := []string{string(digits)}
	if referenceMixedDigits(user) {
		dialled = append(dialled, referenceASCIIDigits(user))
		short.premium = short.premium || referencePremium(dialled[1], n.region)
	}
	for _, prefix := range n.outsideLine {
		for _, d := range dialled {
			if rest, ok := strings.CutPrefix(d, prefix); ok {
				short.emergency = short.emergency || emergency(rest) && !referenceDialledAsWritten(d, n)
				short.premium = short.premium || referencePremium(rest, n.region)
			}
		}
	}
	// A name's digits are never an emergency number: they only add
	// refusals. Nor are those of a user with a letter in a compatibility
	// form, which a gateway that folds them reads as a name.
	short.emergency = short.emergency && !letter && !referenceLetterForm(whole)
	return short
}

// referenceLetterForm reports whether a SIP user, before its ';', holds
// a character that is neither a letter nor a digit nor a compatibility
// form of a dial character, and that Unicode's NFKC folds onto text with
// a letter (a circled Ⓕ, a Roman numeral Ⅹ, a parenthesized ⒡).
func referenceLetterForm(user string) bool {
	main, _, _ := strings.Cut(user, ";")
	return strings.ContainsFunc(main, func(r rune) bool {
		return r >= 0x80 && !unicode.IsLetter(r) && !unicode.IsDigit(r) && referenceFoldDialCharacter(r) == r &&
			strings.ContainsFunc(norm.NFKC.String(string(r)), unicode.IsLetter)
	})
}

// referenceDialledAsWritten reports whether digits, dialled as written
// in n's region, are a valid number there or a premium-rate short code:
// an outside-line prefix and an emergency code that are one reach that
// at a gateway that does not take the prefix.
func referenceDialledAsWritten(digits string, n *Numbers) bool {
	if n.region == "" {
		return false
	}
	pn, err := phonenumbers.Parse(digits, n.region)
	return referencePremium(digits, n.region) || err == nil && phonenumbers.IsValidNumber(pn)
}

// referenceMaxExtension is c's max_extension_digits, its default 4
// when unset.
func referenceMaxExtension(c *DestinationPolicy) int {
	if c.MaxExtensionDigits != nil {
		return *c.MaxExtensionDigits
	}
	return 4
}

// referenceRefusesPremium reports whether c refuses premium-rate short
// codes at any count: premium_short_codes is not allow.
func referenceRefusesPremium(c *DestinationPolicy) bool {
	return !strings.EqualFold(c.PremiumShortCodes, "allow")
}

// readingSummary is dialSummary of what referenceDialString read.
func readingSummary(readings []Number, unjudgeable bool) []string {
	if unjudgeable {
		return []string{"?"}
	}
	var s []string
	for _, r := range readings {
		s = append(s, r.E164)
	}
	return s
}

// referenceReading is what a plain reading of the rules reads a
// destination as by one Numbers, whatever the policy and the property's
// kind: referenceRule judges it by each policy, so that it is read once
// for all of them.
type referenceReading struct {
	// short is referenceShortCode's reading.
	short referenceShort
	// readings and unjudgeable are referenceDialString's.
	readings    []Number
	unjudgeable bool
	// keypadReadings, keypadUnjudgeable and keypadShort are
	// referenceKeypadReading's, of a vanity number only.
	keypadReadings    []Number
	keypadUnjudgeable bool
	keypadShort       referenceShort
	vanity            bool
}

// referenceRead reads d as n does, plainly.
func referenceRead(d *Destination, n *Numbers) referenceReading {
	var r referenceReading
	r.short = referenceShortCode(d, n)
	r.readings, r.unjudgeable = referenceDialString(d, n)
	r.keypadReadings, r.keypadUnjudgeable, r.keypadShort, r.vanity = referenceKeypadReading(d, n)
	return r
}

// referenceRule judges d by c as the rules read, without compiling
// anything: the oracle FuzzPolicy holds Policy to. ref is d's
// destination as referenceRead reads it by the Numbers that read d.
func referenceRule(c *DestinationPolicy, d *PropertyDestination, ref *referenceReading) Rule {
	// A short code that is an emergency number is one to the rule
	// emergency.
	if ref.short.emergency && referenceNumberRule(c, d, Number{Emergency: true}) == RuleEmergency {
		return RuleEmergency
	}
	if r := referenceNumberRule(c, d, d.Number); d.IsNumber() || r == RuleEmergency || r == RuleNotDialled || r == RuleInvalid {
		return r
	}
	if r := referenceDialRule(c, d, ref.readings, ref.unjudgeable, ref.short); r != RuleNone {
		return r
	}
	// The keypad reading of a vanity number adds refusals, as a dial
	// string of its own.
	if ref.vanity {
		if r := referenceDialRule(c, d, ref.keypadReadings, ref.keypadUnjudgeable, ref.keypadShort); r != RuleNone {
			return r
		}
	}
	return referenceNumberRule(c, d, Number{})
}

// referenceDialRule judges the readings of a dial string of d (as
// written or its keypad reading), whether it is unjudgeable, and what it
// is as a short code; RuleNone when none of them refuses it.
func referenceDialRule(c *DestinationPolicy, d *PropertyDestination, readings []Number, unjudgeable bool, short referenceShort) Rule {
	for _, num := range readings {
		switch r := referenceNumberRule(c, d, num); r {
		case RuleEmergency, RuleAllow, RuleDefault:
		case RuleSIPDomains:
			// An allowed number at a host sip_domains refuses is refused
			// there; any other number is judged by the other readings
			// first, and sip_domains refuses the host after them.
			if slices.ContainsFunc(c.Allow, func(p string) bool { return strings.HasPrefix(num.E164, p) }) {
				return r
			}
		default:
			return r
		}
	}
	numberRules := len(c.Deny) > 0 || len(c.DenyRegions) > 0 || len(c.AllowRegions) > 0 ||
		!(len(c.DenyTypes) == 1 && strings.EqualFold(c.DenyTypes[0], "none"))
	if unjudgeable && numberRules && referenceNumberRule(c, d, Number{}) != RuleSIPDomains {
		return RuleDialString
	}
	if (short.ok && short.digits > referenceMaxExtension(c) || short.rest > referenceMaxExtension(c) || short.premium && referenceRefusesPremium(c)) &&
		numberRules && referenceNumberRule(c, d, Number{}) != RuleSIPDomains {
		return RuleShortCode
	}
	return RuleNone
}

// referenceNumberRule judges d as a SIP URI (or number) whose number is
// num.
func referenceNumberRule(c *DestinationPolicy, pd *PropertyDestination, num Number) Rule {
	d := *pd
	d.Number = num
	hasPrefix := func(list []string) bool {
		return slices.ContainsFunc(list, func(p string) bool { return strings.HasPrefix(num.E164, p) })
	}
	inRegions := func(list []string) bool {
		return slices.ContainsFunc(list, func(r string) bool { return strings.EqualFold(r, num.Region) })
	}
	// A number of no region is in a region that shares its calling code
	// (calling codes are a prefix code).
	codeOfRegions := func(list []string) bool {
		return num.Region == "" && slices.ContainsFunc(list, func(r string) bool {
			code := phonenumbers.GetCountryCodeForRegion(strings.ToUpper(r))
			return code > 0 && strings.HasPrefix(num.E164, "+"+strconv.Itoa(code))
		})
	}
	hostOK := func() bool {
		if len(c.SIPDomains) == 0 {
			return true
		}
		host := strings.TrimSuffix(d.Host, ".")
		for _, e := range c.SIPDomains {
			if a, err := netip.ParseAddr(e); err == nil {
				h, err := netip.ParseAddr(strings.Trim(host, "[]"))
				if err == nil && h.Unmap() == a.Unmap() {
					return true
				}
				continue
			}
			if base, ok := strings.CutPrefix(e, "*."); ok && strings.HasSuffix(host, "."+base) || host == e {
				return true
			}
		}
		return false
	}
	maxExtension := 4
	if c.MaxExtensionDigits != nil {
		maxExtension = *c.MaxExtensionDigits
	}
	denyTypes := c.DenyTypes
	if len(denyTypes) == 0 {
		denyTypes = []string{"premium_rate", "shared_cost", "personal_number", "uan"}
	}
	switch {
	case num.Emergency && (!d.SIP || hostOK()):
		return RuleEmergency
	case d.Kind == OnBehalfOf:
		return RuleNotDialled
	case !d.IsNumber() && !d.SIP:
		return RuleInvalid
	case d.IsNumber() && (len(num.Extension) > maxExtension || num.Extension != "" && referenceRefusesPremium(c) && referencePremium(num.Extension, num.Region)):
		return RuleMaxExtensionDigits
	case d.IsNumber() && hasPrefix(c.Allow):
		if d.SIP && !hostOK() {
			return RuleSIPDomains
		}
		return RuleAllow
	case d.IsNumber() && hasPrefix(c.Deny):
		return RuleDeny
	case d.IsNumber() && (inRegions(c.DenyRegions) || codeOfRegions(c.DenyRegions)):
		return RuleDenyRegions
	case d.IsNumber() && len(c.AllowRegions) > 0 && !inRegions(c.AllowRegions):
		return RuleAllowRegions
	case d.IsNumber() && (slices.Contains(denyTypes, num.Type.String()) || slices.ContainsFunc(referenceStartTypes(num), func(t NumberType) bool {
		return slices.Contains(denyTypes, t.String())
	})):
		return RuleDenyTypes
	case d.SIP && !hostOK():
		return RuleSIPDomains
	}
	return RuleDefault
}

// referenceStartTypes returns the types of the valid numbers that the
// first digits of num, a possible number that is no valid one, make:
// +81 990 123 456 9 starts with the premium-rate +81 990 123 456, which a
// switch completing the call on it rings.
func referenceStartTypes(num Number) []NumberType {
	pn, err := phonenumbers.Parse(num.E164, "ZZ")
	if err != nil || phonenumbers.IsValidNumber(pn) {
		return nil
	}
	code := "+" + strconv.Itoa(int(pn.GetCountryCode()))
	nsn := strings.TrimPrefix(num.E164, code)
	var types []NumberType
	for l := 1; l < len(nsn); l++ {
		start, err := phonenumbers.Parse(code+nsn[:l], "ZZ")
		if err == nil && phonenumbers.IsValidNumber(start) && phonenumbers.Format(start, phonenumbers.E164) == code+nsn[:l] {
			types = append(types, numberTypes[phonenumbers.GetNumberType(start)])
		}
	}
	return types
}

// referenceDialDigits reads a SIP user (before its parameters) as a
// digit-dialling gateway does: its digits in ASCII, whether a dial
// character (pause, wait, *, #, A-D) stands among them, whether it
// holds another letter, and whether it is then no dial string (a name). A user with
// letters, six digits or more and fewer letters than digits is read by
// its digits alone, as a gateway that keeps only digits dials it: no
// dial character then. ASCII digits and decimal digits of another
// script together are a dial character, name or not: a gateway that
// keeps only ASCII digits dials other digits than one that reads them
// all.
func referenceDialDigits(user string) (digits []rune, dialCharacter, letter, name bool) {
	letters := 0
	for _, r := range user {
		r = referenceFoldDialCharacter(r)
		switch {
		case unicode.IsDigit(r):
			digits = append(digits, '0'+rune(digitValue(r)-'0'))
		case referenceCompatDigits(r) != "":
			// A gateway may dial them or drop them: a dial character.
			digits = append(digits, []rune(referenceCompatDigits(r))...)
			dialCharacter = true
		case strings.ContainsRune(",pPwW*#aAbBcCdD", r):
			dialCharacter = true
		case unicode.IsLetter(r):
			letter = true
			letters++
		}
	}
	if letter && len(digits) >= 6 && letters < len(digits) {
		dialCharacter = false
	}
	if referenceMixedDigits(user) || strings.ContainsFunc(user, func(r rune) bool { return referenceCompatDigits(referenceFoldDialCharacter(r)) != "" }) {
		dialCharacter = true
	}
	return digits, dialCharacter, letter, letter && (len(digits) < 6 || letters >= len(digits))
}

// referenceMixedDigits reports whether s holds ASCII digits and decimal
// digits of another script.
func referenceMixedDigits(s string) bool {
	return strings.ContainsAny(s, "0123456789") && strings.ContainsFunc(s, func(r rune) bool { return r >= 0x80 && unicode.IsDigit(r) })
}

// referenceASCIIDigits is the ASCII digits of s, as a gateway that keeps
// only them dials s.
func referenceASCIIDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if '0' <= r && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// referenceFoldDialCharacter is the dial character (, p w * # A B C D,
// any letter case) that a character other than a letter or a digit is
// a compatibility form of, by Unicode's NFKC (a fullwidth or small
// comma, asterisk or number sign, a circled or squared A or W, a Roman
// numeral C or D), or the character itself.
func referenceFoldDialCharacter(r rune) rune {
	if unicode.IsLetter(r) || unicode.IsDigit(r) {
		return r
	}
	if f := norm.NFKC.String(string(r)); len(f) == 1 && strings.Contains(",pPwW*#aAbBcCdD", f) {
		return rune(f[0])
	}
	return r
}

// referenceCompatDigits is the ASCII digits that a character other than
// a letter or a decimal digit folds onto by Unicode's NFKC (a
// superscript ¹, a circled ⑩), in order; "" for none. A code point that
// no general category of unicode.Version holds (unassigned, as the
// outlined digits of Unicode 16 are to Unicode 15) is the digit "0".
func referenceCompatDigits(r rune) string {
	if unicode.IsLetter(r) || unicode.IsDigit(r) || r < 0x80 {
		return ""
	}
	assigned := false
	for _, cat := range []string{"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po",
		"Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Co", "Cs"} {
		assigned = assigned || unicode.Is(unicode.Categories[cat], r)
	}
	if !assigned {
		return "0"
	}
	var digits strings.Builder
	for _, c := range norm.NFKC.String(string(r)) {
		if '0' <= c && c <= '9' {
			digits.WriteRune(c)
		}
	}
	return digits.String()
}
