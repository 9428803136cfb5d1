package client

import (
	"bytes"
	"context"
	"io"
	"sync"
	"time"

	capnp "capnproto.org/go/capnp/v3"
	"github.com/sandboxd/sandboxd/schemas"
)

// outputServer is the OutputSink a client hands the daemon: it writes
// each chunk of guest output to the matching local writer, in the order
// the guest wrote them. A failed local write fails the call, and the
// daemon stops sending (the guest's output is still kept for Logs).
type outputServer struct {
	stdout, stderr io.Writer
	// stamp begins each line with the time it was written (LogsOptions.Timestamps).
	stamp   bool
	midLine [2]bool // a stream's last write did not end its line

	mu       sync.Mutex
	firstErr error
}

func newOutputServer(stdout, stderr io.Writer) *outputServer {
	return &outputServer{stdout: stdout, stderr: stderr}
}

func (o *outputServer) client() schemas.OutputSink {
	srv := schemas.OutputSink_NewServer(o)
	// go-capnp sets NewArena on the first local call, without a lock: set
	// it here, so that concurrent local calls (Wait and Kill both flush)
	// do not race.
	srv.NewArena = func() capnp.Arena { return capnp.SingleSegment(nil) }
	return schemas.OutputSink(capnp.NewClient(srv))
}

func (o *outputServer) Write(ctx context.Context, call schemas.OutputSink_write) error {
	a := call.Args()
	data, err := a.Data()
	if err != nil {
		return err
	}
	if len(data) == 0 { // a flush (Guest.flushOutput), or nothing to write
		return nil
	}
	w, name, st := o.stdout, "stdout", 0
	if a.Stream() == schemas.StdStream_stderr {
		w, name, st = o.stderr, "stderr", 1
	}
	if w == nil {
		return nil
	}
	if o.stamp {
		data = o.stamped(st, data, a.Time())
	}
	if _, err := w.Write(data); err != nil {
		err = &OutputError{Stream: name, Err: err}
		o.mu.Lock()
		if o.firstErr == nil {
			o.firstErr = err
		}
		o.mu.Unlock()
		return err
	}
	return nil
}

// OutputError is a failure to write a guest's output to a local writer
// (LaunchRequest.Stdout or Stderr, LogsOptions'). The guest is not told
// and runs on; the daemon stops sending, and keeps the output for
// Guest.Logs. Wait and Kill return it beside the guest's exit status.
type OutputError struct {
	Stream string // "stdout" or "stderr"
	Err    error  // the writer's
}

func (e *OutputError) Error() string { return "writing guest " + e.Stream + ": " + e.Err.Error() }
func (e *OutputError) Unwrap() error { return e.Err }

// TimestampFormat is how LogsOptions.Timestamps writes a line's time: RFC
// 3339 in UTC with nanoseconds, always nine digits, so that lines align.
const TimestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// stamped returns data with the time at (Unix nanoseconds; 0: now, from a
// daemon that sends none) before each line that begins in it. Calls on
// one sink come one at a time, in order.
func (o *outputServer) stamped(st int, data []byte, at int64) []byte {
	t := time.Now()
	if at != 0 {
		t = time.Unix(0, at)
	}
	prefix := t.UTC().Format(TimestampFormat) + " "
	var b []byte
	for len(data) > 0 {
		if !o.midLine[st] {
			b = append(b, prefix...)
		}
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line = data[:i+1]
		}
		b = append(b, line...)
		data = data[len(line):]
		o.midLine[st] = line[len(line)-1] != '\n'
	}
	return b
}

// err returns the first local write error, if any.
func (o *outputServer) err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.firstErr
}
