package abi

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/abi/internal/wasmbin"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Config configures a Runtime.
type Config struct {
	// Logger receives structured logs; nil discards them. At Trace level
	// every host call is logged with its named arguments.
	Logger hclog.Logger
	// CacheDir keeps compiled machine code between processes, and the
	// modules as the loop and stack checks rewrite them (under
	// CacheDir/rewritten, keyed by the original's SHA-256), so that a
	// module is rewritten once, not at every process's start; "" keeps
	// both in memory only. Whoever can write it can change what guests
	// run: keep it the runtime's own (0700).
	CacheDir string
	// MaxCacheBytes bounds the files kept under CacheDir (see
	// abi/diskcache.go): past it the least recently used modules' files
	// are removed, and those modules compile anew when next used. 0 means
	// DefaultMaxCacheBytes; a negative value, no bound.
	MaxCacheBytes int64
	// NoLoopChecks compiles guests without the check at every loop header
	// that lets Kill, a timeout or a cancelled context stop a guest that
	// makes no host call, and lets Go pause it (see abi/instrument.go). Such
	// a guest then runs on until the process exits, and nothing else in
	// the process can run a garbage collection meanwhile: only a process
	// that runs one guest and can end it by exiting may set it.
	NoLoopChecks bool
	// NoStackChecks compiles guests without the bound on their call stack
	// (GuestConfig.MaxStack, abi/instrument.go): wazero then grows a
	// guest's stack up to its own ceiling of some hundred megabytes. It is
	// there to measure what the bound costs.
	NoStackChecks bool
	// NoDebugInfo skips the DWARF sections of guest modules. A trap's
	// stack trace then names functions (from the name section) but not
	// source lines, and a module that carries debug sections (wasi-libc's
	// start files do) starts about 2 ms sooner: wazero neither parses the
	// DWARF nor loads a source map from the cache. Compiled code is cached
	// apart from code compiled with debug info, so each setting finds what
	// it expects.
	NoDebugInfo bool
	// MaxIdleModules is how many compiled modules the runtime keeps while
	// nothing uses them, so that the next guest of one starts without
	// compiling; the least recently used beyond it are dropped. 0 means
	// DefaultMaxIdleModules.
	MaxIdleModules int
	// MaxCompiles is how many modules the runtime compiles at once; more
	// wait their turn (or for their context). Compiling takes a CPU and,
	// for the largest module sandboxd accepts, some 300 MB while it runs
	// (BenchmarkCompileMostFunctions): without a bound, clients sending
	// many distinct large modules at once would take the host's memory.
	// 0 means runtime.GOMAXPROCS(0).
	MaxCompiles int
}

// DefaultMaxIdleModules is Config.MaxIdleModules' default.
const DefaultMaxIdleModules = 32

// maxIdleFuncs bounds the functions of all idle modules together, so that
// the idle modules cannot hold gigabytes of compiled code: a module of a
// million functions keeps about 140 MB (BenchmarkCompileMostFunctions), so
// 32 of them would keep some 4.5 GB, where 2,000,000 functions keep about
// 300 MB. A Go program has a few thousand.
const maxIdleFuncs = 2000000

// maxIdleBytes bounds the bytes of all idle modules together: a module
// keeps, compiled, about as much as its bytes (an idle module of 7 MB,
// eight functions of 900 KB, kept 7 MB), and one of few large functions
// is far under maxIdleFuncs: 32 modules of 128 MiB, as proc_spawn reads,
// would keep some 4 GB.
const maxIdleBytes = 256 << 20

// Runtime compiles modules and runs guests. One Runtime serves any number
// of concurrent guests; each module is compiled once, keyed by the SHA-256
// of its bytes.
type Runtime struct {
	r           wazero.Runtime
	log         hclog.Logger
	rewriteDir  string     // where rewritten modules are kept; "" for none
	disk        *diskCache // bounds the files of Config.CacheDir; nil for none
	loopChecks  bool
	stackChecks bool
	// beforeCompile, when not nil, runs as a compilation starts: a test's
	// way to make one fail as a defect would.
	beforeCompile func()
	// closeMu orders every call into r that builds something (compiling a
	// module, instantiating a host module or a guest) against Close:
	// wazero checks that its runtime is open only as such a call starts,
	// and its Close empties the maps one under way writes to, a panic on
	// a goroutine of its own (a host module prepared in the background).
	// Those calls hold it for reading, Close for writing; after Close they
	// fail with errClosed (wazero would panic on some: its host module
	// builder compiles into an engine Close has emptied).
	closeMu sync.RWMutex
	closed  bool // guarded by closeMu
	// compiling holds a token for each compilation running
	// (Config.MaxCompiles).
	compiling chan struct{}

	mu      sync.Mutex
	modules map[[32]byte]*compileEntry
	idle    list.List // modules no one holds, most recently used first
	maxIdle int
	// idleFuncs counts the functions of the idle modules: compiled code
	// and its metadata grow with them (some 300 bytes each at least), and
	// they are bounded by maxIdleFuncs as the modules are by maxIdle.
	idleFuncs    uint64
	maxIdleFuncs uint64
	// idleBytes counts the bytes of the idle modules (Module.Size), which
	// their compiled code and what wazero keeps of them are about as
	// large as; bounded by maxIdleBytes.
	idleBytes    uint64
	maxIdleBytes uint64
	hosts        map[string]*hostInit // fixed at NewRuntime; each entry guards itself
}

type compileEntry struct {
	done chan struct{}
	m    *Module
	err  error
	// cancelled is set when err is the context of the caller that
	// compiled ending: the bytes may still compile for another.
	cancelled bool
}

// NewRuntime returns a Runtime with both ABIs' host modules ready.
func NewRuntime(ctx context.Context, cfg Config) (*Runtime, error) {
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	rc := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(false). // loop checks do it, far more cheaply (abi/instrument.go)
		WithCoreFeatures(api.CoreFeaturesV2).
		WithDebugInfoEnabled(!cfg.NoDebugInfo)
	var disk *diskCache
	if cfg.CacheDir != "" {
		base, err := resolveCacheDir(cfg.CacheDir)
		if err != nil {
			return nil, err
		}
		cfg.CacheDir = base
		dir := cfg.CacheDir
		if cfg.NoDebugInfo {
			dir = filepath.Join(dir, "no-debug-info")
		}
		cache, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			return nil, fmt.Errorf("compilation cache %s: %w", dir, err)
		}
		if err := checkCacheDir(cfg.CacheDir); err != nil {
			return nil, err
		}
		rc = rc.WithCompilationCache(cache)
		disk = newDiskCache(log, cfg.CacheDir, dir, cfg.MaxCacheBytes)
	}
	r := wazero.NewRuntimeWithConfig(ctx, rc)
	maxIdle := cfg.MaxIdleModules
	if maxIdle <= 0 {
		maxIdle = DefaultMaxIdleModules
	}
	rewriteDir := ""
	if cfg.CacheDir != "" {
		rewriteDir = filepath.Join(cfg.CacheDir, "rewritten")
	}
	maxCompiles := cfg.MaxCompiles
	if maxCompiles <= 0 {
		maxCompiles = runtime.GOMAXPROCS(0)
	}
	rt := &Runtime{compiling: make(chan struct{}, maxCompiles), r: r, log: log, rewriteDir: rewriteDir, disk: disk, loopChecks: !cfg.NoLoopChecks, stackChecks: !cfg.NoStackChecks, modules: make(map[[32]byte]*compileEntry), maxIdle: maxIdle, maxIdleFuncs: maxIdleFuncs, maxIdleBytes: maxIdleBytes, hosts: make(map[string]*hostInit)}
	for name, instantiate := range hostModules {
		rt.hosts[name] = &hostInit{instantiate: instantiate}
	}
	return rt, nil
}

// hostModules instantiate the host modules a guest may import, by import
// module name. Each is instantiated once per Runtime, when the first module
// importing it is compiled: a process that runs one WASI program never
// builds the native module, and the reverse (each costs ~1 ms). Only
// NewRuntime reads it, and each Runtime's hostInit keeps its function: the
// native module's handlers compile modules (proc_spawn), so a reference
// back to this map from there would be an initialization cycle.
var hostModules = map[string]func(context.Context, wazero.Runtime) error{
	ModuleName:         instantiateNative,
	WASIModuleName:     instantiateWASI,
	wasmbin.LoopModule: instantiateLoop,
}

type hostInit struct {
	instantiate func(context.Context, wazero.Runtime) error
	once        sync.Once
	started     atomic.Bool
	err         error
}

// ensureHost instantiates the host module name if it is not yet.
func (rt *Runtime) ensureHost(ctx context.Context, name string) error {
	h := rt.hosts[name]
	h.started.Store(true)
	h.once.Do(func() {
		rt.closeMu.RLock()
		defer rt.closeMu.RUnlock()
		err := errClosed
		if !rt.closed {
			err = h.instantiate(context.WithoutCancel(ctx), rt.r)
		}
		if err != nil {
			h.err = fmt.Errorf("host module %s: %w", name, err)
		}
	})
	return h.err
}

// prepareHosts starts instantiating, on other goroutines, the named host
// modules that are not yet instantiated or under way, so that they are
// built while wazero compiles the guest (or loads it from the cache)
// rather than after. Compile still calls ensureHost for each, which waits
// for these.
func (rt *Runtime) prepareHosts(ctx context.Context, names []string) {
	for _, name := range names {
		if h, ok := rt.hosts[name]; ok && !h.started.Load() {
			go rt.ensureHost(ctx, name) // its error is kept for Compile
		}
	}
}

// Close stops the runtime and every guest still running in it. It waits
// for a compilation or instantiation under way to end first.
func (rt *Runtime) Close(ctx context.Context) error {
	rt.disk.closing()
	rt.closeMu.Lock()
	defer rt.closeMu.Unlock()
	rt.closed = true
	return rt.r.Close(ctx)
}

// errClosed is the error of a compilation or instantiation asked of a
// closed runtime.
var errClosed = errors.New("the runtime is closed: sandboxd is shutting down")

// instantiate instantiates a guest's compiled module, unless the runtime
// is closed or closing (closeMu).
func (rt *Runtime) instantiate(ctx context.Context, cm wazero.CompiledModule, cfg wazero.ModuleConfig) (api.Module, error) {
	rt.closeMu.RLock()
	defer rt.closeMu.RUnlock()
	if rt.closed {
		return nil, errClosed
	}
	return rt.r.InstantiateModule(ctx, cm, cfg)
}

// Module is a compiled guest program under the name its caller gave it.
// Compile of the same bytes under two names gives two Modules that share
// one compilation (and one set of holds): each guest, audit record and
// argv[0] names the program as its launcher did, not as whoever compiled
// those bytes first.
type Module struct {
	*compiledModule
	Name   string // a display name (file name), not used for identity
	cached bool   // Compile found it compiled in memory (Cached)
}

// Cached reports whether the Compile that returned m found it compiled in
// memory already, by an earlier Compile of the same bytes (a launch, a
// compile, a proc_spawn): that call compiled nothing and waited for no
// compilation. A module loaded from the disk cache, or whose compilation
// by another caller it waited for, is not.
func (m *Module) Cached() bool { return m.cached }

// compiledModule is what the Modules of the same bytes share.
type compiledModule struct {
	Hash     [32]byte
	hashHex  string // Hash in hex, made once: logs and policy requests name it at every launch
	name     string // the Name it was compiled under, for the runtime's own logs
	Size     int
	compiled wazero.CompiledModule
	usesWASI bool
	// loopChecks: compiled from wasmbin's loop-check rewrite, with a budget
	// global; stackChecks: with the stack allowance global; startFn: the
	// module's start function, exported to be run by the guest rather
	// than during instantiation.
	loopChecks, stackChecks, startFn bool
	memoryMin                        uint64

	rt      *Runtime
	disk    *diskEntry    // its files in the cache directory; nil for none
	refs    int           // holders (Compile's callers, guests, module handles); guarded by rt.mu
	funcs   uint64        // functions it defines
	idle    *list.Element // in rt.idle while refs is 0; guarded by rt.mu
	dropped bool          // its compiled code is closed; guarded by rt.mu
}

// MemoryMin is the linear memory, in bytes, the module asks for when it
// starts: a guest whose memory limit is lower cannot run it.
func (m *compiledModule) MemoryMin() uint64 { return m.memoryMin }

// HashString is the module's SHA-256 in hex, as policies and logs name it.
func (m *compiledModule) HashString() string { return m.hashHex }

// LimitError is a module that may be valid WebAssembly but asks for more
// than sandboxd gives a guest (functions, locals, table entries); the
// message names the limit. Compile's error wraps it.
type LimitError = wasmbin.LimitError

// ImportError is a module that imports what sandboxd does not provide: a
// module other than "sandboxd" and "wasi_snapshot_preview1", or a
// function they do not have. Its message names the import.
type ImportError struct{ msg string }

func (e *ImportError) Error() string { return e.msg }

// Compile validates and compiles wasm, or returns the module already
// compiled from the same bytes. Concurrent calls for the same bytes compile
// once. A module past one of sandboxd's limits is a *LimitError.
//
// The module comes with a hold for the caller, who must Release it when
// done with the module; a guest started from it holds it on its own, so a
// caller may release as soon as NewGuest has returned. A module no one
// holds stays compiled among the runtime's most recently used
// (Config.MaxIdleModules), then is dropped.
func (rt *Runtime) Compile(ctx context.Context, name string, wasm []byte) (*Module, error) {
	h := sha256.Sum256(wasm)
	for {
		rt.mu.Lock()
		e, ok := rt.modules[h]
		if !ok {
			break
		}
		rt.mu.Unlock()
		ready := isDone(e.done)
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("compiling %s: %w", name, context.Cause(ctx))
		}
		if e.err != nil {
			if e.cancelled && ctx.Err() == nil {
				continue // its caller gave up, not this one: try again
			}
			return nil, e.err
		}
		rt.mu.Lock()
		if rt.modules[h] == e { // not dropped while this call waited
			e.m.holdLocked()
			rt.mu.Unlock()
			return &Module{compiledModule: e.m.compiledModule, Name: name, cached: ready}, nil
		}
		rt.mu.Unlock()
	}
	e := &compileEntry{done: make(chan struct{})}
	rt.modules[h] = e
	rt.mu.Unlock()

	m, err := rt.compileInTurn(ctx, name, wasm, h)
	rt.mu.Lock()
	if err != nil {
		delete(rt.modules, h) // a later attempt may succeed (e.g. after a cancelled context)
	} else {
		m.rt, m.refs = rt, 1
	}
	e.m, e.err, e.cancelled = m, err, err != nil && ctx.Err() != nil
	rt.mu.Unlock()
	close(e.done)
	return m, err
}

// isDone reports whether done is closed, without waiting.
func isDone(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// hold adds a hold on m, to be ended by Release.
func (m *Module) hold() {
	if m.rt == nil {
		return // not from Compile: nothing keeps or drops it
	}
	m.rt.mu.Lock()
	m.holdLocked()
	m.rt.mu.Unlock()
}

func (m *compiledModule) holdLocked() {
	if m.dropped {
		panic("abi: Module held after its last Release dropped it")
	}
	if m.idle != nil {
		m.rt.idle.Remove(m.idle)
		m.rt.idleFuncs -= m.funcs
		m.rt.idleBytes -= uint64(m.Size)
		m.idle = nil
	}
	m.refs++
}

// Release ends a hold on m (from Compile or hold). When the last ends, m
// joins the runtime's idle modules, and the least recently used idle
// modules beyond Config.MaxIdleModules, or beyond 2,000,000 functions or
// 256 MiB of modules in all, are dropped: their compiled code is freed and their bytes compile
// anew next time. Guests already running one
// are not affected.
func (m *Module) Release() {
	rt := m.rt
	if rt == nil {
		return
	}
	rt.mu.Lock()
	if m.refs <= 0 {
		rt.mu.Unlock()
		panic("abi: Module released more often than held")
	}
	if m.refs--; m.refs > 0 {
		rt.mu.Unlock()
		return
	}
	m.idle = rt.idle.PushFront(m.compiledModule)
	rt.idleFuncs += m.funcs
	rt.idleBytes += uint64(m.Size)
	var drop []*compiledModule
	for rt.idle.Len() > rt.maxIdle || rt.idleFuncs > rt.maxIdleFuncs || rt.idleBytes > rt.maxIdleBytes {
		old := rt.idle.Remove(rt.idle.Back()).(*compiledModule)
		rt.idleFuncs -= old.funcs
		rt.idleBytes -= uint64(old.Size)
		old.idle, old.dropped = nil, true
		delete(rt.modules, old.Hash)
		drop = append(drop, old)
	}
	rt.mu.Unlock()
	for _, old := range drop {
		rt.log.Debug("dropped idle module", "module", old.name, "sha256", old.HashString())
		old.compiled.Close(context.Background())
		rt.disk.dropped(old.disk)
	}
}

// compileInTurn is compileSafely once one of Config.MaxCompiles turns is
// free, or ctx's error if ctx ends first.
func (rt *Runtime) compileInTurn(ctx context.Context, name string, wasm []byte, h [32]byte) (*Module, error) {
	select {
	case rt.compiling <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("compiling %s: %w", name, context.Cause(ctx))
	}
	defer func() { <-rt.compiling }()
	return rt.compileSafely(ctx, name, wasm, h)
}

// compileSafely is compile with a panic in it an error. A module comes
// from a client or from a guest's proc_spawn, and rewriting and compiling
// it touch nothing outside it; so a defect that panics on some module must
// fail that compilation, not take the daemon and its guests down, nor
// leave the entry of Compile that other callers wait on unfinished, nor
// the spawning guest's handle held for good.
func (rt *Runtime) compileSafely(ctx context.Context, name string, wasm []byte, h [32]byte) (m *Module, err error) {
	defer func() {
		if r := recover(); r != nil {
			rt.log.Error("compiling a module failed on a defect of sandboxd", "module", name, "sha256", hex.EncodeToString(h[:]), "panic", r, "stack", string(debug.Stack()))
			m, err = nil, fmt.Errorf("%s could not be compiled: sandboxd failed on it (%v); please report this with the module", name, r)
		}
	}()
	if rt.beforeCompile != nil {
		rt.beforeCompile()
	}
	return rt.compile(ctx, name, wasm, h)
}

func (rt *Runtime) compile(ctx context.Context, name string, wasm []byte, h [32]byte) (*Module, error) {
	// What the module imports and exports is read from its sections by
	// Precheck, not asked of wazero, which builds a definition of every
	// function in the module.
	secs, err := wasmbin.Split(wasm)
	var shape wasmbin.Shape
	if err == nil {
		shape, err = secs.Precheck()
	}
	var bounded bool
	if err == nil {
		secs, bounded, err = secs.BoundTables()
	}
	// Fewer data segments, the same initial memory: wazero keeps a slice
	// per segment in every instance (wasmbin.MergeData).
	var merged bool
	if err == nil {
		secs, merged = secs.MergeData()
	}
	if err != nil {
		if errors.As(err, new(*LimitError)) {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return nil, fmt.Errorf("%s is not a valid WebAssembly module: %w", name, err)
	}
	hosts := shape.ModuleNames()
	if rt.loopChecks {
		hosts = append(hosts, wasmbin.LoopModule)
	}
	rt.prepareHosts(ctx, hosts)
	code, startFn, kept, err := rt.instrument(ctx, name, wasm, h, secs, bounded || merged)
	if err != nil {
		return nil, err
	}
	cm, codeFile, wrote, err := rt.compileCode(ctx, code)
	if err != nil && ctx.Err() == nil && rt.dropRewritten(h) && kept {
		// A kept rewrite that does not compile is damaged: rewrite anew.
		rt.log.Warn("a kept rewritten module did not compile: rewriting it", "module", name, "error", err)
		if code, startFn, kept, err = rt.instrument(ctx, name, wasm, h, secs, bounded || merged); err != nil {
			return nil, err
		}
		cm, codeFile, wrote, err = rt.compileCode(ctx, code)
	}
	// Its files in the cache directory: kept while they serve, removed
	// when the module fails (no later compile would use them).
	files := []string{rt.keptRewrittenPath(h), codeFile, sealPath(codeFile)}
	if err != nil {
		rt.disk.discard(files...)
		if errors.Is(err, errCacheFailed) {
			return nil, fmt.Errorf("%s could not be compiled: %w", name, err)
		}
		return nil, fmt.Errorf("%s is not a valid WebAssembly module: %w", name, err)
	}
	m := &Module{Name: name, compiledModule: &compiledModule{Hash: h, hashHex: hex.EncodeToString(h[:]), name: name, Size: len(wasm), compiled: cm, loopChecks: rt.loopChecks, stackChecks: rt.stackChecks, startFn: startFn, memoryMin: secs.MemoryMin(), funcs: shape.Functions}}
	if err := rt.checkShape(ctx, m, shape); err != nil {
		cm.Close(ctx)
		rt.disk.discard(files...)
		return nil, err
	}
	m.disk = rt.disk.used(files, wrote || files[0] != "" && !kept)
	rt.log.Debug("compiled module", "module", name, "sha256", m.HashString(), "bytes", len(wasm))
	return m, nil
}

// errCacheFailed is a compile that failed on the cache directory, not on
// the module.
var errCacheFailed = errors.New("the compilation cache on disk failed: remove the file it names, or run without the cache")

// compileCode is compileModule of code through the cache directory:
// file is where wazero keeps code's machine code ("" for nowhere), and
// wrote says that this compile wrote it. The cache failing is a warning,
// never a failed compile (recompile).
func (rt *Runtime) compileCode(ctx context.Context, code []byte) (cm wazero.CompiledModule, file string, wrote bool, err error) {
	if !rt.disk.keepsCode() {
		cm, err = rt.compileModule(ctx, code)
		return cm, "", false, err
	}
	// The file is checked before wazero may load it (checkCode), and
	// sealed once wazero has written it.
	file = rt.disk.codePath(code)
	rt.disk.checkCode(file)
	start := time.Now()
	cm, err = rt.compileModule(ctx, code)
	if err != nil {
		cm, err = rt.recompile(ctx, code, file, err)
	}
	wrote = rt.disk.writtenSince(file, start)
	if wrote && err == nil {
		rt.disk.seal(file)
	}
	return cm, file, wrote, err
}

// recompile compiles code again if its compile failed, with err, on the
// cache directory rather than on code: a file wazero cannot read
// (damaged) is removed and code compiled anew; one it cannot write (a
// full disk) leaves the compile in wazero's memory, which a second
// compile returns.
func (rt *Runtime) recompile(ctx context.Context, code []byte, file string, err error) (wazero.CompiledModule, error) {
	var cm wazero.CompiledModule
	// Each compile that failed to write its file left wazero a hold on
	// its code, which no CompiledModule ends: the one returned ends them.
	orphans := 0
	for try := 0; err != nil && try < 2; try++ {
		cache, compiled := rt.disk.failure(err)
		if !cache {
			return nil, err
		}
		rt.log.Warn("the compilation cache on disk failed: compiling without it", "file", file, "error", err)
		if compiled {
			orphans++
			rt.disk.restoreCodeDir()
		} else {
			rt.disk.discard(file)
		}
		cm, err = rt.compileModule(ctx, code)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCacheFailed, err)
	}
	for range orphans {
		cm.Close(ctx)
	}
	return cm, nil
}

// instrument returns the code to compile for wasm, whose sections are secs
// (rewritten by BoundTables if changed): with loop and stack checks unless
// the runtime has none, and then with the host module loop checks import
// ready.
//
// kept says that the code is a rewrite kept from an earlier compile.
func (rt *Runtime) instrument(ctx context.Context, name string, wasm []byte, h [32]byte, secs wasmbin.Sections, changed bool) (code []byte, startFn, kept bool, err error) {
	if !rt.loopChecks && !rt.stackChecks {
		if changed {
			return secs.Encode(), false, false, nil
		}
		return wasm, false, false, nil
	}
	if rt.loopChecks {
		if err := rt.ensureHost(ctx, wasmbin.LoopModule); err != nil {
			return nil, false, false, err
		}
	}
	checks := wasmbin.Checks{Loops: rt.loopChecks, Stack: rt.stackChecks}
	if code, startFn, ok := rt.loadRewritten(h, checks); ok {
		return code, startFn, true, nil
	}
	code, startFn, err = secs.Instrument(checks)
	if err == nil {
		rt.keepRewritten(h, checks, code, startFn)
		return code, startFn, false, nil
	}
	if limit := new(wasmbin.LimitError); errors.As(err, &limit) {
		return nil, false, false, fmt.Errorf("%s: %w", name, limit) // compiling it to say more is what the limit prevents
	}
	// Let wazero say what is wrong with the module; if it finds nothing,
	// the module uses something instrument does not know. Either way no
	// compile uses the code it kept.
	cm, file, wrote, cerr := rt.compileCode(ctx, wasm)
	if wrote {
		defer rt.disk.discard(file)
	}
	if cerr != nil {
		return nil, false, false, fmt.Errorf("%s is not a valid WebAssembly module: %w", name, cerr)
	}
	cm.Close(ctx)
	return nil, false, false, fmt.Errorf("%s cannot be given loop and stack checks (%v): sandboxd runs WebAssembly 2.0 modules", name, err)
}

// compileModule is wazero's CompileModule, with a panic in it an error:
// wazero's decoder panics on some invalid modules (a code entry whose
// local declarations overrun it: makeslice with a negative length), and a
// module a client sends must never take the daemon and its guests down.
// Decoding changes nothing outside the module being decoded, so after such
// a panic the runtime is as usable as before.
func (rt *Runtime) compileModule(ctx context.Context, bin []byte) (cm wazero.CompiledModule, err error) {
	defer func() {
		if r := recover(); r != nil {
			cm, err = nil, fmt.Errorf("the runtime's decoder failed on it (%v)", r)
		}
	}()
	rt.closeMu.RLock()
	defer rt.closeMu.RUnlock()
	if rt.closed {
		return nil, errClosed
	}
	return rt.r.CompileModule(ctx, bin)
}

// checkShape refuses a module sandboxd cannot run, and instantiates the
// host modules it imports.
func (rt *Runtime) checkShape(ctx context.Context, m *Module, shape wasmbin.Shape) error {
	hasFuncImports, memoryExported, startExported := false, false, false
	for _, im := range shape.Imports {
		switch im.Kind {
		case wasmbin.ExternMemory:
			return fmt.Errorf("%s imports a memory: guests must define their own", m.Name)
		case wasmbin.ExternFunc:
			hasFuncImports = true
			if _, ok := rt.hosts[im.Module]; !ok {
				return &ImportError{fmt.Sprintf("%s imports %s.%s: sandboxd provides only the %q and %q modules; link the module against wasi-libc, Go's wasip1 port or sandboxd.h, which import nothing else", m.Name, im.Module, im.Name, ModuleName, WASIModuleName)}
			}
			if !hostProvides(im.Module, im.Name) {
				return &ImportError{fmt.Sprintf("%s imports %s.%s, which sandboxd does not provide: %s", m.Name, im.Module, im.Name, providedHint(im.Module))}
			}
			m.usesWASI = m.usesWASI || im.Module == WASIModuleName
			if err := rt.ensureHost(ctx, im.Module); err != nil {
				return err
			}
		}
	}
	for _, ex := range shape.Exports {
		memoryExported = memoryExported || ex.Kind == wasmbin.ExternMemory && ex.Name == "memory"
		startExported = startExported || ex.Kind == wasmbin.ExternFunc && ex.Name == "_start"
	}
	if !memoryExported && hasFuncImports {
		return fmt.Errorf("%s does not export its memory as \"memory\": sandboxd's ABIs pass data through it", m.Name)
	}
	if !startExported {
		return fmt.Errorf("%s has no _start function: sandboxd runs command modules", m.Name)
	}
	return nil
}

// provided are the function names of the native and WASI host modules.
// They are filled in by init: the call tables refer, through their
// handlers, to the code that reads them.
var provided = map[string]map[string]bool{}

func init() {
	for mod, table := range map[string][]Call{ModuleName: calls[:], WASIModuleName: wasiCalls[:]} {
		provided[mod] = make(map[string]bool, len(table))
		for _, c := range table {
			provided[mod][c.Name] = true
		}
	}
}

// hostProvides reports whether host module mod has a function name. The
// module that loop checks import is sandboxd's own, and not checked here.
func hostProvides(mod, name string) bool {
	names, ok := provided[mod]
	return !ok || names[name]
}

// providedHint says where to find what a host module provides.
func providedHint(mod string) string {
	if mod == WASIModuleName {
		return "it provides the 46 functions of WASI preview1 that docs/WASI.md lists (sockets are reached through granted handles, not opened)"
	}
	return "it provides the 49 calls that `sandboxd abi` lists"
}

// WASIModuleName is the import module of WASI preview1.
const WASIModuleName = "wasi_snapshot_preview1"

// rewrittenPath is where the rewrite of the module of SHA-256 h with
// checks is kept: the name holds everything the rewrite's output depends
// on (the original's bytes, the rewriter's version, the checks).
func (rt *Runtime) rewrittenPath(h [32]byte, checks wasmbin.Checks) string {
	return filepath.Join(rt.rewriteDir, fmt.Sprintf("%x-v%d-loops%t-stack%t.wasm", h, wasmbin.RewriteVersion, checks.Loops, checks.Stack))
}

// keptRewrittenPath is where this runtime keeps the rewrite of the module
// of SHA-256 h; "" if it keeps none.
func (rt *Runtime) keptRewrittenPath(h [32]byte) string {
	if rt.rewriteDir == "" || (!rt.loopChecks && !rt.stackChecks) {
		return ""
	}
	return rt.rewrittenPath(h, wasmbin.Checks{Loops: rt.loopChecks, Stack: rt.stackChecks})
}

// loadRewritten returns the module of SHA-256 h as kept rewritten with
// checks, and whether its start function was moved (the file's first
// byte).
func (rt *Runtime) loadRewritten(h [32]byte, checks wasmbin.Checks) (code []byte, startFn, ok bool) {
	if rt.rewriteDir == "" {
		return nil, false, false
	}
	path := rt.rewrittenPath(h, checks)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, false
	}
	return rt.disk.openRewrite(rt.log, path, b)
}

// dropRewritten removes the kept rewrites of the module of SHA-256 h, and
// reports whether there was one.
func (rt *Runtime) dropRewritten(h [32]byte) bool {
	p := rt.keptRewrittenPath(h)
	return p != "" && os.Remove(p) == nil
}

// keepRewritten keeps code, the rewrite of the module of SHA-256 h, for
// the next process. A failure costs only the next process a rewrite.
func (rt *Runtime) keepRewritten(h [32]byte, checks wasmbin.Checks, code []byte, startFn bool) {
	if rt.rewriteDir == "" {
		return
	}
	if err := writeFileAtomic(rt.rewrittenPath(h, checks), sealRewrite(code, startFn)); err != nil {
		rt.log.Debug("could not keep the rewritten module", "error", err)
	}
}

// writeFileAtomic writes b to path through a temporary file renamed into
// place, so that a reader sees all of it or nothing.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return writeFileAtomicAs(path, ".tmp-*", b)
}

func btoi(b bool) byte {
	if b {
		return 1
	}
	return 0
}
