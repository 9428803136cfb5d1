package abi

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/abi/internal/wasmbin"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

// GuestConfig describes one guest to run.
type GuestConfig struct {
	// ID names the guest in logs and the capability graph; it is also the
	// holder id of its capabilities.
	ID string
	// Table holds exactly the handles the guest starts with. The caller
	// fills it (stdio at 0–2 by convention, grants after); the guest owns
	// it from Start on and it is closed when the guest exits.
	Table *caps.Table
	// Args and Env are the program arguments (Args[0] is the program name)
	// and KEY=VALUE environment strings.
	Args []string
	Env  []string
	// Argdata replaces the startup argdata built from Args, Env and the
	// table's handle names (used by proc_spawn and proc_exec).
	Argdata []byte
	// MemoryLimit caps the guest's linear memory in bytes (0: the wasm
	// maximum of 4 GiB).
	MemoryLimit uint64
	// MaxStack bounds the guest's call stack, in bytes (0:
	// DefaultMaxStack), as counted by the stack checks (see
	// abi/instrument.go: each call counts wasmbin.FrameBytes, a bound on
	// its frame). A call past it traps with a *StackError (exit 134).
	// Descendants have the guest's MaxStack.
	MaxStack uint64
	// MaxDescendants bounds the guests the guest's proc_spawn calls, and
	// theirs, may have running at once, over its whole tree of processes
	// (0: DefaultMaxDescendants). A spawn past it fails with EAGAIN, as
	// fork does at RLIMIT_NPROC. Each descendant has the guest's
	// MemoryLimit.
	MaxDescendants int
	// SpawnBudget, when not nil, is charged for each descendant of the
	// guest's tree: Take before the child is made, Give once it has
	// ended. A spawn it refuses fails with ENOMEM. (The daemon charges
	// its memory budget per user, serve --max-mem-per-user, with each
	// child's memory limit and stack bound, which are the guest's.)
	SpawnBudget SpawnBudget
	// InFlight bounds the handles the guest and its descendants have sent
	// on channels that nobody has received yet (caps.InFlightLimit); a
	// send past it fails with ENOBUFS. The daemon shares one among all of
	// a user's guests. nil: a limit of caps.DefaultMaxInFlight for this
	// guest's tree alone.
	InFlight *caps.InFlightLimit
	// Memory, when not nil, is charged what the guest and its
	// descendants make the host hold outside their linear memories: the
	// byte objects they make (fd_create1), until each is closed, besides
	// the process's caps.MaxByteObjectMemory, the message buffers in the
	// channels they make (fd_create2), and the directory listings their
	// fd_readdir keeps for each directory handle until its next fresh
	// listing or close. A write that would grow a byte object past it
	// fails with ENOSPC, a send on such a channel with ENOBUFS, a
	// readdir's fresh listing with ENOMEM. (The daemon charges its memory
	// budget per user, serve --max-mem-per-user.)
	Memory caps.MemoryCharge
	// Timeout, when positive, kills the guest (ExitStatus.Killed
	// KilledByTimeout) that long after Start, and its descendants with it.
	Timeout time.Duration
	Logger  hclog.Logger
	// OnExited and OnDone, when not nil, are called on the guest's own
	// goroutine once Exited, and then Done, is closed: the caller reacts
	// to the guest's end without a goroutine of its own waiting for it,
	// which at many idle guests would double what each costs. OnExited
	// runs before the guest waits for its children: it must not wait
	// for them either.
	OnExited, OnDone func()
	// OnExec, when not nil, is called when proc_exec has replaced the
	// program of the guest, or of a guest its process tree spawns
	// (proc_spawn, at any depth), with m, before m runs: on the
	// goroutine of the guest that execs, with its holder (Table's for
	// the guest itself; h names m's hash already: caps.Holder.SetModule).
	// An error ends that guest instead, its ExitStatus.Killed saying why:
	// m never runs, and h names the module it ran again.
	OnExec func(h *caps.Holder, m *Module) error
}

// DefaultMaxStack is GuestConfig.MaxStack's default: 8 MiB, as Linux
// gives a thread's stack.
const DefaultMaxStack = wasmbin.DefaultMaxStack

// MaxMaxStack is the largest GuestConfig.MaxStack: wazero's own ceiling
// (a stack it would grow past 50,000,000 bytes) ends a guest near 64 MiB
// in any case.
const MaxMaxStack = 64 << 20

// MinMaxStack is the smallest GuestConfig.MaxStack: a Go program's
// runtime needs some hundred kilobytes as counted to start.
const MinMaxStack = 64 << 10

// StackError is the trap of a guest whose call stack went past its bound
// (GuestConfig.MaxStack).
type StackError struct{ Limit uint64 }

func (e *StackError) Error() string {
	return fmt.Sprintf("call stack exceeded --max-stack %s: the guest recursed too deep; raise --max-stack (at most 64MiB) or recurse less", SizeText(e.Limit))
}

// SizeText writes a byte count as flags take it: 8MiB, 512KiB, 1000B.
func SizeText(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// DefaultMaxDescendants is GuestConfig.MaxDescendants' default.
const DefaultMaxDescendants = 16

// MaxMaxDescendants is the largest GuestConfig.MaxDescendants: every
// descendant is a goroutine and a module instance of its own.
const MaxMaxDescendants = 1024

// SpawnBudget is what the descendants of a guest are charged to
// (GuestConfig.SpawnBudget). Its methods may be called from any goroutine.
type SpawnBudget interface {
	// Take charges one more descendant, or reports that it may not run.
	Take() bool
	// Give gives back what one Take charged.
	Give()
}

// procTree counts the running descendants of one guest that was not
// itself spawned: every guest of the tree spawns against the same count,
// and is charged to the same budget.
type procTree struct {
	running atomic.Int32
	max     int32
	budget  SpawnBudget // nil: none
	// inflight bounds what the tree's guests have in flight on channels
	// (GuestConfig.InFlight).
	inflight *caps.InFlightLimit
	// memory is charged the byte objects and channel buffers of the tree
	// (GuestConfig.Memory); nil: nothing.
	memory caps.MemoryCharge
	// onExec is GuestConfig.OnExec of the guest at the top.
	onExec func(*caps.Holder, *Module) error
}

// reserve counts and charges one more descendant, or fails: EAGAIN when
// the tree is full, ENOMEM when its budget refuses the charge.
func (t *procTree) reserve() Errno {
	if t.running.Add(1) > t.max {
		t.running.Add(-1)
		return caps.EAGAIN
	}
	if t.budget != nil && !t.budget.Take() {
		t.running.Add(-1)
		return caps.ENOMEM
	}
	return 0
}

// takeMemory charges n bytes the host holds for the tree to its memory
// (GuestConfig.Memory), or reports that they do not fit.
func (t *procTree) takeMemory(n int64) bool {
	return t.memory == nil || n <= 0 || t.memory.Take(n)
}

// giveMemory gives back what takeMemory charged.
func (t *procTree) giveMemory(n int64) {
	if t.memory != nil && n > 0 {
		t.memory.Give(n)
	}
}

// release undoes one reserve.
func (t *procTree) release() {
	if t.budget != nil {
		t.budget.Give()
	}
	t.running.Add(-1)
}

// ExitStatus is how a guest ended.
type ExitStatus struct {
	Code   uint32 // from proc_exit (or 128+signal)
	Signal uint8  // set when proc_raise ended the guest
	Trap   error  // set when the guest trapped
	Killed string // set when the guest was killed: the reason (KilledByTimeout, or the killer's)
}

// KilledByTimeout is ExitStatus.Killed for a guest ended by the deadline
// of the context it was started with (a launch's --timeout). The daemon
// sends it to clients as it is (client.KilledByTimeout).
const KilledByTimeout = "timeout"

// Err describes an abnormal end, or returns nil for a normal exit.
func (s ExitStatus) Err() error {
	switch {
	case s.Killed != "":
		return fmt.Errorf("guest killed: %s", s.Killed)
	case s.Trap != nil:
		return fmt.Errorf("guest trapped: %w", s.Trap)
	case s.Signal != 0:
		return fmt.Errorf("guest raised signal %d", s.Signal)
	}
	return nil
}

// Guest is one running program with its handle table.
type Guest struct {
	ID     string
	rt     *Runtime
	module *Module
	table  *caps.Table // used by the guest's own goroutine (its calls)
	// shownTable is table as seen from other goroutines (Table): proc_exec
	// swaps the table on the guest's goroutine while the supervisor may be
	// listing or granting handles.
	shownTable atomic.Pointer[caps.Table]
	kernel     *caps.Kernel
	holder     *caps.Holder
	log        hclog.Logger
	trace      bool

	args, env []string
	argdata   []byte
	// argdataCharge is what argdata, handed by proc_spawn or proc_exec,
	// is charged to the tree's memory (procTree.takeMemory), until it is
	// replaced or the guest ends.
	argdataCharge int64
	memLimit      uint64
	maxStack      uint64
	// stack is the running program's stack allowance global (nil without
	// stack checks); set and read on the guest's goroutine only.
	stack   api.Global
	started time.Time

	parent  context.Context // what Start was given; its end ends ctx
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timeout time.Duration // GuestConfig.Timeout
	// killedEarly is the reason of a Kill before Start (guarded by mu):
	// the daemon lists a guest before it starts it.
	killedEarly string
	timer       *time.Timer  // ends ctx at the timeout; set by Start
	waiter      *caps.Waiter // reused by blocking calls; a guest runs one call at a time
	// waits counts the times a host call of the guest began to wait for
	// an event, and parked is 1 while one waits: tests act on a blocked
	// guest once it is (Blocked in export_test.go) rather than sleeping.
	waits  atomic.Int64
	parked atomic.Int32

	// hpoll waits on the host descriptors of the guest's poll calls
	// (hostpoll.go); created on first use, closed when the guest ends.
	hpoll       *hostPoller
	hpollFailed bool

	exec   *execRequest // set by proc_exec before it unwinds the guest
	signal uint8        // set by proc_raise before it unwinds the guest

	children sync.WaitGroup // guests started by proc_spawn
	nspawned atomic.Uint64  // numbers children's ids
	tree     *procTree      // the tree the guest spawns in
	spawned  bool           // counted in tree: released when the guest ends

	outOfFDs        atomic.Bool // hostOutOfFDs has logged
	tooManyInFlight atomic.Bool // inFlightRefused has logged
	// hold keeps the handle the guest last wrote to acquired between its
	// calls (abi/hold.go); holding says whether the running program may
	// use it (it has loop checks); budget is the running program's loop
	// budget, which a revocation sets to 0 so that the guest soon gives
	// the hold up. holding is the guest goroutine's alone.
	hold    *caps.Hold
	holding bool
	budget  atomic.Pointer[api.MutableGlobal]
	// budgetMu orders the writes of budget from other goroutines
	// (stopAtNextLoop): Kill, a revocation and the end of the parent
	// context can each set it at once.
	budgetMu sync.Mutex

	onExited  func()        // GuestConfig.OnExited
	onDone    func()        // GuestConfig.OnDone
	exited    chan struct{} // closed once the guest itself has ended (Exited)
	done      chan struct{} // closed once its children have ended too (Done)
	mu        sync.Mutex
	status    ExitStatus
	exitWatch map[*caps.Waiter]struct{} // woken when done closes; guarded by mu
}

// execRequest is what proc_exec leaves for the run loop: the next program
// and its table.
type execRequest struct {
	module  *Module
	table   *caps.Table
	argdata []byte
	charge  int64 // argdata's, to the tree's memory
}

// errParentExited ends the children a guest leaves behind: a child never
// outlives its parent.
var errParentExited = errors.New("parent exited")

// NewGuest prepares m to run with cfg. Nothing runs until Start or Run.
// The guest holds m until it has exited; a guest that is
// never started must be abandoned (Abandon) to end that hold.
func (rt *Runtime) NewGuest(m *Module, cfg GuestConfig) *Guest {
	max := cfg.MaxDescendants
	if max <= 0 {
		max = DefaultMaxDescendants
	}
	inflight := cfg.InFlight
	if inflight == nil {
		inflight = caps.NewInFlightLimit(0)
	}
	tree := &procTree{max: int32(min(max, MaxMaxDescendants)), budget: cfg.SpawnBudget, inflight: inflight, memory: cfg.Memory, onExec: cfg.OnExec}
	return rt.newGuest(m, cfg, tree, false)
}

// newGuest is NewGuest in the process tree tree; spawned says that the
// guest is one of tree's counted descendants (procSpawn reserved it).
func (rt *Runtime) newGuest(m *Module, cfg GuestConfig, tree *procTree, spawned bool) *Guest {
	m.hold()
	log := cfg.Logger
	if log == nil {
		log = rt.log.With("guest", cfg.ID)
	}
	g := &Guest{
		ID: cfg.ID, rt: rt, module: m, table: cfg.Table,
		kernel: cfg.Table.Kernel(), holder: cfg.Table.Holder(),
		log: log, trace: log.IsTrace(),
		args: cfg.Args, env: cfg.Env, argdata: cfg.Argdata, memLimit: cfg.MemoryLimit,
		maxStack: cmp.Or(min(cfg.MaxStack, MaxMaxStack), DefaultMaxStack),
		waiter:   caps.NewWaiter(), exited: make(chan struct{}), done: make(chan struct{}),
		tree: tree, spawned: spawned, onExited: cfg.OnExited, onDone: cfg.OnDone,
		timeout: cfg.Timeout,
	}
	g.shownTable.Store(cfg.Table)
	g.hold = caps.NewHold(g.wakeForHold)
	if g.argdata == nil {
		g.argdata = StartupArgdata(cfg.Args, cfg.Env, cfg.Table)
	}
	return g
}

// Abandon ends the hold on its module of a guest that will never start.
func (g *Guest) Abandon() { g.letGo() }

// letGo ends what a guest holds while it may run: its module, its
// argdata (charged to the tree's memory until now; its Guest may outlive
// it, named by a process handle), and its place in its process tree's
// count.
func (g *Guest) letGo() {
	g.module.Release()
	g.tree.giveMemory(g.argdataCharge)
	g.argdata, g.argdataCharge = nil, 0
	if g.spawned {
		g.tree.release()
	}
}

// Table returns the guest's handle table.
func (g *Guest) Table() *caps.Table { return g.shownTable.Load() }

// Module returns the program the guest runs.
func (g *Guest) Module() *Module { return g.module }

// Start runs the guest in a new goroutine. ctx bounds its life: cancelling
// it kills the guest with the context's cause as the reason.
func (g *Guest) Start(ctx context.Context) {
	g.mu.Lock()
	g.parent = ctx
	g.ctx, g.cancel = context.WithCancelCause(ctx)
	killed := g.killedEarly
	g.mu.Unlock()
	if killed != "" {
		g.cancel(errors.New(killed))
	}
	if g.timeout > 0 {
		// A timer rather than a context of its own with a deadline: a
		// guest's context then has no parent of sandboxd's between it
		// and ctx, whose set of children each would need.
		g.timer = time.AfterFunc(g.timeout, func() {
			g.cancel(context.DeadlineExceeded)
			g.stopAtNextLoop()
		})
	}
	go g.run()
}

// Run runs the guest to completion and returns how it ended.
func (g *Guest) Run(ctx context.Context) ExitStatus {
	g.Start(ctx)
	return g.Wait()
}

// Wait blocks until the guest has exited.
func (g *Guest) Wait() ExitStatus {
	<-g.done
	return g.Status()
}

// Exited is closed once the guest itself has ended: its exit status is
// set (Status), its handles are closed, and the children it spawned have
// been killed (see Kill), but they may still be running: without loop
// checks (Config.NoLoopChecks) a child spinning in a loop never stops, and
// only the end of the process ends it. Done follows once every child has
// ended.
func (g *Guest) Exited() <-chan struct{} { return g.exited }

// Done is closed when the guest has exited, its handles are closed, and
// every child it spawned has exited too.
func (g *Guest) Done() <-chan struct{} { return g.done }

// Status returns the exit status; valid once Exited (and so Done) is
// closed.
func (g *Guest) Status() ExitStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.status
}

// Context ends when the guest is killed, times out, its parent context
// ends, or it has exited. Valid once Start has been called.
func (g *Guest) Context() context.Context { return g.ctx }

// Kill ends the guest: a spinning guest stops at its next loop back-edge or
// call, and a guest blocked in a host call returns from it at once. Its
// children are killed with it (their contexts derive from its context).
func (g *Guest) Kill(reason string) {
	g.mu.Lock()
	cancel := g.cancel
	if cancel == nil && g.killedEarly == "" {
		g.killedEarly = reason // Start ends it at once
	}
	g.mu.Unlock()
	if cancel != nil {
		cancel(errors.New(reason))
		g.stopAtNextLoop()
	}
}

func (g *Guest) run() {
	g.started = time.Now()
	st := g.runOnce()
	peak := 0 // the most handles any of the guest's programs held at once
	for st.Trap == nil && st.Killed == "" && g.exec != nil {
		req := g.exec
		g.exec = nil
		_, p := g.table.Counts()
		peak = max(peak, p)
		if err := g.become(req); err != nil {
			st = ExitStatus{Killed: err.Error()}
			break
		}
		st = g.runOnce()
	}
	if req := g.exec; req != nil {
		// Killed between proc_exec and the new program's start: what the
		// request held goes too.
		g.exec = nil
		req.table.CloseAll()
		req.module.Release()
		g.tree.giveMemory(req.charge)
	}
	if g.hpoll != nil {
		g.hpoll.close()
		g.hpoll = nil
	}
	g.letGo()
	// Closing the table closes the guest's process handles, which kills
	// the children they designate; cancelling the context ends any child
	// whose handle was passed on. Done waits for all of them, so that a
	// guest's exit is also the end of everything it started. Exited
	// comes first, for whoever cannot wait for children that never stop
	// (see Exited).
	held, p := g.table.Counts()
	peak = max(peak, p)
	g.table.CloseAll()
	g.cancel(errParentExited)
	if g.timer != nil {
		g.timer.Stop()
	}
	g.mu.Lock()
	g.status = st
	g.mu.Unlock()
	close(g.exited)
	if g.onExited != nil {
		g.onExited()
	}
	g.children.Wait()
	g.mu.Lock()
	ws := g.exitWatch
	g.exitWatch = nil
	close(g.done)
	g.mu.Unlock()
	for w := range ws {
		w.Wake()
	}
	g.log.Debug("guest exited", "code", st.Code, "signal", st.Signal, "trap", st.Trap, "killed", st.Killed, "ran", time.Since(g.started),
		"handles_at_exit", held, "handles_peak", peak, "max_fds", g.table.Max())
	if g.onDone != nil {
		g.onDone()
	}
}

// become makes the program proc_exec asked for the guest's, with its
// table and argdata, in place of the one that ended; OnExec's error, if
// any, is why it must not run.
func (g *Guest) become(req *execRequest) error {
	g.table.CloseAll()
	g.module.Release()
	g.module, g.table, g.argdata = req.module, req.table, req.argdata // the request's hold passes to the guest
	g.args, g.env = nil, nil                                          // its WASI argv and environment are its argdata's, as a spawned child's
	g.tree.giveMemory(g.argdataCharge)
	g.argdataCharge = req.charge
	g.shownTable.Store(req.table)
	g.signal = 0
	ran := g.holder.Module()
	g.holder.SetModule(g.module.HashString()) // policies judge it as the code it runs now
	if on := g.tree.onExec; on != nil {
		if err := on(g.holder, g.module); err != nil {
			g.holder.SetModule(ran) // it never runs the new code
			return err
		}
	}
	return nil
}

// hostOutOfFDs logs, once per guest, that a call failed with ENFILE: the
// host process, whose descriptors every guest shares, is at its limit
// (caps.ErrnoOf). The guest sees the errno; the operator needs the log,
// since the cure is the host's limit or the guests' --max-fds.
func (g *Guest) hostOutOfFDs(call string) {
	if !g.outOfFDs.CompareAndSwap(false, true) {
		return
	}
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	g.log.Warn("sandboxd is out of file descriptors: a guest call failed with ENFILE; raise sandboxd's limit (ulimit -n, systemd LimitNOFILE=) or give guests a smaller --max-fds",
		"call", call, "limit", lim.Cur)
}

// inFlightRefused logs, once per guest, that a send failed with ENOBUFS
// because the handles the guest's user has in flight reached their bound
// (GuestConfig.InFlight). The guest sees the errno; the operator needs
// the log to tell a peer that does not receive from a bound set too low.
func (g *Guest) inFlightRefused(sock uint32, handles int) {
	if !g.tooManyInFlight.CompareAndSwap(false, true) {
		return
	}
	l := g.tree.inflight
	g.log.Warn("a guest's sock_send failed with ENOBUFS: its user's guests have as many handles sent and not yet received as they may (serve --max-inflight-per-user); their peers are not receiving them, or the bound is too low",
		"fd", sock, "handles", handles, "in_flight", l.InFlight(), "max", l.Max())
}

// watchExit registers w to be woken when the guest has exited (Done is
// closed); if it already has, w is woken at once. It lets one Waiter wait
// for a process together with other events (poll on proc_terminate).
func (g *Guest) watchExit(w *caps.Waiter) (cancel func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.done:
		w.Wake()
		return func() {}
	default:
	}
	if g.exitWatch == nil {
		g.exitWatch = make(map[*caps.Waiter]struct{})
	}
	g.exitWatch[w] = struct{}{}
	return func() {
		g.mu.Lock()
		delete(g.exitWatch, w)
		g.mu.Unlock()
	}
}

func (g *Guest) runOnce() (st ExitStatus) {
	g.stack = nil
	alloc := g.memoryAllocator()
	// A panic that escapes wazero (calls into the guest already turn
	// host-function panics into errors) would end the whole process, and
	// with it every other guest: it ends this guest alone, as a trap.
	defer func() {
		if r := recover(); r != nil {
			if alloc.err != nil { // wazero panics when the initial memory is refused
				st = ExitStatus{Code: 134, Trap: alloc.err}
				return
			}
			g.log.Error("runtime failure: the guest is ended as if it trapped", "panic", r)
			st = ExitStatus{Code: 134, Trap: fmt.Errorf("runtime failure: %v", r)}
		}
	}()
	defer alloc.runEnded() // once the module is closed: deferred calls run last first
	// The stack global reaches the instance, and through it its tables
	// (up to 32 MiB, outside the linear memory): a guest that has ended
	// must not keep it, since a process handle keeps the Guest.
	defer func() { g.stack = nil }()
	ctx := context.Context(g.ctx)
	if g.memLimit > 0 && g.module.memoryMin > g.memLimit {
		// wazero cannot start a memory its allocator refuses (it panics),
		// so a child or an exec'd module over its limit is stopped here;
		// a launch is refused before it gets this far.
		return ExitStatus{Code: 134, Trap: fmt.Errorf("%s needs %d bytes of memory to start, more than the guest's limit of %d", g.module.Name, g.module.memoryMin, g.memLimit)}
	}
	ctx = experimental.WithMemoryAllocator(ctx, alloc)
	ctx = withGuest(ctx, g)
	mod, err := g.rt.instantiate(ctx, g.module.compiled, instanceConfig)
	if err != nil {
		return g.statusOf(err)
	}
	defer mod.Close(context.Background())
	if g.module.stackChecks {
		stack := mod.ExportedGlobal(wasmbin.StackExport).(api.MutableGlobal)
		stack.Set(uint64(min(g.maxStack, wasmbin.MaxStackAllowance)))
		g.stack = stack
	}
	if g.module.loopChecks {
		// Once the guest's context ends, its next loop iteration calls
		// loopYield, which ends it (abi/instrument.go). Kill sets the
		// budget to 0 after it cancels the context, and so does the end
		// of the context the guest was started under: a hook on that
		// one, rather than on the guest's own, spares each guest's
		// context a set of children of its own.
		budget := mod.ExportedGlobal(wasmbin.BudgetExport).(api.MutableGlobal)
		g.budget.Store(&budget)
		defer context.AfterFunc(g.parent, g.stopAtNextLoop)()
		if g.ctx.Err() != nil { // Kill ran before the budget was stored
			g.stopAtNextLoop()
		}
		g.holding = true
		defer func() {
			g.holding = false
			g.hold.Release()
			g.budget.Store(nil)
		}()
	}
	if g.module.startFn {
		if _, err := mod.ExportedFunction(wasmbin.StartExport).Call(ctx); err != nil {
			return g.statusOf(err)
		}
	}
	_, err = mod.ExportedFunction("_start").Call(ctx)
	return g.statusOf(err)
}

// instanceConfig is every guest instance's wazero configuration: no name
// (guests are not linked by name), no start functions (runOnce calls
// them), and a shared random source. wazero's own source, used by
// nothing sandboxd runs (random_get reads crypto/rand itself), is by
// default a seeded math/rand source of some 5 KB per instance.
var instanceConfig = wazero.NewModuleConfig().WithName("").WithStartFunctions().WithRandSource(rand.Reader)

// memoryAllocator returns the allocator of the guest's next run: its
// memory limit, or the wasm32 maximum if it has none. A module run without
// loop checks may not have its memory in the Go heap (see memoryAllocator).
func (g *Guest) memoryAllocator() *memoryAllocator {
	limit := g.memLimit
	if limit == 0 {
		limit = maxMemory
	}
	return &memoryAllocator{limit: limit, heapAllowed: g.module.loopChecks, log: g.log}
}

func (g *Guest) statusOf(err error) ExitStatus {
	if cause := context.Cause(g.ctx); cause != nil {
		reason := cause.Error()
		if errors.Is(cause, context.DeadlineExceeded) {
			reason = KilledByTimeout
		}
		return ExitStatus{Code: 137, Killed: reason}
	}
	if err == nil {
		return ExitStatus{}
	}
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		if g.signal != 0 {
			return ExitStatus{Code: ee.ExitCode(), Signal: g.signal}
		}
		return ExitStatus{Code: ee.ExitCode()}
	}
	if g.stack != nil && int32(uint32(g.stack.Get())) < 0 {
		// Only the stack check leaves the allowance below zero, and
		// only as it traps (wasmbin's stack checks).
		g.log.Debug("guest trapped at its stack bound", "trap", err)
		return ExitStatus{Code: 134, Trap: &StackError{Limit: g.maxStack}}
	}
	return ExitStatus{Code: 134, Trap: err}
}

// exit unwinds the guest from inside a host call with the given code.
func (g *Guest) exit(code uint32) {
	panic(sys.NewExitError(code))
}

// killedErrno is called by a blocking host call that saw the guest's
// context end: it unwinds the guest (the status comes from the cause).
func (g *Guest) killed() Errno {
	g.exit(137)
	return caps.ECANCELED
}

// waitReady blocks until p reports one of want, the capability c is
// revoked (ENOTCAPABLE), or the guest is killed (the guest unwinds). It
// parks a goroutine, not a thread. Revocation and the kill are asked
// first, so a call that waits again after part of its work (a send to a
// peer that drains as fast as it is fed) stops at its next wait, however
// ready p is.
func (g *Guest) waitReady(c *caps.Cap, p caps.Pollable, want caps.Events) Errno {
	for {
		select {
		case <-c.Done():
			return caps.ENOTCAPABLE
		case <-g.ctx.Done():
			return g.killed()
		default:
		}
		ready, cancel := p.Poll(want, g.waiter)
		if ready != 0 {
			cancel()
			return 0
		}
		g.park()
		select {
		case <-g.waiter.C():
			cancel()
		case <-c.Done():
			cancel()
			g.unpark()
			return caps.ENOTCAPABLE
		case <-g.ctx.Done():
			cancel()
			g.unpark()
			return g.killed()
		}
		g.unpark()
	}
}

// park records that a host call of the guest is about to wait, after it
// registered for the events that end the wait; unpark records that the
// wait ended.
// parked is set before waits counts the wait, so that a test that sees
// waits grow and parked clear knows the wait has ended, not that it is
// about to begin.
func (g *Guest) park() {
	g.parked.Store(1)
	g.waits.Add(1)
}

func (g *Guest) unpark() { g.parked.Store(0) }
