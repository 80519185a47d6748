package caddymodule

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestBufferedAuditTrailStopAfterReload: a Caddy process whose audit
// trail goes through a buffered writer (flush_interval 1h) is reloaded
// while a guarded request is at the pool, to a config whose trail goes
// to another file, or to a config without the trail; the request is
// answered after the reload, so that its line goes to the old config's
// buffer, which no config loaded any more writes at its unload. A stop
// (SIGTERM) then writes it: the old file holds that line, and the new
// file none.
func TestBufferedAuditTrailStopAfterReload(t *testing.T) {
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	for _, tc := range []struct {
		name string
		// reload changes the running config through the admin API.
		reload func(p *testkit.Process, newFile string) testkit.Request
	}{
		{"another file", func(p *testkit.Process, newFile string) testkit.Request {
			return testkit.Request{Method: http.MethodPatch, URL: p.AdminURL("/config/logging/logs/ucwa_audit/writer/writer/filename"),
				ContentType: "application/json", Body: fmt.Sprintf("%q", newFile)}
		}},
		{"no audit trail", func(p *testkit.Process, _ string) testkit.Request {
			return testkit.Request{Method: http.MethodDelete, URL: p.AdminURL("/config/logging/logs/ucwa_audit")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			oldFile, newFile := filepath.Join(dir, "audit.log"), filepath.Join(dir, "audit-new.log")
			pool := newIdemPool(t, "primary")
			p := testkit.StartCaddyProcess(t, "caddyfile", fmt.Sprintf(`{
	log default {
		exclude http.handlers.ucwa.audit
	}
	log ucwa_audit {
		include http.handlers.ucwa.audit
		output buffered {
			flush_interval 1h
			output file %s
		}
		format json
	}
}
:EDGE_PORT {
	log
	ucwa {
		`+opsJWT+`
		default_region US
		primary %s
	}
}`, oldFile, pool.Addr()), testkit.WithAdmin())
			held := make(chan testkit.Response, 1)
			go func() {
				resp, err := testkit.Do(p.Client(), testkit.Request{URL: p.URL("EDGE_PORT", startOpsPath), ContentType: "application/json",
					Body: `{"to":"+14255551234"}`, Header: http.Header{"Authorization": {callerBearer(t)}, "X-Test-Answer": {"hold"}}})
				if err != nil {
					t.Error(err)
				}
				held <- resp
			}()
			pool.Requests.WaitFor(t, 1, "the request at the pool")

			if resp := testkit.Send(t, p.Client(), tc.reload(p, newFile)); resp.Status != http.StatusOK {
				t.Fatalf("the admin API answered %d (%s), want 200", resp.Status, resp.Body)
			}
			p.AwaitReload()
			pool.Release()
			if resp := <-held; resp.Status != http.StatusCreated {
				t.Fatalf("the request held across the reload: %d %s, want 201", resp.Status, resp.Body)
			}
			// Caddy writes the access log line once the handlers are
			// done, the edge's audit line among them.
			p.WaitLog(t, `"msg":"handled request"`, "startPhoneAudio")
			p.Stop()

			lines := func(file string) []string {
				b, err := os.ReadFile(file)
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				var ls []string
				for l := range strings.Lines(string(b)) {
					ls = append(ls, l)
				}
				return ls
			}
			old := lines(oldFile)
			if len(old) != 1 || !strings.Contains(old[0], `"msg":"guarded request"`) {
				t.Errorf("the old config's file after the stop: %q, want the one line of the request it took in", old)
			}
			if got := lines(newFile); len(got) != 0 {
				t.Errorf("the new file: %q, want no line", got)
			}
		})
	}
}
