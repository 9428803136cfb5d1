package caps

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A revocation that reaches capabilities another revocation is still
// revoking must not return before the operations the other waits for have
// ended: whichever call revoked them, its caller is told that nothing on
// the subtree still runs. Here the first revocation waits for an operation
// on child while a second (through the revoker), a third (of child itself)
// and a fourth (of the original, an ancestor) start; each must still be
// waiting when the operation ends.
func TestConcurrentRevokeWaitsForOperationsOnTheSubtree(t *testing.T) {
	k := NewKernel(nil)
	orig, _ := mintDir(t, k)
	fwd, rev, err := k.NewRevoker(orig, bob, alice)
	if err != nil {
		t.Fatal(err)
	}
	child := mustDerive(t, k, fwd, Derivation{Holder: bob, Edge: EdgeDup, Base: RightFileOpen})
	if err := child.Acquire(RightFileOpen, 0); err != nil {
		t.Fatal(err)
	}
	var ended atomic.Bool // the operation on child has ended
	var release sync.Once
	end := func() { release.Do(func() { ended.Store(true); child.Release() }) }
	defer end() // a failing test lets every revocation return
	var receipts [4]Receipt
	revokes := []func(){
		func() { receipts[0] = k.Revoke(fwd, "first") },
		func() {
			r, err := k.RevokeVia(rev, "second")
			if err != nil {
				t.Errorf("RevokeVia: %v", err)
			}
			receipts[1] = r
		},
		func() { receipts[2] = k.Revoke(child, "third") },
		func() { receipts[3] = k.Revoke(orig, "fourth") },
	}
	var returned []<-chan bool
	for n, revoke := range revokes {
		returned = append(returned, endedWhenDone(revoke, &ended))
		if n == 0 {
			<-child.Done() // the first has revoked child and waits for it
		}
		awaitIdleWaiters(t, n+1, returned)
	}
	end()
	for n, r := range returned {
		if !<-r {
			t.Errorf("revocation %d returned while an operation on its subtree was still running", n+1)
		}
	}
	if len(receipts[0].Revoked) != 2 || len(receipts[1].Revoked) != 0 || len(receipts[2].Revoked) != 0 {
		t.Errorf("receipts list %d, %d and %d capabilities; want the forwarder and child in the first only",
			len(receipts[0].Revoked), len(receipts[1].Revoked), len(receipts[2].Revoked))
	}
	if len(receipts[3].Revoked) != 2 {
		t.Errorf("the original's receipt lists %v; want the original and the revoker, which it revoked itself", receipts[3].Revoked)
	}
}

// endedWhenDone runs revoke in a goroutine and reports, when it returns,
// whether ended was set by then.
func endedWhenDone(revoke func(), ended *atomic.Bool) <-chan bool {
	r := make(chan bool, 1)
	go func() {
		revoke()
		r <- ended.Load()
	}()
	return r
}

// awaitIdleWaiters returns once n goroutines wait in waitIdle. It fails the
// test if one of the revocations reports that it returned first: none may
// while the operation it waits for runs.
func awaitIdleWaiters(t *testing.T, n int, returned []<-chan bool) {
	t.Helper()
	for deadline := time.Now().Add(hangGuard); idleWaiters() < n; time.Sleep(time.Millisecond) {
		for i, r := range returned {
			select {
			case <-r:
				t.Fatalf("revocation %d returned while an operation on its subtree was still running", i+1)
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines wait in waitIdle after %v, want %d", idleWaiters(), hangGuard, n)
		}
	}
}

// idleWaiters counts goroutines waiting for a capability's operations to
// end (waitIdle).
func idleWaiters() int { return goroutinesIn("caps.(*Cap).waitIdle") }

// A second revocation that returns once the operations on its subtree
// have ended has also let go of what it took: the file it reaches is
// closed, though the first revocation still waits on another capability.
func TestASecondRevokeClosesWhatItReaches(t *testing.T) {
	k := NewKernel(nil)
	root, _ := mintDir(t, k)
	fileRes := newTestRes(KindFile)
	file := mustDerive(t, k, root, Derivation{Holder: bob, Edge: EdgeOpen, Base: RightFDRead, Resource: fileRes})
	busy := mustDerive(t, k, root, Derivation{Holder: bob, Edge: EdgeDup, Base: RightFileOpen})
	if err := busy.Acquire(RightFileOpen, 0); err != nil {
		t.Fatal(err)
	}
	first := make(chan struct{})
	go func() { k.Revoke(root, "first"); close(first) }()
	<-busy.Done() // the first has revoked everything and waits for busy
	awaitIdleWaiters(t, 1, nil)
	k.Revoke(file, "second")
	if fileRes.closes.Load() != 1 {
		t.Errorf("the file is still open after the second revocation returned")
	}
	busy.Release()
	<-first
}
