package main

import (
	"context"
	"fmt"

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
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return usageError(c, "give the ids of the guests to kill (see `sandboxd ps`)")
	}
	ctx := context.Background()
	cl, code := dialDaemon(ctx, *socket)
	if cl == nil {
		return code
	}
	defer cl.Close()
	status := exitOK
	for _, id := range fs.Args() {
		g, err := findGuest(ctx, cl, id)
		if err != nil {
			status = max(status, daemonFailure(err))
			continue
		}
		name := g.ID() // as given: a name or an id's prefix, until Info says
		info, err := g.Info(ctx)
		if err == nil {
			name = info.ID
		}
		if err == nil && !info.Running {
			g.Release()
			fmt.Printf("%s\talready ended: %s\n", name, guestState(info))
			continue
		}
		st, err := g.Kill(ctx, *reason)
		g.Release()
		if err != nil {
			status = max(status, daemonFailure(err))
			continue
		}
		fmt.Printf("%s\t%s\n", name, guestState(client.GuestInfo{Status: st}))
	}
	return status
}
