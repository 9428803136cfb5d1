package abi

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/argdata"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// Unit tests of the preview1 handlers against a real guest memory and
// table: byte-exact layouts, the rights translation, and the behaviours a
// libc cannot show directly.

// wasiT is one guest whose table holds stdio (0–2), a read-write grant
// "/data" (3), a read-only grant "ro" (4) of the same directory, a stream
// channel pair (5, 6) and a byte object (7).
type wasiT struct {
	t   *testing.T
	g   *Guest
	m   api.Memory
	k   *caps.Kernel
	dir string
	out *bytes.Buffer
}

func newWASIT(t *testing.T) *wasiT { return newWASITCharged(t, nil) }

// newWASITCharged is newWASIT with memory (GuestConfig.Memory) charged
// what the guest makes the host hold.
func newWASITCharged(t *testing.T, memory caps.MemoryCharge) *wasiT {
	env := newFuzzEnv(t)
	k := caps.NewKernel(nil)
	h := &caps.Holder{ID: "w"}
	tbl := caps.NewTable(k, h, 16)
	out := &bytes.Buffer{}
	ins := func(c *caps.Cap) {
		if _, err := tbl.Insert(c); err != nil {
			t.Fatal(err)
		}
	}
	ins(k.Mint(h, caps.NewStdin(strings.NewReader("input")), caps.RightsTTYBase, 0, "stdin", "test"))
	ins(k.Mint(h, caps.NewStdout("stdout", out), caps.RightsTTYBase, 0, "stdout", "test"))
	ins(k.Mint(h, caps.NewStdout("stderr", out).AsTerminal(), caps.RightsTTYBase, 0, "stderr", "test"))
	for _, g := range []struct {
		name string
		ro   bool
	}{{"/data", false}, {"ro", true}} {
		d, err := caps.OpenDir(env.dir)
		if err != nil {
			t.Fatal(err)
		}
		b, i := caps.GrantRights(caps.KindDirectory, g.ro)
		ins(k.Mint(h, d, b, i, g.name, "test"))
	}
	a, b := caps.NewChannelPair(false, "test")
	ins(k.Mint(h, a, caps.RightsSocketBase, caps.RightsSocketInheriting, "chan-a", "test"))
	ins(k.Mint(h, b, caps.RightsSocketBase, caps.RightsSocketInheriting, "chan-b", "test"))
	ins(k.Mint(h, caps.NewByteObject(), caps.RightsByteObjectBase, 0, "", "test"))
	g := env.rt.NewGuest(&Module{compiledModule: &compiledModule{}}, GuestConfig{ID: "w", Table: tbl, Memory: memory,
		Args: []string{"prog", "a1", ""}, Env: []string{"K=V", "EMPTY="}})
	g.ctx, g.cancel = context.WithCancelCause(context.Background())
	g.started = time.Now()
	t.Cleanup(func() { g.cancel(nil); tbl.CloseAll() })
	m := env.mod.Memory()
	mem, _ := m.Read(0, m.Size())
	clear(mem)
	return &wasiT{t: t, g: g, m: m, k: k, dir: env.dir, out: out}
}

// call runs the named preview1 function with params and fails the test
// if the handler panics.
func (w *wasiT) call(name string, params ...uint64) Errno {
	w.t.Helper()
	for i := range wasiCalls {
		c := &wasiCalls[i]
		if c.Name != name {
			continue
		}
		if len(params) != len(c.Params) {
			w.t.Fatalf("%s takes %d params, got %d", name, len(c.Params), len(params))
		}
		e, r := callHandler(c.fn, w.g, w.m, params)
		if r != nil {
			w.t.Fatalf("%s panicked: %v", name, r)
		}
		return e
	}
	w.t.Fatalf("no preview1 function %s", name)
	return 0
}

func (w *wasiT) must(name string, params ...uint64) {
	w.t.Helper()
	if e := w.call(name, params...); e != 0 {
		w.t.Fatalf("%s: %v", name, e)
	}
}

func (w *wasiT) put(ptr uint32, b []byte) {
	if !w.m.Write(ptr, b) {
		w.t.Fatalf("write at %d out of memory", ptr)
	}
}

func (w *wasiT) bytes(ptr, n uint32) []byte {
	b, ok := w.m.Read(ptr, n)
	if !ok {
		w.t.Fatalf("read at %d out of memory", ptr)
	}
	return append([]byte(nil), b...)
}

func (w *wasiT) u32(ptr uint32) uint32 { return binary.LittleEndian.Uint32(w.bytes(ptr, 4)) }
func (w *wasiT) u64(ptr uint32) uint64 { return binary.LittleEndian.Uint64(w.bytes(ptr, 8)) }

// str puts s at ptr and returns (ptr, len) as call parameters.
func (w *wasiT) str(ptr uint32, s string) (uint64, uint64) {
	w.put(ptr, []byte(s))
	return uint64(ptr), uint64(len(s))
}

// iov puts one iovec at ptr pointing at (buf, n).
func (w *wasiT) iov(ptr, buf, n uint32) {
	var b [8]byte
	binary.LittleEndian.PutUint32(b[0:], buf)
	binary.LittleEndian.PutUint32(b[4:], n)
	w.put(ptr, b[:])
}

func TestWASITableIsPreview1InWitxOrder(t *testing.T) {
	want := strings.Fields(`args_get args_sizes_get environ_get environ_sizes_get clock_res_get
		clock_time_get fd_advise fd_allocate fd_close fd_datasync fd_fdstat_get fd_fdstat_set_flags
		fd_fdstat_set_rights fd_filestat_get fd_filestat_set_size fd_filestat_set_times fd_pread
		fd_prestat_get fd_prestat_dir_name fd_pwrite fd_read fd_readdir fd_renumber fd_seek fd_sync
		fd_tell fd_write path_create_directory path_filestat_get path_filestat_set_times path_link
		path_open path_readlink path_remove_directory path_rename path_symlink path_unlink_file
		poll_oneoff proc_exit proc_raise sched_yield random_get sock_accept sock_recv sock_send
		sock_shutdown`)
	cs := WASICalls()
	if len(cs) != 46 || len(want) != 46 {
		t.Fatalf("%d functions, want 46", len(cs))
	}
	for i, c := range cs {
		if c.Name != want[i] || c.Slot != i {
			t.Errorf("slot %d: %s (slot %d), want %s", i, c.Name, c.Slot, want[i])
		}
		if c.fn == nil {
			t.Errorf("%s has no handler", c.Name)
		}
	}
}

// Translating rights to WASI and back never widens them, and each of
// WASI's 30 rights has exactly one CloudABI meaning.
func TestWASIRightsTranslationNeverWidens(t *testing.T) {
	for _, r := range []caps.Rights{0, caps.RightsAll, caps.RightsDirectoryBase, caps.RightsDirectoryInheriting,
		caps.RightsRegularFileBase, caps.RightsSocketBase, caps.RightsTTYBase, caps.RightFileUnlink} {
		if back := RightsOfWASI(WASIRightsOf(r)); !back.Subset(r) {
			t.Errorf("%v → %#x → %v widens", r, WASIRightsOf(r), back)
		}
	}
	if got := WASIRightsOf(caps.RightsAll); got != wasiRightsAll {
		t.Errorf("all rights translate to %#x, want every WASI right %#x", got, wasiRightsAll)
	}
	if got := WASIRightsOf(caps.RightProcExec | caps.RightMemMap | caps.RightPollProcTerminate); got != 0 {
		t.Errorf("rights WASI cannot name translate to %#x", got)
	}
	// A right WASI split in two is granted only when both halves are asked.
	if RightsOfWASI(wasiRightPathUnlinkFile) != 0 || RightsOfWASI(wasiRightFDFilestatSetSize) != 0 {
		t.Error("half of a split right was translated into the whole")
	}
	if RightsOfWASI(wasiRightPathUnlinkFile|wasiRightPathRemoveDirectory) != caps.RightFileUnlink {
		t.Error("both halves of path unlink do not make file_unlink")
	}
	seen := map[uint64]bool{}
	for _, m := range wasiRightsMap {
		for b := uint64(1); b <= m.w; b <<= 1 {
			if m.w&b != 0 {
				if seen[b] {
					t.Errorf("WASI right %#x mapped twice", b)
				}
				seen[b] = true
			}
		}
	}
	if len(seen) != 30 {
		t.Errorf("%d WASI rights mapped, want 30", len(seen))
	}
}

func TestFdstatReportsWASIFiletypeFlagsAndRights(t *testing.T) {
	w := newWASIT(t)
	cases := []struct {
		fd       uint64
		filetype uint8
		base     uint64
	}{
		{1, wasiFiletypeUnknown, WASIRightsOf(caps.RightsTTYBase)},         // not a terminal's stream
		{2, wasiFiletypeCharacterDevice, WASIRightsOf(caps.RightsTTYBase)}, // a terminal's
		{3, wasiFiletypeDirectory, WASIRightsOf(caps.RightsDirectoryBase)},
		{4, wasiFiletypeDirectory, WASIRightsOf(caps.RightsDirectoryBase &^ caps.RightsWriteMask)},
		{5, wasiFiletypeSocketStream, WASIRightsOf(caps.RightsSocketBase)},
		{7, wasiFiletypeRegularFile, WASIRightsOf(caps.RightsByteObjectBase)},
	}
	for _, c := range cases {
		w.must("fd_fdstat_get", c.fd, 100)
		b := w.bytes(100, 24)
		if b[0] != c.filetype || binary.LittleEndian.Uint64(b[8:]) != c.base {
			t.Errorf("fd %d: filetype %d base %#x, want %d %#x", c.fd, b[0], binary.LittleEndian.Uint64(b[8:]), c.filetype, c.base)
		}
	}
	w.must("fd_fdstat_get", 4, 100)
	if inh := w.u64(116); inh&(wasiRightFDWrite|wasiRightPathCreateFile) != 0 || inh&wasiRightFDRead == 0 {
		t.Errorf("read-only grant's inheriting rights %#x", inh)
	}
	if e := w.call("fd_fdstat_get", 9, 100); e != caps.EBADF {
		t.Errorf("closed fd: %v", e)
	}
	w.must("fd_fdstat_set_flags", 5, uint64(caps.FlagNonblock))
	w.must("fd_fdstat_get", 5, 100)
	if fl := binary.LittleEndian.Uint16(w.bytes(102, 2)); fl != uint16(caps.FlagNonblock) {
		t.Errorf("flags %#x after set_flags(NONBLOCK)", fl)
	}
}

// fd_fdstat_set_rights only narrows, and the narrowing is the capability's
// own: a native fd_stat_get sees it, and the handle can no longer do what
// was dropped.
func TestFdstatSetRightsOnlyNarrows(t *testing.T) {
	w := newWASIT(t)
	w.must("fd_fdstat_get", 3, 100)
	base, inh := w.u64(108), w.u64(116)
	if e := w.call("fd_fdstat_set_rights", 4, base, 0); e != caps.ENOTCAPABLE {
		t.Fatalf("widening a read-only grant: %v, want ENOTCAPABLE", e)
	}
	narrowBase := base &^ wasiRightPathCreateFile
	w.must("fd_fdstat_set_rights", 3, narrowBase, inh&^wasiRightFDWrite)
	c, _ := w.g.table.Get(3)
	b, i := c.Rights()
	if b.Has(caps.RightFileCreateFile) || i.Has(caps.RightFDWrite) || !b.Has(caps.RightFileOpen) {
		t.Fatalf("rights after narrowing: %v / %v", b, i)
	}
	if e := w.call("fd_fdstat_set_rights", 3, base, inh); e != caps.ENOTCAPABLE {
		t.Fatalf("restoring dropped rights: %v, want ENOTCAPABLE", e)
	}
	path, n := w.str(200, "created")
	if e := w.call("path_open", 3, 0, path, n, uint64(oflagCreat), wasiRightFDRead, 0, 0, 300); e != caps.ENOTCAPABLE {
		t.Fatalf("create after dropping path_create_file: %v", e)
	}
}

func TestPrestatNamesDirectoriesAndSkipsOtherHandles(t *testing.T) {
	w := newWASIT(t)
	w.must("fd_prestat_get", 3, 100)
	if tag, n := w.bytes(100, 1)[0], w.u32(104); tag != wasiPreopenDir || n != 5 {
		t.Fatalf("fd 3: tag %d len %d", tag, n)
	}
	if e := w.call("fd_prestat_dir_name", 3, 200, 4); e != caps.ENAMETOOLONG {
		t.Errorf("short buffer: %v", e)
	}
	w.must("fd_prestat_dir_name", 3, 200, 5)
	if got := string(w.bytes(200, 5)); got != "/data" {
		t.Errorf("name %q", got)
	}
	// A plain name is mounted at the root.
	w.must("fd_prestat_get", 4, 100)
	if n := w.u32(104); n != 3 {
		t.Fatalf("fd 4: name length %d, want 3", n)
	}
	w.must("fd_prestat_dir_name", 4, 200, 3)
	if got := string(w.bytes(200, 3)); got != "/ro" {
		t.Errorf("name %q, want /ro", got)
	}
	for _, fd := range []uint64{0, 1, 5, 7} {
		w.must("fd_prestat_get", fd, 100)
		if tag := w.bytes(100, 1)[0]; tag == wasiPreopenDir {
			t.Errorf("fd %d reported as a preopen", fd)
		}
		if e := w.call("fd_prestat_dir_name", fd, 200, 64); e == 0 {
			t.Errorf("fd %d has a preopen name", fd)
		}
	}
	if e := w.call("fd_prestat_get", 8, 100); e != caps.EBADF {
		t.Errorf("past the last handle: %v, want EBADF (ends the probe)", e)
	}
	// A directory opened by path is not a preopen.
	path, n := w.str(300, ".")
	w.must("path_open", 3, 0, path, n, uint64(oflagDirectory), wasiRightFDReaddir, 0, 0, 400)
	w.must("fd_prestat_get", uint64(w.u32(400)), 100)
	if w.bytes(100, 1)[0] == wasiPreopenDir {
		t.Error("a directory from path_open reported as a preopen")
	}
}

// A revoked directory handle is no preopen, yet fd_prestat_get answers
// for it (tag 0xff) rather than fail: wasi-libc and Go stop their scan of
// preopens at the first fd that fails, so an error there would hide the
// preopens after it. fd_renumber moves it, still revoked.
func TestPrestatOfARevokedDirectoryReportsNoPreopen(t *testing.T) {
	w := newWASIT(t)
	dir, _ := w.g.table.Get(3)
	w.k.Revoke(dir, "test")
	w.must("fd_prestat_get", 3, 100)
	if tag := w.bytes(100, 1)[0]; tag != wasiPreopenNone {
		t.Fatalf("a revoked directory reports tag %d, want %d (none)", tag, wasiPreopenNone)
	}
	if e := w.call("fd_prestat_dir_name", 3, 200, 64); e == 0 {
		t.Error("a revoked directory still has a preopen name")
	}
	w.must("fd_prestat_get", 4, 100) // the scan goes on past it
	if tag := w.bytes(100, 1)[0]; tag != wasiPreopenDir {
		t.Errorf("fd 4 after a revoked fd 3: tag %d, want a preopen", tag)
	}
	w.must("fd_renumber", 3, 5)
	if e := w.call("fd_fdstat_get", 5, 100); e != caps.ENOTCAPABLE {
		t.Errorf("the renumbered revoked handle: %v, want ENOTCAPABLE", e)
	}
}

func TestArgsAndEnvironLayout(t *testing.T) {
	w := newWASIT(t)
	w.must("args_sizes_get", 100, 104)
	if c, s := w.u32(100), w.u32(104); c != 3 || s != uint32(len("prog\x00a1\x00\x00")) {
		t.Fatalf("args sizes %d %d", c, s)
	}
	w.must("args_get", 200, 300)
	for i, want := range []string{"prog", "a1", ""} {
		p := w.u32(200 + uint32(i)*4)
		if got := string(w.bytes(p, uint32(len(want)+1))); got != want+"\x00" {
			t.Errorf("argv[%d] = %q", i, got)
		}
	}
	w.must("environ_sizes_get", 100, 104)
	if c, s := w.u32(100), w.u32(104); c != 2 || s != uint32(len("K=V\x00EMPTY=\x00")) {
		t.Fatalf("environ sizes %d %d", c, s)
	}
	w.must("environ_get", 200, 300)
	if got := string(w.bytes(300, 11)); got != "K=V\x00EMPTY=\x00" {
		t.Errorf("environ buffer %q", got)
	}
	if e := w.call("args_get", 200, uint64(w.m.Size()-3)); e != caps.EFAULT {
		t.Errorf("buffer past memory: %v", e)
	}
}

func TestClocksUseWASINumbering(t *testing.T) {
	w := newWASIT(t)
	w.must("clock_time_get", wasiClockRealtime, 1, 100)
	if rt := int64(w.u64(100)); time.Since(time.Unix(0, rt)).Abs() > time.Minute {
		t.Errorf("realtime clock reads %v", time.Unix(0, rt))
	}
	w.must("clock_time_get", wasiClockMonotonic, 1, 100)
	m1 := w.u64(100)
	time.Sleep(2 * time.Millisecond)
	w.must("clock_time_get", wasiClockMonotonic, 1, 100)
	if m2 := w.u64(100); m2-m1 < uint64(2*time.Millisecond) {
		t.Errorf("monotonic clock advanced %d ns over 2ms", m2-m1)
	}
	for id := uint64(0); id < 4; id++ {
		w.must("clock_res_get", id, 100)
	}
	if e := w.call("clock_time_get", 4, 1, 100); e != caps.EINVAL {
		t.Errorf("clock 4: %v", e)
	}
}

// A handle opened through WASI is the same capability to the native ABI:
// a child of the directory in the kernel's graph, readable with the
// native fd_read, and cut off in both ABIs when the grant is revoked.
func TestPathOpenMakesChildCapabilitySharedWithNativeABI(t *testing.T) {
	w := newWASIT(t)
	path, n := w.str(200, "f")
	w.must("path_open", 3, uint64(lookupSymlinkFollow), path, n, 0, wasiRightFDRead|wasiRightFDSeek, 0, 0, 100)
	fd := uint64(w.u32(100))
	c, err := w.g.table.Get(uint32(fd))
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := w.g.table.Get(3)
	if c.Parent() != dir || c.Edge() != caps.EdgeOpen {
		t.Fatalf("parent %v edge %v", c.Parent(), c.Edge())
	}
	if b, _ := c.Rights(); b != caps.RightFDRead|caps.RightFDSeek {
		t.Fatalf("rights %v, want exactly what was asked", b)
	}
	w.iov(300, 400, 16)
	if e, _ := callHandler(fdRead, w.g, w.m, []uint64{fd, 300, 1, 500}); e != 0 {
		t.Fatalf("native fd_read: %v", e)
	}
	if got := string(w.bytes(400, w.u32(500))); got != "contents" {
		t.Fatalf("read %q", got)
	}
	w.k.Revoke(dir, "test")
	if e := w.call("fd_pread", fd, 300, 1, 0, 500); e != caps.ENOTCAPABLE {
		t.Errorf("WASI fd_pread after revoking the grant: %v", e)
	}
	if e, _ := callHandler(fdRead, w.g, w.m, []uint64{fd, 300, 1, 500}); e != caps.ENOTCAPABLE {
		t.Errorf("native fd_read after revoking the grant: %v", e)
	}
}

// path_open keeps only rights the directory can pass on: extra requested
// rights are clipped, but an access mode the directory cannot give
// (writing beneath a read-only grant) is refused before anything happens.
func TestPathOpenClipsExtraRightsAndRefusesAccessModes(t *testing.T) {
	w := newWASIT(t)
	path, n := w.str(200, "f")
	w.must("path_open", 4, 0, path, n, 0, wasiRightsAll&^(wasiRightFDWrite|wasiRightFDDatasync|wasiRightFDAllocate), wasiRightsAll, 0, 100)
	c, _ := w.g.table.Get(w.u32(100))
	b, i := c.Rights()
	if b&caps.RightsWriteMask != 0 || i != 0 || !b.Has(caps.RightFDRead) {
		t.Fatalf("rights from a read-only grant: %v / %v", b, i)
	}
	if e := w.call("path_open", 4, 0, path, n, 0, wasiRightFDWrite, 0, 0, 100); e != caps.ENOTCAPABLE {
		t.Errorf("write open beneath a read-only grant: %v", e)
	}
	if e := w.call("path_open", 4, 0, path, n, uint64(oflagTrunc), wasiRightFDRead, 0, 0, 100); e != caps.ENOTCAPABLE {
		t.Errorf("O_TRUNC beneath a read-only grant: %v", e)
	}
	if b, err := os.ReadFile(filepath.Join(w.dir, "f")); err != nil || string(b) != "contents" {
		t.Errorf("file changed: %q %v", b, err)
	}
	if e := w.call("path_open", 9, 0, path, n, 0, wasiRightFDRead, 0, 0, 100); e != caps.EBADF {
		t.Errorf("open beneath a closed fd: %v", e)
	}
	if e := w.call("path_open", uint64(wasiNoDir), 0, path, n, 0, wasiRightFDRead, 0, 0, 100); e != caps.ENOTCAPABLE {
		t.Errorf("open beneath no directory: %v", e)
	}
	if e := w.call("path_open", 5, 0, path, n, 0, wasiRightFDRead, 0, 0, 100); e != caps.ENOTCAPABLE && e != caps.ENOTDIR {
		t.Errorf("open beneath a channel: %v", e)
	}
}

// fd_renumber moves a handle (WASI) where fd_replace copies (CloudABI):
// the capability itself lands at the new number and the old one is free.
func TestRenumberMovesTheCapability(t *testing.T) {
	w := newWASIT(t)
	c7, _ := w.g.table.Get(7)
	old6, _ := w.g.table.Get(6)
	w.must("fd_renumber", 7, 6)
	if c, err := w.g.table.Get(6); err != nil || c != c7 {
		t.Fatalf("fd 6 is %v (%v), want the byte object's capability", c, err)
	}
	if _, err := w.g.table.Get(7); err == nil {
		t.Fatal("fd 7 still open after renumber")
	}
	if !old6.Info().Closed {
		t.Error("the handle that was at fd 6 was not closed")
	}
	if e := w.call("fd_renumber", 7, 6); e != caps.EBADF {
		t.Errorf("renumber a closed fd: %v", e)
	}
	if e := w.call("fd_renumber", 6, 12); e != caps.EBADF {
		t.Errorf("renumber onto a closed fd: %v", e)
	}
	w.must("fd_renumber", 6, 6)
}

func TestSeekTellAndStreamErrors(t *testing.T) {
	w := newWASIT(t)
	w.iov(300, 400, 5)
	w.put(400, []byte("hello"))
	w.must("fd_write", 7, 300, 1, 500)
	w.must("fd_tell", 7, 100)
	if w.u64(100) != 5 {
		t.Fatalf("tell %d", w.u64(100))
	}
	w.must("fd_seek", 7, uint64(^uint64(1)), 1, 100) // cur - 2
	if w.u64(100) != 3 {
		t.Fatalf("seek cur-2 → %d", w.u64(100))
	}
	w.must("fd_seek", 7, 1, 0, 100) // set 1
	w.must("fd_seek", 7, 0, 2, 100) // end
	if w.u64(100) != 5 {
		t.Fatalf("seek end → %d", w.u64(100))
	}
	if e := w.call("fd_seek", 7, 0, 3, 100); e != caps.EINVAL {
		t.Errorf("whence 3: %v", e)
	}
	if e := w.call("fd_seek", 1, 0, 0, 100); e != caps.ESPIPE {
		t.Errorf("seek on stdout: %v, want ESPIPE", e)
	}
	if e := w.call("fd_read", 3, 300, 1, 500); e != caps.EISDIR {
		t.Errorf("read a directory: %v, want EISDIR", e)
	}
}

// putSub writes a poll_oneoff subscription at at: a monotonic clock of
// timeout ns, or an fd event on fd.
func putSub(w *wasiT, at uint32, userdata uint64, typ uint8, fd uint32, timeout uint64) {
	var b [wasiSubscriptionSize]byte
	binary.LittleEndian.PutUint64(b[0:], userdata)
	b[8] = typ
	if typ == wasiEventtypeClock {
		binary.LittleEndian.PutUint32(b[16:], wasiClockMonotonic)
		binary.LittleEndian.PutUint64(b[24:], timeout)
	} else {
		binary.LittleEndian.PutUint32(b[16:], fd)
	}
	w.put(at, b[:])
}

// pollEvent reads the i-th event poll_oneoff wrote at 1000.
func pollEvent(w *wasiT, i uint32) (userdata uint64, errno uint16, typ uint8) {
	b := w.bytes(1000+i*wasiEventSize, wasiEventSize)
	return binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint16(b[8:]), b[10]
}

// whenParked runs f on another goroutine once the guest waits in a host
// call, so that f's event reaches a wait rather than preceding it.
func whenParked(w *wasiT, f func()) {
	go func() {
		for deadline := time.Now().Add(HangGuard); w.g.parked.Load() == 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		f()
	}()
}

// poll_oneoff reports a clock when nothing else happens, not before.
func TestPollOneoffReportsTheClockWhenNothingElseHappens(t *testing.T) {
	w := newWASIT(t)
	putSub(w, 100, 11, wasiEventtypeFDRead, 5, 0)
	putSub(w, 148, 22, wasiEventtypeClock, 0, uint64(30*time.Millisecond))
	start := time.Now()
	w.must("poll_oneoff", 100, 1000, 2, 900)
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("returned after %v, before the clock", d)
	}
	if n := w.u32(900); n != 1 {
		t.Fatalf("%d events", n)
	}
	if ud, errno, typ := pollEvent(w, 0); ud != 22 || errno != 0 || typ != wasiEventtypeClock {
		t.Errorf("event %d %d %d", ud, errno, typ)
	}
}

// poll_oneoff wakes when a polled channel becomes readable (the clock of a
// minute is not what ends it).
func TestPollOneoffWakesWhenAChannelBecomesReadable(t *testing.T) {
	w := newWASIT(t)
	putSub(w, 100, 11, wasiEventtypeFDRead, 5, 0)
	putSub(w, 148, 22, wasiEventtypeClock, 0, uint64(HangGuard))
	peer, _ := w.g.table.Get(6)
	whenParked(w, func() { peer.Resource().(caps.Writer).Write([]byte("x")) })
	w.must("poll_oneoff", 100, 1000, 2, 900)
	if ud, errno, typ := pollEvent(w, 0); w.u32(900) != 1 || ud != 11 || errno != 0 || typ != wasiEventtypeFDRead {
		t.Errorf("%d events, first %d %d %d", w.u32(900), ud, errno, typ)
	}
}

// poll_oneoff wakes with ENOTCAPABLE in the event of a handle revoked
// while it waits.
func TestPollOneoffWakesWithENOTCAPABLEWhenAPolledHandleIsRevoked(t *testing.T) {
	w := newWASIT(t)
	putSub(w, 100, 11, wasiEventtypeFDRead, 5, 0)
	putSub(w, 148, 22, wasiEventtypeClock, 0, uint64(HangGuard))
	c, _ := w.g.table.Get(5)
	whenParked(w, func() { w.k.Revoke(c, "test") })
	w.must("poll_oneoff", 100, 1000, 2, 900)
	if ud, errno, _ := pollEvent(w, 0); w.u32(900) != 1 || ud != 11 || Errno(errno) != caps.ENOTCAPABLE {
		t.Errorf("%d events, first userdata %d errno %d", w.u32(900), ud, errno)
	}
}

// Subscriptions that are ready or wrong are answered at once, each with
// its own errno; no subscription at all is EINVAL.
func TestPollOneoffAnswersReadyAndWrongSubscriptionsAtOnce(t *testing.T) {
	w := newWASIT(t)
	putSub(w, 100, 1, wasiEventtypeFDWrite, 5, 0) // channel with room: ready
	putSub(w, 148, 2, wasiEventtypeFDRead, 0, 0)  // stdin: always ready
	putSub(w, 196, 3, wasiEventtypeFDRead, 12, 0) // closed: EBADF
	putSub(w, 244, 4, wasiEventtypeFDWrite, 4, 0) // no poll_fd_readwrite right (below)
	putSub(w, 292, 5, 9, 0, 0)                    // unknown type
	dir, _ := w.g.table.Get(4)
	b, i := dir.Rights()
	if err := dir.Narrow(b&^caps.RightPollFDReadwrite, i); err != nil {
		t.Fatal(err)
	}
	w.must("poll_oneoff", 100, 1000, 5, 900)
	want := []struct {
		ud    uint64
		errno Errno
	}{{1, 0}, {2, 0}, {3, caps.EBADF}, {4, caps.ENOTCAPABLE}, {5, caps.EINVAL}}
	if w.u32(900) != 5 {
		t.Fatalf("%d events", w.u32(900))
	}
	for i, ev := range want {
		if ud, errno, _ := pollEvent(w, uint32(i)); ud != ev.ud || Errno(errno) != ev.errno {
			t.Errorf("event %d: userdata %d errno %d, want %d %v", i, ud, errno, ev.ud, ev.errno)
		}
	}
	if e := w.call("poll_oneoff", 100, 1000, 0, 900); e != caps.EINVAL {
		t.Errorf("no subscriptions: %v", e)
	}
}

// Killing a guest ends its hour-long poll: the handler unwinds the guest
// instead of returning.
func TestPollOneoffEndsWhenTheGuestIsKilled(t *testing.T) {
	w := newWASIT(t)
	putSub(w, 100, 11, wasiEventtypeClock, 0, uint64(time.Hour))
	whenParked(w, func() { w.g.Kill("test") })
	_, r := callHandler(wasiPollOneoff, w.g, w.m, []uint64{100, 1000, 1, 900})
	if r != nil {
		t.Fatalf("panicked: %v", r)
	}
}

// sock_recv and sock_send work on a channel pair; PEEK leaves data queued,
// WAITALL waits for the whole buffer, and handles that arrive with a
// message are closed (WASI cannot receive them).
func TestSockRecvSendOnChannels(t *testing.T) {
	w := newWASIT(t)
	w.put(400, []byte("hello world"))
	w.iov(300, 400, 11)
	w.must("sock_send", 5, 300, 1, 0, 500)
	if w.u32(500) != 11 {
		t.Fatalf("sent %d", w.u32(500))
	}
	if e := w.call("sock_send", 5, 300, 1, 1, 500); e != caps.EINVAL {
		t.Errorf("si_flags 1: %v", e)
	}
	w.iov(300, 600, 5)
	w.must("sock_recv", 6, 300, 1, wasiRecvPeek, 500, 504)
	w.must("sock_recv", 6, 300, 1, 0, 500, 504)
	if got := string(w.bytes(600, w.u32(500))); got != "hello" {
		t.Fatalf("after peek, recv %q", got)
	}
	// WAITALL: 6 bytes remain, ask for 8, the rest arrives later.
	w.iov(300, 600, 8)
	peer, _ := w.g.table.Get(5)
	waits := w.g.waits.Load()
	whenParked(w, func() { peer.Resource().(caps.Writer).Write([]byte("!!")) })
	w.must("sock_recv", 6, 300, 1, wasiRecvWaitall, 500, 504)
	if got := string(w.bytes(600, w.u32(500))); got != " world!!" {
		t.Fatalf("waitall recv %q", got)
	}
	if w.g.waits.Load() == waits {
		t.Error("a WAITALL recv returned without waiting for the rest")
	}
	// A handle sent along is closed on arrival, not delivered.
	bo, _ := w.g.table.Get(7)
	inflight, err := w.k.Derive(bo, caps.Derivation{Edge: caps.EdgeDelegate, Base: caps.RightFDRead})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := peer.Resource().(caps.Messenger).Send([][]byte{[]byte("x")}, []*caps.Cap{inflight}); err != nil {
		t.Fatal(err)
	}
	w.must("sock_recv", 6, 300, 1, 0, 500, 504)
	if !inflight.Info().Closed {
		t.Error("a handle sent to a WASI receiver was not closed")
	}
	w.must("sock_shutdown", 5, shutWR)
	w.must("sock_recv", 6, 300, 1, 0, 500, 504)
	if w.u32(500) != 0 {
		t.Errorf("recv after peer shutdown: %d bytes, want end of stream", w.u32(500))
	}
	if e := w.call("sock_shutdown", 5, 0); e != caps.EINVAL {
		t.Errorf("shutdown how=0: %v", e)
	}
	if e := w.call("sock_recv", 3, 300, 1, 0, 500, 504); e != caps.ENOTCAPABLE && e != caps.ENOTSOCK {
		t.Errorf("recv on a directory: %v", e)
	}
	if e := w.call("sock_accept", 5, 0, 500); e != caps.EINVAL {
		t.Errorf("accept on a channel: %v, want EINVAL (a socket, not a listener)", e)
	}
	if e := w.call("sock_accept", 3, 0, 500); e != caps.ENOTSOCK {
		t.Errorf("accept on a directory: %v, want ENOTSOCK", e)
	}
}

func TestProcRaiseTranslatesSignals(t *testing.T) {
	w := newWASIT(t)
	for _, sig := range []uint64{16, 17, 22, 13, 26, 27, 28, 29} { // chld cont urg pipe prof winch poll pwr
		if e := w.call("proc_raise", sig); e != 0 {
			t.Errorf("ignored signal %d: %v", sig, e)
		}
	}
	if e := w.call("proc_raise", 31); e != caps.EINVAL {
		t.Errorf("signal 31: %v", e)
	}
	_, r := callHandler(wasiProcRaise, w.g, w.m, []uint64{15}) // term
	if r != nil {
		t.Fatalf("panicked: %v", r)
	}
	if w.g.signal != 16 {
		t.Errorf("WASI SIGTERM recorded as CloudABI signal %d, want 16", w.g.signal)
	}
}

// A guest started from argdata alone (a spawned child) sees the argdata's
// "args" and "env" as its WASI argv and environment.
func TestArgsOfSpawnedGuestComeFromArgdata(t *testing.T) {
	w := newWASIT(t)
	w.g.args, w.g.env = nil, nil
	w.g.argdata = argdata.StringMap(map[string]argdata.Value{
		"args": argdata.Seq(argdata.String("child"), argdata.String("-v"), argdata.Int(3)),
		"env":  argdata.StringMap(map[string]argdata.Value{"HOME": argdata.String("/h"), "N": argdata.Int(1)}),
	}).Encode()
	w.must("args_sizes_get", 100, 104)
	if c, s := w.u32(100), w.u32(104); c != 2 || s != uint32(len("child\x00-v\x00")) {
		t.Fatalf("args sizes %d %d", c, s)
	}
	w.must("args_get", 200, 300)
	if got := string(w.bytes(300, 9)); got != "child\x00-v\x00" {
		t.Errorf("argv buffer %q", got)
	}
	w.must("environ_get", 200, 300)
	if got := string(w.bytes(300, 7)); got != "HOME=/h" {
		t.Errorf("environ buffer %q (non-string values are left out)", got)
	}
	w.g.argdata = []byte{0xff, 0x00}
	w.must("args_sizes_get", 100, 104)
	if w.u32(100) != 0 {
		t.Errorf("malformed argdata gave %d args", w.u32(100))
	}
}

// path_open never gives a handle a right its directory could not pass on,
// whatever WASI rights are asked for and whatever the directory holds:
// for random requests on random narrowings of a read-write grant, the new
// handle's rights are within the directory's inheriting rights, and one
// opened beneath a read-only grant holds no right that modifies anything.
func TestWASIPathOpenNeverWidensRights(t *testing.T) {
	w := newWASIT(t)
	rng := rand.New(rand.NewPCG(1, 2))
	grant, _ := w.g.table.Get(3)
	gb, gi := grant.Rights()
	opened := 0
	for i := range 2000 {
		db := (caps.Rights(rng.Uint64()) & gb) | caps.RightFileOpen
		di := caps.Rights(rng.Uint64()) & gi
		dir, err := w.k.Derive(grant, caps.Derivation{Holder: w.g.holder, Edge: caps.EdgeDup, Base: db, Inheriting: di})
		if err != nil {
			t.Fatal(err)
		}
		dfd, err := w.g.table.Insert(dir)
		if err != nil {
			t.Fatal(err)
		}
		wb, wi := rng.Uint64()&wasiRightsAll, rng.Uint64()&wasiRightsAll
		for _, o := range []struct {
			name   string
			oflags uint64
		}{{"f", 0}, {"sub", oflagDirectory}} {
			path, n := w.str(200, o.name)
			if w.call("path_open", uint64(dfd), 0, path, n, o.oflags, wb, wi, 0, 300) != 0 {
				continue
			}
			opened++
			nfd := w.u32(300)
			c, _ := w.g.table.Get(nfd)
			if b, in := c.Rights(); !b.Subset(di) || !in.Subset(di) {
				t.Fatalf("iteration %d: %s opened with %v / %v beneath a directory passing on %v", i, o.name, b, in, di)
			}
			w.must("fd_close", uint64(nfd))
		}
		w.must("fd_close", uint64(dfd))
	}
	if opened < 200 {
		t.Fatalf("only %d of 4000 random opens succeeded: the property was hardly tested", opened)
	}
	// Asking to write beneath it is refused outright (the access mode);
	// every other right that modifies is clipped.
	path, n := w.str(200, "f")
	if e := w.call("path_open", 4, 0, path, n, 0, wasiRightsAll, wasiRightsAll, 0, 300); e != caps.ENOTCAPABLE {
		t.Fatalf("open beneath the read-only grant asking for fd_write: %v, want ENOTCAPABLE", e)
	}
	if e := w.call("path_open", 4, 0, path, n, 0, wasiRightsAll&^wasiRightFDWrite, wasiRightsAll, 0, 300); e != 0 {
		t.Fatalf("open beneath the read-only grant asking for everything but fd_write: %v", e)
	}
	c, _ := w.g.table.Get(w.u32(300))
	if b, in := c.Rights(); b&caps.RightsWriteMask != 0 || in&caps.RightsWriteMask != 0 {
		t.Fatalf("a file beneath a read-only grant holds %v / %v", b, in)
	}
}

// A directory that does not pass on fd_seek lets files beneath it be
// opened for writing only in append mode. A handle opened so cannot turn
// append mode off (ENOTCAPABLE) and overwrite the file from offset 0.
func TestAnAppendOnlyHandleCannotTurnAppendOff(t *testing.T) {
	w := newWASIT(t)
	grant, _ := w.g.table.Get(3)
	gb, gi := grant.Rights()
	dir, err := w.k.Derive(grant, caps.Derivation{Holder: w.g.holder, Edge: caps.EdgeDup, Base: gb, Inheriting: gi &^ caps.RightFDSeek})
	if err != nil {
		t.Fatal(err)
	}
	dfd, err := w.g.table.Insert(dir)
	if err != nil {
		t.Fatal(err)
	}
	path, n := w.str(200, "f")
	if e := w.call("path_open", uint64(dfd), 1, path, n, 0, wasiRightFDWrite, 0, 0, 100); e != caps.ENOTCAPABLE {
		t.Fatalf("a write open, not in append mode, beneath a directory without fd_seek: %v, want ENOTCAPABLE", e)
	}
	w.must("path_open", uint64(dfd), 1, path, n, 0, wasiRightFDWrite|wasiRightFDFdstatSetFlags, 0, uint64(caps.FlagAppend), 100)
	fd := uint64(w.u32(100))
	if e := w.call("fd_fdstat_set_flags", fd, 0); e != caps.ENOTCAPABLE {
		t.Errorf("fd_fdstat_set_flags(0) on an append-only handle: %v, want ENOTCAPABLE", e)
	}
	w.put(500, []byte("XX"))
	w.iov(300, 500, 2)
	w.must("fd_write", fd, 300, 1, 600)
	b, err := os.ReadFile(filepath.Join(w.dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "contentsXX" {
		t.Fatalf("the append-only handle left the file as %q, want %q", b, "contentsXX")
	}
}

// Append mode belongs to the file, which every copy of an append-only
// handle shares: a copy that holds no fd_write (fd_dup, then narrowed)
// cannot turn it off either, or the original would then write from offset
// 0 over what it could only add to. It used to: only a handle holding
// fd_write without fd_seek was refused.
func TestACopyOfAnAppendOnlyHandleCannotTurnAppendOff(t *testing.T) {
	w := newWASIT(t)
	grant, _ := w.g.table.Get(3)
	gb, gi := grant.Rights()
	dir, err := w.k.Derive(grant, caps.Derivation{Holder: w.g.holder, Edge: caps.EdgeDup, Base: gb, Inheriting: gi &^ caps.RightFDSeek})
	if err != nil {
		t.Fatal(err)
	}
	dfd, err := w.g.table.Insert(dir)
	if err != nil {
		t.Fatal(err)
	}
	path, n := w.str(200, "f")
	w.must("path_open", uint64(dfd), 1, path, n, 0, wasiRightFDWrite|wasiRightFDFdstatSetFlags, 0, uint64(caps.FlagAppend), 100)
	fd := w.u32(100)
	orig, _ := w.g.table.Get(fd)
	cp, err := w.k.Derive(orig, caps.Derivation{Holder: w.g.holder, Edge: caps.EdgeDup, Base: caps.RightFDStatPutFlags})
	if err != nil {
		t.Fatal(err)
	}
	cfd, err := w.g.table.Insert(cp)
	if err != nil {
		t.Fatal(err)
	}
	if e := w.call("fd_fdstat_set_flags", uint64(cfd), 0); e != caps.ENOTCAPABLE {
		t.Errorf("fd_fdstat_set_flags(0) on a copy of an append-only handle without fd_write: %v, want ENOTCAPABLE", e)
	}
	w.put(500, []byte("XX"))
	w.iov(300, 500, 2)
	w.must("fd_write", uint64(fd), 300, 1, 600)
	b, err := os.ReadFile(filepath.Join(w.dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "contentsXX" {
		t.Fatalf("the append-only handle left the file as %q, want %q", b, "contentsXX")
	}
}

// A handle that cannot write has no say in where writes go: a read-only
// copy of a writable file cannot turn the file's append mode on, which
// would send the writes of the handle it was copied from, pwrite at an
// offset included, to the end of the file. It used to.
func TestAHandleWithoutFDWriteCannotChangeAppendMode(t *testing.T) {
	w := newWASIT(t)
	path, n := w.str(200, "f")
	w.must("path_open", 3, 1, path, n, 0, wasiRightFDRead|wasiRightFDWrite|wasiRightFDSeek|wasiRightFDFdstatSetFlags, 0, 0, 100)
	fd := w.u32(100)
	orig, _ := w.g.table.Get(fd)
	ro, err := w.k.Derive(orig, caps.Derivation{Holder: w.g.holder, Edge: caps.EdgeDup, Base: caps.RightFDRead | caps.RightFDSeek | caps.RightFDStatPutFlags})
	if err != nil {
		t.Fatal(err)
	}
	rfd, err := w.g.table.Insert(ro)
	if err != nil {
		t.Fatal(err)
	}
	if e := w.call("fd_fdstat_set_flags", uint64(rfd), uint64(caps.FlagAppend)); e != caps.ENOTCAPABLE {
		t.Errorf("fd_fdstat_set_flags(APPEND) on a read-only copy: %v, want ENOTCAPABLE", e)
	}
	w.put(500, []byte("XX"))
	w.iov(300, 500, 2)
	w.must("fd_pwrite", uint64(fd), 300, 1, 0, 600)
	b, err := os.ReadFile(filepath.Join(w.dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "XXntents" {
		t.Fatalf("a pwrite at offset 0 left the file as %q, want %q", b, "XXntents")
	}
}

// A symbolic link whose target stays beneath the grant is followed alike
// by every call that follows links: a -> x/y and x/y/l -> ../../t name t
// at the top of the grant, since the ".." go up from where l really is.
// path_filestat_set_times and path_link, which resolve a final link
// themselves, used to join "a" and "../../t" as written and refuse it.
func TestEveryCallFollowsALinkBeneathTheGrantAlike(t *testing.T) {
	w := newWASIT(t)
	if err := os.MkdirAll(filepath.Join(w.dir, "x", "y"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "t"), []byte("t"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("x/y", filepath.Join(w.dir, "a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../t", filepath.Join(w.dir, "x", "y", "l")); err != nil {
		t.Fatal(err)
	}
	path, n := w.str(200, "a/l")
	w.must("path_open", 3, uint64(lookupSymlinkFollow), path, n, 0, wasiRightFDRead, 0, 0, 100)
	w.must("path_filestat_get", 3, uint64(lookupSymlinkFollow), path, n, 300)
	w.must("path_filestat_set_times", 3, uint64(lookupSymlinkFollow), path, n, 0, 0, uint64(fsAtimNow|fsMtimNow))
	p2, n2 := w.str(400, "hardlink")
	w.must("path_link", 3, uint64(lookupSymlinkFollow), path, n, 3, p2, n2)
	a, err := os.Stat(filepath.Join(w.dir, "t"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.Stat(filepath.Join(w.dir, "hardlink"))
	if err != nil || !os.SameFile(a, b) {
		t.Fatalf("hardlink is not a link to t: %v", err)
	}
	// A link leading out is still refused, however it gets there.
	if err := os.Symlink("../../../outside", filepath.Join(w.dir, "x", "y", "out")); err != nil {
		t.Fatal(err)
	}
	p3, n3 := w.str(500, "a/out")
	if e := w.call("path_filestat_set_times", 3, uint64(lookupSymlinkFollow), p3, n3, 0, 0, uint64(fsAtimNow|fsMtimNow)); e != caps.ENOTCAPABLE {
		t.Fatalf("set_times following a link out of the grant: %v, want ENOTCAPABLE", e)
	}
}

// A ".." after a component that is not a directory does not go
// up from it: the kernel (and os.Root, which path_filestat_get and
// path_open use) refuses "f/../t" with ENOTDIR. path_filestat_set_times
// and path_link, which follow a final link themselves, once dropped "f"
// and ".." lexically and acted on t instead.
func TestDotDotAfterAFileIsENOTDIRForEveryCall(t *testing.T) {
	w := newWASIT(t)
	if err := os.WriteFile(filepath.Join(w.dir, "f"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "t"), []byte("t"), 0o644); err != nil {
		t.Fatal(err)
	}
	path, n := w.str(200, "f/../t")
	if e := w.call("path_filestat_get", 3, uint64(lookupSymlinkFollow), path, n, 300); e != caps.ENOTDIR {
		t.Fatalf("path_filestat_get f/../t: %v, want ENOTDIR", e)
	}
	if e := w.call("path_filestat_set_times", 3, uint64(lookupSymlinkFollow), path, n, 0, 0, uint64(fsAtimNow|fsMtimNow)); e != caps.ENOTDIR {
		t.Errorf("path_filestat_set_times (follow) f/../t: %v, want ENOTDIR as path_filestat_get", e)
	}
	p2, n2 := w.str(400, "hardlink")
	if e := w.call("path_link", 3, uint64(lookupSymlinkFollow), path, n, 3, p2, n2); e != caps.ENOTDIR {
		t.Errorf("path_link (follow) f/../t: %v, want ENOTDIR as path_filestat_get", e)
	}
	// The same for a link whose contents end in a slash: l -> "t/".
	if err := os.Symlink("t/", filepath.Join(w.dir, "l")); err != nil {
		t.Fatal(err)
	}
	lp, ln := w.str(500, "l")
	if e := w.call("path_filestat_get", 3, uint64(lookupSymlinkFollow), lp, ln, 300); e != caps.ENOTDIR {
		t.Fatalf("path_filestat_get l -> t/: %v, want ENOTDIR", e)
	}
	if e := w.call("path_filestat_set_times", 3, uint64(lookupSymlinkFollow), lp, ln, 0, 0, uint64(fsAtimNow|fsMtimNow)); e != caps.ENOTDIR {
		t.Errorf("path_filestat_set_times (follow) l -> t/: %v, want ENOTDIR as path_filestat_get", e)
	}
}

// A send whose handles are refused part way (the second revoked) sends
// nothing, keeps no copy of the first and gives back the room it took
// among the handles in flight.
func TestASendRefusedPartWayKeepsNothing(t *testing.T) {
	w := newWASIT(t)
	obj, _ := w.g.table.Get(7)
	b, _ := obj.Rights()
	copied, err := w.k.Derive(obj, caps.Derivation{Holder: w.g.holder, Edge: caps.EdgeDup, Base: b})
	if err != nil {
		t.Fatal(err)
	}
	fd, err := w.g.table.Insert(copied)
	if err != nil {
		t.Fatal(err)
	}
	w.k.Revoke(copied, "test")
	// send_in at 100: data (none), fds at 200: [7, fd]; send_out at 300.
	var fds, in [20]byte
	binary.LittleEndian.PutUint32(fds[0:], 7)
	binary.LittleEndian.PutUint32(fds[4:], fd)
	w.put(200, fds[:8])
	binary.LittleEndian.PutUint32(in[8:], 200)
	binary.LittleEndian.PutUint32(in[12:], 2)
	w.put(100, in[:])
	if e, r := callHandler(sockSend, w.g, w.m, []uint64{5, 100, 300}); r != nil || e != caps.ENOTCAPABLE {
		t.Fatalf("sock_send of a good and a revoked handle: %v (panic %v), want ENOTCAPABLE", e, r)
	}
	if n := w.g.tree.inflight.InFlight(); n != 0 {
		t.Fatalf("%d handles charged as in flight after a refused send", n)
	}
	for _, in := range w.k.Snapshot() {
		if strings.HasPrefix(in.Origin, "sent on ") && !in.Closed {
			t.Fatalf("a copy made for the refused send is still open: %+v", in)
		}
	}
}

// A spawned guest's WASI args and env come from the argdata its parent
// handed it (at most MaxArgdataBytes). Reading them must not cost the host
// far more than those bytes: decoded whole, the 1 MiB here (its args,
// then a seq of a million nulls, a byte each) took some 370 MB at every
// args_sizes_get, args_get, environ_sizes_get and environ_get, and a tree
// of spawned guests calling them at once could take the host's memory.
func TestWASIArgsAndEnvFromLargeArgdataAllocateLittle(t *testing.T) {
	head := argdata.StringMap(map[string]argdata.Value{
		"args": argdata.Seq(argdata.String("prog"), argdata.String("-v")),
		"env":  argdata.MapOf(argdata.String("HOME"), argdata.String("/"), argdata.String("bad=key"), argdata.String("x")),
	}).Encode()
	// A third entry, "nulls": a seq of single-byte nulls filling the rest.
	nulls := append([]byte{byte(argdata.TypeSeq)}, bytes.Repeat([]byte{0x80}, MaxArgdataBytes-len(head)-16)...)
	key := argdata.String("nulls").Encode()
	data := append(append(head, byte(len(key))|0x80), key...)
	data = append(data, byte(len(nulls)>>14), byte(len(nulls)>>7&0x7f), byte(len(nulls)&0x7f|0x80))
	data = append(data, nulls...)
	if v, err := argdata.Decode(data); err != nil {
		t.Fatalf("the argdata does not decode: %v", err)
	} else if n, ok := v.Get("nulls"); !ok || len(n.Items()) < 1<<19 {
		t.Fatalf("the argdata has no large seq of nulls")
	}
	g := &Guest{argdata: data}
	var args, env []string
	d := allocatedBy(func() { args, env = wasiStringsOf(wasiArgs(g)), wasiStringsOf(wasiEnv(g)) })
	if strings.Join(args, " ") != "prog -v" || strings.Join(env, " ") != "HOME=/" {
		t.Fatalf("args %q, env %q; want [prog -v] and [HOME=/]", args, env)
	}
	if d > MaxArgdataBytes {
		t.Fatalf("reading args and env from %d bytes of argdata allocated %d bytes", len(data), d)
	}
}

// The args and env of a spawned guest's argdata are read where they lie
// whatever strings they hold: 1 MiB of empty strings, three bytes each,
// made a []string of 350,000 entries, some 28 MB, at every
// args_sizes_get and args_get (and as much for environ_*), as a seq of
// nulls did decoded (TestWASIArgsAndEnvFromLargeArgdataAllocateLittle).
func TestWASIArgsOfManyEmptyStringsAllocateLittle(t *testing.T) {
	n := (MaxArgdataBytes - 64) / 3
	items := make([]argdata.Value, n)
	for i := range items {
		items[i] = argdata.String("")
	}
	data := argdata.StringMap(map[string]argdata.Value{"args": argdata.Seq(items...)}).Encode()
	if len(data) > MaxArgdataBytes {
		t.Fatalf("%d bytes of argdata, more than a spawn hands on", len(data))
	}
	g := &Guest{argdata: data}
	var count, size uint32
	var e Errno
	d := allocatedBy(func() { count, size, e = wasiStringsSizes(wasiArgs(g)) })
	if e != 0 || count != uint32(n) || size != uint32(n) {
		t.Fatalf("args_sizes_get: %d strings of %d bytes, errno %d; want %d of %d", count, size, e, n, n)
	}
	if d > MaxArgdataBytes {
		t.Fatalf("args_sizes_get of %d empty strings in %d bytes of argdata allocated %d bytes", n, len(data), d)
	}
	pv, bv := make([]byte, 4*count), bytes.Repeat([]byte{1}, int(size))
	if d := allocatedBy(func() { wasiStringsPut(wasiArgs(g), pv, bv, 4096) }); d > MaxArgdataBytes {
		t.Fatalf("args_get of %d empty strings in %d bytes of argdata allocated %d bytes", n, len(data), d)
	}
	if !bytes.Equal(bv, make([]byte, size)) || binary.LittleEndian.Uint32(pv[4*(n-1):]) != 4096+uint32(n-1) {
		t.Fatal("args_get did not write the empty strings and their addresses")
	}
}

// wasiStringsOf returns the strings of ss as args_get and environ_get
// write them.
func wasiStringsOf(ss wasiStrings) []string {
	count, size, _ := wasiStringsSizes(ss)
	pv, bv := make([]byte, 4*count), make([]byte, size)
	wasiStringsPut(ss, pv, bv, 0)
	var out []string
	for i := range count {
		at := binary.LittleEndian.Uint32(pv[4*i:])
		out = append(out, string(bv[at:at+uint32(bytes.IndexByte(bv[at:], 0))]))
	}
	return out
}

// allocatedBy is the fewest bytes any of five runs of f allocated, as the
// process's allocation count saw it: what another goroutine allocates
// meanwhile only adds to a run, so the least of several is f's own.
func allocatedBy(f func()) uint64 {
	least := ^uint64(0)
	for range 5 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

// fd_readdir keeps the listing it took between calls, so that a listing
// read in several calls is one snapshot. That is host memory the guest
// makes the daemon hold, in proportion to the directory and once per
// handle: it is charged to the guest's memory (GuestConfig.Memory) while
// kept and given back when the handle is closed, and a listing the charge
// cannot take is ENOMEM rather than held. It used to be charged nothing,
// so a guest could hold a large directory's listing through each of its
// handles.
func TestReaddirListingIsChargedToTheGuestsMemory(t *testing.T) {
	charge := &testCharge{limit: 1 << 30}
	w := newWASITCharged(t, charge)
	const names = 2000
	for i := range names {
		if err := os.WriteFile(filepath.Join(w.dir, "sub", fmt.Sprintf("entry-%04d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path, n := w.str(200, "sub")
	readdir := func() (uint64, Errno) {
		w.must("path_open", 3, 0, path, n, uint64(oflagDirectory), wasiRightFDReaddir, 0, 0, 100)
		fd := uint64(w.u32(100))
		return fd, w.call("fd_readdir", fd, 400, 64, 0, 300)
	}
	fd1, e := readdir()
	if e != 0 {
		t.Fatalf("fd_readdir: %v", e)
	}
	one := charge.used
	if one < names*int64(len("entry-0000")) {
		t.Fatalf("a kept listing of %d names is charged %d bytes", names, one)
	}
	fd2, e := readdir()
	if e != 0 || charge.used != 2*one {
		t.Fatalf("a second handle's listing: %v, %d bytes charged, want %d", e, charge.used, 2*one)
	}
	w.must("fd_readdir", fd2, 400, 64, 3, 300) // resuming takes nothing more
	if charge.used != 2*one {
		t.Fatalf("resuming a listing charged %d bytes, want %d", charge.used, 2*one)
	}
	w.must("fd_close", fd1)
	w.must("fd_close", fd2)
	if charge.used != 0 {
		t.Fatalf("%d bytes still charged once both handles are closed", charge.used)
	}
	charge.limit = one / 2
	if _, e := readdir(); e != caps.ENOMEM || charge.used != 0 {
		t.Fatalf("a listing past the charge's limit: %v with %d bytes charged, want ENOMEM and none", e, charge.used)
	}
}
