package server

import (
	"fmt"
	"slices"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
)

// Authority is what one principal may do through the control API. The
// server builds one for each connection when it accepts it, from the
// principal the kernel reports for the peer (SO_PEERCRED), and asks it
// before acting on any guest or capability a request names by id, or on a
// host path a grant names. It is the one place these decisions are made:
// the grant policies (which grants, modules and limits a principal may
// use) will be applied here, as further rules of the same type.
//
// Its rules are:
//
//   - root may act on every guest and capability (kill, revoke, list),
//     policy or not: managing the daemon is the operator's;
//   - any other principal may act on the guests it launched, and on a
//     capability that is, or descends from, one held by such a guest (or
//     a guest it spawned) or by one of its own connections, open or
//     since closed: what it granted stays its to revoke;
//   - what a grant may name (MayName): without a policy, only root and
//     the daemon's own user may name host paths, sockets, listeners and
//     channels, since the daemon opens them with its own authority; with
//     a policy loaded, every principal may ask and the policy decides
//     (daemon.Supervisor.SetPolicy), root included.
//
// Holding a Guest or Cap object the daemon handed out is authority of its
// own, checked by nothing here: whoever holds one may use it.
type Authority struct {
	principal daemon.Principal
	root      bool // acts on every guest and capability
	hostPaths bool // names host paths in grants
}

// NewAuthority returns the authority of principal p on a daemon running as
// uid daemonUID.
func NewAuthority(p daemon.Principal, daemonUID uint32) *Authority {
	root := p.UID == 0
	return &Authority{principal: p, root: root, hostPaths: root || p.UID == daemonUID}
}

// ownerOf reports the uid holder h acts for, from its owner at the top of
// its spawn tree (daemon.OwnerUID): the principal that launched a guest
// (or the guest that spawned it), a connection's principal. This holds
// once the guest has ended and been forgotten, or the connection has
// closed: a capability one of them minted or was given keeps descendants
// that are still its principal's to revoke. A holder of no principal
// (none the daemon made) is nobody's.
func ownerOf(h *caps.Holder) (uint32, bool) {
	if h == nil {
		return 0, false
	}
	return daemon.OwnerUID(h.Top().Owner)
}

// Principal is who the authority is for.
func (a *Authority) Principal() daemon.Principal { return a.principal }

// IsRoot reports whether the principal is the superuser, who may act on
// every guest and capability.
func (a *Authority) IsRoot() bool { return a.root }

// AllowHostPaths reports whether the principal may name host paths in the
// grants it gives when no policy is loaded.
func (a *Authority) AllowHostPaths() bool { return a.hostPaths }

// MayName returns why the principal may not ask for gr, or nil. With a
// policy loaded (policy) every grant may be asked for: the supervisor
// decides it by the policy. Without one, grants of what the daemon opens
// with its own authority (host paths, sockets, listeners, channels) are
// for root and the daemon's own user only; cap: grants are checked by
// ownership (OwnsCap), not here.
func (a *Authority) MayName(gr daemon.Grant, policy bool) error {
	if policy || a.hostPaths || gr.Kind == daemon.GrantCap {
		return nil
	}
	what := map[daemon.GrantKind]string{daemon.GrantDir: "host paths", daemon.GrantFile: "host paths", daemon.GrantSock: "sockets", daemon.GrantListen: "listeners", daemon.GrantChan: "channels"}[gr.Kind]
	return fmt.Errorf("%s may not grant %s: without a policy the daemon opens them with its own authority, so only that user and root may; an operator can allow it in a policy (sandboxd serve --policy DIR, docs/POLICY.md)", a.principal, what)
}

// MayAudit reports whether the principal may read the delegation graph:
// root and the daemon's own user, who can read the daemon's audit log in
// its state directory anyway (the daemon's user, not root, still lists and
// acts on its own guests only: OwnsGuest).
func (a *Authority) MayAudit() bool { return a.hostPaths }

// OwnsGuest reports whether the principal may act on g by its id.
func (a *Authority) OwnsGuest(g *daemon.Guest) bool {
	return a.root || g.Principal().UID == a.principal.UID
}

// OwnsCap reports whether the principal may act on capability x by its id:
// x or one of its ancestors is held by a guest the principal launched (or
// one such a guest spawned) or by a connection of the principal, whether
// the guest still runs or the connection is still open or not.
func (a *Authority) OwnsCap(x *caps.Cap) bool {
	if a.root {
		return true
	}
	for ; x != nil; x = x.Parent() {
		if uid, ok := ownerOf(x.Holder()); ok && uid == a.principal.UID {
			return true
		}
	}
	return false
}

// SeesHolder reports whether a receipt given to the principal may name a
// holder that acted for uid (ok false: for no principal the daemon knows):
// root and the daemon's own user, who may read the audit log anyway
// (MayAudit), see every holder; any other principal, only its own guests
// and connections. A holder it may not see is counted, not named, so that
// revoking a capability shared with other users does not tell the ids of
// their guests.
func (a *Authority) SeesHolder(uid uint32, ok bool) bool {
	return a.hostPaths || ok && uid == a.principal.UID
}

// HearsOf reports whether the principal may hear about a revocation the
// daemon remembers, such as that a capability of its was revoked, when
// and why: whether one of the holders it cut off acted for the principal
// (n.UIDs, recorded when it was revoked, so that this holds after the
// holders are gone: a guest forgotten by sandboxd rm, a connection
// closed).
func (a *Authority) HearsOf(n daemon.RevokedNote) bool {
	return a.root || slices.Contains(n.UIDs, a.principal.UID)
}

// holderOf returns the id of x's holder as the principal may be told it:
// the id, when the holder is one it may see (SeesHolder: its own guests,
// and guests they spawned, and its own connections; root and the
// daemon's user, every one), and "" otherwise, as for a capability in
// flight, which has none. A capability the principal reaches because it
// descends from one of its own, or by its token, does not tell it which
// guest or connection of another user holds it.
func (a *Authority) holderOf(x *caps.Cap) string {
	h := x.Holder()
	if h == nil {
		return ""
	}
	if a.hostPaths {
		return h.ID
	}
	uid, ok := ownerOf(h)
	if !a.SeesHolder(uid, ok) {
		return ""
	}
	return h.ID
}

// shownReceipt is a receipt as one principal is shown it: Holders only
// those it may see (SeesHolder), others the number left out; Revoked
// the capability revoked and, of what it cut off, only what those holders
// held.
type shownReceipt struct {
	caps.Receipt
	others int
}

// receiptFor returns rc as the principal may be shown it: of the
// capabilities it cut off, those its shown holders held when it did
// (rc.HeldBy), whether or not they have been closed and forgotten since;
// one in flight on a channel, which no holder held, is left out for a
// principal that does not see every holder.
func (a *Authority) receiptFor(rc caps.Receipt) shownReceipt {
	var shown []string
	sees := make([]bool, len(rc.Holders))
	for i, h := range rc.Holders {
		var uid uint32
		ok := false
		if i < len(rc.Owners) {
			uid, ok = daemon.OwnerUID(rc.Owners[i])
		}
		if sees[i] = a.SeesHolder(uid, ok); sees[i] {
			shown = append(shown, h)
		}
	}
	others := len(rc.Holders) - len(shown)
	rc.Holders = shown
	if !a.hostPaths {
		var revoked []caps.ID
		for j, id := range rc.Revoked {
			if id == rc.Root || j < len(rc.HeldBy) && rc.HeldBy[j] >= 0 && rc.HeldBy[j] < len(sees) && sees[rc.HeldBy[j]] {
				revoked = append(revoked, id)
			}
		}
		rc.Revoked = revoked
	}
	return shownReceipt{Receipt: rc, others: others}
}
