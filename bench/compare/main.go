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
	sandboxd := flag.String("sandboxd", "", "sandboxd binary")
	wazero := flag.String("wazero", "", "wazero CLI binary, built as `go run …/cmd/wazero@VERSION` builds it")
	wazeroStatic := flag.String("wazero-static", "", "optional: wazero CLI built with CGO_ENABLED=0, as sandboxd is")
	node := flag.String("node", "node", "node binary")
	runner := flag.String("node-runner", "", "bench/wasi-run.mjs")
	ucase := flag.String("ucase", "", "ucase.wasm")
	hello := flag.String("hello", "", "hello.wasm")
	input := flag.String("input", "", "the input file for ucase")
	work := flag.String("work", "", "a scratch directory")
	runs := flag.Int("runs", 5, "timed ucase runs per runtime")
	starts := flag.Int("starts", 50, "timed hello runs per runtime")
	flag.Parse()
	for _, f := range []struct{ name, v string }{{"sandboxd", *sandboxd}, {"wazero", *wazero}, {"node-runner", *runner},
		{"ucase", *ucase}, {"hello", *hello}, {"input", *input}, {"work", *work}} {
		if f.v == "" {
			fatalf("-%s is required", f.name)
		}
	}
	inDir := filepath.Dir(*input)
	inName := filepath.Base(*input)
	cache := filepath.Join(*work, "cache")
	sandboxdRT := func(name string, flags ...string) runtime {
		base := append([]string{*sandboxd, "run", "--cache-dir", cache + "/" + name}, flags...)
		return runtime{
			name: name,
			ucase: func(in, out string) []string {
				return append(append([]string(nil), base...), "--grant", "dir:"+in+"=in:ro", "--grant", "dir:"+out+"=out", *ucase, "/in/"+inName, "/out/"+inName)
			},
			hello: func() []string { return append(append([]string(nil), base...), *hello) },
		}
	}
	wazeroRT := func(name, bin string) runtime {
		return runtime{
			name: name,
			ucase: func(in, out string) []string {
				return []string{bin, "run", "-cachedir", cache + "/" + name,
					"-mount", in + ":/in:ro", "-mount", out + ":/out", *ucase, "/in/" + inName, "/out/" + inName}
			},
			hello: func() []string { return []string{bin, "run", "-cachedir", cache + "/" + name, *hello} },
		}
	}
	rts := []runtime{
		sandboxdRT("sandboxd"),
		sandboxdRT("sandboxd --debug-info", "--debug-info"),
		wazeroRT("wazero", *wazero),
	}
	if *wazeroStatic != "" {
		rts = append(rts, wazeroRT("wazero, CGO_ENABLED=0", *wazeroStatic))
	}
	rts = append(rts, runtime{
		name: "node",
		ucase: func(in, out string) []string {
			return []string{*node, "--no-warnings", *runner, "--dir", "/in=" + in, "--dir", "/out=" + out, *ucase, "/in/" + inName, "/out/" + inName}
		},
		hello: func() []string { return []string{*node, "--no-warnings", *runner, *hello} },
	})

	want := upperDigest(*input)
	st, err := os.Stat(*input)
	if err != nil {
		fatalf("%v", err)
	}
	size := st.Size()

	ucaseTimes := map[string][]time.Duration{}
	helloTimes := map[string][]time.Duration{}
	for round := -1; round < max(*runs, *starts); round++ { // round -1 warms the caches
		for _, rt := range rts {
			if round < *runs {
				out := filepath.Join(*work, "out-"+rt.name)
				_ = os.RemoveAll(out)
				if err := os.MkdirAll(out, 0o755); err != nil {
					fatalf("%v", err)
				}
				d := timed(rt.ucase(inDir, out), "")
				if got := fileDigest(filepath.Join(out, inName)); got != want {
					fatalf("%s: ucase output is wrong", rt.name)
				}
				if round >= 0 {
					ucaseTimes[rt.name] = append(ucaseTimes[rt.name], d)
				}
			}
			if round < *starts {
				d := timed(rt.hello(), "hello\n")
				if round >= 0 {
					helloTimes[rt.name] = append(helloTimes[rt.name], d)
				}
			}
		}
	}

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
	fmt.Printf("\n(%d ucase runs and %d hello runs per runtime, after one warm-up run each.)\n", *runs, *starts)
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
