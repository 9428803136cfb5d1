package main

import (
	"bytes"
	"os/exec"
	"testing"
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
