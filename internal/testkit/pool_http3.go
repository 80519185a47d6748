package testkit

import (
	"crypto/tls"
	"net"
	"net/http/httptest"
	"testing"

	"github.com/quic-go/quic-go/http3"
)

// NewHTTP3Pool starts a pool that speaks HTTP/3 alone (QUIC, on a UDP
// port of loopback), with a certificate for 127.0.0.1 that CAFile names,
// for a transport's versions 3.
func NewHTTP3Pool(t testing.TB, name string, answer Answer) *Pool {
	t.Helper()
	p := &Pool{name: name, answer: answer, release: make(chan struct{})}
	p.healthy.Store(true)
	// A TLS server that serves nothing but makes the certificate (see
	// CAFile).
	p.tls = httptest.NewUnstartedServer(nil)
	p.tls.StartTLS()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		p.tls.Close()
		t.Fatal(err)
	}
	p.port = conn.LocalAddr().(*net.UDPAddr).Port
	srv := &http3.Server{
		Handler:   p,
		TLSConfig: &tls.Config{Certificates: p.tls.TLS.Certificates, NextProtos: []string{http3.NextProtoH3}},
	}
	go func() { _ = srv.Serve(conn) }()
	t.Cleanup(func() {
		close(p.release)
		_ = srv.Close()
		_ = conn.Close()
		p.tls.Close()
	})
	return p
}
