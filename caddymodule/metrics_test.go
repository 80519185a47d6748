package caddymodule

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPoolMetricsShared: a second handler (or a provisioning that runs
// again against the same registry) gets the collectors already there,
// so its counts add up with the first one's.
func TestPoolMetricsShared(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	first, err := newPoolMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := newPoolMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if first.requests != second.requests || first.failovers != second.failovers || first.cannotRedirect != second.cannotRedirect {
		t.Fatal("second registration made new collectors instead of sharing the registered ones")
	}

	// A collector of the same name but another shape is a real conflict.
	clash := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "caddy_ucwa_pool_requests_total", Help: "x"}, []string{"other"})
	if _, err := register(reg, clash); err == nil {
		t.Error("a clashing collector was accepted")
	}
}
