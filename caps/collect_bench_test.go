package caps

import "testing"

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

// chainLength is DefaultMaxInFlight, written out so that this file also
// builds on the kernel before it (docs/BENCHMARKS.md, "Collecting channel
// cycles", measures both).
const chainLength = 1024

// BenchmarkCollectAmongOrphans is one collection in a kernel that keeps a
// chain of chainLength channel ends, each queued in the next: as many as a
// user's guests may have in flight (InFlightLimit). Every collection looks
// at all of them.
func BenchmarkCollectAmongOrphans(b *testing.B) {
	k := NewKernel(nil)
	_, _, _, last := newEnds(k, false)
	for range chainLength {
		x, _, cx, cy := newEnds(k, false)
		if _, err := x.Send(iov("link"), []*Cap{inflight(b, k, last)}); err != nil {
			b.Fatal(err)
		}
		k.Close(last)
		k.Close(cx)
		last = cy
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
