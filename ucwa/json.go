package ucwa

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// decodeJSON reads a JSON startPhoneAudio body: an object of properties,
// with links under "_links". Property names match case-insensitively, so a
// name that appears twice in any letter case is refused: the pool might
// read the other one.
func decodeJSON(body []byte) (*Request, *Error) {
	r := &Request{Format: JSON, raw: body}
	if !utf8.Valid(body) {
		return nil, deserializationError("The JSON body is not valid UTF-8.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := expectObject(dec, body, "The body"); err != nil {
		return nil, err
	}
	seen := make(map[string]string, 8)
	for dec.More() {
		name, raw, keyAt, start, err := member(dec, body, 0)
		if err != nil {
			return nil, err
		}
		if err := checkDuplicate(seen, name, body, keyAt); err != nil {
			return nil, err
		}
		if strings.EqualFold(name, "_links") {
			if err := r.decodeJSONLinks(body, raw, start); err != nil {
				return nil, err
			}
			continue
		}
		if f, ok := propertyField(name); ok {
			r.setJSON(f, raw, start)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, jsonSyntax(body, dec, err)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		return nil, deserializationError("The JSON body has data after its object, at " + position(body, int64(skipJSONSpace(body, int(end), false))) + ".")
	}
	return r, nil
}

// decodeJSONLinks reads the "_links" object, which starts at offset base
// of body; only customContent.href is interpreted, other links are
// forwarded as they are.
func (r *Request) decodeJSONLinks(body []byte, links json.RawMessage, base int) *Error {
	if string(links) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(links))
	if err := expectObject(dec, links, `"_links"`); err != nil {
		return err
	}
	seen := make(map[string]string, 2)
	for dec.More() {
		name, raw, keyAt, start, err := member(dec, body, base)
		if err != nil {
			return err
		}
		if err := checkDuplicate(seen, "_links."+name, body, keyAt); err != nil {
			return err
		}
		if !strings.EqualFold(name, fieldNames[CustomContent]) || string(raw) == "null" {
			continue
		}
		link := json.NewDecoder(bytes.NewReader(raw))
		if err := expectObject(link, raw, `"_links.customContent"`); err != nil {
			return err
		}
		seenHref := make(map[string]string, 1)
		for link.More() {
			key, val, keyAt, at, err := member(link, body, start)
			if err != nil {
				return err
			}
			if err := checkDuplicate(seenHref, "_links.customContent."+key, body, keyAt); err != nil {
				return err
			}
			if strings.EqualFold(key, "href") {
				r.setJSON(CustomContent, val, at)
			}
		}
	}
	return nil
}

// setJSON records a documented property's value, or why it is not a
// string. null counts as absent.
func (r *Request) setJSON(f Field, raw json.RawMessage, start int) {
	if len(raw) == 0 || raw[0] == 'n' { // null
		return
	}
	if raw[0] != '"' {
		r.typeErr[f] = "must be a string"
		return
	}
	var s string
	_ = json.Unmarshal(raw, &s) // the decoder already validated the token
	r.set(f, s, span{start: start, end: start + len(raw)})
}

// expectObject consumes the opening brace of an object.
func expectObject(dec *json.Decoder, body []byte, what string) *Error {
	tok, err := dec.Token()
	if err != nil {
		return jsonSyntax(body, dec, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return deserializationError(what + " must be a JSON object.")
	}
	return nil
}

// member reads one "name": value pair of an object that dec reads from
// body[base:], and where (in body) the name and the value start.
func member(dec *json.Decoder, body []byte, base int) (name string, raw json.RawMessage, nameAt, valueAt int, _ *Error) {
	nameAt = base + skipJSONSpace(body[base:], int(dec.InputOffset()), true)
	tok, err := dec.Token()
	if err != nil {
		return "", nil, 0, 0, jsonSyntax(body, dec, err)
	}
	name, _ = tok.(string) // inside an object the decoder only yields string keys
	if err := dec.Decode(&raw); err != nil {
		return "", nil, 0, 0, jsonSyntax(body, dec, err)
	}
	end := base + int(dec.InputOffset())
	return name, raw, nameAt, end - len(raw), nil
}

// skipJSONSpace returns the offset of the first byte at or after i that
// is not JSON white space (nor a comma, when comma is true).
func skipJSONSpace(b []byte, i int, comma bool) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n' || comma && b[i] == ',') {
		i++
	}
	return i
}

// checkDuplicate refuses a name seen before in any letter case.
func checkDuplicate(seen map[string]string, name string, body []byte, at int) *Error {
	key := foldName(name)
	if first, dup := seen[key]; dup {
		return deserializationError(`The property "` + name + `" appears twice (also as "` + first + `"), at ` + position(body, int64(at)) + ".")
	}
	seen[key] = name
	return nil
}

// jsonSyntax turns a decoder error into a DeserializationFailure that says
// where the body is wrong. The Decoder's own offsets are not exact when a
// value fails inside Decode, so the body is scanned once more to find the
// first bad byte.
func jsonSyntax(body []byte, dec *json.Decoder, err error) *Error {
	var se *json.SyntaxError
	offset := dec.InputOffset()
	msg := err.Error()
	if errors.As(json.Unmarshal(body, new(json.RawMessage)), &se) || errors.As(err, &se) {
		offset = se.Offset - 1 // Offset counts the bad byte
		msg = se.Error()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		msg = "unexpected end of input"
		offset = int64(len(body))
	}
	return deserializationError("The JSON body is malformed at " + position(body, offset) + ": " + strings.TrimPrefix(msg, "json: ") + ".")
}

// appendJSONString appends s as a JSON string, escaping only what JSON
// requires (no HTML escaping: the body is not HTML).
func appendJSONString(dst []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// foldName folds a property name for comparison in any letter case,
// exactly as strings.EqualFold compares: every character becomes the
// smallest one of its Unicode simple case-folding orbit, so "subject",
// "SUBJECT" and "ſubject" share one key, as do "kind" and "\u212aind".
func foldName(name string) string {
	ascii := true
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToUpper(name)
	}
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, name)
}
