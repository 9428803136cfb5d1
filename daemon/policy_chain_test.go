package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/caps"
)

// A copy passed on through a third guest is held to every rule on its way:
// a later hop's wider rule gives it no right an earlier hop took away,
// its depth counts every hop, and the copies it makes count against the
// fan-out of the grant they all derive from.
func TestADelegationThroughAThirdGuestGetsNoMoreThanItsGiverHolds(t *testing.T) {
	s := newSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
grant "data" {
  resources = ["dir:%[1]s"]
}
delegate "src-to-mid" {
  resources  = ["dir:%[1]s"]
  max_depth  = 1
  max_copies = 2
  rights     = ["file_open", "fd_read"]
  module {
    labels = { role = "src" }
  }
}
delegate "anyone-on" {
  resources = ["dir:%[2]s"]
  max_depth = 2
}
`, dir, filepath.Dir(dir))))
	src, err := launchSpin(t, s, map[string]string{"role": "src"}, "dir:"+dir+"=data")
	if err != nil {
		t.Fatal(err)
	}
	mid, err := launchSpin(t, s, map[string]string{"role": "mid"})
	if err != nil {
		t.Fatal(err)
	}
	end, err := launchSpin(t, s, map[string]string{"role": "end"})
	if err != nil {
		t.Fatal(err)
	}
	granted := src.Handles()[3].Cap
	first, err := mid.SendCap(context.Background(), granted, "data")
	if err != nil {
		t.Fatalf("src to mid: %v", err)
	}
	second, err := end.SendCap(context.Background(), first, "data")
	if err != nil {
		t.Fatalf("mid to end: %v", err)
	}
	narrow := caps.RightFileOpen | caps.RightFDRead
	if b, i := second.Rights(); b&^narrow != 0 || i&^narrow != 0 {
		t.Fatalf("the copy passed on by mid holds %v / %v, beyond the %v src-to-mid left", b, i, narrow)
	}
	if second.Depth() != 2 {
		t.Fatalf("depth %d, want 2", second.Depth())
	}
	// The third hop is past anyone-on's max_depth.
	if _, err := mid.SendCap(context.Background(), second, "data"); !IsPolicyDenial(err) || !strings.Contains(err.Error(), "depth 3 exceeds max_depth 2") {
		t.Fatalf("a third hop: %v, want a denial naming the depth", err)
	}
	// Two copies live (mid's and end's): src may not make a third.
	if _, err := end.SendCap(context.Background(), granted, "data2"); !IsPolicyDenial(err) || !strings.Contains(err.Error(), "max_copies") {
		t.Fatalf("a third live copy: %v, want a denial naming max_copies", err)
	}
}

// A copy the delegate rule would leave no right of is refused, not made
// empty: an empty copy would count against max_copies, and leave the
// copy the rule is for unmade.
func TestADelegationTheRuleLeavesNoRightOfIsRefusedAndCountsNoCopy(t *testing.T) {
	s := newSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
grant "data" {
  resources = ["dir:%[1]s"]
}
delegate "read-one" {
  resources  = ["dir:%[1]s"]
  max_depth  = 1
  max_copies = 1
  rights     = ["file_open", "fd_read"]
}
`, dir)))
	a, err := launchSpin(t, s, nil, "dir:"+dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := launchSpin(t, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	granted := a.Handles()[3].Cap
	_, err = b.Delegate(context.Background(), Delegation{From: granted, Name: "w", Keep: caps.RightFDWrite})
	if !IsPolicyDenial(err) || !strings.Contains(err.Error(), "leaves none of the rights asked") {
		t.Fatalf("a copy keeping only fd_write: %v, want a denial saying the rule leaves none of it", err)
	}
	if _, err := b.SendCap(context.Background(), granted, "r"); err != nil {
		t.Fatalf("the one copy max_copies allows: %v", err)
	}
}
