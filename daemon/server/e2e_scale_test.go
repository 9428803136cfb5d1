package server_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/daemon/server"
)

const exitStdinC = "daemon/testdata/server/exit_stdin.c"

// runAlone runs the calling test in a child process of its own, without
// the client-leak hook (see clientLeaks) and without other tests'
// goroutines, and reports whether the caller is that child.
func runAlone(t *testing.T) (child bool) {
	if os.Getenv(scaleChildEnv) != "" {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), scaleChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("child process:\n%s", out)
	if err != nil {
		t.Fatalf("%s in its own process: %v", t.Name(), err)
	}
	return false
}

func TestThousandConcurrentLaunchesAllExitWithTheirOwnCodeAndGoroutinesReturnToIdle(t *testing.T) {
	if !runAlone(t) {
		return
	}
	d := startDaemonUnwatched(t, server.Limits{})
	ctx := context.Background()
	wasm := abitest.C(t, exitStdinC)

	// Warm up: compile the module and start the runtime's own goroutines,
	// so that the idle level includes them.
	warm := d.dial(t)
	g, err := warm.Launch(ctx, client.LaunchRequest{Name: "exit_stdin.c", Wasm: wasm, Stdin: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := g.Wait(ctx); err != nil || st.Code != 1 {
		t.Fatalf("warm-up: %+v, %v", st, err)
	}
	g.Release()
	warm.Close()
	eventually(t, server.HangGuard, "the warm-up connection has ended", func() bool { return server.OpenConnections(d.srv) == 0 })
	runtime.GC()
	idle := runtime.NumGoroutine()

	const guests, conns = 1000, 8
	clients := make([]*client.Client, conns)
	for i := range clients {
		clients[i] = d.dial(t)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, guests)
	for i := 0; i < guests; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			want := uint32(i%200 + 1)
			var out bytes.Buffer
			g, err := clients[i%conns].Launch(ctx, client.LaunchRequest{
				Name: "exit_stdin.c", Wasm: wasm, Stdin: bytes.Repeat([]byte{'.'}, int(want)), Stdout: &out,
			})
			if err != nil {
				errs <- fmt.Errorf("guest %d: launch: %v", i, err)
				return
			}
			defer g.Release()
			st, err := g.Wait(ctx)
			switch {
			case err != nil:
				errs <- fmt.Errorf("guest %d: wait: %v", i, err)
			case st.Code != want || st.Err() != nil:
				errs <- fmt.Errorf("guest %d: status %+v, want exit %d", i, st, want)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d guests over %d connections in %v", guests, conns, time.Since(start))
	for _, c := range clients {
		c.Close()
	}
	eventually(t, server.HangGuard, fmt.Sprintf("goroutines return to the idle level of %d", idle), func() bool {
		runtime.GC()
		return runtime.NumGoroutine() <= idle
	})
	if n := len(d.liveCaps("")); n != 0 {
		t.Fatalf("%d capabilities still open after every guest exited", n)
	}
}
