package bearer

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Refusals of tokens whose signature and claims passed, but that the
// edge reads more strictly than the parser does.
var (
	errCritical         = errors.New("the header has crit: critical extensions the edge does not understand")
	errDuplicateHeader  = errors.New("the header gives a member name twice")
	errDuplicateClaim   = errors.New("the claims give a member name twice")
	errSegmentsUnparsed = errors.New("a segment could not be read again")
	errNotBase64URL     = errors.New("the token holds a character that is neither base64url nor a segment's separator")
)

// checkStrict refuses a token that passed the parser (raw, whose header
// the parser decoded) when:
//
//   - its header has crit (RFC 7515 4.1.11): it names extensions the
//     recipient must understand or refuse the token, and no issuer the
//     edge serves sets any, so the edge understands none;
//   - its header or claims give a member name twice: encoding/json keeps
//     the last, another reader may keep the first (RFC 7515 5.2 and RFC
//     7519 4 let a recipient refuse such a token or keep the last), and a
//     token must mean the same to the edge and to the pool;
//   - it holds a character outside base64url and the two dots: the
//     parser decodes strictly (unused bits zero, no padding), but a
//     base64 decoder skips CR and LF even then, and a token with one
//     would be another string of the same token.
//
// It runs only when a token is verified in full; a verified token is
// cached, so each token is read again once. A kid that is not a string
// is refused before this, by keyFor, before any key is tried.
func (v *Verifier[G]) checkStrict(raw string, token *jwt.Token) *Error {
	if !isBase64URLToken(raw) {
		return &Error{Message: "The bearer token is malformed.", Cause: errNotBase64URL}
	}
	if _, ok := token.Header["crit"]; ok {
		return &Error{Message: "The token's header lists critical extensions (crit), which are not supported here.", Cause: errCritical}
	}
	header, rest, _ := strings.Cut(raw, ".")
	claims, _, _ := strings.Cut(rest, ".")
	for _, seg := range []struct {
		segment string
		err     error
	}{{header, errDuplicateHeader}, {claims, errDuplicateClaim}} {
		data, err := v.parser.DecodeSegment(seg.segment)
		if err != nil {
			return &Error{Message: "The bearer token is malformed.", Cause: errSegmentsUnparsed}
		}
		dup, err := hasDuplicateMember(data)
		if err != nil {
			return &Error{Message: "The bearer token is malformed.", Cause: errSegmentsUnparsed}
		}
		if dup {
			return &Error{Message: "The token's header or claims give a member name twice.", Cause: seg.err}
		}
	}
	return nil
}

// isBase64URLToken reports whether raw holds only the base64url
// alphabet (RFC 4648 5) and dots.
func isBase64URLToken(raw string) bool {
	for i := range len(raw) {
		switch c := raw[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// hasDuplicateMember reports whether the JSON object data gives a
// member name twice at its top level. Names are compared as a decoder
// reads them: once their escapes are undone ("exp" and "\u0065xp" are
// one name) and invalid UTF-8 replaced, as encoding/json does. It scans
// data without decoding it (the parser has decoded it already) and
// without allocating for names written plainly, so that it costs little
// beside the signature check.
func hasDuplicateMember(data []byte) (bool, error) {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return false, errNotObject
	}
	// The names met, one by one while they are few, then in a set.
	names := make([][]byte, 0, maxNamesListed)
	var set map[string]bool
	for i = skipSpace(data, i+1); i < len(data) && data[i] != '}'; {
		end := stringEnd(data, i)
		if end < 0 {
			return false, errNotObject
		}
		name := memberName(data[i+1 : end-1])
		switch {
		case set != nil:
			if set[string(name)] {
				return true, nil
			}
			set[string(name)] = true
		case slices.ContainsFunc(names, func(n []byte) bool { return bytes.Equal(n, name) }):
			return true, nil
		case len(names) == maxNamesListed:
			set = make(map[string]bool, 2*maxNamesListed)
			for _, n := range names {
				set[string(n)] = true
			}
			set[string(name)] = true
		default:
			names = append(names, name)
		}
		if i = skipSpace(data, end); i == len(data) || data[i] != ':' {
			return false, errNotObject
		}
		if i = valueEnd(data, skipSpace(data, i+1)); i < 0 {
			return false, errNotObject
		}
		if i = skipSpace(data, i); i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	if i == len(data) {
		return false, errNotObject
	}
	return false, nil
}

// maxNamesListed is how many names hasDuplicateMember compares one by
// one before it keeps them in a map instead (a token's claims are some
// twenty).
const maxNamesListed = 32

var errNotObject = errors.New("not a JSON object")

// memberName is a member name as a decoder reads it, given the bytes
// between its quotes: the bytes themselves unless they hold an escape or
// a byte outside ASCII.
func memberName(quoted []byte) []byte {
	if !slices.ContainsFunc(quoted, func(b byte) bool { return b == '\\' || b >= utf8.RuneSelf }) {
		return quoted
	}
	var name string
	if err := json.Unmarshal(append(append([]byte{'"'}, quoted...), '"'), &name); err != nil {
		return quoted
	}
	return []byte(name)
}

// skipSpace is the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// stringEnd is the index just past the JSON string that starts at i, or
// -1.
func stringEnd(data []byte, i int) int {
	if i >= len(data) || data[i] != '"' {
		return -1
	}
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// valueEnd is the index just past the JSON value that starts at i (its
// brackets balanced, its strings skipped whole), or -1.
func valueEnd(data []byte, i int) int {
	depth := 0
	for i < len(data) {
		switch data[i] {
		case '"':
			if i = stringEnd(data, i); i < 0 {
				return -1
			}
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of a scalar, at the enclosing bracket
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	if depth == 0 {
		return i
	}
	return -1
}
