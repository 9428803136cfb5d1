package main

import (
	"encoding/json"
	"fmt"
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

// A directory among the files is named as one, with the files to give
// instead, and the other files' problems are still every one reported.
func TestPolicyCheckNamesADirectoryAndStillReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	worse := filepath.Join(dir, "worse.hcl")
	if err := os.WriteFile(worse, []byte("grant \"h\" {\n  resources = [\"chan:c\"]\n  max_depth = 1\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := sandboxd(t, "", "policy", "check", worse, dir)
	for _, want := range []string{
		worse + ":3:3: Unsupported argument",
		dir + ": is a directory: give the policy's files (" + filepath.Join(dir, "*.hcl") + ")\n",
		"sandboxd: policy check: 2 problem(s) in 2 file(s); the policy does not load\n",
	} {
		if r.code != exitFailure || !strings.Contains(r.stderr, want) || r.stdout != "" {
			t.Errorf("policy check FILE DIR: code %d, stdout %q, stderr:\n%s\nwant %d and a line with %q", r.code, r.stdout, r.stderr, exitFailure, want)
		}
	}
}

func TestPolicyUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"policy"}, "want a subcommand: check FILE…, explain or suggest"},
		{[]string{"policy", "frob"}, `unknown subcommand "frob": want check, explain or suggest`},
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

// explainPipeline runs `policy explain` against the pipeline example,
// asking for chan:fetch-out for a module labelled pipeline=etl, with
// extra flags before the module.
func explainPipeline(t *testing.T, extra ...string) result {
	t.Helper()
	module := filepath.Join(t.TempDir(), "prog.wasm")
	if err := os.WriteFile(module, []byte("\x00asm\x01\x00\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"policy", "explain", "--policy", "../../policies/examples/pipeline.hcl", "--label", "pipeline=etl", "--grant", "chan:fetch-out"}
	return sandboxd(t, "", append(append(args, extra...), module)...)
}

func TestPolicyExplainAllowedNamesTheRule(t *testing.T) {
	r := explainPipeline(t, "--as", "1000", "--rights", "fd_read,fd_write")
	want := "allowed by grant \"pipeline-channels\" (../../policies/examples/pipeline.hcl:10)\n" +
		"  reason:  grant chan:fetch-out allowed by grant \"pipeline-channels\"\n" +
		"  rights:  fd_read|fd_write\n"
	if r.code != exitOK || r.stdout != want || r.stderr != "" {
		t.Fatalf("code %d, stderr %q, stdout:\n%s\nwant:\n%s", r.code, r.stderr, r.stdout, want)
	}
}

// uid 1001 is not the pipeline's operator: default deny, and the grant
// rule whose subject alone fails is the closest.
func TestPolicyExplainDeniedNamesTheClosestRule(t *testing.T) {
	r := explainPipeline(t, "--as", "1001")
	want := "denied: no rule matches (default deny)\n" +
		"  reason:  no grant rule allows chan:fetch-out (default deny); closest is \"pipeline-channels\", whose subject does not match\n" +
		"  closest: grant \"pipeline-channels\" (../../policies/examples/pipeline.hcl:10)\n"
	if r.code != exitFailure || r.stdout != want || r.stderr != "" {
		t.Fatalf("code %d, stderr %q, stdout:\n%s\nwant:\n%s", r.code, r.stderr, r.stdout, want)
	}
}

func TestPolicyExplainJSON(t *testing.T) {
	r := explainPipeline(t, "--as", "1001", "--json")
	var d struct {
		Allowed bool
		Rule    *struct{ Name string }
		Closest *struct{ Name string }
		Reason  string
	}
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("stdout is not JSON: %v: %q", err, r.stdout)
	}
	if r.code != exitFailure || d.Allowed || d.Rule != nil || d.Closest == nil || d.Closest.Name != "pipeline-channels" || !strings.Contains(d.Reason, "default deny") {
		t.Fatalf("code %d, decision %+v, stdout %q", r.code, d, r.stdout)
	}
}

func TestPolicyExplainUsageAndModuleErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--policy", "p.hcl", "--grant", "chan", "m.wasm"}, `--grant "chan": want KIND:NAME`},
		{[]string{"--policy", "p.hcl", "--grant", "disk:x", "m.wasm"}, `unknown kind "disk"`},
		{[]string{"--policy", "p.hcl", "--grant", "chan:x", "--rights", "fd_fly", "m.wasm"}, `--rights: unknown right "fd_fly"`},
		{[]string{"--policy", "p.hcl", "--grant", "chan:x", "--label", "nokey", "m.wasm"}, `--label "nokey": want KEY=VALUE`},
		{[]string{"--policy", "p.hcl", "m.wasm"}, "want --grant KIND:NAME"},
		{[]string{"--grant", "chan:x", "m.wasm"}, "want at least one --policy FILE"},
		{[]string{"--policy", "p.hcl", "--grant", "chan:x"}, "want exactly one module"},
		{[]string{"--bogus"}, "flag provided but not defined: -bogus"},
	} {
		args := append([]string{"policy", "explain"}, tc.args...)
		r := sandboxd(t, "", args...)
		if r.code != exitUsage || r.stdout != "" {
			t.Errorf("%v: code %d, want %d; stdout %q", args, r.code, exitUsage, r.stdout)
		}
		oneLine(t, r.stderr, tc.want)
	}
	r := sandboxd(t, "", "policy", "explain", "--policy", "../../policies/examples/pipeline.hcl", "--grant", "chan:x", filepath.Join(t.TempDir(), "missing.wasm"))
	if r.code != exitModule || r.stdout != "" {
		t.Errorf("missing module: code %d, stdout %q", r.code, r.stdout)
	}
	oneLine(t, r.stderr, "policy explain: cannot read module ")
}

// explain decides a host path where its symbolic links lead, as the daemon
// does: a link beneath an allowed directory to one no rule names is denied.
func TestPolicyExplainDecidesWhereALinkLeads(t *testing.T) {
	top := t.TempDir()
	pub, outside := filepath.Join(top, "public"), filepath.Join(top, "outside")
	for _, d := range []string{pub, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(pub, "o")); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(top, "p.hcl")
	if err := os.WriteFile(pol, fmt.Appendf(nil, "grant \"public\" {\n  resources = [\"dir:%s\"]\n}\n", pub), 0o600); err != nil {
		t.Fatal(err)
	}
	module := filepath.Join(top, "prog.wasm")
	if err := os.WriteFile(module, []byte("\x00asm\x01\x00\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	explain := func(path string) result {
		return sandboxd(t, "", "policy", "explain", "--policy", pol, "--grant", "dir:"+path, module)
	}
	if r := explain(filepath.Join(pub, "x")); r.code != exitOK {
		t.Fatalf("a path beneath public: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r := explain(filepath.Join(pub, "o", "x"))
	if r.code != exitFailure || !strings.Contains(r.stdout, "dir:"+filepath.Join(outside, "x")) {
		t.Fatalf("a path through a link out of public: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// explain reads --grant as run and launch do: a guest name or an option
// after the host path is not part of the path, so a path the policy denies
// is denied however the grant is written, as the daemon would deny it.
func TestPolicyExplainReadsTheGrantGrammar(t *testing.T) {
	top := t.TempDir()
	pol := filepath.Join(top, "p.hcl")
	src := fmt.Sprintf("resource \"sock\" \"db\" {\n  tcp = \"127.0.0.1:5432\"\n}\ngrant \"top\" {\n  resources = [\"dir:%s\", \"sock:db\"]\n}\ndeny \"private\" {\n  resources = [\"dir:%s/private\"]\n}\n", top, top)
	if err := os.WriteFile(pol, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	module := filepath.Join(top, "prog.wasm")
	if err := os.WriteFile(module, []byte("\x00asm\x01\x00\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	for grant, want := range map[string]int{
		"dir:" + top + "/private:ro":      exitFailure,
		"dir:" + top + "/private=/p":      exitFailure,
		"dir:" + top + "/private/x=/p:ro": exitFailure,
		"dir:" + top + "/public=/data:ro": exitOK,
		"sock:db:dial":                    exitOK,
	} {
		r := sandboxd(t, "", "policy", "explain", "--policy", pol, "--grant", grant, module)
		if r.code != want {
			t.Errorf("--grant %s: code %d, want %d; stdout %q, stderr %q", grant, r.code, want, r.stdout, r.stderr)
		}
	}
}

// A read-only grant asks for no right that modifies anything, as the
// daemon asks it (caps.GrantRights): explain shows the rights the daemon
// would give it, not the rule's whole ceiling.
func TestPolicyExplainAsksAReadOnlyGrantsRights(t *testing.T) {
	top := t.TempDir()
	pol := filepath.Join(top, "p.hcl")
	if err := os.WriteFile(pol, []byte(fmt.Sprintf("grant \"top\" {\n  resources = [\"dir:%s\", \"file:%s\"]\n}\n", top, top)), 0o600); err != nil {
		t.Fatal(err)
	}
	module := filepath.Join(top, "prog.wasm")
	if err := os.WriteFile(module, []byte("\x00asm\x01\x00\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--grant", "dir:" + top + "/data:ro"},
		{"--grant", "file:" + top + "/f=/f:ro"},
		{"--grant", "dir:" + top + "/data:ro", "--rights", "fd_read,fd_write"},
	} {
		r := sandboxd(t, "", append(append([]string{"policy", "explain", "--policy", pol, "--json"}, args...), module)...)
		var d struct {
			Allowed bool
			Rights  []string
		}
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil || r.code != exitOK || !d.Allowed {
			t.Fatalf("%v: code %d, stdout %q, stderr %q: %v", args, r.code, r.stdout, r.stderr, err)
		}
		if strings.Contains(strings.Join(d.Rights, ","), "fd_write") || len(d.Rights) == 0 {
			t.Errorf("%v: rights %v, want the read-only rights the daemon would give", args, d.Rights)
		}
	}
}
