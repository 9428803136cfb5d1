package audit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// Follow calls fn with every record of the log at path, in order, and
// then with each record appended after, until ctx is done (Follow then
// returns nil) or fn returns an error. It reads the files as they grow
// and moves on to the next file at rotation, looking for more every poll.
// A line is read once it is complete.
func Follow(ctx context.Context, path string, poll time.Duration, fn func(Record, Pos) error) error {
	t := &tail{path: path, line: 1}
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
	path    string
	index   int   // file
	offset  int64 // of the next unread byte in it
	line    int   // number of the next line in it
	partial []byte
}

// read reads what the current file holds past the offset. It reports
// more when it moved to the next file, which may already hold records.
func (t *tail) read(fn func(Record, Pos) error) (more bool, err error) {
	name := FilePath(t.path, t.index)
	f, err := os.Open(name)
	if err != nil {
		return false, fmt.Errorf("audit log: %w", err)
	}
	data, err := io.ReadAll(io.NewSectionReader(f, t.offset, 1<<62))
	f.Close()
	if err != nil {
		return false, fmt.Errorf("audit log %s: %w", name, err)
	}
	t.offset += int64(len(data))
	data = append(t.partial, data...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		r, err := ParseRecord(data[:i])
		if err != nil {
			return false, fmt.Errorf("audit log %s:%d: %w", name, t.line, err)
		}
		if err := fn(r, Pos{File: name, Line: t.line}); err != nil {
			return false, err
		}
		data, t.line = data[i+1:], t.line+1
	}
	t.partial = append([]byte(nil), data...)
	if len(t.partial) == 0 {
		if _, err := os.Stat(FilePath(t.path, t.index+1)); err == nil {
			t.index, t.offset, t.line = t.index+1, 0, 1
			return true, nil
		}
	}
	return false, nil
}
