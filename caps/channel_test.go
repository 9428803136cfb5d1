package caps

import (
	"bytes"
	"errors"
	"math/rand"
	"sync"
	"testing"
	"time"
)

func iov(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func recvString(t *testing.T, c *Channel, n, maxCaps int, peek bool) (string, []*Cap, RecvFlags) {
	t.Helper()
	buf := make([]byte, n)
	got, cs, fl, err := c.Recv([][]byte{buf}, maxCaps, peek)
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return string(buf[:got]), cs, fl
}

// inflight derives a capability for delegation, as sock_send does.
func inflight(t testing.TB, k *Kernel, parent *Cap) *Cap {
	t.Helper()
	b, i := parent.Rights()
	return mustDerive(t, k, parent, Derivation{Edge: EdgeDelegate, Base: b, Inheriting: i})
}

// sendCharged sends a copy of c on on, counted against lim as a guest's
// send is (abi's sock_send), and returns the copy; on failure the copy is
// closed.
func sendCharged(t testing.TB, k *Kernel, lim *InFlightLimit, on *Channel, c *Cap) (*Cap, error) {
	t.Helper()
	x := inflight(t, k, c)
	err := chargeInFlight(lim, x)
	if err == nil {
		_, err = on.Send(iov("x"), []*Cap{x})
	}
	if err != nil {
		k.Close(x)
		return nil, err
	}
	return x, nil
}

// chargeInFlight counts x, derived for a send, against lim, as a send
// does: room first, then the charge.
func chargeInFlight(lim *InFlightLimit, x *Cap) error {
	if err := lim.Reserve(1); err != nil {
		return err
	}
	lim.Charge(x)
	return nil
}

func TestStreamChannelHasNoMessageBoundaries(t *testing.T) {
	a, b := NewChannelPair(false, "t")
	for _, s := range []string{"ab", "cd", "e"} {
		if n, err := a.Send(iov(s), nil); err != nil || n != len(s) {
			t.Fatalf("Send %q: %d, %v", s, n, err)
		}
	}
	if s, _, _ := recvString(t, b, 3, 0, false); s != "abc" {
		t.Fatalf("first read %q, want abc", s)
	}
	if s, _, _ := recvString(t, b, 10, 0, false); s != "de" {
		t.Fatalf("second read %q, want de", s)
	}
	if _, _, _, err := b.Recv([][]byte{make([]byte, 1)}, 0, false); !errors.Is(err, EAGAIN) {
		t.Fatalf("empty channel: err = %v, want EAGAIN", err)
	}
}

func TestStreamChannelSendOfNothingQueuesNothing(t *testing.T) {
	a, b := NewChannelPair(false, "t")
	if n, err := a.Send(nil, nil); n != 0 || err != nil {
		t.Fatalf("empty send: %d, %v", n, err)
	}
	// An empty message would read as end of stream.
	if _, _, _, err := b.Recv([][]byte{make([]byte, 4)}, 0, false); !errors.Is(err, EAGAIN) {
		t.Fatalf("after an empty send: err = %v, want EAGAIN", err)
	}
	if ready, _ := b.Poll(EventRead, nil); ready&EventRead != 0 {
		t.Fatal("reader reported ready after an empty send")
	}
}

func TestDatagramChannelKeepsBoundariesAndTruncates(t *testing.T) {
	a, b := NewChannelPair(true, "t")
	a.Send(iov("hel", "lo"), nil)
	a.Send(iov(""), nil)
	a.Send(iov("x"), nil)
	s, _, fl := recvString(t, b, 3, 0, false)
	if s != "hel" || fl&RecvDataTruncated == 0 {
		t.Fatalf("first datagram: %q flags %v, want hel, truncated", s, fl)
	}
	if s, _, fl := recvString(t, b, 3, 0, false); s != "" || fl != 0 {
		t.Fatalf("empty datagram: %q flags %v", s, fl)
	}
	if s, _, fl := recvString(t, b, 3, 0, false); s != "x" || fl != 0 {
		t.Fatalf("third datagram: %q flags %v", s, fl)
	}
	if _, err := a.Send([][]byte{make([]byte, ChannelBuffer+1)}, nil); !errors.Is(err, EMSGSIZE) {
		t.Fatalf("oversized datagram: err = %v", err)
	}
}

func TestCapabilitiesArriveWithFirstByteOfTheirMessage(t *testing.T) {
	k := NewKernel(nil)
	dir, _ := mintDir(t, k)
	a, b := NewChannelPair(false, "t")
	a.Send(iov("aa"), nil)
	a.Send(iov("bb"), []*Cap{inflight(t, k, dir)})
	a.Send(iov("cc"), nil)

	s, cs, _ := recvString(t, b, 10, 4, false)
	if s != "aa" || len(cs) != 0 {
		t.Fatalf("first read %q with %d caps: must stop before the message carrying capabilities", s, len(cs))
	}
	s, cs, _ = recvString(t, b, 1, 4, false)
	if s != "b" || len(cs) != 1 {
		t.Fatalf("second read %q with %d caps, want b with 1", s, len(cs))
	}
	if cs[0].Parent() != dir {
		t.Fatal("received capability is not derived from the sender's")
	}
	s, cs, _ = recvString(t, b, 10, 4, false)
	if s != "bcc" || len(cs) != 0 {
		t.Fatalf("rest %q with %d caps", s, len(cs))
	}
}

func TestCapabilityOnlyMessageOnStream(t *testing.T) {
	k := NewKernel(nil)
	dir, _ := mintDir(t, k)
	a, b := NewChannelPair(false, "t")
	if n, err := a.Send(nil, []*Cap{inflight(t, k, dir)}); n != 0 || err != nil {
		t.Fatalf("send: %d, %v", n, err)
	}
	s, cs, _ := recvString(t, b, 4, 1, false)
	if s != "" || len(cs) != 1 {
		t.Fatalf("got %q and %d caps", s, len(cs))
	}
}

func TestRecvTruncatesCapabilitiesBeyondRoomAndClosesThem(t *testing.T) {
	k := NewKernel(nil)
	dir, _ := mintDir(t, k)
	a, b := NewChannelPair(true, "t")
	sent := []*Cap{inflight(t, k, dir), inflight(t, k, dir), inflight(t, k, dir)}
	a.Send(iov("m"), sent)
	_, cs, fl := recvString(t, b, 4, 1, false)
	if len(cs) != 1 || cs[0] != sent[0] || fl&RecvCapsTruncated == 0 {
		t.Fatalf("got %d caps, flags %v; want the first and FDS_TRUNCATED", len(cs), fl)
	}
	for _, c := range sent[1:] {
		if !c.Info().Closed {
			t.Fatal("a capability that did not fit was not closed")
		}
	}
}

func TestPeekDoesNotConsumeBytesOrCapabilities(t *testing.T) {
	k := NewKernel(nil)
	dir, _ := mintDir(t, k)
	a, b := NewChannelPair(false, "t")
	a.Send(iov("hello"), []*Cap{inflight(t, k, dir)})
	if s, cs, _ := recvString(t, b, 3, 4, true); s != "hel" || len(cs) != 0 {
		t.Fatalf("peek: %q, %d caps", s, len(cs))
	}
	if s, cs, _ := recvString(t, b, 10, 4, false); s != "hello" || len(cs) != 1 {
		t.Fatalf("read after peek: %q, %d caps", s, len(cs))
	}
}

// A stream Recv fills its buffers in order, passing over empty ones, and
// reads on into the next message while room is left, but not into one
// that carries capabilities, nor past the end of one whose capabilities
// it took.
func TestStreamRecvScattersAcrossBuffers(t *testing.T) {
	k := NewKernel(nil)
	dir, _ := mintDir(t, k)
	a, b := NewChannelPair(false, "t")
	a.Send(iov("ab"), nil)
	a.Send(iov("cd"), []*Cap{inflight(t, k, dir)})
	a.Send(iov("efg"), nil)

	bufs := [][]byte{make([]byte, 1), nil, make([]byte, 2)}
	n, cs, fl, err := b.Recv(bufs, 4, false)
	if err != nil || n != 2 || len(cs) != 0 || fl != 0 {
		t.Fatalf("scattered read: n=%d caps=%d flags=%v err=%v, want 2 bytes and no cap", n, len(cs), fl, err)
	}
	if got := string(bufs[0]) + "|" + string(bufs[2][:1]); got != "a|b" {
		t.Fatalf("buffers hold %q, want a|b", got)
	}
	bufs = [][]byte{make([]byte, 1), nil, make([]byte, 3)}
	n, cs, fl, err = b.Recv(bufs, 4, false)
	if err != nil || n != 2 || len(cs) != 1 || fl != 0 {
		t.Fatalf("scattered read: n=%d caps=%d flags=%v err=%v, want the 2 bytes of the message with the cap", n, len(cs), fl, err)
	}
	if got := string(bufs[0]) + "|" + string(bufs[2][:1]); got != "c|d" {
		t.Fatalf("buffers hold %q, want c|d", got)
	}
	if s, cs, fl := recvString(t, b, 3, 4, false); s != "efg" || len(cs) != 0 || fl != 0 {
		t.Fatalf("rest: %q with %d caps, flags %v; want efg exactly filling the buffer", s, len(cs), fl)
	}
	if _, _, _, err := b.Recv([][]byte{make([]byte, 1)}, 0, false); !errors.Is(err, EAGAIN) {
		t.Fatalf("drained channel: err = %v, want EAGAIN", err)
	}
}

// A stream read that takes a message's capabilities stops at the end of
// that message, as Linux stops a read at a message that carried
// SCM_RIGHTS, and bytes sent after it are not added to it: the bytes a
// read returns with capabilities are those they were sent with, and no
// others. A peek stops where the read would; so does a read that finds
// no room for the capabilities (they are closed), and a message of
// capabilities alone reads as no bytes. The rest of a message read in
// part brings no capabilities and reads on.
func TestAStreamReadThatTakesCapabilitiesStopsAtTheEndOfTheirMessage(t *testing.T) {
	k := NewKernel(nil)
	dir, _ := mintDir(t, k)
	a, b := NewChannelPair(false, "t")
	a.Send(iov("ab"), []*Cap{inflight(t, k, dir)})
	a.Send(iov("cd"), nil)
	if s, cs, _ := recvString(t, b, 10, 4, true); s != "ab" || len(cs) != 0 {
		t.Fatalf("peek: %q with %d caps, want ab with none", s, len(cs))
	}
	if s, cs, _ := recvString(t, b, 10, 4, false); s != "ab" || len(cs) != 1 {
		t.Fatalf("read %q with %d caps, want ab with 1", s, len(cs))
	}
	if s, cs, _ := recvString(t, b, 10, 4, false); s != "cd" || len(cs) != 0 {
		t.Fatalf("read %q with %d caps, want cd with none", s, len(cs))
	}

	a.Send(iov("ef"), []*Cap{inflight(t, k, dir)})
	a.Send(iov("gh"), nil)
	if s, cs, fl := recvString(t, b, 10, 0, false); s != "ef" || len(cs) != 0 || fl&RecvCapsTruncated == 0 {
		t.Fatalf("read without room for caps: %q with %d caps, flags %v; want ef, the cap closed", s, len(cs), fl)
	}
	recvString(t, b, 10, 0, false)

	a.Send(nil, []*Cap{inflight(t, k, dir)})
	a.Send(iov("i"), nil)
	if s, cs, _ := recvString(t, b, 10, 4, false); s != "" || len(cs) != 1 {
		t.Fatalf("caps-only message: %q with %d caps, want no bytes and 1 cap", s, len(cs))
	}
	if s, cs, _ := recvString(t, b, 10, 4, false); s != "i" || len(cs) != 0 {
		t.Fatalf("after it: %q with %d caps, want i", s, len(cs))
	}

	a.Send(iov("jk"), []*Cap{inflight(t, k, dir)})
	if s, cs, _ := recvString(t, b, 1, 4, false); s != "j" || len(cs) != 1 {
		t.Fatalf("first byte: %q with %d caps, want j with 1", s, len(cs))
	}
	a.Send(iov("lm"), nil)
	if s, cs, _ := recvString(t, b, 10, 4, false); s != "klm" || len(cs) != 0 {
		t.Fatalf("rest: %q with %d caps, want klm", s, len(cs))
	}
}

// RecvMore, how a WAITALL read goes on once it has bytes, reads as Recv
// does but takes no capabilities: with a message that carries some at
// the head it returns no bytes, leaving them for the next read.
func TestRecvMoreStopsBeforeAMessageWithCapabilities(t *testing.T) {
	k := NewKernel(nil)
	dir, _ := mintDir(t, k)
	a, b := NewChannelPair(false, "t")
	a.Send(iov("ab"), nil)
	a.Send(iov("cd"), []*Cap{inflight(t, k, dir)})
	buf := make([]byte, 10)
	if n, err := b.RecvMore([][]byte{buf}); n != 2 || err != nil || string(buf[:2]) != "ab" {
		t.Fatalf("RecvMore: %q, %v; want ab", buf[:n], err)
	}
	if n, err := b.RecvMore([][]byte{buf}); n != 0 || err != nil {
		t.Fatalf("RecvMore at a message with caps: %d, %v; want 0, nil", n, err)
	}
	if s, cs, _ := recvString(t, b, 10, 4, false); s != "cd" || len(cs) != 1 {
		t.Fatalf("read %q with %d caps, want cd with 1", s, len(cs))
	}
	if _, err := b.RecvMore([][]byte{buf}); !errors.Is(err, EAGAIN) {
		t.Fatalf("RecvMore on an empty channel: %v, want EAGAIN", err)
	}
}

func TestClosedPeerGivesEndOfStreamAndEPIPE(t *testing.T) {
	a, b := NewChannelPair(false, "t")
	b.Send(iov("last"), nil)
	b.Close()
	if _, err := a.Send(iov("x"), nil); !errors.Is(err, EPIPE) {
		t.Fatalf("send to a closed end: err = %v, want EPIPE", err)
	}
	ready, _ := a.Poll(EventRead|EventWrite, nil)
	if ready&EventHangup == 0 || ready&EventRead == 0 {
		t.Fatalf("poll after peer close: %v", ready)
	}
	// What was sent before the close is still delivered, then EOF.
	if s, _, _ := recvString(t, a, 10, 0, false); s != "last" {
		t.Fatalf("read %q", s)
	}
	if n, _, _, err := a.Recv([][]byte{make([]byte, 4)}, 0, false); n != 0 || err != nil {
		t.Fatalf("end of stream: %d, %v, want 0, nil", n, err)
	}
}

func TestShutdownWriteEndsPeerStream(t *testing.T) {
	a, b := NewChannelPair(false, "t")
	a.Send(iov("z"), nil)
	a.Shutdown(false, true)
	if _, err := a.Send(iov("x"), nil); !errors.Is(err, EPIPE) {
		t.Fatalf("send after SHUT_WR: %v", err)
	}
	if s, _, _ := recvString(t, b, 4, 0, false); s != "z" {
		t.Fatalf("read %q", s)
	}
	if n, _, _, err := b.Recv([][]byte{make([]byte, 4)}, 0, false); n != 0 || err != nil {
		t.Fatalf("after peer SHUT_WR: %d, %v, want EOF", n, err)
	}
	// The other direction is unaffected until b shuts down its reading.
	if _, err := b.Send(iov("back"), nil); err != nil {
		t.Fatalf("reverse direction after peer SHUT_WR: %v", err)
	}
	a.Shutdown(true, false)
	if _, err := b.Send(iov("more"), nil); !errors.Is(err, EPIPE) {
		t.Fatalf("send to an end that shut down reading: %v", err)
	}
}

func TestClosingEndDropsInFlightCapabilities(t *testing.T) {
	k := NewKernel(nil)
	res := newTestRes(KindDirectory)
	dir := k.Mint(alice, res, RightsDirectoryBase, 0, "d", "test")
	a, b := NewChannelPair(false, "t")
	c := inflight(t, k, dir)
	a.Send(iov("x"), []*Cap{c})
	k.Close(dir)
	if res.closes.Load() != 0 {
		t.Fatal("the in-flight capability did not keep the resource open")
	}
	b.Close()
	if !c.Info().Closed || res.closes.Load() != 1 {
		t.Fatalf("after closing the receiving end: in-flight closed=%v, resource closes=%d", c.Info().Closed, res.closes.Load())
	}
	if s := k.Snapshot(); len(s) != 0 {
		t.Fatalf("graph still holds %d capabilities", len(s))
	}
}

func TestFullChannelGivesEAGAINAndReadWakesWriter(t *testing.T) {
	a, b := NewChannelPair(false, "t")
	big := make([]byte, ChannelBuffer+100)
	n, err := a.Send([][]byte{big}, nil)
	if err != nil || n != ChannelBuffer {
		t.Fatalf("stream send into empty buffer: %d, %v; want a short write of %d", n, err, ChannelBuffer)
	}
	if _, err := a.Send(iov("x"), nil); !errors.Is(err, EAGAIN) {
		t.Fatalf("full: err = %v", err)
	}
	w := NewWaiter()
	ready, cancel := a.Poll(EventWrite, w)
	defer cancel()
	if ready&EventWrite != 0 {
		t.Fatal("full channel reported writable")
	}
	recvString(t, b, 10, 0, false)
	select {
	case <-w.C():
	case <-time.After(hangGuard):
		t.Fatal("reading did not wake the writer")
	}
	if ready, _ := a.Poll(EventWrite, nil); ready&EventWrite == 0 {
		t.Fatal("not writable after the reader made room")
	}
}

func TestSendWakesPollingReader(t *testing.T) {
	a, b := NewChannelPair(true, "t")
	w := NewWaiter()
	ready, cancel := b.Poll(EventRead, w)
	defer cancel()
	if ready != 0 {
		t.Fatalf("empty channel ready: %v", ready)
	}
	a.Send(iov("ping"), nil)
	select {
	case <-w.C():
	case <-time.After(hangGuard):
		t.Fatal("send did not wake the reader")
	}
}

func TestChannelBoundsQueuedMessagesAndCapabilities(t *testing.T) {
	a, _ := NewChannelPair(true, "t")
	for i := range ChannelMaxMessages {
		if _, err := a.Send(nil, nil); err != nil {
			t.Fatalf("empty datagram %d: %v", i, err)
		}
	}
	if _, err := a.Send(nil, nil); !errors.Is(err, EAGAIN) {
		t.Fatalf("datagram beyond ChannelMaxMessages: err = %v, want EAGAIN", err)
	}
	if ready, _ := a.Poll(EventWrite, nil); ready&EventWrite != 0 {
		t.Fatal("writable although the message queue is full")
	}

	k := NewKernel(nil)
	dir, _ := mintDir(t, k)
	c, _ := NewChannelPair(false, "t")
	sent := 0
	for {
		batch := make([]*Cap, 16)
		for i := range batch {
			batch[i] = inflight(t, k, dir)
		}
		_, err := c.Send(iov("x"), batch)
		if err != nil {
			if !errors.Is(err, EAGAIN) {
				t.Fatalf("err = %v", err)
			}
			closeCaps(batch) // the caller still owns them on error
			break
		}
		sent += len(batch)
	}
	if sent != ChannelMaxCaps {
		t.Fatalf("%d capabilities queued, want the bound %d", sent, ChannelMaxCaps)
	}
	if _, err := c.Send(iov("x"), make([]*Cap, MaxCapsPerMessage+1)); !errors.Is(err, E2BIG) {
		t.Fatalf("too many capabilities in one message: err = %v", err)
	}
}

// Many small stream writes must not use up the message bound.
func TestStreamWritesCoalesce(t *testing.T) {
	a, b := NewChannelPair(false, "t")
	for i := range 2 * ChannelMaxMessages {
		if _, err := a.Send(iov("y"), nil); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if s, _, _ := recvString(t, b, 4*ChannelMaxMessages, 0, false); len(s) != 2*ChannelMaxMessages {
		t.Fatalf("read %d bytes", len(s))
	}
}

// newEnds makes a channel pair whose ends alice holds.
func newEnds(k *Kernel, dgram bool) (*Channel, *Channel, *Cap, *Cap) {
	a, b := NewChannelPair(dgram, "t")
	ca := k.Create(alice, a, RightsSocketBase, RightsSocketInheriting, "", "test")
	cb := k.Create(alice, b, RightsSocketBase, RightsSocketInheriting, "", "test")
	return a, b, ca, cb
}

// A channel end sent over its own channel keeps itself alive through its
// queue; once no holder remains, the kernel collects it.
func TestChannelEndSentOverItselfIsCollectedWhenHoldersLetGo(t *testing.T) {
	k := NewKernel(nil)
	a, _, ca, cb := newEnds(k, false)
	x := inflight(t, k, cb)
	if _, err := a.Send(iov("self"), []*Cap{x}); err != nil { // lands in b's own queue
		t.Fatal(err)
	}
	k.Close(ca)
	k.Close(cb)
	if !x.Info().Closed {
		t.Fatal("the end in flight in its own queue was not collected")
	}
	if s := k.Snapshot(); len(s) != 0 {
		t.Fatalf("%d capabilities left in the graph", len(s))
	}
}

func TestChannelCycleAcrossTwoPairsIsCollected(t *testing.T) {
	k := NewKernel(nil)
	a1, _, ca1, cb1 := newEnds(k, true)
	a2, _, ca2, cb2 := newEnds(k, true)
	x2 := inflight(t, k, cb2)
	x1 := inflight(t, k, cb1)
	a1.Send(iov("to b1"), []*Cap{x2}) // b1's queue holds b2
	a2.Send(iov("to b2"), []*Cap{x1}) // b2's queue holds b1
	for _, c := range []*Cap{ca1, ca2, cb1, cb2} {
		k.Close(c)
	}
	if !x1.Info().Closed || !x2.Info().Closed {
		t.Fatal("a cycle of channel ends in flight survived its holders")
	}
	if s := k.Snapshot(); len(s) != 0 {
		t.Fatalf("%d capabilities left in the graph", len(s))
	}
}

// An end whose only capability waits in the queue of an end someone
// holds is still reachable and must not be touched.
func TestChannelEndReachableThroughHeldQueueIsKept(t *testing.T) {
	k := NewKernel(nil)
	a, b, ca, cb := newEnds(k, false)
	a.Send(iov("for b"), nil)
	x := inflight(t, k, cb)
	b.Send(iov("b itself"), []*Cap{x}) // lands in a's queue, which alice holds
	k.Close(cb)
	if x.Info().Closed {
		t.Fatal("collected an end its holder can still receive")
	}
	_, cs, _ := recvString(t, a, 64, 4, false)
	if len(cs) != 1 || cs[0] != x {
		t.Fatal("did not receive the end")
	}
	k.Adopt(x, alice)
	if s, _, _ := recvString(t, b, 64, 0, false); s != "for b" {
		t.Fatalf("the end's queue was disturbed: read %q", s)
	}
	k.Close(x)
	k.Close(ca)
	if s := k.Snapshot(); len(s) != 0 {
		t.Fatalf("%d capabilities left in the graph", len(s))
	}
}

// A capability taken from a queue but not yet adopted is in transit: its
// end must survive a collection that runs meanwhile.
func TestChannelEndInTransitSurvivesCollection(t *testing.T) {
	k := NewKernel(nil)
	a, b, ca, cb := newEnds(k, false)
	c, d, cc, cd := newEnds(k, false)
	a.Send(iov("queued for b"), nil)
	x := inflight(t, k, cb)
	c.Send(iov("b"), []*Cap{x})
	_, cs, _ := recvString(t, d, 8, 4, false) // x is now in transit
	if len(cs) != 1 {
		t.Fatal("no capability received")
	}
	k.Close(cb) // last held capability on b: triggers a collection
	if x.Info().Closed {
		t.Fatal("collected an end in transit")
	}
	k.Adopt(x, bob)
	if s, _, _ := recvString(t, b, 64, 0, false); s != "queued for b" {
		t.Fatalf("b's queue lost: read %q", s)
	}
	for _, y := range []*Cap{x, ca, cc, cd} {
		k.Close(y)
	}
	if s := k.Snapshot(); len(s) != 0 {
		t.Fatalf("%d capabilities left in the graph", len(s))
	}
}

// testCharge is a MemoryCharge of at most limit bytes.
type testCharge struct {
	mu          sync.Mutex
	used, limit int64
}

func (c *testCharge) Take(n int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.used+n > c.limit {
		return false
	}
	c.used += n
	return true
}

func (c *testCharge) Give(n int64) {
	c.mu.Lock()
	c.used -= n
	c.mu.Unlock()
}

func (c *testCharge) inUse() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// A charged channel charges the buffers of the messages waiting in it,
// whichever end sends them, until each is read to its end (a stream
// message read in part keeps its bytes), cut off (a datagram longer than
// the buffer) or dropped with the end that would read it.
func TestChargedChannelChargesItsBuffers(t *testing.T) {
	for _, dgram := range []bool{false, true} {
		ch := &testCharge{limit: 10}
		a, b := NewChargedChannelPair(dgram, "t", ch)
		if n, err := a.Send(iov("abcdef"), nil); err != nil || n != 6 {
			t.Fatalf("dgram %v: send: %d, %v", dgram, n, err)
		}
		if _, err := b.Send(iov("xyz"), nil); err != nil {
			t.Fatalf("dgram %v: send the other way: %v", dgram, err)
		}
		if got := ch.inUse(); got != 9 {
			t.Fatalf("dgram %v: %d bytes charged, want 9", dgram, got)
		}
		if n, err := a.Send(iov("12"), nil); err != ENOBUFS || n != 0 {
			t.Fatalf("dgram %v: send past the charge: %d, %v, want ENOBUFS", dgram, n, err)
		}
		buf := make([]byte, 4)
		if _, _, _, err := b.Recv([][]byte{buf}, 0, true); err != nil {
			t.Fatal(err)
		}
		if got := ch.inUse(); got != 9 {
			t.Fatalf("dgram %v: %d bytes charged after a peek, want 9", dgram, got)
		}
		if _, _, _, err := b.Recv([][]byte{buf}, 0, false); err != nil {
			t.Fatal(err)
		}
		want := int64(9) // the stream's "abcdef", read in part, is kept whole
		if dgram {
			want = 3 // the datagram's last two bytes were cut off
		}
		if got := ch.inUse(); got != want {
			t.Fatalf("dgram %v: %d bytes charged after reading 4, want %d", dgram, got, want)
		}
		a.Close()
		if got := ch.inUse(); got != want-3 {
			t.Fatalf("dgram %v: %d bytes charged once the end xyz waited for closed, want %d", dgram, got, want-3)
		}
		b.Close()
		if got := ch.inUse(); got != 0 {
			t.Fatalf("dgram %v: %d bytes charged once both ends closed", dgram, got)
		}
	}
}

// What a charged stream holds is what it charges, however its reader
// leaves the head message read in part: with a 1 MiB charge, four
// channels each keeping a 256 KiB message read to its last byte take it
// all, and a fifth is refused.
func TestPartlyReadStreamMessagesStayCharged(t *testing.T) {
	ch := &testCharge{limit: 1 << 20}
	chunk := make([]byte, ChannelBuffer)
	buf := make([]byte, ChannelBuffer-1)
	var ends []*Channel
	for i := range 5 {
		a, b := NewChargedChannelPair(false, "t", ch)
		n, err := a.Send([][]byte{chunk}, nil)
		if i == 4 {
			if err != ENOBUFS {
				t.Fatalf("a fifth 256 KiB send under a 1 MiB charge: %d, %v, want ENOBUFS", n, err)
			}
			break
		}
		if err != nil || n != len(chunk) {
			t.Fatalf("send %d: %d, %v (charged %d)", i, n, err, ch.inUse())
		}
		if n, _, _, err := b.Recv([][]byte{buf}, 0, false); err != nil || n != len(buf) {
			t.Fatalf("recv %d: %d, %v", i, n, err)
		}
		ends = append(ends, b)
	}
	if held := heldBy(ends...); int64(held) != ch.inUse() {
		t.Fatalf("the queues hold %d bytes, %d charged", held, ch.inUse())
	}
}

// Small writes extend the last message, whose buffer doubles as it grows;
// what it holds is charged, and stays under 2 × ChannelBuffer a direction
// while the reader leaves the head message read in part.
func TestSmallWritesToAStreamAreChargedAsTheyAreHeld(t *testing.T) {
	ch := &testCharge{limit: 1 << 30}
	a, b := NewChargedChannelPair(false, "t", ch)
	small := make([]byte, 1000)
	fill := func() {
		for {
			n, err := a.Send([][]byte{small}, nil)
			if err == EAGAIN || n < len(small) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	buf := make([]byte, ChannelBuffer)
	for range 3 {
		fill()
		b.p.mu.Lock()
		unread := b.p.qbytes[1]
		b.p.mu.Unlock()
		if _, _, _, err := b.Recv([][]byte{buf[:unread-1]}, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	fill()
	held := heldBy(b)
	if int64(held) != ch.inUse() || held > 2*ChannelBuffer {
		t.Fatalf("the queue holds %d bytes (%.2f × ChannelBuffer), %d charged", held, float64(held)/ChannelBuffer, ch.inUse())
	}
}

// heldBy is the memory the buffers waiting at ends hold.
func heldBy(ends ...*Channel) int {
	n := 0
	for _, e := range ends {
		e.p.mu.Lock()
		n += buffered(e.p.q[e.side])
		e.p.mu.Unlock()
	}
	return n
}

// Random sends (with and without caps) and partial receives on a stream:
// bytes arrive in order, every capability arrives with the first byte of
// the message it was sent with, and the queue never holds more than a
// handful of messages without capabilities.
func TestAStreamKeepsItsBytesInOrderAndHandlesWithTheirFirstByte(t *testing.T) {
	k := NewKernel(nil)
	rng := rand.New(rand.NewSource(1))
	for range 200 {
		a, b, _, _ := newEnds(k, false)
		m := &streamModel{t: t, k: k, rng: rng, a: a, b: b, capAt: map[int]*Cap{}, capEnd: map[int]int{},
			obj: k.Create(alice, NewByteObject(), RightsByteObjectBase, 0, "", "t")}
		for range 400 {
			if rng.Intn(2) == 0 {
				m.send()
			} else {
				m.recv()
			}
			m.checkQueue()
		}
		if !bytes.Equal(m.got, m.sent[:len(m.got)]) {
			t.Fatal("bytes out of order")
		}
	}
}

// streamModel is what was sent on a stream from a to b, and what came.
type streamModel struct {
	t         *testing.T
	k         *Kernel
	rng       *rand.Rand
	a, b      *Channel
	obj       *Cap
	sent, got []byte
	capAt     map[int]*Cap // the capability sent with the byte at each offset
	capEnd    map[int]int  // the end of the message sent with it
}

// send sends 1 to 50 numbered bytes, with a capability one time in five.
func (m *streamModel) send() {
	data := make([]byte, 1+m.rng.Intn(50))
	for i := range data {
		data[i] = byte(len(m.sent) + i)
	}
	var cs []*Cap
	if m.rng.Intn(5) == 0 {
		cs = []*Cap{inflight(m.t, m.k, m.obj)}
	}
	n, err := m.a.Send([][]byte{data}, cs)
	if err == EAGAIN {
		closeCaps(cs)
		return
	}
	if err != nil {
		m.t.Fatal(err)
	}
	if len(cs) > 0 {
		m.capAt[len(m.sent)] = cs[0]
		m.capEnd[len(m.sent)] = len(m.sent) + n
	}
	m.sent = append(m.sent, data[:n]...)
}

// recv receives up to 60 bytes and checks the capabilities that come.
func (m *streamModel) recv() {
	buf := make([]byte, 1+m.rng.Intn(60))
	n, cs, _, err := m.b.Recv([][]byte{buf}, 4, false)
	if err == EAGAIN {
		return
	}
	if err != nil {
		m.t.Fatal(err)
	}
	want, sentWith := m.capAt[len(m.got)]
	switch {
	case len(cs) > 0 && (!sentWith || len(cs) != 1 || cs[0] != want):
		m.t.Fatalf("capabilities arrived at byte %d, not with their message's first byte", len(m.got))
	case len(cs) == 0 && sentWith && n > 0:
		m.t.Fatalf("byte %d read without the capability sent with it", len(m.got))
	case len(cs) > 0 && len(m.got)+n > m.capEnd[len(m.got)]:
		m.t.Fatalf("a read with a capability ran %d bytes past its message", len(m.got)+n-m.capEnd[len(m.got)])
	}
	delete(m.capAt, len(m.got))
	delete(m.capEnd, len(m.got))
	closeCaps(cs)
	m.got = append(m.got, buf[:n]...)
}

// checkQueue fails if more messages without capabilities wait than
// partial reads and capabilities explain.
func (m *streamModel) checkQueue() {
	p := m.b.p
	p.mu.Lock()
	plain := 0
	for _, msg := range p.q[m.b.side] {
		if len(msg.caps) == 0 {
			plain++
		}
	}
	p.mu.Unlock()
	if plain > len(m.capAt)+3 {
		m.t.Fatalf("%d messages without capabilities queued", plain)
	}
}

// OnPeerClose tells an end that its peer has closed, and whether the peer
// left messages for it, whether it was set before or after the close.
func TestOnPeerCloseSaysWhetherThePeerLeftMessages(t *testing.T) {
	for _, sent := range []bool{false, true} {
		a, b := NewChannelPair(true, "t")
		if sent {
			if _, err := a.Send([][]byte{[]byte("x")}, nil); err != nil {
				t.Fatal(err)
			}
		}
		got := make(chan bool, 1)
		b.OnPeerClose(func(pending bool) { got <- pending })
		if len(got) != 0 {
			t.Fatal("OnPeerClose ran before the peer closed")
		}
		_ = a.Close()
		if p := <-got; p != sent {
			t.Fatalf("sent %v: pending %v", sent, p)
		}
		// Set after the close: it runs at once.
		b.OnPeerClose(func(pending bool) { got <- pending })
		if p := <-got; p != sent {
			t.Fatalf("sent %v, set after the close: pending %v", sent, p)
		}
	}
}
