package abi

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// forkBomb spawns a copy of itself, handing on its module handle (fd 0)
// and stdout (fd 1), and then spins. The guest whose spawn fails with e
// writes "full" first.
func forkBomb(e caps.Errno) string {
	return fmt.Sprintf(`(module
  (import "sandboxd" "proc_spawn" (func $spawn (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\00\00\00\00\01\00\00\00")
  (data (i32.const 32) "full\n")
  (func (export "_start")
    (if (i32.eq (call $spawn (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 2) (i32.const 16)) (i32.const %d))
      (then
        (i32.store (i32.const 8) (i32.const 32))
        (i32.store (i32.const 12) (i32.const 5))
        (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 24)))))
    (loop $l (br $l))))`, e)
}

// testBudget is a SpawnBudget of n descendants that counts its calls.
type testBudget struct {
	mu           sync.Mutex
	n            int
	takes, gives int
}

func (b *testBudget) Take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.takes-b.gives == b.n {
		return false
	}
	b.takes++
	return true
}

func (b *testBudget) Give() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gives++
}

// startForkBomb runs forkBomb(e) as the root of a tree configured by cfg
// (its ID and Table are set here) and returns once a guest of the tree
// has written "full": its spawn failed with e.
func startForkBomb(t *testing.T, e caps.Errno, cfg GuestConfig) (root *Guest, out *abitest.Buffer) {
	t.Helper()
	ctx := context.Background()
	rt := newCacheRuntime(t, 4)
	m, err := rt.Compile(ctx, "bomb", abitest.WATText(t, forkBomb(e)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release() // the guests hold it
	k := caps.NewKernel(nil)
	h := &caps.Holder{ID: "root"}
	cfg.ID, cfg.Table = "root", caps.NewTable(k, h, 0)
	out = &abitest.Buffer{}
	for _, c := range []*caps.Cap{
		k.Mint(h, NewModuleResource(m), caps.RightProcExec, 0, "self", "test"),
		k.Mint(h, caps.NewStdout("stdout", out), caps.RightsTTYBase, 0, "stdout", "test"),
	} {
		if _, err := cfg.Table.Insert(c); err != nil {
			t.Fatal(err)
		}
	}
	root = rt.NewGuest(m, cfg)
	root.Start(ctx)
	deadline := time.Now().Add(HangGuard)
	for !strings.Contains(out.String(), "full") {
		if time.Now().After(deadline) {
			t.Fatalf("no guest saw %v within %v; %d descendants running", e, HangGuard, root.tree.running.Load())
		}
		time.Sleep(time.Millisecond)
	}
	return root, out
}

// A tree whose budget refuses a spawn gets ENOMEM there, before the tree's
// limit; every descendant's charge is given back once the tree has ended.
func TestSpawnPastTheBudgetFailsWithENOMEMAndEveryChargeIsGivenBack(t *testing.T) {
	budget := &testBudget{n: 2}
	root, _ := startForkBomb(t, caps.ENOMEM, GuestConfig{MaxDescendants: 10, SpawnBudget: budget})
	if n := root.tree.running.Load(); n != 2 {
		t.Fatalf("%d descendants running when the budget was spent, want 2", n)
	}
	root.Kill("test over")
	root.Wait()
	budget.mu.Lock()
	defer budget.mu.Unlock()
	if budget.takes != 2 || budget.gives != 2 || root.tree.running.Load() != 0 {
		t.Fatalf("after the tree ended: %d takes, %d gives, %d descendants counted; want 2, 2, 0", budget.takes, budget.gives, root.tree.running.Load())
	}
}

// A guest that spawns itself without end gets MaxDescendants running
// descendants over its whole tree, and then EAGAIN; when the root is
// killed every descendant ends and the count returns to zero.
func TestSpawnStopsAtTheTreesLimitWithEAGAIN(t *testing.T) {
	const max = 3
	root, out := startForkBomb(t, caps.EAGAIN, GuestConfig{MaxDescendants: max})
	if n := root.tree.running.Load(); n != max {
		t.Fatalf("%d descendants running when the tree was full, want %d", n, max)
	}
	root.Kill("test over")
	root.Wait()
	if n := root.tree.running.Load(); n != 0 {
		t.Fatalf("%d descendants counted after the root and its tree ended", n)
	}
	if got := out.String(); got != "full\n" {
		t.Fatalf("stdout %q: want exactly one guest to have been refused", got)
	}
}

// A full tree refuses a spawn before it reads or compiles anything: a
// handle that is no module at all still gets EAGAIN, not ENOEXEC.
func TestFullTreeRefusesASpawnBeforeReadingTheModule(t *testing.T) {
	ctx := context.Background()
	rt := newCacheRuntime(t, 4)
	m := compileSpawner(t, rt)
	defer m.Release()
	path := filepath.Join(t.TempDir(), "garbage.wasm")
	if err := os.WriteFile(path, []byte("not WebAssembly"), 0o644); err != nil {
		t.Fatal(err)
	}
	k := caps.NewKernel(nil)
	run := func(full bool) ExitStatus {
		h := &caps.Holder{ID: "g"}
		tbl := caps.NewTable(k, h, 0)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tbl.Insert(k.Mint(h, caps.NewFile(f, "garbage.wasm"), caps.RightProcExec, 0, "not a module", "test")); err != nil {
			t.Fatal(err)
		}
		g := rt.NewGuest(m, GuestConfig{ID: "g", Table: tbl, MaxDescendants: 1})
		if full {
			g.tree.running.Store(1)
		}
		return g.Run(ctx)
	}
	if st := run(false); st.Code != uint32(caps.ENOEXEC) {
		t.Fatalf("spawn of a file that is no module: %+v, want exit %d (ENOEXEC)", st, caps.ENOEXEC)
	}
	if st := run(true); st.Code != uint32(caps.EAGAIN) {
		t.Fatalf("spawn in a full tree: %+v, want exit %d (EAGAIN)", st, caps.EAGAIN)
	}
}

// testCharge is a MemoryCharge of limit bytes that keeps the most it held.
type testCharge struct {
	mu               sync.Mutex
	limit, used, max int64
}

func (c *testCharge) Take(n int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.used+n > c.limit {
		return false
	}
	c.used += n
	c.max = max(c.max, c.used)
	return true
}

func (c *testCharge) Give(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used -= n
}

// A spawn from a file reads the whole file into the host's memory (up to
// MaxModuleBytes) and holds it while the module compiles, or waits its
// turn to: that is charged to the tree's memory (GuestConfig.Memory, the
// daemon's budget per user), as its byte objects are, and given back
// after. A file larger than what is left fails with ENOMEM before it is
// read.
func TestSpawnFromAFileChargesTheBytesItReads(t *testing.T) {
	ctx := context.Background()
	rt := newCacheRuntime(t, 4)
	m := compileSpawner(t, rt)
	defer m.Release()
	const size = 4 << 20
	path := filepath.Join(t.TempDir(), "big.wasm")
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil { // no module: ENOEXEC once read
		t.Fatal(err)
	}
	k := caps.NewKernel(nil)
	run := func(charge *testCharge) ExitStatus {
		h := &caps.Holder{ID: "g"}
		tbl := caps.NewTable(k, h, 0)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tbl.Insert(k.Mint(h, caps.NewFile(f, "big.wasm"), caps.RightProcExec, 0, "big", "test")); err != nil {
			t.Fatal(err)
		}
		return rt.NewGuest(m, GuestConfig{ID: "g", Table: tbl, Memory: charge}).Run(ctx)
	}
	small := &testCharge{limit: size / 4}
	if st := run(small); st.Code != uint32(caps.ENOMEM) || small.max != 0 {
		t.Errorf("spawn of %d bytes with %d left: %+v, %d charged; want exit %d (ENOMEM), nothing charged", size, small.limit, st, small.max, caps.ENOMEM)
	}
	enough := &testCharge{limit: 2 * size}
	if st := run(enough); st.Code != uint32(caps.ENOEXEC) || enough.max < size || enough.used != 0 {
		t.Errorf("spawn of %d bytes with %d left: %+v, %d charged at most and %d at the end; want exit %d (ENOEXEC), %d charged while read, 0 after",
			size, enough.limit, st, enough.max, enough.used, caps.ENOEXEC, size)
	}
}

// The argdata a guest hands to proc_spawn (up to MaxArgdataBytes) is
// kept in the host's memory for as long as the child runs: it is charged
// to the tree's memory (GuestConfig.Memory), as the child's module file
// is while it is read, and given back when the child ends. Argdata that
// does not fit fails the spawn with ENOMEM.
func TestSpawnChargesTheArgdataItKeeps(t *testing.T) {
	ctx := context.Background()
	rt := newCacheRuntime(t, 4)
	const size = 512 << 10
	parent, err := rt.Compile(ctx, "parent", abitest.WATText(t, fmt.Sprintf(`(module
  (import "sandboxd" "proc_spawn" (func $spawn (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 16)
  (func (export "_start")
    (call $exit (call $spawn (i32.const 0) (i32.const 0) (i32.const %d) (i32.const 0) (i32.const 0) (i32.const %d)))))`, size, size+16)))
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Release()
	child, err := rt.Compile(ctx, "child", abitest.WATText(t, `(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))`))
	if err != nil {
		t.Fatal(err)
	}
	defer child.Release()
	k := caps.NewKernel(nil)
	run := func(charge *testCharge) ExitStatus {
		h := &caps.Holder{ID: "g"}
		tbl := caps.NewTable(k, h, 0)
		if _, err := tbl.Insert(k.Mint(h, NewModuleResource(child), caps.RightProcExec, 0, "child", "test")); err != nil {
			t.Fatal(err)
		}
		return rt.NewGuest(parent, GuestConfig{ID: "g", Table: tbl, Memory: charge}).Run(ctx) // the child ends with it
	}
	small := &testCharge{limit: size / 2}
	if st := run(small); st.Code != uint32(caps.ENOMEM) || small.max != 0 {
		t.Errorf("spawn with %d bytes of argdata and %d left: %+v, %d charged; want exit %d (ENOMEM), nothing charged", size, small.limit, st, small.max, caps.ENOMEM)
	}
	enough := &testCharge{limit: 2 * size}
	if st := run(enough); st.Code != 0 || enough.max < size || enough.used != 0 {
		t.Errorf("spawn with %d bytes of argdata and %d left: %+v, %d charged at most and %d once the child ended; want exit 0, %d charged, 0 after",
			size, enough.limit, st, enough.max, enough.used, size)
	}
}

// A child's argdata is charged to the tree's memory until the child ends
// (TestSpawnChargesTheArgdataItKeeps), and then given back: the child
// must not keep it past then. Its Guest lives on as long as a process
// handle names it (a parent may keep one per child that ended, up to its
// --max-fds), so argdata kept there would hold a MiB a handle that no
// budget counts.
func TestAnEndedChildKeepsNoArgdata(t *testing.T) {
	ctx := context.Background()
	rt := newCacheRuntime(t, 4)
	const size = 512 << 10
	// Spawns the child with size bytes of argdata, says "r" on fd 1 and
	// waits there for the end of stream.
	parent, err := rt.Compile(ctx, "parent", abitest.WATText(t, fmt.Sprintf(`(module
  (import "sandboxd" "proc_spawn" (func $spawn (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 16)
  (data (i32.const %[2]d) "r")
  (func (export "_start")
    (if (call $spawn (i32.const 0) (i32.const 0) (i32.const %[1]d) (i32.const 0) (i32.const 0) (i32.const %[1]d))
      (then (call $exit (i32.const 1))))
    (i32.store (i32.const %[3]d) (i32.const %[2]d))
    (i32.store (i32.const %[4]d) (i32.const 1))
    (drop (call $fd_write (i32.const 1) (i32.const %[3]d) (i32.const 1) (i32.const %[5]d)))
    (drop (call $fd_read (i32.const 1) (i32.const %[3]d) (i32.const 1) (i32.const %[5]d)))
    (call $exit (i32.const 0))))`, size, size+8, size+16, size+20, size+24)))
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Release()
	child, err := rt.Compile(ctx, "child", abitest.WATText(t, `(module (memory (export "memory") 1) (func (export "_start")))`))
	if err != nil {
		t.Fatal(err)
	}
	defer child.Release()
	k := caps.NewKernel(nil)
	h := &caps.Holder{ID: "g"}
	tbl := caps.NewTable(k, h, 0)
	if _, err := tbl.Insert(k.Mint(h, NewModuleResource(child), caps.RightProcExec, 0, "child", "test")); err != nil {
		t.Fatal(err)
	}
	mine, theirs := caps.NewChannelPair(false, "test")
	if _, err := tbl.Insert(k.Mint(h, theirs, caps.RightsSocketBase, caps.RightsSocketInheriting, "chan", "test")); err != nil {
		t.Fatal(err)
	}
	charge := &testCharge{limit: 2 * size}
	g := rt.NewGuest(parent, GuestConfig{ID: "g", Table: tbl, Memory: charge})
	g.Start(ctx)
	defer func() {
		mine.Close()
		g.Kill("test over")
		<-g.Done()
	}()

	awaitByte(t, mine, g, "the parent ended before it said it had spawned")
	c := childIn(t, tbl)
	select {
	case <-c.Done():
	case <-time.After(hangGuardInternal):
		t.Fatalf("the child did not end within %v", hangGuardInternal)
	}
	charge.mu.Lock()
	used := charge.used
	charge.mu.Unlock()
	if len(c.argdata) != 0 || used != 0 {
		t.Errorf("an ended child whose process handle is held keeps %d bytes of argdata, with %d bytes charged; want none kept", len(c.argdata), used)
	}
}

// awaitByte waits until a byte can be received on ch, from g, and
// receives it; g's end first fails the test with why.
func awaitByte(t *testing.T, ch *caps.Channel, g *Guest, why string) {
	t.Helper()
	w := caps.NewWaiter()
	for got := false; !got; {
		ready, cancel := ch.Poll(caps.EventRead, w)
		if ready == 0 {
			select {
			case <-w.C():
			case <-g.Exited():
				t.Fatalf("%s: %+v", why, g.Status())
			}
		}
		cancel()
		n, _, _, _ := ch.Recv([][]byte{make([]byte, 1)}, 0, false)
		got = n == 1
	}
}

// childIn returns the child whose process handle tbl holds.
func childIn(t *testing.T, tbl *caps.Table) *Guest {
	t.Helper()
	for _, e := range tbl.Entries() {
		if p, ok := e.Cap.Resource().(*process); ok {
			return p.g
		}
	}
	t.Fatal("the parent holds no process handle")
	return nil
}

// compileSpawner compiles spawnFD0WAT on rt; the caller releases it.
func compileSpawner(t *testing.T, rt *Runtime) *Module {
	t.Helper()
	m, err := rt.Compile(context.Background(), "spawner", abitest.WATText(t, spawnFD0WAT))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// spawnFD0WAT spawns a child from the module or file at fd 0, with no
// argdata and no handles, and exits with proc_spawn's errno.
const spawnFD0WAT = `(module
  (import "sandboxd" "proc_spawn" (func $spawn (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $exit (call $spawn (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 16)))))`

// A child logs through its parent's logger, so that what the supervisor
// bounds in the lines a guest may cause (a per-guest limit) holds for
// the children it spawns: the child's lines went to the runtime's own
// logger.
func TestAChildLogsThroughItsParentsLogger(t *testing.T) {
	ctx := context.Background()
	rt := newCacheRuntime(t, 4)
	parent, err := rt.Compile(ctx, "parent", abitest.WATText(t, `(module
  (import "sandboxd" "proc_spawn" (func $spawn (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (if (call $spawn (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 16))
      (then (call $exit (i32.const 1))))
    (loop $l (br $l))))`))
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Release()
	// The child closes a handle it does not have: an errno the runtime
	// logs at trace level.
	child, err := rt.Compile(ctx, "child", abitest.WATText(t, `(module
  (import "sandboxd" "fd_close" (func $close (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (drop (call $close (i32.const 99)))))`))
	if err != nil {
		t.Fatal(err)
	}
	defer child.Release()
	logs := abitest.NewWatcher("call=fd_close")
	log := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace}).With("marker", "parents")
	k := caps.NewKernel(nil)
	h := &caps.Holder{ID: "g"}
	tbl := caps.NewTable(k, h, 0)
	if _, err := tbl.Insert(k.Mint(h, NewModuleResource(child), caps.RightProcExec, 0, "child", "test")); err != nil {
		t.Fatal(err)
	}
	g := rt.NewGuest(parent, GuestConfig{ID: "g", Table: tbl, Logger: log})
	g.Start(ctx)
	defer func() { g.Kill("test"); g.Wait() }()
	select {
	case <-logs.Seen():
	case <-time.After(HangGuard):
		t.Fatalf("the child's errno was not logged through its parent's logger in %v:\n%s", HangGuard, logs.String())
	}
	line := logs.String()
	if !strings.Contains(line, "marker=parents") || !strings.Contains(line, "parent=g") {
		t.Errorf("the child's line lacks its parent's logger's fields:\n%s", line)
	}
}
