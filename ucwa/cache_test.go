package ucwa

import (
	"strings"
	"testing"
	"unsafe"
)

// TestCacheCopiesKeys shows that the cache keeps its own copy of a key:
// a key sliced from a large request must not keep the request alive.
func TestCacheCopiesKeys(t *testing.T) {
	c := newShardedCache[int](numberCacheShards)
	request := "to=" + strings.Repeat("x", 1000) + "&x=1"
	key := request[3:1003]
	c.put(key, 1)
	s := c.shard(key)
	for k := range s.m {
		if unsafe.StringData(k) == unsafe.StringData(key) {
			t.Errorf("the cache keeps the caller's key")
		}
	}
	if v, ok := c.get(key); !ok || v != 1 {
		t.Errorf("get = %d, %v", v, ok)
	}
	c.put(key, 2)
	if v, _ := c.get(key); v != 2 || c.len() != 1 {
		t.Errorf("a second put: %d, %d entries", v, c.len())
	}
}

// len returns how many inputs the cache holds.
func (c *shardedCache[V]) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
