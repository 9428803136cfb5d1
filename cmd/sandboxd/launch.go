package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/daemon"
)

// exitUnavailable is the exit status of a daemon verb that could not reach
// the daemon, or lost it mid-way (sysexits' EX_UNAVAILABLE).
const exitUnavailable = 69

// maxStdin is the most standard input `launch --stdin` sends.
const maxStdin = 1 << 20

func init() {
	register(command{
		name:      "launch",
		guestArgs: true,
		usage:     "[flags] prog.wasm [args…]",
		summary:   "launch a guest in the daemon; attached, stream its output and exit with its status",
		run:       launchCmd,
	})
}

// socketFlag adds --socket to a daemon verb's flags.
func socketFlag(fs *flag.FlagSet) *string {
	return fs.String("socket", client.DefaultSocketPath(), "the daemon's control socket `PATH` ($SANDBOXD_SOCKET overrides the default)")
}

// connectTimeoutEnv names how long a daemon verb waits for the daemon to
// answer its connection (client.DefaultDialTimeout if unset).
const connectTimeoutEnv = "SANDBOXD_CONNECT_TIMEOUT"

// dialDaemon connects to the daemon, printing why not on failure.
func dialDaemon(ctx context.Context, socket string) (*client.Client, int) {
	var timeout time.Duration // client.DefaultDialTimeout
	if v := os.Getenv(connectTimeoutEnv); v != "" {
		var err error
		if timeout, err = time.ParseDuration(v); err != nil || timeout <= 0 {
			fail("%s=%q is not a duration above zero: write one such as 30s or 2m", connectTimeoutEnv, v)
			return nil, exitUsage
		}
	}
	c, err := client.DialTimeout(ctx, socket, timeout)
	if err != nil {
		fail("%v", err)
		return nil, exitUnavailable
	}
	return c, exitOK
}

// eachArg connects to the daemon and calls do for each argument in turn,
// and returns the worst exit status do returned (a failure with one
// argument does not stop the others), or the status of a failed dial.
func eachArg(socket string, args []string, do func(ctx context.Context, cl *client.Client, arg string) int) int {
	ctx := context.Background()
	cl, code := dialDaemon(ctx, socket)
	if cl == nil {
		return code
	}
	defer cl.Close()
	status := exitOK
	for _, a := range args {
		status = max(status, do(ctx, cl, a))
	}
	return status
}

// openGuest connects to the daemon and opens guest id (or a unique prefix
// of one: findGuest). When ok, done
// releases the guest and closes the connection; otherwise code is the exit
// status, the failure already printed.
func openGuest(ctx context.Context, socket, id string) (g *client.Guest, done func(), code int, ok bool) {
	cl, code := dialDaemon(ctx, socket)
	if cl == nil {
		return nil, nil, code, false
	}
	g, err := findGuest(ctx, cl, id)
	if err != nil {
		cl.Close()
		return nil, nil, daemonFailure(err), false
	}
	return g, func() { g.Release(); cl.Close() }, exitOK, true
}

// lostDaemonHint ends the line of a call whose connection to the daemon
// was lost: what the client cannot tell apart, and where to look.
const lostDaemonHint = "the daemon stopped (its guests end with it) or dropped this connection: its log says which (\"shutting down\", \"disconnecting client\")"

// lostDaemon is the error of a call whose connection to the daemon was
// lost, with what the client found out about why.
type lostDaemon struct {
	err error
	why string
}

func (e *lostDaemon) Error() string { return e.err.Error() + ": " + e.why }
func (e *lostDaemon) Unwrap() error { return e.err }

// daemonFailure prints err from a daemon call and returns the exit status
// for it: exitUnavailable if the connection was lost; for a launch, the
// exit statuses run uses for a grant, a module or a request that nothing
// ran with; otherwise exitFailure.
func daemonFailure(err error) int {
	var ce *client.Error
	var lost *lostDaemon
	if errors.As(err, &ce) && ce.Disconnected && !errors.As(err, &lost) {
		err = &lostDaemon{err, lostDaemonHint}
	}
	fail("%v", err)
	if errors.As(err, &ce) {
		switch {
		case ce.Disconnected:
			return exitUnavailable
		case ce.Kind == client.KindGrant:
			return exitGrant
		case ce.Kind == client.KindModule:
			return exitModule
		case ce.Kind == client.KindRequest:
			return exitUsage
		}
	}
	return exitFailure
}

// daemonGrants parses --grant texts for the daemon: host paths and unix
// socket paths are made absolute against this process's working
// directory, which the daemon does not share. A bare word as a dir or file
// source (dir:reports) is sent as it is: it names a resource of the
// daemon's policy (write ./reports for the directory here).
func daemonGrants(texts []string) ([]string, error) {
	out := make([]string, len(texts))
	for i, t := range texts {
		g, err := daemon.ParseGrant(t)
		if err != nil {
			return nil, err
		}
		if (g.Kind == daemon.GrantDir || g.Kind == daemon.GrantFile) && !daemon.IsResourceName(g.Source) {
			if g.Source, err = filepath.Abs(g.Source); err != nil {
				return nil, fmt.Errorf("grant %q: %v", t, err)
			}
		}
		if path, ok := g.SocketFile(); ok {
			if path, err = filepath.Abs(path); err != nil {
				return nil, fmt.Errorf("grant %q: %v", t, err)
			}
			g.Source = "unix:" + path
		}
		out[i] = g.String()
	}
	return out, nil
}

// minMaxMessage is the smallest serve --max-message: a request smaller
// than this fits in any daemon's message.
const minMaxMessage = 64 << 10

// sentTooMuch adds to err, the failure of a request that carried size
// bytes (a module, and --stdin), why the daemon was lost: it has stopped
// when nothing listens at socket any more; otherwise the likeliest cause
// is a request over its serve --max-message, which it drops without a
// word the client could read.
func sentTooMuch(err error, size int, socket string) error {
	var ce *client.Error
	if !errors.As(err, &ce) || !ce.Disconnected {
		return err
	}
	if !daemonListens(socket) {
		return &lostDaemon{err, fmt.Sprintf("the daemon stopped: nothing listens at %s now: start it again, then retry", socket)}
	}
	if size < minMaxMessage {
		return err
	}
	return &lostDaemon{err, fmt.Sprintf("the daemon drops a request larger than its serve --max-message (32MiB unless set), "+
		"and this one carries %s: raise --max-message, or look in the daemon's log for why", sizeText(size))}
}

// daemonListens reports whether something still accepts connections at
// socket: false when the socket file is gone (a daemon removes it as it
// stops) or refuses (a daemon that was killed left it).
func daemonListens(socket string) bool {
	c, err := net.Dial("unix", socket)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// guestExit maps how a guest ended to this process's exit status, exactly
// as `sandboxd run` does for the same end.
func guestExit(st client.ExitStatus, timeout time.Duration) int {
	as := abi.ExitStatus{Code: st.Code, Signal: st.Signal, Killed: st.Killed}
	if st.Trap != "" {
		as.Trap = errors.New(st.Trap)
	}
	return exitStatus(as, timeout)
}

func launchCmd(args []string) int {
	c := commands["launch"]
	la, code, ok := parseLaunchFlags(c, args)
	if !ok {
		return code
	}
	// Attached, signals are caught from before the module (and --stdin)
	// is read: one before the launch ends this process, saying nothing
	// ran; from the launch on, it kills the guest, one arriving while the
	// daemon compiles included. Detached, a signal ends launch alone.
	sigs, started := (<-chan os.Signal)(nil), func() {}
	if !la.detach {
		sigs, started = catchSignals()
	}
	req, code, ok := launchRequest(c, la)
	if !ok {
		return code
	}
	ctx := context.Background()
	cl, code := dialDaemon(ctx, la.socket)
	if cl == nil {
		return code
	}
	defer cl.Close()

	started()
	done := progress("the daemon is compiling %s (%s)", req.Name, sizeText(len(req.Wasm)))
	g, err := cl.Launch(ctx, req)
	done()
	if err != nil {
		return daemonFailure(sentTooMuch(err, len(req.Wasm)+len(req.Stdin), la.socket))
	}
	defer g.Release()
	if la.detach {
		if la.json {
			return printJSON(launched{ID: g.ID(), GuestName: la.name})
		}
		return printOut("%s\n", g.ID())
	}
	return awaitLaunched(ctx, g, sigs, la.timeout)
}

// launchArgs is what launch's flags and arguments ask for, once checked.
type launchArgs struct {
	guestArgs
	absGrants []string // guestArgs.grants, with host paths made absolute (daemonGrants)
	socket    string
	detach    bool
	stdin     bool
	name      string // --name
	// interactive: -i, standard input streamed as the guest reads it.
	interactive bool
	json        bool // --json, with --detach
}

// launched is what launch --detach --json prints.
type launched struct {
	ID        string
	GuestName string // --name, or ""
}

// parseLaunchFlags parses and checks launch's flags and arguments. When it
// returns ok false, code is the exit status, the problem already printed
// (or the help, for -h).
func parseLaunchFlags(c command, args []string) (la launchArgs, code int, ok bool) {
	fs := newFlags(c)
	socket := socketFlag(fs)
	gf := addGuestFlags(fs, "give the guest a handle: `KIND:SOURCE[=GUEST][:ro]`, file:PATH:create for a file made if missing, or cap:ID for a capability you hold (repeatable; docs/GRANTS.md)", 0)
	name := fs.String("name", "", "name the guest `NAME` (unique among the daemon's listed guests): it works wherever its id does")
	detach := fs.Bool("detach", false, "print the guest's id and exit; the guest runs on in the daemon (see ps, logs, wait, kill)")
	stdin := fs.Bool("stdin", false, "send this process's standard input (at most 1MiB, read to its end first) as the guest's stdin")
	interactive := fs.Bool("i", false, "stream this process's standard input to the guest's stdin as the guest reads it, like docker run -i (interactive guests, input of any size; not with --detach); without -i or --stdin, the guest's stdin is empty, whatever is piped to launch")
	fs.BoolVar(interactive, "interactive", false, "the same as -i")
	asJSON := fs.Bool("json", false, "with --detach, print the guest as one JSON object: {\"ID\", \"GuestName\"}")
	if code, ok := parseFlags(c, fs, args); !ok {
		return la, code, false
	}
	if la.guestArgs, code, ok = gf.check(c, "launch", fs.Args()); !ok {
		return la, code, false
	}
	var err error
	if la.absGrants, err = daemonGrants(la.grants); err != nil {
		return la, usageError(c, "%v", err), false
	}
	la.socket, la.detach, la.stdin, la.name, la.interactive = *socket, *detach, *stdin, *name, *interactive
	if la.stdin && la.interactive {
		return la, usageError(c, "--stdin sends standard input whole and -i streams it: give one"), false
	}
	if la.interactive && la.detach {
		return la, usageError(c, "-i streams standard input while launch is attached, and --detach exits at once: send it whole with --stdin"), false
	}
	if la.json = *asJSON; la.json && !la.detach {
		return la, usageError(c, "--json goes with --detach: attached, launch prints the guest's own output (sandboxd wait --json prints how it ended)"), false
	}
	return la, exitOK, true
}

// launchRequest reads the module, and standard input for --stdin, into
// the request la asks for. When it returns ok false, code is the exit
// status, the failure already printed.
func launchRequest(c command, la launchArgs) (req client.LaunchRequest, code int, ok bool) {
	wasm, err := readCoreModule(la.path)
	if err != nil {
		fail("%v", err)
		return req, exitModule, false
	}
	var in []byte
	if la.stdin {
		if in, err = io.ReadAll(io.LimitReader(os.Stdin, maxStdin+1)); err != nil {
			fail("reading standard input: %v", err)
			return req, exitFailure, false
		}
		if len(in) > maxStdin {
			return req, usageError(c, "--stdin: standard input is longer than 1MiB: give the guest a file:… grant instead"), false
		}
	}
	req = client.LaunchRequest{
		Name: filepath.Base(la.path), Wasm: wasm, Args: la.argv, Env: la.env, Grants: la.absGrants, Deny: la.deny,
		MemoryLimit: la.memLimit, Timeout: la.timeout, MaxFDs: la.maxFDs, MaxStack: la.maxStack, Stdin: in, Detach: la.detach,
		Labels: la.labels, GuestName: la.name,
	}
	if la.interactive {
		req.StdinStream = os.Stdin
	}
	if !la.detach {
		req.Stdout, req.Stderr = os.Stdout, os.Stderr
	}
	return req, exitOK, true
}

// awaitLaunched waits until the attached guest g ends, and returns its
// exit status as run would; or, at SIGINT or SIGTERM, has the daemon kill
// it (waiting at most killGrace) and returns the signal's status.
func awaitLaunched(ctx context.Context, g *client.Guest, sigs <-chan os.Signal, timeout time.Duration) int {
	type result struct {
		st  client.ExitStatus
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := g.Wait(ctx)
		done <- result{st, err}
	}()
	select {
	case r := <-done:
		var oe *client.OutputError
		if errors.As(r.err, &oe) {
			// As under run, a failed write does not change the status; the
			// guest was not told, so the line says where its output is.
			fail("%v: the guest's output is kept: sandboxd logs %s", r.err, g.ID())
		} else if r.err != nil {
			return daemonFailure(r.err)
		}
		return guestExit(r.st, timeout)
	case sig := <-sigs:
		name, code := signalExit(sig)
		kctx, cancel := context.WithTimeout(ctx, killGrace)
		defer cancel()
		if _, err := g.Kill(kctx, name); err != nil {
			fail("%s: could not kill guest %s: %v", name, g.ID(), err)
			return code
		}
		fail("%s: guest %s killed", name, g.ID())
		return code
	}
}
