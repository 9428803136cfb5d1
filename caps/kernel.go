package caps

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Holder is whoever holds capabilities: a guest, a client principal, or the
// supervisor itself.
type Holder struct {
	ID    string // unique within a kernel ("g-12", "uid:1000")
	Label string // human name (module name, user name)
	// Parent is the holder that spawned this one (a child guest's parent),
	// or nil.
	Parent *Holder
	// Owner is what the supervisor knows of who acts through the holder
	// (the principal that launched a guest, a client's user). The kernel
	// never reads it; a Gate may.
	Owner any
	// module is the lower-case hex SHA-256 of the module the holder runs
	// (Module, SetModule).
	module atomic.Pointer[string]
}

// Module returns the lower-case hex SHA-256 of the module the holder runs
// now, or "" for a holder that is not a guest.
func (h *Holder) Module() string {
	if m := h.module.Load(); m != nil {
		return *m
	}
	return ""
}

// SetModule records the module the holder runs: at its start, and again
// when the guest replaces its program (proc_exec), so that a Gate judges
// it as the code it runs.
func (h *Holder) SetModule(sha256 string) { h.module.Store(&sha256) }

// MaxClosedAbove bounds the closed capabilities among the nearest
// 2×MaxClosedAbove ancestors of the one a capability is derived from. A
// closed capability with a live descendant stays in the tree, so that
// revoking it still reaches the descendant; a chain of them is how a guest
// would grow the tree: send a handle to itself over a channel and close
// the original, over and over (or pass it to and fro with another guest,
// or from spawned child to spawned child). A derivation from a handle
// with MaxClosedAbove closed capabilities that near above it fails with
// EMFILE, so a chain grows only as its holders keep about one handle open
// for each closed one. Only that handle is refused: no guest can use the
// bound up for a handle that does not descend from its own. A closed dup
// or open copy is spliced out instead (Close), and is never counted.
const MaxClosedAbove = 64

// ErrClosedAbove is a derivation MaxClosedAbove refused; to a guest it is
// EMFILE.
var ErrClosedAbove = fmt.Errorf("%d of the capabilities it derives from, nearest it, are closed (caps.MaxClosedAbove): a copy from earlier in its chain can still be used: %w", MaxClosedAbove, EMFILE)

// Top returns the holder at the root of h's spawn tree: h itself unless a
// guest spawned it.
func (h *Holder) Top() *Holder {
	for h != nil && h.Parent != nil {
		h = h.Parent
	}
	return h
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
	// Holder is who holds Cap as it is minted or derived (nil for a copy
	// in flight, and on the other events), and Resource what it opens
	// (nil on the other events): the observer need not look the
	// capability up again, under the kernel's lock.
	Holder   *Holder
	Resource Resource
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
	gate atomic.Pointer[Gate] // decides delegations; nil allows them all (SetGate)
	// passing locks the roots whose copies the gate is deciding about
	// (lockRoot); guarded by mu.
	passing map[*Cap]*rootLock
	// orphans are the channel ends that capabilities still refer to but
	// no holder holds: ends in flight, or left in queues. They are all
	// collect looks at, so that its cost is theirs rather than that of
	// every channel end (each guest holds one) or every capability.
	// Guarded by mu.
	orphans map[*refRes]*Channel
	// gcPending asks for a collection, gcRunning says that one goroutine
	// runs them (collect), and gcMoves counts the receives that took
	// capabilities out of an orphan's queue, which a collection must not
	// overlap.
	gcPending, gcRunning atomic.Bool
	gcMoves              atomic.Uint64
	// gcBetweenPasses, when not nil, runs between the two passes of a
	// collection (unreachableOrphans), with k.mu held: a test's way to
	// move a capability exactly there.
	gcBetweenPasses func()
}

// NewKernel returns an empty kernel. obs may be nil.
func NewKernel(obs Observer) *Kernel {
	return &Kernel{
		caps: make(map[ID]*Cap), obs: obs, passing: make(map[*Cap]*rootLock),
		orphans: make(map[*refRes]*Channel),
	}
}

func (k *Kernel) emit(e Event) {
	if k.obs != nil {
		k.obs(e)
	}
}

// Mint creates a root capability for holder on res, with rights clipped to
// the kind's maximum. origin records what authorised it. The capability
// owns res: res is closed when the last capability sharing it goes.
func (k *Kernel) Mint(holder *Holder, res Resource, base, inheriting Rights, name, origin string) *Cap {
	return k.root(holder, res, base, inheriting, name, origin, "", EdgeGrant)
}

// MintBy is Mint of a grant someone made: by names them in the minter's
// terms (a daemon's user), for the audit graph. The kernel keeps it on
// the capability (Cap.By, Info.By, and so the mint event's) and decides
// nothing by it; the capabilities derived from it do not carry it.
func (k *Kernel) MintBy(by string, holder *Holder, res Resource, base, inheriting Rights, name, origin string) *Cap {
	return k.root(holder, res, base, inheriting, name, origin, by, EdgeGrant)
}

// Create makes a root capability for an object that holder created itself
// (fd_create1's byte object, fd_create2's channel ends), with rights
// clipped to the kind's maximum. It differs from Mint only in the edge
// recorded, EdgeCreate: nothing but the holder's own call authorised it,
// and origin names that call.
func (k *Kernel) Create(holder *Holder, res Resource, base, inheriting Rights, name, origin string) *Cap {
	return k.root(holder, res, base, inheriting, name, origin, "", EdgeCreate)
}

func (k *Kernel) root(holder *Holder, res Resource, base, inheriting Rights, name, origin, by string, edge Edge) *Cap {
	mb, mi := res.Kind().MaxRights()
	c := k.newCap(holder, newRefRes(res), base&mb, inheriting&mi, name)
	c.edge = edge
	c.origin, c.by = origin, by
	k.mu.Lock()
	k.track(c)
	k.hold(c)
	k.mu.Unlock()
	k.emit(Event{Type: EventMint, Cap: c.Info(), Holder: c.Holder(), Resource: c.Resource()})
	return c
}

// newCap builds a capability on rr, on which the caller holds a reference
// for it.
func (k *Kernel) newCap(holder *Holder, rr *refRes, base, inh Rights, name string) *Cap {
	c := &Cap{
		id: newID(), token: newToken(), k: k, kind: rr.Kind(), res: rr,
		name: name, created: time.Now(),
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
	// For is the holder that will adopt the new capability when Holder is
	// nil because it does not hold it yet (a guest whose launch is being
	// set up). nil with a nil Holder means the recipient is not known
	// (a capability in flight on a channel). Only a Gate reads it.
	For *Holder
	// Origin says how the new capability came to be passed on, for its
	// provenance ("sent on chan:jobs", "in a call to service store"); it
	// is the new capability's Origin. "" records nothing.
	Origin string
}

// Derive creates a child capability. The child's rights never exceed the
// parent's (see Derivation): they are checked against the parent's rights
// at the moment the child is linked into the tree, under the kernel lock,
// so a concurrent Narrow or Revoke of the parent either happens before
// (and Derive sees it) or after (and the child is an older copy that
// revocation still reaches). Revoking the parent revokes the child.
//
// A copy of a revoker (fd_dup, or a revoker sent to another holder)
// revokes the same forwarder as the original.
//
// A derivation that passes parent on to another holder (EdgeDelegate,
// EdgeSpawn) is first put to the kernel's Gate, if it has one: the gate
// may narrow it, refuse it (Derive then returns the gate's error) or lease
// the new capability (Lease). Such derivations of capabilities that share
// a root are decided one at a time, each once the copy the one before it
// allowed is linked (see Gate).
func (k *Kernel) Derive(parent *Cap, d Derivation) (*Cap, error) {
	c, lease, err := k.admit(parent, d)
	if err != nil {
		return nil, err
	}
	k.emit(Event{Type: EventDerive, Cap: c.Info(), Holder: c.Holder(), Resource: c.Resource()})
	k.Lease(c, lease)
	return c, nil
}

// admit derives the child d describes once the gate, if d passes parent on
// and there is one, agrees to it, and returns the lease the gate set.
//
// The gate is asked, and the child linked, under the lock of parent's
// root, so that a gate that counts the copies of a root (a policy's
// max_copies) counts every copy it allowed before: asked concurrently, each
// call would otherwise count the copies before any of the others is
// linked, and all would pass. The lock is per root rather than one for the
// kernel because a gate may be slow (the supervisor's waits for its audit
// log when it refuses), and delegations of unrelated grants need not wait
// for each other; the copies of one grant are passed on one at a time.
func (k *Kernel) admit(parent *Cap, d Derivation) (*Cap, time.Duration, error) {
	var g Gate
	if passesOn(d.Edge) {
		g = k.currentGate()
	}
	if g == nil {
		c, err := k.derive(parent, d)
		return c, 0, err
	}
	root := parent.Root()
	l := k.lockRoot(root)
	defer k.unlockRoot(root, l)
	lease, err := g.Delegate(parent, &d)
	if err != nil {
		if d.Resource != nil {
			_ = d.Resource.Close()
		}
		return nil, 0, err
	}
	c, err := k.derive(parent, d)
	return c, lease, err
}

// derive links the child d describes below parent, if parent's rights
// allow it. The caller emits its event.
func (k *Kernel) derive(parent *Cap, d Derivation) (*Cap, error) {
	var rr *refRes
	if d.Resource != nil {
		rr = newRefRes(d.Resource)
	} else {
		rr = parent.res
	}
	mb, mi := rr.Kind().MaxRights()
	c := k.newCap(d.Holder, rr, d.Base&mb, d.Inheriting&mi, d.Name)
	c.parent.Store(parent)
	c.edge = d.Edge
	c.origin = d.Origin
	if d.Resource == nil {
		c.receiver = parent.receiver
	}

	k.mu.Lock()
	pb, pi := parent.Rights()
	limitB, limitI := pb, pi
	if d.Resource != nil {
		limitB = pi
	}
	err := error(nil)
	switch {
	case parent.revoked.Load() || !d.Base.Subset(limitB) || !d.Inheriting.Subset(limitI):
		err = ENOTCAPABLE
	case parent.closed.Load():
		err = EBADF
	case closedAbove(parent) >= MaxClosedAbove:
		err = ErrClosedAbove
	case d.Resource == nil && (rr.collected || !rr.tryRetain()):
		err = EBADF // every holder of the resource let go of it
	}
	if err != nil {
		k.mu.Unlock()
		if d.Resource != nil {
			_ = d.Resource.Close()
		}
		return nil, err
	}
	c.removed = limitB &^ Rights(c.base.Load())
	k.link(parent, c)
	k.hold(c)
	k.mu.Unlock()
	return c, nil
}

// link records c as a child of parent and makes the kernel track it.
// Called with k.mu held.
func (k *Kernel) link(parent, c *Cap) {
	c.idx = len(parent.children)
	parent.children = append(parent.children, c)
	k.track(c)
}

// track makes the kernel know c by its id, and, for collect, a channel
// end that only c, in flight, refers to. Called with k.mu held.
func (k *Kernel) track(c *Cap) {
	k.caps[c.id] = c
	if ch, ok := c.res.Resource.(*Channel); ok && c.res.held == 0 {
		k.orphan(c.res, ch)
	}
}

// orphan and unorphan add the channel end r to Kernel.orphans and remove
// it, and say so to the end's receives (chanPair.orphan). Called with
// k.mu held.
func (k *Kernel) orphan(r *refRes, ch *Channel) {
	k.orphans[r] = ch
	r.gcOrphan = true
	ch.p.orphan[ch.side].Store(true)
}

func (k *Kernel) unorphan(r *refRes) {
	if !r.gcOrphan { // r is in k.orphans exactly when this is set
		return
	}
	if ch, ok := k.orphans[r]; ok {
		delete(k.orphans, r)
		r.gcOrphan = false
		ch.p.orphan[ch.side].Store(false)
	}
}

// forgetEnd stops collect from looking at the channel end rr, which the
// last capability on it has let go of.
func (k *Kernel) forgetEnd(rr *refRes) {
	k.mu.Lock()
	k.unorphan(rr)
	k.mu.Unlock()
}

// hold counts c among its resource's held capabilities if it has a
// holder. Called with k.mu held.
func (k *Kernel) hold(c *Cap) {
	if c.holder.Load() != nil && !c.counted {
		c.counted = true
		if c.res.held++; c.res.held == 1 {
			k.unorphan(c.res)
		}
	}
}

// unhold stops counting c as held. A channel end whose last held
// capability it was becomes an orphan: reachable, if at all, only through
// channel queues. Called with k.mu held.
func (k *Kernel) unhold(c *Cap) {
	if !c.counted {
		return
	}
	c.counted = false
	c.res.held--
	if ch, isChan := c.res.Resource.(*Channel); isChan && c.res.held == 0 {
		k.orphan(c.res, ch)
	}
}

// NewRevoker derives from c a forwarder for forwarderHolder and a revoker
// for revokerHolder. The forwarder has c's current rights. Revoking through
// the revoker (Kernel.RevokeVia) revokes the forwarder and everything
// derived from it, and nothing else: c itself and the revoker survive. The
// revoker is a child of c, so revoking c revokes the revoker too.
func (k *Kernel) NewRevoker(c *Cap, forwarderHolder, revokerHolder *Holder) (forwarder, revoker *Cap, err error) {
	k.mu.Lock()
	b, i := c.Rights()
	k.mu.Unlock()
	forwarder, err = k.Derive(c, Derivation{Holder: forwarderHolder, Edge: EdgeRevocable, Name: c.name, Base: b, Inheriting: i})
	if err != nil {
		return nil, nil, err
	}
	revoker = k.newCap(revokerHolder, newRefRes(revokerRes{}), 0, 0, "revoker:"+string(forwarder.id))
	revoker.receiver = forwarder
	revoker.parent.Store(c)
	revoker.edge = EdgeRevocable
	k.mu.Lock()
	// c was revoked between the two derivations, and the forwarder went
	// with it: a revoker of nothing is of no use. Or c was closed, and may
	// have been spliced out of the tree (Close): a revoker linked beneath
	// it would be out of its ancestors' reach.
	err = nil
	switch {
	case c.revoked.Load():
		err = ENOTCAPABLE
	case c.closed.Load():
		err = EBADF
	}
	if err != nil {
		k.mu.Unlock()
		revoker.dropResource()
		k.Close(forwarder)
		return nil, nil, err
	}
	k.link(c, revoker)
	k.hold(revoker)
	k.mu.Unlock()
	k.emit(Event{Type: EventDerive, Cap: revoker.Info()})
	return forwarder, revoker, nil
}

// RevokeVia revokes the forwarder that revoker controls, as Revoke does.
// It fails with EINVAL when revoker is not a revoker and with ENOTCAPABLE
// when the revoker itself has been revoked. Revoking an already revoked
// forwarder succeeds with an empty receipt, once no operation on the
// forwarder's subtree is still running (see Revoke).
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
	// Owners are the Owner of the holder at the top of each holder's spawn
	// tree (Holder.Top), in the order of Holders: whom each acted for, for
	// a supervisor to tell, after the holders are gone. The kernel never
	// reads them.
	Owners []any
	// HeldBy gives, for each of Revoked in order, the index in Holders
	// of its holder, or -1 for one in flight: whose each was when it was
	// cut off, after it is closed and forgotten.
	HeldBy []int
	At     time.Time
	Took   time.Duration
}

// Revoke revokes c and every capability derived from it, in every holder.
// When it returns, every such capability answers ENOTCAPABLE, no operation
// on any of them is still running (Acquire/Release), and resources no
// longer referenced are closed. Blocking operations end promptly because
// Done is closed and revocation watchers (WatchRevoke) are woken before
// Revoke waits for them.
//
// The receipt lists what this call revoked. Capabilities an earlier
// revocation took are not listed again, so revoking an already revoked
// capability returns an empty receipt; but Revoke still waits for the
// operations on them, which that revocation may still be waiting for
// itself: the promise above holds whichever call revoked them.
//
// A capability a Hold keeps acquired counts as an operation running: Revoke
// asks the Hold's goroutine to give it up (see Hold) and waits for that.
//
// Revoke must not be called while the caller holds one of the victims
// acquired: it would wait for itself.
func (k *Kernel) Revoke(c *Cap, reason string) Receipt {
	start := time.Now()
	k.mu.Lock()
	victims, earlier, ends := k.markRevoked(c)
	k.mu.Unlock()
	for _, v := range victims {
		v.watchers.wakeAll()
		v.askDrop()
	}
	r := Receipt{Root: c.id, Reason: reason, At: start}
	cutOff(victims, &r)
	for _, x := range earlier {
		x.waitIdle()
		x.dropResource() // as the revocation that took it will, once it gets there
	}
	k.settle(victims, earlier)
	if ends {
		k.collect() // their references are gone: what they kept may be garbage now
	}
	if len(victims) == 0 {
		return r
	}
	r.Took = time.Since(start)
	k.emit(Event{Type: EventRevoke, Cap: c.Info(), Receipt: &r})
	return r
}

// markRevoked revokes c and everything derived from it that is not revoked
// yet (walkDown), and returns those capabilities: the victims. It also
// returns the capabilities below c that an earlier revocation took and
// that may still have operations running (earlier), and whether any of
// them refers to a channel end (see collect). Subtrees whose revocation
// has settled are skipped: nothing in them can run again. Called with
// k.mu held.
func (k *Kernel) markRevoked(c *Cap) (victims, earlier []*Cap, ends bool) {
	walkDown(c, func(x *Cap) bool {
		switch {
		case x.settled:
			return false
		case x.revoked.Load():
			earlier = append(earlier, x)
		default:
			x.revoked.Store(true)
			ch, _ := x.done.Load().(chan struct{})
			x.closeDone(ch)
			k.unhold(x)
			victims = append(victims, x)
		}
		_, isEnd := x.res.Resource.(*Channel)
		ends = ends || isEnd
		return true
	})
	return victims, earlier, ends
}

// cutOff waits for the operations on each victim to end, gives up its
// reference on its resource and lists it, and its holder, in r.
func cutOff(victims []*Cap, r *Receipt) {
	if len(victims) == 0 {
		return
	}
	r.Revoked = make([]ID, 0, len(victims))
	r.HeldBy = make([]int, 0, len(victims))
	seen := make(map[*Holder]int)
	for _, v := range victims {
		v.waitIdle()
		r.Revoked = append(r.Revoked, v.id)
		i := -1
		if h := v.holder.Load(); h != nil {
			var ok bool
			if i, ok = seen[h]; !ok {
				i = len(r.Holders)
				seen[h] = i
				r.Holders = append(r.Holders, h.ID)
				r.Owners = append(r.Owners, h.Top().Owner)
			}
		}
		r.HeldBy = append(r.HeldBy, i)
		v.dropResource()
	}
}

// settle records that no operation runs on the capabilities of a subtree
// that Revoke has revoked and waited for, nor can again, so that later
// revocations reaching them need not walk them: revoking a large subtree
// twice, or an ancestor of one, costs no more than revoking what is left.
func (k *Kernel) settle(victims, earlier []*Cap) {
	if len(victims) == 0 && len(earlier) == 0 {
		return
	}
	k.mu.Lock()
	for _, x := range victims {
		x.settled = true
	}
	for _, x := range earlier {
		x.settled = true
	}
	k.mu.Unlock()
}

// Close ends a holder's use of c (the guest closed the fd, or the guest
// exited). Unlike Revoke it does not affect capabilities derived from c:
// a file opened beneath a directory stays open after the directory handle
// is closed. Closing twice is a no-op.
func (k *Kernel) Close(c *Cap) {
	if k.close(c) {
		k.collect()
	}
}

// close is Close without the collection it may call for: it reports
// whether c referred to a channel end that no holder holds now and that
// other references keep, which may have left garbage (the last reference
// from outside a cycle of ends went), so that a caller closing many
// capabilities collects once.
func (k *Kernel) close(c *Cap) (collect bool) {
	if !c.closed.CompareAndSwap(false, true) {
		return false
	}
	c.uncharge()
	k.mu.Lock()
	k.unhold(c)
	_, isEnd := c.res.Resource.(*Channel)
	unheld := isEnd && c.res.held == 0
	k.splice(c)
	k.prune(c)
	k.mu.Unlock()
	c.dropResource()
	k.emit(Event{Type: EventClose, Cap: c.Info()})
	return unheld && c.res.refs.Load() > 0
}

// collect empties the queues of channel ends that no holder can ever read
// again, closing the capabilities in flight in them.
//
// A channel end stays open while any capability refers to it, and a
// capability in flight keeps its resource open; so a channel end sent
// over itself, or ends sent over each other, would keep each other open
// after every holder let go, and a guest could pile up such cycles.
// collect looks only at the ends no holder holds (Kernel.orphans), as
// Linux's collector of Unix sockets looks only at sockets in flight. An
// orphan is reachable if a capability from outside the orphans' queues
// refers to it (one in the queue of a held end, one being received or
// not yet queued, one a revocation has not let go of yet), or if one
// waits in the queue of a reachable orphan; the queues of the rest are
// dropped, which closes the cycles. It runs whenever a reference to an
// end no holder holds goes while others remain (Close, Revoke), which a
// guest can make happen at will: it costs a pass over the orphans and
// what waits in their queues, which the limits on handles in flight bound
// (InFlightLimit), not over every channel end.
//
// One goroutine runs collections at a time; a collect called meanwhile
// asks it for one more and returns, so that the closes a collection makes
// (which may call for another) do not nest. A caller runs at most
// gcRoundsPerCaller of them and leaves the rest to a goroutine of their
// own.
func (k *Kernel) collect() {
	k.gcPending.Store(true)
	for k.gcPending.Load() && k.gcRunning.CompareAndSwap(false, true) {
		settled, rounds := true, 0
		for settled && rounds < gcRoundsPerCaller && k.gcPending.Swap(false) {
			settled = k.collectOnce()
			rounds++
		}
		if !settled {
			// Receives keep overlapping it: try again shortly, whether or
			// not another close or revocation asks for it.
			k.gcPending.Store(true)
			k.gcRunning.Store(false)
			time.AfterFunc(gcRetry, k.collect)
			return
		}
		k.gcRunning.Store(false)
		if rounds == gcRoundsPerCaller && k.gcPending.Load() {
			// Others keep asking: their collections are not this caller's
			// to wait for (it may hold a lock of its own).
			go k.collect()
			return
		}
	}
}

// gcRoundsPerCaller bounds the collections one call of collect runs: its
// own, and one that another asked for meanwhile.
const gcRoundsPerCaller = 2

// gcRetry is how soon collect tries again after collectOnce gave up.
const gcRetry = time.Millisecond

// collectOnce makes one collection. A receive that takes a capability out
// of an orphan's queue while the reachable orphans are worked out (only
// an operation that began before the end's last holder let go can) could
// make an end look dead that the receiver is about to adopt; so the work
// is done again if one did, and after four tries collectOnce reports
// false and collect tries again later. An end found dead is marked
// collected under k.mu, so that nothing is derived from it before its
// queue is dropped. Nothing receives from a dead end after the check:
// receiving needs a capability on it acquired, which a revocation keeps
// counted until the operation ends, and a close cannot overlap an
// operation on the same handle (a guest makes one host call at a time;
// its table is closed after it has ended).
func (k *Kernel) collectOnce() (settled bool) {
	for range 4 {
		k.mu.Lock()
		moves := k.gcMoves.Load()
		dead := k.unreachableOrphans()
		if k.gcMoves.Load() != moves {
			k.mu.Unlock()
			continue
		}
		for _, r := range dead {
			r.collected = true
		}
		k.mu.Unlock()
		for _, r := range dead {
			r.Resource.(*Channel).dropQueue()
		}
		return true
	}
	return false
}

// unreachableOrphans returns the orphan ends collect drops. Their
// reference counts are read first: while k.mu is held no reference is
// made (a derivation links under it), and one given up meanwhile leaves
// the count too high, so that end stays until the next collection. The
// marks live in the ends themselves (refRes.gcOutside, gcLive), not in
// maps made for each collection. Called with k.mu held.
func (k *Kernel) unreachableOrphans() []*refRes {
	for r := range k.orphans {
		r.gcOutside, r.gcLive = r.refs.Load(), false
	}
	for _, ch := range k.orphans {
		ch.eachQueued(func(x *Cap) {
			if y := x.res; y.gcOrphan && !x.released.Load() {
				y.gcOutside--
			}
		})
	}
	if k.gcBetweenPasses != nil {
		k.gcBetweenPasses()
	}
	var reach []*refRes
	for r := range k.orphans {
		if r.gcOutside > 0 {
			r.gcLive = true
			reach = append(reach, r)
		}
	}
	for len(reach) > 0 {
		r := reach[len(reach)-1]
		reach = reach[:len(reach)-1]
		r.Resource.(*Channel).eachQueued(func(x *Cap) {
			if y := x.res; y.gcOrphan && !y.gcLive && !x.released.Load() {
				y.gcLive = true
				reach = append(reach, y)
			}
		})
	}
	var dead []*refRes
	for r := range k.orphans {
		if !r.gcLive {
			dead = append(dead, r)
		}
	}
	return dead
}

// splice gives the children of c, just closed, to c's parent when c is a
// copy made within its holder (EdgeDup) or something opened beneath its
// parent (EdgeOpen). Only a revocation of c itself could tell the two
// places apart, and a closed copy of that kind is of no one's concern: it
// carries no lease, is no revoker's forwarder, and nothing of it can be
// passed on any more; revoking its parent, or anything above, reaches its
// children as before. Without this, a guest that dups a handle and closes
// the old one, over and over, would grow a chain the kernel kept for good.
// The depth the gate reads (Depth) counts neither edge, so it is the same
// after. Called with k.mu held.
func (k *Kernel) splice(c *Cap) {
	p := c.parent.Load()
	if len(c.children) == 0 || !splicedOnClose(c) {
		return
	}
	for _, x := range c.children {
		x.parent.Store(p)
		x.idx = len(p.children)
		p.children = append(p.children, x)
	}
	c.children = nil
}

// closedAbove counts the closed capabilities among the nearest
// 2×MaxClosedAbove ancestors of c. A closed dup or open copy that Close
// has not spliced out yet is not counted. Called with k.mu held.
func closedAbove(c *Cap) int {
	n, seen := 0, 0
	for p := c.parent.Load(); p != nil && seen < 2*MaxClosedAbove; p = p.parent.Load() {
		seen++
		if p.closed.Load() && !splicedOnClose(p) {
			n++
		}
	}
	return n
}

// splicedOnClose reports whether Close gives c's children to c's parent.
func splicedOnClose(c *Cap) bool {
	return c.edge.SplicedOnClose() && c.parent.Load() != nil
}

// prune forgets closed capabilities that no tracked capability descends
// from, walking up from c. Called with k.mu held. Each step is O(1): a
// capability knows its index among its parent's children.
func (k *Kernel) prune(c *Cap) {
	for c != nil && c.closed.Load() && len(c.children) == 0 {
		if _, tracked := k.caps[c.id]; !tracked {
			return
		}
		delete(k.caps, c.id)
		c.endLease()
		p := c.parent.Load()
		if p == nil {
			return
		}
		last := len(p.children) - 1
		moved := p.children[last]
		p.children[c.idx] = moved
		moved.idx = c.idx
		p.children[last] = nil
		p.children = p.children[:last]
		c = p
	}
}

// Adopt gives an in-flight capability (derived for delegation with no
// holder) to the holder that received it, once the kernel's gate, if it
// has one, agrees (Gate.Adopt); a refused capability is closed and the
// gate's error returned. Adopting a capability that already has a holder
// changes nothing: capabilities are never moved between holders behind
// their back.
func (k *Kernel) Adopt(c *Cap, h *Holder) error {
	if g := k.currentGate(); g != nil && c.holder.Load() == nil {
		if err := g.Adopt(c, h); err != nil {
			k.Close(c)
			return err
		}
	}
	k.mu.Lock()
	ok := c.holder.CompareAndSwap(nil, h)
	if ok && !c.revoked.Load() && !c.closed.Load() {
		k.hold(c)
	}
	k.mu.Unlock()
	if ok {
		c.uncharge()
		k.emit(Event{Type: EventAdopt, Cap: c.Info()})
	}
	return nil
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
		if p := c.parent.Load(); p == nil || k.caps[p.id] == nil {
			roots = append(roots, c)
		}
	}
	out := make([]Info, 0, len(k.caps))
	for _, r := range roots {
		walkDown(r, func(c *Cap) bool { out = append(out, c.Info()); return true })
	}
	k.mu.Unlock()
	return out
}

// walkDown visits c and everything derived from it, parents before
// children; when visit returns false, what derives from the capability it
// was given is skipped. It keeps its own stack rather than recursing: a
// guest can make a derivation chain as long as it likes. Called with k.mu
// held.
func walkDown(c *Cap, visit func(*Cap) bool) {
	stack := []*Cap{c}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !visit(x) {
			continue
		}
		for i := len(x.children) - 1; i >= 0; i-- {
			stack = append(stack, x.children[i])
		}
	}
}

// Subtree returns the ids of c and everything derived from it that is
// still tracked: what revoking c would cut off.
func (k *Kernel) Subtree(c *Cap) []ID {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []ID
	walkDown(c, func(x *Cap) bool { out = append(out, x.id); return true })
	return out
}
