//go:build race

package caddymodule

// raceDetector reports whether the tests run under the race detector.
const raceDetector = true
