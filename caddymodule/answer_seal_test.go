package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/testkit"
)

// TestIdempotencyRedisSealsAnswerBody: a pool's answer whose body echoes
// the number it rings (a phoneAudioInvitation, as startPhoneAudio
// answers) is recorded in Redis with its body sealed: no value Redis
// holds has the number, and a repeat gets the body again. An answer
// without a body is recorded as edges of the version before record it.
// A sealed body changed in Redis is no answer: the repeat gets 409, not
// what the store holds.
func TestIdempotencyRedisSealsAnswerBody(t *testing.T) {
	const digits = "4255551234"
	srv := testkit.StartRedis(t)
	pool := testkit.NewPool(t, "primary", func(_ *testkit.Pool, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "/ucwa/v1/applications/1/communication/invitations/146")
		if r.Header.Get("X-Test-Answer") == "empty" {
			w.WriteHeader(http.StatusCreated)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = fmt.Fprintf(w, `{"rel":"phoneAudioInvitation","phoneNumber":"tel:+1%s","to":"sip:john@contoso.com","state":"Connecting"}`, digits)
	})
	e := startEdge(t, "caddyfile", idemCaddyfile(idemAuth(t), "store redis "+srv.URL()+" {\n\t\t\ttimeout 5s\n\t\t}", "primary "+pool.Addr()))
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	// values are every key Redis holds, with its value.
	values := func() map[string]string {
		t.Helper()
		keys, err := rdb.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		vs := map[string]string{}
		for _, k := range keys {
			v, err := rdb.Get(ctx, k).Result()
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			vs[k] = v
		}
		return vs
	}
	caller := idemToken(t, "tenant-1", "oid-a", "sub-a")
	for _, tc := range []struct {
		name, answer string
		sealed       bool
	}{
		{"a body that echoes the number", "", true},
		{"no body", "empty", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call := idemCall{header: caller, op: "seal-" + tc.answer, answer: tc.answer}
			before := values()
			first := e.call(call)
			if first.Status != http.StatusCreated || tc.sealed != strings.Contains(first.Body, digits) {
				t.Fatalf("first: %d %s", first.Status, first.Body)
			}
			var key, record string
			for k, v := range values() {
				if strings.Contains(v, digits) || strings.Contains(k, digits) {
					t.Errorf("redis holds the number: %s = %q", k, v)
				}
				if _, ok := before[k]; !ok {
					if key != "" {
						t.Fatalf("two new keys: %s and %s", key, k)
					}
					key, record = k, v
				}
			}
			// A sealed record starts with "~", which edges of the version
			// before do not read; one without a body with the kind of
			// record they read (an answer with its inputs' digest).
			if got := strings.HasPrefix(record, "~"); got != tc.sealed || !tc.sealed && !strings.HasPrefix(record, "A") {
				t.Fatalf("the recorded answer %q: sealed %v, want %v", record, got, tc.sealed)
			}
			assertReplay(t, e.call(call), first)
			if !tc.sealed {
				return
			}
			changed := []byte(record)
			changed[len(changed)-1] ^= 1
			if err := rdb.Set(ctx, key, string(changed), 0).Err(); err != nil {
				t.Fatal(err)
			}
			assertConflict(t, e.call(call))
			if got := deliveries(pool, call.op); got != 1 {
				t.Errorf("the pool got the request %d times, want once", got)
			}
		})
	}
}

// TestAnswerSealKeyDomain: the seal key of a request is the SHA-256 of
// answerSealVersion and the very input whose SHA-256 is its Redis store
// key, for a caller of a tid and one of an issuer alike (the issuer's
// input starts otherwise, after the seal's version), so that it is none
// of what Redis holds; a request without an operationId, and a batch,
// have none.
func TestAnswerSealKeyDomain(t *testing.T) {
	clean := startPhoneAudioCleaner(t)
	withID := clean(`{"to":"sip:a@contoso.com","operationId":"op-1"}`)
	for _, issuer := range []string{"", "https://issuer.example/"} {
		g := &grant{issuer: issuer}
		g.placeholders[3], g.placeholders[6] = "tenant-1", "oid-a"
		in := intake{cleaned: withID, grant: g, application: "192"}
		key, ok := in.answerSealKey()
		if !ok {
			t.Fatalf("issuer %q: no seal key", issuer)
		}
		input := appendIdempotencyKeyInput(nil, "tenant-1", issuer, "oid-a", "192", withID)
		if want := sha256.Sum256(append([]byte(answerSealVersion), input...)); key != want {
			t.Errorf("issuer %q: seal key %x, want %x", issuer, key, want)
		}
		storeKey := appendIdempotencyKey(nil, false, "tenant-1", issuer, "oid-a", "192", withID)
		if sum := sha256.Sum256(input); string(storeKey) != idempotencyKeyPrefix+base64.RawURLEncoding.EncodeToString(sum[:]) || key == sum {
			t.Errorf("issuer %q: store key %s is not the SHA-256 of the seal's input without its version, or is the seal key", issuer, storeKey)
		}
	}
	g := &grant{}
	g.placeholders[3], g.placeholders[6] = "tenant-1", "oid-a"
	for name, in := range map[string]intake{
		"no operationId": {cleaned: clean(`{"to":"sip:a@contoso.com"}`), grant: g, application: "192"},
		"a batch":        {parts: []cleanedPart{{index: 1, path: "/x", cleaned: withID}}, grant: g, application: "192"},
	} {
		if _, ok := in.answerSealKey(); ok {
			t.Errorf("%s: a seal key", name)
		}
	}
}
