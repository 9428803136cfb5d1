package abi

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/hashicorp/go-hclog"
	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"
)

// Guest linear memory.
//
// A guest's memory is address space reserved once, at instantiation, for
// the most it may ever hold: min(its limit, its module's declared maximum,
// 4 GiB), rounded up to whole host pages. The reservation is PROT_NONE and
// MAP_NORESERVE, so it costs neither physical memory nor commit charge;
// memory.grow makes the next pages readable and writable (mprotect), and
// the kernel gives a page physical memory when the guest first touches it.
// Growth therefore copies nothing and the memory never moves, and a guest
// costs what it touched, not twice its size as a Go slice that grows by
// copying does (nor the race detector's shadow of it in a -race build).
//
// Reservations are bounded, so that many guests exhaust neither the
// process's address space nor the kernel's memory maps, either of which
// would end the process when the Go runtime next needs one: the address
// space of reserved memories together is at most reservedBytesMax (64 TiB, half of what a
// process has on x86-64 with 47-bit addresses, leaving the other half to
// the Go heap, thread stacks and compiled code; less if RLIMIT_AS is set),
// and their number at most a quarter of vm.max_map_count, since each
// takes up to two of the kernel's memory maps (the committed part and the
// reserved rest) and the Go runtime needs maps of its own to grow. A guest
// past either bound, or whose reservation the kernel refuses, gets its
// memory from the Go heap instead (heapMemory): it still works, at the
// cost of copies; one without loop checks is refused instead (see
// memoryAllocator). At the CLI's default --mem of 256 MiB, 262,144 guests fit
// in the address-space bound; with Linux's default vm.max_map_count of
// 65,530, 16,382 fit in the map bound: a daemon meant for more small
// guests raises vm.max_map_count (2,097,152 gives 524,288) and launches
// them with a --mem of at most 128 MiB (524,288 guests in 64 TiB).
//
// Nothing but the guest's own goroutine touches its memory, so unmapping
// it cannot fault another goroutine (a fault on unmapped memory would end
// the whole process). Host functions run on the guest's goroutine, and the
// views of memory they take (mem.go) are used before they return. Blocking
// calls (waitReady, poll) wait on other goroutines' readiness (Waiters,
// the netpoller watchers of caps.watchHost and of hostPoller.watch) that
// only wake the guest,
// which then does its read or write itself. Whatever keeps data beyond a
// call copies it: a channel's queue (caps.Channel.Send), a byte object,
// the daemon's output log, the output sink's stream call (go-capnp builds
// the message, copying the bytes, before Send returns: the ClientHook
// contract), proc_spawn's and proc_exec's argdata; a daemon guest's stdin
// hands what its source sent to its reader, the guest, which does the copy
// (a read that stops waiting copies nothing). Children have
// memories of their own. wazero itself touches memory only from the
// calling goroutine (the runtime is built without WithCloseOnContextDone).
// The one call from elsewhere is Free, when the runtime is closed under a
// running guest (daemon.Supervisor.Close past its deadline): a memory
// stays mapped until its guest's run has ended too (runEnded). A memory
// recycled for another guest (see recycle) is zeroed first, and no stale
// view of it survives its guest, by the same reasoning.

// maxMemory is the largest linear memory a wasm32 guest can address.
const maxMemory = 1 << 32

// reservedBytesMax bounds the address space all reserved memories take
// together (see above).
const reservedBytesMax = 64 << 40

// defaultMaxMapCount is Linux's vm.max_map_count when it cannot be read.
const defaultMaxMapCount = 65530

// errReservationsFull says that a reservation would pass a bound.
var errReservationsFull = errors.New("guests' reservations are at their bound")

// reservations is what reserved memories hold now, against their bounds.
var reservations struct {
	mu    sync.Mutex
	bytes uint64
	count int
}

// reservationBounds returns the most address space and the most memories
// that may be reserved at once: reservedBytesMax or half of RLIMIT_AS,
// and a quarter of vm.max_map_count.
var reservationBounds = sync.OnceValues(func() (bytes uint64, count int) {
	bytes = reservedBytesMax
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_AS, &rl) == nil && rl.Cur != unix.RLIM_INFINITY {
		bytes = min(bytes, rl.Cur/2)
	}
	maps := defaultMaxMapCount
	if b, err := os.ReadFile("/proc/sys/vm/max_map_count"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
			maps = n
		}
	}
	return bytes, maps / 4
})

// takeReservation counts size more bytes of reservation if both bounds
// allow it.
func takeReservation(size uint64) bool {
	maxBytes, maxCount := reservationBounds()
	reservations.mu.Lock()
	defer reservations.mu.Unlock()
	if reservations.bytes+size > maxBytes || reservations.count+1 > maxCount {
		return false
	}
	reservations.bytes += size
	reservations.count++
	return true
}

func giveReservation(size uint64) {
	reservations.mu.Lock()
	reservations.bytes -= size
	reservations.count--
	reservations.mu.Unlock()
}

// pageSize is the host's page size, the unit of mprotect.
var pageSize = uint64(os.Getpagesize())

func roundToPage(n uint64) uint64 { return (n + pageSize - 1) &^ (pageSize - 1) }

// reservedMemory is a linear memory in address space reserved for it.
// It is used by one guest's goroutine, but for Free (see above).
type reservedMemory struct {
	all       []byte // the reservation; all[:committed] is readable and writable, the rest faults
	limit     uint64 // the largest size Reallocate grants
	committed uint64
	log       hclog.Logger

	freed atomic.Bool
	// holds counts wazero's hold, until Free, and the guest's run's,
	// until runEnded: the last one to go unmaps or recycles.
	holds atomic.Int32
}

// reserve reserves address space for a memory of at most limit bytes,
// or takes a recycled reservation of the same size. A limit of 0 (a
// module whose maximum is 0) reserves nothing.
func reserve(limit uint64, log hclog.Logger) (*reservedMemory, error) {
	size := roundToPage(limit)
	if m := fromPool(size); m != nil {
		m.limit, m.log = limit, log
		m.freed.Store(false)
		m.holds.Store(2)
		return m, nil
	}
	m := &reservedMemory{all: []byte{}, limit: limit, log: log}
	m.holds.Store(2)
	if size == 0 {
		return m, nil
	}
	if !takeReservation(size) {
		return nil, errReservationsFull
	}
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(size), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		giveReservation(size)
		return nil, err
	}
	m.all = unsafe.Slice((*byte)(p), size)
	return m, nil
}

// Reallocate returns the memory's first size bytes, making them readable
// and writable first if they were not. The slice always starts at the
// same address, and its capacity is its length, so that nothing can
// reslice it into pages not committed. It returns nil (memory.grow then
// returns -1) past the limit or if the kernel refuses the pages.
func (m *reservedMemory) Reallocate(size uint64) []byte {
	if size > m.limit || m.freed.Load() {
		return nil
	}
	if size > m.committed {
		end := roundToPage(size) // ≤ len(m.all), which is the limit rounded up
		if err := unix.Mprotect(m.all[m.committed:end], unix.PROT_READ|unix.PROT_WRITE); err != nil {
			m.log.Warn("guest memory cannot grow: the kernel refused to commit its pages", "size", size, "error", err)
			return nil
		}
		m.committed = end
	}
	return m.all[:size:size]
}

// Free ends wazero's hold on the memory (wazero calls it when it closes
// the module); the memory is unmapped, or recycled, once the guest's run
// has ended too.
func (m *reservedMemory) Free() {
	if m.freed.CompareAndSwap(false, true) {
		m.drop()
	}
}

// runEnded ends the guest's hold, and wazero's: it is called once the
// run's module is closed, or its instantiation failed, after which wazero
// never touches the memory again (a failed instantiation never calls
// Free). The guest's goroutine no longer runs guest code then.
func (m *reservedMemory) runEnded() {
	m.Free()
	m.drop()
}

func (m *reservedMemory) drop() {
	if m.holds.Add(-1) != 0 || len(m.all) == 0 {
		return
	}
	if m.recycle() {
		return
	}
	m.unmap()
}

func (m *reservedMemory) unmap() {
	size := uint64(len(m.all))
	if err := unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(m.all)), uintptr(size)); err != nil {
		// Only ENOMEM (a map split past vm.max_map_count) is possible:
		// the address space stays reserved and counted.
		m.log.Error("cannot unmap a guest's memory: its address space stays reserved", "bytes", size, "error", err)
		return
	}
	m.all = nil
	giveReservation(size)
}

// Recycling. A page the kernel gives a process costs a fault on first
// touch and a TLB shootdown when it is unmapped: tens of microseconds
// each on a virtual machine, which would double the time of a small
// guest's whole launch through the daemon. So the last poolEntries
// memories to end are kept, with at most poolKeep bytes of pages each,
// zeroed, and the next guest of the same reservation size starts in one
// of them: what the pool holds is bounded (poolEntries × poolKeep bytes of
// memory, 8 MiB) whatever the guests did.
const (
	poolEntries = 32
	poolKeep    = 256 << 10
)

var pool = struct {
	mu   sync.Mutex
	max  int               // poolEntries; tests change it
	mems []*reservedMemory // oldest first
}{max: poolEntries}

// fromPool takes the most recently recycled memory of size bytes, if any.
func fromPool(size uint64) *reservedMemory {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	for i := len(pool.mems) - 1; i >= 0; i-- {
		if m := pool.mems[i]; uint64(len(m.all)) == size {
			pool.mems = slices.Delete(pool.mems, i, i+1)
			return m
		}
	}
	return nil
}

// recycle makes the memory as a new reservation is, but for its first
// pages, which it leaves committed and zeroed, and puts it in the pool,
// unmapping the oldest memory there if the pool is full. It reports
// whether it did; if not, the caller unmaps the memory.
func (m *reservedMemory) recycle() bool {
	pool.mu.Lock()
	off := pool.max == 0
	pool.mu.Unlock()
	if off {
		return false
	}
	keep := min(m.committed, poolKeep)
	if rest := m.all[keep:m.committed]; len(rest) > 0 {
		if unix.Madvise(rest, unix.MADV_DONTNEED) != nil || unix.Mprotect(rest, unix.PROT_NONE) != nil {
			return false
		}
	}
	m.committed = keep
	if m.zero() != nil {
		return false
	}
	pool.mu.Lock()
	if pool.max == 0 {
		pool.mu.Unlock()
		return false
	}
	var evicted *reservedMemory
	if len(pool.mems) >= pool.max {
		evicted = pool.mems[0]
		pool.mems = slices.Delete(pool.mems, 0, 1)
	}
	pool.mems = append(pool.mems, m)
	pool.mu.Unlock()
	if evicted != nil {
		evicted.unmap()
	}
	return true
}

// zero zeroes the committed pages: it clears those resident in memory
// and discards the others, so that neither a page never touched is
// faulted in to be cleared nor a page swapped out keeps its contents.
func (m *reservedMemory) zero() error {
	var vec [poolKeep / 4096]byte // a page is at least 4 KiB
	pages := m.committed / pageSize
	if pages == 0 {
		return nil
	}
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(unsafe.SliceData(m.all))), uintptr(m.committed), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		return e
	}
	for i := uint64(0); i < pages; {
		resident := vec[i]&1 != 0
		j := i + 1
		for j < pages && (vec[j]&1 != 0) == resident {
			j++
		}
		run := m.all[i*pageSize : j*pageSize]
		if resident {
			clear(run)
		} else if err := unix.Madvise(run, unix.MADV_DONTNEED); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// heapMemory backs a guest's memory with a []byte that refuses to grow
// past limit bytes, when address space cannot be reserved for it. Growth
// copies into a new slice.
type heapMemory struct {
	limit uint64
	buf   []byte
}

func (m *heapMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	nb := make([]byte, size, min(max(size, 2*uint64(cap(m.buf))), m.limit))
	copy(nb, m.buf)
	m.buf = nb
	return m.buf
}

func (m *heapMemory) Free() { m.buf = nil }

// memoryAllocator gives the memory of one run of a guest of at most limit
// bytes (and at most the module's maximum). runEnded must be called once
// that run's module is closed or failed to instantiate.
//
// A memory whose address space cannot be reserved comes from the Go heap
// if heapAllowed; otherwise it is refused, and err says why. A guest
// compiled without loop checks (Config.NoLoopChecks) must not have its
// memory in the Go heap: its growth would start a garbage collection, and
// a collection in progress when the guest spins waits for it forever.
type memoryAllocator struct {
	limit       uint64
	heapAllowed bool
	log         hclog.Logger
	mems        []*reservedMemory
	err         error // why a memory was refused
}

// warnHeapOnce warns once per process that guests' memories are being
// taken from the Go heap.
var warnHeapOnce sync.Once

func (a *memoryAllocator) Allocate(capacity, max uint64) experimental.LinearMemory {
	limit := min(a.limit, max)
	m, err := reserve(limit, a.log)
	if err == nil {
		a.mems = append(a.mems, m)
		return m
	}
	err = fmt.Errorf("cannot reserve %d bytes of address space for the guest's memory: %w", roundToPage(limit), err)
	if !a.heapAllowed {
		a.err = fmt.Errorf("%w: lower the memory limit (--mem) or raise the address-space limit (ulimit -v)", err)
		a.log.Warn("guest memory refused", "error", a.err)
		return refusedMemory{}
	}
	warnHeapOnce.Do(func() {
		a.log.Warn("guests' memories now come from the Go heap, which copies them as they grow: raise vm.max_map_count or lower --mem", "error", err)
	})
	a.log.Debug("guest memory taken from the Go heap", "error", err)
	return &heapMemory{limit: limit}
}

func (a *memoryAllocator) runEnded() {
	for _, m := range a.mems {
		m.runEnded()
	}
	a.mems = nil
}

// refusedMemory is a memory that cannot hold a byte: wazero refuses to
// instantiate a module that needs one, and memory.grow returns -1.
type refusedMemory struct{}

func (refusedMemory) Reallocate(size uint64) []byte { return nil }
func (refusedMemory) Free()                         {}
