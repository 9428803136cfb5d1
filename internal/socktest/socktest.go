// Package socktest holds what the tests of unix socket grants share:
// stale socket files to find, and listeners to prove nothing reached.
package socktest

import (
	"io"
	"net"
	"testing"
	"time"
)

// LeaveStale leaves a socket file at path that nothing listens on, as a
// server that died leaves it.
func LeaveStale(t testing.TB, path string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
}

// Unreached reports an error if anything connected to l before now: a
// connection the test makes now must be the first l accepts. guard
// bounds the read of it, which only a hang could reach.
func Unreached(t testing.TB, l net.Listener, guard time.Duration) {
	t.Helper()
	c, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Write([]byte("the test"))
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	server.SetReadDeadline(time.Now().Add(guard))
	if got, err := io.ReadAll(server); string(got) != "the test" {
		t.Errorf("%s was connected to before the test's own connection (which read %q, %v)", l.Addr(), got, err)
	}
}
