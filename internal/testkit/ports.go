package testkit

import (
	"context"
	"net"
	"strconv"
	"testing"
)

// Port reserves a loopback port for the rest of the test and returns it.
// While the test runs, the port is handed to no other listener and to no
// outgoing connection, of this process or any other, yet Caddy and Listen
// can bind it (they set SO_REUSEPORT). Nothing listens on it until a
// server of the test does: a connection to it is refused, as to a pool
// that is down.
func Port(t testing.TB) int {
	t.Helper()
	port, release, err := reservePort()
	if err != nil {
		t.Fatalf("reserving a loopback port: %v", err)
	}
	t.Cleanup(release)
	return port
}

// FreePort returns a loopback port that is free when it returns, for a
// server that cannot bind a reserved port because it does not set
// SO_REUSEPORT (redis-server, say). The port is not reserved: another
// process may take it before the server binds it, so a server that then
// fails to listen is started again on another FreePort. On Linux it lies
// outside the kernel's range of ephemeral ports, from which connect()
// takes an outgoing connection's local port: a server killed and started
// again on it finds no connection, of any process, holding it meanwhile.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("finding a free loopback port: %v", err)
	}
	return port
}

// anyFreePort is a free port from the kernel's ephemeral range.
func anyFreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Addr is the loopback address of port, as a dial string.
func Addr(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// DownAddr is a loopback address that refuses every connection for the
// whole test: a front-end pool that is down.
func DownAddr(t testing.TB) string {
	t.Helper()
	return Addr(Port(t))
}

// Listen listens on a port that Port reserved.
func Listen(port int) (net.Listener, error) {
	return listenAt("", port)
}

// listenAt listens on port of host, a loopback address ("": 127.0.0.1).
func listenAt(host string, port int) (net.Listener, error) {
	if host == "" {
		host = "127.0.0.1"
	}
	return reusePortConfig.Listen(context.Background(), "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
}
