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
	real := RealPath(top)
	for p, want := range map[string]string{
		"x/../y":       "file " + filepath.Join(real, "sub/y"),
		"x/../inner":   "dir " + filepath.Join(real, "sub/inner"),
		"x/../inner/.": "dir " + filepath.Join(real, "sub/inner"),
		"x/../..":      "dir " + real, // climbs back to the top, not above it
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
