package caps

import "testing"

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
