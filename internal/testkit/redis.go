package testkit

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig says how StartRedisWith starts redis-server. The zero value
// is a plain server: no password, no TLS, no cluster.
type RedisConfig struct {
	// Password is given to --requirepass; URL carries it.
	Password string

	// TLS serves TLS only (no plain port), with a certificate for
	// 127.0.0.1 and localhost signed by a CA made for this server; CAFile
	// names the CA. Clients need not present a certificate.
	TLS bool

	// Cluster starts a one-node Redis Cluster that owns every slot, and
	// waits until the cluster reports cluster_state:ok.
	Cluster bool

	// clusterSlots are the slots a Cluster node owns, first and last:
	// all of them when both are 0 (see StartRedisCluster).
	clusterSlots [2]int
}

// RedisServer is a redis-server process started for one test, listening on
// a free loopback port, with persistence off, in the test's temporary
// directory. It is stopped when the test ends.
type RedisServer struct {
	t       testing.TB
	cfg     RedisConfig
	dir     string
	args    []string // everything but the ports
	port    int
	busPort int // cluster bus; 0 when not a cluster
	tls     *tls.Config
	caFile  string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// redisStartAttempts bounds how many free ports StartRedis tries when
// another process takes the chosen one before redis-server binds it.
const redisStartAttempts = 5

// redisReadyWithin bounds how long a starting redis-server may take to
// answer PING before the test fails.
const redisReadyWithin = 20 * time.Second

// StartRedis starts a plain redis-server; see StartRedisWith.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	return StartRedisWith(t, RedisConfig{})
}

// StartRedisWith starts redis-server from PATH on a free loopback port with
// persistence off (--save "" --appendonly no) and a replica's first sync
// begun at once (--repl-diskless-sync-delay 0, where Redis waits 5s for
// more replicas to share it), waits until it answers PING,
// and stops it when the test ends. Without redis-server on PATH the test is
// skipped, or fails when the environment variable CI is "true".
func StartRedisWith(t testing.TB, cfg RedisConfig) *RedisServer {
	t.Helper()
	bin := redisBinary(t)
	if cfg.TLS && cfg.Cluster {
		t.Fatal("testkit: a TLS Redis Cluster is not supported")
	}
	s := &RedisServer{t: t, cfg: cfg, dir: t.TempDir()}
	s.logPath = filepath.Join(s.dir, "redis.log")
	s.args = []string{
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--repl-diskless-sync-delay", "0",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", "",
	}
	if cfg.Password != "" {
		s.args = append(s.args, "--requirepass", cfg.Password)
	}
	if cfg.TLS {
		s.tls = s.makeTLS()
		s.args = append(s.args,
			"--tls-cert-file", filepath.Join(s.dir, "server.crt"),
			"--tls-key-file", filepath.Join(s.dir, "server.key"),
			"--tls-ca-cert-file", s.caFile,
			"--tls-auth-clients", "no",
		)
	}
	if cfg.Cluster {
		s.args = append(s.args,
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(s.dir, "nodes.conf"),
			"--cluster-announce-ip", "127.0.0.1",
		)
	}
	s.start(t, bin, true)
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			s.showLog()
		}
	})
	if cfg.Cluster {
		s.assignSlots()
	}
	return s
}

// StartRedisCluster starts a Redis Cluster of n masters (no replicas) as
// StartRedisWith starts each, the slots split evenly between them in
// order, and waits until every node reports cluster_state:ok.
func StartRedisCluster(t testing.TB, n int) []*RedisServer {
	t.Helper()
	nodes := make([]*RedisServer, n)
	for i := range nodes {
		cfg := RedisConfig{Cluster: true, clusterSlots: [2]int{16384 * i / n, 16384*(i+1)/n - 1}}
		nodes[i] = StartRedisWith(t, cfg)
	}
	for _, node := range nodes[1:] {
		if _, err := node.do([]string{"CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(nodes[0].port), strconv.Itoa(nodes[0].busPort)}); err != nil {
			t.Fatalf("testkit: CLUSTER MEET: %v", err)
		}
	}
	for _, node := range nodes {
		node.waitFor(node.clusterOK, "cluster_state:ok")
	}
	return nodes
}

// StartRedisSentinel starts a Redis Sentinel on a free loopback port that
// monitors master under masterName, and waits until it names master's
// address. master must be a plain server or a TLS one (no password or
// cluster). With a TLS master the sentinel serves TLS only, with the
// master's certificate (CAFile is the master's), and reaches the master
// over TLS (tls-replication), so that one CA file serves a client of
// both, as the store takes one.
func StartRedisSentinel(t testing.TB, master *RedisServer, masterName string) *RedisServer {
	t.Helper()
	bin := redisBinary(t)
	if master.cfg != (RedisConfig{}) && master.cfg != (RedisConfig{TLS: true}) {
		t.Fatal("testkit: a sentinel monitors only a plain or TLS redis-server")
	}
	s := &RedisServer{t: t, cfg: RedisConfig{TLS: master.cfg.TLS}, dir: t.TempDir()}
	s.logPath = filepath.Join(s.dir, "sentinel.log")
	conf := filepath.Join(s.dir, "sentinel.conf")
	body := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 1\n", masterName, master.port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatalf("testkit: write sentinel config: %v", err)
	}
	s.args = []string{conf, "--sentinel", "--bind", "127.0.0.1", "--dir", s.dir, "--daemonize", "no", "--logfile", ""}
	if master.cfg.TLS {
		s.tls, s.caFile = master.tls, master.caFile
		s.args = append(s.args,
			"--tls-cert-file", filepath.Join(master.dir, "server.crt"),
			"--tls-key-file", filepath.Join(master.dir, "server.key"),
			"--tls-ca-cert-file", master.caFile,
			"--tls-auth-clients", "no",
			"--tls-replication", "yes",
		)
	}
	s.start(t, bin, true)
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			s.showLog()
		}
	})
	want := master.Addr()
	s.waitFor(func() error {
		got, err := s.do([]string{"SENTINEL", "get-master-addr-by-name", masterName})
		if err != nil {
			return err
		}
		if got := strings.Join(got, ":"); got != want {
			return fmt.Errorf("sentinel names master %q, want %q", got, want)
		}
		return nil
	}, "sentinel to name its master")
	return s
}

// redisBinary finds redis-server on PATH, or skips the test (fails it
// under CI=true).
func redisBinary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err == nil {
		return bin
	}
	const msg = "redis-server is not on PATH (install it: apt-get install -y redis-server)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI=true requires it")
	}
	t.Skip(msg + "; skipping")
	return ""
}

// Addr is the server's host:port on loopback.
func (s *RedisServer) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// RedisClients returns a client of each of servers (plain, without a
// password), closed when the test ends, for a test to look behind a
// store at what each node holds.
func RedisClients(t testing.TB, servers ...*RedisServer) []*redis.Client {
	var out []*redis.Client
	for _, s := range servers {
		rdb := redis.NewClient(&redis.Options{Addr: s.Addr()})
		t.Cleanup(func() { rdb.Close() })
		out = append(out, rdb)
	}
	return out
}

// URL is redis://[:password@]127.0.0.1:port/0, or rediss:// with TLS.
func (s *RedisServer) URL() string {
	u := url.URL{Scheme: "redis", Host: s.Addr(), Path: "/0"}
	if s.cfg.TLS {
		u.Scheme = "rediss"
	}
	if s.cfg.Password != "" {
		u.User = url.UserPassword("", s.cfg.Password)
	}
	return u.String()
}

// CAFile names the PEM file of the CA that signed a TLS server's
// certificate; it is empty without TLS.
func (s *RedisServer) CAFile() string { return s.caFile }

// Kill stops the server at once (SIGKILL) and waits until it has exited.
func (s *RedisServer) Kill() {
	s.t.Helper()
	s.stop()
}

// Restart starts a killed server again on the same port and waits until it
// answers PING. The data it held is gone (persistence is off); a cluster
// keeps its slots (nodes.conf survives).
func (s *RedisServer) Restart() {
	s.t.Helper()
	s.stop()
	bin := redisBinary(s.t)
	s.start(s.t, bin, false)
	if s.cfg.Cluster {
		s.waitFor(s.clusterOK, "cluster_state:ok")
	}
}

// start runs redis-server and waits until it answers PING. With newPorts
// it picks free ports, and picks again when another process took them
// first; otherwise the ports are the ones the server had, and it tries
// them again until redisReadyWithin while they are in use: a child the
// killed server forked (an append-only file's rewrite, a snapshot)
// holds its listening socket until it closes it, which it does once it
// runs, later on a loaded machine.
func (s *RedisServer) start(t testing.TB, bin string, newPorts bool) {
	t.Helper()
	deadline := time.Now().Add(redisReadyWithin)
	for attempt := 1; ; attempt++ {
		if newPorts {
			s.port = FreePort(t)
			if s.cfg.Cluster {
				s.busPort = FreePort(t)
			}
		}
		err := s.run(bin)
		if err == nil {
			return
		}
		inUse := errors.Is(err, errRedisPortInUse)
		switch {
		case inUse && newPorts && attempt < redisStartAttempts:
		case inUse && !newPorts && time.Now().Before(deadline):
			time.Sleep(50 * time.Millisecond)
		default:
			s.showLog()
			t.Fatalf("testkit: redis-server did not start: %v", err)
		}
	}
}

var errRedisPortInUse = errors.New("port already in use")

// run starts one redis-server process and waits until it answers PING,
// or reports why it exited.
func (s *RedisServer) run(bin string) error {
	args := append([]string(nil), s.args...)
	if s.cfg.TLS {
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(s.port))
	} else {
		args = append(args, "--port", strconv.Itoa(s.port))
	}
	if s.busPort != 0 {
		args = append(args, "--cluster-port", strconv.Itoa(s.busPort))
	}
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.NewTimer(redisReadyWithin)
	defer deadline.Stop()
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for {
		if _, err := s.do([]string{"PING"}); err == nil {
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(s.logPath)
			if bytes.Contains(log, []byte("Address already in use")) {
				return errRedisPortInUse
			}
			return fmt.Errorf("redis-server exited: %s", cmd.ProcessState)
		case <-deadline.C:
			s.stop()
			return fmt.Errorf("redis-server did not answer PING within %s", redisReadyWithin)
		case <-poll.C:
		}
	}
}

// stop kills the process, if any, and waits until it has exited.
func (s *RedisServer) stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd, s.exited = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// waitFor polls check until it succeeds, failing the test after
// redisReadyWithin.
func (s *RedisServer) waitFor(check func() error, what string) {
	s.t.Helper()
	deadline := time.Now().Add(redisReadyWithin)
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.showLog()
			s.t.Fatalf("testkit: waiting for %s: %v", what, err)
		}
		<-poll.C
	}
}

// assignSlots gives the node its slots (see RedisConfig.clusterSlots) and,
// when they are all of them, waits until the cluster reports
// cluster_state:ok; a node of several waits for the others to meet it.
func (s *RedisServer) assignSlots() {
	s.t.Helper()
	first, last := s.cfg.clusterSlots[0], s.cfg.clusterSlots[1]
	if first == 0 && last == 0 {
		last = 16383
	}
	if _, err := s.do([]string{"CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(first), strconv.Itoa(last)}); err != nil {
		s.t.Fatalf("testkit: CLUSTER ADDSLOTSRANGE: %v", err)
	}
	if last-first == 16383 {
		s.waitFor(s.clusterOK, "cluster_state:ok")
	}
}

func (s *RedisServer) clusterOK() error {
	info, err := s.do([]string{"CLUSTER", "INFO"})
	if err != nil {
		return err
	}
	if !strings.Contains(strings.Join(info, ""), "cluster_state:ok") {
		return errors.New("cluster_state is not ok")
	}
	return nil
}

// showLog logs what redis-server wrote.
func (s *RedisServer) showLog() {
	if log, err := os.ReadFile(s.logPath); err == nil && len(log) > 0 {
		s.t.Logf("redis-server log (%s):\n%s", s.Addr(), log)
	}
}

// KillClients closes every client connection of the server but the one
// it asks on (CLIENT KILL TYPE normal SKIPME yes), as a failover or an
// administrator does, over TLS when the server serves TLS, and returns
// how many it closed; a failure to ask fails t.
func (s *RedisServer) KillClients(t testing.TB) int {
	t.Helper()
	reply, err := s.do([]string{"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"})
	if err != nil || len(reply) != 1 {
		t.Fatalf("testkit: CLIENT KILL: %v %q", err, reply)
	}
	n, err := strconv.Atoi(reply[0])
	if err != nil {
		t.Fatalf("testkit: CLIENT KILL: %v", err)
	}
	return n
}

// Clients returns how many normal clients (not replicas, not pub/sub)
// are connected to the server, this call's own connection left out: what
// KillClients would close.
func (s *RedisServer) Clients(t testing.TB) int {
	t.Helper()
	reply, err := s.do([]string{"CLIENT", "LIST", "TYPE", "normal"})
	if err != nil || len(reply) != 1 {
		t.Fatalf("testkit: CLIENT LIST: %v %q", err, reply)
	}
	return strings.Count(reply[0], "\n") - 1
}

// do sends one command on a fresh connection (after AUTH when the server
// has a password) and returns the reply's strings; a Redis error reply is
// an error.
func (s *RedisServer) do(command []string) ([]string, error) {
	var conn net.Conn
	var err error
	d := net.Dialer{Timeout: time.Second}
	if s.tls != nil {
		conn, err = tls.DialWithDialer(&d, "tcp", s.Addr(), s.tls)
	} else {
		conn, err = d.Dial("tcp", s.Addr())
	}
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	r := bufio.NewReader(conn)
	if s.cfg.Password != "" {
		if _, err := redisRoundTrip(conn, r, []string{"AUTH", s.cfg.Password}); err != nil {
			return nil, err
		}
	}
	return redisRoundTrip(conn, r, command)
}

func redisRoundTrip(w io.Writer, r *bufio.Reader, command []string) ([]string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(command))
	for _, arg := range command {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(arg), arg)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return nil, err
	}
	return redisReadReply(r)
}

// redisReadReply reads one RESP2 reply: simple strings, errors, integers,
// bulk strings and arrays of them (flattened).
func redisReadReply(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return []string{line[1:]}, nil
	case '-':
		return nil, fmt.Errorf("redis: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return []string{}, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return []string{string(buf[:n])}, nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return nil, err
		}
		var all []string
		for i := 0; i < n; i++ {
			part, err := redisReadReply(r)
			if err != nil {
				return nil, err
			}
			all = append(all, part...)
		}
		return all, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

// makeTLS writes a CA and a server certificate for 127.0.0.1 and localhost
// into the server's directory and returns a client config that trusts the
// CA.
func (s *RedisServer) makeTLS() *tls.Config {
	s.t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		s.t.Fatalf("testkit: CA key: %v", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "testkit redis CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		s.t.Fatalf("testkit: CA certificate: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		s.t.Fatalf("testkit: CA certificate: %v", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		s.t.Fatalf("testkit: server key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		s.t.Fatalf("testkit: server certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		s.t.Fatalf("testkit: server key: %v", err)
	}
	s.caFile = filepath.Join(s.dir, "ca.crt")
	files := map[string][]byte{
		s.caFile:                           pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		filepath.Join(s.dir, "server.crt"): pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		filepath.Join(s.dir, "server.key"): pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	for name, data := range files {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			s.t.Fatalf("testkit: write %s: %v", name, err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}
