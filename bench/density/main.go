// Command density measures how many idle guests one daemon holds and how
// fast it handles them: it starts `sandboxd serve` on a socket of its own,
// launches -n detached guests of -wasm (bench/idle.c: blocked in
// sleep) from -conns client connections at once, and prints, one
// key=value per line:
//
//	guests=N                  guests launched and running
//	stopped=…, asked=N        only when the machine's available memory fell below -min-available-mb
//	                          before -n guests ran: the rest is measured on the guests launched
//	launches_per_s=F          launches per second of the whole run, all connections together
//	launch_cpu_us=F           the daemon's CPU time per launch (user and system): on a shared
//	                          machine, what compares from run to run
//	launch_p50_ms, launch_p99_ms  one launch's round trip, as the clients saw it
//	rss_idle_mb=F             the daemon's RSS after one warm-up guest, before the run
//	rss_mb=F                  its RSS once the N guests have settled
//	density_kb_per_guest=F    (rss_mb - rss_idle_mb) / N, in KiB
//	threads=N                 the daemon's OS threads with N guests
//	ps_<tag>_s=F              `sandboxd ps` of the N guests, wall time, median of 3 (<tag>: 1k, 10k, 100k, …)
//	ps_<tag>_cpu_s=F          the CPU time of the ps process and of the daemon meanwhile, median of 3
//	sigterm_<tag>_s=F         from SIGTERM to the daemon's exit with the N guests running
//	sigterm_<tag>_cpu_s=F     the CPU time (user and system) the daemon spent in that time: on a
//	                          shared machine, what compares from run to run
//
// bench/density.sh builds sandboxd and the guest and calls it.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/client"
)

func main() {
	bin := flag.String("sandboxd", "sandboxd", "the sandboxd `binary` to serve and list with")
	wasmPath := flag.String("wasm", "", "the idle guest `module` (bench/idle.c built for wasm32-wasi)")
	n := flag.Int("n", 10000, "guests to launch")
	conns := flag.Int("conns", 4, "client connections launching at once")
	perConn := flag.Int("inflight", 8, "launches in flight on each connection")
	mem := flag.Uint64("mem", 1<<20, "each guest's memory limit in bytes")
	work := flag.String("work", "", "`directory` for the socket and the state (default: a new temporary one)")
	keep := flag.Bool("keep-log", false, "keep the daemon's log (work/serve.log) rather than removing the work directory")
	floor := flag.Uint64("min-available-mb", 2048, "stop launching once the machine's MemAvailable is below `MB`, and measure the guests launched so far")
	flag.Parse()
	minAvailable = *floor << 20
	if err := run(*bin, *wasmPath, *n, *conns, *perConn, *mem, *work, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "density:", err)
		os.Exit(1)
	}
}

func run(bin, wasmPath string, n, conns, perConn int, mem uint64, work string, keep bool) error {
	if wasmPath == "" {
		return errors.New("-wasm is required: build bench/idle.c for wasm32-wasi (bench/density.sh does)")
	}
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		return err
	}
	if work == "" {
		if work, err = os.MkdirTemp("", "sandboxd-density-"); err != nil {
			return err
		}
		if !keep {
			defer os.RemoveAll(work)
		}
	} else if err := os.MkdirAll(work, 0o700); err != nil {
		return err
	}
	socket := filepath.Join(work, "sandboxd.sock")
	logf, err := os.Create(filepath.Join(work, "serve.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--socket", socket, "--state", filepath.Join(work, "state"),
		"--log-level", "warn", "--max-guests", strconv.Itoa(n+16), "--max-conns", strconv.Itoa(max(64, 2*conns)))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	pid := cmd.Process.Pid
	ctx := context.Background()

	clients, err := dialAll(ctx, socket, conns, exited)
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	req := client.LaunchRequest{Name: "idle.wasm", Wasm: wasm, Detach: true, MemoryLimit: mem}
	// Warm up: compile the module and start one guest, so that the idle
	// level includes the compiled code and the runtime's own goroutines.
	if err := launchOne(ctx, clients[0], req); err != nil {
		return fmt.Errorf("warm-up launch: %w", err)
	}
	rssIdle := settledRSS(pid)

	cpuBefore := procCPU(pid)
	lat := make([]time.Duration, n)
	var next, launched atomic.Int64
	var short atomic.Bool // the machine ran short of memory
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	start := time.Now()
	for _, c := range clients {
		for range perConn {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= int64(n) || firstErr.Load() != nil || short.Load() {
						return
					}
					if i%1024 == 0 && memAvailable() < minAvailable {
						short.Store(true)
						return
					}
					t0 := time.Now()
					if err := launchOne(ctx, c, req); err != nil {
						err = fmt.Errorf("launch %d: %w", i, err)
						firstErr.CompareAndSwap(nil, &err)
						return
					}
					lat[i] = time.Since(t0)
					launched.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	took := time.Since(start)
	launchCPU := procCPU(pid) - cpuBefore
	if p := firstErr.Load(); p != nil {
		return *p
	}
	rss := settledRSS(pid)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	if short.Load() {
		// Launches in flight when the flag was set have finished:
		// launched counts them all, and lat has a 0 for each not made.
		fmt.Fprintf(out, "stopped=memory_available_below_%dMB\n", minAvailable>>20)
		fmt.Fprintf(out, "asked=%d\n", n)
		n = int(launched.Load())
		lat = slices.DeleteFunc(lat, func(d time.Duration) bool { return d == 0 })
		if n == 0 {
			return fmt.Errorf("the machine has less than %d MB available: no guest was launched (lower -min-available-mb, or free memory)", minAvailable>>20)
		}
	}
	slices.Sort(lat)
	tag := sizeTag(n)
	fmt.Fprintf(out, "guests=%d\n", n)
	fmt.Fprintf(out, "conns=%d\n", conns)
	fmt.Fprintf(out, "launches_per_s=%.0f\n", float64(n)/took.Seconds())
	fmt.Fprintf(out, "launch_cpu_us=%.0f\n", float64(launchCPU.Microseconds())/float64(n))
	fmt.Fprintf(out, "launch_p50_ms=%.2f\n", ms(lat[n/2]))
	fmt.Fprintf(out, "launch_p99_ms=%.2f\n", ms(lat[n*99/100]))
	fmt.Fprintf(out, "rss_idle_mb=%.1f\n", float64(rssIdle)/(1<<20))
	fmt.Fprintf(out, "rss_mb=%.1f\n", float64(rss)/(1<<20))
	fmt.Fprintf(out, "density_kb_per_guest=%.1f\n", float64(rss-rssIdle)/1024/float64(n))
	fmt.Fprintf(out, "threads=%d\n", procStatus(pid, "Threads"))
	out.Flush()

	var ps, psCPU []time.Duration
	for range 3 {
		daemonCPU := procCPU(pid)
		d, cpu, err := timePS(bin, socket, n+2) // a header, the warm-up guest and the n
		if err != nil {
			return err
		}
		ps, psCPU = append(ps, d), append(psCPU, cpu+procCPU(pid)-daemonCPU)
	}
	slices.Sort(ps)
	slices.Sort(psCPU)
	fmt.Fprintf(out, "ps_%s_s=%.3f\n", tag, ps[1].Seconds())
	fmt.Fprintf(out, "ps_%s_cpu_s=%.3f\n", tag, psCPU[1].Seconds())
	out.Flush()

	for _, c := range clients {
		c.Close()
	}
	clients = nil
	cpu0 := procCPU(pid)
	t0 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	err = <-exited
	stopped = true
	fmt.Fprintf(out, "sigterm_%s_s=%.3f\n", tag, time.Since(t0).Seconds())
	fmt.Fprintf(out, "sigterm_%s_cpu_s=%.3f\n", tag, (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime() - cpu0).Seconds())
	if err != nil {
		return fmt.Errorf("sandboxd serve after SIGTERM: %v (its log: %s)", err, logf.Name())
	}
	return nil
}

// dialAll connects conns clients once the daemon answers on socket.
func dialAll(ctx context.Context, socket string, conns int, exited <-chan error) ([]*client.Client, error) {
	deadline := time.Now().Add(30 * time.Second)
	var out []*client.Client
	for len(out) < conns {
		c, err := client.Dial(ctx, socket)
		if err == nil {
			out = append(out, c)
			continue
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("sandboxd serve exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the daemon does not answer on %s: %w", socket, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out, nil
}

func launchOne(ctx context.Context, c *client.Client, req client.LaunchRequest) error {
	g, err := c.Launch(ctx, req)
	if err != nil {
		return err
	}
	g.Release()
	return nil
}

// timePS runs `sandboxd ps` and checks it printed want lines. It returns
// the wall time and the CPU time of the ps process.
func timePS(bin, socket string, want int) (time.Duration, time.Duration, error) {
	var out bytes.Buffer
	cmd := exec.Command(bin, "ps", "--socket", socket)
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return 0, 0, fmt.Errorf("sandboxd ps: %w", err)
	}
	if got := bytes.Count(out.Bytes(), []byte{'\n'}); got != want {
		return 0, 0, fmt.Errorf("sandboxd ps printed %d lines, want %d (a header and one per guest)", got, want)
	}
	return d, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// settledRSS waits until the process's RSS stops growing (every guest has
// run into its sleep) and returns it in bytes.
func settledRSS(pid int) uint64 {
	prev := procStatus(pid, "VmRSS") * 1024
	for range 60 {
		time.Sleep(500 * time.Millisecond)
		cur := procStatus(pid, "VmRSS") * 1024
		if cur <= prev+prev/1000 {
			return cur
		}
		prev = cur
	}
	return prev
}

// procStatus reads a number field of /proc/PID/status (VmRSS in KiB).
func procStatus(pid int, field string) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// minAvailable is -min-available-mb in bytes.
var minAvailable uint64

// memAvailable is the machine's MemAvailable in bytes.
func memAvailable() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 1 << 62
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 1 << 62
}

// procCPU is the CPU time the process has used so far, user and system.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which ends at the last ')':
	// utime and stime are the 12th and 13th of them, in clock ticks.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// sizeTag names a guest count in keys: 1000 is 1k, 100000 is 100k.
func sizeTag(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
