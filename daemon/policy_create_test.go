package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A rule that gives a path read-only (read_only, a read_only resource,
// or rights without fd_write) does not let its subject have files made
// there with :create: the daemon makes the file with its own authority,
// in a directory the subject itself may not write, and a read-only grant
// of an empty file is of no use. Nothing is made. A rule that gives write
// access lets the grant make the file, as before.
func TestAReadOnlyRuleDoesNotLetACreateGrantMakeAFile(t *testing.T) {
	dir := t.TempDir()
	s := newSupervisor(t)
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
resource "file" "log" {
  path      = "%[1]s/ro/named.log"
  read_only = true
}
grant "reports" {
  resources = ["file:%[1]s/ro", "file:log"]
  read_only = true
}
grant "narrow" {
  resources = ["file:%[1]s/narrow"]
  rights    = ["fd_read", "fd_seek"]
}
grant "out" {
  resources = ["file:%[1]s/out"]
}
`, dir)))
	for _, d := range []string{"ro", "narrow", "out"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ grant, rule, made string }{
		{"file:" + dir + "/ro/new.csv:create", "reports", dir + "/ro/new.csv"},
		{"file:log:create", "reports", dir + "/ro/named.log"},
		{"file:" + dir + "/narrow/new.csv:create", "narrow", dir + "/narrow/new.csv"},
	} {
		_, err := launchSpin(t, s, nil, c.grant)
		if !IsPolicyDenial(err) || !strings.Contains(err.Error(), fmt.Sprintf("grant %q", c.rule)) || !strings.Contains(err.Error(), "a read-only grant creates no file") {
			t.Errorf("launch with --grant %s: %v, want it denied: grant %q gives the path read-only", c.grant, err, c.rule)
		}
		if _, err := os.Lstat(c.made); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("--grant %s made %s: %v", c.grant, c.made, err)
		}
	}
	if _, err := launchSpin(t, s, nil, "file:"+dir+"/out/new.log:create"); err != nil {
		t.Fatalf("a create grant under a rule that allows writing: %v", err)
	}
	if _, err := os.Stat(dir + "/out/new.log"); err != nil {
		t.Fatalf("the create grant made no file: %v", err)
	}
}
