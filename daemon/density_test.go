package daemon

import (
	"context"
	"flag"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/abi/abitest"
)

// startedWriter signals started once, at the guest's first write: the
// idle guest writes one byte before it blocks.
type startedWriter struct {
	once    sync.Once
	started chan<- struct{}
}

func (w *startedWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { w.started <- struct{}{} })
	return len(p), nil
}

// launchIdle launches n idle guests (daemon/testdata/guests/idle.wat) and
// returns once each has written its byte, about to block. It starts no
// goroutine of its own, which would count among the guests' when a test
// counts them.
func launchIdle(tb testing.TB, s *Supervisor, m *abi.Module, n int) []*Guest {
	started := make(chan struct{}, n)
	gs := make([]*Guest, n)
	for i := range gs {
		g, err := s.Launch(context.Background(), LaunchSpec{Module: m, MemoryLimit: 1 << 20, Stdout: &startedWriter{started: started}})
		if err != nil {
			tb.Fatalf("guest %d: %v", i, err)
		}
		gs[i] = g
	}
	timeout := time.After(HangGuard)
	for i := range n {
		select {
		case <-started:
		case <-timeout:
			tb.Fatalf("%d of %d idle guests did not start within %v", n-i, n, HangGuard)
		}
	}
	return gs
}

// killAll kills every guest and waits until each is done.
func killAll(tb testing.TB, gs []*Guest) {
	for _, g := range gs {
		g.Kill("test over")
	}
	for _, g := range gs {
		select {
		case <-g.Done():
		case <-time.After(HangGuard):
			tb.Fatalf("guest %s still running %v after it was killed", g.ID(), HangGuard)
		}
	}
}

// forgetAll kills every guest, waits until each is done and forgets it.
func forgetAll(tb testing.TB, s *Supervisor, gs []*Guest) {
	killAll(tb, gs)
	for _, g := range gs {
		if _, listed := s.Guest(g.ID()); !listed {
			continue // among the oldest exited, no longer kept
		}
		if err := s.Forget(g.ID()); err != nil {
			tb.Fatal(err)
		}
	}
}

// heapObjects is what the Go runtime holds for live objects, after
// collections.
func heapObjects() uint64 {
	runtime.GC()
	runtime.GC() // sync.Pools keep their victims through one collection
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// heapAndStacks is what the Go runtime holds for live objects and
// goroutine stacks, after collections.
func heapAndStacks() uint64 {
	runtime.GC()
	runtime.GC() // sync.Pools keep their victims through one collection
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64()
}

func TestThousandIdleGuestsCostOneGoroutineEachAndLeaveNothingBehind(t *testing.T) {
	const n = 1000
	s := newSupervisor(t)
	m := compile(t, s, guests+"idle.wat")
	defer m.Release()
	// Warm up with as many guests as the test runs: the runtime's own
	// goroutines and pools start, and the supervisor's and the kernel's
	// maps grow to the size n guests need (maps do not shrink), so that
	// what is left after the second round is what the guests leaked.
	forgetAll(t, s, launchIdle(t, s, m, n))
	idleG := runtime.NumGoroutine()
	idleMem, idleObjects := heapAndStacks(), heapObjects()

	gs := launchIdle(t, s, m, n)
	// Each guest blocks on its own goroutine; nothing else waits for it.
	if got := runtime.NumGoroutine() - idleG; got > n {
		t.Errorf("%d idle guests run %d goroutines, want at most one each", n, got)
	}
	t.Logf("%d idle guests: %d goroutines, %d bytes of heap and stacks each", n, runtime.NumGoroutine()-idleG, (heapAndStacks()-idleMem)/n)
	running := 0
	for _, g := range s.Guests() {
		if r, _ := g.Status(); r {
			running++
		}
	}
	if running != n {
		t.Errorf("%d guests listed running, want %d", running, n)
	}
	forgetAll(t, s, gs)

	deadline := time.Now().Add(HangGuard)
	for runtime.NumGoroutine() > idleG {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines %v after every guest ended, want the idle level of %d", runtime.NumGoroutine(), HangGuard, idleG)
		}
		time.Sleep(time.Millisecond)
	}
	// What the guests held is released: a leak of a guest's record, or
	// of anything larger than a few pointers a guest, passes the margin
	// (goroutine stacks are left out: the runtime caches freed ones, and
	// the goroutine count above covers them).
	if after, limit := heapObjects(), idleObjects+n*512; after > limit {
		t.Errorf("heap objects at %d bytes after every guest ended and was forgotten, from %d before: more than %d", after, idleObjects, limit)
	}
}

// idleHeapProfile is where BenchmarkIdleGuestCost writes a heap profile
// taken while its guests are idle, every allocation sampled
// (docs/BENCHMARKS.md, "What an idle guest is made of").
var idleHeapProfile = flag.String("idle-heap-profile", "", "BenchmarkIdleGuestCost writes the heap of its idle guests to `FILE`")

// BenchmarkIdleGuestCost launches 1,000 idle guests per iteration (the
// time per op) and reports what each costs the Go runtime (heap objects and goroutine
// stacks; their linear memory is outside the heap) and how many
// goroutines it runs. bench/density.sh measures the daemon's whole RSS.
// With -idle-heap-profile FILE it samples every allocation and writes the
// heap while the first iteration's guests are idle.
func BenchmarkIdleGuestCost(b *testing.B) {
	if *idleHeapProfile != "" {
		defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
		runtime.MemProfileRate = 1
	}
	s, err := New(context.Background(), Options{CacheDir: testCache})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	m, err := s.Compile(context.Background(), "idle.wat", abitest.WAT(b, guests+"idle.wat"))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Release()
	forgetAll(b, s, launchIdle(b, s, m, 1))
	const n = 1000
	var bytes, goroutines float64
	for b.Loop() {
		b.StopTimer()
		mem0, g0 := heapAndStacks(), runtime.NumGoroutine()
		b.StartTimer()
		gs := launchIdle(b, s, m, n)
		b.StopTimer()
		bytes += float64(heapAndStacks()-mem0) / n
		goroutines += float64(runtime.NumGoroutine()-g0) / n
		writeIdleHeap(b)
		forgetAll(b, s, gs)
		b.StartTimer()
	}
	b.ReportMetric(bytes/float64(b.N), "heap+stack-B/guest")
	b.ReportMetric(goroutines/float64(b.N), "goroutines/guest")
}

func TestGuestsAfterPagesThroughWhatGuestsListsAfterGuestsAreForgotten(t *testing.T) {
	s := newSupervisor(t)
	m := compile(t, s, guests+"idle.wat")
	defer m.Release()
	gs := launchIdle(t, s, m, 7)
	killAll(t, gs[1:3])
	if err := s.Forget(gs[1].ID()); err != nil {
		t.Fatal(err)
	}
	running := func(g *Guest) bool { r, _ := g.Status(); return r }
	for _, keep := range []func(*Guest) bool{nil, running} {
		var want []*Guest
		for _, g := range s.Guests() {
			if keep == nil || keep(g) {
				want = append(want, g)
			}
		}
		var got []*Guest
		var after GuestCursor
		for {
			page, more := s.GuestsAfter(after, 2, keep)
			got = append(got, page...)
			if !more {
				break
			}
			after = page[len(page)-1].Cursor()
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages of 2 (keep running only: %v): %d guests, want %d in Guests' order", keep != nil, len(got), len(want))
		}
	}
	if n := len(s.Guests()); n != 6 {
		t.Errorf("Guests lists %d, want the 6 not forgotten", n)
	}
}

// writeIdleHeap writes the heap to -idle-heap-profile, once.
func writeIdleHeap(b *testing.B) {
	if *idleHeapProfile == "" {
		return
	}
	f, err := os.Create(*idleHeapProfile)
	if err == nil {
		err = pprof.Lookup("heap").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	*idleHeapProfile = ""
}
