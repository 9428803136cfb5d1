package main

import (
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
