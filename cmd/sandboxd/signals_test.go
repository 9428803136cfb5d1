package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"golang.org/x/sys/unix"
)

// openPTY returns the two ends of a new pseudo-terminal: what a program
// writes to the terminal end (tty) is read from the other (ptm).
func openPTY(t *testing.T) (ptm, tty *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ptm, tty
}

// On a terminal, run says what it waits for while a large module
// compiles ("sandboxd: compiling big.wasm (…)…", the line ended once the
// compile is done). A signal then ends run at once, and its line starts a
// line of its own rather than continuing that one.
func TestASignalWhileCompilingOnATerminalEndsTheProgressLine(t *testing.T) {
	t.Parallel()
	// 999,999 empty functions: seconds to compile (docs/BENCHMARKS.md),
	// far past the 0.7 s after which progress speaks.
	p := filepath.Join(t.TempDir(), "big.wasm")
	wasm := abitest.Functions(999999, "\x00\x0b")
	if err := os.WriteFile(p, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	ptm, tty := openPTY(t)
	cmd := exec.Command(bin, "run", "--cache-dir", "", p)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cacheHome)
	cmd.Stderr = tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	// Reads what run writes to the terminal until it has exited (the
	// read then fails, EIO, as no process holds the terminal).
	out := make(chan []byte, 1)
	said := make(chan struct{})
	go func() {
		var b []byte
		buf := make([]byte, 4096)
		toSay := said
		for {
			n, err := ptm.Read(buf)
			b = append(b, buf[:n]...)
			if toSay != nil && bytes.Contains(b, []byte("…")) {
				close(toSay)
				toSay = nil
			}
			if err != nil {
				out <- b
				return
			}
		}
	}()
	select {
	case <-said:
	case b := <-out:
		t.Fatalf("run ended without saying it was compiling: %q", b)
	case <-time.After(hangGuard):
		t.Fatalf("run did not say it was compiling within %v", hangGuard)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	var b []byte
	select {
	case b = <-out:
	case <-time.After(hangGuard):
		t.Fatalf("the terminal was not closed %v after run exited", hangGuard)
	}
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupt {
		t.Errorf("exit %d (%v), want %d", code, cmd.ProcessState, exitInterrupt)
	}
	want := "sandboxd: compiling big.wasm (" + sizeText(len(wasm)) + ")…\r\nsandboxd: interrupted before the guest started: nothing ran\r\n"
	if string(b) != want {
		t.Errorf("the terminal shows %q, want %q", b, want)
	}
}
