package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/client"
)

func init() {
	register(command{
		name:    "logs",
		usage:   "[flags] GUEST",
		summary: "print the output the daemon kept for a guest (-f: and follow it until the guest exits)",
		run:     logsCmd,
	})
}

// tailValue is --tail: "all" or a number of lines.
type tailValue struct {
	n int // lines; -1: all
}

func (v *tailValue) String() string {
	if v.n < 0 {
		return "all"
	}
	return strconv.Itoa(v.n)
}

func (v *tailValue) Set(s string) error {
	if s == "all" {
		v.n = -1
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return errors.New(`give a number of lines (0 or more) or "all"`)
	}
	v.n = n
	return nil
}

// sinceValue is --since: a duration back from now, or a time.
type sinceValue struct{ t time.Time }

func (v *sinceValue) String() string {
	if v.t.IsZero() {
		return ""
	}
	return v.t.Format(time.RFC3339Nano)
}

func (v *sinceValue) Set(s string) error {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return errors.New("a duration back from now cannot be negative: write 10m for the last ten minutes")
		}
		v.t = time.Now().Add(-d)
		return nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		v.t = t
		return nil
	}
	return errors.New("give a duration back from now (30s, 10m, 2h) or an RFC 3339 time (2026-12-05T08:00:00Z)")
}

func logsCmd(args []string) int {
	c := commands["logs"]
	fs := newFlags(c)
	socket := socketFlag(fs)
	follow := fs.Bool("follow", false, "keep printing what the guest writes until it exits")
	fs.BoolVar(follow, "f", false, "the same as --follow")
	onlyOut := fs.Bool("stdout", false, "print the guest's standard output only")
	onlyErr := fs.Bool("stderr", false, "print the guest's standard error only")
	tail := &tailValue{n: -1}
	fs.Var(tail, "tail", "print only the last `N` lines of the kept output (all: every line; 0: none, with -f only what comes next)")
	since := &sinceValue{}
	fs.Var(since, "since", "print only output written since `TIME`: a duration back from now (10m) or an RFC 3339 time")
	stamps := fs.Bool("timestamps", false, "begin each line with the time the guest wrote it (RFC 3339, UTC, nanoseconds)")
	fs.BoolVar(stamps, "t", false, "the same as --timestamps")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if *onlyOut && *onlyErr {
		return usageError(c, "--stdout and --stderr together are both streams: leave both out")
	}
	if fs.NArg() != 1 {
		return usageError(c, "give exactly one guest id: `sandboxd ps` lists them")
	}
	o := client.LogsOptions{Stdout: os.Stdout, Stderr: os.Stderr, Follow: *follow, Since: since.t, Timestamps: *stamps}
	if *onlyOut {
		o.Stderr = nil
	}
	if *onlyErr {
		o.Stdout = nil
	}
	switch {
	case tail.n == 0:
		o.NewOnly = true
	case tail.n > 0:
		o.Tail = tail.n
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	g, done, code, ok := openGuest(ctx, *socket, fs.Arg(0))
	if !ok {
		return code
	}
	defer done()
	dropped, err := g.LogsWith(ctx, o)
	if err != nil {
		if ctx.Err() != nil {
			return exitOK // interrupted while following: the user is done
		}
		return daemonFailure(err)
	}
	// The bytes missed are the first ones, or, when the guest wrote
	// faster than logs printed (-f, or a guest still running), some
	// between what was printed.
	if dropped > 0 {
		fail("%d bytes of the guest's output were not printed: the daemon no longer kept them when logs came to them (serve --log-bytes sets how much it keeps)", dropped)
	}
	return exitOK
}
