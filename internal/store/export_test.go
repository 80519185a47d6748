package store

import "time"

// RemainingTTL reports how long the reservation at key lives on, or -1
// when the store holds none; tests compare it with Redis's PTTL.
func (m *Memory) RemainingTTL(key string) time.Duration {
	now := m.clock()
	k := m.key(key, false)
	s := m.shardOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.lookup(k, now)
	if !ok {
		return -1
	}
	if !s.holds(it, key) {
		return -1
	}
	return time.Duration(it.expires - now)
}
