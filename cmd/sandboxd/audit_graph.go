package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/internal/plural"
)

func init() {
	for _, c := range []command{
		{name: "audit graph", usage: "[flags]", summary: "print the delegation graph: every capability, its holder, rights and where it came from"},
		{name: "audit who-can", usage: "[flags] RESOURCE", summary: "list every holder that can reach RESOURCE (sock:db, dir:/srv/data, a path), each with its chain back to the grant"},
		{name: "audit trace", usage: "[flags] CAPID", summary: "show how the holder of a capability got it: the chain from its grant"},
		{name: "audit what-if", usage: "[flags] --revoke CAPID", summary: "show what revoking a capability would cut off, without revoking it"},
	} {
		c.run = func(args []string) int { return auditQueryCmd(c.name, args) }
		registerAudit(c)
	}
}

// queryFlags are the flags of the graph queries.
type queryFlags struct {
	socket, at, file, format, revoke *string
	asJSON                           *bool
}

func addQueryFlags(fs *flag.FlagSet, name string) queryFlags {
	q := queryFlags{
		socket: socketFlag(fs),
		at:     fs.String("at", "", "answer on the graph as of `TIME` (RFC 3339, e.g. 2026-05-01T12:00:00Z), rebuilt from the audit log"),
		file:   fs.String("log", "", "answer from the audit log in `FILE` (one written by run --audit, or a copy) instead of asking the daemon"),
	}
	if name == "audit graph" {
		q.format = fs.String("format", "text", "print the graph as `FORMAT`: text, json or dot (Graphviz: | dot -Tsvg)")
		q.asJSON = fs.Bool("json", false, "print the graph as --format json does, on one line")
	} else {
		q.asJSON = fs.Bool("json", false, "print the answer as JSON")
	}
	if name == "audit what-if" {
		q.revoke = fs.String("revoke", "", "the capability `CAPID` whose revocation to consider")
	}
	return q
}

func auditQueryCmd(name string, args []string) int {
	c := auditVerbs[strings.TrimPrefix(name, "audit ")]
	fs := newFlags(c)
	qf := addQueryFlags(fs, name)
	if code, ok := parseFlags(c, fs, args); !ok {
		return code
	}
	kind := strings.TrimPrefix(name, "audit ")
	arg, code, ok := queryArg(c, kind, qf, fs.Args())
	if !ok {
		return code
	}
	var at time.Time
	if *qf.at != "" {
		var err error
		if at, err = time.Parse(time.RFC3339Nano, *qf.at); err != nil {
			return usageError(c, "--at %q is not an RFC 3339 time such as 2026-05-01T12:00:00Z", *qf.at)
		}
	}
	data, code := answer(kind, arg, at, qf)
	if data == nil {
		return code
	}
	if err := printAnswer(kind, data, qf); err != nil {
		fail("audit %s: %v", kind, err)
		return exitFailure
	}
	return exitOK
}

// queryArg checks the query's argument.
func queryArg(c command, kind string, qf queryFlags, rest []string) (string, int, bool) {
	switch kind {
	case audit.QueryGraph:
		if len(rest) > 0 {
			return "", usageError(c, "unexpected argument %q", rest[0]), false
		}
		if *qf.asJSON && *qf.format != "text" {
			return "", usageError(c, "--json and --format %s ask for two formats: give one", *qf.format), false
		}
		if f := *qf.format; f != "text" && f != "json" && f != "dot" {
			return "", usageError(c, "--format %q is not one of text, json, dot", f), false
		}
		return "", exitOK, true
	case audit.QueryWhatIf:
		if *qf.revoke == "" || len(rest) > 0 {
			return "", usageError(c, "name the capability with --revoke CAPID, and nothing else"), false
		}
		return *qf.revoke, exitOK, true
	}
	if len(rest) != 1 {
		return "", usageError(c, "give exactly one %s", map[string]string{audit.QueryWhoCan: "RESOURCE", audit.QueryTrace: "CAPID"}[kind]), false
	}
	if kind == audit.QueryWhoCan {
		// A relative path is one here, where it is asked: the daemon, or
		// the log's grants, are elsewhere.
		res, err := audit.AbsResource(rest[0], filepath.Abs)
		if err != nil {
			return "", usageError(c, "RESOURCE %q: %v", rest[0], err), false
		}
		return res, exitOK, true
	}
	return rest[0], exitOK, true
}

// answer asks the daemon, or reads the log named by --log, and returns
// the answer's JSON document, or nil and the exit status.
func answer(kind, arg string, at time.Time, qf queryFlags) ([]byte, int) {
	if *qf.file == "" {
		ctx := context.Background()
		cl, code := dialDaemon(ctx, *qf.socket)
		if cl == nil {
			return nil, code
		}
		defer cl.Close()
		data, err := cl.Audit(ctx, kind, arg, at)
		if err != nil {
			return nil, daemonFailure(err)
		}
		return data, exitOK
	}
	g, err := audit.Replay(*qf.file, at)
	if err != nil {
		fail("audit %s: %v", kind, err)
		return nil, exitFailure
	}
	doc, err := g.Answer(kind, arg)
	if err != nil {
		fail("audit %s: %v", kind, err)
		return nil, exitFailure
	}
	data, err := json.Marshal(doc)
	if err != nil {
		fail("audit %s: %v", kind, err)
		return nil, exitFailure
	}
	return data, exitOK
}

// printGraph renders g in format. Module names and grant paths are text
// others chose: each line of the text and the dot is printed with its
// control characters escaped (JSON escapes them itself).
func printGraph(g *audit.Graph, format string) error {
	if format == "json" {
		return g.Render(os.Stdout, format)
	}
	var b bytes.Buffer
	if err := g.Render(&b, format); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(b.String(), "\n") {
		text, nl := strings.CutSuffix(line, "\n")
		if _, err := fmt.Print(printable(text)); err != nil {
			return err
		}
		if nl {
			fmt.Println()
		}
	}
	return nil
}

// printAnswer prints a query's JSON document as asked.
func printAnswer(kind string, data []byte, qf queryFlags) error {
	if qf.asJSON != nil && *qf.asJSON && kind == audit.QueryGraph {
		// --format json's document, on one line as every --json prints.
		var d audit.GraphDoc
		if err := json.Unmarshal(data, &d); err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(audit.FromDoc(d).Doc())
	}
	if qf.asJSON != nil && *qf.asJSON {
		_, err := fmt.Printf("%s\n", data)
		return err
	}
	switch kind {
	case audit.QueryGraph:
		var d audit.GraphDoc
		if err := json.Unmarshal(data, &d); err != nil {
			return err
		}
		return printGraph(audit.FromDoc(d), *qf.format)
	case audit.QueryWhoCan:
		var rs []audit.Reach
		if err := json.Unmarshal(data, &rs); err != nil {
			return err
		}
		printReach(rs)
	case audit.QueryTrace:
		var steps []audit.Step
		if err := json.Unmarshal(data, &steps); err != nil {
			return err
		}
		for i, s := range steps {
			fmt.Printf("%d. %s\n", i+1, printable(stepText(s)))
		}
	case audit.QueryWhatIf:
		var cut audit.Cut
		if err := json.Unmarshal(data, &cut); err != nil {
			return err
		}
		fmt.Println(printable(fmt.Sprintf("revoking %s would cut off %s held by %s: %s", cut.Root, plural.Count(len(cut.Revoked), "capability", "capabilities"), strings.Join(cut.Holders, ", "), strings.Join(cut.Revoked, " "))))
	}
	return nil
}

func printReach(rs []audit.Reach) {
	if len(rs) == 0 {
		fmt.Println("no live capability reaches it")
	}
	for _, r := range rs {
		holder := orDash(r.Holder) + moduleNote(r.Module)
		if r.Holder == "" {
			holder = audit.InFlightText(r.InFlight, r.Receivers)
		}
		fmt.Printf("%s\n", printable(fmt.Sprintf("%s holds %s (rights %s)", holder, r.Cap, r.Rights)))
		var hops []string
		for _, s := range r.Chain {
			hops = append(hops, fmt.Sprintf("%s %s@%s", s.Edge, s.Cap, orDash(s.Holder)))
		}
		fmt.Printf("  via %s\n", printable(strings.Join(hops, " → ")))
	}
}

func moduleNote(m string) string {
	if m == "" {
		return ""
	}
	return " (" + m + ")"
}

// stepText is one step of a trace, ending with its state as the graph
// text has it: REVOKED, and closed for a handle its holder let go of
// (kept in the trace by what derives from it).
func stepText(s audit.Step) string {
	holder := s.Holder + moduleNote(s.Module)
	if s.Holder == "" {
		holder = audit.InFlightText(s.InFlight, s.Receivers)
	}
	t := fmt.Sprintf("%s %s %s %q held by %s rights %s", s.Cap, s.Edge, s.Kind, s.Name, holder, s.Rights)
	if s.Removed != "" {
		t += " (removed " + s.Removed + ")"
	}
	if s.Origin != "" {
		t += fmt.Sprintf(" from %q", s.Origin)
	}
	t += audit.ByLine(s.By, s.ByUID)
	if s.Resource != "" {
		t += " [" + s.Resource + "]"
	}
	if s.Revoked {
		t += " REVOKED"
	}
	if s.Closed {
		t += " closed"
	}
	return t
}
