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

// TestAuditWriteErrorsCounted: an audit line that a log of the trail
// fails to write (/dev/full, a real device whose every write fails with
// ENOSPC, as a full disk's) is counted in
// caddy_ucwa_audit_write_errors_total, once per line, whichever of the
// trail's logs refused it, and logged as an error at the first (then
// once a minute at most) with the lines and the error; the request is
// answered all the same.
func TestAuditWriteErrorsCounted(t *testing.T) {
	const requests = 3
	for _, tc := range []struct {
		name string
		// outputs are the files of the logs that take the trail;
		// "FILE" is one in the test's directory.
		outputs []string
		// wantErrors is the counter's value after the requests, and
		// wantLines the lines FILE holds.
		wantErrors, wantLines int
	}{
		{"a log that takes every line", []string{"FILE"}, 0, requests},
		{"a log on a full disk", []string{"/dev/full"}, requests, 0},
		{"two logs, one on a full disk", []string{"FILE", "/dev/full"}, requests, requests},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
			file := filepath.Join(t.TempDir(), "audit.log")
			var logs strings.Builder
			for i, output := range tc.outputs {
				if output == "FILE" {
					output = file
				}
				// roll_disabled: Caddy opens the file as it is, and
				// never renames or rolls it.
				fmt.Fprintf(&logs, "\tlog ucwa_audit_%d {\n\t\tinclude http.handlers.ucwa.audit\n\t\toutput file %s {\n\t\t\troll_disabled\n\t\t}\n\t\tformat json\n\t}\n", i, output)
			}
			pool := testkit.NewUpstream(t)
			e := startEdge(t, "caddyfile", fmt.Sprintf(`{
	log default {
		exclude http.handlers.ucwa.audit
	}
%s}
:EDGE_PORT {
	ucwa {
		`+opsJWT+`
		default_region US
		primary %s
	}
}`, logs.String(), pool.Addr()), testkit.WithAdmin())
			auth := http.Header{"Authorization": {callerBearer(t)}}
			for i := range requests {
				if resp := e.call(idemCall{header: auth, op: fmt.Sprintf("op-%d", i)}); resp.Status != http.StatusCreated {
					t.Fatalf("request %d: %d %s, want 201", i, resp.Status, resp.Body)
				}
			}
			// A line is written once its request is answered, which its
			// client may see first: wait for the lines and their errors.
			fileLines := func() int {
				data, err := os.ReadFile(file)
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				return strings.Count(string(data), `"msg":"`+auditMessage+`"`)
			}
			testkit.Eventually(t, "every audit line written or refused", func() bool {
				return fileLines() >= tc.wantLines && e.Metric("caddy_ucwa_audit_write_errors_total") >= float64(tc.wantErrors)
			})
			if got := e.Metric("caddy_ucwa_audit_write_errors_total"); got != float64(tc.wantErrors) {
				t.Errorf("caddy_ucwa_audit_write_errors_total = %v, want %d", got, tc.wantErrors)
			}
			if got := fileLines(); got != tc.wantLines {
				t.Errorf("%s holds %d audit lines, want %d", file, got, tc.wantLines)
			}
			if tc.wantErrors > 0 {
				e.Logs().Wait(t, `"msg":"`+auditWriteErrorOpen)
			}
			lines := e.Logs().Lines(`"msg":"` + auditWriteErrorOpen)
			switch {
			case tc.wantErrors == 0 && len(lines) != 0:
				t.Errorf("logged %q, want nothing", lines)
			case tc.wantErrors > 0 && len(lines) != 1:
				t.Errorf("logged %d errors of lines not written, want 1 (once a minute at most): %q", len(lines), lines)
			case tc.wantErrors > 0:
				for _, want := range []string{`"level":"error"`, `"logger":"http.handlers.ucwa"`, `"lines":1`, `"error":"write /dev/full: no space left on device"`} {
					if !strings.Contains(lines[0], want) {
						t.Errorf("the error line lacks %s: %s", want, lines[0])
					}
				}
			}
		})
	}
}
