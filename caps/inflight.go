package caps

import (
	"fmt"
)

// DefaultMaxInFlight is an InFlightLimit's default maximum: as many
// capabilities as a default handle table holds, as Linux bounds the
// descriptors one user has in flight on Unix sockets by RLIMIT_NOFILE.
const DefaultMaxInFlight = DefaultMaxFDs

// ErrInFlight is a send refused by an InFlightLimit. It wraps ENOBUFS, the
// errno the guest sees.
var ErrInFlight = fmt.Errorf("too many capabilities sent and not yet received (caps.InFlightLimit): %w", ENOBUFS)

// InFlightLimit bounds the capabilities a group of guests has sent on
// channels that nobody has received yet. A handle in a channel's queue
// takes no slot in any handle table, and a channel end in flight carries
// its own queue with it: without a bound, a guest with a handful of
// handles could nest ends in ends and make the kernel keep as many
// capabilities, and as many channel buffers, as it has time to send. Each
// capability charged counts until it is received (Kernel.Adopt) or closed
// (dropped with a queue, or refused by a full handle table), whoever
// holds the channel by then; so what a group has in flight, at any depth
// of nesting, is bounded by its limit. The daemon keeps one per user
// (serve --max-inflight-per-user); a guest and the guests it spawns share
// one (abi.GuestConfig.InFlight).
type InFlightLimit struct{ count byteBudget }

// NewInFlightLimit returns a limit of max capabilities in flight
// (DefaultMaxInFlight when max ≤ 0).
func NewInFlightLimit(max int) *InFlightLimit {
	if max <= 0 {
		max = DefaultMaxInFlight
	}
	l := &InFlightLimit{}
	l.count.limit = int64(max)
	return l
}

// Reserve takes room in l for n capabilities a send is about to derive,
// so that a send past the limit derives nothing (and the audit log keeps
// no copy made only to be dropped). Charge then hands the room to each
// capability as it is made, and Unreserve gives back what none took. It
// reserves nothing and returns ErrInFlight when n would take l past its
// maximum.
func (l *InFlightLimit) Reserve(n int) error {
	if n <= 0 {
		return nil // nothing sent: no shared counter to touch
	}
	if !l.count.reserve(int64(n)) {
		return ErrInFlight
	}
	return nil
}

// Charge hands c one unit that Reserve took: c counts against l until it
// is received (Kernel.Adopt) or closed.
func (l *InFlightLimit) Charge(c *Cap) { c.charge.Store(l) }

// Unreserve gives back n units that Reserve took and no capability was
// charged with.
func (l *InFlightLimit) Unreserve(n int) {
	if n > 0 {
		l.count.release(int64(n))
	}
}

// InFlight returns how many capabilities charged to l are still in flight.
func (l *InFlightLimit) InFlight() int { return int(l.count.used.Load()) }

// Max returns l's maximum.
func (l *InFlightLimit) Max() int { return int(l.count.limit) }

// uncharge ends c's charge, if it has one: it was received or closed.
func (c *Cap) uncharge() {
	if c.charge.Load() == nil {
		return // most capabilities never travel: no swap (a locked write) on every close
	}
	if l := c.charge.Swap(nil); l != nil {
		l.count.release(1)
	}
}
