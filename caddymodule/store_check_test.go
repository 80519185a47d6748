package caddymodule

import (
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// The lines of the startup check of Redis.
const (
	redisCheckWarning       = `"msg":"redis did not answer the edge's check at startup (PING): `
	redisScriptCheckWarning = `"msg":"redis answers but refused to run the edge's scripts at its check at startup `
	redisAnswersLine        = `"msg":"redis answers"`
	redisCheckStopped       = `"msg":"startup check of redis stopped: the config was unloaded"`
	redisStoreLogger        = `"logger":"http.handlers.ucwa.stores.redis"`
	redisTwoPasswordsLine   = `"msg":"a password is given in the URL and as password: password is used, the URL's is not"`
)

// redisCheckConfig is a debug-level config of one handler whose Redis
// store is at url, with the given block.
func redisCheckConfig(t *testing.T, url string, block ...string) string {
	pool := testkit.NewUpstream(t)
	return "{\n\tlog {\n\t\tlevel DEBUG\n\t}\n}\n" +
		limitCaddyfile(t, pool, "store redis "+url+" {\n\t\t\t"+strings.Join(block, "\n\t\t\t")+"\n\t\t}", "idempotency")
}

// TestRedisStartupCheck: a config whose Redis refuses the store's
// password, cannot be reached, speaks no TLS to a rediss URL or does not
// answer is warned of when it is loaded, with no request: one warning of
// the store's logger, naming the address and the kind of failure (never
// the password) and what requests will get by on_error. A Redis that
// answers logs a debug line only.
func TestRedisStartupCheck(t *testing.T) {
	const password = "s3cret-pw"
	const wrong = "not-the-pw"
	for _, tc := range []struct {
		name   string
		config func(t *testing.T) (url string, block []string, addr string)
		cause  string // "": no warning
		open   bool
	}{
		{"right password", func(t *testing.T) (string, []string, string) {
			srv := testkit.StartRedisWith(t, testkit.RedisConfig{Password: password})
			return "redis://" + srv.Addr() + "/0", []string{"password " + password}, srv.Addr()
		}, "", false},
		{"a wrong password in the URL, the right one as password", func(t *testing.T) (string, []string, string) {
			srv := testkit.StartRedisWith(t, testkit.RedisConfig{Password: password})
			return "redis://:" + wrong + "@" + srv.Addr() + "/0", []string{"password " + password}, srv.Addr()
		}, "", false},
		{"wrong password", func(t *testing.T) (string, []string, string) {
			srv := testkit.StartRedisWith(t, testkit.RedisConfig{Password: password})
			return "redis://" + srv.Addr() + "/0", []string{"password " + wrong}, srv.Addr()
		}, "auth", false},
		{"wrong password, on_error open", func(t *testing.T) (string, []string, string) {
			srv := testkit.StartRedisWith(t, testkit.RedisConfig{Password: password})
			return "redis://:" + wrong + "@" + srv.Addr() + "/0", []string{"on_error open"}, srv.Addr()
		}, "auth", true},
		{"no password", func(t *testing.T) (string, []string, string) {
			srv := testkit.StartRedisWith(t, testkit.RedisConfig{Password: password})
			return "redis://" + srv.Addr() + "/0", nil, srv.Addr()
		}, "auth", false},
		{"connection refused", func(t *testing.T) (string, []string, string) {
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testkit.FreePort(t)))
			return "redis://" + addr + "/0", nil, addr
		}, "connection refused", false},
		{"a certificate of an unknown CA", func(t *testing.T) (string, []string, string) {
			srv := testkit.StartRedisWith(t, testkit.RedisConfig{TLS: true})
			return srv.URL(), nil, srv.Addr()
		}, "tls", false},
		{"sentinels that know no such master", func(t *testing.T) (string, []string, string) {
			sentinel := testkit.StartRedisSentinel(t, testkit.StartRedis(t), "edge")
			return "redis://" + sentinel.Addr() + "/0", []string{"sentinel other"}, sentinel.Addr()
		}, "unknown master", false},
		{"no answer", func(t *testing.T) (string, []string, string) {
			srv := testkit.StartRedis(t)
			srv.Freeze()
			t.Cleanup(srv.Thaw)
			// A Redis that never answers times the check out whatever
			// it is given: the store's timeout rather than 5s.
			least := redisCheckLeast
			redisCheckLeast = 0
			t.Cleanup(func() { redisCheckLeast = least })
			return "redis://" + srv.Addr() + "/0", nil, srv.Addr()
		}, "timeout", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, block, addr := tc.config(t)
			if tc.cause != "timeout" {
				// The default timeout (100ms) can run out on a loaded
				// machine before a TLS handshake or AUTH is answered,
				// and the check then rightly reports a timeout.
				block = append(block, "timeout 5s")
			}
			e := startEdge(t, "caddyfile", redisCheckConfig(t, url, block...))
			// Two passwords are said at startup: password is the one used.
			twoPasswords := strings.Contains(url, "@") && slices.ContainsFunc(block, func(l string) bool { return strings.HasPrefix(l, "password ") })
			assertWarnedOnce(t, e.Logs(), redisTwoPasswordsLine, twoPasswords)
			noPassword := func() {
				if logs := e.Logs().String(); strings.Contains(logs, password) || strings.Contains(logs, wrong) {
					t.Errorf("a password is in the log:\n%s", logs)
				}
			}
			addrs := `"addrs":["` + addr + `"]`
			if tc.cause == "" {
				e.Logs().Wait(t, redisAnswersLine, redisStoreLogger, `"level":"debug"`, addrs)
				if logs := e.Logs().String(); strings.Contains(logs, redisCheckWarning) {
					t.Errorf("warned of a Redis that answers:\n%s", logs)
				}
				noPassword()
				return
			}
			then := "answered 503"
			if tc.open {
				then = "go on without it"
			}
			e.Logs().Wait(t, redisCheckWarning, redisStoreLogger, `"level":"warn"`, addrs, `"cause":"`+tc.cause+`"`, then)
			logs := e.Logs().String()
			if n := strings.Count(logs, redisCheckWarning); n != 1 {
				t.Errorf("%d warnings, want 1:\n%s", n, logs)
			}
			noPassword()
		})
	}
}

// TestRedisStartupCheckRedissToPlainPort: a rediss URL to a port that
// serves Redis without TLS (a scheme typed for the other) gets no answer
// to its TLS handshake, which the check can tell from no Redis answering
// only by the URL: its timeout warning then says what to look at
// ("hint"), and a redis:// URL's timeout, a Redis that does not answer,
// says nothing of TLS.
func TestRedisStartupCheckRedissToPlainPort(t *testing.T) {
	least := redisCheckLeast
	redisCheckLeast = 0 // the store's timeout, 100ms, not 5s
	t.Cleanup(func() { redisCheckLeast = least })
	hint := `"hint":"the URL is rediss: a port that serves Redis without TLS never answers the TLS handshake`

	t.Run("rediss to a port without TLS", func(t *testing.T) {
		plain := testkit.StartRedis(t)
		e := startEdge(t, "caddyfile", redisCheckConfig(t, "rediss://"+plain.Addr()+"/0"))
		e.Logs().Wait(t, redisCheckWarning, redisStoreLogger, `"level":"warn"`, `"cause":"timeout"`, hint)
	})
	t.Run("redis that does not answer", func(t *testing.T) {
		frozen := testkit.StartRedis(t)
		frozen.Freeze()
		t.Cleanup(frozen.Thaw)
		e := startEdge(t, "caddyfile", redisCheckConfig(t, "redis://"+frozen.Addr()+"/0"))
		e.Logs().Wait(t, redisCheckWarning, redisStoreLogger, `"cause":"timeout"`)
		if logs := e.Logs().String(); strings.Contains(logs, `"hint"`) {
			t.Errorf("a redis:// URL's timeout hints at TLS:\n%s", logs)
		}
	})
}

// TestRedisStartupCheckStoppedOnUnload: a check still waiting for Redis
// when its config is unloaded warns of nothing once Redis answers.
func TestRedisStartupCheckStoppedOnUnload(t *testing.T) {
	srv := testkit.StartRedisWith(t, testkit.RedisConfig{Password: "s3cret-pw"})
	srv.Freeze()
	t.Cleanup(srv.Thaw)
	// A timeout of an hour keeps the check waiting; the window must hold
	// 10 of them (see redisWindowTimeouts).
	config := func(url string, block ...string) string {
		return strings.Replace(redisCheckConfig(t, url, block...), "\n\t\tidempotency\n", "\n\t\tidempotency 10h\n", 1)
	}
	e := startEdge(t, "caddyfile", config("redis://:wrong@"+srv.Addr()+"/0", "timeout 1h"))
	e.Load("caddyfile", config("redis://"+srv.Addr()+"/0", "timeout 1h", "password s3cret-pw"))
	srv.Thaw()
	e.Logs().Wait(t, redisCheckStopped)
	e.Logs().Wait(t, redisAnswersLine)
	if logs := e.Logs().String(); strings.Contains(logs, redisCheckWarning) {
		t.Errorf("the unloaded config's check warned:\n%s", logs)
	}
}

// TestRedisStartupCheckOutlastsStoreTimeout: the startup check gives
// Redis the larger of the store's timeout and 5s, not the store's
// timeout alone (100ms by default, which a first connection over TLS to
// a remote Redis may take though Redis is fine): a Redis that answers only
// after a request's store operation has run out of that timeout (a frozen
// redis-server, thawed once the edge has answered the request 503) is
// not warned of, and the check logs that it answers. The load did not
// wait for the check: the edge answered while Redis was frozen.
func TestRedisStartupCheckOutlastsStoreTimeout(t *testing.T) {
	srv := testkit.StartRedis(t)
	srv.Freeze()
	t.Cleanup(srv.Thaw)
	e := startEdge(t, "caddyfile", redisCheckConfig(t, "redis://"+srv.Addr()+"/0"))
	alice := caller{"tenant-1", "alice"}.header(t)
	resp := e.send(limitRequest("/communication/startPhoneAudio", `{"to":"+14255551234","operationId":"op-1"}`, alice))
	if resp.Status != http.StatusServiceUnavailable {
		t.Fatalf("a request while Redis is frozen: %d %s, want 503 (its store operation timed out)", resp.Status, resp.Body)
	}
	if logs := e.Logs().String(); strings.Contains(logs, redisCheckWarning) {
		t.Fatalf("warned within the store's timeout:\n%s", logs)
	}
	srv.Thaw()
	e.Logs().Wait(t, redisAnswersLine, redisStoreLogger, `"addrs":["`+srv.Addr()+`"]`)
	if logs := e.Logs().String(); strings.Contains(logs, redisCheckWarning) {
		t.Errorf("warned of a Redis that answered:\n%s", logs)
	}
}
