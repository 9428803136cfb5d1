//go:build !race

package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// Load of the HTTP test: 10,000 requests over 100 connections held open
// at once, each connection a client of its own.
const httpConns, httpPerConn = 100, 100

// settled waits until the daemon's goroutines are back to at most want
// and returns the count. Goroutines end without an event to wait on, so
// it looks again after each runtime.Gosched; hangGuard only bounds it.
func settled(t *testing.T, want int) int {
	t.Helper()
	deadline := time.Now().Add(HangGuard)
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return n
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after %v, want at most %d:\n%s", n, HangGuard, want, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// heapInUse is the Go heap in use after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// load sends httpPerConn requests on each of httpConns connections at
// once and checks every response; it closes the connections when done.
func load(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), HangGuard)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, httpConns)
	for w := range httpConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			for i := range httpPerConn {
				if err := get(ctx, c, addr, fmt.Sprintf("%d-%d", w, i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// get asks for /hello?n=id and checks the answer names id.
func get(ctx context.Context, c *http.Client, addr, id string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/hello?n="+id, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "hello "+id+" (") {
		return fmt.Errorf("request %s: status %d, body %q", id, resp.StatusCode, body)
	}
	return nil
}

// An ordinary Go net/http server (examples/httpd) serves 10,000 requests
// over 100 concurrent connections on its granted listener; every answer
// is right, and once the clients have gone and the guest has been
// stopped the daemon's goroutines and heap are back to where they were.
func TestHTTPGuestServesConcurrentLoadAndTheDaemonReturnsToIdle(t *testing.T) {
	s := newSupervisor(t)
	m, err := s.Compile(context.Background(), "httpd.wasm", abitest.Go(t, "examples/httpd"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	idleG, idleHeap := settled(t, runtime.NumGoroutine()), heapInUse()
	out := &output{wrote: make(chan struct{}, 1)}
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Grants: []Grant{mustGrant(t, "listen:127.0.0.1:0=web")}, Stderr: out})
	if err != nil {
		t.Fatal(err)
	}
	out.await(t, "httpd: serving")
	addr := listenAddr(t, g, "web")
	web := handle(t, g, "web")

	start := time.Now()
	load(t, addr)
	took := time.Since(start)
	t.Logf("%d requests over %d connections in %v (%.0f/s)", httpConns*httpPerConn, httpConns, took, float64(httpConns*httpPerConn)/took.Seconds())
	// The clients have closed their connections: the guest closes its
	// ends, and their capabilities go.
	for deadline := time.Now().Add(HangGuard); len(accepted(s, web)) > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open %v after the clients closed theirs", len(accepted(s, web)), HangGuard)
		}
	}

	g.Kill("test over")
	waitExit(t, g, HangGuard)
	if n := settled(t, idleG); n > idleG {
		t.Errorf("%d goroutines after the guest ended, %d before it started", n, idleG)
	}
	// The heap may hold caches the first launch filled (the compiled
	// module's instance pools, the kernel's maps); what 10,000 requests
	// would leak is far more than this bound.
	const slack = 8 << 20
	if h := heapInUse(); h > idleHeap+slack {
		t.Errorf("heap %d MiB after the guest ended, %d MiB before it started", h>>20, idleHeap>>20)
	}
	if snap := s.Kernel().Snapshot(); len(snap) != 0 {
		t.Errorf("%d capabilities left after the guest ended", len(snap))
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after the guest ended", addr)
	}
}
