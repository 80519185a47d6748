package caddymodule

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestExamplesHardened: in the demo Caddyfile, every example config and
// every ```caddyfile block of the README, each server that runs the edge
// bounds how long a client may take to send its headers and its request
// (read_header, read_body), and has an access log whose request URIs and
// callers (user_id) go through the ucwa_numbers filter. In the demo
// Caddyfile and the example configs, which operators copy whole, every
// edge also guards the trunks: a destination policy that allows only some
// regions, and a limit; the example configs filter Caddy's default log
// too.
func TestExamplesHardened(t *testing.T) {
	t.Chdir("..")
	configs := map[string]string{"Caddyfile": readRepoFile(t, "Caddyfile")}
	examples, err := filepath.Glob("examples/*/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range examples {
		configs[name] = readRepoFile(t, name)
	}
	blocks := regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindAllStringSubmatch(readRepoFile(t, "README.md"), -1)
	for i, block := range blocks {
		configs["README.md block "+strconv.Itoa(i+1)] = block[1]
	}
	if len(configs) < 5 {
		t.Fatalf("found only %d configs", len(configs))
	}
	for name, config := range configs {
		t.Run(name, func(t *testing.T) {
			adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(config), nil)
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				Logging struct {
					Logs map[string]struct {
						Encoder struct {
							Format string                     `json:"format"`
							Fields map[string]json.RawMessage `json:"fields"`
						} `json:"encoder"`
					} `json:"logs"`
				} `json:"logging"`
				Apps struct {
					HTTP struct {
						Servers map[string]json.RawMessage `json:"servers"`
					} `json:"http"`
				} `json:"apps"`
			}
			if err := json.Unmarshal(adapted, &cfg); err != nil {
				t.Fatal(err)
			}
			edges := 0
			for srvName, raw := range cfg.Apps.HTTP.Servers {
				if !strings.Contains(string(raw), `"handler":"ucwa"`) {
					continue
				}
				edges++
				var srv struct {
					ReadTimeout       int64 `json:"read_timeout"`
					ReadHeaderTimeout int64 `json:"read_header_timeout"`
					Logs              *struct {
						DefaultLoggerName string              `json:"default_logger_name"`
						LoggerNames       map[string][]string `json:"logger_names"`
					} `json:"logs"`
				}
				if err := json.Unmarshal(raw, &srv); err != nil {
					t.Fatal(err)
				}
				if srv.ReadTimeout <= 0 || srv.ReadHeaderTimeout <= 0 {
					t.Errorf("server %s: no read_body or read_header timeout", srvName)
				}
				if srv.Logs == nil {
					t.Errorf("server %s: no access log", srvName)
					continue
				}
				// The access logs of the server: for requests to a host
				// of its sites, and for any other.
				logNames := []string{srv.Logs.DefaultLoggerName}
				for _, names := range srv.Logs.LoggerNames {
					logNames = append(logNames, names...)
				}
				for _, logName := range logNames {
					if logName == "" {
						continue
					}
					enc := cfg.Logging.Logs[logName].Encoder
					for _, field := range []string{"request>uri", "user_id"} {
						if enc.Format != "filter" || !strings.Contains(string(enc.Fields[field]), `"filter":"ucwa_numbers"`) {
							t.Errorf("server %s: its access log %s does not filter %s with ucwa_numbers: %+v", srvName, logName, field, enc)
						}
					}
				}
				if len(logNames) == 1 && logNames[0] == "" {
					t.Errorf("server %s: no access log", srvName)
				}
			}
			if edges == 0 {
				t.Error("no server runs the edge")
			}
			if strings.HasPrefix(name, "README.md") {
				return
			}
			// Caddy's default log records requests too (a handler's
			// errors, with the whole request), whatever a site's log.
			if enc := cfg.Logging.Logs["default"].Encoder; strings.HasPrefix(name, "examples/") &&
				(enc.Format != "filter" || !strings.Contains(string(enc.Fields["request>uri"]), `"filter":"ucwa_numbers"`)) {
				t.Errorf("the default log does not filter request>uri with ucwa_numbers: %+v", enc)
			}
			for i, h := range ucwaHandlers(t, adapted) {
				if h.Destinations == nil || len(h.Destinations.AllowRegions) == 0 {
					t.Errorf("edge %d: no destination policy with allow_regions", i+1)
				}
				if len(h.Limits) == 0 {
					t.Errorf("edge %d: no limit", i+1)
				}
			}
		})
	}
}

// ucwaHandlers returns every ucwa handler of an adapted config, wherever
// its routes nest it.
func ucwaHandlers(t *testing.T, adapted []byte) []Handler {
	t.Helper()
	var found []Handler
	for _, raw := range ucwaHandlerJSON(t, adapted) {
		var h Handler
		if err := json.Unmarshal(raw, &h); err != nil {
			t.Fatal(err)
		}
		found = append(found, h)
	}
	if len(found) == 0 {
		t.Fatal("no ucwa handler in the config")
	}
	return found
}

// ucwaHandlerJSON returns the JSON of every ucwa handler of an adapted
// config, wherever its routes nest it, without its "handler" key.
func ucwaHandlerJSON(t testing.TB, adapted []byte) []json.RawMessage {
	t.Helper()
	var doc any
	if err := json.Unmarshal(adapted, &doc); err != nil {
		t.Fatal(err)
	}
	var found []json.RawMessage
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["handler"] == "ucwa" {
				delete(v, "handler")
				raw, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				found = append(found, raw)
				return
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	return found
}
