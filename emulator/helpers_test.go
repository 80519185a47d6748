package emulator

import (
	"net/http"
	"os"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

const (
	jsonType = "application/json"
	xmlType  = "application/xml"
)

// emulatorCaddyfile is the emulator as the tests use it: fast steps,
// one destination per outcome, one that never progresses, and polls that
// may wait for as long as a test needs.
const emulatorCaddyfile = `:EMULATOR_PORT {
	ucwa_pool_emulator {
		step_duration 20ms
		max_poll_timeout 10m
		default_region US
		outcome sip:decline@contoso.com decline
		outcome "+1 425 555 0100" no_answer
		outcome sip:slow@contoso.com answer 1h
	}
}`

// emulated is an emulator running in the test's in-process Caddy.
type emulated struct {
	*testkit.Caddy
	t testing.TB
}

// startEmulator runs config (an emulator on EMULATOR_PORT) in Caddy.
func startEmulator(t *testing.T, adapter, config string) emulated {
	t.Helper()
	return emulated{testkit.Start(t, adapter, config), t}
}

// origin is the emulator's http://host:port.
func (e emulated) origin() string { return e.URL("EMULATOR_PORT", "") }

// do sends a request to path on the emulator and reads the answer.
func (e emulated) do(method, path, contentType, accept, body string) testkit.Response {
	e.t.Helper()
	return testkit.Send(e.t, e.Client(), testkit.Request{Method: method, URL: e.origin() + path,
		ContentType: contentType, Accept: accept, Body: body})
}

// openEventChannel polls an application's event channel once, briefly,
// as a UCWA client does before it starts a call.
func (e emulated) openEventChannel(app string) {
	e.t.Helper()
	testkit.ParseEvents(e.t, e.do(http.MethodGet, app+"/events?timeout=1ms", "", "", ""))
}

func seedBody(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../ucwa/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
