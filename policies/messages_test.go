package policies

import (
	"fmt"
	"strings"
	"testing"
)

// A value out of range says which range, and what to write: a limit
// beyond what the daemon counts to is not "less than 1", and a path that
// is not clean names the path to write, as a selector's does.
func TestAnOutOfRangeValueSaysWhatToWrite(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"resource \"chan\" \"c\" {}\ndelegate \"d\" {\n  resources = [\"chan:c\"]\n  max_depth = 1099511627776\n}\n",
			`p.hcl:4:15: max_depth 1099511627776: want at most 2147483647`},
		{"resource \"chan\" \"c\" {}\ndelegate \"d\" {\n  resources = [\"chan:c\"]\n  max_depth = 1\n  max_copies = 4294967296\n}\n",
			`p.hcl:5:16: max_copies 4294967296: want at most 2147483647 (leave it out for no limit)`},
		{"resource \"dir\" \"d\" {\n  path = \"/srv/\"\n}\n",
			`p.hcl:2:10: path "/srv/" is not clean (write "/srv")`},
		{"resource \"dir\" \"d\" {\n  path = \"/srv/a/../b\"\n}\n",
			`p.hcl:2:10: path "/srv/a/../b" is not clean (write "/srv/b")`},
		{"resource \"file\" \"d\" {\n  path = \"srv/x\"\n}\n",
			`p.hcl:2:10: path "srv/x" must be absolute (begin with /)`},
	} {
		_, err := Parse("p.hcl", []byte(c.body))
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: got\n%v\nwant\n%s", c.body, err, c.want)
		}
	}
}

// A label key given twice in one block is refused: HCL would keep the
// last value without a word, and the rule would match what its first
// line does not say.
func TestALabelKeyGivenTwiceIsRefused(t *testing.T) {
	src := "resource \"chan\" \"c\" {}\ngrant \"g\" {\n  resources = [\"chan:c\"]\n  module {\n    labels = { app = \"x\", \"app\" = \"y\" }\n  }\n}\n"
	_, err := Parse("p.hcl", []byte(src))
	want := `p.hcl:5:27: labels: label app is given twice (first at p.hcl:5:16): give each key once`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

// A rule's name is how decisions, the audit log and the daemon's log name
// it: an empty one names nothing, and a control character in one would
// break the line it is printed on.
func TestARuleNameThatCannotNameItIsRefused(t *testing.T) {
	src := "resource \"chan\" \"c\" {}\ngrant \"\" {\n  resources = [\"chan:c\"]\n}\ndeny \"a\\nb\" {\n  resources = [\"chan:c\"]\n}\n"
	want := `p.hcl:2:1: rule name "" is empty: name the rule, as decisions and the audit log name it` + "\n" +
		`p.hcl:5:1: rule name "a\nb" contains a control character: decisions and the audit log name the rule on one line`
	if _, err := Parse("p.hcl", []byte(src)); err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

// A rule whose rights none of its resources can hold would allow only
// handles with no rights at all: Evaluate would say "allowed" and the
// guest would hold nothing. Such a ceiling is refused at load, naming
// the selector and what its kind can hold.
func TestARuleWhoseRightsItsResourcesCannotHoldIsRefused(t *testing.T) {
	src := "resource \"chan\" \"c\" {}\ngrant \"g\" {\n  resources = [\"sock:*\", \"dir:/srv\"]\n  rights = [\"file_open\"]\n}\n" +
		"delegate \"d\" {\n  resources = [\"dir:/srv\", \"listen:*\"]\n  max_depth = 1\n  rights = [\"file_readdir\", \"file_create_directory\"]\n  read_only = true\n}\n"
	_, err := Parse("p.hcl", []byte(src))
	for _, want := range []string{
		`p.hcl:3:16: resources: a sock holds none of the rights of grant "g" (file_open): give it some of fd_read|`,
		`p.hcl:7:28: resources: a listen holds none of the rights of delegate "d" (file_readdir): give it some of fd_read|`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got\n%v\nwant a line holding\n%s", err, want)
		}
	}
	if strings.Count(fmt.Sprint(err), "\n") != 1 {
		t.Errorf("want two problems, got\n%v", err)
	}
	// Rights that some of the kinds hold, and a ceiling left out, load.
	mustParse(t, "resource \"chan\" \"c\" {}\ngrant \"g\" {\n  resources = [\"chan:c\", \"dir:/srv\"]\n  rights = [\"file_open\", \"fd_read\"]\n}\n"+
		"grant \"h\" {\n  resources = [\"sock:*\"]\n  rights = [\"sock_accept\"]\n}\n")
}

// users are matched exactly: "*" or "ops-*" in them, read as a glob, would
// match nobody, and a subject block written for everyone or for a team
// would allow no one, without a word.
func TestAGlobInUsersIsRefused(t *testing.T) {
	src := "resource \"chan\" \"c\" {}\ngrant \"g\" {\n  resources = [\"chan:c\"]\n  subject {\n    users = [\"alice\", \"ops-*\"]\n  }\n}\n"
	want := `p.hcl:5:23: users: "ops-*": a user name is matched exactly, not as a glob: list the users, or use gids for a group`
	if _, err := Parse("p.hcl", []byte(src)); err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

// A value HCL cannot evaluate (a variable, a function call, an
// interpolation) is reported once, as HCL words why, not a second time
// as a value of the wrong type that "must be known".
func TestAValueThatCannotBeEvaluatedIsReportedOnce(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{`[var.x]`, `p.hcl:3:16: Variables not allowed: Variables may not be used here.`},
		{`[upper("chan:c")]`, `p.hcl:3:16: Function calls not allowed: Functions may not be called here.`},
		{`["chan:${c}"]`, `p.hcl:3:24: Variables not allowed: Variables may not be used here.`},
	} {
		src := "resource \"chan\" \"c\" {}\ngrant \"g\" {\n  resources = " + c.value + "\n}\n"
		if _, err := Parse("p.hcl", []byte(src)); err == nil || err.Error() != c.want {
			t.Errorf("resources = %s: got\n%v\nwant\n%s", c.value, err, c.want)
		}
	}
}

// read_only takes the write rights away from a rule's rights: a rule
// that lists only write rights and sets read_only gives nothing at all.
func TestARuleWhoseRightsReadOnlyTakesAllAwayIsRefused(t *testing.T) {
	src := "grant \"g\" {\n  resources = [\"dir:/srv\"]\n  rights = [\"fd_write\", \"file_unlink\"]\n  read_only = true\n}\n"
	want := `p.hcl:3:12: rights: read_only takes away every right listed (fd_write|file_unlink): list a right that reads, or leave read_only out`
	if _, err := Parse("p.hcl", []byte(src)); err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}
