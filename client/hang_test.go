package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
)

// hangGuard bounds the waits in these tests that only a hang could reach.
// Each waits for an event (a call returning, a connection closing); the
// bound is far beyond what any load makes of it, and only turns a hung
// test into a failure that names it, before the suite's timeout.
const hangGuard = 3 * time.Minute

// stallingConn is a connection to the daemon whose writes, or reads, can
// be stopped. Once stall is called, every write waits until the
// connection is closed, or resume is called: that is what a write to a
// unix socket does once the daemon has stopped reading it (stuck, or
// stopped with SIGSTOP, until SIGCONT) and the socket's buffers are full.
// Once stallReads is called, nothing more
// is read from the daemon until the connection is closed (what arrives is
// dropped): the daemon takes the client's writes but its answers never
// come, as from a daemon that reads and is stuck before answering.
type stallingConn struct {
	net.Conn
	stalled     chan struct{}
	resumed     chan struct{}
	readStalled chan struct{}
	closed      chan struct{}
	// writeWaits is closed once a write waits for resume or Close.
	writeWaits  chan struct{}
	stallOnce   sync.Once
	resumeOnce  sync.Once
	readOnce    sync.Once
	closeOnce   sync.Once
	waitingOnce sync.Once
}

func newStallingConn(nc net.Conn) *stallingConn {
	return &stallingConn{
		Conn:        nc,
		stalled:     make(chan struct{}),
		resumed:     make(chan struct{}),
		readStalled: make(chan struct{}),
		writeWaits:  make(chan struct{}),
		closed:      make(chan struct{}),
	}
}

// stall makes every write from now on wait for Close (the client's, or
// one that cuts the connection under it), or for resume.
func (c *stallingConn) stall() { c.stallOnce.Do(func() { close(c.stalled) }) }

// resume lets the writes stall held go on, and those after them.
func (c *stallingConn) resume() { c.resumeOnce.Do(func() { close(c.resumed) }) }

// stallReads makes every read from now on, and one in progress, wait for
// Close, and drops what it read.
func (c *stallingConn) stallReads() { c.readOnce.Do(func() { close(c.readStalled) }) }

func (c *stallingConn) Write(p []byte) (int, error) {
	select {
	case <-c.stalled:
		c.waitingOnce.Do(func() { close(c.writeWaits) })
		select {
		case <-c.resumed:
		case <-c.closed:
			return 0, net.ErrClosed
		}
	default:
	}
	return c.Conn.Write(p)
}

func (c *stallingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	select {
	case <-c.readStalled:
		<-c.closed
		return 0, net.ErrClosed
	default:
		return n, err
	}
}

func (c *stallingConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// dialStalling connects a Client to the daemon at socket through a
// stallingConn.
func dialStalling(t *testing.T, socket string) (*client.Client, *stallingConn) {
	t.Helper()
	nc, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	sc := newStallingConn(nc)
	c, err := client.NewClient(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	return c, sc
}

// awaitGoroutines waits until no more goroutines run than before.
// Goroutines end without an event to wait on, so it looks again after
// each runtime.Gosched; hangGuard only bounds it.
func awaitGoroutines(t *testing.T, before int, after string) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for n := runtime.NumGoroutine(); n > before; n = runtime.NumGoroutine() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines %s, %d before:\n%s", n, after, before, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// Releasing an attached guest's handle gives up the wait for its exit
// status that Launch asked for, and the release of that call waits for
// its answer: go-capnp answers a cancelled call once the Finish that
// cancels it is written. A connection that takes no more writes (the
// daemon stopped reading it) must not hold Release: it returns at once,
// a Wait beside it reports the release, and once the connection ends
// (closed by the client, or cut) no goroutine is left behind.
func TestReleaseDoesNotWaitForAConnectionThatTakesNoWrites(t *testing.T) {
	sock := serve(t)
	wasm := abitest.WAT(t, "daemon/testdata/guests/spin.wat")
	for _, end := range []string{"closed", "cut"} {
		before := runtime.NumGoroutine()
		c, sc := dialStalling(t, sock)
		releaseOnStalledConn(t, c, sc, wasm)
		if end == "closed" {
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		} else {
			// The connection ends under the client, as when the daemon
			// goes away: the write waiting in it fails.
			sc.Close()
			select {
			case <-c.Done():
			case <-time.After(hangGuard):
				t.Fatalf("the client has not seen its connection cut after %v", hangGuard)
			}
		}
		awaitGoroutines(t, before, "after the connection was "+end)
		c.Close()
	}
}

// releaseOnStalledConn launches wasm attached through c, stalls sc, c's
// connection, and releases the guest's handle with a Wait beside it:
// Release returns, and Wait says the handle was released.
func releaseOnStalledConn(t *testing.T, c *client.Client, sc *stallingConn, wasm []byte) {
	t.Helper()
	ctx := context.Background()
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: wasm})
	if err != nil {
		t.Fatal(err)
	}
	// A round trip after the launch: every message before it (the launch,
	// and the wait asked for with it) has been written.
	if _, err := g.Info(ctx); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		_, err := g.Wait(ctx)
		waited <- err
	}()
	sc.stall()
	released := make(chan struct{})
	go func() {
		g.Release()
		close(released)
	}()
	select {
	case <-released:
	case <-time.After(hangGuard):
		t.Fatalf("Release still waits %v for a connection that takes no writes", hangGuard)
	}
	select {
	case err := <-waited:
		if err == nil || !strings.Contains(err.Error(), "released") {
			t.Errorf("Wait beside Release: %v, want the handle was released", err)
		}
	case <-time.After(hangGuard):
		t.Errorf("Wait beside Release still waits %v", hangGuard)
	}
}

// callTimeout is the context these tests give the calls they want given
// up. Nothing depends on its length: each call is waited for until it
// returns, which it does once its context has ended.
const callTimeout = 100 * time.Millisecond

// stalledCall is a call through the client with ctx, made once its
// connection has stalled.
type stalledCall struct {
	name string
	call func(ctx context.Context) error
}

// Every call returns once its context ends, with an error that wraps the
// context's and says what it gave up waiting for, whether the daemon has
// stopped reading the connection (the call, or the Finish that cancels
// it, is never written) or reads it but never answers. Once the
// connection ends, closed by the client or cut under it, no goroutine is
// left behind.
func TestEveryCallReturnsWhenItsContextEndsOnAConnectionThatDoesNotAnswer(t *testing.T) {
	sock := serve(t)
	spin := abitest.WAT(t, "daemon/testdata/guests/spin.wat")
	ctx := context.Background()
	// A detached guest, launched on a connection that does not stall.
	own := dial(t, sock)
	d, err := own.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: spin, Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := d.Kill(ctx, ""); err != nil {
			t.Errorf("killing the detached guest: %v", err)
		}
		d.Release()
	})
	for _, stall := range []string{"writes", "reads"} {
		for _, end := range []string{"closed", "cut"} {
			t.Run(stall+" stalled, connection "+end, func(t *testing.T) {
				callsOnStalledConn(t, sock, spin, d.ID(), stall, end)
			})
		}
	}
}

// callsOnStalledConn makes stalledCalls, on the detached guest id among
// others, through a connection to the daemon at sock whose writes or
// reads (stall) are stalled, then ends the connection (end: "closed" or
// "cut"), and checks that nothing is left.
func callsOnStalledConn(t *testing.T, sock string, spin []byte, id, stall, end string) {
	ctx := context.Background()
	before := runtime.NumGoroutine()
	c, sc := dialStalling(t, sock)
	defer c.Close()
	calls, release := stalledCalls(t, c, id, spin)
	if stall == "writes" {
		sc.stall()
	} else {
		sc.stallReads()
	}
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(calls))
	waiting := make(map[string]bool, len(calls))
	for _, call := range calls {
		waiting[call.name] = true
		go func() {
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			defer cancel()
			results <- result{call.name, call.call(cctx)}
		}()
	}
	guard := time.After(hangGuard)
	for len(waiting) > 0 {
		select {
		case r := <-results:
			delete(waiting, r.name)
			if !errors.Is(r.err, context.DeadlineExceeded) || !strings.Contains(r.err.Error(), "gave up waiting for") {
				t.Errorf("%s past its context's end: %v; want an error that says it gave up waiting, wrapping context.DeadlineExceeded", r.name, r.err)
			}
		case <-guard:
			t.Fatalf("with %s stalled, %d calls still wait %v after their context ended: %v", stall, len(waiting), hangGuard, waiting)
		}
	}
	release()
	endConn(t, c, sc, end)
	awaitGoroutines(t, before, "after the stalled connection was "+end)
}

// stalledCalls returns the calls callsOnStalledConn makes through c, and
// makes, before the stall, what they need: a handle on the detached guest
// id, an attached guest and a capability, which release gives up. What a
// call changes (when the daemon reads it) ends with the connection: it
// kills and grants to the attached guest, not to the detached one, which
// runs on as before.
func stalledCalls(t *testing.T, c *client.Client, id string, spin []byte) (calls []stalledCall, release func()) {
	ctx := context.Background()
	g, err := c.Guest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: spin})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cp, err := c.Mint(ctx, "dir:"+dir+"=data")
	if err != nil {
		t.Fatal(err)
	}
	// A round trip: every message before it has been written.
	if _, err := c.Whoami(ctx); err != nil {
		t.Fatal(err)
	}
	release = func() {
		g.Release()
		a.Release()
		cp.Release()
	}
	return []stalledCall{
		{"Info", func(ctx context.Context) error { _, err := g.Info(ctx); return err }},
		{"Wait of a detached guest", func(ctx context.Context) error { _, err := g.Wait(ctx); return err }},
		{"Wait of an attached guest", func(ctx context.Context) error { _, err := a.Wait(ctx); return err }},
		{"Kill", func(ctx context.Context) error { _, err := a.Kill(ctx, ""); return err }},
		{"Grant", func(ctx context.Context) error { _, err := a.Grant(ctx, "dir:"+dir+"=more"); return err }},
		{"Logs", func(ctx context.Context) error { _, err := g.Logs(ctx, io.Discard, nil, true); return err }},
		{"List", func(ctx context.Context) error { _, err := c.List(ctx); return err }},
		{"Guests", func(ctx context.Context) error {
			return c.Guests(ctx, true, func(client.GuestSummary) error { return nil })
		}},
		{"Launch", func(ctx context.Context) error {
			g, err := c.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: spin})
			if err == nil {
				g.Release()
			}
			return err
		}},
		{"Whoami", func(ctx context.Context) error { _, err := c.Whoami(ctx); return err }},
		{"Mint", func(ctx context.Context) error { _, err := c.Mint(ctx, "dir:"+dir+"=again"); return err }},
		{"Cap.Info", func(ctx context.Context) error { _, err := cp.Info(ctx); return err }},
	}, release
}

// endConn ends c's connection, sc: closed by c, or cut under it (as when
// the daemon goes away).
func endConn(t *testing.T, c *client.Client, sc *stallingConn, end string) {
	t.Helper()
	if end == "closed" {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		return
	}
	sc.Close()
	select {
	case <-c.Done():
	case <-time.After(hangGuard):
		t.Fatalf("the client has not seen its connection cut after %v", hangGuard)
	}
}

// A launch given up (its context ended) while it waited behind a write
// the daemon had not taken is never sent. The output sink its request
// carried is given back, and the goroutine serving it ends, once the
// connection takes writes again, not only when it ends: go-capnp had
// kept a capability exported for a call it never sent for the
// connection's life. The connection goes on serving calls.
func TestALaunchGivenUpBeforeItIsSentGivesBackItsOutputSink(t *testing.T) {
	sock := serve(t)
	spin := abitest.WAT(t, "daemon/testdata/guests/spin.wat")
	c, sc := dialStalling(t, sock)
	defer c.Close()
	before := sinkServers()
	sc.stall()
	// A call whose write waits: every message after it waits behind it.
	whoami := make(chan error, 1)
	go func() {
		_, err := c.Whoami(context.Background())
		whoami <- err
	}()
	<-sc.writeWaits
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if g, err := c.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: spin, Stdout: io.Discard}); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			g.Release()
		}
		t.Fatalf("Launch behind a stalled write: %v, want it to give up at its context's end", err)
	}
	sc.resume()
	select {
	case err := <-whoami:
		if err != nil {
			t.Fatalf("the call the stall held: %v", err)
		}
	case <-time.After(hangGuard):
		t.Fatalf("the call the stall held is not answered after %v", hangGuard)
	}
	awaitSinkServers(t, before, "after the launch given up before it was sent")
	if _, err := c.Whoami(context.Background()); err != nil {
		t.Fatalf("a call after the launch given up: %v", err)
	}
}

// A launch given up before it is sent takes with it the wait for the
// exit status Launch pipelined on it: that call, queued after it, is not
// sent either, even when its turn comes before Launch has given it up
// (held there by SetAfterLaunchGivenUp). go-capnp sent it, naming a
// question the daemon had never been asked, and the daemon hung up: the
// call queued after it failed, and so did every later one.
func TestACallPipelinedOnALaunchNeverSentIsNotSentEither(t *testing.T) {
	sock := serve(t)
	spin := abitest.WAT(t, "daemon/testdata/guests/spin.wat")
	c, sc := dialStalling(t, sock)
	defer c.Close()
	sc.stall()
	// A call whose write waits: every message after it waits behind it.
	whoami := make(chan error, 1)
	go func() {
		_, err := c.Whoami(context.Background())
		whoami <- err
	}()
	<-sc.writeWaits
	var after error
	defer client.SetAfterLaunchGivenUp(func() {
		// The launch's context has ended, and its wait is not given up
		// yet: let the queue go, and make a call behind both.
		sc.resume()
		if err := <-whoami; err != nil {
			t.Errorf("the call the stall held: %v", err)
		}
		_, after = c.Whoami(context.Background())
	})()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if g, err := c.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: spin}); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			g.Release()
		}
		t.Fatalf("Launch behind a stalled write: %v, want it to give up at its context's end", err)
	}
	if after != nil {
		t.Fatalf("a call queued behind the launch given up and its pipelined wait: %v", after)
	}
}
