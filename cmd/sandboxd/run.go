package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/internal/plural"
	"github.com/sandboxd/sandboxd/policies"
)

// Exit codes of `sandboxd run` besides the guest's own (docs/CLI.md).
const (
	exitGrant      = 3   // a grant could not be set up: nothing ran
	exitModule     = 4   // the module is unreadable, invalid, or not a command module: nothing ran
	exitTimeout    = 124 // --timeout ended the guest
	exitTrap       = 134 // the guest trapped
	exitKilled     = 137 // the guest was killed for another reason
	exitInterrupt  = 130 // SIGINT (Ctrl-C) ended the guest
	exitTerminated = 143 // SIGTERM ended the guest
	maxExitStatus  = 255 // larger guest exit codes are reported as 255
)

// signalExit returns the kill reason for a guest that signal sig ends
// (the word its end is reported with) and the exit status for it: a
// shell's 128 + the signal's number, as if sig had ended this process.
// run and launch catch only SIGINT and SIGTERM.
func signalExit(sig os.Signal) (reason string, code int) {
	if sig == syscall.SIGTERM {
		return "terminated", exitTerminated
	}
	return "interrupted", exitInterrupt
}

// defaultMem is the --mem default: enough for most programs, small enough
// that a runaway guest cannot take the host's memory.
const defaultMem = "256MiB"

// killGrace bounds how long launch waits for the daemon to kill a guest.
const killGrace = 5 * time.Second

// stopGrace is how long run waits, once it has killed its guest or the
// guest has ended, for the guest and the guests it spawned (which its end
// kills) to unwind before it exits without them. run compiles guests
// without loop checks (see abi.Config.NoLoopChecks) for speed: a guest
// blocked in a host call stops at once, one spinning in a loop never does,
// and ending this process ends it.
const stopGrace = 200 * time.Millisecond

// gcHeadroom is how far the Go runtime's memory may grow while the guest
// runs before the garbage collector runs (see holdGC).
const gcHeadroom = 128 << 20

// holdGC keeps the garbage collector from running while the guest runs,
// unless the Go runtime's memory grows by gcHeadroom. Without loop
// checks, a guest in a loop that makes no host call never reaches a point
// where Go can pause it, and a collection must pause every goroutine
// twice: one that started then would wait for the guest forever, and the
// timer and the signal handling that end the guest would wait with it.
// With no collection in progress (SetGCPercent waits for one to finish)
// and none started by the passing of time, a spinning guest can always be
// ended. The collector still runs if host calls leave that much garbage.
//
// Guests' linear memories are not in the Go heap (abi reserves address
// space for each, outside the Go runtime), so the memory limit counts
// none of them, however large --mem and --max-procs let them grow: the
// headroom is for host calls alone. Were a guest's memory taken from the
// Go heap instead (the kernel refused its reservation, as a small
// `ulimit -v` makes it), its growth would start collections.
func holdGC() {
	// Sys less HeapReleased is what the memory limit counts (runtime/metrics'
	// /memory/classes/total less /memory/classes/heap/released). MemStats
	// rather than runtime/metrics: that package's init builds its table of
	// every metric in every process, whichever verb runs.
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	held := ms.Sys - ms.HeapReleased
	debug.SetMemoryLimit(int64(held) + gcHeadroom)
	debug.SetGCPercent(-1)
}

// spareProcs makes sure the process can run Go code however many of its
// guests spin: without loop checks a spinning guest keeps the scheduler's
// P it runs on until the process exits, and the timer and signal handling
// that end it need a P of their own. A tree runs at most maxProcs+1
// guests, so maxProcs+2 Ps always leave one free, even on one CPU, where
// the kernel then shares the CPU between the threads.
func spareProcs(maxProcs int) {
	if n := maxProcs + 2; runtime.GOMAXPROCS(0) < n {
		runtime.GOMAXPROCS(n)
	}
}

func init() {
	register(command{
		name:      "run",
		guestArgs: true,
		usage:     "[flags] prog.wasm [args…]",
		summary:   "run a guest in this process with exactly the given grants (no daemon needed)",
		run:       runCmd,
	})
}

func runCmd(args []string) int {
	c := commands["run"]
	ra, code, ok := parseRunFlags(c, args)
	if !ok {
		return code
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "sandboxd", Level: ra.level, Output: os.Stderr})
	ctx := context.Background()
	// Signals are caught from before the module is read: one during setup
	// ends this process at once, saying nothing ran; from the launch on,
	// it ends the guest.
	sigs, started := catchSignals()
	l, code, ok := loadGuest(ctx, ra, log)
	if !ok {
		return code
	}
	defer l.module.Release()
	if l.audit != nil {
		// Every record was on disk before what it records went on; closing
		// writes those of the handles closed last and releases the lock.
		defer l.audit.Close()
	}

	started()
	holdGC()
	spareProcs(ra.maxProcs)
	g, err := l.sup.Launch(ctx, daemon.LaunchSpec{
		Principal:   l.principal,
		Module:      l.module,
		Grants:      ra.parsed,
		Deny:        ra.denyList,
		Labels:      labelMap(ra.labels),
		Args:        ra.argv,
		Env:         ra.env,
		MemoryLimit: ra.memLimit,
		Timeout:     ra.timeout,
		MaxFDs:      ra.maxFDs,
		MaxStack:    ra.maxStack,
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		Terminal:    daemon.StdioTerminal{Stdin: isTerminal(os.Stdin), Stdout: isTerminal(os.Stdout), Stderr: isTerminal(os.Stderr)},
	})
	if err != nil {
		return launchFailure(c, err)
	}
	return awaitGuest(g, l.sup, sigs, ra.timeout, log)
}

// launchFailure prints why the launch failed and returns run's status: 1
// when the --audit log could not take its records (as for a log that
// cannot be opened), 3 for a grant, 2 for a request invalid in itself.
func launchFailure(c command, err error) int {
	var ge *daemon.GrantError
	switch {
	case daemon.IsAuditFailure(err):
		fail("cannot launch: %v: free room for the --audit log, or give --audit another file", err)
		return exitFailure
	case errors.As(err, &ge):
		fail("%v", err)
		return exitGrant
	}
	return usageError(c, "%v", err)
}

// runArgs is what run's flags and arguments ask for, once checked.
type runArgs struct {
	guestArgs
	parsed    []daemon.Grant     // guestArgs.grants, parsed
	denyList  *policies.DenyList // guestArgs.deny, nil for none
	policy    *policies.Policy
	level     hclog.Level
	cacheDir  string
	cacheSet  bool  // --cache-dir was given: one that cannot be used fails the run
	cacheSize int64 // --cache-size as daemon.Options.MaxCacheBytes
	maxProcs  int
	debugInfo bool
	auditPath string // --audit; "" for none
	auditMax  int64  // --audit-max-size; 0: no bound
	auditFile uint64 // --audit-file-size
}

// parseRunFlags parses and checks run's flags and arguments. When it
// returns ok false, code is the exit status, the problem already printed
// (or the help, for -h).
func parseRunFlags(c command, args []string) (ra runArgs, code int, ok bool) {
	fs := newFlags(c)
	gf := addGuestFlags(fs, "give the guest a handle: `KIND:SOURCE[=GUEST][:ro]`, e.g. dir:./data=data:ro, or file:./out.log:create for a file made if missing (repeatable; docs/GRANTS.md)", caps.DefaultMaxFDs)
	logLevel := fs.String("log-level", "warn", "log `LEVEL` on stderr: trace, debug, info, warn, error or off")
	cacheDir := fs.String("cache-dir", defaultCacheDir(), "keep compiled code in `DIR` between runs (\"\": compile in memory only)")
	cacheSize := cacheSizeFlag(fs, "--cache-dir")
	maxProcs := fs.Int("max-procs", abi.DefaultMaxDescendants, "guests (`N`) the guest and its descendants may have spawned and running at once; proc_spawn past it fails with EAGAIN")
	debugInfo := fs.Bool("debug-info", false, "read the module's DWARF sections, so that a trap's stack trace (--log-level debug) shows source lines; starts slower, and runs without the --max-stack bound, whose rewrite would drop them")
	var policyFiles stringList
	fs.Var(&policyFiles, "policy", "decide the grants by the policy in `FILE` (repeatable: the files load as one policy; docs/POLICY.md)")
	auditPath := fs.String("audit", "", "append the audit log of the run to `FILE` (created 0600; the records the daemon keeps: docs/AUDIT.md)")
	auditFile, auditMax := auditSizeFlags(fs, "FILE.N")
	if code, ok := parseFlags(c, fs, args); !ok {
		return ra, code, false
	}
	ra.auditPath = *auditPath
	if ra.guestArgs, code, ok = gf.check(c, "run", fs.Args()); !ok {
		return ra, code, false
	}
	if ra.maxFDs < 3+len(ra.grants) {
		return ra, usageError(c, "--max-fds %d leaves no room for 3 stdio handles and %s: allow at least %d", ra.maxFDs, plural.Count(len(ra.grants), "grant", "grants"), 3+len(ra.grants)), false
	}
	if ra.level = hclog.LevelFromString(*logLevel); ra.level == hclog.NoLevel {
		return ra, usageError(c, "--log-level %q is not one of trace, debug, info, warn, error, off", *logLevel), false
	}
	if *maxProcs < 1 || *maxProcs > abi.MaxMaxDescendants {
		return ra, usageError(c, "--max-procs %d: from 1 to %d", *maxProcs, abi.MaxMaxDescendants), false
	}
	if ra.parsed, code, ok = parseRunGrants(c, ra.grants); !ok {
		return ra, code, false
	}
	if len(policyFiles) > 0 {
		if ra.policy, ok = loadPolicy("run", policyFiles); !ok {
			return ra, exitUsage, false
		}
	}
	if ra.denyList, code, ok = runDenyList(c, ra.deny, ra.policy); !ok {
		return ra, code, false
	}
	var err error
	if ra.cacheSize, err = parseCacheSize(*cacheSize); err != nil {
		return ra, usageError(c, "%v", err), false
	}
	if ra.auditFile, ra.auditMax, err = parseAuditSizes(*auditFile, *auditMax); err != nil {
		return ra, usageError(c, "%v", err), false
	}
	ra.cacheDir, ra.maxProcs, ra.debugInfo = *cacheDir, *maxProcs, *debugInfo
	sizeFlag := ""
	fs.Visit(func(f *flag.Flag) {
		ra.cacheSet = ra.cacheSet || f.Name == "cache-dir"
		if f.Name == "audit-file-size" || f.Name == "audit-max-size" {
			sizeFlag = f.Name
		}
	})
	if sizeFlag != "" && ra.auditPath == "" {
		return ra, usageError(c, "--%s sizes the --audit log, and there is none: give --audit FILE", sizeFlag), false
	}
	return ra, exitOK, true
}

// cacheSizeFlag defines --cache-size, the bound of the compilation cache
// in dir (a flag's name or a path).
func cacheSizeFlag(fs *flag.FlagSet, dir string) *string {
	return fs.String("cache-size", abi.SizeText(abi.DefaultMaxCacheBytes), "keep at most `SIZE` of compiled modules in "+dir+", removing the least recently used past it (0: no bound)")
}

// auditSizeFlags are run's and serve's --audit-file-size and
// --audit-max-size; next names the files after the first.
func auditSizeFlags(fs *flag.FlagSet, next string) (file, total *string) {
	file = fs.String("audit-file-size", "64MiB", "start a new audit log file ("+next+") once the current one is past `SIZE`")
	total = fs.String("audit-max-size", "4GiB", "keep the audit log's files within `SIZE` together: past it the oldest but the first are removed, a checkpoint of the graph standing for them (0: keep every file; docs/AUDIT.md)")
	return file, total
}

// parseAuditSizes reads --audit-file-size and --audit-max-size, which
// must leave room for the first file and the current one: 0 is no bound.
func parseAuditSizes(file, total string) (fileSize uint64, maxTotal int64, err error) {
	if fileSize, err = parseSize(file); err != nil || fileSize < 4<<10 {
		return 0, 0, fmt.Errorf("--audit-file-size %q: a SIZE of at least 4KiB is needed, e.g. 64MiB", file)
	}
	n, err := parseBytes(total)
	switch {
	case err != nil:
		return 0, 0, fmt.Errorf("--audit-max-size %q: %v", total, err)
	case n == 0:
		return fileSize, 0, nil
	case n < 2*fileSize || n > math.MaxInt64:
		return 0, 0, fmt.Errorf("--audit-max-size %q: the first file and the current one are always kept, so a bound below twice --audit-file-size (%s) keeps nothing more; give at least that, or 0 for no bound", total, abi.SizeText(2*fileSize))
	}
	return fileSize, int64(n), nil
}

// auditWarn logs why the audit log could not be kept within its bound.
func auditWarn(log hclog.Logger) func(error) {
	return func(err error) { log.Warn("audit log past --audit-max-size", "error", err) }
}

// parseCacheSize reads --cache-size as daemon.Options.MaxCacheBytes, where
// no bound is -1.
func parseCacheSize(s string) (int64, error) {
	n, err := parseBytes(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("--cache-size %q: %v", s, err)
	case n == 0 || n > math.MaxInt64:
		return -1, nil
	}
	return int64(n), nil
}

// runDenyList is run's --deny list. Without a policy a dir or file grant
// is always a host path, so a selector naming a dir or file resource
// could deny nothing: it is refused.
func runDenyList(c command, sels []string, p *policies.Policy) (*policies.DenyList, int, bool) {
	if len(sels) == 0 {
		return nil, exitOK, true
	}
	for _, s := range sels {
		kind, v, _ := strings.Cut(s, ":")
		if p == nil && (kind == "dir" || kind == "file") && !strings.HasPrefix(v, "/") {
			if strings.Contains(v, "*") {
				return nil, usageError(c, "--deny %q matches %s resources of a policy by name, and run has no --policy: deny a host path (%s:/PATH, %s:./PATH)", s, kind, kind, kind), false
			}
			return nil, usageError(c, "--deny %q names a %s resource of a policy, and run has no --policy: give a path (%s:./%s)", s, kind, kind, v), false
		}
	}
	l, err := policies.ParseDenyList(sels)
	if err != nil {
		return nil, usageError(c, "--%v", err), false
	}
	return l, exitOK, true
}

// parseRunGrants parses run's grants. chan: grants are refused: they join
// guests of one daemon, and run has one guest. A unix socket path is made
// absolute against the working directory, as launch makes it: a --deny
// list judges a socket file where it is, and refuses a relative path.
func parseRunGrants(c command, texts []string) ([]daemon.Grant, int, bool) {
	parsed := make([]daemon.Grant, len(texts))
	for i, t := range texts {
		var err error
		if parsed[i], err = daemon.ParseGrant(t); err != nil {
			return nil, usageError(c, "%v", err), false
		}
		if parsed[i].Kind == daemon.GrantChan {
			fail("grant %q: chan: grants join guests launched by one daemon (sandboxd serve, then sandboxd launch); run has one guest", t)
			return nil, exitGrant, false
		}
		if path, ok := parsed[i].SocketFile(); ok && !filepath.IsAbs(path) {
			if path, err = filepath.Abs(path); err != nil {
				fail("grant %q: %v", t, err)
				return nil, exitGrant, false
			}
			parsed[i].Source = "unix:" + path
		}
	}
	return parsed, exitOK, true
}

// labelMap turns checked KEY=VALUE labels into a map.
func labelMap(labels []string) map[string]string {
	if len(labels) == 0 {
		return nil
	}
	m := make(map[string]string, len(labels))
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		m[k] = v
	}
	return m
}

// loaded is what run launches: the guest's compiled module, the runtime
// it was compiled by, and the user the guest runs for.
type loaded struct {
	sup       *daemon.Supervisor
	module    *abi.Module
	principal daemon.Principal
	audit     *audit.Log // --audit's, or nil
}

// loadGuest builds the runtime on another core while it reads the module,
// then compiles the module. When it returns ok false, code is the exit
// status, the failure already printed.
//
// The supervisor is never closed: this process exits when its one guest
// has ended (or would not stop), and the exit releases the runtime, its
// memory and every handle at once.
func loadGuest(ctx context.Context, ra runArgs, log hclog.Logger) (l loaded, code int, ok bool) {
	type started struct {
		sup      *daemon.Supervisor
		audit    *audit.Log
		err      error
		auditErr bool // err is the audit log's
	}
	supc := make(chan started, 1)
	go func() {
		var st started
		if ra.auditPath != "" {
			if st.audit, st.err = audit.Open(ra.auditPath, audit.Options{MaxFileBytes: int64(ra.auditFile), MaxTotalBytes: ra.auditMax, Warn: auditWarn(log)}); st.err != nil {
				st.auditErr = true
				supc <- st
				return
			}
		}
		st.sup, st.err = newRunSupervisor(ctx, ra, log, st.audit)
		supc <- st
	}()
	wasm, err := readCoreModule(ra.path)
	if err != nil {
		fail("%v", err)
		return l, exitModule, false
	}
	l.principal = currentPrincipal()
	st := <-supc
	if st.auditErr {
		fail("%s", auditOpenFailure(st.err))
		return l, exitFailure, false
	}
	if st.err != nil {
		fail("cannot start the runtime: %v (try --cache-dir \"\")", st.err)
		return l, exitFailure, false
	}
	l.sup, l.audit = st.sup, st.audit
	done := progress("compiling %s (%s)", filepath.Base(ra.path), sizeText(len(wasm)))
	l.module, err = l.sup.Compile(ctx, filepath.Base(ra.path), wasm)
	done()
	if err != nil {
		fail("%v", err)
		return l, exitModule, false
	}
	return l, exitOK, true
}

// auditOpenFailure says what failed of an --audit log that audit.Open
// could not open, and what to do: another file, when the path itself
// could not be opened. A log it could not write to says so and what to
// do itself (free space, or another file), as do its other errors (a log
// in use, a file that is not a log).
func auditOpenFailure(err error) string {
	switch {
	case errors.Is(err, audit.ErrCannotWrite):
		return fmt.Sprintf("%v (--audit)", err)
	case errors.As(err, new(*os.PathError)):
		return fmt.Sprintf("cannot open the audit log: %v: give --audit a file this user may write", err)
	}
	return fmt.Sprintf("cannot open the audit log: %v", err)
}

// newRunSupervisor is run's embedded supervisor. The default compilation
// cache is an optimisation: where it cannot be made (no home directory,
// or one this user may not write, as a service account's often is), the
// guest is compiled in memory, with one warning; a --cache-dir given that
// cannot be used fails the run, as asked.
func newRunSupervisor(ctx context.Context, ra runArgs, log hclog.Logger, al *audit.Log) (*daemon.Supervisor, error) {
	opts := daemon.Options{Logger: log, CacheDir: ra.cacheDir, MaxCacheBytes: ra.cacheSize, NoLoopChecks: true, NoStackChecks: ra.debugInfo, NoDebugInfo: !ra.debugInfo, MaxDescendants: ra.maxProcs, Policy: ra.policy, Audit: al}
	sup, err := daemon.New(ctx, opts)
	if err == nil || ra.cacheSet || opts.CacheDir == "" {
		return sup, err
	}
	log.Warn("the default compilation cache cannot be used: compiling in memory (give --cache-dir DIR to keep compiled code, or --cache-dir \"\" to say nothing)", "error", err)
	opts.CacheDir = ""
	return daemon.New(ctx, opts)
}

// awaitGuest waits until the guest run was asked to run has ended, or a
// signal or --timeout ends it, and returns run's exit status: the guest's
// own, whatever the guests it spawned do.
//
// It waits for the guest, not for its tree. The guest's end kills every
// guest it spawned, as under the daemon (a child never outlives its
// parent), but without loop checks a child spinning in a loop never
// stops, and run would spin with it. The children get stopGrace to end,
// as a guest killed by a signal does, and then run exits, which ends
// them. Nothing written is lost by not waiting longer: this process
// buffers no guest's output (the standard streams and granted files are
// written straight to their host files), so the grace only lets a child
// in the middle of a host call, such as a write, finish it. When run exits
// with guests still running, the audit log records their shutdown, as
// serve's exit does (Supervisor.Abandon).
func awaitGuest(g *daemon.Guest, sup *daemon.Supervisor, sigs <-chan os.Signal, timeout time.Duration, log hclog.Logger) int {
	var stuck <-chan time.Time
	if timeout > 0 {
		stuck = time.After(timeout + stopGrace)
	}
	select {
	case <-g.Exited():
	case sig := <-sigs:
		name, code := signalExit(sig)
		g.Kill(name)
		awaitTree(g, sup, log)
		fail("%s: guest killed", name)
		return code
	case <-stuck:
		select {
		case <-g.Exited():
		default:
			sup.Abandon()
			fail("guest killed: it ran longer than --timeout %v", timeout)
			return exitTimeout
		}
	}
	awaitTree(g, sup, log)
	status := g.ExitStatus()
	if status.Trap != nil {
		log.Debug("guest trap", "trap", status.Trap.Error())
	}
	return exitStatus(status, timeout)
}

// awaitTree gives a guest that has ended or been killed, and the guests
// it spawned, stopGrace to end; past it, the process's exit ends them,
// and the audit log records that shutdown before it does.
func awaitTree(g *daemon.Guest, sup *daemon.Supervisor, log hclog.Logger) {
	select {
	case <-g.Done():
	case <-time.After(stopGrace):
		log.Debug("the guest or guests it spawned still run: they end with this process", "grace", stopGrace)
		sup.Abandon()
	}
}

// exitStatus maps how a guest ended to run's exit status, printing one
// line on stderr for every end that is not the guest's own exit.
func exitStatus(st abi.ExitStatus, timeout time.Duration) int {
	switch {
	case st.Killed == abi.KilledByTimeout:
		fail("guest killed: it ran longer than --timeout %v", timeout)
		return exitTimeout
	case st.Killed != "":
		fail("guest killed: %s", st.Killed)
		return exitKilled
	case st.Trap != nil:
		msg, _, _ := strings.Cut(st.Trap.Error(), "\n") // the first line; the wasm stack trace is logged at debug
		fail("guest trapped: %s", msg)
		return exitTrap
	case st.Signal != 0:
		name, num := hostSignal(st.Signal)
		fail("guest raised %s", name)
		return 128 + num
	case st.Code > maxExitStatus:
		fail("guest exited with %d, which does not fit in an exit status: reporting %d", st.Code, maxExitStatus)
		return maxExitStatus
	}
	return int(st.Code)
}

// cloudABISignals names CloudABI's signals (proc_raise numbering) with
// their Linux numbers, so that a guest's signal ends run the way the same
// signal ends a host process: 128 + the host number.
var cloudABISignals = [...]struct {
	name  string
	linux int
}{
	1: {"SIGABRT", 6}, 2: {"SIGALRM", 14}, 3: {"SIGBUS", 7}, 4: {"SIGCHLD", 17},
	5: {"SIGCONT", 18}, 6: {"SIGFPE", 8}, 7: {"SIGHUP", 1}, 8: {"SIGILL", 4},
	9: {"SIGINT", 2}, 10: {"SIGKILL", 9}, 11: {"SIGPIPE", 13}, 12: {"SIGQUIT", 3},
	13: {"SIGSEGV", 11}, 14: {"SIGSTOP", 19}, 15: {"SIGSYS", 31}, 16: {"SIGTERM", 15},
	17: {"SIGTRAP", 5}, 18: {"SIGTSTP", 20}, 19: {"SIGTTIN", 21}, 20: {"SIGTTOU", 22},
	21: {"SIGURG", 23}, 22: {"SIGUSR1", 10}, 23: {"SIGUSR2", 12}, 24: {"SIGVTALRM", 26},
	25: {"SIGXCPU", 24}, 26: {"SIGXFSZ", 25},
}

// hostSignal returns the name and Linux number of CloudABI signal sig. An
// unknown number (which the ABI never records) is reported as itself.
func hostSignal(sig uint8) (string, int) {
	if int(sig) < len(cloudABISignals) && cloudABISignals[sig].name != "" {
		s := cloudABISignals[sig]
		return s.name, s.linux
	}
	return "signal " + strconv.Itoa(int(sig)), int(sig)
}

// parseSize reads a memory size: a whole number of bytes, or of KiB, MiB
// or GiB. It is at most 4GiB, the wasm32 maximum.
func parseSize(s string) (uint64, error) {
	n, err := parseBytes(s)
	if err == nil && n > daemon.MaxMemoryLimit {
		err = errors.New("above the wasm32 maximum of 4GiB")
	}
	return n, err
}

// parseBytes reads a size as parseSize does, without its 4GiB bound: for
// what is counted across many guests (serve --max-mem-per-user).
func parseBytes(s string) (uint64, error) {
	units := []struct {
		suffix string
		mult   uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}}
	num, mult := s, uint64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(strings.TrimSpace(num), 10, 64)
	if err != nil {
		return 0, errors.New("not a size: write a whole number with KiB, MiB or GiB, e.g. 64MiB")
	}
	if n > math.MaxUint64/mult {
		return 0, errors.New("too large: a size is at most 2^64-1 bytes")
	}
	return n * mult, nil
}

// defaultCacheDir is where compiled code is kept between runs:
// $XDG_CACHE_HOME/sandboxd (~/.cache/sandboxd), or nowhere if there is no
// such directory.
func defaultCacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "sandboxd")
}

// currentPrincipal is the user running sandboxd: in embedded mode it is
// the principal of every launch.
func currentPrincipal() daemon.Principal {
	p := daemon.Principal{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	if u, err := user.Current(); err == nil {
		p.Name = u.Username
	}
	gids, _ := os.Getgroups() // none known: the primary group alone
	for _, g := range gids {
		p.Groups = append(p.Groups, uint32(g))
	}
	return p
}

// reason strips the operation and path from a *PathError: the caller's
// message already names the file.
func reason(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
