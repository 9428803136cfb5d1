package caps

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// eachOpenat2 runs test with openat2 as it is, and with this package's
// openat2 failing as it does on a kernel before Linux 5.6 (ENOSYS) and
// under a seccomp profile that refuses it (EPERM), so that paths are
// opened one element at a time. Each run without openat2 fails if
// nothing called it.
func eachOpenat2(t *testing.T, test func(t *testing.T)) {
	for _, errno := range []unix.Errno{0, unix.ENOSYS, unix.EPERM} {
		name := "openat2"
		if errno != 0 {
			name = "without openat2: " + unix.ErrnoName(errno)
		}
		t.Run(name, func(t *testing.T) {
			if errno == 0 {
				test(t)
				return
			}
			saved, calls := openat2, new(atomic.Int32)
			openat2 = func(int, string, *unix.OpenHow) (int, error) {
				calls.Add(1)
				return -1, errno
			}
			defer func() { openat2 = saved }()
			test(t)
			if calls.Load() == 0 {
				t.Fatal("openat2 was not called: the run tried nothing without it")
			}
		})
	}
}

// OpenNoLinks opens as openat does, with the flags and mode asked and
// close-on-exec, where no element of the path is a symbolic link, and
// fails with ELOOP where one is, in the place of a directory or of the
// last element, whatever the flags; a create makes a file only where
// nothing, not even a dangling link, is. So with openat2 and without it.
func TestOpenNoLinksOpensAsOpenatFollowingNoLink(t *testing.T) {
	eachOpenat2(t, func(t *testing.T) {
		root := t.TempDir()
		mkdirs(t, root, "dir/sub")
		file := filepath.Join(root, "dir", "file")
		if err := os.WriteFile(file, []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
		for link, to := range map[string]string{"link": "dir", "dir/flink": "file", "dir/dangling": "../none"} {
			if err := os.Symlink(to, filepath.Join(root, link)); err != nil {
				t.Fatal(err)
			}
		}
		excl := unix.O_RDWR | unix.O_CREAT | unix.O_EXCL
		cases := []struct {
			rel  string
			flag int
			want error
		}{
			{"dir/file", unix.O_RDONLY, nil},
			{"dir/file", unix.O_RDWR | unix.O_NONBLOCK | unix.O_NOCTTY, nil},
			{"dir/file", unix.O_PATH, nil},
			{"dir/sub", unix.O_RDONLY | unix.O_DIRECTORY, nil},
			{"dir/new", excl, nil},
			{"dir/other", unix.O_RDWR | unix.O_CREAT, nil},
			{"link/file", unix.O_RDONLY, unix.ELOOP},
			{"link/sub", unix.O_PATH | unix.O_DIRECTORY, unix.ELOOP},
			{"link", unix.O_PATH | unix.O_DIRECTORY, unix.ELOOP},
			{"link", unix.O_RDONLY | unix.O_DIRECTORY, unix.ELOOP},
			{"link", unix.O_PATH, unix.ELOOP},
			{"dir/flink", unix.O_RDONLY, unix.ELOOP},
			{"dir/flink", unix.O_PATH, unix.ELOOP},
			{"dir/dangling", unix.O_RDWR | unix.O_CREAT, unix.ELOOP},
			{"dir/dangling", excl, unix.EEXIST},
			{"dir/file", excl, unix.EEXIST},
			{"dir/file", unix.O_PATH | unix.O_DIRECTORY, unix.ENOTDIR},
			{"dir/file/x", unix.O_PATH, unix.ENOTDIR},
			{"dir/none", unix.O_RDONLY, unix.ENOENT},
		}
		for _, c := range cases {
			path := filepath.Join(root, c.rel)
			fd, err := OpenNoLinks(openat2, unix.AT_FDCWD, path, c.flag, 0o600)
			if err != c.want {
				t.Errorf("OpenNoLinks(%s, %#x): %v, want %v", c.rel, c.flag, err, c.want)
			}
			if err == nil {
				checkOpened(t, fd, path, c.flag)
			}
		}
		if _, err := os.Lstat(filepath.Join(root, "none")); err == nil {
			t.Errorf("a create followed a dangling link")
		}
		fd, err := OpenNoLinks(openat2, unix.AT_FDCWD, "/", unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatalf("OpenNoLinks(/): %v", err)
		}
		checkOpened(t, fd, "/", unix.O_PATH)
	})
}

// checkOpened checks that fd, from OpenNoLinks(path, flag), is open on
// path, close-on-exec, readable or writable as flag asks, and a new
// file made with mode 0600; and closes it.
func checkOpened(t *testing.T, fd int, path string, flag int) {
	t.Helper()
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Ino != inodeOf(t, path) {
		t.Errorf("%s: opened inode %d (%v), want %d", path, st.Ino, err, inodeOf(t, path))
	}
	if fdf, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fdf&unix.FD_CLOEXEC == 0 {
		t.Errorf("%s: not close-on-exec (%#x, %v)", path, fdf, err)
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if want := flag & (unix.O_ACCMODE | unix.O_PATH | unix.O_NONBLOCK); err != nil || fl&(unix.O_ACCMODE|unix.O_PATH|unix.O_NONBLOCK) != want {
		t.Errorf("%s: open with flags %#x (%v), want %#x of them", path, fl, err, want)
	}
	if flag&unix.O_CREAT != 0 && st.Mode&0o777 != 0o600 {
		t.Errorf("%s: made with mode %#o, want 0600", path, st.Mode&0o777)
	}
}
