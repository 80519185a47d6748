package caddymodule

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/bearer"
	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestLimitKeyOfSeveralPlaceholders: a key of several placeholders gives
// two callers whose values differ budgets of their own, also when the
// values, joined by the key's text, read the same ("x|y" and "z", "x" and
// "y|z" in "{a}|{b}").
func TestLimitKeyOfSeveralPlaceholders(t *testing.T) {
	pool := testkit.NewUpstream(t)
	for _, tc := range []struct {
		name, key    string
		first, other [2]string // X-A and X-B of two callers
	}{
		{"text between", "{http.request.header.X-A}|{http.request.header.X-B}", [2]string{"x|y", "z"}, [2]string{"x", "y|z"}},
		{"side by side", "{http.request.header.X-A}{http.request.header.X-B}", [2]string{"ab", "c"}, [2]string{"a", "bc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		jwt off
		default_region US
		limit pair 1 per 1h key %s
		primary %s
	}
}`, tc.key, pool.Addr()))
			ab := func(v [2]string) http.Header { return http.Header{"X-A": {v[0]}, "X-B": {v[1]}} }
			if resp := e.send(callTo("+14255551234", ab(tc.first))); resp.Status != http.StatusCreated {
				t.Fatalf("first caller: %d %s", resp.Status, resp.Body)
			}
			if resp := e.send(callTo("+14255551234", ab(tc.other))); resp.Status != http.StatusCreated {
				t.Fatalf("the other caller, in the first's budget: %d %s", resp.Status, resp.Body)
			}
			assertLimited(t, e.send(callTo("+14255551234", ab(tc.first))), "pair", 3600)
		})
	}
}

// TestLimitKeyEncoding: no two tuples of values give one key, for
// templates of several placeholders, whatever bytes of the key's text
// (and '\') the values hold; and a key keeps the store key it had when
// values were joined as they are, where no value holds such a byte or
// the template has one placeholder, so that its budget survives an
// upgrade.
func TestLimitKeyEncoding(t *testing.T) {
	alphabet := []string{"", "x", "|", `\`, "/", "0", ":", "x|", `|\`, "/x", "1:", `\|`}
	for _, tc := range []struct {
		tpl string
		n   int // placeholders
	}{
		{"{a}|{b}", 2}, {"{a}{b}", 2}, {"{a}/{b}|{c}", 3}, {`k{a}\x{b}`, 2}, {`{a}\|{b}`, 2},
		{"{a}||{b}:", 2}, {"{a}:{b}", 2}, {"{a}|x{b}", 2}, {"{a}|{b}{c}", 3},
	} {
		tpl, n := tc.tpl, tc.n
		l := limit{key: tpl, storePrefix: "limit:t:"}
		l.keyEscapes, l.keyLengths = keyEncoding(tpl)
		seen := map[string][]string{}
		var walk func(vals []string)
		walk = func(vals []string) {
			if len(vals) == n {
				repl := caddy.NewEmptyReplacer()
				for i, v := range vals {
					repl.Set(string(rune('a'+i)), v)
				}
				k := l.expandKey(repl)
				if k == "" {
					return // every value empty: the client address's budget
				}
				if prev, ok := seen[k]; ok {
					t.Errorf("%s: %q and %q both expand to %q", tpl, prev, vals, k)
				}
				seen[k] = append([]string(nil), vals...)
				return
			}
			for _, v := range alphabet {
				walk(append(vals, v))
			}
		}
		walk(nil)
	}
}

// wantLimitKey is the store key of the limit name with the key template
// for the expanded key v: the SHA-256 of the version, v after its
// length, "key template" and the template after its length.
func wantLimitKey(name, template, v string) string {
	b := binary.AppendUvarint([]byte(limitKeyVersion), uint64(len(v)))
	b = binary.AppendUvarint(append(append(b, v...), "key template"...), uint64(len(template)))
	sum := sha256.Sum256(append(b, template...))
	return "limit:" + name + ":" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestLimitStoreKeys: through a real Caddy on Redis, each limit's store
// key is the digest of its key's value and of its template (the
// default's for a limit without key): keys of one placeholder (with
// text besides or without), and keys of several whose values hold none
// of the bytes of the text between them, with their values joined as
// they are.
func TestLimitStoreKeys(t *testing.T) {
	srv := testkit.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	pool := testkit.NewUpstream(t)
	const (
		tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
		app = "d2a3a5e3-4a8c-4d32-9ad5-8a8e0d1f5b11"
	)
	limits := []struct{ name, key, expanded string }{
		{"default", "", tid + "/alice"},
		{"default-given", DefaultLimitKey, tid + "/alice"},
		{"one", "{http.request.header.X-A}", tid},
		{"text", "tenant-{http.request.header.X-A}|", "tenant-" + tid + "|"},
		{"two", "{http.request.header.X-A}/{http.request.header.X-B}", tid + "/" + app},
		{"bar", "{http.request.header.X-A}|{http.request.header.X-B}", tid + "|" + app},
	}
	var config strings.Builder
	for _, l := range limits {
		fmt.Fprintf(&config, "\t\tlimit %s 5 per 1h", l.name)
		if l.key != "" {
			fmt.Fprintf(&config, " key %s", l.key)
		}
		config.WriteString("\n")
	}
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		%s
		default_region US
		store redis %s {
			timeout 5s
		}
%s		primary %s
	}
}`, idemAuth(t), srv.URL(), config.String(), pool.Addr()))
	h := caller{tid, "alice"}.header(t)
	h.Set("X-A", tid)
	h.Set("X-B", app)
	if resp := e.send(callTo("+14255551234", h)); resp.Status != http.StatusCreated {
		t.Fatalf("%d %s", resp.Status, resp.Body)
	}
	keys := strings.Join(rdb.Keys(context.Background(), "*").Val(), " ")
	for _, l := range limits {
		want := wantLimitKey(l.name, cmp.Or(l.key, DefaultLimitKey), l.expanded)
		if !strings.Contains(keys, want) {
			t.Errorf("limit %s (key %s): no store key %s in %s", l.name, l.key, want, keys)
		}
	}
}

// TestLimitKeyOfGrant: the store key of a limit whose key is a verified
// caller's told apart by tenant (the default,
// {http.ucwa.tenant_caller}), which the token's grant hashes once, is
// the key the expanded value and the template give (wantLimitKey): the
// tid, or for a token without tid of an issuer other than the first its
// iss, and the caller, '/' and '\' in them escaped, as
// {http.ucwa.tenant}/{http.ucwa.caller} expands, whose store key is of
// its own template; a key that expands to anything else (another
// placeholder, a caller placeholder set to another value by a handler
// before the edge) is hashed as it expands, with its template.
func TestLimitKeyOfGrant(t *testing.T) {
	ctx := benchContext(t)
	const oid, tid = "d2a5b7e4-6f0a-4a0e-9f3b-1c2d3e4f5a6b", "72f988bf-86f1-41af-91ab-2d7cd011db47"
	const first, second = "https://first.example/", "https://second.example/"
	for _, tc := range []struct {
		name, key string
		claims    bearer.Claims
		set       string // a value {http.ucwa.tenant_caller} is set to before the grant publishes
		expanded  string
	}{
		{"caller", DefaultLimitKey, bearer.Claims{"oid": oid, "tid": tid}, "", tid + "/" + oid},
		{"caller by sub", DefaultLimitKey, bearer.Claims{"sub": "s1"}, "", "/s1"},
		{"caller of the first issuer", DefaultLimitKey, bearer.Claims{"iss": first, "sub": "s1"}, "", "/s1"},
		{"caller of another issuer", DefaultLimitKey, bearer.Claims{"iss": second, "sub": "s1"}, "", `https:\/\/second.example\//s1`},
		{"caller with a tid, of another issuer", DefaultLimitKey, bearer.Claims{"iss": second, "tid": tid, "sub": "s1"}, "", tid + "/s1"},
		{"caller of '/' and '\\'", DefaultLimitKey, bearer.Claims{"tid": `t/\`, "sub": `a/b`}, "", `t\/\\/a\/b`},
		{"caller as two placeholders", tenantCallerKey, bearer.Claims{"iss": second, "sub": "a/b"}, "", `https:\/\/second.example\//a\/b`},
		{"the caller alone", "{http.ucwa.caller}", bearer.Claims{"oid": oid, "tid": tid}, "", oid},
		{"tenant", "{http.ucwa.tid}", bearer.Claims{"oid": oid, "tid": tid}, "", tid},
		{"tenant of another issuer", "{http.ucwa.tenant}", bearer.Claims{"iss": second, "oid": oid}, "", second},
		{"issuer", "{http.ucwa.iss}", bearer.Claims{"iss": first, "tid": tid, "oid": oid}, "", first},
		{"caller and tenant", "{http.ucwa.tid}/{http.ucwa.caller}", bearer.Claims{"oid": oid, "tid": tid}, "", tid + "/" + oid},
		{"caller set before", DefaultLimitKey, bearer.Claims{"oid": oid}, "someone", "someone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := Handler{Limits: []*LimitConfig{{Name: "calls", Count: 5, Per: caddy.Duration(time.Hour), Key: tc.key}}}
			if err := h.provisionLimits(ctx); err != nil {
				t.Fatal(err)
			}
			l := &h.limits[0]
			req := httptest.NewRequest(http.MethodPost, "/", nil)
			repl := caddyhttp.NewTestReplacer(req)
			if tc.set != "" {
				repl.Set("http.ucwa.tenant_caller", tc.set)
			}
			g := makeGrant(tc.claims, first, false, nil)
			g.publish(req.WithContext(context.WithValue(req.Context(), caddy.ReplacerCtxKey, repl)))
			w := wantLimitKey("calls", tc.key, tc.expanded)
			if got := l.storeKey(repl, req, g); got != w {
				t.Errorf("with the grant: %s, want %s", got, w)
			}
			if got := l.storeKey(repl, req, nil); got != w {
				t.Errorf("without the grant: %s, want %s", got, w)
			}
		})
	}
}

// TestLimitKeylessWarned: a limit whose key expands to nothing for a
// request (a header the request lacks) warns that the request took from
// its client address's budget: at the first such request, then once a
// minute at most with the number of such requests since, naming the limit
// and its key template, never a value of the request. A request whose
// key expands warns of nothing.
func TestLimitKeylessWarned(t *testing.T) {
	const warning = `"msg":"a limit's key expanded to nothing`
	clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	limitWarningClock = clock.Now
	t.Cleanup(func() { limitWarningClock = nil })
	e := startLimitEdge(t, "limit tenant 100 per 1h key {http.request.header.X-Tenant}")
	who := caller{"tenant-1", "alice"}.header(t)
	withTenant := who.Clone()
	withTenant.Set("X-Tenant", "contoso")
	send := func(h http.Header) {
		t.Helper()
		if resp := e.send(callTo("+14255551234", h)); resp.Status != http.StatusCreated {
			t.Fatalf("%d %s", resp.Status, resp.Body)
		}
	}
	warnings := func() []string { return e.Logs().Lines(warning) }

	send(withTenant)
	if got := warnings(); len(got) != 0 {
		t.Fatalf("warned of a key that expanded: %q", got)
	}
	for range 3 {
		send(who)
	}
	send(withTenant)
	got := warnings()
	if len(got) != 1 {
		t.Fatalf("%d warnings for 3 requests within a minute, want 1: %q", len(got), got)
	}
	for _, part := range []string{`"level":"warn"`, `"limit":"tenant"`, `"key":"{http.request.header.X-Tenant}"`, `"requests":1`, "trusted_proxies"} {
		if !strings.Contains(got[0], part) {
			t.Errorf("the warning lacks %s: %s", part, got[0])
		}
	}
	for _, value := range []string{"contoso", "127.0.0.1", "14255551234", "alice"} {
		if strings.Contains(got[0], value) {
			t.Errorf("the warning holds a value of a request (%s): %s", value, got[0])
		}
	}

	clock.Advance(time.Minute)
	send(who)
	if got := warnings(); len(got) != 2 || !strings.Contains(got[1], `"requests":3`) {
		t.Errorf("a minute later, warnings %q, want a second one counting the 3 requests since the first", got)
	}
}

// TestLimitConflictAcrossSites: two sites of one config that share a
// store's data and define one limit name with another count, per or
// applies_to are warned of at startup: they would take from the same
// buckets, each at its own rate. Two that give it another key are warned
// of too, naming both templates (no value): they count in budgets
// apart. The same definition (the default key given or not), other
// names, or stores of other data warn of nothing.
func TestLimitConflictAcrossSites(t *testing.T) {
	const warning = `"msg":"two handlers of this config define the limit \"calls\" differently on one store`
	const keyWarning = `"msg":"two handlers of this config define the limit \"calls\" with different keys on one store`
	redisStore := func(t *testing.T, block ...string) func() string {
		srv := testkit.StartRedis(t)
		return func() string {
			return "store redis " + srv.URL() + " {\n\t\t\ttimeout 5s\n\t\t\t" + strings.Join(block, "\n\t\t\t") + "\n\t\t}"
		}
	}
	for _, tc := range []struct {
		name         string
		first, other string // limits
		stores       func(t *testing.T) (string, string)
		warned       bool
		keyWarned    bool
	}{
		{"another count", "limit calls 20 per 1h", "limit calls 5 per 1h", nil, true, false},
		{"another per", "limit calls 20 per 1h", "limit calls 20 per 24h", nil, true, false},
		{"another applies_to", "limit calls 20 per 1h", "limit calls 20 per 1h international", nil, true, false},
		{"the same", "limit calls 20 per 1h", "limit calls 20 per 1h", nil, false, false},
		{"the same, the default key given", "limit calls 20 per 1h", "limit calls 20 per 1h key {http.ucwa.tenant_caller}", nil, false, false},
		{"the same, another key", "limit calls 20 per 1h", "limit calls 20 per 1h key {http.request.header.X-Client}", nil, false, true},
		{"another count and key", "limit calls 20 per 1h key {http.ucwa.tid}", "limit calls 5 per 1h key {http.request.header.X-Client}", nil, false, true},
		{"the same key, another count", "limit calls 20 per 1h key {http.ucwa.tid}", "limit calls 5 per 1h key {http.ucwa.tid}", nil, true, false},
		{"other names", "limit calls 20 per 1h", "limit calls-b 5 per 1h", nil, false, false},
		{"redis, another key", "limit calls 20 per 1h", "limit calls 20 per 1h key {http.request.header.X-Client}", func(t *testing.T) (string, string) {
			s := redisStore(t)
			return s(), s()
		}, false, true},
		{"memory and redis, another key", "limit calls 20 per 1h", "limit calls 20 per 1h key {http.request.header.X-Client}", func(t *testing.T) (string, string) {
			return "store memory", redisStore(t)()
		}, false, false},
		{"redis, stores of other timeouts", "limit calls 20 per 1h", "limit calls 5 per 1h", func(t *testing.T) (string, string) {
			s := redisStore(t)
			return s(), strings.Replace(s(), "timeout 5s", "timeout 4s", 1)
		}, true, false},
		{"redis, other key prefixes", "limit calls 20 per 1h", "limit calls 5 per 1h", func(t *testing.T) (string, string) {
			s := redisStore(t)
			return s(), strings.Replace(s(), "timeout 5s", "timeout 5s\n\t\t\tkey_prefix other:", 1)
		}, false, false},
		{"redis, one URL without its db", "limit calls 20 per 1h", "limit calls 5 per 1h", func(t *testing.T) (string, string) {
			s := redisStore(t)
			// redis://127.0.0.1:<port>/0 and redis://127.0.0.1:<port>: db 0
			// of one Redis.
			return s(), strings.Replace(s(), "/0 {", " {", 1)
		}, true, false},
		{"redis, other dbs", "limit calls 20 per 1h", "limit calls 5 per 1h", func(t *testing.T) (string, string) {
			s := redisStore(t)
			return s(), strings.Replace(s(), "/0 {", "/1 {", 1)
		}, false, false},
		{"memory and redis", "limit calls 20 per 1h", "limit calls 5 per 1h", func(t *testing.T) (string, string) {
			return "store memory", redisStore(t)()
		}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			firstStore, otherStore := "store memory", "store memory"
			if tc.stores != nil {
				firstStore, otherStore = tc.stores(t)
			}
			pool := testkit.NewUpstream(t)
			site := func(port, storeConfig, limit string) string {
				return fmt.Sprintf("%s {\n\tucwa {\n\t\tdefault_region US\n\t\t%s\n\t\t%s\n\t\t%s\n\t\tprimary %s\n\t}\n}\n",
					port, idemAuth(t), storeConfig, limit, pool.Addr())
			}
			e := startEdge(t, "caddyfile", site(":EDGE_PORT", firstStore, tc.first)+site(":OTHER_PORT", otherStore, tc.other))
			logs := e.Logs().String()
			if got := strings.Count(logs, warning); got != map[bool]int{false: 0, true: 1}[tc.warned] {
				t.Fatalf("%d warnings, want warned %v:\n%s", got, tc.warned, logs)
			}
			if got := strings.Count(logs, keyWarning); got != map[bool]int{false: 0, true: 1}[tc.keyWarned] {
				t.Fatalf("%d warnings of keys, want warned %v:\n%s", got, tc.keyWarned, logs)
			}
			if tc.keyWarned {
				// Either site's limit may be the other, as below.
				line := e.Logs().Wait(t, keyWarning, `"level":"warn"`, `"limit":"calls"`)
				_, first, _ := strings.Cut(tc.first, " key ")
				_, other, _ := strings.Cut(tc.other, " key ")
				first, other = cmp.Or(first, DefaultLimitKey), cmp.Or(other, DefaultLimitKey)
				if !strings.Contains(line, `"key":"`+first+`","other_key":"`+other+`"`) && !strings.Contains(line, `"key":"`+other+`","other_key":"`+first+`"`) {
					t.Errorf("the warning names not both keys: %s", line)
				}
			}
			if tc.warned {
				// Caddy provisions the servers in no set order: either
				// site's limit may be the other.
				line := e.Logs().Wait(t, warning, `"level":"warn"`, `"limit":"calls"`, `"other_per":`)
				_, mine, _ := strings.Cut(line, `"count":`)
				_, theirs, _ := strings.Cut(line, `"other_count":`)
				if !strings.HasPrefix(mine, "20,") && !strings.HasPrefix(mine, "5,") || !strings.HasPrefix(theirs, "20,") && !strings.HasPrefix(theirs, "5,") {
					t.Errorf("the warning names not both counts: %s", line)
				}
			}
		})
	}
}

// TestLimitChangedAcrossReloadNotConflict: a reload that changes a
// limit's count (20 to 5) is no conflict, though the old config's handler
// is still provisioned on the same store while the new one is; nor is
// loading the same config again.
func TestLimitChangedAcrossReloadNotConflict(t *testing.T) {
	const warning = `define the limit \"calls\" differently on one store`
	pool := testkit.NewUpstream(t)
	e := startEdge(t, "caddyfile", limitCaddyfile(t, pool, "limit calls 20 per 1h"))
	e.Load("caddyfile", limitCaddyfile(t, pool, "limit calls 5 per 1h"))
	e.Load("caddyfile", limitCaddyfile(t, pool, "limit calls 5 per 1h"))
	e.Load("caddyfile", limitCaddyfile(t, pool, "limit calls 20 per 1h international"))
	if logs := e.Logs().String(); strings.Contains(logs, warning) {
		t.Errorf("a reload warned of a conflict:\n%s", logs)
	}
	// The claims of the configs unloaded are gone: a config of two sites
	// that conflict is still warned of once.
	other := fmt.Sprintf("\n:OTHER_PORT {\n\tucwa {\n\t\tdefault_region US\n\t\t%s\n\t\tlimit calls 5 per 1h\n\t\tprimary %s\n\t}\n}\n", idemAuth(t), pool.Addr())
	e.Load("caddyfile", limitCaddyfile(t, pool, "limit calls 20 per 1h")+other)
	if n := strings.Count(e.Logs().String(), warning); n != 1 {
		t.Errorf("%d warnings of a config of two sites that conflict, want 1", n)
	}
	limitClaims.mu.Lock()
	n := len(limitClaims.claims)
	limitClaims.mu.Unlock()
	if n != 1 {
		t.Errorf("%d limit claims held, want 1 (the config loaded's): the unloaded configs' were kept", n)
	}
}

// TestLimitKeylessWarnedOnceWithJWTOff: with jwt off, a key of the
// verified caller's placeholders alone (the default
// {http.ucwa.tenant_caller}) is never set, so every request takes from
// its address's budget by the config's own making: the edge says so at
// startup, before any request (where caddy validate shows it), naming
// jwt off, and not again every minute for as long as it runs. A key that
// a request may set (a header) is warned of at requests, once a minute.
func TestLimitKeylessWarnedOnceWithJWTOff(t *testing.T) {
	const keyless = `"msg":"a limit's key expanded to nothing`
	for _, tc := range []struct {
		name, limit, key string
		neverSet         bool
		keyless          int // warnings at requests over 3 minutes
	}{
		{"default key", "limit calls 100 per 1h", "{http.ucwa.tenant_caller}", true, 0},
		{"key of two grant placeholders", "limit calls 100 per 1h key {http.ucwa.tid}/{http.ucwa.caller}", "{http.ucwa.tid}/{http.ucwa.caller}", true, 0},
		{"key of a header", "limit calls 100 per 1h key {http.request.header.X-Tenant}", "{http.request.header.X-Tenant}", false, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
			limitWarningClock = clock.Now
			t.Cleanup(func() { limitWarningClock = nil })
			pool := testkit.NewUpstream(t)
			e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		jwt off
		default_region US
		%s
		primary %s
	}
}`, tc.limit, pool.Addr()))
			neverSet := func() []string { return e.Logs().Lines(keyNeverSetWarning) }
			if got := neverSet(); len(got) != 1 && tc.neverSet || len(got) != 0 && !tc.neverSet {
				t.Fatalf("%d startup warnings that the key is never set, want one: %v", len(got), tc.neverSet)
			}
			for minute := range 3 {
				if resp := e.send(callTo("+14255551234", nil)); resp.Status != http.StatusCreated {
					t.Fatalf("minute %d: %d %s", minute, resp.Status, resp.Body)
				}
				clock.Advance(time.Minute)
			}
			if got := e.Logs().Lines(keyless); len(got) != tc.keyless {
				t.Fatalf("%d warnings at requests over 3 minutes with jwt off, want %d: %q", len(got), tc.keyless, got)
			}
			got := append(neverSet(), e.Logs().Lines(keyless)...)
			parts := []string{`"level":"warn"`, `"limit":"calls"`, `"key":"` + tc.key + `"`}
			if tc.neverSet {
				parts = append(parts, "jwt off")
				if len(got) != 1 {
					t.Fatalf("%d warnings in all, want the startup's alone: %q", len(got), got)
				}
			}
			for _, part := range parts {
				if !strings.Contains(got[0], part) {
					t.Errorf("the warning lacks %s: %s", part, got[0])
				}
			}
		})
	}
}

// TestLimitKeyUnknownPlaceholderWarned: a limit's key that names a
// placeholder Caddy does not fill before the limits (a typo of a
// namespace, a response's placeholder) is warned of at startup, naming
// the limit, its key and the placeholder; Caddy's request placeholders,
// a matcher's captures and the global ones are not. The config loads:
// another plugin's handler may set any name.
func TestLimitKeyUnknownPlaceholderWarned(t *testing.T) {
	for _, tc := range []struct {
		key     string
		unknown []string
	}{
		{"{http.request.header.X-Tenant}", nil},
		{"{http.reqest.header.X-Tenant}", []string{"http.reqest.header.X-Tenant"}},
		{"{http.response.status}/{http.request.host}", []string{"http.response.status"}},
		{"{http.regexp.tenant.1}/{http.vars.client_ip}/{system.hostname}/{time.now.year}", nil},
		{"{http.ucwa.tid}/{http.auth.user.id}/{http.matchers.file.relative}", nil},
		{"{tenant.id}/{http.vars.x}/{plugin.value}", []string{"tenant.id", "plugin.value"}},
	} {
		t.Run(tc.key, func(t *testing.T) {
			pool := testkit.NewUpstream(t)
			e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		limit calls 100 per 1h key %s
		jwt off
		primary %s
	}
}`, tc.key, pool.Addr()))
			lines := e.Logs().Lines(keyUnknownWarning)
			if len(lines) != len(tc.unknown) {
				t.Fatalf("%d warnings of an unknown placeholder, want %d: %q", len(lines), len(tc.unknown), lines)
			}
			for i, name := range tc.unknown {
				for _, part := range []string{`"level":"warn"`, `"limit":"calls"`, `"key":"` + tc.key + `"`, `"placeholder":"` + name + `"`} {
					if !strings.Contains(lines[i], part) {
						t.Errorf("warning %d lacks %s: %s", i, part, lines[i])
					}
				}
			}
		})
	}
}

// TestRequestPlaceholdersKnownToCaddy: the spellings placeholderSpelling
// gives for a key are ones Caddy's replacer resolves for a request, the
// edge's own aside: a name Caddy dropped would be refused by a spelling
// that resolves no better.
func TestRequestPlaceholdersKnownToCaddy(t *testing.T) {
	req := httptest.NewRequest(http.MethodPost, "https://edge.contoso.test/ucwa/oauth/v1/applications?tenant=a", nil)
	// The context Go's server and Caddy's give every request they serve.
	ctx := context.WithValue(req.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 443})
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
	ctx = context.WithValue(ctx, caddyhttp.ExtraLogFieldsCtxKey, new(caddyhttp.ExtraLogFields))
	ctx = context.WithValue(ctx, caddyhttp.OriginalRequestCtxKey, *req)
	req = req.WithContext(ctx)
	repl := caddyhttp.NewTestReplacer(req)
	for _, name := range requestPlaceholders {
		if strings.HasPrefix(name, "http.ucwa.") || slices.Contains(grantPlaceholders[:], name) {
			continue
		}
		if _, ok := repl.Get(name); !ok {
			t.Errorf("{%s} is not known to Caddy's replacer", name)
		}
	}
	// A name in each namespace, http.auth.user.* aside: an
	// authentication handler sets those.
	for _, name := range []string{
		"http.request.header.X-Tenant", "http.request.cookie.tenant", "http.request.uri.query.tenant",
		"http.request.host.labels.0", "http.request.uri.path.0", "http.request.orig_uri.path.0",
		"http.request.remote.host/24", "http.request.tls.cipher_suite", "http.vars.client_ip",
		"env.UCWA_TEST_SITE", "file." + filepath.Join(t.TempDir(), "tenant"),
	} {
		if !slices.ContainsFunc(requestNamespaces, func(ns string) bool { return strings.HasPrefix(name, ns) }) {
			t.Errorf("{%s} is in none of requestNamespaces", name)
		}
		if _, ok := repl.Get(name); !ok {
			t.Errorf("{%s} is not known to Caddy's replacer", name)
		}
	}
}
