package caps

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"runtime"
	"sync/atomic"
	"time"
)

// ID is a capability's public identifier: safe to log, print and put in the
// audit graph. Knowing an ID grants nothing.
type ID string

// Token is a capability's secret: 256 bits from crypto/rand. Whoever
// presents it may use or delegate the capability through the control API.
// Tokens are compared in constant time and never shown to guests.
type Token [32]byte

// String is the hex form handed to the principal that minted the capability.
func (t Token) String() string { return hex.EncodeToString(t[:]) }

// Hash is what the audit log records instead of the token.
func (t Token) Hash() string {
	h := sha256.Sum256(t[:])
	return hex.EncodeToString(h[:16])
}

// Equal compares two tokens in constant time.
func (t Token) Equal(o Token) bool { return subtle.ConstantTimeCompare(t[:], o[:]) == 1 }

// ParseToken reads the hex form of a token.
func ParseToken(s string) (Token, bool) {
	var t Token
	if len(s) != 2*len(t) {
		return t, false
	}
	if _, err := hex.Decode(t[:], []byte(s)); err != nil {
		return t, false
	}
	return t, true
}

// Cap is one capability: the right of one holder to perform a set of
// operations on one resource.
//
// Holding a *Cap allows exactly the operations in Base on Resource, and
// deriving capabilities whose rights are within Base (for copies) or
// Inheriting (for objects reached through it). It never allows more: rights
// can be narrowed (Narrow) but not widened, and a revoked capability allows
// nothing at all. Revocation is final and reaches every capability derived
// from this one, in every holder.
type Cap struct {
	// The fields are ordered so that no padding falls between them: a
	// daemon keeps several for every guest.
	id     ID
	token  Token
	k      *Kernel
	res    *refRes
	holder atomic.Pointer[Holder]
	name   string

	// parent is what c was derived from. It changes, under k.mu, only
	// when the kernel splices out a closed copy between them (Close).
	parent  atomic.Pointer[Cap]
	removed Rights // rights the parent held that this edge dropped
	origin  string // what authorised a root (grant text, policy rule), or how a child was passed on
	by      string // who made a root's grant, in the minter's terms (MintBy); "" otherwise
	created time.Time
	expires atomic.Int64               // lease end, Unix nanoseconds; 0: none (Kernel.Lease)
	lease   atomic.Pointer[time.Timer] // ends the lease; stopped once c is let go (Kernel.prune)
	source  atomic.Value               // what a root was granted from (SetSource)

	base, inh atomic.Uint64
	flags     atomic.Uint32 // fd flags (append, nonblock, …) in ABI-neutral bits

	revoked  atomic.Bool
	closed   atomic.Bool
	released atomic.Bool // the reference on res has been dropped
	inflight atomic.Int32
	doneShut atomic.Bool                   // done has been closed
	hold     atomic.Pointer[Hold]          // the Hold that keeps it acquired, if any
	charge   atomic.Pointer[InFlightLimit] // what it counts against while in flight, if anything
	done     atomic.Value                  // chan struct{}, made by the first Done, closed on revocation
	watchers waitList                      // woken on revocation (WatchRevoke)

	children []*Cap // guarded by k.mu
	idx      int    // index in parent.children; guarded by k.mu
	// receiver is set on a revoker capability and its copies: the
	// forwarder it revokes.
	receiver *Cap

	kind    Kind
	edge    Edge
	counted bool // counted in res.held; guarded by k.mu
	// settled is set once the capability is revoked and a Revoke has seen
	// every operation on it, and on everything derived from it, end; no
	// new one can begin. Guarded by k.mu.
	settled bool
}

func newID() ID {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return ID("c" + hex.EncodeToString(b[:]))
}

func newToken() Token {
	var t Token
	_, _ = rand.Read(t[:]) // crypto/rand.Read never fails on Linux (Go ≥1.24 panics instead)
	return t
}

// ID returns the public identifier.
func (c *Cap) ID() ID { return c.id }

// Token returns the secret token. Only the minting principal should see it.
func (c *Cap) Token() Token { return c.token }

// Kind returns what the capability designates.
func (c *Cap) Kind() Kind { return c.kind }

// Resource returns the object behind the capability. Callers must hold the
// capability acquired (Acquire) while they use it.
func (c *Cap) Resource() Resource { return c.res.Resource }

// Holder returns who holds the capability.
func (c *Cap) Holder() *Holder { return c.holder.Load() }

// Name is the name the holder knows the capability by ("data", "stdout"),
// or "".
func (c *Cap) Name() string { return c.name }

// Parent returns the capability this one was derived from, or nil for a
// root grant.
func (c *Cap) Parent() *Cap { return c.parent.Load() }

// Edge says how the capability was created.
func (c *Cap) Edge() Edge { return c.edge }

// Removed returns the rights dropped on the edge from the parent.
func (c *Cap) Removed() Rights { return c.removed }

// Origin describes what authorised a root capability, or for a derived
// one how it was passed on (Derivation.Origin), if that was recorded.
func (c *Cap) Origin() string { return c.origin }

// By names who made the grant a root capability was minted from, as
// its minter named them (Kernel.MintBy): text the kernel keeps and
// reports but does not read. "" for a derived capability and a root
// minted without it.
func (c *Cap) By() string { return c.by }

// Created is when the capability was minted or derived.
func (c *Cap) Created() time.Time { return c.created }

// Rights returns the current base and inheriting rights.
func (c *Cap) Rights() (base, inheriting Rights) {
	return Rights(c.base.Load()), Rights(c.inh.Load())
}

// Flags returns the ABI-neutral fd flags.
func (c *Cap) Flags() uint32 { return c.flags.Load() }

// SetFlags replaces the fd flags.
func (c *Cap) SetFlags(f uint32) { c.flags.Store(f) }

// Revoked reports whether the capability has been revoked.
func (c *Cap) Revoked() bool { return c.revoked.Load() }

// Closed reports whether its holder has let go of the capability.
func (c *Cap) Closed() bool { return c.closed.Load() }

// Done is closed when the capability is revoked. Blocking operations select
// on it so that revocation ends them. The channel is made by the first
// call: most capabilities are never waited on (a guest's stdio, most
// files), and each would cost a channel and its close at revocation.
func (c *Cap) Done() <-chan struct{} {
	ch, _ := c.done.Load().(chan struct{})
	if ch == nil {
		ch = make(chan struct{})
		if !c.done.CompareAndSwap(nil, ch) {
			ch = c.done.Load().(chan struct{})
		}
	}
	// Revoke stores revoked before it loads done, and this stored done
	// before it loads revoked: one of the two sees the other's store, and
	// closeDone closes the channel once.
	if c.revoked.Load() {
		c.closeDone(ch)
	}
	return ch
}

// closeDone closes Done's channel, if it has been made, once.
func (c *Cap) closeDone(ch chan struct{}) {
	if ch != nil && c.doneShut.CompareAndSwap(false, true) {
		close(ch)
	}
}

// WatchRevoke registers w to be woken when the capability is revoked, so
// that one Waiter can watch the revocation of several capabilities and the
// readiness of their resources at once (poll). If c is already revoked, w
// is woken at once. The returned function removes the registration.
func (c *Cap) WatchRevoke(w *Waiter) (cancel func()) {
	cancel = c.watchers.add(w)
	if c.revoked.Load() {
		w.Wake()
	}
	return cancel
}

// Check returns nil if the capability holds every right in base and
// inheriting and has not been revoked (ENOTCAPABLE) or closed by its
// holder (EBADF: a handle that was closed designates nothing).
func (c *Cap) Check(base, inheriting Rights) error {
	if c.revoked.Load() {
		return ENOTCAPABLE
	}
	if c.closed.Load() {
		return EBADF
	}
	if !Rights(c.base.Load()).Has(base) || !Rights(c.inh.Load()).Has(inheriting) {
		return ENOTCAPABLE
	}
	return nil
}

// Acquire marks the start of an operation on the capability after checking
// its rights. Every successful Acquire must be paired with Release. Revoke
// waits for acquired operations to be released before it returns, so no
// operation on a revoked capability completes after Revoke returns.
func (c *Cap) Acquire(base, inheriting Rights) error {
	c.inflight.Add(1)
	if err := c.Check(base, inheriting); err != nil {
		c.inflight.Add(-1)
		return err
	}
	return nil
}

// Release ends an operation begun by Acquire.
func (c *Cap) Release() { c.inflight.Add(-1) }

// Narrow replaces the rights with a subset of the current ones. Asking for
// any right not held returns ENOTCAPABLE and changes nothing.
func (c *Cap) Narrow(base, inheriting Rights) error {
	c.k.mu.Lock()
	ob, oi := c.Rights()
	if c.revoked.Load() || !base.Subset(ob) || !inheriting.Subset(oi) {
		c.k.mu.Unlock()
		return ENOTCAPABLE
	}
	c.base.Store(uint64(base))
	c.inh.Store(uint64(inheriting))
	c.k.mu.Unlock()
	c.k.emit(Event{Type: EventNarrow, Cap: c.Info()})
	return nil
}

// waitIdle returns when no operation holds the capability acquired.
func (c *Cap) waitIdle() {
	for i := 0; c.inflight.Load() > 0; i++ {
		if i < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// Info is a snapshot of a capability's public description.
type Info struct {
	ID         ID
	Kind       Kind
	Name       string
	Holder     string
	Base       Rights
	Inheriting Rights
	Parent     ID
	Edge       Edge
	Removed    Rights
	Origin     string
	By         string // who made a root's grant (Cap.By)
	Resource   string
	TokenHash  string
	Created    time.Time
	Expires    time.Time // when a lease revokes it; zero: no lease
	Revoked    bool
	Closed     bool
}

// Describer is implemented by resources that can say what they are, for
// logs and the audit graph ("dir /srv/data", "chan c1a2…").
type Describer interface {
	Describe() string
}

// Info returns the capability's public description.
func (c *Cap) Info() Info {
	b, i := c.Rights()
	in := Info{
		ID: c.id, Kind: c.kind, Name: c.name, Base: b, Inheriting: i,
		Edge: c.edge, Removed: c.removed, Origin: c.origin, By: c.by, TokenHash: c.token.Hash(),
		Created: c.created, Expires: c.Expires(), Revoked: c.revoked.Load(), Closed: c.closed.Load(),
	}
	if h := c.holder.Load(); h != nil {
		in.Holder = h.ID
	}
	if p := c.parent.Load(); p != nil {
		in.Parent = p.id
	}
	if d, ok := c.res.Resource.(Describer); ok {
		in.Resource = d.Describe()
	}
	return in
}

// dropResource gives up this capability's reference on its resource, once.
func (c *Cap) dropResource() {
	if !c.released.CompareAndSwap(false, true) || !c.res.release() {
		return
	}
	if _, ok := c.res.Resource.(*Channel); ok {
		c.k.forgetEnd(c.res)
	}
}

// Fd flags, in the bit positions CloudABI's and WASI's fdflags share.
const (
	FlagAppend   uint32 = 0x01
	FlagDsync    uint32 = 0x02
	FlagNonblock uint32 = 0x04
	FlagRsync    uint32 = 0x08
	FlagSync     uint32 = 0x10
)
