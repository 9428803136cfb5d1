package caps

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func openFile(t *testing.T, p string, flag int) *File {
	t.Helper()
	f, err := os.OpenFile(p, flag, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	nf := NewFile(f, p)
	t.Cleanup(func() { nf.Close() })
	return nf
}

func TestFileAppendModeIsSharedAndToggles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	write(t, p, "abc")
	f := openFile(t, p, os.O_RDWR|os.O_APPEND)
	if !f.Append() {
		t.Fatal("O_APPEND at open not detected")
	}
	f.Write([]byte("d"))
	if err := f.SetAppend(false); err != nil {
		t.Fatal(err)
	}
	f.Seek(0, 0)
	f.Write([]byte("X"))
	if err := f.SetAppend(true); err != nil {
		t.Fatal(err)
	}
	f.Seek(0, 0)
	f.Write([]byte("e"))
	if b, _ := os.ReadFile(p); string(b) != "Xbcde" {
		t.Fatalf("file = %q", b)
	}
	// The host descriptor is the authority: a change made on it by
	// anything else holding it shows.
	if _, err := unix.FcntlInt(f.OS().Fd(), unix.F_SETFL, 0); err != nil {
		t.Fatal(err)
	}
	if f.Append() {
		t.Fatal("Append reports a mode the descriptor no longer has")
	}
}

func TestFileWriteAtWorksInAppendMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	write(t, p, "0123")
	f := openFile(t, p, os.O_RDWR)
	if n, err := f.WriteAt([]byte("ab"), 1); n != 2 || err != nil {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	f.SetAppend(true)
	// os.File.WriteAt would refuse; pwrite(2) on Linux appends.
	if _, err := f.WriteAt([]byte("Z"), 0); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "0ab3Z" {
		t.Fatalf("file = %q", b)
	}
}

func TestFileAllocateGrowsButNeverShrinks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	write(t, p, "0123456789")
	f := openFile(t, p, os.O_RDWR)
	if err := f.Allocate(0, 4); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(); st.Size != 10 {
		t.Fatalf("allocate inside the file changed the size to %d", st.Size)
	}
	if err := f.Allocate(8, 100); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(); st.Size != 108 {
		t.Fatalf("size %d, want 108", st.Size)
	}
}

func TestFileSetTimesAndStat(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	write(t, p, "x")
	f := openFile(t, p, os.O_RDONLY)
	a, m := time.Unix(100, 1), time.Unix(200, 2)
	if err := f.SetTimes(&a, &m); err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil || st.Atim != a.UnixNano() || st.Mtim != m.UnixNano() || st.Type != TypeRegular || st.Nlink != 1 {
		t.Fatalf("stat %+v, %v", st, err)
	}
	later := time.Unix(300, 0)
	if err := f.SetTimes(nil, &later); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(); st.Atim != a.UnixNano() || st.Mtim != later.UnixNano() {
		t.Fatalf("nil atime changed it: %+v", st)
	}
	if err := f.Datasync(); err != nil {
		t.Fatal(err)
	}
}

func TestFileReportsTheHostType(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	f := NewFile(r, "pipe")
	defer f.Close()
	if f.FileType() != TypeSocketStream {
		t.Fatalf("a pipe is %v, want a stream", f.FileType())
	}
	if _, err := f.ReadAt(make([]byte, 1), 0); ErrnoOf(err) != ESPIPE {
		t.Fatalf("pread on a pipe: %v", err)
	}
}

func TestFileOperationsAfterCloseFailCleanly(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	write(t, p, "x")
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	nf := NewFile(f, p)
	nf.Close()
	for name, err := range map[string]error{
		"WriteAt":   func() error { _, err := nf.WriteAt([]byte("x"), 0); return err }(),
		"Datasync":  nf.Datasync(),
		"Allocate":  nf.Allocate(0, 1),
		"SetTimes":  nf.SetTimes(nil, nil),
		"SetAppend": nf.SetAppend(true),
	} {
		if ErrnoOf(err) != EBADF {
			t.Errorf("%s after close: %v, want EBADF", name, err)
		}
	}
}
