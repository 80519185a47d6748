//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd || solaris || illumos

package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestCheckedTLSRecordPending: a pooled TLS connection whose socket
// holds a record that is not data, here the session tickets that a TLS
// 1.3 server sends after the handshake, unread on a connection the pool
// took in before its first command (as it does for MinIdleConns, and for
// a dial whose operation gave up first), is dropped by go-redis's look
// before a command, without a read: over RESP3 go-redis would read it as
// the start of a push, with no deadline, and the TLS connection would
// wait for data that never comes. The command goes on a new connection.
func TestCheckedTLSRecordPending(t *testing.T) {
	srv := testkit.StartRedisWith(t, testkit.RedisConfig{TLS: true})
	pem, err := os.ReadFile(srv.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	const timeout = 5 * time.Second
	dial := checkedTLSDial(timeout, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
	dialed := make(chan net.Conn, 2)
	client := redis.NewClient(&redis.Options{
		Addr: srv.Addr(),
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := dial(ctx, network, addr)
			if err == nil {
				dialed <- conn
			}
			return conn, err
		},
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, PoolTimeout: timeout,
		PoolSize: 1, MinIdleConns: 1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	t.Cleanup(func() { _ = client.Close() })
	idle, ok := (<-dialed).(*checkedTLSConn)
	if !ok {
		t.Fatal("the dialer did not return a checkedTLSConn")
	}
	// Wait until the server's session tickets are on the socket.
	raw, err := idle.raw.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, _ := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return n > 0
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- client.Ping(context.Background()).Err() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("PING: %v", err)
		}
	case <-time.After(6 * timeout):
		t.Fatal("PING hung on the pooled connection")
	}
	if got := client.PoolStats().StaleConns; got != 1 {
		t.Errorf("the pool dropped %d stale connections, want 1", got)
	}
}
