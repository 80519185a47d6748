package caddymodule

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// sendForLocation posts a startPhoneAudio to e as edge.example, each of
// locs asking the pool (see locationPool) for a Location, and returns the
// status and the Location values the client got.
func sendForLocation(t *testing.T, e edge, locs ...string) (int, []string) {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, e.url("/ucwa/v1/applications/1/communication/startPhoneAudio"), strings.NewReader(`{"to":"4255551234"}`))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header["X-Test-Location"] = locs
	r.Host = "edge.example"
	client := &http.Client{Transport: e.Client().Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Values("Location")
}

// locationPool answers 201 with a Location for each X-Test-Location of
// the request, POOL replaced by host.
func locationPool(host string) testkit.Answer {
	return func(_ *testkit.Pool, w http.ResponseWriter, r *http.Request) {
		for _, v := range r.Header.Values("X-Test-Location") {
			w.Header().Add("Location", strings.ReplaceAll(v, "POOL", host))
		}
		w.WriteHeader(http.StatusCreated)
	}
}

// TestLocationAsClientsReadIt: no Location that names a pool's host, as
// a client that follows it reads it (a browser drops tabs, reads a
// backslash as a slash, decodes a host's escapes), reaches the client:
// one that parses goes out on the edge's host, one that does not is
// dropped; every Location value is looked at. Any other goes out as the
// pool wrote it.
func TestLocationAsClientsReadIt(t *testing.T) {
	var host string
	pool := testkit.NewPool(t, "primary", func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) {
		locationPool(host)(p, w, r)
	})
	_, port, _ := strings.Cut(pool.Addr(), ":")
	host = "localhost:" + port
	e := startEdge(t, "caddyfile", poolsCaddyfile("primary "+host))
	for _, tc := range []struct {
		locs []string
		want string // the Location values the client gets, joined with " | "
	}{
		{[]string{"http://POOL/a"}, "http://edge.example/a"},
		{[]string{"HTTPS://LOCALHOST.:1/a"}, "http://edge.example/a"},
		{[]string{"//POOL/a"}, "http://edge.example/a"},
		{[]string{"http://u:p@POOL/a"}, "http://edge.example/a"},
		{[]string{"http://elsewhere.example/a"}, "http://elsewhere.example/a"},
		{[]string{"/ucwa/x"}, "/ucwa/x"},
		{[]string{"invitations/7"}, "invitations/7"},
		{[]string{"http://POOL/a\tb"}, "http://edge.example/ab"},
		{[]string{"/\\POOL/a"}, "http://edge.example/a"},
		{[]string{"\\\\POOL\\a"}, "http://edge.example/a"},
		{[]string{"http:\\\\POOL\\a"}, "http://edge.example/a"},
		{[]string{"http://POOL/a%zz"}, ""},
		{[]string{"http://%6Cocalhost:1/a"}, ""},
		{[]string{"http://%zz/a"}, "http://%zz/a"},
		{[]string{"/ucwa/x", "http://POOL/b"}, "/ucwa/x | http://edge.example/b"},
	} {
		status, got := sendForLocation(t, e, tc.locs...)
		if status != http.StatusCreated || strings.Join(got, " | ") != tc.want {
			t.Errorf("the pool's Location %q: the client got %d %q, want %q", tc.locs, status, got, tc.want)
		}
	}
}

// TestLocationOnAnotherPool: a pool's Location on the host of the
// handler's other pool (a pool pair's front ends name each other) goes
// out on the edge's host too: the client would go to the backup past the
// edge.
func TestLocationOnAnotherPool(t *testing.T) {
	backup := testkit.NewUpstream(t)
	_, backupPort, _ := strings.Cut(backup.Addr(), ":")
	primary := testkit.NewPool(t, "primary", locationPool("127.0.0.1:"+backupPort))
	_, primaryPort, _ := strings.Cut(primary.Addr(), ":")
	e := startEdge(t, "caddyfile", poolsCaddyfile("primary localhost:"+primaryPort+"\n\t\tbackup 127.0.0.1:"+backupPort))
	status, got := sendForLocation(t, e, "http://POOL/ucwa/v1/applications/1/communication/invitations/1")
	if want := "http://edge.example/ucwa/v1/applications/1/communication/invitations/1"; status != http.StatusCreated || len(got) != 1 || got[0] != want {
		t.Errorf("the client got %d %q, want %q", status, got, want)
	}
}

// batchLocationPool answers a batch 200 with one 201 part for each
// X-Test-Location of the request, whose Location it is, POOL replaced by
// host, then a part with a body of X-Test-Body-Size bytes; gzipped when
// the request accepts gzip (Go's transport asks for it on the edge's
// behalf, and takes it off again) and X-Test-Framing is not "length",
// which has it declare the length of what it writes, uncompressed, as an
// IIS without dynamic compression does; "cut" has it declare a body
// longer than it writes, "hang" write half of it and wait. With
// X-Test-Part-Lengths each part gives its own Content-Length.
func batchLocationPool(host *string, halfSent chan<- struct{}) testkit.Answer {
	return func(_ *testkit.Pool, w http.ResponseWriter, r *http.Request) {
		var parts []ucwa.BatchResponse
		for _, v := range r.Header.Values("X-Test-Location") {
			parts = append(parts, ucwa.BatchResponse{Status: http.StatusCreated, Header: http.Header{"Location": {strings.ReplaceAll(v, "POOL", *host)}}})
		}
		size, _ := strconv.Atoi(r.Header.Get("X-Test-Body-Size"))
		parts = append(parts, ucwa.BatchResponse{Status: http.StatusOK, Header: http.Header{"Content-Type": {"text/plain"}}, Body: bytes.Repeat([]byte("x"), size)})
		ct, body, err := ucwa.EncodeBatchResponse(parts)
		if err != nil {
			panic(err)
		}
		if r.Header.Get("X-Test-Part-Lengths") != "" {
			body = withPartLengths(ct, body)
		}
		w.Header().Set("Content-Type", ct)
		framing := r.Header.Get("X-Test-Framing")
		if framing != "length" && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			var zipped bytes.Buffer
			zw := gzip.NewWriter(&zipped)
			_, _ = zw.Write(body)
			_ = zw.Close()
			body = zipped.Bytes()
			w.Header().Set("Content-Encoding", "gzip")
		}
		switch framing {
		case "cut":
			w.Header().Set("Content-Length", strconv.Itoa(len(body)+100))
		case "length":
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		case "hang":
			// Half the answer, then nothing until the edge leaves.
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(body[:len(body)/2])
			http.NewResponseController(w).Flush()
			halfSent <- struct{}{}
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}
}

// withPartLengths is body, a batch answer as EncodeBatchResponse writes
// it with Content-Type ct, each part given its own Content-Length.
func withPartLengths(ct string, body []byte) []byte {
	_, boundary, _ := strings.Cut(ct, `boundary="`)
	delim := "--" + strings.TrimSuffix(boundary, `"`)
	const head = "\r\nContent-Type: application/http; msgtype=response\r\n"
	var out strings.Builder
	for piece := range strings.SplitSeq(string(body), delim+head+"\r\n") {
		if piece == "" {
			continue // before the first part
		}
		// A part's response, then CRLF, and after the last part the
		// closing delimiter.
		inner, closing, last := strings.Cut(piece, "\r\n"+delim+"--")
		if !last {
			inner = strings.TrimSuffix(piece, "\r\n")
		}
		out.WriteString(delim + head + "Content-Length: " + strconv.Itoa(len(inner)) + "\r\n\r\n" + inner + "\r\n")
		if last {
			out.WriteString(delim + "--" + closing)
		}
	}
	return []byte(out.String())
}

// TestBatchAnswerLocations: a Location of a batch answer's part that
// names a pool's host goes out on the edge's host, as the answer's own
// does (one that does not parse is dropped), whatever content coding the
// client accepts; every other byte of the answer goes out as the pool
// wrote it, its Content-Length matching. An answer over maxBatchAnswer
// goes out as the pool wrote it, and one the pool cuts short goes out as
// far as it came.
func TestBatchAnswerLocations(t *testing.T) {
	var host string
	pool := testkit.NewPool(t, "primary", batchLocationPool(&host, nil))
	_, port, _ := strings.Cut(pool.Addr(), ":")
	host = "localhost:" + port
	e := startEdge(t, "caddyfile", poolsCaddyfile("primary "+host))
	edgeURL, err := url.Parse(e.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	batch := batchBody("GET /ucwa/v1/applications/1/me HTTP/1.1\r\n")
	send := func(t *testing.T, header http.Header) (*http.Response, []testkit.BatchAnswer, []byte, error) {
		t.Helper()
		r, err := http.NewRequest(http.MethodPost, e.url("/ucwa/v1/applications/1/batch"), strings.NewReader(batch))
		if err != nil {
			t.Fatal(err)
		}
		r.Header = header
		r.Header.Set("Content-Type", batchType)
		resp, err := e.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, readErr := io.ReadAll(resp.Body)
		if readErr != nil {
			return resp, nil, body, readErr
		}
		parts, perr := testkit.ReadBatch(resp.Header.Get("Content-Type"), body)
		if perr != nil {
			t.Fatalf("the answer does not parse: %v\n%q", perr, body)
		}
		return resp, parts, body, nil
	}
	locations := []string{"http://POOL/a", "/ucwa/x", "http://elsewhere.example/a", "http://POOL/a%zz", "//POOL/b?c"}
	edgeLocations := []string{"http://" + edgeURL.Host + "/a", "/ucwa/x", "http://elsewhere.example/a", "", "http://" + edgeURL.Host + "/b?c"}
	for _, tc := range []struct {
		name   string
		header http.Header
	}{
		{"chunked", http.Header{}},
		{"with Content-Length", http.Header{"X-Test-Framing": {"length"}}},
		{"the client accepts gzip", http.Header{"Accept-Encoding": {"gzip"}}},
		{"each part with its own Content-Length", http.Header{"X-Test-Part-Lengths": {"1"}, "X-Test-Framing": {"length"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.header["X-Test-Location"] = locations
			tc.header.Set("X-Test-Body-Size", "10")
			resp, parts, body, err := send(t, tc.header)
			if err != nil || resp.StatusCode != http.StatusOK || len(parts) != len(locations)+1 {
				t.Fatalf("%d %v: %d parts, want %d", resp.StatusCode, err, len(parts), len(locations)+1)
			}
			if cl := resp.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(body)) || tc.header.Get("X-Test-Framing") == "length" && cl == "" {
				t.Errorf("Content-Length %q, body %d bytes", cl, len(body))
			}
			for i, want := range edgeLocations {
				if got := parts[i].Header.Get("Location"); got != want || parts[i].Status != http.StatusCreated {
					t.Errorf("part %d: %d %q, want 201 %q", i+1, parts[i].Status, got, want)
				}
			}
			if last := parts[len(parts)-1]; last.Status != http.StatusOK || string(last.Body) != "xxxxxxxxxx" {
				t.Errorf("the last part: %d %q", last.Status, last.Body)
			}
		})
	}
	t.Run("over maxBatchAnswer", func(t *testing.T) {
		for _, framing := range []string{"", "length"} {
			_, parts, body, err := send(t, http.Header{"X-Test-Location": {"http://POOL/a"}, "X-Test-Body-Size": {strconv.Itoa(maxBatchAnswer)}, "X-Test-Framing": {framing}})
			if err != nil || len(parts) != 2 || parts[0].Header.Get("Location") != "http://"+host+"/a" || len(parts[1].Body) != maxBatchAnswer {
				t.Errorf("framing %q: %v, %d parts, %d bytes", framing, err, len(parts), len(body))
			}
		}
	})
	t.Run("cut short", func(t *testing.T) {
		resp, _, body, err := send(t, http.Header{"X-Test-Location": {"http://POOL/a"}, "X-Test-Framing": {"cut"}})
		if err == nil || resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("Location: http://"+host+"/a")) {
			t.Errorf("%d, read error %v, body %q; want the pool's 200 and what it wrote, then an error", resp.StatusCode, err, body)
		}
	})
}

// TestBatchAnswerClientGone: a client that goes away while the edge holds
// its batch's answer (see holdBatch) got none of it, and the audit trail
// says so: 499, as for a client gone before any answer.
func TestBatchAnswerClientGone(t *testing.T) {
	var host string
	halfSent := make(chan struct{}, 1)
	pool := testkit.NewPool(t, "primary", batchLocationPool(&host, halfSent))
	_, port, _ := strings.Cut(pool.Addr(), ":")
	host = "localhost:" + port
	// reverse_proxy logs the round trip at debug level once the pool's
	// header came: the edge holds the answer from then on.
	e := startEdge(t, "caddyfile", "{\n\tdebug\n}\n"+poolsCaddyfile("primary "+host))
	batch := batchBody("GET /ucwa/v1/applications/1/me HTTP/1.1\r\n")
	ctx, cancel := context.WithCancel(context.Background())
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url("/ucwa/v1/applications/1/batch"), strings.NewReader(batch))
	if err != nil {
		t.Fatal(err)
	}
	r.Header = http.Header{"Content-Type": {batchType}, "X-Test-Location": {"http://POOL/a"}, "X-Test-Framing": {"hang"}}
	done := make(chan error, 1)
	go func() {
		resp, err := e.Client().Do(r)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-halfSent
	testkit.Eventually(t, "the pool's header at the edge", func() bool {
		return strings.Contains(e.Logs().String(), `"upstream roundtrip"`)
	})
	cancel()
	if err := <-done; err == nil {
		t.Error("the client got an answer")
	}
	// The audit trail records what the client got: no answer, 499.
	var lines []auditLine
	testkit.Eventually(t, "the audit line", func() bool {
		lines = auditLines(t, e.Logs().String())
		return len(lines) > 0
	})
	if len(lines) != 1 || lines[0].Status != statusClientClosed || lines[0].Pool != "primary" {
		t.Errorf("audit lines %+v, want one of pool primary, status 499", lines)
	}
}
