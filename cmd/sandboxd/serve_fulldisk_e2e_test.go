package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// serve whose audit log cannot take its first record (a full disk: here
// a file size limit of 0, which fails every write as ENOSPC would) exits
// 1. It used to tell the operator to check the log with audit verify,
// which finds nothing wrong with it; it says that the log cannot be
// written, and what to do.
func TestServeWhoseAuditLogCannotBeWrittenSaysWhatToDo(t *testing.T) {
	t.Parallel()
	dir := privateDir(t)
	state := filepath.Join(dir, "state")
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", `ulimit -f 0 && exec "$0" serve --state "$1" --socket "$2"`, bin, state, filepath.Join(dir, "s.sock"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	_ = cmd.Run()
	out := stderr.String()
	if code := cmd.ProcessState.ExitCode(); code != exitFailure || !strings.Contains(out, "cannot be written") || !strings.Contains(out, "free space") || strings.Contains(out, "audit verify") {
		t.Fatalf("serve with its audit log unwritable: exit %d, stderr %q; want 1, saying the log cannot be written and to free space, not to verify it", code, out)
	}
}

// run whose --audit log cannot take its first record says so and what to
// do, as serve does; it added "give --audit a file this user may write",
// which the user may already do.
func TestRunWhoseAuditLogCannotBeWrittenSaysWhatToDo(t *testing.T) {
	t.Parallel()
	dir := privateDir(t)
	hello := guest(t, guests+"exit300.wat")
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", `ulimit -f 0 && exec "$0" run --cache-dir "" --audit "$1" "$2"`, bin, filepath.Join(dir, "audit.jsonl"), hello)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	_ = cmd.Run()
	out := stderr.String()
	if code := cmd.ProcessState.ExitCode(); code != exitFailure || !strings.Contains(out, "cannot be written") || !strings.Contains(out, "free space") || !strings.Contains(out, "--audit") || strings.Contains(out, "this user may write") {
		t.Fatalf("run with its audit log unwritable: exit %d, stderr %q; want 1, saying the log cannot be written, to free space or give --audit another file, not that the user may not write it", code, out)
	}
}
