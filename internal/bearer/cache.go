package bearer

import (
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// maxTokenCacheShards bounds the number of independently locked
	// parts of the cache: enough that concurrent requests rarely wait on
	// one another's lock.
	maxTokenCacheShards = 64
	// minTokenCacheShardSize keeps small caches in few shards, so that
	// rounding the size down to whole shards loses little of it.
	minTokenCacheShardSize = 16
)

// tokenKey is where a token's entry is looked up: the token's hash under
// the cache's own random seed (see tokenCache.key). Two tokens may share
// one; an entry is a token's own only when it holds that very token (see
// get), so that a hit is always the same token.
type tokenKey uint64

// keyEpoch identifies the key sets a token was verified against: the
// current key slices of jwks_file and jwks_url (nil when unused). Both
// publish a new slice only when their keys change, and public_key_file
// keys and hmac_secret are fixed while a config runs, so another epoch
// means other keys.
type keyEpoch struct{ file, remote *[]verificationKey }

// cacheEntry is a verified token's grant, with what decides how long it
// may be served. It is never changed once made, so cache hits share it.
type cacheEntry[G any] struct {
	// The token itself: a hit is this token and no other.
	token string
	// The token's exp plus the leeway: from this instant on the token is
	// refused, cached or not.
	expires time.Time
	// The keys the token was verified against.
	epoch keyEpoch
	grant G
}

// tokenCache remembers the entries of tokens that passed verification,
// so that a token seen again costs a hash, a map lookup and a comparison
// instead of a signature check. A keyed non-cryptographic hash and a
// comparison of the token cost a fraction of a SHA-256 of it (a token is
// one to two kilobytes), which a hit would otherwise pay on every request. It holds at most its size in entries (a full shard
// drops a random entry for a new one), never serves a grant past its
// expiry (checked against the clock on every hit) nor one verified
// against other keys than the current ones, and is emptied as soon as a
// request sees that the keys changed, so a revoked key stops working at
// once. Tokens that fail verification are never cached.
type tokenCache[G any] struct {
	now       func() time.Time
	seed      maphash.Seed // random per cache: the keys of tokens are not foreseeable
	shardSize int
	shards    []tokenCacheShard[G]
	metrics   *cacheMetrics

	emptyMu sync.Mutex               // serializes emptying
	epoch   atomic.Pointer[keyEpoch] // the keys of the last emptying
}

type tokenCacheShard[G any] struct {
	mu      sync.RWMutex
	entries map[tokenKey]*cacheEntry[G]
	// Pads a shard (a 24-byte lock and a map pointer) to a CPU cache
	// line, so that locking one shard does not slow down its neighbours.
	_ [64 - 32]byte
}

// newTokenCache makes a cache of at most size entries (size > 0).
func newTokenCache[G any](size int, now func() time.Time, metrics *cacheMetrics) *tokenCache[G] {
	// A power of two, so a shard is picked by masking the key.
	shards := 1 << (bits.Len(uint(min(maxTokenCacheShards, max(1, size/minTokenCacheShardSize)))) - 1)
	c := &tokenCache[G]{
		now:       now,
		seed:      maphash.MakeSeed(),
		shardSize: size / shards,
		shards:    make([]tokenCacheShard[G], shards),
		metrics:   metrics,
	}
	for i := range c.shards {
		c.shards[i].entries = make(map[tokenKey]*cacheEntry[G])
	}
	c.epoch.Store(&keyEpoch{})
	return c
}

// key is the key of the token raw.
func (c *tokenCache[G]) key(raw string) tokenKey {
	return tokenKey(maphash.String(c.seed, raw))
}

func (c *tokenCache[G]) shard(k tokenKey) *tokenCacheShard[G] {
	return &c.shards[int(k)&(len(c.shards)-1)]
}

// get returns the entry cached for the token raw, of key k, when it was
// verified against the keys of epoch, the current ones, and has not
// expired; nil otherwise. The first request that sees new keys empties
// the cache.
func (c *tokenCache[G]) get(k tokenKey, raw string, epoch keyEpoch) *cacheEntry[G] {
	if *c.epoch.Load() != epoch {
		c.empty(epoch)
	}
	s := c.shard(k)
	s.mu.RLock()
	g := s.entries[k]
	s.mu.RUnlock()
	// An entry of another token of the same key is that token's: it
	// stays, and raw is verified in full (and then takes its place).
	// The comparison need not take constant time: a token reaches it
	// only when its key, under the cache's secret seed, is the entry's,
	// which a client cannot aim at.
	if g == nil || g.token != raw {
		c.metrics.misses.Inc()
		return nil
	}
	// An entry of other keys can only be one a request verified while the
	// keys changed, and stored after the emptying.
	if g.epoch != epoch || !c.now().Before(g.expires) {
		c.drop(s, k, g)
		c.metrics.misses.Inc()
		return nil
	}
	c.metrics.hits.Inc()
	return g
}

// put caches g, the entry of the token g.token, under its key k. In a
// full shard it replaces a random entry (Go starts every map iteration
// at a random place), so the cache never grows past its size.
func (c *tokenCache[G]) put(k tokenKey, g *cacheEntry[G]) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, replacing := s.entries[k]; !replacing {
		if len(s.entries) < c.shardSize {
			c.metrics.entries.Inc()
		} else {
			for victim := range s.entries {
				delete(s.entries, victim)
				break
			}
		}
	}
	s.entries[k] = g
}

// drop removes k's entry if it still is g.
func (c *tokenCache[G]) drop(s *tokenCacheShard[G], k tokenKey, g *cacheEntry[G]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries[k] == g {
		delete(s.entries, k)
		c.metrics.entries.Dec()
	}
}

// empty drops every entry and records epoch as the current keys.
func (c *tokenCache[G]) empty(epoch keyEpoch) {
	c.emptyMu.Lock()
	defer c.emptyMu.Unlock()
	if *c.epoch.Load() == epoch {
		return // another request emptied it for the same keys
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		c.metrics.entries.Sub(float64(len(s.entries)))
		clear(s.entries)
		s.mu.Unlock()
	}
	c.epoch.Store(&epoch)
}
