//go:build !wasip1

package sandboxd_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// runSpawncheck runs testdata/spawncheck's check mode (a guest that
// plays the daemon on the supervisor channel of a child of its own) and
// returns what it printed, failing unless it exited 0.
func runSpawncheck(t *testing.T, mode string) string {
	t.Helper()
	bin := t.TempDir()
	self := abitest.Go(t, "abi/sdk/sandboxd/testdata/spawncheck")
	if err := os.WriteFile(filepath.Join(bin, "spawncheck.wasm"), self, 0o644); err != nil {
		t.Fatal(err)
	}
	st, out, errOut := run(t, "testdata/spawncheck", map[string]string{"bin": bin}, map[string]bool{"bin": true}, nil, mode)
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v\nstdout %s\nstderr %s", st, out, errOut)
	}
	return out
}

// RecvNotice reads a notice longer than 4 KiB whole. One whose first 4 KiB
// decode on their own (cut at an entry boundary) came back from the 4 KiB
// read it made before without its name, and no error.
func TestRecvNoticeReadsALongNoticeWhole(t *testing.T) {
	out := runSpawncheck(t, "cut")
	want := `notice longer than 4 KiB: <nil>, event grant, kind 4057 bytes, name "after-the-cut", handle true
handles left open 0
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
}

// peer.Connect gives up when its context is cancelled or its deadline
// passes while it waits for the daemon's answer. The answer that comes
// after is dropped with its handle closed: it is not taken for the answer
// to the next request, and a notice queued behind it still reaches
// peer.Pending (testdata/spawncheck). Connect ignored its context, so the
// guest waited on until the guard of runCached (two minutes) killed it.
func TestConnectGivesUpWhenItsContextEnds(t *testing.T) {
	out := runSpawncheck(t, "abandon")
	want := `cancelled while waiting: peer: waiting for the daemon's answer to a connection request: context canceled (context.Canceled true)
next connection: peer: the daemon refused a connection: the second request is refused
pending: grant granted, handle true
handles left open 0
past its deadline: context.DeadlineExceeded true
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
}

// A notice whose handle the guest could not take (its handle table full:
// sock_recv closed it and set FDS_TRUNCATED) is RecvNotice's
// *HandleLostError, which holds the notice, and not a notice that came
// without a handle. An answer no one waits for any more is still dropped
// when its handle was lost, so the next Connect gets the answer to its
// own request (testdata/spawncheck lost). RecvNotice returned the grant
// as if it had no handle, with no error.
func TestRecvNoticeSaysWhenAHandleCouldNotBeTaken(t *testing.T) {
	out := runSpawncheck(t, "lost")
	want := `cancelled while waiting: context.Canceled true
notice: grant granted (cap c3), fd false, handle lost true; error true
next connection: peer: the daemon refused a connection: the second request is refused
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
}
