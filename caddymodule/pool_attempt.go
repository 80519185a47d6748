package caddymodule

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// pool is one provisioned front-end pool.
type pool struct {
	name  string
	proxy *reverseproxy.Handler
	// hosts holds the lower-case host names of the configured upstreams
	// of the handler's pools, and those their dynamic upstream sources
	// look up (see sourceHosts): a Location pointing at one of them is
	// rewritten.
	hosts map[string]bool
	// reportsWrites: the pool's transport is net/http's, which reports
	// the end of every request write (see connTrace), and calls
	// reportOutgoing before it asks for a connection.
	reportsWrites bool
	// hooksOnSend: the pool's transport is net/http's and speaks no
	// HTTP/2 (see hooksOnSend), so every round trip passes
	// reportOutgoing, which sets the attempt's trace hooks on the round
	// trip's client trace (see connTrace.hookInto).
	hooksOnSend bool
	// stopsResends: the pool's transport is net/http's and may speak
	// HTTP/2, whose transport sends a request again by itself, on a
	// connection it holds, without asking reportOutgoing: each attempt's
	// request gets a Cancel channel, which the attempt closes when such
	// a send would repeat a request written whole (see
	// connTrace.stopResend).
	stopsResends bool
	// plainHTTP2: the pool's transport speaks HTTP/2 on connections
	// without TLS (h2c); over TLS, a connection speaks it when its ALPN
	// chose h2 (see connTrace.http2).
	plainHTTP2 bool
	// requests counts the pool's attempts by outcome, resolved once here
	// rather than looked up by label on every request.
	requests [numOutcomes]prometheus.Counter
	// The pool's name as the {http.ucwa.pool} value and the ucwa_pool
	// log field, made once rather than on every request.
	placeholder any
	logField    zap.Field
	// expect: requests with a body carry Expect: 100-continue on a new
	// connection and on one idle for expectAfterIdle or longer (0: on
	// every connection); see pool_expect.go.
	expect          bool
	expectAfterIdle time.Duration
	// set is the PoolSet that provisioned the pool's proxy, told of the
	// HTTP/2 connections requests end on (see PoolSet.endedOn).
	set *PoolSet
	// stallBound, when not 0, is how long an attempt on a pool that may
	// speak HTTP/2 waits for the pool's answer once it is handed an
	// HTTP/2 connection: the transport's response_header_timeout plus its
	// expect_continue_timeout. Go's HTTP/2 client starts its response
	// header timer only once the body went out, which a pool that grants
	// the stream no flow-control window holds back for ever (over
	// HTTP/1.1 the kernel's socket buffers take a body of the default
	// max_body_size, whether the pool reads it or not).
	stallBound time.Duration
	// selection is the proxy's selection policy, wrapped (see
	// untriedSelection).
	selection untriedSelection
}

func newPool(name string, proxy *reverseproxy.Handler, requests *prometheus.CounterVec, expect bool, expectAfterIdle time.Duration) *pool {
	hosts := make(map[string]bool, len(proxy.Upstreams))
	for _, u := range proxy.Upstreams {
		host, _, err := net.SplitHostPort(u.Dial)
		if err != nil {
			host = u.Dial // no port
		}
		hosts[strings.ToLower(host)] = true
	}
	writes, onSend := reportsWrites(proxy.Transport), hooksOnSend(proxy.Transport)
	pl := &pool{name: name, proxy: proxy, hosts: hosts,
		reportsWrites: writes, hooksOnSend: onSend, stopsResends: writes && !onSend,
		plainHTTP2:  writes && speaksPlainHTTP2(proxy.Transport),
		placeholder: name, logField: zap.String(logFieldPool, name),
		expect: expect, expectAfterIdle: expectAfterIdle, selection: wrapSelection(proxy)}
	if ht, ok := poolHTTPTransport(proxy.Transport); ok && pl.stopsResends && ht.ResponseHeaderTimeout > 0 {
		pl.stallBound = time.Duration(ht.ResponseHeaderTimeout) + time.Duration(ht.ExpectContinueTimeout)
	}
	for o := range numOutcomes {
		pl.requests[o] = requests.WithLabelValues(name, o.String())
	}
	return pl
}

// reportsWrites reports whether a pool's provisioned transport is
// net/http's: reverse_proxy's http transport (in a poolTransport once
// loadPoolTransport wrapped it), unless it speaks HTTP/3 (another
// client, whose trace the edge does not rely on).
func reportsWrites(rt http.RoundTripper) bool {
	ht, ok := poolHTTPTransport(rt)
	return ok && ht.Transport != nil && !slices.Contains(ht.Versions, "3")
}

// hooksOnSend reports whether every request a pool's provisioned
// transport sends passes reportOutgoing before the transport asks for a
// connection for it, on the goroutine that then asks, with the client
// trace the transport reads in its context: net/http's transport, as
// reportsWrites, that cannot speak HTTP/2. One that speaks HTTP/2 hands a
// request to an HTTP/2 connection it holds without asking Proxy (the
// alternate "https" round tripper that configuring HTTP/2 registers).
// It may speak HTTP/2 when HTTP/2 was configured on it (reverse_proxy's
// versions 2: TLSNextProto with Go 1.26, Protocols with Go 1.27), its
// Protocols are set (versions h2c), it is forced to try, or it has no
// dialer of its own, with which net/http turns HTTP/2 on by itself;
// reverse_proxy's versions 1.1 leaves it none of these.
//
// The transport finishes setting HTTP/2 up on its first use (Go 1.27
// writes TLSNextProto then), which the proxy's health checker may be
// making as the pool is set up: Clone runs that setup first, under the
// transport's own sync.Once, so that the fields read here are final.
func hooksOnSend(rt http.RoundTripper) bool {
	if !reportsWrites(rt) {
		return false
	}
	ht, _ := poolHTTPTransport(rt)
	t := ht.Transport
	_ = t.Clone()
	return t.TLSNextProto == nil && t.Protocols == nil && !t.ForceAttemptHTTP2 && t.DialContext != nil
}

// speaksPlainHTTP2 reports whether a pool's provisioned transport rt,
// net/http's (see reportsWrites), speaks HTTP/2 on connections without
// TLS (reverse_proxy's versions h2c), which it does only when its
// Protocols allow unencrypted HTTP/2.
func speaksPlainHTTP2(rt http.RoundTripper) bool {
	ht, _ := poolHTTPTransport(rt)
	t := ht.Transport
	return t.Protocols != nil && t.Protocols.UnencryptedHTTP2()
}

// outcome is how one pool's attempt at a request ended.
type outcome uint8

const (
	// outcomeAnswered: the pool's answer (any status) went to the client
	// whole.
	outcomeAnswered outcome = iota
	// outcomeUnavailable: the request certainly did not reach the pool
	// (no upstream available, no connection made, or the request not
	// written whole on a new connection); another pool may take it.
	outcomeUnavailable
	// outcomeStale: the request certainly did not reach the pool: the
	// kept-alive connection it was given ended (the pool closed it while
	// it was idle) before the pool asked for the body or the request was
	// written whole. A new connection of the same pool may take it.
	outcomeStale
	// outcomeFailed: the request may have reached the pool, which then
	// failed (reset, closed, bad answer) before answering.
	outcomeFailed
	// outcomeTimeout: the request may have reached the pool, which did
	// not answer in time.
	outcomeTimeout
	// outcomeClientGone: the client went away during the attempt
	// (before the request reached the pool when attemptResult.unsent).
	outcomeClientGone
	// outcomeCutShort: the pool's answer could not be passed on whole
	// once it began to, and the client's connection was cut (see
	// Handler.attempt); never an attempt's result, only counted.
	outcomeCutShort

	numOutcomes
)

// String is the outcome as the metrics' outcome label gives it.
func (o outcome) String() string {
	switch o {
	case outcomeAnswered:
		return "answered"
	case outcomeUnavailable:
		return "unavailable"
	case outcomeStale:
		return "stale_connection"
	case outcomeFailed:
		return "failed"
	case outcomeTimeout:
		return "timeout"
	case outcomeClientGone:
		return "client_gone"
	case outcomeCutShort:
		return "cut_short"
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
	// unsent: an outcomeClientGone attempt certainly did not reach the
	// pool, by the facts that let another pool take a request.
	unsent bool
	// tried names the pool's upstreams that this attempt and those
	// before it chose and that certainly did not get the request;
	// untried, after an outcomeUnavailable or outcomeStale attempt that
	// chose one, that the pool has another available upstream (see
	// untriedSelection and Handler.attemptPool).
	tried   []string
	untried bool
	// seen is the pool the attempt's selection last chose among (nil
	// when it was not asked): the configured upstreams, or those of the
	// lookup of a pool's dynamic_upstreams, which are new at each
	// request (see upstreamOnlyFull).
	seen reverseproxy.UpstreamPool
}

// attempt hands the request to the pool once, with a fresh reader on the
// cleaned body, and tells how that ended; headActs: the pool may act on
// the request's head alone (see attemptState.unsent); tried: the
// upstreams earlier attempts chose, which did not get it, and which this
// one leaves out; earlier: the upstreams the request's attempts at the
// pools before this one chose among (see poolResponseWriter.lookedUp).
// Only an outcomeUnavailable or outcomeStale attempt left nothing
// written to w.
func (pl *pool) attempt(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, body []byte, headActs bool, tried []string, earlier []reverseproxy.UpstreamPool) attemptResult {
	// What the attempt needs, in one allocation. On a pool whose hooks
	// are set on send, the attempt's connTrace and its hooks come made
	// from hookedConnTraces, and go back once no hook can be called any
	// more (see hookedConnTrace.quiet); else they are the attempt's own,
	// in a tracedAttemptState (the default pool's attempt does without
	// their room: 704 bytes a request rather than 1024).
	var st *attemptState
	var hooked *hookedConnTrace
	var trace *httptrace.ClientTrace
	if pl.hooksOnSend {
		st = new(attemptState)
		hooked = hookedConnTraces.Get().(*hookedConnTrace)
		st.conn = &hooked.connTrace
	} else {
		traced := new(tracedAttemptState)
		st, trace = &traced.attemptState, &traced.trace
		st.conn = &traced.ownConn
		st.conn.trace(trace, !pl.reportsWrites)
	}
	st.conn.expect, st.conn.expectAfterIdle = pl.expect && len(body) > 0, pl.expectAfterIdle
	st.conn.mayBeHTTP2, st.conn.plainHTTP2 = pl.stopsResends, pl.plainHTTP2
	// The attempt gets its own copy of the request's variables, which
	// reverse_proxy writes, and hands back what it set in it once it is
	// over: a connection the transport went on dialing for it, after it
	// was given another one, reads the copy later, while a next attempt
	// or the rest of the request changes the request's own. On a pool
	// whose transport is net/http's, whose dials loadPoolTransport guards
	// (see guardDial), the copy is a recycled map, which goes back once
	// no dial reads it (see releaseVars).
	vars, _ := r.Context().Value(caddyhttp.VarsCtxKey).(map[string]any)
	st.ctx.Context, st.ctx.conn, st.ctx.attempt = r.Context(), st.conn, st
	st.ctx.tried, st.ctx.picks = tried, st.ctx.pickBuf[:0]
	if vars != nil {
		if pl.reportsWrites {
			st.ctx.vars, st.ctx.recycledVars = attemptVarMaps.Get().(map[string]any), true
			maps.Copy(st.ctx.vars, vars)
		} else {
			st.ctx.vars = maps.Clone(vars)
		}
	}
	// The hooks go into the client trace reverse_proxy makes for each
	// round trip: set on it by reportOutgoing where every round trip
	// passes there, else composed into it by reverse_proxy, from the
	// attempt's context (httptrace's composition copies a trace's hooks
	// by reflection, field by field, on every round trip).
	var ctx context.Context = &st.ctx
	if trace != nil {
		ctx = st.ctx.withTrace(trace)
	}
	// WithContext's copy of r, copied into st: the compiler keeps the copy
	// WithContext makes, which goes no further, off the heap.
	st.req = *r.WithContext(ctx)
	req := &st.req
	st.body.Reset(body)
	st.headActs = headActs
	req.Body = &st.body // r has no GetBody (see ServeHTTP): never replayed
	st.ctx.body = &st.body
	if pl.stopsResends {
		st.conn.resend = make(chan struct{})
		// Request.Cancel, deprecated for the context, is what stops one
		// send of a request and not the round trip: net/http's HTTP/2
		// transport checks it before it writes a request's headers, on
		// each send (see connTrace.stopResend).
		req.Cancel = st.conn.resend //lint:ignore SA1019 see above
	}

	rw := &st.rw
	rw.init(w, r, pl)
	rw.seen, rw.earlier = &st.ctx.seen, earlier
	var cancel context.CancelFunc
	if pl.stallBound > 0 {
		// The attempt's own context ends once stallBound passed without
		// the pool's answer (see pool.stallBound): the clock starts when
		// the request is handed an HTTP/2 connection (the dial is bounded
		// by its own timeout; see connTrace.onGotConn), and the answer's
		// header stops it (see poolTransport.RoundTrip).
		st.ctx.Context, cancel = context.WithCancel(r.Context())
		st.conn.stall = time.AfterFunc(pl.stallBound, func() {
			rw.stalled.Store(true)
			cancel()
		})
		st.conn.stall.Stop()
		st.conn.stallBound = pl.stallBound
	}
	// A batch answer held when reverse_proxy ends it short (it panics)
	// goes out as it came, as it would have without the hold.
	defer rw.passBatch(true)
	err := pl.proxy.ServeHTTP(rw, req, next)
	rw.endBatch()
	if cancel != nil {
		st.conn.stall.Stop()
		cancel()
	}
	if conn := st.conn.http2Conn.Load(); conn != nil && pl.set != nil {
		pl.set.endedOn(conn)
	}
	maps.Copy(vars, st.ctx.vars)
	res := st.result(r, err, pl.reportsWrites)
	res.tried, res.seen = tried, st.ctx.seen
	if (res.outcome == outcomeUnavailable || res.outcome == outcomeStale) && len(st.ctx.picks) > 0 {
		res.tried = append(slices.Clip(tried), st.ctx.picks...)
		res.untried = pl.selection.untriedAvailable(st.ctx.seen, res.tried)
	}
	// Neither is recycled when reverse_proxy panics (an answer cut
	// short): the request's write may not have ended, nor its dials.
	if hooked != nil && hooked.quiet() {
		hooked.recycle()
	}
	if st.ctx.recycledVars {
		st.ctx.releaseVars()
	}
	return res
}

// result tells how the attempt ended, once reverse_proxy returned err.
func (st *attemptState) result(r *http.Request, err error, reportsWrites bool) attemptResult {
	rw := &st.rw
	if rw.staleErr != nil {
		// The transport told reverse_proxy otherwise (see
		// poolTransport.RoundTrip).
		err = rw.staleErr
	}
	gone := r.Context().Err() != nil
	switch {
	case gone && (rw.status == 0 || rw.status == statusClientClosed):
		// The client went away (reverse_proxy reports no error then, but
		// writes 499). It went before the request reached the pool (while
		// a connection was being dialed, say) when the facts say so.
		return attemptResult{outcome: outcomeClientGone, err: err, unsent: st.goneUnsent(err, reportsWrites)}
	case rw.staleErr != nil:
		return attemptResult{outcome: outcomeStale, err: err}
	case rw.status != 0:
		return attemptResult{outcome: outcomeAnswered, err: err}
	case rw.stalled.Load():
		// The pool took too long to take the request or answer it (see
		// pool.stallBound). Its stream was reset while the transport's
		// writer may still have been sending the body's last frame: it
		// may have reached the pool whole, unless its write is known to
		// have ended short of that, as for a client gone.
		if st.goneUnsent(err, reportsWrites) {
			return attemptResult{outcome: outcomeUnavailable, err: errPoolStalled}
		}
		return attemptResult{outcome: outcomeTimeout, err: errPoolStalled}
	case err == nil:
		// reverse_proxy wrote no answer and reported no error: a 101
		// Switching Protocols to a request that asked for no upgrade,
		// which it drops. The pool had the request, and its answer
		// cannot be passed on: net/http would answer an empty 200.
		return attemptResult{outcome: outcomeFailed, err: errNoFinalAnswer}
	case st.conn.resendStopped.Load():
		// The pool's HTTP/2 transport went to send again a request it
		// had written whole (the pool refused its stream after the fact,
		// say), and was stopped: the pool may have it.
		return attemptResult{outcome: outcomeFailed, err: errSentAlready}
	case st.unsent(err, reportsWrites):
		if st.staleUnsent(err, reportsWrites) {
			return attemptResult{outcome: outcomeStale, err: err}
		}
		return attemptResult{outcome: outcomeUnavailable, err: err}
	case isTimeout(err):
		return attemptResult{outcome: outcomeTimeout, err: err}
	}
	return attemptResult{outcome: outcomeFailed, err: err}
}

// attemptState is what an attempt needs, in one allocation.
type attemptState struct {
	// conn is the attempt's connTrace: a hookedConnTrace's, or a
	// tracedAttemptState's own (see attempt).
	conn *connTrace
	body bodyReader
	// headActs: the request's inputs are (also) in its query, which a
	// pool may act on with the head alone (see unsent).
	headActs bool
	rw       poolResponseWriter
	ctx      attemptContext
	req      http.Request
}

// tracedAttemptState is the state of an attempt whose connTrace is its
// own, with the hooks in trace: on a pool whose hooks are composed into
// reverse_proxy's trace rather than set on send.
type tracedAttemptState struct {
	attemptState
	ownConn connTrace
	trace   httptrace.ClientTrace
}

// unsent reports whether the attempt's request, which the pool did not
// answer (err is the pool's error, if any), certainly did not reach the
// pool whole: its body was not read whole, or the facts of mayHaveReached
// say so. The body is read only to be written: bytes left in it never
// went out (and no one else holds them: there is no GetBody). It is read
// here only once the round trip failed or the client went away: net/http
// returns from such a round trip once it is done writing the request,
// where after an answer it may still be writing the body. quic-go may
// still be writing it then: the body is stopped as what is left of it is
// read (see bodyReader.stop), so that what is counted here as never sent
// never goes out.
//
// A body read whole on a connection that speaks HTTP/2 may have reached
// the pool whatever the write's end says: Go's HTTP/2 transports end a
// request whose Trailer is not nil (reverse_proxy gives every request
// with a body an empty one) with a DATA frame of its own after the body,
// and report the write ended in error when the stream or connection
// ended before that frame went out, though the body's last byte had; a
// pool that acts on a request once it has its Content-Length bytes may
// have acted on it. Nothing tells that apart from a body read whole and
// not sent (the pool withholding flow control, say).
//
// A request with inputs in its query (headActs) may have been acted on
// by a pool that had its head alone (ASP.NET's Request[name] reads the
// query without the body): its body, sent or not, tells nothing, and it
// is unsent only when it never got a connection, or none of its bytes
// went out on the one it got.
func (st *attemptState) unsent(err error, reportsWrites bool) bool {
	if st.headActs {
		if st.conn.gotConn.Load() {
			return st.conn.sentNothing()
		}
		return !st.conn.mayHaveReached(err, reportsWrites)
	}
	if st.body.stop() > 0 {
		return true
	}
	if st.body.Size() > 0 && st.conn.http2.Load() {
		return false
	}
	return !st.conn.mayHaveReached(err, reportsWrites)
}

// staleUnsent reports whether the attempt's request, which the pool did
// not answer (err is the pool's error), met a kept-alive connection that
// ended (the pool closed it while it was idle) and certainly did not
// reach the pool whole: a new connection of the same pool may take it.
func (st *attemptState) staleUnsent(err error, reportsWrites bool) bool {
	return st.conn.staleConn() && st.unsent(err, reportsWrites)
}

// goneUnsent is unsent for an attempt the client went away from, whose
// round trip may have returned before the request's write ended: net/http
// returns from a canceled HTTP/1 round trip once its write loop is done,
// but its HTTP/2 transport returns as soon as it resets the stream, while
// the stream's writer may still be flushing the request's last frame (or
// reading the body). A request handed a connection is unsent only once
// its write reported its end; until then it may have reached the pool
// whole, and its body is not read here, where the writer may be reading
// it. A transport that reports no writes (HTTP/3's) tells neither, nor
// does a round trip that had no client trace for the hooks (untraced),
// so the request may have reached the pool whatever else happened.
func (st *attemptState) goneUnsent(err error, reportsWrites bool) bool {
	if !reportsWrites || st.conn.untraced || st.conn.gotConn.Load() && !st.conn.writeEnded.Load() {
		return false
	}
	return st.unsent(err, reportsWrites)
}

// errPoolStalled: the pool gave no answer within its stallBound.
var errPoolStalled = errors.New("the pool did not answer within response_header_timeout and expect_continue_timeout of the request's HTTP/2 connection (flow control may have held the body back)")

// errNoFinalAnswer: reverse_proxy returned without passing on an answer
// of the pool's (see attempt).
var errNoFinalAnswer = errors.New("the pool's answer could not be passed on (an upgrade the request did not ask for)")

// isTimeout reports whether err is a timeout (such as the transport's
// response_header_timeout), as reverse_proxy itself decides for its 504.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}
