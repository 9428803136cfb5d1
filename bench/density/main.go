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
	var cfg config
	flag.StringVar(&cfg.bin, "sandboxd", "sandboxd", "the sandboxd `binary` to serve and list with")
	flag.StringVar(&cfg.wasmPath, "wasm", "", "the idle guest `module` (bench/idle.c built for wasm32-wasi)")
	flag.IntVar(&cfg.n, "n", 10000, "guests to launch")
	flag.IntVar(&cfg.conns, "conns", 4, "client connections launching at once")
	flag.IntVar(&cfg.perConn, "inflight", 8, "launches in flight on each connection")
	flag.Uint64Var(&cfg.mem, "mem", 1<<20, "each guest's memory limit in bytes")
	flag.StringVar(&cfg.work, "work", "", "`directory` for the socket and the state (default: a new temporary one)")
	flag.BoolVar(&cfg.keep, "keep-log", false, "keep the daemon's log (work/serve.log) rather than removing the work directory")
	floor := flag.Uint64("min-available-mb", 2048, "stop launching once the machine's MemAvailable is below `MB`, and measure the guests launched so far")
	flag.Parse()
	minAvailable = *floor << 20
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "density:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	bin, wasmPath, work string
	n, conns, perConn   int
	mem                 uint64
	keep                bool
}

// daemon is the `sandboxd serve` under measure.
type daemon struct {
	cmd     *exec.Cmd
	pid     int
	socket  string
	log     *os.File
	exited  chan error
	stopped bool
}

func run(cfg config) error {
	if cfg.wasmPath == "" {
		return errors.New("-wasm is required: build bench/idle.c for wasm32-wasi (bench/density.sh does)")
	}
	wasm, err := os.ReadFile(cfg.wasmPath)
	if err != nil {
		return err
	}
	work, cleanup, err := workDir(cfg.work, cfg.keep)
	if err != nil {
		return err
	}
	defer cleanup()
	d, err := startDaemon(cfg, work)
	if err != nil {
		return err
	}
	defer d.kill()
	ctx := context.Background()
	clients, err := dialAll(ctx, d.socket, cfg.conns, d.exited)
	if err != nil {
		return err
	}
	defer func() { closeAll(clients) }()
	req := client.LaunchRequest{Name: "idle.wasm", Wasm: wasm, Detach: true, MemoryLimit: cfg.mem}
	// Warm up: compile the module and start one guest, so that the idle
	// level includes the compiled code and the runtime's own goroutines.
	if err := launchOne(ctx, clients[0], req); err != nil {
		return fmt.Errorf("warm-up launch: %w", err)
	}
	rssIdle := settledRSS(d.pid)
	res, err := launchAll(ctx, clients, cfg.perConn, cfg.n, req, d.pid)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	n, err := res.report(out, cfg, rssIdle, settledRSS(d.pid), d.pid)
	if err != nil {
		return err
	}
	tag := sizeTag(n)
	if err := measurePS(out, cfg.bin, d, n, tag); err != nil {
		return err
	}
	closeAll(clients)
	clients = nil
	return d.measureSIGTERM(out, tag)
}

// workDir returns the directory for the socket, the state and the log,
// and what removes it when it is a temporary one.
func workDir(work string, keep bool) (string, func(), error) {
	if work != "" {
		return work, func() {}, os.MkdirAll(work, 0o700)
	}
	work, err := os.MkdirTemp("", "sandboxd-density-")
	if err != nil || keep {
		return work, func() {}, err
	}
	return work, func() { os.RemoveAll(work) }, nil
}

// startDaemon starts `sandboxd serve` in work, its log in work/serve.log.
func startDaemon(cfg config, work string) (*daemon, error) {
	logf, err := os.Create(filepath.Join(work, "serve.log"))
	if err != nil {
		return nil, err
	}
	d := &daemon{socket: filepath.Join(work, "sandboxd.sock"), log: logf, exited: make(chan error, 1)}
	d.cmd = exec.Command(cfg.bin, "serve", "--socket", d.socket, "--state", filepath.Join(work, "state"),
		"--log-level", "warn", "--max-guests", strconv.Itoa(cfg.n+16), "--max-conns", strconv.Itoa(max(64, 2*cfg.conns)))
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	d.pid = d.cmd.Process.Pid
	go func() { d.exited <- d.cmd.Wait() }()
	return d, nil
}

// kill ends the daemon unless SIGTERM already has, and closes its log.
func (d *daemon) kill() {
	if !d.stopped {
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	d.log.Close()
}

func closeAll(clients []*client.Client) {
	for _, c := range clients {
		c.Close()
	}
}

// launches is what launchAll measured.
type launches struct {
	n, launched int             // asked, made
	lat         []time.Duration // each launch's round trip; 0 for one not made
	took, cpu   time.Duration   // wall time, and the daemon's CPU time
	short       bool            // the machine ran short of memory
}

// launchAll launches n guests from perConn goroutines on each client.
func launchAll(ctx context.Context, clients []*client.Client, perConn, n int, req client.LaunchRequest, pid int) (launches, error) {
	cpuBefore := procCPU(pid)
	res := launches{n: n, lat: make([]time.Duration, n)}
	var next, launched atomic.Int64
	var short atomic.Bool
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	start := time.Now()
	worker := func(c *client.Client) {
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
			res.lat[i] = time.Since(t0)
			launched.Add(1)
		}
	}
	for _, c := range clients {
		for range perConn {
			wg.Add(1)
			go worker(c)
		}
	}
	wg.Wait()
	res.took, res.cpu = time.Since(start), procCPU(pid)-cpuBefore
	res.launched, res.short = int(launched.Load()), short.Load()
	if p := firstErr.Load(); p != nil {
		return res, *p
	}
	return res, nil
}

// report prints the launch and memory keys and returns the number of
// guests launched.
func (r launches) report(out *bufio.Writer, cfg config, rssIdle, rss uint64, pid int) (int, error) {
	defer out.Flush()
	n, lat := r.n, r.lat
	if r.short {
		// Launches in flight when the flag was set have finished:
		// launched counts them all, and lat has a 0 for each not made.
		fmt.Fprintf(out, "stopped=memory_available_below_%dMB\n", minAvailable>>20)
		fmt.Fprintf(out, "asked=%d\n", n)
		n = r.launched
		lat = slices.DeleteFunc(lat, func(d time.Duration) bool { return d == 0 })
		if n == 0 {
			return 0, fmt.Errorf("the machine has less than %d MB available: no guest was launched (lower -min-available-mb, or free memory)", minAvailable>>20)
		}
	}
	slices.Sort(lat)
	fmt.Fprintf(out, "guests=%d\n", n)
	fmt.Fprintf(out, "conns=%d\n", cfg.conns)
	fmt.Fprintf(out, "launches_per_s=%.0f\n", float64(n)/r.took.Seconds())
	fmt.Fprintf(out, "launch_cpu_us=%.0f\n", float64(r.cpu.Microseconds())/float64(n))
	fmt.Fprintf(out, "launch_p50_ms=%.2f\n", ms(lat[n/2]))
	fmt.Fprintf(out, "launch_p99_ms=%.2f\n", ms(lat[n*99/100]))
	fmt.Fprintf(out, "rss_idle_mb=%.1f\n", float64(rssIdle)/(1<<20))
	fmt.Fprintf(out, "rss_mb=%.1f\n", float64(rss)/(1<<20))
	fmt.Fprintf(out, "density_kb_per_guest=%.1f\n", float64(rss-rssIdle)/1024/float64(n))
	fmt.Fprintf(out, "threads=%d\n", procStatus(pid, "Threads"))
	return n, nil
}

// measurePS times `sandboxd ps` of the n guests three times and prints
// the medians.
func measurePS(out *bufio.Writer, bin string, d *daemon, n int, tag string) error {
	defer out.Flush()
	var ps, psCPU []time.Duration
	for range 3 {
		daemonCPU := procCPU(d.pid)
		wall, cpu, err := timePS(bin, d.socket, n+2) // a header, the warm-up guest and the n
		if err != nil {
			return err
		}
		ps, psCPU = append(ps, wall), append(psCPU, cpu+procCPU(d.pid)-daemonCPU)
	}
	slices.Sort(ps)
	slices.Sort(psCPU)
	fmt.Fprintf(out, "ps_%s_s=%.3f\n", tag, ps[1].Seconds())
	fmt.Fprintf(out, "ps_%s_cpu_s=%.3f\n", tag, psCPU[1].Seconds())
	return nil
}

// measureSIGTERM signals the daemon and prints how long it took to exit.
func (d *daemon) measureSIGTERM(out *bufio.Writer, tag string) error {
	defer out.Flush()
	cpu0 := procCPU(d.pid)
	t0 := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	err := <-d.exited
	d.stopped = true
	fmt.Fprintf(out, "sigterm_%s_s=%.3f\n", tag, time.Since(t0).Seconds())
	st := d.cmd.ProcessState
	fmt.Fprintf(out, "sigterm_%s_cpu_s=%.3f\n", tag, (st.UserTime() + st.SystemTime() - cpu0).Seconds())
	if err != nil {
		return fmt.Errorf("sandboxd serve after SIGTERM: %v (its log: %s)", err, d.log.Name())
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
