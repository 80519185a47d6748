package caddymodule

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// ServeHTTP terminates a startPhoneAudio request, or passes any other
// request to the next handler. A terminated request goes through the
// intake's steps in order, and the first that fails answers it:
//
//  1. negotiate the formats (the body's, and that of the edge's own answers)
//  2. authorize: the bearer token and its scopes (401, 403)
//  3. accept the request as the protocol defines it (see accept)
//  4. check that phone audio is enabled (403)
//  5. rebuild the request to forward: the cleaned query and body
//  6. deliver it to the pools, or to the next handler, once per
//     operationId when idempotency is on (see deliverOnce)
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !h.terminates(r) {
		return next.ServeHTTP(w, r)
	}
	var in intake // on the stack: no allocation of its own
	in.negotiate(r)
	defer in.release()
	if !h.authorize(w, r, in.errFormat) {
		return nil
	}
	if e := h.accept(&in); e != nil {
		return h.fail(w, &in, e)
	}
	if h.DisablePhoneAudio {
		return h.fail(w, &in, errPhoneAudioDisabled)
	}
	return h.deliverOnce(w, r, next, &in)
}

// accept reads the body (within max_body_size) and runs the protocol's
// steps on the request through ucwa's Intake, which the pool emulator
// shares: method, media type and encoding, decoding, the strict query,
// and cleaning (validation and number normalization). It leaves the
// cleaned request in in.
func (h *Handler) accept(in *intake) *ucwa.Error {
	if e := h.readBody(in); e != nil {
		return e
	}
	var e *ucwa.Error
	in.cleaned, e = h.cleaner.Intake(startPhoneAudioOperation, ucwa.Incoming{
		Method: in.r.Method, Header: in.r.Header, RawQuery: in.r.URL.RawQuery, Body: in.buf.Bytes(),
	})
	return e
}

// startPhoneAudioOperation is the operation the handler terminates.
var startPhoneAudioOperation = ucwa.FindOperation(ucwa.DefaultOperations(), "startPhoneAudio")

var errPhoneAudioDisabled = ucwa.NewError(http.StatusForbidden, "", ucwa.MessagePhoneAudioNotInCapabilities)

// intake is a terminated request on its way through the steps.
type intake struct {
	r *http.Request
	// The body's format, when its Content-Type is one the edge reads.
	format ucwa.Format
	// The format of an answer the edge gives itself.
	errFormat errorFormat

	buf     *bodyBuffer   // the body as read, recycled by release
	cleaned *ucwa.Cleaned // the request to forward
}

// negotiate reads the formats from the headers.
func (in *intake) negotiate(r *http.Request) {
	in.r = r
	in.format, _ = ucwa.MediaFormat(r.Header.Get("Content-Type"))
	in.errFormat = errorFormat{in.format, r}
}

// readBody reads the whole body into a recycled buffer, refusing one over
// max_body_size without reading past the limit.
func (h *Handler) readBody(in *intake) *ucwa.Error {
	r := in.r
	if r.ContentLength > h.MaxBodySize {
		return h.tooLarge()
	}
	buf := bodyBuffers.Get().(*bodyBuffer)
	in.buf = buf
	buf.limit = io.LimitedReader{R: r.Body, N: h.MaxBodySize + 1}
	defer func() { buf.limit.R = nil }() // not kept past the request
	n, err := buf.ReadFrom(&buf.limit)
	if n > h.MaxBodySize {
		return h.tooLarge()
	}
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return h.tooLarge()
		}
		return ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeDeserializationFailure, "The body could not be read completely.")
	}
	return nil
}

func (h *Handler) tooLarge() *ucwa.Error {
	return ucwa.NewError(http.StatusRequestEntityTooLarge, ucwa.SubcodeEntityTooLarge,
		"The body is larger than "+strconv.FormatInt(h.MaxBodySize, 10)+" bytes.")
}

// rebuild makes r the request to forward, with the cleaned query and
// body, framed by Content-Length, and returns the body.
func (in *intake) rebuild() []byte {
	r := in.r
	if q := in.cleaned.RawQuery(); q != r.URL.RawQuery {
		r.URL.RawQuery = q
		r.RequestURI = r.URL.RequestURI()
	}
	// The proxy may still be writing the body after ServeHTTP returns
	// (net/http closes a request body in its own time). When nothing
	// changed, the forwarded body is the buffer's own bytes, so the buffer
	// is left to the garbage collector; otherwise the forwarded body is a
	// new slice and the buffer is recycled.
	body := in.cleaned.Body()
	if !in.cleaned.BodyChanged() {
		in.buf = nil
	}
	forwarded := new(bodyReader)
	forwarded.Reset(body)
	r.Body = forwarded
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	r.TransferEncoding = nil
	// No GetBody: with it, Go's transport may replay a written POST (one
	// with an Idempotency-Key header) after a kept-alive connection dies,
	// which could ring a phone twice.
	r.GetBody = nil
	return body
}

// release recycles the body buffer unless the forwarded body is its own.
func (in *intake) release() {
	if buf := in.buf; buf != nil && buf.Cap() <= maxRecycledBuffer {
		buf.Reset()
		bodyBuffers.Put(buf)
	}
}

// fail answers a request the edge refuses, and logs why.
func (h *Handler) fail(w http.ResponseWriter, in *intake, e *ucwa.Error) error {
	h.logRejection(in.r, e)
	e.Write(w, in.errFormat.get())
	return nil
}

// bodyReader is a request body over a byte slice; closing it does nothing.
// It is io.NopCloser(bytes.NewReader(b)) in one allocation.
type bodyReader struct{ bytes.Reader }

func (*bodyReader) Close() error { return nil }

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

// terminates reports whether r is a startPhoneAudio request, matched on
// the canonical path (see ucwa.CanonicalPath): a request that IIS might
// read as startPhoneAudio must not pass the edge unchecked through a
// fallback reverse_proxy.
func (h *Handler) terminates(r *http.Request) bool {
	p := ucwa.CanonicalPath(r.URL.Path)
	for _, suffix := range h.paths {
		if len(p) >= len(suffix) && strings.EqualFold(p[len(p)-len(suffix):], suffix) {
			return true
		}
	}
	return false
}

// logRejection logs an answer the edge gave itself, and puts its UCWA
// code and subcode on the request's access log line (ucwa_error). Property
// values are never logged: phone numbers are personal data.
func (h *Handler) logRejection(r *http.Request, e *ucwa.Error) {
	if extra, ok := r.Context().Value(caddyhttp.ExtraLogFieldsCtxKey).(*caddyhttp.ExtraLogFields); ok {
		extra.Set(zap.String("ucwa_error", strings.TrimSuffix(e.Code()+"/"+e.Subcode, "/")))
	}
	if c := h.logger.Check(zap.DebugLevel, "startPhoneAudio rejected at the edge"); c != nil {
		c.Write(zap.Int("status", e.Status), zap.String("subcode", e.Subcode),
			zap.String("message", e.Message), zap.String("remote_ip", remoteIP(r)))
	}
}

func remoteIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok {
		return ip
	}
	return r.RemoteAddr
}
