package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// fixedForwardProxy is a network_proxy for the tests (the url one that
// forward_proxy_url loads is in Caddy's standard modules, which the test
// binary leaves out): every request goes through the proxy at URL, as
// forward_proxy_url sends it.
type fixedForwardProxy struct {
	URL string `json:"url"`
}

func init() { caddy.RegisterModule(fixedForwardProxy{}) }

func (fixedForwardProxy) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "caddy.network_proxy.ucwa_test_fixed", New: func() caddy.Module { return new(fixedForwardProxy) }}
}

func (p *fixedForwardProxy) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module's name
	if !d.NextArg() {
		return d.ArgErr()
	}
	p.URL = d.Val()
	return nil
}

func (p fixedForwardProxy) ProxyFunc() func(*http.Request) (*url.URL, error) {
	u, err := url.Parse(p.URL)
	return func(*http.Request) (*url.URL, error) { return u, err }
}

// TestPoolThroughForwardProxy: a pool reached through a forward proxy
// (forward_proxy_url or network_proxy, which makes the transport's Proxy hook name a
// proxy) still has the attempt's trace hooks on each round trip: a
// request the proxy read and then reset may have reached the pool, so it
// is answered 502 and not sent to the backup; a proxy that is down was
// never reached, and the backup takes the request. The primary's own
// listener serves as the proxy (net/http's server takes the absolute
// form a forward proxy is sent).
func TestPoolThroughForwardProxy(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		primary                 testkit.Answer
		proxyDown               bool
		wantStatus              int
		wantPrimary, wantBackup int
	}{
		{name: "answered", primary: testkit.AnswerCreated, wantStatus: http.StatusCreated, wantPrimary: 1},
		{name: "reset after reading the request", primary: testkit.AnswerReset, wantStatus: http.StatusBadGateway, wantPrimary: 1},
		{name: "proxy down", primary: testkit.AnswerCreated, proxyDown: true, wantStatus: http.StatusCreated, wantBackup: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary := testkit.NewPool(t, "primary", tc.primary)
			backup := testkit.NewPool(t, "backup", testkit.AnswerCreated)
			proxy := "http://" + primary.Addr()
			if tc.proxyDown {
				proxy = "http://" + testkit.DownAddr(t)
			}
			pools := fmt.Sprintf("\t\tprimary %s {\n\t\t\ttransport http {\n\t\t\t\tnetwork_proxy ucwa_test_fixed %s\n\t\t\t}\n\t\t}\n\t\tbackup %s\n",
				primary.URL(), proxy, backup.URL())
			e := startEdge(t, "caddyfile", poolsCaddyfile(pools))
			resp := e.startPhoneAudio("op-proxy")
			if resp.Status != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.Status, tc.wantStatus, resp.Body)
			}
			if got := len(primary.Received()); got != tc.wantPrimary {
				t.Errorf("primary (the proxy) received %d requests, want %d", got, tc.wantPrimary)
			}
			if got := len(backup.Received()); got != tc.wantBackup {
				t.Errorf("backup received %d requests, want %d", got, tc.wantBackup)
			}
		})
	}
}
