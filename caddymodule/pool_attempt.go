package caddymodule

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// pool is one provisioned front-end pool.
type pool struct {
	name  string
	proxy *reverseproxy.Handler
	// hosts holds the lower-case host names of the pool's configured
	// upstreams: a Location pointing at one of them is rewritten.
	hosts map[string]bool
	// requests counts the pool's attempts by outcome, resolved once here
	// rather than looked up by label on every request.
	requests [numOutcomes]prometheus.Counter
	// The pool's name as the {http.ucwa.pool} value and the ucwa_pool
	// log field, made once rather than on every request.
	placeholder any
	logField    zap.Field
}

func newPool(name string, proxy *reverseproxy.Handler, requests *prometheus.CounterVec) *pool {
	hosts := make(map[string]bool, len(proxy.Upstreams))
	for _, u := range proxy.Upstreams {
		host, _, err := net.SplitHostPort(u.Dial)
		if err != nil {
			host = u.Dial // no port
		}
		hosts[strings.ToLower(host)] = true
	}
	pl := &pool{name: name, proxy: proxy, hosts: hosts, placeholder: name, logField: zap.String(logFieldPool, name)}
	for o := range numOutcomes {
		pl.requests[o] = requests.WithLabelValues(name, o.String())
	}
	return pl
}

// outcome is how one pool's attempt at a request ended.
type outcome uint8

const (
	// outcomeAnswered: the pool's answer (any status) went to the client.
	outcomeAnswered outcome = iota
	// outcomeUnavailable: the request certainly did not reach the pool
	// (no upstream available, or no connection made); another pool may
	// take it.
	outcomeUnavailable
	// outcomeFailed: the request may have reached the pool, which then
	// failed (reset, closed, bad answer) before answering.
	outcomeFailed
	// outcomeTimeout: the request may have reached the pool, which did
	// not answer in time.
	outcomeTimeout
	// outcomeClientGone: the client went away during the attempt.
	outcomeClientGone

	numOutcomes
)

// String is the outcome as the metrics' outcome label gives it.
func (o outcome) String() string {
	switch o {
	case outcomeAnswered:
		return "answered"
	case outcomeUnavailable:
		return "unavailable"
	case outcomeFailed:
		return "failed"
	case outcomeTimeout:
		return "timeout"
	case outcomeClientGone:
		return "client_gone"
	}
	return "unknown"
}

// statusClientClosed is what reverse_proxy writes when the client went
// away during the round trip.
const statusClientClosed = 499

// attemptResult is an outcome and the pool's error, if any.
type attemptResult struct {
	outcome outcome
	err     error
}

// attempt hands the request to the pool once, with a fresh reader on the
// cleaned body, and tells how that ended. Only an outcomeUnavailable
// attempt left nothing written to w.
func (pl *pool) attempt(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, body []byte) attemptResult {
	// What the attempt needs, in one allocation.
	st := new(struct {
		conn  connTrace
		trace httptrace.ClientTrace
		body  bodyReader
		rw    poolResponseWriter
	})
	st.conn.trace(&st.trace)
	req := r.WithContext(httptrace.WithClientTrace(r.Context(), &st.trace))
	st.body.Reset(body)
	req.Body = &st.body // r has no GetBody (see ServeHTTP): never replayed

	rw := &st.rw
	rw.init(w, r, pl)
	err := pl.proxy.ServeHTTP(rw, req, next)
	gone := r.Context().Err() != nil
	switch {
	case gone && (rw.status == 0 || rw.status == statusClientClosed):
		return attemptResult{outcomeClientGone, err}
	case rw.status != 0 || err == nil:
		return attemptResult{outcomeAnswered, err}
	case !st.conn.mayHaveReached(err):
		return attemptResult{outcomeUnavailable, err}
	case isTimeout(err):
		return attemptResult{outcomeTimeout, err}
	}
	return attemptResult{outcomeFailed, err}
}

// connTrace records, through net/http's client trace, whether the pool's
// transport asked for a connection for the request and whether it got
// one. net/http writes a request only on a connection it handed to it
// (GotConn), so a request whose transport asked for a connection and
// never got one was not written anywhere.
type connTrace struct {
	askedConn atomic.Bool
	gotConn   atomic.Bool
}

// trace sets t up to record into c.
func (c *connTrace) trace(t *httptrace.ClientTrace) {
	t.GetConn = func(string) { c.askedConn.Store(true) }
	t.GotConn = func(httptrace.GotConnInfo) { c.gotConn.Store(true) }
}

// mayHaveReached reports whether a byte of the request may have reached
// an upstream of the pool, given the pool's error. It says no only on
// facts: no connection ever handed to the request by net/http, a dial
// error (also for transports that do not trace), or reverse_proxy's 503
// for "no upstream available", which it gives before any round trip.
// Anything else may have reached the pool: a reset, a timeout, an error
// of a transport that does not trace.
func (c *connTrace) mayHaveReached(err error) bool {
	if c.gotConn.Load() {
		return true
	}
	if c.askedConn.Load() {
		return false
	}
	var dialErr reverseproxy.DialError
	if errors.As(err, &dialErr) {
		return false
	}
	var herr caddyhttp.HandlerError
	return !errors.As(err, &herr) || herr.StatusCode != http.StatusServiceUnavailable
}

// isTimeout reports whether err is a timeout (such as the transport's
// response_header_timeout), as reverse_proxy itself decides for its 504.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}
