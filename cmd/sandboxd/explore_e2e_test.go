package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ps --filter label= takes K=V, as the docs and -h say: a label filter
// without a value matched no guest and exited 0, so `ps --filter
// label=app` listed nothing beside a guest labelled app=web, as if there
// were none. It is a usage error that says what to write.
func TestPsFilterLabelWithoutAValueIsAUsageError(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	r := d.cli(t, "launch", "--detach", "--label", "app=web", guest(t, "daemon/testdata/guests/spin.wat"))
	if r.code != 0 {
		t.Fatalf("launch: code %d, stderr %q", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	if r := d.cli(t, "ps", "-q", "--filter", "label=app=web"); r.code != 0 || r.stdout != id+"\n" {
		t.Fatalf("ps --filter label=app=web: code %d, stdout %q, stderr %q; want %s alone", r.code, r.stdout, r.stderr, id)
	}
	for _, f := range []string{"label=app", "label=", "label==web"} {
		r := d.cli(t, "ps", "--filter", f)
		if r.code != exitUsage || r.stdout != "" {
			t.Errorf("ps --filter %s: code %d, stdout %q; want a usage error (2) and nothing listed", f, r.code, r.stdout)
		}
		oneLine(t, r.stderr, "label=K=V")
	}
}

// A guest that sandboxd kill ended is reported as killed, never as one
// whose --timeout passed: kill --reason timeout recorded the reason the
// daemon records for a --timeout, and wait then exited 124 with
// "it ran longer than --timeout 0s" for a guest that had no timeout. The
// reason is refused; nothing is killed.
func TestKillReasonTimeoutIsNotTakenForTheGuestsTimeout(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	id := d.launchSpin(t)
	r := d.cli(t, "kill", "--reason", "timeout", id)
	if r.code != exitUsage || r.stdout != "" {
		t.Errorf("kill --reason timeout: code %d, stdout %q; want a usage error (2)", r.code, r.stdout)
	}
	oneLine(t, r.stderr, "--timeout")
	if g := d.psJSON(t)[id]; !g.Running {
		t.Fatalf("after a refused kill the guest is not running: %+v", g)
	}
	if r := d.cli(t, "kill", "--reason", "timed out by hand", id); r.code != 0 {
		t.Fatalf("kill: code %d, stderr %q", r.code, r.stderr)
	}
	r = d.cli(t, "wait", id)
	if r.code != exitKilled {
		t.Errorf("wait: code %d, want %d", r.code, exitKilled)
	}
	oneLine(t, r.stderr, "guest killed: timed out by hand")
}

// A launch or compile whose module the daemon will not take in one
// message (serve --max-message) is dropped by the daemon; the client saw
// only "lost connection to the daemon: connection closed" and could not
// tell why. The line says the request's size and the daemon's limit.
func TestLaunchLargerThanTheDaemonsMaxMessageSaysSo(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "", "--max-message", "64KiB")
	big := filepath.Join(privateDir(t), "big.wasm")
	wasm := append([]byte("\x00asm\x01\x00\x00\x00"), make([]byte, 256<<10)...)
	if err := os.WriteFile(big, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"launch", big}, {"launch", "--detach", big}, {"compile", big}} {
		r := d.cli(t, args[0], args[1:]...)
		if r.code != exitUnavailable {
			t.Errorf("%v: code %d, want %d", args, r.code, exitUnavailable)
		}
		oneLine(t, r.stderr, "--max-message")
		if !strings.Contains(r.stderr, "256 KiB") {
			t.Errorf("%v: stderr %q does not say how large the module is", args, r.stderr)
		}
	}
	// A module the daemon takes is launched as ever.
	if r := d.cli(t, "launch", guest(t, "abi/testdata/guests/hello.wat")); r.code != 7 || r.stdout != "hello\n" {
		t.Errorf("launch hello: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// prune forgets every ended guest its caller may see, as docs/CLI.md
// says: root's prune forgets other users' guests too. Its help said
// "every guest of yours", which root's is not.
func TestPruneForgetsEveryEndedGuestTheCallerMaySee(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	shared := d.shareWithOthers(t)
	hello := filepath.Join(shared, "hello.wasm")
	copyFile(t, guest(t, "abi/testdata/guests/hello.wat"), hello, 0o644)
	const nobody = 65534
	if r := d.cliAs(t, shared, nobody, "launch", hello); r.code != 7 {
		t.Fatalf("launch as nobody: code %d, stderr %q", r.code, r.stderr)
	}
	if r := d.cli(t, "launch", hello); r.code != 7 {
		t.Fatalf("launch as root: code %d, stderr %q", r.code, r.stderr)
	}
	if r := d.cli(t, "prune"); r.code != 0 || strings.Count(r.stdout, "\n") != 2 {
		t.Fatalf("prune as root: code %d, stdout %q, stderr %q; want both guests forgotten", r.code, r.stdout, r.stderr)
	}
	if r := d.cliAs(t, shared, nobody, "ps", "-a", "-q"); r.code != 0 || r.stdout != "" {
		t.Errorf("ps -a as nobody after root's prune: code %d, stdout %q; want nothing", r.code, r.stdout)
	}
	for _, args := range [][]string{{"prune", "-h"}, {"help"}} {
		r := sandboxd(t, "", args...)
		if strings.Contains(r.stdout, "of yours") || !strings.Contains(r.stdout, "you may see") {
			t.Errorf("%v says whose guests prune forgets otherwise than it does:\n%s", args, r.stdout)
		}
	}
}

// A verb whose text output cannot be written (a full disk: /dev/full)
// fails with status 1 and says so, as its --json does and as docs/CLI.md
// says ("the exit status is what it is without --json"; version and help:
// 1 when stdout could not be written). The text forms ignored the failed
// write and exited 0: launch --detach lost the id of the guest it had
// launched without a word, kill, rm and revoke their record of what was
// done.
func TestTextOutputThatCannotBeWrittenFailsAsItsJSONDoes(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	hello := guest(t, "abi/testdata/guests/hello.wat") // exits 7
	dir := privateDir(t)
	d.launchAndWait(t, "ended", hello, 7)
	d.launchAndWait(t, "ended-too", hello, 7)
	spin := d.launchSpin(t, "dir:"+dir+"=data")
	capID := d.capsJSON(t, spin)["data"].Cap.ID
	granted := d.launchSpin(t)
	sock := func(verb string, args ...string) []string {
		return append([]string{verb, "--socket", d.socket}, args...)
	}
	for _, args := range [][]string{
		{"version"}, {"help"}, {"help", "ps"}, {"kill", "-h"},
		sock("launch", "--detach", hello),
		sock("compile", hello),
		sock("inspect", spin),
		sock("caps", "ended"),
		sock("grant", granted, "--grant", "dir:"+dir+"=more", "--grant", "dir:"+dir+"=more2"),
		sock("revoke", capID),
		sock("kill", spin),
		sock("rm", "ended"),
		sock("prune"),
	} {
		r := runBinary(t, "/bin/sh", "", append([]string{"-c", `exec "$0" "$@" >/dev/full`, bin}, args...)...)
		if r.code != exitFailure {
			t.Errorf("%v > /dev/full: code %d, want %d", args, r.code, exitFailure)
		}
		// One line per thing not printed: prune's, one per guest it
		// forgot; grant's, one per grant.
		lines := strings.SplitAfter(r.stderr, "\n")
		for _, l := range lines[:len(lines)-1] {
			oneLine(t, l, "writing output: ")
		}
		if lines[len(lines)-1] != "" || len(lines) < 2 || (args[0] != "prune" && args[0] != "grant" && len(lines) != 2) {
			t.Errorf("%v > /dev/full: stderr %q, want one line for each thing not printed", args, r.stderr)
		}
	}
	// What the verbs were asked to do was done, the output aside.
	if hs := d.capsJSON(t, granted); hs["more"].Cap.ID == "" || hs["more2"].Cap.ID == "" {
		t.Errorf("grant > /dev/full did not make both grants: %+v", hs)
	}
	if g := d.psJSON(t)[spin]; g.Running {
		t.Errorf("kill > /dev/full left the guest running")
	}
	if r := d.cli(t, "ps", "-a", "-q", "--filter", "state=ended", "--filter", "name=ended-too"); r.stdout != "" {
		t.Errorf("prune > /dev/full left %q listed", r.stdout)
	}
}

// logs says how much output it could not print because the daemon no
// longer kept it, without calling it "the first" bytes: a logs -f whose
// reader fell behind a guest writing more than serve --log-bytes printed
// the start of the output, then what was kept at the end, and the bytes
// it missed lay between.
func TestLogsFollowBehindAGuestSaysHowMuchItMissedNotThatItWasTheFirst(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "", "--log-bytes", "64KiB")
	dir := privateDir(t)
	r := d.cli(t, "launch", "--detach", "--grant", "dir:"+dir+"=data", wasiGuest(t, "cmd/sandboxd/testdata/flood_on_go.c"))
	if r.code != 0 {
		t.Fatalf("launch: code %d, stderr %q", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "logs", "--socket", d.socket, "-f", id)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Once logs has printed "start", the guest floods while nobody reads
	// what logs prints: it falls behind, and the daemon drops what it has
	// not sent.
	br := bufio.NewReader(out)
	if l, err := br.ReadString('\n'); l != "start\n" {
		t.Fatalf("logs -f printed %q first (%v), want start", l, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := d.cli(t, "wait", id); r.code != 0 {
		t.Fatalf("wait: code %d, stderr %q", r.code, r.stderr)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("logs -f: %v, stderr %q", err, stderr.String())
	}
	missed := 2048*1024 - len(rest)
	if missed <= 0 {
		t.Fatalf("logs -f printed all %d bytes: it did not fall behind", len(rest))
	}
	oneLine(t, stderr.String(), fmt.Sprintf(" %d bytes of the guest's output ", missed))
	if strings.Contains(stderr.String(), "the first") {
		t.Errorf("logs -f printed the first bytes (start), and says it missed the first: %q", stderr.String())
	}
}

// A count flag of serve out of its range is named in the usage error,
// with its value and what it takes: the line listed every count flag's
// rule, and left the user to find which of them they had broken.
func TestServeNamesTheCountFlagOutOfRange(t *testing.T) {
	t.Parallel()
	dir := privateDir(t)
	for flag, want := range map[string][]string{
		"--max-conns":             {"0", "--max-conns 0: "},
		"--max-guests":            {"-1", "--max-guests -1: "},
		"--max-procs":             {"2000", "--max-procs 2000: "},
		"--max-fds":               {"2", "--max-fds 2: "},
		"--idle-modules":          {"0", "--idle-modules 0: "},
		"--max-inflight-per-user": {"0", "--max-inflight-per-user 0: "},
		"--write-timeout":         {"0s", "--write-timeout 0s: "},
	} {
		r := sandboxd(t, "", "serve", "--socket", filepath.Join(dir, "s.sock"), "--state", filepath.Join(dir, "state"), flag, want[0])
		if r.code != exitUsage {
			t.Errorf("serve %s %s: code %d, want %d", flag, want[0], r.code, exitUsage)
		}
		oneLine(t, r.stderr, want[1])
		if strings.Count(r.stderr, "--") != 1 {
			t.Errorf("serve %s %s: %q names other flags than the one out of range", flag, want[0], r.stderr)
		}
	}
}

// compile --json's Took is 0 for a module the daemon had compiled
// already, as docs/CLI.md (JSON output) and compile's own comment say.
func TestCompileOfACompiledModuleTookZero(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	wasm := guest(t, "abi/testdata/guests/hello.wat")
	if r := d.cli(t, "compile", wasm); r.code != 0 {
		t.Fatalf("compile: code %d, stderr %q", r.code, r.stderr)
	}
	r := d.cli(t, "compile", "--json", wasm)
	again := jsonLines[compiled](t, "compile --json", r.stdout)
	if r.code != 0 || len(again) != 1 || again[0].Took != 0 {
		t.Errorf("compile --json of a module compiled before: code %d, %+v; want Took 0", r.code, again)
	}
}

// A launch whose --name another listed guest has says how to free the
// name: sandboxd rm of an ended guest (kill first, of a running one).
func TestTakenNameSaysHowToFreeIt(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	hello := guest(t, "abi/testdata/guests/hello.wat")
	if r := d.cli(t, "launch", "--name", "fin", hello); r.code != 7 {
		t.Fatalf("launch: code %d, stderr %q", r.code, r.stderr)
	}
	r := d.cli(t, "launch", "--name", "fin", hello)
	if r.code != exitUsage {
		t.Errorf("launch with a taken name: code %d, want 2", r.code)
	}
	oneLine(t, r.stderr, "sandboxd rm ")
	if strings.Contains(r.stderr, "letting it be forgotten") {
		t.Errorf("stderr %q: a name is freed by sandboxd rm, not by waiting", r.stderr)
	}
}

// An attached launch whose process is stopped (Ctrl-Z, SIGSTOP) while its
// guest writes leaves the daemon's socket unread; once one write has
// waited serve --write-timeout, the daemon drops the client and kills the
// guest (docs/DAEMON.md, Limits and "Ctrl-Z on an attached launch"). The
// daemon logged the timeout and went on: the guest ran to its end, and
// the launch, continued, exited 0 with most of the output lost and not a
// word. Continued, it now says it lost the daemon and exits 69. The guest
// floods once the launch is stopped, so that the output in flight (256
// KiB) waits in the socket rather than in the launch's memory.
func TestStoppedAttachedLaunchIsDroppedAfterTheWriteTimeout(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "", "--write-timeout", "1s")
	dir := privateDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "launch", "--socket", d.socket, "--grant", "dir:"+dir+"=data", wasiGuest(t, "cmd/sandboxd/testdata/flood_on_go.c"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGCONT); _ = out.Close(); _ = cmd.Wait() }()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "start\n" {
		t.Fatalf("launch printed %q (%v), want start", buf, err)
	}
	_ = cmd.Process.Signal(syscall.SIGSTOP)
	awaitStopped(t, cmd.Process.Pid)
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(d.cli(t, "ps", "-q").stdout)
	d.awaitLog(t, "client did not read its socket for 1s", 1)
	r := d.cli(t, "wait", id)
	if r.code != exitKilled {
		t.Errorf("wait: code %d, stderr %q; want the guest killed (137)", r.code, r.stderr)
	}
	// Continued, the launch takes what was sent before the daemon hung
	// up, and does not exit as if it had all of the guest's output.
	_ = cmd.Process.Signal(syscall.SIGCONT)
	got, _ := io.Copy(io.Discard, out)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUnavailable {
		t.Errorf("launch after %d bytes of 2 MiB: %v, stderr %q; want exit %d", got, err, stderr.String(), exitUnavailable)
	}
	oneLine(t, stderr.String(), "lost connection to the daemon")
}

// awaitStopped waits until process pid is stopped (state T in
// /proc/PID/stat): a SIGSTOP sent to it has taken effect.
func awaitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) state …: comm may hold spaces and parentheses.
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'T' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not stop within %v of SIGSTOP", pid, hangGuard)
		}
		time.Sleep(time.Millisecond)
	}
}

// ps --filter principal= names a user of this host or a uid: a name no
// user has is a usage error, where it listed nothing and exited 0 as if
// that user had no guests; root (a name) and 0 (a uid) both match.
func TestPsFilterPrincipalNamingNoUserIsAUsageError(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	r := d.cli(t, "launch", "--detach", guest(t, "daemon/testdata/guests/spin.wat"))
	if r.code != 0 {
		t.Fatalf("launch: code %d, stderr %q", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"principal=" + me.Username, "principal=" + me.Uid} {
		if r := d.cli(t, "ps", "-q", "--filter", f); r.code != 0 || r.stdout != id+"\n" {
			t.Errorf("ps --filter %s: code %d, stdout %q, stderr %q; want %s", f, r.code, r.stdout, r.stderr, id)
		}
	}
	r = d.cli(t, "ps", "--filter", "principal=no-such-user-here")
	if r.code != exitUsage || r.stdout != "" {
		t.Errorf("ps --filter principal=no-such-user-here: code %d, stdout %q; want a usage error (2)", r.code, r.stdout)
	}
	oneLine(t, r.stderr, `no user named "no-such-user-here"`)
}
