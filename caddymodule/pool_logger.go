package caddymodule

import (
	"reflect"
	"slices"
	"unsafe"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// On every round trip, reverse_proxy makes a logger With the upstream,
// the duration and the whole request (reverseproxy.go, "upstream
// roundtrip"), for debug lines that most servers never write; zap
// encodes those fields at once, whatever the level: about 28
// allocations, 1.6 KB and 5 µs per request to a pool. Caddy spares the
// same cost in its server and its rewrite handler with zap's WithLazy,
// not yet in reverse_proxy, and it gives a module no way to choose the
// logger a module it provisions gets. So once a pool's proxy is
// provisioned, the edge puts in its place the same logger with a core
// whose With is lazy: the fields are encoded when a line is written at a
// level some log takes (zapcore.NewLazyWith), and the lines are the
// same. A reverse_proxy without a field "logger" of type *zap.Logger (a
// Caddy whose reverse_proxy changed) keeps its own
// (TestPoolLoggerLazy fails then, to say so).

// proxyLoggerOffset is where reverse_proxy keeps its logger in
// reverseproxy.Handler; proxyLoggerFound is false when it has no field
// "logger" of type *zap.Logger of its own (a promoted field's offset is
// in the struct it comes from).
var proxyLoggerOffset, proxyLoggerFound = func() (uintptr, bool) {
	f, ok := reflect.TypeFor[reverseproxy.Handler]().FieldByName("logger")
	return f.Offset, ok && len(f.Index) == 1 && f.Type == reflect.TypeFor[*zap.Logger]()
}()

// The request reverse_proxy adds to its logger is the one it sends the
// pool, whose URI holds the request's cleaned query (?to=tel:+1425...),
// and whose Referer and X-MS-WebTicket headers come from the client: the
// lines its logger writes above debug level ("aborting with incomplete
// response" when a pool cuts its answer short, "reading from backend")
// go to Caddy's default log, which the sites' `log` filters do not
// filter. The edge's pools log it as the README's filters would have it:
// the URI's and Referer's numbers and property values hidden
// (redactURI), the web ticket dropped.

// makeProxyLoggerLazy gives h, provisioned, a logger whose With is lazy
// and redacts the request (see redactedRequest).
// It runs before the proxy serves, and Provision starts nothing that
// reads the field (the health checkers have loggers of their own).
func makeProxyLoggerLazy(h *reverseproxy.Handler) {
	if !proxyLoggerFound {
		return
	}
	l := (**zap.Logger)(unsafe.Add(unsafe.Pointer(h), proxyLoggerOffset))
	*l = (*l).WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return lazyWithCore{c} }))
}

// lazyWithCore is a core whose With encodes its fields only once a line
// is written through the core it returns.
type lazyWithCore struct{ zapcore.Core }

func (c lazyWithCore) With(fields []zapcore.Field) zapcore.Core {
	for i, f := range fields {
		if r, ok := f.Interface.(caddyhttp.LoggableHTTPRequest); ok && f.Type == zapcore.ObjectMarshalerType {
			fields = slices.Clone(fields)
			fields[i].Interface = redactedRequest{r}
		}
	}
	return zapcore.NewLazyWith(c.Core, fields)
}

// redactedRequest logs a request as caddyhttp.LoggableHTTPRequest does,
// with its URI and Referer as the ucwa_numbers filter logs them (see
// redactURI) and without X-MS-WebTicket, a credential.
type redactedRequest struct{ caddyhttp.LoggableHTTPRequest }

func (r redactedRequest) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	req := r.Request.Clone(r.Request.Context())
	req.RequestURI = redactURI(req.RequestURI)
	for i, v := range req.Header["Referer"] {
		req.Header["Referer"][i] = redactURI(v)
	}
	delete(req.Header, "X-Ms-Webticket")
	r.Request = req
	return r.LoggableHTTPRequest.MarshalLogObject(enc)
}
