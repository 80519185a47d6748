package ucwa

import (
	"bufio"
	"bytes"
	"maps"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Run the batch targets locally with, for example,
//
//	go test -run='^$' -fuzz='^FuzzParseBatch$' -fuzztime=5m ./ucwa/
//
// and benchmark them with
//
//	go test -run='^$' -bench='Batch' -benchmem ./ucwa/

// tenGETs is a batch of ten GETs as batch.js sends it.
func tenGETs() []byte {
	parts := make([]jsPart, 10)
	for i := range parts {
		parts[i] = jsPart{request: "GET " + appPath + "/people/user" + strconv.Itoa(i) + "@contoso.com/presence HTTP/1.1"}
	}
	return batchJS(testBoundary, parts...)
}

// tenPOSTs is a batch of ten startPhoneAudio POSTs with JSON bodies and
// Content-Lengths, as .NET's MultipartContent and HttpMessageContent
// write them.
func tenPOSTs() []byte {
	var s strings.Builder
	for i := range 10 {
		s.WriteString(postPart(testBoundary, appPath+"/communication/startPhoneAudio",
			`{"to":"tel:+1 (425) 555-12`+strconv.Itoa(10+i)+`","phoneNumber":"4255551234","operationId":"0f8fad5b-d9cb-469f-a165-70867728950`+strconv.Itoa(i)+`","importance":"Normal"}`))
		s.WriteString("\r\n")
	}
	s.WriteString(closeBatch(testBoundary))
	return []byte(s.String())
}

// lengthPart is a part holding inner, with a part Content-Length.
func lengthPart(boundary, inner string) string {
	return crlf("--"+boundary, "Content-Type: application/http", "Content-Length: "+strconv.Itoa(len(inner)), "", inner)
}

type batchSeed struct {
	ct   string
	body string
}

func batchSeeds() []batchSeed {
	json := `{"to":"sip:john@contoso.com","operationId":"1"}`
	return []batchSeed{
		{testBatchCT, docExample},
		{testBatchCT, string(tenGETs())},
		{testBatchCT, string(tenPOSTs())},
		{testBatchCT, string(batchJS(testBoundary,
			jsPart{request: "GET " + appPath + "/me HTTP/1.1"},
			jsPart{request: "POST " + appPath + "/communication/startPhoneAudio HTTP/1.1", data: json},
		))},
		{`multipart/batching; boundary="a'(b)+_,-./:=? c"`, getPart("a'(b)+_,-./:=? c", "/a?b=c") + closeBatch("a'(b)+_,-./:=? c")},
		{"multipart/batching; boundary=B", lengthPart("B", "POST /a HTTP/1.1\r\nContent-Length: 0\r\nData: {}\r\n\r\n") + "\r\n--B--"},
		{"multipart/batching; boundary=B", lengthPart("B", "PUT /a?x HTTP/1.1\r\nContent-Length: 0\r\n") + "\r\n" +
			lengthPart("B", "POST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}") + "\r\n--B--"},
		{testBatchCT, "preamble\r\n--" + testBoundary + "\r\nContent-Type: application/http\r\n\r\nDELETE /x HTTP/1.1\r\n\r\n\r\n--" + testBoundary + "--\r\nepilogue"},
		{testBatchCT, "\r\n--" + testBoundary + "\r\nContent-Type: application/http\r\n\r\nDELETE /x HTTP/1.1\r\n\r\n\r\n--" + testBoundary + "--\r\nepilogue"},
		// Refused, to start the fuzzer near the rules.
		{testBatchCT, strings.ReplaceAll(docExample, "\r\n", "\n")},
		{testBatchCT, getPart(testBoundary, "/a") + getPart(testBoundary, appPath+"/batch") + closeBatch(testBoundary)},
		{"multipart/batching; boundary=x", "--x\r\nContent-Type: application/http\r\n\r\nPOST /a HTTP/1.1\r\nData: {}\r\n\r\n{}\r\n--x--"},
		{"multipart/batching; boundary=x", "--x\r\nContent-Type: application/http\r\n\r\nGET http://h/a HTTP/1.1\r\n\r\n\r\n--X--"},
		{"multipart/batching", ""},
		{"multipart/batching; boundary=x", "--x\r\nContent-Type: application/http\r\n\r\nGET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}\r\n--x--"},
		{"multipart/batching; boundary=x", "--x\r\nContent-Type: application/http\r\n\r\nPOST /a HTTP/1.1\r\nHost: h:1/b/c?\r\nData: {}\r\n\r\n--x--"},
	}
}

// batchShape is what a re-encoded batch must keep: everything but the
// bodies, the targets and the header fields that describe the body.
type batchShape struct {
	method string
	source BodySource
	header http.Header
}

func shapeOf(p *BatchPart) batchShape {
	h := maps.Clone(p.Header)
	delete(h, "Content-Length")
	delete(h, "Data")
	return batchShape{p.Method, p.Source(), h}
}

func FuzzParseBatch(f *testing.F) {
	for _, s := range batchSeeds() {
		f.Add(s.ct, []byte(s.body), []byte(`{"to":"tel:+19005551234","operationId":"1"}`))
	}
	f.Fuzz(func(t *testing.T, ct string, body, repl []byte) {
		const maxParts = 12
		b, err := ParseBatch(ct, body, maxParts)
		if err != nil {
			if b != nil || (err.Status != 400 && err.Status != 415) || err.Message == "" || err.Parameters != nil ||
				(err.Subcode != SubcodeDeserializationFailure && err.Subcode != SubcodeParameterValidationFailure && err.Subcode != SubcodeUnsupportedMediaType) {
				t.Fatalf("bad refusal %#v", err)
			}
			return
		}
		parts := b.Parts()
		if len(parts) == 0 || len(parts) > maxParts {
			t.Fatalf("%d parts", len(parts))
		}
		// Nothing but white space stands before the first delimiter or
		// after the closing one, where a reader that does not ignore them
		// would find a request the edge never judged.
		boundary, _ := batchBoundary(ct)
		first, closing := bytes.Index(body, []byte("--"+boundary)), bytes.LastIndex(body, []byte("--"+boundary+"--"))
		if first < 0 || closing < 0 || len(bytes.Trim(body[:first], " \t\r\n")) > 0 || len(bytes.Trim(body[closing+len(boundary)+4:], " \t\r\n")) > 0 {
			t.Fatalf("a preamble or an epilogue of more than white space passes: %q", body)
		}
		if out := b.Encode(); !sameSlice(out, body) {
			t.Fatalf("unchanged batch re-encodes as %q", out)
		}
		// A reader that frames a part as HTTP/1.1 (a request without
		// Content-Length has no body) and reads the rest as a pipeline
		// finds no second request.
		for _, p := range parts {
			if p.Source() != BodyInMessage || len(p.Header["Content-Length"]) > 0 {
				continue
			}
			rest := bytes.TrimLeftFunc(p.Body(), func(r rune) bool { return r <= ' ' })
			if req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(rest))); err == nil {
				t.Fatalf("part %d: its body without Content-Length reads as a request %s %s", p.Index, req.Method, req.RequestURI)
			}
		}
		// A reader that runs a part at scheme "://" Host target, as .NET's
		// ReadAsHttpRequestMessageAsync does, finds the path and query the
		// parser read, with that Host and no userinfo.
		for _, p := range parts {
			hosts := p.Header.Values("Host")
			if len(hosts) > 1 {
				t.Fatalf("part %d has Hosts %q", p.Index, hosts)
			}
			for _, h := range hosts {
				u, err := url.Parse("http://" + h + p.Target())
				path, _ := TargetPath(p.Target())
				if err != nil || u.Host != h || u.User != nil || u.Fragment != "" || u.Path != path || u.RawQuery != p.RawQuery() {
					t.Fatalf("part %d: Host %q and target %q read as %v (%v)", p.Index, h, p.Target(), u, err)
				}
			}
		}

		// Every body and target replaced with a copy of itself.
		for _, p := range parts {
			if err := p.SetBody(bytes.Clone(p.Body())); err != nil {
				t.Fatalf("part %d refuses its own body: %v", p.Index, err)
			}
			if err := p.SetTarget(strings.Clone(p.Target())); err != nil {
				t.Fatalf("part %d refuses its own target: %v", p.Index, err)
			}
		}
		if b.Changed() {
			t.Fatal("batch changed by its own bodies")
		}
		if out := b.Encode(); !bytes.Equal(out, body) {
			t.Fatalf("batch with its own bodies re-encodes as %q", out)
		}

		// Other bodies and targets: the re-parsed batch holds them and the
		// same methods, sources and other headers.
		type want struct {
			shape  batchShape
			target string
			body   []byte
		}
		wants := make([]want, len(parts))
		for i, p := range parts {
			var nb []byte
			switch i % 4 {
			case 0:
				nb = repl
			case 1:
				nb = append(bytes.Clone(repl), repl...)
			case 2:
				nb = nil
			case 3:
				nb = append(bytes.Clone(p.Body()), 'x')
			}
			if err := p.SetBody(nb); err != nil && err.Status != 400 {
				t.Fatalf("SetBody refusal %v", err)
			}
			sep := "?"
			if strings.Contains(p.Target(), "?") {
				sep = "&"
			}
			if err := p.SetTarget(p.Target() + sep + "q=" + strconv.Itoa(i)); err != nil && err.Status != 400 {
				t.Fatalf("SetTarget refusal %v", err)
			}
			wants[i] = want{shapeOf(p), p.Target(), p.Body()}
		}
		out := b.Encode()
		b2, err := ParseBatch(ct, out, maxParts)
		if err != nil {
			t.Fatalf("re-encoded batch refused: %v\n%q\nfrom %q", err, out, body)
		}
		if len(b2.Parts()) != len(parts) {
			t.Fatalf("re-encoded batch has %d parts, want %d", len(b2.Parts()), len(parts))
		}
		for i, p := range b2.Parts() {
			w := wants[i]
			if got := shapeOf(p); !reflect.DeepEqual(got, w.shape) {
				t.Fatalf("part %d: %+v, want %+v", i+1, got, w.shape)
			}
			if p.Target() != w.target || !bytes.Equal(p.Body(), w.body) {
				t.Fatalf("part %d: %q %q, want %q %q", i+1, p.Target(), p.Body(), w.target, w.body)
			}
			if p.Source() == BodyInDataHeader && !slices.Equal(p.Header.Values("Data"), []string{string(w.body)}) {
				t.Fatalf("part %d: Data header %q", i+1, p.Header.Values("Data"))
			}
		}
	})
}

func FuzzParseBatchResponse(f *testing.F) {
	ct, body, err := EncodeBatchResponse([]BatchResponse{
		{Status: 201, Header: http.Header{"Location": {"/a"}}},
		{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"a":1}`)},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ct, body)
	f.Add(`multipart/batching; boundary="b"`, []byte("--b\r\nContent-Type: application/http; msgtype=response\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}\r\n--b--"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		got, err := parseBatchResponse(ct, body)
		if err != nil {
			if err.Message == "" || (err.Status != 400 && err.Status != 415) {
				t.Fatalf("bad refusal %#v", err)
			}
			return
		}
		ct2, body2, encErr := EncodeBatchResponse(got)
		if encErr != nil {
			t.Fatalf("parsed responses do not encode: %v", encErr)
		}
		again, err := parseBatchResponse(ct2, body2)
		if err != nil {
			t.Fatalf("encoded responses do not parse: %v\n%q", err, body2)
		}
		if len(again) != len(got) {
			t.Fatalf("%d responses, want %d", len(again), len(got))
		}
		for i := range got {
			if again[i].Status != got[i].Status || !bytes.Equal(again[i].Body, got[i].Body) || !reflect.DeepEqual(again[i].Header, got[i].Header) {
				t.Fatalf("response %d: %+v, want %+v", i+1, again[i], got[i])
			}
		}
	})
}

// TestParseBatchAllocationsPerPart: a part costs the parser its Header
// and no copy of its own (the request lines and header values of every
// part are pieces of one copy of the batch), and a part of many lines of
// one name gets a Header with room for a few names, not one per line.
func TestParseBatchAllocationsPerPart(t *testing.T) {
	gets := func(n int) []byte {
		parts := make([]jsPart, n)
		for i := range parts {
			parts[i] = jsPart{request: "GET " + appPath + "/people/user" + strconv.Itoa(i) + "@contoso.com/presence HTTP/1.1"}
		}
		return batchJS(testBoundary, parts...)
	}
	parse := func(body []byte) {
		if _, err := ParseBatch(testBatchCT, body, DefaultMaxBatchParts); err != nil {
			t.Fatal(err)
		}
	}
	// From 4 parts to 12 the parts take one more chunk (see newPart), and
	// each of the 8 more its Header: a map and its slots.
	four, twelve := gets(4), gets(12)
	const perPart = 2
	if a4, a12 := testing.AllocsPerRun(20, func() { parse(four) }), testing.AllocsPerRun(20, func() { parse(twelve) }); a12-a4 > 8*perPart+1 {
		t.Errorf("12 parts allocate %v, 4 parts %v: more than %d a part", a12, a4, perPart)
	}
	// One part of 10,000 lines "X: y": its fields, their values and the
	// name's array grow by doubling, about 2.2 MB in all; a Header sized
	// for 10,000 names would add about 0.8 MB.
	many := []byte(crlf("--"+testBoundary, "Content-Type: application/http", "", "GET /a HTTP/1.1", strings.Repeat("X: y\r\n", 10000), closeBatch(testBoundary)))
	// The fewest bytes of three measures: the process's count takes in
	// whatever else allocates meanwhile.
	least := uint64(math.MaxUint64)
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const runs = 10
		for range runs {
			parse(many)
		}
		runtime.ReadMemStats(&after)
		least = min(least, (after.TotalAlloc-before.TotalAlloc)/runs)
	}
	if least > 2_600_000 {
		t.Errorf("a part of 10,000 lines of one name allocates %d bytes", least)
	}
}

func BenchmarkParseBatch(b *testing.B) {
	for name, body := range map[string][]byte{"GET10": tenGETs(), "POST10": tenPOSTs()} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := ParseBatch(testBatchCT, body, DefaultMaxBatchParts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeBatch parses a batch and encodes it: unchanged (the ten
// GETs the edge forwards as they came), and with every body replaced (ten
// POSTs whose numbers the edge normalized).
func BenchmarkEncodeBatch(b *testing.B) {
	b.Run("GET10", func(b *testing.B) {
		body := tenGETs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			batch, err := ParseBatch(testBatchCT, body, DefaultMaxBatchParts)
			if err != nil {
				b.Fatal(err)
			}
			if len(batch.Encode()) != len(body) {
				b.Fatal("changed")
			}
		}
	})
	b.Run("POST10", func(b *testing.B) {
		body := tenPOSTs()
		cleaned := make([][]byte, 10)
		for i := range cleaned {
			cleaned[i] = []byte(`{"to":"tel:+142555512` + strconv.Itoa(10+i) + `","phoneNumber":"tel:+14255551234","operationId":"0f8fad5b-d9cb-469f-a165-70867728950` + strconv.Itoa(i) + `","importance":"Normal"}`)
		}
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			batch, err := ParseBatch(testBatchCT, body, DefaultMaxBatchParts)
			if err != nil {
				b.Fatal(err)
			}
			for i, p := range batch.Parts() {
				if err := p.SetBody(cleaned[i]); err != nil {
					b.Fatal(err)
				}
			}
			if len(batch.Encode()) == len(body) {
				b.Fatal("unchanged")
			}
		}
	})
}

// BenchmarkParseBatchAdversarial parses bodies built to make a careless
// scanner quadratic (dashes everywhere, near-boundaries, a boundary of
// dashes, many header lines) at two sizes: linear work shows the same
// MB/s at both.
func BenchmarkParseBatchAdversarial(b *testing.B) {
	dashB := strings.Repeat("-", 70)
	cases := map[string]func(n int) (string, string){
		"dashes": func(n int) (string, string) {
			return testBatchCT, crlf("--"+testBoundary, "Content-Type: application/http", "", "POST /a HTTP/1.1", "", strings.Repeat("-", n), closeBatch(testBoundary))
		},
		"dash-boundary": func(n int) (string, string) {
			return "multipart/batching; boundary=" + dashB, crlf("--"+dashB, "Content-Type: application/http", "", "POST /a HTTP/1.1", "", strings.Repeat("-", n))
		},
		"near-boundaries": func(n int) (string, string) {
			near := "--" + testBoundary[:len(testBoundary)-1] + "x"
			return testBatchCT, crlf("--"+testBoundary, "Content-Type: application/http", "", "POST /a HTTP/1.1", "", strings.Repeat(near, n/len(near)), closeBatch(testBoundary))
		},
		"headers": func(n int) (string, string) {
			return testBatchCT, crlf("--"+testBoundary, "Content-Type: application/http", "", "GET /a HTTP/1.1", strings.Repeat("X: y\r\n", n/6), closeBatch(testBoundary))
		},
	}
	for name, mk := range cases {
		for _, n := range []int{1 << 20, 8 << 20} {
			ct, body := mk(n)
			b.Run(name+"/"+strconv.Itoa(n>>20)+"MiB", func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				raw := []byte(body)
				for b.Loop() {
					_, _ = ParseBatch(ct, raw, DefaultMaxBatchParts)
				}
			})
		}
	}
}

// FuzzEditBatchResponseHeader: an edited response parses as the one it
// was made from, with the edited values in place of the named field's and
// the removed lines gone (those whose new value holds a control character
// or the batch's delimiter), whatever edit returns.
func FuzzEditBatchResponseHeader(f *testing.F) {
	f.Add(`multipart/batching; boundary="b"`, []byte("--b\r\nContent-Type: application/http; msgtype=response\r\n\r\nHTTP/1.1 201 Created\r\nLocation: http://pool/a\r\nContent-Length: 2\r\n\r\n{}\r\n--b--"), "http://edge/a", true)
	f.Add(`multipart/batching; boundary="b"`, []byte("--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 201 Created\r\nlocation:  x \r\nX: y\r\n\r\n--b--\r\n"), "a\r\n--b--", true)
	f.Add(`multipart/batching; boundary="b"`, []byte("--b\r\n\r\nHTTP/1.1 200 OK\r\nLocation: x\r\n\r\n--b--"), "", false)
	f.Add(`multipart/batching; boundary="b"`, []byte("--b\r\nContent-Type: application/http\r\nContent-Length: 40\r\n\r\nHTTP/1.1 201 Created\r\nLocation: /a\r\n\r\n{}\r\n--b--"), "https://edge/a", true)
	f.Fuzz(func(t *testing.T, ct string, body []byte, value string, keep bool) {
		want, err := parseBatchResponse(ct, body)
		out, _, eerr := EditBatchResponseHeader(ct, body, "Location", func(string) (string, bool) { return value, keep })
		if (err == nil) != (eerr == nil) {
			t.Fatalf("parse error %v, edit error %v", err, eerr)
		}
		if err != nil {
			return
		}
		got, err := parseBatchResponse(ct, out)
		if err != nil {
			t.Fatalf("the edited response does not parse: %v\n%q", err, out)
		}
		if len(got) != len(want) {
			t.Fatalf("%d responses, want %d", len(got), len(want))
		}
		for i := range want {
			locs := want[i].Header["Location"]
			if len(locs) > 0 {
				boundary, _ := batchBoundary(ct)
				if !keep || batchHasControl([]byte(value)) || batchIndexBoundary([]byte(value), boundary, 0) >= 0 {
					delete(want[i].Header, "Location")
				} else {
					for j := range locs {
						locs[j] = strings.Trim(value, " \t")
					}
				}
			}
			if got[i].Status != want[i].Status || !bytes.Equal(got[i].Body, want[i].Body) || !reflect.DeepEqual(got[i].Header, want[i].Header) {
				t.Fatalf("response %d: %+v, want %+v", i+1, got[i], want[i])
			}
		}
	})
}
