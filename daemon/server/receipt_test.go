package server

import (
	"bytes"
	"slices"
	"testing"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
)

// TestARevokeReceiptListsTheCallersCapabilitiesItsHoldersClosedSince:
// a revocation wakes the holders it cut off, and a guest that wakes to
// ENOTCAPABLE closes its handle (or exits), which makes the kernel forget
// it before the daemon writes the receipt. The receipt a user is shown
// still lists its guest's capability, as it names the guest among the
// holders cut off, and hides the other user's.
func TestARevokeReceiptListsTheCallersCapabilitiesItsHoldersClosedSince(t *testing.T) {
	const daemonUID, alice, bob = 500, 1000, 1001
	conn := daemon.ClientHolder("conn-1", daemon.Principal{UID: bob})
	bobs := &caps.Holder{ID: "g-bob", Owner: daemon.Principal{UID: bob}}
	alices := &caps.Holder{ID: "g-alice", Owner: daemon.Principal{UID: alice}}
	k := caps.NewKernel(nil)
	root := k.Mint(conn, caps.NewStdin(bytes.NewReader(nil)), caps.RightFDRead, caps.RightFDRead, "in", "test")
	derive := func(h *caps.Holder) *caps.Cap {
		c, err := k.Derive(root, caps.Derivation{Holder: h, Edge: caps.EdgeDelegate, Name: "in", Base: caps.RightFDRead})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	mine, hers := derive(bobs), derive(alices)
	rc := k.Revoke(root, "test")
	k.Close(mine) // bob's guest, woken, closes it
	k.Close(hers) // and so does alice's

	shown := NewAuthority(daemon.Principal{UID: bob}, daemonUID).receiptFor(rc)
	want := []caps.ID{root.ID(), mine.ID()}
	if !slices.Equal(shown.Revoked, want) || !slices.Equal(shown.Holders, []string{"conn-1", "g-bob"}) || shown.others != 1 {
		t.Errorf("bob's receipt: revoked %q, holders %q, %d others; want revoked %q (not alice's %s), holders [conn-1 g-bob], 1 other",
			shown.Revoked, shown.Holders, shown.others, want, hers.ID())
	}
	all := NewAuthority(daemon.Principal{UID: 0}, daemonUID).receiptFor(rc)
	if len(all.Revoked) != 3 || len(all.Holders) != 3 || all.others != 0 {
		t.Errorf("root's receipt: revoked %q, holders %q, %d others; want all 3 of each", all.Revoked, all.Holders, all.others)
	}
}
