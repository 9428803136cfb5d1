package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// goBench runs `go test -bench` of one package and parses its results.
func (h *harness) goBench(pkg, bench, benchtime string, count int) (benchResults, error) {
	args := []string{"test", "-run", "^$", "-bench", bench, "-benchtime", benchtime, "-count", strconv.Itoa(count), "-timeout", "30m", pkg}
	h.logf("go %s", strings.Join(args, " "))
	out, _, err := h.run(40*time.Minute, nil, "go", args...)
	if err != nil {
		return nil, err
	}
	res, err := parseBench(strings.NewReader(out))
	if err == nil && len(res) == 0 {
		err = fmt.Errorf("go %s printed no benchmark results:\n%s", strings.Join(args, " "), tail(out, 20))
	}
	return res, err
}

// ratioRow is the row of num/den, or n/a when either is missing.
func ratioRow(key, what, is string, num, den float64, from string) row {
	if den == 0 || math.IsNaN(num) || math.IsNaN(den) {
		return naRow(key, what, "not measured")
	}
	return row{key: key, what: what, ratio: num / den, is: is, from: from}
}

// errRows turns a failed step into n/a rows for each of its keys.
func errRows(err error, keys ...[2]string) []row {
	reason := firstLine(err.Error())
	if len(reason) > 160 {
		reason = reason[:160] + "…"
	}
	rows := make([]row, len(keys))
	for i, k := range keys {
		rows[i] = naRow(k[0], k[1], reason)
	}
	return rows
}

// medians returns the medians of every named benchmark's unit, or an
// error naming the first that is missing.
func (r benchResults) medians(unit string, names ...string) ([]float64, error) {
	out := make([]float64, len(names))
	for i, n := range names {
		v, err := r.median(n, unit)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// ---- host calls ----

var hostCalls = []string{"fd_write", "clock_time_get"}

// hostCallLibrary is abi's BenchmarkHostCallRatio: the same WAT loop
// against sandboxd's native ABI, its WASI adapter and wazero's WASI in one
// process, rounds interleaved, timed by the thread's CPU time.
func (h *harness) hostCallLibrary() []row {
	var keys [][2]string
	for _, c := range hostCalls {
		keys = append(keys, [2]string{"hostcall." + c + ".native_abi/wazero", c + " in-process, native ABI vs wazero's WASI"},
			[2]string{"hostcall." + c + ".wasi/wazero", c + " in-process, sandboxd's WASI vs wazero's WASI"})
	}
	res, err := h.goBench("./abi/", "HostCallRatio", pick(h, "1000000x", "4000000x"), pick(h, 3, 8))
	if err != nil {
		return errRows(err, keys...)
	}
	var rows []row
	for i, c := range hostCalls {
		name := "BenchmarkHostCallRatio/" + c
		for j, side := range []string{"sandboxd", "sandboxd-wasi"} {
			k := keys[2*i+j]
			vs := res[name][side+"/wazero"]
			if len(vs) == 0 {
				rows = append(rows, naRow(k[0], k[1], "no "+side+"/wazero result"))
				continue
			}
			lo, hi := spread(vs)
			own, _ := res.median(name, side+"-ns/call")
			wz, _ := res.median(name, "wazero-ns/call")
			rows = append(rows, row{key: k[0], what: k[1], ratio: median(vs),
				is:   "thread CPU time per call, sandboxd / wazero (≤ 1.1 is the target)",
				from: fmt.Sprintf("%.1f vs %.1f ns; %d runs [%s–%s]", own, wz, len(vs), formatRatio(lo), formatRatio(hi))})
		}
	}
	return rows
}

// A side is one runtime's command line in a comparison of processes.
type side struct {
	name string
	argv []string
	env  []string
}

// interleave runs each side once a round, rounds times, the order rotating
// every round, after one untimed warm-up run of each (compilation caches),
// and returns what measure made of each run by side.
func interleave(rounds int, sides []side, measure func(s side, warm bool) (float64, error)) (map[string][]float64, error) {
	out := map[string][]float64{}
	for round := -1; round < rounds; round++ {
		for k := range sides {
			s := sides[(max(round, 0)+k)%len(sides)]
			v, err := measure(s, round < 0)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			if round >= 0 {
				out[s.name] = append(out[s.name], v)
			}
		}
	}
	return out, nil
}

// execResult is one process run.
type execResult struct {
	wall, cpu      time.Duration // cpu: user + system time of the process
	stdout, stderr string
	maxRSSKiB      int64
}

// execTimed runs argv to its exit and times it from start to exit status;
// a non-zero exit is an error.
func execTimed(s side, dir string) (execResult, error) {
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Dir = dir
	if s.env != nil {
		cmd.Env = append(os.Environ(), s.env...)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	t0 := time.Now()
	err := cmd.Run()
	r := execResult{wall: time.Since(t0), stdout: o.String(), stderr: e.String()}
	if cmd.ProcessState != nil {
		r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.maxRSSKiB = ru.Maxrss
		}
	}
	if err != nil {
		return r, fmt.Errorf("%s: %v\n%s", strings.Join(s.argv, " "), err, tail(e.String(), 10))
	}
	return r, nil
}

// wasiSides are the command lines that run a wasm32-wasi module with args
// under sandboxd's run, wazero's CLI and Node, and its native build.
// dirs maps a guest path to a host directory (read-only when it is "in").
func (h *harness) wasiSides(prog string, dirs [][2]string, args ...string) []side {
	sbx := []string{h.sandboxd, "run", "--cache-dir", filepath.Join(h.work, "cache", "sandboxd")}
	wz := []string{h.wazero, "run", "-cachedir", filepath.Join(h.work, "cache", "wazero")}
	var nd []string
	for _, d := range dirs {
		ro := ""
		if d[0] == "in" {
			ro = ":ro"
		}
		sbx = append(sbx, "--grant", "dir:"+d[1]+"="+d[0]+ro)
		wz = append(wz, "-mount", d[1]+":/"+d[0]+ro)
		nd = append(nd, "--dir", "/"+d[0]+"="+d[1])
	}
	sides := []side{
		{name: "sandboxd", argv: append(append(sbx, h.wasm[prog]), args...)},
		{name: "wazero", argv: append(append(wz, h.wasm[prog]), args...)},
	}
	if h.node != "" {
		sides = append(sides, side{name: "node", argv: append(append(append([]string{h.node, "--no-warnings", h.runner}, nd...), h.wasm[prog]), args...)})
	}
	// Natively the guest paths are the host's.
	native := []string{h.native[prog]}
	for _, a := range args {
		for _, d := range dirs {
			if rest, ok := strings.CutPrefix(a, "/"+d[0]+"/"); ok {
				a = filepath.Join(d[1], rest)
			}
		}
		native = append(native, a)
	}
	return append(sides, side{name: "native", argv: native})
}

// peerRows are the rows comparing sandboxd's median with each peer's,
// sandboxd's over the peer's, for times (lower is better) and rates
// (higher is better) alike; is says which.
func peerRows(prefix, what, is string, vals map[string][]float64, unit string, peers ...string) []row {
	var rows []row
	for _, p := range peers {
		key := prefix + ".sandboxd/" + p
		w := what + ", sandboxd vs " + p
		if len(vals[p]) == 0 {
			reason := "not measured"
			if p == "node" {
				reason = "node not found"
			}
			rows = append(rows, naRow(key, w, reason))
			continue
		}
		s, o := median(vals["sandboxd"]), median(vals[p])
		rows = append(rows, ratioRow(key, w, is, s, o, fmt.Sprintf("%s vs %s %s, medians of %d", fmtNum(s), fmtNum(o), unit, len(vals[p]))))
	}
	return rows
}

// fmtNum prints a measurement with three significant digits or more.
func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

var nsPerCall = regexp.MustCompile(`ns/call ([0-9.]+)`)

// hostCallProcesses runs bench/hostcall.c's loops under each runtime's own
// command (stdout on /dev/null for all), each timing its loop with the
// guest's own clock: wall time per call, like for like with Node.
func (h *harness) hostCallProcesses() []row {
	var rows []row
	for _, c := range hostCalls {
		n := pick(h, 100000, 1000000)
		if c == "clock_time_get" {
			n *= 5
		}
		sides := h.wasiSides("hostcall", nil, c, strconv.Itoa(n))
		vals, err := interleave(pick(h, 5, 9), sides, func(s side, warm bool) (float64, error) {
			if warm { // a short run: the caches, not the loop
				s.argv = append(append([]string(nil), s.argv[:len(s.argv)-1]...), "1000")
			}
			r, err := execTimed(s, h.root)
			if err != nil {
				return 0, err
			}
			m := nsPerCall.FindStringSubmatch(r.stderr)
			if m == nil {
				return 0, fmt.Errorf("no ns/call in its output %q", r.stderr)
			}
			return strconv.ParseFloat(m[1], 64)
		})
		what := c + " from a C guest (wall time in the guest's loop, each runtime's CLI)"
		if err != nil {
			for _, p := range []string{"wazero", "node", "native"} {
				rows = append(rows, errRows(err, [2]string{"hostcall-cli." + c + ".sandboxd/" + p, what + ", sandboxd vs " + p})...)
			}
			continue
		}
		rows = append(rows, peerRows("hostcall-cli."+c, what, "wall time per call, sandboxd / peer", vals, "ns", "wazero", "node", "native")...)
	}
	return rows
}

// ---- starting a program ----

// start times hello.c from process start to exit status under each
// runtime (compilation caches warm), and `sandboxd help` against a static
// Go hello world: what the CLI costs before it does anything.
func (h *harness) start() []row {
	sides := h.wasiSides("hello", nil)
	sides = append(sides, side{name: "sandboxd help", argv: []string{h.sandboxd, "help"}}, side{name: "go hello", argv: []string{h.goHello}})
	// The CPU time (user + system, every thread) of the same runs: what a
	// start costs, which other processes on a busy machine do not inflate
	// as they do the wall time.
	cpu := map[string][]float64{}
	vals, err := interleave(pick(h, 20, 60), sides, func(s side, warm bool) (float64, error) {
		r, err := execTimed(s, h.root)
		if err != nil {
			return 0, err
		}
		if s.name != "sandboxd help" && r.stdout != "hello\n" {
			return 0, fmt.Errorf("output %q, want \"hello\\n\"", r.stdout)
		}
		if !warm {
			cpu[s.name] = append(cpu[s.name], float64(r.cpu.Microseconds())/1e3)
		}
		return float64(r.wall.Microseconds()) / 1e3, nil
	})
	what := "hello.c start to exit status (new process, compilation cache warm)"
	if err != nil {
		rows := errRows(err, [2]string{"start.hello.sandboxd/wazero", what}, [2]string{"start.hello.sandboxd/node", what},
			[2]string{"start.hello.sandboxd/native", what}, [2]string{"start.help/go-hello", "sandboxd help vs a static Go hello world"})
		return rows
	}
	rows := peerRows("start.hello", what, "p50 wall time, sandboxd / peer", vals, "ms", "wazero", "node", "native")
	rows = append(rows, peerRows("start.hello.cpu", "the same runs' CPU time (user + system)", "median CPU time, sandboxd / peer", cpu, "ms", "wazero", "node", "native")...)
	s, g := median(vals["sandboxd help"]), median(vals["go hello"])
	rows = append(rows, ratioRow("start.help/go-hello", "`sandboxd help` vs a static Go hello world (process start to exit)",
		"p50 wall time, sandboxd help / Go hello (≤ 1.5 is the target)", s, g, fmt.Sprintf("%s vs %s ms", fmtNum(s), fmtNum(g))))
	s, g = median(cpu["sandboxd help"]), median(cpu["go hello"])
	rows = append(rows, ratioRow("start.help.cpu/go-hello", "the same runs' CPU time (user + system)",
		"median CPU time, sandboxd help / Go hello", s, g, fmt.Sprintf("%s vs %s ms", fmtNum(s), fmtNum(g))))
	return append(rows, h.startNoCache()...)
}

// startNoCache times hello.c from process start to exit status with no
// compilation cache: every run compiles the module (Node always does).
func (h *harness) startNoCache() []row {
	sides := []side{
		{name: "sandboxd", argv: []string{h.sandboxd, "run", "--cache-dir", "", h.wasm["hello"]}},
		{name: "wazero", argv: []string{h.wazero, "run", h.wasm["hello"]}},
	}
	if h.node != "" {
		sides = append(sides, side{name: "node", argv: []string{h.node, "--no-warnings", h.runner, h.wasm["hello"]}})
	}
	vals, err := interleave(pick(h, 20, 60), sides, func(s side, warm bool) (float64, error) {
		r, err := execTimed(s, h.root)
		if err != nil {
			return 0, err
		}
		if r.stdout != "hello\n" {
			return 0, fmt.Errorf("output %q, want \"hello\\n\"", r.stdout)
		}
		return float64(r.wall.Microseconds()) / 1e3, nil
	})
	what := "hello.c start to exit status, no compilation cache (each run compiles)"
	if err != nil {
		return errRows(err, [2]string{"start.hello-nocache.sandboxd/wazero", what}, [2]string{"start.hello-nocache.sandboxd/node", what})
	}
	return peerRows("start.hello-nocache", what, "p50 wall time, sandboxd / peer", vals, "ms", "wazero", "node")
}

// ---- ucase ----

// ucase runs examples/ucase over the input under each runtime and
// natively, interleaved, every output checked; throughput is the input's
// size over the whole process's wall time.
func (h *harness) ucase() []row {
	st, err := os.Stat(h.input)
	if err != nil {
		return errRows(err, [2]string{"ucase.sandboxd/wazero", "ucase"})
	}
	want, err := upperDigest(h.input)
	if err != nil {
		return errRows(err, [2]string{"ucase.sandboxd/wazero", "ucase"})
	}
	mib := float64(st.Size()) / (1 << 20)
	out := filepath.Join(h.work, "out")
	name := filepath.Base(h.input)
	sides := h.wasiSides("ucase", [][2]string{{"in", filepath.Dir(h.input)}, {"out", out}}, "/in/"+name, "/out/"+name)
	vals, err := interleave(5, sides, func(s side, warm bool) (float64, error) {
		os.RemoveAll(out)
		if err := os.MkdirAll(out, 0o755); err != nil {
			return 0, err
		}
		r, err := execTimed(s, h.root)
		if err != nil {
			return 0, err
		}
		if got, err := fileDigest(filepath.Join(out, name)); err != nil || got != want {
			return 0, fmt.Errorf("the output is not the upper-cased input (%v)", err)
		}
		return mib / r.wall.Seconds(), nil
	})
	what := fmt.Sprintf("ucase of %.0f MiB, throughput of the whole process", mib)
	if err != nil {
		var rows []row
		for _, p := range []string{"wazero", "node", "native"} {
			rows = append(rows, errRows(err, [2]string{"ucase.sandboxd/" + p, what + ", sandboxd vs " + p})...)
		}
		return rows
	}
	return peerRows("ucase", what, "throughput, sandboxd / peer (≥ 0.9 against wazero is the target)", vals, "MiB/s", "wazero", "node", "native")
}

func upperDigest(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return fmt.Sprintf("%x", sha256.Sum256(b)), nil
}

func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	d := sha256.New()
	if _, err := io.Copy(d, f); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", d.Sum(nil)), nil
}

// ---- guest memory ----

var touchedMiB = regexp.MustCompile(`^([0-9]+) MiB`)

// memory runs bench/touch.c under `sandboxd run` with --mem 0 and --mem
// 4GiB, and natively, and compares the peak resident memory with what the
// guest touched. One run of each: peak memory hardly moves with the
// machine's load, and with BENCH_FULL=1 each run touches 4 GiB.
func (h *harness) memory() []row {
	// With BENCH_FULL=1 the guest touches memory until malloc fails, at the
	// wasm32 maximum (4 GiB, 4095 MiB of it for the heap); natively, where
	// malloc would not fail before the kernel's OOM killer, it stops there.
	limit, nativeLimit := pick(h, "256", "-1"), pick(h, "256", "4095")
	sbx := []string{h.sandboxd, "run", "--cache-dir", filepath.Join(h.work, "cache", "sandboxd")}
	sides := []side{
		{name: "sandboxd --mem 0", argv: append(append([]string(nil), sbx...), "--mem", "0", h.wasm["touch"], limit)},
		{name: "sandboxd --mem 4GiB", argv: append(append([]string(nil), sbx...), "--mem", "4GiB", h.wasm["touch"], limit)},
		{name: "native", argv: []string{h.native["touch"], nativeLimit}},
	}
	keys := map[string]string{"sandboxd --mem 0": "memory.touch.mem0", "sandboxd --mem 4GiB": "memory.touch.mem4GiB", "native": "memory.touch.native"}
	vals, err := interleave(1, sides, func(s side, warm bool) (float64, error) {
		if warm { // compiles the module into the cache: one MiB is enough
			s.argv = append(append([]string(nil), s.argv[:len(s.argv)-1]...), "1")
		}
		r, err := execTimed(s, h.root)
		if err != nil {
			return 0, err
		}
		m := touchedMiB.FindStringSubmatch(r.stdout)
		if m == nil {
			return 0, fmt.Errorf("output %q", r.stdout)
		}
		touched, _ := strconv.ParseFloat(m[1], 64)
		if touched == 0 {
			return 0, errors.New("it touched nothing")
		}
		return float64(r.maxRSSKiB) / 1024 / touched, nil
	})
	var rows []row
	for _, s := range sides {
		what := "peak RSS of touch.c touching 256 MiB, " + s.name
		if h.full {
			what = "peak RSS of touch.c touching memory until malloc fails (natively: 4095 MiB), " + s.name
		}
		if err != nil {
			rows = append(rows, errRows(err, [2]string{keys[s.name], what})...)
			continue
		}
		v := median(vals[s.name])
		rows = append(rows, row{key: keys[s.name], what: what, ratio: v, is: "peak RSS / memory touched (≤ 1.2 is the target)",
			from: fmt.Sprintf("%d runs", len(vals[s.name]))})
	}
	return rows
}

// ---- launching guests through the daemon ----

// warmLaunch is cmd/sandboxd's and daemon/server's launch benchmarks: a
// warm launch through the client library (daemon in another process, and
// in the same one) and through the CLI, against a cold `wazero run` of the
// same module.
func (h *harness) warmLaunch() []row {
	keys := [][2]string{
		{"launch.library/wazero-cold", "warm launch through the client library (daemon in another process) vs a cold `wazero run`"},
		{"launch.cli/wazero-cold", "warm launch with `sandboxd launch` (a new process) vs a cold `wazero run`"},
		{"launch.in-process/wazero-cold", "warm launch through the client library (daemon in the same process) vs a cold `wazero run`"},
		{"launch.in-process.p99/1ms", "warm launch in-process, p99"},
	}
	count := pick(h, 3, 5)
	lib, err := h.goBench("./cmd/sandboxd/", "DaemonWarmLaunchLibrary", pick(h, "200x", "3000x"), count)
	if err != nil {
		return errRows(err, keys...)
	}
	// One invocation per run, so that the CLI's runs and wazero's
	// alternate (-count runs one benchmark's runs back to back).
	procs := benchResults{}
	for i := 0; i < count; i++ {
		res, err := h.goBench("./cmd/sandboxd/", "DaemonWarmLaunchCLI|WazeroRunCold", pick(h, "30x", "300x"), 1)
		if err != nil {
			return errRows(err, keys...)
		}
		procs.add(res)
	}
	inproc, err := h.goBench("./daemon/server/", "WarmLaunchThroughClient", pick(h, "1000x", "5000x"), count)
	if err != nil {
		return errRows(err, keys...)
	}
	const p50 = "p50-µs"
	cold, err := procs.median("BenchmarkWazeroRunCold", p50)
	if err != nil {
		return errRows(err, keys...)
	}
	is := "p50 launch to exit status, sandboxd / cold `wazero run`"
	l, _ := lib.median("BenchmarkDaemonWarmLaunchLibrary", p50)
	c, _ := procs.median("BenchmarkDaemonWarmLaunchCLI", p50)
	i, _ := inproc.median("BenchmarkWarmLaunchThroughClient", p50)
	i99, _ := inproc.median("BenchmarkWarmLaunchThroughClient", "p99-µs")
	return []row{
		ratioRow(keys[0][0], keys[0][1], is, l, cold, fmt.Sprintf("%s vs %s µs", fmtNum(l), fmtNum(cold))),
		ratioRow(keys[1][0], keys[1][1], is+" (≤ 0.6 is the target)", c, cold, fmt.Sprintf("%s vs %s µs", fmtNum(c), fmtNum(cold))),
		ratioRow(keys[2][0], keys[2][1], is, i, cold, fmt.Sprintf("%s vs %s µs", fmtNum(i), fmtNum(cold))),
		ratioRow(keys[3][0], keys[3][1], "p99 / 1 ms target (≤ 1 meets it)", i99, 1000, fmt.Sprintf("p99 %s µs, p50 %s µs", fmtNum(i99), fmtNum(i))),
	}
}

// throughput is daemon/server's BenchmarkLaunchThroughput, run several
// times so that its two sides alternate.
func (h *harness) throughput() []row {
	keys := [][2]string{
		{"launch.throughput.sandboxd/wazero", "launches/s of a small guest from 4 client connections vs wazero instantiating it in-process"},
		{"launch.throughput/2000", "launches/s of a small guest through one daemon from 4 client connections"},
	}
	all := benchResults{}
	for i := 0; i < pick(h, 3, 5); i++ {
		res, err := h.goBench("./daemon/server/", "LaunchThroughput", pick(h, "1000x", "3000x"), 1)
		if err != nil {
			return errRows(err, keys...)
		}
		all.add(res)
	}
	v, err := all.medians("launches/s", "BenchmarkLaunchThroughput/sandboxd", "BenchmarkLaunchThroughput/wazero")
	if err != nil {
		return errRows(err, keys...)
	}
	from := fmt.Sprintf("%s vs %s launches/s, medians of %d", fmtNum(v[0]), fmtNum(v[1]), len(all["BenchmarkLaunchThroughput/sandboxd"]["launches/s"]))
	return []row{
		ratioRow(keys[0][0], keys[0][1], "launches/s, sandboxd / wazero", v[0], v[1], from),
		ratioRow(keys[1][0], keys[1][1], "launches/s / 2,000 target (≥ 1 meets it)", v[0], 2000, from),
	}
}

// ---- revocation, audit, policy ----

func (h *harness) revoke() []row {
	keys := [][2]string{
		{"revoke.10000caps.log/10ms", "revoke 10,000 capabilities over 100 guests (100 host files), audit record written"},
		{"revoke.10000caps.nolog/10ms", "revoke 10,000 capabilities over 100 guests (100 host files), no audit log"},
	}
	res, err := h.goBench("./daemon/", "RevokeSubtree10000Over100Guests/hostfiles=100/", pick(h, "5x", "20x"), 3)
	if err != nil {
		return errRows(err, keys...)
	}
	var rows []row
	for i, a := range []string{"true", "false"} {
		v, err := res.median("BenchmarkRevokeSubtree10000Over100Guests/hostfiles=100/audit="+a, "ns/op")
		if err != nil {
			rows = append(rows, errRows(err, keys[i])...)
			continue
		}
		rows = append(rows, ratioRow(keys[i][0], keys[i][1], "time / 10 ms target (≤ 1 meets it)", v/1e6, 10, fmt.Sprintf("%s ms", fmtNum(v/1e6))))
	}
	return rows
}

func (h *harness) audit() []row {
	keys := [][2]string{
		{"audit.append32/10000", "audit append with fdatasync, 32 concurrent appenders (group commit)"},
		{"audit.who-can/50ms", "who-can on a 100,000-edge delegation graph"},
		{"audit.launch.log/nolog", "warm launch (Supervisor.Launch to exit) with the audit log vs without"},
	}
	var rows []row
	if res, err := h.goBench("./audit/", "AppendConcurrent", pick(h, "500ms", "2s"), 3); err != nil {
		rows = append(rows, errRows(err, keys[0])...)
	} else if v, err := res.median("BenchmarkAppendConcurrent/appenders=32", "records/s"); err != nil {
		rows = append(rows, errRows(err, keys[0])...)
	} else {
		rows = append(rows, ratioRow(keys[0][0], keys[0][1], "records/s / 10,000 target (≥ 1 meets it)", v, 10000, fmt.Sprintf("%s records/s", fmtNum(v))))
	}
	if res, err := h.goBench("./audit/", "WhoCan100000Edges", pick(h, "5x", "20x"), 3); err != nil {
		rows = append(rows, errRows(err, keys[1])...)
	} else if v, err := res.median("BenchmarkWhoCan100000Edges", "ns/op"); err != nil {
		rows = append(rows, errRows(err, keys[1])...)
	} else {
		rows = append(rows, ratioRow(keys[1][0], keys[1][1], "time / 50 ms target (≤ 1 meets it)", v/1e6, 50, fmt.Sprintf("%s ms", fmtNum(v/1e6))))
	}
	if res, err := h.goBench("./daemon/", "WarmLaunchAudit", pick(h, "100x", "300x"), 3); err != nil {
		rows = append(rows, errRows(err, keys[2])...)
	} else if v, err := res.medians("ns/op", "BenchmarkWarmLaunchAudit/audit=true", "BenchmarkWarmLaunchAudit/audit=false"); err != nil {
		rows = append(rows, errRows(err, keys[2])...)
	} else {
		rows = append(rows, ratioRow(keys[2][0], keys[2][1], "time per launch, with the log / without", v[0], v[1],
			fmt.Sprintf("%s vs %s ms", fmtNum(v[0]/1e6), fmtNum(v[1]/1e6))))
	}
	return rows
}

func (h *harness) policy() []row {
	keys := [][2]string{
		{"policy.decide.p50/5us", "one policy decision against 1,000 rules, allowed by an exact-name grant"},
		{"policy.decide-denied.p50/5us", "one policy decision against 1,000 rules, default deny"},
		{"policy.authorize/launch", "deciding one grant (authorize) as a share of a warm launch"},
		{"policy.launch.1000rules/none", "warm launch with a 1,000-rule policy vs without a policy"},
	}
	var rows []row
	if res, err := h.goBench("./policies/", "Evaluate1000Rules", pick(h, "50000x", "200000x"), 3); err != nil {
		rows = append(rows, errRows(err, keys[0], keys[1])...)
	} else {
		for i, n := range []string{"BenchmarkEvaluate1000Rules", "BenchmarkEvaluate1000RulesDenied"} {
			v, err := res.median(n, "p50-ns")
			if err != nil {
				rows = append(rows, errRows(err, keys[i])...)
				continue
			}
			rows = append(rows, ratioRow(keys[i][0], keys[i][1], "p50 / 5 µs target (≤ 1 meets it)", v, 5000, fmt.Sprintf("p50 %s µs", fmtNum(v/1e3))))
		}
	}
	// AuthorizeGrant sets up a policy of 1,000 rules before its timer
	// starts: it runs for a time, not a count, so that one decision is
	// what it measures.
	auth, err := h.goBench("./daemon/", "AuthorizeGrant", pick(h, "1s", "2s"), 3)
	if err != nil {
		return append(rows, errRows(err, keys[2], keys[3])...)
	}
	res, err := h.goBench("./daemon/", "WarmLaunchPolicy", pick(h, "10000x", "20000x"), 3)
	if err != nil {
		return append(rows, errRows(err, keys[2], keys[3])...)
	}
	res.add(auth)
	v, err := res.medians("ns/op", "BenchmarkAuthorizeGrant", "BenchmarkWarmLaunchPolicy/none", "BenchmarkWarmLaunchPolicy/1000-rules")
	if err != nil {
		return append(rows, errRows(err, keys[2], keys[3])...)
	}
	return append(rows,
		ratioRow(keys[2][0], keys[2][1], "authorize time / launch time (≤ 0.02 is the target)", v[0], v[1], fmt.Sprintf("%s µs of %s µs", fmtNum(v[0]/1e3), fmtNum(v[1]/1e3))),
		ratioRow(keys[3][0], keys[3][1], "time per launch, 1,000 rules / none", v[2], v[1], fmt.Sprintf("%s vs %s µs", fmtNum(v[2]/1e3), fmtNum(v[1]/1e3))))
}

// guestRPC is daemon/guestrpc's: a Cap'n Proto call from one Go guest to
// another through the daemon, against the same call between two native
// processes.
func (h *harness) guestRPC() []row {
	keys := [][2]string{
		{"guestrpc.put/native", "Cap'n Proto call guest → daemon → guest vs native process → native process"},
		{"guestrpc.open/put", "the same call carrying one capability vs without"},
	}
	res, err := h.goBench("./daemon/guestrpc/", ".", pick(h, "1000x", "5000x"), pick(h, 1, 3))
	if err != nil {
		return errRows(err, keys...)
	}
	nat, err1 := res.median("BenchmarkNativeProcessesUnixSocketCall", "p50-µs")
	put, err2 := res.median("BenchmarkGuestToGuestCallThroughTheDaemon", "put-p50-µs")
	open, err3 := res.median("BenchmarkGuestToGuestCallThroughTheDaemon", "open-p50-µs")
	if err := errors.Join(err1, err2, err3); err != nil {
		return errRows(err, keys...)
	}
	return []row{
		ratioRow(keys[0][0], keys[0][1], "p50, through the daemon / native", put, nat, fmt.Sprintf("%s vs %s µs", fmtNum(put), fmtNum(nat))),
		ratioRow(keys[1][0], keys[1][1], "p50, open / put", open, put, fmt.Sprintf("%s vs %s µs", fmtNum(open), fmtNum(put))),
	}
}

// ---- sockets ----

var (
	httpLine  = regexp.MustCompile(`^- ([^:]+): .*: ([0-9.]+) req/s`)
	redisLine = regexp.MustCompile(`^- ([^:]+): .*: ([0-9.]+)/s$`)
)

// sock runs bench/sock.sh: the HTTP guest and the Redis client guest
// against the same programs built natively.
func (h *harness) sock() []row {
	keys := [][2]string{
		{"sock.http.sandboxd/native", "HTTP guest (examples/httpd), requests/s on 100 connections vs native"},
		{"sock.http.sandboxd/native-1thread", "HTTP guest, requests/s vs native held to one thread"},
		{"sock.redis.sandboxd/native", "Redis GET round trips/s (examples/redis, go-redis) vs native"},
	}
	env := []string{"WORK=" + filepath.Join(h.work, "sock"), "REQUESTS=10000", "TRIPS=" + pick(h, "5000", "20000")}
	if !h.full {
		env = append(env, "SKIP_WAZERO=1")
	}
	h.logf("bench/sock.sh %s", strings.Join(env[1:], " "))
	out, _, err := h.run(20*time.Minute, env, "bench/sock.sh")
	if err != nil {
		return errRows(err, keys...)
	}
	httpRate, redisRate := parseSock(out)
	from := func(m map[string]float64, a, b string) string {
		return fmt.Sprintf("%s vs %s /s", fmtNum(m[a]), fmtNum(m[b]))
	}
	is := "rate, sandboxd / native (≥ 0.5 is the target)"
	return []row{
		ratioRow(keys[0][0], keys[0][1], is, httpRate["sandboxd"], httpRate["native"], from(httpRate, "sandboxd", "native")),
		ratioRow(keys[1][0], keys[1][1], is, httpRate["sandboxd"], httpRate["native, one thread"], from(httpRate, "sandboxd", "native, one thread")),
		ratioRow(keys[2][0], keys[2][1], is, redisRate["sandboxd"], redisRate["native"], from(redisRate, "sandboxd", "native")),
	}
}

// parseSock reads bench/sock.sh's report: the HTTP section's requests/s
// and the Redis section's round trips/s, by the name of each line.
func parseSock(out string) (httpRate, redisRate map[string]float64) {
	httpRate, redisRate = map[string]float64{}, map[string]float64{}
	section := ""
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "## HTTP"):
			section = "http"
		case strings.HasPrefix(l, "## Redis"):
			section = "redis"
		case section == "http":
			if m := httpLine.FindStringSubmatch(l); m != nil {
				httpRate[m[1]], _ = strconv.ParseFloat(m[2], 64)
			}
		case section == "redis":
			if m := redisLine.FindStringSubmatch(l); m != nil {
				redisRate[m[1]], _ = strconv.ParseFloat(m[2], 64)
			}
		}
	}
	return httpRate, redisRate
}

// ---- density ----

// density runs bench/density.sh when it is there and reports each
// key=value line it prints whose value is a number.
func (h *harness) density() []row {
	script := filepath.Join(h.root, "bench", "density.sh")
	if _, err := os.Stat(script); err != nil {
		return []row{naRow("density", "idle guests in one daemon", "bench/density.sh missing")}
	}
	h.logf("bench/density.sh")
	out, _, err := h.run(60*time.Minute, []string{"WORK=" + filepath.Join(h.work, "density")}, script)
	if err != nil {
		return errRows(err, [2]string{"density", "idle guests in one daemon"})
	}
	kv := parseKeyValues(out)
	if len(kv) == 0 {
		return []row{naRow("density", "idle guests in one daemon", "bench/density.sh printed no key=value line with a number")}
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Against the targets of issue 15, where bench/density.sh reports what
	// they are about; every key as it is besides.
	var rows []row
	if v, ok := kv["density_kb_per_guest"]; ok {
		rows = append(rows, ratioRow("density.kb_per_guest/32", "memory per idle guest (bench/idle.c) in one daemon",
			"KiB per guest / 32 KiB target (≤ 1 meets it)", v, 32, fmt.Sprintf("%s KiB over %s guests", fmtNum(v), fmtNum(kv["guests"]))))
	}
	if v, ok := kv["launches_per_s"]; ok {
		rows = append(rows, ratioRow("density.launches_per_s/2000", "launches/s of idle guests into one daemon from several connections",
			"launches/s / 2,000 target (≥ 1 meets it)", v, 2000, fmt.Sprintf("%s launches/s", fmtNum(v))))
	}
	for _, k := range keys {
		rows = append(rows, row{key: "density." + k, what: "idle guests in one daemon: " + k, ratio: kv[k],
			is: "the value bench/density.sh prints (not a ratio)", from: "bench/density.sh"})
	}
	return rows
}

// parseKeyValues returns the key=value lines of out whose value is a
// number (a unit after it, "52.1 KB", is allowed and dropped).
func parseKeyValues(out string) map[string]float64 {
	kv := map[string]float64{}
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		if n, err := strconv.ParseFloat(f[0], 64); err == nil {
			kv[k] = n
		}
	}
	return kv
}
