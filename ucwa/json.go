package ucwa

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// maxJSONDepth is how deeply arrays and objects may nest: the body's
// object is depth 1, a top-level property's value depth 1 inside it, and
// so on, every value counted at its real depth. The scanner reads a level
// by a call, a kilobyte or two of goroutine stack for an object inside a
// value the edge does not read, and a goroutine keeps the stack it grew
// until garbage collection halves it, once a cycle: at encoding/json's
// 10,000 levels, a 60 KB body would grow a connection's goroutine by up
// to 16 MB, which an idle keep-alive connection then holds, a hundred
// connections a gigabyte. 64 is the default of .NET's JSON readers
// (Json.NET's MaxDepth, System.Text.Json's), which a pool behind the edge
// refuses deeper bodies with, and far more than a UCWA body nests (a
// resource's _embedded resource's _links: five).
const maxJSONDepth = 64

// decodeJSON reads a JSON body of op in one pass: an object of
// properties, with links under "_links". The scanner checks the whole
// body as encoding/json does, nesting to maxJSONDepth (FuzzDecodeJSON
// holds it to that), and only
// turns the documented properties into strings. Property names match
// case-insensitively, so a name that appears twice in any letter case is
// refused: the pool might read the other one. A name that only folds
// onto one the decoder reads ("phoneNumber ", "phone\u0000Number",
// "_links\t"), as ParseQuery folds query names, is refused too, naming
// the property, and so is a link named, or folding onto the name of, a
// property that is not a link ("_links":{"phoneNumber":...}; see
// valueLinkError). A .NET metadata member ("$ref", "$type", "__type")
// in any object is refused (see isDotNetMetadata). Inside a value the
// decoder does not read, objects are held to the same rules as those it
// reads, and a member named like a destination, "_links" or "_embedded"
// is refused too (see unreadValue).
func decodeJSON(r *Request, op *Operation, body []byte) *Error {
	if !utf8.Valid(body) {
		return deserializationError("The JSON body is not valid UTF-8.")
	}
	// A Request never decoded is all zero (Intake's, from a box Release
	// cleared or a new one): only one decoded before is cleared, half a
	// kilobyte.
	if r.op != nil {
		*r = Request{}
	}
	r.Format, r.op, r.raw = JSON, op, body
	// The scanner is the request's own: the callbacks it is handed to
	// would move one on the stack to the heap.
	s := &r.scan
	*s = jsonScanner{body: body, op: op}
	s.skipSpace()
	if err := s.object("The body", "", 0, r.jsonProperty, r.jsonLookalike); err != nil {
		return err
	}
	s.skipSpace()
	if s.pos < len(body) {
		return deserializationError("The JSON body has data after its object, at " + position(body, int64(s.pos)) + ".")
	}
	return nil
}

// jsonProperty reads the value of one top-level property.
func (r *Request) jsonProperty(s *jsonScanner, name []byte, at int) *Error {
	if i := r.op.valueIndex(name); i >= 0 {
		return r.jsonValue(s, i, 1)
	}
	if i := r.op.linkIndex(name); i >= 0 {
		if ok, err := s.blankValue(1); err != nil || ok {
			return err
		}
		return propertyLinkError(r.op.Properties[i].Name, jsonHrefName(r.op.Properties[i].Name), s.body, at)
	}
	if d := strayDestination(r.op, name); d != nil {
		if ok, err := s.destinationAllowed(d, 1); err != nil || ok {
			return err
		}
		return strayBodyError(d, r.op, "property", s.body, at)
	}
	if isEmbeddedName(name) {
		return s.jsonEmbedded(1, r.op.Embedded)
	}
	if !equalFoldASCII(linksName, name) {
		if !plainName(name) {
			folded := foldedName(name)
			if namelessQueryName(folded) {
				if ok, err := s.blankValue(1); err != nil || ok {
					return err
				}
				return deserializationError("A member whose name is an index alone, at " + position(s.body, int64(at)) + namelessMemberReason)
			}
			if entryKeyName(folded) && s.pos < len(s.body) && s.body[s.pos] == '"' {
				return s.entryKey(at, "given as a property")
			}
		}
		return s.unreadValue(1, unreadProperty)
	}
	return s.object(`"_links"`, "_links.", 1, func(s *jsonScanner, name []byte, at int) *Error {
		i := r.op.linkIndex(name)
		if i < 0 {
			if j := r.op.valueIndex(name); j >= 0 {
				return valueLinkError(r.op.Properties[j].Name, jsonLinkName(r.op.Properties[j].Name), s.body, at)
			}
			if d := strayDestination(r.op, name); d != nil {
				return s.jsonLinkDestination(d, 2, func(at int) *Error { return strayBodyError(d, r.op, "link", s.body, at) }, at)
			}
			return s.unreadValue(2, unreadLink)
		}
		prefix, what := jsonLinkWhere(r.op.Properties[i].Name)
		return s.object(what, prefix, 2, func(s *jsonScanner, name []byte, at int) *Error {
			if !equalFoldASCII(hrefName, name) {
				return s.unreadMember(name, at, 3, unreadLinkMember)
			}
			return r.jsonValue(s, i, 3)
		}, func(name []byte, folded string, at int) *Error {
			if foldsOnto(name, folded, hrefName) {
				return lookalikeError(r.op.Properties[i].Name, prefix+hrefName, s.body, at)
			}
			return nil
		})
	}, func(name []byte, folded string, at int) *Error {
		if i := lookalikeProperty(r.op, name, folded, true); i >= 0 {
			return lookalikeError(r.op.Properties[i].Name, "_links."+r.op.Properties[i].Name, s.body, at)
		}
		if i := lookalikeProperty(r.op, name, folded, false); i >= 0 {
			return valueLinkError(r.op.Properties[i].Name, jsonLinkName(r.op.Properties[i].Name), s.body, at)
		}
		if in := embeddedBindingInput(r.op, folded); in != "" {
			// As XML refuses <link rel="x.ringDelay">.
			return embeddedBindingError(in, "in the body as a link's name, at "+position(s.body, int64(at))+",")
		}
		return nil
	})
}

// jsonLinkDestination reads the link of a destination d at the given
// depth, at offset at, where the edge does not judge it: refuse(at) is
// the answer when d is no destination a pool serves as a link, or the
// link's href (any member that is, or folds onto, href) holds anything
// but what d allows (see namedDestination.allows); a link that is no
// object (nor null) is refused as any link is.
func (s *jsonScanner) jsonLinkDestination(d *namedDestination, depth int, refuse func(at int) *Error, at int) *Error {
	if !d.resourcePath {
		return refuse(at)
	}
	if err := s.enter(depth); err != nil {
		return err
	}
	prefix := linksName + "." + d.name + "."
	return s.object(`"`+prefix[:len(prefix)-1]+`"`, prefix, depth, func(s *jsonScanner, name []byte, at int) *Error {
		if !equalFoldASCII(hrefName, name) {
			return s.unreadMember(name, at, depth+1, unreadLinkMember)
		}
		ok, err := s.destinationAllowed(d, depth+1)
		if err != nil || ok {
			return err
		}
		return refuse(at)
	}, func(name []byte, folded string, at int) *Error {
		if foldsOnto(name, folded, hrefName) {
			return refuse(at)
		}
		return nil
	})
}

// jsonLinkWhere returns how messages name the object of the link of
// that name and what it holds: `"_links.customContent"` and
// "_links.customContent.". Those of the default table's links are made
// once, not for every body that carries one.
func jsonLinkWhere(name string) (prefix, what string) {
	if w, ok := defaultLinkWhere[name]; ok {
		return w.prefix, w.what
	}
	w := newLinkWhere(name)
	return w.prefix, w.what
}

type linkWhere struct{ prefix, what string }

func newLinkWhere(name string) linkWhere {
	prefix := linksName + "." + name + "."
	return linkWhere{prefix, `"` + prefix[:len(prefix)-1] + `"`}
}

var defaultLinkWhere = func() map[string]linkWhere {
	m := make(map[string]linkWhere)
	for _, op := range defaultOperations {
		for _, p := range op.Properties {
			if p.Type == DataURLValue {
				m[p.Name] = newLinkWhere(p.Name)
			}
		}
	}
	return m
}()

// jsonLookalike refuses a top-level name that is not plain and folds
// onto a property or "_links".
func (r *Request) jsonLookalike(name []byte, folded string, at int) *Error {
	if i := lookalikeProperty(r.op, name, folded, false); i >= 0 {
		return lookalikeError(r.op.Properties[i].Name, r.op.Properties[i].Name, r.raw, at)
	}
	if i := lookalikeProperty(r.op, name, folded, true); i >= 0 {
		return propertyLinkError(r.op.Properties[i].Name, jsonHrefName(r.op.Properties[i].Name), r.raw, at)
	}
	if foldsOnto(name, folded, linksName) {
		return lookalikeError(linksName, linksName, r.raw, at)
	}
	if in := embeddedBindingInput(r.op, folded); in != "" {
		return embeddedBindingError(in, "in the body, at "+position(r.raw, int64(at))+",")
	}
	return nil
}

// namelessMemberReason ends the refusal of a top-level member whose name
// is an index alone ("[0]", "[x]", "[]"), holding anything but null or a
// blank string. MVC's DefaultModelBinder binds a parameter whose name no
// key begins with under the empty prefix (BindModel's
// FallbackToEmptyPrefix), and a collection parameter there from the keys
// "[0]", "[1]", ..., or from "[x]" for each x the key "index" lists
// (UpdateCollection, GetIndexes, CreateSubIndexName), which
// JsonValueProviderFactory makes of such a member: a pool's string[]
// phoneNumber holds its value, where the edge read no input.
const namelessMemberReason = "; ASP.NET MVC binds the value of such a name ([0]), under the empty prefix, as an element of a collection parameter the body does not name (string[] phoneNumber), where the edge reads no input; give every property a name."

const (
	linksName = "_links"
	hrefName  = "href"
)

// isDotNetMetadata reports whether a member name is, in any letter case,
// one a .NET reader takes as metadata rather than as a property: "$ref"
// is Json.NET's object reference (the object is, to Json.NET, the one
// registered under that "$id" elsewhere in the body, whatever
// PreserveReferencesHandling says), "$type" Json.NET's and "__type"
// DataContractJsonSerializer's type hint (which choose the type the pool
// builds, and with it the members it reads: under Json.NET's
// TypeNameHandling, a known way to run code). Either way the pool would
// read what the edge has not judged, and no UCWA client sends them.
func isDotNetMetadata(name []byte) bool {
	return equalFoldASCII("$ref", name) || equalFoldASCII("$type", name) || equalFoldASCII("__type", name)
}

// dotNetMetadataReason is why object refuses such a member, between the
// member and where it sits.
const dotNetMetadataReason = " is .NET metadata (an object reference or a type hint), which a .NET pool reads as something the edge has not judged, at "

// jsonLinkName is how an error names the link of that name.
func jsonLinkName(name string) string { return `"` + linksName + "." + name + `"` }

// jsonHrefName is how an error names where JSON writes the link of that
// name (see propertyLinkError).
func jsonHrefName(name string) string { return linksName + "." + name + "." + hrefName }

// jsonValue reads the value of property i, at the given depth: for a
// boolean a JSON true or false, for an integer a JSON number, for any
// other type a string; null (and a blank string) is absent, and any
// other value is recorded as a type problem.
func (r *Request) jsonValue(s *jsonScanner, i, depth int) *Error {
	start := s.pos
	sp := func() span { return span{start: int32(start), end: int32(s.pos)} }
	typ := r.op.Properties[i].Type
	if s.pos < len(s.body) && s.body[s.pos] == '"' {
		raw, escaped, err := s.str()
		if err != nil {
			return err
		}
		var v string
		if escaped {
			v = unquote(raw, true)
		} else {
			v = r.text(start+1, s.pos-1)
		}
		switch {
		case typ != BooleanValue && typ != IntegerValue:
			r.set(i, v, sp(), false)
		case !isBlank(v):
			r.vals[i].problem = problemFor(typ)
		}
		return nil
	}
	if err := s.skipValue(depth); err != nil {
		return err
	}
	token := s.body[start:s.pos]
	switch {
	case string(token) == "null":
	case typ == BooleanValue && (string(token) == "true" || string(token) == "false"),
		typ == IntegerValue && isJSONInteger(token):
		r.set(i, r.text(start, s.pos), sp(), true)
	default:
		r.vals[i].problem = problemFor(typ)
	}
	return nil
}

// problemFor is the type problem of a value that is not of type t.
func problemFor(t ValueType) typeProblem {
	switch t {
	case BooleanValue:
		return notBoolean
	case IntegerValue:
		return notInteger
	}
	return notString
}

// isJSONInteger reports whether a checked JSON number has no fraction
// and no exponent.
func isJSONInteger(token []byte) bool {
	return !bytes.ContainsAny(token, ".eE")
}

// unquote returns the text of a string token (quotes included).
func unquote(raw []byte, escaped bool) string {
	if !escaped {
		return string(raw[1 : len(raw)-1])
	}
	var v string
	_ = json.Unmarshal(raw, &v) // the scanner has checked the token
	return v
}

// jsonScanner walks a JSON body, checking its syntax.
type jsonScanner struct {
	body []byte
	pos  int
	// unread is, while the scanner walks a value the edge does not read,
	// how messages name that value (see unreadValue), and "" elsewhere.
	// object's refusals there name no member as written: a name in such
	// a value may be anything (a number an object is keyed by).
	unread string
	// op is the operation whose body the scanner reads: a member named
	// like one of its inputs inside a value the edge does not read is
	// refused (see unreadMember).
	op *Operation
}

func (s *jsonScanner) skipSpace() {
	// A local index: through s, every step would be a store.
	body, i := s.body, s.pos
	for i < len(body) && jsonSpace[body[i]] {
		i++
	}
	s.pos = i
}

// jsonSpace marks JSON's white space: space, tab, CR and LF.
var jsonSpace = [256]bool{' ': true, '\t': true, '\r': true, '\n': true}

// syntaxError says where the body is malformed and what was found there.
func (s *jsonScanner) syntaxError(context string) *Error {
	found := "unexpected end of input"
	if s.pos < len(s.body) {
		c, _ := utf8.DecodeRune(s.body[s.pos:])
		found = "invalid character " + strconv.QuoteRune(c) + " " + context
	}
	return deserializationError("The JSON body is malformed at " + position(s.body, int64(s.pos)) + ": " + found + ".")
}

// object reads an object at the given depth (0 for the body itself,
// which must be an object; a link, with a prefix, may also be null),
// calling member with the scanner on each value, which sits at depth+1,
// its name and where that sits. member must consume the value. prefix
// qualifies names in error messages (inside a value the edge does not
// read, they name where instead: see jsonScanner.unread). lookalike is
// handed each name that is not plain (see plainName) with its fold
// (foldLookalike's) and where it sits, and returns the error refusing a
// name that folds onto one the edge reads, or nil: such a name is
// refused, since a pool that reads names loosely would take it for the
// name the edge reads while the edge skips it.
func (s *jsonScanner) object(what, prefix string, depth int, member func(s *jsonScanner, name []byte, at int) *Error, lookalike func(name []byte, folded string, at int) *Error) *Error {
	if s.pos >= len(s.body) {
		return s.syntaxError("")
	}
	if s.body[s.pos] != '{' {
		start := s.pos
		if err := s.skipValue(depth); err != nil {
			return err
		}
		if prefix != "" && string(s.body[start:s.pos]) == "null" {
			return nil
		}
		return deserializationError(what + " must be a JSON object.")
	}
	s.pos++
	var seen nameSet[[]byte]
	s.skipSpace()
	if s.pos < len(s.body) && s.body[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		s.skipSpace()
		if s.pos >= len(s.body) || s.body[s.pos] != '"' {
			return s.syntaxError("looking for beginning of object key string")
		}
		at := s.pos
		raw, escaped, err := s.str()
		if err != nil {
			return err
		}
		name := raw[1 : len(raw)-1]
		if escaped {
			name = []byte(unquote(raw, true))
		}
		if len(name) == 0 {
			// ASP.NET MVC's JsonValueProviderFactory keys a member by its
			// parent's key, a dot and its name, and a member without a
			// name by its parent's key alone (MakePropertyKey): so the
			// members of {"":{"operationId":"b"}} are the body's own to
			// it, the key operationId, where the edge reads a property
			// it does not take and its members nowhere. UCWA names every
			// member.
			return deserializationError("A member without a name, at " + position(s.body, int64(at)) + emptyNameReason)
		}
		if isDotNetMetadata(name) {
			if s.unread != "" {
				return deserializationError("A member inside " + s.unread + dotNetMetadataReason + position(s.body, int64(at)) + ".")
			}
			return deserializationError(`The property "` + prefix + string(name) + `"` + dotNetMetadataReason + position(s.body, int64(at)) + ".")
		}
		if !plainName(name) {
			folded := foldString(string(name))
			if err := lookalike(name, folded, at); err != nil {
				return err
			}
			if err := checkNameASCII("property", prefix, name, s.body, at); err != nil {
				if s.unread != "" {
					return deserializationError("A member's name inside " + s.unread + " has a character outside ASCII, at " + position(s.body, int64(at)) + "; UCWA names are ASCII.")
				}
				return err
			}
		}
		if first, dup := seen.add(name); dup {
			if s.unread != "" {
				return deserializationError("A member's name inside " + s.unread + " appears twice (in any letter case), at " + position(s.body, int64(at)) + ".")
			}
			return deserializationError(`The property "` + prefix + string(name) + `" appears twice (also as "` + prefix + first + `"), at ` + position(s.body, int64(at)) + ".")
		}
		s.skipSpace()
		if s.pos >= len(s.body) || s.body[s.pos] != ':' {
			return s.syntaxError("after object key")
		}
		s.pos++
		s.skipSpace()
		if err := member(s, name, at); err != nil {
			return err
		}
		s.skipSpace()
		if s.pos >= len(s.body) {
			return s.syntaxError("")
		}
		switch s.body[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.syntaxError("after object key:value pair")
		}
	}
}

// skipValue checks and skips one value at the given nesting depth.
func (s *jsonScanner) skipValue(depth int) *Error {
	s.skipSpace()
	if s.pos >= len(s.body) {
		return s.syntaxError("")
	}
	switch c := s.body[s.pos]; {
	case c == '"':
		_, _, err := s.str()
		return err
	case c == '{' || c == '[':
		if depth >= maxJSONDepth {
			return deserializationError("The JSON body is nested too deeply at " + position(s.body, int64(s.pos)) + ".")
		}
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		s.pos++
		s.skipSpace()
		if s.pos < len(s.body) && s.body[s.pos] == end {
			s.pos++
			return nil
		}
		for {
			if c == '{' {
				s.skipSpace()
				if s.pos >= len(s.body) || s.body[s.pos] != '"' {
					return s.syntaxError("looking for beginning of object key string")
				}
				if _, _, err := s.str(); err != nil {
					return err
				}
				s.skipSpace()
				if s.pos >= len(s.body) || s.body[s.pos] != ':' {
					return s.syntaxError("after object key")
				}
				s.pos++
			}
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			s.skipSpace()
			if s.pos >= len(s.body) {
				return s.syntaxError("")
			}
			switch s.body[s.pos] {
			case ',':
				s.pos++
			case end:
				s.pos++
				return nil
			default:
				if end == ']' {
					return s.syntaxError("after array element")
				}
				return s.syntaxError("after object key:value pair")
			}
		}
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return s.syntaxError("looking for beginning of value")
}

func (s *jsonScanner) literal(word string) *Error {
	for i := range len(word) {
		if s.pos >= len(s.body) || s.body[s.pos] != word[i] {
			return s.syntaxError("in literal " + word + " (expecting " + strconv.QuoteRune(rune(word[i])) + ")")
		}
		s.pos++
	}
	return nil
}

// number checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() *Error {
	digits := func() int {
		n := 0
		for s.pos < len(s.body) && s.body[s.pos] >= '0' && s.body[s.pos] <= '9' {
			s.pos++
			n++
		}
		return n
	}
	if s.body[s.pos] == '-' {
		s.pos++
	}
	if s.pos < len(s.body) && s.body[s.pos] == '0' {
		s.pos++
	} else if digits() == 0 {
		return s.syntaxError("in numeric literal")
	}
	if s.pos < len(s.body) && s.body[s.pos] == '.' {
		s.pos++
		if digits() == 0 {
			return s.syntaxError("after decimal point in numeric literal")
		}
	}
	if s.pos < len(s.body) && (s.body[s.pos] == 'e' || s.body[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.body) && (s.body[s.pos] == '+' || s.body[s.pos] == '-') {
			s.pos++
		}
		if digits() == 0 {
			return s.syntaxError("in exponent of numeric literal")
		}
	}
	return nil
}

// str checks a string token and returns it, quotes included, and whether
// it holds escapes.
func (s *jsonScanner) str() (raw []byte, escaped bool, _ *Error) {
	// Local indexes: through s, every step would be a store. s.pos is
	// set where an error is told.
	body, start := s.body, s.pos
	i := start + 1 // the opening quote
	for {
		// The run of bytes that stand for themselves.
		if i = plainRun(body, i); i >= len(body) {
			break
		}
		switch c := body[i]; {
		case c == '"':
			s.pos = i + 1
			return body[start : i+1], escaped, nil
		case c < 0x20:
			s.pos = i
			return nil, false, s.syntaxError("in string literal")
		case c == '\\':
			escaped = true
			i++
			if i >= len(body) {
				s.pos = i
				return nil, false, s.syntaxError("")
			}
			switch body[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				i++
				for range 4 {
					if i >= len(body) {
						s.pos = i
						return nil, false, s.syntaxError("")
					}
					if !isHex(body[i]) {
						s.pos = i
						return nil, false, s.syntaxError("in \\u hexadecimal character escape")
					}
					i++
				}
			default:
				s.pos = i
				return nil, false, s.syntaxError("in string escape code")
			}
		}
	}
	s.pos = i
	return nil, false, s.syntaxError("")
}

// jsonVerbatim marks the bytes appendJSONString writes as they are: the
// ASCII ones that need no escape.
var jsonVerbatim = func() (verbatim [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		verbatim[c] = c != '"' && c != '\\'
	}
	return verbatim
}()

// verbatimRun returns the index of the first byte of s from i on that
// appendJSONString does not write as it is (see jsonVerbatim), or len(s):
// plainRun's, where a byte outside ASCII also ends the run.
func verbatimRun(s string, i int) int {
	const highs = 0x8080808080808080
	for ; i+8 <= len(s); i += 8 {
		w := s[i : i+8]
		// One load: the compiler joins the eight.
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		if m := specialBytes(x) | x&highs; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(s) && jsonVerbatim[s[i]] {
		i++
	}
	return i
}

// plainRun returns the index of the first byte of body from i on that
// is not plain (see jsonPlain), or len(body). Eight bytes at a time: the
// lowest byte specialBytes flags in a word is the first that is not.
func plainRun(body []byte, i int) int {
	for ; i+8 <= len(body); i += 8 {
		if m := specialBytes(binary.LittleEndian.Uint64(body[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for i < len(body) && jsonPlain[body[i]] {
		i++
	}
	return i
}

// specialBytes flags, with its high bit, each byte of w that is a quote,
// a backslash or a control character, which jsonPlain tells one by one:
// a byte below 0x20 is found as one that borrows when 0x20 is taken from
// it, a quote or backslash as a zero byte of w xor'ed with it (a byte
// with its high bit set is none of them, and xor'ed with the quote or
// the backslash keeps it set: one &^w clears all three). A borrow only
// runs upwards, from a byte that is flagged rightly, so the lowest byte
// flagged (the first, read little-endian) is one, and w holds none when
// none is flagged; a byte above the first may be flagged wrongly.
func specialBytes(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	return (w - ones*0x20 | (w ^ (ones * '"') - ones) | (w ^ (ones * '\\') - ones)) &^ w & highs
}

// jsonPlain marks the bytes a string token holds as they are: all but
// the closing quote, a backslash and the control characters.
var jsonPlain = func() (plain [256]bool) {
	for c := 0x20; c < len(plain); c++ {
		plain[c] = c != '"' && c != '\\'
	}
	return plain
}()

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// appendJSONString appends s as a JSON string, escaping only what JSON
// requires (no HTML escaping: the body is not HTML), and U+2028/U+2029,
// which JavaScript readers trip over.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		// The run of bytes written as they are, in one append.
		j := verbatimRun(s, i)
		dst = append(dst, s[i:j]...)
		if i = j; i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			default: // a control character
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
