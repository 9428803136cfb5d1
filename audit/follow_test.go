package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hangGuard bounds waits in these tests that only a hang could reach:
// each waits for a record to arrive. It is far beyond what a loaded
// machine takes to write and read a few records.
const hangGuard = 2 * time.Minute

func TestFollowDeliversRecordsAppendedLaterAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{MaxFileBytes: 600})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan Record, 100)
	done := make(chan error, 1)
	go func() {
		done <- Follow(ctx, path, time.Millisecond, func(r Record, _ Pos) error {
			got <- r
			return nil
		})
	}()
	next := func() Record {
		t.Helper()
		select {
		case r := <-got:
			return r
		case <-time.After(hangGuard):
			t.Fatal("Follow delivered nothing")
			return Record{}
		}
	}
	if r := next(); r.Type != TypeOpen {
		t.Fatalf("first record %+v", r)
	}
	for i := 0; i < 20; i++ { // several files' worth
		want, err := l.Append(Record{Type: TypeClose, Cap: &CapRecord{ID: "c"}})
		if err != nil {
			t.Fatal(err)
		}
		if r := next(); r.Seq != want.Seq {
			t.Fatalf("followed seq %d, appended %d", r.Seq, want.Seq)
		}
	}
	if n := len(Files(path)); n < 3 {
		t.Fatalf("%d files: the test did not cross a rotation", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Follow after cancel: %v", err)
	}
}

func TestFollowStopsAtTheCallbacksError(t *testing.T) {
	path := writeLog(t, 3, Options{})
	stop := errors.New("enough")
	n := 0
	err := Follow(context.Background(), path, time.Millisecond, func(Record, Pos) error {
		if n++; n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("Follow returned %v after %d records", err, n)
	}
}

// The writer crashes in the middle of a line while Follow is reading; it
// restarts, cuts the torn line off (Open) and appends. What Follow
// delivers must be what the log holds: the torn bytes are not glued to
// the next record.
func TestFollowReadsOnAfterTheWriterCutATornLine(t *testing.T) {
	path := logOfOneClose(t)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"v":1,"seq":3,"time":"2026-01-01T00:00:00Z","type":"close","prev":"0123456789abcdef0123456789abcdef`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	var followed []string
	collect := func(r Record, _ Pos) error {
		followed = append(followed, r.Type+"#"+strconv.FormatUint(r.Seq, 10))
		return nil
	}
	tl := &tail{path: path, line: 1}
	if _, err := tl.read(collect); err != nil { // the two records, and the torn bytes
		t.Fatal(err)
	}
	l, err := Open(path, Options{}) // cuts the torn line, records its own open
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(Record{Type: TypeClose, Cap: &CapRecord{ID: "c2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := tl.read(collect); err != nil {
		t.Fatalf("reading on after the writer restarted (followed %v): %v", followed, err)
	}
	var inLog []string
	if err := Scan(path, func(r Record, _ Pos) error {
		inLog = append(inLog, r.Type+"#"+strconv.FormatUint(r.Seq, 10))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(followed, " ") != strings.Join(inLog, " ") {
		t.Fatalf("Follow delivered %v; the log holds %v", followed, inLog)
	}
}

// A log cut shorter than what Follow has read (replaced, or truncated by
// hand) is an error that says so, not records made of whatever follows.
func TestFollowRefusesALogCutShorterThanItRead(t *testing.T) {
	path := logOfOneClose(t)
	tl := &tail{path: path, line: 1}
	if _, err := tl.read(func(Record, Pos) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := tl.read(func(Record, Pos) error { return nil }); err == nil || !strings.Contains(err.Error(), "shorter than") {
		t.Fatalf("reading a log cut short: %v; want an error saying it was cut", err)
	}
}

// logOfOneClose returns the path of a new log holding its open record and
// one close.
func logOfOneClose(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(Record{Type: TypeClose, Cap: &CapRecord{ID: "c1"}}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	return path
}

// The writer may append to a file and then rotate between Follow's read of
// that file and its look for the next one: Follow must read the records
// the file gained before it moves on.
func TestFollowReadsAFilesLastRecordsBeforeMovingOn(t *testing.T) {
	src := writeLog(t, 30, Options{MaxFileBytes: 2048})
	files := Files(src)
	if len(files) < 2 {
		t.Fatalf("files %v: want a rotation", files)
	}
	first, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	second, err := os.ReadFile(files[1])
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	half := strings.Index(string(first), "\n") + 1
	if err := os.WriteFile(path, first[:half], 0o600); err != nil {
		t.Fatal(err)
	}
	tl := &tail{path: path, line: 1}
	tl.afterRead = func() { // the writer's next batch, then a rotation
		tl.afterRead = nil
		if err := os.WriteFile(path, first, 0o600); err != nil {
			t.Error(err)
		}
		if err := os.WriteFile(FilePath(path, 1), second, 0o600); err != nil {
			t.Error(err)
		}
	}
	var seqs []uint64
	want := strings.Count(string(first), "\n") + strings.Count(string(second), "\n")
	for polls := 0; polls < 10 && len(seqs) < want; polls++ { // Follow's polls, each reading what is there
		if _, err := tl.read(func(r Record, _ Pos) error { seqs = append(seqs, r.Seq); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if len(seqs) != want || seqs[len(seqs)-1] != uint64(want) {
		t.Fatalf("followed seqs %v, want 1 to %d", seqs, want)
	}
}

// A line longer than any record (a file that is not a log: here 64 MiB
// and more of zeros, as /dev/zero would give without end) ends Follow
// with an error naming it, rather than being read whole, at every poll,
// while Follow waits for its newline.
func TestFollowRefusesALineLongerThanAnyRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, maxLine+1<<20); err != nil { // sparse: no disk
		t.Fatal(err)
	}
	tl := &tail{path: path, line: 1}
	if _, err := tl.read(func(Record, Pos) error { return nil }); err == nil || !strings.Contains(err.Error(), "not an audit log") {
		t.Fatalf("following a file of one line of %d bytes: %v; want an error saying it is not a log", maxLine+1<<20, err)
	}
}

// Follow reads the files the log has: when the first files were moved
// aside (docs/AUDIT.md allows it), or one is missing in the middle, it
// reads the ones there are to the end rather than waiting, or failing, at
// the missing one.
func TestFollowReadsTheFilesThereAre(t *testing.T) {
	for _, gone := range [][]int{{0, 1}, {1}} {
		path := writeLog(t, 50, Options{MaxFileBytes: 1024})
		files := Files(path)
		for _, i := range gone {
			if err := os.Remove(files[i]); err != nil {
				t.Fatal(err)
			}
		}
		// Scan refuses the log, whose chain is broken: the records there are.
		var want []uint64
		err := ScanLines(path, func(l Line) error {
			r, err := ParseRecord(l.Data)
			want = append(want, r.Seq)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		tl := newTail(path)
		var got []uint64
		for polls := 0; polls < 2*len(files) && len(got) < len(want); polls++ {
			if _, err := tl.read(func(r Record, _ Pos) error { got = append(got, r.Seq); return nil }); err != nil {
				t.Fatalf("files %v removed: %v", gone, err)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("files %v removed: followed %v, the log holds %v", gone, got, want)
		}
	}
}
