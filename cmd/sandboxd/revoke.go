package main

import (
	"context"
	"strings"

	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/internal/plural"
)

func init() {
	register(command{
		name:    "revoke",
		usage:   "[flags] CAPID…",
		summary: "revoke capabilities and everything derived from them, in every guest",
		run:     revokeCmd,
	})
}

func revokeCmd(args []string) int {
	c := commands["revoke"]
	fs := newFlags(c)
	socket := socketFlag(fs)
	reason := fs.String("reason", "", "the `REASON` recorded with the revocation (default: who revoked)")
	asJSON := fs.Bool("json", false, "print each revocation's receipt as a JSON object, one per line")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return usageError(c, "give the ids of the capabilities to revoke: `sandboxd caps GUEST` lists them")
	}
	return eachArg(*socket, fs.Args(), func(ctx context.Context, cl *client.Client, id string) int {
		rc, err := cl.Revoke(ctx, id, *reason)
		if err != nil {
			return daemonFailure(err)
		}
		if *asJSON {
			return printJSON(rc)
		}
		return printOut("revoked %s: %s held by %s in %v: %s\n", id, plural.Count(len(rc.Revoked), "capability", "capabilities"),
			heldBy(rc.Holders, rc.Others), rc.Took, strings.Join(rc.Revoked, " "))
	})
}

// heldBy says who held what a revocation cut off: the holders the daemon
// named, then how many of other users it counted without naming them (a
// receipt names only the caller's own guests and connections, unless the
// caller is root or the daemon's user).
func heldBy(holders []string, others int) string {
	named := strings.Join(holders, ", ")
	switch {
	case others == 0:
		return named
	case len(holders) == 0:
		return plural.Count(others, "holder", "holders") + " of other users"
	}
	return named + " and " + plural.Count(others, "holder", "holders") + " of other users"
}
