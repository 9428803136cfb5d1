package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func init() {
	register(command{
		name:    "logs",
		usage:   "[flags] GUEST",
		summary: "print the output the daemon kept for a guest (-f: and follow it until the guest exits)",
		run:     logsCmd,
	})
}

func logsCmd(args []string) int {
	c := commands["logs"]
	fs := newFlags(c)
	socket := socketFlag(fs)
	follow := fs.Bool("follow", false, "keep printing what the guest writes until it exits")
	fs.BoolVar(follow, "f", false, "the same as --follow")
	onlyOut := fs.Bool("stdout", false, "print the guest's standard output only")
	onlyErr := fs.Bool("stderr", false, "print the guest's standard error only")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if *onlyOut && *onlyErr {
		return usageError(c, "--stdout and --stderr together are both streams: leave both out")
	}
	var stdout, stderr io.Writer = os.Stdout, os.Stderr
	if *onlyOut {
		stderr = io.Discard
	}
	if *onlyErr {
		stdout = io.Discard
	}
	if fs.NArg() != 1 {
		return usageError(c, "give exactly one guest id (see `sandboxd ps`)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	g, done, code, ok := openGuest(ctx, *socket, fs.Arg(0))
	if !ok {
		return code
	}
	defer done()
	dropped, err := g.Logs(ctx, stdout, stderr, *follow)
	if err != nil {
		if ctx.Err() != nil {
			return exitOK // interrupted while following: the user is done
		}
		return daemonFailure(err)
	}
	if dropped > 0 {
		fail("the first %d bytes of the guest's output were no longer kept (serve --log-bytes sets how much is)", dropped)
	}
	return exitOK
}
