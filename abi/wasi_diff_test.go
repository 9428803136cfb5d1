package abi_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// edgesTree makes the directory edges.c expects: the file "f", the
// directory "sub" and the link "lsub" -> "sub".
func edgesTree(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	writeFile(t, filepath.Join(d, "f"), "hello\n")
	if err := os.Mkdir(filepath.Join(d, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub", filepath.Join(d, "lsub")); err != nil {
		t.Fatal(err)
	}
	return d
}

// runEdges runs edges.c's cases named by which beneath a read-write grant
// of dir at /d and returns what it printed.
func runEdges(t *testing.T, dir, which string) string {
	t.Helper()
	h := newHarness(t)
	tbl := h.table("g")
	h.grantDir(t, tbl, dir, "d", false)
	wasm := abitest.WASIC(t, "abi/testdata/guests/wasi/edges.c")
	st := h.start(t, context.Background(), wasm, tbl, nil, which).Wait()
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v, stdout %s, stderr %s", st, h.stdout.String(), h.stderr.String())
	}
	return h.stdout.String()
}

// A path ending in "/" whose last component is a symbolic link to a
// directory names that directory, with or without SYMLINK_FOLLOW, as POSIX
// path resolution has it and as open(2) and utimensat(2) (Node's and
// wazero's WASI) do; path_filestat_get already did. path_open and
// path_filestat_set_times failed with ENOTDIR. A link without the slash is
// still not followed (ELOOP), and "f/" is still ENOTDIR.
func TestWASITrailingSlashFollowsALinkToADirectory(t *testing.T) {
	const want = `open lsub/: 0
open lsub/ O_DIRECTORY: 0
open lsub/ follow: 0
open lsub: 32
open f/: 54
set times lsub/: 0
stat sub: 0
sub mtim: 7
set times f/: 54
`
	if got := runEdges(t, edgesTree(t), "slash"); got != want {
		t.Errorf("output differs:\n%s", lineDiff(got, want))
	}
}

// O_DIRECTORY asks only that the object be a directory. On a regular file
// it is ENOTDIR whatever access was asked for, as open(2) says; sandboxd
// answered EISDIR, about a regular file, whenever writing or truncating
// was asked too. O_CREAT with O_DIRECTORY is EINVAL and makes nothing, as
// open(2) since Linux 6.4 and Node's and wazero's WASI answer; sandboxd
// answered EISDIR, whether or not the name existed and whatever it was.
func TestWASIOpenDirectoryFlagOnFilesAndWithCreate(t *testing.T) {
	const want = `f O_DIRECTORY: 54
f O_DIRECTORY write: 54
f O_DIRECTORY|O_TRUNC: 54
sub O_DIRECTORY: 0
sub O_DIRECTORY write: 31
sub O_DIRECTORY|O_TRUNC: 31
new O_DIRECTORY|O_CREAT: 28
new O_DIRECTORY|O_CREAT|O_EXCL: 28
sub O_DIRECTORY|O_CREAT: 28
f O_DIRECTORY|O_CREAT: 28
new made: 44
stat f: 0
f size: 6
`
	if got := runEdges(t, edgesTree(t), "odir"); got != want {
		t.Errorf("output differs:\n%s", lineDiff(got, want))
	}
}

// path_readlink with a buffer of size 0 is EINVAL, as readlink(2) answers
// on Linux and Node's and wazero's WASI answer; it reported 0 bytes
// copied, which wasi-libc's readlink returns as an empty link. A short
// buffer still truncates.
func TestWASIReadlinkIntoNoRoomIsEINVAL(t *testing.T) {
	const want = `readlink 0: 28
readlink 2: 0 2 su
readlink 16: 0 3 sub
readlink f: 28
`
	if got := runEdges(t, edgesTree(t), "readlink"); got != want {
		t.Errorf("output differs:\n%s", lineDiff(got, want))
	}
}

// One path resolves through at most 8 symbolic links (os.Root's bound,
// POSIX's least SYMLOOP_MAX), where Linux follows 40: the limit
// docs/WASI.md states, checked in path_open and path_filestat_get.
func TestWASIPathFollowsAtMostEightLinks(t *testing.T) {
	const want = `open l8: 0
open l9: 32
stat l8: 0
stat l9: 32
`
	if got := runEdges(t, edgesTree(t), "chain"); got != want {
		t.Errorf("output differs:\n%s", lineDiff(got, want))
	}
}

// path_open with an fd_out outside memory created the file (O_CREAT) or
// truncated it (O_TRUNC), then failed with EFAULT: a call that fails has
// done nothing, as the native file_open.
func TestWASIPathOpenWithABadFdOutCreatesAndTruncatesNothing(t *testing.T) {
	const want = `open new creat: 21
open f trunc: 21
open new: 44
`
	dir := edgesTree(t)
	if got := runEdges(t, dir, "badout"); got != want {
		t.Errorf("output differs:\n%s", lineDiff(got, want))
	}
	if data, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(data) != "hello\n" {
		t.Errorf("f after a failed truncating open: %q, %v", data, err)
	}
}

// WASI fd_seek and fd_tell moved the offset, and sock_send sent its
// bytes, before writing the result to a pointer outside memory: a call
// that fails with EFAULT has done nothing, as the native calls.
func TestWASISeekAndSendWithABadResultPointerDoNothing(t *testing.T) {
	h := newHarness(t)
	tbl := h.table("g")
	file := filepath.Join(t.TempDir(), "f")
	writeFile(t, file, "0123456789")
	h.grantFile(t, tbl, file, "f", caps.RightFDRead|caps.RightFDSeek|caps.RightFDTell) // fd 3
	_, peer := h.channelEnd(t, tbl, false)                                             // fd 4
	// The exit code is fd_seek's errno, then sock_send's, then the offset
	// fd_tell reads after both: 21 (EFAULT), 21, 0.
	wasm := abitest.WATText(t, `(module
  (import "wasi_snapshot_preview1" "fd_seek" (func $seek (param i32 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_tell" (func $tell (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send" (func $send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "hi")
  (func (export "_start")
    (local $seek i32) (local $send i32)
    (local.set $seek (call $seek (i32.const 3) (i64.const 5) (i32.const 0) (i32.const 65532)))
    (i32.store (i32.const 16) (i32.const 64))
    (i32.store (i32.const 20) (i32.const 2))
    (local.set $send (call $send (i32.const 4) (i32.const 16) (i32.const 1) (i32.const 0) (i32.const 65534)))
    (drop (call $tell (i32.const 3) (i32.const 32)))
    (call $exit (i32.add (i32.mul (local.get $seek) (i32.const 10000))
      (i32.add (i32.mul (local.get $send) (i32.const 100)) (i32.load (i32.const 32)))))))`)
	st := h.run(t, wasm, tbl)
	if st.Code != 21*10000+21*100+0 {
		t.Errorf("exit %d (%+v): want 212100, EFAULT from both and the offset still 0", st.Code, st)
	}
	buf := make([]byte, 8)
	if n, _, _, _ := peer.Recv([][]byte{buf}, 0, true); n != 0 { // the guest's end is closed: 0 is its end of stream
		t.Errorf("the peer received %q from a send that failed with EFAULT", buf[:n])
	}
}
