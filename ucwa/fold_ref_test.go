package ucwa

import (
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// referenceFoldLookalike is foldLookalike written plainly, rune by rune
// through a strings.Builder: the folding the fast one must match byte
// for byte.
func referenceFoldLookalike(s string) (string, []bool) {
	var b strings.Builder
	fromASCII := make([]bool, 0, len(s)+1)
	var buf [32]byte
	for _, r := range s {
		if r < utf8.RuneSelf {
			if r < 0x20 || r == 0x7f || r == ' ' {
				continue
			}
			r = dotnetFold(r)
			b.WriteByte(byte(r))
			fromASCII = append(fromASCII, true)
			continue
		}
		var one [utf8.UTFMax]byte
		n := utf8.EncodeRune(one[:], r)
		decomposed := norm.NFKD.Properties(one[:n]).Decomposition()
		switch {
		case hangulFirst <= r && r <= hangulLast:
			decomposed = norm.NFKD.Append(buf[:0], one[:n]...)
		case decomposed == nil:
			decomposed = one[:n]
		}
		for _, d := range string(decomposed) {
			if referenceInvisible(d) {
				continue
			}
			d = dotnetFold(d)
			before := b.Len()
			b.WriteRune(d)
			for range b.Len() - before {
				fromASCII = append(fromASCII, false)
			}
		}
	}
	return b.String(), append(fromASCII, false)
}

// referenceInvisible is invisible through the Unicode tables.
func referenceInvisible(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Z, unicode.Mn, unicode.Me, unicode.Variation_Selector) ||
		unicode.Is(unicode.White_Space, r) || r == utf8.RuneError
}

// TestInvisibleAsTables: invisible's bitmap, built from the tables'
// ranges, tells every rune (and a few that are none) as the tables
// searched in turn do.
func TestInvisibleAsTables(t *testing.T) {
	for r := rune(-2); r <= unicode.MaxRune+2; r++ {
		if got, want := invisible(r), referenceInvisible(r); got != want {
			t.Fatalf("invisible(%U) = %v, want %v", r, got, want)
		}
	}
}

// FuzzFoldLookalike holds foldLookalike, and its variants foldString and
// foldBounded, to referenceFoldLookalike byte for byte: the fold and
// where each of its bytes came from; a bounded fold is the fold when that
// is short enough, and otherwise a prefix of it too long for the bound.
func FuzzFoldLookalike(f *testing.F) {
	for _, s := range []string{"", "access_token", "ＡＢＣ\u200bｄｅ", "ａ\u0301", "\U0001d41a\U000e0101", "가각힣", "\ufdfa\ufb03",
		"K\u212a\u0130\u0131\u017f", "\xff\xfe a\x00b\x7f", "\ufffd", "\u00a0\u2028\u3000", "\U00010400\U0001e900", "x.[]_-~"} {
		f.Add(s, 22)
	}
	f.Fuzz(func(t *testing.T, s string, limit int) {
		want, wantASCII := referenceFoldLookalike(s)
		got, gotASCII := foldLookalike(s)
		if got != want || !slices.Equal(gotASCII, wantASCII) {
			t.Fatalf("foldLookalike(%+q) = %+q %v, want %+q %v", s, got, gotASCII, want, wantASCII)
		}
		if got := foldString(s); got != want {
			t.Fatalf("foldString(%+q) = %+q, want %+q", s, got, want)
		}
		limit = max(limit, 0) % 64
		got = foldBounded(s, limit)
		if len(want) <= limit && got != want || len(want) > limit && (len(got) <= limit || !strings.HasPrefix(want, got)) {
			t.Fatalf("foldBounded(%+q, %d) = %+q, fold %+q", s, limit, got, want)
		}
	})
}
