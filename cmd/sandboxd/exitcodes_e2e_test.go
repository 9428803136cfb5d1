package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryVerbExitsAsTheTablesSay holds every verb to docs/CLI.md's exit
// code tables ("Exit codes"), through the built binary: a usage error, an
// unknown guest or capability, a daemon that is not there, success, and
// each verb's own codes. A failure names the row of the table it breaks.
func TestEveryVerbExitsAsTheTablesSay(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	dir := privateDir(t)
	noDaemon := filepath.Join(dir, "nobody.sock")
	hello := guest(t, "abi/testdata/guests/hello.wat") // exits 7
	spin := guest(t, "daemon/testdata/guests/spin.wat")
	notWasm := filepath.Join(dir, "not.wasm")
	file := filepath.Join(dir, "f")
	pol := filepath.Join(dir, "p.hcl")
	bad := filepath.Join(dir, "bad.hcl")
	for name, text := range map[string]string{notWasm: "not wasm", file: "", pol: "resource \"chan\" \"jobs\" {}\n", bad: "bogus {}\n"} {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	launch := func(args ...string) string {
		r := d.cli(t, "launch", append([]string{"--detach"}, args...)...)
		if r.code != 0 {
			t.Fatalf("launch %v: %d %q", args, r.code, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	running := launch(spin)
	ended := launch(hello)
	if r := d.cli(t, "wait", ended); r.code != 7 {
		t.Fatalf("wait: %d", r.code)
	}
	capOf := func(id string) string {
		r := d.cli(t, "grant", id, "--grant", "file:"+file)
		if r.code != 0 {
			t.Fatalf("grant: %d %q", r.code, r.stderr)
		}
		c, _, _ := strings.Cut(r.stdout, "\t")
		return c
	}
	revoked := capOf(running)
	if r := d.cli(t, "revoke", revoked); r.code != 0 {
		t.Fatalf("revoke: %d %q", r.code, r.stderr)
	}
	const unknown = "nosuchguest"
	auditLog := filepath.Join(d.state, "audit.jsonl")

	sock := func(args ...string) []string { return append([]string{"--socket", d.socket}, args...) }
	none := func(args ...string) []string { return append([]string{"--socket", noDaemon}, args...) }
	type tc struct {
		row  string // the table's row and column
		verb string
		args []string
		code int
	}
	cases := []tc{
		// Every verb: a flag it does not have is a usage error.
		{"every verb, 2", "run", []string{"--bogus", hello}, 2},
		{"every verb, 2", "launch", sock("--bogus", hello), 2},
		{"every verb, 2", "serve", []string{"--bogus"}, 2},
		{"every verb, 2", "help", []string{"bogus"}, 2},
		{"every verb, 2", "audit", nil, 2},
		{"every verb, 2", "policy", nil, 2},

		{"run, guest's status", "run", []string{hello}, 7},
		{"run, 2", "run", nil, 2},
		{"run, 2", "run", []string{"--grant", "disk:/x", hello}, 2},
		{"run, 3", "run", []string{"--grant", "dir:" + filepath.Join(dir, "missing"), hello}, 3},
		{"run, 4", "run", []string{notWasm}, 4},
		{"run, 124", "run", []string{"--timeout", "10ms", spin}, 124},

		{"launch, guest's status", "launch", sock(hello), 7},
		{"launch, 0", "launch", sock("--detach", hello), 0},
		{"launch, 2", "launch", sock(), 2},
		{"launch, 2", "launch", sock("--mem", "32KiB", hello), 2},
		{"launch, 3", "launch", sock("--grant", "dir:"+filepath.Join(dir, "missing"), hello), 3},
		{"launch, 4", "launch", sock(notWasm), 4},
		{"launch, 4", "launch", sock(filepath.Join(dir, "missing.wasm")), 4},
		{"launch, 69", "launch", none(hello), 69},
		{"launch, 124", "launch", sock("--timeout", "10ms", spin), 124},

		{"wait, guest's status", "wait", sock(ended), 7},
		{"wait, 1", "wait", sock(unknown), 1},
		{"wait, 2", "wait", sock(), 2},
		{"wait, 69", "wait", none(ended), 69},

		{"ps, 0", "ps", sock("-a"), 0},
		{"ps, 2", "ps", sock("extra"), 2},
		{"ps, 2", "ps", sock("--filter", "bogus"), 2},
		{"ps, 69", "ps", none(), 69},
		{"logs, 0", "logs", sock(ended), 0},
		{"logs, 1", "logs", sock(unknown), 1},
		{"logs, 2", "logs", sock(), 2},
		{"logs, 69", "logs", none(ended), 69},
		{"caps, 0", "caps", sock(running), 0},
		{"caps, 0", "caps", sock(ended), 0},
		{"caps, 1", "caps", sock(unknown), 1},
		{"caps, 2", "caps", sock(), 2},
		{"caps, 69", "caps", none(running), 69},
		{"inspect, 0", "inspect", sock(ended), 0},
		{"inspect, 1", "inspect", sock(unknown), 1},
		{"inspect, 2", "inspect", sock(), 2},
		{"inspect, 69", "inspect", none(ended), 69},

		{"grant, 0", "grant", sock(running, "--grant", "file:"+file), 0},
		{"grant, 1", "grant", sock(unknown, "--grant", "file:"+file), 1},
		{"grant, 1", "grant", sock(ended, "--grant", "file:"+file), 1},
		{"grant, 2", "grant", sock(running), 2},
		{"grant, 2", "grant", sock(running, "--grant", "disk:/x"), 2},
		{"grant, 3", "grant", sock(running, "--grant", "file:"+filepath.Join(dir, "missing")), 3},
		{"grant, 69", "grant", none(running, "--grant", "file:"+file), 69},

		{"revoke, 0", "revoke", sock(capOf(running)), 0},
		{"revoke, 1", "revoke", sock("c0000000000000000"), 1},
		{"revoke, 1", "revoke", sock(revoked), 1},
		{"revoke, 2", "revoke", sock(), 2},
		{"revoke, 69", "revoke", none(revoked), 69},

		{"compile, 0", "compile", sock(hello), 0},
		{"compile, 2", "compile", sock(), 2},
		{"compile, 4", "compile", sock(notWasm), 4},
		{"compile, 69", "compile", none(hello), 69},

		{"rm, 1", "rm", sock(running), 1},
		{"rm, 1", "rm", sock(unknown), 1},
		{"rm, 2", "rm", sock(), 2},
		{"rm, 69", "rm", none(ended), 69},
		{"prune, 2", "prune", sock("extra"), 2},
		{"prune, 69", "prune", none(), 69},

		{"version, 0", "version", nil, 0},
		{"version, 2", "version", []string{"extra"}, 2},
		{"abi, 0", "abi", nil, 0},
		{"abi, 2", "abi", []string{"--format", "bogus"}, 2},
		{"help, 0", "help", nil, 0},

		{"policy check, 0", "policy", []string{"check", pol}, 0},
		{"policy check, 1", "policy", []string{"check", bad}, 1},
		{"policy check, 2", "policy", []string{"check"}, 2},
		{"policy explain, 0", "policy", []string{"explain", "--policy", pol, "--grant", "chan:jobs", hello}, 1}, // no rule grants it: denied
		{"policy explain, 2", "policy", []string{"explain", "--grant", "chan:jobs", hello}, 2},
		{"policy explain, 4", "policy", []string{"explain", "--policy", pol, "--grant", "chan:jobs", filepath.Join(dir, "missing.wasm")}, 4},
		{"policy suggest, 0", "policy", []string{"suggest", "--from-audit", "--log", auditLog}, 0},
		{"policy suggest, 1", "policy", []string{"suggest", "--from-audit", "--log", filepath.Join(dir, "missing.jsonl")}, 1},
		{"policy suggest, 2", "policy", []string{"suggest"}, 2},

		{"audit log, 0", "audit", []string{"log", "--log", auditLog}, 0},
		{"audit log, 1", "audit", []string{"log", "--log", filepath.Join(dir, "missing.jsonl")}, 1},
		{"audit verify, 0", "audit", []string{"verify", "--log", auditLog}, 0},
		{"audit verify, 1", "audit", []string{"verify", "--log", filepath.Join(dir, "missing.jsonl")}, 1},
		{"audit graph, 0", "audit", []string{"graph", "--socket", d.socket}, 0},
		{"audit graph, 2", "audit", []string{"graph", "--socket", d.socket, "--format", "bogus"}, 2},
		{"audit graph, 69", "audit", []string{"graph", "--socket", noDaemon}, 69},
		{"audit trace, 1", "audit", []string{"trace", "--socket", d.socket, "c0000000000000000"}, 1},
		{"audit what-if, 2", "audit", []string{"what-if", "--socket", d.socket}, 2},
		{"audit who-can, 0", "audit", []string{"who-can", "--socket", d.socket, "file:" + file}, 0},
	}
	// The daemon verbs, and kill last: it ends the running guest.
	cases = append(cases,
		tc{"kill, 0", "kill", sock(running), 0},
		tc{"kill, 0", "kill", sock(ended), 0},
		tc{"kill, 1", "kill", sock(unknown), 1},
		tc{"kill, 1", "kill", sock(ended, unknown), 1},
		tc{"kill, 2", "kill", sock(), 2},
		tc{"kill, 69", "kill", none(ended), 69},
		tc{"rm, 0", "rm", sock(ended), 0},
		tc{"prune, 0", "prune", sock(), 0},
		tc{"serve, 1", "serve", []string{"--socket", d.socket, "--state", filepath.Join(dir, "state2")}, 1}, // the socket is in use
		tc{"serve, 2", "serve", []string{"--socket", noDaemon, "--policy", bad}, 2},
	)
	for _, c := range cases {
		r := sandboxd(t, "", append([]string{c.verb}, c.args...)...)
		if r.code != c.code {
			t.Errorf("%s %v: exit %d, want %d (docs/CLI.md, exit codes: %s); stderr %q", c.verb, c.args, r.code, c.code, c.row, r.stderr)
			continue
		}
		// A failure says why in a sandboxd: line on stderr; usage errors
		// too. The guest's own statuses come without one, and serve's
		// stderr is its log, which ends with that line.
		if c.code != 0 && c.code != 7 && c.verb != "audit" && c.verb != "policy" && !strings.Contains("\n"+r.stderr, "\nsandboxd: ") {
			t.Errorf("%s %v: exit %d without a sandboxd: line on stderr: %q", c.verb, c.args, r.code, r.stderr)
		}
	}
}
