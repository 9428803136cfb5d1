package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"capnproto.org/go/capnp/v3"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/policies"
	"github.com/sandboxd/sandboxd/schemas"
)

// Bounds of a launch request beyond the message size: they keep its cost
// proportional to what it asks for.
const (
	maxLaunchStrings = 4096    // args + env + grants + caps
	maxStdin         = 1 << 20 // bytes of stdin carried in a launch
	maxFDsLimit      = 1 << 16 // the largest handle table a launch may ask for
)

// launchArgs is a decoded, validated launch request.
type launchArgs struct {
	name        string
	wasm        []byte
	spec        daemon.LaunchSpec
	delegations []daemon.Delegation
	output      schemas.OutputSink // owned; invalid if none
	detach      bool
	guestName   string // "" for none
	stdinStream bool   // stdin comes from a StdinSink
}

// decodeLaunch reads and validates a launch request. It compiles, opens
// and runs nothing; it looks up the capabilities the request delegates,
// which the principal must own or pass as Cap objects.
func (c *serverConn) decodeLaunch(ctx context.Context, r schemas.LaunchRequest) (*launchArgs, error) {
	a := &launchArgs{}
	if err := a.decodeModule(r); err != nil {
		return nil, err
	}
	grants, dl, err := a.decodeStrings(r)
	if err != nil {
		return nil, err
	}
	if err := c.decodeGrants(a, grants); err != nil {
		return nil, err
	}
	if err := c.decodeCaps(ctx, a, dl); err != nil {
		return nil, err
	}
	if err := a.decodeLimits(r); err != nil {
		return nil, err
	}
	if err := a.decodeName(r); err != nil {
		return nil, err
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
	if a.stdinStream = r.StdinStream(); a.stdinStream && len(stdin) > 0 {
		return nil, errors.New("stdin is both given and streamed: send one or the other")
	}
	// Last: from here a owns a reference to the sink.
	if r.HasOutput() {
		a.output = r.Output().AddRef()
	}
	a.detach = r.Detach()
	return a, nil
}

// decodeName reads and checks the guest's name, if the request gives one.
func (a *launchArgs) decodeName(r schemas.LaunchRequest) error {
	name, err := r.GuestName()
	if err != nil || name == "" {
		return err
	}
	if err := checkGuestName(name); err != nil {
		return err
	}
	a.guestName = name
	return nil
}

// decodeModule reads the module's name ("guest" if none is given) and its
// bytes, which must not be empty.
func (a *launchArgs) decodeModule(r schemas.LaunchRequest) error {
	var err error
	if a.name, err = r.Name(); err != nil {
		return err
	}
	if a.name == "" {
		a.name = "guest"
	}
	if a.wasm, err = r.Wasm(); err != nil {
		return err
	}
	if len(a.wasm) == 0 {
		return errors.New("no module: the request carries no WebAssembly bytes")
	}
	return nil
}

// decodeStrings reads the arguments and environment into a.spec, and
// returns the grant texts and the delegated Cap objects, once their number
// together is within maxLaunchStrings.
func (a *launchArgs) decodeStrings(r schemas.LaunchRequest) (grants []string, dl schemas.Delegation_List, err error) {
	if a.spec.Args, err = textList(r.Args()); err != nil {
		return nil, dl, err
	}
	if a.spec.Env, err = textList(r.Env()); err != nil {
		return nil, dl, err
	}
	if grants, err = textList(r.Grants()); err != nil {
		return nil, dl, err
	}
	if dl, err = r.Caps(); err != nil {
		return nil, dl, err
	}
	if a.spec.Labels, err = decodeLabels(r.Labels()); err != nil {
		return nil, dl, err
	}
	deny, err := textList(r.Deny())
	if err != nil {
		return nil, dl, err
	}
	if n := len(a.spec.Args) + len(a.spec.Env) + len(grants) + dl.Len() + len(deny); n > maxLaunchStrings {
		return nil, dl, fmt.Errorf("request has %d args, env entries, grants and deny selectors: at most %d are allowed", n, maxLaunchStrings)
	}
	if len(deny) > 0 {
		if a.spec.Deny, err = policies.ParseDenyList(deny); err != nil {
			return nil, dl, daemon.NewSpecError(err)
		}
	}
	return grants, dl, nil
}

// decodeGrants parses each grant text under the control API's rules
// (parseGrant). A cap: grant becomes a delegation of the capability it
// names, which the principal must own; every other kind a grant of
// a.spec, set up only when the guest is launched.
func (c *serverConn) decodeGrants(a *launchArgs, texts []string) error {
	for _, text := range texts {
		gr, err := c.parseGrant(text)
		if err != nil {
			return err
		}
		if gr.Kind != daemon.GrantCap {
			a.spec.Grants = append(a.spec.Grants, gr)
			continue
		}
		from, err := c.lookupOwnedCap(gr.Source)
		if err == nil {
			err = c.passable(from)
		}
		if err != nil {
			return &daemon.GrantError{Grant: gr, Err: err}
		}
		a.delegations = append(a.delegations, capDelegation(from, gr))
	}
	return nil
}

// passable returns why x cannot be passed on to a guest, or nil: it has
// been revoked (saying when and why, as a second revoke would) or its
// holder has closed it. A launch checks this before anything else of the
// delegation, whose handle name could otherwise be refused first (a
// guest's stdin passed on under its own name), hiding what to do.
func (c *serverConn) passable(x *caps.Cap) error {
	if x.Revoked() {
		if n, ok := c.s.sup.WasRevoked(x.ID()); ok {
			return fmt.Errorf("capability %s cannot be passed on: it was %s", x.ID(), revokedWhen(x.ID(), n))
		}
		return fmt.Errorf("capability %s cannot be passed on: it has been revoked", x.ID())
	}
	if x.Closed() {
		return fmt.Errorf("capability %s cannot be passed on: %s", x.ID(), daemon.WhyNotDerived(x, caps.EBADF))
	}
	return nil
}

// revokedWhen says how, when and why id was revoked, from n.
func revokedWhen(id caps.ID, n daemon.RevokedNote) string {
	how := "revoked"
	if n.Root != id {
		how = "revoked with " + string(n.Root)
	}
	return fmt.Sprintf("%s at %s (%s)", how, n.At.Format(time.RFC3339), n.Reason)
}

// capDelegation is the delegation a cap: grant asks for: from, under the
// name the grant gives or else from's own, narrowed by its :ro or
// :rights=, recorded with the grant's text as its origin.
func capDelegation(from *caps.Cap, gr daemon.Grant) daemon.Delegation {
	name := gr.Name
	if name == "" {
		name = from.Name()
	}
	return daemon.Delegation{From: from, Name: name, Keep: gr.Keep(), Origin: gr.String()}
}

// decodeCaps adds a delegation for each Cap object the request passes,
// under the name it gives or else the capability's own.
func (c *serverConn) decodeCaps(ctx context.Context, a *launchArgs, dl schemas.Delegation_List) error {
	for i := 0; i < dl.Len(); i++ {
		d := dl.At(i)
		name, err := d.Name()
		if err != nil {
			return err
		}
		from, err := c.unwrapCap(ctx, d.Cap())
		if err == nil {
			err = c.passable(from)
		}
		if err != nil {
			// A grant failure as a cap: grant's is (exit 3), also when the
			// capability was revoked or closed.
			return &grantRefusal{fmt.Errorf("capability %d of the request: %w", i, err)}
		}
		// The name, given or the capability's own, is checked by the
		// launch as a grant's would be (a directory's may be a path).
		a.delegations = append(a.delegations, daemon.Delegation{From: from, Name: name})
	}
	return nil
}

// decodeLimits reads the guest's memory limit, timeout, handle-table
// size and call-stack bound into a.spec (the supervisor checks the last).
func (a *launchArgs) decodeLimits(r schemas.LaunchRequest) error {
	a.spec.MemoryLimit = r.MemoryLimit()
	t := r.Timeout()
	if t < 0 {
		return fmt.Errorf("timeout %v is negative: use 0 for no limit", time.Duration(t))
	}
	a.spec.Timeout = time.Duration(t)
	m := r.MaxFds()
	if m > maxFDsLimit {
		return fmt.Errorf("max fds %d is above the daemon's limit of %d", m, maxFDsLimit)
	}
	a.spec.MaxFDs = int(m)
	a.spec.MaxStack = r.MaxStack()
	return nil
}

// decodeLabels reads KEY=VALUE labels; a key given twice is an error.
func decodeLabels(l capnp.TextList, err error) (map[string]string, error) {
	texts, err := textList(l, err)
	if err != nil || len(texts) == 0 {
		return nil, err
	}
	if len(texts) > daemon.MaxLabels {
		return nil, fmt.Errorf("%d labels: at most %d are allowed", len(texts), daemon.MaxLabels)
	}
	labels := make(map[string]string, len(texts))
	for _, t := range texts {
		k, v, err := daemon.ParseLabel(t)
		if err != nil {
			return nil, err
		}
		if _, dup := labels[k]; dup {
			return nil, fmt.Errorf("label %s is given twice", k)
		}
		labels[k] = v
	}
	return labels, nil
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
// that is not one sandboxd can run, and a request that is invalid in
// itself. Nothing ran in any case.
const (
	reasonGrant   = "grant: "
	reasonModule  = "module: "
	reasonRequest = "request: " // the request itself is invalid: a limit, a label, a name
)

// grantRefusal is a grant failure found before a daemon.Grant is made or
// asked for: a grant's text that does not parse, or a Cap object of a
// launch request that cannot be passed on (as a cap: grant's would be).
type grantRefusal struct{ err error }

func (e *grantRefusal) Error() string { return e.err.Error() }
func (e *grantRefusal) Unwrap() error { return e.err }

type moduleError struct{ err error }

func (e *moduleError) Error() string { return e.err.Error() }
func (e *moduleError) Unwrap() error { return e.err }

// launchFailure is the error a failed launch returns to the client. The
// client names the operation; the reason does not repeat it.
func launchFailure(err error) error {
	var me *moduleError
	var se *daemon.SpecError
	switch {
	case errors.As(err, &me):
		return errors.New(reasonModule + err.Error())
	case isGrantFailure(err):
		return errors.New(reasonGrant + err.Error())
	case errors.As(err, &se):
		return errors.New(reasonRequest + err.Error())
	}
	return err
}

// requestFailure is the error of a launch request that does not decode
// or is invalid in itself, before anything is set up.
func requestFailure(err error) error {
	var me *moduleError
	if errors.As(err, &me) || isGrantFailure(err) {
		return launchFailure(err)
	}
	return errors.New(reasonRequest + err.Error())
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
	var gr *grantRefusal
	// A policy's or a deny list's refusal to pass a cap: grant on.
	return errors.As(err, &ge) || errors.As(err, &gr) || daemon.IsPolicyDenial(err)
}

func (s *supervisorServer) Launch(ctx context.Context, call schemas.Supervisor_launch) (err error) {
	if launchEnded != nil {
		defer func() { launchEnded(err) }()
	}
	call.Go()
	c := s.c
	req, err := call.Args().Request()
	if err != nil {
		return err
	}
	a, err := c.decodeLaunch(ctx, req)
	if err != nil {
		return requestFailure(err)
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
	if info.stdin != nil {
		if err := res.SetStdin(schemas.StdinSink_ServerToClient(info.stdin)); err != nil {
			return err
		}
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
	if err := c.roomForObject(); err != nil {
		return schemas.Guest{}, nil, err
	}
	uid := c.principal.UID
	s.mu.Lock()
	if s.running[uid] >= s.lim.MaxGuests {
		s.mu.Unlock()
		return schemas.Guest{}, nil, fmt.Errorf("%s already has %d guests running, the daemon's limit (serve --max-guests): wait for some to exit or kill them", c.principal, s.lim.MaxGuests)
	}
	s.running[uid]++ // released by watch, or below if the launch fails
	s.mu.Unlock()
	r, err := c.startNamedGuest(ctx, a)
	if err != nil {
		s.mu.Lock()
		s.dropRunning(uid)
		s.mu.Unlock()
		return schemas.Guest{}, nil, err
	}
	s.mu.Lock()
	s.records[r.g.ID()] = r
	s.mu.Unlock()
	s.nameGuest(r.name, r.g.ID())
	if launchStarted != nil {
		launchStarted(r.g)
	}
	s.watchEnd(r)
	c.log.Debug("launched", "guest", r.g.ID(), "module", a.name, "sha256", r.g.Module().HashString(), "detach", a.detach, "attached", r.attached != nil)

	gc, err := c.newGuestClient(r, true)
	if err != nil { // concurrent calls took the room roomForObject saw
		r.kill("launch failed")
		return schemas.Guest{}, nil, err
	}
	return gc, r, nil
}

// watchEnd has watch run once r's guest is done, on the guest's
// goroutine (Guest.AfterDone). A guest that has ended already (one that
// exits at once) has it run on a goroutine of its own (goWatch): on this
// one, the launch's answer would wait for watch to drain the attached
// output, that is for the client to take it, which a client stuck
// writing out what came before never does.
func (s *Server) watchEnd(r *guestRecord) {
	if !r.g.AfterDone(func() { s.watch(r) }) {
		s.goWatch(r)
	}
}

// goWatch runs watch on a goroutine of its own, which Close waits for.
// Once Close has begun it runs watch on this one: the server's context,
// which ends the drain's wait for the client, has ended or is ending.
func (s *Server) goWatch(r *guestRecord) {
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.watching.Add(1)
	}
	s.mu.Unlock()
	if closed {
		s.watch(r)
		return
	}
	go func() {
		defer s.watching.Done()
		s.watch(r)
	}()
}

// launchStarted, if set, runs in launch with each guest it has started,
// before launch watches for the guest's end; launchCompiled, with the
// launch call's context once its module is compiled; launchEnded, with
// the launch call's error once it returns: tests set them.
var (
	launchStarted  func(*daemon.Guest)
	launchCompiled func(context.Context)
	launchEnded    func(error)
)

// startNamedGuest reserves the guest's name, if it has one, and starts it
// (startGuest); a failed launch frees the name.
func (c *serverConn) startNamedGuest(ctx context.Context, a *launchArgs) (*guestRecord, error) {
	if err := c.reserveName(a.guestName); err != nil {
		if a.output.IsValid() {
			a.output.Release()
			a.output = schemas.OutputSink{}
		}
		return nil, daemon.NewSpecError(err)
	}
	r, err := c.startGuest(ctx, a)
	if err != nil {
		c.s.releaseName(a.guestName)
		return nil, err
	}
	r.name = a.guestName
	return r, nil
}

// startGuest compiles a's module and launches it through the Supervisor
// with a supervisor channel, its output going to a new record. It takes
// ownership of a.output: the record holds it, or it is released if the
// launch fails.
func (c *serverConn) startGuest(ctx context.Context, a *launchArgs) (*guestRecord, error) {
	s := c.s
	m, err := s.sup.Compile(ctx, a.name, a.wasm)
	if err != nil {
		return nil, &moduleError{err}
	}
	defer m.Release() // the guest holds it on its own
	if launchCompiled != nil {
		launchCompiled(ctx)
	}
	rctx, cancel := s.recordContext(a.spec.Timeout)
	r := &guestRecord{
		pid: c.pid, detached: a.detach, output: newOutputLog(s.logBytes),
		args: append([]string{m.Name}, a.spec.Args...),
		ctx:  rctx, cancel: cancel,
	}
	// Its kept output counts against its user's budget while it runs.
	r.output.charge = s.sup.MemoryChargeOf(c.principal.UID)
	if a.output.IsValid() {
		r.attached = newOutputSink(rctx, a.output, c.output)
		a.output = schemas.OutputSink{}
	}
	if a.stdinStream {
		r.stdin, a.spec.Stdin = newStdinSink(rctx)
	}
	a.spec.Principal = c.principal
	a.spec.Module = m
	a.spec.Stdout = &streamWriter{log: r.output, stream: streamStdout, sink: r.attached}
	a.spec.Stderr = &streamWriter{log: r.output, stream: streamStderr, sink: r.attached}
	a.spec.Delegations = a.delegations
	a.spec.SupervisorChannel = true
	if r.g, err = s.sup.Launch(ctx, a.spec); err != nil {
		cancel()
		if r.attached != nil {
			r.attached.sink.Release()
		}
		return nil, err
	}
	return r, nil
}

// recordContext returns the context of a guest's record: a child of the
// server's (Close ends it) that also ends once timeout passes, if it is
// not 0. Its cancel func is the one thing that detaches it from the
// server's context; watch calls it when the guest has ended.
func (s *Server) recordContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout > 0 {
		return context.WithTimeout(s.ctx, timeout)
	}
	return context.WithCancel(s.ctx)
}
