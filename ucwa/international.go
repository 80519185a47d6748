package ucwa

// International reports whether d is a phone number outside the default
// region, which an "international" limit counts: its region
// (Number.Region) is not the default region. A number of another region
// that shares the country code (Canada's +1 from the US), a
// non-geographic number ("001": +800, +881, ...) and one of no known
// region (an unassigned North American area code) are all international;
// so are North American toll-free and +1 900 numbers from Canada, since
// phonenumbers puts them in the US. With no default region every number
// is: nothing is home, and a limit meant for calls abroad is not quietly
// turned off. Emergency numbers never are (emergency calls are never
// limited), nor are SIP URIs whose user is a name, which the pool reaches
// over SIP rather than a trunk. A SIP URI whose user is a number is
// judged by that number, and one whose user is a dial string
// (Destination.Dial, or its keypad reading, Destination.Keypad) is
// international when any reading of it is, or when no rule can judge
// it. So is a short code (a user of digits of no reading that the
// limits count, see Policy.IsDialled), emergency numbers aside: no reading puts it in the default region, and the
// premium services that have short codes are what a limit on calls
// abroad is for. An emergency number as written (DialString.Emergency:
// sip:999w911@gw with outside_line 999) is none either, whatever its
// letters read as on a keypad: the policy allows it as an emergency
// number before it looks at that reading, and so does this. It
// allocates nothing.
func (n *Numbers) International(d *Destination) bool {
	if d.Dial != nil && d.Dial.Emergency {
		return false
	}
	if d.Keypad != nil && n.internationalDial(d.Keypad) {
		return true
	}
	if d.Dial != nil {
		return n.internationalDial(d.Dial)
	}
	if !d.IsNumber() || d.Number.Emergency {
		return false
	}
	return n.region == "" || d.Number.Region != n.region
}

// internationalDial is International of a dial string of a destination
// (Dial or Keypad).
func (n *Numbers) internationalDial(dial *DialString) bool {
	if dial.Unjudgeable {
		return true
	}
	if len(dial.Readings) == 0 {
		return !dial.Emergency
	}
	for i := range dial.Readings {
		if r := &dial.Readings[i]; !r.Emergency && (n.region == "" || r.Region != n.region) {
			return true
		}
	}
	return false
}
