package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/internal/rpctest"
	"github.com/sandboxd/sandboxd/internal/uidtest"
)

// daemonProc is a `sandboxd serve` process on a private socket and state
// directory.
type daemonProc struct {
	cmd    *exec.Cmd
	socket string
	state  string
	log    *abitest.Buffer
	exited chan struct{}
	code   int
}

// privateDir returns a temporary directory with a path short enough for a
// unix socket, removed when the test ends.
func privateDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "sbxd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// serveDaemon starts `binary serve` with the given state directory ("" for
// a new one), logging at debug level unless extra flags say otherwise, and
// waits until it answers on its socket. The daemon is stopped with SIGTERM
// when the test ends, and must exit 0.
func serveDaemon(t testing.TB, binary, state string, extra ...string) *daemonProc {
	t.Helper()
	dir := privateDir(t)
	if state == "" {
		state = filepath.Join(dir, "state")
	}
	d := &daemonProc{socket: filepath.Join(dir, "sandboxd.sock"), state: state, log: &abitest.Buffer{}, exited: make(chan struct{})}
	d.cmd = exec.Command(binary, append([]string{"serve", "--socket", d.socket, "--state", state, "--log-level", "debug"}, extra...)...)
	d.cmd.Stderr = d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = d.cmd.Wait()
		d.code = d.cmd.ProcessState.ExitCode()
		close(d.exited)
	}()
	deadline := time.Now().Add(hangGuard)
	for {
		c, err := client.Dial(context.Background(), d.socket)
		if err == nil {
			_, err = c.Whoami(context.Background())
			c.Close()
			if err == nil {
				break
			}
		}
		select {
		case <-d.exited:
			t.Fatalf("sandboxd serve exited with %d before serving:\n%s", d.code, d.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandboxd serve did not answer within %v:\n%s", hangGuard, d.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(func() {
		if code := d.stop(t); code != 0 {
			t.Errorf("sandboxd serve exited with %d after SIGTERM, want 0", code)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log.String())
		}
	})
	return d
}

// stop sends SIGTERM and returns the exit status (once; later calls
// return the same).
func (d *daemonProc) stop(t testing.TB) int {
	select {
	case <-d.exited:
		return d.code
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(hangGuard):
		_ = d.cmd.Process.Kill()
		<-d.exited
		t.Errorf("sandboxd serve did not stop within %v of SIGTERM", hangGuard)
	}
	return d.code
}

// cli runs a daemon verb against d.
func (d *daemonProc) cli(t *testing.T, verb string, args ...string) result {
	t.Helper()
	return sandboxd(t, "", append([]string{verb, "--socket", d.socket}, args...)...)
}

func (d *daemonProc) psJSON(t *testing.T) map[string]client.GuestInfo {
	t.Helper()
	r := d.cli(t, "ps", "-a", "--json")
	if r.code != 0 {
		t.Fatalf("ps -a --json: %d %s", r.code, r.stderr)
	}
	out := map[string]client.GuestInfo{}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for {
		var g client.GuestInfo
		if err := dec.Decode(&g); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("ps --json output %q: %v", r.stdout, err)
		}
		out[g.ID] = g
	}
	return out
}

func TestDaemonLaunchAttachedStreamsOutputAndExitsWithTheGuestsStatus(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	r := d.cli(t, "launch", guest(t, "abi/testdata/guests/hello.wat"))
	if r.code != 7 || r.stdout != "hello\n" || r.stderr != "" {
		t.Fatalf("launch hello: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = d.cli(t, "launch", guest(t, "daemon/testdata/server/interleave.wat"))
	if r.code != 3 || r.stdout != "out1\nout2\n" || r.stderr != "err1\n" {
		t.Fatalf("launch interleave: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = sandboxd(t, "hello from stdin", "launch", "--socket", d.socket, "--stdin", guest(t, "daemon/testdata/guests/cat.wat"))
	if r.code != 0 || r.stdout != "hello from stdin" || r.stderr != "done\n" {
		t.Fatalf("launch --stdin cat: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = d.cli(t, "launch", "--timeout", "100ms", guest(t, "daemon/testdata/guests/spin.wat"))
	if r.code != exitTimeout {
		t.Fatalf("launch --timeout on a spinning guest: code %d, stderr %q", r.code, r.stderr)
	}
	oneLine(t, r.stderr, "ran longer than --timeout 100ms")
}

func TestDaemonDetachedGuestsArePsWaitLogsAndKillable(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	r := d.cli(t, "launch", "--detach", guest(t, "abi/testdata/guests/hello.wat"))
	if r.code != 0 || !strings.HasPrefix(r.stdout, "g-") {
		t.Fatalf("launch --detach: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	hello := strings.TrimSpace(r.stdout)
	if r := d.cli(t, "wait", hello); r.code != 7 {
		t.Fatalf("wait %s: code %d, stderr %q", hello, r.code, r.stderr)
	}
	if r := d.cli(t, "logs", hello); r.code != 0 || r.stdout != "hello\n" {
		t.Fatalf("logs %s: code %d, stdout %q, stderr %q", hello, r.code, r.stdout, r.stderr)
	}
	spin := d.launchSpin(t)
	checkListing(t, d, hello, spin)
	if r := d.cli(t, "kill", "--reason", "test over", spin); r.code != 0 || !strings.Contains(r.stdout, "killed (test over)") {
		t.Fatalf("kill: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := d.cli(t, "wait", spin); r.code != exitKilled {
		t.Fatalf("wait on a killed guest: code %d", r.code)
	}
	if g := d.psJSON(t)[spin]; g.Running || g.Status.Killed != "test over" || g.Status.Code != 137 {
		t.Fatalf("ps --json for the killed guest: %+v", g)
	}
}

// checkListing checks ps's listings with one guest that has exited
// (hello, with status 7) and one running (spin), and that a prefix of an
// id reaches its guest.
func checkListing(t *testing.T, d *daemonProc, hello, spin string) {
	t.Helper()
	ps := d.cli(t, "ps", "-a")
	if !strings.Contains(ps.stdout, hello) || !strings.Contains(ps.stdout, "exited 7") || !strings.Contains(ps.stdout, spin) || !strings.Contains(ps.stdout, "running") {
		t.Fatalf("ps -a:\n%s", ps.stdout)
	}
	if ps := d.cli(t, "ps"); strings.Contains(ps.stdout, hello) || !strings.Contains(ps.stdout, spin) {
		t.Fatalf("ps lists ended guests, or not the running one:\n%s", ps.stdout)
	}
	if ps := d.cli(t, "ps", "-q", "--filter", "state=ended", "-a"); ps.stdout != hello+"\n" {
		t.Fatalf("ps -q --filter state=ended -a: %q, want %s alone", ps.stdout, hello)
	}
	// Asking for ended guests lists them without -a, as text and as JSON.
	if ps := d.cli(t, "ps", "-q", "--filter", "state=ended"); ps.stdout != hello+"\n" {
		t.Fatalf("ps -q --filter state=ended: %q, want %s alone", ps.stdout, hello)
	}
	if ps := jsonLines[client.GuestInfo](t, "ps --json --filter state=ended", d.cli(t, "ps", "--json", "--filter", "state=ended").stdout); len(ps) != 1 || ps[0].ID != hello {
		t.Fatalf("ps --json --filter state=ended: %+v, want %s alone", ps, hello)
	}
	if r := d.cli(t, "logs", strings.TrimPrefix(hello, "g-")[:6]); r.code != 0 || r.stdout != "hello\n" {
		t.Fatalf("logs by a prefix of the id: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// With room for one idle module, launching a second module drops the
// first from memory, and launching the first again compiles it anew
// (here from the state directory's cache): every launch still runs.
func TestDaemonDropsIdleModulesBeyondItsLimitAndCompilesThemAgain(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "", "--idle-modules", "1")
	hello, exit300 := guest(t, "abi/testdata/guests/hello.wat"), guest(t, "daemon/testdata/guests/exit300.wat")
	for i, c := range []struct {
		module string
		code   int
	}{{hello, 7}, {exit300, 255}, {hello, 7}} {
		if r := d.cli(t, "launch", c.module); r.code != c.code {
			t.Fatalf("launch %d (%s): code %d, stderr %q", i, filepath.Base(c.module), r.code, r.stderr)
		}
	}
	// The daemon's log reaches the test through a pipe, after the launch
	// has returned: wait for the second compile's line, then count.
	d.awaitLog(t, "compiled module: module=hello.wasm", 2)
	if n := strings.Count(d.log.String(), "dropped idle module: module=hello.wasm"); n != 1 {
		t.Fatalf("hello was dropped %d times, want once:\n%s", n, d.log.String())
	}
	if n := strings.Count(d.log.String(), "compiled module: module=hello.wasm"); n != 2 {
		t.Fatalf("hello was compiled %d times, want twice:\n%s", n, d.log.String())
	}
}

func TestDaemonInterruptedLaunchKillsItsGuest(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	cmd := exec.Command(bin, "launch", "--socket", d.socket, guest(t, "daemon/testdata/guests/spin.wat"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var id string
	deadline := time.Now().Add(hangGuard)
	for id == "" {
		for gid, g := range d.psJSON(t) {
			if g.Running {
				id = gid
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the launched guest never showed in ps")
		}
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupt {
		t.Fatalf("launch after SIGINT: %v, code %d, stderr %q", err, code, stderr.String())
	}
	oneLine(t, stderr.String(), "interrupted: guest "+id+" killed")
	if g := d.psJSON(t)[id]; g.Running || g.Status.Killed != "interrupted" {
		t.Fatalf("guest after Ctrl-C: %+v", g)
	}
}

// A file granted to a running guest reaches it through its supervisor
// channel; caps lists it as the grant that made it; and revoking it cuts
// the guest off between two writes, which the guest sees as ENOTCAPABLE.
func TestDaemonGrantReachesRunningGuestAndRevokeCutsItOffWhileInUse(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	r := d.cli(t, "launch", "--detach", guest(t, "daemon/testdata/server/recv_grant.c"))
	if r.code != 0 {
		t.Fatalf("launch --detach: code %d, stderr %q", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	file := filepath.Join(privateDir(t), "ticks")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r = d.cli(t, "grant", id, "--grant", "file:"+file+"=ticks")
	if r.code != 0 {
		t.Fatalf("grant: code %d, stderr %q", r.code, r.stderr)
	}
	capID, _, _ := strings.Cut(r.stdout, "\t")
	awaitCount(t, file, "tick\n", 3)
	checkGrantedCap(t, d, id, capID, "file:"+file)

	r = d.cli(t, "revoke", "--reason", "test", capID)
	if r.code != 0 || !strings.Contains(r.stdout, "revoked "+capID+": 1 capability held by "+id) {
		t.Fatalf("revoke: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := d.cli(t, "revoke", capID); r.code != exitFailure || r.stdout != "" {
		t.Fatalf("revoke of a revoked capability: code %d, stdout %q; want %d and nothing revoked", r.code, r.stdout, exitFailure)
	} else {
		oneLine(t, r.stderr, "was already revoked at ")
		if !strings.Contains(r.stderr, "(test)") {
			t.Errorf("revoke of a revoked capability does not say why: %q", r.stderr)
		}
	}
	if r := d.cli(t, "wait", id); r.code != 0 {
		t.Fatalf("the guest did not see its handle revoked: wait code %d", r.code)
	}
	if r := d.cli(t, "logs", id); r.stdout != "received\nrevoked\n" {
		t.Fatalf("logs: %q", r.stdout)
	}
	if r := d.cli(t, "revoke", "cnosuchcap"); r.code != exitFailure {
		t.Fatalf("revoke of an unknown capability: code %d", r.code)
	} else {
		oneLine(t, r.stderr, "no capability cnosuchcap")
	}
}

// awaitCount waits until file holds s at least n times: a guest writes
// them as it runs. It polls, as nothing signals a write to a host file.
func awaitCount(t *testing.T, file, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		b, _ := os.ReadFile(file)
		if bytes.Count(b, []byte(s)) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never held %q %d times: the guest never wrote through its granted handle", file, s, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkGrantedCap checks that `caps id` lists capability capID as fd 4,
// a file named ticks that the grant text made, with no parent and no
// lease, beside the guest's supervisor channel.
func checkGrantedCap(t *testing.T, d *daemonProc, id, capID, text string) {
	t.Helper()
	r := d.cli(t, "caps", id)
	var row string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.Contains(l, capID) {
			row = l
		}
	}
	f := strings.Fields(row)
	if len(f) < 9 || f[0] != "4" || f[2] != "file" || f[3] != "ticks" || f[5] != "grant" || f[6] != "-" || f[7] != "-" || f[8] != text {
		t.Fatalf("caps row for %s: %q (all:\n%s)", capID, row, r.stdout)
	}
	if !strings.Contains(r.stdout, "supervisor") {
		t.Fatalf("caps lists no supervisor channel:\n%s", r.stdout)
	}
}

// shareWithOthers lets every user reach d's socket, as an operator who
// loosens its mode would, and returns a directory every user can read
// that holds a copy of the binary (the test's own temporary directories
// admit only root).
func (d *daemonProc) shareWithOthers(t *testing.T) (shared string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Fatal("this test runs clients as other users, which needs root")
	}
	if err := os.Chmod(d.socket, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(d.socket), 0o755); err != nil {
		t.Fatal(err)
	}
	shared = privateDir(t)
	if err := os.Chmod(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, bin, filepath.Join(shared, "sandboxd"), 0o755)
	return shared
}

// cliAs runs a daemon verb against d as uid (gid the same), with the copy
// of the binary in shared, in an environment that claims to be root in
// every way a client could.
//
// The copy was written by this process, and a child another test forked
// meanwhile may hold it open for writing until that child execs: exec then
// fails with ETXTBSY (golang/go#22315), and cliAs tries again.
func (d *daemonProc) cliAs(t *testing.T, shared string, uid uint32, verb string, args ...string) result {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		cmd := exec.Command(filepath.Join(shared, "sandboxd"), append([]string{verb, "--socket", d.socket}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		cmd.Env = []string{"USER=root", "LOGNAME=root", "SUDO_UID=0", "UID=0", "HOME=/root"}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if errors.Is(err, syscall.ETXTBSY) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("sandboxd %s as uid %d: %v", verb, uid, err)
		}
		return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
	}
}

func TestDaemonPrincipalIsThePeerCredentialNotAnythingTheClientClaims(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	rootGuest := d.launchSpin(t)
	shared := d.shareWithOthers(t)
	hello := filepath.Join(shared, "hello.wasm")
	copyFile(t, guest(t, "abi/testdata/guests/hello.wat"), hello, 0o644)

	const nobody = 65534
	asNobody := func(verb string, args ...string) result { return d.cliAs(t, shared, nobody, verb, args...) }
	r := asNobody("launch", "--detach", "--env", "USER=root", hello)
	if r.code != 0 {
		t.Fatalf("launch as nobody: code %d, stderr %q", r.code, r.stderr)
	}
	theirs := strings.TrimSpace(r.stdout)
	all := d.psJSON(t)
	if p := all[theirs].Principal; p.UID != nobody || p.GID != nobody {
		t.Fatalf("guest launched by uid %d recorded as %+v", nobody, p)
	}
	if p := all[rootGuest].Principal; p.UID != 0 {
		t.Fatalf("root's guest recorded as %+v", p)
	}
	// nobody sees and reaches only its own guests.
	if r := asNobody("ps", "-a"); strings.Contains(r.stdout, rootGuest) || !strings.Contains(r.stdout, theirs) {
		t.Fatalf("ps as nobody:\n%s", r.stdout)
	}
	if r := asNobody("kill", rootGuest); r.code != exitFailure || !strings.Contains(r.stderr, "no guest "+rootGuest) {
		t.Fatalf("nobody killing root's guest: code %d, stderr %q", r.code, r.stderr)
	}
	// Host paths are opened with the daemon's authority: nobody may not name them.
	if r := asNobody("launch", "--grant", "dir:/root", hello); r.code != exitGrant || !strings.Contains(r.stderr, "may not grant host paths") {
		t.Fatalf("nobody granting /root: code %d, stderr %q", r.code, r.stderr)
	}
	d.cli(t, "kill", rootGuest)
}

func TestDaemonServesRootAndOtherUsersWhileOneHoldsManyIdleConnections(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	shared := d.shareWithOthers(t)
	const attacker, other, held = 65534, 65533, 1500
	conns, err := uidtest.Dial(d.socket, attacker, attacker, held)
	if err != nil {
		t.Fatal(err)
	}
	boot, err := rpctest.Bootstrap(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		defer c.Close()
		// Bootstrapped, then idle: the bootstrap timeout does not end them.
		// Connections the daemon refused fail to write, which is expected.
		_, _ = c.Write(boot)
	}
	// The daemon accepts in order, so both come after all of the above.
	if r := d.cli(t, "ps"); r.code != 0 {
		t.Errorf("ps as root while uid %d holds %d connections: code %d, stderr %q", attacker, held, r.code, r.stderr)
	}
	if r := d.cliAs(t, shared, other, "ps"); r.code != 0 {
		t.Errorf("ps as uid %d while uid %d holds %d connections: code %d, stderr %q", other, attacker, held, r.code, r.stderr)
	}
	if code := d.stop(t); code != 0 { // and with it, all of its log
		t.Fatalf("sandboxd serve exited with %d after SIGTERM, want 0", code)
	}
	const share = 1024 / 8
	want := fmt.Sprintf("uid %d has %d connections open, its share (--max-conns-per-user %d)", attacker, share, share)
	if n := strings.Count(d.log.String(), want); n != held-share {
		t.Fatalf("%d refusals of uid %d logged as %q; want %d, all but its share", n, attacker, want, held-share)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

func TestDaemonSIGTERMStopsGuestsAndExitsZero(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	id := d.launchSpin(t)
	// The guest spins in its own code, never in a host call: the daemon
	// does not wait for it, its exit ends it.
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	log := d.log.String()
	if !strings.Contains(log, "guest="+id) || !strings.Contains(log, `stopping: guests=1 reason="supervisor shutting down"`) {
		t.Fatalf("the log does not say the running guest was stopped:\n%s", log)
	}
	if _, err := os.Lstat(d.socket); !os.IsNotExist(err) {
		t.Fatalf("the socket outlived the daemon: %v", err)
	}
}

// cacheFiles lists the files under dir with their modification times.
func cacheFiles(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			out[p] = fi.ModTime()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDaemonRestartedOnItsStateDirCompilesNothingAgain(t *testing.T) {
	t.Parallel()
	state := filepath.Join(privateDir(t), "state")
	hello := guest(t, "daemon/testdata/server/hello_wasi.wat")
	d := serveDaemon(t, bin, state)
	if r := d.cli(t, "launch", hello); r.code != 7 {
		t.Fatalf("launch: %d %s", r.code, r.stderr)
	}
	// A second daemon may not share the state directory.
	r := sandboxd(t, "", "serve", "--socket", filepath.Join(privateDir(t), "s.sock"), "--state", state)
	if r.code != exitFailure {
		t.Fatalf("a second daemon on the same state: code %d", r.code)
	}
	oneLine(t, r.stderr, "in use by another sandboxd")
	if code := d.stop(t); code != 0 {
		t.Fatalf("stop: %d", code)
	}
	before := cacheFiles(t, filepath.Join(state, "cache"))
	if len(before) == 0 {
		t.Fatal("the first daemon left no compiled code in its state directory")
	}
	d2 := serveDaemon(t, bin, state)
	if r := d2.cli(t, "launch", hello); r.code != 7 || r.stdout != "hello\n" {
		t.Fatalf("launch after restart: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if code := d2.stop(t); code != 0 {
		t.Fatalf("stop: %d", code)
	}
	after := cacheFiles(t, filepath.Join(state, "cache"))
	if len(after) != len(before) {
		t.Fatalf("the restarted daemon wrote compiled code again: %d files before, %d after", len(before), len(after))
	}
	for p, m := range before {
		if !after[p].Equal(m) {
			t.Fatalf("%s was rewritten by the restarted daemon", p)
		}
	}
}

// launch and grant exit as run does when a grant or the module is at
// fault: 3 and 4, with one line saying what, and nothing runs.
func TestDaemonLaunchAndGrantFailuresExitAsRunDoes(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	dir := privateDir(t)
	missing := filepath.Join(dir, "missing")
	file := filepath.Join(dir, "f.txt")
	garbage := filepath.Join(dir, "garbage.wasm")
	reactor := filepath.Join(dir, "reactor.wasm")
	for p, b := range map[string]string{file: "", garbage: "this is not wasm\n", reactor: "\x00asm\x01\x00\x00\x00"} {
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hello := guest(t, "abi/testdata/guests/hello.wat")
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"launch", "--grant", "dir:" + missing, hello}, exitGrant, missing + " does not exist"},
		{[]string{"launch", "--grant", "dir:" + file, hello}, exitGrant, "is not a directory"},
		{[]string{"launch", "--grant", "cap:c0123456789abcdef", hello}, exitGrant, "c0123456789abcdef"},
		{[]string{"launch", garbage}, exitModule, "is not a valid WebAssembly module"},
		{[]string{"launch", reactor}, exitModule, "has no _start function"},
		{[]string{"launch", "--max-fds", "4294967299", hello}, exitUsage, "max fds 4294967299 is out of range"},
		// The daemon's guests hold their supervisor channel by that name.
		{[]string{"launch", "--grant", "file:" + file + "=supervisor", hello}, exitUsage, `the handle name "supervisor" is already taken`},
	} {
		r := d.cli(t, c.args[0], c.args[1:]...)
		if r.code != c.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", c.args, r.code, c.code, r.stderr)
		}
		oneLine(t, r.stderr, c.says)
		if r.stdout != "" {
			t.Errorf("%v: the guest ran: stdout %q", c.args, r.stdout)
		}
	}
	r := d.cli(t, "launch", "--detach", guest(t, "daemon/testdata/server/recv_grant.c"))
	id := strings.TrimSpace(r.stdout)
	defer d.cli(t, "kill", id)
	if r := d.cli(t, "grant", id, "--grant", "file:"+missing+"=ticks"); r.code != exitGrant {
		t.Errorf("grant of a missing file: exit %d, want %d (stderr %q)", r.code, exitGrant, r.stderr)
	} else {
		oneLine(t, r.stderr, missing+" does not exist")
	}
}

func TestDaemonVerbsWithoutADaemonExitUnavailable(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(privateDir(t), "none.sock")
	for _, args := range [][]string{{"ps"}, {"wait", "g-1"}, {"logs", "g-1"}, {"kill", "g-1"}, {"caps", "g-1"}, {"revoke", "c1"}, {"grant", "g-1", "--grant", "dir:/tmp"}} {
		r := sandboxd(t, "", append([]string{args[0], "--socket", sock}, args[1:]...)...)
		if r.code != exitUnavailable {
			t.Errorf("%v without a daemon: code %d, want %d", args, r.code, exitUnavailable)
		}
		oneLine(t, r.stderr, "sandboxd serve --socket "+sock)
	}
	for _, args := range [][]string{{"wait"}, {"logs"}, {"caps"}, {"kill"}, {"revoke"}, {"grant", "g-1"}, {"launch"}, {"ps", "extra"}, {"serve", "extra"}} {
		if r := sandboxd(t, "", append([]string{args[0], "--socket", sock}, args[1:]...)...); r.code != exitUsage {
			t.Errorf("%v: code %d, want %d (usage)", args, r.code, exitUsage)
		}
	}
}

// cliBinary builds a sandboxd without the race detector, for benchmarks.
var cliBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "sandboxd-bench-")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "sandboxd")
	if out, err := exec.Command("go", "build", "-o", p, ".").CombinedOutput(); err != nil {
		return "", &buildError{err, out}
	}
	return p, nil
})

// wazeroBinary builds wazero's CLI at the version in go.mod's pin.
var wazeroBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "wazero-bench-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "install", "github.com/tetratelabs/wazero/cmd/wazero@v1.12.0")
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{err, out}
	}
	return filepath.Join(dir, "wazero"), nil
})

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + string(e.out) }

// benchmarkProcess times runs of a command that must exit 7 and print
// "hello\n", reporting p50 and p99.
func benchmarkProcess(b *testing.B, name string, args ...string) {
	run := func() time.Duration {
		t0 := time.Now()
		out, err := exec.Command(name, args...).Output()
		took := time.Since(t0)
		var ee *exec.ExitError
		if !strings.HasSuffix(string(out), "hello\n") || (err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 7)) {
			b.Fatalf("%s %v: %v, output %q", name, args, err, out)
		}
		return took
	}
	for i := 0; i < 3; i++ {
		run()
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lat = append(lat, run())
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkDaemonWarmLaunchCLI times `sandboxd launch` of a small WASI
// guest against a running daemon (module compiled once): a new process,
// its connection, the launch and the exit status.
func BenchmarkDaemonWarmLaunchCLI(b *testing.B) {
	sbx, err := cliBinary()
	if err != nil {
		b.Fatal(err)
	}
	d := serveDaemon(b, sbx, "", "--log-level", "info")
	benchmarkProcess(b, sbx, "launch", "--socket", d.socket, benchGuest(b))
}

// BenchmarkDaemonWarmLaunchLibrary times a launch through the client
// library against a daemon in another process, to the exit status.
func BenchmarkDaemonWarmLaunchLibrary(b *testing.B) {
	sbx, err := cliBinary()
	if err != nil {
		b.Fatal(err)
	}
	d := serveDaemon(b, sbx, "", "--log-level", "info")
	ctx := context.Background()
	c, err := client.Dial(ctx, d.socket)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	wasm, err := os.ReadFile(benchGuest(b))
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	launch := func() time.Duration {
		out.Reset()
		t0 := time.Now()
		g, err := c.Launch(ctx, client.LaunchRequest{Name: "hello_wasi.wasm", Wasm: wasm, Stdout: &out})
		if err != nil {
			b.Fatal(err)
		}
		st, err := g.Wait(ctx)
		took := time.Since(t0)
		g.Release()
		if err != nil || st.Code != 7 || out.String() != "hello\n" {
			b.Fatalf("status %+v, err %v, output %q", st, err, out.String())
		}
		return took
	}
	for i := 0; i < 20; i++ {
		launch()
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lat = append(lat, launch())
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkDaemonRoundTripLibrary times the cheapest call (whoami) to a
// daemon in another process: the floor under every launch.
func BenchmarkDaemonRoundTripLibrary(b *testing.B) {
	sbx, err := cliBinary()
	if err != nil {
		b.Fatal(err)
	}
	d := serveDaemon(b, sbx, "", "--log-level", "info")
	ctx := context.Background()
	c, err := client.Dial(ctx, d.socket)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := c.Whoami(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkWazeroRunCold times `wazero run` of the same module: a new
// process that compiles the module and runs it.
func BenchmarkWazeroRunCold(b *testing.B) {
	wz, err := wazeroBinary()
	if err != nil {
		b.Fatal(err)
	}
	benchmarkProcess(b, wz, "run", benchGuest(b))
}

// benchGuest writes the WASI hello module both runtimes run, and returns
// its path.
func benchGuest(b *testing.B) string {
	p := filepath.Join(privateDir(b), "hello_wasi.wasm")
	if err := os.WriteFile(p, abitest.WAT(b, "daemon/testdata/server/hello_wasi.wat"), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

func TestServeUsageErrorsExit2BeforeServing(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--idle-modules", "0"}, "--idle-modules 0: it must be above 0"},
		{[]string{"--max-fds", "2"}, "--max-fds 2: it must be at least 3"},
		{[]string{"--max-guests", "0"}, "--max-guests 0: it must be above 0"},
		{[]string{"--max-procs", "0"}, "--max-procs 0: it must be above 0"},
		{[]string{"--max-procs", "1025"}, "--max-procs 1025: it may be at most 1024"},
		{[]string{"--max-conns", "0"}, "--max-conns 0: it must be above 0"},
		{[]string{"--max-calls", "0"}, "--max-calls 0: it must be above 0"},
		{[]string{"--max-objects", "0"}, "--max-objects 0: it must be above 0"},
		{[]string{"--max-inflight-per-user", "0"}, "--max-inflight-per-user 0: it must be above 0"},
		{[]string{"--write-timeout", "0s"}, "--write-timeout 0s: it must be above 0"},
		{[]string{"--reserved-conns", "0"}, "--reserved-conns 0: it must be at least 1 and below --max-conns (1024)"},
		{[]string{"--max-conns", "8", "--reserved-conns", "8"}, "--reserved-conns 8: it must be at least 1 and below --max-conns (8)"},
		{[]string{"--max-conns-per-user", "0"}, "--max-conns-per-user 0: it must be at least 1 and at most --max-conns minus --reserved-conns (960)"},
		{[]string{"--max-conns", "8", "--reserved-conns", "2", "--max-conns-per-user", "7"}, "--max-conns-per-user 7: it must be at least 1 and at most --max-conns minus --reserved-conns (6)"},
	} {
		dir := privateDir(t)
		r := sandboxd(t, "", append([]string{"serve", "--socket", filepath.Join(dir, "s.sock"), "--state", filepath.Join(dir, "state")}, c.args...)...)
		if r.code != exitUsage {
			t.Errorf("serve %v: code %d, want %d", c.args, r.code, exitUsage)
		}
		oneLine(t, r.stderr, c.want)
	}
	// --policy names a directory of *.hcl files (run --policy takes the
	// files): a file or a missing directory is said to be that, not a
	// policy with problems to check.
	dir := privateDir(t)
	file := filepath.Join(dir, "p.hcl")
	if err := os.WriteFile(file, []byte("resource \"chan\" \"jobs\" {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for policy, want := range map[string]string{
		file:                        "--policy " + file + " is a file: serve takes the directory of the policy's *.hcl files (--policy " + dir + ")",
		filepath.Join(dir, "nodir"): "policy directory " + filepath.Join(dir, "nodir") + ": no such file or directory",
	} {
		r := sandboxd(t, "", "serve", "--socket", filepath.Join(dir, "s.sock"), "--state", filepath.Join(dir, "state"), "--policy", policy)
		if r.code != exitUsage {
			t.Errorf("serve --policy %s: code %d, want %d", policy, r.code, exitUsage)
		}
		oneLine(t, r.stderr, want)
	}
}

// Every guest of a daemon opens its host descriptors in the daemon's
// process, so together they can use up its RLIMIT_NOFILE whatever their
// own --max-fds. A guest's open then fails with ENFILE and the daemon
// warns; it goes on serving, and once descriptors are closed they can be
// opened again.
func TestDaemonOutOfHostDescriptorsFailsTheGuestsCallNotTheDaemon(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, withFDLimit(t, 64), "")
	openmany := wasiGuest(t, "cmd/sandboxd/testdata/openmany.c")
	r := d.cli(t, "launch", "--grant", "dir:"+openManyData(t)+"=/data", openmany, "/data/f")
	if !ranOutOfHostFDs(r) {
		t.Fatalf("launch openmany under ulimit -n 64: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if log := d.log.String(); !strings.Contains(log, "fd_limit=64") || !strings.Contains(log, "sandboxd is out of file descriptors") {
		t.Errorf("the daemon did not log its limit and warn that it ran out of descriptors:\n%s", log)
	}
	r = d.cli(t, "launch", guest(t, "abi/testdata/guests/hello.wat"))
	if r.code != 7 || r.stdout != "hello\n" {
		t.Fatalf("launch after the guest ran out: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// launch without --max-fds leaves the size of the guest's handle table to
// the daemon (serve --max-fds); with it, the launch's own applies.
func TestDaemonLaunchWithoutMaxFDsGetsTheDaemonsDefault(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "", "--max-fds", "8")
	openmany := wasiGuest(t, "cmd/sandboxd/testdata/openmany.c")
	grant := "dir:" + openManyData(t) + "=/data"
	// 3 stdio handles, the grant and the supervisor channel every guest of
	// the daemon holds: 3 left of 8, 5 of 10.
	r := d.cli(t, "launch", "--grant", grant, openmany, "/data/f")
	if r.code != 0 || r.stdout != "opened 3, then EMFILE\nafter a close: ok\n" {
		t.Errorf("launch without --max-fds: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = d.cli(t, "launch", "--max-fds", "10", "--grant", grant, openmany, "/data/f")
	if r.code != 0 || r.stdout != "opened 5, then EMFILE\nafter a close: ok\n" {
		t.Errorf("launch --max-fds 10: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// serve --max-mem-per-user refuses the launch that would take a user's
// running guests past it (exit 1, naming the budget and what is in use),
// and another user's launches go on.
func TestDaemonMemoryBudgetPerUser(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "", "--max-mem-per-user", "3MiB", "--max-stack", "512KiB")
	shared := d.shareWithOthers(t)
	spin := filepath.Join(shared, "spin.wasm")
	copyFile(t, guest(t, "daemon/testdata/guests/spin.wat"), spin, 0o644)
	const nobody = 65534
	root := func(args ...string) result {
		return d.cli(t, "launch", append([]string{"--detach", "--mem", "1MiB"}, args...)...)
	}
	var ids []string
	for i := 0; i < 2; i++ {
		r := root(spin)
		if r.code != 0 {
			t.Fatalf("root's launch %d: code %d, stderr %q", i+1, r.code, r.stderr)
		}
		ids = append(ids, strings.TrimSpace(r.stdout))
	}
	r := root(spin)
	if want := "root's running guests hold 3MiB of the daemon's memory budget per user (serve --max-mem-per-user 3MiB), and this launch asks 1536KiB more"; r.code != exitFailure || !strings.Contains(r.stderr, want) {
		t.Fatalf("root's third launch: code %d, stderr %q; want %d and %q", r.code, r.stderr, exitFailure, want)
	}
	r = d.cliAs(t, shared, nobody, "launch", "--detach", "--mem", "1MiB", spin)
	if r.code != 0 {
		t.Fatalf("nobody's launch beside root's full budget: code %d, stderr %q", r.code, r.stderr)
	}
	d.cliAs(t, shared, nobody, "kill", strings.TrimSpace(r.stdout))
	d.cli(t, "kill", ids...)
	if r := root(spin); r.code != 0 {
		t.Fatalf("root's launch once its guests ended: code %d, stderr %q", r.code, r.stderr)
	} else {
		d.cli(t, "kill", strings.TrimSpace(r.stdout))
	}
}

// A guest's spawned children are charged to its user's budget as it is
// (each has its --mem and --max-stack): the spawn that would pass the
// budget fails in the guest with ENOMEM, the user's next launch is refused
// while the tree runs, and killing the tree gives every charge back. (The
// budget leaves room for the module file too, which a spawn reads whole
// and is charged while it compiles.)
func TestDaemonMemoryBudgetChargesSpawnedGuests(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "", "--max-mem-per-user", "3100KiB", "--max-stack", "512KiB")
	self := guest(t, "cmd/sandboxd/testdata/spawn_self.wat")
	r := d.cli(t, "launch", "--detach", "--mem", "1MiB", "--grant", "file:"+self, self)
	if r.code != 0 {
		t.Fatalf("launch: code %d, stderr %q", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	// The guest (1.5 MiB) spawns a child (3 MiB in all), whose own spawn
	// would take 4.5 MiB: it writes "nomem".
	deadline := time.Now().Add(hangGuard)
	for out := ""; out != "nomem\n"; out = d.cli(t, "logs", id).stdout {
		if time.Now().After(deadline) {
			t.Fatalf("the tree's output is %q after %v, want nomem", out, hangGuard)
		}
		time.Sleep(10 * time.Millisecond)
	}
	spin := guest(t, "daemon/testdata/guests/spin.wat")
	// The tree holds 3 MiB and the output kept of its "nomem" (72 bytes).
	if r := d.cli(t, "launch", "--detach", "--mem", "1MiB", spin); r.code != exitFailure || !strings.Contains(r.stderr, "root's running guests hold 3145800B") {
		t.Fatalf("a launch beside the tree that holds the budget: code %d, stderr %q", r.code, r.stderr)
	}
	d.cli(t, "kill", id)
	if r := d.cli(t, "launch", "--detach", "--mem", "1MiB", spin); r.code != 0 {
		t.Fatalf("a launch once the tree ended: code %d, stderr %q", r.code, r.stderr)
	} else {
		d.cli(t, "kill", strings.TrimSpace(r.stdout))
	}
}

// A guest's listen:unix: socket outlives a daemon stopped by SIGTERM (its
// exit ends the guest without closing the listener); the restarted
// daemon replaces the stale file, and the same grant works again.
func TestDaemonRestartedAfterSIGTERMGrantsTheSameUnixListenAgain(t *testing.T) {
	t.Parallel()
	state := filepath.Join(privateDir(t), "state")
	sock := filepath.Join(privateDir(t), "guest.sock")
	spin := guest(t, "daemon/testdata/guests/spin.wat")
	for i := 1; i <= 2; i++ {
		d := serveDaemon(t, bin, state)
		if r := d.cli(t, "launch", "--detach", "--grant", "listen:unix:"+sock+"=l", spin); r.code != 0 {
			t.Fatalf("launch by daemon %d: code %d, stderr %q", i, r.code, r.stderr)
		}
		if code := d.stop(t); code != 0 {
			t.Fatalf("daemon %d: exit %d after SIGTERM", i, code)
		}
	}
}

// A module that makes the WebAssembly decoder panic is refused (exit 4),
// and the daemon goes on serving: no module a client sends can take it
// and its guests down.
func TestDaemonRefusesAModuleTheDecoderPanicsOnAndServesOn(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	bad := filepath.Join(privateDir(t), "bad.wasm")
	if err := os.WriteFile(bad, []byte("\x00asm\x01\x00\x00\x00\n\t\x01\x03\x010c0000"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := d.cli(t, "launch", bad); r.code != exitModule || !strings.Contains(r.stderr, "bad.wasm is not a valid WebAssembly module") {
		t.Fatalf("launch: code %d, stderr %q", r.code, r.stderr)
	}
	if r := d.cli(t, "launch", guest(t, "daemon/testdata/server/hello_wasi.wat")); r.code != 7 {
		t.Fatalf("a launch after the refused module: code %d, stderr %q", r.code, r.stderr)
	}
}

// serve --max-inflight-per-user bounds the handles a user's guests have
// sent and nobody has received: a guest sending its stdin handle on a
// channel of its own, never receiving, makes that many sends and no more.
func TestDaemonBoundsHandlesInFlightPerUser(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "", "--max-inflight-per-user", "8")
	sender := guest(t, "cmd/sandboxd/testdata/send_own_channel.wat")
	if r := d.cli(t, "launch", sender); r.code != 8 {
		t.Fatalf("a guest sending 100 handles under --max-inflight-per-user 8: exit %d (its successful sends), stderr %q; want 8", r.code, r.stderr)
	}
	// Its handles went with its channel when it ended.
	if r := d.cli(t, "launch", sender); r.code != 8 {
		t.Fatalf("the same guest again: exit %d, stderr %q; want 8", r.code, r.stderr)
	}
}

// A budget per user counts many guests' limits together, so it may be
// above one guest's 4GiB: a guest launched with --mem 0 (4GiB, and its
// stack) fits in 16GiB.
func TestDaemonMemoryBudgetPerUserAboveOneGuestsLimit(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "", "--max-mem-per-user", "16GiB")
	r := d.cli(t, "launch", "--mem", "0", guest(t, "abi/testdata/guests/hello.wat"))
	if r.code != 7 {
		t.Fatalf("launch --mem 0 under a 16GiB budget: code %d, stderr %q", r.code, r.stderr)
	}
}

// A daemon that accepts the connection and never answers fails every
// verb, exit 69, once SANDBOXD_CONNECT_TIMEOUT has passed, with one line
// that names the socket and what happened; a value that is not a
// duration is a usage error.
func TestDaemonVerbsOfADaemonThatNeverAnswersExitUnavailable(t *testing.T) {
	l, err := net.Listen("unix", filepath.Join(privateDir(t), "silent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var held []net.Conn // accepted, and never answered
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	sock := l.Addr().String()
	hello := guest(t, "abi/testdata/guests/hello.wat")
	t.Setenv("SANDBOXD_CONNECT_TIMEOUT", "100ms")
	for _, args := range [][]string{{"ps"}, {"wait", "g-1"}, {"kill", "g-1"}, {"launch", hello}} {
		r := sandboxd(t, "", append([]string{args[0], "--socket", sock}, args[1:]...)...)
		if r.code != exitUnavailable {
			t.Errorf("%v of a daemon that never answers: code %d, want %d (stderr %q)", args, r.code, exitUnavailable, r.stderr)
		}
		oneLine(t, r.stderr, sock+" accepted the connection but did not answer within 100ms")
	}
	t.Setenv("SANDBOXD_CONNECT_TIMEOUT", "soon")
	r := sandboxd(t, "", "ps", "--socket", sock)
	if r.code != exitUsage {
		t.Errorf("ps with SANDBOXD_CONNECT_TIMEOUT=soon: code %d, want %d (stderr %q)", r.code, exitUsage, r.stderr)
	}
	oneLine(t, r.stderr, "SANDBOXD_CONNECT_TIMEOUT")
}

// A standard output that cannot be written (a full disk: /dev/full) does
// not change the exit status: run and an attached launch both exit with
// the guest's own, 7. run's guest is told of the failed write (it may
// exit otherwise); launch's guest is not, so launch says, in one line,
// what failed and where the output was kept.
func TestLaunchToAFullStdoutExitsWithTheGuestsStatusAsRunDoes(t *testing.T) {
	t.Parallel()
	hello := guest(t, "abi/testdata/guests/hello.wat") // writes hello, exits 7
	toFull := func(args ...string) result {
		return runBinary(t, "/bin/sh", "", append([]string{"-c", `exec "$0" "$@" >/dev/full`, bin}, args...)...)
	}
	if r := toFull("run", hello); r.code != 7 || r.stderr != "" {
		t.Errorf("run > /dev/full: exit %d, stderr %q; want 7 and nothing", r.code, r.stderr)
	}
	d := serveDaemon(t, bin, "")
	r := toFull("launch", "--socket", d.socket, hello)
	if r.code != 7 {
		t.Errorf("launch > /dev/full: exit %d, want the guest's 7 as run (stderr %q)", r.code, r.stderr)
	}
	oneLine(t, r.stderr, "writing guest stdout: ")
	if !strings.Contains(r.stderr, "no space left on device") || !strings.Contains(r.stderr, "sandboxd logs g-") {
		t.Errorf("launch > /dev/full: stderr %q; want the failed write and where the output is kept", r.stderr)
	}
}

// The same program launched under two file names is two guests, each
// shown, recorded and started (argv[0]) under the name it was launched
// with, though the daemon compiles the bytes once.
func TestTheSameBytesLaunchedUnderTwoNamesKeepEachName(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	wasm, err := os.ReadFile(guest(t, "daemon/testdata/guests/spin.wat"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ids := map[string]string{}
	for _, name := range []string{"fetcher.wasm", "parser.wasm"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, wasm, 0o600); err != nil {
			t.Fatal(err)
		}
		r := d.cli(t, "launch", "--detach", path)
		if r.code != 0 {
			t.Fatalf("launch %s: code %d, stderr %q", name, r.code, r.stderr)
		}
		ids[name] = strings.TrimSpace(r.stdout)
	}
	ps := d.psJSON(t)
	for name, id := range ids {
		g := ps[id]
		if g.Name != name || len(g.Args) == 0 || g.Args[0] != name {
			t.Errorf("guest %s launched as %s: ps names it %q with args %q", id, name, g.Name, g.Args)
		}
	}
	if r := d.audit(t, "graph"); !strings.Contains(r.stdout, ids["parser.wasm"]+" (parser.wasm)") {
		t.Errorf("audit graph does not name the second guest's module as launched:\n%s", r.stdout)
	}
}
