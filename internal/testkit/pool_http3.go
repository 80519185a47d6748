package testkit

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/quic-go/quic-go"
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

// RejectHTTP3 resets the stream of the request that w answers, both
// ways, with H3_REQUEST_REJECTED, before any of the response is sent: a
// pool that refuses a request it may already have read. It reports
// false, having sent nothing, if w is not quic-go's HTTP/3 response
// writer of the shape this reads.
//
// http3.HTTPStreamer hands the stream over only after it flushed a 200
// header, which may reach the client ahead of the reset: the client then
// sees an answer cut short, not a rejected request. So the stream is
// taken from the writer's unexported field, there being no other way to
// it before the header goes.
func RejectHTTP3(w http.ResponseWriter) bool {
	v := reflect.ValueOf(w)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return false
	}
	f := v.Elem().FieldByName("str")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*http3.Stream]() || f.IsNil() {
		return false
	}
	str := (*http3.Stream)(f.UnsafePointer())
	str.CancelRead(quic.StreamErrorCode(http3.ErrCodeRequestRejected))
	str.CancelWrite(quic.StreamErrorCode(http3.ErrCodeRequestRejected))
	return true
}
