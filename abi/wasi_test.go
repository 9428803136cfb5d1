package abi_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// grantDir puts a directory grant in tbl, named as the guest will see it.
func (h *harness) grantDir(t testing.TB, tbl *caps.Table, host, name string, readOnly bool) *caps.Cap {
	t.Helper()
	d, err := caps.OpenDir(host)
	if err != nil {
		t.Fatal(err)
	}
	b, i := caps.GrantRights(caps.KindDirectory, readOnly)
	c := h.k.Mint(tbl.Holder(), d, b, i, name, "test grant")
	if _, err := tbl.Insert(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// start compiles wasm and starts it with tbl, args and env.
func (h *harness) start(t testing.TB, ctx context.Context, wasm []byte, tbl *caps.Table, env []string, args ...string) *abi.Guest {
	t.Helper()
	m, err := h.rt.Compile(context.Background(), "guest", wasm)
	if err != nil {
		t.Fatal(err)
	}
	g := h.rt.NewGuest(m, abi.GuestConfig{ID: tbl.Holder().ID, Table: tbl, Args: append([]string{"guest"}, args...), Env: env})
	g.Start(ctx)
	return g
}

func writeFile(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fsopsWant is what fsops.c prints when every call behaves as POSIX
// programs expect and every ungranted access is refused by a capability
// check.
const fsopsWant = `open-read: ok
read: 6 hello
create: ok
write: ok
lseek-cur: 10
lseek-set: 2
read-after-seek: 234
pread: 6789
pwrite: ok
ftruncate: ok
fstat: ok
size: 5 regular: 1
contents: AB234
fsync: ok
open-append: ok
append: ok
after-append: AB234!
mkdir: ok
mkdir-again: EEXIST
rename: ok
stat-moved: ok
rmdir-notempty: ENOTEMPTY
link: ok
symlink: ok
readlink: 9 hello.txt
lstat-sym: ok
is-link: 1
stat-sym: ok
follows-to-size: 6
open-nofollow: ELOOP
utimensat: ok
mtime: 1200000000
opendir: ok
entry: .
entry: ..
entry: hello.txt
entry: linked.txt
entry: sub
entry: sym
entries: 6
unlink: ok
unlink-dir: EISDIR
unlink-moved: ok
rmdir: ok
ro-read: ok
ro-create: ENOTCAPABLE
ro-mkdir: ENOTCAPABLE
ro-unlink: ENOTCAPABLE
ro-rename-out: ENOTCAPABLE
escape-dotdot: ENOTCAPABLE
open-dir: ok
openat-dotdot: ENOTCAPABLE
openat-abs: ENOTCAPABLE
read-dir: EISDIR
symlink-out: ok
follow-out: ENOTCAPABLE
ungranted: ENOTCAPABLE
poll-file: 1 POLLIN
slept-enough: 1
`

// A wasi-libc program's POSIX file operations work beneath its grants,
// and everything outside them (a read-only grant's writes, "..", absolute
// paths, symlinks that lead out, paths under no grant) fails with
// ENOTCAPABLE, leaving the host untouched.
func TestWASILibcFileOperationsWorkBeneathGrantsOnly(t *testing.T) {
	h := newHarness(t)
	data, ro := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(data, "hello.txt"), "hello\n")
	writeFile(t, filepath.Join(ro, "hello.txt"), "hello\n")
	tbl := h.table("g")
	h.grantDir(t, tbl, data, "/data", false)
	h.grantDir(t, tbl, ro, "/ro", true)
	st := h.start(t, context.Background(), abitest.WASIC(t, "abi/testdata/guests/wasi/fsops.c"), tbl, nil).Wait()
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v, stderr %s", st, h.stderr.String())
	}
	if got := h.stdout.String(); got != fsopsWant {
		t.Errorf("output differs:\n%s", lineDiff(got, fsopsWant))
	}
	if b, err := os.ReadFile(filepath.Join(ro, "hello.txt")); err != nil || string(b) != "hello\n" {
		t.Errorf("read-only grant changed: %q %v", b, err)
	}
	ents, _ := os.ReadDir(ro)
	if len(ents) != 1 {
		t.Errorf("read-only grant has %d entries, want 1", len(ents))
	}
	if _, err := os.Stat(filepath.Join(data, "stolen.txt")); err == nil {
		t.Error("a file was renamed out of the read-only grant")
	}
}

// lineDiff shows the lines of got and want that differ.
func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var b strings.Builder
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			fmt.Fprintf(&b, "line %d: got %q, want %q\n", i+1, gl, wl)
		}
	}
	return b.String()
}
