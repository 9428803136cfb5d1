package server

import (
	"fmt"
	"strings"
)

// maxGuestName is the longest guest name (launch --name), in bytes.
const maxGuestName = 63

// idDigits is how many hex digits a guest id has after its "g-"
// (daemon.Supervisor makes them).
const idDigits = 12

// checkGuestName reports what is wrong with a guest name, or nil: 1 to 63
// ASCII letters, digits and "-_.", starting with a letter or digit, not
// "g-…", which is how ids begin, and not what reads as the start of an id
// without its "g-" (lowercase hex, at most idDigits): the CLI takes such
// a prefix for the guest whose id it starts, and a name answers first, so
// a user could otherwise name a guest after the start of another user's
// id and have root's `sandboxd kill PREFIX` reach it instead.
func checkGuestName(n string) error {
	if n == "" || len(n) > maxGuestName {
		return fmt.Errorf("guest name %q: want 1 to %d characters", n, maxGuestName)
	}
	if strings.HasPrefix(n, "g-") {
		return fmt.Errorf("guest name %q: names may not begin with g-, as guest ids do", n)
	}
	if len(n) <= idDigits && strings.Trim(n, "0123456789abcdef") == "" {
		return fmt.Errorf("guest name %q reads as the start of a guest id without its g- (lowercase hex), which is how commands take it: add a letter past f, an upper-case letter, or a dash", n)
	}
	for i, r := range n {
		ok := r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && strings.ContainsRune("-_.", r))
		if !ok {
			return fmt.Errorf("guest name %q: want ASCII letters, digits and - _ ., starting with a letter or digit", n)
		}
	}
	return nil
}

// reserveName claims name for a guest c is launching; "" claims nothing.
// A name is the daemon's while a guest listed by it carries it. Names are
// one namespace for every user, but the guest that has a name is named
// only to a client that may see it.
func (c *serverConn) reserveName(name string) error {
	if name == "" {
		return nil
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, taken := s.names[name]; taken {
		if id == "" {
			return fmt.Errorf("guest name %q is being given to another guest launched at the same time: choose another", name)
		}
		r, ok := s.records[id]
		if !ok || !c.auth.OwnsGuest(r.g) {
			// Neither the id nor how to free the name: the caller may not
			// see that guest, let alone kill or forget it.
			return fmt.Errorf("guest name %q is taken by another user's guest: choose another", name)
		}
		return nameTaken(name, r)
	}
	s.names[name] = "" // the id comes with nameGuest
	return nil
}

// nameTaken is the refusal of name, which r's guest has, to a caller that
// may act on it: a name is freed when the daemon forgets its guest
// (sandboxd rm, Supervisor.forget), which it does only of one that has
// ended.
func nameTaken(name string, r *guestRecord) error {
	id := r.g.ID()
	select {
	case <-r.g.Done():
		return fmt.Errorf("guest name %q is taken by %s, which has ended: choose another, or free the name with `sandboxd rm %s`", name, id, id)
	default:
		return fmt.Errorf("guest name %q is taken by %s, which is running: choose another, or free the name with `sandboxd kill %s`, then `sandboxd rm %s`", name, id, id, id)
	}
}

// nameGuest binds a reserved name to the launched guest's id.
func (s *Server) nameGuest(name, id string) {
	if name == "" {
		return
	}
	s.mu.Lock()
	s.names[name] = id
	s.mu.Unlock()
}

// releaseName frees a name whose launch failed. Called without s.mu.
func (s *Server) releaseName(name string) {
	if name == "" {
		return
	}
	s.mu.Lock()
	delete(s.names, name)
	s.mu.Unlock()
}

// byName returns the id of the guest called name. Called with s.mu held.
func (s *Server) byNameLocked(name string) (string, bool) {
	id, ok := s.names[name]
	return id, ok && id != ""
}
