package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultMaxFileBytes is the size past which a Log starts a new file.
const DefaultMaxFileBytes = 64 << 20

// Log appends records to an audit log: the file at its path, then
// PATH.1, PATH.2, … as each grows past the rotation size. The chain of
// hashes runs through them all, in that order.
//
// Append returns once its record is written and fsynced. One goroutine
// writes: every record appended while it writes and fsyncs one batch goes
// into the next batch, so concurrent appenders share one fsync (group
// commit). A Log holds an exclusive lock (flock) on its first file: one
// writer at a time.
//
// After a write or fsync fails the Log is failed: every later Append
// returns that error (Err), since a record lost from the chain cannot be
// put back.
type Log struct {
	path string
	max  int64
	lock *os.File // the first file, flocked

	mu   sync.Mutex
	work *sync.Cond // the writer waits for records someone waits for
	// urgent is set when the lines in buf are to be written now: someone
	// waits for one of them (Wait), they have piled up past urgentBytes,
	// or they have waited flushDelay (flush). Lines nobody waits for wait
	// for the next that somebody does, so that a launch's handles and its
	// guest-start record share one fdatasync.
	urgent     bool
	flushing   *time.Timer   // sets urgent flushAfter after a line nobody waits for
	flushSet   bool          // flushing is running
	flushAfter time.Duration // flushDelay; tests set it
	batches    uint64        // batches written, each with its fdatasync
	buf        [][]byte      // lines appended, not yet handed to the writer, in chunks
	bufLen     int64         // their bytes
	bufLast    uint64        // seq of the last line in buf
	free       [][]byte      // written chunks, for Enqueue to reuse
	// filling is the batch of the lines in buf, writing the one the
	// writer writes (nil when none): appenders wait on their batch's
	// channel, off the lock, and all wake at once when it is durable.
	filling *batch
	writing *writingBatch
	seq     uint64   // last seq given
	prev    [32]byte // hash of the last line appended
	durable uint64   // last seq fsynced
	err     error
	closed  bool

	f     *os.File // the current file; the writer's only
	size  int64
	index int // of the current file: 0 is path itself
	done  chan struct{}

	// maxTotal bounds the files' bytes together (0: none); the pruner
	// (retain.go) keeps them within it, woken by pruneWake, and closes
	// pruned when it ends. warn is told what keeps it from doing so.
	maxTotal  int64
	warn      func(error)
	pruneWake chan struct{}
	pruned    chan struct{}
	pruning   sync.Mutex // one prune at a time
}

// Options configures Open.
type Options struct {
	// MaxFileBytes rotates to a new file once the current one is larger;
	// 0 means DefaultMaxFileBytes.
	MaxFileBytes int64
	// MaxTotalBytes bounds the log's files together: past it, the oldest
	// files but the first are removed, a checkpoint standing for them
	// (retain.go). 0 keeps every file.
	MaxTotalBytes int64
	// Warn is told why the log could not be kept within MaxTotalBytes
	// (it grows on meanwhile, and the next rotation tries again).
	Warn func(error)
}

// Open opens the log at path for appending (creating it, mode 0600) and
// continues its chain. An incomplete last line, left by a crash in the
// middle of a write, is cut off: it was never acknowledged. The first
// record written is a TypeOpen record saying how many bytes were cut. A
// file whose last line is not a record, or whose incomplete last line is
// not the start of one, is not a log: Open refuses it, unchanged.
func Open(path string, opts Options) (*Log, error) {
	l := &Log{path: path, max: opts.MaxFileBytes, done: make(chan struct{}), maxTotal: opts.MaxTotalBytes, warn: opts.Warn}
	if l.max <= 0 {
		l.max = DefaultMaxFileBytes
	}
	l.work = sync.NewCond(&l.mu)
	l.flushAfter = flushDelay
	l.flushing = time.AfterFunc(time.Hour, l.flush)
	l.flushing.Stop()
	lock, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if err := regular(lock); err != nil {
		lock.Close()
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("audit log %s is in use by another writer (%v): stop it, or write another log", path, err)
	}
	l.lock = lock
	if err := syncDir(filepath.Dir(path)); err != nil {
		lock.Close()
		return nil, fmt.Errorf("audit log: %w", err)
	}
	discarded, err := l.resume()
	if err != nil {
		lock.Close()
		if l.f != nil && l.f != lock {
			l.f.Close()
		}
		return nil, err
	}
	go l.writer()
	if l.maxTotal > 0 {
		l.pruneWake, l.pruned = make(chan struct{}, 1), make(chan struct{})
		go l.pruner()
	}
	if _, err := l.Append(Record{Type: TypeOpen, Discarded: discarded}); err != nil {
		l.Close()
		return nil, fmt.Errorf("%w (%w): free space on its file system, or write the log elsewhere", ErrCannotWrite, err)
	}
	l.wakePruner()
	return l, nil
}

// regular refuses a log file that is not a regular file: a FIFO, whose
// bytes cannot be read back, or a device such as /dev/zero, which would
// be read without end.
func regular(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("audit log %s is not a regular file (%s): a log is a file, appended to and read back; name one", f.Name(), st.Mode().Type())
	}
	return nil
}

// FilePath is the name of a log's file number i: path itself for 0, then
// PATH.1, PATH.2, …
func FilePath(path string, i int) string {
	if i == 0 {
		return path
	}
	return path + "." + strconv.Itoa(i)
}

// Files lists the files of the log at path, in chain order: those of
// fileIndexes.
func Files(path string) []string { return filePaths(path, fileIndexes(path)) }

func filePaths(path string, indexes []int) []string {
	out := make([]string, len(indexes))
	for i, n := range indexes {
		out[i] = FilePath(path, n)
	}
	return out
}

// fileIndexes lists the numbers of the log's files that exist, in order.
// A file missing in the middle (or the first) does not end the list: the
// files after it are still the log's, and verify names the gap.
func fileIndexes(path string) []int {
	var out []int
	if _, err := os.Stat(path); err == nil {
		out = append(out, 0)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return out
	}
	prefix := filepath.Base(path) + "."
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), prefix)
		n, err := strconv.Atoi(suffix)
		if ok && err == nil && n > 0 && strconv.Itoa(n) == suffix {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// resume finds the last file, cuts an incomplete last line off it, and
// reads the chain's head (seq and hash) from the last complete line.
func (l *Log) resume() (discarded int64, err error) {
	indexes := fileIndexes(l.path) // path itself is there: Open made it
	files := filePaths(l.path, indexes)
	l.index = indexes[len(indexes)-1]
	f := l.lock
	if l.index > 0 {
		if f, err = os.OpenFile(files[len(files)-1], os.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
			return 0, fmt.Errorf("audit log: %w", err)
		}
		if err := regular(f); err != nil {
			f.Close()
			return 0, err
		}
	}
	l.f = f
	end, keep, err := fileEnd(f)
	if err != nil {
		return 0, err
	}
	torn := make([]byte, min(end-keep, int64(len(recordStart))))
	if _, err := f.ReadAt(torn, keep); err != nil {
		return 0, fmt.Errorf("audit log %s: %w", f.Name(), err)
	}
	if !bytes.HasPrefix(recordStart, torn) {
		return 0, fmt.Errorf("audit log %s: it ends with %d bytes that are not the start of a record: it is not an audit log, or was edited; it was left as it is: check it with sandboxd audit verify, or write another log", f.Name(), end-keep)
	}
	// The head is read before the torn line is cut: a file that is not a
	// log is refused as it is.
	last, err := lastLine(files, f, keep)
	if err != nil {
		return 0, err
	}
	var r Record
	if last != nil {
		if r, err = ParseRecord(last); err != nil {
			return 0, fmt.Errorf("audit log %s: its last record does not read (%v): it is not an audit log, or was edited; it was left as it is: check it with sandboxd audit verify, and move the log aside to start a new one", f.Name(), err)
		}
	}
	if discarded = end - keep; discarded > 0 {
		if err := f.Truncate(keep); err != nil {
			return 0, fmt.Errorf("audit log %s: cutting an incomplete last line: %w", f.Name(), err)
		}
	}
	l.size = keep
	if _, err := f.Seek(keep, io.SeekStart); err != nil {
		return 0, err
	}
	if last != nil {
		l.seq, l.durable, l.prev = r.Seq, r.Seq, sha256.Sum256(last)
	}
	return discarded, nil
}

// recordStart is how every line a Log writes starts.
var recordStart = []byte(`{"v":`)

// lastLine returns the last complete line of the log, f being its last
// file and keep the end of that file's complete lines: the last file may
// be empty when a crash came right after a rotation. Only the ends of
// the files are read.
func lastLine(files []string, f *os.File, keep int64) ([]byte, error) {
	if keep > 0 {
		return lineBefore(f, keep)
	}
	for i := len(files) - 2; i >= 0; i-- {
		line, err := lastLineOf(files[i])
		if line != nil || err != nil {
			return line, err
		}
	}
	return nil, nil
}

// lastLineOf returns the last complete line of the file at name, or nil.
func lastLineOf(name string) ([]byte, error) {
	f, err := openFile(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	_, keep, err := fileEnd(f)
	if err != nil || keep == 0 {
		return nil, err
	}
	return lineBefore(f, keep)
}

// fileEnd returns the size of f and keep, the offset just past its last
// newline (0 when it has none).
func fileEnd(f *os.File) (end, keep int64, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("audit log: %w", err)
	}
	nl, err := lastNewline(f, st.Size())
	return st.Size(), nl + 1, err
}

// lineBefore returns the line of f that ends with the newline at end-1.
func lineBefore(f *os.File, end int64) ([]byte, error) {
	start, err := lastNewline(f, end-1)
	if err != nil {
		return nil, err
	}
	line := make([]byte, end-1-(start+1))
	if _, err := f.ReadAt(line, start+1); err != nil {
		return nil, fmt.Errorf("audit log %s: %w", f.Name(), err)
	}
	return line, nil
}

// lastNewline returns the offset of the last newline in f before end, or
// -1 when there is none. It reads back from end, at most maxLine bytes:
// no record is longer.
func lastNewline(f *os.File, end int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for pos := end; pos > 0; {
		if end-pos > maxLine {
			return 0, fmt.Errorf("audit log %s: no line ends in its last %d MiB, which no record is: it is not an audit log, or was edited; it was left as it is: check it with sandboxd audit verify, or write another log", f.Name(), maxLine>>20)
		}
		n := min(int64(len(buf)), pos)
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil {
			return 0, fmt.Errorf("audit log %s: %w", f.Name(), err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return pos + int64(i), nil
		}
	}
	return -1, nil
}

// Append writes r to the log, with V, Seq, Time and Prev set, and returns
// it once it is on disk.
func (l *Log) Append(r Record) (Record, error) {
	r, err := l.Enqueue(r)
	if err != nil {
		return r, err
	}
	return r, l.Wait(r.Seq)
}

// Enqueue adds r to the log, with V, Seq, Time and Prev set, without
// waiting for it to reach the disk: Wait(r.Seq) does. Records are in the
// log in the order Enqueue (or Append) was called.
//
// What does not depend on the chain (the type and the body) is encoded
// before the log's lock is taken: under it, only the header (seq, time,
// prev) is written and the line hashed, so that many appenders at once
// (every guest ending at a shutdown) do not queue behind one another's
// encoding. The line is what json.Marshal makes of r.
func (l *Log) Enqueue(r Record) (Record, error) {
	r.V = Version
	typ, err := json.Marshal(r.Type)
	if err != nil {
		return r, fmt.Errorf("audit record: %w", err)
	}
	body, err := json.Marshal(recordBody{Cap: r.Cap, Receipt: r.Receipt, Decision: r.Decision, Guest: r.Guest, Discarded: r.Discarded, Running: r.Running, Pruned: r.Pruned})
	if err != nil {
		return r, fmt.Errorf("audit record: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return r, l.err
	}
	if l.closed {
		return r, errClosed
	}
	r.Seq = l.seq + 1
	r.Time = time.Now().UTC()
	if r.Seq > 1 {
		r.Prev = hex.EncodeToString(l.prev[:])
	}
	// The line goes into a chunk it fits in whole: the header is at most
	// 220 bytes. Chunks are never grown, so that a batch of many records
	// is not copied again and again as it grows.
	chunk := l.room(256 + len(typ) + len(body))
	start := len(*chunk)
	b := append(*chunk, `{"v":`...)
	b = strconv.AppendInt(b, int64(r.V), 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"time":"`...)
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","type":`...)
	b = append(b, typ...)
	b = append(b, `,"prev":"`...)
	b = append(b, r.Prev...)
	b = append(b, '"')
	if len(body) > 2 { // not {}
		b = append(b, ',')
	}
	b = append(b, body[1:]...)
	l.seq = r.Seq
	l.prev = sha256.Sum256(b[start:])
	*chunk = append(b, '\n')
	l.bufLen += int64(len(*chunk) - start)
	l.bufLast = r.Seq
	if l.filling == nil {
		l.filling = &batch{done: make(chan struct{})}
	}
	switch {
	case l.bufLen >= urgentBytes:
		l.hurry()
	case !l.urgent && !l.flushSet:
		l.flushSet = true
		l.flushing.Reset(l.flushAfter)
	}
	return r, nil
}

// flushDelay is how long a line nobody waits for may wait for one that
// somebody does before it is written anyway, and urgentBytes how many
// bytes of such lines are written without waiting.
const (
	flushDelay  = 10 * time.Millisecond
	urgentBytes = 256 << 10
)

// hurry has the writer take the lines in buf now. Called with l.mu held.
func (l *Log) hurry() {
	if !l.urgent {
		l.urgent = true
		l.work.Signal()
	}
}

// flush is flushing's: lines nobody waited for are written flushDelay
// after the first of them.
func (l *Log) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushSet = false
	if len(l.buf) > 0 {
		l.hurry()
	}
}

// writingBatch is the batch the writer has taken, with the seq of its
// last line.
type writingBatch struct {
	*batch
	last uint64
}

// chunkBytes is the size of the chunks lines are appended to (larger for
// a larger line), and maxFree how many written chunks are kept for reuse.
const (
	chunkBytes = 64 << 10
	maxFree    = 64
)

// room returns the last chunk of buf if it has n bytes free, or else
// appends one that has and returns it. Called with l.mu held.
func (l *Log) room(n int) *[]byte {
	if k := len(l.buf); k > 0 && cap(l.buf[k-1])-len(l.buf[k-1]) >= n {
		return &l.buf[k-1]
	}
	var c []byte
	if k := len(l.free); k > 0 && n <= chunkBytes {
		c, l.free = l.free[k-1][:0], l.free[:k-1]
	} else {
		c = make([]byte, 0, max(n, chunkBytes))
	}
	l.buf = append(l.buf, c)
	return &l.buf[len(l.buf)-1]
}

// batch is the lines the writer writes and fsyncs at once. done is closed
// once they are durable, or err says why they are not.
type batch struct {
	done chan struct{}
	err  error
}

// recordBody is a Record's fields after its header, which Enqueue encodes
// before it takes the log's lock: the same names and options as Record's.
type recordBody struct {
	Cap       *CapRecord      `json:"cap,omitempty"`
	Receipt   *ReceiptRecord  `json:"receipt,omitempty"`
	Decision  *DecisionRecord `json:"decision,omitempty"`
	Guest     *GuestRecord    `json:"guest,omitempty"`
	Discarded int64           `json:"discarded,omitempty"`
	Running   int             `json:"running,omitempty"`
	Pruned    *PruneRecord    `json:"pruned,omitempty"`
}

var errClosed = errors.New("audit log closed")

// ErrCannotWrite is Open's error for a log it could read but not write
// its first record to (errors.Is): a full disk, an I/O error.
var ErrCannotWrite = errors.New("the audit log cannot be written")

// Wait returns once every record up to seq is on disk, or the error that
// keeps it from getting there.
func (l *Log) Wait(seq uint64) error {
	l.mu.Lock()
	if l.durable >= seq {
		l.mu.Unlock()
		return nil
	}
	if l.err != nil {
		l.mu.Unlock()
		return l.err
	}
	b := l.filling
	if l.writing != nil && seq <= l.writing.last {
		b = l.writing.batch
	} else if b != nil {
		l.hurry()
	}
	l.mu.Unlock()
	if b == nil { // seq was never given
		return fmt.Errorf("audit log: no record %d has been appended", seq)
	}
	<-b.done
	return b.err
}

// Flush returns once every record appended so far is on disk.
func (l *Log) Flush() error {
	l.mu.Lock()
	seq := l.seq
	l.mu.Unlock()
	if seq == 0 {
		return nil
	}
	return l.Wait(seq)
}

// Err returns the error that failed the log, or nil.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Head returns the seq and hash of the last record appended.
func (l *Log) Head() (seq uint64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, hex.EncodeToString(l.prev[:])
}

// Path is the log's first file.
func (l *Log) Path() string { return l.path }

// writer writes and fsyncs batches until the log is closed and drained.
func (l *Log) writer() {
	defer close(l.done)
	for {
		l.mu.Lock()
		for !l.closed && (len(l.buf) == 0 || !l.urgent) {
			l.work.Wait()
		}
		if len(l.buf) == 0 {
			l.mu.Unlock()
			return
		}
		data, size, b := l.buf, l.bufLen, &writingBatch{batch: l.filling, last: l.bufLast}
		l.buf, l.bufLen, l.filling, l.writing, l.urgent = nil, 0, nil, b, false
		if l.flushSet && l.flushing.Stop() {
			l.flushSet = false // what it would have flushed is in this batch
		}
		failed := l.err
		l.mu.Unlock()

		// After a failed batch nothing more is written: its lines may be
		// on disk in part, and a line after them would break the chain
		// in its middle.
		err := failed
		if err == nil {
			err = l.write(data, size)
		}
		l.mu.Lock()
		if err != nil && l.err == nil {
			l.err = fmt.Errorf("audit log %s: %w", l.f.Name(), err)
		} else if err == nil {
			l.durable = b.last
			l.batches++
		}
		if l.durable < b.last {
			b.err = l.err
		}
		l.writing = nil
		for _, c := range data {
			if len(l.free) < maxFree && cap(c) == chunkBytes {
				l.free = append(l.free, c)
			}
		}
		l.mu.Unlock()
		close(b.done)
	}
}

// write appends one batch of whole lines, size bytes in chunks, to the
// current file, rotating first if the batch would take it past the
// rotation size, and fsyncs. A batch that fails is cut off the file
// (unwrite): none of its records was acknowledged.
func (l *Log) write(chunks [][]byte, size int64) error {
	if l.size > 0 && l.size+size > l.max {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	for _, c := range chunks {
		if _, err := l.f.Write(c); err != nil {
			return l.unwrite(err)
		}
	}
	if err := unix.Fdatasync(int(l.f.Fd())); err != nil {
		return l.unwrite(err)
	}
	l.size += size
	return nil
}

// unwrite cuts what a failed batch wrote off the current file, so that
// the lines that fitted (a disk that filled in the middle of the batch)
// do not read, once space is freed, as records of what happened: the
// calls they record failed. A file that cannot be cut keeps them, and
// the next writer drops only an incomplete last line.
func (l *Log) unwrite(err error) error {
	if terr := l.f.Truncate(l.size); terr == nil {
		_ = unix.Fdatasync(int(l.f.Fd()))
	}
	return err
}

// rotate starts the next file, and makes its name durable.
func (l *Log) rotate() error {
	next := FilePath(l.path, l.index+1)
	f, err := os.OpenFile(next, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(next)); err != nil {
		f.Close()
		return err
	}
	if l.f != l.lock {
		l.f.Close()
	}
	l.f, l.size, l.index = f, 0, l.index+1
	l.wakePruner()
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close writes what was appended, brings the log within its bound (a
// prune the writer's last rotations asked for), and closes the log.
// Append fails after Close. Closing twice is a no-op.
func (l *Log) Close() error {
	l.lastPrune()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.work.Signal()
	l.mu.Unlock()
	l.flushing.Stop()
	<-l.done
	if l.pruneWake != nil {
		close(l.pruneWake)
		<-l.pruned
	}
	if l.f != l.lock {
		l.f.Close()
	}
	err := l.lock.Close()
	if lerr := l.Err(); lerr != nil {
		return lerr
	}
	return err
}
