package store

import "time"

// RemainingTTL reports how long the reservation at key lives on, or -1
// when the store holds none; tests compare it with Redis's PTTL.
func (m *Memory) RemainingTTL(key string) time.Duration {
	now := m.now()
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.lookup(memoryKey{key: key}, now)
	if it == nil {
		return -1
	}
	return it.expires.Sub(now)
}
