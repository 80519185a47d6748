package testkit

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS is a tiny authoritative DNS server on a loopback UDP port, for
// reverse_proxy's dynamic upstream sources (and a transport's resolvers)
// to look names up at: it answers the A and SRV questions for the names
// a test gave it records, an empty answer for any other type of a name
// it knows (AAAA, say), NXDOMAIN for a name it does not, nothing at all
// for a name made quiet (a server that is down, or a firewall that drops
// its packets), and counts every question it was asked.
type DNS struct {
	conn net.PacketConn

	mu    sync.Mutex
	a     map[string][]netip.Addr // by lower-case fully qualified name
	srv   map[string][]SRV
	quiet map[string]bool // names whose questions get no answer
	asked map[string]int  // by type and name: "A fe1.zone.test."
}

// SRV is one SRV record's data.
type SRV struct {
	Priority, Weight, Port uint16
	Target                 string // a host name, fully qualified or not
}

// NewDNS starts a DNS server on a free loopback UDP port, serving until
// the test ends.
func NewDNS(t testing.TB) *DNS {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening for DNS: %v", err)
	}
	d := &DNS{conn: conn, a: map[string][]netip.Addr{}, srv: map[string][]SRV{}, quiet: map[string]bool{}, asked: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.serve()
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		<-done
	})
	return d
}

// Addr is the server's address, as a source's resolvers name it.
func (d *DNS) Addr() string { return d.conn.LocalAddr().String() }

// SetA makes name's A records addrs (IPv4 each).
func (d *DNS) SetA(name string, addrs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ips := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		ips[i] = netip.MustParseAddr(a)
	}
	d.a[fqdn(name)] = ips
}

// SetSRV makes name's SRV records records.
func (d *DNS) SetSRV(name string, records ...SRV) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.srv[fqdn(name)] = records
}

// SetQuiet makes the server answer no question for name.
func (d *DNS) SetQuiet(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.quiet[fqdn(name)] = true
}

// Asked is how many questions of type qtype ("A", "AAAA", "SRV") for
// name the server was asked.
func (d *DNS) Asked(qtype, name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.asked[qtype+" "+fqdn(name)]
}

// fqdn is name fully qualified and in lower case, as the server keys it.
func fqdn(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// serve answers every query until the connection closes.
func (d *DNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if answer, ok := d.answer(buf[:n]); ok {
			_, _ = d.conn.WriteTo(answer, from)
		}
	}
}

// answer builds the response to query, the one question a resolver
// asks; false for a message that is none, and for a question that gets
// no answer.
func (d *DNS) answer(query []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.ToLower(q.Name.String())
	d.mu.Lock()
	d.asked[strings.TrimPrefix(q.Type.String(), "Type")+" "+name]++
	a, hasA := d.a[name]
	srv, hasSRV := d.srv[name]
	quiet := d.quiet[name]
	d.mu.Unlock()
	if quiet {
		return nil, false
	}

	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !hasA && !hasSRV {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 0}
	switch q.Type {
	case dnsmessage.TypeA:
		for _, ip := range a {
			if err := b.AResource(rr, dnsmessage.AResource{A: ip.As4()}); err != nil {
				return nil, false
			}
		}
	case dnsmessage.TypeSRV:
		for _, s := range srv {
			target, err := dnsmessage.NewName(fqdn(s.Target))
			if err != nil {
				return nil, false
			}
			if err := b.SRVResource(rr, dnsmessage.SRVResource{Priority: s.Priority, Weight: s.Weight, Port: s.Port, Target: target}); err != nil {
				return nil, false
			}
		}
	}
	out, err := b.Finish()
	return out, err == nil
}
