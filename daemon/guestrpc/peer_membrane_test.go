package guestrpc

import (
	"context"
	"errors"
	"strings"
	"testing"

	capnp "capnproto.org/go/capnp/v3"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/examples/pipeline/pipelineapi"
	"github.com/sandboxd/sandboxd/schemas/guest"
)

// publishGiver publishes, from p, a service whose obtain returns a new
// Store each time (giver).
func publishGiver(t *testing.T, p *testPeer, name string) {
	t.Helper()
	if err := publishingClient(t, p, "jobs", name, capnp.Client(guest.GuestSupervisor_ServerToClient(giver{}))); err != nil {
		t.Fatal(err)
	}
}

// given calls the giver g's obtain and returns the Store in its results.
func given(t *testing.T, g guest.GuestSupervisor) pipelineapi.Store {
	t.Helper()
	f, rel := g.Obtain(testCtx(t), nil)
	defer rel()
	res, err := f.Struct()
	if err != nil {
		t.Fatalf("a store from the giver: %v", err)
	}
	return pipelineapi.Store(res.Service().AddRef())
}

// A service reached through another is reached through the daemon's
// copy of the first: revoking the copy a guest called (or the publisher's
// channel handle it descends from) cuts off what it obtained in that
// copy's results too, in its own hands and in those of a third guest it
// passed them to, as calls already sent and calls pipelined on them.
// Otherwise a revocation would leave every object the guest had obtained
// through the service (the files a file service opened for it) working.
func TestRevokingAServiceCutsOffWhatWasObtainedThroughIt(t *testing.T) {
	for _, what := range []string{"the caller's copy", "the publisher's channel handle"} {
		t.Run(what, func(t *testing.T) {
			h := newHarness(t, Limits{})
			a, b, c := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
			publishGiver(t, a, "giver")
			k := &keeper{got: make(chan capnp.Client, 1)}
			publishParser(t, c, pipelineapi.Parser_ServerToClient(k))
			svc, err := obtainStore(t, b, "jobs", "giver")
			if err != nil {
				t.Fatal(err)
			}
			g := guest.GuestSupervisor(svc)
			defer g.Release()
			ctx := testCtx(t)
			st := given(t, g)
			defer st.Release()
			if err := put(ctx, st, "k", "v"); err != nil {
				t.Fatalf("a call to the store obtained through the giver: %v", err)
			}
			// b passes the store on to c.
			parser := obtainParser(t, b)
			defer parser.Release()
			f, rel := parser.Open(ctx, func(p pipelineapi.Parser_open_Params) error {
				return p.SetDir(guest.GuestHandle(st.AddRef()))
			})
			if _, err := f.Struct(); err != nil {
				t.Fatal(err)
			}
			rel()
			third := pipelineapi.Store(<-k.got)
			defer third.Release()
			if err := put(ctx, third, "k", "v"); err != nil {
				t.Fatalf("a call by the third guest to the store passed on: %v", err)
			}
			// A call pipelined on a promise of a store, whose answer has
			// come: the call goes to the store the promise resolved to.
			pending, relPending := g.Obtain(ctx, nil)
			defer relPending()
			pipelined := pipelineapi.Store(pending.Service())
			if _, err := pending.Struct(); err != nil {
				t.Fatal(err)
			}
			var cut *caps.Cap
			if what == "the caller's copy" {
				cut = h.lookup(t, h.held(b.g.ID(), caps.KindService), "giver")
			} else {
				cut = a.chanHandle(t, "jobs")
			}
			if _, err := h.sup.Revoke(cut.ID(), "test"); err != nil {
				t.Fatal(err)
			}
			for who, s := range map[string]pipelineapi.Store{"the guest": st, "the third guest it passed it to": third, "pipelined on a promise": pipelined} {
				err := put(ctx, s, "after", "v")
				if err == nil || !strings.Contains(err.Error(), "revoked") {
					t.Errorf("%s: a call to a store obtained through a revoked giver: %v; want an exception saying it was revoked", who, err)
				}
			}
		})
	}
}

// lookup returns the capability among infos named name.
func (h *harness) lookup(t *testing.T, infos []caps.Info, name string) *caps.Cap {
	t.Helper()
	for _, in := range infos {
		if in.Name == name {
			c, ok := h.sup.Kernel().Lookup(in.ID)
			if ok {
				return c
			}
		}
	}
	t.Fatalf("no capability named %q among %d", name, len(infos))
	return nil
}

// handGiver is a service whose obtain returns a GuestHandle on its
// guest's handle fd, wrapped anew each time.
type handGiver struct {
	guest.GuestSupervisor_Server
	self guest.GuestSupervisor
	fd   uint32
}

func (g *handGiver) Obtain(ctx context.Context, call guest.GuestSupervisor_obtain) error {
	call.Go()
	f, rel := g.self.HandOver(ctx, func(p guest.GuestSupervisor_handOver_Params) error {
		p.SetFd(g.fd)
		return nil
	})
	defer rel()
	h, err := f.Struct()
	if err != nil {
		return err
	}
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	return res.SetService(capnp.Client(h.Handle()).AddRef())
}

// A GuestHandle obtained through a service that has since been revoked
// is not installed.
func TestAGuestHandleObtainedThroughARevokedServiceIsNotInstalled(t *testing.T) {
	h := newHarness(t, Limits{})
	_, b, g := giverPair(t, h)
	install := func(hd capnp.Client) error {
		f, rel := b.sup.Install(testCtx(t), func(p guest.GuestSupervisor_install_Params) error {
			return p.SetHandle(guest.GuestHandle(hd.AddRef()))
		})
		defer rel()
		_, err := f.Struct()
		return err
	}
	before, after := capnp.Client(given(t, g)), capnp.Client(given(t, g))
	defer before.Release()
	defer after.Release()
	if err := install(before); err != nil {
		t.Fatalf("install of a GuestHandle obtained through a service: %v", err)
	}
	if _, err := h.sup.Revoke(h.lookup(t, h.held(b.g.ID(), caps.KindService), "giver").ID(), "test"); err != nil {
		t.Fatal(err)
	}
	if err := install(after); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("install of a GuestHandle obtained through a revoked service: %v; want it refused", err)
	}
}

// cursor is a service whose obtain returns the next cursor: an iterator,
// each step obtained through the one before.
type cursor struct{ guest.GuestSupervisor_Server }

func (cursor) Obtain(ctx context.Context, call guest.GuestSupervisor_obtain) error {
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	return res.SetService(capnp.Client(guest.GuestSupervisor_ServerToClient(cursor{})))
}

// An iterator whose every step is obtained through the one before, each
// let go once the next is had, goes on for as long as the guest likes:
// what a step hangs on is the service it started from (which revoking
// still cuts it off from), not every step before it.
func TestAnIteratorOfObjectsEachObtainedThroughTheLastHasNoEnd(t *testing.T) {
	const steps = 3 * maxVia
	h := newHarness(t, Limits{})
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	if err := publishingClient(t, a, "jobs", "cursor", capnp.Client(guest.GuestSupervisor_ServerToClient(cursor{}))); err != nil {
		t.Fatal(err)
	}
	svc, err := obtainStore(t, b, "jobs", "cursor")
	if err != nil {
		t.Fatal(err)
	}
	cur := guest.GuestSupervisor(svc)
	for i := 0; i < steps; i++ {
		next := guest.GuestSupervisor(given(t, cur))
		cur.Release()
		cur = next
	}
	defer cur.Release()
	if _, err := h.sup.Revoke(a.chanHandle(t, "jobs").ID(), "test"); err != nil {
		t.Fatal(err)
	}
	f, rel := cur.Obtain(testCtx(t), nil)
	defer rel()
	if _, err := f.Struct(); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("step %d of an iterator whose publisher's channel handle was revoked: %v; want it cut off", steps, err)
	}
}

// storeGiver is a service whose obtain returns its one store.
type storeGiver struct {
	guest.GuestSupervisor_Server
	st *store
}

func (g storeGiver) Obtain(ctx context.Context, call guest.GuestSupervisor_obtain) error {
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	return res.SetService(capnp.Client(pipelineapi.Store_ServerToClient(g.st)))
}

// A call in flight through an object obtained through a service ends
// when the service is revoked, as a call in flight through the service
// itself does.
func TestACallInFlightThroughWhatAServiceGaveEndsWhenItIsRevoked(t *testing.T) {
	h := newHarness(t, Limits{})
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	st := newStore()
	st.block = make(chan struct{}) // it answers none
	defer close(st.block)
	g := guest.GuestSupervisor(publishAndObtain(t, a, b, "giver", capnp.Client(guest.GuestSupervisor_ServerToClient(storeGiver{st: st}))))
	s := given(t, g)
	defer s.Release()
	errc := make(chan error, 1)
	go func() { errc <- put(testCtx(t), s, "k", "v") }()
	<-st.started // the call has reached the serving guest
	if _, err := h.sup.Revoke(h.lookup(t, h.held(b.g.ID(), caps.KindService), "giver").ID(), "test"); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a call in flight through a store obtained through a service revoked meanwhile: %v; want it ended, saying so", err)
	}
}

// A call through an object obtained through a service, waiting for a
// promise it passes to resolve before the daemon sends it on, ends when
// the service is revoked, as it does when the object itself is: it is in
// flight, and the promise may never resolve.
func TestACallWaitingOnAPromiseThroughWhatAServiceGaveEndsWhenItIsRevoked(t *testing.T) {
	log := newLines()
	h := newLoggingHarness(t, Limits{}, log)
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	first := guest.GuestSupervisor(publishAndObtain(t, a, b, "cursor", capnp.Client(guest.GuestSupervisor_ServerToClient(cursor{}))))
	next := guest.GuestSupervisor(given(t, first))
	defer next.Release()
	promise, resolver := capnp.NewLocalPromise[guest.GuestHandle]()
	defer resolver.Reject(errors.New("the test has ended"))
	waiting := logged(t, log, awaitingPromise)
	f, rel := next.Publish(testCtx(t), func(p guest.GuestSupervisor_publish_Params) error {
		return p.SetService(capnp.Client(promise))
	})
	defer rel()
	<-waiting
	if _, err := h.sup.Revoke(h.lookup(t, h.held(b.g.ID(), caps.KindService), "cursor").ID(), "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Struct(); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a call waiting on a promise, through an object obtained through a service revoked meanwhile: %v; want it ended, saying so", err)
	}
}
