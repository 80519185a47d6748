package ucwa

import (
	"net/url"
	"strings"
)

// Redacted is what RedactQueryProperties writes in place of a value it
// hides.
const Redacted = "REDACTED"

// redactedNames are the names, folded (see foldLookalike), of every
// property of any operation of the table: a phone number or destination
// (to, phoneNumber, ...), and every other value a client may send in the
// query (operationId, subject, address, ...), which is personal data too
// and can spell a number as well; and access_token, a bearer token (RFC
// 6750 2.3), which no log may hold.
var redactedNames = func() map[string]bool {
	names := map[string]bool{AccessTokenParameter: true}
	for i := range defaultOperations {
		for _, p := range defaultOperations[i].Properties {
			folded := foldString(p.Name)
			names[folded] = true
		}
	}
	return names
}()

// maxRedactedName is the length of the longest property name: no longer
// plain name can be one.
var maxRedactedName = func() int {
	n := 0
	for name := range redactedNames {
		n = max(n, len(name))
	}
	return n
}()

// maxNameDecodings bounds how often RedactQueryProperties percent-decodes
// a query name in search of a property name (%2574o is %74o, then to).
const maxNameDecodings = 4

// RedactQueryProperties returns s, a URI or request-target as a log
// records it, with the value of every query parameter that names a
// property of any operation of the table replaced by Redacted: the phone
// numbers and destinations (to, phoneNumber, number, target, delegator),
// and every other property (operationId, subject, address, ...), whose
// values are personal data too; and of access_token, a bearer token in
// the query (RFC 6750 2.3). A name counts as one however it is
// spelled, as ParseQuery reads names when it refuses those that only fold
// onto a property: any letter case, percent-escapes, NUL, white space,
// zero-width, format or combining characters, compatibility forms, a
// .NET model-binding prefix or index ("to[]", "x.to"); and a name still
// percent-encoded after decoding is decoded again (a few times), so that
// a pool that decodes twice has nothing to find either. access_token
// counts also in the spellings PHP registers as it (see accessTokenName:
// "access.token", "access+token").
//
// The query is everything after the first '?' (a '#' included: a server
// keeps a raw one in the query). A query that does not parse as the edge
// reads it (a ';' in a pair, a malformed percent-escape; the edge refuses
// such a request with 400) cannot be told apart safely: the pairs before
// the first malformed one are kept (their numbers hidden), and everything
// from it on is replaced by Redacted. Any other parameter whose value
// holds a number (see holdsNumber: a search, ?query=%2B14255550131, or a
// name no operation takes, ?phone=) has its value replaced too, and one
// whose name holds one (?%2B14255550131) is replaced whole. The path
// and every other parameter are kept byte for byte. A string without a
// '?' is returned unchanged.
func RedactQueryProperties(s string) string {
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
		property, wellFormed := propertyName(name)
		if wellFormed && !property {
			// access_token as PHP registers it too (access.token).
			property = accessTokenName(name)
		}
		if !wellFormed || strings.IndexByte(pair, ';') >= 0 || !validEscapes(value) {
			flush(pairStart, Redacted)
			done = len(s)
			break
		}
		switch {
		case !property && holdsNumber(name):
			flush(pairStart, Redacted)
			done = end
		case (property || holdsNumber(value)) && hasValue && value != "":
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

// holdsNumber reports whether a raw (percent-encoded) query name or
// value holds as many digits as the shortest phone number
// (minDialDigits), however separated, as it is written or decoded
// (%31%39%30%30...). A digit is a Unicode decimal digit of any script,
// as the edge reads a number's (fullwidth １, Arabic-Indic ١): a search
// typed with a Japanese input method, ?query=%EF%BC%91%EF%BC%94...,
// holds a number all the same; and a compatibility form that a gateway
// dials as digits (a superscript ¹, a circled ①: see DialDigits).
func holdsNumber(raw string) bool {
	if decoded, err := url.QueryUnescape(raw); err == nil {
		raw = decoded
	}
	digits := 0
	for _, r := range raw {
		digits += DialDigits(r)
	}
	return digits >= minDialDigits()
}

// propertyName reports whether a raw (percent-encoded) query name denotes
// a property, and whether it decodes at all.
func propertyName(raw string) (property, wellFormed bool) {
	if plainName(raw) { // nothing to decode or fold but letter case
		if len(raw) > maxRedactedName {
			return false, true
		}
		var lower [maxPropertyName]byte
		for i := 0; i < len(raw); i++ {
			lower[i] = raw[i]
			if 'A' <= raw[i] && raw[i] <= 'Z' {
				lower[i] += 'a' - 'A'
			}
		}
		return redactedNames[string(lower[:len(raw)])], true
	}
	name := raw
	for range maxNameDecodings {
		decoded, err := url.QueryUnescape(name)
		if err != nil {
			// Only the first decoding is the edge's: a name that decodes
			// once is well formed, whatever a second decoding makes of it.
			return false, name != raw
		}
		if folded := foldString(decoded); redactedNames[folded] || redactedPart(folded) {
			return true, true
		}
		if decoded == name || strings.IndexByte(decoded, '%') < 0 {
			break
		}
		name = decoded
	}
	return false, true
}

// redactedPart reports whether a part of a folded name (see bindingParts)
// is a property's name: "to[]" and "x.phoneNumber" are refused as
// spellings of to and phoneNumber, and logged without their values too.
func redactedPart(folded string) bool {
	for part := range bindingParts(folded) {
		if redactedNames[part] {
			return true
		}
	}
	return false
}

// maxPropertyName bounds maxRedactedName, for a buffer on the stack.
const maxPropertyName = 64

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
