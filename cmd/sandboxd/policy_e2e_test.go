package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writePolicy writes a policy file named name into dir, creating dir.
func writePolicy(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// awaitLog waits until the daemon has logged s, n times at least.
func (d *daemonProc) awaitLog(t *testing.T, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for strings.Count(d.log.String(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon never logged %q %d times", s, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const worker = 4242 // a uid with no account, as the daemon sees a client

func TestDaemonPolicyDecidesWhatANonRootUserMayGrant(t *testing.T) {
	t.Parallel()
	pdir := filepath.Join(privateDir(t), "policy")
	data := privateDir(t) // the daemon opens it, as root: the worker need not reach it
	writePolicy(t, pdir, "worker.hcl", `
resource "chan" "jobs" {}
resource "chan" "secret" {}

grant "worker-data" {
  resources = ["dir:`+data+`"]
  read_only = true
  subject {
    uids = [`+strconv.Itoa(worker)+`]
  }
}

grant "worker-jobs" {
  resources = ["chan:jobs", "chan:secret"]
  subject {
    uids = [`+strconv.Itoa(worker)+`]
  }
}

deny "no-secrets" {
  resources = ["chan:secret"]
}
`)
	d := serveDaemon(t, bin, "", "--policy", pdir)
	shared := d.shareWithOthers(t)
	hello := filepath.Join(shared, "hello.wasm")
	copyFile(t, guest(t, "abi/testdata/guests/hello.wat"), hello, 0o644)

	r := d.cliAs(t, shared, worker, "launch", "--grant", "dir:"+data, "--grant", "chan:jobs", hello)
	if r.code != 7 || r.stdout != "hello\n" {
		t.Fatalf("launch with what the policy allows: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = d.cliAs(t, shared, worker, "launch", "--grant", "chan:secret", hello)
	if r.code != exitGrant || !strings.Contains(r.stderr, `denied by deny "no-secrets"`) || !strings.Contains(r.stderr, "worker.hcl:") {
		t.Fatalf("launch with a denied channel: code %d, stderr %q; want %d naming the deny rule and its file", r.code, r.stderr, exitGrant)
	}
	r = d.cliAs(t, shared, worker, "launch", "--grant", "dir:"+shared, hello)
	if r.code != exitGrant || !strings.Contains(r.stderr, "no grant rule allows dir:"+shared+" (default deny)") {
		t.Fatalf("launch with a path no rule covers: code %d, stderr %q; want %d, default deny", r.code, r.stderr, exitGrant)
	}
	// With a policy loaded, root is a subject like any other: the rule
	// for the worker's directory is the closest, and its subject fails.
	r = d.cli(t, "launch", "--grant", "dir:"+data, hello)
	if r.code != exitGrant || !strings.Contains(r.stderr, `closest is "worker-data", whose subject does not match`) {
		t.Fatalf("root launch with a grant only the worker may have: code %d, stderr %q", r.code, r.stderr)
	}
}

func TestDaemonChanGrantJoinsTwoGuests(t *testing.T) {
	t.Parallel()
	pdir := filepath.Join(privateDir(t), "policy")
	writePolicy(t, pdir, "jobs.hcl", `
resource "chan" "jobs" {}
grant "jobs" {
  resources = ["chan:jobs"]
}
`)
	d := serveDaemon(t, bin, "", "--policy", pdir)
	r := d.cli(t, "launch", "--detach", "--grant", "chan:jobs", guest(t, "cmd/sandboxd/testdata/chan_recv.c"))
	if r.code != 0 {
		t.Fatalf("launch the receiver: code %d, stderr %q", r.code, r.stderr)
	}
	recv := strings.TrimSpace(r.stdout)
	if r := d.cli(t, "launch", "--grant", "chan:jobs", guest(t, "cmd/sandboxd/testdata/chan_send.c")); r.code != 0 {
		t.Fatalf("launch the sender: code %d, stderr %q", r.code, r.stderr)
	}
	if r := d.cli(t, "wait", recv); r.code != 0 {
		t.Fatalf("the receiver: wait code %d, stderr %q", r.code, r.stderr)
	}
	if r := d.cli(t, "logs", recv); r.stdout != "ping" {
		t.Fatalf("the receiver got %q, want ping", r.stdout)
	}
}

func TestDaemonDelegationBeyondMaxDepthIsENOTCAPABLE(t *testing.T) {
	t.Parallel()
	pdir := filepath.Join(privateDir(t), "policy")
	data := privateDir(t)
	writePolicy(t, pdir, "depth.hcl", `
grant "data" {
  resources = ["dir:`+data+`"]
}
delegate "one-hop" {
  resources = ["dir:`+data+`"]
  max_depth = 1
}
`)
	d := serveDaemon(t, bin, "", "--policy", pdir)
	r := d.cli(t, "launch", "--grant", "dir:"+data, guest(t, "cmd/sandboxd/testdata/relay.c"))
	if r.code != 0 || r.stdout != "hop1 00 hop2 76\n" {
		t.Fatalf("relay: code %d, stdout %q (want hop1 00 hop2 76: the second hop is ENOTCAPABLE), stderr %q", r.code, r.stdout, r.stderr)
	}
	d.awaitLog(t, "delegation denied by policy", 1)
	if !strings.Contains(d.log.String(), `max_depth 1 of delegate \"one-hop\"`) && !strings.Contains(d.log.String(), `max_depth 1 of delegate "one-hop"`) {
		t.Fatalf("the denial's log line does not give the reason:\n%s", d.log.String())
	}
	// Without a policy nothing limits the hops.
	d2 := serveDaemon(t, bin, "")
	if r := d2.cli(t, "launch", "--grant", "dir:"+data, guest(t, "cmd/sandboxd/testdata/relay.c")); r.stdout != "hop1 00 hop2 00\n" {
		t.Fatalf("relay without a policy: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestDaemonLeaseExpiresAndTheGuestsNextCallFails(t *testing.T) {
	t.Parallel()
	pdir := filepath.Join(privateDir(t), "policy")
	short, long := privateDir(t), privateDir(t)
	writePolicy(t, pdir, "lease.hcl", `
grant "short" {
  resources = ["file:`+short+`"]
  ttl       = "1s"
}
grant "long" {
  resources = ["file:`+long+`"]
  ttl       = "1h"
}
`)
	d := serveDaemon(t, bin, "", "--policy", pdir)
	// A guest holding a grant leased for an hour: caps shows the time left.
	r := d.cli(t, "launch", "--detach", guest(t, "daemon/testdata/server/recv_hold.c"))
	if r.code != 0 {
		t.Fatalf("launch: %d %q", r.code, r.stderr)
	}
	holder := strings.TrimSpace(r.stdout)
	held := filepath.Join(long, "held")
	if err := os.WriteFile(held, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := d.cli(t, "grant", holder, "--grant", "file:"+held); r.code != 0 {
		t.Fatalf("grant: %d %q", r.code, r.stderr)
	}
	if r := d.cli(t, "caps", holder); !regexp.MustCompile(`\s(59m\d+s|1h0m0s) left\s`).MatchString(r.stdout) {
		t.Fatalf("caps does not show the lease's time left:\n%s", r.stdout)
	}

	// A guest writing through a grant leased for a second: the lease
	// revokes it, and the guest's next write is ENOTCAPABLE.
	r = d.cli(t, "launch", "--detach", guest(t, "daemon/testdata/server/recv_grant.c"))
	if r.code != 0 {
		t.Fatalf("launch: %d %q", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	ticks := filepath.Join(short, "ticks")
	if err := os.WriteFile(ticks, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := d.cli(t, "grant", id, "--grant", "file:"+ticks); r.code != 0 {
		t.Fatalf("grant: %d %q", r.code, r.stderr)
	}
	if r := d.cli(t, "wait", id); r.code != 0 {
		t.Fatalf("the guest did not see its lease end: wait code %d", r.code)
	}
	if r := d.cli(t, "logs", id); r.stdout != "received\nrevoked\n" {
		t.Fatalf("logs: %q", r.stdout)
	}
	d.awaitLog(t, "lease expired", 1)
}

func TestDaemonSIGHUPWithABrokenPolicyKeepsTheOldOne(t *testing.T) {
	t.Parallel()
	pdir := filepath.Join(privateDir(t), "policy")
	data := privateDir(t)
	writePolicy(t, pdir, "a.hcl", `
grant "data" {
  resources = ["dir:`+data+`"]
}
`)
	d := serveDaemon(t, bin, "", "--policy", pdir)
	r := d.cli(t, "launch", "--detach", "--grant", "dir:"+data, guest(t, "daemon/testdata/guests/spin.wat"))
	if r.code != 0 {
		t.Fatalf("launch under the first policy: %d %q", r.code, r.stderr)
	}
	live := strings.TrimSpace(r.stdout)

	writePolicy(t, pdir, "b.hcl", "grant \"broken\" {\n  resources = \n}\n")
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.awaitLog(t, "policy reload failed", 1)
	if !strings.Contains(d.log.String(), "b.hcl:2:15") {
		t.Fatalf("the reload failure does not say where:\n%s", d.log.String())
	}
	if !strings.Contains(d.log.String(), "fix the files named above and send SIGHUP again") {
		t.Fatalf("the reload failure does not say what to do:\n%s", d.log.String())
	}
	if r := d.cli(t, "launch", "--grant", "dir:"+data, guest(t, "abi/testdata/guests/hello.wat")); r.code != 7 {
		t.Fatalf("launch after a failed reload: code %d, stderr %q; want the old policy in force", r.code, r.stderr)
	}

	// A policy that loads replaces the old one at once; what it no longer
	// allows is logged, not revoked.
	writePolicy(t, pdir, "b.hcl", "# nothing\n")
	writePolicy(t, pdir, "a.hcl", "resource \"chan\" \"unused\" {}\n")
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.awaitLog(t, "policy reloaded", 1)
	if r := d.cli(t, "launch", "--grant", "dir:"+data, guest(t, "abi/testdata/guests/hello.wat")); r.code != exitGrant {
		t.Fatalf("launch after the reload: code %d, stderr %q; want %d", r.code, r.stderr, exitGrant)
	}
	d.awaitLog(t, "a live capability the reloaded policy would not grant", 1)
	if !strings.Contains(d.log.String(), live) {
		t.Fatalf("the reload's log does not name guest %s:\n%s", live, d.log.String())
	}
	if g := d.psJSON(t)[live]; !g.Running {
		t.Fatalf("guest %s stopped at the reload", live)
	}
}

func TestRunPolicyDecidesGrantsWithoutADaemon(t *testing.T) {
	t.Parallel()
	pdir := privateDir(t)
	data, other := privateDir(t), privateDir(t)
	policy := filepath.Join(pdir, "run.hcl")
	writePolicy(t, pdir, "run.hcl", `
grant "data" {
  resources = ["dir:`+data+`"]
}
deny "not-other" {
  resources = ["dir:`+other+`"]
}
`)
	hello := guest(t, "abi/testdata/guests/hello.wat")
	if r := sandboxd(t, "", "run", "--policy", policy, "--grant", "dir:"+data, hello); r.code != 7 || r.stdout != "hello\n" {
		t.Fatalf("run with an allowed grant: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r := sandboxd(t, "", "run", "--policy", policy, "--grant", "dir:"+other, hello)
	if r.code != exitGrant || r.stdout != "" {
		t.Fatalf("run with a denied grant: code %d, stdout %q; want %d and nothing run", r.code, r.stdout, exitGrant)
	}
	oneLine(t, r.stderr, `denied by deny "not-other" (`+policy+":5)")
	writePolicy(t, pdir, "bad.hcl", "grant \"x\" {\n  max_depth = 1\n  resources = [\"dir:/\"]\n}\n")
	r = sandboxd(t, "", "run", "--policy", filepath.Join(pdir, "bad.hcl"), hello)
	if r.code != exitUsage || !strings.Contains(r.stderr, "bad.hcl:2:3") || r.stdout != "" {
		t.Fatalf("run with a policy that does not load: code %d, stderr %q; want %d with the problem's position", r.code, r.stderr, exitUsage)
	}
	// run takes files; a directory, which serve takes, is named as one.
	r = sandboxd(t, "", "run", "--policy", pdir, hello)
	if r.code != exitUsage || r.stdout != "" {
		t.Fatalf("run --policy DIR: code %d, stdout %q; want %d and nothing run", r.code, r.stdout, exitUsage)
	}
	if want := pdir + ": is a directory: give the policy's files (" + filepath.Join(pdir, "*.hcl") + ")\n"; !strings.HasPrefix(r.stderr, want) {
		t.Fatalf("run --policy DIR: stderr %q, want it to begin with %q", r.stderr, want)
	}
}

// A deny rule for a file stops a grant of the directory that contains it,
// whose handle would reach it, and not a grant beside it.
func TestRunDenyStopsTheDirectoryThatContainsIt(t *testing.T) {
	t.Parallel()
	pdir, data := privateDir(t), privateDir(t)
	if err := os.Mkdir(filepath.Join(data, "pub"), 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(data, "secret.key")
	if err := os.WriteFile(secret, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(pdir, "run.hcl")
	writePolicy(t, pdir, "run.hcl", `
grant "data" {
  resources = ["dir:`+data+`"]
}
deny "key" {
  resources = ["file:`+secret+`"]
}
`)
	hello := guest(t, "abi/testdata/guests/hello.wat")
	if r := sandboxd(t, "", "run", "--policy", policy, "--grant", "dir:"+filepath.Join(data, "pub"), hello); r.code != 7 || r.stdout != "hello\n" {
		t.Fatalf("run with a directory beside the denied file: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r := sandboxd(t, "", "run", "--policy", policy, "--grant", "dir:"+data, hello)
	if r.code != exitGrant || r.stdout != "" {
		t.Fatalf("run with the directory that holds the denied file: code %d, stdout %q; want %d and nothing run", r.code, r.stdout, exitGrant)
	}
	oneLine(t, r.stderr, `is denied by deny "key": it contains file:`+secret+", which a handle on it would reach ("+policy+":5)")
}

// Under a policy a bare word names a resource, with run as through the
// daemon: one the policy does not declare is refused, not taken as a path
// in the working directory, which policy explain would not have allowed.
func TestRunPolicyTakesABareWordAsAResourceName(t *testing.T) {
	t.Parallel()
	pdir, work := privateDir(t), privateDir(t)
	if err := os.Mkdir(filepath.Join(work, "reports"), 0o755); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(pdir, "run.hcl")
	writePolicy(t, pdir, "run.hcl", `
grant "all" {
  resources = ["dir:/"]
}
`)
	hello := guest(t, "abi/testdata/guests/hello.wat")
	r := runBinaryIn(t, work, bin, "", "run", "--policy", policy, "--grant", "dir:reports", hello)
	if r.code != exitGrant || r.stdout != "" {
		t.Fatalf("run with an undeclared bare word: code %d, stdout %q; want %d and nothing run", r.code, r.stdout, exitGrant)
	}
	oneLine(t, r.stderr, "dir:reports is not declared in the policy (a host path has a /: dir:./reports)")
	if r := runBinaryIn(t, work, bin, "", "run", "--policy", policy, "--grant", "dir:./reports", hello); r.code != 7 || r.stdout != "hello\n" {
		t.Fatalf("run with the path written with a /: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := runBinaryIn(t, work, bin, "", "policy", "explain", "--policy", policy, "--grant", "dir:reports", hello); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "not declared") {
		t.Fatalf("policy explain of the same grant: code %d, stdout %q, stderr %q; want it denied as not declared", r.code, r.stdout, r.stderr)
	}
}

// A guest's supervisor channel is how the daemon knows it: no guest may
// pass its end on, with or without a policy.
func TestDaemonGuestCannotPassOnItsSupervisorChannel(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	// Launched with no grants, the relay's fd 3 is its supervisor channel.
	r := d.cli(t, "launch", guest(t, "cmd/sandboxd/testdata/relay.c"))
	if r.code != 0 || !strings.HasPrefix(r.stdout, "hop1 76 ") {
		t.Fatalf("relay of the supervisor channel: code %d, stdout %q (want hop1 76: ENOTCAPABLE), stderr %q", r.code, r.stdout, r.stderr)
	}
}

// A deny rule that names a declared directory stops its host path given
// inline, a path beneath it, and the directory that contains it.
func TestRunDenyByNameStopsItsHostPath(t *testing.T) {
	t.Parallel()
	pdir, data := privateDir(t), privateDir(t)
	reports := filepath.Join(data, "reports")
	for _, d := range []string{filepath.Join(reports, "2026"), filepath.Join(data, "pub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	policy := filepath.Join(pdir, "run.hcl")
	writePolicy(t, pdir, "run.hcl", `resource "dir" "reports" {
  path = "`+reports+`"
}
grant "data" {
  resources = ["dir:`+data+`"]
}
deny "reports" {
  resources = ["dir:rep*"]
}
`)
	hello := guest(t, "abi/testdata/guests/hello.wat")
	if r := sandboxd(t, "", "run", "--policy", policy, "--grant", "dir:"+filepath.Join(data, "pub"), hello); r.code != 7 || r.stdout != "hello\n" {
		t.Fatalf("run with a directory beside the denied one: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, tc := range []struct{ grant, reason string }{
		{reports, `dir:` + reports + ` is denied by deny "reports": dir:reports is ` + reports},
		{filepath.Join(reports, "2026"), `is denied by deny "reports": dir:reports is ` + reports},
		{data, `dir:` + data + ` is denied by deny "reports": it contains dir:reports (` + reports + `), which a handle on it would reach`},
	} {
		r := sandboxd(t, "", "run", "--policy", policy, "--grant", "dir:"+tc.grant, hello)
		if r.code != exitGrant || r.stdout != "" {
			t.Fatalf("run --grant dir:%s: code %d, stdout %q, stderr %q; want %d and nothing run", tc.grant, r.code, r.stdout, r.stderr, exitGrant)
		}
		oneLine(t, r.stderr, tc.reason+" ("+policy+":7)")
	}
}

// A SIGHUP after the policy directory is removed says what a running
// daemon's operator can do: "leave --policy out" is advice for starting
// serve, which a running daemon is past.
func TestDaemonSIGHUPWithThePolicyDirectoryGoneSaysWhatToDo(t *testing.T) {
	t.Parallel()
	pdir := filepath.Join(privateDir(t), "policy")
	writePolicy(t, pdir, "a.hcl", "resource \"chan\" \"unused\" {}\n")
	d := serveDaemon(t, bin, "", "--policy", pdir)
	if err := os.RemoveAll(pdir); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.awaitLog(t, "policy reload failed", 1)
	log := d.log.String()
	if strings.Contains(log, "leave --policy out") {
		t.Errorf("the reload failure advises what only applies at start:\n%s", log)
	}
	for _, want := range []string{"restore the directory and send SIGHUP again", "restart serve without --policy"} {
		if !strings.Contains(log, want) {
			t.Errorf("the reload failure does not say %q:\n%s", want, log)
		}
	}
}
