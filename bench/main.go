// Command bench measures what the ucwa edge costs on the path of every
// call: one Caddy process serves a plain reverse_proxy route and a ucwa
// route (RS256 tokens from a JWKS, numbers normalized, primary pool) in
// front of the same loopback upstream, and vegeta drives both in
// alternating rounds with the same body and token. For JSON, two more
// ucwa routes have idempotency on, one with the memory store and one with
// a Redis store on a redis-server the bench starts on loopback (skipped
// when redis-server is not on PATH); every JSON request then has an
// operationId of its own, on every route, so that the idempotency rows
// measure first requests (a reservation and a recorded answer each), not
// replays. It prints req/s, p50 and p99 per route and the ratios, then a
// round of distinct tokens and numbers with Caddy's memory before and
// after. It stops by itself.
//
//	go -C bench run .                   # JSON and XML, 6 rounds of 5s each
//	go -C bench run . -rounds 2 -round 2s -workers 32
//
// Caddy runs in a child process (this binary, re-executed with "serve"),
// so the load generator and the server do not share a heap or scheduler.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/golang-jwt/jwt/v5"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	_ "github.com/ucwa-edge/caddy-ucwa"
)

const startPath = "/ucwa/v1/applications/192/communication/startPhoneAudio"

// The reference page's samples; the JSON one with its broken line repaired.
const (
	seedJSON = `{
  "operationId" : "74cb7404e0a247d5a2d4eb0376a47dbf",
  "phoneNumber" : "tel : +14255551234",
  "importance" : "Urgent",
  "subject" : "SkypeforBusiness",
  "threadId" : "292e0aaef36c426a97757f43dda19d06",
  "to" : "sip : john@contoso.com",
  "_links" : {
    "customContent" : {
      "href" : "data : text/plain;base64,somebase64encodedmessage"
    }
  }
}`
	seedXML = `<?xml version="1.0" encoding="utf-8"?>
<input xmlns="http://schemas.microsoft.com/rtc/2012/03/ucwa">
  <property name="operationId">74cb7404e0a247d5a2d4eb0376a47dbf</property>
  <property name="phoneNumber">tel:+14255551234</property>
  <property name="importance">Urgent</property>
  <property name="subject">Skype for Business</property>
  <property name="threadId">292e0aaef36c426a97757f43dda19d06</property>
  <property name="to">sip:john@contoso.com</property>
</input>`
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "serve" {
		serve(os.Args[2])
		return
	}
	rounds := flag.Int("rounds", 6, "alternating rounds per format (each route once per round)")
	round := flag.Duration("round", 5*time.Second, "duration of one route's share of a round")
	workers := flag.Uint64("workers", 32, "concurrent connections (closed loop)")
	distinct := flag.Int("distinct", 4000, "distinct tokens for the memory round (0 skips it)")
	flag.Parse()
	log.SetFlags(0)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	check(err)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "kid": "bench", "alg": "RS256", "use": "sig",
			"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
		}}})
	}))
	defer jwks.Close()

	plainPort, edgePort, upstreamPort, idemPort := freePort(), freePort(), freePort(), freePort()
	// A ucwa site on port, in front of the upstream, with more
	// subdirectives.
	ucwaSite := func(port int, more string) string {
		return fmt.Sprintf(`:%d {
	ucwa {
		jwt {
			algorithms RS256
			jwks_url %s/keys
			issuer https://bench.invalid/
			audience bench
		}
		default_region US
		primary 127.0.0.1:%d
		%s
	}
}
`, port, jwks.URL, upstreamPort, more)
	}
	config := fmt.Sprintf(`{
	admin off
	auto_https off
	persist_config off
}
:%[1]d {
	reverse_proxy 127.0.0.1:%[2]d
}
:%[2]d {
	header Location /ucwa/v1/applications/192/communication/invitations/146
	respond 201
}
`, plainPort, upstreamPort) + ucwaSite(edgePort, "") + ucwaSite(idemPort, "store memory\n\t\tidempotency")
	redisURL, stopRedis := startRedis()
	defer stopRedis()
	redisPort := 0
	if redisURL != "" {
		redisPort = freePort()
		config += ucwaSite(redisPort, "store redis "+redisURL+"\n\t\tidempotency")
	}
	dir, err := os.MkdirTemp("", "ucwa-bench")
	check(err)
	defer os.RemoveAll(dir)
	configPath := filepath.Join(dir, "Caddyfile")
	check(os.WriteFile(configPath, []byte(config), 0o600))

	self, err := os.Executable()
	check(err)
	child := exec.Command(self, "serve", configPath)
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	check(child.Start())
	defer func() {
		_ = child.Process.Signal(syscall.SIGTERM)
		_ = child.Wait()
	}()
	waitForPort(edgePort)
	waitForPort(plainPort)

	token := mint(key, time.Hour)
	fmt.Printf("caddy-ucwa bench: %d rounds x %s per route, %d connections, GOMAXPROCS of the server: %s\n\n",
		*rounds, *round, *workers, orDefault(os.Getenv("GOMAXPROCS"), "all cores"))
	jsonRoutes := []route{{"plain reverse_proxy", plainPort}, {"ucwa edge", edgePort}, {"idempotency, memory", idemPort}}
	if redisPort != 0 {
		jsonRoutes = append(jsonRoutes, route{"idempotency, Redis", redisPort})
	}
	for _, f := range []struct {
		name, contentType, body string
		routes                  []route
		distinct                bool // an operationId of its own for every request
	}{
		{"JSON", "application/json", seedJSON, jsonRoutes, true},
		{"XML", "application/xml", seedXML, []route{{"plain reverse_proxy", plainPort}, {"ucwa edge", edgePort}}, false},
	} {
		header := http.Header{"Content-Type": {f.contentType}, "Authorization": {"Bearer " + token}}
		targeters := make([]vegeta.Targeter, len(f.routes))
		for i, r := range f.routes {
			url := fmt.Sprintf("http://127.0.0.1:%d%s", r.port, startPath)
			if f.distinct {
				targeters[i] = distinctOperationIDs(url, header, f.body)
			} else {
				targeters[i] = vegeta.NewStaticTargeter(vegeta.Target{Method: "POST", URL: url, Body: []byte(f.body), Header: header})
			}
			// A short warm-up of each route (connections, JWKS, caches).
			attack(targeters[i], *workers, time.Second)
		}
		m := make([]routeMetrics, len(f.routes))
		for n := range *rounds {
			// Each route in turn, starting with another one each round.
			for j := range f.routes {
				i := (n + j) % len(f.routes)
				m[i].round(attack(targeters[i], *workers, *round))
			}
		}
		what := "the same body"
		if f.distinct {
			what = "an operationId of its own per request"
		}
		fmt.Printf("%s body (%d bytes, %s)\n", f.name, len(f.body), what)
		for i, r := range f.routes {
			m[i].report(r.name)
		}
		for i, r := range f.routes[1:] {
			fmt.Printf("  ratio of %-20s throughput %.3f (target >= %.2f), p99 %.3f (target <= 1.20)\n", r.name+":",
				m[i+1].throughput()/m[0].throughput(), target(r.name), float64(m[i+1].all.Latencies.P99)/float64(m[0].all.Latencies.P99))
		}
		fmt.Println()
	}
	if redisPort == 0 {
		fmt.Printf("idempotency with Redis: skipped, redis-server is not on PATH (apt-get install -y redis-server)\n\n")
	}

	if *distinct > 0 {
		memoryRound(key, edgePort, child.Process.Pid, *distinct, *workers, *round)
	}
}

// memoryRound sends requests with many distinct tokens and numbers, and
// prints the server's resident memory before and after: the edge's caches
// must be bounded.
func memoryRound(key *rsa.PrivateKey, port, pid, n int, workers uint64, d time.Duration) {
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = mint(key, time.Hour)
	}
	i := 0
	targeter := func(t *vegeta.Target) error {
		i++
		number := fmt.Sprintf("+1425%07d", i%10_000_000)
		*t = vegeta.Target{
			Method: "POST", URL: fmt.Sprintf("http://127.0.0.1:%d%s", port, startPath),
			Body:   []byte(`{"to":"` + number + `","phoneNumber":"` + number + `","operationId":"` + strconv.Itoa(i) + `"}`),
			Header: http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + tokens[i%len(tokens)]}},
		}
		return nil
	}
	fmt.Printf("distinct tokens (%d) and numbers, %s per step\n", n, d)
	for step := range 3 {
		var m routeMetrics
		m.round(attack(targeter, workers, d))
		fmt.Printf("  step %d: %.0f req/s, success %.4f, codes %v, server RSS %s\n", step+1, m.throughput(), m.all.Success, m.all.StatusCodes, rss(pid))
	}
}

// route is one of the server's routes under test.
type route struct {
	name string
	port int
}

// target is the throughput ratio a route aims at, against plain
// reverse_proxy.
func target(name string) float64 {
	switch name {
	case "idempotency, memory":
		return 0.93
	case "idempotency, Redis":
		return 0.85
	}
	return 0.90
}

// distinctOperationIDs targets url with body, its operationId replaced by
// a number of the same length, new for every request.
func distinctOperationIDs(url string, header http.Header, body string) vegeta.Targeter {
	const seedID = "74cb7404e0a247d5a2d4eb0376a47dbf"
	prefix, suffix, ok := strings.Cut(body, seedID)
	if !ok {
		log.Fatal("the body has no operationId to replace")
	}
	var n atomic.Uint64
	return func(t *vegeta.Target) error {
		*t = vegeta.Target{Method: "POST", URL: url, Header: header,
			Body: []byte(fmt.Sprintf("%s%032x%s", prefix, n.Add(1), suffix))}
		return nil
	}
}

// startRedis starts redis-server from PATH on a loopback port, without
// persistence, and returns its URL and how to stop it; "" when
// redis-server is not on PATH.
func startRedis() (url string, stop func()) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", func() {}
	}
	dir, err := os.MkdirTemp("", "ucwa-bench-redis")
	check(err)
	port := freePort()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--logfile", "")
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	check(cmd.Start())
	waitForPort(port)
	return fmt.Sprintf("redis://127.0.0.1:%d/0", port), func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
}

func attack(t vegeta.Targeter, workers uint64, d time.Duration) <-chan *vegeta.Result {
	a := vegeta.NewAttacker(vegeta.Workers(workers), vegeta.MaxWorkers(workers), vegeta.KeepAlive(true),
		vegeta.Connections(int(workers)), vegeta.Timeout(10*time.Second))
	return a.Attack(t, vegeta.Rate{Freq: 0}, d, "bench") // Freq 0: as fast as the workers go
}

// routeMetrics aggregates one route's rounds. vegeta's own throughput of
// merged results would count the time of the other route's rounds too, so
// throughput is successes over the rounds' own durations.
type routeMetrics struct {
	all       vegeta.Metrics
	successes int
	elapsed   time.Duration
}

func (m *routeMetrics) round(results <-chan *vegeta.Result) {
	var r vegeta.Metrics
	for res := range results {
		r.Add(res)
		m.all.Add(res)
	}
	r.Close()
	m.all.Close()
	m.successes += int(r.Success*float64(r.Requests) + 0.5)
	m.elapsed += r.Duration + r.Wait
}

func (m *routeMetrics) throughput() float64 {
	return float64(m.successes) / m.elapsed.Seconds()
}

func (m *routeMetrics) report(name string) {
	fmt.Printf("  %-20s %8.0f req/s  p50 %-10s p99 %-10s success %.4f  codes %v\n", name, m.throughput(),
		m.all.Latencies.P50.Round(time.Microsecond), m.all.Latencies.P99.Round(time.Microsecond), m.all.Success, m.all.StatusCodes)
	for _, e := range m.all.Errors {
		fmt.Printf("    error: %s\n", e)
	}
}

func mint(key *rsa.PrivateKey, ttl time.Duration) string {
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": "https://bench.invalid/", "aud": "bench", "sub": "bench-user",
		"scp": "Conversations.Initiate", "exp": time.Now().Add(ttl).Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(id),
	})
	tok.Header["kid"] = "bench"
	s, err := tok.SignedString(key)
	check(err)
	return s
}

// serve runs Caddy with a Caddyfile until SIGTERM.
func serve(path string) {
	body, err := os.ReadFile(path)
	check(err)
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": path})
	check(err)
	for _, w := range warnings {
		log.Println("caddyfile:", w.Message)
	}
	check(caddy.Load(cfg, true))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	<-ctx.Done()
	check(caddy.Stop())
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitForPort(port int) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Fatalf("caddy did not listen on port %d", port)
}

// rss reads a process's resident memory from /proc.
func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "unknown"
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			return strings.TrimSpace(string(v))
		}
	}
	return "unknown"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
