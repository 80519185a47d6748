package caddymodule

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestEarlyData: a terminated request that comes in TLS early data
// (HTTP/3 0-RTT, which Caddy accepts by default), or that a proxy in
// front marks Early-Data, is answered 425 Too Early and reaches no pool:
// early data can be replayed by anyone on the network path, and each
// replay would ring the phone again. The 0-RTT request goes through a
// relay that holds back the client's Handshake and 1-RTT packets, so that
// the edge certainly answers it before the handshake completes; the same
// POST sent after the handshake reaches the pool.
func TestEarlyData(t *testing.T) {
	certFile, keyFile, roots := selfSignedCert(t)
	pool := testkit.NewRawUpstream(t)
	next := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`https://localhost:EDGE_PORT {
	tls %s %s
	ucwa {
		jwt off
		default_region US
		primary %s
	}
	reverse_proxy %s
}`, certFile, keyFile, pool.Addr(), next.Addr()))
	port := strconv.Itoa(e.Port("EDGE_PORT"))
	edgeAddr := testkit.Addr(e.Port("EDGE_PORT"))
	const body = `{"to":"4255551234"}`

	t.Run("0-RTT", func(t *testing.T) {
		if raceDetector {
			t.Skip("quic-go's client races with itself on a connection in 0-RTT (quic-go/quic-go#4303: the streams it opens read the peer's transport parameters, which the handshake then writes); .ci/run runs this without the race detector")
		}
		testZeroRTT(t, edgeAddr, port, body, roots, pool)
	})

	// A proxy in front that took the request in early data says so.
	t.Run("Early-Data header", func(t *testing.T) {
		before := len(pool.Received())
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}}}
		defer client.CloseIdleConnections()
		resp := testkit.Send(t, client, testkit.Request{URL: "https://localhost:" + port + startPath, ContentType: "application/json", Body: body,
			Header: http.Header{"Early-Data": {"1"}}})
		if resp.Status != http.StatusTooEarly {
			t.Errorf("POST with Early-Data: status %d, want 425", resp.Status)
		}
		if n := len(pool.Received()); n != before {
			t.Errorf("the pool got %d requests, want still %d", n, before)
		}
	})
}

// testZeroRTT posts body to the edge at edgeAddr after a handshake, which
// reaches pool, and then in 0-RTT, which the edge answers 425 and which
// reaches no pool.
func testZeroRTT(t *testing.T, edgeAddr, port, body string, roots *x509.CertPool, pool *testkit.RawUpstream) {
	sessions := &ticketCache{ClientSessionCache: tls.NewLRUClientSessionCache(4), got: make(chan struct{})}
	tlsConf := &tls.Config{RootCAs: roots, ServerName: "localhost", ClientSessionCache: sessions, NextProtos: []string{http3.NextProtoH3}}
	quicConf := &quic.Config{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// A first connection, whose handshake completes, leaves a session
	// ticket for 0-RTT; its POST reaches the pool.
	conn, err := quic.DialAddrEarly(ctx, edgeAddr, tlsConf, quicConf)
	if err != nil {
		t.Fatal(err)
	}
	<-conn.HandshakeComplete()
	if status, err := post(ctx, conn, "localhost:"+port, body); err != nil || status != http.StatusCreated {
		t.Fatalf("POST after the handshake: status %d, %v; want 201", status, err)
	}
	if n := len(pool.Received()); n != 1 {
		t.Fatalf("the pool got %d requests, want 1", n)
	}
	<-sessions.got
	_ = conn.CloseWithError(0, "")

	// The next connection resumes the session and sends its POST in
	// 0-RTT; the relay keeps the handshake from completing. A client that
	// has the server's handshake flight before it writes the POST (on a
	// busy machine) sends it in 1-RTT, which the relay holds: nothing
	// reaches the edge, the connection goes idle (a short idle timeout
	// ends it sooner), and the attempt is made again on a new one.
	relay := newHoldingRelay(t, edgeAddr)
	early := &quic.Config{MaxIdleTimeout: 3 * time.Second}
	for attempt := 1; ; attempt++ {
		conn, err := quic.DialAddrEarly(ctx, relay.addr(), tlsConf, early)
		if err != nil {
			t.Fatal(err)
		}
		status, err := post(ctx, conn, "localhost:"+port, body)
		used := conn.ConnectionState().Used0RTT
		_ = conn.CloseWithError(0, "")
		if n := len(pool.Received()); n != 1 {
			t.Fatalf("the pool got %d requests, want still 1", n)
		}
		if err == nil {
			if !used {
				t.Fatal("the request did not go in 0-RTT")
			}
			if status != http.StatusTooEarly {
				t.Errorf("POST in 0-RTT: status %d, want 425", status)
			}
			break
		}
		if attempt == 5 {
			t.Fatalf("no POST of %d went in 0-RTT: %v", attempt, err)
		}
	}
}

// ticketCache is a session cache that closes got once it holds a ticket.
type ticketCache struct {
	tls.ClientSessionCache
	once sync.Once
	got  chan struct{}
}

func (c *ticketCache) Put(key string, cs *tls.ClientSessionState) {
	c.ClientSessionCache.Put(key, cs)
	if cs != nil {
		c.once.Do(func() { close(c.got) })
	}
}

// post sends a startPhoneAudio POST on conn, which may still be in its
// handshake (0-RTT): a request stream of its own, since http3's round
// trip waits for the handshake for any method but GET and HEAD.
func post(ctx context.Context, conn *quic.Conn, host, body string) (int, error) {
	cc := (&http3.Transport{}).NewClientConn(conn)
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		return 0, err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+host+startPath, http.NoBody)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = int64(len(body))
	if err := str.SendRequestHeader(req); err != nil {
		return 0, err
	}
	if _, err := io.WriteString(str, body); err != nil {
		return 0, err
	}
	_ = str.Close()
	resp, err := str.ReadResponse()
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// holdingRelay passes UDP datagrams between one client and a server, but
// holds back (drops) every client datagram with a Handshake or 1-RTT
// packet in it: the server then never completes the handshake, and
// whatever it answers, it answers to early data.
type holdingRelay struct {
	ln     *net.UDPConn
	server *net.UDPAddr
	mu     sync.Mutex
	client *net.UDPAddr
}

func newHoldingRelay(t *testing.T, serverAddr string) *holdingRelay {
	t.Helper()
	server, err := net.ResolveUDPAddr("udp", serverAddr)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	up, err := net.DialUDP("udp", nil, server)
	if err != nil {
		t.Fatal(err)
	}
	r := &holdingRelay{ln: ln, server: server}
	t.Cleanup(func() { _ = ln.Close(); _ = up.Close() })
	go func() { // client -> server
		buf := make([]byte, 65536)
		for {
			n, from, err := ln.ReadFromUDP(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.client = from
			r.mu.Unlock()
			if onlyEarlyPackets(buf[:n]) {
				_, _ = up.Write(buf[:n])
			}
		}
	}()
	go func() { // server -> client
		buf := make([]byte, 65536)
		for {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			c := r.client
			r.mu.Unlock()
			if c != nil {
				_, _ = ln.WriteToUDP(buf[:n], c)
			}
		}
	}()
	return r
}

func (r *holdingRelay) addr() string { return r.ln.LocalAddr().String() }

// onlyEarlyPackets reports whether a QUIC v1 datagram holds Initial and
// 0-RTT packets alone (long headers of type 0 and 1, coalesced).
func onlyEarlyPackets(d []byte) bool {
	for len(d) > 0 {
		if d[0]&0x80 == 0 { // a short header: 1-RTT
			return false
		}
		typ := d[0] >> 4 & 3
		if typ != 0 && typ != 1 || len(d) < 6 {
			return false
		}
		i := 5
		for range 2 { // destination and source connection ids
			if i >= len(d) {
				return false
			}
			i += 1 + int(d[i])
		}
		if typ == 0 { // the token
			n, l := quicVarint(d[i:])
			if l == 0 {
				return false
			}
			i += l + int(n)
		}
		n, l := quicVarint(d[min(i, len(d)):])
		if l == 0 {
			return false
		}
		i += l + int(n)
		if i > len(d) {
			return false
		}
		d = d[i:]
	}
	return true
}

func quicVarint(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	l := 1 << (b[0] >> 6)
	if len(b) < l {
		return 0, 0
	}
	v := uint64(b[0] & 0x3f)
	for _, c := range b[1:l] {
		v = v<<8 | uint64(c)
	}
	return v, l
}

// selfSignedCert writes a certificate for localhost and its key to the
// test's directory, and returns their files and a pool that trusts it.
func selfSignedCert(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// startBodyTimeoutEdge starts an edge over TLS for localhost, its server's
// read_body 1s, in front of a raw pool that records what it receives.
func startBodyTimeoutEdge(t *testing.T) (edge, *testkit.RawUpstream, *x509.CertPool) {
	certFile, keyFile, roots := selfSignedCert(t)
	pool := testkit.NewRawUpstream(t)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`{
	servers {
		timeouts {
			read_body 1s
		}
	}
}
https://localhost:EDGE_PORT {
	tls %s %s
	ucwa {
		jwt off
		default_region US
		primary %s
	}
}`, certFile, keyFile, pool.Addr()))
	return e, pool, roots
}

// TestHTTP3BodyTimeout: over HTTP/3, whose server takes none of net/http's
// timeouts (Caddy sets read deadlines per request instead), a body that
// does not arrive before read_body passes is answered 408 ClientTimeout,
// as over HTTP/1.1 and HTTP/2, and reaches no pool. The client sends part of its body and never the rest; read_body
// is configuration, not a measure, and the context only keeps a broken
// edge from hanging the test.
func TestHTTP3BodyTimeout(t *testing.T) {
	e, pool, roots := startBodyTimeoutEdge(t)
	port := strconv.Itoa(e.Port("EDGE_PORT"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, testkit.Addr(e.Port("EDGE_PORT")), &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{http3.NextProtoH3}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	cc := (&http3.Transport{}).NewClientConn(conn)
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const body = `{"to":"4255551234"}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://localhost:"+port+startPath, http.NoBody)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	if err := str.SendRequestHeader(req); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(str, body[:5]); err != nil {
		t.Fatal(err)
	}
	resp, err := str.ReadResponse()
	if err != nil {
		t.Fatalf("no answer to a body that never completes: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), `"code":"ClientTimeout"`) {
		t.Errorf("status %d, body %s; want 408 ClientTimeout", resp.StatusCode, b)
	}
	if n := len(pool.Received()); n != 0 {
		t.Errorf("the pool got %d requests, want none", n)
	}
}
