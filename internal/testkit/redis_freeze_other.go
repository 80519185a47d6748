//go:build !unix

package testkit

// Freeze needs SIGSTOP, which this system does not have: the test that
// freezes Redis is skipped here.
func (s *RedisServer) Freeze() {
	s.t.Helper()
	s.t.Skip("testkit: freezing redis-server needs SIGSTOP (unix only)")
}

// Thaw resumes a frozen server; see Freeze.
func (s *RedisServer) Thaw() {}
