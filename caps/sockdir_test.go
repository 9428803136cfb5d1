package caps

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sandboxd/sandboxd/internal/socktest"
	"golang.org/x/sys/unix"
)

// mkdirs makes each directory beneath root.
func mkdirs(t *testing.T, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// inodeOf is the inode number of path, not following a final link.
func inodeOf(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// A socket is bound, and a stale socket file removed, in the directory a
// SocketDir opened, whatever is put in the place of that directory on
// its path since: a link there (a guest with a dir grant of the directory
// above can make one) leads the daemon nowhere. The listener removes its
// own socket file from that directory when it closes.
func TestSocketDirBindsInTheDirectoryItOpened(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "run/app", "elsewhere")
	app, elsewhere := filepath.Join(root, "run", "app"), filepath.Join(root, "elsewhere")
	socktest.LeaveStale(t, filepath.Join(app, "x.sock"))
	socktest.LeaveStale(t, filepath.Join(elsewhere, "x.sock"))
	if err := os.Link(filepath.Join(elsewhere, "x.sock"), filepath.Join(elsewhere, "kept")); err != nil {
		t.Fatal(err) // keeps the inode, which is compared below, from reuse
	}
	decoy := inodeOf(t, filepath.Join(elsewhere, "x.sock"))

	d, err := OpenSocketDir(app)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := os.Rename(app, app+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, app); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveStale("x.sock"); err != nil {
		t.Fatalf("RemoveStale: %v", err)
	}
	l, err := d.Listen("x.sock", "test")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	c, err := net.Dial("unix", filepath.Join(app+".old", "x.sock"))
	if err != nil {
		t.Fatalf("dial the socket in the directory opened: %v", err)
	}
	c.Close()
	l.Close()
	if _, err := os.Lstat(filepath.Join(app+".old", "x.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the listener's socket file is left after it closed: %v", err)
	}
	if ino := inodeOf(t, filepath.Join(elsewhere, "x.sock")); ino != decoy {
		t.Errorf("the stale socket where the link leads was replaced (inode %d, was %d)", ino, decoy)
	}
	if c, err := net.Dial("unix", filepath.Join(elsewhere, "x.sock")); err == nil {
		c.Close()
		t.Errorf("something listens where the link leads")
	}
}

// A SocketDir is opened only where no element of its path is a symbolic
// link, with openat2 or, without it, one element at a time.
func TestOpenSocketDirFollowsNoLink(t *testing.T) {
	eachOpenat2(t, func(t *testing.T) {
		root := t.TempDir()
		mkdirs(t, root, "run/app")
		if err := os.Symlink(filepath.Join(root, "run"), filepath.Join(root, "varrun")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		through := filepath.Join(root, "varrun", "app")
		if _, err := OpenSocketDir(through); !errors.Is(err, unix.ELOOP) {
			t.Errorf("OpenSocketDir(%s), through a link: %v, want ELOOP", through, err)
		}
		for path, want := range map[string]error{
			through:                          unix.ELOOP,
			filepath.Join(root, "varrun"):    unix.ELOOP,
			filepath.Join(root, "file"):      unix.ENOTDIR,
			filepath.Join(root, "file", "x"): unix.ENOTDIR,
			filepath.Join(root, "none"):      unix.ENOENT,
			"run/app":                        unix.EINVAL,
		} {
			if fd, err := openDirNoLinks(path); err != want {
				if err == nil {
					unix.Close(fd)
				}
				t.Errorf("openDirNoLinks(%s): %v, want %v", path, err, want)
			}
		}
		app := filepath.Join(root, "run", "app")
		d, err := OpenSocketDir(app)
		if err != nil {
			t.Fatalf("OpenSocketDir(%s): %v", app, err)
		}
		defer d.Close()
		var st unix.Stat_t
		if err := unix.Fstat(d.fd, &st); err != nil || st.Ino != inodeOf(t, app) {
			t.Fatalf("OpenSocketDir(%s) opened inode %d (%v), want %d", app, st.Ino, err, inodeOf(t, app))
		}
	})
}

// RemoveStale removes a socket file nothing listens on, and nothing else:
// not a file of another type, not a link (to a stale socket or
// anything), not a socket something answers on.
func TestRemoveStaleRemovesOnlyAStaleSocket(t *testing.T) {
	dir := t.TempDir()
	socktest.LeaveStale(t, filepath.Join(dir, "stale.sock"))
	socktest.LeaveStale(t, filepath.Join(dir, "target.sock"))
	if err := os.Symlink("target.sock", filepath.Join(dir, "link.sock")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	live, err := net.Listen("unix", filepath.Join(dir, "live.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	d, err := OpenSocketDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for name, want := range map[string]error{
		"stale.sock": nil, "none.sock": nil,
		"link.sock": ErrNotSocket, "file": ErrNotSocket, "live.sock": ErrSocketInUse,
	} {
		if err := d.RemoveStale(name); !errors.Is(err, want) {
			t.Errorf("RemoveStale(%s): %v, want %v", name, err, want)
		}
	}
	for name, gone := range map[string]bool{"stale.sock": true, "target.sock": false, "link.sock": false, "file": false, "live.sock": false} {
		if _, err := os.Lstat(filepath.Join(dir, name)); errors.Is(err, os.ErrNotExist) != gone {
			t.Errorf("%s after RemoveStale: %v, want it gone: %v", name, err, gone)
		}
	}
}

// A name that does not fit in a socket address beside the directory's
// descriptor is ENAMETOOLONG, and nothing is bound; the longest that fits
// is bound.
func TestSocketDirListenRefusesANameTooLongToBind(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenSocketDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Listen(strings.Repeat("n", d.MaxName()+1), "test"); !errors.Is(err, unix.ENAMETOOLONG) {
		t.Fatalf("Listen with a name of %d bytes: %v, want ENAMETOOLONG", d.MaxName()+1, err)
	}
	l, err := d.Listen(strings.Repeat("n", d.MaxName()), "test")
	if err != nil {
		t.Fatalf("Listen with a name of %d bytes, the most: %v", d.MaxName(), err)
	}
	l.Close()
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("left in the directory: %v, %v", entries, err)
	}
}

// Without /proc, through which sockets are bound, connected to and
// probed beneath their directories, each of these fails saying so and
// what to do, not with the ENOENT of the /proc path, which reads as if
// the socket or its directory were missing; a stale socket is left.
func TestUnixSocketsWithoutProcSaySo(t *testing.T) {
	dir := RealPath(t.TempDir())
	socktest.LeaveStale(t, filepath.Join(dir, "stale.sock"))
	listenAt(t, filepath.Join(dir, "live.sock"))
	d, err := OpenSocketDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p, err := OpenSocketPath(filepath.Join(dir, "live.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	procFD = filepath.Join(t.TempDir(), "no-proc") + "/"
	defer func() { procFD = "/proc/self/fd/" }()

	_, lerr := d.Listen("new.sock", "test")
	_, derr := p.Dial(context.Background(), &net.Dialer{})
	rerr := d.RemoveStale("stale.sock")
	for op, err := range map[string]error{"Listen": lerr, "Dial": derr, "RemoveStale": rerr} {
		if !errors.Is(err, ErrNoProc) || !strings.Contains(err.Error(), "mount") {
			t.Errorf("%s without /proc: %v, want ErrNoProc, saying to mount it", op, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "stale.sock")); err != nil {
		t.Errorf("the stale socket, which could not be probed: %v, want it left", err)
	}
	if e := DialErrno(derr); e != EIO {
		t.Errorf("a dialer's guest is told %v without /proc, want EIO: the host failed, not the server", e)
	}
}
