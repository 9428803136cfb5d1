package abi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero"
	"golang.org/x/sys/unix"
)

// A differential test of the calls on a handle, as fsdiff_test.go's is of
// the path calls: the same sequence of fd_* and file_* calls on handles
// opened beneath a grant runs through the handlers a guest calls (the
// native ones, or WASI's) and, on an identical copy of the tree, directly
// on Linux (readv(2), pwritev(2), lseek(2), fcntl(2), ftruncate(2),
// utimensat(2), fallocate(2), posix_fadvise(2), fsync(2), getdents(2),
// dup2(2), close(2)). Every result must agree: errno, byte counts, the
// bytes read and the rest of the buffers read into, offsets, stat fields,
// the flags fd_fdstat_get shows, listings, and after every step every
// handle's offset and append mode and the whole of both trees. The stat
// sandboxd reports is also held to the host's stat of the same object:
// device, inode, links, size and the three times. Where docs/ABI.md and
// docs/WASI.md (Handles and Linux) say sandboxd differs from Linux on
// purpose, fdDiffAllowed says how, and the comparison allows for that and
// nothing else.

// Kinds of fdDiffOp.
const (
	fdkOpen = iota
	fdkClose
	fdkRead
	fdkWrite
	fdkPread
	fdkPwrite
	fdkSeek
	fdkFdstat
	fdkSetFlags
	fdkFilestat
	fdkSetSize
	fdkSetTimes
	fdkAllocate
	fdkAdvise
	fdkDatasync
	fdkSync
	fdkReaddir
	fdkDup
	fdkRenumber
	fdkNarrow
	fdkKinds
	// fdkMkfifo makes a FIFO at op.path on the host, in both trees: for
	// named cases only, since a read of an empty FIFO waits for good.
	fdkMkfifo = fdkKinds
	// fdkRemove removes op.path on the host, in both trees: a name
	// gone from beneath a directory a listing was taken of.
	fdkRemove = fdkKinds + 1
	// fdkCreate1 makes a byte object (fd_create1; WASI has none), and on
	// Linux a memfd_create(2) file.
	fdkCreate1 = fdkKinds + 2
	// fdkHostFcntl is fcntl(2) on the host descriptor of handle op.h, on
	// both sides, as another program holding the same file could make it
	// (op.arg: F_SETPIPE_SZ to op.n bytes, or F_SETFL adding the flags
	// op.n): for named cases only.
	fdkHostFcntl = fdkKinds + 3
)

var fdkNames = [fdkKinds + 4]string{"open", "close", "read", "write", "pread", "pwrite", "seek", "fdstat", "set_flags", "filestat", "set_size", "set_times", "allocate", "advise", "datasync", "sync", "readdir", "dup", "renumber", "narrow", "mkfifo", "remove", "create1", "host_fcntl"}

// fdIOV is one iovec: at bytes into the data area, n bytes long.
type fdIOV struct{ at, n uint32 }

// fdDiffOp is one call on a handle.
type fdDiffOp struct {
	kind  int
	wasi  bool
	h, to int     // the handle (index into the handles; one past the last is a closed fd), renumber's target
	iov   []fdIOV // read, write, pread, pwrite
	off   uint64  // pread, pwrite, seek: offset; set_size: size; allocate, advise: offset; readdir: cookie; set_times: atim
	n     uint64  // allocate, advise: length; readdir: buffer size; set_times: mtim
	arg   uint32  // seek: whence; set_flags: fdflags; set_times: fst flags; advise: advice, each in the ABI's numbering
	path  string  // open
	mode  int     // open: access mode
	oflag uint32  // open: oflags
	right caps.Rights
}

func (op fdDiffOp) String() string {
	s := fdkNames[op.kind]
	if op.wasi {
		s = "wasi " + s
	}
	switch op.kind {
	case fdkOpen:
		return fmt.Sprintf("%s(%q, mode %d, oflags %#x, fdflags %#x)", s, op.path, op.mode, op.oflag, op.arg)
	case fdkRead, fdkWrite, fdkPread, fdkPwrite:
		iov := fmt.Sprint(op.iov)
		if len(op.iov) > 4 {
			iov = fmt.Sprintf("%d iovecs %v…", len(op.iov), op.iov[:2])
		}
		return fmt.Sprintf("%s(h %d, %s, off %#x)", s, op.h, iov, op.off)
	case fdkRenumber, fdkDup:
		return fmt.Sprintf("%s(h %d, to %d)", s, op.h, op.to)
	case fdkNarrow:
		return fmt.Sprintf("%s(h %d, drop %v)", s, op.h, op.right)
	}
	return fmt.Sprintf("%s(h %d, off %#x, n %#x, arg %#x)", s, op.h, op.off, op.n, op.arg)
}

// fdDiffResult is what one call did, in terms both sides share.
type fdDiffResult struct {
	errno caps.Errno
	n     int
	off   int64  // seek: the new offset
	data  string // read: the data area; readdir: the listing; fdstat: the flags
	stat  string // filestat: type, size, links; set_times: the times set
}

// Guest memory of the fd differential: the result, a stat, a path, the
// iovecs, a listing's buffer and the data area the iovecs point into,
// more than 4 MiB so that 1024 iovecs of it sum past 4 GiB.
const (
	fdOut     = 0
	fdStatAt  = 64
	fdPathAt  = 1024
	fdIOVAt   = 4096
	fdDirAt   = 32768
	fdDirMax  = 32768
	fdDataAt  = 65536
	fdDataLen = 4<<20 + 4096
	fdPages   = 80
	fdBadSfd  = 1000   // no table holds it
	fdBadLfd  = 999999 // nor does this process
)

// newFdDiffEnv is a runtime and a guest of fdPages pages.
func newFdDiffEnv(t testing.TB) *fuzzEnv {
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(ctx) })
	mod := bytes.Clone(fuzzModule)
	mod[12] = fdPages // the memory section's minimum
	cm, err := rt.r.CompileModule(ctx, mod)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rt.r.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	return &fuzzEnv{rt: rt, mod: m, dir: t.TempDir()}
}

// fdHandle is one handle on both sides; obj names the open file
// description it shares with the handles dup'd from it.
type fdHandle struct {
	sfd uint32
	lfd int
	obj int
}

// fdRun is one run of the differential.
type fdRun struct {
	t       testing.TB
	sbx     *sbxFS
	lin     *linFS
	handles []fdHandle
	objs    int
	lmem    []byte             // Linux's data area
	snaps   map[int][]fdDirent // Linux's listing of each directory object, from cookie 0
	ops     []fdDiffOp
	ended   bool // a limit sandboxd has and Linux has not was reached
}

// runFdDiff runs ops on both sides and fails at the first result, or the
// first state, on which they differ.
func runFdDiff(t testing.TB, env *fuzzEnv, ops []fdDiffOp) {
	dir := t.TempDir()
	r := &fdRun{t: t, lmem: make([]byte, fdDataLen), snaps: map[int][]fdDirent{}}
	r.sbx = newSbxFS(t, env, makePathDiffTree(t, dir, pdSbx))
	defer r.sbx.close()
	r.lin = newLinFS(t, makePathDiffTree(t, dir, pdLin))
	r.handles = []fdHandle{{sfd: r.sbx.rootFD, lfd: r.lin.root}}
	defer func() {
		for _, h := range r.handles {
			unix.Close(h.lfd)
		}
	}()
	for i, op := range ops {
		if r.ended {
			break
		}
		r.ops = ops[:i+1]
		r.step(op)
	}
}

// byteLimited is whether got, which differs from what Linux did, is a
// byte object stopping at a limit Linux's memfd does not have
// (docs/ABI.md, Handles and Linux): a write or size past
// caps.MaxByteObjectSize is EFBIG, one the guest's memory cannot hold
// ENOSPC, and a write stops at the first buffer that would cross either.
// The two sides differ from then on, and the run ends; byteLimited logs
// why.
func (r *fdRun) byteLimited(op fdDiffOp, h fdHandle, got, want fdDiffResult) bool {
	c, err := r.sbx.g.table.Get(h.sfd)
	if err != nil || c.Kind() != caps.KindByteObject {
		return false
	}
	switch op.kind {
	case fdkWrite, fdkPwrite, fdkSetSize:
	default:
		return false
	}
	limited := want.errno == 0 && (got.errno == caps.EFBIG || got.errno == caps.ENOSPC || got.errno == 0 && got.n < want.n)
	if limited {
		r.t.Logf("%v: %+v at a byte object's limit, where Linux %+v; the run ends", op, got, want)
	}
	return limited
}

// handle is the handle op.h picks: one of the open ones, or (one past
// the last) a closed fd.
func (r *fdRun) handle(k int) (fdHandle, int) {
	k %= len(r.handles) + 1
	if k == len(r.handles) {
		return fdHandle{sfd: fdBadSfd, lfd: fdBadLfd, obj: -1}, k
	}
	return r.handles[k], k
}

func (r *fdRun) step(op fdDiffOp) {
	h, _ := r.handle(op.h)
	got, sfd := fdSbxOps[op.kind](r, op, h)
	if fdDiffAllowed(r, op, h, got) == pdSkip {
		r.compareState(op)
		return
	}
	want, lfd := fdLinOps[op.kind](r, op, h)
	if got != want && r.byteLimited(op, h, got, want) {
		r.ended = true
		return
	}
	if got != want && !fdDiffTolerated(r, op, h, got, want) {
		r.t.Fatalf("%v:\n sandboxd %+v\n linux    %+v\nops: %v", op, got, want, r.ops)
	}
	r.keep(op, got.errno, sfd, lfd)
	r.compareState(op)
}

// keep updates the handles after op, which both sides ran alike.
func (r *fdRun) keep(op fdDiffOp, errno caps.Errno, sfd uint32, lfd int) {
	if errno != 0 {
		return
	}
	h, k := r.handle(op.h)
	switch op.kind {
	case fdkOpen, fdkCreate1:
		r.objs++
		r.handles = append(r.handles, fdHandle{sfd: sfd, lfd: lfd, obj: r.objs})
	case fdkDup:
		r.handles = append(r.handles, fdHandle{sfd: sfd, lfd: lfd, obj: h.obj})
	case fdkClose:
		r.handles = append(r.handles[:k], r.handles[k+1:]...)
	case fdkRenumber:
		_, j := r.handle(op.to)
		r.handles[j].obj = h.obj
		if op.wasi && j != k {
			unix.Close(h.lfd)
			r.handles = append(r.handles[:k], r.handles[k+1:]...)
		}
	}
}

// compareState compares, after op, every handle's offset and append mode
// and both trees.
func (r *fdRun) compareState(op fdDiffOp) {
	for _, h := range r.handles {
		c, err := r.sbx.g.table.Get(h.sfd)
		if err != nil {
			r.t.Fatalf("after %v: handle %d: %v", op, h.sfd, err)
		}
		p, ok := c.Resource().(caps.Positional)
		if !ok || c.Kind() != caps.KindFile && c.Kind() != caps.KindByteObject {
			continue
		}
		soff, err := p.Seek(0, io.SeekCurrent)
		serr := caps.ErrnoOf(err)
		loff, err := unix.Seek(h.lfd, 0, io.SeekCurrent)
		lerr := caps.ErrnoOf(err)
		fl, _ := unix.FcntlInt(uintptr(h.lfd), unix.F_GETFL, 0)
		sApp, lApp := fdFlags(c)&caps.FlagAppend != 0, fl&unix.O_APPEND != 0
		if serr != 0 || lerr != 0 {
			soff, loff = -1, -1 // a FIFO has no offset
		}
		if soff != loff || serr != lerr || sApp != lApp {
			r.t.Fatalf("after %v: handle %d/%d: offset %d (%v) append %v, linux %d (%v) append %v\nops: %v", op, h.sfd, h.lfd, soff, serr, sApp, loff, lerr, lApp, r.ops)
		}
	}
	if s, l := fdTreeOf(r.t, r.sbx.base), fdTreeOf(r.t, r.lin.base); s != l {
		r.t.Fatalf("after %v: the trees differ:\n sandboxd:\n%s\n linux:\n%s\nops: %v", op, s, l, r.ops)
	}
}

// setTimesFlagsInvalid reports whether set_times op has flags both ABIs
// refuse before they look its handle up: an unknown flag, or (native) none.
func setTimesFlagsInvalid(op fdDiffOp) bool {
	return op.arg&^fsTimes != 0 || !op.wasi && op.arg == 0
}

// fdNeeds is the rights op needs on its handle.
func fdNeeds(op fdDiffOp) (caps.Rights, bool) {
	switch op.kind {
	case fdkRead:
		return caps.RightFDRead, true
	case fdkWrite:
		return caps.RightFDWrite, true
	case fdkPread:
		return caps.RightFDRead | caps.RightFDSeek, true
	case fdkPwrite:
		return caps.RightFDWrite | caps.RightFDSeek, true
	case fdkSeek:
		return caps.RightFDSeek, true
	case fdkSetFlags:
		return caps.RightFDStatPutFlags, true
	case fdkFilestat:
		return caps.RightFileStatFGet, true
	case fdkSetSize:
		return caps.RightFileStatFPutSize, true
	case fdkSetTimes:
		// Flags that name no time, or an unknown one, are EINVAL before
		// the handle is looked at (fdClosedAllowed): no right is asked.
		return caps.RightFileStatFPutTimes, !setTimesFlagsInvalid(op)
	case fdkAllocate:
		return caps.RightFileAllocate, true
	case fdkAdvise:
		return caps.RightFileAdvise, true
	case fdkDatasync:
		return caps.RightFDDatasync, true
	case fdkSync:
		return caps.RightFDSync, true
	case fdkReaddir:
		return caps.RightFileReaddir, true
	}
	return 0, false
}

// fdIsTell is whether a seek only asks where the offset is, which
// fd_tell alone allows.
func fdIsTell(op fdDiffOp) bool {
	return op.kind == fdkSeek && op.off == 0 && (op.wasi && op.arg == 1 || !op.wasi && op.arg == whenceCur)
}

// fdDiffAllowed checks got, sandboxd's result of op, against the
// differences kept on purpose, and says whether Linux is still to be
// asked.
func fdDiffAllowed(r *fdRun, op fdDiffOp, h fdHandle, got fdDiffResult) int {
	c, err := r.sbx.g.table.Get(h.sfd)
	switch {
	case op.kind == fdkNarrow:
		return pdSkip // sandboxd's rights alone
	case op.kind == fdkOpen && got.errno == caps.ENOTCAPABLE && r.grantNarrowed():
		return pdSkip // the grant lacks a right the open needs
	}
	if err != nil {
		return fdClosedAllowed(r, op, got) // a closed fd: EBADF on both, mostly
	}
	if want, ok := fdRightsAnswer(op, c, got); ok {
		if got.errno != want {
			r.t.Fatalf("%v on a handle without the right it needs: %+v, want %v\nops: %v", op, got, want, r.ops)
		}
		return pdSkip
	}
	if want, why, ok := fdDeliberate(r, op, c); ok {
		if got.errno != want {
			r.t.Fatalf("%v (%s): %+v, want %v\nops: %v", op, why, got, want, r.ops)
		}
		return pdSkip
	}
	return pdCompare
}

// grantNarrowed is whether the grant, which every open goes through,
// holds fewer rights than it was granted with.
func (r *fdRun) grantNarrowed() bool {
	c, err := r.sbx.g.table.Get(r.sbx.rootFD)
	if err != nil {
		return false
	}
	b, i := c.Rights()
	gb, gi := caps.GrantRights(caps.KindDirectory, false)
	return b != gb || i != gi
}

// fdClosedAllowed is fdDiffAllowed for a closed fd: what sandboxd checks
// before it looks the handle up, where Linux has nothing to check, is its
// answer (flags of set_times that set no time: EINVAL); and an offset or
// size of 2^63 or more, which pread(2), pwrite(2) and ftruncate(2) refuse
// before they look the descriptor up (EINVAL), is EBADF: a handle the
// guest does not hold is EBADF whatever else it passed.
func fdClosedAllowed(r *fdRun, op fdDiffOp, got fdDiffResult) int {
	want := caps.Errno(0)
	switch {
	case op.kind == fdkSetTimes && setTimesFlagsInvalid(op):
		want = caps.EINVAL
	case (op.kind == fdkSetSize || op.kind == fdkPread || op.kind == fdkPwrite) && op.off > math.MaxInt64:
		want = caps.EBADF
	case op.kind == fdkOpen && got.errno == caps.EBADF:
		return pdSkip // openat(2) checks its flags first (EINVAL for CREAT|DIRECTORY); the handle is looked up first here
	default:
		return pdCompare
	}
	if got.errno != want {
		r.t.Fatalf("%v on a closed fd: %+v, want %v\nops: %v", op, got, want, r.ops)
	}
	return pdSkip
}

// fdRightsAnswer is what op answers on c when c lacks a right op needs:
// ENOTCAPABLE, or for WASI's reads, preads, pwrites and seeks on a
// directory EISDIR (docs/WASI.md, Paths and Linux).
func fdRightsAnswer(op fdDiffOp, c *caps.Cap, got fdDiffResult) (caps.Errno, bool) {
	need, ok := fdNeeds(op)
	b, _ := c.Rights()
	if !ok || b.Has(need) || fdIsTell(op) && b.Has(caps.RightFDTell) {
		return 0, false
	}
	if op.kind == fdkSeek && op.wasi && op.arg > 2 {
		return 0, false // WASI's whence is checked first, EINVAL as on Linux
	}
	if op.wasi && c.Kind() == caps.KindDirectory {
		switch op.kind {
		case fdkRead, fdkPread, fdkPwrite, fdkSeek:
			return caps.EISDIR, true
		}
	}
	return caps.ENOTCAPABLE, true
}

// fdDeliberate is sandboxd's answer to op on c where it differs from
// Linux's on purpose (docs/ABI.md, Handles and Linux), and why.
func fdDeliberate(r *fdRun, op fdDiffOp, c *caps.Cap) (caps.Errno, string, bool) {
	switch op.kind {
	case fdkSetFlags:
		return fdFlagsDeliberate(op, c)
	case fdkSetTimes:
		return fdTimesDeliberate(op)
	case fdkSetSize:
		if op.off > math.MaxInt64 {
			return caps.EFBIG, "a size past the largest off_t", true
		}
	case fdkRenumber:
		if _, j := r.handle(op.to); j == len(r.handles) {
			return caps.EBADF, "renumbered onto a closed fd", true
		}
	}
	return 0, "", false
}

// fdFlagsDeliberate is fd_fdstat_set_flags's deliberate answers: an
// unknown flag is EINVAL, a change of DSYNC, RSYNC or SYNC ENOTSUP (Linux
// ignores both), and a change of APPEND on what has no append mode (a
// directory) ENOTSUP, and without the rights appendChange names
// ENOTCAPABLE.
func fdFlagsDeliberate(op fdDiffOp, c *caps.Cap) (caps.Errno, string, bool) {
	const syncFlags = caps.FlagDsync | caps.FlagRsync | caps.FlagSync
	old := fdFlags(c)
	switch {
	case op.arg&^fdFlagsAll != 0:
		return caps.EINVAL, "an unknown flag", true
	case (op.arg^old)&syncFlags != 0:
		return caps.ENOTSUP, "a change of a synchronised-I/O flag", true
	case (op.arg^old)&caps.FlagAppend == 0:
		return 0, "", false
	case c.Kind() != caps.KindFile:
		return caps.ENOTSUP, "APPEND on what has no append mode", true
	}
	if b, _ := c.Rights(); !b.Has(appendChange(op.arg&caps.FlagAppend != 0)) {
		return caps.ENOTCAPABLE, "APPEND changed without the rights to", true
	}
	return 0, "", false
}

// fdTimesDeliberate is the set_times answers Linux has no equivalent
// for: a flag that is no time flag, a time and its _NOW form together,
// and (native) no flag at all are EINVAL, as is a time of more
// nanoseconds than an int64 holds.
func fdTimesDeliberate(op fdDiffOp) (caps.Errno, string, bool) {
	f := op.arg
	switch {
	case f&^fsTimes != 0 || !op.wasi && f == 0:
		return caps.EINVAL, "flags that set no time", true
	case f&(fsAtim|fsAtimNow) == fsAtim|fsAtimNow || f&(fsMtim|fsMtimNow) == fsMtim|fsMtimNow:
		return caps.EINVAL, "a time and its _NOW form", true
	case f&fsAtim != 0 && op.off > math.MaxInt64 || f&fsMtim != 0 && op.n > math.MaxInt64:
		return caps.EINVAL, "a time past an int64 of nanoseconds", true
	}
	return 0, "", false
}

// fdDiffTolerated is whether got and want, which differ, differ only as
// documented: NONBLOCK belongs to a handle in sandboxd, to the open file
// description (which dup'd handles share) on Linux.
func fdDiffTolerated(r *fdRun, op fdDiffOp, h fdHandle, got, want fdDiffResult) bool {
	if op.kind != fdkFdstat || got.errno != 0 || want.errno != 0 || r.shared(h) == 0 {
		return false
	}
	return fdFlagsWithout(got.data, caps.FlagNonblock) == fdFlagsWithout(want.data, caps.FlagNonblock)
}

// shared is how many other handles share h's open file description.
func (r *fdRun) shared(h fdHandle) int {
	n := 0
	for _, o := range r.handles {
		if o.obj == h.obj && o.sfd != h.sfd {
			n++
		}
	}
	return n
}

func fdFlagsWithout(s string, f uint32) string {
	var v uint32
	fmt.Sscanf(s, "flags %x", &v)
	return fmt.Sprintf("flags %x", v&^f)
}

// The sandboxd side.

var fdSbxOps = [fdkKinds + 4]func(*fdRun, fdDiffOp, fdHandle) (fdDiffResult, uint32){
	fdkOpen: (*fdRun).sOpen,
	fdkClose: func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
		return r.sErr("fd_close", op, h.sfd), 0
	},
	fdkRead:     (*fdRun).sIO,
	fdkWrite:    (*fdRun).sIO,
	fdkPread:    (*fdRun).sIO,
	fdkPwrite:   (*fdRun).sIO,
	fdkSeek:     (*fdRun).sSeek,
	fdkFdstat:   (*fdRun).sFdstat,
	fdkSetFlags: (*fdRun).sSetFlags,
	fdkFilestat: (*fdRun).sFilestat,
	fdkSetSize:  (*fdRun).sSetSize,
	fdkSetTimes: (*fdRun).sSetTimes,
	fdkAllocate: func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
		return r.sErr("fd_allocate", op, h.sfd, op.off, op.n), 0
	},
	fdkAdvise: func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
		name := map[bool]string{false: "file_advise", true: "wasi fd_advise"}[op.wasi]
		return fdDiffResult{errno: r.sbx.call(r.t, name, uint64(h.sfd), op.off, op.n, uint64(op.arg))}, 0
	},
	fdkDatasync: func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
		return r.sErr("fd_datasync", op, h.sfd), 0
	},
	fdkSync:     func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, uint32) { return r.sErr("fd_sync", op, h.sfd), 0 },
	fdkReaddir:  (*fdRun).sReaddir,
	fdkDup:      (*fdRun).sDup,
	fdkRenumber: (*fdRun).sRenumber,
	fdkNarrow:   (*fdRun).sNarrow,
	fdkMkfifo: func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
		return fdErr(unix.Mkfifo(filepath.Join(r.sbx.base, "root", op.path), 0o644)), 0
	},
	fdkCreate1: func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
		if e := r.sbx.call(r.t, "fd_create1", filetypeSharedMemory, fdOut); e != 0 {
			return fdDiffResult{errno: e}, 0
		}
		return fdDiffResult{}, uint32(r.sbx.u32(fdOut))
	},
	fdkRemove: func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
		return fdErr(os.Remove(filepath.Join(r.sbx.base, "root", op.path))), 0
	},
	fdkHostFcntl: (*fdRun).sHostFcntl,
}

// sHostFcntl is fdHostFcntl on the host descriptor behind a file handle.
func (r *fdRun) sHostFcntl(op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
	c, err := r.sbx.g.table.Get(h.sfd)
	if err != nil {
		return fdErr(err), 0
	}
	f, ok := c.Resource().(interface{ OS() *os.File })
	if !ok {
		r.t.Fatalf("%v: handle %d has no host descriptor", op, h.sfd)
	}
	rc, err := f.OS().SyscallConn()
	if err != nil {
		return fdErr(err), 0
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fdHostFcntl(int(fd), op) }); err != nil {
		return fdErr(err), 0
	}
	return fdErr(ferr), 0
}

// fdHostFcntl is op's fcntl(2) on fd.
func fdHostFcntl(fd int, op fdDiffOp) error {
	if op.arg != unix.F_SETFL {
		_, err := unix.FcntlInt(uintptr(fd), int(op.arg), int(op.n))
		return err
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl|int(op.n))
	}
	return err
}

// sErr calls the call of name both ABIs have (WASI's when op.wasi; the
// native file_allocate for fd_allocate), and returns its errno alone.
func (r *fdRun) sErr(name string, op fdDiffOp, fd uint32, params ...uint64) fdDiffResult {
	switch {
	case op.wasi:
		name = "wasi " + name
	case name == "fd_allocate":
		name = "file_allocate"
	}
	return fdDiffResult{errno: r.sbx.call(r.t, name, append([]uint64{uint64(fd)}, params...)...)}
}

// fdRights are what an open asks for by access mode: every right a
// file or directory may hold that reads, or that writes.
var fdRights = [3]caps.Rights{
	pdRdonly: caps.RightFDRead | caps.RightFDSeek | caps.RightFDTell | caps.RightFileReaddir | caps.RightFileStatFGet |
		caps.RightFileAdvise | caps.RightFDSync | caps.RightFDStatPutFlags | caps.RightFileStatFPutTimes,
	pdWronly: caps.RightFDWrite | caps.RightFDSeek | caps.RightFDTell | caps.RightFileStatFGet | caps.RightFileStatFPutSize |
		caps.RightFileAllocate | caps.RightFDDatasync | caps.RightFDSync | caps.RightFileAdvise |
		caps.RightFDStatPutFlags | caps.RightFileStatFPutTimes,
}

func init() { fdRights[pdRdwr] = fdRights[pdRdonly] | fdRights[pdWronly] }

// sOpen is file_open or WASI's path_open of op.path beneath the grant,
// following links, with op's access mode, oflags and fdflags.
func (r *fdRun) sOpen(op fdDiffOp, _ fdHandle) (fdDiffResult, uint32) {
	s := r.sbx
	p, n := s.str(fdPathAt, op.path)
	var e caps.Errno
	if op.wasi {
		e = s.call(r.t, "wasi path_open", uint64(s.rootFD), lookupSymlinkFollow, p, n, uint64(op.oflag), WASIRightsOf(fdRights[op.mode]), 0, uint64(op.arg), fdOut)
	} else {
		st := fdstat{base: fdRights[op.mode], flags: uint16(op.arg)}.encode()
		s.mem().Write(fdStatAt, st[:])
		e = s.call(r.t, "file_open", uint64(s.rootFD), lookupSymlinkFollow, p, n, uint64(op.oflag), fdStatAt, fdOut)
	}
	if e != 0 {
		return fdDiffResult{errno: e}, 0
	}
	return fdDiffResult{}, uint32(s.u32(fdOut))
}

// putIOVs fills the data area with 0xee and puts op's iovecs at fdIOVAt;
// for a write, the data area holds fdWriteData instead.
func (r *fdRun) putIOVs(op fdDiffOp) {
	m := r.sbx.mem()
	m.Write(fdDataAt, fdDataFor(op))
	b := make([]byte, 8*len(op.iov))
	for i, v := range op.iov {
		binary.LittleEndian.PutUint32(b[8*i:], fdDataAt+v.at)
		binary.LittleEndian.PutUint32(b[8*i+4:], v.n)
	}
	m.Write(fdIOVAt, b)
}

// fdDataFor is the data area before op: a pattern to write, or 0xee to
// read into.
func fdDataFor(op fdDiffOp) []byte {
	b := make([]byte, fdDataEnd(op))
	for i := range b {
		if op.kind == fdkWrite || op.kind == fdkPwrite {
			b[i] = byte('a' + (i+op.h)%26)
		} else {
			b[i] = 0xee
		}
	}
	return b
}

// fdDataEnd is the end of the part of the data area op's iovecs reach.
func fdDataEnd(op fdDiffOp) int {
	end := 0
	for _, v := range op.iov {
		end = max(end, int(v.at)+int(v.n))
	}
	return min(end, fdDataLen)
}

// sIO is fd_read, fd_write, fd_pread or fd_pwrite through op's iovecs.
func (r *fdRun) sIO(op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
	r.putIOVs(op)
	name := map[int]string{fdkRead: "fd_read", fdkWrite: "fd_write", fdkPread: "fd_pread", fdkPwrite: "fd_pwrite"}[op.kind]
	if op.wasi {
		name = "wasi " + name
	}
	params := []uint64{uint64(h.sfd), fdIOVAt, uint64(len(op.iov))}
	if op.kind == fdkPread || op.kind == fdkPwrite {
		params = append(params, op.off)
	}
	var res fdDiffResult
	res.errno = r.sbx.call(r.t, name, append(params, fdOut)...)
	if res.errno == 0 {
		res.n = r.sbx.u32(fdOut)
		if op.kind == fdkRead || op.kind == fdkPread {
			res.data = string(r.sbx.bytes(fdDataAt, fdDataEnd(op)))
		}
	}
	return res, 0
}

func (r *fdRun) sSeek(op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
	name := map[bool]string{false: "fd_seek", true: "wasi fd_seek"}[op.wasi]
	if op.wasi && fdIsTell(op) && op.n == 1 {
		name = "wasi fd_tell" // n marks a tell made through fd_tell
	}
	params := []uint64{uint64(h.sfd), op.off, uint64(op.arg), fdOut}
	if name == "wasi fd_tell" {
		params = []uint64{uint64(h.sfd), fdOut}
	}
	var res fdDiffResult
	if res.errno = r.sbx.call(r.t, name, params...); res.errno == 0 {
		v, _ := r.sbx.mem().ReadUint64Le(fdOut)
		res.off = int64(v)
	}
	return res, 0
}

// sFdstat is the type and the flags fd_fdstat_get (fd_stat_get) shows.
func (r *fdRun) sFdstat(op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
	name := map[bool]string{false: "fd_stat_get", true: "wasi fd_fdstat_get"}[op.wasi]
	var res fdDiffResult
	if res.errno = r.sbx.call(r.t, name, uint64(h.sfd), fdStatAt); res.errno == 0 {
		b := r.sbx.bytes(fdStatAt, 24)
		typ := fdTypeName(op.wasi, b[0])
		res.data = fmt.Sprintf("flags %x %s", uint32(binary.LittleEndian.Uint16(b[2:]))&^fdSyncFlags, typ)
	}
	return res, 0
}

// fdSyncFlags are the synchronised-I/O flags, which fdstat comparisons
// leave out: Linux shows O_RSYNC as O_SYNC, and O_SYNC as O_DSYNC too.
const fdSyncFlags = caps.FlagDsync | caps.FlagRsync | caps.FlagSync

func (r *fdRun) sSetFlags(op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
	if op.wasi {
		return fdDiffResult{errno: r.sbx.call(r.t, "wasi fd_fdstat_set_flags", uint64(h.sfd), uint64(op.arg))}, 0
	}
	st := fdstat{flags: uint16(op.arg)}.encode()
	r.sbx.mem().Write(fdStatAt, st[:])
	return fdDiffResult{errno: r.sbx.call(r.t, "fd_stat_put", uint64(h.sfd), fdStatAt, fdstatFlags)}, 0
}

// sFilestat is file_stat_fget or fd_filestat_get: type, size and links,
// compared with Linux's; device, inode, links, size and times are held to
// the host's stat of the object the handle designates.
func (r *fdRun) sFilestat(op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
	name := map[bool]string{false: "file_stat_fget", true: "wasi fd_filestat_get"}[op.wasi]
	var res fdDiffResult
	if res.errno = r.sbx.call(r.t, name, uint64(h.sfd), fdStatAt); res.errno != 0 {
		return res, 0
	}
	b := r.sbx.bytes(fdStatAt, wasiFilestatSize)
	le := binary.LittleEndian
	var typ string
	var st [7]uint64 // dev, ino, nlink, size, atim, mtim, ctim
	if op.wasi {
		typ = fdTypeName(true, b[16])
		st = [7]uint64{le.Uint64(b), le.Uint64(b[8:]), le.Uint64(b[24:]), le.Uint64(b[32:]), le.Uint64(b[40:]), le.Uint64(b[48:]), le.Uint64(b[56:])}
	} else {
		typ = fdTypeName(false, b[16])
		st = [7]uint64{le.Uint64(b), le.Uint64(b[8:]), uint64(le.Uint32(b[20:])), le.Uint64(b[24:]), le.Uint64(b[32:]), le.Uint64(b[40:]), le.Uint64(b[48:])}
	}
	if c, _ := r.sbx.g.table.Get(h.sfd); c.Kind() == caps.KindByteObject {
		// No host object: its link count is 1, where memfd's is 0.
		res.stat = fmt.Sprintf("%s size %d", typ, st[3])
		return res, 0
	}
	if host := r.hostStat(h); st != host {
		r.t.Fatalf("%v: sandboxd's stat %v, the host's of the same object %v\nops: %v", op, st, host, r.ops)
	}
	res.stat = fmt.Sprintf("%s size %d nlink %d", typ, st[3], st[2])
	return res, 0
}

// fdTypeName names a filetype of either ABI as fstatOf does. A byte
// object, the native ABI's SHARED_MEMORY and WASI's regular file, is a
// regular file, as memfd_create(2)'s is.
func fdTypeName(wasi bool, t uint8) string {
	if wasi {
		return pdWASITypes[t]
	}
	if t == filetypeSharedMemory {
		return "file"
	}
	return pdTypes[t]
}

// hostStat is the host's fstat(2) of the object h designates in the
// sandboxd tree, as sFilestat reads sandboxd's.
func (r *fdRun) hostStat(h fdHandle) [7]uint64 {
	c, err := r.sbx.g.table.Get(h.sfd)
	if err != nil {
		r.t.Fatal(err)
	}
	var st unix.Stat_t
	switch res := c.Resource().(type) {
	case interface{ OS() *os.File }: // a file, a FIFO
		err = unix.Fstat(int(res.OS().Fd()), &st)
	case *caps.Dir:
		err = unix.Stat(res.HostPath(), &st)
	default:
		r.t.Fatalf("handle %d: a %T", h.sfd, res)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return [7]uint64{st.Dev, st.Ino, st.Nlink, uint64(st.Size), uint64(st.Atim.Nano()), uint64(st.Mtim.Nano()), uint64(st.Ctim.Nano())}
}

func (r *fdRun) sSetSize(op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
	if op.wasi {
		return fdDiffResult{errno: r.sbx.call(r.t, "wasi fd_filestat_set_size", uint64(h.sfd), op.off)}, 0
	}
	var st [filestatSize]byte
	binary.LittleEndian.PutUint64(st[filestatSizeOff:], op.off)
	r.sbx.mem().Write(fdStatAt, st[:])
	return fdDiffResult{errno: r.sbx.call(r.t, "file_stat_fput", uint64(h.sfd), fdStatAt, fsSize)}, 0
}

// sSetTimes sets the times (atim op.off, mtim op.n, flags op.arg), then
// reads back the times of the host object.
func (r *fdRun) sSetTimes(op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
	before := time.Now()
	var res fdDiffResult
	if op.wasi {
		res.errno = r.sbx.call(r.t, "wasi fd_filestat_set_times", uint64(h.sfd), op.off, op.n, uint64(op.arg))
	} else {
		var st [filestatSize]byte
		binary.LittleEndian.PutUint64(st[filestatAtimOff:], op.off)
		binary.LittleEndian.PutUint64(st[filestatMtimOff:], op.n)
		r.sbx.mem().Write(fdStatAt, st[:])
		res.errno = r.sbx.call(r.t, "file_stat_fput", uint64(h.sfd), fdStatAt, uint64(op.arg))
	}
	if res.errno == 0 {
		st := r.hostStat(h)
		res.stat = fdTimes(op, int64(st[4]), int64(st[5]), before, time.Now())
	}
	return res, 0
}

// fdTimes describes the times a set_times left: as they are where op set
// them to a value, "now" where op set them to the time of the call and
// they lie around it (a second before it, for a file system's coarser
// clock), and "kept" where op left them.
func fdTimes(op fdDiffOp, atim, mtim int64, before, after time.Time) string {
	one := func(set, setNow uint32, v int64) string {
		switch {
		case op.arg&setNow != 0:
			if v >= before.Add(-time.Second).UnixNano() && v <= after.UnixNano() {
				return "now"
			}
			return fmt.Sprintf("not now: %d", v)
		case op.arg&set != 0:
			return fmt.Sprint(v)
		}
		return "kept"
	}
	return one(fsAtim, fsAtimNow, atim) + " " + one(fsMtim, fsMtimNow, mtim)
}

// sReaddir is one file_readdir or fd_readdir from op.off into op.n
// bytes: the entries it returned, each with its d_next, type and name,
// d_ino left out, and a last entry cut short as it was cut.
func (r *fdRun) sReaddir(op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
	name := map[bool]string{false: "file_readdir", true: "wasi fd_readdir"}[op.wasi]
	s := r.sbx
	s.mem().Write(fdDirAt, bytes.Repeat([]byte{0xee}, fdDirMax))
	var res fdDiffResult
	if res.errno = s.call(r.t, name, uint64(h.sfd), fdDirAt, op.n, op.off, fdOut); res.errno != 0 {
		return res, 0
	}
	used := s.u32(fdOut)
	res.n = used
	res.data = fdHideIno(s.bytes(fdDirAt, used))
	return res, 0
}

// fdHideIno writes zeros over the d_ino of each entry in a listing's
// buffer (the two trees' inodes differ), as far as the buffer holds it.
func fdHideIno(b []byte) string {
	for i := 0; i < len(b); {
		for j := i + 8; j < i+16 && j < len(b); j++ {
			b[j] = 0
		}
		if i+direntSize > len(b) {
			break
		}
		i += direntSize + int(binary.LittleEndian.Uint32(b[i+16:]))
	}
	return string(b)
}

// sDup is the native fd_dup (WASI has none).
func (r *fdRun) sDup(op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
	var res fdDiffResult
	if res.errno = r.sbx.call(r.t, "fd_dup", uint64(h.sfd), fdOut); res.errno != 0 {
		return res, 0
	}
	return res, uint32(r.sbx.u32(fdOut))
}

// sRenumber is WASI's fd_renumber or the native fd_replace of op.h onto
// op.to.
func (r *fdRun) sRenumber(op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
	to, _ := r.handle(op.to)
	name := map[bool]string{false: "fd_replace", true: "wasi fd_renumber"}[op.wasi]
	return fdDiffResult{errno: r.sbx.call(r.t, name, uint64(h.sfd), uint64(to.sfd))}, 0
}

// sNarrow drops op.right from the handle's base rights: fd_stat_put
// (RIGHTS) or fd_fdstat_set_rights.
func (r *fdRun) sNarrow(op fdDiffOp, h fdHandle) (fdDiffResult, uint32) {
	c, err := r.sbx.g.table.Get(h.sfd)
	if err != nil {
		return fdDiffResult{errno: r.sbx.call(r.t, "fd_stat_put", uint64(h.sfd), fdStatAt, fdstatRights)}, 0
	}
	b, i := c.Rights()
	if op.wasi {
		return fdDiffResult{errno: r.sbx.call(r.t, "wasi fd_fdstat_set_rights", uint64(h.sfd), WASIRightsOf(b&^op.right), WASIRightsOf(i))}, 0
	}
	st := fdstat{base: b &^ op.right, inheriting: i}.encode()
	r.sbx.mem().Write(fdStatAt, st[:])
	return fdDiffResult{errno: r.sbx.call(r.t, "fd_stat_put", uint64(h.sfd), fdStatAt, fdstatRights)}, 0
}

// The Linux side.

var fdLinOps = [fdkKinds + 4]func(*fdRun, fdDiffOp, fdHandle) (fdDiffResult, int){
	fdkOpen:     (*fdRun).lOpen,
	fdkClose:    func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, int) { return fdErr(unix.Close(h.lfd)), -1 },
	fdkRead:     (*fdRun).lIO,
	fdkWrite:    (*fdRun).lIO,
	fdkPread:    (*fdRun).lIO,
	fdkPwrite:   (*fdRun).lIO,
	fdkSeek:     (*fdRun).lSeek,
	fdkFdstat:   (*fdRun).lFdstat,
	fdkSetFlags: (*fdRun).lSetFlags,
	fdkFilestat: func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, int) {
		s, err := fstatOf(h.lfd)
		if c, _ := r.sbx.g.table.Get(h.sfd); err == nil && c != nil && c.Kind() == caps.KindByteObject {
			s, _, _ = strings.Cut(s, " nlink")
		}
		return fdDiffResult{errno: caps.ErrnoOf(err), stat: s}, -1
	},
	fdkSetSize: func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, int) {
		return fdErr(unix.Ftruncate(h.lfd, int64(op.off))), -1
	},
	fdkSetTimes: (*fdRun).lSetTimes,
	fdkAllocate: func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, int) {
		return fdErr(unix.Fallocate(h.lfd, 0, int64(op.off), int64(op.n))), -1
	},
	fdkAdvise: func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, int) {
		return fdErr(unix.Fadvise(h.lfd, int64(op.off), int64(op.n), fdLinuxAdvice(op))), -1
	},
	fdkDatasync: func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, int) { return fdErr(unix.Fdatasync(h.lfd)), -1 },
	fdkSync:     func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, int) { return fdErr(unix.Fsync(h.lfd)), -1 },
	fdkReaddir:  (*fdRun).lReaddir,
	fdkDup: func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, int) {
		fd, err := unix.FcntlInt(uintptr(h.lfd), unix.F_DUPFD_CLOEXEC, 0)
		return fdErr(err), fd
	},
	fdkRenumber: (*fdRun).lRenumber,
	fdkMkfifo: func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, int) {
		return fdErr(unix.Mkfifo(filepath.Join(r.lin.base, "root", op.path), 0o644)), -1
	},
	fdkCreate1: func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, int) {
		fd, err := unix.MemfdCreate("bytes", unix.MFD_CLOEXEC)
		return fdErr(err), fd
	},
	fdkRemove: func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, int) {
		return fdErr(os.Remove(filepath.Join(r.lin.base, "root", op.path))), -1
	},
	fdkHostFcntl: func(r *fdRun, op fdDiffOp, h fdHandle) (fdDiffResult, int) {
		return fdErr(fdHostFcntl(h.lfd, op)), -1
	},
}

func fdErr(err error) fdDiffResult { return fdDiffResult{errno: caps.ErrnoOf(err)} }

// fdOpenFlags are Linux's open flags for op's oflags and fdflags.
var fdOpenFlags = map[uint32]int{oflagCreat: unix.O_CREAT, oflagDirectory: unix.O_DIRECTORY, oflagExcl: unix.O_EXCL, oflagTrunc: unix.O_TRUNC}

var fdFdflags = map[uint32]int{caps.FlagAppend: unix.O_APPEND, caps.FlagNonblock: unix.O_NONBLOCK, caps.FlagDsync: unix.O_DSYNC, caps.FlagRsync: unix.O_RSYNC, caps.FlagSync: unix.O_SYNC}

func (r *fdRun) lOpen(op fdDiffOp, _ fdHandle) (fdDiffResult, int) {
	flags := [...]int{unix.O_RDONLY, unix.O_WRONLY, unix.O_RDWR}[op.mode]
	for bit, f := range fdOpenFlags {
		if op.oflag&bit != 0 {
			flags |= f
		}
	}
	for bit, f := range fdFdflags {
		if op.arg&bit != 0 {
			flags |= f
		}
	}
	fd, err := r.lin.resolve(op.path, flags)
	if err != nil {
		return fdErr(err), -1
	}
	return fdDiffResult{}, fd
}

// lIO is readv(2), writev(2), preadv(2) or pwritev(2) through op's
// iovecs into Linux's data area, filled as sandboxd's was.
func (r *fdRun) lIO(op fdDiffOp, h fdHandle) (fdDiffResult, int) {
	copy(r.lmem, fdDataFor(op))
	iovs := make([][]byte, len(op.iov))
	for i, v := range op.iov {
		iovs[i] = r.lmem[v.at : v.at+v.n]
	}
	var res fdDiffResult
	var err error
	switch op.kind {
	case fdkRead:
		res.n, err = unix.Readv(h.lfd, iovs)
	case fdkWrite:
		res.n, err = unix.Writev(h.lfd, iovs)
	case fdkPread:
		res.n, err = unix.Preadv(h.lfd, iovs, int64(op.off))
	case fdkPwrite:
		res.n, err = unix.Pwritev(h.lfd, iovs, int64(op.off))
	}
	if err != nil {
		return fdErr(err), -1
	}
	if op.kind == fdkRead || op.kind == fdkPread {
		res.data = string(r.lmem[:fdDataEnd(op)])
	}
	return res, -1
}

// fdLinuxWhence is Linux's whence for op's, or one Linux refuses.
func fdLinuxWhence(op fdDiffOp) int {
	if op.wasi {
		if op.arg <= 2 {
			return int(op.arg)
		}
		return 77
	}
	switch op.arg {
	case whenceCur:
		return io.SeekCurrent
	case whenceEnd:
		return io.SeekEnd
	case whenceSet:
		return io.SeekStart
	}
	return 77
}

func (r *fdRun) lSeek(op fdDiffOp, h fdHandle) (fdDiffResult, int) {
	off, err := unix.Seek(h.lfd, int64(op.off), fdLinuxWhence(op))
	if err != nil {
		return fdErr(err), -1
	}
	return fdDiffResult{off: off}, -1
}

func (r *fdRun) lFdstat(op fdDiffOp, h fdHandle) (fdDiffResult, int) {
	fl, err := unix.FcntlInt(uintptr(h.lfd), unix.F_GETFL, 0)
	if err != nil {
		return fdErr(err), -1
	}
	s, err := fstatOf(h.lfd)
	if err != nil {
		return fdErr(err), -1
	}
	var f uint32
	if fl&unix.O_APPEND != 0 {
		f |= caps.FlagAppend
	}
	if fl&unix.O_NONBLOCK != 0 {
		f |= caps.FlagNonblock
	}
	return fdDiffResult{data: fmt.Sprintf("flags %x %s", f, strings.Fields(s)[0])}, -1
}

// lSetFlags sets O_APPEND and O_NONBLOCK as op.arg says; the other flags
// stay as they are (their changes are sandboxd's ENOTSUP).
func (r *fdRun) lSetFlags(op fdDiffOp, h fdHandle) (fdDiffResult, int) {
	fl, err := unix.FcntlInt(uintptr(h.lfd), unix.F_GETFL, 0)
	if err != nil {
		return fdErr(err), -1
	}
	fl &^= unix.O_APPEND | unix.O_NONBLOCK
	if op.arg&caps.FlagAppend != 0 {
		fl |= unix.O_APPEND
	}
	if op.arg&caps.FlagNonblock != 0 {
		fl |= unix.O_NONBLOCK
	}
	_, err = unix.FcntlInt(uintptr(h.lfd), unix.F_SETFL, fl)
	return fdErr(err), -1
}

// lSetTimes is futimens(2) of the times op sets.
func (r *fdRun) lSetTimes(op fdDiffOp, h fdHandle) (fdDiffResult, int) {
	one := func(set, setNow uint32, v uint64) unix.Timespec {
		switch {
		case op.arg&setNow != 0:
			return unix.Timespec{Nsec: unix.UTIME_NOW}
		case op.arg&set != 0:
			return unix.NsecToTimespec(int64(v))
		}
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	ts := [2]unix.Timespec{one(fsAtim, fsAtimNow, op.off), one(fsMtim, fsMtimNow, op.n)}
	before := time.Now()
	if _, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(h.lfd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0); e != 0 {
		return fdErr(e), -1
	}
	var st unix.Stat_t
	if err := unix.Fstat(h.lfd, &st); err != nil {
		return fdErr(err), -1
	}
	return fdDiffResult{stat: fdTimes(op, st.Atim.Nano(), st.Mtim.Nano(), before, time.Now())}, -1
}

// fdLinuxAdvice is Linux's advice for op's, or one Linux refuses.
func fdLinuxAdvice(op fdDiffOp) int {
	if op.wasi {
		// WASI: normal, sequential, random, willneed, dontneed, noreuse.
		if op.arg > 5 {
			return 99
		}
		return [...]int{unix.FADV_NORMAL, unix.FADV_SEQUENTIAL, unix.FADV_RANDOM, unix.FADV_WILLNEED, unix.FADV_DONTNEED, unix.FADV_NOREUSE}[op.arg]
	}
	// CloudABI: dontneed 1, noreuse, normal, random, sequential, willneed 6.
	if op.arg < 1 || op.arg > 6 {
		return 99
	}
	return [...]int{unix.FADV_DONTNEED, unix.FADV_NOREUSE, unix.FADV_NORMAL, unix.FADV_RANDOM, unix.FADV_SEQUENTIAL, unix.FADV_WILLNEED}[op.arg-1]
}

// fdDirent is an entry of a listing.
type fdDirent struct {
	name string
	typ  caps.FileType
}

// lReaddir is the listing sandboxd's readdir from op.off into op.n bytes
// should return: the entries of the directory as getdents(2) lists them
// when the listing was last read from cookie 0 (or first read), from
// entry op.off on, laid out as dirents with no d_ino.
func (r *fdRun) lReaddir(op fdDiffOp, h fdHandle) (fdDiffResult, int) {
	if _, err := unix.FcntlInt(uintptr(h.lfd), unix.F_GETFD, 0); err != nil {
		return fdErr(err), -1
	}
	snap, ok := r.snaps[h.obj]
	if op.off == 0 || !ok {
		s, err := listingOf(h.lfd)
		if err != nil {
			return fdErr(err), -1
		}
		snap = nil
		for _, e := range strings.Split(s, ",") {
			name, typ, _ := strings.Cut(e, " ")
			snap = append(snap, fdDirent{name, map[string]caps.FileType{"file": caps.TypeRegular, "dir": caps.TypeDirectory, "link": caps.TypeSymlink}[typ]})
		}
		r.snaps[h.obj] = snap
	}
	var ents []caps.DirEntry
	if op.off < uint64(len(snap)) {
		for _, e := range snap[op.off:] {
			ents = append(ents, caps.DirEntry{Name: e.name, Type: e.typ})
		}
	}
	b := bytes.Repeat([]byte{0xee}, int(op.n))
	typ := cloudabiFiletype
	if op.wasi {
		typ = wasiFiletypeOf
	}
	n := encodeDirents(b, ents, op.off, typ)
	return fdDiffResult{n: n, data: fdHideIno(b[:n])}, -1
}

// lRenumber is dup2(2) of op.h onto op.to, and for WASI's fd_renumber
// the close of op.h after it.
func (r *fdRun) lRenumber(op fdDiffOp, h fdHandle) (fdDiffResult, int) {
	to, _ := r.handle(op.to)
	if h.lfd == to.lfd {
		_, err := unix.FcntlInt(uintptr(h.lfd), unix.F_GETFD, 0)
		return fdErr(err), -1
	}
	if _, err := unix.FcntlInt(uintptr(h.lfd), unix.F_GETFD, 0); err != nil {
		return fdErr(err), -1
	}
	return fdErr(unix.Dup3(h.lfd, to.lfd, unix.O_CLOEXEC)), -1
}

// Shorthands for the named cases.
func fdOpen(path string, mode int, oflags, fdflags uint32) fdDiffOp {
	return fdDiffOp{kind: fdkOpen, path: path, mode: mode, oflag: oflags, arg: fdflags}
}

func fdIO(kind, h int, off uint64, iov ...fdIOV) fdDiffOp {
	return fdDiffOp{kind: kind, h: h, off: off, iov: iov}
}

func fdOn(kind, h int, off, n uint64, arg uint32) fdDiffOp {
	return fdDiffOp{kind: kind, h: h, off: off, n: n, arg: arg}
}

// fdMany is n iovecs of size bytes each, all at the start of the data
// area.
func fdMany(n int, size uint32) []fdIOV {
	iov := make([]fdIOV, n)
	for i := range iov {
		iov[i] = fdIOV{0, size}
	}
	return iov
}

// Seek whences in the native numbering; a WASI run maps them.
const (
	fdSet = whenceSet
	fdCur = whenceCur
	fdEnd = whenceEnd
)

// fdDiffCases are sequences a reader can follow; each runs through the
// native calls and through WASI's (handle 0 is the grant), and
// FuzzFdDiff starts from them.
var fdDiffCases = map[string][]fdDiffOp{
	"reads and writes at offsets past the end": {
		fdOpen("f", pdRdwr, 0, 0),
		fdIO(fdkRead, 1, 0, fdIOV{0, 3}),
		fdIO(fdkRead, 1, 0, fdIOV{0, 0}),
		fdIO(fdkRead, 1, 0),
		fdIO(fdkWrite, 1, 0),
		fdIO(fdkWrite, 1, 0, fdIOV{0, 0}),
		fdIO(fdkPread, 1, 6, fdIOV{0, 10}),
		fdIO(fdkPread, 1, 100, fdIOV{0, 10}),
		fdIO(fdkPwrite, 1, 20, fdIOV{0, 4}),
		fdIO(fdkPwrite, 1, 30, fdIOV{0, 0}),
		fdIO(fdkPread, 1, 0, fdIOV{0, 40}),
		fdIO(fdkRead, 1, 0, fdIOV{0, 40}),
		fdIO(fdkWrite, 1, 0, fdIOV{5, 7}),
		fdOn(fdkFilestat, 1, 0, 0, 0),
	},
	"huge and negative offsets": {
		fdOpen("f", pdRdwr, 0, 0),
		fdIO(fdkPread, 1, math.MaxInt64, fdIOV{0, 10}),
		fdIO(fdkPread, 1, math.MaxInt64-3, fdIOV{0, 10}),
		fdIO(fdkPread, 1, math.MaxInt64+1, fdIOV{0, 10}),
		fdIO(fdkPread, 1, math.MaxUint64, fdIOV{0, 10}),
		fdIO(fdkPwrite, 1, math.MaxInt64, fdIOV{0, 1}),
		fdIO(fdkPwrite, 1, math.MaxInt64-3, fdIOV{0, 10}),
		fdIO(fdkPwrite, 1, math.MaxUint64, fdIOV{0, 1}),
		fdIO(fdkPwrite, 1, 1<<40, fdIOV{0, 1}),
		fdIO(fdkPwrite, 1, 1<<44, fdIOV{0, 1}),
		fdIO(fdkPwrite, 1, 1<<44-2, fdIOV{0, 5}),
		fdIO(fdkPread, 1, math.MaxInt64, fdIOV{0, 0}),
		fdIO(fdkPwrite, 1, math.MaxInt64, fdIOV{0, 0}),
		fdIO(fdkPwrite, 1, math.MaxUint64, fdIOV{0, 0}),
		fdOn(fdkFilestat, 1, 0, 0, 0),
	},
	"many iovecs, overlapping, and their sum past 4 GiB": {
		fdOpen("f", pdRdwr, 0, 0),
		fdIO(fdkRead, 1, 0, fdIOV{0, 3}, fdIOV{1, 3}, fdIOV{0, 0}, fdIOV{2, 4}),
		fdIO(fdkWrite, 1, 0, fdIOV{0, 3}, fdIOV{1, 3}, fdIOV{0, 0}, fdIOV{2, 4}),
		fdIO(fdkPread, 1, 0, fdMany(1024, 1)...),
		fdIO(fdkPread, 1, 0, fdMany(1025, 1)...),
		fdIO(fdkWrite, 1, 0, fdMany(1025, 1)...),
		fdIO(fdkWrite, 1, 0, fdMany(1024, 7)...),
		fdIO(fdkRead, 1, 0, fdMany(1024, 4<<20+1)...),
		fdOn(fdkSeek, 1, 0, 0, fdSet),
		fdIO(fdkRead, 1, 0, fdMany(1024, 4<<20+1)...),
		fdIO(fdkPread, 1, 1, fdMany(1024, 4<<20+1)...),
		fdIO(fdkPread, 1, 1, fdMany(0, 0)...),
	},
	// posix_fadvise(2) of a FIFO is ESPIPE, as its pread, pwrite and
	// lseek are.
	"advice on a FIFO is ESPIPE": {
		{kind: fdkMkfifo, path: "p"},
		fdOpen("p", pdRdwr, 0, 0),
		fdIO(fdkWrite, 1, 0, fdIOV{0, 5}),
		fdIO(fdkRead, 1, 0, fdIOV{0, 3}),
		fdIO(fdkPread, 1, 0, fdIOV{0, 3}),
		fdIO(fdkPwrite, 1, 0, fdIOV{0, 3}),
		fdOn(fdkSeek, 1, 0, 0, fdCur),
		fdOn(fdkSeek, 1, 1, 0, fdSet),
		fdOn(fdkFilestat, 1, 0, 0, 0),
		fdOn(fdkSetSize, 1, 0, 0, 0),
		fdOn(fdkAllocate, 1, 0, 1, 0),
		fdOn(fdkSync, 1, 0, 0, 0),
		fdOn(fdkDatasync, 1, 0, 0, 0),
		fdOn(fdkAdvise, 1, 0, 0, 3),
		fdOn(fdkAdvise, 1, 0, 0, 7),
		fdIO(fdkRead, 1, 0, fdIOV{0, 3}),
	},
	// fd_write of several iovecs is one writev(2): into a FIFO of one
	// page, non-blocking, 4000 and 200 bytes fill the page (4096), where
	// a write per iovec would write 4000 and then find no room for 200
	// (at most PIPE_BUF: all or nothing).
	"several iovecs into a FIFO are one writev": {
		{kind: fdkMkfifo, path: "p"},
		fdOpen("p", pdRdwr, 0, caps.FlagNonblock),
		{kind: fdkHostFcntl, h: 1, arg: unix.F_SETPIPE_SZ, n: 4096},
		fdIO(fdkWrite, 1, 0, fdIOV{0, 4000}, fdIOV{7, 200}),
		fdIO(fdkWrite, 1, 0, fdIOV{0, 1}, fdIOV{0, 0}),
		fdIO(fdkRead, 1, 0, fdIOV{0, 5000}),
		fdIO(fdkWrite, 1, 0, fdIOV{0, 100}, fdIOV{3, 4000}, fdIOV{9, 100}),
		fdIO(fdkRead, 1, 0, fdIOV{0, 96}, fdIOV{200, 5000}),
		fdIO(fdkRead, 1, 0, fdIOV{0, 10}, fdIOV{20, 10}),
	},
	// Two handles appending to one file: each write of several iovecs
	// (and pwrite, which appends too) is one writev(2) or pwritev(2) at
	// the end; that another writer's append cannot come between its
	// buffers takes two writers at once, which a sequence cannot show.
	"several iovecs appended through two handles": {
		fdOpen("f", pdWronly, oflagCreat, caps.FlagAppend),
		fdOpen("f", pdRdwr, 0, caps.FlagAppend),
		fdIO(fdkWrite, 1, 0, fdIOV{0, 5}, fdIOV{0, 0}, fdIOV{9, 7}),
		fdIO(fdkWrite, 2, 0, fdIOV{3, 4}, fdIOV{20, 6}),
		fdIO(fdkPwrite, 1, 2, fdIOV{0, 3}, fdIOV{40, 2}),
		fdIO(fdkPread, 2, 0, fdIOV{0, 10}, fdIOV{50, 30}),
		fdOn(fdkSeek, 2, 3, 0, fdSet),
		fdIO(fdkRead, 2, 0, fdIOV{0, 4}, fdIOV{0, 0}, fdIOV{60, 40}),
		fdOn(fdkFilestat, 1, 0, 0, 0),
	},
	// A packet-mode FIFO (O_DIRECT, as a program holding it may set)
	// makes each write(2) a packet, and each read(2) takes at most one:
	// writev(2) of several buffers is one packet, and readv(2) reads
	// one packet into several buffers.
	"several iovecs are one packet of a packet-mode FIFO": {
		{kind: fdkMkfifo, path: "p"},
		fdOpen("p", pdRdwr, 0, caps.FlagNonblock),
		{kind: fdkHostFcntl, h: 1, arg: unix.F_SETFL, n: unix.O_DIRECT},
		fdIO(fdkWrite, 1, 0, fdIOV{0, 4}),
		fdIO(fdkWrite, 1, 0, fdIOV{10, 4}),
		fdIO(fdkRead, 1, 0, fdIOV{0, 2}, fdIOV{10, 2}),
		fdIO(fdkRead, 1, 0, fdIOV{0, 10}),
		fdIO(fdkRead, 1, 0, fdIOV{0, 10}),
		fdIO(fdkWrite, 1, 0, fdIOV{0, 3}, fdIOV{5, 3}),
		fdIO(fdkRead, 1, 0, fdIOV{0, 10}),
		fdIO(fdkRead, 1, 0, fdIOV{0, 10}),
	},
	"a byte object and a memfd": {
		{kind: fdkCreate1},
		fdIO(fdkWrite, 1, 0, fdIOV{0, 10}, fdIOV{3, 5}),
		fdOn(fdkSeek, 1, 0, 0, fdCur),
		fdOn(fdkSeek, 1, 3, 0, fdSet),
		fdIO(fdkRead, 1, 0, fdIOV{0, 4}, fdIOV{2, 40}),
		fdIO(fdkPread, 1, 100, fdIOV{0, 4}),
		fdIO(fdkPwrite, 1, 30, fdIOV{0, 4}),
		fdIO(fdkPread, 1, 0, fdIOV{0, 40}),
		fdOn(fdkSeek, 1, ^uint64(3), 0, fdEnd),
		fdOn(fdkSeek, 1, ^uint64(100), 0, fdEnd),
		fdOn(fdkSeek, 1, math.MaxInt64, 0, fdCur),
		fdOn(fdkSeek, 1, 1<<40, 0, fdSet),
		fdIO(fdkRead, 1, 0, fdIOV{0, 4}),
		fdIO(fdkWrite, 1, 0),
		fdIO(fdkWrite, 1, 0, fdIOV{0, 0}),
		fdOn(fdkSeek, 1, 0, 0, fdCur),
		fdOn(fdkSetSize, 1, 5, 0, 0),
		fdOn(fdkSetSize, 1, 50, 0, 0),
		fdIO(fdkPread, 1, 0, fdIOV{0, 60}),
		fdOn(fdkFilestat, 1, 0, 0, 0),
		fdOn(fdkFdstat, 1, 0, 0, 0),
		fdIO(fdkPwrite, 1, math.MaxInt64, fdIOV{0, 0}),
		{kind: fdkDup, h: 1},
		fdOn(fdkSeek, 2, 7, 0, fdSet),
		fdOn(fdkSeek, 1, 0, 0, fdCur),
		fdOn(fdkSetFlags, 1, 0, 0, caps.FlagAppend),
		fdOn(fdkSync, 1, 0, 0, 0),
		fdOn(fdkAllocate, 1, 0, 1, 0),
		fdOn(fdkSetSize, 1, 1<<30+1, 0, 0),
		fdIO(fdkPwrite, 1, 1<<30-2, fdIOV{0, 4}),
	},
	// read(2), write(2), pread(2) and pwrite(2) refuse a transfer whose
	// end, the offset and all the iovecs' bytes, would pass the largest
	// off_t: EINVAL, before they move a byte.
	"a transfer ending past the largest off_t is EINVAL": {
		fdOpen("f", pdRdwr, 0, 0),
		fdIO(fdkPread, 1, math.MaxInt64-5, fdIOV{0, 4}, fdIOV{0, 4}),
		fdIO(fdkPwrite, 1, math.MaxInt64-5, fdIOV{0, 4}, fdIOV{0, 4}),
		fdIO(fdkPread, 1, math.MaxInt64-5, fdIOV{0, 4}, fdIOV{0, 0}),
		{kind: fdkCreate1},
		fdIO(fdkPread, 2, math.MaxInt64, fdIOV{0, 4}),
		fdIO(fdkPwrite, 2, math.MaxInt64, fdIOV{0, 4}),
		fdIO(fdkPread, 2, math.MaxInt64-5, fdIOV{0, 4}, fdIOV{0, 4}),
		fdIO(fdkPwrite, 2, math.MaxInt64-5, fdIOV{0, 4}, fdIOV{0, 4}),
		fdOn(fdkSeek, 2, math.MaxInt64-1, 0, fdSet),
		fdIO(fdkRead, 2, 0, fdIOV{0, 4}),
		fdIO(fdkWrite, 2, 0, fdIOV{0, 4}),
		fdIO(fdkRead, 2, 0, fdIOV{0, 1}),
		fdOn(fdkSeek, 1, math.MaxInt64-1, 0, fdSet),
		fdIO(fdkRead, 1, 0, fdIOV{0, 4}),
		fdIO(fdkWrite, 1, 0, fdIOV{0, 4}),
		fdIO(fdkRead, 1, 0, fdIOV{0, 1}, fdIOV{0, 4}),
		fdIO(fdkWrite, 1, 0, fdIOV{0, 0}, fdIOV{0, 1}, fdIOV{0, 4}),
		fdIO(fdkRead, 2, 0, fdIOV{0, 1}, fdIOV{0, 4}),
		fdIO(fdkWrite, 2, 0, fdIOV{0, 1}, fdIOV{0, 4}),
		fdIO(fdkRead, 1, 0, fdIOV{0, 1}, fdIOV{0, 0}),
	},
	// A size of 2^63 or more is EFBIG, past the largest file, where
	// ftruncate(2) takes it for a negative off_t (EINVAL).
	"a size past the largest off_t is EFBIG": {
		fdOpen("f", pdRdwr, 0, 0),
		fdOn(fdkSetSize, 1, math.MaxInt64+1, 0, 0),
		fdOn(fdkSetSize, 1, math.MaxUint64, 0, 0),
		fdOn(fdkSetSize, 1, math.MaxInt64, 0, 0),
		fdOn(fdkFilestat, 1, 0, 0, 0),
	},
	// posix_fadvise(2) refuses a negative length, not a negative offset.
	"advice from an offset past the largest off_t is taken": {
		fdOpen("f", pdRdwr, 0, 0),
		fdOn(fdkAdvise, 1, 1<<63, 100, 3),
		fdOn(fdkAdvise, 1, math.MaxUint64, 0, 6),
		fdOn(fdkAdvise, 1, math.MaxUint64, 1<<63, 6),
	},
	// lseek(2) looks the descriptor up before it looks at whence.
	"a seek of a closed fd with a bad whence is EBADF": {
		fdOn(fdkSeek, 1, 5, 0, 7),
		fdOn(fdkSeek, 1, 0, 0, 77),
		fdOn(fdkSeek, 0, 0, 0, 77),
	},
	"seeks from every whence, negative and overflowing": {
		fdOpen("f", pdRdwr, 0, 0),
		fdOn(fdkSeek, 1, 3, 0, fdSet),
		fdOn(fdkSeek, 1, 2, 0, fdCur),
		fdOn(fdkSeek, 1, 0, 0, fdCur),
		fdOn(fdkSeek, 1, 0, 1, fdCur),
		fdOn(fdkSeek, 1, 10, 0, fdEnd),
		fdOn(fdkSeek, 1, ^uint64(2), 0, fdEnd),
		fdOn(fdkSeek, 1, ^uint64(20), 0, fdEnd),
		fdOn(fdkSeek, 1, ^uint64(0), 0, fdSet),
		fdOn(fdkSeek, 1, math.MaxInt64, 0, fdSet),
		fdOn(fdkSeek, 1, 1<<44, 0, fdSet),
		fdOn(fdkSeek, 1, 1<<40, 0, fdSet),
		fdOn(fdkSeek, 1, math.MaxInt64, 0, fdCur),
		fdOn(fdkSeek, 1, math.MaxInt64, 0, fdEnd),
		fdOn(fdkSeek, 1, 1<<63, 0, fdCur),
		fdOn(fdkSeek, 1, 0, 0, 0),
		fdOn(fdkSeek, 1, 0, 0, 4),
		fdOn(fdkSeek, 1, 5, 0, 7),
		fdOn(fdkSeek, 2, 0, 0, fdCur),
		fdOn(fdkSeek, 0, 0, 0, fdCur),
		fdOn(fdkSeek, 0, 1, 0, fdSet),
		fdIO(fdkWrite, 1, 0, fdIOV{0, 3}),
		fdOn(fdkFilestat, 1, 0, 0, 0),
	},
	"append mode: pwrite, seek then write": {
		fdOpen("f", pdRdwr, 0, caps.FlagAppend),
		fdIO(fdkWrite, 1, 0, fdIOV{0, 3}),
		fdOn(fdkSeek, 1, 1, 0, fdSet),
		fdIO(fdkWrite, 1, 0, fdIOV{0, 2}, fdIOV{4, 2}),
		fdIO(fdkPwrite, 1, 0, fdIOV{0, 2}),
		fdIO(fdkPwrite, 1, 100, fdIOV{0, 2}),
		fdOn(fdkSeek, 1, 0, 0, fdCur),
		fdOn(fdkFdstat, 1, 0, 0, 0),
		fdOn(fdkSetFlags, 1, 0, 0, 0),
		fdIO(fdkPwrite, 1, 1, fdIOV{0, 2}),
		fdOn(fdkSetFlags, 1, 0, 0, caps.FlagAppend),
		fdIO(fdkPwrite, 1, 1, fdIOV{0, 2}),
		fdOpen("f", pdRdonly, 0, 0),
		fdOn(fdkSetFlags, 2, 0, 0, caps.FlagAppend),
		fdOn(fdkFdstat, 2, 0, 0, 0),
		fdOpen("f", pdWronly, oflagTrunc, caps.FlagAppend),
		fdIO(fdkWrite, 3, 0, fdIOV{0, 5}),
		fdOn(fdkFdstat, 1, 0, 0, 0),
	},
	"fdstat_set_flags toggles": {
		fdOpen("f", pdRdwr, 0, 0),
		fdOn(fdkSetFlags, 1, 0, 0, caps.FlagNonblock),
		fdOn(fdkFdstat, 1, 0, 0, 0),
		fdOn(fdkSetFlags, 1, 0, 0, caps.FlagNonblock|caps.FlagAppend),
		fdOn(fdkFdstat, 1, 0, 0, 0),
		fdOn(fdkSetFlags, 1, 0, 0, caps.FlagSync),
		fdOn(fdkSetFlags, 1, 0, 0, caps.FlagDsync),
		fdOn(fdkSetFlags, 1, 0, 0, 0x20),
		fdOn(fdkSetFlags, 1, 0, 0, 0),
		fdOn(fdkFdstat, 1, 0, 0, 0),
		fdOn(fdkSetFlags, 0, 0, 0, caps.FlagNonblock),
		fdOn(fdkSetFlags, 0, 0, 0, caps.FlagAppend),
		fdOn(fdkFdstat, 0, 0, 0, 0),
		fdOpen("f", pdRdwr, 0, caps.FlagSync),
		fdOn(fdkSetFlags, 2, 0, 0, caps.FlagSync|caps.FlagAppend),
		fdOn(fdkSetFlags, 2, 0, 0, caps.FlagAppend),
		fdOn(fdkFdstat, 2, 0, 0, 0),
		fdOn(fdkSetFlags, 3, 0, 0, 0),
	},
	"sizes set: grow, shrink, huge, on a read-only handle": {
		fdOpen("f", pdRdwr, 0, 0),
		fdOn(fdkSetSize, 1, 20, 0, 0),
		fdOn(fdkFilestat, 1, 0, 0, 0),
		fdOn(fdkSetSize, 1, 2, 0, 0),
		fdIO(fdkRead, 1, 0, fdIOV{0, 40}),
		fdOn(fdkSetSize, 1, 1<<40, 0, 0),
		fdOn(fdkSetSize, 1, 1<<44, 0, 0),
		fdOn(fdkSetSize, 1, math.MaxInt64, 0, 0),
		fdOn(fdkFilestat, 1, 0, 0, 0),
		fdOpen("f", pdRdonly, 0, 0),
		fdOn(fdkSetSize, 2, 0, 0, 0),
		fdOn(fdkSetSize, 0, 0, 0, 0),
		fdOn(fdkSetSize, 3, 0, 0, 0),
	},
	"times set: values, NOW, both, neither": {
		fdOpen("f", pdRdonly, 0, 0),
		fdOn(fdkSetTimes, 1, 1e18, 2e18, fsAtim|fsMtim),
		fdOn(fdkSetTimes, 1, 5, 7, fsAtim),
		fdOn(fdkSetTimes, 1, 0, 7, fsMtimNow),
		fdOn(fdkSetTimes, 1, 0, 0, fsAtimNow|fsMtim),
		fdOn(fdkSetTimes, 1, 0, 0, fsAtimNow|fsAtim),
		fdOn(fdkSetTimes, 1, 0, 0, fsMtimNow|fsMtim),
		fdOn(fdkSetTimes, 1, 0, 0, 0),
		fdOn(fdkSetTimes, 1, 0, 0, 0x20),
		fdOn(fdkSetTimes, 1, math.MaxInt64, 0, fsAtim),
		fdOn(fdkSetTimes, 1, math.MaxInt64+1, 0, fsAtim),
		fdOn(fdkSetTimes, 1, 0, math.MaxUint64, fsMtim),
		fdOn(fdkSetTimes, 0, 3e18, 4e18, fsAtim|fsMtim),
		fdOn(fdkSetTimes, 2, 1, 1, fsAtim),
		fdOn(fdkFilestat, 1, 0, 0, 0),
		fdOn(fdkFilestat, 0, 0, 0, 0),
	},
	"allocate and advise": {
		fdOpen("f", pdRdwr, 0, 0),
		fdOn(fdkAllocate, 1, 0, 100, 0),
		fdOn(fdkAllocate, 1, 4000, 200, 0),
		fdOn(fdkAllocate, 1, 0, 0, 0),
		fdOn(fdkAllocate, 1, 1<<63, 1, 0),
		fdOn(fdkAllocate, 1, 1, 1<<63, 0),
		fdOn(fdkAllocate, 1, math.MaxInt64, 1, 0),
		fdOn(fdkAllocate, 1, 1<<40, 1, 0),
		fdOn(fdkFilestat, 1, 0, 0, 0),
		fdOn(fdkAdvise, 1, 0, 0, 3),
		fdOn(fdkAdvise, 1, 0, 100, 6),
		fdOn(fdkAdvise, 1, 0, 100, 1),
		fdOn(fdkAdvise, 1, 0, 100, 0),
		fdOn(fdkAdvise, 1, 0, 100, 7),
		fdOn(fdkAdvise, 1, 0, 100, 1000),
		fdOn(fdkAdvise, 1, 0, 1<<63, 3),
		fdOn(fdkAdvise, 1, math.MaxInt64, math.MaxInt64, 3),
		fdOn(fdkAdvise, 0, 0, 0, 3),
		fdOn(fdkAdvise, 2, 0, 0, 3),
		fdOn(fdkAllocate, 0, 0, 1, 0),
		fdOpen("f", pdRdonly, 0, 0),
		fdOn(fdkAllocate, 2, 0, 1, 0),
		fdOn(fdkAdvise, 2, 0, 0, 4),
	},
	"sync and datasync": {
		fdOpen("f", pdRdwr, 0, 0),
		fdOn(fdkDatasync, 1, 0, 0, 0),
		fdOn(fdkSync, 1, 0, 0, 0),
		fdOn(fdkSync, 0, 0, 0, 0),
		fdOn(fdkDatasync, 0, 0, 0, 0),
		fdOpen("f", pdRdonly, 0, 0),
		fdOn(fdkSync, 2, 0, 0, 0),
		fdOn(fdkDatasync, 2, 0, 0, 0),
		fdOpen("d", pdRdonly, oflagDirectory, 0),
		fdOn(fdkSync, 3, 0, 0, 0),
		fdOn(fdkSync, 4, 0, 0, 0),
	},
	"listings resumed from any cookie": {
		fdOn(fdkReaddir, 0, 0, 4096, 0),
		fdOn(fdkReaddir, 0, 2, 4096, 0),
		fdOn(fdkReaddir, 0, 5, 4096, 0),
		fdOn(fdkReaddir, 0, 6, 4096, 0),
		fdOn(fdkReaddir, 0, 100, 4096, 0),
		fdOn(fdkReaddir, 0, math.MaxUint64, 4096, 0),
		fdOn(fdkReaddir, 0, 0, 10, 0),
		fdOn(fdkReaddir, 0, 1, 24, 0),
		fdOn(fdkReaddir, 0, 1, 26, 0),
		fdOn(fdkReaddir, 0, 1, 0, 0),
		fdOpen("a", pdWronly, oflagCreat, 0),
		fdOn(fdkReaddir, 0, 3, 4096, 0),
		fdOn(fdkReaddir, 0, 0, 4096, 0),
		fdOpen("d", pdRdonly, oflagDirectory, 0),
		fdOn(fdkReaddir, 2, 3, 4096, 0),
		fdOpen("d/h", pdWronly, oflagCreat, 0),
		fdOn(fdkReaddir, 2, 2, 4096, 0),
		{kind: fdkRemove, path: "d/g"},
		{kind: fdkRemove, path: "a"},
		fdOn(fdkReaddir, 2, 2, 4096, 0),
		fdOn(fdkReaddir, 0, 4, 4096, 0),
		fdOn(fdkReaddir, 2, 0, 4096, 0),
		fdOn(fdkReaddir, 2, 3, 4096, 0),
		fdOn(fdkReaddir, 1, 0, 4096, 0),
		fdOn(fdkReaddir, 4, 0, 4096, 0),
	},
	"close, dup and renumber": {
		fdOpen("f", pdRdwr, 0, 0),
		fdOpen("d", pdRdonly, oflagDirectory, 0),
		{kind: fdkDup, h: 1},
		fdOn(fdkSeek, 1, 3, 0, fdSet),
		fdOn(fdkSeek, 3, 0, 0, fdCur),
		fdOn(fdkSetFlags, 3, 0, 0, caps.FlagNonblock|caps.FlagAppend),
		fdOn(fdkFdstat, 1, 0, 0, 0),
		{kind: fdkRenumber, h: 1, to: 1},
		{kind: fdkRenumber, h: 1, to: 4}, // onto a closed fd
		{kind: fdkRenumber, h: 4, to: 1}, // from one
		{kind: fdkRenumber, h: 3, to: 2},
		fdOn(fdkReaddir, 2, 0, 4096, 0),
		fdIO(fdkRead, 2, 0, fdIOV{0, 8}),
		{kind: fdkRenumber, h: 1, to: 0}, // onto the grant
		fdOn(fdkReaddir, 0, 0, 4096, 0),
		fdIO(fdkRead, 0, 0, fdIOV{0, 8}),
		fdOn(fdkClose, 0, 0, 0, 0),
		fdOn(fdkClose, 0, 0, 0, 0),
		fdOn(fdkClose, 0, 0, 0, 0),
		fdOn(fdkClose, 0, 0, 0, 0),
	},
}

func TestFdDiff(t *testing.T) {
	env := newFdDiffEnv(t)
	for name, ops := range fdDiffCases {
		for _, wasi := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/wasi=%v", name, wasi), func(t *testing.T) {
				runFdDiff(t, env, fdWithWASI(ops, wasi))
			})
		}
	}
}

// fdWithWASI is ops through one ABI, whences and advice renumbered.
func fdWithWASI(ops []fdDiffOp, wasi bool) []fdDiffOp {
	out := make([]fdDiffOp, len(ops))
	for i, op := range ops {
		if wasi && !op.wasi {
			op.wasi = true
			switch op.kind {
			case fdkSeek:
				op.arg = fdRenumberArg(op.arg, map[uint32]uint32{whenceSet: 0, whenceCur: 1, whenceEnd: 2})
			case fdkAdvise:
				op.arg = fdRenumberArg(op.arg, map[uint32]uint32{1: 4, 2: 5, 3: 0, 4: 2, 5: 1, 6: 3})
			}
		}
		out[i] = op
	}
	return out
}

// fdRenumberArg is v as m numbers it; a value m does not number is made
// one WASI does not know either.
func fdRenumberArg(v uint32, m map[uint32]uint32) uint32 {
	if w, ok := m[v]; ok {
		return w
	}
	return max(v, 7)
}

// fdTreeOf is treeOf for trees that may hold huge sparse files: a file's
// contents are its size and a digest of its non-zero 4 KiB blocks and
// where they are, found with SEEK_DATA and SEEK_HOLE.
func fdTreeOf(t testing.TB, base string) string {
	var b strings.Builder
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s mode %o nlink %d", rel, st.Mode, st.Nlink)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			sum, err := fdDigest(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " size %d %s", st.Size, sum)
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " -> %s", strings.ReplaceAll(target, base, "$BASE"))
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// fdDigest digests the non-zero blocks of the file at p.
func fdDigest(p string) (string, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	h := sha256.New()
	buf := make([]byte, 4096)
	var off int64
	for {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			return fmt.Sprintf("%x", h.Sum(nil)[:8]), nil
		}
		if err != nil {
			return "", err
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return "", err
		}
		for off = data &^ 4095; off < hole; off += 4096 {
			n, err := unix.Pread(fd, buf, off)
			if err != nil {
				return "", err
			}
			if !allZero(buf[:n]) {
				fmt.Fprintf(h, "%d:%q", off, buf[:n])
			}
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// fdEveryCall is a call of each kind on handle h but open, close, dup,
// renumber and narrow, each one that would succeed with the rights it
// needs.
func fdEveryCall(h int) []fdDiffOp {
	return []fdDiffOp{
		fdIO(fdkRead, h, 0, fdIOV{0, 4}),
		fdIO(fdkWrite, h, 0, fdIOV{0, 4}),
		fdIO(fdkPread, h, 1, fdIOV{0, 4}),
		fdIO(fdkPwrite, h, 1, fdIOV{0, 4}),
		fdOn(fdkSeek, h, 2, 0, fdSet),
		fdOn(fdkSeek, h, 0, 0, fdCur),
		fdOn(fdkSeek, h, 0, 1, fdCur), // WASI: fd_tell
		fdOn(fdkFdstat, h, 0, 0, 0),
		fdOn(fdkSetFlags, h, 0, 0, caps.FlagNonblock),
		fdOn(fdkSetFlags, h, 0, 0, caps.FlagAppend),
		fdOn(fdkFilestat, h, 0, 0, 0),
		fdOn(fdkSetSize, h, 3, 0, 0),
		fdOn(fdkSetTimes, h, 1e18, 1e18, fsAtim|fsMtim),
		fdOn(fdkAllocate, h, 0, 10, 0),
		fdOn(fdkAdvise, h, 0, 10, 3),
		fdOn(fdkDatasync, h, 0, 0, 0),
		fdOn(fdkSync, h, 0, 0, 0),
		fdOn(fdkReaddir, h, 0, 4096, 0),
	}
}

// fdRightsCase opens path once for each right an open in mode may ask
// for, drops that right from the new handle, and makes every call on it.
func fdRightsCase(path string, mode int, oflags uint32) []fdDiffOp {
	var ops []fdDiffOp
	h := 1
	for r := caps.Rights(1); r != 0 && r <= fdRights[pdRdwr]; r <<= 1 {
		if fdRights[mode]&r == 0 {
			continue
		}
		ops = append(ops, fdOpen(path, mode, oflags, 0), fdDiffOp{kind: fdkNarrow, h: h, right: r})
		ops = append(ops, fdEveryCall(h)...)
		h++
	}
	return ops
}

func init() {
	fdDiffCases["every call on a file without each right"] = fdRightsCase("f", pdRdwr, 0)
	fdDiffCases["every call on a directory without each right"] = fdRightsCase("d", pdRdonly, oflagDirectory)
	fdDiffCases["every call on a file with every right"] = append([]fdDiffOp{fdOpen("f", pdRdwr, 0, 0)}, fdEveryCall(1)...)
	fdDiffCases["every call on a read-only file"] = append([]fdDiffOp{fdOpen("f", pdRdonly, 0, 0)}, fdEveryCall(1)...)
	fdDiffCases["every call on a write-only file"] = append([]fdDiffOp{fdOpen("f", pdWronly, 0, 0)}, fdEveryCall(1)...)
	fdDiffCases["every call on the grant"] = fdEveryCall(0)
	fdDiffCases["every call on a closed fd"] = append(fdEveryCall(1), fdOn(fdkClose, 1, 0, 0, 0), fdDiffOp{kind: fdkDup, h: 1}, fdDiffOp{kind: fdkRenumber, h: 1, to: 0},
		fdOn(fdkSetSize, 1, 1<<63, 0, 0), fdIO(fdkPread, 1, 1<<63, fdIOV{0, 1}), fdIO(fdkPwrite, 1, 1<<63, fdIOV{0, 1}),
		fdOn(fdkSetTimes, 1, 0, 0, 0x20), fdOn(fdkSetTimes, 1, 0, 0, 0), fdOn(fdkAdvise, 1, 0, 0, 99))
}

// fdValues are the offsets, sizes, cookies and times a fuzzed op picks
// from, each moved by a small amount: the edges of files, of buffers,
// of 32 bits and of an off_t.
var fdValues = [...]uint64{0, 1, 3, 8, 24, 100, 4096, 1 << 20, 1 << 31, 1 << 32, 1 << 40, 1 << 44, math.MaxInt64, 1 << 63, math.MaxUint64, 1e18}

// fdIOVSizes and fdIOVCounts are what a fuzzed op's iovecs are made of.
var (
	fdIOVSizes  = [...]uint32{0, 1, 3, 8, 100, 4096, 4<<20 + 1}
	fdIOVCounts = [...]int{0, 1, 2, 3, 5, 1024, 1025}
	fdPaths     = [...]string{"f", "d", ".", "a", "d/g", "l"}
	fdDirSizes  = [...]uint64{0, 1, 10, 24, 25, 26, 30, 100, 4096, fdDirMax}
)

// fdOpSize is the bytes of fuzz input one op takes.
const fdOpSize = 12

// decodeFdDiffOps turns fuzz input into ops, twelve bytes each: kind and
// ABI, handle, a byte of open mode and oflags or of renumber's target, a
// byte of flags, whence or advice, three of iovecs (count, sizes, where),
// the path an open opens, two of offset (a value of fdValues and a small
// step from it), two of length, and the right a narrow drops.
func decodeFdDiffOps(in []byte) []fdDiffOp {
	var ops []fdDiffOp
	for len(in) >= fdOpSize && len(ops) < 40 {
		b := in[:fdOpSize]
		in = in[fdOpSize:]
		op := fdDiffOp{
			kind: int(b[0]&0x7f) % fdkKinds, wasi: b[0]&0x80 != 0, h: int(b[1]), to: int(b[2]),
			arg: uint32(b[3]), path: fdPaths[int(b[7])%len(fdPaths)], mode: int(b[2]) % 3, oflag: uint32(b[2]>>2) & 0xf,
			off:   fdValues[int(b[8])%len(fdValues)] + uint64(int64(int8(b[9]))),
			n:     fdValues[int(b[10])%len(fdValues)] + uint64(int64(int8(b[11]))),
			right: 1 << (b[11] % 32),
		}
		if op.kind == fdkOpen && b[7]%7 == 6 {
			op.kind = fdkCreate1 // a byte object rather than a file
		}
		fdShape(&op, b)
		ops = append(ops, op)
	}
	return ops
}

// fdShape keeps a fuzzed op to what both sides can run quickly on a
// shared machine: writes of at most 4 KiB an iovec, allocations of at
// most 64 KiB, listings into the buffer there is.
func fdShape(op *fdDiffOp, b []byte) {
	switch op.kind {
	case fdkOpen:
		op.arg &= 0x1f
	case fdkRead, fdkWrite, fdkPread, fdkPwrite:
		op.iov = make([]fdIOV, fdIOVCounts[int(b[4])%len(fdIOVCounts)])
		for i := range op.iov {
			n := fdIOVSizes[(int(b[5])+i)%len(fdIOVSizes)]
			if op.kind == fdkWrite || op.kind == fdkPwrite {
				n = min(n, 4096)
			}
			op.iov[i] = fdIOV{at: [...]uint32{0, 1, 50}[(int(b[6])+i)%3], n: n}
		}
	case fdkSetFlags:
		op.arg &= 0x3f
	case fdkSetTimes:
		op.arg &= 0x2f // not SIZE alone, which is a truncate
	case fdkAllocate:
		if op.n < 1<<63 {
			op.n %= 1 << 16
		}
	case fdkReaddir:
		op.off %= 12
		op.n = fdDirSizes[int(b[10])%len(fdDirSizes)]
	}
	if !op.wasi && (op.kind == fdkSeek || op.kind == fdkAdvise) {
		op.arg %= 8
	}
}

// FuzzFdDiff runs arbitrary sequences of calls on handles on both sides
// (runFdDiff), each through either ABI.
func FuzzFdDiff(f *testing.F) {
	f.Add([]byte("\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x01\x00\x00\x02\x03\x00\x00\x02\x00\x04\x00"))
	f.Add([]byte("\x80\x00\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x84\x01\x00\x00\x03\x01\x01\x00\x05\x00\x00\x00"))
	env := newFdDiffEnv(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		runFdDiff(t, env, decodeFdDiffOps(in))
	})
}
