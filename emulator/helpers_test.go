package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// Ports of this package's tests: the in-process Caddy's admin API, and
// the emulator's HTTP port (the demo test also uses the next few). Move
// them with UCWA_EMULATOR_TEST_ADMIN_PORT / UCWA_EMULATOR_TEST_HTTP_PORT.
// The admin port must differ from every other test package that uses
// caddytest, as they may run at the same time.
var (
	adminPort = envPort("UCWA_EMULATOR_TEST_ADMIN_PORT", 2998)
	httpPort  = envPort("UCWA_EMULATOR_TEST_HTTP_PORT", 9480)
)

func envPort(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// startCaddy loads a config (Caddyfile or JSON) into the in-process Caddy.
// In config, ADMIN_PORT and HTTP_PORT stand for the ports.
func startCaddy(t *testing.T, config, adapter string) *caddytest.Tester {
	t.Helper()
	config = strings.NewReplacer("ADMIN_PORT", strconv.Itoa(adminPort), "HTTP_PORT", strconv.Itoa(httpPort)).Replace(config)
	tester := caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{AdminPort: adminPort})
	tester.InitServer(config, adapter)
	// The old servers close their kept-alive connections; a POST sent on
	// one would get EOF, which Go does not retry.
	tester.Client.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
	return tester
}

// emulatorCaddyfile is the emulator as the tests use it: fast steps,
// one destination per outcome, and one that never progresses.
const emulatorCaddyfile = `{
	admin localhost:ADMIN_PORT
	skip_install_trust
}
http://localhost:HTTP_PORT {
	ucwa_pool_emulator {
		step_duration 20ms
		max_poll_timeout 10s
		default_region US
		outcome sip:decline@contoso.com decline
		outcome "+1 425 555 0100" no_answer
		outcome sip:slow@contoso.com answer 1h
	}
}`

// url is the URL of path on the emulator.
func url(path string) string {
	return fmt.Sprintf("http://localhost:%d%s", httpPort, path)
}

type response struct {
	status int
	header http.Header
	body   string
}

// do sends a request and reads the whole response.
func do(t *testing.T, client *http.Client, method, path, contentType, accept, body string) response {
	t.Helper()
	r, err := fetch(client, method, path, contentType, accept, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fetch is do for goroutines other than the test's: it returns the error.
func fetch(client *http.Client, method, path, contentType, accept, body string) (response, error) {
	req, err := http.NewRequest(method, url(path), strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{resp.StatusCode, resp.Header, string(b)}, nil
}

// eventsPage is an event channel answer as a client reads it.
type eventsPage struct {
	Links  map[string]struct{ Href string } `json:"_links"`
	Sender []struct {
		Rel    string
		Href   string
		Events []struct {
			Link   struct{ Rel, Href string }
			Type   string
			Status string
			Reason *struct{ Code, Subcode, Message string }
			// _embedded.phoneAudioInvitation
			Embedded map[string]struct {
				State       string
				OperationID string `json:"operationId"`
			} `json:"_embedded"`
		}
	}
}

// seen is one event as the tests compare it.
type seen struct {
	href, typ, state, status, reason string
}

func (p eventsPage) seen() []seen {
	var out []seen
	for _, s := range p.Sender {
		for _, e := range s.Events {
			ev := seen{href: e.Link.Href, typ: e.Type, state: e.Embedded["phoneAudioInvitation"].State, status: e.Status}
			if e.Reason != nil {
				ev.reason = e.Reason.Code + "/" + e.Reason.Subcode
			}
			out = append(out, ev)
		}
	}
	return out
}

func parseEvents(t *testing.T, r response) eventsPage {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("event channel: %d %s", r.status, r.body)
	}
	var p eventsPage
	if err := json.Unmarshal([]byte(r.body), &p); err != nil {
		t.Fatalf("event channel body %q: %v", r.body, err)
	}
	if p.Links["self"].Href == "" || p.Links["next"].Href == "" {
		t.Fatalf("event channel body without self and next links: %s", r.body)
	}
	return p
}

// followEvents follows an application's event channel at origin (the
// emulator, or an edge in front of it), from its path (…/events) and the
// next links, until an event about invitation completes, and returns the
// events about it.
func followEvents(t *testing.T, client *http.Client, origin, eventsPath, invitation string) []seen {
	t.Helper()
	var got []seen
	next := eventsPath + "?ack=0"
	for range 100 {
		p := parseEvents(t, send(t, client, "GET", origin+next+"&timeout=5", "", ""))
		for _, e := range p.seen() {
			if e.href != invitation {
				continue
			}
			got = append(got, e)
			if e.typ == "completed" {
				return got
			}
		}
		next = p.Links["next"].Href
	}
	t.Fatalf("no completed event for %s; saw %+v", invitation, got)
	return nil
}
