package ucwa

import (
	"net/http"
	"strings"
	"testing"
)

// referenceFormBody reports whether a request declares a form body as
// ASP.NET's HttpRequest.Form reads one: a Content-Type line that starts,
// after spaces and tabs, with application/x-www-form-urlencoded or
// multipart/form-data in any ASCII letter case.
func referenceFormBody(h http.Header) bool {
	for _, v := range h["Content-Type"] {
		v = strings.TrimLeft(v, " \t")
		for _, t := range []string{"application/x-www-form-urlencoded", "multipart/form-data"} {
			if len(v) < len(t) {
				continue
			}
			same := true
			for i := range len(t) {
				c := v[i]
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				same = same && c == t[i]
			}
			if same {
				return true
			}
		}
	}
	return false
}

// FuzzMatchMethod: of a request of any method, header lines and query,
// MatchMethod gives PUT exactly when a header asks for another method
// (ReadHeader's OverridesMethod), the query does (ReadQueryNames), or the
// request declares a form body (referenceFormBody, which HasFormBody
// gives), and the request's own method otherwise.
func FuzzMatchMethod(f *testing.F) {
	for _, seed := range []struct{ method, lines, query string }{
		{"POST", "Content-Type:application/json", ""},
		{"POST", "Content-Type: \tApplication/X-WWW-Form-Urlencoded; charset=utf-8", ""},
		{"GET", "Content-Type:multipart/form-dat", ""},
		{"GET", "Content-Type:application/json\nContent-Type:MULTIPART/FORM-DATA;boundary=x", ""},
		{"GET", "Content_Type:multipart/form-data", ""},
		{"GET", "Content-Type:\u00a0multipart/form-data", ""},
		{"GET", "Content-Type:multipart/form-data", ""},
		{"POST", "X-Http-Method-Override:PUT", ""},
		{"POST", "X_HTTP_Method:DELETE", ""},
		{"DELETE", "", "x-http-method-override=GET"},
		{"GET", "", "X_HTTP_METHOD_OVERRIDE=PUT&a=1"},
	} {
		f.Add(seed.method, seed.lines, seed.query)
	}
	f.Fuzz(func(t *testing.T, method, lines, query string) {
		h := rewriteHeader(rewriteLines(lines))
		if got, want := HasFormBody(h), referenceFormBody(h); got != want {
			t.Fatalf("%q: HasFormBody %v, want %v", h, got, want)
		}
		q := ReadQueryNames(query)
		hd := ReadHeader(h)
		want := method
		if hd.OverridesMethod() || referenceFormBody(h) || q.MethodOverride != "" {
			want = http.MethodPut
		}
		if got := MatchMethod(method, hd, q); got != want {
			t.Fatalf("%s %q ?%s: MatchMethod %q, want %q", method, h, query, got, want)
		}
	})
}

// FuzzIsBatchPath: whatever a path holds, IsBatchPath's quick answer
// agrees with its full reading (a control character in front, which the
// full reading drops, takes the path off the quick one), a query changes
// nothing, and a path whose last segment is batch, in any ASCII letter
// case, names the batch also with a trailing slash, dot segment, dots,
// spaces or path parameter, and with each of its bytes percent-escaped.
func FuzzIsBatchPath(f *testing.F) {
	for _, seed := range []string{
		"/ucwa/oauth/v1/applications/1/batch", "/ucwa/v1/applications/1/BaTcH/", "/a/batch/../x", "/a/x/../batch",
		`\a\batch.`, "/a/batch;x", "/a/batch::$DATA", "/a/%62atch", "/a/%2562atch", "/a/%252562atch", "/a/ｂａｔｃｈ",
		"/a/bat\u200bch", "/a/batch?x=1", "/a/bat%00ch", "batch", "", "/", "/a/%",
	} {
		f.Add(seed, "x=1", uint8(0))
	}
	f.Fuzz(func(t *testing.T, path, query string, spelling uint8) {
		got := IsBatchPath(path)
		if plain, _, _ := strings.Cut(path, "?"); IsBatchPath("\x01"+plain) != IsBatchPath(plain) || IsBatchPath(plain+"?"+query) != got {
			t.Fatalf("%q: %v, but %v with a control character in front, %v with the query %q",
				path, got, IsBatchPath("\x01"+plain), IsBatchPath(plain+"?"+query), query)
		}
		if strings.ContainsAny(path, "?%") {
			return
		}
		batch := []byte("batch")
		for i := range batch {
			if spelling&(1<<i) != 0 {
				batch[i] -= 'a' - 'A'
			}
		}
		named := path + "/" + string(batch)
		suffixes := []string{"", "/", "/.", ".", ". .", ";v=1", "/x/.."}
		for _, s := range suffixes {
			if !IsBatchPath(named + s) {
				t.Fatalf("%q: not the batch", named+s)
			}
		}
		var escaped strings.Builder
		for i := range len(named) {
			escaped.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[named[i]>>4])+string("0123456789abcdef"[named[i]&15])))
		}
		if !IsBatchPath(escaped.String()) {
			t.Fatalf("%q: not the batch", escaped.String())
		}
	})
}
