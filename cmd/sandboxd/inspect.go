package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/sandboxd/sandboxd/abi"
	"os"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/client"
)

func init() {
	register(command{
		name:    "inspect",
		usage:   "[flags] GUEST",
		summary: "describe one guest: module, principal, labels, grants, limits, times, state and handles",
		run:     inspectCmd,
	})
}

// inspection is what `inspect --json` prints: the guest and its handles.
type inspection struct {
	client.GuestInfo
	HandleTable []client.Handle `json:"HandleTable"`
}

func inspectCmd(args []string) int {
	c := commands["inspect"]
	fs := newFlags(c)
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print one JSON object: the guest's description (as ps --json) and its handles (as caps --json)")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(c, "give exactly one guest id or name")
	}
	ctx := context.Background()
	g, done, code, ok := openGuest(ctx, *socket, fs.Arg(0))
	if !ok {
		return code
	}
	defer done()
	info, err := g.Info(ctx)
	if err != nil {
		return daemonFailure(err)
	}
	handles, err := g.Caps(ctx)
	if err != nil {
		return daemonFailure(err)
	}
	if *asJSON {
		if err := json.NewEncoder(os.Stdout).Encode(inspection{GuestInfo: info, HandleTable: handles}); err != nil {
			fail("writing output: %v", err)
			return exitFailure
		}
		return exitOK
	}
	return printOut("%s", inspectionText(info, handles))
}

// inspectionText is one guest as "key: value" lines, then its handles.
func inspectionText(g client.GuestInfo, handles []client.Handle) string {
	var rows table
	row := func(k, v string) { rows.add(k+":", v) }
	row("guest", g.ID)
	row("name", dash(g.GuestName))
	row("module", g.Name+" (sha256 "+g.SHA256+")")
	row("args", dash(words(g.Args, " ")))
	row("principal", g.Principal.String())
	row("labels", dash(words(g.Labels, ",")))
	row("grants", dash(words(g.Grants, " ")))
	row("deny", dash(words(g.Deny, " ")))
	timeout := "none"
	if g.Timeout > 0 {
		timeout = g.Timeout.String()
	}
	row("limits", fmt.Sprintf("memory %s, timeout %s, max fds %d, max stack %s", abi.SizeText(g.MemoryLimit), timeout, g.MaxFDs, abi.SizeText(g.MaxStack)))
	row("state", guestState(g))
	row("started", g.Started.Format(time.RFC3339Nano))
	if !g.Ended.IsZero() {
		row("ended", g.Ended.Format(time.RFC3339Nano)+" (ran "+g.Ended.Sub(g.Started).String()+")")
	}
	row("detached", fmt.Sprint(g.Detached))
	row("handles", fmt.Sprint(len(handles)))
	var b strings.Builder
	_ = rows.write(&b) // a strings.Builder does not fail
	for _, h := range handles {
		// A grant the guest has not received yet has no fd (caps: pending).
		fd := fmt.Sprintf("fd %d", h.FD)
		if h.Pending {
			fd = "pending"
		}
		by := ""
		if h.Cap.By != "" {
			by = ", by " + h.Cap.By
		}
		fmt.Fprintf(&b, "  %s\t%s\n", fd, printable(fmt.Sprintf("%s %s %q rights %s (edge %s, origin %s%s)", h.Cap.ID, h.Cap.Kind, h.Cap.Name, h.Cap.Rights, h.Cap.Edge, dash(h.Cap.Origin), by)))
	}
	return b.String()
}
