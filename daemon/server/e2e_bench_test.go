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
