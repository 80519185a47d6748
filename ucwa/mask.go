package ucwa

import (
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers/v2"
)

// Masking: destinations as the audit trail writes them. A full number,
// a SIP user or a property's other content never appears; what remains
// tells an administrator where a call went (the country and area of a
// number, the domain of a SIP address) without telling who was called.

// maskedKeepNational is the most digits after the country code a masked
// number shows: enough for an area code and an exchange, never the line.
const maskedKeepNational = 6

// maskedMinHidden is the fewest trailing digits a masked number hides.
const maskedMinHidden = 4

// maskedRun is the length of the shortest digit run a masked form never
// shows of a number's end.
const maskedRun = 5

// maskedSecret replaces a part that is shown not at all: a SIP user
// that is a name, an extension.
const maskedSecret = "****"

// Masked returns the number for logs: '+', the country code and up to
// six more digits, then one '*' for each other digit, always at least
// the last four: +14255551234 is +1425555****, +442071234567 is
// +44207123****. The digits shown never hold the number's last five
// digits in a row, even in a number of repeated digits (+11111111111
// is +1111*******). An extension is ";ext=****". An emergency short
// code ("911") is shown whole: it is a public service, not a person,
// and an administrator reading the trail must see emergency calls.
func (n Number) Masked() string {
	var buf [maskedBuffer]byte
	return string(appendMaskedNumber(buf[:0], &n))
}

// maskedBuffer is room for a typical masked destination, on the stack.
const maskedBuffer = 128

func appendMaskedNumber(b []byte, n *Number) []byte {
	return appendMaskedReading(b, n, nil)
}

// appendMaskedReading is appendMaskedNumber of n, a reading of the dial
// string of d (nil: none), whose digits shown never hold another of its
// readings whole: a user of digits and letters read as written and on
// the keypad (sip:900555soco@gw, in Germany +49900555 and
// +499005557626) would otherwise show the one as the other's first
// digits.
func appendMaskedReading(b []byte, n *Number, d *Destination) []byte {
	e := n.E164
	if n.OutsideLine {
		// An outside-line prefix and an emergency code, hidden as the
		// SIP user of those digits is (see Number.OutsideLine).
		return append(b, maskedSecret...)
	}
	if n.Emergency && e != "" && e[0] != '+' && len(e) <= maxEmergencyShortCode && asciiDigits(e) {
		return append(b, e...)
	}
	digits, ok := strings.CutPrefix(e, "+")
	if !ok || !asciiDigits(digits) {
		// Not a normalized number: show nothing of it.
		return append(b, maskedSecret...)
	}
	keep := min(countryCodeLength(digits)+maskedKeepNational, len(digits)-maskedMinHidden)
	if len(digits) >= maskedRun {
		for end := digits[len(digits)-maskedRun:]; keep >= maskedRun && strings.Contains(digits[:keep], end); {
			keep--
		}
	}
	for keep > 0 && d.showsReading(digits[:keep]) {
		keep--
	}
	keep = max(keep, 0)
	b = append(b, '+')
	b = append(b, digits[:keep]...)
	for range len(digits) - keep {
		b = append(b, '*')
	}
	if n.Extension != "" {
		b = append(b, ";ext="+maskedSecret...)
	}
	return b
}

// showsReading reports whether shown holds the digits of a reading of
// d's dial string, as written or on the keypad, whole.
func (d *Destination) showsReading(shown string) bool {
	if d == nil {
		return false
	}
	for _, dial := range [2]*DialString{d.Dial, d.Keypad} {
		if dial == nil {
			continue
		}
		for i := range dial.Readings {
			if r := strings.TrimPrefix(dial.Readings[i].E164, "+"); r != "" && strings.Contains(shown, r) {
				return true
			}
		}
	}
	return false
}

// countryCodeLength returns how many leading digits of an E.164 number's
// digits are its country code (country codes are prefix-free: one of 1,
// 2 or 3 digits matches); 0 when none does.
func countryCodeLength(digits string) int {
	codes := countryCodes()
	cc := 0
	for i := 0; i < 3 && i < len(digits); i++ {
		cc = cc*10 + int(digits[i]-'0')
		if codes[cc] {
			return i + 1
		}
	}
	return 0
}

// countryCodes tells which of the numbers below 1000 are country codes
// (phonenumbers knows regions of): an audit line masks a number or two,
// and a look-up here costs a fraction of one in phonenumbers' map. The
// metadata it is built from is phonenumbers' embedded one, which nothing
// here swaps (metadata.Use).
var countryCodes = sync.OnceValue(func() *[1000]bool {
	var codes [1000]bool
	for cc := range codes {
		codes[cc] = len(phonenumbers.GetRegionCodesForCountryCode(cc)) > 0
	}
	return &codes
})

func asciiDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Masked returns the destination for logs. A phone number is masked as
// Number.Masked does ("+1425555****"). A SIP URI keeps its scheme and
// host, which sip_domains judges and which names an organisation rather
// than a person, and hides its user: sip:john@contoso.com is
// sip:****@contoso.com, and sip:+14255551234@gw.contoso.com;user=phone
// is sip:+1425555****@gw.contoso.com. Its port and parameters are
// dropped, and a host with more than four digits in all has every digit
// masked (see appendMaskedHost), so that no part of the URI can carry a
// number into the log. The zero Destination is "".
func (d Destination) Masked() string {
	var buf [maskedBuffer]byte
	return string(d.AppendMasked(buf[:0]))
}

// AppendMasked appends the destination as Masked returns it to b, so
// that a log encoder can take it without a string of its own. A dial
// string (Dial) shows its first reading, and a vanity number that as
// written is a name or a dial string of no reading (1800PAWPAWP) the
// first reading of its letters as keypad digits (Keypad);
// Decision.AppendMasked shows the one a decision judged.
func (d *Destination) AppendMasked(b []byte) []byte {
	return d.appendMasked(b, Decision{}.Number(d))
}

// AppendMasked appends d as Destination.AppendMasked does, but a dial
// string shows the reading dec judged it by (Decision.Number): the
// refused one (also of its keypad reading, Destination.Keypad), else
// the first. An audit line then shows one reading, its masked digits
// beside its region and type.
func (dec Decision) AppendMasked(b []byte, d *Destination) []byte {
	return d.appendMasked(b, dec.Number(d))
}

// Masked returns the destination as AppendMasked appends it.
func (dec Decision) Masked(d *Destination) string {
	var buf [maskedBuffer]byte
	return string(dec.AppendMasked(buf[:0], d))
}

// appendMasked is AppendMasked with the reading a dial string shows.
func (d *Destination) appendMasked(b []byte, reading *Number) []byte {
	switch {
	case d.SIP:
		if strings.HasPrefix(d.Value, "sips:") {
			b = append(b, "sips:"...)
		} else {
			b = append(b, "sip:"...)
		}
		switch {
		case d.IsNumber():
			b = appendMaskedNumber(b, &d.Number)
		case reading != nil:
			b = appendMaskedReading(b, reading, d)
		default:
			b = append(b, maskedSecret...)
		}
		b = append(b, '@')
		return appendMaskedHost(b, d.Host)
	case d.IsNumber():
		return appendMaskedNumber(b, &d.Number)
	case d.Value == "":
		return b
	}
	return append(b, maskedSecret...)
}

// maskedHostDigits is the most digits a masked host shows.
const maskedHostDigits = 4

// appendMaskedHost appends host with every digit replaced by '*' when it
// holds more than four digits in all, and as it is otherwise. The count
// is across labels and separators, not of runs: a host can spell a
// number a digit a label (the ENUM name 4.3.2.1.5.5.5.5.2.4.1.e164.arpa,
// backwards), split by hyphens (1-425-555-1234.example.com) or as an IP
// address (14.255.51.234), and a host with a few digits (gw1.contoso.com,
// [::1]) holds no number. Letters, dots, hyphens and brackets stay, so
// that the domain still reads. An IP address of more than four digits
// loses them too: it names a gateway, not a person, but its digits read
// as a number all the same.
func appendMaskedHost(b []byte, host string) []byte {
	digits := 0
	for i := 0; i < len(host); i++ {
		if host[i] >= '0' && host[i] <= '9' {
			digits++
		}
	}
	if digits <= maskedHostDigits {
		return append(b, host...)
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if c >= '0' && c <= '9' {
			c = '*'
		}
		b = append(b, c)
	}
	return b
}
