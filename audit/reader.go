package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Pos is where a record is: its file and line (1-based).
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

func (p Pos) String() string {
	if p.Line == 0 { // a file as a whole
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// maxLine bounds one record's line. Records are small (a receipt of a
// large revocation is the largest); a longer line is not one of ours.
const maxLine = 64 << 20

// Line is one line of a log as read: its bytes (no newline), where it is,
// and whether it ended with a newline.
type Line struct {
	Data     []byte
	Pos      Pos
	Complete bool
}

// ScanLines calls fn for each line of the log at path, in chain order,
// until fn returns an error (which ScanLines returns; errStop ends the
// scan with nil). Data is valid only during the call.
func ScanLines(path string, fn func(Line) error) error {
	return scanFiles(path, Files(path), fn)
}

// scanFiles is ScanLines of the log's files as listed once.
func scanFiles(path string, files []string, fn func(Line) error) error {
	if len(files) == 0 {
		return notFound(path)
	}
	for _, name := range files {
		if err := scanFile(name, fn); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return prunedMeanwhile(name, err)
		}
	}
	return nil
}

// errPrunedMeanwhile is a file of a log removed while it was read: the
// writer keeping the log within its bound (retain.go). Verify and Replay
// read the log again.
var errPrunedMeanwhile = errors.New("pruned while it was read")

// prunedMeanwhile is err, or for a file that is no longer there, an
// error that says why it may have gone.
func prunedMeanwhile(name string, err error) error {
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return fmt.Errorf("audit log %s was %w (its writer keeps the log within --audit-max-size, removing its oldest files): read it again", name, errPrunedMeanwhile)
}

// changed says whether the log's files or checkpoint are no longer
// those listed and read.
func changed(path string, files []string, cpSum string) bool {
	_, sum, err := ReadCheckpoint(path)
	return err != nil || sum != cpSum || !slices.Equal(files, Files(path))
}

// again runs read again, a few times, while the log is pruned under it.
func again[T any](read func() (T, error)) (T, error) {
	v, err := read()
	for i := 0; i < 10 && errors.Is(err, errPrunedMeanwhile); i++ {
		v, err = read()
	}
	return v, err
}

var errStop = errors.New("stop")

// notFound is the error of a log with no file at path: where to find one.
func notFound(path string) error {
	return fmt.Errorf("audit log %s: %w: give a log's path with --log FILE (run --audit's), or a daemon's state directory with --state DIR", path, os.ErrNotExist)
}

// openFile opens a file of a log for reading: a regular file, refused
// otherwise (regular) rather than waited on, as opening a FIFO would.
func openFile(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if err := regular(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func scanFile(name string, fn func(Line) error) error {
	f, err := openFile(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return scanReader(f, name, 1, fn)
}

// scanReader calls fn for each line r holds, first numbered first (see
// ScanLines). A line longer than maxLine ends it with an error.
func scanReader(r io.Reader, name string, first int, fn func(Line) error) error {
	br := bufio.NewReaderSize(r, 1<<16)
	var long []byte
	for n := first; ; n++ {
		data, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], data...)
			for errors.Is(err, bufio.ErrBufferFull) && len(long) <= maxLine {
				data, err = br.ReadSlice('\n')
				long = append(long, data...)
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				return fmt.Errorf("audit log %s:%d: a line longer than %d MiB, which no record is: the file is not an audit log, or was edited", name, n, maxLine>>20)
			}
			data = long
		}
		if len(data) == 0 && err == io.EOF {
			return nil
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("audit log %s:%d: %w", name, n, err)
		}
		complete := len(data) > 0 && data[len(data)-1] == '\n'
		if complete {
			data = data[:len(data)-1]
		}
		if ferr := fn(Line{Data: data, Pos: Pos{File: name, Line: n}, Complete: complete}); ferr != nil {
			return ferr
		}
		if err == io.EOF {
			return nil
		}
	}
}

// Scan calls fn with each record of the log at path, in order, checking
// the chain as Verify does: at the first place that breaks it, Scan stops
// with an error naming it (ErrBroken), and fn is given no record from it
// on. A record is given to fn once the next one shows it unchanged (its
// prev), the last once the log is read: the chain shows no edit of the
// last record, which only a head kept elsewhere shows (Verify). An
// incomplete last line (see Verify) ends the scan without error.
func Scan(path string, fn func(Record, Pos) error) error {
	cp, cpSum, err := ReadCheckpoint(path)
	if err != nil {
		return err
	}
	return scanChecked(path, cp, cpSum, fn)
}

// scanChecked is Scan of the log whose checkpoint, as its reader read it,
// is cp (nil for none), its file's SHA-256 cpSum.
func scanChecked(path string, cp *Checkpoint, cpSum string, fn func(Record, Pos) error) error {
	files := Files(path)
	v := &verifier{rep: Report{Files: files}, cpName: CheckpointPath(path), cp: cp, cpSum: cpSum}
	var err error
	var held *Record
	var heldPos Pos
	stopped := false // fn asked to stop
	give := func() error {
		err := fn(*held, heldPos)
		held, stopped = nil, errors.Is(err, errStop)
		return err
	}
	err = scanFiles(path, files, func(l Line) error {
		r, ok := v.line(l)
		if v.rep.Bad != nil {
			if held != nil && v.rep.Bad.Pos != heldPos && shows(l, held, v.prevLine) {
				if err := give(); err != nil {
					return err
				}
			}
			held = nil
			return errStop
		}
		if !ok {
			return nil
		}
		if held != nil {
			if err := give(); err != nil {
				return err
			}
		}
		held, heldPos = &r, l.Pos
		return nil
	})
	if err != nil || stopped {
		return err
	}
	if v.rep.Bad == nil {
		v.finish()
	}
	if v.rep.Bad != nil {
		if changed(path, files, v.cpSum) {
			return prunedMeanwhile(path, fs.ErrNotExist)
		}
		return &BrokenError{Path: path, Bad: *v.rep.Bad}
	}
	if held != nil {
		if err = give(); stopped {
			err = nil
		}
	}
	return err
}

// shows says whether line l, where the chain breaks, shows the record
// before it, held (whose line is heldLine), unchanged: it is the next
// record, and holds its hash. A break that does not (a record deleted or
// moved after it, a line that does not read) leaves held unconfirmed,
// and it is not passed on: it may be an edit the break hides.
func shows(l Line, held *Record, heldLine []byte) bool {
	if !l.Complete {
		return false
	}
	r, err := ParseRecord(l.Data)
	return err == nil && r.Seq == held.Seq+1 && r.Prev == hashHex(heldLine)
}

// ErrBroken is what a reader of a log whose chain is broken fails with
// (errors.Is): a BrokenError.
var ErrBroken = errors.New("the audit log's chain is broken")

// BrokenError is a log whose chain breaks at Bad: what it holds from
// there on was edited, removed or moved, and is not read.
type BrokenError struct {
	Path string
	Bad  Problem
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("audit log %s is broken at %s: nothing from there on is read, since it cannot be trusted; sandboxd audit verify reports it", e.Path, &e.Bad)
}

func (e *BrokenError) Is(target error) bool { return target == ErrBroken }

// Report is what Verify found.
type Report struct {
	Records int      `json:"records"`
	Files   []string `json:"files"`
	// HeadSeq and Head are the last good record's seq and the SHA-256 of
	// its line: keep them elsewhere to detect later removal of records at
	// the end, which no chain can show by itself.
	HeadSeq uint64 `json:"head_seq"`
	Head    string `json:"head"`
	// Bad is the first record that breaks the chain, and why; nil when
	// the log is intact.
	Bad *Problem `json:"bad,omitempty"`
	// Torn is an incomplete last line: a write a crash cut short. It was
	// never acknowledged (records are acknowledged once fsynced, whole),
	// so it is not tampering; the next writer cuts it off.
	Torn *Pos `json:"torn,omitempty"`
	// Pruned is the records removed to keep the log within its size
	// bound, which its checkpoint stands for; nil when none were.
	Pruned *Pruned `json:"pruned,omitempty"`
	// Kept is the heads given to Verify that the log still extends:
	// each record there with the hash kept. One that it does not extend
	// is Bad.
	Kept []Head `json:"kept,omitempty"`
}

// Head is a record of the log as an earlier Verify reported it (HeadSeq
// and Head): kept elsewhere, it shows later whether the log still
// extends it, which no chain shows by itself: records cut off its end, or
// the log rewritten whole with every hash recomputed.
type Head struct {
	Seq    uint64 `json:"seq"`
	SHA256 string `json:"sha256"`
}

func (h Head) String() string { return fmt.Sprintf("%d:%s", h.Seq, h.SHA256) }

// ParseHead reads a head as `audit verify` prints it to keep: SEQ:SHA256,
// the hash in lower-case hex.
func ParseHead(s string) (Head, error) {
	seqText, sum, ok := strings.Cut(s, ":")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if !ok || err != nil || seq == 0 || len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" {
		return Head{}, fmt.Errorf("head %q: want SEQ:SHA256, the head seq and its lower-case hex sha256 as audit verify prints them (for example 1843:619813c0…, all 64 digits)", s)
	}
	return Head{Seq: seq, SHA256: sum}, nil
}

// Pruned is a range of records removed past a log's size bound: the
// checkpoint file standing for them, declared by a prune record.
type Pruned struct {
	FromSeq    uint64 `json:"from_seq"`
	ToSeq      uint64 `json:"to_seq"`
	Checkpoint string `json:"checkpoint"`
}

// Problem is a record that breaks the chain.
type Problem struct {
	Pos    Pos    `json:"pos"`
	Seq    uint64 `json:"seq,omitempty"`
	Reason string `json:"reason"`
}

func (p *Problem) String() string {
	if p.Seq > 0 {
		return fmt.Sprintf("%s (seq %d): %s", p.Pos, p.Seq, p.Reason)
	}
	return fmt.Sprintf("%s: %s", p.Pos, p.Reason)
}

// verifier checks one line after another.
type verifier struct {
	rep      Report
	prevLine []byte // the previous record's line
	prevPos  Pos
	prevSeq  uint64
	pending  *Line // an incomplete line: torn if nothing follows it
	// cp is the log's checkpoint and cpSum its file's SHA-256; declared
	// is set by a prune record holding cpSum.
	cp       *Checkpoint
	cpName   string
	cpSum    string
	declared bool
	// kept are the heads to check (Verify's), each with the hash and
	// place of its record once read.
	kept []keptHead
}

// keptHead is a head Verify was given, and what the log holds at its seq.
type keptHead struct {
	Head
	found bool
	sum   string
	pos   Pos
}

// Verify reads the whole log at path and checks its chain: every line a
// record of a known version, seqs consecutive from 1, each record's prev
// the hash of the line before; and that the log still extends each head
// in kept (Head). It names the first record that fails, and why. An error
// is returned only when the log cannot be read.
func Verify(path string, kept ...Head) (Report, error) {
	return again(func() (Report, error) { return verify(path, kept) })
}

// verify is one reading of the log. A log its writer prunes meanwhile
// may read as broken (its checkpoint and files from two moments): when
// its files or checkpoint changed, the reading is errPrunedMeanwhile.
func verify(path string, kept []Head) (Report, error) {
	// The files are listed once, before they are read: one the writer
	// starts meanwhile does not make the line it was writing a cut one.
	v := &verifier{rep: Report{Files: Files(path)}, cpName: CheckpointPath(path)}
	for _, h := range kept {
		v.kept = append(v.kept, keptHead{Head: h})
	}
	var err error
	if v.cp, v.cpSum, err = ReadCheckpoint(path); err != nil {
		return v.rep, err
	}

	err = scanFiles(path, v.rep.Files, func(l Line) error {
		if v.rep.Bad != nil {
			return errStop
		}
		v.line(l)
		return nil
	})
	if verifyScanned != nil {
		verifyScanned()
	}
	v.finish()
	if v.rep.Bad != nil && changed(path, v.rep.Files, v.cpSum) {
		return v.rep, prunedMeanwhile(path, fs.ErrNotExist)
	}
	return v.rep, err
}

// verifyScanned, if set, runs once Verify has read the log: tests set it.
var verifyScanned func()

// VerifyReader checks a log held in one stream (see Verify).
func VerifyReader(r io.Reader, name string) (Report, error) {
	v := &verifier{}
	err := scanReader(r, name, 1, func(l Line) error {
		if v.rep.Bad != nil {
			return errStop
		}
		v.line(l)
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	v.rep.Files = []string{name}
	v.finish()
	return v.rep, err
}

func (v *verifier) bad(pos Pos, seq uint64, format string, args ...any) {
	v.rep.Bad = &Problem{Pos: pos, Seq: seq, Reason: fmt.Sprintf(format, args...)}
}

// line checks line l against those before it, and returns its record;
// ok is false for a line that is not one (incomplete, or bad).
func (v *verifier) line(l Line) (r Record, ok bool) {
	if v.pending != nil {
		// An incomplete line with more after it: not a crash's.
		v.bad(v.pending.Pos, 0, "the line is not terminated and more follows it: the file was cut or joined")
		return r, false
	}
	if !l.Complete {
		if !bytes.HasPrefix(l.Data, recordStart) && !bytes.HasPrefix(recordStart, l.Data) {
			v.bad(l.Pos, 0, "the last line is incomplete and does not start as a record does: it was not written by sandboxd (a crash leaves the start of a record), or was edited")
			return r, false
		}
		cp := l
		cp.Data = nil
		v.pending = &cp
		return r, false
	}
	r, err := ParseRecord(l.Data)
	if err != nil {
		v.bad(l.Pos, 0, "%v", err)
		return r, false
	}
	v.check(r, l)
	if r.Pruned != nil && v.cp != nil && r.Pruned.Checkpoint == v.cpSum {
		v.declared = true
	}
	if v.rep.Bad == nil && v.rep.Pruned != nil && r.Seq == v.cp.Seq && hashHex(l.Data) != v.cp.Hash {
		v.bad(l.Pos, r.Seq, "the checkpoint %s stands for the records up to this one, and holds another hash of it: one of them was changed after it was written", v.cpName)
	}
	if v.rep.Bad == nil {
		v.prevLine = append(v.prevLine[:0], l.Data...)
		v.prevPos, v.prevSeq = l.Pos, r.Seq
		v.rep.Records++
		for i := range v.kept {
			if k := &v.kept[i]; k.Seq == r.Seq {
				k.found, k.sum, k.pos = true, hashHex(l.Data), l.Pos
			}
		}
	}
	return r, v.rep.Bad == nil
}

// check checks record r, on line l, against the one before it.
func (v *verifier) check(r Record, l Line) {
	switch {
	case v.standsFor(r) && v.cp.FromPrev != "" && v.cp.FromPrev != hashHex(v.prevLine):
		v.bad(v.prevPos, v.prevSeq, "the record was changed after it was written: the checkpoint %s, which stands for the records after it, holds another hash of it", v.cpName)
		v.rep.Records-- // the record before, counted as read, is the bad one
	case v.standsFor(r):
		v.rep.Pruned = &Pruned{FromSeq: v.cp.FromSeq, ToSeq: r.Seq - 1, Checkpoint: v.cpName}
	case v.prevSeq == 0 && (r.Seq != 1 || r.Prev != ""):
		v.bad(l.Pos, r.Seq, "the log starts at seq %d, not 1: its beginning (an earlier file, or its first records) was removed", r.Seq)
	case v.prevSeq != 0 && r.Seq == v.prevSeq+1 && r.Prev != hashHex(v.prevLine):
		v.bad(v.prevPos, v.prevSeq, "the record was changed after it was written: the next one (%s) holds another hash of it (or its own prev was edited)", l.Pos)
		v.rep.Records-- // the record before, counted as read, is the bad one
	case v.prevSeq != 0 && r.Seq <= v.prevSeq:
		v.bad(l.Pos, r.Seq, "seq %d after seq %d: records were reordered or repeated", r.Seq, v.prevSeq)
	case v.prevSeq != 0 && r.Seq > v.prevSeq+1:
		v.bad(l.Pos, r.Seq, "seq %d follows seq %d: %d record(s) before this one were deleted or moved", r.Seq, v.prevSeq, r.Seq-v.prevSeq-1)
	}
}

// standsFor says whether the log's checkpoint stands for the records
// between the last one read and r: those a prune removed. Some it stands
// for may still be there (a prune cut short before it removed them, or
// one under way): the line of its last record must then hash to its
// Hash (line).
func (v *verifier) standsFor(r Record) bool {
	cp := v.cp
	if cp == nil || v.rep.Pruned != nil || v.prevSeq+1 != cp.FromSeq || r.Seq <= cp.FromSeq {
		return false
	}
	return r.Seq <= cp.Seq || (r.Seq == cp.Seq+1 && r.Prev == cp.Hash)
}

func (v *verifier) finish() {
	if v.rep.Bad == nil && v.rep.Pruned != nil && !v.declared {
		v.bad(Pos{File: v.cpName}, 0, "the checkpoint stands for seq %d to %d, and no prune record in the log holds its SHA-256: it was changed after it was written", v.cp.FromSeq, v.cp.Seq)
	}
	v.checkReachedCheckpoint()
	if v.rep.Bad == nil && v.pending != nil {
		p := v.pending.Pos
		if len(v.rep.Files) > 0 && p.File != v.rep.Files[len(v.rep.Files)-1] {
			v.bad(p, 0, "the last line of a file that is not the log's last is incomplete: the file was cut")
		} else {
			v.rep.Torn = &p
		}
	}
	if v.prevSeq > 0 {
		v.rep.HeadSeq, v.rep.Head = v.prevSeq, hashHex(v.prevLine)
	}
	for _, k := range v.kept {
		if v.rep.Bad != nil {
			return
		}
		v.checkKept(k)
	}
}

// checkReachedCheckpoint checks that a log with a checkpoint reaches
// the records it stands for: a prune appends its record, which declares
// the checkpoint, before it puts the checkpoint in place, and removes
// neither the first file nor the last, so the log goes on past them
// (past the checkpoint, or through records a prune cut short left). One
// that ends before the checkpoint's last record had its end cut off.
func (v *verifier) checkReachedCheckpoint() {
	if v.rep.Bad != nil || v.cp == nil || v.rep.Pruned != nil || v.prevSeq >= v.cp.Seq {
		return
	}
	at := Pos{File: v.prevPos.File, Line: v.prevPos.Line}
	if at.File == "" && len(v.rep.Files) > 0 {
		at.File = v.rep.Files[0] // no record at all
	}
	v.bad(at, v.prevSeq, "the log ends at seq %d, and its checkpoint %s stands for seq %d to %d, which a prune removed after a record that declares it: the records from seq %d on were cut off its end (its later files removed)",
		v.prevSeq, v.cpName, v.cp.FromSeq, v.cp.Seq, v.prevSeq+1)
}

// checkKept checks that the log, its chain intact, still extends head k:
// the record at its seq is there with its hash, or, among the records a
// prune removed, is the checkpoint's last with that hash. A head among
// the other removed records cannot be checked, and is said so.
func (v *verifier) checkKept(k keptHead) {
	last := Pos{File: v.prevPos.File, Line: v.prevPos.Line}
	switch {
	case k.found && k.sum == k.SHA256, !k.found && v.cp != nil && k.Seq == v.cp.Seq && v.cp.Hash == k.SHA256:
		v.rep.Kept = append(v.rep.Kept, k.Head)
	case k.found:
		v.bad(k.pos, k.Seq, "the record hashes to sha256 %s, not the %s kept as this head: the log was rewritten at or before it since that head was taken", k.sum, k.SHA256)
	case k.Seq > v.prevSeq:
		v.bad(last, v.prevSeq, "the log ends at seq %d, and the head kept is seq %d: records %d to %d were cut off its end since that head was taken", v.prevSeq, k.Seq, v.prevSeq+1, k.Seq)
	case v.cp != nil && k.Seq == v.cp.Seq:
		v.bad(Pos{File: v.cpName}, k.Seq, "the checkpoint holds sha256 %s of this record, not the %s kept as this head: the log was rewritten at or before it since that head was taken", v.cp.Hash, k.SHA256)
	case v.cp != nil && k.Seq >= v.cp.FromSeq && k.Seq < v.cp.Seq:
		v.bad(Pos{File: v.cpName}, k.Seq, "the record was removed to keep the log within --audit-max-size (records %d to %d); the checkpoint keeps the hash of seq %d only, so this head cannot be checked: keep a newer head (the one verify prints now)", v.cp.FromSeq, v.cp.Seq, v.cp.Seq)
	default:
		v.bad(last, k.Seq, "no record of seq %d is in the log: the head kept is not this log's", k.Seq)
	}
}

func hashHex(line []byte) string {
	h := sha256.Sum256(line)
	return hex.EncodeToString(h[:])
}
