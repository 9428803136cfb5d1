package caps

import (
	"testing"
	"time"
)

// hangGuard bounds the waits in these tests that only a hang could reach.
// Each waits for an event (a wake-up, a goroutine ending); the bound is far
// beyond what any load makes of it, and only turns a hung test into a
// failure that names it, before the suite's timeout.
const hangGuard = 3 * time.Minute

// waitFor waits until ch is closed, or fails the test, naming what never
// happened, at hangGuard.
func waitFor(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(hangGuard):
		t.Fatalf("after %v: %s", hangGuard, what)
	}
}
