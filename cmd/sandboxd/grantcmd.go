package main

import (
	"context"
)

func init() {
	register(command{
		name:    "grant",
		usage:   "[flags] GUEST --grant KIND:SOURCE[=GUEST][:ro]…",
		summary: "give a running guest new handles, which it receives on its supervisor channel",
		run:     grantCmd,
	})
}

func grantCmd(args []string) int {
	c := commands["grant"]
	fs := newFlags(c)
	socket := socketFlag(fs)
	var grantTexts stringList
	fs.Var(&grantTexts, "grant", "a handle to give: `KIND:SOURCE[=GUEST][:ro]`, or cap:ID for a capability you hold (repeatable; docs/GRANTS.md)")
	asJSON := fs.Bool("json", false, "print each new capability as a JSON object (as caps --json prints a handle's), one per line")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(c, "give exactly one guest id: `sandboxd ps` lists them")
	}
	id := fs.Arg(0)
	if len(grantTexts) == 0 {
		return usageError(c, "nothing to grant: give at least one --grant")
	}
	grants, err := daemonGrants(grantTexts)
	if err != nil {
		return usageError(c, "%v", err)
	}
	ctx := context.Background()
	g, done, code, ok := openGuest(ctx, *socket, id)
	if !ok {
		return code
	}
	defer done()
	// A grant made is not undone by output that cannot be written: the
	// others are made too, and the status says the output failed.
	status := exitOK
	for _, gr := range grants {
		info, err := g.Grant(ctx, gr)
		if err != nil {
			return daemonFailure(err)
		}
		if *asJSON {
			status = max(status, printJSON(info))
			continue
		}
		// The id is what `sandboxd revoke` takes.
		status = max(status, printOut("%s\t%s\t%s\t%s\n", info.ID, info.Kind, info.Name, info.Rights))
	}
	return status
}
