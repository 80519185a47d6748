package ucwa

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// scanBytes are the bytes around the edges of what the word-at-a-time
// scanners tell apart: controls, the quote and backslash and their
// neighbours, DEL and bytes outside ASCII.
var scanBytes = []byte{0x00, 0x01, 0x1f, 0x20, 0x21, '"', '#', '[', '\\', ']', 'a', 0x7e, 0x7f, 0x80, 0x9f, 0xa0, 0xdc, 0xe2, 0xff}

// scanInputs returns every string of up to two scanBytes at any place of
// a run of 'a' of each length from 0 to 19, from each offset from 0 to
// 9, so that every byte of a word and the tail after the last whole word
// are covered, and a byte that borrows sits below every other. Under
// the race detector, which finds nothing in these scanners of one
// goroutine and makes each up to twenty times as slow, each string is
// given from one offset, the next string from the next (.ci/run runs
// them all without it).
func scanInputs(yield func(b []byte, from int) bool) {
	turn := 0
	for n := range 20 {
		for p := -1; p < n; p++ {
			for q := p; q < n; q++ {
				for _, x := range scanBytes {
					for _, y := range scanBytes {
						b := make([]byte, n)
						for i := range b {
							b[i] = 'a'
						}
						if p >= 0 {
							b[p] = x
						}
						if q > p {
							b[q] = y
						}
						turn++
						for from := range min(n, 10) + 1 {
							if raceDetector && from != turn%(min(n, 10)+1) {
								continue
							}
							if !yield(b, from) {
								return
							}
						}
						if q == p {
							break // y unused
						}
					}
					if p < 0 {
						break // x unused
					}
				}
			}
		}
	}
}

// TestPlainRun holds plainRun to the byte-by-byte scan of jsonPlain.
func TestPlainRun(t *testing.T) {
	for b, from := range scanInputs {
		want := from
		for want < len(b) && jsonPlain[b[want]] {
			want++
		}
		if got := plainRun(b, from); got != want {
			t.Fatalf("plainRun(%q, %d) = %d, want %d", b, from, got, want)
		}
	}
}

// TestVerbatimRun holds verbatimRun to the byte-by-byte scan of
// jsonVerbatim.
func TestVerbatimRun(t *testing.T) {
	for b, from := range scanInputs {
		want := from
		for want < len(b) && jsonVerbatim[b[want]] {
			want++
		}
		if got := verbatimRun(string(b), from); got != want {
			t.Fatalf("verbatimRun(%q, %d) = %d, want %d", b, from, got, want)
		}
	}
}

// referenceAppendJSONString is appendJSONString one byte at a time: the
// ASCII bytes that need no escape as they are, the others escaped as
// JSON requires, U+2028 and U+2029 escaped, invalid UTF-8 as U+FFFD.
func referenceAppendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, `\n`...)
			case c == '\r':
				dst = append(dst, `\r`...)
			case c == '\t':
				dst = append(dst, `\t`...)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
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

// TestAppendJSONString holds appendJSONString to its reference, byte for
// byte.
func TestAppendJSONString(t *testing.T) {
	for b, from := range scanInputs {
		s := string(b[from:]) + "\u2028x\u2029\xe2\x80"
		if got, want := appendJSONString(nil, s), referenceAppendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

// TestPlainName checks plainName byte by byte: ASCII letters, digits,
// '_' and '-', and nothing else.
func TestPlainName(t *testing.T) {
	for c := range 256 {
		want := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
		b := string([]byte{byte(c)})
		for _, s := range []string{b, "ab" + b, b + "Z9"} {
			if got := plainName(s); got != want {
				t.Errorf("plainName(%q) = %v, want %v", s, got, want)
			}
			if got := plainName([]byte(s)); got != want {
				t.Errorf("plainName([]byte(%q)) = %v, want %v", s, got, want)
			}
		}
	}
	if !plainName("") {
		t.Error(`plainName("") = false`)
	}
}

// TestIsBlank holds isBlank to strings.TrimSpace: every byte alone and
// before other text, and the Unicode spaces TrimSpace trims.
func TestIsBlank(t *testing.T) {
	in := []string{"", "\u0085", "\u00a0", "\u2028 \u3000", " \u00a0x", "\ufeff", "\xff", "\xc2"}
	for c := range 256 {
		b := string([]byte{byte(c)})
		in = append(in, b, b+"x", b+" ", "\t"+b)
	}
	for _, s := range in {
		if got, want := isBlank(s), strings.TrimSpace(s) == ""; got != want {
			t.Errorf("isBlank(%q) = %v, strings.TrimSpace says %v", s, got, want)
		}
	}
}

// TestNameSet checks that a name is found again in any letter case, also
// among names of lengths that are the same modulo 64 and past the few
// that are compared one by one, and that the first spelling is returned.
func TestNameSet(t *testing.T) {
	long := strings.Repeat("x", 64)
	for _, tc := range []struct {
		names []string
		dup   int    // the index of the first name found again, -1 for none
		first string // the spelling returned for it
	}{
		{[]string{"to", "TO"}, 1, "to"},
		{[]string{"to", "tp", "To"}, 2, "to"},
		{[]string{"a", long + "a", "A"}, 2, "a"},
		{[]string{"a", long + "a", long + "A"}, 2, long + "a"},
		{[]string{"a", long + "b", long + "A"}, -1, ""},
		{[]string{"phoneNumber", "operationId", "OperationID"}, 2, "operationId"},
		{[]string{"x", "y"}, -1, ""},
		{append(strings.Fields("a b c d e f g h i j k l m n o p q r"), "Q"), 18, "q"},
		{append(strings.Fields("a b c d e f g h i j k l m n o p q r"), "B"), 18, "b"},
		{append(strings.Fields("a b c d e f g h i j k l m n o p q r"), "s"), -1, ""},
	} {
		var str nameSet[string]
		var byt nameSet[[]byte]
		dup, first := -1, ""
		for i, n := range tc.names {
			f1, d1 := str.add(n)
			f2, d2 := byt.add([]byte(n))
			if d1 != d2 || f1 != f2 {
				t.Fatalf("%q: %q as string %q, %v; as []byte %q, %v", tc.names, n, f1, d1, f2, d2)
			}
			if d1 {
				dup, first = i, f1
				break
			}
		}
		if dup != tc.dup || first != tc.first {
			t.Errorf("%q: found again at %d as %q, want %d as %q", tc.names, dup, first, tc.dup, tc.first)
		}
	}
}

// TestDecodeJSONStringErrors pins where and how the scanner tells a
// fault in a string token: in a value or a name, in the first word of it
// or past it, or at its end.
func TestDecodeJSONStringErrors(t *testing.T) {
	for _, tc := range []struct{ body, message string }{
		{"{\"to\":\"a\x01\"}", "The JSON body is malformed at line 1, column 9: invalid character '\\x01' in string literal."},
		{"{\"to\":\"abcdefghijklmnop\x02\"}", "The JSON body is malformed at line 1, column 24: invalid character '\\x02' in string literal."},
		{"{\"to\":\"abcdefgh\x1f\"}", "The JSON body is malformed at line 1, column 16: invalid character '\\x1f' in string literal."},
		{"{\"to\":\"a\\", "The JSON body is malformed at line 1, column 10: unexpected end of input."},
		{"{\"to\":\"abcdefghijkl\\", "The JSON body is malformed at line 1, column 21: unexpected end of input."},
		{"{\"to\":\"\\x\"}", "The JSON body is malformed at line 1, column 9: invalid character 'x' in string escape code."},
		{"{\"to\":\"abcdefghijk\\q\"}", "The JSON body is malformed at line 1, column 20: invalid character 'q' in string escape code."},
		{"{\"to\":\"\\u12\"}", "The JSON body is malformed at line 1, column 12: invalid character '\"' in \\u hexadecimal character escape."},
		{"{\"to\":\"\\u12G4\"}", "The JSON body is malformed at line 1, column 12: invalid character 'G' in \\u hexadecimal character escape."},
		{"{\"to\":\"\\u12", "The JSON body is malformed at line 1, column 12: unexpected end of input."},
		{"{\"to\":\"abc", "The JSON body is malformed at line 1, column 11: unexpected end of input."},
		{"{\"to\":\"abcdefghijklmnopq", "The JSON body is malformed at line 1, column 25: unexpected end of input."},
		{"{\"to\":\"\\n\\u0041\\", "The JSON body is malformed at line 1, column 17: unexpected end of input."},
		{"{\"a\x01b\":1}", "The JSON body is malformed at line 1, column 4: invalid character '\\x01' in string literal."},
		{"{\"abcdefghij\\k\":1}", "The JSON body is malformed at line 1, column 14: invalid character 'k' in string escape code."},
		{"{\"abcdefghij", "The JSON body is malformed at line 1, column 13: unexpected end of input."},
		{"{\"x\":{\"abcdefghijk\x7f\x00\":1}}", "The JSON body is malformed at line 1, column 20: invalid character '\\x00' in string literal."},
		{"{\"x\":[\"\\u00e9\",\"é\x10\"]}", "The JSON body is malformed at line 1, column 19: invalid character '\\x10' in string literal."},
	} {
		_, err := decodeOp(spa, JSON, []byte(tc.body))
		if err == nil || err.Status != 400 || err.Subcode != SubcodeDeserializationFailure || err.Message != tc.message {
			t.Errorf("%q: %v, want %q", tc.body, err, tc.message)
		}
	}
}

// referenceSimpleXMLText accepts text that an XML reader returns as it
// is, in three passes as simpleXMLTextEnd told it before: valid
// UTF-8 of characters XML allows, without markup, references, carriage
// returns (which readers turn into line feeds) or "]]>".
func referenceSimpleXMLText(b []byte) bool {
	for i := 0; i < len(b); {
		// The run of ASCII text, through a table.
		for i < len(b) && simpleXMLASCII[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		if c < utf8.RuneSelf {
			return false // markup, a reference, a carriage return or another control character
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 || !isXMLChar(r) {
			return false
		}
		i += size
	}
	return !bytes.Contains(b, []byte("]]>"))
}

// referenceSimpleXMLTextEnd is simpleXMLTextEnd as the end tag's index
// and referenceSimpleXMLText.
func referenceSimpleXMLTextEnd(b []byte) int {
	end := bytes.IndexByte(b, '<')
	if end < 0 || !referenceSimpleXMLText(b[:end]) {
		return -1
	}
	return end
}

// TestSimpleXMLTextEnd holds simpleXMLTextEnd to its reference over the
// scan inputs, with and without a '<' after them, and over text around
// "]]>" and multi-byte characters cut short by a '<'.
func TestSimpleXMLTextEnd(t *testing.T) {
	check := func(b []byte) {
		if got, want := simpleXMLTextEnd(b), referenceSimpleXMLTextEnd(b); got != want {
			t.Fatalf("simpleXMLTextEnd(%q) = %d, want %d", b, got, want)
		}
	}
	for b, from := range scanInputs {
		check(b[from:])
		check(append(b[from:len(b):len(b)], "</property>"...))
	}
	for _, s := range []string{"]]>", "a]]><", "a]]<", "]]", "]<", "]]]><", "a]<b", "\xe2\x80<", "\xe2\x80\xa8<", "\xef\xbf\xbe<",
		"\xc3<\xa9", "x\ry<", "&amp;<", "\t\n<", "é]]<>"} {
		check([]byte(s))
	}
}

// TestWriteQueryEscaped holds writeQueryEscaped to url.QueryEscape for
// every byte, alone and among others, and for text in and out of ASCII.
func TestWriteQueryEscaped(t *testing.T) {
	in := []string{"", "+1 425 555 1234", "tel:+1-425;ext=12", "sip:a@b.c;user=phone", "日本 😀", "\xff\x00~._-"}
	for c := range 256 {
		b := string([]byte{byte(c)})
		in = append(in, b, "a"+b+"Z", b+b)
	}
	for _, s := range in {
		var b strings.Builder
		writeQueryEscaped(&b, s)
		if got, want := b.String(), url.QueryEscape(s); got != want {
			t.Errorf("writeQueryEscaped(%q) = %q, url.QueryEscape %q", s, got, want)
		}
	}
}

// TestIsToken checks isToken byte by byte against RFC 2045: printable
// ASCII but space and the tspecials, and not empty.
func TestIsToken(t *testing.T) {
	for c := range 256 {
		want := c > ' ' && c < 0x7f && !strings.ContainsRune(`()<>@,;:\"/[]?=`, rune(c))
		b := string([]byte{byte(c)})
		for _, s := range []string{b, "text" + b, b + "plain"} {
			if got := isToken(s); got != want {
				t.Errorf("isToken(%q) = %v, want %v", s, got, want)
			}
		}
	}
	if isToken("") {
		t.Error(`isToken("") = true`)
	}
}
