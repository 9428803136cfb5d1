package server_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/daemon/server"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// Launch throughput: b.N launches of a small WASI guest (fd_write "hello\n",
// proc_exit 7), throughputConns client connections with throughputPerConn
// launches in flight on each, to every exit status. Beside it, the same
// module instantiated and run to its exit by wazero in this process with as
// many goroutines, the module compiled once: what the launches cost without
// the daemon, its protocol and its capability tables. Both report
// launches/s. The test daemon logs at debug level into memory, as the other
// benchmarks of this package do. bench/harness runs the command below
// several times, so that the two sides alternate:
//
//	go test -run '^$' -bench LaunchThroughput -benchtime 2000x ./daemon/server/
const (
	throughputConns   = 4
	throughputPerConn = 4
	throughputWAT     = "daemon/testdata/server/hello_wasi.wat"
)

func BenchmarkLaunchThroughput(b *testing.B) {
	wasm := abitest.WAT(b, throughputWAT)
	b.Run("sandboxd", func(b *testing.B) {
		d := startBenchDaemon(b, server.Limits{})
		ctx := context.Background()
		req := client.LaunchRequest{Name: "hello_wasi.wasm", Wasm: wasm}
		clients := make([]*client.Client, throughputConns)
		for i := range clients {
			clients[i] = d.dial(b)
		}
		launch := func(c *client.Client) error {
			g, err := c.Launch(ctx, req)
			if err != nil {
				return err
			}
			defer g.Release()
			st, err := g.Wait(ctx)
			if err != nil {
				return err
			}
			if st.Code != 7 {
				return errors.New("exit status is not 7")
			}
			return nil
		}
		// The module compiled and every connection used once.
		for _, c := range clients {
			if err := launch(c); err != nil {
				b.Fatal(err)
			}
		}
		runConcurrently(b, throughputConns*throughputPerConn, func(worker int) error {
			return launch(clients[worker%throughputConns])
		})
	})
	b.Run("wazero", func(b *testing.B) {
		ctx := context.Background()
		r := wazero.NewRuntime(ctx)
		defer r.Close(ctx)
		wasi_snapshot_preview1.MustInstantiate(ctx, r)
		m, err := r.CompileModule(ctx, wasm)
		if err != nil {
			b.Fatal(err)
		}
		cfg := wazero.NewModuleConfig().WithName("").WithStdout(io.Discard)
		launch := func() error {
			mod, err := r.InstantiateModule(ctx, m, cfg)
			if mod != nil {
				mod.Close(ctx)
			}
			var exit *sys.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 7 {
				return errors.New("wazero: the guest did not exit with 7: " + errString(err))
			}
			return nil
		}
		if err := launch(); err != nil {
			b.Fatal(err)
		}
		runConcurrently(b, throughputConns*throughputPerConn, func(int) error { return launch() })
	})
}

// runConcurrently makes b.N calls of launch from workers goroutines and
// reports launches/s; the first error fails the benchmark.
func runConcurrently(b *testing.B, workers int, launch func(worker int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	b.ResetTimer()
	t0 := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := launch(w); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(t0)
	b.StopTimer()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/took.Seconds(), "launches/s")
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
