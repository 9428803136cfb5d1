package abi

import "time"

// HangGuard bounds the waits in this package's tests that only a hang
// could reach. Each such wait is for an event (a guest blocking, exiting,
// answering); the bound is far beyond what any load makes of a step here,
// and only turns a hung test into a failure that names it, before the
// suite's timeout.
const HangGuard = 3 * time.Minute

// Blocked reports how many times a host call of g began to wait for an
// event, and whether one is waiting now. A test that must act while a
// guest is blocked waits for it instead of sleeping.
func (g *Guest) Blocked() (waits int64, waiting bool) {
	return g.waits.Load(), g.parked.Load() != 0
}

// HostPollRegistrations is how many descriptors g's poller keeps a
// registration of (hostPoller.armed). Read it while g waits in a host
// call (Blocked): the guest's goroutine alone changes it.
func (g *Guest) HostPollRegistrations() int {
	if g.hpoll == nil {
		return 0
	}
	return len(g.hpoll.armed)
}

// HostPollKept is the most registrations a poller that polls one
// descriptor at a time keeps.
const HostPollKept = hostPollKept
