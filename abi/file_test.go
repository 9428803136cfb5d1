package abi_test

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// fsGuest returns the wasm of abi/testdata/guests/fs/<name>.c.
func fsGuest(t testing.TB, name string) []byte {
	return abitest.C(t, "abi/testdata/guests/fs/"+name+".c")
}

// runFS runs an fs guest with tbl and fails the test with the guest's
// report unless it exits 0.
func (h *harness) runFS(t *testing.T, name string, tbl *caps.Table) {
	t.Helper()
	st := h.run(t, fsGuest(t, name), tbl)
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("%s: %+v\nstdout:\n%s\nstderr:\n%s", name, st, h.stdout.String(), h.stderr.String())
	}
}

// node is what a tree snapshot records of one path.
type node struct {
	Mode    fs.FileMode
	Size    int64
	Mtime   time.Time
	Content string
	Link    string
}

// snapshot records every path beneath root without following links.
func snapshot(t *testing.T, root string) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		n := node{Mode: fi.Mode(), Size: fi.Size(), Mtime: fi.ModTime()}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n.Content = string(b)
		case fi.Mode()&fs.ModeSymlink != 0:
			n.Link, _ = os.Readlink(p)
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mkfile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mklink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func TestGuestWithoutGrantsReachesNoFiles(t *testing.T) {
	h := newHarness(t)
	h.runFS(t, "nogrant", h.table("g-nogrant"))
}

func TestReadOnlyGrantAllowsReadsAndRefusesEveryChange(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "file"), "hello, read-only\n")
	mkfile(t, filepath.Join(root, "sub", "inner"), "inner")
	mklink(t, "file", filepath.Join(root, "link"))
	before := snapshot(t, root)

	h := newHarness(t)
	tbl := h.table("g-ro")
	h.grantDir(t, tbl, root, "data", true) // fd 3
	h.runFS(t, "readonly", tbl)
	if after := snapshot(t, root); !reflect.DeepEqual(before, after) {
		t.Fatalf("a read-only grant changed the host tree:\nbefore %v\nafter  %v", before, after)
	}
}

func TestPathsThatLeaveTheGrantAreRefused(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	mkfile(t, filepath.Join(outside, "secret"), "outside secret")
	mkfile(t, filepath.Join(root, "file"), "inside file")
	mkfile(t, filepath.Join(root, "sub", "file"), "sub file")
	for name, target := range map[string]string{
		"abs": outside, "up": "../outside", "upfile": "../outside/secret", "chain": "up",
		"dangling": "../outside/created", "in": "sub/file", "dirlink": "sub",
	} {
		mklink(t, target, filepath.Join(root, name))
	}
	outsideBefore := snapshot(t, outside)
	rootBefore := snapshot(t, root)

	h := newHarness(t)
	tbl := h.table("g-escape")
	h.grantDir(t, tbl, root, "data", false)
	h.runFS(t, "escape", tbl)
	if after := snapshot(t, outside); !reflect.DeepEqual(outsideBefore, after) {
		t.Fatalf("the directory outside the grant changed:\nbefore %v\nafter  %v", outsideBefore, after)
	}
	// The guest made and removed a link of its own, which touched the
	// directory's own times; nothing else may differ.
	after := snapshot(t, root)
	delete(after, ".")
	delete(rootBefore, ".")
	if !reflect.DeepEqual(rootBefore, after) {
		t.Fatalf("refused calls changed the grant:\nbefore %v\nafter  %v", rootBefore, after)
	}
}

func TestReadWriteGrantFileLifecycle(t *testing.T) {
	root := t.TempDir()
	h := newHarness(t)
	tbl := h.table("g-rw")
	h.grantDir(t, tbl, root, "data", false)
	h.runFS(t, "lifecycle", tbl)

	got := snapshot(t, root)
	var names []string
	for n := range got {
		names = append(names, n)
	}
	want := []string{".", "f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "log", "moved", "t.txt"}
	if len(names) != len(want) {
		t.Fatalf("host directory holds %v, want %v", names, want)
	}
	for _, n := range want {
		if _, ok := got[n]; !ok {
			t.Fatalf("host directory lacks %s: %v", n, names)
		}
	}
	if c := got["t.txt"].Content; c != "HELLO" {
		t.Errorf("t.txt = %q, want the truncated, pwritten file", c)
	}
	if c := got["moved"].Content; c != "made in d" {
		t.Errorf("moved = %q", c)
	}
	if got["log"].Size != 0 {
		t.Errorf("log not truncated: %+v", got["log"])
	}
	if m := got["t.txt"].Mtime; !m.Equal(time.Unix(1_300_000_000, 0)) {
		t.Errorf("t.txt mtime %v, want the one the guest set through the symlink", m)
	}
}

func TestNarrowedRightsStayNarrowBeneath(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "data"), "0123456789")
	mkfile(t, filepath.Join(root, "sub", "inner"), "inner")
	before := snapshot(t, root)
	h := newHarness(t)
	tbl := h.table("g-narrow")
	grant := h.grantDir(t, tbl, root, "data", false)
	h.runFS(t, "narrow", tbl)
	if after := snapshot(t, root); !reflect.DeepEqual(before, after) {
		t.Fatalf("host tree changed: %v", after)
	}
	// Narrowing is recorded on the capability itself, for the graph.
	if b, i := grant.Rights(); b != caps.RightFileStatGet || i != 0 {
		t.Fatalf("grant rights after the guest narrowed them: %v / %v", b, i)
	}
}

func TestBadPointersAreEFAULTNotAHostPanic(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "file"), "x")
	h := newHarness(t)
	tbl := h.table("g-bad")
	h.grantDir(t, tbl, root, "data", false)
	h.runFS(t, "badptr", tbl)
	if !strings.HasSuffix(h.stdout.String(), "survived\n") {
		t.Fatalf("stdout %q", h.stdout.String())
	}
	if len(tbl.Entries()) != 0 {
		t.Fatalf("handles left after exit: %v", tbl.Entries())
	}
}

func TestRevokingAGrantCutsOffEverythingOpenedBeneathIt(t *testing.T) {
	root := t.TempDir()
	mkfile(t, filepath.Join(root, "file"), "file contents")
	mkfile(t, filepath.Join(root, "sub", "inner"), "inner")
	h := newHarness(t)
	holder := &caps.Holder{ID: "g-revoke"}
	tbl := caps.NewTable(h.k, holder, 0)
	stdinR, stdinW := io.Pipe()
	out := abitest.NewWatcher("ready\n")
	for _, s := range []*caps.Stdio{caps.NewStdin(stdinR), caps.NewStdout("stdout", out), caps.NewStdout("stderr", io.Discard)} {
		if _, err := tbl.Insert(h.k.Mint(holder, s, caps.RightsTTYBase, 0, s.Describe(), "test")); err != nil {
			t.Fatal(err)
		}
	}
	grant := h.grantDir(t, tbl, root, "data", false)
	g := h.start(t, context.Background(), fsGuest(t, "revoke"), tbl, nil)
	select {
	case <-out.Seen():
	case <-g.Done():
		t.Fatalf("guest ended early: %+v\n%s", g.Status(), out.String())
	case <-time.After(hangGuard):
		g.Kill("test timeout")
		t.Fatalf("guest not ready within %v", hangGuard)
	}
	rc := h.k.Revoke(grant, "test")
	// The grant, the file, its dup and the subdirectory.
	if len(rc.Revoked) != 4 {
		t.Errorf("revocation cut off %d capabilities, want 4: %v", len(rc.Revoked), rc.Revoked)
	}
	if _, err := stdinW.Write([]byte("revoked")); err != nil {
		t.Fatal(err)
	}
	st := g.Wait()
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("%+v\n%s", st, out.String())
	}
}
