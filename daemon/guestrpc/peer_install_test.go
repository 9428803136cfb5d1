package guestrpc

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	capnp "capnproto.org/go/capnp/v3"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/schemas/guest"
)

// slowGiver is a service whose obtain answers once answer is closed, with
// nothing: a promise pipelined on its result resolves only then.
type slowGiver struct {
	guest.GuestSupervisor_Server
	started chan struct{}
	answer  chan struct{}
}

func (g *slowGiver) Obtain(ctx context.Context, call guest.GuestSupervisor_obtain) error {
	call.Go()
	g.started <- struct{}{}
	select {
	case <-g.answer:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// An install given a GuestHandle still to come (pipelined on a call to a
// peer that has not returned) waits for it; meanwhile the guest's other
// calls to its GuestSupervisor are answered: the GuestSupervisor serves
// one call at a time but for those that let others run (call.Go), and an
// install that waited without letting them would hold every one of them
// for as long as the peer takes, or for ever.
func TestAnInstallWaitingForAPromiseDoesNotHoldTheGuestsOtherCalls(t *testing.T) {
	h := newHarness(t, Limits{})
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	g := &slowGiver{started: make(chan struct{}, 1), answer: make(chan struct{})}
	remote := guest.GuestSupervisor(publishAndObtain(t, a, b, "giver", capnp.Client(guest.GuestSupervisor_ServerToClient(g))))
	ctx := testCtx(t)
	pending, relPending := remote.Obtain(ctx, nil)
	defer relPending()
	<-g.started // the peer has the call, and does not answer yet
	inst, relInst := b.sup.Install(ctx, func(p guest.GuestSupervisor_install_Params) error {
		return p.SetHandle(guest.GuestHandle(pending.Service().AddRef()))
	})
	defer relInst()
	f, rel := b.sup.Handles(ctx, nil)
	defer rel()
	if _, err := f.Struct(); err != nil {
		t.Fatalf("handles while an install waits for a promise: %v", err)
	}
	select {
	case <-inst.Done():
		t.Fatal("handles was answered only once the install had ended (its promise given up at the test's deadline): the install held the guest's other calls")
	default:
	}
	close(g.answer) // the peer answers, with no service
	if _, err := inst.Struct(); err == nil {
		t.Fatal("install of a promise that resolved to nothing succeeded")
	}
}

// A handle a guest installed from a GuestHandle it obtained through a
// service is revoked with that service: otherwise installing what it
// obtains at once, and letting the GuestHandle go, would keep every
// handle a file service gave it past the revocation of its copy of the
// service, for as long as it runs.
func TestAHandleInstalledFromWhatAServiceGaveIsRevokedWithTheService(t *testing.T) {
	h := newHarness(t, Limits{})
	_, b, g := giverPair(t, h)
	hd := capnp.Client(given(t, g))
	f, rel := b.sup.Install(testCtx(t), func(p guest.GuestSupervisor_install_Params) error {
		return p.SetHandle(guest.GuestHandle(hd.AddRef()))
	})
	defer rel()
	res, err := f.Struct()
	if err != nil {
		t.Fatalf("install of a GuestHandle obtained through a service: %v", err)
	}
	hd.Release() // the guest keeps the fd only
	installed, err := b.g.Handle(res.Fd())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.sup.Revoke(h.lookup(t, h.held(b.g.ID(), caps.KindService), "giver").ID(), "test"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-installed.Done():
	case <-testCtx(t).Done():
		t.Fatalf("the handle installed from a GuestHandle obtained through a service (capability %s) is still not revoked after the service was", installed.ID())
	}
}

// What the daemon keeps to revoke a handle installed from what a service
// gave (a goroutine for the guest, and the copy of the service it came
// through, kept open) goes when the guest ends.
func TestAGuestThatInstalledWhatAServiceGaveLeavesNothingBehindWhenItEnds(t *testing.T) {
	h := newHarness(t, Limits{})
	_, b, g := giverPair(t, h)
	copyOf := h.lookup(t, h.held(b.g.ID(), caps.KindService), "giver")
	base := runtime.NumGoroutine()
	hd := capnp.Client(given(t, g))
	f, rel := b.sup.Install(testCtx(t), func(p guest.GuestSupervisor_install_Params) error {
		return p.SetHandle(guest.GuestHandle(hd.AddRef()))
	})
	if _, err := f.Struct(); err != nil {
		t.Fatalf("install of a GuestHandle obtained through a service: %v", err)
	}
	rel()
	hd.Release()
	b.g.Kill("test")
	<-b.g.Done()
	_ = b.conn.Close()
	settledGoroutines(t, base, "after the guest that installed a handle ended")
	// Its connection's objects are released as it ends.
	for deadline := time.Now().Add(hangGuard); !copyOf.Closed() && !copyOf.Revoked(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("guest %s's copy of the service (capability %s) is still open after it ended", b.g.ID(), copyOf.ID())
		}
	}
}

// A guest that hands out handles through a service and then exits has
// revoked nothing: what it gave, once installed, is a copy of its
// handle, which its exit closes and does not revoke (as a handle sent on
// a channel outlives its sender). Only a revocation of the service the
// GuestHandle came through revokes what was installed from it.
func TestAHandleInstalledFromWhatAServiceGaveOutlivesTheServingGuest(t *testing.T) {
	log := newLines()
	h := newLoggingHarness(t, Limits{}, log)
	a, b, g := giverPair(t, h)
	hd := capnp.Client(given(t, g))
	defer hd.Release()
	f, rel := b.sup.Install(testCtx(t), func(p guest.GuestSupervisor_install_Params) error {
		return p.SetHandle(guest.GuestHandle(hd.AddRef()))
	})
	defer rel()
	res, err := f.Struct()
	if err != nil {
		t.Fatalf("install of a GuestHandle obtained through a service: %v", err)
	}
	installed, err := b.g.Handle(res.Fd())
	if err != nil {
		t.Fatal(err)
	}
	swept := logged(t, log, serviceGoneKeepsInstalled)
	a.g.Kill("test")
	revoked := fmt.Sprintf("the handle installed from a GuestHandle guest %s gave (capability %s) was revoked when that guest exited", a.g.ID(), installed.ID())
	select {
	case <-swept:
	case <-installed.Done():
		t.Fatal(revoked)
	case <-testCtx(t).Done():
		t.Fatal("the daemon never saw the service the GuestHandle came through go with its guest")
	}
	if installed.Revoked() {
		t.Fatal(revoked)
	}
}
