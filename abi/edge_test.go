package abi_test

import (
	"path/filepath"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

const edgeGuest = "abi/testdata/guests/edge/edge.c"

// runEdge runs edge.c in mode with a read-write directory grant at fd 3
// (dir, prepared by the caller) and fails the test with the guest's
// report unless it exits 0.
func runEdge(t *testing.T, mode, dir string) {
	t.Helper()
	h := newHarness(t)
	tbl := h.table("g-edge")
	h.grantDir(t, tbl, dir, "data", false)
	st := h.runMode(t, abitest.C(t, edgeGuest), tbl, mode)
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("%s: %+v\nstdout:\n%s\nstderr:\n%s", mode, st, h.stdout.String(), h.stderr.String())
	}
}

// file_open checks where it will write the new fd before it opens
// anything: with CREAT or TRUNC and an fd_out past the end of memory it
// returns EFAULT having neither created nor truncated the file.
func TestFileOpenWithABadFdOutCreatesAndTruncatesNothing(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "full"), "four")
	runEdge(t, "open-out", dir)
}
