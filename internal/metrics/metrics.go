// Package metrics holds what caddy-ucwa's metrics share: registering a
// collector in Caddy's registry so that every handler of a configuration
// (and a provisioning that runs again) adds to the same series.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c in reg, or returns the collector registered before
// under the same name, so that handlers of one configuration share it.
// With a nil reg, c is returned unregistered.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
