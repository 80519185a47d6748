package main

import (
	"math"
	"os"
	"os/exec"
	"strings"
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

// TestMeasuredRoutes: -routes names routes by their flag names; a name
// that is none is an error that lists them, not a run of nothing.
func TestMeasuredRoutes(t *testing.T) {
	for _, tc := range []struct {
		list string
		want []string
		err  bool
	}{
		{list: "", want: nil},
		{list: "edge", want: []string{routeEdge}},
		{list: "edge, idem-memory", want: []string{routeEdge, routeIdemMem}},
		{list: "idem-redis,all,expect", want: []string{routeIdemRed, routeAll, routeExpect}},
		{list: "plain", err: true},
		{list: "edge,", err: true},
	} {
		got, err := measuredRoutes(tc.list)
		if tc.err {
			if err == nil || !strings.Contains(err.Error(), "idem-memory") {
				t.Errorf("%q: error %v, want one listing the routes", tc.list, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.list, err)
		}
		if tc.want == nil {
			if got != nil {
				t.Errorf("%q: %v, want every route (nil)", tc.list, got)
			}
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: %v, want %v", tc.list, got, tc.want)
		}
		for _, r := range tc.want {
			if !got[r] {
				t.Errorf("%q: %v lacks %q", tc.list, got, r)
			}
		}
	}
}

// TestOthersBusy: a process outside own that spins is counted in
// othersBusy, at about the CPU time it used (the kernel's counters are
// sampled at its clock ticks; the process's own is exact).
func TestOthersBusy(t *testing.T) {
	before := othersBusy([]int{os.Getpid()})
	spin := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done")
	if err := spin.Run(); err != nil {
		t.Fatal(err)
	}
	used := spin.ProcessState.UserTime() + spin.ProcessState.SystemTime()
	if got := othersBusy([]int{os.Getpid()}) - before; got < used/2 {
		t.Errorf("others busy %v while a process outside own used %v", got, used)
	}
}

// TestRatios: a route's ratios are its rounds' against plain's rounds of
// the same round, the median is theirs, and the spread their lowest and
// highest.
func TestRatios(t *testing.T) {
	rounds := func(cpu ...float64) *routeMetrics {
		m := new(routeMetrics)
		for _, c := range cpu {
			m.rounds = append(m.rounds, roundMetrics{cpuPerRequest: c})
		}
		return m
	}
	for _, tc := range []struct {
		name           string
		route, plain   *routeMetrics
		median, lo, hi float64
	}{
		{"one round", rounds(110), rounds(100), 1.1, 1.1, 1.1},
		{"round by round", rounds(100, 330, 220), rounds(100, 300, 200), 1.1, 1, 1.1},
		{"even rounds", rounds(100, 120, 130, 200), rounds(100, 100, 100, 100), 1.25, 1, 2},
		{"plain has fewer rounds", rounds(120, 999), rounds(100), 1.2, 1.2, 1.2},
		{"no rounds", rounds(), rounds(), 0, 0, 0},
	} {
		got := tc.route.medianRatio(tc.plain, cpuPerRequest)
		lo, hi := spread(tc.route.ratios(tc.plain, cpuPerRequest))
		if !near(got, tc.median) || !near(lo, tc.lo) || !near(hi, tc.hi) {
			t.Errorf("%s: median %v (%v-%v), want %v (%v-%v)", tc.name, got, lo, hi, tc.median, tc.lo, tc.hi)
		}
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
