package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// exitCase is one row of TestEveryVerbExitsAsTheTablesSay.
type exitCase struct {
	row  string // the table's row and column
	verb string
	args []string
	code int
}

// exitFixture is what the exit-code cases run against: a daemon, guests
// running and ended, files, and capabilities live and revoked.
type exitFixture struct {
	d                          *daemonProc
	dir, noDaemon              string
	hello, spin, notWasm, file string
	pol, bad, auditLog         string
	running, ended, revoked    string
	openState                  string // a state directory others may write
}

const unknownGuest = "nosuchguest"

func newExitFixture(t *testing.T) *exitFixture {
	t.Helper()
	d := serveDaemon(t, bin, "")
	dir := privateDir(t)
	f := &exitFixture{
		d: d, dir: dir, noDaemon: filepath.Join(dir, "nobody.sock"),
		hello:   guest(t, "abi/testdata/guests/hello.wat"), // exits 7
		spin:    guest(t, "daemon/testdata/guests/spin.wat"),
		notWasm: filepath.Join(dir, "not.wasm"), file: filepath.Join(dir, "f"),
		pol: filepath.Join(dir, "p.hcl"), bad: filepath.Join(dir, "bad.hcl"),
		auditLog: filepath.Join(d.state, "audit.jsonl"),
	}
	f.openState = filepath.Join(dir, "openstate")
	if err := os.Mkdir(f.openState, 0o777); err != nil || os.Chmod(f.openState, 0o777) != nil {
		t.Fatal("making a state directory others may write:", err)
	}
	for name, text := range map[string]string{f.notWasm: "not wasm", f.file: "", f.pol: "resource \"chan\" \"jobs\" {}\n", f.bad: "bogus {}\n"} {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f.running = f.launch(t, f.spin)
	f.ended = f.launch(t, f.hello)
	if r := d.cli(t, "wait", f.ended); r.code != 7 {
		t.Fatalf("wait: %d", r.code)
	}
	f.revoked = f.capOf(t, f.running)
	if r := d.cli(t, "revoke", f.revoked); r.code != 0 {
		t.Fatalf("revoke: %d %q", r.code, r.stderr)
	}
	return f
}

func (f *exitFixture) launch(t *testing.T, args ...string) string {
	t.Helper()
	r := f.d.cli(t, "launch", append([]string{"--detach"}, args...)...)
	if r.code != 0 {
		t.Fatalf("launch %v: %d %q", args, r.code, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// capOf grants guest id a file and returns the capability's id.
func (f *exitFixture) capOf(t *testing.T, id string) string {
	t.Helper()
	r := f.d.cli(t, "grant", id, "--grant", "file:"+f.file)
	if r.code != 0 {
		t.Fatalf("grant: %d %q", r.code, r.stderr)
	}
	c, _, _ := strings.Cut(r.stdout, "\t")
	return c
}

func (f *exitFixture) sock(args ...string) []string {
	return append([]string{"--socket", f.d.socket}, args...)
}

func (f *exitFixture) none(args ...string) []string {
	return append([]string{"--socket", f.noDaemon}, args...)
}

func (f *exitFixture) missing(name string) string { return filepath.Join(f.dir, name) }

// runCases are run's and launch's rows, and every verb's usage error.
func (f *exitFixture) runCases() []exitCase {
	hello, spin := f.hello, f.spin
	return []exitCase{
		{"every verb, 2", "run", []string{"--bogus", hello}, 2},
		{"every verb, 2", "launch", f.sock("--bogus", hello), 2},
		{"every verb, 2", "serve", []string{"--bogus"}, 2},
		{"every verb, 2", "help", []string{"bogus"}, 2},
		{"every verb, 2", "audit", nil, 2},
		{"every verb, 2", "policy", nil, 2},
		{"run, guest's status", "run", []string{hello}, 7},
		{"run, 2", "run", nil, 2},
		{"run, 2", "run", []string{"--grant", "disk:/x", hello}, 2},
		{"run, 3", "run", []string{"--grant", "dir:" + f.missing("d"), hello}, 3},
		{"run, 4", "run", []string{f.notWasm}, 4},
		{"run, 124", "run", []string{"--timeout", "10ms", spin}, 124},
		{"launch, guest's status", "launch", f.sock(hello), 7},
		{"launch, 0", "launch", f.sock("--detach", hello), 0},
		{"launch, 2", "launch", f.sock(), 2},
		{"launch, 2", "launch", f.sock("--mem", "32KiB", hello), 2},
		{"launch, 3", "launch", f.sock("--grant", "dir:"+f.missing("d"), hello), 3},
		{"launch, 4", "launch", f.sock(f.notWasm), 4},
		{"launch, 4", "launch", f.sock(f.missing("m.wasm")), 4},
		{"launch, 69", "launch", f.none(hello), 69},
		{"launch, 124", "launch", f.sock("--timeout", "10ms", spin), 124},
		{"wait, guest's status", "wait", f.sock(f.ended), 7},
		{"wait, 1", "wait", f.sock(unknownGuest), 1},
		{"wait, 2", "wait", f.sock(), 2},
		{"wait, 69", "wait", f.none(f.ended), 69},
	}
}

// guestCases are the rows of the verbs that look at or act on guests.
func (f *exitFixture) guestCases(t *testing.T) []exitCase {
	running, ended, file := f.running, f.ended, "file:"+f.file
	var cases []exitCase
	for _, verb := range []string{"logs", "caps", "inspect"} {
		cases = append(cases,
			exitCase{verb + ", 0", verb, f.sock(ended), 0},
			exitCase{verb + ", 1", verb, f.sock(unknownGuest), 1},
			exitCase{verb + ", 2", verb, f.sock(), 2},
			exitCase{verb + ", 69", verb, f.none(ended), 69})
	}
	return append(cases, []exitCase{
		{"ps, 0", "ps", f.sock("-a"), 0},
		{"ps, 2", "ps", f.sock("extra"), 2},
		{"ps, 2", "ps", f.sock("--filter", "bogus"), 2},
		{"ps, 69", "ps", f.none(), 69},
		{"caps, 0", "caps", f.sock(running), 0},
		{"grant, 0", "grant", f.sock(running, "--grant", file), 0},
		{"grant, 1", "grant", f.sock(unknownGuest, "--grant", file), 1},
		{"grant, 1", "grant", f.sock(ended, "--grant", file), 1},
		{"grant, 2", "grant", f.sock(running), 2},
		{"grant, 2", "grant", f.sock(running, "--grant", "disk:/x"), 2},
		{"grant, 3", "grant", f.sock(running, "--grant", "file:"+f.missing("x")), 3},
		{"grant, 69", "grant", f.none(running, "--grant", file), 69},
		{"revoke, 0", "revoke", f.sock(f.capOf(t, running)), 0},
		{"revoke, 1", "revoke", f.sock("c0000000000000000"), 1},
		{"revoke, 1", "revoke", f.sock(f.revoked), 1},
		{"revoke, 2", "revoke", f.sock(), 2},
		{"revoke, 69", "revoke", f.none(f.revoked), 69},
		{"compile, 0", "compile", f.sock(f.hello), 0},
		{"compile, 2", "compile", f.sock(), 2},
		{"compile, 4", "compile", f.sock(f.notWasm), 4},
		{"compile, 69", "compile", f.none(f.hello), 69},
		{"rm, 1", "rm", f.sock(running), 1},
		{"rm, 1", "rm", f.sock(unknownGuest), 1},
		{"rm, 2", "rm", f.sock(), 2},
		{"rm, 69", "rm", f.none(ended), 69},
		{"prune, 2", "prune", f.sock("extra"), 2},
		{"prune, 69", "prune", f.none(), 69},
	}...)
}

// otherCases are the rows of the verbs that need no guest.
func (f *exitFixture) otherCases() []exitCase {
	noLog, hello, sock := f.missing("a.jsonl"), f.hello, f.d.socket
	return []exitCase{
		{"version, 0", "version", nil, 0},
		{"version, 2", "version", []string{"extra"}, 2},
		{"abi, 0", "abi", nil, 0},
		{"abi, 2", "abi", []string{"--format", "bogus"}, 2},
		{"help, 0", "help", nil, 0},
		{"policy check, 0", "policy", []string{"check", f.pol}, 0},
		{"policy check, 1", "policy", []string{"check", f.bad}, 1},
		{"policy check, 2", "policy", []string{"check"}, 2},
		{"policy explain, 1", "policy", []string{"explain", "--policy", f.pol, "--grant", "chan:jobs", hello}, 1}, // no rule grants it
		{"policy explain, 2", "policy", []string{"explain", "--grant", "chan:jobs", hello}, 2},
		{"policy explain, 4", "policy", []string{"explain", "--policy", f.pol, "--grant", "chan:jobs", f.missing("m.wasm")}, 4},
		{"policy suggest, 0", "policy", []string{"suggest", "--from-audit", "--log", f.auditLog}, 0},
		{"policy suggest, 1", "policy", []string{"suggest", "--from-audit", "--log", noLog}, 1},
		{"policy suggest, 2", "policy", []string{"suggest"}, 2},
		{"audit log, 0", "audit", []string{"log", "--log", f.auditLog}, 0},
		{"audit log, 1", "audit", []string{"log", "--log", noLog}, 1},
		{"audit verify, 0", "audit", []string{"verify", "--log", f.auditLog}, 0},
		{"audit verify, 1", "audit", []string{"verify", "--log", noLog}, 1},
		{"audit graph, 0", "audit", []string{"graph", "--socket", sock}, 0},
		{"audit graph, 2", "audit", []string{"graph", "--socket", sock, "--format", "bogus"}, 2},
		{"audit graph, 69", "audit", []string{"graph", "--socket", f.noDaemon}, 69},
		{"audit trace, 1", "audit", []string{"trace", "--socket", sock, "c0000000000000000"}, 1},
		{"audit what-if, 2", "audit", []string{"what-if", "--socket", sock}, 2},
		{"audit who-can, 0", "audit", []string{"who-can", "--socket", sock, "file:" + f.file}, 0},
	}
}

// lastCases end the running guest and the daemon's hold on its socket's
// name, so they come last.
func (f *exitFixture) lastCases() []exitCase {
	ended := f.ended
	return []exitCase{
		{"kill, 0", "kill", f.sock(f.running), 0},
		{"kill, 0", "kill", f.sock(ended), 0},
		{"kill, 1", "kill", f.sock(unknownGuest), 1},
		{"kill, 1", "kill", f.sock(ended, unknownGuest), 1},
		{"kill, 2", "kill", f.sock(), 2},
		{"kill, 69", "kill", f.none(ended), 69},
		{"rm, 0", "rm", f.sock(ended), 0},
		{"prune, 0", "prune", f.sock(), 0},
		{"serve, 1", "serve", []string{"--socket", f.d.socket, "--state", f.missing("state2")}, 1},   // the socket is in use
		{"serve, 1", "serve", []string{"--socket", f.missing("s2.sock"), "--state", f.d.state}, 1},   // the state is locked
		{"serve, 1", "serve", []string{"--socket", f.missing("s3.sock"), "--state", f.openState}, 1}, // the state is unsafe
		{"serve, 2", "serve", []string{"--socket", f.noDaemon, "--policy", f.bad}, 2},
	}
}

// TestEveryVerbExitsAsTheTablesSay holds every verb to docs/CLI.md's exit
// code tables ("Exit codes"), through the built binary: a usage error, an
// unknown guest or capability, a daemon that is not there, success, and
// each verb's own codes. A failure names the row of the table it breaks.
func TestEveryVerbExitsAsTheTablesSay(t *testing.T) {
	t.Parallel()
	f := newExitFixture(t)
	cases := append(f.runCases(), f.guestCases(t)...)
	cases = append(append(cases, f.otherCases()...), f.lastCases()...)
	for _, c := range cases {
		r := sandboxd(t, "", append([]string{c.verb}, c.args...)...)
		if r.code != c.code {
			t.Errorf("%s %v: exit %d, want %d (docs/CLI.md, exit codes: %s); stderr %q", c.verb, c.args, r.code, c.code, c.row, r.stderr)
			continue
		}
		// A failure says why in a sandboxd: line on stderr; usage errors
		// too. The guest's own statuses come without one, policy explain's
		// denial too, and serve's stderr is its log, which ends with it.
		if c.code != 0 && c.code != 7 && c.verb != "audit" && c.verb != "policy" && !strings.Contains("\n"+r.stderr, "\nsandboxd: ") {
			t.Errorf("%s %v: exit %d without a sandboxd: line on stderr: %q", c.verb, c.args, r.code, r.stderr)
		}
	}
}
