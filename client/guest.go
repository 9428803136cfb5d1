package client

import (
	"context"
	"io"
	"sync"
	"time"

	"capnproto.org/go/capnp/v3"

	"github.com/sandboxd/sandboxd/schemas"
)

// Guest is a capability on one guest. It is safe for concurrent use;
// Release must come after the calls in progress have returned.
type Guest struct {
	id string
	g  schemas.Guest

	// For a guest this client launched without Detach: the exit status,
	// asked for together with the launch.
	exit       *schemas.Guest_wait_Results_Future
	exitRel    capnp.ReleaseFunc
	exitCancel context.CancelFunc
	// exitMu is held while the exit status is read, and while Release
	// marks it released (closes exitGone) and cancels it, so that Wait on
	// another goroutine neither reads what the release frees nor
	// mistakes Release's cancellation for a failed call. exitGone also
	// wakes a Wait in progress.
	exitMu   sync.Mutex
	exitGone chan struct{}
	// For a guest launched with Stdout or Stderr: the local sink the
	// daemon writes the output to.
	out  *outputServer
	sink schemas.OutputSink
	// c is the Client the guest is held through: Close releases sink if
	// Release has not, and waits for the releases Release and the calls
	// given up when their context ended leave running (Client.await).
	c *Client
	// flushOnce starts the one flush of the output (Wait and Kill on two
	// goroutines both wait for it: go-capnp's streaming calls and
	// WaitStreaming on one client may not overlap); flushed is closed
	// when it is done, flushErr what it found.
	flushOnce sync.Once
	flushed   chan struct{}
	flushErr  error
	// stdin limits the writes of LaunchRequest.StdinStream in flight; nil
	// without one.
	stdin *stdinLimiter

	releaseOnce sync.Once
}

// afterExitCancel is called by Release right after it cancels the
// pending wait; tests widen that window with it.
var afterExitCancel = func() {}

// ID is the guest's id, as `sandboxd ps` shows it.
func (g *Guest) ID() string { return g.id }

// Release gives up this handle. A guest launched through it without
// Detach is killed if it is still running. Release does not wait for the
// daemon: it returns at once even if the daemon has stopped reading the
// connection.
func (g *Guest) Release() {
	g.releaseOnce.Do(func() {
		if g.exitRel != nil {
			// The handle is marked released before the pending call is
			// cancelled, under the lock Wait reads the answer with: a
			// Wait that wakes to the cancelled answer then reports the
			// release, never the cancellation.
			g.exitMu.Lock()
			close(g.exitGone)
			g.exitCancel()
			afterExitCancel()
			g.exitMu.Unlock()
			// The release of a pending call waits for its answer, and
			// go-capnp answers a cancelled call only once the Finish
			// that cancels it is written: a connection that takes no
			// writes (the daemon stopped reading it, its buffers full)
			// would hold Release until it ends. Nothing reads the
			// answer once exitGone is closed, so it is released in the
			// background; the connection's end answers every call.
			g.c.releaseLater(g.exitRel)
		}
		g.sink.Release()
		g.c.mu.Lock()
		delete(g.c.withOutput, g)
		g.c.mu.Unlock()
		g.g.Release()
	})
}

// Info returns the guest's current description.
func (g *Guest) Info(ctx context.Context) (GuestInfo, error) {
	f, rel := g.g.Info(ctx, nil)
	if err := g.c.await(ctx, "info "+g.id, answer, f.Future, rel); err != nil {
		return GuestInfo{}, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return GuestInfo{}, callError("info "+g.id, err)
	}
	i, err := r.Info()
	if err != nil {
		return GuestInfo{}, callError("info "+g.id, err)
	}
	return guestInfoFrom(i), nil
}

// Wait blocks until the guest has exited and returns how it ended. For a
// guest launched with Stdout or Stderr, everything it wrote has been
// written to them when Wait returns; if one of them failed, Wait returns
// the exit status with an *OutputError. If ctx ends first, even while a
// writer blocks, Wait returns an error wrapping ctx's.
func (g *Guest) Wait(ctx context.Context) (ExitStatus, error) {
	if g.exit == nil {
		f, rel := g.g.Wait(ctx, nil)
		if err := g.c.await(ctx, "wait "+g.id, "the guest to exit", f.Future, rel); err != nil {
			return ExitStatus{}, err
		}
		defer rel()
		r, err := f.Struct()
		return exitStatusResult("wait "+g.id, r, err)
	}
	select {
	case <-g.exit.Done():
	case <-g.exitGone:
	case <-ctx.Done():
		return ExitStatus{}, gaveUp(ctx, "wait "+g.id, "the guest to exit")
	}
	g.exitMu.Lock()
	if g.exitIsGone() {
		g.exitMu.Unlock()
		return ExitStatus{}, &Error{Op: "wait " + g.id, Msg: "the guest handle was released"}
	}
	r, err := g.exit.Struct()
	st, err := exitStatusResult("wait "+g.id, r, err)
	g.exitMu.Unlock()
	if err == nil {
		err = g.flushOutput(ctx, "wait "+g.id)
	}
	return st, err
}

// exitIsGone reports whether Release has given up the exit status.
func (g *Guest) exitIsGone() bool {
	select {
	case <-g.exitGone:
		return true
	default:
		return false
	}
}

// flushOutput returns once the local sink has written every chunk the
// daemon sent before the exit status, or when ctx ends: the caller's
// writers may block for ever, and the flush then goes on without it.
func (g *Guest) flushOutput(ctx context.Context, op string) error {
	if g.out == nil {
		return nil
	}
	g.flushOnce.Do(func() {
		g.flushed = make(chan struct{})
		go func() {
			g.flushErr = g.flush()
			close(g.flushed)
		}()
	})
	beforeFlushWait()
	select {
	case <-g.flushed:
		return g.flushErr
	case <-ctx.Done():
		return gaveUp(ctx, op, "the guest's output to be written to Stdout and Stderr")
	}
}

// beforeFlushWait runs before Wait and Kill wait for the output's flush:
// tests end a context there.
var beforeFlushWait = func() {}

// flush writes what the local sink holds. The daemon sends all of a
// guest's output before its exit status on the one connection, and the
// sink handles calls in the order they arrive, so a call queued behind
// them completes last.
func (g *Guest) flush() error {
	err := g.sink.Write(context.Background(), nil)
	if err == nil {
		err = g.sink.WaitStreaming()
	}
	// A local write's failure fails the calls after it: it is reported
	// as itself, an *OutputError.
	if oerr := g.out.err(); oerr != nil {
		return oerr
	}
	return err
}

// Kill ends the guest (reason is recorded, "" means "killed") and returns
// once it has exited.
func (g *Guest) Kill(ctx context.Context, reason string) (ExitStatus, error) {
	f, rel := g.g.Kill(ctx, func(p schemas.Guest_kill_Params) error { return p.SetReason(reason) })
	if err := g.c.await(ctx, "kill "+g.id, "the guest to exit", f.Future, rel); err != nil {
		return ExitStatus{}, err
	}
	defer rel()
	r, err := f.Struct()
	st, err := exitStatusResult("kill "+g.id, r, err)
	if err == nil {
		err = g.flushOutput(ctx, "kill "+g.id)
	}
	return st, err
}

func exitStatusResult[R interface {
	Status() (schemas.ExitStatus, error)
}](op string, r R, err error) (ExitStatus, error) {
	if err != nil {
		return ExitStatus{}, callError(op, err)
	}
	s, err := r.Status()
	if err != nil {
		return ExitStatus{}, callError(op, err)
	}
	return exitStatusFrom(s), nil
}

// Logs writes the output the daemon kept for the guest to stdout and
// stderr (either may be nil to discard that stream), and with follow
// goes on until the guest exits. It returns how many bytes had already
// been discarded from the front of the kept output.
func (g *Guest) Logs(ctx context.Context, stdout, stderr io.Writer, follow bool) (dropped uint64, err error) {
	return g.LogsWith(ctx, LogsOptions{Stdout: stdout, Stderr: stderr, Follow: follow})
}

// LogsOptions selects what Guest.LogsWith writes.
type LogsOptions struct {
	// Stdout and Stderr receive the guest's two streams, each kept apart;
	// a nil one is left out (the daemon does not send it, and Tail counts
	// the other's lines only).
	Stdout, Stderr io.Writer
	// Follow goes on writing what the guest writes until it exits.
	Follow bool
	// Tail, when above 0, writes only the last Tail lines of the kept
	// output (a last line without a newline counts); NewOnly writes none
	// of it, for Follow to write only what comes next.
	Tail    int
	NewOnly bool
	// Since, when not zero, writes only output written at or after it.
	// The daemon keeps a time per piece of output (writes less than 1 ms
	// apart share one), so the cut is by piece, not by line.
	Since time.Time
	// Timestamps begins each line with the time it was written, in UTC,
	// RFC 3339 with nanoseconds, and a space:
	// "2026-12-05T08:00:00.123456789Z hello".
	Timestamps bool
}

// LogsWith writes the output the daemon kept for the guest, as o selects.
// It returns how many bytes of what o asks for had already been discarded
// from the front of the kept output (serve --log-bytes).
func (g *Guest) LogsWith(ctx context.Context, o LogsOptions) (dropped uint64, err error) {
	out := newOutputServer(o.Stdout, o.Stderr)
	out.stamp = o.Timestamps
	sink := out.client()
	defer sink.Release()
	f, rel := g.g.Logs(ctx, func(p schemas.Guest_logs_Params) error {
		p.SetFollow(o.Follow)
		switch {
		case o.NewOnly:
			p.SetTail(0)
		case o.Tail > 0:
			p.SetTail(int64(o.Tail))
		}
		if !o.Since.IsZero() {
			p.SetSince(o.Since.UnixNano())
		}
		p.SetSkipStdout(o.Stdout == nil)
		p.SetSkipStderr(o.Stderr == nil)
		return p.SetSink(sink.AddRef())
	})
	if err := g.c.await(ctx, "logs "+g.id, answer, f.Future, rel); err != nil {
		return 0, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return 0, callError("logs "+g.id, err)
	}
	return r.Dropped(), out.err()
}

// Caps returns the guest's handle table.
func (g *Guest) Caps(ctx context.Context) ([]Handle, error) {
	f, rel := g.g.Caps(ctx, nil)
	if err := g.c.await(ctx, "caps "+g.id, answer, f.Future, rel); err != nil {
		return nil, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return nil, callError("caps "+g.id, err)
	}
	l, err := r.Handles()
	if err != nil {
		return nil, callError("caps "+g.id, err)
	}
	out := make([]Handle, l.Len())
	for i := range out {
		out[i] = handleFrom(l.At(i))
	}
	return out, nil
}

// Handle returns the capability behind the guest's handle fd. Revoking it
// cuts the guest (and whoever it delegated to) off.
func (g *Guest) Handle(ctx context.Context, fd uint32) (*Cap, error) {
	f, rel := g.g.Handle(ctx, func(p schemas.Guest_handle_Params) error { p.SetFd(fd); return nil })
	if err := g.c.await(ctx, "handle "+g.id, answer, f.Future, rel); err != nil {
		return nil, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return nil, callError("handle "+g.id, err)
	}
	info, err := r.Info()
	if err != nil {
		return nil, callError("handle "+g.id, err)
	}
	return newCap(g.c, r.Cap().AddRef(), capInfoFrom(info), ""), nil
}

// Grant opens a new resource, in the --grant grammar (or cap:ID for a
// capability this principal may use), and sends it to the running guest
// on its supervisor channel; the guest receives it as a new handle with
// sock_recv. It returns the new capability, held by the guest.
func (g *Guest) Grant(ctx context.Context, grant string) (CapInfo, error) {
	f, rel := g.g.Grant(ctx, func(p schemas.Guest_grant_Params) error { return p.SetGrant(grant) })
	if err := g.c.await(ctx, "grant "+grant+" to "+g.id, answer, f.Future, rel); err != nil {
		return CapInfo{}, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return CapInfo{}, callError("grant "+grant+" to "+g.id, err)
	}
	info, err := r.Info()
	if err != nil {
		return CapInfo{}, callError("grant "+grant+" to "+g.id, err)
	}
	return capInfoFrom(info), nil
}
