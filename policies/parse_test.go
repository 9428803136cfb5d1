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
				`p.hcl:4:9: on: unknown request "launch" (want "grant" or "delegate")`,
			}},
		{"deny on empty", "resource \"chan\" \"c\" {}\ndeny \"d\" {\n  resources = [\"chan:c\"]\n  on = []\n}\n",
			[]string{
				`p.hcl:4:8: on is empty: list "grant", "delegate" or both, or leave it out for both`,
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
		src := "resource \"sock\" \"web\" {\n  tcp = \"127.0.0.1:" + port + "\"\n}\n"
		want := `p.hcl:2:9: tcp "127.0.0.1:` + port + `" is not HOST:PORT (a name or address, and a port 1-65535)`
		if _, err := Parse("p.hcl", []byte(src)); err == nil || err.Error() != want {
			t.Errorf("port %s: %v; want %s", port, err, want)
		}
	}
	if _, err := Parse("p.hcl", []byte("resource \"sock\" \"db\" {\n  tcp = \"[::1]:65535\"\n}\n")); err != nil {
		t.Fatalf("port 65535: %v", err)
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
	if _, err := parseWithin(t, "300 long globs", src.String()); err != nil {
		t.Fatal(err)
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
			_, err := parseWithin(t, "1e100000000", "resource \"chan\" \"c\" {}\ngrant \"g\" {\n  "+rule+"\n}\n")
			if err == nil || !strings.Contains(err.Error(), "a number past") || len(err.Error()) > 1000 {
				t.Fatalf("got %.300v, want a short error: a number past …", err)
			}
		})
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
		if _, err := parseWithin(t, name, tc.src); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %s…", name, err, tc.want)
		}
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

// parseWithin parses src as p.hcl, and fails the test if that has not
// returned after parseGuard: the guard of a parse that runs for ever or
// for hours (a check over every pair of 100,000 rules), far past what any
// load of the machine makes of one that does not. A minute was not: the
// 100,000 rules of TestManyRulesForOneResourceLoad took 15 s beside
// other test binaries and past 60 s with more of them (make test).
func parseWithin(t *testing.T, what, src string) (*Policy, error) {
	t.Helper()
	type result struct {
		p   *Policy
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := Parse("p.hcl", []byte(src))
		done <- result{p, err}
	}()
	select {
	case r := <-done:
		return r.p, r.err
	case <-time.After(parseGuard):
		t.Fatalf("Parse of %s has not returned after %v", what, parseGuard)
	}
	return nil, nil
}

const parseGuard = 5 * time.Minute
