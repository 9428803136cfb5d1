package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/daemon/guestrpc"
	"github.com/sandboxd/sandboxd/daemon/server"
	"github.com/sandboxd/sandboxd/policies"
)

// shutdownGrace is how long serve waits, on SIGTERM, for clients to
// disconnect and guests to stop before it exits anyway.
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

	st, err := daemon.OpenState(sa.state)
	if err != nil {
		fail("%v", err)
		return exitFailure
	}
	defer st.Close()
	// The socket is bound before anything else starts: Listen sets the
	// process umask for the bind.
	l, err := server.Listen(sa.socket)
	if err != nil {
		fail("%v", err)
		return exitFailure
	}
	var policy *policies.Policy
	if sa.policyDir != "" {
		if policy, err = loadPolicyDir(sa.policyDir); err != nil {
			l.Close()
			reportPolicyError(log, err)
			fail("serve: the policy in %s does not load: correct it (sandboxd policy check %s/*.hcl)", sa.policyDir, sa.policyDir)
			return exitUsage
		}
	}
	ctx := context.Background()
	sup, err := daemon.New(ctx, daemon.Options{Logger: log, CacheDir: st.CacheDir(), DefaultMaxFDs: sa.maxFDs, MaxIdleModules: sa.idleModules, MaxDescendants: sa.maxProcs, Policy: policy})
	if err != nil {
		l.Close()
		fail("cannot start the runtime: %v", err)
		return exitFailure
	}
	// Guests ask for their Cap'n Proto connection on their supervisor
	// channel (docs/PEERS.md).
	sup.SetPeerServer(guestrpc.New(sup, guestrpc.Options{Logger: log.Named("peers")}))
	srv := server.New(sup, server.Options{Logger: log, Limits: sa.limits, LogBytes: sa.logBytes})

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	log.Info("serving", "socket", sa.socket, "state", st.Dir, "pid", os.Getpid(), "uid", os.Geteuid(), "fd_limit", fdLimit(), "policy", policyText(sa.policyDir, policy))

	code = exitOK
	reload := func() { reloadPolicy(log, sup, sa.policyDir) }
	serveErr, accepting := awaitStop(log, sigs, served, reload)
	if !accepting {
		code = exitFailure
	}
	sctx, cancel := context.WithTimeout(ctx, shutdownGrace)
	defer cancel()
	if err := srv.Close(sctx); err != nil {
		log.Warn("shutting down the server", "error", err)
	}
	if err := sup.Close(sctx); err != nil {
		log.Warn("stopping guests", "error", err)
		code = exitFailure
	}
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
	logBytes                      uint64 // --log-bytes
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
	logBytes := fs.String("log-bytes", "1MiB", "keep the last `SIZE` of each guest's output for `sandboxd logs`")
	maxProcs := fs.Int("max-procs", abi.DefaultMaxDescendants, "guests (`N`) that a launched guest and its descendants may have spawned and running at once; proc_spawn past it fails with EAGAIN")
	idleModules := fs.Int("idle-modules", abi.DefaultMaxIdleModules, "keep `N` compiled modules that no guest runs, for the next launch of each; older ones are dropped")
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
	var problem string
	if sa.limits, problem = lf.limits(fs); problem != "" {
		return sa, usageError(c, "%s", problem), false
	}
	sa.socket, sa.state, sa.logJSON = *socket, *state, *logJSON
	sa.maxFDs, sa.maxProcs, sa.idleModules = *maxFDs, *maxProcs, *idleModules
	if !sa.countsInRange() {
		return sa, usageError(c, "--max-fds must be at least 3, and --max-calls, --max-objects, --max-guests, --max-conns, --max-procs, --idle-modules and --write-timeout above 0, and --max-procs at most %d", abi.MaxMaxDescendants), false
	}
	return sa, exitOK, true
}

// countsInRange reports whether every count and the write timeout are in
// range. One message covers them all.
func (sa serveArgs) countsInRange() bool {
	lim := sa.limits
	for _, n := range []int{lim.MaxOutstandingCalls, lim.MaxObjects, lim.MaxGuests, lim.MaxConnections, sa.idleModules, sa.maxProcs} {
		if n < 1 {
			return false
		}
	}
	return sa.maxFDs >= 3 && lim.WriteTimeout > 0 && sa.maxProcs <= abi.MaxMaxDescendants
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
	fs.DurationVar(&lim.WriteTimeout, "write-timeout", lim.WriteTimeout, "disconnect a client that does not read its socket for `DURATION`")
	return f
}

// limits returns the limits the parsed flags set, or the problem with
// them. The connection shares left unset take their defaults from
// --max-conns; set ones must fit within it.
func (f *limitFlags) limits(fs *flag.FlagSet) (server.Limits, string) {
	lim := f.lim
	msg, err := parseSize(*f.maxMsg)
	if err != nil || msg < 64<<10 {
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
