package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// A log kept within a size bound (Options.MaxTotalBytes) loses its oldest
// files but the first: before they are removed, the graph as of their
// last record is written to a checkpoint file (PATH.checkpoint), and a
// prune record in the chain declares which records go and holds the
// checkpoint's SHA-256. Verify then accepts the gap the checkpoint
// stands for, and Replay starts from it, so that `audit graph --at`
// answers for any time the log still covers.
//
// The first file is kept: it holds the writer's lock and the log's
// first records (seq 1 on).

// CheckpointPath is the checkpoint file of the log at path.
func CheckpointPath(path string) string { return path + ".checkpoint" }

// Checkpoint stands for records a prune removed: FromSeq (the first
// after the first file) to Seq, Hash being the SHA-256 of Seq's line,
// which the next record in the log names as its prev, and Graph the
// capability graph as of Seq. FromPrev is the prev FromSeq held: the
// hash of the first file's last record, which no record left in the log
// holds; a checkpoint an older writer made has none.
type Checkpoint struct {
	V        int       `json:"v"`
	FromSeq  uint64    `json:"from_seq"`
	FromPrev string    `json:"from_prev,omitempty"`
	FromTime time.Time `json:"from_time"`
	Seq      uint64    `json:"seq"`
	Hash     string    `json:"hash"`
	Time     time.Time `json:"time"`
	// Shut is set when the last record before the checkpoint left the
	// graph shut down (Graph.Apply of a shutdown record).
	Shut  bool     `json:"shut,omitempty"`
	Graph GraphDoc `json:"graph"`
}

// ReadCheckpoint reads the checkpoint of the log at path, and the hex
// SHA-256 of its file; nil and no error when there is none.
func ReadCheckpoint(path string) (*Checkpoint, string, error) {
	data, err := os.ReadFile(CheckpointPath(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("audit log checkpoint: %w", err)
	}
	var cp Checkpoint
	if err := json.Unmarshal(data, &cp); err != nil || cp.V != Version || cp.Seq == 0 {
		return nil, "", fmt.Errorf("audit log checkpoint %s does not read as one (%v): it was not written by sandboxd, or was edited", CheckpointPath(path), err)
	}
	sum := sha256.Sum256(data)
	return &cp, hex.EncodeToString(sum[:]), nil
}

// graph is the graph the checkpoint holds.
func (cp *Checkpoint) graph() *Graph {
	g := FromDoc(cp.Graph)
	g.Last, g.shut = cp.Time, cp.Shut
	return g
}

// pruner keeps the log within its bound: woken after each rotation (and
// once at Open), it removes the oldest files but the first and the last
// while the log is past it.
func (l *Log) pruner() {
	defer close(l.pruned)
	for range l.pruneWake {
		l.pruneOrWarn()
	}
}

// pruneOrWarn prunes, and tells warn what kept it from doing so.
func (l *Log) pruneOrWarn() {
	if err := l.prune(); err != nil && !errors.Is(err, errClosed) && l.warn != nil {
		l.warn(fmt.Errorf("audit log %s: keeping it within --audit-max-size: %w", l.path, err))
	}
}

// lastPrune brings an open log within its bound before it closes: the
// pruner may lag the writer by what was written during its last prune.
func (l *Log) lastPrune() {
	if l.pruneWake != nil && !l.isClosed() && l.Err() == nil {
		l.pruneOrWarn()
	}
}

// wakePruner asks the pruner to look at the log's size.
func (l *Log) wakePruner() {
	if l.pruneWake == nil {
		return
	}
	select {
	case l.pruneWake <- struct{}{}:
	default: // it will look anyway
	}
}

// logFile is one file of a log: its number, name and size.
type logFile struct {
	index int
	name  string
	size  int64
}

// prune removes what a checkpoint already stands for (a prune cut short
// by a crash), then the oldest files past the bound.
func (l *Log) prune() error {
	l.pruning.Lock()
	defer l.pruning.Unlock()
	cp, _, err := ReadCheckpoint(l.path)
	if err != nil {
		return err
	}
	files, err := l.files()
	if err != nil {
		return err
	}
	if cp != nil {
		if files, err = removeCovered(l.path, files, cp); err != nil {
			return err
		}
	}
	victims := l.pastBound(files)
	if len(victims) == 0 {
		return nil
	}
	return l.checkpointAndRemove(cp, files[0], victims)
}

// files lists the log's files with their sizes, in chain order.
func (l *Log) files() ([]logFile, error) {
	var out []logFile
	for _, i := range fileIndexes(l.path) {
		st, err := os.Stat(FilePath(l.path, i))
		if err != nil {
			return nil, err
		}
		out = append(out, logFile{i, FilePath(l.path, i), st.Size()})
	}
	if len(out) == 0 || out[0].index != 0 {
		return nil, fmt.Errorf("its first file %s is missing: nothing is removed from a log whose beginning was moved aside", l.path)
	}
	return out, nil
}

// pastBound returns the oldest files, never the first nor the last, whose
// removal brings the log within its bound (as near as they can), with
// room for the prune record that removes them.
func (l *Log) pastBound(files []logFile) []logFile {
	var total int64
	for _, f := range files {
		total += f.size
	}
	record := int64(pruneRecordBytes)
	n := 0
	for i := 1; i < len(files)-1 && total+record > l.maxTotal; i++ {
		total -= files[i].size
		record += int64(len(filepath.Base(files[i].name))) + 3 // "NAME",
		n++
	}
	return files[1 : 1+n]
}

// pruneRecordBytes is the most a prune record takes without its file
// names: its header and hashes, seqs and field names.
const pruneRecordBytes = 384

// removeCovered removes the files, after the first, whose records the
// checkpoint stands for: those a prune declared and a crash kept it from
// removing. They are the oldest after the first, so it stops at the first
// file it does not cover (one read in the usual case); the last file,
// the writer's, is never covered. It returns the files left.
func removeCovered(path string, files []logFile, cp *Checkpoint) ([]logFile, error) {
	i := 1
	for ; i < len(files)-1; i++ {
		next, err := firstSeq(files[i+1].name)
		if err != nil {
			return nil, err
		}
		if next == 0 || next > cp.Seq+1 {
			break
		}
		if err := os.Remove(files[i].name); err != nil {
			return nil, err
		}
	}
	if i == 1 {
		return files, nil
	}
	return append([]logFile{files[0]}, files[i:]...), syncDir(filepath.Dir(path))
}

// firstSeq is the seq of the first record of a file, 0 for an empty one.
func firstSeq(name string) (uint64, error) {
	var seq uint64
	err := scanFile(name, func(l Line) error {
		if l.Complete {
			r, err := ParseRecord(l.Data)
			if err != nil {
				return fmt.Errorf("%s: %w", l.Pos, err)
			}
			seq = r.Seq
		}
		return errStop
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return seq, err
}

// checkpointAndRemove writes the checkpoint of the graph as of the last
// record of victims, declares it in a prune record, puts it in place and
// removes the victims. A crash at any step leaves a log that verifies:
// the checkpoint is put in place only once its prune record is on disk,
// and the next prune removes what it stands for.
func (l *Log) checkpointAndRemove(prev *Checkpoint, first logFile, victims []logFile) error {
	cp, err := l.buildCheckpoint(prev, first, victims)
	if err != nil {
		return err
	}
	data, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	tmp := CheckpointPath(l.path) + ".new"
	if err := writeSynced(tmp, data); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	names := make([]string, len(victims))
	for i, v := range victims {
		names[i] = filepath.Base(v.name)
	}
	rec := Record{Type: TypePrune, Pruned: &PruneRecord{FromSeq: cp.FromSeq, ToSeq: cp.Seq, Files: names, Checkpoint: hex.EncodeToString(sum[:])}}
	if _, err := l.Append(rec); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, CheckpointPath(l.path)); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(l.path)); err != nil {
		return err
	}
	if pruneBeforeRemove != nil {
		pruneBeforeRemove()
		return nil
	}
	for _, v := range victims {
		if err := os.Remove(v.name); err != nil {
			return err
		}
	}
	return syncDir(filepath.Dir(l.path))
}

// pruneBeforeRemove, if set, stands for a crash after a checkpoint is
// put in place and before the files it stands for are removed: tests
// set it.
var pruneBeforeRemove func()

// buildCheckpoint replays what the previous checkpoint (or, for the
// first prune, the first file) left, then the victims, which must follow
// it without a gap.
func (l *Log) buildCheckpoint(prev *Checkpoint, first logFile, victims []logFile) (*Checkpoint, error) {
	g, after := NewGraph(), uint64(0)
	if prev != nil {
		g, after = prev.graph(), prev.Seq
	} else {
		var head Checkpoint
		if err := l.replayFile(g, first.name, &head); err != nil {
			return nil, err
		}
		after = head.Seq
	}
	cp := &Checkpoint{V: Version}
	for _, v := range victims {
		if err := l.replayFile(g, v.name, cp); err != nil {
			return nil, err
		}
	}
	if cp.FromSeq != after+1 {
		return nil, fmt.Errorf("%s starts at seq %d, and the records before it end at seq %d: a file was moved or removed by hand; nothing more is removed until the log is whole again", victims[0].name, cp.FromSeq, after)
	}
	if prev != nil {
		cp.FromSeq, cp.FromPrev, cp.FromTime = prev.FromSeq, prev.FromPrev, prev.FromTime
	}
	cp.Shut = g.shut
	cp.Graph = g.Doc()
	return cp, nil
}

// replayFile applies the records of one whole file to g and, when cp is
// not nil, keeps in it the first and last record seen.
func (l *Log) replayFile(g *Graph, name string, cp *Checkpoint) error {
	return scanFile(name, func(line Line) error {
		if !line.Complete {
			return fmt.Errorf("%s: an incomplete line in a file the writer has left", line.Pos)
		}
		r, err := ParseRecord(line.Data)
		if err != nil {
			return fmt.Errorf("%s: %w", line.Pos, err)
		}
		if l.isClosed() {
			return errClosed
		}
		g.Apply(r)
		if cp != nil {
			if cp.FromSeq == 0 {
				cp.FromSeq, cp.FromPrev, cp.FromTime = r.Seq, r.Prev, r.Time
			}
			cp.Seq, cp.Time, cp.Hash = r.Seq, r.Time, hashHex(line.Data)
		}
		return nil
	})
}

func (l *Log) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// writeSynced writes data to a new file name (mode 0600), fsynced.
func writeSynced(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
