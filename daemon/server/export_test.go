package server

import (
	"context"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/internal/ctxtest"
)

// HangGuard bounds the waits in this package's tests that only a hang
// could reach. Each such wait is for an event (a guest ending, a client
// answered, a connection closed); the bound is far beyond what any load
// makes of a step here, and only turns a hung test into a failure that
// names it, before the suite's timeout.
const HangGuard = 3 * time.Minute

// CountContextChildren replaces s's context with one that counts the
// contexts derived from it that are still attached (see ctxtest). Call it
// before s serves anything.
func CountContextChildren(s *Server) *ctxtest.Children {
	c := ctxtest.Count(s.ctx)
	s.ctx = c
	return c
}

// RunningGuests is how many guests launched through s are counted as
// running: a guest's count drops once s has processed its exit (watch).
func RunningGuests(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, k := range s.running {
		n += k
	}
	return n
}

// OpenConnections is how many client connections s counts as open: a
// connection leaves the count once its rpc.Conn has shut down.
func OpenConnections(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// StdinWritesWaiting is how many stdin writes to guest id wait for the
// guest to read them.
func StdinWritesWaiting(s *Server, id string) int {
	s.mu.Lock()
	r := s.records[id]
	s.mu.Unlock()
	if r == nil || r.stdin == nil {
		return 0
	}
	return int(r.stdin.waiting.Load())
}

// OutputWaiting reports whether guest id's output waits for its attached
// client to acknowledge what it was sent.
func OutputWaiting(s *Server, id string) bool {
	s.mu.Lock()
	r := s.records[id]
	s.mu.Unlock()
	return r != nil && r.attached != nil && r.attached.lim.waiting.Load() > 0
}

// Eventually polls cond until it holds, or fails the test at within,
// saying what never happened.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// ConnOutput returns, over s's connections, the most guest output in
// flight to one client on all its sinks together, and how many stream
// calls of all its sinks wait for a client.
func ConnOutput(s *Server) (inFlight int64, waiting int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.output.mu.Lock()
		inFlight = max(inFlight, c.output.window-c.output.avail)
		c.output.mu.Unlock()
		waiting += int(c.output.waiting.Load())
	}
	return inFlight, waiting
}

// ConnOutputWindow is the most guest output in flight to one client.
const ConnOutputWindow = connOutputWindow

// SetLaunchStarted makes launch call f with each guest it has started,
// before it watches for the guest's end, until restore is called.
func SetLaunchStarted(f func(*daemon.Guest)) (restore func()) {
	old := launchStarted
	launchStarted = f
	return func() { launchStarted = old }
}

// MaxOutputCall is the most output one stream call to a client carries.
const MaxOutputCall = maxOutputCall

// SetUserLookup makes s ask lookup, not the system's user database, for
// the name and groups of a uid. Call it before s serves anything.
func SetUserLookup(s *Server, lookup func(uid uint32) (name string, groups []uint32)) {
	s.lookupUser = func(uid uint32) userInfo {
		name, groups := lookup(uid)
		return userInfo{name: name, groups: groups}
	}
}

// KeptOutput is how many bytes guest id has written to its output, and
// how many of them s keeps for logs.
func KeptOutput(s *Server, id string) (written, kept uint64) {
	s.mu.Lock()
	r := s.records[id]
	s.mu.Unlock()
	if r == nil {
		return 0, 0
	}
	r.output.mu.Lock()
	defer r.output.mu.Unlock()
	return r.output.end, r.output.end - r.output.start
}

// BindError is the error Listen returns when binding path failed with err.
var BindError = bindError

// SetLaunchCompiled makes launch call compiled with the launch call's
// context once the module is compiled, before the guest is launched, and
// ended with the launch call's error once it returns, until restore is
// called.
func SetLaunchCompiled(compiled func(context.Context), ended func(error)) (restore func()) {
	oldC, oldE := launchCompiled, launchEnded
	launchCompiled, launchEnded = compiled, ended
	return func() { launchCompiled, launchEnded = oldC, oldE }
}
