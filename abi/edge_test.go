package abi_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
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
	runEdgeIn(t, h, tbl, mode, false)
}

// runEdgeIn runs edge.c's mode with tbl, granting it the edge module
// itself first when module is set (as fd 4, after "data"), and fails
// unless it exits 0.
func runEdgeIn(t *testing.T, h *harness, tbl *caps.Table, mode string, module bool) {
	t.Helper()
	wasm := abitest.C(t, edgeGuest)
	if module {
		h.grantModule(t, tbl, "edge", wasm)
	}
	st := h.runMode(t, wasm, tbl, mode)
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

// fd_read, fd_write and fd_pwrite check their count's pointer, and fd_seek
// its offset's, before they move anything: out of bounds, they return
// EFAULT with no bytes sent, none taken off the channel, none written to
// the byte object and its offset where it was. (A guest told EFAULT
// resends; it must not have sent already.)
func TestReadWriteAndSeekWithABadResultPointerMoveNothing(t *testing.T) {
	runEdge(t, "rw-out", t.TempDir())
}

// fd_create2 with either result pointer out of bounds is EFAULT and
// writes neither: no number of a handle that does not exist.
func TestFdCreate2WithABadResultPointerWritesNeither(t *testing.T) {
	runEdge(t, "create2-out", t.TempDir())
}

// argdata_get and fd_describe bound-check the whole buffer they are
// given, as every (pointer, length) pair is: a buffer that crosses the end
// of memory is EFAULT, even when what they copy would fit before it.
func TestArgdataGetAndFdDescribeRefuseABufferAcrossTheEndOfMemory(t *testing.T) {
	runEdge(t, "buf-end", t.TempDir())
}

// poll's proc_terminate on a handle that is not a process reports EINVAL
// in its event (docs/ABI.md, poll), not ENOTCAPABLE: no other kind of
// handle can hold poll_proc_terminate, so checking the right first made
// every such subscription a rights failure.
func TestPollProcTerminateOnAHandleThatIsNotAProcessIsEINVAL(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "full"), "four")
	runEdge(t, "poll-kind", dir)
}

// An fd_read event on a regular file or a byte object carries in nbytes
// the bytes left to read past the handle's offset (docs/ABI.md, poll). A
// byte object, being pollable (always ready), reported 0.
func TestPollFdReadReportsTheBytesLeftInAFileAndAByteObject(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "full"), "four")
	runEdge(t, "poll-nbytes", dir)
}

// proc_exec refuses a revoked handle in its list with ENOTCAPABLE, as
// proc_spawn does and as docs/ABI.md says of every call but the three that
// only tidy the table; it moved one listed once into the new program
// (and refused it listed twice, when the copy could not be made).
func TestProcExecOfARevokedHandleIsENOTCAPABLE(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "full"), "four")
	h := newHarness(t)
	tbl := h.table("g-edge")
	h.grantDir(t, tbl, dir, "data", false)
	runEdgeIn(t, h, tbl, "exec-revoked", true)
}

// sock_accept with a full handle table fails with EMFILE and leaves the
// connection waiting, as accept(2) does: it used to take the connection
// and close it, so a server at its --max-fds dropped the client.
func TestSockAcceptIntoAFullTableLeavesTheConnectionQueued(t *testing.T) {
	h := newHarness(t)
	holder := &caps.Holder{ID: "g-accept"}
	tbl := caps.NewTable(h.k, holder, 5) // stdio, the listener and one more
	for _, s := range []*caps.Stdio{caps.NewStdin(bytes.NewReader(nil)), caps.NewStdout("stdout", &h.stdout), caps.NewStdout("stderr", &h.stderr)} {
		if _, err := tbl.Insert(h.k.Mint(holder, s, caps.RightsTTYBase, 0, s.Describe(), "test")); err != nil {
			t.Fatal(err)
		}
	}
	addr, _ := h.grantListener(t, tbl)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	g := h.startMode(t, ctx, abitest.C(t, edgeGuest), tbl, "accept-full")
	reply, err := io.ReadAll(conn)
	if err != nil || string(reply) != "ok" {
		t.Fatalf("the client read %q, %v; want the guest's answer on its connection\nstdout:\n%s", reply, err, h.stdout.String())
	}
	if st := g.Wait(); st.Err() != nil || st.Code != 0 {
		t.Fatalf("%+v\nstdout:\n%s", st, h.stdout.String())
	}
}

// sock_recv bounds-checks the whole of ri_fds: a range that crosses the
// end of memory is EFAULT, before anything is received. Only the room
// for the 64 handles a message can bring was checked.
func TestSockRecvRefusesAnFdsRangeAcrossTheEndOfMemory(t *testing.T) {
	runEdge(t, "recv-fds-end", t.TempDir())
}

// fd_dup and fd_create1 check fd_out before they make anything: out of
// bounds, they return EFAULT with no capability derived or created. They
// made one, failed to report it and closed it, so the audit log recorded
// a handle the guest never held.
func TestFdDupAndFdCreate1WithABadFdOutMakeNothing(t *testing.T) {
	h, log := observedHarness(t)
	tbl := h.table("g-edge")
	h.grantDir(t, tbl, t.TempDir(), "data", false)
	runEdgeIn(t, h, tbl, "new-out", false)
	for _, typ := range []caps.EventType{caps.EventMint, caps.EventDerive, caps.EventClose} {
		for _, e := range log.all(typ) {
			if e.Cap.Edge == caps.EdgeDup || e.Cap.Edge == caps.EdgeCreate {
				t.Errorf("%s of %s (%s, edge %s): the calls failed with EFAULT and should have made nothing", typ, e.Cap.ID, e.Cap.Origin, e.Cap.Edge)
			}
		}
	}
}

// fd_stat_get and file_stat_fget agree on what a handle designates, for
// every kind a guest can hold. A module handle was UNKNOWN to fd_stat_get
// and a REGULAR_FILE, with the module's size, to file_stat_fget; it is a
// REGULAR_FILE to both, as the executable file a CloudABI proc_exec takes
// (docs/ABI.md, proc_spawn).
func TestFdStatGetAndFileStatFgetAgreeOnTheFiletype(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "full"), "four")
	h := newHarness(t)
	tbl := h.table("g-edge")
	h.grantDir(t, tbl, dir, "data", false)
	runEdgeIn(t, h, tbl, "types-agree", true)
}

// A stream read (sock_recv) that returns handles returns the bytes of the
// message they were sent with and no others: it starts at the message's
// first byte, as before, and now also stops at its end, WAITALL or not, as
// Linux stops a read at a message that carried SCM_RIGHTS. Plain bytes
// sent after it were appended to it, and WAITALL read on into later
// messages, their handles included, so a guest could not tell which bytes
// came with which handles.
func TestAStreamReadWithHandlesStopsAtTheEndOfTheirMessage(t *testing.T) {
	runEdge(t, "stream-handles", t.TempDir())
}

// file_readdir and file_readlink check bufused_out before they act: out
// of bounds, they return EFAULT having done nothing. readdir from cookie
// 0 took a new listing of the directory (and its memory charge) in place
// of the one the guest was reading, and readlink wrote the link into buf.
func TestReaddirAndReadlinkWithABadBufusedOutDoNothing(t *testing.T) {
	runEdge(t, "bufused-out", t.TempDir())
}

// A call that would add a handle to a full table fails with EMFILE before
// it makes anything, as open(2) finds a descriptor before it opens:
// file_open with CREAT created the file, and fd_create1, fd_create2,
// fd_dup, cap_revocable and proc_spawn made capabilities (and a child's
// table) only to close them, which the audit log recorded as made and
// closed for handles the guest never held.
func TestCallsIntoAFullTableMakeNothing(t *testing.T) {
	dir := t.TempDir()
	h, log := observedHarness(t)
	holder := &caps.Holder{ID: "g-full"}
	tbl := caps.NewTable(h.k, holder, 8)
	for _, s := range []*caps.Stdio{caps.NewStdin(bytes.NewReader(nil)), caps.NewStdout("stdout", &h.stdout), caps.NewStdout("stderr", &h.stderr)} {
		if _, err := tbl.Insert(h.k.Mint(holder, s, caps.RightsTTYBase, 0, s.Describe(), "test")); err != nil {
			t.Fatal(err)
		}
	}
	h.grantDir(t, tbl, dir, "data", false)
	runEdgeIn(t, h, tbl, "table-full", true)
	if _, err := os.Stat(filepath.Join(dir, "made")); !os.IsNotExist(err) {
		t.Errorf("file_open into a full table created the file (stat: %v)", err)
	}
	made := map[caps.Edge]int{}
	for _, e := range append(log.all(caps.EventMint), log.all(caps.EventDerive)...) {
		made[e.Cap.Edge]++
		if strings.HasPrefix(e.Cap.Origin, "proc_spawn") {
			t.Errorf("proc_spawn made a process handle, %s", e.Cap.ID)
		}
	}
	// The three byte objects that fitted and the one fd_dup at the end;
	// nothing else.
	want := map[caps.Edge]int{caps.EdgeCreate: 3, caps.EdgeDup: 1}
	for _, edge := range []caps.Edge{caps.EdgeCreate, caps.EdgeDup, caps.EdgeRevocable, caps.EdgeOpen, caps.EdgeSpawn} {
		if made[edge] != want[edge] {
			t.Errorf("%d capabilities made with edge %s, want %d", made[edge], edge, want[edge])
		}
	}
}

// proc_spawn checks every handle of its list before it makes a copy of
// any: a closed one is EBADF and a revoked one ENOTCAPABLE with nothing
// made. It derived the child's copies in list order and closed them at
// the first bad one, so the audit log recorded copies for a child that
// never started.
func TestProcSpawnWithABadHandleInItsListMakesNoCopy(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "full"), "four")
	h, log := observedHarness(t)
	tbl := h.table("g-edge")
	h.grantDir(t, tbl, dir, "data", false)
	runEdgeIn(t, h, tbl, "spawn-bad-list", true)
	for _, e := range log.all(caps.EventDerive) {
		if e.Cap.Edge == caps.EdgeSpawn {
			t.Errorf("a copy %s (%s) was made for a spawn that failed", e.Cap.ID, e.Cap.Name)
		}
	}
}

// A send with handles that fails at once (EAGAIN on a full channel with
// O_NONBLOCK, EPIPE on a closed one) makes no copy of them: a guest
// retrying a non-blocking send put a derivation and a close of each
// handle in the audit log at every try.
func TestASendWithHandlesThatCannotGoMakesNoCopy(t *testing.T) {
	h, log := observedHarness(t)
	tbl := h.table("g-send")
	c, _ := h.channelEnd(t, tbl, true) // fd 3
	c.SetFlags(caps.FlagNonblock)
	ours := c.Resource().(*caps.Channel)
	for {
		if _, err := ours.Send([][]byte{[]byte("fill")}, nil); err != nil {
			break // the peer's queue is full
		}
	}
	// 100 sends of one byte with stdout; the exit code is the last errno.
	wasm := abitest.WATText(t, `(module
  (import "sandboxd" "sock_send" (func $send (param i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "x")
  (func (export "_start")
    (local $i i32) (local $e i32)
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 1))
    (i32.store (i32.const 8) (i32.const 48))
    (i32.store (i32.const 12) (i32.const 1))
    (i32.store (i32.const 48) (i32.const 1))
    (loop $l
      (local.set $e (call $send (i32.const 3) (i32.const 0) (i32.const 32)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 100))))
    (call $exit (local.get $e))))`)
	if st := h.run(t, wasm, tbl); st.Code != uint32(caps.EAGAIN) {
		t.Fatalf("exit %+v: want EAGAIN (%d) from a send on a full channel", st, caps.EAGAIN)
	}
	// The same sends on a channel whose peer is closed: EPIPE.
	closed := h.table("g-send-closed")
	_, peer := h.channelEnd(t, closed, true) // fd 3
	peer.Close()
	if st := h.run(t, wasm, closed); st.Code != uint32(caps.EPIPE) {
		t.Fatalf("exit %+v: want EPIPE (%d) from a send on a channel whose peer is closed", st, caps.EPIPE)
	}
	for _, e := range log.all(caps.EventDerive) {
		if e.Cap.Edge == caps.EdgeDelegate {
			t.Fatalf("a send that failed with EAGAIN or EPIPE made a copy %s of %s", e.Cap.ID, e.Cap.Origin)
		}
	}
}
