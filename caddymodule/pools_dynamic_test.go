package caddymodule

import (
	"fmt"
	"net"
	"net/http"
	"strings"
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

// TestPoolDynamicLocation: a pool's Location on the name a pool's
// dynamic a source looks up (here localhost, whose upstreams are dialed
// at 127.0.0.1) names a pool's host, as `primary localhost:port` names
// it: rewritten to the edge's, whichever pool answers it, when it is the
// only name (dynamic a) or one of several (dynamic multi). A Location
// on another host passes unchanged.
func TestPoolDynamicLocation(t *testing.T) {
	const path = "/ucwa/v1/applications/1/communication/invitations/9"
	for _, tc := range []struct {
		name string
		// primary: the primary's upstreams, in order, up or down;
		// dynamic: found by dynamic sources (see primaryPool); backup:
		// a backup, up, takes the request.
		primary []string
		dynamic bool
		backup  bool
		// location is the answer's Location; wantEdge whether it is
		// rewritten to the edge's host.
		location string
		wantEdge bool
	}{
		{"named localhost", []string{"up"}, false, false, "http://localhost" + path, true},
		{"dynamic a localhost", []string{"up"}, true, false, "http://localhost" + path, true},
		{"dynamic a localhost, a trailing dot and upper case", []string{"up"}, true, false, "http://LocalHost." + path, true},
		{"dynamic multi, fe1 down", []string{"down", "up"}, true, false, "http://localhost:1" + path, true},
		{"the backup, on a dynamic primary's name", []string{"down"}, true, true, "http://localhost" + path, true},
		{"dynamic a localhost, another host", []string{"up"}, true, false, "http://elsewhere.example" + path, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer := testkit.AnswerStatus(http.StatusCreated, map[string]string{"Location": tc.location}, "")
			var addrs []string
			for i, kind := range tc.primary {
				if kind == "down" {
					addrs = append(addrs, testkit.DownAddr(t))
					continue
				}
				addrs = append(addrs, testkit.NewPool(t, fmt.Sprint("fe", i+1), answer).Addr())
			}
			if !tc.dynamic {
				// As a client names it: localhost, not its address.
				for i, addr := range addrs {
					addrs[i] = strings.Replace(addr, "127.0.0.1", "localhost", 1)
				}
			}
			pools := primaryPool(t, addrs, "", tc.dynamic)
			if tc.backup {
				pools += "\t\tbackup " + testkit.NewPool(t, "backup", answer).Addr() + "\n"
			}
			e := startEdge(t, "caddyfile", poolsCaddyfile(pools))
			resp := e.startPhoneAudio("op-location")
			if resp.Status != http.StatusCreated {
				t.Fatalf("%d %s, want 201", resp.Status, resp.Body)
			}
			want := tc.location
			if tc.wantEdge {
				want = e.url(path)
			}
			if got := resp.Header.Get("Location"); got != want {
				t.Errorf("Location %q, want %q", got, want)
			}
		})
	}
}
