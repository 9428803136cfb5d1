package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"capnproto.org/go/capnp/v3"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/schemas"
)

// maxReasonLen bounds the reason a client gives a revocation or a kill.
const maxReasonLen = 256

// clipReason cuts reason to at most maxReasonLen bytes, at the start of a
// character: a reason is printed and recorded as text.
func clipReason(reason string) string {
	if len(reason) <= maxReasonLen {
		return reason
	}
	cut := maxReasonLen
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}

// supervisorServer is the bootstrap object of one connection.
type supervisorServer struct {
	c *serverConn
}

func (s *supervisorServer) Whoami(ctx context.Context, call schemas.Supervisor_whoami) error {
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	p, err := res.NewPrincipal()
	if err != nil {
		return err
	}
	return fillPrincipal(p, s.c.principal, s.c.pid)
}

// parseGrant parses grant text from a client and applies the rules of the
// control API on top of the grammar: the principal must have the
// authority to name what the grant names (Authority.MayName), and host
// paths must be absolute (the daemon's working directory is not the
// client's; a bare word is the name of a policy resource).
func (c *serverConn) parseGrant(text string) (daemon.Grant, error) {
	gr, err := daemon.ParseGrant(text)
	if err != nil {
		return daemon.Grant{}, &grantRefusal{err}
	}
	// Whether the principal may name it at all comes first: one who may
	// not is told so, not how to write a path it would be refused anyway.
	if err := c.auth.MayName(gr, c.s.sup.Policy() != nil); err != nil {
		return daemon.Grant{}, &daemon.GrantError{Grant: gr, Err: err}
	}
	if gr.Kind == daemon.GrantDir || gr.Kind == daemon.GrantFile {
		if err := c.checkHostPath(gr); err != nil {
			return daemon.Grant{}, &daemon.GrantError{Grant: gr, Err: err}
		}
	}
	if err := checkSocketPath(gr); err != nil {
		return daemon.Grant{}, &daemon.GrantError{Grant: gr, Err: err}
	}
	return gr, nil
}

// checkHostPath checks the source of a dir or file grant: an absolute
// host path, or a bare word naming a resource of the policy in force.
func (c *serverConn) checkHostPath(gr daemon.Grant) error {
	if filepath.IsAbs(gr.Source) {
		return nil
	}
	if !daemon.IsResourceName(gr.Source) {
		return errors.New("host paths sent to the daemon must be absolute: the daemon does not share your working directory")
	}
	p := c.s.sup.Policy()
	here := fmt.Sprintf("for %s in your working directory write %s:./%s (sandboxd launch makes it absolute), or give an absolute path", gr.Source, gr.Kind, gr.Source)
	if p == nil {
		return fmt.Errorf("%s:%s names a %s resource of the daemon's policy, and no policy is loaded: %s", gr.Kind, gr.Source, gr.Kind, here)
	}
	if _, ok := p.Resource(gr.Kind.String(), gr.Source); !ok {
		return fmt.Errorf("the daemon's policy declares no %s resource named %q: use a declared name; %s", gr.Kind, gr.Source, here)
	}
	return nil
}

// checkSocketPath refuses a sock or listen grant whose inline unix socket
// path is relative: the daemon does not share the client's working
// directory. (An abstract address, @NAME, has no directory.)
func checkSocketPath(gr daemon.Grant) error {
	path, ok := gr.SocketFile()
	if !ok || filepath.IsAbs(path) {
		return nil
	}
	return fmt.Errorf("unix socket paths sent to the daemon must be absolute (%s is not): the daemon does not share your working directory", path)
}

func (s *supervisorServer) List(ctx context.Context, call schemas.Supervisor_list) error {
	var recs []*guestRecord
	for _, g := range s.c.s.sup.Guests() {
		if !s.c.auth.OwnsGuest(g) {
			continue
		}
		if r, ok := s.c.s.record(g.ID()); ok {
			recs = append(recs, r)
		}
	}
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	l, err := res.NewGuests(int32(len(recs)))
	if err != nil {
		return err
	}
	for i, r := range recs {
		if err := fillGuestInfo(l.At(i), r); err != nil {
			return err
		}
	}
	return nil
}

// Pages of listPage: its default and largest number of guests.
const (
	defaultListPage = 1024
	maxListPage     = 16384
)

func (s *supervisorServer) ListPage(ctx context.Context, call schemas.Supervisor_listPage) error {
	a := call.Args()
	afterText, err := a.After()
	if err != nil {
		return err
	}
	after, err := parseGuestCursor(afterText)
	if err != nil {
		return err
	}
	limit := int(a.Limit())
	if limit == 0 {
		limit = defaultListPage
	}
	limit = min(limit, maxListPage)
	all := a.All()
	page, more := s.c.s.sup.GuestsAfter(after, limit, func(g *daemon.Guest) bool {
		if !s.c.auth.OwnsGuest(g) {
			return false
		}
		if all {
			return true
		}
		running, _ := g.Status()
		return running
	})
	names := s.c.s.guestNames(page)
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	l, err := res.NewGuests(int32(len(page)))
	if err != nil {
		return err
	}
	for i, g := range page {
		if err := fillGuestSummary(l.At(i), g, names[i]); err != nil {
			return err
		}
	}
	if more && len(page) > 0 {
		return res.SetNext(formatGuestCursor(page[len(page)-1].Cursor()))
	}
	return nil
}

// formatGuestCursor and parseGuestCursor write and read the cursor of
// listPage: the start time in unix nanoseconds and the id of the last
// guest of a page, "NANOS/ID".
func formatGuestCursor(c daemon.GuestCursor) string {
	return strconv.FormatInt(c.Started.UnixNano(), 10) + "/" + c.ID
}

func parseGuestCursor(text string) (daemon.GuestCursor, error) {
	if text == "" {
		return daemon.GuestCursor{}, nil
	}
	ns, id, ok := strings.Cut(text, "/")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return daemon.GuestCursor{}, fmt.Errorf("%scursor %q is not one listPage returned: pass the next of the previous page, or \"\" to start over", reasonRequest, text)
	}
	return daemon.GuestCursor{Started: time.Unix(0, n), ID: id}, nil
}

// guestNames returns the launch names of guests, "" where none, under one
// hold of the server's lock.
func (s *Server) guestNames(gs []*daemon.Guest) []string {
	names := make([]string, len(gs))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, g := range gs {
		if r := s.records[g.ID()]; r != nil {
			names[i] = r.name
		}
	}
	return names
}

// lookupGuest finds a guest the principal may act on. A guest it may not
// reach is reported exactly like one that does not exist.
func (c *serverConn) lookupGuest(id string) (*guestRecord, error) {
	r, ok := c.s.record(id)
	if !ok || !c.auth.OwnsGuest(r.g) {
		return nil, fmt.Errorf("no guest %s for %s: list guests with `sandboxd ps`", id, c.principal)
	}
	return r, nil
}

func (s *supervisorServer) Guest(ctx context.Context, call schemas.Supervisor_guest) error {
	id, err := call.Args().Id()
	if err != nil {
		return err
	}
	r, err := s.c.lookupGuest(id)
	if err != nil {
		return err
	}
	gc, err := s.c.newGuestClient(r, false)
	if err != nil {
		return err
	}
	res, err := call.AllocResults()
	if err != nil {
		gc.Release()
		return err
	}
	return res.SetGuest(gc)
}

func (s *supervisorServer) Revoke(ctx context.Context, call schemas.Supervisor_revoke) error {
	call.Go()
	a := call.Args()
	id, err := a.CapId()
	if err != nil {
		return err
	}
	reason, err := a.Reason()
	if err != nil {
		return err
	}
	x, err := s.c.lookupOwnedCap(id)
	if err != nil {
		if n, was := s.c.s.sup.WasRevoked(caps.ID(id)); was && s.c.auth.HearsOf(n) {
			return n.Err(caps.ID(id))
		}
		return fmt.Errorf("revoke: %w", err)
	}
	return revoke(s.c, call.AllocResults, x, reason)
}

// revoke revokes x for c's principal and writes the receipt through alloc.
func revoke[R interface {
	NewReceipt() (schemas.Receipt, error)
}](c *serverConn, alloc func() (R, error), x *caps.Cap, reason string) error {
	if reason == "" {
		reason = "revoked by " + c.principal.String()
	}
	reason = clipReason(reason)
	rc, err := c.s.sup.Revoke(x.ID(), reason)
	if err != nil {
		return err
	}
	c.log.Debug("revoked through the control API", "cap", x.ID(), "revoked", len(rc.Revoked), "reason", reason)
	res, err := alloc()
	if err != nil {
		return err
	}
	r, err := res.NewReceipt()
	if err != nil {
		return err
	}
	return fillReceipt(r, c.auth.receiptFor(rc))
}

func (s *supervisorServer) Mint(ctx context.Context, call schemas.Supervisor_mint) error {
	text, err := call.Args().Grant()
	if err != nil {
		return err
	}
	gr, err := s.c.parseGrant(text)
	if err != nil {
		return err
	}
	if gr.Kind == daemon.GrantCap {
		return fmt.Errorf("mint %s: cap: names a capability that exists already: get it with Supervisor.cap", text)
	}
	if err := s.c.roomForObject(); err != nil {
		return err
	}
	x, err := s.c.s.sup.Mint(s.c.holder, s.c.principal, gr, gr.String())
	if err != nil {
		return err
	}
	s.c.log.Info("minted", "cap", x.ID(), "grant", gr.String())
	return returnCap(s.c, call.AllocResults, x, true, true)
}

func (s *supervisorServer) Cap(ctx context.Context, call schemas.Supervisor_cap) error {
	id, err := call.Args().CapId()
	if err != nil {
		return err
	}
	x, err := s.c.lookupOwnedCap(id)
	if err != nil {
		return err
	}
	return returnCap(s.c, call.AllocResults, x, false, false)
}

func (s *supervisorServer) CapByToken(ctx context.Context, call schemas.Supervisor_capByToken) error {
	a := call.Args()
	id, err := a.CapId()
	if err != nil {
		return err
	}
	tokText, err := a.Token()
	if err != nil {
		return err
	}
	bad := fmt.Errorf("no capability %s with that token", id)
	tok, ok := caps.ParseToken(tokText)
	if !ok {
		return bad
	}
	x, ok := s.c.s.sup.Kernel().LookupToken(caps.ID(id), tok)
	if !ok {
		return bad
	}
	return returnCap(s.c, call.AllocResults, x, false, false)
}

// unwrapCap returns the kernel capability behind a Cap object the client
// passed back to the daemon. Only Cap objects the daemon issued are
// accepted; whether it may still be passed on is the caller's to check
// (passable).
func (c *serverConn) unwrapCap(ctx context.Context, cl schemas.Cap) (*caps.Cap, error) {
	if !cl.IsValid() {
		return nil, errors.New("no capability given")
	}
	if err := cl.Resolve(ctx); err != nil {
		return nil, err
	}
	v, ok := serverOf(capnp.Client(cl))
	if !ok {
		return nil, errors.New("not a capability this daemon issued: only Cap objects from this daemon can be passed to it")
	}
	cs, ok := v.(*capServer)
	if !ok {
		return nil, errors.New("not a Cap object")
	}
	return cs.x, nil
}

func (s *supervisorServer) Compile(ctx context.Context, call schemas.Supervisor_compile) error {
	call.Go()
	a := call.Args()
	name, err := a.Name()
	if err != nil {
		return err
	}
	wasm, err := a.Wasm()
	if err != nil {
		return err
	}
	if len(wasm) == 0 {
		return errors.New(reasonRequest + "no module: the request carries no WebAssembly bytes")
	}
	if name == "" {
		name = "guest"
	}
	start := time.Now()
	m, err := s.c.s.sup.Compile(ctx, name, wasm)
	if err != nil {
		return errors.New(reasonModule + err.Error())
	}
	defer m.Release()
	// took is 0 for a module the daemon had compiled in memory (from a
	// launch or a compile): the call compiled nothing. One loaded from the
	// state directory's cache counts the time loading it took.
	took := time.Since(start)
	if m.Cached() {
		took = 0
	}
	s.c.log.Info("compiled on request", "module", name, "sha256", m.HashString(), "bytes", len(wasm), "took", took, "cached", m.Cached())
	res, err := call.AllocResults()
	if err != nil {
		return err
	}
	res.SetTook(int64(took))
	return res.SetSha256(m.HashString())
}

func (s *supervisorServer) Forget(ctx context.Context, call schemas.Supervisor_forget) error {
	id, err := call.Args().Id()
	if err != nil {
		return err
	}
	r, err := s.c.lookupGuest(id)
	if err != nil {
		return err
	}
	if err := s.c.s.sup.Forget(r.g.ID()); err != nil {
		return err
	}
	s.c.s.forget(r)
	return nil
}
