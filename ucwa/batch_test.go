package ucwa

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	testBoundary = "77f2569d-c005-442b-b856-782305305e5f"
	testBatchCT  = "multipart/batching;boundary=" + testBoundary
	appPath      = "/ucwa/oauth/v1/applications/103"
	// secret stands for the values an error message must never quote.
	secret = "+19005551234"
)

// crlf joins lines with CRLF, the way every real client writes a batch.
func crlf(lines ...string) string { return strings.Join(lines, "\r\n") }

// jsPart is one request as Microsoft's batch.js sample queues it.
type jsPart struct {
	request string // "GET /path HTTP/1.1"
	data    string // JSON text for a Data: header; "" for none
}

// batchJS builds a body exactly as batch.js's sendBatch and createDataPart
// do: each part is "\r\n--B\r\nContent-Type: ...\r\n\r\n<request>\r\nHost:
// ...\r\nAccept: ...[\r\nData: ...]\r\n", parts are joined with "\r\n",
// and "\r\n\r\n--B--\r\n" closes the batch.
func batchJS(boundary string, parts ...jsPart) []byte {
	var out []string
	for _, p := range parts {
		s := "\r\n--" + boundary
		s += "\r\nContent-Type: application/http; msgtype=request\r\n"
		s += "\r\n" + p.request
		s += "\r\n" + "Host: lyncweb.contoso.com"
		s += "\r\n" + "Accept: application/json"
		if p.data != "" {
			s += "\r\n" + "Data: " + p.data
		}
		s += "\r\n"
		out = append(out, s)
	}
	return []byte(strings.Join(out, "\r\n") + "\r\n\r\n--" + boundary + "--\r\n")
}

// docExample is the batch of the UCWA reference page "Batching requests"
// (BatchingRequests.md), with the CRLF line endings HTTP requires: two
// GETs whose header sections end with the part, without an empty line.
var docExample = crlf(
	"--"+testBoundary,
	"Content-Type: application/http; msgtype=request",
	"",
	"GET "+appPath+"/people/contacts HTTP/1.1",
	"Host: lyncweb.contoso.com",
	"Accept: application/json",
	"",
	"--"+testBoundary,
	"Content-Type: application/http; msgtype=request",
	"",
	"GET "+appPath+"/me HTTP/1.1",
	"Host: lyncweb.contoso.com",
	"Accept: application/json",
	"",
	"--"+testBoundary+"--",
	"",
)

// postPart is a batch part holding a JSON POST with Content-Lengths on the
// part and on the request.
func postPart(boundary, path, json string) string {
	inner := crlf(
		"POST "+path+" HTTP/1.1",
		"Host: lyncweb.contoso.com",
		"Content-Type: application/json",
		"Content-Length: "+strconv.Itoa(len(json)),
		"",
		json,
	)
	return crlf(
		"--"+boundary,
		"Content-Type: application/http; msgtype=request",
		"Content-Length: "+strconv.Itoa(len(inner)),
		"",
		inner,
	)
}

func getPart(boundary, target string) string {
	return crlf(
		"--"+boundary,
		"Content-Type: application/http; msgtype=request",
		"",
		"GET "+target+" HTTP/1.1",
		"Host: lyncweb.contoso.com",
		"Accept: application/json",
		"",
		"",
		"",
	)
}

func closeBatch(boundary string) string { return "--" + boundary + "--\r\n" }

func mustParseBatch(t testing.TB, ct string, body []byte) *Batch {
	t.Helper()
	b, err := ParseBatch(ct, body, DefaultMaxBatchParts)
	if err != nil {
		t.Fatalf("ParseBatch: %v\n%q", err, body)
	}
	return b
}

// sameSlice reports whether out is body itself, not a copy.
func sameSlice(out, body []byte) bool {
	return len(out) == len(body) && (len(body) == 0 || &out[0] == &body[0])
}

type wantPart struct {
	method, target, path, query string
	body                        string
	source                      BodySource
	header                      map[string][]string
}

func checkParts(t *testing.T, b *Batch, want []wantPart) {
	t.Helper()
	parts := b.Parts()
	if len(parts) != len(want) {
		t.Fatalf("%d parts, want %d", len(parts), len(want))
	}
	for i, w := range want {
		p := parts[i]
		if p.Index != i+1 || p.Method != w.method || p.Target() != w.target || p.Path() != w.path ||
			p.RawQuery() != w.query || string(p.Body()) != w.body || p.Source() != w.source {
			t.Errorf("part %d = {%d %q %q %q %q %q %v}, want %+v", i+1, p.Index, p.Method, p.Target(), p.Path(), p.RawQuery(), p.Body(), p.Source(), w)
		}
		for name, values := range w.header {
			if got := p.Header.Values(name); !slices.Equal(got, values) {
				t.Errorf("part %d header %s = %q, want %q", i+1, name, got, values)
			}
		}
	}
}

func TestParseBatch(t *testing.T) {
	json := `{"to":"sip:john@contoso.com","operationId":"1"}`
	tests := []struct {
		name string
		ct   string
		body string
		want []wantPart
	}{{
		name: "reference example, unquoted boundary, header sections ending with the part",
		ct:   testBatchCT,
		body: docExample,
		want: []wantPart{
			{method: "GET", target: appPath + "/people/contacts", path: appPath + "/people/contacts", header: map[string][]string{"host": {"lyncweb.contoso.com"}, "ACCEPT": {"application/json"}}},
			{method: "GET", target: appPath + "/me", path: appPath + "/me"},
		},
	}, {
		name: "quoted boundary, as .NET's MultipartContent writes it, parameters in any case",
		ct:   `Multipart/Batching; BOUNDARY="EA370946"; charset=utf-8`,
		body: crlf(
			"--EA370946",
			"content-type: Application/HTTP; MsgType=Request",
			"Content-Transfer-Encoding: binary",
			"",
			"GET "+appPath+"/policies?x=1&y=%2F HTTP/1.1",
			"Accept: application/vnd.microsoft.com.ucwa+json",
			"X-Dup: a",
			"x-dup: b",
			"X_Ms_Flag: 1",
			"",
			"",
			"--EA370946--",
		),
		want: []wantPart{{method: "GET", target: appPath + "/policies?x=1&y=%2F", path: appPath + "/policies", query: "x=1&y=%2F",
			header: map[string][]string{"X-Dup": {"a", "b"}, "x_ms_flag": {"1"}, "Content-Transfer-Encoding": nil}}},
	}, {
		name: "a quoted boundary with the characters only quoting allows",
		ct:   `multipart/batching; boundary="a'(b)+_,-./:=? c"`,
		body: getPart("a'(b)+_,-./:=? c", appPath+"/me") + closeBatch("a'(b)+_,-./:=? c"),
		want: []wantPart{{method: "GET", target: appPath + "/me", path: appPath + "/me"}},
	}, {
		name: "a body without Content-Length that mentions HTTP/2 but is no request line",
		ct:   testBatchCT,
		body: crlf(
			"--"+testBoundary,
			"Content-Type: application/http; msgtype=request",
			"",
			"POST "+appPath+"/me/note HTTP/1.1",
			"Content-Type: application/json",
			"",
			`{"message":"Moving our API to HTTP/2 today"}`,
			"--"+testBoundary+"--",
		),
		want: []wantPart{{method: "POST", target: appPath + "/me/note", path: appPath + "/me/note",
			body: `{"message":"Moving our API to HTTP/2 today"}`, header: map[string][]string{"Content-Type": {"application/json"}}}},
	}, {
		name: "POST with a JSON body and Content-Lengths",
		ct:   testBatchCT,
		body: postPart(testBoundary, appPath+"/communication/startPhoneAudio", json) + "\r\n" + closeBatch(testBoundary),
		want: []wantPart{{method: "POST", target: appPath + "/communication/startPhoneAudio", path: appPath + "/communication/startPhoneAudio", body: json,
			header: map[string][]string{"Content-Length": {strconv.Itoa(len(json))}, "Content-Type": {"application/json"}}}},
	}, {
		name: "batch.js: a GET and a POST whose body is a Data header",
		ct:   testBatchCT,
		body: string(batchJS(testBoundary,
			jsPart{request: "GET " + appPath + "/me HTTP/1.1"},
			jsPart{request: "POST " + appPath + "/communication/startPhoneAudio HTTP/1.1", data: json},
		)),
		want: []wantPart{
			{method: "GET", target: appPath + "/me", path: appPath + "/me"},
			{method: "POST", target: appPath + "/communication/startPhoneAudio", path: appPath + "/communication/startPhoneAudio", body: json, source: BodyInDataHeader,
				header: map[string][]string{"Data": {json}}},
		},
	}, {
		name: "a blank preamble and a blank epilogue",
		ct:   testBatchCT,
		body: "\r\n \t\r\n--" + testBoundary + "\r\n" +
			"Content-Type: application/http; msgtype=request\r\n\r\nDELETE " + appPath + "/me/x HTTP/1.1\r\n\r\n" +
			"\r\n--" + testBoundary + "--\r\n\r\n \t",
		want: []wantPart{{method: "DELETE", target: appPath + "/me/x", path: appPath + "/me/x"}},
	}, {
		name: "Host names, addresses and ports",
		ct:   testBatchCT,
		body: getPart(testBoundary, "/a") + crlf("--"+testBoundary, "Content-Type: application/http", "", "GET /b HTTP/1.1", "Host: fe1.contoso.com:4443", "", "") +
			crlf("--"+testBoundary, "Content-Type: application/http", "", "GET /c HTTP/1.1", "Host: [2001:db8::1]:443", "", "") +
			crlf("--"+testBoundary, "Content-Type: application/http", "", "GET /d HTTP/1.1", "Host: 10.0.0.1", "", "") + closeBatch(testBoundary),
		want: []wantPart{{method: "GET", target: "/a", path: "/a"}, {method: "GET", target: "/b", path: "/b", header: map[string][]string{"Host": {"fe1.contoso.com:4443"}}},
			{method: "GET", target: "/c", path: "/c", header: map[string][]string{"Host": {"[2001:db8::1]:443"}}}, {method: "GET", target: "/d", path: "/d"}},
	}, {
		name: "close delimiter at the very end, no CRLF",
		ct:   testBatchCT,
		body: getPart(testBoundary, appPath+"/me") + "--" + testBoundary + "--",
		want: []wantPart{{method: "GET", target: appPath + "/me", path: appPath + "/me"}},
	}, {
		name: "no msgtype: the request line tells a request",
		ct:   testBatchCT,
		body: crlf("--"+testBoundary, "Content-Type: application/http", "", "GET /a HTTP/1.1", "", "", closeBatch(testBoundary)),
		want: []wantPart{{method: "GET", target: "/a", path: "/a"}},
	}, {
		name: "a body holding CR, LF and dashes, without Content-Length",
		ct:   testBatchCT,
		body: crlf("--"+testBoundary, "Content-Type: application/http; version=1.1; msgtype=request", "",
			"PUT /a HTTP/1.1", "Content-Type: application/json", "", "{\"a\":\r\n\"--x\n--\r\"}\r\n", closeBatch(testBoundary)),
		want: []wantPart{{method: "PUT", target: "/a", path: "/a", body: "{\"a\":\r\n\"--x\n--\r\"}\r\n"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			b := mustParseBatch(t, tt.ct, body)
			checkParts(t, b, tt.want)
			if b.Changed() {
				t.Error("fresh batch reports a change")
			}
			if out := b.Encode(); !sameSlice(out, body) {
				t.Errorf("unchanged batch encodes as %q, not the parsed slice", out)
			}
		})
	}
}

func TestParseBatchTenGETsByteForByte(t *testing.T) {
	body := tenGETs()
	b := mustParseBatch(t, testBatchCT, body)
	if len(b.Parts()) != 10 {
		t.Fatalf("%d parts", len(b.Parts()))
	}
	// Replacing every body and target with itself changes nothing.
	for _, p := range b.Parts() {
		if err := p.SetBody(bytes.Clone(p.Body())); err != nil {
			t.Fatal(err)
		}
		if err := p.SetTarget(strings.Clone(p.Target())); err != nil {
			t.Fatal(err)
		}
	}
	if out := b.Encode(); !sameSlice(out, body) {
		t.Errorf("batch of GETs re-encodes as %q", out)
	}
}

// TestBatchReplaceBody replaces a POST's JSON body with a longer and a
// shorter one: both Content-Lengths follow, every other byte stays.
func TestBatchReplaceBody(t *testing.T) {
	path := appPath + "/communication/startPhoneAudio"
	old := `{"to":"tel:+1 (900) 555-1234","operationId":"1"}`
	for _, repl := range []string{
		`{"to":"tel:+19005551234","operationId":"1"}`,                                              // shorter
		`{"to":"tel:+19005551234","operationId":"1","subject":"` + strings.Repeat("s", 200) + `"}`, // longer, more digits
		`{}`,
	} {
		t.Run(strconv.Itoa(len(repl)), func(t *testing.T) {
			body := []byte(getPart(testBoundary, appPath+"/me") + postPart(testBoundary, path, old) + "\r\n" + getPart(testBoundary, appPath+"/people") + closeBatch(testBoundary))
			want := getPart(testBoundary, appPath+"/me") + postPart(testBoundary, path, repl) + "\r\n" + getPart(testBoundary, appPath+"/people") + closeBatch(testBoundary)
			b := mustParseBatch(t, testBatchCT, body)
			p := b.Parts()[1]
			if err := p.SetBody([]byte(repl)); err != nil {
				t.Fatal(err)
			}
			if string(p.Body()) != repl || !b.Changed() {
				t.Fatalf("Body() = %q after SetBody", p.Body())
			}
			out := b.Encode()
			if string(out) != want {
				t.Fatalf("Encode:\n%q\nwant\n%q", out, want)
			}
			b2 := mustParseBatch(t, testBatchCT, out)
			if got := string(b2.Parts()[1].Body()); got != repl {
				t.Fatalf("re-parsed body %q", got)
			}
		})
	}
}

// TestBatchReplaceTarget replaces a query string (the edge forwards
// cleaned query values); the part's own Content-Length follows.
func TestBatchReplaceTarget(t *testing.T) {
	path := appPath + "/communication/startPhoneAudio"
	json := `{"operationId":"1"}`
	body := []byte(postPart(testBoundary, path+"?to=tel:%2B1%20900%20555%201234", json) + "\r\n" + closeBatch(testBoundary))
	want := postPart(testBoundary, path+"?to=tel:%2B19005551234", `{"operationId":"22"}`) + "\r\n" + closeBatch(testBoundary)
	b := mustParseBatch(t, testBatchCT, body)
	p := b.Parts()[0]
	if p.RawQuery() != "to=tel:%2B1%20900%20555%201234" {
		t.Fatalf("RawQuery %q", p.RawQuery())
	}
	if err := p.SetTarget(path + "?to=tel:%2B19005551234"); err != nil {
		t.Fatal(err)
	}
	if err := p.SetBody([]byte(`{"operationId":"22"}`)); err != nil {
		t.Fatal(err)
	}
	if p.Path() != path || p.RawQuery() != "to=tel:%2B19005551234" {
		t.Fatalf("Path %q RawQuery %q", p.Path(), p.RawQuery())
	}
	if out := b.Encode(); string(out) != want {
		t.Fatalf("Encode:\n%q\nwant\n%q", out, want)
	}
	// Setting the original back undoes the change.
	if err := p.SetTarget(path + "?to=tel:%2B1%20900%20555%201234"); err != nil {
		t.Fatal(err)
	}
	if err := p.SetBody([]byte(json)); err != nil {
		t.Fatal(err)
	}
	if out := b.Encode(); !sameSlice(out, body) {
		t.Fatalf("restored batch encodes as %q", out)
	}
}

// TestBatchReplaceData replaces the body of a batch.js part, which lives
// in the Data header.
func TestBatchReplaceData(t *testing.T) {
	req := "POST " + appPath + "/communication/startPhoneAudio HTTP/1.1"
	old := `{"to":"tel:+1 900 555 1234","operationId":"1"}`
	repl := `{"to":"tel:+19005551234","operationId":"1"}`
	body := batchJS(testBoundary, jsPart{request: "GET " + appPath + "/me HTTP/1.1"}, jsPart{request: req, data: old})
	want := batchJS(testBoundary, jsPart{request: "GET " + appPath + "/me HTTP/1.1"}, jsPart{request: req, data: repl})
	b := mustParseBatch(t, testBatchCT, body)
	p := b.Parts()[1]
	if p.Source() != BodyInDataHeader || string(p.Body()) != old {
		t.Fatalf("part 2: %v %q", p.Source(), p.Body())
	}
	if err := p.SetBody([]byte(repl)); err != nil {
		t.Fatal(err)
	}
	if out := b.Encode(); !bytes.Equal(out, want) {
		t.Fatalf("Encode:\n%q\nwant\n%q", out, want)
	}

	// A Data part with Content-Lengths: the part's follows, the request's
	// (the empty message body) stays 0.
	inner := crlf("PUT /a HTTP/1.1", "Content-Length: 0", "Data: "+old, "", "")
	mk := func(inner string) []byte {
		return []byte(crlf("--B", "Content-Type: application/http; msgtype=request", "Content-Length: "+strconv.Itoa(len(inner)), "", inner, "--B--"))
	}
	b = mustParseBatch(t, "multipart/batching; boundary=B", mk(inner))
	if err := b.Parts()[0].SetBody([]byte(repl)); err != nil {
		t.Fatal(err)
	}
	if out, want := b.Encode(), mk(crlf("PUT /a HTTP/1.1", "Content-Length: 0", "Data: "+repl, "", "")); !bytes.Equal(out, want) {
		t.Fatalf("Encode:\n%q\nwant\n%q", out, want)
	}
}

// TestBatchReplaceDataOpenHeaders replaces a Data value whose header
// line ends the part (no empty line after it): the value changes in
// place and no empty line is added.
func TestBatchReplaceDataOpenHeaders(t *testing.T) {
	body := []byte(crlf("--B", "Content-Type: application/http", "", "POST /a HTTP/1.1", "Data: {}", "", "--B--"))
	b := mustParseBatch(t, "multipart/batching; boundary=B", body)
	if err := b.Parts()[0].SetBody([]byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	want := crlf("--B", "Content-Type: application/http", "", "POST /a HTTP/1.1", `Data: {"a":1}`, "", "--B--")
	if out := b.Encode(); string(out) != want {
		t.Fatalf("Encode:\n%q\nwant\n%q", out, want)
	}
}

// TestBatchBodyForOpenHeaders gives a body to a request whose header
// section ended with the part: the empty line is written before it.
func TestBatchBodyForOpenHeaders(t *testing.T) {
	mk := func(inner string) string {
		return crlf("--B", "Content-Type: application/http; msgtype=request", "Content-Length: "+strconv.Itoa(len(inner)), "", inner, "--B--")
	}
	body := []byte(mk("POST /a HTTP/1.1\r\nContent-Length: 0\r\n"))
	b := mustParseBatch(t, "multipart/batching; boundary=B", body)
	if err := b.Parts()[0].SetBody([]byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	want := mk("POST /a HTTP/1.1\r\nContent-Length: 7\r\n\r\n{\"a\":1}")
	out := b.Encode()
	if string(out) != want {
		t.Fatalf("Encode:\n%q\nwant\n%q", out, want)
	}
	if got := string(mustParseBatch(t, "multipart/batching; boundary=B", out).Parts()[0].Body()); got != `{"a":1}` {
		t.Fatalf("re-parsed body %q", got)
	}
}

func TestBatchSetRefusals(t *testing.T) {
	body := batchJS("abc", jsPart{request: "POST /a HTTP/1.1", data: `{"x":1}`}, jsPart{request: "GET /b HTTP/1.1"})
	b := mustParseBatch(t, "multipart/batching; boundary=abc", body)
	data, get := b.Parts()[0], b.Parts()[1]
	tests := []struct {
		name string
		set  func() *Error
		rule string
	}{
		{"body spells the boundary", func() *Error { return get.SetBody([]byte(`{"to":"` + secret + `--abc"}`)) }, "boundary"},
		{"body spells the boundary in another case", func() *Error { return get.SetBody([]byte("x\r\n--ABC--\r\n")) }, "boundary"},
		{"body without Content-Length reading as a request", func() *Error {
			return get.SetBody([]byte("\r\nPOST /c?to=" + secret + " HTTP/1.1\r\n\r\n"))
		}, "reads as another request"},
		{"Data value with a line break", func() *Error { return data.SetBody([]byte("{\"x\":\r\n\"" + secret + "\"}")) }, "control"},
		{"Data value empty", func() *Error { return data.SetBody(nil) }, "empty"},
		{"Data value with white space at an end", func() *Error { return data.SetBody([]byte(`{"x":"` + secret + `"} `)) }, "white space"},
		{"Data value spells the boundary", func() *Error { return data.SetBody([]byte(`{"x":"--abc"}`)) }, "boundary"},
		{"absolute target", func() *Error { return get.SetTarget("https://evil.example/b") }, "origin-form"},
		{"target with a space", func() *Error { return get.SetTarget("/b?to=" + secret + " x") }, "RFC 3986"},
		{"target naming a batch", func() *Error { return get.SetTarget("/a/Batch") }, "batch"},
		{"target spelling the boundary", func() *Error { return get.SetTarget("/b?x=--abc") }, "boundary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.set()
			if err == nil {
				t.Fatal("accepted")
			}
			if err.Status != 400 || !strings.Contains(err.Message, "Batch part ") || !strings.Contains(err.Message, tt.rule) || strings.Contains(err.Message, secret) {
				t.Fatalf("error %v", err)
			}
		})
	}
	if out := b.Encode(); !sameSlice(out, body) {
		t.Fatalf("refused changes reached the batch: %q", out)
	}
}

func TestParseBatchMaxParts(t *testing.T) {
	build := func(n int) []byte {
		var s strings.Builder
		for i := range n {
			s.WriteString(getPart(testBoundary, appPath+"/people/"+strconv.Itoa(i)))
		}
		s.WriteString(closeBatch(testBoundary))
		return []byte(s.String())
	}
	if b, err := ParseBatch(testBatchCT, build(100), 100); err != nil || len(b.Parts()) != 100 {
		t.Fatalf("100 parts: %v", err)
	}
	_, err := ParseBatch(testBatchCT, build(101), 100)
	if err == nil || err.Status != 400 || err.Subcode != SubcodeParameterValidationFailure || !strings.Contains(err.Message, "100") {
		t.Fatalf("101 parts: %v", err)
	}
	if b, err := ParseBatch(testBatchCT, build(101), 0); err != nil || len(b.Parts()) != 101 {
		t.Fatalf("101 parts without a limit: %v", err)
	}
}

func TestIsBatchPath(t *testing.T) {
	for _, tt := range []struct {
		path string
		want bool
	}{
		{appPath + "/batch", true},
		{appPath + "/BATCH", true},
		{appPath + "/Batch?x=1", true},
		{appPath + "/batch/", true},
		{appPath + "/batch//.", true},
		{appPath + "/people/../batch", true},
		{appPath + "/bat%63h", true},
		{appPath + "/bat%2563h", true},
		{appPath + "%2Fbatch", true},
		{appPath + `\batch`, true},
		{appPath + "/batch;x=1", true},
		{appPath + "/batch::$DATA", true},
		{appPath + "/batch.", true},
		{appPath + "/batch.%20.", true},
		{appPath + "/ba%E2%80%8Btch", true},                                // zero-width space
		{appPath + "/%EF%BD%82%EF%BD%81%EF%BD%94%EF%BD%83%EF%BD%88", true}, // fullwidth
		{appPath + "/bat%00c%7Fh", true},                                   // control characters
		{appPath + "/batch%E3%80%80", true},                                // an ideographic space, trailing
		{appPath + "/b%C3%A4tch", false},                                   // ä is no a
		{"batch", true},
		{appPath + "/batches", false},
		{appPath + "/batch/x", false},
		{appPath + "/batch/x/..", true},
		{appPath + "/xbatch", false},
		{appPath + "/me", false},
		{"/", false},
		{"", false},
	} {
		if got := IsBatchPath(tt.path); got != tt.want {
			t.Errorf("IsBatchPath(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// TestParseBatchRefusals holds each rule the parser enforces. Every body
// carries secret somewhere, which no message may quote.
func TestParseBatchRefusals(t *testing.T) {
	const B = "b0undary"
	ct := "multipart/batching; boundary=" + B
	head := "--" + B + "\r\nContent-Type: application/http; msgtype=request\r\n\r\n"
	end := "\r\n--" + B + "--\r\n"
	// one wraps an inner request in a whole batch.
	one := func(inner string) string { return head + inner + end }
	get := "GET /a?to=" + secret + " HTTP/1.1\r\nHost: h\r\n\r\n"
	tests := []struct {
		name, ct, body string
		status         int
		subcode        string
		rule           string
	}{
		// The Content-Type.
		{"not multipart/batching", "multipart/mixed; boundary=" + B, one(get), 415, SubcodeUnsupportedMediaType, "multipart/batching"},
		{"no Content-Type", "", one(get), 400, SubcodeDeserializationFailure, "media type"},
		{"no boundary", "multipart/batching", one(get), 400, SubcodeDeserializationFailure, "exactly one boundary"},
		{"empty boundary", `multipart/batching; boundary=""`, one(get), 400, SubcodeDeserializationFailure, "1 to 70"},
		{"boundary of 71 characters", "multipart/batching; boundary=" + strings.Repeat("a", 71), one(get), 400, SubcodeDeserializationFailure, "1 to 70"},
		{"boundary with a character outside bchars", "multipart/batching; boundary=a!b", one(get), 400, SubcodeDeserializationFailure, "RFC 2046"},
		{"boundary ending with a space", `multipart/batching; boundary="ab "`, one(get), 400, SubcodeDeserializationFailure, "space"},
		{"boundary given twice", "multipart/batching; boundary=" + B + "; Boundary=" + B, one(get), 400, SubcodeDeserializationFailure, "twice"},
		{"boundary hidden in another parameter", `multipart/batching; x="boundary=evil"; boundary=` + B, one(get), 400, SubcodeDeserializationFailure, "exactly one boundary"},
		{"RFC 2231 boundary", "multipart/batching; boundary*=utf-8''" + B, one(get), 400, SubcodeDeserializationFailure, "RFC 2231"},
		{"quoted-pair in the boundary", `multipart/batching; boundary="b0\undary"`, one(get), 400, SubcodeDeserializationFailure, "quoted-pair"},
		{"unterminated quote", `multipart/batching; boundary="` + B, one(get), 400, SubcodeDeserializationFailure, "unterminated"},
		{"two media types", "multipart/batching; boundary=" + B + ", multipart/batching; boundary=x", one(get), 400, SubcodeDeserializationFailure, "parameter"},
		{"no subtype", "multipart/; boundary=" + B, one(get), 400, SubcodeDeserializationFailure, "is not a media type"},
		{"a parameter without a value", "multipart/batching; boundary", one(get), 400, SubcodeDeserializationFailure, "malformed parameter"},
		{"a parameter with an empty value", "multipart/batching; boundary=", one(get), 400, SubcodeDeserializationFailure, "malformed parameter"},
		{"a control character in a quoted value", "multipart/batching; boundary=\"a\x01b\"", one(get), 400, SubcodeDeserializationFailure, "control or non-ASCII"},

		// The framing.
		{"no delimiter", ct, "GET /a?to=" + secret + " HTTP/1.1\r\n", 400, SubcodeDeserializationFailure, "no boundary delimiter"},
		{"no closing delimiter", ct, head + get, 400, SubcodeDeserializationFailure, "no closing delimiter: part 1 does not end"},
		{"closing delimiter without the final dashes", ct, head + get + "\r\n--" + B + "\r\n", 400, SubcodeDeserializationFailure, "no closing delimiter: part 2 does not end"},
		{"no parts", ct, "--" + B + "--\r\n", 400, SubcodeDeserializationFailure, "no parts"},
		{"first delimiter inside a line", ct, "x--" + B + "\r\n" + one(get)[len("--"+B+"\r\n"):], 400, SubcodeDeserializationFailure, "first boundary delimiter"},
		{"boundary inside a part's body", ct, one("POST /a HTTP/1.1\r\n\r\n{\"to\":\"" + secret + "--" + B + "\"}"), 400, SubcodeDeserializationFailure, "Batch part 1: the batch boundary appears inside the part"},
		{"boundary after a bare LF", ct, one("POST /a HTTP/1.1\r\n\r\n" + secret + "\n--" + B + "\r\nContent-Type: application/http\r\n\r\nGET /b HTTP/1.1\r\n\r\n"), 400, SubcodeDeserializationFailure, "inside the part"},
		{"boundary in another letter case", ct, head + get + "\r\n--B0UNDARY\r\n" + head[len("--"+B+"\r\n"):] + get + end, 400, SubcodeDeserializationFailure, "another letter case after part 1"},
		{"boundary in the preamble", ct, "a --" + B + " b\r\n" + one(get), 400, SubcodeDeserializationFailure, "first boundary delimiter"},
		{"a preamble", ct, "This is a preamble.\r\n" + one(get), 400, SubcodeDeserializationFailure, "(a preamble)"},
		{"a request in the preamble", ct, "POST /x HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"to\":\"tel:+19005551234\"}\r\n" + one(get), 400, SubcodeDeserializationFailure, "(a preamble)"},
		{"an epilogue", ct, one(get) + "An epilogue\r\nof two lines.", 400, SubcodeDeserializationFailure, "(an epilogue)"},
		{"a request in the epilogue", ct, one(get) + "POST /x HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"to\":\"tel:+19005551234\"}\r\n", 400, SubcodeDeserializationFailure, "(an epilogue)"},
		{"one letter in the epilogue", ct, one(get) + "x", 400, SubcodeDeserializationFailure, "(an epilogue)"},
		{"boundary in the epilogue", ct, one(get) + "--" + B + "\r\n", 400, SubcodeDeserializationFailure, "after the closing delimiter"},
		{"text after the closing delimiter on its line", ct, head + get + "\r\n--" + B + "--" + secret, 400, SubcodeDeserializationFailure, "closing delimiter does not end its line"},
		{"transport padding after the closing delimiter", ct, head + get + "\r\n--" + B + "-- \r\n", 400, SubcodeDeserializationFailure, "closing delimiter does not end its line"},
		{"transport padding after a delimiter", ct, "--" + B + " \r\n" + one(get)[len("--"+B+"\r\n"):], 400, SubcodeDeserializationFailure, "delimiter line before part 1 does not end with CRLF"},
		{"transport padding after a later delimiter", ct, head + get + "\r\n--" + B + "\t\r\n" + one(get)[len("--"+B+"\r\n"):], 400, SubcodeDeserializationFailure, "delimiter line after part 1"},
		{"text after a delimiter on its line", ct, "--" + B + "x" + secret + "\r\n" + one(get), 400, SubcodeDeserializationFailure, "delimiter line before part 1"},
		{"delimiter ending with a bare LF", ct, "--" + B + "\nContent-Type: application/http\n\n" + get + end, 400, SubcodeDeserializationFailure, "does not end with CRLF"},
		{"LF line endings throughout", ct, strings.ReplaceAll(one(get), "\r\n", "\n"), 400, SubcodeDeserializationFailure, "CRLF"},
		{"empty part", ct, "--" + B + "\r\n\r\n--" + B + "--\r\n", 400, SubcodeDeserializationFailure, "Batch part 1"},
		{"a bad second part", ct, one(get)[:len(one(get))-len(end)] + "\r\n" + head + "GET /b HTTP/1.0\r\n\r\n" + end, 400, SubcodeDeserializationFailure, "Batch part 2: its request line does not end with SP HTTP/1.1"},

		// The part's own headers.
		{"no part Content-Type", ct, "--" + B + "\r\nContent-Length: 3\r\n\r\n" + get + end, 400, SubcodeDeserializationFailure, "no Content-Type"},
		{"part Content-Type of a response", ct, strings.Replace(one(get), "msgtype=request", "msgtype=response", 1), 400, SubcodeDeserializationFailure, "not application/http; msgtype=request"},
		{"part Content-Type not application/http", ct, strings.Replace(one(get), "application/http; msgtype=request", "application/json", 1), 400, SubcodeDeserializationFailure, "not application/http"},
		{"part Content-Type with msgtype twice", ct, strings.Replace(one(get), "msgtype=request", "msgtype=request; MSGTYPE=response", 1), 400, SubcodeDeserializationFailure, "not application/http"},
		{"part Content-Type given twice", ct, strings.Replace(one(get), "\r\n\r\n", "\r\nContent-Type: application/http\r\n\r\n", 1), 400, SubcodeDeserializationFailure, "two Content-Type"},
		{"part HTTP version 1.0", ct, strings.Replace(one(get), "msgtype=request", "msgtype=request; version=1.0", 1), 400, SubcodeDeserializationFailure, "version"},
		{"part Content-Length too short", ct, strings.Replace(one(get), "\r\n\r\n", "\r\nContent-Length: 5\r\n\r\n", 1), 400, SubcodeDeserializationFailure, "part's length"},
		{"part Content-Length not a number", ct, strings.Replace(one(get), "\r\n\r\n", "\r\nContent-Length: +"+strconv.Itoa(len(get))+"\r\n\r\n", 1), 400, SubcodeDeserializationFailure, "decimal"},
		{"part Content-Length twice", ct, strings.Replace(one(get), "\r\n\r\n", "\r\nContent-Length: "+strconv.Itoa(len(get))+"\r\nContent-Length: "+strconv.Itoa(len(get))+"\r\n\r\n", 1), 400, SubcodeDeserializationFailure, "two Content-Length"},
		{"part Transfer-Encoding", ct, strings.Replace(one(get), "\r\n\r\n", "\r\nTransfer-Encoding: chunked\r\n\r\n", 1), 400, SubcodeDeserializationFailure, "Transfer-Encoding"},
		{"part Content-Encoding", ct, strings.Replace(one(get), "\r\n\r\n", "\r\nContent-Encoding: gzip\r\n\r\n", 1), 400, SubcodeDeserializationFailure, "Content-Encoding"},
		{"part base64", ct, strings.Replace(one(get), "\r\n\r\n", "\r\nContent-Transfer-Encoding: base64\r\n\r\n", 1), 400, SubcodeDeserializationFailure, "Content-Transfer-Encoding"},
		{"part headers without an empty line", ct, "--" + B + "\r\nContent-Type: application/http\r\n" + end, 400, SubcodeDeserializationFailure, "empty line"},
		{"part header folded", ct, strings.Replace(one(get), "\r\n\r\n", "\r\n x\r\n\r\n", 1), 400, SubcodeDeserializationFailure, "obs-fold"},

		// The request line.
		{"absolute-form target", ct, one("GET https://evil.example/a?to=" + secret + " HTTP/1.1\r\n\r\n"), 400, SubcodeDeserializationFailure, "origin-form"},
		{"authority-form target", ct, one("GET //evil.example/a HTTP/1.1\r\n\r\n"), 400, SubcodeDeserializationFailure, "//"},
		{"asterisk target", ct, one("OPTIONS * HTTP/1.1\r\n\r\n"), 400, SubcodeDeserializationFailure, "origin-form"},
		{"target with raw non-ASCII", ct, one("GET /a/startPhone\u212aAudio HTTP/1.1\r\n\r\n"), 400, SubcodeDeserializationFailure, "RFC 3986"},
		{"target with a backslash", ct, one("GET /a\\b HTTP/1.1\r\n\r\n"), 400, SubcodeDeserializationFailure, "RFC 3986"},
		{"target with a fragment", ct, one("GET /a#b HTTP/1.1\r\n\r\n"), 400, SubcodeDeserializationFailure, "RFC 3986"},
		{"target with a bad escape", ct, one("GET /a%zz HTTP/1.1\r\n\r\n"), 400, SubcodeDeserializationFailure, "%-escape"},
		{"target with a truncated escape", ct, one("GET /a%2 HTTP/1.1\r\n\r\n"), 400, SubcodeDeserializationFailure, "%-escape"},
		// A pool's batch handler may keep these as written where the edge
		// decodes them and resolves the dot segments.
		{"target with escaped dot segments", ct, one("POST /a/communication/startPhoneAudio/%2E%2E/%2e%2E/me HTTP/1.1\r\n\r\n"), 400, SubcodeDeserializationFailure, "escapes a '.'"},
		{"target with an escaped slash", ct, one("POST /a/communication/startPhoneAudio%2F..%2F..%2Fme HTTP/1.1\r\n\r\n"), 400, SubcodeDeserializationFailure, "escapes a '.'"},
		{"target with an escaped backslash", ct, one("GET /a%5cb HTTP/1.1\r\n\r\n"), 400, SubcodeDeserializationFailure, "escapes a '.'"},
		{"target with an escaped percent sign", ct, one("GET /a/%252E%252E/b HTTP/1.1\r\n\r\n"), 400, SubcodeDeserializationFailure, "escapes a '.'"},
		{"two spaces", ct, one("GET  /a HTTP/1.1\r\n\r\n"), 400, SubcodeDeserializationFailure, "SP HTTP/1.1"},
		{"tab separator", ct, one("GET\t/a HTTP/1.1\r\n\r\n"), 400, SubcodeDeserializationFailure, "METHOD SP target"},
		{"HTTP/1.0", ct, one("GET /a HTTP/1.0\r\n\r\n"), 400, SubcodeDeserializationFailure, "HTTP/1.1"},
		{"no version", ct, one("GET /a\r\n\r\n"), 400, SubcodeDeserializationFailure, "METHOD SP target"},
		{"no space", ct, one("GET\r\n\r\n"), 400, SubcodeDeserializationFailure, "METHOD SP target"},
		{"lower-case method", ct, one("post /a HTTP/1.1\r\n\r\n"), 400, SubcodeDeserializationFailure, "upper-case"},
		{"request line with a bare LF", ct, one("GET /a HTTP/1.1\n\r\n"), 400, SubcodeDeserializationFailure, "bare LF"},
		{"request line with a bare CR", ct, one("GET /a\rHTTP/1.1\r\n\r\n"), 400, SubcodeDeserializationFailure, "bare CR"},
		{"request line without CRLF", ct, one("GET /a HTTP/1.1"), 400, SubcodeDeserializationFailure, "does not end with CRLF"},
		{"no request", ct, one(""), 400, SubcodeDeserializationFailure, "no request"},
		{"a response instead of a request", ct, one("HTTP/1.1 200 OK\r\n\r\n"), 400, SubcodeDeserializationFailure, "request line"},

		// The inner headers and body.
		{"obs-fold", ct, one("GET /a HTTP/1.1\r\nX: a\r\n " + secret + "\r\n\r\n"), 400, SubcodeDeserializationFailure, "obs-fold"},
		{"no colon", ct, one("GET /a HTTP/1.1\r\nX " + secret + "\r\n\r\n"), 400, SubcodeDeserializationFailure, "no colon"},
		{"space before the colon", ct, one("GET /a HTTP/1.1\r\nContent-Length : 0\r\n\r\n"), 400, SubcodeDeserializationFailure, "not a token"},
		{"empty name", ct, one("GET /a HTTP/1.1\r\n: " + secret + "\r\n\r\n"), 400, SubcodeDeserializationFailure, "not a token"},
		{"NUL in a value", ct, one("GET /a HTTP/1.1\r\nX: " + secret + "\x00\r\n\r\n"), 400, SubcodeDeserializationFailure, "control"},
		{"bare CR in a value", ct, one("GET /a HTTP/1.1\r\nX: a\rData: " + secret + "\r\n\r\n"), 400, SubcodeDeserializationFailure, "bare CR"},
		{"bare LF in a value", ct, one("GET /a HTTP/1.1\r\nX: a\nData: " + secret + "\r\n\r\n"), 400, SubcodeDeserializationFailure, "bare LF"},
		{"last header line without CRLF", ct, one("GET /a HTTP/1.1\r\nHost: " + secret), 400, SubcodeDeserializationFailure, "does not end with CRLF"},
		{"Content_Length", ct, one("POST /a HTTP/1.1\r\nContent_Length: 2\r\n\r\n{\"to\":\"" + secret + "\"}"), 400, SubcodeDeserializationFailure, "underscore"},
		{"part Transfer_Encoding", ct, strings.Replace(one(get), "\r\n\r\n", "\r\nTRANSFER_encoding: chunked\r\n\r\n", 1), 400, SubcodeDeserializationFailure, "underscore"},
		{"Transfer-Encoding", ct, one("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), 400, SubcodeDeserializationFailure, "Transfer-Encoding"},
		{"Content-Length too long", ct, one("POST /a HTTP/1.1\r\nContent-Length: 30\r\n\r\n{\"to\":\"" + secret + "\"}"), 400, SubcodeDeserializationFailure, "does not match its body"},
		{"Content-Length too short", ct, one("POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n{\"to\":\"" + secret + "\"}"), 400, SubcodeDeserializationFailure, "does not match its body"},
		{"Content-Length twice", ct, one("POST /a HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}"), 400, SubcodeDeserializationFailure, "two Content-Length"},
		{"Content-Length list", ct, one("POST /a HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n{}"), 400, SubcodeDeserializationFailure, "decimal"},
		{"Content-Length negative", ct, one("POST /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n{}"), 400, SubcodeDeserializationFailure, "decimal"},
		{"Content-Length huge", ct, one("POST /a HTTP/1.1\r\nContent-Length: 9999999999999999999\r\n\r\n{}"), 400, SubcodeDeserializationFailure, "decimal"},
		{"Data and a body", ct, one("POST /a HTTP/1.1\r\nData: {\"to\":\"" + secret + "\"}\r\n\r\n{\"to\":\"sip:a@b\"}"), 400, SubcodeDeserializationFailure, "both a Data header and a body"},
		{"Data twice", ct, one("POST /a HTTP/1.1\r\nData: {}\r\ndata: {\"to\":\"" + secret + "\"}\r\n\r\n"), 400, SubcodeDeserializationFailure, "two Data"},
		{"Data empty", ct, one("POST /a HTTP/1.1\r\nData: \r\n\r\n"), 400, SubcodeDeserializationFailure, "Data header is empty"},
		{"Data on a GET", ct, one("GET /a HTTP/1.1\r\nData: {\"to\":\"" + secret + "\"}\r\n\r\n"), 400, SubcodeDeserializationFailure, "method without a body"},
		{"Data with a Content-Length of its value", ct, one("POST /a HTTP/1.1\r\nContent-Length: 2\r\nData: {}\r\n\r\n"), 400, SubcodeDeserializationFailure, "does not match its body"},

		// The inner Host: .NET's ReadAsHttpRequestMessageAsync runs the
		// request at scheme "://" Host target, so a Host holding a path,
		// query, fragment or userinfo moves it elsewhere.
		{"Host with a path and a query", ct, one("POST /a HTTP/1.1\r\nHost: fe1.contoso.com/ucwa/oauth/v1/applications/1/communication/startPhoneAudio?\r\n\r\n{\"to\":\"" + secret + "\"}"), 400, SubcodeDeserializationFailure, "Host is not a host name"},
		{"Host with a fragment", ct, one("POST /a HTTP/1.1\r\nHost: h/x#\r\n\r\n"), 400, SubcodeDeserializationFailure, "Host is not a host name"},
		{"Host with a backslash", ct, one("POST /a HTTP/1.1\r\nHost: h\\x\\startPhoneAudio?\r\n\r\n"), 400, SubcodeDeserializationFailure, "Host is not a host name"},
		{"Host with userinfo", ct, one("GET /a HTTP/1.1\r\nHost: a@h\r\n\r\n"), 400, SubcodeDeserializationFailure, "Host is not a host name"},
		{"Host with an escape", ct, one("GET /a HTTP/1.1\r\nHost: h%2Fx\r\n\r\n"), 400, SubcodeDeserializationFailure, "Host is not a host name"},
		{"Host with a space", ct, one("GET /a HTTP/1.1\r\nHost: h x\r\n\r\n"), 400, SubcodeDeserializationFailure, "Host is not a host name"},
		{"Host empty", ct, one("GET /a HTTP/1.1\r\nHost: \r\n\r\n"), 400, SubcodeDeserializationFailure, "Host is not a host name"},
		{"Host with a letter port", ct, one("GET /a HTTP/1.1\r\nHost: h:x\r\n\r\n"), 400, SubcodeDeserializationFailure, "Host is not a host name"},
		{"Host with a long port", ct, one("GET /a HTTP/1.1\r\nHost: h:123456\r\n\r\n"), 400, SubcodeDeserializationFailure, "Host is not a host name"},
		{"Host IP literal with a zone", ct, one("GET /a HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n"), 400, SubcodeDeserializationFailure, "Host is not a host name"},
		{"Host IP literal unclosed", ct, one("GET /a HTTP/1.1\r\nHost: [::1\r\n\r\n"), 400, SubcodeDeserializationFailure, "Host is not a host name"},
		{"Host twice", ct, one("GET /a HTTP/1.1\r\nHost: h\r\nhost: h\r\n\r\n"), 400, SubcodeDeserializationFailure, "two Host"},

		// A body without Content-Length that a reader framing the part as
		// HTTP would run as a second request (a pipeline).
		{"a request pipelined after a GET", ct, one("GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /ucwa/oauth/v1/applications/1/communication/startPhoneAudio HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n{\"to\":\"" + secret + "\"}"), 400, SubcodeDeserializationFailure, "reads as another request"},
		{"a request pipelined after blank lines", ct, one("POST /a HTTP/1.1\r\nContent-Type: text/plain\r\n\r\n\r\n \r\npost /b http/1.0\r\n\r\n"), 400, SubcodeDeserializationFailure, "reads as another request"},

		// What a batch may hold.
		{"nested batch", ct, one("POST /ucwa/oauth/v1/applications/1/batch HTTP/1.1\r\nContent-Type: multipart/batching; boundary=x\r\n\r\n" + secret), 400, SubcodeParameterValidationFailure, "Batch part 1: a batch cannot hold another batch"},
		{"nested batch, escaped", ct, one("POST /ucwa/oauth/v1/applications/1/B%61tch/ HTTP/1.1\r\n\r\n"), 400, SubcodeParameterValidationFailure, "another batch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ParseBatch(tt.ct, []byte(tt.body), DefaultMaxBatchParts)
			if err == nil {
				t.Fatalf("accepted %d parts\n%q", len(b.Parts()), tt.body)
			}
			if err.Status != tt.status || err.Subcode != tt.subcode || !strings.Contains(err.Message, tt.rule) || err.Parameters != nil {
				t.Fatalf("error %v, want %d/%s containing %q", err, tt.status, tt.subcode, tt.rule)
			}
			if strings.Contains(err.Message, secret) || strings.Contains(err.Message, B) {
				t.Fatalf("message quotes the input: %v", err)
			}
		})
	}
	// Empty parameters are none ("a/b;", "a/b; ;c=d").
	if _, err := ParseBatch("multipart/batching;; boundary="+B+" ; ;", []byte(one(get)), DefaultMaxBatchParts); err != nil {
		t.Errorf("empty parameters around the boundary: %v", err)
	}
}

// TestParseBatchReferenceSamples runs the batch samples of the UCWA
// reference page batch_ref.md through the parser. The XML request sample
// declares part Content-Lengths (200 and 201) that do not match its parts
// (184 and 185 bytes): such a batch is refused, since a reader that
// trusts the declared length frames it differently.
func TestParseBatchReferenceSamples(t *testing.T) {
	part := func(path string, length int) string {
		return crlf("--EA370946", "Content-Type: application/http; msgtype=request", "Content-Length: "+strconv.Itoa(length), "",
			"GET /ucwa/v1/applications/11540713861"+path+" HTTP/1.1",
			"Accept: application/vnd.microsoft.com.ucwa+xml",
			"Content-Type: application/vnd.microsoft.com.ucwa+xml",
			"Host: fe1.contoso.com", "", "", "")
	}
	ct := `multipart/batching;boundary="EA370946"`
	sample := part("/policies", 200) + part("/me/phones", 201) + "--EA370946--"
	if _, err := ParseBatch(ct, []byte(sample), 100); err == nil || !strings.Contains(err.Message, "Batch part 1: its Content-Length does not match") {
		t.Fatalf("sample with wrong part lengths: %v", err)
	}
	fixed := part("/policies", 184) + part("/me/phones", 185) + "--EA370946--"
	b := mustParseBatch(t, ct, []byte(fixed))
	if len(b.Parts()) != 2 || b.Parts()[1].Path() != "/ucwa/v1/applications/11540713861/me/phones" {
		t.Fatalf("parts %v", b.Parts())
	}
}

func TestBatchResponseRoundTrip(t *testing.T) {
	responses := []BatchResponse{
		{Status: 201, Header: http.Header{"Location": {appPath + "/communication/phoneAudioInvitations/1"}}},
		{Status: 200, Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}, "Cache-Control": {"no-cache"}}, Body: []byte("{\"name\":\"Dana\"}\r\n")},
		{Status: 400, Header: http.Header{"Content-Type": {"application/json"}, "X-Two": {"a", "b"}}, Body: []byte(`{"code":"BadRequest"}`)},
		{Status: 299, Body: []byte("--")},
	}
	ct, body, err := EncodeBatchResponse(responses)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ct, `multipart/batching; boundary="`) || !bytes.HasPrefix(body, []byte("--")) {
		t.Fatalf("Content-Type %q body %q", ct, body)
	}
	got, perr := parseBatchResponse(ct, body)
	if perr != nil {
		t.Fatalf("%v\n%q", perr, body)
	}
	if len(got) != len(responses) {
		t.Fatalf("%d responses", len(got))
	}
	for i, r := range responses {
		g := got[i]
		if g.Status != r.Status || !bytes.Equal(g.Body, r.Body) || len(g.Header) != len(r.Header) {
			t.Errorf("response %d = %d %q %v, want %d %q %v", i+1, g.Status, g.Body, g.Header, r.Status, r.Body, r.Header)
		}
		for name, values := range r.Header {
			if !slices.Equal(g.Header.Values(name), values) {
				t.Errorf("response %d header %s = %q, want %q", i+1, name, g.Header.Values(name), values)
			}
		}
	}

	for _, bad := range []BatchResponse{
		{Status: 99},
		{Status: 200, Header: http.Header{"Bad Name": {"x"}}},
		{Status: 200, Header: http.Header{"X": {"a\r\nInjected: 1"}}},
	} {
		if _, _, err := EncodeBatchResponse([]BatchResponse{bad}); err == nil {
			t.Errorf("EncodeBatchResponse(%v) accepted", bad)
		}
	}
}

// parseBatchResponse reads a multipart/batching response as
// EditBatchResponseHeader does (see batchScanResponses), into its parts.
// Bodies alias the input.
func parseBatchResponse(contentType string, body []byte) ([]BatchResponse, *Error) {
	var out []BatchResponse
	err := batchScanResponses(contentType, body, func(status int, _ batchSpan, fields []batchField, bodyStart, end int) {
		r := BatchResponse{Status: status, Header: make(http.Header, len(fields)), Body: body[bodyStart:end]}
		for _, f := range fields {
			name := batchHeaderName(body[f.name.start:f.name.end])
			r.Header[name] = append(r.Header[name], string(body[f.value.start:f.value.end]))
		}
		out = append(out, r)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// TestParseBatchResponse reads the answer of the reference page
// "Batching requests" (CRLF line endings, bodies shortened).
func TestParseBatchResponse(t *testing.T) {
	const b = "3968fb75-0b0e-4e11-8b0c-4e37d822ed0c"
	ct := `multipart/batching; boundary="` + b + `"`
	body := crlf(
		"--"+b,
		"Content-Type: application/http; msgtype=response",
		"",
		"HTTP/1.1 200 OK",
		"Cache-Control: no-cache",
		"Content-Type: application/json; charset=utf-8",
		"",
		`{"rel":"myContacts"}`,
		"--"+b,
		"Content-Type: application/http; msgtype=response",
		"",
		"HTTP/1.1 404 Not Found",
		"Content-Length: 17",
		"",
		`{"code":"NotFound"}`[:17],
		"--"+b+"--",
		"",
	)
	got, err := parseBatchResponse(ct, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Status != 200 || string(got[0].Body) != `{"rel":"myContacts"}` ||
		got[0].Header.Get("content-type") != "application/json; charset=utf-8" || got[1].Status != 404 || len(got[1].Body) != 17 {
		t.Fatalf("%+v", got)
	}
	for name, bad := range map[string]string{
		"request part":       strings.Replace(body, "msgtype=response", "msgtype=request", 1),
		"status of 2 digits": strings.Replace(body, "HTTP/1.1 200 OK", "HTTP/1.1 20 OK", 1),
		"status line 1.0":    strings.Replace(body, "HTTP/1.1 200 OK", "HTTP/1.0 200 OK", 1),
		"wrong length":       strings.Replace(body, "Content-Length: 17", "Content-Length: 16", 1),
		"no closing":         strings.TrimSuffix(body, "--"+b+"--\r\n"),
	} {
		if _, err := parseBatchResponse(ct, []byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestBatchIsPartType holds the check of the usual part Content-Types to
// the full one: what it takes, batchCheckPartType takes too.
func TestBatchIsPartType(t *testing.T) {
	tests := []struct {
		v    string
		want bool // taken without parsing
	}{
		{"application/http", true},
		{"Application/HTTP", true},
		{"application/http; msgtype=request", true},
		{"application/http;msgtype=Request", true},
		{"application/http; msgtype=response", false},
		{"application/http;  msgtype=request", false},
		{"application/http; version=1.1; msgtype=request", false},
		{"application/http; mſgtype=request", false}, // ſ folds to s: parsed
		{"application/https", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := batchIsPartType([]byte(tc.v), "request"); got != tc.want {
			t.Errorf("batchIsPartType(%q) = %v, want %v", tc.v, got, tc.want)
		}
		if tc.want {
			if rule := batchCheckPartType(tc.v, "request"); rule != "" {
				t.Errorf("batchCheckPartType(%q) refuses what batchIsPartType takes: %s", tc.v, rule)
			}
		}
	}
}

// TestEditBatchResponseHeader: the named field of every part is replaced
// or its line removed as edit says, whatever its case; every other byte
// stays as the pool wrote it.
func TestEditBatchResponseHeader(t *testing.T) {
	const b = "b"
	ct := `multipart/batching; boundary="` + b + `"`
	part := func(lines ...string) []string {
		return append([]string{"--" + b, "Content-Type: application/http; msgtype=response", ""}, lines...)
	}
	body := func(parts ...[]string) string {
		var lines []string
		for _, p := range parts {
			lines = append(lines, p...)
		}
		return crlf(append(lines, "--"+b+"--", "")...)
	}
	// A part that gives its own Content-Length, the length of lines.
	measured := func(lines ...string) []string {
		return append([]string{"--" + b, "Content-Type: application/http; msgtype=response", "Content-Length: " + strconv.Itoa(len(crlf(lines...))), ""}, lines...)
	}
	edit := func(v string) (string, bool) {
		switch v {
		case "http://pool/a", "http://pool/b":
			return "http://edge" + v[len("http://pool"):], true
		case "/longer":
			return "http://edge/longer", true
		case "drop":
			return "", false
		case "control":
			return "x\r\nInjected: 1", true
		}
		return v, true
	}
	for _, tc := range []struct {
		name, in, want string
		changed        bool
	}{
		{"none", body(part("HTTP/1.1 200 OK", "Cache-Control: no-cache", "", "{}")), "", false},
		{"kept as written", body(part("HTTP/1.1 201 Created", "Location: /ucwa/x", "")), "", false},
		{
			"replaced in each part, any case, value trimmed",
			body(part("HTTP/1.1 201 Created", "Location: http://pool/a", "Content-Length: 2", "", "{}"), part("HTTP/1.1 201 Created", "location:\thttp://pool/b  ", "")),
			body(part("HTTP/1.1 201 Created", "Location: http://edge/a", "Content-Length: 2", "", "{}"), part("HTTP/1.1 201 Created", "location:\thttp://edge/b  ", "")),
			true,
		},
		{
			"removed",
			body(part("HTTP/1.1 201 Created", "X-A: 1", "Location: drop", "X-B: 2", "")),
			body(part("HTTP/1.1 201 Created", "X-A: 1", "X-B: 2", "")),
			true,
		},
		{
			"a control character removes the line",
			body(part("HTTP/1.1 201 Created", "Location: control", "")),
			body(part("HTTP/1.1 201 Created", "")),
			true,
		},
		{
			"a part's own Content-Length counts the lines edited and removed",
			body(measured("HTTP/1.1 201 Created", "Location: /longer", "Content-Length: 2", "", "{}"), measured("HTTP/1.1 201 Created", "X-A: 1", "Location: drop", "")),
			body(measured("HTTP/1.1 201 Created", "Location: http://edge/longer", "Content-Length: 2", "", "{}"), measured("HTTP/1.1 201 Created", "X-A: 1", "")),
			true,
		},
		{
			"only the headers, not a body that reads like one",
			body(part("HTTP/1.1 200 OK", "", "Location: http://pool/a")),
			"", false,
		},
	} {
		out, changed, err := EditBatchResponseHeader(ct, []byte(tc.in), "Location", edit)
		want := tc.want
		if !tc.changed {
			want = tc.in
		}
		if err != nil || changed != tc.changed || string(out) != want {
			t.Errorf("%s: got %v %v\n%q\nwant %v\n%q", tc.name, err, changed, out, tc.changed, want)
		}
	}
	if _, _, err := EditBatchResponseHeader(ct, []byte("--b\r\nContent-Type: application/http; msgtype=response\r\n\r\nHTTP/1.0 200 OK\r\n\r\n--b--"), "Location", edit); err == nil {
		t.Error("a part with an HTTP/1.0 status line: edited")
	}
}

// BenchmarkEditBatchResponseHeader: the edge's read of a pool's answer
// to a batch of ten, whose parts' Locations are path-absolute (a pool's
// usual) or name the pool's host.
func BenchmarkEditBatchResponseHeader(b *testing.B) {
	for _, location := range []string{"/ucwa/v1/applications/1/people/contacts/1", "https://fe1.contoso.com/ucwa/v1/applications/1/people/contacts/1"} {
		var parts []BatchResponse
		for range 10 {
			parts = append(parts, BatchResponse{Status: 200, Header: http.Header{"Content-Type": {"application/json"}, "Location": {location}},
				Body: []byte(`{"name":"Dana Birkby","uri":"sip:dana@contoso.com","_links":{"self":{"href":"/ucwa/v1/applications/1/people/dana@contoso.com"}}}`)})
		}
		ct, body, err := EncodeBatchResponse(parts)
		if err != nil {
			b.Fatal(err)
		}
		edit := func(v string) (string, bool) {
			if rest, ok := strings.CutPrefix(v, "https://fe1.contoso.com"); ok {
				return "https://edge.contoso.com" + rest, true
			}
			return v, true
		}
		b.Run(location[:5], func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := EditBatchResponseHeader(ct, body, "Location", edit); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
