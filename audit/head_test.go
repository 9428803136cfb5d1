package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// A head kept from an earlier verify (its seq and hash) is checked
// against the log: the log still extends it when that record is there
// with that hash. A chain alone shows neither records cut off its end nor
// a log rewritten whole with every hash recomputed; a kept head shows
// both.
func TestVerifyChecksAKeptHead(t *testing.T) {
	path := writeLog(t, 9, Options{})
	rep := mustVerify(t, path)
	kept := Head{Seq: rep.HeadSeq, SHA256: rep.Head}
	mid := headAt(t, path, 5)

	// The log as it was, and after more records: both extend it.
	if rep := mustVerify(t, path, kept, mid); rep.Bad != nil || len(rep.Kept) != 2 {
		t.Fatalf("the log that wrote the head: bad %v, kept %v", rep.Bad, rep.Kept)
	}
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep := mustVerify(t, path, kept); rep.Bad != nil {
		t.Fatalf("after another record: %v", rep.Bad)
	}

	// Cut off its last three records: the chain is intact.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	cut := bytes.Join(lines[:len(lines)-1-3], nil)
	if err := os.WriteFile(path, cut, 0o600); err != nil {
		t.Fatal(err)
	}
	rep = mustVerify(t, path)
	if rep.Bad != nil {
		t.Fatalf("the chain of a log cut short: %v", rep.Bad)
	}
	rep = mustVerify(t, path, kept)
	if rep.Bad == nil || !strings.Contains(rep.Bad.Reason, fmt.Sprintf("ends at seq %d", kept.Seq+1-3)) || !strings.Contains(rep.Bad.Reason, "cut off") {
		t.Fatalf("a log cut short before the kept head: bad %v, want it cut off", rep.Bad)
	}

	// Rewrite it whole from record 3 on, every hash recomputed: the
	// chain is intact again, and the kept head in the middle is not.
	rewritten := rewriteFrom(t, lines[:len(lines)-1], 3)
	if err := os.WriteFile(path, rewritten, 0o600); err != nil {
		t.Fatal(err)
	}
	if rep := mustVerify(t, path); rep.Bad != nil {
		t.Fatalf("the chain of a rewritten log: %v", rep.Bad)
	}
	rep = mustVerify(t, path, mid)
	if rep.Bad == nil || rep.Bad.Seq != 5 || !strings.Contains(rep.Bad.Reason, mid.SHA256) || !strings.Contains(rep.Bad.Reason, "rewritten") {
		t.Fatalf("a rewritten log: bad %v, want record 5 named rewritten", rep.Bad)
	}
}

// A kept head among the records a prune removed can be checked only
// against the checkpoint's last record; any other is said to be past
// checking, never taken as extended.
func TestVerifyOfAKeptHeadAPruneRemoved(t *testing.T) {
	path := prunedLog(t)
	rep := mustVerify(t, path)
	if rep.Pruned == nil {
		t.Fatal("the log was not pruned")
	}
	cp, _, err := ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if rep := mustVerify(t, path, Head{Seq: cp.Seq, SHA256: cp.Hash}); rep.Bad != nil {
		t.Fatalf("the checkpoint's own record: %v", rep.Bad)
	}
	rep = mustVerify(t, path, Head{Seq: cp.Seq, SHA256: strings.Repeat("0", 64)})
	if rep.Bad == nil || !strings.Contains(rep.Bad.Reason, "rewritten") {
		t.Fatalf("another hash of the checkpoint's record: bad %v", rep.Bad)
	}
	rep = mustVerify(t, path, Head{Seq: cp.FromSeq, SHA256: strings.Repeat("0", 64)})
	if rep.Bad == nil || !strings.Contains(rep.Bad.Reason, "removed") || !strings.Contains(rep.Bad.Reason, "keep a newer head") {
		t.Fatalf("a head the prune removed: bad %v, want it past checking", rep.Bad)
	}
}

func TestParseHead(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	if h, err := ParseHead("1843:" + sum); err != nil || h != (Head{Seq: 1843, SHA256: sum}) {
		t.Fatalf("ParseHead: %+v, %v", h, err)
	}
	for _, bad := range []string{"", "1843", ":" + sum, "0:" + sum, "x:" + sum, "12:abc", "12:" + strings.Repeat("AB", 32), "12:" + sum + "00"} {
		if _, err := ParseHead(bad); err == nil || !strings.Contains(err.Error(), "SEQ:SHA256") {
			t.Errorf("ParseHead(%q): %v, want an error showing SEQ:SHA256", bad, err)
		}
	}
}

// headAt is the head of the log at path as of record seq.
func headAt(t *testing.T, path string, seq uint64) Head {
	t.Helper()
	var h Head
	err := scanFiles(path, Files(path), func(l Line) error {
		r, err := ParseRecord(l.Data)
		if err == nil && r.Seq == seq {
			h = Head{Seq: seq, SHA256: hashHex(l.Data)}
		}
		return err
	})
	if err != nil || h.Seq == 0 {
		t.Fatalf("no record %d: %v", seq, err)
	}
	return h
}

// rewriteFrom changes the records from seq on (each one's cap id) and
// recomputes every prev after them: a chain as intact as the original.
func rewriteFrom(t *testing.T, lines [][]byte, seq uint64) []byte {
	t.Helper()
	var out []byte
	prev := ""
	for _, l := range lines {
		r, err := ParseRecord(bytes.TrimSuffix(l, []byte("\n")))
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq >= seq {
			if r.Cap != nil {
				r.Cap.ID += "x"
			}
			r.Prev = prev
		}
		line := bytes.TrimSuffix(l, []byte("\n"))
		if r.Seq >= seq {
			if line, err = json.Marshal(r); err != nil {
				t.Fatal(err)
			}
		}
		prev = hashHex(line)
		out = append(append(out, line...), '\n')
	}
	return out
}

// A log whose later files were removed, its first file and its
// checkpoint left, ends before the records the checkpoint says a prune
// removed, and the prune record that declares it: its end was cut off,
// which verify says, and a head kept at the checkpoint's last record is
// not extended. It said the chain was intact, and passed that head, as
// the checkpoint held its hash.
func TestALogCutOffBeforeItsCheckpointIsBad(t *testing.T) {
	path := prunedLog(t)
	cp, _, err := ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	head := Head{Seq: cp.Seq, SHA256: cp.Hash}
	if rep := mustVerify(t, path, head); rep.Bad != nil || len(rep.Kept) != 1 {
		t.Fatalf("the pruned log: bad %v, kept %v", rep.Bad, rep.Kept)
	}
	for _, f := range Files(path)[1:] {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	for _, kept := range [][]Head{nil, {head}} {
		rep := mustVerify(t, path, kept...)
		if rep.Bad == nil || len(rep.Kept) != 0 || !strings.Contains(rep.Bad.Reason, "cut off") {
			t.Errorf("the first file and the checkpoint, heads %v: bad %v, kept %v, records %d: want the end named cut off", kept, rep.Bad, rep.Kept, rep.Records)
		}
	}
}

// A log whose every record was removed, its checkpoint left, is cut off
// as well.
func TestALogEmptiedButItsCheckpointIsBad(t *testing.T) {
	path := prunedLog(t)
	cp, _, err := ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range Files(path) {
		if i == 0 {
			err = os.Truncate(f, 0)
		} else {
			err = os.Remove(f)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	rep := mustVerify(t, path, Head{Seq: cp.Seq, SHA256: cp.Hash})
	if rep.Bad == nil || len(rep.Kept) != 0 || !strings.Contains(rep.Bad.Reason, "cut off") || rep.Bad.Pos.File != path {
		t.Fatalf("the checkpoint alone: bad %+v, kept %v: want the end named cut off, in %s", rep.Bad, rep.Kept, path)
	}
}
