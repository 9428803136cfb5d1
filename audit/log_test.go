package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/caps"
)

// writeLog appends n grant records to a new log in a temporary directory
// and closes it. It returns the log's path.
func writeLog(t testing.TB, n int, opts Options) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := l.Append(Record{Type: TypeGrant, Cap: &CapRecord{ID: fmt.Sprintf("c%d", i), Kind: "dir", Base: "fd_read", Edge: "grant"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustVerify(t testing.TB, path string, kept ...Head) Report {
	t.Helper()
	rep, err := Verify(path, kept...)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestAppendChainsRecordsAndVerifies(t *testing.T) {
	path := writeLog(t, 5, Options{})
	rep := mustVerify(t, path)
	if rep.Bad != nil || rep.Torn != nil || rep.Records != 6 || rep.HeadSeq != 6 {
		t.Fatalf("report %+v, want 6 good records (open + 5)", rep)
	}
	var types []string
	err := Scan(path, func(r Record, p Pos) error {
		types = append(types, r.Type)
		if r.V != Version || r.Seq != uint64(p.Line) {
			t.Errorf("%s: record %+v: want version %d and seq = line", p, r, Version)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(types, ",") != "open,grant,grant,grant,grant,grant" {
		t.Fatalf("types %v", types)
	}
}

func TestReopenContinuesTheChain(t *testing.T) {
	path := writeLog(t, 3, Options{})
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.Append(Record{Type: TypeClose, Cap: &CapRecord{ID: "c0"}})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if r.Seq != 6 { // open, 3 grants, open, close
		t.Fatalf("seq after reopening %d, want 6", r.Seq)
	}
	if rep := mustVerify(t, path); rep.Bad != nil || rep.Records != 6 {
		t.Fatalf("report %+v", rep)
	}
}

func TestSecondWriterIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "in use by another writer") {
		t.Fatalf("second Open: %v, want in use", err)
	}
}

func TestRotationKeepsTheChainAcrossFiles(t *testing.T) {
	path := writeLog(t, 50, Options{MaxFileBytes: 1024})
	files := Files(path)
	if len(files) < 3 {
		t.Fatalf("files %v: want rotation at 1KiB", files)
	}
	rep := mustVerify(t, path)
	if rep.Bad != nil || rep.Records != 51 {
		t.Fatalf("report %+v", rep)
	}
	// Reopening appends to the last file and keeps the chain.
	l, err := Open(path, Options{MaxFileBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep := mustVerify(t, path); rep.Bad != nil || rep.Records != 52 {
		t.Fatalf("after reopening: %+v", rep)
	}
	// Removing the first file cuts the chain's beginning.
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	if rep := mustVerify(t, path); rep.Bad == nil || rep.Bad.Pos != (Pos{File: files[1], Line: 1}) || !strings.Contains(rep.Bad.Reason, "its beginning") {
		t.Fatalf("verify of a log without its first file: bad %v, want its beginning removed at %s:1", rep.Bad, files[1])
	}
}

func TestRemovedMiddleFileIsNamed(t *testing.T) {
	path := writeLog(t, 50, Options{MaxFileBytes: 1024})
	files := Files(path)
	// Rename the last file into the place of the second: the chain jumps.
	last := files[len(files)-1]
	if err := os.Rename(last, files[1]); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, path)
	if rep.Bad == nil || rep.Bad.Pos.File != files[1] || rep.Bad.Pos.Line != 1 || !strings.Contains(rep.Bad.Reason, "deleted") {
		t.Fatalf("report %+v, want a gap at %s:1", rep.Bad, files[1])
	}
}

func TestConcurrentAppendsShareFsyncs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 16, 50
	var wg sync.WaitGroup
	seqs := make(chan uint64, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r, err := l.Append(Record{Type: TypeClose, Cap: &CapRecord{ID: "x"}})
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- r.Seq
			}
		}()
	}
	wg.Wait()
	close(seqs)
	l.Close()
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d given twice", s)
		}
		seen[s] = true
	}
	if rep := mustVerify(t, path); rep.Bad != nil || rep.Records != workers*each+1 {
		t.Fatalf("report %+v", rep)
	}
}

func TestAppendAfterCloseFails(t *testing.T) {
	path := writeLog(t, 1, Options{})
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := l.Append(Record{Type: TypeClose}); err == nil {
		t.Fatal("append after close succeeded")
	}
}

// lines reads a log file's lines, each with its newline.
func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(data, []byte{'\n'})
}

func rewrite(t *testing.T, path string, ls [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(ls, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTamperingIsDetectedAtTheRecord(t *testing.T) {
	cases := []struct {
		name   string
		tamper func([][]byte) [][]byte
		line   int // the line Verify must name
		reason string
	}{
		{"edited", func(ls [][]byte) [][]byte {
			ls[3] = bytes.Replace(ls[3], []byte(`"c2"`), []byte(`"c9"`), 1)
			return ls
		}, 4, "changed after it was written"},
		{"deleted", func(ls [][]byte) [][]byte {
			return append(ls[:3:3], ls[4:]...)
		}, 4, "1 record(s) before this one were deleted"},
		{"reordered", func(ls [][]byte) [][]byte {
			ls[3], ls[4] = ls[4], ls[3]
			return ls
		}, 4, "deleted or moved"},
		{"truncated record", func(ls [][]byte) [][]byte {
			ls[3] = append(ls[3][:20:20], '\n')
			return ls
		}, 4, "not a JSON record"},
		{"first record removed", func(ls [][]byte) [][]byte {
			return ls[1:]
		}, 1, "starts at seq 2"},
		{"repeated", func(ls [][]byte) [][]byte {
			return append(ls[:4:4], ls[3:]...)
		}, 5, "reordered or repeated"},
		{"joined", func(ls [][]byte) [][]byte {
			ls[2] = ls[2][:len(ls[2])-1]
			return ls
		}, 3, "not a JSON record"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeLog(t, 6, Options{})
			rewrite(t, path, tc.tamper(lines(t, path)))
			rep := mustVerify(t, path)
			if rep.Bad == nil {
				t.Fatalf("tampering not detected: %+v", rep)
			}
			if rep.Bad.Pos.Line != tc.line || !strings.Contains(rep.Bad.Reason, tc.reason) {
				t.Fatalf("bad %v, want line %d with %q", rep.Bad, tc.line, tc.reason)
			}
		})
	}
}

func TestTornLastLineIsACrashNotTampering(t *testing.T) {
	path := writeLog(t, 4, Options{})
	ls := lines(t, path)
	n := len(ls) - 1 // SplitAfter leaves an empty last element
	ls[n-1] = ls[n-1][:len(ls[n-1])/2]
	rewrite(t, path, ls)
	rep := mustVerify(t, path)
	if rep.Bad != nil || rep.Torn == nil || rep.Torn.Line != n || rep.Records != n-1 {
		t.Fatalf("report %+v (torn %v), want torn line %d after %d good records", rep, rep.Torn, n, n-1)
	}
	// The next writer cuts the torn line off, says so, and the chain is
	// whole again.
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	rep = mustVerify(t, path)
	if rep.Bad != nil || rep.Torn != nil || rep.Records != n {
		t.Fatalf("after reopening: %+v", rep)
	}
	var open Record
	_ = Scan(path, func(r Record, _ Pos) error { open = r; return nil })
	if open.Type != TypeOpen || open.Discarded == 0 {
		t.Fatalf("last record %+v, want an open record with the discarded bytes", open)
	}
}

func TestTornLineInAnEarlierFileIsTampering(t *testing.T) {
	path := writeLog(t, 30, Options{MaxFileBytes: 1024})
	first := Files(path)[0]
	data, _ := os.ReadFile(first)
	if err := os.WriteFile(first, data[:len(data)-5], 0o600); err != nil {
		t.Fatal(err)
	}
	if rep := mustVerify(t, path); rep.Bad == nil || rep.Bad.Pos.File != first {
		t.Fatalf("report %+v, want a bad line in %s", rep, first)
	}
}

func TestEachLineIsWhatJSONMakesOfItsRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 12, 5, 8, 0, 0, 123456789, time.UTC)
	in := []Record{
		{Type: TypeGrant, Cap: &CapRecord{ID: "c1", Kind: "dir", Name: "data \"quoted\" <&>", Base: "fd_read", Edge: "grant", Created: created}},
		{Type: TypeRevoke, Cap: &CapRecord{ID: "c1", Kind: "dir", Edge: "grant"}, Receipt: &ReceiptRecord{Root: "c1", Revoked: []string{"c1", "c2"}, TookNS: 5}},
		{Type: TypeDecision, Decision: &DecisionRecord{Op: "grant", Rule: "a.hcl:3", Labels: map[string]string{"b": "2", "a": "1"}}},
		{Type: TypeGuestExit, Guest: &GuestRecord{ID: "g-1", Code: 137, Killed: "supervisor shutting down", DurationNS: 9}},
		{Type: "odd \"type\"\n"},
	}
	var out []Record
	for _, r := range in {
		r, err := l.Append(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := bytes.Split(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\n'})[1:] // after the open record
	if len(got) != len(out) {
		t.Fatalf("%d lines, want %d", len(got), len(out))
	}
	for i, r := range out {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[i], want) {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, got[i], want)
		}
	}
	mustVerify(t, path)
}

// Who made a grant is read from the text the daemon gives the kernel
// (ByText), and written with root's uid 0, which an omitted zero would
// lose; a record without it, as every log before it was recorded, reads
// and verifies as before.
func TestGrantRecordsNameWhoMadeThemAndOldOnesStillRead(t *testing.T) {
	for _, c := range []struct {
		text, by string
		uid      int64 // -1: none
	}{
		{ByText(0, "root"), "root", 0},
		{ByText(1000, "alice"), "alice", 1000},
		{ByText(4242, ""), "uid:4242", 4242},
		{"someone", "someone", -1},
		{"", "", -1},
	} {
		cr := FromInfo(caps.Info{ID: "c1", Edge: caps.EdgeGrant, By: c.text})
		if cr.By != c.by || (cr.ByUID == nil) != (c.uid < 0) || (cr.ByUID != nil && int64(*cr.ByUID) != c.uid) {
			t.Errorf("FromInfo of %q: by %q, uid %v; want %q, %d", c.text, cr.By, cr.ByUID, c.by, c.uid)
		}
	}
	root := FromInfo(caps.Info{ID: "c1", Edge: caps.EdgeGrant, By: ByText(0, "root")})
	line, err := json.Marshal(Record{V: Version, Seq: 1, Type: TypeGrant, Cap: &root})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(line, []byte(`"by":"root","by_uid":0`)) {
		t.Fatalf("record %s; want by root, by_uid 0", line)
	}
	old := `{"v":1,"seq":1,"time":"2026-12-04T18:34:42.319475Z","type":"grant","prev":"","cap":{"id":"c1","kind":"dir","base":"fd_read","inheriting":"none","edge":"grant","origin":"dir:/srv","created":"2026-12-04T18:34:42Z"}}`
	r, err := ParseRecord([]byte(old))
	if err != nil || r.Cap.By != "" || r.Cap.ByUID != nil {
		t.Fatalf("a record from before: %+v, %v; want it read, by nobody", r.Cap, err)
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, []byte(old+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rep := mustVerify(t, path); rep.Bad != nil || rep.Records != 1 {
		t.Fatalf("verify of a log from before: %+v", rep)
	}
}

// Records nobody waits for (a launch's handles) go to disk with the next
// record somebody waits for (its guest-start), in one batch and one
// fdatasync, in the order they were appended.
func TestRecordsNobodyWaitsForShareTheNextWaitersFsync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	holdUnwaited(t, l) // only the waiter writes them
	l.mu.Lock()
	before := l.batches
	l.mu.Unlock()
	for i := 0; i < 3; i++ {
		if _, err := l.Enqueue(Record{Type: TypeGrant, Cap: &CapRecord{ID: fmt.Sprintf("c%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := l.Append(Record{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g"}})
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	batches := l.batches - before
	l.mu.Unlock()
	if batches != 1 {
		t.Errorf("%d batches for three records and the one that waited for them, want 1", batches)
	}
	if rep := mustVerify(t, path); rep.Bad != nil || rep.Records != int(r.Seq) {
		t.Fatalf("report %+v, want %d good records", rep, r.Seq)
	}
}

// A record nobody waits for, and none after it, still reaches the disk
// (flushAfter after it was appended), and so does the next such record.
func TestARecordNobodyWaitsForIsWrittenAnyway(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 2; i++ {
		r, err := l.Enqueue(Record{Type: TypeClose, Cap: &CapRecord{ID: fmt.Sprintf("c%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		underLock(t, l, fmt.Sprintf("record %d on disk, nobody waiting for it", r.Seq), func() bool { return l.durable >= r.Seq })
	}
	if rep := mustVerify(t, path); rep.Bad != nil || rep.Records != 3 {
		t.Fatalf("report %+v, want the open record and two closes", rep)
	}
}

// Once a batch has failed, nothing more is written: the failed batch may
// be on disk in part, and a line after it would break the chain in its
// middle. Appends after it get the log's error, and lines already queued
// behind it (appended while it was being written) are dropped, not written
// at Close's drain.
func TestNothingIsWrittenAfterAFailedBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	holdUnwaited(t, l) // the queued line waits for Close
	l.mu.Lock()
	good := l.f
	l.f, err = os.OpenFile(path, os.O_RDONLY, 0) // every write fails
	l.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(Record{Type: TypeClose, Cap: &CapRecord{ID: "lost"}}); err == nil {
		t.Fatal("an append to a file that cannot be written succeeded")
	}
	l.mu.Lock()
	l.f.Close()
	l.f = good // writable again: only the log's own refusal keeps it unwritten
	failed := l.err
	l.err = nil
	l.mu.Unlock()
	// A line queued behind the failed batch: the failure is restored under
	// the same lock, as if the batch had failed while the line was queued.
	if _, err := l.Enqueue(Record{Type: TypeClose, Cap: &CapRecord{ID: "queued"}}); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.err = failed
	l.mu.Unlock()
	if _, err := l.Append(Record{Type: TypeClose, Cap: &CapRecord{ID: "after"}}); err == nil {
		t.Error("an append after a failed batch succeeded")
	}
	if err := l.Close(); err == nil {
		t.Error("Close of a failed log returned no error")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"lost", "queued", "after"} {
		if strings.Contains(string(b), `"`+id+`"`) {
			t.Errorf("%s written after the failed batch:\n%s", id, b)
		}
	}
}

// holdUnwaited has l keep the lines nobody waits for until somebody
// waits (or Close): it sets flushAfter to an hour, once no flush timer
// armed before (by Open's record) is still pending or running, so that
// none can write them early.
func holdUnwaited(t *testing.T, l *Log) {
	t.Helper()
	underLock(t, l, "no flush timer pending", func() bool {
		if l.flushSet {
			return false
		}
		l.flushAfter = time.Hour
		return true
	})
}

// underLock polls cond with l.mu held until it holds; hangGuard only
// stops a hang.
func underLock(t *testing.T, l *Log, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		l.mu.Lock()
		ok := cond()
		l.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not after %v: %s", hangGuard, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A file removed from the middle of the log, or its first file, is a gap
// in the chain that verify names, not the end of the log: the files after
// it are still read, and a writer that opens the log goes on in its last
// file rather than in the one before the gap.
func TestRemovedFileIsAGapNotTheEnd(t *testing.T) {
	path := writeLog(t, 50, Options{MaxFileBytes: 1024})
	files := Files(path)
	if len(files) < 4 {
		t.Fatalf("files %v: want rotation at 1KiB", files)
	}
	if err := os.Remove(files[1]); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, path)
	if rep.Bad == nil || rep.Bad.Pos.File != files[2] || rep.Bad.Pos.Line != 1 || !strings.Contains(rep.Bad.Reason, "deleted") {
		t.Fatalf("report %+v (bad %v), want a gap at %s:1", rep, rep.Bad, files[2])
	}
	l, err := Open(path, Options{MaxFileBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.Append(Record{Type: TypeClose, Cap: &CapRecord{ID: "c0"}})
	l.Close()
	if err != nil || r.Seq != 53 { // open, 50 grants, open, close
		t.Fatalf("append after reopening: seq %d, %v; want 53", r.Seq, err)
	}
	if _, err := os.Stat(files[1]); err == nil {
		t.Fatalf("the writer wrote %s again, before the files that follow it", files[1])
	}
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	rep = mustVerify(t, path)
	if rep.Bad == nil || rep.Bad.Pos.File != files[2] || !strings.Contains(rep.Bad.Reason, "its beginning") {
		t.Fatalf("without the first file: bad %v, want the log's beginning removed at %s:1", rep.Bad, files[2])
	}
}

// Open cuts off only an incomplete last line a writer could have left:
// a file that is not a log (a name given by mistake to run --audit) is
// refused as it is, not cut first, nor emptied and taken over.
func TestOpenLeavesAFileThatIsNotALogAsItWas(t *testing.T) {
	for _, text := range []string{"hello\nworld", "one line of notes", "{\"v\":1}\nnot a record"} {
		path := filepath.Join(t.TempDir(), "notes.txt")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Open(path, Options{})
		if err == nil {
			l.Close()
		}
		got, rerr := os.ReadFile(path)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err == nil || string(got) != text || !strings.Contains(err.Error(), "not an audit log") {
			t.Errorf("Open of a file holding %q: %v; it now holds %q", text, err, got)
		}
	}
	// A crash's torn first line is still cut: it is the start of a record.
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, []byte(`{"v":1,"seq":1,"ti`), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of a log whose only line is torn: %v", err)
	}
	l.Close()
	if rep := mustVerify(t, path); rep.Bad != nil || rep.Records != 1 {
		t.Fatalf("after cutting a torn first line: %+v", rep)
	}
}

// A log is a regular file. Open of a FIFO (or a device: /dev/zero would
// be read without end) is refused at once, not read until a writer comes.
func TestOpenRefusesAFileThatIsNotRegular(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		l, err := Open(path, Options{})
		if err == nil {
			l.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("Open of a FIFO: %v, want it refused as not a regular file", err)
		}
	case <-time.After(time.Minute): // only a hang reaches it
		t.Fatal("Open of a FIFO is still reading it")
	}
}

// Open reads the end of the log's last file, where its head is, not the
// whole file: a large one (here 48 MiB before its last record) costs it
// no more memory than a small one.
func TestOpenReadsOnlyTheEndOfTheLastFile(t *testing.T) {
	src := logOfOneClose(t)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	const big = 48 << 20
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(append([]byte("\n"), data...), big); err != nil { // sparse before it
		t.Fatal(err)
	}
	f.Close()
	least := ^uint64(0)
	for range 3 { // the least of three: another goroutine's allocations cannot fail it
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		l, err := Open(path, Options{})
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	if least > 4<<20 {
		t.Fatalf("Open of a log of %d MiB allocated %d MiB", big>>20, least>>20)
	}
}

// A crash right after a rotation leaves the last file empty: the head is
// the last line of the file before it.
func TestOpenAfterACrashAtRotationContinuesTheChain(t *testing.T) {
	path := writeLog(t, 50, Options{MaxFileBytes: 1024})
	files := Files(path)
	empty := FilePath(path, len(files))
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, Options{MaxFileBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep := mustVerify(t, path); rep.Bad != nil || rep.Records != 52 {
		t.Fatalf("after reopening: %+v (bad %v)", rep, rep.Bad)
	}
}

// An incomplete last line is a crash's only if it starts as every record
// does: other bytes at the end (appended by hand, or by another program)
// are not, and verify says so, as Open refuses the log for them.
func TestTornLastLineThatIsNoRecordsStartIsNotACrash(t *testing.T) {
	path := writeLog(t, 2, Options{})
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("added by hand"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rep := mustVerify(t, path)
	if rep.Bad == nil || rep.Bad.Pos.Line != 4 || rep.Torn != nil {
		t.Fatalf("report %+v (bad %v, torn %v), want line 4 bad", rep, rep.Bad, rep.Torn)
	}
}

// Verify of a log being written: the last file may end in a line the
// writer is in the middle of writing, and the writer may rotate once the
// scan has read it. That line is the log's last as verify read it, not a
// cut in the middle of the log.
func TestVerifyOfALogRotatingMeanwhileIsNotTampering(t *testing.T) {
	path := writeLog(t, 3, Options{})
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"v":1,"seq":5,"ti`); err != nil { // a batch being written
		t.Fatal(err)
	}
	f.Close()
	verifyScanned = func() { // the batch done, the next rotates
		if err := os.WriteFile(FilePath(path, 1), nil, 0o600); err != nil {
			t.Error(err)
		}
	}
	defer func() { verifyScanned = nil }()
	rep := mustVerify(t, path)
	if rep.Bad != nil || rep.Torn == nil || rep.Records != 4 {
		t.Fatalf("report %+v (bad %v), want 4 records and the line being written", rep, rep.Bad)
	}
}

// The readers refuse a log that is not a regular file at once too: a FIFO
// is not opened and waited on until some writer comes.
func TestReadersRefuseAFileThatIsNotRegular(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	readers := map[string]func() error{
		"Verify": func() error { _, err := Verify(path); return err },
		"Scan":   func() error { return Scan(path, func(Record, Pos) error { return nil }) },
		"Follow": func() error { _, err := newTail(path).read(func(Record, Pos) error { return nil }); return err },
	}
	for name, read := range readers {
		done := make(chan error, 1)
		go func() { done <- read() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s of a FIFO: %v, want it refused as not a regular file", name, err)
			}
		case <-time.After(time.Minute): // only a hang reaches it
			t.Fatalf("%s of a FIFO is still waiting to open it", name)
		}
	}
}
