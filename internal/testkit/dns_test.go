package testkit

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
)

// TestDNS: Go's resolver, pointed at a DNS server, gets the A and SRV
// records given it, no AAAA for a name it knows, NXDOMAIN for one it does
// not, and the server counts each question.
func TestDNS(t *testing.T) {
	d := NewDNS(t)
	d.SetA("fe1.zone.test", "127.0.0.1", "127.0.0.2")
	d.SetSRV("_ucwa._tcp.zone.test", SRV{Priority: 1, Port: 4443, Target: "fe1.zone.test"}, SRV{Priority: 2, Port: 4444, Target: "FE2.zone.test."})
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dialer net.Dialer
		return dialer.DialContext(ctx, "udp", d.Addr())
	}}
	ctx := context.Background()
	ips, err := r.LookupIP(ctx, "ip", "fe1.zone.test")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ip := range ips {
		got = append(got, ip.String())
	}
	if slices.Sort(got); !slices.Equal(got, []string{"127.0.0.1", "127.0.0.2"}) {
		t.Errorf("A fe1.zone.test: %v", got)
	}
	_, srvs, err := r.LookupSRV(ctx, "ucwa", "tcp", "zone.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(srvs) != 2 || srvs[0].Target != "fe1.zone.test." || srvs[0].Port != 4443 || srvs[1].Target != "fe2.zone.test." || srvs[1].Port != 4444 {
		t.Errorf("SRV _ucwa._tcp.zone.test: %+v %+v", *srvs[0], *srvs[1])
	}
	var dnsErr *net.DNSError
	if _, err := r.LookupIP(ctx, "ip4", "nowhere.zone.test"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("nowhere.zone.test: %v, want not found", err)
	}
	for _, q := range []struct {
		qtype, name string
		want        int
	}{{"A", "fe1.zone.test", 1}, {"AAAA", "FE1.zone.test.", 1}, {"SRV", "_ucwa._tcp.zone.test", 1}, {"A", "fe2.zone.test", 0}} {
		if got := d.Asked(q.qtype, q.name); got != q.want {
			t.Errorf("%s %s asked %d times, want %d", q.qtype, q.name, got, q.want)
		}
	}
}
