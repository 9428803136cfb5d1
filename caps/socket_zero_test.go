package caps

import (
	"errors"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// A read of 0 bytes returns 0 at once, as read(2) of 0 bytes on a socket
// does; a receive of 0 bytes asks the host, as recv(2) does: EAGAIN with
// nothing queued.
func TestSocketZeroLengthReadAndRecv(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	f := os.NewFile(uintptr(fds[0]), "pair")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSocket(conn, "pair")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read of 0 bytes: %d, %v; want 0, nil", n, err)
	}
	if _, _, _, err := s.Recv([][]byte{{}}, 0, false); !errors.Is(err, EAGAIN) {
		t.Fatalf("Recv of 0 bytes with nothing queued: %v, want EAGAIN", err)
	}
}
