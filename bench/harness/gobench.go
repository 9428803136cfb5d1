package main

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// benchResults holds the metrics of `go test -bench` output: for each
// benchmark (its name without the -GOMAXPROCS suffix), every value each
// unit was reported with, one per run (-count, or several invocations
// merged with add).
type benchResults map[string]map[string][]float64

// parseBench reads `go test -bench` output and returns its result lines'
// metrics. Lines that are not results (goos:, PASS, logs) are skipped. A
// result line is the benchmark's name, its iteration count, then value and
// unit pairs ("123.4 ns/op 5.6 p50-µs").
func parseBench(r io.Reader) (benchResults, error) {
	res := benchResults{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		name, metrics, ok := parseBenchLine(sc.Text())
		if !ok {
			continue
		}
		if res[name] == nil {
			res[name] = map[string][]float64{}
		}
		for _, m := range metrics {
			res[name][m.unit] = append(res[name][m.unit], m.value)
		}
	}
	return res, sc.Err()
}

type metric struct {
	value float64
	unit  string
}

// parseBenchLine parses one result line; ok is false for any other line.
func parseBenchLine(line string) (name string, metrics []metric, ok bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
		return "", nil, false
	}
	if _, err := strconv.ParseUint(f[1], 10, 64); err != nil {
		return "", nil, false
	}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return "", nil, false
		}
		metrics = append(metrics, metric{v, f[i+1]})
	}
	return trimProcs(f[0]), metrics, true
}

// trimProcs removes the "-N" GOMAXPROCS suffix the testing package adds to
// a benchmark's name (absent when GOMAXPROCS is 1).
func trimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 || i == len(name)-1 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name
	}
	return name[:i]
}

// add merges o's values into r.
func (r benchResults) add(o benchResults) {
	for name, units := range o {
		if r[name] == nil {
			r[name] = map[string][]float64{}
		}
		for u, vs := range units {
			r[name][u] = append(r[name][u], vs...)
		}
	}
}

// median returns the median of benchmark name's values of unit.
func (r benchResults) median(name, unit string) (float64, error) {
	vs := r[name][unit]
	if len(vs) == 0 {
		return 0, fmt.Errorf("no %s result for %s", unit, name)
	}
	return median(vs), nil
}

// median is the middle value of vs (the mean of the two middle ones for an
// even count), as benchstat reports.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// spread returns the smallest and largest of vs.
func spread(vs []float64) (lo, hi float64) {
	if len(vs) == 0 {
		return 0, 0
	}
	lo, hi = vs[0], vs[0]
	for _, v := range vs[1:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}
