package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

// childEnv, when set, makes Main run Caddy instead of the tests.
const childEnv = "UCWA_TESTKIT_CADDY_CHILD"

// Main runs a package's tests, or, in a child process that
// StartCaddyProcess started, Caddy itself: the test binary then is Caddy
// with the standard modules and whatever the package's tests link in (the
// edge, the emulator). A package whose tests start Caddy processes calls
// it from TestMain:
//
//	func TestMain(m *testing.M) { testkit.Main(m) }
func Main(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		caddycmd.Main() // exits
		return
	}
	os.Exit(m.Run())
}

// RunCaddyCommand runs this test binary as the caddy command (see Main)
// with args, such as a subcommand that talks to a running Caddy's admin
// endpoint, and returns what it wrote to stdout and to stderr, and its
// exit code. A command still running after two minutes is killed: a
// bound for a hang, not a measure.
func RunCaddyCommand(t testing.TB, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = childEnviron(t.TempDir())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil && !errors.As(err, new(*exec.ExitError)) {
		t.Fatalf("running caddy %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("caddy %s did not end within two minutes", strings.Join(args, " "))
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// childEnviron is the environment of this test binary run as Caddy, with
// home for its home and config directories.
func childEnviron(home string) []string {
	// A child built with the race detector sleeps a second as it exits
	// (GORACE's atexit_sleep_ms, 1000 by default) for other goroutines'
	// race reports to end, which each Stop would wait out; its reports
	// still go to its output.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	return append(os.Environ(), childEnv+"=1", "HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_DATA_HOME="+home, "GORACE="+gorace)
}

// Process is a Caddy child process: this test binary run again as Caddy
// (see Main) on a config of the test. Its ports stay reserved for the
// whole test, so that a killed process's ports refuse connections and a
// restarted one listens on the same ones.
type Process struct {
	endpoints
	workDir string
	config  string // the JSON path
	logPath string
	client  *http.Client
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
}

// StartCaddyProcess runs config (adapter "caddyfile" or "json") in a Caddy
// child process and returns once its config is loaded and its listeners
// accept connections. Port names are substituted, and settings forced, as
// for Start; the child's output goes to a file shown when the test fails.
// The process is killed when the test ends.
func StartCaddyProcess(t testing.TB, adapter, config string, options ...Option) *Process {
	t.Helper()
	var s settings
	for _, o := range options {
		o(&s)
	}
	dir := t.TempDir()
	p := &Process{
		endpoints: endpoints{t: t, ports: map[string]int{}},
		workDir:   s.workDir,
		config:    filepath.Join(dir, "caddy.json"),
		logPath:   filepath.Join(dir, "caddy.log"),
		client:    NewClient(t),
	}
	var warnings strings.Builder
	cfg, err := p.prepare(adapter, config, s, filepath.Join(dir, "data"), map[string]any{"output": "stderr"}, func(msg string) { warnings.WriteString(msg + "\n") })
	if err != nil {
		t.Fatal(err)
	}
	WriteFile(t, dir, "caddy.log", []byte(warnings.String()))
	WriteFile(t, dir, "caddy.json", cfg)
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			if len(b) > shownLogBytes {
				b = append([]byte("[...]"), b[len(b)-shownLogBytes:]...)
			}
			t.Logf("Caddy child process log (%s):\n%s", p.logPath, b)
		}
	})
	p.Restart()
	return p
}

// Restart starts the process (again, after Kill) and returns once its
// config is loaded and listening.
func (p *Process) Restart() {
	t := p.t
	t.Helper()
	if p.cmd != nil {
		t.Fatal("the Caddy child process runs already")
	}
	// Caddy tells a service manager that its config runs (sd_notify
	// READY=1, after its listeners are bound) or that loading failed
	// (STATUS=<error> first): the test listens as the service manager.
	sockDir, err := os.MkdirTemp("", "testkit") // short: a socket path has at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sockPath := filepath.Join(sockDir, "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	messages := make(chan string, 8)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := notify.Read(buf)
			if err != nil {
				close(messages)
				return
			}
			messages <- string(buf[:n])
		}
	}()

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	home := filepath.Dir(p.config)
	cmd := exec.Command(self, "run", "--config", p.config) // JSON needs no adapter
	cmd.Env = append(childEnviron(home), "NOTIFY_SOCKET="+sockPath)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = p.workDir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(p.exited)

	deadline := time.NewTimer(2 * time.Minute) // a bound for a child that hangs, not a measure
	defer deadline.Stop()
	for {
		select {
		case msg, ok := <-messages:
			switch {
			case !ok:
				t.Fatal("the notify socket failed")
			case strings.HasPrefix(msg, "STATUS="):
				p.Kill()
				t.Fatalf("the Caddy child process could not load its config: %s", strings.TrimPrefix(msg, "STATUS="))
			case strings.Contains(msg, "READY=1"):
				p.client.CloseIdleConnections()
				return
			}
		case <-p.exited:
			p.cmd = nil
			t.Fatalf("the Caddy child process exited before its config ran: %s", cmd.ProcessState)
		case <-deadline.C:
			p.Kill()
			t.Fatal("the Caddy child process did not load its config within two minutes")
		}
	}
}

// AwaitReload returns once a config change made through the process's
// admin API (which answers once the new config runs) has closed the old
// config's listeners, so that no new connection reaches one of them and
// is dropped.
func (p *Process) AwaitReload() {
	p.t.Helper()
	p.awaitHandover()
	p.client.CloseIdleConnections()
}

// Stop stops the process as a service manager does (SIGTERM: Caddy
// stops its config and exits) and waits until it is gone.
func (p *Process) Stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited
	p.cmd = nil
	p.client.CloseIdleConnections()
}

// Kill kills the process at once, as a crash would, and waits until it is
// gone. Its ports refuse connections until Restart.
func (p *Process) Kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
	p.client.CloseIdleConnections()
}

// Client is the test's HTTP client for this process (see NewClient).
func (p *Process) Client() *http.Client { return p.client }

// Log is what the process wrote so far (its Caddy logs).
func (p *Process) Log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(reading the log: %v)", err)
	}
	return string(b)
}

// WaitLog waits until the process has logged a line that contains every
// one of parts, and returns it; the test fails if none comes within a
// minute. The child writes its log to a file, which is read again every
// few milliseconds.
func (p *Process) WaitLog(t testing.TB, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		for line := range strings.Lines(p.Log()) {
			if containsAll(line, parts) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Caddy process logged no line with %q", parts)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
