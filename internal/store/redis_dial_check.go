//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd || solaris || illumos

package store

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// checkedTLS returns c with the SyscallConn of its TCP connection (see
// checkedTLSConn), or c itself when that has none.
func checkedTLS(c *tls.Conn) net.Conn {
	raw, ok := c.NetConn().(syscall.Conn)
	if !ok {
		return c
	}
	return &checkedTLSConn{Conn: c, raw: raw}
}

// checkedTLSConn is a TLS connection with the SyscallConn of its TCP
// connection, which go-redis's pool needs to look into a connection it
// takes from the pool (one non-blocking MSG_PEEK of a byte of the
// socket): nothing to read, the connection is kept; the end of the
// stream or an error (Redis hung up, or reset it), it is dropped; a byte
// to read, it is dropped too, but over RESP3 go-redis first reads it as
// the start of a push, through the TLS connection, with no deadline.
// Redis sends nothing unasked on the store's connections (no pub/sub,
// tracking or maintenance notifications), but the socket of a healthy
// TLS connection may still hold a record that is not data: a TLS 1.3
// session ticket, which the server sends after the handshake, before
// its first reply, that is still unread on a connection the pool took
// in before its first command (a dial whose operation gave up first),
// or a key update; reading it, the TLS connection would wait for data
// that never comes. So a byte to read makes the look fail at once (see
// pendingCheck): the connection is dropped, without a read. A Redis that
// closes a TLS connection sends a close_notify alert before it hangs
// up, a byte to read too: dropped as well.
type checkedTLSConn struct {
	*tls.Conn
	raw syscall.Conn
}

func (c *checkedTLSConn) SyscallConn() (syscall.RawConn, error) {
	rc, err := c.raw.SyscallConn()
	if err != nil {
		return nil, err
	}
	return pendingCheck{rc}, nil
}

// errTLSPending fails go-redis's look into a TLS connection whose socket
// holds a byte to read (see checkedTLSConn).
var errTLSPending = errors.New("store: redis: unread bytes on an idle TLS connection")

// pendingCheck is the RawConn of a checkedTLSConn's TCP connection,
// whose Read fails with errTLSPending when the socket holds a byte to
// read, and else runs go-redis's look: two MSG_PEEKs on a healthy
// connection, against one without TLS.
type pendingCheck struct{ syscall.RawConn }

func (rc pendingCheck) Read(f func(fd uintptr) bool) error {
	pending := false
	err := rc.RawConn.Read(func(fd uintptr) bool {
		var b [1]byte
		if n, _, _ := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT); n > 0 {
			pending = true
			return true
		}
		return f(fd)
	})
	if err == nil && pending {
		return errTLSPending
	}
	return err
}
