// Package caddymodule is the Caddy glue of caddy-ucwa: the HTTP handler
// http.handlers.ucwa, which terminates UCWA startPhoneAudio requests at the
// edge, and its Caddyfile directive "ucwa".
package caddymodule

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("ucwa", parseCaddyfile)
	// Before reverse_proxy, so that `ucwa` in front of a user's own
	// reverse_proxy needs no `order` option.
	httpcaddyfile.RegisterDirectiveOrder("ucwa", httpcaddyfile.Before, "reverse_proxy")
}

// DefaultPaths are the path suffixes the handler terminates by default:
// the reference's startPhoneAudio link and the spelling a real pool hands
// out for the same link.
var DefaultPaths = []string{"/communication/startPhoneAudio", "/communication/phoneAudioInvitations"}

// DefaultMaxBodySize is the default limit of a request body: 64 KiB.
const DefaultMaxBodySize = 64 << 10

// maxMaxBodySize is the largest max_body_size accepted: 1 GiB.
const maxMaxBodySize = 1 << 30

// Handler terminates UCWA startPhoneAudio (call-via-work) requests before
// they reach a Skype for Business front-end pool: it checks the bearer
// token, reads and validates the JSON or XML body, normalizes phone numbers
// to E.164 and forwards the cleaned request. Bad input is answered with a
// UCWA error body. Requests on other paths pass to the next handler
// untouched.
type Handler struct {
	// Path suffixes that identify a startPhoneAudio request, matched
	// case-insensitively (pools run on IIS, which matches paths that way)
	// against the cleaned request path, after any prefix and application
	// id. Default: ["/communication/startPhoneAudio", "/communication/phoneAudioInvitations"].
	Paths []string `json:"paths,omitempty"`

	// The largest request body accepted, in bytes; larger bodies are
	// answered 413 EntityTooLarge without reading past the limit.
	// Default: 65536 (64 KiB).
	MaxBodySize int64 `json:"max_body_size,omitempty"`

	// The ISO 3166-1 region (such as "US") of phone numbers written
	// without a country code. Default: none, and such numbers are answered
	// 400 NormalizationFailed.
	DefaultRegion string `json:"default_region,omitempty"`

	// How normalized phone numbers are forwarded: "tel" for
	// "tel:+14255551234" or "e164" for "+14255551234". Default: "tel".
	NumberFormat string `json:"number_format,omitempty"`

	// Answer every startPhoneAudio request 403 Forbidden ("Phone audio is
	// not listed in the capabilities"), for pools where call-via-work is
	// turned off. Default: false.
	DisablePhoneAudio bool `json:"disable_phone_audio,omitempty"`

	authConfig
	poolsConfig

	paths   []string
	cleaner *ucwa.Cleaner
	logger  *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.ucwa",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets up the handler.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.MaxBodySize == 0 {
		h.MaxBodySize = DefaultMaxBodySize
	}
	h.paths = h.Paths
	if len(h.paths) == 0 {
		h.paths = DefaultPaths
	}
	format, err := ucwa.ParseNumberFormat(h.NumberFormat)
	if err != nil {
		return err
	}
	if h.cleaner, err = ucwa.NewCleaner(h.DefaultRegion, format); err != nil {
		return err
	}
	if err := h.provisionAuth(ctx); err != nil {
		return err
	}
	return h.provisionPools(ctx)
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	if h.MaxBodySize < 0 || h.MaxBodySize > maxMaxBodySize {
		return fmt.Errorf("max_body_size must be between 1 byte and 1GiB: %d", h.MaxBodySize)
	}
	for _, p := range h.paths {
		if !strings.HasPrefix(p, "/") || !strings.EqualFold(ucwa.CanonicalPath(p), p) {
			return fmt.Errorf("path suffix %q must start with / and be clean (no trailing /, no . or .. segments, ASCII)", p)
		}
	}
	return nil
}

// Cleanup releases what Provision set up.
func (h *Handler) Cleanup() error {
	return errors.Join(h.cleanupAuth(), h.cleanupPools())
}

// ServeHTTP terminates a startPhoneAudio request, or passes any other
// request to the next handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !h.terminates(r) {
		return next.ServeHTTP(w, r)
	}
	reqFormat, typeOK := ucwa.MediaFormat(r.Header.Get("Content-Type"))
	errFormat := errorFormat{reqFormat, r}
	fail := func(e *ucwa.Error) error {
		h.logRejection(r, e)
		e.Write(w, errFormat.get())
		return nil
	}

	if !h.authorize(w, r, errFormat) {
		return nil
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return fail(ucwa.NewError(http.StatusMethodNotAllowed, ucwa.SubcodeMethodNotAllowed,
			"startPhoneAudio accepts POST only, not "+r.Method+"."))
	}
	// One Content-Type, and a body that is not encoded: the pool must read
	// exactly the bytes the edge checked.
	if !typeOK || len(r.Header.Values("Content-Type")) > 1 {
		return fail(ucwa.NewError(http.StatusUnsupportedMediaType, ucwa.SubcodeUnsupportedMediaType,
			"The body must be application/json, application/xml or their UCWA (vnd.microsoft.com.ucwa) forms in UTF-8, with one Content-Type."))
	}
	if ce := r.Header.Values("Content-Encoding"); len(ce) > 1 || len(ce) == 1 && !strings.EqualFold(ce[0], "identity") {
		return fail(ucwa.NewError(http.StatusUnsupportedMediaType, ucwa.SubcodeUnsupportedMediaType,
			"The body must not be compressed or otherwise encoded (Content-Encoding)."))
	}
	buf := bodyBuffers.Get().(*bodyBuffer)
	recycle := true
	defer func() {
		if recycle && buf.Cap() <= maxRecycledBuffer {
			buf.Reset()
			bodyBuffers.Put(buf)
		}
	}()
	body, uerr := h.readBody(r, buf)
	if uerr != nil {
		return fail(uerr)
	}
	cleaned, uerr := h.cleaner.Intake(startPhoneAudioOperation, ucwa.Incoming{Method: r.Method, Header: r.Header, RawQuery: r.URL.RawQuery, Body: body})
	if uerr != nil {
		return fail(uerr)
	}
	if h.DisablePhoneAudio {
		return fail(ucwa.NewError(http.StatusForbidden, "", ucwa.MessagePhoneAudioNotInCapabilities))
	}

	if q := cleaned.RawQuery(); q != r.URL.RawQuery {
		r.URL.RawQuery = q
		r.RequestURI = r.URL.RequestURI()
	}
	// The proxy may still be writing the body after ServeHTTP returns
	// (net/http closes a request body in its own time). When nothing
	// changed, the forwarded body is buf's own bytes, so buf is left to
	// the garbage collector; otherwise the forwarded body is a new slice.
	body = cleaned.Body()
	recycle = cleaned.BodyChanged()
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

	return h.deliver(w, r, next, body, errFormat)
}

// startPhoneAudioOperation is the operation the handler terminates.
var startPhoneAudioOperation = ucwa.FindOperation(ucwa.DefaultOperations(), "startPhoneAudio")

// bodyReader is a request body over a byte slice; closing it does nothing.
// It is io.NopCloser(bytes.NewReader(b)) in one allocation.
type bodyReader struct{ bytes.Reader }

func (*bodyReader) Close() error { return nil }

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

// terminates reports whether r is a startPhoneAudio request. The pools
// run on IIS, which is lenient about paths, so the match is broader than
// what IIS would route: case-insensitive, with backslashes as slashes,
// ";params" cut from each segment, and trailing dots and spaces trimmed.
// A request that IIS might read as startPhoneAudio must not pass the edge
// unchecked through a fallback reverse_proxy.
func (h *Handler) terminates(r *http.Request) bool {
	p := ucwa.CanonicalPath(r.URL.Path)
	for _, suffix := range h.paths {
		if len(p) >= len(suffix) && strings.EqualFold(p[len(p)-len(suffix):], suffix) {
			return true
		}
	}
	return false
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

// readBody reads the whole body into buf, refusing one over MaxBodySize
// without reading past the limit.
func (h *Handler) readBody(r *http.Request, buf *bodyBuffer) ([]byte, *ucwa.Error) {
	if r.ContentLength > h.MaxBodySize {
		return nil, h.tooLarge()
	}
	buf.limit = io.LimitedReader{R: r.Body, N: h.MaxBodySize + 1}
	defer func() { buf.limit.R = nil }() // not kept past the request
	n, err := buf.ReadFrom(&buf.limit)
	if n > h.MaxBodySize {
		return nil, h.tooLarge()
	}
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, h.tooLarge()
		}
		return nil, ucwa.NewError(http.StatusBadRequest, ucwa.SubcodeDeserializationFailure, "The body could not be read completely.")
	}
	return buf.Bytes(), nil
}

func (h *Handler) tooLarge() *ucwa.Error {
	return ucwa.NewError(http.StatusRequestEntityTooLarge, ucwa.SubcodeEntityTooLarge,
		"The body is larger than "+strconv.FormatInt(h.MaxBodySize, 10)+" bytes.")
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

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
