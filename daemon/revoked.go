package daemon

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/caps"
)

// maxRevokedIDs is how many revoked capability ids the supervisor
// remembers, so that a second revoke of one can say it was revoked rather
// than that it never existed (the kernel forgets a revoked capability once
// nothing holds it).
const maxRevokedIDs = 4096

// revokedIDs remembers the most recent revocations, up to maxRevokedIDs
// ids in all, oldest dropped first. A revocation is kept whole, as its
// receipt's list: remembering one costs no work for each id it cut off
// (a subtree of 10,000 is one revocation), and the ids are only looked
// through when a revoke finds nothing to revoke (WasRevoked).
type revokedIDs struct {
	mu    sync.Mutex
	notes []revokedNote // oldest first
	n     int           // ids over notes
}

type revokedNote struct {
	RevokedNote
	ids []caps.ID // the receipt's, root first
}

// RevokedNote is what the supervisor remembers of a revocation.
type RevokedNote struct {
	Root    caps.ID // the capability that was revoked (the id itself, or an ancestor)
	Reason  string
	At      time.Time
	Holders []string // who held what the revocation cut off
	// UIDs are the users the holders acted for (who launched a guest, a
	// client's user), as they were when it was revoked: whom the daemon
	// may tell about it once the holders are gone.
	UIDs []uint32
}

// ownerUIDs are the distinct uids of the principals behind owners (a
// receipt's Owners).
func ownerUIDs(owners []any) []uint32 {
	var uids []uint32
	for _, o := range owners {
		if uid, ok := OwnerUID(o); ok && !slices.Contains(uids, uid) {
			uids = append(uids, uid)
		}
	}
	return uids
}

// OwnerUID returns the uid of the principal a holder acted for, from its
// owner as a receipt's Owners give it (a guest: who launched it; a
// client's connection: its user), or false for an owner of no principal.
func OwnerUID(owner any) (uint32, bool) {
	switch o := owner.(type) {
	case *guestOwner:
		return o.principal.UID, true
	case Principal:
		return o.UID, true
	}
	return 0, false
}

// add remembers rc. Of a revocation larger than maxRevokedIDs it keeps the
// first ids of the receipt: the root, then the others in the receipt's
// (depth-first) order. A receipt that revoked nothing is not kept.
func (r *revokedIDs) add(rc caps.Receipt) {
	if len(rc.Revoked) == 0 {
		return
	}
	ids := slices.Clone(rc.Revoked[:min(len(rc.Revoked), maxRevokedIDs)])
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, revokedNote{
		RevokedNote: RevokedNote{Root: rc.Root, Reason: rc.Reason, At: rc.At, Holders: rc.Holders, UIDs: ownerUIDs(rc.Owners)},
		ids:         ids,
	})
	r.n += len(ids)
	for r.n > maxRevokedIDs {
		oldest := &r.notes[0]
		if excess := r.n - maxRevokedIDs; excess < len(oldest.ids) {
			keep := len(oldest.ids) - excess
			clear(oldest.ids[keep:]) // let the dropped ids' strings go
			oldest.ids = oldest.ids[:keep]
			r.n -= excess
			break
		}
		r.n -= len(oldest.ids)
		*oldest = revokedNote{}
		r.notes = r.notes[1:]
	}
}

// find returns the newest remembered revocation that cut off id.
func (r *revokedIDs) find(id caps.ID) (RevokedNote, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.notes) - 1; i >= 0; i-- {
		if slices.Contains(r.notes[i].ids, id) {
			return r.notes[i].RevokedNote, true
		}
	}
	return RevokedNote{}, false
}

// WasRevoked reports whether the capability with id was revoked through
// this supervisor (Revoke, or a lease) recently enough to be remembered.
func (s *Supervisor) WasRevoked(id caps.ID) (RevokedNote, bool) { return s.revoked.find(id) }

// Err says that id was revoked already, and when and why.
func (n RevokedNote) Err(id caps.ID) error {
	how := "revoked"
	if n.Root != id {
		how = "revoked with " + string(n.Root)
	}
	return fmt.Errorf("revoke: capability %s was already %s at %s (%s): nothing is left to cut off", id, how, n.At.Format(time.RFC3339), n.Reason)
}
