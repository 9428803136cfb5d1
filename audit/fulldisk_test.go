package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A batch that the disk fills in the middle of (here a file size limit a
// few records past the log's end, which fails the write as ENOSPC would)
// left the lines that fitted in the file: records never acknowledged (the
// calls they record failed, or were revoked as made) that read, after the
// next start, as whole records of what happened. The failed batch is cut
// off the file: the log holds the acknowledged records, and the next start
// continues the chain from the last of them.
func TestABatchTheDiskFillsLeavesNoneOfItsRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(Record{Type: TypeGrant, Cap: &CapRecord{ID: "kept", Kind: "dir", Base: "fd_read", Edge: "grant"}}); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	holdUnwaited(t, l) // the batch is written whole, at the last Append
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = uint64(before.Size()) + 1000 // room for some of the batch's records, not all
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &low); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if _, err := l.Enqueue(Record{Type: TypeGrant, Cap: &CapRecord{ID: fmt.Sprintf("lost%d", i), Kind: "dir", Base: "fd_read", Edge: "grant"}}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = l.Append(Record{Type: TypeGrant, Cap: &CapRecord{ID: "lost", Kind: "dir", Base: "fd_read", Edge: "grant"}})
	if rerr := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); rerr != nil {
		t.Fatal(rerr)
	}
	if err == nil {
		t.Fatal("a batch past the file size limit was acknowledged")
	}
	l.Close()
	if after, err := os.Stat(path); err != nil || after.Size() != before.Size() {
		t.Fatalf("the file is %v bytes (%v) after the failed batch, was %d", after.Size(), err, before.Size())
	}
	if l, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	rep := mustVerify(t, path)
	if rep.Bad != nil || rep.Torn != nil || rep.Records != 3 { // open, kept, open
		t.Fatalf("after the next start: %d records, bad %v, torn %v; want the 3 acknowledged", rep.Records, rep.Bad, rep.Torn)
	}
}
