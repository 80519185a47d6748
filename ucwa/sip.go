package ucwa

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// SIPURI is a SIP or SIPS URI that ParseSIPURI accepted: RFC 3261's
// grammar (section 25.1), narrowed by the edge's rules. Its parts hold the
// text as written (escapes kept), except the scheme and the host, which
// are lower case since RFC 3261 compares them case-insensitively, so that
// String is the one spelling the edge judges and forwards.
type SIPURI struct {
	// Scheme is "sip" or "sips".
	Scheme string
	// User is the user part as written, %-escapes kept; never "". It
	// may hold ';' (RFC 3261's user-unreserved, as in its own example
	// sip:alice;day=tuesday@atlanta.com, and the parameters of a
	// telephone-subscriber).
	User string
	// Host is a host name, a dotted IPv4 address or an IPv6 address in
	// brackets ("[2001:db8::1]"), in lower case. A host name's trailing
	// dot, which RFC 3261 allows, is kept.
	Host string
	// Port is the port, 1 to 65535; 0 when the URI names none.
	Port uint16
	// Params are the uri-parameters in order, as written.
	Params []SIPParam
}

// SIPParam is one uri-parameter: ";name" or ";name=value".
type SIPParam struct {
	Name string
	// Value is "" for a parameter without one (";lr"); RFC 3261 has no
	// empty values, so ";name=" is refused.
	Value string
}

// Reasons ParseSIPURI gives. Each names the rule and completes a sentence
// that starts with the property's name; none quotes the input.
const (
	sipNotSIP         = "must be a SIP URI (sip:user@host)"
	sipControl        = "must be a SIP URI without control characters"
	sipSpace          = "must be a SIP URI without white space"
	sipDelimiter      = `must be a SIP URI without unescaped <, > or "`
	sipNonASCII       = "must be a SIP URI in ASCII (other characters escaped as %XX)"
	sipFormat         = "must be a SIP URI without invisible or bidirectional formatting characters"
	sipNoUser         = "must be a SIP URI with a user (sip:user@host)"
	sipSecondAt       = "must be a SIP URI with one @ (an @ in the user is escaped as %40)"
	sipPassword       = "must be a SIP URI without a password"
	sipUserChar       = "must be a SIP URI whose user holds only the characters RFC 3261 allows there"
	sipUserQuery      = "must be a SIP URI without ? in the user (it would start headers)"
	sipEscape         = "must be a SIP URI whose escapes are % and two hexadecimal digits"
	sipEscapeDecode   = "must be a SIP URI whose escapes decode to UTF-8 text without control, white space or invisible characters"
	sipHost           = "must be a SIP URI whose host is a host name, an IPv4 address or an IPv6 address in brackets"
	sipPort           = "must be a SIP URI whose port is a number from 1 to 65535"
	sipParam          = "must be a SIP URI whose parameters are ;name or ;name=value of the characters RFC 3261 allows"
	sipParamTwice     = "must be a SIP URI that gives no parameter twice"
	sipMaddr          = "must be a SIP URI without a maddr parameter (it sends the request to another host)"
	sipUserInUser     = "must be a SIP URI without a user parameter inside its user (a parser that ends the user at ';' reads it as the URI's)"
	sipUserKind       = "must be a SIP URI whose user parameter, if any, is user=phone or user=ip (user=dialstring and others are not accepted)"
	sipHeaders        = "must be a SIP URI without ?headers"
	sipTelParam       = "must be a SIP URI without a telephone number's parameter (ext, postd, isub, phone-context, tgrp, dtg, otg, trunk-context, rn, npdi, cic) among its own parameters: a gateway may dial it, and the edge judges such parameters only in the user"
	sipTelParamInName = "must be a SIP URI whose user, when it is not a telephone number (no user=phone, no leading +), carries no telephone number's parameter (ext, postd, isub, phone-context, ...): a gateway may read it as a number"
	sipURIInUser      = "must be a SIP URI whose user holds no URI (tel:, sip:, sips:, also with a look-alike of the colon), escaped or not: a gateway that decodes it may dial that URI's number"
	sipUserLength     = "must be a SIP URI whose user is at most 256 bytes as written"
)

// maxSIPUserLength bounds a SIP user as written, escapes included. Its
// judgement reads each character that is neither ASCII, a letter nor a
// digit through Unicode's compatibility folding, several microseconds
// a character: a 64 KiB user of escaped superscript digits cost the
// edge 60-100 ms. No address is that long (an e-mail's local part is at
// most 64 bytes, RFC 5321), and a number's digits stop counting at
// maxNumberLength.
const maxSIPUserLength = 256

// userSchemes are the URI schemes a SIP user may not hold (see
// userHoldsURI), lower case, each with its colon.
var userSchemes = [...]string{"tel:", "sip:", "sips:"}

// colonLookalikes are the characters that look like ':' and that NFKC
// leaves as they are: Unicode's confusables of ':' (UTS #39), which a
// gateway or a normalizer that maps confusables or transliterates to
// ASCII may read as ':'. The compatibility colons (fullwidth U+FF1A,
// small U+FE55, vertical U+FE13) need no entry: NFKC makes them ':'.
var colonLookalikes = [...]rune{
	'\u02D0', // modifier letter triangular colon
	'\u02F8', // modifier letter raised colon
	'\u0589', // Armenian full stop
	'\u05C3', // Hebrew punctuation sof pasuq
	'\u0703', // Syriac supralinear colon
	'\u0704', // Syriac sublinear colon
	'\u0903', // Devanagari sign visarga
	'\u0A83', // Gujarati sign visarga
	'\u16EC', // runic multiple punctuation
	'\u1803', // Mongolian full stop
	'\u1809', // Mongolian Manchu full stop
	'\u205A', // two dot punctuation
	'\u2236', // ratio
	'\uA4FD', // Lisu letter tone mya jeu
	'\uA789', // modifier letter colon
	'\uFE30', // presentation form for vertical two dot leader
}

// userHoldsURI reports whether a decoded SIP user, or any decoding of it
// (%XX and %uXXXX, again and again, as a gateway may decode it), holds a
// URI scheme (userSchemes, any letter case) that starts the user or
// follows a character other than a letter: sip:tel%3A%2B19005551234@gw
// is a name to RFC 3261, yet a gateway that decodes its user reads
// tel:+19005551234 and dials it; written unescaped, the colon makes it
// no SIP URI at all. A name that merely ends in those letters
// (gossip%3A1) is none. A decoding that is not ASCII is read also as a
// gateway that normalizes it may read it, its colonLookalikes taken for
// ':': in NFKC (fullwidth, small and vertical colons, fullwidth and
// mathematical letters, the long s) and folded as foldLookalike folds
// (marks and invisible characters dropped, letters folded as .NET does):
// sip:tel%EF%BC%9A%2B19005551234@gw (a fullwidth colon) holds a URI too.
// A user escaped deeper than eachDecoding decodes counts as one that
// does.
func userHoldsURI(user string) bool {
	return !eachDecoding(user, func(p string) bool {
		if holdsScheme(p) {
			return false
		}
		if isASCII(p) {
			return true
		}
		colons := strings.Map(readColon, p)
		folded := foldString(colons)
		return !holdsScheme(norm.NFKC.String(colons)) && !holdsScheme(folded)
	})
}

// readColon reads a character of colonLookalikes as ':'.
func readColon(r rune) rune {
	if slices.Contains(colonLookalikes[:], r) {
		return ':'
	}
	return r
}

// holdsScheme reports whether p holds a scheme of userSchemes, in any
// letter case, that starts p or follows a character other than an ASCII
// letter.
func holdsScheme(p string) bool {
	for _, scheme := range userSchemes {
		for i := 0; ; {
			j := indexFoldASCII(p[i:], scheme)
			if j < 0 {
				break
			}
			if at := i + j; at == 0 || !isASCIILetter(p[at-1]) {
				return true
			}
			i += j + 1
		}
	}
	return false
}

// indexFoldASCII is strings.Index of a lower-case ASCII sub in s in any
// letter case.
func indexFoldASCII(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if equalFoldASCII(sub, s[i:i+len(sub)]) {
			return i
		}
	}
	return -1
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// telURIParams are the parameters of a telephone number (RFC 3966, RFC
// 4694, RFC 4904, and postd of RFC 2806), lower case: in a SIP URI they
// belong to a telephone user (sip:+14255551234;ext=12@gw), where the
// number rules read them. Among the URI's own parameters a gateway that
// reads them anyway would dial an extension, post-dial digits, a
// routing number, a carrier or a trunk the edge never judged. dtg and
// otg are the trunk groups (destination, originating) of the drafts
// before RFC 4904, which gateways (Cisco, Sonus, BroadSoft) still read
// to choose the trunk a call leaves on.
var telURIParams = []string{"ext", "postd", "isub", "isub-encoding", "phone-context", "tgrp", "dtg", "otg", "trunk-context", "rn", "rn-context", "npdi", "cic", "cic-context"}

// hasTelParam reports whether a decoded SIP user carries a telephone
// number's parameter among its ;-separated parts.
func hasTelParam(user string) bool {
	_, params, _ := strings.Cut(user, ";")
	for seg := range strings.SplitSeq(params, ";") {
		name, _, _ := strings.Cut(seg, "=")
		if slices.Contains(telURIParams, strings.ToLower(strings.TrimSpace(name))) {
			return true
		}
	}
	return false
}

// ParseSIPURI parses a SIP or SIPS URI by RFC 3261's grammar. The second
// result is "" when s is one, or else the reason for a 400: it names the
// rule broken and never quotes s.
//
// White space around the URI and around the scheme's colon is tolerated
// ("sip : john@contoso.com", as the reference's own sample has it) and
// dropped: String never holds it. The scheme may be in any letter case. Besides what RFC 3261's grammar
// refuses (controls, space, unescaped <>" and raw non-ASCII among it),
// the edge refuses:
//
//   - a URI without a user: a UCWA destination is a person or a number,
//     and "sip:john" is a typo rather than a server;
//   - a second '@': the user ends at the first one (RFC 3261 has an @ in
//     a user escaped as %40), so sip:a@evil.com@contoso.com is not read
//     as the user "a@evil.com" at contoso.com;
//   - a password (user:password@host), which RFC 3261 deprecates;
//   - '?' in the user, although user-unreserved allows it: a parser that
//     splits at the first '?' would read what follows as headers;
//   - ?headers of any kind: they add SIP header fields to the request
//     the pool sends;
//   - a maddr parameter, in any letter case or escaped, among the URI's
//     parameters or the ;-separated parts of the user (where a parser
//     that splits at the first ';' would find it): it sends the request
//     to another host than the URI names;
//   - a user parameter among the ;-separated parts of the user
//     (sip:19005551234;user=phone@gw): a parser that splits at the first
//     ';' reads it as the URI's, and so the user as a number the edge
//     judged as a name;
//   - a user parameter other than user=phone and user=ip (RFC 3261's
//     two), such as RFC 4967's user=dialstring: a gateway dials such a
//     user, which the edge would judge as a name, while a dial string
//     (digits with *, #, pauses and a phone-context) is no number the
//     number rules could normalize;
//   - a telephone number's parameter (ext, postd, isub, phone-context,
//     tgrp, dtg, otg, trunk-context, rn, npdi, cic and their companions)
//     among the URI's parameters, where it does not belong (RFC 3261 puts
//     it in a telephone user) and where a lenient gateway might still
//     dial it: an extension, a carrier or a trunk behind a number the
//     edge judged without;
//   - a parameter given twice (RFC 3261 forbids it; "user=ip;user=phone"
//     would read differently to different parsers);
//   - escapes that are malformed or decode to anything but UTF-8 text
//     without controls, white space and invisible formatting characters
//     (Unicode category Cf: zero-width, bidirectional controls): text
//     that displays as one address must not route as another;
//   - IPv4 addresses with leading zeros and IPv6 addresses with a zone,
//     which parsers read differently (net/netip refuses both);
//   - a port with leading zeros, so that String spells it as written.
//
// ';' in the user is accepted (RFC 3261's sip:alice;day=tuesday@atlanta.com);
// when the user is a telephone number its ;parameters follow the tel:
// rules of Numbers (only ;ext= is kept).
func ParseSIPURI(s string) (SIPURI, string) {
	scheme, rest, ok := splitScheme(s)
	if !ok || scheme != "sip" && scheme != "sips" {
		return SIPURI{}, sipNotSIP
	}
	if reason := sipCharacters(rest); reason != "" {
		return SIPURI{}, reason
	}
	at := strings.IndexByte(rest, '@')
	if at <= 0 {
		return SIPURI{}, sipNoUser
	}
	user, after := rest[:at], rest[at+1:]
	if strings.IndexByte(after, '@') >= 0 {
		return SIPURI{}, sipSecondAt
	}
	if len(user) > maxSIPUserLength {
		return SIPURI{}, sipUserLength
	}
	if reason := sipCheckUser(user); reason != "" {
		return SIPURI{}, reason
	}
	if strings.IndexByte(after, '?') >= 0 {
		return SIPURI{}, sipHeaders
	}
	hostport, params := after, ""
	if i := strings.IndexByte(after, ';'); i >= 0 {
		hostport, params = after[:i], after[i:]
	}
	host, port, reason := sipHostPort(hostport)
	if reason != "" {
		return SIPURI{}, reason
	}
	ps, reason := sipParams(params)
	if reason != "" {
		return SIPURI{}, reason
	}
	return SIPURI{Scheme: scheme, User: user, Host: host, Port: port, Params: ps}, ""
}

// String returns the URI: scheme, user, host, port and parameters as
// parsed. For a URI ParseSIPURI accepted, ParseSIPURI(u.String()) is u
// again, and u.String() is the input itself when that was written in
// lower-case scheme and host without white space.
func (u SIPURI) String() string {
	n := len(u.Scheme) + 1 + len(u.User) + 1 + len(u.Host) + 6
	for _, p := range u.Params {
		n += 2 + len(p.Name) + len(p.Value)
	}
	b := make([]byte, 0, n)
	b = append(b, u.Scheme...)
	b = append(b, ':')
	if u.User != "" {
		b = append(b, u.User...)
		b = append(b, '@')
	}
	b = append(b, u.Host...)
	if u.Port != 0 {
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(u.Port), 10)
	}
	for _, p := range u.Params {
		b = append(b, ';')
		b = append(b, p.Name...)
		if p.Value != "" {
			b = append(b, '=')
			b = append(b, p.Value...)
		}
	}
	return string(b)
}

// Param returns the value of the uri-parameter whose name is name, which
// is compared as RFC 3261 compares parameter names: case-insensitively,
// escapes decoded. ok is false when the URI has no such parameter; a
// parameter without a value gives "", true.
func (u SIPURI) Param(name string) (value string, ok bool) {
	for _, p := range u.Params {
		if strings.EqualFold(sipUnescapeValid(p.Name), name) {
			return p.Value, true
		}
	}
	return "", false
}

// IsPhone reports whether the user is a telephone number, to be judged
// and normalized as one: the URI has the parameter user=phone (RFC 3261
// section 19.1.1; name and value in any letter case, escapes decoded),
// or its user, escapes decoded, starts with '+' (or a fullwidth plus,
// U+FF0B, escaped, which the number rules read as '+') and holds a
// decimal digit before any ';' ("+1-425-555-1234", "+14255551234;ext=12",
// "%2B14255551234", "%EF%BC%8B14255551234"). The second test is broader
// than RFC 3966's global-number on purpose: a user that starts like an
// international number but holds something else is refused by the number
// rules rather than forwarded unjudged as a name.
func (u SIPURI) IsPhone() bool {
	if v, ok := u.Param("user"); ok && strings.EqualFold(sipUnescapeValid(v), "phone") {
		return true
	}
	return sipPhoneUser(u.DecodedUser())
}

// DecodedUser returns the user with its %-escapes decoded.
func (u SIPURI) DecodedUser() string {
	return sipUnescapeValid(u.User)
}

// sipPhoneUser reports whether a decoded user starts with '+', or the
// fullwidth plus (U+FF0B) that the number rules read as '+', and holds a
// decimal digit before any ';'.
func sipPhoneUser(user string) bool {
	number, _, _ := strings.Cut(user, ";")
	rest, ok := strings.CutPrefix(number, "+")
	if !ok {
		rest, ok = strings.CutPrefix(number, "＋")
	}
	return ok && strings.IndexFunc(rest, unicode.IsDigit) >= 0
}

// sipCharacters refuses what may appear nowhere in a SIP URI, raw:
// controls, white space, <>" and non-ASCII characters (which RFC 3261
// has escaped), naming invisible formatting characters on their own.
func sipCharacters(s string) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c < 0x20 || c == 0x7f:
				return sipControl
			case c == ' ':
				return sipSpace
			case c == '<' || c == '>' || c == '"':
				return sipDelimiter
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return sipNonASCII
		case unicode.IsControl(r):
			return sipControl
		case unicode.Is(unicode.Cf, r):
			return sipFormat
		case unicode.IsSpace(r):
			return sipSpace
		}
		return sipNonASCII
	}
	return ""
}

// sipUnreserved reports whether c is RFC 3261's unreserved: alphanum or
// mark.
func sipUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0
}

// sipCheckUser checks a user by RFC 3261 (unreserved / escaped /
// user-unreserved), without '?' and without a password, and its escapes.
func sipCheckUser(user string) string {
	for i := 0; i < len(user); i++ {
		c := user[i]
		switch {
		case sipUnreserved(c) || strings.IndexByte("&=+$,;/%", c) >= 0:
		case c == ':':
			return sipPassword
		case c == '?':
			return sipUserQuery
		default:
			return sipUserChar
		}
	}
	decoded, reason := sipUnescape(user)
	if reason != "" {
		return reason
	}
	// A parser that ends the user at its first ';' reads the rest as URI
	// parameters.
	_, params, _ := strings.Cut(decoded, ";")
	for seg := range strings.SplitSeq(params, ";") {
		name, _, _ := strings.Cut(seg, "=")
		switch name = strings.TrimSpace(name); {
		case strings.EqualFold(name, "maddr"):
			return sipMaddr
		case strings.EqualFold(name, "user"):
			return sipUserInUser
		}
	}
	return ""
}

// sipUnescape decodes %XX escapes and checks what they decode to: UTF-8
// text without controls (C0, DEL, C1), white space or Cf characters. s
// itself holds only ASCII without controls (sipCharacters checked it).
func sipUnescape(s string) (string, string) {
	if strings.IndexByte(s, '%') < 0 {
		return s, ""
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", sipEscape
		}
		hi, ok1 := sipHexValue(s[i+1])
		lo, ok2 := sipHexValue(s[i+2])
		if !ok1 || !ok2 {
			return "", sipEscape
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	if !utf8.Valid(b) {
		return "", sipEscapeDecode
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) || unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) {
			return "", sipEscapeDecode
		}
	}
	return string(b), ""
}

// sipUnescapeValid decodes the escapes of a part of a URI that
// ParseSIPURI accepted (so they are well formed); for anything else it
// returns s.
func sipUnescapeValid(s string) string {
	if d, reason := sipUnescape(s); reason == "" {
		return d
	}
	return s
}

func sipHexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// sipHostPort checks host [":" port] and returns the host in lower case.
func sipHostPort(hp string) (string, uint16, string) {
	var host, port string
	hasPort := false
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "", 0, sipHost
		}
		a, err := netip.ParseAddr(hp[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", 0, sipHost
		}
		host = hp[:end+1]
		switch rest := hp[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			port, hasPort = rest[1:], true
		default:
			return "", 0, sipHost
		}
	} else {
		host = hp
		if i := strings.IndexByte(hp, ':'); i >= 0 {
			host, port, hasPort = hp[:i], hp[i+1:], true
		}
		if !sipHostname(host) {
			if a, err := netip.ParseAddr(host); err != nil || !a.Is4() {
				return "", 0, sipHost
			}
		}
	}
	var p uint16
	if hasPort {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 || port[0] < '1' || port[0] > '9' {
			return "", 0, sipPort
		}
		p = uint16(n)
	}
	return strings.ToLower(host), p, ""
}

// sipHostname checks RFC 3261's hostname: *(domainlabel ".") toplabel
// ["."], where labels are letters, digits and inner hyphens and the top
// label starts with a letter; at most 253 characters (without the
// trailing dot), 63 a label (RFC 1035).
func sipHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	top := true
	for h != "" {
		label := h
		if i := strings.LastIndexByte(h, '.'); i >= 0 {
			label, h = h[i+1:], h[:i]
			if h == "" { // a leading dot
				return false
			}
		} else {
			h = ""
		}
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
		if top && !(label[0] >= 'a' && label[0] <= 'z' || label[0] >= 'A' && label[0] <= 'Z') {
			return false
		}
		top = false
	}
	return true
}

// sipParamChar reports whether c is RFC 3261's paramchar, escapes aside:
// param-unreserved or unreserved.
func sipParamChar(c byte) bool {
	return sipUnreserved(c) || strings.IndexByte("[]/:&+$", c) >= 0
}

// sipParams checks uri-parameters (";name[=value]" each, starting with
// ';', or "") and returns them in order.
func sipParams(s string) ([]SIPParam, string) {
	if s == "" {
		return nil, ""
	}
	var ps []SIPParam
	var names []string // decoded, lower case
	for seg := range strings.SplitSeq(s[1:], ";") {
		name, value, hasValue := strings.Cut(seg, "=")
		if !sipParamText(name) || hasValue && !sipParamText(value) {
			return nil, sipParam
		}
		decoded, reason := sipUnescape(name)
		if reason != "" {
			return nil, reason
		}
		decodedValue := ""
		if hasValue {
			if decodedValue, reason = sipUnescape(value); reason != "" {
				return nil, reason
			}
		}
		decoded = strings.ToLower(decoded)
		switch {
		case decoded == "maddr":
			return nil, sipMaddr
		case decoded == "user" && !strings.EqualFold(decodedValue, "phone") && !strings.EqualFold(decodedValue, "ip"):
			return nil, sipUserKind
		case slices.Contains(telURIParams, decoded):
			return nil, sipTelParam
		}
		ps = append(ps, SIPParam{Name: name, Value: value})
		names = append(names, decoded)
	}
	slices.Sort(names)
	for i := 1; i < len(names); i++ {
		if names[i] == names[i-1] {
			return nil, sipParamTwice
		}
	}
	return ps, ""
}

// sipParamText reports whether s is 1*paramchar, escapes included (they
// are checked by sipUnescape).
func sipParamText(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !sipParamChar(c) && c != '%' {
			return false
		}
	}
	return true
}
