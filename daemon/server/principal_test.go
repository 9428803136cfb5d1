package server_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/daemon/server"
	"github.com/sandboxd/sandboxd/policies"
)

// A connection acts for its user as the user database describes the
// user when it connects: one removed from a group since an earlier
// connection is no longer granted what the group was (as policy explain,
// which looks the user up afresh, says), and one added to a group is.
func TestAConnectionActsWithTheGroupsItsUserHasWhenItConnects(t *testing.T) {
	var member atomic.Bool
	member.Store(true)
	d := startDaemon(t, server.Limits{}, func(s *server.Server) {
		server.SetUserLookup(s, func(uint32) (string, []uint32) {
			if member.Load() {
				return "alice", []uint32{4242}
			}
			return "alice", nil
		})
	})
	p, err := policies.Parse("p.hcl", []byte(`
resource "chan" "jobs" {}
grant "reports" {
  resources = ["chan:jobs"]
  subject {
    gids = [4242]
  }
}
`))
	if err != nil {
		t.Fatal(err)
	}
	d.sup.SetPolicy(p)
	launch := func() error {
		c := d.dial(t)
		defer c.Close()
		g, err := c.Launch(context.Background(), client.LaunchRequest{Name: "hello.wat", Wasm: abitest.WAT(t, helloWAT), Grants: []string{"chan:jobs"}})
		if err == nil {
			defer g.Release()
			_, err = g.Wait(context.Background())
		}
		return err
	}
	if err := launch(); err != nil {
		t.Fatalf("a member of group 4242: %v", err)
	}
	member.Store(false)
	if err := launch(); err == nil || !strings.Contains(err.Error(), "denied by policy") {
		t.Fatalf("once removed from group 4242: %v, want the grant denied by policy", err)
	}
	member.Store(true)
	if err := launch(); err != nil {
		t.Fatalf("a member of group 4242 again: %v", err)
	}
}
