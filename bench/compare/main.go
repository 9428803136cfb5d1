// Command compare times the same WASI modules under sandboxd (as run
// starts by default, and with --debug-info), wazero's CLI (as `go run`
// builds it and, optionally, built without cgo) and Node's node:wasi on
// this machine, in one run, and prints a Markdown report. bench/run.sh
// builds everything and calls it.
//
// Two measurements:
//
//   - ucase: examples/ucase upper-cases a large file from a read-only
//     directory into a writable one. Throughput is input bytes over the
//     wall time of the whole process (start, compile or cache load, run,
//     exit), median of -runs runs; every output is checked.
//   - hello: bench/hello.c, the smallest program that writes and exits.
//     Start latency is the wall time from starting the runtime's process to
//     its exit status, p50 and p90 of -starts runs.
//
// Runs are interleaved across runtimes (one of each, then again) so that
// drift on the machine affects them alike, and each runtime runs once
// before timing starts so that compilation caches are warm for all.
package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

type runtime struct {
	name  string
	ucase func(in, out string) []string
	hello func() []string
}

func main() {
	o := parseOptions()
	rts := runtimes(o)
	want := upperDigest(o.input)
	st, err := os.Stat(o.input)
	if err != nil {
		fatalf("%v", err)
	}
	ucaseTimes, helloTimes := measure(o, rts, want)
	report(o, rts, st.Size(), ucaseTimes, helloTimes)
}

// options are compare's flags.
type options struct {
	sandboxd, wazero, wazeroStatic, node, runner string
	ucase, hello, input, work                    string
	runs, starts                                 int
}

// parseOptions reads the flags; a missing required one is fatal.
func parseOptions() options {
	var o options
	flag.StringVar(&o.sandboxd, "sandboxd", "", "sandboxd binary")
	flag.StringVar(&o.wazero, "wazero", "", "wazero CLI binary, built as `go run …/cmd/wazero@VERSION` builds it")
	flag.StringVar(&o.wazeroStatic, "wazero-static", "", "optional: wazero CLI built with CGO_ENABLED=0, as sandboxd is")
	flag.StringVar(&o.node, "node", "node", "node binary")
	flag.StringVar(&o.runner, "node-runner", "", "bench/wasi-run.mjs")
	flag.StringVar(&o.ucase, "ucase", "", "ucase.wasm")
	flag.StringVar(&o.hello, "hello", "", "hello.wasm")
	flag.StringVar(&o.input, "input", "", "the input file for ucase")
	flag.StringVar(&o.work, "work", "", "a scratch directory")
	flag.IntVar(&o.runs, "runs", 5, "timed ucase runs per runtime")
	flag.IntVar(&o.starts, "starts", 50, "timed hello runs per runtime")
	flag.Parse()
	for _, f := range []struct{ name, v string }{{"sandboxd", o.sandboxd}, {"wazero", o.wazero}, {"node-runner", o.runner},
		{"ucase", o.ucase}, {"hello", o.hello}, {"input", o.input}, {"work", o.work}} {
		if f.v == "" {
			fatalf("-%s is required", f.name)
		}
	}
	return o
}

// runtimes returns the command lines of every runtime compared, in the
// report's order. Each keeps its compilation cache in its own directory.
func runtimes(o options) []runtime {
	inName := filepath.Base(o.input)
	cache := filepath.Join(o.work, "cache")
	sandboxdRT := func(name string, flags ...string) runtime {
		base := append([]string{o.sandboxd, "run", "--cache-dir", cache + "/" + name}, flags...)
		return runtime{
			name: name,
			ucase: func(in, out string) []string {
				return append(append([]string(nil), base...), "--grant", "dir:"+in+"=in:ro", "--grant", "dir:"+out+"=out", o.ucase, "/in/"+inName, "/out/"+inName)
			},
			hello: func() []string { return append(append([]string(nil), base...), o.hello) },
		}
	}
	wazeroRT := func(name, bin string) runtime {
		return runtime{
			name: name,
			ucase: func(in, out string) []string {
				return []string{bin, "run", "-cachedir", cache + "/" + name,
					"-mount", in + ":/in:ro", "-mount", out + ":/out", o.ucase, "/in/" + inName, "/out/" + inName}
			},
			hello: func() []string { return []string{bin, "run", "-cachedir", cache + "/" + name, o.hello} },
		}
	}
	rts := []runtime{
		sandboxdRT("sandboxd"),
		sandboxdRT("sandboxd --debug-info", "--debug-info"),
		wazeroRT("wazero", o.wazero),
	}
	if o.wazeroStatic != "" {
		rts = append(rts, wazeroRT("wazero, CGO_ENABLED=0", o.wazeroStatic))
	}
	return append(rts, runtime{
		name: "node",
		ucase: func(in, out string) []string {
			return []string{o.node, "--no-warnings", o.runner, "--dir", "/in=" + in, "--dir", "/out=" + out, o.ucase, "/in/" + inName, "/out/" + inName}
		},
		hello: func() []string { return []string{o.node, "--no-warnings", o.runner, o.hello} },
	})
}

// measure times -runs ucase runs and -starts hello runs of each runtime,
// interleaved, after one warm-up round, and returns the times by runtime
// name. Every ucase output must have digest want.
func measure(o options, rts []runtime, want string) (ucaseTimes, helloTimes map[string][]time.Duration) {
	ucaseTimes = map[string][]time.Duration{}
	helloTimes = map[string][]time.Duration{}
	for round := -1; round < max(o.runs, o.starts); round++ { // round -1 warms the caches
		for _, rt := range rts {
			if round < o.runs {
				d := timedUcase(o, rt, want)
				if round >= 0 {
					ucaseTimes[rt.name] = append(ucaseTimes[rt.name], d)
				}
			}
			if round < o.starts {
				d := timed(rt.hello(), "hello\n")
				if round >= 0 {
					helloTimes[rt.name] = append(helloTimes[rt.name], d)
				}
			}
		}
	}
	return ucaseTimes, helloTimes
}

// timedUcase runs ucase under rt into a fresh output directory and returns
// its wall time; output whose digest is not want is fatal.
func timedUcase(o options, rt runtime, want string) time.Duration {
	inName := filepath.Base(o.input)
	out := filepath.Join(o.work, "out-"+rt.name)
	_ = os.RemoveAll(out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		fatalf("%v", err)
	}
	d := timed(rt.ucase(filepath.Dir(o.input), out), "")
	if got := fileDigest(filepath.Join(out, inName)); got != want {
		fatalf("%s: ucase output is wrong", rt.name)
	}
	return d
}

// report prints the Markdown table: ucase throughput against wazero's,
// and hello's start-to-exit percentiles.
func report(o options, rts []runtime, size int64, ucaseTimes, helloTimes map[string][]time.Duration) {
	mib := float64(size) / (1 << 20)
	fmt.Printf("| runtime | ucase %.0f MiB: median wall time | throughput | vs wazero | hello: p50 start-to-exit | p90 |\n", mib)
	fmt.Println("|---|---|---|---|---|---|")
	wz := median(ucaseTimes["wazero"])
	for _, rt := range rts {
		u := median(ucaseTimes[rt.name])
		h := helloTimes[rt.name]
		fmt.Printf("| %s | %.2f s | %.0f MiB/s | %.2f× | %s | %s |\n", rt.name, u.Seconds(), mib/u.Seconds(),
			wz.Seconds()/u.Seconds(), ms(percentile(h, 50)), ms(percentile(h, 90)))
	}
	fmt.Printf("\n(%d ucase runs and %d hello runs per runtime, after one warm-up run each.)\n", o.runs, o.starts)
}

// timed runs argv and returns its wall time; a non-zero exit or, when
// wantOut is set, other output, is fatal.
func timed(argv []string, wantOut string) time.Duration {
	cmd := exec.Command(argv[0], argv[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		fatalf("%s: %v\n%s", strings.Join(argv, " "), err, errb.String())
	}
	if wantOut != "" && out.String() != wantOut {
		fatalf("%s: output %q", strings.Join(argv, " "), out.String())
	}
	return d
}

func upperDigest(path string) string {
	f, err := os.Open(path)
	if err != nil {
		fatalf("%v", err)
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		for i, c := range buf[:n] {
			if c >= 'a' && c <= 'z' {
				buf[i] = c - ('a' - 'A')
			}
		}
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			fatalf("%v", err)
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func fileDigest(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "missing: " + err.Error()
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unreadable: " + err.Error()
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "compare: "+format+"\n", args...)
	os.Exit(1)
}
