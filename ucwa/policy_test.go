package ucwa

import (
	"encoding/json"
	"strings"
	"testing"
)

// judgeCase is one destination judged by one policy.
type judgeCase struct {
	name   string
	policy DestinationPolicy
	// region is the default region of the Numbers reading the value;
	// "-" for none, "" for US.
	region string
	// emergency is the Numbers' emergency list (nil: the region's).
	emergency []string
	// rel is the operation; "" for startPhoneAudio.
	rel string
	// kind is the destination's kind; 0 for DialledNow.
	kind  DestinationKind
	value string
	want  Decision
}

var (
	allowed = func(r Rule) Decision { return Decision{Verdict: VerdictAllowed, Rule: r} }
	refused = func(r Rule) Decision { return Decision{Verdict: VerdictRefused, Rule: r} }
	report  = func(r Rule) Decision { return Decision{Verdict: VerdictWouldRefuse, Rule: r} }
)

// strictPolicy refuses as much as a policy can, so that only the rules
// that allow before all others (emergency, not_dialled, allow) pass.
var strictPolicy = DestinationPolicy{
	AllowRegions: []string{"DE"},
	DenyRegions:  []string{"US", "GB", "001"},
	DenyTypes:    numberTypeNames[:],
	Deny:         []string{"+1", "+4", "+8", "+9"},
	SIPDomains:   []string{"contoso.de"},
}

var judgeCases = []judgeCase{
	// The default policy.
	{name: "default allows an ordinary number", value: "+14255551234", want: allowed(RuleDefault)},
	{name: "default refuses premium_rate", value: "+19005551234", want: refused(RuleDenyTypes)},
	{name: "default refuses shared_cost", value: "+448448123456", policy: DestinationPolicy{}, want: refused(RuleDenyTypes)},
	{name: "default refuses personal_number", value: "+447012345678", want: refused(RuleDenyTypes)},
	{name: "default refuses uan", value: "+445512345678", want: refused(RuleDenyTypes)},
	{name: "default allows a SIP name", value: "sip:john@contoso.com", want: allowed(RuleDefault)},
	{name: "default judges the number in a SIP URI", value: "sip:+19005551234@gw.contoso.com;user=phone", want: refused(RuleDenyTypes)},
	{name: "default allows a non-geographic number", value: "+881631234567", want: allowed(RuleDefault)},

	// deny prefixes.
	{name: "deny prefix", policy: DestinationPolicy{Deny: []string{"+1900"}, DenyTypes: []string{"none"}}, value: "+19005551234", want: refused(RuleDeny)},
	{name: "deny before deny_types", policy: DestinationPolicy{Deny: []string{"+1900", "+1976"}}, value: "+19005551234", want: refused(RuleDeny)},
	{name: "deny prefix, tel", policy: DestinationPolicy{Deny: []string{"+1976"}}, value: "tel:+1-976-555-1234", want: refused(RuleDeny)},
	{name: "deny prefix, SIP phone user", policy: DestinationPolicy{Deny: []string{"+1976"}}, value: "sip:+19765551234@gw.contoso.com;user=phone", want: refused(RuleDeny)},
	{name: "deny prefix, national form", policy: DestinationPolicy{Deny: []string{"+1976"}}, value: "(976) 555-1234", want: refused(RuleDeny)},
	{name: "deny prefix, other number", policy: DestinationPolicy{Deny: []string{"+1976"}}, value: "+14255551234", want: allowed(RuleDefault)},
	{name: "deny prefix, the whole number", policy: DestinationPolicy{Deny: []string{"+14255551234"}}, value: "+14255551234", want: refused(RuleDeny)},
	{name: "deny prefix, longer than the number", policy: DestinationPolicy{Deny: []string{"+142555512345"}}, value: "+14255551234", want: allowed(RuleDefault)},
	{name: "deny prefix, extension kept", policy: DestinationPolicy{Deny: []string{"+1425"}}, value: "+14255551234;ext=12", want: refused(RuleDeny)},
	{name: "deny satellite", policy: DestinationPolicy{Deny: []string{"+881", "+882", "+883"}}, value: "+881631234567", want: refused(RuleDeny)},
	{name: "deny among many", policy: DestinationPolicy{Deny: []string{"+44", "+1900", "+33", "+1976", "+49301"}}, value: "+4930123456", want: refused(RuleDeny)},
	{name: "deny among many, between two", policy: DestinationPolicy{Deny: []string{"+44", "+1900", "+33", "+1976", "+49301"}}, value: "+4930023456", want: allowed(RuleDefault)},
	{name: "deny, nested prefixes", policy: DestinationPolicy{Deny: []string{"+19001", "+1900", "+190015"}, DenyTypes: []string{"none"}}, value: "+19005551234", want: refused(RuleDeny)},

	// allow prefixes.
	{name: "allow overrides deny_types", policy: DestinationPolicy{Allow: []string{"+1900555"}}, value: "+19005551234", want: allowed(RuleAllow)},
	{name: "allow overrides deny", policy: DestinationPolicy{Allow: []string{"+1900555"}, Deny: []string{"+1900"}}, value: "+19005551234", want: allowed(RuleAllow)},
	// The number leaves the allow prefix after a digit past the deny
	// prefix: the deny prefix it went through still refuses it.
	{name: "deny under a longer allow it leaves", policy: DestinationPolicy{Deny: []string{"+44"}, Allow: []string{"+44207"}}, value: "+442081234567", want: refused(RuleDeny)},
	{name: "allow is a prefix only", policy: DestinationPolicy{Allow: []string{"+1900555"}}, value: "+19004551234", want: refused(RuleDenyTypes)},
	{name: "allow overrides every number rule", policy: strictPolicy, emergency: []string{}, value: "+19005551234", want: refused(RuleDeny)},
	{name: "allow overrides every number rule, allowed", policy: with(strictPolicy, func(c *DestinationPolicy) { c.Allow = []string{"+1900"} }), value: "+19005551234", want: allowed(RuleAllow)},
	{name: "allow overrides allow_regions", policy: DestinationPolicy{AllowRegions: []string{"US"}, Allow: []string{"+881"}}, value: "+881631234567", want: allowed(RuleAllow)},
	{name: "allow, SIP phone user at an allowed host", policy: DestinationPolicy{Allow: []string{"+1900"}, SIPDomains: []string{"*.contoso.com"}}, value: "sip:+19005551234@gw.contoso.com;user=phone", want: allowed(RuleAllow)},
	{name: "allow, SIP phone user at another host", policy: DestinationPolicy{Allow: []string{"+1900"}, SIPDomains: []string{"*.contoso.com"}}, value: "sip:+19005551234@gw.evil.example;user=phone", want: refused(RuleSIPDomains)},

	// Extensions.
	{name: "max_extension_digits default allows 4", value: "+442071234567;ext=1234", want: allowed(RuleDefault)},
	{name: "max_extension_digits default refuses a 5-digit short code", value: "+4930123456;ext=11880", want: refused(RuleMaxExtensionDigits)},
	{name: "max_extension_digits default refuses a 6-digit short code", value: "+442071234567;ext=118118", want: refused(RuleMaxExtensionDigits)},
	{name: "max_extension_digits default refuses an outside line and a short code", value: "+4930123456 x0 11880", want: refused(RuleMaxExtensionDigits)},
	{name: "max_extension_digits default refuses 7", value: "tel:+14255551234;ext=1234567", want: refused(RuleMaxExtensionDigits)},
	{name: "max_extension_digits 6 allows 6", policy: DestinationPolicy{MaxExtensionDigits: ptr(6)}, value: "+14255551234;ext=123456", want: allowed(RuleDefault)},
	{name: "max_extension_digits counts a bare number's x", value: "+1 425 555 1234 x90114412345", want: refused(RuleMaxExtensionDigits)},
	{name: "max_extension_digits before allow", policy: DestinationPolicy{Allow: []string{"+1425555"}}, value: "+14255551234;ext=011442071234567", want: refused(RuleMaxExtensionDigits)},
	{name: "max_extension_digits judges a SIP phone user", value: "sip:+14255551234;ext=011442071234567@gw.contoso.com;user=phone", want: refused(RuleMaxExtensionDigits)},
	{name: "max_extension_digits 0 refuses any", policy: DestinationPolicy{MaxExtensionDigits: ptr(0)}, value: "+14255551234;ext=1", want: refused(RuleMaxExtensionDigits)},
	{name: "max_extension_digits 0 allows none", policy: DestinationPolicy{MaxExtensionDigits: ptr(0)}, value: "+14255551234", want: allowed(RuleDefault)},
	{name: "max_extension_digits 20 allows any", policy: DestinationPolicy{MaxExtensionDigits: ptr(20)}, value: "+14255551234;ext=01144207123456789012", want: allowed(RuleDefault)},
	{name: "max_extension_digits report", policy: DestinationPolicy{Mode: "report"}, value: "+14255551234;ext=1234567", want: report(RuleMaxExtensionDigits)},
	{name: "max_extension_digits, emergency call", rel: "startEmergencyCall", value: "+14255551234;ext=1234567", want: report(RuleMaxExtensionDigits)},

	// Regions.
	{name: "allow_regions US refuses GB", policy: DestinationPolicy{AllowRegions: []string{"US"}}, value: "+442071234567", want: refused(RuleAllowRegions)},
	{name: "allow_regions US allows US", policy: DestinationPolicy{AllowRegions: []string{"US"}}, value: "+14255551234", want: allowed(RuleDefault)},
	{name: "allow_regions US refuses CA", policy: DestinationPolicy{AllowRegions: []string{"US"}}, value: "+14165551234", want: refused(RuleAllowRegions)},
	{name: "allow_regions in any letter case", policy: DestinationPolicy{AllowRegions: []string{"us", " Gb "}}, value: "+442071234567", want: allowed(RuleDefault)},
	{name: "allow_regions refuses non-geographic", policy: DestinationPolicy{AllowRegions: []string{"US"}}, value: "+881631234567", want: refused(RuleAllowRegions)},
	{name: "allow_regions 001 allows non-geographic", policy: DestinationPolicy{AllowRegions: []string{"US", "001"}}, value: "+881631234567", want: allowed(RuleDefault)},
	{name: "allow_regions refuses no region", policy: DestinationPolicy{AllowRegions: []string{"US"}}, value: "+19765551234", want: refused(RuleAllowRegions)},
	{name: "allow_regions judges a SIP phone user", policy: DestinationPolicy{AllowRegions: []string{"US"}}, value: "sip:+442071234567@gw.contoso.com;user=phone", want: refused(RuleAllowRegions)},
	{name: "allow_regions leaves SIP names", policy: DestinationPolicy{AllowRegions: []string{"US"}}, value: "sip:john@contoso.co.uk", want: allowed(RuleDefault)},
	// Numbers of a shared country code are in their own regions.
	{name: "allow_regions US CA refuses Jamaica", policy: DestinationPolicy{AllowRegions: []string{"US", "CA"}}, value: "+18765551234", want: refused(RuleAllowRegions)},
	{name: "allow_regions US CA refuses the BVI", policy: DestinationPolicy{AllowRegions: []string{"US", "CA"}}, value: "+12845551234", want: refused(RuleAllowRegions)},
	{name: "allow_regions US CA refuses the USVI", policy: DestinationPolicy{AllowRegions: []string{"US", "CA"}}, value: "+13405551234", want: refused(RuleAllowRegions)},
	{name: "allow_regions US CA refuses Guam", policy: DestinationPolicy{AllowRegions: []string{"US", "CA"}}, value: "+16715551234", want: refused(RuleAllowRegions)},
	{name: "allow_regions US CA refuses American Samoa", policy: DestinationPolicy{AllowRegions: []string{"US", "CA"}}, value: "+16845551234", want: refused(RuleAllowRegions)},
	{name: "allow_regions US CA refuses Caribbean written nationally", policy: DestinationPolicy{AllowRegions: []string{"US", "CA"}}, value: "1 (809) 555-1234", want: refused(RuleAllowRegions)},
	{name: "allow_regions US CA allows toll-free", policy: DestinationPolicy{AllowRegions: []string{"US", "CA"}}, value: "+18005551234", want: allowed(RuleDefault)},
	{name: "allow_regions GB refuses Jersey", policy: DestinationPolicy{AllowRegions: []string{"GB"}}, value: "+441534123456", want: refused(RuleAllowRegions)},
	{name: "allow_regions GB refuses a Guernsey mobile", policy: DestinationPolicy{AllowRegions: []string{"GB"}}, value: "+447781123456", want: refused(RuleAllowRegions)},
	{name: "allow_regions GB refuses the Isle of Man", policy: DestinationPolicy{AllowRegions: []string{"GB"}}, value: "+447624123456", want: refused(RuleAllowRegions)},
	{name: "allow_regions RU refuses Kazakhstan", policy: DestinationPolicy{AllowRegions: []string{"RU"}}, value: "+77012345678", want: refused(RuleAllowRegions)},
	{name: "allow_regions IT refuses the Vatican", policy: DestinationPolicy{AllowRegions: []string{"IT"}}, value: "+390669812345", want: refused(RuleAllowRegions)},
	{name: "allow_regions AU refuses Christmas Island", policy: DestinationPolicy{AllowRegions: []string{"AU"}}, value: "+61891641234", want: refused(RuleAllowRegions)},
	{name: "allow_regions NO refuses Svalbard", policy: DestinationPolicy{AllowRegions: []string{"NO"}}, value: "+4779123456", want: refused(RuleAllowRegions)},
	{name: "allow_regions RE refuses Mayotte", policy: DestinationPolicy{AllowRegions: []string{"RE"}}, value: "+262269612345", want: refused(RuleAllowRegions)},
	{name: "deny_regions", policy: DestinationPolicy{DenyRegions: []string{"GB"}}, value: "+442071234567", want: refused(RuleDenyRegions)},
	{name: "deny_regions other", policy: DestinationPolicy{DenyRegions: []string{"GB"}}, value: "+14255551234", want: allowed(RuleDefault)},
	{name: "deny_regions 001", policy: DestinationPolicy{DenyRegions: []string{"001"}}, value: "+80012345678", want: refused(RuleDenyRegions)},
	{name: "deny_regions before allow_regions", policy: DestinationPolicy{AllowRegions: []string{"US"}, DenyRegions: []string{"GB"}}, value: "+442071234567", want: refused(RuleDenyRegions)},
	{name: "deny_regions takes no region of a denied region's code", policy: DestinationPolicy{DenyRegions: []string{"US", "CA"}}, value: "+19765551234", want: refused(RuleDenyRegions)},
	{name: "deny_regions takes no region of a shared code", policy: DestinationPolicy{DenyRegions: []string{"RU"}}, value: "+76001234567", want: refused(RuleDenyRegions)},
	// Morocco's +212, shared with Western Sahara: a code of three digits.
	{name: "deny_regions takes no region of a three-digit code", policy: DestinationPolicy{DenyRegions: []string{"MA"}}, value: "+212123456789", want: refused(RuleDenyRegions)},
	{name: "deny_regions takes no region of a code in any letter case", policy: DestinationPolicy{DenyRegions: []string{" gb "}}, value: "+440123456789", want: refused(RuleDenyRegions)},
	{name: "deny_regions leaves no region of another code", policy: DestinationPolicy{DenyRegions: []string{"RU", "GB", "001"}}, value: "+19765551234", want: allowed(RuleDefault)},
	{name: "deny_regions no region, report", policy: DestinationPolicy{Mode: "report", DenyRegions: []string{"RU"}}, value: "+76001234567", want: report(RuleDenyRegions)},
	{name: "deny before deny_regions", policy: DestinationPolicy{DenyRegions: []string{"GB"}, Deny: []string{"+44"}}, value: "+442071234567", want: refused(RuleDeny)},
	{name: "allow_regions before deny_types", policy: DestinationPolicy{AllowRegions: []string{"GB"}}, value: "+19005551234", want: refused(RuleAllowRegions)},

	// Types.
	{name: "deny_types none", policy: DestinationPolicy{DenyTypes: []string{"none"}}, value: "+19005551234", want: allowed(RuleDefault)},
	{name: "deny_types None", policy: DestinationPolicy{DenyTypes: []string{"None"}}, value: "+19005551234", want: allowed(RuleDefault)},
	{name: "deny_types mobile", policy: DestinationPolicy{DenyTypes: []string{"Mobile"}}, value: "+447400123456", want: refused(RuleDenyTypes)},
	{name: "deny_types replaces the default", policy: DestinationPolicy{DenyTypes: []string{"mobile"}}, value: "+19005551234", want: allowed(RuleDefault)},
	{name: "deny_types mobile is exact", policy: DestinationPolicy{DenyTypes: []string{"mobile"}}, value: "+14255551234", want: allowed(RuleDefault)},
	{name: "deny_types unknown", policy: DestinationPolicy{DenyTypes: []string{"unknown"}}, value: "+19765551234", want: refused(RuleDenyTypes)},
	{name: "deny_types toll_free non-geographic", policy: DestinationPolicy{DenyTypes: []string{"toll_free"}}, value: "+80012345678", want: refused(RuleDenyTypes)},

	// SIP domains.
	{name: "sip_domains exact", policy: DestinationPolicy{SIPDomains: []string{"contoso.com"}}, value: "sip:john@contoso.com", want: allowed(RuleDefault)},
	{name: "sip_domains any letter case", policy: DestinationPolicy{SIPDomains: []string{"Contoso.COM"}}, value: "sip:john@CONTOSO.com", want: allowed(RuleDefault)},
	{name: "sip_domains trailing dot in the host", policy: DestinationPolicy{SIPDomains: []string{"contoso.com"}}, value: "sip:john@contoso.com.", want: allowed(RuleDefault)},
	{name: "sip_domains trailing dot in the entry", policy: DestinationPolicy{SIPDomains: []string{"contoso.com."}}, value: "sip:john@contoso.com", want: allowed(RuleDefault)},
	{name: "sip_domains sips and port", policy: DestinationPolicy{SIPDomains: []string{"contoso.com"}}, value: "sips:john@contoso.com:5061;transport=tls", want: allowed(RuleDefault)},
	{name: "sip_domains exact is not its subdomains", policy: DestinationPolicy{SIPDomains: []string{"contoso.com"}}, value: "sip:john@gw.contoso.com", want: refused(RuleSIPDomains)},
	{name: "sip_domains other host", policy: DestinationPolicy{SIPDomains: []string{"contoso.com"}}, value: "sip:john@evil.example", want: refused(RuleSIPDomains)},
	{name: "sip_domains suffix without a dot", policy: DestinationPolicy{SIPDomains: []string{"contoso.com", "*.contoso.com"}}, value: "sip:john@notcontoso.com", want: refused(RuleSIPDomains)},
	{name: "sip_domains host under the domain's name", policy: DestinationPolicy{SIPDomains: []string{"contoso.com", "*.contoso.com"}}, value: "sip:john@contoso.com.evil.example", want: refused(RuleSIPDomains)},
	{name: "sip_domains wildcard one level", policy: DestinationPolicy{SIPDomains: []string{"*.contoso.com"}}, value: "sip:john@gw.contoso.com", want: allowed(RuleDefault)},
	{name: "sip_domains wildcard any depth", policy: DestinationPolicy{SIPDomains: []string{"*.contoso.com"}}, value: "sip:john@a.b.eu.contoso.com", want: allowed(RuleDefault)},
	{name: "sip_domains wildcard not the apex", policy: DestinationPolicy{SIPDomains: []string{"*.contoso.com"}}, value: "sip:john@contoso.com", want: refused(RuleSIPDomains)},
	{name: "sip_domains wildcard trailing dot", policy: DestinationPolicy{SIPDomains: []string{"*.contoso.com"}}, value: "sip:john@gw.contoso.com.", want: allowed(RuleDefault)},
	{name: "sip_domains wildcard among others", policy: DestinationPolicy{SIPDomains: []string{"fabrikam.com", "*.contoso.com", "*.b.example"}}, value: "sip:john@x.a.b.example", want: allowed(RuleDefault)},
	{name: "sip_domains IPv4", policy: DestinationPolicy{SIPDomains: []string{"192.0.2.10"}}, value: "sip:john@192.0.2.10:5060", want: allowed(RuleDefault)},
	{name: "sip_domains IPv4 other", policy: DestinationPolicy{SIPDomains: []string{"192.0.2.10"}}, value: "sip:john@192.0.2.11", want: refused(RuleSIPDomains)},
	{name: "sip_domains IPv6 spelled otherwise", policy: DestinationPolicy{SIPDomains: []string{"2001:DB8::1"}}, value: "sip:john@[2001:db8:0:0::1]", want: allowed(RuleDefault)},
	{name: "sip_domains IPv6 in brackets", policy: DestinationPolicy{SIPDomains: []string{"[2001:db8::1]"}}, value: "sip:john@[2001:db8::1]", want: allowed(RuleDefault)},
	{name: "sip_domains IPv4-mapped", policy: DestinationPolicy{SIPDomains: []string{"192.0.2.10"}}, value: "sip:john@[::ffff:192.0.2.10]", want: allowed(RuleDefault)},
	{name: "sip_domains a name is not an address", policy: DestinationPolicy{SIPDomains: []string{"*.contoso.com"}}, value: "sip:john@192.0.2.10", want: refused(RuleSIPDomains)},
	{name: "sip_domains judge a SIP phone user's host", policy: DestinationPolicy{SIPDomains: []string{"*.contoso.com"}}, value: "sip:+14255551234@gw.contoso.com;user=phone", want: allowed(RuleDefault)},
	{name: "sip_domains refuse a SIP phone user's host", policy: DestinationPolicy{SIPDomains: []string{"*.contoso.com"}}, value: "sip:+14255551234@gw.evil.example;user=phone", want: refused(RuleSIPDomains)},
	{name: "number rules before sip_domains", policy: DestinationPolicy{SIPDomains: []string{"*.contoso.com"}}, value: "sip:+19005551234@gw.evil.example;user=phone", want: refused(RuleDenyTypes)},
	// A SIP name of digits is judged as the numbers a gateway could dial
	// from it too: read in the default region (US) and with a '+'.
	{name: "digits user: the number rules judge its readings first", policy: DestinationPolicy{SIPDomains: []string{"*.contoso.com"}}, value: "sip:19005551234@gw.evil.example", want: refused(RuleDenyTypes)},
	{name: "digits user at an allowed host, read as +1900", policy: DestinationPolicy{SIPDomains: []string{"*.contoso.com"}, Deny: []string{"+1900"}}, value: "sip:19005551234@gw.contoso.com", want: refused(RuleDeny)},
	{name: "digits user and no sip_domains", policy: DestinationPolicy{Deny: []string{"+1900"}}, value: "sip:19005551234@gw.evil.example", want: refused(RuleDeny)},
	{name: "digits user with separators", policy: DestinationPolicy{}, value: "sip:1-900-555-1234@gw.contoso.com", want: refused(RuleDenyTypes)},
	{name: "digits user in parentheses", policy: DestinationPolicy{}, value: "sip:(900)555-1234@gw.contoso.com", want: refused(RuleDenyTypes)},
	{name: "digits user nationally, without the 1", policy: DestinationPolicy{}, value: "sip:9005551234@gw.contoso.com", want: refused(RuleDenyTypes)},
	{name: "digits user after the international prefix", policy: DestinationPolicy{AllowRegions: []string{"US"}}, value: "sip:011442071234567@gw.contoso.com", want: refused(RuleAllowRegions)},
	{name: "digits user read with a +", policy: DestinationPolicy{DenyRegions: []string{"GB"}}, value: "sip:442071234567@gw.contoso.com", want: refused(RuleDenyRegions)},
	{name: "digits user: any reading refused refuses", policy: DestinationPolicy{AllowRegions: []string{"US"}}, value: "sip:6125551234@gw.contoso.com", want: refused(RuleAllowRegions)},
	{name: "digits user: a US number in national form", policy: DestinationPolicy{AllowRegions: []string{"US"}}, value: "sip:3345678901@gw.contoso.com", want: allowed(RuleDefault)},
	{name: "digits user of an allowed number", policy: DestinationPolicy{SIPDomains: []string{"*.contoso.com"}}, value: "sip:14255551234@gw.contoso.com", want: allowed(RuleDefault)},
	{name: "digits user allowed by prefix, host still judged", policy: DestinationPolicy{SIPDomains: []string{"contoso.com"}, Allow: []string{"+1900"}}, value: "sip:19005551234@gw.evil.example", want: refused(RuleSIPDomains)},
	{name: "digits user allowed by prefix", policy: DestinationPolicy{Allow: []string{"+1900"}}, value: "sip:19005551234@gw.contoso.com", want: allowed(RuleDefault)},
	{name: "short digits user is an extension: a name", policy: DestinationPolicy{AllowRegions: []string{"GB"}}, value: "sip:1234@contoso.com", want: allowed(RuleDefault)},
	// A user of digits of no reading beyond max_extension_digits is a
	// short code a gateway dials: 555 1234 is possible only locally, in
	// an area code the edge does not know (976 1234 is premium).
	{name: "digits user possible only locally is a short code", policy: DestinationPolicy{AllowRegions: []string{"GB"}}, value: "sip:5551234@contoso.com", want: refused(RuleShortCode)},
	{name: "six digits of no reading", policy: DestinationPolicy{}, value: "sip:118118@gw.contoso.com", want: refused(RuleShortCode)},
	{name: "five digits of no reading", policy: DestinationPolicy{}, value: "sip:11880@gw.contoso.com", want: refused(RuleShortCode)},
	{name: "five digits with a key", policy: DestinationPolicy{}, value: "sip:1-1880%23@gw.contoso.com", want: refused(RuleShortCode)},
	{name: "five digits when five make an extension", policy: DestinationPolicy{MaxExtensionDigits: ptr(5)}, value: "sip:11880@gw.contoso.com", want: allowed(RuleDefault)},
	{name: "a short code under max_extension_digits 0", policy: DestinationPolicy{MaxExtensionDigits: ptr(0)}, value: "sip:1900@gw.contoso.com", want: refused(RuleShortCode)},
	{name: "a short code at a host sip_domains refuses", policy: DestinationPolicy{SIPDomains: []string{"contoso.com"}}, value: "sip:118118@gw.evil.example", want: refused(RuleSIPDomains)},
	{name: "a short code without number rules", policy: DestinationPolicy{DenyTypes: []string{"none"}}, value: "sip:118118@gw.contoso.com", want: allowed(RuleDefault)},
	{name: "a short code in report mode", policy: DestinationPolicy{Mode: "report"}, value: "sip:118118@gw.contoso.com", want: report(RuleShortCode)},
	{name: "a short code as a forwarding target", policy: DestinationPolicy{}, kind: ForwardingTarget, value: "sip:118118@gw.contoso.com", want: refused(RuleShortCode)},
	{name: "a short code as a delegator is not dialled", policy: DestinationPolicy{}, kind: OnBehalfOf, value: "sip:118118@gw.contoso.com", want: allowed(RuleNotDialled)},
	{name: "911 user without user=phone is an emergency number", policy: DestinationPolicy{SIPDomains: []string{"contoso.com"}}, value: "sip:911@contoso.com", want: allowed(RuleEmergency)},
	{name: "911 user under max_extension_digits 0", policy: with(strictPolicy, func(c *DestinationPolicy) { c.MaxExtensionDigits = ptr(0) }), value: "sip:911@contoso.de", want: allowed(RuleEmergency)},
	{name: "911 user at another host", policy: with(strictPolicy, func(c *DestinationPolicy) { c.MaxExtensionDigits = ptr(0) }), value: "sip:911@gw.evil.example", want: refused(RuleSIPDomains)},
	{name: "dial string with a pause is refused", policy: DestinationPolicy{}, value: "sip:9,19005551234@gw.contoso.com", want: refused(RuleDialString)},
	{name: "dial string with p, * and #", policy: DestinationPolicy{}, value: "sip:*67p14255551234%23@gw.contoso.com", want: refused(RuleDialString)},
	{name: "dial string at a host sip_domains refuses", policy: DestinationPolicy{SIPDomains: []string{"contoso.com"}}, value: "sip:9,19005551234@gw.evil.example", want: refused(RuleSIPDomains)},
	{name: "dial string without number rules", policy: DestinationPolicy{DenyTypes: []string{"none"}}, value: "sip:9,19005551234@gw.contoso.com", want: allowed(RuleDefault)},
	{name: "dial string in report mode", policy: DestinationPolicy{Mode: "report"}, value: "sip:9w19005551234@gw.contoso.com", want: report(RuleDialString)},
	{name: "digits user in report mode", policy: DestinationPolicy{Mode: "report"}, value: "sip:19005551234@gw.contoso.com", want: report(RuleDenyTypes)},
	{name: "short dial string is a name", policy: DestinationPolicy{}, value: "sip:*72@contoso.com", want: allowed(RuleDefault)},
	{name: "sip_domains leave numbers", policy: DestinationPolicy{SIPDomains: []string{"contoso.com"}}, value: "+14255551234", want: allowed(RuleDefault)},

	// Emergency.
	{name: "emergency 911 passes every rule", policy: strictPolicy, value: "911", want: allowed(RuleEmergency)},
	{name: "emergency tel:911", policy: strictPolicy, value: "tel:911", want: allowed(RuleEmergency)},
	{name: "emergency 112 in the US", policy: strictPolicy, value: "112", want: allowed(RuleEmergency)},
	{name: "emergency 911 in a SIP URI", policy: strictPolicy, value: "sip:911@contoso.de;user=phone", want: allowed(RuleEmergency)},
	// The host decides where the pool sends the call: no emergency number
	// there, and then 911 is a number of the US.
	{name: "emergency 911 in a SIP URI of another domain", policy: strictPolicy, value: "sip:911@gw.evil.example;user=phone", want: refused(RuleDenyRegions)},
	{name: "configured emergency number with an extension", policy: strictPolicy, emergency: []string{"+14255550100"}, value: "tel:+14255550100;ext=4711", want: refused(RuleDeny)},
	{name: "emergency 911 in report mode", policy: with(strictPolicy, func(c *DestinationPolicy) { c.Mode = "report" }), value: "911", want: allowed(RuleEmergency)},
	{name: "emergency 110 in Germany", region: "DE", policy: strictPolicy, value: "110", want: allowed(RuleEmergency)},
	// The emergency call is never refused, and what it reaches is judged
	// all the same.
	{name: "emergency call to 911", rel: "startEmergencyCall", policy: strictPolicy, value: "911", want: allowed(RuleEmergency)},
	{name: "emergency call to a denied number", rel: "startEmergencyCall", policy: strictPolicy, value: "+19005551234", want: report(RuleDeny)},
	{name: "emergency call, SIP name", rel: "startEmergencyCall", policy: strictPolicy, value: "sip:psap@evil.example", want: report(RuleSIPDomains)},
	{name: "emergency call to an allowed number", rel: "startEmergencyCall", value: "+14255551234", want: allowed(RuleDefault)},
	{name: "configured emergency number", policy: strictPolicy, emergency: []string{"+14255550100", "911"}, value: "+1 (425) 555-0100", want: allowed(RuleEmergency)},
	{name: "configured emergency list replaces the region's", policy: strictPolicy, emergency: []string{"+14255550100"}, value: "+14255550111", want: refused(RuleDeny)},
	{name: "emergency before allow", policy: DestinationPolicy{Allow: []string{"+1"}}, emergency: []string{"+14255550100"}, value: "+14255550100", want: allowed(RuleEmergency)},

	// Kinds.
	{name: "stored for later is judged", kind: StoredForLater, value: "+19005551234", want: refused(RuleDenyTypes)},
	{name: "forwarding target is judged", rel: "immediateForwardToContact", kind: ForwardingTarget, value: "+19005551234", want: refused(RuleDenyTypes)},
	{name: "delegator is never dialled", rel: "startPhoneAudioOnBehalfOfDelegator", kind: OnBehalfOf, policy: strictPolicy, value: "+19005551234", want: allowed(RuleNotDialled)},
	{name: "delegator SIP", kind: OnBehalfOf, policy: strictPolicy, value: "sip:boss@evil.example", want: allowed(RuleNotDialled)},

	// Report mode.
	{name: "report deny_types", policy: DestinationPolicy{Mode: "report"}, value: "+19005551234", want: report(RuleDenyTypes)},
	{name: "report deny", policy: DestinationPolicy{Mode: "Report", Deny: []string{"+1900"}}, value: "+19005551234", want: report(RuleDeny)},
	{name: "report sip_domains", policy: DestinationPolicy{Mode: "report", SIPDomains: []string{"contoso.com"}}, value: "sip:a@evil.example", want: report(RuleSIPDomains)},
	{name: "report allows what it allows", policy: DestinationPolicy{Mode: "report"}, value: "+14255551234", want: allowed(RuleDefault)},
	{name: "enforce spelled out", policy: DestinationPolicy{Mode: "enforce"}, value: "+19005551234", want: refused(RuleDenyTypes)},

	// A premium-rate number and digits behind it is no valid number, but
	// one phonenumbers finds possible where the region's numbers have
	// many lengths (typed unknown): a switch completing the call on the
	// digits that make a number rings the premium line, so deny_types
	// judges it by that number's type too, in every spelling.
	{name: "JP premium and a digit", region: "JP", policy: DestinationPolicy{AllowRegions: []string{"JP", "KR"}}, value: "+81 990 123 456 9", want: refused(RuleDenyTypes)},
	{name: "JP premium and a digit, nationally", region: "JP", policy: DestinationPolicy{AllowRegions: []string{"JP", "KR"}}, value: "tel:0990-123-4569", want: refused(RuleDenyTypes)},
	{name: "JP premium and a digit, telephone SIP user", region: "JP", policy: DestinationPolicy{AllowRegions: []string{"JP", "KR"}}, value: "sip:+819901234569@gw.contoso.com;user=phone", want: refused(RuleDenyTypes)},
	{name: "JP premium and a digit, dial string", region: "JP", policy: DestinationPolicy{AllowRegions: []string{"JP", "KR"}}, value: "sip:09901234569@gw.contoso.com", want: refused(RuleDenyTypes)},
	{name: "JP uan and digits", region: "JP", value: "0570 123 456 78", want: refused(RuleDenyTypes)},
	{name: "DE premium and two digits", region: "DE", policy: DestinationPolicy{AllowRegions: []string{"DE", "AT"}}, value: "0900 1 234567 99", want: refused(RuleDenyTypes)},
	{name: "DE premium and three digits, dial string", region: "DE", policy: DestinationPolicy{AllowRegions: []string{"DE", "AT"}}, value: "sip:09001234567999@gw.contoso.com", want: refused(RuleDenyTypes)},
	{name: "DE shared cost and digits", region: "DE", value: "+49 137 1234567 99", want: refused(RuleDenyTypes)},
	{name: "DE personal number and a digit", region: "DE", value: "+49 700 12345678 9", want: refused(RuleDenyTypes)},
	{name: "IN shared cost and a digit", region: "IN", policy: DestinationPolicy{AllowRegions: []string{"IN", "NP"}}, value: "+91 1860 345 1234 5", want: refused(RuleDenyTypes)},
	{name: "BR shared cost and a digit", region: "BR", policy: DestinationPolicy{AllowRegions: []string{"BR", "AR"}}, value: "+55 4004 1234 5", want: refused(RuleDenyTypes)},
	{name: "CN premium and a digit", region: "CN", policy: DestinationPolicy{AllowRegions: []string{"CN", "HK"}}, value: "+86 168 1234 5 6", want: refused(RuleDenyTypes)},
	{name: "AU premium and digits, no allow_regions", region: "AU", value: "1900 123 456 12", want: refused(RuleDenyTypes)},
	// Only a denied type refuses: a fixed line and digits behind it is
	// judged as both, and neither is denied.
	{name: "DE fixed line and digits", region: "DE", value: "sip:425555123400@gw.contoso.com", want: allowed(RuleDefault)},
	{name: "DE premium and digits, deny_types none", region: "DE", policy: DestinationPolicy{DenyTypes: []string{"none"}}, value: "0900 1 234567 99", want: allowed(RuleDefault)},

	// No default region.
	{name: "no region: numbers with a country code", region: "-", policy: DestinationPolicy{AllowRegions: []string{"US"}}, value: "+14255551234", want: allowed(RuleDefault)},
}

func ptr[T any](v T) *T { return &v }

func with(c DestinationPolicy, change func(*DestinationPolicy)) DestinationPolicy {
	change(&c)
	return c
}

// numbersFor returns the Numbers of a case.
func numbersFor(t testing.TB, region string, emergency []string) *Numbers {
	t.Helper()
	switch region {
	case "":
		region = "US"
	case "-":
		region = ""
	}
	n, err := NewNumbers(region, TelURI, emergency)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// destinationOf reads a case's value as the property of its kind.
func (c judgeCase) destination(t testing.TB) (*Operation, *PropertyDestination) {
	t.Helper()
	rel := c.rel
	if rel == "" {
		rel = "startPhoneAudio"
	}
	op := mustOperation(rel)
	kind := c.kind
	if kind == NotDestination {
		kind = DialledNow
	}
	d, p := numbersFor(t, c.region, c.emergency).Destination(c.value)
	if !p.OK() {
		t.Fatalf("%s: %s", c.value, p.Reason)
	}
	prop := map[DestinationKind]string{DialledNow: "to", StoredForLater: "phoneNumber", ForwardingTarget: "target", OnBehalfOf: "delegator"}[kind]
	return op, &PropertyDestination{Property: prop, Kind: kind, Source: InBody, Destination: d}
}

func TestPolicyJudge(t *testing.T) {
	for _, c := range judgeCases {
		t.Run(c.name, func(t *testing.T) {
			p, err := NewPolicy(c.policy)
			if err != nil {
				t.Fatal(err)
			}
			op, d := c.destination(t)
			got := p.Judge(op, d)
			if got.Verdict != c.want.Verdict || got.Rule != c.want.Rule {
				t.Fatalf("%s: got %s by %s, want %s by %s", c.value, got.Verdict, got.Rule, c.want.Verdict, c.want.Rule)
			}
			checkRefusal(t, d, got)
			// A reading of a SIP name's digits that a number rule refused
			// is the number the refusal and the audit trail describe.
			if e := RefusalError(d, got); e != nil && d.Dial != nil && got.Rule >= RuleMaxExtensionDigits && got.Rule <= RuleDenyTypes {
				if !strings.Contains(e.Message, "SIP user's digits") {
					t.Errorf("the refusal does not say a reading of the user refused it: %s", e.Message)
				}
				if num := got.Number(&d.Destination); num == nil || p.numberRule(num, d) != got.Rule {
					t.Errorf("Decision.Number is %+v, which its rule does not refuse", num)
				}
			}
			if got.Refused() != (c.want.Verdict == VerdictRefused) {
				t.Errorf("Refused() = %v", got.Refused())
			}
			// The same policy in the other mode decides by the same rule.
			other := c.policy
			other.Mode = map[bool]string{true: "enforce", false: "report"}[p.Report()]
			q, err := NewPolicy(other)
			if err != nil {
				t.Fatal(err)
			}
			flipped := q.Judge(op, d)
			if flipped.Rule != got.Rule || (got.Verdict == VerdictAllowed) != (flipped.Verdict == VerdictAllowed) {
				t.Errorf("in the other mode: %s by %s", flipped.Verdict, flipped.Rule)
			}
			if allocs := testing.AllocsPerRun(20, func() { p.Judge(op, d) }); allocs != 0 {
				t.Errorf("Judge allocates %v times", allocs)
			}
		})
	}
}

// TestPolicyCleaned judges what Cleaner makes of real request bodies:
// every door the issue names, with a refused and an allowed number.
func TestPolicyCleaned(t *testing.T) {
	p, err := NewPolicy(DestinationPolicy{AllowRegions: []string{"US"}, Deny: []string{"+1976"}})
	if err != nil {
		t.Fatal(err)
	}
	cleaner, err := NewCleaner("US", TelURI)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rel, body string
		want      map[string]Decision
	}{
		{"startPhoneAudio", `{"to":"+19005551234","phoneNumber":"+14255551234"}`,
			map[string]Decision{"to": refused(RuleDenyTypes), "phoneNumber": allowed(RuleDefault)}},
		{"startPhoneAudio", `{"to":"sip:john@contoso.com","phoneNumber":"(976) 555-1234"}`,
			map[string]Decision{"to": allowed(RuleDefault), "phoneNumber": refused(RuleDeny)}},
		{"addPhoneAudio", `{"to":"sip:+19005551234@gw;user=phone","phoneNumber":"tel:+19005551234"}`,
			map[string]Decision{"to": refused(RuleDenyTypes), "phoneNumber": refused(RuleDenyTypes)}},
		{"addPhoneAudio", `{"to":"sip:+14255551234@gw;user=phone","phoneNumber":"+442071234567"}`,
			map[string]Decision{"to": allowed(RuleDefault), "phoneNumber": refused(RuleAllowRegions)}},
		{"immediateForwardToContact", `{"target":"+19005551234"}`, map[string]Decision{"target": refused(RuleDenyTypes)}},
		{"immediateForwardToContact", `{"target":"tel:+14255551234"}`, map[string]Decision{"target": allowed(RuleDefault)}},
		{"makeMeAvailable", `{"phoneNumber":"+19005551234"}`, map[string]Decision{"phoneNumber": refused(RuleDenyTypes)}},
		{"changeNumber", `{"number":"+442071234567"}`, map[string]Decision{"number": refused(RuleAllowRegions)}},
		{"startEmergencyCall", `{"to":"911"}`, map[string]Decision{"to": allowed(RuleEmergency)}},
		{"startPhoneAudioOnBehalfOfDelegator", `{"to":"+14255551234","delegator":"+442071234567"}`,
			map[string]Decision{"to": allowed(RuleDefault), "delegator": allowed(RuleNotDialled)}},
	} {
		op := mustOperation(c.rel)
		r, e := decodeOp(op, JSON, []byte(c.body))
		if e != nil {
			t.Fatalf("%s %s: %v", c.rel, c.body, e)
		}
		q, e := ParseQuery(op, "")
		if e != nil {
			t.Fatal(e)
		}
		cl, e := CleanerFor(cleaner.Numbers()).Clean(op, r, q)
		if e != nil {
			t.Fatalf("%s %s: %v", c.rel, c.body, e)
		}
		got := map[string]Decision{}
		for i, d := range cl.Destinations() {
			got[d.Property] = p.Judge(op, &cl.Destinations()[i])
		}
		if len(got) != len(c.want) {
			t.Errorf("%s %s: judged %v, want %v", c.rel, c.body, got, c.want)
		}
		for prop, want := range c.want {
			if got[prop] != want {
				t.Errorf("%s %s: %s is %s by %s, want %s by %s", c.rel, c.body, prop, got[prop].Verdict, got[prop].Rule, want.Verdict, want.Rule)
			}
		}
	}
}

func TestNewPolicyErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		policy DestinationPolicy
		// want are the texts the error holds; never are those it must not.
		want  []string
		never []string
	}{
		{"mode", DestinationPolicy{Mode: "audit"}, []string{"mode", `"audit"`, "neither enforce nor report"}, nil},
		{"unknown region", DestinationPolicy{AllowRegions: []string{"US", "XX"}}, []string{"allow_regions: entry 2 of 2", `"XX"`, "ISO 3166-1"}, nil},
		{"region of three letters", DestinationPolicy{DenyRegions: []string{"USA"}}, []string{"deny_regions: entry 1 of 1", `"USA"`}, nil},
		{"region given as a number", DestinationPolicy{DenyRegions: []string{"+19005551234"}}, []string{"deny_regions: entry 1 of 1", "not a region"}, []string{"5551234"}},
		{"empty region", DestinationPolicy{AllowRegions: []string{""}}, []string{"allow_regions: entry 1 of 1"}, nil},
		{"unknown type", DestinationPolicy{DenyTypes: []string{"premium"}}, []string{"deny_types: entry 1 of 1", `"premium"`, "premium_rate"}, nil},
		{"none among types", DestinationPolicy{DenyTypes: []string{"mobile", "none"}}, []string{"deny_types: entry 2 of 2", "only entry"}, nil},
		{"type given as a number", DestinationPolicy{DenyTypes: []string{"19005551234"}}, []string{"deny_types: entry 1 of 1"}, []string{"5551234"}},
		{"prefix without +", DestinationPolicy{Deny: []string{"+1976", "19005551234"}}, []string{"deny: entry 2 of 2", "E.164 prefix"}, []string{"19005551234"}},
		{"prefix +", DestinationPolicy{Allow: []string{"+"}}, []string{"allow: entry 1 of 1", `"+"`}, nil},
		{"prefix +0", DestinationPolicy{Allow: []string{"+0044"}}, []string{"allow: entry 1 of 1"}, []string{"0044"}},
		{"prefix too long", DestinationPolicy{Deny: []string{"+1234567890123456"}}, []string{"deny: entry 1 of 1"}, []string{"123456"}},
		{"prefix with separators", DestinationPolicy{Deny: []string{"+1 900"}}, []string{"deny: entry 1 of 1"}, []string{"1 900"}},
		{"prefix with letters", DestinationPolicy{Deny: []string{"+1900x"}}, []string{"deny: entry 1 of 1"}, []string{"1900x"}},
		{"prefix with non-ASCII digits", DestinationPolicy{Deny: []string{"+١٩٠٠"}}, []string{"deny: entry 1 of 1"}, []string{"١٩٠٠"}},
		{"prefix in allow and deny", DestinationPolicy{Allow: []string{"+1900555"}, Deny: []string{"+1976", "+1900555"}}, []string{"deny: entry 2 of 2", "within allow's entry 1 of 1", "refuse nothing"}, []string{"1900555"}},
		{"deny prefix within an allow prefix", DestinationPolicy{Allow: []string{"+44", "+1425"}, Deny: []string{"+1425555"}}, []string{"deny: entry 1 of 1", "within allow's entry 2 of 2"}, []string{"1425555"}},
		{"region in allow_regions and deny_regions", DestinationPolicy{AllowRegions: []string{"US", "de"}, DenyRegions: []string{"RU", "DE"}}, []string{"deny_regions: entry 2 of 2", `"DE"`, "in allow_regions too"}, nil},
		{"domain *", DestinationPolicy{SIPDomains: []string{"*"}}, []string{"sip_domains: entry 1 of 1", `"*"`}, nil},
		{"domain *.", DestinationPolicy{SIPDomains: []string{"*."}}, []string{"sip_domains: entry 1 of 1"}, nil},
		{"domain inner wildcard", DestinationPolicy{SIPDomains: []string{"a.*.com"}}, []string{"sip_domains: entry 1 of 1", `"a.*.com"`}, nil},
		{"domain partial wildcard", DestinationPolicy{SIPDomains: []string{"*contoso.com"}}, []string{"sip_domains: entry 1 of 1"}, nil},
		{"domain double wildcard", DestinationPolicy{SIPDomains: []string{"*.*.contoso.com"}}, []string{"sip_domains: entry 1 of 1"}, nil},
		{"domain empty label", DestinationPolicy{SIPDomains: []string{"contoso..com"}}, []string{"sip_domains: entry 1 of 1"}, nil},
		{"domain hyphen", DestinationPolicy{SIPDomains: []string{"contoso.com", "-contoso.com"}}, []string{"sip_domains: entry 2 of 2"}, nil},
		{"domain URL", DestinationPolicy{SIPDomains: []string{"sip:contoso.com"}}, []string{"sip_domains: entry 1 of 1"}, nil},
		{"domain with a zone", DestinationPolicy{SIPDomains: []string{"fe80::1%eth0"}}, []string{"sip_domains: entry 1 of 1"}, nil},
		{"domain IPv4 in brackets", DestinationPolicy{SIPDomains: []string{"[192.0.2.1]"}}, []string{"sip_domains: entry 1 of 1"}, nil},
		{"domain number", DestinationPolicy{SIPDomains: []string{"+19005551234"}}, []string{"sip_domains: entry 1 of 1"}, []string{"5551234"}},
		{"extension digits below 0", DestinationPolicy{MaxExtensionDigits: ptr(-1)}, []string{"max_extension_digits must be between 0 and 20", "-1"}, nil},
		{"extension digits over 20", DestinationPolicy{MaxExtensionDigits: ptr(21)}, []string{"max_extension_digits must be between 0 and 20", "21"}, nil},
		{"premium_short_codes", DestinationPolicy{PremiumShortCodes: "ignore"}, []string{"premium_short_codes", `"ignore"`, "neither refuse nor allow"}, nil},
		{"premium_short_codes as digits", DestinationPolicy{PremiumShortCodes: "3651"}, []string{"premium_short_codes", "neither refuse nor allow"}, []string{"3651"}},
		{"mode", DestinationPolicy{Mode: "Audit"}, []string{`mode: "Audit" is neither enforce nor report`}, nil},
		{"emergency_calls", DestinationPolicy{EmergencyCalls: "numbers"}, []string{`emergency_calls: "numbers" is neither any nor emergency_numbers`}, nil},
		{"deny_types unknown", DestinationPolicy{DenyTypes: []string{"Premium"}}, []string{"deny_types: entry 1 of 1", `"Premium"`, "is not a number type (one of unknown, "}, nil},
		{"deny_types None among types", DestinationPolicy{DenyTypes: []string{"premium_rate", "NONE"}}, []string{"deny_types: entry 2 of 2", "is none, which must be the only entry"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewPolicy(c.policy)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q does not say %q", msg, w)
				}
			}
			for _, n := range c.never {
				if strings.Contains(msg, n) {
					t.Errorf("%q shows %q", msg, n)
				}
			}
			if strings.HasPrefix(msg, "ucwa") {
				t.Errorf("%q starts with ucwa", msg)
			}
		})
	}
}

func TestDestinationPolicyJSON(t *testing.T) {
	const config = `{"mode":"report","allow_regions":["US","CA"],"deny_regions":["001"],"deny_types":["none"],
		"allow":["+1425555"],"deny":["+1900","+1976"],"sip_domains":["*.contoso.com"],"emergency":["911","+14255550100"]}`
	var c DestinationPolicy
	if err := json.Unmarshal([]byte(config), &c); err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy(c)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Report() {
		t.Error("mode report is not report")
	}
	n, err := NewNumbers("US", TelURI, c.EmergencyNumbers())
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[string]Decision{
		"+14255551234":  allowed(RuleAllow),
		"+19005551234":  report(RuleDeny),
		"+14165551234":  allowed(RuleDefault),
		"+14255550100":  allowed(RuleEmergency),
		"+881631234567": report(RuleDenyRegions),
		"+442071234567": report(RuleAllowRegions),
	} {
		d, pr := n.Destination(v)
		if !pr.OK() {
			t.Fatal(pr.Reason)
		}
		if got := p.Judge(spa, &PropertyDestination{Property: "to", Kind: DialledNow, Destination: d}); got != want {
			t.Errorf("%s: %s by %s, want %s by %s", v, got.Verdict, got.Rule, want.Verdict, want.Rule)
		}
	}
	// The zero policy's JSON is empty, and an empty list of emergency
	// numbers never turns them off.
	if b, _ := json.Marshal(DestinationPolicy{}); string(b) != "{}" {
		t.Errorf("the zero policy is %s", b)
	}
	if got := (&DestinationPolicy{Emergency: []string{}}).EmergencyNumbers(); got != nil {
		t.Errorf("an empty list is %#v, want nil", got)
	}
}

func TestRefusalError(t *testing.T) {
	n := numbersFor(t, "", nil)
	for _, c := range []struct {
		prop, value string
		policy      DestinationPolicy
		want        string
	}{
		{"to", "+19005551234", DestinationPolicy{}, "to is refused by the destination policy (deny_types: premium_rate numbers are not allowed)."},
		{"to", "+19765551234", DestinationPolicy{DenyTypes: []string{"unknown"}}, "to is refused by the destination policy (deny_types: numbers of type unknown, in no range the numbering data lists, are not allowed)."},
		{"phoneNumber", "+19005551234", DestinationPolicy{Deny: []string{"+1900"}}, "phoneNumber is refused by the destination policy (deny: numbers with this prefix are not allowed)."},
		{"target", "+442071234567", DestinationPolicy{AllowRegions: []string{"US"}}, "target is refused by the destination policy (allow_regions: numbers of region GB are not allowed)."},
		{"to", "+442071234567", DestinationPolicy{DenyRegions: []string{"GB"}}, "to is refused by the destination policy (deny_regions: numbers of region GB are not allowed)."},
		{"to", "+881631234567", DestinationPolicy{AllowRegions: []string{"US"}}, "to is refused by the destination policy (allow_regions: non-geographic numbers are not allowed)."},
		{"to", "+19765551234", DestinationPolicy{AllowRegions: []string{"US"}}, "to is refused by the destination policy (allow_regions: numbers of no known region are not allowed)."},
		{"to", "sip:+19005551234@gw.evil.example;user=phone", DestinationPolicy{DenyTypes: []string{"none"}, SIPDomains: []string{"contoso.com"}},
			"to is refused by the destination policy (sip_domains: SIP addresses of this domain are not allowed)."},
		{"to", "+19005551234", DestinationPolicy{Mode: "report"}, "to is refused by the destination policy (deny_types: premium_rate numbers are not allowed)."},
		{"to", "+49 900 1 234567 99", DestinationPolicy{}, "to is refused by the destination policy (deny_types: premium_rate numbers are not allowed, and its first digits are one, which a switch may complete the call on)."},
		{"to", "+49 900 1 234567 99", DestinationPolicy{DenyTypes: []string{"unknown", "premium_rate"}}, "to is refused by the destination policy (deny_types: numbers of type unknown, in no range the numbering data lists, are not allowed)."},
	} {
		p, err := NewPolicy(c.policy)
		if err != nil {
			t.Fatal(err)
		}
		d, pr := n.Destination(c.value)
		if !pr.OK() {
			t.Fatal(pr.Reason)
		}
		pd := &PropertyDestination{Property: c.prop, Kind: DialledNow, Destination: d}
		e := RefusalError(pd, p.Judge(spa, pd))
		if e == nil {
			t.Fatalf("%s: no error", c.want)
		}
		if e.Status != 403 || e.Code() != "Forbidden" || e.Subcode != SubcodeDialoutNotAllowed || e.Message != c.want {
			t.Errorf("got %v, want 403 Forbidden/DialoutNotAllowed: %s", e, c.want)
		}
		if len(e.Parameters) != 1 || e.Parameters[0].Name != c.prop {
			t.Errorf("parameters %v do not name %s", e.Parameters, c.prop)
		}
		assertNoMarker(t, c.want, e)
		for _, f := range []Format{JSON, XML} {
			if b := e.Marshal(f); strings.Contains(string(b), "1234") {
				t.Errorf("the body shows the number: %s", b)
			}
		}
	}
	if e := RefusalError(&PropertyDestination{Property: "to"}, allowed(RuleDefault)); e != nil {
		t.Errorf("an allowed destination has an error: %v", e)
	}
	if e := RefusalError(&PropertyDestination{Property: "to"}, Decision{}); e != nil {
		t.Errorf("an unjudged destination has an error: %v", e)
	}
}

func TestPolicyInvalidDestination(t *testing.T) {
	p, err := NewPolicy(DestinationPolicy{DenyTypes: []string{"none"}})
	if err != nil {
		t.Fatal(err)
	}
	pd := &PropertyDestination{Property: "to", Kind: DialledNow}
	if got := p.Judge(spa, pd); got != refused(RuleInvalid) {
		t.Errorf("the zero destination is %s by %s", got.Verdict, got.Rule)
	}
	if e := RefusalError(pd, refused(RuleInvalid)); e == nil || !strings.Contains(e.Message, "invalid") {
		t.Errorf("got %v", e)
	}
}

func TestRuleAndVerdictNames(t *testing.T) {
	seen := map[string]bool{}
	for r := range numPolicyRules {
		name := r.String()
		if seen[name] || name != strings.ToLower(name) || strings.ContainsAny(name, " -") {
			t.Errorf("rule %d is named %q", r, name)
		}
		seen[name] = true
		if b, _ := r.MarshalText(); string(b) != name {
			t.Errorf("rule %s marshals as %s", name, b)
		}
	}
	if numPolicyRules.String() != "none" || numVerdicts.String() != "none" {
		t.Error("out-of-range values are not none")
	}
	b, err := json.Marshal(Decision{Verdict: VerdictWouldRefuse, Rule: RuleDenyTypes})
	if err != nil || string(b) != `{"decision":"would_refuse","rule":"deny_types"}` {
		t.Errorf("got %s, %v", b, err)
	}
}

func BenchmarkJudge(b *testing.B) {
	p, err := NewPolicy(DestinationPolicy{
		AllowRegions: []string{"US", "CA", "GB", "DE", "FR"},
		DenyRegions:  []string{"001"},
		Allow:        []string{"+1425555", "+4420"},
		Deny:         []string{"+1900", "+1976", "+881", "+882", "+883", "+4487", "+449"},
		SIPDomains:   []string{"contoso.com", "*.contoso.com", "fabrikam.com", "192.0.2.10"},
	})
	if err != nil {
		b.Fatal(err)
	}
	n := numbersFor(b, "", nil)
	for _, c := range []struct{ name, value string }{
		{"number", "+14165551234"},
		{"number/deny", "+19005551234"},
		{"number/allow", "+14255551234"},
		{"sip", "sip:john@eu.sip.contoso.com"},
		{"sip/refused", "sip:john@evil.example"},
		{"sip/number", "sip:+14165551234@gw.contoso.com;user=phone"},
		{"emergency", "911"},
	} {
		d, pr := n.Destination(c.value)
		if !pr.OK() {
			b.Fatal(pr.Reason)
		}
		pd := &PropertyDestination{Property: "to", Kind: DialledNow, Destination: d}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Judge(spa, pd)
			}
		})
	}
}

// TestPolicyIsEmergencyCall: an emergency number makes an emergency call
// (which no limit refuses) as a tel: URI or a bare number, and in a SIP
// URI only at a host sip_domains lists: without sip_domains, or without
// a policy, no host is known to be the site's own. IsEmergency, the
// rule's own test, is unchanged.
func TestPolicyIsEmergencyCall(t *testing.T) {
	listed, err := NewPolicy(DestinationPolicy{SIPDomains: []string{"contoso.com", "*.contoso.com"}})
	if err != nil {
		t.Fatal(err)
	}
	open, err := NewPolicy(DestinationPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		value              string
		nilP, openP, listP bool
	}{
		{"911", true, true, true},
		{"tel:911", true, true, true},
		{"sip:911@contoso.com;user=phone", false, false, true},
		{"sip:911@gw.contoso.com;user=phone", false, false, true},
		{"sip:911@evil.example;user=phone", false, false, false},
		{"+14255551234", false, false, false},
	} {
		d, p := numbersFor(t, "US", nil).Destination(tc.value)
		if !p.OK() {
			t.Fatalf("%s: %s", tc.value, p.Reason)
		}
		pd := &PropertyDestination{Property: "to", Kind: DialledNow, Source: InBody, Destination: d}
		for _, pc := range []struct {
			name string
			p    *Policy
			want bool
		}{{"nil", nil, tc.nilP}, {"no sip_domains", open, tc.openP}, {"sip_domains", listed, tc.listP}} {
			if got := pc.p.IsEmergencyCall(pd); got != pc.want {
				t.Errorf("%s, %s policy: IsEmergencyCall = %v, want %v", tc.value, pc.name, got, pc.want)
			}
		}
	}
}

// TestPolicyPremiumExtension: a number's extension that is a
// premium-rate short code of the number's region (3651 behind a French
// number), which a PBX there that dials extensions through rings, is
// refused by max_extension_digits whatever its count, before allow, in a
// tel: URI, a bare number and a telephone SIP user alike; the same
// digits behind a US number, and an extension of no premium, pass.
func TestPolicyPremiumExtension(t *testing.T) {
	p, err := NewPolicy(DestinationPolicy{Allow: []string{"+33"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, region := range []string{"US", "FR"} {
		n := mustNumbers(t, region, TelURI, nil)
		for _, c := range []struct {
			value   string
			premium bool
		}{
			{"tel:+33142345678;ext=3651", true},
			{"+33 1 42 34 56 78 x 3615", true},
			{"sip:+33142345678;ext=3651@gw.contoso.com;user=phone", true},
			{"tel:+33142345678;ext=1234", false},
			{"tel:+33142345678;ext=12", false},
			{"tel:+14255551234;ext=3651", false},
		} {
			d, problem := n.Destination(c.value)
			if !problem.OK() {
				t.Fatalf("%s: %s", c.value, problem.Reason)
			}
			if d.Number.PremiumExtension != c.premium {
				t.Errorf("%s in %s: PremiumExtension %v, want %v", c.value, region, d.Number.PremiumExtension, c.premium)
			}
			pd := &PropertyDestination{Property: "to", Kind: DialledNow, Destination: d}
			dec := p.Judge(spa, pd)
			want := RuleDefault
			switch {
			case c.premium:
				want = RuleMaxExtensionDigits
			case strings.Contains(c.value, "+33"):
				want = RuleAllow
			}
			if dec.Rule != want {
				t.Errorf("%s in %s: decided by %s, want %s", c.value, region, dec.Rule, want)
			}
			if e := RefusalError(pd, dec); c.premium && (e == nil || !strings.Contains(e.Message, "premium-rate short code") || strings.Contains(e.Message, "3651")) {
				t.Errorf("%s: refusal %+v does not say the extension is a premium-rate short code, or shows it", c.value, e)
			}
		}
	}
}

// TestPolicyPremiumShortCodesAllow: under premium_short_codes allow the
// short-number data is left out of the rules: a French site's SIP
// extension 3651 (a premium-rate code by the data) and the extension
// 3651 of a French number are judged by their count alone, delivered up
// to max_extension_digits and refused past it for their count, the
// refusal then saying nothing of a premium rate; the limits count such
// a user only past the count. refuse, in any letter case, and the
// default refuse them at any count.
func TestPolicyPremiumShortCodesAllow(t *testing.T) {
	fr := mustNumbers(t, "FR", TelURI, nil, "0")
	policy := func(premium string, maxExtension int) *Policy {
		p, err := NewPolicy(DestinationPolicy{SIPDomains: []string{"*.contoso.com"}, MaxExtensionDigits: ptr(maxExtension), PremiumShortCodes: premium})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		premium      string
		maxExtension int
		value        string
		rule         Rule
		dialled      bool
	}{
		{"", 4, "sip:3651@gw.contoso.com", RuleShortCode, true},
		{"refuse", 4, "sip:3651@gw.contoso.com", RuleShortCode, true},
		{"REFUSE", 4, "sip:3651@gw.contoso.com", RuleShortCode, true},
		{"", 4, "tel:+33142345678;ext=3651", RuleMaxExtensionDigits, true},
		{"allow", 4, "sip:3651@gw.contoso.com", RuleDefault, false},
		{"Allow", 4, "sip:3615@gw.contoso.com", RuleDefault, false},
		{"allow", 4, "sip:36-51@gw.contoso.com", RuleDefault, false},
		{"allow", 6, "sip:03651@gw.contoso.com", RuleDefault, false},
		{"allow", 4, "tel:+33142345678;ext=3651", RuleDefault, true},
		{"allow", 3, "sip:3651@gw.contoso.com", RuleShortCode, true},
		{"allow", 3, "tel:+33142345678;ext=3651", RuleMaxExtensionDigits, true},
		{"allow", 4, "sip:118118@gw.contoso.com", RuleShortCode, true},
		{"allow", 4, "sip:112@gw.contoso.com", RuleEmergency, true},
	} {
		d, problem := fr.Destination(c.value)
		if !problem.OK() {
			t.Fatalf("%s: %s", c.value, problem.Reason)
		}
		p := policy(c.premium, c.maxExtension)
		pd := &PropertyDestination{Property: "to", Kind: DialledNow, Destination: d}
		dec := p.Judge(spa, pd)
		if dec.Rule != c.rule {
			t.Errorf("premium_short_codes %q, max_extension_digits %d, %s: decided by %s, want %s", c.premium, c.maxExtension, c.value, dec.Rule, c.rule)
		}
		if got := p.IsDialled(&d); got != c.dialled {
			t.Errorf("premium_short_codes %q, max_extension_digits %d, %s: dialled %v, want %v", c.premium, c.maxExtension, c.value, got, c.dialled)
		}
		e := RefusalError(pd, dec)
		if premium := !strings.EqualFold(c.premium, "allow"); e != nil && strings.Contains(e.Message, "premium-rate") != premium {
			t.Errorf("premium_short_codes %q, %s: refusal %q names a premium rate: %v, want %v", c.premium, c.value, e.Message, !premium, premium)
		}
	}
}
