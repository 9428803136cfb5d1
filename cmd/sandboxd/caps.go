package main

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"time"
)

func init() {
	register(command{
		name:    "caps",
		usage:   "[flags] GUEST",
		summary: "list a guest's handles: fd, capability id, kind, name, rights and provenance",
		run:     capsCmd,
	})
}

func capsCmd(args []string) int {
	c := commands["caps"]
	fs := newFlags(c)
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print one JSON object per handle, one per line")
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
	handles, err := g.Caps(ctx)
	if err != nil {
		return daemonFailure(err)
	}
	if len(handles) == 0 && !*asJSON {
		if info, err := g.Info(ctx); err == nil && !info.Running {
			return printOut("%s has ended (%s): it holds no handles\n", info.ID, printable(guestState(info)))
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, h := range handles {
			if err := enc.Encode(h); err != nil {
				fail("writing output: %v", err)
				return exitFailure
			}
		}
		return exitOK
	}
	var rows table
	rows.add("FD", "CAP", "KIND", "NAME", "RIGHTS", "EDGE", "PARENT", "LEASE", "ORIGIN", "BY")
	now := time.Now()
	for _, h := range handles {
		ci := h.Cap
		rights := ci.Rights
		if ci.Revoked {
			rights = "REVOKED"
		}
		fd := strconv.FormatUint(uint64(h.FD), 10)
		if h.Pending {
			fd = "pending"
		}
		rows.add(fd, ci.ID, ci.Kind, dashWord(ci.Name), rights, ci.Edge, dash(ci.Parent), leaseLeft(ci.Expires, now), dashWord(ci.Origin), dash(ci.By))
	}
	if err := rows.write(os.Stdout); err != nil {
		fail("writing output: %v", err)
		return exitFailure
	}
	return exitOK
}

// leaseLeft says how long a lease has to run ("29s left"), "-" for no
// lease, or "expired".
func leaseLeft(expires, now time.Time) string {
	switch {
	case expires.IsZero():
		return "-"
	case !expires.After(now):
		return "expired"
	}
	return expires.Sub(now).Round(time.Second).String() + " left"
}

// dashWord is dash(s), s quoted as a cell by word when it would not read
// back as itself (a name or path with a space).
func dashWord(s string) string {
	if s == "" {
		return "-"
	}
	return word(s)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
