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
	"sync/atomic"
	"testing"
	"time"

	capnp "capnproto.org/go/capnp/v3"
	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/daemon/server"
	"github.com/sandboxd/sandboxd/internal/rpctest"
	"github.com/sandboxd/sandboxd/schemas"
	"golang.org/x/sys/unix"
)

// stillServes fails the test unless a fresh client can launch a guest.
func (d *testDaemon) stillServes(t *testing.T) {
	t.Helper()
	c := d.dial(t)
	g, err := c.Launch(context.Background(), client.LaunchRequest{Name: "hello.wat", Wasm: abitest.WAT(t, helloWAT)})
	if err != nil {
		t.Fatalf("the daemon no longer serves: %v", err)
	}
	defer g.Release()
	if st, err := g.Wait(context.Background()); err != nil || st.Code != 7 {
		t.Fatalf("the daemon no longer serves: %+v, %v", st, err)
	}
}

func TestClientExceedingOutstandingCallsIsDisconnectedAndItsGuestsKilled(t *testing.T) {
	d := startDaemon(t, server.Limits{MaxOutstandingCalls: 8})
	ctx := context.Background()
	c := d.dial(t)
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: abitest.WAT(t, spinWAT)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	// A second handle, whose every Wait is a call of its own.
	h, err := c.Guest(ctx, g.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.Wait(ctx)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	var disconnected int
	for err := range errs {
		var ce *client.Error
		if errors.As(err, &ce) && ce.Disconnected {
			disconnected++
		} else {
			t.Errorf("wait on a spinning guest returned %v, want a disconnect", err)
		}
	}
	if disconnected != 20 {
		t.Fatalf("%d of 20 calls saw the disconnect", disconnected)
	}
	eventually(t, server.HangGuard, "the daemon logs why it dropped the client", func() bool {
		return strings.Contains(d.logs.String(), "more than 8 calls outstanding")
	})
	eventually(t, server.HangGuard, "the flooding client's guest is killed", func() bool {
		for _, g := range d.sup.Guests() {
			if running, _ := g.Status(); running {
				return false
			}
		}
		return true
	})
	d.stillServes(t)
}

func TestOversizedRequestIsRefusedAndTheDaemonServesOthers(t *testing.T) {
	d := startDaemon(t, server.Limits{MaxMessageSize: 1 << 20})
	c := d.dial(t)
	_, err := c.Launch(context.Background(), client.LaunchRequest{Name: "big", Wasm: make([]byte, 2<<20)})
	var ce *client.Error
	if !errors.As(err, &ce) || !ce.Disconnected {
		t.Fatalf("a 2 MiB request to a daemon with a 1 MiB limit: %v", err)
	}
	eventually(t, server.HangGuard, "the daemon logs the oversized message", func() bool {
		return strings.Contains(d.logs.String(), "message too large")
	})
	d.stillServes(t)
}

// Each capability a client's message carries costs the daemon an import
// of some 400 bytes for a descriptor of 16 in the message: a message is
// counted at what it costs, so that a small message of many capabilities
// is refused as an oversized one is, and one connection cannot make the
// daemon hold many times the bytes it sent.
func TestAMessageOfManyCapabilitiesIsCountedAtWhatItCosts(t *testing.T) {
	d := startDaemon(t, server.Limits{MaxMessageSize: 1 << 20})
	nc, err := net.Dial("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	boot, err := rpctest.Bootstrap(0)
	if err != nil {
		t.Fatal(err)
	}
	call, err := rpctest.CallCarrying(1, 0, schemas.Supervisor_TypeID, 7, 10000) // whoami, about 160 KB
	if err != nil {
		t.Fatal(err)
	}
	if len(call) >= 1<<20 {
		t.Fatalf("the call is %d bytes: not below the limit", len(call))
	}
	if _, err := nc.Write(append(boot, call...)); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(server.HangGuard)) // only a hang reaches it
	if _, err := io.Copy(io.Discard, nc); err != nil {
		t.Fatalf("reading until the daemon hangs up: %v", err)
	}
	if want := "carrying 10000 capabilities"; !strings.Contains(d.logs.String(), want) {
		t.Fatalf("no disconnect logged with %q; logs:\n%s", want, d.logs.String())
	}
	d.stillServes(t)
}

// A client that stalls in a message is cut off after MessageTimeout, also
// when the message began in the same read as a whole one before it (the
// daemon reads ahead of the message it decodes, and times a message from
// when its first byte is decoded).
func TestClientStallingMidMessageIsDisconnected(t *testing.T) {
	boot, err := rpctest.Bootstrap(0)
	if err != nil {
		t.Fatal(err)
	}
	for name, sent := range map[string][]byte{
		"first message":                {0, 0, 0, 0}, // the first word of a header, then nothing
		"after a whole one, one write": append(boot, 0, 0, 0, 0),
	} {
		t.Run(name, func(t *testing.T) {
			d := startDaemon(t, server.Limits{MessageTimeout: 200 * time.Millisecond})
			nc, err := net.Dial("unix", d.socket)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := nc.Write(sent); err != nil {
				t.Fatal(err)
			}
			// Only the message timeout ends the read before the hang guard.
			_ = nc.SetReadDeadline(time.Now().Add(server.HangGuard))
			if _, err := io.Copy(io.Discard, nc); err != nil { // any answer, the abort, then EOF
				t.Fatalf("reading until the daemon hangs up: %v", err)
			}
			// The message timeout, not the later bootstrap timeout, hung up.
			if want := "client took longer than 200ms to send one message"; !strings.Contains(d.logs.String(), want) {
				t.Fatalf("no disconnect logged with %q; logs:\n%s", want, d.logs.String())
			}
			d.stillServes(t)
		})
	}
}

func TestIdleClientIsNotDisconnected(t *testing.T) {
	d := startDaemon(t, server.Limits{MessageTimeout: 100 * time.Millisecond})
	c := d.dial(t)
	ctx := context.Background()
	if _, err := c.Whoami(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // idle between messages: no deadline applies
	if _, err := c.Whoami(ctx); err != nil {
		t.Fatalf("an idle client was dropped: %v", err)
	}
}

func TestObjectsPerConnectionAreBounded(t *testing.T) {
	d := startDaemon(t, server.Limits{MaxObjects: 4})
	c := d.dial(t)
	ctx := context.Background()
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: abitest.WAT(t, spinWAT), Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		g.Kill(ctx, "test done")
		g.Release()
	}()
	var held []*client.Guest
	defer func() {
		for _, h := range held {
			h.Release()
		}
	}()
	for i := 0; i < 3; i++ {
		h, err := c.Guest(ctx, g.ID())
		if err != nil {
			t.Fatalf("object %d of 4: %v", i+2, err)
		}
		held = append(held, h)
	}
	if _, err := c.Guest(ctx, g.ID()); err == nil || !strings.Contains(err.Error(), "release ones you no longer need") {
		t.Fatalf("a fifth object: %v", err)
	}
	held[0].Release()
	held = held[1:]
	eventually(t, server.HangGuard, "a released object frees its place", func() bool {
		h, err := c.Guest(ctx, g.ID())
		if err != nil {
			return false
		}
		held = append(held, h)
		return true
	})
}

func TestConnectionsBeyondTheLimitAreRefused(t *testing.T) {
	d := startDaemon(t, server.Limits{MaxConnections: 2})
	ctx := context.Background()
	a, b := d.dial(t), d.dial(t)
	for _, c := range []*client.Client{a, b} {
		if _, err := c.Whoami(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if third, err := client.Dial(ctx, d.socket); err == nil {
		third.Close()
		t.Fatal("a third connection was served with a limit of 2")
	}
	eventually(t, server.HangGuard, "the refusal is logged", func() bool {
		return strings.Contains(d.logs.String(), "too many connections")
	})
	a.Close()
	eventually(t, server.HangGuard, "a place frees when a client leaves", func() bool {
		c, err := client.Dial(ctx, d.socket)
		if err != nil {
			return false
		}
		defer c.Close()
		_, err = c.Whoami(ctx)
		return err == nil
	})
}

func TestForeignCapabilitiesAreRefused(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	ctx := context.Background()
	// A Cap the client serves itself, passed where the daemon expects its
	// own: the daemon must not be fooled into treating it as one.
	fake := schemas.Cap_ServerToClient(fakeCap{})
	sup := d.rawSupervisor(t)
	f, rel := sup.Launch(ctx, func(p schemas.Supervisor_launch_Params) error {
		r, err := p.NewRequest()
		if err != nil {
			return err
		}
		if err := r.SetWasm(abitest.WAT(t, helloWAT)); err != nil {
			return err
		}
		l, err := r.NewCaps(1)
		if err != nil {
			return err
		}
		if err := l.At(0).SetName("x"); err != nil {
			return err
		}
		return l.At(0).SetCap(fake)
	})
	defer rel()
	if _, err := f.Struct(); err == nil || !strings.Contains(err.Error(), "only Cap objects from this daemon") {
		t.Fatalf("a client-served Cap was accepted: %v", err)
	}
}

type fakeCap struct{}

func (fakeCap) Info(context.Context, schemas.Cap_info) error         { return nil }
func (fakeCap) Restrict(context.Context, schemas.Cap_restrict) error { return nil }
func (fakeCap) Delegate(context.Context, schemas.Cap_delegate) error { return nil }
func (fakeCap) Revoke(context.Context, schemas.Cap_revoke) error     { return nil }

// serveBytes hands the daemon a connection (a socket pair, so that peer
// credentials exist) on which it reads exactly in, then end of file.
func serveBytes(t testing.TB, srv *server.Server, in []byte) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "client"), os.NewFile(uintptr(fds[1]), "daemon")
	fc, err := net.FileConn(theirs)
	theirs.Close()
	if err != nil {
		t.Fatal(err)
	}
	srv.ServeConn(fc.(*net.UnixConn))
	done := make(chan struct{})
	go func() { // drain what the daemon answers until it hangs up
		io.Copy(io.Discard, ours)
		close(done)
	}()
	ours.Write(in)
	unix.Shutdown(fds[0], unix.SHUT_WR)
	select {
	case <-done:
	case <-time.After(server.HangGuard):
		t.Fatalf("the daemon did not hang up after end of input %x", in)
	}
	ours.Close()
}

func FuzzServerInput(f *testing.F) {
	d := startDaemonUnwatched(f, server.Limits{MessageTimeout: time.Second})
	f.Add(bootstrap(f, 0))
	f.Add(selfPipelinedCall(f))
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		serveBytes(t, d.srv, in)
	})
}

func TestRunningGuestsPerPrincipalAreBounded(t *testing.T) {
	d := startDaemon(t, server.Limits{MaxGuests: 2})
	ctx := context.Background()
	c1, c2 := d.dial(t), d.dial(t)
	spin := abitest.WAT(t, spinWAT)
	a, err := c1.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: spin})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	b, err := c2.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: spin})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	// The limit is per principal, over all its connections.
	if _, err := c1.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: spin}); err == nil || !strings.Contains(err.Error(), "--max-guests") {
		t.Fatalf("a third running guest: %v", err)
	}
	if _, err := a.Kill(ctx, "make room"); err != nil {
		t.Fatal(err)
	}
	eventually(t, server.HangGuard, "an exited guest frees its place", func() bool {
		g, err := c1.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: spin})
		if err != nil {
			return false
		}
		g.Release()
		return true
	})
}

// An attached guest that has exited gives its place under --max-guests
// back when it exits, even while its client has not taken the output it
// was sent (a client stuck writing to its terminal, or hung): a client
// that never acknowledges cannot hold a place for a guest that has ended.
// Its exit status stays for that client, which reads it once it goes on.
func TestAnExitedAttachedGuestFreesItsPlaceBeforeItsClientTakesItsOutput(t *testing.T) {
	d := startDaemon(t, server.Limits{MaxGuests: 2})
	ctx := context.Background()
	c, op := d.dial(t), d.dial(t)
	w := stuckWriter{release: make(chan struct{})}
	unstick := sync.OnceFunc(func() { close(w.release) })
	defer unstick()
	hello := abitest.WAT(t, helloWAT)
	var attached []*client.Guest
	for range 2 {
		g, err := c.Launch(ctx, client.LaunchRequest{Name: "hello.wat", Wasm: hello, Stdout: w})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Release()
		attached = append(attached, g)
	}
	for _, g := range attached {
		h, err := op.Guest(ctx, g.ID())
		if err != nil {
			t.Fatal(err)
		}
		st, err := h.Wait(ctx) // another handle: it waits for the exit, not for the output
		h.Release()
		if err != nil || st.Code != 7 {
			t.Fatalf("guest %s: %+v, %v; want exit 7", g.ID(), st, err)
		}
	}
	eventually(t, server.HangGuard, "the exited guests whose client has not taken their output free their places", func() bool {
		return server.RunningGuests(d.srv) == 0
	})
	g, err := op.Launch(ctx, client.LaunchRequest{Name: "spin.wat", Wasm: abitest.WAT(t, spinWAT)})
	if err != nil {
		t.Fatalf("a launch after both guests exited, their client not acknowledging: %v", err)
	}
	g.Release()
	unstick() // the client goes on: it takes the output, then the status
	for _, g := range attached {
		if st, err := g.Wait(ctx); err != nil || st.Code != 7 {
			t.Errorf("the launching client's Wait of %s: %+v, %v; want exit 7", g.ID(), st, err)
		}
	}
}

// A client that stops reading its socket while the daemon writes to it
// is cut off once one write has waited WriteTimeout, and the daemon
// serves on. The client asks for the bootstrap capability again and again
// (finishing each question, so that none stays outstanding) and never
// reads an answer: once the socket's buffers are full, the daemon's next
// answer waits in its write.
func TestClientThatStopsReadingIsCutOffAfterTheWriteTimeout(t *testing.T) {
	d := startDaemon(t, server.Limits{WriteTimeout: 200 * time.Millisecond})
	nc, err := net.Dial("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetWriteDeadline(time.Now().Add(server.HangGuard))
	const cutOff = "client did not read its socket for 200ms"
	for q := uint32(0); !strings.Contains(d.logs.String(), cutOff); q++ {
		boot, err := rpctest.Bootstrap(q)
		if err != nil {
			t.Fatal(err)
		}
		fin, err := rpctest.Finish(q)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(append(boot, fin...)); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the daemon neither read nor hung up for %v", server.HangGuard)
			}
			break // the daemon hung up
		}
	}
	eventually(t, server.HangGuard, "the cut-off is logged", func() bool {
		return strings.Contains(d.logs.String(), cutOff)
	})
	// The daemon hung up: what it had sent before is read, then the end
	// (a reset, as the daemon closed its end with requests unread).
	_ = nc.SetReadDeadline(time.Now().Add(server.HangGuard))
	if _, err := io.Copy(io.Discard, nc); err != nil && !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("reading the connection after the cut-off: %v; want the daemon to have closed it", err)
	}
	d.stillServes(t)
}

// logged reports whether a line of logs holds every one of parts.
func logged(logs string, parts ...string) bool {
	for _, l := range strings.Split(logs, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

// firstWrite is an output writer that says when it has been written to.
type firstWrite struct {
	once  sync.Once
	wrote chan struct{}
}

func (w *firstWrite) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.wrote) })
	return len(p), nil
}

// A client that stops reading its socket (a stopped `sandboxd launch`)
// while its attached guests write is dropped once one write to it has
// waited WriteTimeout, and its guests are killed, as any disconnected
// client's are (docs/DAEMON.md, Limits). The daemon logged the timeout and
// kept the connection: the guests ran to their end, writing into the log
// alone, and the client, reading again, never had an answer to its Wait
// (or, as a later message broke, go-capnp panicked). The guests flood
// only once the client has stopped reading, several of them so that what
// is in flight (a window of 256 KiB each) is more than the socket's
// buffers hold, and a write waits.
func TestAClientThatStopsReadingIsDroppedAndItsAttachedGuestsKilled(t *testing.T) {
	d := startDaemon(t, server.Limits{WriteTimeout: 200 * time.Millisecond})
	ctx := context.Background()
	nc, err := net.Dial("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	pc := &pausableConn{Conn: nc}
	c, err := client.NewClient(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer pc.resume() // once the test is done, so that Close ends
	dir := shortTempDir(t)
	flood := abitest.WASIC(t, floodOnGoC)
	var launched []*client.Guest
	for range 8 {
		w := &firstWrite{wrote: make(chan struct{})}
		g, err := c.Launch(ctx, client.LaunchRequest{Name: "flood_on_go.c", Wasm: flood, Grants: []string{"dir:" + dir + "=data"}, Stdout: w})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Release()
		launched = append(launched, g)
		<-w.wrote // "start": the guest waits for data/go
	}
	pc.pause()
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, g := range launched {
		sg, ok := d.sup.Guest(g.ID())
		if !ok {
			t.Fatalf("guest %s is not listed", g.ID())
		}
		select {
		case <-sg.Done():
		case <-time.After(server.HangGuard):
			t.Fatalf("guest %s still runs %v after its client was cut off", g.ID(), server.HangGuard)
		}
		if _, st := sg.Status(); st.Killed != "the launching client disconnected" {
			t.Errorf("guest %s ended %+v; want it killed as its client went away", g.ID(), st)
		}
	}
	if !logged(d.logs.String(), "[WARN]", "disconnecting client", "client did not read its socket for 200ms (serve --write-timeout)") {
		t.Errorf("the daemon did not warn why it dropped the client")
	}
	pc.resume()
	wctx, cancel := context.WithTimeout(ctx, server.HangGuard)
	defer cancel()
	for _, g := range launched {
		st, err := g.Wait(wctx)
		var ce *client.Error
		if !errors.As(err, &ce) || !ce.Disconnected {
			t.Errorf("the cut-off client's Wait of %s: %+v, %v; want the connection lost", g.ID(), st, err)
		}
	}
	d.stillServes(t)
}

// Close while clients keep connecting: every connection is either served
// and then closed, or refused; none is left open, and nothing races
// (run with -race) or panics. A round catches a Close that meets a
// connection half set up only now and then, so there are forty.
func TestServerClosesWhileClientsConnect(t *testing.T) {
	for round := range 40 {
		t.Run(fmt.Sprint(round), closeWhileClientsConnect)
	}
}

func closeWhileClientsConnect(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	var dialed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				nc, err := net.Dial("unix", d.socket)
				if err != nil {
					return // the listener is closed
				}
				dialed.Add(1)
				nc.Close()
			}
		}()
	}
	eventually(t, server.HangGuard, "clients are connecting", func() bool { return dialed.Load() >= 64 })
	ctx, cancel := context.WithTimeout(context.Background(), server.HangGuard)
	defer cancel()
	if err := d.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if n := server.OpenConnections(d.srv); n != 0 {
		t.Errorf("%d connections open after Close", n)
	}
}

// MaxObjects is how many Guest and Cap objects a connection may hold: with
// one fewer held, a mint or a launch may still hand out one
// more, and only then are they refused.
func TestTheLastObjectAllowedCanBeMintedOrLaunched(t *testing.T) {
	d := startDaemon(t, server.Limits{MaxObjects: 2})
	c := d.dial(t)
	ctx := context.Background()
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: abitest.WAT(t, sleepWAT)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	x, err := c.Mint(ctx, "dir:"+shortTempDir(t))
	if err != nil {
		t.Fatalf("mint of a second object with MaxObjects 2: %v", err)
	}
	if _, err := c.Mint(ctx, "dir:"+shortTempDir(t)); err == nil || !strings.Contains(err.Error(), "the limit") {
		t.Fatalf("mint of a third object with MaxObjects 2: %v; want the limit", err)
	}
	x.Release()
	eventually(t, server.HangGuard, "the released object's room is free again", func() bool {
		x, err := c.Mint(ctx, "dir:"+shortTempDir(t))
		if err == nil {
			x.Release()
		}
		return err == nil
	})
	eventually(t, server.HangGuard, "the room is free again", func() bool {
		g2, err := c.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: abitest.WAT(t, sleepWAT), Detach: true})
		if err == nil {
			g2.Release()
		}
		return err == nil
	})
}

// pausableConn is a client's connection whose reads can be held, as a
// client that stops reading its socket does.
type pausableConn struct {
	net.Conn
	mu     sync.Mutex
	paused chan struct{} // closed to resume; nil when not paused
}

func (c *pausableConn) pause() {
	c.mu.Lock()
	c.paused = make(chan struct{})
	c.mu.Unlock()
}

func (c *pausableConn) resume() {
	c.mu.Lock()
	if c.paused != nil {
		close(c.paused)
		c.paused = nil
	}
	c.mu.Unlock()
}

func (c *pausableConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	paused := c.paused
	c.mu.Unlock()
	if paused != nil {
		<-paused
	}
	return c.Conn.Read(p)
}

// floodedClient connects a client to d through a connection the test
// can pause, calls before on it (if not nil), and launches flood.c
// detached, which has ended when it returns, its last MiB of output kept.
func floodedClient(t *testing.T, d *testDaemon, before func(*client.Client)) (*client.Guest, *pausableConn) {
	t.Helper()
	ctx := context.Background()
	nc, err := net.Dial("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	pc := &pausableConn{Conn: nc}
	c, err := client.NewClient(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Cleanup(pc.resume) // before the client closes
	if before != nil {
		before(c)
	}
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "flood.c", Wasm: abitest.C(t, floodC), Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Release)
	if st, err := g.Wait(ctx); err != nil || st.Code != 0 {
		t.Fatalf("flood: %+v, %v", st, err)
	}
	return g, pc
}

// A client that asks for the same guest's logs many times over and reads
// none of the answers has at most ConnOutputWindow of output in flight
// from the daemon, not one sink's window per call: the rest waits.
func TestOutputInFlightToOneClientIsBoundedOverAllItsSinks(t *testing.T) {
	d := startDaemon(t, server.Limits{WriteTimeout: server.HangGuard})
	ctx := context.Background()
	g, pc := floodedClient(t, d, nil)
	// Its last MiB is kept: each logs call alone has more than its
	// window to send.
	const calls = 64
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pc.pause()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	defer pc.resume()
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.LogsWith(lctx, client.LogsOptions{Stdout: io.Discard})
		}()
	}
	eventually(t, server.HangGuard, "every logs call waits for the client", func() bool {
		_, waiting := server.ConnOutput(d.srv)
		return waiting >= calls
	})
	inFlight, _ := server.ConnOutput(d.srv)
	pc.resume()
	cancel()
	wg.Wait()
	eventually(t, server.HangGuard, "the logs calls end once the client reads", func() bool {
		n, waiting := server.ConnOutput(d.srv)
		return n == 0 && waiting == 0
	})
	if inFlight > server.ConnOutputWindow {
		t.Fatalf("%d bytes of output in flight to a client that reads none of it: more than the %d a connection may have", inFlight, server.ConnOutputWindow)
	}
}

// A call the client cancels (sends Finish for) before the daemon has
// returned it is still in progress in the daemon, which keeps it (here,
// queued on a wait that has not returned) until it returns: it counts
// against MaxOutstandingCalls until then, so that cancelling each call
// does not let a client have more calls in progress than the limit.
func TestCancelledCallsCountAsOutstandingUntilTheyReturn(t *testing.T) {
	d := startDaemon(t, server.Limits{MaxOutstandingCalls: 8})
	ctx := context.Background()
	g, err := d.dial(t).Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: abitest.WAT(t, sleepWAT), Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		g.Kill(ctx, "test done")
		g.Release()
	}()
	nc, err := net.Dial("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msgs := [][]byte{bootstrap(t, 0)}
	add := func(b []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, b)
	}
	guestID := func(seg *capnp.Segment) (capnp.Ptr, error) {
		p, err := schemas.NewSupervisor_guest_Params(seg)
		if err != nil {
			return capnp.Ptr{}, err
		}
		return p.ToPtr(), p.SetId(g.ID())
	}
	add(rpctest.Call(1, 0, -1, schemas.Supervisor_TypeID, 2, guestID)) // guest(id)
	add(rpctest.Call(2, 1, 0, schemas.Guest_TypeID, 1, nil))           // .wait(), which does not return
	for q := uint32(3); q < 40; q++ {
		add(rpctest.Call(q, 2, 0, schemas.Guest_TypeID, 0, nil)) // queued on the wait
		add(rpctest.Finish(q))
	}
	add(rpctest.Call(100, 0, -1, schemas.Supervisor_TypeID, 7, nil)) // whoami
	if _, err := nc.Write(bytes.Join(msgs, nil)); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(server.HangGuard)) // only a hang reaches it
	answered, err := rpctest.AwaitReturn(nc, 100)
	if err != nil {
		t.Fatal(err)
	}
	if answered {
		t.Fatal("the daemon answered a client that had 39 calls in progress, past the limit of 8")
	}
	if want := "more than 8 calls outstanding"; !strings.Contains(d.logs.String(), want) {
		t.Fatalf("no disconnect logged with %q; logs:\n%s", want, d.logs.String())
	}
	d.stillServes(t)
}

// hangUpOnWaitingLogs has a client make calls logs calls of a guest with
// a full log, none of whose output it reads, and then close its socket
// while they wait for it, the daemon's stream calls to it still queued.
func hangUpOnWaitingLogs(t *testing.T, d *testDaemon, calls int) {
	hangUpOnWaitingLogsBeside(t, d, calls, func(*client.Client) {})
}

// hangUpOnWaitingLogsBeside is hangUpOnWaitingLogs with before first
// called on the client.
func hangUpOnWaitingLogsBeside(t *testing.T, d *testDaemon, calls int, before func(*client.Client)) {
	t.Helper()
	ctx := context.Background()
	g, pc := floodedClient(t, d, before)
	pc.pause()
	for range calls {
		go g.LogsWith(ctx, client.LogsOptions{Stdout: io.Discard})
	}
	eventually(t, server.HangGuard, "every logs call waits for the client", func() bool {
		_, waiting := server.ConnOutput(d.srv)
		return waiting >= calls
	})
	pc.Conn.Close()
	pc.resume()
}

// Close waits for the connections to end only until its context is done,
// whatever holds one up.
func TestServerCloseReturnsAtItsContextsEnd(t *testing.T) {
	d := startDaemon(t, server.Limits{WriteTimeout: server.HangGuard})
	hangUpOnWaitingLogs(t, d, 64)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- d.srv.Close(ctx) }()
	select {
	case <-closed:
	case <-time.After(server.HangGuard):
		t.Fatal("Server.Close did not return when its context ended")
	}
}

// A client that goes away while its logs calls wait for it to read their
// output is cleaned up after as any other: the calls end, and the guests
// it launched without detach are killed.
func TestAClientGoneWhileItsLogsCallsWaitIsCleanedUpAfter(t *testing.T) {
	d := startDaemon(t, server.Limits{WriteTimeout: server.HangGuard})
	var owned string
	hangUpOnWaitingLogsBeside(t, d, 64, func(c *client.Client) {
		g, err := c.Launch(context.Background(), client.LaunchRequest{Name: "sleep_poll.wat", Wasm: abitest.WAT(t, sleepWAT)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(g.Release)
		owned = g.ID()
	})
	eventually(t, server.HangGuard, "the guest of the client gone is killed", func() bool {
		g, ok := d.sup.Guest(owned)
		if !ok {
			return false
		}
		running, _ := g.Status()
		return !running
	})
}

// A logs call waiting for a client that does not read holds little more
// than the piece of the kept output it is sending, not a copy of all of
// it: a client making many logs calls of a guest with a full log cannot
// have the daemon hold its log (1 MiB) once for each.
func TestLogsCallsWaitingForTheClientHoldLittleOfTheLog(t *testing.T) {
	const calls = 64
	// In flight, at most the connection's window; beside it each call
	// may hold a call's worth twice (its piece of the log, and the
	// message made of it), and some MiB are the rest of the daemon and
	// the client. A copy of the log for each call would be 64 MiB.
	bound := server.ConnOutputWindow + calls*2*server.MaxOutputCall + 8<<20
	if held := heldByWaitingLogs(t, calls); held > uint64(bound) {
		t.Fatalf("%d logs calls waiting for a client that reads nothing hold %d MiB, more than %d MiB", calls, held>>20, bound>>20)
	}
}

// heldByWaitingLogs is the heap a client's logs calls of a guest with a
// full log hold, once all of them wait for the client, which reads
// nothing.
func heldByWaitingLogs(t *testing.T, calls int) uint64 {
	d := startDaemon(t, server.Limits{WriteTimeout: server.HangGuard})
	ctx := context.Background()
	g, pc := floodedClient(t, d, nil)
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	defer pc.resume()
	pc.pause()
	before := heapInUse()
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.LogsWith(lctx, client.LogsOptions{Stdout: io.Discard})
		}()
	}
	eventually(t, server.HangGuard, "every logs call waits for the client", func() bool {
		_, waiting := server.ConnOutput(d.srv)
		return waiting >= calls
	})
	return heapInUse() - before
}

// Output waiting for a client waits before it is sent, not after: the
// daemon has at most a connection's window of output queued for a client
// that reads none of it, however many of its logs calls (or attached
// guests) wait. (go-capnp asks a flow limiter only once a call is sent.)
func TestOutputWaitingForAClientIsNotQueuedPastTheWindow(t *testing.T) {
	const calls = 256
	bound := server.ConnOutputWindow + 8<<20
	if held := heldByWaitingLogs(t, calls); held > uint64(bound) {
		t.Fatalf("%d logs calls waiting for a client that reads nothing hold %d MiB, more than %d MiB", calls, held>>20, bound>>20)
	}
}

// heapInUse is the bytes of the heap's live objects, after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A detached guest writing a byte at a time to alternate streams makes
// the daemon keep its output in a piece per byte: the output kept for
// `logs` (--log-bytes, 1 MiB by default) held some 300 MiB of the
// daemon's memory, for as long as the guest is listed after it ended.
// It holds at most twice --log-bytes now (and a little).
func TestAGuestsKeptOutputOfTinyWritesHoldsAboutItsLogBytes(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	d.stillServes(t) // what serving a first guest allocates, before measuring
	ctx := context.Background()
	c := d.dial(t)
	before := heapInUse()
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "tiny_writes.wat", Wasm: abitest.WAT(t, tinyWritesWAT), Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	if st, err := g.Wait(ctx); err != nil || st.Code != 0 {
		t.Fatalf("the writer: %+v, %v; want exit 0", st, err)
	}
	grew := int64(heapInUse()) - int64(before)
	// 2 MiB and 64 KiB as counted (its 512 Ki pieces of a byte count
	// 33 MiB); the rest is what counting cannot see (allocation sizes)
	// and what a launch leaves behind.
	if limit := int64(8 << 20); grew > limit {
		t.Fatalf("the kept output of a guest that wrote 512 KiB a byte at a time grew the daemon's heap by %d bytes (limit %d): --log-bytes is %d",
			grew, limit, server.DefaultLogBytes)
	}
	t.Logf("the daemon's heap grew by %d bytes", grew)
}

// A guest that has ended keeps none of the stdin its launch carried (up
// to 1 MiB): each ended guest a user has not seen the last of (256 of
// them listed per user) kept all of it, besides its output.
func TestAnEndedGuestKeepsNoStdin(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	d.stillServes(t) // what serving a first guest allocates, before measuring
	ctx := context.Background()
	c := d.dial(t)
	stdin := bytes.Repeat([]byte("i"), 1<<20)
	hello := abitest.WAT(t, helloWAT) // exits 7 without reading stdin
	const n = 32
	before := heapInUse()
	for range n {
		g, err := c.Launch(ctx, client.LaunchRequest{Name: "hello.wat", Wasm: hello, Stdin: stdin, Detach: true})
		if err != nil {
			t.Fatal(err)
		}
		st, err := g.Wait(ctx)
		g.Release()
		if err != nil || st.Code != 7 {
			t.Fatalf("hello: %+v, %v; want exit 7", st, err)
		}
	}
	grew := int64(heapInUse()) - int64(before)
	if limit := int64(n * len(stdin) / 4); grew > limit {
		t.Fatalf("%d ended guests, each launched with %d bytes of stdin, grew the daemon's heap by %d bytes (limit %d)", n, len(stdin), grew, limit)
	}
	t.Logf("the daemon's heap grew by %d bytes", grew)
}

// budgetDaemon starts a daemon whose memory budget per user is budget,
// and returns it with the uid its clients act as.
func budgetDaemon(t *testing.T, budget uint64) (*testDaemon, uint32) {
	t.Helper()
	d := startDaemonOf(t, daemon.Options{MaxMemPerUser: budget}, server.Limits{}, watchClientLeaks(t), hclog.Debug, nil)
	return d, uint32(os.Getuid())
}

// What write_then_sleep.wat's kept output holds, as counted: 1 MiB in
// 256 pieces of 4 KiB, each 64 bytes more.
const (
	writerMem, writerStack = 64 << 10, 64 << 10
	writerCharge           = writerMem + writerStack
	writerOutputHeld       = 256 * (4<<10 + 64)
)

func launchWriter(t *testing.T, c *client.Client) (*client.Guest, error) {
	t.Helper()
	return c.Launch(context.Background(), client.LaunchRequest{Name: "write_then_sleep.wat", Wasm: abitest.WAT(t, writeThenSleepWAT),
		MemoryLimit: writerMem, MaxStack: writerStack, Detach: true})
}

// The output a running guest's output kept for `logs` holds counts against
// its user's memory budget (serve --max-mem-per-user) until the guest
// ends: up to twice --log-bytes and 64 KiB per guest, which a guest of
// --mem and --max-stack of 64 KiB each made the daemon hold beyond it, 16
// times its charge. A launch its output leaves no room for is refused;
// once the guest has ended, its output is still kept, and charged no more.
func TestARunningGuestsKeptOutputCountsAgainstTheMemoryBudgetPerUser(t *testing.T) {
	d, uid := budgetDaemon(t, 2*writerCharge+writerOutputHeld-1)
	ctx := context.Background()
	c := d.dial(t)
	g, err := launchWriter(t, c)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	server.Eventually(t, server.HangGuard, "the guest wrote its 1 MiB", func() bool {
		_, kept := server.KeptOutput(d.srv, g.ID())
		return kept == 1<<20
	})
	if got := d.sup.MemoryInUse(uid); got != writerCharge+writerOutputHeld {
		t.Errorf("memory in use while the guest runs, its 1 MiB of output kept: %d, want %d (its charge %d and its output's %d)",
			got, writerCharge+writerOutputHeld, writerCharge, writerOutputHeld)
	}
	if g2, err := launchWriter(t, c); err == nil {
		g2.Kill(ctx, "test")
		g2.Release()
		t.Errorf("a second launch, for which the first guest's output leaves no room in the budget, succeeded")
	} else if !strings.Contains(err.Error(), "memory budget per user") {
		t.Errorf("a second launch past the budget: %v, want the budget named", err)
	}
	if _, err := g.Kill(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	server.Eventually(t, server.HangGuard, "the ended guest's output no longer charged", func() bool { return d.sup.MemoryInUse(uid) == 0 })
	if _, kept := server.KeptOutput(d.srv, g.ID()); kept != 1<<20 {
		t.Errorf("the ended guest's output kept: %d bytes, want 1 MiB", kept)
	}
}

// A guest writing more than its user's budget leaves room for pushes its
// own oldest output out of the log: its writes succeed, and what it and
// its output hold stays within the budget.
func TestAGuestsOutputPastTheMemoryBudgetPushesOutItsOldest(t *testing.T) {
	const budget = writerCharge + 512<<10
	d, uid := budgetDaemon(t, budget)
	c := d.dial(t)
	g, err := launchWriter(t, c)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	server.Eventually(t, server.HangGuard, "the guest wrote its 1 MiB", func() bool {
		written, _ := server.KeptOutput(d.srv, g.ID())
		return written == 1<<20
	})
	_, kept := server.KeptOutput(d.srv, g.ID())
	if used := d.sup.MemoryInUse(uid); used > budget || kept > 512<<10 || kept < 256<<10 {
		t.Errorf("a guest that wrote 1 MiB under a budget with 512 KiB of room: %d bytes kept, %d of the budget of %d in use", kept, used, budget)
	}
	if _, err := g.Kill(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
}
