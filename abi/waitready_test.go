package abi

import (
	"testing"

	"github.com/sandboxd/sandboxd/caps"
)

// alwaysReady is a resource that is always ready for what is asked.
type alwaysReady struct{}

func (alwaysReady) Poll(want caps.Events, _ *caps.Waiter) (caps.Events, func()) {
	return want, func() {}
}

// A call that waits again after part of its work (a blocking send to a
// peer that drains as fast as it is fed) stops once its handle is
// revoked, however ready the resource is: waitReady answered "ready"
// whenever the resource was, so a send revoked midway went on sending to
// a draining peer until it had sent everything.
func TestWaitReadyOnARevokedHandleIsENOTCAPABLEHoweverReadyTheResource(t *testing.T) {
	env := newFuzzEnv(t)
	p := newSbxSock(t, env, "unix")
	defer p.close()
	c, err := p.g.table.Get(p.own)
	if err != nil {
		t.Fatal(err)
	}
	if e := p.g.waitReady(c, alwaysReady{}, caps.EventWrite); e != 0 {
		t.Fatalf("waitReady on a ready resource: %v, want 0", e)
	}
	p.g.table.Kernel().Revoke(c, "test")
	if e := p.g.waitReady(c, alwaysReady{}, caps.EventWrite); e != caps.ENOTCAPABLE {
		t.Fatalf("waitReady on a ready resource whose handle was revoked: %v, want ENOTCAPABLE", e)
	}
}
