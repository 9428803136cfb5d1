package daemon

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// HangGuard bounds the waits in this package's tests that only a hang
// could reach. Each such wait is for an event (a guest ending, a client
// answered, a connection closed); the bound is far beyond what any load
// makes of a step here, and only turns a hung test into a failure that
// names it, before the suite's timeout.
const HangGuard = 3 * time.Minute

// testCache is the compilation cache the supervisors of this package's
// tests share, so that a Go guest (seconds to compile, more under -race)
// is compiled once per test binary rather than once per test.
var testCache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sandboxd-daemon-test-cache")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testCache = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// WaitingChans is how many chan: names wait for a next grantee.
func (s *Supervisor) WaitingChans() int {
	s.chans.mu.Lock()
	defer s.chans.mu.Unlock()
	return len(s.chans.waiting)
}
