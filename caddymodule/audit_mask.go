package caddymodule

import (
	"unicode"
	"unicode/utf8"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// maxAuditApplicationID is how much of an application id an audit line
// holds. A pool's are a few digits or a GUID's 36 characters.
const maxAuditApplicationID = 128

// auditApplicationID is the application id as the audit line has it,
// before masking: its first maxAuditApplicationID bytes (ending on a
// whole character, or within bytes that are no UTF-8, which the line
// writes as U+FFFD) and "…" when it is longer.
func auditApplicationID(app string) string {
	if len(app) <= maxAuditApplicationID {
		return app
	}
	// A character is utf8.UTFMax bytes at most: a rune start further
	// back ends no character split by the cut.
	cut := maxAuditApplicationID
	for back := 1; back < utf8.UTFMax && !utf8.RuneStart(app[cut]); back++ {
		cut--
	}
	if !utf8.RuneStart(app[cut]) {
		cut = maxAuditApplicationID
	}
	return app[:cut] + "…"
}

// maskDigitRuns returns s with the digits of every run of more than four
// digits replaced by '*': a client's string (an operationId) is logged,
// and a phone number in it is not. A digit is any Unicode decimal digit,
// or a character a gateway dials as digits (a superscript ¹, a circled
// ①, counted as the digits it folds onto: see ucwa.DialDigits), and a
// run goes on across anything but a letter, whatever a client
// writes between the digits of a number ("+1 (425) 555-1234" is
// "+* (***) ***-****", "call_1_425_555_1234" is "call_*_***_***_****",
// what is between them kept); only a letter ends a run. A GUID's hyphens
// join the digits about them, so a GUID loses some ("e0a2-4715-a2d4" is
// "e0a*-****-a2d4"): the trail must not hold a number, and the rest of
// the GUID still tells it apart. s is returned as it is when it has no
// such run.
func maskDigitRuns(s string) string {
	if !hasLongDigitRun(s) {
		return s
	}
	return string(appendMaskedDigitRuns(nil, s))
}

// hasLongDigitRun reports whether s has a run of more than four digits,
// counted across anything but letters.
func hasLongDigitRun(s string) bool {
	// An ASCII s (the usual operationId) byte by byte: its digits and
	// letters are ASCII's.
	run := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= utf8.RuneSelf:
			return hasLongDigitRunOfRunes(s)
		case '0' <= c && c <= '9':
			if run++; run > maxShownDigitRun {
				return true
			}
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			run = 0
		}
	}
	return false
}

// hasLongDigitRunOfRunes is hasLongDigitRun rune by rune.
func hasLongDigitRunOfRunes(s string) bool {
	run := 0
	for _, c := range s {
		if n := ucwa.DialDigits(c); n > 0 {
			if run += n; run > maxShownDigitRun {
				return true
			}
		} else if unicode.IsLetter(c) {
			run = 0
		}
	}
	return false
}

// maxShownDigitRun is the longest run of digits maskDigitRuns shows.
const maxShownDigitRun = 4

// appendMaskedDigitRuns appends s to b as maskDigitRuns returns it, each
// character as a rune (an invalid byte as U+FFFD).
func appendMaskedDigitRuns(b []byte, s string) []byte {
	return appendMasked(b, s, false)
}

// appendMaskedRunTails appends s to b with every run of more than
// maxShownDigitRun digits (counted as maskDigitRuns counts them) masked
// as a destination is (+1425555****): its first digits shown, at most
// maxShownRunHead of them, the rest, and at least its last
// maskedTailDigits, turned to '*'. For an application id, which a pool
// hands out as a long number (101246165550), so that the trail still
// tells applications apart while a number written there does not reach
// it whole, even followed by more digits (14255551234-0000, one run).
func appendMaskedRunTails(b []byte, s string) []byte {
	return appendMasked(b, s, true)
}

// maskedTailDigits is how many digits appendMaskedRunTails masks at the
// end of a long run at least, and maxShownRunHead how many it shows at
// its start at most: as many as a destination's mask shows of a number
// of the North American plan (+1425555****).
const (
	maskedTailDigits = 4
	maxShownRunHead  = 7
)

// appendMasked is appendMaskedDigitRuns, or with tails
// appendMaskedRunTails.
func appendMasked(b []byte, s string, tails bool) []byte {
	// An ASCII s (the usual operationId) is its runes: it is appended as
	// it is, and the digits of its long runs turned to '*' in place.
	at := len(b)
	b = append(b, s...)
	start, run := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= utf8.RuneSelf:
			return appendMaskedRunes(b[:at], s, tails)
		case '0' <= c && c <= '9':
			if run == 0 {
				start = i
			}
			run++
		case run > 0 && ('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'):
			maskASCIIRun(b[at+start:at+i], run, tails)
			run = 0
		}
	}
	if run > 0 {
		maskASCIIRun(b[at+start:], run, tails)
	}
	return b
}

// shownDigits is how many digits of a run of so many digits stay as
// written: all of a short run; of a long one none, or with tails all but
// the last maskedTailDigits, maxShownRunHead at most.
func shownDigits(digits int, tails bool) int {
	switch {
	case digits <= maxShownDigitRun:
		return digits
	case tails:
		return min(digits-maskedTailDigits, maxShownRunHead)
	}
	return 0
}

// maskASCIIRun turns the digits of an ASCII run of so many digits to '*'
// but the first shownDigits.
func maskASCIIRun(run []byte, digits int, tails bool) {
	shown := shownDigits(digits, tails)
	for i, c := range run {
		if '0' <= c && c <= '9' {
			if shown > 0 {
				shown--
				continue
			}
			run[i] = '*'
		}
	}
}

// appendMaskedRunes is appendMasked rune by rune.
func appendMaskedRunes(b []byte, s string, tails bool) []byte {
	// start is the byte offset of the current run (its first digit), run
	// its digits; the run's text is s[start:] up to the rune that ends it.
	start, run := 0, 0
	flush := func(end int) {
		shown := shownDigits(run, tails)
		for _, c := range s[start:end] {
			if n := ucwa.DialDigits(c); n > 0 {
				if n <= shown {
					shown -= n
				} else {
					shown, c = 0, '*'
				}
			}
			b = utf8.AppendRune(b, c)
		}
		run = 0
	}
	for i, c := range s {
		switch n := ucwa.DialDigits(c); {
		case n > 0:
			if run == 0 {
				start = i
			}
			run += n
			continue
		case run > 0 && !unicode.IsLetter(c):
			continue
		case run > 0:
			flush(i)
		}
		b = utf8.AppendRune(b, c)
	}
	if run > 0 {
		flush(len(s))
	}
	return b
}
