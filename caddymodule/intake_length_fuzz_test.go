package caddymodule

import (
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzLengthAsDeclared: over HTTP/2, a request whose content-length
// fields are any text, the body it was read with any length, passes
// lengthAsDeclared only when every field (trimmed of optional white
// space) is a decimal number that is the body's length; a request whose
// fields all say that length, as one writes it, always passes. The
// request's ContentLength is Go's HTTP/2 server's (the first field read
// alone when it is a number, 0 when it is not or when the HEADERS ended
// the stream, -1 without a field); over HTTP/1.1, whose server refuses
// fields that disagree, it is the body's own.
func FuzzLengthAsDeclared(f *testing.F) {
	for _, seed := range []struct {
		fields string
		n      uint32
		ended  bool
	}{
		{"5", 5, false}, {"5\n5", 5, false}, {"5\n6", 5, false}, {"5\n 5\t", 5, false}, {"05", 5, false},
		{"0", 0, true}, {"7", 0, true}, {"+5", 5, false}, {" 5", 5, false}, {"", 0, false},
		{"5\n05", 5, false}, {"99999999999999999999", 0, false}, {"5,5", 5, false},
	} {
		f.Add(seed.fields, true, seed.n, seed.ended, uint8(2))
	}
	f.Fuzz(func(t *testing.T, text string, present bool, length uint32, ended bool, proto uint8) {
		n := int64(length)
		r := &http.Request{ProtoMajor: 2, Header: http.Header{}}
		var fields []string
		if present {
			fields = strings.Split(text, "\n")
			r.Header["Content-Length"] = fields
		}
		switch {
		case proto == 1:
			r.ProtoMajor, r.ContentLength = 1, n
		case ended:
			n, r.ContentLength = 0, 0
		case !present:
			r.ContentLength = -1
		default:
			if cl, err := strconv.ParseUint(fields[0], 10, 63); err == nil {
				r.ContentLength = int64(cl)
			}
		}
		got := lengthAsDeclared(r, n)
		if r.ProtoMajor == 1 {
			if !got {
				t.Fatalf("HTTP/1.1 of %d bytes, Content-Length %d: refused", n, r.ContentLength)
			}
			return
		}
		agree := true
		for _, v := range fields {
			d, err := strconv.ParseUint(textproto.TrimString(v), 10, 63)
			agree = agree && err == nil && int64(d) == n
		}
		if got && !agree {
			t.Fatalf("fields %q, a body of %d bytes (ContentLength %d): passed", fields, n, r.ContentLength)
		}
		// Every field the length as one writes it.
		canonical := !slices.ContainsFunc(fields, func(v string) bool { return v != strconv.FormatInt(n, 10) })
		if !got && present && canonical {
			t.Fatalf("fields %q, a body of %d bytes (ContentLength %d): refused", fields, n, r.ContentLength)
		}
	})
}
