package guestrpc

import (
	"strings"
	"sync"
	"testing"
	"time"

	capnp "capnproto.org/go/capnp/v3"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/examples/pipeline/pipelineapi"
	"github.com/sandboxd/sandboxd/schemas/guest"
)

// held returns the live capabilities of kind held by holder.
func (h *harness) held(holder string, kind caps.Kind) []caps.Info {
	var out []caps.Info
	for _, in := range h.sup.Kernel().Snapshot() {
		if in.Holder == holder && in.Kind == kind && !in.Revoked && !in.Closed {
			out = append(out, in)
		}
	}
	return out
}

func TestPublishedServiceIsReachedThroughACapabilityDerivedForTheCaller(t *testing.T) {
	h := newHarness(t, Limits{})
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	st := newStore()
	s := servedStore(t, a, b, st)
	if err := put(testCtx(t), s, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if st.get("k") != "v" {
		t.Fatalf("the store got %q", st.get("k"))
	}
	roots := h.held(a.g.ID(), caps.KindService)
	copies := h.held(b.g.ID(), caps.KindService)
	if len(roots) != 1 || len(copies) != 1 {
		t.Fatalf("service capabilities: %d held by the publisher, %d by the caller; want 1 and 1", len(roots), len(copies))
	}
	if c := copies[0]; c.Parent != roots[0].ID || c.Edge != caps.EdgeDelegate || !strings.Contains(c.Origin, "on chan:jobs") {
		t.Fatalf("caller's copy: parent %s edge %s origin %q; want parent %s, edge delegate, the channel in its origin", c.Parent, c.Edge, c.Origin, roots[0].ID)
	}
}

func TestPublishAndObtainNeedTheChannel(t *testing.T) {
	h := newHarness(t, Limits{})
	a, outsider := h.peer(t, "chan:jobs"), h.peer(t, "chan:other")
	publishStore(t, a, "jobs", "store", newStore())
	if _, err := obtainStore(t, outsider, "jobs", "store"); err == nil || !strings.Contains(err.Error(), `holds no channel "jobs"`) {
		t.Fatalf("obtain without the channel: %v", err)
	}
	svc := pipelineapi.Store_ServerToClient(newStore())
	f, rel := outsider.sup.Publish(testCtx(t), func(p guest.GuestSupervisor_publish_Params) error {
		_ = p.SetChannel("jobs")
		_ = p.SetName("fake")
		return p.SetService(capnp.Client(svc))
	})
	defer rel()
	if _, err := f.Struct(); err == nil || !strings.Contains(err.Error(), "holds no channel") {
		t.Fatalf("publish without the channel: %v", err)
	}
}

func TestObtainWaitsForThePublisher(t *testing.T) {
	h := newHarness(t, Limits{})
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	f, rel := b.sup.Obtain(testCtx(t), func(p guest.GuestSupervisor_obtain_Params) error {
		_ = p.SetChannel("jobs")
		return p.SetName("store")
	})
	defer rel()
	st := newStore()
	publishStore(t, a, "jobs", "store", st)
	res, err := f.Struct()
	if err != nil {
		t.Fatal(err)
	}
	if err := put(testCtx(t), pipelineapi.Store(res.Service()), "late", "ok"); err != nil || st.get("late") != "ok" {
		t.Fatalf("call through the late service: %v, stored %q", err, st.get("late"))
	}
}

func TestRevokingThePublishersCapabilityCutsTheCallersCalls(t *testing.T) {
	h := newHarness(t, Limits{})
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	s := servedStore(t, a, b, newStore())
	if err := put(testCtx(t), s, "k", "v"); err != nil {
		t.Fatal(err)
	}
	root := h.held(a.g.ID(), caps.KindService)[0]
	if _, err := h.sup.Revoke(root.ID, "test"); err != nil {
		t.Fatal(err)
	}
	err := put(testCtx(t), s, "k2", "v")
	if err == nil || !strings.Contains(err.Error(), "has been revoked") {
		t.Fatalf("call after revoke: %v; want an exception saying the service was revoked", err)
	}
	// Revocation is for good: the exception is "failed", not
	// "disconnected", which would tell the caller to obtain it again.
	if capnp.IsDisconnected(err) {
		t.Fatalf("call after revoke: a disconnected exception (%v); want failed", err)
	}
}

func TestCallInFlightEndsWhenItsCapabilityIsRevoked(t *testing.T) {
	h := newHarness(t, Limits{})
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	st := newStore()
	st.block = make(chan struct{}) // the store never answers
	defer close(st.block)
	s := servedStore(t, a, b, st)
	errc := make(chan error, 1)
	go func() { errc <- put(testCtx(t), s, "k", "v") }()
	<-st.started // the call has reached the serving guest
	copyOf := h.held(b.g.ID(), caps.KindService)[0]
	if _, err := h.sup.Revoke(copyOf.ID, "test"); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("call in flight at revoke: %v", err)
	}
}

func TestServingGuestsExitFailsCallsWithAClearException(t *testing.T) {
	h := newHarness(t, Limits{})
	a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	s := servedStore(t, a, b, newStore())
	a.g.Kill("test")
	<-a.g.Done()
	// The daemon revokes a leaving guest's services, and so withdraws
	// them, once it sees its connection end; wait for that event (each
	// withdrawal is a change), then call.
	for {
		changed := h.srv.changedChan()
		h.srv.mu.Lock()
		listed := len(h.srv.services)
		h.srv.mu.Unlock()
		held := len(h.held(b.g.ID(), caps.KindService))
		if listed == 0 && held == 0 {
			break
		}
		select {
		case <-changed:
		case <-time.After(hangGuard):
			t.Fatalf("%d services still listed and %d copies held after their publisher exited", listed, held)
		}
	}
	err := put(testCtx(t), s, "k", "v")
	if err == nil || !strings.Contains(err.Error(), "is gone") || !strings.Contains(err.Error(), a.g.ID()) {
		t.Fatalf("call to the service of an exited guest: %v; want an exception naming the guest", err)
	}
	// A publisher that has gone may come back: the exception is
	// "disconnected", which Cap'n Proto defines as "obtain the capability
	// again and retry".
	if !capnp.IsDisconnected(err) {
		t.Fatalf("call to the service of an exited guest: %v is not a disconnected exception", err)
	}
}

// Between a publisher's exit and the daemon's revoking its services (once
// it sees the guest's connection end), its publication is as withdrawn: a
// guest started again may publish the name at once, and an obtain gets
// the new publication, never the one whose guest has gone. A restarted
// publisher was refused the name as already published, and an obtain in
// that moment got the dead service, whose first call failed as gone.
func TestAnExitedPublishersServiceIsWithdrawnBeforeItIsRevoked(t *testing.T) {
	h := newHarness(t, Limits{})
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.srv.beforeLeave = func() { once.Do(func() { close(entered); <-release }) }
	var released sync.Once
	unblock := func() { released.Do(func() { close(release) }) }
	defer unblock() // a leave held must end, however the test does
	a, b, c := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
	publishStore(t, a, "jobs", "store", newStore())
	a.g.Kill("test")
	<-entered // a has exited; its services are not yet revoked
	s := servedStore(t, c, b, newStore())
	if err := put(testCtx(t), s, "k", "v"); err != nil {
		t.Fatalf("a call to the service obtained after its publisher started again: %v", err)
	}
	unblock()
}

// A published service's name becomes the name of every capability on it,
// which other guests, `sandboxd caps` and the audit log show: it follows
// the rules of any handle's name.
func TestAServiceNameFollowsTheRulesOfHandleNames(t *testing.T) {
	h := newHarness(t, Limits{})
	a := h.peer(t, "chan:jobs")
	for _, name := range []string{strings.Repeat("n", 1<<16), "clear\x1b[2Jscreen", "two\nlines"} {
		err := publishing(t, a, "jobs", name, newStore())
		if err == nil || !strings.Contains(err.Error(), "service name") {
			t.Fatalf("publishing a service named %.40q: %v", name, err)
		}
	}
	publishStore(t, a, "jobs", "store", newStore())
}
