package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/daemon/server"
	"github.com/sandboxd/sandboxd/internal/uidtest"
)

// asOtherUsers lets every user reach d's socket, as an operator who
// loosens its mode would, so that the test can connect as other uids
// (which needs root).
func (d *testDaemon) asOtherUsers(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatal("this test connects as other users, which needs root")
	}
	if err := os.Chmod(d.socket, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(d.socket), 0o755); err != nil {
		t.Fatal(err)
	}
}

// dialAs makes n connections to d as uid (with gid the same), closed when
// the test ends.
func (d *testDaemon) dialAs(t *testing.T, uid uint32, n int) []*net.UnixConn {
	t.Helper()
	conns, err := uidtest.Dial(d.socket, uid, uid, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	return conns
}

// clientAs returns a client of d connected as uid, which the daemon has
// served a call, or the error with which the daemon refused it.
func (d *testDaemon) clientAs(t *testing.T, uid uint32) (*client.Client, error) {
	t.Helper()
	ctx := context.Background()
	c, err := client.NewClient(ctx, d.dialAs(t, uid, 1)[0])
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	p, err := c.Whoami(ctx)
	if err != nil {
		return nil, err
	}
	if p.UID != uid {
		t.Fatalf("a connection made as uid %d acts for uid %d", uid, p.UID)
	}
	return c, nil
}

// refused fails the test unless d hangs up on a new connection of uid at
// once, sending nothing, and logs the reason want.
func (d *testDaemon) refused(t *testing.T, uid uint32, want string) {
	t.Helper()
	c := d.dialAs(t, uid, 1)[0]
	// A hang guard: the daemon closes a refused connection as it accepts it.
	_ = c.SetReadDeadline(time.Now().Add(server.HangGuard))
	if n, err := io.Copy(io.Discard, c); n != 0 || err != nil {
		t.Fatalf("a connection of uid %d over its limits: read %d bytes, %v; want a hang-up", uid, n, err)
	}
	if !strings.Contains(d.logs.String(), want) {
		t.Fatalf("the refusal of uid %d is not logged as %q", uid, want)
	}
}

func TestOneUserHoldingManyIdleConnectionsLocksNoOtherUserOut(t *testing.T) {
	// The bootstrap timeout would end the idle connections below; it is
	// set beyond the test so that only the connection limits decide.
	d := startDaemon(t, server.Limits{BootstrapTimeout: time.Hour})
	d.asOtherUsers(t)
	const attacker, other = 65534, 65533
	const held = 1500
	d.dialAs(t, attacker, held)
	// The daemon accepts in order, so both come after all of the above.
	ctx := context.Background()
	if o, err := d.clientAs(t, other); err != nil {
		t.Errorf("uid %d is locked out while uid %d holds %d idle connections: %v", other, attacker, held, err)
	} else if _, err := o.List(ctx); err != nil {
		t.Errorf("list as uid %d while uid %d holds %d idle connections: %v", other, attacker, held, err)
	}
	if _, err := d.dial(t).List(ctx); err != nil {
		t.Fatalf("list as root while uid %d holds %d idle connections: %v", attacker, held, err)
	}
	share := server.Limits{}.WithDefaults().MaxConnectionsPerUser
	want := fmt.Sprintf("uid %d has %d connections open, its share (--max-conns-per-user %d)", attacker, share, share)
	if n := strings.Count(d.logs.String(), want); n != held-share {
		t.Fatalf("%d refusals of uid %d logged as %q; want %d, all but its share of %d", n, attacker, want, held-share, share)
	}
}

func TestConnectionsReservedForRootAreLeftToIt(t *testing.T) {
	d := startDaemon(t, server.Limits{MaxConnections: 4, ReservedConnections: 1, MaxConnectionsPerUser: 2})
	d.asOtherUsers(t)
	const a, b = 65534, 65533
	ctx := context.Background()
	var first *client.Client
	for i := range 2 {
		c, err := d.clientAs(t, a)
		if err != nil {
			t.Fatalf("connection %d of uid %d, within its share of 2: %v", i+1, a, err)
		}
		first = c
	}
	d.refused(t, a, "uid 65534 has 2 connections open, its share (--max-conns-per-user 2)")
	if _, err := d.clientAs(t, b); err != nil {
		t.Fatalf("uid %d's first connection, the last one not reserved: %v", b, err)
	}
	d.refused(t, b, "users other than root and the daemon's have 3 connections open, all but the 1 reserved for root and the daemon's user (--max-conns 4, --reserved-conns 1)")
	if _, err := d.dial(t).Whoami(ctx); err != nil {
		t.Fatalf("root in the reserved place: %v", err)
	}
	d.refused(t, 0, "4 connections are open, the limit (--max-conns 4)")
	first.Close()
	eventually(t, server.HangGuard, "a user's place frees when one of its connections ends", func() bool {
		c, err := d.clientAs(t, a)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func TestConnectionWithoutAFirstMessageIsClosedAtTheBootstrapTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	d := startDaemon(t, server.Limits{BootstrapTimeout: timeout})
	for _, sent := range [][]byte{nil, {0, 0, 0, 0}} { // nothing; the start of a message header
		nc, err := net.Dial("unix", d.socket)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(sent); err != nil {
			t.Fatal(err)
		}
		// A hang guard: the daemon hangs up 100ms after accepting.
		_ = nc.SetReadDeadline(time.Now().Add(server.HangGuard))
		if _, err := io.Copy(io.Discard, nc); err != nil { // the abort message, then EOF
			t.Fatalf("after sending %q: reading until the daemon hangs up: %v", sent, err)
		}
		nc.Close()
	}
	// The warning quotes the reason; go-capnp's own debug line repeats it.
	want := `error="client sent no complete message within 100ms of connecting (the bootstrap timeout)"`
	if n := strings.Count(d.logs.String(), want); n != 2 {
		t.Fatalf("%d disconnects logged with %s, want 2", n, want)
	}
}

// Guest names are one namespace for every user; a launch whose name
// another user's guest has is refused without naming that guest, which
// ps, caps and every lookup by id hide from this user.
func TestANameTakenByAnotherUsersGuestDoesNotNameIt(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	d.asOtherUsers(t)
	ctx := context.Background()
	alice, err := d.clientAs(t, 1000)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := d.clientAs(t, 1001)
	if err != nil {
		t.Fatal(err)
	}
	wasm := abitest.WAT(t, sleepWAT)
	g, err := alice.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: wasm, GuestName: "web"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	_, err = bob.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: wasm, GuestName: "web"})
	if err == nil || strings.Contains(err.Error(), g.ID()) || !strings.Contains(err.Error(), "another user's guest") {
		t.Fatalf("bob's launch with alice's guest's name: %v; want it refused without naming %s", err, g.ID())
	}
	if strings.Contains(err.Error(), "sandboxd rm") || strings.Contains(err.Error(), "sandboxd kill") {
		t.Errorf("bob's launch with alice's guest's name: %v; bob can neither kill nor rm her guest", err)
	}
	// Alice's own guest is named, with how she frees the name: it runs,
	// so kill it, then rm it.
	_, err = alice.Launch(ctx, client.LaunchRequest{Name: "sleep_poll.wat", Wasm: wasm, GuestName: "web"})
	if err == nil || !strings.Contains(err.Error(), g.ID()) {
		t.Fatalf("alice's second launch named web: %v; want it refused naming her guest %s", err, g.ID())
	}
	for _, want := range []string{"sandboxd kill " + g.ID(), "sandboxd rm " + g.ID()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("alice's second launch named web: %v; want it to say %q", err, want)
		}
	}
}

// A name taken by an ended guest the caller may see is freed by rm,
// which the refusal says, naming the guest; waiting frees nothing (the
// guest stays listed until 256 more have ended). Once rm has forgotten
// it, the name is free.
func TestANameTakenByAnEndedGuestSaysRmFreesIt(t *testing.T) {
	d := startDaemon(t, server.Limits{})
	c := d.dial(t)
	ctx := context.Background()
	hello := abitest.WAT(t, helloWAT)
	g, err := c.Launch(ctx, client.LaunchRequest{Name: "hello.wat", Wasm: hello, GuestName: "fin"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	if st, err := g.Wait(ctx); err != nil || st.Code != 7 {
		t.Fatalf("hello: %+v, %v", st, err)
	}
	_, err = c.Launch(ctx, client.LaunchRequest{Name: "hello.wat", Wasm: hello, GuestName: "fin"})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Kind != client.KindRequest || !strings.Contains(err.Error(), "sandboxd rm "+g.ID()) {
		t.Fatalf("a launch named as an ended guest: %v; want a request error saying sandboxd rm %s", err, g.ID())
	}
	if strings.Contains(err.Error(), "sandboxd kill") || strings.Contains(err.Error(), "forgotten") {
		t.Errorf("a launch named as an ended guest: %v; want rm alone", err)
	}
	if err := c.Forget(ctx, g.ID()); err != nil {
		t.Fatal(err)
	}
	again, err := c.Launch(ctx, client.LaunchRequest{Name: "hello.wat", Wasm: hello, GuestName: "fin"})
	if err != nil {
		t.Fatalf("a launch named fin once rm forgot the guest of that name: %v", err)
	}
	again.Release()
}
