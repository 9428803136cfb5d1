package caps

import (
	"os"
	"path/filepath"
	"testing"
)

// What a capability opened beneath a directory describes is where the
// kernel opened it: a ".." after a symbolic link goes up from where the
// link leads, as the lookup does, not from the link. "x/../y", x leading
// to sub/deep, described y at the top of the grant, another file, so
// that who-can named a guest for a file it cannot reach and missed it
// for the one it holds.
func TestWhatIsOpenedBeneathADirDescribesWhereTheKernelOpenedIt(t *testing.T) {
	top := makeTree(t, []string{"sub/deep", "sub/inner"}, []string{"y", "sub/y"}, map[string]string{"x": "sub/deep"})
	expectDescribed(t, openDir(t, top), map[string]string{
		"x/../y":       "file " + filepath.Join(top, "sub/y"),
		"x/../inner":   "dir " + filepath.Join(top, "sub/inner"),
		"x/../inner/.": "dir " + filepath.Join(top, "sub/inner"),
		"x/../..":      "dir " + top, // climbs back to the top, not above it
	})
}

// A directory granted by a path through a symbolic link describes what
// is opened beneath it by a path with ".." beneath that path, as it does
// every other path: "x/../y" described the file by where the link to the
// grant leads, outside the path the grant and its other capabilities
// name, so that a capability inside the grant named a place outside it.
func TestAGrantThroughALinkDescribesWhatIsOpenedByDotDotBeneathIt(t *testing.T) {
	top := makeTree(t, []string{"real/sub/deep/z"}, []string{"real/sub/y"}, map[string]string{"real/x": "sub/deep", "link": "real"})
	granted := filepath.Join(top, "link")
	d := openDir(t, granted)
	expectDescribed(t, d, map[string]string{
		"sub/y":     "file " + granted + "/sub/y",
		"x/../y":    "file " + granted + "/sub/y",
		"x/../deep": "dir " + granted + "/sub/deep",
		"x/../..":   "dir " + granted,
	})
	// A directory opened through a link describes what is beneath it by
	// the path it was opened by too.
	x, err := d.Open("x", OpenFlags{Read: true})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	expectDescribed(t, x.(*Dir), map[string]string{"z/..": "dir " + granted + "/x"})
}

// A file removed between its open and its description, by another guest
// of the grant or the host, is described by the name it was opened by:
// the kernel's name for it then ends in " (deleted)", which is another
// file's name, one a guest may make, so that who-can named the guest for
// a file it never held.
func TestAFileRemovedAsItIsOpenedIsDescribedByItsName(t *testing.T) {
	top := makeTree(t, []string{"sub/deep"}, []string{"sub/y"}, map[string]string{"x": "sub/deep"})
	d := openDir(t, top)
	d.grant.opened = func() {
		if err := os.Remove(filepath.Join(top, "sub/y")); err != nil {
			t.Error(err)
		}
	}
	expectDescribed(t, d, map[string]string{"x/../y": "file " + top + "/sub/y"})
}

// makeTree makes, in a new temporary directory, the directories dirs,
// the files files (each holding its own name) and the symbolic links
// links (name → target), and returns the directory's path.
func makeTree(t *testing.T, dirs, files []string, links map[string]string) string {
	t.Helper()
	top := t.TempDir()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(top, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		write(t, filepath.Join(top, f), f)
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(top, name)); err != nil {
			t.Fatal(err)
		}
	}
	return top
}

// expectDescribed opens each path of want beneath d for reading and
// checks what the capability to it would describe.
func expectDescribed(t *testing.T, d *Dir, want map[string]string) {
	t.Helper()
	for p, w := range want {
		r, err := d.Open(p, OpenFlags{Read: true})
		if err != nil {
			t.Errorf("Open(%q): %v", p, err)
			continue
		}
		if got := r.(Describer).Describe(); got != w {
			t.Errorf("Open(%q) describes %q, want %q", p, got, w)
		}
		r.Close()
	}
}

func TestHasDotDot(t *testing.T) {
	for p, want := range map[string]bool{"..": true, "a/..": true, "../a": true, "a/../b/": true, "a/..b": false, "..a/b": false, "a/b": false, ".": false, "": false, "a//..//": true} {
		if got := hasDotDot(p); got != want {
			t.Errorf("hasDotDot(%q) = %v, want %v", p, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { hasDotDot("a/b/c/d/e") }); n != 0 {
		t.Errorf("hasDotDot allocates %v times a call: every open asks it", n)
	}
}
