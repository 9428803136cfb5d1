package guestrpc

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	capnp "capnproto.org/go/capnp/v3"
	"capnproto.org/go/capnp/v3/rpc"
	"capnproto.org/go/capnp/v3/rpc/transport"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/examples/pipeline/pipelineapi"
)

// serveEnv makes the test binary a native Store server on the unix socket
// it names, for BenchmarkNativeProcessesUnixSocketCall's other process.
const serveEnv = "GUESTRPC_BENCH_SERVE"

func TestMain(m *testing.M) {
	if path := os.Getenv(serveEnv); path != "" {
		serveNative(path)
		return
	}
	os.Exit(m.Run())
}

type nopStore struct{}

func (nopStore) Put(context.Context, pipelineapi.Store_put) error { return nil }

// serveNative serves a Store on each connection to path until killed.
func serveNative(path string) {
	l, err := net.Listen("unix", path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening")
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(1)
		}
		boot := capnp.Client(pipelineapi.Store_ServerToClient(nopStore{}))
		rpc.NewConn(transport.NewStream(c), &rpc.Options{BootstrapClient: boot})
	}
}

// BenchmarkNativeProcessesUnixSocketCall is the physical limit: the same
// call as BenchmarkGuestToGuestCallThroughTheDaemon, between two native Go
// processes over a unix socket, with no daemon in the middle.
func BenchmarkNativeProcessesUnixSocketCall(b *testing.B) {
	path := filepath.Join(b.TempDir(), "s")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serveEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "listening\n" {
		b.Fatalf("server said %q", line)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	conn := rpc.NewConn(transport.NewStream(c), nil)
	defer conn.Close()
	ctx := context.Background()
	st := pipelineapi.Store(conn.Bootstrap(ctx))
	d := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := range d {
		start := time.Now()
		if err := put(ctx, st, "k", ""); err != nil {
			b.Fatal(err)
		}
		d[i] = time.Since(start)
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[b.N/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[b.N*99/100].Microseconds()), "p99-µs")
}

// BenchmarkGuestToGuestCallThroughTheDaemon times, inside a Go guest, b.N
// calls to a Store another Go guest serves (put), and b.N calls carrying
// a directory handle (open, each mediated: a copy derived for the
// receiver), through the daemon's forwarders.
func BenchmarkGuestToGuestCallThroughTheDaemon(b *testing.B) {
	h := newHarness(b, Limits{MaxExports: 1 << 30})
	wasm := abitest.Go(b, "daemon/guestrpc/testdata/peerbench")
	serverOut, clientOut := newLines(), newLines()
	dir := b.TempDir()
	launchBench(b, h, wasm, serverOut, []string{"serve"}, "chan:bench")
	serverOut.waitFor(b, "serving")
	b.ResetTimer()
	client := launchBench(b, h, wasm, clientOut, []string{"call", strconv.Itoa(b.N)}, "chan:bench", "dir:"+dir+"=docs")
	<-client.Done()
	b.StopTimer()
	if _, st := client.Status(); st.Code != 0 {
		b.Fatalf("client exited %d:\n%s", st.Code, clientOut)
	}
	for _, line := range strings.Split(strings.TrimSpace(clientOut.String()), "\n") {
		var name string
		var n, p50, p99 int64
		if _, err := fmt.Sscanf(line, "%s %d %d %d", &name, &n, &p50, &p99); err != nil {
			b.Fatalf("client line %q: %v", line, err)
		}
		b.ReportMetric(float64(p50)/1e3, name+"-p50-µs")
		b.ReportMetric(float64(p99)/1e3, name+"-p99-µs")
	}
}

func launchBench(b *testing.B, h *harness, wasm []byte, out *lines, args []string, grants ...string) *daemon.Guest {
	b.Helper()
	ctx := context.Background()
	m, err := h.sup.Compile(ctx, "peerbench.wasm", wasm)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Release()
	spec := daemon.LaunchSpec{Principal: daemon.Principal{UID: uint32(os.Getuid())}, Module: m, SupervisorChannel: true, Args: args, Stdout: out, Stderr: out}
	for _, text := range grants {
		gr, err := daemon.ParseGrant(text)
		if err != nil {
			b.Fatal(err)
		}
		spec.Grants = append(spec.Grants, gr)
	}
	g, err := h.sup.Launch(ctx, spec)
	if err != nil {
		b.Fatal(err)
	}
	out.exited = g.Done()
	b.Cleanup(func() { g.Kill("benchmark over"); <-g.Done() })
	return g
}
