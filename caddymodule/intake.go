package caddymodule

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/internal/store"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// ServeHTTP terminates a request to a guarded operation, refuses a near
// miss of one (404, before anything else: no token is needed to be
// refused), and a request whose target is no path but an opaque URL
// (see below), and passes any other request to the next handler
// untouched.
// A terminated request goes through the intake's steps in order, and the
// first that fails answers it:
//
//  1. authorize: the bearer token, deny_callers and the operation's
//     scopes (401, 403)
//  2. accept the request as the protocol defines it (see accept); a batch
//     part by part (see acceptBatch); the destination policy judges every
//     destination of it (see judge); once the body is in, a handler a
//     reload has cleaned up since checks the caller against the new
//     deny lists (see barredSinceReload)
//  3. rebuild the request to forward: the cleaned query and body
//  4. deliver it to the pools, or to the next handler, once per
//     operationId when idempotency is on (see deliverOnce), within the
//     velocity limits (see checkLimits)
//
// Once it is answered, a terminated request (and a near miss) gets a line
// in the audit trail (see writeAudit); one the process exits under gets
// it then (see writeStoppedLines).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) (err error) {
	if r.URL.Opaque != "" {
		// An HTTP/1.1 target with no "//" after its scheme
		// (http:http://pool/ucwa/.../startPhoneAudio): Go's server reads
		// it as a URL with no path, which names no operation, and
		// reverse_proxy sends the opaque part on as the request target,
		// an absolute-form one a pool routes by its path. No client sends
		// one: a near miss, whatever it names.
		return h.refuseNearMiss(w, r)
	}
	header, query := ucwa.ReadHeader(r.Header), ucwa.ReadQueryNames(r.URL.RawQuery)
	method := ucwa.MatchMethod(r.Method, header, query)
	m := h.matcher.Match(method, r.URL.Path)
	if m.NearMiss {
		return h.refuseNearMiss(w, r)
	}
	if m.Operation == nil {
		if h.matcher.RewriteNamesOperation(method, header) {
			return h.refuseNearMiss(w, r)
		}
		return next.ServeHTTP(w, r)
	}
	if s := h.store; s != nil {
		// A reload that changes the store's settings cleans this handler
		// up while the old server still serves the requests it took in,
		// which may come to the store much later (a body still on its
		// way): the store stays open until the request has made its last
		// store call (renewed its keys, recorded its answer). Closed
		// under it, the request would go on without it with on_error
		// open, a repeat of a request the store holds delivered again.
		s.hold()
		defer s.unhold()
	}
	if ps := h.poolSet; ps != nil {
		// The same for the pools, whose HTTP/3 transport would close
		// the connection of a request still at the pool.
		ps.hold()
		defer ps.unhold()
	}
	var in intake // on the stack: no allocation of its own
	in.start(r, header, query, m)
	defer in.release()
	if h.auditing() {
		w = in.startAudit(h, w)
		// The error of the next handler (no pools) is answered by Caddy
		// once this returns: its status is the one the line needs.
		defer h.writeAudit(&in, &err)
	}
	if !h.authorize(w, &in) {
		in.unauthorized = true
		return nil
	}
	in.authorized()
	if e := h.accept(&in); e != nil {
		return h.fail(w, &in, e)
	}
	if e := h.barredSinceReload(&in); e != nil {
		return h.fail(w, &in, e)
	}
	if h.refuseUnaudited(w, &in) {
		return nil
	}
	return h.deliverOnce(w, r, next, &in)
}

// accept checks the request's framing and the headers a pool might read
// beyond the edge's checks (a web ticket, a body in a Data header, a
// cookie named like a phone destination), reads the body (within
// max_body_size) and runs the protocol's steps on the request through
// ucwa's Intake, which the pool emulator shares: method, media type and
// encoding, decoding, the strict query, and cleaning (validation and
// number normalization). It leaves what to forward in in.
func (h *Handler) accept(in *intake) *ucwa.Error {
	r := in.r
	if r.TLS != nil && !r.TLS.HandshakeComplete || len(r.Header["Early-Data"]) > 0 {
		return errTooEarly
	}
	if e := checkFraming(in.header, r.Trailer); e != nil {
		return e
	}
	if in.header.HasWatched(webTicketHeader) {
		return errWebTicketHeader
	}
	if in.header.HasWatched(dataHeader) {
		return errDataHeader
	}
	if in.header.HasWatched(charsetHeader) {
		return errCharsetHeader
	}
	if in.query.AccessToken {
		return errQueryAccessToken
	}
	if strings.IndexByte(r.URL.RawQuery, '#') >= 0 {
		return errQueryFragment
	}
	if strings.IndexByte(r.URL.RawQuery, ' ') >= 0 {
		return errQuerySpace
	}
	if e := queryMethodOverride(in.query); e != nil {
		return e
	}
	if e := ucwa.PathParameterError(r.URL.Path); e != nil {
		return e
	}
	if e := ucwa.CookieDestination(r.Header); e != nil {
		return e
	}
	if e := h.readBody(in); e != nil {
		return e
	}
	if in.op.Body == ucwa.BatchBody {
		return h.acceptBatch(in)
	}
	cl, e := h.takeIn(in.op, ucwa.Incoming{Method: r.Method, Header: r.Header, RawQuery: r.URL.RawQuery, Body: in.buf.Bytes()})
	if e != nil {
		return e
	}
	in.cleaned = cl
	if e := h.judge(in, cl, 0); e != nil {
		return e
	}
	in.forward(cl.Body(), cl.RawQuery(), !cl.BodyChanged())
	return nil
}

// takeIn takes one request to op in through ucwa's Intake, then refuses
// it when phone_audio is disabled and op is phone audio: the pool would
// refuse it after its own checks, so the edge does too.
func (h *Handler) takeIn(op *ucwa.Operation, req ucwa.Incoming) (*ucwa.Cleaned, *ucwa.Error) {
	cl, e := h.cleaner.Intake(op, req)
	if e != nil {
		return nil, e
	}
	if h.phoneAudioOff[op] {
		cl.Release()
		return nil, errPhoneAudioDisabled
	}
	return cl, nil
}

// webTicketHeader is where Skype for Business's web services (Autodiscover,
// the address book, UCS) take a web ticket, beside Authorization. A UCWA
// client sends its credentials in Authorization, which the edge checks; a
// pool that read this header too could run the request as a user the edge
// never verified, with a web ticket that web_tickets reject refuses.
const webTicketHeader = ucwa.WebTicketHeader

// dataHeader is where Microsoft's batch.js sends a POST's body in a
// batched request, which the edge therefore reads as that request's body
// (see ucwa.ParseBatch). On a request alone, or on the batch itself, it
// would be a second body the edge forwards unread: a pool reading it as
// the body, as it reads a batched request's, would dial a number the edge
// never judged. No client sends one there.
const dataHeader = ucwa.DataHeader

// charsetHeader names the character set of a request from a WAP phone
// (User-Agent "UP..."): System.Web (HttpRequest.ContentEncoding) takes it
// before the Content-Type's charset, with a body or without one, and
// decodes the query in it (and a body read by ContentEncoding), where the
// edge reads UTF-8: in EBCDIC (ibm037) the bytes %A3%96, an unknown name
// to the edge, are "to". Refused whatever the User-Agent (.NET's prefix
// test is culture-sensitive): no UCWA client sends it.
const charsetHeader = ucwa.CharsetHeader

var (
	errCharsetHeader = ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeDeserializationFailure,
		"The request names a character set in x-up-devcap-post-charset; a request is read in UTF-8.")
	errDataHeader = ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeDeserializationFailure,
		"The request carries a body in a Data header, which only a batched request may; send the body as the request's body.")
	errWebTicketHeader = ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeDeserializationFailure,
		"The request carries a web ticket in X-MS-WebTicket; send credentials in Authorization only.")
	// A token in the query (RFC 6750 2.3) beside the one in Authorization:
	// a pool that read it could run the request as a user the edge never
	// verified, and the access log would record it with the URI.
	errQueryAccessToken = &ucwa.Error{Status: http.StatusBadRequest, Subcode: ucwa.SubcodeParameterValidationFailure,
		Message:    "The request carries an access token in its query (access_token); send the token in Authorization only.",
		Parameters: []ucwa.Parameter{{Name: ucwa.AccessTokenParameter, Reason: "is a credential; send it in Authorization"}}}
	// A request in TLS early data (HTTP/3 0-RTT, which Caddy accepts by
	// default), here or at a proxy in front that says so with Early-Data
	// (RFC 8470), can be replayed by anyone on the network path: each
	// replay would be delivered again. Answered 425 Too Early, a client
	// sends it again once its handshake is complete, and a replay, which
	// cannot complete one, never gets further.
	errTooEarly = ucwa.NewError(http.StatusTooEarly, "",
		"The request came in TLS early data, which can be replayed; send it again once the handshake is complete.")
	// A '#' begins a URL's fragment, which no request target holds: Go's
	// server leaves it in the query, where the edge reads it as part of a
	// value (operationId=a#b), and forwards it as it came, while a pool
	// that ends the URL there never gets the rest of the query.
	errQueryFragment = ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeDeserializationFailure,
		"The query holds '#', which begins a URL's fragment and has no place in a request; percent-encode it as %23.")
	// A body that could not be read to its end: cut short (before its
	// Content-Length, or by the client's reset), or failed by the server.
	errBodyIncomplete = ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeDeserializationFailure, "The body could not be read completely.")
	// A raw space, which an HTTP/2 or HTTP/3 request's :path may hold but
	// no HTTP/1.1 request line can (the space ends its target): the edge
	// forwards the query as it came, and the request line it wrote to
	// the pool would be malformed (?operationId=a b HTTP/1.1), refused
	// or broken off by the pool, and taken by the edge for a pool's
	// failure after the request may have reached it (502). Go's URL
	// parser refuses every other byte a request line cannot carry (the
	// control characters).
	errQuerySpace = ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeDeserializationFailure,
		"The query holds a raw space, which no request line can carry; percent-encode it as %20.")
	errPhoneAudioDisabled = ucwa.NewError(http.StatusForbidden, "", ucwa.MessagePhoneAudioNotInCapabilities)
	errNearMiss           = ucwa.NewError(http.StatusNotFound, "", "There is no resource at this path.")
)

// intake is a terminated request on its way through the steps.
type intake struct {
	r  *http.Request
	op *ucwa.Operation
	// r's header as read for the edge's header checks, and its query's
	// names; authorize, which comes between, leaves r's header and query
	// as they are.
	header ucwa.Header
	query  ucwa.QueryNames
	// The request path's canonical form, and the application id it
	// names, found once for the store keys, the inputs digest and the
	// audit line.
	path, application string
	// The token's grant; nil when no scopes are checked (jwt off, or a
	// web ticket forwarded to the pool).
	grant *grant
	// The format of an answer the edge gives itself.
	errFormat errorFormat
	// The WWW-Authenticate challenge of a 403 found after authorize (a
	// batch part's scopes), "" for none.
	challenge string

	buf *bodyBuffer // the body as read, recycled by release
	// bodyRead says the body was read to its end (see readBody).
	bodyRead bool

	// The request as ucwa's Intake cleaned it; nil for a batch, whose
	// guarded parts are in parts, cleaned one by one; batchOperations
	// counts the guarded parts met, max_batch_operations' count.
	cleaned         *ucwa.Cleaned
	parts           []cleanedPart
	batchOperations int

	// What to forward: the body, the query, and whether the body is the
	// buffer's own bytes.
	body      []byte
	rawQuery  string
	bodyInBuf bool

	// What a batch's parts bring to the velocity limits; a request that
	// is no batch has its usage read from cleaned.
	usage limitUsage
	// overLimit names the first limit an emergency call was delivered
	// over, for the audit trail.
	overLimit string
	// limitsTaken is when the limits were asked for the request's events
	// (a moment before they took them), for refundLimits.
	limitsTaken time.Time
	// Room for the limits' takes (see checkLimits), which are the
	// request's until it is answered: the intake is on the stack, and
	// the store, called by its concrete type (see storeUse.allowAll),
	// keeps them not.
	takes [4]store.Take
	// What guarded the request, for the audit trail: the destination
	// policy's decision on the request (see judge), and the guard that
	// refused it, "" for none: "destinations:<rule>" for the destination
	// policy, "limit:<name>" for a velocity limit.
	policy    ucwa.Decision
	refusedBy string

	// The answer the edge gave itself, nil for none or one of authorize
	// but a barred caller's; unauthorized: authorize answered (401 or
	// 403).
	failure      *ucwa.Error
	unauthorized bool
	// What idempotency did, plus one (0: nothing); reservationLost: a
	// key of the request no longer held its reservation when the request
	// ended (see writeBack).
	idempotency     idempotencyResult
	reservationLost bool
	// nextReturned: the next handler (no pools) returned rather than
	// panicked, and net/http answers 200 for it if it wrote nothing.
	nextReturned bool
	// goneUnsent: the client went away before any pool had the request,
	// which reverse_proxy answered 499 all the same: the audit line says
	// 0, as for a client gone before deliver (see writeAudit).
	goneUnsent bool

	// The audit trail (see startAudit): the record of an audited request
	// and the recorder of its answer's status (the record's, shared with
	// idempotency); stopped: the stop took the request's line, and writes
	// it from the record (see writeAudit).
	audit   *auditRecord
	rec     *answerRecorder
	stopped bool
}

// cleanedPart is a guarded part of a batch, cleaned.
type cleanedPart struct {
	index   int    // its position in the batch, from 1
	path    string // the part's path as the pool reads it (decoded); it may be relative
	cleaned *ucwa.Cleaned
}

// start sets in up for r, a request to m's operation, with its header
// read as header.
func (in *intake) start(r *http.Request, header ucwa.Header, query ucwa.QueryNames, m ucwa.Match) {
	in.r, in.op, in.header, in.query = r, m.Operation, header, query
	in.path, in.application = m.Path, ucwa.CanonicalApplicationID(m.Path)
	in.errFormat = errorFormat{ucwa.RequestFormat(headerValue(r.Header, "Content-Type")), r}
}

// forward records what to forward.
func (in *intake) forward(body []byte, rawQuery string, bodyInBuf bool) {
	in.body, in.rawQuery, in.bodyInBuf = body, rawQuery, bodyInBuf
}

// readBody reads the whole body into a recycled buffer, refusing one over
// max_body_size without reading past the limit.
func (h *Handler) readBody(in *intake) *ucwa.Error {
	r := in.r
	if r.ContentLength > h.MaxBodySize {
		return tooLarge(h.MaxBodySize)
	}
	buf := bodyBuffers.Get().(*bodyBuffer)
	in.buf = buf
	if r.ContentLength > 0 {
		// One allocation for a body of known length and room to read EOF;
		// a larger one grows as it arrives, so that a length alone never
		// costs memory.
		buf.Grow(int(min(r.ContentLength, DefaultMaxBodySize)) + bytes.MinRead)
	}
	buf.limit = io.LimitedReader{R: r.Body, N: h.MaxBodySize + 1}
	defer func() { buf.limit.R = nil }() // not kept past the request
	n, err := buf.ReadFrom(&buf.limit)
	if n > h.MaxBodySize {
		return tooLarge(h.MaxBodySize)
	}
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			// A handler before the edge bounds the body lower than
			// max_body_size (request_body's max_size): the client is
			// told the bound that refused it.
			return tooLarge(maxErr.Limit)
		}
		if isReadTimeout(err) {
			return errBodyTimeout
		}
		return errBodyIncomplete
	}
	if !lengthAsDeclared(r, n) {
		return errBodyIncomplete
	}
	in.bodyRead = true
	return nil
}

// lengthAsDeclared reports whether a body read whole, n bytes, is as
// long as r declared. net/http's HTTP/1.1 server fails the read of a body
// that ends before its Content-Length, and its HTTP/2 server that of a
// body that ends in a DATA frame; but quic-go's HTTP/3 server checks only
// a body longer than its Content-Length, ending a shorter one at the
// client's FIN as if it were whole, and Go 1.26's HTTP/2 server takes
// HEADERS that end the stream as a request without a body (ContentLength
// 0) whatever their content-length field says, which is read there
// alone: elsewhere ContentLength is the server's reading of it, or the
// length of a body a handler before the edge set (request_body's set).
// Go 1.26's HTTP/2 server also reads the first content-length field
// alone, where the HTTP/1.1 server and quic-go's refuse fields that
// disagree: a body of the first's length passed there, though a second
// field declared another. (Go 1.27's resets both kinds of stream itself.)
// Such a request is malformed (RFC 9113 8.1.1, RFC 9114 4.1.2),
// and an intermediary must not forward it: it is not the request the
// client sent.
func lengthAsDeclared(r *http.Request, n int64) bool {
	if r.ContentLength >= 0 && n != r.ContentLength {
		return false
	}
	if r.ProtoMajor == 2 {
		// Every field says what the first does, and 0 when the HEADERS
		// ended the stream (n is 0 then, and the first was not read).
		fields := r.Header["Content-Length"]
		for i, v := range fields {
			d, err := strconv.ParseUint(textproto.TrimString(v), 10, 63)
			if err != nil || n == 0 && d != 0 || i > 0 && textproto.TrimString(v) != textproto.TrimString(fields[0]) {
				return false
			}
		}
	}
	return true
}

// closeUnreadBody has an HTTP/1 answer given before the request's body
// was read to its end close the connection. Otherwise net/http, finding
// the body wrapped (Caddy's read timeouts wrap it), reads up to 256 KiB
// of the rest before it writes the answer: a client that waits for the
// answer before sending its body (Expect: 100-continue, which that read
// also answers 100 Continue, asking for the body the edge refused) gets
// nothing until the server's read timeout passes, a minute by default.
func closeUnreadBody(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
}

// tooLarge is the refusal of a body longer than limit bytes.
func tooLarge(limit int64) *ucwa.Error {
	return ucwa.NewError(http.StatusRequestEntityTooLarge, ucwa.SubcodeEntityTooLarge,
		"The body is larger than "+strconv.FormatInt(limit, 10)+" bytes.")
}

// rebuild makes r the request to forward, with the cleaned query and
// body, framed by Content-Length, without trailers or Expect (the edge
// has read the whole body), and returns the body, which deliver gives
// each attempt (or the next handler) as a reader of its own.
func (in *intake) rebuild() []byte {
	r := in.r
	if in.rawQuery != r.URL.RawQuery {
		r.URL.RawQuery = in.rawQuery
		r.RequestURI = r.URL.RequestURI()
	}
	// The proxy may still be writing the body after ServeHTTP returns
	// (net/http closes a request body in its own time), and the buffer is
	// recycled then: a body that is the buffer's own bytes goes out as a
	// copy of its own size.
	if in.bodyInBuf {
		in.body, in.bodyInBuf = bytes.Clone(in.body), false
	}
	r.ContentLength = int64(len(in.body))
	setContentLength(r.Header, len(in.body))
	r.TransferEncoding = nil
	r.Trailer = nil
	delete(r.Header, "Expect")
	// Go's transport replays a written POST after a kept-alive connection
	// dies when it can rewind the body (GetBody) and the request says it
	// is idempotent (an Idempotency-Key header); a request without a body
	// needs no rewinding. Either replay could ring a phone twice, and no
	// pool reads those headers.
	r.GetBody = nil
	stripReplayHeaders(r.Header)
	return in.body
}

// stripReplayHeaders deletes from h the headers with which a request
// tells Go's transport that it may be sent again (Request.isReplayable).
func stripReplayHeaders(h http.Header) {
	delete(h, "Idempotency-Key")
	delete(h, "X-Idempotency-Key")
}

// setContentLength sets h's Content-Length to n. The request's own
// header, which the server read, is written in place, and left as it is
// when it already says n: neither costs an allocation.
func setContentLength(h http.Header, n int) {
	v := h["Content-Length"]
	if len(v) != 1 {
		h.Set("Content-Length", strconv.Itoa(n))
		return
	}
	var digits [20]byte
	if string(strconv.AppendInt(digits[:0], int64(n), 10)) != v[0] {
		v[0] = strconv.Itoa(n)
	}
}

// release recycles the body buffer, the audit record and the cleaned
// requests, once the request is answered and its audit line written.
// Those of a request whose line the stop took are left to the garbage
// collector: the stop may still be writing the line from them.
func (in *intake) release() {
	if in.stopped {
		return
	}
	if buf := in.buf; buf != nil && buf.Cap() <= maxRecycledBuffer {
		buf.Reset()
		bodyBuffers.Put(buf)
	}
	in.releaseRecord()
	if in.cleaned != nil {
		in.cleaned.Release()
		in.cleaned = nil
	}
	for i := range in.parts {
		in.parts[i].cleaned.Release()
		in.parts[i].cleaned = nil
	}
}

// fail answers a request the edge refuses, and logs why.
func (h *Handler) fail(w http.ResponseWriter, in *intake, e *ucwa.Error) error {
	if in.challenge != "" {
		w.Header().Set("WWW-Authenticate", in.challenge)
	}
	in.failure = e
	if !in.bodyRead {
		closeUnreadBody(w, in.r)
	}
	h.logRejection(in.r, in.op.Rel, e)
	e.Write(w, in.errFormat.get())
	return nil
}

// setRetryAfter sets h's Retry-After to d in whole seconds, rounded up,
// and at least 1: a Retry-After of 0 would have a client that honours it
// send the request again at once, and again.
func setRetryAfter(h http.Header, d time.Duration) {
	secs := d / time.Second
	if d%time.Second != 0 {
		secs++
	}
	h.Set("Retry-After", strconv.FormatInt(int64(max(secs, 1)), 10))
}

// refuseNearMiss answers 404 to a request whose path spells a guarded
// operation with something added, which a pool might still route to it.
func (h *Handler) refuseNearMiss(w http.ResponseWriter, r *http.Request) error {
	var started time.Time
	audit := h.auditing()
	if audit {
		started = time.Now()
	}
	h.logRejection(r, "", errNearMiss)
	closeUnreadBody(w, r)
	errNearMiss.Write(w, errorFormat{ucwa.RequestFormat(r.Header.Get("Content-Type")), r}.get())
	if audit {
		h.auditNearMiss(r, started)
	}
	return nil
}

// headerValue is h.Get(key) for a key in canonical form, which Get would
// check, and canonicalize, on every call.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// bodyBuffer is what a request body is read with: the buffer, and the
// reader that stops at the body limit (kept here so that it costs no
// allocation of its own).
type bodyBuffer struct {
	bytes.Buffer
	limit io.LimitedReader
}

// bodyBuffers recycles body buffers.
var bodyBuffers = sync.Pool{New: func() any { return new(bodyBuffer) }}

// maxRecycledBuffer is the largest body buffer kept for reuse: one per
// request in flight, each no larger than a default-size body.
const maxRecycledBuffer = DefaultMaxBodySize + bytes.MinRead

// errorFormat chooses the format of an answer the edge gives itself
// (from the request's Content-Type and Accept) only when it gives one:
// most requests pass and never need it.
type errorFormat struct {
	request ucwa.Format
	r       *http.Request
}

func (f errorFormat) get() ucwa.Format {
	return ucwa.ErrorFormat(f.request, f.r.Header.Get("Accept"))
}

// logRejection logs an answer the edge gave itself to a request of the
// operation rel ("" for a near miss), and puts its UCWA code and subcode
// on the request's access log line (ucwa_error). Property values are
// never logged (phone numbers are personal data), nor is the path, which
// may hold anything: the message names properties and rules only. A name
// is the client's to choose, though (a property "+19005551234" given
// twice is named so), so the message's long digit runs are masked as the
// audit trail's operation_id is.
func (h *Handler) logRejection(r *http.Request, rel string, e *ucwa.Error) {
	h.nameAnswer(r, e)
	if c := h.logger.Check(zap.DebugLevel, "request rejected at the edge"); c != nil {
		if rel == "" {
			rel = nearMissOperation
		}
		c.Write(zap.String("operation", rel), zap.Int("status", e.Status), zap.String("subcode", e.Subcode),
			zap.String("message", maskDigitRuns(e.Message)), zap.String("remote_ip", remoteIP(r)))
	}
}

// nameAnswer counts e, an answer the edge gives itself (a refusal at any
// step, the token's included, and the answers it gives for the pools), in
// caddy_ucwa_edge_answers_total, and puts its UCWA code and subcode on
// the access log line of r (ucwa_error).
func (h *Handler) nameAnswer(r *http.Request, e *ucwa.Error) {
	h.answers.count(e)
	if extra := accessLogFields(r); extra != nil {
		extra.Set(zap.String("ucwa_error", errorCode(e)))
	}
}

// accessLogFields returns the fields the access log line of r gets, or
// nil when its server keeps no access log: then no line carries them,
// and setting one (a sync.Map cleared, the field list searched) is work
// for nothing.
func accessLogFields(r *http.Request) *caddyhttp.ExtraLogFields {
	ctx := r.Context()
	if s, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); !ok || s.Logs == nil {
		return nil
	}
	extra, _ := ctx.Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields)
	return extra
}

func remoteIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok {
		return ip
	}
	// Caddy's server sets the variable on every request; a handler served
	// without it has the connection's address, whose port is no part of
	// the client's.
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// clientNetwork is whom a request without a caller counts for, in the
// limits' budget of the client address and its share of the memory
// store: its address (remoteIP), or over IPv6 the /64 of it ("2001:db8::/64").
// A host is given a /64 of its own and may take a new address of it for
// every request, at no cost: by address, each would be a new budget and
// a new share. An IPv4 address (also one mapped into IPv6) is itself, as
// remoteIP writes it.
func clientNetwork(r *http.Request) string { return addressNetwork(remoteIP(r)) }

// addressNetwork is clientNetwork of a request from the address ip.
func addressNetwork(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	switch {
	case addr.Is4():
		return ip
	case addr.Is4In6():
		return addr.Unmap().String()
	}
	p, err := addr.WithZone("").Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}
