//go:build !race

package policies

// Loads of policies built to be as large, as deep or as tangled as a
// file may be: each shows that loading takes time near the file's size,
// or stops at a bound, where it used to take minutes or crash. They parse
// on one goroutine, where the race detector has nothing to find and makes
// them ten times slower, so they build only without it: make test runs
// them in a pass of their own without -race (the Makefile's NORACE_RUN).

import (
	"fmt"
	"strings"
	"testing"
)

// Brackets, braces, parentheses, templates and template directives nested
// past any use the language has are an error at the first one too deep,
// not a parse that recurses until the process runs out of stack.
func TestParseBoundsNesting(t *testing.T) {
	t.Parallel()
	const n = 200_000
	for name, expr := range map[string]string{
		"brackets": strings.Repeat("[", n) + strings.Repeat("]", n),
		"braces":   strings.Repeat("{a=", n) + "1" + strings.Repeat("}", n),
		"parens":   strings.Repeat("(", n) + "1" + strings.Repeat(")", n),
		"template": strings.Repeat(`"${`, n) + "1" + strings.Repeat(`}"`, n),
		// Each directive is a closed %{ … } of its own; what nests is
		// the if (or for) it opens, up to its endif.
		"directives": `"` + strings.Repeat("%{if true}", 2*n) + strings.Repeat("%{endif}", 2*n) + `"`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("p.hcl", []byte("grant \"g\" {\n  resources = "+expr+"\n}\n"))
			if err == nil || !strings.HasPrefix(err.Error(), "p.hcl:2:") || !strings.Contains(err.Error(), "nested more than 64 deep") {
				t.Fatalf("got %.300v, want p.hcl:2:…: nested more than 64 deep", err)
			}
		})
	}
}

// Long lists are read in time near their length, and rules are checked
// for ties among the selectors that could tie (of one kind and rank, and
// for names and paths the same one), not every selector of every rule
// against every other: two rules of 60,000 paths each load at once. They
// used to take many minutes.
func TestManySelectorsLoad(t *testing.T) {
	t.Parallel()
	var src strings.Builder
	for r := range 2 {
		fmt.Fprintf(&src, "grant \"g%d\" {\n  resources = [", r)
		for i := range 60_000 {
			fmt.Fprintf(&src, "\"dir:/r%d/%d\", ", r, i)
		}
		src.WriteString("]\n}\n")
	}
	if _, err := parseWithin(t, "two rules of 60,000 paths each", src.String()); err != nil {
		t.Fatal(err)
	}
}

// Operators, which a policy's literal values have no use for, are bounded
// too: chains of them are parsed and evaluated by recursion as deep as the
// chain, and a few megabytes of them crashed the process with a stack
// overflow.
func TestParseBoundsOperators(t *testing.T) {
	t.Parallel()
	const n = 2_000_000
	for name, expr := range map[string]string{
		"unary":       strings.Repeat("!", n) + "true",
		"negation":    strings.Repeat("-", n) + "1",
		"binary":      strings.Repeat("1+", n) + "1",
		"conditional": strings.Repeat("true ? 1 : ", n/4) + "1",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("p.hcl", []byte("grant \"g\" {\n  resources = "+expr+"\n}\n"))
			if err == nil || !strings.HasPrefix(err.Error(), "p.hcl:2:") || !strings.Contains(err.Error(), "more than 1024 operators") {
				t.Fatalf("got %.300v, want p.hcl:2:…: more than 1024 operators", err)
			}
		})
	}
}

// A deny rule that names declared dirs covers their host paths without
// trying every selector on every resource: 60,000 resources denied by
// name and by as many globs load at once, and a grant of the directory
// that holds them all is decided by a walk of the denied paths.
func TestManyDenyNamesLoad(t *testing.T) {
	t.Parallel()
	var src strings.Builder
	for i := range 60_000 {
		fmt.Fprintf(&src, "resource \"dir\" \"r%d\" {\n  path = \"/srv/%d\"\n}\n", i, i)
	}
	for _, sel := range []string{"dir:r%d", "dir:r%d*"} {
		fmt.Fprintf(&src, "deny %q {\n  resources = [", sel)
		for i := range 60_000 {
			fmt.Fprintf(&src, "\"%s\", ", fmt.Sprintf(sel, i))
		}
		src.WriteString("]\n  subject {\n    uids = [7]\n  }\n}\n")
	}
	src.WriteString("grant \"all\" {\n  resources = [\"dir:/\"]\n}\n")
	p, err := parseWithin(t, "60,000 resources denied by name", src.String())
	if err != nil {
		t.Fatal(err)
	}
	if d := Evaluate(p, Request{Op: OpGrant, Kind: "dir", Path: "/srv", Subject: Subject{UID: 7}}); d.Allowed || !strings.Contains(d.Reason, "it contains dir:r") {
		t.Fatalf("grant of /srv, which holds every denied resource:\n%s", d.Explain())
	}
}

// Deny globs of dir and file are matched against the declared names they
// could match only: those beginning with their head or ending with their
// tail. One with neither, many times over, is refused at the glob that
// takes the matching past its bound, not tried on every resource.
func TestManyDenyGlobsLoad(t *testing.T) {
	t.Parallel()
	var res strings.Builder
	for i := range 50_000 {
		fmt.Fprintf(&res, "resource \"dir\" \"r%d-x\" {\n  path = \"/srv/%d\"\n}\n", i, i)
	}
	globs := func(sel string) string {
		var src strings.Builder
		src.WriteString(res.String())
		src.WriteString("deny \"d\" {\n  resources = [")
		for i := range 50_000 {
			fmt.Fprintf(&src, "\"%s\", ", fmt.Sprintf(sel, i))
		}
		src.WriteString("]\n}\n")
		return src.String()
	}
	const what = "50,000 deny globs over 50,000 resources"
	p, err := parseWithin(t, what, globs("dir:*%d-x"))
	if err != nil {
		t.Fatal(err)
	}
	if d := Evaluate(p, Request{Op: OpGrant, Kind: "dir", Path: "/srv/7"}); d.Allowed || d.Rule == nil || d.Rule.Name != "d" {
		t.Fatalf("dir:/srv/7, declared as r7-x, which *7-x names:\n%s", d.Explain())
	}
	_, err = parseWithin(t, what, globs("dir:*%d*"))
	if err == nil || !strings.Contains(err.Error(), "deny globs of dir and file are tried on more than") {
		t.Fatalf("Parse of deny globs without head or tail: %v, want the bound on tries", err)
	}
}

// Globs are checked for ties among those whose literal heads, or tails,
// could meet, not every glob of a kind and rank against every other: two
// rules of 60,000 globs each load at once.
func TestManyGlobsLoad(t *testing.T) {
	t.Parallel()
	var src strings.Builder
	for r := range 2 {
		fmt.Fprintf(&src, "grant \"g%d\" {\n  resources = [", r)
		for i := range 60_000 {
			fmt.Fprintf(&src, "\"chan:r%d-%05d*\", ", r, i)
		}
		src.WriteString("]\n}\n")
	}
	if _, err := parseWithin(t, "two rules of 60,000 globs each", src.String()); err != nil {
		t.Fatal(err)
	}
	// Globs that meet, found by their heads or by their tails.
	for _, globs := range [][2]string{{"chan:a*b", "chan:ab*"}, {"chan:x-*", "chan:*-y"}, {"chan:*7", "chan:1*"}} {
		_, err := Parse("p.hcl", []byte(fmt.Sprintf("grant \"a\" {\n  resources = [\"chan:q1*\", %q]\n}\ngrant \"b\" {\n  resources = [\"chan:r2*\", %q]\n}\n", globs[0], globs[1])))
		if want := "(" + globs[1] + ") and \"a\""; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s and %s: %v, want the tie %s", globs[0], globs[1], err, want)
		}
	}
	// Globs that could all meet, too many to compare, are refused.
	src.Reset()
	for r := range 2 {
		fmt.Fprintf(&src, "grant \"m%d\" {\n  resources = [", r)
		for i := range 6_000 {
			fmt.Fprintf(&src, "\"chan:*%d-%04d*\", ", r, i)
		}
		src.WriteString("]\n}\n")
	}
	if _, err := Parse("p.hcl", []byte(src.String())); err == nil || !strings.Contains(err.Error(), "too many to check for ties") {
		t.Fatalf("Parse of 12,000 globs without head or tail: %v, want the bound on pairs", err)
	}
}

// Rules for one resource are checked for ties among those whose subjects
// or modules could match one request, not each against every other: a
// rule for each of 100,000 users loads at once. Rules that could all tie,
// too many to check, are refused.
func TestManyRulesForOneResourceLoad(t *testing.T) {
	t.Parallel()
	parse := func(rule string, n int) error {
		var src strings.Builder
		src.WriteString("resource \"chan\" \"c\" {}\n")
		for i := range n {
			fmt.Fprintf(&src, rule, i, i)
		}
		_, err := parseWithin(t, fmt.Sprintf("%d rules for chan:c", n), src.String())
		return err
	}
	if err := parse("grant \"g%d\" {\n  resources = [\"chan:c\"]\n  subject {\n    uids = [%d]\n  }\n}\n", 100_000); err != nil {
		t.Fatal(err)
	}
	err := parse("grant \"g%d\" {\n  resources = [\"chan:c\"]\n  subject {\n    gids = [%d]\n  }\n}\n", 12_000)
	if err == nil || !strings.Contains(err.Error(), "could tie in more than") {
		t.Fatalf("Parse of 12,000 rules that could all tie: %v, want the bound on pairs", err)
	}
}
