package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A daemon whose pid could not be written in the lock (a full disk), or
// was killed between the lock's truncation and the write, left it empty:
// the second daemon's refusal then read "in use by another sandboxd (pid
// ): stop it". It says the pid is unknown, and how to find the holder.
func TestASecondDaemonOnALockWithoutAPidSaysSo(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.Truncate(filepath.Join(dir, "lock"), 0); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenState(dir)
	if err == nil {
		s2.Close()
		t.Fatal("a second OpenState of a locked directory succeeded")
	}
	if msg := err.Error(); strings.Contains(msg, "(pid )") || !strings.Contains(msg, "pid unknown") || !strings.Contains(msg, "fuser") {
		t.Fatalf("error %q; want it to say the pid is unknown and how to find the holder", msg)
	}
}

// A state directory beneath a directory another user may change is
// refused before anything is made in it: that user could move it aside
// while the daemon runs and put a cache of machine code, or an audit log,
// of theirs in its place.
func TestAStateDirectoryBeneathADirectoryOthersMayChangeIsRefused(t *testing.T) {
	above := filepath.Join(t.TempDir(), "above")
	if err := os.Mkdir(above, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(above, 0o777); err != nil {
		t.Fatal(err)
	}
	s, err := OpenState(filepath.Join(above, "state"))
	if err == nil {
		s.Close()
		t.Fatalf("a state directory beneath %s, writable by all, was opened", above)
	}
	for _, want := range []string{above, "writable by other users", "--state"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(above, "state")); err == nil {
		t.Errorf("the state directory was made beneath %s before it was refused", above)
	}
}
