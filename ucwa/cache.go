package ucwa

import (
	"hash/maphash"
	"sync"
)

// numberCacheSize bounds how many inputs the Cleaner remembers: about
// 1 MB when full (measured at 8,192 entries of typical numbers; inputs
// longer than maxNumberLength are never cached), enough for every caller
// of a busy edge while a flood of distinct numbers cannot grow it.
const (
	numberCacheShards = 16
	numberCacheSize   = 8192
)

// numberCache remembers what NormalizeNumber made of recent inputs (also
// failures, so that garbage repeated costs no parse either): phonenumbers
// takes tens of microseconds per number, a lookup well under one. It is
// sharded so that concurrent requests rarely wait on one another, and a
// full shard forgets an arbitrary entry (Go's map iteration order is
// random) to make room.
type numberCache struct {
	seed     maphash.Seed
	perShard int
	shards   [numberCacheShards]numberShard
}

type numberShard struct {
	mu sync.RWMutex
	m  map[string]normalizedNumber
}

type normalizedNumber struct {
	number string
	ok     bool
}

// newNumberCache returns a cache of about size entries.
func newNumberCache(size int) *numberCache {
	c := &numberCache{seed: maphash.MakeSeed(), perShard: max(size/numberCacheShards, 1)}
	for i := range c.shards {
		c.shards[i].m = make(map[string]normalizedNumber, c.perShard)
	}
	return c
}

func (c *numberCache) shard(key string) *numberShard {
	return &c.shards[maphash.String(c.seed, key)%numberCacheShards]
}

func (c *numberCache) get(key string) (normalizedNumber, bool) {
	s := c.shard(key)
	s.mu.RLock()
	n, ok := s.m[key]
	s.mu.RUnlock()
	return n, ok
}

func (c *numberCache) put(key string, n normalizedNumber) {
	s := c.shard(key)
	s.mu.Lock()
	if _, ok := s.m[key]; !ok && len(s.m) >= c.perShard {
		for old := range s.m {
			delete(s.m, old)
			break
		}
	}
	s.m[key] = n
	s.mu.Unlock()
}

// len returns how many inputs the cache holds.
func (c *numberCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
