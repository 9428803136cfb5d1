// Command httpload measures an HTTP server's requests per second and
// latency: -conns clients, each on a connection of its own, send
// -requests in all to GET /hello?n=… and check every answer.
//
// It starts the server itself, from the arguments after "--", and waits
// until it answers. With -activate it binds -addr first and hands the
// listener to the server as fd 3 with LISTEN_FDS=1 LISTEN_FDNAMES=web
// (systemd socket activation, for a native build of examples/httpd);
// without, the server binds -addr itself (sandboxd's listen: grant,
// wazero's -listen). With -cpu it also reports the server process's CPU
// time per measured request (Linux, from /proc): what a request costs the
// server, whatever else the machine is running.
//
//	httpload -addr 127.0.0.1:8080 -activate -- ./httpd
//	httpload -addr 127.0.0.1:8080 -- sandboxd run --grant listen:127.0.0.1:8080=web httpd.wasm
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "the server's `HOST:PORT`")
	activate := flag.Bool("activate", false, "bind -addr here and pass it to the server as fd 3 (socket activation)")
	conns := flag.Int("conns", 100, "concurrent connections")
	requests := flag.Int("requests", 10000, "requests in all")
	warm := flag.Int("warmup", 1000, "requests before measuring")
	limit := flag.Duration("timeout", 5*time.Minute, "give up (and stop the server) after `DURATION`")
	cpu := flag.Bool("cpu", false, "also report the server process's CPU time (user + system, all threads) per measured request")
	flag.Parse()
	srv, err := start(*addr, *activate, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpload:", err)
		os.Exit(1)
	}
	type result struct {
		took time.Duration
		lat  []time.Duration
		cpu  time.Duration // the server's CPU time over the measured requests
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		if r.err = ready(*addr); r.err == nil {
			if _, _, r.err = run(*addr, *conns, *warm); r.err == nil {
				var before time.Duration
				if *cpu {
					before, r.err = cpuTime(srv.Process.Pid)
				}
				if r.err == nil {
					r.took, r.lat, r.err = run(*addr, *conns, *requests)
				}
				if *cpu && r.err == nil {
					var after time.Duration
					after, r.err = cpuTime(srv.Process.Pid)
					r.cpu = after - before
				}
			}
		}
		done <- r
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(*limit):
		r.err = fmt.Errorf("no result within %v", *limit)
	}
	_ = srv.Process.Kill()
	_ = srv.Wait()
	if r.err != nil {
		fmt.Fprintln(os.Stderr, "httpload:", r.err)
		os.Exit(1)
	}
	took, lat := r.took, r.lat
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	fmt.Printf("%d requests, %d connections: %.0f req/s, p50 %v, p99 %v", len(lat), *conns,
		float64(len(lat))/took.Seconds(), pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond))
	if *cpu {
		fmt.Printf(", server CPU %.0f µs/request", float64(r.cpu.Microseconds())/float64(len(lat)))
	}
	fmt.Println()
}

// start runs the server command.
func start(addr string, activate bool, argv []string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, errors.New("no server command after --")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	if activate {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		f, err := l.(*net.TCPListener).File()
		if err != nil {
			return nil, err
		}
		l.Close()
		cmd.ExtraFiles = []*os.File{f}
		cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=web")
	}
	return cmd, cmd.Start()
}

// ready waits until the server answers, for at most a minute (a cold
// compile of the guest).
func ready(addr string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + addr + "/hello?n=ready")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server did not answer within a minute: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// run sends n requests over conns connections and returns the time they
// took and each one's latency.
func run(addr string, conns, n int) (time.Duration, []time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lat := make([][]time.Duration, conns)
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			for i := w; i < n; i += conns {
				t0 := time.Now()
				if err := get(ctx, c, addr, fmt.Sprintf("%d", i)); err != nil {
					errs <- err
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, nil, err
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return took, all, nil
}

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

// cpuTime is the CPU time process pid has used so far, user and system,
// all threads (/proc/PID/stat, in clock ticks of 10 ms: the -cpu figure
// wants a run of several seconds of server CPU).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the server's CPU time: %v", err)
	}
	// The command name (field 2) may hold spaces: count from its ")".
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("reading the server's CPU time: short /proc/%d/stat", pid)
	}
	var ticks int64
	for _, s := range f[11:13] { // utime, stime: fields 14 and 15
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading the server's CPU time: %v", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
