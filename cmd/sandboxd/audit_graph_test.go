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
