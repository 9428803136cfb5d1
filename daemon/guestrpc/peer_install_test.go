package guestrpc

import (
	"context"
	"testing"

	capnp "capnproto.org/go/capnp/v3"
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
	if err := publishingClient(t, a, "jobs", "giver", capnp.Client(guest.GuestSupervisor_ServerToClient(g))); err != nil {
		t.Fatal(err)
	}
	svc, err := obtainStore(t, b, "jobs", "giver")
	if err != nil {
		t.Fatal(err)
	}
	remote := guest.GuestSupervisor(svc)
	defer remote.Release()
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
