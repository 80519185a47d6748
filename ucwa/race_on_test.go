//go:build race

package ucwa

// raceDetector reports whether the tests run under the race detector.
const raceDetector = true
