package ucwa

import (
	"hash/maphash"
	"strings"
	"sync"
)

// numberCacheSize bounds how many inputs one cache remembers: about 1 MB
// when full (measured at 8,192 entries of typical numbers; inputs longer
// than maxNumberLength are never cached), enough for every caller of a
// busy edge while a flood of distinct numbers cannot grow it.
const (
	numberCacheShards = 16
	numberCacheSize   = 8192
)

// shardedCache remembers what a parser made of recent inputs (also
// failures, so that garbage repeated costs no parse either): phonenumbers
// takes tens of microseconds per number, a lookup well under one. It is
// sharded so that concurrent requests rarely wait on one another, and a
// full shard forgets an arbitrary entry (Go's map iteration order is
// random) to make room. Callers keep long inputs out of it, so that its
// memory stays bounded.
type shardedCache[V any] struct {
	seed     maphash.Seed
	perShard int
	shards   [numberCacheShards]cacheShard[V]
}

type cacheShard[V any] struct {
	mu sync.RWMutex
	m  map[string]V
}

// newShardedCache returns a cache of about size entries.
func newShardedCache[V any](size int) *shardedCache[V] {
	c := &shardedCache[V]{seed: maphash.MakeSeed(), perShard: max(size/numberCacheShards, 1)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]V, c.perShard)
	}
	return c
}

func (c *shardedCache[V]) shard(key string) *cacheShard[V] {
	return &c.shards[maphash.String(c.seed, key)%numberCacheShards]
}

func (c *shardedCache[V]) get(key string) (V, bool) {
	s := c.shard(key)
	s.mu.RLock()
	v, ok := s.m[key]
	s.mu.RUnlock()
	return v, ok
}

func (c *shardedCache[V]) put(key string, v V) {
	s := c.shard(key)
	s.mu.Lock()
	if _, ok := s.m[key]; ok {
		s.m[key] = v
		s.mu.Unlock()
		return
	}
	if len(s.m) >= c.perShard {
		for old := range s.m {
			delete(s.m, old)
			break
		}
	}
	// The key is copied: it may be a slice of a whole request (a query
	// string), which the cache must not keep alive.
	s.m[strings.Clone(key)] = v
	s.mu.Unlock()
}
