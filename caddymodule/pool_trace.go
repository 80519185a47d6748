package caddymodule

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// attemptContext is the context of an attempt's request: its request
// variables (caddyhttp.VarsCtxKey) are vars, when the request has
// variables, it holds the attempt's connTrace for the pool's transport
// (see reportOutgoing) and, unless nil, its client trace, as
// httptrace.WithClientTrace would (see clientTraceKey). One allocation
// with the attempt's.
type attemptContext struct {
	context.Context
	vars  map[string]any
	conn  *connTrace
	trace *httptrace.ClientTrace
	// body is the attempt's request body, which the pool's transport
	// sends as the in-memory reader it is (see poolTransport).
	body *bodyReader
	// attempt is the attempt whose request this is, which the pool's
	// transport asks whether a round trip that failed met a connection
	// the pool had closed (see poolTransport.RoundTrip).
	attempt *attemptState
	// tried names the upstreams earlier attempts of the request chose,
	// which certainly did not get it: the pool's selection leaves them
	// out (see untriedSelection). picks are the upstreams this attempt
	// chose (in pickBuf for the first), and seen the pool the last
	// choice was made among. Only the attempt's own goroutine, which
	// reverse_proxy chooses on, touches them.
	tried   []string
	picks   []string
	pickBuf [1]string
	seen    reverseproxy.UpstreamPool

	// recycledVars: vars came from attemptVarMaps and goes back there
	// once the attempt is over (over) and no dial reads it (dials): the
	// pool's transport reads it in its dials alone, each between
	// enterDial and leaveDial (see guardDial); mu guards dials and the
	// setting of over.
	recycledVars bool
	mu           sync.Mutex
	dials        int
	over         atomic.Bool
}

// attemptVarMaps holds the maps of request variables that attempts
// copied and no dial reads any more, cleared.
var attemptVarMaps = sync.Pool{New: func() any { return make(map[string]any) }}

// maxRecycledVars bounds the variables of a map that goes back to
// attemptVarMaps: a cleared map keeps the room it grew to.
const maxRecycledVars = 32

// enterDial reports whether a dial of the pool's transport may read the
// attempt's variables, counting it in until leaveDial: not once the
// attempt is over, when they may be another attempt's.
func (c *attemptContext) enterDial() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.over.Load() {
		return false
	}
	c.dials++
	return true
}

func (c *attemptContext) leaveDial() {
	c.mu.Lock()
	c.dials--
	c.mu.Unlock()
}

// releaseVars ends the attempt's use of its recycled variables: from
// now on no dial reads them, nor anyone asking c for them, and they go
// back to attemptVarMaps unless a dial still reads them (it was given
// another connection, or the client went away, while the transport went
// on dialing), which leaves them to the collector.
func (c *attemptContext) releaseVars() {
	c.mu.Lock()
	c.over.Store(true)
	idle := c.dials == 0
	c.mu.Unlock()
	if idle && len(c.vars) <= maxRecycledVars {
		clear(c.vars)
		attemptVarMaps.Put(c.vars)
	}
}

// withTrace returns c with trace as its client trace: held by c itself
// when it can be (see clientTraceKey), else added by
// httptrace.WithClientTrace, which composes it with a trace of the
// request's own, and hands DNS and connect hooks to the resolver and
// dialer (connTrace sets none).
func (c *attemptContext) withTrace(trace *httptrace.ClientTrace) context.Context {
	netHooks := trace.DNSStart != nil || trace.DNSDone != nil || trace.ConnectStart != nil || trace.ConnectDone != nil
	if clientTraceKey != nil && !netHooks && httptrace.ContextClientTrace(c.Context) == nil {
		c.trace = trace
		return c
	}
	return httptrace.WithClientTrace(c, trace)
}

// connTraceKey is the context key of an attempt's connTrace.
type connTraceKey struct{}

// attemptContextKey is the context key of an attempt's attemptContext.
type attemptContextKey struct{}

func (c *attemptContext) Value(key any) any {
	switch key {
	case caddyhttp.VarsCtxKey:
		if c.recycledVars && c.over.Load() {
			return nil // see releaseVars
		}
		if c.vars != nil {
			return c.vars
		}
	case connTraceKey{}:
		return c.conn
	case attemptContextKey{}:
		return c
	default:
		if c.trace != nil && key == clientTraceKey {
			return c.trace
		}
	}
	return c.Context.Value(key)
}

// clientTraceKey is the context key under which net/http/httptrace finds
// a request's client trace, as httptrace.ContextClientTrace asks a
// context for it. Learned once, it lets an attempt's context hold the
// attempt's trace itself rather than under a context of its own (an
// allocation per attempt). nil when httptrace does not find a trace that
// way, and each attempt then has httptrace.WithClientTrace add it.
var clientTraceKey = learnClientTraceKey()

func learnClientTraceKey() any {
	asked := &askedKeys{Context: context.Background()}
	httptrace.ContextClientTrace(asked)
	if len(asked.keys) != 1 {
		return nil
	}
	key := asked.keys[0]
	if key == nil || !reflect.TypeOf(key).Comparable() {
		return nil
	}
	trace := new(httptrace.ClientTrace)
	if httptrace.ContextClientTrace(context.WithValue(context.Background(), key, trace)) != trace {
		return nil
	}
	return key
}

// askedKeys records the keys a context is asked for.
type askedKeys struct {
	context.Context
	keys []any
}

func (a *askedKeys) Value(key any) any {
	a.keys = append(a.keys, key)
	return nil
}

// connTrace records, through net/http's client trace, what became of the
// request on its way to the pool: whether the pool's transport asked for
// a connection, whether it got one (and whether that one had been idle),
// and whether the request was written whole.
//
// net/http writes a request only on a connection it handed to it
// (GotConn), and reports the end of every request write (WroteRequest,
// with the error that stopped it, if any): a request whose transport
// asked for a connection and never got one was not written anywhere, and
// one whose write never ended without an error was not written whole.
//
// A request not written whole, or whose body was not read whole (the
// transport holds the body back until the pool asks for it, see
// Expect: 100-continue in deliver), was not received: it is framed by its
// Content-Length, and a pool acts on the whole body only (UCWA's inputs
// are in it), never on a request cut short, which its HTTP server fails
// when the connection ends.
type connTrace struct {
	// outgoing is the header of the request the pool's transport is
	// sending (see reportOutgoing); expect and expectAfterIdle say when
	// it is to carry Expect: 100-continue (see pool.expect). The
	// transport's goroutine that sends the request sets and reads them,
	// before it writes the request.
	outgoing        http.Header
	expect          bool
	expectAfterIdle time.Duration
	// hooks, when not nil, are the attempt's trace hooks (see trace),
	// which reportOutgoing sets on the client trace of each round trip
	// rather than the attempt's context holding them (see
	// pool.hooksOnSend); hooked is the trace they were last set on, and
	// untraced that a round trip had no client trace to set them on, so
	// that whether the request got a connection and was written is not
	// known. Only the goroutine that sends the request sets and reads
	// them: it is the attempt's own, which reads untraced once the round
	// trip returned.
	hooks    *httptrace.ClientTrace
	hooked   *httptrace.ClientTrace
	untraced bool

	askedConn atomic.Bool
	gotConn   atomic.Bool
	// wasIdle: the connection last handed to the request had been idle
	// in the transport's pool: kept alive after a request, or dialed for
	// a request that took another one and parked since.
	wasIdle atomic.Bool
	// mayBeHTTP2: the pool's transport may speak HTTP/2 (see
	// pool.stopsResends), on connections without TLS when plainHTTP2;
	// http2: the connection last handed to the request speaks it (see
	// attemptState.unsent).
	mayBeHTTP2, plainHTTP2 bool
	http2                  atomic.Bool
	// http2Conn is the connection last handed to the request when it
	// speaks HTTP/2: a *tls.Conn, also without TLS (see speaksHTTP2).
	http2Conn atomic.Pointer[tls.Conn]
	// wrote: a request write ended without an error; writeEnded: one
	// ended, with an error or without.
	wrote, writeEnded atomic.Bool
	// sentOn is the connection last handed to the request when it
	// counts its writes, over HTTP/1; sentFrom its count then (see
	// sentNothing).
	sentOn   atomic.Pointer[countingConn]
	sentFrom atomic.Int64

	// resend, when not nil, is the Cancel channel of the attempt's
	// request (see pool.stopsResends); resendStopped that it was closed.
	resend        chan struct{}
	resendStopped atomic.Bool
	// conns counts the connections handed to the request (GotConn),
	// writes the request writes that ended (see hookedConnTrace.quiet).
	conns, writes atomic.Int32
	// stall, when not nil, is the attempt's stall clock, started for
	// stallBound when the request is handed an HTTP/2 connection and
	// stopped by the answer's header (see pool.stallBound).
	stall      *time.Timer
	stallBound time.Duration
}

// trace sets t up to record into c; with getConn, it records the
// transport asking for a connection too, which net/http's transport
// tells reportOutgoing just before (a hook saved for most requests).
func (c *connTrace) trace(t *httptrace.ClientTrace, getConn bool) {
	if getConn {
		t.GetConn = c.onGetConn
	}
	t.GotConn = c.onGotConn
	t.WroteRequest = c.onWroteRequest
}

func (c *connTrace) onGetConn(string) { c.askedConn.Store(true) }

func (c *connTrace) onGotConn(info httptrace.GotConnInfo) {
	if c.wrote.Load() {
		c.stopResend()
		return
	}
	c.gotConn.Store(true)
	c.wasIdle.Store(info.Reused || info.WasIdle)
	h2 := false
	if c.mayBeHTTP2 {
		h2 = speaksHTTP2(info.Conn, c.plainHTTP2)
		c.http2.Store(h2)
		if tc, ok := info.Conn.(*tls.Conn); ok && h2 {
			c.http2Conn.Store(tc)
		}
	}
	if c.stall != nil {
		// Over HTTP/1.1 Go's response header timer does the work: the
		// kernel's buffers take the body.
		if h2 {
			c.stall.Reset(c.stallBound)
		} else {
			c.stall.Stop()
		}
	}
	conn := info.Conn
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	if cc, ok := conn.(*countingConn); ok && !h2 {
		c.sentFrom.Store(cc.written.Load())
		c.sentOn.Store(cc)
	} else {
		c.sentOn.Store(nil)
	}
	// A connection that carried a request less than expectAfterIdle ago
	// (or, over HTTP/2, carries one now) is not one the pool is closing
	// for idleness: the request goes without the expectation.
	if c.expect && c.outgoing != nil && (c.expectAfterIdle == 0 || !info.Reused ||
		info.WasIdle && info.IdleTime >= c.expectAfterIdle) {
		c.outgoing["Expect"] = expectContinue
	}
	c.conns.Add(1)
}

func (c *connTrace) onWroteRequest(info httptrace.WroteRequestInfo) {
	if info.Err == nil {
		c.wrote.Store(true)
	}
	c.writeEnded.Store(true)
	// The hook's last touch of c (see quiet).
	c.writes.Add(1)
}

// hookedConnTrace is a connTrace with its hooks, made once and recycled
// through hookedConnTraces, for the attempts of a pool whose hooks are
// set on send (see pool.hooksOnSend): an attempt spares the two hooks
// (an allocation each) once the pool's connections are warm.
type hookedConnTrace struct {
	connTrace
	hookSet httptrace.ClientTrace
}

var hookedConnTraces = sync.Pool{New: func() any {
	h := new(hookedConnTrace)
	h.trace(&h.hookSet, false)
	h.hooks = &h.hookSet
	return h
}}

// quiet reports whether, the attempt's round trips over, none of h's
// hooks can be called any more, so that h may serve another attempt: on
// net/http's HTTP/1 transport, which alone sets hooks on send, GotConn
// is called only during a round trip, and a request is written only on a
// connection handed to it (GotConn), once, ending in WroteRequest; but
// the round trip may return with the pool's answer while the write goes
// on (a pool that answers before it reads the whole body), and its
// WroteRequest comes later. Every connection handed having reported its
// write's end, the last touch of each hook is behind. A connection whose
// write never began (it closed first) leaves h to the collector, as one
// whose write goes on does. The attempt's context, which a dial the
// transport goes on with may read later, holds h only for reportOutgoing,
// which the transport calls during a round trip alone.
func (h *hookedConnTrace) quiet() bool {
	return h.conns.Load() == h.writes.Load()
}

// recycle clears h, which is quiet, for another attempt.
func (h *hookedConnTrace) recycle() {
	h.connTrace = connTrace{hooks: &h.hookSet}
	hookedConnTraces.Put(h)
}

// speaksHTTP2 reports whether conn, a connection net/http's transport
// handed a request to, speaks HTTP/2: over TLS when its ALPN chose h2
// (net/http speaks HTTP/2 over TLS only on a *tls.Conn whose ALPN did),
// without TLS when the transport speaks it there (plainHTTP2). A
// *tls.Conn that never shook hands is net/http's wrapper of a
// connection without TLS, which it hands to an HTTP/2 client for h2c.
func speaksHTTP2(conn net.Conn, plainHTTP2 bool) bool {
	if tc, ok := conn.(*tls.Conn); ok {
		if state := tc.ConnectionState(); state.HandshakeComplete {
			return state.NegotiatedProtocol == http2Proto
		}
	}
	return plainHTTP2
}

// http2Proto is HTTP/2's ALPN protocol name over TLS.
const http2Proto = "h2"

// stopResend stops the pool's transport from sending again a request
// it wrote whole, as it is handing the request a connection (GotConn)
// for that: net/http's HTTP/2 transport does so by itself, below
// reverse_proxy and without asking reportOutgoing, after the pool
// refused the request's stream (REFUSED_STREAM) or sent a GOAWAY that
// did not cover it, when the request has no body (Go's bundled copy also
// after the pool reset the stream with PROTOCOL_ERROR, which says nothing
// of whether the pool acted on it). A refusal says the pool did not act
// on the request, but a pool may say so wrongly, and over HTTP/1.1 the
// edge never lets a written request go out again (see reportOutgoing). Closing the request's Cancel channel makes the
// transport give up that send before it writes the request's headers;
// the round trip then fails, as one whose request may have reached the
// pool. An HTTP/1.1 transport asks reportOutgoing first, which refuses
// such a send before a connection is handed to it.
func (c *connTrace) stopResend() {
	if c.resend != nil && c.resendStopped.CompareAndSwap(false, true) {
		close(c.resend)
	}
}

// hookInto sets the attempt's hooks on t, the client trace of a round
// trip the pool's transport is about to send, before the transport reads
// them: a hook t has already (a trace of the request's own, which
// reverse_proxy composed into t) is called after the attempt's, as
// httptrace's composition orders them. A transport that sends the
// request again reads the same trace, which keeps them.
func (c *connTrace) hookInto(t *httptrace.ClientTrace) {
	c.hooked = t
	gotConn, wroteRequest := c.hooks.GotConn, c.hooks.WroteRequest
	if next := t.GotConn; next != nil {
		t.GotConn = func(info httptrace.GotConnInfo) { gotConn(info); next(info) }
	} else {
		t.GotConn = gotConn
	}
	if next := t.WroteRequest; next != nil {
		t.WroteRequest = func(info httptrace.WroteRequestInfo) { wroteRequest(info); next(info) }
	} else {
		t.WroteRequest = wroteRequest
	}
}

// sentNothing reports whether the connection last handed to the request
// took none of its bytes: over HTTP/1, where a connection carries one
// request at a time, and net/http sends a request again only once the
// write to the last connection is over and the connection closed, so
// that its count no longer moves. A connection that does not count its
// writes, or speaks HTTP/2, tells nothing.
func (c *connTrace) sentNothing() bool {
	cc := c.sentOn.Load()
	return cc != nil && cc.written.Load() == c.sentFrom.Load()
}

// mayHaveReached reports whether the whole request may have reached an
// upstream of the pool, given the pool's error and whether its transport
// reports its writes (reportsWrites). It says no only on facts: no
// connection ever handed to the request by net/http; a transport that
// reports its writes never reporting one ended without an error; a dial
// error (also for transports that do not trace); or reverse_proxy's 503
// for "no upstream available", which it gives before any round trip.
// Anything else may have reached the pool: a reset or a timeout after
// the request was written, an error of a transport that does not trace
// or of a round trip that had no client trace for the hooks (untraced).
func (c *connTrace) mayHaveReached(err error, reportsWrites bool) bool {
	if c.gotConn.Load() {
		return c.wrote.Load() || !reportsWrites
	}
	if c.askedConn.Load() && !c.untraced {
		return false
	}
	var dialErr reverseproxy.DialError
	if errors.As(err, &dialErr) {
		return false
	}
	var herr caddyhttp.HandlerError
	return !errors.As(err, &herr) || herr.StatusCode != http.StatusServiceUnavailable
}

// staleConn reports whether the request, which did not reach the pool,
// had been given a connection that had been idle (kept alive, or dialed
// ahead for another request and parked): one that ended while it was
// idle, as when the pool's keep-alive timeout ran out. A new connection
// of the same pool may well take the request, where a failure on a
// connection just dialed for it says the pool itself cannot.
func (c *connTrace) staleConn() bool {
	return c.gotConn.Load() && c.wasIdle.Load()
}
