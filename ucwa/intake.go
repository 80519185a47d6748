package ucwa

import (
	"mime"
	"net/http"
	"strings"
	"sync"
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
// Content-Type is then read only for a character set, which must be
// UTF-8 (see namesOtherCharset). An operation that takes no body is
// refused one.
func (c *Cleaner) Intake(op *Operation, in Incoming) (*Cleaned, *Error) {
	if op.Body == BatchBody {
		return nil, NewError(500, SubcodeServiceFailure, "A batch is read part by part, not as one request.")
	}
	if !op.AllowsMethod(in.Method) {
		return nil, op.MethodError(in.Method)
	}
	// The header is read by its canonical keys, as Get and Values would
	// after canonicalizing them, which costs a pass over each key.
	if op.IfMatch && strings.TrimSpace(firstValue(in.Header["If-Match"])) == "" {
		return nil, NewError(428, "", "A "+op.Method+" of "+op.Rel+" must carry the resource's etag in If-Match.")
	}
	if ce := in.Header["Content-Encoding"]; len(ce) > 1 || len(ce) == 1 && !strings.EqualFold(strings.TrimSpace(ce[0]), "identity") {
		return nil, NewError(415, SubcodeUnsupportedMediaType, "The body must not be compressed or otherwise encoded (Content-Encoding).")
	}
	// One box holds the result and the body and query it points to:
	// one allocation, or none when Release gave one back.
	if len(in.Body) == 0 {
		for _, ct := range in.Header["Content-Type"] {
			if namesOtherCharset(ct) {
				return nil, errOtherCharset
			}
		}
	}
	box := intakeBoxes.Get().(*intakeBox)
	var r *Request
	if len(in.Body) > 0 {
		types := in.Header["Content-Type"]
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
	box.cl.box = box
	return &box.cl, nil
}

// errOtherCharset refuses a request without a body whose Content-Type
// names a character set other than UTF-8, in which a pool would read its
// query.
var errOtherCharset = NewError(415, SubcodeUnsupportedMediaType,
	"The request's Content-Type names a character set other than UTF-8; a request is read in UTF-8.")

// intakeBox is what Intake returns: the cleaned request, and the body
// and query it points to.
type intakeBox struct {
	cl Cleaned
	r  Request
	q  Query
}

// intakeBoxes recycles the boxes that Release gives back.
var intakeBoxes = sync.Pool{New: func() any { return new(intakeBox) }}

// Release gives the memory of a request that Intake returned back for a
// later Intake to reuse: c, its Request and Query, and the slices they
// return (Destinations among them) must not be used afterwards. The
// values they returned as strings stay valid, and so does Body, which
// is never in that memory. Releasing is optional (a request that is not
// released is garbage collected), does nothing for one that Clean
// returned, and must happen once at most.
func (c *Cleaned) Release() {
	box := c.box
	if box == nil {
		return
	}
	*box = intakeBox{}
	intakeBoxes.Put(box)
}

func firstValue(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[0]
}

// isSDP reports whether a Content-Type value is application/sdp, with or
// without parameters, in UTF-8 (see namesOtherCharset).
func isSDP(contentType string) bool {
	if strings.EqualFold(contentType, "application/sdp") {
		return true
	}
	mt, params, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/sdp" && utf8Charset(contentType, params)
}
