package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
)

// A guest's standard stream is a terminal, to isatty (and to Go's
// os.ModeCharDevice), only where run's own is one; a pipe or a file is a
// stream of unknown type, as wasmtime shows it. Every stream was a
// character device, so that a C guest's output to a file or a pipe was
// line-buffered, and a Go guest that reads piped input only when stdin
// is not a terminal never read it.
func TestAGuestsStdioIsATerminalOnlyWhereRunsIs(t *testing.T) {
	t.Parallel()
	wasm := wasiGuest(t, "cmd/sandboxd/testdata/isatty.c")
	if r := sandboxd(t, "", "run", wasm); r.code != 0 || r.stdout != "0 0 0\n" {
		t.Fatalf("run with pipes and files: code %d, stdout %q (isatty of stdin, stdout, stderr), stderr %q, want 0 0 0", r.code, r.stdout, r.stderr)
	}
	_, tty := openPTY(t)
	cmd := exec.Command(bin, "run", wasm)
	cmd.Env = append(cmd.Environ(), "XDG_CACHE_HOME="+cacheHome)
	var stdout bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, &stdout, tty
	if err := cmd.Run(); err != nil || stdout.String() != "1 0 1\n" {
		t.Fatalf("run with stdin and stderr a terminal: %v, stdout %q, want 1 0 1", err, stdout.String())
	}
	d := serveDaemon(t, bin, "")
	if r := d.cli(t, "launch", wasm); r.code != 0 || r.stdout != "0 0 0\n" {
		t.Fatalf("launch: code %d, stdout %q, stderr %q, want 0 0 0: a guest of the daemon writes to the daemon", r.code, r.stdout, r.stderr)
	}
}

// A Go guest (GOOS=wasip1) that reads its standard input only when it is
// not a terminal reads what is piped or redirected to `sandboxd run`, and
// sees a terminal as one.
func TestAGoGuestReadsPipedStdinThroughRun(t *testing.T) {
	t.Parallel()
	wasm := writeGuest(t, "cmd/sandboxd/testdata/gostdin/gostdin.go", abitest.Go(t, "cmd/sandboxd/testdata/gostdin"))
	in := "line one\nline two\n"
	if r := sandboxd(t, in, "run", wasm); r.code != 0 || r.stdout != fmt.Sprintf("%d %q\n", len(in), in) {
		t.Fatalf("run with a pipe on stdin: code %d, stdout %q, stderr %q, want what was piped", r.code, r.stdout, r.stderr)
	}
	file := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(file, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "run", wasm)
	cmd.Env = append(cmd.Environ(), "XDG_CACHE_HOME="+cacheHome)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = f, &stdout, &stderr
	if err := cmd.Run(); err != nil || stdout.String() != fmt.Sprintf("%d %q\n", len(in), in) {
		t.Fatalf("run with a file on stdin: %v, stdout %q, stderr %q, want the file", err, stdout.String(), stderr.String())
	}
	_, tty := openPTY(t)
	stdout.Reset()
	stderr.Reset()
	cmd = exec.Command(bin, "run", wasm)
	cmd.Env = append(cmd.Environ(), "XDG_CACHE_HOME="+cacheHome)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, &stdout, &stderr
	if err := cmd.Run(); err != nil || stdout.String() != "terminal\n" {
		t.Fatalf("run with a terminal on stdin: %v, stdout %q, stderr %q, want terminal", err, stdout.String(), stderr.String())
	}
}
