package daemon

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/internal/plural"
	"github.com/sandboxd/sandboxd/policies"
)

// Options configures a Supervisor.
type Options struct {
	// Logger receives structured logs (guest start and exit at Info);
	// nil discards them.
	Logger hclog.Logger
	// CacheDir keeps compiled machine code between processes; "" keeps it
	// in memory only.
	CacheDir string
	// MaxCacheBytes bounds the files kept in CacheDir, the least recently
	// used removed past it (abi.Config.MaxCacheBytes: 0 means
	// abi.DefaultMaxCacheBytes, a negative value no bound).
	MaxCacheBytes int64
	// DefaultMaxFDs is the handle-table size of a guest launched with
	// MaxFDs 0 (caps.DefaultMaxFDs when 0).
	DefaultMaxFDs int
	// DefaultMaxStack is the call-stack bound, in bytes, of a guest
	// launched with MaxStack 0 (abi.DefaultMaxStack when 0).
	DefaultMaxStack uint64
	// MaxMemPerUser bounds, per principal (uid), the memory its running
	// guests may take together, as the sum of each guest's charge: its
	// memory limit and its call-stack bound (see MemoryCharge) and the
	// stdin it was launched with, if held in memory, plus the byte objects
	// its guests made that are still open and the unread bytes of the
	// channels they made (abi.GuestConfig.Memory), and what the daemon
	// holds for them beside them through MemoryChargeOf (a running
	// guest's kept output, its Cap'n Proto messages). A launch
	// that would take a principal past it fails with a *BudgetError, a
	// write growing a byte object past it with ENOSPC and a channel send
	// with ENOBUFS. 0: no bound.
	MaxMemPerUser uint64
	// MaxInFlightPerUser bounds, per principal (uid), the handles its
	// guests have sent on channels that nobody has received yet
	// (caps.InFlightLimit); a send past it fails with ENOBUFS. 0:
	// caps.DefaultMaxInFlight.
	MaxInFlightPerUser int
	// NoLoopChecks trades killability of spinning guests for speed (see
	// abi.Config.NoLoopChecks). Only an embedded supervisor of one guest
	// that can end it by exiting its process (sandboxd run) sets it.
	NoLoopChecks bool
	// NoStackChecks runs guests without the bound on their call stack
	// (abi.Config.NoStackChecks), so that their modules are not rewritten
	// when they need no loop checks either, and keep their DWARF
	// sections: sandboxd run --debug-info sets it.
	NoStackChecks bool
	// NoDebugInfo ignores guests' DWARF sections (see
	// abi.Config.NoDebugInfo): faster start, no source lines in traps.
	NoDebugInfo bool
	// MaxDescendants bounds the guests a launched guest and its
	// descendants may have spawned and running at once
	// (abi.GuestConfig.MaxDescendants; 0 means abi.DefaultMaxDescendants).
	MaxDescendants int
	// MaxIdleModules is how many compiled modules no guest runs stay
	// compiled for the next launch (abi.Config.MaxIdleModules; 0 means
	// abi.DefaultMaxIdleModules).
	MaxIdleModules int
	// Policy decides grants and delegations (see SetPolicy); nil enforces
	// none.
	Policy *policies.Policy
	// Sockets resolves a named sock or listen resource to where the
	// daemon connects or binds. nil: the resources of the policy in force.
	Sockets func(kind GrantKind, name string) (SockTarget, error)
	// Audit is the log every grant, derivation, delegation, policy
	// decision, revocation, lease expiry, guest start and exit is
	// recorded in, each before it is acknowledged (see audit.go); nil
	// records nothing. The caller opens it and closes it after Close.
	Audit *audit.Log
}

// MaxMemoryLimit is the largest linear memory a wasm32 guest can address.
const MaxMemoryLimit = 4 << 30

// retainExited is how many exited guests of each principal (uid) stay
// listed (Guest, Guests) so that their exit status can be read after the
// fact: per principal, so that no user's guests push another's out.
// Running guests are always listed.
const retainExited = 256

// errShutdown is the kill reason of guests still running at Close.
var errShutdown = errors.New("supervisor shutting down")

// Supervisor runs guests: it sets up their grants, starts them, bounds
// their lifetime and keeps the capability kernel that records every handle
// they hold. One Supervisor owns one abi.Runtime (modules are compiled once
// and shared by every guest) and one caps.Kernel.
//
// The methods are the embedding API: they trust their caller, and open
// host paths and derive capabilities with the process's own authority.
// Deciding whether a principal may launch a module or give it a grant is
// the caller's job: in the daemon, the control server's (daemon/server,
// whose Authority allows host paths only to root and the daemon's user);
// in embedded mode the user gives the grants and runs the process.
type Supervisor struct {
	log    hclog.Logger
	rt     *abi.Runtime
	k      *caps.Kernel
	maxFDs int
	// maxStack is the call-stack bound of guests launched without one.
	maxStack uint64
	// accounts are each principal's (by uid), guarded by accountsMu:
	// what it holds of memBudget (Options.MaxMemPerUser) and its bound of
	// maxInFlight handles in flight (Options.MaxInFlightPerUser).
	accounts    map[uint32]*account
	accountsMu  sync.Mutex
	memBudget   uint64
	maxInFlight int
	// maxDescendants bounds each launched guest's tree of spawned guests.
	maxDescendants int
	// sockets is Options.Sockets.
	sockets func(kind GrantKind, name string) (SockTarget, error)

	// ctx is the parent of every guest's context: cancelling it (Close)
	// kills every guest, including one launched concurrently with Close.
	ctx    context.Context
	cancel context.CancelCauseFunc
	// running counts guests whose exit has not been fully processed.
	running sync.WaitGroup

	policy  atomic.Pointer[policies.Policy]
	pins    atomic.Pointer[pins] // the policy's declared paths, resolved
	chans   chanHub
	revoked revokedIDs
	// audit is the audit log, or nil; auditFailed is set once a record
	// could not be written.
	audit       *audit.Log
	auditFailed atomic.Bool
	auditShut   atomic.Bool // the shutdown record is written (audit.go)
	// auditSpawned holds the spawned children whose guest-spawn record
	// is written, by holder id, each until its holder is collected, with
	// the name of the module it runs now (audit.go, recordSpawned,
	// recordExec).
	auditSpawned sync.Map
	// auditInFlight is where each capability sent on a channel and not
	// yet received will arrive (*audit.ChanEnd), by id, for the live
	// graph (audit.go, trackInFlight).
	auditInFlight sync.Map

	peerMu sync.Mutex
	peers  PeerServer // serves guests' Cap'n Proto connections; nil: none

	closeOnce sync.Once // Close's killing of the guests

	mu     sync.Mutex
	closed bool
	guests map[string]*Guest
	exited map[uint32][]string // ids of listed exited guests by principal (uid), oldest first
	// order holds the listed guests in the order Guests lists them (by
	// guestOrder), and guests no longer listed (unlisted set) until
	// there are as many of those as of listed ones: GuestsAfter finds a
	// page by binary search instead of a pass over every guest.
	order    []*Guest
	unlisted int
}

// New returns a Supervisor with a fresh runtime and kernel. ctx bounds
// only the setup; guests live until they exit, are killed, or Close.
func New(ctx context.Context, opts Options) (*Supervisor, error) {
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if opts.MaxDescendants < 0 {
		return nil, fmt.Errorf("max descendants %d is negative: use 0 for the default of %d", opts.MaxDescendants, abi.DefaultMaxDescendants)
	}
	if opts.DefaultMaxFDs < 0 {
		return nil, fmt.Errorf("default max fds %d is negative: use 0 for the default of %d", opts.DefaultMaxFDs, caps.DefaultMaxFDs)
	}
	if err := checkMaxStack(opts.DefaultMaxStack); err != nil {
		return nil, fmt.Errorf("default %v", err)
	}
	rt, err := abi.NewRuntime(ctx, abi.Config{Logger: log.Named("abi"), CacheDir: opts.CacheDir, MaxCacheBytes: opts.MaxCacheBytes, NoLoopChecks: opts.NoLoopChecks, NoStackChecks: opts.NoStackChecks, NoDebugInfo: opts.NoDebugInfo, MaxIdleModules: opts.MaxIdleModules})
	if err != nil {
		return nil, err
	}
	maxFDs := opts.DefaultMaxFDs
	if maxFDs == 0 {
		maxFDs = caps.DefaultMaxFDs
	}
	sctx, cancel := context.WithCancelCause(context.Background())
	s := &Supervisor{
		log: log, rt: rt, maxFDs: maxFDs, maxStack: cmp.Or(opts.DefaultMaxStack, abi.DefaultMaxStack), maxDescendants: opts.MaxDescendants,
		accounts: make(map[uint32]*account), memBudget: opts.MaxMemPerUser, maxInFlight: opts.MaxInFlightPerUser,
		sockets: opts.Sockets, ctx: sctx, cancel: cancel, guests: make(map[string]*Guest), exited: make(map[uint32][]string), audit: opts.Audit,
	}
	s.k = caps.NewKernel(s.observe)
	s.SetPolicy(opts.Policy)
	s.k.SetGate(gate{s})
	return s, nil
}

// Close kills every running guest (their exit reason is "supervisor
// shutting down"), waits for them to end until ctx is done, and closes the
// runtime. Launch fails after Close. Closing twice is a no-op; Close after
// Abandon kills and waits for the guests Abandon left running.
func (s *Supervisor) Close(ctx context.Context) error {
	s.shutDown()
	var err error
	s.closeOnce.Do(func() { err = s.killAll(ctx) })
	return err
}

// killAll kills every running guest, waits for them until ctx is done,
// and closes the runtime.
func (s *Supervisor) killAll(ctx context.Context) error {
	s.cancel(errShutdown)
	all := make(chan struct{})
	go func() {
		s.running.Wait()
		close(all)
	}()
	var err error
	select {
	case <-all:
	case <-ctx.Done():
		err = fmt.Errorf("closing supervisor: guests still running when %w; closing the runtime under them", context.Cause(ctx))
	}
	if cerr := s.rt.Close(context.Background()); cerr != nil && err == nil {
		err = fmt.Errorf("closing runtime: %w", cerr)
	}
	s.chans.closeWaiting()
	s.log.Debug("supervisor closed")
	return err
}

// Abandon is Close for a process that exits next: the exit ends every
// guest at once, with their threads of execution, memories and host
// descriptors, so Abandon neither kills them one by one nor waits for them
// (unwinding a killed guest costs some 75 µs of CPU: 100,000 guests took
// 8 s) nor closes the runtime. It refuses launches from now on, records
// the shutdown in the audit log and returns the number of guests left
// running for the exit to end. Guests may run until the process exits;
// nothing they do after Abandon is recorded, and a proc_exec then ends the
// guest that asks, before the program it names runs (record).
func (s *Supervisor) Abandon() (running int) {
	running, _ = s.shutDown()
	return running
}

// shutDown refuses launches from now on and records the shutdown of the
// guests running. first is false when Close or Abandon came before.
func (s *Supervisor) shutDown() (running int, first bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, false
	}
	s.closed = true
	for _, g := range s.guests {
		if g == nil || !g.ended() { // nil: a launch under way, refused or killed
			running++
		}
	}
	s.mu.Unlock()
	s.recordShutdown(running)
	return running, true
}

// Kernel returns the capability kernel every guest's handles live in.
func (s *Supervisor) Kernel() *caps.Kernel { return s.k }

// Compile validates and compiles a module, or returns the one already
// compiled from the same bytes (see abi.Runtime.Compile); the caller holds
// the module and must Release it once it has launched what it wanted. An
// error says
// what to do: rebuild the module, unless it is valid and only over one of
// sandboxd's limits (abi.LimitError) or imports what sandboxd does not
// provide (abi.ImportError), which their messages name.
func (s *Supervisor) Compile(ctx context.Context, name string, wasm []byte) (*abi.Module, error) {
	m, err := s.rt.Compile(ctx, name, wasm)
	if err != nil && !errors.As(err, new(*abi.LimitError)) && !errors.As(err, new(*abi.ImportError)) {
		err = fmt.Errorf("%w: build it as a WebAssembly command module (wasm32, exporting _start and memory)", err)
	}
	return m, err
}

// Principal is who asked for a launch or a grant: the peer of a control
// connection, or the current user in embedded mode.
type Principal struct {
	UID, GID uint32
	Name     string
	// Groups are the supplementary groups, which policy subjects match
	// (gids) besides GID.
	Groups []uint32
}

func (p Principal) String() string {
	if p.Name != "" {
		return p.Name
	}
	return "uid:" + strconv.FormatUint(uint64(p.UID), 10)
}

// LaunchSpec describes one guest to launch.
type LaunchSpec struct {
	Principal Principal
	Module    *abi.Module
	// Grants become the guest's handles from fd 3 on, in order.
	Grants []Grant
	// Delegations become handles after the grants, in order: each a copy
	// of an existing capability derived for the guest (see Delegation).
	Delegations []Delegation
	// SupervisorChannel gives the guest, as its last handle, the receiving
	// end of a datagram channel named "supervisor" on which Guest.Send
	// delivers handles while it runs. The daemon sets it; embedded mode
	// has no one to send them.
	SupervisorChannel bool
	// Args are the program arguments after the program name; the guest's
	// argv[0] is Module.Name. Env holds KEY=VALUE strings: nothing from
	// the host environment is passed unless listed here.
	Args []string
	Env  []string
	// Labels describe the module for the policy (module and to blocks
	// match them) and for people (ps). Keys and values are checked by
	// CheckLabel.
	Labels map[string]string
	// Deny is what the guest, and every guest it spawns, may never be
	// given, whatever the policy allows: a grant at launch or while it
	// runs, or a capability delegated to it, sent to it on a channel or
	// handed to a child it spawns, whose resource the list covers
	// (policies.DenyList), is refused. nil denies nothing.
	Deny *policies.DenyList
	// MemoryLimit caps linear memory in bytes; 0 means the wasm32 maximum
	// (MaxMemoryLimit).
	MemoryLimit uint64
	// Timeout kills the guest with reason abi.KilledByTimeout once it has run this
	// long; 0 means no limit.
	Timeout time.Duration
	// MaxFDs is the handle-table size; 0 means the supervisor's default.
	MaxFDs int
	// MaxStack bounds the guest's call stack in bytes, as the runtime
	// counts it (abi.GuestConfig.MaxStack); 0 means the supervisor's
	// default.
	MaxStack uint64
	// Stdin, Stdout and Stderr are the guest's fds 0, 1 and 2. nil gives
	// an empty stdin and discards output. A Stdin with a Size method (a
	// *bytes.Reader) is charged at its size against Options.MaxMemPerUser
	// until the guest ends.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Terminal says which of them are a terminal's (run's own, when they
	// are): the guest sees those as a character device, and the others
	// as streams of unknown type (caps.Stdio.AsTerminal).
	Terminal StdioTerminal
}

// StdioTerminal says which of a guest's standard streams are a
// terminal's.
type StdioTerminal struct{ Stdin, Stdout, Stderr bool }

// SpecError is a LaunchSpec that is invalid in itself (a limit out of
// range, a module that needs more memory than the limit, a handle name
// taken twice): the request must change. Its message says how.
type SpecError struct{ msg string }

func (e *SpecError) Error() string { return e.msg }

// handlesText says what the launch's handle table must hold: "3 stdio
// handles, 1 grant and the supervisor channel".
func (spec *LaunchSpec) handlesText() string {
	parts := []string{"3 stdio handles"}
	if n := len(spec.Grants); n > 0 {
		parts = append(parts, plural.Count(n, "grant", "grants"))
	}
	if n := len(spec.Delegations); n > 0 {
		parts = append(parts, plural.Count(n, "capability passed on", "capabilities passed on"))
	}
	if spec.SupervisorChannel {
		parts = append(parts, "the supervisor channel")
	}
	last := len(parts) - 1
	if last == 0 {
		return parts[0]
	}
	return strings.Join(parts[:last], ", ") + " and " + parts[last]
}

func specError(format string, args ...any) error {
	return &SpecError{msg: fmt.Sprintf(format, args...)}
}

// NewSpecError makes err a SpecError: a request to change, not a failure
// of the daemon.
func NewSpecError(err error) *SpecError { return &SpecError{msg: err.Error()} }

func (spec *LaunchSpec) validate(defaultMaxFDs int) (maxFDs int, err error) {
	if spec.Module == nil {
		return 0, specError("no module: compile one with Supervisor.Compile")
	}
	if err := spec.validateLimits(); err != nil {
		return 0, err
	}
	maxFDs = spec.MaxFDs
	if maxFDs == 0 {
		maxFDs = defaultMaxFDs
	}
	if need := 3 + len(spec.Grants) + len(spec.Delegations) + btoi(spec.SupervisorChannel); maxFDs < need {
		return 0, specError("max fds %d leaves no room for %s: allow at least %d", maxFDs, spec.handlesText(), need)
	}
	for i, a := range spec.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return 0, specError("argument %d contains a NUL byte, which guests cannot receive", i+1)
		}
	}
	for _, kv := range spec.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.IndexByte(kv, 0) >= 0 {
			return 0, specError("environment entry %q is not KEY=VALUE with a non-empty key and no NUL byte", kv)
		}
	}
	if err := checkLabels(spec.Labels); err != nil {
		return 0, err
	}
	names := map[string]bool{"stdin": true, "stdout": true, "stderr": true}
	if spec.SupervisorChannel {
		names[supervisorHandle] = true
	}
	for _, g := range spec.Grants {
		if names[g.Name] {
			return 0, specError("grant %q: the handle name %q is already taken: give one of them another name with =NAME", g.String(), g.Name)
		}
		names[g.Name] = true
	}
	for _, d := range spec.Delegations {
		if err := d.checkName(); err != nil {
			return 0, NewSpecError(err)
		}
		name := cmp.Or(d.Name, d.From.Name())
		if names[name] {
			return 0, specError("capability %s: the handle name %q is already taken: give it another name", d.From.ID(), name)
		}
		names[name] = true
	}
	return maxFDs, nil
}

// validateLimits checks the timeout, the memory limit and the call-stack
// bound.
func (spec *LaunchSpec) validateLimits() error {
	if spec.Timeout < 0 {
		return specError("timeout %v is negative: use 0 for no limit", spec.Timeout)
	}
	if spec.MemoryLimit > MaxMemoryLimit {
		return specError("memory limit of %d bytes is above the wasm32 maximum of 4GiB", spec.MemoryLimit)
	}
	if err := checkMaxStack(spec.MaxStack); err != nil {
		return specError("%v", err)
	}
	if need := spec.Module.MemoryMin(); spec.MemoryLimit > 0 && need > spec.MemoryLimit {
		return specError("%s needs %d bytes of memory to start, more than the memory limit of %d: raise the limit (--mem) to at least %d", spec.Module.Name, need, spec.MemoryLimit, need)
	}
	return nil
}

// Guest is one launched guest, running or exited.
type Guest struct {
	id        string
	s         *Supervisor
	module    atomic.Pointer[abi.Module] // what it runs (Module)
	principal Principal
	labels    map[string]string
	limits    Limits
	grants    []string // the grant texts, in fd order from 3
	started   time.Time
	holder    *caps.Holder
	ag        *abi.Guest
	log       hclog.Logger
	noisy     limitedLogger // log, for the lines the guest's doing causes (loglimit.go)
	stdin     *stdinPipe    // nil when the guest was given no stdin
	// supervisor is the daemon's end of the guest's supervisor channel,
	// and supervised the guest's, or nil (LaunchSpec.SupervisorChannel).
	supervisor, supervised *caps.Channel
	// answering makes the answers to requests on the supervisor channel
	// go one at a time, in order (peer.go).
	answering sync.Mutex
	done      chan struct{}
	charge    uint64 // what the guest counts against its principal's memory budget
	// stdinCharge is what its stdin, held until it ends, counts too.
	stdinCharge uint64
	account     *account // its principal's

	unlisted  bool // forgotten, still in Supervisor.order; guarded by Supervisor.mu
	mu        sync.Mutex
	status    abi.ExitStatus
	endedNs   int64         // unix nanoseconds of the exit's record, 0 while running (exitedLocked)
	peer      *caps.Channel // the daemon's end of the guest's Cap'n Proto connection, nil when none (peer.go)
	afterDone []func()      // AfterDone's, until doneRun
	doneRun   bool          // Done is closed and afterDone has been taken
}

// Launch validates spec, sets up every grant, and starts the guest. Grants
// are all opened before anything is minted: if one fails, Launch returns
// its *GrantError, and nothing has run, no capability was minted and no
// host file is left open. Other invalid specs fail the same way with a
// plain error.
//
// ctx bounds only the setup. The guest lives until it exits, spec.Timeout
// passes, it is killed, or the supervisor is closed.
func (s *Supervisor) Launch(ctx context.Context, spec LaunchSpec) (*Guest, error) {
	maxFDs, err := spec.validate(s.maxFDs)
	if err != nil {
		return nil, err
	}
	if err := s.checkDenyNames(spec.Deny); err != nil {
		return nil, err
	}
	spec.Labels = maps.Clone(spec.Labels) // the guest's own from here on
	// A selector written through a symbolic link covers where it leads.
	spec.Deny = spec.Deny.WithRealPaths(s.realPath)
	opened, err := s.openHandles(ctx, &spec)
	if err != nil {
		return nil, err
	}
	if launchOpened != nil {
		launchOpened()
	}
	g, err := s.reserveGuest(&spec)
	if err != nil {
		opened.release(s.k)
		return nil, err
	}
	if err := g.adoptDelegations(&spec, opened.delegated); err != nil {
		opened.release(s.k)
		s.unreserve(g)
		return nil, err
	}
	table, grants := g.buildTable(&spec, opened, maxFDs)
	if err := g.recordStart(&spec, grants); err != nil {
		// Nothing runs that the audit log does not show.
		table.CloseAll()
		opened.undoCreate()
		s.unreserve(g)
		return nil, err
	}
	g.start(&spec, table, grants)
	for i, c := range opened.minted {
		s.warnIfReloaded(g, opened.policy[i].policy, c)
	}
	return g, nil
}

// launchOpened, if set, runs once a launch has opened its grants and
// derived its delegations, before the guest is reserved: tests set it.
var launchOpened func()

// adoptDelegations gives g the delegations of spec, derived in flight for
// it (openHandles). The kernel's gate is asked again as g adopts each
// (caps.Gate.Adopt): a policy reload since the derivation can have
// brought one under the guest's deny list, which fails the launch rather
// than leave a closed handle in its table.
func (g *Guest) adoptDelegations(spec *LaunchSpec, delegated []*caps.Cap) error {
	for i, c := range delegated {
		if err := g.s.k.Adopt(c, g.holder); err != nil {
			return delegationError(spec.Delegations[i].From, err)
		}
	}
	return nil
}

// checkDenyNames refuses, without a policy, a deny list with a selector
// naming dir or file resources: every dir or file grant is then a host
// path, and the selector would deny nothing.
func (s *Supervisor) checkDenyNames(l *policies.DenyList) error {
	sel, kind, name := l.HostNameSelector()
	if sel == "" || s.Policy() != nil {
		return nil
	}
	example := " (" + kind + ":./" + name + ")"
	if strings.Contains(name, "*") {
		example = ""
	}
	return specError("--deny %q names a %s resource of a policy, and the daemon has no policy: give a path%s", sel, kind, example)
}

// openedHandles are what a launch sets up before the guest exists: its
// grants, authorized and opened on the host, and its delegations derived
// with no holder.
type openedHandles struct {
	grants    []grantResource
	policy    []policyGrant // what the policy made of each grant
	minted    []*caps.Cap   // each grant's capability, once the guest holds it
	delegated []*caps.Cap
}

// undoCreate removes the files the grants of h created, for a launch that
// failed after the guest's table held them.
func (h *openedHandles) undoCreate() {
	for _, r := range h.grants {
		r.undoCreate()
	}
}

// release closes everything in h, and removes the files its grants
// created, for a launch that fails before the guest holds it.
func (h *openedHandles) release(k *caps.Kernel) {
	for _, r := range h.grants {
		_ = r.res.Close()
		r.undoCreate()
	}
	for _, c := range h.delegated {
		k.Close(c)
	}
}

// openHandles authorizes every grant of spec and sets it up on the host,
// and derives every delegation, in order. If one fails, or ctx is done,
// it closes what it opened and returns the error: a grant's is its
// *GrantError, a delegation the policy refuses a *PolicyError.
func (s *Supervisor) openHandles(ctx context.Context, spec *LaunchSpec) (*openedHandles, error) {
	h := &openedHandles{
		grants:    make([]grantResource, 0, len(spec.Grants)),
		policy:    make([]policyGrant, 0, len(spec.Grants)),
		delegated: make([]*caps.Cap, 0, len(spec.Delegations)),
	}
	fail := func(err error) (*openedHandles, error) {
		h.release(s.k)
		return nil, err
	}
	who := grantee{by: spec.Principal, module: spec.Module, labels: spec.Labels, deny: spec.Deny}
	for _, gr := range spec.Grants {
		pg, err := s.authorize(who, gr)
		if err != nil {
			return fail(err)
		}
		r, err := s.open(ctx, spec.Principal, pg.grant)
		if err != nil {
			return fail(err)
		}
		h.grants, h.policy = append(h.grants, r), append(h.policy, pg)
	}
	recipient := newGuestHolder("new guest", spec) // for the policy: the guest is not launched yet
	for _, d := range spec.Delegations {
		// Derived with no holder until the guest exists to adopt them.
		dv := d.derivation(nil)
		dv.For = recipient
		c, err := s.k.Derive(d.From, dv)
		if err != nil {
			return fail(delegationError(d.From, err))
		}
		h.delegated = append(h.delegated, c)
	}
	if err := ctx.Err(); err != nil {
		return fail(fmt.Errorf("launch: %w", err))
	}
	return h, nil
}

// reserveGuest gives the guest of spec an id and counts it as running, so
// that Close waits for it and kills it through s.ctx. The guest is listed
// once start has built it. It fails once the supervisor is closed.
func (s *Supervisor) reserveGuest(spec *LaunchSpec) (*Guest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("launch: the supervisor is shut down")
	}
	charge, stdin := s.MemoryCharge(*spec), stdinCharge(*spec)
	acct := s.account(spec.Principal.UID)
	if used, ok := acct.take(charge + stdin); !ok {
		return nil, &BudgetError{Principal: spec.Principal, Budget: s.memBudget, Used: used, Asked: charge + stdin, Stdin: stdin}
	}
	id := s.newGuestID()
	s.guests[id] = nil
	s.running.Add(1)
	g := &Guest{
		id: id, s: s, principal: spec.Principal, labels: spec.Labels,
		holder: newGuestHolder(id, spec),
		log:    s.log.Named("guest").With("guest", id),
		done:   make(chan struct{}),
		charge: charge, stdinCharge: stdin, account: acct,
	}
	g.noisy = limitedLogger{Logger: g.log, b: &g.holder.Owner.(*guestOwner).lines}
	g.module.Store(spec.Module)
	return g, nil
}

// unreserve forgets a guest reserveGuest reserved that never started.
func (s *Supervisor) unreserve(g *Guest) {
	s.mu.Lock()
	delete(s.guests, g.id)
	s.mu.Unlock()
	g.account.give(g.charge + g.stdinCharge)
	s.running.Done()
}

// buildTable mints the guest's handles into a new table of maxFDs
// entries: stdin, stdout and stderr at fds 0–2, then the grants, the
// delegations and the supervisor channel, in that order. The guest holds
// every capability in opened from here on. It returns the table and the
// grants' texts as asked.
func (g *Guest) buildTable(spec *LaunchSpec, opened *openedHandles, maxFDs int) (*caps.Table, []string) {
	k := g.s.k
	table := caps.NewTable(k, g.holder, maxFDs)
	var stdin io.Reader = bytes.NewReader(nil)
	if spec.Stdin != nil {
		g.stdin = newStdinPipe(spec.Stdin)
		stdin = g.stdin
	}
	stdout, stderr := spec.Stdout, spec.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	stdio := []struct {
		res      *caps.Stdio
		rights   caps.Rights
		terminal bool
	}{
		{caps.NewStdin(stdin), caps.RightsTTYBase &^ caps.RightFDWrite, spec.Terminal.Stdin},
		{caps.NewStdout("stdout", stdout), caps.RightsTTYBase &^ caps.RightFDRead, spec.Terminal.Stdout},
		{caps.NewStdout("stderr", stderr), caps.RightsTTYBase &^ caps.RightFDRead, spec.Terminal.Stderr},
	}
	// The table has room for every handle (validate checked MaxFDs), so
	// Insert cannot fail here.
	for _, sd := range stdio {
		if sd.terminal {
			sd.res.AsTerminal()
		}
		c := k.Mint(g.holder, sd.res, sd.rights, 0, sd.res.Describe(), "launch")
		_, _ = table.Insert(c)
	}
	grants := make([]string, len(opened.grants))
	for i, r := range opened.grants {
		// As asked, not as the policy resolved it: a declared resource by
		// its name, as a live grant (Guest.Grant) records it too.
		grants[i] = spec.Grants[i].String()
		c := g.s.mintGrant(g.holder, opened.policy[i], r, grants[i])
		_, _ = table.Insert(c)
		opened.minted = append(opened.minted, c)
	}
	for _, c := range opened.delegated { // adopted (adoptDelegations)
		_, _ = table.Insert(c)
	}
	if spec.SupervisorChannel {
		g.supervisor, g.supervised = g.openSupervisorChannel(table)
	}
	return table, grants
}

// start instantiates the guest on table, lists it and runs it until it
// exits, spec.Timeout passes, it is killed or the supervisor closes. No
// goroutine waits for its end: the guest's own calls finish when it is
// done.
func (g *Guest) start(spec *LaunchSpec, table *caps.Table, grants []string) {
	s := g.s
	g.ag = s.rt.NewGuest(spec.Module, abi.GuestConfig{
		ID:             g.id,
		Table:          table,
		Args:           append([]string{spec.Module.Name}, spec.Args...),
		Env:            activationEnv(spec.Grants, spec.Env),
		MemoryLimit:    spec.MemoryLimit,
		MaxStack:       cmp.Or(spec.MaxStack, s.maxStack),
		MaxDescendants: s.maxDescendants,
		SpawnBudget:    s.spawnBudget(g),
		InFlight:       g.account.inflight,
		Memory:         s.memoryCharge(g.principal.UID),
		Logger:         &g.noisy,
		OnExited:       g.exitedItself,
		Timeout:        spec.Timeout,
		OnDone:         g.finish,
		OnExec:         g.execed,
	})
	g.grants = grants
	g.limits = Limits{MemoryLimit: spec.MemoryLimit, Timeout: spec.Timeout, MaxFDs: table.Max(), MaxStack: cmp.Or(spec.MaxStack, s.maxStack)}
	if g.limits.MemoryLimit == 0 {
		g.limits.MemoryLimit = MaxMemoryLimit
	}
	g.started = time.Now()
	s.mu.Lock()
	s.guests[g.id] = g
	s.insertOrdered(g)
	s.mu.Unlock()
	g.ag.Start(s.ctx)
	if g.stdin != nil {
		// A guest blocked reading stdin is in a host read the runtime
		// cannot interrupt; closing the pipe ends that read when the
		// guest's time is up, and at its end.
		context.AfterFunc(g.ag.Context(), func() { g.stdin.close() })
	}
	g.log.Info("guest started", "module", spec.Module.Name, "sha256", spec.Module.HashString(),
		"principal", spec.Principal.String(), "uid", spec.Principal.UID, "grants", grants,
		"memory_limit", spec.MemoryLimit, "max_stack", g.limits.MaxStack, "timeout", spec.Timeout)
}

// errGuestEnded is what a read of a guest's stdin returns once the guest
// has been killed or has exited.
var errGuestEnded = errors.New("guest ended")

// stdinPipe gives a guest its stdin through a pipe that the supervisor can
// close, so that a guest blocked reading stdin can be killed even when the
// source itself cannot be interrupted (a terminal, a client's stream). A
// read also stops waiting when the capability read through is revoked or
// the guest reading is killed (caps.StopReader): a guest it spawned, or one
// it passed its stdin to, reads the same pipe, which stays open while the
// guest lives.
//
// Nothing is read from the source until the guest first reads: a guest
// that never reads stdin never takes input from the terminal (and a
// background `sandboxd run` is not stopped by SIGTTIN). Once started, the
// pump reads the source again only once what it read last has been read
// whole, so that a client writing stdin is paced by the guest, and it ends
// at the source's next read after close.
type stdinPipe struct {
	// mu guards src, which is nil once the pipe is closed: an ended guest
	// keeps no input (a launch's stdin, up to 1 MiB) for as long as it is
	// listed.
	mu    sync.Mutex
	src   io.Reader
	start sync.Once
	// chunks holds what the pump read and no read has taken yet, or what
	// a read had no room for: one chunk at a time, so that reads take
	// the bytes in order. taken tells the pump that a chunk was read whole.
	chunks chan []byte
	taken  chan struct{}
	// end is closed once the source has ended and everything read from
	// it has been taken; err is how it ended (nil: end of file).
	end       chan struct{}
	err       error
	closed    chan struct{}
	closeOnce sync.Once
}

func newStdinPipe(src io.Reader) *stdinPipe {
	return &stdinPipe{
		src: src, chunks: make(chan []byte, 1), taken: make(chan struct{}, 1),
		end: make(chan struct{}), closed: make(chan struct{}),
	}
}

func (p *stdinPipe) Read(b []byte) (int, error) { return p.ReadUntil(b, nil, nil) }

// ReadUntil reads what the source has sent into b, waiting for it until
// revoked or ended is closed, or the pipe is (caps.StopReader).
func (p *stdinPipe) ReadUntil(b []byte, revoked, ended <-chan struct{}) (int, error) {
	select {
	case <-p.closed:
		return 0, errGuestEnded
	default:
	}
	p.start.Do(func() { go p.pump() })
	select {
	case chunk := <-p.chunks:
		n := copy(b, chunk)
		if n < len(chunk) {
			p.chunks <- chunk[n:] // the pump sends no more until taken
		} else {
			p.taken <- struct{}{}
		}
		return n, nil
	case <-p.end:
		return 0, cmp.Or(p.err, io.EOF)
	case <-p.closed:
		return 0, errGuestEnded
	case <-ended:
		return 0, errGuestEnded
	case <-revoked:
		return 0, caps.ENOTCAPABLE
	}
}

// pump passes what the source sends to the pipe's reads, a chunk at a
// time.
func (p *stdinPipe) pump() {
	p.mu.Lock()
	src := p.src
	p.mu.Unlock()
	if src == nil {
		return // closed: reads end with errGuestEnded
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.pass(buf[:n]) {
			return
		}
		if err != nil {
			if err != io.EOF {
				p.err = err
			}
			close(p.end)
			return
		}
	}
}

// pass hands chunk to the reads and waits until they have taken it whole;
// false when the pipe was closed first.
func (p *stdinPipe) pass(chunk []byte) bool {
	select {
	case p.chunks <- chunk:
	case <-p.closed:
		return false
	}
	select {
	case <-p.taken:
		return true
	case <-p.closed:
		return false
	}
}

// close ends any read in progress and every later one with errGuestEnded,
// and lets go of the source (the pump, if it runs, ends at its next read).
func (p *stdinPipe) close() {
	p.closeOnce.Do(func() {
		close(p.closed)
		p.mu.Lock()
		p.src = nil
		p.mu.Unlock()
	})
}

// exitedItself runs on the guest's goroutine once the guest itself has
// ended, before its children have.
func (g *Guest) exitedItself() {
	if g.stdin != nil {
		// The guest's end has killed the guests it spawned, but one of
		// them reading the stdin it was handed is in a host read that
		// its kill cannot interrupt: Done would wait for it forever.
		g.stdin.close()
	}
}

// finish records the guest's exit. It runs once, on the guest's
// goroutine, once the guest and its children have ended (its context has
// ended by then, and what hangs on it has run).
func (g *Guest) finish() {
	st := g.ag.Status()
	g.mu.Lock()
	g.status = st
	now := time.Now()
	g.endedNs = now.UnixNano()
	ran := now.Sub(g.started)
	g.mu.Unlock()
	// Close what Grant may have added while the guest was ending: from
	// here on Grant refuses (exitedLocked), so nothing can be added later.
	g.ag.Table().CloseAll()
	if g.supervisor != nil {
		// The guest's end too: a copy of it the guest sent away could
		// keep it, and the handles waiting in it, which the guest holds
		// and will never read (a grant sent while it ended, say), open.
		_ = g.supervisor.Close()
		_ = g.supervised.Close()
	}
	args := []any{"code", st.Code, "duration", ran}
	switch {
	case st.Killed != "":
		args = append(args, "killed", st.Killed)
	case st.Trap != nil:
		args = append(args, "trap", st.Trap.Error())
	case st.Signal != 0:
		args = append(args, "signal", st.Signal)
	}
	if n := g.noisy.b.dropped(); n > 0 {
		args = append(args, "suppressed_lines", n)
	}
	g.log.Info("guest exited", args...)
	g.recordExit(st, ran)
	g.account.give(g.charge + g.stdinCharge)
	g.s.retire(g.principal.UID, g.id)
	close(g.done)
	g.mu.Lock()
	after := g.afterDone
	g.afterDone, g.doneRun = nil, true
	g.mu.Unlock()
	for _, f := range after {
		f()
	}
	g.s.running.Done()
}

// ended reports whether the guest has finished: its end is recorded (a
// guest whose exit status is set may not be recorded yet).
func (g *Guest) ended() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// AfterDone has f called once Done is closed, on the guest's goroutine
// as its last act, before Supervisor.Close can return, and reports true.
// It spares a caller that only reacts to the end a goroutine of its own
// per guest. f must not wait for other guests. If Done is closed already
// it calls nothing and reports false: the caller reacts to the end
// itself, where it chooses (the caller's goroutine may be one that must
// not wait on what f does).
func (g *Guest) AfterDone(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.doneRun {
		return false
	}
	g.afterDone = append(g.afterDone, f)
	return true
}

// retire moves an exited guest of principal uid to its principal's
// bounded list of exited guests.
func (s *Supervisor) retire(uid uint32, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := append(s.exited[uid], id)
	for len(ids) > retainExited {
		s.unlist(ids[0])
		ids = ids[1:]
	}
	s.exited[uid] = ids
}

// insertOrdered adds g to s.order in its place: the end but for guests
// started at the same time (or a wall clock set back). Called with s.mu
// held.
func (s *Supervisor) insertOrdered(g *Guest) {
	i := len(s.order)
	for i > 0 && guestOrder(s.order[i-1], g) > 0 {
		i--
	}
	s.order = slices.Insert(s.order, i, g)
}

// unlist stops listing guest id. Called with s.mu held.
func (s *Supervisor) unlist(id string) {
	g := s.guests[id]
	delete(s.guests, id)
	if g == nil || g.unlisted {
		return
	}
	g.unlisted = true
	if s.unlisted++; s.unlisted > len(s.order)/2 {
		s.order = slices.DeleteFunc(s.order, func(g *Guest) bool { return g.unlisted })
		s.unlisted = 0
	}
}

// Forget stops listing guest id, which must have ended (its exit fully
// processed: Done is closed). Listing keeps the most recent 256 ended
// guests of each principal without it.
func (s *Supervisor) Forget(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.guests[id]
	if !ok || g == nil {
		return fmt.Errorf("no guest %s", id)
	}
	select {
	case <-g.done:
	default:
		return fmt.Errorf("guest %s is running: kill it first (sandboxd kill %s), or wait for it", id, id)
	}
	s.unlist(id)
	uid := g.principal.UID
	if s.exited[uid] = slices.DeleteFunc(s.exited[uid], func(e string) bool { return e == id }); len(s.exited[uid]) == 0 {
		delete(s.exited, uid)
	}
	return nil
}

// newGuestID returns an unused guest id. Called with s.mu held.
func (s *Supervisor) newGuestID() string {
	for {
		var b [6]byte
		_, _ = rand.Read(b[:])
		id := "g-" + hex.EncodeToString(b[:])
		if _, taken := s.guests[id]; !taken {
			return id
		}
	}
}

// ID is the guest's id, unique within the supervisor ("g-1f2e3d4c5b6a"). It
// is also the holder id of the guest's capabilities.
func (g *Guest) ID() string { return g.id }

// LimitLog is l within the limit of the log lines g's doing may cause
// (loglimit.go), for the servers that log what a guest does.
func (g *Guest) LimitLog(l hclog.Logger) hclog.Logger {
	return &limitedLogger{Logger: l, b: g.noisy.b}
}

// Module is the program the guest runs: the one it was launched with, or
// the last one it replaced it with (proc_exec).
func (g *Guest) Module() *abi.Module { return g.module.Load() }

// execed records that h, the guest or one its tree spawned, replaced
// its program with m (proc_exec, GuestConfig.OnExec): the audit log says
// so before m runs (a spawned child's exec after its guest-spawn record).
// From then on ps, live grants and policy decisions see m (the holder's
// module is m's already; the guest's launch labels no longer count,
// holderModule), and the live graph names m for a child. When the log
// cannot take the record the guest that execs ends instead, killed with
// the error as its reason, and m never runs.
func (g *Guest) execed(h *caps.Holder, m *abi.Module) error {
	if err := g.s.recordExec(h, m); err != nil {
		// Nothing runs that the audit log does not show.
		return fmt.Errorf("its proc_exec of %s could not be recorded: %w", m.Name, err)
	}
	if h != g.holder {
		g.noisy.Info("spawned guest replaced its program", "child", h.ID, "module", m.Name, "sha256", m.HashString())
		return nil
	}
	old := g.module.Swap(m)
	g.noisy.Info("guest replaced its program", "module", m.Name, "sha256", m.HashString(), "was", old.Name)
	return nil
}

// Principal is who launched the guest.
func (g *Guest) Principal() Principal { return g.principal }

// Limits are what a guest was launched with: its linear-memory limit
// (MaxMemoryLimit when none was given), its timeout (0: none), the size
// of its handle table and its call-stack bound.
type Limits struct {
	MemoryLimit uint64
	Timeout     time.Duration
	MaxFDs      int
	MaxStack    uint64
}

// checkMaxStack refuses a call-stack bound outside what a guest may have
// (0 stands for the default).
func checkMaxStack(n uint64) error {
	if n != 0 && (n < abi.MinMaxStack || n > abi.MaxMaxStack) {
		return fmt.Errorf("max stack of %s is outside %s to %s: a Go program needs about 128KiB to start, and wazero's own stack ceiling ends a guest near 64MiB", abi.SizeText(n), abi.SizeText(abi.MinMaxStack), abi.SizeText(abi.MaxMaxStack))
	}
	return nil
}

// Limits returns the limits the guest runs under.
func (g *Guest) Limits() Limits { return g.limits }

// Grants returns the texts of the guest's launch grants, in fd order from
// 3.
func (g *Guest) Grants() []string { return append([]string(nil), g.grants...) }

// Deny returns the selectors of the deny list the guest was launched with
// (LaunchSpec.Deny), which binds it and the guests it spawns.
func (g *Guest) Deny() []string { return denyListOf(g.holder).Selectors() }

// Started is when the guest started.
func (g *Guest) Started() time.Time { return g.started }

// Done is closed when the guest has exited, its handles are closed, the
// guests it spawned have ended, and its exit is logged.
func (g *Guest) Done() <-chan struct{} { return g.done }

// Exited is closed once the guest itself has ended, before Done: its
// ExitStatus is known and the guests it spawned have been killed, but
// they may still be running. With loop checks they end within a loop
// iteration and Done follows at once; without them (Options.NoLoopChecks)
// one spinning in a loop never ends, and an embedded supervisor waits on
// Exited and ends such guests by exiting its process (sandboxd run).
func (g *Guest) Exited() <-chan struct{} { return g.ag.Exited() }

// ExitStatus is how the guest itself ended; valid once Exited is closed.
func (g *Guest) ExitStatus() abi.ExitStatus { return g.ag.Status() }

// Wait blocks until the guest has exited and returns how it ended.
func (g *Guest) Wait() abi.ExitStatus {
	<-g.done
	return g.status
}

// Status reports whether the guest is still running and, once it is not,
// how it ended.
func (g *Guest) Status() (running bool, st abi.ExitStatus) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.exitedLocked(), g.status
}

// exitedLocked reports whether finish has recorded the guest's exit.
// Called with g.mu held.
func (g *Guest) exitedLocked() bool { return g.endedNs != 0 }

// Ended is when the guest's exit was recorded: zero while Status reports
// it running, set once it does not.
func (g *Guest) Ended() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.endedNs == 0 {
		return time.Time{}
	}
	return time.Unix(0, g.endedNs)
}

// Kill ends the guest with the given reason (its ExitStatus.Killed). It
// returns at once; Wait for the exit. Killing an exited guest does
// nothing.
func (g *Guest) Kill(reason string) {
	if reason == "" {
		reason = "killed"
	}
	g.ag.Kill(reason)
	if g.stdin != nil {
		g.stdin.close()
	}
}

// Handles returns the guest's handle table, fd → capability, in fd order.
// It is empty once the guest has exited.
func (g *Guest) Handles() []caps.Entry { return g.ag.Table().Entries() }

// HandleCount is how many handles the guest holds: len(Handles()),
// without listing them.
func (g *Guest) HandleCount() int {
	held, _ := g.ag.Table().Counts()
	return held
}

// Guest returns the guest with the given id: a running guest, or one of
// the most recently exited.
func (s *Supervisor) Guest(id string) (*Guest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.guests[id]
	return g, g != nil
}

// Guests lists running guests and the most recently exited ones, oldest
// first.
func (s *Supervisor) Guests() []*Guest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Guest, 0, len(s.order)-s.unlisted)
	for _, g := range s.order {
		if !g.unlisted {
			out = append(out, g)
		}
	}
	return out
}

// GuestCursor is a place in the order Guests lists guests in: oldest
// first, by start time (the wall clock's) and then id. The zero cursor is
// the start.
type GuestCursor struct {
	Started time.Time
	ID      string
}

// Cursor is the place of g in the order Guests lists guests in.
func (g *Guest) Cursor() GuestCursor { return GuestCursor{Started: g.started, ID: g.id} }

func (c GuestCursor) before(g *Guest) bool {
	if a, b := c.Started.UnixNano(), g.started.UnixNano(); a != b {
		return a < b
	}
	return c.ID < g.id
}

// guestOrder orders guests by the wall-clock time they started (what a
// cursor carries), then by id.
func guestOrder(a, b *Guest) int {
	if c := cmp.Compare(a.started.UnixNano(), b.started.UnixNano()); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// GuestsAfter returns the first limit guests after cursor, in the order
// Guests lists them, among those keep accepts (keep nil accepts all), and
// whether more follow. keep runs with the supervisor's lock held: it must
// not call the supervisor. A page costs a binary search and a walk over
// the guests it returns (and those keep refuses), not a pass over all.
func (s *Supervisor) GuestsAfter(after GuestCursor, limit int, keep func(*Guest) bool) (page []*Guest, more bool) {
	if limit <= 0 {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, _ := slices.BinarySearchFunc(s.order, after, func(g *Guest, c GuestCursor) int {
		if c.before(g) {
			return 1
		}
		return -1
	})
	for ; i < len(s.order); i++ {
		g := s.order[i]
		if g.unlisted || (keep != nil && !keep(g)) {
			continue
		}
		if len(page) == limit {
			return page, true
		}
		page = append(page, g)
	}
	return page, false
}

// Mint authorizes gr for principal by (no module: holder is a client of
// the control API, not a guest), sets it up on the host as Launch does
// and mints a root capability for it held by holder, with origin as its
// origin. It fails with gr's *GrantError, and then holds nothing open.
func (s *Supervisor) Mint(holder *caps.Holder, by Principal, gr Grant, origin string) (*caps.Cap, error) {
	pg, err := s.authorize(grantee{by: by}, gr)
	if err != nil {
		return nil, err
	}
	r, err := s.open(context.Background(), by, pg.grant)
	if err != nil {
		return nil, err
	}
	return s.mintGrant(holder, pg, r, origin), nil
}

// Revoke revokes the capability with the given public id and everything
// derived from it, in every guest (see caps.Kernel.Revoke). Revoking one
// that is already revoked is an error: there was nothing to do.
func (s *Supervisor) Revoke(id caps.ID, reason string) (caps.Receipt, error) {
	c, ok := s.k.Lookup(id)
	if !ok {
		if n, was := s.WasRevoked(id); was {
			return caps.Receipt{}, n.Err(id)
		}
		return caps.Receipt{}, fmt.Errorf("revoke: no capability %s: it never existed or every holder has closed it", id)
	}
	r := s.k.Revoke(c, reason)
	if len(r.Revoked) == 0 {
		if n, was := s.WasRevoked(id); was {
			return r, n.Err(id) // when and why
		}
		return r, fmt.Errorf("revoke: capability %s was already revoked: nothing is left to cut off", id)
	}
	s.revoked.add(r)
	s.log.Info("revoked", "cap", id, "reason", reason, "revoked", len(r.Revoked), "holders", r.Holders, "took", r.Took)
	return r, nil
}
