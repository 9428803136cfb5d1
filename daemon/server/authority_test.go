package server_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/daemon/server"
)

func TestAuthorityRules(t *testing.T) {
	const daemonUID, alice, bob = 500, 1000, 1001
	holders := map[string]*caps.Holder{"g-gone": {ID: "g-gone"}}
	for id, uid := range map[string]uint32{"conn-1": alice, "g-alice": alice, "conn-2": bob} {
		holders[id] = &caps.Holder{ID: id, Owner: daemon.Principal{UID: uid}}
	}
	holders["g-alice.1"] = &caps.Holder{ID: "g-alice.1", Parent: holders["g-alice"]} // a child alice's guest spawned
	as := func(uid uint32) *server.Authority {
		return server.NewAuthority(daemon.Principal{UID: uid}, daemonUID)
	}

	t.Run("host paths: root and the daemon's user only", func(t *testing.T) {
		for uid, want := range map[uint32]bool{0: true, daemonUID: true, alice: false} {
			if got := as(uid).AllowHostPaths(); got != want {
				t.Errorf("uid %d: AllowHostPaths() = %v, want %v", uid, got, want)
			}
		}
	})

	t.Run("capabilities: held or derived from one held by the principal's holders, spawned children included", func(t *testing.T) {
		k := caps.NewKernel(nil)
		mint := func(holder string) *caps.Cap {
			return k.Mint(holders[holder], caps.NewStdin(bytes.NewReader(nil)), caps.RightFDRead, 0, "in", "test")
		}
		derive := func(from *caps.Cap, holder string) *caps.Cap {
			c, err := k.Derive(from, caps.Derivation{Holder: holders[holder], Edge: caps.EdgeDelegate, Name: "in", Base: caps.RightFDRead})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		aliceConn, aliceGuest, aliceChild, bobConn, stranger := mint("conn-1"), mint("g-alice"), mint("g-alice.1"), mint("conn-2"), mint("g-gone")
		toBob := derive(aliceGuest, "conn-2") // alice's, passed on to bob
		for _, c := range []struct {
			name   string
			x      *caps.Cap
			alice  bool
			bob    bool
			daemon bool
		}{
			{"held by alice's connection", aliceConn, true, false, false},
			{"held by alice's guest", aliceGuest, true, false, false},
			{"held by a child alice's guest spawned", aliceChild, true, false, false},
			{"held by bob's connection", bobConn, false, true, false},
			{"derived from alice's for bob", toBob, true, true, false},
			{"held by an unknown holder", stranger, false, false, false},
		} {
			for uid, want := range map[uint32]bool{0: true, alice: c.alice, bob: c.bob, daemonUID: c.daemon} {
				if got := as(uid).OwnsCap(c.x); got != want {
					t.Errorf("%s: uid %d: OwnsCap = %v, want %v", c.name, uid, got, want)
				}
			}
		}
	})

	t.Run("guests: those the principal launched", func(t *testing.T) {
		sup, err := daemon.New(context.Background(), daemon.Options{CacheDir: filepath.Join(t.TempDir(), "cache")})
		if err != nil {
			t.Fatal(err)
		}
		defer sup.Close(context.Background())
		m, err := sup.Compile(context.Background(), "exit300", abitest.WAT(t, "daemon/testdata/guests/exit300.wat"))
		if err != nil {
			t.Fatal(err)
		}
		defer m.Release()
		g, err := sup.Launch(context.Background(), daemon.LaunchSpec{Module: m, Principal: daemon.Principal{UID: alice}})
		if err != nil {
			t.Fatal(err)
		}
		g.Wait()
		for uid, want := range map[uint32]bool{0: true, alice: true, bob: false, daemonUID: false} {
			if got := as(uid).OwnsGuest(g); got != want {
				t.Errorf("uid %d: OwnsGuest(guest of uid %d) = %v, want %v", uid, alice, got, want)
			}
		}
	})
}
