package server_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/daemon/server"
	"github.com/sandboxd/sandboxd/policies"
)

// A user may revoke what it granted after the connection that minted it
// has ended: the minted capability is closed then, but the copies alice
// made of it by its token live on until revoked, and bob, connecting
// again, was refused his own grant as a capability he may not use
// ("no capability … that uid:61002 may use"): only root could cut alice
// off. Alice still may not revoke it: it is bob's, not derived from hers.
func TestAUserMayRevokeWhatItGrantedOnceTheConnectionThatMintedItHasEnded(t *testing.T) {
	d, a, b := aliceAndBob(t)
	ctx := context.Background()
	p, err := policies.Parse("p.hcl", []byte(fmt.Sprintf(`
resource "dir" "reports" {
  path = %q
}
grant "reports" {
  resources = ["dir:reports"]
}
delegate "pass-reports" {
  resources = ["dir:reports"]
  max_depth = 2
}
`, shortTempDir(t))))
	if err != nil {
		t.Fatal(err)
	}
	d.sup.SetPolicy(p)
	x, err := b.Mint(ctx, "dir:reports")
	if err != nil {
		t.Fatal(err)
	}
	id := x.ID()
	y, err := a.CapByToken(ctx, id, x.Token())
	if err != nil {
		t.Fatal(err)
	}
	g, err := a.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: abitest.WAT(t, sleepWAT), Caps: []client.Delegation{{Cap: y, Name: "data"}}, Detach: true})
	y.Release()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	defer g.Kill(ctx, "test over")
	copyID := dataCapOf(t, a, g.ID())
	x.Release()
	b.Close()
	// Once the daemon has seen bob's connection end (and closed the
	// capability it minted), alice's is the one left.
	eventually(t, server.HangGuard, "the daemon has ended bob's connection", func() bool { return server.OpenConnections(d.srv) == 1 })
	if _, err := a.Revoke(ctx, id, ""); err == nil {
		t.Errorf("alice revoked bob's grant by its id")
	}
	b2, err := d.clientAs(t, bob)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := b2.Revoke(ctx, id, "")
	if err != nil {
		t.Fatalf("bob revokes the grant he minted on a connection since closed: %v", err)
	}
	if rc.Root != id || rc.Others != 1 || slices.Contains(rc.Revoked, copyID) {
		t.Errorf("bob's receipt: %+v; want %s revoked, alice's guest counted and not named, its copy not listed", rc, id)
	}
	hs, err := g.Caps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.Cap.ID == copyID && !h.Cap.Revoked {
			t.Errorf("alice's guest's copy %s of bob's grant is not revoked", copyID)
		}
	}
}
