package audit

import (
	"context"
	"errors"
	"path/filepath"
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
