package caddymodule

import (
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/logging"
	"go.uber.org/zap/zapcore"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

func init() {
	caddy.RegisterModule(NumberFilter{})
}

// NumberFilter is the log field filter
// caddy.logging.encoders.filter.ucwa_numbers: it hides the phone numbers
// and other property values a URI's query can carry. Every query
// parameter whose name is, however it is spelled, a property of any
// operation the edge knows has its value replaced by REDACTED: those
// that hold a phone number or destination (to, phoneNumber, number,
// target, delegator) and all the others (operationId, subject, address,
// ...), which are personal data too and can spell a number as well; and
// access_token, a bearer token in the query (RFC 6750 2.3), also as PHP
// registers it (access.token, see ucwa.QueryNames.AccessToken). Names are
// read as the edge reads them when it refuses those that only look like
// a property: any letter case, percent-escapes, NUL, white space,
// zero-width, format and combining characters, compatibility forms. A regexp filter cannot follow them all, and the edge forwards or
// refuses those requests either way, so their URIs reach the access log.
//
// A query the edge cannot read (a ';' in a pair, a malformed
// percent-escape) keeps the pairs before the first malformed one, and
// everything from it on is replaced by REDACTED. Any other parameter
// whose value holds a number (six digits or more, of any script, however
// separated or escaped; a superscript or circled digit a gateway dials
// counts too) has its value replaced too, and one whose name holds one is
// replaced whole (see ucwa.RedactQueryProperties). The other parameters
// are kept as they are. In the path, which can name a contact by its
// number (people/sip:+14255551234@contoso.com;user=phone), every run of
// more than four digits (each percent-escape read as the character it
// stands for: tel:+1%2D425%2D555%2D1234 is one run) is masked as the
// audit trail masks an application id: its first digits kept, seven at
// most, the rest, and at least its last four, written '*'
// (1012461*****), so that the log still tells a pool's long ids apart. An absolute URI (a Referer) keeps
// its scheme and host.
//
// On the access log's user_id, the caller ({http.auth.user.id}: the
// token's sub, else its oid), it masks a value that reads as a telephone
// number as the audit trail masks the caller's claims (+1425555****,
// sip:+1425555****@contoso.com) and keeps any other (an object id)
// whole.
//
// It filters a string field (request>uri; a byte string is read as one),
// an array of strings (a header such as request>headers>Referer) and a
// request's or response's headers as a whole (request>headers: see
// redactedHeader); other fields pass unchanged.
// It has no options. In a Caddyfile:
//
//	log {
//		format filter {
//			request>uri ucwa_numbers
//			user_id ucwa_numbers
//		}
//	}
//
// In JSON, the filter encoder's field: {"request>uri": {"filter": "ucwa_numbers"}}.
type NumberFilter struct{}

// CaddyModule returns the Caddy module information.
func (NumberFilter) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.logging.encoders.filter.ucwa_numbers",
		New: func() caddy.Module { return new(NumberFilter) },
	}
}

// UnmarshalCaddyfile sets up the filter from Caddyfile tokens. The syntax
// is the filter's name alone, with no arguments and no block:
//
//	<field> ucwa_numbers
func (*NumberFilter) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the filter's name
	if d.NextArg() {
		return d.Errf("ucwa_numbers takes no arguments, got %q", d.Val())
	}
	if d.NextBlock(0) {
		return d.Err("ucwa_numbers takes no block")
	}
	return nil
}

// Filter hides the numbers and property values in the field's URI.
func (NumberFilter) Filter(in zapcore.Field) zapcore.Field {
	switch in.Type {
	case zapcore.StringType:
		if in.Key == userIDField {
			in.String = maskCallerClaim(in.String)
		} else {
			in.String = redactURI(in.String)
		}
	case zapcore.ByteStringType:
		if b, ok := in.Interface.([]byte); ok {
			in.Type, in.String, in.Interface = zapcore.StringType, redactURI(string(b)), nil
		}
	case zapcore.ArrayMarshalerType:
		if array, ok := in.Interface.(caddyhttp.LoggableStringArray); ok {
			in.Interface = redactURIs(array)
		}
	case zapcore.ObjectMarshalerType:
		if h, ok := in.Interface.(caddyhttp.LoggableHTTPHeader); ok {
			in.Interface = redactedHeader{h}
		}
	}
	return in
}

// userIDField is the access log's field of the caller,
// {http.auth.user.id}: the verified token's sub, else its oid. An
// identity provider that names users by their numbers (as Skype for
// Business may) puts a telephone number there.
const userIDField = "user_id"

// maskCallerClaim returns a caller's claim as the audit trail writes it
// (see auditCaller.MarshalLogObject): masked as a destination is
// (+1425555****, sip:+1425555****@contoso.com) when it reads as a
// telephone number, whole otherwise, so that a caller named by an object
// id (a GUID) can still be found.
func maskCallerClaim(s string) string {
	if !numberLike(s) {
		return s
	}
	return string(appendMaskedRunTails(nil, s))
}

// redactURIs returns the URIs of a header's values as redactURI logs
// them, in a slice of their own: the logged request's header is left as
// it is.
func redactURIs(values []string) caddyhttp.LoggableStringArray {
	filtered := make(caddyhttp.LoggableStringArray, len(values))
	for i, s := range values {
		filtered[i] = redactURI(s)
	}
	return filtered
}

// redactedHeader logs a request's (or a response's) headers as Caddy
// does, Authorization and Cookie redacted, and further: a header is named
// in any letter case and with '_' or '.' for '-', as IIS, CGI and PHP
// read a name (X_MS_WEBTICKET is HTTP_X_MS_WEBTICKET too), and Caddy's
// access log records the request as it came, before Caddy drops such
// names; a filter of one field (request>headers>X-Ms-Webticket) names
// one spelling. X-MS-WebTicket, a credential, and Data, a body (see
// dataHeader), are dropped; Referer, X-Original-URL, X-Rewrite-URL and
// Location, URIs that can carry a number or a property value in their
// query or path, are logged as redactURI has them.
type redactedHeader struct{ caddyhttp.LoggableHTTPHeader }

func (h redactedHeader) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	filtered := make(http.Header, len(h.Header))
	for name, values := range h.Header {
		switch headerSpelling(name) {
		case "x-ms-webticket", "data":
			continue
		case "referer", "x-original-url", "x-rewrite-url", "location":
			values = redactURIs(values)
		}
		filtered[name] = values
	}
	h.Header = filtered
	return h.LoggableHTTPHeader.MarshalLogObject(enc)
}

// headerSpelling returns a header's name in lower case with '_' and '.'
// written '-'.
func headerSpelling(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '_' || r == '.':
			return '-'
		case 'A' <= r && r <= 'Z':
			return r + 'a' - 'A'
		}
		return r
	}, name)
}

// redactURI returns s, a URI or request-target as a log records it, as
// NumberFilter logs it: the property values of its query redacted (see
// ucwa.RedactQueryProperties), and everything before the query but an
// absolute URI's scheme and host (its path, a fragment, user info) with
// the tails of its long digit runs masked (see appendMaskedRunTails, and
// appendMaskedEscapedRunTails for a path with percent-escapes). A string
// without such a run is returned as the query's redaction left it.
func redactURI(s string) string {
	s = ucwa.RedactQueryProperties(s)
	end := strings.IndexByte(s, '?')
	if end < 0 {
		end = len(s)
	}
	start := hostEnd(s[:end])
	path := s[start:end]
	if strings.IndexByte(path, '%') >= 0 {
		// A client escapes what it writes in a path: a contact's number
		// as a browser or .NET sends it (tel:+1%2D425%2D555%2D1234,
		// fullwidth digits as %EF%BC%91...), whose escapes' hex letters
		// would end every run as written.
		b := make([]byte, 0, len(s))
		b = append(b, s[:start]...)
		b = appendMaskedEscapedRunTails(b, path)
		return string(append(b, s[end:]...))
	}
	if !hasLongDigitRun(path) {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:start]...)
	b = appendMaskedRunTails(b, path)
	return string(append(b, s[end:]...))
}

// appendMaskedEscapedRunTails appends s, a path with percent-escapes, to
// b as appendMaskedRunTails does, each character read as it decodes: the
// escapes of a character are that character, so that %2D joins the
// digits about it as '-' does and %EF%BC%91 is the fullwidth digit one,
// not the letters E, F, B and C that would end a run; a digit is one as
// maskDigitRuns counts it (%C2%B9, a superscript ¹, too). A masked digit is
// written '*', however it was escaped; the rest is written as it came.
func appendMaskedEscapedRunTails(b []byte, s string) []byte {
	// start is the byte offset of the current run (its first digit), run
	// its digits; the run's text is s[start:] up to the character that
	// ends it.
	start, run := 0, 0
	flush := func(end int) {
		shown := shownDigits(run, true)
		for i := start; i < end; {
			c, size := pathChar(s, i)
			switch n := ucwa.DialDigits(c); {
			case n == 0:
				b = append(b, s[i:i+size]...)
			case n <= shown:
				shown -= n
				b = append(b, s[i:i+size]...)
			default:
				shown = 0
				b = append(b, '*')
			}
			i += size
		}
		run = 0
	}
	for i := 0; i < len(s); {
		c, size := pathChar(s, i)
		switch n := ucwa.DialDigits(c); {
		case n > 0:
			if run == 0 {
				start = i
			}
			run += n
		case run > 0 && !unicode.IsLetter(c):
		case run > 0:
			flush(i)
			fallthrough
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	if run > 0 {
		flush(len(s))
	}
	return b
}

// pathChar returns the character at s[i:] of a percent-escaped path and
// how many bytes of s write it: the escapes of one UTF-8 character
// (%2D, %EF%BC%91), else the character as written. An escape of a byte
// that begins no character is utf8.RuneError, neither digit nor letter.
func pathChar(s string, i int) (rune, int) {
	if s[i] != '%' {
		return utf8.DecodeRuneInString(s[i:])
	}
	var buf [utf8.UTFMax]byte
	n, at := 0, i
	for n < len(buf) && at+2 < len(s) && s[at] == '%' {
		b, err := strconv.ParseUint(s[at+1:at+3], 16, 8)
		if err != nil {
			break
		}
		buf[n] = byte(b)
		n++
		at += 3
		if utf8.FullRune(buf[:n]) {
			break
		}
	}
	switch c, width := utf8.DecodeRune(buf[:n]); {
	case n == 0: // a '%' that escapes nothing
		return '%', 1
	case width == n:
		return c, at - i
	}
	return utf8.RuneError, 3
}

// hostEnd returns where the host (and port) of an absolute URI ends, or
// 0: a URI without one, or whose authority has user info (which can
// hold anything, and is masked with what follows it).
func hostEnd(s string) int {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || !ucwa.IsScheme(scheme) {
		return 0
	}
	authority := rest
	if i := strings.IndexAny(rest, "/#"); i >= 0 {
		authority = rest[:i]
	}
	if strings.IndexByte(authority, '@') >= 0 {
		return 0
	}
	return len(scheme) + len("://") + len(authority)
}

// Interface guards
var (
	_ logging.LogFieldFilter = (*NumberFilter)(nil)
	_ caddyfile.Unmarshaler  = (*NumberFilter)(nil)
)
