package caps

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fsTree builds a grant directory "root" and, beside it, "outside" holding
// a secret that nothing reached through the grant may touch. It returns
// the grant's host path and the outside directory.
func fsTree(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	outside = filepath.Join(base, "outside")
	for _, d := range []string{root, outside, filepath.Join(root, "sub", "deep")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(outside, "secret"), "outside secret")
	write(t, filepath.Join(root, "file"), "inside file")
	write(t, filepath.Join(root, "sub", "file"), "sub file")
	links := map[string]string{
		"abs":          outside,                          // absolute, out
		"abs-file":     filepath.Join(outside, "secret"), // absolute, to a file
		"up":           "../outside",                     // relative, climbs out
		"chain":        "up",                             // a link to a link that climbs out
		"sub/up2":      "../../outside/secret",           // climbs out from below
		"dangling-out": "../outside/created",             // dangling, would create outside
		"in":           "sub/file",                       // stays inside
		"dirlink":      "sub",                            // directory, stays inside
		"sub/back":     "../file",                        // climbs, but stays inside
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func openDir(t *testing.T, p string) *Dir {
	t.Helper()
	d, err := OpenDir(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func wantErrno(t *testing.T, what string, err error, want Errno) {
	t.Helper()
	if got := ErrnoOf(err); got != want {
		t.Errorf("%s: %v (%v), want %v", what, got, err, want)
	}
}

func readAll(t *testing.T, r Resource) string {
	t.Helper()
	f, ok := r.(*File)
	if !ok {
		t.Fatalf("%T is not a file", r)
	}
	b, err := io.ReadAll(f.OS())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDirRefusesPathsThatLeaveIt(t *testing.T) {
	root, outside := fsTree(t)
	d := openDir(t, root)
	// Paths whose resolution leaves the grant: every operation is refused.
	escapes := []string{
		"..", "../outside/secret", "sub/../../outside/secret", "sub/deep/../../..",
		"/etc/passwd", "/", filepath.Join(outside, "secret"),
		"abs/secret", "up/secret", "chain/secret", "abs-file/x",
	}
	for _, p := range escapes {
		r, err := d.Open(p, OpenFlags{Read: true})
		if err == nil {
			r.Close()
		}
		wantErrno(t, "open "+p, err, ENOTCAPABLE)
		r, err = d.Open(p, OpenFlags{Read: true, NoFollow: true})
		if err == nil {
			r.Close()
		}
		wantErrno(t, "open without follow "+p, err, ENOTCAPABLE)
		_, err = d.StatAt(p, false)
		wantErrno(t, "lstat "+p, err, ENOTCAPABLE)
		_, err = d.Readlink(p)
		wantErrno(t, "readlink "+p, err, ENOTCAPABLE)
		wantErrno(t, "mkdir "+p+"/x", d.Mkdir(p+"/x"), ENOTCAPABLE)
		wantErrno(t, "symlink in "+p, d.Symlink("x", p+"/x"), ENOTCAPABLE)
		wantErrno(t, "unlink "+p, d.Unlink(p, false), ENOTCAPABLE)
		wantErrno(t, "rename from "+p, d.Rename(p, d, "stolen"), ENOTCAPABLE)
		wantErrno(t, "rename to "+p, d.Rename("file", d, p+"/planted"), ENOTCAPABLE)
		wantErrno(t, "link from "+p, d.Link(p, d, "stolen"), ENOTCAPABLE)
		wantErrno(t, "link to "+p, d.Link("file", d, p+"/planted"), ENOTCAPABLE)
		wantErrno(t, "set times "+p, d.LsetTimesAt(p, nil, nil), ENOTCAPABLE)
	}
	// Symbolic links that lead out, as the last component: whatever follows
	// them is refused; what acts on the link itself works (below).
	for _, p := range []string{"abs", "abs-file", "up", "chain", "sub/up2"} {
		for _, fl := range []OpenFlags{{Read: true}, {Read: true, Directory: true}, {Write: true, Create: true}} {
			r, err := d.Open(p, fl)
			if err == nil {
				r.Close()
			}
			wantErrno(t, "open "+p, err, ENOTCAPABLE)
		}
		_, err := d.StatAt(p, true)
		wantErrno(t, "stat "+p, err, ENOTCAPABLE)
		wantErrno(t, "link follow "+p, d.LinkFollow(p, d, "stolen"), ENOTCAPABLE)
		wantErrno(t, "set times "+p, d.SetTimesAt(p, nil, nil), ENOTCAPABLE)
	}
	// Creating through a dangling link that points out must not create
	// anything outside.
	r, err := d.Open("dangling-out", OpenFlags{Write: true, Create: true})
	if err == nil {
		r.Close()
	}
	wantErrno(t, "create through dangling-out", err, ENOTCAPABLE)
	if _, err := os.Lstat(filepath.Join(outside, "created")); !os.IsNotExist(err) {
		t.Fatalf("a file was created outside the grant: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "outside secret" {
		t.Fatalf("outside secret changed: %q", b)
	}
	// The escaping links themselves live inside and can be inspected and
	// removed without following them.
	for _, l := range []string{"abs", "up", "chain", "sub/up2"} {
		st, err := d.StatAt(l, false)
		if err != nil || st.Type != TypeSymlink {
			t.Errorf("lstat %s = %+v, %v", l, st, err)
		}
	}
	if err := d.Unlink("up", false); err != nil {
		t.Errorf("unlink escaping link: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "secret")); err != nil {
		t.Errorf("unlinking a link removed its target: %v", err)
	}
}

func TestDirFollowsSymlinksThatStayInside(t *testing.T) {
	root, _ := fsTree(t)
	d := openDir(t, root)
	for p, want := range map[string]string{"in": "sub file", "dirlink/file": "sub file", "sub/back": "inside file"} {
		r, err := d.Open(p, OpenFlags{Read: true})
		if err != nil {
			t.Errorf("open %s: %v", p, err)
			continue
		}
		if got := readAll(t, r); got != want {
			t.Errorf("open %s read %q, want %q", p, got, want)
		}
		r.Close()
	}
	r, err := d.Open("dirlink", OpenFlags{Read: true, Directory: true})
	if err != nil {
		t.Fatalf("open dirlink as directory: %v", err)
	}
	sub := r.(*Dir)
	defer sub.Close()
	if st, err := sub.StatAt("file", true); err != nil || st.Size != uint64(len("sub file")) {
		t.Fatalf("stat through directory reached by a link: %+v, %v", st, err)
	}
	if !sub.SameGrant(d) {
		t.Fatal("a directory opened beneath a grant must belong to the grant")
	}
}

// os.Root alone would follow a final symbolic link even when O_NOFOLLOW is
// passed: it adds O_NOFOLLOW itself and follows on ELOOP. This is why
// Dir.Open resolves the parent with os.Root and opens the last component
// with its own openat. If Go changes this, Dir may use OpenFile again.
func TestOSRootFollowsFinalSymlinkEvenWithONOFOLLOW(t *testing.T) {
	root, _ := fsTree(t)
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := r.OpenFile("in", os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		t.Fatalf("os.Root now honours O_NOFOLLOW (%v): Dir.Open could use OpenFile again", err)
	}
	f.Close()
}

func TestDirOpenWithoutFollowRefusesOnlyAFinalSymlink(t *testing.T) {
	root, _ := fsTree(t)
	d := openDir(t, root)
	for _, fl := range []OpenFlags{{Read: true, NoFollow: true}, {Read: true, NoFollow: true, Directory: true}} {
		r, err := d.Open("in", fl)
		if err == nil {
			r.Close()
			t.Fatalf("open %+v of a symlink succeeded", fl)
		}
		if e := ErrnoOf(err); e != ELOOP && e != ENOTDIR {
			t.Errorf("open %+v of a symlink: %v, want ELOOP", fl, err)
		}
	}
	r, err := d.Open("dirlink", OpenFlags{Read: true, NoFollow: true, Directory: true})
	if err == nil {
		r.Close()
		t.Fatal("open of a directory symlink without follow succeeded")
	}
	// Links before the last component are still followed.
	r, err = d.Open("dirlink/file", OpenFlags{Read: true, NoFollow: true})
	if err != nil {
		t.Fatalf("open dirlink/file without follow: %v", err)
	}
	if got := readAll(t, r); got != "sub file" {
		t.Fatalf("read %q", got)
	}
	r.Close()
	// Creating exclusively over a symlink fails rather than following it.
	r, err = d.Open("in", OpenFlags{Write: true, Create: true, Excl: true})
	if err == nil {
		r.Close()
	}
	wantErrno(t, "O_CREAT|O_EXCL over a symlink", err, EEXIST)
}

// A name that flips between a real directory inside the grant and a
// symbolic link out of it (absolute and relative) must never let a path
// through it reach the outside, whichever state each lookup sees.
func TestDirSymlinkRaceNeverEscapes(t *testing.T) {
	root, outside := fsTree(t)
	d := openDir(t, root)
	inside := filepath.Join(root, "real")
	if err := os.Mkdir(inside, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(inside, "secret"), "inside secret")
	flip := filepath.Join(root, "flip")
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		targets := []string{outside, "../outside"}
		for i := 0; !stop.Load(); i++ {
			tmp := flip + ".tmp"
			if i%2 == 0 {
				_ = os.Symlink(targets[(i/2)%2], tmp)
			} else {
				_ = os.Symlink("real", tmp)
			}
			_ = os.Rename(tmp, flip)
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()
	for i := 0; i < 3000; i++ {
		r, err := d.Open("flip/secret", OpenFlags{Read: true})
		if err == nil {
			if got := readAll(t, r); got != "inside secret" {
				t.Fatalf("read %q through a flipping link", got)
			}
			r.Close()
		} else if e := ErrnoOf(err); e != ENOTCAPABLE && e != ENOENT {
			t.Fatalf("open flip/secret: %v", err)
		}
		if r, err := d.Open("flip", OpenFlags{Read: true, Directory: true}); err == nil {
			sub := r.(*Dir)
			if st, err := sub.StatAt("secret", true); err == nil {
				if fi, _ := os.Stat(filepath.Join(outside, "secret")); fi != nil && st.Ino == fi.Sys().(*syscall.Stat_t).Ino {
					t.Fatal("a directory opened through a flipping link is outside the grant")
				}
			}
			sub.Close()
		}
		_ = d.Rename("flip/secret", d, "flip/secret")
		_ = d.Unlink("flip/nothing", false)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "secret")); err != nil || string(b) != "outside secret" {
		t.Fatalf("outside secret touched: %q, %v", b, err)
	}
}

// A last component that flips between a regular file and a symbolic link
// (to another file inside) must, when opened without follow, give either
// the file itself or ELOOP, never the link's target.
func TestDirNoFollowRaceNeverFollows(t *testing.T) {
	root, _ := fsTree(t)
	d := openDir(t, root)
	name := filepath.Join(root, "flick")
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			tmp := name + ".tmp"
			if i%2 == 0 {
				_ = os.Symlink("file", tmp)
			} else {
				_ = os.WriteFile(tmp, []byte("the real one"), 0o644)
			}
			_ = os.Rename(tmp, name)
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()
	opened := 0
	for i := 0; i < 3000; i++ {
		r, err := d.Open("flick", OpenFlags{Read: true, NoFollow: true})
		if err != nil {
			if e := ErrnoOf(err); e != ELOOP && e != ENOENT {
				t.Fatalf("open flick: %v", err)
			}
			continue
		}
		if got := readAll(t, r); got != "the real one" {
			t.Fatalf("open without follow read %q: the link was followed", got)
		}
		r.Close()
		opened++
	}
	if opened == 0 {
		t.Log("the regular file was never seen (the flipper won every time)")
	}
}

func TestDirRenameAndLinkAcrossGrantsIsEXDEV(t *testing.T) {
	base := t.TempDir()
	a, b := filepath.Join(base, "a"), filepath.Join(base, "b")
	for _, p := range []string{a, b} {
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(a, "f"), "data")
	da, db := openDir(t, a), openDir(t, b)
	wantErrno(t, "rename across grants", da.Rename("f", db, "f"), EXDEV)
	wantErrno(t, "link across grants", da.Link("f", db, "f"), EXDEV)
	// Two grants of the same host directory are still two grants.
	da2 := openDir(t, a)
	wantErrno(t, "rename between two grants of one directory", da.Rename("f", da2, "g"), EXDEV)
	if _, err := os.Stat(filepath.Join(a, "f")); err != nil {
		t.Fatal("source moved")
	}
	for _, p := range []string{filepath.Join(b, "f"), filepath.Join(a, "g")} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Fatalf("%s exists", p)
		}
	}
}

func TestDirRenameWithinAGrantAcrossSubdirectories(t *testing.T) {
	root, _ := fsTree(t)
	d := openDir(t, root)
	if err := os.Mkdir(filepath.Join(root, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	r1, err := d.Open("sub", OpenFlags{Read: true, Directory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	r2, err := d.Open("other", OpenFlags{Read: true, Directory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	sub, other := r1.(*Dir), r2.(*Dir)
	if err := sub.Rename("file", other, "moved"); err != nil {
		t.Fatalf("rename sub/file → other/moved: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "other", "moved")); err != nil || string(b) != "sub file" {
		t.Fatalf("other/moved = %q, %v", b, err)
	}
	if err := other.Link("moved", d, "hard"); err != nil {
		t.Fatalf("link other/moved → hard: %v", err)
	}
	// Handles follow the directory they opened, not its name: after the
	// host renames "other", the handle still works on the same directory.
	if err := os.Rename(filepath.Join(root, "other"), filepath.Join(root, "renamed")); err != nil {
		t.Fatal(err)
	}
	if err := other.Rename("moved", sub, "back"); err != nil {
		t.Fatalf("rename after the host moved the directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "sub", "back")); err != nil {
		t.Fatal(err)
	}
	// POSIX rename: a directory replaces an empty directory, a file over a
	// directory is EISDIR, and "file dir/" is ENOTDIR.
	if err := d.Mkdir("empty"); err != nil {
		t.Fatal(err)
	}
	if err := d.Rename("renamed", d, "empty"); err != nil {
		t.Fatalf("rename directory over an empty directory: %v", err)
	}
	wantErrno(t, "rename file over directory", d.Rename("file", d, "sub"), EISDIR)
	wantErrno(t, "rename file to name/", d.Rename("file", d, "newdir/"), ENOTDIR)
}

func TestDirUnlinkActsOnExactlyWhatItNames(t *testing.T) {
	root, _ := fsTree(t)
	d := openDir(t, root)
	wantErrno(t, "unlink a directory", d.Unlink("sub/deep", false), EISDIR)
	wantErrno(t, "rmdir a file", d.Unlink("file", true), ENOTDIR)
	wantErrno(t, "rmdir non-empty", d.Unlink("sub", true), ENOTEMPTY)
	wantErrno(t, "rmdir .", d.Unlink(".", true), EINVAL)
	wantErrno(t, "unlink file/", d.Unlink("file/", false), ENOTDIR)
	if err := d.Unlink("dirlink", false); err != nil {
		t.Fatalf("unlink a symlink to a directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "sub", "file")); err != nil {
		t.Fatal("unlinking a link touched its target")
	}
	if err := d.Unlink("sub/deep/", true); err != nil {
		t.Fatalf("rmdir sub/deep/: %v", err)
	}
	if err := d.Unlink("sub/deep/..", true); ErrnoOf(err) == ESUCCESS {
		t.Fatal("rmdir through .. removed the directory it names")
	}
}

func TestDirLinkFollowsOnlyWhenAsked(t *testing.T) {
	root, _ := fsTree(t)
	d := openDir(t, root)
	if err := d.Link("in", d, "hard-link"); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.StatAt("hard-link", false); st.Type != TypeSymlink {
		t.Fatalf("Link followed the symlink: %+v", st)
	}
	if err := d.LinkFollow("in", d, "hard-target"); err != nil {
		t.Fatal(err)
	}
	st, _ := d.StatAt("hard-target", false)
	target, _ := d.StatAt("sub/file", false)
	if st.Type != TypeRegular || st.Ino != target.Ino {
		t.Fatalf("LinkFollow made %+v, want a link to sub/file (ino %d)", st, target.Ino)
	}
}

func TestDirSetTimesFollowsOrNot(t *testing.T) {
	root, _ := fsTree(t)
	d := openDir(t, root)
	at := time.Unix(1_000_000_000, 5)
	if err := d.SetTimesAt("in", nil, &at); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.StatAt("sub/file", false); st.Mtim != at.UnixNano() {
		t.Fatalf("target mtime %d, want %d", st.Mtim, at.UnixNano())
	}
	later := at.Add(time.Hour)
	if err := d.LsetTimesAt("in", &later, &later); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.StatAt("in", false); st.Mtim != later.UnixNano() || st.Atim != later.UnixNano() {
		t.Fatalf("link times %+v", st)
	}
	if st, _ := d.StatAt("sub/file", false); st.Mtim != at.UnixNano() {
		t.Fatal("LsetTimesAt changed the target")
	}
	// nil leaves a time alone.
	if err := d.SetTimesAt("file", &at, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := d.StatAt("file", false)
	if err := d.SetTimesAt("file", nil, &later); err != nil {
		t.Fatal(err)
	}
	after, _ := d.StatAt("file", false)
	if after.Atim != before.Atim || after.Mtim != later.UnixNano() {
		t.Fatalf("before %+v after %+v", before, after)
	}
}

func TestDirReaddirListsDotsThenSortedNamesAsOneSnapshot(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{"b", "a", "c"} {
		write(t, filepath.Join(root, n), n)
	}
	if err := os.Mkdir(filepath.Join(root, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(root, "l")); err != nil {
		t.Fatal(err)
	}
	d := openDir(t, root)
	ents, err := d.ReaddirAt(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		typ  FileType
	}{{".", TypeDirectory}, {"..", TypeDirectory}, {"a", TypeRegular}, {"b", TypeRegular}, {"c", TypeRegular}, {"d", TypeDirectory}, {"l", TypeSymlink}}
	if len(ents) != len(want) {
		t.Fatalf("%d entries: %+v", len(ents), ents)
	}
	for i, w := range want {
		if ents[i].Name != w.name || ents[i].Type != w.typ {
			t.Errorf("entry %d = %+v, want %s %v", i, ents[i], w.name, w.typ)
		}
	}
	for _, e := range ents[2:] {
		st, _ := d.StatAt(e.Name, false)
		if e.Ino != st.Ino {
			t.Errorf("%s: ino %d, stat says %d", e.Name, e.Ino, st.Ino)
		}
	}
	// Resuming at a cookie continues the same snapshot even if the
	// directory changes; cookie 0 takes a new one.
	if err := os.Remove(filepath.Join(root, "a")); err != nil {
		t.Fatal(err)
	}
	rest, _ := d.ReaddirAt(3, nil)
	if len(rest) != 4 || rest[0].Name != "b" {
		t.Fatalf("resumed listing %+v", rest)
	}
	if past, _ := d.ReaddirAt(100, nil); len(past) != 0 {
		t.Fatalf("past the end: %+v", past)
	}
	fresh, _ := d.ReaddirAt(0, nil)
	if len(fresh) != len(want)-1 {
		t.Fatalf("fresh listing %+v", fresh)
	}
}

func TestDirOpenPicksTheResourceByWhatItFinds(t *testing.T) {
	root, _ := fsTree(t)
	d := openDir(t, root)
	r, err := d.Open("sub", OpenFlags{Read: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.(*Dir); !ok {
		t.Fatalf("opening a directory gave %T", r)
	}
	r.Close()
	r, err = d.Open("sub", OpenFlags{Write: true})
	if err == nil {
		r.Close()
	}
	wantErrno(t, "open a directory for writing", err, EISDIR)
	r, err = d.Open("file", OpenFlags{Read: true, Directory: true})
	if err == nil {
		r.Close()
	}
	wantErrno(t, "open a file as a directory", err, ENOTDIR)
	r, err = d.Open("new", OpenFlags{Write: true, Create: true, Append: true})
	if err != nil {
		t.Fatal(err)
	}
	f := r.(*File)
	if f.FileType() != TypeRegular || !f.Append() {
		t.Fatalf("new file: type %v append %v", f.FileType(), f.Append())
	}
	f.Close()
}

func TestCheckPath(t *testing.T) {
	for p, want := range map[string]Errno{
		"a": 0, "a/b": 0, "a/../b": 0, ".": 0, "a/..": 0, "./a//b/": 0,
		"": ENOENT, "/a": ENOTCAPABLE, "a\x00b": EINVAL,
		// ".." is left to the resolution, which knows where it leads.
		"..": 0, "a/../..": 0, "../a": 0,
		strings.Repeat("a/", 2047) + "a": 0, strings.Repeat("a/", 2048): ENAMETOOLONG,
	} {
		if got := ErrnoOf(CheckPath(p)); got != want {
			t.Errorf("CheckPath(%q) = %v, want %v", p, got, want)
		}
	}
}

// A name ending in "/" names a directory, so nothing that makes a file
// may make one under it: open with Create is EISDIR, as open(2) says
// whether or not the name exists and whether or not a final link is
// followed, and a hard link, never a directory, is ENOENT when the name is
// missing and EEXIST when it exists, as link(2) says. Both used to drop
// the slash and make the regular file "new" or "h".
func TestDirNameEndingInSlashMakesNoFile(t *testing.T) {
	root, _ := fsTree(t)
	d := openDir(t, root)
	for _, noFollow := range []bool{true, false} {
		_, err := d.Open("new/", OpenFlags{Read: true, Write: true, Create: true, NoFollow: noFollow})
		wantErrno(t, "Open new/ with Create", err, EISDIR)
		_, err = d.Open("sub/", OpenFlags{Read: true, Create: true, NoFollow: noFollow})
		wantErrno(t, "Open sub/ with Create", err, EISDIR)
	}
	wantErrno(t, "Link file to h/", d.Link("file", d, "h/"), ENOENT)
	wantErrno(t, "LinkFollow in to h/", d.LinkFollow("in", d, "h/"), ENOENT)
	wantErrno(t, "Link file to sub/", d.Link("file", d, "sub/"), EEXIST)
	for _, name := range []string{"new", "h"} {
		if _, err := os.Lstat(filepath.Join(root, name)); !os.IsNotExist(err) {
			t.Errorf("%s was made (%v)", name, err)
		}
	}
}

// SetTimesAt and LinkFollow follow a final link themselves. They used to
// resolve the whole path anew from the top of the grant for each of its
// components, at a cost that grew with the square of the depth: four
// links, each going 2000 directories further down, took minutes of the
// daemon's time in one call that nothing could end. Now each link
// followed costs one resolution by os.Root, and they follow as many as
// os.Root does (8) before ELOOP, as StatAt and Open do.
func TestDirFollowingDeepLinksCostsOneResolutionEach(t *testing.T) {
	root := t.TempDir()
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	seg := strings.TrimSuffix(strings.Repeat("a/", 2000), "/")
	for k := 1; k <= 4; k++ {
		next := "f"
		if k < 4 {
			next = fmt.Sprintf("l%d", k+1)
		}
		if err := r.MkdirAll(seg, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := r.Symlink(seg+"/"+next, fmt.Sprintf("l%d", k)); err != nil {
			t.Fatal(err)
		}
		sub, err := r.OpenRoot(seg)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		r = sub
	}
	f, err := r.Create("f")
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	d := openDir(t, root)
	at := time.Unix(1_000_000_000, 0)
	within := func(what string, op func() error) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- op() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("%s did not return within 60 s", what)
		}
	}
	within("SetTimesAt l1", func() error { return d.SetTimesAt("l1", nil, &at) })
	within("LinkFollow l1", func() error { return d.LinkFollow("l1", d, "hard") })
	if st, _ := d.StatAt("hard", false); st.Type != TypeRegular || st.Mtim != at.UnixNano() {
		t.Fatalf("hard is %+v, want the deepest f with mtime %d", st, at.UnixNano())
	}

	// Nine links in a row: ELOOP for every call that follows them.
	for i := 1; i <= 9; i++ {
		next := "hard"
		if i < 9 {
			next = fmt.Sprintf("c%d", i+1)
		}
		if err := os.Symlink(next, filepath.Join(root, fmt.Sprintf("c%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	_, err = d.StatAt("c1", true)
	wantErrno(t, "StatAt through 9 links", err, ELOOP)
	wantErrno(t, "SetTimesAt through 9 links", d.SetTimesAt("c1", nil, &at), ELOOP)
	wantErrno(t, "LinkFollow through 9 links", d.LinkFollow("c1", d, "hard2"), ELOOP)
	if err := d.SetTimesAt("c2", nil, &at); err != nil {
		t.Errorf("SetTimesAt through 8 links: %v", err)
	}
}

// The listings directory handles keep for fd_readdir hold host memory in
// proportion to their directories, one for each handle read: together
// they are bounded for the whole process, charged or not, as byte objects
// are, so that a guest with nothing but a read-only grant of a large
// directory cannot make the daemon hold it over and over through every
// handle it may open. A fresh listing past the bound is ENOMEM; closing a
// handle gives its listing's room back.
func TestDirListingsAreBoundedForTheProcess(t *testing.T) {
	dir := t.TempDir()
	for i := range 100 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file-%03d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d1, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d1.Close()
	budget := &byteBudget{limit: 6 << 10} // one listing of the directory (about 4 KiB) fits, not two
	d1.grant.listings = budget
	r, err := d1.Open(".", OpenFlags{Directory: true})
	if err != nil {
		t.Fatal(err)
	}
	d2 := r.(*Dir)
	defer d2.Close()
	if _, err := d1.ReaddirAt(0, nil); err != nil {
		t.Fatal(err)
	}
	if budget.used.Load() == 0 {
		t.Fatal("a listing kept was not counted")
	}
	if _, err := d2.ReaddirAt(0, nil); ErrnoOf(err) != ENOMEM {
		t.Fatalf("a second listing past the process's bound: %v, want ENOMEM", err)
	}
	d1.Close()
	if n := budget.used.Load(); n != 0 {
		t.Fatalf("%d bytes still counted once the listing's handle is closed", n)
	}
	if _, err := d2.ReaddirAt(0, nil); err != nil {
		t.Fatalf("a listing once the other's room was given back: %v", err)
	}
}

// A listing its charge or the process's bound refuses is refused as it is
// read, batch by batch: it used to be read whole, every name of the
// directory in host memory, and only then weighed, so that each guest
// listing a large directory past its budget made the daemon allocate as
// much as the directory, outside every budget, at every call.
func TestDirRefusedListingCostsLittleMoreThanItsBudget(t *testing.T) {
	dir := t.TempDir()
	pad := strings.Repeat("n", 100)
	const files = 20000 // about 2.6 MB listed: names and entries
	for i := range files {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%05d", pad, i)))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	d := openDir(t, dir)
	d.grant.listings = &byteBudget{limit: MaxListingMemory}
	charge := &testCharge{limit: 4 << 10}
	least := uint64(math.MaxUint64)
	for range 5 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := d.ReaddirAt(0, charge)
		runtime.ReadMemStats(&after)
		wantErrno(t, "a listing past its charge", err, ENOMEM)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	if least > 256<<10 {
		t.Fatalf("a refused listing allocated %d bytes, want at most 256 KiB for a 4 KiB budget", least)
	}
	if n := charge.inUse(); n != 0 {
		t.Fatalf("%d bytes still charged after the listing was refused", n)
	}
	if n := d.grant.listings.used.Load(); n != 0 {
		t.Fatalf("%d bytes still counted against the process's bound", n)
	}
}

// While the host swaps a directory beneath the grant with a link that
// leads out of it (renameat2 with RENAME_EXCHANGE, the classic race on a
// path checked and then used), no operation through the grant reaches
// what is outside, however the swaps fall: what names "x/secret", which
// exists only outside, is never opened, stated, read as a link, linked,
// renamed, removed or touched, and nothing is made outside. Also for a
// ".." after the swapped name, which a walk that trusted the directory it
// reached would take above the grant.
func TestDirSwappedForALinkOutNeverLeadsOut(t *testing.T) {
	root, outside := fsTree(t)
	d := openDir(t, root)
	rootfd := makeSwappableDir(t, root)
	defer syscall.Close(rootfd)
	before, err := os.Stat(filepath.Join(outside, "secret"))
	if err != nil {
		t.Fatal(err)
	}
	epoch := time.Unix(1, 0)
	stopSwaps, swapped := swapDirAndLinkOut(t, rootfd)
	// At least 2000 rounds, and on until 2000 swaps were made while they
	// ran: on a busy machine the swapper may barely have run in the
	// first 2000, and the test must not pass without the race it tries.
	for i := 0; i < 2000 || swapped.Load() < 2000; i++ {
		secret := []string{"x/secret", "x/inner/../secret", "x/./secret"}[i%3]
		openThroughSwappedDir(t, d, secret)
		statThroughSwappedDir(t, d, secret)
		changeThroughSwappedDir(t, d, secret, &epoch)
		if t.Failed() {
			break
		}
	}
	stopSwaps()
	outsideIsUntouched(t, outside, before)
}

// makeSwappableDir makes, beneath root, the directory x (holding inner)
// and swap, a link to the directory beside root, and opens root.
func makeSwappableDir(t *testing.T, root string) int {
	t.Helper()
	if err := os.Mkdir(filepath.Join(root, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "x", "inner"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside", filepath.Join(root, "swap")); err != nil {
		t.Fatal(err)
	}
	rootfd, err := syscall.Open(root, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return rootfd
}

// swapDirAndLinkOut swaps x and swap beneath rootfd, over and over, until
// the function it returns is called; that function returns once the
// swapping has stopped. swapped counts the swaps made.
func swapDirAndLinkOut(t *testing.T, rootfd int) (stop func(), swapped *atomic.Int64) {
	done := make(chan struct{})
	swapped = new(atomic.Int64)
	var swaps sync.WaitGroup
	swaps.Add(1)
	go func() {
		defer swaps.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := unix.Renameat2(rootfd, "x", rootfd, "swap", unix.RENAME_EXCHANGE); err != nil {
				t.Errorf("swapping x: %v", err)
				return
			}
			swapped.Add(1)
		}
	}()
	return func() {
		close(done)
		swaps.Wait()
	}, swapped
}

// openThroughSwappedDir opens secret, following a final link and not,
// and creates x/new: the first two must fail.
func openThroughSwappedDir(t *testing.T, d *Dir, secret string) {
	if r, err := d.Open(secret, OpenFlags{Read: true}); err == nil {
		r.Close()
		t.Errorf("opened %s, which is outside", secret)
	}
	if r, err := d.Open(secret, OpenFlags{Read: true, NoFollow: true}); err == nil {
		r.Close()
		t.Errorf("opened %s without following, which is outside", secret)
	}
	if r, err := d.Open("x/new", OpenFlags{Write: true, Create: true}); err == nil {
		r.Close()
	}
}

// statThroughSwappedDir stats secret, following a final link and not, and
// reads x/secret as a link: all must fail.
func statThroughSwappedDir(t *testing.T, d *Dir, secret string) {
	for _, follow := range []bool{false, true} {
		if _, err := d.StatAt(secret, follow); err == nil {
			t.Errorf("stat of %s (follow %v) succeeded", secret, follow)
		}
	}
	if _, err := d.Readlink("x/secret"); err == nil {
		t.Errorf("readlink of x/secret succeeded")
	}
}

// changeThroughSwappedDir makes names beneath x, and links, renames,
// unlinks and sets the times of secret, which must all fail.
func changeThroughSwappedDir(t *testing.T, d *Dir, secret string, epoch *time.Time) {
	_ = d.Mkdir("x/made")
	_ = d.Symlink("t", "x/link")
	if err := d.Link(secret, d, "hard"); err == nil {
		t.Errorf("link of %s succeeded", secret)
	}
	if err := d.LinkFollow(secret, d, "hard"); err == nil {
		t.Errorf("link following %s succeeded", secret)
	}
	if err := d.Rename(secret, d, "stolen"); err == nil {
		t.Errorf("rename of %s succeeded", secret)
	}
	_ = d.Rename("file", d, "x/planted")
	_ = d.Rename("x/planted", d, "file")
	if err := d.Unlink(secret, false); err == nil {
		t.Errorf("unlink of %s succeeded", secret)
	}
	// Times to set, not nil: utimensat(2) with both omitted
	// returns at once without looking the path up.
	if err := d.SetTimesAt(secret, epoch, epoch); err == nil {
		t.Errorf("set times of %s succeeded", secret)
	}
	if err := d.LsetTimesAt(secret, epoch, epoch); err == nil {
		t.Errorf("set times of %s without following succeeded", secret)
	}
}

// outsideIsUntouched checks that outside holds its secret alone, with the
// contents it was made with and the times it had before.
func outsideIsUntouched(t *testing.T, outside string, before os.FileInfo) {
	t.Helper()
	ents, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "secret" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("outside holds %v, want only its secret", names)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "outside secret" {
		t.Fatalf("outside secret changed: %q", b)
	}
	if after, err := os.Stat(filepath.Join(outside, "secret")); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("outside secret's times changed: %v", err)
	}
}
