package caps

import (
	"errors"
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
func inflight(t *testing.T, k *Kernel, parent *Cap) *Cap {
	t.Helper()
	b, i := parent.Rights()
	return mustDerive(t, k, parent, Derivation{Edge: EdgeDelegate, Base: b, Inheriting: i})
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
	case <-time.After(5 * time.Second):
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
	case <-time.After(5 * time.Second):
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
