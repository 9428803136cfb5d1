package daemon

import (
	"fmt"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/caps"
)

// maxRevokedIDs is how many revoked capability ids the supervisor
// remembers, so that a second revoke of one can say it was revoked rather
// than that it never existed (the kernel forgets a revoked capability once
// nothing holds it).
const maxRevokedIDs = 4096

// revokedIDs remembers the most recently revoked ids, oldest dropped first.
type revokedIDs struct {
	mu    sync.Mutex
	notes map[caps.ID]RevokedNote
	order []caps.ID
}

// RevokedNote is what the supervisor remembers of a revocation.
type RevokedNote struct {
	Root    caps.ID // the capability that was revoked (the id itself, or an ancestor)
	Reason  string
	At      time.Time
	Holders []string // who held what the revocation cut off
}

func (r *revokedIDs) add(rc caps.Receipt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.notes == nil {
		r.notes = make(map[caps.ID]RevokedNote)
	}
	for _, id := range rc.Revoked {
		if _, ok := r.notes[id]; !ok {
			r.order = append(r.order, id)
		}
		r.notes[id] = RevokedNote{Root: rc.Root, Reason: rc.Reason, At: rc.At, Holders: rc.Holders}
	}
	for len(r.order) > maxRevokedIDs {
		delete(r.notes, r.order[0])
		r.order = r.order[1:]
	}
}

// WasRevoked reports whether the capability with id was revoked through
// this supervisor (Revoke, or a lease) recently enough to be remembered.
func (s *Supervisor) WasRevoked(id caps.ID) (RevokedNote, bool) {
	s.revoked.mu.Lock()
	defer s.revoked.mu.Unlock()
	n, ok := s.revoked.notes[id]
	return n, ok
}

// Err says that id was revoked already, and when and why.
func (n RevokedNote) Err(id caps.ID) error {
	how := "revoked"
	if n.Root != id {
		how = "revoked with " + string(n.Root)
	}
	return fmt.Errorf("revoke: capability %s was already %s at %s (%s): nothing is left to cut off", id, how, n.At.Format(time.RFC3339), n.Reason)
}
