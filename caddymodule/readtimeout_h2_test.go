package caddymodule

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHTTP2BodyTimeout: over HTTP/2, a body that does not arrive before
// the server's read_body passes is answered 408 ClientTimeout, as over
// HTTP/1.1 and HTTP/3, reaches no pool and gets its audit line. The
// client sends part of its body and never the rest; read_body is
// configuration, not a measure, and the context only keeps a broken
// edge from hanging the test.
func TestHTTP2BodyTimeout(t *testing.T) {
	e, pool, roots := startBodyTimeoutEdge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	protocols := new(http.Protocols)
	protocols.SetHTTP2(true)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "localhost"}, Protocols: protocols}
	defer tr.CloseIdleConnections()
	const body = `{"to":"4255551234"}`
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = io.WriteString(pw, body[:5]) }()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://localhost:"+strconv.Itoa(e.Port("EDGE_PORT"))+startPath, pr)
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("no answer to a body that never completes: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("answered over %s, want HTTP/2", resp.Proto)
	}
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), `"code":"ClientTimeout"`) {
		t.Fatalf("status %d, body %s; want 408 ClientTimeout", resp.StatusCode, b)
	}
	e.Logs().Wait(t, `"logger":"http.handlers.ucwa.audit"`, `"error":"ClientTimeout"`, `"status":408`)
	if n := len(pool.Received()); n != 0 {
		t.Errorf("the pool got %d requests, want none", n)
	}
}
