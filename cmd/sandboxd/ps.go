package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/client"
)

func init() {
	register(command{
		name:    "ps",
		usage:   "[flags]",
		summary: "list the daemon's running guests (-a: and the most recently ended)",
		run:     psCmd,
	})
}

func psCmd(args []string) int {
	c := commands["ps"]
	fs := newFlags(c)
	socket := socketFlag(fs)
	asJSON := fs.Bool("json", false, "print one JSON object per guest, one per line")
	all := fs.Bool("a", false, "list the guests that have ended too (the daemon keeps the 256 most recent)")
	fs.BoolVar(all, "all", false, "the same as -a")
	quiet := fs.Bool("q", false, "print the guest ids only, one per line")
	var filters stringList
	fs.Var(&filters, "filter", "list only guests that match `KEY=VALUE`: state=running|ended (ended: with or without -a), name=NAME, module=NAME, label=K=V, principal=USER|UID (repeatable: all must match)")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(c, "unexpected argument %q: ps takes only flags", fs.Arg(0))
	}
	match, ended, err := guestFilter(filters, *all)
	if err != nil {
		return usageError(c, "%v", err)
	}
	ctx := context.Background()
	cl, code := dialDaemon(ctx, *socket)
	if cl == nil {
		return code
	}
	defer cl.Close()
	if *asJSON {
		listed, err := cl.List(ctx)
		if err != nil {
			return daemonFailure(err)
		}
		var guests []client.GuestInfo
		for _, g := range listed {
			if match(g.Summary()) {
				guests = append(guests, g)
			}
		}
		return printGuestsJSON(guests)
	}
	var print func(client.GuestSummary)
	var rows table
	if *quiet {
		print = func(g client.GuestSummary) { rows.add(g.ID) }
	} else {
		rows.add("GUEST", "NAME", "MODULE", "STATE", "STARTED", "PRINCIPAL", "HANDLES", "LABELS")
		now := time.Now()
		print = func(g client.GuestSummary) {
			rows.add(g.ID, dash(g.GuestName), word(g.Name), guestState(client.GuestInfo{Running: g.Running, Status: g.Status}),
				now.Sub(g.Started).Round(time.Second).String()+" ago", g.Principal.String(), strconv.Itoa(g.Handles), dash(words(g.Labels, ",")))
		}
	}
	err = cl.Guests(ctx, ended, func(g client.GuestSummary) error {
		if match(g) {
			print(g)
		}
		return nil
	})
	var ce *client.Error
	if errors.As(err, &ce) {
		return daemonFailure(err)
	}
	if err == nil {
		err = rows.write(os.Stdout)
	}
	if err != nil {
		fail("writing output: %v", err)
		return exitFailure
	}
	return exitOK
}

// guestFilter builds the test ps applies to each guest from its --filter
// flags, and says whether ended guests are to be listed: with all, or
// when a state filter chooses by state itself (state=ended lists them
// without -a); otherwise ended guests are left out.
func guestFilter(filters []string, all bool) (match func(client.GuestSummary) bool, ended bool, err error) {
	var tests []func(client.GuestSummary) bool
	ended = all
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, false, fmt.Errorf("--filter %q: want KEY=VALUE", f)
		}
		t, err := filterTest(k, v)
		if err != nil {
			return nil, false, fmt.Errorf("--filter %q: %v", f, err)
		}
		tests = append(tests, t)
		ended = ended || k == "state"
	}
	if !ended {
		tests = append(tests, func(g client.GuestSummary) bool { return g.Running })
	}
	return func(g client.GuestSummary) bool {
		for _, t := range tests {
			if !t(g) {
				return false
			}
		}
		return true
	}, ended, nil
}

func filterTest(key, value string) (func(client.GuestSummary) bool, error) {
	switch key {
	case "state":
		if value != "running" && value != "ended" {
			return nil, fmt.Errorf("state is running or ended")
		}
		return func(g client.GuestSummary) bool { return g.Running == (value == "running") }, nil
	case "name":
		return func(g client.GuestSummary) bool { return g.GuestName == value }, nil
	case "module":
		return func(g client.GuestSummary) bool { return g.Name == value }, nil
	case "label":
		// A label is K=V: a key alone would match no guest, silently.
		if k, _, ok := strings.Cut(value, "="); !ok || k == "" {
			return nil, fmt.Errorf("a label filter is label=K=V, a key and its value (app=web)")
		}
		return func(g client.GuestSummary) bool { return slices.Contains(g.Labels, value) }, nil
	case "principal":
		// A name no user of this host has would match no guest,
		// silently: the daemon names principals from the same users.
		if _, err := strconv.ParseUint(value, 10, 32); err != nil {
			if _, err := user.Lookup(value); err != nil {
				return nil, fmt.Errorf("no user named %q on this host: give a user name or a uid", value)
			}
		}
		return func(g client.GuestSummary) bool {
			return g.Principal.Name == value || strconv.FormatUint(uint64(g.Principal.UID), 10) == value
		}, nil
	}
	return nil, fmt.Errorf("unknown key %q: want state, name, module, label or principal", key)
}

// printGuestsJSON prints ps --json's listing: one JSON object per guest,
// one per line.
func printGuestsJSON(guests []client.GuestInfo) int {
	enc := json.NewEncoder(os.Stdout)
	for _, g := range guests {
		if err := enc.Encode(g); err != nil {
			fail("writing output: %v", err)
			return exitFailure
		}
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
