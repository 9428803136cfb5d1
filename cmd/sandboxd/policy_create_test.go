package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A :create grant under a rule that gives the path read-only is denied,
// as the daemon denies it (daemon.DecideCreate), whatever --rights asks:
// explain says so, and says allowed where the rule gives write access.
func TestPolicyExplainDeniesACreateGrantARuleGivesReadOnly(t *testing.T) {
	top := t.TempDir()
	pol := filepath.Join(top, "p.hcl")
	if err := os.WriteFile(pol, []byte(fmt.Sprintf(`
grant "reports" {
  resources = ["file:%[1]s/ro"]
  read_only = true
}
grant "out" {
  resources = ["file:%[1]s/out"]
}
`, top)), 0o600); err != nil {
		t.Fatal(err)
	}
	module := filepath.Join(top, "prog.wasm")
	if err := os.WriteFile(module, []byte("\x00asm\x01\x00\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"--grant", "file:" + top + "/ro/new.csv:create"}, exitFailure},
		{[]string{"--grant", "file:" + top + "/ro/new.csv:create", "--rights", "fd_read"}, exitFailure},
		{[]string{"--grant", "file:" + top + "/ro/new.csv"}, exitOK},
		{[]string{"--grant", "file:" + top + "/out/new.log:create"}, exitOK},
	} {
		r := sandboxd(t, "", append(append([]string{"policy", "explain", "--policy", pol}, c.args...), module)...)
		if r.code != c.code {
			t.Errorf("%v: code %d, stdout %q, stderr %q, want %d", c.args, r.code, r.stdout, r.stderr, c.code)
		}
		if c.code == exitFailure && !strings.Contains(r.stdout, `grant "reports" gives it read-only, and a read-only grant creates no file`) {
			t.Errorf("%v: %q, want the reason a read-only rule creates no file", c.args, r.stdout)
		}
	}
}
