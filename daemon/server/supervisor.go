package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"capnproto.org/go/capnp/v3"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/schemas"
)

// Request bounds beyond the message size: they keep one request's cost
// proportional to what it asks for.
const (
	maxLaunchStrings = 4096    // args + env + grants + caps
	maxStdin         = 1 << 20 // bytes of stdin carried in a launch
	maxReasonLen     = 256
)

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
// control API on top of the grammar: host paths must be absolute (the
// daemon's working directory is not the client's), and only a principal
// with the daemon's own authority may name them.
func (c *serverConn) parseGrant(text string) (daemon.Grant, error) {
	gr, err := daemon.ParseGrant(text)
	if err != nil {
		return daemon.Grant{}, &grantSyntaxError{err}
	}
	if gr.Kind == daemon.GrantDir || gr.Kind == daemon.GrantFile {
		if !filepath.IsAbs(gr.Source) {
			return daemon.Grant{}, &daemon.GrantError{Grant: gr, Err: errors.New("host paths sent to the daemon must be absolute: the daemon does not share your working directory")}
		}
		if !c.mayUseHostPaths() {
			return daemon.Grant{}, &daemon.GrantError{Grant: gr, Err: fmt.Errorf("%s may not grant host paths: the daemon opens them as uid %d, so only that user and root may name them", c.principal, c.s.euid)}
		}
	}
	return gr, nil
}

// launchArgs is a decoded, validated launch request.
type launchArgs struct {
	name        string
	wasm        []byte
	spec        daemon.LaunchSpec
	delegations []daemon.Delegation
	output      schemas.OutputSink // owned; invalid if none
	detach      bool
}

func (c *serverConn) decodeLaunch(ctx context.Context, r schemas.LaunchRequest) (*launchArgs, error) {
	var a launchArgs
	var err error
	if a.name, err = r.Name(); err != nil {
		return nil, err
	}
	if a.name == "" {
		a.name = "guest"
	}
	if a.wasm, err = r.Wasm(); err != nil {
		return nil, err
	}
	if len(a.wasm) == 0 {
		return nil, errors.New("no module: the request carries no WebAssembly bytes")
	}
	if a.spec.Args, err = textList(r.Args()); err != nil {
		return nil, err
	}
	if a.spec.Env, err = textList(r.Env()); err != nil {
		return nil, err
	}
	grants, err := textList(r.Grants())
	if err != nil {
		return nil, err
	}
	dl, err := r.Caps()
	if err != nil {
		return nil, err
	}
	if n := len(a.spec.Args) + len(a.spec.Env) + len(grants) + dl.Len(); n > maxLaunchStrings {
		return nil, fmt.Errorf("request has %d args, env entries and grants: at most %d are allowed", n, maxLaunchStrings)
	}
	for _, text := range grants {
		gr, err := c.parseGrant(text)
		if err != nil {
			return nil, err
		}
		if gr.Kind == daemon.GrantCap {
			from, err := c.lookupOwnedCap(gr.Source)
			if err != nil {
				return nil, &daemon.GrantError{Grant: gr, Err: err}
			}
			a.delegations = append(a.delegations, daemon.Delegation{From: from, Name: gr.Name})
			continue
		}
		a.spec.Grants = append(a.spec.Grants, gr)
	}
	for i := 0; i < dl.Len(); i++ {
		d := dl.At(i)
		name, err := d.Name()
		if err != nil {
			return nil, err
		}
		from, err := c.unwrapCap(ctx, d.Cap())
		if err != nil {
			return nil, fmt.Errorf("capability %d of the request: %w", i, err)
		}
		if name == "" {
			name = from.Name()
		}
		if err := daemon.CheckName(name); err != nil {
			return nil, fmt.Errorf("capability %s: handle name %q %s", from.ID(), name, err)
		}
		a.delegations = append(a.delegations, daemon.Delegation{From: from, Name: name})
	}
	a.spec.MemoryLimit = r.MemoryLimit()
	if t := r.Timeout(); t < 0 {
		return nil, fmt.Errorf("timeout %v is negative: use 0 for no limit", time.Duration(t))
	} else {
		a.spec.Timeout = time.Duration(t)
	}
	if m := r.MaxFds(); m > 1<<16 {
		return nil, fmt.Errorf("max fds %d is above the daemon's limit of %d", m, 1<<16)
	} else {
		a.spec.MaxFDs = int(m)
	}
	stdin, err := r.Stdin()
	if err != nil {
		return nil, err
	}
	if len(stdin) > maxStdin {
		return nil, fmt.Errorf("stdin of %d bytes is more than the %d a launch may carry", len(stdin), maxStdin)
	}
	if len(stdin) > 0 {
		a.spec.Stdin = bytes.NewReader(bytes.Clone(stdin))
	}
	if r.HasOutput() {
		a.output = r.Output().AddRef()
	}
	a.detach = r.Detach()
	return &a, nil
}

func textList(l capnp.TextList, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	out := make([]string, l.Len())
	for i := range out {
		if out[i], err = l.At(i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Launch failures whose reason starts with one of these prefixes are of a
// kind a client can act on without reading the text (docs/API.md): a grant
// that did not parse, was refused or could not be set up, and a module
// that is not one sandboxd can run. Nothing ran in either case.
const (
	reasonGrant  = "grant: "
	reasonModule = "module: "
)

type grantSyntaxError struct{ err error }

func (e *grantSyntaxError) Error() string { return e.err.Error() }
func (e *grantSyntaxError) Unwrap() error { return e.err }

type moduleError struct{ err error }

func (e *moduleError) Error() string { return e.err.Error() }
func (e *moduleError) Unwrap() error { return e.err }

// launchFailure is the error a failed launch returns to the client.
func launchFailure(err error) error {
	var me *moduleError
	switch {
	case errors.As(err, &me):
		return errors.New(reasonModule + err.Error())
	case isGrantFailure(err):
		return errors.New(reasonGrant + err.Error())
	}
	return fmt.Errorf("launch: %w", err)
}

// grantFailure marks err as a grant failure for the client if it is one.
func grantFailure(err error) error {
	if isGrantFailure(err) {
		return errors.New(reasonGrant + err.Error())
	}
	return err
}

func isGrantFailure(err error) bool {
	var ge *daemon.GrantError
	var se *grantSyntaxError
	return errors.As(err, &ge) || errors.As(err, &se)
}

func (s *supervisorServer) Launch(ctx context.Context, call schemas.Supervisor_launch) error {
	call.Go()
	c := s.c
	req, err := call.Args().Request()
	if err != nil {
		return err
	}
	a, err := c.decodeLaunch(ctx, req)
	if err != nil {
		return launchFailure(err)
	}
	guest, info, err := c.launch(ctx, a)
	if err != nil {
		if a.output.IsValid() {
			a.output.Release()
		}
		return launchFailure(err)
	}
	res, err := call.AllocResults()
	if err != nil {
		guest.Release()
		return err
	}
	if err := res.SetGuest(guest); err != nil {
		return err
	}
	gi, err := res.NewInfo()
	if err != nil {
		return err
	}
	return fillGuestInfo(gi, info)
}

// launch compiles and starts the guest and hands the client its owning
// Guest object. It takes ownership of a.output.
func (c *serverConn) launch(ctx context.Context, a *launchArgs) (schemas.Guest, *guestRecord, error) {
	s := c.s
	if err := c.takeObject(); err != nil {
		return schemas.Guest{}, nil, err
	}
	defer c.dropObject() // newGuestClient takes its own
	uid := c.principal.UID
	s.mu.Lock()
	if s.running[uid] >= s.lim.MaxGuests {
		s.mu.Unlock()
		return schemas.Guest{}, nil, fmt.Errorf("%s already has %d guests running, the daemon's limit (serve --max-guests): wait for some to exit or kill them", c.principal, s.lim.MaxGuests)
	}
	s.running[uid]++ // released by watch, or below if the launch fails
	s.mu.Unlock()
	launched := false
	defer func() {
		if !launched {
			s.mu.Lock()
			s.dropRunning(uid)
			s.mu.Unlock()
		}
	}()
	m, err := s.sup.Compile(ctx, a.name, a.wasm)
	if err != nil {
		return schemas.Guest{}, nil, &moduleError{err}
	}
	defer m.Release() // the guest holds it on its own
	rctx, cancel := context.WithCancel(s.ctx)
	if a.spec.Timeout > 0 {
		rctx, cancel = context.WithTimeout(s.ctx, a.spec.Timeout)
	}
	r := &guestRecord{
		pid: c.pid, detached: a.detach, output: newOutputLog(s.logBytes),
		args: append([]string{m.Name}, a.spec.Args...),
		ctx:  rctx, cancel: cancel,
	}
	if a.output.IsValid() {
		r.attached = newOutputSink(rctx, a.output)
		a.output = schemas.OutputSink{}
	}
	var stdout, stderr io.Writer = &streamWriter{log: r.output, stream: streamStdout, sink: r.attached},
		&streamWriter{log: r.output, stream: streamStderr, sink: r.attached}
	a.spec.Principal = c.principal
	a.spec.Module = m
	a.spec.Stdout, a.spec.Stderr = stdout, stderr
	a.spec.Delegations = a.delegations
	a.spec.SupervisorChannel = true
	g, err := s.sup.Launch(ctx, a.spec)
	if err != nil {
		cancel()
		if r.attached != nil {
			r.attached.sink.Release()
		}
		return schemas.Guest{}, nil, err
	}
	r.g = g
	launched = true
	s.mu.Lock()
	s.records[g.ID()] = r
	s.mu.Unlock()
	go s.watch(r)
	c.log.Debug("launched", "guest", g.ID(), "module", a.name, "sha256", m.HashString(), "detach", a.detach, "attached", r.attached != nil)

	gc, err := c.newGuestClient(r, true)
	if err != nil { // cannot happen: room was reserved above
		r.kill("launch failed")
		return schemas.Guest{}, nil, err
	}
	return gc, r, nil
}

func (s *supervisorServer) List(ctx context.Context, call schemas.Supervisor_list) error {
	var recs []*guestRecord
	for _, g := range s.c.s.sup.Guests() {
		if !s.c.ownsGuest(g) {
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

// lookupGuest finds a guest the principal may act on. A guest it may not
// reach is reported exactly like one that does not exist.
func (c *serverConn) lookupGuest(id string) (*guestRecord, error) {
	r, ok := c.s.record(id)
	if !ok || !c.ownsGuest(r.g) {
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
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
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
	return fillReceipt(r, rc)
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
	if err := s.c.takeObject(); err != nil {
		return err
	}
	defer s.c.dropObject() // returnCap takes its own
	x, err := s.c.s.sup.Mint(s.c.holder, gr, gr.String()+" minted by "+s.c.principal.String())
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
// accepted, and a revoked one is refused.
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
	if cs.x.Revoked() {
		return nil, fmt.Errorf("capability %s has been revoked", cs.x.ID())
	}
	return cs.x, nil
}
