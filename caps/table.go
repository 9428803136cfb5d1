package caps

import (
	"sync"
	"sync/atomic"
)

// Table maps one holder's small integer handles (fds) to capabilities. An
// fd is not a capability: it means something only in its own table.
type Table struct {
	k      *Kernel
	holder *Holder
	max    int

	// The slots are atomic pointers in a slice that writers (holding mu)
	// change in place, so the per-call lookup in Get and Acquire takes no
	// lock: one atomic load of the slice and one of the slot. When the
	// slice is full a writer publishes a copy twice its size (at most
	// max), so a change costs the same whatever the table holds
	// (BenchmarkInsertTake). A lookup that raced a change sees the slot
	// before or after it.
	mu     sync.Mutex
	view   atomic.Pointer[[]atomic.Pointer[Cap]]
	low    int  // every slot below low is occupied
	closed bool // CloseAll ran: the holder is gone and takes nothing new
	held   int  // occupied slots
	peak   int  // the most slots ever occupied at once
}

// firstSlots is the size of a table's first slice: room for the standard
// streams and a few more before it grows.
const firstSlots = 8

// slots returns the current slice of slots. Called with mu held.
func (t *Table) slots() []atomic.Pointer[Cap] {
	if v := t.view.Load(); v != nil {
		return *v
	}
	return nil
}

// lookup returns the capability at fd without locking, or nil.
func (t *Table) lookup(fd uint32) *Cap {
	v := t.view.Load()
	if v == nil || int64(fd) >= int64(len(*v)) {
		return nil
	}
	return (*v)[fd].Load()
}

// slot returns fd's slot if fd is open, or nil. Called with mu held.
func (t *Table) slot(fd uint32) *atomic.Pointer[Cap] {
	s := t.slots()
	if int64(fd) >= int64(len(s)) || s[fd].Load() == nil {
		return nil
	}
	return &s[fd]
}

// DefaultMaxFDs is the handle-table size when none is configured: Linux's
// default soft RLIMIT_NOFILE, which ordinary programs are written for. Go
// programs, for one, close some files only when the collector finds them
// unreachable, so they can hold well over 64 at once (Go's os tests peak
// near 150). The size reserves nothing: the slots grow, by doubling, as
// handles are opened (8 bytes each), and each held handle costs what its
// open object does (about 700 bytes of Go heap and one host descriptor for
// a file or directory, BenchmarkHeldHandle).
const DefaultMaxFDs = 1024

// NewTable returns an empty table for holder with room for max handles
// (DefaultMaxFDs if max ≤ 0).
func NewTable(k *Kernel, holder *Holder, max int) *Table {
	if max <= 0 {
		max = DefaultMaxFDs
	}
	return &Table{k: k, holder: holder, max: max}
}

// Kernel returns the kernel the table's capabilities live in.
func (t *Table) Kernel() *Kernel { return t.k }

// Holder returns the table's owner.
func (t *Table) Holder() *Holder { return t.holder }

// Max returns the table's capacity.
func (t *Table) Max() int { return t.max }

// Get returns the capability at fd, or EBADF.
func (t *Table) Get(fd uint32) (*Cap, error) {
	c := t.lookup(fd)
	if c == nil {
		return nil, EBADF
	}
	return c, nil
}

// Acquire returns the capability at fd after checking rights and marking an
// operation in flight (see Cap.Acquire); the caller must Release it. Errors
// are EBADF for an empty slot and ENOTCAPABLE for missing rights or a
// revoked capability.
func (t *Table) Acquire(fd uint32, base, inheriting Rights) (*Cap, error) {
	c := t.lookup(fd)
	if c == nil {
		return nil, EBADF
	}
	// Cap.Acquire, written out: this is every host call's first step.
	c.inflight.Add(1)
	if err := c.Check(base, inheriting); err != nil {
		c.inflight.Add(-1)
		return nil, err
	}
	return c, nil
}

// Insert puts c at the lowest free fd. The table owns c from then on. It
// fails with EMFILE when the table is full and with EBADF after CloseAll;
// on error the caller still owns c.
func (t *Table) Insert(c *Cap) (uint32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, EBADF
	}
	if t.held >= t.max {
		return 0, EMFILE
	}
	s := t.slots()
	i := t.low
	for i < len(s) && s[i].Load() != nil {
		i++
	}
	if i == len(s) {
		s = t.grow(s)
	}
	s[i].Store(c)
	t.low = i + 1
	t.held++
	t.peak = max(t.peak, t.held)
	return uint32(i), nil
}

// grow publishes a copy of s twice its size (at least firstSlots, at
// most max) and returns it. Called with mu held, when s is full and the
// table is not.
func (t *Table) grow(s []atomic.Pointer[Cap]) []atomic.Pointer[Cap] {
	ns := make([]atomic.Pointer[Cap], min(max(2*len(s), firstSlots), t.max))
	for i := range s {
		ns[i].Store(s[i].Load())
	}
	t.view.Store(&ns)
	return ns
}

// Replace installs c at fd, which must be open, and closes what was there
// (unless it is c itself).
func (t *Table) Replace(fd uint32, c *Cap) error {
	t.mu.Lock()
	p := t.slot(fd)
	if p == nil {
		t.mu.Unlock()
		return EBADF
	}
	old := p.Swap(c)
	t.mu.Unlock()
	if old != c {
		t.k.Close(old)
	}
	return nil
}

// Remove empties fd and closes its capability.
func (t *Table) Remove(fd uint32) error {
	c, err := t.Take(fd)
	if err != nil {
		return err
	}
	t.k.Close(c)
	return nil
}

// Take empties fd and returns its capability without closing it (fd
// renumbering moves a capability rather than closing it).
func (t *Table) Take(fd uint32) (*Cap, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.slot(fd)
	if p == nil {
		return nil, EBADF
	}
	c := p.Swap(nil)
	t.low = min(t.low, int(fd))
	t.held--
	return c, nil
}

// Counts returns how many handles the table holds now and the most it has
// held at once. After CloseAll it holds none; peak is kept.
func (t *Table) Counts() (held, peak int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.held, t.peak
}

// Entry is one occupied slot.
type Entry struct {
	FD  uint32
	Cap *Cap
}

// Entries returns the occupied slots in fd order.
func (t *Table) Entries() []Entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Entry, 0, t.held)
	s := t.slots()
	for i := range s {
		if c := s[i].Load(); c != nil {
			out = append(out, Entry{FD: uint32(i), Cap: c})
		}
	}
	return out
}

// CloseAll closes every handle; used when the holder exits. The table
// accepts no handle afterwards, so a capability delivered to a holder that
// is exiting is refused (and closed by whoever delivered it) rather than
// stranded in a table nobody will close again.
func (t *Table) CloseAll() {
	t.mu.Lock()
	s := t.slots()
	t.view.Store(nil)
	t.closed = true
	t.held, t.low = 0, 0
	var held []*Cap
	for i := range s {
		if c := s[i].Swap(nil); c != nil {
			held = append(held, c)
		}
	}
	t.mu.Unlock()
	closeCaps(held) // one collection, if any is needed, for them all
}
