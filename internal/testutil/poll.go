// Package testutil holds what the test suites of offering-operator share:
// waiting for the state a user would observe, and reading the code itself.
package testutil

import (
	"testing"
	"time"
)

// Poll intervals: the first looks come quickly, so that a test ends as soon
// as the state is there; then they back off, so that a slow wait (one that
// runs kubectl, or waits on a controller's batching) costs little.
const (
	firstPoll = 50 * time.Millisecond
	maxPoll   = 250 * time.Millisecond
)

// Eventually calls fn until it returns nil, and fails the test with fn's
// last error when timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for pause := firstPoll; ; pause = min(2*pause, maxPoll) {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(pause)
	}
}

// Consistently calls fn for the duration d and fails the test as soon as it
// returns an error.
func Consistently(t testing.TB, d time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
