package server_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/daemon/server"
	"github.com/sandboxd/sandboxd/internal/socktest"
)

// A control socket whose directory is reached through a symbolic link
// another user owns is refused: that user could point the link at a
// directory of its own, where it could replace the daemon's socket with
// one it serves, or put a link in the socket's place to a file the daemon
// would then change the mode of.
func TestListenRefusesASocketDirectoryLinkAnotherUserOwns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making a link another user owns needs root")
	}
	dir := shortTempDir(t)
	_, link := linkedDir(t, dir, "l")
	if err := os.Lchown(link, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	l, err := server.Listen(filepath.Join(link, "s.sock"))
	if err == nil {
		l.Close()
		t.Fatal("bound the control socket through a link of uid 4242")
	}
	if !strings.Contains(err.Error(), link) || !strings.Contains(err.Error(), "uid 4242") {
		t.Fatalf("%v; want it to name the link and its owner", err)
	}
}

// The control socket is bound where the links of its directory led when
// they were checked, and that file is the one removed when it closes.
func TestListenBindsWhereTheDirectoryLinkLed(t *testing.T) {
	dir := shortTempDir(t)
	real, link := linkedDir(t, dir, "l")
	l, err := server.Listen(filepath.Join(link, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	want, err := filepath.EvalSymlinks(real)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Addr().String(); got != filepath.Join(want, "s.sock") {
		t.Fatalf("bound %s; want %s", got, filepath.Join(want, "s.sock"))
	}
}

// linkedDir makes the directory real in dir and a symbolic link to it
// named name beside it.
func linkedDir(t *testing.T, dir, name string) (real, link string) {
	t.Helper()
	real = filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link = filepath.Join(dir, name)
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	return real, link
}

// A control socket a daemon that died left behind, which nothing listens
// on, is replaced, also where its directory is reached through the
// daemon's own link; a live one, a file that is not a socket, and a link
// in the socket's place (to a stale socket elsewhere, left as it is) are
// not, and Listen says what to do.
func TestListenReplacesOnlyAStaleControlSocket(t *testing.T) {
	dir := shortTempDir(t)
	real, link := linkedDir(t, dir, "l")
	stale := filepath.Join(real, "stale.sock")
	socktest.LeaveStale(t, stale)
	l, err := server.Listen(filepath.Join(link, "stale.sock"))
	if err != nil {
		t.Fatalf("Listen over a stale control socket: %v", err)
	}
	defer l.Close()
	if c, err := net.Dial("unix", stale); err != nil {
		t.Fatalf("the control socket that replaced the stale one: %v", err)
	} else {
		c.Close()
	}

	elsewhere := filepath.Join(dir, "elsewhere.sock")
	socktest.LeaveStale(t, elsewhere)
	if err := os.Symlink(elsewhere, filepath.Join(real, "link.sock")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(real, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"stale.sock": "another sandboxd is already serving",
		"link.sock":  "exists and is not a socket; remove it or choose another path with --socket",
		"file":       "exists and is not a socket; remove it or choose another path with --socket",
	} {
		l, err := server.Listen(filepath.Join(real, name))
		if err == nil {
			l.Close()
			t.Errorf("Listen at %s succeeded", name)
		} else if !strings.Contains(err.Error(), want) {
			t.Errorf("Listen at %s: %v, want %q", name, err, want)
		}
	}
	if fi, err := os.Lstat(elsewhere); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("the stale socket the link leads to: %v, %v; want it left", fi, err)
	}
}

// A bind that fails because a socket is bound at the path (another
// daemon bound it after Listen found none live there) says another
// process serves it, not that the daemon's user may not write there.
func TestListenBindInUseSaysAnotherProcessServes(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "s.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, bindErr := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if bindErr == nil {
		t.Fatal("a second bind of a bound socket succeeded")
	}
	msg := server.BindError(path, bindErr).Error()
	if strings.Contains(msg, "may write") {
		t.Errorf("the bind error blames the directory's permissions: %s", msg)
	}
	if want := "another process is serving " + path + ": stop it, or give another --socket"; !strings.Contains(msg, want) {
		t.Errorf("the bind error: %s\nwant it to say %q", msg, want)
	}
}
