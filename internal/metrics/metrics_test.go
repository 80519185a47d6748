package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRegisterShares: a second registration of the same collector gets
// the one registered first, so that counts add up; a collector of the
// same name but another shape is a real conflict.
func TestRegisterShares(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	newVec := func(labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "caddy_ucwa_test_total", Help: "x"}, labels)
	}
	first, err := Register(reg, newVec("pool"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := Register(reg, newVec("pool"))
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Fatal("the second registration made a new collector instead of sharing the registered one")
	}
	if _, err := Register(reg, newVec("other")); err == nil {
		t.Error("a clashing collector was accepted")
	}
	if c, err := Register(nil, newVec("pool")); err != nil || c == nil {
		t.Errorf("without a registry: %v, %v", c, err)
	}
}
