package main

import (
	"context"
	"time"

	"github.com/sandboxd/sandboxd/client"
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
	asJSON := fs.Bool("json", false, "print how the guest ended as one JSON object: {\"ID\", \"Status\", \"Exit\"} (Exit: the status this command exits with)")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(c, "give exactly one guest id: `sandboxd ps` lists them")
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
	// The guest's id and --timeout, for the JSON and for the line a guest
	// its timeout ended is reported with.
	id, timeout := g.ID(), time.Duration(0)
	if info, err := g.Info(ctx); err == nil {
		id, timeout = info.ID, info.Timeout
	}
	if !*asJSON {
		return guestExit(st, timeout)
	}
	// The exit status is the guest's, as without --json; the line
	// guestExit prints for a guest sandboxd ended goes to stderr.
	exit := guestExit(st, timeout)
	if c := printJSON(waited{ID: id, Status: st, Exit: exit}); c != exitOK {
		return c
	}
	return exit
}

// waited is what wait --json prints.
type waited struct {
	ID     string
	Status client.ExitStatus
	Exit   int // the status wait exits with: the guest's code, or 124, 137, … as run's
}
