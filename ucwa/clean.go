package ucwa

import (
	"mime"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// NumberFormat is how a normalized phone number is forwarded.
type NumberFormat uint8

const (
	// TelURI forwards "tel:+14255551234" (the default).
	TelURI NumberFormat = iota
	// E164 forwards "+14255551234".
	E164
)

// ParseNumberFormat reads "tel" or "e164", in any letter case; "" is tel.
func ParseNumberFormat(s string) (NumberFormat, error) {
	switch Word(s, "tel", "e164") {
	case "", "tel":
		return TelURI, nil
	case "e164":
		return E164, nil
	}
	return 0, WordError("number_format", s, "tel", "e164")
}

// Cleaner validates and normalizes the inputs of operations. Every phone
// number and destination goes through its Numbers, so that what the edge
// judges is what it forwards. It is safe for concurrent use.
type Cleaner struct {
	numbers *Numbers
}

// NewCleaner returns a Cleaner whose Numbers reads numbers without a
// country code in defaultRegion (an ISO 3166-1 code such as "US"; ""
// means such numbers fail normalization), forwards them in format, and
// takes the default region's emergency numbers.
func NewCleaner(defaultRegion string, format NumberFormat) (*Cleaner, error) {
	n, err := NewNumbers(defaultRegion, format, nil)
	if err != nil {
		return nil, err
	}
	return CleanerFor(n), nil
}

// CleanerFor returns a Cleaner that reads numbers with n.
func CleanerFor(n *Numbers) *Cleaner {
	return &Cleaner{numbers: n}
}

// Numbers returns the Cleaner's number reader.
func (c *Cleaner) Numbers() *Numbers { return c.numbers }

// PropertyDestination is a destination a cleaned request forwards, for a
// destination policy to judge: the property that holds it, what the pool
// does with it, where it came from, and the Destination itself (Value,
// exactly what is forwarded; and for a phone number, also one a SIP URI
// carries as its user, the Number with its region, type and emergency
// flag).
type PropertyDestination struct {
	// Property is the property's documented name.
	Property string
	// Kind is what the pool does with it.
	Kind DestinationKind
	// Source is where it came from: the body or the query.
	Source Source
	Destination
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
	destBuf  [2]PropertyDestination // the usual: a body's to and phoneNumber
	// The box Intake took c from, for Release; nil for one of Clean.
	box *intakeBox
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

// InputsInQuery reports whether the query holds a value of one of the
// operation's properties: a pool that reads its inputs there may act on
// the request's head alone, before it reads the body or without it.
func (c *Cleaned) InputsInQuery() bool {
	if c.Query == nil {
		return false
	}
	for i := range c.Query.vals {
		if c.Query.vals[i].present {
			return true
		}
	}
	return false
}

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

// ValueAt returns the value of the operation's property i as Value
// returns it for that property's name, without looking the name up.
func (c *Cleaned) ValueAt(i int) (string, bool) {
	if c.Request != nil {
		if v := &c.Request.vals[i]; v.present {
			return v.text, true
		}
	}
	if c.Query != nil {
		if v := c.Query.value(i); v != nil && v.present {
			return v.text, true
		}
	}
	return "", false
}

// The rules, in the order their failures are listed in a 400
// ParameterValidationFailure (and, within one rule, in the table's
// property order). A body and a query that disagree, and a number too
// long once normalized, are told only when every value passed these.
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
		var bodyText, queryText string
		var bodyOK, queryOK bool
		if body != nil {
			bodyText, bodyOK = c.cleanFrom(cl, &cp, p, body.text, InBody)
			if bodyOK {
				r.setValue(i, bodyText)
			}
		}
		if qv != nil {
			queryText, queryOK = c.cleanFrom(cl, &cp, p, qv.text, InQuery)
			if queryOK {
				q.setValue(i, queryText)
			}
		}
		if bodyOK && queryOK && bodyText != queryText {
			cp.after = append(cp.after, Parameter{Name: p.Name, Reason: "differs between the body and the query"})
		}
	}
	var bad []Parameter
	for i := range cp.rules { // by index: a range over the array would copy it
		if len(cp.rules[i]) > 0 {
			bad = append(bad, cp.rules[i]...)
		}
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

// cleanFrom checks one value of property p, from source, and returns it
// normalized and whether it passed; a phone number or destination that
// passes is listed in cl's destinations (written there in place: a
// Destination is large), when p is one.
func (c *Cleaner) cleanFrom(cl *Cleaned, cp *cleanProblems, p *Property, v string, source Source) (string, bool) {
	at := valueAt{query: source == InQuery}
	if p.Type != NumberValue && p.Type != DestinationValue {
		return c.cleanValue(cp, p, v, at, nil)
	}
	cl.dests = append(cl.dests, PropertyDestination{Property: p.Name, Kind: p.Destination, Source: source})
	d := &cl.dests[len(cl.dests)-1]
	text, ok := c.cleanValue(cp, p, v, at, &d.Destination)
	if !ok || p.Destination == NotDestination {
		cl.dests = cl.dests[:len(cl.dests)-1]
	}
	return text, ok
}

// valueAt says where a value sits, for the reasons that name it: in the
// query, or else where (appended to a reason as it is, "" for the body).
type valueAt struct {
	query bool
	where string
}

// suffix is what a reason about a value of p at a ends with. A query
// parameter's is made only for a reason that needs it.
func (a valueAt) suffix(p *Property) string {
	if a.query {
		return " (the " + p.Name + " query parameter)"
	}
	return a.where
}

// cleanValue checks one value of property p, at a, and returns it
// normalized and whether it passed; problems go to cp. A phone number or
// destination that passes is written to dest (nil: not kept).
func (c *Cleaner) cleanValue(cp *cleanProblems, p *Property, v string, at valueAt, dest *Destination) (string, bool) {
	out := v
	switch p.Type {
	case EnumValue:
		canon, ok := canonicalEnum(p.Values, v)
		if !ok {
			cp.add(ruleValue, p.Name, "must be "+joinOr(p.Values)+at.suffix(p))
			return out, false
		}
		out = canon
	case BooleanValue:
		switch t := strings.TrimSpace(v); {
		case strings.EqualFold(t, "true"):
			out = "true"
		case strings.EqualFold(t, "false"):
			out = "false"
		default:
			cp.add(ruleValue, p.Name, "must be true or false"+at.suffix(p))
			return out, false
		}
	case IntegerValue:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < p.Min || n > p.Max {
			cp.add(ruleValue, p.Name, "must be a whole number from "+strconv.FormatInt(p.Min, 10)+" to "+strconv.FormatInt(p.Max, 10)+at.suffix(p))
			return out, false
		}
		out = strconv.FormatInt(n, 10)
	case DataURLValue:
		clean, reason := cleanDataURL(v)
		if reason != "" {
			cp.add(ruleDataURL, p.Name, reason+at.suffix(p))
			return out, false
		}
		out = clean
	case NumberValue:
		num, problem := c.numbers.Number(v)
		if !problem.OK() {
			cp.numberProblem(p.Name, problem, at.suffix(p))
			return out, false
		}
		out = num.Forwarded()
		if dest != nil {
			*dest = Destination{Value: out, Number: num}
		}
	case DestinationValue:
		d, problem := c.numbers.Destination(v)
		if !problem.OK() {
			cp.numberProblem(p.Name, problem, at.suffix(p))
			return out, false
		}
		out = d.Value
		if dest != nil {
			*dest = d
		}
	}
	// A string is never longer in UTF-16 code units than in UTF-8 bytes,
	// so one within the limit in bytes is not counted.
	if p.MaxLength > 0 && len(out) > p.MaxLength && utf16Length(out) > p.MaxLength {
		reason := "must be at most " + strconv.Itoa(p.MaxLength) + " characters, counted in UTF-16 code units" + at.suffix(p)
		if p.Type == NumberValue || p.Type == DestinationValue {
			cp.after = append(cp.after, Parameter{Name: p.Name, Reason: reason + " once normalized"})
		} else {
			cp.add(ruleLength, p.Name, reason)
		}
		return out, false
	}
	return out, true
}

// numberProblem files a problem Numbers found: a value that is no phone
// number or destination at all is a ParameterValidationFailure, a number
// that does not normalize a NormalizationFailed.
func (cp *cleanProblems) numberProblem(name string, p Problem, where string) {
	if p.Subcode == SubcodeNormalizationFailed {
		cp.normalization = append(cp.normalization, Parameter{Name: name, Reason: p.Reason + where})
		return
	}
	cp.add(ruleDestination, name, p.Reason+where)
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
	if !IsScheme(scheme) {
		return "", s, false
	}
	return strings.ToLower(scheme), strings.TrimSpace(s[colon+1:]), true
}

// IsScheme reports whether s is a URI scheme: a letter, then letters,
// digits, '+', '-' and '.' (RFC 3986 3.1).
func IsScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		isAlpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !isAlpha && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// join3 returns a+b+c, or v itself when it is that already, which is the
// usual case and costs no allocation.
func join3(v, a, b, c string) string {
	if len(v) == len(a)+len(b)+len(c) && v[:len(a)] == a && v[len(a):len(a)+len(b)] == b && v[len(a)+len(b):] == c {
		return v
	}
	return a + b + c
}

// maxNumberLength bounds a phone number, in bytes: no real number is that
// long, so a longer one is refused (after any tel: scheme) without
// parsing, and the whole input is kept out of the number cache when
// longer, so that the cache's memory stays bounded.
const maxNumberLength = 100

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
		// Data without white space (the usual) is kept as it is; what
		// else strings.Map changes (invalid UTF-8) is no base64 either
		// way.
		if hasSpaceOrLineEnd(data) {
			data = strings.Map(func(r rune) rune {
				if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
					return -1
				}
				return r
			}, data)
		}
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

// hasSpaceOrLineEnd reports whether s holds a space, tab, CR or LF
// (strings.ContainsAny, without building its set on every call).
func hasSpaceOrLineEnd(s string) bool {
	for i := range len(s) {
		if c := s[i]; c <= ' ' && (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			return true
		}
	}
	return false
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
	for i := 0; i < len(s); i++ {
		if !tokenByte[s[i]] {
			return false
		}
	}
	return s != ""
}

// tokenByte marks the bytes of an RFC 2045 token: printable ASCII but
// space and the tspecials.
var tokenByte = func() (t [256]bool) {
	for c := range len(t) {
		t[c] = c > ' ' && c < 0x7f && strings.IndexByte(`()<>@,;:\"/[]?=`, byte(c)) < 0
	}
	return t
}()

// validBase64 is base64.StdEncoding.DecodeString(data) == nil, without
// decoding: whole quanta of the standard alphabet, the last of which may
// end in "=" or "==" (StdEncoding is not strict, so the bits padding
// leaves over are not checked). data holds no line ends, which
// DecodeString would skip.
func validBase64(data string) bool {
	if len(data)%4 != 0 {
		return false
	}
	n := len(data)
	if n > 0 && data[n-1] == '=' {
		n--
		if data[n-1] == '=' {
			n--
		}
	}
	// Four characters a step, their verdicts or-ed together: a data URL
	// may be kilobytes of SDP.
	s := data[:n]
	var bad byte
	for ; len(s) >= 4; s = s[4:] {
		bad |= notBase64[s[0]] | notBase64[s[1]] | notBase64[s[2]] | notBase64[s[3]]
	}
	for i := range len(s) {
		bad |= notBase64[s[i]]
	}
	return bad == 0
}

// notBase64 is 1 for the characters outside the standard base64
// alphabet.
var notBase64 = func() (not [256]byte) {
	for i := range not {
		not[i] = 1
	}
	const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(std); i++ {
		not[std[i]] = 0
	}
	return not
}()
