package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/daemon/guestrpc"
	"github.com/sandboxd/sandboxd/daemon/server"
	"github.com/sandboxd/sandboxd/policies"
)

// shutdownGrace is how long serve waits, on SIGTERM, for its client
// connections to end before it exits anyway.
const shutdownGrace = 10 * time.Second

func init() {
	register(command{
		name:    "serve",
		usage:   "[flags]",
		summary: "run the daemon: serve the control API on a unix socket until SIGTERM",
		run:     serveCmd,
	})
}

func serveCmd(args []string) int {
	c := commands["serve"]
	sa, code, ok := parseServeFlags(c, args)
	if !ok {
		return code
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "sandboxd", Level: sa.level, Output: os.Stderr, JSONFormat: sa.logJSON})
	d, code, ok := startDaemon(sa, log)
	if !ok {
		return code
	}
	defer d.close()
	return d.serve(sa, log)
}

// daemonParts are what serve runs: the state directory, the control
// socket, the policy, the audit log, the supervisor and the server.
type daemonParts struct {
	st        *daemon.State
	l         *net.UnixListener
	socket    string // for the log: the path, or the activated socket
	policy    *policies.Policy
	auditLog  *audit.Log
	sup       *daemon.Supervisor
	srv       *server.Server
	closeFrom []func() // what close releases, last opened first
}

func (d *daemonParts) close() {
	for i := len(d.closeFrom) - 1; i >= 0; i-- {
		d.closeFrom[i]()
	}
}

// startDaemon opens everything serve runs on. When it returns ok false,
// code is the exit status, the failure already printed, and nothing is
// left open.
func startDaemon(sa serveArgs, log hclog.Logger) (d *daemonParts, code int, ok bool) {
	d = &daemonParts{socket: sa.socket}
	failed := func(code int, format string, args ...any) (*daemonParts, int, bool) {
		d.close()
		fail(format, args...)
		return nil, code, false
	}
	var err error
	if d.st, err = daemon.OpenState(sa.state); err != nil {
		return failed(exitFailure, "%v", err)
	}
	d.closeFrom = append(d.closeFrom, func() { d.st.Close() })
	// The socket is bound before anything else starts: Listen sets the
	// process umask for the bind.
	var activated bool
	if d.l, activated, err = controlListener(sa.socket, log); err != nil {
		return failed(exitFailure, "%v", err)
	}
	if activated {
		d.socket = d.l.Addr().String() + " (socket activation)"
	}
	if sa.policyDir != "" {
		if d.policy, err = loadPolicyDir(sa.policyDir, false); err != nil {
			d.l.Close()
			var de *errPolicyDir
			if errors.As(err, &de) {
				return failed(exitUsage, "serve: %v", err)
			}
			reportPolicyError(log, err)
			return failed(exitUsage, "serve: the policy in %s does not load: correct it (sandboxd policy check %s/*.hcl)", sa.policyDir, sa.policyDir)
		}
	}
	if d.auditLog, err = audit.Open(d.st.AuditPath(), audit.Options{MaxFileBytes: int64(sa.auditBytes), MaxTotalBytes: sa.auditMax, Warn: auditWarn(log)}); err != nil {
		d.l.Close()
		if errors.Is(err, audit.ErrCannotWrite) {
			return failed(exitFailure, "%v (--state)", err)
		}
		return failed(exitFailure, "%v: check it with sandboxd audit verify --state %s", err, d.st.Dir)
	}
	d.closeFrom = append(d.closeFrom, func() { d.auditLog.Close() })
	d.sup, err = daemon.New(context.Background(), daemon.Options{Logger: log, CacheDir: d.st.CacheDir(), MaxCacheBytes: sa.cacheSize, DefaultMaxFDs: sa.maxFDs, DefaultMaxStack: sa.maxStack, MaxMemPerUser: sa.maxMemPerUser, MaxInFlightPerUser: sa.maxInFlight, MaxIdleModules: sa.idleModules, MaxDescendants: sa.maxProcs, Policy: d.policy, Audit: d.auditLog})
	if err != nil {
		d.l.Close()
		return failed(exitFailure, "cannot start the runtime: %v", err)
	}
	// Guests ask for their Cap'n Proto connection on their supervisor
	// channel (docs/PEERS.md).
	d.sup.SetPeerServer(guestrpc.New(d.sup, guestrpc.Options{Logger: log.Named("peers")}))
	d.srv = server.New(d.sup, server.Options{Logger: log, Limits: sa.limits, LogBytes: sa.logBytes})
	return d, exitOK, true
}

// serve serves the control API until SIGTERM or SIGINT (SIGHUP reloads the
// policy), then stops the server and the guests, and returns serve's exit
// status.
func (d *daemonParts) serve(sa serveArgs, log hclog.Logger) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	served := make(chan error, 1)
	go func() { served <- d.srv.Serve(d.l) }()
	log.Info("serving", "socket", d.socket, "state", d.st.Dir, "pid", os.Getpid(), "uid", os.Geteuid(), "fd_limit", fdLimit(), "policy", policyText(sa.policyDir, d.policy))
	if err := sdNotify("READY=1"); err != nil {
		log.Warn("could not tell systemd the daemon is ready", "error", err)
	}

	code := exitOK
	reload := func() { reloadPolicy(log, d.sup, sa.policyDir) }
	serveErr, accepting := awaitStop(log, sigs, served, reload)
	_ = sdNotify("STOPPING=1") // nothing to do if systemd does not hear it
	if !accepting {
		code = exitFailure
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := d.srv.Close(sctx); err != nil {
		log.Warn("shutting down the server", "error", err)
	}
	// serve exits next, which ends every guest at once: killing and
	// waiting for each would cost seconds at 100,000 guests.
	running := d.sup.Abandon()
	log.Info("stopping", "guests", running, "reason", "supervisor shutting down")
	if accepting {
		serveErr = <-served
	}
	if serveErr != nil && !errors.Is(serveErr, server.ErrClosed) {
		code = exitFailure
	}
	log.Info("stopped")
	return code
}

// serveArgs is what serve's flags ask for, once checked.
type serveArgs struct {
	socket, state                 string
	policyDir                     string // --policy; "" for none
	level                         hclog.Level
	logJSON                       bool
	maxFDs, maxProcs, idleModules int
	maxInFlight                   int    // --max-inflight-per-user
	logBytes                      uint64 // --log-bytes
	maxStack                      uint64 // --max-stack
	maxMemPerUser                 uint64 // --max-mem-per-user; 0: none
	auditBytes                    uint64 // --audit-file-size
	auditMax                      int64  // --audit-max-size; 0: no bound
	cacheSize                     int64  // --cache-size as daemon.Options.MaxCacheBytes
	limits                        server.Limits
}

// parseServeFlags parses and checks serve's flags. When it returns ok
// false, code is the exit status, the problem already printed (or the
// help, for -h).
func parseServeFlags(c command, args []string) (sa serveArgs, code int, ok bool) {
	fs := newFlags(c)
	socket := socketFlag(fs)
	state := fs.String("state", daemon.DefaultStateDir(), "keep the compilation cache in `DIR` (created 0700, locked while serving)")
	logLevel := fs.String("log-level", "info", "log `LEVEL` on stderr: trace, debug, info, warn, error or off")
	logJSON := fs.Bool("log-json", false, "log JSON lines instead of text")
	maxFDs := fs.Int("max-fds", caps.DefaultMaxFDs, "the handle-table size (`N`) of guests launched without --max-fds")
	maxStack := fs.String("max-stack", abi.SizeText(abi.DefaultMaxStack), "the call-stack bound (`SIZE`, 64KiB to 64MiB, as counted: docs/CLI.md, Call stack) of guests launched without --max-stack")
	maxMemPerUser := fs.String("max-mem-per-user", "0", "refuse a launch that would take the running guests of its user past `SIZE` of memory together, counting each guest's --mem and --max-stack, and the byte objects and channel buffers they make (0: no budget; docs/DAEMON.md)")
	maxInFlight := fs.Int("max-inflight-per-user", caps.DefaultMaxInFlight, "handles (`N`) that the guests of one user may have sent on channels and not yet received, at any depth of nesting; sock_send past it fails with ENOBUFS (docs/DAEMON.md)")
	logBytes := fs.String("log-bytes", "1MiB", "keep the last `SIZE` of each guest's output for `sandboxd logs`")
	maxProcs := fs.Int("max-procs", abi.DefaultMaxDescendants, "guests (`N`) that a launched guest and its descendants may have spawned and running at once; proc_spawn past it fails with EAGAIN")
	idleModules := fs.Int("idle-modules", abi.DefaultMaxIdleModules, "keep `N` compiled modules that no guest runs, for the next launch of each; older ones are dropped")
	cacheSize := cacheSizeFlag(fs, "STATE/cache")
	auditBytes, auditMax := auditSizeFlags(fs, "STATE/audit.jsonl.N")
	policyDir := fs.String("policy", "", "decide grants and delegations by the policy in `DIR` (every *.hcl in it; SIGHUP reloads it; docs/POLICY.md). Without it, only root and the daemon's user may grant host paths, sockets and channels")
	lf := defineLimitFlags(fs)
	if code, ok := parseFlags(c, fs, args); !ok {
		return sa, code, false
	}
	if fs.NArg() > 0 {
		return sa, usageError(c, "unexpected argument %q: serve takes only flags", fs.Arg(0)), false
	}
	sa.policyDir = *policyDir
	if sa.level = hclog.LevelFromString(*logLevel); sa.level == hclog.NoLevel {
		return sa, usageError(c, "--log-level %q is not one of trace, debug, info, warn, error, off", *logLevel), false
	}
	var err error
	if sa.logBytes, err = parseSize(*logBytes); err != nil || sa.logBytes == 0 {
		return sa, usageError(c, "--log-bytes %q: a SIZE above 0 is needed, e.g. 1MiB", *logBytes), false
	}
	if sa.auditBytes, sa.auditMax, err = parseAuditSizes(*auditBytes, *auditMax); err != nil {
		return sa, usageError(c, "%v", err), false
	}
	if sa.maxStack, err = parseMaxStack(*maxStack); err != nil {
		return sa, usageError(c, "%v", err), false
	}
	if sa.maxMemPerUser, err = parseBytes(*maxMemPerUser); err != nil {
		return sa, usageError(c, "--max-mem-per-user %q: %v", *maxMemPerUser, err), false
	}
	if sa.cacheSize, err = parseCacheSize(*cacheSize); err != nil {
		return sa, usageError(c, "%v", err), false
	}
	var problem string
	if sa.limits, problem = lf.limits(fs); problem != "" {
		return sa, usageError(c, "%s", problem), false
	}
	sa.socket, sa.state, sa.logJSON = *socket, *state, *logJSON
	sa.maxFDs, sa.maxProcs, sa.idleModules, sa.maxInFlight = *maxFDs, *maxProcs, *idleModules, *maxInFlight
	if problem := sa.countProblem(); problem != "" {
		return sa, usageError(c, "%s", problem), false
	}
	return sa, exitOK, true
}

// countProblem names the first count flag outside its range, with its
// value and what it takes, or returns "" when all are in range.
func (sa serveArgs) countProblem() string {
	lim := sa.limits
	for _, f := range []struct {
		name string
		n    int
	}{
		{"max-calls", lim.MaxOutstandingCalls}, {"max-objects", lim.MaxObjects}, {"max-guests", lim.MaxGuests},
		{"max-conns", lim.MaxConnections}, {"idle-modules", sa.idleModules}, {"max-procs", sa.maxProcs},
		{"max-inflight-per-user", sa.maxInFlight},
	} {
		if f.n < 1 {
			return fmt.Sprintf("--%s %d: it must be above 0", f.name, f.n)
		}
	}
	switch {
	case sa.maxProcs > abi.MaxMaxDescendants:
		return fmt.Sprintf("--max-procs %d: it may be at most %d", sa.maxProcs, abi.MaxMaxDescendants)
	case sa.maxFDs < 3:
		return fmt.Sprintf("--max-fds %d: it must be at least 3, for the guest's stdin, stdout and stderr", sa.maxFDs)
	case lim.WriteTimeout <= 0:
		return fmt.Sprintf("--write-timeout %v: it must be above 0", lim.WriteTimeout)
	}
	return ""
}

// awaitStop returns at SIGINT or SIGTERM, or when Serve has returned
// (accepting false, with Serve's error). SIGHUP calls reload.
func awaitStop(log hclog.Logger, sigs <-chan os.Signal, served <-chan error, reload func()) (serveErr error, accepting bool) {
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload()
				continue
			}
			log.Info("shutting down", "signal", sig.String())
			return nil, true
		case err := <-served:
			log.Error("stopped accepting connections", "error", err)
			return err, false
		}
	}
}

// limitFlags are serve's flags for server.Limits.
type limitFlags struct {
	lim    server.Limits
	maxMsg *string
}

func defineLimitFlags(fs *flag.FlagSet) *limitFlags {
	f := &limitFlags{lim: server.DefaultLimits}
	lim := &f.lim
	f.maxMsg = fs.String("max-message", "32MiB", "the largest request a client may send (`SIZE`; a launch carries its module)")
	fs.IntVar(&lim.MaxOutstandingCalls, "max-calls", lim.MaxOutstandingCalls, "calls (`N`) one connection may have in progress; more disconnect it")
	fs.IntVar(&lim.MaxObjects, "max-objects", lim.MaxObjects, "Guest and Cap objects (`N`) one connection may hold")
	fs.IntVar(&lim.MaxGuests, "max-guests", lim.MaxGuests, "guests (`N`) one user may have running at once")
	fs.IntVar(&lim.MaxConnections, "max-conns", lim.MaxConnections, "concurrent client connections (`N`), of all users together")
	fs.IntVar(&lim.MaxConnectionsPerUser, "max-conns-per-user", 0, "connections (`N`) one user other than root and the daemon's may have open at once (default --max-conns/8)")
	fs.IntVar(&lim.ReservedConnections, "reserved-conns", 0, "connections (`N`) of --max-conns that only root and the daemon's user may take (default --max-conns/16)")
	durationFlag(fs, &lim.WriteTimeout, "write-timeout", lim.WriteTimeout, "disconnect a client that does not read its socket for `DURATION`")
	return f
}

// limits returns the limits the parsed flags set, or the problem with
// them. The connection shares left unset take their defaults from
// --max-conns; set ones must fit within it.
func (f *limitFlags) limits(fs *flag.FlagSet) (server.Limits, string) {
	lim := f.lim
	msg, err := parseSize(*f.maxMsg)
	if err != nil || msg < minMaxMessage {
		return lim, fmt.Sprintf("--max-message %q: a SIZE of at least 64KiB is needed, e.g. 32MiB", *f.maxMsg)
	}
	lim.MaxMessageSize = msg
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if lim.MaxConnections < 1 {
		return lim, "" // reported with the other counts
	}
	filled := server.Limits{MaxConnections: lim.MaxConnections, ReservedConnections: lim.ReservedConnections}.WithDefaults()
	if set["reserved-conns"] && (lim.ReservedConnections < 1 || lim.ReservedConnections >= lim.MaxConnections) {
		return lim, fmt.Sprintf("--reserved-conns %d: it must be at least 1 and below --max-conns (%d)", lim.ReservedConnections, lim.MaxConnections)
	}
	if shared := lim.MaxConnections - filled.ReservedConnections; set["max-conns-per-user"] && (lim.MaxConnectionsPerUser < 1 || lim.MaxConnectionsPerUser > shared) {
		return lim, fmt.Sprintf("--max-conns-per-user %d: it must be at least 1 and at most --max-conns minus --reserved-conns (%d)", lim.MaxConnectionsPerUser, shared)
	}
	return lim, ""
}

// fdLimit returns this process's RLIMIT_NOFILE (Go raised the soft limit
// to the hard one at start). Every guest's files, directories and sockets
// are this process's descriptors, so the limit bounds them all together.
func fdLimit() uint64 {
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Cur
}
