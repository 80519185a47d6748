package ucwa

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Source says where a value came from.
type Source uint8

const (
	// InBody is a value of the request body.
	InBody Source = iota + 1
	// InQuery is a value of the query string.
	InQuery
)

// String returns "body" or "query".
func (s Source) String() string {
	switch s {
	case InBody:
		return "body"
	case InQuery:
		return "query"
	}
	return "Source(" + strconv.Itoa(int(s)) + ")"
}

// span is where a value sits in the raw body: [start, end) of the JSON
// token (quotes included), of an XML element's content, or of an XML
// attribute's value (quotes excluded).
type span struct {
	start, end int32
}

// typeProblem is why a value in the body could not be read as its
// property's type.
type typeProblem uint8

const (
	typeOK typeProblem = iota
	notString
	notBoolean
	notInteger
	notSingle
)

var typeReasons = [...]string{
	notString:  "must be a string",
	notBoolean: "must be true or false",
	notInteger: "must be a whole number",
	notSingle:  "must be a single value, not a propertyList",
}

// value is one property's value in a body.
type value struct {
	text    string
	span    span
	present bool
	changed bool
	// bare is set for a JSON literal (true, false, a number) rather than
	// a string token: Encode writes such a value without quotes.
	bare    bool
	problem typeProblem
}

// Request is a decoded body of an operation (a UCWA JSON or XML body of
// properties). Only the operation's documented properties are
// interpreted; everything else (unknown properties, other links,
// comments, white space) stays in the raw body and is forwarded as is.
type Request struct {
	// Format is the wire format the body came in, and is re-encoded in.
	Format Format

	op  *Operation
	raw []byte
	// rawText is one copy of raw as a string, made when the first value
	// is decoded: the decoded values that need no unescaping are
	// substrings of it, so that a body's values cost one allocation
	// together.
	rawText string
	vals    [MaxProperties]value
	// scan reads a JSON body (see decodeJSON).
	scan jsonScanner
}

// decodeInto parses into r a body of op (whose Body is PropertiesBody)
// in the given format. Property names match in any letter case; a name
// given twice in any letter case, or a name outside ASCII, is refused.
// It returns a 400 DeserializationFailure for malformed input, naming
// where it is wrong but never quoting a value. The body is retained, not
// copied: it must not change afterwards.
//
// A UTF-8 byte order mark at the start (which .NET writers emit by
// default) is dropped before decoding, so the request, and the body
// Encode forwards, starts after it.
func decodeInto(r *Request, op *Operation, f Format, body []byte) *Error {
	if op.Body != PropertiesBody || len(op.Properties) > MaxProperties || len(op.Embedded) > MaxEmbedded {
		return NewError(415, SubcodeUnsupportedMediaType, op.Rel+" takes no UCWA body.")
	}
	if len(body) > math.MaxInt32 {
		return NewError(413, SubcodeEntityTooLarge, "The body is too large.")
	}
	body = bytes.TrimPrefix(body, utf8BOM)
	if f == XML {
		return decodeXML(r, op, body)
	}
	return decodeJSON(r, op, body)
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Get returns a property's current value and whether the body has it. A
// JSON null and an empty or blank value count as absent, and so does a
// value of the wrong type. A decoded value may share its memory with a
// copy of the whole body: what keeps one past the request keeps a copy
// of its own (strings.Clone), as the number caches do.
func (r *Request) Get(name string) (string, bool) {
	if i := r.op.propertyIndex(name); i >= 0 && r.vals[i].present {
		return r.vals[i].text, true
	}
	return "", false
}

// Set replaces the value of a property the body has; Encode writes it in
// place of the old one. Setting an absent property has no effect: the
// edge never adds properties to a body.
func (r *Request) Set(name, v string) {
	if i := r.op.propertyIndex(name); i >= 0 {
		r.setValue(i, v)
	}
}

// setValue replaces the value of property i, if the body has it.
func (r *Request) setValue(i int, v string) {
	if val := &r.vals[i]; val.present && val.text != v {
		val.text, val.changed = v, true
	}
}

// set records a decoded value; blank values count as absent.
func (r *Request) set(i int, v string, sp span, bare bool) {
	if isBlank(v) {
		return
	}
	r.vals[i] = value{text: v, span: sp, present: true, bare: bare}
}

// isBlank is strings.TrimSpace(s) == "", told from the first byte for
// most values: a printable ASCII byte (0x21 to 0x7f) is no white space.
func isBlank(s string) bool {
	return (s == "" || s[0]-0x21 >= 0x5f) && strings.TrimSpace(s) == ""
}

// text returns the bytes of raw at [start, end) as a string, a
// substring of rawText.
func (r *Request) text(start, end int) string {
	if r.rawText == "" {
		r.rawText = string(r.raw)
	}
	return r.rawText[start:end]
}

// Changed reports whether any value was replaced.
func (r *Request) Changed() bool {
	for i := range r.op.Properties {
		if r.vals[i].changed {
			return true
		}
	}
	return false
}

// Encode returns the body with every replaced value rewritten in place
// and everything else byte for byte as it came. It returns the original
// slice when nothing changed.
func (r *Request) Encode() []byte {
	// The changed values in body order (at most MaxProperties: an
	// insertion sort on the stack), written straight into the output.
	var order [MaxProperties]int
	n, grow := 0, 0
	for i := range r.op.Properties {
		v := &r.vals[i]
		if !v.changed {
			continue
		}
		j := n
		for ; j > 0 && r.vals[order[j-1]].span.start > v.span.start; j-- {
			order[j] = order[j-1]
		}
		order[j] = i
		n++
		// The value replaces its span: room for it, its quotes and a
		// few escapes.
		grow += len(v.text) + len(v.text)/8 + 2 - int(v.span.end-v.span.start)
	}
	if n == 0 {
		return r.raw
	}
	out := make([]byte, 0, len(r.raw)+max(grow, 0))
	at := 0
	for _, i := range order[:n] {
		v := &r.vals[i]
		out = append(out, r.raw[at:v.span.start]...)
		switch {
		case r.Format == XML:
			out = appendXMLText(out, v.text) // escapes quotes too, so it fits an attribute
		case v.bare && bareJSON(v.text):
			out = append(out, v.text...)
		default:
			out = appendJSONString(out, v.text)
		}
		at = int(v.span.end)
	}
	return append(out, r.raw[at:]...)
}

// bareJSON reports whether v can replace a JSON literal as it is: true,
// false, or a whole number in canonical form.
func bareJSON(v string) bool {
	if v == "true" || v == "false" {
		return true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return err == nil && strconv.FormatInt(n, 10) == v
}

// position turns a byte offset into "line L, column C" for error messages.
func position(body []byte, offset int64) string {
	offset = min(max(offset, 0), int64(len(body)))
	line, col := 1, 1
	for _, c := range body[:offset] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return "line " + strconv.Itoa(line) + ", column " + strconv.Itoa(col)
}

// checkNameASCII refuses a property (or link) name with a character
// outside ASCII. strings.EqualFold and a pool's .NET OrdinalIgnoreCase
// disagree there ("ımportance", with a dotless ı, is "importance" to
// .NET only), so such a name could reach the pool as a documented one
// that the edge never validated. what and prefix say what the name is
// in the message ("property", "_links."; "link rel", "").
func checkNameASCII[T string | []byte](what, prefix string, name T, body []byte, at int) *Error {
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			return deserializationError("The " + what + ` "` + prefix + string(name) + `" has a character outside ASCII, at ` + position(body, int64(at)) + "; UCWA names are ASCII.")
		}
	}
	return nil
}

// valueLinkError refuses a link whose name is, in any letter case, or
// folds onto (see foldsOnto) that of param, a property of the operation
// that is not a link. The edge reads param only as a property, so it
// would forward such a link unjudged, while a pool reading the body
// loosely might take the link's href for param's value (a number it
// dials, say). link is the link as its documented spelling writes it;
// the message never holds the name as written or a value.
func valueLinkError(param, link string, body []byte, at int) *Error {
	return parameterError([]Parameter{{Name: param,
		Reason: "is given in the body as a link, " + link + ", at " + position(body, int64(at)) + "; " + param + " is not a link: write it as a property"}})
}

// propertyLinkError refuses a top-level property whose name is, in any
// letter case, or folds onto (see foldsOnto) that of param, a link of the
// operation (customContent), holding anything but null or blank text. The
// edge reads param only as a link, so it would forward such a property
// unjudged, while a pool reading the body loosely might take its value
// for the link's (a data: URL the edge never checked). link is where the
// link goes, as its documented spelling writes it; the message never
// holds the name as written or a value.
func propertyLinkError(param, link string, body []byte, at int) *Error {
	return parameterError([]Parameter{{Name: param,
		Reason: "is given in the body as a property, at " + position(body, int64(at)) + "; " + param + " is a link: write it as " + link}})
}

func deserializationError(msg string) *Error {
	return NewError(400, SubcodeDeserializationFailure, msg)
}

// nameSet holds the names of one object or element, to refuse one that
// appears twice in any letter case. The first few are compared one by
// one, which costs no allocation; a large object switches to a map.
// Names are ASCII (checkNameASCII refuses any other), so ASCII folding
// is the whole comparison.
type nameSet[T string | []byte] struct {
	few [16]T
	n   int
	// lengths has bit len%64 set for each length of the few: a name of a
	// length none of them has is compared with none.
	lengths uint64
	many    map[string]string
}

// add records name and, if it was there already in any letter case,
// returns that first spelling.
func (ns *nameSet[T]) add(name T) (string, bool) {
	if ns.many == nil {
		bit := uint64(1) << (len(name) % 64)
		if ns.lengths&bit != 0 {
			for _, prev := range ns.few[:ns.n] {
				if equalFoldASCII(prev, name) {
					return string(prev), true
				}
			}
		}
		if ns.n < len(ns.few) {
			ns.few[ns.n] = name
			ns.n++
			ns.lengths |= bit
			return "", false
		}
		ns.many = make(map[string]string, 2*len(ns.few))
		for _, prev := range ns.few {
			ns.many[strings.ToLower(string(prev))] = string(prev)
		}
	}
	key := strings.ToLower(string(name))
	if first, dup := ns.many[key]; dup {
		return first, true
	}
	ns.many[key] = string(name)
	return "", false
}
