package abi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/hashicorp/go-hclog"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"
)

// None of these tests is parallel, nor is any other in this package, so
// the process-wide count of reservations, and the pool, are theirs while
// they run.

const wasmPage = 1 << 16

func testAllocator(limit uint64, heapAllowed bool) *memoryAllocator {
	return &memoryAllocator{limit: limit, heapAllowed: heapAllowed, log: hclog.NewNullLogger()}
}

func asReserved(t *testing.T, lm experimental.LinearMemory) *reservedMemory {
	t.Helper()
	m, ok := lm.(*reservedMemory)
	if !ok {
		t.Fatalf("memory is a %T, want a reservation", lm)
	}
	return m
}

// withPool sets how many memories the pool keeps during the test, and
// starts and ends the test with it empty: with 0, every memory the test
// allocates is a fresh reservation, unmapped when its run ends.
func withPool(t *testing.T, n int) {
	drainPool()
	pool.mu.Lock()
	saved := pool.max
	pool.max = n
	pool.mu.Unlock()
	t.Cleanup(func() {
		pool.mu.Lock()
		pool.max = saved
		pool.mu.Unlock()
		drainPool()
	})
}

func drainPool() {
	pool.mu.Lock()
	mems := pool.mems
	pool.mems = nil
	pool.mu.Unlock()
	for _, m := range mems {
		m.unmap()
	}
}

func reservedNow() (uint64, int) {
	reservations.mu.Lock()
	defer reservations.mu.Unlock()
	return reservations.bytes, reservations.count
}

// mapped says whether b's pages are mapped, with any protection.
func mapped(b []byte) bool { return unix.Msync(b, unix.MS_ASYNC) == nil }

// protectionAt returns the permissions ("rw-p", "---p") of the memory map
// that holds addr, and where that map ends.
func protectionAt(t *testing.T, addr uintptr) (string, uintptr) {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		var start, end uintptr
		var perms string
		if _, err := fmt.Sscanf(s.Text(), "%x-%x %s", &start, &end, &perms); err == nil && start <= addr && addr < end {
			return perms, end
		}
	}
	t.Fatalf("no map holds %#x", addr)
	return "", 0
}

// Growth commits pages in place: the memory never moves, keeps what it
// holds, and only the committed pages are accessible, while the rest of
// the 4 GiB reservation costs nothing.
func TestReservedMemoryGrowsInPlaceAndKeepsWhatItHolds(t *testing.T) {
	withPool(t, 0)
	a := testAllocator(maxMemory, true)
	defer a.runEnded()
	m := asReserved(t, a.Allocate(wasmPage, maxMemory))
	if len(m.all) != maxMemory {
		t.Fatalf("reserved %d bytes, want %d", len(m.all), maxMemory)
	}
	b := m.Reallocate(wasmPage)
	if len(b) != wasmPage || cap(b) != wasmPage {
		t.Fatalf("len %d cap %d, want %d", len(b), cap(b), wasmPage)
	}
	b[0], b[wasmPage-1] = 1, 2
	b2 := m.Reallocate(3 * wasmPage)
	if unsafe.SliceData(b2) != unsafe.SliceData(b) {
		t.Fatal("the memory moved as it grew")
	}
	if len(b2) != 3*wasmPage || cap(b2) != 3*wasmPage {
		t.Fatalf("len %d cap %d, want %d", len(b2), cap(b2), 3*wasmPage)
	}
	if b2[0] != 1 || b2[wasmPage-1] != 2 || b2[wasmPage] != 0 {
		t.Fatalf("contents after growth: %d %d %d, want 1 2 0", b2[0], b2[wasmPage-1], b2[wasmPage])
	}
	b2[3*wasmPage-1] = 3
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b2)))
	if perms, end := protectionAt(t, base); !strings.HasPrefix(perms, "rw") || end != base+3*wasmPage {
		t.Errorf("committed pages: %s up to %#x, want rw up to %#x", perms, end, base+3*wasmPage)
	}
	if perms, _ := protectionAt(t, base+3*wasmPage); !strings.HasPrefix(perms, "---") {
		t.Errorf("pages past the memory's size: %s, want no access", perms)
	}
}

// The reservation is the smaller of the guest's limit and the module's
// maximum, whole pages; growth past either is refused and leaves the
// memory as it was.
func TestReservedMemoryRefusesToGrowPastItsLimitOrTheModuleMaximum(t *testing.T) {
	withPool(t, 0)
	a := testAllocator(100000, true) // not a whole number of pages
	defer a.runEnded()
	m := asReserved(t, a.Allocate(0, maxMemory))
	if uint64(len(m.all)) != roundToPage(100000) {
		t.Errorf("reserved %d bytes for a limit of 100000, want %d", len(m.all), roundToPage(100000))
	}
	b := m.Reallocate(wasmPage)
	if b == nil {
		t.Fatal("growth within the limit refused")
	}
	if m.Reallocate(2*wasmPage) != nil {
		t.Error("growth past the limit granted")
	}
	if b2 := m.Reallocate(wasmPage); unsafe.SliceData(b2) != unsafe.SliceData(b) || len(b2) != wasmPage {
		t.Error("a refused growth changed the memory")
	}

	m = asReserved(t, a.Allocate(0, wasmPage)) // a module maximum below the limit
	if len(m.all) != wasmPage {
		t.Errorf("reserved %d bytes for a module maximum of one page, want %d", len(m.all), wasmPage)
	}
	if m.Reallocate(wasmPage) == nil || m.Reallocate(2*wasmPage) != nil {
		t.Error("growth not bounded by the module's maximum")
	}
}

// wazero's Free alone leaves the memory mapped, for a guest still running
// when the runtime is closed under it; the end of the run unmaps it, even
// when wazero never calls Free (a failed instantiation).
func TestReservedMemoryIsUnmappedOnceFreedAndItsRunHasEnded(t *testing.T) {
	withPool(t, 0)
	bytes0, count0 := reservedNow()
	a := testAllocator(1<<20, true)
	m := asReserved(t, a.Allocate(0, maxMemory))
	all := m.all
	b := m.Reallocate(wasmPage)
	b[0] = 1
	if bytes, count := reservedNow(); bytes != bytes0+1<<20 || count != count0+1 {
		t.Fatalf("reservations %d bytes, %d; want %d, %d", bytes, count, bytes0+1<<20, count0+1)
	}
	m.Free()
	if !mapped(all) {
		t.Fatal("Free unmapped the memory of a run that has not ended")
	}
	b[1] = 2 // would fault if it had
	if m.Reallocate(2*wasmPage) != nil {
		t.Error("a freed memory grew")
	}
	a.runEnded()
	if mapped(all) {
		t.Error("the memory is still mapped after Free and the end of its run")
	}
	if bytes, count := reservedNow(); bytes != bytes0 || count != count0 {
		t.Errorf("reservations %d bytes, %d after the run; want %d, %d", bytes, count, bytes0, count0)
	}

	a = testAllocator(1<<20, true)
	m = asReserved(t, a.Allocate(0, maxMemory))
	all = m.all
	m.Reallocate(wasmPage)[0] = 1
	a.runEnded() // no Free
	if mapped(all) {
		t.Error("the memory of a run that ended without Free is still mapped")
	}
	if bytes, count := reservedNow(); bytes != bytes0 || count != count0 {
		t.Errorf("reservations %d bytes, %d; want %d, %d", bytes, count, bytes0, count0)
	}
}

// A memory whose maximum is 0 reserves nothing, and is empty, not nil
// (nil would be a refusal).
func TestZeroSizeMemoryReservesNothing(t *testing.T) {
	withPool(t, 0)
	bytes0, count0 := reservedNow()
	a := testAllocator(maxMemory, true)
	m := asReserved(t, a.Allocate(0, 0))
	if b := m.Reallocate(0); b == nil || len(b) != 0 {
		t.Errorf("Reallocate(0) = %v, want an empty slice", b)
	}
	if m.Reallocate(wasmPage) != nil {
		t.Error("a memory of maximum 0 grew")
	}
	if bytes, count := reservedNow(); bytes != bytes0 || count != count0 {
		t.Errorf("reservations %d bytes, %d; want %d, %d", bytes, count, bytes0, count0)
	}
	a.runEnded()
	if bytes, count := reservedNow(); bytes != bytes0 || count != count0 {
		t.Errorf("reservations %d bytes, %d after the run; want %d, %d", bytes, count, bytes0, count0)
	}
}

// A memory that ended is kept, zeroed, with at most poolKeep bytes of
// pages committed, and the next memory of the same reservation size
// starts in it; the pool keeps the memories that ended last, and unmaps
// the others.
func TestRecycledMemoryIsZeroedAndReused(t *testing.T) {
	withPool(t, 1)
	const limit = 4 << 20
	a := testAllocator(limit, true)
	m := asReserved(t, a.Allocate(0, maxMemory))
	b := m.Reallocate(2 << 20)
	for i := 0; i < len(b); i += 4096 * 3 { // some pages touched, some not
		b[i] = 0xa5
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	a.runEnded()
	if !mapped(m.all) || m.committed != poolKeep {
		t.Fatalf("recycled memory: mapped %v, committed %d; want mapped, %d", mapped(m.all), m.committed, poolKeep)
	}
	if perms, end := protectionAt(t, base); !strings.HasPrefix(perms, "rw") || end != base+poolKeep {
		t.Errorf("kept pages: %s up to %#x, want rw up to %#x", perms, end, base+poolKeep)
	}
	if perms, _ := protectionAt(t, base+poolKeep); !strings.HasPrefix(perms, "---") {
		t.Errorf("pages past the kept ones: %s, want no access", perms)
	}

	a = testAllocator(limit, true)
	m2 := asReserved(t, a.Allocate(0, maxMemory))
	if m2 != m {
		t.Fatal("a memory of the same reservation size did not start in the recycled one")
	}
	b = m2.Reallocate(2 << 20)
	if uintptr(unsafe.Pointer(unsafe.SliceData(b))) != base {
		t.Fatal("the recycled memory moved")
	}
	for i, c := range b {
		if c != 0 {
			t.Fatalf("byte %d of the recycled memory is %#x, want 0", i, c)
		}
	}
	b[0] = 1
	other := testAllocator(limit/2, true)
	if asReserved(t, other.Allocate(0, maxMemory)) == m {
		t.Error("a memory of another size started in the recycled one")
	}

	// The pool keeps one: the memory that ends last evicts the other.
	_, count0 := reservedNow()
	all := m2.all
	a.runEnded()
	other.runEnded()
	if mapped(all) {
		t.Error("the memory evicted from the pool is still mapped")
	}
	if _, count := reservedNow(); count != count0-1 {
		t.Errorf("%d reservations after eviction, want %d", count, count0-1)
	}
}

// fillReservations takes every reservation the bounds allow until the
// test ends.
func fillReservations(t *testing.T) {
	_, maxCount := reservationBounds()
	reservations.mu.Lock()
	added := maxCount - reservations.count
	reservations.count += added
	reservations.mu.Unlock()
	t.Cleanup(func() {
		reservations.mu.Lock()
		reservations.count -= added
		reservations.mu.Unlock()
	})
}

// Past the bound on reservations a memory comes from the Go heap, with
// the same limit; a guest without loop checks is refused it, saying why.
func TestMemoryPastTheReservationBoundComesFromTheHeapOrIsRefused(t *testing.T) {
	withPool(t, 0)
	fillReservations(t)
	a := testAllocator(2*wasmPage, true)
	defer a.runEnded()
	lm := a.Allocate(0, maxMemory)
	if _, ok := lm.(*heapMemory); !ok {
		t.Fatalf("memory past the bound is a %T, want heap memory", lm)
	}
	if lm.Reallocate(2*wasmPage) == nil || lm.Reallocate(3*wasmPage) != nil {
		t.Error("heap memory not bounded by the limit")
	}

	a = testAllocator(2*wasmPage, false)
	if lm := a.Allocate(0, maxMemory); lm.Reallocate(0) != nil {
		t.Errorf("memory past the bound without the heap is a %T that grants memory", lm)
	}
	if a.err == nil || !errors.Is(a.err, errReservationsFull) || !strings.Contains(a.err.Error(), "lower the memory limit (--mem)") {
		t.Errorf("refusal: %v", a.err)
	}
}

func runGuest(t *testing.T, rt *Runtime, src string, limit uint64, tbl *caps.Table) ExitStatus {
	t.Helper()
	ctx := context.Background()
	m, err := rt.Compile(ctx, "g", abitest.WATText(t, src))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	if tbl == nil {
		tbl = caps.NewTable(caps.NewKernel(nil), &caps.Holder{ID: "g"}, 0)
	}
	ctx, cancel := context.WithTimeout(ctx, HangGuard) // the guests run for milliseconds
	defer cancel()
	return rt.NewGuest(m, GuestConfig{ID: "g", Table: tbl, MemoryLimit: limit}).Run(ctx)
}

const growWAT = `(module
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (memory.grow (i32.const 15)))
    (i32.store8 (i32.const 1048575) (i32.const 1))
    (call $proc_exit (i32.load8_u (i32.const 1048575)))))`

// A guest with no memory limit (0) gets the wasm32 maximum in a
// reservation, like one whose limit is 4 GiB, and its reservation is
// given back when it ends, also when its module fails to instantiate.
func TestGuestMemoryIsReservedAndGivenBackWhenTheRunEnds(t *testing.T) {
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	withPool(t, 0)
	bytes0, count0 := reservedNow()
	for _, limit := range []uint64{0, maxMemory} {
		if st := runGuest(t, rt, growWAT, limit, nil); st.Code != 1 || st.Err() != nil {
			t.Errorf("limit %d: status %+v, want exit 1", limit, st)
		}
		if bytes, count := reservedNow(); bytes != bytes0 || count != count0 {
			t.Errorf("limit %d: reservations %d bytes, %d after the run; want %d, %d", limit, bytes, count, bytes0, count0)
		}
	}
	// A data segment past the memory's end fails the instantiation.
	st := runGuest(t, rt, `(module (memory 1) (data (i32.const 70000) "x") (func (export "_start")))`, 0, nil)
	if st.Trap == nil || !strings.Contains(st.Trap.Error(), "out of bounds") {
		t.Errorf("status %+v, want an out-of-bounds failure", st)
	}
	if bytes, count := reservedNow(); bytes != bytes0 || count != count0 {
		t.Errorf("reservations %d bytes, %d after a failed instantiation; want %d, %d", bytes, count, bytes0, count0)
	}
}

// `sandboxd run` compiles without loop checks: a guest there whose memory
// cannot be reserved traps at once, saying why and what to do, where a
// daemon's guest runs with its memory in the Go heap.
func TestGuestWithoutLoopChecksIsRefusedMemoryThatCannotBeReserved(t *testing.T) {
	withPool(t, 0)
	ctx := context.Background()
	fillReservations(t)
	for _, noChecks := range []bool{false, true} {
		rt, err := NewRuntime(ctx, Config{NoLoopChecks: noChecks})
		if err != nil {
			t.Fatal(err)
		}
		st := runGuest(t, rt, growWAT, 0, nil)
		rt.Close(ctx)
		switch {
		case !noChecks && (st.Code != 1 || st.Err() != nil):
			t.Errorf("with loop checks: status %+v, want exit 1", st)
		case noChecks && (st.Code != 134 || st.Trap == nil || !strings.Contains(st.Trap.Error(), "cannot reserve 4294967296 bytes of address space for the guest's memory")):
			t.Errorf("without loop checks: status %+v, want a trap saying the memory cannot be reserved", st)
		}
	}
}

// Closing the runtime under a running guest (as Supervisor.Close does
// past its deadline) has wazero call Free from another goroutine: the
// guest, blocked in fd_read meanwhile, must still find its memory mapped
// when the read returns into it, or the whole process would fault.
func TestClosingTheRuntimeUnderARunningGuestLeavesItsMemoryMapped(t *testing.T) {
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	k := caps.NewKernel(nil)
	holder := &caps.Holder{ID: "g"}
	tbl := caps.NewTable(k, holder, 0)
	mine, theirs := caps.NewChannelPair(false, "test")
	if _, err := tbl.Insert(k.Mint(holder, theirs, caps.RightsSocketBase, caps.RightsSocketInheriting, "chan", "test")); err != nil {
		t.Fatal(err)
	}
	// Grows its memory, says "r" on fd 0 and reads one byte into the new
	// page, then exits with that byte. The memory grows before "r", so
	// that the runtime is closed while the guest makes only host calls,
	// as a guest that Supervisor.Close outlives is blocked in one: wazero's
	// Close and a memory.grow running at the same time race on the memory.
	const src = `(module
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "r")
  (func (export "_start")
    (drop (memory.grow (i32.const 1)))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $fd_write (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 0) (i32.const 65636))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.load8_u (i32.const 65636)))))`
	done := make(chan ExitStatus, 1)
	go func() { done <- runGuest(t, rt, src, 0, tbl) }()
	w := caps.NewWaiter()
	for got := false; !got; {
		ready, cancel := mine.Poll(caps.EventRead, w)
		if ready == 0 {
			<-w.C() // runGuest's own guard ends a guest that never writes
		}
		cancel()
		n, _, _, _ := mine.Recv([][]byte{make([]byte, 1)}, 0, false)
		got = n == 1
	}
	if err := rt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := mine.Write([]byte{42}); err != nil {
		t.Fatal(err)
	}
	if st := <-done; st.Code != 42 {
		t.Errorf("status %+v, want exit 42", st)
	}
}
