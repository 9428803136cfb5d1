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
	x := mustDerive(t, k, root, Derivation{Holder: bob, Edge: EdgeDelegate, Base: b, Inheriting: i})
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
// and over, leaves a chain of closed capabilities behind (each has a live
// descendant): at MaxRetained links it can derive nothing more, and
// closing the newest copy lets the whole chain go.
func TestClosedChainsAreBounded(t *testing.T) {
	k := NewKernel(nil)
	root, _ := mintDir(t, k)
	b, i := root.Rights()
	mine := &Holder{ID: "g-self"}
	c := mustDerive(t, k, root, Derivation{Holder: mine, Edge: EdgeDelegate, Base: b, Inheriting: i})
	var err error
	n := 0
	for ; n <= MaxRetained+1; n++ {
		var next *Cap
		if next, err = k.Derive(c, Derivation{Holder: mine, Edge: EdgeDelegate, Base: b, Inheriting: i}); err != nil {
			break
		}
		k.Close(c)
		c = next
	}
	// The first copy closed has an open parent (the grant): it is kept but
	// not a link of a closed chain.
	if !errors.Is(err, EMFILE) || n != MaxRetained+1 {
		t.Fatalf("after %d rounds: %v; want EMFILE after %d", n, err, MaxRetained+1)
	}
	if _, err := k.Derive(root, Derivation{Holder: bob, Edge: EdgeDelegate, Base: b, Inheriting: i}); err != nil {
		t.Fatalf("another holder's derivation: %v", err)
	}
	k.Close(c)
	if s := k.Snapshot(); len(s) != 2 {
		t.Fatalf("%d capabilities tracked after the newest copy closed, want the grant and bob's copy", len(s))
	}
	if left := retainedOf(k, mine); left != 0 {
		t.Fatalf("%d links still counted against the holder once the chain is gone", left)
	}
}

// A chain closed from its far end up is counted as well: each capability
// closed beneath a closed parent counts, whichever was closed first.
func TestAChainClosedFromItsEndIsCounted(t *testing.T) {
	k := NewKernel(nil)
	root, _ := mintDir(t, k)
	b, i := root.Rights()
	mine := &Holder{ID: "g-self"}
	chain := []*Cap{root}
	for range 5 {
		chain = append(chain, mustDerive(t, k, chain[len(chain)-1], Derivation{Holder: mine, Edge: EdgeDelegate, Base: b, Inheriting: i}))
	}
	for j := len(chain) - 2; j >= 1; j-- { // the tip stays open
		k.Close(chain[j])
	}
	if n := retainedOf(k, mine); n != 3 {
		t.Fatalf("%d links counted, want 3 (every closed copy but the one beneath the open grant)", n)
	}
}

// No holder is charged for what another keeps alive: an anchor the daemon
// closes behind the copy it gave (a root), or a copy closed beneath an
// open parent while its receiver keeps something derived from it.
func TestNoHolderIsChargedForWhatAnotherKeeps(t *testing.T) {
	k := NewKernel(nil)
	server := &Holder{ID: "g-server"}
	for range 3 {
		anchor := k.Create(server, newTestRes(KindService), RightFDWrite, 0, "svc", "test")
		mustDerive(t, k, anchor, Derivation{Holder: bob, Edge: EdgeDelegate, Base: RightFDWrite})
		k.Close(anchor)
	}
	root, _ := mintDir(t, k)
	b, i := root.Rights()
	for range 3 {
		x := mustDerive(t, k, root, Derivation{Holder: server, Edge: EdgeDelegate, Base: b, Inheriting: i})
		mustDerive(t, k, x, Derivation{Holder: bob, Edge: EdgeDelegate, Base: b, Inheriting: i})
		k.Close(x)
	}
	if n := retainedOf(k, server); n != 0 {
		t.Fatalf("%d links counted against a holder that keeps nothing alive itself", n)
	}
}

func retainedOf(k *Kernel, h *Holder) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return h.retained
}

// The links a spawn tree makes count against its top, however many
// children it spawns to hand the chain on.
func TestClosedChainLinksCountAgainstTheSpawnTreesTop(t *testing.T) {
	k := NewKernel(nil)
	root, _ := mintDir(t, k)
	b, i := root.Rights()
	top := &Holder{ID: "g-top"}
	c := mustDerive(t, k, root, Derivation{Holder: top, Edge: EdgeDelegate, Base: b, Inheriting: i})
	for n := range 4 {
		child := &Holder{ID: "g-child-" + string(rune('a'+n)), Parent: top}
		next := mustDerive(t, k, c, Derivation{Holder: child, Edge: EdgeSpawn, Base: b, Inheriting: i})
		k.Close(c)
		c = next
	}
	if n := retainedOf(k, top); n != 3 {
		t.Fatalf("%d links counted against the top, want 3", n)
	}
}
