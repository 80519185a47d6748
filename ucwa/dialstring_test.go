package ucwa

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestMinDialDigits: the shortest number phonenumbers' data has is +98
// and four digits, so a SIP user of fewer than six digits (an extension)
// is never read as a dial string.
func TestMinDialDigits(t *testing.T) {
	if got := minDialDigits(); got != 6 {
		t.Fatalf("minDialDigits() = %d, want 6", got)
	}
}

// TestDialStringEmergency: a dial string whose every reading is an
// emergency number (one of the list, written in full), or whose digits
// of no reading are an emergency short code, passes as one at a host
// sip_domains lists, and is an emergency call there for the limits, as
// sip:+14255550100@contoso.com;user=phone is; elsewhere it is judged and
// counted as any number. A short code is international to the limits,
// which count it only beyond max_extension_digits (IsDialled).
func TestDialStringEmergency(t *testing.T) {
	n := mustNumbers(t, "US", TelURI, []string{"911", "+14255550100"})
	p, err := NewPolicy(DestinationPolicy{SIPDomains: []string{"contoso.com"}, DenyTypes: []string{"fixed_line_or_mobile"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		value          string
		rule           Rule
		emergencyCall  bool
		international  bool
		dialledNumbers bool
	}{
		{"sip:14255550100@contoso.com", RuleDefault, true, false, true},
		{"sip:14255550100@gw.evil.example", RuleDenyTypes, false, false, true},
		{"sip:14255550101@contoso.com", RuleDenyTypes, false, false, true},
		// An emergency short code in a SIP user of digits is one too, at
		// a host sip_domains lists.
		{"sip:911@contoso.com", RuleEmergency, true, false, true},
		{"sip:911@gw.evil.example", RuleSIPDomains, false, false, true},
		{"sip:118118@contoso.com", RuleShortCode, false, true, true},
		{"sip:1234@contoso.com", RuleDefault, false, true, false},
		{"sip:9,14255550100@contoso.com", RuleDialString, false, true, true},
	} {
		d, problem := n.Destination(c.value)
		if !problem.OK() {
			t.Fatalf("%s: %s", c.value, problem.Reason)
		}
		pd := &PropertyDestination{Property: "to", Kind: DialledNow, Destination: d}
		if got := p.Judge(nil, pd); got.Rule != c.rule {
			t.Errorf("%s: decided by %s, want %s", c.value, got.Rule, c.rule)
		}
		if got := p.IsEmergencyCall(pd); got != c.emergencyCall {
			t.Errorf("%s: IsEmergencyCall = %v, want %v", c.value, got, c.emergencyCall)
		}
		if got := n.International(&d); got != c.international {
			t.Errorf("%s: International = %v, want %v", c.value, got, c.international)
		}
		if got := p.IsDialled(&d); got != c.dialledNumbers {
			t.Errorf("%s: IsDialled = %v, want %v", c.value, got, c.dialledNumbers)
		}
	}
}

// TestDialStringDialCharactersNoEmergency: only a SIP user whose digits
// alone are an emergency number, as written (visual separators
// between them or not) or after an outside-line prefix, is one: a dial
// character among them (9*11, 91#1) makes what a gateway dials
// something else, which the rule emergency does not allow nor the limits
// exempt. Such a user is judged by its digits, as an extension or a
// short code is. Pauses (',', 'p', 'w', any letter case, one or more)
// between an outside-line prefix and the emergency number are the one
// exception (9,911 and 9w911 with outside_line 9: the outside line, a
// pause or a wait for its dial tone, 911), whatever the count of digits
// (0,030123456 with the list's +49 30 123456, in Germany with
// outside_line 0), but only when the user reads as nothing else to a
// gateway that reads the pauses otherwise: its digits without them must
// be an emergency number in every reading (0,12345 with the list's
// 12345 is 012345 to a gateway that drops the pause, +49 12345;
// 9,14255550100 with the list's +14255550100 is 914255550100, the
// Indian +91 42555 50100 and +1 914 255 5501), and with p and w read as
// keypad digits no number (0w030123456 is 09030123456 to a gateway that
// maps letters to keys, +49 9030 123456): such a user is unjudgeable.
// Pauses anywhere else (,911, 9,9,11, 911,), with another dial character
// (9,*911), or without an outside_line prefix (9,911 with none, 99,11)
// are not.
func TestDialStringDialCharactersNoEmergency(t *testing.T) {
	us9 := mustNumbers(t, "US", TelURI, nil, "9")
	us9listed := mustNumbers(t, "US", TelURI, []string{"911", "+14255550100"}, "9")
	us := mustNumbers(t, "US", TelURI, nil)
	de0 := mustNumbers(t, "DE", TelURI, []string{"112", "110", "12345", "+4930123456"}, "0")
	p, err := NewPolicy(DestinationPolicy{SIPDomains: []string{"contoso.com", "*.contoso.com"}, MaxExtensionDigits: ptr(2)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		n         *Numbers
		value     string
		emergency bool
		rule      Rule
	}{
		{us9, "sip:911@gw.contoso.com", true, RuleEmergency},
		{us9, "sip:9911@gw.contoso.com", true, RuleEmergency},
		{us9, "sip:9-1-1@gw.contoso.com", true, RuleEmergency},
		{us9, "sip:112@gw.contoso.com", true, RuleEmergency},
		{us9, "sip:9*11@gw.contoso.com", false, RuleShortCode},
		{us9, "sip:*911@gw.contoso.com", false, RuleShortCode},
		{us9, "sip:911%23@gw.contoso.com", false, RuleShortCode},
		{us9, "sip:91%231@gw.contoso.com", false, RuleShortCode},
		{us9, "sip:9*1@gw.contoso.com", false, RuleDefault},

		{us9, "sip:9,911@gw.contoso.com", true, RuleEmergency},
		{us9, "sip:9p911@gw.contoso.com", true, RuleEmergency},
		{us9, "sip:9P911@gw.contoso.com", true, RuleEmergency},
		{us9, "sip:9w911@gw.contoso.com", true, RuleEmergency},
		{us9, "sip:9W112@gw.contoso.com", true, RuleEmergency},
		{us9, "sip:9,,p911@gw.contoso.com", true, RuleEmergency},
		{us9, "sip:9-,.,9-1-1;x=y@gw.contoso.com", true, RuleEmergency},
		{us9, "sip:9,911@evil.example", true, RuleSIPDomains},
		{us9, "sip:,911@gw.contoso.com", false, RuleShortCode},
		{us9, "sip:911,@gw.contoso.com", false, RuleShortCode},
		{us9, "sip:9,911,@gw.contoso.com", false, RuleShortCode},
		{us9, "sip:9,9,11@gw.contoso.com", false, RuleShortCode},
		{us9, "sip:9,*911@gw.contoso.com", false, RuleShortCode},
		{us9, "sip:9,911%23@gw.contoso.com", false, RuleShortCode},
		{us9, "sip:99,11@gw.contoso.com", false, RuleShortCode},
		{us9, "sip:9,91@gw.contoso.com", false, RuleShortCode},
		{us, "sip:9,911@gw.contoso.com", false, RuleShortCode},
		{us, "sip:9w911@gw.contoso.com", false, RuleShortCode},
		{de0, "sip:0,112@gw.contoso.com", true, RuleEmergency},
		{de0, "sip:0w110@gw.contoso.com", true, RuleEmergency},
		{de0, "sip:0,12345@gw.contoso.com", false, RuleDialString},
		{de0, "sip:0,030123456@gw.contoso.com", true, RuleEmergency},
		{de0, "sip:0w030123456@gw.contoso.com", false, RuleDialString},
		{de0, "sip:0P030123456@gw.contoso.com", false, RuleDialString},
		// Pauses written as many letters among few digits: no vanity
		// number by its count of digits, yet a gateway that maps letters
		// to keys dials 979999999911, the international premium-rate
		// +979 999999911, or 9797979911, +1 979 797 9911 in Texas.
		{us9, "sip:9pwwwwwww911@gw.contoso.com", false, RuleDialString},
		{us9, "sip:9pwpwpw911@gw.contoso.com", false, RuleDialString},
		{us9, "sip:9%E2%93%9F%E2%93%A6wwwwww911@gw.contoso.com", false, RuleDialString},
		{us9, "sip:9ww911@gw.contoso.com", true, RuleEmergency},
		// Fewer digits than a number has, as a gateway that pauses
		// dials them (99, an extension), but 979999999999, the
		// international premium-rate +979 999999999, to one that maps
		// letters to keys; 1w2, 1293 on a keypad, dials nothing either way.
		{us9, "sip:9p9wwwwwwwww@gw.contoso.com", false, RuleDialString},
		{us9, "sip:1w2@gw.contoso.com", false, RuleDefault},
		{us9listed, "sip:9,911@gw.contoso.com", true, RuleEmergency},
		// A letter in a compatibility form (Ⓕ, a Roman numeral Ⅹ) is a
		// letter to a gateway that folds it: no emergency number.
		{us9, "sip:911%E2%92%BB@gw.contoso.com", false, RuleShortCode},
		{us9, "sip:9%E2%85%A9911@gw.contoso.com", false, RuleShortCode},
		{us9, "sip:9%E2%93%A6911@gw.contoso.com", true, RuleEmergency},
		{us9listed, "sip:9,14255550100@gw.contoso.com", false, RuleDialString},
		{us9listed, "sip:9w14255550100@gw.contoso.com", false, RuleDialString},
		{de0, "sip:0,0301234567@gw.contoso.com", false, RuleDialString},
		{de0, "sip:0,1,12@gw.contoso.com", false, RuleShortCode},
	} {
		d, problem := c.n.Destination(c.value)
		if !problem.OK() {
			t.Fatalf("%s: %s", c.value, problem.Reason)
		}
		if d.Dial == nil || d.Dial.Emergency != c.emergency {
			t.Fatalf("%s: read as %+v, want Emergency %v", c.value, d.Dial, c.emergency)
		}
		pd := &PropertyDestination{Property: "to", Kind: DialledNow, Destination: d}
		if got := p.Judge(spa, pd); got.Rule != c.rule {
			t.Errorf("%s: decided by %s, want %s", c.value, got.Rule, c.rule)
		}
		if got, want := p.IsEmergencyCall(pd), c.emergency && c.rule != RuleSIPDomains; got != want {
			t.Errorf("%s: IsEmergencyCall = %v, want %v", c.value, got, want)
		}
	}
}

// TestDialStringPremiumShortCode: a SIP user of digits of no reading, up
// to max_extension_digits, that is a premium-rate short code of the
// default region by phonenumbers' short-number data (France's 3651 and
// 3615), as written or after an outside-line prefix, is refused by
// short_code, and counted by the limits; extensions the data has at no
// premium (1234, 2000, 100 in France; 411 and 2000 in the US, of unknown
// cost; Belgium's premium SMS codes) are delivered as names. The reading
// is cached with the destination: a repeated one costs a lookup.
func TestDialStringPremiumShortCode(t *testing.T) {
	fr := mustNumbers(t, "FR", TelURI, nil)
	fr0 := mustNumbers(t, "FR", TelURI, nil, "0")
	us := mustNumbers(t, "US", TelURI, nil, "9")
	be := mustNumbers(t, "BE", TelURI, nil)
	none := mustNumbers(t, "", TelURI, nil)
	policy := func(maxExtension int) *Policy {
		p, err := NewPolicy(DestinationPolicy{SIPDomains: []string{"*.contoso.com"}, MaxExtensionDigits: ptr(maxExtension)})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	four, six := policy(4), policy(6)
	for _, c := range []struct {
		n       *Numbers
		p       *Policy
		value   string
		premium bool
		rule    Rule
	}{
		{fr, four, "sip:3651@gw.contoso.com", true, RuleShortCode},
		{fr, four, "sip:3615@gw.contoso.com", true, RuleShortCode},
		{fr, four, "sip:36-51@gw.contoso.com", true, RuleShortCode},
		{fr, four, "sip:36*51@gw.contoso.com", true, RuleShortCode},
		{fr, four, "sip:3651@gw.elsewhere.example", true, RuleSIPDomains},
		{fr, four, "sip:1234@gw.contoso.com", false, RuleDefault},
		{fr, four, "sip:2000@gw.contoso.com", false, RuleDefault},
		{fr, four, "sip:100@gw.contoso.com", false, RuleDefault},
		{fr, four, "sip:3000@gw.contoso.com", false, RuleDefault},
		{fr, four, "sip:112@gw.contoso.com", false, RuleEmergency},
		{fr0, six, "sip:03651@gw.contoso.com", true, RuleShortCode},
		{fr0, six, "sip:01234@gw.contoso.com", false, RuleDefault},
		{us, four, "sip:411@gw.contoso.com", false, RuleDefault},
		{us, four, "sip:9411@gw.contoso.com", false, RuleDefault},
		{us, four, "sip:2000@gw.contoso.com", false, RuleDefault},
		{be, four, "sip:3000@gw.contoso.com", false, RuleDefault},
		{none, four, "sip:3651@gw.contoso.com", false, RuleDefault},
	} {
		d, problem := c.n.Destination(c.value)
		if !problem.OK() {
			t.Fatalf("%s: %s", c.value, problem.Reason)
		}
		if d.Dial == nil || d.Dial.Premium != c.premium {
			t.Fatalf("%s in %q: read as %+v, want Premium %v", c.value, c.n.DefaultRegion(), d.Dial, c.premium)
		}
		pd := &PropertyDestination{Property: "to", Kind: DialledNow, Destination: d}
		dec := c.p.Judge(spa, pd)
		if dec.Rule != c.rule {
			t.Errorf("%s in %q: decided by %s, want %s", c.value, c.n.DefaultRegion(), dec.Rule, c.rule)
		}
		if e := RefusalError(pd, dec); c.rule == RuleShortCode && (e == nil || !strings.Contains(e.Message, "premium-rate short code")) {
			t.Errorf("%s: refusal %+v does not say it is a premium-rate short code", c.value, e)
		}
		if c.premium && !c.p.IsDialled(&d) {
			t.Errorf("%s: a premium short code is not dialled", c.value)
		}
		if again, _ := c.n.Destination(c.value); again.Dial != d.Dial {
			t.Errorf("%s: read again, not from the cache", c.value)
		}
	}
}

// TestDialStringKeypad: a SIP user that holds letters after at least
// three digits and no letter before them (a vanity number,
// 1-900-FLOWERS, also after a separator: (900)FLOWERS) is read also
// with its letters as the digits of a phone keypad, and judged so as a
// dial string: sip:1900FLOWERS@gw rings +1 900 356 9377 at a gateway
// that maps letters to keys, and is refused under deny +1900, the
// message saying why and never the number; so is one whose letters are
// all dial characters (1900PAWPAWP), which as written is an extension
// of four digits. So is a number with a letter or a few for some of its
// digits, wherever they stand, when six digits or more are left
// (1X005551234, G42071234567). The reading only adds refusals: names
// (alice, john.smith, user1, 2ndfloor, 24hours, lenea, john.smith2) are
// not read so, an
// allowed vanity number is delivered as written, and a telephone user
// with letters (sip:+1800FLOWERS@gw) is refused as before.
func TestDialStringKeypad(t *testing.T) {
	n := mustNumbers(t, "US", TelURI, nil)
	p, err := NewPolicy(DestinationPolicy{Deny: []string{"+1900"}, SIPDomains: []string{"*.contoso.com"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		value  string
		keypad []string // dialSummary of Keypad
		rule   Rule
		masked string
		dial   []string // dialSummary of Dial, a name's digits alone; nil: none
	}{
		{"sip:1900FLOWERS@gw.contoso.com", []string{"+19003569377"}, RuleDeny, "sip:+1900356****@gw.contoso.com", nil},
		{"sip:1-900-flowers@gw.contoso.com", []string{"+19003569377"}, RuleDeny, "sip:+1900356****@gw.contoso.com", nil},
		{"sip:1900PAWPAWP@gw.contoso.com", []string{"+19007297297"}, RuleDeny, "sip:+1900729****@gw.contoso.com", nil},
		{"sip:(900)FLOWERS@gw.contoso.com", []string{"+19003569377", "+903569377"}, RuleDeny, "sip:+1900356****@gw.contoso.com", nil},
		{"sip:(1)900-FLOWERS@gw.contoso.com", []string{"+19003569377"}, RuleDeny, "sip:+1900356****@gw.contoso.com", nil},
		{"sip:-1900FLOWERS@gw.contoso.com", []string{"+19003569377"}, RuleDeny, "sip:+1900356****@gw.contoso.com", nil},
		{"sip:*1900FLOWERS@gw.contoso.com", []string{"?"}, RuleDialString, "sip:****@gw.contoso.com", nil},
		{"sip:(2)nd-floor@gw.contoso.com", nil, RuleDefault, "sip:****@gw.contoso.com", nil},
		{"sip:1900FLOWERS@gw.elsewhere.example", []string{"+19003569377"}, RuleDeny, "sip:+1900356****@gw.elsewhere.example", nil},
		{"sip:1900FLOWERS*1@gw.contoso.com", []string{"?"}, RuleDialString, "sip:****@gw.contoso.com", nil},
		{"sip:1900FLOW@gw.contoso.com", nil, RuleShortCode, "sip:****@gw.contoso.com", nil},
		{"sip:1800FLOWERS@gw.contoso.com", []string{"+18003569377"}, RuleDefault, "sip:+1800356****@gw.contoso.com", nil},
		{"sip:1800PAWPAWP@gw.contoso.com", []string{"+18007297297"}, RuleDefault, "sip:+1800729****@gw.contoso.com", nil},
		{"sip:alice@gw.contoso.com", nil, RuleDefault, "sip:****@gw.contoso.com", nil},
		{"sip:john.smith@gw.contoso.com", nil, RuleDefault, "sip:****@gw.contoso.com", nil},
		{"sip:user1@gw.contoso.com", nil, RuleDefault, "sip:****@gw.contoso.com", nil},
		{"sip:2ndfloor@gw.contoso.com", nil, RuleDefault, "sip:****@gw.contoso.com", nil},
		{"sip:24hours@gw.contoso.com", nil, RuleDefault, "sip:****@gw.contoso.com", nil},
		{"sip:1900%C3%A9t%C3%A9@gw.contoso.com", nil, RuleDefault, "sip:****@gw.contoso.com", nil},
		// A letter or a few for some of a number's digits, wherever they
		// stand: six digits or more are no name's.
		// They are also read by their digits alone, as a gateway that
		// keeps only digits dials them, which judged first may refuse
		// them sooner.
		{"sip:1X005551234@gw.contoso.com", []string{"+19005551234"}, RuleDeny, "sip:+1900555****@gw.contoso.com", []string{"+11005551234"}},
		{"sip:1-x00-555-1234@gw.contoso.com", []string{"+19005551234"}, RuleDeny, "sip:+1900555****@gw.contoso.com", []string{"+11005551234"}},
		{"sip:1W00JJJ1234@gw.contoso.com", []string{"+19005551234"}, RuleShortCode, "sip:+1900555****@gw.contoso.com", []string{}},
		{"sip:G42071234567@gw.contoso.com", []string{"+442071234567"}, RuleDialString, "sip:+44207123****@gw.contoso.com", []string{"?"}},
		{"sip:lenea@gw.contoso.com", nil, RuleDefault, "sip:****@gw.contoso.com", nil},
		{"sip:john.smith2@gw.contoso.com", nil, RuleDefault, "sip:****@gw.contoso.com", nil},
		{"sip:j.smith.12345@gw.contoso.com", nil, RuleDefault, "sip:****@gw.contoso.com", nil},
	} {
		d, problem := n.Destination(c.value)
		if !problem.OK() {
			t.Fatalf("%s: %s", c.value, problem.Reason)
		}
		if d.Value != c.value || c.dial == nil && d.Dial != nil && !strings.Contains(c.value, "PAWPAWP") || c.dial != nil && !slices.Equal(dialSummary(d.Dial), c.dial) {
			t.Errorf("%s: forwarded as %q, dial string %+v", c.value, d.Value, d.Dial)
		}
		if got := dialSummary(d.Keypad); !slices.Equal(got, c.keypad) || d.Keypad != nil && d.Keypad.Emergency {
			t.Fatalf("%s: read with its letters as keypad digits as %q, want %q", c.value, got, c.keypad)
		}
		pd := &PropertyDestination{Property: "to", Kind: DialledNow, Destination: d}
		dec := p.Judge(spa, pd)
		if dec.Rule != c.rule {
			t.Errorf("%s: decided by %s, want %s", c.value, dec.Rule, c.rule)
		}
		if got := dec.Masked(&d); got != c.masked {
			t.Errorf("%s: masked as %q, want %q", c.value, got, c.masked)
		}
		if e := RefusalError(pd, dec); e != nil && c.keypad != nil && c.dial == nil && (!strings.Contains(e.Message, "keypad") || strings.Contains(e.Message, "3569377")) {
			t.Errorf("%s: refusal %q does not say the letters were read as keypad digits, or shows the number", c.value, e.Message)
		}
		if c.keypad != nil && !p.IsDialled(&d) {
			t.Errorf("%s: a vanity number is not dialled", c.value)
		}
	}
	for _, v := range []string{"sip:+1800FLOWERS@gw.contoso.com", "sip:+1X005551234@gw.contoso.com"} {
		if _, problem := n.Destination(v); problem.OK() || problem.Subcode != SubcodeNormalizationFailed {
			t.Errorf("%s: %+v, want NormalizationFailed", v, problem)
		}
	}
	// An emergency number as written (an outside line of three digits,
	// a wait, 911) whose letters read on a keypad as no number
	// (9999911) is shown as one, not as its keypad reading: the audit's
	// emergency field comes of it. One whose letters read as a number
	// (999wwww911: 9999999911, +1 999 999 9911) is no emergency number
	// but unjudgeable: a gateway that maps letters to keys dials that.
	n999 := mustNumbers(t, "US", TelURI, nil, "999")
	d, problem := n999.Destination("sip:999w911@gw.contoso.com")
	if !problem.OK() || d.Dial == nil || !d.Dial.Emergency || d.Keypad == nil || len(d.Keypad.Readings) != 0 {
		t.Fatalf("sip:999w911@gw: %+v %+v, want an emergency number with a keypad reading of no number", d, problem)
	}
	if num := (Decision{}).Number(&d); num != nil {
		t.Errorf("sip:999w911@gw: shown as its keypad reading %+v", num)
	}
	d, problem = n999.Destination("sip:999wwww911@gw.contoso.com")
	if !problem.OK() || d.Dial == nil || d.Dial.Emergency || !d.Dial.Unjudgeable || d.Keypad == nil || len(d.Keypad.Readings) == 0 {
		t.Fatalf("sip:999wwww911@gw: %+v %+v, want an unjudgeable dial string with a keypad reading", d, problem)
	}
}

// TestDialStringOutsideLine: a dial string that starts with an
// outside_line prefix is read also as the digits after it, never instead:
// at a US gateway that takes 9, sip:919005551234@gw rings +1 900 555 1234
// as well as, as written, the Indian +91 900 555 1234, and the policy
// refuses it when any reading is refused, naming the outside line. A
// prefix leaving fewer than six digits, digits that do not start with
// it, and phone numbers (forwarded in E.164, which no gateway reads an
// outside line in) are read as without it. Digits in a user's
// parameters, which a gateway that dials its digits dials too, make it
// unjudgeable: also when they are all its digits (sip:-;19005551234@gw),
// or make a name mostly digits (sip:x;19005551234@gw), as they do
// sip:x19005551234@gw.
func TestDialStringOutsideLine(t *testing.T) {
	us := mustNumbers(t, "US", TelURI, nil, "9")
	de := mustNumbers(t, "DE", E164, nil, "0")
	both := mustNumbers(t, "US", TelURI, nil, "9", "81")
	policy, err := NewPolicy(DestinationPolicy{Deny: []string{"+1900"}, OutsideLine: []string{"9"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		n        *Numbers
		value    string
		readings []string // dialSummary; nil for a name or a phone number
		written  int
		rule     Rule
		outside  bool // the refusal names the outside line
	}{
		{"9 and a premium number", us, "sip:919005551234@gw.contoso.com", []string{"+919005551234", "+19005551234"}, 1, RuleDeny, true},
		{"9 and a number in national form", us, "sip:9-425-555-1234@gw.contoso.com", []string{"+94255551234", "+19425555123", "+14255551234"}, 2, RuleDefault, false},
		{"a number that starts with 9 is read as written too", us, "sip:9725551234@gw.contoso.com", []string{"+19725551234", "+9725551234"}, 2, RuleDefault, false},
		{"as written it is refused first", us, "sip:19005551234@gw.contoso.com", []string{"+19005551234"}, 1, RuleDeny, false},
		{"9 and a number too long for it as written", us, "sip:9011442071234567@gw.contoso.com", []string{"?"}, 0, RuleDialString, false},
		{"9, a premium number and a digit more", us, "sip:9190055512349@gw.contoso.com", []string{"?"}, 0, RuleDialString, false},
		{"9 and a short code, four digits in all, is an extension", us, "sip:9411@gw.contoso.com", nil, 0, RuleDefault, false},
		{"9 and eight digits of no reading are a short code", us, "sip:912345678@gw.contoso.com", nil, 0, RuleShortCode, false},
		{"9 and a premium short code", us, "sip:911880@gw.contoso.com", nil, 0, RuleShortCode, false},
		{"9 and 911 is an emergency number", us, "sip:9911@gw.contoso.com", nil, 0, RuleEmergency, false},
		{"a number in a parameter's digits", us, "sip:1;9005551234@gw.contoso.com", []string{"?"}, 0, RuleDialString, false},
		{"9 and a number after an escaped ';', which is no delimiter", us, "sip:9%3B19005551234@gw.contoso.com", []string{"?"}, 0, RuleDialString, false},
		{"911 and a number in a parameter is no emergency number", us, "sip:911;19005551234@gw.contoso.com", []string{"?"}, 0, RuleDialString, false},
		{"911 and circled digits in a parameter is no emergency number", us, "sip:911;%E2%91%A0%E2%91%A8%E2%93%AA%E2%93%AA@gw.contoso.com", []string{"?"}, 0, RuleDialString, false},
		{"911 and a superscript digit in a parameter's value", us, "sip:911;x=%C2%B9@gw.contoso.com", []string{"?"}, 0, RuleDialString, false},
		{"911 and an unassigned code point in a parameter", us, "sip:911;%F0%9C%B3%B1@gw.contoso.com", []string{"?"}, 0, RuleDialString, false},
		{"911 and a parameter of letters is an emergency number", us, "sip:911;x=pp@gw.contoso.com", nil, 0, RuleEmergency, false},
		{"a name whose parameter is a number", us, "sip:x;19005551234@gw.contoso.com", []string{"?"}, 0, RuleDialString, false},
		{"a name and a number after an escaped ';'", us, "sip:x%3B19005551234@gw.contoso.com", []string{"?"}, 0, RuleDialString, false},
		{"a name and a number in a named parameter", us, "sip:john;n=19005551234@gw.contoso.com", []string{"?"}, 0, RuleDialString, false},
		{"a name of dial characters and a number in a parameter", us, "sip:pw;19005551234@gw.contoso.com", []string{"?"}, 0, RuleDialString, false},
		{"a number in a parameter after no digit", us, "sip:-;19005551234@gw.contoso.com", []string{"?"}, 0, RuleDialString, false},
		{"a number after an escaped ';' alone", us, "sip:%3B19005551234@gw.contoso.com", []string{"?"}, 0, RuleDialString, false},
		{"a name and digits that make it mostly digits only with its parameter", us, "sip:x12345;6@gw.contoso.com", []string{"?"}, 0, RuleDialString, false},
		{"a name and a few digits in a parameter is a name", us, "sip:x;1234@gw.contoso.com", nil, 0, RuleDefault, false},
		{"a name whose parameters hold more letters than digits is a name", us, "sip:alice;day=tuesday;room=123456@gw.contoso.com", nil, 0, RuleDefault, false},
		{"a name of digits before its ';' is read so, whatever letters its parameters hold", us, "sip:x19005551234;qqqqqqqqqqqqqqqq@gw.contoso.com", []string{"+19005551234"}, 1, RuleDeny, false},
		{"0 and a short code after a number's digits", de, "sip:011880@gw.contoso.com", []string{"+4911880"}, 1, RuleShortCode, true},
		{"0 and an extension after a number's digits", de, "sip:0301234@gw.contoso.com", []string{"+49301234"}, 1, RuleDefault, false},
		{"a two-digit prefix", both, "sip:8119005551234@gw.contoso.com", []string{"+8119005551234", "+19005551234"}, 1, RuleDeny, true},
		{"0 and 0900 in Germany", de, "sip:009001234567@gw.contoso.com", []string{"+901234567", "+499001234567"}, 1, RuleDenyTypes, true},
		{"0 and a number in national form", de, "sip:00301234567@gw.contoso.com", []string{"+49301234567"}, 0, RuleDefault, false},
		{"0 and 00: abroad", de, "sip:000442071234567@gw.contoso.com", []string{"+442071234567"}, 0, RuleDefault, false},
		{"a bare number is forwarded in E.164", us, "9 1 900 555 1234", nil, 0, RuleNone, false},
		{"a bare number in Germany", de, "0 0900 1234567", nil, 0, RuleDefault, false},
		{"a telephone SIP user", de, "sip:009001234567@gw.contoso.com;user=phone", nil, 0, RuleDefault, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, ok := readDestination(t, c.n, c.value, c.rule == RuleNone, c.readings)
			if !ok {
				return
			}
			if d.Dial != nil && d.Dial.Written != c.written {
				t.Errorf("Written = %d, want %d", d.Dial.Written, c.written)
			}
			if !d.SIP && (d.Value[0] != '+' || d.Number.E164 != d.Value) {
				t.Errorf("forwarded as %q, want its E.164 form", d.Value)
			}
			pd := &PropertyDestination{Property: "to", Kind: DialledNow, Destination: d}
			dec := policy.Judge(spa, pd)
			if dec.Rule != c.rule {
				t.Fatalf("decided by %s, want %s", dec.Rule, c.rule)
			}
			if e := RefusalError(pd, dec); e != nil && strings.Contains(e.Message, "outside-line") != c.outside {
				t.Errorf("refusal %q: names the outside line %v, want %v", e.Message, !c.outside, c.outside)
			}
		})
	}
}

// TestDialStringNationalLength: in a region whose national numbers have
// one length (the NANP's ten digits), a dial string of more digits than
// a national number is read also as its first national digits, which a
// switch there completes the call on (sending the rest as tones or
// dropping them): sip:900555123400@gw, whose only other reading is the
// Turkish +90 0555123400, is +1 900 555 1234 to a US or Canadian gateway
// and refused under the default policy. Only a valid number is such a
// reading (sip:442071234567@gw is no +1 442 071 2345, whose exchange no
// number has), never an emergency number, and only as the region dials
// it: France dials its national numbers after a 0, so digits without
// it are none there; regions of several lengths (Germany) get none.
// Digits too long for every other reading stay unjudgeable, and phone
// numbers (tel:, a bare number, a telephone SIP user) are read as the
// one number they are.
func TestDialStringNationalLength(t *testing.T) {
	us := mustNumbers(t, "US", TelURI, nil)
	us81 := mustNumbers(t, "US", TelURI, nil, "81")
	usEmergency := mustNumbers(t, "US", TelURI, []string{"911", "+19005551234"})
	ca := mustNumbers(t, "CA", TelURI, nil)
	fr := mustNumbers(t, "FR", TelURI, nil)
	dk := mustNumbers(t, "DK", TelURI, nil)
	de := mustNumbers(t, "DE", TelURI, nil)
	policy, err := NewPolicy(DestinationPolicy{SIPDomains: []string{"*.contoso.com"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		n        *Numbers
		value    string
		readings []string // dialSummary; nil for a phone number
		rule     Rule     // RuleNone: not a destination
	}{
		{"two digits behind a US premium number", us, "sip:900555123400@gw.contoso.com", []string{"+900555123400", "+19005551234"}, RuleDenyTypes},
		{"with separators", us, "sip:(900)-555-1234-00@gw.contoso.com", []string{"+900555123400", "+19005551234"}, RuleDenyTypes},
		{"escaped, with a Unicode hyphen", us, "sip:900555%E2%80%90123400@gw.contoso.com", []string{"+900555123400", "+19005551234"}, RuleDenyTypes},
		{"a name read by its digits", us, "sip:x900555123400@gw.contoso.com", []string{"+900555123400", "+19005551234"}, RuleDenyTypes},
		{"after an outside-line prefix", us81, "sip:81-900555123400@gw.contoso.com", []string{"+81900555123400", "+900555123400", "+19005551234"}, RuleDenyTypes},
		{"in Canada", ca, "sip:900555123400@gw.contoso.com", []string{"+900555123400", "+19005551234"}, RuleDenyTypes},
		{"never an emergency number", usEmergency, "sip:900555123400@gw.contoso.com", []string{"+900555123400", "+19005551234"}, RuleDenyTypes},
		{"the trunk 1 and digits behind: no reading as written", us, "sip:1900555123400@gw.contoso.com", []string{"?"}, RuleDialString},
		{"an allowed number and a digit more", us, "sip:61255512345@gw.contoso.com", []string{"+61255512345", "+16125551234"}, RuleDefault},
		{"no valid national number", us, "sip:442071234567@gw.contoso.com", []string{"+442071234567"}, RuleDefault},
		{"the international prefix", us, "sip:011442071234567@gw.contoso.com", []string{"+442071234567"}, RuleDefault},
		{"the trunk 1 and a number", us, "sip:14255551234@gw.contoso.com", []string{"+14255551234"}, RuleDefault},
		{"ten digits", us, "sip:9005551234@gw.contoso.com", []string{"+19005551234", "+905551234"}, RuleDenyTypes},
		{"France dials after a 0", fr, "sip:33142345678@gw.contoso.com", []string{"+33142345678"}, RuleDefault},
		{"Denmark dials eight digits", dk, "sip:4533123456@gw.contoso.com", []string{"+4533123456", "+4545331234"}, RuleDefault},
		{"Germany's numbers have many lengths", de, "sip:425555123400@gw.contoso.com", []string{"+49425555123400"}, RuleDefault},
		// As written it is the premium-rate +49 900 5551234 and two
		// digits, which deny_types judges as that number (Number.Starts).
		{"a German premium number and digits", de, "sip:900555123400@gw.contoso.com", []string{"+49900555123400", "+900555123400"}, RuleDenyTypes},
		{"a tel: URI is one number", us, "tel:900555123400", nil, RuleNone},
		{"a bare number is one number", us, "900555123400", nil, RuleNone},
		{"a telephone SIP user is one number", us, "sip:900555123400@gw.contoso.com;user=phone", nil, RuleNone},
		{"a telephone SIP user in Turkey", us, "sip:+905551234567@gw.contoso.com;user=phone", nil, RuleDefault},
		// +90 0555123400 is 00555123400 to a Turkish gateway that dials
		// +90 numbers nationally: abroad, and no number.
		{"a telephone SIP user in Turkey, 00 nationally", us, "sip:+900555123400@gw.contoso.com;user=phone", nil, RuleNone},
		{"a US number and an extension", us, "tel:+19005551234;ext=00", nil, RuleDenyTypes},
		{"an allowed US number and an extension", us, "tel:+14255551234;ext=00", nil, RuleDefault},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, ok := readDestination(t, c.n, c.value, c.rule == RuleNone, c.readings)
			if !ok {
				return
			}
			if d.Dial != nil {
				for _, r := range d.Dial.Readings {
					if r.Emergency {
						t.Errorf("reading %s is an emergency number", r.E164)
					}
				}
			}
			pd := &PropertyDestination{Property: "to", Kind: DialledNow, Destination: d}
			if dec := policy.Judge(spa, pd); dec.Rule != c.rule {
				t.Fatalf("decided by %s, want %s", dec.Rule, c.rule)
			}
		})
	}
}

// TestCheckOutsideLine: outside_line entries are 1 to 4 digits, at most
// 16 of them (each adds readings, whose index a Decision keeps in a
// uint8), and an error names the entry by position, never its digits.
func TestCheckOutsideLine(t *testing.T) {
	prefixes := func(n int) []string {
		var list []string
		for i := range n {
			list = append(list, strconv.Itoa(10+i))
		}
		return list
	}
	for _, c := range []struct {
		list []string
		err  string
	}{
		{nil, ""},
		{[]string{"9", " 0 ", "81", "1234"}, ""},
		{[]string{"9", "12345"}, "outside_line: entry 2 of 2 is not an outside-line prefix: 1 to 4 digits (9, or 0)"},
		{[]string{""}, `outside_line: entry 1 of 1 ("") is not an outside-line prefix: 1 to 4 digits (9, or 0)`},
		{[]string{"+9"}, "outside_line: entry 1 of 1 is not an outside-line prefix: 1 to 4 digits (9, or 0)"},
		{[]string{"nine"}, `outside_line: entry 1 of 1 ("nine") is not an outside-line prefix: 1 to 4 digits (9, or 0)`},
		{[]string{"٩"}, `outside_line: entry 1 of 1 is not an outside-line prefix: 1 to 4 digits (9, or 0)`},
		{prefixes(16), ""},
		{prefixes(17), "outside_line: 17 prefixes given, at most 16 are allowed"},
		{prefixes(200), "outside_line: 200 prefixes given, at most 16 are allowed"},
	} {
		err := CheckOutsideLine(c.list)
		if got := fmt.Sprint(err); c.err == "" && err != nil || c.err != "" && got != c.err {
			t.Errorf("%q: %v, want %q", c.list, err, c.err)
		}
		_, perr := NewPolicy(DestinationPolicy{OutsideLine: c.list})
		_, nerr := NewNumbers("US", TelURI, nil, c.list...)
		if fmt.Sprint(perr) != fmt.Sprint(err) || fmt.Sprint(nerr) != fmt.Sprint(err) {
			t.Errorf("%q: NewPolicy %v, NewNumbers %v; want %v", c.list, perr, nerr, err)
		}
	}
}

// TestDialStringEscapedTwice: a SIP name escaped twice holds, decoded
// once as the edge reads it, other digits than a gateway that decodes it
// once more dials (as one may that finds a URI in it:
// sip:tel%253A%252B19005551234@gw is refused for that): the edge reads
// sip:%2531%2539005551234@gw as %31%39005551234, the digits
// 3139005551234 (+31 39005551234, in the Netherlands), where such a
// gateway dials 19005551234, +1 900. Which decoding a gateway dials no
// rule can tell: the user is a dial string no rule can judge
// (dial_string), dialled and international to the limits. A name that
// no decoding makes a dial string or a vanity number stays a name, and a
// '%' that starts no escape is no second one.
func TestDialStringEscapedTwice(t *testing.T) {
	n := mustNumbers(t, "US", TelURI, nil)
	p, err := NewPolicy(DestinationPolicy{SIPDomains: []string{"gw.contoso.com"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		value string
		rule  Rule
	}{
		{"sip:%2531%2539005551234@gw.contoso.com", RuleDialString}, // 19005551234 decoded twice
		{"sip:%254919005551234@gw.contoso.com", RuleDialString},    // I19005551234 decoded twice
		{"sip:%2531%2539%2530%2530555%2531234@gw.contoso.com", RuleDialString},
		{"sip:1%25u0039005551234@gw.contoso.com", RuleDialString}, // %u0039, IIS's escape of 9
		{"sip:1900%2546LOWERS@gw.contoso.com", RuleDialString},    // 1900FLOWERS decoded twice
		{"sip:john%2525smith@gw.contoso.com", RuleDefault},        // john%smith: a name in every decoding
		{"sip:100%25@gw.contoso.com", RuleDefault},                // 100%: no escape left
		{"sip:14255551234@gw.contoso.com", RuleDefault},
	} {
		d, problem := n.Destination(c.value)
		if !problem.OK() {
			t.Fatalf("%s: %s", c.value, problem.Reason)
		}
		if d.Value != c.value {
			t.Errorf("%s: forwarded as %s", c.value, d.Value)
		}
		pd := &PropertyDestination{Property: "to", Kind: DialledNow, Destination: d}
		if got := p.Judge(nil, pd); got.Rule != c.rule {
			t.Errorf("%s: decided by %s, want %s", c.value, got.Rule, c.rule)
		}
		if c.rule == RuleDialString && (!p.IsDialled(&d) || !n.International(&d)) {
			t.Errorf("%s: IsDialled %v, International %v; want both", c.value, p.IsDialled(&d), n.International(&d))
		}
	}
}

// readDestination reads value with n: it fails unless the value is
// refused when refused (and then reports false), else read with the
// dial-string readings readings (see dialSummary).
func readDestination(t *testing.T, n *Numbers, value string, refused bool, readings []string) (Destination, bool) {
	t.Helper()
	d, problem := n.Destination(value)
	if refused {
		if problem.OK() {
			t.Fatalf("read as %+v, want refused", d)
		}
		return d, false
	}
	if !problem.OK() {
		t.Fatal(problem.Reason)
	}
	if got := dialSummary(d.Dial); !slices.Equal(got, readings) {
		t.Fatalf("readings %q, want %q", got, readings)
	}
	return d, true
}
