package ucwa

import "strings"

// PathParameterError refuses the decoded path p of a terminated request
// (or of a guarded part of a batch) when a segment's parameter (the
// ";name=value" parts after a segment's first ';', in p or in a decoding
// of it again, as Match reads it: see eachDecoding) is named like a phone
// destination of the table or operationId (see unreadInputOf) and holds
// anything but what that name allows (blank, or one of its words). The
// edge matches a path with its segments' parameters cut
// (startPhoneAudio;x=1 is startPhoneAudio, see CanonicalPath), as a
// server that reads RFC 3986's path parameters does, and forwards it as
// written; such a server hands them to the application too (JAX-RS's
// @MatrixParam, Spring's matrix variables, Tomcat's path parameters), and
// a pool, or a proxy before it, reading its inputs there would dial
// startPhoneAudio;to=tel:+1900..., which the edge never judged, or key the
// call by its ;operationId=. No client writes one. It names the input,
// never the value.
func PathParameterError(p string) *Error {
	if strings.IndexByte(p, ';') < 0 && strings.IndexByte(p, '%') < 0 {
		return nil
	}
	var found *namedDestination
	eachDecoding(p, func(r string) bool {
		found = pathParameterInput(r)
		return found == nil
	})
	if found == nil {
		return nil
	}
	return parameterError([]Parameter{{Name: found.name,
		Reason: "is given as a parameter of a path segment (;" + found.name + "=), where the edge does not judge it; give it where the operation takes it"}})
}

// pathParameterInput returns the input the first parameter of a segment
// of p names that its value may not hold (see PathParameterError), or
// nil.
func pathParameterInput(p string) *namedDestination {
	for seg := range strings.FieldsFuncSeq(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		_, params, ok := strings.Cut(seg, ";")
		if !ok {
			continue
		}
		for param := range strings.SplitSeq(params, ";") {
			name, value, _ := strings.Cut(param, "=")
			if d := unreadInputOf(strings.TrimSpace(name)); d != nil && !d.allows(value) {
				return d
			}
		}
	}
	return nil
}
