package ucwa

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers/v2"
)

// Numbers reads phone destinations wherever they hide (a tel: URI, a bare
// dial string, the user of a SIP URI), normalizes them to E.164 and
// classifies them (region, type, emergency) for destination rules. It is
// safe for concurrent use.
//
// The rules, which decide what reaches a pool:
//
//   - Only numbers phonenumbers finds possible (IS_POSSIBLE) pass: not
//     one that is possible only locally ("555-1234" in the US has no
//     E.164 form), nor one longer than E.164's 15 digits, nor one whose
//     E.164 form reads back as another number (phonenumbers strips a
//     national prefix even after a country code, "+91 0..."). The
//     forwarded form is always ASCII and normalizes to itself.
//   - Nor does a number, no valid one, that dialled nationally in a
//     region of its country code (its national prefix and national
//     number, or the national number alone) starts with that region's
//     international prefix: a gateway that turns E.164 into national
//     form dials +81 10 683 1234 as 010 683 1234, a call to Niue, and
//     +91 0 6831234 as 006831234. (A dial string's reading is kept: the
//     edge forwards the dial string, not that E.164 form.)
//   - A number without a country code is read in the default region;
//     with no default region it fails.
//   - Extensions: ";ext=" (any letter case, in a tel: URI, a bare number
//     or a SIP user) and, in a bare number only, " x", " ext" or " ext."
//     followed by digits. At most 20 digits (phonenumbers' own limit for
//     an explicit extension). Forwarded as ";ext=" and ASCII digits.
//   - Every other tel: parameter is refused: phone-context (a local
//     number's context, which a pool would resolve its own way: the
//     number judged would not be the number dialled), postd (digits
//     dialled after the call connects, unseen by any rule), isub (an
//     ISDN subaddress) and any unknown one.
//   - Letters are refused: vanity numbers (1-800-FLOWERS) are not
//     converted to keypad digits, and a number with trailing text is not
//     trimmed to the digits before it. (A SIP user that is no telephone
//     number, a name, is forwarded as written; one that is a vanity
//     number is read also with its letters as keypad digits, for the
//     rules to judge: Destination.Keypad.)
//   - Unicode decimal digits of any script (Arabic-Indic, fullwidth,
//     Devanagari, ...) read as the digits they are, and a fullwidth plus
//     (U+FF0B) as '+'; the forwarded form is ASCII. Visual separators are
//     ASCII '-', '.', '(', ')', '/' and space characters (Unicode Zs); any
//     other character, including the invisible ones phonenumbers skips
//     (zero-width space, soft hyphen), fails.
//   - Emergency numbers: an emergency number of the default region as
//     phonenumbers' short-number data has it (911 and 112 in the US, 112
//     and 110 in Germany, ...), or one of the configured list, written
//     without '+' and without an extension, is accepted as itself and
//     forwarded as "tel:911" (or "911" in the E164 format). So is, in a
//     tel: URI, a bare number or a telephone SIP user, an outside-line
//     prefix and such a short code ("tel:9911" with outside line 9; see
//     Number.OutsideLine).
//
// White space around a value and around a scheme's colon is tolerated
// ("tel : +14255551234", as the reference's own sample has it).
type Numbers struct {
	region string
	format NumberFormat
	// emergencyShort holds configured emergency short codes; nil means
	// the default region's, from phonenumbers.
	emergencyShort map[string]bool
	// emergencyE164 holds configured emergency numbers written in full.
	emergencyE164 map[string]bool
	// outsideLine holds the outside-line prefixes of the site's
	// gateways, whose dial strings are read also without them (see
	// DialString).
	outsideLine []string
	// national is how a switch of the region reads a dial string of
	// more digits than a national number (see nationalReadings); its
	// zero value (length 0) for none.
	national nationalPlan
	// numbers and destinations remember what Number and Destination
	// made of recent inputs, classification included, so that a rule
	// judging a repeated destination costs a lookup. Results are kept by
	// pointer (and never changed): a lookup then copies a pointer out of
	// the map rather than the whole result.
	numbers      *shardedCache[*numberResult]
	destinations *shardedCache[*destinationResult]
}

type numberResult struct {
	number  Number
	problem Problem
}

type destinationResult struct {
	destination Destination
	problem     Problem
}

// maxEmergencyShortCode is the most digits an emergency number written
// as a short code has: emergency short numbers are 2 to 3 digits almost
// everywhere. A longer entry of the list is read as a phone number, so
// that a national number is never forwarded undialled as a short code.
const maxEmergencyShortCode = 6

// maxExtensionDigits bounds an extension (phonenumbers' limit after an
// explicit ";ext=").
const maxExtensionDigits = 20

// NewNumbers returns a Numbers. defaultRegion is the ISO 3166-1 region
// (such as "US", any letter case) of numbers written without a country
// code; "" means such numbers fail. format is how numbers are forwarded.
//
// emergency lists the emergency numbers, whose Number has Emergency set
// (destination rules never refuse those): a short code of 2 to 6 ASCII
// digits ("911"), accepted and forwarded as written; or a phone number
// with a country code or in the default region ("+14255550100", the
// site's security desk), without an extension. nil means the default
// region's emergency numbers (none without a default region); an empty,
// non-nil list means none. A list replaces the region's numbers, it does
// not add to them.
//
// outsideLine lists the outside-line prefixes the site's gateways take
// (9, or 0 in much of Europe: 1 to 4 ASCII digits each, at most 16
// prefixes; see CheckOutsideLine): a dial string (DialString) that
// starts with one is read also as the digits after it. It changes no
// phone number (a tel: URI, a bare number and a telephone SIP user are
// forwarded in E.164, so no gateway ever sees an outside-line prefix in
// them) but one: a tel: URI, a bare number or a telephone SIP user that
// is exactly a prefix and an emergency short code (9911) is an emergency
// number forwarded as written (Number.OutsideLine).
//
// Number and Destination each cache numberCacheSize inputs; both full of
// typical numbers and SIP URIs hold about 3.5 MB (measured).
func NewNumbers(defaultRegion string, format NumberFormat, emergency []string, outsideLine ...string) (*Numbers, error) {
	region := strings.ToUpper(defaultRegion)
	if region != "" && !phonenumbers.GetSupportedRegions()[region] {
		return nil, fmt.Errorf("default region %q is not a region phone numbers are known for (use an ISO 3166-1 code such as US or DE)", defaultRegion)
	}
	if format > E164 {
		return nil, fmt.Errorf("unknown number format %d", format)
	}
	n := &Numbers{
		region:       region,
		format:       format,
		numbers:      newShardedCache[*numberResult](numberCacheSize),
		destinations: newShardedCache[*destinationResult](numberCacheSize),
	}
	if err := CheckOutsideLine(outsideLine); err != nil {
		return nil, err
	}
	for _, prefix := range outsideLine {
		n.outsideLine = append(n.outsideLine, strings.TrimSpace(prefix))
	}
	n.national = nationalPlanOf(region)
	if emergency != nil {
		short, full := map[string]bool{}, map[string]bool{}
		// Until the list is read, n has no emergency numbers: every entry
		// that is not a short code is read as a phone number.
		n.emergencyShort = short
		for i, e := range emergency {
			e = strings.TrimSpace(e)
			if len(e) >= 2 && len(e) <= maxEmergencyShortCode && strings.Trim(e, "0123456789") == "" {
				short[e] = true
				continue
			}
			num, p := n.number(e)
			if p.OK() && num.Extension != "" {
				p.Reason = "has an extension"
			}
			if !p.OK() || num.Extension != "" {
				// The entry is not quoted: it is a phone number.
				return nil, fmt.Errorf("emergency number %d of %d is neither a short code of 2 to %d digits nor a phone number without an extension: it %s",
					i+1, len(emergency), maxEmergencyShortCode, p.Reason)
			}
			full[num.E164] = true
		}
		n.emergencyE164 = full
	}
	return n, nil
}

// DefaultRegion returns the default region, in upper case ("" for none).
func (n *Numbers) DefaultRegion() string { return n.region }

// Format returns the format numbers are forwarded in.
func (n *Numbers) Format() NumberFormat { return n.format }

// Number is a normalized and classified phone number.
type Number struct {
	// E164 is the number in E.164 ("+14255551234"); for an emergency
	// number written as a short code, that code ("911").
	E164 string
	// Extension holds the extension's ASCII digits; "" when none.
	Extension string
	// Region is the ISO 3166-1 region the number belongs to, as
	// phonenumbers tells (GetRegionCodeForNumber): "001" for
	// non-geographic numbers (+800, +881, +882, +883, ...), "" when its
	// country code is shared by several regions and it matches none of
	// them (an unassigned North American area code). For an emergency
	// short code, the default region.
	Region string
	// Type is what kind of number it is, as phonenumbers tells
	// (GetNumberType); NumberUnknown for an emergency short code.
	Type NumberType
	// Emergency tells that the number is an emergency number: one of the
	// configured list, or else of the default region.
	Emergency bool
	// OutsideLine tells that the number, a tel: URI, a bare number or a
	// telephone SIP user without a country code, is an outside-line
	// prefix and an emergency short code (9911 with outside_line 9) that,
	// as written, are no valid number and no premium-rate short code of
	// the default region (see outsideLineEmergency): an
	// emergency number (Emergency is set), E164 and the forwarded form
	// holding the digits as written, for the pool's dial plan (its
	// EmergencyDialMask) to turn into the emergency number. Masked, it
	// shows no digit, as the SIP user sip:9911@gw does not.
	OutsideLine bool
	// PremiumExtension tells that the extension is a premium-rate short
	// code of the number's region by phonenumbers' short-number data
	// (+33 1 42 34 56 78;ext=3651): a PBX there that dials extensions
	// through (direct inward system access) rings the service, which the
	// rule max_extension_digits refuses whatever its count.
	PremiumExtension bool
	// Starts holds the types of the valid numbers that the number's
	// first digits make, when the number itself is possible but no valid
	// one (Type unknown): bit t is set for NumberType t. +81 990 123 456 9
	// is a Japanese premium-rate number and a digit more, which
	// phonenumbers finds possible (Japan's numbers have many lengths)
	// and types unknown; a switch that completes the call on the digits
	// that make a number rings the premium line and sends the rest as
	// tones or drops them, so the rule deny_types judges the number by
	// these types too. 0 for a valid number.
	Starts uint16

	forwarded string
}

// Forwarded returns the number as the edge forwards it, in the format of
// the Numbers that read it: "tel:+14255551234;ext=12" or
// "+14255551234;ext=12"; "tel:911" or "911" for an emergency short code.
// Normalizing it again gives the same Number.
func (n Number) Forwarded() string { return n.forwarded }

// NumberType is a kind of phone number, as phonenumbers classifies them.
// Its String is a stable snake_case name, for configuration, logs and
// metrics.
type NumberType uint8

// The number types. NumberUnknown is the zero value.
const (
	NumberUnknown           NumberType = iota // unknown
	NumberFixedLine                           // fixed_line
	NumberMobile                              // mobile
	NumberFixedLineOrMobile                   // fixed_line_or_mobile: the region's numbers do not tell (US)
	NumberTollFree                            // toll_free
	NumberPremiumRate                         // premium_rate
	NumberSharedCost                          // shared_cost
	NumberVoIP                                // voip
	NumberPersonal                            // personal_number
	NumberPager                               // pager
	NumberUAN                                 // uan: universal access (company) numbers
	NumberVoicemail                           // voicemail
	numNumberTypes
)

var numberTypeNames = [numNumberTypes]string{"unknown", "fixed_line", "mobile", "fixed_line_or_mobile", "toll_free",
	"premium_rate", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail"}

// String returns the type's snake_case name ("premium_rate").
func (t NumberType) String() string {
	if t < numNumberTypes {
		return numberTypeNames[t]
	}
	return numberTypeNames[NumberUnknown]
}

// ParseNumberType reads a type's snake_case name, in any letter case.
func ParseNumberType(name string) (NumberType, error) {
	for t, s := range numberTypeNames {
		if strings.EqualFold(name, s) {
			return NumberType(t), nil
		}
	}
	return NumberUnknown, fmt.Errorf("number type %q is none of %s", name, strings.Join(numberTypeNames[:], ", "))
}

// MarshalText returns the type's name, so that JSON (configuration,
// audit lines) spells it as String does.
func (t NumberType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a type's name, as ParseNumberType does.
func (t *NumberType) UnmarshalText(text []byte) error {
	typ, err := ParseNumberType(string(text))
	if err != nil {
		return err
	}
	*t = typ
	return nil
}

// numberTypes maps phonenumbers' types onto NumberType.
var numberTypes = map[phonenumbers.PhoneNumberType]NumberType{
	phonenumbers.FIXED_LINE:           NumberFixedLine,
	phonenumbers.MOBILE:               NumberMobile,
	phonenumbers.FIXED_LINE_OR_MOBILE: NumberFixedLineOrMobile,
	phonenumbers.TOLL_FREE:            NumberTollFree,
	phonenumbers.PREMIUM_RATE:         NumberPremiumRate,
	phonenumbers.SHARED_COST:          NumberSharedCost,
	phonenumbers.VOIP:                 NumberVoIP,
	phonenumbers.PERSONAL_NUMBER:      NumberPersonal,
	phonenumbers.PAGER:                NumberPager,
	phonenumbers.UAN:                  NumberUAN,
	phonenumbers.VOICEMAIL:            NumberVoicemail,
}

// Problem tells why a value was refused. The zero Problem means none.
type Problem struct {
	// Subcode is the UCWA subcode of the 400: SubcodeParameterValidationFailure
	// for a value that is not a SIP URI or phone number at all,
	// SubcodeNormalizationFailed for a number that does not normalize;
	// "" for no problem.
	Subcode string
	// Reason names the rule broken and completes a sentence that starts
	// with the property's name ("must be ...", "is not ..."). It never
	// quotes the value.
	Reason string
}

// OK reports whether p is no problem.
func (p Problem) OK() bool { return p.Subcode == "" }

// Parameter names the property the problem is about, for an Error.
func (p Problem) Parameter(name string) Parameter {
	return Parameter{Name: name, Reason: p.Reason}
}

// Reasons of Number and Destination problems.
const (
	numNotNumber        = "must be a phone number (a tel: URI or digits)"
	numNotDestination   = "must be a SIP URI (sip:user@host) or a phone number"
	numNotPossible      = "is not a possible phone number"
	numNoRegion         = "is not a possible phone number: it has no country code (+...) and no default region is set"
	numTooLong          = "is not a possible phone number: it is longer than any"
	numLetters          = "is not a possible phone number: letters are not read as digits (no vanity numbers)"
	numCharacter        = "is not a possible phone number: it holds a character other than digits, + and the separators - . ( ) / and space"
	numParameter        = "is not a possible phone number: only the ;ext= parameter is kept (phone-context, postd, isub and others are refused)"
	numExtension        = "is not a possible phone number: its extension must be 1 to 20 digits, given once"
	numE164Length       = "is not a possible phone number: E.164 numbers have at most 15 digits"
	numReadBack         = "is not a possible phone number: its E.164 form reads as another number"
	numNationallyAbroad = "is not a possible phone number: dialled nationally it starts with the international prefix"
)

func parameterProblem(reason string) Problem {
	return Problem{Subcode: SubcodeParameterValidationFailure, Reason: reason}
}

func normalizationProblem(reason string) Problem {
	return Problem{Subcode: SubcodeNormalizationFailed, Reason: reason}
}

// Number reads a phone number given as a tel: URI (RFC 3966) or a bare
// dial string ("+14255551234", "(425) 555-1234" with a default region),
// by the rules of Numbers. A value that is no phone number at all
// (another scheme, or no tel: scheme and neither a digit, '+' nor '('
// first, or an '@') is a ParameterValidationFailure; a number that does
// not normalize is a NormalizationFailed.
//
// Answers are cached (failures too): a repeated value costs a lookup.
func (n *Numbers) Number(v string) (Number, Problem) {
	if len(v) > maxNumberLength {
		return n.number(v)
	}
	if r, ok := n.numbers.get(v); ok {
		return r.number, r.problem
	}
	num, p := n.number(v)
	n.numbers.put(v, &numberResult{num, p})
	return num, p
}

// number is Number without the cache.
func (n *Numbers) number(v string) (Number, Problem) {
	scheme, rest, hasScheme := splitScheme(v)
	switch {
	case hasScheme && scheme == "tel":
		return n.read(rest, telNumber)
	case hasScheme:
		return Number{}, parameterProblem(numNotNumber)
	case !dialShaped(rest):
		return Number{}, parameterProblem(numNotNumber)
	}
	return n.read(rest, bareNumber)
}

// Destination is a destination property (to, target) as the edge judged
// it and forwards it.
type Destination struct {
	// Value is the destination as the edge forwards it, exactly what was
	// judged: a SIP URI (ParseSIPURI's String, with a telephone user in
	// E.164) or a number in the configured format.
	Value string
	// SIP tells that Value is a SIP URI.
	SIP bool
	// Host is the SIP URI's host in lower case ("" when not SIP).
	Host string
	// Number is the phone number the destination rings: a bare or tel:
	// number, or a SIP URI's telephone user. It is the zero Number for a
	// SIP URI whose user is a name (sip:john@contoso.com); see IsNumber.
	Number Number
	// Dial is what a gateway could dial from a SIP URI whose user is a
	// name of digits (sip:19005551234@gw.contoso.com), which the rules
	// and the limits judge as numbers; nil for any other destination.
	Dial *DialString
	// Keypad is what a gateway that turns letters into the digits of a
	// phone keypad could dial from a SIP URI whose user is a vanity
	// number (sip:1900FLOWERS@gw.contoso.com: 19003569377): a user that
	// holds letters after at least three digits, and no letter before
	// them, or letters among at least six digits
	// (sip:1X005551234@gw.contoso.com: 19005551234; see keypadUser),
	// read as a dial string with its letters as keypad digits. It adds to the user as written (a name, or Dial), never
	// replaces it: the rules and the limits judge both, and it is never
	// an emergency number. nil for any other destination.
	Keypad *DialString
}

// IsNumber reports whether the destination is a phone number.
func (d Destination) IsNumber() bool { return d.Number.E164 != "" }

// Destination reads a destination property (to, target): a SIP URI, a
// tel: URI or a bare number. A SIP URI is checked by ParseSIPURI; when
// its user is a telephone number (SIPURI.IsPhone) that user is read by
// the rules of Numbers, escapes decoded, and written back in E.164,
// keeping the host and parameters: sip:+1-425-555-1234@gw.contoso.com;user=phone
// is forwarded as sip:+14255551234@gw.contoso.com;user=phone. A
// telephone user's own ;parameters follow the tel: rules: ";ext=" is
// kept (sip:+14255551234;ext=12@gw...), phone-context, postd, isub and
// any other are refused, and " x" extensions, which a SIP user cannot
// hold, are letters. A telephone user that does not normalize (user=phone
// with a name, letters after "+1", phone-context) is a
// NormalizationFailed. A user that is not a telephone number
// (sip:alice;day=tuesday@atlanta.com) is forwarded as written, and has
// no Number; so is a user of digits without '+' or user=phone, which
// RFC 3261 does not make a telephone number, but whose readings as the
// numbers a gateway could dial are kept in Dial (see DialString). Such a user with a
// telephone number's parameter (sip:5551234;phone-context=+1900@gw) is
// refused: a gateway reading it as RFC 3966's local number would dial a
// number the edge judged as a name; so is any user that holds a URI
// (sip:tel%3A%2B19005551234@gw; see userHoldsURI). A value that is neither a
// SIP URI nor a number is a ParameterValidationFailure.
//
// Answers are cached (failures too): a repeated value costs a lookup.
func (n *Numbers) Destination(v string) (Destination, Problem) {
	if len(v) > maxNumberLength {
		return n.destination(v)
	}
	if r, ok := n.destinations.get(v); ok {
		return r.destination, r.problem
	}
	d, p := n.destination(v)
	n.destinations.put(v, &destinationResult{d, p})
	return d, p
}

// destination is Destination without the cache.
func (n *Numbers) destination(v string) (Destination, Problem) {
	scheme, rest, hasScheme := splitScheme(v)
	var num Number
	var p Problem
	switch {
	case hasScheme && (scheme == "sip" || scheme == "sips"):
		return n.sipDestination(v)
	case hasScheme && scheme == "tel":
		num, p = n.read(rest, telNumber)
	case hasScheme || !dialShaped(rest):
		return Destination{}, parameterProblem(numNotDestination)
	default:
		num, p = n.read(rest, bareNumber)
	}
	if !p.OK() {
		return Destination{}, p
	}
	return Destination{Value: num.forwarded, Number: num}, Problem{}
}

func (n *Numbers) sipDestination(v string) (Destination, Problem) {
	u, reason := ParseSIPURI(v)
	if reason != "" {
		return Destination{}, parameterProblem(reason)
	}
	var num Number
	if userHoldsURI(u.DecodedUser()) {
		return Destination{}, parameterProblem(sipURIInUser)
	}
	if !u.IsPhone() && hasTelParam(u.DecodedUser()) {
		return Destination{}, parameterProblem(sipTelParamInName)
	}
	var dial, keypad *DialString
	if !u.IsPhone() {
		dial = n.dialString(u.DecodedUser(), false)
		keypad = n.keypadString(u.DecodedUser())
		if again := n.dialDecodedAgain(u.DecodedUser()); again != nil {
			dial = again
		}
	} else {
		var p Problem
		num, p = n.read(u.DecodedUser(), phoneUserNumber)
		if !p.OK() {
			return Destination{}, p
		}
		u.User = num.E164
		if num.Extension != "" {
			u.User += ";ext=" + num.Extension
		}
	}
	value := u.String()
	// The host is copied out of v, which the cache must not keep alive
	// (it may be a slice of a whole request).
	return Destination{Value: value, SIP: true, Host: strings.Clone(u.Host), Number: num, Dial: dial, Keypad: keypad}, Problem{}
}

// numberSyntax is where a number was written, which decides what it may
// hold besides digits.
type numberSyntax uint8

const (
	bareNumber    numberSyntax = iota // a dial string: also " x123" extensions
	telNumber                         // after "tel:"
	sipUserNumber                     // a SIP URI's user, escapes decoded
	// phoneUserNumber is a telephone SIP user (user=phone), escapes
	// decoded: a tel: URI's number in SIP, read as one, where
	// sipUserNumber is also a reading of a dial string's digits, which
	// reads its own outside-line prefix.
	phoneUserNumber
)

// dialShaped tells a bare value meant as a phone number (which fails as
// NormalizationFailed) from one that is none at all: it starts with a
// digit, '+' or '(' and holds no '@' (which makes it a SIP address
// without its scheme).
func dialShaped(s string) bool {
	first, _ := utf8.DecodeRuneInString(s)
	return (unicode.IsDigit(first) || first == '+' || first == '＋' || first == '(') && strings.IndexByte(s, '@') < 0
}

// read normalizes and classifies the text of a number: after "tel:"
// (white space trimmed), a bare dial string, or a decoded SIP user.
func (n *Numbers) read(text string, syntax numberSyntax) (Number, Problem) {
	if len(text) > maxNumberLength {
		return Number{}, normalizationProblem(numTooLong)
	}
	main, params, hasParams := strings.Cut(text, ";")
	var ext []byte
	hasExt := false
	if hasParams {
		for seg := range strings.SplitSeq(params, ";") {
			name, value, _ := strings.Cut(seg, "=")
			if !strings.EqualFold(name, "ext") {
				return Number{}, normalizationProblem(numParameter)
			}
			if hasExt {
				return Number{}, normalizationProblem(numExtension)
			}
			var ok bool
			if ext, ok = appendPhoneDigits(nil, value); !ok {
				return Number{}, normalizationProblem(numExtension)
			}
			hasExt = true
		}
	}

	digits := make([]byte, 0, 20)
	plus := false
	for i := 0; i < len(main); {
		r, size := utf8.DecodeRuneInString(main[i:])
		switch {
		case (r == '+' || r == '＋') && i == 0:
			plus = true
		case r < utf8.RuneSelf && r >= '0' && r <= '9':
			digits = append(digits, byte(r))
		case unicode.IsDigit(r):
			digits = append(digits, digitValue(r))
		case IsVisualSeparator(r):
		case unicode.IsLetter(r):
			if syntax != bareNumber || len(digits) == 0 {
				return Number{}, normalizationProblem(numLetters)
			}
			tail, ok := cutExtensionMark(main[i:])
			if !ok {
				return Number{}, normalizationProblem(numLetters)
			}
			if hasExt {
				return Number{}, normalizationProblem(numExtension)
			}
			if ext, ok = appendPhoneDigits(nil, tail); !ok {
				return Number{}, normalizationProblem(numExtension)
			}
			hasExt = true
			i = len(main)
			continue
		default:
			return Number{}, normalizationProblem(numCharacter)
		}
		i += size
	}
	if len(digits) == 0 {
		return Number{}, normalizationProblem(numNotPossible)
	}

	// An emergency code, or, in a tel: URI, a telephone SIP user or a
	// bare number, an outside-line prefix and one (a SIP user of those
	// digits is a dial string, DialString, which reads them so):
	// forwarded as written.
	emergency, outsideLine := false, false
	if !plus && !hasExt {
		emergency = n.isEmergencyCode(digits)
		outsideLine = !emergency && syntax != sipUserNumber && n.outsideLineEmergency(digits)
	}
	if emergency || outsideLine {
		code := string(digits)
		num := Number{E164: code, Region: n.region, Emergency: true, OutsideLine: outsideLine, forwarded: code}
		if n.format == TelURI {
			num.forwarded = "tel:" + code
		}
		return num, Problem{}
	}
	if !plus && n.region == "" {
		return Number{}, normalizationProblem(numNoRegion)
	}

	if len(digits) > maxReadDigits {
		// phonenumbers finds no possible number in them (see
		// maxReadDigits), at a cost that grows with each digit.
		return Number{}, normalizationProblem(numNotPossible)
	}
	in := string(digits)
	if plus {
		in = "+" + in
	}
	region := n.region
	if region == "" {
		region = "ZZ" // only numbers with a country code parse
	}
	pn, err := parsePhone(in, region)
	// IsPossibleNumber also passes numbers that are possible only
	// locally ("555-1234" in the US), which have no E.164 form.
	if err != nil || phonenumbers.IsPossibleNumberWithReason(pn) != phonenumbers.IS_POSSIBLE {
		return Number{}, normalizationProblem(numNotPossible)
	}
	e164 := phonenumbers.Format(pn, phonenumbers.E164)
	// E.164 allows 15 digits at most; phonenumbers lets longer German
	// numbers through.
	if len(e164) > 1+15 {
		return Number{}, normalizationProblem(numE164Length)
	}
	// Only a fixed point is a number: the pool, normalizing again, would
	// otherwise ring another one. A number written in E.164 has just been
	// read as itself.
	if in != e164 {
		again, err := parsePhone(e164, "ZZ")
		if err != nil || phonenumbers.Format(again, phonenumbers.E164) != e164 {
			return Number{}, normalizationProblem(numReadBack)
		}
	}

	// Dialled nationally (its national prefix, if any, and its national
	// number), a number that starts with its region's international
	// prefix is a call abroad: +81 10 683 1234 is 010 683 1234 to a
	// Japanese gateway that dials +81 numbers so, the Niue +683 1234.
	// Only a number in no listed range is judged so: a valid one is a
	// national number of its region however it starts (Israel's +972
	// 1800 ..., 01800 ... nationally, where 018 is a carrier's
	// international prefix), and phonenumbers finds some invalid ones
	// possible. A dial string's reading (sipUserNumber) is kept: the
	// edge forwards a dial string as written, never this E.164 form, and
	// its reading only adds refusals. (A number is valid exactly when
	// its type is known: IsValidNumber is GetNumberType's match again.)
	typ := phonenumbers.GetNumberType(pn)
	valid := typ != phonenumbers.UNKNOWN
	if syntax != sipUserNumber && !valid && nationallyAbroad(pn) {
		return Number{}, normalizationProblem(numNationallyAbroad)
	}

	num := Number{
		E164:      e164,
		Extension: string(ext),
		Region:    phonenumbers.GetRegionCodeForNumber(pn),
		Type:      numberTypes[typ],
		// The listed number itself: an extension behind it (an
		// attendant, a PBX) is somewhere else.
		Emergency: !hasExt && n.emergencyE164[e164],
	}
	if !valid {
		num.Starts = startTypes(pn)
	}
	// The PBX the number reaches dials its extension where the number
	// is, not in the default region.
	num.PremiumExtension = hasExt && premiumShortCode(ext, num.Region)
	fwd := e164
	if hasExt {
		fwd += ";ext=" + num.Extension
	}
	if n.format == TelURI {
		fwd = "tel:" + fwd
	}
	num.forwarded = fwd
	return num, Problem{}
}

// maxReadDigits bounds the digits (after a '+') that phonenumbers is
// given to read, whose cost grows with their count: its regular
// expressions scan the whole text and every reading of a dial string
// parses it again, so that read whole, a SIP user of 99 digits under
// outside-line prefixes would cost over a millisecond, thirty times a
// valid one. Past the longest international prefix
// any region takes (8 digits), a country code (3), the longest national
// prefix with a carrier code it strips (15) and the longest national
// number it parses (17), there is no possible number, and the first
// maxReadDigits digits are too many for one just as all of them are
// (see tooLong): a number of more digits is refused as no possible one
// without reading it, and one of more digits than a number has is
// judged too long by its first maxReadDigits. TestMaxReadDigits holds
// it to phonenumbers' metadata. A variable for the tests, which compare
// with phonenumbers reading every digit.
var maxReadDigits = 48

// parsePhone is phonenumbers.Parse, which a test watches.
var parsePhone = phonenumbers.Parse

// nationallyAbroad reports whether pn, dialled nationally in a region
// of its country code (the region's national prefix, if any, and the
// national number; or the national number alone, as a gateway that
// takes no prefix dials it), starts with that region's international
// prefix (phonenumbers' pattern: 00, 010 in Japan, 0011 in Australia,
// 011 in the NANP).
func nationallyAbroad(pn *phonenumbers.PhoneNumber) bool {
	nsn := phonenumbers.GetNationalSignificantNumber(pn)
	for _, region := range phonenumbers.GetRegionCodesForCountryCode(int(pn.GetCountryCode())) {
		idd := internationalPrefix(region)
		if idd == nil {
			continue
		}
		if ndd := phonenumbers.GetNddPrefixForRegion(region, true); idd.MatchString(nsn) || ndd != "" && idd.MatchString(ndd+nsn) {
			return true
		}
	}
	return false
}

// internationalPrefixes holds a region's international prefix pattern,
// anchored at the start, by region (nil for none).
var internationalPrefixes sync.Map

// internationalPrefix is region's international prefix pattern, anchored
// at the start of the digits; nil when phonenumbers gives none.
func internationalPrefix(region string) *regexp.Regexp {
	if re, ok := internationalPrefixes.Load(region); ok {
		return re.(*regexp.Regexp)
	}
	var re *regexp.Regexp
	if md := regionMetadata()[region]; md != nil && md.GetInternationalPrefix() != "" {
		re, _ = regexp.Compile("^(?:" + md.GetInternationalPrefix() + ")")
	}
	internationalPrefixes.Store(region, re)
	return re
}

// startTypes returns the types of the valid numbers of pn's country
// code that the first digits of pn's national number make, shorter than
// it (see Number.Starts), one bit a type. It costs a match of the
// region's patterns for each shorter length, only for a number that is
// no valid one, once per distinct number (Numbers caches it).
func startTypes(pn *phonenumbers.PhoneNumber) uint16 {
	nsn := phonenumbers.GetNationalSignificantNumber(pn)
	cc := pn.GetCountryCode()
	var types uint16
	for l := 1; l < len(nsn); l++ {
		var national uint64
		zeros := int32(0)
		for i := 0; i < l; i++ {
			if nsn[i] == '0' && national == 0 && i < l-1 {
				zeros++
			}
			national = national*10 + uint64(nsn[i]-'0')
		}
		start := &phonenumbers.PhoneNumber{CountryCode: &cc, NationalNumber: &national}
		if zeros > 0 {
			leading := true
			start.ItalianLeadingZero, start.NumberOfLeadingZeros = &leading, &zeros
		}
		if phonenumbers.IsValidNumber(start) {
			types |= 1 << numberTypes[phonenumbers.GetNumberType(start)]
		}
	}
	return types
}

// isEmergencyCode reports whether digits, dialled as written without a
// country code, reach emergency services: a configured short code, or
// else an emergency number of the default region.
func (n *Numbers) isEmergencyCode(digits []byte) bool {
	if n.emergencyShort != nil {
		return n.emergencyShort[string(digits)]
	}
	return n.region != "" && len(digits) <= maxEmergencyShortCode && phonenumbers.IsEmergencyNumber(string(digits), n.region)
}

// outsideLineEmergency reports whether digits are exactly an
// outside-line prefix and an emergency short code after it (9911 with
// outside_line 9 in the US, 0112 with outside_line 0 in Germany): what a
// user types for the emergency service at a phone behind a PBX, which
// Skype for Business's EmergencyDialMask and a gateway's dial plan turn
// into the emergency number. It is the reading shortCode gives a SIP
// user of those digits (sip:9911@gw), without its pauses. Digits that,
// dialled as written, are something else too are none (see
// dialledAsWritten): a pool or a gateway that does not take the prefix
// dials that.
func (n *Numbers) outsideLineEmergency(digits []byte) bool {
	for _, prefix := range n.outsideLine {
		if rest, ok := bytes.CutPrefix(digits, []byte(prefix)); ok && len(rest) > 0 && n.isEmergencyCode(rest) {
			return !n.dialledAsWritten(digits)
		}
	}
	return false
}

// dialledAsWritten reports whether digits, dialled as written in the
// default region, are a valid phone number there or a premium-rate
// short code (see premiumShortCode): 8112 with outside_line 8 is
// +352 8112 in Luxembourg and a premium-rate short code in Gibraltar, not
// 112. Possible numbers that are no valid one (0112 is possible in
// Germany) reach nothing.
func (n *Numbers) dialledAsWritten(digits []byte) bool {
	if n.region == "" {
		return false
	}
	if premiumShortCode(digits, n.region) {
		return true
	}
	pn, err := parsePhone(string(digits), n.region)
	return err == nil && phonenumbers.IsValidNumber(pn)
}

// IsVisualSeparator reports whether r may separate the digits of a
// number: RFC 3966's visual separators - . ( ), '/' and space characters.
func IsVisualSeparator(r rune) bool {
	switch r {
	case '-', '.', '(', ')', '/':
		return true
	}
	return unicode.Is(unicode.Zs, r)
}

// cutExtensionMark returns what follows an extension mark at the start
// of s: "x", "ext" or "ext." in any letter case, and white space after
// it.
func cutExtensionMark(s string) (string, bool) {
	for _, mark := range [...]string{"ext.", "ext", "x"} {
		if len(s) >= len(mark) && strings.EqualFold(s[:len(mark)], mark) {
			return s[len(mark):], true
		}
	}
	return "", false
}

// appendPhoneDigits appends the digits of s (RFC 3966's 1*phonedigit:
// digits of any script and visual separators), as ASCII, to dst. ok is
// false when s holds anything else, no digit, or too many.
func appendPhoneDigits(dst []byte, s string) ([]byte, bool) {
	start := len(dst)
	for _, r := range s {
		switch {
		case unicode.IsDigit(r):
			dst = append(dst, digitValue(r))
		case IsVisualSeparator(r):
		default:
			return dst, false
		}
	}
	return dst, len(dst) > start && len(dst)-start <= maxExtensionDigits
}

// digitValue returns the ASCII digit for a Unicode decimal digit. Every
// range of unicode.Nd is made of whole runs of ten code points, zero to
// nine, so a digit's offset in its range, modulo ten, is its value.
func digitValue(r rune) byte {
	for _, rg := range unicode.Nd.R16 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return '0' + byte((r-rune(rg.Lo))%10)
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return '0' + byte((r-rune(rg.Lo))%10)
		}
	}
	return 0
}
