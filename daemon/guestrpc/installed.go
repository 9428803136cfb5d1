package guestrpc

import (
	"sync"

	"github.com/sandboxd/sandboxd/caps"
)

// installs are the GuestHandles a guest installed that it obtained
// through services (their via): revoking one of those services revokes
// the GuestHandle's capability, and so every handle installed from it.
// Each handle installed from a GuestHandle is derived from its
// capability, and so is every copy of one (a dup, which closing the
// handle it was made from gives to that capability, not past it, or one
// sent on): the GuestHandle's capability stays in the graph while any of
// them is held, even once the guest has released the GuestHandle, so
// revoking it reaches them all. Without this, a guest that installed at
// once what a service gave it would keep it past the revocation of its
// copy of the service, for as long as it runs.
//
// A service that went with its serving guest revokes nothing installed:
// the guest's exit revokes the services it served, but what it gave,
// once installed, is a copy of its handle, which its exit only closes.
// The tie lasts while the installing guest runs: copies it passed on to
// another guest outlive it untied, as the watch ends with it.
type installs struct {
	mu      sync.Mutex
	w       *caps.Waiter // woken when a service one of entries hangs on is revoked
	entries map[*caps.Cap]installed
	ended   bool // the guest has ended: its handles are closed
}

// installed is what one GuestHandle's capability hangs on: its via,
// whose capabilities it keeps open, and the watch of their revocation.
type installed struct {
	via     via
	unwatch func()
}

// keepInstalled ties what p's guest installs from h to the services h
// was obtained through, until h's capability is revoked, or released
// with every handle installed from it, or the guest ends.
func (p *peer) keepInstalled(h *handleServer) {
	if len(h.via) == 0 {
		return
	}
	in := &p.installs
	in.mu.Lock()
	if in.ended {
		in.mu.Unlock()
		return
	}
	if _, ok := in.entries[h.c]; ok {
		in.mu.Unlock()
		return
	}
	if in.entries == nil {
		in.entries = make(map[*caps.Cap]installed)
		in.w = caps.NewWaiter()
		go p.watchInstalled(in.w)
	}
	// h holds its via's anchors until it is shut down, which cannot be
	// before the install that calls this has returned.
	h.via.hold()
	in.entries[h.c] = installed{via: h.via, unwatch: h.via.watch(in.w)}
	in.mu.Unlock()
	// Forget what is gone, so that installing and closing in a loop
	// keeps no more than the handles held.
	p.sweepInstalled()
}

// watchInstalled revokes what was installed from a GuestHandle once a
// service it was obtained through is revoked, until the guest ends.
func (p *peer) watchInstalled(w *caps.Waiter) {
	for {
		select {
		case <-w.C():
			p.sweepInstalled()
		case <-p.g.Done():
			p.endInstalled()
			return
		}
	}
}

// sweepInstalled revokes each GuestHandle's capability a service of
// whose via has been revoked, and forgets those revoked or gone from the
// graph.
func (p *peer) sweepInstalled() {
	type cut struct {
		c  *caps.Cap
		by through
	}
	var cuts []cut
	var done []installed
	in := &p.installs
	in.mu.Lock()
	var gone []through
	for c, e := range in.entries {
		t, revoked := e.via.cutBy()
		_, tracked := p.s.k.Lookup(c.ID())
		if !revoked && tracked && !c.Revoked() {
			if t, ok := e.via.revoked(); ok {
				gone = append(gone, t)
			}
			continue
		}
		if revoked {
			cuts = append(cuts, cut{c: c, by: t})
		}
		delete(in.entries, c)
		done = append(done, e)
	}
	in.mu.Unlock()
	for _, x := range cuts {
		p.s.k.Revoke(x.c, x.by.cutOff("the GuestHandle", x.c).Error())
	}
	for _, t := range gone {
		p.log.Debug(serviceGoneKeepsInstalled, "service", t.c.Name(), "cap", t.c.ID())
	}
	for _, e := range done {
		e.unwatch()
		e.via.release()
	}
}

// endInstalled forgets every entry once the guest has ended.
func (p *peer) endInstalled() {
	in := &p.installs
	in.mu.Lock()
	in.ended = true
	entries := in.entries
	in.entries = nil
	in.mu.Unlock()
	for _, e := range entries {
		e.unwatch()
		e.via.release()
	}
}

// serviceGoneKeepsInstalled is logged when a service GuestHandles were
// obtained through has gone with its serving guest, which revokes
// nothing installed from them.
const serviceGoneKeepsInstalled = "a service GuestHandles were obtained through has gone with its guest: the handles installed from them stay"

// cutBy returns the first of v's services that has been revoked, not
// only gone with its serving guest: a guest's exit revokes the services
// it served, but a handle it gave, once installed, is a copy of its
// handle, which its exit only closes.
func (v via) cutBy() (through, bool) {
	for _, t := range v {
		if t.c.Revoked() && t.res.ended.Load() == nil {
			return t, true
		}
	}
	return through{}, false
}
