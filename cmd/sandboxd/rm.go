package main

import (
	"context"
	"flag"

	"github.com/sandboxd/sandboxd/client"
)

func init() {
	register(command{
		name:    "rm",
		usage:   "[flags] GUEST…",
		summary: "forget guests that have ended: ps -a no longer lists them, and their names are free",
		run:     rmCmd,
	})
	register(command{
		name:    "prune",
		usage:   "[flags]",
		summary: "forget every ended guest you may see (root: every user's)",
		run:     pruneCmd,
	})
}

func rmCmd(args []string) int {
	c := commands["rm"]
	fs := newFlags(c)
	socket := socketFlag(fs)
	asJSON := jsonForgottenFlag(fs)
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return usageError(c, "give the guests to forget: `sandboxd ps -a` lists them")
	}
	return eachArg(*socket, fs.Args(), func(ctx context.Context, cl *client.Client, ref string) int {
		g, err := findGuest(ctx, cl, ref)
		if err != nil {
			return daemonFailure(err)
		}
		info, err := g.Info(ctx)
		g.Release()
		if err == nil {
			err = cl.Forget(ctx, info.ID)
		}
		if err != nil {
			return daemonFailure(err)
		}
		return printForgotten(info, *asJSON)
	})
}

// forgotten is what rm --json and prune --json print for one guest.
type forgotten struct {
	ID        string
	GuestName string // launch --name, or ""
}

func jsonForgottenFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("json", false, "print each guest forgotten as a JSON object, one per line: {\"ID\", \"GuestName\"}")
}

// printForgotten prints one guest rm or prune forgot.
func printForgotten(g client.GuestInfo, asJSON bool) int {
	if asJSON {
		return printJSON(forgotten{ID: g.ID, GuestName: g.GuestName})
	}
	return printOut("%s\n", g.ID)
}

func pruneCmd(args []string) int {
	c := commands["prune"]
	fs := newFlags(c)
	socket := socketFlag(fs)
	asJSON := jsonForgottenFlag(fs)
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(c, "unexpected argument %q: prune takes only flags", fs.Arg(0))
	}
	ctx := context.Background()
	cl, code := dialDaemon(ctx, *socket)
	if cl == nil {
		return code
	}
	defer cl.Close()
	guests, err := cl.List(ctx)
	if err != nil {
		return daemonFailure(err)
	}
	status := exitOK
	for _, g := range guests {
		if g.Running {
			continue
		}
		if err := cl.Forget(ctx, g.ID); err != nil {
			status = max(status, daemonFailure(err))
			continue
		}
		status = max(status, printForgotten(g, *asJSON))
	}
	return status
}
