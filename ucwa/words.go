package ucwa

import (
	"fmt"
	"strings"
	"unicode"
)

// WordError is the error about the value of a configuration option that
// takes one of a few words (mode enforce|report) and got none of them.
// The words are exact and lower-case, as Caddy's own directives take
// theirs (lb_policy round_robin, tls internal): a config means one thing
// to whoever reads it or searches it, in JSON as in a Caddyfile. The
// message names the accepted words, and says so when value is one of
// them in another letter case. The value is quoted only when it holds
// no digit, as entryError does: a mistyped value may be a phone number.
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
	for _, w := range words {
		if strings.EqualFold(value, w) {
			accepted += " (the words are lower-case)"
			break
		}
	}
	if strings.IndexFunc(value, unicode.IsDigit) >= 0 {
		return fmt.Errorf("%s: the value %s", option, accepted)
	}
	return fmt.Errorf("%s: %q %s", option, value, accepted)
}
