package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/sandboxd/sandboxd/policies"
)

func init() {
	register(command{
		name:    "policy",
		usage:   "check FILE… | explain --policy FILE … --grant KIND:NAME prog.wasm | suggest --from-audit [--guest ID]",
		summary: "check grant-policy files, explain one grant decision as serve --policy and run --policy would make it, or suggest a policy from the audit log (docs/POLICY.md)",
		run:     policyCmd,
	})
}

// policyCmd is `sandboxd policy check FILE…` or `sandboxd policy explain
// …` (policy_explain.go).
func policyCmd(args []string) int {
	if len(args) > 0 && args[0] == "explain" {
		return policyExplain(args[1:])
	}
	if len(args) > 0 && args[0] == "suggest" {
		return policySuggest(args[1:])
	}
	c := commands["policy"]
	if len(args) > 0 && args[0] == "check" {
		c = checkCmd
		args = args[1:]
	}
	fs := newFlags(c)
	asJSON := false
	if c.name == "policy check" {
		fs.BoolVar(&asJSON, "json", false, "print the result as one JSON object: {\"OK\", \"Files\", \"Resources\", \"Rules\", \"Problems\": [{\"File\", \"Line\", \"Column\", \"Message\"}]}")
	}
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	switch {
	case c.name == "policy" && fs.NArg() == 0:
		return usageError(c, "want a subcommand: check FILE…, explain or suggest")
	case c.name == "policy":
		return usageError(c, "unknown subcommand %q: want check, explain or suggest", fs.Arg(0))
	case fs.NArg() == 0:
		return usageError(c, "want at least one policy file")
	}
	if asJSON {
		return policyCheckJSON(fs.Args())
	}
	return policyCheck(fs.Args())
}

// checked is what policy check --json prints.
type checked struct {
	OK               bool
	Files            int
	Resources, Rules int       // when OK
	Problems         []problem // when not OK, every one, ordered by file and position
}

// problem is one thing wrong in a policy file. Line and Column are 0 for a
// file that cannot be read.
type problem struct {
	File         string
	Line, Column int
	Message      string
}

// policyCheckJSON is policyCheck printing its result as JSON on stdout;
// when the files do not load it also prints the one summing-up line on
// stderr, and exits 1.
func policyCheckJSON(files []string) int {
	files = distinctFiles(files)
	p, err := policies.Load(files...)
	out := checked{OK: err == nil, Files: len(files)}
	if err == nil {
		out.Resources, out.Rules = len(p.Resources()), len(p.Rules())
		return printJSON(out)
	}
	var problems policies.Errors
	if !errors.As(err, &problems) {
		problems = policies.Errors{{Msg: err.Error()}}
	}
	out.Problems = make([]problem, len(problems))
	for i, e := range problems {
		out.Problems[i] = problem{File: e.Pos.File, Line: e.Pos.Line, Column: e.Pos.Column, Message: e.Msg}
	}
	if code := printJSON(out); code != exitOK {
		return code
	}
	fail("policy check: %d problem(s) in %d file(s); the policy does not load", len(problems), len(files))
	return exitFailure
}

// checkCmd names `policy check` in its usage line and messages.
var checkCmd = command{
	name:    "policy check",
	usage:   "FILE…",
	summary: "load the policy files together, as one policy: exit 0 when they load, 1 with every problem as FILE:LINE:COLUMN: message",
}

// policyCheck loads files together, as one policy, and exits 0 when they
// load, 1 with every problem on stderr (one "FILE:LINE:COLUMN: message"
// line each) when they do not.
func policyCheck(files []string) int {
	files = distinctFiles(files)
	p, ok := loadPolicy("policy check", files)
	if !ok {
		return exitFailure
	}
	fmt.Printf("ok: %d file(s), %d resource(s), %d rule(s)\n", len(files), len(p.Resources()), len(p.Rules()))
	return exitOK
}

// loadPolicy loads files as one policy. When they do not load it prints
// every problem on stderr, then one line summing up under verb, and
// returns ok=false.
func loadPolicy(verb string, files []string) (*policies.Policy, bool) {
	files = distinctFiles(files)
	p, err := policies.Load(files...)
	var problems policies.Errors
	switch {
	case errors.As(err, &problems):
		for _, e := range problems {
			fmt.Fprintln(os.Stderr, problemLine(e))
		}
		fail("%s: %d problem(s) in %d file(s); the policy does not load", verb, len(problems), len(files))
		return nil, false
	case err != nil:
		fail("%s: %v", verb, err)
		return nil, false
	}
	return p, true
}

// distinctFiles is files without those that name a file named before
// (p.hcl and ./p.hcl, a glob and one of its files): a file is one part of
// the policy however often it is given, and loaded twice its every rule
// would clash with itself. A file that cannot be stat'ed is kept, for
// Load to report.
func distinctFiles(files []string) []string {
	var out []string
	var seen []os.FileInfo
	for _, f := range files {
		fi, err := os.Stat(f)
		if err == nil && slices.ContainsFunc(seen, func(s os.FileInfo) bool { return os.SameFile(s, fi) }) {
			continue
		}
		if err == nil {
			seen = append(seen, fi)
		}
		out = append(out, f)
	}
	return out
}

// problemLine is how a policy problem is printed: a directory given as a
// policy file, which cannot be read as one, is named as a directory with
// the files to give instead (serve --policy takes the directory).
func problemLine(e policies.Error) string {
	if fi, err := os.Stat(e.Pos.File); e.Pos.Line == 0 && err == nil && fi.IsDir() {
		return fmt.Sprintf("%s: is a directory: give the policy's files (%s)", e.Pos.File, filepath.Join(e.Pos.File, "*.hcl"))
	}
	return e.Error()
}
