package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/daemon/server"
	"github.com/sandboxd/sandboxd/internal/ctxtest"
)

// testDaemon is a Supervisor and Server on a private socket, torn down
// (and checked for leaked capability clients) when the test ends.
type testDaemon struct {
	sup    *daemon.Supervisor
	srv    *server.Server
	socket string
	logs   *abitest.Buffer
	served chan error
}

// shortTempDir returns a temporary directory with a path short enough for
// a unix socket (108 bytes), removed when the test ends.
func shortTempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "sbx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// startDaemon starts a daemon for one test, which also fails if any
// capability client leaks while it runs (see clientLeaks).
func startDaemon(t *testing.T, lim server.Limits, setup ...func(*server.Server)) *testDaemon {
	t.Helper()
	return startDaemonWith(t, lim, watchClientLeaks(t), setup...)
}

// startDaemonUnwatched starts a daemon without the leak check, for
// fuzzing and the scale test.
func startDaemonUnwatched(t testing.TB, lim server.Limits) *testDaemon {
	t.Helper()
	return startDaemonWith(t, lim, func() {})
}

// startBenchDaemon starts a daemon for a benchmark: no leak check, and
// logging as `sandboxd serve` does by default (info) into nothing, so that
// a benchmark does not measure a test's log buffer growing by every line.
// Its logs field is empty.
func startBenchDaemon(b *testing.B, lim server.Limits) *testDaemon {
	b.Helper()
	return startDaemonLogging(b, lim, func() {}, hclog.Info, io.Discard)
}

// startDaemonWith starts a daemon, logging at debug level into its logs,
// whose server is passed to each setup before it serves anything.
func startDaemonWith(t testing.TB, lim server.Limits, leaks func(), setup ...func(*server.Server)) *testDaemon {
	t.Helper()
	return startDaemonLogging(t, lim, leaks, hclog.Debug, nil, setup...)
}

// startDaemonLogging is startDaemonWith logging at level into out, or
// into the daemon's logs buffer if out is nil.
func startDaemonLogging(t testing.TB, lim server.Limits, leaks func(), level hclog.Level, out io.Writer, setup ...func(*server.Server)) *testDaemon {
	t.Helper()
	return startDaemonOf(t, daemon.Options{}, lim, leaks, level, out, setup...)
}

// startDaemonOf is startDaemonLogging with a supervisor made with opts
// (its Logger and CacheDir set here).
func startDaemonOf(t testing.TB, opts daemon.Options, lim server.Limits, leaks func(), level hclog.Level, out io.Writer, setup ...func(*server.Server)) *testDaemon {
	t.Helper()
	logs := &abitest.Buffer{}
	if out == nil {
		out = logs
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "sandboxd", Level: level, Output: out})
	dir := shortTempDir(t)
	opts.Logger, opts.CacheDir = log, filepath.Join(dir, "cache")
	sup, err := daemon.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := server.Listen(filepath.Join(dir, "sandboxd.sock"))
	if err != nil {
		t.Fatal(err)
	}
	d := &testDaemon{
		sup: sup, srv: server.New(sup, server.Options{Logger: log, Limits: lim}),
		socket: l.Addr().String(), logs: logs, served: make(chan error, 1),
	}
	for _, f := range setup {
		f(d.srv)
	}
	go func() { d.served <- d.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), server.HangGuard)
		defer cancel()
		if err := d.srv.Close(ctx); err != nil {
			t.Errorf("closing server: %v", err)
		}
		if err := <-d.served; !errors.Is(err, server.ErrClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		if err := sup.Close(ctx); err != nil {
			t.Errorf("closing supervisor: %v", err)
		}
		leaks()
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	return d
}

func (d *testDaemon) dial(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), d.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// kernelCaps returns the kernel's live capabilities held by holders whose
// id starts with prefix.
func (d *testDaemon) liveCaps(prefix string) []caps.Info {
	var out []caps.Info
	for _, in := range d.sup.Kernel().Snapshot() {
		if strings.HasPrefix(in.Holder, prefix) && !in.Closed && !in.Revoked {
			out = append(out, in)
		}
	}
	return out
}

// eventually is server.Eventually.
var eventually = server.Eventually

const (
	helloWAT          = "abi/testdata/guests/hello.wat"
	spinWAT           = "daemon/testdata/guests/spin.wat"
	sleepWAT          = "daemon/testdata/guests/sleep_poll.wat"
	interleaveWAT     = "daemon/testdata/server/interleave.wat"
	tinyWritesWAT     = "daemon/testdata/server/tiny_writes.wat"
	writeThenSleepWAT = "daemon/testdata/server/write_then_sleep.wat"
	recvGrantC        = "daemon/testdata/server/recv_grant.c"
	recvHoldC         = "daemon/testdata/server/recv_hold.c"
	floodC            = "daemon/testdata/server/flood.c"
	floodOnGoC        = "cmd/sandboxd/testdata/flood_on_go.c" // writes start, floods once data/go exists
)

// taggedOutput records stdout and stderr in one sequence, so that their
// relative order is visible.
type taggedOutput struct {
	mu  sync.Mutex
	seq strings.Builder
}

type taggedWriter struct {
	o   *taggedOutput
	tag string
}

func (w taggedWriter) Write(p []byte) (int, error) {
	w.o.mu.Lock()
	defer w.o.mu.Unlock()
	fmt.Fprintf(&w.o.seq, "%s:%s", w.tag, p)
	return len(p), nil
}

func (o *taggedOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seq.String()
}

func TestLaunchAttachedDeliversOutputInOrderBeforeWaitReturns(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	c := d.dial(t)
	ctx := context.Background()
	out := &taggedOutput{}
	g, err := c.Launch(ctx, client.LaunchRequest{
		Name: "interleave.wat", Wasm: abitest.WAT(t, interleaveWAT),
		Stdout: taggedWriter{out, "O"}, Stderr: taggedWriter{out, "E"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	st, err := g.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Code != 3 || st.Err() != nil {
		t.Fatalf("status %+v, want exit 3", st)
	}
	if got, want := out.String(), "O:out1\nE:err1\nO:out2\n"; got != want {
		t.Fatalf("output %q, want %q (everything, in order, when Wait returns)", got, want)
	}
}

// runHello launches hello.wat (wasm) through c with the given timeout,
// waits for it to exit with its code 7, and releases it.
func runHello(t *testing.T, c *client.Client, wasm []byte, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "hello.wat", Wasm: wasm, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	if st, err := g.Wait(ctx); err != nil || st.Code != 7 {
		t.Fatalf("hello.wat: status %+v, err %v", st, err)
	}
}

func TestSecondLaunchOfSameModuleDoesNotCompile(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	c := d.dial(t)
	wasm := abitest.WAT(t, helloWAT)
	for range 3 {
		runHello(t, c, wasm, 0)
	}
	if n := strings.Count(d.logs.String(), "compiled module"); n != 1 {
		t.Fatalf("the module was compiled %d times for 3 launches, want once", n)
	}
}

func TestRawHelloExitCodeAndLogs(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	c := d.dial(t)
	ctx := context.Background()
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "hello.wat", Wasm: abitest.WAT(t, helloWAT), Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	if st, err := g.Wait(ctx); err != nil || st.Code != 7 {
		t.Fatalf("status %+v, err %v", st, err)
	}
	var stdout bytes.Buffer
	dropped, err := g.Logs(ctx, &stdout, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "hello\n" || dropped != 0 {
		t.Fatalf("logs %q (dropped %d), want \"hello\\n\"", stdout.String(), dropped)
	}
	info, err := g.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Running || info.Status.Code != 7 || !info.Detached || info.Name != "hello.wat" || info.Ended.IsZero() {
		t.Fatalf("info %+v", info)
	}
}

func TestRecordContextsDetachFromTheServersOnceGuestsEnd(t *testing.T) {
	var children *ctxtest.Children
	d := startDaemon(t, server.Limits{}, func(s *server.Server) { children = server.CountContextChildren(s) })
	c := d.dial(t)
	ctx := context.Background()

	spin, err := c.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: abitest.WAT(t, spinWAT)})
	if err != nil {
		t.Fatal(err)
	}
	if n := children.Live(); n != 1 {
		t.Fatalf("%d contexts attached to the server's while one guest runs, want 1: the count sees nothing", n)
	}
	if _, err := spin.Kill(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	spin.Release()

	wasm := abitest.WAT(t, helloWAT)
	// The timeout only has to be set: the guest exits at once, far within
	// it.
	for _, timeout := range []time.Duration{0, server.HangGuard} {
		for range 3 {
			runHello(t, c, wasm, timeout)
		}
	}
	eventually(t, server.HangGuard, "the server has processed the exit of every guest", func() bool { return server.RunningGuests(d.srv) == 0 })
	if n := children.Live(); n != 0 {
		t.Errorf("%d guest records' contexts still attached to the server's after every guest ended, want 0: they stay until Close", n)
	}
}

func TestLogsFollowStreamsUntilExit(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	c := d.dial(t)
	ctx := context.Background()
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "recv_grant.c", Wasm: abitest.C(t, recvGrantC), Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	var stdout abitest.Buffer
	followed := make(chan error, 1)
	go func() {
		_, err := g.Logs(ctx, &stdout, nil, true)
		followed <- err
	}()
	file := filepath.Join(shortTempDir(t), "ticks")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := g.Grant(ctx, "file:"+file+"=ticks")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, server.HangGuard, "the follower sees \"received\"", func() bool { return stdout.String() == "received\n" })
	if _, err := c.Revoke(ctx, info.ID, "test"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-followed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(server.HangGuard):
		t.Fatal("logs --follow did not return after the guest exited")
	}
	if got := stdout.String(); got != "received\nrevoked\n" {
		t.Fatalf("followed %q", got)
	}
}

func TestGrantReachesRunningGuestOnItsSupervisorChannelAndRevokeCutsItOff(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	c := d.dial(t)
	ctx := context.Background()
	var stdout abitest.Buffer
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "recv_grant.c", Wasm: abitest.C(t, recvGrantC), Stdout: &stdout})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	file := filepath.Join(shortTempDir(t), "ticks")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := g.Grant(ctx, "file:"+file+"=ticks")
	if err != nil {
		t.Fatal(err)
	}
	if info.Holder != g.ID() || info.Name != "ticks" || info.Kind != "file" || info.Edge != "grant" {
		t.Fatalf("granted capability %+v", info)
	}
	// The guest uses the handle: the file grows.
	eventually(t, server.HangGuard, "the guest writes through its granted handle", func() bool {
		b, _ := os.ReadFile(file)
		return bytes.Count(b, []byte("tick\n")) >= 3
	})
	handles, err := g.Caps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, h := range handles {
		found = found || h.Cap.ID == info.ID
	}
	if !found {
		t.Fatalf("granted capability %s not in the guest's table after it received it: %+v", info.ID, handles)
	}
	rc, err := c.Revoke(ctx, info.ID, "test revokes the grant")
	if err != nil {
		t.Fatal(err)
	}
	atRevoke, _ := os.ReadFile(file)
	if len(rc.Revoked) != 1 || rc.Revoked[0] != info.ID {
		t.Fatalf("receipt %+v", rc)
	}
	st, err := g.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Code != 0 || stdout.String() != "received\nrevoked\n" {
		t.Fatalf("status %+v, output %q: the guest must see ENOTCAPABLE on its next write", st, stdout.String())
	}
	// After revoke returned, no write got through: the file is as it was
	// then, now that the guest has exited.
	if atExit, _ := os.ReadFile(file); !bytes.Equal(atRevoke, atExit) {
		t.Fatalf("the file grew after the revocation returned: %d bytes then, %d at exit", len(atRevoke), len(atExit))
	}
}

func TestRestrictDelegateAndRevokeAreEdgesOfOneDerivationTree(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	tr := &derivationTree{c: d.dial(t), dir: shortTempDir(t)}
	defer tr.release()
	for _, step := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"mint gives a root with a token", tr.mint},
		{"restrict narrows and refuses to widen", tr.restrict},
		{"passed at launch, the guest gets a child of the narrowed copy", tr.delegateAtLaunch},
		{"a running guest receives another copy", tr.delegateToRunningGuest},
		{"revoking the root cuts off the whole tree, in both guests", tr.revoke},
		{"the forwarders stop forwarding", tr.forwardersStop},
	} {
		if !t.Run(step.name, step.run) {
			return // each step builds on the ones before
		}
	}
}

// derivationTree is what TestRestrictDelegateAndRevokeAreEdgesOfOneDerivationTree
// builds, step by step: a root capability minted by the client, a narrowed
// copy, and the copies two guests receive of it.
type derivationTree struct {
	c               *client.Client
	dir             string
	root, narrow    *client.Cap
	g, g2           *client.Guest
	guestCopy, sent client.CapInfo
	g2out           abitest.Buffer
}

// treeRights are the rights the narrowed copy keeps.
const treeRights = uint64(caps.RightFileOpen | caps.RightFileReaddir)

// release releases what the steps made, before the daemon stops.
func (tr *derivationTree) release() {
	for _, g := range []*client.Guest{tr.g2, tr.g} {
		if g != nil {
			g.Release()
		}
	}
	for _, x := range []*client.Cap{tr.narrow, tr.root} {
		if x != nil {
			x.Release()
		}
	}
}

func (tr *derivationTree) mint(t *testing.T) {
	var err error
	if tr.root, err = tr.c.Mint(context.Background(), "dir:"+tr.dir+"=data"); err != nil {
		t.Fatal(err)
	}
	if tok := tr.root.Token(); len(tok) != 64 {
		t.Fatalf("minted capability has token %q, want 64 hex digits", tok)
	}
}

func (tr *derivationTree) restrict(t *testing.T) {
	ctx := context.Background()
	rootInfo, err := tr.root.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tr.narrow, err = tr.root.Restrict(ctx, treeRights, uint64(caps.RightFDRead)); err != nil {
		t.Fatal(err)
	}
	ni, err := tr.narrow.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ni.Parent != tr.root.ID() || ni.Edge != "restrict" || ni.Base != treeRights || ni.Holder != rootInfo.Holder {
		t.Fatalf("restricted %+v", ni)
	}
	if _, err := tr.narrow.Restrict(ctx, treeRights|uint64(caps.RightFileUnlink), 0); err == nil || !strings.Contains(err.Error(), "only narrow") {
		t.Fatalf("widening restrict: %v", err)
	}
}

func (tr *derivationTree) delegateAtLaunch(t *testing.T) {
	ctx := context.Background()
	var err error
	tr.g, err = tr.c.Launch(ctx, client.LaunchRequest{
		Name: "sleep_poll.wat", Wasm: abitest.WAT(t, sleepWAT),
		Caps: []client.Delegation{{Cap: tr.narrow, Name: "data"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	handles, err := tr.g.Caps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range handles {
		if h.Cap.Name == "data" {
			tr.guestCopy = h.Cap
			if h.FD != 3 {
				t.Errorf("delegated handle at fd %d, want 3 (right after stdio)", h.FD)
			}
		}
	}
	if cp := tr.guestCopy; cp.Parent != tr.narrow.ID() || cp.Edge != "delegate" || cp.Base != treeRights || cp.Holder != tr.g.ID() {
		t.Fatalf("guest's copy %+v", cp)
	}
}

func (tr *derivationTree) delegateToRunningGuest(t *testing.T) {
	ctx := context.Background()
	var err error
	if tr.g2, err = tr.c.Launch(ctx, client.LaunchRequest{Name: "recv_hold.c", Wasm: abitest.C(t, recvHoldC), Stdout: &tr.g2out}); err != nil {
		t.Fatal(err)
	}
	if tr.sent, err = tr.narrow.Delegate(ctx, tr.g2, ""); err != nil {
		t.Fatal(err)
	}
	if tr.sent.Parent != tr.narrow.ID() || tr.sent.Name != "data" || tr.sent.Holder != tr.g2.ID() {
		t.Fatalf("delegated at run time %+v", tr.sent)
	}
	eventually(t, server.HangGuard, "the second guest receives its copy", func() bool { return tr.g2out.String() == "received\n" })
}

func (tr *derivationTree) revoke(t *testing.T) {
	rc, err := tr.root.Revoke(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{tr.root.ID(): true, tr.narrow.ID(): true, tr.guestCopy.ID: true, tr.sent.ID: true}
	for _, id := range rc.Revoked {
		delete(want, id)
	}
	if len(want) != 0 {
		t.Fatalf("receipt %+v misses %v", rc, want)
	}
}

func (tr *derivationTree) forwardersStop(t *testing.T) {
	ctx := context.Background()
	if _, err := tr.narrow.Restrict(ctx, 0, 0); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("restrict after revoke: %v", err)
	}
	if _, err := tr.narrow.Delegate(ctx, tr.g2, "again"); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("delegate after revoke: %v", err)
	}
	if info, err := tr.narrow.Info(ctx); err != nil || !info.Revoked {
		t.Fatalf("info after revoke: %+v, %v", info, err)
	}
}

func TestCapByTokenNeedsTheRightToken(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	c1, c2 := d.dial(t), d.dial(t)
	ctx := context.Background()
	root, err := c1.Mint(ctx, "dir:"+shortTempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Release()
	wrong := strings.Repeat("0", 64)
	if _, err := c2.CapByToken(ctx, root.ID(), wrong); err == nil {
		t.Fatal("a wrong token was accepted")
	}
	got, err := c2.CapByToken(ctx, root.ID(), root.Token())
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	if got.ID() != root.ID() || got.Token() != root.Token() {
		t.Fatalf("got %s", got.ID())
	}
}

func TestReleasingOrDisconnectingKillsAttachedGuestsButNotDetachedOnes(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	ctx := context.Background()
	c1 := d.dial(t)
	spin := abitest.WAT(t, spinWAT)
	attached, err := c1.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: spin})
	if err != nil {
		t.Fatal(err)
	}
	released, err := c1.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: spin})
	if err != nil {
		t.Fatal(err)
	}
	detached, err := c1.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: spin, Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{attached.ID(), released.ID(), detached.ID()}
	defer attached.Release()
	defer detached.Release()
	released.Release()
	c2 := d.dial(t)
	waitStatus := func(id string) client.ExitStatus {
		g, err := c2.Guest(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Release()
		wctx, cancel := context.WithTimeout(ctx, server.HangGuard)
		defer cancel()
		st, err := g.Wait(wctx)
		if err != nil {
			t.Fatalf("guest %s: %v", id, err)
		}
		return st
	}
	if st := waitStatus(ids[1]); st.Killed != "the launching client disconnected" {
		t.Fatalf("released guest: %+v", st)
	}
	c1.Close()
	if st := waitStatus(ids[0]); st.Killed != "the launching client disconnected" {
		t.Fatalf("attached guest: %+v", st)
	}
	g, err := c2.Guest(ctx, ids[2])
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	info, err := g.Info(ctx)
	if err != nil || !info.Running {
		t.Fatalf("detached guest after its client left: %+v, %v", info, err)
	}
	if st, err := g.Kill(ctx, "test done"); err != nil || st.Killed != "test done" || st.Code != 137 {
		t.Fatalf("kill: %+v, %v", st, err)
	}
}

func TestClientVanishingMidCallLeavesNoGuestGoroutineOrCapability(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	ctx := context.Background()
	warm := d.dial(t) // compile once, so the baseline includes the runtime's goroutines
	g, err := warm.Launch(ctx, client.LaunchRequest{Name: "hello.wat", Wasm: abitest.WAT(t, helloWAT)})
	if err != nil {
		t.Fatal(err)
	}
	g.Wait(ctx)
	g.Release()
	warm.Close()
	eventually(t, server.HangGuard, "the warm-up connection has ended", func() bool { return server.OpenConnections(d.srv) == 0 })
	base := runtime.NumGoroutine()

	for i := 0; i < 20; i++ {
		nc, err := net.Dial("unix", d.socket)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.NewClient(ctx, nc)
		if err != nil {
			t.Fatal(err)
		}
		root, err := c.Mint(ctx, "dir:"+shortTempDir(t))
		if err != nil {
			t.Fatal(err)
		}
		g, err := c.Launch(ctx, client.LaunchRequest{
			Name: "sleep_poll.wat", Wasm: abitest.WAT(t, sleepWAT),
			Caps: []client.Delegation{{Cap: root, Name: "data"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		// Leave calls in flight (a wait, a follow), then vanish without a
		// goodbye: the socket just closes.
		wctx, cancel := context.WithCancel(ctx)
		go g.Wait(wctx)
		go g.Logs(wctx, nil, nil, true)
		time.Sleep(5 * time.Millisecond)
		nc.Close()
		cancel()
		root.Release()
		g.Release()
		c.Close()
	}
	eventually(t, server.HangGuard, "every guest of the vanished clients is killed", func() bool {
		for _, g := range d.sup.Guests() {
			if running, _ := g.Status(); running {
				return false
			}
		}
		return true
	})
	eventually(t, server.HangGuard, "no capability held by a vanished connection stays open", func() bool {
		return len(d.liveCaps("conn-")) == 0
	})
	eventually(t, server.HangGuard, "goroutines return to the idle level", func() bool {
		runtime.GC()
		return runtime.NumGoroutine() <= base
	})
	// The delegated copies died with their guests: nothing of the 20
	// clients is live in the kernel.
	for _, in := range d.sup.Kernel().Snapshot() {
		if !in.Closed && !in.Revoked {
			t.Errorf("capability %s (%s, holder %s) still open", in.ID, in.Kind, in.Holder)
		}
	}
}

func TestPeerCredentialsArePrincipal(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	c := d.dial(t)
	p, err := c.Whoami(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p.UID != uint32(os.Getuid()) || p.GID != uint32(os.Getgid()) || p.PID != int32(os.Getpid()) {
		t.Fatalf("whoami %+v, want uid %d gid %d pid %d", p, os.Getuid(), os.Getgid(), os.Getpid())
	}
}

func TestUnknownGuestAndCapabilityErrorsSayWhatToDo(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	c := d.dial(t)
	ctx := context.Background()
	if _, err := c.Guest(ctx, "g-nope"); err == nil || !strings.Contains(err.Error(), "sandboxd ps") {
		t.Fatalf("unknown guest: %v", err)
	}
	if _, err := c.Revoke(ctx, "cnope", ""); err == nil || !strings.Contains(err.Error(), "no capability cnope") {
		t.Fatalf("unknown capability: %v", err)
	}
	for _, tc := range []struct {
		what string
		req  client.LaunchRequest
		kind client.ErrorKind
		says string
	}{
		{"bad module", client.LaunchRequest{Name: "x", Wasm: []byte("not wasm")}, client.KindModule, "not a valid WebAssembly module"},
		{"relative host path", client.LaunchRequest{Name: "x", Wasm: abitest.WAT(t, helloWAT), Grants: []string{"dir:relative/path"}}, client.KindGrant, "must be absolute"},
		{"relative unix socket path", client.LaunchRequest{Name: "x", Wasm: abitest.WAT(t, helloWAT), Grants: []string{"sock:unix:relative.sock=db"}}, client.KindGrant, "must be absolute"},
		{"relative unix listener path", client.LaunchRequest{Name: "x", Wasm: abitest.WAT(t, helloWAT), Grants: []string{"listen:unix:relative.sock=web"}}, client.KindGrant, "must be absolute"},
		{"missing host path", client.LaunchRequest{Name: "x", Wasm: abitest.WAT(t, helloWAT), Grants: []string{"dir:/nonexistent/sbx"}}, client.KindGrant, "does not exist"},
		{"malformed grant", client.LaunchRequest{Name: "x", Wasm: abitest.WAT(t, helloWAT), Grants: []string{"disk:/tmp"}}, client.KindGrant, `unknown kind "disk"`},
		{"no module", client.LaunchRequest{Name: "x"}, client.KindRequest, "no module"},
		{"module above the memory limit", client.LaunchRequest{Name: "x", Wasm: abitest.WAT(t, helloWAT), MemoryLimit: 1024}, client.KindRequest, "needs 65536 bytes of memory to start"},
	} {
		_, err := c.Launch(ctx, tc.req)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Kind != tc.kind || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v (kind %v), want kind %v saying %q", tc.what, err, ce.Kind, tc.kind, tc.says)
		} else if strings.Contains(ce.Msg, "grant: grant") || strings.HasPrefix(ce.Msg, "module: ") || strings.HasPrefix(ce.Msg, "request: ") || strings.Contains(ce.Msg, "launch: ") {
			t.Errorf("%s: the kind's prefix is left in the message: %q", tc.what, ce.Msg)
		}
	}
}

// A capability the client closed (it released its Cap object), kept in
// the tree by a restricted copy that lives on, cannot be passed on: the
// error says it was closed, not revoked, for nothing revoked it.
func TestPassingOnAClosedCapabilitySaysItWasClosed(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	c := d.dial(t)
	ctx := context.Background()
	root, err := c.Mint(ctx, "dir:"+shortTempDir(t)+"=data")
	if err != nil {
		t.Fatal(err)
	}
	narrow, err := root.Restrict(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer narrow.Release()
	rootID := root.ID()
	root.Release() // closes it; the narrowed copy keeps it in the tree
	eventually(t, server.HangGuard, "the released root is closed", func() bool {
		x, ok := d.sup.Kernel().Lookup(caps.ID(rootID))
		return ok && x.Info().Closed
	})
	_, err = c.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: abitest.WAT(t, sleepWAT), Grants: []string{"cap:" + rootID}, Detach: true})
	if err == nil || strings.Contains(err.Error(), "revoked") || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("launch with a closed (not revoked) capability: %v; want it refused as closed", err)
	}
	if x, _ := d.sup.Kernel().Lookup(caps.ID(rootID)); x.Revoked() {
		t.Fatal("the root was revoked")
	}
}

// stuckWriter blocks every write until release is closed.
type stuckWriter struct{ release chan struct{} }

func (w stuckWriter) Write(p []byte) (int, error) { <-w.release; return len(p), nil }

// A client whose output sink never answers (its process keeps reading the
// socket, so the write timeout never comes) leaves its guest waiting in
// fd_write. Revoking that guest's stdout, which waits for the write in
// progress, must still return: the write stops waiting when its handle is
// revoked.
func TestRevokingTheStdoutOfAGuestWaitingForItsClientReturns(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	ctx := context.Background()
	c := d.dial(t)
	w := stuckWriter{release: make(chan struct{})}
	defer close(w.release)
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "flood.c", Wasm: abitest.C(t, floodC), Stdout: w})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	eventually(t, server.HangGuard, "the guest's output waits for its client", func() bool {
		return server.OutputWaiting(d.srv, g.ID())
	})
	handles, err := g.Caps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var stdout string
	for _, h := range handles {
		if h.FD == 1 {
			stdout = h.Cap.ID
		}
	}
	if stdout == "" {
		t.Fatalf("no fd 1 in %+v", handles)
	}
	op := d.dial(t)
	done := make(chan error, 1)
	go func() {
		_, err := op.Revoke(ctx, stdout, "the operator cuts the guest's output")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("revoking the stdout of a guest waiting for its client: %v", err)
		}
	case <-time.After(server.HangGuard):
		t.Fatal("revoking the stdout of a guest waiting for its client never returned")
	}
}

// A guest that has ended before its launch watches for its end (one that
// exits at once) has its end processed all the same, and its launch is
// answered without waiting for the client to take the guest's output,
// which a client stuck writing it out never does: Guest.AfterDone runs
// what it is given at once, on the launch's goroutine, once the guest has
// ended.
func TestALaunchWhoseGuestEndedAtOnceIsAnsweredBeforeItsClientTakesTheOutput(t *testing.T) {
	defer server.SetLaunchStarted(func(g *daemon.Guest) { <-g.Done() })()
	d := startDaemon(t, server.Limits{})
	c := d.dial(t)
	w := stuckWriter{release: make(chan struct{})}
	unstick := sync.OnceFunc(func() { close(w.release) })
	defer unstick()
	hello := abitest.WAT(t, helloWAT)
	type launched struct {
		g   *client.Guest
		err error
	}
	done := make(chan launched, 1)
	go func() {
		g, err := c.Launch(context.Background(), client.LaunchRequest{Name: "hello.wat", Wasm: hello, Stdout: w})
		done <- launched{g, err}
	}()
	var g *client.Guest
	select {
	case l := <-done:
		if l.err != nil {
			t.Fatal(l.err)
		}
		g = l.g
		defer g.Release()
	case <-time.After(server.HangGuard):
		t.Fatalf("the launch of a guest that ended at once is still not answered after %v: it waits for its client to take the output", server.HangGuard)
	}
	unstick() // the client goes on: it takes the output, then the status
	if st, err := g.Wait(context.Background()); err != nil || st.Code != 7 {
		t.Fatalf("Wait: %+v, %v; want exit 7", st, err)
	}
	eventually(t, server.HangGuard, "the end of the guest is processed", func() bool {
		return server.RunningGuests(d.srv) == 0
	})
}

// A kill reason longer than the daemon keeps is cut at the start of a
// character, not in the middle of one: the status every client reads, and
// the audit log, hold it as text.
func TestAKillReasonIsCutAtACharacter(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	c := d.dial(t)
	ctx := context.Background()
	spin, err := c.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: abitest.WAT(t, spinWAT)})
	if err != nil {
		t.Fatal(err)
	}
	defer spin.Release()
	reason := strings.Repeat("a", 255) + "é and more"
	st, err := spin.Kill(ctx, reason)
	if err != nil {
		t.Fatal(err)
	}
	if st.Killed != strings.Repeat("a", 255) {
		t.Fatalf("killed %q (%d bytes, valid UTF-8: %v), want the 255 bytes before the character the bound falls in", st.Killed, len(st.Killed), utf8.ValidString(st.Killed))
	}
}

// Compile's took is 0 for a module the daemon had compiled in memory
// already, as the schema and docs/CLI.md (compile --json) say: compiled
// before, or launched. The daemon timed every call, and reported the few
// microseconds of finding it.
func TestCompileOfAModuleAlreadyCompiledTookZero(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	c := d.dial(t)
	ctx := context.Background()
	hello := abitest.WAT(t, helloWAT)
	if _, took, err := c.Compile(ctx, "hello.wat", hello); err != nil || took <= 0 {
		t.Fatalf("first compile: took %v, %v; want the time it took", took, err)
	}
	if _, took, err := c.Compile(ctx, "hello.wat", hello); err != nil || took != 0 {
		t.Errorf("compile of a module compiled before: took %v, %v; want 0", took, err)
	}
	spin := abitest.WAT(t, spinWAT)
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: spin})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	if _, took, err := c.Compile(ctx, "spin.wat", spin); err != nil || took != 0 {
		t.Errorf("compile of a module launched: took %v, %v; want 0", took, err)
	}
}

// Guest.kill refuses "timeout", the reason the daemon records when a
// launch's timeout passes: a client's kill recorded it as given, and the
// guest then passed for one its timeout had ended (wait exits 124, "it
// ran longer than --timeout") though it had none. The guest runs on; a
// kill with another reason is recorded as given, and a real timeout still
// records "timeout".
func TestKillWithTheReasonOfATimeoutIsRefused(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	c := d.dial(t)
	ctx := context.Background()
	spin := abitest.WAT(t, spinWAT)
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: spin})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	st, err := g.Kill(ctx, client.KilledByTimeout)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Kind != client.KindRequest || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("kill with reason %q: %+v, %v; want a request error", client.KilledByTimeout, st, err)
	}
	if info, err := g.Info(ctx); err != nil || !info.Running {
		t.Fatalf("after a refused kill: %+v, %v; want the guest running", info, err)
	}
	if st, err := g.Kill(ctx, "timed out by hand"); err != nil || st.Code != 137 || st.Killed != "timed out by hand" {
		t.Errorf("kill: %+v, %v; want 137, killed as given", st, err)
	}
	timed, err := c.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: spin, Timeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer timed.Release()
	if st, err := timed.Wait(ctx); err != nil || st.Killed != client.KilledByTimeout {
		t.Errorf("a guest whose timeout passed: %+v, %v; want killed %q", st, err, client.KilledByTimeout)
	}
}

// A directory minted under a path name (dir:…=/data, as a grant may name
// a dir handle) is delegated under that name when none is given, at launch
// and to a running guest, as a cap: grant of it is: the control API
// checked the name a delegation takes from its source with the rule of
// names given, and refused it.
func TestADirectoryNamedAsAPathIsDelegatedUnderItsName(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	c := d.dial(t)
	ctx := context.Background()
	root, err := c.Mint(ctx, "dir:"+shortTempDir(t)+"=/data")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Release()
	for _, caps := range [][]client.Delegation{{{Cap: root}}, nil} {
		g, err := c.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: abitest.WAT(t, sleepWAT), Detach: true, Caps: caps})
		if err != nil {
			t.Fatalf("launch with the directory named /data: %v", err)
		}
		defer g.Release()
		defer g.Kill(ctx, "test over")
		if caps == nil { // to the running guest, which has not read it yet
			sent, err := root.Delegate(ctx, g, "")
			if err != nil || sent.Name != "/data" {
				t.Fatalf("delegating the directory named /data: %+v, %v", sent, err)
			}
			continue
		}
		handles, err := g.Caps(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !hasHandle(handles, "/data") {
			t.Errorf("guest %s holds no handle named /data: %+v", g.ID(), handles)
		}
	}
}

// hasHandle reports whether handles has one named name.
func hasHandle(handles []client.Handle, name string) bool {
	for _, h := range handles {
		if h.Cap.Name == name {
			return true
		}
	}
	return false
}
