//go:build !wasip1

package sandboxd_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// testCache keeps the code compiled for this package's guests, so that a
// guest run by several tests, or spawned by itself, is compiled once.
var testCache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sdk-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "compilation cache:", err)
		os.Exit(1)
	}
	testCache = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs a guest built from a Go package under abi/sdk/sandboxd (pkg is
// the path below it) with stdio captured and the given directory grants.
func run(t *testing.T, pkg string, grants map[string]string, readOnly map[string]bool, env []string, args ...string) (abi.ExitStatus, string, string) {
	t.Helper()
	return runModule(t, pkg, abitest.Go(t, "abi/sdk/sandboxd/"+pkg), grants, readOnly, env, args...)
}

// runModule is run of a module already built, named name (its args[0]).
func runModule(t *testing.T, name string, wasm []byte, grants map[string]string, readOnly map[string]bool, env []string, args ...string) (abi.ExitStatus, string, string) {
	t.Helper()
	ctx := context.Background()
	rt, err := abi.NewRuntime(ctx, abi.Config{CacheDir: testCache})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	m, err := rt.Compile(ctx, name, wasm)
	if err != nil {
		t.Fatal(err)
	}
	k := caps.NewKernel(nil)
	h := &caps.Holder{ID: "g"}
	tbl := caps.NewTable(k, h, 0)
	var stdout, stderr bytes.Buffer
	for i, s := range []*caps.Stdio{caps.NewStdin(strings.NewReader("")), caps.NewStdout("stdout", &stdout), caps.NewStdout("stderr", &stderr)} {
		b := caps.RightsTTYBase &^ caps.RightFDWrite
		if i > 0 {
			b = caps.RightsTTYBase &^ caps.RightFDRead
		}
		if _, err := tbl.Insert(k.Mint(h, s, b, 0, s.Describe(), "test")); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"data", "bin"} { // a fixed order: data at 3, bin at 4
		if _, ok := grants[n]; !ok {
			continue
		}
		d, err := caps.OpenDir(grants[n])
		if err != nil {
			t.Fatal(err)
		}
		b, i := caps.GrantRights(caps.KindDirectory, readOnly[n])
		if _, err := tbl.Insert(k.Mint(h, d, b, i, n, "dir:"+n)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	g := rt.NewGuest(m, abi.GuestConfig{ID: "g", Table: tbl, Args: append([]string{name}, args...), Env: env})
	st := g.Run(ctx)
	return st, stdout.String(), stderr.String()
}

func TestHandlesExampleSeesArgsEnvAndDescribedGrants(t *testing.T) {
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "x.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st, out, errOut := run(t, "examples/handles", map[string]string{"data": data}, map[string]bool{"data": true},
		[]string{"GREETING=hi"}, "a", "b")
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v, stderr %s", st, errOut)
	}
	for _, want := range []string{
		`args: ["examples/handles" "a" "b"]`,
		"env: GREETING=hi",
		`handle 1 stdout: kind=stdio edge=grant origin="test" base=fd_stat_put_flags|fd_write|file_stat_fget|poll_fd_readwrite`,
		`handle 3 data: kind=dir edge=grant origin="dir:data" base=fd_stat_put_flags|fd_sync|file_advise|file_open|file_readdir|file_readlink|file_stat_fget|file_stat_get|poll_fd_readwrite`,
		"data entry: x.txt",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

// The delegate example spawns a child, hands it a read-only revocable
// view of a directory over a channel, and revokes it: the child could read
// but not write, and after the revocation neither its directory handle
// nor the file it had opened through it works, while the parent's own
// handle is untouched.
func TestDelegateExampleRevokesTheChildsView(t *testing.T) {
	data, bin := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "notes.txt"), []byte("hello from data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	child := abitest.Go(t, "abi/sdk/sandboxd/examples/delegate/child")
	if err := os.WriteFile(filepath.Join(bin, "child.wasm"), child, 0o644); err != nil {
		t.Fatal(err)
	}
	grants, readOnly := map[string]string{"data": data, "bin": bin}, map[string]bool{"bin": true}
	st, out, errOut := run(t, "examples/delegate", grants, readOnly, nil)
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v\nstdout %s\nstderr %s", st, out, errOut)
	}
	want := `child: received dir handle: edge=delegate base=file_open|file_readdir|file_readlink|file_stat_fget|file_stat_get|poll_fd_readwrite (ok)
child: read notes.txt: "hello from data\n" (ok)
child: create new.txt: not capable
parent: revoked the child's view of data
child: read the open notes.txt again: not capable
child: open notes.txt again: not capable
child: describe the handle: not capable
parent: child exit status 0
parent: child created new.txt: false
parent: still reads notes.txt: "hello from data\n" <nil>
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	if _, err := os.Stat(filepath.Join(data, "new.txt")); err == nil {
		t.Error("the child created a file through its read-only view")
	}

	// Without the file or the child it needs, it says which and how to
	// make it, and exits 1.
	if err := os.Remove(filepath.Join(data, "notes.txt")); err != nil {
		t.Fatal(err)
	}
	st, out, errOut = run(t, "examples/delegate", grants, readOnly, nil)
	if st.Code != 1 || !strings.Contains(errOut, "data/notes.txt") || !strings.Contains(errOut, "create it") {
		t.Errorf("without data/notes.txt: status %+v, stdout %q, stderr %q; want 1, naming the file", st, out, errOut)
	}
	if err := os.WriteFile(filepath.Join(data, "notes.txt"), []byte("hello from data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(bin, "child.wasm")); err != nil {
		t.Fatal(err)
	}
	st, out, errOut = run(t, "examples/delegate", grants, readOnly, nil)
	if st.Code != 1 || !strings.Contains(errOut, "go build -o bin/child.wasm ./child") {
		t.Errorf("without bin/child.wasm: status %+v, stdout %q, stderr %q; want 1, saying how to build it", st, out, errOut)
	}
}

// The SDK's other calls, from a guest: datagram boundaries, truncated
// data and handles, narrowing, refused revocation, exit codes, Exited, and
// a child whose arguments come from raw argdata, and NetConn and
// NetListener of a handle that is not a socket.
func TestSDKCallsFromAGuest(t *testing.T) {
	bin := t.TempDir()
	self := abitest.Go(t, "abi/sdk/sandboxd/testdata/sdkcheck")
	if err := os.WriteFile(filepath.Join(bin, "sdkcheck.wasm"), self, 0o644); err != nil {
		t.Fatal(err)
	}
	st, out, errOut := run(t, "testdata/sdkcheck", map[string]string{"bin": bin}, map[string]bool{"bin": true}, nil)
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v\nstdout %s\nstderr %s", st, out, errOut)
	}
	want := `datagrams keep boundaries: "one" "two"
short buffer: "a lo" truncated=true <nil>
two handles, room for one: got 1, truncated=true <nil>
received handle: kind=stdio edge=delegate <nil>
narrow to a right not held: not capable=true
narrow to fd_write: <nil>, now fd_write
revoke through a handle that is no revoker: true
child exit: exit status 7 <nil>
blocked child exited: false <nil>
released child: exit status 0 <nil>
after wait, exited: true <nil>
child from raw argdata: exit status 5 <nil>
module outside bin: not capable=true
NetConn and NetListener of a directory: true true, still open: <nil>
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
}

// Every handle the SDK receives and does not return to its caller is
// closed: a supervisor notice it cannot parse, a refusal of peer.Connect
// that came with a handle, a connection peer.Connect cannot set up leave
// the guest's table as it was. NetListener and DialFunc refuse a datagram
// socket and leave it open. A named handle has one owner: once NetConn,
// NetListener, DialFunc, File or Supervisor took it, the others and a
// second call are refused with ErrHandleTaken, also after the owner closed
// it, and the owner keeps working (testdata/spawncheck handles).
func TestSDKClosesHandlesItDoesNotReturn(t *testing.T) {
	out := runSpawncheck(t, "handles")
	want := `notice that is not argdata: error true, handle returned false, handles left open 0
refused connection: peer: the daemon refused a connection: no connection for you, handles left open 0
connection that cannot be set up: not capable true, handles left open 0
NetConn of the channel Supervisor owns: sandboxd: NetConn("supervisor"): handle already taken by an earlier Supervisor, whose result owns it and closes it on Close: use that result, or wrap a new handle from sandboxd.Dup
NetListener of a datagram channel: true, still open: <nil>
DialFunc of a datagram channel: true, still open: <nil>
second NetConn: sandboxd: NetConn("s"): handle already taken by an earlier NetConn, whose result owns it and closes it on Close: use that result, or wrap a new handle from sandboxd.Dup
NetListener, DialFunc and File of it refused: true true true
the first still writes: <nil>
NetConn after the first is closed refused: true
File after NetListener refused it: <nil>
second File refused: true
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
}
