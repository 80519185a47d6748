package caddymodule

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// poolTransport is a pool's http transport where it is net/http's (see
// reportsWrites): reverse_proxy's own, which it embeds, so that
// reverse_proxy and its health checker find in it every interface they
// look for in a transport, but for the body of an attempt's request.
//
// reverse_proxy hands the transport a request whose body wraps the
// attempt's (requestBodyWithTrailers, bodyNopCloserIfNotRead), a reader
// net/http does not know to be in memory: it then writes the request's
// headers to the connection before it reads the body, which costs a
// write(2) of its own per request. RoundTrip gives such a request the
// attempt's body as an in-memory reader instead, io.NopCloser over the
// attempt's own bytes.Reader, which net/http unwraps and writes with the
// headers, in one write when the request fits the connection's write
// buffer. The reader is the one the wrappers read: what the transport
// takes from it is what the attempt counts as read (see
// attemptState.unsent), and a round trip that reverse_proxy sends again
// after a dial error (which read none of it) reads it from where it is,
// as it would through the wrappers. A request that fits the buffer goes to
// the connection only when net/http flushes the buffer, after the
// request's trace said its write ended: RoundTrip tells the attempt of a
// flush that failed (see isWriteError). The wrappers do nothing the edge's
// request needs: the trailers they publish at the end of the body are
// the request's, which has none (the intake refuses them and rebuild
// clears Trailer: the request's Trailer map, which reverse_proxy made
// empty and which tells net/http's HTTP/2 transport to end the body with
// a frame of its own, stays as it is), and the closing they hold back is
// the attempt's body's, which does nothing. Nothing else of the request
// changes: its Content-Length framing, its Expect (whose body goes out
// after 100 Continue in any case), and net/http's resends, which need a
// GetBody the request does not have (see rebuild) or a body not read.
//
// A request that meets a kept-alive connection the pool closed just
// before (the transport not having noticed yet) goes out whole in that
// one write, before the pool's reset can come back: the attempt then
// fails as one the pool may have taken. In two writes, the reset the
// headers' write drew could fail the body's, on a pool close enough
// (loopback) to answer between them; over a network, both went out before
// it came back. Only Expect: 100-continue tells that such a request did
// not reach the pool (see pool_expect.go).
//
// A request without an attempt (a health check) goes as it is, and so
// does one whose body reverse_proxy did not take from the attempt's: nil
// or http.NoBody (a rewrite to GET or HEAD, an extended CONNECT), or of
// another length. reverse_proxy would read the body into a buffer of its
// own with request_buffers, which checkPoolProxy refuses.
type poolTransport struct {
	*reverseproxy.HTTPTransport
}

// RoundTrip sends req through the embedded transport, an attempt's
// request with the attempt's body as an in-memory reader (see
// poolTransport), and tells the attempt when its request's write failed
// after its trace said it ended (see isWriteError). A round trip that
// met a kept-alive connection the pool had closed, the request not
// having reached the pool, is reported to reverse_proxy as cancelled,
// and its error kept for the attempt (see below). req is
// reverse_proxy's copy for this one round trip (reverseProxy makes it
// with WithContext), whose body it does not read after the round trip:
// the body is set on it rather than on a copy of its own (an allocation
// per request), as the embedded RoundTrip sets its URL's scheme.
// net/http copies req before it reads it.
func (t *poolTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c, _ := req.Context().Value(attemptContextKey{}).(*attemptContext)
	if c != nil && req.Body != nil && req.Body != http.NoBody &&
		c.body != nil && req.ContentLength == c.body.Size() {
		req.Body = io.NopCloser(&c.body.Reader)
	}
	res, err := t.HTTPTransport.RoundTrip(req)
	if c != nil && res != nil && c.conn.stall != nil {
		// The pool's answer came: its body may take as long as it takes
		// (reverse_proxy's response_buffers reads it before the header
		// goes on).
		c.conn.stall.Stop()
	}
	if err != nil && c != nil && !c.conn.http2.Load() && isWriteError(err, t.renegotiates()) {
		c.conn.wrote.Store(false)
	}
	if err != nil && c != nil && c.attempt != nil && c.attempt.rw.stalled.Load() && c.attempt.rw.r.Context().Err() == nil {
		// The attempt's stall clock ended the round trip (see
		// pool.stallBound) by cancelling its context, which reverse_proxy
		// takes for the client gone and does not count for passive health
		// checks, where over HTTP/1.1 the response header timeout, for the
		// same silence, is counted. Told of a timeout instead, it counts
		// the upstream's failure, and tries no other upstream with the
		// request (a POST or PUT, which may have reached this one).
		return nil, errPoolStallTimeout{}
	}
	if err != nil && c != nil && c.attempt != nil && req.Context().Err() == nil && c.attempt.staleUnsent(err, true) {
		// A kept-alive connection the pool closed while it was idle is
		// not the pool's failure, and the request goes out again on
		// another connection (see deliver); net/http would have sent a
		// request it can rewind again itself, unseen. reverse_proxy
		// counts every failed round trip for passive health checks
		// (fail_duration): with max_fails 1, its default, one such
		// connection would hold a healthy upstream back for
		// fail_duration, and with it the request and the next ones, sent
		// to the backup or answered 410. It counts no cancelled round
		// trip, which it answers 499, which the attempt drops. A round
		// trip the client left, or the attempt's stall clock ended, is
		// one already.
		c.attempt.rw.staleErr = err
		return nil, fmt.Errorf("%w: %w", errStaleConnHidden, err)
	}
	return res, err
}

// errStaleConnHidden is what reverse_proxy is told of a round trip that
// met a kept-alive connection the pool had closed (see
// poolTransport.RoundTrip): a cancellation, which it does not count as
// the upstream's failure.
var errStaleConnHidden = fmt.Errorf("the kept-alive connection ended before the pool took the request (%w, so that it counts as no failure of the upstream)", context.Canceled)

// errPoolStallTimeout is what reverse_proxy is told of a round trip the
// attempt's stall clock ended (see poolTransport.RoundTrip): a timeout,
// as a response header timeout is, which it counts as the upstream's
// failure and answers 504; not a cancellation, which it would not count.
type errPoolStallTimeout struct{}

func (errPoolStallTimeout) Error() string   { return errPoolStalled.Error() }
func (errPoolStallTimeout) Timeout() bool   { return true }
func (errPoolStallTimeout) Temporary() bool { return true }
func (errPoolStallTimeout) Unwrap() error   { return context.DeadlineExceeded }

// http3PoolTransport is a pool's http transport where it speaks HTTP/3
// (versions 3): reverse_proxy's own, which it embeds as poolTransport
// does, but for the body of an attempt's request.
//
// quic-go's HTTP/3 transport sends a request again by itself, on a new
// connection and below reverse_proxy, after the pool reset its stream
// with H3_REQUEST_REJECTED, when the request has no body (nil or
// http.NoBody: reverse_proxy makes every request of Content-Length 0
// one, such as a startPhoneAudio with its inputs in the query alone) or
// a GetBody. A rejection says the pool did not act on the request, but a
// pool may say so wrongly, as one may of HTTP/2's REFUSED_STREAM, whose
// resend the edge stops (see connTrace.stopResend), and the edge never
// lets a request it wrote go out again. RoundTrip gives an attempt's
// request without a body an empty one of its own, which quic-go cannot
// rewind (there is no GetBody): it then sends the request once, and
// fails the round trip as one whose request may have reached the pool. A
// request whose stream could not be opened, which never went out, is
// still sent on another connection. The request then goes without a
// content-length of 0 (its stream's end says it has no body), as
// quic-go writes one only for a request without a body.
//
// quic-go writes a request's body from a goroutine of its own, which a
// round trip that failed does not wait for, and closes the body on the
// round trip's own goroutine as it returns such a round trip's error:
// the body is still read while the attempt asks what the pool may have
// received. RoundTrip gives an attempt's request with a body the
// attempt's body behind its guard (stoppableBody), which the attempt
// stops as it asks (see bodyReader), in place of reverse_proxy's
// wrappers of it, whose own count of what was read is not guarded; the
// wrappers do nothing the edge's request needs (see poolTransport).
type http3PoolTransport struct {
	*reverseproxy.HTTPTransport
}

// RoundTrip sends req through the embedded transport, an attempt's
// request without a body with an empty one, and one with the attempt's
// body with that body behind its guard (see http3PoolTransport). req is
// reverse_proxy's copy for this one round trip, as for
// poolTransport.RoundTrip.
func (t *http3PoolTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if c, _ := req.Context().Value(attemptContextKey{}).(*attemptContext); c != nil {
		switch {
		case req.Body == nil || req.Body == http.NoBody:
			req.Body = emptyBody{}
		case c.body != nil && req.ContentLength == c.body.Size():
			req.Body = stoppableBody{c.body}
		}
	}
	return t.HTTPTransport.RoundTrip(req)
}

// emptyBody is a request body without bytes that is not http.NoBody,
// and that net/http and quic-go cannot rewind.
type emptyBody struct{}

func (emptyBody) Read([]byte) (int, error) { return 0, io.EOF }
func (emptyBody) Close() error             { return nil }

// isWriteError reports whether err, a round trip's, is a failed write to
// the connection: over HTTP/1, the request's own write, which nothing
// else writes to while the request is the connection's.
//
// net/http's HTTP/1 transport reports a request's write ended
// (WroteRequest) when Request.write returns, before it flushes what
// Request.write left in the connection's write buffer: all of a request
// that fits the buffer and goes without Expect: 100-continue (the
// headers alone of one without a body, and the request whole once
// RoundTrip gives the body as an in-memory reader), whose write may then
// fail (a connection the pool reset, or shut down for reading, while it
// was idle) with nothing written, although its trace said it ended
// without an error. The flush's error ends the round trip, with the write
// error in its chain (in net/http's nothingWrittenError when nothing was
// written); the transport then closes the connection, so that its reader
// fails too, reading a connection closed here (net.ErrClosed), and the
// round trip may end with that error instead, whichever of the two it
// takes first. While a request is the connection's, the transport closes
// it for nothing else but its cancellation and its response header
// timeout, which end the round trip with errors of their own. Either
// way the attempt counts the request as not written whole. Not over
// HTTP/2, where a write to the connection may be another stream's after
// the request's went out whole, and whose transport reports the write's
// end after its flush.
//
// Where the pool may renegotiate TLS (tls_renegotiation once or
// freely), the connection's reader writes too: the handshake a pool
// asks for once it has read the request, perhaps acted on it (ASP.NET
// asks when an application first reads its client certificate), and a
// failed write there ends the round trip as the request's own would.
// Only the reader's error on a connection the transport closed counts
// then; a failed write is taken for one that may have followed the
// request (502), never for the request's.
func isWriteError(err error, renegotiates bool) bool {
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		return false
	}
	return opErr.Op == "write" && !renegotiates || opErr.Op == "read" && errors.Is(opErr.Err, net.ErrClosed)
}

// renegotiates reports whether the pool's TLS connections may
// renegotiate (see isWriteError).
func (t *poolTransport) renegotiates() bool {
	c := t.Transport.TLSClientConfig
	return c != nil && c.Renegotiation != tls.RenegotiateNever
}

// countingConn is a connection net/http's transport dialed to a pool,
// which counts the bytes written to it: a request whose write ended on
// it while its count stayed the same left nothing on the connection (see
// connTrace.sentNothing). Under TLS, it is the connection below TLS.
type countingConn struct {
	net.Conn
	written atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// countWrites wraps dial, net/http's transport's DialContext, so that
// every connection it dials counts its writes. Not the transport's
// DialTLSContext, whose *tls.Conn net/http reads (a connection that does
// not count lets no resend through, see connTrace.sentNothing).
func countWrites(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if dial == nil {
		return nil
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: conn}, nil
	}
}

// poolHTTPTransport returns reverse_proxy's http transport of a pool's
// provisioned transport rt, wrapped in a poolTransport or an
// http3PoolTransport or not.
func poolHTTPTransport(rt http.RoundTripper) (*reverseproxy.HTTPTransport, bool) {
	switch t := rt.(type) {
	case *poolTransport:
		return t.HTTPTransport, true
	case *http3PoolTransport:
		return t.HTTPTransport, true
	case *reverseproxy.HTTPTransport:
		return t, true
	}
	return nil, false
}

// Every interface reverse_proxy's http transport satisfies, which
// reverse_proxy, its health checker and Caddy look for in a transport.
var (
	_ caddy.Module                                     = (*poolTransport)(nil)
	_ caddy.Provisioner                                = (*poolTransport)(nil)
	_ caddy.CleanerUpper                               = (*poolTransport)(nil)
	_ caddyfile.Unmarshaler                            = (*poolTransport)(nil)
	_ http.RoundTripper                                = (*poolTransport)(nil)
	_ reverseproxy.TLSTransport                        = (*poolTransport)(nil)
	_ reverseproxy.H2CTransport                        = (*poolTransport)(nil)
	_ reverseproxy.HealthCheckSchemeOverriderTransport = (*poolTransport)(nil)
	_ reverseproxy.ProxyProtocolTransport              = (*poolTransport)(nil)
	_ reverseproxy.RequestHeaderOpsTransport           = (*poolTransport)(nil)

	_ caddy.Module                                     = (*http3PoolTransport)(nil)
	_ caddy.Provisioner                                = (*http3PoolTransport)(nil)
	_ caddy.CleanerUpper                               = (*http3PoolTransport)(nil)
	_ caddyfile.Unmarshaler                            = (*http3PoolTransport)(nil)
	_ http.RoundTripper                                = (*http3PoolTransport)(nil)
	_ reverseproxy.TLSTransport                        = (*http3PoolTransport)(nil)
	_ reverseproxy.H2CTransport                        = (*http3PoolTransport)(nil)
	_ reverseproxy.HealthCheckSchemeOverriderTransport = (*http3PoolTransport)(nil)
	_ reverseproxy.ProxyProtocolTransport              = (*http3PoolTransport)(nil)
	_ reverseproxy.RequestHeaderOpsTransport           = (*http3PoolTransport)(nil)
)
