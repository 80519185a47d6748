package store

import (
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// uncheckedDial dials Redis as go-redis does by default (TCP, within
// timeout, with its keep-alives, and TLS with tlsConfig), for the client
// of the reservations' scripts of a Redis without Sentinel or Cluster,
// and hands go-redis the connection as an uncheckedConn. go-redis's pool
// looks into every connection it takes from the pool (without TLS, and
// over TLS those of checkedTLSDial) for one that Redis closed before it
// sends a command on it, with a system call each time (recvfrom,
// MSG_PEEK), a third of the system calls of a reservation, twice per
// request. It does not for a connection that Redis closes after the
// look, and a reservation's script is sent again when its connection
// ended before the reply (see Redis, run), as after a restart or a
// failover's CLIENT KILL: the look adds nothing to them. The limits'
// scripts, which are not sent again, keep the look, TLS or not: they run
// on a client of their own.
// unanswered counts the connections that ended before Redis answered
// anything on them (see retries).
func uncheckedDial(timeout time.Duration, tlsConfig *tls.Config, unanswered *atomic.Uint32) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := redis.NewDialer(&redis.Options{DialTimeout: timeout, TLSConfig: tlsConfig})
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			// A TLS handshake that ended at once is a connection that
			// ended before any reply too.
			if connectionEnded(err) {
				unanswered.Add(1)
			}
			return nil, err
		}
		return &uncheckedConn{Conn: conn, unanswered: unanswered}, nil
	}
}

// uncheckedConn is a connection without its SyscallConn, which go-redis's
// pool needs to look into it (a TLS connection has none; see
// checkedTLSConn), nor a TLS connection's NetConn. It counts
// itself in unanswered when it ends (see connectionEnded) before any
// reply was read from it: a new connection that Redis, or something in
// front of it, hung up on. A pooled connection that Redis closed since
// (a restart, CLIENT KILL) had answered, and is not counted.
type uncheckedConn struct {
	net.Conn
	unanswered *atomic.Uint32
	// answered is set once a read returned data, or once the connection
	// was counted in unanswered.
	answered atomic.Bool
}

func (c *uncheckedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if !c.answered.Load() {
		c.ended(n, err)
	}
	return n, err
}

func (c *uncheckedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil && !c.answered.Load() {
		c.ended(0, err)
	}
	return n, err
}

// ended marks c answered when n bytes were read, and counts it in
// unanswered when err ended it first.
func (c *uncheckedConn) ended(n int, err error) {
	switch {
	case n > 0:
		c.answered.Store(true)
	case connectionEnded(err) && c.answered.CompareAndSwap(false, true):
		c.unanswered.Add(1)
	}
}

// checkedTLSDial dials Redis as go-redis does by default (TCP, within
// timeout, with its keep-alives, and TLS with tlsConfig), for the client
// of the limits' scripts over TLS (with Sentinel the one client, whose
// failover client dials the master and the sentinels with it), and
// hands go-redis the TLS connection with the SyscallConn of its TCP
// connection where go-redis's pool looks into connections (see
// checkedTLSConn), so that it drops a pooled
// connection that Redis closed (a restart, a failover's CLIENT KILL, its
// idle timeout) before it sends a command on it, as it does without TLS:
// a limit's script, which is not sent again, would fail on it.
func checkedTLSDial(timeout time.Duration, tlsConfig *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := redis.NewDialer(&redis.Options{DialTimeout: timeout, TLSConfig: tlsConfig})
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if tc, ok := conn.(*tls.Conn); ok {
			return checkedTLS(tc), nil
		}
		return conn, nil
	}
}
