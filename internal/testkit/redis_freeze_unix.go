//go:build unix

package testkit

import "syscall"

// Freeze stops the server's process (SIGSTOP): it keeps its port and its
// connections, and answers nothing, as a hung Redis does. Thaw resumes it;
// a frozen server is killed at cleanup all the same.
func (s *RedisServer) Freeze() {
	s.t.Helper()
	s.signal(syscall.SIGSTOP)
}

// Thaw resumes a frozen server (SIGCONT).
func (s *RedisServer) Thaw() {
	s.t.Helper()
	s.signal(syscall.SIGCONT)
}

func (s *RedisServer) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		s.t.Fatalf("testkit: redis-server is not running")
	}
	if err := cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("testkit: signal redis-server: %v", err)
	}
}
