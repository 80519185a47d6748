package caddymodule

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestPoolOtherUpstreamsDynamic: a pool whose upstreams come from
// dynamic upstream sources (reverse_proxy's dynamic a, several combined
// by dynamic multi), whose lookups hand reverse_proxy new upstream
// values at each request, delivers, tries another of its upstreams, fails
// over, answers 410 CannotRedirect and never sends a request that may
// have reached an upstream again exactly as a pool of named upstreams
// does (TestPoolOtherUpstreams, the same cases).
func TestPoolOtherUpstreamsDynamic(t *testing.T) {
	for _, tt := range otherUpstreamsCases {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, dynamicA) })
	}
}

// upstreamsFrom is where a test pool's upstreams come from.
type upstreamsFrom int

const (
	// namedUpstreams: named by their addresses (primary host:port ...).
	namedUpstreams upstreamsFrom = iota
	// dynamicA: each found by an A lookup of localhost at its port,
	// combined by dynamic multi when there are several (see
	// dynamicUpstreams).
	dynamicA
	// dynamicSRV: found by an SRV lookup at a test DNS server, whose
	// records name each by a host name of its own at its port, in order
	// (see srvUpstreams).
	dynamicSRV
)

// primaryPool is the primary's line and block of the ucwa directive, for
// upstreams addrs (loopback host:port) and subdirectives block, with the
// upstreams found as from says, and the addresses reverse_proxy dials
// them at (addrs, but for dynamicSRV: by name).
func primaryPool(t *testing.T, addrs []string, block string, from upstreamsFrom) (string, []string) {
	t.Helper()
	switch from {
	case dynamicA:
		return fmt.Sprintf("\t\tprimary {\n\t\t\t%s\n\t\t\t%s\n\t\t}\n", dynamicUpstreams(t, addrs), block), addrs
	case dynamicSRV:
		return srvPrimaryPool(t, testkit.NewDNS(t), addrs, block)
	}
	return fmt.Sprintf("\t\tprimary %s {\n\t\t\t%s\n\t\t}\n", strings.Join(addrs, " "), block), addrs
}

// dynamicUpstreams is the dynamic subdirective of a pool whose upstreams
// are addrs (see primaryPool), looked up again every second.
func dynamicUpstreams(t *testing.T, addrs []string) string {
	t.Helper()
	sources := make([]string, len(addrs))
	for i, addr := range addrs {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("upstream %q: not a loopback host:port that localhost resolves to", addr)
		}
		sources[i] = "a localhost " + port + " {\n\t\t\t\t\tversions ipv4\n\t\t\t\t\trefresh 1s\n\t\t\t\t}"
	}
	if len(sources) == 1 {
		return "dynamic " + sources[0]
	}
	return "dynamic multi {\n\t\t\t\t" + strings.Join(sources, "\n\t\t\t\t") + "\n\t\t\t}"
}

// TestPoolDynamicLocation: a pool's Location on the name a pool's
// dynamic a source looks up (here localhost, whose upstreams are dialed
// at 127.0.0.1) names a pool's host, as `primary localhost:port` names
// it: rewritten to the edge's, whichever pool answers it, when it is the
// only name (dynamic a) or one of several (dynamic multi). So does one
// on a host a dynamic srv source's records name (dialed by name): the
// one dialed, another of the pool's, or the primary's when the backup
// answers, as `primary fe1 fe2` names both. A Location on another host
// passes unchanged.
func TestPoolDynamicLocation(t *testing.T) {
	const path = "/ucwa/v1/applications/1/communication/invitations/9"
	for _, tc := range []struct {
		name string
		// primary: the primary's upstreams, in order, up or down,
		// tried first to last (lb_policy first); from: where they come
		// from (see primaryPool); backup: a backup, up, takes the
		// request.
		primary []string
		from    upstreamsFrom
		backup  bool
		// location is the answer's Location, {fe1} and {fe2} the host
		// names a dynamic srv source's records give the primary's
		// upstreams; wantEdge whether it is rewritten to the edge's
		// host.
		location string
		wantEdge bool
	}{
		{"named localhost", []string{"up"}, namedUpstreams, false, "http://localhost" + path, true},
		{"dynamic a localhost", []string{"up"}, dynamicA, false, "http://localhost" + path, true},
		{"dynamic a localhost, a trailing dot and upper case", []string{"up"}, dynamicA, false, "http://LocalHost." + path, true},
		{"dynamic multi, fe1 down", []string{"down", "up"}, dynamicA, false, "http://localhost:1" + path, true},
		{"the backup, on a dynamic primary's name", []string{"down"}, dynamicA, true, "http://localhost" + path, true},
		{"dynamic a localhost, another host", []string{"up"}, dynamicA, false, "http://elsewhere.example" + path, false},
		{"dynamic srv, the host dialed", []string{"up"}, dynamicSRV, false, "http://{fe1}" + path, true},
		{"dynamic srv, fe1 down, the host dialed, a trailing dot", []string{"down", "up"}, dynamicSRV, false, "https://{fe2}.:4443" + path, true},
		{"dynamic srv, fe1 down, fe1", []string{"down", "up"}, dynamicSRV, false, "http://{fe1}" + path, true},
		{"dynamic srv, fe2 up, fe2 on fe1 (tried first)", []string{"up", "up"}, dynamicSRV, false, "http://{fe2}" + path, true},
		{"the backup, on a dynamic srv primary's host", []string{"down"}, dynamicSRV, true, "http://{fe1}" + path, true},
		{"dynamic srv, another host", []string{"up"}, dynamicSRV, false, "http://elsewhere.example" + path, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The pools answer the Location once the names it holds are
			// known, before the edge starts.
			var location atomic.Pointer[string]
			answer := func(p *testkit.Pool, w http.ResponseWriter, r *http.Request) {
				testkit.AnswerStatus(http.StatusCreated, map[string]string{"Location": *location.Load()}, "")(p, w, r)
			}
			var addrs []string
			for i, kind := range tc.primary {
				if kind == "down" {
					addrs = append(addrs, testkit.DownAddr(t))
					continue
				}
				addrs = append(addrs, testkit.NewPool(t, fmt.Sprint("fe", i+1), answer).Addr())
			}
			if tc.from == namedUpstreams {
				// As a client names it: localhost, not its address.
				for i, addr := range addrs {
					addrs[i] = strings.Replace(addr, "127.0.0.1", "localhost", 1)
				}
			}
			pools, dials := primaryPool(t, addrs, "lb_policy first", tc.from)
			loc := tc.location
			for i, dial := range dials {
				host, _, _ := net.SplitHostPort(dial)
				loc = strings.ReplaceAll(loc, fmt.Sprintf("{fe%d}", i+1), strings.TrimSuffix(host, "."))
			}
			location.Store(&loc)
			if tc.backup {
				pools += "\t\tbackup " + testkit.NewPool(t, "backup", answer).Addr() + "\n"
			}
			e := startEdge(t, "caddyfile", poolsCaddyfile(pools))
			resp := e.startPhoneAudio("op-location")
			if resp.Status != http.StatusCreated {
				t.Fatalf("%d %s, want 201", resp.Status, resp.Body)
			}
			want := loc
			if tc.wantEdge {
				want = e.url(path)
			}
			if got := resp.Header.Get("Location"); got != want {
				t.Errorf("Location %q, want %q", got, want)
			}
		})
	}
}
