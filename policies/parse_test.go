package policies

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Every problem is reported at its file:line:column, and all of them at
// once.
func TestParseErrorsCarryPositions(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string // each a whole error line
	}{
		{"syntax", "grant \"x\" {\n  resources = [\n", []string{"p.hcl:3:1: Missing expression: Expected the start of an expression, but found the end of the file."}},
		{"unknown block", "resource \"sock\" \"db\" { tcp = \"h:1\" }\npolicy \"x\" {}\n", []string{`p.hcl:2:1: Unsupported block type: Blocks of type "policy" are not expected here.`}},
		{"unknown attribute", "resource \"chan\" \"c\" {}\ngrant \"g\" {\n  resources = [\"chan:c\"]\n  max_depth = 1\n}\n",
			[]string{`p.hcl:4:3: Unsupported argument: An argument named "max_depth" is not expected here.`}},
		{"unknown block inside", "resource \"chan\" \"c\" {}\ngrant \"g\" {\n  resources = [\"chan:c\"]\n  to {\n    labels = { a = \"b\" }\n  }\n}\n",
			[]string{`p.hcl:4:3: Unsupported block type: Blocks of type "to" are not expected here.`}},
		{"missing required", "resource \"chan\" \"c\" {}\ndelegate \"d\" {\n  resources = [\"chan:c\"]\n}\n",
			[]string{`p.hcl:2:14: Missing required argument: The argument "max_depth" is required, but no definition was found.`}},
		{"bad values, all reported", "resource \"sock\" \"db\" {\n  tcp = \"nohost\"\n}\nresource \"pipe\" \"p\" {}\n" +
			"grant \"g\" {\n  resources = [\"sock:db\", \"sock:missing\", \"file:/a/../b\"]\n  rights = [\"fd_read\", \"fly\"]\n  ttl = \"soon\"\n}\n",
			[]string{
				`p.hcl:2:9: tcp "nohost" is not HOST:PORT (a name or address, and a port 1-65535)`,
				`p.hcl:4:1: unknown resource kind "pipe" (want dir, file, sock, listen or chan)`,
				`p.hcl:6:27: resources: sock:missing is not declared (add resource "sock" "missing" { … })`,
				`p.hcl:6:43: resources: "file:/a/../b": host path "/a/../b" is not clean (write "/b")`,
				`p.hcl:7:24: rights: unknown right "fly" (` + "`sandboxd abi`" + ` lists them)`,
				`p.hcl:8:9: ttl "soon" is not a positive duration (like "90s", "10m", "2h")`,
			}},
		{"duplicates", "resource \"chan\" \"c\" {}\nresource \"chan\" \"c\" {}\ngrant \"g\" {\n  resources = [\"chan:c\"]\n}\ndeny \"g\" {\n  resources = [\"chan:c\"]\n}\n",
			[]string{
				`p.hcl:2:1: resource chan:c is already declared at p.hcl:1:1`,
				`p.hcl:6:1: rule name "g" is already used at p.hcl:3:1`,
			}},
		{"delegate limits", "resource \"chan\" \"c\" {}\ndelegate \"d\" {\n  resources = [\"chan:c\"]\n  max_depth = 0\n  max_copies = -1\n}\n",
			[]string{
				`p.hcl:4:15: max_depth 0: want at least 1 (to forbid delegation, write no delegate rule or a deny rule)`,
				`p.hcl:5:16: max_copies -1: want at least 1 (leave it out for no limit)`,
			}},
		{"subject and module values", "resource \"chan\" \"c\" {}\ngrant \"g\" {\n  resources = [\"chan:c\"]\n  subject {\n    uids = [-1]\n  }\n  module {\n    sha256 = [\"ABC\"]\n  }\n}\n",
			[]string{
				`p.hcl:5:13: uids: -1 is not a unix id (0-4294967295)`,
				`p.hcl:8:15: sha256 "ABC" is not 64 lower-case hex digits`,
			}},
		{"empty lists", "resource \"chan\" \"c\" {}\ngrant \"g\" {\n  resources = []\n  rights = []\n}\n",
			[]string{
				`p.hcl:3:15: resources is empty: list at least one KIND:NAME, KIND:GLOB or dir|file:/PATH`,
				`p.hcl:4:12: rights is empty: a capability with no rights is of no use; list the rights, or leave rights out for every right`,
			}},
		{"deny on", "resource \"chan\" \"c\" {}\ndeny \"d\" {\n  resources = [\"chan:c\"]\n  on = [\"launch\"]\n}\n",
			[]string{
				`p.hcl:4:8: on is empty: list "grant", "delegate" or both, or leave it out for both`,
				`p.hcl:4:9: on: unknown request "launch" (want "grant" or "delegate")`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("p.hcl", []byte(tc.src))
			if p != nil || err == nil {
				t.Fatalf("Parse accepted:\n%s", tc.src)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %T is not Errors", err)
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(tc.want, "\n"))
			}
		})
	}
}

// Two rules that could decide one request at the same specificity do not
// load; the error names both.
func TestTiesRejectedAtLoad(t *testing.T) {
	const decl = "resource \"sock\" \"db\" { tcp = \"h:1\" }\n"
	for _, tc := range []struct {
		name, rules string
		tie         bool
	}{
		{"same exact name", `grant "a" { resources = ["sock:db"] }` + "\n" + `grant "b" { resources = ["sock:db"] }`, true},
		{"overlapping globs of equal rank", `grant "a" { resources = ["sock:d*"] }` + "\n" + `grant "b" { resources = ["sock:*b"] }`, true},
		{"same path prefix", `grant "a" { resources = ["dir:/srv"] }` + "\n" + `grant "b" { resources = ["dir:/srv"] }`, true},
		{"exact and glob differ in rank", `grant "a" { resources = ["sock:db"] }` + "\n" + `grant "b" { resources = ["sock:*"] }`, false},
		{"globs that cannot meet", `grant "a" { resources = ["sock:a*"] }` + "\n" + `grant "b" { resources = ["sock:b*"] }`, false},
		{"sibling paths", `grant "a" { resources = ["dir:/srv/a"] }` + "\n" + `grant "b" { resources = ["dir:/srv/b"] }`, false},
		{"disjoint users", `grant "a" {
  resources = ["sock:db"]
  subject { users = ["alice"] }
}
grant "b" {
  resources = ["sock:db"]
  subject { users = ["bob"] }
}`, false},
		{"disjoint uids", `grant "a" {
  resources = ["sock:db"]
  subject { uids = [1, 2] }
}
grant "b" {
  resources = ["sock:db"]
  subject { uids = [3] }
}`, false},
		{"a shared uid", `grant "a" {
  resources = ["sock:db"]
  subject { uids = [1, 2] }
}
grant "b" {
  resources = ["sock:db"]
  subject { uids = [2] }
}`, true},
		{"groups never separate", `grant "a" {
  resources = ["sock:db"]
  subject { gids = [1] }
}
grant "b" {
  resources = ["sock:db"]
  subject { gids = [2] }
}`, true},
		{"disjoint labels", `grant "a" {
  resources = ["sock:db"]
  module { labels = { app = "x" } }
}
grant "b" {
  resources = ["sock:db"]
  module { labels = { app = "y" } }
}`, false},
		{"grant and delegate never tie", `grant "a" { resources = ["sock:db"] }` + "\n" + `delegate "b" {
  resources = ["sock:db"]
  max_depth = 1
}`, false},
		{"deny rules never tie", `deny "a" { resources = ["sock:db"] }` + "\n" + `deny "b" { resources = ["sock:db"] }`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.hcl", []byte(decl+tc.rules+"\n"))
			if !tc.tie {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), `rules tie: grant "b"`) || !strings.Contains(err.Error(), `"a" at t.hcl:2:1`) {
				t.Fatalf("want a tie naming both rules and positions, got %v", err)
			}
		})
	}
}

func TestLoadMergesFilesAndReportsEach(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	res := write("res.hcl", "resource \"chan\" \"jobs\" {}\n")
	rules := write("rules.hcl", "grant \"jobs\" {\n  resources = [\"chan:jobs\"]\n}\n")
	p, err := Load(res, rules)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	d := Evaluate(p, Request{Op: OpGrant, Kind: "chan", Name: "jobs"})
	if !d.Allowed || d.Rule.File != rules || d.Rule.Line != 1 {
		t.Fatalf("want allowed by %s:1, got\n%s", rules, d.Explain())
	}
	bad := write("bad.hcl", "grant \"x\" {\n  resources = [\"chan:nope\"]\n}\n")
	_, err = Load(res, bad, filepath.Join(dir, "missing.hcl"))
	if err == nil || !strings.Contains(err.Error(), bad+":2:16: resources: chan:nope is not declared") || !strings.Contains(err.Error(), "missing.hcl: open ") {
		t.Fatalf("Load errors: %v", err)
	}
}

// A tcp address's port is checked at load for the range the message
// gives, 1-65535: one past it would load and then fail every grant of the
// resource.
func TestTCPPortOutOfRangeRejectedAtLoad(t *testing.T) {
	for _, port := range []string{"65536", "70000", "99999"} {
		src := "resource \"listen\" \"web\" {\n  tcp = \"127.0.0.1:" + port + "\"\n}\n"
		want := `p.hcl:2:9: tcp "127.0.0.1:` + port + `" is not HOST:PORT (a name or address, and a port 1-65535)`
		if _, err := Parse("p.hcl", []byte(src)); err == nil || err.Error() != want {
			t.Errorf("port %s: %v; want %s", port, err, want)
		}
	}
	if _, err := Parse("p.hcl", []byte("resource \"sock\" \"db\" {\n  tcp = \"[::1]:65535\"\n}\n")); err != nil {
		t.Fatalf("port 65535: %v", err)
	}
}

// Brackets, braces, parentheses, templates and template directives nested
// past any use the language has are an error at the first one too deep,
// not a parse that recurses until the process runs out of stack.
func TestParseBoundsNesting(t *testing.T) {
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

// Telling whether two globs overlap takes time in proportion to their
// length: a policy of a few hundred long globs that no name matches twice
// loads at once. It used to search every pair of positions of every pair
// of globs, minutes for this one.
func TestLongGlobsLoad(t *testing.T) {
	var src strings.Builder
	for i := range 300 {
		glob := strings.Repeat("*a", 120) + "*" + strconv.Itoa(1000+i)
		fmt.Fprintf(&src, "grant \"g%d\" {\n  resources = [\"chan:%s\"]\n}\n", i, glob)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Parse("p.hcl", []byte(src.String()))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Parse of 300 long globs has not returned after 60s")
	}
}

// Long lists are read in time near their length, and rules are checked
// for ties among the selectors that could tie (of one kind and rank, and
// for names and paths the same one), not every selector of every rule
// against every other: two rules of 60,000 paths each load at once. They
// used to take many minutes.
func TestManySelectorsLoad(t *testing.T) {
	var src strings.Builder
	for r := range 2 {
		fmt.Fprintf(&src, "grant \"g%d\" {\n  resources = [", r)
		for i := range 60_000 {
			fmt.Fprintf(&src, "\"dir:/r%d/%d\", ", r, i)
		}
		src.WriteString("]\n}\n")
	}
	done := make(chan error, 1)
	go func() {
		_, err := Parse("p.hcl", []byte(src.String()))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Parse of two rules of 60,000 paths each has not returned after 60s")
	}
}

// A policy file that is not a regular file (a FIFO that no one writes, a
// device) is refused at once, not read until it ends: a reload would wait
// for it forever.
func TestLoadRefusesWhatIsNotARegularFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "p.hcl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Load(fifo)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), fifo+": not a regular file") {
			t.Fatalf("Load of a FIFO: %v, want %s: not a regular file…", err, fifo)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Load of a FIFO has not returned after 60s")
	}
}

// A policy file is read up to a bound far above any policy's size: a
// larger one is refused, not read whole and parsed, whatever its size.
func TestLoadRefusesAHugeFile(t *testing.T) {
	huge := filepath.Join(t.TempDir(), "p.hcl")
	line := "# " + strings.Repeat("x", 1021) + "\n"
	if err := os.WriteFile(huge, []byte(strings.Repeat(line, 17<<10)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(huge)
	if err == nil || !strings.Contains(err.Error(), huge+": larger than 16 MiB") {
		t.Fatalf("Load of a 17 MiB file: %v, want %s: larger than 16 MiB…", err, huge)
	}
}

// Operators, which a policy's literal values have no use for, are bounded
// too: chains of them are parsed and evaluated by recursion as deep as the
// chain, and a few megabytes of them crashed the process with a stack
// overflow.
func TestParseBoundsOperators(t *testing.T) {
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

// A number far past any a policy holds (1e100000000, fourteen bytes) is
// an error, not turned into the hundred million digits of its decimal
// text where a string is wanted, which took the daemon many minutes and
// as many megabytes.
func TestParseRefusesHugeNumbers(t *testing.T) {
	for name, rule := range map[string]string{
		"list":   `resources = [1e100000000]`,
		"string": "resources = [\"chan:c\"]\n  ttl = 1e100000000",
		"map":    "resources = [\"chan:c\"]\n  module {\n    labels = { a = 1e100000000 }\n  }",
	} {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := Parse("p.hcl", []byte("resource \"chan\" \"c\" {}\ngrant \"g\" {\n  "+rule+"\n}\n"))
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "a number past") || len(err.Error()) > 1000 {
					t.Fatalf("got %.300v, want a short error: a number past …", err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("Parse of 1e100000000 has not returned after 60s")
			}
		})
	}
}

// A deny rule that names declared dirs covers their host paths without
// trying every selector on every resource: 60,000 resources denied by
// name and by as many globs load at once, and a grant of the directory
// that holds them all is decided by a walk of the denied paths.
func TestManyDenyNamesLoad(t *testing.T) {
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
	done := make(chan Decision, 1)
	go func() {
		p, err := Parse("p.hcl", []byte(src.String()))
		if err != nil {
			t.Error(err)
			done <- Decision{}
			return
		}
		done <- Evaluate(p, Request{Op: OpGrant, Kind: "dir", Path: "/srv", Subject: Subject{UID: 7}})
	}()
	select {
	case d := <-done:
		if d.Allowed || !strings.Contains(d.Reason, "it contains dir:r") {
			t.Fatalf("grant of /srv, which holds every denied resource:\n%s", d.Explain())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Parse of 60,000 resources denied by name has not returned after 60s")
	}
}

// Deny globs of dir and file are matched against the declared names they
// could match only: those beginning with their head or ending with their
// tail. One with neither, many times over, is refused at the glob that
// takes the matching past its bound, not tried on every resource.
func TestManyDenyGlobsLoad(t *testing.T) {
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
	type result struct {
		p   *Policy
		err error
	}
	parse := func(src string) result {
		done := make(chan result, 1)
		go func() {
			p, err := Parse("p.hcl", []byte(src))
			done <- result{p, err}
		}()
		select {
		case r := <-done:
			return r
		case <-time.After(60 * time.Second):
			t.Fatal("Parse of 50,000 deny globs over 50,000 resources has not returned after 60s")
		}
		return result{}
	}
	r := parse(globs("dir:*%d-x"))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if d := Evaluate(r.p, Request{Op: OpGrant, Kind: "dir", Path: "/srv/7"}); d.Allowed || d.Rule == nil || d.Rule.Name != "d" {
		t.Fatalf("dir:/srv/7, declared as r7-x, which *7-x names:\n%s", d.Explain())
	}
	r = parse(globs("dir:*%d*"))
	if r.err == nil || !strings.Contains(r.err.Error(), "deny globs of dir and file are tried on more than") {
		t.Fatalf("Parse of deny globs without head or tail: %v, want the bound on tries", r.err)
	}
}

// Globs are checked for ties among those whose literal heads, or tails,
// could meet, not every glob of a kind and rank against every other: two
// rules of 60,000 globs each load at once.
func TestManyGlobsLoad(t *testing.T) {
	var src strings.Builder
	for r := range 2 {
		fmt.Fprintf(&src, "grant \"g%d\" {\n  resources = [", r)
		for i := range 60_000 {
			fmt.Fprintf(&src, "\"chan:r%d-%05d*\", ", r, i)
		}
		src.WriteString("]\n}\n")
	}
	done := make(chan error, 1)
	go func() {
		_, err := Parse("p.hcl", []byte(src.String()))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Parse of two rules of 60,000 globs each has not returned after 60s")
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

// A policy's values are literals: a for expression, or a %{for}
// directive, which HCL evaluates by repeating its body once for each
// element, is an error at its position before anything is evaluated.
// Five nested over 41 elements each made a string of 116 million bytes,
// minutes of work, from half a kilobyte of policy.
func TestParseRefusesLoops(t *testing.T) {
	l := "[" + strings.Repeat("1,", 40) + "1]"
	loops := strings.Repeat("%{for a in "+l+"}", 5) + "x" + strings.Repeat("%{endfor}", 5)
	for name, tc := range map[string]struct{ src, want string }{
		"a directive":   {"grant \"g\" {\n  resources = [\"dir:/x\"]\n  ttl = \"" + loops + "\"\n}\n", "p.hcl:3:10: a %{for} directive"},
		"an expression": {"grant \"g\" {\n  resources = [for a in " + l + ": [for b in " + l + ": \"dir:/x\"]]\n}\n", "p.hcl:2:15: a for expression"},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := Parse("p.hcl", []byte(tc.src))
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want %s…", name, err, tc.want)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: Parse has not returned after 60s", name)
		}
	}
}

// Rules for one resource are checked for ties among those whose subjects
// or modules could match one request, not each against every other: a
// rule for each of 100,000 users loads at once. Rules that could all tie,
// too many to check, are refused.
func TestManyRulesForOneResourceLoad(t *testing.T) {
	parse := func(rule string, n int) error {
		var src strings.Builder
		src.WriteString("resource \"chan\" \"c\" {}\n")
		for i := range n {
			fmt.Fprintf(&src, rule, i, i)
		}
		done := make(chan error, 1)
		go func() {
			_, err := Parse("p.hcl", []byte(src.String()))
			done <- err
		}()
		select {
		case err := <-done:
			return err
		case <-time.After(60 * time.Second):
			t.Fatalf("Parse of %d rules for chan:c has not returned after 60s", n)
		}
		return nil
	}
	if err := parse("grant \"g%d\" {\n  resources = [\"chan:c\"]\n  subject {\n    uids = [%d]\n  }\n}\n", 100_000); err != nil {
		t.Fatal(err)
	}
	err := parse("grant \"g%d\" {\n  resources = [\"chan:c\"]\n  subject {\n    gids = [%d]\n  }\n}\n", 12_000)
	if err == nil || !strings.Contains(err.Error(), "could tie in more than") {
		t.Fatalf("Parse of 12,000 rules that could all tie: %v, want the bound on pairs", err)
	}
}

// A policy whose rules all tie lists the first 1,000 pairs, and says
// there are more, rather than a line for every pair: 1,500 rules for one
// resource made over a million lines (and an 8,000-rule file of 400 KiB
// more memory than the host has).
func TestTiesAreListedUpToABound(t *testing.T) {
	var src strings.Builder
	src.WriteString("resource \"chan\" \"c\" {}\n")
	for i := range 1_500 {
		fmt.Fprintf(&src, "grant \"g%d\" {\n  resources = [\"chan:c\"]\n}\n", i)
	}
	_, err := Parse("p.hcl", []byte(src.String()))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1001 || !strings.Contains(errs[len(errs)-1].Msg, "more than 1000 pairs of rules tie") {
		n := len(errs)
		if n > 3 {
			errs = errs[n-3:]
		}
		t.Fatalf("Parse of 1,500 rules that all tie: %d errors, want 1,000 ties and one saying there are more; the last: %v", n, errs)
	}
}
