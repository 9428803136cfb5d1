package caps

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Dir is a directory on the host, opened through os.Root.
//
// Holding a capability to a Dir allows the path operations its rights name
// on the directory and everything beneath it, and nothing outside it: every
// path is resolved by os.Root relative to this directory. Absolute paths,
// ".." that would climb above the directory, and symbolic links whose
// target leaves it (absolute, or climbing out) are refused with
// ENOTCAPABLE. Symbolic links that stay beneath it are followed. This holds
// against concurrent renames on the host too: os.Root resolves each
// component with openat and O_NOFOLLOW, never by string prefix.
//
// Operations that name two directories (rename, link) work when both were
// reached from the same granted directory, and fail with EXDEV otherwise.
type Dir struct {
	root *os.Root
	top  *sharedRoot // the granted directory this one was reached from
	rel  string      // this directory's path beneath top ("." for top)
	host string
}

type sharedRoot struct {
	r    *os.Root
	refs atomic.Int32
}

func (s *sharedRoot) release() {
	if s.refs.Add(-1) == 0 {
		_ = s.r.Close()
	}
}

// OpenDir opens a host directory as a Dir.
func OpenDir(hostPath string) (*Dir, error) {
	r, err := os.OpenRoot(hostPath)
	if err != nil {
		return nil, err
	}
	top, err := os.OpenRoot(hostPath)
	if err != nil {
		r.Close()
		return nil, err
	}
	s := &sharedRoot{r: top}
	s.refs.Store(1)
	return &Dir{root: r, top: s, rel: ".", host: hostPath}, nil
}

func (d *Dir) Kind() Kind       { return KindDirectory }
func (d *Dir) Describe() string { return "dir " + d.host }

// HostPath is the host path the directory was reached by, for display.
func (d *Dir) HostPath() string { return d.host }

func (d *Dir) Close() error {
	err := d.root.Close()
	d.top.release()
	return err
}

// CheckPath validates a guest path before any host call: it must be
// relative, non-empty, free of NUL bytes, and must not climb above the
// directory with "..". Symbolic links are left to os.Root.
func CheckPath(p string) error {
	if p == "" {
		return ENOENT
	}
	if strings.IndexByte(p, 0) >= 0 {
		return EINVAL
	}
	if p[0] == '/' {
		return ENOTCAPABLE
	}
	depth := 0
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return ENOTCAPABLE
			}
		default:
			depth++
		}
	}
	return nil
}

// OpenFlags are the ABI-neutral options of Open.
type OpenFlags struct {
	Read, Write  bool
	Create, Excl bool
	Trunc        bool
	Directory    bool // fail with ENOTDIR unless the target is a directory
	Append       bool
	Sync         bool
	NoFollow     bool // the final component must not be a symbolic link (ELOOP)
}

// Open opens p beneath d. The result is a *Dir when the target is a
// directory and a *File otherwise.
func (d *Dir) Open(p string, fl OpenFlags) (Resource, error) {
	if err := CheckPath(p); err != nil {
		return nil, err
	}
	if fl.NoFollow {
		if fi, err := d.root.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, ELOOP
		}
	}
	if fl.Directory {
		if fl.Create || fl.Trunc || fl.Write {
			return nil, EISDIR
		}
		return d.openDir(p)
	}
	flag := syscall.O_CLOEXEC
	switch {
	case fl.Read && fl.Write:
		flag |= os.O_RDWR
	case fl.Write:
		flag |= os.O_WRONLY
	default:
		flag |= os.O_RDONLY
	}
	if fl.Create {
		flag |= os.O_CREATE
	}
	if fl.Excl {
		flag |= os.O_EXCL
	}
	if fl.Trunc {
		flag |= os.O_TRUNC
	}
	if fl.Append {
		flag |= os.O_APPEND
	}
	if fl.Sync {
		flag |= os.O_SYNC
	}
	f, err := d.root.OpenFile(p, flag, 0o666)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.IsDir() {
		f.Close()
		return d.openDir(p)
	}
	return NewFile(f, path.Join(d.host, p)), nil
}

func (d *Dir) openDir(p string) (*Dir, error) {
	r, err := d.root.OpenRoot(p)
	if err != nil {
		return nil, err
	}
	d.top.refs.Add(1)
	return &Dir{root: r, top: d.top, rel: path.Join(d.rel, p), host: path.Join(d.host, p)}, nil
}

// Mkdir creates directory p beneath d.
func (d *Dir) Mkdir(p string) error {
	if err := CheckPath(p); err != nil {
		return err
	}
	return d.root.Mkdir(p, 0o777)
}

// Unlink removes p: a non-directory, or with dir set an empty directory.
func (d *Dir) Unlink(p string, dir bool) error {
	if err := CheckPath(p); err != nil {
		return err
	}
	fi, err := d.root.Lstat(p)
	if err != nil {
		return err
	}
	if dir && !fi.IsDir() {
		return ENOTDIR
	}
	if !dir && fi.IsDir() {
		return EISDIR
	}
	err = d.root.Remove(p)
	var pe *fs.PathError
	if dir && errors.As(err, &pe) && errors.Is(pe.Err, syscall.EEXIST) {
		return ENOTEMPTY
	}
	return err
}

// pairPaths returns the two paths relative to the shared granted root, or
// EXDEV when d and other were reached from different grants.
func (d *Dir) pairPaths(p1 string, other *Dir, p2 string) (*os.Root, string, string, error) {
	if err := CheckPath(p1); err != nil {
		return nil, "", "", err
	}
	if err := CheckPath(p2); err != nil {
		return nil, "", "", err
	}
	if other == d {
		return d.root, p1, p2, nil
	}
	if other.top != d.top {
		return nil, "", "", EXDEV
	}
	a, b := path.Join(d.rel, p1), path.Join(other.rel, p2)
	if CheckPath(a) != nil || CheckPath(b) != nil {
		return nil, "", "", ENOTCAPABLE
	}
	return d.top.r, a, b, nil
}

// Rename moves p1 beneath d to p2 beneath to.
func (d *Dir) Rename(p1 string, to *Dir, p2 string) error {
	r, a, b, err := d.pairPaths(p1, to, p2)
	if err != nil {
		return err
	}
	return r.Rename(a, b)
}

// Link makes p2 beneath to a hard link to p1 beneath d.
func (d *Dir) Link(p1 string, to *Dir, p2 string) error {
	r, a, b, err := d.pairPaths(p1, to, p2)
	if err != nil {
		return err
	}
	return r.Link(a, b)
}

// Symlink creates p beneath d as a symbolic link with the given contents.
// The contents are not checked: a link that points outside is created, and
// refused when something tries to follow it.
func (d *Dir) Symlink(target, p string) error {
	if err := CheckPath(p); err != nil {
		return err
	}
	if strings.IndexByte(target, 0) >= 0 {
		return EINVAL
	}
	return d.root.Symlink(target, p)
}

// Readlink returns the contents of the symbolic link p.
func (d *Dir) Readlink(p string) (string, error) {
	if err := CheckPath(p); err != nil {
		return "", err
	}
	return d.root.Readlink(p)
}

// StatAt reports on p beneath d; follow decides whether a final symbolic
// link is followed.
func (d *Dir) StatAt(p string, follow bool) (FileStat, error) {
	if err := CheckPath(p); err != nil {
		return FileStat{}, err
	}
	var fi fs.FileInfo
	var err error
	if follow {
		fi, err = d.root.Stat(p)
	} else {
		fi, err = d.root.Lstat(p)
	}
	if err != nil {
		return FileStat{}, err
	}
	return statOf(fi), nil
}

// SetTimesAt changes p's times; nil leaves a time unchanged.
func (d *Dir) SetTimesAt(p string, atime, mtime *time.Time) error {
	if err := CheckPath(p); err != nil {
		return err
	}
	var a, m time.Time
	if atime != nil {
		a = *atime
	}
	if mtime != nil {
		m = *mtime
	}
	return d.root.Chtimes(p, a, m)
}

// Stat reports on the directory itself.
func (d *Dir) Stat() (FileStat, error) { return d.StatAt(".", true) }

// SetTimes changes the directory's own times.
func (d *Dir) SetTimes(atime, mtime *time.Time) error { return d.SetTimesAt(".", atime, mtime) }

func (d *Dir) Sync() error {
	f, err := d.root.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func (d *Dir) Datasync() error { return d.Sync() }

// DirEntry is one name in a directory listing.
type DirEntry struct {
	Name string
	Type FileType
	Ino  uint64
}

// Readdir lists the directory, "." and ".." first, then the other names in
// byte order, so that a listing resumed at an index (a cookie) is stable.
func (d *Dir) Readdir() ([]DirEntry, error) {
	f, err := d.root.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	out := make([]DirEntry, 0, len(ents)+2)
	self, _ := d.Stat()
	out = append(out, DirEntry{Name: ".", Type: TypeDirectory, Ino: self.Ino}, DirEntry{Name: "..", Type: TypeDirectory})
	for _, e := range ents {
		de := DirEntry{Name: e.Name(), Type: fileTypeOf(e.Type())}
		if fi, err := e.Info(); err == nil {
			if s, ok := fi.Sys().(*syscall.Stat_t); ok {
				de.Ino = s.Ino
			}
		}
		out = append(out, de)
	}
	return out, nil
}
