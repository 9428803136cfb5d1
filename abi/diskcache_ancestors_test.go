package abi

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A cache directory is only as safe as the directories above it: whoever
// may rename an entry of one of them can move the cache aside after the
// check at start and put a directory of theirs, with machine code of
// theirs, where sandboxd then loads code from. So each directory above it
// must belong to this user or root and be writable by no other user,
// unless its sticky bit keeps others from renaming what is not theirs (as
// /tmp's does).
func TestACacheDirBeneathADirectoryAnotherUserCanChangeIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test gives a directory to another uid: run it as root")
	}
	const other = 12345
	for name, c := range map[string]struct {
		mode os.FileMode
		uid  int
		want string // "" for a runtime that starts
	}{
		"writable by others":      {mode: 0o777, want: "writable by other users"},
		"writable by its group":   {mode: 0o770, want: "writable by other users"},
		"another user's":          {mode: 0o755, uid: other, want: "belongs to uid 12345"},
		"sticky, writable by all": {mode: 0o777 | os.ModeSticky},
		"this user's":             {mode: 0o755},
	} {
		t.Run(name, func(t *testing.T) {
			above := filepath.Join(t.TempDir(), "above")
			cache := filepath.Join(above, "cache")
			if err := os.MkdirAll(cache, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(above, c.mode); err != nil {
				t.Fatal(err)
			}
			if c.uid != 0 {
				if err := os.Chown(above, c.uid, c.uid); err != nil {
					t.Fatal(err)
				}
			}
			rt, err := NewRuntime(context.Background(), Config{CacheDir: cache})
			if c.want == "" {
				if err != nil {
					t.Fatalf("a runtime over %s (%s): %v", cache, name, err)
				}
				rt.Close(context.Background())
				return
			}
			if err == nil {
				rt.Close(context.Background())
				t.Fatalf("a runtime over %s beneath a directory %s started", cache, name)
			}
			if !strings.Contains(err.Error(), above) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to name %s and say %q", err, above, c.want)
			}
		})
	}
}

// A cache directory given through a symbolic link is used where the link
// led when it was checked: pointing the link elsewhere later does not
// move it.
func TestACacheDirIsUsedWhereItsLinksLedAtStart(t *testing.T) {
	dir := t.TempDir()
	real, later := filepath.Join(dir, "real"), filepath.Join(dir, "later")
	for _, d := range []string{real, later} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("real", link); err != nil {
		t.Fatal(err)
	}
	rt, err := NewRuntime(context.Background(), Config{CacheDir: link})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	if rt.rewriteDir != filepath.Join(real, "rewritten") || rt.disk == nil || rt.disk.root != real {
		t.Errorf("a cache given as %s keeps rewrites in %s and counts the cache at %v; want both beneath %s, where the link led", link, rt.rewriteDir, rt.disk.root, real)
	}
}
