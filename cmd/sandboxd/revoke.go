package main

import (
	"context"
	"fmt"
	"strings"
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
	ctx := context.Background()
	cl, code := dialDaemon(ctx, *socket)
	if cl == nil {
		return code
	}
	defer cl.Close()
	status := exitOK
	for _, id := range fs.Args() {
		rc, err := cl.Revoke(ctx, id, *reason)
		if err != nil {
			status = max(status, daemonFailure(err))
			continue
		}
		if *asJSON {
			status = max(status, printJSON(rc))
			continue
		}
		fmt.Printf("revoked %s: %s held by %s in %v: %s\n", id, plural(len(rc.Revoked), "capability", "capabilities"),
			strings.Join(rc.Holders, ", "), rc.Took, strings.Join(rc.Revoked, " "))
	}
	return status
}

// plural is "1 capability", "2 capabilities".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
