package client

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/sandboxd/sandboxd/schemas"
)

// stdinChunk is the most one write to a guest's stdin carries.
const stdinChunk = 32 << 10

// stdinWindow is how much of stdin may be sent to the daemon ahead of the
// guest: a write returns once the guest has read it.
const stdinWindow = 4 * stdinChunk

// pumpStdin copies src to the guest's stdin sink until src ends (then it
// closes the sink: the guest reads end of file) or the sink fails (the
// guest ended). It owns sink. At most stdinWindow bytes are in writes the
// guest has not read (lim), so a guest that reads slowly slows src's
// reading, as a pipe would.
func pumpStdin(src io.Reader, sink schemas.StdinSink, lim *stdinLimiter) {
	defer sink.Release()
	sink.SetFlowLimiter(lim)
	ctx := context.Background()
	buf := make([]byte, stdinChunk)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			data := buf[:n]
			werr := sink.Write(ctx, func(p schemas.StdinSink_write_Params) error { return p.SetData(data) })
			if werr != nil {
				return
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return // the sink's release closes the guest's stdin
		}
	}
	if sink.WaitStreaming() != nil {
		return
	}
	f, rel := sink.Close(ctx, nil)
	defer rel()
	_, _ = f.Struct()
}

// stdinLimiter is a stdin sink's flow limiter (flowcontrol.FlowLimiter):
// a write past stdinWindow bytes unanswered waits until the guest has read
// enough. (go-capnp's default limits nothing: a guest that did not read
// had this process read all of src into its memory.)
type stdinLimiter struct {
	mu    sync.Mutex
	avail int64
	freed chan struct{} // closed, and replaced, when bytes are given back
	// waiting counts writes waiting for the guest (for tests).
	waiting atomic.Int32
}

func newStdinLimiter() *stdinLimiter {
	return &stdinLimiter{avail: stdinWindow, freed: make(chan struct{})}
}

func (l *stdinLimiter) StartMessage(ctx context.Context, size uint64) (gotResponse func(), err error) {
	n := min(int64(size), stdinWindow)
	for {
		l.mu.Lock()
		if l.avail >= n {
			l.avail -= n
			l.mu.Unlock()
			return func() { l.give(n) }, nil
		}
		freed := l.freed
		l.mu.Unlock()
		l.waiting.Add(1)
		select {
		case <-freed:
		case <-ctx.Done():
			err = ctx.Err()
		}
		l.waiting.Add(-1)
		if err != nil {
			return nil, err
		}
	}
}

func (l *stdinLimiter) give(n int64) {
	l.mu.Lock()
	l.avail += n
	close(l.freed)
	l.freed = make(chan struct{})
	l.mu.Unlock()
}

func (l *stdinLimiter) Release() {}
