package main

import (
	"math"
	"strings"
	"testing"
)

const benchOutput = `goos: linux
goarch: amd64
pkg: github.com/sandboxd/sandboxd/abi
cpu: AMD EPYC
BenchmarkHostCallRatio/fd_write-2         	 1000000	        84.1 ns/op	        71.7 sandboxd-ns/call	         1.16 sandboxd/wazero	         1.14 sandboxd/wazero-best
BenchmarkHostCallRatio/fd_write-2         	 1000000	        85.0 ns/op	        72.0 sandboxd-ns/call	         1.12 sandboxd/wazero	         1.13 sandboxd/wazero-best
BenchmarkHostCallRatio/fd_write-2         	 1000000	        83.9 ns/op	        70.9 sandboxd-ns/call	         1.20 sandboxd/wazero	         1.15 sandboxd/wazero-best
BenchmarkRevokeSubtree10000Over100Guests/hostfiles=100/audit=true-2 	       5	   6100000 ns/op
BenchmarkAppendConcurrent/appenders=32-2   	  100000	     17500 ns/op	     57000 records/s
BenchmarkOnOneProc 	      10	       100 ns/op
    bench_test.go:12: a log line BenchmarkNotAResult 1 2 x
BenchmarkBroken-2 	 many	 100 ns/op
PASS
ok  	github.com/sandboxd/sandboxd/abi	12.3s
`

func TestParseBenchReadsResultLinesOnly(t *testing.T) {
	res, err := parseBench(strings.NewReader(benchOutput))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 {
		t.Errorf("parsed %d benchmarks, want 4: %v", len(res), res)
	}
	got := res["BenchmarkHostCallRatio/fd_write"]["sandboxd/wazero"]
	if len(got) != 3 || got[0] != 1.16 || got[2] != 1.20 {
		t.Errorf("sandboxd/wazero = %v, want [1.16 1.12 1.20]", got)
	}
	if m, err := res.median("BenchmarkHostCallRatio/fd_write", "sandboxd/wazero"); err != nil || m != 1.16 {
		t.Errorf("median = %v, %v; want 1.16", m, err)
	}
	// The -GOMAXPROCS suffix goes, a "=100" inside the name stays.
	if _, ok := res["BenchmarkRevokeSubtree10000Over100Guests/hostfiles=100/audit=true"]; !ok {
		t.Errorf("sub-benchmark name not kept whole: %v", res)
	}
	if v := res["BenchmarkAppendConcurrent/appenders=32"]["records/s"]; len(v) != 1 || v[0] != 57000 {
		t.Errorf("records/s = %v", v)
	}
	if _, ok := res["BenchmarkOnOneProc"]; !ok {
		t.Errorf("a name without a GOMAXPROCS suffix is lost")
	}
	if _, err := res.median("BenchmarkHostCallRatio/fd_write", "no-such-unit"); err == nil {
		t.Errorf("median of a missing unit: no error")
	}
}

func TestTrimProcs(t *testing.T) {
	for in, want := range map[string]string{
		"BenchmarkX-2":             "BenchmarkX",
		"BenchmarkX":               "BenchmarkX",
		"BenchmarkX/appenders=2-8": "BenchmarkX/appenders=2",
		"BenchmarkX/a-b":           "BenchmarkX/a-b",
		"BenchmarkX-":              "BenchmarkX-",
	} {
		if got := trimProcs(in); got != want {
			t.Errorf("trimProcs(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMedianIsBenchstats(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
		{nil, 0},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	in := []float64{3, 1, 2}
	median(in)
	if in[0] != 3 {
		t.Errorf("median sorted its argument in place")
	}
	if lo, hi := spread([]float64{2, 5, 1}); lo != 1 || hi != 5 {
		t.Errorf("spread = %v, %v", lo, hi)
	}
}

func TestCompareNamesRatiosThatMovedMoreThanAQuarter(t *testing.T) {
	base, err := readBaseline(strings.NewReader("# a comment\n\nhostcall.a\t1.10\nucase.b\t1.00\nlaunch.c\t0.50\ngone.d\t2\n"))
	if err != nil {
		t.Fatal(err)
	}
	rows := []row{
		{key: "hostcall.a", ratio: 1.37},  // +24.5 %: within
		{key: "ucase.b", ratio: 0.74},     // -26 %: moved
		{key: "launch.c", ratio: 0.70},    // +40 %: moved
		naRow("sock.e", "x", "not built"), // not measured: never moved, never fresh
		{key: "new.f", ratio: 3},
	}
	moved, fresh, missing := compare(rows, base)
	if len(moved) != 2 || moved[0].key != "ucase.b" || moved[1].key != "launch.c" {
		t.Fatalf("moved = %v, want ucase.b and launch.c", moved)
	}
	if s := moved[1].String(); s != "MOVED: launch.c: 0.5 → 0.7 (+40 %)" {
		t.Errorf("move line %q", s)
	}
	if s := moved[0].String(); s != "MOVED: ucase.b: 1.00 → 0.74 (-26 %)" {
		t.Errorf("move line %q", s)
	}
	if len(fresh) != 1 || fresh[0] != "new.f" {
		t.Errorf("fresh = %v, want [new.f]", fresh)
	}
	if len(missing) != 1 || missing[0] != "gone.d" {
		t.Errorf("missing = %v, want [gone.d]", missing)
	}
}

func TestBaselineRoundTrips(t *testing.T) {
	rows := []row{{key: "a", ratio: 1.234}, naRow("b", "x", "n/a"), {key: "c", ratio: 0.0456}, {key: "d", ratio: 123.4}}
	var sb strings.Builder
	if err := writeBaseline(&sb, []string{"header"}, rows); err != nil {
		t.Fatal(err)
	}
	if want := "# header\na\t1.23\nc\t0.0456\nd\t123\n"; sb.String() != want {
		t.Errorf("baseline:\n%s\nwant:\n%s", sb.String(), want)
	}
	base, err := readBaseline(strings.NewReader(sb.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(base) != 3 || base["a"] != 1.23 || base["c"] != 0.0456 {
		t.Errorf("read back %v", base)
	}
	if _, err := readBaseline(strings.NewReader("a 1.2\n")); err == nil {
		t.Errorf("a line without a tab: no error")
	}
	if _, err := readBaseline(strings.NewReader("a\tfast\n")); err == nil {
		t.Errorf("a ratio that is not a number: no error")
	}
}

func TestMovedBeyond(t *testing.T) {
	for _, c := range []struct {
		old, now float64
		want     bool
	}{
		{1, 1.25, false}, {1, 1.2501, true}, {1, 0.75, false}, {1, 0.7499, true}, {0, 0, false}, {0, 1, true},
	} {
		if got := movedBeyond(c.old, c.now, moveLimit); got != c.want {
			t.Errorf("movedBeyond(%v, %v) = %v", c.old, c.now, got)
		}
	}
}

func TestTableMarksUnmeasuredRows(t *testing.T) {
	var sb strings.Builder
	printTable(&sb, []row{{key: "a", what: "x | y", ratio: 1.5, is: "t", from: "1 vs 2"}, naRow("density", "d", "bench/density.sh missing")}, baseline{"a": 1.4})
	out := sb.String()
	for _, want := range []string{"| `a` | x \\| y | **1.50** | t | 1.40 | 1 vs 2 |", "| `density` | d | n/a (bench/density.sh missing) |"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if r := ratioRow("k", "w", "i", 1, 0, ""); r.measured() {
		t.Errorf("a ratio over zero counts as measured")
	}
	if r := ratioRow("k", "w", "i", math.NaN(), 1, ""); r.measured() {
		t.Errorf("a NaN ratio counts as measured")
	}
}

func TestParseSockAndKeyValues(t *testing.T) {
	out := `## HTTP: 3000 requests over 100 connections

- native: 3000 requests, 100 connections: 18196 req/s, p50 4.6ms, p99 15.1ms
- native, one thread: 3000 requests, 100 connections: 21019 req/s, p50 3.9ms, p99 15.3ms
- sandboxd: 3000 requests, 100 connections: 6014 req/s, p50 15ms, p99 31.1ms
- wazero: skipped (SKIP_WAZERO=1)

## Redis: 5000 GET round trips, one at a time

- native: 5000 round trips in 212ms: 23529/s
- sandboxd: 5000 round trips in 556ms: 8983/s
`
	h, r := parseSock(out)
	if h["native"] != 18196 || h["native, one thread"] != 21019 || h["sandboxd"] != 6014 || len(h) != 3 {
		t.Errorf("http = %v", h)
	}
	if r["native"] != 23529 || r["sandboxd"] != 8983 || len(r) != 2 {
		t.Errorf("redis = %v", r)
	}
	kv := parseKeyValues("guests=10000\nkb_per_guest=52.1 KB\nnote=not a number\nnot a pair\n a b=1\n")
	if len(kv) != 2 || kv["guests"] != 10000 || kv["kb_per_guest"] != 52.1 {
		t.Errorf("key values = %v", kv)
	}
}

func TestInterleaveRotatesAndDropsTheWarmUp(t *testing.T) {
	sides := []side{{name: "a"}, {name: "b"}, {name: "c"}}
	var order []string
	n := 0.0
	vals, err := interleave(3, sides, func(s side, warm bool) (float64, error) {
		if warm {
			order = append(order, "w"+s.name)
		} else {
			order = append(order, s.name)
		}
		n++
		return n, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(order, " "), "wa wb wc a b c b c a c a b"; got != want {
		t.Errorf("order %q, want %q", got, want)
	}
	if got := vals["a"]; len(got) != 3 || got[0] != 4 || got[1] != 9 || got[2] != 11 {
		t.Errorf("a's values %v, want [4 9 11] (warm-up dropped)", got)
	}
}
