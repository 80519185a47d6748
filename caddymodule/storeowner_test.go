package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/ucwa-edge/caddy-ucwa/internal/bearer"
)

// TestStoreOwner: whom a request's reservations count for in a memory
// store is the digest of its verified caller (tenant: tid, or for a
// token without tid of an issuer other than the first its iss, marked
// apart from a tid; and oid or else sub), the same whether the grant
// made it once or a request made it; a token without a caller id counts
// for the client's address, as a request without a token does, by a
// digest keyed for the process (see storeDigest), made for each request.
func TestStoreOwner(t *testing.T) {
	digest := func(keyed bool, parts ...[]byte) string {
		h := []byte(storeOwnerVersion)
		for _, p := range parts {
			h = append(h, p...)
		}
		sum := sha256.Sum256(h)
		if keyed {
			sum = storeDigest(true, h, storeOwnerLen)
		}
		return string(sum[:storeOwnerLen])
	}
	caller := func(tid, id string) string {
		return digest(false, []byte{1}, binary.AppendUvarint(nil, uint64(len(tid))), []byte(tid), []byte(id))
	}
	ofIssuer := func(iss, id string) string {
		return digest(false, []byte{2}, binary.AppendUvarint(nil, uint64(len(iss))), []byte(iss), []byte(id))
	}
	const first, second = "https://first.example/", "https://second.example/"
	r := httptest.NewRequest("POST", "/", nil)
	address := digest(true, []byte{0}, []byte(clientNetwork(r)))
	for _, tc := range []struct {
		name   string
		claims bearer.Claims // nil: no token
		want   string
	}{
		{"oid", bearer.Claims{"tid": "t1", "oid": "o1", "sub": "s1"}, caller("t1", "o1")},
		{"sub without oid", bearer.Claims{"tid": "t1", "sub": "s1"}, caller("t1", "s1")},
		{"no tid", bearer.Claims{"oid": "o1"}, caller("", "o1")},
		{"no tid, of the first issuer", bearer.Claims{"iss": first, "oid": "o1"}, caller("", "o1")},
		{"no tid, of another issuer", bearer.Claims{"iss": second, "oid": "o1"}, ofIssuer(second, "o1")},
		{"a tid, of another issuer", bearer.Claims{"iss": second, "tid": "t1", "oid": "o1"}, caller("t1", "o1")},
		{"a tid the text of an issuer", bearer.Claims{"iss": first, "tid": second, "oid": "o1"}, caller(second, "o1")},
		{"tid runs not into the id", bearer.Claims{"tid": "t", "oid": "1o1"}, caller("t", "1o1")},
		{"no caller id", bearer.Claims{"tid": "t1"}, address},
		{"no token", nil, address},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := intake{r: r}
			if tc.claims != nil {
				in.grant = makeGrant(tc.claims, first, false, nil)
			}
			var id string
			if in.grant != nil {
				_, _, id = in.grant.caller()
			}
			if got := string(in.appendStoreOwner(nil, id)); got != tc.want {
				t.Errorf("owner %x, want %x", got, tc.want)
			}
		})
	}
}

// TestClientNetwork: a request without a caller counts for its address,
// without the port, or over IPv6 for the /64 of it; the same whether
// Caddy's server gave the client's address (its variable) or the handler
// has only the connection's.
func TestClientNetwork(t *testing.T) {
	for _, tc := range []struct{ remoteAddr, clientIP, want string }{
		{"192.0.2.1:1234", "", "192.0.2.1"},
		{"192.0.2.1:1234", "192.0.2.1", "192.0.2.1"},
		{"[2001:db8::1]:1234", "", "2001:db8::/64"},
		{"[2001:db8::1]:1234", "2001:db8::1", "2001:db8::/64"},
		{"[::ffff:192.0.2.1]:1234", "", "192.0.2.1"},
		{"192.0.2.9:1", "198.51.100.7", "198.51.100.7"},
		{"@", "", "@"},
	} {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = tc.remoteAddr
		if tc.clientIP != "" {
			r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: tc.clientIP}))
		}
		if got := clientNetwork(r); got != tc.want {
			t.Errorf("%s (client IP %q): %q, want %q", tc.remoteAddr, tc.clientIP, got, tc.want)
		}
	}
}
