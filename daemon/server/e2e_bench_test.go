package server_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/daemon/server"
)

// BenchmarkWarmLaunchThroughClient measures a warm launch of a small guest
// through the client library, from Launch to the exit status of Wait: the
// module is compiled once before the timer starts. It reports the p50 and
// p99 of single launches besides the mean.
func BenchmarkWarmLaunchThroughClient(b *testing.B) {
	d := startDaemonUnwatched(b, server.Limits{})
	c := d.dial(b)
	ctx := context.Background()
	req := client.LaunchRequest{Name: "hello.wat", Wasm: abitest.WAT(b, helloWAT)}
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
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		launch()
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkListThousandGuests lists 1,000 running guests through the
// client library: one op is a whole listing, by Client.Guests (pages of
// GuestSummary, what ps uses) and by Client.List (every GuestInfo in one
// message, what ps --json uses).
func BenchmarkListThousandGuests(b *testing.B) {
	d := startDaemonUnwatched(b, server.Limits{MaxGuests: 2000})
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
