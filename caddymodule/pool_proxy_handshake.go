package caddymodule

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"golang.org/x/net/idna"
)

// A pool reached through a forward proxy has its connection once the
// proxy's handshake is done: SOCKS5's method negotiation and CONNECT
// (socks5:// and socks5h://), or HTTP's CONNECT to an https pool
// (http:// and https:// proxies). net/http bounds neither: its SOCKS5
// client waits as long as the dial's context, which nothing cancels
// while the dial is wanted, and its CONNECT waits up to a minute. A proxy
// that takes the TCP connection but never ends the handshake (hung, or
// waiting on its own dial to a pool that does not answer) would hold the
// request, which never left the proxy and the backup could take, until
// the client gives up (past any response_header_timeout, whose clock
// starts once the request went out). So the handshake gets the
// transport's dial_timeout of its own, counted from its start: the
// proxy's connection to the pool is the pool's dial. Its end fails the
// dial, and the request goes to the backup, as after any dial that
// failed. The bound is a deadline on the connection to the proxy, lifted
// once the handshake ended: net/http tells the edge when it sends a
// CONNECT and when its answer came (GetProxyConnectHeader,
// OnProxyConnectResponse), but nothing of SOCKS5, whose end the edge
// reads from the proxy's bytes (see socksReply). With read_timeout,
// Caddy's connection sets a deadline of its own at each read, which
// then bounds each of the handshake's reads instead.
//
// Not bounded: the CONNECT over a connection to an https proxy that
// Caddy's own TLS dialer made (a tls_server_name with placeholders, or
// proxy_protocol), which net/http needs as the *tls.Conn it is, so that
// the edge cannot see when it closes; such a CONNECT keeps net/http's
// minute.

// caddyProxyVar is the request variable in which reverse_proxy's http
// transport holds the forward proxy of the round trip it dials for
// (reverseproxy's proxyVarKey), as its own dialer reads it to tell a
// dial to the proxy. A round trip without a proxy leaves it as it was
// (another pool's, whose attempt came first), so a dial is taken for
// the proxy's only when it dials the proxy's address.
const caddyProxyVar = "reverse_proxy.proxy"

// proxyHandshakes bounds the handshakes of one pool transport's
// connections with a forward proxy by timeout, its dial_timeout.
type proxyHandshakes struct {
	timeout time.Duration
	// connects: the transport speaks TLS to the pool, to which net/http
	// then tunnels through an HTTP proxy with CONNECT.
	connects bool
	// tunnels holds each connection to an HTTP proxy over which a
	// CONNECT may go, by the context net/http dialed it with, which it
	// hands GetProxyConnectHeader and OnProxyConnectResponse, until the
	// CONNECT's answer came or the connection closed.
	tunnels sync.Map
}

// boundProxyHandshakes makes the forward proxy handshakes of t, pool
// transport ht's net/http transport, fail once ht's dial_timeout passed
// (none when it is not positive), and returns dial, t's DialContext,
// wrapped to that end (see proxyHandshakes.dial). It is to be wrapped in
// guardDial, whose context it unwraps to find net/http's.
func boundProxyHandshakes(ht *reverseproxy.HTTPTransport, dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if dial == nil || ht.DialTimeout <= 0 {
		return dial
	}
	h := &proxyHandshakes{timeout: time.Duration(ht.DialTimeout), connects: ht.TLSEnabled()}
	t := ht.Transport
	if h.connects {
		getHeader, header := t.GetProxyConnectHeader, t.ProxyConnectHeader
		t.GetProxyConnectHeader = func(ctx context.Context, proxyURL *url.URL, target string) (http.Header, error) {
			h.connectSent(ctx)
			if getHeader != nil {
				return getHeader(ctx, proxyURL, target)
			}
			// net/http reads ProxyConnectHeader only without
			// GetProxyConnectHeader.
			return header, nil
		}
		onResponse := t.OnProxyConnectResponse
		t.OnProxyConnectResponse = func(ctx context.Context, proxyURL *url.URL, req *http.Request, res *http.Response) error {
			if err := h.connectAnswered(ctx); err != nil {
				return err
			}
			if onResponse != nil {
				return onResponse(ctx, proxyURL, req, res)
			}
			return nil
		}
	}
	return h.dial(dial)
}

// dial wraps dial so that a connection to a forward proxy comes with its
// handshake bounded: a SOCKS5 one with a deadline from the start, lifted
// once the proxy's bytes ended the handshake; an HTTP one kept in
// tunnels, for its CONNECT, if any, to set and lift the deadline.
func (h *proxyHandshakes) dial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		// Read before the dial, as Caddy's dialer does, while guardDial
		// holds the attempt's variables for it.
		proxy, _ := caddyhttp.GetVar(ctx, caddyProxyVar).(*url.URL)
		conn, err := dial(ctx, network, addr)
		if err != nil || proxy == nil || proxyAddr(proxy) != addr {
			return conn, err
		}
		switch proxy.Scheme {
		case "socks5", "socks5h":
			if err := conn.SetDeadline(time.Now().Add(h.timeout)); err != nil {
				_ = conn.Close()
				return nil, reverseproxy.NewDialError(err)
			}
			return &socksConn{Conn: conn}, nil
		case "http", "https":
			if !h.connects {
				return conn, nil
			}
			if dc, ok := ctx.(*dialContext); ok {
				ctx = dc.Context // net/http's, as its proxy hooks get it
			}
			c := &tunnelConn{Conn: conn, key: ctx, tunnels: &h.tunnels}
			h.tunnels.Store(ctx, c)
			return c, nil
		}
		return conn, nil
	}
}

// connectSent starts the bound of the CONNECT net/http is about to send
// on the connection it dialed with ctx.
func (h *proxyHandshakes) connectSent(ctx context.Context) {
	if c, ok := h.tunnels.Load(ctx); ok {
		// A failure leaves the CONNECT net/http's minute; the
		// connection fails its next read or write in any case.
		_ = c.(*tunnelConn).Conn.SetDeadline(time.Now().Add(h.timeout))
	}
}

// connectAnswered lifts the bound of the CONNECT whose answer came on the
// connection net/http dialed with ctx: the connection is the pool's from
// now on, if the answer is a 200.
func (h *proxyHandshakes) connectAnswered(ctx context.Context) error {
	if c, ok := h.tunnels.LoadAndDelete(ctx); ok {
		return c.(*tunnelConn).Conn.SetDeadline(time.Time{})
	}
	return nil
}

// proxyAddr is the address net/http dials for a round trip through the
// forward proxy u (its canonicalAddr): u's host, in ASCII, and its port,
// or its scheme's.
func proxyAddr(u *url.URL) string {
	host := u.Hostname()
	if ascii, err := idna.Lookup.ToASCII(host); err == nil {
		host = ascii
	}
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		case "socks5", "socks5h":
			port = "1080"
		}
	}
	return net.JoinHostPort(host, port)
}

// tunnelConn is a connection to an HTTP forward proxy, kept in tunnels
// (by key) until it closes, when its CONNECT's answer did not take it out.
type tunnelConn struct {
	net.Conn
	key     context.Context
	tunnels *sync.Map
}

func (c *tunnelConn) Close() error {
	c.tunnels.CompareAndDelete(c.key, c)
	return c.Conn.Close()
}

// socksConn is a connection to a SOCKS5 forward proxy whose handshake is
// bounded by a deadline, lifted once the proxy's bytes ended it. Its
// reads are net/http's dial's until then: reply is read by one goroutine
// at a time, and done is set before the connection is the pool's.
type socksConn struct {
	net.Conn
	reply socksReply
	done  bool
}

func (c *socksConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.done && c.reply.ends(p[:n]) {
		c.done = true
		if derr := c.Conn.SetDeadline(time.Time{}); err == nil {
			err = derr
		}
	}
	return n, err
}

// socksReply follows what a SOCKS5 proxy sends in its handshake with a
// client (RFC 1928, RFC 1929), to tell where it ends: the method it
// chose (2 bytes); after username/password authentication, that
// method's status (2 bytes); then its reply to the CONNECT: 4 bytes, the
// address (by its type: 4 bytes of IPv4, 16 of IPv6, or a length byte
// and a name) and a port of 2 bytes. A proxy that refuses fails the
// client's handshake, which closes the connection.
type socksReply struct {
	read int // bytes read
	// reply is where the CONNECT's reply begins, once the chosen method
	// is known (0 until then); end is where it ends, once its address
	// type (and a name's length) is known.
	reply, end int
}

const socksUsernamePassword = 0x02

// ends takes the proxy's next bytes, and reports whether the handshake
// ended with them.
func (s *socksReply) ends(p []byte) bool {
	for _, b := range p {
		i := s.read
		s.read++
		switch {
		case i == 1:
			s.reply = 2
			if b == socksUsernamePassword {
				s.reply = 4
			}
		case s.reply > 0 && i == s.reply+3:
			switch b {
			case 0x01: // IPv4
				s.end = s.reply + 4 + 4 + 2
			case 0x04: // IPv6
				s.end = s.reply + 4 + 16 + 2
			case 0x03: // a name, whose length comes next
			default:
				// The client refuses the reply: nothing more belongs to
				// the handshake.
				s.end = s.read
			}
		case s.reply > 0 && i == s.reply+4 && s.end == 0:
			s.end = s.reply + 5 + int(b) + 2
		}
		if s.end > 0 && s.read >= s.end {
			return true
		}
	}
	return false
}
