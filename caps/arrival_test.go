package caps

import (
	"errors"
	"testing"
)

func TestOnArrivalRunsForEachMessageQueuedAtThatEndOnly(t *testing.T) {
	a, b := NewChannelPair(true, "t")
	var atB, atA []string
	b.OnArrival(func() {
		// What the daemon's hook does: take the message from its end.
		buf := make([]byte, 16)
		n, _, _, err := b.Recv([][]byte{buf}, 0, false)
		if err != nil {
			t.Errorf("Recv in the hook: %v", err)
		}
		atB = append(atB, string(buf[:n]))
	})
	a.OnArrival(func() { atA = append(atA, "?") })
	for _, s := range []string{"one", "two"} {
		if _, err := a.Send(iov(s), nil); err != nil {
			t.Fatal(err)
		}
	}
	if len(atB) != 2 || atB[0] != "one" || atB[1] != "two" || len(atA) != 0 {
		t.Fatalf("hook at b saw %q, hook at a ran %d times: want [one two] and 0", atB, len(atA))
	}
	b.OnArrival(nil)
	if _, err := a.Send(iov("three"), nil); err != nil {
		t.Fatal(err)
	}
	if len(atB) != 2 {
		t.Fatalf("a removed hook still ran: %q", atB)
	}
	// A send that fails queues nothing and calls nothing.
	b.OnArrival(func() { t.Error("hook ran for a refused send") })
	_ = b.Close()
	if _, err := a.Send(iov("x"), nil); !errors.Is(err, EPIPE) {
		t.Fatalf("send to a closed end: %v", err)
	}
}

func TestDerivationOriginIsTheChildsProvenance(t *testing.T) {
	k := NewKernel(nil)
	dir, _ := mintDir(t, k)
	b, i := dir.Rights()
	c := mustDerive(t, k, dir, Derivation{Edge: EdgeDelegate, Base: b, Inheriting: i, Origin: "in a call to service store"})
	if c.Origin() != "in a call to service store" || c.Info().Origin != c.Origin() {
		t.Fatalf("origin %q (info %q)", c.Origin(), c.Info().Origin)
	}
	if d := mustDerive(t, k, dir, Derivation{Edge: EdgeDup, Base: b, Inheriting: i}); d.Origin() != "" {
		t.Fatalf("a derivation without origin has %q", d.Origin())
	}
}

func TestOnPeerRecvRunsWhenTheOtherEndTakesMessages(t *testing.T) {
	a, b := NewChannelPair(true, "t")
	ran := 0
	a.OnPeerRecv(func() {
		// What the daemon's hook does: send into the room just made.
		if ran++; ran > 1 {
			return
		}
		if _, err := a.Send(iov("more"), nil); err != nil {
			t.Errorf("Send in the hook: %v", err)
		}
	})
	b.OnPeerRecv(func() { t.Error("the hook of the receiving end ran") })
	if _, err := a.Send(iov("one"), nil); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if _, _, _, err := b.Recv([][]byte{buf}, 0, true); err != nil || ran != 0 {
		t.Fatalf("peek: %v, hook ran %d times; want it not run", err, ran)
	}
	if n, _, _, err := b.Recv([][]byte{buf}, 0, false); err != nil || string(buf[:n]) != "one" || ran != 1 {
		t.Fatalf("receive %q, %v, hook ran %d times; want one and once", buf[:n], err, ran)
	}
	if n, _, _, err := b.Recv([][]byte{buf}, 0, false); err != nil || string(buf[:n]) != "more" || ran != 2 {
		t.Fatalf("what the hook sent: %q, %v; hook ran %d times, want twice", buf[:n], err, ran)
	}
	a.OnPeerRecv(nil)
	if _, err := a.Send(iov("last"), nil); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := b.Recv([][]byte{buf}, 0, false); err != nil || ran != 2 {
		t.Fatalf("receive: %v; a removed hook ran (%d times)", err, ran)
	}
	if _, _, _, err := b.Recv([][]byte{buf}, 0, false); !errors.Is(err, EAGAIN) {
		t.Fatalf("receive from an empty queue: %v; want EAGAIN", err)
	}
}

func TestHasRoomSaysWhetherASendWouldFitNow(t *testing.T) {
	a, b := NewChannelPair(true, "t")
	k := NewKernel(nil)
	h := &Holder{ID: "test"}
	if !a.HasRoom(ChannelMaxMessages, ChannelBuffer, ChannelMaxCaps) || a.HasRoom(ChannelMaxMessages+1, 0, 0) || a.HasRoom(1, ChannelBuffer+1, 0) || a.HasRoom(1, 0, ChannelMaxCaps+1) {
		t.Fatal("an empty queue's room is not the channel's limits")
	}
	for range ChannelMaxCaps - 1 {
		x := k.Mint(h, NewByteObject(), RightsByteObjectBase, 0, "x", "test")
		if _, err := a.Send(iov("c"), []*Cap{x}); err != nil {
			t.Fatal(err)
		}
	}
	if !a.HasRoom(1, 1, 1) || a.HasRoom(1, 1, 2) || !a.HasRoom(ChannelMaxMessages-ChannelMaxCaps+1, 0, 0) || a.HasRoom(ChannelMaxMessages-ChannelMaxCaps+2, 0, 0) {
		t.Fatal("room for capabilities or messages miscounted")
	}
	if b.HasRoom(ChannelMaxMessages, ChannelBuffer, ChannelMaxCaps) != true {
		t.Fatal("the other direction's room changed")
	}
	_ = b.Close()
}
