package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/internal/plural"
)

func init() {
	register(command{
		name:    "audit",
		usage:   "log|verify|graph|who-can|trace|what-if [flags] [args…]",
		summary: "read and verify the audit log; ask the delegation graph who holds what and how",
		run:     auditCmd,
	})
}

// auditVerbs are audit's subcommands, each a command of its own for its
// flags and usage.
var auditVerbs = map[string]command{}

func registerAudit(c command) { auditVerbs[strings.TrimPrefix(c.name, "audit ")] = c }

func auditCmd(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		// Asked for, the usage goes to stdout; as a usage error (no
		// subcommand), to stderr, as `sandboxd` alone prints its help.
		w, code := os.Stdout, exitOK
		if len(args) == 0 {
			w, code = os.Stderr, exitUsage
		}
		fmt.Fprintln(w, "Usage: sandboxd audit SUBCOMMAND [flags] [args…]\n\nSubcommands:")
		names := make([]string, 0, len(auditVerbs))
		for n := range auditVerbs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(w, "  %-8s %s\n", n, auditVerbs[n].summary)
		}
		fmt.Fprintln(w, "\nRun `sandboxd audit SUBCOMMAND -h` for its flags. docs/AUDIT.md explains the log.")
		return code
	}
	c, ok := auditVerbs[args[0]]
	if !ok {
		fail("audit: unknown subcommand %q: use log, verify, graph, who-can, trace or what-if", args[0])
		return exitUsage
	}
	return c.run(args[1:])
}

// logFlags are the flags naming an audit log file.
type logFlags struct {
	state, file *string
}

func addLogFlags(fs *flag.FlagSet) logFlags {
	return logFlags{
		state: fs.String("state", daemon.DefaultStateDir(), "the daemon's state `DIR`, whose audit.jsonl is read"),
		file:  fs.String("log", "", "read the audit log in `FILE` instead (one written by run --audit, or a copy)"),
	}
}

// path is the log the flags name.
func (f logFlags) path() string {
	if *f.file != "" {
		return *f.file
	}
	return filepath.Join(*f.state, daemon.AuditLogName)
}

func init() {
	registerAudit(command{
		name:    "audit verify",
		usage:   "[flags]",
		summary: "check the audit log's hash chain, and that it extends a head kept earlier; name the first record edited, deleted, moved or cut off",
		run:     auditVerifyCmd,
	})
}

func auditVerifyCmd(args []string) int {
	c := auditVerbs["verify"]
	fs := newFlags(c)
	lf := addLogFlags(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	var headTexts stringList
	fs.Var(&headTexts, "head", "check that the log still extends the head `SEQ:SHA256` an earlier verify printed (head seq and sha256), kept elsewhere: a chain alone shows neither records cut off its end nor a log rewritten whole (repeatable)")
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(c, "unexpected argument %q", fs.Arg(0))
	}
	var heads []audit.Head
	for _, t := range headTexts {
		h, err := audit.ParseHead(t)
		if err != nil {
			return usageError(c, "--head: %v", err)
		}
		heads = append(heads, h)
	}
	rep, err := audit.Verify(lf.path(), heads...)
	if err != nil {
		fail("audit verify: %v", err)
		return exitFailure
	}
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(rep)
	} else {
		printReport(rep)
	}
	if rep.Bad != nil {
		return exitFailure
	}
	return exitOK
}

func printReport(rep audit.Report) {
	if rep.Bad != nil {
		fail("audit log broken at %s", rep.Bad)
		fmt.Printf("%d records verified before it\n", rep.Records)
		files := "its files"
		if len(rep.Files) > 0 {
			files = rep.Files[0] + "*"
		}
		fmt.Printf("what the log holds from there on cannot be trusted, and audit log, graph, who-can, trace, what-if and policy suggest refuse it; keep its files as they are to find out what was done. Its writer (serve, or run --audit) goes on appending to it: to start a chain they answer from again, stop the writer and move %s aside\n", files)
		return
	}
	fmt.Printf("ok: %d records in %d file(s), chain intact; head seq %d sha256 %s\n", rep.Records, len(rep.Files), rep.HeadSeq, rep.Head)
	for _, h := range rep.Kept {
		fmt.Printf("ok: the log extends the head kept, seq %d sha256 %s\n", h.Seq, h.SHA256)
	}
	if p := rep.Pruned; p != nil {
		fmt.Printf("note: records %d to %d were removed to keep the log within --audit-max-size; %s stands for them, as its prune record declares\n", p.FromSeq, p.ToSeq, p.Checkpoint)
	}
	if rep.Torn != nil {
		fmt.Printf("note: the last line (%s) is incomplete: a write cut short by a crash, never acknowledged; the next writer (sandboxd serve, or run --audit) drops it when it opens the log\n", rep.Torn)
	}
}

// summary is one record in a line, for `audit log`.
func summary(r audit.Record) string {
	head := fmt.Sprintf("%6d %s %-13s", r.Seq, r.Time.Format("2006-01-02T15:04:05.000000Z"), r.Type)
	switch {
	case r.Receipt != nil:
		rc := r.Receipt
		return fmt.Sprintf("%s %s: %d revoked, holders %s, reason %q: %s", head, rc.Root, len(rc.Revoked), strings.Join(rc.Holders, ","), rc.Reason, strings.Join(rc.Revoked, " "))
	case r.Cap != nil:
		c := r.Cap
		s := fmt.Sprintf("%s %s %s %q holder %s rights %s", head, c.ID, c.Kind, c.Name, orDash(c.Holder), c.Base)
		if c.Parent != "" {
			s += " parent " + c.Parent + " edge " + c.Edge
		}
		if c.Origin != "" {
			s += fmt.Sprintf(" from %q", c.Origin)
		}
		return s + audit.ByLine(c.By, c.ByUID)
	case r.Decision != nil:
		d := r.Decision
		verdict := "denied"
		if d.Allowed {
			verdict = "allowed"
		}
		return fmt.Sprintf("%s %s %s %s to %s by %s", head, d.Op, d.Resource, verdict, orDash(d.To), d.Rule)
	case r.Guest != nil:
		g := r.Guest
		switch r.Type {
		case audit.TypeGuestExit:
			return fmt.Sprintf("%s %s %s code %d%s", head, g.ID, g.Module, g.Code, exitNote(g))
		case audit.TypeGuestExec:
			return fmt.Sprintf("%s %s now runs %s sha256 %s", head, g.ID, g.Module, short(g.SHA256))
		case audit.TypeGuestSpawn:
			return fmt.Sprintf("%s %s %s sha256 %s spawned by %s", head, g.ID, g.Module, short(g.SHA256), g.Parent)
		}
		return fmt.Sprintf("%s %s %s sha256 %s by %s grants %s", head, g.ID, g.Module, short(g.SHA256), g.Principal, strings.Join(g.Grants, " "))
	case r.Type == audit.TypeShutdown:
		return fmt.Sprintf("%s ended %s still running", head, plural.Count(r.Running, "guest", "guests"))
	case r.Pruned != nil:
		p := r.Pruned
		return fmt.Sprintf("%s records %d to %d (%s) removed past --audit-max-size, checkpoint sha256 %s", head, p.FromSeq, p.ToSeq, strings.Join(p.Files, " "), short(p.Checkpoint))
	case r.Type == audit.TypeOpen && r.Discarded > 0:
		return fmt.Sprintf("%s (an incomplete last line of %d bytes, never acknowledged, was dropped)", head, r.Discarded)
	}
	return strings.TrimRight(head, " ")
}

func exitNote(g *audit.GuestRecord) string {
	switch {
	case g.Killed != "":
		return " killed: " + g.Killed
	case g.Trap != "":
		return " trap: " + g.Trap
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
