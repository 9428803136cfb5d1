package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyCheckAcceptsTheExamples(t *testing.T) {
	files, err := filepath.Glob("../../policies/examples/*.hcl")
	if err != nil || len(files) != 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	r := sandboxd(t, "", append([]string{"policy", "check"}, files...)...)
	if r.code != exitOK || r.stderr != "" || !strings.HasPrefix(r.stdout, "ok: 3 file(s), 4 resource(s), 6 rule(s)\n") {
		t.Fatalf("policy check examples: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// Every problem of every file is one line with its position, then one
// sandboxd: line sums up; the exit status is 1.
func TestPolicyCheckReportsEveryErrorWithItsPosition(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.hcl")
	worse := filepath.Join(dir, "worse.hcl")
	if err := os.WriteFile(bad, []byte("resource \"chan\" \"c\" {}\ngrant \"g\" {\n  resources = [\"chan:c\", \"chan:nope\"]\n  ttl = \"soon\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(worse, []byte("grant \"h\" {\n  resources = [\"chan:c\"]\n  max_depth = 1\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := sandboxd(t, "", "policy", "check", bad, worse)
	want := bad + ":3:26: resources: chan:nope is not declared (add resource \"chan\" \"nope\" { … })\n" +
		bad + ":4:9: ttl \"soon\" is not a positive duration (like \"90s\", \"10m\", \"2h\")\n" +
		worse + ":3:3: Unsupported argument: An argument named \"max_depth\" is not expected here.\n" +
		"sandboxd: policy check: 3 problem(s) in 2 file(s); the policy does not load\n"
	if r.code != exitFailure || r.stderr != want || r.stdout != "" {
		t.Fatalf("code %d, stdout %q, stderr:\n%s\nwant:\n%s", r.code, r.stdout, r.stderr, want)
	}
}

func TestPolicyUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"policy"}, "want a subcommand: check FILE…"},
		{[]string{"policy", "explain"}, `unknown subcommand "explain": want check`},
		{[]string{"policy", "check"}, "check: want at least one policy file"},
		{[]string{"policy", "--bogus", "check", "x.hcl"}, "flag provided but not defined: -bogus"},
	} {
		r := sandboxd(t, "", tc.args...)
		if r.code != exitUsage {
			t.Errorf("%v: code %d, want %d", tc.args, r.code, exitUsage)
		}
		oneLine(t, r.stderr, tc.want)
	}
	if r := sandboxd(t, "", "policy", "-h"); r.code != exitOK || !strings.HasPrefix(r.stdout, "Usage: sandboxd policy check FILE…") {
		t.Errorf("policy -h: code %d, stdout %q", r.code, r.stdout)
	}
}
