package policies

import (
	"testing"
)

// A module or to block's labels are matched against the labels a launch
// gives (launch --label), which take keys of 1 to 63 ASCII letters,
// digits and -_./ and values without control characters: a rule naming
// a label no launch can have could never match, and loaded as if it
// could. Each such label is refused at its block, as --label refuses it.
func TestALabelNoLaunchCanHaveIsRefused(t *testing.T) {
	src := "resource \"chan\" \"c\" {}\ngrant \"g\" {\n  resources = [\"chan:c\"]\n  module {\n    labels = { \"app name\" = \"x\", \"-x\" = \"y\", ok = \"a\\tb\", role = \"report\" }\n  }\n}\n"
	want := `p.hcl:5:14: labels: label key "-x": want 1 to 63 ASCII letters, digits and - _ . /, starting with a letter or digit` + "\n" +
		`p.hcl:5:14: labels: label key "app name": ' ' is not allowed: want 1 to 63 ASCII letters, digits and - _ . /, starting with a letter or digit` + "\n" +
		`p.hcl:5:14: labels: label ok: the value contains a control character`
	if _, err := Parse("p.hcl", []byte(src)); err == nil || err.Error() != want {
		t.Errorf("%v\nwant\n%s", err, want)
	}
	if err := CheckLabel("role", "report"); err != nil {
		t.Errorf("role=report: %v", err)
	}
}
