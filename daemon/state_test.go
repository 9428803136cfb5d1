package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A state directory whose path leads through a symbolic link another user
// owns is refused before anything is made or locked: that user could
// point the link at a directory of the daemon's user (where the lock,
// cache and audit log would land) and, after the check, at one of its
// own.
func TestOpenStateRefusesALinkAnotherUserOwns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making a link another user owns needs root")
	}
	_, real, link := linkedDir(t)
	if err := os.Lchown(link, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{link, filepath.Join(link, "state")} {
		s, err := OpenState(dir)
		if err == nil {
			s.Close()
			t.Errorf("OpenState(%s) followed a link of uid 4242", dir)
			continue
		}
		if !strings.Contains(err.Error(), link) || !strings.Contains(err.Error(), "uid 4242") {
			t.Errorf("OpenState(%s): %v; want it to name the link and its owner", dir, err)
		}
	}
	if left, _ := os.ReadDir(real); len(left) != 0 {
		t.Fatalf("made %d entries through the link", len(left))
	}
}

// The state directory is used where it was checked: a link on the path
// given, changed once the daemon runs, does not move its cache or audit
// log.
func TestOpenStateKeepsTheDirectoryItChecked(t *testing.T) {
	_, real, link := linkedDir(t)
	s, err := OpenState(link)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want, err := filepath.EvalSymlinks(real)
	if err != nil {
		t.Fatal(err)
	}
	if s.Dir != want {
		t.Fatalf("state directory %s; want %s, where the link led when it was checked", s.Dir, want)
	}
	if filepath.Dir(s.CacheDir()) != want || filepath.Dir(s.AuditPath()) != want {
		t.Fatalf("cache %s, audit log %s; want both in %s", s.CacheDir(), s.AuditPath(), want)
	}
}
