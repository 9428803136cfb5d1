package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sandboxd/sandboxd/client"
)

func init() {
	register(command{
		name:    "ps",
		usage:   "[flags]",
		summary: "list the daemon's guests: running ones and the most recently exited",
		run:     psCmd,
	})
}

func psCmd(args []string) int {
	c := commands["ps"]
	fs := newFlags(c)
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print one JSON object per guest, one per line")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(c, "unexpected argument %q: ps takes only flags", fs.Arg(0))
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
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, g := range guests {
			if err := enc.Encode(g); err != nil {
				fail("writing output: %v", err)
				return exitFailure
			}
		}
		return exitOK
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "GUEST\tMODULE\tSTATE\tSTARTED\tPRINCIPAL\tHANDLES\tLABELS")
	now := time.Now()
	for _, g := range guests {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s ago\t%s\t%d\t%s\n", g.ID, g.Name, guestState(g),
			now.Sub(g.Started).Round(time.Second), g.Principal, g.Handles, dash(strings.Join(g.Labels, ",")))
	}
	if err := w.Flush(); err != nil {
		fail("writing output: %v", err)
		return exitFailure
	}
	return exitOK
}

// guestState says in a few words whether a guest runs and how it ended.
func guestState(g client.GuestInfo) string {
	st := g.Status
	switch {
	case g.Running:
		return "running"
	case st.Killed != "":
		return "killed (" + st.Killed + ")"
	case st.Trap != "":
		return "trapped"
	case st.Signal != 0:
		name, _ := hostSignal(st.Signal)
		return "signal " + name
	}
	return fmt.Sprintf("exited %d", st.Code)
}
