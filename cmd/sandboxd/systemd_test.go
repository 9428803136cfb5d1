package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/client"
)

func TestServeTellsSystemdItIsReady(t *testing.T) {
	dir := privateDir(t)
	notify := filepath.Join(dir, "notify")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	t.Setenv("NOTIFY_SOCKET", notify)
	d := serveDaemon(t, bin, "")
	// The hang guard only turns a daemon that never says READY into a
	// failure: the read returns as soon as the datagram arrives.
	_ = nc.SetReadDeadline(time.Now().Add(hangGuard))
	buf := make([]byte, 64)
	n, err := nc.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("notify socket got %q, %v; want READY=1", buf[:n], err)
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	n, err = nc.Read(buf)
	if err != nil || string(buf[:n]) != "STOPPING=1" {
		t.Fatalf("notify socket got %q, %v; want STOPPING=1 at SIGTERM", buf[:n], err)
	}
}

func TestServeTakesItsControlSocketFromSocketActivation(t *testing.T) {
	t.Parallel()
	dir := privateDir(t)
	path := filepath.Join(dir, "activated.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close() // the daemon holds the socket now, through f's copy
	unused := filepath.Join(dir, "unused.sock")
	// systemd sets LISTEN_PID to the pid of the process it starts; a
	// shell that execs the daemon keeps its pid, $$.
	cmd := exec.Command("sh", "-c", `export LISTEN_PID=$$; exec "$0" "$@"`, bin, "serve", "--socket", unused, "--state", filepath.Join(dir, "state"))
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=control")
	cmd.ExtraFiles = []*os.File{f}
	log := &abitest.Buffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("daemon log:\n%s", log.String())
		}
	}()
	// The socket was listening before the daemon started: a client that
	// connects now waits in its backlog until the daemon accepts.
	c, err := client.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Whoami(context.Background()); err != nil {
		t.Fatalf("whoami over the activated socket: %v", err)
	}
	if _, err := os.Stat(unused); !os.IsNotExist(err) {
		t.Fatalf("serve created --socket %s although it was given one: %v", unused, err)
	}
}

// activatedSockets makes n listening unix sockets in dir, as a socket unit
// would, with mode, and returns their files (for ExtraFiles, fd 3 on) and
// paths.
func activatedSockets(t *testing.T, dir string, n int, mode os.FileMode) (files []*os.File, paths []string) {
	t.Helper()
	for i := range n {
		path := filepath.Join(dir, "activated"+string(rune('a'+i))+".sock")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		f, err := l.File()
		if err != nil {
			t.Fatal(err)
		}
		l.SetUnlinkOnClose(false)
		l.Close()
		t.Cleanup(func() { f.Close() })
		files, paths = append(files, f), append(paths, path)
	}
	return files, paths
}

// startActivated starts serve with files passed as systemd passes them,
// LISTEN_PID set to pid ("" for the daemon's own), and returns it with
// its log.
func startActivated(t *testing.T, dir, pid string, files []*os.File, extra ...string) (*exec.Cmd, *abitest.Buffer) {
	t.Helper()
	if pid == "" {
		pid = "$$" // a shell that execs the daemon keeps its pid
	}
	args := append([]string{"-c", `export LISTEN_PID=` + pid + `; exec "$0" "$@"`, bin, "serve", "--state", filepath.Join(dir, "state")}, extra...)
	cmd := exec.Command("sh", args...)
	cmd.Env = append(os.Environ(), "LISTEN_FDS="+strconv.Itoa(len(files)))
	cmd.ExtraFiles = files
	log := &abitest.Buffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("daemon log:\n%s", log.String())
		}
	})
	return cmd, log
}

// awaitServing waits until a daemon answers at path, polling as
// serveDaemon does until the socket exists (an activated one does from
// the start, and holds the connection until the daemon accepts it).
func awaitServing(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		c, err := client.Dial(context.Background(), path)
		if err == nil {
			_, err = c.Whoami(context.Background())
			c.Close()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no daemon answered at %s within %v: %v", path, hangGuard, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// What an operator gets wrong in a socket unit is said: two sockets
// (two ListenStream=) fail serve with what to write instead; sockets
// passed to another process (a wrong LISTEN_PID: a wrapper that did not
// exec) are ignored, as sd_listen_fds(3) says, but no longer silently,
// while clients of the unit's socket hung unanswered; and a socket every
// user may connect to (systemd's default SocketMode=0666) is warned of,
// since whoever connects may launch guests. An activated socket is the
// unit's: serve leaves it in place when it stops.
func TestServeSaysWhatIsWrongWithItsSocketActivation(t *testing.T) {
	t.Parallel()
	t.Run("two sockets", func(t *testing.T) {
		t.Parallel()
		dir := privateDir(t)
		files, _ := activatedSockets(t, dir, 2, 0o600)
		cmd, log := startActivated(t, dir, "", files, "--socket", filepath.Join(dir, "unused.sock"))
		_ = cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != exitFailure {
			t.Fatalf("serve given two sockets: exit %d, want %d", code, exitFailure)
		}
		oneLine(t, log.String(), "passed 2 sockets")
		if !strings.Contains(log.String(), "one ListenStream=") {
			t.Errorf("%q does not say what to write in the socket unit", log.String())
		}
	})
	t.Run("another process's", func(t *testing.T) {
		t.Parallel()
		dir := privateDir(t)
		files, _ := activatedSockets(t, dir, 1, 0o600)
		own := filepath.Join(dir, "own.sock")
		_, log := startActivated(t, dir, "1", files, "--socket", own)
		awaitServing(t, own)
		if s := log.String(); !strings.Contains(s, "LISTEN_PID=1") || !strings.Contains(s, "[WARN]") {
			t.Errorf("the log does not warn of sockets passed to pid 1:\n%s", s)
		}
	})
	t.Run("open to every user", func(t *testing.T) {
		t.Parallel()
		dir := privateDir(t)
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		files, paths := activatedSockets(t, dir, 1, 0o666)
		cmd, log := startActivated(t, dir, "", files, "--socket", filepath.Join(dir, "unused.sock"))
		awaitServing(t, paths[0])
		if s := log.String(); !strings.Contains(s, "SocketMode=0600") || !strings.Contains(s, "[WARN]") {
			t.Errorf("the log does not warn of a socket every user may connect to:\n%s", s)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if _, err := os.Lstat(paths[0]); err != nil {
			t.Errorf("serve removed the socket unit's socket: %v", err)
		}
	})
}
