package server

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sync"
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

// stuckOutput is an output sink whose client answers nothing until
// answer is called (or the test ends); answer then waits until every call
// sent is answered and releases the sink.
func stuckOutput(t *testing.T) (o *outputSink, sink *stuckSink, answer func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sink = &stuckSink{release: make(chan struct{})}
	o = newOutputSink(ctx, schemas.OutputSink_ServerToClient(sink), nil)
	var once sync.Once
	answer = func() {
		once.Do(func() {
			close(sink.release)
			o.finish(context.Background())
		})
	}
	t.Cleanup(func() {
		answer()
		cancel()
	})
	return o, sink, answer
}

// returns fails the test, saying what it is about, unless f returns
// within HangGuard.
func returns(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		f()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(HangGuard):
		t.Fatal(what)
	}
}

// A guest's stdout and stderr share one output sink. While a stderr write
// (through a handle nobody revoked: a child's copy of it) waits for a
// stuck client, a stdout write whose handle is revoked, waiting for its
// turn behind it, stops waiting: Revoke of the guest's stdout waits for
// that write.
func TestARevokedWriteWaitingForItsTurnStops(t *testing.T) {
	o, _, _ := stuckOutput(t)
	go o.write(o.take(), streamStderr, make([]byte, 1<<20), 1, writeStops{}) // not revoked: waits for the client
	Eventually(t, HangGuard, "the stderr write waits for the client", func() bool { return o.lim.waiting.Load() > 0 })

	stop := make(chan struct{})
	close(stop) // the stdout handle has been revoked
	returns(t, "a write through a revoked handle still waits for its turn behind the other stream's write", func() {
		o.write(o.take(), streamStdout, []byte("x"), 2, writeStops{revoked: stop})
	})
}

// A write stopped by its handle's revocation while it waited for the
// client fails the stream: nothing more of it, or of later writes, is
// sent to the client (go-capnp asks the flow limiter only after a call is
// sent, and ignores its error, so the rest would go with no window).
func TestAStoppedWriteFailsTheStream(t *testing.T) {
	o, sink, answer := stuckOutput(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		o.write(o.take(), streamStdout, make([]byte, 1<<20), 1, writeStops{revoked: stop}) // 16 calls of 64 KiB
		close(done)
	}()
	Eventually(t, HangGuard, "the write waits for the client", func() bool { return o.lim.waiting.Load() > 0 })
	close(stop) // its handle is revoked
	returns(t, "a write whose handle was revoked still waits for the client", func() { <-done })
	o.write(o.take(), streamStderr, []byte("later"), 2, writeStops{})
	answer() // every call sent is counted
	if n := sink.calls.Load(); n > 6 {
		t.Errorf("the client was sent %d calls; want no more than the window's (4) and the one the limiter saw", n)
	}
	if !o.failed {
		t.Error("after a write stopped by its handle's revocation the stream has not failed")
	}
}

// A spawned child writes to the launched guest's stream through a copy
// of its handle; killed (its parent closed its process handle) while its
// write waits for a stuck client, for the window or for its turn, the
// write stops waiting: the child has no connection or record of its own
// whose end would stop it.
func TestAWriteWhoseGuestIsKilledStopsWaiting(t *testing.T) {
	o, _, _ := stuckOutput(t)
	killed := make(chan struct{})
	done := make(chan struct{})
	go func() {
		o.write(o.take(), streamStdout, make([]byte, 1<<20), 1, writeStops{ended: killed}) // waits for the window
		close(done)
	}()
	Eventually(t, HangGuard, "the write waits for the client", func() bool { return o.lim.waiting.Load() > 0 })
	behind := make(chan struct{})
	go func() {
		o.write(o.take(), streamStderr, []byte("x"), 2, writeStops{ended: killed}) // waits for its turn
		close(behind)
	}()
	close(killed)
	returns(t, "a write whose guest was killed still waits for the client", func() { <-done })
	returns(t, "a write whose guest was killed still waits for its turn", func() { <-behind })
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
	o, _, _ := stuckOutput(t)
	stdout := caps.NewStdout("stdout", &streamWriter{log: newOutputLog(4 << 20), stream: streamStdout, sink: o})
	go func() { _, _ = stdout.WriteUntil(make([]byte, 1<<20), make(chan struct{}), nil) }() // the parent's handle: not revoked
	Eventually(t, HangGuard, "the parent's write waits for the client", func() bool { return o.lim.waiting.Load() > 0 })

	stop := make(chan struct{})
	close(stop) // the child's copy has been revoked
	returns(t, "a write through a revoked handle still waits behind another holder's write to the same stream", func() {
		_, _ = stdout.WriteUntil([]byte("x"), stop, nil)
	})
}

// recordingSink is a client's OutputSink that keeps what it is sent, in
// the order the calls arrive, with their times.
type recordingSink struct {
	mu    sync.Mutex
	data  []byte
	times []int64
}

func (s *recordingSink) Write(ctx context.Context, call schemas.OutputSink_write) error {
	d, err := call.Args().Data()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.data = append(s.data, d...)
	s.times = append(s.times, call.Args().Time())
	s.mu.Unlock()
	return nil
}

// Several holders of one guest stdout (the guest's handle and a spawned
// child's copy, or a dup) write through one caps.Stdio. The kept log
// (sandboxd logs) and the attached client must get the stream's bytes in
// the same order, and the client must not see the stream's time go back:
// the client writes "in the order the guest wrote them". Here four write
// at once, 50 rounds.
func TestOneStreamsHoldersReachTheLogAndTheClientInOneOrder(t *testing.T) {
	concurrentHolders(t, false)
}

// ... and the times the client is sent for one stream never go back.
func TestOneStreamsTimesNeverGoBackForTheClient(t *testing.T) {
	concurrentHolders(t, true)
}

func concurrentHolders(t *testing.T, checkTimes bool) {
	for round := 0; round < 50; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		sink := &recordingSink{}
		o := newOutputSink(ctx, schemas.OutputSink_ServerToClient(sink), nil)
		log := newOutputLog(64 << 20)
		stdout := caps.NewStdout("stdout", &streamWriter{log: log, stream: streamStdout, sink: o})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stop := make(chan struct{}) // never revoked
				for i := 0; i < 200; i++ {
					_, _ = stdout.WriteUntil([]byte(fmt.Sprintf("w%d-%03d\n", w, i)), stop, nil)
				}
			}()
		}
		wg.Wait()
		o.finish(context.Background())
		cancel()
		var kept []byte
		chunks, _, _, _, _ := log.readFrom(0, math.MaxUint64)
		for _, c := range chunks {
			kept = append(kept, c.data...)
		}
		if !checkTimes && !bytes.Equal(kept, sink.data) {
			i := 0
			for i < len(kept) && i < len(sink.data) && kept[i] == sink.data[i] {
				i++
			}
			lo := max(i-16, 0)
			t.Fatalf("round %d: the log and the client got stdout in different orders from byte %d:\nlog:    %q\nclient: %q",
				round, i, kept[lo:min(i+24, len(kept))], sink.data[lo:min(i+24, len(sink.data))])
		}
		if checkTimes {
			for i := 1; i < len(sink.times); i++ {
				if sink.times[i] < sink.times[i-1] {
					t.Fatalf("round %d: the client's stdout went back in time: call %d at %d after call %d at %d",
						round, i, sink.times[i], i-1, sink.times[i-1])
				}
			}
		}
	}
}
