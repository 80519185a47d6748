package testkit

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter
	_ "github.com/caddyserver/caddy/v2/modules/standard"          // reverse_proxy, respond, metrics, ...
)

// portName matches the names that stand for ports in a test's config:
// words in capitals ending in _PORT, such as EDGE_PORT or PRIMARY_PORT.
var portName = regexp.MustCompile(`\b[A-Z][A-Z0-9_]*_PORT\b`)

// adminPortName is the admin endpoint's port, when the test asks for one.
const adminPortName = "ADMIN_PORT"

// Option changes how a Caddy (in-process or child) is run.
type Option func(*settings)

type settings struct {
	admin bool
	// workDir is a child process's working directory.
	workDir string
	// validateOnly leaves servers as the config has them (automatic HTTPS,
	// listeners): a config that is validated is never started.
	validateOnly bool
	// automaticHTTPS leaves automatic HTTPS as the config has it.
	automaticHTTPS bool
}

// WithAdmin turns the admin endpoint on, on a loopback port of its own
// (ADMIN_PORT; see AdminURL), for tests that read /metrics or other admin
// routes.
func WithAdmin() Option {
	return func(s *settings) { s.admin = true }
}

// WithAutomaticHTTPS leaves automatic HTTPS as the config has it instead
// of turning it off, for tests of what Caddy does when it runs (such as
// the config it logs at debug level as "adjusted config"). A config whose
// sites name no host gets no certificate either way.
func WithAutomaticHTTPS() Option {
	return func(s *settings) { s.automaticHTTPS = true }
}

// WithWorkingDirectory runs a Caddy child process in dir, where the
// relative paths of its config resolve (the in-process Caddy resolves
// them in the test's working directory; see testing.T.Chdir).
func WithWorkingDirectory(dir string) Option {
	return func(s *settings) { s.workDir = dir }
}

// endpoints are the ports of one Caddy, by the name that stands for each
// in its config.
type endpoints struct {
	t     testing.TB
	ports map[string]int
}

// Port is the port that name (such as "EDGE_PORT") stands for.
func (e *endpoints) Port(name string) int {
	e.t.Helper()
	p, ok := e.ports[name]
	if !ok {
		e.t.Fatalf("the config names no port %s", name)
	}
	return p
}

// URL is the http URL of the port that name stands for, followed by path.
func (e *endpoints) URL(name, path string) string {
	e.t.Helper()
	return "http://" + Addr(e.Port(name)) + path
}

// AdminURL is the URL of path on the admin endpoint (WithAdmin).
func (e *endpoints) AdminURL(path string) string {
	e.t.Helper()
	return e.URL(adminPortName, path)
}

// awaitHandover waits until every port of the test has one listener at
// most. A config that replaces another on the same port binds its own
// listener beside the old one (SO_REUSEPORT), and Caddy reports the new
// config loaded once the old servers began to shut down, not once their
// listeners are closed: until they are, the kernel hands some new
// connections to the old listener, which drops them when it closes (the
// client reads EOF).
func (e *endpoints) awaitHandover() {
	e.t.Helper()
	ports := slices.Collect(maps.Values(e.ports))
	Eventually(e.t, "the replaced config's listeners to close", func() bool {
		n, err := listeners(ports...)
		if err != nil {
			e.t.Fatalf("counting the listeners of ports %v: %v", ports, err)
		}
		for _, count := range n {
			if count > 1 {
				return false
			}
		}
		return true
	})
}

// substitute replaces every port name in config with its port, reserving
// a port for each name not seen before.
func (e *endpoints) substitute(config string) string {
	return portName.ReplaceAllStringFunc(config, func(name string) string {
		return strconv.Itoa(e.reserve(name))
	})
}

func (e *endpoints) reserve(name string) int {
	p, ok := e.ports[name]
	if !ok {
		p = Port(e.t)
		e.ports[name] = p
	}
	return p
}

// prepare turns a test's config into the JSON Caddy runs: ports filled in
// and adapted, then forced to what tests need, whatever the config says:
//
//   - the admin endpoint off, or on ADMIN_PORT with WithAdmin;
//   - no persisted (autosaved) config, storage in dir;
//   - no automatic HTTPS (unless WithAutomaticHTTPS);
//   - servers on bare ports (":8080") bound to loopback only;
//   - a grace period of 5s for a config being replaced or stopped, so that
//     a request left hanging cannot hold the test's cleanup forever;
//   - the default log, and every log that writes to stdout or stderr,
//     written by the writer module that logWriter configures (such as
//     captureConfig's, or {"output": "stderr"}).
//
// Adapter warnings go to warn.
func (e *endpoints) prepare(adapter, config string, s settings, dir string, logWriter map[string]any, warn func(string)) ([]byte, error) {
	config = e.substitute(config)
	cfgJSON := []byte(config)
	if adapter != "json" {
		a := caddyconfig.GetAdapter(adapter)
		if a == nil {
			return nil, fmt.Errorf("no config adapter %q", adapter)
		}
		var warnings []caddyconfig.Warning
		var err error
		if cfgJSON, warnings, err = a.Adapt(cfgJSON, nil); err != nil {
			return nil, fmt.Errorf("adapting the config: %w", err)
		}
		for _, w := range warnings {
			warn(fmt.Sprintf("adapter warning: %s", w))
		}
	}
	var cfg map[string]any
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return nil, fmt.Errorf("the config is not JSON: %w", err)
	}
	if cfg == nil {
		cfg = map[string]any{}
	}

	admin := map[string]any{"disabled": true}
	if s.admin {
		admin = map[string]any{"listen": Addr(e.reserve(adminPortName))}
	}
	admin["config"] = map[string]any{"persist": false}
	cfg["admin"] = admin
	cfg["storage"] = map[string]any{"module": "file_system", "root": dir}

	if httpApp := object(object(cfg, "apps"), "http"); len(httpApp) > 0 && !s.validateOnly {
		if _, ok := httpApp["grace_period"]; !ok {
			httpApp["grace_period"] = "5s"
		}
		for _, srv := range object(httpApp, "servers") {
			srv, _ := srv.(map[string]any)
			if srv == nil {
				continue
			}
			if !s.automaticHTTPS {
				object(srv, "automatic_https")["disable"] = true
			}
			listen, _ := srv["listen"].([]any)
			for i, addr := range listen {
				if a, ok := addr.(string); ok && strings.HasPrefix(a, ":") {
					listen[i] = "127.0.0.1" + a
				}
			}
		}
	}

	logging := object(cfg, "logging")
	logs := object(logging, "logs")
	if logs["default"] == nil {
		logs["default"] = map[string]any{}
	}
	for _, l := range logs {
		l, _ := l.(map[string]any)
		if l == nil {
			continue
		}
		w, _ := l["writer"].(map[string]any)
		if out, _ := w["output"].(string); w == nil || out == "stdout" || out == "stderr" {
			l["writer"] = logWriter
		}
	}
	logging["sink"] = map[string]any{"writer": logWriter}
	return json.Marshal(cfg)
}

// object returns m[key] as an object, creating it when absent.
func object(m map[string]any, key string) map[string]any {
	o, ok := m[key].(map[string]any)
	if !ok {
		o = map[string]any{}
		m[key] = o
	}
	return o
}

// NewClient returns an HTTP client of the test's own: its own transport,
// so that no kept-alive connection of another test (or of a config that
// was replaced) is ever reused, closed when the test ends. No proxy; a
// request taking more than a minute fails rather than hanging the test.
func NewClient(t testing.TB) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	c := &http.Client{Transport: transport, Timeout: time.Minute}
	t.Cleanup(c.CloseIdleConnections)
	return c
}
