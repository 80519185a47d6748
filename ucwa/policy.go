package ucwa

import (
	"fmt"
	"math/bits"
	"net/netip"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers/v2"
)

// DestinationPolicy configures the destination rules: which phone
// numbers and SIP addresses a guarded operation may make a pool dial,
// store or forward to. Its JSON fields are the subdirectives of the
// Caddyfile's destinations block. NewPolicy checks and compiles it.
//
// The zero DestinationPolicy is the default policy: enforced; refusing
// premium_rate, shared_cost, personal_number and uan numbers; allowing
// every region and every SIP domain.
//
// A destination (Cleaned.Destinations) is judged by the first rule that
// decides it, in this order; each rule's name is what Decision.Rule and
// the metrics and audit lines call it:
//
//  1. emergency (allows): the number is an emergency number
//     (Number.Emergency: the default region's, or the configured list,
//     without an extension, or in a tel: URI, a bare number or a
//     telephone SIP user one of their short codes after an outside-line
//     prefix that as written are nothing else, Number.OutsideLine; or a
//     SIP user of digits of no reading that is one, without a dial
//     character among them but pauses after an outside-line prefix that
//     a gateway reading them otherwise dials as nothing else,
//     DialString.Emergency), and, for a SIP URI, its host is one
//     sip_domains allows (the host decides where the pool sends the
//     call).
//  2. not_dialled (allows): a delegator (OnBehalfOf) is the identity a
//     call is placed for, which the pool presents and never dials, and
//     whose right to be used the pool checks itself (the user must be
//     the delegator's delegate); no rule of money or reach applies to it.
//  3. max_extension_digits (refuses): the number's extension has more
//     digits than MaxExtensionDigits allows, or is a premium-rate short
//     code of the number's region (Number.PremiumExtension; unless
//     PremiumShortCodes is allow). Before allow: a PBX or gateway that
//     dials an extension through (direct inward system access) dials
//     whatever follows the number it reaches, and an allow prefix says
//     which numbers may be reached, not what they then dial.
//  4. allow (allows): the number starts with an allow prefix.
//  5. deny (refuses): the number starts with a deny prefix.
//  6. deny_regions (refuses): the number's region is a denied one, or
//     the number is of no known region and its country calling code is
//     a denied region's: a carrier routes +7 numbers that no numbering
//     plan phonenumbers knows lists into Russia or Kazakhstan all the
//     same, and revenue-share fraud dials exactly such unlisted ranges.
//  7. allow_regions (refuses): allow_regions is set and the number's
//     region is none of them. A number of no region (an unassigned
//     North American area code) is in none.
//  8. deny_types (refuses): the number's type is a denied one, or the
//     number, no valid one, starts with a valid number of a denied type
//     (Number.Starts: a premium-rate number and digits behind it).
//  9. sip_domains (refuses): sip_domains is set and the destination is a
//     SIP URI whose host it does not list.
//  10. dial_string (refuses): the destination is a SIP URI whose user is
//     a dial string with dial characters (DialString.Unjudgeable), at a
//     host sip_domains allows, and a number rule may refuse (deny,
//     deny_regions, allow_regions or deny_types is set; the default
//     deny_types is): a gateway may dial any part of it.
//  11. short_code (refuses): the destination is a SIP URI whose user is
//     digits of no reading (DialString.Digits: no possible number, as
//     written or after an outside-line prefix), more of them than
//     MaxExtensionDigits allows, at a host sip_domains allows, and a
//     number rule may refuse (as for dial_string). A gateway that dials
//     the digits it gets rings a service's short code
//     (sip:118118@gw.contoso.com, directory enquiries at a premium rate
//     in the UK and France; sip:11880@gw in Germany), which no number
//     rule can judge; up to MaxExtensionDigits digits it is taken for an
//     internal extension (sip:1234@contoso.com), as an extension of a
//     number is. So are the digits after an outside-line prefix when
//     fewer than a number has (DialString.Rest: sip:011880@gw with
//     outside_line 0), once the readings passed. Digits of either kind
//     that are a premium-rate short code of the default region
//     (DialString.Premium: sip:3651@gw in France) are refused at any
//     count, unless PremiumShortCodes is allow. An emergency short
//     code (sip:911@gw.contoso.com) is an emergency number: the rule
//     emergency allows it first.
//  12. default (allows): no rule refused the destination.
//
// A destination that is neither a phone number nor a SIP URI, which only
// the zero Destination is, is refused by the rule invalid: the policy
// refuses what it cannot judge.
//
// Rules 3 to 8 judge phone numbers, including a number that is the user
// of a SIP URI (sip:+19005551234@gw.contoso.com;user=phone); rule 9
// judges SIP URIs. A SIP URI whose user is a number must pass both: an
// allow prefix lets the number pass the number rules, but the host still
// decides where the pool sends the call, so it is judged by sip_domains
// too. A SIP URI whose user is digits without '+' or user=phone
// (sip:19005551234@gw.contoso.com) is a name by RFC 3261, but the site's
// own gateway, the host sip_domains allows, may dial it: rules 3 to 8
// judge each of its readings (Destination.Dial) as a number, and the
// first that refuses one decides (Decision.Number tells which reading);
// a reading that is an emergency number at a host sip_domains allows
// passes. sip_domains then judges the host. A dial string that starts
// with an outside_line prefix has the readings of the digits after it
// too (see OutsideLine). A user that is a vanity number
// (sip:1900FLOWERS@gw.contoso.com) is judged also as the dial string of
// its letters read as keypad digits (Destination.Keypad), after its
// reading as written, by the same rules: it only adds refusals.
//
// In report mode a destination the rules refuse is delivered, and its
// Decision says it would have been refused (VerdictWouldRefuse). So is
// every destination of the emergency call (Operation.Emergency), in any
// mode, under EmergencyCalls any (the default): it is never refused,
// whatever the policy says, and a destination of it that is no emergency
// number is judged all the same, so that the metrics and the audit trail
// show an emergency call used to reach anything else. Under
// EmergencyCalls emergency_numbers it is judged as any other request.
type DestinationPolicy struct {
	// Mode is "enforce" (the default, also "") to refuse what the rules
	// refuse, or "report" to deliver it and only report, in metrics and
	// the audit trail, what would have been refused. Any letter case.
	// Default: enforce.
	Mode string `json:"mode,omitempty"`

	// AllowRegions lists the ISO 3166-1 regions ("US", any letter case)
	// a phone number may be in; "001" names the non-geographic numbers
	// (+800, +808, +870, +881, +882, +883, +888, +979), which are in no
	// region. Default: empty, which allows every region.
	AllowRegions []string `json:"allow_regions,omitempty"`

	// DenyRegions lists the ISO 3166-1 regions (and "001") whose
	// numbers are refused, and with them the numbers of no known region
	// that have a listed region's country calling code (+7 numbers no
	// plan lists, when RU is listed). A region may not be in AllowRegions
	// too. Default: none.
	DenyRegions []string `json:"deny_regions,omitempty"`

	// DenyTypes lists the number types refused, as phonenumbers
	// classifies them (NumberType names: unknown, fixed_line, mobile,
	// fixed_line_or_mobile, toll_free, premium_rate, shared_cost, voip,
	// personal_number, pager, uan, voicemail; any letter case). Types
	// match exactly: a US number is fixed_line_or_mobile, never mobile.
	// A number that is no valid one is refused also when it starts with
	// a valid number of a listed type (Number.Starts: +81 990 123 456 9,
	// a premium-rate number and a digit, is unknown itself).
	// The single entry "none" refuses no type. Default: empty, which
	// means premium_rate, shared_cost, personal_number and uan.
	DenyTypes []string `json:"deny_types,omitempty"`

	// Allow lists E.164 prefixes ("+1425555": '+' and 1 to 15 digits)
	// whose numbers are allowed before every other number rule but
	// max_extension_digits (a number that both Allow and Deny match is
	// allowed). Default: none.
	Allow []string `json:"allow,omitempty"`

	// Deny lists E.164 prefixes whose numbers are refused; one that an
	// Allow prefix starts (or equals) would refuse nothing, and is
	// refused. Default: none. Ranges worth denying that deny_types does
	// not catch: +1900 and +1976 (North American premium services;
	// phonenumbers knows +1976 as no range at all, an unknown number of
	// no region), +870, +881, +882 and +883 (Inmarsat, satellite and
	// international networks, billed at satellite rates; phonenumbers
	// types many of them mobile).
	Deny []string `json:"deny,omitempty"`

	// SIPDomains lists the hosts SIP destinations may have: a host name
	// ("contoso.com", that host only), "*." and a host name
	// ("*.contoso.com": every name under contoso.com, at any depth, but
	// not contoso.com itself, which is listed on its own when meant), or
	// an IP address (IPv6 with or without brackets). Host names match in
	// any letter case, with or without a trailing dot. Default: empty,
	// which allows every host.
	SIPDomains []string `json:"sip_domains,omitempty"`

	// MaxExtensionDigits is the most digits a phone destination's
	// extension (";ext=", or " x" in a bare number) may have, from 0
	// (no extension at all) to 20 (any extension a number may carry);
	// one with more is refused by the rule max_extension_digits, before
	// any allow prefix: a PBX that dials extensions through dials them
	// behind an allowed number. Default: 4, the extensions of most PBXs.
	// Longer ones are too often a service's short code where the number
	// is: directory enquiries and other premium codes have 5 and 6 digits
	// (118118 in the UK and France, 11880 in Germany, 892424 in Italy),
	// or an outside line and one (0 11880). A site whose users call
	// numbers with longer extensions sets 5 or 6 (and 11 or more lets a
	// whole number through). No count tells the shorter service codes
	// (411 in the US) from an extension: 0 refuses every extension. One
	// that phonenumbers' short-number data has as a premium-rate short
	// code of the number's region (+33142345678;ext=3651) is refused at
	// any count (Number.PremiumExtension), unless PremiumShortCodes is
	// allow. The same count tells an extension from a short code in a
	// SIP user of digits that is no number (sip:118118@gw.contoso.com,
	// see the rule short_code), which at any count is refused when it is
	// a premium-rate short code of the default region (sip:3651@gw in
	// France), unless PremiumShortCodes is allow.
	MaxExtensionDigits *int `json:"max_extension_digits,omitempty"`

	// PremiumShortCodes is "refuse" (the default, also "") to refuse, at
	// any count of digits, a short code that phonenumbers' short-number
	// data has as premium rate: the extension of a number, of the
	// number's region (+33142345678;ext=3651, the rule
	// max_extension_digits), and a SIP user of digits of no reading, of
	// the default region (sip:3651@gw in France, the rule short_code);
	// or "allow" to leave the data out, so that such digits are judged by
	// their count alone (MaxExtensionDigits), as any others. The data
	// takes some extension plans for premium-rate codes (France 1000 to
	// 1099 and 3200 to 3999, Italy 1200 to 1299, ...): a site whose own
	// extensions are such digits sets allow. Any letter case. Default:
	// refuse.
	PremiumShortCodes string `json:"premium_short_codes,omitempty"`

	// OutsideLine lists the outside-line prefixes the site's gateways
	// take before a number (9, or 0 in much of Europe; 1 to 4 digits
	// each, at most 16 prefixes). A SIP user that is a dial string
	// (sip:919005551234@gw) and starts with one is judged by the
	// readings of the digits after it (+1 900 555 1234) as well as by
	// those of the digits as written (+91 900 555 1234), and refused
	// when any reading is: a prefix is never taken instead, since most
	// digits that start with 9 or 0 are a number as written. Digits
	// after a prefix too few for any number are judged as a short code
	// (the rule short_code): sip:011880@gw, the German +49 11880 as
	// written, is 11880 after the prefix 0. Phone numbers (tel: URIs,
	// bare numbers, telephone SIP users) are not read again: the edge
	// forwards them in E.164, with '+', in which no gateway takes an
	// outside line; but a tel: URI, a bare number or a telephone SIP
	// user that is exactly a prefix and an emergency short code
	// (tel:9911) is an emergency number, forwarded as written
	// (Number.OutsideLine). Like Emergency it configures the Numbers
	// that reads destinations: pass it to NewNumbers. Default: none.
	OutsideLine []string `json:"outside_line,omitempty"`

	// Emergency lists the emergency numbers, which no rule refuses: short
	// codes ("911") and phone numbers ("+14255550100"). It configures
	// the Numbers that reads destinations (NewNumbers' emergency list,
	// which checks it): pass EmergencyNumbers there. Default: empty,
	// which means the emergency numbers of the default region.
	Emergency []string `json:"emergency,omitempty"`

	// EmergencyCalls says which emergency call (startEmergencyCall,
	// Operation.Emergency) neither a rule nor a velocity limit refuses.
	// "any" (also ""): every one, whatever it dials; a destination of it
	// the rules refuse is delivered and reported (VerdictWouldRefuse), so
	// that a stolen token can ring any number with it, a premium one too,
	// past every rule and limit. "emergency_numbers": only one that dials
	// an emergency number the pool certainly sends to an emergency
	// service (IsEmergencyCall), which makes any request an emergency
	// call; any other is judged and limited as any call to its
	// destination. It is for a site whose emergency numbers are all known
	// (the default region's, or the Emergency list): an emergency call to
	// a number left out is refused or limited as any call. Any letter
	// case. Default: any (the handler warns at startup when it is left
	// unset beside a policy in enforce mode or a limit).
	EmergencyCalls string `json:"emergency_calls,omitempty"`
}

// EmergencyNumbers returns the emergency list for NewNumbers: nil (the
// default region's emergency numbers) when Emergency is empty, so that
// an empty list never turns emergency numbers off.
func (c *DestinationPolicy) EmergencyNumbers() []string {
	if len(c.Emergency) == 0 {
		return nil
	}
	return c.Emergency
}

// The policy modes.
const (
	PolicyEnforce = "enforce"
	PolicyReport  = "report"
)

// The values of EmergencyCalls.
const (
	EmergencyCallsAny     = "any"
	EmergencyCallsNumbers = "emergency_numbers"
)

// The values of PremiumShortCodes.
const (
	PremiumShortCodesRefuse = "refuse"
	PremiumShortCodesAllow  = "allow"
)

// defaultDenyTypes are the number types refused when DenyTypes is empty:
// numbers that cost the caller's organisation far more than a call, or
// that reach a service rather than a line.
var defaultDenyTypes = [...]NumberType{NumberPremiumRate, NumberSharedCost, NumberPersonal, NumberUAN}

// defaultMaxExtensionDigits is MaxExtensionDigits' default.
const defaultMaxExtensionDigits = 4

// nonGeographicRegion is phonenumbers' region of non-geographic numbers.
const nonGeographicRegion = "001"

// Policy is a compiled DestinationPolicy. Judging a destination costs a
// walk along the number's digits, a few bit tests and, for a SIP URI, a
// map lookup a label of its host; it allocates nothing. It is safe for
// concurrent use.
type Policy struct {
	report       bool
	maxExtension int        // the most digits an extension may have
	prefixes     prefixTrie // allow and deny
	allowRegions regionSet
	anyRegion    bool // no allow_regions
	denyRegions  regionSet
	// denyCodes holds the country calling codes of the denied regions,
	// which judge numbers of no known region (see the rule deny_regions).
	denyCodes  callingCodes
	denyTypes  uint16 // bit t: NumberType t is refused
	sipDomains hostSet
	anyHost    bool // no sip_domains
	// judgesNumbers tells that a number rule may refuse a number (deny,
	// deny_regions, allow_regions or deny_types is set), which makes a
	// dial string no rule can judge refused (see the rule dial_string),
	// and a short code (see the rule short_code).
	judgesNumbers bool
	// refusePremium tells that a premium-rate short code is refused at
	// any count (PremiumShortCodes): Number.PremiumExtension and
	// DialString.Premium are read.
	refusePremium bool
	// emergencyNumbersOnly tells that the emergency call is one only by
	// what it dials (EmergencyCalls emergency_numbers).
	emergencyNumbersOnly bool
}

// NewPolicy checks c and compiles it. An error names the field and the
// entry (its position, and the entry itself only when it holds no digit,
// since a mistyped entry may be a phone number).
func NewPolicy(c DestinationPolicy) (*Policy, error) {
	p := &Policy{anyRegion: len(c.AllowRegions) == 0, anyHost: len(c.SIPDomains) == 0, maxExtension: defaultMaxExtensionDigits}
	var err error
	if p.report, err = Either("mode", c.Mode, PolicyEnforce, PolicyReport); err != nil {
		return nil, err
	}
	allowPremium, err := Either("premium_short_codes", c.PremiumShortCodes, PremiumShortCodesRefuse, PremiumShortCodesAllow)
	if err != nil {
		return nil, err
	}
	p.refusePremium = !allowPremium
	if p.emergencyNumbersOnly, err = Either("emergency_calls", c.EmergencyCalls, EmergencyCallsAny, EmergencyCallsNumbers); err != nil {
		return nil, err
	}
	if n := c.MaxExtensionDigits; n != nil {
		if *n < 0 || *n > maxExtensionDigits {
			return nil, fmt.Errorf("max_extension_digits must be between 0 and %d, the most an extension may have: %d", maxExtensionDigits, *n)
		}
		p.maxExtension = *n
	}
	if p.allowRegions, err = compileRegions("allow_regions", c.AllowRegions); err != nil {
		return nil, err
	}
	if p.denyRegions, err = compileRegions("deny_regions", c.DenyRegions); err != nil {
		return nil, err
	}
	for i, entry := range c.DenyRegions {
		r := strings.ToUpper(strings.TrimSpace(entry))
		if p.allowRegions.has(r) {
			return nil, entryError("deny_regions", i, len(c.DenyRegions), entry,
				"is in allow_regions too: deny_regions refuses its numbers first, so allowing it does nothing")
		}
		p.denyCodes.add(phonenumbers.GetCountryCodeForRegion(r))
	}
	if p.denyTypes, err = compileTypes(c.DenyTypes); err != nil {
		return nil, err
	}
	if err = p.prefixes.addPrefixes("allow", c.Allow, true); err != nil {
		return nil, err
	}
	if err = p.prefixes.addPrefixes("deny", c.Deny, false); err != nil {
		return nil, err
	}
	if err = checkDenyOutsideAllow(c.Allow, c.Deny); err != nil {
		return nil, err
	}
	if p.sipDomains, err = compileHosts(c.SIPDomains); err != nil {
		return nil, err
	}
	if err = CheckOutsideLine(c.OutsideLine); err != nil {
		return nil, err
	}
	p.judgesNumbers = len(c.Deny) > 0 || len(c.DenyRegions) > 0 || !p.anyRegion || p.denyTypes != 0
	return p, nil
}

// Report reports whether the policy is in report mode.
func (p *Policy) Report() bool { return p.report }

// EmergencyOperation reports whether a request of op is an emergency
// call whatever it dials: the emergency operation (Operation.Emergency)
// under EmergencyCalls any. Under emergency_numbers it is one only by
// what it dials (IsEmergencyCall), as any other request. A nil Policy is
// the default one.
func (p *Policy) EmergencyOperation(op *Operation) bool {
	return op != nil && op.Emergency && (p == nil || !p.emergencyNumbersOnly)
}

// EmergencyNumbersOnly reports whether the emergency operation is an
// emergency call only by what it dials (EmergencyCalls
// emergency_numbers).
func (p *Policy) EmergencyNumbersOnly() bool { return p.emergencyNumbersOnly }

// LetsRefusalsThrough reports whether the policy ever delivers a
// destination its rules refuse (VerdictWouldRefuse): in report mode, and
// under EmergencyCalls any, the emergency operation's.
func (p *Policy) LetsRefusalsThrough() bool { return p.report || !p.emergencyNumbersOnly }

// Rule names the rule of a DestinationPolicy that decided a destination.
// Its String is a stable snake_case name for metrics and audit lines.
type Rule uint8

// The rules, in the order they are tried. The zero Rule is none: a
// destination that was not judged.
const (
	RuleNone               Rule = iota // none
	RuleEmergency                      // emergency
	RuleNotDialled                     // not_dialled
	RuleMaxExtensionDigits             // max_extension_digits
	RuleAllow                          // allow
	RuleDeny                           // deny
	RuleDenyRegions                    // deny_regions
	RuleAllowRegions                   // allow_regions
	RuleDenyTypes                      // deny_types
	RuleSIPDomains                     // sip_domains
	RuleDialString                     // dial_string
	RuleShortCode                      // short_code
	RuleDefault                        // default
	// RuleInvalid refuses a destination that is neither a phone number
	// nor a SIP URI, which only the zero Destination is: the policy
	// refuses what it cannot judge.
	RuleInvalid // invalid
	numPolicyRules
)

var ruleNames = [numPolicyRules]string{"none", "emergency", "not_dialled", "max_extension_digits", "allow", "deny", "deny_regions", "allow_regions",
	"deny_types", "sip_domains", "dial_string", "short_code", "default", "invalid"}

// String returns the rule's name ("deny_types").
func (r Rule) String() string {
	if r < numPolicyRules {
		return ruleNames[r]
	}
	return ruleNames[RuleNone]
}

// MarshalText returns the rule's name, for JSON audit lines.
func (r Rule) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Verdict is what the policy does with a destination. Its String is a
// stable snake_case name for metrics and audit lines.
type Verdict uint8

// The verdicts. The zero Verdict is none: a destination that was not
// judged.
const (
	VerdictNone Verdict = iota // none
	// VerdictAllowed: the destination is delivered.
	VerdictAllowed // allowed
	// VerdictRefused: the request is refused (RefusalError).
	VerdictRefused // refused
	// VerdictWouldRefuse: the rules refuse the destination, but the
	// policy is in report mode: it is delivered, and reported.
	VerdictWouldRefuse // would_refuse
	numVerdicts
)

var verdictNames = [numVerdicts]string{"none", "allowed", "refused", "would_refuse"}

// String returns the verdict's name ("would_refuse").
func (v Verdict) String() string {
	if v < numVerdicts {
		return verdictNames[v]
	}
	return verdictNames[VerdictNone]
}

// MarshalText returns the verdict's name, for JSON audit lines.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Decision is the policy's judgement of one destination.
type Decision struct {
	// Verdict is what happens to the destination.
	Verdict Verdict `json:"decision"`
	// Rule is the rule that decided: one that allows (emergency,
	// not_dialled, allow, default) for VerdictAllowed, one that refuses
	// (max_extension_digits, deny, deny_regions, allow_regions,
	// deny_types, sip_domains, dial_string, short_code, invalid)
	// otherwise.
	Rule Rule `json:"rule"`
	// reading is, when a reading of the destination's dial string
	// decided, its index plus one (see Number); the readings of its
	// keypad reading (Destination.Keypad) follow those of Dial.
	reading uint8
	// keypad tells that the keypad reading of the destination's user
	// (Destination.Keypad) decided.
	keypad bool
	// premium tells that max_extension_digits or short_code decided
	// under a policy that refuses premium-rate short codes at any count
	// (PremiumShortCodes): the refusal of one says so, where under allow
	// it was refused for its count.
	premium bool
	// starts is, when deny_types decided by a type of a valid number the
	// judged number starts with (Number.Starts) rather than by its own,
	// that type plus one.
	starts uint8
}

// Refused reports whether the request must be refused.
func (d Decision) Refused() bool { return d.Verdict == VerdictRefused }

// Judge decides one destination (one of Cleaned.Destinations) of a
// request of operation op (nil for none). It allocates nothing.
func (p *Policy) Judge(op *Operation, d *PropertyDestination) Decision {
	rule, reading, keypad := p.rule(d)
	premium := p.refusePremium && (rule == RuleMaxExtensionDigits || rule == RuleShortCode)
	switch {
	case rule.allows():
		return Decision{Verdict: VerdictAllowed, Rule: rule}
	}
	dec := Decision{Verdict: VerdictRefused, Rule: rule, reading: reading, keypad: keypad, premium: premium}
	if p.report || p.EmergencyOperation(op) {
		dec.Verdict = VerdictWouldRefuse
	}
	if num := dec.Number(&d.Destination); rule == RuleDenyTypes && num != nil && p.denyTypes&(1<<num.Type) == 0 {
		dec.starts = uint8(bits.TrailingZeros16(p.denyTypes&num.Starts)) + 1
	}
	return dec
}

// allows reports whether the rule allows what it decides.
func (r Rule) allows() bool {
	switch r {
	case RuleEmergency, RuleNotDialled, RuleAllow, RuleDefault:
		return true
	}
	return false
}

// rule returns the rule that decides d and, when a reading of its dial
// string (Destination.Dial, then Destination.Keypad) decided, that
// reading's index plus one, and whether the keypad reading decided.
func (p *Policy) rule(d *PropertyDestination) (Rule, uint8, bool) {
	switch {
	case p.IsEmergency(d):
		return RuleEmergency, 0, false
	case d.Kind == OnBehalfOf:
		return RuleNotDialled, 0, false
	case !d.IsNumber() && !d.SIP:
		return RuleInvalid, 0, false
	}
	if d.IsNumber() {
		if r := p.numberRule(&d.Number, d); r != RuleNone {
			return r, 0, false
		}
	}
	if r, reading := p.dialRule(d.Dial, d, 0); r != RuleNone {
		return r, reading, false
	}
	// A vanity number's keypad reading only adds refusals.
	if r, reading := p.dialRule(d.Keypad, d, d.readings()); r != RuleNone {
		return r, reading, true
	}
	if d.SIP && !p.hostAllowed(d.Host) {
		return RuleSIPDomains, 0, false
	}
	return RuleDefault, 0, false
}

// dialRule returns the rule that refuses dial, a dial string of d (Dial
// or Keypad), and, when one of its readings decided, that reading's
// index plus before plus one; RuleNone when none refuses it.
func (p *Policy) dialRule(dial *DialString, d *PropertyDestination, before uint8) (Rule, uint8) {
	if dial == nil {
		return RuleNone, 0
	}
	for i := range dial.Readings {
		num := &dial.Readings[i]
		if num.Emergency && p.hostAllowed(d.Host) {
			continue
		}
		if r := p.numberRule(num, d); r != RuleNone && !r.allows() {
			return r, before + uint8(i+1)
		}
	}
	switch {
	case !p.judgesNumbers || !p.hostAllowed(d.Host):
	case dial.Unjudgeable:
		return RuleDialString, 0
	case len(dial.Readings) == 0 && dial.Digits > p.maxExtension, dial.Rest > p.maxExtension, p.refusePremium && dial.Premium:
		return RuleShortCode, 0
	}
	return RuleNone, 0
}

// numberRule returns the number rule (max_extension_digits to
// deny_types) that decides num, a number of d; RuleNone when none does.
func (p *Policy) numberRule(num *Number, d *PropertyDestination) Rule {
	if len(num.Extension) > p.maxExtension || p.refusePremium && num.PremiumExtension {
		return RuleMaxExtensionDigits
	}
	allow, deny := p.prefixes.match(num.E164)
	switch {
	case allow:
		if d.SIP && !p.hostAllowed(d.Host) {
			return RuleSIPDomains
		}
		return RuleAllow
	case deny:
		return RuleDeny
	case p.denyRegions.has(num.Region), num.Region == "" && p.denyCodes.starts(num.E164):
		return RuleDenyRegions
	case !p.anyRegion && !p.allowRegions.has(num.Region):
		return RuleAllowRegions
	case p.denyTypes&(1<<num.Type|num.Starts) != 0:
		return RuleDenyTypes
	}
	return RuleNone
}

// Number returns the number dec judged of d: its Number, or the reading
// of its dial string (or of its keypad reading) that a number rule
// refused, or else its first reading (or, of a name or a dial string of
// no reading, its keypad reading's first); nil for a destination that
// is no number and has no reading (a SIP name, a dial string no rule
// can judge).
func (dec Decision) Number(d *Destination) *Number {
	dial := int(d.readings())
	switch {
	case d.IsNumber():
		return &d.Number
	case dec.reading > 0 && int(dec.reading) <= dial:
		return &d.Dial.Readings[dec.reading-1]
	case dec.reading > 0 && d.Keypad != nil && int(dec.reading)-dial <= len(d.Keypad.Readings):
		return &d.Keypad.Readings[int(dec.reading)-dial-1]
	case dial > 0:
		return &d.Dial.Readings[0]
	case d.Keypad != nil && len(d.Keypad.Readings) > 0 && (d.Dial == nil || !d.Dial.Emergency):
		// As written a name, or a dial string of no reading
		// (1800PAWPAWP: four digits and dial characters) that is no
		// emergency number, which shows as one.
		return &d.Keypad.Readings[0]
	}
	return nil
}

// readings is how many readings d's dial string as written (Dial) has:
// the readings of its keypad reading (Keypad) follow them in
// Decision.reading.
func (d *Destination) readings() uint8 {
	if d.Dial == nil {
		return 0
	}
	return uint8(len(d.Dial.Readings))
}

// IsEmergency reports whether d is an emergency number, which the rule
// emergency allows: Number.Emergency, or a SIP user of digits of no
// reading that is one (DialString.Emergency: sip:911@gw.contoso.com),
// and, in a SIP URI, a host that sip_domains allows. A nil Policy is the
// default one.
func (p *Policy) IsEmergency(d *PropertyDestination) bool {
	emergency := d.Number.Emergency || d.Dial != nil && d.Dial.Emergency
	return emergency && (!d.SIP || p == nil || p.hostAllowed(d.Host))
}

// IsEmergencyCall reports whether d is an emergency number that the
// pool certainly sends to an emergency service, which makes a request
// that dials it now an emergency call that no velocity limit refuses: a
// tel: URI or a bare number, or a SIP URI at a host sip_domains lists.
// The host decides where the pool sends a SIP URI; without sip_domains
// (or without a policy: a nil Policy) no host is known to be the site's
// own, and sip:911@anywhere;user=phone may reach anything but an
// emergency service. Such a number is still an emergency number to the
// rules (IsEmergency); it is no emergency call to the limits. A dial
// string (Destination.Dial) is one when every reading of it is an
// emergency number, at such a host; a SIP user of digits of no reading
// when it is an emergency short code (DialString.Emergency), at such a
// host.
func (p *Policy) IsEmergencyCall(d *PropertyDestination) bool {
	siteHost := !d.SIP || p != nil && !p.anyHost && p.sipDomains.match(d.Host)
	if dial := d.Dial; dial != nil && len(dial.Readings) == 0 && !dial.Unjudgeable {
		return dial.Emergency && siteHost
	}
	if dial := d.Dial; dial != nil && !dial.Unjudgeable && siteHost {
		for i := range dial.Readings {
			if !dial.Readings[i].Emergency {
				return false
			}
		}
		return true
	}
	return d.Number.Emergency && siteHost
}

// IsDialled reports whether d rings a phone number that the limits
// count: a number (IsNumber), or a SIP name that a gateway could dial
// as one (Dial), or with its letters as keypad digits (Keypad), or as
// a short code: a user of digits of no reading that is an emergency
// number or a premium-rate short code (unless PremiumShortCodes is
// allow), or has more digits than max_extension_digits allows (an internal extension, up to them, rings
// no trunk). Without a policy (a nil Policy) no short code is judged,
// nor counted: a user of no reading is a name.
func (p *Policy) IsDialled(d *Destination) bool {
	return d.IsNumber() || p.dialled(d.Dial) || p.dialled(d.Keypad)
}

// DialsThrough reports whether d is a number whose extension the rule
// max_extension_digits refuses: more digits than it allows, or a
// premium-rate short code of the number's region (unless
// PremiumShortCodes is allow). A PBX that dials extensions through rings
// what follows the number it reaches (+14255551234;ext=011442071234567
// is a number in London), which no reading puts in the default region:
// the limits count it as international, as they count a short code.
// Only report mode and the emergency operation (under EmergencyCalls
// any) deliver it. Without a policy (a nil Policy) no extension is
// judged, nor counted so.
func (p *Policy) DialsThrough(d *Destination) bool {
	if p == nil || !d.IsNumber() || d.Number.Extension == "" {
		return false
	}
	return len(d.Number.Extension) > p.maxExtension || p.refusePremium && d.Number.PremiumExtension
}

// DialsShortCode reports whether d is a dial string with readings (or a
// vanity number whose keypad reading is one) that a gateway taking one
// of its outside-line prefixes dials as a short code the rule short_code
// refuses: the digits after the prefix (DialString.Rest) more than
// max_extension_digits allows, or a premium-rate short code (unless
// PremiumShortCodes is allow). sip:011880@gw with outside_line 0 in
// Germany reads as +49 11880, a number of the default region, where such
// a gateway dials 11880, directory enquiries: the limits count it as
// international, as they count the short code alone (sip:11880@gw),
// which no reading puts in the default region either. Without a policy
// (a nil Policy) there is no outside line, and no such short code.
func (p *Policy) DialsShortCode(d *Destination) bool {
	return p.restShortCode(d.Dial) || p.restShortCode(d.Keypad)
}

// restShortCode is DialsShortCode of a dial string of a destination
// (Dial or Keypad). One of no reading is a short code as written, which
// Numbers.International counts already.
func (p *Policy) restShortCode(dial *DialString) bool {
	return p != nil && dial != nil && len(dial.Readings) > 0 && (dial.Rest > p.maxExtension || p.refusePremium && dial.Premium)
}

// dialled is IsDialled of a dial string of a destination (Dial or
// Keypad).
func (p *Policy) dialled(dial *DialString) bool {
	switch {
	case dial == nil:
		return false
	case len(dial.Readings) > 0 || dial.Unjudgeable:
		return true
	}
	return p != nil && (dial.Emergency || p.refusePremium && dial.Premium || dial.Digits > p.maxExtension)
}

// hostAllowed reports whether sip_domains allows a SIP host.
func (p *Policy) hostAllowed(host string) bool {
	return p.anyHost || p.sipDomains.match(host)
}

// RefusalError returns the 403 Forbidden / DialoutNotAllowed answer to a
// destination the policy refuses (or, in report mode, would refuse);
// nil for one it allows. Its message names the property and the rule
// and never the destination: "to is refused by the destination policy
// (deny_types: premium_rate numbers are not allowed)."
func RefusalError(d *PropertyDestination, dec Decision) *Error {
	if dec.Verdict != VerdictRefused && dec.Verdict != VerdictWouldRefuse {
		return nil
	}
	num := dec.Number(&d.Destination)
	if num == nil {
		num = &d.Number
	}
	var why string
	switch dec.Rule {
	case RuleMaxExtensionDigits:
		why = "its extension has more digits than allowed"
		if dec.premium && num.PremiumExtension {
			why = "its extension is a premium-rate short code where the number is, which a PBX that dials extensions through may dial"
		}
	case RuleDeny:
		why = "numbers with this prefix are not allowed"
	case RuleDenyRegions, RuleAllowRegions:
		why = regionPhrase(num.Region) + " are not allowed"
		if dec.Rule == RuleDenyRegions && num.Region == "" {
			why = "numbers of no known region with a denied region's calling code are not allowed"
		}
	case RuleDenyTypes:
		why = num.Type.String() + " numbers are not allowed"
		switch {
		case dec.starts > 0:
			// The number is none of the type, but starts with one.
			why = NumberType(dec.starts-1).String() + " numbers are not allowed, and its first digits are one, which a switch may complete the call on"
		case num.Type == NumberUnknown:
			// "unknown numbers" would read as numbers the edge did not
			// understand, rather than one no numbering plan lists.
			why = "numbers of type unknown, in no range the numbering data lists, are not allowed"
		}
	case RuleSIPDomains:
		why = "SIP addresses of this domain are not allowed"
	case RuleDialString:
		why = "its SIP user is a dial string with pauses or the keys *, # or A to D that a gateway may dial and no number rule can judge"
	case RuleShortCode:
		dial := d.Dial
		if dec.keypad {
			dial = d.Keypad
		}
		switch {
		case dec.premium && dial != nil && dial.Premium:
			why = "its SIP user's digits, as written or after an outside-line prefix, are a premium-rate short code of the default region, which a gateway may dial"
		case dial != nil && len(dial.Readings) > 0:
			why = "its SIP user's digits after an outside-line prefix are no phone number, more than max_extension_digits allows an extension, which a gateway may dial as a service's short code"
		default:
			why = "its SIP user is digits of no phone number, more than max_extension_digits allows an extension, which a gateway may dial as a service's short code"
		}
	default:
		why = "it is neither a phone number nor a SIP URI"
	}
	switch {
	case dec.keypad && dec.reading > 0:
		why += ", and its SIP user, read with its letters as the digits of a phone keypad (a vanity number), is such a number as a gateway may dial it"
	case dec.keypad:
		why += ", when its SIP user is read with its letters as the digits of a phone keypad (a vanity number), as a gateway may dial it"
	case dec.reading > 0 && d.Dial != nil && int(dec.reading) > d.Dial.Written:
		why += ", and its SIP user's digits after an outside-line prefix are such a number as a gateway may dial them"
	case dec.reading > 0:
		why += ", and its SIP user's digits are such a number as a gateway may dial them"
	}
	reason := "is refused by the destination policy (" + dec.Rule.String() + ": " + why + ")"
	return &Error{
		Status:     403,
		Subcode:    SubcodeDialoutNotAllowed,
		Message:    d.Property + " " + reason + ".",
		Parameters: []Parameter{{Name: d.Property, Reason: reason}},
	}
}

// regionPhrase names the numbers of a region for a message: the region
// is the caller's own number's, and not personal.
func regionPhrase(region string) string {
	switch {
	case region == nonGeographicRegion:
		return "non-geographic numbers"
	case regionIndex(region) < 0:
		return "numbers of no known region"
	}
	return "numbers of region " + region
}

// entryError is an error about entry i (of n; i < 0 for a single value)
// of a configuration field. The entry is quoted only when it holds no
// digit: a mistyped entry may be a phone number, which an error never
// shows.
func entryError(field string, i, n int, entry, reason string) error {
	which := field
	if i >= 0 {
		which = fmt.Sprintf("%s: entry %d of %d", field, i+1, n)
	}
	if strings.IndexFunc(entry, unicode.IsDigit) >= 0 {
		return fmt.Errorf("%s %s", which, reason)
	}
	return fmt.Errorf("%s (%q) %s", which, entry, reason)
}

// regionSet is a set of regions: a bit for each two-letter code and one
// for "001".
type regionSet [(26*26 + 1 + 63) / 64]uint64

// regionIndex returns the bit of a region in a regionSet: two upper-case
// letters, or "001"; -1 for anything else ("" for no region, and "ZZ",
// phonenumbers' unknown region, are in no set).
func regionIndex(r string) int {
	switch {
	case len(r) == 2 && r[0] >= 'A' && r[0] <= 'Z' && r[1] >= 'A' && r[1] <= 'Z' && r != "ZZ":
		return int(r[0]-'A')*26 + int(r[1]-'A')
	case r == nonGeographicRegion:
		return 26 * 26
	}
	return -1
}

func (s *regionSet) has(r string) bool {
	i := regionIndex(r)
	return i >= 0 && s[i>>6]&(1<<(i&63)) != 0
}

func (s *regionSet) add(i int) { s[i>>6] |= 1 << (i & 63) }

// callingCodes is a set of country calling codes (1 to 999).
type callingCodes [1000]bool

// add adds a calling code; 0 (a region without one, such as "001") adds
// nothing.
func (c *callingCodes) add(code int) {
	if code > 0 && code < len(c) {
		c[code] = true
	}
}

// starts reports whether an E.164 number starts with a code of the set.
// Calling codes are a prefix code (none starts another), so at most one
// of the number's first one, two and three digits is one. It allocates
// nothing.
func (c *callingCodes) starts(e164 string) bool {
	code := 0
	for i := 1; i < len(e164) && i <= 3; i++ {
		d := e164[i] - '0'
		if e164[0] != '+' || d > 9 {
			return false
		}
		if code = code*10 + int(d); c[code] {
			return true
		}
	}
	return false
}

// compileRegions reads a list of regions.
func compileRegions(field string, list []string) (regionSet, error) {
	var s regionSet
	supported := phonenumbers.GetSupportedRegions()
	for i, entry := range list {
		r := strings.ToUpper(strings.TrimSpace(entry))
		if r != nonGeographicRegion && !supported[r] {
			return s, entryError(field, i, len(list), entry,
				"is not a region phone numbers are known for (use an ISO 3166-1 code such as US or DE, or 001 for non-geographic numbers)")
		}
		s.add(regionIndex(r))
	}
	return s, nil
}

// compileTypes reads deny_types into a bit set.
func compileTypes(list []string) (uint16, error) {
	var bits uint16
	if len(list) == 0 {
		for _, t := range defaultDenyTypes {
			bits |= 1 << t
		}
		return bits, nil
	}
	if len(list) == 1 && strings.EqualFold(strings.TrimSpace(list[0]), "none") {
		return 0, nil
	}
	for i, entry := range list {
		if strings.EqualFold(strings.TrimSpace(entry), "none") {
			return 0, entryError("deny_types", i, len(list), entry, "is none, which must be the only entry")
		}
		t, err := ParseNumberType(strings.TrimSpace(entry))
		if err != nil {
			return 0, entryError("deny_types", i, len(list), entry,
				"is not a number type (one of "+strings.Join(numberTypeNames[:], ", ")+", or none alone)")
		}
		bits |= 1 << t
	}
	return bits, nil
}

// prefixTrie holds the allow and deny prefixes, a node per digit, so
// that one walk along a number's digits finds every prefix that starts
// it: at most 15 array lookups, no comparison of strings.
type prefixTrie struct {
	// nodes[0] is the root, '+'; a child index of 0 is no child.
	nodes []prefixNode
}

type prefixNode struct {
	next        [10]uint32
	allow, deny bool // an allow or deny prefix ends here
}

// match reports whether an allow prefix and whether a deny prefix start
// e164. It allocates nothing.
func (t *prefixTrie) match(e164 string) (allow, deny bool) {
	if len(t.nodes) == 0 || len(e164) < 2 || e164[0] != '+' {
		return false, false
	}
	n := uint32(0)
	for i := 1; i < len(e164); i++ {
		c := e164[i] - '0'
		if c > 9 {
			break
		}
		if n = t.nodes[n].next[c]; n == 0 {
			break
		}
		if t.nodes[n].allow {
			return true, deny
		}
		deny = deny || t.nodes[n].deny
	}
	return false, deny
}

// add adds the prefix "+digits" (checked) to the allow or deny list.
func (t *prefixTrie) add(digits string, allow bool) {
	if len(t.nodes) == 0 {
		t.nodes = append(t.nodes, prefixNode{})
	}
	n := uint32(0)
	for i := 0; i < len(digits); i++ {
		c := digits[i] - '0'
		if t.nodes[n].next[c] == 0 {
			t.nodes = append(t.nodes, prefixNode{})
			t.nodes[n].next[c] = uint32(len(t.nodes) - 1)
		}
		n = t.nodes[n].next[c]
	}
	if allow {
		t.nodes[n].allow = true
	} else {
		t.nodes[n].deny = true
	}
}

// maxE164Digits is the most digits an E.164 number has.
const maxE164Digits = 15

// addPrefixes checks a list of E.164 prefixes and adds them to t.
func (t *prefixTrie) addPrefixes(field string, list []string, allow bool) error {
	for i, entry := range list {
		digits, ok := strings.CutPrefix(strings.TrimSpace(entry), "+")
		if !ok || digits == "" || len(digits) > maxE164Digits || digits[0] == '0' || strings.Trim(digits, "0123456789") != "" {
			return entryError(field, i, len(list), entry,
				"is not an E.164 prefix: + and 1 to 15 digits, the first of them a country code's (+44, +1425)")
		}
		t.add(digits, allow)
	}
	return nil
}

// checkDenyOutsideAllow refuses a deny prefix that an allow prefix
// starts (or equals): allow comes first, so it would refuse nothing.
// Both lists are checked already.
func checkDenyOutsideAllow(allow, deny []string) error {
	for i, d := range deny {
		d = strings.TrimSpace(d)
		for j, a := range allow {
			if strings.HasPrefix(d, strings.TrimSpace(a)) {
				return entryError("deny", i, len(deny), d,
					fmt.Sprintf("is within allow's entry %d of %d, and allow comes first: it would refuse nothing", j+1, len(allow)))
			}
		}
	}
	return nil
}

// hostSet is a compiled sip_domains: host names matched exactly, names
// whose subdomains match ("*.contoso.com" is kept as "contoso.com"), and
// IP addresses.
type hostSet struct {
	names     map[string]struct{}
	wildcards map[string]struct{}
	addrs     map[netip.Addr]struct{}
}

// match reports whether a SIP host (lower case, as ParseSIPURI gives it)
// is in the set. It allocates nothing.
func (s *hostSet) match(host string) bool {
	if addr, ok := hostAddr(host); ok {
		_, in := s.addrs[addr]
		return in
	}
	host = strings.TrimSuffix(host, ".")
	if _, in := s.names[host]; in {
		return true
	}
	for i := strings.IndexByte(host, '.'); i >= 0; {
		host = host[i+1:]
		if _, in := s.wildcards[host]; in {
			return true
		}
		i = strings.IndexByte(host, '.')
	}
	return false
}

// hostAddr reads a host that is an IP address: dotted IPv4, or IPv6 in
// brackets. An IPv4-mapped IPv6 address is the IPv4 address it maps.
func hostAddr(host string) (netip.Addr, bool) {
	if inner, ok := strings.CutPrefix(host, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		if !ok {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(inner)
		return a.Unmap(), err == nil && a.Is6() && a.Zone() == ""
	}
	// A host name's last label starts with a letter; an IPv4 address's
	// with a digit.
	if i := strings.LastIndexByte(host, '.'); i < 0 || i+1 >= len(host) || host[i+1] < '0' || host[i+1] > '9' {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	return a, err == nil && a.Is4()
}

// entryAddr reads an entry of sip_domains that is an IP address: IPv4,
// or IPv6 with or without brackets, without a zone.
func entryAddr(e string) (netip.Addr, bool) {
	if a, ok := hostAddr(e); ok {
		return a, true
	}
	a, err := netip.ParseAddr(e)
	return a.Unmap(), err == nil && a.Zone() == ""
}

// compileHosts reads sip_domains.
func compileHosts(list []string) (hostSet, error) {
	s := hostSet{names: map[string]struct{}{}, wildcards: map[string]struct{}{}, addrs: map[netip.Addr]struct{}{}}
	for i, entry := range list {
		e := strings.ToLower(strings.TrimSpace(entry))
		if a, ok := entryAddr(e); ok {
			s.addrs[a] = struct{}{}
			continue
		}
		name, wildcard := strings.CutPrefix(e, "*.")
		name = strings.TrimSuffix(name, ".")
		if !sipHostname(name) {
			return s, entryError("sip_domains", i, len(list), entry,
				"is not a host name, *. and a host name, or an IP address (contoso.com, *.contoso.com, 192.0.2.10)")
		}
		if wildcard {
			s.wildcards[name] = struct{}{}
		} else {
			s.names[name] = struct{}{}
		}
	}
	return s, nil
}
