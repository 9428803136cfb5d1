package daemon

import (
	"fmt"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
)

func receipt(root string, n int) caps.Receipt {
	rc := caps.Receipt{Root: caps.ID(root), Reason: "test " + root, At: time.Unix(1, 0)}
	for i := range n {
		id := root
		if i > 0 {
			id = fmt.Sprintf("%s-%d", root, i)
		}
		rc.Revoked = append(rc.Revoked, caps.ID(id))
	}
	return rc
}

func TestARevokedSubtreeLargerThanTheMemoryKeepsItsRoot(t *testing.T) {
	var r revokedIDs
	r.add(receipt("big", 10_000))
	if n, ok := r.find("big"); !ok || n.Root != "big" || n.Reason != "test big" {
		t.Fatalf("the root of a 10,000-id revocation: %+v, %v", n, ok)
	}
	if _, ok := r.find(caps.ID(fmt.Sprintf("big-%d", maxRevokedIDs-1))); !ok {
		t.Fatal("the last id that fits is forgotten")
	}
	if _, ok := r.find(caps.ID(fmt.Sprintf("big-%d", maxRevokedIDs))); ok {
		t.Fatal("an id past maxRevokedIDs is remembered")
	}
	if r.n != maxRevokedIDs {
		t.Fatalf("remembers %d ids, want %d", r.n, maxRevokedIDs)
	}
}

func TestRevokedIDsForgetTheOldestFirst(t *testing.T) {
	var r revokedIDs
	r.add(receipt("a", 3000))
	r.add(receipt("b", 1000))
	r.add(receipt("c", 1000)) // 5,000 in all: 904 of a's last ids go
	if r.n != maxRevokedIDs {
		t.Fatalf("remembers %d ids, want %d", r.n, maxRevokedIDs)
	}
	if n, ok := r.find("a"); !ok || n.Root != "a" {
		t.Fatalf("a's root went before its last ids: %+v, %v", n, ok)
	}
	if _, ok := r.find("a-2999"); ok {
		t.Fatal("a's last id is still remembered")
	}
	r.add(receipt("d", 3000)) // a, then part of b, go
	if _, ok := r.find("a"); ok {
		t.Fatal("the oldest revocation is still remembered")
	}
	for _, id := range []caps.ID{"b", "c", "c-999", "d", "d-2999"} {
		if _, ok := r.find(id); !ok {
			t.Errorf("%s is forgotten", id)
		}
	}
	if r.n != maxRevokedIDs {
		t.Fatalf("remembers %d ids, want %d", r.n, maxRevokedIDs)
	}
}

func TestTheNewestRevocationOfAnIDIsReported(t *testing.T) {
	var r revokedIDs
	first := receipt("x", 2)
	r.add(first)
	again := caps.Receipt{Root: "y", Reason: "later", Revoked: []caps.ID{"y", "x-1"}}
	r.add(again)
	if n, _ := r.find("x-1"); n.Root != "y" || n.Reason != "later" {
		t.Fatalf("x-1: %+v, want the later revocation", n)
	}
}

func TestARevocationOfNothingIsNotKept(t *testing.T) {
	var r revokedIDs
	for range 10 {
		r.add(caps.Receipt{Root: "gone", Reason: "lost a race"})
	}
	if len(r.notes) != 0 || r.n != 0 {
		t.Fatalf("kept %d notes of %d ids for empty receipts", len(r.notes), r.n)
	}
}

func BenchmarkRememberARevocationOf10000(b *testing.B) {
	rc := receipt("big", 10_000)
	var r revokedIDs
	for b.Loop() {
		r.add(rc)
	}
}
