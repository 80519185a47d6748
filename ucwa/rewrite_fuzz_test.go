package ucwa

import (
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
)

// rewriteLine is a header line: its name as the client wrote it, and its
// value.
type rewriteLine struct{ name, value string }

// rewriteLines reads fuzzer text as header lines, "name:value" each.
func rewriteLines(s string) []rewriteLine {
	var lines []rewriteLine
	for l := range strings.SplitSeq(s, "\n") {
		if name, value, ok := strings.Cut(l, ":"); ok {
			lines = append(lines, rewriteLine{name, value})
		}
	}
	return lines
}

// rewriteHeader is the header a server reads lines into: each name
// canonicalized (net/http's reader, and a batch part's), a name's lines
// in their order.
func rewriteHeader(lines []rewriteLine) http.Header {
	h := http.Header{}
	for _, l := range lines {
		k := textproto.CanonicalMIMEHeaderKey(l.name)
		h[k] = append(h[k], l.value)
	}
	return h
}

// referenceRewriteName reports whether a header name, as the client
// wrote it, is one that IIS reads for the request's URL: X-Original-URL
// or X-Rewrite-URL in any ASCII letter case, with '_' for any of its '-'.
func referenceRewriteName(name string) bool { return referenceRewriteHeader(name) >= 0 }

// referenceRewriteHeader is which of the two a name so read is (0 or 1),
// or -1.
func referenceRewriteHeader(name string) int {
	lower := func(c byte) byte {
		if 'A' <= c && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	for header, want := range []string{"x-original-url", "x-rewrite-url"} {
		if len(name) != len(want) {
			continue
		}
		same := true
		for i := range len(name) {
			c := lower(name[i])
			same = same && (c == want[i] || c == '_' && want[i] == '-')
		}
		if same {
			return header
		}
	}
	return -1
}

// FuzzRewriteNamesOperation: on header lines of any names and values,
// read as a server reads them, RewriteNamesOperation reports exactly
// when a line named as IIS reads a rewritten URL (referenceRewriteName:
// any letter case, '_' for '-') has a value that, read as a request
// target with the method, does not parse or is a guarded operation or a
// near miss of one, each line's value read by itself, or when one of the
// two headers has more than one line, in any spellings (ASP.NET reads
// them joined); the answer does not depend on the order of the lines nor on
// lines of other names; and a line so named (in a spelling from the
// fuzzer) whose value is a path of an operation of the table under an
// application is always reported for the operation's method.
func FuzzRewriteNamesOperation(f *testing.F) {
	for _, s := range []string{
		"",
		"X-Original-Url:" + oauthApp + "/people/search?q=1",
		"X-Original-Url:" + oauthApp + "/communication/startPhoneAudio",
		"X-Rewrite-Url:https://fe1.contoso.com" + oauthApp + "/communication/startPhoneAudio?to=x",
		"X-Original-Url:" + oauthApp + "/communication/startPhoneAudio%09",
		"X-Original-Url:" + oauthApp + "/communication",
		"X-Original-Url:%zz",
		"X-Original-Url:",
		"X-Original-Url:" + oauthApp + "/people/search\nX-Original-Url:" + oauthApp + "/batch",
		"X_original_url:" + oauthApp + "/communication/startPhoneAudio",
		"X-Original-Url:" + oauthApp + "/people/search\nX_rewrite_url:" + oauthApp + "/communication",
		"X_rewrite-Url:" + oauthApp + "/people/search",
		"x-original-url:" + oauthApp + "/communication/startPhoneAudio\nContent-Type:application/json",
		"X-ORIGINAL-URL:" + oauthApp + "/me/makeMeAvailable\nx_original-URL:" + oauthApp + "/people/search",
		"X-Http-Method-Override:PUT\nX-Original-Url:" + oauthApp + "/communication",
		"X-Original-Url :" + oauthApp + "/communication/startPhoneAudio\nX-Original-Urls:/x\nX-Rewrite:" + oauthApp + "/batch",
	} {
		f.Add("POST", s, uint64(0), uint8(0))
		f.Add("GET", s, uint64(0x5a5a), uint8(7))
	}
	m := mustMatcher(f)
	ops := m.Operations()
	f.Fuzz(func(t *testing.T, method, text string, spell uint64, which uint8) {
		lines := rewriteLines(text)
		check := func(method string, lines []rewriteLine) bool {
			t.Helper()
			want, named := false, false
			var count [2]int
			for _, l := range lines {
				header := referenceRewriteHeader(l.name)
				if header < 0 {
					continue
				}
				named = true
				count[header]++
				got, ok := m.MatchTarget(method, l.value)
				want = want || !ok || got.Operation != nil || got.NearMiss || count[header] > 1
			}
			h := ReadHeader(rewriteHeader(lines))
			if h.RewritesURL() != named {
				t.Fatalf("%q: RewritesURL %v, want %v", lines, h.RewritesURL(), named)
			}
			got := m.RewriteNamesOperation(method, h)
			if got != want {
				t.Fatalf("%s %q: RewriteNamesOperation %v, want %v", method, lines, got, want)
			}
			// The order of the lines, and lines of other names, change
			// nothing.
			reversed := slices.Clone(lines)
			slices.Reverse(reversed)
			own := slices.DeleteFunc(slices.Clone(lines), func(l rewriteLine) bool { return !referenceRewriteName(l.name) })
			for _, other := range [][]rewriteLine{reversed, own} {
				if again := m.RewriteNamesOperation(method, ReadHeader(rewriteHeader(other))); again != got {
					t.Fatalf("%s %q: %v, but %v for %q", method, lines, got, again, other)
				}
			}
			return got
		}
		check(method, lines)

		// A line naming an operation's path, in a spelling of the
		// fuzzer's, among the others.
		op := &ops[int(which)%len(ops)]
		path := strings.ReplaceAll(op.Paths[int(spell>>32)%len(op.Paths)], anyItem, "1")
		name := []byte(rewriteURLHeaders[spell>>63])
		for i, c := range name {
			switch bit := spell >> (i % 32) & 1; {
			case c == '-' && bit == 1:
				name[i] = '_'
			case c != '-' && bit == 1:
				name[i] = c ^ 0x20 // the other letter case
			}
		}
		at := int(which/16) % (len(lines) + 1)
		lines = slices.Insert(lines, at, rewriteLine{string(name), app + path})
		if !check(op.Method, lines) {
			t.Fatalf("%s %q: %s at %s not reported", op.Method, lines, op.Rel, app+path)
		}
	})
}
