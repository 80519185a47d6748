package caddymodule

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// proxyDialTimeout is the dial_timeout of the pools the proxy handshake
// tests reach through a forward proxy: it bounds the proxy's handshake.
const proxyDialTimeout = time.Second

// TestPoolProxyHandshakeStalls: a forward proxy in front of a pool that
// takes the TCP connection but never ends its handshake (a SOCKS5 proxy
// silent from the start, or one that never answers the CONNECT, as when
// its own dial to the pool hangs; an HTTP proxy, over TCP or TLS, that
// never answers an https pool's CONNECT) never passed the request on:
// once the transport's dial_timeout passed from the handshake's start,
// the request goes to the backup, once (410 CannotRedirect without
// one), rather than waiting until the client gives up (net/http bounds
// neither SOCKS5's handshake nor, under a minute, CONNECT's).
func TestPoolProxyHandshakeStalls(t *testing.T) {
	for _, tc := range []struct {
		name string
		// proxy starts the stalled proxy and returns its URL.
		proxy func(t *testing.T) string
	}{
		{"socks5 silent", func(t *testing.T) string {
			p := newBarePool(t)
			p.start(func(conn net.Conn) { _, _ = io.Copy(io.Discard, conn) })
			return "socks5://" + p.Addr()
		}},
		{"socks5 CONNECT unanswered", func(t *testing.T) string {
			p := newBarePool(t)
			p.start(func(conn net.Conn) {
				greeting := make([]byte, 3)
				if _, err := io.ReadFull(conn, greeting); err != nil {
					return
				}
				if _, err := conn.Write([]byte{5, 0}); err != nil { // no authentication
					return
				}
				_, _ = io.Copy(io.Discard, conn) // the CONNECT, never answered
			})
			return "socks5://" + p.Addr()
		}},
		{"http CONNECT unanswered", func(t *testing.T) string {
			p := newBarePool(t)
			p.start(func(conn net.Conn) { _, _ = io.Copy(io.Discard, conn) })
			return "http://" + p.Addr()
		}},
		{"https CONNECT unanswered", func(t *testing.T) string {
			return startConnectProxy(t, true, func(conn net.Conn, _ string) { _, _ = io.Copy(io.Discard, conn) })
		}},
	} {
		for _, withBackup := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/backup=%v", tc.name, withBackup), func(t *testing.T) {
				primary := testkit.NewHTTPSPool(t, "primary", testkit.AnswerCreated)
				pools := "\t\tprimary " + primary.URL() + proxiedTransport(primary.CAFile(t), tc.proxy(t))
				var backup *testkit.Pool
				if withBackup {
					backup = testkit.NewPool(t, "backup", testkit.AnswerCreated)
					pools += "\n\t\tbackup " + backup.Addr()
				}
				assertStalledPrimaryFailsOver(t, pools, backup)
				if n := primary.Arrived.Load(); n != 0 {
					t.Errorf("the primary got %d requests through the stalled proxy", n)
				}
			})
		}
	}
}

// TestPoolProxyHandshakeDone: once a forward proxy ended its handshake
// (SOCKS5's, with or without username/password authentication, whatever
// address its reply gives; an HTTP proxy's CONNECT answer, over TCP or
// TLS), the connection is the pool's without a bound: a pool that
// answers once the transport's dial_timeout passed twice since the
// request arrived (so since the handshake, and any deadline set on the
// connection for it) has its answer passed on, and the request was
// delivered once. A round trip through an HTTP proxy to a pool without
// TLS has no handshake.
func TestPoolProxyHandshakeDone(t *testing.T) {
	// The pool's answer waits out dial_timeout twice: the fact awaited
	// is that much time having passed, and a deadline set on the
	// connection as its handshake began would have passed a whole
	// dial_timeout before the answer comes, however late its timer runs.
	late := func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) {
		<-time.After(2 * proxyDialTimeout)
		testkit.AnswerCreated(p, w, r)
	}
	tunnel := func(conn net.Conn, target string) {
		up, err := net.Dial("tcp", target)
		if err != nil {
			_, _ = io.WriteString(conn, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
			return
		}
		if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err == nil {
			splice(conn, up)
		}
		_ = up.Close()
	}
	cases := []struct {
		name    string
		poolTLS bool
		proxy   func(t *testing.T, primary *testkit.Pool) string
	}{
		{"socks5, IPv4 reply", false, func(t *testing.T, _ *testkit.Pool) string {
			return "socks5://" + startSOCKS5Proxy(t, "", "", 0x01)
		}},
		{"socks5 with a password, name reply, TLS pool", true, func(t *testing.T, _ *testkit.Pool) string {
			return "socks5://edge:secret@" + startSOCKS5Proxy(t, "edge", "secret", 0x03)
		}},
		{"socks5h, IPv6 reply", false, func(t *testing.T, _ *testkit.Pool) string {
			return "socks5h://" + startSOCKS5Proxy(t, "", "", 0x04)
		}},
		{"http CONNECT", true, func(t *testing.T, _ *testkit.Pool) string {
			return startConnectProxy(t, false, tunnel)
		}},
		{"https CONNECT", true, func(t *testing.T, _ *testkit.Pool) string {
			return startConnectProxy(t, true, tunnel)
		}},
		// The pool's own listener serves as the proxy: net/http's server
		// takes the absolute form a forward proxy is sent.
		{"http, no CONNECT", false, func(t *testing.T, primary *testkit.Pool) string {
			return "http://" + primary.Addr()
		}},
	}
	// A site of its own for each case, all in one config: the cases wait
	// out their pools' answers together.
	type site struct {
		port            string
		primary, backup *testkit.Pool
	}
	sites := make([]site, len(cases))
	config := ""
	for i, tc := range cases {
		s := site{port: fmt.Sprintf("CASE%d_PORT", i)}
		caFile := ""
		if tc.poolTLS {
			s.primary = testkit.NewHTTPSPool(t, "primary", late)
			caFile = s.primary.CAFile(t)
		} else {
			s.primary = testkit.NewPool(t, "primary", late)
		}
		s.backup = testkit.NewPool(t, "backup", testkit.AnswerCreated)
		pools := "\t\tprimary " + s.primary.URL() + proxiedTransport(caFile, tc.proxy(t, s.primary)) + "\n\t\tbackup " + s.backup.Addr()
		config += poolsSite(s.port, pools)
		sites[i] = s
	}
	edges := startEdge(t, "caddyfile", config)
	for i, tc := range cases {
		s := sites[i]
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := edges.site(t, s.port)
			if resp := e.startPhoneAudio("late"); resp.Status != http.StatusCreated || resp.Header.Get("X-Ucwa-Pool") != "pool=primary" {
				t.Fatalf("%d %s from %q, want 201 from the primary", resp.Status, resp.Body, resp.Header.Get("X-Ucwa-Pool"))
			}
			if n := countOp(s.primary.OperationIDs(), "late"); n != 1 {
				t.Errorf("the primary got the request %d times, want once", n)
			}
			if n := len(s.backup.Received()); n != 0 {
				t.Errorf("the backup got %d requests", n)
			}
		})
	}
}

// TestPoolProxyHandshakeBackupDirect: a backup reached without a proxy
// after the primary's proxy stalled is dialed as itself, although the
// request's variables still name the primary's proxy (reverse_proxy
// leaves them so for a round trip without one): its connection has no
// handshake bound, and its answer, which comes once its dial_timeout
// passed twice, is passed on (the first bytes it reads, without an
// interim 100 Continue).
func TestPoolProxyHandshakeBackupDirect(t *testing.T) {
	stalled := newBarePool(t)
	stalled.start(func(conn net.Conn) { _, _ = io.Copy(io.Discard, conn) })
	primary := testkit.NewPool(t, "primary", testkit.AnswerCreated)
	backup := testkit.NewPool(t, "backup", func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) {
		<-time.After(2 * proxyDialTimeout) // as in TestPoolProxyHandshakeDone
		testkit.AnswerCreated(p, w, r)
	})
	pools := "\t\tprimary " + primary.URL() + proxiedTransport("", "socks5://"+stalled.Addr()) +
		"\n\t\tbackup " + backup.Addr() + " {\n\t\t\ttransport http {\n\t\t\t\tdial_timeout " + proxyDialTimeout.String() + "\n\t\t\t}\n\t\t\theader_up -Expect\n\t\t}"
	e := startEdge(t, "caddyfile", poolsCaddyfile(pools))
	if resp := e.startPhoneAudio("direct"); resp.Status != http.StatusCreated || resp.Header.Get("X-Ucwa-Pool") != "pool=backup" {
		t.Fatalf("%d %s from %q, want 201 from the backup", resp.Status, resp.Body, resp.Header.Get("X-Ucwa-Pool"))
	}
	if n := countOp(backup.OperationIDs(), "direct"); n != 1 {
		t.Errorf("the backup got the request %d times, want once", n)
	}
	if n := primary.Arrived.Load(); n != 0 {
		t.Errorf("the primary got %d requests through the stalled proxy", n)
	}
}

// proxiedTransport is a pool's block with a transport that reaches it
// through the forward proxy at proxyURL, with proxyDialTimeout, trusting
// caFile's certificate when not "" (that of the test's TLS pools and
// proxies alike).
func proxiedTransport(caFile, proxyURL string) string {
	lines := "\n\t\t\t\tdial_timeout " + proxyDialTimeout.String() + "\n\t\t\t\tnetwork_proxy ucwa_test_fixed " + proxyURL
	if caFile != "" {
		lines += "\n\t\t\t\ttls_trust_pool file " + caFile
	}
	return " {\n\t\t\ttransport http {" + lines + "\n\t\t\t}\n\t\t}"
}

// startConnectProxy starts an HTTP forward proxy (over TLS when useTLS,
// with the certificate of the test's TLS pools) whose CONNECT requests
// serve hands the client's connection, hijacked, and the target, without
// an answer yet; it returns the proxy's URL.
func startConnectProxy(t *testing.T, useTLS bool, serve func(conn net.Conn, target string)) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		serve(conn, r.Host)
	}))
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv.URL
}

// startSOCKS5Proxy starts a SOCKS5 proxy (RFC 1928) that asks for user
// and pass (RFC 1929) unless user is "", and gives a reply's bound
// address with the address type replyType (1 IPv4, 3 a name, 4 IPv6);
// it returns the proxy's address.
func startSOCKS5Proxy(t *testing.T, user, pass string, replyType byte) string {
	t.Helper()
	p := newBarePool(t)
	p.start(func(conn net.Conn) {
		read := func(n int) []byte {
			b := make([]byte, n)
			if _, err := io.ReadFull(conn, b); err != nil {
				return nil
			}
			return b
		}
		greeting := read(2)
		if greeting == nil || greeting[0] != 5 || read(int(greeting[1])) == nil {
			return
		}
		if user == "" {
			if _, err := conn.Write([]byte{5, 0}); err != nil {
				return
			}
		} else {
			if _, err := conn.Write([]byte{5, 2}); err != nil {
				return
			}
			version := read(2)
			if version == nil {
				return
			}
			gotUser := read(int(version[1]))
			passLen := read(1)
			if gotUser == nil || passLen == nil {
				return
			}
			gotPass := read(int(passLen[0]))
			if string(gotUser) != user || string(gotPass) != pass {
				_, _ = conn.Write([]byte{1, 1})
				return
			}
			if _, err := conn.Write([]byte{1, 0}); err != nil {
				return
			}
		}
		request := read(4)
		if request == nil || request[1] != 1 {
			return
		}
		var host string
		switch request[3] {
		case 1, 4:
			addr := read(map[byte]int{1: 4, 4: 16}[request[3]])
			if addr == nil {
				return
			}
			host = net.IP(addr).String()
		case 3:
			n := read(1)
			if n == nil {
				return
			}
			host = string(read(int(n[0])))
		default:
			return
		}
		port := read(2)
		if port == nil {
			return
		}
		up, err := net.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port)))))
		if err != nil {
			_, _ = conn.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}) // connection refused
			return
		}
		defer up.Close()
		reply := []byte{5, 0, 0, replyType}
		switch replyType {
		case 1:
			reply = append(reply, 127, 0, 0, 1)
		case 3:
			reply = append(reply, byte(len("localhost")))
			reply = append(reply, "localhost"...)
		case 4:
			reply = append(reply, net.IPv6loopback...)
		}
		reply = binary.BigEndian.AppendUint16(reply, uint16(up.LocalAddr().(*net.TCPAddr).Port))
		if _, err := conn.Write(reply); err != nil {
			return
		}
		splice(conn, up)
	})
	return p.Addr()
}

// splice copies between a and b both ways until either ends.
func splice(a, b net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(a, b)
		_ = a.Close()
	}()
	_, _ = io.Copy(b, a)
	_ = b.Close()
	<-done
}

// TestProxyAddr: the forward proxy's address is the one net/http dials
// for it (its canonicalAddr): the host in ASCII, and the port given or
// the scheme's, so that the dial to the proxy is told from the pool's,
// whose handshake is then bounded.
func TestProxyAddr(t *testing.T) {
	for _, tc := range []struct{ proxy, want string }{
		{"http://proxy.contoso.com:3128", "proxy.contoso.com:3128"},
		{"http://proxy.contoso.com", "proxy.contoso.com:80"},
		{"https://proxy.contoso.com", "proxy.contoso.com:443"},
		{"socks5://proxy.contoso.com", "proxy.contoso.com:1080"},
		{"socks5h://proxy.contoso.com", "proxy.contoso.com:1080"},
		{"http://[::1]", "[::1]:80"},
		{"http://bücher.example:8080", "xn--bcher-kva.example:8080"},
	} {
		u, err := url.Parse(tc.proxy)
		if err != nil {
			t.Fatal(err)
		}
		if got := proxyAddr(u); got != tc.want {
			t.Errorf("proxyAddr(%s) = %s, want %s", tc.proxy, got, tc.want)
		}
	}
}
