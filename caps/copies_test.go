package caps

import (
	"errors"
	"testing"
)

// A copy passed on still counts after its holder closes it while a dup of
// it lives on: otherwise dup, close and ask again would pass a grant on
// past any max_copies.
func TestACopyClosedBehindADupStillCounts(t *testing.T) {
	k := NewKernel(nil)
	root, _ := mintDir(t, k)
	b, i := root.Rights()
	x := mustPassOn(t, k, root, bob)
	dup := mustDerive(t, k, x, Derivation{Holder: bob, Edge: EdgeDup, Base: b, Inheriting: i})
	k.Close(x)
	if n := k.LiveCopies(root); n != 1 {
		t.Fatalf("LiveCopies with the copy closed behind a live dup: %d, want 1", n)
	}
	k.Close(dup)
	if n := k.LiveCopies(root); n != 0 {
		t.Fatalf("LiveCopies with the copy and its dup closed: %d, want 0", n)
	}
}

// A service created beneath a channel grant, and the copies of it peers
// obtain, are not copies of the grant.
func TestServicesAreNotCopiesOfTheGrantTheyWereCreatedBeneath(t *testing.T) {
	k := NewKernel(nil)
	ch := k.Mint(alice, newTestRes(KindChannel), RightsAll, RightsAll, "jobs", "test")
	svc := mustDerive(t, k, ch, Derivation{Holder: alice, Edge: EdgeCreate, Base: RightFDWrite, Resource: newTestRes(KindService)})
	mustDerive(t, k, svc, Derivation{Holder: bob, Edge: EdgeDelegate, Base: RightFDWrite})
	if n := k.LiveCopies(ch); n != 0 {
		t.Fatalf("LiveCopies of the channel grant: %d, want 0", n)
	}
	_, i := ch.Rights()
	mustDerive(t, k, ch, Derivation{Holder: bob, Edge: EdgeDelegate, Base: RightFDRead, Inheriting: i})
	if n := k.LiveCopies(ch); n != 1 {
		t.Fatalf("LiveCopies after the channel itself is passed on: %d, want 1", n)
	}
}

// A holder that passes a handle to itself and closes the original, over
// and over, leaves a run of closed capabilities behind (each has a live
// descendant): beneath MaxClosedAbove of them its handle derives nothing
// more, and closing it lets the whole run go.
func TestClosedChainsAreBounded(t *testing.T) {
	k := NewKernel(nil)
	root, _ := mintDir(t, k)
	mine := &Holder{ID: "g-self"}
	c := mustPassOn(t, k, root, mine)
	var err error
	n := 0
	for ; n <= MaxClosedAbove; n++ {
		var next *Cap
		if next, err = passOn(k, c, mine); err != nil {
			break
		}
		k.Close(c)
		c = next
	}
	if !errors.Is(err, EMFILE) || n != MaxClosedAbove {
		t.Fatalf("after %d rounds: %v; want EMFILE after %d", n, err, MaxClosedAbove)
	}
	if _, err := passOn(k, root, mine); err != nil {
		t.Fatalf("the holder's derivation from another handle: %v", err)
	}
	k.Close(c)
	if s := k.Snapshot(); len(s) != 2 {
		t.Fatalf("%d capabilities tracked after the newest copy closed, want the grant and the other copy", len(s))
	}
}

// Two guests passing a handle to and fro, each closing its copy, make one
// run: the bound refuses that handle only, and neither guest loses the
// use of its own other handles.
func TestAClosedChainRefusesOnlyItsOwnHandle(t *testing.T) {
	k := NewKernel(nil)
	root, _ := mintDir(t, k)
	b, i := root.Rights()
	relay := &Holder{ID: "g-relay"}
	own := mustPassOn(t, k, root, relay)
	holders := []*Holder{alice, relay}
	c := root
	var err error
	for n := 0; err == nil && n < 4*MaxClosedAbove; n++ {
		var next *Cap
		if next, err = passOn(k, c, holders[n%2]); err == nil {
			if c != root {
				k.Close(c)
			}
			c = next
		}
	}
	if !errors.Is(err, EMFILE) {
		t.Fatalf("passing to and fro ended with %v, want EMFILE", err)
	}
	if _, err := k.Derive(own, Derivation{Holder: relay, Edge: EdgeDup, Base: b, Inheriting: i}); err != nil {
		t.Fatalf("the relay's dup of a handle of its own: %v", err)
	}
}

// Keeping an open handle every so often along the chain does not get
// around the bound: what counts is the closed capabilities near above,
// not an unbroken run of them, so a chain grows only as its holder keeps
// about one handle open for each closed one.
func TestAnchorsAlongAChainDoNotGetAroundTheBound(t *testing.T) {
	k := NewKernel(nil)
	root, _ := mintDir(t, k)
	mine := &Holder{ID: "g-self"}
	anchor := mustPassOn(t, k, root, mine)
	c := anchor
	var err error
	steps := 0
	for ; steps < 20*MaxClosedAbove && err == nil; steps++ {
		var next *Cap
		if next, err = passOn(k, c, mine); err != nil {
			break
		}
		if steps%(MaxClosedAbove/2) == 0 { // the tip becomes the anchor
			if anchor != c {
				k.Close(anchor)
			}
			anchor = c
		} else {
			k.Close(c)
		}
		c = next
	}
	if !errors.Is(err, EMFILE) || steps > 2*MaxClosedAbove+2 {
		t.Fatalf("after %d steps with one anchor kept open at a time: %v; want EMFILE within %d", steps, err, 2*MaxClosedAbove+2)
	}
}

// passOn derives from c a copy for h, with all of c's rights, as sending
// it on a channel does.
func passOn(k *Kernel, c *Cap, h *Holder) (*Cap, error) {
	b, i := c.Rights()
	return k.Derive(c, Derivation{Holder: h, Edge: EdgeDelegate, Base: b, Inheriting: i})
}

func mustPassOn(t *testing.T, k *Kernel, c *Cap, h *Holder) *Cap {
	t.Helper()
	x, err := passOn(k, c, h)
	if err != nil {
		t.Fatalf("pass on: %v", err)
	}
	return x
}
