package abi

import (
	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

func procExit(g *Guest, m api.Memory, p []uint64) Errno {
	rval := uint32(p[0])
	g.exit(rval)
	return 0
}

func argdataGet(g *Guest, m api.Memory, p []uint64) Errno {
	buf, bufLen, sizeOut := uint32(p[0]), uint32(p[1]), uint32(p[2])
	return sizedCopyOut(m, buf, bufLen, sizeOut, g.argdata)
}

// sizedCopyOut is how argdata_get and fd_describe hand out an encoding:
// its size goes to sizeOut whatever else happens; a (buf, bufLen) range
// that leaves memory is EFAULT, as every range is, even where data itself
// would fit before the end; a buffer smaller than data gets nothing
// (ENOBUFS), so that a guest asks for the size with bufLen 0 first.
func sizedCopyOut(m api.Memory, buf, bufLen, sizeOut uint32, data []byte) Errno {
	size := uint32(len(data))
	if e := writeU32(m, sizeOut, size); e != 0 {
		return e
	}
	b, e := read(m, buf, bufLen)
	if e != 0 {
		return e
	}
	if bufLen < size {
		return caps.ENOBUFS
	}
	copy(b, data)
	return 0
}

// signalNames are CloudABI's signals (cloudabi.txt, enum signal), indexed
// by number. Their fixed default actions are applied by raiseCloudSignal.
var signalNames = [...]string{
	1: "ABRT", 2: "ALRM", 3: "BUS", 4: "CHLD", 5: "CONT", 6: "FPE", 7: "HUP",
	8: "ILL", 9: "INT", 10: "KILL", 11: "PIPE", 12: "QUIT", 13: "SEGV",
	14: "STOP", 15: "SYS", 16: "TERM", 17: "TRAP", 18: "TSTP", 19: "TTIN",
	20: "TTOU", 21: "URG", 22: "USR1", 23: "USR2", 24: "VTALRM", 25: "XCPU",
	26: "XFSZ",
}

// SignalNames returns CloudABI's signal names without "SIG", indexed by
// number ("" at 0), for the C header.
func SignalNames() []string { return signalNames[:] }

// CloudABI numbers of the signals the host reports on its own.
const (
	sigABRT uint8 = 1
	sigKILL uint8 = 10
)

// procRaise applies sig's default action to the calling guest
// (raiseCloudSignal, shared with WASI's proc_raise): terminating signals
// end it with exit status 128+sig and the signal recorded (ExitStatus.Signal
// and, for its parent, proc_terminate); ignored signals, CONT and the
// job-control stops return at once; any other number is EINVAL.
func procRaise(g *Guest, m api.Memory, p []uint64) Errno {
	sig := uint32(p[0])
	if sig == 0 || sig >= uint32(len(signalNames)) {
		return caps.EINVAL
	}
	return raiseCloudSignal(g, uint8(sig))
}

// procArgs reads the argdata and fd list that proc_spawn and proc_exec
// share. The argdata is copied (at most MaxArgdataBytes), and charged to
// the tree's memory (ENOMEM if it does not fit) until the new program
// that keeps it ends: the caller hands the charge on, or gives it back
// (procTree.giveMemory). The list may name at most as many handles as the
// table holds.
func (g *Guest) procArgs(m api.Memory, dataPtr, dataLen, fdsPtr, fdsLen uint32) ([]byte, []uint32, Errno) {
	if dataLen > MaxArgdataBytes {
		return nil, nil, caps.E2BIG
	}
	raw, e := read(m, dataPtr, dataLen)
	if e != 0 {
		return nil, nil, e
	}
	fds, e := readU32Array(m, fdsPtr, fdsLen, uint32(g.table.Max()))
	if e != 0 {
		return nil, nil, e
	}
	if !g.tree.takeMemory(int64(len(raw))) {
		return nil, nil, caps.ENOMEM
	}
	data := make([]byte, len(raw)) // never nil: nil would mean "build from args"
	copy(data, raw)
	return data, fds, 0
}

// procSpawn starts a child guest. The child's table holds exactly the
// listed handles, renumbered from 0 in list order, each a new capability
// derived from the caller's (edge spawn, the caller's current rights and
// fd flags), so revoking the caller's capability reaches the child's copy.
// The caller gets a process handle (rights poll_proc_terminate and
// file_stat_fget) for poll's proc_terminate; closing its last copy kills
// the child. The child runs in its own goroutine under the caller's
// context: killing the caller, or its exit, ends the child too. A tree of
// processes runs at most GuestConfig.MaxDescendants spawned guests at
// once; past that the call fails with EAGAIN. A spawn that
// GuestConfig.SpawnBudget refuses fails with ENOMEM.
func procSpawn(g *Guest, m api.Memory, p []uint64) Errno {
	fd, dataPtr, dataLen, fdsPtr, fdsLen, procOut := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3]), uint32(p[4]), uint32(p[5])
	if _, e := read(m, procOut, 4); e != 0 {
		return e
	}
	data, fds, e := g.procArgs(m, dataPtr, dataLen, fdsPtr, fdsLen)
	if e != 0 {
		return e
	}
	charge := int64(len(data)) // data's, until the child holds it
	defer func() { g.tree.giveMemory(charge) }()
	c, e := g.acquire(fd, caps.RightProcExec)
	if e != 0 {
		return e
	}
	if e := g.spawnCheck(fds); e != 0 {
		c.Release()
		return e
	}
	// The tree's count is taken before the module is read and compiled,
	// so that a guest at its limit cannot make the host do that work.
	if e := g.tree.reserve(); e != 0 {
		c.Release()
		if e == caps.EAGAIN {
			g.log.Debug("spawn refused: the process tree is full", "max", g.tree.max)
		} else {
			g.log.Debug("spawn refused: its budget is spent")
		}
		return e
	}
	reserved := true // until the child owns the count
	defer func() {
		if reserved {
			g.tree.release()
		}
	}()
	mod, e := g.moduleOf(c) // releases c
	if e != 0 {
		return e
	}
	defer mod.Release() // the child holds it on its own

	holder := g.childHolder(mod)
	t := caps.NewTable(g.kernel, holder, g.table.Max())
	for _, fd := range fds {
		src, err := g.table.Get(fd)
		if err == nil {
			var nc *caps.Cap
			b, i := src.Rights()
			nc, err = g.kernel.Derive(src, caps.Derivation{Holder: holder, Edge: caps.EdgeSpawn, Name: src.Name(), Base: b, Inheriting: i})
			if err == nil {
				nc.SetFlags(src.Flags())
				_, err = t.Insert(nc) // cannot fail: len(fds) ≤ t.Max()
			}
		}
		if err != nil {
			t.CloseAll()
			return caps.ErrnoOf(err)
		}
	}

	child := g.newChild(mod, t, data)
	reserved = false // the child releases it when it ends, or Abandon does
	child.argdataCharge, charge = charge, 0
	pr := &process{g: child}
	pc := g.kernel.Mint(g.holder, pr, caps.RightsProcessBase, 0, holder.ID, "proc_spawn by "+g.ID)
	pfd, err := g.table.Insert(pc)
	if err != nil {
		g.kernel.Close(pc) // the child never started: Kill is a no-op
		child.Abandon()
		t.CloseAll()
		return caps.ErrnoOf(err)
	}
	g.startChild(child)
	g.log.Debug("spawned", "child", holder.ID, "module", mod.Name, "handles", len(fds), "process_fd", pfd)
	return writeU32(m, procOut, pfd)
}

// spawnCheck is what proc_spawn checks before it makes anything: room in
// the table for the process handle (EMFILE), as for any call that adds a
// handle, and every handle of fds open (EBADF) and not revoked
// (ENOTCAPABLE). Refused, the spawn has made no copy for the child (nor a
// child's table to close, every copy in it made and closed in the audit
// log).
func (g *Guest) spawnCheck(fds []uint32) Errno {
	if e := g.roomFor(1); e != 0 {
		return e
	}
	for _, fd := range fds {
		c, err := g.table.Get(fd)
		if err != nil {
			return caps.ErrnoOf(err)
		}
		if c.Revoked() {
			return caps.ENOTCAPABLE
		}
	}
	return 0
}

// procExec replaces the calling guest's program with the module fd
// designates. The new program keeps the guest's id, holder and children;
// its table is exactly the listed handles, renumbered from 0 in list
// order. A handle is moved, not copied: it keeps its capability (id,
// rights, provenance); a handle listed twice gets a copy (edge dup) for
// each repetition. Every handle not listed is closed. On success the call
// does not return; on failure nothing has changed.
func procExec(g *Guest, m api.Memory, p []uint64) Errno {
	fd, dataPtr, dataLen, fdsPtr, fdsLen := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3]), uint32(p[4])
	data, fds, e := g.procArgs(m, dataPtr, dataLen, fdsPtr, fdsLen)
	if e != 0 {
		return e
	}
	handed := false
	defer func() {
		if !handed {
			g.tree.giveMemory(int64(len(data)))
		}
	}()
	c, e := g.acquire(fd, caps.RightProcExec)
	if e != 0 {
		return e
	}
	mod, e := g.moduleOf(c) // releases c
	if e != 0 {
		return e
	}
	defer func() {
		if !handed {
			mod.Release()
		}
	}()

	kept := make([]*caps.Cap, len(fds))
	first := make(map[uint32]int, len(fds)) // fd → index of its first listing
	for i, fd := range fds {
		if _, dup := first[fd]; dup {
			continue
		}
		c, err := g.table.Get(fd)
		if err != nil {
			return caps.ErrnoOf(err)
		}
		if c.Revoked() {
			return caps.ENOTCAPABLE // as proc_spawn, which derives from it
		}
		first[fd], kept[i] = i, c
	}
	// Copies for repeated handles are made before anything moves, so a
	// failure leaves the guest as it was.
	for i, fd := range fds {
		j := first[fd]
		if j == i {
			continue
		}
		src := kept[j]
		b, in := src.Rights()
		nc, err := g.kernel.Derive(src, caps.Derivation{Holder: g.holder, Edge: caps.EdgeDup, Name: src.Name(), Base: b, Inheriting: in})
		if err != nil {
			for k := range i {
				if first[fds[k]] != k {
					g.kernel.Close(kept[k])
				}
			}
			return caps.ErrnoOf(err)
		}
		nc.SetFlags(src.Flags())
		kept[i] = nc
	}
	t := caps.NewTable(g.kernel, g.holder, g.table.Max())
	for fd := range first {
		_, _ = g.table.Take(fd) // this guest's own table: only it changes it
	}
	for _, c := range kept {
		_, _ = t.Insert(c) // cannot fail: len(fds) ≤ t.Max()
	}
	g.log.Debug("exec", "module", mod.Name, "handles", len(fds))
	g.exec = &execRequest{module: mod, table: t, argdata: data, charge: int64(len(data))}
	handed = true // the request holds mod and data's charge now
	g.exit(0)
	return 0
}
