package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ucwa-edge/caddy-ucwa/internal/store"
)

// shareStep is one call of a TestOwnerRetryAfter case: a reservation
// (reserve, which must succeed), a renewal (replace, the reservation's
// value kept, for ttl), a release, or a reservation over the owner's
// share (refused), which must fail with ErrOwnerFull and a RetryAfter of
// when the owner's reservation of key expires.
type shareStep struct {
	op, owner, key string
	ttl            time.Duration
}

// shareCases are TestOwnerRetryAfter's cases: each runs on a store with
// a share of max reservations an owner.
var shareCases = []struct {
	name  string
	max   int
	steps []shareStep
}{
	{"one reservation, refused twice", 1, []shareStep{
		{"reserve", "a", "a1", time.Minute},
		{"refused", "a", "a1", 0},
		{"refused", "a", "a1", 0},
	}},
	{"the earliest of several, reserved between", 3, []shareStep{
		{"reserve", "a", "a1", 3 * time.Minute},
		{"reserve", "a", "a2", time.Minute},
		{"reserve", "a", "a3", 2 * time.Minute},
		{"refused", "a", "a2", 0},
	}},
	{"another owner's earlier reservation counts not", 1, []shareStep{
		{"reserve", "b", "b1", 10 * time.Second},
		{"reserve", "a", "a1", time.Minute},
		{"refused", "a", "a1", 0},
		{"refused", "b", "b1", 0},
	}},
	{"the earliest released, the share taken again", 2, []shareStep{
		{"reserve", "a", "a1", time.Minute},
		{"reserve", "a", "a2", 3 * time.Minute},
		{"refused", "a", "a1", 0},
		{"release", "a", "a1", 0},
		{"reserve", "a", "a3", 2 * time.Minute},
		{"refused", "a", "a3", 0},
	}},
	{"the earliest renewed past the next", 2, []shareStep{
		{"reserve", "a", "a1", time.Minute},
		{"reserve", "a", "a2", 2 * time.Minute},
		{"refused", "a", "a1", 0},
		{"replace", "a", "a1", 3 * time.Minute},
		{"refused", "a", "a2", 0},
	}},
	{"another renewed to expire sooner", 2, []shareStep{
		{"reserve", "a", "a1", 2 * time.Minute},
		{"reserve", "a", "a2", 3 * time.Minute},
		{"refused", "a", "a1", 0},
		{"replace", "a", "a2", time.Minute},
		{"refused", "a", "a2", 0},
	}},
	{"a new reservation sooner than the earliest found", 2, []shareStep{
		{"reserve", "a", "a1", 2 * time.Minute},
		{"reserve", "a", "a2", 3 * time.Minute},
		{"refused", "a", "a1", 0},
		{"release", "a", "a2", 0},
		{"reserve", "a", "a3", time.Minute},
		{"refused", "a", "a3", 0},
	}},
}

// TestOwnerRetryAfter: an owner refused for its share is told when it
// has room again (Error.RetryAfter): when its reservation that expires
// first does, whatever came and went before, by a memory store (on its
// clock, which stands still: exactly the reservation's remaining TTL)
// and by a Redis store on a single Redis, through a sentinel and on a
// cluster of two nodes (on the server's clock: the milliseconds until
// the count's member of the reservation is past, read in the refusal's
// call, which came between two readings of the server's clock).
func TestOwnerRetryAfter(t *testing.T) {
	// refusal checks the RetryAfter of a refusal of owner's reservation,
	// made by refuse, for its reservation of key.
	type refusal func(t *testing.T, owner, key string, refuse func() error)
	checkRefusal := func(t *testing.T, err error) time.Duration {
		t.Helper()
		var e *store.Error
		if !errors.Is(err, store.ErrOwnerFull) || !errors.As(err, &e) {
			t.Fatalf("%v, want ErrOwnerFull", err)
		}
		return e.RetryAfter
	}
	type storeUnder struct {
		name string
		open func(t *testing.T, max int) (store.Store, refusal)
	}
	stores := []storeUnder{{"memory", func(t *testing.T, max int) (store.Store, refusal) {
		clock := newFakeClock()
		m, err := store.NewMemory(store.MemoryOptions{Now: clock.Now, MaxPerOwner: max})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m, func(t *testing.T, _, key string, refuse func() error) {
			t.Helper()
			want := m.RemainingTTL(key)
			if got := checkRefusal(t, refuse()); got != want {
				t.Errorf("RetryAfter %v, want %v, the remaining TTL of %s", got, want, key)
			}
		}
	}}}
	for _, tp := range ownerTopologies(t) {
		stores = append(stores, storeUnder{"redis " + tp.name, func(t *testing.T, max int) (store.Store, refusal) {
			const prefix = "retry:"
			r := tp.open(t, prefix, max)
			for _, rdb := range tp.nodes {
				if err := rdb.FlushAll(context.Background()).Err(); err != nil {
					t.Fatal(err)
				}
			}
			return r, func(t *testing.T, owner, key string, refuse func() error) {
				t.Helper()
				rdb := tp.nodeOf(t, ownerKey(prefix, owner))
				serverMs := func() int64 {
					now, err := rdb.Time(context.Background()).Result()
					if err != nil {
						t.Fatal(err)
					}
					return now.UnixMilli()
				}
				before := serverMs()
				got := checkRefusal(t, refuse())
				after := serverMs()
				score, err := rdb.ZScore(context.Background(), ownerKey(prefix, owner), key).Result()
				if err != nil {
					t.Fatalf("the count of %s: %v", key, err)
				}
				// Counted until the server's clock is past the score.
				room := int64(score) + 1
				if most, least := time.Duration(room-before)*time.Millisecond, time.Duration(room-after)*time.Millisecond; got < least || got > most {
					t.Errorf("RetryAfter %v, want from %v to %v, until %s's count is past", got, least, most, key)
				}
			}
		}})
	}
	for _, su := range stores {
		t.Run(su.name, func(t *testing.T) {
			for _, tc := range shareCases {
				t.Run(tc.name, func(t *testing.T) {
					s, check := su.open(t, tc.max)
					for i, st := range tc.steps {
						var err error
						var ok bool
						switch st.op {
						case "reserve":
							ok, _, err = s.Reserve(context.Background(), st.owner, st.key, "v-"+st.key, st.ttl)
						case "replace":
							ok, err = s.Replace(context.Background(), st.owner, st.key, "v-"+st.key, "v-"+st.key, st.ttl)
						case "release":
							ok, err = s.Release(context.Background(), st.owner, st.key, "v-"+st.key)
						case "refused":
							check(t, st.owner, st.key, func() error {
								_, _, err := s.Reserve(context.Background(), st.owner, "over", "v-over", time.Hour)
								return err
							})
							continue
						}
						if err != nil || !ok {
							t.Fatalf("step %d, %s %s of %s: %v %v", i, st.op, st.key, st.owner, ok, err)
						}
					}
				})
			}
		})
	}
}

// TestMemoryOwnerRetryAfterClock: on a memory store's clock, an owner's
// RetryAfter counts down to its first reservation's expiry, to the
// nanosecond, and at it the owner has room: a retry after RetryAfter
// succeeds, one just before it is refused.
func TestMemoryOwnerRetryAfterClock(t *testing.T) {
	clock := newFakeClock()
	m, err := store.NewMemory(store.MemoryOptions{Now: clock.Now, MaxPerOwner: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	reserve := func(key string) error {
		_, _, err := m.Reserve(context.Background(), "a", key, "v", time.Minute)
		return err
	}
	refusedFor := func(want time.Duration) {
		t.Helper()
		var e *store.Error
		if err := reserve("over"); !errors.As(err, &e) || !errors.Is(err, store.ErrOwnerFull) || e.RetryAfter != want {
			t.Fatalf("%v (%+v), want ErrOwnerFull with RetryAfter %v", err, e, want)
		}
	}
	if err := reserve("a1"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Second)
	if err := reserve("a2"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		advance, want time.Duration
	}{
		{15 * time.Second, 35 * time.Second},
		{34*time.Second + 500*time.Millisecond, 500 * time.Millisecond},
		{500*time.Millisecond - time.Nanosecond, time.Nanosecond},
	} {
		clock.Advance(step.advance)
		refusedFor(step.want)
	}
	clock.Advance(time.Nanosecond)
	if err := reserve("a3"); err != nil {
		t.Fatalf("once a1 expired: %v", err)
	}
	refusedFor(10 * time.Second)
}

// nodeOf is the client of tp's node that holds key.
func (tp ownerTopology) nodeOf(t *testing.T, key string) *redis.Client {
	t.Helper()
	rdb := tp.holder(t, key)
	if rdb == nil {
		t.Fatalf("no node holds %s", key)
	}
	return rdb
}
