package abi_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// Programs built by Rust's standard library and by wasi-libc ask
// path_open for explicit rights sets. On a read-write directory grant,
// every such request that wasmtime grants is granted here too, and the
// rights asked for work on the new handle. rights.c makes the requests.

// runRights runs rights.c with args on a fresh read-write grant of a
// directory holding "file" ("hello\n") and "dir" (a file "x", a symbolic
// link "sl" to it and an empty directory "empty"). It returns the guest's
// output and the host directory.
func runRights(t *testing.T, h *harness, args ...string) (string, string) {
	t.Helper()
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "file"), "hello\n")
	if err := os.MkdirAll(filepath.Join(root, "dir", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "dir", "x"), "x\n")
	if err := os.Symlink("x", filepath.Join(root, "dir", "sl")); err != nil {
		t.Fatal(err)
	}
	h.stdout.Reset()
	h.stderr.Reset()
	tbl := h.table("g")
	h.grantDir(t, tbl, root, "/", false)
	st := h.run(t, abitest.WASIC(t, "abi/testdata/guests/wasi/rights.c"), tbl, args...)
	if st.Err() != nil {
		t.Fatalf("rights %v: %+v\nstdout:\n%s\nstderr:\n%s", args, st, h.stdout.String(), h.stderr.String())
	}
	return h.stdout.String(), root
}

func checkRights(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("output differs:\n%s", lineDiff(got, want))
	}
}

// A file created with FD_FILESTAT_SET_SIZE among its rights grows with
// fd_filestat_set_size; fd_advise leaves its size; fd_allocate grows it.
func TestWASICreatedFileResizesAdvisesAndAllocates(t *testing.T) {
	got, root := runRights(t, newHarness(t), "created")
	checkRights(t, got, `open-creat: ok
set-size: ok
size: 100
advise: ok
size-after-advise: 100
allocate: ok (size 200)
`)
	if fi, err := os.Stat(filepath.Join(root, "f")); err != nil || fi.Size() != 200 {
		t.Errorf("host file: %v, %v; want 200 bytes", fi, err)
	}
}

// A file opened asking for fd_filestat_set_size and
// fd_filestat_set_times can use both.
func TestWASIFileOpenedForSizeAndTimesSetsBoth(t *testing.T) {
	got, root := runRights(t, newHarness(t), "times")
	checkRights(t, got, `open: ok
set-size: ok
size: 3
set-times: ok
stat: ok
mtim: 2000000000
`)
	if b, err := os.ReadFile(filepath.Join(root, "file")); err != nil || string(b) != "hel" {
		t.Errorf("host file %q, %v; want %q", b, err, "hel")
	}
}

// Beneath a directory opened with every path right and the file rights
// to pass on, O_CREAT|O_TRUNC opens an existing file and empties it.
func TestWASITruncatingOpenBeneathAnOpenedDirectory(t *testing.T) {
	got, root := runRights(t, newHarness(t), "trunc-beneath")
	checkRights(t, got, `mkdir: ok
open-dir: ok
create: ok
write: ok
close: ok
open-trunc: ok
read: ok
read-bytes: 0
`)
	if fi, err := os.Stat(filepath.Join(root, "tmp", "t")); err != nil || fi.Size() != 0 {
		t.Errorf("host file: %v, %v; want it empty", fi, err)
	}
}

// A directory opened with path_unlink_file (and not
// path_remove_directory) can unlink a file beneath it.
func TestWASIUnlinkFileRightAloneUnlinksBeneathAnOpenedDirectory(t *testing.T) {
	got, root := runRights(t, newHarness(t), "unlink-beneath")
	checkRights(t, got, `mkdir: ok
open-dir: ok
link: ok
open-link: ok
close-link: ok
unlink: ok
close-dir: ok
rmdir: ok
`)
	if _, err := os.Stat(filepath.Join(root, "subdir")); !os.IsNotExist(err) {
		t.Errorf("subdir still there: %v", err)
	}
}

// sock_shutdown on a handle that is not a socket fails with ENOTSOCK,
// whatever rights the handle holds (a C program's
// shutdown(STDOUT_FILENO, SHUT_RD) asserts it).
func TestWASISockShutdownOnANonSocketIsENOTSOCK(t *testing.T) {
	got, _ := runRights(t, newHarness(t), "shutdown")
	checkRights(t, got, `stdout: ENOTSOCK
open: ok
file: ENOTSOCK
dir: ENOTSOCK
`)
}

// For every WASI right, a handle opened asking for exactly that right
// (and path_open where its use opens beneath the handle) is granted it
// and can use it. The socket rights are granted too; their use on a file
// is ENOTSOCK, not ENOTCAPABLE.
func TestWASIEachRightAskedForAloneIsGrantedAndWorks(t *testing.T) {
	rights := []struct {
		name string
		use  string
	}{
		{"fd_datasync", "ok"}, {"fd_read", "ok"}, {"fd_seek", "ok"},
		{"fd_fdstat_set_flags", "ok"}, {"fd_sync", "ok"}, {"fd_tell", "ok"},
		{"fd_write", "ok"}, {"fd_advise", "ok"}, {"fd_allocate", "ok"},
		{"path_create_directory", "ok"}, {"path_create_file", "ok"},
		{"path_link_source", "ok"}, {"path_link_target", "ok"},
		{"path_open", "ok"}, {"fd_readdir", "ok"}, {"path_readlink", "ok"},
		{"path_rename_source", "ok"}, {"path_rename_target", "ok"},
		{"path_filestat_get", "ok"}, {"path_filestat_set_size", "ok"},
		{"path_filestat_set_times", "ok"}, {"fd_filestat_get", "ok"},
		{"fd_filestat_set_size", "ok"}, {"fd_filestat_set_times", "ok"},
		{"path_symlink", "ok"}, {"path_remove_directory", "ok"},
		{"path_unlink_file", "ok"}, {"poll_fd_readwrite", "ok"},
		{"sock_shutdown", "ENOTSOCK"}, {"sock_accept", "ENOTSOCK"},
	}
	h := newHarness(t)
	for bit, r := range rights {
		t.Run(r.name, func(t *testing.T) {
			got, _ := runRights(t, h, "one", strconv.Itoa(bit))
			checkRights(t, got, "open: ok\nuse: "+r.use+"\n")
		})
	}
}
