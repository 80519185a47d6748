package ucwa

import "testing"

// TestMinDialDigits: the shortest number phonenumbers' data has is +98
// and four digits, so a SIP user of fewer than six digits (an extension)
// is never read as a dial string.
func TestMinDialDigits(t *testing.T) {
	if got := minDialDigits(); got != 6 {
		t.Fatalf("minDialDigits() = %d, want 6", got)
	}
}

// TestDialStringEmergency: a dial string whose every reading is an
// emergency number (one of the list, written in full) passes as one at
// a host sip_domains lists, and is an emergency call there for the
// limits, as sip:+14255550100@contoso.com;user=phone is; elsewhere it is
// judged and counted as any number.
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
		{"sip:911@contoso.com", RuleDefault, false, false, false},
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
		if got := d.IsDialled(); got != c.dialledNumbers {
			t.Errorf("%s: IsDialled = %v, want %v", c.value, got, c.dialledNumbers)
		}
	}
}
