package daemon

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A declared path's links are resolved when the policy is put in force.
// Someone who can write the directory above it (a guest with a writable
// grant of it, say) and puts a link in its place cannot move the next
// grant elsewhere: the grant is refused, naming where the path led then
// and leads now, until the policy is put in force again.
func TestDeclaredPathsLeadWhereTheyLedWhenThePolicyWasLoaded(t *testing.T) {
	s := newSupervisor(t)
	area, elsewhere := t.TempDir(), t.TempDir()
	reports := filepath.Join(area, "reports")
	if err := os.Mkdir(reports, 0o755); err != nil {
		t.Fatal(err)
	}
	sockDir := filepath.Join(area, "run")
	if err := os.Mkdir(sockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(sockDir, "db.sock")
	l, err := net.Listen("unix", db)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	other, err := net.Listen("unix", filepath.Join(elsewhere, "other.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	policy := mustPolicy(t, fmt.Sprintf(`
resource "dir" "reports" {
  path = "%s"
}
resource "sock" "db" {
  unix = "%s"
}
grant "all" {
  resources = ["dir:reports", "sock:db"]
}
`, reports, db))
	s.SetPolicy(policy)
	if _, err := launchSpin(t, s, nil, "dir:reports", "sock:db"); err != nil {
		t.Fatalf("grants of the paths as they were: %v", err)
	}
	// The directory and the socket's directory are moved aside, and links
	// to elsewhere put in their place.
	for _, p := range []string{reports, sockDir} {
		if err := os.Rename(p, p+".old"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(elsewhere, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("other.sock", filepath.Join(elsewhere, "db.sock")); err != nil {
		t.Fatal(err)
	}
	for _, grant := range []string{"dir:reports", "sock:db"} {
		_, err := launchSpin(t, s, nil, grant)
		if err == nil || !strings.Contains(err.Error(), "when the policy was loaded") || !strings.Contains(err.Error(), "reload the policy") {
			t.Fatalf("%s through a link put in its place: %v, want it refused as moved since the policy was loaded", grant, err)
		}
	}
	// Put in force again, the policy follows the links as they are now.
	s.SetPolicy(policy)
	if _, err := launchSpin(t, s, nil, "dir:reports"); err != nil {
		t.Fatalf("dir:reports after the policy was put in force again: %v", err)
	}
}
