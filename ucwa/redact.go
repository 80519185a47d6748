package ucwa

import (
	"net/url"
	"strings"
)

// Redacted is what RedactQueryNumbers writes in place of a value it
// hides.
const Redacted = "REDACTED"

// numberNames are the names, folded (see foldLookalike), of the
// properties that hold a phone number or destination in any operation of
// the table: to, phoneNumber, number, target, delegator.
var numberNames = func() map[string]bool {
	names := map[string]bool{}
	for _, name := range NumberPropertyNames(defaultOperations) {
		folded, _ := foldLookalike(name)
		names[folded] = true
	}
	return names
}()

// NumberPropertyNames returns the documented names of the properties of
// ops that hold a phone number or a destination (NumberValue,
// DestinationValue), each name once, in table order.
func NumberPropertyNames(ops []Operation) []string {
	var names []string
	seen := map[string]bool{}
	for i := range ops {
		for _, p := range ops[i].Properties {
			if (p.Type == NumberValue || p.Type == DestinationValue) && !seen[p.Name] {
				seen[p.Name] = true
				names = append(names, p.Name)
			}
		}
	}
	return names
}

// maxNameDecodings bounds how often RedactQueryNumbers percent-decodes a
// query name in search of a number-bearing one (%2574o is %74o, then
// to).
const maxNameDecodings = 4

// RedactQueryNumbers returns s, a URI or request-target as a log records
// it, with the value of every query parameter that names a number-bearing
// property of any operation of the table (to, phoneNumber, number,
// target, delegator; see NumberPropertyNames) replaced by Redacted. A
// name counts as one however it is spelled, as ParseQuery reads names
// when it refuses those that only fold onto a property: any letter case,
// percent-escapes, NUL, white space, zero-width, format or combining
// characters, compatibility forms; and a name still percent-encoded after
// decoding is decoded again (a few times), so that a pool that decodes
// twice has nothing to find either.
//
// The query is everything after the first '?' (a '#' included: a server
// keeps a raw one in the query). A query that does not parse as the edge
// reads it (a ';' in a pair, a malformed percent-escape; the edge refuses
// such a request with 400) cannot be told apart safely: the pairs before
// the first malformed one are kept (their numbers hidden), and everything
// from it on is replaced by Redacted. The path and every other parameter
// are kept byte for byte. A string without a '?' is returned unchanged.
func RedactQueryNumbers(s string) string {
	q := strings.IndexByte(s, '?')
	if q < 0 {
		return s
	}
	var b strings.Builder
	done := 0 // s[:done] is in b, or needs no change when b is empty
	flush := func(upTo int, with string) {
		if b.Len() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[done:upTo])
		b.WriteString(with)
	}
	for at := q + 1; at <= len(s); {
		end := strings.IndexByte(s[at:], '&')
		if end < 0 {
			end = len(s)
		} else {
			end += at
		}
		pair := s[at:end]
		pairStart := at
		at = end + 1
		if pair == "" {
			continue
		}
		name, value, hasValue := strings.Cut(pair, "=")
		numbered, wellFormed := numberName(name)
		if !wellFormed || strings.IndexByte(pair, ';') >= 0 || !validEscapes(value) {
			flush(pairStart, Redacted)
			done = len(s)
			break
		}
		if numbered && hasValue && value != "" {
			valueStart := pairStart + len(name) + 1
			flush(valueStart, Redacted)
			done = end
		}
	}
	if b.Len() == 0 && done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// numberName reports whether a raw (percent-encoded) query name denotes a
// number-bearing property, and whether it decodes at all.
func numberName(raw string) (numbered, wellFormed bool) {
	if plainName(raw) { // nothing to decode or fold but letter case
		if len(raw) > maxNumberName {
			return false, true
		}
		var lower [maxNumberName]byte
		for i := 0; i < len(raw); i++ {
			lower[i] = raw[i]
			if 'A' <= raw[i] && raw[i] <= 'Z' {
				lower[i] += 'a' - 'A'
			}
		}
		return numberNames[string(lower[:len(raw)])], true
	}
	name := raw
	for range maxNameDecodings {
		decoded, err := url.QueryUnescape(name)
		if err != nil {
			// Only the first decoding is the edge's: a name that decodes
			// once is well formed, whatever a second decoding makes of it.
			return false, name != raw
		}
		if folded, _ := foldLookalike(decoded); numberNames[folded] {
			return true, true
		}
		if decoded == name || strings.IndexByte(decoded, '%') < 0 {
			break
		}
		name = decoded
	}
	return false, true
}

// maxNumberName is the length of the longest number-bearing property name
// (phoneNumber); no longer plain name can be one.
const maxNumberName = len("phoneNumber")

// validEscapes reports whether every '%' in s starts a two-digit hex
// escape, which is all url.QueryUnescape asks of a query value.
func validEscapes(s string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0; {
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return false
		}
		next := strings.IndexByte(s[i+3:], '%')
		if next < 0 {
			break
		}
		i += 3 + next
	}
	return true
}
