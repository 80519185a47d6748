package caddymodule

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestLimitCommand: `caddy ucwa-limit`, run as a command of its own
// against a real Caddy's admin endpoint, lists the limits, shows a
// refused caller's budget spent and resets it, printing the endpoint's
// answers, after which the caller is delivered again; a limit no handler
// has, a request without key or client address, a list given a limit,
// and an action other than list, show or reset fail with a non-zero exit
// code and say why on stderr.
func TestLimitCommand(t *testing.T) {
	e := startLimitEdge(t, "store memory", "limit calls 1 per 1h")
	alice := caller{"tenant-1", "alice"}.header(t)
	for i, want := range []int{http.StatusCreated, http.StatusTooManyRequests} {
		if got := e.callOp("", alice).Status; got != want {
			t.Fatalf("call %d: %d, want %d", i+1, got, want)
		}
	}
	admin := testkit.Addr(e.Port("ADMIN_PORT"))
	limit := func(args ...string) (stdout, stderr string, code int) {
		t.Helper()
		return testkit.RunCaddyCommand(t, append([]string{"ucwa-limit"}, append(args, "--address", admin)...)...)
	}

	stdout, stderr, code := limit("list")
	if want := `{"limits":[{"name":"calls","count":1,"per":"1h0m0s","key":"{http.ucwa.tenant_caller}","store":"memory","handlers":1}]}` + "\n"; code != 0 || stdout != want {
		t.Fatalf("list: exit %d, %q, stderr %s; want %q", code, stdout, stderr, want)
	}
	stdout, stderr, code = limit("show", "--limit", "calls", "--key", "tenant-1/alice")
	var shown limitShowAnswer
	if code != 0 || json.Unmarshal([]byte(stdout), &shown) != nil || len(shown.Budgets) != 1 || shown.Budgets[0].Remaining != 0 {
		t.Fatalf("show: exit %d, %q, stderr %s", code, stdout, stderr)
	}
	if stdout, stderr, code = limit("reset", "--limit", "calls", "--key", "tenant-1/alice"); code != 0 || stdout != `{"limit":"calls","budgets":1,"reset":1}`+"\n" {
		t.Fatalf("reset: exit %d, %q, stderr %s", code, stdout, stderr)
	}
	if got := e.callOp("", alice).Status; got != http.StatusCreated {
		t.Fatalf("a call after the reset: %d, want 201", got)
	}
	if stdout, stderr, code = limit("show", "--limit", "calls", "--client-ip", "127.0.0.1"); code != 0 || !strings.Contains(stdout, `"remaining":1`) {
		t.Fatalf("show by client address: exit %d, %q, stderr %s", code, stdout, stderr)
	}

	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"show", "--limit", "call", "--key", "tenant-1/alice"}, `HTTP 404`},
		{[]string{"reset", "--limit", "calls"}, `HTTP 400`},
		{[]string{"list", "--limit", "calls"}, `list takes no --limit`},
		{[]string{"peek", "--limit", "calls", "--key", "tenant-1/alice"}, `invalid argument "peek"`},
	} {
		if stdout, stderr, code := limit(tc.args...); code == 0 || stdout != "" || !strings.Contains(stderr, tc.says) {
			t.Errorf("%s: exit %d, %q, stderr %s; want a failure that says %s", strings.Join(tc.args, " "), code, stdout, stderr, strconv.Quote(tc.says))
		}
	}
}
