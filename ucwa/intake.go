package ucwa

import (
	"mime"
	"net/http"
	"strings"
)

// Incoming is a request to an operation whose body has been read whole
// (within the caller's body limit).
type Incoming struct {
	// Method is the request method.
	Method string
	// Header holds the request headers.
	Header http.Header
	// RawQuery is the query string as it came, still percent-encoded.
	RawQuery string
	// Body is the whole body; it is retained, not copied, and must not
	// change afterwards.
	Body []byte
}

// Intake runs the protocol steps of a request to op, in the order a pool
// would: the method; If-Match on a PUT; a body that is not encoded
// (Content-Encoding) and of one Content-Type that fits the operation
// (UCWA JSON or XML for properties, application/sdp for SDP); the body
// decoded; the query read; every property validated and normalized. It
// returns the request to forward, or the UCWA error to answer. The edge
// and the pool emulator both take requests in through it, so that what
// one accepts the other does.
//
// A properties operation may come with no body at all (its inputs all in
// the query, as the forwarding operations' own samples send them); its
// Content-Type is then not read. An operation that takes no body is
// refused one.
func (c *Cleaner) Intake(op *Operation, in Incoming) (*Cleaned, *Error) {
	if op.Body == BatchBody {
		return nil, NewError(500, SubcodeServiceFailure, "A batch is read part by part, not as one request.")
	}
	if !op.AllowsMethod(in.Method) {
		return nil, op.MethodError(in.Method)
	}
	if op.IfMatch && strings.TrimSpace(in.Header.Get("If-Match")) == "" {
		return nil, NewError(428, "", "A "+op.Method+" of "+op.Rel+" must carry the resource's etag in If-Match.")
	}
	if ce := in.Header.Values("Content-Encoding"); len(ce) > 1 || len(ce) == 1 && !strings.EqualFold(strings.TrimSpace(ce[0]), "identity") {
		return nil, NewError(415, SubcodeUnsupportedMediaType, "The body must not be compressed or otherwise encoded (Content-Encoding).")
	}
	// One allocation holds the result and the body and query it
	// points to.
	box := new(struct {
		cl Cleaned
		r  Request
		q  Query
	})
	var r *Request
	if len(in.Body) > 0 {
		types := in.Header.Values("Content-Type")
		switch op.Body {
		case PropertiesBody:
			f, ok := MediaFormat(firstValue(types))
			if !ok || len(types) != 1 {
				return nil, NewError(415, SubcodeUnsupportedMediaType,
					"The body must be application/json, application/xml or their UCWA (vnd.microsoft.com.ucwa) forms in UTF-8, with one Content-Type.")
			}
			if err := decodeInto(&box.r, op, f, in.Body); err != nil {
				return nil, err
			}
			r = &box.r
		case SDPBody:
			if len(types) != 1 || !isSDP(types[0]) {
				return nil, NewError(415, SubcodeUnsupportedMediaType, "The body of "+op.Rel+" must be application/sdp, with one Content-Type.")
			}
		default:
			return nil, NewError(415, SubcodeUnsupportedMediaType, op.Rel+" takes no body.")
		}
	}
	if err := parseQueryInto(&box.q, op, in.RawQuery); err != nil {
		return nil, err
	}
	if err := c.clean(&box.cl, op, r, &box.q); err != nil {
		return nil, err
	}
	if r == nil {
		box.cl.body = in.Body
	}
	return &box.cl, nil
}

func firstValue(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[0]
}

// isSDP reports whether a Content-Type value is application/sdp, with or
// without parameters.
func isSDP(contentType string) bool {
	if strings.EqualFold(contentType, "application/sdp") {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/sdp"
}
