package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/sandboxd/sandboxd/policies"
)

func init() {
	register(command{
		name:    "policy",
		usage:   "check FILE…",
		summary: "check grant-policy files: every error with file:line:column (policies are not enforced yet: docs/POLICY.md)",
		run:     policyCmd,
	})
}

// policyCmd is `sandboxd policy check FILE…`: it loads the files together,
// as one policy, and exits 0 when they load, 1 with every problem on
// stderr (one "FILE:LINE:COLUMN: message" line each) when they do not.
func policyCmd(args []string) int {
	c := commands["policy"]
	fs := newFlags(c)
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	switch {
	case fs.NArg() == 0:
		return usageError(c, "want a subcommand: check FILE…")
	case fs.Arg(0) != "check":
		return usageError(c, "unknown subcommand %q: want check", fs.Arg(0))
	case fs.NArg() == 1:
		return usageError(c, "check: want at least one policy file")
	}
	files := fs.Args()[1:]
	p, err := policies.Load(files...)
	var problems policies.Errors
	switch {
	case errors.As(err, &problems):
		for _, e := range problems {
			fmt.Fprintln(os.Stderr, e.Error())
		}
		fail("policy check: %d problem(s) in %d file(s); the policy does not load", len(problems), len(files))
		return exitFailure
	case err != nil:
		fail("policy check: %v", err)
		return exitFailure
	}
	fmt.Printf("ok: %d file(s), %d resource(s), %d rule(s)\n", len(files), len(p.Resources()), len(p.Rules()))
	return exitOK
}
