package caps

import (
	"errors"
	"io"
	"net"
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
