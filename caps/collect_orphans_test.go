package caps

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Q, a channel end, is held by two holders and waits in its own queue.
// One holder's copy q1 is revoked while an operation on it is under way
// (Revoke waits for it before it drops q1's reference); meanwhile the
// other holder closes q2, the last held capability on Q, and that close
// collects. The collection counts q1's reference, not yet dropped, as
// one from outside the queues, so Q is kept; the revocation then drops
// it: Q, a cycle no holder can reach, would be left with its
// queue, unless the revocation collects once it has let go of q1.
func TestARevocationInProgressDoesNotHideGarbage(t *testing.T) {
	k := NewKernel(nil)
	p, q := NewChannelPair(true, "pq")
	cp := k.Create(alice, p, RightsSocketBase, RightsSocketInheriting, "", "t")
	q1 := k.Create(alice, q, RightsSocketBase, RightsSocketInheriting, "", "t")
	q2 := mustDerive(t, k, q1, Derivation{Holder: bob, Edge: EdgeDelegate, Base: RightsSocketBase, Inheriting: RightsSocketInheriting})
	lim := NewInFlightLimit(8)
	self, err := sendCharged(t, k, lim, p, q2) // lands in q's own queue
	if err != nil {
		t.Fatal(err)
	}
	k.Close(cp)
	// q1 is revoked by its own revoker; q2 is a child, so revoke a
	// forwarder instead to leave q2 alone.
	fwd, rev, err := k.NewRevoker(q1, alice, alice)
	if err != nil {
		t.Fatal(err)
	}
	k.Close(q1)
	if err := fwd.Acquire(0, 0); err != nil { // an operation on fwd is under way
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { k.RevokeVia(rev, "test"); close(done) }()
	waitFor(t, fwd.Done(), "the revocation never began") // the revocation has begun
	k.Close(q2)                                          // the last held capability on Q: collects
	fwd.Release()
	waitFor(t, done, "the revocation never ended")
	k.Close(rev)
	if !self.Info().Closed {
		t.Fatalf("Q, reachable by no holder, still keeps its queue (and the handle in it) after every holder let go; %d handles charged as in flight", lim.InFlight())
	}
}

// A channel end Q kept only by a copy of itself in its own queue is
// garbage. Here the last other reference to it waits in the queue of its
// peer P; when the last holder of P lets go, P's queue is dropped with
// P (the resource closes), which must collect: otherwise Q, its queue
// and the charge of the handle in it would stay.
func TestACycleFreedByItsPeersCloseIsCollected(t *testing.T) {
	k := NewKernel(nil)
	lim := NewInFlightLimit(8)
	p, q, cp, cq := newEnds(k, true)
	send := func(on *Channel, c *Cap) {
		if _, err := sendCharged(t, k, lim, on, c); err != nil {
			t.Fatal(err)
		}
	}
	send(p, cq) // lands in q's own queue
	send(q, cq) // lands in p's queue
	k.Close(cq)
	k.Close(cp)
	if n, orphans := lim.InFlight(), k.orphanCount(); n != 0 || orphans != 0 {
		t.Fatalf("every holder has let go: %d handles still charged as in flight, %d channel ends without a holder kept", n, orphans)
	}
}

// Without that collection one user could pin another's handles in
// flight: V sends a handle to U's end E (as any peer would); U hides E in
// such a cycle and lets go of everything. V's charge must go, since
// nobody can ever receive the handle.
func TestOneUserCannotPinAnothersHandlesInFlight(t *testing.T) {
	k := NewKernel(nil)
	limU, limV := NewInFlightLimit(8), NewInFlightLimit(1)
	send := func(lim *InFlightLimit, on *Channel, c *Cap) error {
		_, err := sendCharged(t, k, lim, on, c)
		return err
	}
	u, v := &Holder{ID: "u"}, &Holder{ID: "v"}
	e1, e2 := NewChannelPair(true, "e")
	ce := k.Create(u, e1, RightsSocketBase, RightsSocketInheriting, "", "t")
	cv := k.Create(v, e2, RightsSocketBase, RightsSocketInheriting, "", "t")
	obj := k.Create(v, NewByteObject(), RightsByteObjectBase, 0, "", "t")
	if err := send(limV, e2, obj); err != nil { // V's handle waits at E
		t.Fatal(err)
	}
	p, q := NewChannelPair(true, "pq")
	cp := k.Create(u, p, RightsSocketBase, RightsSocketInheriting, "", "t")
	cq := k.Create(u, q, RightsSocketBase, RightsSocketInheriting, "", "t")
	for _, s := range []struct {
		on *Channel
		c  *Cap
	}{{p, ce}, {p, cq}, {q, cq}} {
		if err := send(limU, s.on, s.c); err != nil {
			t.Fatal(err)
		}
	}
	k.Close(ce)
	k.Close(cq)
	k.Close(cp)
	// V's handle could never be received: it was dropped with E's
	// queue, its charge with it, and E, which nobody holds any more, is
	// closed, so V's next send finds no reader.
	if n := limV.InFlight(); n != 0 {
		t.Fatalf("V has %d handles charged as in flight after U let go of everything (U %d)", n, limU.InFlight())
	}
	if err := send(limV, e2, obj); err != EPIPE {
		t.Fatalf("V's send after U let go of everything: %v, want EPIPE", err)
	}
	k.Close(cv)
}

// A receive on an orphan end (its only holder's capability is being
// revoked, and Revoke waits for the receive, which it must let finish)
// takes x, a capability to end Y, out of the queue while a collection
// (triggered by an unrelated Close) works out what is reachable: between
// its first pass, which counted x as a reference from an orphan's queue,
// and its second, which no longer finds x there to reach Y through. Had
// the collection not worked again, it would drop Y's queue, although x is
// in transit and is adopted afterwards.
func TestCollectDoesNotDropAnEndBeingReceived(t *testing.T) {
	k := NewKernel(nil)
	// Y: a message waits in its queue.
	_, yp, cy, cyp := newEnds(k, true)
	if _, err := yp.Send(iov("precious"), nil); err != nil {
		t.Fatal(err)
	}
	// A: x (a copy of cy) waits in its queue; then cy goes, so Y is an
	// orphan kept by x only.
	a, ap, ca, cap_ := newEnds(k, true)
	x := inflight(t, k, cy)
	if _, err := ap.Send(iov("carry"), []*Cap{x}); err != nil {
		t.Fatal(err)
	}
	k.Close(cy)
	// An operation (sock_recv) on ca is under way as ca is revoked: A is
	// an orphan, reachable through ca until the operation ends.
	if err := ca.Acquire(RightFDRead, 0); err != nil {
		t.Fatal(err)
	}
	revoked := make(chan struct{})
	go func() { k.Revoke(ca, "test"); close(revoked) }()
	waitFor(t, ca.Done(), "the revocation never began")
	received := false
	k.mu.Lock()
	k.gcBetweenPasses = func() {
		if received {
			return
		}
		received = true
		_, got, _, err := a.Recv([][]byte{make([]byte, 16)}, 4, false)
		if err != nil || len(got) != 1 || got[0] != x {
			t.Errorf("recv on A: %v, %d caps", err, len(got))
		}
	}
	k.mu.Unlock()
	// B, sent over itself: closing its holder collects, on this goroutine.
	_, bp, cb, cbp := newEnds(k, true)
	if _, err := bp.Send(iov("self"), []*Cap{inflight(t, k, cb)}); err != nil {
		t.Fatal(err)
	}
	k.Close(cb)
	k.mu.Lock()
	k.gcBetweenPasses = nil
	k.mu.Unlock()
	if !received {
		t.Fatal("the collection did not run")
	}
	ca.Release() // the receive ends; Revoke finishes
	waitFor(t, revoked, "the revocation never ended")
	k.Adopt(x, bob) // the receiver installs x
	buf := make([]byte, 16)
	n, _, _, err := x.Resource().(*Channel).Recv([][]byte{buf}, 0, false)
	if err != nil || string(buf[:n]) != "precious" {
		t.Fatalf("Y, which x was being received to, lost its queue: %q, %v", buf[:n], err)
	}
	for _, c := range []*Cap{x, cyp, cap_, cbp} {
		k.Close(c)
	}
}

// A stream message read in part keeps its whole buffer until it is read
// to the end. Were later bytes appended to it, a reader that always
// leaves one byte unread would make it grow for ever, while the unread
// bytes (what ChannelBuffer bounds) and the charge (what the memory budget
// counts) stayed under 256 KiB.
func TestAStreamReadInPartDoesNotGrowWithoutBound(t *testing.T) {
	ch := &testCharge{limit: ChannelBuffer}
	a, b := NewChargedChannelPair(false, "t", ch)
	chunk := make([]byte, 64<<10)
	buf := make([]byte, len(chunk))
	if _, err := a.Send([][]byte{{'x'}}, nil); err != nil { // the byte never read
		t.Fatal(err)
	}
	for range 1000 { // 64 MiB through a 256 KiB channel
		if n, err := a.Send([][]byte{chunk}, nil); err != nil || n != len(chunk) {
			t.Fatalf("send: %d, %v", n, err)
		}
		// Read all but the last byte waiting.
		got, _, _, err := b.Recv([][]byte{buf}, 0, false)
		if err != nil || got != len(chunk) {
			t.Fatalf("recv: %d, %v", got, err)
		}
	}
	b.p.mu.Lock()
	msgs, unread := len(b.p.q[1]), b.p.qbytes[1]
	b.p.mu.Unlock()
	held := heldBy(b)
	t.Logf("unread %d bytes, charged %d, %d message(s) holding %d bytes", unread, ch.inUse(), msgs, held)
	if held > 2*ChannelBuffer {
		t.Fatalf("a stream channel with %d unread bytes (%d charged) holds %d bytes of host memory: its head message was never compacted", unread, ch.inUse(), held)
	}
}

// A byte object grows into twice its old capacity, as append does, unless
// only the size asked fits its charge: a write that grows one to 2 MiB + 1
// byte under a 3 MiB budget succeeds.
func TestAByteObjectGrowsAsFarAsItsChargeAllows(t *testing.T) {
	ch := &testCharge{limit: 3 << 20}
	b := NewChargedByteObject(ch)
	if _, err := b.WriteAt([]byte{1}, 2<<20-1); err != nil { // 2 MiB
		t.Fatal(err)
	}
	if _, err := b.WriteAt([]byte{1}, 2<<20); err != nil { // 2 MiB + 1, under 3 MiB
		t.Fatalf("growing a byte object to 2 MiB + 1 byte under a 3 MiB budget (%d charged): %v", ch.inUse(), err)
	}
	b.Close()
}

// A receive that takes capabilities from the queue of a held end, even in
// the middle of a collection's work, does not make it work again: only
// receives from ends no holder holds can change what it finds. (Had any
// receive counted, a guest receiving on its own channels would have made
// collections give up.) Here one runs between the two passes of every
// computation; the garbage is collected by the first.
func TestReceivesFromHeldEndsDoNotHoldUpACollection(t *testing.T) {
	k := NewKernel(nil)
	r, rp, _, crp := newEnds(k, true)
	obj := k.Create(alice, NewByteObject(), RightsByteObjectBase, 0, "", "t")
	if _, err := rp.Send(iov("c"), []*Cap{inflight(t, k, obj)}); err != nil {
		t.Fatal(err)
	}
	computations := 0
	k.mu.Lock()
	k.gcBetweenPasses = func() {
		computations++
		_, got, _, err := r.Recv([][]byte{make([]byte, 4)}, 4, false)
		if err != nil || len(got) != 1 {
			t.Errorf("recv on a held end: %v, %d caps", err, len(got))
			return
		}
		if _, err := rp.Send(iov("c"), got); err != nil { // and back again
			t.Error(err)
		}
	}
	k.mu.Unlock()
	// The garbage: G sent over itself; its last holder lets go.
	_, gp, cg, cgp := newEnds(k, true)
	self := inflight(t, k, cg)
	if _, err := gp.Send(iov("self"), []*Cap{self}); err != nil {
		t.Fatal(err)
	}
	k.Close(cgp)
	k.Close(cg) // collects, on this goroutine
	k.mu.Lock()
	k.gcBetweenPasses = nil
	k.mu.Unlock()
	if computations != 1 || !self.Info().Closed {
		t.Fatalf("the collection worked %d times and collected the cycle: %v; want once, and collected", computations, self.Info().Closed)
	}
	k.Close(crp)
	k.Close(obj)
}

// A close runs at most two collections, its own and one asked for while it
// ran, however many others ask for meanwhile: the rest run on a goroutine
// of their own. Here, as each collection closes a cycle, another goroutine
// makes the next cycle and asks for its collection (the observer waits for
// it), ten times; the third collection waits until the first close has
// returned, so a close that ran it would never return.
func TestACloseRunsAtMostTwoCollections(t *testing.T) {
	var selves sync.Map // the capability each cycle holds of itself → its number
	collected := make(chan int)
	asked := make(chan struct{})
	release := make(chan struct{})
	k := NewKernel(func(e Event) {
		v, ok := selves.Load(e.Cap.ID)
		if e.Type != EventClose || !ok {
			return
		}
		if n := v.(int); n >= 3 {
			<-release
		}
		collected <- v.(int)
		<-asked
	})
	makeCycle := func(n int) {
		a, _, ca, cb := newEnds(k, false)
		b, i := cb.Rights()
		x, err := k.Derive(cb, Derivation{Edge: EdgeDelegate, Base: b, Inheriting: i})
		if err != nil {
			panic(err)
		}
		selves.Store(x.ID(), n)
		if _, err := a.Send(iov("self"), []*Cap{x}); err != nil {
			panic(err)
		}
		k.Close(ca)
		k.Close(cb) // the last holder of b: asks for a collection
	}
	done := make(chan struct{})
	go func() { // makes the next cycle while a collection waits on it
		defer close(done)
		for n := range collected {
			if n < 10 {
				makeCycle(n + 1)
			}
			asked <- struct{}{}
			if n == 10 {
				return
			}
		}
	}()
	returned := make(chan struct{})
	go func() {
		makeCycle(1)
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(hangGuard):
		close(release)
		t.Fatal("the close that made the first cycle ran the third collection: it waits for its own return")
	}
	close(release)
	select {
	case <-done:
	case <-time.After(hangGuard):
		t.Fatal("the tenth cycle was never collected")
	}
}

// A collection overlapped four times in a row by receives from the queues
// of ends no holder holds gives up, and tries again shortly on its own:
// the garbage goes without any further close or revocation to ask for it.
// Here the first four computations are each overlapped (the receive's
// count is bumped between their passes) and the fifth, the retry, is not.
func TestACollectionThatGaveUpTriesAgainOnItsOwn(t *testing.T) {
	var target atomic.Pointer[ID]
	closed := make(chan struct{})
	k := NewKernel(func(e Event) {
		if id := target.Load(); e.Type == EventClose && id != nil && e.Cap.ID == *id {
			close(closed)
		}
	})
	returned := make(chan struct{})
	computations := 0
	k.mu.Lock()
	k.gcBetweenPasses = func() {
		computations++
		switch {
		case computations <= 4:
			k.gcMoves.Add(1) // as a receive from an orphan's queue does
		case computations == 5:
			<-returned // the retry runs after the close that gave up
		}
	}
	k.mu.Unlock()
	_, gp, cg, cgp := newEnds(k, true)
	self := inflight(t, k, cg)
	id := self.ID()
	target.Store(&id)
	if _, err := gp.Send(iov("self"), []*Cap{self}); err != nil {
		t.Fatal(err)
	}
	k.Close(cgp)
	k.Close(cg) // collects on this goroutine, and gives up
	close(returned)
	waitFor(t, closed, "a collection that gave up never tried again: the cycle is still there")
	k.mu.Lock()
	n := computations
	k.gcBetweenPasses = nil
	k.mu.Unlock()
	if n < 5 {
		t.Fatalf("the cycle went after %d computations; want the four overlapped ones and a retry", n)
	}
}
