package testkit

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { Main(m) }

// TestPortReserved: a reserved port refuses connections and cannot be
// taken by a plain listener, yet Listen (SO_REUSEPORT, as Caddy) binds it.
func TestPortReserved(t *testing.T) {
	port := Port(t)
	if c, err := net.Dial("tcp", Addr(port)); err == nil {
		c.Close()
		t.Fatal("a connection to a reserved port was accepted")
	}
	if ln, err := net.Listen("tcp", Addr(port)); err == nil {
		ln.Close()
		t.Fatal("a plain listener took a reserved port")
	}
	if n, err := listeners(port); err != nil || n[port] != 0 {
		t.Fatalf("%d listeners (%v) on a reserved port nothing listens on", n[port], err)
	}
	ln, err := Listen(port)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if n, err := listeners(port); err != nil || n[port] != 1 {
		t.Fatalf("%d listeners (%v), want 1", n[port], err)
	}
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", Addr(port))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestFreePort: a free port can be bound by a listener that does not
// set SO_REUSEPORT, as a reserved one cannot.
func TestFreePort(t *testing.T) {
	ln, err := net.Listen("tcp", Addr(FreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}

// TestStartAndReload: the config runs when Start returns, on loopback
// ports named in it; Load keeps the ports; logs are captured.
func TestStartAndReload(t *testing.T) {
	c := Start(t, "caddyfile", `:SITE_PORT {
	log
	respond "one"
}`)
	if r := Send(t, c.Client(), Request{URL: c.URL("SITE_PORT", "/")}); r.Status != 200 || r.Body != "one" {
		t.Fatalf("%d %q", r.Status, r.Body)
	}
	line := c.Logs().Wait(t, `"handled request"`, `"status":200`)
	if !strings.Contains(line, `"uri":"/"`) {
		t.Errorf("access log line %s", line)
	}
	port := c.Port("SITE_PORT")
	c.Load("json", `{"apps":{"http":{"servers":{"s":{"listen":[":SITE_PORT"],"routes":[{"handle":[{"handler":"static_response","body":"two"}]}]}}}}}`)
	if c.Port("SITE_PORT") != port {
		t.Fatal("Load changed the port")
	}
	if r := Send(t, c.Client(), Request{URL: c.URL("SITE_PORT", "/")}); r.Body != "two" {
		t.Fatalf("after Load: %d %q", r.Status, r.Body)
	}
}

// TestLogsOfTheTestBefore: a line that a module of a test before logs
// after that test ended (a goroutine of its config, late) is not in the
// Logs of the test that runs Caddy now; a line of the running config is.
func TestLogsOfTheTestBefore(t *testing.T) {
	const config = ":SITE_PORT {\n\trespond 204\n}"
	var before *zap.Logger
	t.Run("before", func(t *testing.T) {
		Start(t, "caddyfile", config)
		before = caddy.ActiveContext().Logger(captureWriter{})
	})
	t.Run("now", func(t *testing.T) {
		c := Start(t, "caddyfile", config)
		before.Warn("a late line of the test before")
		caddy.ActiveContext().Logger(captureWriter{}).Info("a line of this test")
		if c.Logs().Wait(t, "a line of this test"); len(c.Logs().Lines("a late line")) != 0 {
			t.Errorf("the test's Logs hold a line of the test before:\n%s", c.Logs())
		}
	})
}

// TestAdminAndMetrics: WithAdmin serves the admin endpoint on a port of
// its own.
func TestAdminAndMetrics(t *testing.T) {
	c := Start(t, "caddyfile", ":SITE_PORT {\n\trespond 204\n}", WithAdmin())
	Send(t, c.Client(), Request{URL: c.URL("SITE_PORT", "/")})
	if m := c.Metrics(); !strings.Contains(m, "caddy_") {
		t.Fatalf("/metrics: %.200s", m)
	}
	if r := Send(t, c.Client(), Request{URL: c.AdminURL("/config/admin/config/persist")}); r.Status != 200 || strings.TrimSpace(r.Body) != "false" {
		t.Fatalf("persist: %d %q", r.Status, r.Body)
	}
}

// TestCaddyProcess: a child process serves its config, refuses
// connections once killed, and serves again on the same port after
// Restart.
func TestCaddyProcess(t *testing.T) {
	p := StartCaddyProcess(t, "caddyfile", ":SITE_PORT {\n\trespond \"child\"\n}")
	if r := Send(t, p.Client(), Request{URL: p.URL("SITE_PORT", "/")}); r.Body != "child" {
		t.Fatalf("%d %q", r.Status, r.Body)
	}
	p.Kill()
	if _, err := Do(p.Client(), Request{URL: p.URL("SITE_PORT", "/")}); err == nil {
		t.Fatal("a killed process answered")
	}
	p.Restart()
	if r := Send(t, p.Client(), Request{URL: p.URL("SITE_PORT", "/")}); r.Body != "child" {
		t.Fatalf("after Restart: %d %q", r.Status, r.Body)
	}
}

// TestPoolKillRestart: a killed pool refuses connections; restarted, it
// answers on the same address.
func TestPoolKillRestart(t *testing.T) {
	p := NewPool(t, "p", AnswerCreated)
	client := NewClient(t)
	if r := Send(t, client, Request{URL: "http://" + p.Addr() + "/x", Body: `{"operationId":"a"}`}); r.Status != http.StatusCreated {
		t.Fatal(r.Status)
	}
	p.Kill()
	client.CloseIdleConnections()
	if _, err := Do(client, Request{URL: "http://" + p.Addr() + "/x"}); err == nil {
		t.Fatal("a killed pool answered")
	}
	p.Restart(t)
	Send(t, client, Request{URL: "http://" + p.Addr() + "/x", Body: `{"operationId":"b"}`})
	if got := strings.Join(p.OperationIDs(), ","); got != "a,b" {
		t.Fatalf("operationIds %q", got)
	}
}

// TestRedisRestartWaitsForItsPort: a Redis restarted while something
// else still listens on its port (a child the killed server forked)
// tries the port again, and starts once that lets go of it.
func TestRedisRestartWaitsForItsPort(t *testing.T) {
	srv := StartRedis(t)
	srv.Kill()
	ln, err := net.Listen("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	restarted := make(chan struct{})
	defer close(restarted)
	go func() {
		// Let go once the restart found the port taken.
		defer ln.Close()
		for {
			if log, _ := os.ReadFile(srv.logPath); bytes.Contains(log, []byte("Address already in use")) {
				return
			}
			select {
			case <-restarted:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	srv.Restart()
	if _, err := srv.do([]string{"PING"}); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
}

// TestPoolKillAfterAnswer: a request sent the moment after Kill returns
// finds no kept-alive connection to reuse and is refused (a dial
// error), even when Kill is called as soon as the client read the answer
// before it, before net/http marked the connection idle: the request is
// never written on a connection the pool is closing, which a client
// could not tell from one the pool received. Many rounds, since the
// moment is a race.
func TestPoolKillAfterAnswer(t *testing.T) {
	for round := range 200 {
		p := NewUpstream(t)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		resp, err := client.Post("http://"+p.Addr()+"/x", "text/plain", strings.NewReader("a"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		p.Kill()
		_, err = client.Post("http://"+p.Addr()+"/x", "text/plain", strings.NewReader("b"))
		var opErr *net.OpError
		if !errors.As(err, &opErr) || opErr.Op != "dial" {
			t.Fatalf("round %d: a request after Kill: %v, want a dial error", round, err)
		}
		client.CloseIdleConnections()
	}
}
