package abi_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
symlink-abs: EPERM
symlink-out: ok
follow-out: ENOTCAPABLE
ungranted: ENOTCAPABLE
poll-file: 1 POLLIN
slept-enough: 1
`

// A wasi-libc program's POSIX file operations work beneath its grants,
// and everything outside them (a read-only grant's writes, "..", absolute
// paths, symlinks that lead out, paths under no grant) fails with
// ENOTCAPABLE, leaving the host untouched; a symlink with an absolute
// target is not even created (EPERM).
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

const fsModeWant = `readdir: ok
names: hello.txt
readfile: ok
contents: "hello\n"
writefile: ok
open-append: ok
append: ok
close: ok
readback: ok
out: "written by go\nand appended\n"
mkdirall: ok
rename: ok
walk: ok
walked: /data,/data/a,/data/a/b,/data/a/b/c,/data/a/b/c/out.txt,/data/hello.txt
stat: ok
size: 27 mode-regular: true
removeall: ok
gone: not exist
ro-read: ok
ro-contents: "hello\n"
ro-write: not capable
ro-overwrite: not capable
ro-remove: not capable
ro-mkdir: not capable
symlink: ok
symlink-escape: not capable
open-dir: ok
openat-dotdot: not capable
openat-absolute: not capable
ungranted-absolute: not capable
`

// An unmodified Go program (GOOS=wasip1) lists, reads and writes what it
// was granted and gets ENOTCAPABLE for a read-only grant's writes, for
// "..", absolute paths and symlinks that lead out, and for an absolute
// path no grant covers.
func TestGoProgramUsesGrantsAndIsRefusedTheRest(t *testing.T) {
	h := newHarness(t)
	data, ro := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(data, "hello.txt"), "hello\n")
	writeFile(t, filepath.Join(ro, "hello.txt"), "hello\n")
	tbl := h.table("g")
	// Plain names, as `sandboxd run --grant dir:HOST=data` gives them:
	// the program reaches them as /data and /ro.
	h.grantDir(t, tbl, data, "data", false)
	h.grantDir(t, tbl, ro, "ro", true)
	st := h.start(t, context.Background(), abitest.Go(t, "abi/testdata/guests/wasi/goguest"), tbl, nil, "fs").Wait()
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v, stderr %s", st, h.stderr.String())
	}
	if got := h.stdout.String(); got != fsModeWant {
		t.Errorf("output differs:\n%s", lineDiff(got, fsModeWant))
	}
	if b, err := os.ReadFile(filepath.Join(ro, "hello.txt")); err != nil || string(b) != "hello\n" {
		t.Errorf("read-only grant changed: %q %v", b, err)
	}
	if ents, _ := os.ReadDir(ro); len(ents) != 1 {
		t.Errorf("read-only grant has %d entries, want 1", len(ents))
	}
}

// grantListener listens on a fresh loopback port and puts the listener in
// tbl; it returns the address to dial and the capability.
func (h *harness) grantListener(t testing.TB, tbl *caps.Table) (string, *caps.Cap) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := caps.NewListener(ln, "test")
	if err != nil {
		t.Fatal(err)
	}
	b, i := caps.GrantRights(caps.KindListener, false)
	c := h.k.Mint(tbl.Holder(), l, b, i, "listener", "test grant")
	if _, err := tbl.Insert(c); err != nil {
		t.Fatal(err)
	}
	return ln.Addr().String(), c
}

// A Go server built for wasip1 takes a granted listening socket with
// net.FileListener and serves concurrent connections: sock_accept,
// SOCKET_STREAM fdstat and a poll_oneoff that truly waits on sockets and
// timers together.
func TestGoServerAcceptsOnGrantedListener(t *testing.T) {
	h := newHarness(t)
	tbl := h.table("srv")
	addr, _ := h.grantListener(t, tbl)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	g := h.start(t, ctx, abitest.Go(t, "abi/testdata/guests/wasi/goguest"), tbl, nil, "echo", "3")
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			msg := fmt.Sprintf("ping %d\n", i)
			if _, err := c.Write([]byte(msg)); err != nil {
				t.Error(err)
				return
			}
			got, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || got != strings.ToUpper(msg) {
				t.Errorf("reply %q, %v; want %q", got, err, strings.ToUpper(msg))
			}
		}(i)
	}
	wg.Wait()
	st := g.Wait()
	if st.Err() != nil || st.Code != 0 || h.stdout.String() != "served 3\n" {
		t.Fatalf("status %+v, stdout %q, stderr %q", st, h.stdout.String(), h.stderr.String())
	}
}

// Revoking the listener while the guest waits in accept wakes it with
// ENOTCAPABLE; killing a guest that waits ends it at once.
func TestBlockedAcceptEndsOnRevokeAndOnKill(t *testing.T) {
	wasm := abitest.Go(t, "abi/testdata/guests/wasi/goguest")
	t.Run("revoke", func(t *testing.T) {
		h := newHarness(t)
		tbl := h.table("srv")
		_, lc := h.grantListener(t, tbl)
		g := h.start(t, context.Background(), wasm, tbl, nil, "accept")
		awaitBlocked(t, g, 0) // in accept
		h.k.Revoke(lc, "test")
		select {
		case <-g.Done():
		case <-time.After(hangGuard):
			t.Fatalf("guest still blocked %v after revocation", hangGuard)
		}
		if got := h.stdout.String(); !strings.Contains(got, "Capabilities insufficient") {
			t.Fatalf("stdout %q, want accept to fail with ENOTCAPABLE", got)
		}
	})
	t.Run("kill", func(t *testing.T) {
		h := newHarness(t)
		tbl := h.table("srv")
		h.grantListener(t, tbl)
		g := h.start(t, context.Background(), wasm, tbl, nil, "accept")
		awaitBlocked(t, g, 0) // in accept
		start := time.Now()
		killAndAwait(t, g, "guest")
		t.Logf("killed in %v", time.Since(start))
	})
}

// ucaseRun runs examples/ucase with the given grants (guest name → host
// directory, and whether read-only) and arguments.
func ucaseRun(t *testing.T, grants []ucaseGrant, args ...string) (abi.ExitStatus, string, string) {
	t.Helper()
	h := newHarness(t)
	tbl := h.table("ucase")
	for _, g := range grants {
		h.grantDir(t, tbl, g.host, g.name, g.ro)
	}
	st := h.start(t, context.Background(), abitest.WASIC(t, "examples/ucase/ucase.c"), tbl, nil, args...).Wait()
	return st, h.stdout.String(), h.stderr.String()
}

type ucaseGrant struct {
	name, host string
	ro         bool
}

func TestUcaseWithoutGrantsReportsInputDenied(t *testing.T) {
	in := t.TempDir()
	writeFile(t, filepath.Join(in, "src.txt"), "hello")
	st, _, stderr := ucaseRun(t, nil, filepath.Join(in, "src.txt"), "/out/dst.txt")
	if st.Err() != nil || st.Code == 0 {
		t.Fatalf("status %+v, want a non-zero exit", st)
	}
	if !strings.Contains(stderr, "ucase: input denied") {
		t.Fatalf("stderr %q", stderr)
	}
}

func TestUcaseUppercasesFromReadOnlyGrantIntoWritableGrant(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	src := "Hello, World! 123 abc xyz\n" + strings.Repeat("mixed Case line\n", 10000)
	writeFile(t, filepath.Join(in, "src.txt"), src)
	st, _, stderr := ucaseRun(t, []ucaseGrant{{"/in", in, true}, {"/out", out, false}}, "/in/src.txt", "/out/dst.txt")
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v, stderr %q", st, stderr)
	}
	got, err := os.ReadFile(filepath.Join(out, "dst.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != strings.ToUpper(src) {
		t.Fatalf("output is not the upper-cased input (%d bytes, want %d)", len(got), len(src))
	}
	// The read-only grant does not let ucase write its output there.
	st, _, stderr = ucaseRun(t, []ucaseGrant{{"/in", in, true}}, "/in/src.txt", "/in/dst.txt")
	if st.Code == 0 || !strings.Contains(stderr, "output denied") {
		t.Fatalf("writing into the read-only grant: status %+v, stderr %q", st, stderr)
	}
	if _, err := os.Stat(filepath.Join(in, "dst.txt")); err == nil {
		t.Fatal("a file was created in the read-only grant")
	}
}

// An output path that climbs out of the writable grant is refused by the
// capability check, whichever way the path reaches the host, and nothing
// is written outside the grant.
func TestUcaseOutputEscapingTheGrantIsRefused(t *testing.T) {
	in, parent := t.TempDir(), t.TempDir()
	out := filepath.Join(parent, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(in, "src.txt"), "hello")
	for _, c := range []struct {
		name    string
		outName string
		outPath string
	}{
		{"grant is the working directory", ".", "../out.c"},
		{"through the grant's name", "/out", "/out/../out.c"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, _, stderr := ucaseRun(t, []ucaseGrant{{"/in", in, true}, {c.outName, out, false}}, "/in/src.txt", c.outPath)
			if st.Err() != nil || st.Code == 0 || !strings.Contains(stderr, "output denied") {
				t.Fatalf("status %+v, stderr %q", st, stderr)
			}
			if !strings.Contains(stderr, "Capabilities insufficient") {
				t.Errorf("refused with %q, want ENOTCAPABLE", stderr)
			}
			ents, _ := os.ReadDir(parent)
			if len(ents) != 1 {
				t.Fatalf("%d entries beside the grant, want only out/", len(ents))
			}
			if ents, _ := os.ReadDir(out); len(ents) != 0 {
				t.Fatalf("%d entries written in the grant", len(ents))
			}
		})
	}
}

// One module may import both ABIs: a handle opened through WASI is read
// through the native ABI, because both name the same capability.
func TestModuleImportingBothABIsSharesHandles(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), "shared handle\n")
	tbl := h.table("mixed")
	h.grantDir(t, tbl, dir, "d", true)
	st := h.start(t, context.Background(), abitest.WAT(t, "abi/testdata/guests/wasi/mixed.wat"), tbl, nil).Wait()
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v", st)
	}
	if got := h.stdout.String(); got != "shared handle\n" {
		t.Fatalf("stdout %q", got)
	}
}

// Go's net.FileConn takes a granted stream — a host socket or a channel
// end shared with the supervisor — because both report SOCKET_STREAM and
// wait through poll_oneoff.
func TestGoFileConnOnGrantedSocketAndChannel(t *testing.T) {
	wasm := abitest.Go(t, "abi/testdata/guests/wasi/goguest")
	t.Run("socket", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		s, err := caps.NewSocket(server, "test")
		if err != nil {
			t.Fatal(err)
		}
		h := newHarness(t)
		tbl := h.table("conn")
		b, i := caps.GrantRights(caps.KindSocket, false)
		if _, err := tbl.Insert(h.k.Mint(tbl.Holder(), s, b, i, "peer", "test")); err != nil {
			t.Fatal(err)
		}
		g := h.start(t, ctx, wasm, tbl, nil, "conn")
		if _, err := client.Write([]byte("over tcp\n")); err != nil {
			t.Fatal(err)
		}
		got, err := bufio.NewReader(client).ReadString('\n')
		if err != nil || got != "OVER TCP\n" {
			t.Fatalf("reply %q %v", got, err)
		}
		if st := g.Wait(); st.Code != 0 || h.stdout.String() != "answered\n" {
			t.Fatalf("status %+v stdout %q", st, h.stdout.String())
		}
	})
	t.Run("channel", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		mine, theirs := caps.NewChannelPair(false, "test")
		h := newHarness(t)
		tbl := h.table("conn")
		if _, err := tbl.Insert(h.k.Mint(tbl.Holder(), theirs, caps.RightsSocketBase, 0, "chan", "test")); err != nil {
			t.Fatal(err)
		}
		g := h.start(t, ctx, wasm, tbl, nil, "conn")
		awaitBlocked(t, g, 0) // in poll_oneoff
		if _, err := mine.Write([]byte("over a channel\n")); err != nil {
			t.Fatal(err)
		}
		if st := g.Wait(); st.Code != 0 || h.stdout.String() != "answered\n" {
			t.Fatalf("status %+v stdout %q stderr %q", st, h.stdout.String(), h.stderr.String())
		}
		buf := make([]byte, 64)
		n, _, _, err := mine.Recv([][]byte{buf}, 0, false)
		if err != nil || string(buf[:n]) != "OVER A CHANNEL\n" {
			t.Fatalf("reply %q %v", buf[:n], err)
		}
	})
}
