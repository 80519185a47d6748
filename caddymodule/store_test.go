package caddymodule

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ucwa-edge/caddy-ucwa/internal/store"
	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
	"github.com/ucwa-edge/caddy-ucwa/ucwa"
)

// TestStoreCaddyfileErrors: syntax errors of store and idempotency, found
// while the Caddyfile is read, each naming the subdirective.
func TestStoreCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ name, block, want string }{
		{"store without backend", "store", "store: wrong argument count: expected memory [<max_entries>] or redis <url>"},
		{"unknown backend", "store disk", `store: "disk" is neither memory nor redis`},
		{"unknown backend in capitals", "store Disk", `store: "Disk" is neither memory nor redis`},
		{"max_entries 0", "store memory 0", `store memory: "0" is not a number of entries above 0`},
		{"max_entries not a number", "store memory lots", `store memory: "lots" is not a number of entries`},
		{"memory arguments", "store memory 10 20", "store memory: wrong argument count: expected at most one argument, <max_entries>"},
		{"unknown memory option", "store memory {\n entries 10\n}", `store memory: unrecognized option "entries"`},
		// The JSON fields' names, as the godoc gives them, which the
		// Caddyfile writes otherwise: the message says how.
		{"memory max_entries, the JSON field", "store memory {\n max_entries 10\n}", "store memory: unrecognized option \"max_entries\" (a JSON field's name: the Caddyfile writes `store memory <max_entries> { ... }`)"},
		{"redis url, the JSON field", "store redis {\n url redis://a:6379\n}", "expected `store redis <url> { ... }`"},
		{"redis sentinel_master, the JSON field", "store redis redis://a:26379 {\n sentinel_master m\n}", "store redis: unrecognized option \"sentinel_master\" (a JSON field's name: the Caddyfile writes `sentinel <master> [<addr...>]`)"},
		{"redis addrs, the JSON field", "store redis redis://a:6379 {\n cluster\n addrs b:6379\n}", "store redis: unrecognized option \"addrs\" (a JSON field's name: the Caddyfile writes `sentinel <master> [<addr...>] or cluster [<addr...>]`)"},
		{"timeout in store memory", "store memory {\n timeout 1s\n}", "store memory: unrecognized option \"timeout\" (it belongs in the block of store redis)"},
		{"ca beside tls", "store redis rediss://a:6379 {\n ca a.pem\n}", "store redis: unrecognized option \"ca\" (it belongs in the tls block of store redis)"},
		{"idempotency in store's block", "store memory {\n idempotency 10m\n}", "store memory: unrecognized option \"idempotency\" (it belongs in the ucwa block itself)"},
		{"memory on_error arguments", "store memory 10 {\n on_error\n}", "wrong argument count"},
		{"memory on_error twice", "store memory {\n on_error open\n on_error closed\n}", "store: on_error: given twice"},
		{"max_entries_per_caller 0", "store memory {\n max_entries_per_caller 0\n}", `store memory: max_entries_per_caller: "0" is not a number of entries above 0`},
		{"max_entries_per_caller arguments", "store memory {\n max_entries_per_caller\n}", "wrong argument count"},
		{"redis max_entries_per_caller 0", "store redis redis://a:6379 {\n max_entries_per_caller 0\n}", `store redis: max_entries_per_caller: "0" is not a number of entries above 0`},
		{"redis max_entries_per_caller not a number", "store redis redis://a:6379 {\n max_entries_per_caller many\n}", `store redis: max_entries_per_caller: "many" is not a number of entries above 0`},
		{"redis max_entries_per_caller arguments", "store redis redis://a:6379 {\n max_entries_per_caller 1 2\n}", "wrong argument count"},
		{"redis without url", "store redis", "expected `store redis <url> { ... }`"},
		{"redis arguments", "store redis redis://a:6379 redis://b:6379", "expected `store redis <url> { ... }`"},
		{"timeout 0", "store redis redis://a:6379 {\n timeout 0\n}", `timeout: "0" is not a duration other than 0`},
		{"timeout not a duration", "store redis redis://a:6379 {\n timeout soon\n}", `timeout: "soon" is not a duration`},
		{"on_error arguments", "store redis redis://a:6379 {\n on_error\n}", "wrong argument count"},
		{"unknown redis option", "store redis redis://a:6379 {\n database 2\n}", `store redis: unrecognized option "database"`},
		{"tls arguments", "store redis rediss://a:6379 {\n tls on\n}", "tls: wrong argument count: expected no argument, then a block"},
		{"unknown tls option", "store redis rediss://a:6379 {\n tls {\n client_cert a.pem\n }\n}", `tls: unrecognized option "client_cert"`},
		{"insecure_skip_verify argument", "store redis rediss://a:6379 {\n tls {\n insecure_skip_verify yes\n }\n}", "insecure_skip_verify: wrong argument count: expected no argument"},
		{"sentinel without master", "store redis redis://a:26379 {\n sentinel\n}", "wrong argument count"},
		// JSON reads "" as a setting not given: key_prefix "" would be
		// the default prefix, sharing keys with the fleets meant apart.
		{"key_prefix empty", "store redis redis://a:6379 {\n key_prefix \"\"\n}", `key_prefix: "" is read as not given, its default: leave key_prefix out for the default, or give a value`},
		{"password empty", "store redis redis://u:p@a:6379 {\n password \"\"\n}", `password: "" is read as not given, its default: leave password out`},
		{"on_error empty", "store memory {\n on_error \"\"\n}", `on_error: "" is read as not given, its default: leave on_error out`},
		{"tls ca empty", "store redis rediss://a:6379 {\n tls {\n ca \"\"\n }\n}", `ca: "" is read as not given, its default: leave ca out`},
		{"tls server_name empty", "store redis rediss://a:6379 {\n tls {\n server_name \"\"\n }\n}", `server_name: "" is read as not given, its default: leave server_name out`},
		{"sentinel master empty", "store redis redis://a:26379 {\n sentinel \"\"\n}", `sentinel: a master named "" is read as no sentinel: give the master's name`},
		{"idempotency 0", "idempotency 0", `idempotency: "0" is not a window other than 0`},
		{"idempotency 10ms", "idempotency 10ms", "idempotency: window must be at least 1s: 10ms"},
		{"idempotency not a duration", "idempotency soon", `idempotency: "soon" is not a window`},
		{"idempotency arguments", "idempotency 1m 2m", "idempotency: wrong argument count: expected at most one argument, <window>"},
		{"idempotency block", "idempotency {\n window 1m\n}", "idempotency takes no block: its window is its argument (idempotency 10m)"},

		{"store twice", "store memory\n store memory", "store: given twice"},
		{"idempotency twice", "idempotency\n idempotency 5m", "idempotency: given twice"},
		{"timeout twice", "store redis redis://a:6379 {\n timeout 1s\n timeout 2s\n}", "store: timeout: given twice"},
		{"password twice", "store redis redis://a:6379 {\n password a\n password b\n}", "store: password: given twice"},
		{"ca twice", "store redis rediss://a:6379 {\n tls {\n ca a.pem\n ca b.pem\n }\n}", "tls: ca: given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("ucwa {\n" + tc.block + "\n}"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestStoreStartupErrors: store and idempotency settings that cannot
// work stop startup with a message that names the setting, from a
// Caddyfile and from JSON alike, and never holds a password.
func TestStoreStartupErrors(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	t.Setenv("UCWA_TEST_UNSET_VARIABLE", "")
	t.Setenv("UCWA_TEST_REDIS_URL", "redis://edge:6379/"+secret+"/x@127.0.0.1:6379")
	for _, tc := range []struct {
		name      string
		caddyfile string // the ucwa block's lines after `jwt off`; "" for a JSON-only case
		json      string // the handler's fields after jwt; "" for a Caddyfile-only case
		want      string
	}{
		{"negative max_entries", "", `"store":{"backend":"memory","max_entries":-1}`, "max_entries must not be negative: -1"},
		{"bad memory on_error", "store memory {\non_error maybe\n}", `"store":{"backend":"memory","on_error":"maybe"}`,
			`on_error: "maybe" is neither closed nor open`},
		{"memory on_error in capitals", "store memory {\non_error Maybe\n}", `"store":{"backend":"memory","on_error":"Maybe"}`,
			`on_error: "Maybe" is neither closed nor open`},
		{"unknown backend", "", `"store":{"backend":"disk"}`, "unknown module: http.handlers.ucwa.stores.disk"},
		// Caddy's own message would name neither the store nor its
		// backends ("module name not specified with key 'backend' in map[]").
		{"no backend", "", `"store":{"on_error":"open"},"idempotency":{}`, "store: backend is required (memory or redis)"},
		{"empty backend", "", `"store":{"backend":""},"idempotency":{}`, "store: backend is required (memory or redis)"},
		{"backend not a string", "", `"store":{"backend":5},"idempotency":{}`, "store: backend must be a string (memory or redis): 5"},
		{"store not an object", "", `"store":"memory","idempotency":{}`, `store: must be an object with a backend, such as {"backend": "memory"}`},
		{"no url", "", `"store":{"backend":"redis"}`, "a URL is required"},
		{"bad on_error", "store redis redis://127.0.0.1:6379 {\non_error maybe\n}", `"store":{"backend":"redis","url":"redis://127.0.0.1:6379","on_error":"maybe"}`,
			`on_error: "maybe" is neither closed nor open`},
		{"not a redis URL", "store redis http://127.0.0.1:6379", `"store":{"backend":"redis","url":"http://127.0.0.1:6379"}`, "the URL's scheme must be redis or rediss"},
		{"bad db, password in the URL", "store redis redis://:" + secret + "@127.0.0.1:6379/x", `"store":{"backend":"redis","url":"redis://:` + secret + `@127.0.0.1:6379/x"}`, "invalid URL"},
		// A '/' in the password ends the host: when what is before it
		// reads as a port, the rest of the password is the URL's path,
		// which go-redis's error quotes.
		{"password with a slash after digits", "store redis redis://edge:42/" + secret + "@127.0.0.1:6379", `"store":{"backend":"redis","url":"redis://edge:42/` + secret + `@127.0.0.1:6379"}`, "invalid URL"},
		{"password starting with a slash", "store redis redis://edge:/" + secret + "@127.0.0.1:6379", `"store":{"backend":"redis","url":"redis://edge:/` + secret + `@127.0.0.1:6379"}`, "invalid URL"},
		{"password with slashes, from the environment", "store redis {env.UCWA_TEST_REDIS_URL}", `"store":{"backend":"redis","url":"{env.UCWA_TEST_REDIS_URL}"}`, "invalid URL"},
		{"tls ca file that never ends", "store redis rediss://127.0.0.1:6379 {\ntls {\nca /dev/zero\n}\n}", `"store":{"backend":"redis","url":"rediss://127.0.0.1:6379","tls":{"ca":"/dev/zero"}}`,
			"store: redis: TLS CA file: /dev/zero: larger than 4194304 bytes"},
		{"tls without rediss", "store redis redis://127.0.0.1:6379 {\ntls {\ninsecure_skip_verify\n}\n}", "", "TLS options need a rediss URL"},
		{"empty tls block without rediss", "store redis redis://127.0.0.1:6379 {\ntls\n}", `"store":{"backend":"redis","url":"redis://127.0.0.1:6379","tls":{}}`, "TLS options need a rediss URL"},
		{"port out of range", "store redis redis://:" + secret + "@127.0.0.1:99999", `"store":{"backend":"redis","url":"redis://:` + secret + `@127.0.0.1:99999"}`, "the URL's port must be between 1 and 65535"},
		{"negative db", "store redis redis://127.0.0.1:6379/-1", `"store":{"backend":"redis","url":"redis://127.0.0.1:6379/-1"}`, "the URL's db must not be negative"},
		{"no host", "store redis redis://:6379/0", `"store":{"backend":"redis","url":"redis://:6379/0"}`, "the URL has no host"},
		{"sentinel and cluster", "store redis redis://127.0.0.1:26379 {\nsentinel edge\ncluster\n}", `"store":{"backend":"redis","url":"redis://127.0.0.1:26379","sentinel_master":"edge","cluster":true}`,
			"a sentinel master name and cluster exclude each other"},
		{"unset password variable", "store redis redis://127.0.0.1:6379 {\npassword {env.UCWA_TEST_UNSET_VARIABLE}\n}", "",
			"password: evaluated placeholder {env.UCWA_TEST_UNSET_VARIABLE} is empty"},
		// An empty prefix would put this fleet's keys among another's.
		{"unset key_prefix variable", "store redis redis://127.0.0.1:6379 {\nkey_prefix {env.UCWA_TEST_UNSET_VARIABLE}:\n}", `"store":{"backend":"redis","url":"redis://127.0.0.1:6379","key_prefix":"{env.UCWA_TEST_UNSET_VARIABLE}:"}`,
			"key_prefix: evaluated placeholder {env.UCWA_TEST_UNSET_VARIABLE} is empty ({env.*} is read from the environment of the Caddy process that loads the config, not of `caddy reload`"},
		{"password placeholder misspelled", "store redis redis://127.0.0.1:6379 {\npassword {Env.UCWA_TEST_REDIS_PASSWORD}\n}", "",
			"password: unrecognized placeholder (a literal brace is written \\{)"},
		{"password with literal braces", "store redis redis://127.0.0.1:6379 {\npassword {" + secret + "}\n}", "",
			"password: unrecognized placeholder (a literal brace is written \\{)"},
		{"password placeholder left open", "store redis redis://127.0.0.1:6379 {\npassword {env.UCWA_TEST_REDIS_PASSWORD\n}", `"store":{"backend":"redis","url":"redis://127.0.0.1:6379","password":"{env.UCWA_TEST_REDIS_PASSWORD"}`,
			"password: a brace is not closed: a placeholder is written {env.NAME}, a literal brace \\{"},
		{"url placeholder left open", "store redis {env.UCWA_TEST_REDIS_URL", "", "url: a brace is not closed"},
		{"url with literal braces", "store redis redis://:{" + secret + "}@127.0.0.1:6379", "",
			"url: unrecognized placeholder (a literal brace is written \\{)"},
		{"negative timeout", "", `"store":{"backend":"redis","url":"redis://127.0.0.1:6379","timeout":-1}`, "the timeout must not be negative"},
		// JSON's 100 is 100ns, not 100ms: every store call would time
		// out, while the startup check, given 5s, passes.
		{"timeout in nanoseconds", "store redis redis://127.0.0.1:6379 {\ntimeout 100ns\n}", `"store":{"backend":"redis","url":"redis://127.0.0.1:6379","timeout":100}`,
			"timeout must be at least 1ms: 100ns"},
		{"timeout just under 1ms", "store redis redis://127.0.0.1:6379 {\ntimeout 999us\n}", "", "timeout must be at least 1ms: 999µs"},
		{"negative max_entries_per_caller", "", `"store":{"backend":"redis","url":"redis://127.0.0.1:6379","max_entries_per_caller":-1}`, "max_entries_per_caller must not be negative: -1"},
		// go-redis sends no AUTH without a password: the edge ran as the
		// default user, not as the URL's.
		{"user without password", "store redis redis://edge@127.0.0.1:6379/0", `"store":{"backend":"redis","url":"redis://edge@127.0.0.1:6379/0"}`,
			"the URL's user needs a password"},
		{"window under 1ms", "", `"idempotency":{"window":1000}`, "idempotency: window must be at least 1s: 1µs"},
		{"window of 10ms", "idempotency 10ms", `"idempotency":{"window":10000000}`, "idempotency: window must be at least 1s: 10ms"},
		{"window just under 1s", "idempotency 999ms", `"idempotency":{"window":999000000}`, "idempotency: window must be at least 1s: 999ms"},
		{"negative window", "idempotency -1m", `"idempotency":{"window":-60000000000}`, "idempotency: window must be at least 1s: -1m0s"},
		{"window over a century", "idempotency 1000000h", `"idempotency":{"window":"1000000h"}`, "idempotency: window must be at most 876000h0m0s: 1000000h0m0s"},
		// A reservation in flight is renewed every third of the window,
		// and each store call may take the timeout.
		{"window under 10 Redis timeouts", "store redis redis://127.0.0.1:6379 {\ntimeout 2s\n}\nidempotency 19s",
			`"store":{"backend":"redis","url":"redis://127.0.0.1:6379","timeout":2000000000},"idempotency":{"window":19000000000}`,
			"idempotency: window must be at least 10 times the Redis store's timeout (2s), 20s: 19s"},
		{"default window under 10 Redis timeouts", "store redis redis://127.0.0.1:6379 {\ntimeout 2m\n}\nidempotency",
			`"store":{"backend":"redis","url":"redis://127.0.0.1:6379","timeout":120000000000},"idempotency":{}`,
			"idempotency: window must be at least 10 times the Redis store's timeout (2m0s), 20m0s: 10m0s"},
		{"1s window under 10 Redis timeouts", "store redis redis://127.0.0.1:6379 {\ntimeout 101ms\n}\nidempotency 1s",
			`"store":{"backend":"redis","url":"redis://127.0.0.1:6379","timeout":101000000},"idempotency":{"window":1000000000}`,
			"idempotency: window must be at least 10 times the Redis store's timeout (101ms), 1.01s: 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			configs := map[string][2]string{}
			if tc.caddyfile != "" {
				configs["Caddyfile"] = [2]string{"caddyfile", "127.0.0.1:0 {\n\tucwa {\n\t\tjwt off\n" + tc.caddyfile + "\n\t}\n}\n"}
			}
			if tc.json != "" {
				configs["JSON"] = [2]string{"json", handlerJSON(`"jwt":{"off":true},` + tc.json)}
			}
			for source, cfg := range configs {
				err := testkit.Validate(t, cfg[0], cfg[1])
				switch {
				case err == nil || !strings.Contains(err.Error(), tc.want):
					t.Errorf("%s: error %v, want one containing %q", source, err, tc.want)
				case strings.Contains(err.Error(), secret):
					t.Errorf("%s: the error holds the password: %v", source, err)
				}
			}
		})
	}
	// A null store is no store, as a null idempotency or destinations
	// is none: the default memory store when something needs one.
	t.Run("null store", func(t *testing.T) {
		for _, fields := range []string{`"store":null`, `"store":null,"idempotency":{}`} {
			if err := testkit.Validate(t, "json", handlerJSON(`"jwt":{"off":true},`+fields)); err != nil {
				t.Errorf("%s: %v", fields, err)
			}
		}
	})
	t.Run("good configs validate", func(t *testing.T) {
		t.Setenv("UCWA_TEST_REDIS_PASSWORD", secret)
		for _, block := range []string{
			"store memory\nidempotency",
			"store memory 50000\nidempotency 1h",
			"store memory\nidempotency 1s",
			"store memory\nidempotency 720h",
			"store redis redis://127.0.0.1:6379 {\ntimeout 2s\n}\nidempotency 20s",
			"store redis redis://127.0.0.1:6379\nidempotency 1s",
			"store redis redis://127.0.0.1:6379 {\ntimeout 1ms\n}\nidempotency 1s",
			"store memory {\non_error open\n}\nidempotency",
			"store redis redis://127.0.0.1:6379/3 {\npassword {env.UCWA_TEST_REDIS_PASSWORD}\non_error open\ntimeout 50ms\n}\nidempotency",
			"store redis redis://edge@127.0.0.1:6379/0 {\npassword {env.UCWA_TEST_REDIS_PASSWORD}\n}\nidempotency",
			"store redis rediss://127.0.0.1:6380 {\ntls {\nserver_name redis.example\n}\nkey_prefix edge1:\n}",
			"store redis redis://127.0.0.1:26379 {\nsentinel edge 127.0.0.2:26379\n}\nidempotency",
			"store redis redis://127.0.0.1:7000 {\ncluster 127.0.0.2:7000\n}\nidempotency",
		} {
			config := "127.0.0.1:0 {\n\tucwa {\n\t\tjwt off\n" + block + "\n\t}\n}\n"
			if err := testkit.Validate(t, "caddyfile", config); err != nil {
				t.Errorf("%v\n%s", err, config)
			}
		}
	})
}

// TestStoreHealthLog: a store's outage is logged once when it starts and
// once when it ends (no call failed for storeSettle), by whichever
// handler sees it, and a call that began before the latest change (a
// straggler) changes nothing. Every failure counts.
func TestStoreHealthLog(t *testing.T) {
	errDown := &store.Error{Op: "reserve", Err: errors.New("connection refused")}
	type call struct {
		handler int   // which of two handlers sharing the store
		begin   bool  // begins a call; else ends the oldest begun
		err     error // of an ending call
		settle  bool  // no call: storeSettle passes
	}
	begin := func(h int) call { return call{handler: h, begin: true} }
	ok := func(h int) call { return call{handler: h} }
	fail := func(h int) call { return call{handler: h, err: errDown} }
	settle := call{settle: true}
	for _, tc := range []struct {
		name  string
		calls []call
		want  []string // the messages logged, in order
	}{
		{"answers", []call{begin(0), ok(0), begin(1), ok(1)}, nil},
		{"one outage, many failures", []call{begin(0), fail(0), begin(1), fail(1), begin(0), fail(0), settle, begin(0), ok(0)},
			[]string{"store failing", "store answers again"}},
		{"two outages", []call{begin(0), fail(0), settle, begin(0), ok(0), begin(1), fail(1), settle, begin(1), ok(1)},
			[]string{"store failing", "store answers again", "store failing", "store answers again"}},
		{"a straggler's failure after the recovery", []call{begin(0), fail(0), settle, begin(0), begin(1), ok(0), fail(1), begin(0), ok(0)},
			[]string{"store failing", "store answers again"}},
		// Some calls fail, others succeed (a Redis Cluster node down):
		// one outage, over once no call failed for storeSettle.
		{"a partial outage", []call{begin(0), fail(0), begin(1), ok(1), begin(0), fail(0), begin(1), ok(1), begin(0), fail(0), begin(1), ok(1)},
			[]string{"store failing"}},
		{"a partial outage, then none", []call{begin(0), fail(0), begin(1), ok(1), begin(0), fail(0), begin(1), ok(1), settle, begin(1), ok(1)},
			[]string{"store failing", "store answers again"}},
		{"a straggler's success during the outage", []call{begin(0), begin(1), fail(0), ok(1), begin(1), fail(1)},
			[]string{"store failing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zap.DebugLevel)
			var now int64
			shared := &sharedStore{now: func() int64 { return now }}
			reg := prometheus.NewPedanticRegistry()
			m, err := newStoreMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			uses := [2]*storeUse{}
			for i := range uses {
				uses[i] = &storeUse{sharedStore: shared, errors: m.WithLabelValues(onErrorClosed), logger: zap.New(core)}
			}
			var epochs []uint64
			failures := 0
			for _, c := range tc.calls {
				if c.settle {
					now += int64(storeSettle)
					continue
				}
				if c.begin {
					epochs = append(epochs, uses[c.handler].begin())
					continue
				}
				proceed := uses[c.handler].end(epochs[0], c.err)
				epochs = epochs[1:]
				if proceed != (c.err == nil) {
					t.Fatalf("end(%v) = %v with on_error closed", c.err, proceed)
				}
				if c.err != nil {
					failures++
				}
			}
			var got []string
			for _, e := range logs.All() {
				msg, _, _ := strings.Cut(e.Message, ":")
				got = append(got, msg)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("logged %q, want %q", got, tc.want)
			}
			if n := testkit.MetricValue(t, testkit.Exposition(t, reg), `caddy_ucwa_store_errors_total{on_error="closed"}`); n != float64(failures) && !(n == -1 && failures == 0) {
				t.Errorf("counted %v failures, want %d", n, failures)
			}
		})
	}
}

// TestStoreClosedNeverGoesOn: a request whose store a reload closed
// before the request came to it (its head read just before the old
// server began to shut down) is not delivered without the store, even
// with on_error open: the store may hold its key. It is answered 503 with
// a message of its own, and no outage is logged.
func TestStoreClosedNeverGoesOn(t *testing.T) {
	mem, err := store.NewMemory(store.MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := mem.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, closed := mem.Reserve(context.Background(), "", "k", "v", time.Minute)
	if !errors.Is(closed, store.ErrClosed) {
		t.Fatalf("Reserve on a closed store: %v", closed)
	}
	down := &store.Error{Op: "reserve", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		err  error
		goOn bool
		want *ucwa.Error
	}{
		{closed, false, errStoreClosed},
		{down, true, errStoreUnavailable},
	} {
		core, logs := observer.New(zap.DebugLevel)
		m, err := newStoreMetrics(prometheus.NewPedanticRegistry())
		if err != nil {
			t.Fatal(err)
		}
		s := &storeUse{sharedStore: &sharedStore{}, failOpen: true, errors: m.WithLabelValues(onErrorOpen), logger: zap.New(core)}
		if got := s.end(s.begin(), tc.err); got != tc.goOn {
			t.Errorf("%v: end with on_error open = %v, want %v", tc.err, got, tc.goOn)
		}
		if got := storeError(tc.err); got != tc.want || got.Status != http.StatusServiceUnavailable {
			t.Errorf("%v: answered %v, want %v", tc.err, got, tc.want)
		}
		if outage := logs.FilterMessageSnippet("store failing").Len() == 1; outage != tc.goOn {
			t.Errorf("%v: an outage logged: %v", tc.err, outage)
		}
	}
}

// TestStoreOutage runs a load of requests with distinct operationIds
// through an edge with a Redis store while Redis is killed and later
// restarted. With on_error closed nothing is delivered while Redis is
// down (503), with open everything is; every request gets an answer. The
// edge logs the outage once when it starts and once when it ends, which
// it finds by itself once Redis is back; the load stops when afterBack
// requests sent after that have been answered, each 201 and protected.
// Redis has a password, given to the edge as a placeholder, which the log
// never holds. The store's clock jumps storeSettle ahead once the edge
// read Redis again (it logs the new run_id), so that the test does not
// wait storeSettle out; calls that failed before go-redis dialed again
// are then storeSettle in the past.
func TestStoreOutage(t *testing.T) {
	const (
		workers       = 4
		upAnswers     = 100 // answers before Redis is killed
		downAnswers   = 100 // answers while it is down
		afterBack     = 100 // answers after the edge found it back
		redisPassword = "Redis-s3cr3t"
	)
	// The phases of the test; a request records those it began and ended
	// in.
	const (
		phaseUp int32 = iota
		phaseDown
		phaseRestarted
		phaseRecovered
	)
	for _, mode := range []string{onErrorClosed, onErrorOpen} {
		t.Run(mode, func(t *testing.T) {
			var settled atomic.Int64
			storeClock = func() int64 { return monotonicNow() + settled.Load() }
			t.Cleanup(func() { storeClock = nil })
			srv := testkit.StartRedisWith(t, testkit.RedisConfig{Password: redisPassword})
			t.Setenv("UCWA_TEST_REDIS_PASSWORD", redisPassword)
			pool := newIdemPool(t, "primary")
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), fmt.Sprintf(`store redis redis://%s/0 {
			password {env.UCWA_TEST_REDIS_PASSWORD}
			timeout 5s
			on_error %s
		}`, srv.Addr(), mode), "primary "+pool.Addr()), testkit.WithAdmin())
			caller := idemToken(t, "tenant-1", "oid-a", "sub-a")

			type result struct {
				op                   string
				status               int
				replayed             bool // the answer to a repeat sent right after
				body                 string
				err                  error
				startPhase, endPhase int32
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var (
				phase              atomic.Int32
				issued, answered   atomic.Int64
				downAnswered       atomic.Int64
				afterRecovery      atomic.Int64
				mu                 sync.Mutex
				results            []result
				killNow, backNow   = make(chan struct{}), make(chan struct{})
				killOnce, backOnce sync.Once
				wg                 sync.WaitGroup
			)
			send := func(c idemCall) (testkit.Response, error) {
				req := e.request(c)
				req.Context = ctx
				return testkit.Do(e.Client(), req)
			}
			for range workers {
				wg.Go(func() {
					for ctx.Err() == nil && afterRecovery.Load() < afterBack {
						c := idemCall{header: caller, op: "outage-" + strconv.FormatInt(issued.Add(1), 10)}
						res := result{op: c.op, startPhase: phase.Load()}
						resp, err := send(c)
						res.endPhase, res.status, res.body, res.err = phase.Load(), resp.Status, resp.Body, err
						if res.startPhase == phaseRecovered {
							// Protected: a repeat gets the answer again.
							repeat, err := send(c)
							res.replayed = err == nil && repeat.Header.Get(headerReplayed) == "true"
							afterRecovery.Add(1)
						}
						mu.Lock()
						results = append(results, res)
						mu.Unlock()
						if answered.Add(1) == upAnswers {
							killOnce.Do(func() { close(killNow) })
						}
						// Counted by the phases the request saw, not by the
						// answers' order: on a loaded machine this goroutine
						// may answer many before Redis is killed.
						if res.startPhase == phaseDown && res.endPhase == phaseDown && downAnswered.Add(1) == downAnswers {
							backOnce.Do(func() { close(backNow) })
						}
					}
				})
			}
			select {
			case <-killNow:
				srv.Kill()
				phase.Store(phaseDown)
			case <-ctx.Done():
			}
			select {
			case <-backNow:
				phase.Store(phaseRestarted)
				srv.Restart()
				e.Logs().Wait(t, `"msg":"redis restarted or failed over`)
				settled.Store(int64(storeSettle))
				e.Logs().Wait(t, `"msg":"store answers again"`)
				phase.Store(phaseRecovered)
			case <-ctx.Done():
			}
			wg.Wait()
			if afterRecovery.Load() < afterBack {
				t.Fatalf("%d requests answered after the edge found Redis back, want %d", afterRecovery.Load(), afterBack)
			}

			var duringOutage, unavailable int
			// Counted once: a loaded machine may send tens of thousands
			// of requests while Redis is down, each of which a count per
			// result would read the pool's bodies for again.
			deliveredByOp := deliveriesByOperation(pool.Pool)
			for _, res := range results {
				delivered := deliveredByOp[res.op]
				down := res.startPhase == phaseDown && res.endPhase == phaseDown
				if down {
					duringOutage++
				}
				switch {
				case res.err != nil:
					t.Errorf("%s: no answer: %v", res.op, res.err)
				case res.startPhase == phaseRecovered && (res.status != http.StatusCreated || !res.replayed || delivered != 1):
					t.Errorf("%s, sent once Redis was back: %d %s, delivered %d times, its repeat replayed: %v", res.op, res.status, res.body, delivered, res.replayed)
				case res.status == http.StatusCreated && delivered == 1 && !(down && mode == onErrorClosed):
				case res.status == http.StatusServiceUnavailable && delivered == 0 && mode == onErrorClosed:
					if e := ucwaError(t, res.body); e.Code != "ServiceUnavailable" || e.Message != errStoreUnavailable.Message {
						t.Errorf("%s: 503 %s, want the edge's ServiceUnavailable", res.op, res.body)
					}
					unavailable++
				default:
					t.Errorf("%s (phases %d to %d): %d %s, delivered %d times", res.op, res.startPhase, res.endPhase, res.status, res.body, delivered)
				}
			}
			if duringOutage == 0 {
				t.Fatal("no request was sent and answered while Redis was down")
			}
			metrics := e.Metrics()
			if got := testkit.MetricValue(t, metrics, `caddy_ucwa_store_errors_total{on_error="`+mode+`"}`); got < float64(duringOutage) {
				t.Errorf("store errors %v, want at least the %d requests while Redis was down", got, duringOutage)
			}
			storeErrors := testkit.MetricValue(t, metrics, `caddy_ucwa_idempotency_total{result="store_error"}`)
			if mode == onErrorClosed && storeErrors != float64(unavailable) || storeErrors < float64(duringOutage) {
				t.Errorf("store_error results %v; %d answered 503, %d sent while Redis was down", storeErrors, unavailable, duringOutage)
			}

			// One warning when the outage starts and one line when it ends,
			// not one per request; go-redis's own messages at debug level.
			logs := e.Logs().String()
			if n := strings.Count(logs, `"msg":"store failing: `); n != 1 {
				t.Errorf("the outage's start logged %d times, want once", n)
			}
			if n := strings.Count(logs, `"msg":"store answers again"`); n != 1 {
				t.Errorf("the outage's end logged %d times, want once", n)
			}
			e.Logs().Wait(t, `"level":"debug"`, `"logger":"http.handlers.ucwa.stores.redis"`, `"msg":"go-redis"`)
			if strings.Contains(logs, redisPassword) {
				t.Error("the log holds Redis's password")
			}
			t.Logf("%d requests, %d while Redis was down, %d answered 503", len(results), duringOutage, unavailable)
		})
	}
}

// TestStoreHung: while Redis does not answer (its process stopped), a
// request that needs it gets its answer within the store's timeout, before
// Redis is resumed: 503 and nothing delivered with on_error closed,
// delivered with open. Once Redis answers again, requests are protected
// again by themselves.
func TestStoreHung(t *testing.T) {
	for _, mode := range []string{onErrorClosed, onErrorOpen} {
		t.Run(mode, func(t *testing.T) {
			srv := testkit.StartRedis(t)
			pool := newIdemPool(t, "primary")
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), fmt.Sprintf(`store redis %s {
			timeout 200ms
			on_error %s
		}`, srv.URL(), mode), "primary "+pool.Addr()))
			caller := idemToken(t, "tenant-1", "oid-a", "sub-a")

			srv.Freeze()
			for i := range 3 {
				op := "hung-" + strconv.Itoa(i)
				resp := e.call(idemCall{header: caller, op: op})
				want, delivered := http.StatusServiceUnavailable, 0
				if mode == onErrorOpen {
					want, delivered = http.StatusCreated, 1
				}
				if resp.Status != want || deliveries(pool.Pool, op) != delivered {
					t.Fatalf("%s while Redis hangs: %d %s, delivered %d times; want %d, delivered %d times",
						op, resp.Status, resp.Body, deliveries(pool.Pool, op), want, delivered)
				}
			}
			e.Logs().Wait(t, `"msg":"store failing: `, `timed out`)
			srv.Thaw()

			// Protected again: a request answered 201 whose repeat gets that
			// answer again rather than a delivery.
			n := 0
			testkit.Eventually(t, "a request protected again", func() bool {
				n++
				c := idemCall{header: caller, op: "thawed-" + strconv.Itoa(n)}
				if e.call(c).Status != http.StatusCreated {
					return false
				}
				return e.call(c).Header.Get(headerReplayed) == "true" && deliveries(pool.Pool, c.op) == 1
			})
		})
	}
}

// TestStoreOpenDeliversAgain: on_error open trades "never twice" for
// availability while Redis fails, as the README says: a repeat of a
// request answered before the outage, of one still in flight at the
// pool, and of one delivered during the outage is each delivered again,
// and a request delivered during the outage stays unremembered once
// Redis answers (its next repeat is delivered again too). With closed,
// each is answered 503 and none is delivered a second time.
func TestStoreOpenDeliversAgain(t *testing.T) {
	for _, mode := range []string{onErrorClosed, onErrorOpen} {
		t.Run(mode, func(t *testing.T) {
			srv := testkit.StartRedis(t)
			pool := newIdemPool(t, "primary")
			e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), fmt.Sprintf(`store redis %s {
			timeout 200ms
			on_error %s
		}`, srv.URL(), mode), "primary "+pool.Addr()))
			caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
			open := mode == onErrorOpen

			answered := idemCall{header: caller, op: "open-answered"}
			if resp := e.call(answered); resp.Status != http.StatusCreated {
				t.Fatalf("first request: %d %s", resp.Status, resp.Body)
			}
			inFlight := idemCall{header: caller, op: "open-in-flight", answer: "hold"}
			held := e.sendHeld(t, inFlight)
			testkit.Eventually(t, "the pool holding the request in flight", func() bool { return deliveries(pool.Pool, inFlight.op) == 1 })

			srv.Freeze()
			during := idemCall{header: caller, op: "open-during"}
			for _, c := range []idemCall{answered, {header: caller, op: inFlight.op}, during, during} {
				before := deliveries(pool.Pool, c.op)
				resp := e.call(c)
				want, delivered := http.StatusServiceUnavailable, before
				if open {
					want, delivered = http.StatusCreated, before+1
				}
				if resp.Status != want || resp.Header.Get(headerReplayed) != "" || deliveries(pool.Pool, c.op) != delivered {
					t.Fatalf("%s while Redis hangs: %d %s, delivered %d times in all; want %d, %d times",
						c.op, resp.Status, resp.Body, deliveries(pool.Pool, c.op), want, delivered)
				}
			}
			srv.Thaw()
			pool.Release()
			if resp := <-held; resp.Status != http.StatusCreated {
				t.Fatalf("the request in flight: %d %s", resp.Status, resp.Body)
			}
			n := 0
			testkit.Eventually(t, "a request protected again", func() bool {
				n++
				c := idemCall{header: caller, op: "open-thawed-" + strconv.Itoa(n)}
				return e.call(c).Status == http.StatusCreated && e.call(c).Header.Get(headerReplayed) == "true"
			})
			if !open {
				return
			}
			// Delivered twice during the outage, and no key holds it.
			resp := e.call(during)
			if resp.Status != http.StatusCreated || resp.Header.Get(headerReplayed) != "" || deliveries(pool.Pool, during.op) != 3 {
				t.Fatalf("%s once Redis answers: %d %s, delivered %d times in all; want a third delivery",
					during.op, resp.Status, resp.Body, deliveries(pool.Pool, during.op))
			}
		})
	}
}

// TestStoreSharedAcrossReload: a config reload keeps the store: a
// reservation made before the reload still holds after it (a repeat gets
// 409), the answer the old config's handler records is replayed by the
// new one, and a Redis store keeps its connections (Redis counts no new
// one); also when the reload changes the window or on_error, which the
// README says forget nothing.
func TestStoreSharedAcrossReload(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	for _, tc := range []struct {
		backend, name string
		reload        func(config string) string
	}{
		{"memory", "same config", func(c string) string { return c }},
		{"redis", "same config", func(c string) string { return c }},
		{"memory", "window changed", func(c string) string { return strings.Replace(c, "idempotency\n", "idempotency 5m\n", 1) }},
		{"redis", "window changed", func(c string) string { return strings.Replace(c, "idempotency\n", "idempotency 5m\n", 1) }},
		{"memory", "on_error changed", func(c string) string {
			return strings.Replace(c, "store memory", "store memory {\n\t\t\ton_error open\n\t\t}", 1)
		}},
		{"redis", "on_error changed", func(c string) string {
			return strings.Replace(c, "timeout 5s", "timeout 5s\n\t\t\ton_error open", 1)
		}},
	} {
		backend := tc.backend
		t.Run(backend+"/"+tc.name, func(t *testing.T) {
			storeConfig := "store memory"
			// connections are the ids of the connections Redis has open.
			// The store may open more beside them (a background reading
			// of Redis's settings, or the check at a config load, that
			// runs beside a request's command takes a connection of its
			// own), but a store made anew closes the ones it had.
			var connections func() map[string]bool
			if backend == "redis" {
				srv := testkit.StartRedis(t)
				storeConfig = "store redis " + srv.URL() + " {\n\t\t\ttimeout 5s\n\t\t}"
				rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 1})
				t.Cleanup(func() { _ = rdb.Close() })
				connections = func() map[string]bool {
					list, err := rdb.ClientList(context.Background()).Result()
					if err != nil {
						t.Fatal(err)
					}
					ids := map[string]bool{}
					for line := range strings.Lines(list) {
						id, _, _ := strings.Cut(line, " ")
						ids[id] = true
					}
					return ids
				}
			}
			pool := newIdemPool(t, "primary")
			config := idemCaddyfile(idemAuth(t), storeConfig, "primary "+pool.Addr())
			e := startEdge(t, "caddyfile", config)

			first := e.sendHeld(t, idemCall{header: caller, op: "reload-1", answer: "hold"})
			pool.Requests.WaitFor(t, 1, "requests at the pool")
			var before map[string]bool
			if connections != nil {
				before = connections()
			}
			reloaded := tc.reload(config)
			if reloaded == config && tc.name != "same config" {
				t.Fatal("the reload changes nothing")
			}
			e.Load("caddyfile", reloaded)

			assertConflict(t, e.call(idemCall{header: caller, op: "reload-1"}))
			pool.Release()
			answer := <-first
			if answer.Status != http.StatusCreated {
				t.Fatalf("the request in flight during the reload: %d %s", answer.Status, answer.Body)
			}
			assertReplay(t, e.call(idemCall{header: caller, op: "reload-1"}), answer)
			if got := deliveries(pool.Pool, "reload-1"); got != 1 {
				t.Errorf("delivered %d times", got)
			}
			if connections != nil {
				after := connections()
				for id := range before {
					if !after[id] {
						t.Errorf("Redis's connection %s, open before the reload, is closed after it: the edge reconnected", id)
					}
				}
			}
		})
	}
}

// TestStoreChangedAcrossReloadInFlight: a reload changes the Redis
// store's timeout (the same Redis, the same keys) while a request is in
// flight. The old handler's request still renews its reservation and
// records its answer: the old store is closed only once it is done.
func TestStoreChangedAcrossReloadInFlight(t *testing.T) {
	clock := renewalClock(t)
	srv := testkit.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	pool := newIdemPool(t, "primary")
	config := func(timeout string) string {
		return idemCaddyfile(idemAuth(t), "store redis "+srv.URL()+" {\n\t\t\ttimeout "+timeout+"\n\t\t}", "primary "+pool.Addr())
	}
	e := startEdge(t, "caddyfile", config("5s"))
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	first := e.sendHeld(t, idemCall{header: caller, op: "reload-in-flight", answer: "hold"})
	pool.Requests.WaitFor(t, 1, "requests at the pool")
	keys := rdb.Keys(ctx, "*").Val()
	if len(keys) != 1 {
		t.Fatalf("keys %q", keys)
	}
	clock.WaitPending(t, 1)
	e.Load("caddyfile", config("4s"))

	const short = time.Minute
	rdb.PExpire(ctx, keys[0], short)
	clock.Advance(DefaultIdempotencyWindow / 3)
	if ttl := rdb.PTTL(ctx, keys[0]).Val(); ttl <= short {
		t.Errorf("the reservation of the request in flight was not renewed after the reload (%s)", ttl)
	}
	pool.Release()
	answer := <-first
	if answer.Status != http.StatusCreated {
		t.Fatalf("the request in flight during the reload: %d %s", answer.Status, answer.Body)
	}
	assertReplay(t, e.call(idemCall{header: caller, op: "reload-in-flight"}), answer)
}

// TestStoreChangedAcrossReloadBeforeReserve: a request that the old
// config's handler took in before a reload that changes the store's
// settings, and that comes to its reservation after it (its body still on
// its way), finds the old store open: it was closed under the request,
// which, with on_error open, was then delivered without idempotency, a
// repeat of a request the store holds delivered a second time.
func TestStoreChangedAcrossReloadBeforeReserve(t *testing.T) {
	srv := testkit.StartRedis(t)
	pool := newIdemPool(t, "primary")
	config := func(timeout string) string {
		return idemCaddyfile(idemAuth(t), "store redis "+srv.URL()+" {\n\t\t\ttimeout "+timeout+"\n\t\t\ton_error open\n\t\t}", "primary "+pool.Addr())
	}
	e := startEdge(t, "caddyfile", config("5s"))
	c := idemCall{header: idemToken(t, "tenant-1", "oid-a", "sub-a"), op: "reload-before-reserve"}
	first := e.call(c)
	if first.Status != http.StatusCreated {
		t.Fatalf("first: %d %s", first.Status, first.Body)
	}

	// The repeat's head, with Expect: 100-continue: Go's server answers
	// 100 Continue once the handler, past the token, reads the body.
	repeat := c.request()
	conn := rawConn(t, testkit.Addr(e.Port("EDGE_PORT")))
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: edge.contoso.com\r\nAuthorization: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		repeat.URL, c.header.Get("Authorization"), repeat.ContentType, len(repeat.Body)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	read := func() testkit.Response {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the edge's answer: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading the edge's answer: %v", err)
		}
		return testkit.Response{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
	}
	if resp := read(); resp.Status != http.StatusContinue {
		t.Fatalf("%d %s, want 100 Continue", resp.Status, resp.Body)
	}
	e.Load("caddyfile", config("4s"))
	if _, err := io.WriteString(conn, repeat.Body); err != nil {
		t.Fatal(err)
	}
	assertReplay(t, read(), first)
	if got := deliveries(pool.Pool, c.op); got != 1 {
		t.Errorf("delivered %d times, want once", got)
	}
}

// TestStoreSharedAcrossHandlers: two sites whose handlers name the same
// store share it: a request repeated on the other site gets the first
// answer again, also when they give the memory store different bounds. A
// handler with another store has a store of its own.
func TestStoreSharedAcrossHandlers(t *testing.T) {
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	pool := newIdemPool(t, "primary")
	auth := idemAuth(t)
	site := func(port, store string) string {
		return strings.Replace(strings.Replace(idemCaddyfile(auth, store, "primary "+pool.Addr()), "EDGE_PORT", port, 1), "{\n\tlog {\n\t\tlevel DEBUG\n\t}\n}\n", "", 1)
	}
	e := startEdge(t, "caddyfile", site("EDGE_PORT", "store memory")+"\n"+site("SAME_PORT", "store memory 500")+"\n"+
		site("OTHER_PORT", "store redis "+testkit.StartRedis(t).URL()+" {\n\t\t\ttimeout 5s\n\t\t}"))
	send := func(port string) testkit.Response {
		req := idemCall{header: caller, op: "shared-1"}.request()
		req.URL = e.URL(port, req.URL)
		return testkit.Send(t, e.Client(), req)
	}
	first := send("EDGE_PORT")
	if first.Status != http.StatusCreated {
		t.Fatalf("%d %s", first.Status, first.Body)
	}
	assertReplay(t, send("SAME_PORT"), first)
	if resp := send("OTHER_PORT"); resp.Status != http.StatusCreated || resp.Header.Get(headerReplayed) != "" {
		t.Errorf("the handler with a store of its own: %d %v %s, want a delivery", resp.Status, resp.Header, resp.Body)
	}
	if got := deliveries(pool.Pool, "shared-1"); got != 2 {
		t.Errorf("delivered %d times, want 2 (once per store)", got)
	}
}

// TestMemoryStoreFull: a full memory store drops nothing it holds. A
// request that needs a new entry in it (a reservation, a new caller's
// limit) is answered 503 and not delivered (on_error closed), or
// delivered without the store (open), but for a new caller's limit, which
// a full store refuses whatever on_error says; each refusal is counted in
// caddy_ucwa_store_full_total, and warned of at the first and then once
// a minute at most (on the store's clock) with the refusals since the
// last warning. A repeat of a request the store holds is still replayed,
// one of a request delivered without it (open) is delivered again, and
// a new request finds room once entries expire.
func TestMemoryStoreFull(t *testing.T) {
	for _, tc := range []struct {
		onError   string
		refused   int    // the status of a request the store has no room for
		warning   string // in the warning's message
		delivered int64  // deliveries of the requests the store had no room for
		again     int64  // deliveries of a repeat of one of them
	}{
		{"closed", http.StatusServiceUnavailable, "are answered 503", 0, 0},
		{"open", http.StatusCreated, "go on without it", 5, 1},
	} {
		t.Run(tc.onError, func(t *testing.T) {
			clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
			memoryStoreClock = clock.Now
			t.Cleanup(func() { memoryStoreClock = nil })
			// Room for alice's limit and three reservations.
			e := startLimitEdge(t, "store memory 4 {\n\t\t\ton_error "+tc.onError+"\n\t\t\tmax_entries_per_caller 4\n\t\t}", "idempotency", "limit calls 100 per 1h")
			fullBefore := e.Metric("caddy_ucwa_store_full_total") // of earlier tests too
			alice := caller{"tenant-1", "alice"}.header(t)
			bob := caller{"tenant-1", "bob"}.header(t)
			warnings := func() (refused []float64) {
				t.Helper()
				for line := range strings.Lines(e.Logs().String()) {
					if !strings.Contains(line, `"msg":"memory store full`) {
						continue
					}
					var w map[string]any
					if err := json.Unmarshal([]byte(line), &w); err != nil {
						t.Fatalf("%v: %s", err, line)
					}
					if w["level"] != "warn" || w["max_entries"] != float64(4) || !strings.Contains(w["msg"].(string), tc.warning) {
						t.Errorf("warning %v", w)
					}
					refused = append(refused, w["refused"].(float64))
				}
				return refused
			}
			var first testkit.Response
			for i, op := range []string{"full-1", "full-2", "full-3"} {
				resp := e.callOp(op, alice)
				if resp.Status != http.StatusCreated {
					t.Fatalf("%s, with room: %d %s", op, resp.Status, resp.Body)
				}
				if i == 0 {
					first = resp
				}
			}
			for _, step := range []struct {
				name    string
				advance time.Duration
				ops     []string
				header  http.Header
				// newBucket: the request needs a new bucket of its caller's
				// limit, which a full store refuses whatever on_error says.
				newBucket bool
				warnings  []float64 // the refused field of each warning so far
			}{
				{"a new reservation", 0, []string{"full-4"}, alice, false, []float64{1}},
				{"a new caller's limit, within the minute", 30 * time.Second, []string{""}, bob, true, []float64{1}},
				{"more, within the minute", 29 * time.Second, []string{"full-5", "full-6"}, alice, false, []float64{1}},
				{"a minute after the first warning, the refusals since", time.Second, []string{"full-7", "full-8"}, alice, false, []float64{1, 4}},
			} {
				clock.Advance(step.advance)
				refused := tc.refused
				if step.newBucket {
					refused = http.StatusServiceUnavailable
				}
				for _, op := range step.ops {
					resp := e.callOp(op, step.header)
					if resp.Status != refused {
						t.Fatalf("%s: %d %s, want %d", step.name, resp.Status, resp.Body, refused)
					}
					if resp.Status == http.StatusServiceUnavailable {
						if e := ucwaError(t, resp.Body); e.Code != "ServiceUnavailable" || e.Message != errStoreFull.Message {
							t.Errorf("%s: 503 %s, want the edge's ServiceUnavailable of a full store", step.name, resp.Body)
						}
					}
				}
				if got := warnings(); !slices.Equal(got, step.warnings) {
					t.Errorf("%s: warnings of %v refusals, want %v", step.name, got, step.warnings)
				}
			}
			if got := e.Metric("caddy_ucwa_store_full_total") - fullBefore; got != 6 {
				t.Errorf("caddy_ucwa_store_full_total went up by %v, want 6", got)
			}
			if got := e.pool.Requests.Load(); got != 3+tc.delivered {
				t.Errorf("the pool got %d requests, want %d", got, 3+tc.delivered)
			}
			// What the store holds is still read: a repeat is replayed.
			assertReplay(t, e.callOp("full-1", alice), first)
			// What it had no room for is held by no key: with open, a
			// repeat is delivered again.
			if resp := e.callOp("full-4", alice); resp.Status != tc.refused || resp.Header.Get(headerReplayed) != "" ||
				e.pool.Requests.Load() != 3+tc.delivered+tc.again {
				t.Errorf("a repeat of full-4: %d %s, the pool got %d requests; want %d, %d requests",
					resp.Status, resp.Body, e.pool.Requests.Load(), tc.refused, 3+tc.delivered+tc.again)
			}
			// Once the reservations expire, there is room again.
			clock.Advance(DefaultIdempotencyWindow)
			if resp := e.callOp("full-9", alice); resp.Status != http.StatusCreated || resp.Header.Get(headerReplayed) != "" {
				t.Errorf("once the window is over: %d %s", resp.Status, resp.Body)
			}
		})
	}
}

// overMaxmemory puts Redis over its maxmemory, with the policy
// noeviction: a maxmemory of half what it holds. It then refuses every
// write that may grow it (OOM).
func overMaxmemory(t *testing.T, rdb *redis.Client) {
	t.Helper()
	ctx := context.Background()
	used, err := strconv.Atoi(rdb.InfoMap(ctx, "memory").Val()["Memory"]["used_memory"])
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string]string{"maxmemory-policy": "noeviction", "maxmemory": strconv.Itoa(used / 2)} {
		if err := rdb.ConfigSet(ctx, name, value).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRedisFull: a Redis at its maxmemory (policy noeviction) refuses
// the edge's reservations: the request is answered 503 as by a full
// memory store, not delivered, counted in caddy_ucwa_store_full_total
// and warned of as a full Redis, not as an outage; once Redis has room,
// requests go through again.
func TestRedisFull(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	e := startLimitEdge(t, "store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t}", "idempotency")
	fullBefore := e.Metric("caddy_ucwa_store_full_total") // of earlier tests too
	alice := caller{"tenant-1", "alice"}.header(t)
	if resp := e.callOp("redis-full-1", alice); resp.Status != http.StatusCreated {
		t.Fatalf("with room: %d %s", resp.Status, resp.Body)
	}
	overMaxmemory(t, rdb)
	resp := e.callOp("redis-full-2", alice)
	if e := ucwaError(t, resp.Body); resp.Status != http.StatusServiceUnavailable || e.Message != errStoreFull.Message {
		t.Fatalf("a full Redis: %d %s, want the edge's 503 of a full store", resp.Status, resp.Body)
	}
	if got := e.Metric("caddy_ucwa_store_full_total") - fullBefore; got != 1 {
		t.Errorf("caddy_ucwa_store_full_total went up by %v, want 1", got)
	}
	logs := e.Logs().String()
	if !strings.Contains(logs, `"msg":"redis full: over its maxmemory`) || strings.Contains(logs, "store failing") {
		t.Errorf("want the warning of a full Redis, and no outage:\n%s", logs)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if resp := e.callOp("redis-full-2", alice); resp.Status != http.StatusCreated {
		t.Fatalf("once Redis has room (no maxmemory): %d %s", resp.Status, resp.Body)
	}
	if got := e.pool.Requests.Load(); got != 2 {
		t.Errorf("the pool got %d requests, want 2", got)
	}
}

// TestRedisFullOpenRepeat: a Redis at its maxmemory (policy noeviction)
// still holds the reservations and answers it took: with on_error open,
// a repeat of a request it holds is replayed (answered) or refused 409
// (in flight), as a full memory store does, not delivered again without
// the store; only a new request goes on without it.
func TestRedisFullOpenRepeat(t *testing.T) {
	srv := testkit.StartRedis(t)
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	e := startLimitEdge(t, "store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t\ton_error open\n\t\t}", "idempotency")
	alice := caller{"tenant-1", "alice"}.header(t)
	first := e.callOp("open-full-1", alice)
	if first.Status != http.StatusCreated {
		t.Fatalf("with room: %d %s", first.Status, first.Body)
	}
	overMaxmemory(t, rdb)
	t.Cleanup(func() { rdb.ConfigSet(ctx, "maxmemory", "0") })
	assertReplay(t, e.callOp("open-full-1", alice), first)
	if resp := e.callOp("open-full-2", alice); resp.Status != http.StatusCreated {
		t.Fatalf("a new request, on_error open: %d %s", resp.Status, resp.Body)
	}
	if got := e.pool.Requests.Load(); got != 2 {
		t.Errorf("the pool got %d requests, want 2: the repeat of a request Redis holds was delivered again", got)
	}
}

// TestBatchStoreFailsOpen: with on_error open, a batch a part of which
// the store has no room for is delivered without that part's key, and
// only if no part repeats a request the store holds: the keys the store
// took for the parts before stay reserved (released, a repeat of the
// batch, or of such a part alone, found them free and was delivered a
// second time), and the parts after are still looked up (a full store
// still answers for what it holds, and a batch that repeated a part
// delivered before was delivered again).
func TestBatchStoreFailsOpen(t *testing.T) {
	const app = "/ucwa/v1/applications/1"
	start := func(op string) string {
		return innerPOST(app+"/communication/startPhoneAudio", "application/json", `{"to":"4255551234","operationId":"`+op+`"}`)
	}
	// Stores that take the first reservation of a test and then have no
	// room for a new one.
	stores := []struct {
		name  string
		store func(t *testing.T) string
	}{
		{"memory", func(*testing.T) string { return "store memory 1 {\n\t\t\ton_error open\n\t\t}" }},
		{"redis", func(t *testing.T) string {
			// A proxy that puts Redis over its maxmemory just before the
			// first command naming a second reservation key: Redis keeps
			// answering for the keys it holds, and refuses new ones (OOM).
			srv := testkit.StartRedis(t)
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			t.Cleanup(func() { _ = rdb.Close() })
			idemKey := regexp.MustCompile(`ucwa:idem:[A-Za-z0-9_-]{43}`)
			var mu sync.Mutex
			var first string
			full := false
			addr := startRedisProxy(t, srv.Addr(), func(write []byte) (string, bool) {
				mu.Lock()
				defer mu.Unlock()
				if key := idemKey.Find(write); key != nil && !full {
					if first == "" {
						first = string(key)
					} else if string(key) != first {
						overMaxmemory(t, rdb)
						full = true
					}
				}
				return "", true
			})
			return "store redis redis://" + addr + " {\n\t\t\ttimeout 5s\n\t\t\ton_error open\n\t\t}"
		}},
	}
	for _, tc := range []struct {
		name string
		// before is sent alone first, if not "", and delivered; then the
		// batch of parts, delivered without the key the store has no
		// room for, unless it repeats before.
		before    string
		parts     []string
		delivered int    // of the batch
		held      string // the part the store holds: its repeat alone is not delivered
	}{
		{"a part the store has room for, then one it has none for", "", []string{"open-a", "open-b"}, 1, "open-a"},
		{"a part the store has no room for, then one it holds", "open-b", []string{"open-a", "open-b"}, 0, "open-b"},
	} {
		for _, st := range stores {
			t.Run(tc.name+"/"+st.name, func(t *testing.T) {
				pool := newIdemPool(t, "primary")
				e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), st.store(t), "primary "+pool.Addr()), testkit.WithAdmin())
				token := testkit.Mint(t, jwt.SigningMethodES256, testkit.Keys(t).EC, "", testkit.Claims(time.Now(),
					jwt.MapClaims{"tid": "tenant-1", "oid": "oid-a", "scp": "Conversations.Initiate"}))
				caller := http.Header{"Authorization": {"Bearer " + token}}
				var parts []string
				for _, op := range tc.parts {
					parts = append(parts, start(op))
				}
				batch := func() testkit.Response {
					t.Helper()
					return e.send(testkit.Request{URL: app + "/batch", ContentType: batchType, Header: caller.Clone(), Body: batchBody(parts...)})
				}
				before := 0
				if tc.before != "" {
					if resp := e.call(idemCall{header: caller, op: tc.before}); resp.Status != http.StatusCreated {
						t.Fatalf("%s alone: %d %s", tc.before, resp.Status, resp.Body)
					}
					before = 1
				}
				if tc.delivered == 1 {
					if resp := batch(); resp.Status != http.StatusCreated {
						t.Fatalf("a batch the store has room for in part: %d %s, want it delivered (on_error open)", resp.Status, resp.Body)
					}
				}
				assertPartConflict(t, batch(), slices.Index(tc.parts, tc.held)+1)
				if resp := e.call(idemCall{header: caller, op: tc.held}); resp.Status != http.StatusConflict && resp.Header.Get(headerReplayed) != "true" {
					t.Errorf("%s alone: %d %s, want 409 or the first answer again", tc.held, resp.Status, resp.Body)
				}
				if got := len(pool.Received()); got != before+tc.delivered {
					t.Errorf("the pool got %d requests, want %d: a repeat was delivered again", got, before+tc.delivered)
				}
			})
		}
	}
}

// TestMemoryStoreResizedAcrossReload: a reload that changes max_entries
// keeps the memory store and what it holds (a new store would deliver
// again a request made before the reload): it grows the store, or shrinks
// it, keeping every entry and refusing new ones until it has room.
func TestMemoryStoreResizedAcrossReload(t *testing.T) {
	pool := testkit.NewUpstream(t)
	config := func(maxEntries int) string {
		return limitCaddyfile(t, pool, fmt.Sprintf("store memory %d {\n\t\t\tmax_entries_per_caller 10\n\t\t}", maxEntries), "idempotency")
	}
	e := limitEdge{startEdge(t, "caddyfile", config(2), testkit.WithAdmin()), pool}
	alice := caller{"tenant-1", "alice"}.header(t)
	first := e.callOp("resize-1", alice)
	for _, op := range []string{"resize-2", "resize-3"} {
		if resp := e.callOp(op, alice); resp.Status != map[string]int{"resize-2": http.StatusCreated, "resize-3": http.StatusServiceUnavailable}[op] {
			t.Fatalf("%s in a store of 2: %d %s", op, resp.Status, resp.Body)
		}
	}
	e.Load("caddyfile", config(3))
	assertReplay(t, e.callOp("resize-1", alice), first)
	if resp := e.callOp("resize-3", alice); resp.Status != http.StatusCreated {
		t.Fatalf("resize-3 in a store grown to 3: %d %s", resp.Status, resp.Body)
	}
	e.Load("caddyfile", config(1))
	assertReplay(t, e.callOp("resize-1", alice), first)
	if resp := e.callOp("resize-4", alice); resp.Status != http.StatusServiceUnavailable {
		t.Fatalf("resize-4 in a store shrunk to 1 holding 3: %d %s", resp.Status, resp.Body)
	}
	if got := e.Metric("caddy_ucwa_store_memory_entries"); got != 3 {
		t.Errorf("caddy_ucwa_store_memory_entries %v, want the 3 held across the reloads", got)
	}
	if got := pool.Requests.Load(); got != 3 {
		t.Errorf("the pool got %d requests, want 3", got)
	}
}

// TestRedisEvictionPolicyWarning: once Redis answers, the edge reads its
// eviction policy and warns when Redis may evict the edge's keys (a
// maxmemory with a policy other than noeviction), once; after an outage
// it reads the policy again, for the Redis that answers may have another.
func TestRedisEvictionPolicyWarning(t *testing.T) {
	srv := testkit.StartRedis(t)
	setPolicy := func(maxMemory, policy string) {
		t.Helper()
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		defer rdb.Close()
		for name, value := range map[string]string{"maxmemory": maxMemory, "maxmemory-policy": policy} {
			if err := rdb.ConfigSet(context.Background(), name, value).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	e := startLimitEdge(t, "store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t}", "idempotency")
	alice := caller{"tenant-1", "alice"}.header(t)
	ops := 0
	call := func() testkit.Response {
		t.Helper()
		ops++
		return e.send(limitRequest("/communication/startPhoneAudio", `{"to":"+14255551234","operationId":"policy-`+strconv.Itoa(ops)+`"}`, alice))
	}
	const kept, warning = `"msg":"redis does not evict the edge's keys"`, `"msg":"redis may evict the edge's keys`
	count := func(msg string) int { return strings.Count(e.Logs().String(), msg) }

	// Redis's defaults: no maxmemory, noeviction.
	if resp := call(); resp.Status != http.StatusCreated {
		t.Fatalf("%d %s", resp.Status, resp.Body)
	}
	e.Logs().Wait(t, kept, `"maxmemory_policy":"noeviction"`)

	// Read once: a policy set later is not seen until Redis comes back
	// from an outage.
	setPolicy("100mb", "allkeys-lru")
	for range 3 {
		if resp := call(); resp.Status != http.StatusCreated {
			t.Fatalf("%d %s", resp.Status, resp.Body)
		}
	}
	if n, w := count(kept), count(warning); n != 1 || w != 0 {
		t.Fatalf("%d lines that Redis keeps the keys and %d warnings, want 1 and 0", n, w)
	}

	srv.Kill()
	if resp := call(); resp.Status != http.StatusServiceUnavailable {
		t.Fatalf("with Redis down: %d %s", resp.Status, resp.Body)
	}
	srv.Restart()
	setPolicy("100mb", "volatile-lru") // a managed Redis's default
	// The edge finds Redis back by itself, at its own pace (a 503 until
	// then, which delivers nothing).
	testkit.Eventually(t, "the edge to find Redis back", func() bool {
		resp := call()
		if resp.Status != http.StatusCreated && resp.Status != http.StatusServiceUnavailable {
			t.Fatalf("after the restart: %d %s", resp.Status, resp.Body)
		}
		return resp.Status == http.StatusCreated
	})
	e.Logs().Wait(t, warning, `"maxmemory_policy":"volatile-lru"`, `"level":"warn"`)
	if resp := call(); resp.Status != http.StatusCreated {
		t.Fatalf("%d %s", resp.Status, resp.Body)
	}
	if n, w := count(kept), count(warning); n != 1 || w != 1 {
		t.Fatalf("%d lines that Redis keeps the keys and %d warnings, want 1 and 1", n, w)
	}
}

// TestRedisEvictionPolicyUnreadable: a Redis user that may not run INFO
// gets the edge's requests through, and one warning that the eviction
// policy and persistence could not be read, which are read again only a
// minute later; the warning holds no password.
func TestRedisEvictionPolicyUnreadable(t *testing.T) {
	srv := testkit.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	const password = "edge-password-5f3a"
	if err := rdb.Do(context.Background(), "ACL", "SETUSER", "edge", "on", ">"+password, "~*", "&*", "+@all", "-info").Err(); err != nil {
		t.Fatal(err)
	}
	e := startLimitEdge(t, "store redis redis://edge:"+password+"@"+srv.Addr()+" {\n\t\t\ttimeout 5s\n\t\t}", "idempotency")
	alice := caller{"tenant-1", "alice"}.header(t)
	for i := range 4 {
		resp := e.send(limitRequest("/communication/startPhoneAudio", `{"to":"+14255551234","operationId":"acl-`+strconv.Itoa(i)+`"}`, alice))
		if resp.Status != http.StatusCreated {
			t.Fatalf("request %d: %d %s", i, resp.Status, resp.Body)
		}
		if i == 0 {
			e.Logs().Wait(t, redisUnreadableLine, `"level":"warn"`, `"retry_in":60`, `NOPERM`)
		}
	}
	logs := e.Logs().String()
	if n := strings.Count(logs, redisUnreadableLine); n != 1 {
		t.Errorf("%d warnings that the policy could not be read, want 1 (the next reading is a minute away)", n)
	}
	if strings.Contains(logs, password) {
		t.Error("the log holds the Redis password")
	}
}

// TestBatchReleaseStoreHung: Redis stops answering after a batch reserved
// some of its parts' keys. The batch is answered 503 and not delivered,
// and the edge releases every reserved key in one round trip (each
// release failing, counted one by one) rather than one release per key,
// each after its timeout while the client waits, and the reservation
// that went unanswered in the background (failing, not counted again).
func TestBatchReleaseStoreHung(t *testing.T) {
	const reservedFirst = 10
	srv := testkit.StartRedis(t)
	proxy := newStallingProxy(t, srv.Addr(), reservedFirst)
	pool := newIdemPool(t, "primary")
	e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t),
		"store redis redis://"+proxy.addr+" {\n\t\t\ttimeout 2s\n\t\t}", "primary "+pool.Addr()), testkit.WithAdmin())
	caller := idemToken(t, "t1", "o1", "s1")
	var parts []string
	for i := range 2 * reservedFirst {
		parts = append(parts, innerPOST("/ucwa/v1/applications/1/communication/startPhoneAudio", "application/json",
			fmt.Sprintf(`{"to":"4255551234","operationId":"p-%d"}`, i)))
	}
	resp := e.send(testkit.Request{URL: "/ucwa/v1/applications/1/batch", ContentType: batchType, Header: caller, Body: batchBody(parts...)})
	if resp.Status != http.StatusServiceUnavailable || len(pool.Received()) != 0 {
		t.Fatalf("%d %s, the pool got %d requests; want 503 and none", resp.Status, resp.Body, len(pool.Received()))
	}
	// The keys Redis reserved before it stopped answering: none of them
	// was released, since every release went through the proxy.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	reserved, err := rdb.Keys(context.Background(), store.DefaultKeyPrefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(reserved) == 0 {
		t.Fatal("Redis holds no key the batch reserved")
	}
	// Failed store calls, as the edge counts them: the reservation that
	// timed out and each reserved key's release (all of them in one
	// round trip); the release of the unanswered reservation, which runs
	// in the background and fails when its own timeout ends, counts not
	// again. Counted once the store is held by no request, that release
	// included.
	want := float64(1 + len(reserved))
	metric := `caddy_ucwa_store_errors_total{on_error="closed"}`
	s := onlyRedisStore(t)
	testkit.Eventually(t, "the background release to end", func() bool { return s.drained.requests.Load() == 0 })
	if got := e.Metric(metric); got != want {
		t.Errorf("%v store calls failed, want %v (the reservation that timed out, %d releases)", got, want, len(reserved))
	}
}

// stallingProxy passes a client's commands on to Redis until it has passed
// on n scripts (EVALSHA or EVAL: the store's reservations and releases),
// then holds every command, as a Redis that hangs.
type stallingProxy struct {
	addr   string
	n      int64
	passed atomic.Int64
}

func newStallingProxy(t *testing.T, redisAddr string, n int64) *stallingProxy {
	t.Helper()
	p := &stallingProxy{n: n}
	p.addr = startRedisProxy(t, redisAddr, func(write []byte) (string, bool) {
		if p.passed.Load() >= p.n {
			return "", false
		}
		lower := bytes.ToLower(write)
		p.passed.Add(int64(bytes.Count(lower, []byte("\r\nevalsha\r\n")) + bytes.Count(lower, []byte("\r\neval\r\n"))))
		return "", true
	})
	return p
}

// startRedisProxy stands between the edge and the Redis at redisAddr and
// returns its address. It hands each write of a client (go-redis writes a
// command in one write, and the next once it has the answer) to decide:
// pass passes it on to Redis; else a reply is written back to the client
// as Redis's answer, and no reply holds the command unanswered, as a
// Redis that hangs does.
func startRedisProxy(t *testing.T, redisAddr string, decide func(write []byte) (reply string, pass bool)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	serve := func(c net.Conn) {
		defer c.Close()
		up, err := net.Dial("tcp", redisAddr)
		if err != nil {
			return
		}
		defer up.Close()
		go func() { _, _ = io.Copy(c, up) }()
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			reply, pass := decide(buf[:n])
			switch {
			case pass:
				_, err = up.Write(buf[:n])
			case reply != "":
				_, err = io.WriteString(c, reply)
			}
			if err != nil {
				return
			}
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
			go serve(c)
		}
	}()
	return ln.Addr().String()
}

// The lines of the readings of Redis's durability; the debug line ends
// each reading, after its other lines.
const (
	redisReadLine        = `"msg":"read redis's durability"`
	redisKeptLine        = `"msg":"redis does not evict the edge's keys"`
	redisPersistenceLine = `"msg":"redis does not persist the edge's keys`
	redisRestartLine     = `"msg":"redis restarted or failed over (its run_id changed)`
	redisReplicationLine = `"msg":"redis has replicas but acknowledges writes no replica has`
	redisUnreadableLine  = `"msg":"could not read the eviction policy and persistence of redis (`
)

// startRedisEdge starts an edge with idempotency in a Redis store on srv,
// logging at debug level.
func startRedisEdge(t *testing.T, srv *testkit.RedisServer) limitEdge {
	t.Helper()
	pool := testkit.NewUpstream(t)
	config := "{\n\tlog {\n\t\tlevel DEBUG\n\t}\n}\n" +
		limitCaddyfile(t, pool, "store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t}", "idempotency")
	return limitEdge{startEdge(t, "caddyfile", config, testkit.WithAdmin()), pool}
}

// redisCall sends a request with a fresh operationId through e and
// returns its status.
func redisCall(t *testing.T, e limitEdge) int {
	t.Helper()
	redisCalls++
	body := `{"to":"+14255551234","operationId":"durability-` + strconv.Itoa(redisCalls) + `"}`
	resp := e.send(limitRequest("/communication/startPhoneAudio", body, caller{"tenant-1", "alice"}.header(t)))
	if resp.Status != http.StatusCreated && resp.Status != http.StatusServiceUnavailable {
		t.Fatalf("%d %s", resp.Status, resp.Body)
	}
	return resp.Status
}

// redisCalls numbers the operationIds of redisCall.
var redisCalls int

// redisAdmin runs a command on srv through a client of the test's own.
func redisAdmin(t *testing.T, srv *testkit.RedisServer, args ...any) any {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	v, err := rdb.Do(context.Background(), args...).Result()
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return v
}

// redisRunID is the run_id of srv.
func redisRunID(t *testing.T, srv *testkit.RedisServer) string {
	t.Helper()
	info, _ := redisAdmin(t, srv, "INFO", "server").(string)
	_, id, _ := strings.Cut(info, "run_id:")
	id, _, _ = strings.Cut(id, "\r\n")
	if id == "" {
		t.Fatalf("INFO server gave no run_id:\n%s", info)
	}
	return id
}

// TestRedisPersistenceWarning: once Redis answers the config load's
// check, before any request, the edge warns, once, when Redis does not
// log its writes to an append-only file (the test's Redis: no
// persistence), and not when it does; the line that Redis keeps the keys
// says which. Requests read it again only quietly (a new connection
// may be to another server: see redisState.connected).
func TestRedisPersistenceWarning(t *testing.T) {
	for _, appendOnly := range []bool{false, true} {
		t.Run("appendonly "+map[bool]string{false: "no", true: "yes"}[appendOnly], func(t *testing.T) {
			srv := testkit.StartRedis(t)
			if appendOnly {
				redisAdmin(t, srv, "CONFIG", "SET", "appendonly", "yes")
			}
			e := startRedisEdge(t, srv)
			aof := `"aof_enabled":` + strconv.FormatBool(appendOnly)
			e.Logs().Wait(t, redisReadLine, `"quiet":false`, aof, `"logger":"http.handlers.ucwa.stores.redis"`)
			e.Logs().Wait(t, redisKeptLine, `"level":"info"`, aof)
			for range 3 {
				if status := redisCall(t, e); status != http.StatusCreated {
					t.Fatalf("%d", status)
				}
			}
			logs := e.Logs().String()
			if n := strings.Count(logs, `"quiet":false`); n != 1 {
				t.Errorf("%d full readings of redis, want the startup check's alone", n)
			}
			want := 1
			if appendOnly {
				want = 0
			}
			if n := strings.Count(logs, redisPersistenceLine); n != want {
				t.Errorf("%d warnings that Redis does not persist the keys, want %d", n, want)
			}
			if want == 1 {
				e.Logs().Wait(t, redisPersistenceLine, `"level":"warn"`, `(appendonly no)`)
			}
			if n := strings.Count(logs, redisRestartLine); n != 0 {
				t.Errorf("%d warnings that Redis restarted, want none", n)
			}
		})
	}
}

// TestRedisReplicationWarning: the edge warns, once, when Redis has a
// replica and acknowledges writes no replica has (a failover, a planned
// one too, loses its last writes), and not once its writes need a
// replica in step (min-replicas-to-write) or it has none.
func TestRedisReplicationWarning(t *testing.T) {
	for _, tc := range []struct {
		name             string
		replica, waitFor bool
		want             int
	}{
		{"a replica", true, false, 1},
		{"a replica and min-replicas-to-write", true, true, 0},
		{"no replica", false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testkit.StartRedis(t)
			if tc.replica {
				host, port, _ := strings.Cut(srv.Addr(), ":")
				redisAdmin(t, testkit.StartRedis(t), "REPLICAOF", host, port)
				testkit.Eventually(t, "the replica connected", func() bool {
					info, _ := redisAdmin(t, srv, "INFO", "replication").(string)
					return strings.Contains(info, "connected_slaves:1")
				})
			}
			if tc.waitFor {
				redisAdmin(t, srv, "CONFIG", "SET", "min-replicas-to-write", "1")
				redisAdmin(t, srv, "CONFIG", "SET", "min-replicas-max-lag", "10")
				testkit.Eventually(t, "the replica in step", func() bool {
					info, _ := redisAdmin(t, srv, "INFO", "replication").(string)
					return strings.Contains(info, "min_slaves_good_slaves:1")
				})
			}
			e := startRedisEdge(t, srv)
			for range 3 {
				if status := redisCall(t, e); status != http.StatusCreated {
					t.Fatalf("%d", status)
				}
			}
			e.Logs().Wait(t, redisReadLine, `"quiet":false`)
			if n := strings.Count(e.Logs().String(), redisReplicationLine); n != tc.want {
				t.Errorf("%d warnings that Redis acknowledges writes no replica has, want %d", n, tc.want)
			}
		})
	}
}

// TestRedisRestartWarning: the edge warns when the Redis that answers is
// another run of the server than the one it read before (another
// run_id): after an outage, and after a restart that no request saw
// fail, for go-redis dials again by itself; each time it reads the new
// server's settings again too. New connections to the same server warn
// of nothing and log nothing more at info.
func TestRedisRestartWarning(t *testing.T) {
	start := func(t *testing.T) (*testkit.RedisServer, limitEdge) {
		srv := testkit.StartRedis(t)
		e := startRedisEdge(t, srv)
		if status := redisCall(t, e); status != http.StatusCreated {
			t.Fatalf("%d", status)
		}
		e.Logs().Wait(t, redisReadLine, `"quiet":false`, `"run_id":"`+redisRunID(t, srv)+`"`)
		return srv, e
	}
	// after checks the lines of the reading after the restart from
	// before to after.
	after := func(t *testing.T, e limitEdge, before, after string) {
		t.Helper()
		// A request's reading, logged as the store's lines, as the
		// startup check's reading is.
		e.Logs().Wait(t, redisRestartLine, `"level":"warn"`, redisStoreLogger, `"run_id":"`+after+`"`, `"previous_run_id":"`+before+`"`)
		e.Logs().Wait(t, redisReadLine, `"restarted":true`, `"run_id":"`+after+`"`)
		logs := e.Logs().String()
		for msg, want := range map[string]int{redisRestartLine: 1, redisPersistenceLine: 2, redisKeptLine: 2} {
			if n := strings.Count(logs, msg); n != want {
				t.Errorf("%d lines %s, want %d", n, msg, want)
			}
		}
	}

	t.Run("after an outage", func(t *testing.T) {
		srv, e := start(t)
		before := redisRunID(t, srv)
		srv.Kill()
		if status := redisCall(t, e); status != http.StatusServiceUnavailable {
			t.Fatalf("with Redis down: %d", status)
		}
		srv.Restart()
		testkit.Eventually(t, "the edge to find Redis back", func() bool { return redisCall(t, e) == http.StatusCreated })
		after(t, e, before, redisRunID(t, srv))
	})

	t.Run("without a failed request", func(t *testing.T) {
		srv, e := start(t)
		before := redisRunID(t, srv)
		srv.Kill()
		srv.Restart()
		if status := redisCall(t, e); status != http.StatusCreated {
			t.Fatalf("after the restart: %d", status)
		}
		after(t, e, before, redisRunID(t, srv))
		if strings.Contains(e.Logs().String(), `"msg":"store failing`) {
			t.Error("the edge saw an outage: this case is about a restart it did not see fail")
		}
	})

	t.Run("new connections to the same server", func(t *testing.T) {
		srv, e := start(t)
		// Seen only by a reading made from now on.
		redisAdmin(t, srv, "CONFIG", "SET", "maxmemory-policy", "volatile-ttl")
		if n, _ := redisAdmin(t, srv, "CLIENT", "KILL", "TYPE", "normal").(int64); n == 0 {
			t.Fatal("CLIENT KILL closed none of the edge's connections")
		}
		if status := redisCall(t, e); status != http.StatusCreated {
			t.Fatalf("after the edge's connections were closed: %d", status)
		}
		e.Logs().Wait(t, redisReadLine, `"quiet":true`, `"maxmemory_policy":"volatile-ttl"`, `"restarted":false`)
		logs := e.Logs().String()
		for msg, want := range map[string]int{redisRestartLine: 0, redisPersistenceLine: 1, redisKeptLine: 1, `"msg":"store failing`: 0} {
			if n := strings.Count(logs, msg); n != want {
				t.Errorf("%d lines %s, want %d", n, msg, want)
			}
		}
	})
}

// TestRedisReadingCutByOutage: a reading of Redis that Redis going away
// cuts short, in an outage (here the reading of the first success after
// a restart, held back until Redis is down again), warns of nothing itself,
// for the outage's warning tells, and leaves the next reading due at the
// store's first success: once Redis answers again, the edge reads it at
// once and warns that it restarted, not a retry's minute later. The
// store's clock stands still, so that the outage lasts the whole test
// however slow the machine.
func TestRedisReadingCutByOutage(t *testing.T) {
	storeClock = func() int64 { return 0 }
	t.Cleanup(func() { storeClock = nil })
	var (
		hold            atomic.Bool
		held, release   = make(chan struct{}), make(chan struct{})
		started, over   atomic.Int32 // readings begun, and over
		startReadingNow = redisReadings
	)
	redisReadings = func(read func()) {
		started.Add(1)
		go func() {
			if hold.CompareAndSwap(true, false) {
				close(held)
				<-release
			}
			read()
			over.Add(1)
		}()
	}
	t.Cleanup(func() { redisReadings = startReadingNow })
	srv := testkit.StartRedis(t)
	first := redisRunID(t, srv)
	e := startRedisEdge(t, srv)
	if status := redisCall(t, e); status != http.StatusCreated {
		t.Fatalf("%d", status)
	}
	// The startup check's reading, and a quiet one if the call opened a
	// connection of its own (see redisState.connected).
	testkit.Eventually(t, "the readings of Redis before the outage to be over", func() bool {
		n := over.Load()
		return n >= 1 && n == started.Load()
	})
	before := over.Load()
	readingsOver := func(n int32) {
		t.Helper()
		testkit.Eventually(t, fmt.Sprintf("reading %d after the outage to be over", n), func() bool { return over.Load() == before+n })
	}

	srv.Kill()
	if status := redisCall(t, e); status != http.StatusServiceUnavailable {
		t.Fatalf("with Redis down: %d", status)
	}
	hold.Store(true)
	srv.Restart()
	testkit.Eventually(t, "the edge to find Redis back", func() bool { return redisCall(t, e) == http.StatusCreated })
	select {
	case <-held:
	case <-time.After(time.Minute):
		t.Fatal("the first success after the restart began no reading")
	}
	srv.Kill()
	close(release)
	readingsOver(1)
	if logs := e.Logs().String(); strings.Contains(logs, redisUnreadableLine) {
		t.Errorf("a reading cut short by the outage warned that Redis could not be read")
	}

	srv.Restart()
	last := redisRunID(t, srv)
	testkit.Eventually(t, "the edge to find Redis back again", func() bool { return redisCall(t, e) == http.StatusCreated })
	readingsOver(2)
	e.Logs().Wait(t, redisRestartLine, `"level":"warn"`, `"run_id":"`+last+`"`, `"previous_run_id":"`+first+`"`)
	logs := e.Logs().String()
	for msg, want := range map[string]int{redisUnreadableLine: 0, `"msg":"store failing`: 1, `"msg":"store answers again"`: 0} {
		if n := strings.Count(logs, msg); n != want {
			t.Errorf("%d lines %s, want %d", n, msg, want)
		}
	}
}

// TestRedisClusterSendsNoCommand: with cluster, the edge sends its
// scripts to the node of their one key and never asks the cluster for
// COMMAND. go-redis's routing policies looked every command up in
// COMMAND's reply, fetched under a process-wide lock with a context of
// its own (5s, not the store's timeout) and fetched again at every
// operation while it failed: a Redis user without COMMAND (a
// least-privilege ACL) cost each operation an extra round trip, every
// operation of the process waiting on the one before.
func TestRedisClusterSendsNoCommand(t *testing.T) {
	srv := testkit.StartRedisWith(t, testkit.RedisConfig{Cluster: true})
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	if err := rdb.Do(ctx, "ACL", "SETUSER", "edge", "on", ">edge-pw", "~*", "+@all", "-command").Err(); err != nil {
		t.Fatal(err)
	}
	e := startLimitEdge(t, "store redis redis://edge:edge-pw@"+srv.Addr()+"/0 {\n\t\t\ttimeout 5s\n\t\t\tcluster\n\t\t}",
		"idempotency", "limit calls 10 per 1m")
	alice := caller{"tenant-1", "alice"}.header(t)
	for _, id := range []string{"cluster-1", "cluster-2", "cluster-1"} {
		if resp := e.callOp(id, alice); resp.Status != http.StatusCreated {
			t.Fatalf("%s: %d %s", id, resp.Status, resp.Body)
		}
	}
	if got := e.pool.Requests.Load(); got != 2 {
		t.Errorf("the pool got %d requests, want 2", got)
	}
	stats, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(stats) {
		if strings.HasPrefix(line, "cmdstat_command:") || strings.HasPrefix(line, "cmdstat_command|") {
			t.Errorf("the edge sent COMMAND: %s", strings.TrimSpace(line))
		}
	}
}

// TestStoreUnusedWarning: a store that neither idempotency nor a limit
// uses is loaded (its settings checked) with a warning that it does
// nothing; one in use, or the default store, brings none.
func TestStoreUnusedWarning(t *testing.T) {
	const warning = `"msg":"a store is configured but nothing uses it`
	for _, tc := range []struct {
		name, config string
		warned       bool
	}{
		{"store alone", "store memory 1000", true},
		{"store and idempotency", "store memory 1000\n\t\tidempotency", false},
		{"store and a limit", "store memory 1000\n\t\tlimit calls 5 per 1h", false},
		{"no store", "default_region US", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEdge(t, "caddyfile", "127.0.0.1:{$EDGE_PORT} {\n\tucwa {\n\t\tjwt off\n\t\t"+tc.config+"\n\t}\n}\n")
			if got := strings.Contains(e.Logs().String(), warning); got != tc.warned {
				t.Errorf("warned %v, want %v:\n%s", got, tc.warned, e.Logs().String())
			}
		})
	}
}

// TestIdempotencyWithoutCallerWarning: idempotency under jwt off, where
// no request has a verified caller and every repeat is answered 409, never
// replayed, is said at startup, once; with tokens checked it is not. A
// repeat is answered 409 indeed.
func TestIdempotencyWithoutCallerWarning(t *testing.T) {
	const warning = `"msg":"idempotency with jwt off: no request has a verified caller`
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	for _, tc := range []struct {
		name, jwt string
		warned    bool
	}{
		{"jwt off", "jwt off", true},
		{"tokens checked", opsJWT, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := testkit.NewUpstream(t)
			e := startEdge(t, "caddyfile", ":EDGE_PORT {\n\tucwa {\n\t\t"+tc.jwt+"\n\t\tidempotency\n\t\tprimary "+pool.Addr()+"\n\t}\n}\n")
			if got := strings.Count(e.Logs().String(), warning); got != map[bool]int{true: 1}[tc.warned] {
				t.Fatalf("warned %d times, want %v:\n%s", got, tc.warned, e.Logs().String())
			}
			if !tc.warned {
				return
			}
			for i, want := range []int{http.StatusCreated, http.StatusConflict} {
				if got := e.postJSON(startPath, `{"to":"sip:john@contoso.com","operationId":"op-1"}`, nil).Status; got != want {
					t.Fatalf("request %d: status %d, want %d", i+1, got, want)
				}
			}
		})
	}
}

// TestMemoryStoreCallerShare: one caller sending many distinct
// operationIds holds at most its share of the memory store's entries
// (max_entries_per_caller, by default a tenth of max_entries): past it,
// its new requests are answered 429 and not delivered (on_error closed)
// or delivered without idempotency (open), while other callers' go on
// and its own repeats are still replayed; each refusal is a store error,
// warned of once a minute at most; its share comes back as its
// reservations expire. Nothing a caller holds is dropped early.
func TestMemoryStoreCallerShare(t *testing.T) {
	for _, tc := range []struct {
		onError string
		refused int   // the status of mallory's requests over her share
		pooled  int64 // the pool's requests before the window ends
	}{
		{"closed", http.StatusTooManyRequests, 3},
		{"open", http.StatusCreated, 26},
	} {
		t.Run(tc.onError, func(t *testing.T) {
			clock := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
			memoryStoreClock = clock.Now
			t.Cleanup(func() { memoryStoreClock = nil })
			e := startLimitEdge(t, "store memory 20 {\n\t\t\ton_error "+tc.onError+"\n\t\t}", "idempotency")
			fullBefore := e.Metric("caddy_ucwa_store_full_total") // of earlier tests too
			mallory := caller{"tenant-1", "mallory"}.header(t)
			alice := caller{"tenant-1", "alice"}.header(t)
			first := e.callOp("m-1", mallory)
			statuses := []int{first.Status}
			for i := 2; i <= 25; i++ {
				statuses = append(statuses, e.callOp("m-"+strconv.Itoa(i), mallory).Status)
			}
			want := slices.Repeat([]int{tc.refused}, 25)
			want[0], want[1] = http.StatusCreated, http.StatusCreated
			if !slices.Equal(statuses, want) {
				t.Fatalf("mallory's 25 operationIds: %v, want 2 delivered with her share of 20 entries, then %d", statuses, tc.refused)
			}
			if resp := e.callOp("a-1", alice); resp.Status != http.StatusCreated || resp.Header.Get(headerReplayed) != "" {
				t.Fatalf("alice, while mallory holds her share: %d %s, want 201", resp.Status, resp.Body)
			}
			if tc.refused == http.StatusTooManyRequests {
				resp := e.callOp("m-3", mallory)
				assertUCWAError(t, resp, "TooManyRequests", "", nil, false)
				if resp.Status != http.StatusTooManyRequests {
					t.Fatalf("m-3 again: %d", resp.Status)
				}
			}
			assertReplay(t, e.callOp("m-1", mallory), first)
			if got := e.pool.Requests.Load(); got != tc.pooled {
				t.Errorf("the pool got %d requests, want %d", got, tc.pooled)
			}
			refusals := 23.0
			if tc.refused == http.StatusTooManyRequests {
				refusals++
			}
			if got := e.Metric(`caddy_ucwa_store_errors_total{on_error="` + tc.onError + `"}`); got != refusals {
				t.Errorf("store errors %v, want %v", got, refusals)
			}
			if got := e.Metric("caddy_ucwa_store_full_total") - fullBefore; got != 0 {
				t.Errorf("caddy_ucwa_store_full_total went up by %v: the store had room", got)
			}
			if n := strings.Count(e.Logs().String(), `"msg":"a caller holds max_entries_per_caller`); n != 1 {
				t.Errorf("%d warnings of a caller's full share, want one within the minute", n)
			}
			clock.Advance(DefaultIdempotencyWindow)
			if resp := e.callOp("m-30", mallory); resp.Status != http.StatusCreated {
				t.Fatalf("mallory once her reservations expired: %d %s", resp.Status, resp.Body)
			}
		})
	}
}

// TestIdempotencyWindowRefusedAtLoad: a config whose window is under 1s
// (10ms, a typo for 10m) fails to load into a running Caddy, from a
// Caddyfile and from JSON, with the message naming the option and its
// minimum, and the running config goes on delivering once.
func TestIdempotencyWindowRefusedAtLoad(t *testing.T) {
	pool := testkit.NewUpstream(t)
	config := func(window string) string {
		return ":EDGE_PORT {\n\tucwa {\n\t\tjwt off\n\t\tidempotency" + window + "\n\t\tprimary " + pool.Addr() + "\n\t}\n}\n"
	}
	e := startEdge(t, "caddyfile", config(""))
	const want = "idempotency: window must be at least 1s: 10ms"
	for _, tc := range []struct{ adapter, config string }{
		{"caddyfile", config(" 10ms")},
		{"json", `{"apps":{"http":{"servers":{"edge":{"listen":[":EDGE_PORT"],"routes":[{"handle":[{"handler":"ucwa","jwt":{"off":true},` +
			`"idempotency":{"window":"10ms"},"primary":{"upstreams":[{"dial":"` + pool.Addr() + `"}]}}]}]}}}}}`},
	} {
		if err := e.LoadRefused(tc.adapter, tc.config); !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", tc.adapter, err, want)
		}
	}
	for i, want := range []int{http.StatusCreated, http.StatusConflict} {
		if got := e.postJSON(startPath, `{"to":"sip:john@contoso.com","operationId":"op-1"}`, nil).Status; got != want {
			t.Fatalf("request %d after the refused loads: status %d, want %d", i+1, got, want)
		}
	}
	if got := len(pool.Received()); got != 1 {
		t.Fatalf("the pool got %d requests, want 1", got)
	}
}

// TestStorePartialOutageLoggedOnce: one master of a Redis Cluster of two
// dies; until the cluster notices (its node-timeout; never with
// cluster-require-full-coverage no), calls whose keys hash to the live
// node succeed and the others fail. That is one outage: "store failing"
// once, and no "store answers again" while calls still fail, not a pair
// of lines at every turn. The store's clock stands still, so that no
// storeSettle passes between two failures however slow the machine.
func TestStorePartialOutageLoggedOnce(t *testing.T) {
	storeClock = func() int64 { return 0 }
	t.Cleanup(func() { storeClock = nil })
	t.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(t).HMAC))
	pool := testkit.NewUpstream(t)
	cluster := testkit.StartRedisCluster(t, 2)
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	ucwa {
		`+opsJWT+`
		default_region US
		store redis %s {
			cluster %s
			timeout 1s
			on_error open
		}
		idempotency
		primary %s
	}
}`, cluster[0].URL(), cluster[1].Addr(), pool.Addr()), testkit.WithAdmin())
	auth := http.Header{"Authorization": {callerBearer(t)}}
	for i := range 4 {
		if got := e.postJSON(startOpsPath, fmt.Sprintf(`{"to":"+14255551234","operationId":"warm-%d"}`, i), auth).Status; got != http.StatusCreated {
			t.Fatalf("warm-up %d: %d", i, got)
		}
	}
	cluster[1].Kill()
	const requests = 30
	for i := range requests {
		if got := e.postJSON(startOpsPath, fmt.Sprintf(`{"to":"+14255551234","operationId":"part-%d"}`, i), auth).Status; got != http.StatusCreated {
			t.Fatalf("request %d: %d, want 201 (on_error open)", i, got)
		}
	}
	failed := e.Metric(`caddy_ucwa_store_errors_total{on_error="open"}`)
	if failed < 1 || failed >= requests {
		t.Fatalf("%v of %d requests' store calls failed: the outage was not partial", failed, requests)
	}
	logs := e.Logs().String()
	if n := strings.Count(logs, `"msg":"store failing: `); n != 1 {
		t.Errorf("one partial outage logged 'store failing' %d times, want once", n)
	}
	if n := strings.Count(logs, `"msg":"store answers again"`); n != 0 {
		t.Errorf("'store answers again' logged %d times while calls still failed", n)
	}
}
