package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
