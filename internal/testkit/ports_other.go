//go:build !linux

package testkit

import "net"

// reservePort finds a free loopback port by listening on port 0 and
// closing the listener again. Unlike the Linux reservation, it leaves a
// moment in which another process may take the port.
func reservePort() (port int, release func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, err
	}
	port = ln.Addr().(*net.TCPAddr).Port
	return port, func() {}, ln.Close()
}

var reusePortConfig net.ListenConfig

func freePort() (int, error) { return anyFreePort() }

// listeners is not known here: 1 for each port, as if every old
// listener were closed.
func listeners(ports ...int) (map[int]int, error) {
	n := make(map[int]int, len(ports))
	for _, port := range ports {
		n[port] = 1
	}
	return n, nil
}
