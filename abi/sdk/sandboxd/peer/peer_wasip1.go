//go:build wasip1

package peer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	capnp "capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/rpc"
	"capnproto.org/go/capnp/v3/rpc/transport"
	"github.com/sandboxd/sandboxd/abi/argdata"
	"github.com/sandboxd/sandboxd/abi/sdk/sandboxd"
	"github.com/sandboxd/sandboxd/schemas/guest"
)

// Conn is the guest's Cap'n Proto connection to the daemon.
type Conn struct {
	stream *sandboxd.Conn
	rpc    *rpc.Conn
	sup    guest.GuestSupervisor
}

var (
	// pending are notices (grants, delegations) that arrived on the
	// supervisor channel ahead of the connection's.
	pendingMu sync.Mutex
	pending   []Notice
)

// Notice is one datagram of the supervisor channel: a handle granted or
// delegated to the guest while it runs (docs/API.md).
type Notice = sandboxd.Notice

// Pending returns, and forgets, the notices Connect read past on the
// supervisor channel while waiting for its own. One whose handle this
// guest could not take has HandleLost set (and no FD): RecvNotice's
// *sandboxd.HandleLostError, which Connect does not return for a notice
// that is not its answer.
func Pending() []Notice {
	pendingMu.Lock()
	defer pendingMu.Unlock()
	out := pending
	pending = nil
	return out
}

// rpcRequest is what asks the daemon for a connection.
var rpcRequest = argdata.StringMap(map[string]argdata.Value{"request": argdata.String("rpc")}).Encode()

// Connect asks the daemon for this guest's Cap'n Proto connection and
// returns it. A guest has at most one open at a time. When it fails, the
// handle the daemon sent, if any, is closed. When ctx ends before the
// daemon's answer comes, Connect returns ctx.Err() (wrapped) and the
// answer, when it comes, is dropped with its handle closed
// (sandboxd.Conn.DiscardAnswer): neither RecvNotice nor the next Connect
// returns it. When ctx ends while the request still waits to be sent (the
// daemon holds as many requests as the channel takes, until the guest
// reads their answers), Connect returns ctx.Err() (wrapped) having asked
// nothing, and no answer is owed. Connect reads the supervisor channel while it waits, so the
// guest must not read it meanwhile (Pending has what Connect read past).
func Connect(ctx context.Context) (*Conn, error) {
	sc, err := sandboxd.Supervisor()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("peer: not asking the daemon for a connection: %w", err)
	}
	fd, err := askConnection(ctx, sc)
	if err != nil {
		return nil, err
	}
	stream, err := sandboxd.NewConn(fd)
	if err != nil {
		_ = sandboxd.Close(fd) // no Conn owns it, and nothing else knows of it
		return nil, fmt.Errorf("peer: setting up the connection the daemon sent (fd %d): %w", fd, err)
	}
	conn := rpc.NewConn(transport.NewStream(stream), nil)
	return &Conn{stream: stream, rpc: conn, sup: guest.GuestSupervisor(conn.Bootstrap(ctx))}, nil
}

// askConnection sends the request for a connection on sc and waits for
// the daemon's answer, until ctx ends. The send itself waits while the
// daemon holds as many requests as the channel takes (they wait for the
// guest to read their answers); if ctx ends then, nothing was asked and
// no answer is owed. If ctx ends after the send, the answer still to come
// is left for RecvNotice to drop.
func askConnection(ctx context.Context, sc *sandboxd.Conn) (uint32, error) {
	stop := interruptOnDone(ctx, sc.File())
	if _, err := sc.Send(rpcRequest); err != nil {
		stop()
		if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
			return 0, fmt.Errorf("peer: not asking the daemon for a connection: the supervisor channel had no room for the request (read the notices waiting on it): %w", ctx.Err())
		}
		return 0, fmt.Errorf("peer: asking the daemon for a connection: %w", err)
	}
	fd, err := readAnswer(sc)
	stop()
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		sc.DiscardAnswer() // the wait ended before the answer was read
		if ctx.Err() != nil {
			return 0, fmt.Errorf("peer: waiting for the daemon's answer to a connection request: %w", ctx.Err())
		}
	}
	return fd, err
}

// interruptOnDone makes a read or a write waiting on f (or starting) fail
// with os.ErrDeadlineExceeded once ctx ends, until the function it
// returns is called, which leaves f with no deadline.
func interruptOnDone(ctx context.Context, f *os.File) (stop func()) {
	fired := make(chan struct{})
	stopAfter := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = f.SetDeadline(time.Unix(1, 0)) // long past: the wait ends at once
	})
	return func() {
		if !stopAfter() { // it ran, or is running
			<-fired
			_ = f.SetDeadline(time.Time{})
		}
	}
}

// readAnswer reads notices until the daemon's answer, keeping the others
// for Pending (with HandleLost set for one whose handle this guest could
// not take). An answer whose handle was lost is an error that says so
// (*sandboxd.HandleLostError). A refusal carries no handle; one that
// does has it closed, since the caller gets only the error.
func readAnswer(sc *sandboxd.Conn) (uint32, error) {
	for {
		n, err := sc.RecvNotice()
		var lost *sandboxd.HandleLostError
		if err != nil && (!errors.As(err, &lost) || isAnswer(n)) {
			return 0, fmt.Errorf("peer: %w", err)
		}
		switch {
		case n.Event == "rpc" && n.HasFD:
			return n.FD, nil
		case n.Event == "rpc":
			return 0, errors.New("peer: the daemon's answer to a connection request came without the connection's handle")
		case n.Event == "error":
			if n.HasFD {
				_ = sandboxd.Close(n.FD)
			}
			return 0, errors.New("peer: the daemon refused a connection: " + n.Name)
		}
		pendingMu.Lock()
		pending = append(pending, n)
		pendingMu.Unlock()
	}
}

// isAnswer reports whether n answers a request: the connection, or a
// refusal.
func isAnswer(n Notice) bool { return n.Event == "rpc" || n.Event == "error" }

// Supervisor is the daemon's GuestSupervisor, for calls this package has
// no method for.
func (c *Conn) Supervisor() guest.GuestSupervisor { return c.sup }

// Done is closed when the connection ends.
func (c *Conn) Done() <-chan struct{} { return c.rpc.Done() }

// Close ends the connection: what the guest published is withdrawn, and
// what it served to other guests is revoked.
func (c *Conn) Close() error {
	c.sup.Release()
	err := c.rpc.Close()
	_ = c.stream.Close()
	return err
}

// Publish offers svc, an object this guest serves, as name to the guests
// that hold the channel named channel. The daemon keeps a reference to
// svc until the guest's connection ends.
func (c *Conn) Publish(ctx context.Context, channel, name string, svc capnp.Client) error {
	f, release := c.sup.Publish(ctx, func(p guest.GuestSupervisor_publish_Params) error {
		if err := p.SetChannel(channel); err != nil {
			return err
		}
		if err := p.SetName(name); err != nil {
			return err
		}
		return p.SetService(svc.AddRef())
	})
	defer release()
	_, err := f.Struct()
	return err
}

// Obtain returns the service published as name on channel, waiting until
// it is published (or ctx ends). The caller releases it.
func (c *Conn) Obtain(ctx context.Context, channel, name string) (capnp.Client, error) {
	f, release := c.sup.Obtain(ctx, func(p guest.GuestSupervisor_obtain_Params) error {
		if err := p.SetChannel(channel); err != nil {
			return err
		}
		return p.SetName(name)
	})
	defer release()
	res, err := f.Struct()
	if err != nil {
		return capnp.Client{}, err
	}
	return res.Service().AddRef(), nil
}

// Rights narrows a handle handed over.
type Rights struct{ Base, Inheriting sandboxd.Rights }

// HandOver wraps the handle fd as a GuestHandle to pass to a peer in a
// call, narrowed to r if r is not nil. The caller releases it.
func (c *Conn) HandOver(ctx context.Context, fd uint32, r *Rights) (guest.GuestHandle, error) {
	f, release := c.sup.HandOver(ctx, func(p guest.GuestSupervisor_handOver_Params) error {
		p.SetFd(fd)
		if r != nil {
			p.SetNarrow(true)
			p.SetBase(uint64(r.Base))
			p.SetInheriting(uint64(r.Inheriting))
		}
		return nil
	})
	defer release()
	res, err := f.Struct()
	if err != nil {
		return guest.GuestHandle{}, err
	}
	return res.Handle().AddRef(), nil
}

// Install turns a GuestHandle this guest received into a handle of its
// own and returns the fd.
func (c *Conn) Install(ctx context.Context, h guest.GuestHandle) (uint32, error) {
	f, release := c.sup.Install(ctx, func(p guest.GuestSupervisor_install_Params) error {
		return p.SetHandle(h.AddRef())
	})
	defer release()
	res, err := f.Struct()
	if err != nil {
		return 0, err
	}
	return res.Fd(), nil
}

// Handle is one entry of the guest's handle table, as the daemon
// describes it.
type Handle struct {
	FD                   uint32
	ID, Kind, Name, Edge string
	Parent, Origin       string
	Base, Inheriting     sandboxd.Rights
}

// Handles lists the guest's handle table.
func (c *Conn) Handles(ctx context.Context) ([]Handle, error) {
	f, release := c.sup.Handles(ctx, nil)
	defer release()
	res, err := f.Struct()
	if err != nil {
		return nil, err
	}
	list, err := res.Handles()
	if err != nil {
		return nil, err
	}
	out := make([]Handle, list.Len())
	for i := range out {
		in := list.At(i)
		h := &out[i]
		h.FD, h.Base, h.Inheriting = in.Fd(), sandboxd.Rights(in.Base()), sandboxd.Rights(in.Inheriting())
		h.ID, _ = in.Id()
		h.Kind, _ = in.Kind()
		h.Name, _ = in.Name()
		h.Edge, _ = in.Edge()
		h.Parent, _ = in.Parent()
		h.Origin, _ = in.Origin()
	}
	return out, nil
}
