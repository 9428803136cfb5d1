package caps

import "testing"

// collect looks only at the channel ends that capabilities refer to but
// no holder holds, which the kernel indexes as they come and go: the index
// holds nothing else, and nothing once they are gone.
func TestCollectsIndexHoldsOnlyEndsWithoutAHolder(t *testing.T) {
	k := NewKernel(nil)
	for range 100 {
		k.Close(k.Mint(alice, NewByteObject(), RightsByteObjectBase, 0, "", "test"))
	}
	dir, _ := mintDir(t, k)
	orphans := func() int {
		k.mu.Lock()
		defer k.mu.Unlock()
		return len(k.orphans)
	}
	a, b, ca, cb := newEnds(k, false)
	if n := orphans(); n != 0 {
		t.Fatalf("%d orphans with every end held", n)
	}
	x := inflight(t, k, ca)
	if _, err := a.Send(iov("a"), []*Cap{x}); err != nil {
		t.Fatal(err)
	}
	if n := orphans(); n != 0 {
		t.Fatalf("%d orphans with a copy of a held end in flight", n)
	}
	k.Close(ca)
	if n := orphans(); n != 1 {
		t.Fatalf("%d orphans once end a is held only in b's queue, want 1", n)
	}
	if _, cs, _ := recvString(t, b, 8, 4, false); len(cs) != 1 {
		t.Fatal("the end in flight was collected while b's holder could still receive it")
	}
	k.Adopt(x, bob)
	if n := orphans(); n != 0 {
		t.Fatalf("%d orphans after the end was adopted", n)
	}
	for _, c := range []*Cap{x, cb, dir} {
		k.Close(c)
	}
	if n := orphans(); n != 0 {
		t.Fatalf("%d orphans after every capability closed", n)
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
		triggerCollect(b, k)
	}
}

// BenchmarkCollectAmongOtherChannelEnds is BenchmarkCollectAmongOther-
// Capabilities with 100,000 held channel ends besides: every guest of a
// daemon holds one (its supervisor channel), and a collection must not
// cost what they do either.
func BenchmarkCollectAmongOtherChannelEnds(b *testing.B) {
	k := NewKernel(nil)
	for range 100_000 {
		newEnds(k, true)
	}
	for b.Loop() {
		triggerCollect(b, k)
	}
}

// BenchmarkCollectAmongOrphans is one collection in a kernel that keeps a
// chain of DefaultMaxInFlight channel ends, each queued in the next: as
// many as a user's guests may have in flight (InFlightLimit). Every
// collection looks at all of them.
func BenchmarkCollectAmongOrphans(b *testing.B) {
	k := NewKernel(nil)
	_, _, _, last := newEnds(k, false)
	for range DefaultMaxInFlight {
		x, _, cx, cy := newEnds(k, false)
		if _, err := x.Send(iov("link"), []*Cap{inflight(b, k, last)}); err != nil {
			b.Fatal(err)
		}
		k.Close(last)
		k.Close(cx)
		last = cy
	}
	k.mu.Lock()
	n := len(k.orphans)
	k.mu.Unlock()
	if n != DefaultMaxInFlight {
		b.Fatalf("%d orphans, want %d", n, DefaultMaxInFlight)
	}
	for b.Loop() {
		triggerCollect(b, k)
	}
}

// triggerCollect makes k collect as a guest can at will: a channel end
// sent over itself, then both ends closed.
func triggerCollect(b *testing.B, k *Kernel) {
	a, _, ca, cb := newEnds(k, false)
	x := inflight(b, k, cb)
	if _, err := a.Send(iov("self"), []*Cap{x}); err != nil {
		b.Fatal(err)
	}
	k.Close(ca)
	k.Close(cb)
}
