package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
)

// boundedKernel returns a kernel recording into a log kept within
// maxTotal bytes in files of 2 KiB; with background false, only when the
// test calls prune. The kernel holds one grant, of a directory to g-a,
// made before anything else: root.
func boundedKernel(t testing.TB, maxTotal int64, background bool) (k *caps.Kernel, l *Log, path string, root *caps.Cap) {
	t.Helper()
	opts := Options{MaxFileBytes: 2048, MaxTotalBytes: maxTotal}
	if !background {
		opts.MaxTotalBytes = 0
	}
	k, l, path = kernelLogging(t, opts)
	l.maxTotal = maxTotal
	d, err := caps.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base, inh := caps.GrantRights(caps.KindDirectory, false)
	root = k.MintBy(ByText(0, "root"), &caps.Holder{ID: "g-a"}, d, base, inh, "data", "dir:/srv=data")
	return k, l, path, root
}

// churn dups and closes beneath root n times, keeping every tenth dup: a
// guest making records in a loop, some of what it made still live.
func churn(t testing.TB, k *caps.Kernel, root *caps.Cap, n int) {
	t.Helper()
	h := &caps.Holder{ID: "g-loop"}
	for i := 0; i < n; i++ {
		c, err := k.Derive(root, caps.Derivation{Holder: h, Edge: caps.EdgeDup, Base: caps.RightFileOpen})
		if err != nil {
			t.Fatal(err)
		}
		if i%10 != 0 {
			k.Close(c)
		}
	}
}

func logBytes(t *testing.T, path string) int64 {
	t.Helper()
	var n int64
	for _, f := range Files(path) {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

func TestALogPastItsBoundKeepsItsFirstFileItsNewestAndItsGraph(t *testing.T) {
	k, l, path, root := boundedKernel(t, 8192, true)
	churn(t, k, root, 300)
	if err := l.prune(); err != nil {
		t.Fatal(err)
	}
	if n := logBytes(t, path); n > 8192 {
		t.Errorf("the log holds %d bytes in %v past its bound of 8192", n, Files(path))
	}
	files := Files(path)
	if files[0] != path || strings.HasSuffix(files[1], ".1") {
		t.Errorf("files %v: the first should be kept and the oldest after it removed", files)
	}
	replayed, err := Replay(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sameGraph(t, FromSnapshot(k.Snapshot(), nil), replayed)
	l.Close()
	rep := mustVerify(t, path)
	if rep.Bad != nil || rep.Pruned == nil || rep.Pruned.FromSeq < 2 || rep.Pruned.ToSeq <= rep.Pruned.FromSeq {
		t.Fatalf("verify of a pruned log: bad %v, pruned %+v", rep.Bad, rep.Pruned)
	}
	t.Logf("pruned %+v, %d records kept in %d files", *rep.Pruned, rep.Records, len(rep.Files))
}

func TestReplayAsOfATimeAPruneRemovedIsRefused(t *testing.T) {
	k, l, path, root := boundedKernel(t, 8192, true)
	churn(t, k, root, 300)
	if err := l.prune(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	cp, _, err := ReadCheckpoint(path)
	if err != nil || cp == nil {
		t.Fatalf("checkpoint %v, %v", cp, err)
	}
	among := cp.FromTime.Add(cp.Time.Sub(cp.FromTime) / 2)
	if _, err := Replay(path, among); err == nil || !strings.Contains(err.Error(), "--audit-max-size") {
		t.Errorf("replay as of %v, among the removed records: %v", among, err)
	}
	g, err := Replay(path, cp.Time)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := g.Node(string(root.ID())); !ok {
		t.Errorf("the graph as of the checkpoint lacks the grant made before it:\n%s", text(g))
	}
	first, err := Replay(path, cp.FromTime.Add(-time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := first.Node(string(root.ID())); !ok {
		t.Errorf("the graph as of the first file lacks its grant:\n%s", text(first))
	}
}

// prunedLog is a closed log some of whose files a prune removed.
func prunedLog(t testing.TB) string {
	t.Helper()
	k, l, path, root := boundedKernel(t, 8192, true)
	churn(t, k, root, 300)
	if err := l.prune(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep := mustVerify(t, path); rep.Bad != nil || rep.Pruned == nil {
		t.Fatalf("verify: %v %+v", rep.Bad, rep.Pruned)
	}
	return path
}

func TestAPrunedLogStillShowsEditsAndRemovals(t *testing.T) {
	t.Run("checkpoint edited", func(t *testing.T) {
		path := prunedLog(t)
		data, err := os.ReadFile(CheckpointPath(path))
		if err != nil {
			t.Fatal(err)
		}
		edited := bytes.Replace(data, []byte(`"g-loop"`), []byte(`"g-evil"`), 1)
		if bytes.Equal(edited, data) {
			t.Fatalf("no holder to edit in %s", data)
		}
		if err := os.WriteFile(CheckpointPath(path), edited, 0o600); err != nil {
			t.Fatal(err)
		}
		rep := mustVerify(t, path)
		if rep.Bad == nil || rep.Bad.Pos.File != CheckpointPath(path) || !strings.Contains(rep.Bad.Reason, "no prune record") {
			t.Errorf("an edited checkpoint: %v", rep.Bad)
		}
	})
	t.Run("checkpoint removed", func(t *testing.T) {
		path := prunedLog(t)
		if err := os.Remove(CheckpointPath(path)); err != nil {
			t.Fatal(err)
		}
		if rep := mustVerify(t, path); rep.Bad == nil || !strings.Contains(rep.Bad.Reason, "deleted or moved") {
			t.Errorf("a pruned log without its checkpoint: %v", rep.Bad)
		}
	})
	t.Run("a kept file removed", func(t *testing.T) {
		path := prunedLog(t)
		files := Files(path)
		if len(files) < 3 {
			t.Fatalf("files %v", files)
		}
		if err := os.Remove(files[1]); err != nil {
			t.Fatal(err)
		}
		if rep := mustVerify(t, path); rep.Bad == nil || !strings.Contains(rep.Bad.Reason, "deleted or moved") {
			t.Errorf("the first file after the checkpoint removed: %v", rep.Bad)
		}
	})
}

func TestAPruneCutShortAfterItsCheckpointIsFinishedByTheNextWriter(t *testing.T) {
	k, l, path, root := boundedKernel(t, 8192, false)
	churn(t, k, root, 300)
	before := Files(path)
	stopped := false
	pruneBeforeRemove = func() { stopped = true }
	err := l.prune()
	pruneBeforeRemove = nil
	if err != nil || !stopped {
		t.Fatalf("prune: %v, stopped %v", err, stopped)
	}
	l.Close()
	if got := Files(path); len(got) < len(before) {
		t.Fatalf("files %v removed though the prune stopped before removing them (%v before)", got, before)
	}
	if rep := mustVerify(t, path); rep.Bad != nil || rep.Pruned != nil {
		t.Fatalf("a log whose prune stopped before removing anything: bad %v, pruned %+v", rep.Bad, rep.Pruned)
	}
	l2, err := Open(path, Options{MaxFileBytes: 2048})
	if err != nil {
		t.Fatal(err)
	}
	l2.maxTotal = 1 << 40 // removes only what the checkpoint stands for
	if err := l2.prune(); err != nil {
		t.Fatal(err)
	}
	l2.Close()
	rep := mustVerify(t, path)
	if rep.Bad != nil || rep.Pruned == nil {
		t.Fatalf("after the next writer's prune: bad %v, pruned %+v, files %v", rep.Bad, rep.Pruned, Files(path))
	}
	if got := Files(path); len(got) >= len(before) {
		t.Errorf("files %v: what the checkpoint stands for was not removed", got)
	}
}

func TestAPruneRecordReads(t *testing.T) {
	line := []byte(`{"v":1,"seq":9,"time":"2026-12-07T00:00:00Z","type":"prune","prev":"ab"}`)
	if _, err := ParseRecord(line); err == nil {
		t.Error("a prune record without what it prunes was read")
	}
	line = []byte(`{"v":1,"seq":9,"time":"2026-12-07T00:00:00Z","type":"prune","prev":"ab","pruned":{"from_seq":2,"to_seq":8,"files":["a.1"],"checkpoint":"cd"}}`)
	r, err := ParseRecord(line)
	if err != nil || r.Pruned == nil || r.Pruned.ToSeq != 8 {
		t.Errorf("prune record: %+v, %v", r.Pruned, err)
	}
}

func TestASecondPruneCutShortLeavesALogThatVerifiesAndReplays(t *testing.T) {
	k, l, path, root := boundedKernel(t, 8192, false)
	churn(t, k, root, 200)
	if err := l.prune(); err != nil {
		t.Fatal(err)
	}
	churn(t, k, root, 200)
	pruneBeforeRemove = func() {}
	err := l.prune()
	pruneBeforeRemove = nil
	if err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, path)
	if rep.Bad != nil || rep.Pruned == nil {
		t.Fatalf("a log whose second prune stopped before removing its files: bad %v, pruned %+v", rep.Bad, rep.Pruned)
	}
	replayed, err := Replay(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sameGraph(t, FromSnapshot(k.Snapshot(), nil), replayed)
}

func TestReadersOfALogPrunedWhileTheyReadSeeItWhole(t *testing.T) {
	path, reads := whilePruned(t, func(path string) error {
		if rep, err := Verify(path); err != nil || rep.Bad != nil {
			return fmt.Errorf("verify: %w, bad %v", err, rep.Bad)
		}
		_, err := Replay(path, time.Time{})
		return err
	})
	if t.Failed() {
		return
	}
	if rep := mustVerify(t, path); rep.Bad != nil || rep.Pruned == nil {
		t.Fatalf("after: bad %v, pruned %+v", rep.Bad, rep.Pruned)
	}
	t.Logf("%d readings while pruned", reads)
}

// whilePruned reads the log with read, again and again, while a guest's
// churn makes its writer prune it, until the churn ends; a reading that
// fails fails the test. It returns the log's path, the log closed, and
// how many readings were made.
func whilePruned(t *testing.T, read func(path string) error) (string, int) {
	t.Helper()
	k, l, path, root := boundedKernel(t, 8192, true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		churn(t, k, root, 500)
	}()
	// A read reads the log again when a prune removed a file under it
	// (again), a few times: a writer that prunes faster than the reader
	// reads, as a busy machine can make this one, still ends it with
	// errPrunedMeanwhile, which says to read it again. Any other error
	// fails, and once the writer has stopped the read must succeed.
	reads := 0
	for running := true; running; reads++ {
		select {
		case <-done:
			running = false
		default:
		}
		if err := read(path); err != nil && !errors.Is(err, errPrunedMeanwhile) {
			t.Errorf("reading the log while it is pruned: %v", err)
			break
		}
	}
	<-done
	if err := read(path); err != nil {
		t.Errorf("reading the log once its writer stopped pruning it: %v", err)
	}
	l.Close()
	return path, reads
}

func TestAFollowWhoseFileAPruneRemovesSaysSo(t *testing.T) {
	path := writeLog(t, 50, Options{MaxFileBytes: 1024})
	tl := newTail(path)
	tl.index = fileIndexes(path)[1]
	if err := os.Remove(FilePath(path, tl.index)); err != nil {
		t.Fatal(err)
	}
	_, err := tl.read(func(Record, Pos) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "pruned while it was read") || !strings.Contains(err.Error(), "read it again") {
		t.Fatalf("follow of a removed file: %v", err)
	}
}

// A log left past its bound (written with none, or a larger one) is
// brought within it by the next writer that opens it with the bound.
func TestALogOpenedPastItsBoundIsPruned(t *testing.T) {
	path := writeLog(t, 400, Options{MaxFileBytes: 2048})
	before := logBytes(t, path)
	l, err := Open(path, Options{MaxFileBytes: 2048, MaxTotalBytes: 8192})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if after := logBytes(t, path); before <= 8192 || after > 8192 {
		t.Errorf("%d bytes before, %d after opening with a bound of 8192", before, after)
	}
	if rep := mustVerify(t, path); rep.Bad != nil || rep.Pruned == nil {
		t.Errorf("verify: bad %v, pruned %+v", rep.Bad, rep.Pruned)
	}
}

// A suggestion read from a log its writer prunes meanwhile reads it
// again, as Replay and Verify do, rather than failing.
func TestSuggestOfALogPrunedWhileItReadsReadsItAgain(t *testing.T) {
	_, reads := whilePruned(t, func(path string) error {
		if out, err := Suggest(path, ""); err != nil {
			return fmt.Errorf("suggest: %w\n%s", err, out)
		}
		return nil
	})
	t.Logf("%d suggestions while pruned", reads)
}
