package caddymodule

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

// guidPattern is a GUID in its registry format (RFC 9562 4).
var guidPattern = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// FuzzFoldGUID: a caller's claim that is a GUID, in any letter case, is
// matched in lower case, and any other value exactly as it is: foldGUID
// lowers a GUID and leaves anything else whole (another value of 36
// bytes, non-ASCII letters and the Kelvin sign too), and two claims
// fold alike only when they are the same GUID or the same value.
func FuzzFoldGUID(f *testing.F) {
	for _, seed := range []string{
		"72F988BF-86F1-41AF-91AB-2D7CD011DB47", "72f988bf-86f1-41af-91ab-2d7cd011db47",
		"{72F988BF-86F1-41AF-91AB-2D7CD011DB47}", "72F988BF-86F1-41AF-91AB-2D7CD011DBG7",
		"72F988BF_86F1_41AF_91AB_2D7CD011DB47", "72F988BF-86F1-41AF-91AB-2D7CD011D\u212a", "ADMIN@CONTOSO.COM", "",
	} {
		f.Add(seed, strings.ToLower(seed))
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		fa, fb := foldGUID(a), foldGUID(b)
		for _, c := range []struct{ in, out string }{{a, fa}, {b, fb}} {
			want := c.in
			if guidPattern.MatchString(c.in) {
				want = strings.ToLower(c.in)
			}
			if c.out != want || foldGUID(c.out) != c.out {
				t.Fatalf("foldGUID(%q) = %q, want %q", c.in, c.out, want)
			}
		}
		if same := fa == fb; same != (a == b || guidPattern.MatchString(a) && strings.EqualFold(a, b)) {
			t.Fatalf("%q and %q fold to %q and %q", a, b, fa, fb)
		}
	})
}

// FuzzAddressNetwork: a client's address counts, in the limits and the
// store's shares, as itself over IPv4 (an IPv4 address mapped into
// IPv6 as that IPv4 address), and over IPv6 as its /64, its zone left
// out: every address of one /64 counts as one, an address of another
// /64 as another; text that is no address counts as itself.
func FuzzAddressNetwork(f *testing.F) {
	for _, seed := range []string{
		"192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1", "2001:db8:0:0:ffff::1", "fe80::1%eth0", "::", "::1",
		"2001:db8::ffff:192.0.2.1", "1.2.3.4:80", "[2001:db8::1]", "unix/@", "",
	} {
		f.Add(seed, uint64(0))
	}
	f.Fuzz(func(t *testing.T, ip string, low uint64) {
		got := addressNetwork(ip)
		addr, err := netip.ParseAddr(ip)
		switch {
		case err != nil:
			if got != ip {
				t.Fatalf("%q, no address: %q", ip, got)
			}
			return
		case addr.Is4():
			if got != ip {
				t.Fatalf("%q: %q", ip, got)
			}
			return
		case addr.Is4In6():
			if got != addr.Unmap().String() || addressNetwork(got) != got {
				t.Fatalf("%q: %q", ip, got)
			}
			return
		}
		p, err := netip.ParsePrefix(got)
		if err != nil || p.Bits() != 64 || p.Masked() != p || !p.Contains(addr.WithZone("")) {
			t.Fatalf("%q: %q", ip, got)
		}
		// Another address of the same /64, and one of the next.
		b := addr.WithZone("").As16()
		for i := 8; i < 16; i++ {
			b[i] = byte(low >> (8 * (15 - i)))
		}
		if other := netip.AddrFrom16(b); !other.Is4In6() && addressNetwork(other.String()) != got {
			t.Fatalf("%q: %q, but %q for %v", ip, got, addressNetwork(other.String()), other)
		}
		b[7]++
		if next := netip.AddrFrom16(b); !next.Is4In6() && addressNetwork(next.String()) == got {
			t.Fatalf("%q and %v: both %q", ip, next, got)
		}
	})
}
