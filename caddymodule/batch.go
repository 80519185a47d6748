package caddymodule

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// acceptBatch takes in a batch (multipart/batching) whose token the
// batch's scopes granted. Every part that is a guarded operation, up to
// max_batch_operations of them, is checked exactly as if it came alone,
// with the batch's token (it may carry no credentials of its own: no
// Authorization, X-MS-WebTicket or Cookie, no access_token in its
// query): its operation's scopes, its framing, and ucwa's Intake with
// the part's method, headers, query and body. A cleaned part is written
// back in place, with its lengths corrected; every other byte of the
// batch is forwarded as it came, so a batch without guarded parts goes
// on byte for byte. The destination policy judges every destination of
// every guarded part. The first part that fails (a near miss among
// them, or one the policy refuses) refuses the whole batch with its
// error, whose message names the part's position, and nothing is
// delivered.
func (h *Handler) acceptBatch(in *intake) *ucwa.Error {
	r := in.r
	if !in.op.AllowsMethod(r.Method) {
		return in.op.MethodError(r.Method)
	}
	// The pool would decode an encoded batch; the edge reads it as sent.
	if ce := r.Header.Values("Content-Encoding"); len(ce) > 1 || len(ce) == 1 && !strings.EqualFold(strings.TrimSpace(ce[0]), "identity") {
		return errBatchEncoded
	}
	types := r.Header.Values("Content-Type")
	if len(types) != 1 {
		return errBatchType
	}
	b, e := ucwa.ParseBatch(types[0], in.buf.Bytes(), h.MaxBatchParts)
	if e != nil {
		return e // its message names the part
	}
	// The batch's own query is read as any operation's (the batch takes
	// no inputs): a pool that runs the parts in the batch's request reads
	// it where a part's Request[name] looks first, before the cookies
	// refused above, so a destination named there is refused too.
	if _, e := ucwa.ParseQuery(in.op, r.URL.RawQuery); e != nil {
		return e
	}
	// refused is the answer of the first part the policy refused: the
	// parts after it are still read and judged, only to be counted, so
	// that enforce counts every destination report mode would count.
	var refused *ucwa.Error
	counting := true
	for _, p := range b.Parts() {
		if refused != nil {
			counting = counting && h.countRefusedBatchPart(in, p)
			continue
		}
		cl, e := h.acceptPart(in, p)
		if e != nil {
			return inPart(p.Index, e)
		}
		if cl == nil {
			continue // not guarded
		}
		// The target parses: the part was matched.
		path, _ := ucwa.TargetPath(p.Target())
		in.parts = append(in.parts, cleanedPart{index: p.Index, path: path, cleaned: cl})
		if e := h.judge(in, cl, p.Index); e != nil {
			refused = inPart(p.Index, e)
			continue
		}
		h.countPart(in, cl)
		// SetBody and SetTarget name the part themselves.
		if e := p.SetBody(cl.Body()); e != nil {
			return e
		}
		if q := cl.RawQuery(); q != p.RawQuery() {
			if e := p.SetTarget(p.Path() + "?" + q); e != nil {
				return e
			}
		}
	}
	if refused != nil {
		return refused
	}
	in.forward(b.Encode(), r.URL.RawQuery, !b.Changed())
	return nil
}

// countRefusedBatchPart counts, by the destination policy, the
// destinations of a part after the first part the policy refused: the
// batch is refused whole by that part, yet each destination of the
// others counts as in report mode, which judges them all, so that a
// policy's refused count is what its would_refuse count was. A part
// that fails its own checks is not counted, nor are those after it
// (report mode stops there too): it reports false then. Nothing of it
// reaches the answer or the audit line, which tell of the first refused
// part.
func (h *Handler) countRefusedBatchPart(in *intake, p *ucwa.BatchPart) bool {
	challenge := in.challenge
	cl, e := h.acceptPart(in, p)
	in.challenge = challenge
	if e != nil {
		return false
	}
	if cl != nil {
		h.destinations.count(cl)
	}
	return true
}

// acceptPart checks one part of a batch and returns it cleaned, or nil
// for a part that is no guarded operation.
func (h *Handler) acceptPart(in *intake, p *ucwa.BatchPart) (*ucwa.Cleaned, *ucwa.Error) {
	header, query := ucwa.ReadHeader(p.Header), ucwa.ReadQueryNames(p.RawQuery())
	method := ucwa.MatchMethod(p.Method, header, query)
	m, ok := h.matcher.MatchTarget(method, p.Target())
	switch {
	case !ok:
		return nil, errPartTarget
	case m.NearMiss:
		return nil, errNearMiss
	case m.Operation == nil && h.matcher.RewriteNamesOperation(method, header):
		return nil, errNearMiss
	case m.Operation == nil:
		return nil, nil
	case m.Operation.Body == ucwa.BatchBody:
		return nil, errNestedBatch
	}
	// Each guarded part is judged as a request alone, at the cost of
	// one (its numbers normalized, read as dial strings): a batch holds
	// no more of them than max_batch_operations, those past it unread.
	if in.batchOperations++; in.batchOperations > h.MaxBatchOperations {
		return nil, h.tooManyOperations()
	}
	op := m.Operation
	if in.grant != nil && !in.grant.grants(op) {
		e, challenge := h.scopeError(op)
		in.challenge = challenge
		return nil, e
	}
	if e := checkFraming(header, nil); e != nil {
		return nil, e
	}
	// The batch's token is the one the edge checked; a pool might take a
	// part's own credentials for that part: a token, a web ticket
	// (X-MS-WebTicket, which SfB's web services read), a cookie, a token
	// in its query (access_token, RFC 6750 2.3).
	if len(p.Header["Authorization"]) > 0 || header.HasWatched(webTicketHeader) || len(p.Header["Cookie"]) > 0 ||
		query.AccessToken {
		return nil, errPartAuthorization
	}
	if header.HasWatched(charsetHeader) {
		return nil, errCharsetHeader
	}
	if e := queryMethodOverride(query); e != nil {
		return nil, e
	}
	if path, ok := ucwa.TargetPath(p.Target()); ok {
		if e := ucwa.PathParameterError(path); e != nil {
			return nil, e
		}
	}
	partHeader := p.Header
	if p.Source() == ucwa.BodyInDataHeader && len(partHeader["Content-Type"]) == 0 {
		// Microsoft's batch.js sends JSON.stringify output in Data, with
		// no Content-Type of its own.
		partHeader = partHeader.Clone()
		partHeader.Set("Content-Type", "application/json")
	}
	return h.takeIn(op, ucwa.Incoming{Method: p.Method, Header: partHeader, RawQuery: p.RawQuery(), Body: p.Body()})
}

// tooManyOperations refuses a batch with more guarded parts than
// max_batch_operations.
func (h *Handler) tooManyOperations() *ucwa.Error {
	return ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeParameterValidationFailure,
		"The batch holds more than "+strconv.Itoa(h.MaxBatchOperations)+" requests to operations that dial, store or forward to a number, the limit.")
}

// inPart is e, of the batch's part at index, as the answer to the whole
// batch: its message names the part. A part's 405 is a 400: the batch's
// own method is allowed, and a 405 must carry an Allow of the batch's
// methods (RFC 9110 15.5.6), which would tell the client to send the POST
// it sent.
func inPart(index int, e *ucwa.Error) *ucwa.Error {
	out := *e
	out.Message = "Batch part " + strconv.Itoa(index) + ": " + e.Message
	if out.Status == http.StatusMethodNotAllowed {
		out.Status, out.Allow = http.StatusBadRequest, ""
	}
	return &out
}

var (
	errBatchEncoded = ucwa.NewError(http.StatusUnsupportedMediaType, ucwa.SubcodeUnsupportedMediaType,
		"The batch must not be compressed or otherwise encoded (Content-Encoding).")
	errBatchType = ucwa.NewError(http.StatusUnsupportedMediaType, ucwa.SubcodeUnsupportedMediaType,
		"A batch must be "+ucwa.BatchMediaType+", with one Content-Type.")
	errPartTarget = ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeDeserializationFailure,
		"Its request target cannot be read.")
	errNestedBatch = ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeParameterValidationFailure,
		"A batch cannot hold another batch.")
	errPartAuthorization = ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeDeserializationFailure,
		"A batched request carries no credentials of its own (Authorization, X-MS-WebTicket, Cookie, access_token in its query): the batch's token authorizes every part.")
)
