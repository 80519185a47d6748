// Command bench measures what the ucwa edge costs on the path of every
// call. One Caddy process serves, in front of the same loopback upstream
// (another Caddy process, which reads the body before it answers, as a
// pool does):
//
//   - plain reverse_proxy: the reference;
//   - ucwa edge: RS256 tokens from a JWKS, numbers normalized with
//     default_region US, a primary pool (the README's default
//     configuration plus auth);
//   - ucwa, Expect always: the same with Expect: 100-continue on every
//     request to the pool (expect_continue_after_idle 0), where the edge
//     by default leaves it off a connection that carried a request less
//     than a second ago: the difference is what the expectation would
//     cost a busy edge (JSON only);
//   - idempotency, memory and idempotency, Redis: the edge with
//     idempotency on, in the memory store and in a Redis store on a
//     redis-server the bench starts on loopback (skipped when
//     redis-server is not on PATH) (JSON only);
//   - all features: idempotency with the memory store plus the Caddyfile
//     text of allFeatures (a destination policy and a limit) (JSON only).
//
// Every ucwa route writes the audit trail (on by default in the edge) to
// a file of its own, rolled at 100 MiB and zstd-compressed, as the
// README's audit example writes it; Caddy's other logs are at WARN.
//
// vegeta drives the routes in alternating rounds (each route once per
// round, starting with another one each round) with the same token:
// startPhoneAudio in JSON (every request with an operationId of its own,
// on every route, so that the idempotency rows measure first requests,
// not replays) and in XML (the same body every time), and a batch of ten
// GETs (which the edge reads part by part and forwards as it came).
//
// For each route it prints the Caddy process's CPU time per request (user
// and system, from /proc/<pid>/stat, sampled before and after every round
// and given to that round's route), its heap allocations and bytes per
// request (from the runtime's memstats on Caddy's admin endpoint,
// /debug/vars, sampled the same way), its minor page faults and its
// threads' context switches per request (from /proc, sampled the same
// way: on a VM either can cost microseconds of the CPU time, outside
// the code that a profile blames), req/s, p50 and p99 (and for the
// Redis route redis-server's own CPU per request, sampled the same way),
// then the ratios of each route to plain reverse_proxy in the same run
// with their targets, and how busy the machine's other processes kept it
// during the rounds (its CPUs' busy time from /proc/stat less the
// bench's own processes'). The CPU and throughput ratios are the medians of the rounds'
// own ratios (a route's round against plain's round of the same round,
// moments apart under the same load of the machine), the CPU ratio with
// the lowest and highest round's beside it (rounds 1.031-1.092): two
// routes or runs whose medians differ by less than that spread may not
// differ at all; allocations are
// the difference of the totals. CPU per request is the headline figure:
// on a shared machine throughput swings with what else runs, while the CPU time the server
// spends on a request does not. A last round of distinct tokens and
// numbers shows Caddy's memory before and after. It stops by itself.
//
//	go -C bench run .                          # 6 rounds of 5s per route, 32 connections
//	go -C bench run . -rounds 2 -round 2s      # a quick look
//	go -C bench run . -formats json -cpuprofile /tmp/prof
//
// Flags:
//
//	-rounds n          alternating rounds per format (default 6)
//	-round d           one route's share of a round (default 5s)
//	-workers n         concurrent connections, closed loop (default 32)
//	-rate n            requests per second of every round; 0, the default,
//	                   is a closed loop, as fast as the workers go. At a
//	                   rate every route can keep, each does the same work
//	                   per second, and CPU per request compares like with
//	                   like (in a closed loop the faster route batches
//	                   more per system call and wake-up)
//	-formats list      bodies to run, of json, xml, batch (default json,xml,batch)
//	-distinct n        distinct tokens of the memory round; 0 skips it (default 4000)
//	-routes list       routes to measure beside plain reverse_proxy, of edge,
//	                   expect, idem-memory, idem-redis, all (default all of
//	                   them): a quicker look at one
//	-all-features s    Caddyfile text added to the all-features route
//	                   (default allFeatures; "" omits the route)
//	-audit=false       measure without the audit trail (its logger off)
//	-audit-buffered    write the audit trail through the plugin's
//	                   buffered log writer (64 KiB, flush_interval 1s)
//	                   around the same file writer
//	-shared-upstream   serve the upstream from the measured Caddy process
//	                   too (its CPU then counts on every route alike)
//	-cpuprofile dir    write a CPU profile of Caddy per route, taken during
//	                   the route's last round, to dir/<format>-<route>.pprof
//	-strace dir        count Caddy's system calls during each route's last
//	                   round with strace -f -c (which slows Caddy: use it
//	                   with -rate), write them to dir/<format>-<route>.txt and
//	                   print each route's system calls per request
//
// Caddy runs in a child process (this binary, re-executed with "serve"),
// so the load generator and the server do not share a heap or scheduler,
// and the upstream in another, so that the measured CPU is the proxy's
// own; the measured one's admin endpoint listens on a free loopback port
// for the memstats and profiles.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// allFeatures is the Caddyfile text (subdirectives of ucwa) that the
// all-features route adds to the edge's default configuration and
// idempotency with the memory store: a realistic destination policy
// (`destinations { ... }`, with emergency_calls emergency_numbers as the
// README advises: startup warns when it is unset) and one `limit`,
// generous enough that the bench's single caller is never refused (the
// row measures deliveries). Empty, the route is omitted.
const allFeatures = `destinations {
			allow_regions US CA
			deny +1900 +1976 +881 +882 +883
			sip_domains contoso.com *.contoso.com
			emergency_calls emergency_numbers
		}
		limit calls 1000000000 per 1h`

const (
	startPath = "/ucwa/v1/applications/192/communication/startPhoneAudio"
	batchPath = "/ucwa/v1/applications/192/batch"
)

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

// Route names, as the report gives them.
const (
	routePlain   = "plain reverse_proxy"
	routeEdge    = "ucwa edge"
	routeExpect  = "ucwa, Expect always"
	routeIdemMem = "idempotency, memory"
	routeIdemRed = "idempotency, Redis"
	routeAll     = "all features"
)

// routeFlags names the routes for -routes.
var routeFlags = map[string]string{
	"edge":        routeEdge,
	"expect":      routeExpect,
	"idem-memory": routeIdemMem,
	"idem-redis":  routeIdemRed,
	"all":         routeAll,
}

// routeFlagNames lists the names of routeFlags, for -routes' help and
// errors.
func routeFlagNames() string {
	return strings.Join(slices.Sorted(maps.Keys(routeFlags)), ", ")
}

// measuredRoutes is the set of routes that -routes names; nil, all of
// them.
func measuredRoutes(list string) (map[string]bool, error) {
	if list == "" {
		return nil, nil
	}
	set := map[string]bool{}
	for name := range strings.SplitSeq(list, ",") {
		r, ok := routeFlags[strings.TrimSpace(name)]
		if !ok {
			return nil, fmt.Errorf("-routes: no route %q (routes: %s)", name, routeFlagNames())
		}
		set[r] = true
	}
	return set, nil
}

// targets are the routes' targets against plain reverse_proxy in the same
// run (0: none).
var targets = map[string]struct {
	cpu, throughput float64
	allocs          float64 // allocations per request over plain
}{
	routeEdge:    {cpu: 1.05, throughput: 0.95, allocs: 8},
	routeIdemMem: {throughput: 0.93},
	routeIdemRed: {throughput: 0.85},
	routeAll:     {cpu: 1.08},
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "serve" {
		serve(os.Args[2])
		return
	}
	rounds := flag.Int("rounds", 6, "alternating rounds per format (each route once per round)")
	round := flag.Duration("round", 5*time.Second, "duration of one route's share of a round")
	workers := flag.Uint64("workers", 32, "concurrent connections (closed loop)")
	formats := flag.String("formats", "json,xml,batch", "bodies to run: json, xml, batch, comma-separated")
	distinct := flag.Int("distinct", 4000, "distinct tokens for the memory round (0 skips it)")
	allFeaturesText := flag.String("all-features", allFeatures, `Caddyfile text the all-features route adds ("" omits the route)`)
	sharedUpstream := flag.Bool("shared-upstream", false, "serve the upstream from the measured Caddy process too")
	audit := flag.Bool("audit", true, "write the audit trail (on by default in the edge) to a file, as a deployment does; false measures without it")
	auditBuffered := flag.Bool("audit-buffered", false, "write the audit trail through the buffered log writer around the same file writer")
	flag.IntVar(&rate, "rate", 0, "requests per second of every round (0: as fast as the workers go)")
	profileDir := flag.String("cpuprofile", "", "write a CPU profile of Caddy per route (its last round) to this directory")
	straceDir := flag.String("strace", "", "count Caddy's system calls per route (its last round) with strace -f -c into this directory")
	only := flag.String("routes", "", "routes to measure beside plain reverse_proxy, of "+routeFlagNames()+", comma-separated (default all)")
	flag.Parse()
	log.SetFlags(0)
	want := map[string]bool{}
	for f := range strings.SplitSeq(*formats, ",") {
		want[strings.TrimSpace(strings.ToLower(f))] = true
	}

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

	adminPort, plainPort, upstreamPort := freePort(), freePort(), freePort()
	// ucwaSite is a ucwa site on port in front of the upstream, with more
	// subdirectives and the primary pool's block.
	ucwaSite := func(port int, more, primaryBlock string) string {
		return fmt.Sprintf(`:%d {
	ucwa {
		jwt {
			algorithms RS256
			jwks_url %s/keys
			issuer https://bench.invalid/
			audience bench
		}
		default_region US
		primary 127.0.0.1:%d {
			%s
		}
		%s
	}
}
`, port, jwks.URL, upstreamPort, primaryBlock, more)
	}
	// The upstream reads the body before it answers, as a pool does: the
	// edge asks for that (Expect: 100-continue), and a body nobody reads
	// is a body the edge waits to send.
	upstream := fmt.Sprintf(`:%d {
	@read expression "{http.request.body}.size() >= 0"
	header Location /ucwa/v1/applications/192/communication/invitations/146
	respond @read 201
}
`, upstreamPort)
	dir, err := os.MkdirTemp("", "ucwa-bench")
	check(err)
	defer os.RemoveAll(dir)
	// Caddy's other logs stay quiet; the audit trail, one line per
	// request of a ucwa route, goes to a file of its own.
	auditLog := ""
	if *audit {
		output := fmt.Sprintf(`output file %s {
			roll_size 100MiB
			roll_keep 2
			roll_compression zstd
		}`, filepath.Join(dir, "audit.log"))
		if *auditBuffered {
			output = "output buffered {\n\t\t" + output + "\n\t}"
		}
		auditLog = fmt.Sprintf(`
	log ucwa_audit {
		include http.handlers.ucwa.audit
		%s
		format json
		level INFO
	}`, output)
	}
	config := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	auto_https off
	persist_config off
	log {
		level WARN
		exclude http.handlers.ucwa.audit
	}%s
}
:%d {
	reverse_proxy 127.0.0.1:%d
}
`, adminPort, auditLog, plainPort, upstreamPort)
	if *sharedUpstream {
		config += upstream
	}
	ports := map[string]int{routePlain: plainPort}
	addSite := func(name, more, primaryBlock string) {
		ports[name] = freePort()
		config += ucwaSite(ports[name], more, primaryBlock)
	}
	addSite(routeEdge, "", "")
	addSite(routeExpect, "expect_continue_after_idle 0", "")
	// The memory store, which both routes share, has room for every
	// request of a run (a full store refuses new ones): a window's worth,
	// all of it for the one caller the bench's token is.
	const memoryStore = "store memory 2000000 {\n\t\t\tmax_entries_per_caller 2000000\n\t\t}\n\t\tidempotency"
	addSite(routeIdemMem, memoryStore, "")
	redisURL, redisPID, stopRedis := startRedis()
	defer stopRedis()
	if redisURL != "" {
		addSite(routeIdemRed, "store redis "+redisURL+"\n\t\tidempotency", "")
	}
	if *allFeaturesText != "" {
		addSite(routeAll, memoryStore+"\n"+*allFeaturesText, "")
	}
	// The bench's own processes, whose CPU time is left out of what the
	// machine's other processes used (see othersBusy).
	own := []int{os.Getpid()}
	if redisPID != 0 {
		own = append(own, redisPID)
	}
	if !*sharedUpstream {
		upstreamChild, stop := startCaddy(dir, "upstream", `{
	admin off
	auto_https off
	persist_config off
}
`+upstream)
		defer stop()
		own = append(own, upstreamChild.Process.Pid)
	}
	child, stop := startCaddy(dir, "edge", config)
	defer stop()
	own = append(own, child.Process.Pid)
	for _, port := range ports {
		waitForPort(port)
	}
	waitForPort(upstreamPort)
	waitForPort(adminPort)
	server := &caddyProcess{pid: child.Process.Pid, admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort)}
	server.sample() // fails early when the admin endpoint does not answer

	token := mint(key, time.Hour)
	auditTrail := "a file"
	switch {
	case !*audit:
		auditTrail = "off"
	case *auditBuffered:
		auditTrail = "a file, buffered"
	}
	fmt.Printf("caddy-ucwa bench %s: %d rounds x %s per route, %d connections, %d CPUs, GOMAXPROCS of the server: %s, audit trail: %s\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), *rounds, *round, *workers, runtime.NumCPU(),
		orDefault(os.Getenv("GOMAXPROCS"), "all cores"), auditTrail)

	measured, err := measuredRoutes(*only)
	check(err)
	keep := func(routes ...string) []string {
		return slices.DeleteFunc(routes, func(r string) bool {
			return r != routePlain && (ports[r] == 0 || measured != nil && !measured[r])
		})
	}
	jsonRoutes := keep(routePlain, routeEdge, routeExpect, routeIdemMem, routeIdemRed, routeAll)
	for _, f := range []struct {
		name, path, contentType, body string
		routes                        []string
		distinct                      bool // an operationId of its own for every request
		targets                       bool // the targets are for this body
	}{
		{"JSON", startPath, "application/json", seedJSON, jsonRoutes, true, true},
		{"XML", startPath, "application/xml", seedXML, keep(routePlain, routeEdge), false, true},
		{"batch", batchPath, "multipart/batching; boundary=3e1a", batchOfGETs(10), keep(routePlain, routeEdge), false, false},
	} {
		if !want[strings.ToLower(f.name)] {
			continue
		}
		header := http.Header{"Content-Type": {f.contentType}, "Authorization": {"Bearer " + token}}
		targeters := make([]vegeta.Targeter, len(f.routes))
		for i, name := range f.routes {
			url := fmt.Sprintf("http://127.0.0.1:%d%s", ports[name], f.path)
			if f.distinct {
				targeters[i] = distinctOperationIDs(url, header, f.body, i)
			} else {
				targeters[i] = vegeta.NewStaticTargeter(vegeta.Target{Method: "POST", URL: url, Body: []byte(f.body), Header: header})
			}
			// A short warm-up of each route (connections, JWKS, caches).
			drain(attack(targeters[i], *workers, time.Second))
		}
		m := make([]routeMetrics, len(f.routes))
		othersBefore := othersBusy(own)
		for n := range *rounds {
			for j := range f.routes {
				i := (n + j) % len(f.routes)
				var profile func()
				var syscalls func() map[string]int
				if n == *rounds-1 {
					name := profileName(f.name, f.routes[i])
					if *profileDir != "" {
						profile = server.profile(*round, filepath.Join(*profileDir, name+".pprof"))
					}
					if *straceDir != "" {
						syscalls = server.strace(filepath.Join(*straceDir, name+".txt"))
					}
				}
				before := server.sample()
				var redisBefore time.Duration
				if f.routes[i] == routeIdemRed {
					redisBefore = procCPU(redisPID)
				}
				results := attack(targeters[i], *workers, *round)
				m[i].round(results)
				m[i].server(before, server.sample())
				if f.routes[i] == routeIdemRed {
					m[i].storeCPU += procCPU(redisPID) - redisBefore
				}
				if profile != nil {
					profile()
				}
				if syscalls != nil {
					m[i].syscalls = syscalls()
				}
			}
		}
		what := "the same body"
		if f.distinct {
			what = "an operationId of its own per request"
		}
		others := othersBusy(own) - othersBefore
		elapsed := time.Duration(*rounds*len(f.routes)) * *round
		fmt.Printf("%s body (%d bytes, %s)\n", f.name, len(f.body), what)
		fmt.Printf("  other processes kept %.2f of %d CPUs busy during the rounds (the steadier the machine, the nearer 0)\n",
			float64(others)/float64(elapsed), runtime.NumCPU())
		fmt.Printf("  %-20s %8s %8s %8s %7s %8s %9s %8s %8s  %s\n", "route", "CPU/req", "allocs", "B/req", "faults", "switches", "req/s", "p50", "p99", "success, codes")
		for i, name := range f.routes {
			m[i].report(name)
		}
		fmt.Printf("  against %s:\n", routePlain)
		for i, name := range f.routes[1:] {
			m[i+1].compare(name, &m[0], f.targets)
		}
		if *straceDir != "" {
			fmt.Printf("  system calls per request (last round, strace -f -c):\n")
			for i, name := range f.routes {
				m[i].reportSyscalls(name)
			}
		}
		if i, c := slices.Index(f.routes, routeEdge), slices.Index(f.routes, routeExpect); i > 0 && c > 0 {
			fmt.Printf("  Expect: 100-continue on every request would cost %.1f µs of Caddy CPU (%.3fx) and %.1f allocations per request (%s against %s)\n",
				m[c].medianDiff(&m[i], cpuPerRequest)*1e6, m[c].medianRatio(&m[i], cpuPerRequest),
				m[c].allocsPerRequest()-m[i].allocsPerRequest(), routeExpect, routeEdge)
		}
		fmt.Println()
	}
	if want["json"] {
		if redisURL == "" {
			fmt.Printf("%s: skipped, redis-server is not on PATH (apt-get install -y redis-server)\n", routeIdemRed)
		}
		if *allFeaturesText == "" {
			fmt.Printf("%s: omitted, allFeatures is empty (set the constant or -all-features)\n", routeAll)
		}
		fmt.Println()
	}

	if *distinct > 0 {
		memoryRound(key, ports[routeEdge], child.Process.Pid, *distinct, *workers, *round)
	}
}

// batchOfGETs is a multipart/batching body of n GETs of contacts, as a
// client batches reads (boundary 3e1a).
func batchOfGETs(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "--3e1a\r\nContent-Type: application/http; msgtype=request\r\n\r\n"+
			"GET /ucwa/v1/applications/192/people/contacts/%d HTTP/1.1\r\nHost: fe1.contoso.com\r\nAccept: application/json\r\n\r\n\r\n", i)
	}
	b.WriteString("--3e1a--\r\n")
	return b.String()
}

// distinctOperationIDs targets url with body, its operationId replaced by
// a number of the same length, new for every request: the route's own
// number, then a count. Routes with the same store configuration share
// one store (and so one idempotency key space), so each needs numbers of
// its own, or one route's requests would be replays of another's.
func distinctOperationIDs(url string, header http.Header, body string, route int) vegeta.Targeter {
	const seedID = "74cb7404e0a247d5a2d4eb0376a47dbf"
	prefix, suffix, ok := strings.Cut(body, seedID)
	if !ok {
		log.Fatal("the body has no operationId to replace")
	}
	var n atomic.Uint64
	return func(t *vegeta.Target) error {
		*t = vegeta.Target{Method: "POST", URL: url, Header: header,
			Body: fmt.Appendf(nil, "%s%08x%024x%s", prefix, route, n.Add(1), suffix)}
		return nil
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
	var i atomic.Int64
	targeter := func(t *vegeta.Target) error {
		i := int(i.Add(1))
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

// rate is the requests per second of every round; 0: as fast as the
// workers go (a closed loop).
var rate int

func attack(t vegeta.Targeter, workers uint64, d time.Duration) <-chan *vegeta.Result {
	a := vegeta.NewAttacker(vegeta.Workers(workers), vegeta.MaxWorkers(workers), vegeta.KeepAlive(true),
		vegeta.Connections(int(workers)), vegeta.Timeout(10*time.Second))
	return a.Attack(t, vegeta.Rate{Freq: rate, Per: time.Second}, d, "bench")
}

func drain(results <-chan *vegeta.Result) {
	for range results {
	}
}

// routeMetrics aggregates one route's rounds. vegeta's own throughput of
// merged results would count the time of the other route's rounds too, so
// throughput is successes over the rounds' own durations.
type routeMetrics struct {
	all       vegeta.Metrics
	successes int
	elapsed   time.Duration

	// The Caddy process's use during the route's rounds, and the
	// requests it served in them.
	requests uint64
	cpu      time.Duration
	mallocs  uint64
	bytes    uint64
	// Its minor page faults and its threads' context switches: on a VM
	// either can cost several microseconds, which the CPU time counts
	// and a profile of the Go code does not tell apart (see README,
	// Where the cost is).
	faults, switches uint64

	// storeCPU is what redis-server used during the route's rounds (the
	// Redis route's; 0 for the others).
	storeCPU time.Duration

	// replays counts answers that were the edge's replays of an earlier
	// answer: cheaper than a delivery, so a route that has them measures
	// something else than first requests.
	replays int

	rounds []roundMetrics

	// syscalls counts Caddy's system calls by name during the route's
	// last round, when -strace is given.
	syscalls map[string]int
}

func (m *routeMetrics) round(results <-chan *vegeta.Result) {
	var r vegeta.Metrics
	for res := range results {
		if res.Headers.Get("Idempotent-Replayed") != "" {
			m.replays++
		}
		r.Add(res)
		m.all.Add(res)
	}
	r.Close()
	m.all.Close()
	successes := int(r.Success*float64(r.Requests) + 0.5)
	m.successes += successes
	m.elapsed += r.Duration + r.Wait
	m.requests += r.Requests
	m.rounds = append(m.rounds, roundMetrics{requests: r.Requests, throughput: float64(successes) / (r.Duration + r.Wait).Seconds()})
}

// server adds what the Caddy process used between two samples, taken
// before and after the last round.
func (m *routeMetrics) server(before, after processSample) {
	cpu := after.cpu - before.cpu
	m.cpu += cpu
	m.mallocs += after.mallocs - before.mallocs
	m.bytes += after.bytes - before.bytes
	m.faults += after.faults - before.faults
	m.switches += after.switches - before.switches
	last := &m.rounds[len(m.rounds)-1]
	last.cpuPerRequest = cpu.Seconds() / float64(max(last.requests, 1))
}

// roundMetrics is one round of a route.
type roundMetrics struct {
	requests      uint64
	throughput    float64
	cpuPerRequest float64 // seconds
}

// medianRatio is the median over the rounds of f(m's round) / f(plain's
// round of the same round): the rounds of one round ran moments apart,
// under the same load of the machine, where the totals of a route mix
// rounds under different loads.
func (m *routeMetrics) medianRatio(plain *routeMetrics, f func(roundMetrics) float64) float64 {
	return median(m.ratios(plain, f))
}

// ratios are f(m's round) / f(plain's round of the same round), one for
// each round.
func (m *routeMetrics) ratios(plain *routeMetrics, f func(roundMetrics) float64) []float64 {
	var ratios []float64
	for i := range min(len(m.rounds), len(plain.rounds)) {
		ratios = append(ratios, f(m.rounds[i])/f(plain.rounds[i]))
	}
	return ratios
}

// spread is the lowest and highest of v: printed beside a median ratio,
// how far one round's ratio strayed from it, so that a reader can tell a
// difference of routes from the machine's noise.
func spread(v []float64) (lo, hi float64) {
	if len(v) == 0 {
		return 0, 0
	}
	return slices.Min(v), slices.Max(v)
}

// medianDiff is the median of what f of each of m's rounds exceeds f of
// the other route's round of the same round by.
func (m *routeMetrics) medianDiff(other *routeMetrics, f func(roundMetrics) float64) float64 {
	var diffs []float64
	for i := range min(len(m.rounds), len(other.rounds)) {
		diffs = append(diffs, f(m.rounds[i])-f(other.rounds[i]))
	}
	return median(diffs)
}

func cpuPerRequest(r roundMetrics) float64 { return r.cpuPerRequest }

func throughput(r roundMetrics) float64 { return r.throughput }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

func (m *routeMetrics) throughput() float64 {
	return float64(m.successes) / m.elapsed.Seconds()
}

func (m *routeMetrics) cpuPerRequest() time.Duration {
	return m.cpu / time.Duration(max(m.requests, 1))
}

func (m *routeMetrics) allocsPerRequest() float64 {
	return float64(m.mallocs) / float64(max(m.requests, 1))
}

func (m *routeMetrics) bytesPerRequest() float64 {
	return float64(m.bytes) / float64(max(m.requests, 1))
}

func (m *routeMetrics) faultsPerRequest() float64 {
	return float64(m.faults) / float64(max(m.requests, 1))
}

func (m *routeMetrics) switchesPerRequest() float64 {
	return float64(m.switches) / float64(max(m.requests, 1))
}

// reportSyscalls prints the route's system calls per request in its last
// round: in all, and the most frequent ones.
func (m *routeMetrics) reportSyscalls(name string) {
	requests := float64(m.rounds[len(m.rounds)-1].requests)
	if requests == 0 {
		return
	}
	names := slices.Collect(maps.Keys(m.syscalls))
	slices.SortFunc(names, func(a, b string) int { return m.syscalls[b] - m.syscalls[a] })
	total := 0
	var top []string
	for i, n := range names {
		total += m.syscalls[n]
		if i < 6 {
			top = append(top, fmt.Sprintf("%s %.2f", n, float64(m.syscalls[n])/requests))
		}
	}
	fmt.Printf("    %-20s %6.2f  (%s)\n", name, float64(total)/requests, strings.Join(top, ", "))
}

func (m *routeMetrics) report(name string) {
	fmt.Printf("  %-20s %6.1fµs %8.1f %8.0f %7.3f %8.2f %9.0f %8s %8s  %.4f %v\n", name,
		micros(m.cpuPerRequest()), m.allocsPerRequest(), m.bytesPerRequest(), m.faultsPerRequest(), m.switchesPerRequest(), m.throughput(),
		m.all.Latencies.P50.Round(10*time.Microsecond), m.all.Latencies.P99.Round(10*time.Microsecond),
		m.all.Success, m.all.StatusCodes)
	for _, e := range m.all.Errors {
		fmt.Printf("    error: %s\n", e)
	}
	if m.storeCPU > 0 {
		// The store's CPU comes from the same cores as Caddy's: it is the
		// part of the route's cost the CPU per request above leaves out.
		fmt.Printf("    redis-server: %.1fµs of CPU per request besides\n", micros(m.storeCPU/time.Duration(max(m.requests, 1))))
	}
	if m.replays > 0 {
		fmt.Printf("    %d answers were replays (Idempotent-Replayed), not deliveries\n", m.replays)
	}
}

// compare prints m's ratios to plain's, with the route's targets.
func (m *routeMetrics) compare(name string, plain *routeMetrics, withTargets bool) {
	t := targets[name]
	if !withTargets {
		t = targets[""]
	}
	goal := func(s string, v float64) string {
		if v == 0 {
			return ""
		}
		return fmt.Sprintf(" (target %s %.2f)", s, v)
	}
	// What the route adds is printed beside the ratio: on a shared
	// machine plain's own cost moves between runs, and the ratio with it.
	cpu := m.ratios(plain, cpuPerRequest)
	lo, hi := spread(cpu)
	fmt.Printf("    %-20s CPU/req %.3fx (rounds %.3f-%.3f)%s, %+.1f µs, allocs %+.1f%s, throughput %.3f%s, p99 %.3f\n", name+":",
		median(cpu), lo, hi, goal("<=", t.cpu), m.medianDiff(plain, cpuPerRequest)*1e6,
		m.allocsPerRequest()-plain.allocsPerRequest(), goal("<= +", t.allocs),
		m.medianRatio(plain, throughput), goal(">=", t.throughput),
		float64(m.all.Latencies.P99)/float64(plain.all.Latencies.P99))
}

// caddyProcess is the Caddy child: its pid, for /proc, and its admin
// endpoint.
type caddyProcess struct {
	pid   int
	admin string
}

// processSample is what the Caddy process has used so far.
type processSample struct {
	cpu      time.Duration // user and system
	faults   uint64        // minor page faults
	switches uint64        // context switches of its threads
	mallocs  uint64        // heap objects allocated
	bytes    uint64        // heap bytes allocated
}

// sample reads the process's CPU time and page faults from
// /proc/<pid>/stat, its threads' context switches from their status, and
// its allocations from the runtime's memstats (expvar on the admin
// endpoint).
func (p *caddyProcess) sample() processSample {
	var s processSample
	s.cpu, s.faults = procStat(p.pid)
	s.switches = procSwitches(p.pid)

	res, err := http.Get(p.admin + "/debug/vars")
	check(err)
	defer res.Body.Close()
	var vars struct {
		Memstats struct{ Mallocs, TotalAlloc uint64 } `json:"memstats"`
	}
	check(json.NewDecoder(res.Body).Decode(&vars))
	s.mallocs, s.bytes = vars.Memstats.Mallocs, vars.Memstats.TotalAlloc
	return s
}

// procCPU is the CPU time (user and system) process pid has used so far,
// from /proc/<pid>/stat.
func procCPU(pid int) time.Duration {
	cpu, _ := procStat(pid)
	return cpu
}

// othersBusy is the CPU time that the machine's processes but those of
// own have used so far: the busy time of every CPU, from /proc/stat,
// less own's. It holds the time of interrupts, which the kernel counts
// apart from the processes' but charges to the process they interrupted
// (the bench's loopback traffic is most of them), and not the time the
// hypervisor stole.
func othersBusy(own []int) time.Duration {
	stat, err := os.ReadFile("/proc/stat")
	check(err)
	line, _, _ := strings.Cut(string(stat), "\n")
	fields := strings.Fields(line)
	// cpu user nice system idle iowait irq softirq steal ...
	if len(fields) < 8 || fields[0] != "cpu" {
		log.Fatal("/proc/stat: unexpected format")
	}
	var busy uint64
	for _, i := range []int{1, 2, 3, 6, 7} {
		v, err := strconv.ParseUint(fields[i], 10, 64)
		check(err)
		busy += v
	}
	d := time.Duration(busy) * (time.Second / 100) // USER_HZ, as in procStat
	for _, pid := range own {
		d -= procCPU(pid)
	}
	return d
}

// procStat is the CPU time (user and system) and the minor page faults of
// process pid so far, from /proc/<pid>/stat.
func procStat(pid int) (cpu time.Duration, faults uint64) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	check(err)
	// The fields after the command name, which is in parentheses and may
	// hold anything: minflt, utime and stime are the 10th, 14th and 15th
	// of the line.
	_, rest, ok := bytes.Cut(stat, []byte(") "))
	fields := strings.Fields(string(rest))
	if !ok || len(fields) < 13 {
		log.Fatalf("/proc/%d/stat: unexpected format", pid)
	}
	minflt, err1 := strconv.ParseUint(fields[7], 10, 64)
	utime, err2 := strconv.ParseUint(fields[11], 10, 64)
	stime, err3 := strconv.ParseUint(fields[12], 10, 64)
	check(errors.Join(err1, err2, err3))
	// Linux reports them in USER_HZ, 100 per second on every architecture
	// it exports to user space.
	return time.Duration(utime+stime) * (time.Second / 100), minflt
}

// procSwitches is the context switches, voluntary and not, of process
// pid's threads so far, from /proc/<pid>/task/*/status (the process's own
// status counts its first thread's alone).
func procSwitches(pid int) uint64 {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	check(err)
	var n uint64
	for _, task := range tasks {
		status, err := os.ReadFile(task)
		if err != nil {
			continue // a thread gone since the glob
		}
		for line := range strings.Lines(string(status)) {
			name, value, _ := strings.Cut(line, ":")
			if name == "voluntary_ctxt_switches" || name == "nonvoluntary_ctxt_switches" {
				v, err := strconv.ParseUint(strings.TrimSpace(value), 10, 64)
				check(err)
				n += v
			}
		}
	}
	return n
}

// profile starts a CPU profile of d on the Caddy process, written to
// path; the returned function waits for it.
func (p *caddyProcess) profile(d time.Duration, path string) (wait func()) {
	check(os.MkdirAll(filepath.Dir(path), 0o755))
	var wg sync.WaitGroup
	wg.Go(func() {
		res, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", p.admin, max(int(d.Round(time.Second)/time.Second), 1)))
		check(err)
		defer res.Body.Close()
		f, err := os.Create(path)
		check(err)
		_, err = io.Copy(f, res.Body)
		check(errors.Join(err, f.Close()))
	})
	return wg.Wait
}

// strace counts the process's system calls, in all its threads, until the
// function it returns is called, which returns the counts by name (and
// leaves strace's table at path).
func (p *caddyProcess) strace(path string) (counts func() map[string]int) {
	check(os.MkdirAll(filepath.Dir(path), 0o755))
	cmd := exec.Command("strace", "-f", "-c", "-o", path, "-p", strconv.Itoa(p.pid))
	stderr, err := cmd.StderrPipe()
	check(err)
	check(cmd.Start())
	// strace says so once it has attached to every thread.
	attached := bufio.NewScanner(stderr)
	for attached.Scan() && !strings.Contains(attached.Text(), "attached") {
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	return func() map[string]int {
		check(cmd.Process.Signal(os.Interrupt))
		_ = cmd.Wait() // strace exits with the signal's status
		table, err := os.ReadFile(path)
		check(err)
		counts := map[string]int{}
		// "% time seconds usecs/call calls [errors] syscall" rows; the
		// errors column is empty for calls that never failed.
		for line := range strings.Lines(string(table)) {
			f := strings.Fields(line)
			if len(f) < 5 || f[len(f)-1] == "total" {
				continue
			}
			if calls, err := strconv.Atoi(f[3]); err == nil {
				counts[f[len(f)-1]] = calls
			}
		}
		return counts
	}
}

func profileName(format, route string) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(format+"-"+route))
	return name
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

// startCaddy runs Caddy with config in a child process (this binary,
// re-executed with "serve"), and returns it and how to stop it.
func startCaddy(dir, name, config string) (*exec.Cmd, func()) {
	path := filepath.Join(dir, name+".Caddyfile")
	check(os.WriteFile(path, []byte(config), 0o600))
	self, err := os.Executable()
	check(err)
	child := exec.Command(self, "serve", path)
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	check(child.Start())
	return child, func() {
		_ = child.Process.Signal(syscall.SIGTERM)
		_ = child.Wait()
	}
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

// startRedis starts redis-server from PATH on a loopback port, without
// persistence, and returns its URL, its pid and how to stop it; "" when
// redis-server is not on PATH.
func startRedis() (url string, pid int, stop func()) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", 0, func() {}
	}
	dir, err := os.MkdirTemp("", "ucwa-bench-redis")
	check(err)
	port := freePort()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--logfile", "")
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	check(cmd.Start())
	waitForPort(port)
	return fmt.Sprintf("redis://127.0.0.1:%d/0", port), cmd.Process.Pid, func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
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

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

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
