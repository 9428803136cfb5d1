package caps

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// testGate refuses delegations deeper than maxDepth, clips rights to
// ceiling, leases every copy for lease, and records what it saw.
type testGate struct {
	maxDepth int
	ceiling  Rights
	lease    time.Duration
	asked    atomic.Int32
	expired  chan Receipt
	lastFor  atomic.Pointer[Holder]
}

func (g *testGate) Delegate(parent *Cap, d *Derivation) (time.Duration, error) {
	g.asked.Add(1)
	to := d.Holder
	if to == nil {
		to = d.For
	}
	g.lastFor.Store(to)
	if parent.Depth()+1 > g.maxDepth {
		return 0, fmt.Errorf("depth %d: %w", parent.Depth()+1, ENOTCAPABLE)
	}
	d.Base &= g.ceiling
	d.Inheriting &= g.ceiling
	return g.lease, nil
}

func (g *testGate) Expired(c *Cap, r Receipt) { g.expired <- r }

func TestGateDecidesOnlyDerivationsThatPassOn(t *testing.T) {
	k := NewKernel(nil)
	g := &testGate{maxDepth: 2, ceiling: RightFDRead | RightFileOpen | RightFDSeek}
	k.SetGate(g)
	root, _ := mintDir(t, k)
	a, b := &Holder{ID: "a"}, &Holder{ID: "b"}

	// Same holder, no passing on: the gate is not asked.
	dup := mustDerive(t, k, root, Derivation{Holder: root.Holder(), Edge: EdgeDup, Base: RightFileOpen})
	if g.asked.Load() != 0 {
		t.Fatalf("gate asked %d times for a dup", g.asked.Load())
	}
	if dup.Depth() != 0 {
		t.Fatalf("dup depth = %d, want 0", dup.Depth())
	}

	rb, ri := root.Rights()
	one := mustDerive(t, k, root, Derivation{Holder: a, Edge: EdgeDelegate, Base: rb, Inheriting: ri})
	if b1, i1 := one.Rights(); b1 != rb&g.ceiling || i1 != ri&g.ceiling {
		t.Fatalf("delegated rights %v/%v, want them clipped to %v", b1, i1, g.ceiling)
	}
	if one.Depth() != 1 {
		t.Fatalf("depth after one delegation = %d, want 1", one.Depth())
	}
	ob, oi := one.Rights()
	two := mustDerive(t, k, one, Derivation{For: b, Edge: EdgeSpawn, Base: ob, Inheriting: oi})
	if two.Depth() != 2 || g.lastFor.Load() != b {
		t.Fatalf("depth %d, recipient %v: want 2 and b", two.Depth(), g.lastFor.Load())
	}
	_, err := k.Derive(two, Derivation{Holder: a, Edge: EdgeDelegate, Base: ob})
	if !errors.Is(err, ENOTCAPABLE) {
		t.Fatalf("third hop: %v, want the gate's ENOTCAPABLE", err)
	}
	if n := k.LiveCopies(root); n != 2 {
		t.Fatalf("LiveCopies = %d, want 2 (the dup is not a copy passed on)", n)
	}
	k.Close(two)
	if n := k.LiveCopies(root); n != 1 {
		t.Fatalf("LiveCopies after closing one = %d, want 1", n)
	}
	if two.Root() != root {
		t.Fatal("Root of a two-hop copy is not the grant")
	}
}

func TestGateRefusalClosesTheNewResource(t *testing.T) {
	k := NewKernel(nil)
	k.SetGate(&testGate{maxDepth: 0})
	root, _ := mintDir(t, k)
	res := newTestRes(KindFile)
	_, err := k.Derive(root, Derivation{Holder: &Holder{ID: "x"}, Edge: EdgeDelegate, Resource: res})
	if !errors.Is(err, ENOTCAPABLE) || res.closes.Load() != 1 {
		t.Fatalf("err %v, closes %d: want ENOTCAPABLE and the resource closed once", err, res.closes.Load())
	}
}

func TestLeaseRevokesSubtreeAndTellsGate(t *testing.T) {
	k := NewKernel(nil)
	g := &testGate{maxDepth: 5, ceiling: RightsAll, lease: time.Millisecond, expired: make(chan Receipt, 1)}
	k.SetGate(g)
	root, _ := mintDir(t, k)
	rb, ri := root.Rights()
	copy1 := mustDerive(t, k, root, Derivation{Holder: &Holder{ID: "a"}, Edge: EdgeDelegate, Base: rb, Inheriting: ri})
	if copy1.Expires().IsZero() {
		t.Fatal("a leased copy reports no expiry")
	}
	child := mustDerive(t, k, copy1, Derivation{Holder: copy1.Holder(), Edge: EdgeDup, Base: RightFileOpen})
	select {
	case r := <-g.expired:
		if r.Root != copy1.ID() || len(r.Revoked) != 2 {
			t.Fatalf("receipt %+v: want the copy and its dup revoked", r)
		}
	case <-time.After(hangGuard):
		t.Fatal("the lease never expired")
	}
	if !copy1.Revoked() || !child.Revoked() || root.Revoked() {
		t.Fatalf("revoked: copy %v child %v root %v; want the copy's subtree only", copy1.Revoked(), child.Revoked(), root.Revoked())
	}
	if !root.Expires().IsZero() {
		t.Fatal("the unleased grant reports an expiry")
	}
}
