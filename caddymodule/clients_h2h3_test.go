package caddymodule

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/qpack"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/quic-go/quicvarint"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// trailerPool is a front-end pool that records, beside each request,
// the trailer fields it got after the body.
type trailerPool struct {
	*testkit.Pool
	mu       sync.Mutex
	trailers []http.Header
}

func newTrailerPool(t *testing.T) *trailerPool {
	p := &trailerPool{}
	p.Pool = testkit.NewPool(t, "primary", func(pool *testkit.Pool, w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.trailers = append(p.trailers, r.Trailer.Clone())
		p.mu.Unlock()
		testkit.AnswerCreated(pool, w, r)
	})
	return p
}

// clientEdge is an edge over TLS (a certificate of its own, HTTP/1.1,
// HTTP/2 and HTTP/3) in front of pool, without tokens.
type clientEdge struct {
	edge
	roots *x509.CertPool
	addr  string // 127.0.0.1:port, TCP and UDP
	host  string // localhost:port, the authority
}

func startClientEdge(t *testing.T, pool string, global string) clientEdge {
	t.Helper()
	return startClientEdgeWith(t, global, "jwt off\n\t\tdefault_region US\n\t\tprimary "+pool)
}

// startClientEdgeWith is startClientEdge with the global options and
// the ucwa block's subdirectives given.
func startClientEdgeWith(t *testing.T, global, subdirectives string) clientEdge {
	t.Helper()
	certFile, keyFile, roots := selfSignedCert(t)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`{
	%s
}
https://localhost:EDGE_PORT {
	tls %s %s
	ucwa {
		%s
	}
}`, global, certFile, keyFile, subdirectives))
	port := e.Port("EDGE_PORT")
	return clientEdge{e, roots, testkit.Addr(port), "localhost:" + strconv.Itoa(port)}
}

// h2Client speaks raw HTTP/2 frames to the edge.
type h2Client struct {
	t    *testing.T
	conn *tls.Conn
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
	dec  *hpack.Decoder
}

func dialH2(t *testing.T, e clientEdge) *h2Client {
	t.Helper()
	conn, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.roots, ServerName: "localhost", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("negotiated %q, want h2", p)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := &h2Client{t: t, conn: conn, fr: http2.NewFramer(conn, conn)}
	c.enc = hpack.NewEncoder(&c.hbuf)
	c.dec = hpack.NewDecoder(65536, nil)
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c
}

// headers sends a HEADERS frame of the name, value pairs.
func (c *h2Client) headers(stream uint32, endStream bool, fields ...string) {
	c.t.Helper()
	c.hbuf.Reset()
	for i := 0; i < len(fields); i += 2 {
		_ = c.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: c.hbuf.Bytes(), EndStream: endStream, EndHeaders: true}); err != nil {
		c.t.Fatal(err)
	}
}

// request sends the head of a startPhoneAudio POST.
func (c *h2Client) request(e clientEdge, stream uint32, endStream bool, extra ...string) {
	c.t.Helper()
	c.headers(stream, endStream, append([]string{":method", "POST", ":scheme", "https", ":authority", e.host, ":path", startPath,
		"content-type", "application/json"}, extra...)...)
}

func (c *h2Client) data(stream uint32, endStream bool, s string) {
	c.t.Helper()
	if err := c.fr.WriteData(stream, endStream, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// h2Answer is what came back on a stream: a status (0 for none), the
// body, and the code of a RST_STREAM or GOAWAY that ended it.
type h2Answer struct {
	status int
	body   string
	reset  string
}

// sendH2 sends one request on a new HTTP/2 connection to e, its HEADERS
// (which end the stream when body is empty) and body in a DATA frame,
// and reads its answer.
func sendH2(t *testing.T, e clientEdge, fields []string, body string) h2Answer {
	t.Helper()
	c := dialH2(t, e)
	c.headers(1, body == "", fields...)
	if body != "" {
		c.data(1, true, body)
	}
	return c.answer(1)
}

// sendH3 sends one request on a new stream of conn, its HEADERS and body
// in a DATA frame (none when empty), ends the stream, and reads its
// answer as an HTTP/2 one's.
func sendH3(t *testing.T, conn *quic.Conn, fields []string, body string) h2Answer {
	t.Helper()
	s := openH3(t, conn)
	s.headers(fields...)
	if body != "" {
		s.data(body)
	}
	_ = s.str.Close()
	var a h2Answer
	a.status, a.body, a.reset = s.answer()
	return a
}

// answer reads frames until stream is answered or reset.
func (c *h2Client) answer(stream uint32) h2Answer {
	c.t.Helper()
	var a h2Answer
	var body bytes.Buffer
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			a.reset, a.body = "read: "+err.Error(), body.String()
			return a
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = c.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = c.fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			a.reset, a.body = "GOAWAY "+f.ErrCode.String(), body.String()
			return a
		case *http2.RSTStreamFrame:
			if f.StreamID == stream {
				a.reset, a.body = "RST_STREAM "+f.ErrCode.String(), body.String()
				return a
			}
		case *http2.HeadersFrame:
			if f.StreamID != stream {
				continue
			}
			fields, err := c.dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				c.t.Fatal(err)
			}
			for _, hf := range fields {
				if hf.Name == ":status" {
					a.status, _ = strconv.Atoi(hf.Value)
				}
			}
			if f.StreamEnded() {
				a.body = body.String()
				return a
			}
		case *http2.DataFrame:
			if f.StreamID != stream {
				continue
			}
			body.Write(f.Data())
			if n := len(f.Data()); n > 0 {
				_ = c.fr.WriteWindowUpdate(0, uint32(n))
				_ = c.fr.WriteWindowUpdate(stream, uint32(n))
			}
			if f.StreamEnded() {
				a.body = body.String()
				return a
			}
		}
	}
}

// h3Stream is a raw HTTP/3 request stream to the edge.
type h3Stream struct {
	t   *testing.T
	str *quic.Stream
	br  *bufio.Reader
}

func dialH3(t *testing.T, e clientEdge) *quic.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, e.addr, &tls.Config{RootCAs: e.roots, ServerName: "localhost", NextProtos: []string{http3.NextProtoH3}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.CloseWithError(0, "") })
	// The client's control stream, with its (empty) SETTINGS.
	ctrl, err := conn.OpenUniStream()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = ctrl.Write([]byte{0x00, 0x04, 0x00})
	return conn
}

func openH3(t *testing.T, conn *quic.Conn) *h3Stream {
	t.Helper()
	str, err := conn.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	_ = str.SetDeadline(time.Now().Add(30 * time.Second))
	return &h3Stream{t: t, str: str, br: bufio.NewReader(str)}
}

func (s *h3Stream) frame(typ uint64, payload []byte) {
	s.t.Helper()
	b := quicvarint.Append(nil, typ)
	b = quicvarint.Append(b, uint64(len(payload)))
	// A write fails once the edge answered without reading the rest
	// (quic-go stops the stream's sending then): the answer tells.
	_, _ = s.str.Write(append(b, payload...))
}

func (s *h3Stream) headers(fields ...string) {
	s.t.Helper()
	var buf bytes.Buffer
	enc := qpack.NewEncoder(&buf)
	for i := 0; i < len(fields); i += 2 {
		_ = enc.WriteField(qpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	s.frame(0x01, buf.Bytes())
}

func (s *h3Stream) request(e clientEdge, extra ...string) {
	s.t.Helper()
	s.headers(append([]string{":method", "POST", ":scheme", "https", ":authority", e.host, ":path", startPath,
		"content-type", "application/json"}, extra...)...)
}

func (s *h3Stream) data(b string) { s.t.Helper(); s.frame(0x00, []byte(b)) }

// answer reads the answer: its status (0 for none), body, and the error
// that ended it early ("" for none), as an h2Conn's answer has them.
func (s *h3Stream) answer() (status int, body, reset string) {
	status, body, err := s.readAnswer()
	if err != nil {
		reset = err.Error()
	}
	return status, body, reset
}

// readAnswer is answer, with the error that ended it early.
func (s *h3Stream) readAnswer() (status int, body string, err error) {
	var out bytes.Buffer
	for {
		typ, err := quicvarint.Read(s.br)
		if err != nil {
			if errors.Is(err, io.EOF) && status != 0 {
				return status, out.String(), nil
			}
			return status, out.String(), err
		}
		n, err := quicvarint.Read(s.br)
		if err != nil {
			return status, out.String(), err
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(s.br, payload); err != nil {
			return status, out.String(), err
		}
		switch typ {
		case 0x01:
			dec := qpack.NewDecoder()
			next := dec.Decode(payload)
			for {
				hf, err := next()
				if err != nil {
					break
				}
				if hf.Name == ":status" {
					status, _ = strconv.Atoi(hf.Value)
				}
			}
		case 0x00:
			out.Write(payload)
		}
	}
}

// h2h3Body is a startPhoneAudio JSON body.
const h2h3Body = `{"to":"tel:+14255551234","operationId":"x"}`
