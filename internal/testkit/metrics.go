package testkit

import (
	"bufio"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// MetricValue is the value of one sample in a Prometheus text exposition
// (/metrics), such as `caddy_ucwa_cannot_redirect_total` or
// `caddy_ucwa_token_cache_lookups_total{result="hit"}`; -1 when absent.
func MetricValue(t testing.TB, exposition, sample string) float64 {
	t.Helper()
	scanner := bufio.NewScanner(strings.NewReader(exposition))
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), sample+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", sample, err)
			}
			return v
		}
	}
	return -1
}

// Exposition is what reg would serve on /metrics.
func Exposition(t testing.TB, reg prometheus.Gatherer) string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}
