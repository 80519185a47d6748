package testkit

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// Validate adapts (unless adapter is "json") and validates config as
// `caddy validate` does, in-process: every module is provisioned (keys
// loaded, pools set up) and cleaned up again, and nothing is served.
// Admin and storage are forced as for Start, and Caddy's logs go to the
// test's Logs; the servers stay as the config has them.
func Validate(t testing.TB, adapter, config string) error {
	t.Helper()
	claim(t, "Validate would replace its logs")
	defer release()

	dir := t.TempDir()
	logs := newLogs(t, filepath.Join(dir, "caddy.log"))
	run := newRun()
	captureTo(run, logs)
	bufferOnce.Do(func() { caddy.BufferedLog() })
	e := &endpoints{t: t, ports: map[string]int{}}
	cfgJSON, err := e.prepare(adapter, config, settings{validateOnly: true}, dir, captureConfig(run), func(msg string) { _, _ = logs.Write([]byte(msg + "\n")) })
	if err != nil {
		return err
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}
