package client_test

import (
	"context"
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

// stallingConn is a connection to the daemon whose writes can be stopped:
// once stall is called, every write waits until the connection is closed.
// That is what a write to a unix socket does once the daemon has stopped
// reading it (stuck, or stopped with SIGSTOP) and the socket's buffers
// are full. Reads go on as before.
type stallingConn struct {
	net.Conn
	stalled   chan struct{}
	closed    chan struct{}
	stallOnce sync.Once
	closeOnce sync.Once
}

func newStallingConn(nc net.Conn) *stallingConn {
	return &stallingConn{Conn: nc, stalled: make(chan struct{}), closed: make(chan struct{})}
}

// stall makes every write from now on wait for Close (the client's, or
// one that cuts the connection under it).
func (c *stallingConn) stall() { c.stallOnce.Do(func() { close(c.stalled) }) }

func (c *stallingConn) Write(p []byte) (int, error) {
	select {
	case <-c.stalled:
		<-c.closed
		return 0, net.ErrClosed
	default:
		return c.Conn.Write(p)
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
