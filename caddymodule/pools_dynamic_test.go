package caddymodule

import (
	"fmt"
	"net"
	"strings"
	"testing"
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
		t.Run(tt.name, func(t *testing.T) { tt.run(t, true) })
	}
}

// primaryPool is the primary's line and block of the ucwa directive, for
// upstreams addrs (loopback host:port) and subdirectives block: addrs
// named or, when dynamic, found by dynamic upstream sources, each an A
// lookup of localhost (IPv4 alone, which /etc/hosts answers with
// 127.0.0.1 wherever localhost is loopback) at its port, combined by
// dynamic multi in their order when there are several.
func primaryPool(t *testing.T, addrs []string, block string, dynamic bool) string {
	t.Helper()
	if !dynamic {
		return fmt.Sprintf("\t\tprimary %s {\n\t\t\t%s\n\t\t}\n", strings.Join(addrs, " "), block)
	}
	return fmt.Sprintf("\t\tprimary {\n\t\t\t%s\n\t\t\t%s\n\t\t}\n", dynamicUpstreams(t, addrs), block)
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
