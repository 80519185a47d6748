package caddymodule

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestPoolOtherUpstreamsSRV: a pool whose upstreams come from a dynamic
// srv source, whose records name its front ends by host name (each dialed
// by name, resolved at the test's DNS server), delivers, tries another
// of its upstreams after one certainly did not get a request, fails
// over, answers 410 CannotRedirect and never sends a request that may
// have reached an upstream again exactly as a pool of named upstreams
// does (TestPoolOtherUpstreams, the same cases).
func TestPoolOtherUpstreamsSRV(t *testing.T) {
	for _, tt := range otherUpstreamsCases {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, dynamicSRV) })
	}
}

// srvPrimaryPool is primaryPool's dynamicSRV primary, its records at
// dns.
func srvPrimaryPool(t *testing.T, dns *testkit.DNS, addrs []string, block string) (string, []string) {
	t.Helper()
	source, dials := srvUpstreams(t, dns, addrs)
	return fmt.Sprintf("\t\tprimary {\n\t\t\t%s\n\t\t\t%s\n\t\t}\n", source, block), dials
}

// srvZones numbers the zones of srvUpstreams: reverse_proxy caches its
// lookups for the whole process by name, and a zone is never looked up
// by another test's pools.
var srvZones atomic.Int64

// srvUpstreams is the subdirectives of a pool whose upstreams are addrs
// (loopback host:port), in order, found by a dynamic srv source at dns:
// each an SRV record of _ucwa._tcp.<zone> naming feN.<zone> (N from 1,
// the record's priority N, so that the lookup keeps the order) at the
// address's port, and an A record of that name at its host, which the
// pool's transport looks up at dns too. It returns them and the
// addresses reverse_proxy dials the upstreams at, by name
// (fe1.<zone>.:port).
func srvUpstreams(t *testing.T, dns *testkit.DNS, addrs []string) (string, []string) {
	t.Helper()
	zone := srvZone()
	records := make([]testkit.SRV, len(addrs))
	dials := make([]string, len(addrs))
	for i, addr := range addrs {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("upstream %q: %v", addr, err)
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			t.Fatalf("upstream %q: %v", addr, err)
		}
		target := fmt.Sprintf("fe%d.%s.", i+1, zone)
		dns.SetA(target, host)
		records[i] = testkit.SRV{Priority: uint16(i + 1), Port: uint16(n), Target: target}
		dials[i] = net.JoinHostPort(target, port)
	}
	dns.SetSRV("_ucwa._tcp."+zone, records...)
	return srvSource(zone, dns), dials
}

// srvZone is a zone of its own for a test's SRV records (see srvZones).
func srvZone() string {
	return fmt.Sprintf("z%d.test", srvZones.Add(1))
}

// srvSource is a pool's dynamic srv source of _ucwa._tcp.<zone>, and a
// transport that resolves the host names its records name, both at dns.
// The source's cache answers for the whole test (refresh 1h), so that
// what dns is asked does not go by how long the test takes.
// transport holds more of the transport's subdirectives.
func srvSource(zone string, dns *testkit.DNS, transport ...string) string {
	lines := []string{
		"dynamic srv {",
		"\tservice ucwa",
		"\tproto tcp",
		"\tname " + zone,
		"\trefresh 1h",
		"\tresolvers " + dns.Addr(),
		"}",
		"transport http {",
		"\tresolvers " + dns.Addr(),
	}
	for _, l := range transport {
		lines = append(lines, "\t"+l)
	}
	return strings.Join(append(lines, "}"), "\n\t\t\t")
}

// TestPoolDynamicARecords: a pool of a dynamic a source whose name has
// two A records, 127.0.0.1 and 127.0.0.2 (both loopback), at one port,
// where one address refuses connections, delivers every request on the
// other, once, whatever the lb_policy, and looks the name up once (its
// cache, refresh 1h, answers the edge's later attempts); with both refusing, the
// backup takes the requests, or the 410 answers them. A Location on the
// other address, or on the name, names a pool's host, as `primary
// 127.0.0.1:port 127.0.0.2:port` names both.
func TestPoolDynamicARecords(t *testing.T) {
	const (
		requests = 10
		path     = "/ucwa/v1/applications/1/communication/invitations/9"
	)
	for _, tc := range []struct {
		name string
		// up is the address of the two that a pool listens on ("" for
		// neither); backup: a backup, up, is configured; block: the
		// primary's subdirectives.
		up     string
		backup bool
		block  string
		// location is the answer's Location, {other} the address of
		// the two nothing listens on, {name} the name looked up.
		location    string
		wantStatus  int
		wantBackup  bool
		wantFailovr int
	}{
		{name: "127.0.0.1 refuses, random", up: "127.0.0.2", location: "http://{other}" + path, wantStatus: 201},
		{name: "127.0.0.2 refuses, random", up: "127.0.0.1", location: "http://{other}:8080" + path, wantStatus: 201},
		{name: "127.0.0.1 refuses, first", up: "127.0.0.2", block: "lb_policy first", location: "http://{name}" + path, wantStatus: 201},
		{name: "127.0.0.2 refuses, first", up: "127.0.0.1", block: "lb_policy first", location: "http://{other}" + path, wantStatus: 201},
		{name: "127.0.0.1 refuses, round_robin", up: "127.0.0.2", block: "lb_policy round_robin", location: "http://{other}" + path, wantStatus: 201},
		{name: "both refuse, backup", backup: true, location: "http://{other}" + path, wantStatus: 201, wantBackup: true, wantFailovr: requests},
		{name: "both refuse, no backup", wantStatus: 410},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dns := testkit.NewDNS(t)
			name := "pool." + srvZone()
			dns.SetA(name, "127.0.0.1", "127.0.0.2")
			// Reserved on 127.0.0.1, where nothing listens unless the
			// pool does; 127.0.0.2's port is free while 127.0.0.1's is
			// bound without a wildcard.
			port := testkit.Port(t)
			other := "127.0.0.1"
			if tc.up == "127.0.0.1" {
				other = "127.0.0.2"
			}
			loc := strings.NewReplacer("{other}", other, "{name}", name).Replace(tc.location)
			answer := testkit.AnswerStatus(201, map[string]string{"Location": loc}, "")
			var fe *testkit.Pool
			if tc.up != "" {
				fe = testkit.NewPoolAt(t, tc.up, port, "fe", answer)
			}
			pools := fmt.Sprintf("\t\tprimary {\n\t\t\tdynamic a %s %d {\n\t\t\t\tresolvers %s\n\t\t\t\tversions ipv4\n\t\t\t\trefresh 1h\n\t\t\t}\n\t\t\t%s\n\t\t}\n",
				name, port, dns.Addr(), tc.block)
			var backup *testkit.Pool
			if tc.backup {
				backup = testkit.NewPool(t, "backup", answer)
				pools += "\t\tbackup " + backup.Addr() + "\n"
			}
			e := startEdge(t, "caddyfile", poolsCaddyfile(pools), testkit.WithAdmin())
			for i := range requests {
				resp := e.startPhoneAudio(fmt.Sprintf("op-%d", i))
				if resp.Status != tc.wantStatus {
					t.Fatalf("request %d: status %d, want %d; body %s", i, resp.Status, tc.wantStatus, resp.Body)
				}
				if tc.wantStatus == 201 {
					if got, want := resp.Header.Get("Location"), e.url(path); got != want {
						t.Errorf("request %d: Location %q, want %q", i, got, want)
					}
				}
			}
			// Every request received whole once, by one server.
			seen := map[string]string{}
			for _, p := range []*testkit.Pool{fe, backup} {
				if p == nil {
					continue
				}
				for _, op := range p.OperationIDs() {
					if other, ok := seen[op]; ok {
						t.Errorf("%s delivered twice: at %s and %s", op, other, p.Name())
					}
					seen[op] = p.Name()
				}
				want := 0
				if (p == backup) == tc.wantBackup {
					want = requests
				}
				if got := len(p.OperationIDs()); got != want {
					t.Errorf("%s received %d requests, want %d", p.Name(), got, want)
				}
			}
			if got := dns.Asked("A", name); got != 1 {
				t.Errorf("A %s asked %d times, want once", name, got)
			}
			if got := e.Metric("caddy_ucwa_pool_failovers_total"); got != float64(tc.wantFailovr) {
				t.Errorf("failovers %v, want %d", got, tc.wantFailovr)
			}
		})
	}
}

// TestPoolSRVLookups: a dynamic srv pool whose lookup finds nothing
// (the domain unknown, or without records) has no upstream to take the
// request, and one whose record names a host that does not resolve, or
// whose lookup the DNS server never answers (the transport's
// dial_timeout ends it), could not have delivered to it: either way the
// request goes to another
// target of the pool, else to the backup, else gets the 410, and is
// delivered once at most.
func TestPoolSRVLookups(t *testing.T) {
	const requests = 5
	cases := []struct {
		name string
		// records: the domain's SRV records: "nxdomain" none at all (the
		// domain is unknown), else each target: up, unresolved (a name
		// without an A record) or unanswered (a name whose questions get
		// no answer); lb_policy first tries them in order.
		records    []string
		backup     bool
		wantStatus int
		wantFirst  bool // the first up target takes every request
		wantBackup bool
	}{
		{"the domain unknown, backup", []string{"nxdomain"}, true, 201, false, true},
		{"the domain unknown, no backup", []string{"nxdomain"}, false, 410, false, false},
		{"no records, backup", nil, true, 201, false, true},
		{"no records, no backup", nil, false, 410, false, false},
		{"fe1 unresolved, fe2 up", []string{"unresolved", "up"}, false, 201, true, false},
		{"fe1 unresolved, backup", []string{"unresolved"}, true, 201, false, true},
		{"fe1 unresolved, no backup", []string{"unresolved"}, false, 410, false, false},
		{"fe1 unanswered, fe2 up", []string{"unanswered", "up"}, false, 201, true, false},
		{"fe1 unanswered, backup", []string{"unanswered"}, true, 201, false, true},
	}
	// A site for each case, each with its DNS server and pools, all in
	// one config: the cases whose lookups time out wait side by side.
	type site struct {
		port       string
		up, backup *testkit.Pool
	}
	sites := make([]site, len(cases))
	config := ""
	for i, tc := range cases {
		s := site{port: fmt.Sprintf("CASE%d_PORT", i)}
		dns := testkit.NewDNS(t)
		zone := srvZone()
		var records []testkit.SRV
		for i, kind := range tc.records {
			target := fmt.Sprintf("fe%d.%s", i+1, zone)
			port := uint16(testkit.Port(t))
			switch kind {
			case "nxdomain":
				continue
			case "unanswered":
				dns.SetQuiet(target)
			case "up":
				s.up = testkit.NewPool(t, "fe", testkit.AnswerCreated)
				p, _ := strconv.Atoi(strings.TrimPrefix(s.up.Addr(), "127.0.0.1:"))
				port = uint16(p)
				dns.SetA(target, "127.0.0.1")
			}
			records = append(records, testkit.SRV{Priority: uint16(i + 1), Port: port, Target: target})
		}
		if len(tc.records) == 0 || tc.records[0] != "nxdomain" {
			dns.SetSRV("_ucwa._tcp."+zone, records...)
		}
		pools := fmt.Sprintf("\t\tprimary {\n\t\t\t%s\n\t\t\tlb_policy first\n\t\t}\n", srvSource(zone, dns, "dial_timeout 500ms"))
		if tc.backup {
			s.backup = testkit.NewPool(t, "backup", testkit.AnswerCreated)
			pools += "\t\tbackup " + s.backup.Addr() + "\n"
		}
		config += poolsSite(s.port, pools)
		sites[i] = s
	}
	edges := startEdge(t, "caddyfile", config)
	for i, tc := range cases {
		s := sites[i]
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := edges.site(t, s.port)
			for i := range requests {
				if resp := e.startPhoneAudio(fmt.Sprintf("op-%d", i)); resp.Status != tc.wantStatus {
					t.Fatalf("request %d: status %d, want %d; body %s", i, resp.Status, tc.wantStatus, resp.Body)
				}
			}
			for _, c := range []struct {
				p    *testkit.Pool
				want bool
			}{{s.up, tc.wantFirst}, {s.backup, tc.wantBackup}} {
				if c.p == nil {
					continue
				}
				want := 0
				if c.want {
					want = requests
				}
				if got := c.p.OperationIDs(); len(got) != want || len(got) > 0 && len(slices.Compact(slices.Sorted(slices.Values(got)))) != len(got) {
					t.Errorf("%s received %v, want %d requests, each once", c.p.Name(), got, want)
				}
			}
		})
	}
}
