package daemon

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/abi/abitest"
)

// BenchmarkIdleGoGuests launches b.N Go guests (daemon/testdata/guests/
// gosleep, built from source) that each print "ready" and sleep, waits
// until all are asleep, and reports what they hold, per guest: the growth
// of the process's resident memory (MB-RSS/guest), of the Go heap and
// goroutine stacks (MB-heap/guest) and of the rest, outside the Go heap:
// linear memories, which abi maps itself (MB-other/guest). Run it with a
// fixed count, e.g. -benchtime 200x: bench/idle-go-guests.sh does.
func BenchmarkIdleGoGuests(b *testing.B) {
	ctx := context.Background()
	s, err := New(ctx, Options{CacheDir: testCache})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, HangGuard)
		defer cancel()
		if err := s.Close(cctx); err != nil {
			b.Errorf("Close: %v", err)
		}
	}()
	m, err := s.Compile(ctx, "gosleep", abitest.Go(b, "daemon/testdata/guests/gosleep"))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Release()
	// One guest first, so that what every guest shares (the compiled
	// code, the runtime's first allocations) is not counted.
	first := launchIdleGo(b, s, m)
	defer first.Kill("benchmark over")
	rss0, heap0 := idleMemory(b)
	b.ResetTimer()
	guests := make([]*Guest, 0, b.N)
	for range b.N {
		guests = append(guests, launchIdleGo(b, s, m))
	}
	b.StopTimer()
	rss1, heap1 := idleMemory(b)
	n := float64(b.N)
	b.ReportMetric(float64(rss1-rss0)/n/(1<<20), "MB-RSS/guest")
	b.ReportMetric(float64(heap1-heap0)/n/(1<<20), "MB-heap/guest")
	b.ReportMetric((float64(rss1-rss0)-float64(heap1-heap0))/n/(1<<20), "MB-other/guest")
	for _, g := range guests {
		g.Kill("benchmark over")
	}
	for _, g := range guests {
		<-g.Done()
	}
}

// launchIdleGo launches one gosleep guest and waits until it has printed
// "ready": from then on it only sleeps.
func launchIdleGo(b *testing.B, s *Supervisor, m *abi.Module) *Guest {
	out := &output{wrote: make(chan struct{}, 1)}
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Stdout: out, Stderr: out})
	if err != nil {
		b.Fatal(err)
	}
	awaitOutput(b, out, "ready\n")
	return g
}

// idleMemory returns the process's resident memory and what the Go
// runtime holds for heap objects and goroutine stacks, after a
// collection that returns freed memory to the kernel.
func idleMemory(b *testing.B) (rss, heap int64) {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		b.Fatal(err)
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(data), &size, &resident); err != nil {
		b.Fatal(err)
	}
	return resident * int64(os.Getpagesize()), int64(ms.HeapInuse + ms.StackInuse)
}

// awaitOutput waits until out contains want.
func awaitOutput(b *testing.B, out *output, want string) {
	b.Helper()
	deadline := time.After(HangGuard)
	for !strings.Contains(out.String(), want) {
		select {
		case <-out.wrote:
		case <-deadline:
			b.Fatalf("output %q has no %q after %v", out.String(), want, HangGuard)
		}
	}
}
