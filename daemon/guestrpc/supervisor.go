package guestrpc

import (
	"context"
	"errors"
	"fmt"

	capnp "capnproto.org/go/capnp/v3"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/schemas/guest"
)

// supervisorServer is one guest's GuestSupervisor: it acts for that guest
// only, on what the guest holds.
type supervisorServer struct{ p *peer }

func (s *supervisorServer) Handles(ctx context.Context, call guest.GuestSupervisor_handles) error {
	entries := s.p.g.Handles()
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	list, err := res.NewHandles(int32(len(entries)))
	if err != nil {
		return err
	}
	for i, e := range entries {
		if err := fillInfo(list.At(i), e.Cap, e.FD); err != nil {
			return err
		}
	}
	return nil
}

// channelArgs reads a channel and a name, and returns the guest's handle
// on the channel whose inheriting rights include inheriting.
func (s *supervisorServer) channelArgs(channel func() (string, error), name func() (string, error), inheriting caps.Rights) (serviceKey, *caps.Cap, error) {
	ch, err := channel()
	if err != nil {
		return serviceKey{}, nil, err
	}
	n, err := name()
	if err != nil {
		return serviceKey{}, nil, err
	}
	if n == "" {
		return serviceKey{}, nil, errors.New("a service needs a name")
	}
	if err := daemon.CheckName(n); err != nil {
		// It names every capability on the service, as a handle's name.
		return serviceKey{}, nil, fmt.Errorf("the service name %s", err)
	}
	key := serviceKey{channel: ch, name: n}
	if c := s.p.g.ChannelHandle(ch, inheriting); c != nil {
		return key, c, nil
	}
	if inheriting != 0 && s.p.g.ChannelHandle(ch, 0) != nil {
		return serviceKey{}, nil, fmt.Errorf("guest %s's handles on channel %q lack %v among their inheriting rights (they were narrowed): a published service is derived from the guest's channel handle, which must be able to pass on the right to call it", s.p.g.ID(), ch, inheriting)
	}
	return serviceKey{}, nil, fmt.Errorf("guest %s holds no channel %q: services are published and obtained on a channel the guest was granted (--grant chan:%s)", s.p.g.ID(), ch, ch)
}

// Publish derives the service's root capability from the guest's handle on
// the channel, so that revoking that handle withdraws the service and
// revokes every copy obtained from it. Closing the handle does not: the
// service stays published until the guest's connection ends.
func (s *supervisorServer) Publish(ctx context.Context, call guest.GuestSupervisor_publish) error {
	args := call.Args()
	key, ch, err := s.channelArgs(args.Channel, args.Name, serviceRights)
	if err != nil {
		return err
	}
	svc := args.Service()
	if !svc.IsValid() {
		return errors.New("publish: no service given")
	}
	if unresolved(svc) {
		call.Go() // the promise may be the answer of another call
		s.p.log.Debug("waiting for a capability passed as a promise to resolve before publishing it", "service", key.name)
		if err := svc.Resolve(ctx); err != nil {
			return fmt.Errorf("publish: the service given is a promise that did not resolve: %w", err)
		}
	}
	if _, daemons := serverOf(svc); daemons || resolvedIntoDaemon(svc) {
		return errors.New("publish: only an object the guest serves itself can be published; pass a service obtained from a peer on in a call instead")
	}
	root, err := s.p.s.export(s.p, s.p, svc, key.name, "published as "+key.name+" on chan:"+key.channel, &publication{key: key, under: ch})
	if err != nil {
		return err
	}
	if err := s.p.s.publish(key, &published{root: root, by: s.p}); err != nil {
		s.p.s.k.Revoke(root, "not published")
		return err
	}
	s.p.log.Info("service published", "channel", key.channel, "service", key.name, "cap", root.ID(), "under", ch.ID())
	return nil
}

// Obtain derives the caller's copy from the service's root: it is tied to
// the publication only, so revoking the caller's own channel handle later
// stops it obtaining more but leaves what it obtained.
func (s *supervisorServer) Obtain(ctx context.Context, call guest.GuestSupervisor_obtain) error {
	args := call.Args()
	key, ch, err := s.channelArgs(args.Channel, args.Name, 0)
	if err != nil {
		return err
	}
	call.Go() // it may wait for the service to be published
	var pub *published
	var child *caps.Cap
	for child == nil {
		pub, err = s.p.s.lookup(ctx, key, ch)
		if errors.Is(err, errHandleRevoked) {
			// The guest may hold another handle on the channel.
			if key, ch, err = s.channelArgs(args.Channel, args.Name, 0); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		child, err = s.p.s.passOn(pub.root, s.p, "obtained as "+key.name+" on chan:"+key.channel)
		if err != nil && !pub.root.Revoked() {
			return err
		} // revoked: withdrawn since lookup, so wait for the next publication
	}
	// Charged to the caller, who asked for it: obtaining a service in a
	// loop uses up the caller's exports, never the publisher's.
	fw, err := newForwarder(s.p, child, s.p, nil)
	if err != nil {
		return err
	}
	res, err := call.AllocResults()
	if err != nil {
		fw.Release()
		return err
	}
	s.p.log.Debug("service obtained", "channel", key.channel, "service", key.name, "cap", child.ID(), "from", pub.by.g.ID())
	return res.SetService(fw)
}

func (s *supervisorServer) HandOver(ctx context.Context, call guest.GuestSupervisor_handOver) error {
	args := call.Args()
	fd := args.Fd()
	c, err := s.p.g.Handle(fd)
	if err != nil {
		return fmt.Errorf("handOver: guest %s has no handle %d", s.p.g.ID(), fd)
	}
	b, i := c.Rights()
	if args.Narrow() {
		b, i = caps.Rights(args.Base()), caps.Rights(args.Inheriting())
	}
	copyOf, err := s.p.s.k.Derive(c, caps.Derivation{
		Holder: s.p.g.Holder(), Edge: caps.EdgeDup, Name: c.Name(), Base: b, Inheriting: i, Origin: "handOver",
	})
	if err != nil {
		return fmt.Errorf("handOver of handle %d (capability %s): the rights asked for are not all held, or it has been revoked (%w)", fd, c.ID(), err)
	}
	h, err := newHandle(s.p, copyOf, s.p, nil)
	if err != nil {
		return err
	}
	res, err := call.AllocResults()
	if err != nil {
		h.Release()
		return err
	}
	info, err := res.NewInfo()
	if err != nil {
		h.Release()
		return err
	}
	if err := fillInfo(info, copyOf, 0); err != nil {
		h.Release()
		return err
	}
	return res.SetHandle(guest.GuestHandle(h))
}

func (s *supervisorServer) Install(ctx context.Context, call guest.GuestSupervisor_install) error {
	hc := call.Args().Handle()
	if unresolved(capnp.Client(hc)) {
		// The handle may be the answer of a call to a peer, which may
		// take as long as the peer likes: meanwhile the guest's other
		// calls to its GuestSupervisor go on.
		call.Go()
	}
	if err := capnp.Client(hc).Resolve(ctx); err != nil {
		return err
	}
	v, ok := serverOf(capnp.Client(hc))
	h, isHandle := v.(*handleServer)
	if !ok || !isHandle {
		return errors.New("install: not a GuestHandle from this daemon")
	}
	if h.p != s.p {
		return errors.New("install: the GuestHandle is held by another guest")
	}
	if t, ok := h.via.revoked(); ok {
		return fmt.Errorf("install: %w", t.cutOff("the GuestHandle", h.c))
	}
	b, i := h.c.Rights()
	c, err := s.p.s.k.Derive(h.c, caps.Derivation{Holder: s.p.g.Holder(), Edge: caps.EdgeDup, Name: h.c.Name(), Base: b, Inheriting: i})
	if err != nil {
		return fmt.Errorf("install: capability %s: %s", h.c.ID(), daemon.WhyNotDerived(h.c, err))
	}
	// Before the guest can use it: revoking a service h was obtained
	// through from now on (or since the check above) revokes it.
	s.p.keepInstalled(h)
	fd, err := s.p.g.Install(c)
	if err != nil {
		s.p.s.k.Close(c)
		return fmt.Errorf("install: guest %s's handle table: %w", s.p.g.ID(), err)
	}
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	res.SetFd(fd)
	info, err := res.NewInfo()
	if err != nil {
		return err
	}
	return fillInfo(info, c, fd)
}
