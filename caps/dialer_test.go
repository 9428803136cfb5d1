package caps

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/internal/socktest"
)

// acceptDialed takes the next connection from d the way the ABI does:
// Accept, and on EAGAIN wait for Poll's wake-up and try again.
func acceptDialed(t *testing.T, d *Dialer) (Resource, error) {
	t.Helper()
	for {
		res, err := d.Accept()
		if !errors.Is(err, EAGAIN) {
			return res, err
		}
		w := NewWaiter()
		ready, cancel := d.Poll(EventRead, w)
		if ready&EventRead == 0 {
			waitWake(t, w, "dial attempt finished")
		}
		cancel()
	}
}

// freeTCPAddr returns a loopback address nothing listens on.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestDialerOpensANewConnectionOnEachAccept(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, err := NewDialer("tcp", []string{l.Addr().String()}, hangGuard, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if ready, _ := d.Poll(EventRead, nil); ready&EventRead == 0 {
		t.Fatal("an idle dialer is not ready: Accept would start an attempt")
	}
	if ready, _ := d.Poll(EventWrite, nil); ready != 0 {
		t.Fatalf("dialer reports %v for write; it is never writable", ready)
	}
	for i, msg := range []string{"one", "two"} {
		res, err := acceptDialed(t, d)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		s := res.(*Socket)
		server, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		s.Close() // the server reads the message, then end of stream
		got, err := io.ReadAll(server)
		server.Close()
		if err != nil || string(got) != msg {
			t.Fatalf("connection %d: server read %q, %v; want %q", i, got, err, msg)
		}
	}
}

// A refused attempt is reported once; the next Accept starts a new one
// (TestDialerConnectsToAUnixSocketAndReportsAMissingOne shows it reaching
// a server that came up meanwhile).
func TestDialerReturnsTheConnectErrorAndTriesAgainAfter(t *testing.T) {
	d, err := NewDialer("tcp", []string{freeTCPAddr(t)}, hangGuard, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for i := 0; i < 2; i++ {
		if _, err := acceptDialed(t, d); !errors.Is(err, ECONNREFUSED) {
			t.Fatalf("accept %d with nothing listening: %v, want ECONNREFUSED", i, err)
		}
	}
}

func TestDialerTriesItsAddressesInOrder(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, err := NewDialer("tcp", []string{freeTCPAddr(t), l.Addr().String()}, hangGuard, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res, err := acceptDialed(t, d)
	if err != nil {
		t.Fatalf("the second address listens, yet: %v", err)
	}
	res.Close()
}

func TestDialerConnectsToAUnixSocketAndReportsAMissingOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	d := unixDialer(t, path)
	if _, err := acceptDialed(t, d); !errors.Is(err, ENOENT) {
		t.Fatalf("accept with no socket file: %v, want ENOENT", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	res, err := acceptDialed(t, d)
	if err != nil {
		t.Fatal(err)
	}
	res.Close()
}

// A connection made but not yet taken is closed with the dialer: closing
// leaves nothing open.
func TestDialerCloseClosesAConnectionNotTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, err := NewDialer("tcp", []string{l.Addr().String()}, hangGuard, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Accept(); !errors.Is(err, EAGAIN) {
		t.Fatalf("first accept: %v, want EAGAIN while the attempt runs", err)
	}
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	w := NewWaiter()
	if ready, cancel := d.Poll(EventRead, w); ready&EventRead == 0 {
		waitWake(t, w, "attempt finished")
		cancel()
	}
	d.Close()
	server.SetReadDeadline(time.Now().Add(hangGuard))
	if n, err := server.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("server read %d, %v after the dialer closed; want EOF", n, err)
	}
	if _, err := d.Accept(); !errors.Is(err, EBADF) {
		t.Fatalf("accept after close: %v, want EBADF", err)
	}
	if ready, _ := d.Poll(EventRead, nil); ready&EventRead == 0 {
		t.Fatal("a closed dialer must poll ready, so that a waiter sees EBADF at once")
	}
}

func TestNewDialerRefusesOtherNetworksAndNoAddress(t *testing.T) {
	if _, err := NewDialer("udp", []string{"127.0.0.1:53"}, time.Second, "x"); err == nil {
		t.Error("NewDialer accepted udp")
	}
	if _, err := NewDialer("tcp", nil, time.Second, "x"); err == nil {
		t.Error("NewDialer accepted no address")
	}
	if _, err := NewDialer("unix", []string{"/run/app/db.sock"}, time.Second, "x"); err == nil || !strings.Contains(err.Error(), "NewUnixDialer") {
		t.Errorf("NewDialer of a unix socket file: %v, want it refused for NewUnixDialer", err)
	}
	d, err := NewDialer("unix", []string{"@abstract"}, time.Second, "x")
	if err != nil {
		t.Fatalf("NewDialer of an abstract unix address: %v", err)
	}
	d.Close()
}

// unixDialer returns a dialer to the unix socket file at path, its links
// resolved now, as the supervisor grants one; closed when the test ends.
func unixDialer(t *testing.T, path string) *Dialer {
	t.Helper()
	p, err := OpenSocketPath(RealPath(path))
	if err != nil {
		t.Fatal(err)
	}
	d := NewUnixDialer(p, hangGuard, "test")
	t.Cleanup(func() { d.Close() })
	return d
}

// listenAt listens on a unix socket at path, making its directory, until
// the test ends.
func listenAt(t *testing.T, path string) net.Listener {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// dialedBy checks that the next connection d makes reaches l: l accepts
// it, and what is written on it arrives.
func dialedBy(t *testing.T, d *Dialer, l net.Listener, what string) {
	t.Helper()
	res, err := acceptDialed(t, d)
	if err != nil {
		t.Fatalf("%s: accept: %v", what, err)
	}
	defer res.Close()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := res.(*Socket).Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(hangGuard))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("%s: the connection accepted is not the dialer's: %v", what, err)
	}
}

// A unix dialer reaches the socket in the directory its path led to
// when it was made, and nothing a symbolic link put on the path later
// leads to. A guest that holds the dialer and a dir grant of a directory
// on the path can make such links (file_symlink, with any target), and
// would otherwise open connections, as the daemon, to any socket of the
// host. Links that were there when the dialer's path was resolved are
// followed then, once, as a DNS name is resolved once.
func TestUnixDialerIsNotRedirectedByALinkMadeAfterIt(t *testing.T) {
	dir := t.TempDir()
	elsewhere := listenAt(t, filepath.Join(dir, "elsewhere", "db.sock")) // not granted
	other := listenAt(t, filepath.Join(dir, "other.sock"))               // not granted

	// A link there when the dialer is made is followed.
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(dir, "app")); err != nil {
		t.Fatal(err)
	}
	granted := listenAt(t, filepath.Join(dir, "real", "db.sock"))
	d := unixDialer(t, filepath.Join(dir, "app", "db.sock"))
	dialedBy(t, d, granted, "through a link made before the dialer")

	// The directory replaced by a link to another directory: the socket
	// is still looked for in the directory the path led to.
	if err := os.Rename(filepath.Join(dir, "real"), filepath.Join(dir, "old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "real")); err != nil {
		t.Fatal(err)
	}
	dialedBy(t, d, granted, "with its directory replaced by a link")
	socktest.Unreached(t, elsewhere, hangGuard)

	// The socket file replaced by a link to another socket.
	if err := os.Rename(filepath.Join(dir, "old", "db.sock"), filepath.Join(dir, "old", "db.sock.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other.Addr().String(), filepath.Join(dir, "old", "db.sock")); err != nil {
		t.Fatal(err)
	}
	if res, err := acceptDialed(t, d); err == nil {
		res.Close()
		t.Fatal("the dialer followed a link made after it to another socket")
	} else if !errors.Is(err, ELOOP) {
		t.Fatalf("accept with the socket file replaced by a link: %v, want ELOOP", err)
	}
	socktest.Unreached(t, other, hangGuard)
}

// A unix dialer reaches a server that binds its socket again (a restart),
// and one that removes its directory and makes it anew; a directory moved
// aside, and another made in its place, is not the one the dialer looks
// in: the one moved is.
func TestUnixDialerReachesAServerThatStartsAgain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "app")
	path := filepath.Join(dir, "db.sock")
	l := listenAt(t, path)
	d := unixDialer(t, path)
	dialedBy(t, d, l, "the server as it was")

	l.Close() // removes the socket file
	l = listenAt(t, path)
	dialedBy(t, d, l, "the server bound again")

	l.Close()
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := acceptDialed(t, d); !errors.Is(err, ENOENT) {
		t.Fatalf("accept with the directory removed: %v, want ENOENT", err)
	}
	l = listenAt(t, path) // makes the directory anew
	dialedBy(t, d, l, "the server in its directory made anew")

	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	decoy := listenAt(t, path)
	dialedBy(t, d, l, "with its directory moved aside and another made in its place")
	socktest.Unreached(t, decoy, hangGuard)
}

// A link that was on a unix dialer's path when its path was resolved is
// followed however much of the path existed then: a dialer to
// /var/run/app/db.sock (/var/run a link to /run) made before the server
// created its directory app reaches the server once it has. A link put
// in the place of the directory made since is not followed.
func TestUnixDialerFollowsLinksMadeBeforeItAboveADirectoryMadeAfter(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("run", filepath.Join(dir, "varrun")); err != nil {
		t.Fatal(err)
	}
	d := unixDialer(t, filepath.Join(dir, "varrun", "app", "db.sock"))
	l := listenAt(t, filepath.Join(dir, "run", "app", "db.sock"))
	dialedBy(t, d, l, "through a link made before the dialer, to a directory made after it")

	decoy := listenAt(t, filepath.Join(dir, "elsewhere", "db.sock"))
	if err := os.Rename(filepath.Join(dir, "run", "app"), filepath.Join(dir, "run", "app.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "run", "app")); err != nil {
		t.Fatal(err)
	}
	if res, err := acceptDialed(t, d); err == nil {
		res.Close()
		t.Fatal("the dialer followed a link put in the place of a directory made after it")
	} else if !errors.Is(err, ELOOP) {
		t.Fatalf("accept with a directory made since replaced by a link: %v, want ELOOP", err)
	}
	socktest.Unreached(t, decoy, hangGuard)
}

// A unix dialer holds its path's directories open until it is closed,
// and no longer.
func TestUnixDialerCloseClosesItsDirectories(t *testing.T) {
	dir := filepath.Join(RealPath(t.TempDir()), "app")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := OpenSocketPath(filepath.Join(dir, "db.sock"))
	if err != nil {
		t.Fatal(err)
	}
	d := NewUnixDialer(p, hangGuard, "test")
	if n := openFDsOf(t, dir, filepath.Dir(dir)); n != 2 {
		t.Fatalf("%d descriptors of the socket's directory and its parent are open, want 2", n)
	}
	d.Close()
	if n := openFDsOf(t, dir, filepath.Dir(dir)); n != 0 {
		t.Fatalf("%d descriptors of the socket's directory and its parent are open after the dialer closed, want none", n)
	}
	if _, err := d.Accept(); !errors.Is(err, EBADF) {
		t.Fatalf("accept after close: %v, want EBADF", err)
	}
}

// openFDsOf counts this process's descriptors that are open on one of
// paths.
func openFDsOf(t *testing.T, paths ...string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue // the directory's own descriptor, closed since
		}
		for _, p := range paths {
			if target == p {
				n++
			}
		}
	}
	return n
}
