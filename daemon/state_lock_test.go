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
