package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// sendDirWAT sends its fd 3 (a dir grant) on its fd 4 (chan:pipe) with
// native sock_send and exits with the call's errno.
const sendDirWAT = `(module
  (import "sandboxd" "sock_send" (func $send (param i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "x")
  (func (export "_start")
    (i32.store (i32.const 100) (i32.const 200)) ;; one iovec: "x"
    (i32.store (i32.const 104) (i32.const 1))
    (i32.store (i32.const 300) (i32.const 3))   ;; one fd: 3
    (i32.store (i32.const 0) (i32.const 100))   ;; send_in: iovs, iovs_len
    (i32.store (i32.const 4) (i32.const 1))
    (i32.store (i32.const 8) (i32.const 300))   ;; fds, fds_len
    (i32.store (i32.const 12) (i32.const 1))
    (i32.store16 (i32.const 16) (i32.const 0))  ;; flags
    (call $exit (call $send (i32.const 4) (i32.const 0) (i32.const 64)))))`

// sendDirOnChannel launches sendDirWAT under a policy that lets it pass
// its directory on, plus extra rules (DIR in them is the directory's
// path), and returns the errno of its send.
func sendDirOnChannel(t *testing.T, extra string) uint32 {
	t.Helper()
	s := newSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
resource "chan" "pipe" {}
grant "all" {
  resources = ["dir:%[1]s", "chan:pipe"]
}
delegate "pass" {
  resources = ["dir:%[1]s"]
  max_depth = 3
}
%[2]s`, dir, strings.ReplaceAll(extra, "DIR", dir))))
	m, err := s.Compile(context.Background(), "send.wat", abitest.WATText(t, sendDirWAT))
	if err != nil {
		t.Fatal(err)
	}
	spec := LaunchSpec{Principal: Principal{UID: 1000, GID: 1000, Name: "alice"}, Module: m}
	spec.Grants = []Grant{mustGrant(t, "dir:"+dir+"=data"), mustGrant(t, "chan:pipe")}
	g, err := s.Launch(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return exitCode(t, g)
}

// Whoever reads a channel receives what is sent on it, so a deny rule
// about recipients applies to every channel send of what it covers: the
// reader could be the module it names.
func TestADenyRuleWithARecipientStopsChannelSends(t *testing.T) {
	if e := sendDirOnChannel(t, ""); e != 0 {
		t.Fatalf("send without the deny rule: errno %d, want 0", e)
	}
	e := sendDirOnChannel(t, `
deny "never-to-low-trust" {
  resources = ["dir:DIR"]
  on        = ["delegate"]
  to {
    labels = { trust = "low" }
  }
}`)
	if e != uint32(caps.ENOTCAPABLE) {
		t.Fatalf("send with a deny rule naming recipients: errno %d, want ENOTCAPABLE (%d)", e, caps.ENOTCAPABLE)
	}
}
