package policies

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Error is one problem in a policy file, at a position.
type Error struct {
	Pos Pos
	Msg string
}

func (e Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Errors is every problem Load or Parse found, ordered by file and
// position. Its text is one "file:line:column: message" line per problem.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// errList collects problems while a policy is read.
type errList struct{ errs Errors }

func (l *errList) add(r hcl.Range, format string, args ...any) {
	l.errs = append(l.errs, Error{Pos: posOf(r), Msg: fmt.Sprintf(format, args...)})
}

// addDiags keeps hcl's own diagnostics (syntax errors, unknown blocks and
// attributes, wrong types), each with the position hcl gave it.
func (l *errList) addDiags(diags hcl.Diagnostics) {
	for _, d := range diags {
		if d.Severity != hcl.DiagError || echoesUnknown(d, diags) {
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + oneLine(d.Detail)
		}
		var pos Pos
		if d.Subject != nil {
			pos = posOf(*d.Subject)
		}
		l.errs = append(l.errs, Error{Pos: pos, Msg: msg})
	}
}

// result returns the collected problems sorted by position, or nil.
func (l *errList) result() error {
	if len(l.errs) == 0 {
		return nil
	}
	sort.SliceStable(l.errs, func(i, j int) bool {
		a, b := l.errs[i].Pos, l.errs[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return l.errs
}

func posOf(r hcl.Range) Pos {
	return Pos{File: r.Filename, Line: r.Start.Line, Column: r.Start.Column}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// echoesUnknown reports whether d is the "value must be known" that
// decoding adds to an expression HCL could not evaluate (a variable, a
// function call), which another of diags already says why, in HCL's
// words, at its place within the expression.
func echoesUnknown(d *hcl.Diagnostic, diags hcl.Diagnostics) bool {
	if d.Summary != "Unsuitable value type" || !strings.HasSuffix(d.Detail, "value must be known") || d.Context == nil {
		return false
	}
	for _, e := range diags {
		if e != d && e.Severity == hcl.DiagError && e.Subject != nil && d.Context.Overlaps(*e.Subject) {
			return true
		}
	}
	return false
}
