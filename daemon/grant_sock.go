package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/caps"
)

// SockTarget is where the daemon connects (a sock grant) or binds (a
// listen grant): Network "tcp" with Address HOST:PORT, HOST an IP address
// or a DNS name the daemon resolves once, at grant time; or Network "unix"
// with Address a socket path.
type SockTarget struct {
	Network, Address string
}

func (t SockTarget) String() string { return t.Network + " " + t.Address }

// sockResolver is Options.Sockets: it says where a named sock or listen
// resource is.
type sockResolver = func(kind GrantKind, name string) (SockTarget, error)

// ErrNoSockResource marks a sock or listen grant whose name no loaded
// policy declares (or there is no policy to ask).
var ErrNoSockResource = errors.New("is not a declared socket resource")

// SockDialTimeout bounds each connection attempt the daemon makes to one
// address: for a sock grant at launch (the launch then fails) and for
// each sock_accept on a dialer (which then fails with ETIMEDOUT). A
// target that does not answer within it is down for every purpose a
// guest has.
const SockDialTimeout = 10 * time.Second

// acceptorFlags are the fd flags a listener or dialer handle starts
// with: FDFLAG_NONBLOCK, so accept returns EAGAIN when no connection is
// ready and poll waits for one. A program that takes connections from a
// handle serves or pools several at once, and Go's wasip1 port counts on
// it: net.FileListener marks the handle pollable but, unlike Go on Linux
// (which sets O_NONBLOCK on the descriptor it is given), never sets the
// flag, so a blocking accept would hold up every goroutine of the guest
// until the next connection arrives. A connected sock handle starts
// blocking, as POSIX and systemd hand sockets over: a program reading and
// writing one stream in turn (a C client) works unchanged. Either can be
// changed by the guest (fd_fdstat_set_flags, fcntl F_SETFL).
const acceptorFlags = caps.FlagNonblock

// MaxUnixPath is the longest unix socket path Linux takes (sun_path holds
// 108 bytes with the terminating NUL).
const MaxUnixPath = caps.MaxUnixPath

// inlineTarget returns the address a sock or listen grant's source gives
// inline: "tcp:HOST:PORT" or "unix:PATH" for both kinds, and a bare
// "HOST:PORT" for listen. A source without a colon is a resource name.
func inlineTarget(k GrantKind, src string) (SockTarget, bool) {
	if n, a, ok := strings.Cut(src, ":"); ok && (n == "tcp" || n == "unix") {
		return SockTarget{Network: n, Address: a}, true
	}
	if k == GrantListen && strings.Contains(src, ":") {
		return SockTarget{Network: "tcp", Address: src}, true
	}
	return SockTarget{}, false
}

// SocketFile returns the socket file path a sock or listen grant names
// inline (sock:unix:PATH, listen:unix:PATH), as written; false for any
// other grant, and for an abstract address (unix:@NAME), which names no
// file.
func (g Grant) SocketFile() (string, bool) {
	if g.Kind != GrantSock && g.Kind != GrantListen {
		return "", false
	}
	t, ok := inlineTarget(g.Kind, g.Source)
	if !ok || t.Network != "unix" || strings.HasPrefix(t.Address, "@") {
		return "", false
	}
	return t.Address, true
}

// checkSockSource checks a sock grant's source: an inline address, or a
// policy resource's name.
func checkSockSource(src string) error {
	if t, ok := inlineTarget(GrantSock, src); ok {
		return checkTarget(GrantSock, t)
	}
	if strings.Contains(src, ":") {
		return fmt.Errorf("sock source %q is neither a resource name nor an address: write sock:NAME, sock:tcp:HOST:PORT or sock:unix:PATH", src)
	}
	if err := checkName(src); err != nil {
		return fmt.Errorf("sock name %q %s", src, err)
	}
	return nil
}

// checkListenSource checks a listen grant's source: an inline address, or
// a policy listener's name.
func checkListenSource(src string) error {
	if t, ok := inlineTarget(GrantListen, src); ok {
		return checkTarget(GrantListen, t)
	}
	if err := checkName(src); err != nil {
		return fmt.Errorf("listener name %q %s (an address needs a port, e.g. 127.0.0.1:8080)", src, err)
	}
	return nil
}

// checkTarget checks an address for a grant of kind k (sock or listen),
// without touching the network: HOST:PORT with a numeric port (a sock
// needs a host and a port other than 0; a listener may leave the host
// out, all interfaces, and ask for port 0, any free port), or a unix
// socket path that fits in a socket address.
func checkTarget(k GrantKind, t SockTarget) error {
	if t.Network == "unix" {
		switch {
		case t.Address == "":
			return errors.New("empty unix socket path: write unix:PATH")
		case len(t.Address) > MaxUnixPath:
			return fmt.Errorf("unix socket path %q is longer than %d bytes, the most a socket address holds: use a shorter path", t.Address, MaxUnixPath)
		}
		return nil
	}
	if t.Network != "tcp" {
		return fmt.Errorf("network %q is not tcp or unix", t.Network)
	}
	host, port, err := net.SplitHostPort(t.Address)
	if err != nil {
		return fmt.Errorf("%s address %q is not HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)", k, t.Address)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("%s address %q: port %q is not a number from 0 to 65535", k, t.Address, port)
	}
	if k == GrantSock && (host == "" || p == 0) {
		return fmt.Errorf("sock address %q needs a host and a port other than 0 to connect to", t.Address)
	}
	return nil
}

// target returns where g connects or binds: its inline address, or what
// sockets says of its name.
func (g Grant) target(sockets sockResolver) (SockTarget, error) {
	if t, ok := inlineTarget(g.Kind, g.Source); ok {
		return t, nil
	}
	hint := fmt.Sprintf("declare it as a %s resource of a loaded policy (sandboxd serve --policy DIR, sandboxd run --policy FILE) or give its address inline (%s)", g.Kind, inlineExample(g))
	if sockets == nil {
		return SockTarget{}, fmt.Errorf("%q %w: %s", g.Source, ErrNoSockResource, hint)
	}
	t, err := sockets(g.Kind, g.Source)
	var moved *MovedError
	if errors.As(err, &moved) {
		return SockTarget{}, fmt.Errorf("%s resource %q: %w", g.Kind, g.Source, err)
	}
	if err != nil {
		return SockTarget{}, fmt.Errorf("%q %w (%v): %s", g.Source, ErrNoSockResource, err, hint)
	}
	if err := checkTarget(g.Kind, t); err != nil {
		return SockTarget{}, fmt.Errorf("%s resource %q: %v: correct the policy", g.Kind, g.Source, err)
	}
	return t, nil
}

func inlineExample(g Grant) string {
	if g.Kind == GrantListen {
		return fmt.Sprintf("listen:127.0.0.1:PORT=%s or listen:unix:PATH=%s", g.Name, g.Name)
	}
	return fmt.Sprintf("sock:tcp:HOST:PORT=%s or sock:unix:PATH=%s", g.Name, g.Name)
}

// setupSock sets up a sock grant: a connection made now, or a dialer
// (g.Dial) pinned to the target's addresses. A DNS name is resolved here,
// once: neither a connection nor a dialer ever reaches an address the
// name did not have at grant time; a unix socket file's path is pinned
// (sockUnix). A target that refuses or does not answer fails the grant (a
// dialer connects only when the guest asks).
func (g Grant) setupSock(ctx context.Context, sockets sockResolver) (grantResource, error) {
	fail := func(format string, args ...any) (grantResource, error) {
		return grantResource{}, &GrantError{Grant: g, Err: fmt.Errorf(format, args...)}
	}
	t, err := g.target(sockets)
	if err != nil {
		return fail("%w", err)
	}
	if t.Network == "unix" && !strings.HasPrefix(t.Address, "@") {
		return g.sockUnix(ctx, t, sockets)
	}
	addrs, desc, err := pinTarget(ctx, t)
	if err != nil {
		return fail("%v", err)
	}
	if g.Dial {
		d, err := caps.NewDialer(t.Network, addrs, SockDialTimeout, desc)
		if err != nil {
			return fail("%v", err)
		}
		return g.dialer(d), nil
	}
	conn, err := dialFirst(ctx, t.Network, addrs)
	if err != nil {
		return fail("cannot connect to %s: %s: start the server or correct the address", desc, netReason(err))
	}
	if t.Network == "tcp" {
		desc = reachedDesc(t, conn.RemoteAddr().String())
	}
	return g.connected(conn, desc)
}

// reachedDesc describes a tcp connection to target t that reached addr:
// the address, and for a DNS name the name with it, as a dialer of the
// name shows the addresses it resolved to.
func reachedDesc(t SockTarget, addr string) string {
	host, _, _ := net.SplitHostPort(t.Address) // checkTarget checked it
	if _, err := netip.ParseAddr(host); err == nil {
		return "tcp " + addr
	}
	return fmt.Sprintf("tcp %s (%s)", t.Address, addr)
}

// sockUnix sets up a sock grant of a unix socket file at t's path, with
// its links resolved once (unixPath). The path is pinned where it leads
// following no link (caps.SocketPath): the connection is made, or the
// dialer makes each of its connections, beneath the directory the path
// led to then. A link put on the path since, by a guest with a writable
// dir grant above it or anyone else, fails the grant (or the dialer's
// connection, ELOOP) and leads nowhere.
func (g Grant) sockUnix(ctx context.Context, t SockTarget, sockets sockResolver) (grantResource, error) {
	fail := func(err error) (grantResource, error) {
		return grantResource{}, &GrantError{Grant: g, Err: err}
	}
	path, err := g.unixPath(t)
	if err != nil {
		return fail(err)
	}
	file, err := caps.OpenSocketPath(path)
	if err != nil {
		return fail(g.socketPathError("connect to", t.Address, path, err, sockets))
	}
	desc := "unix " + path
	if g.Dial {
		return g.dialer(caps.NewUnixDialer(file, SockDialTimeout, desc)), nil
	}
	defer file.Close()
	conn, err := file.Dial(ctx, &net.Dialer{Timeout: SockDialTimeout})
	switch {
	case errors.Is(err, syscall.ELOOP):
		return fail(g.movedError(t.Address, path, sockets))
	case errors.Is(err, caps.ErrNoProc):
		return fail(fmt.Errorf("cannot connect to %s: %w", desc, caps.ErrNoProc))
	case errors.Is(err, caps.ErrProtectedSocket):
		return fail(fmt.Errorf("cannot connect to %s: %w", desc, caps.ErrProtectedSocket))
	case err != nil:
		return fail(fmt.Errorf("cannot connect to %s: %s: start the server or correct the address", desc, netReason(err)))
	}
	return g.connected(conn, desc)
}

// dialer is g's resource for the dialer d.
func (g Grant) dialer(d *caps.Dialer) grantResource {
	base, inh := caps.GrantRights(caps.KindDialer, false)
	return grantResource{grant: g, res: d, base: base, inh: inh, flags: acceptorFlags}
}

// connected is g's resource for conn, a connection made to what desc
// describes; conn is closed if it cannot be.
func (g Grant) connected(conn net.Conn, desc string) (grantResource, error) {
	s, err := caps.NewSocket(conn, desc)
	if err != nil {
		conn.Close()
		return grantResource{}, &GrantError{Grant: g, Err: err}
	}
	base, inh := caps.GrantRights(caps.KindSocket, false)
	return grantResource{grant: g, res: s, base: base, inh: inh}, nil
}

// pinTarget returns the addresses a sock target other than a unix socket
// file stands for, now: an abstract unix address ("@name", Linux's
// abstract namespace), or a tcp host's addresses (itself if it is an IP
// address, else what DNS answers now), and a description for the
// capability graph.
func pinTarget(ctx context.Context, t SockTarget) (addrs []string, desc string, err error) {
	if t.Network == "unix" {
		return []string{t.Address}, "unix " + t.Address, nil
	}
	host, port, _ := net.SplitHostPort(t.Address) // checkTarget checked it
	if ip, err := netip.ParseAddr(host); err == nil {
		return []string{net.JoinHostPort(ip.String(), port)}, t.String(), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return nil, "", fmt.Errorf("cannot resolve %s: %s: correct the host name or use an IP address", host, netReason(err))
	}
	shown := make([]string, len(ips))
	for i, ip := range ips {
		addrs = append(addrs, net.JoinHostPort(ip.Unmap().String(), port))
		shown[i] = ip.Unmap().String()
	}
	return addrs, fmt.Sprintf("tcp %s (%s)", t.Address, strings.Join(shown, ", ")), nil
}

// dialFirst connects to each address in order and returns the first
// connection, or the last error.
func dialFirst(ctx context.Context, network string, addrs []string) (net.Conn, error) {
	nd := net.Dialer{Timeout: SockDialTimeout}
	var err error
	for _, a := range addrs {
		var conn net.Conn
		if conn, err = nd.DialContext(ctx, network, a); err == nil {
			return conn, nil
		}
	}
	return nil, err
}

// netReason is the reason a network operation failed, without the
// operation and addresses the caller's message already names.
func netReason(err error) string {
	if err == nil {
		return "no address"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("no answer within %v", SockDialTimeout)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.Err
	}
	var se syscall.Errno
	if errors.As(err, &se) {
		return se.Error()
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

// setupListen sets up a listen grant: the daemon binds the address now.
func (g Grant) setupListen(ctx context.Context, sockets sockResolver) (grantResource, error) {
	fail := func(format string, args ...any) (grantResource, error) {
		return grantResource{}, &GrantError{Grant: g, Err: fmt.Errorf(format, args...)}
	}
	t, err := g.target(sockets)
	if err != nil {
		return fail("%w", err)
	}
	if t.Network == "unix" && !strings.HasPrefix(t.Address, "@") {
		return g.listenUnix(t, sockets)
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, t.Network, t.Address)
	if err != nil {
		return fail("cannot listen on %s: %s", t, listenAdvice(t, err))
	}
	res, err := caps.NewListener(l, t.Network+" "+l.Addr().String())
	if err != nil {
		l.Close()
		return fail("%v", err)
	}
	base, inh := caps.GrantRights(caps.KindListener, false)
	return grantResource{grant: g, res: res, base: base, inh: inh, flags: acceptorFlags}, nil
}

// listenUnix binds a unix listen grant's socket file at t's path, with
// its links resolved once (unixPath). The socket is bound in the
// directory that resolved path leads to when no link on it is followed
// (caps.SocketDir), and a stale socket file is removed from that
// directory only: a link put on the path since, by a guest with a
// writable dir grant above it or anyone else, moves neither.
func (g Grant) listenUnix(t SockTarget, sockets sockResolver) (grantResource, error) {
	fail := func(format string, args ...any) (grantResource, error) {
		return grantResource{}, &GrantError{Grant: g, Err: fmt.Errorf(format, args...)}
	}
	path, err := g.unixPath(t)
	if err != nil {
		return fail("%w", err)
	}
	d, err := caps.OpenSocketDir(filepath.Dir(path))
	if err != nil {
		return fail("%w", g.socketPathError("listen on", t.Address, path, err, sockets))
	}
	defer d.Close()
	name := filepath.Base(path)
	if len(name) > d.MaxName() {
		return fail("cannot listen on unix %s: its file name is %d bytes, longer than the %d that can be bound: the daemon binds it beneath its directory, held open so that no symbolic link on the path is followed (/proc/self/fd/N/NAME, at most %d bytes in all): use a shorter file name", path, len(name), d.MaxName(), MaxUnixPath)
	}
	// A socket file the listener of a daemon that stopped or died left
	// behind: nothing listens on it.
	switch err := d.RemoveStale(name); {
	case errors.Is(err, ErrNotSocket):
		return fail("cannot listen on unix %s: it exists and is not a socket: remove it or choose another path", path)
	case err != nil && !errors.Is(err, ErrSocketInUse):
		return fail("cannot listen on unix %s: %v", path, err)
	}
	res, err := d.Listen(name, "unix "+path)
	if err != nil {
		return fail("cannot listen on unix %s: %s", path, listenAdvice(t, err))
	}
	base, inh := caps.GrantRights(caps.KindListener, false)
	return grantResource{grant: g, res: res, base: base, inh: inh, flags: acceptorFlags}, nil
}

// unixPath returns the path of t, a unix sock or listen grant's socket
// file, with its links resolved once: a resource's path comes so (a
// policy's, when the policy was put in force: pins.go; Options.Sockets',
// when looked up), an inline path's are resolved now. Nothing may
// resolve it again: the grant connects or binds where it leads,
// following no link.
func (g Grant) unixPath(t SockTarget) (string, error) {
	path := t.Address
	if _, inline := inlineTarget(g.Kind, g.Source); inline && !g.exact { // exact: resolved when judged (authorize)
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", fmt.Errorf("cannot resolve %s: %v", path, err)
		}
		path = resolveSocket(g.Kind, abs)
	}
	if unixPinned != nil {
		unixPinned()
	}
	return path, nil
}

// resolveSocket is p, the absolute path of a unix socket file, with its
// links resolved once as a grant of kind k uses it: all of them for a
// sock grant (connect(2) follows a link in the place of the socket file
// too), those of its directory only for a listen grant. bind(2) follows
// no link in the place of the socket file; nor does the daemon, to remove
// a stale socket where one leads and bind there (a guest with a writable
// dir grant of the directory can plant one): the link is refused as not
// a socket (caps.SocketDir.RemoveStale).
func resolveSocket(k GrantKind, p string) string {
	if k == GrantListen {
		return filepath.Join(caps.RealPath(filepath.Dir(p)), filepath.Base(p))
	}
	return caps.RealPath(p)
}

// unixPinned, if set, runs once a unix sock or listen grant's path is
// resolved, before anything is done at it: tests set it.
var unixPinned func()

// socketPathError says why the directory of path, a sock or listen
// grant's socket path with its links resolved (from asked, as the grant
// or resource gives it), could not be opened following no link, to op
// ("connect to", "listen on") the socket in it. A link on it means the
// path leads elsewhere than when it was resolved (movedError).
func (g Grant) socketPathError(op, asked, path string, err error, sockets sockResolver) error {
	dir := filepath.Dir(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("cannot %s unix %s: the directory %s does not exist: create it or correct the path", op, path, dir)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("cannot %s unix %s: cannot open the directory %s: permission denied: make it searchable by uid %d or choose another path", op, path, dir, os.Getuid())
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("cannot %s unix %s: a parent of it is not a directory: correct the path", op, path)
	case !errors.Is(err, syscall.ELOOP):
		return fmt.Errorf("cannot %s unix %s: %v", op, path, err)
	}
	return g.movedError(asked, path, sockets)
}

// movedError says that path, a sock or listen grant's socket path with
// its links resolved (from asked), was found with a symbolic link on it
// as the grant was being set up: it leads elsewhere than when it was
// resolved, for a policy's resource since the policy was put in force
// (MovedError).
func (g Grant) movedError(asked, path string, sockets sockResolver) error {
	var moved *MovedError
	if _, err := g.target(sockets); errors.As(err, &moved) {
		return err
	}
	if _, inline := inlineTarget(g.Kind, g.Source); inline {
		asked, _ = filepath.Abs(asked)
	}
	if now := resolveSocket(g.Kind, asked); now != path {
		return fmt.Errorf("%s leads to %s, and led to %s when the grant was being set up: a symbolic link on it changed meanwhile; try again", asked, now, path)
	}
	return fmt.Errorf("%s changed while the grant was being set up (a symbolic link took the place of part of it): try again", path)
}

// listenAdvice says why binding t failed and what to do.
func listenAdvice(t SockTarget, err error) string {
	switch {
	case errors.Is(err, syscall.EADDRINUSE) && t.Network == "unix":
		return "the path is already in use: stop what listens there"
	case errors.Is(err, syscall.EADDRINUSE):
		return "the address is already in use: stop what listens there or choose another port"
	case errors.Is(err, syscall.EACCES) && t.Network == "tcp":
		return "permission denied: ports below 1024 need privilege; choose a port from 1024 up"
	case errors.Is(err, syscall.EACCES), errors.Is(err, os.ErrPermission):
		return "permission denied: make the directory writable by uid " + strconv.Itoa(os.Getuid()) + " or choose another path"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no interface of this host has that address: correct it"
	}
	return netReason(err)
}

// Socket activation (sd_listen_fds(3)): a guest with a sock or listen
// grant finds its grants without the SDK, from its environment.
const (
	envListenFDs     = "LISTEN_FDS"
	envListenFDNames = "LISTEN_FDNAMES"
)

// activationEnv returns env with systemd's socket-activation variables
// for grants added, when one of them is a sock or listen grant:
// LISTEN_FDS is the number of grants, which are fds 3, 4, … in order, and
// LISTEN_FDNAMES their guest names, joined by ":". LISTEN_PID is left
// out: a WASI guest has no process id to compare it with. Variables the
// caller set themselves (--env) are kept as they are, and then neither is
// added.
func activationEnv(grants []Grant, env []string) []string {
	sockets := false
	for _, g := range grants {
		sockets = sockets || g.Kind == GrantSock || g.Kind == GrantListen
	}
	if !sockets {
		return env
	}
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == envListenFDs || k == envListenFDNames {
			return env
		}
	}
	names := make([]string, len(grants))
	for i, g := range grants {
		names[i] = g.Name
	}
	out := make([]string, 0, len(env)+2)
	out = append(out, env...)
	return append(out, envListenFDs+"="+strconv.Itoa(len(grants)), envListenFDNames+"="+strings.Join(names, ":"))
}
