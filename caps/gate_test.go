package caps

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"
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
	// refuseAdopt is a holder Adopt refuses.
	refuseAdopt *Holder
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

func (g *testGate) Adopt(c *Cap, h *Holder) error {
	if g.refuseAdopt != nil && g.refuseAdopt == h {
		return fmt.Errorf("%s may not adopt %s: %w", h.ID, c.ID(), ENOTCAPABLE)
	}
	return nil
}

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

// A capability in flight is put to the gate again when its reader adopts
// it: a refused one is closed, and never held.
func TestGateDecidesWhoAdoptsACapabilityInFlight(t *testing.T) {
	k := NewKernel(nil)
	bob := &Holder{ID: "bob"}
	k.SetGate(&testGate{maxDepth: 5, ceiling: RightsAll, refuseAdopt: bob})
	root, _ := mintDir(t, k)
	rb, ri := root.Rights()
	toBob := mustDerive(t, k, root, Derivation{Edge: EdgeDelegate, Base: rb, Inheriting: ri})
	if err := k.Adopt(toBob, bob); !errors.Is(err, ENOTCAPABLE) {
		t.Fatalf("Adopt by a refused holder: %v, want the gate's ENOTCAPABLE", err)
	}
	if toBob.Holder() != nil || !toBob.Closed() {
		t.Fatalf("refused copy: holder %v, closed %v; want no holder, closed", toBob.Holder(), toBob.Closed())
	}
	alice := &Holder{ID: "alice"}
	toAlice := mustDerive(t, k, root, Derivation{Edge: EdgeDelegate, Base: rb, Inheriting: ri})
	if err := k.Adopt(toAlice, alice); err != nil || toAlice.Holder() != alice {
		t.Fatalf("Adopt by another holder: %v, holder %v; want alice to hold it", err, toAlice.Holder())
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

// copiesGate allows at most max live copies of a root to be passed on, as
// a policy's max_copies does, and yields the processor between counting
// them and deciding, so that concurrent delegations interleave there.
type copiesGate struct {
	k   *Kernel
	max int
}

func (g copiesGate) Delegate(parent *Cap, d *Derivation) (time.Duration, error) {
	n := g.k.LiveCopies(parent.Root())
	runtime.Gosched()
	if n >= g.max {
		return 0, fmt.Errorf("%d live copies: %w", n, ENOTCAPABLE)
	}
	return 0, nil
}

func (copiesGate) Expired(*Cap, Receipt) {}

func (copiesGate) Adopt(*Cap, *Holder) error { return nil }

// The gate decides delegations of one root one at a time, each after the
// copy the one before it allowed is linked, so that a gate that counts
// copies counts them all.
func TestGateCountsCopiesOfConcurrentDelegations(t *testing.T) {
	k := NewKernel(nil)
	k.SetGate(copiesGate{k: k, max: 1})
	for round := range 50 {
		root, _ := mintDir(t, k)
		rb, ri := root.Rights()
		var wg sync.WaitGroup
		var made atomic.Int32
		start := make(chan struct{})
		for j := range 16 {
			wg.Go(func() {
				<-start
				_, err := k.Derive(root, Derivation{Holder: &Holder{ID: fmt.Sprint("r-", j)}, Edge: EdgeDelegate, Base: rb, Inheriting: ri})
				if err == nil {
					made.Add(1)
				} else if !errors.Is(err, ENOTCAPABLE) {
					t.Errorf("delegation: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := made.Load(); n != 1 {
			t.Fatalf("round %d: %d of 16 concurrent delegations made, the gate allows 1", round, n)
		}
	}
}

// A gate deciding a delegation of one root does not hold up the
// delegations of another: the gate may be slow (a supervisor's waits for
// its audit log), and roots are unrelated grants.
func TestGateDecisionDoesNotHoldUpOtherRoots(t *testing.T) {
	k := NewKernel(nil)
	slow, _ := mintDir(t, k)
	entered, proceed := make(chan struct{}), make(chan struct{})
	k.SetGate(blockingGate{on: slow, entered: entered, proceed: proceed})
	other, _ := mintDir(t, k)
	rb, ri := slow.Rights()
	done := make(chan error, 1)
	go func() {
		_, err := k.Derive(slow, Derivation{Holder: bob, Edge: EdgeDelegate, Base: rb, Inheriting: ri})
		done <- err
	}()
	<-entered
	derived := make(chan error, 1)
	go func() {
		_, err := k.Derive(other, Derivation{Holder: bob, Edge: EdgeDelegate, Base: rb, Inheriting: ri})
		derived <- err
	}()
	select {
	case err := <-derived:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hangGuard):
		t.Fatal("a delegation waited for the gate's decision about another root")
	}
	close(proceed)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// blockingGate holds its decisions about capabilities derived from on
// until proceed is closed, after telling entered; it allows the rest at
// once.
type blockingGate struct {
	on               *Cap
	entered, proceed chan struct{}
}

func (g blockingGate) Delegate(parent *Cap, d *Derivation) (time.Duration, error) {
	if parent.Root() == g.on {
		close(g.entered)
		<-g.proceed
	}
	return 0, nil
}

func (blockingGate) Expired(*Cap, Receipt) {}

func (blockingGate) Adopt(*Cap, *Holder) error { return nil }

// A leased copy its holder closed, with nothing derived from it, is let
// go at once, as an unleased one is: its lease does not keep it for the
// rest of its time (a guest passing on and closing leased copies in a
// loop would otherwise hold the daemon's memory for as long as the ttl).
func TestClosedLeasedCopyIsLetGo(t *testing.T) {
	k := NewKernel(nil)
	g := &testGate{maxDepth: 5, ceiling: RightsAll, lease: time.Hour, expired: make(chan Receipt, 1)}
	k.SetGate(g)
	root, _ := mintDir(t, k)
	rb, ri := root.Rights()
	leased := mustDerive(t, k, root, Derivation{Holder: &Holder{ID: "a"}, Edge: EdgeDelegate, Base: rb, Inheriting: ri})
	gone := weak.Make(leased)
	k.Close(leased)
	leased = nil
	for range 3 {
		runtime.GC()
	}
	if gone.Value() != nil {
		t.Fatal("a closed leased copy is still reachable: its lease timer keeps it")
	}
	runtime.KeepAlive(root)
}
