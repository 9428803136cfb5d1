package abi

import (
	"github.com/sandboxd/sandboxd/abi/argdata"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/api"
)

// capRevocable makes a revocable forwarder of a handle: a new handle with
// the same rights (and fd flags) on the same object, to give away, and a
// revoker handle to keep. No right is needed: a forwarder allows nothing
// the original does not. cap_revoke on the revoker (or on a copy of it,
// fd_dup or sent) revokes the forwarder and everything derived from it,
// in every guest, and leaves the original and the revoker alone.
func capRevocable(g *Guest, m api.Memory, p []uint64) Errno {
	fd, forwarderOut, revokerOut := uint32(p[0]), uint32(p[1]), uint32(p[2])
	if _, e := read(m, forwarderOut, 4); e != 0 {
		return e
	}
	if _, e := read(m, revokerOut, 4); e != 0 {
		return e
	}
	c, e := g.acquire(fd, 0)
	if e != 0 {
		return e
	}
	defer c.Release()
	if e := g.roomFor(2); e != 0 {
		return e
	}
	fwd, rev, err := g.kernel.NewRevoker(c, g.holder, g.holder)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	fwd.SetFlags(c.Flags())
	ffd, err := g.table.Insert(fwd)
	if err != nil {
		g.kernel.Close(fwd)
		g.kernel.Close(rev)
		return caps.ErrnoOf(err)
	}
	rfd, err := g.table.Insert(rev)
	if err != nil {
		_ = g.table.Remove(ffd)
		g.kernel.Close(rev)
		return caps.ErrnoOf(err)
	}
	if e := writeU32(m, forwarderOut, ffd); e != 0 {
		return e
	}
	return writeU32(m, revokerOut, rfd)
}

// capRevoke revokes the forwarder that a revoker handle controls, and
// everything derived from it, in every guest, at once: when the call
// returns, every call on those handles fails with ENOTCAPABLE, blocked
// calls on them have ended, and host objects no one else holds are
// closed. Revoking twice succeeds. A handle that is not a revoker is
// EINVAL.
func capRevoke(g *Guest, m api.Memory, p []uint64) Errno {
	revoker := uint32(p[0])
	c, e := g.acquire(revoker, 0)
	if e != 0 {
		return e
	}
	defer c.Release()
	r, err := g.kernel.RevokeVia(c, "cap_revoke by "+g.ID)
	if err != nil {
		return caps.ErrnoOf(err)
	}
	g.log.Debug("revoked", "root", r.Root, "capabilities", len(r.Revoked), "holders", r.Holders, "took", r.Took)
	return 0
}

// fdDescribe writes the capability behind a handle as an argdata map:
//
//	{"id": "c…", "kind": "dir", "name": "data", "rights_base": int,
//	 "rights_inheriting": int, "edge": "spawn", "parent": "c…" or "",
//	 "origin": grant text or "", "holder": "g1"}
//
// Rights use CloudABI's bit positions. The host object itself (a host
// path, an address) is not described: it is the supervisor's business.
// With buf_len smaller than the encoding it writes nothing but the size
// and returns ENOBUFS, as argdata_get does. A revoked handle is
// ENOTCAPABLE.
func fdDescribe(g *Guest, m api.Memory, p []uint64) Errno {
	fd, buf, bufLen, sizeOut := uint32(p[0]), uint32(p[1]), uint32(p[2]), uint32(p[3])
	c, e := g.acquire(fd, 0)
	if e != 0 {
		return e
	}
	defer c.Release()
	in := c.Info()
	enc := argdata.StringMap(map[string]argdata.Value{
		"id":                argdata.String(string(in.ID)),
		"kind":              argdata.String(in.Kind.String()),
		"name":              argdata.String(in.Name),
		"rights_base":       argdata.Int(int64(in.Base)),
		"rights_inheriting": argdata.Int(int64(in.Inheriting)),
		"edge":              argdata.String(in.Edge.String()),
		"parent":            argdata.String(string(in.Parent)),
		"origin":            argdata.String(in.Origin),
		"holder":            argdata.String(in.Holder),
	}).Encode()
	return sizedCopyOut(m, buf, bufLen, sizeOut, enc)
}
