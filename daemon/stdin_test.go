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
	m := compile(t, s, guests+"cat.wat")
	pr, pw := io.Pipe() // nothing is ever written: the guest blocks in fd_read
	defer pw.Close()
	reading := make(chan struct{})
	var once sync.Once
	stdin := readerFunc(func(b []byte) (int, error) {
		once.Do(func() { close(reading) })
		return pr.Read(b)
	})
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Stdin: stdin})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Kill("test over")
	select {
	case <-reading: // the guest's fd_read holds fd 0 acquired
	case <-g.Done():
		t.Fatalf("guest exited before it read stdin: %+v", g.Wait())
	}
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
