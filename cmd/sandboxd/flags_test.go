package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
)

// TestEveryVerbTakesFlagsAfterItsArguments holds every verb but run and
// launch (whose arguments after the module are the guest's) to flags
// anywhere among its arguments: `VERB ARG -h` prints the verb's help, and
// after "--" a flag is an argument.
func TestEveryVerbTakesFlagsAfterItsArguments(t *testing.T) {
	verbs := []string{"policy check", "policy explain", "policy suggest"}
	for name := range auditVerbs {
		verbs = append(verbs, "audit "+name)
	}
	for name, c := range commands {
		if !c.guestArgs && name != "policy" && name != "audit" {
			verbs = append(verbs, name)
		}
	}
	sort.Strings(verbs)
	for _, v := range verbs {
		args := append(strings.Fields(v), "some-arg", "-h")
		r := sandboxd(t, "", args...)
		if r.code != exitOK || !strings.HasPrefix(r.stdout, "Usage: sandboxd "+v+" ") {
			t.Errorf("sandboxd %s some-arg -h: code %d, stdout %q, stderr %q; want its help", v, r.code, r.stdout, r.stderr)
		}
	}
	for name, c := range commands {
		if c.guestArgs {
			continue
		}
		if name == "abi" || name == "policy" || name == "audit" {
			continue // abi takes no arguments; policy's and audit's sub-verbs are above
		}
		r := sandboxd(t, "", name, "--socket", "/nonexistent/sock", "--", "-h")
		if strings.HasPrefix(r.stdout, "Usage:") {
			t.Errorf("sandboxd %s -- -h printed the help: after --, -h is an argument", name)
		}
	}
}

func TestKillAndCapsTakeFlagsAfterTheGuestIDAndSayWhenItHasEnded(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	id := d.launchSpin(t)
	if r := sandboxd(t, "", "caps", id, "--socket", d.socket, "--json"); r.code != 0 || !strings.HasPrefix(r.stdout, "{") {
		t.Fatalf("caps ID --socket S --json: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := sandboxd(t, "", "kill", id, "--socket", d.socket, "--reason", "done"); r.code != 0 || r.stderr != "" {
		t.Fatalf("kill ID --reason done: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if g := d.psJSON(t)[id]; g.Running || g.Status.Killed != "done" {
		t.Fatalf("after kill ID --reason done: %+v", g)
	}
	if r := d.cli(t, "kill", id); r.code != 0 || r.stdout != id+"\talready ended: killed (done)\n" {
		t.Fatalf("kill of an ended guest: code %d, stdout %q", r.code, r.stdout)
	}
	if r := d.cli(t, "caps", id); r.code != 0 || r.stdout != id+" has ended (killed (done)): it holds no handles\n" {
		t.Fatalf("caps of an ended guest: code %d, stdout %q", r.code, r.stdout)
	}
}

func TestDurationFlagsSayWhatADurationLooksLike(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ value, says string }{
		{"5", "a duration needs a unit: 5s, 5ms or 5m"},
		{"5x", "not a duration: write a number and a unit"},
	} {
		r := sandboxd(t, "", "run", "--timeout", tc.value, "prog.wasm")
		if r.code != exitUsage {
			t.Errorf("--timeout %s: exit %d, want %d", tc.value, r.code, exitUsage)
		}
		oneLine(t, r.stderr, tc.says)
	}
}

func TestLogsTakesFollowInFullAndAsF(t *testing.T) {
	t.Parallel()
	r := sandboxd(t, "", "logs", "-h")
	if !strings.Contains(r.stdout, "\n  -f\n") || !strings.Contains(r.stdout, "\n  --follow\n") {
		t.Fatalf("logs -h lists neither -f nor --follow as written:\n%s", r.stdout)
	}
	for _, flag := range []string{"-f", "--follow"} {
		r := sandboxd(t, "", "logs", "--socket", "/nonexistent/sandboxd.sock", flag, "g-1")
		if r.code != exitUnavailable {
			t.Errorf("logs %s: exit %d (stderr %q), want %d: the flag parsed, then no daemon", flag, r.code, r.stderr, exitUnavailable)
		}
	}
}

// TestRunAndLaunchExitAlikeForARequestTheyRefuse holds run and launch to
// one exit status and one message for a module that needs more memory
// than --mem allows: a usage error, said once.
func TestRunAndLaunchExitAlikeForARequestTheyRefuse(t *testing.T) {
	t.Parallel()
	hello := guest(t, "abi/testdata/guests/hello.wat")
	want := "hello.wasm needs 65536 bytes of memory to start, more than the memory limit of 32768"
	r := sandboxd(t, "", "run", "--mem", "32KiB", hello)
	if r.code != exitUsage || !strings.HasPrefix(r.stderr, "sandboxd: run: "+want) {
		t.Fatalf("run: code %d, stderr %q; want %d and %q", r.code, r.stderr, exitUsage, want)
	}
	d := serveDaemon(t, bin, "")
	r = d.cli(t, "launch", "--mem", "32KiB", hello)
	if r.code != exitUsage || r.stderr != "sandboxd: launch: "+want+": raise the limit (--mem) to at least 65536\n" {
		t.Fatalf("launch: code %d, stderr %q; want %d and %q once", r.code, r.stderr, exitUsage, want)
	}
}

func TestVersionNamesTheBuildAndItsRuntimes(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := sandboxd(t, "", args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "sandboxd ") || !strings.Contains(r.stdout, "wazero v") || !strings.Contains(r.stdout, "go-capnp v") || !strings.Contains(r.stdout, runtime.Version()) {
			t.Errorf("%v: code %d, stdout %q", args, r.code, r.stdout)
		}
	}
	r := sandboxd(t, "", "version", "--json")
	var v versionInfo
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Wazero == "" || v.Go != runtime.Version() {
		t.Fatalf("version --json: %q (%v)", r.stdout, err)
	}
}

func TestNamedGuestIsInspectedAndReachedByName(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	data := privateDir(t)
	r := d.cli(t, "launch", "--detach", "--name", "worker-1", "--label", "app=etl", "--mem", "1MiB", "--timeout", "1h", "--grant", "dir:"+data+"=data:ro", guest(t, "daemon/testdata/guests/spin.wat"))
	if r.code != 0 {
		t.Fatalf("launch --name: %d %q", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	if r := d.cli(t, "launch", "--detach", "--name", "worker-1", guest(t, "daemon/testdata/guests/spin.wat")); r.code != exitUsage || !strings.Contains(r.stderr, `guest name "worker-1" is taken by `+id) {
		t.Fatalf("a second guest with the same name: code %d, stderr %q", r.code, r.stderr)
	}
	checkPsNames(t, d, id, "worker-1")
	r = d.cli(t, "inspect", "worker-1", "--json")
	var got inspection
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("inspect --json: %q (%v, stderr %q)", r.stdout, err, r.stderr)
	}
	g := got.GuestInfo
	if g.ID != id || g.GuestName != "worker-1" || g.MemoryLimit != 1<<20 || g.Timeout != time.Hour || g.MaxFDs != 1024 ||
		len(g.Grants) != 1 || g.Grants[0] != "dir:"+data+"=data:ro" || len(g.Labels) != 1 || g.Labels[0] != "app=etl" || len(got.HandleTable) != 5 {
		t.Fatalf("inspect worker-1: %+v", got)
	}
	if r := d.cli(t, "inspect", "worker-1"); !strings.Contains(r.stdout, "name:") || !strings.Contains(r.stdout, "worker-1") || !strings.Contains(r.stdout, "timeout 1h0m0s") {
		t.Fatalf("inspect worker-1:\n%s", r.stdout)
	}
	if r := d.cli(t, "kill", "worker-1"); r.code != 0 || !strings.HasPrefix(r.stdout, id+"\t") {
		t.Fatalf("kill by name: code %d, stdout %q", r.code, r.stdout)
	}
}

// checkPsNames checks that ps --filter name=NAME lists the guest id alone,
// its name beside its id.
func checkPsNames(t *testing.T, d *daemonProc, id, name string) {
	t.Helper()
	r := d.cli(t, "ps", "--filter", "name="+name)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 2 || !strings.Contains(lines[0], "NAME") || !strings.HasPrefix(lines[1], id+"  "+name+"  ") {
		t.Fatalf("ps --filter name=%s: the guest with its name beside its id, alone:\n%s", name, r.stdout)
	}
}

func TestLogsKeepsStdoutAndStderrApart(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	d.launchAndWait(t, "il", guest(t, "daemon/testdata/server/interleave.wat"), 3)
	if r := d.cli(t, "logs", "il", "--stdout"); r.stdout != "out1\nout2\n" || r.stderr != "" {
		t.Fatalf("logs --stdout: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if r := d.cli(t, "logs", "il", "--stderr"); r.stdout != "" || r.stderr != "err1\n" {
		t.Fatalf("logs --stderr: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if r := d.cli(t, "logs", "il"); r.stdout != "out1\nout2\n" || r.stderr != "err1\n" {
		t.Fatalf("logs: stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

func TestKillRevokeAndGrantPrintJSON(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	r := d.cli(t, "launch", "--detach", guest(t, "daemon/testdata/server/recv_hold.c"))
	if r.code != 0 {
		t.Fatalf("launch: %d %q", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	file := filepath.Join(privateDir(t), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r = d.cli(t, "grant", id, "--grant", "file:"+file, "--json")
	var ci client.CapInfo
	if err := json.Unmarshal([]byte(r.stdout), &ci); err != nil || ci.Kind != "file" || ci.Name != "f" {
		t.Fatalf("grant --json: %q (%v)", r.stdout, err)
	}
	r = d.cli(t, "revoke", ci.ID, "--json")
	var rc client.Receipt
	if err := json.Unmarshal([]byte(r.stdout), &rc); err != nil || rc.Root != ci.ID || len(rc.Revoked) != 1 {
		t.Fatalf("revoke --json: %q (%v)", r.stdout, err)
	}
	for _, already := range []bool{false, true} {
		r = d.cli(t, "kill", id, "--json")
		var k killed
		if err := json.Unmarshal([]byte(r.stdout), &k); err != nil || k.ID != id || k.AlreadyEnded != already || k.Status.Killed != "sandboxd kill" {
			t.Fatalf("kill --json (already ended: %v): %q (%v)", already, r.stdout, err)
		}
	}
}

func TestWorkdirSetsWhereAGoGuestsRelativePathsStart(t *testing.T) {
	t.Parallel()
	dir := privateDir(t)
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wasm := writeGuest(t, "cmd/sandboxd/testdata/workdir/workdir.go", abitest.Go(t, "cmd/sandboxd/testdata/workdir"))
	// Without --workdir, Go starts from its first preopen, /data, where
	// data/a.txt is not.
	if r := sandboxd(t, "", "run", "--grant", "dir:"+dir+"=/data", wasm); r.code != 1 || !strings.HasPrefix(r.stdout, "error:") {
		t.Fatalf("without --workdir: code %d, stdout %q", r.code, r.stdout)
	}
	if r := sandboxd(t, "", "run", "--workdir", "/", "--grant", "dir:"+dir+"=/data", wasm); r.code != 0 || r.stdout != "hi\n" {
		t.Fatalf("--workdir /: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := sandboxd(t, "", "run", "--workdir", "data", wasm); r.code != exitUsage || !strings.Contains(r.stderr, "starting with /") {
		t.Fatalf("--workdir data: code %d, stderr %q", r.code, r.stderr)
	}
}

// wasi-libc keeps its own working directory, / until the program calls
// chdir, and never reads PWD: --workdir, which sets PWD, moves a Go
// guest's relative paths and not a C guest's, and its help says so.
func TestWorkdirIsNotWhereAWasiLibcGuestsRelativePathsStart(t *testing.T) {
	t.Parallel()
	dir := privateDir(t)
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wasm := wasiGuest(t, "cmd/sandboxd/testdata/relopen.c")
	r := sandboxd(t, "", "run", "--workdir", "/data", "--grant", "dir:"+dir+"=/data", wasm, "a.txt", "data/a.txt")
	if want := "cwd /\na.txt: Capabilities insufficient\ndata/a.txt: ok\n"; r.code != 0 || r.stdout != want {
		t.Fatalf("--workdir /data: code %d, stdout %q, want %q; stderr %q", r.code, r.stdout, want, r.stderr)
	}
	for _, verb := range []string{"run", "launch"} {
		r := sandboxd(t, "", verb, "-h")
		// The flag's line, then its description's.
		_, line, _ := strings.Cut(r.stdout, "  --workdir DIR\n")
		line, _, _ = strings.Cut(line, "\n")
		if !strings.Contains(line, "Go") || strings.Contains(line, "wasi-libc's relative paths start from") || !strings.Contains(line, "wasi-libc") {
			t.Errorf("%s -h says of --workdir %q: want it to say PWD moves Go's relative paths, not wasi-libc's", verb, line)
		}
	}
}

func TestCapsAndInspectListAGrantTheGuestHasNotReceived(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	id := d.launchSpin(t)
	file := filepath.Join(privateDir(t), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := d.cli(t, "grant", id, "--grant", "file:"+file)
	capID, _, _ := strings.Cut(r.stdout, "\t")
	if r.code != 0 || capID == "" {
		t.Fatalf("grant: %d %q", r.code, r.stderr)
	}
	r = d.cli(t, "caps", id)
	var row string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.Contains(l, capID) {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) < 4 || f[0] != "pending" || f[2] != "file" || f[3] != "f" {
		t.Fatalf("caps row of the grant the spinning guest never received: %q\n%s", row, r.stdout)
	}
	// The last column says who made the grant: the user running the test.
	me := selfDescribed(t)
	if !strings.HasSuffix(strings.TrimSpace(row), me) {
		t.Fatalf("caps row of a grant root made: %q, want it to end with who made it\n%s", row, r.stdout)
	}
	// inspect's line for it says so too, not the fd of a handle it holds.
	r = d.cli(t, "inspect", id)
	row = ""
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.Contains(l, capID) {
			row = l
		}
	}
	if !strings.HasPrefix(row, "  pending\t"+capID+" file ") || !strings.HasSuffix(row, ", by "+me+")") {
		t.Fatalf("inspect line of the grant the spinning guest never received: %q\n%s", row, r.stdout)
	}
	if r := d.cli(t, "revoke", capID); r.code != 0 {
		t.Fatalf("revoke of the pending grant: %d %q", r.code, r.stderr)
	}
	if r := d.cli(t, "caps", id); strings.Contains(r.stdout, capID) {
		t.Fatalf("caps still lists the revoked pending grant:\n%s", r.stdout)
	}
}

func TestCompileRmAndPrune(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	hello := guest(t, "abi/testdata/guests/hello.wat")
	r := d.cli(t, "compile", hello)
	if f := strings.Fields(r.stdout); r.code != 0 || len(f) != 3 || f[0] != hello || len(f[1]) != 64 {
		t.Fatalf("compile: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := d.cli(t, "compile", "/nonexistent.wasm"); r.code != exitModule {
		t.Fatalf("compile of a missing file: code %d", r.code)
	}
	r = d.cli(t, "launch", "--detach", "--name", "once", hello)
	id := strings.TrimSpace(r.stdout)
	spin := d.launchSpin(t)
	if r := d.cli(t, "wait", "once"); r.code != 7 {
		t.Fatalf("wait: %d", r.code)
	}
	if r := d.cli(t, "rm", spin); r.code != exitFailure || !strings.Contains(r.stderr, "is running") {
		t.Fatalf("rm of a running guest: code %d, stderr %q", r.code, r.stderr)
	}
	if r := d.cli(t, "rm", "once"); r.code != 0 || r.stdout != id+"\n" {
		t.Fatalf("rm once: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if _, listed := d.psJSON(t)[id]; listed {
		t.Fatalf("ps -a still lists %s after rm", id)
	}
	// The name is free again.
	r = d.cli(t, "launch", "--detach", "--name", "once", hello)
	again := strings.TrimSpace(r.stdout)
	if r.code != 0 {
		t.Fatalf("launch with the freed name: %d %q", r.code, r.stderr)
	}
	if r := d.cli(t, "wait", again); r.code != 7 {
		t.Fatalf("wait: %d", r.code)
	}
	if r := d.cli(t, "prune"); r.code != 0 || r.stdout != again+"\n" {
		t.Fatalf("prune: code %d, stdout %q; want the one ended guest", r.code, r.stdout)
	}
	if g, listed := d.psJSON(t)[spin]; !listed || !g.Running {
		t.Fatalf("prune touched the running guest")
	}
}

func TestLaunchInteractiveStreamsStdin(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	cat := guest(t, "daemon/testdata/guests/cat.wat")
	r := sandboxd(t, "hello from a pipe\n", "launch", "--socket", d.socket, "-i", cat)
	if r.code != 0 || r.stdout != "hello from a pipe\n" || r.stderr != "done\n" {
		t.Fatalf("launch -i cat: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// More than --stdin's 1 MiB: streamed, not read whole first.
	big := strings.Repeat("0123456789abcdef", 1<<17) // 2 MiB
	r = sandboxd(t, big, "launch", "--socket", d.socket, "-i", cat)
	if r.code != 0 || len(r.stdout) != len(big) || r.stdout != big {
		t.Fatalf("launch -i with 2 MiB: code %d, %d bytes out, stderr %q", r.code, len(r.stdout), r.stderr)
	}
	// Without -i or --stdin the guest's stdin is empty, whatever is piped
	// to launch (as docker run without -i), unlike run's, which passes
	// through: launch -h says so where a user piping input looks.
	r = sandboxd(t, "hello from a pipe\n", "launch", "--socket", d.socket, cat)
	if r.code != 0 || r.stdout != "" || r.stderr != "done\n" {
		t.Fatalf("launch cat with input piped, without -i: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if h := sandboxd(t, "", "launch", "-h").stdout; !strings.Contains(h, "without -i or --stdin, the guest's stdin is empty") {
		t.Errorf("launch -h does not say what stdin a guest launched without -i or --stdin has:\n%s", h)
	}
	if r := sandboxd(t, "", "launch", "--socket", d.socket, "-i", "--stdin", cat); r.code != exitUsage {
		t.Fatalf("-i with --stdin: code %d", r.code)
	}
	// Detached, launch exits at once and the stream with it: whatever of
	// the input had not reached the guest would be lost.
	r = sandboxd(t, "hello from a pipe\n", "launch", "--socket", d.socket, "-i", "--detach", cat)
	if r.code != exitUsage || r.stdout != "" {
		t.Fatalf("-i with --detach: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	oneLine(t, r.stderr, "-i streams standard input while launch is attached, and --detach exits at once: send it whole with --stdin")
}

// serve --max-stack is the bound of launches without one; launch
// --max-stack overrides it, and inspect shows it, and --mem, as the flags
// take them.
func TestLaunchMaxStackAndServeDefault(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "", "--max-stack", "512KiB")
	wasm := guest(t, "daemon/testdata/guests/recurse.wat")
	for _, c := range []struct{ flags []string }{{nil}, {[]string{"--max-stack", "1MiB"}}} {
		r := d.cli(t, "launch", append(c.flags, wasm)...)
		want := "call stack exceeded --max-stack 512KiB"
		if c.flags != nil {
			want = "call stack exceeded --max-stack 1MiB"
		}
		if r.code != exitTrap || !strings.Contains(r.stderr, want) {
			t.Errorf("launch %v: code %d, stderr %q; want %d and %q", c.flags, r.code, r.stderr, exitTrap, want)
		}
	}
	r := d.cli(t, "launch", "--detach", "--max-stack", "2MiB", "--mem", "64MiB", guest(t, "daemon/testdata/guests/spin.wat"))
	if r.code != 0 {
		t.Fatalf("launch --detach: %d %q", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	r = d.cli(t, "inspect", id, "--json")
	var got inspection
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.GuestInfo.MaxStack != 2<<20 {
		t.Fatalf("inspect --json: %q (%v)", r.stdout, err)
	}
	// Both limits as their flags take them.
	if r := d.cli(t, "inspect", id); !strings.Contains(r.stdout, "limits:     memory 64MiB, ") || !strings.Contains(r.stdout, "max stack 2MiB") {
		t.Fatalf("inspect:\n%s", r.stdout)
	}
	if r := d.cli(t, "launch", "--max-stack", "128MiB", wasm); r.code != exitUsage {
		t.Errorf("launch --max-stack 128MiB: code %d, stderr %q; want a usage error", r.code, r.stderr)
	}
	if r := d.cli(t, "kill", id); r.code != 0 {
		t.Fatalf("kill: %d %q", r.code, r.stderr)
	}
}

// wait of a guest that its --timeout ended names that timeout, as the
// attached launch does.
func TestWaitNamesTheTimeoutTheGuestRanWith(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	r := d.cli(t, "launch", "--detach", "--timeout", "100ms", guest(t, "daemon/testdata/guests/spin.wat"))
	if r.code != 0 {
		t.Fatalf("launch: %d %q", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	for _, args := range [][]string{{id}, {id, "--json"}} {
		r := d.cli(t, "wait", args...)
		if r.code != exitTimeout {
			t.Errorf("wait %v: exit %d, want %d (stderr %q)", args, r.code, exitTimeout, r.stderr)
		}
		oneLine(t, r.stderr, "guest killed: it ran longer than --timeout 100ms")
	}
}

// A --socket path longer than a unix socket's may be is refused saying
// so, by the daemon and by the verbs that dial it, not as the kernel's
// "invalid argument".
func TestSocketPathTooLongSaysSo(t *testing.T) {
	t.Parallel()
	long := filepath.Join(privateDir(t), strings.Repeat("x", 110), "s.sock")
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"serve", "--socket", long, "--state", filepath.Join(privateDir(t), "state")}, exitFailure},
		{[]string{"ps", "--socket", long}, exitUnavailable},
	} {
		r := sandboxd(t, "", c.args...)
		if r.code != c.code {
			t.Errorf("%s: exit %d, want %d (stderr %q)", c.args[0], r.code, c.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "longer than the 107 a unix socket's path may have") || strings.Contains(r.stderr, "invalid argument") {
			t.Errorf("%s: stderr %q, want it to say the path is too long", c.args[0], r.stderr)
		}
	}
}

// A kill reason is text one user gives and others read (root's ps lists
// every user's guests): its control characters are printed escaped, so
// that it cannot rewrite the reader's terminal.
func TestKillReasonIsPrintedWithoutItsControlCharacters(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	id := d.launchSpin(t)
	const reason, shown = "done\x1b[2J\x1b]0;pwned\a", `done\x1b[2J\x1b]0;pwned\a`
	outputs := map[string]result{
		"kill":    d.cli(t, "kill", id, "--reason", reason),
		"caps":    d.cli(t, "caps", id),
		"ps -a":   d.cli(t, "ps", "-a"),
		"inspect": d.cli(t, "inspect", id),
		"wait":    d.cli(t, "wait", id),
	}
	outputs["audit log"] = sandboxd(t, "", "audit", "log", "--state", d.state, "--guest", id)
	for verb, r := range outputs {
		out := r.stdout + r.stderr
		if strings.ContainsAny(out, "\x1b\a") || !strings.Contains(out, shown) {
			t.Errorf("%s printed the reason %q as %q, want it as %s", verb, reason, out, shown)
		}
	}
}

// selfDescribed is how the daemon names the user running the test as
// the one who made a grant: "NAME (uid N)".
func selfDescribed(t *testing.T) string {
	t.Helper()
	uid := os.Getuid()
	name := fmt.Sprintf("uid:%d", uid)
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
		name = u.Username
	}
	return fmt.Sprintf("%s (uid %d)", name, uid)
}

// Arguments, labels and grants holding the separator they are listed
// with read back as themselves: `a b` as one argument was shown as two.
func TestInspectAndPsQuoteWhatWouldNotReadBack(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	data := filepath.Join(privateDir(t), "my data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	r := d.cli(t, "launch", "--detach", "--label", "tier=a,b", "--label", "app=etl", "--grant", "dir:"+data+"=data", guest(t, "daemon/testdata/guests/spin.wat"), "a b", "", `c"d`, "e")
	if r.code != 0 {
		t.Fatalf("launch: %d %q", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	r = d.cli(t, "inspect", id)
	for _, want := range []string{
		`args:       spin.wasm "a b" "" "c\"d" e` + "\n",
		`labels:     app=etl,"tier=a,b"` + "\n",
		`grants:     "dir:` + data + `=data"` + "\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("inspect lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := d.cli(t, "ps"); !strings.Contains(r.stdout, ` app=etl,"tier=a,b"`) {
		t.Errorf("ps:\n%s", r.stdout)
	}
	// ps's MODULE and caps's NAME and ORIGIN are quoted likewise, so that
	// a module file or a handle named with a space stays one column.
	spin := filepath.Join(filepath.Dir(data), "my spin.wasm")
	if err := os.Rename(guest(t, "daemon/testdata/guests/spin.wat"), spin); err != nil {
		t.Fatal(err)
	}
	r = d.cli(t, "launch", "--detach", "--grant", "dir:"+data+"=my data", spin)
	if r.code != 0 {
		t.Fatalf("launch: %d %q", r.code, r.stderr)
	}
	id = strings.TrimSpace(r.stdout)
	r = d.cli(t, "ps", "--filter", "module=my spin.wasm")
	if !strings.Contains(r.stdout, `  "my spin.wasm"  running`) {
		t.Errorf("ps does not quote the module my spin.wasm:\n%s", r.stdout)
	}
	r = d.cli(t, "caps", id)
	if !strings.Contains(r.stdout, `  dir    "my data"  `) || !strings.Contains(r.stdout, `  "dir:`+data+`"  `) {
		t.Errorf("caps does not quote the handle \"my data\" and its origin:\n%s", r.stdout)
	}
}

// A verb given no id says which command lists them, and ends with one
// hint: it read "(see `sandboxd ps`) (see 'sandboxd kill -h')".
func TestAVerbGivenNoIDSaysWhatListsThem(t *testing.T) {
	t.Parallel()
	for verb, lister := range map[string]string{"kill": "sandboxd ps", "wait": "sandboxd ps", "logs": "sandboxd ps", "caps": "sandboxd ps", "grant": "sandboxd ps", "rm": "sandboxd ps -a", "revoke": "sandboxd caps GUEST"} {
		r := sandboxd(t, "", verb)
		if r.code != exitUsage || !strings.Contains(r.stderr, ": `"+lister+"` lists them (see 'sandboxd "+verb+" -h')\n") || strings.Count(r.stderr, "(") != 1 {
			t.Errorf("%s: code %d, stderr %q", verb, r.code, r.stderr)
		}
	}
}
