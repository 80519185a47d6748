package main

import (
	"os"
	"syscall"
	"testing"
)

// TestProcStat reads this process's own /proc: a fresh mapping's pages,
// touched, are that many more minor faults, and its threads have
// switched context.
func TestProcStat(t *testing.T) {
	const pages = 64
	mem, err := syscall.Mmap(-1, 0, pages*os.Getpagesize(), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	pid := os.Getpid()
	_, before := procStat(pid)
	for i := 0; i < len(mem); i += os.Getpagesize() {
		mem[i] = 1
	}
	cpu, after := procStat(pid)
	if after-before < pages {
		t.Errorf("%d faults for %d fresh pages touched", after-before, pages)
	}
	if cpu <= 0 {
		t.Errorf("CPU time %v", cpu)
	}
	if n := procSwitches(pid); n == 0 {
		t.Error("no context switch counted")
	}
}
