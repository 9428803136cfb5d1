package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// cliProc is a sandboxd verb running in the background, its stdout read
// line by line.
type cliProc struct {
	cmd    *exec.Cmd
	out    *bufio.Reader
	stderr *abitest.Buffer
}

// startCLI starts `sandboxd verb --socket SOCKET args…` against d.
func (d *daemonProc) startCLI(t *testing.T, verb string, args ...string) *cliProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	t.Cleanup(cancel)
	p := &cliProc{stderr: &abitest.Buffer{}}
	p.cmd = exec.CommandContext(ctx, bin, append([]string{verb, "--socket", d.socket}, args...)...)
	p.cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cacheHome)
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.out = bufio.NewReader(out)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// awaitLine waits until the process prints line on stdout.
func (p *cliProc) awaitLine(t *testing.T, line string) {
	t.Helper()
	for {
		got, err := p.out.ReadString('\n')
		if got == line+"\n" {
			return
		}
		if err != nil {
			t.Fatalf("%v printed no line %q before %v (stderr %q)", p.cmd.Args, line, err, p.stderr.String())
		}
	}
}

// exit waits for the process to end and returns its status and stderr.
func (p *cliProc) exit(t *testing.T) (int, string) {
	t.Helper()
	_, _ = io.Copy(io.Discard, p.out)
	_ = p.cmd.Wait()
	return p.cmd.ProcessState.ExitCode(), p.stderr.String()
}

// A daemon that stops under a verb waiting on one of its guests is a
// daemon lost mid-way: exit 69 (docs/CLI.md, Exit codes), whichever call
// it was in, with one line that says the daemon stopped or dropped the
// connection and where to look. logs -f used to exit 1, "the daemon is
// shutting down", and an attached launch said only "connection closed".
func TestVerbsWaitingOnAGuestExitUnavailableWhenTheDaemonStops(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	up := guest(t, "cmd/sandboxd/testdata/up_then_spin.wat")
	r := d.cli(t, "launch", "--detach", up)
	if r.code != 0 {
		t.Fatalf("launch --detach: %d %q", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	follow := d.startCLI(t, "logs", "-f", id)
	attached := d.startCLI(t, "launch", up)
	// Each is waiting on the daemon once it has printed the guest's line.
	follow.awaitLine(t, "up")
	attached.awaitLine(t, "up")
	if code := d.stop(t); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM", code)
	}
	for name, p := range map[string]*cliProc{"logs -f": follow, "attached launch": attached} {
		code, stderr := p.exit(t)
		if code != exitUnavailable {
			t.Errorf("%s when the daemon stopped: exit %d, want %d (stderr %q)", name, code, exitUnavailable, stderr)
		}
		oneLine(t, stderr, "lost connection to the daemon")
		if !strings.Contains(stderr, "its log says which") {
			t.Errorf("%s: %q does not say where to look", name, stderr)
		}
	}
	// The attached guest was killed because the daemon stopped, not
	// because its client went away, and the log says so (its "guest
	// exited" line may not come: the daemon's exit may end it first).
	log := d.log.String()
	if strings.Contains(log, "went away") || strings.Contains(log, "the launching client disconnected") ||
		!strings.Contains(log, "killing guest: the daemon is shutting down") {
		t.Errorf("the daemon's log blames the client for the attached guest it killed as it stopped:\n%s", log)
	}
}

// vanishingProxy listens at a socket of its own and relays each
// connection to d's, until a client has sent more than after bytes: then
// it goes away as a stopping daemon does, its socket removed and every
// connection closed, mid-request.
func (d *daemonProc) vanishingProxy(t *testing.T, after int64) string {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(privateDir(t), "proxy.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("unix", d.socket)
			if err != nil {
				c.Close()
				continue
			}
			go func() { _, _ = io.Copy(c, up) }()
			go func() {
				_, _ = io.CopyN(up, c, after)
				l.Close() // removes the socket file
				c.Close()
				up.Close()
			}()
		}
	}()
	return l.Addr().String()
}

// A launch or compile of a module over 64 KiB whose daemon stopped while
// it was being sent was told to raise serve --max-message, which its
// 256 KiB are far below: the line now says the daemon stopped, since
// nothing listens at its socket any more.
func TestALaunchWhoseDaemonStoppedMidRequestSaysSoNotMaxMessage(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	big := filepath.Join(privateDir(t), "big.wasm")
	wasm := append([]byte("\x00asm\x01\x00\x00\x00"), make([]byte, 256<<10)...)
	if err := os.WriteFile(big, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"launch", "compile"} {
		sock := d.vanishingProxy(t, 128<<10)
		r := sandboxd(t, "", verb, "--socket", sock, big)
		if r.code != exitUnavailable {
			t.Errorf("%s: code %d, want %d (stderr %q)", verb, r.code, exitUnavailable, r.stderr)
		}
		oneLine(t, r.stderr, "the daemon stopped: nothing listens at "+sock)
		if strings.Contains(r.stderr, "max-message") {
			t.Errorf("%s: %q blames --max-message for a daemon that stopped", verb, r.stderr)
		}
	}
}

// serveAs runs `sandboxd serve args…` as uid (gid the same) from a copy of
// the binary in shared, and returns how it ended. It must not start
// serving: every case of its callers fails at start.
func serveAs(t *testing.T, shared string, uid uint32, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	for {
		cmd := exec.CommandContext(ctx, filepath.Join(shared, "sandboxd"), append([]string{"serve"}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		cmd.Env = []string{"HOME=/nonexistent"}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if errors.Is(err, syscall.ETXTBSY) && ctx.Err() == nil { // as cliAs
			continue
		}
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("sandboxd serve as uid %d: %v", uid, err)
		}
		return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
	}
}

// serve that cannot make its state directory or bind its socket exits 1
// with one line naming what failed and what to do (choose another --state
// or --socket, one its user can write): an operator's first start on a
// read-only path or a directory of another user's said only "creating
// state directory: mkdir …: permission denied" or "bind: permission
// denied". Each case fails before anything serves.
func TestServeThatCannotStartSaysWhatToDo(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Fatal("this test runs serve as another user, which needs root")
	}
	const nobody = 65534
	shared := privateDir(t) // root's, 0755: nobody may not write in it
	if err := os.Chmod(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, bin, filepath.Join(shared, "sandboxd"), 0o755)
	open := filepath.Join(shared, "open") // where nobody makes its own
	if err := os.Mkdir(open, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(shared, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	lockIsDir := filepath.Join(shared, "lockisdir")
	if err := os.MkdirAll(filepath.Join(lockIsDir, "lock"), 0o700); err != nil {
		t.Fatal(err)
	}
	state, sock := filepath.Join(open, "state"), filepath.Join(open, "s.sock")
	for _, c := range []struct {
		name       string
		uid        uint32
		args       []string
		what, todo string
	}{
		{"state in a directory it may not write", nobody, []string{"--state", filepath.Join(shared, "st"), "--socket", sock}, "permission denied", "--state"},
		{"state beneath a file", 0, []string{"--state", filepath.Join(file, "st"), "--socket", sock}, "not a directory", "--state"},
		{"state whose lock cannot be opened", 0, []string{"--state", lockIsDir, "--socket", sock}, "is a directory", "--state"},
		{"socket in a directory it may not write", nobody, []string{"--state", state, "--socket", filepath.Join(shared, "s.sock")}, "permission denied", "--socket"},
		{"socket directory it may not make", nobody, []string{"--state", state, "--socket", filepath.Join(shared, "sub", "s.sock")}, "permission denied", "--socket"},
		{"socket beneath a file", 0, []string{"--state", filepath.Join(privateDir(t), "st"), "--socket", filepath.Join(file, "s.sock")}, "not a directory", "--socket"},
	} {
		r := serveAs(t, shared, c.uid, c.args...)
		if r.code != exitFailure {
			t.Errorf("%s: code %d, want %d (stderr %q)", c.name, r.code, exitFailure, r.stderr)
		}
		oneLine(t, r.stderr, c.what)
		if !strings.Contains(r.stderr, "choose another") || !strings.Contains(r.stderr, c.todo) {
			t.Errorf("%s: %q does not say what to do (choose another %s)", c.name, r.stderr, c.todo)
		}
	}
}

// Guests run in the daemon's process and end with it: after a restart
// the new daemon does not know an earlier one's guests, and wait, logs,
// kill, inspect and caps of one exit 1 as for an unknown guest. The line
// said only "list guests with `sandboxd ps`", which lists none of them;
// for a guest id it now says that a guest of an earlier daemon ended with
// it and where its record is (with the daemon's state directory, which
// the hint once left out), and that record is there.
func TestAGuestOfAnEarlierDaemonIsSaidToHaveEndedWithIt(t *testing.T) {
	t.Parallel()
	d1 := serveDaemon(t, bin, "")
	id := d1.launchSpin(t)
	if code := d1.stop(t); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM", code)
	}
	d2 := serveDaemon(t, bin, d1.state)
	// audit log reads the log in its --state, which the verb cannot learn
	// from the daemon: the hint says to give it the daemon's, here not the
	// default.
	hint := "sandboxd audit log --state DIR --guest " + id
	for _, verb := range []string{"wait", "logs", "kill", "inspect", "caps"} {
		r := d2.cli(t, verb, id)
		if r.code != exitFailure {
			t.Errorf("%s of a guest of the earlier daemon: code %d, want %d (stderr %q)", verb, r.code, exitFailure, r.stderr)
		}
		oneLine(t, r.stderr, "no guest "+id)
		if !strings.Contains(r.stderr, hint) || !strings.Contains(r.stderr, "`serving` log line") {
			t.Errorf("%s: %q does not say where the guest's record is (%s, DIR as the daemon's `serving` log line names it)", verb, r.stderr, hint)
		}
	}
	r := sandboxd(t, "", "audit", "log", "--state", d1.state, "--guest", id)
	if r.code != 0 || !strings.Contains(r.stdout, id) {
		t.Errorf("audit log --guest %s: code %d, stdout %q, stderr %q", id, r.code, r.stdout, r.stderr)
	}
	// A prefix the user typed is not said to be an id of an earlier
	// daemon's guest: it may be a typo.
	if r := d2.cli(t, "wait", "g-4b29"); r.code != exitFailure || strings.Contains(r.stderr, "audit log") {
		t.Errorf("wait g-4b29: code %d, stderr %q", r.code, r.stderr)
	}
}

// A verb run by a user the daemon's socket does not admit exits 69, and
// the line says whose socket it is and what to do: it said only
// "permission denied connecting to PATH: the socket admits only the
// daemon's user and root". A socket in a directory the user may not
// enter is said to be that.
func TestAVerbOfAnotherUsersDaemonSaysWhatToDo(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	shared := privateDir(t)
	if err := os.Chmod(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, bin, filepath.Join(shared, "sandboxd"), 0o755)
	const nobody = 65534
	r := d.cliAs(t, shared, nobody, "ps")
	if r.code != exitUnavailable {
		t.Errorf("ps as nobody, the socket's directory root's 0700: code %d, want %d (stderr %q)", r.code, exitUnavailable, r.stderr)
	}
	oneLine(t, r.stderr, "may not enter")
	if err := os.Chmod(filepath.Dir(d.socket), 0o755); err != nil {
		t.Fatal(err)
	}
	r = d.cliAs(t, shared, nobody, "ps")
	if r.code != exitUnavailable {
		t.Errorf("ps as nobody, the socket root's 0600: code %d, want %d (stderr %q)", r.code, exitUnavailable, r.stderr)
	}
	oneLine(t, r.stderr, "belongs to uid 0")
	if !strings.Contains(r.stderr, "run this as uid 0") {
		t.Errorf("%q does not say as whom to run it", r.stderr)
	}
}

// A guest removed from the list (rm, prune) is not said to be only an
// earlier daemon's: a second rm of it, or an inspect, says it may have
// been removed, and where its record is. It said a guest of an earlier
// daemon ended when that daemon stopped, of a guest removed a moment
// before.
func TestARemovedGuestIsSaidToHaveBeenRemovedOrOfAnEarlierDaemon(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	id := d.launchSpin(t)
	if r := d.cli(t, "kill", id); r.code != 0 {
		t.Fatalf("kill: code %d, stderr %q", r.code, r.stderr)
	}
	if r := d.cli(t, "rm", id); r.code != 0 {
		t.Fatalf("rm: code %d, stderr %q", r.code, r.stderr)
	}
	for _, verb := range []string{"rm", "inspect"} {
		r := d.cli(t, verb, id)
		if r.code != exitFailure || !strings.Contains(r.stderr, "removed from the list (sandboxd rm, prune)") || !strings.Contains(r.stderr, "sandboxd audit log --state DIR --guest "+id) {
			t.Errorf("%s of a removed guest: code %d, stderr %q, want it said removed, and where its record is", verb, r.code, r.stderr)
		}
	}
}
