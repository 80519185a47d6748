package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// The pool is to say that it reads a request (100 Continue) before the
// request's body goes out: a request that meets a connection the pool is
// closing then never leaves more than its headers, and is certainly not
// carried out (see connTrace). The pool closes a kept-alive connection
// for idleness only once its keep-alive timeout ran out, so a request
// goes with `Expect: 100-continue` only on a new connection or on one idle
// for expect_continue_after_idle or longer: on a busy edge, the
// expectation would cost nearly every request a round trip for nothing.
// Which connection a request gets is known only once net/http hands it
// one (the client trace's GotConn), after reverse_proxy made the request
// it sends and applied the pool's header operations; so the pool's
// transport reports that request's header to the attempt
// (reportOutgoing), and GotConn adds the expectation to it before it is
// written (connTrace.trace). RFC 9110 allows it only on a request with
// content.

// expectContinue is the value of the Expect header the edge adds, shared
// by every request: it is added after the pool's header operations, and
// net/http only reads it.
var expectContinue = []string{"100-continue"}

// keepsExpect reports whether a pool's request header operations leave
// the Expect header the edge adds as it is: `header_up -Expect` turns the
// expectation off, and a pool's own Expect replaces it.
func keepsExpect(proxy *reverseproxy.Handler) bool {
	if proxy.Headers == nil || proxy.Headers.Request == nil {
		return true
	}
	hdr := http.Header{"Expect": {"100-continue"}}
	proxy.Headers.Request.ApplyTo(hdr, caddy.NewReplacer())
	return len(hdr["Expect"]) == 1 && hdr["Expect"][0] == "100-continue"
}

// loadPoolTransport loads a pool's transport before the pool's proxy is
// provisioned (which then uses it as it is), and makes net/http's
// transport report the header of each request it sends to the attempt
// that sent it, and send the attempt's body as the in-memory reader it
// is (see poolTransport). It is done before the proxy starts its health
// checker, which uses the transport too.
func loadPoolTransport(ctx caddy.Context, proxy *reverseproxy.Handler) error {
	if proxy.TransportRaw == nil {
		return nil
	}
	mod, err := ctx.LoadModule(proxy, "TransportRaw")
	if err != nil {
		return fmt.Errorf("loading transport: %v", err)
	}
	rt, ok := mod.(http.RoundTripper)
	if !ok {
		return fmt.Errorf("transport %T is not an http.RoundTripper", mod)
	}
	proxy.Transport = rt
	if ht, ok := mod.(*reverseproxy.HTTPTransport); ok && ht.Transport != nil {
		ht.Transport.Proxy = reportOutgoing(ht.Transport.Proxy)
		ht.Transport.DialContext = countWrites(guardDial(boundProxyHandshakes(ht, ht.Transport.DialContext)))
		ht.Transport.DialTLSContext = guardDial(ht.Transport.DialTLSContext)
		if ht.Transport.TLSHandshakeTimeout == 0 {
			// Caddy's dial for a tls_server_name with placeholders reads
			// it at each dial too.
			ht.Transport.TLSHandshakeTimeout = poolTLSHandshakeTimeout
		}
		if ht.Transport.HTTP2 == nil {
			ht.Transport.HTTP2 = &http.HTTP2Config{SendPingTimeout: poolHTTP2Ping.idle, PingTimeout: poolHTTP2Ping.timeout}
		}
		if reportsWrites(ht) {
			proxy.Transport = &poolTransport{ht}
		} else if slices.Contains(ht.Versions, "3") {
			proxy.Transport = &http3PoolTransport{ht}
		}
	}
	return nil
}

// poolTLSHandshakeTimeout is the TLS handshake timeout of a pool's
// transport that sets none: DefaultPoolTLSHandshakeTimeout, which a test
// shortens before it loads a config.
var poolTLSHandshakeTimeout = DefaultPoolTLSHandshakeTimeout

// poolHTTP2Ping is how long an HTTP/2 connection to a pool may bring
// nothing before the transport pings it (idle), and how long the pong
// may take before the transport closes the connection (timeout). Without
// it (Caddy sets none) a connection that went silent without closing (a
// pool or a NAT between that lost it) takes every request the transport
// multiplexes onto it, each answered 504 or never, until TCP gives up
// minutes later; HTTP/1 needs none, as a response_header_timeout closes
// the connection it ends. It is copied into a pool's transport when the
// pool is set up; a test shortens it before.
var poolHTTP2Ping = struct{ idle, timeout time.Duration }{10 * time.Second, 5 * time.Second}

// guardDial wraps a dial function of net/http's transport, which reads
// the request variables of the attempt whose request it dials for (Caddy
// reads there the forward proxy, PROXY protocol and TLS settings
// reverse_proxy set for the round trip) after the attempt's round trip
// may have returned: the transport goes on dialing for a request given
// another connection (or whose client went away), for the next. Where
// the attempt's variables are recycled (see attemptContext), the dial
// reads them only while counted in, through a context of its own, and
// the attempt hands them back only once no dial is; a dial that begins
// once the attempt is over, when they may be another attempt's, does not
// dial (no request waits for it any more). net/http reads none of the
// variables itself, and nothing else of the transport's reads them after
// a round trip returned.
func guardDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if dial == nil {
		return nil
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if c, ok := ctx.Value(attemptContextKey{}).(*attemptContext); ok && c.recycledVars {
			if !c.enterDial() {
				return nil, reverseproxy.NewDialError(errAttemptOver)
			}
			defer c.leaveDial()
			ctx = &dialContext{Context: ctx, vars: c.vars}
		}
		return dial(ctx, network, addr)
	}
}

// dialContext is the context of a dial counted in by guardDial: its
// request variables are those of the attempt it dials for, also once the
// attempt is over (when the attempt's context has none, see
// attemptContext.Value).
type dialContext struct {
	context.Context
	vars map[string]any
}

func (c *dialContext) Value(key any) any {
	if key == caddyhttp.VarsCtxKey {
		return c.vars
	}
	return c.Context.Value(key)
}

// errAttemptOver: a dial began after the attempt it dialed for was over
// (see guardDial).
var errAttemptOver = errors.New("the attempt that this dial was for is over: not dialed")

// reportOutgoing wraps net/http's Transport.Proxy, which the transport
// calls with every request it is about to send, before it asks for a
// connection, again for each time it sends it: the request's attempt, if
// any, gets the request's header, without the headers that would let the
// transport send it again (a pool's header_up may have added them after
// rebuild took them out), and the attempt learns that the transport is
// asking for a connection; where the attempt's context does not hold its
// trace hooks (see pool.hooksOnSend), they are set here on the client
// trace of the round trip, which the transport took from the request's
// context before it calls Proxy and reads the hooks from after. Should
// net/http still go to send again a request it wrote whole, for a reason
// of its own, the attempt stops it there (errSentAlready), before it
// asks for a connection, unless the connection it wrote the request to
// took no byte of it (see connTrace.sentNothing): net/http sends again a
// request without a body whose write failed at its flush, after its
// trace said the write ended.
func reportOutgoing(next func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	return func(req *http.Request) (*url.URL, error) {
		if c, ok := req.Context().Value(connTraceKey{}).(*connTrace); ok {
			if c.wrote.Load() {
				if !c.sentNothing() {
					return nil, errSentAlready
				}
				c.wrote.Store(false)
			}
			c.askedConn.Store(true)
			c.outgoing = req.Header
			stripReplayHeaders(req.Header)
			if c.hooks != nil {
				if t := httptrace.ContextClientTrace(req.Context()); t == nil {
					c.untraced = true
				} else if t != c.hooked {
					c.hookInto(t)
				}
			}
		}
		if next == nil {
			return nil, nil
		}
		return next(req)
	}
}

// errSentAlready stops net/http from sending again a request it wrote
// whole (see reportOutgoing).
var errSentAlready = errors.New("the request was written to the pool once already: not sent again")
