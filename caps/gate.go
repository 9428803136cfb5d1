package caps

import (
	"math"
	"sync"
	"time"
)

// Gate decides the derivations that pass a capability on to another
// holder: those with edge EdgeDelegate (a channel, the control API, a
// launch's delegations) or EdgeSpawn (a child guest's handles). The
// supervisor installs one to apply its delegation policy; a kernel without
// a gate allows every derivation its rights allow.
type Gate interface {
	// Delegate is asked before parent is passed on as d describes. It may
	// narrow d.Base and d.Inheriting (never widen: Derive checks them
	// against parent afterwards) and return a lease: when not zero, the
	// new capability is revoked once it has lived that long (see Lease).
	// An error refuses the derivation: Derive returns it as it is, so it
	// should wrap ENOTCAPABLE for a guest's call to fail with that errno.
	// It is called without the kernel's lock held and may read the graph
	// (Parent, Holder, Info, Subtree, LiveCopies), but must not change it
	// (a Derive from the same root would wait for itself).
	//
	// Calls about capabilities that share a root (Cap.Root) are made one
	// at a time, and the copy each allows is linked before the next call
	// is made: a gate that counts what derives from parent.Root() counts
	// every copy it allowed before, however many delegations of the root
	// are under way. Calls about different roots may run concurrently.
	Delegate(parent *Cap, d *Derivation) (lease time.Duration, err error)
	// Expired is told of each capability a lease revoked, after the fact.
	Expired(c *Cap, r Receipt)
	// Adopt is asked before h adopts c, a capability derived in flight
	// (Delegate saw no holder: it was sent on a channel, and whoever
	// reads it receives it). An error refuses it: Kernel.Adopt closes c
	// and returns the error. It is called without the kernel's lock held.
	Adopt(c *Cap, h *Holder) error
}

// SetGate installs g, which then decides every delegation (see Gate). Set
// it before the kernel is shared; nil removes it.
func (k *Kernel) SetGate(g Gate) {
	if g == nil {
		k.gate.Store(nil)
		return
	}
	k.gate.Store(&g)
}

// currentGate is the gate installed, read without the kernel's lock: it
// is asked on every delegation and every adoption of a capability in
// flight.
func (k *Kernel) currentGate() Gate {
	if g := k.gate.Load(); g != nil {
		return *g
	}
	return nil
}

// rootLock serialises the gate's decisions about the copies of one root
// (Kernel.admit).
type rootLock struct {
	mu sync.Mutex
	// users counts the goroutines that hold mu or wait for it; the last
	// to leave removes the lock from Kernel.passing. Guarded by Kernel.mu.
	users int
}

// lockRoot locks root for one decision of the gate; unlockRoot unlocks
// it. The lock lives only while someone uses it, so that the kernel keeps
// none for roots nobody is passing on. k.mu is never held while waiting
// for a root's lock: the gate needs it (LiveCopies).
func (k *Kernel) lockRoot(root *Cap) *rootLock {
	k.mu.Lock()
	l := k.passing[root]
	if l == nil {
		l = &rootLock{}
		k.passing[root] = l
	}
	l.users++
	k.mu.Unlock()
	l.mu.Lock()
	return l
}

func (k *Kernel) unlockRoot(root *Cap, l *rootLock) {
	l.mu.Unlock()
	k.mu.Lock()
	if l.users--; l.users == 0 {
		delete(k.passing, root)
	}
	k.mu.Unlock()
}

// passesOn reports whether a derivation gives its capability to another
// holder, which the gate decides.
func passesOn(e Edge) bool { return e == EdgeDelegate || e == EdgeSpawn }

// Lease revokes c, and everything derived from it, once ttl has passed,
// exactly as Revoke would, with reason "lease expired"; the gate (if any)
// is then told through Expired. c's Info reports when that will be. A
// lease cannot be extended or shortened: the first one set on c holds.
func (k *Kernel) Lease(c *Cap, ttl time.Duration) {
	if ttl <= 0 || !c.expires.CompareAndSwap(0, leaseEnd(ttl)) {
		return
	}
	c.lease.Store(time.AfterFunc(ttl, func() {
		if c.revoked.Load() {
			return // revoked before its time: nothing left to expire
		}
		r := k.Revoke(c, "lease expired after "+ttl.String())
		if g := k.currentGate(); g != nil {
			g.Expired(c, r)
		}
	}))
	k.mu.Lock()
	if _, tracked := k.caps[c.id]; !tracked && c.closed.Load() {
		c.endLease() // closed and let go before its lease began
	}
	k.mu.Unlock()
}

// endLease stops c's lease, if it has one, once the kernel has let c go:
// closed, with nothing derived from it, there is nothing left to revoke,
// and the lease's timer would keep c in memory until its time.
func (c *Cap) endLease() {
	if t := c.lease.Load(); t != nil {
		t.Stop()
	}
}

// leaseEnd is when a lease of ttl from now ends, in Unix nanoseconds: the
// last that an int64 holds (the year 2262) for a ttl that ends later.
func leaseEnd(ttl time.Duration) int64 {
	now := time.Now().UnixNano()
	if end := now + int64(ttl); end > now {
		return end
	}
	return math.MaxInt64
}

// Expires returns when c's lease ends, or the zero time when it has none.
func (c *Cap) Expires() time.Time {
	if ns := c.expires.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Depth is the number of times c's capability was passed on to another
// holder (edges EdgeDelegate and EdgeSpawn) between the root it derives
// from and c: 0 for a capability its holder was granted or created.
func (c *Cap) Depth() int {
	n := 0
	for x := c; x != nil; x = x.parent.Load() {
		if passesOn(x.edge) {
			n++
		}
	}
	return n
}

// Root returns the capability c derives from that has no parent: the
// grant or creation every copy of c goes back to.
func (c *Cap) Root() *Cap {
	for p := c.parent.Load(); p != nil; p = c.parent.Load() {
		c = p
	}
	return c
}

// LiveCopies counts the capabilities derived from c, at any distance,
// that were passed on to another holder (edges EdgeDelegate and
// EdgeSpawn) and are not revoked: the fan-out of c. A copy its holder
// closed still counts while anything derived from it lives on (a dup of
// it, say), or a holder could dup each copy it is given, close the copy
// and be given another. Services (KindService) and what derives from
// them are not copies of c: they are objects of the guest that created
// them beneath it.
func (k *Kernel) LiveCopies(c *Cap) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	walkDown(c, func(x *Cap) bool {
		switch {
		case x == c:
		case x.kind == KindService:
			return false
		case passesOn(x.edge) && !x.revoked.Load() && (!x.closed.Load() || len(x.children) > 0):
			n++
		}
		return true
	})
	return n
}

// SetSource records what the supervisor granted c from (the policy
// resource behind a grant), for a Gate to read through Source when a copy
// of c, or of anything derived from it, is passed on. The kernel never
// reads it. Set it on a root, right after Mint.
func (c *Cap) SetSource(v any) { c.source.Store(sourceBox{v}) }

// Source returns what SetSource recorded on c, or nil.
func (c *Cap) Source() any {
	b, _ := c.source.Load().(sourceBox)
	return b.v
}

// sourceBox lets values of different types share one atomic.Value.
type sourceBox struct{ v any }
