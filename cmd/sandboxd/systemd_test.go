package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
