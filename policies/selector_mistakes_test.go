package policies

import (
	"testing"
)

// A host-path selector is a prefix, never a glob: dir:/srv/* covered
// only a directory named "*", so a deny written as one silently denied
// nothing an operator meant it to. An element "*" is refused, saying to
// write the prefix, which covers everything beneath it (a "*" inside a
// name, file:/srv/x*y, is the file's own); and a relative path is
// refused as one, not as a name with a "/".
func TestAHostPathSelectorWithAStarOrRelativeIsRefusedSayingWhatToWrite(t *testing.T) {
	for _, c := range []struct{ sel, err string }{
		{"dir:/srv/*", `resources: "dir:/srv/*": host path "/srv/*" has a "*" element, which a host path does not expand: a host-path prefix covers everything beneath it (write "dir:/srv")`},
		{"file:/srv/*/private", `resources: "file:/srv/*/private": host path "/srv/*/private" has a "*" element, which a host path does not expand: a host-path prefix covers everything beneath it (write "file:/srv")`},
		{"dir:/*", `resources: "dir:/*": host path "/*" has a "*" element, which a host path does not expand: a host-path prefix covers everything beneath it (write "dir:/")`},
		{"dir:srv/private", `resources: "dir:srv/private": host path "srv/private" must be absolute (begin with /)`},
	} {
		src := "deny \"d\" {\n  resources = [\"" + c.sel + "\"]\n}\n"
		_, err := Parse("p.hcl", []byte(src))
		if want := "p.hcl:2:16: " + c.err; err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %s", c.sel, err, want)
		}
	}
	if _, err := ParseDenyList([]string{"dir:/srv/*"}); err == nil {
		t.Error("--deny dir:/srv/*: taken, want refused")
	}
	if _, err := Parse("p.hcl", []byte("deny \"d\" {\n  resources = [\"file:/srv/x*y\"]\n}\n")); err != nil {
		t.Errorf("file:/srv/x*y, a file of that name: %v", err)
	}
}

// A deny rule's to block names the recipient of a delegated copy, so it
// applies to delegations only: with on = ["grant"] the rule could never
// deny anything, and loaded as if it did. It is refused at its to block.
func TestADenyWithAToBlockOnGrantsOnlyIsRefused(t *testing.T) {
	src := "resource \"chan\" \"c\" {}\ndeny \"d\" {\n  resources = [\"chan:c\"]\n  on = [\"grant\"]\n  to {\n    labels = { a = \"b\" }\n  }\n}\n"
	want := `p.hcl:5:3: deny "d" has a to block, which names the recipient of a delegated copy, and on = ["grant"]: it could never deny anything; add "delegate" to on, or leave the to block out`
	if _, err := Parse("p.hcl", []byte(src)); err == nil || err.Error() != want {
		t.Errorf("%v, want %s", err, want)
	}
	for _, on := range []string{"", "  on = [\"delegate\"]\n", "  on = [\"grant\", \"delegate\"]\n"} {
		src := "resource \"chan\" \"c\" {}\ndeny \"d\" {\n  resources = [\"chan:c\"]\n" + on + "  to {\n    labels = { a = \"b\" }\n  }\n}\n"
		if _, err := Parse("p.hcl", []byte(src)); err != nil {
			t.Errorf("a deny with a to block and %q: %v", on, err)
		}
	}
}
