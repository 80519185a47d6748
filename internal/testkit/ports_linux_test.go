package testkit

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestFreePortOutsideEphemeralRange: a free port lies below the range
// from which connect() takes outgoing connections' local ports, so that a
// redis-server killed and restarted on it cannot find it held by some
// process's connection ("Address already in use" at the restart).
func TestFreePortOutsideEphemeralRange(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Skipf("no ephemeral port range to read: %v", err)
	}
	low, err := strconv.Atoi(strings.Fields(string(b))[0])
	if err != nil {
		t.Fatal(err)
	}
	if low < 11000 {
		t.Skipf("the ephemeral range starts at %d: too few ports below it", low)
	}
	for range 20 {
		if port := FreePort(t); port >= low || port < 10000 {
			t.Fatalf("FreePort gave %d, outside [10000, %d)", port, low)
		}
	}
}
