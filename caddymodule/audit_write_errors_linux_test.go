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
// trail's logs refused it; the request is answered all the same.
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
			if got := e.Metric("caddy_ucwa_audit_write_errors_total"); got != float64(tc.wantErrors) {
				t.Errorf("caddy_ucwa_audit_write_errors_total = %v, want %d", got, tc.wantErrors)
			}
			data, err := os.ReadFile(file)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if got := strings.Count(string(data), `"msg":"`+auditMessage+`"`); got != tc.wantLines {
				t.Errorf("%s holds %d audit lines, want %d", file, got, tc.wantLines)
			}
		})
	}
}
