package caps

import (
	"runtime/debug"
	"testing"
)

// A derivation chain is as long as its holders make it. Snapshot and
// Subtree keep their own stack: with the goroutine stack held to 4 MiB,
// a walk that recursed down this chain would end the process.
func TestWalksDoNotRecurseDownAChain(t *testing.T) {
	const depth = 100_000
	k := NewKernel(nil)
	root, _ := mintDir(t, k)
	c := root
	for range depth - 1 {
		c = mustDerive(t, k, c, Derivation{Holder: alice, Edge: EdgeDup, Base: RightFileOpen})
	}
	defer debug.SetMaxStack(debug.SetMaxStack(4 << 20))
	if n := len(k.Snapshot()); n != depth {
		t.Fatalf("Snapshot: %d capabilities, want %d", n, depth)
	}
	ids := k.Subtree(root)
	if len(ids) != depth || ids[0] != root.ID() || ids[depth-1] != c.ID() {
		t.Fatalf("Subtree: %d ids, want %d from the root down to the last", len(ids), depth)
	}
}
