package ucwa

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers/v2"
	"golang.org/x/text/unicode/norm"
)

// DialString is what a gateway could dial from a SIP URI whose user is
// digits but no telephone number by RFC 3261 (no user=phone, no '+'):
// sip:19005551234@gw.contoso.com, sip:1-900-555-1234@gw.contoso.com,
// sip:0119005551234@gw.contoso.com, sip:9,19005551234@gw.contoso.com.
// The URI is forwarded as written (what the gateway expects is its own
// business), but a gateway that dials the digits it gets rings a number,
// so the destination rules and the limits judge it by every number it
// may be (see Policy). Digits that are no number in any reading are a
// short code or an extension, which the policy judges by their count
// (see Digits).
//
// A gateway that takes an outside-line prefix (the outside_line of the
// destination policy: 9, or 0 in much of Europe) dials the digits after
// it: at such a gateway sip:919005551234@gw.contoso.com rings
// +1 900 555 1234, where the digits as written read as an Indian number.
// Digits that start with a configured prefix are read both ways, as
// written and after the prefix; a prefix is never taken blindly, since
// most numbers that start with 9 or 0 are numbers as written.
type DialString struct {
	// Readings are the numbers the user's digits may be: read in the
	// default region (national form, or the region's international
	// prefix: 011 in the US, 00 in most of Europe), and read with a '+'
	// before them, and, when they are more digits than a national
	// number of the default region, whose numbers have one length, as
	// their first national digits (see nationalReadings:
	// sip:900555123400@gw is +1 900 555 1234 to a US gateway); then the
	// same readings of the digits after each outside-line prefix they
	// start with (of at least minDialDigits digits). Each only when
	// phonenumbers finds it a possible number (the third a valid one),
	// and only when it is another number than the readings before it.
	// Empty when Unjudgeable.
	Readings []Number
	// Written is how many of Readings are of the digits as written; the
	// readings after them are of the digits after an outside-line
	// prefix.
	Written int
	// Unjudgeable tells that the user holds dial characters besides at
	// least minDialDigits digits (',' 'p' 'w' pauses, the keys '*', '#'
	// and A to D): a gateway may dial any part of it, a prefix, a
	// feature code, digits after a pause, so no number rule can judge
	// it; so are digits in a compatibility form (a superscript ¹, see
	// foldCompatibility), which a gateway may dial or drop, and ASCII
	// digits mixed with decimal digits of another script (see
	// keptDigits), as a name's digits too, and a keypad reading whose
	// user mixes ASCII letters or digits with compatibility forms (see
	// mixesKeypadForms). So are
	// digits too many for the number they start (see tooLong), as
	// written or after an outside-line prefix, and a user
	// whose parameters (after its first ';') hold a digit (see
	// isDialDigit: a circled ① there is one), also when they are all
	// its digits, or when it is a name that they make mostly digits; and
	// a user escaped twice (see dialDecodedAgain), whose digits a
	// gateway that decodes it once more reads otherwise.
	Unjudgeable bool
	// Digits is how many digits the user holds (up to maxNumberLength).
	// A user of no reading that is not Unjudgeable (fewer than
	// minDialDigits digits, dial characters among them or not; or more
	// digits that are no possible number, such as a number possible only
	// locally, 555 1234 in the US, which a gateway dials in an area code
	// the edge does not know) is an internal extension or a service's
	// short code (118118, 11880), which a gateway dials all the same: the
	// policy tells them apart by Digits alone (see the rule short_code).
	Digits int
	// Emergency tells that a user of no reading is an emergency number
	// (Numbers' emergency short codes: 911 and 112 in the US), as
	// written or after an outside-line prefix (9911 at a gateway that
	// takes 9, unless 9911 as written is something else: see
	// outsideLineEmergency), which the rule emergency allows. Visual
	// separators may stand between its digits (9-1-1); of the dial
	// characters only pauses (',', 'p', 'w', any letter case), one or
	// more, and only between an outside-line prefix and the emergency
	// number (9,911, 9w911: the outside line, a wait for its dial tone,
	// 911), when a gateway that reads the pauses otherwise dials nothing
	// else (see pausedEmergency). Any other dial character (9*11, 911#),
	// or a pause anywhere else (,911, 9,9,11, 911,), makes what a gateway
	// dials something else, no emergency service the edge knows of.
	Emergency bool
	// Rest is, for a user with Readings, the most digits left after an
	// outside-line prefix it starts with when fewer than minDialDigits
	// are left (0 when none): 11880 in sip:011880@gw, whose digits as
	// written read as the German +49 11880, is what a gateway that takes
	// 0 dials, a service's short code that the policy judges by its
	// digits as it does a user of no reading (see the rule short_code).
	Rest int
	// Premium tells that the digits of a user of no reading, as written
	// or after an outside-line prefix, or the digits after a prefix that
	// Rest counts, are a premium-rate short code of the default region
	// (phonenumbers' short-number data: sip:3651@gw in France), which the
	// policy refuses at any count of digits (see the rule short_code).
	// Dial characters among the digits do not change it.
	Premium bool
}

// dialCharacters are the characters of a dial string that are neither
// digits nor separators: pauses (pauseCharacters) and the DTMF keys '*',
// '#' and 'A' to 'D' (RFC 2806's dtmf-digit, which RFC 4967's dial
// strings keep), any letter case; a compatibility form of one that is
// no letter (＊, Ⓦ) is read as it (see foldCompatibility).
const dialCharacters = pauseCharacters + "*#aAbBcCdD"

// pauseCharacters are the dial characters that dial nothing but wait:
// ',' (a pause of a PBX's dial strings), RFC 2806's 'p' (a pause) and
// 'w' (a wait for a dial tone), any letter case.
const pauseCharacters = ",pPwW"

// minDialDigits is the fewest digits a user must have to be read as a
// dial string with readings: the shortest possible number any country
// calling code has, code included (+98 and four digits, by phonenumbers'
// data). A shorter user (an internal extension, sip:1234@contoso.com, a
// service's short code, sip:11880@gw.contoso.com, or an emergency
// number, sip:911@contoso.com) is a number of no plan written in full:
// it has no reading, and the policy judges it by its digits
// (DialString.Digits).
var minDialDigits = sync.OnceValue(func() int {
	shortest := maxE164Digits
	for code := range phonenumbers.GetSupportedCallingCodes() {
		cc := int32(code)
		ccDigits := len(strconv.Itoa(code))
		national := uint64(1)
		for l := 1; ccDigits+l < shortest; l++ {
			pn := &phonenumbers.PhoneNumber{CountryCode: &cc, NationalNumber: &national}
			if phonenumbers.IsPossibleNumberWithReason(pn) == phonenumbers.IS_POSSIBLE {
				shortest = ccDigits + l
				break
			}
			national *= 10
		}
	}
	return shortest
})

// dialString reads a SIP user (escapes decoded) that is no telephone
// number as a dial string; nil when it is none: a user without a digit,
// its parameters' included, or a name (it holds a letter other than the
// dial characters before its first ';') that is not mostly digits (see
// below), with the digits and letters of its parameters as well as
// without. Any other character (the visual separators, but also '_', '~',
// '!', '+', a Unicode dash such as U+2010 or U+FF0D) separates digits: a
// gateway that keeps only the digits it can dial dials them all, and a
// name holds a letter. A user of fewer than minDialDigits digits, or of
// digits that have no reading (neither as written nor after an
// outside-line prefix) and are not too many for a number (see tooLong),
// has no reading: it is a short code or an extension (see Digits). So
// is a user of an outside-line prefix, pauses and an emergency number
// (sip:9,911@gw), whatever its count of digits: an emergency number
// (see Emergency).
//
// keypad tells that user is a vanity number's keypad reading (see
// keypadString), which is never an emergency number.
//
// A user that holds another letter is a name, and no dial string, unless
// it is mostly digits (see mostlyDigits): a gateway that keeps only the
// digits of its user dials sip:19005551234%C3%A9@gw or
// sip:x19005551234@gw as 19005551234, as many digits as a number has, so
// such a name is read by its digits alone (its letters and dial
// characters dropped, as such a gateway drops them); so is
// sip:x;19005551234@gw, a name that its parameters make mostly digits,
// which their digits make unjudgeable. That reading is
// never an emergency number: it only adds refusals. Neither is any of
// its readings, nor of a keypad reading's, though one be a number of the
// emergency list (sip:x14255550100@gw with +14255550100 listed): a
// gateway that routes the name as written places no emergency call, so
// no rule allows such a reading as one and the limits take no request
// that dials it for an emergency call.
//
// Nor is a user, in any reading, that holds a compatibility form of a
// letter that is no letter itself and no dial character (a circled Ⓕ, a
// Roman numeral Ⅹ, a squared 🄵, a parenthesized ⒡, ㎒; see
// holdsLetterForm) an emergency number: the edge
// reads it between digits as a separator, but a gateway that folds
// Unicode compatibility forms (NFKC) reads a letter, which makes the user
// a name or, with its letters as keypad digits, other digits
// (sip:911ⒻⒻⒻⒻⒻⒻⒻ@gw is 911FFFFFFF to it, 9113333333 on a keypad).
func (n *Numbers) dialString(user string, keypad bool) *DialString {
	s, name := n.dialStringOf(user, keypad)
	if (name || keypad || holdsLetterForm(user)) && s != nil {
		s.Emergency = false
		for i := range s.Readings {
			s.Readings[i].Emergency = false
		}
	}
	return s
}

// holdsLetterForm reports whether user, before its first ';', holds a
// character that is neither a letter nor a digit and that Unicode's NFKC
// folds onto text holding a letter, other than a compatibility form of a
// dial character (a circled Ⓦ is a wait, see foldCompatibility).
func holdsLetterForm(user string) bool {
	main, _, _ := strings.Cut(user, ";")
	for _, r := range main {
		if r < utf8.RuneSelf || unicode.IsLetter(r) || unicode.IsDigit(r) {
			continue
		}
		var room [8]byte
		if folded, _, _ := foldCompatibility(r, room[:0]); folded != r {
			continue
		}
		var one [utf8.UTFMax]byte
		n := utf8.EncodeRune(one[:], r)
		if strings.ContainsFunc(string(norm.NFKC.Append(room[:0], one[:n]...)), unicode.IsLetter) {
			return true
		}
	}
	return false
}

// dialStringOf is dialString, and whether user is a name read by its
// digits alone.
func (n *Numbers) dialStringOf(user string, keypad bool) (_ *DialString, name bool) {
	main, params, _ := strings.Cut(user, ";")
	digits := make([]byte, 0, 20)
	dial, overflow := false, false
	// pause is where the user's pauses stand, as a count of the digits
	// before them, while they all stand there (-1 for none); keys tells
	// that it holds another dial character, or pauses at two places.
	pause, keys := -1, false
	letters := 0
	// ascii and other tell that the user holds ASCII digits and decimal
	// digits of another script (see keptDigits); compat that it holds
	// digits in a compatibility form.
	ascii, other, compat := false, false, false
	for _, r := range main {
		if r >= utf8.RuneSelf && !unicode.IsDigit(r) && !unicode.IsLetter(r) {
			var held bool
			if r, digits, held = foldCompatibility(r, digits); held {
				// A gateway that folds compatibility forms dials these
				// digits, one that keeps the digits it can dial drops
				// them: which, no rule can tell, as of a dial character.
				dial, keys, compat = true, true, true
			}
		}
		switch {
		case r < 0x80 && r >= '0' && r <= '9':
			digits = append(digits, byte(r))
			ascii = true
		case unicode.IsDigit(r):
			digits = append(digits, digitValue(r))
			other = true
		case strings.ContainsRune(dialCharacters, r):
			dial = true
			if !strings.ContainsRune(pauseCharacters, r) || pause >= 0 && pause != len(digits) {
				keys = true
			}
			pause = len(digits)
		case unicode.IsLetter(r):
			name = true
			letters++
		}
		if len(digits) > maxNumberLength {
			// Far more digits than any number has: kept no further, and
			// no reading can judge them (see tooLong).
			digits, dial, keys, overflow = digits[:maxNumberLength], true, true, true
		}
	}
	if name {
		// Its parameters count too: a gateway that keeps only the digits
		// of its user dials sip:x;19005551234@gw as it dials
		// sip:x19005551234@gw. Mostly digits only with them, it has
		// digits in its parameters, which the case below refuses.
		paramDigits, paramLetters := digitsAndLetters(params)
		if !mostlyDigits(len(digits), letters) && !mostlyDigits(len(digits)+paramDigits, letters+paramLetters) {
			return nil, false
		}
		// Read by its digits alone.
		dial, keys = overflow, overflow
	}
	mixed := ascii && other
	if mixed || compat {
		// Which of its digits a gateway dials, no rule can tell (see
		// keptDigits and foldCompatibility), in a name read by its digits
		// alone too: such a gateway drops its letters and dial
		// characters, but of these digits it may keep any.
		dial, keys = true, true
	}
	switch {
	case strings.ContainsFunc(params, isDialDigit):
		// A gateway that dials the digits of its user dials those of its
		// parameters too (sip:1;9005551234@gw, or sip:9%3B19005551234@gw,
		// whose ';' is no delimiter at all; also when they are all the
		// digits it has, sip:-;19005551234@gw or sip:%3B19005551234@gw):
		// which it takes no rule can tell.
		return &DialString{Unjudgeable: true, Digits: len(digits)}, name
	case len(digits) == 0:
		return nil, name
	case dial && !keys && !keypad && n.pausedEmergency(user, digits, pause):
		// The outside line, a pause, an emergency number: a gateway that
		// takes the prefix rings the emergency service, as it does
		// without the pause.
		s := n.shortCode(digits, true)
		s.Emergency = true
		return s, name
	case dial && !keys && !keypad && n.pausesDial(user) && n.pausedEmergencyShape(digits, pause),
		dial && !keypad && len(digits) < minDialDigits() && n.pausesDial(user):
		// Such a user but for its p and w, which, as the keypad digits a
		// gateway that maps letters to keys dials, make a number or a
		// premium-rate short code (sip:9pwwwwwww911@gw is 979999999911
		// to it, +979 999999911; sip:9p9wwwwwwwww@gw, which a gateway
		// that pauses dials as 99, is 979999999999): which it dials, no
		// rule can tell.
		return &DialString{Unjudgeable: true, Digits: len(digits)}, name
	case len(digits) < minDialDigits():
		s := n.shortCode(digits, dial)
		if mixed {
			s.Premium = s.Premium || n.shortCode(keptDigits(main), true).Premium
		}
		return s, name
	case dial:
		return &DialString{Unjudgeable: true, Digits: len(digits)}, name
	}
	readings, tooLong := n.dialReadings(nil, digits)
	written := len(readings)
	short, premium := 0, false
	for _, prefix := range n.outsideLine {
		rest, ok := bytes.CutPrefix(digits, []byte(prefix))
		if !ok {
			continue
		}
		if len(rest) < minDialDigits() {
			// Fewer digits are no number (see minDialDigits), but a
			// short code or an extension (see Rest).
			short = max(short, len(rest))
			premium = premium || premiumShortCode(rest, n.region)
			continue
		}
		var restTooLong bool
		readings, restTooLong = n.dialReadings(readings, rest)
		tooLong = tooLong || restTooLong
	}
	switch {
	case tooLong:
		return &DialString{Unjudgeable: true, Digits: len(digits)}, name
	case len(readings) == 0:
		return n.shortCode(digits, false), name
	}
	return &DialString{Readings: readings, Written: written, Digits: len(digits), Rest: short, Premium: premium}, name
}

// keptDigits returns the ASCII digits of s. A gateway that keeps only
// the digits it can dial, ASCII's, drops the decimal digits of another
// script (fullwidth, Arabic-Indic, Devanagari) that the edge and a
// gateway that folds them read as digits: sip:%E0%A5%AF19005551234@gw
// (a Devanagari 9, then 19005551234) is +91 90055 51234, an Indian
// mobile, to the edge, and +1 900 555 1234 to it. A user that mixes the
// two is read neither way (dialStringOf): a short one is judged by its
// count of digits and is no emergency number, as a user with a dial
// character is, and a premium-rate short code either way is one; a
// longer one is unjudgeable. A user of other digits alone is no number
// to such a gateway, and is read as the digits they are.
func keptDigits(s string) []byte {
	var digits []byte
	for i := 0; i < len(s) && len(digits) < maxNumberLength; i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			digits = append(digits, c)
		}
	}
	return digits
}

// dialDecodedAgain returns the dial string of a SIP user (escapes
// decoded once) that is escaped twice, nil for any other: it still holds
// an escape (%XX, or IIS's %uXXXX) that a gateway decoding it once more,
// as one may that finds a URI in it (see userHoldsURI), decodes, and it
// is, in some decoding, a dial string or a vanity number. Such a gateway
// dials other digits than the edge reads: sip:%2531%2539005551234@gw is
// %31%39005551234 to the edge, the digits 3139005551234 (+31 39005551234,
// in the Netherlands), and 19005551234 (+1 900) to it. Which decoding a
// gateway dials no rule can tell, so the user is Unjudgeable, of the
// most digits a decoding holds. A name in every decoding
// (john%25smith), and a '%' that starts no escape (100%), are none.
func (n *Numbers) dialDecodedAgain(user string) *DialString {
	if _, again := unescapeAgain(user); !again {
		return nil
	}
	dials, digits := false, 0
	eachDecoding(user, func(p string) bool {
		if s := n.dialString(p, false); s != nil {
			dials, digits = true, max(digits, s.Digits)
		}
		dials = dials || n.keypadString(p) != nil
		return true
	})
	if !dials {
		return nil
	}
	return &DialString{Unjudgeable: true, Digits: digits}
}

// foldCompatibility reads r, neither ASCII nor a digit nor a letter, as
// a gateway that folds Unicode compatibility forms (NFKC) dials it, as
// it dials the fullwidth digits and '+' that the edge reads as digits
// and '+'. A compatibility form of an ASCII dial character (the
// fullwidth and small forms of ',', '*' and '#', U+FF0C U+FE50 U+FE10,
// U+FF0A U+FE61, U+FF03 U+FE5F; a circled or squared A to D, P or W,
// U+24B6, U+24E6, U+1F130; a Roman numeral C or D, U+216D, U+217E:
// symbols, no letters, to Unicode) is returned as that character:
// sip:9%EF%BC%8A11@gw is 9*11 there, a feature code, and no emergency
// number. One that folds onto digits (a superscript or subscript digit,
// a circled one, ⑩ for 10: numbers, not decimal digits, to Unicode) has
// those digits appended to digits, and held set: such a gateway dials
// sip:%C2%B9%E2%81%B9%E2%81%B0%E2%81%B0...@gw (¹⁹⁰⁰...) as 1900...,
// where to one that keeps only decimal digits it is a name. A code
// point that the edge's Unicode tables (unicode.Version) leave unassigned
// is a digit of a value the edge cannot know, '0' here, and held set: a
// gateway with newer tables may read it as one (Unicode 16 added seven
// sets of decimal digits, the outlined digits U+1CCF0 to U+1CCF9 among
// them, and their compatibility forms). Anything else is returned as it
// is, with digits.
func foldCompatibility(r rune, digits []byte) (_ rune, _ []byte, held bool) {
	if !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs) {
		return r, append(digits, '0'), true
	}
	var one [utf8.UTFMax]byte
	n := utf8.EncodeRune(one[:], r)
	var room [8]byte
	folded := norm.NFKC.Append(room[:0], one[:n]...)
	if len(folded) == 1 && strings.IndexByte(dialCharacters, folded[0]) >= 0 {
		return rune(folded[0]), digits, false
	}
	for _, c := range folded {
		if c >= '0' && c <= '9' {
			digits, held = append(digits, c), true
		}
	}
	return r, digits, held
}

// isDialDigit reports whether r is a digit to a gateway that dials the
// digits of a SIP user: a decimal digit of any script, or a character
// that is neither a decimal digit nor a letter but folds onto digits (a
// circled ①, a superscript ¹) or is unassigned in the edge's Unicode
// tables, which a gateway that folds compatibility forms, or has newer
// tables, dials as digits (see foldCompatibility). In the parameters of
// sip:911;①⑨⓪⓪⑤⑤⑤①②③④@gw they are digits as those of
// sip:911;19005551234@gw are.
func isDialDigit(r rune) bool {
	if unicode.IsDigit(r) {
		return true
	}
	if r < utf8.RuneSelf || unicode.IsLetter(r) {
		return false
	}
	var room [8]byte
	_, _, held := foldCompatibility(r, room[:0])
	return held
}

// DialDigits returns how many digits r stands for to a pool or a
// gateway that reads a number's digits: one for a decimal digit of any
// script (which phonenumbers reads as its ASCII digit, as the edge
// does), those a compatibility form that is no letter folds onto (a
// superscript ¹, a circled ①, two for ⑩), one for a code point the
// edge's Unicode tables leave unassigned (see isDialDigit), and none
// for anything else. A log that must hold no number counts a run's
// digits so: sip:¹⁹⁰⁰⁵⁵⁵¹²³⁴@gw is dialled as 19005551234 by a
// gateway that folds compatibility forms.
func DialDigits(r rune) int {
	switch {
	case r < utf8.RuneSelf:
		if '0' <= r && r <= '9' {
			return 1
		}
		return 0
	case unicode.IsDigit(r):
		return 1
	case unicode.IsLetter(r):
		return 0
	}
	var room [8]byte
	_, digits, held := foldCompatibility(r, room[:0])
	if !held {
		return 0
	}
	return len(digits)
}

// digitsAndLetters counts the digits of s as dialStringOf counts those
// of a user before its first ';' (a decimal digit of any script, the
// digits a compatibility form folds onto, an unassigned code point as
// one: see isDialDigit), and its letters other than the dial characters.
func digitsAndLetters(s string) (digits, letters int) {
	var room [8]byte
	for _, r := range s {
		switch {
		case unicode.IsDigit(r):
			digits++
		case strings.ContainsRune(dialCharacters, r):
		case unicode.IsLetter(r):
			letters++
		case r >= utf8.RuneSelf:
			_, folded, _ := foldCompatibility(r, room[:0])
			digits += len(folded)
		}
	}
	return digits, letters
}

// shortCode is the DialString of digits of no reading: a short code or
// an extension, an emergency number when the digits are one as written
// or after an outside-line prefix, and the user held no dial character
// (dial): a gateway dials sip:9*11@gw as 9*11, a feature code or
// anything but 911, so only the digits alone, or an outside-line prefix
// and them, are an emergency number here (dialString reads an
// outside-line prefix, pauses and them, sip:9,911@gw, before).
func (n *Numbers) shortCode(digits []byte, dial bool) *DialString {
	s := &DialString{Digits: len(digits)}
	s.Premium = premiumShortCode(digits, n.region)
	for _, prefix := range n.outsideLine {
		if rest, ok := bytes.CutPrefix(digits, []byte(prefix)); ok && len(rest) > 0 {
			s.Premium = s.Premium || premiumShortCode(rest, n.region)
		}
	}
	s.Emergency = !dial && (n.isEmergencyCode(digits) || n.outsideLineEmergency(digits))
	return s
}

// pausedEmergency reports whether user, of digits with pauses (and no
// other dial character) before their digit at, is an outside-line
// prefix, then the pauses, then an emergency number: a configured or the
// default region's emergency short code, or an emergency number of the
// list written in full (0,030123456 with outside_line 0 in Germany). It
// is one only when a gateway that reads the pauses otherwise reaches
// nothing but an emergency number either: its digits without them (see
// onlyEmergency), which a gateway that drops the pauses dials, and that
// one that does not take the prefix dials as written (sip:9,911@gw is
// 9911 to it, the outside line and 911, where
// sip:9,14255550100@gw with +14255550100 listed is 914255550100, the
// Indian +91 42555 50100 or, to a US switch, +1 914 255 5501); and its
// p and w as the keypad digits a gateway that maps letters to keys dials
// (sip:0w030123456@gw is 09030123456 to it, +49 9030 123456), which must
// have no reading and be no premium-rate short code.
func (n *Numbers) pausedEmergency(user string, digits []byte, at int) bool {
	if !n.pausedEmergencyShape(digits, at) || n.pausesDial(user) {
		return false
	}
	k := n.keypadString(user)
	return k == nil || len(k.Readings) == 0 && !k.Unjudgeable && !k.Premium
}

// pausedEmergencyShape is pausedEmergency of the digits alone: an
// outside-line prefix before the pauses at at, an emergency number after
// them, and no other number without the pauses.
func (n *Numbers) pausedEmergencyShape(digits []byte, at int) bool {
	if at <= 0 || at >= len(digits) || !slices.Contains(n.outsideLine, string(digits[:at])) {
		return false
	}
	num, p := n.read(string(digits[at:]), sipUserNumber)
	if !p.OK() || !num.Emergency {
		return false
	}
	plain, _ := n.dialStringOf(string(digits), false)
	return onlyEmergency(plain)
}

// pausesDial reports whether user, of digits and pauses alone (no other
// dial character: see dialStringOf), holds a p or a w (any letter case,
// or a compatibility form of one, a circled Ⓦ) that, read as the keypad
// digit a gateway that maps letters to keys dials (p 7, w 9; a ','
// dials nothing), makes the user's digits a number in some reading, a
// dial string no rule can judge, or a premium-rate short code. It reads
// the letters whatever their count against the digits: keypadString
// reads only a user that looks like a vanity number (three digits
// before its first letter, or mostly digits), and sip:9pwwwwwww911@gw,
// with outside_line 9, has one digit before eight letters, yet is
// 979999999911 to such a gateway, the international premium-rate
// +979 999999911, where a gateway that reads the pauses dials 911.
func (n *Numbers) pausesDial(user string) bool {
	main, _, _ := strings.Cut(user, ";")
	digits := make([]byte, 0, 20)
	letters := false
	for _, r := range foldKeypadLetters(main) {
		switch {
		case r == 'p' || r == 'P':
			digits, letters = append(digits, '7'), true
		case r == 'w' || r == 'W':
			digits, letters = append(digits, '9'), true
		case r < utf8.RuneSelf && r >= '0' && r <= '9':
			digits = append(digits, byte(r))
		case unicode.IsDigit(r):
			digits = append(digits, digitValue(r))
		}
		if len(digits) > maxNumberLength {
			return true
		}
	}
	if !letters {
		return false
	}
	k := n.dialString(string(digits), true)
	return k != nil && (len(k.Readings) > 0 || k.Unjudgeable || k.Premium)
}

// onlyEmergency reports whether s, the dial string of a user of digits
// alone, is an emergency number in every reading: one of no reading that
// is an emergency number (as written or after an outside-line prefix),
// or one whose readings all are, with no short code after a prefix (see
// DialString.Rest) and no premium-rate short code.
func onlyEmergency(s *DialString) bool {
	switch {
	case s == nil, s.Unjudgeable, s.Premium, s.Rest > 0:
		return false
	case len(s.Readings) == 0:
		return s.Emergency
	}
	for i := range s.Readings {
		if !s.Readings[i].Emergency {
			return false
		}
	}
	return true
}

// premiumShortCode reports whether digits, dialled as written in region
// (none: ""), are a premium-rate short code there by phonenumbers'
// short-number data: a valid short number of the region whose expected
// cost is PREMIUM_RATE and that is no SMS service (Belgium lists
// thousands of 4-digit premium SMS codes, which a voice gateway does not
// reach, and which would take most 4-digit extensions with them). The
// digits are the national number as a gateway dials them, leading zeros
// kept and no national prefix taken off. Short numbers of unknown or
// standard cost are not premium: the data lists most US 4-digit numbers
// (2000 to 9999) and the UK and German 118 codes at unknown cost (see
// the rule short_code). It costs a match of the region's short-number
// patterns, once per distinct destination or number (Numbers caches
// both).
func premiumShortCode(digits []byte, region string) bool {
	if regionIndex(region) < 0 || region == nonGeographicRegion || len(digits) == 0 || len(digits) > maxE164Digits {
		return false
	}
	var national uint64
	zeros := int32(0)
	for i, c := range digits {
		if c == '0' && national == 0 && i < len(digits)-1 {
			zeros++
		}
		national = national*10 + uint64(c-'0')
	}
	cc := int32(phonenumbers.GetCountryCodeForRegion(region))
	pn := &phonenumbers.PhoneNumber{CountryCode: &cc, NationalNumber: &national}
	if zeros > 0 {
		leading := true
		pn.ItalianLeadingZero, pn.NumberOfLeadingZeros = &leading, &zeros
	}
	return phonenumbers.IsValidShortNumberForRegion(pn, region) &&
		phonenumbers.GetExpectedCostForRegion(pn, region) == phonenumbers.PREMIUM_RATE_COST &&
		!phonenumbers.IsSmsServiceForRegion(pn, region)
}

// dialReadings appends to readings those of digits' readings, in the
// default region, with a '+' and as their first national digits (see
// nationalReadings), that are numbers none of readings is. tooLong
// tells that digits are no possible number in either of the first two
// readings and too many for the number they start (see tooLong): no
// rule can judge them, whatever their national reading.
func (n *Numbers) dialReadings(readings []Number, digits []byte) (_ []Number, tooLong bool) {
	possible := false
	for _, text := range [2]string{string(digits), "+" + string(digits)} {
		num, p := n.read(text, sipUserNumber)
		if !p.OK() {
			continue
		}
		possible = true
		if !slices.ContainsFunc(readings, func(r Number) bool { return r.E164 == num.E164 }) {
			readings = append(readings, num)
		}
	}
	return n.nationalReadings(readings, digits), !possible && n.tooLong(digits)
}

// nationalPlan is what nationalReadings needs of the default region's
// numbering plan: the one possible length of its national numbers (0
// when they have several, or there is no default region), its national
// prefix (digits, "" for none: the US trunk 1, the French 0) and its
// country code with a '+' ("+1").
type nationalPlan struct {
	length int
	prefix string
	plus   string
}

// nationalPlanOf is region's nationalPlan, by phonenumbers' metadata:
// the possible lengths of its general description, one length or none;
// or, of a region that shares its country code with a main region of
// one length, when that is one of its own: Canada dials the NANP's ten
// digits as the US does (its data adds its seven-digit 310 numbers).
func nationalPlanOf(region string) nationalPlan {
	md := regionMetadata()[region]
	if md == nil || region == nonGeographicRegion {
		return nationalPlan{}
	}
	lengths := md.GetGeneralDesc().GetPossibleLength()
	if main := regionMetadata()[phonenumbers.GetRegionCodeForCountryCode(int(md.GetCountryCode()))]; len(lengths) > 1 && main != nil {
		if l := main.GetGeneralDesc().GetPossibleLength(); len(l) == 1 && slices.Contains(lengths, l[0]) {
			lengths = l
		}
	}
	if len(lengths) != 1 || lengths[0] <= 0 {
		return nationalPlan{}
	}
	prefix := phonenumbers.GetNddPrefixForRegion(region, true)
	if strings.Trim(prefix, "0123456789") != "" {
		prefix = ""
	}
	return nationalPlan{length: int(lengths[0]), prefix: prefix, plus: "+" + strconv.Itoa(int(md.GetCountryCode()))}
}

// regionMetadata is phonenumbers' metadata by region.
var regionMetadata = sync.OnceValue(func() map[string]*phonenumbers.PhoneMetadata {
	m := map[string]*phonenumbers.PhoneMetadata{}
	c, err := phonenumbers.MetadataCollection()
	if err != nil {
		return m
	}
	for _, md := range c.GetMetadata() {
		m[md.GetId()] = md
	}
	return m
})

// nationalReadings appends to readings the reading of digits (as written
// or after an outside-line prefix) as a switch of the default region
// reads more digits than a national number has, when all its national
// numbers have one length (the NANP's ten digits): it completes the
// call on that many, and sends the rest as tones or drops them. So
// sip:900555123400@gw, whose only reading is the Turkish
// +90 0555123400, rings +1 900 555 1234 at a US gateway. The reading is
// the first national digits, after the region's national prefix when
// digits start with it (the US trunk 1, which a switch takes as such),
// else as written when the region dials its national numbers without
// one (none, or one its national format leaves out: (900) 555-1234 in
// the US, where France writes 01 42 34 56 78, so that digits without
// the 0 are no national number there); only when they are a valid
// number (phonenumbers' patterns), and another number than the
// readings before it. It is
// never an emergency number: it only adds refusals. Regions whose
// numbers have several lengths get no such reading (a switch there
// cannot tell where a number ends by its count of digits). It costs a
// parse or two, once per distinct destination (Numbers caches it).
func (n *Numbers) nationalReadings(readings []Number, digits []byte) []Number {
	l := n.national.length
	if l == 0 {
		return readings
	}
	national, prefixed := digits, false
	if n.national.prefix != "" {
		national, prefixed = bytes.CutPrefix(digits, []byte(n.national.prefix))
	}
	if len(national) <= l {
		return readings
	}
	text := n.national.plus + string(national[:l])
	pn, err := parsePhone(text, "ZZ")
	if err != nil || !phonenumbers.IsValidNumber(pn) || phonenumbers.Format(pn, phonenumbers.E164) != text {
		return readings
	}
	if !prefixed && nationalDigits(phonenumbers.Format(pn, phonenumbers.NATIONAL)) != string(national[:l]) {
		// Dialled nationally after a prefix, which digits lack.
		return readings
	}
	num, p := n.read(text, sipUserNumber)
	if !p.OK() || slices.ContainsFunc(readings, func(r Number) bool { return r.E164 == num.E164 }) {
		return readings
	}
	num.Emergency = false
	return append(readings, num)
}

// nationalDigits is the ASCII digits of s.
func nationalDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// tooLong reports whether digits, no possible number in either reading,
// are too many for the number they start in one of them
// (sip:1900555123499@gw: +1 900 555 1234 and two digits more). A
// gateway, or the network behind it, that completes a call on the first
// digits that make a number rings that number and sends the rest as
// tones or drops them; which digits it takes no rule can tell, so the
// user is no name but unjudgeable. It costs two parses, only for a user
// of no reading.
func (n *Numbers) tooLong(digits []byte) bool {
	// Its first maxReadDigits are as many too many as all of them.
	digits = digits[:min(len(digits), maxReadDigits)]
	for _, text := range [2]string{string(digits), "+" + string(digits)} {
		region := "ZZ" // only numbers with a country code parse
		if text[0] != '+' {
			if n.region == "" {
				continue
			}
			region = n.region
		}
		pn, err := parsePhone(text, region)
		if errors.Is(err, phonenumbers.ErrNumTooLong) ||
			err == nil && phonenumbers.IsPossibleNumberWithReason(pn) == phonenumbers.TOO_LONG {
			return true
		}
	}
	return false
}

// keypadDigitsBefore is the fewest digits a SIP user must hold before
// its first letter to be read also with its letters as keypad digits
// (see keypadUser): a vanity number is written after a prefix of at
// least three digits (1-800, 0800, 0900, 1300), where a name that starts
// with a digit or two (2ndfloor, 3com, 24hours) is no number.
const keypadDigitsBefore = 3

// mostlyDigits reports whether a SIP user of digits digits and letters
// letters besides (the dial characters not counted) reads as a number
// with a letter or a few for some of its digits (1X005551234,
// G42071234567, x19005551234) rather than a name with a number in it:
// minDialDigits digits or more, as many as the shortest number has, and
// fewer letters than digits. A name of more letters (john.smith.123456)
// stays a name, at the price that a number padded with letters
// (xyzxyzxyzxyz19005551234) does too: a gateway that reads a number out
// of a name is best left out of sip_domains.
func mostlyDigits(digits, letters int) bool {
	return digits >= minDialDigits() && letters < digits
}

// keypadUser returns a SIP user (escapes decoded) that may be a vanity
// number (1-900-FLOWERS) with its letters turned into the digits of a
// phone keypad (1-900-3569377), and ok when it is one: before its first
// ';' it holds letters, all ASCII (a letter a keypad has no key for, é,
// makes it no vanity number), and either at least keypadDigitsBefore
// digits before its first letter or mostly digits (see mostlyDigits),
// wherever the letters stand. The second is a number with a letter or a
// few for some of its digits (1X005551234, G42071234567): a gateway that
// maps letters to keys dials 19005551234 and 442071234567 (john.smith2,
// user1, 24hours hold a digit or two). What stands before its first digit
// is no letter, but may be a separator or a dial character, which
// dialString reads past as it does in a user of digits: (900)FLOWERS is
// 900-FLOWERS to a gateway that maps letters to keys. Its parameters are
// kept as written. A name (alice, john.smith, user1, 2ndfloor) is none.
// A compatibility form of an ASCII letter (a fullwidth Ｆ, a mathematical
// 𝐅, a circled Ⓕ) is that letter here, as a gateway that folds them
// (NFKC) before it maps letters to keys dials it: 1900ＦＬＯＷＥＲＳ is
// 1900FLOWERS to it.
func keypadUser(user string) (string, bool) {
	main, params, hasParams := strings.Cut(user, ";")
	main = foldKeypadLetters(main)
	digits, before, letters := 0, 0, 0
	var room [8]byte
	for _, r := range main {
		held := 0
		switch {
		case unicode.IsDigit(r):
			held = 1
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			letters++
		case unicode.IsLetter(r):
			return "", false
		case r >= utf8.RuneSelf:
			// Digits in a compatibility form (see foldCompatibility).
			_, compat, _ := foldCompatibility(r, room[:0])
			held = len(compat)
		}
		digits += held
		if letters == 0 {
			before += held
		}
	}
	if letters == 0 || before < keypadDigitsBefore && !mostlyDigits(digits, letters) {
		return "", false
	}
	keypad := phonenumbers.ConvertAlphaCharactersInNumber(main)
	if hasParams {
		keypad += ";" + params
	}
	return keypad, true
}

// foldKeypadLetters returns s with every character that is a
// compatibility form of an ASCII letter (Unicode's NFKC folds it onto
// one: a fullwidth Ｆ, a mathematical 𝐅, a circled Ⓕ, a Roman numeral Ⅽ)
// written as that letter, and every decimal digit that NFKC folds onto
// an ASCII one (a fullwidth １, a mathematical 𝟏) as that digit, as the
// gateway that folds such letters dials them; s itself when it holds
// none. A decimal digit NFKC leaves as it is (a Devanagari ९) is kept:
// beside the ASCII digits of the keypad, a gateway that keeps only
// those drops it (see keptDigits).
func foldKeypadLetters(s string) string {
	for _, r := range s {
		if foldKeypadRune(r) != r {
			return strings.Map(foldKeypadRune, s)
		}
	}
	return s
}

// foldKeypadRune is the ASCII letter or digit that r is a compatibility
// form of (see foldKeypadLetters), or r.
func foldKeypadRune(r rune) rune {
	if r < utf8.RuneSelf {
		return r
	}
	var one [utf8.UTFMax]byte
	n := utf8.EncodeRune(one[:], r)
	var room [8]byte
	f := norm.NFKC.Append(room[:0], one[:n]...)
	switch {
	case len(f) != 1:
	case unicode.IsDigit(r) && f[0] >= '0' && f[0] <= '9':
		return rune(f[0])
	case !unicode.IsDigit(r) && (f[0] >= 'a' && f[0] <= 'z' || f[0] >= 'A' && f[0] <= 'Z'):
		return rune(f[0])
	}
	return r
}

// mixesKeypadForms reports whether s, a vanity number before its first
// ';', holds an ASCII letter or digit besides a compatibility form of
// one (a fullwidth １ or Ｆ, a circled Ⓕ, a mathematical 𝐅: see
// foldKeypadRune) or a character that folds onto digits (a superscript
// ¹, see foldCompatibility). A gateway that folds such forms (NFKC)
// before it maps letters to keys dials them all, one that keeps only
// the ASCII it can dial drops the others: sip:１２３WPMJJJJ@gw (fullwidth
// 123) is 1239765555 to the first, and 9765555, a local 976 premium
// line, to the second. ASCII separators and dial characters are no
// such ASCII: a gateway that drops the rest dials no digit of them.
func mixesKeypadForms(s string) bool {
	ascii, folded := false, false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			ascii = true
		case r < utf8.RuneSelf:
		case foldKeypadRune(r) != r:
			folded = true
		case !unicode.IsDigit(r) && !unicode.IsLetter(r) && isDialDigit(r):
			folded = true
		}
	}
	return ascii && folded
}

// keptKeypadDigits is the digits a gateway that keeps only the ASCII it
// can dial dials from s, a vanity number before its first ';': its
// ASCII digits, and its ASCII letters as keypad digits.
func keptKeypadDigits(s string) []byte {
	var ascii []byte
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			ascii = append(ascii, c)
		}
	}
	return keptDigits(phonenumbers.ConvertAlphaCharactersInNumber(string(ascii)))
}

// keypadString is the DialString of a SIP user read with its letters as
// keypad digits (Destination.Keypad); nil when the user is no vanity
// number (see keypadUser). It is never an emergency number: the rules
// read it only to refuse more. A user that mixes ASCII letters or digits
// with compatibility forms (see mixesKeypadForms) is read as one that
// mixes ASCII digits with another script's (see keptDigits): which of
// its characters a gateway dials, no rule can tell, so it is
// unjudgeable, or, of fewer than minDialDigits digits, judged by its
// count and as a premium-rate short code by the digits of its ASCII
// too.
func (n *Numbers) keypadString(user string) *DialString {
	keypad, ok := keypadUser(user)
	if !ok {
		return nil
	}
	s := n.dialString(keypad, true)
	main, _, _ := strings.Cut(user, ";")
	if s == nil || s.Unjudgeable || !mixesKeypadForms(main) {
		return s
	}
	if s.Digits >= minDialDigits() {
		return &DialString{Unjudgeable: true, Digits: s.Digits}
	}
	s.Premium = s.Premium || n.shortCode(keptKeypadDigits(main), true).Premium
	return s
}

// CheckOutsideLine checks a list of outside-line prefixes: at most
// maxOutsideLinePrefixes of them, 1 to 4 ASCII digits each (9, 0, 81).
// An error names the entry by its position, never its digits.
func CheckOutsideLine(list []string) error {
	if len(list) > maxOutsideLinePrefixes {
		return fmt.Errorf("outside_line: %d prefixes given, at most %d are allowed", len(list), maxOutsideLinePrefixes)
	}
	for i, entry := range list {
		e := strings.TrimSpace(entry)
		if e == "" || len(e) > maxOutsideLineDigits || strings.Trim(e, "0123456789") != "" {
			return entryError("outside_line", i, len(list), entry,
				fmt.Sprintf("is not an outside-line prefix: 1 to %d digits (9, or 0)", maxOutsideLineDigits))
		}
	}
	return nil
}

// maxOutsideLineDigits is the most digits an outside-line prefix has: a
// digit, or a PBX's trunk access code of a few.
const maxOutsideLineDigits = 4

// maxOutsideLinePrefixes is the most outside-line prefixes a policy
// names: a site's gateways take one or two (9, or 0, and a trunk access
// code or so). Each prefix adds up to three readings to a dial string,
// whose index plus one a Decision keeps in a uint8 (after the readings
// of the dial string as written, those of its keypad reading).
const maxOutsideLinePrefixes = 16

// The most readings a destination's two dial strings (Dial and Keypad)
// have, three as written and three after each prefix each, must fit
// Decision's uint8: this constant conversion does not compile
// otherwise.
const _ = uint8(2 * 3 * (1 + maxOutsideLinePrefixes))
