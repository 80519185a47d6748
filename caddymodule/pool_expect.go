package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// A request to a pool carries `Expect: 100-continue` (set in deliver)
// unless it is given a kept-alive connection that carried a request less
// than expect_continue_after_idle ago: the pool is not closing such a
// connection for idleness, and the expectation would cost every request
// of a busy edge a round trip. Which connection a request gets is known
// only once net/http hands it one (the client trace's GotConn), after
// reverse_proxy made the request it sends; so the pool's transport
// reports that request's header to the attempt (reportOutgoing), and
// GotConn takes the expectation out of it before it is written
// (connTrace.gotConn).

// loadPoolTransport loads a pool's transport before the pool's proxy is
// provisioned (which then uses it as it is), and makes net/http's
// transport report the header of each request it sends to the attempt
// that sent it. It is done before the proxy starts its health checker,
// which uses the transport too.
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
	}
	return nil
}

// reportOutgoing wraps net/http's Transport.Proxy, which the transport
// calls with every request it is about to send, before it asks for a
// connection: the request's attempt, if any, gets the request's header.
func reportOutgoing(next func(*http.Request) (*url.URL, error)) func(*http.Request) (*url.URL, error) {
	return func(req *http.Request) (*url.URL, error) {
		if c, ok := req.Context().Value(connTraceKey{}).(*connTrace); ok {
			c.outgoing = req.Header
		}
		if next == nil {
			return nil, nil
		}
		return next(req)
	}
}
