package store

import (
	"context"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// uncheckedDial dials Redis as go-redis does by default (TCP, within
// timeout, with its keep-alives), for the client of the reservations'
// scripts of a Redis without TLS, and hands go-redis the connection as
// an uncheckedConn. go-redis's pool looks into every connection it takes
// from the pool for one that Redis closed before it sends a command on
// it, with a system call each time (recvfrom, MSG_PEEK), a third of the
// system calls of a reservation, twice per request. It does not for a
// TLS connection, nor for a connection that Redis closes after the look,
// and a reservation's script is sent again when its connection ended
// before the reply (see Redis, run), as after a restart or a failover's
// CLIENT KILL: the look adds nothing to them. The limits' scripts, which
// are not sent again, keep the look: they run on a client of their own.
func uncheckedDial(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := redis.NewDialer(&redis.Options{DialTimeout: timeout})
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return uncheckedConn{conn}, nil
	}
}

// uncheckedConn is a connection without its SyscallConn, which go-redis's
// pool needs to look into it.
type uncheckedConn struct{ net.Conn }
