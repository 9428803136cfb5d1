package abi

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/cpu"
	"golang.org/x/sys/unix"
)

// The compilation cache on disk (Config.CacheDir) keeps two files for
// each module compiled: the machine code, which wazero writes into a
// directory of its own (CacheDir[/no-debug-info]/wazero-VERSION-ARCH-OS)
// under a hash of the code compiled, and, when the module is given loop
// or stack checks, its rewrite (CacheDir/rewritten, by the original's
// SHA-256). Every distinct module a client launched or a guest spawned
// used to add both for good. diskCache counts them and, past
// Config.MaxCacheBytes, removes the files of the least recently used
// modules, a module's code and rewrite together.
//
// Use is recorded without a write at every launch: a launch of a module
// compiled in memory does not come here at all. A module is used when it
// is compiled or loaded from the directory, and stays in use while it is
// compiled in memory; its files' modification times are set (at most
// once a minute) when it is loaded and when it leaves memory (or the
// runtime closes), so that the next process, which reads the directory
// once, the first time it adds to it, orders the files of earlier
// processes by those times.
//
// Removing a file is safe while wazero or another process reads it: an
// open file stays readable after it is unlinked, and wazero (v1.12.0's
// internal/filecache), like loadRewritten, takes a missing file for a
// module not yet compiled. The names of wazero's files are computed as
// its engine does (codePath); TestAModuleIsCountedByTheFilesItKeeps fails
// if an upgrade of wazero changes them.

// DefaultMaxCacheBytes is Config.MaxCacheBytes' default.
const DefaultMaxCacheBytes = 1 << 30

// tmpAge is how old a temporary file of the cache (a write that a
// process began) must be before it counts as left by a process that
// ended: a younger one may be written still, and is not removed.
const tmpAge = 10 * time.Minute

// cacheFileName says whether name is a file of the cache, in a directory
// of kept rewrites (rewritten) or of wazero's compiled code, and whether
// it is a temporary file (a write begun): wazero's are KEY.RANDOM.tmp,
// writeFileAtomic's .tmp-RANDOM. Nothing else in the directory is counted
// or removed.
func cacheFileName(name string, rewritten bool) (ok, tmp bool) {
	if rewritten && strings.HasPrefix(name, ".tmp-") {
		return true, true
	}
	if len(name) < 64 || strings.Trim(name[:64], "0123456789abcdef") != "" {
		return false, false
	}
	rest := name[64:]
	switch {
	case rewritten:
		return strings.HasPrefix(rest, "-v") && strings.HasSuffix(rest, ".wasm"), false
	case rest == "", rest == sealSuffix:
		return true, false
	}
	return strings.HasPrefix(rest, ".") && strings.HasSuffix(rest, ".tmp"), true
}

// diskCache bounds the files of a Runtime's cache directory. A nil
// *diskCache is a runtime without one, and its methods do nothing.
type diskCache struct {
	log  hclog.Logger
	root string // Config.CacheDir, absolute
	// codeDir is where wazero keeps the code this runtime compiles; ""
	// when it was not found, and then that code is counted only by the
	// next process's scan.
	codeDir string
	bound   int64   // bytes; 0 for none
	cpu     [8]byte // wazero's CPU feature flags, which its file names hash

	mu      sync.Mutex
	scanned bool                  // the files of earlier processes are counted
	byPath  map[string]*diskEntry // every file of an entry, by path
	lru     list.List             // the counted entries, most recently used first
	total   int64                 // bytes of the files counted
}

// diskEntry is the files of one module, or a file of an earlier process.
type diskEntry struct {
	files []diskFile
	elem  *list.Element // in lru while counted (after the scan)
	live  bool          // its module is compiled in memory
}

type diskFile struct {
	path string
	size int64 // counted in total while the entry is in lru
}

// newDiskCache returns the bound of the cache in dir, whose compiled code
// wazero keeps under codeRoot (dir, or its no-debug-info directory).
func newDiskCache(log hclog.Logger, dir, codeRoot string, bound int64) *diskCache {
	switch {
	case bound == 0:
		bound = DefaultMaxCacheBytes
	case bound < 0:
		bound = 0
	}
	d := &diskCache{log: log, root: absPath(dir), bound: bound, byPath: make(map[string]*diskEntry)}
	binary.LittleEndian.PutUint64(d.cpu[:], wazeroCPUFeatures())
	d.codeDir = filepath.Join(absPath(codeRoot), "wazero-"+wazeroVersion()+"-"+runtime.GOARCH+"-"+runtime.GOOS)
	if fi, err := os.Stat(d.codeDir); err != nil || !fi.IsDir() {
		log.Warn("the compiled code cache is not where expected: its files are counted towards the cache's bound only when a process starts", "dir", d.codeDir, "error", err)
		d.codeDir = ""
	}
	return d
}

func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// wazeroVersion is the version wazero names its cache directory after
// (its internal/version.GetWazeroVersion).
func wazeroVersion() string {
	v := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if strings.Contains(dep.Path, "github.com/tetratelabs/wazero") {
				v = dep.Version
			}
		}
		if v == "" || v == "(devel)" {
			v = info.Main.Version
		}
	}
	if v == "" || v == "(devel)" {
		return "dev"
	}
	return v
}

// wazeroCPUFeatures are the CPU feature flags wazero hashes into its file
// names (its internal/platform.CpuFeatures), so that code compiled for
// other CPUs is not loaded.
func wazeroCPUFeatures() uint64 {
	var f uint64
	switch runtime.GOARCH {
	case "amd64":
		if cpu.X86.HasSSE41 {
			f |= 1
		}
		if cpu.X86.HasBMI1 {
			f |= 2
		}
		if cpu.X86.HasBMI1 && cpu.X86.HasBMI2 && cpu.X86.HasPOPCNT {
			f |= 4
		}
	case "arm64":
		if cpu.ARM64.HasATOMICS {
			f |= 1
		}
	}
	return f
}

// codePath is the file wazero keeps the machine code of code in (its
// engine's fileCacheKey over the module ID of CompileModule: the SHA-256
// of the bytes, then of no function listeners and of ensureTermination
// off, as NewRuntime configures it); "" without a cache.
func (d *diskCache) codePath(code []byte) string {
	if d == nil || d.codeDir == "" {
		return ""
	}
	var id [sha256.Size]byte
	h := sha256.New()
	h.Write(code)
	h.Write([]byte{0})
	h.Sum(id[:0])
	h.Reset()
	h.Write(id[:])
	h.Write([]byte("WAZEVO"))
	h.Write(d.cpu[:])
	return filepath.Join(d.codeDir, hex.EncodeToString(h.Sum(nil)))
}

// keepsCode says whether the runtime knows where wazero keeps compiled
// code.
func (d *diskCache) keepsCode() bool { return d != nil && d.codeDir != "" }

// fileClockSlack is how far before a time a file's times may read when
// the file was made after it: the kernel stamps files from a clock that
// ticks every few milliseconds.
const fileClockSlack = time.Second

// writtenSince says whether file was made at start or later, as its birth
// time tells (wazero writes a new file and renames it into place), or
// its modification time where the file system keeps no birth time. A
// file made, or whose time was set by another process that used it, less
// than fileClockSlack before counts too: that costs only a scan of the
// directory, which this process would make later.
func (d *diskCache) writtenSince(file string, start time.Time) bool {
	var st unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, file, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BTIME|unix.STATX_MTIME, &st) != nil {
		return false
	}
	t := st.Mtime
	if st.Mask&unix.STATX_BTIME != 0 {
		t = st.Btime
	}
	return time.Unix(t.Sec, int64(t.Nsec)).After(start.Add(-fileClockSlack))
}

// failure reports whether err, of a compile, is a failure of the cache
// rather than of the module, and whether wazero had compiled the module
// when it failed: a failed write of its file (a full disk, the directory
// gone) comes after the compile, which wazero keeps in memory and returns
// to the next compile of the same code. A file it could not read (damaged)
// comes before.
func (d *diskCache) failure(err error) (cache, compiled bool) {
	if d == nil || d.codeDir == "" {
		return false, false
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return filepath.Dir(le.Old) == d.codeDir, true
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && filepath.Dir(pe.Path) == d.codeDir {
		return true, strings.HasSuffix(pe.Path, ".tmp")
	}
	return strings.HasPrefix(err.Error(), "compilationcache: "), false
}

// restoreCodeDir makes wazero's directory again if it was removed, so
// that the next compile's code is kept.
func (d *diskCache) restoreCodeDir() {
	if err := os.MkdirAll(d.codeDir, 0o700); err != nil {
		d.log.Warn("could not make the compiled code cache's directory", "dir", d.codeDir, "error", err)
	}
}

// used records that the module whose files are paths (its rewrite and its
// code; "" for none) was compiled or loaded from the directory just now,
// and is compiled in memory until dropped is called with the entry
// returned. grew says that this compile wrote a file: the first time, the
// files of earlier processes are counted. Past the bound the least
// recently used entries are removed, those of modules compiled in memory
// last.
func (d *diskCache) used(paths []string, grew bool) *diskEntry {
	if d == nil {
		return nil
	}
	paths = slices.DeleteFunc(slices.Clone(paths), func(p string) bool { return p == "" })
	if !grew {
		d.touch(paths)
	}
	e := &diskEntry{live: true}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range paths {
		d.forgetLocked(p)
		e.files = append(e.files, diskFile{path: p})
		d.byPath[p] = e
	}
	switch {
	case d.scanned:
		d.countLocked(e)
	case grew:
		d.scanLocked() // counts e with the rest
	default:
		return e
	}
	d.evictLocked()
	return e
}

// dropped records that e's module is no longer compiled in memory: its
// files are now as recently used as any not in memory.
func (d *diskCache) dropped(e *diskEntry) {
	if d == nil || e == nil {
		return
	}
	d.mu.Lock()
	e.live = false
	if e.elem != nil {
		d.lru.MoveToFront(e.elem)
	}
	paths := e.paths()
	d.mu.Unlock()
	d.touch(paths)
}

// closing sets the times of the files of the modules compiled in memory,
// as dropped does, when the runtime closes.
func (d *diskCache) closing() {
	if d == nil {
		return
	}
	var paths []string
	d.mu.Lock()
	for p, e := range d.byPath {
		if e.live {
			paths = append(paths, p)
		}
	}
	d.mu.Unlock()
	d.touch(paths)
}

// discard removes paths, the files of a compile that failed ("" for
// none): no later compile will use them.
func (d *diskCache) discard(paths ...string) {
	if d == nil {
		return
	}
	d.mu.Lock()
	for _, p := range paths {
		d.forgetLocked(p)
	}
	d.mu.Unlock()
	for _, p := range paths {
		if p != "" {
			d.remove(p)
		}
	}
}

func (e *diskEntry) paths() []string {
	out := make([]string, len(e.files))
	for i, f := range e.files {
		out[i] = f.path
	}
	return out
}

// touchEvery is how stale a file's modification time may be before touch
// sets it: the order of files used within it matters little, and a file
// system write at every start of `sandboxd run` (of one module, in a
// loop) would cost more than the stat that saves it.
const touchEvery = time.Minute

// touch sets the modification times of paths to now, unless set less than
// touchEvery ago, which orders them for the next process. A file gone
// (removed by another process) needs none.
func (d *diskCache) touch(paths []string) {
	now := time.Now()
	for _, p := range paths {
		if fi, err := os.Lstat(p); err != nil || now.Sub(fi.ModTime()) < touchEvery {
			continue
		}
		if err := os.Chtimes(p, now, now); err != nil && !errors.Is(err, fs.ErrNotExist) {
			d.log.Debug("could not record the use of a file of the compilation cache", "path", p, "error", err)
		}
	}
}

// remove removes the cache's file p. Failing is a warning: the cache may
// then hold more than its bound, and nothing else goes wrong.
func (d *diskCache) remove(p string) {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.log.Warn("could not remove a file of the compilation cache: it may take more than its bound", "path", p, "error", err)
	}
}

// forgetLocked takes p out of the entry that has it, uncounting it.
func (d *diskCache) forgetLocked(p string) {
	old := d.byPath[p]
	if old == nil {
		return
	}
	delete(d.byPath, p)
	i := slices.IndexFunc(old.files, func(f diskFile) bool { return f.path == p })
	if old.elem != nil {
		d.total -= old.files[i].size
	}
	old.files = slices.Delete(old.files, i, i+1)
	if len(old.files) == 0 && old.elem != nil {
		d.lru.Remove(old.elem)
		old.elem = nil
	}
}

// countLocked counts e's files, those that exist, as the most recently
// used.
func (d *diskCache) countLocked(e *diskEntry) {
	kept := e.files[:0]
	for _, f := range e.files {
		fi, err := os.Lstat(f.path)
		if err != nil || !fi.Mode().IsRegular() {
			delete(d.byPath, f.path)
			continue
		}
		f.size = fi.Size()
		d.total += f.size
		kept = append(kept, f)
	}
	e.files = kept
	if len(kept) > 0 {
		e.elem = d.lru.PushFront(e)
	}
}

// evictLocked removes the least recently used entries while the files
// counted are past the bound: first those of modules not compiled in
// memory, then, if need be, those of modules that are (they run on, and
// compile anew once dropped).
func (d *diskCache) evictLocked() {
	for d.bound > 0 && d.total > d.bound {
		victim := d.lru.Back()
		for el := victim; el != nil; el = el.Prev() {
			if !el.Value.(*diskEntry).live {
				victim = el
				break
			}
		}
		if victim == nil {
			return
		}
		e := victim.Value.(*diskEntry)
		d.lru.Remove(victim)
		e.elem = nil
		for _, f := range e.files {
			delete(d.byPath, f.path)
			d.total -= f.size
			d.remove(f.path)
		}
		d.log.Debug("removed from the compilation cache, the least recently used", "files", e.paths())
		e.files = nil
	}
}

// cacheFile is a file a scan found.
type cacheFile struct {
	path string
	size int64
	mod  time.Time
}

// scanLocked counts the files of the cache directory, those of earlier
// processes ordered by their modification times, then the entries this
// process recorded before.
func (d *diskCache) scanLocked() {
	d.scanned = true
	var early []*diskEntry
	for _, e := range d.byPath {
		if !slices.Contains(early, e) {
			early = append(early, e)
		}
	}
	dirs := []string{filepath.Join(d.root, "rewritten")}
	for _, pattern := range []string{filepath.Join(d.root, "wazero-*"), filepath.Join(d.root, "no-debug-info", "wazero-*")} {
		found, _ := filepath.Glob(pattern) // its only error is a malformed pattern
		dirs = append(dirs, found...)
	}
	var files []cacheFile
	for _, dir := range dirs {
		files = append(files, d.readCacheDir(dir)...)
	}
	slices.SortFunc(files, func(a, b cacheFile) int { return a.mod.Compare(b.mod) })
	// A code file's seal goes with it, after it.
	seals, files := splitSeals(files)
	for _, f := range append(files, seals...) {
		if d.byPath[f.path] != nil {
			continue // an early entry's
		}
		e := d.byPath[strings.TrimSuffix(f.path, sealSuffix)]
		if e == nil || f.path == strings.TrimSuffix(f.path, sealSuffix) || slices.Contains(early, e) {
			e = &diskEntry{}
			e.elem = d.lru.PushFront(e)
		}
		e.files = append(e.files, diskFile{path: f.path, size: f.size})
		d.byPath[f.path] = e
		d.total += f.size
	}
	for _, e := range early {
		d.countLocked(e)
	}
}

// splitSeals returns the seals among files, and the others.
func splitSeals(files []cacheFile) (seals, others []cacheFile) {
	for _, f := range files {
		if strings.HasSuffix(f.path, sealSuffix) {
			seals = append(seals, f)
		} else {
			others = append(others, f)
		}
	}
	return seals, others
}

// readCacheDir returns the cache's files in dir: the kept rewrites if dir
// is the rewritten directory, else compiled code.
func (d *diskCache) readCacheDir(dir string) []cacheFile {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			d.log.Warn("could not read the compilation cache: its files there are not counted towards its bound", "dir", dir, "error", err)
		}
		return nil
	}
	rewritten := filepath.Base(dir) == "rewritten"
	var out []cacheFile
	for _, ent := range ents {
		ok, tmp := cacheFileName(ent.Name(), rewritten)
		if !ok || !ent.Type().IsRegular() {
			continue
		}
		fi, err := ent.Info()
		if err != nil || tmp && time.Since(fi.ModTime()) < tmpAge {
			continue
		}
		out = append(out, cacheFile{path: filepath.Join(dir, ent.Name()), size: fi.Size(), mod: fi.ModTime()})
	}
	return out
}

// sealSuffix names the file beside a compiled code file that holds its
// size and CRC-32C, written once wazero has written the code: its seal.
// wazero checks its machine code against a checksum of its own, but not
// the table of function offsets that points into it, so that one bit
// flipped there ran code from the wrong place and took the process down;
// and it opens a file without asking what it is (a FIFO in its place was
// waited on for ever). checkCode lets wazero read only a regular file its
// seal vouches for. A seal guards against damage, not against another
// user: whoever can write the directory can write both, which is why the
// directory must be the process's own (checkCacheDir).
const sealSuffix = ".sum"

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// sealPath is the seal of the code file at path ("" for none).
func sealPath(path string) string {
	if path == "" {
		return ""
	}
	return path + sealSuffix
}

// sealOf is the seal of the file open as f: its size and CRC-32C. Only a
// regular file has one.
func sealOf(f *os.File) (string, error) {
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	h := crc32.New(crc32c)
	n, err := io.Copy(h, f)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %08x\n", n, h.Sum32()), nil
}

// openCode opens the cache's file at path for reading, following no link
// and waiting on no FIFO.
func openCode(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
}

// checkCode removes the compiled code file at path, and its seal, unless
// it is a regular file whose seal matches it, so that wazero compiles the
// module anew rather than load it. A file of an earlier sandboxd, which
// kept no seals, or of a process that stopped before it wrote one, is
// compiled anew once.
func (d *diskCache) checkCode(path string) {
	if d == nil || path == "" {
		return
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return
	}
	want, serr := os.ReadFile(path + sealSuffix)
	got, err := sealCode(path)
	switch {
	case err != nil:
		d.log.Warn("a compiled code file in the cache cannot be read: removing it, and compiling the module anew", "file", path, "error", err)
	case serr != nil:
		d.log.Info("a compiled code file in the cache has no seal (kept by an earlier sandboxd, or a process that stopped while writing it): compiling the module anew", "file", path)
	case got != string(want):
		d.log.Warn("a compiled code file in the cache is damaged (its size or checksum is not what was written): removing it, and compiling the module anew", "file", path, "seal", strings.TrimSpace(string(want)), "found", strings.TrimSpace(got))
	default:
		return
	}
	d.discard(path+sealSuffix, path)
}

func sealCode(path string) (string, error) {
	f, err := openCode(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return sealOf(f)
}

// seal writes the seal of the code file at path, which this process's
// compile has just written. Failing costs the next process a compile.
func (d *diskCache) seal(path string) {
	if d == nil || path == "" {
		return
	}
	s, err := sealCode(path)
	if old, rerr := os.ReadFile(path + sealSuffix); err == nil && rerr == nil && string(old) == s {
		return // a file written just before, by another process, sealed
	}
	if err == nil {
		err = writeFileAtomicAs(path+sealSuffix, filepath.Base(path)+sealSuffix+".*.tmp", []byte(s))
	}
	if err != nil {
		d.log.Warn("could not seal a compiled code file of the cache: the next process compiles the module anew", "file", path, "error", err)
	}
}

// writeFileAtomicAs writes b to path through a temporary file named by
// pattern (os.CreateTemp's, in path's directory) renamed into place.
func writeFileAtomicAs(path, pattern string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), pattern)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// rewriteMagic begins a kept rewrite: then the CRC-32C of the rest (little
// endian), whether the start function was moved (1) or not (0), and the
// code. A rewrite damaged so that it still compiles (a constant's bit
// flipped) was compiled and run as it was: the checksum tells it.
var rewriteMagic = []byte("SBXR")

// sealRewrite is the file a rewrite is kept in.
func sealRewrite(code []byte, startFn bool) []byte {
	b := make([]byte, 0, len(rewriteMagic)+4+1+len(code))
	b = append(b, rewriteMagic...)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = append(b, btoi(startFn))
	b = append(b, code...)
	binary.LittleEndian.PutUint32(b[len(rewriteMagic):], crc32.Checksum(b[len(rewriteMagic)+4:], crc32c))
	return b
}

// openRewrite returns the code and start function flag of b, the kept
// rewrite at path, if its checksum holds. Otherwise it removes the file,
// saying why, and the module is rewritten anew (and kept again).
func (d *diskCache) openRewrite(log hclog.Logger, path string, b []byte) (code []byte, startFn, ok bool) {
	n := len(rewriteMagic) + 4
	switch {
	case !bytes.HasPrefix(b, rewriteMagic):
		log.Info("a kept rewrite has no checksum (kept by an earlier sandboxd): rewriting the module anew", "file", path)
	case len(b) < n+9 || b[n] > 1 || crc32.Checksum(b[n:], crc32c) != binary.LittleEndian.Uint32(b[len(rewriteMagic):]):
		log.Warn("a kept rewrite in the cache is damaged (its checksum is not what was written): rewriting the module anew", "file", path)
	default:
		return b[n+1:], b[n] == 1, true
	}
	d.discard(path)
	if d == nil {
		os.Remove(path)
	}
	return nil, false, false
}

// checkCacheDir refuses the cache directory dir if another user than the
// process's could write in it or in a directory of it the cache uses:
// wazero loads machine code from there as it finds it (a seal tells only
// damage), so whoever can write there can have the process run code of
// theirs. Each must belong to the process's user and not be writable by
// its group or others. Links are followed: a directory is judged where
// they lead.
func checkCacheDir(dir string) error {
	dirs := []string{dir, filepath.Join(dir, "rewritten"), filepath.Join(dir, "no-debug-info")}
	for _, pattern := range []string{filepath.Join(dir, "wazero-*"), filepath.Join(dir, "no-debug-info", "wazero-*")} {
		found, _ := filepath.Glob(pattern) // its only error is a malformed pattern
		dirs = append(dirs, found...)
	}
	for _, p := range dirs {
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist) && p != dir:
			continue
		case err != nil:
			return fmt.Errorf("compilation cache: %w", err)
		case !fi.IsDir():
			return fmt.Errorf("compilation cache %s is not a directory (%v): move it aside, or choose another cache directory", p, fi.Mode().Type())
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && int(st.Uid) != os.Geteuid() {
			return fmt.Errorf("compilation cache %s belongs to uid %d, not to this process's uid %d: that user could put machine code there that sandboxd would run; chown it, or choose another cache directory", p, st.Uid, os.Geteuid())
		}
		if fi.Mode().Perm()&0o022 != 0 {
			return fmt.Errorf("compilation cache %s is writable by other users (mode %v): they could put machine code there that sandboxd would run; chmod go-w it, or choose another cache directory", p, fi.Mode().Perm())
		}
	}
	return nil
}

// resolveCacheDir makes the cache directory dir if it is not there and
// returns it as its links lead now, which is where the runtime keeps
// using it: a link on the path pointed elsewhere later does not move it.
// Every directory above it must be safe from other users (CheckAbove).
func resolveCacheDir(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("compilation cache %s: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err == nil {
		real, err = filepath.Abs(real)
	}
	if err != nil {
		return "", fmt.Errorf("compilation cache %s: %w", dir, err)
	}
	if err := CheckAbove(real); err != nil {
		return "", fmt.Errorf("compilation cache %s: %w; chmod go-w it, or choose a cache directory beneath directories only root or uid %d may change", dir, err, os.Geteuid())
	}
	return real, nil
}

// CheckAbove returns an error naming the first directory above dir (an
// absolute path without links) that a user other than this process's
// and root could change: one that belongs to another user, or that its
// group or others may write without the sticky bit that keeps them from
// renaming what is not theirs (as /tmp's does). Such a user could move
// dir aside after every check of it and put a directory of theirs, with
// machine code of theirs, in its place. A directory not there yet is
// passed over: what makes it makes it its own.
func CheckAbove(dir string) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Lstat(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		var st *syscall.Stat_t
		if err == nil {
			st, _ = fi.Sys().(*syscall.Stat_t)
		}
		switch {
		case st == nil:
		case st.Uid != 0 && int(st.Uid) != os.Geteuid():
			return fmt.Errorf("the directory %s above it belongs to uid %d, neither root nor this process's uid %d: that user could move it aside and put machine code there that sandboxd would run", p, st.Uid, os.Geteuid())
		case fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0:
			return fmt.Errorf("the directory %s above it is writable by other users (mode %v) and not sticky: they could move it aside and put machine code there that sandboxd would run", p, fi.Mode().Perm())
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
