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

// Cleaner validates and normalizes the inputs of operations. It is safe
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

// PropertyDestination is a phone destination a cleaned request forwards, for a
// destination policy to judge.
type PropertyDestination struct {
	// Property is the property's documented name.
	Property string
	// Kind is what the pool does with it.
	Kind DestinationKind
	// Source is where it came from: the body or the query.
	Source Source
	// Value is exactly what the edge forwards: the normalized number
	// (tel:+14255551234, or +14255551234 in the e164 format), or the
	// SIP URI.
	Value string
	// Phone is set for a phone number (also one a SIP URI carries as its
	// user), and unset for a SIP URI of a person.
	Phone bool
}

// Cleaned is a request whose inputs passed every rule of its operation,
// normalized, ready to forward.
type Cleaned struct {
	// Operation is the operation the request is.
	Operation *Operation
	// Request is the decoded body, nil when the request has no UCWA body
	// (no body at all, or an SDP body).
	Request *Request
	// Query is the query string.
	Query *Query

	body     []byte
	rawQuery string
	dests    []PropertyDestination
	destBuf  [4]PropertyDestination
}

// Body returns the body to forward: the cleaned body re-encoded, or the
// body as it came (the same slice) when nothing in it changed or it is
// not a UCWA body.
func (c *Cleaned) Body() []byte { return c.body }

// BodyChanged reports whether Body differs from the body that came.
func (c *Cleaned) BodyChanged() bool { return c.Request != nil && c.Request.Changed() }

// RawQuery returns the query string to forward: the one that came, with
// only the normalized values replaced.
func (c *Cleaned) RawQuery() string { return c.rawQuery }

// Destinations returns the phone destinations the request forwards, one
// per property and source (a property in both the body and the query is
// listed twice, with the same value).
func (c *Cleaned) Destinations() []PropertyDestination { return c.dests }

// Value returns the value of a property as the pool will read it: from
// the body, or else from the query.
func (c *Cleaned) Value(name string) (string, bool) {
	if c.Request != nil {
		if v, ok := c.Request.Get(name); ok {
			return v, true
		}
	}
	if c.Query != nil {
		return c.Query.Get(name)
	}
	return "", false
}

// The rules, in the order their failures are listed in a 400
// ParameterValidationFailure (and, within one rule, in the table's
// property order).
const (
	ruleType = iota
	ruleRequired
	ruleLength
	ruleValue
	ruleDataURL
	ruleDestination
	numRules
)

// cleanProblems collects what is wrong, without allocating until
// something is.
type cleanProblems struct {
	rules         [numRules][]Parameter
	normalization []Parameter
	after         []Parameter
}

func (cp *cleanProblems) add(rule int, name, reason string) {
	cp.rules[rule] = append(cp.rules[rule], Parameter{Name: name, Reason: reason})
}

// Clean validates the inputs of a request to op (r, the decoded body, nil
// when the request has no UCWA body; q, the query, nil for none) and
// normalizes them in place: numbers to E.164, enums to their canonical
// spelling, booleans and integers to canonical text, stray white space
// around URI scheme colons removed. Every property may be in the body or
// the query; a property in both must have the same value after
// normalization. It returns the cleaned request, or the UCWA error to
// answer: 400 ParameterValidationFailure naming every bad property and
// why, or 400 NormalizationFailed naming the numbers that failed. No
// message holds a value.
func (c *Cleaner) Clean(op *Operation, r *Request, q *Query) (*Cleaned, *Error) {
	cl := &Cleaned{}
	if err := c.clean(cl, op, r, q); err != nil {
		return nil, err
	}
	return cl, nil
}

// clean is Clean into cl.
func (c *Cleaner) clean(cl *Cleaned, op *Operation, r *Request, q *Query) *Error {
	*cl = Cleaned{Operation: op, Request: r, Query: q}
	cl.dests = cl.destBuf[:0]
	if r != nil && r.op != op || q != nil && q.op != op {
		return NewError(500, SubcodeServiceFailure, "The request was read for another operation.")
	}
	var cp cleanProblems
	for i := range op.Properties {
		p := &op.Properties[i]
		var body *value
		if r != nil {
			if v := &r.vals[i]; v.problem != typeOK {
				cp.add(ruleType, p.Name, typeReasons[v.problem])
			} else if v.present {
				body = v
			}
		}
		var qv *queryValue
		if q != nil {
			if v := q.value(i); v != nil && v.present {
				qv = v
			}
		}
		if p.Required && body == nil && qv == nil && (r == nil || r.vals[i].problem == typeOK) {
			where := ", in the body or as the " + p.Name + " query parameter"
			if op.Body != PropertiesBody {
				where = ", as the " + p.Name + " query parameter"
			}
			cp.add(ruleRequired, p.Name, "is required"+where)
		}
		var bodyOut, queryOut string
		var bodyOK, queryOK, phone bool
		if body != nil {
			bodyOut, phone, bodyOK = c.cleanValue(&cp, p, body.text, "")
			if bodyOK {
				r.setValue(i, bodyOut)
			}
		}
		if qv != nil {
			var qphone bool
			queryOut, qphone, queryOK = c.cleanValue(&cp, p, qv.text, " (the "+p.Name+" query parameter)")
			if queryOK {
				q.setValue(i, queryOut)
			}
			if body == nil {
				phone = qphone
			}
		}
		if bodyOK && queryOK && !sameValue(p, bodyOut, queryOut) {
			cp.after = append(cp.after, Parameter{Name: p.Name, Reason: "differs between the body and the query"})
		}
		if p.Destination != NotDestination {
			if bodyOK {
				cl.dests = append(cl.dests, PropertyDestination{Property: p.Name, Kind: p.Destination, Source: InBody, Value: bodyOut, Phone: phone})
			}
			if queryOK {
				cl.dests = append(cl.dests, PropertyDestination{Property: p.Name, Kind: p.Destination, Source: InQuery, Value: queryOut, Phone: phone})
			}
		}
	}
	var bad []Parameter
	for _, list := range cp.rules {
		bad = append(bad, list...)
	}
	if len(bad) > 0 {
		return parameterError(bad)
	}
	if len(cp.normalization) > 0 {
		return &Error{Status: 400, Subcode: SubcodeNormalizationFailed, Message: MessageNormalizationFailed, Parameters: cp.normalization}
	}
	if len(cp.after) > 0 {
		return parameterError(cp.after)
	}
	if r != nil {
		cl.body = r.Encode()
	}
	if q != nil {
		cl.rawQuery = q.Encode()
	}
	return nil
}

// cleanValue checks one value of property p and returns it normalized,
// whether it is a phone number, and whether it passed; problems go to cp,
// with where appended to the reason.
func (c *Cleaner) cleanValue(cp *cleanProblems, p *Property, v, where string) (string, bool, bool) {
	out, phone := v, false
	switch p.Type {
	case EnumValue:
		canon, ok := canonicalEnum(p.Values, v)
		if !ok {
			cp.add(ruleValue, p.Name, "must be "+joinOr(p.Values)+where)
			return "", false, false
		}
		out = canon
	case BooleanValue:
		switch t := strings.TrimSpace(v); {
		case strings.EqualFold(t, "true"):
			out = "true"
		case strings.EqualFold(t, "false"):
			out = "false"
		default:
			cp.add(ruleValue, p.Name, "must be true or false"+where)
			return "", false, false
		}
	case IntegerValue:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < p.Min || n > p.Max {
			cp.add(ruleValue, p.Name, "must be a whole number from "+strconv.FormatInt(p.Min, 10)+" to "+strconv.FormatInt(p.Max, 10)+where)
			return "", false, false
		}
		out = strconv.FormatInt(n, 10)
	case DataURLValue:
		clean, reason := cleanDataURL(v)
		if reason != "" {
			cp.add(ruleDataURL, p.Name, reason+where)
			return "", false, false
		}
		out = clean
	case NumberValue:
		n, ok := c.normalizePhone(v)
		if !ok {
			cp.normalization = append(cp.normalization, Parameter{Name: p.Name, Reason: "is not a possible phone number" + where})
			return "", true, false
		}
		out, phone = n, true
	case DestinationValue:
		n, isPhone, problem := c.normalizeDestination(v)
		switch problem {
		case destinationSyntax:
			cp.add(ruleDestination, p.Name, "must be a SIP URI (sip:user@host) or a phone number"+where)
			return "", false, false
		case destinationNotNumber:
			cp.normalization = append(cp.normalization, Parameter{Name: p.Name, Reason: "is not a possible phone number" + where})
			return "", true, false
		}
		out, phone = n, isPhone
	}
	if p.MaxLength > 0 && utf16Length(out) > p.MaxLength {
		reason := "must be at most " + strconv.Itoa(p.MaxLength) + " characters, counted in UTF-16 code units" + where
		if p.Type == NumberValue || p.Type == DestinationValue {
			cp.after = append(cp.after, Parameter{Name: p.Name, Reason: reason + " once normalized"})
		} else {
			cp.add(ruleLength, p.Name, reason)
		}
		return "", phone, false
	}
	return out, phone, true
}

// utf16Length counts s in UTF-16 code units, as a .NET pool counts a
// string's length: a character outside the Basic Multilingual Plane (an
// emoji) is two.
func utf16Length(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		n++
		if r > 0xFFFF {
			n++ // a surrogate pair
		}
		i += size // each byte of an invalid sequence is one U+FFFD
	}
	return n
}

// sameValue compares two normalized values of p. SIP schemes and hosts
// are case-insensitive, users are not.
func sameValue(p *Property, a, b string) bool {
	if p.Type == DestinationValue {
		return sameTarget(a, b)
	}
	return a == b
}

// canonicalEnum returns the canonical spelling of v (white space around
// it ignored, any letter case).
func canonicalEnum(values []string, v string) (string, bool) {
	v = strings.TrimSpace(v)
	for _, canon := range values {
		if strings.EqualFold(v, canon) {
			return canon, true
		}
	}
	return "", false
}

// joinOr lists values as "A, B or C".
func joinOr(values []string) string {
	if len(values) == 1 {
		return values[0]
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}

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

// destinationProblem is why a destination was refused.
type destinationProblem uint8

const (
	destinationOK destinationProblem = iota
	// destinationSyntax: neither a SIP URI nor a phone number (400
	// ParameterValidationFailure).
	destinationSyntax
	// destinationNotNumber: written as a phone number, but not a
	// possible one (400 NormalizationFailed).
	destinationNotNumber
)

// normalizePhone normalizes a property that holds a phone number only.
// It is the one place phone-number properties meet the number code.
func (c *Cleaner) normalizePhone(v string) (string, bool) {
	return c.NormalizeNumber(v)
}

// normalizeDestination reads a property that holds a SIP URI or a phone
// number and returns what to forward, whether it is a phone number, and
// any problem. It is the one place destinations meet the SIP and number
// code.
func (c *Cleaner) normalizeDestination(v string) (string, bool, destinationProblem) {
	switch classifyTarget(v) {
	case sipTarget:
		return cleanSIP(v), false, destinationOK
	case phoneTarget:
		n, ok := c.NormalizeNumber(v)
		if !ok {
			return "", true, destinationNotNumber
		}
		return n, true, destinationOK
	}
	return "", false, destinationSyntax
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
