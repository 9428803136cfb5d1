package abi

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// signalCharge is a MemoryCharge without limit that closes taken at its
// first Take.
type signalCharge struct {
	testCharge
	once  sync.Once
	taken chan struct{}
}

func (c *signalCharge) Take(n int64) bool {
	c.once.Do(func() { close(c.taken) })
	return c.testCharge.Take(n)
}

// A guest whose spawn waits for a compile turn that never comes (every
// turn taken) ends when it is killed, as a --timeout or the daemon's
// shutdown kills it, and gives back the file's bytes it held.
func TestAGuestWaitingToCompileItsSpawnEndsWhenKilled(t *testing.T) {
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{MaxCompiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	m := compileSpawner(t, rt)
	defer m.Release()
	path := filepath.Join(t.TempDir(), "child.wasm")
	if err := os.WriteFile(path, abitest.WATText(t, `(module (memory (export "memory") 1) (func (export "_start")))`), 0o644); err != nil {
		t.Fatal(err)
	}
	g, charge, _ := startWaitingSpawn(t, rt, m)
	g.Kill("test kill")
	select {
	case <-g.Done():
	case <-time.After(HangGuard):
		t.Fatalf("the killed guest was still waiting to compile after %v", HangGuard)
	}
	if st := g.Status(); st.Killed != "test kill" || charge.used != 0 {
		t.Fatalf("status %+v, %d bytes still charged; want killed, 0", st, charge.used)
	}
}

// startWaitingSpawn starts spawnFD0WAT from m, its fd 0 a wasm file
// never compiled before, once every compile turn of rt is taken for
// good, and returns once the spawn has stat'ed the file: it reads it and
// waits for a turn.
func startWaitingSpawn(t *testing.T, rt *Runtime, m *Module) (*Guest, *signalCharge, *caps.Cap) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "child.wasm")
	if err := os.WriteFile(path, abitest.WATText(t, `(module (memory (export "memory") 1) (func (export "_start")))`), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	k := caps.NewKernel(nil)
	h := &caps.Holder{ID: "g"}
	tbl := caps.NewTable(k, h, 0)
	c := k.Mint(h, caps.NewFile(f, path), caps.RightProcExec, 0, "child", "test")
	if _, err := tbl.Insert(c); err != nil {
		t.Fatal(err)
	}
	for range cap(rt.compiling) {
		rt.compiling <- struct{}{} // never given back
	}
	charge := &signalCharge{testCharge: testCharge{limit: 1 << 30}, taken: make(chan struct{})}
	g := rt.NewGuest(m, GuestConfig{ID: "g", Table: tbl, Memory: charge})
	g.Start(context.Background())
	t.Cleanup(func() { g.Kill("test over"); g.Wait() })
	select {
	case <-charge.taken:
	case <-g.Done():
		t.Fatalf("the spawner ended before it read its file: %+v", g.Status())
	case <-time.After(HangGuard):
		t.Fatalf("the spawn did not read its file within %v", HangGuard)
	}
	return g, charge, c
}

// Revoking the file handle a guest spawns from does not wait for the
// module's compile: the file is read whole first, and the handle is not
// in use while the module compiles or waits its turn. The revocation
// waited for the compile (seconds for a large module; here, a turn that
// does not come until the test gives it). The spawn then fails with
// ENOTCAPABLE: nothing starts from a handle after its revocation.
func TestRevokingTheFileASpawnCompilesDoesNotWaitForTheCompile(t *testing.T) {
	ctx := context.Background()
	rt, err := NewRuntime(ctx, Config{MaxCompiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	m := compileSpawner(t, rt)
	defer m.Release()
	g, _, c := startWaitingSpawn(t, rt, m)
	revoked := make(chan struct{})
	go func() {
		g.kernel.Revoke(c, "test revoke")
		close(revoked)
	}()
	select {
	case <-revoked:
	case <-g.Done():
		t.Fatalf("the spawner ended: %+v", g.Status())
	case <-time.After(HangGuard):
		t.Fatalf("the revocation still waited for the spawn's compile after %v", HangGuard)
	}
	for range cap(rt.compiling) {
		<-rt.compiling
	}
	select {
	case <-g.Done():
	case <-time.After(HangGuard):
		t.Fatalf("the spawner did not end within %v of its compile turn", HangGuard)
	}
	if st := g.Status(); st.Err() != nil || st.Code != uint32(caps.ENOTCAPABLE) {
		t.Fatalf("status %+v, want exit %d: a spawn whose handle was revoked while it compiled fails with ENOTCAPABLE", st, caps.ENOTCAPABLE)
	}
}
