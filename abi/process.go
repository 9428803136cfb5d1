package abi

import (
	"fmt"
	"io"
	"sync"

	"github.com/sandboxd/sandboxd/caps"
)

// MaxModuleBytes bounds a module read from a file handle by proc_spawn or
// proc_exec: the host allocates the whole file before compiling it.
const MaxModuleBytes = 128 << 20

// MaxArgdataBytes bounds the argdata a guest hands to proc_spawn or
// proc_exec.
const MaxArgdataBytes = 1 << 20

// moduleResource is a compiled module as a capability's resource
// (KindModule). Holding a capability to it with PROC_EXEC allows starting
// guests from it (proc_spawn) or becoming it (proc_exec); nothing else: it
// cannot be read, and the host path it came from, if any, is not reachable
// through it.
type moduleResource struct {
	m      *Module
	closed sync.Once
}

// NewModuleResource returns m as a resource, so that a supervisor can grant
// a guest the power to spawn it (caps.Kernel.Mint with caps.KindModule's
// rights). The resource holds m until it is closed: mint one capability
// per resource (derive further ones from it), since the resource's Close
// ends its hold.
func NewModuleResource(m *Module) caps.Resource {
	m.hold()
	return &moduleResource{m: m}
}

func (r *moduleResource) Kind() caps.Kind { return caps.KindModule }
func (r *moduleResource) Close() error {
	r.closed.Do(r.m.Release)
	return nil
}
func (r *moduleResource) Describe() string {
	return "module " + r.m.Name + " sha256:" + r.m.HashString()
}
func (r *moduleResource) Stat() (caps.FileStat, error) {
	return caps.FileStat{Type: caps.TypeRegular, Size: uint64(r.m.Size)}, nil
}

// process is a child guest seen through a process handle (KindProcess).
// Holding a capability to it allows waiting for the child's end and
// learning its exit status (poll, proc_terminate) and nothing else: no
// access to the child's memory or handles. Closing the last capability to
// it kills the child, as closing a CloudABI process descriptor does.
type process struct{ g *Guest }

func (p *process) Kind() caps.Kind  { return caps.KindProcess }
func (p *process) Describe() string { return "process " + p.g.ID }
func (p *process) Close() error {
	p.g.Kill("process handle closed")
	return nil
}
func (p *process) Stat() (caps.FileStat, error) {
	return caps.FileStat{Type: caps.TypeProcess}, nil
}

// Poll reports EventRead once the child has exited.
func (p *process) Poll(want caps.Events, w *caps.Waiter) (caps.Events, func()) {
	select {
	case <-p.g.done:
		return caps.EventRead, func() {}
	default:
	}
	if w == nil {
		return 0, func() {}
	}
	return 0, p.g.watchExit(w)
}

// termination reports how the child ended in CloudABI's terms: a signal
// (0 if it exited) and an exit code. Valid once Poll reports EventRead.
//
// A guest ended by proc_raise reports its signal; a guest killed (by its
// handle's close, its parent, a timeout or the supervisor) reports
// SIGKILL; a guest that trapped reports SIGABRT, since a wasm trap is how
// C's abort() and Rust's panics end a wasm guest.
func (p *process) termination() (signal uint8, code uint32) {
	st := p.g.Status()
	switch {
	case st.Signal != 0:
		return st.Signal, 0
	case st.Killed != "":
		return sigKILL, 0
	case st.Trap != nil:
		return sigABRT, 0
	}
	return 0, st.Code
}

// moduleOf returns the module a PROC_EXEC handle designates: a module
// handle, or a regular file holding a wasm binary (read whole, at most
// MaxModuleBytes, and compiled through the runtime's cache). The bytes
// read are charged to the tree's memory (GuestConfig.Memory) until the
// compilation has ended, which may wait its turn: ENOMEM if they do not
// fit. c comes acquired, and moduleOf releases it as soon as it has what
// it needs of it, before the compile: a revocation of the handle waits
// for the read, not for the compile, which may take seconds or wait long
// for its turn; a handle revoked by the compile's end is ENOTCAPABLE, as
// if it had been revoked before the call. The caller holds the module and
// must Release it.
func (g *Guest) moduleOf(c *caps.Cap) (*Module, Errno) {
	released := false
	release := func() {
		if !released {
			released = true
			c.Release()
		}
	}
	defer release()
	res := c.Resource()
	if mr, ok := res.(*moduleResource); ok {
		mr.m.hold()
		return mr.m, 0
	}
	var charged int64 // what the bytes read hold of the tree's memory
	defer func() { g.tree.giveMemory(charged) }()
	buf, e := readModuleFile(res, func(size int64) bool {
		if size <= charged {
			return true
		}
		if !g.tree.takeMemory(size - charged) {
			return false
		}
		charged = size
		return true
	})
	if e != 0 {
		return nil, e
	}
	name := c.Name()
	if name == "" {
		name = string(c.ID())
	}
	release()
	m, err := g.rt.Compile(g.ctx, name, buf)
	if err != nil {
		g.log.Debug("module refused", "handle", c.ID(), "error", err)
		return nil, caps.ENOEXEC
	}
	if c.Revoked() {
		// Revoked while it compiled: what the revoker took away does not
		// start afterwards.
		m.Release()
		return nil, caps.ENOTCAPABLE
	}
	return m, 0
}

// readModuleFile reads the regular file res whole, at most
// MaxModuleBytes (EFBIG), asking hold for the bytes it will hold first:
// the size the file has, then as much as it grew to as it is read
// (ENOMEM when hold refuses). A resource that is not a readable regular
// file is ENOEXEC.
func readModuleFile(res caps.Resource, hold func(size int64) bool) ([]byte, Errno) {
	ra, ok1 := res.(io.ReaderAt)
	st, ok2 := res.(caps.Stater)
	if !ok1 || !ok2 {
		return nil, caps.ENOEXEC
	}
	fs, err := st.Stat()
	if err != nil {
		return nil, caps.ErrnoOf(err)
	}
	if fs.Type != caps.TypeRegular {
		return nil, caps.ENOEXEC
	}
	if fs.Size > MaxModuleBytes {
		return nil, caps.EFBIG
	}
	if !hold(int64(fs.Size)) {
		return nil, caps.ENOMEM
	}
	// Read until end of file rather than trusting the size: the file may
	// change under us, and must not make us read past the limit.
	buf := make([]byte, 0, fs.Size)
	chunk := make([]byte, 64<<10)
	for {
		n, err := ra.ReadAt(chunk, int64(len(buf)))
		if len(buf)+n > MaxModuleBytes {
			return nil, caps.EFBIG
		}
		if !hold(int64(max(len(buf)+n, cap(buf)))) {
			return nil, caps.ENOMEM
		}
		buf = append(buf, chunk[:n]...)
		if err == io.EOF || (err == nil && n == 0) {
			return buf, 0
		}
		if err != nil {
			return nil, caps.ErrnoOf(err)
		}
	}
}

// newChild prepares m to run as a child of g with table t and argdata
// data. Nothing runs until startChild.
func (g *Guest) newChild(m *Module, t *caps.Table, data []byte) *Guest {
	h := t.Holder()
	cfg := GuestConfig{
		ID: h.ID, Table: t, Argdata: data, MemoryLimit: g.memLimit, MaxStack: g.maxStack,
		// The parent's logger, so that a limit on the lines its guest
		// may cause (the daemon's) holds for its children too.
		Logger: g.log.With("guest", h.ID, "parent", g.ID),
	}
	return g.rt.newGuest(m, cfg, g.tree, true) // counted by procSpawn's reserve
}

// startChild runs child under g's context, so that killing g, or g's
// exit, ends the child; g's Done waits for the child's.
func (g *Guest) startChild(child *Guest) {
	g.children.Add(1)
	child.onDone = g.children.Done
	child.Start(g.ctx)
}

// childHolder names the next child of g: "<parent id>.<n>", unique within
// the kernel as long as guest ids are.
func (g *Guest) childHolder(m *Module) *caps.Holder {
	h := &caps.Holder{ID: fmt.Sprintf("%s.%d", g.ID, g.nspawned.Add(1)), Label: m.Name, Parent: g.holder}
	h.SetModule(m.HashString())
	return h
}
