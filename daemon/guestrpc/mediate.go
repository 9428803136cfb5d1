package guestrpc

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	capnp "capnproto.org/go/capnp/v3"
	capnpserver "capnproto.org/go/capnp/v3/server"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/schemas/guest"
)

// serviceRes is the resource behind a service capability: an object a
// guest serves on its own connection (an import of that connection).
// The kernel closes it when the last capability on it goes, which
// releases the import and the serving guest's export count.
type serviceRes struct {
	client  capnp.Client
	owner   *peer // the serving guest: its leaving revokes the service
	charged *peer // whose exports it counts against
	desc    string
	// published is where the service is offered, for a published one;
	// nil for an object passed in a call.
	published *serviceKey
	// root is set once the root capability has been made. Revoking the
	// publisher's channel handle may close the resource before that.
	root atomic.Pointer[caps.Cap]
	// ended says why the service is gone, once its guest has left.
	ended atomic.Pointer[string]
}

func (r *serviceRes) Kind() caps.Kind  { return caps.KindService }
func (r *serviceRes) Describe() string { return r.desc }

// Close releases the import, withdraws the publication (the root was
// revoked: with the publisher's channel handle, or as its guest left) and
// closes the root, which anchors nothing any more, so that the kernel can
// forget it. It may run under a connection's lock (a copy closed while a
// call is placed), so the release, which takes the serving guest's
// connection's lock, runs on its own goroutine.
func (r *serviceRes) Close() error {
	go r.client.Release()
	if root := r.root.Load(); root != nil {
		r.owner.s.forget(r, root)
	}
	r.charged.unreserve()
	return nil
}

// forget undoes what export recorded of root, the root of res, once root
// has been revoked: the guest no longer serves it, its publication (if
// still root's) is withdrawn, and root is closed, so that the kernel
// forgets it, and the channel handle it was published beneath, once the
// last copy has gone.
func (s *Server) forget(res *serviceRes, root *caps.Cap) {
	res.owner.dropRoot(root)
	if res.published != nil {
		s.unpublish(*res.published, root)
	}
	s.k.Close(root)
}

// export makes a root capability, held by from, for an object from serves
// itself (c, which export takes a reference on), counted against
// charged's MaxExports and revoked when from leaves.
//
// An object passed in a call becomes a root of its own (edge create:
// nothing but the guest's call authorised it). A published one (pub not
// nil) is derived from the publisher's handle on the channel it is
// published on (edge create beneath it), so that revoking that handle, or
// anything it descends from, revokes the service and every copy of it,
// and withdraws the publication.
func (s *Server) export(from, charged *peer, c capnp.Client, name, desc string, pub *publication) (*caps.Cap, error) {
	if err := charged.reserve(); err != nil {
		return nil, err
	}
	res := &serviceRes{client: c.AddRef(), owner: from, charged: charged, desc: desc}
	var root *caps.Cap
	if pub == nil {
		root = s.k.Create(from.g.Holder(), res, serviceRights, 0, name, desc)
	} else {
		res.published = &pub.key
		var err error
		root, err = s.k.Derive(pub.under, caps.Derivation{
			Holder: from.g.Holder(), Edge: caps.EdgeCreate, Name: name,
			Base: serviceRights, Resource: res, Origin: desc,
		})
		if err != nil {
			// Derive closed res, which gave back the reservation.
			return nil, fmt.Errorf("guest %s's handle on chan:%s (capability %s) was revoked, closed or narrowed as the service was published: %w", from.g.ID(), pub.key.channel, pub.under.ID(), err)
		}
	}
	res.root.Store(root)
	if !from.addRoot(root) {
		s.k.Revoke(root, "the serving guest "+from.g.ID()+" has disconnected")
		return nil, fmt.Errorf("guest %s's connection has ended", from.g.ID())
	}
	if root.Revoked() {
		// Revoked before res knew its root: its Close could not forget it.
		s.forget(res, root)
		if pub != nil {
			return nil, fmt.Errorf("guest %s's handle on chan:%s (capability %s) has been revoked", from.g.ID(), pub.key.channel, pub.under.ID())
		}
		return nil, fmt.Errorf("service capability %s was revoked as it was made", root.ID())
	}
	return root, nil
}

// serviceRights are the rights of a service capability: its one right,
// to call it. A published service is derived from a channel handle, so
// they must be within the handle's inheriting rights.
const serviceRights = caps.RightFDWrite

// publication is where a service is published: under key, beneath the
// publisher's handle on key's channel.
type publication struct {
	key   serviceKey
	under *caps.Cap
}

// passOn derives parent's copy for to (edge "delegate", the same rights),
// which the kernel's gate decides.
func (s *Server) passOn(parent *caps.Cap, to *peer, origin string) (*caps.Cap, error) {
	b, i := parent.Rights()
	h := to.g.Holder()
	c, err := s.k.Derive(parent, caps.Derivation{
		Holder: h, For: h, Edge: caps.EdgeDelegate, Name: parent.Name(), Base: b, Inheriting: i, Origin: origin,
	})
	if err != nil {
		if daemon.IsPolicyDenial(err) {
			return nil, fmt.Errorf("capability %s cannot be passed to guest %s: %w", parent.ID(), to.g.ID(), err)
		}
		return nil, fmt.Errorf("capability %s cannot be passed to guest %s: %s", parent.ID(), to.g.ID(), daemon.WhyNotDerived(parent, err))
	}
	return c, nil
}

// crossing is the way of the capabilities in one message: from the guest
// that put them in it to the one that receives it.
type crossing struct {
	from, to *peer
	// charged is the guest that made the call (whichever way the message
	// goes): the objects made for the receiver count against its exports,
	// so a guest cannot use up a peer's budget by calling it.
	charged *peer
	origin  string
	// via is what the receiver obtains the capabilities through: for a
	// call's results, the service called and what it was obtained
	// through; nil for its parameters.
	via via
}

// through is a service a capability was obtained through: the copy
// whose call returned it in its results, or the copy that one was
// obtained through in turn.
type through struct {
	c   *caps.Cap
	res *serviceRes
	a   *anchor
}

// via is what a forwarder or a GuestHandle was obtained through: revoking
// any of it cuts it off, as it revokes what is derived from it, so that
// revoking a guest's copy of a service (or what that descends from) ends
// its use of every object it obtained from the service, directly or
// through other objects (each step of an iterator), and of those a guest
// it passed them to holds. A capability has one parent in the graph, its
// giver's; via is the other way it hangs on.
//
// via names entries only: services a guest obtained, or was passed in a
// call's parameters, not those it found in results (which hang on the
// entry they came through), so that an iterator whose every step is
// obtained through the one before hangs on the service it started from,
// however long it goes on. A step revoked on its own cuts off that step.
// Every object in via's hands keeps each entry's capability open
// (anchor): a copy that its holder closed would no longer be reached by
// the revocation of what it descends from.
type via []through

// maxVia bounds the entries an object may hang on (each call checks
// them): an object passed from guest to guest through the results of
// many services.
const maxVia = 64

// join is v followed by w's entries not already in v.
func (v via) join(w via) (via, error) {
	if len(w) == 0 {
		return v, nil
	}
	out := append(via(nil), v...)
	for _, t := range w {
		if !out.has(t.c) {
			out = append(out, t)
		}
	}
	if len(out) > maxVia {
		return nil, fmt.Errorf("it was obtained through the results of %d services, more than the %d the daemon follows", len(out), maxVia)
	}
	return out, nil
}

// hold keeps each entry's capability open until release.
func (v via) hold() {
	for _, t := range v {
		t.a.hold()
	}
}

func (v via) release() {
	for _, t := range v {
		t.a.drop()
	}
}

// anchor keeps a forwarder's capability open while its forwarder serves,
// or an object obtained through it is held: it is closed when the last
// of them goes.
type anchor struct {
	k    *caps.Kernel
	c    *caps.Cap
	refs atomic.Int64
}

func newAnchor(k *caps.Kernel, c *caps.Cap) *anchor {
	a := &anchor{k: k, c: c}
	a.refs.Store(1)
	return a
}

func (a *anchor) hold() { a.refs.Add(1) }

func (a *anchor) drop() {
	if a.refs.Add(-1) == 0 {
		a.k.Close(a.c)
	}
}

func (v via) has(c *caps.Cap) bool {
	for _, t := range v {
		if t.c == c {
			return true
		}
	}
	return false
}

// revoked returns the first of v's services that has been revoked.
func (v via) revoked() (through, bool) {
	for _, t := range v {
		if t.c.Revoked() {
			return t, true
		}
	}
	return through{}, false
}

// watch wakes w when any of v's services is revoked.
func (v via) watch(w *caps.Waiter) (cancel func()) {
	cancels := make([]func(), 0, len(v))
	for _, t := range v {
		cancels = append(cancels, t.c.WatchRevoke(w))
	}
	return func() {
		for _, c := range cancels {
			c()
		}
	}
}

// cutOff is the exception of a call, or an install, of what (capability
// c) once t, a service it was obtained through, has been revoked: of
// type disconnected if t's serving guest has gone (obtaining it again
// may help), failed otherwise.
func (t through) cutOff(what string, c *caps.Cap) error {
	why := fmt.Sprintf("%s (capability %s) was obtained through service %s (capability %s), ", what, c.ID(), t.c.Name(), t.c.ID())
	if ended := t.res.ended.Load(); ended != nil {
		return capnp.Disconnected(why + "which is gone: " + *ended)
	}
	return fmt.Errorf("%swhich has been revoked: %s", why, t.res.revokedBecause())
}

// mediate turns c, a capability x.from put in a message for x.to, into the
// capability x.to receives: a copy derived for it from the giver's
// capability. A GuestHandle or service the giver received from the daemon
// must be its own; anything else is an object the giver serves, which
// becomes a service capability of the giver's first. c must not be an
// unresolved promise (forwarder.settle).
func (s *Server) mediate(c capnp.Client, x crossing) (capnp.Client, error) {
	from, to, origin := x.from, x.to, x.origin
	if !c.IsValid() {
		return capnp.Client{}, nil
	}
	if v, ok := serverOf(c); ok {
		switch o := v.(type) {
		case *handleServer:
			if o.p != from {
				return capnp.Client{}, errors.New("a GuestHandle held by another guest cannot be passed on")
			}
			v, err := o.via.join(x.via)
			if err != nil {
				return capnp.Client{}, fmt.Errorf("GuestHandle %s cannot be passed on: %w", o.c.ID(), err)
			}
			child, err := s.passOn(o.c, to, origin)
			if err != nil {
				return capnp.Client{}, err
			}
			return newHandle(to, child, x.charged, v)
		case *forwarder:
			if o.p != from {
				return capnp.Client{}, errors.New("a service held by another guest cannot be passed on")
			}
			v, err := o.via.join(x.via)
			if err != nil {
				return capnp.Client{}, fmt.Errorf("service %s (capability %s) cannot be passed on: %w", o.c.Name(), o.c.ID(), err)
			}
			child, err := s.passOn(o.c, to, origin)
			if err != nil {
				return capnp.Client{}, err
			}
			return newForwarder(to, child, x.charged, v)
		default:
			return capnp.Client{}, errors.New("a guest's GuestSupervisor cannot be passed to another guest: it acts for its guest only")
		}
	}
	if resolvedIntoDaemon(c) {
		return capnp.Client{}, fmt.Errorf("guest %s passed a promise it resolved to a capability the daemon serves it (a service, a GuestHandle or its GuestSupervisor): that cannot be passed on; pass the capability itself, not a promise of it", from.g.ID())
	}
	root, err := s.export(from, x.charged, c, "service", "served by "+from.g.ID(), nil)
	if err != nil {
		return capnp.Client{}, err
	}
	child, err := s.passOn(root, to, origin)
	// The root only anchors the copies: the copy keeps the service open,
	// and revoking the root (when from leaves) still revokes it.
	s.k.Close(root)
	if err != nil {
		return capnp.Client{}, err
	}
	return newForwarder(to, child, x.charged, x.via)
}

// resolvedIntoDaemon reports whether c is a promise its guest resolved to
// a capability the daemon serves it. go-capnp calls such a capability
// through an embargo, whose brand (the only client without one) hides
// what it stands for, so it can be neither checked nor derived from.
func resolvedIntoDaemon(c capnp.Client) bool {
	snap := c.Snapshot()
	defer snap.Release()
	return snap.Brand().Value == nil
}

// copyMediated copies src into dst, replacing every capability src
// carries with its mediated copy for to. On error dst must not be sent.
// It returns the giver's references it replaced, for the caller to
// release once it no longer holds any connection's lock: copyMediated
// runs inside go-capnp's PlaceArgs, under the receiving connection's
// lock, and releasing an import of the giver's connection there could
// deadlock against a call the other way.
//
// src may point at one capability any number of times (a message of 1
// MiB holds 130,000 pointers): CopyFrom gives each entry of src's cap
// table one entry of dst's, which its pointers share, and each capability
// is mediated once (two entries of src's may be the same capability), so
// that it costs one reference, one derivation and one exported object,
// not one per pointer.
func copyMediated(dst, src capnp.Struct, x crossing) ([]capnp.Client, error) {
	ct := dst.Message().CapTable()
	n0 := ct.Len()
	if err := dst.CopyFrom(src); err != nil {
		return nil, err
	}
	if n, max := ct.Len()-n0, x.from.s.lim.MaxExports; n > max {
		// The recipient would import each: as many as a guest may send in
		// one message (checkCaps), no more.
		return nil, fmt.Errorf("guest %s's message carries %d capabilities, more than the %d one message may carry (the per-guest limit of exports)", x.from.g.ID(), n, max)
	}
	var replaced []capnp.Client
	done := make(map[*capnp.Metadata]capnp.Client)
	for i := n0; i < ct.Len(); i++ {
		c := ct.At(i)
		key := identity(c)
		replaced = append(replaced, c)
		if m, ok := done[key]; ok && key != nil {
			ct.Set(capnp.CapabilityID(i), m.AddRef())
			continue
		}
		m, err := x.from.s.mediate(c, x)
		ct.Set(capnp.CapabilityID(i), m)
		if err != nil {
			return replaced, err
		}
		done[key] = m
	}
	return replaced, nil
}

// identity is what every reference to the capability c refers to (nil for
// the null capability): two clients with the same identity are the same
// capability.
func identity(c capnp.Client) *capnp.Metadata {
	snap := c.Snapshot()
	defer snap.Release()
	if !snap.IsValid() {
		return nil
	}
	return snap.Metadata()
}

// release releases each of cs.
func release(cs []capnp.Client) {
	for _, c := range cs {
		c.Release()
	}
}

// serverOf returns the daemon's own object behind a client, if the daemon
// serves it.
func serverOf(cl capnp.Client) (any, bool) {
	snap := cl.Snapshot()
	defer snap.Release()
	return capnpserver.IsServer(snap.Brand())
}

// handleServer is a GuestHandle: one capability of the graph, held by
// p's guest. charged is the guest whose MaxExports it counts against.
type handleServer struct {
	p       *peer
	c       *caps.Cap
	charged *peer
	via     via // the services it was obtained through (install checks them)
}

// newHandle serves c (held by p's guest) as a GuestHandle, charged to
// charged, obtained through v. On error c is closed.
func newHandle(p *peer, c *caps.Cap, charged *peer, v via) (capnp.Client, error) {
	if err := charged.reserve(); err != nil {
		p.s.k.Close(c)
		return capnp.Client{}, err
	}
	v.hold()
	return capnp.Client(guest.GuestHandle_ServerToClient(&handleServer{p: p, c: c, charged: charged, via: v})), nil
}

func (h *handleServer) Info(ctx context.Context, call guest.GuestHandle_info) error {
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	info, err := res.NewInfo()
	if err != nil {
		return err
	}
	return fillInfo(info, h.c, 0)
}

// Shutdown runs when the holder releases the handle (or disconnects).
func (h *handleServer) Shutdown() {
	h.p.s.k.Close(h.c)
	h.via.release()
	h.charged.unreserve()
}

// forwarder is the service capability c (held by p's guest) as a Cap'n
// Proto object: it forwards every call, of any interface, to the object
// behind c while c is not revoked, mediating the capabilities in the
// parameters (from p to the server) and in the results (back).
type forwarder struct {
	p       *peer
	c       *caps.Cap
	res     *serviceRes
	charged *peer
	via     via     // what it was obtained through: revoking one cuts it off
	anchor  *anchor // closes c once the forwarder and what came through it are gone
}

// newForwarder serves c (held by p's guest) as a forwarder, charged to
// charged, obtained through v. On error c is closed.
func newForwarder(p *peer, c *caps.Cap, charged *peer, v via) (capnp.Client, error) {
	if err := charged.reserve(); err != nil {
		p.s.k.Close(c)
		return capnp.Client{}, err
	}
	v.hold()
	f := &forwarder{p: p, c: c, res: c.Resource().(*serviceRes), charged: charged, via: v, anchor: newAnchor(p.s.k, c)}
	srv := capnpserver.New(nil, f, f)
	srv.HandleUnknownMethod = func(m capnp.Method) *capnpserver.Method {
		return &capnpserver.Method{Method: m, Impl: func(ctx context.Context, call *capnpserver.Call) error {
			return f.forward(ctx, m, call)
		}}
	}
	return capnp.NewClient(srv), nil
}

// Shutdown runs when the holder releases the service (or disconnects).
func (f *forwarder) Shutdown() {
	f.anchor.drop()
	f.via.release()
	f.charged.unreserve()
}

// forward makes one call through the forwarder. Revoking c (or the
// serving guest leaving) fails calls not yet sent and ends those in
// flight at once.
func (f *forwarder) forward(ctx context.Context, m capnp.Method, call *capnpserver.Call) error {
	call.Go()
	args := call.Args()
	if err := f.settle(ctx, args); err != nil {
		return err
	}
	if err := f.c.Acquire(serviceRights, 0); err != nil {
		return f.cutOff()
	}
	if t, ok := f.via.revoked(); ok {
		f.c.Release()
		return t.cutOff("service "+f.c.Name(), f.c)
	}
	owner := f.res.owner
	if err := owner.t.admit(owner.g.ID()); err != nil {
		f.c.Release()
		return err
	}
	origin := "passed in a call by " + f.p.g.ID() + " to " + f.c.Name() + " of " + owner.g.ID()
	// Cancelling the call (revoked, or the caller gone) sends the serving
	// guest a Finish and lets release return without its answer.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var replaced []capnp.Client
	ans, finish := f.res.client.SendCall(ctx, capnp.Send{
		Method: m, ArgsSize: args.Size(),
		PlaceArgs: func(s capnp.Struct) (err error) {
			replaced, err = copyMediated(s, args, crossing{from: f.p, to: owner, charged: f.p, origin: origin})
			return err
		},
	})
	owner.t.sent()
	f.c.Release()
	release(replaced)
	defer func() {
		cancel()
		finish()
	}()
	revoked, unwatch := f.revocation()
	defer unwatch()
	select {
	case <-ans.Done():
	case <-revoked:
		return f.revokedErr()
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	out, err := ans.Struct()
	if err != nil {
		return f.answerError(owner, err)
	}
	return f.returnResults(ctx, call, out, owner)
}

// answerError is what the caller of a call forwarded to owner is told
// of the answer's error err.
func (f *forwarder) answerError(owner *peer, err error) error {
	if err := f.revokedErr(); err != nil {
		return err
	}
	switch {
	case capnp.IsDisconnected(err) || owner.exited():
		return gone(f.c, "the guest "+owner.g.ID()+" serving it has exited or closed its connection")
	}
	return fmt.Errorf("%s of guest %s: %w", f.c.Name(), owner.g.ID(), err)
}

// returnResults copies out, the results owner answered a forwarded call
// with, into call's, mediating each capability they carry for the caller.
func (f *forwarder) returnResults(ctx context.Context, call *capnpserver.Call, out capnp.Struct, owner *peer) error {
	if err := f.settle(ctx, out); err != nil {
		return err
	}
	// The answer may have come as c was revoked, and select picked it:
	// held while the results are copied, c is either not revoked, or
	// revoked after they are (Revoke waits for the hold to end).
	if err := f.c.Acquire(serviceRights, 0); err != nil {
		return f.cutOff()
	}
	defer f.c.Release()
	if t, ok := f.via.revoked(); ok {
		return t.cutOff("service "+f.c.Name(), f.c)
	}
	results, err := call.AllocResults(out.Size())
	if err != nil {
		return err
	}
	// What the results carry is obtained through f, or through what f
	// was obtained through: revoking it cuts that off too.
	v := f.via
	if len(v) == 0 {
		v = via{{c: f.c, res: f.res, a: f.anchor}}
	}
	back := "returned by " + owner.g.ID() + " from " + f.c.Name()
	replaced, err := copyMediated(results, out, crossing{from: owner, to: f.p, charged: f.p, origin: back, via: v})
	release(replaced)
	return err
}

// revocation returns a channel that receives once f's capability, or a
// service it was obtained through, is revoked, and a function that stops
// watching.
func (f *forwarder) revocation() (<-chan struct{}, func()) {
	if len(f.via) == 0 {
		return f.c.Done(), func() {}
	}
	w := caps.NewWaiter()
	unwatchVia := f.via.watch(w)
	unwatch := f.c.WatchRevoke(w)
	return w.C(), func() {
		unwatch()
		unwatchVia()
	}
}

// settle waits until no capability in s, the parameters or results of a
// call through f, is a promise still unresolved, so that mediate sees
// what each has become: a promise a guest passes on may turn out to be
// one of the daemon's own objects (a service or handle the guest holds,
// which is passed on as a copy derived from it, or its GuestSupervisor,
// which is refused), not an object the guest serves. It holds no
// connection's lock, and gives up when ctx ends or f's capability, or a
// service f was obtained through, is revoked.
func (f *forwarder) settle(ctx context.Context, s capnp.Struct) error {
	if s.Message() == nil {
		return nil // no parameters or results
	}
	ct := s.Message().CapTable()
	for i := 0; i < ct.Len(); i++ {
		if !unresolved(ct.At(i)) {
			continue
		}
		f.p.log.Debug("waiting for a capability passed as a promise to resolve before passing it on", "service", f.c.Name(), "cap", f.c.ID())
		revoked, unwatch := f.revocation()
		err := awaitResolved(ctx, ct.At(i), revoked)
		unwatch()
		if err != nil {
			if err := f.revokedErr(); err != nil {
				return err
			}
			return fmt.Errorf("a capability passed in a call to %s (capability %s) was a promise that did not resolve: %w", f.c.Name(), f.c.ID(), err)
		}
	}
	return nil
}

// revokedErr is the exception of a call through f once f's capability,
// or a service f was obtained through, has been revoked; nil while
// neither is.
func (f *forwarder) revokedErr() error {
	if f.c.Revoked() {
		return f.cutOff()
	}
	if t, ok := f.via.revoked(); ok {
		return t.cutOff("service "+f.c.Name(), f.c)
	}
	return nil
}

// unresolved reports whether c is a promise that has not resolved yet.
func unresolved(c capnp.Client) bool {
	snap := c.Snapshot()
	defer snap.Release()
	return snap.IsPromise() && !snap.IsResolved()
}

// awaitResolved waits until c has resolved, ctx ends or stop is closed.
func awaitResolved(ctx context.Context, c capnp.Client, stop <-chan struct{}) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := c.Resolve(ctx); err != nil {
		return err
	}
	return context.Cause(ctx)
}

// gone is the exception of a call to a service whose publisher has left:
// of type disconnected, which Cap'n Proto defines as "obtain the
// capability again and retry", since a publisher started again publishes
// it anew. A revocation's exception stays "failed": it is for good.
func gone(c *caps.Cap, why string) error {
	return capnp.Disconnected(fmt.Sprintf("service %s (capability %s) is gone: %s", c.Name(), c.ID(), why))
}

// cutOff is the exception of a call through a revoked forwarder.
func (f *forwarder) cutOff() error {
	if why := f.res.ended.Load(); why != nil {
		return gone(f.c, *why)
	}
	return fmt.Errorf("service %s (capability %s) has been revoked: %s", f.c.Name(), f.c.ID(), f.res.revokedBecause())
}

// revokedBecause says, for a call through a revoked copy, which
// revocation the graph shows cut the service off: the publisher's handle
// on the channel it was published on, or else the giver's capability.
func (r *serviceRes) revokedBecause() string {
	if r.published == nil {
		return "its giver's capability was revoked"
	}
	under := r.root.Load().Parent() // the publisher's channel handle
	if !under.Revoked() {
		return "its giver's capability was revoked"
	}
	top := under
	for p := top.Parent(); p != nil && p.Revoked(); p = p.Parent() {
		top = p
	}
	why := fmt.Sprintf("guest %s published it on chan:%s, and its handle on that channel (capability %s) has been revoked", r.owner.g.ID(), r.published.channel, under.ID())
	if top != under {
		why += " with capability " + string(top.ID()) + ", which it descends from"
	}
	return why
}

// fillInfo describes c for a guest: never the host object behind it.
func fillInfo(info guest.HandleInfo, c *caps.Cap, fd uint32) error {
	in := c.Info()
	info.SetFd(fd)
	info.SetBase(uint64(in.Base))
	info.SetInheriting(uint64(in.Inheriting))
	for _, f := range []struct {
		set func(string) error
		v   string
	}{
		{info.SetId, string(in.ID)}, {info.SetKind, in.Kind.String()}, {info.SetName, in.Name},
		{info.SetEdge, in.Edge.String()}, {info.SetParent, string(in.Parent)},
		{info.SetOrigin, in.Origin}, {info.SetHolder, in.Holder},
	} {
		if err := f.set(f.v); err != nil {
			return err
		}
	}
	return nil
}
