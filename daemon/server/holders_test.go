package server_test

import (
	"context"
	"slices"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
)

// A capability's description names its holder only to a user who may see
// that holder: its own guests and connections (root and the daemon's own
// user: every one). Alice, using by its token a copy bob restricted of his
// guest's stdout, was told the id of bob's connection; bob, asking by id
// for the copy alice's guest was given of it (his to act on, as it derives
// from his), was told the id of alice's guest, which a revoke's receipt
// counts without naming. Root is still told every holder.
func TestACapabilitysHolderIsNamedOnlyToAUserWhoMaySeeIt(t *testing.T) {
	s := bobsCopyInAlicesGuest(t)
	ctx := context.Background()
	in, err := s.x.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.Holder != "" {
		t.Errorf("alice describes bob's copy, held by his connection, which she got by its token: holder %q; want none named", in.Holder)
	}
	theirs, err := s.b.Cap(ctx, s.copyID)
	if err != nil {
		t.Fatal(err)
	}
	defer theirs.Release()
	in, err = theirs.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.Holder != "" {
		t.Errorf("bob describes the copy alice's guest %s holds: holder %q; want none named", s.ga, in.Holder)
	}
	mine, err := s.b.Cap(ctx, s.r.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Release()
	if in, err = mine.Info(ctx); err != nil || in.Holder == "" {
		t.Errorf("bob describes his own copy: holder %q, %v; want his connection named", in.Holder, err)
	}
	x, err := s.d.dial(t).Cap(ctx, s.copyID)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Release()
	if in, err = x.Info(ctx); err != nil || in.Holder != s.ga {
		t.Errorf("root describes the copy alice's guest holds: holder %q, %v; want %s", in.Holder, err, s.ga)
	}
}

// A revoke's receipt lists the ids of the capabilities it cut off that the
// caller may see, as it names their holders: bob, revoking a copy of his
// that alice's guest had been given a copy of, was told the id of hers,
// with which he could look it up (it derives from his) and learn what
// her guest holds. The receipt counts her guest among the holders of
// other users.
func TestARevokeReceiptListsOnlyTheCapabilitiesItsCallerMaySee(t *testing.T) {
	s := bobsCopyInAlicesGuest(t)
	ctx := context.Background()
	rc, err := s.b.Revoke(ctx, s.r.ID(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rc.Revoked, []string{s.r.ID()}) || rc.Others != 1 {
		t.Errorf("bob's receipt: revoked %q and %d holders of other users; want only his copy %s listed (not alice's %s) and 1 holder counted", rc.Revoked, rc.Others, s.r.ID(), s.copyID)
	}
}

// sharedCopy is a capability bob made and alice passed on to a guest of
// hers.
type sharedCopy struct {
	d      *testDaemon
	a, b   *client.Client
	r      *client.Cap // bob's restricted copy of his guest's stdout
	x      *client.Cap // alice's Cap object for r, by its token
	ga     string      // alice's guest
	copyID string      // the copy of r alice's guest holds, as "out"
}

// bobsCopyInAlicesGuest has bob launch a guest and restrict a copy of its
// stdout, which alice takes by its token and passes to a guest of hers.
func bobsCopyInAlicesGuest(t *testing.T) sharedCopy {
	t.Helper()
	d, a, b := aliceAndBob(t)
	ctx := context.Background()
	wasm := abitest.WAT(t, sleepWAT)
	launch := func(c *client.Client, dl []client.Delegation) *client.Guest {
		g, err := c.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: wasm, Caps: dl, Detach: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Kill(ctx, "test over"); g.Release() })
		return g
	}
	gb := launch(b, nil)
	out, err := gb.Handle(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	s := sharedCopy{d: d, a: a, b: b}
	if s.r, err = out.Restrict(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.r.Release)
	if s.x, err = a.CapByToken(ctx, s.r.ID(), s.r.Token()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.x.Release)
	ga := launch(a, []client.Delegation{{Cap: s.x, Name: "out"}})
	s.ga, s.copyID = ga.ID(), dataCapNamed(t, a, ga.ID(), "out")
	return s
}
