package testkit

import (
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// Caddy is the in-process Caddy of one test. Start loads its config with
// caddy.Load, which returns once the config runs: its listeners are bound
// and its handlers provisioned, so requests may follow at once.
type Caddy struct {
	endpoints
	settings settings
	run      string // its configs' writer module's run (captureConfig)
	dir      string
	client   *http.Client
	logs     *Logs
}

// running is the test that runs the in-process Caddy, if any.
var running struct {
	mu    sync.Mutex
	owner testing.TB
}

// claim makes t the test that runs the in-process Caddy, or fails it
// (saying why not) while another test does.
func claim(t testing.TB, why string) {
	t.Helper()
	running.mu.Lock()
	defer running.mu.Unlock()
	if running.owner != nil {
		t.Fatalf("the in-process Caddy runs for %s: %s", running.owner.Name(), why)
	}
	running.owner = t
}

// release ends the claim of the running test, whose logs are no longer
// captured.
func release() {
	captureTo("", nil)
	running.mu.Lock()
	defer running.mu.Unlock()
	running.owner = nil
}

// bufferOnce holds Caddy's default log in memory until the first config
// sets the test's log up, so that not even Caddy's first lines reach
// stderr.
var bufferOnce sync.Once

// Start runs config (adapter "caddyfile" or "json") in the in-process
// Caddy for the rest of the test, and stops it when the test ends. Every
// word of config in capitals ending in _PORT (EDGE_PORT, POOL_PORT, ...)
// stands for a loopback port reserved for the test (Port); servers
// listening on a bare port listen on loopback only. See prepare for what
// else is forced. Caddy's logs go to the test's Logs.
func Start(t testing.TB, adapter, config string, options ...Option) *Caddy {
	t.Helper()
	claim(t, "tests that start it cannot run in parallel, and a test starts it once (Load changes its config)")

	c := &Caddy{endpoints: endpoints{t: t, ports: map[string]int{}}, run: newRun(), dir: t.TempDir()}
	for _, o := range options {
		o(&c.settings)
	}
	c.logs = newLogs(t, filepath.Join(c.dir, "caddy.log"))
	captureTo(c.run, c.logs)
	bufferOnce.Do(func() { caddy.BufferedLog() })
	c.client = NewClient(t)
	t.Cleanup(c.stop)
	// Its ports are reserved for it (see Port), which no listener shares:
	// there is no replaced config whose listeners to wait for (see Load).
	if err := c.load(adapter, config); err != nil {
		t.Fatalf("loading the config: %v", err)
	}
	return c
}

// Load replaces the running config with config, keeping the ports: a
// port name stands for the same port as before. Once it returns the new
// config runs and the old one's listeners are closed; the client's
// kept-alive connections, which the old servers close, are dropped.
func (c *Caddy) Load(adapter, config string) {
	c.t.Helper()
	if err := c.load(adapter, config); err != nil {
		c.t.Fatalf("loading the config: %v", err)
	}
	c.awaitHandover()
	c.client.CloseIdleConnections()
}

// LoadRefused loads config, which Caddy is to refuse, and returns its
// error; the running config goes on. A config that loads fails the test.
func (c *Caddy) LoadRefused(adapter, config string) error {
	c.t.Helper()
	err := c.load(adapter, config)
	if err == nil {
		c.t.Fatal("the config loaded; want it refused")
	}
	return err
}

// load loads config into Caddy, with new ports should one still be in
// use (a reserved port cannot be taken by anyone else).
func (c *Caddy) load(adapter, config string) error {
	for attempt := 1; ; attempt++ {
		cfg, err := c.prepare(adapter, config, c.settings, c.dir, captureConfig(c.run), c.warn)
		if err != nil {
			return err
		}
		err = caddy.Load(cfg, true)
		if err == nil || !isAddrInUse(err) || attempt == 3 {
			return err
		}
		c.ports = map[string]int{}
	}
}

func (c *Caddy) warn(msg string) {
	_, _ = io.WriteString(c.logs, msg+"\n")
}

// stop stops the running config and its admin endpoint, and lets the
// next test start Caddy.
func (c *Caddy) stop() {
	cfg, err := (&endpoints{t: c.t, ports: map[string]int{}}).prepare("json", "{}", settings{}, c.dir, captureConfig(c.run), c.warn)
	if err == nil {
		err = caddy.Load(cfg, true)
	}
	if err != nil {
		c.t.Errorf("stopping Caddy: %v", err)
	}
	_ = caddy.Stop()
	c.client.CloseIdleConnections()
	release()
}

// Client is the test's HTTP client (see NewClient).
func (c *Caddy) Client() *http.Client { return c.client }

// Logs is what Caddy logged during the test.
func (c *Caddy) Logs() *Logs { return c.logs }

// Metrics is the admin endpoint's /metrics text (WithAdmin).
func (c *Caddy) Metrics() string {
	c.t.Helper()
	resp := Send(c.t, c.client, Request{URL: c.AdminURL("/metrics")})
	if resp.Status != http.StatusOK {
		c.t.Fatalf("/metrics: %d %s", resp.Status, resp.Body)
	}
	return resp.Body
}

// Metric is the value of one sample of /metrics (see MetricValue).
func (c *Caddy) Metric(sample string) float64 {
	c.t.Helper()
	return MetricValue(c.t, c.Metrics(), sample)
}

// isAddrInUse reports whether err says a listener could not bind. Caddy
// wraps the listen error with %v at places, so the text counts too.
func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}
