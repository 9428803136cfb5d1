package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/sandboxd/sandboxd/client"
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
		return usageError(c, "give the ids of the capabilities to revoke (see `sandboxd caps GUEST`)")
	}
	return eachArg(*socket, fs.Args(), func(ctx context.Context, cl *client.Client, id string) int {
		rc, err := cl.Revoke(ctx, id, *reason)
		if err != nil {
			return daemonFailure(err)
		}
		if *asJSON {
			return printJSON(rc)
		}
		return printOut("revoked %s: %s held by %s in %v: %s\n", id, plural(len(rc.Revoked), "capability", "capabilities"),
			strings.Join(rc.Holders, ", "), rc.Took, strings.Join(rc.Revoked, " "))
	})
}

// plural is "1 capability", "2 capabilities".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
