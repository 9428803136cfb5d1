package client_test

import (
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
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/daemon/server"
	"github.com/sandboxd/sandboxd/internal/uidtest"
)

// serve runs a daemon in this process and returns its socket.
func serve(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sbxc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sup, err := daemon.New(context.Background(), daemon.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := server.Listen(filepath.Join(dir, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(sup, server.Options{})
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		srv.Close(ctx)
		sup.Close(ctx)
	})
	return l.Addr().String()
}

func dial(t *testing.T, socket string) *client.Client {
	t.Helper()
	c, err := client.Dial(context.Background(), socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDialWithoutADaemonSaysHowToStartOne(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, err := client.Dial(context.Background(), sock)
	if err == nil || !strings.Contains(err.Error(), "sandboxd serve --socket "+sock) {
		t.Fatalf("Dial without a daemon: %v", err)
	}
}

// A --socket that names a file or a directory is said to be one, not a
// place to start a daemon on.
func TestDialOfAFileOrDirectorySaysItIsNotASocket(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, what := range map[string]string{file: "a file", dir: "a directory"} {
		_, err := client.Dial(context.Background(), path)
		if err == nil || !strings.Contains(err.Error(), "it is "+what+", not a socket") || strings.Contains(err.Error(), "sandboxd serve --socket "+path) {
			t.Errorf("Dial of %s: %v, want it to say it is %s, not a socket", what, err, what)
		}
	}
}

func TestDefaultSocketPathHonoursTheEnvironment(t *testing.T) {
	t.Setenv("SANDBOXD_SOCKET", "/x/y.sock")
	if got := client.DefaultSocketPath(); got != "/x/y.sock" {
		t.Fatalf("DefaultSocketPath = %q", got)
	}
}

func TestWaitHonoursItsContextAndReleaseKillsAnAttachedGuest(t *testing.T) {
	sock := serve(t)
	c := dial(t, sock)
	ctx := context.Background()
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: abitest.WAT(t, "daemon/testdata/guests/spin.wat")})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := g.Wait(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait past its deadline: %v", err)
	}
	id := g.ID()
	g.Release()
	g.Release() // twice is harmless
	other := dial(t, sock)
	h, err := other.Guest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	st, err := h.Wait(ctx)
	if err != nil || st.Killed == "" {
		t.Fatalf("after Release the attached guest ended %+v, %v; want killed", st, err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFailingOutputWriterIsReportedAndTheOutputIsStillKept(t *testing.T) {
	sock := serve(t)
	c := dial(t, sock)
	ctx := context.Background()
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "hello.wat", Wasm: abitest.WAT(t, "abi/testdata/guests/hello.wat"), Stdout: failingWriter{}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	st, err := g.Wait(ctx)
	var oe *client.OutputError
	if st.Code != 7 || !errors.As(err, &oe) || oe.Stream != "stdout" || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Wait: %+v, %v; want exit 7 and the writer's error as an *OutputError", st, err)
	}
	var kept strings.Builder
	if _, err := g.Logs(ctx, &kept, nil, false); err != nil || kept.String() != "hello\n" {
		t.Fatalf("Logs: %q, %v", kept.String(), err)
	}
}

func TestErrorsNameTheOperationOnce(t *testing.T) {
	sock := serve(t)
	c := dial(t, sock)
	_, err := c.Launch(context.Background(), client.LaunchRequest{Name: "bad.wasm", Wasm: []byte("nope")})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Disconnected || ce.Op != "launch" {
		t.Fatalf("launch of junk: %#v", err)
	}
	if strings.Count(err.Error(), "launch") != 1 || strings.Count(err.Error(), "bad.wasm") != 1 || strings.Contains(err.Error(), "rpc") || strings.Contains(err.Error(), "capnp") {
		t.Fatalf("message %q should name the operation once and no RPC internals", err.Error())
	}
}

func TestClosingTheClientEndsPendingCallsAsDisconnected(t *testing.T) {
	sock := serve(t)
	c := dial(t, sock)
	ctx := context.Background()
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: abitest.WAT(t, "daemon/testdata/guests/spin.wat"), Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	done := make(chan error, 1)
	go func() {
		_, err := g.Wait(ctx)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		var ce *client.Error
		if !errors.As(err, &ce) || !ce.Disconnected {
			t.Fatalf("Wait across a closed connection: %#v", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("Wait did not return when the connection closed")
	}
	select {
	case <-c.Done():
	case <-time.After(hangGuard):
		t.Fatal("Done not closed after Close")
	}
}

func TestConcurrentWaitAndKillOfAnAttachedGuest(t *testing.T) {
	sock := serve(t)
	c := dial(t, sock)
	ctx := context.Background()
	var out strings.Builder
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: abitest.WAT(t, "daemon/testdata/guests/spin.wat"), Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	waited := make(chan client.ExitStatus, 1)
	go func() {
		st, err := g.Wait(ctx)
		if err != nil {
			t.Error(err)
		}
		waited <- st
	}()
	st, err := g.Kill(ctx, "test")
	if err != nil || st.Killed != "test" {
		t.Fatalf("Kill: %+v, %v", st, err)
	}
	if st := <-waited; st.Killed != "test" {
		t.Fatalf("Wait beside Kill: %+v", st)
	}
}

// waitBesideRelease launches wasm, waits for it on another goroutine,
// releases its handle after pause, and returns what that Wait returned.
func waitBesideRelease(t *testing.T, c *client.Client, name string, wasm []byte, pause time.Duration) (client.ExitStatus, error) {
	t.Helper()
	ctx := context.Background()
	g, err := c.Launch(ctx, client.LaunchRequest{Name: name, Wasm: wasm})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		st  client.ExitStatus
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := g.Wait(ctx)
		done <- result{st, err}
	}()
	time.Sleep(pause)
	g.Release()
	r := <-done
	return r.st, r.err
}

// Release may race with a Wait on another goroutine (an interrupted
// `sandboxd launch` does this): Wait then returns the status or says the
// handle was released, and never reads what Release freed (-race).
func TestReleaseBesideAWaitOnAnotherGoroutine(t *testing.T) {
	c := dial(t, serve(t))
	wasm := abitest.WAT(t, "abi/testdata/guests/hello.wat")
	for i := 0; i < 20; i++ {
		var pause time.Duration
		if i%2 == 0 {
			pause = time.Duration(i) * 100 * time.Microsecond
		}
		st, err := waitBesideRelease(t, c, "hello.wat", wasm, pause)
		if err == nil && st.Code != 7 {
			err = fmt.Errorf("exit %d, want 7", st.Code)
		}
		if err != nil && !strings.Contains(err.Error(), "released") {
			t.Fatal(err)
		}
	}
}

// TestReleaseCancellationIsNotAWaitError holds Release just after it has
// cancelled the pending wait, long enough for Wait on another goroutine
// to wake to the cancelled answer: Wait must report the release.
func TestReleaseCancellationIsNotAWaitError(t *testing.T) {
	defer client.SetAfterExitCancel(func() { time.Sleep(20 * time.Millisecond) })()
	c := dial(t, serve(t))
	wasm := abitest.WAT(t, "daemon/testdata/guests/spin.wat")
	for i := 0; i < 3; i++ {
		if _, err := waitBesideRelease(t, c, "spin.wat", wasm, 0); err == nil || !strings.Contains(err.Error(), "released") {
			t.Fatalf("Wait beside Release: %v, want the handle was released", err)
		}
	}
}

// sinkServers counts the goroutines serving local capabilities, such as
// the output sink a launch with Stdout hands the daemon.
func sinkServers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "server.(*Server).handleCalls")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// A launch that fails before it reaches the daemon (on a closed
// connection; or with its context done) gives up the output sink it made
// for Stdout, and the goroutine serving it.
func TestFailedLaunchReleasesItsOutputSink(t *testing.T) {
	sock := serve(t)
	closed, err := client.Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	live := dial(t, sock)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	before := sinkServers()
	for _, c := range []struct {
		ctx context.Context
		cl  *client.Client
	}{{context.Background(), closed}, {done, live}} {
		for range 20 {
			if g, err := c.cl.Launch(c.ctx, client.LaunchRequest{Name: "x.wasm", Wasm: []byte("x"), Stdout: io.Discard}); err == nil {
				g.Release()
				t.Fatal("Launch succeeded")
			}
		}
	}
	awaitSinkServers(t, before, "after 40 failed launches")
}

// Closing a Client gives up the output sinks of the Guests launched
// through it that were never released, and the goroutines serving them.
func TestCloseReleasesTheOutputSinksOfUnreleasedGuests(t *testing.T) {
	sock := serve(t)
	before := sinkServers()
	c, err := client.Dial(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	wasm := abitest.WAT(t, "daemon/testdata/guests/spin.wat")
	for range 3 {
		if _, err := c.Launch(context.Background(), client.LaunchRequest{Name: "spin.wat", Wasm: wasm, Stdout: io.Discard}); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	awaitSinkServers(t, before, "after Close")
}

// awaitSinkServers waits until no more goroutines serve local
// capabilities than before. The servers end on their own goroutines once
// released; a leak never does, and the bound only names it.
func awaitSinkServers(t *testing.T, before int, after string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for n := sinkServers(); n > before; n = sinkServers() {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines serving local capabilities %s, %d before", n, after, before)
		}
		time.Sleep(time.Millisecond)
	}
}

// A MaxFDs the request cannot carry is refused as an invalid request,
// naming the count given, rather than sent cut to 32 bits.
func TestLaunchRefusesAMaxFDsTheRequestCannotCarry(t *testing.T) {
	sock := serve(t)
	c := dial(t, sock)
	wasm := abitest.WAT(t, "abi/testdata/guests/hello.wat")
	for _, n := range []int{-1, 1<<32 + 3} {
		g, err := c.Launch(context.Background(), client.LaunchRequest{Name: "hello.wat", Wasm: wasm, MaxFDs: n})
		if err == nil {
			g.Release()
			t.Fatalf("MaxFDs %d: Launch succeeded", n)
		}
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Kind != client.KindRequest || !strings.Contains(err.Error(), fmt.Sprint(n)) {
			t.Errorf("MaxFDs %d: %#v, want a KindRequest error naming %d", n, err, n)
		}
	}
}

// A delegation without a capability is refused as a bad request, naming
// it, rather than taking the client down.
func TestLaunchRefusesADelegationWithoutACapability(t *testing.T) {
	sock := serve(t)
	c := dial(t, sock)
	wasm := abitest.WAT(t, "abi/testdata/guests/hello.wat")
	g, err := c.Launch(context.Background(), client.LaunchRequest{Name: "hello.wat", Wasm: wasm, Caps: []client.Delegation{{Name: "db"}}})
	if err == nil {
		g.Release()
		t.Fatal("Launch with a nil capability succeeded")
	}
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Kind != client.KindRequest || !strings.Contains(err.Error(), `Caps[0] (named "db") has no capability`) {
		t.Errorf("%#v, want a KindRequest error naming Caps[0]", err)
	}
}

// In a directory any user may write to (where the default socket path
// falls back), a daemon is dialled only if this user or root serves it:
// another user's socket there is refused, naming who serves it.
func TestDialRefusesAnotherUsersSocketInASharedDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("listening as another user needs root")
	}
	shared, err := os.MkdirTemp("", "sbxs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(shared, "sandboxd-0.sock")
	l, err := uidtest.Listen(path, 4242, 4242)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // hangs up on whoever connects: a dial that does not refuse fails, not waits
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	c, err := client.Dial(context.Background(), path)
	if err == nil {
		c.Close()
		t.Fatal("dialled a socket uid 4242 serves in a shared directory")
	}
	if !strings.Contains(err.Error(), "served by uid 4242") {
		t.Fatalf("%v; want it to name the user serving the socket", err)
	}
	// This user's own daemon there is dialled as anywhere.
	sock := serve(t)
	if err := os.Chmod(filepath.Dir(sock), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	c = dial(t, sock)
	if _, err := c.Whoami(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// silentDaemon listens at a new socket, accepts every connection and never
// answers on any, and returns the socket's path.
func silentDaemon(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(t.TempDir(), "silent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	return l.Addr().String()
}

// dialWithin runs dial, failing the test if it has not returned within
// hangGuard.
func dialWithin(t *testing.T, dial func() (*client.Client, error)) (*client.Client, error) {
	t.Helper()
	type result struct {
		c   *client.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := dial()
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		return r.c, r.err
	case <-time.After(hangGuard):
		t.Fatal("Dial of a daemon that never answers is still waiting")
		return nil, nil
	}
}

// A daemon that accepts the connection and never answers fails Dial once
// its bound has passed (DefaultDialTimeout, or the context's deadline),
// with an error that names the socket and says what happened; a daemon
// that answers is dialled as before, and its client outlives the
// deadline of the context it was dialled with.
func TestDialOfADaemonThatNeverAnswersFailsAtItsBound(t *testing.T) {
	sock := silentDaemon(t)
	check := func(how string, err error, within string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: Dial of a daemon that never answers succeeded", how)
		}
		msg := err.Error()
		for _, want := range []string{sock, "accepted the connection but did not answer", within} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: %q does not say %q", how, msg, want)
			}
		}
	}
	defer client.SetDialTimeout(50 * time.Millisecond)()
	_, err := dialWithin(t, func() (*client.Client, error) { return client.Dial(context.Background(), sock) })
	check("default bound", err, "within 50ms")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = dialWithin(t, func() (*client.Client, error) { return client.Dial(ctx, sock) })
	check("context deadline", err, "before the context's deadline")

	// A deadline later than the default replaces it.
	client.SetDialTimeout(time.Nanosecond)
	live := serve(t)
	ctx, cancel = context.WithTimeout(context.Background(), hangGuard)
	c, err := dialWithin(t, func() (*client.Client, error) { return client.Dial(ctx, live) })
	cancel()
	if err != nil {
		t.Fatalf("Dial of a live daemon with a deadline: %v", err)
	}
	defer c.Close()
	if _, err := c.Whoami(context.Background()); err != nil {
		t.Fatalf("Whoami after the dial's context ended: %v", err)
	}
}

// endless is a standard input that ends only after limit bytes, and says
// when they have been read.
type endless struct {
	read  atomic.Int64
	limit int64
	over  chan struct{}
	once  sync.Once
}

func (e *endless) Read(p []byte) (int, error) {
	if e.read.Add(int64(len(p))) > e.limit {
		e.once.Do(func() { close(e.over) })
		return 0, io.EOF
	}
	return len(p), nil
}

// A standard input streamed to a guest that does not read it is read only
// a window ahead of the guest: the client waits for the guest, as a
// pipe's writer does, rather than reading all of it into its memory.
func TestStreamedStdinIsReadOnlyAWindowAheadOfTheGuest(t *testing.T) {
	c := dial(t, serve(t))
	ctx := context.Background()
	in := &endless{limit: 64 << 20, over: make(chan struct{})}
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: abitest.WAT(t, "daemon/testdata/guests/sleep_poll.wat"), StdinStream: in})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	guard := time.After(hangGuard)
	for client.StdinWaiting(g) == 0 {
		select {
		case <-in.over:
			t.Fatalf("the client read %d MiB of stdin for a guest that reads none of it", in.read.Load()>>20)
		case <-guard:
			t.Fatal("the client's stdin writes never waited for the guest")
		case <-time.After(time.Millisecond):
		}
	}
}

// A launch whose context has already ended is not sent, and does not cost
// the connection: the wait for the exit status that Launch pipelines on
// it went out while the launch itself did not (go-capnp does not send a
// call whose context has ended), and the daemon hung up on a call on a
// question it had never been asked.
func TestALaunchWithAnEndedContextLeavesTheConnectionServing(t *testing.T) {
	sock := serve(t)
	c := dial(t, sock)
	wasm := abitest.WAT(t, "daemon/testdata/guests/spin.wat")
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for range 20 {
		g, err := c.Launch(done, client.LaunchRequest{Name: "spin.wat", Wasm: wasm})
		if err == nil {
			g.Release()
			t.Fatal("Launch with an ended context succeeded")
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Launch with an ended context: %v, want an error wrapping context.Canceled", err)
		}
	}
	if _, err := c.Whoami(context.Background()); err != nil {
		t.Fatalf("a call after launches with an ended context: %v", err)
	}
}

// blockingWriter blocks every Write until release is closed, saying on
// entered when the first begins.
type blockingWriter struct {
	entered chan struct{}
	once    sync.Once
	release chan struct{}
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return len(p), nil
}

// Wait and Kill wait for the guest's output to reach the caller's
// writers; a writer that blocks must not keep them past their context.
func TestWaitReturnsWhenItsContextEndsWhileTheOutputWriterBlocks(t *testing.T) {
	sock := serve(t)
	c := dial(t, sock)
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	g, err := c.Launch(context.Background(), client.LaunchRequest{Name: "hello.wat", Wasm: abitest.WAT(t, "abi/testdata/guests/hello.wat"), Stdout: w})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	<-w.entered
	ctx, cancel := context.WithCancel(context.Background())
	defer client.SetBeforeFlushWait(cancel)()
	done := make(chan error, 1)
	go func() {
		_, err := g.Wait(ctx)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait whose context ended while the writer blocks: %v", err)
		}
	case <-time.After(hangGuard):
		close(w.release)
		t.Fatal("Wait did not return when its context ended: it waits on the caller's blocked writer")
	}
	close(w.release)
	client.SetBeforeFlushWait(func() {})
	st, err := g.Wait(context.Background())
	if err != nil || st.Code != 7 {
		t.Fatalf("Wait once the writer is free: %+v, %v", st, err)
	}
}
