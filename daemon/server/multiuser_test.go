package server_test

import (
	"context"
	"strings"
	"testing"

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
	d := startDaemon(t, server.Limits{})
	d.asOtherUsers(t)
	ctx := context.Background()
	a, err := d.clientAs(t, alice)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.clientAs(t, bob)
	if err != nil {
		t.Fatal(err)
	}
	g, err := a.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: abitest.WAT(t, sleepWAT), Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	hs, err := g.Caps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stdin := hs[0].Cap.ID
	if _, err := a.Revoke(ctx, stdin, "no more input"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Kill(ctx, "test over"); err != nil {
		t.Fatal(err)
	}
	if err := a.Forget(ctx, g.ID()); err != nil {
		t.Fatal(err)
	}
	_, err = a.Revoke(ctx, stdin, "")
	if err == nil || !strings.Contains(err.Error(), "already revoked") || !strings.Contains(err.Error(), "no more input") {
		t.Errorf("alice revokes her forgotten guest's revoked stdin again: %v; want it refused as revoked, saying why", err)
	}
	_, err = b.Revoke(ctx, stdin, "")
	if err == nil || strings.Contains(err.Error(), "revoked") || !strings.Contains(err.Error(), "no capability "+stdin) {
		t.Errorf("bob revokes alice's revoked capability: %v; want it refused as unknown", err)
	}
}
