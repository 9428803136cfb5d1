package guestrpc

import (
	"context"
	"strings"
	"testing"

	capnp "capnproto.org/go/capnp/v3"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/examples/pipeline/pipelineapi"
	"github.com/sandboxd/sandboxd/schemas/guest"
)

// awaitingPromise is what the daemon logs as it waits for a capability
// passed as a promise to resolve.
const awaitingPromise = "waiting for a capability passed as a promise to resolve"

// keeper is a Parser a test peer serves: open hands the capability it is
// given to the test.
type keeper struct{ got chan capnp.Client }

func (k *keeper) Open(ctx context.Context, call pipelineapi.Parser_open) error {
	k.got <- capnp.Client(call.Args().Dir()).AddRef()
	return nil
}

func (k *keeper) Parse(ctx context.Context, call pipelineapi.Parser_parse) error { return nil }

// logged returns a channel closed once log contains s.
func logged(t testing.TB, log *lines, s string) <-chan struct{} {
	done, over := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(over) })
	go func() {
		for {
			log.mu.Lock()
			has, changed := strings.Contains(log.b.String(), s), log.changed
			log.mu.Unlock()
			if has {
				close(done)
				return
			}
			select {
			case <-changed:
			case <-over:
				return
			}
		}
	}()
	return done
}

// A guest passes a promise it resolves to its own GuestSupervisor once
// the call is sent: the daemon must see what the promise became, and
// refuse it as it refuses the GuestSupervisor itself, rather than let
// the peer act for the guest through it.
func TestAPromiseResolvingToTheSendersGuestSupervisorIsNotPassedOn(t *testing.T) {
	log := newLines()
	h := newLoggingHarness(t, Limits{}, log)
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	k := &keeper{got: make(chan capnp.Client, 1)}
	publishParser(t, b, pipelineapi.Parser_ServerToClient(k))
	remote := obtainParser(t, a)
	defer remote.Release()
	promise, resolver := capnp.NewLocalPromise[guest.GuestHandle]()
	f, rel := remote.Open(testCtx(t), func(p pipelineapi.Parser_open_Params) error {
		return p.SetDir(promise)
	})
	defer rel()
	select {
	case dir := <-k.got: // passed on before it resolved
		defer dir.Release()
		resolver.Fulfill(guest.GuestHandle(a.sup.AddRef()))
		hf, hrel := guest.GuestSupervisor(dir).Handles(testCtx(t), nil)
		defer hrel()
		if _, err := hf.Struct(); err == nil {
			t.Fatalf("guest %s read guest %s's handle table through a promise %s resolved to its GuestSupervisor", b.g.ID(), a.g.ID(), a.g.ID())
		}
		t.Fatal("a promise was passed on before it resolved")
	case <-logged(t, log, awaitingPromise):
		resolver.Fulfill(guest.GuestHandle(a.sup.AddRef()))
	}
	if _, err := f.Struct(); err == nil || !strings.Contains(err.Error(), "cannot be passed on") {
		t.Fatalf("passing a promise of the guest's GuestSupervisor: %v", err)
	}
}

// A guest passes on the service it obtained before the obtain has
// returned (pipelined on it): what the peer receives must be derived from
// the guest's copy, as the service itself would be, not made a service
// of the guest's own.
func TestAPipelinedServicePassedOnIsDerivedFromTheSendersCopy(t *testing.T) {
	log := newLines()
	h := newLoggingHarness(t, Limits{}, log)
	a, b, c := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	k := &keeper{got: make(chan capnp.Client, 1)}
	publishParser(t, b, pipelineapi.Parser_ServerToClient(k))
	remote := obtainParser(t, a)
	defer remote.Release()
	obtained, orel := a.sup.Obtain(testCtx(t), func(p guest.GuestSupervisor_obtain_Params) error {
		_ = p.SetChannel("jobs")
		return p.SetName("store") // not published yet: the obtain waits
	})
	defer orel()
	f, rel := remote.Open(testCtx(t), func(p pipelineapi.Parser_open_Params) error {
		return p.SetDir(guest.GuestHandle(obtained.Service().AddRef()))
	})
	defer rel()
	var dir capnp.Client
	select {
	case dir = <-k.got:
		publishStore(t, c, "jobs", "store", newStore())
	case <-logged(t, log, awaitingPromise):
		publishStore(t, c, "jobs", "store", newStore())
		dir = <-k.got
	}
	defer dir.Release()
	if _, err := f.Struct(); err != nil {
		t.Fatal(err)
	}
	all := map[caps.ID]caps.Info{}
	for _, in := range h.sup.Kernel().Snapshot() {
		all[in.ID] = in
	}
	for _, in := range h.held(b.g.ID(), caps.KindService) {
		parent, ok := all[in.Parent]
		if !ok || parent.Holder != a.g.ID() {
			continue // b's own parser
		}
		if parent.Edge != caps.EdgeDelegate || !strings.HasPrefix(parent.Origin, "obtained as store") {
			t.Fatalf("guest %s's copy %s of what %s passed descends from %s (edge %s, origin %q), not from %s's obtained copy of the store", b.g.ID(), in.ID, a.g.ID(), parent.ID, parent.Edge, parent.Origin, a.g.ID())
		}
		return
	}
	t.Fatalf("guest %s holds no copy of what %s passed", b.g.ID(), a.g.ID())
}

// A guest publishes the service it obtained before the obtain has
// returned: the daemon must see that it is a service the guest obtained
// and refuse it, as it refuses it once obtained, rather than publish it
// as an object of the guest's own.
func TestAPromiseOfAnObtainedServiceIsNotPublished(t *testing.T) {
	log := newLines()
	h := newLoggingHarness(t, Limits{}, log)
	a, c := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	obtained, orel := a.sup.Obtain(testCtx(t), func(p guest.GuestSupervisor_obtain_Params) error {
		_ = p.SetChannel("jobs")
		return p.SetName("store") // not published yet: the obtain waits
	})
	defer orel()
	f, rel := a.sup.Publish(testCtx(t), func(p guest.GuestSupervisor_publish_Params) error {
		_ = p.SetChannel("jobs")
		_ = p.SetName("again")
		return p.SetService(obtained.Service().AddRef())
	})
	defer rel()
	published := make(chan error, 1)
	go func() {
		_, err := f.Struct()
		published <- err
	}()
	var err error
	select {
	case err = <-published:
		publishStore(t, c, "jobs", "store", newStore())
	case <-logged(t, log, awaitingPromise):
		publishStore(t, c, "jobs", "store", newStore())
		err = <-published
	}
	if err == nil || !strings.Contains(err.Error(), "only an object the guest serves itself") {
		t.Fatalf("publishing the promise of a service the guest obtained: %v", err)
	}
}
