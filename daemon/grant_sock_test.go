package daemon

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

	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/internal/socktest"
)

// resolver is an Options.Sockets that knows the given resources, as a
// loaded policy would.
func resolver(res map[string]SockTarget) func(GrantKind, string) (SockTarget, error) {
	return func(k GrantKind, name string) (SockTarget, error) {
		t, ok := res[k.String()+":"+name]
		if !ok {
			return SockTarget{}, fmt.Errorf("no %s resource %q in the policy", k, name)
		}
		return t, nil
	}
}

// setupGrant parses text and sets it up with sockets; the caller closes
// the resource.
func setupGrant(t *testing.T, text string, sockets func(GrantKind, string) (SockTarget, error)) grantResource {
	t.Helper()
	g, err := ParseGrant(text)
	if err != nil {
		t.Fatal(err)
	}
	r, err := g.setup(context.Background(), sockets)
	if err != nil {
		t.Fatalf("setup of %q: %v", text, err)
	}
	t.Cleanup(func() { _ = r.res.Close() })
	return r
}

// listenTCP listens on a free loopback port until the test ends.
func listenTCP(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// expectFromSocket checks that what is written to res (a connected
// socket) reaches the server side of l.
func expectFromSocket(t *testing.T, res caps.Resource, l net.Listener) {
	t.Helper()
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	s, ok := res.(*caps.Socket)
	if !ok {
		t.Fatalf("resource is %T, want *caps.Socket", res)
	}
	if _, err := s.Write([]byte("PING")); err != nil {
		t.Fatal(err)
	}
	_ = s.Shutdown(false, true)
	server.SetReadDeadline(time.Now().Add(HangGuard))
	got, err := io.ReadAll(server)
	if err != nil || string(got) != "PING" {
		t.Fatalf("server read %q, %v", got, err)
	}
}

func TestSockGrantConnectsToTheInlineOrNamedTarget(t *testing.T) {
	l := listenTCP(t)
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	sockets := resolver(map[string]SockTarget{"sock:db": {"tcp", addr}, "sock:byname": {"tcp", "localhost:" + port}})
	for _, text := range []string{"sock:tcp:" + addr + "=db", "sock:db", "sock:byname"} {
		r := setupGrant(t, text, sockets)
		if r.res.Kind() != caps.KindSocket || !r.base.Has(caps.RightFDRead|caps.RightFDWrite|caps.RightSockShutdown) {
			t.Errorf("%s: kind %v, rights %v", text, r.res.Kind(), r.base)
		}
		expectFromSocket(t, r.res, l)
	}
}

func TestSockGrantOverUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := setupGrant(t, "sock:unix:"+path+"=db", nil)
	if d := r.res.(*caps.Socket).Describe(); d != "sock unix "+path {
		t.Errorf("described as %q", d)
	}
	expectFromSocket(t, r.res, l)
}

// A DNS name is resolved once, at grant time, and the dialer keeps the
// addresses it had then: the guest never causes a lookup.
func TestSockGrantPinsTheAddressesOfADNSName(t *testing.T) {
	l := listenTCP(t)
	_, port, _ := net.SplitHostPort(l.Addr().String())
	r := setupGrant(t, "sock:tcp:localhost:"+port+"=db:dial", nil)
	d := r.res.(*caps.Dialer)
	addrs := d.Addrs()
	for _, a := range addrs {
		host, _, _ := net.SplitHostPort(a)
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			t.Errorf("pinned address %q is not a loopback IP address", a)
		}
	}
	if !strings.Contains(d.Describe(), "localhost:"+port+" (") {
		t.Errorf("description %q does not show the name and what it resolved to", d.Describe())
	}
	if r.base != caps.RightsListenerBase || r.inh != caps.RightsSocketBase {
		t.Errorf("dialer rights %v / %v", r.base, r.inh)
	}
}

func TestSockGrantFailuresNameTheResourceAndAddress(t *testing.T) {
	refused := closedPort(t)
	sockets := resolver(map[string]SockTarget{"sock:db": {"tcp", refused}, "sock:bad": {"tcp", "nohost"}})
	cases := []struct {
		text    string
		sockets func(GrantKind, string) (SockTarget, error)
		says    []string
	}{
		{"sock:db", nil, []string{`"db" is not a declared socket resource`, "sandboxd serve --policy DIR", "sock:tcp:HOST:PORT=db"}},
		{"sock:other", sockets, []string{`"other" is not a declared socket resource (no sock resource "other" in the policy)`}},
		{"listen:web", nil, []string{`"web" is not a declared socket resource`, "listen:127.0.0.1:PORT=web"}},
		{"sock:db", sockets, []string{"cannot connect to tcp " + refused + ": connection refused: start the server"}},
		{"sock:tcp:" + refused + "=db", nil, []string{"cannot connect to tcp " + refused + ": connection refused"}},
		{"sock:unix:" + filepath.Join(t.TempDir(), "none.sock") + "=db", nil, []string{"none.sock: no such file or directory"}},
		{"sock:bad", sockets, []string{`sock resource "bad": sock address "nohost" is not HOST:PORT`, "correct the policy"}},
		{"sock:tcp:nosuchhost.invalid:1=db", nil, []string{"cannot resolve nosuchhost.invalid", "correct the host name"}},
	}
	for _, c := range cases {
		g, err := ParseGrant(c.text)
		if err != nil {
			t.Fatal(err)
		}
		r, err := g.setup(context.Background(), c.sockets)
		if err == nil {
			r.res.Close()
			t.Errorf("setup of %q succeeded", c.text)
			continue
		}
		var ge *GrantError
		if !errors.As(err, &ge) || ge.Grant != g || strings.ContainsAny(err.Error(), "\n\r") {
			t.Errorf("setup of %q: %v (%T) is not a one-line *GrantError for the grant", c.text, err, err)
		}
		for _, want := range c.says {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("setup of %q = %q, want it to say %q", c.text, err, want)
			}
		}
	}
}

func TestNamedSockGrantWithoutAPolicyIsErrNoSockResource(t *testing.T) {
	g, _ := ParseGrant("sock:db:dial")
	_, err := g.setup(context.Background(), nil)
	if !errors.Is(err, ErrNoSockResource) {
		t.Fatalf("setup: %v, want ErrNoSockResource", err)
	}
}

func TestListenGrantBindsAndReportsAPortInUse(t *testing.T) {
	r := setupGrant(t, "listen:127.0.0.1:0=web", nil)
	l := r.res.(*caps.Listener)
	addr := l.Addr().String()
	if !strings.HasSuffix(l.Describe(), "tcp "+addr) {
		t.Errorf("described as %q, want the bound address %s", l.Describe(), addr)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial the granted listener: %v", err)
	}
	c.Close()

	g, _ := ParseGrant("listen:" + addr + "=web")
	_, err = g.setup(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "cannot listen on tcp "+addr+": the address is already in use: stop what listens there or choose another port") {
		t.Fatalf("second listen on %s: %v", addr, err)
	}

	path := filepath.Join(t.TempDir(), "web.sock")
	setupGrant(t, "listen:unix:"+path+"=web", nil)
	g, _ = ParseGrant("listen:unix:" + path + "=web")
	if _, err = g.setup(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "the path is already in use: stop what listens there") {
		t.Fatalf("second listen on %s: %v", path, err)
	}
}

// A unix listen grant replaces a socket file nothing listens on (left by
// a daemon that stopped or died), and nothing else.
func TestUnixListenGrantReplacesAStaleSocketFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web.sock")
	socktest.LeaveStale(t, path) // the file stays, and nothing listens on it
	r := setupGrant(t, "listen:unix:"+path+"=web", nil)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial the granted listener on the replaced socket: %v", err)
	}
	c.Close()
	r.res.(*caps.Listener).Close()

	file := filepath.Join(dir, "data")
	if err := os.WriteFile(file, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	g, _ := ParseGrant("listen:unix:" + file + "=web")
	if _, err := g.setup(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Fatalf("listen on a regular file: %v", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep" {
		t.Fatalf("the regular file after the refused grant: %q, %v", b, err)
	}
}

// A unix socket is bound beneath its directory's descriptor
// (/proc/self/fd/N/NAME), so its file name must fit in a socket address
// beside it: one that does not fails the grant, saying so, before
// anything is bound or removed.
func TestUnixListenGrantRefusesAFileNameTooLongToBind(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	name := strings.Repeat("n", 100) // fits in a socket address alone, not beside a descriptor
	g := mustGrant(t, "listen:unix:"+name+"=web")
	_, err := g.setup(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "its file name is 100 bytes, longer than the") || !strings.Contains(err.Error(), "use a shorter file name") {
		t.Fatalf("listen on a %d-byte file name: %v, want it refused as too long to bind", len(name), err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("left in the directory: %v, %v", entries, err)
	}
}

func TestNamedListenGrantBindsThePolicyAddress(t *testing.T) {
	r := setupGrant(t, "listen:web", resolver(map[string]SockTarget{"listen:web": {"tcp", "127.0.0.1:0"}}))
	if r.grant.Name != "web" || r.res.Kind() != caps.KindListener {
		t.Fatalf("grant %+v, kind %v", r.grant, r.res.Kind())
	}
}

func TestActivationEnvNamesTheGrantsWhenOneIsASocket(t *testing.T) {
	parse := func(texts ...string) []Grant {
		var gs []Grant
		for _, s := range texts {
			g, err := ParseGrant(s)
			if err != nil {
				t.Fatal(err)
			}
			gs = append(gs, g)
		}
		return gs
	}
	got := activationEnv(parse("dir:/tmp=data", "sock:db:dial", "listen:127.0.0.1:0=web"), []string{"A=1"})
	want := []string{"A=1", "LISTEN_FDS=3", "LISTEN_FDNAMES=data:db:web"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("env %q, want %q", got, want)
	}
	if got := activationEnv(parse("dir:/tmp=data"), []string{"A=1"}); len(got) != 1 {
		t.Errorf("no socket grant, yet env %q", got)
	}
	if got := activationEnv(parse("sock:db"), []string{"LISTEN_FDS=0"}); len(got) != 1 {
		t.Errorf("the caller's LISTEN_FDS was not kept alone: %q", got)
	}
}

func TestSocketFileIsTheInlineUnixPathOfSockAndListenGrants(t *testing.T) {
	for text, want := range map[string]string{
		"sock:unix:/run/db.sock=db":  "/run/db.sock",
		"sock:unix:rel.sock=db:dial": "rel.sock",
		"listen:unix:web.sock=web":   "web.sock",
		"sock:unix:@abstract=db":     "",
		"sock:tcp:127.0.0.1:1=db":    "",
		"listen:127.0.0.1:0=web":     "",
		"sock:db":                    "",
		"dir:/tmp=data":              "",
	} {
		g, err := ParseGrant(text)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := g.SocketFile(); got != want || ok != (want != "") {
			t.Errorf("%s: SocketFile() = %q, %v; want %q", text, got, ok, want)
		}
	}
}

// A unix dialer holds its socket's directory and that directory's parent
// open, and a unix listener its socket's directory, for as long as a
// capability to them lives, and no longer: each is closed when the guest
// exits, when a launch fails at a later grant, when the capability is
// revoked, when a live grant cannot be sent (the guest has exited), and
// when the supervisor shuts down with the guest running.
func TestUnixSockAndListenGrantsCloseTheirDirectoriesOnEveryEnd(t *testing.T) {
	s := newSupervisor(t)
	area := t.TempDir()
	app := filepath.Join(area, "app")
	if err := os.Mkdir(app, 0o755); err != nil {
		t.Fatal(err)
	}
	listenUnixSocket(t, filepath.Join(app, "db.sock"))
	dial := "sock:unix:" + filepath.Join(app, "db.sock") + "=db:dial"
	listen := "listen:unix:" + filepath.Join(app, "web.sock") + "=web"
	closed := func(after string) {
		t.Helper()
		if open := openFDsUnder(t, area); len(open) != 0 {
			t.Errorf("after %s, open: %v", after, open)
		}
	}
	g, err := launchSpin(t, s, nil, dial, listen)
	if err != nil {
		t.Fatal(err)
	}
	if open := openFDsUnder(t, area); len(open) != 3 {
		t.Errorf("while the guest runs, open: %v, want the dialer's two directories and the listener's one", open)
	}
	g.Kill("test")
	<-g.Done()
	closed("the guest exited")

	if _, err := launchSpin(t, s, nil, dial, listen, "dir:"+filepath.Join(area, "none")); err == nil {
		t.Fatal("a launch with a missing directory succeeded")
	}
	closed("a launch failed at its last grant")

	c, err := s.Mint(ClientHolder("test", Principal{}), Principal{}, mustGrant(t, dial), "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(c.ID(), "test"); err != nil {
		t.Fatal(err)
	}
	closed("the dialer was revoked")

	g, err = launchSpin(t, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	g.Kill("test")
	<-g.Done()
	if _, err := g.Grant(context.Background(), Principal{}, mustGrant(t, dial)); !errors.Is(err, ErrGuestEnded) {
		t.Fatalf("a live grant to a guest that exited: %v, want ErrGuestEnded", err)
	}
	closed("a live grant found its guest gone")

	if _, err = launchSpin(t, s, nil, dial, listen); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	closed("the supervisor shut down")
}

// Abstract unix addresses (unix:@NAME) name no file: a listen grant binds
// one and sock grants, connected and :dial, inline or Options.Sockets',
// reach it, with no file made.
func TestAbstractUnixAddressesAreBoundAndReachedAsGiven(t *testing.T) {
	name := fmt.Sprintf("@sandboxd-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	sockets := resolvingLinks(resolver(map[string]SockTarget{
		"sock:db": {Network: "unix", Address: name}, "listen:web": {Network: "unix", Address: name},
	}))
	for _, c := range []struct {
		listen, sock string
		sockets      sockResolver
	}{
		{"listen:unix:" + name + "=web", "sock:unix:" + name + "=db", nil},
		{"listen:web", "sock:db", sockets},
	} {
		l := setupGrant(t, c.listen, c.sockets).res.(*caps.Listener)
		if got := l.Addr().String(); got != name {
			t.Errorf("%s bound %q, want %q", c.listen, got, name)
		}
		for _, sock := range []string{c.sock, c.sock + ":dial"} {
			connectThrough(t, setupGrant(t, sock, c.sockets).res)
			w := caps.NewWaiter()
			if ready, cancel := l.Poll(caps.EventRead, w); ready&caps.EventRead == 0 {
				select {
				case <-w.C():
				case <-time.After(HangGuard):
					t.Fatalf("%s: no connection arrived at the listener", sock)
				}
				cancel()
			}
			conn, err := l.Accept()
			if err != nil {
				t.Fatalf("%s: the listener took no connection: %v", sock, err)
			}
			conn.Close()
		}
		l.Close()
	}
	if _, err := os.Lstat(filepath.Join(wd, name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file named %s in the working directory: %v", name, err)
	}
}

// A connection to a DNS name shows, as a dialer of one does, the name
// and the address it reached (docs/GRANTS.md, DNS names are pinned): the
// capability graph, and the policy policy suggest writes from the audit
// log, keep the name; one to an address shows the address alone.
func TestSockGrantOfADNSNameDescribesTheNameAndTheAddressReached(t *testing.T) {
	l := listenTCP(t)
	_, port, _ := net.SplitHostPort(l.Addr().String())
	s := setupGrant(t, "sock:tcp:localhost:"+port+"=db", nil).res.(*caps.Socket)
	want := "sock tcp localhost:" + port + " ("
	if got := s.Describe(); !strings.HasPrefix(got, want) || !strings.HasSuffix(got, ":"+port+")") {
		t.Errorf("a connection to localhost:%s is described %q, want %s<address reached>)", port, got, want)
	}
	s = setupGrant(t, "sock:tcp:"+l.Addr().String()+"=db", nil).res.(*caps.Socket)
	if got, want := s.Describe(), "sock tcp "+l.Addr().String(); got != want {
		t.Errorf("a connection to %s is described %q, want %q", l.Addr(), got, want)
	}
}

// A connected socket carries bytes only, so it holds no rights to pass
// on: it held every right as inheriting, and a reload under a rule that
// names the socket's rights warned that some thirty file rights were
// beyond it.
func TestASocketGrantWithinARightsRuleIsNotWarnedAboutAtReload(t *testing.T) {
	s := newSupervisor(t)
	l := listenTCP(t)
	policy := func(rights string) string {
		return fmt.Sprintf(`
resource "sock" "db" {
  tcp = "%s"
}
grant "db" {
  resources = ["sock:db"]
  %s
}
`, l.Addr(), rights)
	}
	s.SetPolicy(mustPolicy(t, policy("")))
	g, err := launchSpin(t, s, nil, "sock:db")
	if err != nil {
		t.Fatal(err)
	}
	if _, inh := g.Handles()[3].Cap.Rights(); inh != 0 {
		t.Errorf("a connected socket holds inheriting rights %v", inh)
	}
	narrower := mustPolicy(t, policy(`rights = ["fd_read", "fd_write", "fd_stat_put_flags", "file_stat_fget", "poll_fd_readwrite", "sock_shutdown"]`))
	if ds := s.NotAllowedBy(narrower); len(ds) != 0 {
		t.Errorf("a reload under a rule giving the socket's own rights warns: %+v", ds)
	}
}

// A dialer granted under a policy holds sock_accept, which takes its
// connections: the rights a grant asks the policy for are its dialer's,
// not a connection's (a connection's alone would leave it none).
func TestADialerGrantedUnderAPolicyCanTakeConnections(t *testing.T) {
	s := newSupervisor(t)
	l := listenTCP(t)
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
resource "sock" "db" {
  tcp = "%s"
}
grant "db" {
  resources = ["sock:db"]
}
`, l.Addr())))
	g, err := launchSpin(t, s, nil, "sock:db:dial")
	if err != nil {
		t.Fatal(err)
	}
	c := g.Handles()[3].Cap
	if base, inh := c.Rights(); !base.Has(caps.RightSockAccept) || !inh.Has(caps.RightFDRead|caps.RightFDWrite) {
		t.Errorf("the dialer holds %v, inheriting %v: want sock_accept, and read and write for its connections", base, inh)
	}
}
