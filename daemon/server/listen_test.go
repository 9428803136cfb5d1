package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/daemon/server"
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
