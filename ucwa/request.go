package ucwa

import (
	"bytes"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Field is one of the documented startPhoneAudio input properties.
type Field uint8

// The documented fields, in the reference page's order.
const (
	OperationID Field = iota
	PhoneNumber
	Importance
	Subject
	ThreadID
	To
	CustomContent // a link: _links.customContent.href in JSON, <link rel="customContent"> in XML
	numFields
)

var fieldNames = [numFields]string{"operationId", "phoneNumber", "importance", "subject", "threadId", "to", "customContent"}

// String returns the property name as the reference spells it.
func (f Field) String() string {
	if f < numFields {
		return fieldNames[f]
	}
	return "field" + strconv.Itoa(int(f))
}

// propertyField returns the field a property name denotes. Names match
// case-insensitively, as they do on a real pool. customContent is a link,
// not a property, so it is not found here.
func propertyField(name string) (Field, bool) {
	for f := range CustomContent {
		if strings.EqualFold(name, fieldNames[f]) {
			return f, true
		}
	}
	return 0, false
}

// span is where a value sits in the raw body: [start, end) of the JSON
// string token (quotes included), of an XML element's content, or of an
// XML attribute's value (quotes excluded).
type span struct {
	start, end int
}

// Request is a decoded startPhoneAudio body. Only the documented fields
// are interpreted; everything else (unknown properties, other links,
// comments, white space) stays in the raw body and is forwarded as is.
type Request struct {
	// Format is the wire format the body came in, and is re-encoded in.
	Format Format

	raw     []byte
	values  [numFields]string
	orig    [numFields]string
	present [numFields]bool
	spans   [numFields]span
	// typeErr holds, per field, why its value could not be read as a
	// string (a JSON number, an XML propertyList, ...); "" when it could.
	typeErr [numFields]string
}

// Decode parses a body in the given format. It returns a 400
// DeserializationFailure for malformed input, naming where it is wrong.
// The body is retained, not copied: it must not change afterwards.
//
// A UTF-8 byte order mark at the start (which .NET writers emit by
// default) is dropped before decoding, so the request, and the body
// Encode forwards, starts after it.
func Decode(f Format, body []byte) (*Request, *Error) {
	body = bytes.TrimPrefix(body, utf8BOM)
	if f == XML {
		return decodeXML(body)
	}
	return decodeJSON(body)
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Get returns a field's current value and whether the body has it. A JSON
// null and an empty or blank value count as absent.
func (r *Request) Get(f Field) (string, bool) {
	return r.values[f], r.present[f]
}

// Set replaces the value of a field the body has; Encode writes it in
// place of the old one. Setting an absent field has no effect: the edge
// never adds properties to a body.
func (r *Request) Set(f Field, v string) {
	if r.present[f] {
		r.values[f] = v
	}
}

// set records a decoded value; blank values count as absent.
func (r *Request) set(f Field, v string, sp span) {
	if strings.TrimSpace(v) == "" {
		return
	}
	r.values[f], r.orig[f], r.present[f], r.spans[f] = v, v, true, sp
}

// Changed reports whether any field differs from what the body held.
func (r *Request) Changed() bool {
	return r.values != r.orig
}

// Encode returns the body with every changed field rewritten in place and
// everything else byte for byte as it came. It returns the original slice
// when nothing changed.
func (r *Request) Encode() []byte {
	if !r.Changed() {
		return r.raw
	}
	// The changed fields in body order (at most numFields: an insertion
	// sort on the stack), written straight into the output.
	var order [numFields]Field
	n, grow := 0, 0
	for f := range numFields {
		if r.values[f] == r.orig[f] {
			continue
		}
		i := n
		for ; i > 0 && r.spans[order[i-1]].start > r.spans[f].start; i-- {
			order[i] = order[i-1]
		}
		order[i] = f
		n++
		grow += len(r.values[f]) + len(r.values[f])/8 + 2 // room for quotes and a few escapes
	}
	out := make([]byte, 0, len(r.raw)+grow)
	at := 0
	for _, f := range order[:n] {
		sp := r.spans[f]
		out = append(out, r.raw[at:sp.start]...)
		if r.Format == JSON {
			out = appendJSONString(out, r.values[f])
		} else {
			out = appendXMLText(out, r.values[f]) // escapes quotes too, so it fits an attribute
		}
		at = sp.end
	}
	return append(out, r.raw[at:]...)
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

// foldName folds a property name for comparison in any letter case.
// Names are ASCII (checkNameASCII refuses any other), so upper case is
// the whole folding.
func foldName(name string) string {
	return strings.ToUpper(name)
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

func deserializationError(msg string) *Error {
	return NewError(400, SubcodeDeserializationFailure, msg)
}

// QueryTarget returns the "to" query parameter. Pools run on IIS, which
// reads query names case-insensitively, so "to" given twice in any letter
// case is refused rather than guessed at.
func QueryTarget(query url.Values) (string, *Error) {
	var found []string
	for name, vals := range query {
		if strings.EqualFold(name, "to") {
			found = append(found, vals...)
		}
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", parameterError([]Parameter{{Name: "to", Reason: "appears more than once as a query parameter"}})
}
