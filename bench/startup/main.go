// Command startup times how long programs take from exec to exit status,
// interleaved: each round runs every command once, in an order that
// rotates from round to round, so that drift on a shared machine falls on
// all of them alike. It prints a Markdown table: wall-clock p50 and p90,
// the CPU time the process used (user + system, p50), and against the
// first command the ratio of the p50s and the median of the per-round
// ratios (each round's time over the first command's in the same round).
// bench/startup.sh builds the programs and calls it.
//
//	startup -n 300 -cmd 'hello=./hello' -cmd 'help=./sandboxd help' \
//	        -cmd 'launch:7=./sandboxd launch --socket s.sock hello.wasm'\
//	        -pair help/hello
//
// A command is LABEL[:STATUS]=ARGV, ARGV split at spaces, its first words
// NAME=VALUE settings added to the environment as a shell would; a run
// whose exit status is not STATUS (default 0) stops the measurement. -inittrace
// LABEL runs that command once more with GODEBUG=inittrace=1 and prints
// the packages whose initialisation took longest.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type command struct {
	label  string
	status int
	env    []string // NAME=VALUE words before the program
	argv   []string
	wall   []time.Duration // by round
	cpu    []time.Duration
}

type commandList []*command

func (l *commandList) String() string { return fmt.Sprint(len(*l)) }

func (l *commandList) Set(s string) error {
	label, argv, ok := strings.Cut(s, "=")
	if !ok || label == "" || len(strings.Fields(argv)) == 0 {
		return fmt.Errorf("want LABEL[:STATUS]=ARGV, got %q", s)
	}
	c := &command{argv: strings.Fields(argv)}
	for len(c.argv) > 1 && strings.Contains(c.argv[0], "=") {
		c.env, c.argv = append(c.env, c.argv[0]), c.argv[1:]
	}
	c.label, c.status = label, 0
	if l, st, ok := strings.Cut(label, ":"); ok {
		n, err := strconv.Atoi(st)
		if err != nil {
			return fmt.Errorf("%q: the status after %q is not a number", s, l)
		}
		c.label, c.status = l, n
	}
	*l = append(*l, c)
	return nil
}

func main() {
	var cmds commandList
	rounds := flag.Int("n", 200, "timed rounds (each runs every command once)")
	warmup := flag.Int("warmup", 10, "untimed rounds first")
	trace := flag.String("inittrace", "", "label of a Go command whose package initialisation to report")
	var pairs pairList
	flag.Var(&cmds, "cmd", "LABEL[:STATUS]=ARGV, repeatable; the first is the reference")
	flag.Var(&pairs, "pair", "A/B: also report A's time over B's (labels), repeatable")
	flag.Parse()
	if len(cmds) == 0 {
		fmt.Fprintln(os.Stderr, "startup: give at least one -cmd LABEL=ARGV")
		os.Exit(2)
	}
	for r := 0; r < *warmup+*rounds; r++ {
		for i := range cmds {
			c := cmds[(i+r)%len(cmds)]
			wall, cpu, err := runOnce(c)
			if err != nil {
				fmt.Fprintf(os.Stderr, "startup: %s: %v\n", c.label, err)
				os.Exit(1)
			}
			if r >= *warmup {
				c.wall, c.cpu = append(c.wall, wall), append(c.cpu, cpu)
			}
		}
	}
	report(cmds)
	for _, p := range pairs {
		a, b := cmds.find(p[0]), cmds.find(p[1])
		if a == nil || b == nil {
			fmt.Fprintf(os.Stderr, "startup: -pair %s/%s: no such command\n", p[0], p[1])
			os.Exit(2)
		}
		fmt.Printf("- %s / %s: p50 over p50 %.2f, median per-round ratio %.2f\n", a.label, b.label,
			float64(pct(a.wall, 50))/float64(pct(b.wall, 50)), medianRatio(a, b))
	}
	if *trace != "" {
		for _, c := range cmds {
			if c.label == *trace {
				initTrace(c)
			}
		}
	}
}

// runOnce runs c with its output discarded and returns its wall time,
// from just before exec to just after the exit status was read, and the
// CPU time the process used.
func runOnce(c *command) (wall, cpu time.Duration, err error) {
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Env = append(os.Environ(), c.env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	err = cmd.Run()
	wall = time.Since(t0)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code, err = ee.ExitCode(), nil
	}
	if err != nil {
		return 0, 0, err
	}
	if code != c.status {
		return 0, 0, fmt.Errorf("exit status %d, want %d (stderr: %s)", code, c.status, strings.TrimSpace(stderr.String()))
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return wall, cpu, nil
}

func report(cmds commandList) {
	ref := cmds[0]
	fmt.Printf("| command | p50 | p90 | CPU p50 | p50 / %s p50 | median per-round ratio |\n|---|---|---|---|---|---|\n", ref.label)
	for _, c := range cmds {
		p50 := pct(c.wall, 50)
		fmt.Printf("| %s (`%s`) | %s | %s | %s | %.2f | %.2f |\n", c.label, strings.Join(append(append([]string(nil), c.env...), c.argv...), " "),
			ms(p50), ms(pct(c.wall, 90)), ms(pct(c.cpu, 50)), float64(p50)/float64(pct(ref.wall, 50)), medianRatio(c, ref))
	}
	fmt.Printf("\n%d rounds, interleaved.\n\n", len(ref.wall))
}

// medianRatio is the median over rounds of a's wall time over b's.
func medianRatio(a, b *command) float64 {
	rs := make([]float64, len(a.wall))
	for i := range a.wall {
		rs[i] = float64(a.wall[i]) / float64(b.wall[i])
	}
	sort.Float64s(rs)
	return rs[len(rs)/2]
}

func (l commandList) find(label string) *command {
	for _, c := range l {
		if c.label == label {
			return c
		}
	}
	return nil
}

type pairList [][2]string

func (l *pairList) String() string { return fmt.Sprint(*l) }

func (l *pairList) Set(s string) error {
	a, b, ok := strings.Cut(s, "/")
	if !ok {
		return fmt.Errorf("want A/B, got %q", s)
	}
	*l = append(*l, [2]string{a, b})
	return nil
}

// initTrace runs c once with GODEBUG=inittrace=1 and prints the total
// time its packages' initialisation took and the ten slowest.
func initTrace(c *command) {
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Env = append(append(os.Environ(), c.env...), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	_ = cmd.Run()
	type pkg struct {
		name string
		ms   float64
	}
	var pkgs []pkg
	total := 0.0
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		// init PKG @T ms, D ms clock, B bytes, A allocs
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[0] != "init" {
			continue
		}
		d, err := strconv.ParseFloat(f[4], 64)
		if err != nil {
			continue
		}
		pkgs = append(pkgs, pkg{f[1], d})
		total += d
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].ms > pkgs[j].ms })
	fmt.Printf("\n`GODEBUG=inittrace=1 %s`: %d packages with init work, %.2f ms in all; the slowest:\n\n", strings.Join(c.argv, " "), len(pkgs), total)
	for i := 0; i < len(pkgs) && i < 10; i++ {
		fmt.Printf("- %s %.3f ms\n", pkgs[i].name, pkgs[i].ms)
	}
}

func pct(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
