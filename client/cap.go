package client

import (
	"context"

	"github.com/sandboxd/sandboxd/schemas"
)

// Cap is a capability held through this connection. What holding it
// allows is exactly its rights on its resource: Restrict derives a
// narrower copy, Delegate passes a copy to a guest, Revoke ends it and
// every copy derived from it. None of these can widen a right.
//
// It is safe for concurrent use.
type Cap struct {
	c     schemas.Cap
	id    string
	token string
	// cl is the Client it is held through: it settles the calls given up
	// when their context ended (Client.await).
	cl *Client
}

func newCap(cl *Client, c schemas.Cap, info CapInfo, token string) *Cap {
	return &Cap{c: c, id: info.ID, token: token, cl: cl}
}

// ID is the capability's public id.
func (c *Cap) ID() string { return c.id }

// Token is the capability's secret, hex encoded, if this client minted or
// restricted it; "" otherwise. Whoever has the id and the token can use
// the capability (Client.CapByToken): share it only with intent.
func (c *Cap) Token() string { return c.token }

// Release gives up this reference. A capability minted or restricted by
// this client is closed when its last reference goes; copies already
// delegated to guests live on until revoked.
func (c *Cap) Release() { c.c.Release() }

// Info returns the capability's current public description.
func (c *Cap) Info(ctx context.Context) (CapInfo, error) {
	f, rel := c.c.Info(ctx, nil)
	if err := c.cl.await(ctx, "cap info "+c.id, answer, f.Future, rel); err != nil {
		return CapInfo{}, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return CapInfo{}, callError("cap info "+c.id, err)
	}
	i, err := r.Info()
	if err != nil {
		return CapInfo{}, callError("cap info "+c.id, err)
	}
	return capInfoFrom(i), nil
}

// Restrict derives a copy held by this client with the given base and
// inheriting rights (CloudABI bit positions, as in package caps), which
// must be a subset of this capability's.
func (c *Cap) Restrict(ctx context.Context, base, inheriting uint64) (*Cap, error) {
	f, rel := c.c.Restrict(ctx, func(p schemas.Cap_restrict_Params) error {
		p.SetBase(base)
		p.SetInheriting(inheriting)
		return nil
	})
	if err := c.cl.await(ctx, "restrict "+c.id, answer, f.Future, rel); err != nil {
		return nil, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return nil, callError("restrict "+c.id, err)
	}
	info, err := r.Info()
	if err != nil {
		return nil, callError("restrict "+c.id, err)
	}
	tok, err := r.Token()
	if err != nil {
		return nil, callError("restrict "+c.id, err)
	}
	return newCap(c.cl, r.Cap().AddRef(), capInfoFrom(info), tok), nil
}

// Delegate passes a copy of the capability, with the same rights, to a
// running guest under name ("" keeps its name). The guest receives it on
// its supervisor channel. Revoking c afterwards revokes the guest's copy
// too. It returns the copy.
func (c *Cap) Delegate(ctx context.Context, g *Guest, name string) (CapInfo, error) {
	f, rel := c.c.Delegate(ctx, func(p schemas.Cap_delegate_Params) error {
		if err := p.SetGuest(g.g.AddRef()); err != nil {
			return err
		}
		return p.SetName(name)
	})
	if err := c.cl.await(ctx, "delegate "+c.id+" to "+g.id, answer, f.Future, rel); err != nil {
		return CapInfo{}, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return CapInfo{}, callError("delegate "+c.id+" to "+g.id, err)
	}
	info, err := r.Info()
	if err != nil {
		return CapInfo{}, callError("delegate "+c.id+" to "+g.id, err)
	}
	return capInfoFrom(info), nil
}

// Revoke revokes the capability and everything derived from it, in every
// holder. Every later call through c but Info fails (Info still describes
// it, revoked).
func (c *Cap) Revoke(ctx context.Context, reason string) (Receipt, error) {
	f, rel := c.c.Revoke(ctx, func(p schemas.Cap_revoke_Params) error { return p.SetReason(reason) })
	if err := c.cl.await(ctx, "revoke "+c.id, answer, f.Future, rel); err != nil {
		return Receipt{}, err
	}
	defer rel()
	r, err := f.Struct()
	if err != nil {
		return Receipt{}, callError("revoke "+c.id, err)
	}
	rc, err := r.Receipt()
	if err != nil {
		return Receipt{}, callError("revoke "+c.id, err)
	}
	return receiptFrom(rc), nil
}
