package abi

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/sandboxd/sandboxd/caps"
	"golang.org/x/sys/unix"
)

// A differential test of the path and file calls: the same sequence of
// operations runs through the handlers a guest calls (the native file_*
// and fd_* calls, or WASI's path_* and fd_* where the call exists) on a
// handle table holding a read-write grant of one tree, and directly on
// Linux on an identical copy of that tree, every path resolved by the
// kernel beneath a directory descriptor: openat2(2) with RESOLVE_BENEATH
// and RESOLVE_NO_MAGICLINKS for what a path names, and for calls that act
// on a name rather than what it names (mkdirat, unlinkat, renameat,
// symlinkat, linkat's new name) the *at call on the parent resolved so.
// Every result must agree: errno, byte counts, the bytes read, offsets,
// the type, size and link count of a stat, listings, the contents of
// links, and after every step the whole of both trees, the directory
// beside the grant included, so that a call that reaches out of the grant
// shows as a difference there. Where docs/ABI.md and docs/WASI.md (Paths
// and Linux) say sandboxd differs from Linux on purpose, pathDiffAllowed
// says how, and the comparison allows for that and nothing else.

// Kinds of pathDiffOp.
const (
	pdOpen = iota
	pdClose
	pdRead
	pdWrite
	pdPread
	pdPwrite
	pdSeek
	pdMkdir
	pdUnlink
	pdRename
	pdLink
	pdSymlink
	pdReadlink
	pdStat
	pdFstat
	pdTruncate
	pdReaddir
	pdKinds
)

var pdNames = [pdKinds]string{"open", "close", "read", "write", "pread", "pwrite", "seek", "mkdir", "unlink", "rename", "link", "symlink", "readlink", "stat", "fstat", "truncate", "readdir"}

// Access modes of an open.
const (
	pdRdonly = iota
	pdWronly
	pdRdwr
)

// pathDiffOp is one operation. Paths are as the guest passes them; in a
// symlink's target (p1), a leading "/" stands for the root of the side's
// own tree on the host, so that an absolute link names the same place in
// both.
type pathDiffOp struct {
	kind   int
	wasi   bool   // through the WASI call rather than the native one
	p1, p2 string // path, or (rename, link) from and to, or (symlink) target and link
	oflags uint32 // open: CloudABI's (and WASI's) oflags
	follow bool   // open, link, stat: a final symbolic link is followed
	mode   int    // open: access mode
	dir    bool   // unlink: REMOVEDIR (WASI: path_remove_directory)
	h      int    // handle: index into the open handles; one past the last is the grant
	n      int    // read, pread: bytes; write, pwrite: bytes; truncate: size; readlink, readdir: buffer size
	off    int64  // pread, pwrite, seek: offset
	whence int    // seek: 0 set, 1 cur, 2 end
}

func (op pathDiffOp) String() string {
	s := pdNames[op.kind]
	if op.wasi {
		s = "wasi " + s
	}
	p1, p2 := showPath(op.p1), showPath(op.p2)
	switch op.kind {
	case pdOpen:
		return fmt.Sprintf("%s(%s, oflags %#x, follow %v, mode %d)", s, p1, op.oflags, op.follow, op.mode)
	case pdMkdir:
		return fmt.Sprintf("%s(%s)", s, p1)
	case pdReadlink:
		return fmt.Sprintf("%s(%s, n %d)", s, p1, op.n)
	case pdUnlink:
		return fmt.Sprintf("%s(%s, dir %v)", s, p1, op.dir)
	case pdStat:
		return fmt.Sprintf("%s(%s, follow %v)", s, p1, op.follow)
	case pdLink:
		return fmt.Sprintf("%s(%s, %s, follow %v)", s, p1, p2, op.follow)
	case pdRename, pdSymlink:
		return fmt.Sprintf("%s(%s, %s)", s, p1, p2)
	}
	return fmt.Sprintf("%s(h %d, n %d, off %d, whence %d)", s, op.h, op.n, op.off, op.whence)
}

// showPath quotes p, or for a long one its start and length.
func showPath(p string) string {
	if len(p) > 40 {
		return fmt.Sprintf("%q… (%d bytes)", p[:16], len(p))
	}
	return fmt.Sprintf("%q", p)
}

// pathDiffResult is what one operation did, in terms both sides share.
type pathDiffResult struct {
	errno caps.Errno
	n     int
	data  string // read: the bytes; readlink: the contents; readdir: the listing
	off   int64  // seek
	stat  string // stat, fstat: type, size and link count
}

// pdMemory is where the sandboxd side puts things in guest memory.
const (
	pdOut     = 0
	pdIOV     = 64
	pdFdstat  = 256
	pdStatBuf = 512
	pdPath1   = 1024
	pdPath2   = 9216
	pdData    = 17408
	pdDirBuf  = 24576
	pdLinkBuf = 40960
)

// pdSides is the layout both trees share beneath their side's directory:
// root is the grant, outside is beside it. Both side names have the same
// length, so that an absolute link has the same size in both.
const (
	pdSbx = "sbx"
	pdLin = "lin"
)

// makePathDiffTree makes the starting tree beneath dir/side.
func makePathDiffTree(t testing.TB, dir, side string) string {
	base := filepath.Join(dir, side)
	for _, d := range []string{"root/d", "outside/dir"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"root/f": "contents", "root/d/g": "gg", "outside/secret": "secret"}
	for p, s := range files {
		if err := os.WriteFile(filepath.Join(base, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{"root/l": "d", "root/out": "../outside", "root/abs": filepath.Join(base, "outside")}
	for p, target := range links {
		if err := os.Symlink(target, filepath.Join(base, p)); err != nil {
			t.Fatal(err)
		}
	}
	return base
}

// pdHandle is one open file or directory on both sides.
type pdHandle struct {
	sfd uint32
	lfd int
}

// runPathDiff runs ops on both sides and fails at the first result, or
// the first tree, on which they differ.
func runPathDiff(t testing.TB, env *fuzzEnv, ops []pathDiffOp) {
	dir := t.TempDir()
	sbx := newSbxFS(t, env, makePathDiffTree(t, dir, pdSbx))
	defer sbx.close()
	lin := newLinFS(t, makePathDiffTree(t, dir, pdLin))
	defer lin.close()
	var handles []pdHandle
	defer func() {
		for _, h := range handles {
			unix.Close(h.lfd)
		}
	}()
	for i, op := range ops {
		h, ok := pdHandleOf(op, handles, sbx, lin)
		if !ok {
			continue // the grant stays open
		}
		got, sfd := sbx.do(t, op, h)
		if pathDiffAllowed(t, sbx, op, h, got) == pdSkip {
			continue
		}
		want, lfd := lin.do(t, op, h)
		if got != want {
			if pdRunEnds(t, lin, i, op, got) {
				return
			}
			t.Fatalf("op %d %v:\n sandboxd %+v\n linux    %+v\nops: %v", i, op, got, want, ops[:i+1])
		}
		handles = pdKeepHandles(handles, op, got.errno, sfd, lfd)
		if s, l := treeOf(t, sbx.base), treeOf(t, lin.base); s != l {
			t.Fatalf("op %d %v: the trees differ:\n sandboxd:\n%s\n linux:\n%s\nops: %v", i, op, s, l, ops[:i+1])
		}
	}
}

// pdActsOnHandle is whether an operation of kind acts on a handle rather
// than on a path beneath the grant.
func pdActsOnHandle(kind int) bool {
	return kind != pdOpen && kind < pdMkdir || kind == pdFstat || kind == pdTruncate || kind == pdReaddir
}

// pdHandleOf is the handle op acts on, on both sides: op.h, modulo one
// more than the open handles, picks one of them, or (one past the last)
// the grant. An op on no handle has the zero pdHandle. ok is false for a
// close of the grant, which is not run.
func pdHandleOf(op pathDiffOp, handles []pdHandle, sbx *sbxFS, lin *linFS) (h pdHandle, ok bool) {
	if !pdActsOnHandle(op.kind) {
		return pdHandle{}, true
	}
	if k := op.h % (len(handles) + 1); k < len(handles) {
		return handles[k], true
	}
	return pdHandle{sfd: sbx.rootFD, lfd: lin.root}, op.kind != pdClose
}

// pdRunEnds is whether got, which differs from what Linux did, is one of
// the limits where sandboxd stops before Linux does on purpose, after
// which the trees may differ and the run ends; it logs which.
func pdRunEnds(t testing.TB, lin *linFS, i int, op pathDiffOp, got pathDiffResult) bool {
	if got.errno == caps.ELOOP && lin.linksFollowed(op) > maxLinksFollowed {
		// sandboxd follows at most 8 links in a path, Linux 40:
		// the trees may now differ, and the run ends.
		t.Logf("op %d %v: ELOOP past %d links, where Linux follows 40; the run ends", i, op, maxLinksFollowed)
		return true
	}
	if got.errno == caps.ENAMETOOLONG && max(dotDots(op.p1), dotDots(op.p2)) > maxRootRestarts {
		// os.Root gives up on a path whose ".." make it start over
		// from the top more than 8 times in more than 255 steps,
		// where Linux goes on: the run ends.
		t.Logf("op %d %v: ENAMETOOLONG past %d \"..\", where Linux goes on; the run ends", i, op, maxRootRestarts)
		return true
	}
	return false
}

// pdKeepHandles is handles after op, which both sides ran alike with
// errno: an open that succeeded adds the new handle (sfd on sandboxd,
// lfd on Linux), a close that succeeded removes the one it closed.
func pdKeepHandles(handles []pdHandle, op pathDiffOp, errno caps.Errno, sfd uint32, lfd int) []pdHandle {
	switch {
	case op.kind == pdOpen && errno == 0:
		handles = append(handles, pdHandle{sfd: sfd, lfd: lfd})
	case op.kind == pdClose && errno == 0:
		k := op.h % (len(handles) + 1)
		handles = append(handles[:k], handles[k+1:]...)
	}
	return handles
}

// What pathDiffAllowed decides.
const (
	pdCompare = iota // run on Linux and compare
	pdSkip           // sandboxd's answer is the documented one; Linux is not asked
)

// pathDiffAllowed checks got, sandboxd's result of op, against the
// differences docs/ABI.md and docs/WASI.md (Paths and Linux) keep on
// purpose, and says whether Linux is still to be asked.
func pathDiffAllowed(t testing.TB, sbx *sbxFS, op pathDiffOp, h pdHandle, got pathDiffResult) int {
	// A handle without the right a call needs is ENOTCAPABLE, where
	// Linux's descriptor has an access mode (EBADF) or a type (a
	// directory reads EISDIR and seeks). WASI answers as POSIX does for
	// a directory (EISDIR) where it can tell.
	if need, ok := pdNeeds(op); ok {
		c, err := sbx.g.table.Get(h.sfd)
		if err != nil {
			t.Fatalf("%v: handle %d: %v", op, h.sfd, err)
		}
		if b, _ := c.Rights(); !b.Has(need) && !(op.kind == pdSeek && op.off == 0 && op.whence == 1 && b.Has(caps.RightFDTell)) {
			want := caps.ENOTCAPABLE
			if op.wasi && c.Kind() == caps.KindDirectory && (op.kind == pdRead || op.kind == pdPread || op.kind == pdPwrite || op.kind == pdSeek) {
				want = caps.EISDIR
			}
			if got.errno != want {
				t.Fatalf("%v on a handle without %v: %+v, want %v", op, need, got, want)
			}
			return pdSkip
		}
	}
	switch {
	case op.kind == pdSymlink && op.wasi && strings.HasPrefix(op.p1, "/"):
		// WASI's path_symlink refuses an absolute target.
		if got.errno != caps.EPERM {
			t.Fatalf("%v: %+v, want EPERM", op, got)
		}
		return pdSkip
	}
	return pdCompare
}

// maxRootRestarts is how many ".." components os.Root, which resolves
// every path beneath a grant, takes in one path of more than 255 steps
// (docs/ABI.md, Paths and Linux): each makes it start over from the top.
const maxRootRestarts = 8

// dotDots counts the ".." components of p.
func dotDots(p string) int {
	n := 0
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			n++
		}
	}
	return n
}

// maxLinksFollowed is how many symbolic links sandboxd follows in one
// path (docs/WASI.md, Limits).
const maxLinksFollowed = 8

// pdNeeds is the right a call on a handle needs.
func pdNeeds(op pathDiffOp) (caps.Rights, bool) {
	switch op.kind {
	case pdRead:
		return caps.RightFDRead, true
	case pdWrite:
		return caps.RightFDWrite, true
	case pdPread:
		return caps.RightFDRead | caps.RightFDSeek, true
	case pdPwrite:
		return caps.RightFDWrite | caps.RightFDSeek, true
	case pdSeek:
		return caps.RightFDSeek, true
	case pdFstat:
		return caps.RightFileStatFGet, true
	case pdTruncate:
		return caps.RightFileStatFPutSize, true
	case pdReaddir:
		return caps.RightFileReaddir, true
	}
	return 0, false
}

// sbxFS is a guest holding a read-write grant of base/root, driven
// through the handlers.
type sbxFS struct {
	g      *Guest
	env    *fuzzEnv
	base   string
	rootFD uint32
}

func newSbxFS(t testing.TB, env *fuzzEnv, base string) *sbxFS {
	k := caps.NewKernel(nil)
	h := &caps.Holder{ID: "pathdiff"}
	tbl := caps.NewTable(k, h, 64)
	d, err := caps.OpenDir(filepath.Join(base, "root"))
	if err != nil {
		t.Fatal(err)
	}
	b, i := caps.GrantRights(caps.KindDirectory, false)
	fd, err := tbl.Insert(k.Mint(h, d, b, i, "root", "pathdiff"))
	if err != nil {
		t.Fatal(err)
	}
	s := &sbxFS{env: env, base: base, rootFD: fd}
	s.g = env.rt.NewGuest(&Module{compiledModule: &compiledModule{}}, GuestConfig{ID: "pathdiff", Table: tbl, Args: []string{"pathdiff"}, Memory: &testCharge{limit: fuzzMemory}})
	s.g.ctx, s.g.cancel = context.WithCancelCause(context.Background())
	return s
}

func (s *sbxFS) close() {
	s.g.table.CloseAll()
	s.g.cancel(nil)
}

// pdHandlers finds the native calls and WASI's functions by name.
var pdHandlers = func() map[string]handler {
	m := map[string]handler{}
	for _, c := range calls {
		m[c.Name] = c.fn
	}
	for _, c := range wasiCalls {
		m["wasi "+c.Name] = c.fn
	}
	return m
}()

func (s *sbxFS) call(t testing.TB, name string, params ...uint64) caps.Errno {
	fn, ok := pdHandlers[name]
	if !ok {
		t.Fatalf("no call %s", name)
	}
	e, r := callHandler(fn, s.g, s.env.mod.Memory(), params)
	if r != nil {
		t.Fatalf("%s panicked: %v", name, r)
	}
	return e
}

func (s *sbxFS) mem() interface {
	Write(uint32, []byte) bool
	Read(uint32, uint32) ([]byte, bool)
	ReadUint32Le(uint32) (uint32, bool)
	ReadUint64Le(uint32) (uint64, bool)
} {
	return s.env.mod.Memory()
}

// str puts p at ptr and returns (ptr, len) as parameters.
func (s *sbxFS) str(ptr uint32, p string) (uint64, uint64) {
	s.mem().Write(ptr, []byte(p))
	return uint64(ptr), uint64(len(p))
}

func (s *sbxFS) u32(ptr uint32) int {
	v, _ := s.mem().ReadUint32Le(ptr)
	return int(v)
}

func (s *sbxFS) bytes(ptr uint32, n int) []byte {
	b, _ := s.mem().Read(ptr, uint32(n))
	return append([]byte(nil), b...)
}

// absTarget is a symlink target with a leading "/" made the root of
// base's tree.
func absTarget(base, p string) string {
	if strings.HasPrefix(p, "/") {
		return filepath.Join(base, "root") + p
	}
	return p
}

// writeData is what a write of op.n bytes writes: the same on both sides.
func writeData(op pathDiffOp) []byte {
	b := make([]byte, op.n)
	for i := range b {
		b[i] = byte('A' + (int(op.off)+i+op.h)%26)
	}
	return b
}

// Rights an open asks for, by access mode, in both numberings.
var (
	pdReadRights  = caps.RightFDRead | caps.RightFDSeek | caps.RightFDTell | caps.RightFileReaddir | caps.RightFileStatFGet
	pdWriteRights = caps.RightFDWrite | caps.RightFDSeek | caps.RightFDTell | caps.RightFileStatFGet | caps.RightFileStatFPutSize
	pdWASIRead    = wasiRightFDRead | wasiRightFDSeek | wasiRightFDTell | wasiRightFDReaddir | wasiRightFDFilestatGet
	pdWASIWrite   = wasiRightFDWrite | wasiRightFDSeek | wasiRightFDTell | wasiRightFDFilestatGet | wasiRightFDFilestatSetSize
)

// sbxArgs is what the calls of one op take: the grant, the handle, the
// lookup flags for op.follow, and op's paths as put in guest memory; w
// is the prefix of the name of a call both ABIs have under one name.
type sbxArgs struct {
	w                string
	root, fd, follow uint64
	p1, n1, p2, n2   uint64
}

// args puts op's paths in guest memory, both of them whatever op is, and
// returns what its calls take.
func (s *sbxFS) args(op pathDiffOp, h pdHandle) sbxArgs {
	a := sbxArgs{root: uint64(s.rootFD), fd: uint64(h.sfd)}
	if op.wasi {
		a.w = "wasi "
	}
	a.p1, a.n1 = s.str(pdPath1, op.p1)
	a.p2, a.n2 = s.str(pdPath2, op.p2)
	if op.follow {
		a.follow = lookupSymlinkFollow
	}
	return a
}

// sbxOps runs an op of each kind but open, one method per family of
// calls.
var sbxOps = [pdKinds]func(*sbxFS, testing.TB, pathDiffOp, sbxArgs) pathDiffResult{
	pdClose:    (*sbxFS).closeFD,
	pdRead:     (*sbxFS).read,
	pdPread:    (*sbxFS).read,
	pdWrite:    (*sbxFS).write,
	pdPwrite:   (*sbxFS).write,
	pdSeek:     (*sbxFS).seek,
	pdMkdir:    (*sbxFS).mkdir,
	pdUnlink:   (*sbxFS).unlink,
	pdRename:   (*sbxFS).rename,
	pdLink:     (*sbxFS).link,
	pdSymlink:  (*sbxFS).symlink,
	pdReadlink: (*sbxFS).readlink,
	pdStat:     (*sbxFS).stat,
	pdFstat:    (*sbxFS).fstat,
	pdTruncate: (*sbxFS).truncate,
	pdReaddir: func(s *sbxFS, t testing.TB, op pathDiffOp, a sbxArgs) pathDiffResult {
		return s.readdir(t, op, a.fd)
	},
}

// do runs op; for an open that succeeds it also returns the new fd.
func (s *sbxFS) do(t testing.TB, op pathDiffOp, h pdHandle) (pathDiffResult, uint32) {
	a := s.args(op, h)
	if op.kind == pdOpen {
		return s.open(t, op, a)
	}
	return sbxOps[op.kind](s, t, op, a), 0
}

// open is file_open or WASI's path_open of op.p1 beneath the grant,
// asking for the rights of op.mode; it returns the new fd.
func (s *sbxFS) open(t testing.TB, op pathDiffOp, a sbxArgs) (pathDiffResult, uint32) {
	var e caps.Errno
	if op.wasi {
		var base uint64
		if op.mode != pdWronly {
			base |= pdWASIRead
		}
		if op.mode != pdRdonly {
			base |= pdWASIWrite
		}
		e = s.call(t, "wasi path_open", a.root, a.follow, a.p1, a.n1, uint64(op.oflags), base, 0, 0, pdOut)
	} else {
		var base caps.Rights
		if op.mode != pdWronly {
			base |= pdReadRights
		}
		if op.mode != pdRdonly {
			base |= pdWriteRights
		}
		st := fdstat{base: base}.encode()
		s.mem().Write(pdFdstat, st[:])
		e = s.call(t, "file_open", a.root, a.follow, a.p1, a.n1, uint64(op.oflags), pdFdstat, pdOut)
	}
	if e != 0 {
		return pathDiffResult{errno: e}, 0
	}
	return pathDiffResult{}, uint32(s.u32(pdOut))
}

func (s *sbxFS) closeFD(t testing.TB, _ pathDiffOp, a sbxArgs) pathDiffResult {
	return pathDiffResult{errno: s.call(t, "fd_close", a.fd)}
}

// putIOV puts at pdIOV one iovec of n bytes at pdData.
func (s *sbxFS) putIOV(n int) {
	var iov [8]byte
	binary.LittleEndian.PutUint32(iov[0:], pdData)
	binary.LittleEndian.PutUint32(iov[4:], uint32(n))
	s.mem().Write(pdIOV, iov[:])
}

// read is fd_read, or fd_pread at op.off, of op.n bytes into a buffer
// filled with 0xee: the bytes read and the rest of the buffer are
// compared.
func (s *sbxFS) read(t testing.TB, op pathDiffOp, a sbxArgs) pathDiffResult {
	var r pathDiffResult
	s.mem().Write(pdData, bytes.Repeat([]byte{0xee}, op.n))
	s.putIOV(op.n)
	if op.kind == pdRead {
		r.errno = s.call(t, a.w+"fd_read", a.fd, pdIOV, 1, pdOut)
	} else {
		r.errno = s.call(t, a.w+"fd_pread", a.fd, pdIOV, 1, uint64(op.off), pdOut)
	}
	if r.errno == 0 {
		r.n = s.u32(pdOut)
		r.data = string(s.bytes(pdData, op.n))
	}
	return r
}

// write is fd_write, or fd_pwrite at op.off, of op.n bytes of writeData.
func (s *sbxFS) write(t testing.TB, op pathDiffOp, a sbxArgs) pathDiffResult {
	var r pathDiffResult
	s.mem().Write(pdData, writeData(op))
	s.putIOV(op.n)
	if op.kind == pdWrite {
		r.errno = s.call(t, a.w+"fd_write", a.fd, pdIOV, 1, pdOut)
	} else {
		r.errno = s.call(t, a.w+"fd_pwrite", a.fd, pdIOV, 1, uint64(op.off), pdOut)
	}
	if r.errno == 0 {
		r.n = s.u32(pdOut)
	}
	return r
}

// seek is fd_seek to op.off from op.whence, in each ABI's numbering of
// whence.
func (s *sbxFS) seek(t testing.TB, op pathDiffOp, a sbxArgs) pathDiffResult {
	var r pathDiffResult
	if op.wasi {
		r.errno = s.call(t, "wasi fd_seek", a.fd, uint64(op.off), uint64(op.whence), pdOut)
	} else {
		whence := [...]uint64{whenceSet, whenceCur, whenceEnd}[op.whence]
		r.errno = s.call(t, "fd_seek", a.fd, uint64(op.off), whence, pdOut)
	}
	if r.errno == 0 {
		v, _ := s.mem().ReadUint64Le(pdOut)
		r.off = int64(v)
	}
	return r
}

func (s *sbxFS) mkdir(t testing.TB, op pathDiffOp, a sbxArgs) pathDiffResult {
	if op.wasi {
		return pathDiffResult{errno: s.call(t, "wasi path_create_directory", a.root, a.p1, a.n1)}
	}
	return pathDiffResult{errno: s.call(t, "file_create", a.root, a.p1, a.n1, filetypeDirectory)}
}

// unlink removes op.p1, a directory when op.dir is set: file_unlink
// (with REMOVEDIR), or WASI's path_remove_directory or path_unlink_file.
func (s *sbxFS) unlink(t testing.TB, op pathDiffOp, a sbxArgs) pathDiffResult {
	switch {
	case !op.wasi && op.dir:
		return pathDiffResult{errno: s.call(t, "file_unlink", a.root, a.p1, a.n1, unlinkRemovedir)}
	case !op.wasi:
		return pathDiffResult{errno: s.call(t, "file_unlink", a.root, a.p1, a.n1, 0)}
	case op.dir:
		return pathDiffResult{errno: s.call(t, "wasi path_remove_directory", a.root, a.p1, a.n1)}
	default:
		return pathDiffResult{errno: s.call(t, "wasi path_unlink_file", a.root, a.p1, a.n1)}
	}
}

func (s *sbxFS) rename(t testing.TB, op pathDiffOp, a sbxArgs) pathDiffResult {
	name := map[bool]string{false: "file_rename", true: "wasi path_rename"}[op.wasi]
	return pathDiffResult{errno: s.call(t, name, a.root, a.p1, a.n1, a.root, a.p2, a.n2)}
}

func (s *sbxFS) link(t testing.TB, op pathDiffOp, a sbxArgs) pathDiffResult {
	name := map[bool]string{false: "file_link", true: "wasi path_link"}[op.wasi]
	return pathDiffResult{errno: s.call(t, name, a.root, a.follow, a.p1, a.n1, a.root, a.p2, a.n2)}
}

// symlink makes op.p2 a link to op.p1, a leading "/" of which is the root
// of this side's tree; the target is put at pdPath1 in op.p1's place.
func (s *sbxFS) symlink(t testing.TB, op pathDiffOp, a sbxArgs) pathDiffResult {
	tp, tn := s.str(pdPath1, absTarget(s.base, op.p1))
	name := map[bool]string{false: "file_symlink", true: "wasi path_symlink"}[op.wasi]
	return pathDiffResult{errno: s.call(t, name, tp, tn, a.root, a.p2, a.n2)}
}

// readlink reads the link op.p1 into op.n bytes of a 64-byte buffer
// filled with 0xee, the whole of which is compared.
func (s *sbxFS) readlink(t testing.TB, op pathDiffOp, a sbxArgs) pathDiffResult {
	var r pathDiffResult
	s.mem().Write(pdLinkBuf, bytes.Repeat([]byte{0xee}, 64))
	name := a.w + map[bool]string{false: "file_readlink", true: "path_readlink"}[op.wasi]
	r.errno = s.call(t, name, a.root, a.p1, a.n1, pdLinkBuf, uint64(op.n), pdOut)
	if r.errno == 0 {
		r.n = s.u32(pdOut)
		r.data = hideSide(s.bytes(pdLinkBuf, 64), s.base)
	}
	return r
}

func (s *sbxFS) stat(t testing.TB, op pathDiffOp, a sbxArgs) pathDiffResult {
	var r pathDiffResult
	if op.wasi {
		r.errno = s.call(t, "wasi path_filestat_get", a.root, a.follow, a.p1, a.n1, pdStatBuf)
	} else {
		r.errno = s.call(t, "file_stat_get", a.root, a.follow, a.p1, a.n1, pdStatBuf)
	}
	if r.errno == 0 {
		r.stat = s.statOf(op.wasi)
	}
	return r
}

func (s *sbxFS) fstat(t testing.TB, op pathDiffOp, a sbxArgs) pathDiffResult {
	var r pathDiffResult
	if op.wasi {
		r.errno = s.call(t, "wasi fd_filestat_get", a.fd, pdStatBuf)
	} else {
		r.errno = s.call(t, "file_stat_fget", a.fd, pdStatBuf)
	}
	if r.errno == 0 {
		r.stat = s.statOf(op.wasi)
	}
	return r
}

// truncate sets the size of the handle's file to op.n.
func (s *sbxFS) truncate(t testing.TB, op pathDiffOp, a sbxArgs) pathDiffResult {
	if op.wasi {
		return pathDiffResult{errno: s.call(t, "wasi fd_filestat_set_size", a.fd, uint64(op.n))}
	}
	var st [filestatSize]byte
	binary.LittleEndian.PutUint64(st[filestatSizeOff:], uint64(op.n))
	s.mem().Write(pdStatBuf, st[:])
	return pathDiffResult{errno: s.call(t, "file_stat_fput", a.fd, pdStatBuf, fsSize)}
}

// statOf reads the filestat at pdStatBuf: type, size and link count.
func (s *sbxFS) statOf(wasi bool) string {
	b := s.bytes(pdStatBuf, wasiFilestatSize)
	le := binary.LittleEndian
	if wasi {
		return fmt.Sprintf("%s size %d nlink %d", pdWASITypes[b[16]], le.Uint64(b[32:]), le.Uint64(b[24:]))
	}
	return fmt.Sprintf("%s size %d nlink %d", pdTypes[b[16]], le.Uint64(b[24:]), le.Uint32(b[20:]))
}

var (
	pdTypes     = map[byte]string{filetypeRegularFile: "file", filetypeDirectory: "dir", filetypeSymbolicLink: "link"}
	pdWASITypes = map[byte]string{wasiFiletypeRegularFile: "file", wasiFiletypeDirectory: "dir", wasiFiletypeSymbolicLink: "link"}
)

// readdir reads the whole listing of fd from cookie 0 in buffers of op.n
// bytes, each call resuming at the cookie of the last whole entry the one
// before returned, and checks that every entry's d_next is the cookie of
// the entry after it.
func (s *sbxFS) readdir(t testing.TB, op pathDiffOp, fd uint64) pathDiffResult {
	name := "file_readdir"
	types := pdTypes
	if op.wasi {
		name, types = "wasi fd_readdir", pdWASITypes
	}
	var names []string
	cookie := uint64(0)
	for range 64 {
		if e := s.call(t, name, fd, pdDirBuf, uint64(op.n), cookie, pdOut); e != 0 {
			return pathDiffResult{errno: e}
		}
		used := s.u32(pdOut)
		b := s.bytes(pdDirBuf, used)
		for len(b) >= direntSize {
			next := binary.LittleEndian.Uint64(b[0:])
			namlen := int(binary.LittleEndian.Uint32(b[16:]))
			if len(b) < direntSize+namlen {
				break
			}
			if next != cookie+1 {
				t.Fatalf("%v: the entry at cookie %d has d_next %d", op, cookie, next)
			}
			names = append(names, string(b[direntSize:direntSize+namlen])+" "+types[b[20]])
			cookie = next
			b = b[direntSize+namlen:]
		}
		if used < op.n {
			return pathDiffResult{data: strings.Join(names, ",")}
		}
	}
	t.Fatalf("%v: the listing did not end after 64 calls", op)
	return pathDiffResult{}
}

// linFS is the same tree on Linux, each path resolved by the kernel
// beneath the descriptor root.
type linFS struct {
	base string
	root int
}

func newLinFS(t testing.TB, base string) *linFS {
	fd, err := unix.Open(filepath.Join(base, "root"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &linFS{base: base, root: fd}
}

func (l *linFS) close() { unix.Close(l.root) }

// resolve opens p beneath root with openat2(2) and RESOLVE_BENEATH. The
// kernel's EXDEV, for a path that would leave root, is ENOTCAPABLE in
// sandboxd (docs/ABI.md, Paths and Linux). EAGAIN, which openat2 answers
// for a ".." resolved while a rename happened anywhere on the system (as
// another package's tests do at once), is tried again, as openat2(2)
// says a caller may.
func (l *linFS) resolve(p string, flags int) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	if flags&unix.O_CREAT != 0 {
		how.Mode = 0o666
	}
	fd, err := unix.Openat2(l.root, p, &how)
	for err == unix.EAGAIN {
		fd, err = unix.Openat2(l.root, p, &how)
	}
	if err == unix.EXDEV {
		err = caps.ENOTCAPABLE
	}
	return fd, err
}

// splitLast splits p into the path of the directory holding its last
// component ("." for none) and that component with its trailing slashes.
// A path of slashes alone is the absolute root, "/" and ".".
func splitLast(p string) (dir, last string) {
	t := strings.TrimRight(p, "/")
	switch {
	case p == "":
		return ".", ""
	case t == "":
		return p, "."
	}
	i := strings.LastIndexByte(t, '/')
	if i < 0 {
		return ".", p
	}
	return t[:i+1], p[i+1:]
}

// at calls op with the directory holding p's last component, resolved
// beneath root, and that component as p has it (trailing slashes kept),
// for a call that acts on the name itself and follows no final link
// (mkdirat, unlinkat, renameat, symlinkat, linkat's new name). A last
// component ".." is first resolved whole beneath root, so that the call
// never acts on a name above it. An empty path is ENOENT and one too long
// for the kernel ENAMETOOLONG, as the kernel has them before it splits a
// path.
func (l *linFS) at(p string, op func(dirfd int, name string) error) error {
	if len(p) >= unix.PathMax {
		return unix.ENAMETOOLONG // the kernel's, for the whole path
	}
	if p == "" {
		return unix.ENOENT // the kernel's, before it looks up anything
	}
	dir, last := splitLast(p)
	if strings.TrimRight(last, "/") == ".." {
		fd, err := l.resolve(p, unix.O_PATH)
		if err == caps.ENOTCAPABLE {
			return err
		}
		if err == nil {
			unix.Close(fd)
		}
	}
	pfd, err := l.resolve(dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	return op(pfd, last)
}

// linOps runs an op of each kind but open on Linux, one method per
// family of calls.
var linOps = [pdKinds]func(*linFS, pathDiffOp, pdHandle) (pathDiffResult, error){
	pdClose:    (*linFS).closeFD,
	pdRead:     (*linFS).read,
	pdPread:    (*linFS).read,
	pdWrite:    (*linFS).write,
	pdPwrite:   (*linFS).write,
	pdSeek:     (*linFS).seek,
	pdMkdir:    (*linFS).mkdir,
	pdUnlink:   (*linFS).unlink,
	pdRename:   (*linFS).rename,
	pdLink:     (*linFS).link,
	pdSymlink:  (*linFS).symlink,
	pdReadlink: func(l *linFS, op pathDiffOp, _ pdHandle) (pathDiffResult, error) { return l.readlink(op) },
	pdStat:     (*linFS).stat,
	pdFstat:    (*linFS).fstat,
	pdTruncate: (*linFS).truncate,
	pdReaddir:  (*linFS).readdir,
}

// do runs op; for an open that succeeds it also returns the new
// descriptor. A result with an error is that error's errno alone.
func (l *linFS) do(t testing.TB, op pathDiffOp, h pdHandle) (pathDiffResult, int) {
	if op.kind == pdOpen {
		return l.open(op)
	}
	r, err := linOps[op.kind](l, op, h)
	if err != nil {
		return pathDiffResult{errno: caps.ErrnoOf(err)}, -1
	}
	return r, -1
}

// open opens op.p1 beneath root with the access mode, the flags of
// op.oflags, and O_NOFOLLOW unless op.follow.
func (l *linFS) open(op pathDiffOp) (pathDiffResult, int) {
	flags := [...]int{unix.O_RDONLY, unix.O_WRONLY, unix.O_RDWR}[op.mode]
	for bit, f := range map[uint32]int{oflagCreat: unix.O_CREAT, oflagDirectory: unix.O_DIRECTORY, oflagExcl: unix.O_EXCL, oflagTrunc: unix.O_TRUNC} {
		if op.oflags&bit != 0 {
			flags |= f
		}
	}
	if !op.follow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := l.resolve(op.p1, flags)
	if err != nil {
		return pathDiffResult{errno: caps.ErrnoOf(err)}, -1
	}
	return pathDiffResult{}, fd
}

func (l *linFS) closeFD(_ pathDiffOp, h pdHandle) (pathDiffResult, error) {
	return pathDiffResult{}, unix.Close(h.lfd)
}

// read is read(2), or pread(2) at op.off, of op.n bytes into a buffer
// filled with 0xee, as the sandboxd side reads.
func (l *linFS) read(op pathDiffOp, h pdHandle) (pathDiffResult, error) {
	var r pathDiffResult
	var err error
	b := bytes.Repeat([]byte{0xee}, op.n)
	if op.kind == pdRead {
		r.n, err = unix.Read(h.lfd, b)
	} else {
		r.n, err = unix.Pread(h.lfd, b, op.off)
	}
	r.data = string(b)
	return r, err
}

// write is write(2), or pwrite(2) at op.off, of op.n bytes of writeData.
func (l *linFS) write(op pathDiffOp, h pdHandle) (pathDiffResult, error) {
	var r pathDiffResult
	var err error
	if op.kind == pdWrite {
		r.n, err = unix.Write(h.lfd, writeData(op))
	} else {
		r.n, err = unix.Pwrite(h.lfd, writeData(op), op.off)
	}
	return r, err
}

func (l *linFS) seek(op pathDiffOp, h pdHandle) (pathDiffResult, error) {
	var r pathDiffResult
	var err error
	r.off, err = unix.Seek(h.lfd, op.off, op.whence)
	return r, err
}

func (l *linFS) mkdir(op pathDiffOp, _ pdHandle) (pathDiffResult, error) {
	return pathDiffResult{}, l.at(op.p1, func(fd int, name string) error { return unix.Mkdirat(fd, name, 0o777) })
}

func (l *linFS) unlink(op pathDiffOp, _ pdHandle) (pathDiffResult, error) {
	flags := 0
	if op.dir {
		flags = unix.AT_REMOVEDIR
	}
	return pathDiffResult{}, l.at(op.p1, func(fd int, name string) error { return unix.Unlinkat(fd, name, flags) })
}

func (l *linFS) rename(op pathDiffOp, _ pdHandle) (pathDiffResult, error) {
	return pathDiffResult{}, l.at(op.p1, func(fd1 int, n1 string) error {
		return l.at(op.p2, func(fd2 int, n2 string) error { return unix.Renameat(fd1, n1, fd2, n2) })
	})
}

// link links op.p2 to what op.p1 names, its final link followed when
// op.follow is set: linkat(2) of op.p1 resolved beneath root.
func (l *linFS) link(op pathDiffOp, _ pdHandle) (pathDiffResult, error) {
	flags := unix.O_PATH
	if !op.follow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := l.resolve(op.p1, flags)
	if err != nil {
		return pathDiffResult{}, err
	}
	defer unix.Close(fd)
	return pathDiffResult{}, l.at(op.p2, func(dirfd int, name string) error { return unix.Linkat(fd, "", dirfd, name, unix.AT_EMPTY_PATH) })
}

// symlink makes op.p2 a link to op.p1, a leading "/" of which is the root
// of this side's tree. symlink(2) takes the target before the path: an
// empty one is ENOENT, one too long ENAMETOOLONG, whatever the path.
func (l *linFS) symlink(op pathDiffOp, _ pdHandle) (pathDiffResult, error) {
	target := absTarget(l.base, op.p1)
	switch {
	case target == "":
		return pathDiffResult{}, unix.ENOENT
	case len(target) >= unix.PathMax:
		return pathDiffResult{}, unix.ENAMETOOLONG
	}
	return pathDiffResult{}, l.at(op.p2, func(fd int, name string) error { return unix.Symlinkat(target, fd, name) })
}

// stat is fstat(2) of what op.p1 names beneath root, its final link
// followed when op.follow is set.
func (l *linFS) stat(op pathDiffOp, _ pdHandle) (pathDiffResult, error) {
	flags := unix.O_PATH
	if !op.follow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := l.resolve(op.p1, flags)
	if err != nil {
		return pathDiffResult{}, err
	}
	defer unix.Close(fd)
	var r pathDiffResult
	r.stat, err = fstatOf(fd)
	return r, err
}

func (l *linFS) fstat(_ pathDiffOp, h pdHandle) (pathDiffResult, error) {
	var r pathDiffResult
	var err error
	r.stat, err = fstatOf(h.lfd)
	return r, err
}

func (l *linFS) truncate(op pathDiffOp, h pdHandle) (pathDiffResult, error) {
	return pathDiffResult{}, unix.Ftruncate(h.lfd, int64(op.n))
}

func (l *linFS) readdir(_ pathDiffOp, h pdHandle) (pathDiffResult, error) {
	var r pathDiffResult
	var err error
	r.data, err = listingOf(h.lfd)
	return r, err
}

// readlink is readlink(2) on what p names, not following a final link:
// EINVAL for what is not a link, and for a buffer of no bytes before
// anything is looked up. The native file_readlink into no room is
// CloudABI's instead (docs/ABI.md, Paths and Linux): it reads the link
// and copies nothing.
func (l *linFS) readlink(op pathDiffOp) (pathDiffResult, error) {
	if op.n == 0 && op.wasi {
		return pathDiffResult{}, unix.EINVAL
	}
	fd, err := l.resolve(op.p1, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return pathDiffResult{}, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return pathDiffResult{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return pathDiffResult{}, unix.EINVAL
	}
	b := bytes.Repeat([]byte{0xee}, 64)
	if op.n == 0 {
		return pathDiffResult{data: string(b)}, nil
	}
	n, err := unix.Readlinkat(fd, "", b[:op.n])
	if err != nil {
		return pathDiffResult{}, err
	}
	return pathDiffResult{n: n, data: hideSide(b, l.base)}, nil
}

func fstatOf(fd int) (string, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", err
	}
	typ := map[uint32]string{unix.S_IFREG: "file", unix.S_IFDIR: "dir", unix.S_IFLNK: "link"}[st.Mode&unix.S_IFMT]
	return fmt.Sprintf("%s size %d nlink %d", typ, st.Size, st.Nlink), nil
}

// listingOf lists the directory fd is open on as getdents(2) on it
// lists it, in sandboxd's order: ".", "..", then the other names in byte
// order. It reads a new descriptor of the same directory (reopened through
// /proc, as it is, even when it has been removed), so that fd's offset
// stays where it is.
func listingOf(fd int) (string, error) {
	dfd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(dfd)
	var dots, rest []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(dfd, buf)
		if err != nil {
			return "", err
		}
		if n <= 0 {
			break
		}
		for b := buf[:n]; len(b) >= direntNameOff; {
			reclen := int(binary.NativeEndian.Uint16(b[16:]))
			typ := b[18]
			name := b[direntNameOff:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			b = b[reclen:]
			e := string(name) + " " + map[uint8]string{unix.DT_REG: "file", unix.DT_DIR: "dir", unix.DT_LNK: "link"}[typ]
			if string(name) == "." || string(name) == ".." {
				dots = append(dots, e)
			} else {
				rest = append(rest, e)
			}
		}
	}
	sort.Strings(dots)
	sort.Strings(rest)
	return strings.Join(append(dots, rest...), ","), nil
}

// direntNameOff is where the name starts in a Linux dirent64 record, after
// d_ino (8 bytes), d_off (8), d_reclen (2) and d_type (1).
const direntNameOff = 19

// linksFollowed counts the symbolic links Linux follows in resolving
// the paths of op, the most of either path; it stops counting past 40,
// Linux's limit.
func (l *linFS) linksFollowed(op pathDiffOp) int {
	switch op.kind {
	case pdOpen, pdStat:
		return l.countLinks(op.p1, op.follow)
	case pdLink:
		return max(l.countLinks(op.p1, op.follow), l.countLinks(op.p2, false))
	case pdRename:
		return max(l.countLinks(op.p1, false), l.countLinks(op.p2, false))
	case pdSymlink:
		return l.countLinks(op.p2, false)
	}
	return l.countLinks(op.p1, false)
}

// countLinks walks p in the Linux tree as the kernel resolves it, one
// component at a time, a ".." going up from where a link led, and counts
// the links it follows: every one before the last component, and the
// last when follow is set or a slash comes after it.
func (l *linFS) countLinks(p string, follow bool) int {
	root := filepath.Join(l.base, "root")
	var stack []string // the directories walked down from root
	todo := strings.Split(p, "/")
	count := 0
	for len(todo) > 0 && count <= 40 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return count
			}
			stack = stack[:len(stack)-1]
			continue
		}
		final := strings.Trim(strings.Join(todo, "/"), "/") == ""
		trailing := final && len(todo) > 0
		cur := filepath.Join(append([]string{root}, append(stack, c)...)...)
		fi, err := os.Lstat(cur)
		if err != nil {
			return count
		}
		if fi.Mode()&fs.ModeSymlink == 0 || final && !follow && !trailing {
			stack = append(stack, c)
			continue
		}
		count++
		target, err := os.Readlink(cur)
		if err != nil || strings.HasPrefix(target, "/") {
			return count
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return count
}

// hideSide writes over the side's name where data, the contents of a
// link, starts with base, so that an absolute link read whole or cut
// short reads the same from both sides.
func hideSide(data []byte, base string) string {
	off := len(base) - len(pdSbx)
	n := min(len(data), off)
	if string(data[:n]) == base[:n] {
		for i := off; i < off+len(pdSbx) && i < len(data); i++ {
			data[i] = '#'
		}
	}
	return string(data)
}

// treeOf describes every file beneath base: type, permissions, link
// count, and a file's contents or a link's target, with base written as
// $BASE.
func treeOf(t testing.TB, base string) string {
	var b strings.Builder
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v nlink %d", rel, fi.Mode(), st.Nlink)
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %q", data)
		case fi.Mode()&fs.ModeSymlink != 0:
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

// pdAlphabet is what the components of a generated path are: two names
// that do not exist at first, the directory, the file and the link to the
// directory the tree starts with, "..", "." and the link out of the grant.
// pdLastAlphabet is what a last component may be instead: the names
// beneath d and beside the grant, the absolute link, and more names.
var (
	pdAlphabet     = [8]string{"a", "b", "d", "f", "l", "..", ".", "out"}
	pdLastAlphabet = [8]string{"g", "secret", "outside", "dir", "abs", "c", "e", "x"}
)

// decodePath makes a path of a 16-bit code: up to three components of
// pdAlphabet (bits 0-1 the count, 2-10 the components), the last of
// pdLastAlphabet instead (bit 15), separated by "//" rather than "/" (bit
// 11), with a trailing slash (bit 12), a leading one (bit 13), the first
// component the absolute link "abs" (bit 14). With no components, bits
// 2-3 choose the empty path, a component too long for Linux (256 bytes),
// and the longest path Linux takes and one a byte longer.
func decodePath(v uint16) string {
	n := int(v & 3)
	if n == 0 {
		switch (v >> 2) & 3 {
		case 0:
			return ""
		case 1:
			return strings.Repeat("a", 256)
		case 2:
			return strings.Repeat("./", 2046) + "f"
		}
		return strings.Repeat("./", 2047) + "ff"
	}
	comps := make([]string, n)
	for i := range comps {
		comps[i] = pdAlphabet[(v>>(2+3*i))&7]
	}
	if v&(1<<15) != 0 {
		comps[n-1] = pdLastAlphabet[(v>>(2+3*(n-1)))&7]
	}
	if v&(1<<14) != 0 {
		comps[0] = "abs"
	}
	sep := "/"
	if v&(1<<11) != 0 {
		sep = "//"
	}
	p := strings.Join(comps, sep)
	if v&(1<<12) != 0 {
		p += "/"
	}
	if v&(1<<13) != 0 {
		p = "/" + p
	}
	return p
}

// pdPathCodes maps each path decodePath makes to a code that makes it.
var pdPathCodes = sync.OnceValue(func() map[string]uint16 {
	m := map[string]uint16{}
	for v := 0xffff; v >= 0; v-- {
		if v&3 == 0 && (v>>2)&3 != 0 && v&0xfff0 != 0 {
			continue // the long paths: their code without the unused bits
		}
		m[decodePath(uint16(v))] = uint16(v)
	}
	return m
})

// pdOpSize is the bytes of fuzz input one operation takes.
const pdOpSize = 8

// decodePathDiffOps turns fuzz input into operations, eight bytes each:
// kind and ABI, flags, the two paths' codes, a handle and a size; a call
// on a handle has its offset where the second path's code would be.
func decodePathDiffOps(in []byte) []pathDiffOp {
	var ops []pathDiffOp
	for len(in) >= pdOpSize && len(ops) < 48 {
		b := in[:pdOpSize]
		in = in[pdOpSize:]
		op := pathDiffOp{
			kind: int(b[0]&0x7f) % pdKinds, wasi: b[0]&0x80 != 0,
			oflags: uint32(b[1] & 0xf), follow: b[1]&0x10 != 0, mode: int(b[1]>>5) & 3 % 3, dir: b[1]&1 != 0,
			p1: decodePath(binary.LittleEndian.Uint16(b[2:])), p2: decodePath(binary.LittleEndian.Uint16(b[4:])),
			h: int(b[6]),
		}
		switch op.kind {
		case pdRead, pdPread:
			op.n, op.off = int(b[7])%64, int64(b[4]%32)
		case pdWrite, pdPwrite, pdTruncate:
			op.n, op.off = int(b[7])%32, int64(b[4]%32)
		case pdSeek:
			op.off, op.whence = int64(int8(b[4])), int(b[1])%3
		case pdReadlink:
			op.n = int(b[7]) % 40
		case pdReaddir:
			op.n = 300 + int(b[7])
		}
		ops = append(ops, op)
	}
	return ops
}

// encodePathDiffOps is the input decodePathDiffOps turns into ops, or
// false when a path of ops is none decodePath makes.
func encodePathDiffOps(ops []pathDiffOp) ([]byte, bool) {
	var out []byte
	for _, op := range ops {
		b := make([]byte, pdOpSize)
		b[0] = byte(op.kind)
		if op.wasi {
			b[0] |= 0x80
		}
		b[1] = byte(op.oflags) | byte(op.mode)<<5
		if op.follow {
			b[1] |= 0x10
		}
		if op.dir {
			b[1] |= 1
		}
		c1, ok1 := pdPathCodes()[op.p1]
		c2, ok2 := pdPathCodes()[op.p2]
		if !ok1 || !ok2 {
			return nil, false
		}
		binary.LittleEndian.PutUint16(b[2:], c1)
		binary.LittleEndian.PutUint16(b[4:], c2)
		b[6], b[7] = byte(op.h), byte(op.n)
		switch op.kind {
		case pdRead, pdPread, pdWrite, pdPwrite, pdTruncate:
			b[4] = byte(op.off)
		case pdSeek:
			b[1], b[4] = byte(op.whence), byte(int8(op.off))
		case pdReaddir:
			b[7] = byte(op.n - 300)
		}
		out = append(out, b...)
	}
	return out, true
}

// Shorthands for the named cases.
func pdOpenOp(p string, oflags uint32, follow bool, mode int) pathDiffOp {
	return pathDiffOp{kind: pdOpen, p1: p, oflags: oflags, follow: follow, mode: mode}
}

func pdOnHandle(kind, h, n int, off int64) pathDiffOp {
	return pathDiffOp{kind: kind, h: h, n: n, off: off}
}

func pdPathOp(kind int, p1, p2 string) pathDiffOp {
	return pathDiffOp{kind: kind, p1: p1, p2: p2}
}

// pathDiffCases are sequences a reader can follow; each runs through the
// native calls and through WASI's, and FuzzPathDiff starts from them.
var pathDiffCases = map[string][]pathDiffOp{
	"a file made, written, read back, sought, truncated": {
		pdOpenOp("a", oflagCreat|oflagExcl, false, pdRdwr),
		pdOnHandle(pdWrite, 0, 10, 0),
		pdOnHandle(pdRead, 0, 8, 0),
		{kind: pdSeek, h: 0, off: 2, whence: 0},
		pdOnHandle(pdRead, 0, 20, 0),
		{kind: pdSeek, h: 0, off: -3, whence: 2},
		{kind: pdSeek, h: 0, off: -30, whence: 1},
		pdOnHandle(pdPwrite, 0, 5, 20),
		pdOnHandle(pdPread, 0, 40, 3),
		pdOnHandle(pdTruncate, 0, 4, 0),
		pdOnHandle(pdFstat, 0, 0, 0),
		pdOnHandle(pdRead, 0, 8, 0),
		pdOnHandle(pdClose, 0, 0, 0),
		pdOpenOp("a", oflagCreat|oflagExcl, false, pdRdwr),
		pdOpenOp("a", oflagTrunc, false, pdWronly),
		{kind: pdStat, p1: "a"},
	},
	"access modes and the open flags": {
		pdOpenOp("f", 0, false, pdRdonly),
		pdOnHandle(pdWrite, 0, 3, 0),
		pdOnHandle(pdRead, 0, 3, 0),
		pdOpenOp("f", 0, false, pdWronly),
		pdOnHandle(pdRead, 1, 3, 0),
		pdOnHandle(pdWrite, 1, 3, 0),
		pdOnHandle(pdRead, 0, 30, 0),
		pdOpenOp("f", oflagDirectory, false, pdRdonly),
		pdOpenOp("d", 0, false, pdRdwr),
		pdOpenOp("d", oflagDirectory, false, pdRdonly),
		pdOnHandle(pdRead, 2, 3, 0),
		pdOpenOp("d", oflagCreat|oflagDirectory, false, pdRdonly),
		pdOpenOp("b", oflagCreat|oflagDirectory, false, pdRdonly),
		pdOpenOp("b/", oflagCreat, false, pdRdwr),
		pdOpenOp("d", oflagCreat|oflagExcl, false, pdRdonly),
		pdOpenOp("a", 0, false, pdRdonly),
		pdOpenOp("f", oflagTrunc, false, pdRdonly),
		pdOnHandle(pdFstat, 0, 0, 0),
	},
	"final links followed or not": {
		pdOpenOp("l", 0, false, pdRdonly),
		pdOpenOp("l", 0, true, pdRdonly),
		pdOpenOp("l", oflagDirectory, false, pdRdonly),
		pdOpenOp("l/", 0, true, pdRdonly),
		pdOpenOp("l/g", 0, false, pdRdonly),
		pdOpenOp("l", oflagCreat|oflagExcl, true, pdRdwr),
		{kind: pdStat, p1: "l"},
		{kind: pdStat, p1: "l", follow: true},
		{kind: pdStat, p1: "l/"},
		{kind: pdReadlink, p1: "l", n: 20},
		{kind: pdReadlink, p1: "l/", n: 20},
		{kind: pdReadlink, p1: "f", n: 20},
		{kind: pdReadlink, p1: "l", n: 1},
	},
	"links made: relative, dangling, looping, out, absolute": {
		pdPathOp(pdSymlink, "f", "a"),
		pdPathOp(pdSymlink, "b", "a"),
		pdPathOp(pdSymlink, "a", "b"),
		pdOpenOp("b", 0, true, pdRdonly),
		pdPathOp(pdSymlink, "..", "d/a"),
		pdOpenOp("d/a", 0, true, pdRdonly),
		pdOpenOp("d/a/f", 0, true, pdRdonly),
		pdPathOp(pdSymlink, "../..", "d/b"),
		pdOpenOp("d/b", 0, true, pdRdonly),
		{kind: pdStat, p1: "d/b/outside", follow: true},
		{kind: pdStat, p1: "d/b"},
		pdPathOp(pdSymlink, "/f", "d/d"),
		{kind: pdReadlink, p1: "d/d", n: 30},
		pdOpenOp("d/d", 0, true, pdRdonly),
		{kind: pdStat, p1: "d/d", follow: true},
		pdPathOp(pdSymlink, "l/..", "d/f"),
		{kind: pdStat, p1: "d/f/f", follow: true},
		pdPathOp(pdSymlink, "d/l", "d/l"),
		pdOpenOp("d/l", 0, true, pdRdonly),
		pdPathOp(pdSymlink, "", "d/c"),
	},
	"following a link out of the grant": {
		pdOpenOp("out/secret", 0, true, pdRdonly),
		pdOpenOp("out", 0, true, pdRdonly),
		pdOpenOp("out", oflagDirectory, false, pdRdonly),
		pdOpenOp("abs/secret", 0, true, pdRdonly),
		pdOpenOp("out/x", oflagCreat, true, pdRdwr),
		pdOpenOp("abs/x", oflagCreat, true, pdRdwr),
		{kind: pdStat, p1: "out", follow: true},
		{kind: pdStat, p1: "out"},
		{kind: pdStat, p1: "out/", follow: false},
		{kind: pdStat, p1: "abs/secret"},
		pdPathOp(pdMkdir, "out/x", ""),
		pdPathOp(pdUnlink, "out/secret", ""),
		pdPathOp(pdRename, "out/secret", "a"),
		pdPathOp(pdRename, "f", "out/f"),
		pdPathOp(pdRename, "out", "a"),
		{kind: pdLink, p1: "out/secret", p2: "a"},
		{kind: pdLink, p1: "out", p2: "a", follow: true},
		{kind: pdLink, p1: "abs", p2: "b", follow: true},
		{kind: pdLink, p1: "abs", p2: "b"},
		pdPathOp(pdSymlink, "x", "out/x"),
		{kind: pdReadlink, p1: "out/dir", n: 20},
		{kind: pdReadlink, p1: "abs", n: 39},
	},
	"a dangling link created through": {
		pdPathOp(pdSymlink, "a", "b"),
		pdOpenOp("b", oflagCreat, true, pdRdwr),
		pdOnHandle(pdWrite, 0, 3, 0),
		pdPathOp(pdSymlink, "../out/x", "d/a"),
		pdOpenOp("d/a", oflagCreat, true, pdRdwr),
		pdOpenOp("d/a", oflagCreat, false, pdRdwr),
		pdPathOp(pdSymlink, "/b", "d/b"),
		pdOpenOp("d/b", oflagCreat, true, pdRdwr),
		pdOpenOp("d/b", oflagCreat|oflagExcl, true, pdRdwr),
	},
	"dot-dot beneath and above the grant": {
		pdOpenOp("d/../f", 0, false, pdRdonly),
		pdOpenOp("l/../f", 0, false, pdRdonly),
		pdOpenOp("f/../f", 0, false, pdRdonly),
		pdOpenOp("a/../f", 0, false, pdRdonly),
		pdOpenOp("..", 0, false, pdRdonly),
		pdOpenOp("d/../..", 0, false, pdRdonly),
		pdOpenOp("../outside", 0, false, pdRdonly),
		pdPathOp(pdMkdir, "../a", ""),
		pdPathOp(pdMkdir, "d/..", ""),
		pdPathOp(pdMkdir, "..", ""),
		pdPathOp(pdUnlink, "d/..", ""),
		{kind: pdUnlink, p1: "..", dir: true},
		pdPathOp(pdRename, "d/..", "a"),
		pdPathOp(pdRename, "f", "d/.."),
		pdPathOp(pdRename, "f", "../a"),
		pdPathOp(pdSymlink, "f", "../a"),
		{kind: pdLink, p1: "f", p2: "../a"},
		{kind: pdLink, p1: "..", p2: "a", follow: true},
		{kind: pdStat, p1: "d/.."},
		{kind: pdStat, p1: ".."},
		{kind: pdReadlink, p1: "..", n: 20},
		{kind: pdReadlink, p1: "d/..", n: 20},
	},
	// ".." is resolved where it stands, as the kernel resolves it, not
	// counted as written: after a link that leads two levels down, two
	// of them stay beneath the grant; after a name that does not exist,
	// or a file, the lookup fails there first.
	"dot-dot is resolved where it stands": {
		pdPathOp(pdMkdir, "d/a", ""),
		pdPathOp(pdSymlink, "d/a", "b"),
		pdOpenOp("b/../..", 0, false, pdRdonly),
		{kind: pdStat, p1: "b/../..", follow: true},
		pdPathOp(pdMkdir, "b/../c", ""),
		{kind: pdStat, p1: "d/c"},
		pdOpenOp("a/../..", 0, false, pdRdonly),
		pdOpenOp("f/../..", 0, false, pdRdonly),
		pdPathOp(pdMkdir, "a/../..", ""),
	},
	// Linux's PATH_MAX counts the NUL that ends a path: a path of 4096
	// bytes is too long, whatever it names.
	"a path of PATH_MAX bytes": {
		pdOpenOp(strings.Repeat("./", 2047)+"ff", 0, false, pdRdonly),
		{kind: pdStat, p1: strings.Repeat("./", 2047) + "ff"},
		pdPathOp(pdMkdir, strings.Repeat("./", 2047)+"ff", ""),
	},
	// A "/" after a final link makes open(2) follow it, O_NOFOLLOW or
	// not: "l/" is the directory l leads to, and a link to a file with a
	// slash after it is ENOTDIR.
	"a slash after a final link follows it": {
		pdOpenOp("l/", 0, false, pdRdonly),
		pdOpenOp("d/../l/", oflagDirectory, false, pdRdonly),
		pdPathOp(pdSymlink, "f", "a"),
		pdOpenOp("a/", 0, false, pdRdonly),
		pdOpenOp("a", 0, false, pdRdonly),
		pdOpenOp("out/", 0, false, pdRdonly),
	},
	// open(2) refuses O_CREAT with O_DIRECTORY before it looks at the
	// path, whatever the path is.
	"CREAT with DIRECTORY is EINVAL before the path is looked at": {
		pdOpenOp("", oflagCreat|oflagDirectory|oflagExcl, true, pdWronly),
		pdOpenOp("/f", oflagCreat|oflagDirectory, false, pdRdonly),
		pdOpenOp("..", oflagCreat|oflagDirectory, false, pdRdonly),
	},
	// rmdir(2) of a path whose last component is ".." is ENOTEMPTY (the
	// directory it names holds at least the one it was reached from),
	// and of "." EINVAL.
	"removing a directory named by a last dot-dot": {
		{kind: pdUnlink, p1: "d/..", dir: true},
		{kind: pdUnlink, p1: "d/../", dir: true},
		{kind: pdUnlink, p1: "l/..", dir: true},
		{kind: pdUnlink, p1: "d/.", dir: true},
		{kind: pdUnlink, p1: "a/..", dir: true},
		pdPathOp(pdUnlink, "d/..", ""),
	},
	// link(2) looks up the whole of its old path, then the new name's
	// directory; rename(2) the old path's directory, then the new one's,
	// then the names in them; symlink(2) takes the target before the
	// path. Each fails at the first step that fails.
	"two paths are looked up in the kernel's order": {
		{kind: pdLink, p1: "abs/b/b", p2: "", follow: true},
		pdPathOp(pdLink, "a", "../x"),
		pdPathOp(pdLink, "a", ""),
		pdPathOp(pdLink, "f", "../x"),
		pdPathOp(pdRename, "", "abs/b/b"),
		pdPathOp(pdRename, "abs/", ""),
		pdPathOp(pdRename, "f/", "../x"),
		pdPathOp(pdRename, "a", "../x"),
		pdPathOp(pdRename, "f", "a/"),
		pdPathOp(pdSymlink, "", "/../b/a/"),
		pdPathOp(pdSymlink, strings.Repeat("./", 2047)+"ff", "../a"),
		pdPathOp(pdSymlink, strings.Repeat("./", 2047)+"ff", "a"),
	},
	// A new name with a slash after it names a directory, which a hard
	// link never is: link(2) says EEXIST when the name exists, whatever
	// it is, and ENOENT when it does not. An old path with a slash after
	// a link follows it, as for every lookup.
	"slashes after the names of a link": {
		pdPathOp(pdSymlink, "d", "b"),
		pdPathOp(pdLink, "f", "b/"),
		pdPathOp(pdLink, "f", "l/"),
		pdPathOp(pdLink, "f", "f/"),
		pdPathOp(pdLink, "f", "a/"),
		pdPathOp(pdLink, "l/", "a"),
		pdPathOp(pdLink, "l/g/", "a"),
		pdPathOp(pdLink, "out/", "a"),
	},
	// symlink(2) makes no name with a slash after it, which would have to
	// be a directory: EEXIST when the name exists, whatever it is (a link
	// out of the grant included, which is not followed), ENOENT when not.
	"a symbolic link's name with a slash": {
		pdPathOp(pdSymlink, "f", "abs/"),
		pdPathOp(pdSymlink, "f", "out/"),
		pdPathOp(pdSymlink, "f", "l/"),
		pdPathOp(pdSymlink, "f", "f/"),
		pdPathOp(pdSymlink, "f", "a/"),
		pdPathOp(pdSymlink, "f", "d/.."),
		pdPathOp(pdSymlink, "f", "d/./"),
	},
	// open(2) with O_CREAT refuses a name with a slash after it (EISDIR)
	// once it has found the directory the name is in, not before: a path
	// that leaves the grant on the way there is refused for that.
	"creating a name with a slash after it": {
		pdOpenOp("abs//b/", oflagCreat, true, pdWronly),
		pdOpenOp("out/b/", oflagCreat, true, pdWronly),
		pdOpenOp("a/b/", oflagCreat, true, pdWronly),
		pdOpenOp("f/b/", oflagCreat, true, pdWronly),
		pdOpenOp("../", oflagCreat, true, pdWronly),
		pdOpenOp("d/../", oflagCreat, true, pdWronly),
		pdOpenOp("a/", oflagCreat, false, pdWronly),
		pdOpenOp("l/", oflagCreat, false, pdRdonly),
		// A last "." or ".." names a directory that exists: EEXIST with
		// EXCL, EISDIR without, the slash or not.
		pdOpenOp("d/./", oflagCreat|oflagExcl|oflagTrunc, false, pdRdwr),
		pdOpenOp("d/../", oflagCreat|oflagExcl, false, pdRdonly),
		pdOpenOp("./", oflagCreat|oflagExcl, false, pdWronly),
		pdOpenOp("d/.", oflagCreat|oflagExcl, false, pdWronly),
		pdOpenOp("d/./", oflagCreat, false, pdRdonly),
		pdOpenOp("d/..", oflagCreat, false, pdRdonly),
	},
	// The native file_readlink into no room reads the link and copies
	// nothing, as CloudABI's does; WASI's path_readlink is EINVAL, as
	// readlink(2) is, before it looks the path up (docs/ABI.md, Paths and
	// Linux).
	"readlink into no room": {
		{kind: pdReadlink, p1: "l", n: 0},
		{kind: pdReadlink, p1: "", n: 0},
		{kind: pdReadlink, p1: "f", n: 0},
		{kind: pdReadlink, p1: "a", n: 0},
		{kind: pdReadlink, p1: "../a", n: 0},
		{kind: pdReadlink, p1: "abs", n: 0},
	},
	// At most 8 links are followed in one path, where Linux follows 40
	// (docs/WASI.md, Limits): 8 in a row open, the ninth is ELOOP, and
	// the run ends there.
	"eight links in a row and a ninth": {
		pdPathOp(pdSymlink, "f", "x1"),
		pdPathOp(pdSymlink, "x1", "x2"),
		pdPathOp(pdSymlink, "x2", "x3"),
		pdPathOp(pdSymlink, "x3", "x4"),
		pdPathOp(pdSymlink, "x4", "x5"),
		pdPathOp(pdSymlink, "x5", "x6"),
		pdPathOp(pdSymlink, "x6", "x7"),
		pdPathOp(pdSymlink, "x7", "x8"),
		pdPathOp(pdSymlink, "x8", "x9"),
		pdOpenOp("x8", 0, true, pdRdonly),
		{kind: pdStat, p1: "x8", follow: true},
		pdOpenOp("x9", 0, true, pdRdonly),
	},
	// os.Root starts over from the top of the grant at each "..", and
	// gives up (ENAMETOOLONG) on a path that makes it do so more than 8
	// times in more than 255 steps: 100 "d/.." take 200 steps, 130 take
	// 260 (docs/ABI.md, Paths and Linux), and the run ends there.
	"many dot-dots in one path": {
		{kind: pdStat, p1: strings.Repeat("d/../", 100) + "f"},
		pdOpenOp(strings.Repeat("d/../", 100)+"f", 0, false, pdRdonly),
		{kind: pdStat, p1: strings.Repeat("d/../", 130) + "f"},
	},
	// getdents(2) on a directory removed while it is open lists nothing,
	// not even "." and "..".
	"listing a directory removed while it is open": {
		pdPathOp(pdMkdir, "a", ""),
		pdOpenOp("a", oflagDirectory, false, pdRdonly),
		{kind: pdReaddir, h: 0, n: 300},
		{kind: pdUnlink, p1: "a", dir: true},
		{kind: pdReaddir, h: 0, n: 300},
		{kind: pdFstat, h: 0},
		pdOpenOp("f", 0, false, pdRdwr),
		pdPathOp(pdUnlink, "f", ""),
		pdOnHandle(pdRead, 1, 10, 0),
		pdOnHandle(pdWrite, 1, 10, 0),
		pdOnHandle(pdTruncate, 1, 3, 0),
		pdOnHandle(pdFstat, 1, 0, 0),
	},
	"directories made and removed": {
		pdPathOp(pdMkdir, "a", ""),
		pdPathOp(pdMkdir, "a", ""),
		pdPathOp(pdMkdir, "b/", ""),
		pdPathOp(pdMkdir, "b//a/", ""),
		pdPathOp(pdMkdir, "f/a", ""),
		pdPathOp(pdMkdir, "l", ""),
		pdPathOp(pdMkdir, "l/", ""),
		pdPathOp(pdMkdir, "l/a", ""),
		pdPathOp(pdUnlink, "a", ""),
		{kind: pdUnlink, p1: "d", dir: true},
		{kind: pdUnlink, p1: "f", dir: true},
		{kind: pdUnlink, p1: "l", dir: true},
		{kind: pdUnlink, p1: "l/", dir: true},
		{kind: pdUnlink, p1: "l/a", dir: true},
		{kind: pdUnlink, p1: "b/a/", dir: true},
		{kind: pdUnlink, p1: "a/.", dir: true},
		{kind: pdUnlink, p1: ".", dir: true},
		pdPathOp(pdUnlink, "f/", ""),
		pdPathOp(pdUnlink, "l/", ""),
		pdPathOp(pdUnlink, "l", ""),
		pdPathOp(pdUnlink, "d/g", ""),
		{kind: pdUnlink, p1: "d", dir: true},
	},
	"renames": {
		pdPathOp(pdRename, "f", "a"),
		pdPathOp(pdRename, "a", "f"),
		pdPathOp(pdMkdir, "a", ""),
		pdPathOp(pdRename, "f", "a"),
		pdPathOp(pdRename, "a", "f"),
		pdPathOp(pdRename, "a", "d"),
		pdPathOp(pdRename, "d", "a"),
		pdPathOp(pdRename, "a", "a/b"),
		pdPathOp(pdRename, "a", "a"),
		pdPathOp(pdRename, "a/", "b/"),
		pdPathOp(pdRename, "f", "a/"),
		pdPathOp(pdRename, "f/", "a"),
		pdPathOp(pdRename, "l", "a"),
		pdPathOp(pdRename, "l/", "a"),
		pdPathOp(pdRename, "b", "."),
		pdPathOp(pdRename, ".", "b/a"),
		pdPathOp(pdRename, "b", ""),
		pdPathOp(pdRename, "b", "d/g"),
		pdPathOp(pdRename, "b/a", "b/a/"),
	},
	"hard links": {
		pdPathOp(pdLink, "f", "a"),
		{kind: pdStat, p1: "f"},
		pdPathOp(pdLink, "f", "a"),
		pdPathOp(pdLink, "d", "b"),
		pdPathOp(pdLink, "l", "b"),
		{kind: pdStat, p1: "l"},
		{kind: pdLink, p1: "l", p2: "d/a", follow: true},
		{kind: pdLink, p1: "l/g", p2: "d/a", follow: true},
		pdPathOp(pdLink, "f/", "d/b"),
		pdPathOp(pdLink, "a", "l/b"),
		pdPathOp(pdLink, "x", "d/c"),
		pdPathOp(pdLink, "", "d/c"),
		pdPathOp(pdLink, "f", ""),
		{kind: pdStat, p1: "a"},
	},
	"empty, dot, long": {
		pdOpenOp("", 0, false, pdRdonly),
		pdOpenOp(".", 0, false, pdRdonly),
		pdOpenOp("./", 0, false, pdRdonly),
		pdOpenOp(".", 0, false, pdRdwr),
		pdPathOp(pdMkdir, "", ""),
		pdPathOp(pdMkdir, ".", ""),
		pdPathOp(pdUnlink, "", ""),
		{kind: pdStat, p1: ""},
		{kind: pdStat, p1: "."},
		{kind: pdReadlink, p1: "", n: 10},
		pdPathOp(pdSymlink, "f", ""),
		pdPathOp(pdRename, "", "a"),
		pdOpenOp(strings.Repeat("a", 256), oflagCreat, false, pdRdwr),
		pdPathOp(pdMkdir, strings.Repeat("a", 256), ""),
		pdOpenOp(strings.Repeat("./", 2046)+"f", 0, false, pdRdonly),
		pdOpenOp("/f", 0, false, pdRdonly),
		pdOpenOp("/.", 0, false, pdRdonly),
		pdPathOp(pdMkdir, "/a", ""),
	},
	"listings": {
		{kind: pdReaddir, h: 0, n: 300},
		pdOpenOp("d", oflagDirectory, false, pdRdonly),
		{kind: pdReaddir, h: 0, n: 300},
		pdOpenOp("a", oflagCreat, false, pdWronly),
		pdPathOp(pdSymlink, "x", "b"),
		pdPathOp(pdMkdir, "d/e", ""),
		{kind: pdReaddir, h: 2, n: 300},
		{kind: pdReaddir, h: 0, n: 301},
		{kind: pdReaddir, h: 1, n: 300},
		pdPathOp(pdUnlink, "d/g", ""),
		{kind: pdReaddir, h: 0, n: 555},
	},
}

func TestPathDiff(t *testing.T) {
	env := newFuzzEnv(t)
	for name, ops := range pathDiffCases {
		for _, wasi := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/wasi=%v", name, wasi), func(t *testing.T) {
				runPathDiff(t, env, withWASI(ops, wasi))
			})
		}
	}
}

// withWASI is ops through one ABI.
func withWASI(ops []pathDiffOp, wasi bool) []pathDiffOp {
	out := make([]pathDiffOp, len(ops))
	for i, op := range ops {
		op.wasi = wasi
		out[i] = op
	}
	return out
}

// FuzzPathDiff runs arbitrary sequences of operations on both sides
// (runPathDiff), each through either ABI.
func FuzzPathDiff(f *testing.F) {
	for _, ops := range pathDiffCases {
		for _, wasi := range []bool{false, true} {
			if in, ok := encodePathDiffOps(withWASI(ops, wasi)); ok {
				f.Add(in)
			}
		}
	}
	env := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		runPathDiff(t, env, decodePathDiffOps(in))
	})
}
