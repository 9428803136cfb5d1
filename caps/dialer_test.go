package caps

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
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
	d, err := NewDialer("unix", []string{path}, hangGuard, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
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
}

// A unix dialer reaches the socket its path named when it was made, and
// nothing a symbolic link put in the path's place later leads to. A
// guest that holds the dialer and a dir grant of a directory on the path
// can make such links (file_symlink, with any target), and would
// otherwise open connections, as the daemon, to any socket of the host.
// Links that were there when the dialer was made are followed then, once,
// as a DNS name is resolved once.
func TestUnixDialerIsNotRedirectedByALinkMadeAfterIt(t *testing.T) {
	dir := t.TempDir()
	listen := func(path string) net.Listener {
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
	listen(filepath.Join(dir, "elsewhere", "db.sock")) // not granted
	other := listen(filepath.Join(dir, "other.sock"))  // not granted

	// A link there when the dialer is made is followed.
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(dir, "app")); err != nil {
		t.Fatal(err)
	}
	granted := listen(filepath.Join(dir, "real", "db.sock"))
	d, err := NewDialer("unix", []string{filepath.Join(dir, "app", "db.sock")}, hangGuard, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res, err := acceptDialed(t, d)
	if err != nil {
		t.Fatalf("accept through a link made before the dialer: %v", err)
	}
	res.Close()
	if c, err := granted.Accept(); err != nil {
		t.Fatal(err)
	} else {
		c.Close()
	}

	// The socket file replaced by a link to another socket.
	if err := os.Remove(filepath.Join(dir, "real", "db.sock")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other.Addr().String(), filepath.Join(dir, "real", "db.sock")); err != nil {
		t.Fatal(err)
	}
	if res, err := acceptDialed(t, d); err == nil {
		res.Close()
		t.Fatal("the dialer followed a link made after it to another socket")
	} else if !errors.Is(err, ELOOP) {
		t.Fatalf("accept with the socket file replaced by a link: %v, want ELOOP", err)
	}

	// A directory of the path replaced by a link to another directory.
	if err := os.Rename(filepath.Join(dir, "real"), filepath.Join(dir, "old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(dir, "real")); err != nil {
		t.Fatal(err)
	}
	if res, err := acceptDialed(t, d); err == nil {
		res.Close()
		t.Fatal("the dialer followed a link made after it to another directory")
	} else if !errors.Is(err, ELOOP) {
		t.Fatalf("accept with a directory replaced by a link: %v, want ELOOP", err)
	}
}

// A link that was on a unix dialer's path when the dialer was made is
// followed however much of the path existed then: a dialer to
// /var/run/app/db.sock (/var/run a link to /run) made before the server
// created its directory app reaches the server once it has.
func TestUnixDialerFollowsLinksMadeBeforeItAboveADirectoryMadeAfter(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("run", filepath.Join(dir, "varrun")); err != nil {
		t.Fatal(err)
	}
	d, err := NewDialer("unix", []string{filepath.Join(dir, "varrun", "app", "db.sock")}, hangGuard, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	if err := os.Mkdir(filepath.Join(dir, "run", "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(dir, "run", "app", "db.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	res, err := acceptDialed(t, d)
	if err != nil {
		t.Fatalf("accept through a link made before the dialer, to a directory made after it: %v", err)
	}
	res.Close()
}
