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
	top := t.TempDir()
	for _, d := range []string{"sub/deep", "sub/inner"} {
		if err := os.MkdirAll(filepath.Join(top, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"y", "sub/y"} {
		if err := os.WriteFile(filepath.Join(top, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("sub/deep", filepath.Join(top, "x")); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for p, want := range map[string]string{
		"x/../y":       "file " + filepath.Join(top, "sub/y"),
		"x/../inner":   "dir " + filepath.Join(top, "sub/inner"),
		"x/../inner/.": "dir " + filepath.Join(top, "sub/inner"),
		"x/../..":      "dir " + top, // climbs back to the top, not above it
	} {
		r, err := d.Open(p, OpenFlags{Read: true})
		if err != nil {
			t.Errorf("Open(%q): %v", p, err)
			continue
		}
		if got := r.(Describer).Describe(); got != want {
			t.Errorf("Open(%q) describes %q, want %q", p, got, want)
		}
		r.Close()
	}
}

// A directory granted by a path through a symbolic link describes what
// is opened beneath it by a path with ".." beneath that path, as it does
// every other path: "x/../y" described the file by where the link to the
// grant leads, outside the path the grant and its other capabilities
// name, so that a capability inside the grant named a place outside it.
func TestAGrantThroughALinkDescribesWhatIsOpenedByDotDotBeneathIt(t *testing.T) {
	top := t.TempDir()
	if err := os.MkdirAll(filepath.Join(top, "real/sub/deep/z"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(top, "real/sub/y"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/deep", filepath.Join(top, "real/x")); err != nil {
		t.Fatal(err)
	}
	granted := filepath.Join(top, "link")
	if err := os.Symlink("real", granted); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(granted)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for p, want := range map[string]string{
		"sub/y":     "file " + granted + "/sub/y",
		"x/../y":    "file " + granted + "/sub/y",
		"x/../deep": "dir " + granted + "/sub/deep",
		"x/../..":   "dir " + granted,
	} {
		r, err := d.Open(p, OpenFlags{Read: true})
		if err != nil {
			t.Errorf("Open(%q): %v", p, err)
			continue
		}
		if got := r.(Describer).Describe(); got != want {
			t.Errorf("Open(%q) describes %q, want %q", p, got, want)
		}
		r.Close()
	}
	// A directory opened through a link describes what is beneath it by
	// the path it was opened by too.
	x, err := d.Open("x", OpenFlags{Read: true})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	z, err := x.(*Dir).Open("z/..", OpenFlags{Read: true})
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	if got, want := z.(Describer).Describe(), "dir "+granted+"/x"; got != want {
		t.Errorf("Open(\"z/..\") beneath x describes %q, want %q", got, want)
	}
}

// A file removed between its open and its description, by another guest
// of the grant or the host, is described by the name it was opened by:
// the kernel's name for it then ends in " (deleted)", which is another
// file's name, one a guest may make, so that who-can named the guest for
// a file it never held.
func TestAFileRemovedAsItIsOpenedIsDescribedByItsName(t *testing.T) {
	top := t.TempDir()
	if err := os.MkdirAll(filepath.Join(top, "sub/deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(top, "sub/y"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/deep", filepath.Join(top, "x")); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(top)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.grant.opened = func() {
		if err := os.Remove(filepath.Join(top, "sub/y")); err != nil {
			t.Error(err)
		}
	}
	r, err := d.Open("x/../y", OpenFlags{Read: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, want := r.(Describer).Describe(), "file "+top+"/sub/y"; got != want {
		t.Errorf("Open(\"x/../y\"), y removed as it was opened, describes %q, want %q", got, want)
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
