package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"

	_ "github.com/ucwa-edge/caddy-ucwa/emulator" // the demo's pools, in configs the tests load
)

func TestMain(m *testing.M) { testkit.Main(m) }

// seedJSON is the reference page's JSON sample with its broken line
// repaired; seedXML is its XML sample as printed.
var seedJSON, seedXML = readTestdata("seed.json"), readTestdata("seed.xml")

func readTestdata(name string) string {
	b, err := os.ReadFile("../ucwa/testdata/" + name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

const startPath = "/ucwa/v1/applications/192/communication/startPhoneAudio"

// edge is a ucwa handler under test in the in-process Caddy, on EDGE_PORT
// or on the port of its site (see site).
type edge struct {
	*testkit.Caddy
	t    testing.TB
	port string // the port name of its site
}

// startEdge runs config in the in-process Caddy.
func startEdge(t testing.TB, adapter, config string, options ...testkit.Option) edge {
	t.Helper()
	return edge{testkit.Start(t, adapter, config, options...), t, "EDGE_PORT"}
}

// site is the edge of e's config on port (a port name, such as
// "REDIS_PORT"), for t: a subtest of the test that started the Caddy,
// which may run beside the subtests of the config's other sites
// (t.Parallel) when they share nothing but the Caddy, so that rows that
// wait out real time wait it out together.
func (e edge) site(t testing.TB, port string) edge {
	return edge{e.Caddy, t, port}
}

// assertWarnedOnce checks that logs hold msg once, at warn level, when
// want, and not at all otherwise: a warning said once at startup.
func assertWarnedOnce(t *testing.T, logs *testkit.Logs, msg string, want bool) {
	t.Helper()
	lines := logs.Lines(msg)
	if got := len(lines) == 1; got != want || len(lines) > 1 {
		t.Errorf("%d lines %q, want it: %v", len(lines), msg, want)
	}
	for _, l := range lines {
		if !strings.Contains(l, `"level":"warn"`) {
			t.Errorf("not a warning: %s", l)
		}
	}
}

// url is the URL of path on the edge.
func (e edge) url(path string) string {
	e.t.Helper()
	return e.URL(e.port, path)
}

// send sends req to the edge, its URL being a path there.
func (e edge) send(req testkit.Request) testkit.Response {
	e.t.Helper()
	req.URL = e.url(req.URL)
	return testkit.Send(e.t, e.Client(), req)
}

// postJSON posts a JSON startPhoneAudio body to path on the edge.
func (e edge) postJSON(path, body string, header http.Header) testkit.Response {
	e.t.Helper()
	return e.send(testkit.Request{URL: path, ContentType: "application/json", Body: body, Header: header})
}

// ucwaErrorBody is a JSON UCWA error as a client reads it.
type ucwaErrorBody struct {
	Code       string `json:"code"`
	Subcode    string `json:"subcode"`
	Message    string `json:"message"`
	Parameters []struct {
		Name   string `json:"name"`
		Reason string `json:"reason"`
	} `json:"parameters"`
}

// ucwaError decodes a JSON UCWA error body.
func ucwaError(t testing.TB, body string) ucwaErrorBody {
	t.Helper()
	var e ucwaErrorBody
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not a JSON UCWA error: %q", body)
	}
	return e
}

// assertUCWAError checks that a response is a UCWA error body of the
// expected shape, format and content.
func assertUCWAError(t *testing.T, resp testkit.Response, code, subcode string, params []string, isXML bool) {
	t.Helper()
	ct := resp.Header.Get("Content-Type")
	if isXML {
		if !strings.HasPrefix(ct, "application/xml") {
			t.Fatalf("Content-Type = %q, want XML; body: %s", ct, resp.Body)
		}
		for _, want := range []string{`<reason xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">`, "<code>" + code + "</code>", "<subcode>" + subcode + "</subcode>"} {
			if subcode == "" && strings.HasPrefix(want, "<subcode>") {
				continue
			}
			if !strings.Contains(resp.Body, want) {
				t.Errorf("XML error body lacks %s: %s", want, resp.Body)
			}
		}
		return
	}
	if !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q, want JSON; body: %s", ct, resp.Body)
	}
	e := ucwaError(t, resp.Body)
	if e.Code != code || e.Subcode != subcode || e.Message == "" {
		t.Errorf("error = %+v, want code %s subcode %s and a message", e, code, subcode)
	}
	var names []string
	for _, p := range e.Parameters {
		names = append(names, p.Name)
	}
	if params != nil && strings.Join(names, ",") != strings.Join(params, ",") {
		t.Errorf("parameters name %v, want %v", names, params)
	}
}

// edgeServer is a Caddy that serves an edge on EDGE_PORT: the in-process
// one (*testkit.Caddy) or one of its own (*testkit.Process).
type edgeServer interface {
	URL(port, path string) string
	Client() *http.Client
}

// sendAtOnce sends request i to edges[i%len(edges)] (its EDGE_PORT), all
// released together, and returns the answers in order; a request that
// gets no answer fails the test.
func sendAtOnce[E edgeServer](t *testing.T, edges []E, reqs []testkit.Request) []testkit.Response {
	t.Helper()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		resps = make([]testkit.Response, len(reqs))
		errs  = make([]error, len(reqs))
	)
	for i, req := range reqs {
		p := edges[i%len(edges)]
		req.URL = p.URL("EDGE_PORT", req.URL)
		wg.Go(func() {
			<-start
			resps[i], errs[i] = testkit.Do(p.Client(), req)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return resps
}

// reservationToken is a new reservation token (see appendReservationToken).
func reservationToken() string {
	var t [reservationTokenLen]byte
	return string(appendReservationToken(t[:0]))
}

// encode is a's record, with the inputsDigest it was recorded with.
func (a *recordedAnswer) encode() string {
	return a.encodeWith([]byte(a.inputs), a.body, nil)
}

// trailConfig is the Caddyfile of an edge of opsJWT in front of pool
// whose audit trail goes to a log of its own, written to output in the
// log's format (a `format` line or block), with settings after the
// edge's primary.
func trailConfig(output, format, pool, settings string) string {
	return fmt.Sprintf(`{
	log default {
		exclude http.handlers.ucwa.audit
	}
	log ucwa_audit {
		include http.handlers.ucwa.audit
		output %s
		%s
	}
}
:EDGE_PORT {
	ucwa {
		`+opsJWT+`
		default_region US
		primary %s
		%s
	}
}`, output, format, pool, settings)
}
