package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// FuzzProvision loads any JSON as the ucwa handler's config, as Caddy
// loads a config posted to its admin API (strict decoding, Provision,
// Validate, Cleanup on failure; the config's end cleans up the rest): it
// never panics nor hangs, and a config it refuses is refused with an
// error that is no runtime error. A config that loads serves a first
// request (a startPhoneAudio with an HS256 token of the
// UCWA_TEST_JWT_SECRET) without a panic: the request is answered, with
// no error returned for Caddy to answer 500, or ends soon after its
// client goes away. Once the config is cleaned up, every goroutine and
// file it started (a jwks_url fetcher, Redis's startup check, a pool's
// health checker and connections) is gone.
//
// Every network address a config names (a URL's host, a host:port, a
// health check's or lookup's port) is replaced with a loopback port
// that refuses connections, so that what a config dials fails at once
// on this machine, and a pool's pause between tries is cut to
// maxTryInterval; a config naming a file of /dev, /proc or /sys, which a
// read may never finish, is skipped. The seeds: the handler of every
// golden adapt file, of the example configs, of the README's Caddyfile
// blocks and of its JSON block, and configs of wrong types, negative,
// zero and huge numbers, empty strings and nulls in every nested object
// (provisionHandSeeds).
//
//	go test -run '^$' -fuzz FuzzProvision -fuzztime 3m -parallel 1 ./caddymodule/
func FuzzProvision(f *testing.F) {
	for _, seed := range provisionSeeds(f) {
		f.Add(seed)
	}
	for _, seed := range provisionHandSeeds {
		f.Add(seed)
	}
	load := newConfigLoader(f)
	f.Fuzz(func(t *testing.T, config string) {
		load.check(t, config)
	})
}

// configLoader loads handler configs as FuzzProvision does.
type configLoader struct {
	down, token string
}

// newConfigLoader starts the in-process Caddy whose context the configs
// are loaded in, with the UCWA_TEST_JWT_SECRET the first request's
// token is signed with.
func newConfigLoader(tb testing.TB) configLoader {
	// Quiet: a warning at every load (a pool in plain HTTP, a store
	// nothing uses) would fill the test's log in a few minutes of
	// fuzzing.
	testkit.Start(tb, "json", `{"logging":{"logs":{"default":{"level":"ERROR"}}}}`)
	tb.Setenv("UCWA_TEST_JWT_SECRET", string(testkit.Keys(tb).HMAC))
	return configLoader{
		down:  testkit.DownAddr(tb),
		token: testkit.Mint(tb, jwt.SigningMethodHS256, testkit.Keys(tb).HMAC, "", testkit.EntraClaims(time.Now().Add(time.Hour))),
	}
}

// check loads config (see FuzzProvision), serves a config that loads
// its first request, and cleans it up.
func (l configLoader) check(t *testing.T, config string) {
	raw, ok := hermeticConfig([]byte(config), l.down)
	if !ok {
		return
	}
	before := snapshotResources()
	ctx, cancel := caddy.NewContext(caddy.ActiveContext())
	mod, err := ctx.LoadModuleByID("http.handlers.ucwa", raw)
	if err == nil {
		serveFirstRequest(t, mod.(*Handler), l.token, l.down, !bytes.Contains(raw, []byte(`"dynamic_upstreams"`)))
	} else if msg := err.Error(); msg == "" || strings.Contains(msg, "runtime error") {
		t.Errorf("config refused without a clear error: %q", msg)
	}
	cancel()
	before.awaitReleased(t)
}

// serveFirstRequest sends h a startPhoneAudio with token, its Host being
// down (placeholders of the request's host name no other), from a client
// that goes away after firstRequestPatience, and checks that it is
// answered, with no error for Caddy to answer 500, unless the client
// went first. A pool that waits (lb_try_duration, a dial over QUIC to a
// port where nothing answers) holds the request until then; it must end
// soon after (at the pool's next try). With send false (dynamic
// upstreams, which look their names up in DNS) nothing is sent.
func serveFirstRequest(t *testing.T, h *Handler, token, down string, send bool) {
	if !send {
		return
	}
	reqCtx, cancel := context.WithTimeout(context.Background(), firstRequestPatience)
	defer cancel()
	req := httptest.NewRequestWithContext(reqCtx, http.MethodPost, "http://"+down+startPath, strings.NewReader(seedJSON))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Length", strconv.Itoa(len(seedJSON)))
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	req = caddyhttp.PrepareRequest(req, caddy.NewReplacer(), w, new(caddyhttp.Server))
	type served struct {
		err      error
		panicked string
	}
	done := make(chan served, 1)
	go func() {
		var s served
		defer func() {
			// http.ErrAbortHandler cuts the client's connection, as the
			// edge does to an answer a pool cut short.
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				s.panicked = fmt.Sprintf("%v\n%s", v, debug.Stack())
			}
			done <- s
		}()
		s.err = h.ServeHTTP(w, req, poolStandIn)
	}()
	var s served
	select {
	case s = <-done:
	case <-reqCtx.Done():
		select {
		case s = <-done:
		case <-time.After(hangBound):
			t.Fatalf("the first request went on for %s after its client went away:\n%s", hangBound, stacksOf("caddymodule.(*Handler).ServeHTTP"))
		}
	}
	switch {
	case s.panicked != "":
		t.Fatalf("the first request panicked: %s", s.panicked)
	case reqCtx.Err() != nil:
	case s.err != nil:
		t.Errorf("the first request returned an error, which Caddy answers with no UCWA body: %v", s.err)
	case w.Code == http.StatusInternalServerError:
		t.Errorf("the first request was answered 500: %s", w.Body)
	}
}

// firstRequestPatience is how long the client of the first request
// waits for its answer, and hangBound how long the request may go on once
// the client went away, and a config's goroutines and files after its
// cleanup: a bound for what never ends rather than a measure of time,
// which leaves the two inside the 10s the fuzzing engine gives an input.
const (
	firstRequestPatience = 250 * time.Millisecond
	hangBound            = 4 * time.Second
)

// stacksOf returns the stacks of the goroutines that run fn.
func stacksOf(fn string) string {
	var found []string
	for _, stack := range goroutineStacks() {
		if strings.Contains(stack, fn) {
			found = append(found, stack)
		}
	}
	return strings.Join(found, "\n\n")
}

// hermeticConfig returns config with every network address it names
// replaced with down (see FuzzProvision), and ok false when it names a
// file of /dev, /proc or /sys. A config that is no JSON, or whose
// strings name nothing to replace, is returned as it is.
func hermeticConfig(config []byte, down string) (out []byte, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(config))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil {
		return config, true
	}
	_, downPort, _ := net.SplitHostPort(down)
	changed := false
	ok = true
	var walk func(key string, v any) any
	walk = func(key string, v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				v[k] = walk(k, c)
			}
		case []any:
			for i, c := range v {
				v[i] = walk(key, c)
			}
		case json.Number:
			if key == "port" && string(v) != downPort {
				changed = true
				return json.Number(downPort)
			}
			if n, err := v.Int64(); key == "try_interval" && err == nil && n > int64(maxTryInterval) {
				changed = true
				return json.Number(strconv.FormatInt(int64(maxTryInterval), 10))
			}
		case string:
			for _, dir := range []string{"/dev/", "/proc/", "/sys/"} {
				if strings.Contains(v, dir) {
					ok = false
				}
			}
			if key == "port" && v != downPort {
				changed = true
				return downPort
			}
			if d, err := caddy.ParseDuration(v); key == "try_interval" && err == nil && d > maxTryInterval {
				changed = true
				return maxTryInterval.String()
			}
			if s, replaced, hermetic := hermeticAddress(v, down); !hermetic {
				ok = false
			} else if replaced {
				changed = true
				return s
			}
		}
		return v
	}
	doc = walk("", doc)
	if !ok || !changed {
		return config, ok
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, false
	}
	return out, true
}

// maxTryInterval is the longest pause between a pool's tries that
// hermeticConfig leaves: a request whose client went away ends at the
// next try (see untriedSelection.Select), which a longer pause would
// put past hangBound.
const maxTryInterval = 100 * time.Millisecond

// hermeticAddress returns s with the host of the URL or network address
// it is replaced with down; hermetic is false for a URL that cannot be
// told apart, whose placeholders may name a host.
func hermeticAddress(s, down string) (out string, replaced, hermetic bool) {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return s, false, !strings.Contains(s, "{")
		}
		if u.Host == "" || u.Host == down {
			return s, false, true
		}
		u.Host = down
		return u.String(), true, true
	}
	network, addr, found := strings.Cut(s, "/")
	if !found {
		network, addr = "", s
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" || addr == down {
		return s, false, true
	}
	if network != "" {
		return network + "/" + down, true, true
	}
	return down, true, true
}

// provisionResources are the goroutines and open files of the process.
type provisionResources struct {
	goroutines map[string]string // their stacks, by id
	files      int               // -1 where /proc/self/fd cannot be read
}

func snapshotResources() provisionResources {
	return provisionResources{goroutines: goroutineStacks(), files: openFiles()}
}

// awaitReleased waits until every goroutine started since before has
// ended and the files opened since are closed, and fails t, showing
// them, if they are not within hangBound: a config's cleanup stops what
// it started at once, and its goroutines end as soon as they run. The
// certificate storage upkeep of the in-process Caddy (certmagic's), which
// its start leaves running in the background for a few seconds, is no
// config's.
func (before provisionResources) awaitReleased(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(hangBound)
	for pause := 100 * time.Microsecond; ; pause = min(2*pause, 20*time.Millisecond) {
		now := goroutineStacks()
		var started []string
		for id, stack := range now {
			if _, ok := before.goroutines[id]; !ok && !strings.Contains(stack, "\ncreated by github.com/caddyserver/certmagic.") {
				started = append(started, stack)
			}
		}
		files := openFiles()
		if len(started) == 0 && files <= before.files {
			return
		}
		if time.Now().After(deadline) {
			slices.Sort(started)
			t.Fatalf("the config's cleanup left %d goroutines and %d files of %d open:\n%s",
				len(started), files-before.files, files, strings.Join(started, "\n\n"))
		}
		time.Sleep(pause)
	}
}

// goroutineHeader matches the first line of a goroutine's stack.
var goroutineHeader = regexp.MustCompile(`^goroutine (\d+) `)

// goroutineStacks returns the stack of every goroutine, by its id.
func goroutineStacks() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := make(map[string]string)
	for _, g := range strings.Split(string(buf), "\n\n") {
		if m := goroutineHeader.FindStringSubmatch(g); m != nil {
			stacks[m[1]] = g
		}
	}
	return stacks
}

func openFiles() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

// provisionSeeds are the handler configs the repository gives: those of
// the golden adapt files, of the example configs (in the environment
// they read) and the demo's, of the README's Caddyfile blocks and of its
// JSON block.
func provisionSeeds(tb testing.TB) []string {
	tb.Helper()
	exampleEnv(tb)
	tb.Setenv("UCWA_REDIS_PASSWORD", "secret")
	var seeds []string
	add := func(name string, adapted []byte) {
		found := ucwaHandlerJSON(tb, adapted)
		if len(found) == 0 {
			tb.Fatalf("%s: no ucwa handler", name)
		}
		for _, raw := range found {
			seeds = append(seeds, string(raw))
		}
	}
	golden, err := filepath.Glob("testdata/caddyfile_adapt/*.caddyfiletest")
	if err != nil || len(golden) == 0 {
		tb.Fatalf("no golden files: %v", err)
	}
	for _, path := range golden {
		data, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		if _, adapted, ok := strings.Cut(string(data), "\n----------\n"); ok && strings.Contains(adapted, `"handler": "ucwa"`) {
			add(path, []byte(adapted))
		}
	}
	caddyfiles, err := filepath.Glob("../examples/*/Caddyfile")
	if err != nil || len(caddyfiles) == 0 {
		tb.Fatalf("no example configs: %v", err)
	}
	caddyfiles = append(caddyfiles, "../Caddyfile")
	configs := map[string]string{}
	for _, name := range caddyfiles {
		data, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		// The demo's paths are relative to the repository's root.
		configs[name] = strings.ReplaceAll(string(data), " examples/", " ../examples/")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		tb.Fatal(err)
	}
	for i, block := range regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		configs[fmt.Sprintf("README.md Caddyfile block %d", i+1)] = block[1]
	}
	// In one order, so that a seed's number names the same config in
	// every run.
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(configs[name]), nil)
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		add(name, adapted)
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) == 0 {
		tb.Fatal("the README has no JSON block")
	}
	for i, block := range blocks {
		add(fmt.Sprintf("README.md JSON block %d", i+1), []byte(`{"handle":[`+block[1]+`]}`))
	}
	return seeds
}

// provisionHandSeeds are configs of what the files above never give:
// wrong types, negative, zero and huge numbers, empty strings and nulls,
// in every nested object.
var provisionHandSeeds = []string{
	``,
	`null`,
	`{}`,
	`[]`,
	`"jwt"`,
	`{"jwt":null}`,
	`{"jwt":{}}`,
	`{"jwt":{"off":true}}`,
	`{"jwt":{"off":false}}`,
	`{"jwt":{"off":"true"}}`,
	`{"jwt":{"off":true,"cache_size":0,"leeway":null}}`,
	`{"jwt":{"off":true,"leeway":"0s"}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"short"}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":""}}`,
	`{"jwt":{"algorithms":["none"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"}}`,
	`{"jwt":{"algorithms":[],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"}}`,
	`{"jwt":{"algorithms":[""],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"}}`,
	`{"jwt":{"algorithms":"HS256","hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}","cache_size":-1,"leeway":0}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}","cache_size":9223372036854775807,"leeway":9223372036854775807}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}","leeway":-1}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}","leeway":"-5m"}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}","cache_size":1e100}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}","issuers":[""],"audiences":[""]}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}","issuers":null,"audiences":null}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}","issuers":["{env.UCWA_UNSET_VARIABLE}"]}}`,
	`{"jwt":{"algorithms":["RS256"],"jwks_url":"https://login.example/keys","jwks_refresh":-1}}`,
	`{"jwt":{"algorithms":["RS256"],"jwks_url":"https://login.example/keys","jwks_refresh":1}}`,
	`{"jwt":{"algorithms":["RS256"],"jwks_url":"http://login.example/keys"}}`,
	`{"jwt":{"algorithms":["RS256"],"jwks_url":""}}`,
	`{"jwt":{"algorithms":["RS256"],"jwks_url":"https://"}}`,
	`{"jwt":{"algorithms":["RS256"],"jwks_url":"https://login.example/keys","jwks_file":"","public_key_files":[""]}}`,
	`{"jwt":{"algorithms":["RS256"],"public_key_files":["testdata"]}}`,
	`{"jwt":{"algorithms":["RS256"],"public_key_files":null,"jwks_file":"testdata/audit_trail.golden"}}`,
	`{"jwt":{"algorithms":["ES256"],"public_key_files":["../examples/demo/jwt-public.pem","../examples/demo/jwt-public.pem"]}}`,
	`{"jwt":{"off":true},"max_body_size":-1}`,
	`{"jwt":{"off":true},"max_body_size":1}`,
	`{"jwt":{"off":true},"max_body_size":1073741825}`,
	`{"jwt":{"off":true},"max_body_size":9223372036854775807}`,
	`{"jwt":{"off":true},"max_body_size":1.5}`,
	`{"jwt":{"off":true},"max_body_size":"64KiB"}`,
	`{"jwt":{"off":true},"max_batch_parts":-1,"max_batch_operations":-1}`,
	`{"jwt":{"off":true},"max_batch_parts":1,"max_batch_operations":9223372036854775807}`,
	`{"jwt":{"off":true},"max_batch_parts":9223372036854775807,"max_batch_operations":1}`,
	`{"jwt":{"off":true},"default_region":""}`,
	`{"jwt":{"off":true},"default_region":"us"}`,
	`{"jwt":{"off":true},"default_region":"ZZ"}`,
	`{"jwt":{"off":true},"default_region":"001"}`,
	`{"jwt":{"off":true},"default_region":null,"number_format":null}`,
	`{"jwt":{"off":true},"number_format":"E164"}`,
	`{"jwt":{"off":true},"number_format":"sip"}`,
	`{"jwt":{"off":true},"number_format":""}`,
	`{"jwt":{"off":true},"disable_phone_audio":true}`,
	`{"jwt":{"off":true},"disable_phone_audio":1}`,
	`{"jwt":{"off":true},"paths":[""]}`,
	`{"jwt":{"off":true},"paths":["/x/"]}`,
	`{"jwt":{"off":true},"paths":["/communication/startPhoneAudio2"]}`,
	`{"jwt":{"off":true},"paths":null,"operations":null}`,
	`{"jwt":{"off":true},"operations":{}}`,
	`{"jwt":{"off":true},"operations":{"":{}}}`,
	`{"jwt":{"off":true},"operations":{"startPhoneAudio":null}}`,
	`{"jwt":{"off":true},"operations":{"startphoneaudio":{"paths":["/a"]},"startPhoneAudio":{"paths":["/b"]}}}`,
	`{"jwt":{"off":true},"operations":{"batch":{"paths":["/b"]}}}`,
	`{"jwt":{"off":true},"operations":{"startPhoneAudio":{"scopes":["x"]}}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"},"operations":{"startPhoneAudio":{"scopes":[""]}}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"},"scopes":["a b"]}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"},"scopes":[]}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"},"web_tickets":"FORWARD"}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"},"web_tickets":"allow"}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"},"challenge":{"":""}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"},"challenge":{"realm":"","Realm":"x"}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"},"challenge":{"error":"x"}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"},"challenge":{"client_id":"\"\r\n"}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"},"challenge":{"realm":"{"}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"},"deny_callers":{}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"},"deny_callers":null}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"},"deny_callers":{"sub":[""],"oid":[null],"tid":["*"],"client_id":[" "],"iss":["\u0000"]}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"},"deny_callers":{"tid":["72f988bf-86f1-41af-91ab-2d7cd011db47"]}}`,
	`{"jwt":{"off":true},"deny_callers":{"sub":["a"]}}`,
	`{"jwt":{"off":true},"store":null}`,
	`{"jwt":{"off":true},"store":{}}`,
	`{"jwt":{"off":true},"store":{"backend":""}}`,
	`{"jwt":{"off":true},"store":{"backend":null}}`,
	`{"jwt":{"off":true},"store":{"backend":"Memory"}}`,
	`{"jwt":{"off":true},"store":{"backend":"file"}}`,
	`{"jwt":{"off":true},"store":[]}`,
	`{"jwt":{"off":true},"store":"memory"}`,
	`{"jwt":{"off":true},"store":{"backend":"memory","max_entries":-1}}`,
	`{"jwt":{"off":true},"store":{"backend":"memory","max_entries":9223372036854775807,"max_entries_per_caller":9223372036854775807},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"memory","max_entries":1,"max_entries_per_caller":2},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"memory","on_error":"OPEN"},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"memory","on_error":""},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"memory","on_error":"ignore"},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"memory","url":"redis://127.0.0.1"},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"redis"},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"redis","url":""},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"redis","url":"redis://127.0.0.1:6379/0"},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"redis","url":"redis://127.0.0.1:6379/99999999999"},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"redis","url":"redis://u@127.0.0.1:6379"},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"redis","url":"rediss://127.0.0.1:6379","tls":{}},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"redis","url":"redis://127.0.0.1:6379","tls":{"ca":""}},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"redis","url":"rediss://127.0.0.1:6379","tls":{"ca":"testdata/audit_trail.golden","server_name":"","insecure_skip_verify":true}},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"redis","url":"redis://127.0.0.1:6379?db=1"},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"redis","url":"redis://127.0.0.1:6379","password":"{env.UCWA_REDIS_PASSWORD}","timeout":-1,"key_prefix":"","max_entries_per_caller":-1},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"redis","url":"redis://127.0.0.1:6379","timeout":1},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"redis","url":"redis://127.0.0.1:6379","timeout":9223372036854775807},"idempotency":{"window":"1h"}}`,
	`{"jwt":{"off":true},"store":{"backend":"redis","url":"redis://127.0.0.1:6379","timeout":"10s","key_prefix":"{","on_error":"open"},"limits":[{"name":"a","count":1,"per":"1s"}]}`,
	`{"jwt":{"off":true},"store":{"backend":"redis","url":"redis://127.0.0.1:6379","sentinel_master":"m","addrs":["127.0.0.1:26379",""]},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"redis","url":"redis://127.0.0.1:6379","sentinel_master":"","addrs":[]},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"redis","url":"redis://127.0.0.1:6379","cluster":true,"addrs":["127.0.0.1:7000"]},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"redis","url":"redis://127.0.0.1:6379","cluster":true,"sentinel_master":"m"},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"redis","url":"unix:///tmp/no-redis.sock"},"idempotency":{}}`,
	`{"jwt":{"off":true},"store":{"backend":"memory"},"idempotency":null}`,
	`{"jwt":{"off":true},"idempotency":{}}`,
	`{"jwt":{"off":true},"idempotency":{"window":0}}`,
	`{"jwt":{"off":true},"idempotency":{"window":-1}}`,
	`{"jwt":{"off":true},"idempotency":{"window":1}}`,
	`{"jwt":{"off":true},"idempotency":{"window":"1m"}}`,
	`{"jwt":{"off":true},"idempotency":{"window":9223372036854775807}}`,
	`{"jwt":{"off":true},"idempotency":{"window":"ten minutes"}}`,
	`{"jwt":{"off":true},"idempotency":true}`,
	`{"jwt":{"off":true},"limits":null}`,
	`{"jwt":{"off":true},"limits":[]}`,
	`{"jwt":{"off":true},"limits":[null]}`,
	`{"jwt":{"off":true},"limits":[{}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"","count":1,"per":"1s"}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"a","count":0,"per":"1s"}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"a","count":-1,"per":"1s"}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"a","count":1,"per":-1}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"a","count":1,"per":999999999}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"a","count":9223372036854775807,"per":9223372036854775807}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"a","count":1000000,"per":"1s"}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"a","count":1,"per":"1s"},{"name":"a","count":1,"per":"1s"}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"a","count":1,"per":"1s","key":""}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"a","count":1,"per":"1s","key":"{"}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"a","count":1,"per":"1s","key":"{}"}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"a","count":1,"per":"1s","key":"{http.ucwa.pool}"}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"a","count":1,"per":"1s","key":"{env.UCWA_UNSET_VARIABLE}"}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"a","count":1,"per":"1s","key":"global"}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"a","count":1,"per":"1s","key":"{http.request.header.X-Tenant}|{http.vars.client_ip}"}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"a","count":1,"per":"1s","applies_to":""}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"a","count":1,"per":"1s","applies_to":"INTERNATIONAL"}]}`,
	`{"jwt":{"off":true},"limits":[{"name":"a","count":1,"per":"1s","applies_to":"premium"}]}`,
	`{"jwt":{"off":true},"limits":{"name":"a","count":1,"per":"1s"}}`,
	`{"jwt":{"off":true},"destinations":null}`,
	`{"jwt":{"off":true},"destinations":{}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"mode":"report"}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"mode":""}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"mode":"audit"}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"allow_regions":[],"deny_regions":[""],"deny_types":[],"allow":[],"deny":[]}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"allow_regions":["US"],"deny_regions":["US"]}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"allow_regions":["XX","001"]}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"deny_types":["unknown","premium","mobile"]}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"allow":["+"],"deny":["+1900","","tel:+1","sip:a@b"]}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"sip_domains":["","*","*.","contoso.com"]}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"max_extension_digits":-1}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"max_extension_digits":0}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"max_extension_digits":9223372036854775807}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"max_extension_digits":null,"premium_short_codes":""}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"premium_short_codes":"allow"}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"premium_short_codes":"maybe"}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"outside_line":["9"]}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"outside_line":["","+","99999999999999999999"]}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"emergency":[]}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"emergency":["911",""]}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"emergency":["+1 425 555 0100","abc"]}}`,
	`{"jwt":{"off":true},"destinations":{"emergency_calls":"emergency_numbers"}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"emergency_calls":"any"}}`,
	`{"jwt":{"off":true},"default_region":"US","destinations":{"emergency_calls":"none"}}`,
	`{"jwt":{"off":true},"destinations":[]}`,
	`{"jwt":{"off":true},"expect_continue_after_idle":-1}`,
	`{"jwt":{"off":true},"expect_continue_after_idle":0,"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}]}}`,
	`{"jwt":{"off":true},"expect_continue_after_idle":9223372036854775807,"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}]}}`,
	`{"jwt":{"off":true},"expect_continue_after_idle":null}`,
	`{"jwt":{"off":true},"primary":null,"backup":null}`,
	`{"jwt":{"off":true},"primary":{}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[]}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":null}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[null]}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{}]}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":""}]}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1"}]}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:0"}]}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:1-3"}]}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"unix//tmp/no-pool.sock"}]}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"{http.request.host}:443"}]}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001","max_requests":-1}]}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}]},"backup":{}}`,
	`{"jwt":{"off":true},"backup":{"upstreams":[{"dial":"127.0.0.1:9002"}]}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}]},"backup":{"upstreams":[{"dial":"127.0.0.1:9002"}]}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"load_balancing":{"selection_policy":{"policy":"first"},"try_duration":-1,"try_interval":-1,"retries":-1}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"load_balancing":{"try_duration":9223372036854775807,"try_interval":1}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"load_balancing":{"retry_match":[{"method":["POST"]}]}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"load_balancing":{"selection_policy":{"policy":"nope"}}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"health_checks":{"passive":{"fail_duration":-1,"max_fails":-1,"unhealthy_latency":-1}}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"health_checks":{"active":{"uri":"/","interval":1,"timeout":1,"port":80}}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"health_checks":{"active":{"uri":"http://pool.example/health","upstream":"pool.example:443"}}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"handle_response":[{}]}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"rewrite":{"method":"GET"}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"request_buffers":-1}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"headers":{"request":{"set":{"X-Original-URL":["/x"]}}}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"headers":{"request":{"add":null,"set":null,"delete":[""]}}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"transport":null}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"transport":{}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"transport":{"protocol":"fastcgi"}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"transport":{"protocol":"http","versions":["3"]}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"transport":{"protocol":"http","versions":["2"],"tls":{}}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"transport":{"protocol":"http","versions":["h2c","2"]}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"transport":{"protocol":"http","versions":[]}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"transport":{"protocol":"http","keep_alive":{"enabled":false,"idle_timeout":-1}}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"transport":{"protocol":"http","keep_alive":null,"expect_continue_timeout":-1,"dial_timeout":-1,"response_header_timeout":-1}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"transport":{"protocol":"http","tls":{"root_ca_pem_files":["testdata/audit_trail.golden"]}}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"transport":{"protocol":"http","forward_proxy_url":"http://proxy.example:3128"}}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}],"transport":{"protocol":"http","resolver":{"addresses":["192.0.2.1:53"]}}}}`,
	`{"jwt":{"off":true},"primary":{"dynamic_upstreams":{"source":"a","name":"pool.example","port":"443"}}}`,
	`{"jwt":{"off":true},"primary":{"dynamic_upstreams":{"source":"srv","name":"_ucwa._tcp.pool.example"}}}`,
	`{"jwt":{"off":true},"primary":{"dynamic_upstreams":{"source":"nope"}}}`,
	`{"jwt":{"off":true},"primary":{"dynamic_upstreams":null}}`,
	`{"jwt":{"off":true},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}]},"store":{"backend":"memory"},"idempotency":{"window":"10m"},"limits":[{"name":"calls","count":20,"per":"1h"}],"default_region":"US","destinations":{"allow_regions":["US","CA"]}}`,
	`{"jwt":{"algorithms":["HS256"],"hmac_secret":"{env.UCWA_TEST_JWT_SECRET}"},"primary":{"upstreams":[{"dial":"127.0.0.1:9001"}]},"store":{"backend":"memory"},"idempotency":{},"limits":[{"name":"calls","count":1,"per":"1h"},{"name":"tenant","count":1,"per":"1h","key":"{http.ucwa.tid}"}],"default_region":"US","destinations":{"allow_regions":["US"]}}`,
	`{"jwt":{"off":true},"handler":"ucwa"}`,
	`{"jwt":{"off":true},"unknown":1}`,
	`{"jwt":{"off":true},"JWT":{"off":false}}`,
	`{"jwt":{"off":true},"jwt":{"off":false}}`,
	`{"jwt":{"off":true}} {}`,
	`{"jwt":{"off":true}`,
}
