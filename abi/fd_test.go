package abi_test

import (
	"os"
	"sync"
	"testing"

	"github.com/sandboxd/sandboxd/caps"
)

// The fd family on byte objects and channel pairs the guest creates, and on
// a file handle over a host pipe (a file capability with no positions).
// Objects a guest creates are root capabilities recorded with the create
// edge and the call that made them; dup and replace derive children.
func TestFdFamilyOnCreatedObjectsAndAHostPipe(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	creates := map[string]int{}
	dups := 0
	h.k = caps.NewKernel(func(e caps.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case e.Type == caps.EventMint && e.Cap.Edge == caps.EdgeCreate:
			if e.Cap.Parent != "" || e.Cap.Holder != "g-fd" {
				t.Errorf("created capability %+v", e.Cap)
			}
			creates[e.Cap.Origin]++
		case e.Type == caps.EventDerive && e.Cap.Edge == caps.EdgeDup:
			dups++
		}
	})
	tbl := h.table("g-fd")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString("pipe data"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	pipe := h.k.Mint(tbl.Holder(), caps.NewFile(r, "pipe"), caps.RightsRegularFileBase, 0, "pipe", "test")
	if fd, err := tbl.Insert(pipe); err != nil || fd != 3 {
		t.Fatalf("pipe at fd %d, %v", fd, err)
	}
	h.runFS(t, "fdops", tbl)
	mu.Lock()
	defer mu.Unlock()
	if creates["fd_create1"] != 1 || creates["fd_create2"] != 4 || len(creates) != 2 {
		t.Errorf("created capabilities by origin: %v, want 1 byte object and 2 channel pairs", creates)
	}
	if dups != 3 {
		t.Errorf("%d dup derivations, want 3 (two fd_dup, one fd_replace)", dups)
	}
}
