package caddymodule

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestAuditCallerIssuer: the audit line's caller has the token's iss,
// whatever the accepted issuers and their order: two accepted issuers'
// callers of one sub without tid, which differ in nothing else, are told
// apart in the trail as the edge tells them apart, and the first issuer's
// caller says its issuer too (which issuer is first is the config's, not
// the line's); so do two issuers' tokens of one tid and sub. A token
// without iss (no issuer listed) has a caller without one. The token
// itself is never in the line.
func TestAuditCallerIssuer(t *testing.T) {
	type sent struct {
		iss, tid string // "": no such claim
		op       string
	}
	for _, tc := range []struct {
		name    string
		issuers []string
		sent    []sent
	}{
		{"the first issuer listed first", []string{firstIssuer, secondIssuer}, []sent{
			{firstIssuer, "", "op-1"}, {secondIssuer, "", "op-2"}, {firstIssuer, "t1", "op-3"}, {secondIssuer, "t1", "op-4"},
		}},
		{"the second issuer listed first", []string{secondIssuer, firstIssuer}, []sent{
			{firstIssuer, "", "op-1"}, {secondIssuer, "", "op-2"},
		}},
		{"no issuer listed", nil, []sent{
			{firstIssuer, "", "op-1"}, {secondIssuer, "", "op-2"}, {"", "", "op-3"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := newIdemPool(t, "primary")
			e := startEdge(t, "caddyfile", idemCaddyfile(issuersAuth(t, tc.issuers...), "primary "+pool.Addr()))
			var tokens []string
			for _, s := range tc.sent {
				header := issuerToken(t, s.iss, s.tid, "", "same-sub")
				if s.iss == "" {
					header = issuerTokenWithoutIss(t)
				}
				tokens = append(tokens, strings.TrimPrefix(header.Get("Authorization"), "Bearer "))
				if resp := e.call(idemCall{header: header, op: s.op}); resp.Status != http.StatusCreated {
					t.Fatalf("%s: %d %s, want 201", s.op, resp.Status, resp.Body)
				}
			}
			var lines []auditLine
			testkit.Eventually(t, "the audit lines", func() bool {
				lines = auditLines(t, e.Logs().String())
				return len(lines) >= len(tc.sent)
			})
			if len(lines) != len(tc.sent) {
				t.Fatalf("%d audit lines, want %d", len(lines), len(tc.sent))
			}
			byOp := map[string]auditLine{}
			for _, l := range lines {
				byOp[l.OperationID] = l
			}
			callers := map[string]string{} // caller as the line has it: its operationId
			for _, s := range tc.sent {
				c := byOp[s.op].Caller
				if c.ISS != s.iss || c.TID != s.tid || c.Sub != "same-sub" {
					t.Errorf("%s (iss %q, tid %q): caller %+v", s.op, s.iss, s.tid, c)
				}
				if other, ok := callers[c.Sub+"|"+c.OID+"|"+c.TID+"|"+c.ISS]; ok {
					t.Errorf("%s and %s, tokens of two issuers, look alike in the trail: %+v", other, s.op, c)
				}
				callers[c.Sub+"|"+c.OID+"|"+c.TID+"|"+c.ISS] = s.op
			}
			log := e.Logs().String()
			for i, token := range tokens {
				if strings.Contains(log, token) || strings.Contains(log, strings.Split(token, ".")[2]) {
					t.Errorf("the token of %s is in the log", tc.sent[i].op)
				}
			}
		})
	}
}

// issuerTokenWithoutIss is issuerToken's token of the caller same-sub
// without any iss claim.
func issuerTokenWithoutIss(t *testing.T) http.Header {
	claims := jwt.MapClaims{"iss": nil, "sub": "same-sub", "scp": "Conversations.Initiate"}
	token := testkit.Mint(t, jwt.SigningMethodES256, testkit.Keys(t).EC, "", testkit.Claims(time.Now(), claims))
	return http.Header{"Authorization": {"Bearer " + token}}
}

// TestAuditCallerIssuerOfPlaceholders: a handler without tokens of its
// own (`jwt off`) behind one that verified the token writes the caller
// from the placeholders the first published, iss among them, as the
// first writes it from the token.
func TestAuditCallerIssuerOfPlaceholders(t *testing.T) {
	pool := newIdemPool(t, "primary")
	e := startEdge(t, "caddyfile", fmt.Sprintf(`:EDGE_PORT {
	route {
		ucwa {
			%s
			default_region US
		}
		ucwa {
			jwt off
			default_region US
			primary %s
		}
	}
}`, issuersAuth(t, firstIssuer, secondIssuer), pool.Addr()))
	if resp := e.call(idemCall{header: issuerToken(t, secondIssuer, "", "oid-a", "sub-a"), op: "op-1"}); resp.Status != http.StatusCreated {
		t.Fatalf("%d %s, want 201", resp.Status, resp.Body)
	}
	var lines []auditLine
	testkit.Eventually(t, "the audit lines of both handlers", func() bool {
		lines = auditLines(t, e.Logs().String())
		return len(lines) >= 2
	})
	for _, l := range lines {
		if c := l.Caller; c.ISS != secondIssuer || c.Sub != "sub-a" || c.OID != "oid-a" {
			t.Errorf("the line of the handler %s: caller %+v, want sub-a's of %s", cmp.Or(l.Pool, "without pools"), c, secondIssuer)
		}
	}
}

// TestAuditCallerNumberMasked: through a real Caddy, a caller's claim
// that reads as a telephone number (an identity provider that names its
// users by their numbers) is masked in the audit line as a destination
// is, so that no full number reaches the trail; a claim with a letter in
// it (an object id, a name) is written as the token has it, digits and
// all. Each token is sent twice: its grant builds the line's caller for
// the first request and keeps it for the second.
func TestAuditCallerNumberMasked(t *testing.T) {
	pool := newIdemPool(t, "primary")
	e := startEdge(t, "caddyfile", idemCaddyfile(issuersAuth(t, firstIssuer), "primary "+pool.Addr()))
	for i, tc := range []struct {
		claims jwt.MapClaims
		want   auditCaller
	}{
		{jwt.MapClaims{"sub": "+14255551234", "oid": "0f6e27c1-1234-5678-9abc-123456789012"},
			auditCaller{sub: "+1425555****", oid: "0f6e27c1-1234-5678-9abc-123456789012"}},
		{jwt.MapClaims{"sub": "tel:+1 (425) 555-1234", "tid": "74512", "azp": "42555512349"},
			auditCaller{sub: "tel:+1 (425) 555-****", tid: "7****", clientID: "4255551****"}},
		{jwt.MapClaims{"sub": "user-31415926535", "oid": "12345678-1234-1234-1234-123456789012"},
			auditCaller{sub: "user-31415926535", oid: "1234567*-****-****-****-************"}},
		// Two numbers in a row are one run: no more than the first seven
		// digits show.
		{jwt.MapClaims{"sub": "+14255551234 +14255559876"}, auditCaller{sub: "+1425555**** +***********"}},
		{jwt.MapClaims{"sub": "1234"}, auditCaller{sub: "1234"}},
		// A number as a SIP address's or a user name's user.
		{jwt.MapClaims{"sub": "sip:+14255551234@contoso.com"}, auditCaller{sub: "sip:+1425555****@contoso.com"}},
		{jwt.MapClaims{"sub": "SIPS:14255551234;user=phone"}, auditCaller{sub: "SIPS:1425555****;user=phone"}},
		{jwt.MapClaims{"sub": "+14255551234@contoso.com"}, auditCaller{sub: "+1425555****@contoso.com"}},
		{jwt.MapClaims{"sub": "sip:dana@contoso.com"}, auditCaller{sub: "sip:dana@contoso.com"}},
	} {
		claims := jwt.MapClaims{"iss": firstIssuer, "scp": "Conversations.Initiate", "tid": nil, "oid": nil}
		maps.Copy(claims, tc.claims)
		token := testkit.Mint(t, jwt.SigningMethodES256, testkit.Keys(t).EC, "", testkit.Claims(time.Now(), claims))
		header := http.Header{"Authorization": {"Bearer " + token}}
		for j := range 2 {
			op := fmt.Sprintf("op-%d-%d", i, j)
			if resp := e.call(idemCall{header: header, op: op}); resp.Status != http.StatusCreated {
				t.Fatalf("%s: %d %s, want 201", op, resp.Status, resp.Body)
			}
			var line auditLine
			testkit.Eventually(t, "the audit line of "+op, func() bool {
				for _, l := range auditLines(t, e.Logs().String()) {
					if l.OperationID == op {
						line = l
						return true
					}
				}
				return false
			})
			c := line.Caller
			if got := (auditCaller{sub: c.Sub, oid: c.OID, tid: c.TID, clientID: c.ClientID}); got != tc.want {
				t.Errorf("%s: caller %+v, want %+v", op, got, tc.want)
			}
		}
	}
	// Caddy's access log has the sub as it is (user_id): the
	// administrator's placeholder {http.auth.user.id}, which keys limits.
	var trail strings.Builder
	for line := range strings.Lines(e.Logs().String()) {
		if strings.Contains(line, `"logger":"http.handlers.ucwa.audit"`) {
			trail.WriteString(line)
		}
	}
	for _, number := range []string{"4255551234", "425) 555-1234", "12345678-1234-1234-1234-123456789012"} {
		if strings.Contains(trail.String(), number) {
			t.Errorf("the audit trail holds %q", number)
		}
	}
}
