package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// adaptCaddyfile adapts a Caddyfile to JSON with Caddy's own adapter.
func adaptCaddyfile(t *testing.T, src string) ([]byte, error) {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	cfg, _, err := adapter.Adapt([]byte(src), nil)
	return cfg, err
}

func TestPoolsCaddyfileAdapt(t *testing.T) {
	cfg, err := adaptCaddyfile(t, `:8080 {
	ucwa {
		jwt off
		primary https://fe1.contoso.com:443 https://fe2.contoso.com:443 {
			lb_policy first
			lb_try_duration 2s
			health_uri /health
			health_interval 10s
			fail_duration 30s
			header_up X-Edge ucwa
			transport http {
				tls
				tls_server_name fe.contoso.com
				response_header_timeout 20s
			}
		}
		backup fe1.backup.contoso.com:443 {
			transport http {
				tls
			}
		}
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []json.RawMessage `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfg, &got); err != nil {
		t.Fatal(err)
	}
	handler := string(got.Apps.HTTP.Servers["srv0"].Routes[0].Handle[0])
	for _, want := range []string{
		`"primary":{`, `"backup":{`,
		`{"dial":"fe1.contoso.com:443"},{"dial":"fe2.contoso.com:443"}`,
		`{"dial":"fe1.backup.contoso.com:443"}`,
		`"selection_policy":{"policy":"first"}`, `"try_duration":2000000000`,
		`"active":{"interval":10000000000,"uri":"/health"}`, `"fail_duration":30000000000`,
		`"X-Edge":["ucwa"]`,
		`"response_header_timeout":20000000000`, `"server_name":"fe.contoso.com"`,
	} {
		if !strings.Contains(handler, want) {
			t.Errorf("adapted handler lacks %s:\n%s", want, handler)
		}
	}
}

func TestPoolsConfigErrors(t *testing.T) {
	tests := []struct {
		name, pools, wantErr string
	}{
		{"two primaries", "primary a:1\n\t\tprimary b:1", "only one primary"},
		{"handle_response", "primary a:1 {\n\t\t\thandle_response {\n\t\t\t\trespond 200\n\t\t\t}\n\t\t}", "handle_response is not supported"},
		{"unknown reverse_proxy subdirective", "primary a:1 {\n\t\t\tno_such_thing\n\t\t}", "no_such_thing"},
		{"backup without primary", "backup a:1", "backup pool needs a primary"},
		{"retry_match", "primary a:1 {\n\t\t\tlb_retry_match {\n\t\t\t\tmethod POST\n\t\t\t}\n\t\t}", "retry_match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfgJSON, err := adaptCaddyfile(t, fmt.Sprintf(":8080 {\n\tucwa {\n\t\tjwt off\n\t\t%s\n\t}\n}", tt.pools))
			if err == nil {
				var cfg caddy.Config
				if err = json.Unmarshal(cfgJSON, &cfg); err != nil {
					t.Fatal(err)
				}
				err = caddy.Validate(&cfg)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
			}
		})
	}
}

// TestPoolsJSON loads pools from JSON: two ucwa handlers of one
// configuration share the metrics, and the access log shows ucwa_pool.
func TestPoolsJSON(t *testing.T) {
	backup := newPoolServer(t, "backup", answerCreated)
	down := closedAddr(t)
	logFile := filepath.Join(t.TempDir(), "access.log")
	ucwaHandler := func(pools string) string {
		return `{"handler":"ucwa","jwt":{"off":true},"default_region":"US",` + pools + `}`
	}
	config := fmt.Sprintf(`{
	"admin": {"listen": "localhost:ADMIN_PORT"},
	"logging": {"logs": {"access": {
		"writer": {"output": "file", "filename": %q},
		"encoder": {"format": "json"},
		"include": ["http.log.access.edge"]
	}}},
	"apps": {"http": {"servers": {"edge": {
		"listen": [":EDGE_PORT"],
		"logs": {"default_logger_name": "edge"},
		"routes": [
			{"match": [{"path": ["/solo/*"]}], "handle": [%s]},
			{"handle": [%s]}
		]
	}}}}
}`, logFile,
		ucwaHandler(`"primary":{"upstreams":[{"dial":"`+down+`"}]}`),
		ucwaHandler(`"primary":{"upstreams":[{"dial":"`+down+`"}]},"backup":{"upstreams":[{"dial":"`+backup.addr+`"}]}`))
	tester := startCaddy(t, config, "json")

	resp, body := send(t, tester.Client, "POST", edgeURL("/solo/ucwa/v1/applications/1/communication/startPhoneAudio"),
		"application/json", "", `{"to":"4255551234"}`, nil)
	if resp.StatusCode != http.StatusGone {
		t.Fatalf("solo handler: %d %s, want 410", resp.StatusCode, body)
	}
	resp, body = startPhoneAudio(t, tester.Client, "op-json")
	if resp.StatusCode != http.StatusCreated || len(backup.received()) != 1 {
		t.Fatalf("with backup: %d %s, backup received %d", resp.StatusCode, body, len(backup.received()))
	}
	metrics := adminMetrics(t)
	for _, line := range []string{
		`caddy_ucwa_pool_requests_total{outcome="unavailable",pool="primary"} 2`,
		`caddy_ucwa_pool_failovers_total 1`,
		`caddy_ucwa_cannot_redirect_total 1`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}

	// The access log is written after the answer went out: wait for it.
	var pools []string
	for deadline := time.Now().Add(5 * time.Second); len(pools) < 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		pools = pools[:0]
		b, _ := os.ReadFile(logFile)
		for line := range strings.Lines(string(b)) {
			var entry struct {
				Pool *string `json:"ucwa_pool"`
			}
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Pool != nil {
				pools = append(pools, *entry.Pool)
			}
		}
	}
	if strings.Join(pools, ",") != ",backup" {
		t.Errorf("access log ucwa_pool fields %q, want \"\" then \"backup\"", pools)
	}
}

// TestPoolUnhealthyByActiveHealthCheck: a primary that its active health
// check marks down receives nothing; the backup takes the request.
func TestPoolUnhealthyByActiveHealthCheck(t *testing.T) {
	for _, adapter := range []string{"caddyfile", "json"} {
		t.Run(adapter, func(t *testing.T) {
			primary := newPoolServer(t, "primary", answerCreated)
			primary.healthy.Store(false)
			backup := newPoolServer(t, "backup", answerCreated)
			config := poolsCaddyfile(fmt.Sprintf(`		primary %s {
			health_uri /health
			health_interval 50ms
		}
		backup %s`, primary.addr, backup.addr))
			if adapter == "json" {
				config = fmt.Sprintf(`{
	"admin": {"listen": "localhost:ADMIN_PORT"},
	"apps": {"http": {"servers": {"edge": {"listen": [":EDGE_PORT"], "routes": [{"handle": [{
		"handler": "ucwa", "jwt": {"off": true}, "default_region": "US",
		"primary": {"upstreams": [{"dial": %q}],
			"health_checks": {"active": {"uri": "/health", "interval": "50ms"}}},
		"backup": {"upstreams": [{"dial": %q}]}
	}]}]}}}}
}`, primary.addr, backup.addr)
			}
			tester := startCaddy(t, config, adapter)
			// The first check marks the primary down as soon as its
			// answer arrives; a second hit means the first was processed.
			for deadline := time.Now().Add(10 * time.Second); primary.health.Load() < 2; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the active health check never ran twice")
				}
			}
			resp, body := startPhoneAudio(t, tester.Client, "op-health")
			if resp.StatusCode != http.StatusCreated || len(primary.received()) != 0 || len(backup.received()) != 1 {
				t.Fatalf("%d %s; primary received %d, backup %d, want 0 and 1",
					resp.StatusCode, body, len(primary.received()), len(backup.received()))
			}
		})
	}
}
