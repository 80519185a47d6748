package ucwa

import (
	"net/url"
	"strings"
	"testing"
)

// referenceReadQueryNames is ReadQueryNames asking each name apart
// whether it overrides the method and whether it is access_token, each
// folding it on its own.
func referenceReadQueryNames(raw string) QueryNames {
	var q QueryNames
	for pair := range strings.SplitSeq(raw, "&") {
		name, _, _ := strings.Cut(pair, "=")
		if name == "" {
			continue
		}
		if q.MethodOverride == "" {
			q.MethodOverride = referenceMethodOverrideName(name)
		}
		q.AccessToken = q.AccessToken || referenceAccessTokenName(name)
	}
	return q
}

func referenceMethodOverrideName(name string) string {
	if !plainName(name) {
		decoded, php := referenceLenientQueryName(name)
		if p := methodOverrideSpelling(php); p != "" {
			return p
		}
		if !printableASCII(decoded) {
			decoded, _ = referenceFoldLookalike(decoded)
		}
		name = decoded
	}
	for part := range bindingParts(name) {
		if p := methodOverrideSpelling(part); p != "" {
			return p
		}
	}
	return ""
}

func referenceLenientQueryName(name string) (decoded, php string) {
	decoded, _ = unescapeAgain(strings.ReplaceAll(name, "+", " "))
	php = phpName(decoded)
	if !isASCII(php) {
		php, _ = referenceFoldLookalike(php)
	}
	return decoded, php
}

func referenceAccessTokenName(name string) bool {
	if plainName(name) {
		return equalFoldASCII(name, AccessTokenParameter)
	}
	if _, php := referenceLenientQueryName(name); equalFoldASCII(php, AccessTokenParameter) {
		return true
	}
	decoded, err := url.QueryUnescape(name)
	if err != nil {
		return false
	}
	folded := decoded
	if !printableASCII(decoded) {
		folded, _ = referenceFoldLookalike(decoded)
	}
	for part := range bindingParts(folded) {
		if equalFoldASCII(part, AccessTokenParameter) {
			return true
		}
	}
	return false
}

// BenchmarkReadQueryNames reads a query of about 1 MiB (Go's default
// header limit) of plain ASCII names, of many short names of fullwidth
// letters and zero-width spaces, and of one long name of letters with
// combining accents: the cost of every request before authentication.
//
//	go test -run '^$' -bench ReadQueryNames -benchmem -count 5 ./ucwa/
func BenchmarkReadQueryNames(b *testing.B) {
	const size = 1 << 20
	fill := func(unit string) string { return strings.Repeat(unit, size/len(unit)) }
	for _, tc := range []struct{ name, raw string }{
		{"ascii", fill("abcdef=1&")},
		{"nonascii-names", fill("ａｂｃ\u200bｄｅ=1&")},
		{"long-name", fill("ａ\u0301")},
		{"long-name-php", "." + fill("\u200b")},
		{"long-name-astral", fill("\U0001d41a\U000e0101")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.raw)))
			for b.Loop() {
				ReadQueryNames(tc.raw)
			}
		})
	}
}

// FuzzReadQueryNamesReference holds ReadQueryNames, which decodes and
// folds each name once for both questions, to referenceReadQueryNames,
// which asks them apart, and methodOverrideName and accessTokenName to
// theirs for each name.
func FuzzReadQueryNamesReference(f *testing.F) {
	for _, tc := range accessTokenQueries {
		f.Add(tc.raw)
	}
	for _, tc := range methodOverrideQueries {
		f.Add(tc.raw)
	}
	for _, s := range []string{"", "ａｂｃ\u200bｄｅ=1&x", ".\u200b_method", "%EF%BC%BFmethod=1&access%EF%BC%BFtoken", "%uFF3Fmethod",
		"+%u200baccess.token", "access%zz_token", "_me%u0301thod[x]=1", "\x00_method", "x%00.access_token&_method", "%25u005fmethod"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if got, want := ReadQueryNames(raw), referenceReadQueryNames(raw); got != want {
			t.Fatalf("ReadQueryNames(%+q) = %+v, want %+v", raw, got, want)
		}
		for pair := range strings.SplitSeq(raw, "&") {
			name, _, _ := strings.Cut(pair, "=")
			if got, want := methodOverrideName(name), referenceMethodOverrideName(name); got != want {
				t.Fatalf("methodOverrideName(%+q) = %q, want %q", name, got, want)
			}
			if got, want := accessTokenName(name), referenceAccessTokenName(name); got != want {
				t.Fatalf("accessTokenName(%+q) = %v, want %v", name, got, want)
			}
		}
	})
}
