package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// recorded is one request an upstream received.
type recorded struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   string
}

// upstream is a real loopback server that records what it receives and
// answers 201 Created with a Location, as a pool does.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(b)})
		u.mu.Unlock()
		w.Header().Set("Location", "/ucwa/v1/applications/192/communication/invitations/146")
		w.Header().Set("X-MS-UcwaVersion", "2")
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) received() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recorded(nil), u.reqs...)
}

// hostport is the upstream's address as reverse_proxy takes it.
func (u *upstream) hostport() string {
	return strings.TrimPrefix(u.URL, "http://")
}

// Ports of the in-process Caddy. caddytest drives it through an admin
// port; both can be moved (UCWA_TEST_ADMIN_PORT, UCWA_TEST_HTTP_PORT) so
// that two checkouts can run their suites at the same time.
var (
	adminPort = envPort("UCWA_TEST_ADMIN_PORT", 2999)
	edgePort  = envPort("UCWA_TEST_HTTP_PORT", 9080)
)

func envPort(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// edgeURL is the URL of path on the edge under test.
func edgeURL(path string) string {
	return fmt.Sprintf("http://localhost:%d%s", edgePort, path)
}

// startCaddy loads a config (Caddyfile or JSON) into the in-process Caddy
// that caddytest drives. In config, ADMIN_PORT and EDGE_PORT stand for the
// admin and HTTP ports.
func startCaddy(t *testing.T, config, adapter string) *caddytest.Tester {
	t.Helper()
	config = strings.NewReplacer("ADMIN_PORT", strconv.Itoa(adminPort), "EDGE_PORT", strconv.Itoa(edgePort)).Replace(config)
	tester := caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{AdminPort: adminPort})
	tester.InitServer(config, adapter)
	forgetIdleConnections(tester)
	return tester
}

// forgetIdleConnections drops the clients' kept-alive connections after a
// config load: the old servers close theirs, and a POST sent on one gets
// EOF, which Go does not retry. Tests use the tester's client or one on
// http.DefaultTransport.
func forgetIdleConnections(tester *caddytest.Tester) {
	tester.Client.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
}

// send makes one request and returns the response with its body read.
func send(t testing.TB, client *http.Client, method, url, contentType, accept, body string, headers http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	for name, values := range headers {
		for _, v := range values {
			req.Header.Add(name, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}
