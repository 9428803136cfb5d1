package caps

import "testing"

// collect starts from the channel ends and the capabilities without a
// holder, which the kernel indexes as they come and go: the index holds
// nothing else, and nothing once they are gone.
func TestCollectsIndexHoldsOnlyLiveEndsAndUnheldCapabilities(t *testing.T) {
	k := NewKernel(nil)
	for range 100 {
		k.Close(k.Mint(alice, NewByteObject(), RightsByteObjectBase, 0, "", "test"))
	}
	dir, _ := mintDir(t, k)
	index := func() (int, int) {
		k.mu.Lock()
		defer k.mu.Unlock()
		return len(k.ends), len(k.unheld)
	}
	if e, u := index(); e != 0 || u != 0 {
		t.Fatalf("index of %d ends and %d unheld with no channel and nothing in flight", e, u)
	}
	a, b, ca, cb := newEnds(k, false)
	x := inflight(t, k, cb)
	if _, err := a.Send(iov("b"), []*Cap{x}); err != nil {
		t.Fatal(err)
	}
	if e, u := index(); e != 2 || u != 1 {
		t.Fatalf("index of %d ends and %d unheld, want the pair's 2 and the end in flight", e, u)
	}
	if _, cs, _ := recvString(t, b, 8, 4, false); len(cs) != 1 {
		t.Fatal("no capability received")
	}
	k.Adopt(x, bob)
	if _, u := index(); u != 0 {
		t.Fatalf("%d unheld after the end was adopted", u)
	}
	for _, c := range []*Cap{x, ca, cb, dir} {
		k.Close(c)
	}
	if e, u := index(); e != 0 || u != 0 {
		t.Fatalf("index of %d ends and %d unheld after every capability closed", e, u)
	}
}

// BenchmarkCollectAmongOtherCapabilities is one collection, triggered as
// a guest can trigger it at will (an end sent over itself, then both ends
// closed), in a kernel that also tracks 100,000 other capabilities: its
// cost should not be theirs.
func BenchmarkCollectAmongOtherCapabilities(b *testing.B) {
	k := NewKernel(nil)
	for range 100_000 {
		k.Mint(bob, NewByteObject(), RightsByteObjectBase, 0, "", "test")
	}
	for b.Loop() {
		a, _, ca, cb := newEnds(k, false)
		x := inflight(b, k, cb)
		if _, err := a.Send(iov("self"), []*Cap{x}); err != nil {
			b.Fatal(err)
		}
		k.Close(ca)
		k.Close(cb)
	}
}
