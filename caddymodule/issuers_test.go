package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// The accepted issuers of the issuer tests, the first listed first.
const (
	firstIssuer  = "https://first.example/"
	secondIssuer = "https://second.example/"
)

// issuersAuth is a jwt block accepting ES256 tokens of testkit's key
// from the issuers given, in their order ("": any issuer).
func issuersAuth(t *testing.T, issuers ...string) string {
	issuer := ""
	if len(issuers) > 0 {
		issuer = "\n\t\t\tissuer " + strings.Join(issuers, " ")
	}
	return fmt.Sprintf(`jwt {
			algorithms ES256
			public_key_file %s%s
		}`, testkit.WriteFile(t, t.TempDir(), "ec.pem", testkit.PublicPEM(t, testkit.Keys(t).EC)), issuer)
}

// issuerToken is an Authorization header with a token of issuer iss for
// the caller of tenant tid ("": no tid claim) with object id oid ("":
// none) and subject sub, granting calls.
func issuerToken(t *testing.T, iss, tid, oid, sub string) http.Header {
	claims := jwt.MapClaims{"iss": iss, "sub": sub, "tid": nil, "oid": nil, "scp": "Conversations.Initiate"}
	if tid != "" {
		claims["tid"] = tid
	}
	if oid != "" {
		claims["oid"] = oid
	}
	token := testkit.Mint(t, jwt.SigningMethodES256, testkit.Keys(t).EC, "", testkit.Claims(time.Now(), claims))
	return http.Header{"Authorization": {"Bearer " + token}}
}

// TestIdempotencyKeysOfIssuers: through a real Caddy on Redis, the store
// key of a token with tid, and of a token without tid from the first
// accepted issuer (or from any issuer when none is listed), is the one
// the edge made before it told issuers apart (golden values, made by
// that version): an edge of either version sharing the store finds the
// other's reservation of a retry. That of a token without tid from
// another accepted issuer is the SHA-256 of its iss and caller under a
// version of its own, which no caller of a tid (or of none) can give.
func TestIdempotencyKeysOfIssuers(t *testing.T) {
	const (
		tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
		oid = "b3c8e1a2-0000-4000-8000-000000000001"
		// The keys of tid and oid, and of oid alone, for application
		// 192, startPhoneAudio and operationId op-1.
		keyOfTid    = "idem:LjhFizoaS4I3zD3SxRmjBoOY-_1qJNf2QPOpa8GtQXU"
		keyWithout  = "idem:3U5mHnagc9CToPEdtCtmkn4zcW6P94bTEWtsul8r4WY"
		application = "192"
	)
	ofIssuer := func(iss string) string {
		h := []byte("caddy-ucwa idempotency by issuer 1")
		for _, part := range []string{iss, oid, application, "startPhoneAudio", "op-1"} {
			h = append(binary.AppendUvarint(h, uint64(len(part))), part...)
		}
		sum := sha256.Sum256(h)
		return "idem:" + base64.RawURLEncoding.EncodeToString(sum[:])
	}
	for _, tc := range []struct {
		name    string
		issuers []string // listed; none: any issuer
		header  http.Header
		key     string
	}{
		{"a tid", []string{firstIssuer, secondIssuer}, issuerToken(t, firstIssuer, tid, oid, "sub-1"), keyOfTid},
		{"a tid, of the second issuer", []string{firstIssuer, secondIssuer}, issuerToken(t, secondIssuer, tid, oid, "sub-1"), keyOfTid},
		{"no tid, of the first issuer", []string{firstIssuer, secondIssuer}, issuerToken(t, firstIssuer, "", oid, "sub-1"), keyWithout},
		{"no tid, of the only issuer", []string{firstIssuer}, issuerToken(t, firstIssuer, "", oid, "sub-1"), keyWithout},
		{"no tid, no issuer listed", nil, issuerToken(t, secondIssuer, "", oid, "sub-1"), keyWithout},
		{"no tid, of the second issuer", []string{firstIssuer, secondIssuer}, issuerToken(t, secondIssuer, "", oid, "sub-1"), ofIssuer(secondIssuer)},
		{"no tid, of the second issuer listed first", []string{secondIssuer, firstIssuer}, issuerToken(t, firstIssuer, "", oid, "sub-1"), ofIssuer(firstIssuer)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testkit.StartRedis(t)
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			t.Cleanup(func() { _ = rdb.Close() })
			pool := newIdemPool(t, "primary")
			e := startEdge(t, "caddyfile", idemCaddyfile(issuersAuth(t, tc.issuers...), "store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t}", "primary "+pool.Addr()))
			if resp := e.call(idemCall{header: tc.header, app: application, op: "op-1"}); resp.Status != http.StatusCreated {
				t.Fatalf("%d %s", resp.Status, resp.Body)
			}
			keys := rdb.Keys(context.Background(), "*").Val()
			if want := "ucwa:" + tc.key; !slices.Contains(keys, want) {
				t.Errorf("store keys %q, want %q among them", keys, want)
			}
		})
	}
}

// TestCallersToldApartByIssuer: through a real Caddy, on each store, two
// accepted issuers' tokens without tid that give the same sub are two
// callers: the second issuer's repeat of the first's operationId is
// delivered as its own (not answered with the first's answer and its
// Location), and each has a budget of its own under the default key;
// the first issuer's callers get their own answer again and are limited
// as before. Tokens of one oid in two tenants have two budgets.
func TestCallersToldApartByIssuer(t *testing.T) {
	type step struct {
		header    http.Header
		op        string
		status    int
		replayOf  int // the step (from 1) whose answer this replays; 0: a fresh answer
		delivered int // the times op reached the pool so far
	}
	first := issuerToken(t, firstIssuer, "", "", "same-sub")
	second := issuerToken(t, secondIssuer, "", "", "same-sub")
	tenant1 := issuerToken(t, firstIssuer, "t1", "oid-a", "sub-1")
	tenant2 := issuerToken(t, firstIssuer, "t2", "oid-a", "sub-2")
	tenant2OfSecond := issuerToken(t, secondIssuer, "t2", "oid-a", "sub-3")
	scenarios := []struct {
		name  string
		steps []step
	}{
		{"one sub of two issuers", []step{
			{header: first, op: "op-1", status: http.StatusCreated, delivered: 1},
			{header: second, op: "op-1", status: http.StatusCreated, delivered: 2},
			{header: first, op: "op-1", status: http.StatusCreated, replayOf: 1, delivered: 2},
			{header: second, op: "op-2", status: http.StatusCreated, delivered: 1},
			{header: first, op: "op-3", status: http.StatusCreated, delivered: 1},
			{header: first, op: "op-4", status: http.StatusTooManyRequests},
			{header: second, op: "op-5", status: http.StatusTooManyRequests},
		}},
		{"one oid in two tenants", []step{
			{header: tenant1, op: "op-1", status: http.StatusCreated, delivered: 1},
			{header: tenant1, op: "op-2", status: http.StatusCreated, delivered: 1},
			{header: tenant2, op: "op-3", status: http.StatusCreated, delivered: 1},
			{header: tenant2OfSecond, op: "op-4", status: http.StatusCreated, delivered: 1},
			{header: tenant1, op: "op-5", status: http.StatusTooManyRequests},
			{header: tenant2, op: "op-6", status: http.StatusTooManyRequests},
		}},
	}
	for _, s := range idemStores {
		t.Run(s.name, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					pool := newIdemPool(t, "primary")
					e := startEdge(t, "caddyfile", idemCaddyfile(issuersAuth(t, firstIssuer, secondIssuer), s.config(t), "limit calls 2 per 1h", "primary "+pool.Addr()))
					var answers []testkit.Response
					locations := map[string]bool{}
					for i, st := range sc.steps {
						resp := e.call(idemCall{header: st.header, op: st.op})
						answers = append(answers, resp)
						if resp.Status != st.status {
							t.Fatalf("step %d (%s): %d %s, want %d", i+1, st.op, resp.Status, resp.Body, st.status)
						}
						switch {
						case st.replayOf != 0:
							assertReplay(t, resp, answers[st.replayOf-1])
						case resp.Header.Get(headerReplayed) != "":
							t.Errorf("step %d (%s): %s %s, the answer of another caller (Location %s)", i+1, st.op, headerReplayed, resp.Header.Get(headerReplayed), resp.Header.Get("Location"))
						case st.status == http.StatusCreated:
							// The pool numbers its answers: each fresh
							// one has a Location of its own.
							if locations[resp.Header.Get("Location")] {
								t.Errorf("step %d (%s): Location %s, an earlier answer's", i+1, st.op, resp.Header.Get("Location"))
							}
							locations[resp.Header.Get("Location")] = true
						}
						if got := deliveries(pool.Pool, st.op); got != st.delivered {
							t.Errorf("step %d (%s): delivered %d times, want %d", i+1, st.op, got, st.delivered)
						}
					}
				})
			}
		})
	}
}

// TestStoreShareByIssuer: in a memory store, each caller's share of
// reservations (max_entries_per_caller) is its own: a token without tid
// from the second accepted issuer does not take from the share of the
// first issuer's caller of the same sub, whose share still bounds it.
func TestStoreShareByIssuer(t *testing.T) {
	pool := newIdemPool(t, "primary")
	e := startEdge(t, "caddyfile", idemCaddyfile(issuersAuth(t, firstIssuer, secondIssuer), "store memory {\n\t\t\tmax_entries_per_caller 1\n\t\t}", "primary "+pool.Addr()))
	first := issuerToken(t, firstIssuer, "", "", "same-sub")
	second := issuerToken(t, secondIssuer, "", "", "same-sub")
	for i, st := range []struct {
		header http.Header
		op     string
		status int
	}{
		{first, "op-1", http.StatusCreated},
		{second, "op-2", http.StatusCreated},
		{first, "op-3", http.StatusTooManyRequests},
		{second, "op-4", http.StatusTooManyRequests},
	} {
		if resp := e.call(idemCall{header: st.header, op: st.op}); resp.Status != st.status {
			t.Errorf("step %d (%s): %d %s, want %d", i+1, st.op, resp.Status, resp.Body, st.status)
		}
	}
}
