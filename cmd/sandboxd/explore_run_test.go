package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/policies"
	"golang.org/x/sys/unix"
)

// lastRecord returns the last record of the audit log at path.
func lastRecord(t *testing.T, path string) audit.Record {
	t.Helper()
	return lastRecordWhere(t, path, func(audit.Record) bool { return true })
}

// lastRecordWhere returns the last record of the audit log at path that
// keep says to keep, or a zero record.
func lastRecordWhere(t *testing.T, path string, keep func(audit.Record) bool) audit.Record {
	t.Helper()
	var last audit.Record
	if err := audit.Scan(path, func(r audit.Record, _ audit.Pos) error {
		if keep(r) {
			last = r
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return last
}

// run exits without waiting for a guest that spins in a loop (compiled
// without loop checks, it never stops on its own): one killed by
// --timeout, or the children of one that has exited. Its exit ends them,
// as serve's exit ends its guests, so the log must say so with a shutdown
// record, as serve's does: it used to end at the guest's start (or its
// children's handles), and the graph rebuilt from it showed the guests
// still holding everything they were given.
func TestRunAuditRecordsTheShutdownOfGuestsItsExitEnds(t *testing.T) {
	t.Parallel()
	spin := guest(t, guests+"spin.wat")
	spawner := guest(t, guests+"spawn_spin_exit.wat")
	for _, c := range []struct {
		name string
		args []string
		code int
	}{
		{"timeout", []string{"--timeout", "300ms", spin}, exitTimeout},
		{"spinning children", []string{"--grant", "file:" + spawner, spawner}, 7},
	} {
		log := filepath.Join(t.TempDir(), "run.jsonl")
		r := sandboxd(t, "", append([]string{"run", "--audit", log}, c.args...)...)
		if r.code != c.code {
			t.Fatalf("%s: exit %d, want %d (stderr %q)", c.name, r.code, c.code, r.stderr)
		}
		checkShutDown(t, c.name, log)
	}
	log := filepath.Join(t.TempDir(), "run.jsonl")
	cmd, wait := startGuest(t, "--audit", log, spin)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := wait(); code != exitInterrupt {
		t.Fatalf("SIGINT: exit %d, want %d", code, exitInterrupt)
	}
	checkShutDown(t, "SIGINT", log)
}

// checkShutDown checks that the log of a run whose exit ended its guest
// ends with the shutdown of one guest, verifies, and leaves nothing held.
func checkShutDown(t *testing.T, name, log string) {
	t.Helper()
	if last := lastRecord(t, log); last.Type != audit.TypeShutdown || last.Running != 1 {
		t.Errorf("%s: the log ends with a %s record (running %d), want shutdown with 1 guest running", name, last.Type, last.Running)
	}
	if r := sandboxd(t, "", "audit", "verify", "--log", log); r.code != 0 {
		t.Errorf("%s: verify: code %d stderr %q", name, r.code, r.stderr)
	}
	if r := sandboxd(t, "", "audit", "graph", "--log", log); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("%s: the graph after the run: code %d stdout %q, want nothing held", name, r.code, r.stdout)
	}
}

// A --audit log run cannot use is status 1 with one line that says what
// to do about it: a file of the wrong kind, or one in use, is not fixed
// by a file "this user may write", which every such line used to end
// with; a path that cannot be opened is.
func TestRunAuditLogThatCannotBeUsedSaysWhatToDo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notLog := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notLog, []byte("hello world\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	oneLong := filepath.Join(dir, "big.bin") // no newline in 65 MiB (sparse: no disk)
	if err := os.WriteFile(oneLong, nil, 0o600); err != nil || os.Truncate(oneLong, 65<<20) != nil {
		t.Fatal("cannot make a sparse file")
	}
	held := filepath.Join(dir, "held.jsonl")
	cmd, wait := startGuest(t, "--audit", held, guest(t, guests+"sleep_poll.wat"))
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		wait()
	}()
	hello := guest(t, guests+"exit300.wat")
	for _, c := range []struct{ log, want, not string }{
		{notLog, "it is not an audit log", "this user may write"},
		{held, "in use by another writer", "this user may write"},
		{oneLong, "it is not an audit log, or was edited; it was left as it is: check it with sandboxd audit verify, or write another log", "this user may write"},
		{dir, "is a directory: give --audit a file this user may write", ""},
		{filepath.Join(dir, "no", "such.jsonl"), "no such file or directory: give --audit a file this user may write", ""},
	} {
		r := sandboxd(t, "", "run", "--audit", c.log, hello)
		if r.code != exitFailure {
			t.Errorf("--audit %s: exit %d, want %d", c.log, r.code, exitFailure)
		}
		oneLine(t, r.stderr, c.want)
		if c.not != "" && strings.Contains(r.stderr, c.not) {
			t.Errorf("--audit %s: %q says %q, which does not help", c.log, r.stderr, c.not)
		}
	}
}

// A relative unix socket path is resolved against the directory run runs
// in (docs/GRANTS.md), with or without --deny. With any --deny it used to
// fail every such grant, covered or not, with "file:l.sock is not an
// absolute host path, which a deny list cannot judge": the deny list
// judges absolute paths only, and run handed it the path as written.
func TestRunDenyJudgesARelativeUnixSocketPathWhereItIs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, d := range []string{"pub", "priv"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	hello := guest(t, guests+"exit300.wat")
	r := sandboxdIn(t, dir, "run", "--deny", "dir:./priv", "--grant", "listen:unix:./pub/l.sock=web", hello)
	if r.code != 255 {
		t.Errorf("a listen grant beside the denied directory: exit %d, want the guest's 255 (stderr %q)", r.code, r.stderr)
	}
	r = sandboxdIn(t, dir, "run", "--deny", "dir:./priv", "--grant", "listen:unix:priv/l.sock=web", hello)
	if r.code != exitGrant {
		t.Errorf("a listen grant in the denied directory: exit %d, want %d", r.code, exitGrant)
	}
	oneLine(t, r.stderr, "file:"+filepath.Join(dir, "priv", "l.sock")+" is denied by --deny dir:"+filepath.Join(dir, "priv"))
}

// Too many --deny selectors is a usage error whose line names the flag:
// it used to read "run: --257 deny selectors: …".
func TestRunTooManyDenySelectorsNamesTheFlag(t *testing.T) {
	t.Parallel()
	args := []string{"run"}
	for i := 0; i <= policies.MaxDenySelectors; i++ {
		args = append(args, "--deny", "dir:/srv/x"+strconv.Itoa(i))
	}
	r := sandboxd(t, "", append(args, guest(t, guests+"exit300.wat"))...)
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	oneLine(t, r.stderr, "sandboxd: run: --deny: 257 selectors: at most 256 are taken")
}

// guestStart returns the guest-start record of the log at path.
func guestStart(t *testing.T, path string) audit.Record {
	t.Helper()
	return lastRecordWhere(t, path, func(r audit.Record) bool { return r.Type == audit.TypeGuestStart })
}

// who-can takes a capability's resource as the log shows it; a dialer's
// ("dial tcp 127.0.0.1:9") used to reach nothing, its kind not being
// among those a query names.
func TestAuditWhoCanFindsADialerByItsResource(t *testing.T) {
	t.Parallel()
	log := filepath.Join(t.TempDir(), "run.jsonl")
	// A dialer connects on the guest's sock_accept only: nothing need
	// listen on the port.
	r := sandboxd(t, "", "run", "--audit", log, "--grant", "sock:tcp:127.0.0.1:9=db:dial", guest(t, guests+"exit300.wat"))
	if r.code != 255 {
		t.Fatalf("run: exit %d, stderr %q", r.code, r.stderr)
	}
	at := guestStart(t, log).Time.Format(time.RFC3339Nano)
	for _, res := range []string{"dial tcp 127.0.0.1:9", "sock:tcp:127.0.0.1:9"} {
		r := sandboxd(t, "", "audit", "who-can", "--log", log, "--at", at, "--json", res)
		var reach []audit.Reach
		if err := json.Unmarshal([]byte(r.stdout), &reach); err != nil || len(reach) != 1 {
			t.Errorf("who-can %q: %d reaches (%v); stdout %q, stderr %q; want the dialer", res, len(reach), err, r.stdout, r.stderr)
		}
	}
}

// grantOf returns the id of the capability the log at path records as
// granted from text.
func grantOf(t *testing.T, path, text string) string {
	t.Helper()
	var id string
	if err := audit.Scan(path, func(r audit.Record, _ audit.Pos) error {
		if r.Type == audit.TypeGrant && r.Cap.Origin == text {
			id = r.Cap.ID
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if id == "" {
		t.Fatalf("no grant of %s in %s", text, path)
	}
	return id
}

// Once a run has ended, every capability in its log is closed: trace and
// what-if of one, asked of the log as it ends, find nothing. The error
// said so, and not what to do: ask as of a time it was held.
func TestAuditTraceOfAClosedCapabilitySaysToAskAsOfATime(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "run.jsonl")
	if r := sandboxd(t, "", "run", "--audit", log, "--grant", "dir:"+dir+"=data", guest(t, guests+"exit300.wat")); r.code != 255 {
		t.Fatalf("run: exit %d, stderr %q", r.code, r.stderr)
	}
	id := grantOf(t, log, "dir:"+dir+"=data")
	for _, args := range [][]string{{"trace", id}, {"what-if", "--revoke", id}} {
		r := sandboxd(t, "", append([]string{"audit", args[0], "--log", log}, args[1:]...)...)
		if r.code != exitFailure {
			t.Errorf("%s: exit %d, want %d", args[0], r.code, exitFailure)
		}
		oneLine(t, r.stderr, "every holder has closed it: ask as of a time it was held with --at (sandboxd audit log --cap "+id+" shows when)")
	}
	at := guestStart(t, log).Time.Format(time.RFC3339Nano)
	if r := sandboxd(t, "", "audit", "trace", "--log", log, "--at", at, id); r.code != 0 || !strings.HasPrefix(r.stdout, "1. "+id+" grant dir ") {
		t.Errorf("trace --at the guest's start: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// what-if counts in English: "1 capability", not "1 capabilities".
func TestAuditWhatIfOfOneCapabilitySaysCapability(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "run.jsonl")
	if r := sandboxd(t, "", "run", "--audit", log, "--grant", "dir:"+dir+"=data", guest(t, guests+"exit300.wat")); r.code != 255 {
		t.Fatalf("run: exit %d, stderr %q", r.code, r.stderr)
	}
	id := grantOf(t, log, "dir:"+dir+"=data")
	start := guestStart(t, log)
	r := sandboxd(t, "", "audit", "what-if", "--log", log, "--at", start.Time.Format(time.RFC3339Nano), "--revoke", id)
	if want := "revoking " + id + " would cut off 1 capability held by " + start.Guest.ID + ": " + id + "\n"; r.code != 0 || r.stdout != want {
		t.Errorf("what-if: exit %d, stdout %q, want %q", r.code, r.stdout, want)
	}
}

// policy explain reads --label as run and launch do: a label they refuse
// (a key with a space, one key twice) is a usage error, not a request
// explained as if it could be made. explain took both: the second value
// of a key silently replaced the first.
func TestPolicyExplainRefusesTheLabelsRunRefuses(t *testing.T) {
	t.Parallel()
	for _, labels := range [][]string{{"bad key=x"}, {"pipeline=etl", "pipeline=other"}} {
		args := []string{}
		for _, l := range labels {
			args = append(args, "--label", l)
		}
		if r := sandboxd(t, "", append(append([]string{"run"}, args...), guest(t, guests+"exit300.wat"))...); r.code != exitUsage {
			t.Fatalf("run %v: exit %d, want %d", args, r.code, exitUsage)
		}
		r := explainPipeline(t, args...)
		if r.code != exitUsage {
			t.Errorf("explain %v: exit %d, stdout %q; want %d", args, r.code, r.stdout, exitUsage)
		}
		oneLine(t, r.stderr, "--label")
	}
}

// Under a policy, run and launch refuse a sock or listen grant of an
// inline address before the policy is asked: a policy names sockets by
// resource. explain answered such a --grant as a request for a resource
// named "tcp:127.0.0.1:9", "not declared in the policy", which sends the
// reader looking for a declaration that cannot be written.
func TestPolicyExplainSaysAPolicyDoesNotNameInlineAddresses(t *testing.T) {
	t.Parallel()
	for _, g := range []string{"sock:tcp:127.0.0.1:9=db", "listen:127.0.0.1:0", "sock:unix:/run/x.sock=db:dial"} {
		r := explainPipeline(t, "--grant", g)
		if r.code != exitUsage {
			t.Errorf("explain --grant %s: exit %d, stdout %q; want %d", g, r.code, r.stdout, exitUsage)
		}
		oneLine(t, r.stderr, "an address inline, which a policy does not name: declare it as a "+strings.SplitN(g, ":", 2)[0]+" resource and ask for it by name")
	}
}

// A --deny glob of dir or file names matches resources of a policy only;
// without --policy, run refused it advising "give a path (dir:./*)", a
// path of a directory named "*".
func TestRunDenyGlobWithoutAPolicyAdvisesAPath(t *testing.T) {
	t.Parallel()
	r := sandboxd(t, "", "run", "--deny", "dir:rep*", guest(t, guests+"exit300.wat"))
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	oneLine(t, r.stderr, `--deny "dir:rep*" matches dir resources of a policy by name, and run has no --policy: deny a host path (dir:/PATH, dir:./PATH)`)
	if strings.Contains(r.stderr, "./rep*") {
		t.Errorf("stderr %q advises a path with a *", r.stderr)
	}
}

// --max-fds too small for the grants counts them in English.
func TestRunMaxFDsTooSmallCountsTheGrants(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := sandboxd(t, "", "run", "--max-fds", "3", "--grant", "dir:"+dir, guest(t, guests+"exit300.wat"))
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	oneLine(t, r.stderr, "--max-fds 3 leaves no room for 3 stdio handles and 1 grant: allow at least 4")
}

// The compilation cache is an optimisation: a user whose default cache
// directory cannot be made (no home, or one not theirs to write, as a
// service account's often is) still runs guests, compiled in memory, told
// so once on stderr. run used to fail with status 1 and do nothing. A
// --cache-dir given and unusable still fails: it was asked for.
func TestRunWithAnUnusableDefaultCacheCompilesInMemory(t *testing.T) {
	t.Parallel()
	exit300 := guest(t, guests+"exit300.wat")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XDG_CACHE_HOME=") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	env = append(env, "HOME=/proc/no-such-home")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", exit300}, 255, "compiling in memory"},
		{[]string{"run", "--cache-dir", "/proc/no-such-dir", exit300}, exitFailure, "sandboxd: cannot start the runtime: compilation cache /proc/no-such-dir"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		cmd := exec.CommandContext(ctx, bin, c.args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		_ = cmd.Run()
		cancel()
		if code := cmd.ProcessState.ExitCode(); code != c.code || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d saying %q", c.args, code, stderr.String(), c.code, c.want)
		}
	}
}

// A policy file named twice (a glob and the file, ./p.hcl and p.hcl) is
// one file of the policy: it used to be loaded twice and refused, each of
// its rules "already used" at its own position and tied with itself.
func TestPolicyFileGivenTwiceLoadsOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "p.hcl")
	if err := os.WriteFile(p, []byte("grant \"data\" {\n  resources = [\"dir:"+dir+"\"]\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	twice := dir + "/./p.hcl" // the same file, by another name
	if r := sandboxd(t, "", "policy", "check", p, twice); r.code != 0 || r.stdout != "ok: 1 file(s), 0 resource(s), 1 rule(s)\n" {
		t.Errorf("policy check: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r := sandboxd(t, "", "run", "--policy", p, "--policy", twice, "--grant", "dir:"+dir+"=data", guest(t, guests+"exit300.wat"))
	if r.code != 255 {
		t.Errorf("run: exit %d, stderr %q; want the guest's 255", r.code, r.stderr)
	}
}

// Every reader of a log that is not there says so once, and what to
// give instead. They said "file does not exist" and nothing more, and
// audit log --follow said "audit log: audit log: open …".
func TestAuditOfAMissingLogSaysWhatToGive(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "run.jsonl")
	for _, args := range [][]string{
		{"audit", "log", "--log", missing},
		{"audit", "log", "--follow", "--log", missing},
		{"audit", "verify", "--log", missing},
		{"audit", "graph", "--log", missing},
		{"audit", "who-can", "--log", missing, "/srv"},
		{"policy", "suggest", "--from-audit", "--log", missing},
	} {
		r := sandboxd(t, "", args...)
		if r.code != exitFailure {
			t.Errorf("%v: exit %d, want %d", args, r.code, exitFailure)
		}
		oneLine(t, r.stderr, "audit log "+missing+": file does not exist: give a log's path with --log FILE (run --audit's), or a daemon's state directory with --state DIR")
		if strings.Count(r.stderr, "audit log") > 2 {
			t.Errorf("%v: %q", args, r.stderr)
		}
	}
}

// An audit log that cannot take the launch's records (a full disk) fails
// the run with status 1, as an --audit FILE that cannot be used does
// (docs/CLI.md): it used to be a usage error, status 2 with "see 'sandboxd
// run -h'", which nothing in the command line could mend. The child's
// file-size limit (inherited; the test is not parallel, so no other test
// writes while it is set) lets the log take its open record, not the
// launch's.
func TestRunWhoseAuditLogFillsUpExits1(t *testing.T) {
	log := filepath.Join(t.TempDir(), "run.jsonl")
	hello := guest(t, guests+"exit300.wat")
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--cache-dir", "", "--audit", log, "--grant", "dir:"+t.TempDir(), hello)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: 1024, Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	err := cmd.Start()
	if rerr := unix.Setrlimit(unix.RLIMIT_FSIZE, &old); rerr != nil || err != nil {
		t.Fatal(rerr, err)
	}
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitFailure {
		t.Errorf("exit %d, want %d; stderr %q", code, exitFailure, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "sandboxd: ") || !strings.Contains(last, "the audit log cannot be written") || strings.Contains(last, "run -h") {
		t.Errorf("last line %q: want the audit log's failure, without the usage hint", last)
	}
}

// who-can takes a relative host path (data/q1.csv, dir:./data) as a path
// where it is asked, as run and policy explain take one: it used to
// compare the text, so that a run's grant of dir:./data matched
// "dir:./data" asked anywhere, another directory's data included, and
// "data/q1.csv" beneath it matched nothing.
func TestAuditWhoCanTakesARelativePathWhereItIsAsked(t *testing.T) {
	t.Parallel()
	here, elsewhere := t.TempDir(), t.TempDir()
	for _, d := range []string{here, elsewhere} {
		if err := os.Mkdir(filepath.Join(d, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	log := filepath.Join(here, "run.jsonl")
	if r := sandboxdIn(t, here, "run", "--audit", log, "--grant", "dir:./data", "--grant", "listen:unix:./l.sock=web", guest(t, guests+"exit300.wat")); r.code != 255 {
		t.Fatalf("run: exit %d, stderr %q", r.code, r.stderr)
	}
	at := guestStart(t, log).Time.Format(time.RFC3339Nano)
	for _, c := range []struct {
		dir, resource string
		reaches       int
	}{
		{here, "dir:./data", 1},
		{here, "data/q1.csv", 1},
		{here, "./data", 1},
		{here, "listen:unix:./l.sock", 1},
		{here, "listen unix l.sock", 1},
		{elsewhere, "listen:unix:./l.sock", 0},
		{elsewhere, "dir:./data", 0},
		{elsewhere, "data/q1.csv", 0},
	} {
		r := sandboxdIn(t, c.dir, "audit", "who-can", "--log", log, "--at", at, "--json", c.resource)
		var reach []audit.Reach
		if err := json.Unmarshal([]byte(r.stdout), &reach); err != nil || len(reach) != c.reaches {
			t.Errorf("who-can %q in %s: %d reaches (%v, stderr %q), want %d", c.resource, c.dir, len(reach), err, r.stderr, c.reaches)
		}
	}
}

// verify's note on a log a crash left torn says who drops the torn line:
// the next writer, which for a run --audit log is the next run, not "the
// daemon".
func TestAuditVerifyNoteOnATornRunLogNamesItsNextWriter(t *testing.T) {
	t.Parallel()
	log := filepath.Join(t.TempDir(), "run.jsonl")
	if r := sandboxd(t, "", "run", "--audit", log, guest(t, guests+"exit300.wat")); r.code != 255 {
		t.Fatalf("run: exit %d, stderr %q", r.code, r.stderr)
	}
	f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(`{"v":1,"seq":`)
	if cerr := f.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	r := sandboxd(t, "", "audit", "verify", "--log", log)
	if r.code != 0 || !strings.Contains(r.stdout, "never acknowledged; the next writer (sandboxd serve, or run --audit) drops it when it opens the log\n") {
		t.Errorf("verify: exit %d, stdout %q", r.code, r.stdout)
	}
}

// audit log prints a shutdown record with what it holds: how many guests
// the shutdown ended. The line was the record's type alone.
func TestAuditLogPrintsHowManyGuestsAShutdownEnded(t *testing.T) {
	t.Parallel()
	log := filepath.Join(t.TempDir(), "run.jsonl")
	if r := sandboxd(t, "", "run", "--audit", log, "--timeout", "300ms", guest(t, guests+"spin.wat")); r.code != exitTimeout {
		t.Fatalf("run: exit %d, stderr %q", r.code, r.stderr)
	}
	r := sandboxd(t, "", "audit", "log", "--log", log)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if last := lines[len(lines)-1]; r.code != 0 || !strings.Contains(last, " shutdown ") || !strings.HasSuffix(last, " ended 1 guest still running") {
		t.Errorf("audit log: exit %d, last line %q", r.code, last)
	}
}

// An environment key given twice is a usage error, as a label given twice
// is: a guest's getenv saw the first of the two, where a shell's user
// expects the last.
func TestRunEnvKeyGivenTwiceIsAUsageError(t *testing.T) {
	t.Parallel()
	r := sandboxd(t, "", "run", "--env", "A=1", "--env", "A=2", guest(t, guests+"exit300.wat"))
	if r.code != exitUsage || !strings.Contains(r.stderr, "--env A is given twice") {
		t.Errorf("exit %d, stderr %q; want a usage error naming the key given twice", r.code, r.stderr)
	}
}

// :create does not combine with :ro, and the error says so rather than
// asking for a guest name.
func TestRunFileGrantCreateWithReadOnlySaysTheyDoNotCombine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, g := range []string{"file:" + dir + "/out.log:create:ro", "file:" + dir + "/out.log:ro:create"} {
		r := sandboxd(t, "", "run", "--grant", g, guest(t, guests+"exit300.wat"))
		if r.code != exitUsage || !strings.Contains(r.stderr, ":create does not combine with :ro") || strings.Contains(r.stderr, "add =NAME") {
			t.Errorf("%s: exit %d, stderr %q", g, r.code, r.stderr)
		}
	}
}

// A file grant of a symbolic link whose target is missing says so: it is
// not a missing file that :create would make, since :create follows no
// link.
func TestRunFileGrantOfADanglingLinkSaysItIsALink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	link := filepath.Join(dir, "out.log")
	if err := os.Symlink(filepath.Join(dir, "missing"), link); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"file:" + link, "file:" + link + ":create"} {
		r := sandboxd(t, "", "run", "--grant", g, guest(t, guests+"exit300.wat"))
		if r.code != exitGrant || !strings.Contains(r.stderr, "symbolic link") {
			t.Errorf("%s: exit %d, stderr %q", g, r.code, r.stderr)
		}
	}
}
