package daemon

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
)

// stdinGuard bounds the wait for a revocation that a read of stdin holds
// up: it returns within milliseconds, or never.
const stdinGuard = 30 * time.Second

// Revoking a guest's stdin while the guest waits in fd_read for input
// that never comes ends the read with ENOTCAPABLE, and the revocation
// returns, as for any other blocked call (ABI.md, cap_revoke). The read
// used to hold the revocation until the client wrote or the guest ended.
func TestRevokingStdinEndsAReadWaitingOnIt(t *testing.T) {
	s := newSupervisor(t)
	g := catReadingStdin(t, s) // its fd_read holds fd 0 acquired
	defer g.Kill("test over")
	id := g.Handles()[0].Cap.ID()
	revoked := make(chan error, 1)
	go func() {
		_, err := s.Revoke(id, "test")
		revoked <- err
	}()
	select {
	case err := <-revoked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(stdinGuard):
		g.Kill("test over")
		<-revoked
		t.Fatalf("Revoke of stdin did not return within %v while the guest's read of it waited", stdinGuard)
	}
	if st := waitExit(t, g, HangGuard); st.Code != uint32(caps.ENOTCAPABLE) {
		t.Fatalf("status %+v, want exit %d (cat exits with fd_read's ENOTCAPABLE)", st, caps.ENOTCAPABLE)
	}
}

// catReadingStdin launches cat.wat with a stdin nothing is ever written
// to, and returns once the guest has begun reading it: the daemon's
// stdin pump first reads the source when the guest first reads fd 0.
func catReadingStdin(t *testing.T, s *Supervisor) *Guest {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	reading := make(chan struct{})
	var once sync.Once
	stdin := readerFunc(func(b []byte) (int, error) {
		once.Do(func() { close(reading) })
		return pr.Read(b)
	})
	g, err := s.Launch(context.Background(), LaunchSpec{Module: compile(t, s, guests+"cat.wat"), Stdin: stdin})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-reading:
	case <-g.Done():
		t.Fatalf("guest exited before it read stdin: %+v", g.Wait())
	}
	return g
}
