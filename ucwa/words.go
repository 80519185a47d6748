package ucwa

import (
	"fmt"
	"strings"
	"unicode"
)

// Word is the one of words that s is in any letter case (as
// strings.EqualFold compares them), else s: how every option word is
// read, in a Caddyfile and in JSON alike.
func Word(s string, words ...string) string {
	for _, w := range words {
		if strings.EqualFold(s, w) {
			return w
		}
	}
	return s
}

// Either reads the value of an option of two words, in any letter case
// (see Word), the first of which is its default ("" reads as it): it
// reports whether the value is the second; any other value is an error
// (see WordError).
func Either(option, value, first, second string) (isSecond bool, err error) {
	switch Word(value, first, second) {
	case "", first:
		return false, nil
	case second:
		return true, nil
	}
	return false, WordError(option, value, first, second)
}

// WordError is the error about the value of a configuration option that
// takes one of a few words (mode enforce|report) and got none of them,
// read in any letter case: a config written `mode Report` or JSON
// "E164" keeps starting. The message names the accepted words. The
// value is quoted only when it holds no digit, as entryError does: a
// mistyped value may be a phone number.
func WordError(option, value string, words ...string) error {
	var accepted string
	switch len(words) {
	case 1:
		accepted = "is not " + words[0]
	case 2:
		accepted = "is neither " + words[0] + " nor " + words[1]
	default:
		accepted = "is none of " + strings.Join(words, ", ")
	}
	if strings.IndexFunc(value, unicode.IsDigit) >= 0 {
		return fmt.Errorf("%s: the value %s", option, accepted)
	}
	return fmt.Errorf("%s: %q %s", option, value, accepted)
}
