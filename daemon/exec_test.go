package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/audit"
)

// After proc_exec a guest is judged as the program it runs, not the one it
// was launched as: a delegate rule that lets the launched module receive
// a capability, by its hash or by the labels its launcher gave it, no
// longer lets the program it execs receive one; and the guest's holder,
// its Module and the audit log name the new program.
func TestAfterExecAGuestIsJudgedAsTheProgramItRuns(t *testing.T) {
	for _, by := range []string{"sha256", "labels"} {
		t.Run("by "+by, func(t *testing.T) { testJudgedAfterExec(t, by) })
	}
}

func testJudgedAfterExec(t *testing.T, by string) {
	s, path := newAuditedSupervisor(t)
	dir := t.TempDir()
	spin := abitest.WAT(t, guests+"spin.wat")
	next := filepath.Join(t.TempDir(), "spin.wasm")
	if err := os.WriteFile(next, spin, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spin)
	spinHash := hex.EncodeToString(sum[:])
	execMod := compile(t, s, guests+"exec_fd3.wat")
	to := fmt.Sprintf("sha256 = [%q]", execMod.HashString())
	if by == "labels" {
		to = `labels = { role = "trusted" }`
	}
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
grant "all" {
  resources = ["dir:%s", "file:%s"]
}
delegate "to-the-exec-guest" {
  resources = ["dir:%s"]
  max_depth = 1
  to {
    %s
  }
}
`, dir, next, dir, to)))
	a, err := launchSpin(t, s, nil, "dir:"+dir+"=data")
	if err != nil {
		t.Fatal(err)
	}
	granted := a.Handles()[3].Cap
	stdin, start := io.Pipe()
	defer start.Close()
	e, err := s.Launch(context.Background(), LaunchSpec{
		Principal: alice, Module: execMod, Grants: []Grant{mustGrant(t, "file:"+next)},
		Labels: map[string]string{"role": "trusted"}, Stdin: stdin, SupervisorChannel: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Kill("test over"); <-e.Done() }()
	if _, err := e.SendCap(context.Background(), granted, "before"); err != nil {
		t.Fatalf("delegation to the guest as launched (%s): %v", execMod.Name, err)
	}
	if _, err := start.Write([]byte{1}); err != nil { // it execs spin.wasm
		t.Fatal(err)
	}
	for deadline := time.Now().Add(HangGuard); e.Module().HashString() != spinHash; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the guest still runs %s, not the program it execs", e.Module().Name)
		}
	}
	if got := e.holder.Module(); got != spinHash {
		t.Fatalf("the guest's holder names module %s after exec, want %s", got, spinHash)
	}
	if _, err := e.SendCap(context.Background(), granted, "after"); !IsPolicyDenial(err) {
		t.Fatalf("delegation to the guest after it execs another program: %v; want the policy's denial", err)
	}
	g, err := audit.Replay(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if h := g.Holder(e.ID()); h.SHA256 != spinHash {
		t.Fatalf("the audit log's %s runs %s (%s) after exec, want %s", e.ID(), h.Module, h.SHA256, spinHash)
	}
}

// A guest whose proc_exec is refused (here: after the shutdown record,
// which names the programs running) is still judged as the program it
// ran, which is all it ever ran: its holder names the module it was
// launched with. The holder named the program it was refused.
func TestARefusedExecLeavesTheGuestNamedAsTheProgramItRan(t *testing.T) {
	s, _ := newAuditedSupervisor(t)
	next := filepath.Join(t.TempDir(), "hello.wasm") // exits 7
	if err := os.WriteFile(next, abitest.WAT(t, "abi/testdata/guests/hello.wat"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := compile(t, s, guests+"exec_fd3.wat")
	defer m.Release()
	stdin, start := io.Pipe()
	defer start.Close()
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Grants: []Grant{mustGrant(t, "file:"+next)}, Stdin: stdin})
	if err != nil {
		t.Fatal(err)
	}
	if running := s.Abandon(); running != 1 {
		t.Fatalf("Abandon: %d guests running, want 1", running)
	}
	if _, err := start.Write([]byte{1}); err != nil { // it execs hello.wasm
		t.Fatal(err)
	}
	if st := waitExit(t, g, HangGuard); st.Code == 7 || st.Killed == "" {
		t.Fatalf("status %+v: want the guest killed before the program it execs runs (that one exits 7)", st)
	}
	if got, want := g.holder.Module(), m.HashString(); got != want || g.Module() != m {
		t.Errorf("after its refused exec the guest's holder names module %s and it runs %s; want %s, %s's", got, g.Module().Name, want, m.Name)
	}
}
