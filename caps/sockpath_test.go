package caps

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/sandboxd/sandboxd/internal/socktest"
	"golang.org/x/sys/unix"
)

// OpenSocketPath opens the deepest directory of the path that exists,
// following no link: a link on the path, a file where a directory should
// be, or a relative path is refused.
func TestOpenSocketPathFollowsNoLink(t *testing.T) {
	root := RealPath(t.TempDir())
	mkdirs(t, root, "run/app")
	if err := os.Symlink(filepath.Join(root, "run"), filepath.Join(root, "varrun")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]error{
		filepath.Join(root, "varrun", "app", "db.sock"):  unix.ELOOP,
		filepath.Join(root, "varrun", "none", "db.sock"): unix.ELOOP,
		filepath.Join(root, "file", "db.sock"):           unix.ENOTDIR,
		"run/app/db.sock":                                unix.EINVAL,
		"/":                                              unix.EINVAL,
	} {
		p, err := OpenSocketPath(path)
		if err == nil {
			p.Close()
		}
		var pe *os.PathError
		if !errors.Is(err, want) || !errors.As(err, &pe) {
			t.Errorf("OpenSocketPath(%s): %v, want an *fs.PathError with %v", path, err, want)
		}
	}
	for path, held := range map[string]string{
		filepath.Join(root, "run", "app", "db.sock"):           filepath.Join(root, "run", "app"),
		filepath.Join(root, "run", "app", "x", "y", "db.sock"): filepath.Join(root, "run", "app"),
	} {
		p, err := OpenSocketPath(path)
		if err != nil {
			t.Fatalf("OpenSocketPath(%s): %v", path, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(p.dir, &st); err != nil || st.Ino != inodeOf(t, held) {
			t.Errorf("OpenSocketPath(%s) holds inode %d (%v), want %s's, %d", path, st.Ino, err, held, inodeOf(t, held))
		}
		if p.Path() != path {
			t.Errorf("Path() = %s, want %s", p.Path(), path)
		}
		p.Close()
	}
}

// Dial looks the socket file up beneath the directory held following no
// link, with openat2 or, without it, one element at a time, and fails
// once the SocketPath is closed.
func TestSocketPathDialFollowsNoLink(t *testing.T) {
	eachOpenat2(t, func(t *testing.T) {
		root := RealPath(t.TempDir())
		mkdirs(t, root, "app/sub")
		listenAt(t, filepath.Join(root, "app", "sub", "db.sock"))
		other := listenAt(t, filepath.Join(root, "other.sock"))
		cases := map[string]error{
			"sub/db.sock":     nil,
			"link.sock":       unix.ELOOP,
			"linkdir/db.sock": unix.ELOOP,
			"none.sock":       unix.ENOENT,
		}
		pinned := map[string]*SocketPath{}
		for rel := range cases {
			p, err := OpenSocketPath(filepath.Join(root, "app", rel))
			if err != nil {
				t.Fatal(err)
			}
			pinned[rel] = p
		}
		// Links made after the paths were pinned.
		if err := os.Symlink(other.Addr().String(), filepath.Join(root, "app", "link.sock")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("sub", filepath.Join(root, "app", "linkdir")); err != nil {
			t.Fatal(err)
		}
		dirfd, err := openDirNoLinks(filepath.Join(root, "app"))
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(dirfd)
		for rel, want := range cases {
			fd, err := openNoLinks(dirfd, rel, false)
			if err == nil {
				unix.Close(fd)
			}
			if err != want {
				t.Errorf("opening %s beneath the directory: %v, want %v", rel, err, want)
			}
			p := pinned[rel]
			c, err := p.Dial(context.Background(), &net.Dialer{})
			if err == nil {
				c.Close()
			}
			if (want == nil) != (err == nil) || !errors.Is(err, want) {
				t.Errorf("Dial of %s: %v, want %v", rel, err, want)
			}
			p.Close()
			if _, err := p.Dial(context.Background(), &net.Dialer{}); !errors.Is(err, unix.EBADF) {
				t.Errorf("Dial of %s once closed: %v, want EBADF", rel, err)
			}
		}
		socktest.Unreached(t, other, hangGuard)
	})
}

// A protected socket file is refused by every SocketPath, whatever path
// leads to it (here a hard link), until it is released; other sockets
// are reached as before.
func TestSocketPathRefusesAProtectedSocket(t *testing.T) {
	dir := t.TempDir()
	ctl := filepath.Join(dir, "control.sock")
	l, err := net.Listen("unix", ctl)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	alias := filepath.Join(dir, "alias.sock")
	if err := os.Link(ctl, alias); err != nil {
		t.Fatal(err)
	}
	release, err := ProtectSocket(ctl)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{ctl, alias} {
		p, err := OpenSocketPath(path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := p.Dial(context.Background(), &net.Dialer{})
		if !errors.Is(err, ErrProtectedSocket) {
			if c != nil {
				c.Close()
			}
			t.Errorf("Dial of %s: %v, want ErrProtectedSocket", path, err)
		}
		if e := DialErrno(err); e != EACCES {
			t.Errorf("a dialer's errno for it: %v, want EACCES", e)
		}
		p.Close()
	}
	release()
	p, err := OpenSocketPath(ctl)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := p.Dial(context.Background(), &net.Dialer{})
	if err != nil {
		t.Fatalf("Dial once released: %v", err)
	}
	c.Close()
}
