//go:build !wasip1

package sandboxd_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// runEdgecheck runs testdata/edgecheck in mode, with itself in "bin" and
// K=V in its environment, and returns what it printed, failing unless it
// exited 0.
func runEdgecheck(t *testing.T, mode string) string {
	t.Helper()
	bin := t.TempDir()
	self := abitest.Go(t, "abi/sdk/sandboxd/testdata/edgecheck")
	if err := os.WriteFile(filepath.Join(bin, "edgecheck.wasm"), self, 0o644); err != nil {
		t.Fatal(err)
	}
	st, out, errOut := run(t, "testdata/edgecheck", map[string]string{"bin": bin}, map[string]bool{"bin": true}, []string{"K=V"}, mode)
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v\nstdout %s\nstderr %s", st, out, errOut)
	}
	return out
}

// Args, Env, Handles and StartupData return values of the caller's own:
// a guest that adds to the map Handles returned (to give a child its
// handles and one more) or deletes from it does not change what Handle,
// File and the others find later. They returned the package's own maps
// and slice, so that a handle added to the map was found by Handle, and
// one deleted from it was gone for good.
func TestStartupAccessorsReturnTheCallersOwnCopies(t *testing.T) {
	out := runEdgecheck(t, "startup")
	want := `after changing the maps: Handle(extra) false, Handle(extra2) false, Handle(bin) true, env map[K:V], args ["testdata/edgecheck" "startup"]
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
}

// Conn.Send and Conn.Recv with handles on both kinds of channel: handles
// beyond fds are closed, not left in the table (FDsTruncated); handles
// with no bytes arrive as N 0 with NFDs; with no room for them a stream
// reads on, a datagram channel returns the message as 0 bytes with
// FDsTruncated; a datagram of 0 bytes reads as a closed peer does; a
// handle that is not open is EBADF; a closed peer reads as 0 bytes and
// is EPIPE to send to.
func TestChannelsCarryHandlesAsDocumented(t *testing.T) {
	out := runEdgecheck(t, "channels")
	want := `stream: three handles, room for one: {N:1 NFDs:1 FDsTruncated:true DataTruncated:false} <nil>, open after 1, after closing it 0
stream: handle with no bytes: {N:0 NFDs:1 FDsTruncated:false DataTruncated:false} <nil>
stream: handle with no bytes, no room: {N:1 NFDs:0 FDsTruncated:true DataTruncated:false} <nil> "z", open after 0
stream: send of a handle not open: true
stream: peer closed: {N:0 NFDs:0 FDsTruncated:false DataTruncated:false} <nil>
stream: send to a closed peer: true
datagram: three handles, room for one: {N:1 NFDs:1 FDsTruncated:true DataTruncated:false} <nil>, open after 1, after closing it 0
datagram: handle with no bytes: {N:0 NFDs:1 FDsTruncated:false DataTruncated:false} <nil>
datagram: handle with no bytes, no room: {N:0 NFDs:0 FDsTruncated:true DataTruncated:false} <nil> "", open after 0
datagram: then {N:1 NFDs:0 FDsTruncated:false DataTruncated:false} <nil> "z"
datagram: a datagram of 0 bytes: {N:0 NFDs:0 FDsTruncated:false DataTruncated:false} <nil>
datagram: send of a handle not open: true
datagram: peer closed: {N:0 NFDs:0 FDsTruncated:false DataTruncated:false} <nil>
datagram: send to a closed peer: true
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
}

// Spawn refuses a module handle that is not open (EBADF, a
// syscall.Errno) or lacks proc_exec (ENOTCAPABLE); one handle may go
// under two names, and one named "stdout" replaces the stream; Wait
// twice and Exited after it report the same status; Wait after Close is
// EBADF; a child gets 100 named handles and the three streams, and one
// handle under as many names as its table holds, but no more (E2BIG); Close
// kills a running child, whose handles close with it; a child spawned
// with null argdata has no Args (edgecheck's usage: exit 2).
func TestSpawnEdges(t *testing.T) {
	out := runEdgecheck(t, "spawn")
	want := `module not open: Bad file number (syscall.Errno true)
stdout as module: not capable true
one handle under two names: exit status 3 <nil>; again exit status 3 <nil>; exited exit status 3 true <nil>
wait after close: true
100 named handles: the child has 103 <nil>
1021 names for one handle: the child has 1024 <nil>
1022 names for one handle: Argument list too long (E2BIG true)
close of a running child: <nil>
its channel end went with it: {N:0 NFDs:0 FDsTruncated:false DataTruncated:false} <nil>
null argdata, no handles: exit status 2 <nil>
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
}

// OpenModule asks for what spawning needs, proc_exec, and file_stat_fget
// where the directory gives it, as the daemon's module handles have:
// beneath a directory whose inheriting rights are the ones its doc named
// (proc_exec, fd_read, file_stat_fget), or proc_exec alone, it opens a
// module a child is spawned from. It asked for fd_seek (and fd_read) as
// well, and failed with ENOTCAPABLE beneath both.
func TestOpenModuleAsksOnlyForWhatSpawnNeeds(t *testing.T) {
	out := runEdgecheck(t, "module")
	want := `beneath a directory that gives fd_read|file_stat_fget|proc_exec: module file_stat_fget|proc_exec, child exit status 4 <nil>
beneath a directory that gives proc_exec: module proc_exec, child exit status 4 <nil>
beneath a directory that gives fd_read|file_stat_fget: open module edgecheck.wasm: Capabilities insufficient (not capable true)
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
}

// File of a standard stream returns the *os.File the standard library
// made for it (os.Stdin, os.Stdout, os.Stderr), its one owner, rather
// than a second one that closes the stream under it when closed or
// collected. File("stdout") returned a new *os.File on fd 1, and once it
// was collected fmt.Println wrote nothing (EBADF): the last line was
// missing, and Describe(1) was EBADF.
func TestFileOfAStandardStreamIsTheStandardLibrarys(t *testing.T) {
	out := runEdgecheck(t, "stdio")
	want := `File(stdin) is os.Stdin true <nil>, File(stderr) is os.Stderr true <nil>
File(stdout) is os.Stdout true
after it was dropped, stdout is open: <nil>
second File(stdout): true
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
}
