package server_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/daemon/server"
)

// Test users: uids no account of the host has, so nothing but the
// daemon's own records ties them to anything.
const (
	alice uint32 = 61001
	bob   uint32 = 61002
)

// A capability revoked before is refused, to the user whose guest held
// it, as revoked (when and why) for as long as the daemon remembers the
// revocation, also once the guest that held it has ended and been
// forgotten (sandboxd rm, or pushed out of the 256 ended guests): it was
// refused as an unknown capability to check with `sandboxd caps GUEST`,
// of a guest no longer there, while root was told it was revoked. To
// another user it stays unknown.
func TestARevokedCapabilityOfAForgottenGuestIsStillRefusedAsRevokedToItsUser(t *testing.T) {
	a, b, stdin := revokedStdinOfAForgottenGuest(t)
	ctx := context.Background()
	_, err := a.Revoke(ctx, stdin, "")
	if err == nil || !strings.Contains(err.Error(), "already revoked") || !strings.Contains(err.Error(), "no more input") {
		t.Errorf("alice revokes her forgotten guest's revoked stdin again: %v; want it refused as revoked, saying why", err)
	}
	_, err = b.Revoke(ctx, stdin, "")
	if err == nil || strings.Contains(err.Error(), "revoked") || !strings.Contains(err.Error(), "no capability "+stdin) {
		t.Errorf("bob revokes alice's revoked capability: %v; want it refused as unknown", err)
	}
}

// Passing on, or asking for, a capability revoked before whose holder is
// forgotten tells its user it was revoked, when and why, as revoke does:
// it was told there was no such capability, to check with `sandboxd caps
// GUEST` of a guest no longer there. To another user it stays unknown.
func TestARevokedCapabilityOfAForgottenGuestIsRefusedAsRevokedWhenPassedOnOrAskedFor(t *testing.T) {
	a, b, stdin := revokedStdinOfAForgottenGuest(t)
	ctx := context.Background()
	_, err := a.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: abitest.WAT(t, sleepWAT), Grants: []string{"cap:" + stdin + "=in"}, Detach: true})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Kind != client.KindGrant || !strings.Contains(err.Error(), "revoked") || !strings.Contains(err.Error(), "no more input") {
		t.Errorf("alice passes on her forgotten guest's revoked stdin: %v; want a grant failure saying it was revoked, and why", err)
	}
	if _, err := a.Cap(ctx, stdin); err == nil || !strings.Contains(err.Error(), "revoked") || !strings.Contains(err.Error(), "no more input") {
		t.Errorf("alice asks for her forgotten guest's revoked stdin: %v; want it refused as revoked, saying why", err)
	}
	if _, err := b.Cap(ctx, stdin); err == nil || strings.Contains(err.Error(), "revoked") || !strings.Contains(err.Error(), "no capability "+stdin) {
		t.Errorf("bob asks for alice's revoked capability: %v; want it refused as unknown", err)
	}
}

// revokedStdinOfAForgottenGuest has alice launch a guest, revoke its
// stdin ("no more input"), kill it and forget it; it returns clients of
// alice and bob and the stdin's id.
func revokedStdinOfAForgottenGuest(t *testing.T) (a, b *client.Client, stdin string) {
	_, a, b = aliceAndBob(t)
	ctx := context.Background()
	g, err := a.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: abitest.WAT(t, sleepWAT), Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	hs, err := g.Caps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stdin = hs[0].Cap.ID
	if _, err := a.Revoke(ctx, stdin, "no more input"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Kill(ctx, "test over"); err != nil {
		t.Fatal(err)
	}
	if err := a.Forget(ctx, g.ID()); err != nil {
		t.Fatal(err)
	}
	return a, b, stdin
}

// A user who may not name host paths (no policy, not root nor the
// daemon's user) is told so whatever form the grant's path has: it was
// told to give a bare word or a relative path as an absolute path, which
// the daemon then refused too.
func TestAUserWhoMayNotNameHostPathsIsToldSoWhateverThePathsForm(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	d.asOtherUsers(t)
	ctx := context.Background()
	a, err := d.clientAs(t, alice)
	if err != nil {
		t.Fatal(err)
	}
	for _, gr := range []string{"dir:data", "file:data", "dir:relative/path", "sock:unix:relative.sock=db", "listen:unix:relative.sock=web"} {
		_, err := a.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: abitest.WAT(t, sleepWAT), Grants: []string{gr}, Detach: true})
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Kind != client.KindGrant || !strings.Contains(err.Error(), "may not grant") || strings.Contains(err.Error(), "absolute") {
			t.Errorf("%s: %v; want a grant failure saying the user may not grant it, not how to write the path", gr, err)
		}
	}
}

// A user refused the delegation graph is told what it may do instead:
// see its own guests' capabilities, and where each came from.
func TestAnAuditRefusalSaysWhatTheUserMayDoInstead(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	d.asOtherUsers(t)
	a, err := d.clientAs(t, alice)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"graph", "who-can", "trace", "what-if"} {
		_, err := a.Audit(context.Background(), kind, "x", time.Time{})
		if err == nil || !strings.Contains(err.Error(), "only root and the daemon's own user") || !strings.Contains(err.Error(), "sandboxd caps") {
			t.Errorf("%s: %v; want a refusal saying what the user may do instead", kind, err)
		}
	}
}

// A guest name cannot be one that reads as the start of a guest id
// without its g- (lowercase hex, at most an id's 12 digits): the CLI
// takes such a prefix for the guest whose id it starts (CLI.md), but the
// daemon answers a name first, so another user could name a guest after
// the start of someone else's id and have root's `sandboxd kill PREFIX`
// kill its guest instead. Names that cannot be an id's start are taken.
func TestAGuestNameCannotBeTheStartOfAnID(t *testing.T) {
	_, a, b := aliceAndBob(t)
	ctx := context.Background()
	wasm := abitest.WAT(t, sleepWAT)
	ga, err := a.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: wasm, Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ga.Release()
	defer ga.Kill(ctx, "test over")
	prefix := strings.TrimPrefix(ga.ID(), "g-")[:4]
	for _, name := range []string{prefix, "0", "deadbeef", "0123456789ab"} {
		gb, err := b.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: wasm, Detach: true, GuestName: name})
		var ce *client.Error
		if err == nil {
			gb.Kill(ctx, "test over")
			gb.Release()
		}
		if !errors.As(err, &ce) || ce.Kind != client.KindRequest || !strings.Contains(err.Error(), "guest id") {
			t.Errorf("name %q: %v; want it refused as one that reads as the start of a guest id", name, err)
		}
	}
	for _, name := range []string{"0123456789abc", "Dead", "beef-1", "cafe.x"} {
		gb, err := b.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: wasm, Detach: true, GuestName: name})
		if err != nil {
			t.Errorf("name %q: %v", name, err)
			continue
		}
		gb.Kill(ctx, "test over")
		gb.Release()
	}
}

// A connection the daemon refuses (a user past its share of connections)
// fails the dial, saying the daemon closed it without answering and what
// to do: the dial succeeded, and the first call failed with "lost
// connection to the daemon: … broken pipe" or "connection closed".
func TestARefusedConnectionFailsTheDialSayingWhy(t *testing.T) {
	d := startDaemon(t, server.Limits{MaxConnections: 8, ReservedConnections: 1, MaxConnectionsPerUser: 1})
	d.asOtherUsers(t)
	if _, err := d.clientAs(t, alice); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c, err := client.NewClient(context.Background(), d.dialAs(t, alice, 1)[0])
		if err == nil {
			c.Close()
			t.Fatal("a refused connection dialled")
		}
		if !strings.Contains(err.Error(), "closed the connection without answering") || !strings.Contains(err.Error(), "--max-conns-per-user") {
			t.Fatalf("a refused connection: %v; want the dial to say the daemon closed it unanswered, and why it may have", err)
		}
	}
}

// The daemon keeps the 256 most recent ended guests of each user: one
// user's short guests push only its own out, not another's ended guest,
// whose exit status and output stay readable to its user. Bob's 257
// guests pushed alice's out, and her wait and logs failed as if it had
// never been.
func TestOneUsersEndedGuestsDoNotPushAnothersOut(t *testing.T) {
	_, a, b := aliceAndBob(t)
	ctx := context.Background()
	hello := abitest.WAT(t, helloWAT)
	ended := func(c *client.Client) string {
		g, err := c.Launch(ctx, client.LaunchRequest{Name: "hello.wat", Wasm: hello, Detach: true})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Release()
		if _, err := g.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		return g.ID()
	}
	hers := ended(a)
	const kept = 256
	var his []string
	for range kept + 1 {
		his = append(his, ended(b))
	}
	// Each guest's end is retired after its Wait returns: wait until the
	// daemon has forgotten bob's first, which his 257th pushes out.
	eventually(t, server.HangGuard, "bob's oldest ended guest is forgotten", func() bool {
		g, err := b.Guest(ctx, his[0])
		if err == nil {
			g.Release()
		}
		return err != nil
	})
	g, err := a.Guest(ctx, hers)
	if err != nil {
		t.Fatalf("alice's ended guest, after bob's %d: %v", kept+1, err)
	}
	defer g.Release()
	g2, err := b.Guest(ctx, his[1])
	if err != nil {
		t.Fatalf("bob's %d most recent ended guests: %v", kept, err)
	}
	g2.Release()
}

// A revoke's receipt names only the holders the user who revoked may see:
// her own guests and connections. Holders of other users are counted, not
// named: it named every holder, so a user holding a capability shared
// with others learnt the ids of their guests. Root and the daemon's own
// user, who may see every guest, are still told every holder.
func TestAReceiptNamesOnlyTheHoldersTheRevokerMaySee(t *testing.T) {
	ctx := context.Background()
	d, root, mine, theirs, b := capSharedByThreeUsers(t)
	a, err := d.clientAs(t, alice)
	if err != nil {
		t.Fatal(err)
	}
	x, err := a.CapByToken(ctx, root.ID(), root.Token())
	if err != nil {
		t.Fatal(err)
	}
	defer x.Release()
	rc, err := x.Revoke(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rc.Holders, []string{mine}) || rc.Others != 2 {
		t.Errorf("alice's receipt: holders %q and %d of other users; want only her guest %s named and 2 (the minting connection and bob's guest %s) counted", rc.Holders, rc.Others, mine, theirs)
	}
	if want := []string{root.ID(), dataCapOf(t, a, mine)}; !slices.Equal(rc.Revoked, want) {
		t.Errorf("alice's receipt revoked %q; want the root and her guest's copy %q, not bob's guest's", rc.Revoked, want)
	}
	// Bob, revoking his guest's copy again, is told it was revoked,
	// when and why, and not who else held it.
	copyID := dataCapOf(t, b, theirs)
	_, err = b.Revoke(ctx, copyID, "")
	if err == nil || !strings.Contains(err.Error(), "already revoked") || strings.Contains(err.Error(), mine) || strings.Contains(err.Error(), "conn-") {
		t.Errorf("bob revokes his guest's revoked copy again: %v; want it refused as revoked, naming no other holder", err)
	}

	// The daemon's own user, who minted it, is told every holder.
	_, root, mine, theirs, _ = capSharedByThreeUsers(t)
	rc, err = root.Revoke(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rc.Holders, mine) || !slices.Contains(rc.Holders, theirs) || len(rc.Holders) != 3 || rc.Others != 0 || len(rc.Revoked) != 3 {
		t.Errorf("the daemon's user's receipt: holders %q and %d of other users, revoked %q; want all 3 holders and capabilities named", rc.Holders, rc.Others, rc.Revoked)
	}
}

// capSharedByThreeUsers starts a daemon whose own user mints a directory
// capability that alice and bob each pass, by its token, to a guest of
// theirs. It returns the daemon, the minted capability, the ids of
// alice's and bob's guests, and bob's client.
func capSharedByThreeUsers(t *testing.T) (d *testDaemon, root *client.Cap, mine, theirs string, b *client.Client) {
	d = startDaemon(t, server.Limits{})
	d.asOtherUsers(t)
	ctx := context.Background()
	root, err := d.dial(t).Mint(ctx, "dir:"+shortTempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Release() })
	ids := make([]string, 2)
	for i, uid := range []uint32{alice, bob} {
		c, err := d.clientAs(t, uid)
		if err != nil {
			t.Fatal(err)
		}
		x, err := c.CapByToken(ctx, root.ID(), root.Token())
		if err != nil {
			t.Fatal(err)
		}
		g, err := c.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: abitest.WAT(t, sleepWAT), Caps: []client.Delegation{{Cap: x, Name: "data"}}, Detach: true})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = g.ID()
		g.Release()
		x.Release()
		b = c
	}
	return d, root, ids[0], ids[1], b
}

// dataCapOf returns the id of the capability guest id of c holds as "data".
func dataCapOf(t *testing.T, c *client.Client, id string) string {
	t.Helper()
	return dataCapNamed(t, c, id, "data")
}

// dataCapNamed returns the id of the capability guest id of c holds as
// name.
func dataCapNamed(t *testing.T, c *client.Client, id, name string) string {
	t.Helper()
	ctx := context.Background()
	g, err := c.Guest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	hs, err := g.Caps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.Cap.Name == name {
			return h.Cap.ID
		}
	}
	t.Fatalf("guest %s holds no %q: %+v", id, name, hs)
	return ""
}

// aliceAndBob starts a daemon and connects to it as alice and as bob.
func aliceAndBob(t *testing.T) (*testDaemon, *client.Client, *client.Client) {
	t.Helper()
	d := startDaemon(t, server.Limits{})
	d.asOtherUsers(t)
	a, err := d.clientAs(t, alice)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.clientAs(t, bob)
	if err != nil {
		t.Fatal(err)
	}
	return d, a, b
}
