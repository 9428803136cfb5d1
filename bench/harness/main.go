// Command harness runs every comparison of docs/BENCHMARKS.md on this
// machine in one go and prints one Markdown table of ratios, with the
// machine, the date and the commit, against a committed baseline of ratios
// (bench/baseline.tsv): every ratio that moved by more than 25 % from the
// baseline's is named on a "MOVED:" line. It is a benchmark, not a test:
// nothing fails because a number moved.
//
// It builds its peers itself: sandboxd, wazero's CLI at the version go.mod
// pins, the C programs of bench/ and examples/ucase for wasm32-wasi and
// natively (the physical limit), and runs Node's node:wasi through
// bench/wasi-run.mjs. `make bench` runs it (bench/bench.sh):
//
//	make bench                    # the quick mode: a few minutes on 2 cores
//	BENCH_FULL=1 make bench       # longer runs, more repetitions
//	make bench-baseline           # the quick mode, then rewrite bench/baseline.tsv
//	bench/bench.sh -only 'hostcall|start'   # only the steps whose name matches
//
// Ratios come from medians of repeated runs; runs of the sides of one
// comparison are interleaved (one of each, then again) wherever they are
// separate processes, so that the machine's drift affects them alike.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"
)

// harness is one run: its options, the peers it built and the rows
// measured so far.
type harness struct {
	root, work string
	full       bool
	log        io.Writer
	rows       []row

	sandboxd, wazero, node, runner string
	// wasm32-wasi modules and native builds of the same C sources, by name
	// (hello, hostcall, ucase, touch).
	wasm, native map[string]string
	goHello      string // a static Go program that prints one line
	input        string // ucase's input file
}

// A step measures one comparison (or a few that share a setup) and adds
// its rows.
type step struct {
	name string
	run  func(h *harness) []row
}

var steps = []step{
	{"hostcall-lib", (*harness).hostCallLibrary},
	{"hostcall-cli", (*harness).hostCallProcesses},
	{"start", (*harness).start},
	{"ucase", (*harness).ucase},
	{"memory", (*harness).memory},
	{"warm-launch", (*harness).warmLaunch},
	{"throughput", (*harness).throughput},
	{"revoke", (*harness).revoke},
	{"audit", (*harness).audit},
	{"policy", (*harness).policy},
	{"guestrpc", (*harness).guestRPC},
	{"sock", (*harness).sock},
	{"density", (*harness).density},
}

// options are the harness's flags.
type options struct {
	root, base string
	write      bool
	only       *regexp.Regexp
	keep       bool
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.root, "root", ".", "the sandboxd checkout")
	flag.StringVar(&o.base, "baseline", "bench/baseline.tsv", "the baseline of ratios, relative to -root")
	flag.BoolVar(&o.write, "write-baseline", os.Getenv("BENCH_WRITE_BASELINE") == "1", "rewrite the baseline with this run's ratios")
	only := flag.String("only", os.Getenv("BENCH_ONLY"), "run only the steps whose name matches this `regexp` (steps: "+stepNames()+")")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory")
	flag.Parse()
	if flag.NArg() > 0 {
		fatalf("unexpected arguments %q: the harness takes flags only (-only, -baseline, -write-baseline, -root, -keep)", flag.Args())
	}
	if *only != "" {
		var err error
		if o.only, err = regexp.Compile(*only); err != nil {
			fatalf("-only %q: %v", *only, err)
		}
	}
	root, err := filepath.Abs(o.root)
	if err != nil {
		fatalf("%v", err)
	}
	o.root = root
	return o
}

func main() {
	o := parseFlags()
	work, err := os.MkdirTemp("", "sandboxd-bench-")
	if err != nil {
		fatalf("a scratch directory: %v (set TMPDIR to a writable directory)", err)
	}
	if o.keep {
		fmt.Fprintf(os.Stderr, "harness: scratch directory %s kept\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	h := &harness{root: o.root, work: work, full: os.Getenv("BENCH_FULL") == "1", log: os.Stderr}
	basePath := filepath.Join(o.root, o.base)
	old := loadBaseline(basePath)

	started := time.Now().UTC()
	load := loadAverage()
	// The commit is read before anything is built: what was measured.
	commit := h.commit()
	if err := h.build(); err != nil {
		fatalf("building the peers: %v", err)
	}
	h.runSteps(o.only)
	header := machine(h, started, load, commit)
	report(os.Stdout, h.rows, old, header, o)
	if o.write {
		saveBaseline(basePath, header, h.rows)
		fmt.Printf("\nwrote %s\n", o.base)
	}
}

// runSteps runs every step whose name only matches (all when only is nil).
func (h *harness) runSteps(only *regexp.Regexp) {
	for _, s := range steps {
		if only != nil && !only.MatchString(s.name) {
			continue
		}
		t0 := time.Now()
		h.logf("step %s", s.name)
		rows := s.run(h)
		h.rows = append(h.rows, rows...)
		h.logf("step %s: %d rows in %v", s.name, len(rows), time.Since(t0).Round(time.Second))
	}
}

// loadBaseline reads the baseline at path; a missing one is empty.
func loadBaseline(path string) baseline {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return baseline{}
	}
	if err != nil {
		fatalf("%v", err)
	}
	defer f.Close()
	b, err := readBaseline(f)
	if err != nil {
		fatalf("%s: %v (fix it, or rewrite it with make bench-baseline)", path, err)
	}
	return b
}

func saveBaseline(path string, header []string, rows []row) {
	f, err := os.Create(path)
	if err != nil {
		fatalf("%v", err)
	}
	err = writeBaseline(f, append([]string{"Ratios of one `make bench-baseline` run; make bench compares against them.",
		"key<TAB>ratio; what each ratio is: the table make bench prints (docs/BENCHMARKS.md)."}, header...), rows)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fatalf("writing %s: %v", path, err)
	}
}

// report prints the run: its header, the table, the MOVED: lines and a
// summary.
func report(w io.Writer, rows []row, old baseline, header []string, o options) {
	fmt.Fprintln(w, "## make bench")
	fmt.Fprintln(w)
	for _, l := range header {
		fmt.Fprintln(w, "- "+l)
	}
	fmt.Fprintln(w)
	printTable(w, rows, old)
	fmt.Fprintln(w)
	moved, fresh, missing := compare(rows, old)
	for _, m := range moved {
		fmt.Fprintln(w, m)
	}
	fmt.Fprintf(w, "\n%d ratios measured; %d moved by more than %.0f %% from %s", countMeasured(rows), len(moved), moveLimit*100, o.base)
	if len(old) == 0 {
		fmt.Fprintf(w, " (no baseline: make bench-baseline writes it)")
	} else if len(fresh) > 0 {
		fmt.Fprintf(w, "; not in the baseline: %s", strings.Join(fresh, ", "))
	}
	if len(missing) > 0 && o.only == nil {
		fmt.Fprintf(w, "; in the baseline, not measured: %s", strings.Join(missing, ", "))
	}
	fmt.Fprintln(w, ".")
}

func stepNames() string {
	var n []string
	for _, s := range steps {
		n = append(n, s.name)
	}
	return strings.Join(n, ", ")
}

func countMeasured(rows []row) int {
	n := 0
	for _, r := range rows {
		if r.measured() {
			n++
		}
	}
	return n
}

// commit is the checkout's commit, "+dirty" when tracked files differ
// from it.
func (h *harness) commit() string {
	c := strings.TrimSpace(h.output("git", "rev-parse", "--short=12", "HEAD"))
	if c == "" {
		return "unknown (not a git checkout)"
	}
	if h.output("git", "status", "--porcelain", "--untracked-files=no") != "" {
		c += "+dirty"
	}
	return c
}

// machine describes the run: the machine, its load, the commit, the tools.
func machine(h *harness, started time.Time, load, commit string) []string {
	cpu := "unknown"
	for _, l := range strings.Split(h.output("lscpu"), "\n") {
		if v, ok := strings.CutPrefix(l, "Model name:"); ok {
			cpu = strings.TrimSpace(v)
		}
	}
	mode := "quick"
	if h.full {
		mode = "full (BENCH_FULL=1)"
	}
	return []string{
		fmt.Sprintf("date: %s, %s mode, took %v", started.Format("2006-01-02T15:04Z"), mode, time.Since(started).Round(time.Second)),
		fmt.Sprintf("machine: %s CPUs (nproc), %s, load average before: %s", strings.TrimSpace(h.output("nproc")), cpu, load),
		fmt.Sprintf("commit: %s", commit),
		fmt.Sprintf("%s, wazero %s, node %s, %s", runtime.Version(), h.wazeroVersion(),
			strings.TrimSpace(h.output("node", "--version")), firstLine(h.output("clang", "--version"))),
	}
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// output runs a command in the checkout and returns its stdout, "" when it
// fails.
func (h *harness) output(name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Dir = h.root
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return string(out)
}

func (h *harness) wazeroVersion() string {
	return strings.TrimSpace(h.output("go", "list", "-m", "-f", "{{.Version}}", "github.com/tetratelabs/wazero"))
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.log, "harness %s: "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, args...)...)
}

// pick returns quick in the quick mode and full with BENCH_FULL=1.
func pick[T any](h *harness, quick, full T) T {
	if h.full {
		return full
	}
	return quick
}

// run runs a command in the checkout with extra environment, stdout and
// stderr captured, stopped after limit.
func (h *harness) run(limit time.Duration, env []string, name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = h.root
	cmd.Env = append(os.Environ(), env...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("stopped after %v", limit)
	}
	if err != nil {
		err = fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(e.String(), 20))
	}
	return o.String(), e.String(), err
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "harness: "+format+"\n", args...)
	os.Exit(1)
}
