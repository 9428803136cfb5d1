package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/audit"
)

// A guest making records in a loop cannot grow the log past
// --audit-max-size, and what was removed is still accounted for: verify
// passes, saying what its checkpoint stands for, and the graph as of a
// time after it still holds the grant made before it.
func TestAGuestMakingRecordsInALoopKeepsTheLogWithinItsBound(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "run.jsonl")
	r := sandboxd(t, "", "run", "--audit", log, "--audit-file-size", "16KiB", "--audit-max-size", "64KiB",
		"--grant", "dir:"+dir+"=data", guest(t, "cmd/sandboxd/testdata/dup_loop.wat"))
	if r.code != 0 {
		t.Fatalf("run: code %d stderr %q", r.code, r.stderr)
	}
	var total int64
	for _, f := range audit.Files(log) {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
	}
	if total > 64<<10 {
		t.Errorf("the log's files hold %d bytes together, past --audit-max-size 64KiB: %v", total, audit.Files(log))
	}
	v := sandboxd(t, "", "audit", "verify", "--log", log)
	if v.code != 0 || !strings.Contains(v.stdout, "were removed to keep the log within --audit-max-size; "+log+".checkpoint stands for them") {
		t.Fatalf("verify: code %d stdout %q stderr %q", v.code, v.stdout, v.stderr)
	}
	cp, _, err := audit.ReadCheckpoint(log)
	if err != nil || cp == nil {
		t.Fatalf("checkpoint: %v %v", cp, err)
	}
	var start audit.Record
	var lastDerive time.Time
	_ = audit.Scan(log, func(rec audit.Record, _ audit.Pos) error {
		switch rec.Type {
		case audit.TypeGuestStart:
			start = rec
		case audit.TypeDerive:
			lastDerive = rec.Time
		}
		return nil
	})
	if start.Guest == nil || !lastDerive.After(cp.Time) {
		t.Fatalf("guest-start %+v, last derive %v, checkpoint at %v", start.Guest, lastDerive, cp.Time)
	}
	w := sandboxd(t, "", "audit", "who-can", "--log", log, "--at", lastDerive.Format(time.RFC3339Nano), "--json", "dir:"+dir)
	var reach []audit.Reach
	if err := json.Unmarshal([]byte(w.stdout), &reach); err != nil || len(reach) == 0 || reach[0].Holder != start.Guest.ID {
		t.Fatalf("who-can after the checkpoint: %+v %v (stdout %q, stderr %q)", reach, err, w.stdout, w.stderr)
	}
	among := cp.FromTime.Add(cp.Time.Sub(cp.FromTime) / 2).Format(time.RFC3339Nano)
	w = sandboxd(t, "", "audit", "who-can", "--log", log, "--at", among, "dir:"+dir)
	if w.code != exitFailure || !strings.Contains(w.stderr, "were removed to keep it within --audit-max-size") {
		t.Fatalf("who-can as of a time whose records were removed: code %d stdout %q stderr %q", w.code, w.stdout, w.stderr)
	}
}

func TestAuditMaxSizeBelowTwoFilesIsRefused(t *testing.T) {
	t.Parallel()
	r := sandboxd(t, "", "run", "--audit", filepath.Join(t.TempDir(), "a.jsonl"), "--audit-file-size", "1MiB", "--audit-max-size", "1MiB", "x.wasm")
	if r.code != exitUsage {
		t.Fatalf("code %d stderr %q", r.code, r.stderr)
	}
	oneLine(t, r.stderr, "--audit-max-size \"1MiB\": the first file and the current one are always kept")
}

func TestAuditSizesWithoutAnAuditLogAreRefused(t *testing.T) {
	t.Parallel()
	r := sandboxd(t, "", "run", "--audit-max-size", "1GiB", "x.wasm")
	if r.code != exitUsage {
		t.Fatalf("code %d stderr %q", r.code, r.stderr)
	}
	oneLine(t, r.stderr, "--audit-max-size sizes the --audit log, and there is none: give --audit FILE")
}
