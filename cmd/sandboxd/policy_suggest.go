package main

import (
	"fmt"

	"github.com/sandboxd/sandboxd/audit"
)

func init() {
	registerPolicySub(command{
		name:    "policy suggest",
		usage:   "--from-audit [--guest ID] [--state DIR | --log FILE]",
		summary: "print the least policy that would have allowed what guests did, as the audit log records it",
	})
}

// registerPolicySub gives a policy subcommand its own flags and usage.
func registerPolicySub(c command) { policySubs[c.name] = c }

var policySubs = map[string]command{}

// policySuggest is `sandboxd policy suggest --from-audit …`: learn from
// the audit log, then enforce what it prints.
func policySuggest(args []string) int {
	c := policySubs["policy suggest"]
	fs := newFlags(c)
	lf := addLogFlags(fs)
	fromAudit := fs.Bool("from-audit", false, "learn from the audit log (the one source there is, and required)")
	guest := fs.String("guest", "", "only what guest `ID` did (default: every guest in the log)")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if !*fromAudit {
		return usageError(c, "give --from-audit: a policy is suggested from what the audit log recorded")
	}
	if fs.NArg() > 0 {
		return usageError(c, "unexpected argument %q", fs.Arg(0))
	}
	out, err := audit.Suggest(lf.path(), *guest)
	if err != nil {
		fail("policy suggest: %v", err)
		return exitFailure
	}
	fmt.Print(out)
	return exitOK
}
