package caps

import (
	"sync"
	"time"
)

// Holder is whoever holds capabilities: a guest, a client principal, or the
// supervisor itself.
type Holder struct {
	ID    string // unique within a kernel ("g-12", "uid:1000")
	Label string // human name (module name, user name)
}

// EventType classifies kernel events for observers such as the audit log.
type EventType uint8

const (
	EventMint EventType = iota + 1
	EventDerive
	EventNarrow
	EventClose
	EventRevoke
	EventAdopt
)

var eventTypeNames = [...]string{"", "mint", "derive", "narrow", "close", "revoke", "adopt"}

func (t EventType) String() string {
	if int(t) < len(eventTypeNames) {
		return eventTypeNames[t]
	}
	return "event"
}

// Event is one change to the capability graph.
type Event struct {
	Type EventType
	Cap  Info
	// Receipt is set on EventRevoke: everything the revocation cut off.
	Receipt *Receipt
}

// Observer receives every change to the capability graph, synchronously
// and in order, after the change is made. It must not call back into the
// kernel's mutating methods.
type Observer func(Event)

// Kernel owns the capability graph: every capability it minted, their
// derivation tree, and revocation.
type Kernel struct {
	mu   sync.Mutex
	caps map[ID]*Cap
	obs  Observer
}

// NewKernel returns an empty kernel. obs may be nil.
func NewKernel(obs Observer) *Kernel {
	return &Kernel{caps: make(map[ID]*Cap), obs: obs}
}

func (k *Kernel) emit(e Event) {
	if k.obs != nil {
		k.obs(e)
	}
}

// Mint creates a root capability for holder on res, with rights clipped to
// the kind's maximum. origin records what authorised it.
func (k *Kernel) Mint(holder *Holder, res Resource, base, inheriting Rights, name, origin string) *Cap {
	mb, mi := res.Kind().MaxRights()
	rr := &refRes{Resource: res}
	c := k.newCap(holder, rr, base&mb, inheriting&mi, name)
	c.edge = EdgeGrant
	c.origin = origin
	k.mu.Lock()
	k.caps[c.id] = c
	k.mu.Unlock()
	k.emit(Event{Type: EventMint, Cap: c.Info()})
	return c
}

func (k *Kernel) newCap(holder *Holder, rr *refRes, base, inh Rights, name string) *Cap {
	rr.retain()
	c := &Cap{
		id: newID(), token: newToken(), k: k, kind: rr.Kind(), res: rr,
		name: name, created: time.Now(), done: make(chan struct{}),
	}
	c.holder.Store(holder)
	c.base.Store(uint64(base))
	c.inh.Store(uint64(inh))
	return c
}

// Derivation describes a capability to derive from an existing one.
type Derivation struct {
	Holder *Holder
	Edge   Edge
	Name   string
	// Base and Inheriting are the rights asked for. They must be a subset
	// of the parent's base rights (for a copy of the same resource) or of
	// its inheriting rights (for a new resource reached through it);
	// otherwise Derive fails with ENOTCAPABLE.
	Base, Inheriting Rights
	// Resource is the new object reached through the parent (a file opened
	// beneath a directory), or nil for a copy of the parent's resource.
	// Derive takes ownership: on failure it closes it.
	Resource Resource
}

// Derive creates a child capability. The child's rights never exceed the
// parent's (see Derivation), and revoking the parent revokes the child.
func (k *Kernel) Derive(parent *Cap, d Derivation) (*Cap, error) {
	pb, pi := parent.Rights()
	limitB, limitI := pb, pi
	rr := parent.res
	if d.Resource != nil {
		limitB, limitI = pi, pi
		rr = &refRes{Resource: d.Resource}
	}
	if !d.Base.Subset(limitB) || !d.Inheriting.Subset(limitI) {
		if d.Resource != nil {
			_ = d.Resource.Close()
		}
		return nil, ENOTCAPABLE
	}
	mb, mi := rr.Kind().MaxRights()
	c := k.newCap(d.Holder, rr, d.Base&mb, d.Inheriting&mi, d.Name)
	c.parent = parent
	c.edge = d.Edge
	if d.Resource == nil {
		c.removed = pb &^ Rights(c.base.Load())
	} else {
		c.removed = pi &^ Rights(c.base.Load())
	}
	k.mu.Lock()
	if parent.revoked.Load() {
		k.mu.Unlock()
		c.dropResource()
		return nil, ENOTCAPABLE
	}
	parent.children = append(parent.children, c)
	k.caps[c.id] = c
	k.mu.Unlock()
	k.emit(Event{Type: EventDerive, Cap: c.Info()})
	return c, nil
}

// NewRevoker derives from c a forwarder for holder and a revoker for the
// holder of c. Revoking through the revoker (Kernel.RevokeVia) revokes the
// forwarder and everything derived from it, and nothing else: c itself
// survives.
func (k *Kernel) NewRevoker(c *Cap, forwarderHolder, revokerHolder *Holder) (forwarder, revoker *Cap, err error) {
	b, i := c.Rights()
	forwarder, err = k.Derive(c, Derivation{Holder: forwarderHolder, Edge: EdgeRevocable, Name: c.name, Base: b, Inheriting: i})
	if err != nil {
		return nil, nil, err
	}
	rr := &refRes{Resource: revokerRes{}}
	revoker = k.newCap(revokerHolder, rr, 0, 0, "revoker:"+string(forwarder.id))
	revoker.receiver = forwarder
	revoker.parent = c
	revoker.edge = EdgeRevocable
	k.mu.Lock()
	c.children = append(c.children, revoker)
	k.caps[revoker.id] = revoker
	k.mu.Unlock()
	k.emit(Event{Type: EventDerive, Cap: revoker.Info()})
	return forwarder, revoker, nil
}

// RevokeVia revokes the forwarder that revoker controls.
func (k *Kernel) RevokeVia(revoker *Cap, reason string) (Receipt, error) {
	if revoker.kind != KindRevoker || revoker.receiver == nil {
		return Receipt{}, EINVAL
	}
	if revoker.revoked.Load() {
		return Receipt{}, ENOTCAPABLE
	}
	return k.Revoke(revoker.receiver, reason), nil
}

type revokerRes struct{}

func (revokerRes) Kind() Kind       { return KindRevoker }
func (revokerRes) Close() error     { return nil }
func (revokerRes) Describe() string { return "revoker" }

// Receipt lists what one revocation cut off.
type Receipt struct {
	Root    ID
	Reason  string
	Revoked []ID
	Holders []string
	At      time.Time
	Took    time.Duration
}

// Revoke revokes c and every capability derived from it, in every holder.
// When it returns, every such capability answers ENOTCAPABLE, no operation
// on any of them is still running, and resources no longer referenced are
// closed. Revoking an already revoked capability returns an empty receipt.
func (k *Kernel) Revoke(c *Cap, reason string) Receipt {
	start := time.Now()
	var victims []*Cap
	k.mu.Lock()
	var walk func(*Cap)
	walk = func(x *Cap) {
		if x.revoked.Load() {
			return
		}
		x.revoked.Store(true)
		close(x.done)
		victims = append(victims, x)
		for _, ch := range x.children {
			walk(ch)
		}
	}
	walk(c)
	k.mu.Unlock()

	r := Receipt{Root: c.id, Reason: reason, At: start}
	seen := map[string]bool{}
	for _, v := range victims {
		v.waitIdle()
		r.Revoked = append(r.Revoked, v.id)
		if h := v.holder.Load(); h != nil && !seen[h.ID] {
			seen[h.ID] = true
			r.Holders = append(r.Holders, h.ID)
		}
		v.dropResource()
	}
	r.Took = time.Since(start)
	if len(victims) > 0 {
		k.emit(Event{Type: EventRevoke, Cap: c.Info(), Receipt: &r})
	}
	return r
}

// Close ends a holder's use of c (the guest closed the fd, or the guest
// exited). Unlike Revoke it does not affect capabilities derived from c:
// a file opened beneath a directory stays open after the directory handle
// is closed. Closing twice is a no-op.
func (k *Kernel) Close(c *Cap) {
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	c.dropResource()
	k.mu.Lock()
	k.prune(c)
	k.mu.Unlock()
	k.emit(Event{Type: EventClose, Cap: c.Info()})
}

// prune forgets closed capabilities that no living capability descends
// from. Called with k.mu held.
func (k *Kernel) prune(c *Cap) {
	for c != nil && c.closed.Load() && len(c.children) == 0 {
		delete(k.caps, c.id)
		p := c.parent
		if p == nil {
			return
		}
		for i, ch := range p.children {
			if ch == c {
				p.children = append(p.children[:i], p.children[i+1:]...)
				break
			}
		}
		c = p
	}
}

// Adopt gives an in-flight capability (derived for delegation with no
// holder) to the holder that received it.
func (k *Kernel) Adopt(c *Cap, h *Holder) {
	c.holder.Store(h)
	k.emit(Event{Type: EventAdopt, Cap: c.Info()})
}

// Lookup returns the live or revoked capability with the given public id.
func (k *Kernel) Lookup(id ID) (*Cap, bool) {
	k.mu.Lock()
	c, ok := k.caps[id]
	k.mu.Unlock()
	return c, ok
}

// LookupToken returns the capability with id if token matches its secret.
func (k *Kernel) LookupToken(id ID, token Token) (*Cap, bool) {
	c, ok := k.Lookup(id)
	if !ok || !c.token.Equal(token) {
		return nil, false
	}
	return c, true
}

// Snapshot returns the public description of every capability the kernel
// still tracks (open, or with open descendants), parents before children.
func (k *Kernel) Snapshot() []Info {
	k.mu.Lock()
	var roots []*Cap
	for _, c := range k.caps {
		if c.parent == nil || k.caps[c.parent.id] == nil {
			roots = append(roots, c)
		}
	}
	var out []Info
	var walk func(*Cap)
	walk = func(c *Cap) {
		out = append(out, c.Info())
		for _, ch := range c.children {
			walk(ch)
		}
	}
	for _, r := range roots {
		walk(r)
	}
	k.mu.Unlock()
	return out
}

// Subtree returns the ids of c and everything derived from it that is
// still tracked: what revoking c would cut off.
func (k *Kernel) Subtree(c *Cap) []ID {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []ID
	var walk func(*Cap)
	walk = func(x *Cap) {
		out = append(out, x.id)
		for _, ch := range x.children {
			walk(ch)
		}
	}
	walk(c)
	return out
}
