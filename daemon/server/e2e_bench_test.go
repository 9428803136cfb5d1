package server_test

import (
	"context"
	"io"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/daemon/server"
)

// BenchmarkWarmLaunchThroughClient measures a warm launch of a small guest
// through the client library, from Launch to the exit status of Wait: the
// module is compiled once before the timer starts. It reports the p50 and
// p99 of single launches besides the mean, and the p99 of the launches
// during which no garbage collection ended (p99-nogc-µs; a launch that
// overlaps a collection's concurrent work without its end still counts:
// GOGC=off is the run without the collector).
func BenchmarkWarmLaunchThroughClient(b *testing.B) {
	benchWarmLaunch(b, client.LaunchRequest{Name: "hello.wat", Wasm: abitest.WAT(b, helloWAT)})
}

// BenchmarkWarmLaunchWithOutputThroughClient is
// BenchmarkWarmLaunchThroughClient with the guest's output streamed to the
// client, as `sandboxd launch` does: the daemon calls the client's
// OutputSink once for the guest's one write.
func BenchmarkWarmLaunchWithOutputThroughClient(b *testing.B) {
	benchWarmLaunch(b, client.LaunchRequest{Name: "hello.wat", Wasm: abitest.WAT(b, helloWAT), Stdout: io.Discard})
}

func benchWarmLaunch(b *testing.B, req client.LaunchRequest) {
	d := startBenchDaemon(b, server.Limits{})
	c := d.dial(b)
	ctx := context.Background()
	launch := func() {
		g, err := c.Launch(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		st, err := g.Wait(ctx)
		if err != nil || st.Code != 7 {
			b.Fatalf("status %+v, err %v", st, err)
		}
		g.Release()
	}
	for i := 0; i < 20; i++ {
		launch()
	}
	lat := make([]time.Duration, 0, b.N)
	var noGC []time.Duration
	gcs := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		metrics.Read(gcs)
		before := gcs[0].Value.Uint64()
		t0 := time.Now()
		launch()
		took := time.Since(t0)
		lat = append(lat, took)
		if metrics.Read(gcs); gcs[0].Value.Uint64() == before {
			noGC = append(noGC, took)
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
	if len(noGC) > 0 {
		slices.Sort(noGC)
		b.ReportMetric(percentileMicros(noGC, 0.99), "p99-nogc-µs")
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(percentileMicros(lat, 0.50), "p50-µs")
	b.ReportMetric(percentileMicros(lat, 0.99), "p99-µs")
}

// percentileMicros is the p-th percentile of sorted, in microseconds.
func percentileMicros(sorted []time.Duration, p float64) float64 {
	return float64(sorted[int(p*float64(len(sorted)-1))].Nanoseconds()) / 1e3
}

// BenchmarkListThousandGuests lists 1,000 running guests through the
// client library: one op is a whole listing, by Client.Guests (pages of
// GuestSummary, what ps uses) and by Client.List (every GuestInfo in one
// message, what ps --json uses).
func BenchmarkListThousandGuests(b *testing.B) {
	d := startBenchDaemon(b, server.Limits{MaxGuests: 2000})
	c := d.dial(b)
	ctx := context.Background()
	req := client.LaunchRequest{Name: "idle.wat", Wasm: abitest.WAT(b, "daemon/testdata/guests/idle.wat"), Detach: true, MemoryLimit: 1 << 20}
	const n = 1000
	for i := 0; i < n; i++ {
		g, err := c.Launch(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		g.Release()
	}
	b.Run("Guests", func(b *testing.B) {
		for b.Loop() {
			got := 0
			if err := c.Guests(ctx, false, func(client.GuestSummary) error { got++; return nil }); err != nil {
				b.Fatal(err)
			}
			if got != n {
				b.Fatalf("listed %d guests, want %d", got, n)
			}
		}
	})
	b.Run("List", func(b *testing.B) {
		for b.Loop() {
			l, err := c.List(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if len(l) != n {
				b.Fatalf("listed %d guests, want %d", len(l), n)
			}
		}
	})
}

// BenchmarkLaunchTail launches a small guest that exits at once
// (hello.wat) from 4 connections with 8 launches in flight on each, each
// launch waited for: one op is one launch, and it reports launches per
// second of the whole run and the p99 of single launches. Guests that
// end hand their memory to the next (abi/linmem.go's pool), as a busy
// daemon's would; bench/density.sh measures launches of guests that stay.
func BenchmarkLaunchTail(b *testing.B) {
	const conns, inflight = 4, 8
	d := startBenchDaemon(b, server.Limits{})
	ctx := context.Background()
	req := client.LaunchRequest{Name: "hello.wat", Wasm: abitest.WAT(b, helloWAT)}
	clients := make([]*client.Client, conns)
	for i := range clients {
		clients[i] = d.dial(b)
	}
	launch := func(c *client.Client) {
		g, err := c.Launch(ctx, req)
		if err != nil {
			b.Error(err)
			return
		}
		if st, err := g.Wait(ctx); err != nil || st.Code != 7 {
			b.Errorf("status %+v, err %v", st, err)
		}
		g.Release()
	}
	for range 20 {
		launch(clients[0])
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	for _, c := range clients {
		for range inflight {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= int64(b.N) {
						return
					}
					t0 := time.Now()
					launch(c)
					lat[i] = time.Since(t0)
				}
			}()
		}
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "launches/s")
	// On a shared machine the CPU time compares from run to run where
	// the rate does not: the client's and the daemon's together.
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/launch")
	reportPercentiles(b, lat)
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
