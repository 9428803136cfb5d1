package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// bin is the sandboxd binary built once for every test in this package:
// the tests run it as a user would. It is built without the race detector
// even when these tests run under it: the code it runs concurrently (the
// daemon, the kernel, the ABI, the server, and serve's shutdown as
// daemon's TestAbandonRecordsTheShutdownOfTheGuestsLeftRunning does it)
// is race-checked in process by those packages' own tests; what is left
// here is this package's own sequencing of those calls. A race-built
// binary made this package's run six times as long (230 s against 37 s on
// two cores), most of it wazero compiling guests under the detector's
// instrumentation.
var bin string

// cacheHome keeps the binary's compilation cache out of the user's home.
var cacheHome string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sandboxd-cli-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "sandboxd")
	cacheHome = filepath.Join(dir, "cache")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building sandboxd: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

type result struct {
	stdout, stderr string
	code           int
}

// hangGuard bounds the waits in these tests that only a hang could reach:
// each waits for an event (the binary exiting, a daemon answering, a
// guest's output). The bound is far beyond what any load makes of a run
// here, and only turns a hung test into a failure that names it, before
// the suite's timeout.
const hangGuard = 3 * time.Minute

// sandboxd runs the binary with args and stdin, and fails the test if it
// does not finish within hangGuard.
func sandboxd(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runBinary(t, bin, stdin, args...)
}

// runBinary is sandboxd with another program in bin's place (a wrapper
// that runs bin).
func runBinary(t *testing.T, binary, stdin string, args ...string) result {
	t.Helper()
	return runBinaryIn(t, "", binary, stdin, args...)
}

// runBinaryIn is runBinary in directory dir ("": this process's).
func runBinaryIn(t *testing.T, dir, binary, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cacheHome)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("sandboxd %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("sandboxd %v did not finish within %v; stderr: %s", args, hangGuard, stderr.String())
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// guest builds a test guest from source and returns the path of its .wasm.
func guest(t *testing.T, rel string) string {
	t.Helper()
	var wasm []byte
	switch filepath.Ext(rel) {
	case ".wat":
		wasm = abitest.WAT(t, rel)
	case ".c":
		wasm = abitest.C(t, rel)
	default:
		t.Fatalf("no builder for %s", rel)
	}
	return writeGuest(t, rel, wasm)
}

// wasiGuest builds a C test guest against wasi-libc and returns the path
// of its .wasm.
func wasiGuest(t *testing.T, rel string) string {
	t.Helper()
	return writeGuest(t, rel, abitest.WASIC(t, rel))
}

// withFDLimit returns a program that runs bin with RLIMIT_NOFILE (soft and
// hard) lowered to n, so that the process runs out of descriptors at n.
func withFDLimit(t *testing.T, n int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sandboxd-limited")
	script := fmt.Sprintf("#!/bin/sh\nulimit -n %d || exit 99\nexec '%s' \"$@\"\n", n, bin)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeGuest(t *testing.T, rel string, wasm []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(rel), filepath.Ext(rel))+".wasm")
	if err := os.WriteFile(p, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// oneLine fails the test unless s is exactly one line that contains want.
func oneLine(t *testing.T, s, want string) {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Errorf("stderr is not one line: %q", s)
	}
	if !strings.HasPrefix(s, "sandboxd: ") || !strings.Contains(s, want) {
		t.Errorf("stderr = %q, want a sandboxd: line containing %q", s, want)
	}
}

func TestHelpListsCommandsAndExitsZero(t *testing.T) {
	r := sandboxd(t, "", "help")
	if r.code != 0 || !strings.Contains(r.stdout, "  run ") || !strings.Contains(r.stdout, "  abi ") {
		t.Errorf("help: code %d, stdout %q", r.code, r.stdout)
	}
	// help is in the list, so help of it is no unknown command.
	if r := sandboxd(t, "", "help", "help"); r.code != 0 || !strings.Contains(r.stdout, "  help ") || r.stderr != "" {
		t.Errorf("help help: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// help's own -h is the list too, as every other verb's -h is its usage.
	for _, args := range [][]string{{"help", "-h"}, {"help", "--help"}, {"-h", "--help"}} {
		if r := sandboxd(t, "", args...); r.code != 0 || !strings.Contains(r.stdout, "  help ") || r.stderr != "" {
			t.Errorf("%v: code %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	for _, args := range [][]string{{"run", "-h"}, {"run", "--help"}, {"help", "run"}} {
		r := sandboxd(t, "", args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: sandboxd run [flags] prog.wasm") || !strings.Contains(r.stdout, "--grant KIND:SOURCE[=GUEST][:ro]") {
			t.Errorf("%v: code %d, stdout %q", args, r.code, r.stdout)
		}
		if r.stderr != "" {
			t.Errorf("%v: stderr %q", args, r.stderr)
		}
	}
}

func TestNoCommandOrUnknownCommandIsUsageError(t *testing.T) {
	if r := sandboxd(t, ""); r.code != exitUsage || !strings.Contains(r.stderr, "Usage: sandboxd COMMAND") {
		t.Errorf("no command: code %d, stderr %q", r.code, r.stderr)
	}
	r := sandboxd(t, "", "frobnicate")
	if r.code != exitUsage {
		t.Errorf("unknown command: code %d", r.code)
	}
	oneLine(t, r.stderr, `unknown command "frobnicate"`)
}
