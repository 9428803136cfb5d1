package caps

import "sync/atomic"

// Hold keeps one capability acquired across the operations of one
// goroutine (a guest's), so that a call repeated on the same handle, such
// as a guest's writes to its stdout, pays no atomic read-modify-write:
// Acquire and Release each cost one, which is most of what a capability
// check adds to a host call.
//
// Revocation keeps its promise, that no operation on a revoked capability
// completes after Revoke returns: the hold counts as an operation in
// flight, so Revoke waits for it; each operation under the hold checks
// the capability first, as Acquire does, and gives the hold up if it was
// revoked; and Revoke asks the holding goroutine to give the hold up at
// its next safe point (Dropping, then wake), so that it does not wait for
// the goroutine's next operation on the handle. A goroutine must therefore
// give up its hold (Release) before anything that may block or that
// changes its handles, and whenever Dropping reports true.
//
// A Hold is used by its goroutine alone; only Dropping's flag and wake are
// for others.
type Hold struct {
	c    *Cap
	drop atomic.Bool
	wake func()
}

// NewHold returns a Hold whose wake brings its goroutine to a safe point
// soon (for a guest: its loop budget set to 0).
func NewHold(wake func()) *Hold { return &Hold{wake: wake} }

// Acquire is Table.Acquire for an operation of the holding goroutine: it
// checks fd's capability for base, and keeps it acquired afterwards when
// keep says so of its resource. With release true the caller must Release
// the capability when the operation ends, as after Table.Acquire;
// otherwise the hold keeps it.
func (h *Hold) Acquire(t *Table, fd uint32, base Rights, keep func(Resource) bool) (c *Cap, release bool, err error) {
	c = t.lookup(fd)
	if c == nil {
		return nil, false, EBADF
	}
	if c == h.c {
		if err := c.Check(base, 0); err != nil {
			h.Release()
			return nil, false, err
		}
		return c, false, nil
	}
	h.Release()
	c.inflight.Add(1)
	if err := c.Check(base, 0); err != nil {
		c.inflight.Add(-1)
		return nil, false, err
	}
	if !keep(c.res.Resource) || !c.hold.CompareAndSwap(nil, h) {
		return c, true, nil
	}
	h.c = c
	// Revoke stores revoked and then loads hold: if it loaded hold before
	// the swap above, it asks nothing of h, and this load sees the store.
	if c.revoked.Load() {
		h.Release()
		return nil, false, ENOTCAPABLE
	}
	return c, false, nil
}

// Release gives up the capability the hold keeps acquired, if any.
func (h *Hold) Release() {
	c := h.c
	if c == nil {
		return
	}
	h.c = nil
	h.drop.Store(false)
	c.hold.Store(nil)
	c.inflight.Add(-1)
}

// Dropping reports whether Revoke asked the holding goroutine to give up
// its hold.
func (h *Hold) Dropping() bool { return h.drop.Load() }

// Held reports whether the hold keeps a capability acquired.
func (h *Hold) Held() bool { return h.c != nil }

// askDrop asks the holding goroutine of c's hold, if any, to give it up.
// Called by Revoke after it stored c.revoked.
func (c *Cap) askDrop() {
	if h := c.hold.Load(); h != nil {
		h.drop.Store(true)
		if h.wake != nil {
			h.wake()
		}
	}
}
