package client

import (
	"context"
	"fmt"
	"io"
	"sync"

	capnp "capnproto.org/go/capnp/v3"
	"github.com/sandboxd/sandboxd/schemas"
)

// outputServer is the OutputSink a client hands the daemon: it writes
// each chunk of guest output to the matching local writer, in the order
// the guest wrote them. A failed local write fails the call, and the
// daemon stops sending (the guest's output is still kept for Logs).
type outputServer struct {
	stdout, stderr io.Writer

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
	w, name := o.stdout, "stdout"
	if a.Stream() == schemas.StdStream_stderr {
		w, name = o.stderr, "stderr"
	}
	if w == nil {
		return nil
	}
	if _, err := w.Write(data); err != nil {
		err = fmt.Errorf("writing guest %s: %w", name, err)
		o.mu.Lock()
		if o.firstErr == nil {
			o.firstErr = err
		}
		o.mu.Unlock()
		return err
	}
	return nil
}

// err returns the first local write error, if any.
func (o *outputServer) err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.firstErr
}
