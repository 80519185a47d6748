// Package ucwa is the part of the UCWA protocol (the REST API of Skype for
// Business Server) that the edge needs to terminate every request that can
// make a pool place a call, store a number it rings later, or forward
// calls: the operation table (operations.go), path matching with near
// misses (match.go), the request model and its JSON and XML codecs, the
// strict query reader, validation and phone-number normalization, one
// intake shared by the edge and the pool emulator, and UCWA error bodies.
// It imports nothing from Caddy so that the protocol can be tested, fuzzed
// and benchmarked on its own.
package ucwa

import (
	"mime"
	"strings"
)

// Format is the wire format of a UCWA body.
type Format uint8

const (
	// JSON is application/json and application/vnd.microsoft.com.ucwa+json.
	JSON Format = iota + 1
	// XML is application/xml, application/vnd.microsoft.com.ucwa+xml and
	// application/vnd.microsoft.ucwa+xml.
	XML
)

// String returns "json" or "xml".
func (f Format) String() string {
	switch f {
	case JSON:
		return "json"
	case XML:
		return "xml"
	}
	return "unknown"
}

// ContentType is the media type the edge writes for its own bodies.
func (f Format) ContentType() string {
	if f == XML {
		return "application/xml; charset=utf-8"
	}
	return "application/json; charset=utf-8"
}

// mediaFormat returns the format of every media type that UCWA
// documents for a request body (in lower case, without parameters). One
// reference page spells the XML type without ".com", so both spellings
// are accepted. A switch, not a map: it compares the few candidates of
// the same length without hashing the value.
func mediaFormat(mt string) (Format, bool) {
	switch mt {
	case "application/json", "application/vnd.microsoft.com.ucwa+json":
		return JSON, true
	case "application/xml", "application/vnd.microsoft.com.ucwa+xml", "application/vnd.microsoft.ucwa+xml":
		return XML, true
	}
	return 0, false
}

// RequestFormat returns the format of a Content-Type header value by its
// media type alone, whatever its parameters: the format of an error
// answering a request whose body MediaFormat refuses (a charset of
// ISO-8859-1, say) is still the request's. 0 for any other type.
func RequestFormat(contentType string) Format {
	if f, ok := mediaFormat(contentType); ok {
		return f
	}
	base, _, _ := strings.Cut(contentType, ";")
	f, _ := mediaFormat(strings.ToLower(strings.TrimSpace(base)))
	return f
}

// MediaFormat returns the format of a Content-Type header value, with or
// without parameters such as charset. It reports false for any media type
// UCWA does not accept, and for a charset other than UTF-8: the codecs
// read UTF-8 only.
func MediaFormat(contentType string) (Format, bool) {
	// Fast path: the types clients send, bare or with "; charset=utf-8".
	if f, ok := mediaFormat(contentType); ok {
		return f, true
	}
	if base, param, ok := strings.Cut(contentType, ";"); ok {
		if f, ok := mediaFormat(strings.TrimSpace(base)); ok && isUTF8Charset(strings.TrimSpace(param)) {
			return f, true
		}
	}
	// mime.ParseMediaType's type is the part before any ";", in lower
	// case, trimmed: another type (a batch's multipart/batching) is
	// refused without parsing the parameters into a map.
	base, _, _ := strings.Cut(contentType, ";")
	if _, ok := mediaFormat(strings.TrimSpace(strings.ToLower(base))); !ok {
		return 0, false
	}
	return parseMediaFormat(contentType)
}

// isUTF8Charset reports whether a media type parameter is exactly a
// charset of UTF-8 (in any letter case, unquoted).
func isUTF8Charset(param string) bool {
	name, value, ok := strings.Cut(param, "=")
	return ok && strings.EqualFold(name, "charset") && (strings.EqualFold(value, "utf-8") || strings.EqualFold(value, "utf8"))
}

// parseMediaFormat is MediaFormat for any Content-Type value.
func parseMediaFormat(contentType string) (Format, bool) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, false
	}
	f, ok := mediaFormat(mt)
	if !ok {
		return 0, false
	}
	if !utf8Charset(contentType, params) {
		return 0, false
	}
	return f, true
}

// utf8Charset reports whether a Content-Type value, whose parameters
// mime.ParseMediaType read as params, names no character set but UTF-8,
// as this package reads it and as a pool does (see charsetOnce).
func utf8Charset(contentType string, params map[string]string) bool {
	cs, has := params["charset"]
	return (!has || strings.EqualFold(cs, "utf-8") || strings.EqualFold(cs, "utf8")) && charsetOnce(contentType, has)
}

// namesOtherCharset reports whether a Content-Type value may name a
// character set other than UTF-8 to a pool: one that holds "charset" and
// does not parse, or whose charset is another. System.Web decodes the
// query in the request's ContentEncoding, taken from the Content-Type's
// charset with a body or without one (HttpRequest.QueryStringEncoding):
// in EBCDIC (IBM037), the bytes %A3%96 the edge reads as an unknown name
// of no UTF-8 are "to".
func namesOtherCharset(contentType string) bool {
	if !strings.Contains(strings.ToLower(contentType), "charset") {
		return false
	}
	_, params, err := mime.ParseMediaType(contentType)
	return err != nil || !utf8Charset(contentType, params)
}

// charsetOnce reports whether "charset" appears in a Content-Type value,
// in any letter case, at most once, and then only as the name of the
// charset parameter mime.ParseMediaType read (has), written charset=:
// not RFC 2231's charset*= or charset*0=, which it decodes and lets win
// over a charset= beside it, nor inside another parameter's value.
// .NET reads the charset otherwise: System.Web's
// HttpRequest.ContentEncoding finds the first charset= in the value,
// quoted strings or not, and ignores charset*=, so that
// charset*=utf-8'en'utf-8; charset=utf-7 is UTF-8 here and UTF-7 to a pool
// that decodes the body by it, where "+ADw-" is "<": text the edge judged
// would be markup (or, in JSON, "+ACI-" a quote), properties it never saw.
func charsetOnce(contentType string, has bool) bool {
	lower := strings.ToLower(contentType)
	switch strings.Count(lower, "charset") {
	case 0:
		return true
	case 1:
		return has && !strings.Contains(lower, "charset*")
	}
	return false
}

// ErrorFormat chooses the format of an error body: XML when the request
// body was XML or when Accept prefers an XML type to a JSON one, JSON
// otherwise (also when the request had no usable body at all).
func ErrorFormat(request Format, accept string) Format {
	if request == XML {
		return XML
	}
	// Fast path: an Accept that names no XML type at all (none, */*,
	// application/json, ...) cannot prefer one.
	if !containsXML(accept) {
		return JSON
	}
	return acceptFormat(accept)
}

// containsXML reports whether s holds "xml" in any letter case.
func containsXML(s string) bool {
	for i := 0; i+3 <= len(s); i++ {
		if s[i]|0x20 == 'x' && s[i+1]|0x20 == 'm' && s[i+2]|0x20 == 'l' {
			return true
		}
	}
	return false
}

// acceptFormat is the format an Accept header value prefers: XML when its
// best XML type has a higher quality than its best JSON type.
func acceptFormat(accept string) Format {
	var bestXML, bestJSON float64 = -1, -1
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if qs, ok := params["q"]; ok {
			q = parseQ(qs)
		}
		switch {
		case mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml"):
			bestXML = max(bestXML, q)
		case mt == "application/json" || strings.HasSuffix(mt, "+json"):
			bestJSON = max(bestJSON, q)
		}
	}
	if bestXML > 0 && bestXML > bestJSON {
		return XML
	}
	return JSON
}

// parseQ reads an Accept quality value; a malformed one counts as 0.
func parseQ(s string) float64 {
	// q is "0", "1" or "0.ddd"/"1.000" (RFC 9110, section 12.4.2).
	if s == "" || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0
	}
	v := float64(s[0] - '0')
	if len(s) == 1 {
		return v
	}
	if s[1] != '.' {
		return 0
	}
	scale := 0.1
	for _, c := range s[2:] {
		if c < '0' || c > '9' {
			return 0
		}
		v += float64(c-'0') * scale
		scale /= 10
	}
	return min(v, 1)
}
