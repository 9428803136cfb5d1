package main

import (
	"context"
)

func init() {
	register(command{
		name:    "wait",
		usage:   "[flags] GUEST",
		summary: "wait for a guest of the daemon to exit, and exit with its status",
		run:     waitCmd,
	})
}

func waitCmd(args []string) int {
	c := commands["wait"]
	fs := newFlags(c)
	socket := socketFlag(fs)
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(c, "give exactly one guest id (see `sandboxd ps`)")
	}
	ctx := context.Background()
	g, done, code, ok := openGuest(ctx, *socket, fs.Arg(0))
	if !ok {
		return code
	}
	defer done()
	st, err := g.Wait(ctx)
	if err != nil {
		return daemonFailure(err)
	}
	return guestExit(st, 0)
}
