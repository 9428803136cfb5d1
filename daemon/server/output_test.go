package server

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/schemas"
)

// stuckSink is a client's OutputSink whose writes are not answered until
// release is closed; it counts the writes it was sent.
type stuckSink struct {
	release chan struct{}
	calls   atomic.Int32
}

func (s *stuckSink) Write(ctx context.Context, call schemas.OutputSink_write) error {
	s.calls.Add(1)
	select {
	case <-s.release:
	case <-ctx.Done():
	}
	return nil
}

// waitFor polls cond until it holds, or fails the test at HangGuard.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(HangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", HangGuard, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A guest's stdout and stderr share one output sink. While a stderr write
// (through a handle nobody revoked: a child's copy of it) waits for a
// stuck client, a stdout write whose handle is revoked, waiting for its
// turn behind it, stops waiting: Revoke of the guest's stdout waits for
// that write.
func TestARevokedWriteWaitingForItsTurnStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := &stuckSink{release: make(chan struct{})}
	o := newOutputSink(ctx, schemas.OutputSink_ServerToClient(sink))
	defer o.finish() // after the client answers (below): releases the sink
	defer close(sink.release)
	go o.write(streamStderr, make([]byte, 1<<20), 1, nil) // not revoked: waits for the client
	waitFor(t, "the stderr write waits for the client", func() bool { return o.lim.waiting.Load() > 0 })

	stop := make(chan struct{})
	close(stop) // the stdout handle has been revoked
	done := make(chan struct{})
	go func() {
		o.write(streamStdout, []byte("x"), 2, stop)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(HangGuard):
		t.Fatal("a write through a revoked handle still waits for its turn behind the other stream's write")
	}
}

// A write stopped by its handle's revocation while it waited for the
// client fails the stream: nothing more of it, or of later writes, is
// sent to the client (go-capnp asks the flow limiter only after a call is
// sent, and ignores its error, so the rest would go with no window).
func TestAStoppedWriteFailsTheStream(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := &stuckSink{release: make(chan struct{})}
	o := newOutputSink(ctx, schemas.OutputSink_ServerToClient(sink))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		o.write(streamStdout, make([]byte, 1<<20), 1, stop) // 16 calls of 64 KiB
		close(done)
	}()
	waitFor(t, "the write waits for the client", func() bool { return o.lim.waiting.Load() > 0 })
	close(stop) // its handle is revoked
	<-done
	o.write(streamStderr, []byte("later"), 2, nil)
	close(sink.release)
	o.finish()
	if n := sink.calls.Load(); n > 6 {
		t.Errorf("the client was sent %d calls; want no more than the window's (4) and the one the limiter saw", n)
	}
	if !o.failed {
		t.Error("after a write stopped by its handle's revocation the stream has not failed")
	}
}

// A guest's stdout handle and a spawned child's copy of it (proc_spawn
// derives it, edge spawn; a dup likewise) write through one caps.Stdio.
// While a write through one of them, not revoked, waits for a stuck
// client, a write through the other, which the operator has revoked
// (revoking a copy leaves the handle it came from alone), must stop
// waiting, as it does behind the other stream's write
// (TestARevokedWriteWaitingForItsTurnStops): Revoke waits for it. (A
// lock of the stream's own, taken before the sink's turn, would keep it
// waiting.)
func TestARevokedWriteBehindAnotherHolderOfTheSameStreamStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := &stuckSink{release: make(chan struct{})}
	o := newOutputSink(ctx, schemas.OutputSink_ServerToClient(sink))
	defer o.finish() // after the client answers (below): releases the sink
	defer close(sink.release)
	stdout := caps.NewStdout("stdout", &streamWriter{log: newOutputLog(4 << 20), stream: streamStdout, sink: o})
	go func() { _, _ = stdout.WriteUntil(make([]byte, 1<<20), make(chan struct{})) }() // the parent's handle: not revoked
	waitFor(t, "the parent's write waits for the client", func() bool { return o.lim.waiting.Load() > 0 })

	stop := make(chan struct{})
	close(stop) // the child's copy has been revoked
	done := make(chan struct{})
	go func() {
		_, _ = stdout.WriteUntil([]byte("x"), stop)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(HangGuard):
		t.Fatal("a write through a revoked handle still waits behind another holder's write to the same stream")
	}
}
