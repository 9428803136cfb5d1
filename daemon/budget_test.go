package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// MaxMemPerUser bounds each principal's running guests apart: alice's
// full budget refuses her next launch, naming the budget and what is in
// use, and leaves bob's launches alone; her budget comes back as her
// guests end, and a launch it refused left nothing behind.
func TestMemoryBudgetIsPerPrincipal(t *testing.T) {
	const mem, stack = 1 << 20, 64 << 10
	const charge = mem + stack
	s, err := New(context.Background(), Options{CacheDir: testCache, MaxMemPerUser: 2 * charge})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	m := compile(t, s, guests+"spin.wat")
	alice, bob := Principal{UID: 1000, Name: "alice"}, Principal{UID: 1001, Name: "bob"}
	launch := func(p Principal) (*Guest, error) {
		return s.Launch(context.Background(), LaunchSpec{Principal: p, Module: m, MemoryLimit: mem, MaxStack: stack})
	}
	var gs []*Guest
	for _, p := range []Principal{alice, alice, bob} {
		g, err := launch(p)
		if err != nil {
			t.Fatalf("launch for %s: %v", p, err)
		}
		gs = append(gs, g)
	}
	_, err = launch(alice)
	var be *BudgetError
	if !errors.As(err, &be) || be.Used != 2*charge || be.Asked != charge || be.Budget != 2*charge {
		t.Fatalf("alice's third launch: %v, want a *BudgetError", err)
	}
	for _, want := range []string{"alice's running guests hold 2176KiB", "--max-mem-per-user 2176KiB", "asks 1088KiB more"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if got := s.MemoryInUse(alice.UID); got != 2*charge {
		t.Errorf("alice's memory in use after the refusal: %d, want %d", got, 2*charge)
	}
	if g, err := launch(bob); err != nil {
		t.Errorf("bob's second launch: %v", err)
	} else {
		gs = append(gs, g)
	}
	gs[0].Kill("test")
	waitExit(t, gs[0], HangGuard)
	if got := s.MemoryInUse(alice.UID); got != charge {
		t.Errorf("alice's memory in use after one guest ended: %d, want %d", got, charge)
	}
	g, err := launch(alice)
	if err != nil {
		t.Fatalf("alice's launch after one guest ended: %v", err)
	}
	gs = append(gs, g)
	for _, g := range gs {
		g.Kill("test")
		waitExit(t, g, HangGuard)
	}
	if a, b := s.MemoryInUse(alice.UID), s.MemoryInUse(bob.UID); a != 0 || b != 0 {
		t.Errorf("memory in use once every guest ended: alice %d, bob %d", a, b)
	}
	// A launch without a memory limit counts the wasm32 maximum.
	if _, err := s.Launch(context.Background(), LaunchSpec{Principal: alice, Module: m}); !errors.As(err, &be) || be.Asked != MaxMemoryLimit+abi.DefaultMaxStack {
		t.Errorf("a launch without --mem: %v, want a *BudgetError asking %d", err, MaxMemoryLimit+abi.DefaultMaxStack)
	}
}

// sendLoopWAT sends its stdin handle on its fd 3 (a chan grant, or its
// supervisor channel) with native sock_send until a send fails or %d
// have been made, then exits with 1000 × the sends that succeeded + the
// errno of the one that failed (0 if none did).
const sendLoopWAT = `(module
  (import "sandboxd" "sock_send" (func $send (param i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "x")
  (func (export "_start")
    (local $n i32) (local $e i32)
    (i32.store (i32.const 100) (i32.const 200)) ;; one iovec: "x"
    (i32.store (i32.const 104) (i32.const 1))
    (i32.store (i32.const 300) (i32.const 0))   ;; one fd: 0
    (i32.store (i32.const 0) (i32.const 100))   ;; send_in: iovs, iovs_len
    (i32.store (i32.const 4) (i32.const 1))
    (i32.store (i32.const 8) (i32.const 300))   ;; fds, fds_len
    (i32.store (i32.const 12) (i32.const 1))
    (i32.store16 (i32.const 16) (i32.const 0))  ;; flags
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $n) (i32.const %d)))
        (local.set $e (call $send (i32.const 3) (i32.const 0) (i32.const 64)))
        (br_if $done (local.get $e))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $again)))
    (call $exit (i32.add (i32.mul (local.get $n) (i32.const 1000)) (local.get $e)))))`

// MaxInFlightPerUser bounds the handles a principal's guests have sent
// and nobody has received, together and apart from other principals'.
// They count after their sender has ended, while they wait in a queue,
// and stop counting once the queue is dropped.
func TestHandlesInFlightAreBoundedPerPrincipal(t *testing.T) {
	const max = 5
	s, err := New(context.Background(), Options{CacheDir: testCache, MaxInFlightPerUser: max})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	s.SetPolicy(mustPolicy(t, `
resource "chan" "p1" {}
resource "chan" "p2" {}
resource "chan" "p3" {}
grant "all" {
  resources = ["chan:p1", "chan:p2", "chan:p3"]
}`))
	m := compileWAT(t, s, fmt.Sprintf(sendLoopWAT, 1000))
	alice, bob := Principal{UID: 1000, GID: 1000, Name: "alice"}, Principal{UID: 1001, GID: 1001, Name: "bob"}
	run := func(p Principal, ch string) uint32 {
		t.Helper()
		g, err := s.Launch(context.Background(), LaunchSpec{Principal: p, Module: m, Grants: []Grant{mustGrant(t, "chan:"+ch)}})
		if err != nil {
			t.Fatal(err)
		}
		return exitCode(t, g)
	}
	nobufs := uint32(caps.ENOBUFS)
	if got := run(alice, "p1"); got != max*1000+nobufs {
		t.Fatalf("alice's first guest: exit %d, want %d sends then ENOBUFS (%d)", got, max, nobufs)
	}
	if n := s.account(alice.UID).inflight.InFlight(); n != max {
		t.Fatalf("alice has %d handles in flight after her guest ended, want %d: they wait in chan:p1's queue", n, max)
	}
	if got := run(alice, "p2"); got != nobufs {
		t.Fatalf("alice's second guest: exit %d, want no send then ENOBUFS (%d)", got, nobufs)
	}
	if got := run(bob, "p3"); got != max*1000+nobufs {
		t.Fatalf("bob's guest: exit %d, want %d sends then ENOBUFS (%d)", got, max, nobufs)
	}
	// The other end of chan:p1, to a third user: its peer has gone
	// (EPIPE), and its exit drops the queue that held alice's handles.
	carol := Principal{UID: 1002, GID: 1002, Name: "carol"}
	if got := run(carol, "p1"); got != uint32(caps.EPIPE) {
		t.Fatalf("the guest joining chan:p1: exit %d, want EPIPE (%d)", got, caps.EPIPE)
	}
	if n := s.account(alice.UID).inflight.InFlight(); n != 0 {
		t.Fatalf("alice has %d handles in flight once their queue was dropped, want 0", n)
	}
}

// byteObjectWAT makes a byte object (fd_create1) and writes one byte at
// offset %d with fd_pwrite. If the write fails it exits with its errno;
// otherwise it says so with a byte on stdout and spins, the object open,
// until it is killed.
const byteObjectWAT = `(module
  (import "sandboxd" "fd_create1" (func $create (param i32 i32) (result i32)))
  (import "sandboxd" "fd_pwrite" (func $pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "sandboxd" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "x")
  (func (export "_start")
    (local $e i32)
    (local.set $e (call $create (i32.const 0x70) (i32.const 0)))
    (if (local.get $e) (then (call $exit (i32.add (i32.const 1000) (local.get $e)))))
    (i32.store (i32.const 100) (i32.const 200)) ;; one iovec: "x"
    (i32.store (i32.const 104) (i32.const 1))
    (local.set $e (call $pwrite (i32.load (i32.const 0)) (i32.const 100) (i32.const 1) (i64.const %d) (i32.const 8)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (drop (call $write (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 8)))
    (loop $spin (br $spin))))`

// The byte objects a principal's guests make count against its memory
// budget while they are open: a write that would grow one past it fails
// with ENOSPC, and the memory comes back when the object is closed.
func TestByteObjectsCountAgainstTheMemoryBudgetPerUser(t *testing.T) {
	s := budgetSupervisor(t, 3<<20)
	wrote := make(chan struct{})
	launch := func(offset int) *Guest {
		t.Helper()
		m := compileWAT(t, s, fmt.Sprintf(byteObjectWAT, offset))
		g, err := s.Launch(context.Background(), LaunchSpec{Principal: alice, Module: m, MemoryLimit: budgetMem, MaxStack: budgetStack,
			Stdout: closeOnWrite(wrote)})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	g := launch(4 << 20)
	if st := waitExit(t, g, HangGuard); st.Code != uint32(caps.ENOSPC) {
		t.Fatalf("a write growing a byte object past alice's budget: %+v, want exit ENOSPC (%d)", st, caps.ENOSPC)
	}
	if got := s.MemoryInUse(alice.UID); got != 0 {
		t.Fatalf("alice's memory in use after the refused write: %d, want 0", got)
	}
	g = launch(2 << 20)
	select {
	case <-wrote:
	case <-g.Done():
		_, st := g.Status()
		t.Fatalf("the guest writing within the budget ended: %+v", st)
	case <-time.After(HangGuard):
		t.Fatal("the guest never wrote within the budget")
	}
	if got, want := s.MemoryInUse(alice.UID), uint64(budgetCharge+2<<20+1); got != want {
		t.Fatalf("alice's memory in use with a 2 MiB + 1 byte object open: %d, want %d", got, want)
	}
	g.Kill("test")
	waitExit(t, g, HangGuard)
	if got := s.MemoryInUse(alice.UID); got != 0 {
		t.Fatalf("alice's memory in use once the guest and its byte object are gone: %d, want 0", got)
	}
}

// channelFillWAT makes stream channels (fd_create2); into each it writes
// 256 KiB on one end (fd_write, one call) and reads %d bytes back from
// the other, keeping both open, 256 times or until a call fails; it exits
// with 1000 × the channels done + the errno of the call that failed.
const channelFillWAT = `(module
  (import "sandboxd" "fd_create2" (func $create2 (param i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 5)
  (func (export "_start")
    (local $n i32) (local $e i32) (local $back i32)
    (local.set $back (i32.const %[1]d))
    (i32.store (i32.const 0) (i32.const 65536))  ;; write iovec: 256 KiB at 64 KiB
    (i32.store (i32.const 4) (i32.const 262144))
    (i32.store (i32.const 8) (i32.const 65536))  ;; read iovec: $back bytes at 64 KiB
    (i32.store (i32.const 12) (local.get $back))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $n) (i32.const 256)))
        (local.set $e (call $create2 (i32.const 0x82) (i32.const 16) (i32.const 20)))
        (br_if $done (local.get $e))
        (local.set $e (call $write (i32.load (i32.const 16)) (i32.const 0) (i32.const 1) (i32.const 24)))
        (br_if $done (local.get $e))
        (if (local.get $back) (then
          (local.set $e (call $read (i32.load (i32.const 20)) (i32.const 8) (i32.const 1) (i32.const 28)))))
        (br_if $done (local.get $e))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $again)))
    (call $exit (i32.add (i32.mul (local.get $n) (i32.const 1000)) (local.get $e)))))`

// The buffers of the channels a principal's guests make count against its
// memory budget until each message is read to its end or dropped: with 1
// MiB of budget to spare, a guest keeping channels that each hold 256 KiB,
// unread or read to its last byte (a stream message read in part keeps its
// bytes), gets four and then ENOBUFS, not 256 channels (64 MiB), and the
// bytes come back once the channels are gone.
func TestChannelBuffersCountAgainstTheMemoryBudgetPerUser(t *testing.T) {
	for _, c := range []struct {
		name string
		back int
	}{{"unread", 0}, {"read to its last byte", 256<<10 - 1}} {
		s := budgetSupervisor(t, 1<<20)
		g := budgetLaunch(t, s, compileWAT(t, s, fmt.Sprintf(channelFillWAT, c.back)))
		if st := waitExit(t, g, HangGuard); st.Code != 4000+uint32(caps.ENOBUFS) {
			t.Fatalf("a guest keeping channels that hold 256 KiB %s: %+v, want 4 channels then ENOBUFS (%d)", c.name, st, 4000+caps.ENOBUFS)
		}
		if got := s.MemoryInUse(alice.UID); got != 0 {
			t.Fatalf("%s: alice's memory in use once the guest and its channels are gone: %d, want 0", c.name, got)
		}
	}
}

// chanWriteWAT writes one 256 KiB datagram on its fd 3 (a chan grant)
// and exits with the errno of the write (0 on success).
const chanWriteWAT = `(module
  (import "sandboxd" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 5)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 65536))  ;; one iovec: 256 KiB at 64 KiB
    (i32.store (i32.const 4) (i32.const 262144))
    (call $exit (call $write (i32.const 3) (i32.const 0) (i32.const 1) (i32.const 24)))))`

// What the first guest granted a chan: name writes waits in the end the
// daemon keeps for the next grantee, after that guest has exited: it is
// charged to the first guest's user, or one user's launches could pile up
// 256 KiB each outside its memory budget.
func TestAChanGrantsUnreadBytesAreChargedToItsFirstGrantee(t *testing.T) {
	s := budgetSupervisor(t, 1<<20)
	m := compileWAT(t, s, chanWriteWAT)
	// Four 256 KiB writes fit her budget's 1 MiB to spare; the fifth does
	// not, though every writer has ended.
	for i := range 5 {
		g := budgetLaunch(t, s, m, mustGrant(t, fmt.Sprintf("chan:leak%d", i)))
		want := uint32(0)
		if i == 4 {
			want = uint32(caps.ENOBUFS)
		}
		if st := waitExit(t, g, HangGuard); st.Code != want {
			t.Fatalf("write on chan:leak%d: %+v, want exit %d", i, st, want)
		}
	}
	if used := s.MemoryInUse(alice.UID); used != 4*caps.ChannelBuffer {
		t.Fatalf("alice's memory in use once her guests ended: %d, want the %d bytes waiting in four chan: grants", used, 4*caps.ChannelBuffer)
	}
	// The next grantee of a name reads what waited and frees it.
	waitExit(t, budgetLaunch(t, s, m, mustGrant(t, "chan:leak0")), HangGuard)
	if used := s.MemoryInUse(alice.UID); used != 3*caps.ChannelBuffer {
		t.Fatalf("alice's memory in use once chan:leak0's second grantee ended: %d, want %d", used, 3*caps.ChannelBuffer)
	}
	// Shutting the supervisor down drops what still waits.
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if used := s.MemoryInUse(alice.UID); used != 0 {
		t.Fatalf("alice's memory in use once the supervisor closed: %d, want 0", used)
	}
}

// alice is the principal of the budget tests; budgetMem and budgetStack
// the limits of her guests, and budgetCharge what each is charged.
var alice = Principal{UID: 1000, GID: 1000, Name: "alice"}

const budgetMem, budgetStack = 1 << 20, 64 << 10
const budgetCharge = budgetMem + budgetStack

// budgetSupervisor is a supervisor whose memory budget per user holds one
// of alice's guests and spare bytes more.
func budgetSupervisor(t *testing.T, spare uint64) *Supervisor {
	t.Helper()
	s, err := New(context.Background(), Options{CacheDir: testCache, MaxMemPerUser: budgetCharge + spare})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// compileWAT compiles the module in WAT text wat.
func compileWAT(t *testing.T, s *Supervisor, wat string) *abi.Module {
	t.Helper()
	m, err := s.Compile(context.Background(), "guest.wat", abitest.WATText(t, wat))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// budgetLaunch launches m for alice, with budgetMem and budgetStack and
// the grants given.
func budgetLaunch(t *testing.T, s *Supervisor, m *abi.Module, grants ...Grant) *Guest {
	t.Helper()
	g, err := s.Launch(context.Background(), LaunchSpec{Principal: alice, Module: m, MemoryLimit: budgetMem, MaxStack: budgetStack, Grants: grants})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// closeOnWrite is a writer that closes ch at its first write.
func closeOnWrite(ch chan struct{}) io.Writer {
	var once sync.Once
	return writerFunc(func(p []byte) (int, error) {
		once.Do(func() { close(ch) })
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A chan: name whose first grantee ended having sent nothing holds
// nothing for anyone: the daemon forgets it, or one launch after another,
// each with a new name, would pile up ends no one will read.
func TestAChanNameWhoseFirstGranteeEndedSilentIsForgotten(t *testing.T) {
	s := newSupervisor(t)
	m := compile(t, s, "abi/testdata/guests/hello.wat")
	for i := range 8 {
		g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Grants: []Grant{mustGrant(t, fmt.Sprintf("chan:silent%d", i))}})
		if err != nil {
			t.Fatal(err)
		}
		waitExit(t, g, HangGuard)
	}
	if n := s.WaitingChans(); n != 0 {
		t.Fatalf("%d chan: names wait for a next grantee after their first grantees ended having sent nothing, want 0", n)
	}
	// What a first grantee sent still waits for the next one.
	w := compileWAT(t, s, chanWriteWAT)
	g, err := s.Launch(context.Background(), LaunchSpec{Module: w, Grants: []Grant{mustGrant(t, "chan:kept")}})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, g, HangGuard); st.Code != 0 {
		t.Fatalf("the writer: %+v", st)
	}
	if n := s.WaitingChans(); n != 1 {
		t.Fatalf("%d chan: names wait after a first grantee wrote and ended, want 1", n)
	}
}

// The stdin a launch carries (up to 1 MiB, held in the daemon's memory
// until the guest ends) counts against its user's budget while the guest
// runs: a user could make the daemon hold 1 MiB per guest beyond it, 8
// times the charge of a guest launched with --mem and --max-stack of 64
// KiB each.
func TestALaunchsStdinCountsAgainstTheMemoryBudgetPerUser(t *testing.T) {
	const mem, stack, in = 64 << 10, 64 << 10, 1 << 20
	const charge = mem + stack
	s, err := New(context.Background(), Options{CacheDir: testCache, MaxMemPerUser: charge + in})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	m := compile(t, s, guests+"spin.wat")
	alice := Principal{UID: 1000, Name: "alice"}
	launch := func(stdin int) (*Guest, error) {
		return s.Launch(context.Background(), LaunchSpec{Principal: alice, Module: m, MemoryLimit: mem, MaxStack: stack,
			Stdin: bytes.NewReader(make([]byte, stdin))})
	}
	g, err := launch(in)
	if err != nil {
		t.Fatalf("a launch whose charge and stdin fill the budget: %v", err)
	}
	if got := s.MemoryInUse(alice.UID); got != charge+in {
		t.Errorf("memory in use while a guest given %d bytes of stdin runs: %d, want %d", in, got, charge+in)
	}
	_, err = launch(1 << 10)
	var be *BudgetError
	if !errors.As(err, &be) || be.Asked != charge+1<<10 || be.Used != charge+in {
		t.Fatalf("a launch past the budget by its stdin: %v, want a *BudgetError", err)
	}
	if want := "asks 129KiB more (its --mem, --max-stack and 1KiB of stdin)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	g.Kill("test")
	waitExit(t, g, HangGuard)
	if got := s.MemoryInUse(alice.UID); got != 0 {
		t.Errorf("memory in use once the guest ended: %d, want 0", got)
	}
}
