package guestrpc

import (
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/examples/pipeline/pipelineapi"
	"github.com/sandboxd/sandboxd/schemas/guest"
)

// chanHandle returns the guest's handle on channel name.
func (p *testPeer) chanHandle(t testing.TB, name string) *caps.Cap {
	t.Helper()
	c := p.g.ChannelHandle(name, 0)
	if c == nil {
		t.Fatalf("guest %s holds no handle on channel %q", p.g.ID(), name)
	}
	return c
}

func TestRevokingThePublishersChannelHandleRevokesWhatItPublished(t *testing.T) {
	h := newHarness(t, Limits{})
	pub, obt, third := h.peer(t, "chan:pipe"), h.peer(t, "chan:pipe"), h.peer(t, "chan:pipe")
	st, st2 := newStore(), newStore()
	publishStore(t, pub, "pipe", "store", st)
	publishStore(t, pub, "pipe", "store2", st2)
	ctx := testCtx(t)
	var held []pipelineapi.Store
	for _, name := range []string{"store", "store2"} {
		s, err := obtainStore(t, obt, "pipe", name)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Release()
		if err := put(ctx, s, "before", "ok"); err != nil {
			t.Fatalf("call to %s before the revocation: %v", name, err)
		}
		held = append(held, s)
	}

	ch := pub.chanHandle(t, "pipe")
	if _, err := h.sup.Revoke(ch.ID(), "cut off from pipe"); err != nil {
		t.Fatal(err)
	}
	// Every copy obtained from either publication fails, saying why.
	for i, s := range held {
		err := put(ctx, s, "after", "no")
		if err == nil {
			t.Fatalf("call to publication %d of the guest went through after its chan:pipe handle was revoked", i+1)
		}
		for _, want := range []string{"has been revoked", "chan:pipe", pub.g.ID(), string(ch.ID())} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("call after the publisher's channel handle was revoked: %q; want it to say %q", err, want)
			}
		}
	}
	if st.get("after") != "" || st2.get("after") != "" {
		t.Fatal("a call reached a store whose publisher's channel handle was revoked")
	}
	if n := len(h.held(obt.g.ID(), caps.KindService)); n != 0 {
		t.Fatalf("the obtainer still holds %d live service capabilities", n)
	}

	// The publications are withdrawn: the server lists neither, and a
	// newcomer's obtain waits as for a name never published, and gets the
	// next service published under it.
	h.srv.mu.Lock()
	listed := len(h.srv.services)
	h.srv.mu.Unlock()
	if listed != 0 {
		t.Fatalf("%d services still listed after their publisher's channel handle was revoked", listed)
	}
	f, rel := third.sup.Obtain(ctx, func(a guest.GuestSupervisor_obtain_Params) error {
		_ = a.SetChannel("pipe")
		return a.SetName("store")
	})
	defer rel()
	next := newStore()
	publishStore(t, h.peer(t, "chan:pipe"), "pipe", "store", next)
	res, err := f.Struct()
	if err != nil {
		t.Fatal(err)
	}
	if err := put(ctx, pipelineapi.Store(res.Service()), "third", "ok"); err != nil {
		t.Fatal(err)
	}
	if st.get("third") != "" || next.get("third") != "ok" {
		t.Fatalf("the newcomer reached the withdrawn store (%q) rather than the one published since (%q)", st.get("third"), next.get("third"))
	}
	// The publisher can no longer publish on the channel.
	if err := publishing(t, pub, "pipe", "again", newStore()); err == nil || !strings.Contains(err.Error(), "holds no channel") {
		t.Fatalf("publish after the guest's channel handle was revoked: %v", err)
	}
}

func TestAPublicationIsDerivedFromThePublishersChannelHandle(t *testing.T) {
	h := newHarness(t, Limits{})
	pub, obt := h.peer(t, "chan:pipe"), h.peer(t, "chan:pipe")
	publishStore(t, pub, "pipe", "store", newStore())
	s, err := obtainStore(t, obt, "pipe", "store")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	copies := h.held(obt.g.ID(), caps.KindService)
	if len(copies) != 1 {
		t.Fatalf("the obtainer holds %d service capabilities, want 1", len(copies))
	}
	// How the obtainer got its copy, as `sandboxd caps` and the audit
	// graph tell it: the publisher's channel grant, the service published
	// beneath it, the copy obtained from that.
	g := audit.FromSnapshot(h.sup.Kernel().Snapshot(), nil)
	steps, err := g.Trace(string(copies[0].ID))
	if err != nil {
		t.Fatal(err)
	}
	type step struct{ edge, kind, holder, origin string }
	want := []step{
		{"grant", "chan", pub.g.ID(), "chan:pipe"},
		{"create", "service", pub.g.ID(), "published as store on chan:pipe"},
		{"delegate", "service", obt.g.ID(), "obtained as store on chan:pipe"},
	}
	var got []step
	for _, s := range steps {
		got = append(got, step{s.Edge, s.Kind, s.Holder, s.Origin})
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("the obtained copy's chain: %+v\nwant %+v", got, want)
	}
	if steps[0].Cap != string(pub.chanHandle(t, "pipe").ID()) {
		t.Fatalf("the publication descends from %s, not from the publisher's handle on pipe", steps[0].Cap)
	}
}

func TestRevokingTheObtainersChannelHandleKeepsWhatItObtained(t *testing.T) {
	h := newHarness(t, Limits{})
	pub, obt := h.peer(t, "chan:pipe"), h.peer(t, "chan:pipe")
	st := newStore()
	publishStore(t, pub, "pipe", "store", st)
	publishStore(t, pub, "pipe", "store2", newStore())
	s, err := obtainStore(t, obt, "pipe", "store")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	mine := obt.chanHandle(t, "pipe")
	if _, err := h.sup.Revoke(mine.ID(), "no more from pipe"); err != nil {
		t.Fatal(err)
	}
	// What it obtained is tied to the publication, not to its own handle
	// on the channel, like an fd received on a channel.
	ctx := testCtx(t)
	if err := put(ctx, s, "k", "v"); err != nil || st.get("k") != "v" {
		t.Fatalf("call through a service obtained before the obtainer's channel handle was revoked: %v", err)
	}
	copies := h.held(obt.g.ID(), caps.KindService)
	if len(copies) != 1 {
		t.Fatalf("the obtainer holds %d live service capabilities, want 1", len(copies))
	}
	c, ok := h.sup.Kernel().Lookup(copies[0].ID)
	if !ok {
		t.Fatal("the obtained copy is not in the graph")
	}
	theirs := pub.chanHandle(t, "pipe")
	var from []caps.ID
	for x := c; x != nil; x = x.Parent() {
		from = append(from, x.ID())
	}
	if root := from[len(from)-1]; root != theirs.ID() {
		t.Fatalf("the obtained copy descends from %v, want the publisher's channel handle %s at the top", from, theirs.ID())
	}
	// But it obtains and publishes nothing more on the channel.
	if _, err := obtainStore(t, obt, "pipe", "store2"); err == nil || !strings.Contains(err.Error(), "holds no channel") {
		t.Fatalf("obtain after the obtainer's channel handle was revoked: %v", err)
	}
	if err := publishing(t, obt, "pipe", "mine", newStore()); err == nil || !strings.Contains(err.Error(), "holds no channel") {
		t.Fatalf("publish after the guest's channel handle was revoked: %v", err)
	}
}

func TestAnObtainWaitingWhenItsChannelHandleIsRevokedFails(t *testing.T) {
	h := newHarness(t, Limits{})
	obt := h.peer(t, "chan:pipe")
	ctx := testCtx(t)
	f, rel := obt.sup.Obtain(ctx, func(a guest.GuestSupervisor_obtain_Params) error {
		_ = a.SetChannel("pipe")
		return a.SetName("later")
	})
	defer rel()
	// Calls on one connection are answered in order, each once the one
	// before it has begun to wait: this answer means the obtain has
	// checked the channel and waits for the name.
	hf, hrel := obt.sup.Handles(ctx, nil)
	_, err := hf.Struct()
	hrel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.sup.Revoke(obt.chanHandle(t, "pipe").ID(), "no more from pipe"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Struct(); err == nil || !strings.Contains(err.Error(), "holds no channel") {
		t.Fatalf("obtain waiting when the guest's channel handle was revoked: %v", err)
	}
}
