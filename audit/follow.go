package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Follow calls fn with every record of the log at path, in order, and
// then with each record appended after, until ctx is done (Follow then
// returns nil) or fn returns an error. It reads the files as they grow
// and moves on to the next file at rotation, looking for more every poll.
// A line is read once it is complete.
func Follow(ctx context.Context, path string, poll time.Duration, fn func(Record, Pos) error) error {
	if len(fileIndexes(path)) == 0 {
		return notFound(path)
	}
	t := newTail(path)
	for {
		more, err := t.read(fn)
		if err != nil {
			return err
		}
		if more {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// tail is where Follow is in the log.
type tail struct {
	path   string
	index  int   // file
	offset int64 // of the first byte after the last complete line read in it
	line   int   // number of the next line in it
	// afterRead, if set, runs after read has read the current file:
	// tests set it.
	afterRead func()
	// The last record read: its seq, the hash of its line and where.
	lastSeq  uint64
	lastHash string
	lastPos  Pos
}

// chained checks record r, read at pos from line, against the last one
// read, as verify does, but for a gap at the start of a file: Follow reads
// past files missing (moved aside, or pruned), as the log's files are.
func (t *tail) chained(r Record, line []byte, pos Pos) error {
	var bad *Problem
	switch last := t.lastSeq; {
	case last == 0:
	case r.Seq == last+1 && r.Prev != t.lastHash:
		bad = &Problem{Pos: t.lastPos, Seq: last, Reason: fmt.Sprintf("the record was changed after it was written: the next one (%s) holds another hash of it (or its own prev was edited)", pos)}
	case r.Seq <= last:
		bad = &Problem{Pos: pos, Seq: r.Seq, Reason: fmt.Sprintf("seq %d after seq %d: records were reordered or repeated", r.Seq, last)}
	case r.Seq > last+1 && pos.Line > 1:
		bad = &Problem{Pos: pos, Seq: r.Seq, Reason: fmt.Sprintf("seq %d follows seq %d: %d record(s) before this one were deleted or moved", r.Seq, last, r.Seq-last-1)}
	}
	if bad != nil {
		return &BrokenError{Path: t.path, Bad: *bad}
	}
	t.lastSeq, t.lastHash, t.lastPos = r.Seq, hashHex(line), pos
	return nil
}

// newTail starts at the first file the log has: the first ones may have
// been moved aside.
func newTail(path string) *tail {
	t := &tail{path: path, line: 1}
	if indexes := fileIndexes(path); len(indexes) > 0 {
		t.index = indexes[0]
	}
	return t
}

// next is the number of the file after the current one, which need not
// be the current one's plus one (Files), or ok false while there is none.
func (t *tail) next() (index int, ok bool) {
	for _, i := range fileIndexes(t.path) {
		if i > t.index {
			return i, true
		}
	}
	return 0, false
}

// read reads what the current file holds past the last complete line. It
// reports more when it moved to the next file, which may already hold
// records; it moves on only from a file it read after the next one
// appeared. A line not yet complete is read again at the next call rather
// than kept: a log writer that restarts after a crash cuts a torn last
// line off before it appends (Open), so those bytes may be gone.
func (t *tail) read(fn func(Record, Pos) error) (more bool, err error) {
	name := FilePath(t.path, t.index)
	f, err := openFile(name)
	if err != nil {
		return false, prunedMeanwhile(name, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() < t.offset {
		return false, fmt.Errorf("audit log %s: it is %d bytes long, shorter than the %d already read: it was cut or replaced, not appended to; read it again from the start", name, st.Size(), t.offset)
	}
	// The writer finishes a file before it starts the next: once the next
	// is there, what this read finds is all the current one will hold.
	next, final := t.next()
	partial := false
	// A record is given to fn once the next one read shows it unchanged,
	// or this reading ends: an edited record among those read at once is
	// never given.
	var held *Record
	var heldPos Pos
	give := func() error {
		if held == nil {
			return nil
		}
		r := held
		held = nil
		return fn(*r, heldPos)
	}
	err = scanReader(io.NewSectionReader(f, t.offset, 1<<62), name, t.line, func(l Line) error {
		if !l.Complete {
			partial = true
			return errStop
		}
		r, err := ParseRecord(l.Data)
		if err != nil {
			return fmt.Errorf("audit log %s: %w", l.Pos, err)
		}
		if err := t.chained(r, l.Data, l.Pos); err != nil {
			// The record held is shown unchanged only by the next one's
			// prev: an edit, or a record deleted or moved after it,
			// leaves it unconfirmed.
			held = nil
			return err
		}
		if err := give(); err != nil {
			return err
		}
		held, heldPos = &r, l.Pos
		t.line, t.offset = t.line+1, t.offset+int64(len(l.Data))+1
		return nil
	})
	if err == nil || errors.Is(err, errStop) {
		err = give()
	}
	if err != nil {
		return false, err
	}
	if t.afterRead != nil {
		t.afterRead()
	}
	if !partial && final {
		t.index, t.offset, t.line = next, 0, 1
		return true, nil
	}
	return false, nil
}
