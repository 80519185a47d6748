//go:build linux

package testkit

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// reservePort binds a socket with SO_REUSEPORT to a free loopback port and
// keeps it bound, without listening on it, until release. The kernel then
// hands the port to no other socket that asks for a free port (nor to an
// outgoing connection), and refuses a connection to it while nothing
// listens; a listener that sets SO_REUSEPORT too (Caddy's, Listen's) binds
// it all the same. Listening on a port chosen and closed again would leave
// a moment in which another process could take it, or, with SO_REUSEPORT
// on both sides, share it.
func reservePort() (port int, release func(), err error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, nil, err
	}
	release = func() { _ = unix.Close(fd) }
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		release()
		return 0, nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		release()
		return 0, nil, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		release()
		return 0, nil, err
	}
	return sa.(*unix.SockaddrInet4).Port, release, nil
}

// reusePortConfig listens with SO_REUSEPORT, as Caddy does, so that it can
// bind a reserved port.
var reusePortConfig = net.ListenConfig{
	Control: func(_, _ string, c syscall.RawConn) error {
		var sockErr error
		if err := c.Control(func(fd uintptr) {
			sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return sockErr
	},
}

// listeners counts the sockets that listen on 127.0.0.1 at each of
// ports, as the kernel lists them in /proc/net/tcp. The file is read
// once for all of them: it lists every socket of the network namespace,
// thousands where tests leave connections in TIME_WAIT, and only the
// few lines of listening sockets (state 0A) are split into fields.
func listeners(ports ...int) (map[int]int, error) {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return nil, err
	}
	local := make(map[string]int, len(ports))
	for _, port := range ports {
		local[fmt.Sprintf("0100007F:%04X", port)] = port
	}
	n := make(map[int]int, len(ports))
	for line := range bytes.Lines(data) {
		if !bytes.Contains(line, []byte(" 0A ")) {
			continue
		}
		fields := strings.Fields(string(line))
		if len(fields) > 3 && fields[3] == "0A" { // 0A: LISTEN
			if port, ok := local[fields[1]]; ok {
				n[port]++
			}
		}
	}
	return n, nil
}

// freePort is a free loopback port below the kernel's range of ephemeral
// ports (ip_local_port_range) and at least 10000, chosen at random so
// that tests running side by side seldom try the same; from that range
// when the kernel leaves too few ports below it.
func freePort() (int, error) {
	low := 32768 // the kernel's default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	const first, tries = 10000, 100
	if low-first < 1000 {
		return anyFreePort()
	}
	for range tries {
		port := first + rand.IntN(low-first)
		ln, err := net.Listen("tcp", Addr(port))
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	return anyFreePort()
}
