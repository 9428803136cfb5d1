package daemon

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/policies"
)

// The supervisor records into its audit log (Options.Audit), when it has
// one, every change to the capability graph (it is the kernel's
// observer), every policy decision, each guest's start and exit, and each
// lease that expires. A record is on disk before the operation it records
// is acknowledged:
//
//   - the kernel calls the observer after each change, before the call
//     that made it returns, and the observer waits for the record's
//     fsync (audit.Log groups concurrent records into one fsync), but
//     for a close: it ends authority and acknowledges nothing to anyone
//     else, and reaches the disk with the next record that waits;
//   - the handles a launch sets up are recorded as they are minted
//     without waiting, and the guest-start record, appended before the
//     guest runs or Launch returns, waits for all of them at once; the
//     same for the capabilities a guest's end closes and its exit record;
//   - a decision that allows something waits for nothing: the record of
//     what it allowed follows and waits. A denial waits for its record.
//
// Once the log cannot be written, the supervisor refuses every grant,
// delegation and launch (their records could not be kept); revocation
// and closing go on.
//
// Close, with guests still running, writes one shutdown record in place
// of the close and exit records of every guest it kills: at 100,000
// guests those were half a million records, most of a shutdown's work.
// From then on the supervisor records nothing, and refuses what it would
// have to record (a grant, a delegation, a launch).

// auditError wraps the audit log's failure for the requests it refuses.
type auditError struct{ err error }

func (e *auditError) Error() string {
	return fmt.Sprintf("the audit log cannot be written (%v): nothing can be granted, passed on or launched until sandboxd is restarted with a writable log", e.err)
}

// Unwrap makes the refusal an ENOTCAPABLE for a guest's call.
func (e *auditError) Unwrap() error { return caps.ENOTCAPABLE }

// auditRefusal returns why a grant or delegation cannot be recorded, or
// nil.
func (s *Supervisor) auditRefusal() error {
	if s.audit == nil {
		return nil
	}
	if s.auditShut.Load() {
		return errAuditShut
	}
	if err := s.audit.Err(); err != nil {
		return &auditError{err}
	}
	return nil
}

// record appends r to the audit log, waiting for its fsync when wait is
// set. A failure is logged, and returned as an *auditError; auditRefusal
// then refuses what follows.
func (s *Supervisor) record(r audit.Record, wait bool) error {
	if s.audit == nil {
		return nil
	}
	if s.auditShut.Load() && r.Type != audit.TypeShutdown {
		if r.Type == audit.TypeGuestStart || r.Type == audit.TypeGuestExec {
			// The guest, or the program it execs, must not run
			// unrecorded: the shutdown record names the guests
			// running, not what one of them starts after it.
			return errAuditShut
		}
		return nil // the shutdown record stands for it
	}
	var err error
	if wait {
		_, err = s.audit.Append(r)
	} else {
		_, err = s.audit.Enqueue(r)
	}
	if err == nil {
		return nil
	}
	if !s.auditFailed.Swap(true) {
		s.log.Error("audit log failed: refusing every grant and delegation from now on", "error", err, "record", r.Type)
	}
	return &auditError{err}
}

// errAuditShut refuses what would be recorded after the shutdown record.
var errAuditShut = errors.New("the supervisor is shutting down: nothing more can be granted, passed on or launched")

// recordShutdown stops recording and writes the shutdown record, once,
// if running guests are about to be killed.
func (s *Supervisor) recordShutdown(running int) {
	if s.audit == nil || running == 0 {
		return
	}
	s.auditShut.Store(true)
	_ = s.record(audit.Record{Type: audit.TypeShutdown, Running: running}, true)
}

// observe is the kernel's observer.
func (s *Supervisor) observe(e caps.Event) {
	inFlight := s.trackInFlight(e)
	if s.audit == nil || s.auditShut.Load() {
		return // nothing, or nothing more, is recorded (record)
	}
	r, ok := audit.FromEvent(e)
	if !ok {
		return
	}
	if e.Type == caps.EventMint || e.Type == caps.EventDerive {
		r.Cap.ChanEnd, r.Cap.InFlight = chanEndOf(e.Resource), inFlight
	}
	if e.Cap.Edge == caps.EdgeSpawn || e.Type == caps.EventMint && e.Cap.Edge == caps.EdgeCreate {
		s.recordSpawned(e.Cap, e.Holder)
	}
	err := s.record(r, e.Type != caps.EventClose && !s.settingUp(e.Cap.Holder))
	if err != nil && (e.Type == caps.EventMint || e.Type == caps.EventDerive || e.Type == caps.EventAdopt) {
		s.revokeUnrecorded(e.Cap.ID)
	}
}

// trackInFlight keeps where each capability sent on a channel will
// arrive, from its send until it is received (adopted) or closed, for the
// live graph; it returns that place for a capability just sent, nil for
// any other event.
func (s *Supervisor) trackInFlight(e caps.Event) *audit.ChanEnd {
	switch {
	case (e.Type == caps.EventAdopt || e.Type == caps.EventClose) && e.Cap.Edge == caps.EdgeDelegate:
		// Only a delegated copy is ever in flight: the closes of every
		// other capability need not touch the map.
		s.auditInFlight.Delete(e.Cap.ID)
	case e.Type == caps.EventDerive && e.Cap.Holder == "" && e.Cap.Edge == caps.EdgeDelegate:
		via, ok := sentOn(e.Cap.Origin)
		if !ok {
			return nil // a launch's delegation, which its guest adopts
		}
		c, ok := s.k.Lookup(via)
		if !ok {
			return nil
		}
		end := s.chanEnd(c.Info())
		if end == nil {
			return nil
		}
		at := &audit.ChanEnd{Chan: end.Chan, Side: end.Other().Side, Via: string(via)}
		s.auditInFlight.Store(e.Cap.ID, at)
		return at
	}
	return nil
}

// sentOn is the channel capability a copy in flight was sent through, as
// its origin names it (abi's sock_send: "sent on ID (NAME)").
func sentOn(origin string) (caps.ID, bool) {
	rest, ok := strings.CutPrefix(origin, "sent on ")
	id, _, named := strings.Cut(rest, " (")
	return caps.ID(id), ok && named && id != ""
}

// chanEnd is which end of which channel capability in is, nil for one
// that is no channel's end or is gone.
func (s *Supervisor) chanEnd(in caps.Info) *audit.ChanEnd {
	if in.Kind != caps.KindChannel {
		return nil
	}
	c, ok := s.k.Lookup(in.ID)
	if !ok {
		return nil
	}
	return chanEndOf(c.Resource())
}

// chanEndOf is which end of which channel res is, nil for no channel's.
func chanEndOf(res caps.Resource) *audit.ChanEnd {
	ch, ok := res.(*caps.Channel)
	if !ok {
		return nil
	}
	pair, side := ch.End()
	return &audit.ChanEnd{Chan: pair, Side: side}
}

// recordSpawned writes the guest-spawn record of h, the holder of in, a
// capability given to it or made by it, if that holder is a spawned
// child (proc_spawn) whose record is not written yet: its module, the
// guest that spawned it and the launcher of its tree, before the record
// of its first handle (a spawned child gets its handles, or makes its
// first object, before anything else it holds is recorded). The record
// does not wait: the one of the handle that follows it does.
func (s *Supervisor) recordSpawned(in caps.Info, h *caps.Holder) {
	if h == nil || h.Parent == nil || h.ID != in.Holder {
		return // in flight, a launched guest or a client
	}
	s.recordSpawnedHolder(h)
}

// recordSpawnedHolder writes the guest-spawn record of spawned child h
// unless it is written already (recordSpawned).
func (s *Supervisor) recordSpawnedHolder(h *caps.Holder) {
	if _, done := s.auditSpawned.LoadOrStore(h.ID, h.Label); done {
		return
	}
	runtime.AddCleanup(h, func(id string) { s.auditSpawned.Delete(id) }, h.ID)
	_ = s.record(audit.Record{Type: audit.TypeGuestSpawn, Guest: s.spawnedRecord(h)}, false)
}

// recordExec writes the guest-exec record of h, a launched guest or a
// spawned child, which replaced its program with m; a child's comes
// after its guest-spawn record, and from then on spawnedRecord names m.
// It waits for the record.
func (s *Supervisor) recordExec(h *caps.Holder, m *abi.Module) error {
	if s.audit == nil {
		return nil
	}
	gr := &audit.GuestRecord{ID: h.ID, Module: m.Name, SHA256: m.HashString()}
	spawned := h.Parent != nil
	if spawned {
		s.recordSpawnedHolder(h)
		gr.Parent = h.Parent.ID
	}
	err := s.record(audit.Record{Type: audit.TypeGuestExec, Guest: gr}, true)
	if err == nil && spawned {
		s.auditSpawned.Store(h.ID, m.Name)
	}
	return err
}

// spawnedRecord is what the log says of spawned child h: the module it
// runs (the one it was spawned with, or the last it replaced it with),
// its parent, and the user who launched the guest at the top of its tree.
func (s *Supervisor) spawnedRecord(h *caps.Holder) *audit.GuestRecord {
	name := h.Label
	if v, ok := s.auditSpawned.Load(h.ID); ok {
		name = v.(string)
	}
	gr := &audit.GuestRecord{ID: h.ID, Module: name, SHA256: h.Module(), Parent: h.Parent.ID}
	if o, ok := h.Top().Owner.(*guestOwner); ok {
		gr.Principal, gr.UID = o.principal.String(), o.principal.UID
	}
	return gr
}

// revokeUnrecorded revokes a capability just made, or just received,
// whose record the log could not take: grants and delegations are refused
// before they are made (auditRefusal), and what a guest makes within its
// own handles (an open, a dup, an object it creates) is revoked as it is
// made, so that the call returns a handle on which every call is
// ENOTCAPABLE; so is a capability that was in flight when the log failed,
// as its receiver adopts it, since no record would name its holder.
// Nothing usable is held that the log does not show.
func (s *Supervisor) revokeUnrecorded(id caps.ID) {
	if c, ok := s.k.Lookup(id); ok {
		s.k.Revoke(c, "the audit log cannot be written")
	}
}

// settingUp reports whether holder is a guest whose launch is being set
// up: reserved, not yet started. Its guest-start record waits for the
// records of its handles.
func (s *Supervisor) settingUp(holder string) bool {
	if holder == "" {
		return false
	}
	s.mu.Lock()
	g, reserved := s.guests[holder]
	s.mu.Unlock()
	return reserved && g == nil
}

// recordDecision records a policy decision about req. Denials wait for
// their record; what an allowed request makes is recorded after it.
func (s *Supervisor) recordDecision(req policies.Request, d policies.Decision, extra audit.DecisionRecord) {
	if s.audit == nil {
		return
	}
	dr := extra
	dr.Op, dr.Allowed, dr.Reason = string(req.Op), d.Allowed, d.Reason
	dr.Rule = ruleText(d.Rule)
	dr.Resource = grantSource{kind: req.Kind, name: req.Name, path: req.Path}.String()
	dr.Rights = req.Rights.String()
	if d.Allowed {
		dr.Granted, dr.TTLNS = d.Rights.String(), int64(d.TTL)
	}
	dr.Subject = subjectText(req.Subject)
	dr.Module, dr.Labels = req.To.SHA256, maps.Clone(req.To.Labels)
	if req.Op == policies.OpGrant {
		dr.Module, dr.Labels = req.Module.SHA256, maps.Clone(req.Module.Labels)
	}
	dr.Depth, dr.Copies = req.Depth, req.Copies
	_ = s.record(audit.Record{Type: audit.TypeDecision, Decision: &dr}, !d.Allowed)
}

func subjectText(sub policies.Subject) string {
	if sub.User != "" {
		return sub.User
	}
	return fmt.Sprintf("uid:%d", sub.UID)
}

// recordStart records g's start, and waits for it and every record of
// its handles: the guest runs only once they are on disk.
func (g *Guest) recordStart(spec *LaunchSpec, grants []string) error {
	return g.s.record(audit.Record{Type: audit.TypeGuestStart, Guest: &audit.GuestRecord{
		ID: g.id, Module: spec.Module.Name, SHA256: spec.Module.HashString(),
		Principal: spec.Principal.String(), UID: spec.Principal.UID,
		Labels: maps.Clone(spec.Labels), Grants: grants, Deny: spec.Deny.Selectors(),
	}}, true)
}

// recordExit records g's exit, after the records of the handles its end
// closed.
func (g *Guest) recordExit(st abi.ExitStatus, ran time.Duration) {
	gr := &audit.GuestRecord{
		ID: g.id, Module: g.Module().Name, SHA256: g.Module().HashString(),
		Principal: g.principal.String(), UID: g.principal.UID,
		Code: st.Code, Killed: st.Killed, Signal: st.Signal, DurationNS: int64(ran),
	}
	if st.Trap != nil {
		gr.Trap = st.Trap.Error()
	}
	_ = g.s.record(audit.Record{Type: audit.TypeGuestExit, Guest: gr}, true)
}

// recordExpired records that a lease revoked c (its revoke record, with
// the receipt, came first).
func (s *Supervisor) recordExpired(c *caps.Cap, r caps.Receipt) {
	cr := audit.FromInfo(c.Info())
	_ = s.record(audit.Record{Type: audit.TypeLeaseExpired, Cap: &cr, Receipt: audit.FromReceipt(r)}, true)
}

// IsAuditFailure reports whether err is a refusal because the audit log
// cannot be written.
func IsAuditFailure(err error) bool {
	var ae *auditError
	return errors.As(err, &ae)
}

// AuditGraph returns the capability graph: the live one (the kernel's
// Snapshot and the guests listed) when at is zero, or the one rebuilt
// from the audit log as of at.
func (s *Supervisor) AuditGraph(at time.Time) (*audit.Graph, error) {
	if !at.IsZero() {
		if s.audit == nil {
			return nil, errors.New("this supervisor keeps no audit log: the graph is known only as it is now")
		}
		// What is on disk answers even when the log has failed since.
		if err := s.audit.Flush(); err != nil && s.audit.Err() == nil {
			return nil, err
		}
		return audit.Replay(s.audit.Path(), at)
	}
	var holders []audit.HolderInfo
	running := map[string]bool{}
	for _, g := range s.Guests() {
		running[g.id], _ = g.Status()
		uid := g.principal.UID
		holders = append(holders, audit.HolderInfo{
			ID: g.id, Module: g.Module().Name, SHA256: g.Module().HashString(),
			Principal: g.principal.String(), UID: &uid, Labels: maps.Clone(g.labels), Running: running[g.id],
		})
	}
	infos := s.k.Snapshot()
	nodes := make([]audit.Node, len(infos))
	for i, in := range infos {
		nodes[i] = audit.Node{CapRecord: audit.FromInfo(in), Revoked: in.Revoked, Closed: in.Closed}
		nodes[i].ChanEnd = s.chanEnd(in)
		if at, ok := s.auditInFlight.Load(in.ID); ok && in.Holder == "" {
			nodes[i].InFlight = at.(*audit.ChanEnd)
		}
	}
	g := audit.FromNodes(nodes, append(holders, s.spawnedHolders(infos, running)...))
	declarePolicy(g, s.Policy())
	return g, nil
}

// declarePolicy tells g where p's declared resources are, so that the
// live graph's who-can finds one by name when no grant of it is live.
func declarePolicy(g *audit.Graph, p *policies.Policy) {
	if p == nil {
		return
	}
	for _, r := range p.Resources() {
		switch {
		case r.Path != "":
			g.Declare(r.Kind+":"+r.Name, r.Kind+" "+r.Path)
		case r.TCP != "":
			g.Declare(r.Kind+":"+r.Name, r.Kind+" tcp "+r.TCP)
		case r.Unix != "":
			g.Declare(r.Kind+":"+r.Name, r.Kind+" unix "+r.Unix)
		}
	}
}

// spawnedHolders describes the spawned children that hold a capability
// of infos, as their guest-spawn records do: running while the launched
// guest at the top of their tree runs (a child ends no later; its own end
// is not recorded), as a graph replayed from the log has them.
func (s *Supervisor) spawnedHolders(infos []caps.Info, running map[string]bool) []audit.HolderInfo {
	var out []audit.HolderInfo
	seen := map[string]bool{}
	for _, in := range infos {
		if in.Holder == "" || seen[in.Holder] {
			continue
		}
		seen[in.Holder] = true
		c, ok := s.k.Lookup(in.ID)
		if !ok || c.Holder() == nil || c.Holder().Parent == nil {
			continue
		}
		gr := s.spawnedRecord(c.Holder())
		uid := gr.UID
		out = append(out, audit.HolderInfo{
			ID: gr.ID, Module: gr.Module, SHA256: gr.SHA256, Principal: gr.Principal, UID: &uid,
			Parent: gr.Parent, Running: running[c.Holder().Top().ID],
		})
	}
	return out
}
