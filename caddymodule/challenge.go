package caddymodule

import (
	"fmt"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/ucwa-edge/caddy-ucwa/internal/bearer"
)

// DefaultRealm is the realm of the 401 challenge unless `challenge realm`
// sets another.
const DefaultRealm = "ucwa"

// reservedChallengeParams are set by the edge itself (RFC 6750 3).
var reservedChallengeParams = []string{"error", "error_description", "error_uri", "scope"}

// challengeParams renders the configured challenge parameters as
// quoted-string auth-params (RFC 9110 11.2): the realm, and the others
// (each with a leading ", ") in name order, so the header is the same on
// every request.
func challengeParams(params map[string]string, repl *caddy.Replacer) (realm, extra string, err error) {
	realm = DefaultRealm
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	// By name in any case, so that two spellings of one name sit side
	// by side.
	slices.SortFunc(names, func(a, b string) int {
		if c := strings.Compare(strings.ToLower(a), strings.ToLower(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	for i, name := range names {
		if !isToken(name) {
			return "", "", fmt.Errorf("%q is not a parameter name", name)
		}
		// A name is case-insensitive (RFC 9110 11.2): given in two
		// cases, one realm would win unseen, or a parameter go out twice.
		if i > 0 && strings.EqualFold(names[i-1], name) {
			return "", "", fmt.Errorf("%q and %q are the same parameter (names are case-insensitive)", names[i-1], name)
		}
		if slices.Contains(reservedChallengeParams, strings.ToLower(name)) {
			return "", "", fmt.Errorf("%q is set by the edge itself", name)
		}
		// An unset variable or an unknown placeholder stops startup
		// rather than send an empty parameter or the placeholder's text,
		// as in the jwt settings.
		value, err := bearer.Resolve(repl, fmt.Sprintf("the value of %q", name), params[name])
		if err != nil {
			return "", "", err
		}
		if !isPrintableASCII(value) {
			return "", "", fmt.Errorf("the value of %q must be printable ASCII", name)
		}
		// A quoted-string may be empty (RFC 9110 11.2), but an empty
		// realm names no protection space a client can tell from
		// another's, and an empty parameter is one a client reads as
		// given: an authorization_uri it cannot fetch a token from.
		if strings.TrimSpace(value) == "" && strings.EqualFold(name, "realm") {
			return "", "", fmt.Errorf("the value of %q is empty: leave `challenge realm` out for the default realm %q, or give one", name, DefaultRealm)
		}
		if strings.TrimSpace(value) == "" {
			return "", "", fmt.Errorf("the value of %q is empty, which a client would read as given: leave the parameter out, or give its value", name)
		}
		// A client reads the spaces as part of the value: a URI or a
		// client id that matches nothing.
		if strings.TrimSpace(value) != value {
			return "", "", fmt.Errorf("the value of %q begins or ends with a space, which a client would read as part of it", name)
		}
		if strings.EqualFold(name, "realm") {
			realm = value
			continue
		}
		b.WriteString(", " + name + "=" + quote(value))
	}
	return "realm=" + quote(realm), b.String(), nil
}

// quote makes s a quoted-string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(c rune) bool {
		return c > '~' || c <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c)
	})
}

// isPrintableASCII reports whether s holds only visible ASCII and spaces,
// so it is safe inside a header.
func isPrintableASCII(s string) bool {
	return !strings.ContainsFunc(s, func(c rune) bool { return c < ' ' || c > '~' })
}
