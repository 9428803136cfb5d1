package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/sandboxd/sandboxd/schemas"
)

// stdinSink feeds a guest launched with stdinStream (launch -i): its
// writes go through a pipe whose reading end is the guest's stdin. A write
// returns once the guest has read it (io.Pipe's semantics), which paces
// the client's stream; it is a separate object from the Guest so that a
// write waiting for the guest never holds up the Guest's own calls (wait,
// kill). The pipe is closed when the client closes or releases the sink,
// when the guest ends (unblocking a write it will never read), and when a
// write's call ends unanswered (the client went away or gave up on it):
// the connection releases its objects only once every call in progress
// has returned, so a write left waiting for a guest that never reads would
// keep the client's guest running for good.
type stdinSink struct {
	pw      *io.PipeWriter
	once    sync.Once
	waiting atomic.Int32 // writes waiting for the guest to read them
}

func newStdinSink(ctx context.Context) (*stdinSink, io.Reader) {
	pr, pw := io.Pipe()
	s := &stdinSink{pw: pw}
	context.AfterFunc(ctx, func() { s.close(errors.New("the guest has ended")) })
	return s, pr
}

func (s *stdinSink) close(err error) {
	s.once.Do(func() {
		if err == nil {
			_ = s.pw.Close()
			return
		}
		_ = s.pw.CloseWithError(err)
	})
}

func (s *stdinSink) Write(ctx context.Context, call schemas.StdinSink_write) error {
	data, err := call.Args().Data()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		s.close(fmt.Errorf("the client stopped writing stdin: %w", context.Cause(ctx)))
	})
	defer stop()
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	if _, err := s.pw.Write(data); err != nil {
		if errors.Is(err, io.ErrClosedPipe) {
			return errors.New("stdin is closed: the guest has ended or no longer reads it")
		}
		return err
	}
	return nil
}

func (s *stdinSink) Close(ctx context.Context, call schemas.StdinSink_close) error {
	s.close(nil)
	return nil
}

// Shutdown closes stdin when the client lets go of the sink.
func (s *stdinSink) Shutdown() { s.close(nil) }
