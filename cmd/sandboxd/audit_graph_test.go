package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/audit"
)

// A trace names the state of each step: a closed capability (a handle its
// holder let go of, kept in the graph by what derives from it) reaches
// nothing itself, and a reader of the trace must be able to tell.
func TestTraceStepSaysClosedAndRevoked(t *testing.T) {
	step := audit.Step{Cap: "c1", Holder: "g-1", Edge: "delegate", Kind: "dir", Name: "docs", Rights: "file_open"}
	for _, tc := range []struct {
		closed, revoked bool
		want, not       string
	}{
		{false, false, "", " closed"},
		{true, false, " closed", " REVOKED"},
		{false, true, " REVOKED", " closed"},
		{true, true, " REVOKED closed", ""},
	} {
		s := step
		s.Closed, s.Revoked = tc.closed, tc.revoked
		got := stepText(s)
		if !strings.HasSuffix(got, tc.want) || (tc.not != "" && strings.Contains(got, tc.not)) {
			t.Errorf("closed %v revoked %v: %q, want it to end with %q", tc.closed, tc.revoked, got, tc.want)
		}
	}
}

// What-if prints holders and ids from the log it is given, which another
// may have written: their control characters are escaped, as who-can's
// and trace's are.
func TestWhatIfPrintsTheLogsTextEscaped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(audit.Record{Type: audit.TypeGrant, Cap: &audit.CapRecord{ID: "c1", Kind: "dir", Holder: "g-\x1b[2J", Base: "fd_read", Edge: "grant"}}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	r := sandboxd(t, "", "audit", "what-if", "--log", path, "--revoke", "c1")
	if r.code != 0 || strings.Contains(r.stdout, "\x1b") || !strings.Contains(r.stdout, `g-\x1b[2J`) {
		t.Fatalf("what-if: code %d, stdout %q, stderr %q; want the holder escaped", r.code, r.stdout, r.stderr)
	}
}

// Who made a grant is on its line wherever the CLI prints it: `audit
// log`, `audit trace` and the graph's text; a record that names nobody
// (a derived copy, or a log written before grants named their user)
// prints no "by".
func TestAuditLinesNameWhoMadeTheGrant(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root := uint32(0)
	for _, c := range []*audit.CapRecord{
		{ID: "c1", Kind: "dir", Name: "data", Holder: "g-1", Base: "fd_read", Edge: "grant", Origin: "dir:/srv/data=data", By: "root", ByUID: &root, Resource: "dir /srv/data"},
		{ID: "c2", Kind: "dir", Name: "data", Holder: "g-2", Base: "fd_read", Parent: "c1", Edge: "delegate", Resource: "dir /srv/data"},
		{ID: "c3", Kind: "dir", Name: "old", Holder: "g-1", Base: "fd_read", Edge: "grant", Origin: "dir:/srv/old=old", Resource: "dir /srv/old"},
	} {
		if _, err := l.Append(audit.Record{Type: audit.TypeGrant, Cap: c}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	const by = " by root (uid 0)"
	for _, q := range []struct {
		args []string
		want map[string]bool // a line holding the key: whether it says by
	}{
		{[]string{"audit", "log"}, map[string]bool{" c1 dir": true, " c2 dir": false, " c3 dir": false}},
		{[]string{"audit", "trace", "c2"}, map[string]bool{"1. c1 ": true, "2. c2 ": false}},
		{[]string{"audit", "graph"}, map[string]bool{"c1 grant": true, "c2 delegate": false, "c3 grant": false}},
	} {
		r := sandboxd(t, "", append(q.args, "--log", path)...)
		if r.code != 0 {
			t.Fatalf("%v: code %d, stderr %q", q.args, r.code, r.stderr)
		}
		for key, says := range q.want {
			line := ""
			for _, l := range strings.Split(r.stdout, "\n") {
				if strings.Contains(l, key) {
					line = l
				}
			}
			if line == "" || strings.Contains(line, by) != says || (!says && strings.Contains(line, "(uid ")) {
				t.Errorf("%v: the line of %q is %q; want it to say %q: %v\n%s", q.args, key, line, by, says, r.stdout)
			}
		}
	}
}

// audit log --guest keeps the guest-spawn record of each child the guest
// spawned, and prints it naming the child's module and its parent.
func TestAuditLogShowsTheChildrenAGuestSpawned(t *testing.T) {
	r := audit.Record{Seq: 9, Type: audit.TypeGuestSpawn, Guest: &audit.GuestRecord{ID: "g-1.1", Module: "child.wasm", SHA256: strings.Repeat("ab", 32), Parent: "g-1"}}
	if !about(r, "g-1", "") || !about(r, "g-1.1", "") || about(r, "g-2", "") {
		t.Errorf("--guest: the guest-spawn record of g-1.1 should be about g-1 and g-1.1 only")
	}
	if s := summary(r); !strings.Contains(s, "g-1.1 child.wasm sha256 abababababab spawned by g-1") {
		t.Errorf("summary: %q", s)
	}
}
