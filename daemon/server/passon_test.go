package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/daemon/server"
)

// A launch that passes on a capability revoked before is refused as a
// grant (client.KindGrant, which `sandboxd launch` exits 3 with, as the
// grant verb does), saying it was revoked, when and why: whether it names
// it by id (cap:ID, with its own handle name, here the stdin of another
// guest, which the new guest's own stdin takes, or another) or passes its
// Cap object. It was refused as a request whose handle name was taken,
// or with no kind at all.
func TestLaunchPassingOnARevokedCapabilityIsAGrantFailureSayingSo(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	c := d.dial(t)
	ctx := context.Background()
	wasm := abitest.WAT(t, sleepWAT)
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: wasm, Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	defer g.Kill(ctx, "test over")
	stdin, err := g.Handle(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Release()
	if _, err := c.Revoke(ctx, stdin.ID(), "no more input"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what string
		req  client.LaunchRequest
	}{
		{"cap:ID under its own name", client.LaunchRequest{Grants: []string{"cap:" + stdin.ID()}}},
		{"cap:ID=NAME", client.LaunchRequest{Grants: []string{"cap:" + stdin.ID() + "=in"}}},
		{"a Cap object", client.LaunchRequest{Caps: []client.Delegation{{Cap: stdin, Name: "in"}}}},
	} {
		tc.req.Name, tc.req.Wasm, tc.req.Detach = "sleep_poll.wat", wasm, true
		g2, err := c.Launch(ctx, tc.req)
		if err == nil {
			g2.Kill(ctx, "test over")
			g2.Release()
			t.Errorf("%s: launched", tc.what)
			continue
		}
		kind := client.ErrorKind(-1) // err is no *client.Error
		if ce := (*client.Error)(nil); errors.As(err, &ce) {
			kind = ce.Kind
		}
		if kind != client.KindGrant || !strings.Contains(err.Error(), "revoked") || !strings.Contains(err.Error(), "no more input") {
			t.Errorf("%s: %v (kind %v); want a grant failure saying it was revoked, and why", tc.what, err, kind)
		}
	}
}
