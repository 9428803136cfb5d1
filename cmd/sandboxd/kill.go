package main

import (
	"context"

	"github.com/sandboxd/sandboxd/client"
)

func init() {
	register(command{
		name:    "kill",
		usage:   "[flags] GUEST…",
		summary: "kill guests of the daemon and wait until they have exited",
		run:     killCmd,
	})
}

func killCmd(args []string) int {
	c := commands["kill"]
	fs := newFlags(c)
	socket := socketFlag(fs)
	reason := fs.String("reason", "sandboxd kill", "the `REASON` recorded as the guests' end")
	asJSON := fs.Bool("json", false, "print each guest's end as a JSON object, one per line: {\"ID\", \"AlreadyEnded\", \"Status\"}")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return usageError(c, "give the ids of the guests to kill: `sandboxd ps` lists them")
	}
	// The daemon records a guest its --timeout ended with this reason, and
	// wait, ps and inspect report it so (wait exits 124): a kill must not
	// pass for one.
	if *reason == client.KilledByTimeout {
		return usageError(c, "--reason %q is what the daemon records when a guest's --timeout passes (wait then exits 124): give another reason", *reason)
	}
	return eachArg(*socket, fs.Args(), func(ctx context.Context, cl *client.Client, id string) int {
		g, err := findGuest(ctx, cl, id)
		if err != nil {
			return daemonFailure(err)
		}
		defer g.Release()
		name := g.ID() // as given: a name or an id's prefix, until Info says
		info, err := g.Info(ctx)
		if err == nil {
			name = info.ID
		}
		ended := err == nil && !info.Running
		st := info.Status
		if !ended {
			st, err = g.Kill(ctx, *reason)
		}
		if err != nil {
			return daemonFailure(err)
		}
		return printKilled(name, st, ended, *asJSON)
	})
}

// killed is what kill --json prints for one guest.
type killed struct {
	ID           string
	AlreadyEnded bool // it had ended before kill asked
	Status       client.ExitStatus
}

// printKilled prints how one guest ended, and returns the exit status.
func printKilled(id string, st client.ExitStatus, already, asJSON bool) int {
	if asJSON {
		return printJSON(killed{ID: id, AlreadyEnded: already, Status: st})
	}
	state := guestState(client.GuestInfo{Status: st})
	if already {
		state = "already ended: " + state
	}
	return printOut("%s\t%s\n", id, printable(state))
}
