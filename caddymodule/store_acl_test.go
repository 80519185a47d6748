package caddymodule

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// readmeRedisCommands are the commands the README says the edge's Redis
// user needs (its words in backquotes and capitals, from "The edge's
// Redis user needs" up to cluster's CLUSTER SLOTS), in lower case.
func readmeRedisCommands(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, para, found := strings.Cut(string(readme), "The edge's Redis user needs")
	para, _, cut := strings.Cut(para, "`CLUSTER SLOTS`")
	if !found || !cut {
		t.Fatal("the README says nothing of the commands the edge's Redis user needs")
	}
	var commands []string
	for _, m := range regexp.MustCompile("`([A-Z]+)`").FindAllStringSubmatch(para, -1) {
		commands = append(commands, strings.ToLower(m[1]))
	}
	return commands
}

// TestRedisACLOfReadme: an edge whose Redis user may run the commands
// the README lists, on the keys it says the edge writes, and nothing
// else, does all it does with a Redis store: its startup check passes
// and it reads Redis's durability; with max_entries_per_caller, a
// request is reserved and its repeat replayed, a request that reached
// no pool (410, its pool down) releases its key and gives its limit's
// event back, so that it is delivered when sent again, and a caller
// over its share gets 429; a limit takes and refuses, and the admin
// endpoint shows its budget and makes it whole again. Nothing is taken for an outage.
func TestRedisACLOfReadme(t *testing.T) {
	commands := readmeRedisCommands(t)
	srv := testkit.StartRedis(t)
	acl := []any{"ACL", "SETUSER", "edge", "on", ">edge-pw", "resetkeys", "~ucwa:*", "~rate:ucwa:*", "resetchannels", "-@all"}
	for _, c := range commands {
		acl = append(acl, "+"+c)
	}
	if err := testkit.RedisClients(t, srv)[0].Do(context.Background(), acl...).Err(); err != nil {
		t.Fatalf("%v: %v", acl, err)
	}
	u, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	// Another db than 0, which go-redis selects on each connection.
	u.User, u.Path = url.UserPassword("edge", "edge-pw"), "/1"
	pool := newIdemPool(t, "primary")
	e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t),
		"store redis "+u.String()+" {\n\t\t\ttimeout 5s\n\t\t\tmax_entries_per_caller 2\n\t\t}",
		"limit calls 3 per 1h", "primary "+pool.Addr()), testkit.WithAdmin())
	e.Logs().Wait(t, `"msg":"redis answers"`)
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")

	first := idemCall{header: caller, op: "acl-first"}
	answer := e.call(first)
	if answer.Status != http.StatusCreated {
		t.Fatalf("a request: %d %s", answer.Status, answer.Body)
	}
	assertReplay(t, e.call(first), answer)
	e.Logs().Wait(t, `"msg":"redis does not evict the edge's keys"`)

	pool.Kill()
	noPool := idemCall{header: caller, op: "acl-no-pool"}
	if resp := e.call(noPool); resp.Status != http.StatusGone {
		t.Fatalf("a request with its pool down: %d %s, want 410", resp.Status, resp.Body)
	}
	pool.Restart(t)
	if resp := e.call(noPool); resp.Status != http.StatusCreated || deliveries(pool.Pool, noPool.op) != 1 {
		t.Fatalf("the request that reached no pool, sent again: %d %s, delivered %d times; want 201, once",
			resp.Status, resp.Body, deliveries(pool.Pool, noPool.op))
	}
	resp := e.call(idemCall{header: caller, op: "acl-over-share"})
	if resp.Status != http.StatusTooManyRequests || ucwaError(t, resp.Body).Message != errCallerShareFull.Message {
		t.Fatalf("a third reservation of a caller with a share of 2: %d %s, want 429 for its share", resp.Status, resp.Body)
	}

	// The limit took two events (the request that reached no pool gave
	// its first back): one more fits, the next is refused.
	spend := idemCall{header: caller, body: `{"to":"4255551234"}`}
	if resp := e.call(spend); resp.Status != http.StatusCreated {
		t.Fatalf("the limit's third call: %d %s", resp.Status, resp.Body)
	}
	if resp := e.call(spend); resp.Status != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the limit's fourth call: %d %s, want 429 with Retry-After", resp.Status, resp.Body)
	}
	// An administrator reads the caller's budget, and makes it whole again.
	show := testkit.Send(t, e.Client(), testkit.Request{Method: http.MethodPost, URL: e.AdminURL("/ucwa/limits/show"),
		ContentType: "application/json", Body: `{"limit":"calls","key":"tenant-1/oid-a"}`})
	if show.Status != http.StatusOK || !strings.Contains(show.Body, `"remaining":0`) {
		t.Fatalf("the show of the caller's budget: %d %s", show.Status, show.Body)
	}
	reset := testkit.Send(t, e.Client(), testkit.Request{Method: http.MethodPost, URL: e.AdminURL("/ucwa/limits/reset"),
		ContentType: "application/json", Body: `{"limit":"calls","key":"tenant-1/oid-a"}`})
	if reset.Status != http.StatusOK || !strings.Contains(reset.Body, `"reset":1`) {
		t.Fatalf("the reset of the caller's budget: %d %s", reset.Status, reset.Body)
	}
	if resp := e.call(spend); resp.Status != http.StatusCreated {
		t.Fatalf("a call after the reset: %d %s", resp.Status, resp.Body)
	}

	for _, warning := range []string{"store failing", "could not read", "did not answer"} {
		if lines := e.Logs().Lines(warning); len(lines) > 0 {
			t.Errorf("the edge warned %q:\n%s", warning, strings.Join(lines, "\n"))
		}
	}
}

// TestRedisStartupCheckScripts: an ACL user that Redis lets PING but not
// run the store's scripts (denied EVALSHA and EVAL, EVAL alone, GET that
// the scripts run, or the store's keys) is warned of when the config is
// loaded, with no request: one warning of the store's logger, apart from
// a Redis that does not answer, naming the cause (permission) and what
// Redis denied, never the password; and a request that needs the store
// is indeed answered 503. A user of the README's commands loads without
// a warning, and the check leaves no key behind.
func TestRedisStartupCheckScripts(t *testing.T) {
	const password = "acl-s3cret-pw"
	srv := testkit.StartRedis(t)
	admin := testkit.RedisClients(t, srv)[0]
	readme := readmeRedisCommands(t)
	for _, tc := range []struct {
		name   string
		denied []string // commands of the README's the user is not given
		keys   []string // the user's key patterns; nil: the README's
		want   string   // what the warning says Redis denied; "": no warning
	}{
		{"the README's commands", nil, nil, ""},
		{"without EVALSHA and EVAL", []string{"evalsha", "eval"}, nil, "EVALSHA"},
		{"without EVAL", []string{"eval"}, nil, "EVAL"},
		{"without GET", []string{"get"}, nil, "a command a script runs"},
		{"without the reservations' keys", nil, []string{"~rate:ucwa:*"}, "keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := "edge-" + strings.NewReplacer(" ", "-", "'", "").Replace(strings.ToLower(tc.name))
			acl := []any{"ACL", "SETUSER", user, "on", ">" + password, "resetkeys"}
			keys := tc.keys
			if keys == nil {
				keys = []string{"~ucwa:*", "~rate:ucwa:*"}
			}
			for _, k := range keys {
				acl = append(acl, k)
			}
			acl = append(acl, "resetchannels", "-@all")
			for _, c := range readme {
				if !slices.Contains(tc.denied, c) {
					acl = append(acl, "+"+c)
				}
			}
			if err := admin.Do(context.Background(), acl...).Err(); err != nil {
				t.Fatalf("%v: %v", acl, err)
			}
			url := "redis://" + user + ":" + password + "@" + srv.Addr() + "/0"
			e := startEdge(t, "caddyfile", redisCheckConfig(t, url, "timeout 5s"))
			addrs := `"addrs":["` + srv.Addr() + `"]`
			if tc.want == "" {
				e.Logs().Wait(t, redisAnswersLine, redisStoreLogger, addrs)
				for _, warning := range []string{redisScriptCheckWarning, redisCheckWarning} {
					if lines := e.Logs().Lines(warning); len(lines) > 0 {
						t.Errorf("warned of a user of the README's commands:\n%s", strings.Join(lines, "\n"))
					}
				}
				if left, err := admin.Keys(context.Background(), "ucwa:check:*").Result(); err != nil || len(left) > 0 {
					t.Errorf("the check left keys %q (%v)", left, err)
				}
				return
			}
			e.Logs().Wait(t, redisScriptCheckWarning, redisStoreLogger, `"level":"warn"`, addrs,
				`"cause":"permission"`, `"denied":"`+tc.want+`"`, "answered 503")
			alice := caller{"tenant-1", "alice"}.header(t)
			resp := e.send(limitRequest("/communication/startPhoneAudio", `{"to":"+14255551234","operationId":"op-acl"}`, alice))
			if resp.Status != http.StatusServiceUnavailable {
				t.Errorf("a request with the user denied the scripts: %d %s, want 503", resp.Status, resp.Body)
			}
			logs := e.Logs().String()
			if n := strings.Count(logs, redisScriptCheckWarning); n != 1 {
				t.Errorf("%d warnings of the scripts, want 1:\n%s", n, logs)
			}
			if strings.Contains(logs, redisCheckWarning) || strings.Contains(logs, redisAnswersLine) {
				t.Errorf("a Redis that answers but refuses the scripts was told as not answering, or as answering:\n%s", logs)
			}
			if strings.Contains(logs, password) {
				t.Errorf("the password is in the log:\n%s", logs)
			}
		})
	}
}

// readmeACLRule is the README's ACL rule for the edge's Redis user, the
// line that starts "ACL SETUSER", as words.
func readmeACLRule(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(readme)) {
		if strings.HasPrefix(line, "ACL SETUSER ") {
			return strings.Fields(line)
		}
	}
	t.Fatal("the README gives no ACL SETUSER rule for the edge's Redis user")
	return nil
}

// TestRedisACLRuleOfReadme: the README's ACL rule for the default
// key_prefix, as written (its password put in), serves an edge with
// idempotency, a share per caller and a limit, with no warning. Without
// its pattern of the limits' keys, ~rate:ucwa:* (an ACL written from
// "key_prefix starts the keys"), the startup check passes all the same,
// as the README says, and a request that a limit counts is answered 503,
// the store failing with NOPERM.
func TestRedisACLRuleOfReadme(t *testing.T) {
	const password = "acl-rule-pw"
	rule := readmeACLRule(t)
	if len(rule) < 4 || rule[0] != "ACL" || rule[1] != "SETUSER" || !slices.Contains(rule, ">PASSWORD") || !slices.Contains(rule, "~rate:ucwa:*") {
		t.Fatalf("the README's rule is not ACL SETUSER <user> with >PASSWORD and ~rate:ucwa:*: %q", rule)
	}
	srv := testkit.StartRedis(t)
	admin := testkit.RedisClients(t, srv)[0]
	for _, tc := range []struct {
		name string
		drop string // a word of the rule left out
	}{
		{"the README's rule", ""},
		{"without the limits' keys", "~rate:ucwa:*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := "edge-rule-" + strings.ReplaceAll(strings.ToLower(tc.name), " ", "-")
			user = strings.ReplaceAll(user, "'", "")
			acl := []any{"ACL", "SETUSER", user}
			for _, w := range rule[3:] {
				switch w {
				case tc.drop:
					continue
				case ">PASSWORD":
					w = ">" + password
				}
				acl = append(acl, w)
			}
			if err := admin.Do(context.Background(), acl...).Err(); err != nil {
				t.Fatalf("%v: %v", acl, err)
			}
			url := "redis://" + user + ":" + password + "@" + srv.Addr() + "/0"
			pool := testkit.NewUpstream(t)
			e := startEdge(t, "caddyfile", "{\n\tlog {\n\t\tlevel DEBUG\n\t}\n}\n"+limitCaddyfile(t, pool,
				"store redis "+url+" {\n\t\t\ttimeout 5s\n\t\t\tmax_entries_per_caller 10\n\t\t}", "idempotency", "limit calls 3 per 1h"))
			e.Logs().Wait(t, redisAnswersLine, redisStoreLogger)
			if lines := e.Logs().Lines(redisScriptCheckWarning); len(lines) > 0 {
				t.Errorf("the startup check warned:\n%s", strings.Join(lines, "\n"))
			}
			alice := caller{"tenant-1", "alice"}.header(t)
			resp := e.send(limitRequest("/communication/startPhoneAudio", `{"to":"+14255551234","operationId":"`+user+`"}`, alice))
			if tc.drop == "" {
				if resp.Status != http.StatusCreated {
					t.Fatalf("a call: %d %s, want 201", resp.Status, resp.Body)
				}
				if lines := e.Logs().Lines("store failing"); len(lines) > 0 {
					t.Errorf("the store failed:\n%s", strings.Join(lines, "\n"))
				}
				return
			}
			if resp.Status != http.StatusServiceUnavailable {
				t.Fatalf("a call with the limits' keys denied: %d %s, want 503", resp.Status, resp.Body)
			}
			e.Logs().Wait(t, `"msg":"store failing`, "NOPERM")
			if strings.Contains(e.Logs().String(), password) {
				t.Errorf("the password is in the log")
			}
		})
	}
}
