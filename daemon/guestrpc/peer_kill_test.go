package guestrpc

import (
	"runtime"
	"testing"
	"time"
)

// settledGoroutines waits until at most want goroutines run, as those
// that served what ended return, and fails if they never do. Goroutines
// end a while after the event that ends them: only a leak keeps the count
// up for the hang guard.
func settledGoroutines(t *testing.T, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%s: %d goroutines, want at most %d:\n%s", what, runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// heapInUse is the heap in use after a collection. It includes what the
// runtime keeps of goroutines that have ended, for reuse (about 1 KiB
// each), and the test's contexts until it ends.
func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC() // pooled buffers survive one
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A peer killed while another waits on calls to it, or a caller killed
// while its calls wait on a peer that does not answer: the calls end, and
// the goroutines and memory that served them go, in the daemon as in
// the test's guests.
func TestAPeerKilledDuringCallsLeavesNothingBehind(t *testing.T) {
	const calls = 100
	for _, killed := range []string{"the serving guest", "the caller"} {
		t.Run(killed, func(t *testing.T) {
			h := newHarness(t, Limits{})
			a, b := h.peer(t, "chan:jobs"), h.peer(t, "chan:jobs")
			st := newStore()
			st.block = make(chan struct{}) // it answers none
			defer close(st.block)
			st.started = make(chan struct{}, calls)
			s := servedStore(t, a, b, st)
			base, heap := runtime.NumGoroutine(), heapInUse()
			errs := make(chan error, calls)
			for i := 0; i < calls; i++ {
				go func() { errs <- put(testCtx(t), s, "k", "v") }()
			}
			for i := 0; i < calls; i++ {
				<-st.started
			}
			waiting := runtime.NumGoroutine()
			victim := a
			if killed == "the caller" {
				victim = b
			}
			victim.g.Kill("test")
			<-victim.g.Done()
			if killed == "the caller" {
				_ = b.conn.Close() // the guest's end goes with it
			}
			for i := 0; i < calls; i++ {
				if err := <-errs; err == nil {
					t.Fatal("a call to a store that answers none succeeded")
				}
			}
			settledGoroutines(t, base, "after the calls ended")
			t.Logf("goroutines: %d before the calls, %d with %d calls waiting, at most %d after; heap in use %d KiB before, %d KiB after",
				base, waiting, calls, runtime.NumGoroutine(), heap>>10, heapInUse()>>10)
			if grown := int64(heapInUse()) - int64(heap); grown > 4<<20 {
				t.Fatalf("the heap grew by %d KiB after %d calls ended with the guest killed", grown>>10, calls)
			}
		})
	}
}
