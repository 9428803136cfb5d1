package abi

import "github.com/sandboxd/sandboxd/caps"

// The guest's hold.
//
// A capability check costs a host call two atomic read-modify-writes: the
// in-flight count that Revoke waits on goes up and down again. A guest
// writing to its stdout in a loop pays them at every write, for nothing
// but the chance of a revocation. So fd_write keeps the capability of a
// standard stream acquired after the call, in the guest's caps.Hold, and
// the next fd_write on the same handle checks its rights and revocation
// (plain loads) without counting again.
//
// What Revoke promises still holds, that no call on a revoked handle
// succeeds once Revoke has returned: the hold counts as a call in flight,
// so Revoke waits for the guest to give it up; Revoke asks for that
// through the hold (caps.Hold.Dropping) and sets the guest's loop budget
// to 0, so that the guest gives it up at its next loop iteration (in
// loopYield) if it makes no call first; every call but fd_write and
// clock_time_get gives the hold up before it runs (hostFunc.Call), since
// it may block or change the guest's handles; and the guest gives it up
// when its program ends. A program without loop checks (Config.NoLoopChecks)
// has no budget to set, and keeps no hold.

// acquireWrite acquires fd for fd_write: through the hold when the
// program may keep one, for a standard stream (the one resource written
// in loops whose Write neither polls nor waits for readiness). With
// release true the caller must Release c when done.
func (g *Guest) acquireWrite(fd uint32) (c *caps.Cap, release bool, e Errno) {
	if !g.holding {
		c, e = g.acquire(fd, caps.RightFDWrite)
		return c, e == 0, e
	}
	c, release, err := g.hold.Acquire(g.table, fd, caps.RightFDWrite, isStdio)
	if err != nil {
		e, _ = err.(caps.Errno)
		return nil, false, e
	}
	return c, release, 0
}

func isStdio(r caps.Resource) bool {
	_, ok := r.(*caps.Stdio)
	return ok
}

// wakeForHold brings the guest to a safe point soon, where it gives its
// hold up (loopYield): a revocation is waiting for it.
func (g *Guest) wakeForHold() { g.stopAtNextLoop() }

// stopAtNextLoop sets the running program's loop budget to 0, so that its
// next loop iteration calls loopYield. A program without loop checks, or
// none running, has no budget: nothing to do.
func (g *Guest) stopAtNextLoop() {
	g.budgetMu.Lock()
	defer g.budgetMu.Unlock()
	if b := g.budget.Load(); b != nil {
		(*b).Set(0)
	}
}
