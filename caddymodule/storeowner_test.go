package caddymodule

import (
	"crypto/sha256"
	"encoding/binary"
	"net/http/httptest"
	"testing"

	"github.com/ucwa-edge/caddy-ucwa/internal/bearer"
)

// TestStoreOwner: whom a request's reservations count for in a memory
// store is the digest of its verified caller (tid, and oid or else sub),
// the same whether the grant made it once or a request made it; a token
// without a caller id counts for the client's address, as a request
// without a token does, by a digest keyed for the process (see
// storeDigest), made for each request.
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
		{"tid runs not into the id", bearer.Claims{"tid": "t", "oid": "1o1"}, caller("t", "1o1")},
		{"no caller id", bearer.Claims{"tid": "t1"}, address},
		{"no token", nil, address},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := intake{r: r}
			if tc.claims != nil {
				in.grant = makeGrant(tc.claims)
			}
			var tid, id string
			if in.grant != nil {
				tid, id = in.grant.caller()
			}
			if got := string(in.appendStoreOwner(nil, tid, id)); got != tc.want {
				t.Errorf("owner %x, want %x", got, tc.want)
			}
		})
	}
}
