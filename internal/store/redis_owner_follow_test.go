package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/store"
)

// ownerScore is the score of member in the owner's set at key (when the
// key expires, in Redis's milliseconds), and whether the set holds it.
func (tp ownerTopology) ownerScore(t *testing.T, key, member string) (float64, bool) {
	t.Helper()
	for _, rdb := range tp.nodes {
		score, err := rdb.ZScore(context.Background(), key, member).Result()
		switch {
		case err == nil:
			return score, true
		case errors.Is(err, redis.Nil), redis.HasErrorPrefix(err, "MOVED"):
		default:
			t.Fatal(err)
		}
	}
	return 0, false
}

// redisNow is the Redis server's clock, in milliseconds, as the owners'
// sets score their members.
func (tp ownerTopology) redisNow(t *testing.T) float64 {
	t.Helper()
	now, err := tp.nodes[0].Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return float64(now.UnixMilli())
}

// TestRedisOwnerFollowsKey: on a single Redis, through a sentinel, and
// on a cluster of two nodes (with a key prefix of no hash tag, where an
// owner's set and its keys are in other slots, and with one, where they
// share the tag's), a reservation released for its owner (Release,
// ReleaseAll) gives the owner its share back at once, and one renewed or
// replaced for it (Renew, Replace) counts until its new TTL is over, not
// the one it was reserved with: its score in the owner's set is the
// key's new expiry. A release that finds the key holding another value
// leaves the count where the key and the set share a slot (one script on
// both); in another slot the count goes with the release whatever it
// found (see ownedCalls). A replacement for an owner whose set does not
// hold the key counts nothing.
func TestRedisOwnerFollowsKey(t *testing.T) {
	ctx := context.Background()
	for _, tp := range ownerTopologies(t) {
		cluster := tp.opts.Cluster
		for _, prefix := range []string{"follow:", "{follow}:"} {
			if prefix != "follow:" && !cluster {
				continue // without a cluster every key shares the set's slot
			}
			atomic := !cluster || prefix == "{follow}:"
			t.Run(tp.name+", prefix "+prefix, func(t *testing.T) {
				r := tp.open(t, prefix, 2)
				reserve := func(owner, key string, ttl time.Duration) error {
					t.Helper()
					ok, current, err := r.Reserve(ctx, owner, key, "v-"+key, ttl)
					if err == nil && !ok {
						t.Fatalf("%s: held already (%q)", key, current)
					}
					return err
				}
				mustReserve := func(owner string, ttl time.Duration, keys ...string) {
					t.Helper()
					for _, key := range keys {
						if err := reserve(owner, key, ttl); err != nil {
							t.Fatalf("%s of %s: %v", key, owner, err)
						}
					}
				}
				refused := func(owner, key, when string) {
					t.Helper()
					if err := reserve(owner, key, time.Minute); !errors.Is(err, store.ErrOwnerFull) {
						t.Fatalf("%s of %s %s: %v, want ErrOwnerFull", key, owner, when, err)
					}
				}
				counted := func(owner, key string) bool {
					t.Helper()
					_, ok := tp.ownerScore(t, ownerKey(prefix, owner), key)
					return ok
				}

				// Released: the share comes back at once.
				mustReserve("a", time.Minute, "a1", "a2")
				if ok, err := r.Release(ctx, "a", "a1", "v-a1"); err != nil || !ok {
					t.Fatalf("release a1: %v %v", ok, err)
				}
				if counted("a", "a1") || tp.exists(t, prefix+"a1") {
					t.Fatal("a1 released, yet counted or held")
				}
				mustReserve("a", time.Minute, "a3")
				refused("a", "a4", "holding a2 and a3")
				for i, err := range r.ReleaseAll(ctx, "a", []string{"a2", "a3"}, []string{"v-a2", "v-a3"}) {
					if err != nil {
						t.Fatalf("release all, key %d: %v", i, err)
					}
				}
				if counted("a", "a2") || counted("a", "a3") {
					t.Fatal("a2 and a3 released together, yet counted")
				}
				mustReserve("a", time.Minute, "a4", "a5")

				// A release that finds another value.
				if ok, err := r.Release(ctx, "a", "a4", "other"); err != nil || ok {
					t.Fatalf("release a4 with another value: %v %v, want not released", ok, err)
				}
				if got := counted("a", "a4"); got != atomic {
					t.Fatalf("a4 counted %v after a release that found another value, want %v", got, atomic)
				}

				// Renewed and replaced: counted until the new TTL is over.
				mustReserve("b", 100*time.Millisecond, "b1", "b2")
				reservedUntil, _ := tp.ownerScore(t, ownerKey(prefix, "b"), "b1")
				_, errs := r.Renew(ctx, []string{"b"}, []string{"b1"}, []string{"v-b1"}, time.Hour)
				for i, err := range errs {
					if err != nil {
						t.Fatalf("renew, key %d: %v", i, err)
					}
				}
				if ok, err := r.Replace(ctx, "b", "b2", "v-b2", "answer", time.Hour); err != nil || !ok {
					t.Fatalf("replace b2: %v %v", ok, err)
				}
				for _, key := range []string{"b1", "b2"} {
					until, ok := tp.ownerScore(t, ownerKey(prefix, "b"), key)
					if now := tp.redisNow(t); !ok || until < now+float64((59*time.Minute).Milliseconds()) {
						t.Errorf("%s renewed for an hour: counted %v until %.0f, now %.0f", key, ok, until, now)
					}
				}
				waitUntil(t, "Redis's clock to pass b's first TTL", func() bool { return tp.redisNow(t) > reservedUntil })
				refused("b", "b3", "holding b1 and b2 past the TTL they were reserved with")
				if ok, err := r.Replace(ctx, "b", "b2", "answer", "shorter", time.Minute); err != nil || !ok {
					t.Fatalf("replace b2 for a minute: %v %v", ok, err)
				}
				if until, _ := tp.ownerScore(t, ownerKey(prefix, "b"), "b2"); until > tp.redisNow(t)+float64(time.Minute.Milliseconds()) {
					t.Errorf("b2 replaced for a minute, counted for longer (until %.0f)", until)
				}

				// Another owner's replacement counts nothing for it.
				if ok, err := r.Replace(ctx, "c", "b1", "v-b1", "v-b1", time.Hour); err != nil || !ok {
					t.Fatalf("replace b1 for c: %v %v", ok, err)
				}
				if tp.exists(t, ownerKey(prefix, "c")) {
					t.Error("a replacement for an owner that holds no count made it one")
				}
			})
		}
	}
}
