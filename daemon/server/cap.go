package server

import (
	"context"
	"errors"
	"fmt"

	"capnproto.org/go/capnp/v3"
	capnpserver "capnproto.org/go/capnp/v3/server"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/schemas"
)

// capServer is a Cap object handed to one client: a forwarder to one
// kernel capability. Holding it allows what the capability allows through
// the control API (describe, restrict, delegate, revoke) and nothing
// else. Once the capability is revoked, by anyone, every method but info
// fails: the forwarder stops forwarding, whatever the client still holds.
type capServer struct {
	c *serverConn
	x *caps.Cap
	// owned is set when x was minted or derived for this connection: it is
	// closed when the client releases the object or disconnects (what was
	// derived from it lives on until revoked).
	owned bool
}

func (s *capServer) Shutdown() {
	s.c.dropObject()
	if s.owned {
		s.c.s.sup.Kernel().Close(s.x)
	}
}

// live returns an error if the capability can no longer be used.
func (s *capServer) live() error {
	if s.x.Revoked() {
		return fmt.Errorf("capability %s has been revoked", s.x.ID())
	}
	if s.x.Closed() {
		return fmt.Errorf("capability %s has been closed by its holder", s.x.ID())
	}
	return nil
}

// capResults is what every method that returns a Cap has.
type capResults interface {
	SetCap(schemas.Cap) error
	NewInfo() (schemas.CapInfo, error)
}

// returnCap hands the client a Cap object for x through the results alloc
// makes. With owned, x was minted or derived for this connection and is
// closed when the client releases the object; if the results cannot be
// written it is closed at once. With token, the results carry x's token
// (mint and restrict: the token goes to whoever minted it, and only them).
func returnCap[R capResults](c *serverConn, alloc func() (R, error), x *caps.Cap, owned, token bool) error {
	fail := func(err error) error {
		if owned {
			c.s.sup.Kernel().Close(x)
		}
		return err
	}
	if err := c.takeObject(); err != nil {
		return fail(err)
	}
	res, err := alloc()
	if err != nil {
		c.dropObject()
		return fail(err)
	}
	// From here the object owns x: a failure below releases it through
	// the results message, which runs Shutdown.
	if err := res.SetCap(schemas.Cap_ServerToClient(&capServer{c: c, x: x, owned: owned})); err != nil {
		return err
	}
	if token {
		tr, ok := any(res).(interface{ SetToken(string) error })
		if !ok {
			return errors.New("internal error: results have no token field")
		}
		if err := tr.SetToken(x.Token().String()); err != nil {
			return err
		}
	}
	info, err := res.NewInfo()
	if err != nil {
		return err
	}
	return fillCapInfo(info, x, c.auth)
}

func (s *capServer) Info(ctx context.Context, call schemas.Cap_info) error {
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	i, err := res.NewInfo()
	if err != nil {
		return err
	}
	return fillCapInfo(i, s.x, s.c.auth)
}

func (s *capServer) Restrict(ctx context.Context, call schemas.Cap_restrict) error {
	if err := s.live(); err != nil {
		return err
	}
	a := call.Args()
	base, inh := caps.Rights(a.Base()), caps.Rights(a.Inheriting())
	if err := s.c.roomForObject(); err != nil {
		return err
	}
	child, err := s.c.s.sup.Kernel().Derive(s.x, caps.Derivation{
		Holder: s.c.holder, Edge: caps.EdgeRestrict, Name: s.x.Name(), Base: base, Inheriting: inh,
	})
	if err != nil {
		hb, hi := s.x.Rights()
		if s.x.Revoked() {
			return fmt.Errorf("restrict %s: it has been revoked", s.x.ID())
		}
		if errors.Is(err, caps.ErrClosedAbove) {
			return fmt.Errorf("restrict %s: %w", s.x.ID(), err)
		}
		return fmt.Errorf("restrict %s: rights can only narrow: it lacks %s (base) and %s (inheriting)",
			s.x.ID(), hb.Missing(base), hi.Missing(inh))
	}
	s.c.log.Info("restricted", "cap", child.ID(), "parent", s.x.ID(), "rights", caps.Rights(base).String())
	return returnCap(s.c, call.AllocResults, child, true, true)
}

func (s *capServer) Delegate(ctx context.Context, call schemas.Cap_delegate) error {
	call.Go()
	if err := s.live(); err != nil {
		return err
	}
	a := call.Args()
	name, err := a.Name()
	if err != nil {
		return err
	}
	// A name given, or the capability's own when none is, is checked by
	// SendCap as a grant's would be (a directory's may be a path).
	r, err := s.c.unwrapGuest(ctx, a.Guest())
	if err != nil {
		return fmt.Errorf("delegate %s: %w", s.x.ID(), err)
	}
	child, err := r.g.SendCap(ctx, s.x, name)
	if err != nil {
		return fmt.Errorf("delegate %s: %w", s.x.ID(), err)
	}
	s.c.log.Debug("delegated", "cap", child.ID(), "parent", s.x.ID(), "guest", r.g.ID())
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	info, err := res.NewInfo()
	if err != nil {
		return err
	}
	return fillCapInfo(info, child, s.c.auth)
}

func (s *capServer) Revoke(ctx context.Context, call schemas.Cap_revoke) error {
	call.Go()
	if s.x.Revoked() {
		return fmt.Errorf("capability %s has been revoked already", s.x.ID())
	}
	reason, err := call.Args().Reason()
	if err != nil {
		return err
	}
	return revoke(s.c, call.AllocResults, s.x, reason)
}

// serverOf returns the local server object behind a client, if the
// daemon itself serves it (a Cap or Guest the daemon handed out and the
// client passed back).
func serverOf(cl capnp.Client) (any, bool) {
	snap := cl.Snapshot()
	defer snap.Release()
	return capnpserver.IsServer(snap.Brand())
}

// unwrapGuest returns the record behind a Guest object the client passed
// back to the daemon. Holding the object is the authority to act on the
// guest, whoever launched it.
func (c *serverConn) unwrapGuest(ctx context.Context, gl schemas.Guest) (*guestRecord, error) {
	if !gl.IsValid() {
		return nil, errors.New("no guest given")
	}
	if err := gl.Resolve(ctx); err != nil {
		return nil, err
	}
	v, ok := serverOf(capnp.Client(gl))
	if !ok {
		return nil, errors.New("not a guest of this daemon: only Guest objects from this daemon can be passed to it")
	}
	gs, ok := v.(*guestServer)
	if !ok {
		return nil, errors.New("not a Guest object")
	}
	return gs.r, nil
}
