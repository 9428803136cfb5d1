package caps

import (
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testRes is a resource that counts how often it is closed.
type testRes struct {
	kind   Kind
	closes atomic.Int32
}

func (r *testRes) Kind() Kind   { return r.kind }
func (r *testRes) Close() error { r.closes.Add(1); return nil }

func newTestRes(k Kind) *testRes { return &testRes{kind: k} }

var (
	alice = &Holder{ID: "alice"}
	bob   = &Holder{ID: "bob"}
)

func mintDir(t testing.TB, k *Kernel) (*Cap, *testRes) {
	t.Helper()
	r := newTestRes(KindDirectory)
	return k.Mint(alice, r, RightsDirectoryBase, RightsDirectoryInheriting, "data", "test"), r
}

func mustDerive(t testing.TB, k *Kernel, p *Cap, d Derivation) *Cap {
	t.Helper()
	c, err := k.Derive(p, d)
	if err != nil {
		t.Fatalf("derive: %v", err)
	}
	return c
}

func TestMintClipsRightsToKindMaximum(t *testing.T) {
	k := NewKernel(nil)
	c := k.Mint(alice, newTestRes(KindProcess), RightsAll, RightsAll, "p", "test")
	b, i := c.Rights()
	if b != RightsProcessBase || i != 0 {
		t.Fatalf("rights = %v / %v, want %v / none", b, i, RightsProcessBase)
	}
}

// MintBy's text is on the capability and its mint event, as given, and
// on nothing derived from it: a copy is its holder's, not a grant.
func TestMintByNamesWhoMadeTheGrantOnItsRootOnly(t *testing.T) {
	var minted []Info
	k := NewKernel(func(e Event) {
		if e.Type == EventMint {
			minted = append(minted, e.Cap)
		}
	})
	c := k.MintBy("0:root", alice, newTestRes(KindDirectory), RightsDirectoryBase, RightsDirectoryInheriting, "data", "dir:/srv")
	if c.By() != "0:root" || c.Info().By != "0:root" {
		t.Fatalf("By %q, Info().By %q; want %q", c.By(), c.Info().By, "0:root")
	}
	if len(minted) != 1 || minted[0].By != "0:root" || minted[0].ID != c.ID() {
		t.Fatalf("mint events %+v; want one of %s by %q", minted, c.ID(), "0:root")
	}
	copied := mustDerive(t, k, c, Derivation{Holder: bob, Edge: EdgeDelegate, Base: RightFileOpen})
	if copied.By() != "" || copied.Info().By != "" {
		t.Fatalf("a copy carries %q / %q; want nothing", copied.By(), copied.Info().By)
	}
	if plain, _ := mintDir(t, k); plain.By() != "" {
		t.Fatalf("Mint without MintBy carries %q", plain.By())
	}
}

func TestDeriveNeverWidensRights(t *testing.T) {
	k := NewKernel(nil)
	parent, _ := mintDir(t, k)
	if err := parent.Narrow(RightFileOpen|RightFileReaddir, RightFDRead|RightFileStatFGet); err != nil {
		t.Fatal(err)
	}

	// A copy may keep or drop base rights, never add one.
	if _, err := k.Derive(parent, Derivation{Holder: bob, Edge: EdgeDelegate, Base: RightFileOpen | RightFileUnlink}); !errors.Is(err, ENOTCAPABLE) {
		t.Fatalf("copy with an extra base right: err = %v, want ENOTCAPABLE", err)
	}
	if _, err := k.Derive(parent, Derivation{Holder: bob, Edge: EdgeDelegate, Base: RightFileOpen, Inheriting: RightFDWrite}); !errors.Is(err, ENOTCAPABLE) {
		t.Fatalf("copy with an extra inheriting right: err = %v, want ENOTCAPABLE", err)
	}
	cp := mustDerive(t, k, parent, Derivation{Holder: bob, Edge: EdgeDelegate, Base: RightFileOpen, Inheriting: RightFDRead})
	if b, i := cp.Rights(); b != RightFileOpen || i != RightFDRead {
		t.Fatalf("copy rights = %v / %v", b, i)
	}
	if cp.Removed() != RightFileReaddir {
		t.Fatalf("removed on the edge = %v, want file_readdir", cp.Removed())
	}

	// An object reached through the parent is bounded by its inheriting
	// rights; a refused resource is closed, since Derive owns it.
	file := newTestRes(KindFile)
	if _, err := k.Derive(parent, Derivation{Holder: alice, Edge: EdgeOpen, Base: RightFDRead | RightFDWrite, Resource: file}); !errors.Is(err, ENOTCAPABLE) {
		t.Fatalf("open with fd_write outside inheriting: err = %v", err)
	}
	if file.closes.Load() != 1 {
		t.Fatalf("refused resource closed %d times, want 1", file.closes.Load())
	}
	f := mustDerive(t, k, parent, Derivation{Holder: alice, Edge: EdgeOpen, Base: RightFDRead | RightFileStatFGet, Resource: newTestRes(KindFile)})
	if b, _ := f.Rights(); b != RightFDRead|RightFileStatFGet {
		t.Fatalf("opened file rights = %v", b)
	}

	// Narrowing is one way too.
	if err := cp.Narrow(RightFileOpen|RightFileReaddir, 0); !errors.Is(err, ENOTCAPABLE) {
		t.Fatalf("Narrow widening: err = %v", err)
	}
}

func TestRevokeCutsOffSubtreeOnly(t *testing.T) {
	k := NewKernel(nil)
	root, res := mintDir(t, k)
	b, i := root.Rights()
	a := mustDerive(t, k, root, Derivation{Holder: bob, Edge: EdgeDelegate, Base: b, Inheriting: i})
	a1 := mustDerive(t, k, a, Derivation{Holder: bob, Edge: EdgeOpen, Base: RightFDRead, Resource: newTestRes(KindFile)})
	a2 := mustDerive(t, k, a, Derivation{Holder: &Holder{ID: "carol"}, Edge: EdgeDelegate, Base: RightFileOpen})
	sib := mustDerive(t, k, root, Derivation{Holder: bob, Edge: EdgeDup, Base: b})

	r := k.Revoke(a, "test")
	want := []ID{a.ID(), a1.ID(), a2.ID()}
	slices.Sort(want)
	got := slices.Clone(r.Revoked)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("receipt revoked %v, want %v", got, want)
	}
	slices.Sort(r.Holders)
	if !slices.Equal(r.Holders, []string{"bob", "carol"}) {
		t.Fatalf("receipt holders %v", r.Holders)
	}
	for _, c := range []*Cap{a, a1, a2} {
		if err := c.Acquire(0, 0); !errors.Is(err, ENOTCAPABLE) {
			t.Errorf("%s after revoke: Acquire err = %v", c.Name(), err)
		}
		select {
		case <-c.Done():
		default:
			t.Errorf("Done not closed on a revoked capability")
		}
	}
	for _, c := range []*Cap{root, sib} {
		if err := c.Acquire(0, 0); err != nil {
			t.Errorf("capability outside the subtree: Acquire err = %v", err)
		} else {
			c.Release()
		}
	}
	if res.closes.Load() != 0 {
		t.Fatal("the directory was closed although root and sib still hold it")
	}
	if again := k.Revoke(a, "again"); len(again.Revoked) != 0 {
		t.Fatalf("revoking twice revoked %v", again.Revoked)
	}
	if _, err := k.Derive(a, Derivation{Holder: bob, Base: RightFileOpen}); !errors.Is(err, ENOTCAPABLE) {
		t.Fatalf("derive from a revoked capability: err = %v", err)
	}
}

func TestRevokeClosesResourceWhenLastHolderGoes(t *testing.T) {
	k := NewKernel(nil)
	root, res := mintDir(t, k)
	b, _ := root.Rights()
	child := mustDerive(t, k, root, Derivation{Holder: bob, Edge: EdgeDelegate, Base: b})
	k.Revoke(root, "test")
	if n := res.closes.Load(); n != 1 {
		t.Fatalf("resource closed %d times after revoking every capability on it, want 1", n)
	}
	// Closing the dead handles afterwards must not close it again.
	k.Close(child)
	k.Close(root)
	if n := res.closes.Load(); n != 1 {
		t.Fatalf("resource closed %d times, want 1", n)
	}
}

func TestCloseDoesNotRevokeChildren(t *testing.T) {
	k := NewKernel(nil)
	dir, dirRes := mintDir(t, k)
	fileRes := newTestRes(KindFile)
	file := mustDerive(t, k, dir, Derivation{Holder: alice, Edge: EdgeOpen, Base: RightFDRead, Resource: fileRes})
	k.Close(dir)
	k.Close(dir) // twice is a no-op
	if dirRes.closes.Load() != 1 {
		t.Fatalf("directory closed %d times, want 1", dirRes.closes.Load())
	}
	if err := file.Acquire(RightFDRead, 0); err != nil {
		t.Fatalf("file beneath a closed directory: %v", err)
	}
	file.Release()
	if _, ok := k.Lookup(dir.ID()); !ok {
		t.Fatal("a closed capability with a live child must stay in the graph")
	}
	// Revoking the closed directory still reaches the file.
	k.Revoke(dir, "test")
	if err := file.Acquire(RightFDRead, 0); !errors.Is(err, ENOTCAPABLE) {
		t.Fatalf("file after revoking its closed directory: err = %v", err)
	}
	if fileRes.closes.Load() != 1 {
		t.Fatal("revocation did not close the file")
	}
}

func TestClosePrunesClosedCapabilitiesWithoutLiveDescendants(t *testing.T) {
	k := NewKernel(nil)
	root, _ := mintDir(t, k)
	b, _ := root.Rights()
	var kids []*Cap
	for range 5 {
		kids = append(kids, mustDerive(t, k, root, Derivation{Holder: bob, Edge: EdgeDup, Base: b}))
	}
	grand := mustDerive(t, k, kids[2], Derivation{Holder: bob, Edge: EdgeDup, Base: b})

	k.Close(kids[0])
	k.Close(kids[2]) // a dup with a live child: spliced out, the child is root's
	k.Close(kids[4])
	k.Close(root) // a grant with live children: stays
	ids := map[ID]bool{}
	for _, in := range k.Snapshot() {
		ids[in.ID] = true
	}
	for c, want := range map[*Cap]bool{root: true, kids[0]: false, kids[1]: true, kids[2]: false, kids[3]: true, kids[4]: false, grand: true} {
		if ids[c.ID()] != want {
			t.Errorf("%s tracked = %v, want %v", c.ID(), ids[c.ID()], want)
		}
	}
	if grand.Parent() != root {
		t.Errorf("the closed dup's child has parent %v, want the root", grand.Parent())
	}
	// Closing the last descendants forgets the whole chain.
	k.Close(grand)
	k.Close(kids[1])
	k.Close(kids[3])
	if s := k.Snapshot(); len(s) != 0 {
		t.Fatalf("graph after closing everything: %d capabilities left", len(s))
	}
}

func TestSnapshotListsParentsBeforeChildren(t *testing.T) {
	k := NewKernel(nil)
	root, _ := mintDir(t, k)
	b, _ := root.Rights()
	c1 := mustDerive(t, k, root, Derivation{Holder: bob, Base: b})
	c2 := mustDerive(t, k, c1, Derivation{Holder: bob, Base: b})
	pos := map[ID]int{}
	for i, in := range k.Snapshot() {
		pos[in.ID] = i
	}
	if !(pos[root.ID()] < pos[c1.ID()] && pos[c1.ID()] < pos[c2.ID()]) {
		t.Fatalf("order %v", pos)
	}
	if sub := k.Subtree(c1); len(sub) != 2 {
		t.Fatalf("subtree of c1 = %v", sub)
	}
}

func TestRevokerRevokesForwarderAndDescendantsOnly(t *testing.T) {
	k := NewKernel(nil)
	orig, _ := mintDir(t, k)
	fwd, rev, err := k.NewRevoker(orig, bob, alice)
	if err != nil {
		t.Fatal(err)
	}
	if fb, fi := fwd.Rights(); fb != RightsDirectoryBase || fi != RightsDirectoryInheriting {
		t.Fatalf("forwarder rights %v / %v", fb, fi)
	}
	below := mustDerive(t, k, fwd, Derivation{Holder: bob, Edge: EdgeOpen, Base: RightFDRead, Resource: newTestRes(KindFile)})
	// A copy of the revoker (fd_dup, or sent away) revokes the same thing.
	revCopy := mustDerive(t, k, rev, Derivation{Holder: &Holder{ID: "carol"}, Edge: EdgeDelegate})

	if _, err := k.RevokeVia(orig, "not a revoker"); !errors.Is(err, EINVAL) {
		t.Fatalf("RevokeVia on a directory: err = %v", err)
	}
	r, err := k.RevokeVia(revCopy, "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Revoked) != 2 {
		t.Fatalf("revoked %v, want the forwarder and the file beneath it", r.Revoked)
	}
	if !fwd.Revoked() || !below.Revoked() {
		t.Fatal("forwarder or its descendant survived")
	}
	if orig.Revoked() || rev.Revoked() || revCopy.Revoked() {
		t.Fatal("revoking through the revoker hit the original or the revoker")
	}
	if _, err := k.RevokeVia(rev, "again"); err != nil {
		t.Fatalf("revoking a revoked forwarder again: %v", err)
	}
	// Revoking the original takes the revoker with it.
	k.Revoke(orig, "test")
	if _, err := k.RevokeVia(rev, "dead"); !errors.Is(err, ENOTCAPABLE) {
		t.Fatalf("RevokeVia through a revoked revoker: err = %v", err)
	}
}

func TestAdoptGivesInFlightCapabilityToReceiverOnce(t *testing.T) {
	var adopts atomic.Int32
	k := NewKernel(func(e Event) {
		if e.Type == EventAdopt {
			adopts.Add(1)
		}
	})
	root, _ := mintDir(t, k)
	inflight := mustDerive(t, k, root, Derivation{Edge: EdgeDelegate, Base: RightFileOpen})
	if inflight.Holder() != nil {
		t.Fatal("in-flight capability has a holder")
	}
	k.Adopt(inflight, bob)
	k.Adopt(inflight, alice)
	if inflight.Holder() != bob || adopts.Load() != 1 {
		t.Fatalf("holder %v after adopts (%d events)", inflight.Holder(), adopts.Load())
	}
}

func TestWatchRevokeWakesWaiter(t *testing.T) {
	k := NewKernel(nil)
	c, _ := mintDir(t, k)
	w := NewWaiter()
	cancel := c.WatchRevoke(w)
	defer cancel()
	go k.Revoke(c, "test")
	select {
	case <-w.C():
	case <-time.After(hangGuard):
		t.Fatal("waiter not woken by revocation")
	}
	// Watching an already revoked capability wakes at once.
	w2 := NewWaiter()
	c.WatchRevoke(w2)()
	select {
	case <-w2.C():
	default:
		t.Fatal("watching a revoked capability did not wake")
	}
}

// Revocation must be a barrier: once Revoke returns, no operation on any
// revoked capability is running or can start, whoever holds it.
func TestNoOperationSucceedsAfterRevokeReturns(t *testing.T) {
	k := NewKernel(nil)
	root, _ := mintDir(t, k)
	b, i := root.Rights()
	fwd, rev, err := k.NewRevoker(root, bob, alice)
	if err != nil {
		t.Fatal(err)
	}
	var subtree []*Cap
	for range 50 {
		c := mustDerive(t, k, fwd, Derivation{Holder: bob, Edge: EdgeDelegate, Base: b, Inheriting: i})
		subtree = append(subtree, c, mustDerive(t, k, c, Derivation{Holder: bob, Edge: EdgeDup, Base: b}))
	}
	var revoked atomic.Bool
	var lateOps atomic.Int32
	var attempts atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				attempts.Add(1)
				c := subtree[(w*7+n)%len(subtree)]
				if c.Acquire(RightFileOpen, 0) != nil {
					continue
				}
				// The operation runs here; Revoke must not have returned
				// at any point while it did.
				if revoked.Load() {
					lateOps.Add(1)
				}
				if n%16 == 0 {
					time.Sleep(10 * time.Microsecond)
				}
				if revoked.Load() {
					lateOps.Add(1)
				}
				c.Release()
			}
		}()
	}
	awaitAttempts := func(n int64) {
		for deadline := time.Now().Add(hangGuard); attempts.Load() < n; runtime.Gosched() {
			if time.Now().After(deadline) {
				t.Fatalf("workers made %d attempts in %v, waiting for %d", attempts.Load(), hangGuard, n)
			}
		}
	}
	awaitAttempts(1000) // operations run while Revoke starts
	if _, err := k.RevokeVia(rev, "test"); err != nil {
		t.Fatal(err)
	}
	revoked.Store(true)
	awaitAttempts(attempts.Load() + 1000) // and keep trying after it returned
	close(stop)
	wg.Wait()
	if n := lateOps.Load(); n != 0 {
		t.Fatalf("%d operations ran on revoked capabilities after Revoke returned", n)
	}
	for _, c := range subtree {
		if err := c.Acquire(0, 0); !errors.Is(err, ENOTCAPABLE) {
			t.Fatalf("Acquire after revoke: %v", err)
		}
	}
	if root.Revoked() {
		t.Fatal("the original was revoked")
	}
}

// Derive and Close racing with Revoke must leave every capability derived
// from a revoked one revoked, and close each resource exactly once.
func TestConcurrentDeriveCloseAndRevoke(t *testing.T) {
	k := NewKernel(nil)
	root, res := mintDir(t, k)
	b, _ := root.Rights()
	mid := mustDerive(t, k, root, Derivation{Holder: bob, Base: b})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var made []*Cap
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				c, err := k.Derive(mid, Derivation{Holder: bob, Base: b})
				if err != nil {
					continue
				}
				mu.Lock()
				made = append(made, c)
				closeIt := len(made)%3 == 0
				mu.Unlock()
				if closeIt {
					k.Close(c)
				}
			}
		}()
	}
	k.Revoke(mid, "race")
	wg.Wait()
	for _, c := range made {
		// A capability its holder closed first is gone from the tree;
		// every other one must have been revoked, and none may be used.
		if !c.Revoked() && !c.Info().Closed {
			t.Fatal("a capability derived from a revoked one escaped revocation")
		}
		if err := c.Acquire(0, 0); err == nil {
			t.Fatal("a closed or revoked capability allowed an operation")
		}
	}
	k.Close(root)
	if n := res.closes.Load(); n != 1 {
		t.Fatalf("resource closed %d times, want 1", n)
	}
}

// buildTree makes a subtree of n capabilities below root, 100 wide per
// level, all sharing root's resource, as delegation and dup produce.
func buildTree(tb testing.TB, k *Kernel, root *Cap, n int) *Cap {
	b, i := root.Rights()
	top, err := k.Derive(root, Derivation{Holder: bob, Edge: EdgeRevocable, Base: b, Inheriting: i})
	if err != nil {
		tb.Fatal(err)
	}
	level := []*Cap{top}
	made := 1
	for made < n {
		var next []*Cap
		for _, p := range level {
			for j := 0; j < 100 && made < n; j++ {
				c, err := k.Derive(p, Derivation{Holder: bob, Edge: EdgeDelegate, Base: b, Inheriting: i})
				if err != nil {
					tb.Fatal(err)
				}
				next = append(next, c)
				made++
			}
		}
		level = next
	}
	return top
}

func TestRevokeOf10000CapabilitiesRevokesAll(t *testing.T) {
	k := NewKernel(nil)
	root, _ := mintDir(t, k)
	top := buildTree(t, k, root, 10000)
	r := k.Revoke(top, "bulk")
	if len(r.Revoked) != 10000 {
		t.Fatalf("revoked %d, want 10000", len(r.Revoked))
	}
	t.Logf("revoking 10000 capabilities took %v", r.Took)
}

// BenchmarkRevokeSubtree10000 measures revoking a subtree of 10,000
// capabilities; the target is under 10 ms per revocation.
func BenchmarkRevokeSubtree10000(b *testing.B) {
	k := NewKernel(nil)
	root, _ := mintDir(b, k)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		top := buildTree(b, k, root, 10000)
		runtime.GC() // charge the setup's garbage to the setup
		b.StartTimer()
		r := k.Revoke(top, "bench")
		b.StopTimer()
		if len(r.Revoked) != 10000 {
			b.Fatalf("revoked %d", len(r.Revoked))
		}
		// Holders close their dead handles, which empties the graph
		// again.
		for _, id := range r.Revoked {
			if c, ok := k.Lookup(id); ok {
				k.Close(c)
			}
		}
		b.StartTimer()
	}
}

// BenchmarkRevokeRevokedSubtree10000 measures revoking again a subtree of
// 10,000 capabilities whose revocation has ended, as a guest's repeated
// cap_revoke does: it must not cost a walk of the subtree under the
// kernel's lock each time.
func BenchmarkRevokeRevokedSubtree10000(b *testing.B) {
	k := NewKernel(nil)
	root, _ := mintDir(b, k)
	top := buildTree(b, k, root, 10000)
	k.Revoke(top, "first")
	b.ReportAllocs()
	for b.Loop() {
		if r := k.Revoke(top, "again"); len(r.Revoked) != 0 {
			b.Fatalf("revoked %d again", len(r.Revoked))
		}
	}
}

func TestCreatedObjectCanBeDelegatedAndClosesWithLastCapability(t *testing.T) {
	k := NewKernel(nil)
	res := newTestRes(KindChannel)
	c := k.Create(alice, res, RightsSocketBase, RightsSocketInheriting, "", "fd_create2")
	if c.Edge() != EdgeCreate {
		t.Fatalf("edge %v", c.Edge())
	}
	b, i := c.Rights()
	sent := mustDerive(t, k, c, Derivation{Edge: EdgeDelegate, Base: b, Inheriting: i})
	k.Close(c)
	if res.closes.Load() != 0 {
		t.Fatal("closed while a delegated copy still holds it")
	}
	k.Close(sent)
	if n := res.closes.Load(); n != 1 {
		t.Fatalf("created object closed %d times after its last capability went, want 1", n)
	}
}

// Done's channel is made by its first call; a revocation before, during or
// after that call closes it, once.
func TestDoneIsClosedByARevocationRacingItsFirstCall(t *testing.T) {
	k := NewKernel(nil)
	root, _ := mintDir(t, k)
	b, i := root.Rights()
	before := mustDerive(t, k, root, Derivation{Holder: bob, Edge: EdgeDup, Base: b, Inheriting: i})
	ch := before.Done()
	if before.Done() != ch {
		t.Fatal("a second Done made another channel")
	}
	for n := range 200 {
		c := mustDerive(t, k, root, Derivation{Holder: bob, Edge: EdgeDup, Base: b, Inheriting: i})
		seen := make(chan (<-chan struct{}), 2)
		var start sync.WaitGroup
		start.Add(1)
		for range 2 {
			go func() {
				start.Wait()
				d := c.Done()
				<-d // only a close ends this: a lost close hangs the test
				seen <- d
			}()
		}
		start.Done()
		if n%2 == 0 {
			runtime.Gosched()
		}
		k.Revoke(c, "race")
		if a, b := <-seen, <-seen; a != b {
			t.Fatal("two Done calls racing a revocation got different channels")
		}
	}
	k.Revoke(before, "done")
	select {
	case <-ch:
	default:
		t.Fatal("a channel made before the revocation is still open")
	}
}
