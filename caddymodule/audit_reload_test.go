package caddymodule

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// auditReloadCaddyfile is the README's audit trail in a file of its own,
// written to file with the file output's settings output, in front of
// pool.
func auditReloadCaddyfile(file, output string, pool *testkit.Pool) string {
	return fmt.Sprintf(`{
	log default {
		exclude http.handlers.ucwa.audit
	}
	log ucwa_audit {
		include http.handlers.ucwa.audit
		output file %s {
			%s
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
}`, file, output, pool.Addr())
}

// heldApplication is the application of the requests the pool of
// TestAuditAcrossReloads holds until the test lets them go.
const heldApplication = "held"

// TestAuditAcrossReloads: with the audit trail in a file of its own,
// reloaded with the same file, its roll settings changed, another file,
// a plain (unrolled) file, every guarded request gets exactly one line:
// those at the pool while the reload cleans their config up (in the
// file of the config that took them in, through its writer, which must
// still be open), those sent on and off while Caddy reloads, and those
// after (in the new config's file). A line written to a closed writer
// would be lost, one written twice counted twice.
func TestAuditAcrossReloads(t *testing.T) {
	for _, tc := range []struct {
		name string
		// The file output's settings before and after the reload.
		before, after string
		// Whether the new config writes to another file.
		anotherFile bool
	}{
		{"the same file and settings", "roll_size 100MiB", "roll_size 100MiB", false},
		{"the same file, roll settings changed", "roll_size 100MiB\n\t\t\troll_keep 30", "roll_size 50MiB\n\t\t\troll_keep 3\n\t\t\troll_compression zstd", false},
		{"the same file, no longer rolled", "roll_size 100MiB", "roll_disabled", false},
		{"another file", "roll_size 100MiB", "roll_size 100MiB", true},
		{"another file, neither rolled", "roll_disabled", "roll_disabled", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
			dir := t.TempDir()
			oldFile, newFile := filepath.Join(dir, "audit.log"), filepath.Join(dir, "audit.log")
			if tc.anotherFile {
				newFile = filepath.Join(dir, "audit-new.log")
			}
			release, held := make(chan struct{}), make(chan struct{}, 3)
			releaseOnce := sync.OnceFunc(func() { close(release) })
			t.Cleanup(releaseOnce)
			pool := testkit.NewPool(t, "primary", func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.Path, "/applications/"+heldApplication+"/") {
					held <- struct{}{}
					select {
					case <-release:
					case <-r.Context().Done(): // the test failed and ends
						return
					}
				}
				testkit.AnswerCreated(p, w, r)
			})
			e := startEdge(t, "caddyfile", auditReloadCaddyfile(oldFile, tc.before, pool))
			auth := http.Header{"Authorization": {callerBearer(t)}}

			// Requests sent one after another, on and off through the
			// reload: answered is the operationIds answered 201, and
			// answeredCount counts the answers, failed the operationIds
			// without answer (a kept-alive connection the old server
			// closes). They stop once the test says so, or ends.
			var (
				mu            sync.Mutex
				answered      = map[string]bool{}
				failed        = map[string]bool{}
				answeredCount testkit.Counter
				stopCh        = make(chan struct{})
				stop          = sync.OnceFunc(func() { close(stopCh) })
				stopped       = make(chan struct{})
			)
			t.Cleanup(func() { stop(); <-stopped })
			go func() {
				defer close(stopped)
				for i := 0; ; i++ {
					select {
					case <-stopCh:
						return
					default:
					}
					op := fmt.Sprintf("during-%d", i)
					resp, err := testkit.Do(e.Client(), e.request(idemCall{header: auth, op: op}))
					mu.Lock()
					if err != nil {
						failed[op] = true
					} else if resp.Status == http.StatusCreated {
						answered[op] = true
					} else {
						t.Errorf("%s: %d %s", op, resp.Status, resp.Body)
					}
					mu.Unlock()
					if err == nil {
						answeredCount.Add()
					}
				}
			}()
			answeredCount.WaitFor(t, 1, "a request answered before the reload")

			var answers []<-chan testkit.Response
			for i := range cap(held) {
				answers = append(answers, e.sendHeld(t, idemCall{header: auth, app: heldApplication, op: fmt.Sprintf("held-%d", i)}))
			}
			for range cap(held) {
				<-held
			}
			e.Load("caddyfile", auditReloadCaddyfile(newFile, tc.after, pool))
			answeredCount.WaitFor(t, answeredCount.Load()+1, "a request answered after the reload")
			stop()
			<-stopped
			releaseOnce()
			for i, a := range answers {
				if resp := <-a; resp.Status != http.StatusCreated {
					t.Fatalf("held-%d: %d %s, want the pool's 201", i, resp.Status, resp.Body)
				}
			}
			if resp := e.send(idemCall{header: auth, op: "after"}.request()); resp.Status != http.StatusCreated {
				t.Fatalf("after the reload: %d %s", resp.Status, resp.Body)
			}

			want := map[string]string{"after": newFile} // operationId: its file, "" either
			for i := range cap(held) {
				want[fmt.Sprintf("held-%d", i)] = oldFile
			}
			for op := range answered {
				want[op] = ""
			}
			readLines := func(file string) map[string]int {
				b, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				lines := map[string]int{}
				for _, l := range auditLines(t, string(b)) {
					lines[l.OperationID]++
					if _, ok := want[l.OperationID]; ok && (l.Status != http.StatusCreated || l.Caller.Sub != callerSub || l.Pool != "primary" || len(l.Destinations) != 1) {
						t.Errorf("%s: audit line %+v, want the pool's 201 to the caller's call", l.OperationID, l)
					}
				}
				return lines
			}
			// The access log's line of a request (in Caddy's log) is
			// written once the handler, and its audit line, is done.
			testkit.Eventually(t, "the access log lines of the answered requests", func() bool {
				return len(e.Logs().Lines(`"msg":"handled request"`)) >= len(want)
			})
			oldLines, newLines := readLines(oldFile), readLines(newFile)
			if !tc.anotherFile {
				newLines = map[string]int{}
			}
			for op, file := range want {
				inOld, inNew := oldLines[op], newLines[op]
				switch {
				case inOld+inNew != 1:
					t.Errorf("%s: %d audit lines, want 1", op, inOld+inNew)
				case file == oldFile && inOld != 1:
					t.Errorf("%s: its line is not in the file of the config that took it in", op)
				case file == newFile && tc.anotherFile && inNew != 1:
					t.Errorf("%s: its line is not in the new config's file", op)
				}
			}
			for _, lines := range []map[string]int{oldLines, newLines} {
				for op, n := range lines {
					if _, ok := want[op]; !ok && (!failed[op] || n > 1 || oldLines[op]+newLines[op] > 1) {
						t.Errorf("%s: %d audit lines of a request without answer, want at most 1", op, oldLines[op]+newLines[op])
					}
				}
			}
		})
	}
}
