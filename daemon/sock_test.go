package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// sockGuest is the Go test guest that finds its sockets through socket
// activation only (daemon/testdata/guests/sockact).
const sockGuest = "daemon/testdata/guests/sockact"

// launchSock launches the socket-activation guest on a supervisor that
// resolves names with sockets, with grants and args, and returns it with
// its stdout.
func launchSock(t *testing.T, sockets func(GrantKind, string) (SockTarget, error), grants []string, args ...string) (*Supervisor, *Guest, *output) {
	t.Helper()
	s, err := New(context.Background(), Options{Sockets: sockets, CacheDir: testCache})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), HangGuard)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	m, err := s.Compile(context.Background(), "sockact", abitest.Go(t, sockGuest))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Release)
	var gs []Grant
	for _, text := range grants {
		gs = append(gs, mustGrant(t, text))
	}
	out := &output{wrote: make(chan struct{}, 1)}
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Grants: gs, Args: args, Stdout: out, Stderr: out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Kill("test over"); <-g.Done() })
	return s, g, out
}

// output is a guest's output that a test can wait on.
type output struct {
	abitest.Buffer
	wrote chan struct{}
}

func (o *output) Write(p []byte) (int, error) {
	n, err := o.Buffer.Write(p)
	select {
	case o.wrote <- struct{}{}:
	default:
	}
	return n, err
}

// await waits until the output contains want.
func (o *output) await(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(HangGuard)
	for !strings.Contains(o.String(), want) {
		select {
		case <-o.wrote:
		case <-deadline:
			t.Fatalf("output %q has no %q after %v", o.String(), want, HangGuard)
		}
	}
}

// handle returns the guest's capability named name.
func handle(t *testing.T, g *Guest, name string) *caps.Cap {
	t.Helper()
	for _, e := range g.Handles() {
		if e.Cap.Name() == name {
			return e.Cap
		}
	}
	t.Fatalf("guest has no handle named %q", name)
	return nil
}

// accepted returns the live capabilities taken through parent (edge
// accept).
func accepted(s *Supervisor, parent *caps.Cap) []caps.Info {
	var out []caps.Info
	for _, in := range s.Kernel().Snapshot() {
		if in.Parent == parent.ID() && in.Edge == caps.EdgeAccept {
			out = append(out, in)
		}
	}
	return out
}

// readEOF reads from c until the stream ends, within HangGuard, and
// marks the test failed unless it ends cleanly. Any goroutine may call it.
func readEOF(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(HangGuard))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Errorf("%s: the stream did not end cleanly: %v", what, err)
	}
}

func exchange(t *testing.T, c net.Conn, send, want string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(HangGuard))
	if _, err := io.WriteString(c, send); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != want {
		t.Fatalf("sent %q, got %q, %v; want %q", send, got, err, want)
	}
}

// An unmodified Go program finds the connection named by its grant from
// LISTEN_FDNAMES, talks over it with net.FileConn, and reads the server's
// close as the end of the stream.
func TestSockGrantReachesAnUnmodifiedGoProgramBySocketActivation(t *testing.T) {
	l := listenTCP(t)
	sockets := resolver(map[string]SockTarget{"sock:db": {"tcp", l.Addr().String()}})
	_, g, out := launchSock(t, sockets, []string{"sock:db"}, "conn", "db")
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	exchange(t, server, "hello\n", "HELLO\n")
	server.Close()
	if st := waitExit(t, g, HangGuard); st.Code != 0 || st.Err() != nil {
		t.Fatalf("status %+v, output %q", st, out.String())
	}
	if got := out.String(); got != "answered\nended: EOF\n" {
		t.Fatalf("output %q", got)
	}
}

// Revoking a connected socket shuts it down at once: the server sees the
// end of the stream and the guest's read fails with ENOTCAPABLE.
func TestRevokingASockGrantShutsTheConnectionDown(t *testing.T) {
	l := listenTCP(t)
	s, g, out := launchSock(t, nil, []string{"sock:tcp:" + l.Addr().String() + "=db"}, "conn", "db")
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	exchange(t, server, "x\n", "X\n") // the guest now reads until the end
	if _, err := s.Revoke(handle(t, g, "db").ID(), "test"); err != nil {
		t.Fatal(err)
	}
	readEOF(t, server, "server side after the revocation")
	waitExit(t, g, HangGuard)
	if got := out.String(); !strings.Contains(got, "ended: ") || !strings.Contains(got, "Capabilities insufficient") {
		t.Fatalf("output %q, want the guest's read to end with ENOTCAPABLE", got)
	}
}

// serveLines answers every line on every connection l accepts with its
// upper-case, until l closes. It sends each connection on conns when it
// is accepted, and each line on lines once it has been read.
func serveLines(l net.Listener) (conns <-chan net.Conn, lines <-chan string) {
	cc, lc := make(chan net.Conn, 16), make(chan string, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			cc <- c
			go func() {
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					lc <- line
					io.WriteString(c, strings.ToUpper(line))
				}
			}()
		}
	}()
	return cc, lc
}

// Each accept on a dialer opens a new connection to its one target, as a
// child capability of the dialer's; revoking the dialer ends them all.
func TestDialerConnectionsAreChildrenAndEndWithTheDialer(t *testing.T) {
	l := listenTCP(t)
	conns, lines := serveLines(l)
	sockets := resolver(map[string]SockTarget{"sock:db": {"tcp", l.Addr().String()}})
	s, g, out := launchSock(t, sockets, []string{"sock:db:dial"}, "dial", "db", "3")
	var server []net.Conn
	// The guest writes on each connection once it has taken it: after
	// three lines it holds three connections.
	for i := 0; i < 3; i++ {
		select {
		case c := <-conns:
			server = append(server, c)
		case <-time.After(HangGuard):
			t.Fatalf("%d connections after %v; output %q", len(server), HangGuard, out.String())
		}
		select {
		case <-lines:
		case <-time.After(HangGuard):
			t.Fatalf("no line on connection %d after %v; output %q", i, HangGuard, out.String())
		}
	}
	out.await(t, "PING 2\n") // the guest now reads all three until they end
	dialer := handle(t, g, "db")
	if dialer.Kind() != caps.KindDialer {
		t.Fatalf("db is a %v, want a dialer", dialer.Kind())
	}
	if kids := accepted(s, dialer); len(kids) != 3 {
		t.Fatalf("%d accepted children of the dialer, want 3: %+v", len(kids), kids)
	}
	r, err := s.Revoke(dialer.ID(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Revoked) != 4 {
		t.Errorf("revoked %d capabilities, want the dialer and its 3 connections", len(r.Revoked))
	}
	var wg sync.WaitGroup
	for i, c := range server {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readEOF(t, c, fmt.Sprintf("server side of connection %d", i))
		}()
	}
	wg.Wait()
	waitExit(t, g, HangGuard)
	got := out.String()
	if !strings.Contains(got, "PING 0\nPING 1\nPING 2\n") || strings.Count(got, "Capabilities insufficient") != 3 {
		t.Fatalf("output %q, want three answers, then each connection ending with ENOTCAPABLE", got)
	}
}

// listenAddr returns the address the guest's listener handle name is
// bound to.
func listenAddr(t *testing.T, g *Guest, name string) string {
	t.Helper()
	res := handle(t, g, name).Info().Resource
	addr, ok := strings.CutPrefix(res, "listen tcp ")
	if !ok {
		t.Fatalf("listener described as %q", res)
	}
	return addr
}

// Connections the guest accepts on a granted listener are children of
// it; revoking the listener closes it and every connection taken from it.
func TestRevokingAListenerClosesItAndItsConnections(t *testing.T) {
	s, g, out := launchSock(t, nil, []string{"listen:127.0.0.1:0=web"}, "serve", "web", "3")
	addr := listenAddr(t, g, "web")
	var clients []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		exchange(t, c, fmt.Sprintf("hi %d\n", i), fmt.Sprintf("HI %d\n", i))
		clients = append(clients, c)
	}
	web := handle(t, g, "web")
	if kids := accepted(s, web); len(kids) != 2 {
		t.Fatalf("%d accepted children of the listener, want 2: %+v", len(kids), kids)
	}
	if _, err := s.Revoke(web.ID(), "test"); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		readEOF(t, c, fmt.Sprintf("client %d after the revocation", i))
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after the revocation", addr)
	}
	waitExit(t, g, HangGuard)
	if got := out.String(); !strings.Contains(got, "accept: ") || !strings.Contains(got, "Capabilities insufficient") {
		t.Fatalf("output %q, want the guest's accept to fail with ENOTCAPABLE", got)
	}
}

// A listen grant on an address in use fails the launch, naming the
// address; the grants before it are closed again and nothing is minted.
func TestLaunchWithAPortInUseStartsNothingAndLeavesNothingOpen(t *testing.T) {
	busy := listenTCP(t)
	free := listenTCP(t) // a server for the sock grant before the failing one
	s := newSupervisor(t)
	m, err := s.Compile(context.Background(), "sockact", abitest.Go(t, sockGuest))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	grants := []Grant{mustGrant(t, "sock:tcp:"+free.Addr().String()+"=db"), mustGrant(t, "listen:"+busy.Addr().String()+"=web")}
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Grants: grants})
	if err == nil {
		g.Kill("test")
		t.Fatal("Launch with a port in use succeeded")
	}
	var ge *GrantError
	if !errors.As(err, &ge) || ge.Grant != grants[1] || !strings.Contains(err.Error(), busy.Addr().String()+": the address is already in use") {
		t.Fatalf("error %v does not name the grant and the address in use", err)
	}
	if snap := s.Kernel().Snapshot(); len(snap) != 0 || len(s.Guests()) != 0 {
		t.Errorf("failed launch left %d capabilities and %d guests", len(snap), len(s.Guests()))
	}
	// The sock grant that had connected was closed again.
	c, err := free.Accept()
	if err != nil {
		t.Fatal(err)
	}
	readEOF(t, c, "the sock grant's connection")
}
