package daemon

import (
	"fmt"
	"strings"
	"testing"
)

// A resource declared through a symbolic link is opened where the link
// led when the policy was put in force, and a deny rule covers it there:
// dir:current, declared at a link to srv/private, is refused under a
// deny of srv/private, as an inline grant of the link is, and so is a
// sock resource whose socket file the link leads beneath it. Nothing is
// opened. A resource declared through a link elsewhere is granted.
func TestADenyCoversAResourceDeclaredThroughALinkToWhatItDenies(t *testing.T) {
	dir := denyTree(t)
	s := newSupervisor(t)
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
resource "dir" "current" {
  path = "%[1]s/link"
}
resource "dir" "public" {
  path = "%[1]s/srv/public"
}
resource "sock" "db" {
  unix = "%[1]s/link/db.sock"
}
grant "all" {
  resources = ["dir:*", "sock:*", "dir:/"]
}
deny "private" {
  resources = ["dir:%[1]s/srv/private"]
}
`, dir)))
	for _, grant := range []string{"dir:current", "sock:db", "dir:" + dir + "/link"} {
		_, err := launchSpin(t, s, nil, grant)
		if !IsPolicyDenial(err) || !strings.Contains(err.Error(), `denied by deny "private"`) {
			t.Errorf("launch with --grant %s: %v, want it denied by deny \"private\"", grant, err)
		}
	}
	if fds := openFDsUnder(t, dir); len(fds) != 0 {
		t.Fatalf("denied launches left %v open", fds)
	}
	if _, err := launchSpin(t, s, nil, "dir:public"); err != nil {
		t.Fatalf("a resource beside the denied directory: %v", err)
	}
}
