package ucwa

import "strings"

// ApplicationID returns the application id a request path names: the
// segment after the first "applications" segment (in any letter case) of
// the path's canonical form (see CanonicalPath), in lower case, as IIS
// matches paths without regard to case. It is "" when the path names
// none. A clean ASCII path costs no allocation unless the id has upper
// case letters.
func ApplicationID(path string) string {
	return CanonicalApplicationID(CanonicalPath(path))
}

// CanonicalApplicationID is ApplicationID of a path in canonical form
// (CanonicalPath's, as Match.Path holds it), which it does not
// canonicalize again.
func CanonicalApplicationID(p string) string {
	for p != "" {
		// p starts with "/" here: take the next segment.
		p = p[1:]
		seg, rest, _ := strings.Cut(p, "/")
		// In canonical form every letter is folded to ASCII where it
		// can be (ſ, which strings.EqualFold takes for s, is s), so
		// only a segment of applications' length can be it: the others
		// are passed over without comparing.
		if len(seg) == len("applications") && strings.EqualFold(seg, "applications") {
			id, _, _ := strings.Cut(rest, "/")
			return strings.ToLower(id)
		}
		if rest == "" {
			return ""
		}
		p = p[len(seg):]
	}
	return ""
}
