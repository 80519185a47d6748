package caddymodule

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// slowClientConfig is an edge whose server on SLOW_PORT gives a client 1s
// to send its request headers and 1s for the whole request (configuration,
// not a measure: the client under test never sends the rest), and the
// same edge, in front of the same pool, on EDGE_PORT with Caddy's
// defaults. Tokens are HS256 with the secret in UCWA_TEST_JWT_SECRET.
func slowClientConfig(pool string) string {
	return fmt.Sprintf(`{
	servers :SLOW_PORT {
		timeouts {
			read_header 1s
			read_body 1s
		}
	}
}
(edge) {
	ucwa {
		jwt {
			algorithms HS256
			hmac_secret {env.UCWA_TEST_JWT_SECRET}
		}
		default_region US
	}
	reverse_proxy %s
}
:SLOW_PORT {
	log
	import edge
}
:EDGE_PORT {
	import edge
}`, pool)
}

// rawConn is a connection to the edge that sends bytes as the test
// chooses. Its deadline bounds a read that never ends (a minute), so that
// a broken edge fails the test rather than hanging it; it measures
// nothing.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// startPhoneAudioHead is the head of an authenticated JSON startPhoneAudio
// request that announces a body of length bytes.
func startPhoneAudioHead(token string, length int) string {
	return "POST " + startPath + " HTTP/1.1\r\nHost: edge.contoso.com\r\nAuthorization: Bearer " + token +
		"\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(length) + "\r\n\r\n"
}

// TestSlowBody: an authenticated client that sends its headers and part
// of the body, then stalls, gets 408 ClientTimeout once the server's
// read_body timeout passes, the connection is closed, and the pool saw
// nothing. The same request with its whole body goes through to the pool.
func TestSlowBody(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	pool := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", slowClientConfig(pool.Addr()))
	token := testkit.Mint(t, jwt.SigningMethodHS256, testkit.Keys(t).HMAC, "", testkit.Claims(time.Now(), nil))
	body := `{"to":"sip:john@contoso.com","phoneNumber":"4255550100","operationId":"slow-1"}`

	conn := rawConn(t, testkit.Addr(e.Port("SLOW_PORT")))
	if _, err := io.WriteString(conn, startPhoneAudioHead(token, len(body))+body[:20]); err != nil {
		t.Fatal(err)
	}
	// The rest of the body never comes.
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the edge's answer: %v", err)
	}
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the edge's answer: %v", err)
	}
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408: %s", resp.StatusCode, answer)
	}
	assertUCWAError(t, testkit.Response{Status: resp.StatusCode, Header: resp.Header, Body: string(answer)}, "ClientTimeout", "", nil, false)
	if !resp.Close {
		t.Error("the answer keeps the connection open")
	}
	// The server closes the connection: a stalled body holds it no longer.
	if n, err := conn.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("after the answer, read %d bytes, %v; want the connection closed (EOF)", n, err)
	}
	e.Logs().Wait(t, `"msg":"handled request"`, `"status":408`, `"ucwa_error":"ClientTimeout"`)
	if n := pool.Arrived.Load(); n != 0 {
		t.Fatalf("the pool saw %d requests", n)
	}

	// The whole request, to the same pool, gets there: the pool would
	// have counted the stalled one.
	resp2 := e.send(testkit.Request{URL: startPath, ContentType: "application/json", Body: body,
		Header: http.Header{"Authorization": {"Bearer " + token}}})
	if resp2.Status != http.StatusCreated || pool.Arrived.Load() != 1 {
		t.Fatalf("a whole request: status %d, the pool saw %d: %s", resp2.Status, pool.Arrived.Load(), resp2.Body)
	}
}

// TestSlowHeaders: a client that sends part of its request headers and
// stalls is cut off once the server's read_header timeout passes: Go's
// server closes the connection without an answer (it answers nothing to
// a request it could not read), and the pool saw nothing.
func TestSlowHeaders(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	pool := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", slowClientConfig(pool.Addr()))
	token := testkit.Mint(t, jwt.SigningMethodHS256, testkit.Keys(t).HMAC, "", testkit.Claims(time.Now(), nil))

	conn := rawConn(t, testkit.Addr(e.Port("SLOW_PORT")))
	head := startPhoneAudioHead(token, 2)
	if _, err := io.WriteString(conn, head[:strings.Index(head, "Content-Type")]); err != nil {
		t.Fatal(err)
	}
	// The rest of the headers never comes.
	got, err := io.ReadAll(conn)
	if err != nil || len(got) != 0 {
		t.Fatalf("read %q, %v; want the connection closed without an answer", got, err)
	}
	if n := pool.Arrived.Load(); n != 0 {
		t.Fatalf("the pool saw %d requests", n)
	}
}

// TestBodyCutShort: a body that ends before its Content-Length (the
// client shut its side of the connection) is not a timeout: 400
// DeserializationFailure, and the pool saw nothing.
func TestBodyCutShort(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	pool := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", slowClientConfig(pool.Addr()))
	token := testkit.Mint(t, jwt.SigningMethodHS256, testkit.Keys(t).HMAC, "", testkit.Claims(time.Now(), nil))

	conn := rawConn(t, testkit.Addr(e.Port("EDGE_PORT")))
	if _, err := io.WriteString(conn, startPhoneAudioHead(token, 80)+`{"to":"sip:john@contoso.com"`); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the edge's answer: %v", err)
	}
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400: %s", resp.StatusCode, answer)
	}
	assertUCWAError(t, testkit.Response{Status: resp.StatusCode, Header: resp.Header, Body: string(answer)}, "BadRequest", "DeserializationFailure", nil, false)
	if n := pool.Arrived.Load(); n != 0 {
		t.Fatalf("the pool saw %d requests", n)
	}
}

// TestRefusedBeforeBodyAnsweredAtOnce: a request the edge refuses before
// it reads the body (a Content-Length over max_body_size, no token, a
// near miss, a framing refusal) is answered at once, without a 100
// Continue asking for the body, and with Connection: close, while the
// client has sent its headers alone (waiting for 100 Continue, or
// stalled). The edge's server has Caddy's default read timeouts (a
// minute): the client's deadline, well within them, bounds a wait for an
// answer that net/http would write only after reading the body it
// refused.
func TestRefusedBeforeBodyAnsweredAtOnce(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	pool := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", slowClientConfig(pool.Addr()))
	token := testkit.Mint(t, jwt.SigningMethodHS256, testkit.Keys(t).HMAC, "", testkit.Claims(time.Now(), nil))
	head := func(path, auth string, lines ...string) string {
		h := "POST " + path + " HTTP/1.1\r\nHost: edge.contoso.com\r\nContent-Type: application/json\r\n"
		if auth != "" {
			h += "Authorization: Bearer " + auth + "\r\n"
		}
		return h + strings.Join(lines, "\r\n") + "\r\n\r\n"
	}
	for _, tc := range []struct {
		name, head, code, subcode string
		status                    int
	}{
		{"Expect, Content-Length over max_body_size", head(startPath, token, "Expect: 100-continue", "Content-Length: 2097152"),
			"EntityTooLarge", "EntityTooLarge", http.StatusRequestEntityTooLarge},
		{"Content-Length over max_body_size, body stalled", head(startPath, token, "Content-Length: 1073741824"),
			"EntityTooLarge", "EntityTooLarge", http.StatusRequestEntityTooLarge},
		{"Expect, no token", head(startPath, "", "Expect: 100-continue", "Content-Length: 100"),
			"Unauthorized", "", http.StatusUnauthorized},
		{"chunked, no token, body stalled", head(startPath, "", "Transfer-Encoding: chunked"),
			"Unauthorized", "", http.StatusUnauthorized},
		{"Expect, a near miss", head(startPath+".aspx", token, "Expect: 100-continue", "Content-Length: 100"),
			"NotFound", "", http.StatusNotFound},
		{"Expect, trailers declared", head(startPath, token, "Expect: 100-continue", "Trailer: X-Checksum", "Content-Length: 100"),
			"BadRequest", "DeserializationFailure", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := rawConn(t, testkit.Addr(e.Port("EDGE_PORT")))
			if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(conn, tc.head); err != nil {
				t.Fatal(err)
			}
			// The body never comes.
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer while the body is unsent: %v", err)
			}
			answer, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (the edge asked for the body it refuses): %s", resp.StatusCode, tc.status, answer)
			}
			assertUCWAError(t, testkit.Response{Status: resp.StatusCode, Header: resp.Header, Body: string(answer)}, tc.code, tc.subcode, nil, false)
			// The client, which has not sent the body, is told to close.
			if !resp.Close {
				t.Error("the answer keeps the connection open")
			}
		})
	}
	if n := pool.Arrived.Load(); n != 0 {
		t.Fatalf("the pool saw %d requests", n)
	}
}
