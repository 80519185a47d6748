package ucwa

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers/v2"
)

// Limits from the startPhoneAudio reference, in characters.
const (
	MaxOperationIDLength = 50
	MaxSubjectLength     = 250
)

// NumberFormat is how a normalized phone number is forwarded.
type NumberFormat uint8

const (
	// TelURI forwards "tel:+14255551234" (the default).
	TelURI NumberFormat = iota
	// E164 forwards "+14255551234".
	E164
)

// ParseNumberFormat reads "tel" or "e164".
func ParseNumberFormat(s string) (NumberFormat, error) {
	switch strings.ToLower(s) {
	case "", "tel":
		return TelURI, nil
	case "e164":
		return E164, nil
	}
	return 0, fmt.Errorf("number format %q is neither tel nor e164", s)
}

var importances = [...]string{"Normal", "Urgent", "Emergency"}

// Cleaner validates and normalizes startPhoneAudio requests. It is safe
// for concurrent use.
type Cleaner struct {
	region  string
	format  NumberFormat
	numbers *numberCache
}

// NewCleaner returns a Cleaner. defaultRegion is the ISO 3166-1 region
// (such as "US") of numbers written without a country code; "" means such
// numbers fail normalization.
func NewCleaner(defaultRegion string, format NumberFormat) (*Cleaner, error) {
	region := strings.ToUpper(defaultRegion)
	if region != "" && !phonenumbers.GetSupportedRegions()[region] {
		return nil, fmt.Errorf("default region %q is not a region phone numbers are known for (use an ISO 3166-1 code such as US or DE)", defaultRegion)
	}
	if format > E164 {
		return nil, fmt.Errorf("unknown number format %d", format)
	}
	return &Cleaner{region: region, format: format, numbers: newNumberCache(numberCacheSize)}, nil
}

// Clean validates r (and the "to" query parameter, queryTo, "" when
// absent) and normalizes it in place: numbers to E.164, importance to its
// canonical spelling, stray white space around URI scheme colons removed.
// It returns the normalized query "to" for the caller to forward, or the
// UCWA error to answer: 400 ParameterValidationFailure naming every bad
// property, or 400 NormalizationFailed naming the numbers that failed.
func (c *Cleaner) Clean(r *Request, queryTo string) (string, *Error) {
	var bad []Parameter
	fail := func(f Field, reason string) { bad = append(bad, Parameter{Name: f.String(), Reason: reason}) }

	for f := range numFields {
		if r.typeErr[f] != "" {
			fail(f, r.typeErr[f])
		}
	}
	bodyTo, hasBodyTo := r.Get(To)
	queryTo = strings.TrimSpace(queryTo)
	if !hasBodyTo && queryTo == "" && r.typeErr[To] == "" {
		fail(To, "is required, in the body or as the to query parameter")
	}
	if v, ok := r.Get(OperationID); ok && utf8.RuneCountInString(v) > MaxOperationIDLength {
		fail(OperationID, "must be at most "+strconv.Itoa(MaxOperationIDLength)+" characters")
	}
	if v, ok := r.Get(Subject); ok && utf8.RuneCountInString(v) > MaxSubjectLength {
		fail(Subject, "must be at most "+strconv.Itoa(MaxSubjectLength)+" characters")
	}
	if v, ok := r.Get(Importance); ok {
		if canon, ok := canonicalImportance(v); ok {
			r.Set(Importance, canon)
		} else {
			fail(Importance, "must be Normal, Urgent or Emergency")
		}
	}
	if v, ok := r.Get(CustomContent); ok {
		if clean, reason := cleanDataURL(v); reason != "" {
			fail(CustomContent, reason)
		} else {
			r.Set(CustomContent, clean)
		}
	}
	// Classify "to" (body and query) before normalizing any number, so
	// that every syntax problem is reported at once.
	var toKinds [2]targetKind
	for i, v := range [2]string{bodyTo, queryTo} {
		if v == "" {
			continue
		}
		toKinds[i] = classifyTarget(v)
		if toKinds[i] == badTarget {
			fail(To, "must be a SIP URI (sip:user@host) or a phone number"+toWhere[i])
		}
	}
	if len(bad) > 0 {
		return "", parameterError(bad)
	}

	var normBad []Parameter
	normalizeTo := func(i int, v string, kind targetKind) string {
		if kind == sipTarget {
			return cleanSIP(v)
		}
		n, ok := c.NormalizeNumber(v)
		if !ok {
			normBad = append(normBad, Parameter{Name: To.String(), Reason: "is not a possible phone number" + toWhere[i]})
		}
		return n
	}
	if v, ok := r.Get(PhoneNumber); ok {
		if n, ok := c.NormalizeNumber(v); ok {
			r.Set(PhoneNumber, n)
		} else {
			normBad = append(normBad, Parameter{Name: PhoneNumber.String(), Reason: "is not a possible phone number"})
		}
	}
	var normBodyTo, normQueryTo string
	if hasBodyTo {
		normBodyTo = normalizeTo(0, bodyTo, toKinds[0])
	}
	if queryTo != "" {
		normQueryTo = normalizeTo(1, queryTo, toKinds[1])
	}
	if len(normBad) > 0 {
		return "", &Error{Status: 400, Subcode: SubcodeNormalizationFailed, Message: MessageNormalizationFailed, Parameters: normBad}
	}
	if hasBodyTo {
		r.Set(To, normBodyTo)
		if queryTo != "" && !sameTarget(normBodyTo, normQueryTo) {
			return "", parameterError([]Parameter{{Name: To.String(), Reason: "the body and the to query parameter name different targets"}})
		}
	}
	return normQueryTo, nil
}

// toWhere completes a reason about "to" with where it came from: the body
// (index 0) or the query (index 1), since both are named "to".
var toWhere = [2]string{"", " (the to query parameter)"}

func parameterError(bad []Parameter) *Error {
	var msg strings.Builder
	msg.WriteString("The request has missing or invalid properties: ")
	for i, p := range bad {
		if i > 0 {
			msg.WriteString("; ")
		}
		msg.WriteString(p.Name + " " + p.Reason)
	}
	msg.WriteString(".")
	return &Error{Status: 400, Subcode: SubcodeParameterValidationFailure, Message: msg.String(), Parameters: bad}
}

func canonicalImportance(v string) (string, bool) {
	v = strings.TrimSpace(v)
	for _, canon := range importances {
		if strings.EqualFold(v, canon) {
			return canon, true
		}
	}
	return "", false
}

// splitScheme splits "scheme:rest", tolerating white space around the
// colon ("tel : +1...", as in the reference's own sample). The scheme is
// returned in lower case; ok is false when s has no URI scheme.
func splitScheme(s string) (scheme, rest string, ok bool) {
	s = strings.TrimSpace(s)
	colon := strings.IndexByte(s, ':')
	if colon < 1 {
		return "", s, false
	}
	scheme = strings.TrimSpace(s[:colon])
	if scheme == "" {
		return "", s, false
	}
	for i, c := range scheme {
		isAlpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !isAlpha && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "", s, false
		}
	}
	return strings.ToLower(scheme), strings.TrimSpace(s[colon+1:]), true
}

type targetKind uint8

const (
	badTarget targetKind = iota
	sipTarget
	phoneTarget
)

// classifyTarget tells whether "to" is a SIP URI, a phone number (a tel:
// URI or a bare dial string) or neither.
func classifyTarget(v string) targetKind {
	scheme, rest, hasScheme := splitScheme(v)
	switch {
	case hasScheme && (scheme == "sip" || scheme == "sips"):
		if validSIP(rest) {
			return sipTarget
		}
		return badTarget
	case hasScheme && scheme == "tel":
		return phoneTarget
	case hasScheme:
		return badTarget
	}
	if looksLikeDialString(rest) {
		return phoneTarget
	}
	return badTarget
}

// validSIP checks the user@host part of a SIP URI (RFC 3261): a user, and
// a host name or IP literal with an optional port, before any ;params or
// ?headers. The user ends at the first '@': RFC 3261 has a user escape
// it (%40), so "sip:a@evil.com@contoso.com" is refused, not read as the
// user "a@evil.com" at contoso.com.
func validSIP(rest string) bool {
	at := strings.IndexByte(rest, '@')
	if at < 1 {
		return false
	}
	user, hostport := rest[:at], rest[at+1:]
	if i := strings.IndexAny(hostport, ";?"); i >= 0 {
		hostport = hostport[:i]
	}
	for _, c := range user {
		if c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '"' || unicode.IsSpace(c) {
			return false
		}
	}
	host := hostport
	if h, port, ok := splitHostPort(hostport); ok {
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return false
		}
		host = h
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1]
	}
	return validHostname(host) || net.ParseIP(host) != nil
}

// splitHostPort is net.SplitHostPort, without building its error for the
// usual host that has no port.
func splitHostPort(hostport string) (host, port string, ok bool) {
	if strings.IndexByte(hostport, ':') < 0 {
		return "", "", false
	}
	host, port, err := net.SplitHostPort(hostport)
	return host, port, err == nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// looksLikeDialString accepts what a person types as a phone number:
// digits with +, spaces, dashes, dots, slashes and parentheses, and an
// optional extension.
func looksLikeDialString(v string) bool {
	digits := 0
	for i, c := range v {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '+' || c == ' ' || c == '-' || c == '.' || c == '/' || c == '(' || c == ')':
		case c == ';' || c == 'x' || c == 'X' || c == '#':
			// an extension ("...;ext=123", "... x123") is left to phonenumbers
			return digits >= 3 && i > 0
		default:
			return false
		}
	}
	return digits >= 3
}

// cleanSIP removes white space around the scheme's colon and lower-cases
// the scheme; the rest of the URI is kept as it is.
func cleanSIP(v string) string {
	scheme, rest, _ := splitScheme(v)
	return join3(v, scheme, ":", rest)
}

// join3 returns a+b+c, or v itself when it is that already, which is the
// usual case and costs no allocation.
func join3(v, a, b, c string) string {
	if len(v) == len(a)+len(b)+len(c) && v[:len(a)] == a && v[len(a):len(a)+len(b)] == b && v[len(a)+len(b):] == c {
		return v
	}
	return a + b + c
}

// sameTarget compares two normalized targets; SIP schemes and hosts are
// case-insensitive, users are not.
func sameTarget(a, b string) bool {
	if a == b {
		return true
	}
	ia, ib := strings.IndexByte(a, '@'), strings.IndexByte(b, '@') // where validSIP ends the user
	return ia > 0 && ia == ib && a[:ia] == b[:ib] && strings.EqualFold(a[ia:], b[ib:])
}

// NormalizeNumber turns a phone number ("+14255551234", "tel:+1-425-555-1234",
// "(425) 555-1234" with a default region, ...) into E.164 in the Cleaner's
// number format, keeping an extension as ";ext=". ok is false for a number
// phonenumbers cannot parse or does not consider possible (also one that
// is possible only locally, without an area code).
func (c *Cleaner) NormalizeNumber(v string) (string, bool) {
	if len(v) > maxNumberLength {
		return c.normalizeNumber(v)
	}
	if n, ok := c.numbers.get(v); ok {
		return n.number, n.ok
	}
	n, ok := c.normalizeNumber(v)
	c.numbers.put(v, normalizedNumber{number: n, ok: ok})
	return n, ok
}

// maxNumberLength bounds a phone number, in bytes: no real number is that
// long, so a longer one is refused (after any tel: scheme) without
// parsing, and the whole input is kept out of the number cache when
// longer, so that the cache's memory stays bounded.
const maxNumberLength = 100

// normalizeNumber is NormalizeNumber without the cache.
func (c *Cleaner) normalizeNumber(v string) (string, bool) {
	scheme, rest, hasScheme := splitScheme(v)
	if hasScheme && scheme != "tel" {
		return "", false
	}
	if rest == "" || len(rest) > maxNumberLength {
		return "", false
	}
	region := c.region
	if region == "" {
		region = "ZZ" // unknown: only numbers with a country code parse
	}
	num, err := phonenumbers.Parse(rest, region)
	// IsPossibleNumber also passes numbers that are possible only
	// locally ("555-1234" in the US), which have no E.164 form: "+15551234"
	// would ring nobody, or someone else.
	if err != nil || phonenumbers.IsPossibleNumberWithReason(num) != phonenumbers.IS_POSSIBLE {
		return "", false
	}
	out := phonenumbers.Format(num, phonenumbers.E164)
	// E.164 allows 15 digits at most; phonenumbers lets longer German
	// numbers through.
	if len(out) > 1+15 {
		return "", false
	}
	// phonenumbers strips a national prefix even after a country code
	// ("+91 0..."), so for some impossible numbers the E.164 form reads
	// back as yet another number, and the pool, normalizing again, would
	// ring that one. Only a fixed point is a number. A number written in
	// E.164 already has just been read as itself.
	if rest != out {
		again, err := phonenumbers.Parse(out, "ZZ")
		if err != nil || phonenumbers.Format(again, phonenumbers.E164) != out {
			return "", false
		}
	}
	// The extension keeps the digits as written, which may be any
	// script's ("߇"); the pool reads ASCII.
	if ext := phonenumbers.NormalizeDigitsOnly(num.GetExtension()); ext != "" {
		out += ";ext=" + ext
	}
	if c.format == TelURI {
		out = "tel:" + out
	}
	return out, true
}

// cleanDataURL checks an RFC 2397 data: URL and returns it with stray
// white space removed (around the scheme's colon, and inside base64
// data), or the reason it is not one.
func cleanDataURL(v string) (string, string) {
	const notDataURL = "must be a data: URL (RFC 2397)"
	scheme, rest, ok := splitScheme(v)
	if !ok || scheme != "data" {
		return "", notDataURL
	}
	comma := strings.IndexByte(rest, ',')
	if comma < 0 {
		return "", notDataURL
	}
	meta, data := strings.TrimSpace(rest[:comma]), rest[comma+1:]
	isBase64 := false
	if i := strings.LastIndexByte(meta, ';'); i >= 0 && strings.EqualFold(strings.TrimSpace(meta[i+1:]), "base64") {
		isBase64 = true
		meta = strings.TrimSpace(meta[:i])
	}
	if meta != "" {
		mediaType := meta
		if strings.HasPrefix(meta, ";") { // only parameters: RFC 2397 implies text/plain
			mediaType = "text/plain" + meta
		}
		if !simpleMediaType(mediaType) {
			if _, _, err := mime.ParseMediaType(mediaType); err != nil {
				return "", "must have a valid media type"
			}
		}
	}
	if isBase64 {
		data = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, data)
		if !validBase64(data) {
			return "", "must hold valid base64 data"
		}
		return joinDataURL(v, meta, ";base64,", data), ""
	}
	if _, err := url.PathUnescape(data); err != nil {
		return "", "must hold valid percent-encoded data"
	}
	return joinDataURL(v, meta, ",", data), ""
}

// joinDataURL returns "data:"+meta+sep+data, or v when it is that.
func joinDataURL(v, meta, sep, data string) string {
	if rest, ok := strings.CutPrefix(v, "data:"); ok {
		if join3(rest, meta, sep, data) == rest {
			return v
		}
	}
	return "data:" + meta + sep + data
}

// simpleMediaType reports whether s is a bare "type/subtype" (or "type")
// of token characters, which mime.ParseMediaType always accepts; anything
// else is left to it.
func simpleMediaType(s string) bool {
	s = strings.TrimSpace(s)
	typ, sub, hasSub := strings.Cut(s, "/")
	return isToken(typ) && (!hasSub || isToken(sub))
}

// isToken reports whether s is an RFC 2045 token.
func isToken(s string) bool {
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// validBase64 is base64.StdEncoding.DecodeString(data) == nil, decoding
// through buffers on the stack instead of allocating the result. Every
// chunk but the last holds whole quanta, so padding inside the data is
// refused as DecodeString refuses it.
func validBase64(data string) bool {
	const chunk = 512
	var src [chunk]byte
	var dst [chunk / 4 * 3]byte
	for len(data) > chunk {
		n := copy(src[:], data[:chunk])
		if bytes.IndexByte(src[:n], '=') >= 0 {
			return false
		}
		if _, err := base64.StdEncoding.Decode(dst[:], src[:n]); err != nil {
			return false
		}
		data = data[chunk:]
	}
	n := copy(src[:], data)
	_, err := base64.StdEncoding.Decode(dst[:], src[:n])
	return err == nil
}
