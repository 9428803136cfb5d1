package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/caps"
)

// Handles a guest sends on its supervisor channel are closed by the
// daemon as they arrive: they never count as in flight.
func TestTheSupervisorChannelUnchargesWhatItDrops(t *testing.T) {
	s, err := New(context.Background(), Options{CacheDir: testCache, MaxInFlightPerUser: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	m := compileWAT(t, s, fmt.Sprintf(sendLoopWAT, 300))
	g, err := s.Launch(context.Background(), LaunchSpec{Principal: alice, Module: m, SupervisorChannel: true})
	if err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, g, HangGuard)
	if n := s.account(alice.UID).inflight.InFlight(); st.Code != 300*1000 || n != 0 {
		t.Fatalf("exit %d (1000 × sends made + errno), %d in flight; want 300 sends and none in flight", st.Code, n)
	}
}

// The handles waiting for a guest on its supervisor channel are closed
// when it ends, even if something else still refers to the guest's end of
// the channel: the guest will never read them.
func TestHandlesWaitingForAnEndedGuestAreClosed(t *testing.T) {
	s := newSupervisor(t)
	g, err := launchSpin(t, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	var end *caps.Cap
	for _, e := range g.Handles() {
		if e.Cap.Name() == supervisorHandle {
			end = e.Cap
		}
	}
	if end == nil {
		t.Fatal("the guest has no supervisor channel")
	}
	b, i := end.Rights()
	other, err := s.k.Derive(end, caps.Derivation{Holder: &caps.Holder{ID: "test"}, Edge: caps.EdgeDup, Base: b, Inheriting: i})
	if err != nil {
		t.Fatal(err)
	}
	defer s.k.Close(other)
	obj := s.k.Mint(&caps.Holder{ID: "test"}, caps.NewByteObject(), caps.RightsByteObjectBase, 0, "obj", "test")
	sent, err := g.SendCap(context.Background(), obj, "obj")
	if err != nil {
		t.Fatal(err)
	}
	g.Kill("test")
	waitExit(t, g, HangGuard)
	if !sent.Info().Closed {
		t.Fatal("a handle sent to the guest, never read, is still open after it ended")
	}
}

// A capability beneath caps.MaxClosedAbove closed ancestors (a handle
// passed on and on, each sender closing its copy) cannot be passed on
// again; the error says so and what to do, not that it was revoked.
func TestPassingOnBeneathTooManyClosedCopiesSaysWhy(t *testing.T) {
	s := newSupervisor(t)
	g, err := launchSpin(t, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &caps.Holder{ID: "test"}
	c := s.k.Mint(h, caps.NewByteObject(), caps.RightsByteObjectBase, 0, "obj", "test")
	for range caps.MaxClosedAbove {
		b, i := c.Rights()
		next, err := s.k.Derive(c, caps.Derivation{Holder: h, Edge: caps.EdgeDelegate, Base: b, Inheriting: i})
		if err != nil {
			t.Fatal(err)
		}
		s.k.Close(c)
		c = next
	}
	defer s.k.Close(c)
	_, err = g.SendCap(context.Background(), c, "obj")
	if err == nil || !errors.Is(err, caps.ErrClosedAbove) || !strings.Contains(err.Error(), "cannot be passed on") ||
		strings.Contains(err.Error(), "revoked") {
		t.Fatalf("sending a capability beneath %d closed copies: %v; want it refused, saying why (caps.ErrClosedAbove), not that it was revoked", caps.MaxClosedAbove, err)
	}
}

// What the daemon sent a guest and it has not received yet is pending:
// listed until it is received or revoked, and nothing else is.
func TestPendingListsWhatWaitsOnTheSupervisorChannel(t *testing.T) {
	s := newSupervisor(t)
	g, err := launchSpin(t, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := g.Pending(); len(p) != 0 {
		t.Fatalf("%d pending before anything was sent", len(p))
	}
	h := &caps.Holder{ID: "test"}
	a := s.k.Mint(h, caps.NewByteObject(), caps.RightsByteObjectBase, 0, "a", "test")
	b := s.k.Mint(h, caps.NewByteObject(), caps.RightsByteObjectBase, 0, "b", "test")
	sa, err := g.SendCap(context.Background(), a, "a")
	if err != nil {
		t.Fatal(err)
	}
	sb, err := g.SendCap(context.Background(), b, "b")
	if err != nil {
		t.Fatal(err)
	}
	if p := g.Pending(); len(p) != 2 || p[0] != sa || p[1] != sb {
		t.Fatalf("pending %v, want the two sent, in order", p)
	}
	s.k.Revoke(sa, "test")
	if p := g.Pending(); len(p) != 1 || p[0] != sb {
		t.Fatalf("pending %v after one was revoked, want the other", p)
	}
}
