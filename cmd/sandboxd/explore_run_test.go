package main

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sandboxd/sandboxd/audit"
)

// lastRecord returns the last record of the audit log at path.
func lastRecord(t *testing.T, path string) audit.Record {
	t.Helper()
	var last audit.Record
	if err := audit.Scan(path, func(r audit.Record, _ audit.Pos) error {
		last = r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return last
}

// run exits without waiting for a guest that spins in a loop (compiled
// without loop checks, it never stops on its own): one killed by
// --timeout, or the children of one that has exited. Its exit ends them,
// as serve's exit ends its guests, so the log must say so with a shutdown
// record, as serve's does: it used to end at the guest's start (or its
// children's handles), and the graph rebuilt from it showed the guests
// still holding everything they were given.
func TestRunAuditRecordsTheShutdownOfGuestsItsExitEnds(t *testing.T) {
	t.Parallel()
	spin := guest(t, guests+"spin.wat")
	spawner := guest(t, guests+"spawn_spin_exit.wat")
	for _, c := range []struct {
		name string
		args []string
		code int
	}{
		{"timeout", []string{"--timeout", "300ms", spin}, exitTimeout},
		{"spinning children", []string{"--grant", "file:" + spawner, spawner}, 7},
	} {
		log := filepath.Join(t.TempDir(), "run.jsonl")
		r := sandboxd(t, "", append([]string{"run", "--audit", log}, c.args...)...)
		if r.code != c.code {
			t.Fatalf("%s: exit %d, want %d (stderr %q)", c.name, r.code, c.code, r.stderr)
		}
		checkShutDown(t, c.name, log)
	}
	log := filepath.Join(t.TempDir(), "run.jsonl")
	cmd, wait := startGuest(t, "--audit", log, spin)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := wait(); code != exitInterrupt {
		t.Fatalf("SIGINT: exit %d, want %d", code, exitInterrupt)
	}
	checkShutDown(t, "SIGINT", log)
}

// checkShutDown checks that the log of a run whose exit ended its guest
// ends with the shutdown of one guest, verifies, and leaves nothing held.
func checkShutDown(t *testing.T, name, log string) {
	t.Helper()
	if last := lastRecord(t, log); last.Type != audit.TypeShutdown || last.Running != 1 {
		t.Errorf("%s: the log ends with a %s record (running %d), want shutdown with 1 guest running", name, last.Type, last.Running)
	}
	if r := sandboxd(t, "", "audit", "verify", "--log", log); r.code != 0 {
		t.Errorf("%s: verify: code %d stderr %q", name, r.code, r.stderr)
	}
	if r := sandboxd(t, "", "audit", "graph", "--log", log); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("%s: the graph after the run: code %d stdout %q, want nothing held", name, r.code, r.stdout)
	}
}
