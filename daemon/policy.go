package daemon

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/policies"
)

// The supervisor enforces a grant policy (package policies) when one is
// loaded (Options.Policy, SetPolicy):
//
//   - every grant, at launch (Launch), while a guest runs (Guest.Grant)
//     and to a client (Mint), is decided by policies.Evaluate before
//     anything is opened on the host; an allowed grant is clipped to the
//     deciding rule's rights and leased for its ttl;
//   - every delegation, wherever it happens (a capability sent on a
//     channel, handed to a spawned child, delegated through the control
//     API or at launch), is decided by the kernel's gate (Supervisor
//     implements caps.Gate) against the delegate rules of the resource it
//     was granted from, with the depth and fan-out read from the
//     derivation tree.
//
// Without a policy every grant the caller allows is set up with the
// grant's full rights, and nothing limits delegation.

// grantSource is what a root capability was granted from, as a policy
// request names it: a declared resource (kind and name), or a host path
// given inline (kind and path). It is recorded on the capability
// (caps.Cap.SetSource) for the gate.
type grantSource struct {
	kind, name, path string
	// asked is an inline host path as the grant gave it, when its
	// symbolic links lead elsewhere (path): deny rules written for it
	// apply too (DecideHostPath).
	asked string
	// by is the user who made the grant, as the policy saw it: a live
	// grant's may not be the guest's launcher (NotAllowedBy).
	by policies.Subject
	// at is where the policy declared a named resource when it was
	// granted (resourceAt), for a reload that declares it elsewhere.
	at string
	// host is where a grant of a named dir or file resource opened it:
	// its declared path as pinned (pinnedPath). A deny list judges that
	// place as well as the name, whatever a reload declares since.
	host string
	// addrKind is the kind of a sock or listen grant of an inline
	// address, which has neither kind nor name in the policy's terms.
	addrKind string
	// sock is the socket file of a unix sock or listen grant, inline or
	// declared, its links resolved: a deny list's host paths cover it as
	// a file.
	sock string
}

// about is req about what g names: its kind (a grant of an inline
// address: the grant's kind), name and host path.
func (g grantSource) about(req policies.Request) policies.Request {
	req.Kind, req.Name, req.Path = cmp.Or(g.kind, g.addrKind), g.name, g.path
	return req
}

func (g grantSource) String() string {
	if g.name != "" {
		return g.kind + ":" + g.name
	}
	return g.kind + ":" + g.path
}

// PolicyError is a request the loaded policy denies. Its message is the
// decision's reason, which names the rule that decided it (or "default
// deny") and, when there is one, the closest rule that would have allowed
// it.
type PolicyError struct {
	Decision policies.Decision
}

func (e *PolicyError) Error() string {
	if r := e.Decision.Rule; r != nil && r.File == policies.DenyFile {
		return e.Decision.Reason // "… is denied by --deny SELECTOR"
	}
	msg := "denied by policy: " + e.Decision.Reason
	if r := e.Decision.Rule; r != nil {
		msg += fmt.Sprintf(" (%s:%d)", r.File, r.Line)
	} else if c := e.Decision.Closest; c != nil {
		msg += fmt.Sprintf(" (closest rule at %s:%d)", c.File, c.Line)
	}
	return msg
}

// Unwrap makes a denial an ENOTCAPABLE for the guest call it refuses.
func (e *PolicyError) Unwrap() error { return caps.ENOTCAPABLE }

// SetPolicy makes p the policy every later grant and delegation is decided
// by; nil removes it. What was granted or delegated before stays until it
// is revoked (see NotAllowedBy for what p would not have granted).
// The links of p's declared paths are resolved now (pins.go), and its
// deny rules cover where the links of their paths lead then too
// (policies.Policy.WithRealPaths).
func (s *Supervisor) SetPolicy(p *policies.Policy) {
	pn := pinPaths(p)
	p = p.WithRealPaths(pn.realPath)
	pn.policy = p // the policy in force, as Policy returns it
	s.pins.Store(pn)
	s.policy.Store(p)
}

// Policy returns the policy in force, or nil.
func (s *Supervisor) Policy() *policies.Policy { return s.policy.Load() }

// policyGrant is what the policy made of one grant: the grant as it is to
// be set up (a named dir or file resource becomes its host path), what it
// was granted from, the rights ceiling and the lease.
type policyGrant struct {
	grant   Grant
	source  grantSource
	ceiling caps.Rights
	ttl     time.Duration
	policy  *policies.Policy // the policy that decided it, nil for none
	by      Principal        // who asked for it: its capability's record names them
}

// grantee is who a grant is for: the principal asking and the module it
// is given to (nil for a client of the control API).
type grantee struct {
	by     Principal
	module *abi.Module
	labels map[string]string
	deny   *policies.DenyList // what the guest may not be given (LaunchSpec.Deny)
}

// authorize decides gr for g under the policy in force. Without a policy
// it allows gr as it is. A denial is a *GrantError wrapping a
// *PolicyError.
func (s *Supervisor) authorize(g grantee, gr Grant) (policyGrant, error) {
	p := s.Policy()
	src := sourceOf(gr, p)
	src.by = g.by.subject()
	pg := policyGrant{grant: gr, source: src, ceiling: caps.RightsAll, policy: p, by: g.by}
	if err := s.auditRefusal(); err != nil {
		return pg, &GrantError{Grant: gr, Err: err}
	}
	if src.path != "" {
		// Recorded as resolved, with the path as asked, for the policy in
		// force or one loaded later (the gate, NotAllowedBy).
		src.asked, src.path = src.path, caps.RealPath(src.path)
	}
	hostErr := s.namedHost(p, &src)
	src.sock = s.socketFileOf(gr, p, src)
	pg.source = src
	asked := policies.Request{Op: policies.OpGrant, Rights: gr.AskedRights(), Subject: g.by.subject(), Module: moduleOf(g.module, g.labels)}
	if err := s.checkDenyList(g.deny, p, src, asked, audit.DecisionRecord{To: moduleName(g.module)}); err != nil {
		return pg, &GrantError{Grant: gr, Err: err}
	}
	if g.deny != nil {
		pg.setUpAsJudged(p)
	}
	if p == nil {
		if policyAuthorized != nil {
			policyAuthorized()
		}
		return pg, nil // the principal is the authority
	}
	if src.path != "" {
		pg.grant.Source, pg.grant.exact = src.path, true
	}
	if src.kind == "" {
		return pg, &GrantError{Grant: gr, Err: fmt.Errorf("%s grants give an address inline, which a policy does not name: declare it as a %s resource and grant it by name", gr.Kind, gr.Kind)}
	}
	req := policies.Request{
		Op: policies.OpGrant, Kind: src.kind, Name: src.name, Path: src.path,
		Rights: gr.AskedRights(), Subject: g.by.subject(), Module: moduleOf(g.module, g.labels),
	}
	req, d := DecideHostPath(p, req, src.asked)
	d = DecideCreate(gr, req, d)
	s.recordDecision(req, d, audit.DecisionRecord{To: moduleName(g.module)})
	if !d.Allowed {
		return pg, &GrantError{Grant: gr, Err: &PolicyError{Decision: d}}
	}
	pg.ceiling, pg.ttl = d.Rights, d.TTL
	if policyAuthorized != nil {
		policyAuthorized()
	}
	res, ok := p.Resource(src.kind, src.name)
	if ok && src.name != "" {
		pg.source.at = resourceAt(res)
	}
	if ok && src.name != "" && res.Path != "" {
		if hostErr != nil {
			return pg, &GrantError{Grant: gr, Err: hostErr}
		}
		pg.grant.Source, pg.grant.exact = src.host, true
		pg.grant.ReadOnly = pg.grant.ReadOnly || res.ReadOnly
	}
	return pg, nil
}

// DecideCreate is d, the decision on req, for gr: a file:…:create grant
// that d allows without fd_write (a read_only rule or resource, or rights
// without it) is denied by the same rule. The daemon would make the file
// with its own authority, in a directory the subject may not write
// itself, where the rule lets the subject only read; and an empty file
// no one may write is of no use. policy explain decides the same.
func DecideCreate(gr Grant, req policies.Request, d policies.Decision) policies.Decision {
	if !gr.Create || !d.Allowed || d.Rights&caps.RightFDWrite != 0 || d.Rule == nil {
		return d
	}
	what := req.Kind + ":" + cmp.Or(req.Name, req.Path)
	return policies.Decision{Rule: d.Rule, Reason: fmt.Sprintf("%s with :create is denied: %s %q gives it read-only, and a read-only grant creates no file: grant the file once it exists, or allow writing it", what, d.Rule.Type, d.Rule.Name)}
}

// socketFileOf is the socket file a unix sock or listen grant connects
// to or binds, its links resolved as the grant resolves them: an inline
// path, or a declared resource's unix path as pinned; "" for any other
// grant, and for an abstract socket.
func (s *Supervisor) socketFileOf(gr Grant, p *policies.Policy, src grantSource) string {
	if path, ok := gr.SocketFile(); ok {
		return resolveSocket(gr.Kind, path)
	}
	if p == nil || src.name == "" || (gr.Kind != GrantSock && gr.Kind != GrantListen) {
		return ""
	}
	res, ok := p.Resource(src.kind, src.name)
	if !ok || res.Unix == "" || strings.HasPrefix(res.Unix, "@") {
		return ""
	}
	return s.realPath(res.Unix)
}

// setUpAsJudged makes a grant a deny list allowed be set up where the
// list judged it, its links resolved once: an inline unix socket always,
// and an inline host path without a policy (with one, authorize does so
// for every grant). A link put in place since fails the grant.
func (pg *policyGrant) setUpAsJudged(p *policies.Policy) {
	src := pg.source
	switch {
	case src.sock != "" && src.kind == "":
		pg.grant.Source, pg.grant.exact = "unix:"+src.sock, true
	case p == nil && src.path != "":
		pg.grant.Source, pg.grant.exact = src.path, true
	}
}

// namedHost sets src.host, for a dir or file resource of p that src
// names, to where its grant opens it (pinnedPath); the error is
// pinnedPath's, for a declared path that leads elsewhere now.
func (s *Supervisor) namedHost(p *policies.Policy, src *grantSource) error {
	if p == nil || src.name == "" {
		return nil
	}
	res, ok := p.Resource(src.kind, src.name)
	if !ok || res.Path == "" {
		return nil
	}
	real, err := s.pinnedPath(p, res.Path, false)
	src.host = real
	return err
}

// sourceOf names what gr asks for in the policy's terms. Under a policy a
// dir or file grant whose source is a bare word (no "/") names a resource,
// which the policy must declare; any other names its host path. A sock or
// listen grant with an inline address has no name: kind "".
func sourceOf(gr Grant, p *policies.Policy) grantSource {
	kind := gr.Kind.String()
	switch gr.Kind {
	case GrantDir, GrantFile:
		if p != nil && IsResourceName(gr.Source) {
			return grantSource{kind: kind, name: gr.Source}
		}
		abs, err := filepath.Abs(gr.Source)
		if err != nil {
			abs = gr.Source
		}
		return grantSource{kind: kind, path: abs}
	case GrantSock, GrantListen:
		if strings.ContainsAny(gr.Source, ":/") {
			return grantSource{addrKind: kind}
		}
	}
	return grantSource{kind: kind, name: gr.Source}
}

// IsResourceName reports whether the source of a dir or file grant is a
// bare word, which names a resource of the policy rather than a host
// path: no "/", and neither "." nor "..".
func IsResourceName(src string) bool {
	return !strings.Contains(src, "/") && src != "." && src != ".."
}

// AskedRights is what gr asks the policy for: every right the capability
// it mints holds, base and inheriting, less those that modify anything
// when it is read-only (caps.GrantRights).
func (gr Grant) AskedRights() caps.Rights {
	base, inh := caps.GrantRights(gr.capKind(), gr.ReadOnly)
	return base | inh
}

// capKind is the kind of capability gr mints: a dialer for sock:…:dial.
func (gr Grant) capKind() caps.Kind {
	if gr.Dial {
		return caps.KindDialer
	}
	return kindOfGrant(gr.Kind)
}

// kindOfGrant is the kind of capability a grant of kind k mints, but a
// dialer (Grant.capKind).
func kindOfGrant(k GrantKind) caps.Kind {
	switch k {
	case GrantDir:
		return caps.KindDirectory
	case GrantFile:
		return caps.KindFile
	case GrantListen:
		return caps.KindListener
	case GrantChan:
		return caps.KindChannel
	}
	return caps.KindSocket
}

// subject is p as a policy subject.
func (p Principal) subject() policies.Subject {
	gids := append([]uint32{p.GID}, p.Groups...)
	return policies.Subject{UID: p.UID, GIDs: gids, User: p.Name}
}

// moduleName is the name of the module a grant is given to, or "" for a
// client's.
func moduleName(m *abi.Module) string {
	if m == nil {
		return ""
	}
	return m.Name
}

func moduleOf(m *abi.Module, labels map[string]string) policies.Module {
	if m == nil {
		return policies.Module{Labels: labels}
	}
	return policies.Module{SHA256: m.HashString(), Labels: labels}
}

// mintGrant mints the capability of an authorized grant for holder: its
// rights clipped to the policy's ceiling, the user who asked for it named
// for the audit log (whoever holds it: root may grant to alice's guest),
// its source recorded for the gate, and its lease started.
func (s *Supervisor) mintGrant(holder *caps.Holder, pg policyGrant, r grantResource, origin string) *caps.Cap {
	by := audit.ByText(pg.by.UID, pg.by.Name)
	c := s.k.MintBy(by, holder, r.res, r.base&pg.ceiling, r.inh&pg.ceiling, pg.grant.Name, origin)
	c.SetFlags(r.flags)
	c.SetSource(pg.source)
	s.k.Lease(c, pg.ttl)
	return c
}

// gate is the supervisor's caps.Gate: the delegate rules of the policy in
// force, and the log line of each lease that expires.
type gate struct{ s *Supervisor }

// Delegate decides, for the kernel (caps.Gate), a derivation that passes
// parent on to another holder. The giver is the holder of parent, and the
// subject the principal behind it (who launched the guest holding it, or
// the client holding it), whoever asked for the delegation. Capabilities that were not granted from a
// policy resource (stdio, a guest's own objects, the supervisor channel)
// pass freely, as does everything when no policy is loaded.
func (gt gate) Delegate(parent *caps.Cap, d *caps.Derivation) (time.Duration, error) {
	s := gt.s
	if err := s.auditRefusal(); err != nil {
		return 0, err
	}
	p := s.Policy()
	root := parent.Root()
	if _, own := root.Source().(guestOwnEnd); own && d.Edge == caps.EdgeDelegate {
		return 0, fmt.Errorf("%s is %s's own end of its %s channel, through which the daemon knows it: it cannot be passed to another guest: %w", parent.ID(), holderID(root.Holder()), root.Name(), caps.ENOTCAPABLE)
	}
	src, ok := root.Source().(grantSource)
	if !ok || parent.Kind() == caps.KindService {
		// A service is its guest's own object, though it is published
		// beneath a channel grant: it passes freely.
		return 0, nil
	}
	giver := parent.Holder()
	to := d.Holder
	if to == nil {
		to = d.For
	}
	passed := policies.Request{
		Op: policies.OpDelegate, Rights: d.Base | d.Inheriting, Subject: subjectOf(giver), Module: holderModule(giver),
		Depth: parent.Depth() + 1, To: holderModule(to),
		ToUnknown: to == nil, // sent on a channel: whoever reads it receives it
	}
	if err := s.checkDenyList(denyListOf(to), p, src, passed, audit.DecisionRecord{Holder: holderID(giver), To: holderID(to), Cap: string(parent.ID())}); err != nil {
		return 0, err
	}
	if p == nil || src.kind == "" {
		return 0, nil
	}
	req := src.about(passed)
	req.Copies = s.k.LiveCopies(root)
	req, dec := DecideHostPath(p, req, src.asked)
	s.recordDecision(req, dec, audit.DecisionRecord{Holder: holderID(giver), To: holderID(to), Cap: string(parent.ID())})
	if !dec.Allowed {
		s.logFor(giver).Warn("delegation denied by policy", "cap", parent.ID(), "resource", src.String(),
			"giver", holderID(giver), "to", holderID(to), "depth", req.Depth, "copies", req.Copies,
			"rule", ruleText(dec.Rule), "reason", dec.Reason)
		return 0, &PolicyError{Decision: dec}
	}
	d.Base &= dec.Rights
	d.Inheriting &= dec.Rights
	return dec.TTL, nil
}

// Expired logs and records a capability a lease revoked (caps.Gate).
func (gt gate) Expired(c *caps.Cap, r caps.Receipt) {
	gt.s.revoked.add(r)
	gt.s.recordExpired(c, r)
	gt.s.log.Info("lease expired", "cap", c.ID(), "name", c.Name(), "revoked", len(r.Revoked), "holders", r.Holders, "receipt", r.Revoked)
}

// Adopt decides, for the kernel (caps.Gate), whether h may adopt c, a
// copy sent on a channel: the policy decided it when it was sent, not
// knowing who would read it; the deny list of the reader's launch
// (LaunchSpec.Deny) decides it now.
func (gt gate) Adopt(c *caps.Cap, h *caps.Holder) error {
	l := denyListOf(h)
	src, ok := c.Root().Source().(grantSource)
	if l == nil || !ok || c.Kind() == caps.KindService {
		return nil
	}
	b, i := c.Rights()
	arrived := policies.Request{Op: policies.OpDelegate, Rights: b | i, Subject: subjectOf(h), Depth: c.Depth(), To: holderModule(h)}
	err := gt.s.checkDenyList(l, gt.s.Policy(), src, arrived, audit.DecisionRecord{Holder: audit.InFlight, To: holderID(h), Cap: string(c.ID())})
	if err != nil {
		gt.s.logFor(h).Warn("a handle sent on a channel was refused on arrival", "cap", c.ID(), "resource", src.String(), "to", holderID(h), "reason", err)
	}
	return err
}

// checkDenyList decides, by deny list l, whether what src names may be
// given or passed to the guest l binds, as req asks (a grant or a
// delegation, by whom, to what), judged with the resources of p; a
// denial is recorded and returned as a *PolicyError. An inline host path
// whose links lead elsewhere is judged as asked too, as DecideHostPath
// does; a named dir or file resource is judged where its grant opened it
// too (grantSource.host).
func (s *Supervisor) checkDenyList(l *policies.DenyList, p *policies.Policy, src grantSource, req policies.Request, extra audit.DecisionRecord) error {
	req, d, denied := decideDenyList(l, p, src, req)
	if !denied {
		return nil
	}
	s.recordDecision(req, d, extra)
	return &PolicyError{Decision: d}
}

// decideDenyList is checkDenyList's decision, and the request that
// decided it, without a record.
func decideDenyList(l *policies.DenyList, p *policies.Policy, src grantSource, req policies.Request) (policies.Request, policies.Decision, bool) {
	if l == nil {
		return req, policies.Decision{}, false
	}
	req = src.about(req)
	d, denied := l.Decide(p, req)
	for _, alt := range []string{src.asked, src.host} {
		if !denied && alt != "" && alt != req.Path {
			req.Name, req.Path = "", alt
			d, denied = l.Decide(p, req)
		}
	}
	if !denied && src.sock != "" {
		// A unix socket is a file on the host: what covers its path
		// covers it.
		req.Kind, req.Name, req.Path = "file", "", src.sock
		d, denied = l.Decide(p, req)
	}
	return req, d, denied
}

// denyListOf is the deny list that binds holder h: its launch's
// (LaunchSpec.Deny), which binds every guest it spawns too.
func denyListOf(h *caps.Holder) *policies.DenyList {
	if h == nil {
		return nil
	}
	if o, ok := h.Top().Owner.(*guestOwner); ok {
		return o.deny
	}
	return nil
}

// guestOwnEnd marks (caps.Cap.SetSource) a guest's end of a channel
// through which the daemon knows it: its supervisor channel and its Cap'n
// Proto connection. Whoever held a copy could ask the daemon for things
// as that guest, so the gate refuses to pass one to another guest (a
// child it spawns may still be handed one).
type guestOwnEnd struct{}

// guestOwner is the caps.Holder.Owner of a launched guest: who launched
// it, with which labels. A client's holder has its Principal as Owner; a
// spawned child's has none (its parent's is found through Holder.Top).
type guestOwner struct {
	principal Principal
	labels    map[string]string
	launched  string // the hash of the module launched, which the labels describe
	deny      *policies.DenyList
	lines     lineBucket // the log lines the guest's doing may cause (loglimit.go)
}

// newGuestHolder is the holder of a guest launched as spec says.
func newGuestHolder(id string, spec *LaunchSpec) *caps.Holder {
	h := &caps.Holder{
		ID: id, Label: spec.Module.Name,
		Owner: &guestOwner{principal: spec.Principal, labels: spec.Labels, launched: spec.Module.HashString(), deny: spec.Deny},
	}
	h.SetModule(spec.Module.HashString())
	return h
}

// ClientHolder returns the holder of capabilities a client of the control
// API holds, acting for p.
func ClientHolder(id string, p Principal) *caps.Holder {
	return &caps.Holder{ID: id, Label: p.String(), Owner: p}
}

// subjectOf is the principal behind a holder: the user that launched the
// guest at the top of its spawn tree, or a client's user.
func subjectOf(h *caps.Holder) policies.Subject {
	if h == nil {
		return policies.Subject{}
	}
	switch o := h.Top().Owner.(type) {
	case *guestOwner:
		return o.principal.subject()
	case Principal:
		return o.subject()
	}
	return policies.Subject{}
}

// holderModule is the module a holder runs, with its launch labels while
// it runs the module launched. A spawned child has none, nor has the
// program a guest execs: labels are given by whoever launches, and a guest
// does not pass its own on to code it chooses to run.
func holderModule(h *caps.Holder) policies.Module {
	if h == nil {
		return policies.Module{}
	}
	m := policies.Module{SHA256: h.Module()}
	if o, ok := h.Owner.(*guestOwner); ok && o.launched == m.SHA256 {
		m.Labels = o.labels
	}
	return m
}

// logFor is the daemon's logger for a line h's doing causes: within the
// limit of the guest it acts for (loglimit.go), when it acts for one.
func (s *Supervisor) logFor(h *caps.Holder) hclog.Logger {
	if h != nil {
		if o, ok := h.Top().Owner.(*guestOwner); ok {
			return &limitedLogger{Logger: s.log, b: &o.lines}
		}
	}
	return s.log
}

func holderID(h *caps.Holder) string {
	if h == nil {
		return audit.InFlight
	}
	return h.ID
}

func ruleText(r *policies.RuleRef) string {
	if r == nil {
		return "default deny"
	}
	return r.String()
}

// IsPolicyDenial reports whether err is, or wraps, a policy's denial.
func IsPolicyDenial(err error) bool {
	var pe *PolicyError
	return errors.As(err, &pe)
}

// policyAuthorized, if set, runs once the policy (or, without one, the
// deny list) has allowed a grant,
// before the grant is set up: tests set it.
var policyAuthorized func()

// ReloadWarning is the message of the warning logged for each live
// capability a reloaded policy would not grant (NotAllowedBy).
const ReloadWarning = "a live capability the reloaded policy would not grant: it stays until revoked (sandboxd revoke)"

// Disallowed is a live capability that a policy would not grant.
type Disallowed struct {
	Cap    caps.ID
	Guest  string
	Grant  string // the grant text it was minted from
	Reason string // the policy's
}

// NotAllowedBy lists the capabilities guests were granted (at launch or
// since) and that running guests still hold, which p would not grant now,
// or not as they are (with those rights, without that lease), each judged
// as the user who made the grant, and by the deny list of the guest's
// launch under p's resources: what a reload leaves in place until
// someone revokes it. A grant held only through what was derived from it
// (a dup, something opened beneath it, a copy passed on, the handle first
// given closed) is live all the same; each is listed once, by its own id
// and the guest it was granted to.
func (s *Supervisor) NotAllowedBy(p *policies.Policy) []Disallowed {
	var out []Disallowed
	seen := map[caps.ID]bool{}
	for _, g := range s.Guests() {
		if running, _ := g.Status(); !running {
			continue
		}
		for _, c := range grantedTo(g) {
			c = c.Root()
			if seen[c.ID()] {
				continue
			}
			seen[c.ID()] = true
			if d, ok := disallowed(p, c); ok {
				out = append(out, d)
			}
		}
	}
	return out
}

// disallowed judges root capability c, if a guest was granted it, as
// NotAllowedBy does.
func disallowed(p *policies.Policy, c *caps.Cap) (Disallowed, bool) {
	src, ok := c.Source().(grantSource)
	if !ok || src.kind == "" || !grantedToGuest(c) {
		return Disallowed{}, false
	}
	_, d := DecideHostPath(p, policies.Request{
		Op: policies.OpGrant, Kind: src.kind, Name: src.name, Path: src.path,
		Subject: src.by, Module: holderModule(c.Holder()),
	}, src.asked)
	reason := cmp.Or(beyond(c, d), movedIn(p, src), deniedToHolder(p, c, src))
	return Disallowed{Cap: c.ID(), Guest: c.Holder().ID, Grant: c.Origin(), Reason: reason}, reason != ""
}

// warnIfReloaded judges grant c, which decidedBy allowed and g now holds,
// against the policy in force if a reload put another in force since:
// the reload's NotAllowedBy may have looked before g held c. It logs
// ReloadWarning if the policy in force would not grant it.
func (s *Supervisor) warnIfReloaded(g *Guest, decidedBy *policies.Policy, c *caps.Cap) {
	p := s.Policy()
	if p == nil || p == decidedBy {
		return
	}
	if running, _ := g.Status(); !running {
		return
	}
	if d, ok := disallowed(p, c); ok {
		s.log.Warn(ReloadWarning, "cap", d.Cap, "guest", d.Guest, "grant", d.Grant, "reason", d.Reason)
	}
}

// grantedToGuest reports whether root capability c was granted to a
// launched guest.
func grantedToGuest(c *caps.Cap) bool {
	h := c.Holder()
	if h == nil {
		return false
	}
	_, ok := h.Owner.(*guestOwner)
	return ok
}

// grantedTo is what g holds, in its handle table and waiting for it on
// its supervisor channel (Pending).
func grantedTo(g *Guest) []*caps.Cap {
	var out []*caps.Cap
	for _, e := range g.Handles() {
		out = append(out, e.Cap)
	}
	return append(out, g.Pending()...)
}

// beyond says how live capability c is more than decision d would grant:
// d denies it, c holds rights beyond d's ceiling, or d makes it a lease
// and c has none, or one that ends later than d's ttl from now. "" when
// d would grant it as it is.
func beyond(c *caps.Cap, d policies.Decision) string {
	if !d.Allowed {
		return d.Reason
	}
	b, i := c.Rights()
	if extra := (b | i) &^ d.Rights; extra != 0 {
		return fmt.Sprintf("it holds %v, beyond the rights of %s", extra, ruleText(d.Rule))
	}
	if end := c.Expires(); d.TTL > 0 && (end.IsZero() || end.After(time.Now().Add(d.TTL))) {
		return fmt.Sprintf("%s makes it a lease of %v, and it %s", ruleText(d.Rule), d.TTL, leaseText(end))
	}
	return ""
}

// resourceAt is where a declared resource is: its path, or its address.
func resourceAt(r *policies.Resource) string { return r.Path + r.TCP + r.Unix }

// deniedToHolder says why the deny list of the guest granted c (its
// launch's --deny) covers c's resource as p declares it, a reload having
// moved a named resource beneath a selector; "" if it does not.
func deniedToHolder(p *policies.Policy, c *caps.Cap, src grantSource) string {
	_, d, denied := decideDenyList(denyListOf(c.Holder()), p, src, policies.Request{Op: policies.OpGrant})
	if !denied {
		return ""
	}
	return d.Reason
}

// movedIn says how p declares the named resource a capability was
// granted from somewhere other than where it was opened; "" if it does
// not.
func movedIn(p *policies.Policy, src grantSource) string {
	res, ok := p.Resource(src.kind, src.name)
	if !ok || src.name == "" || src.at == "" || resourceAt(res) == src.at {
		return ""
	}
	return fmt.Sprintf("the policy declares %s at %s (%s:%d), and the capability was opened at %s", src, resourceAt(res), res.Pos.File, res.Pos.Line, src.at)
}

func leaseText(end time.Time) string {
	if end.IsZero() {
		return "has no lease"
	}
	return "lasts until " + end.UTC().Format(time.RFC3339)
}

// socketResolver says where named sock and listen grants connect or
// bind: Options.Sockets when it was given (a unix path's links resolved
// now), the sock and listen resources of the policy in force (a unix
// path's links resolved when it was put in force), or nowhere (nil)
// without either.
func (s *Supervisor) socketResolver() sockResolver {
	switch p := s.Policy(); {
	case s.sockets != nil:
		return resolvingLinks(s.sockets)
	case p != nil:
		return func(kind GrantKind, name string) (SockTarget, error) { return s.policySocket(p, kind, name) }
	}
	return nil
}

// resolvingLinks is r, with the links of each unix socket path it gives
// resolved: a listen grant is bound beneath the directory its path leads
// to following no link (listenUnix).
func resolvingLinks(r sockResolver) sockResolver {
	return func(kind GrantKind, name string) (SockTarget, error) {
		t, err := r(kind, name)
		if err != nil || t.Network != "unix" || t.Address == "" || strings.HasPrefix(t.Address, "@") {
			return t, err
		}
		if abs, err := filepath.Abs(t.Address); err == nil {
			t.Address = resolveSocket(kind, abs)
		}
		return t, nil
	}
}

// policySocket finds a sock or listen resource of p: a unix path where
// it led when p was put in force.
func (s *Supervisor) policySocket(p *policies.Policy, kind GrantKind, name string) (SockTarget, error) {
	res, ok := p.Resource(kind.String(), name)
	if !ok {
		return SockTarget{}, fmt.Errorf("the policy declares no %s resource %q", kind, name)
	}
	if strings.HasPrefix(res.Unix, "@") {
		return SockTarget{Network: "unix", Address: res.Unix}, nil
	}
	if res.Unix != "" {
		real, err := s.pinnedPath(p, res.Unix, kind == GrantListen)
		return SockTarget{Network: "unix", Address: real}, err
	}
	return SockTarget{Network: "tcp", Address: res.TCP}, nil
}
