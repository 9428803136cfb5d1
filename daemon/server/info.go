package server

import (
	"capnproto.org/go/capnp/v3"
	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/schemas"
)

// The fill functions write the daemon's records into the API's structs.
// They are the only place that knows both shapes.

func fillPrincipal(dst schemas.Principal, p daemon.Principal, pid int32) error {
	dst.SetUid(p.UID)
	dst.SetGid(p.GID)
	dst.SetPid(pid)
	return dst.SetName(p.Name)
}

func fillExitStatus(dst schemas.ExitStatus, st abi.ExitStatus) error {
	dst.SetCode(st.Code)
	dst.SetSignal(st.Signal)
	if st.Trap != nil {
		if err := dst.SetTrap(st.Trap.Error()); err != nil {
			return err
		}
	}
	return dst.SetKilled(st.Killed)
}

func fillGuestInfo(dst schemas.GuestInfo, r *guestRecord) error {
	g := r.g
	m := g.Module()
	if err := dst.SetId(g.ID()); err != nil {
		return err
	}
	if err := dst.SetName(m.Name); err != nil {
		return err
	}
	if err := dst.SetSha256(m.HashString()); err != nil {
		return err
	}
	p, err := dst.NewPrincipal()
	if err != nil {
		return err
	}
	if err := fillPrincipal(p, g.Principal(), r.pid); err != nil {
		return err
	}
	running, st := g.Status()
	dst.SetRunning(running)
	dst.SetStarted(g.Started().UnixNano())
	if !running {
		s, err := dst.NewStatus()
		if err != nil {
			return err
		}
		if err := fillExitStatus(s, st); err != nil {
			return err
		}
		dst.SetEnded(g.Ended().UnixNano())
	}
	if err := setTexts(dst.NewArgs, r.args); err != nil {
		return err
	}
	if err := setTexts(dst.NewLabels, g.Labels()); err != nil {
		return err
	}
	if err := setTexts(dst.NewGrants, g.Grants()); err != nil {
		return err
	}
	if err := setTexts(dst.NewDeny, g.Deny()); err != nil {
		return err
	}
	if err := dst.SetGuestName(r.name); err != nil {
		return err
	}
	lim := g.Limits()
	dst.SetMemoryLimit(lim.MemoryLimit)
	dst.SetTimeout(int64(lim.Timeout))
	dst.SetMaxFds(uint32(lim.MaxFDs))
	dst.SetMaxStack(lim.MaxStack)
	dst.SetDetached(r.detached)
	dst.SetHandles(uint32(len(g.Handles())))
	return nil
}

// fillGuestSummary writes what ps shows of g.
func fillGuestSummary(dst schemas.GuestSummary, g *daemon.Guest, name string) error {
	if err := dst.SetId(g.ID()); err != nil {
		return err
	}
	if err := dst.SetName(g.Module().Name); err != nil {
		return err
	}
	if err := dst.SetGuestName(name); err != nil {
		return err
	}
	p := g.Principal()
	dst.SetUid(p.UID)
	if err := dst.SetUser(p.Name); err != nil {
		return err
	}
	running, st := g.Status()
	dst.SetRunning(running)
	dst.SetStarted(g.Started().UnixNano())
	if !running {
		es, err := dst.NewStatus()
		if err != nil {
			return err
		}
		if err := fillExitStatus(es, st); err != nil {
			return err
		}
	}
	dst.SetHandles(uint32(g.HandleCount()))
	labels := g.Labels()
	if len(labels) == 0 {
		return nil
	}
	return setTexts(dst.NewLabels, labels)
}

// setTexts fills a new text list, made by alloc, with texts.
func setTexts(alloc func(int32) (capnp.TextList, error), texts []string) error {
	l, err := alloc(int32(len(texts)))
	if err != nil {
		return err
	}
	for i, t := range texts {
		if err := l.Set(i, t); err != nil {
			return err
		}
	}
	return nil
}

// fillCapInfo describes c to a client of authority a, naming its holder
// only if a may see it (Authority.holderOf).
func fillCapInfo(dst schemas.CapInfo, c *caps.Cap, a *Authority) error {
	in := c.Info()
	in.Holder = a.holderOf(c)
	for _, f := range []struct {
		set func(string) error
		v   string
	}{
		{dst.SetId, string(in.ID)}, {dst.SetKind, in.Kind.String()}, {dst.SetName, in.Name},
		{dst.SetHolder, in.Holder}, {dst.SetRights, in.Base.String()},
		{dst.SetInheritingRights, in.Inheriting.String()}, {dst.SetParent, string(in.Parent)},
		{dst.SetEdge, in.Edge.String()}, {dst.SetOrigin, in.Origin}, {dst.SetResource, in.Resource},
		{dst.SetBy, audit.DescribeBy(in.By)},
	} {
		if err := f.set(f.v); err != nil {
			return err
		}
	}
	if in.Parent != "" {
		if err := dst.SetRemoved(in.Removed.String()); err != nil {
			return err
		}
	}
	dst.SetBase(uint64(in.Base))
	dst.SetInheriting(uint64(in.Inheriting))
	dst.SetCreated(in.Created.UnixNano())
	dst.SetRevoked(in.Revoked)
	dst.SetClosed(in.Closed)
	if !in.Expires.IsZero() {
		dst.SetExpires(in.Expires.UnixNano())
	}
	return nil
}

func fillHandle(dst schemas.Handle, fd uint32, c *caps.Cap, a *Authority) error {
	dst.SetFd(fd)
	info, err := dst.NewInfo()
	if err != nil {
		return err
	}
	return fillCapInfo(info, c, a)
}

func fillReceipt(dst schemas.Receipt, r shownReceipt) error {
	if err := dst.SetRoot(string(r.Root)); err != nil {
		return err
	}
	if err := dst.SetReason(r.Reason); err != nil {
		return err
	}
	l, err := dst.NewRevoked(int32(len(r.Revoked)))
	if err != nil {
		return err
	}
	for i, id := range r.Revoked {
		if err := l.Set(i, string(id)); err != nil {
			return err
		}
	}
	h, err := dst.NewHolders(int32(len(r.Holders)))
	if err != nil {
		return err
	}
	for i, id := range r.Holders {
		if err := h.Set(i, id); err != nil {
			return err
		}
	}
	dst.SetOthers(uint32(r.others))
	dst.SetAt(r.At.UnixNano())
	dst.SetTook(int64(r.Took))
	return nil
}
