package ucwa

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// TestNumberCacheBounded feeds the Cleaner more distinct numbers
// than its cache holds: the cache stays at its bound and every answer is
// what phonenumbers gives without it.
func TestNumberCacheBounded(t *testing.T) {
	const size = 256
	c := mustCleaner(t, "US", TelURI)
	c.numbers = newNumberCache(size)
	for i := range 3 * size {
		in := "(425) " + strconv.Itoa(2000000+i)
		got, ok := c.NormalizeNumber(in)
		if want, wok := c.normalizeNumber(in); got != want || ok != wok {
			t.Fatalf("NormalizeNumber(%q) = %q, %v; uncached %q, %v", in, got, ok, want, wok)
		}
	}
	if n := c.numbers.len(); n > size || n < size/2 {
		t.Errorf("cache holds %d inputs, bound %d", n, size)
	}
	long := "+1 425 555 1234" + string(make([]byte, maxNumberLength))
	before := c.numbers.len()
	if _, ok := c.NormalizeNumber(long); ok {
		t.Errorf("a %d-byte input normalized", len(long))
	}
	if c.numbers.len() > before {
		t.Errorf("a long input was cached")
	}
}

// TestNumberCacheConcurrent hammers one Cleaner from several goroutines,
// with hits, misses and evictions (run it with -race).
func TestNumberCacheConcurrent(t *testing.T) {
	c := mustCleaner(t, "", E164)
	c.numbers = newNumberCache(numberCacheShards) // one entry a shard: evictions all the time
	inputs := []string{"+14255551234", "tel:+1-425-555-1234", "4255551234", "+910000000000", "garbage", "+44 20 7946 0958"}
	want := make([]normalizedNumber, len(inputs))
	for i, in := range inputs {
		want[i].number, want[i].ok = c.normalizeNumber(in)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				k := (g + i) % len(inputs)
				if n, ok := c.NormalizeNumber(inputs[k]); n != want[k].number || ok != want[k].ok {
					t.Errorf("NormalizeNumber(%q) = %q, %v", inputs[k], n, ok)
					return
				}
				c.NormalizeNumber("+1425" + strconv.Itoa(2000000+g*1000+i)) // evicts
			}
		})
	}
	wg.Wait()
}

// TestNumberCacheAnswers shows that an input in the cache is answered
// from it, without phonenumbers.
func TestNumberCacheAnswers(t *testing.T) {
	c := mustCleaner(t, "US", TelURI)
	c.numbers.put("4255551234", normalizedNumber{number: "tel:+19999999999", ok: true})
	if got, ok := c.NormalizeNumber("4255551234"); got != "tel:+19999999999" || !ok {
		t.Errorf("NormalizeNumber = %q, %v; the cache was not asked", got, ok)
	}
	if got, ok := c.NormalizeNumber("4255551235"); got != "tel:+14255551235" || !ok {
		t.Errorf("NormalizeNumber = %q, %v", got, ok)
	}
	if n, ok := c.numbers.get("4255551235"); !ok || n.number != "tel:+14255551235" {
		t.Errorf("a miss was not cached: %+v %v", n, ok)
	}
}

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
