package server

import (
	"bytes"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/caps"
)

// DefaultLogBytes is how much of each guest's output the daemon keeps for
// `sandboxd logs` when LogBytes is not set.
const DefaultLogBytes = 1 << 20

// stream names a guest's output stream; the values are the API's
// StdStream enumerants.
type stream uint8

const (
	streamStdout stream = iota
	streamStderr
)

// outputChunk is a piece of a guest's output, in the order it was written.
type outputChunk struct {
	stream stream
	data   []byte
	// time is when its first byte was written (Unix nanoseconds): writes
	// are joined into one chunk only within coalesceWindow of it.
	time int64
	// buf is the capacity of data's buffer as it was allocated, which
	// data sliced from the front still holds (outputLog.held).
	buf int
}

// heldBytes is what c counts in outputLog.held.
func (c *outputChunk) heldBytes() uint64 { return uint64(c.buf) + chunkCost }

// newChunk is a chunk of a copy of p, in a buffer of p's size.
func newChunk(s stream, p []byte, now int64) outputChunk {
	data := bytes.Clone(p)
	return outputChunk{stream: s, data: data, time: now, buf: cap(data)}
}

// outputLog keeps the most recent output of one guest, stdout and stderr
// interleaved in the order written, up to max bytes, and lets readers
// follow it as it grows. Writing never blocks on readers: a reader that
// falls behind by more than max bytes loses the oldest output and is told
// how much.
type outputLog struct {
	max uint64

	mu     sync.Mutex
	chunks []outputChunk
	start  uint64 // offset of the first kept byte since the guest started
	end    uint64 // offset after the last byte written
	closed bool
	grew   chan struct{} // closed (and replaced) when output arrives or the log closes
	// evicted is the time of the newest output dropped to keep max bytes
	// (0: none): a reader asking for output since a later time lost none.
	evicted int64
	// held is the memory the kept output takes as counted: each chunk's
	// buffer (its capacity) and chunkCost. Output in tiny pieces (a byte at
	// a time to alternate streams, or more than coalesceWindow apart) is a
	// chunk per byte: the oldest chunks go once held passes maxHeld, so
	// that such a log holds about what its bytes would, not 300 times that.
	held uint64
	// charge is the memory budget of the guest's user (nil: none), which
	// held counts against while the guest runs: charged is what it has
	// taken. Output past the budget pushes the guest's own oldest output
	// out, never another guest's launch or write. The log of an ended
	// guest gives its charge back (close).
	charge  caps.MemoryCharge
	charged uint64
}

// maxChunk is how large a chunk grows by coalescing small writes; it keeps
// per-write overhead low for guests that write a byte at a time.
// coalesceWindow is how long after a chunk's first write a write may
// still join it, so that each chunk's time is within it of each byte's.
// chunkCost is what a chunk costs beside its buffer, as held counts it:
// its entry in the chunks slice (40 bytes, and that slice's room to grow)
// and its buffer's rounding to an allocation size. minLogMemory is what a
// log may hold, as counted, whatever its max (a log of a few bytes still
// keeps its newest chunks).
const (
	chunkCost    = 64
	minLogMemory = 64 << 10
)

const (
	maxChunk       = 4 << 10
	coalesceWindow = int64(time.Millisecond)
)

func newOutputLog(max uint64) *outputLog {
	if max == 0 {
		max = DefaultLogBytes
	}
	return &outputLog{max: max, grew: make(chan struct{})}
}

// writeAt appends p to the log, written at now (Unix nanoseconds). It
// copies p.
func (l *outputLog) writeAt(s stream, p []byte, now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.appendLocked(s, p, now)
}

// record appends p to the log, written now, and takes sink's next turn if
// sink is not nil, under the log's lock: the log and the attached client
// then get the guest's writes, from all its holders of both streams, in
// one order, with times that never go back. It copies p.
func (l *outputLog) record(s stream, p []byte, sink *outputSink) (now int64, turn uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now = time.Now().UnixNano()
	if sink != nil {
		turn = sink.take()
	}
	l.appendLocked(s, p, now)
	return now, turn
}

// appendLocked is writeAt with l.mu held.
func (l *outputLog) appendLocked(s stream, p []byte, now int64) {
	if len(p) == 0 || l.closed {
		return
	}
	if uint64(len(p)) >= l.max { // only the tail of a huge write can be kept
		l.end += uint64(len(p))
		l.start = l.end - l.max
		if len(l.chunks) > 0 || l.start > 0 {
			l.evicted = now
		}
		clear(l.chunks)
		l.chunks = append(l.chunks[:0], newChunk(s, p[uint64(len(p))-l.max:], now))
		l.held = l.chunks[0].heldBytes()
	} else if n := len(l.chunks); n > 0 && l.chunks[n-1].stream == s && len(l.chunks[n-1].data)+len(p) <= maxChunk && now-l.chunks[n-1].time < coalesceWindow {
		l.end += uint64(len(p))
		c := &l.chunks[n-1]
		room := cap(c.data)
		c.data = append(c.data, p...)
		if cap(c.data) != room { // a new buffer, the old one let go
			l.held += uint64(cap(c.data)) - uint64(c.buf)
			c.buf = cap(c.data)
		}
	} else {
		// A buffer of the write's size: a chunk of one write (a line
		// written alone, a byte) holds what it keeps. Writes joining it
		// grow it as append does.
		l.end += uint64(len(p))
		l.chunks = append(l.chunks, newChunk(s, p, now))
		l.held += l.chunks[len(l.chunks)-1].heldBytes()
	}
	l.evict()
	l.settleCharge()
	close(l.grew)
	l.grew = make(chan struct{})
}

// evict drops the oldest output until at most max bytes are kept, and
// the oldest chunks until they hold at most maxHeld (but for the newest).
func (l *outputLog) evict() {
	kept := l.end - l.start
	for kept > l.max && len(l.chunks) > 0 {
		c := &l.chunks[0]
		over := kept - l.max
		l.evicted = c.time
		if uint64(len(c.data)) <= over {
			kept -= l.dropOldest()
			continue
		}
		// The buffer stays whole behind the slice, and so in held.
		c.data = c.data[over:]
		l.start += over
		kept -= over
	}
	for l.held > l.maxHeld() && len(l.chunks) > 1 {
		l.evicted = l.chunks[0].time
		l.dropOldest()
	}
}

// settleCharge makes charged what held is: it takes more from charge, or
// drops the oldest chunks (the newest too, if need be) until what is left
// fits, or gives back what the log no longer holds.
func (l *outputLog) settleCharge() {
	if l.charge == nil {
		return
	}
	for l.held > l.charged && len(l.chunks) > 0 && !l.charge.Take(int64(l.held-l.charged)) {
		l.evicted = l.chunks[0].time
		l.dropOldest()
	}
	if l.held < l.charged {
		l.charge.Give(int64(l.charged - l.held))
	}
	l.charged = l.held
}

// maxHeld is the most memory the log holds, as held counts it: twice max,
// so that output in chunks of a line or more keeps all of max, and at
// least minLogMemory.
func (l *outputLog) maxHeld() uint64 { return 2*l.max + minLogMemory }

// dropOldest drops the oldest chunk and returns how many bytes it kept.
func (l *outputLog) dropOldest() uint64 {
	c := l.chunks[0]
	n := uint64(len(c.data))
	l.start += n
	l.held -= c.heldBytes()
	l.chunks[0] = outputChunk{}
	l.chunks = l.chunks[1:]
	return n
}

// close marks the end of the output: followers return once they have read
// everything.
func (l *outputLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		if l.charge != nil {
			l.charge.Give(int64(l.charged))
			l.charge, l.charged = nil, 0
		}
		close(l.grew)
	}
}

// readFrom returns copies of the output after offset from, at most limit
// bytes of it, the offset to read from next, how many bytes after from
// were already discarded, a channel closed when more output arrives, and
// whether the log is closed (no more output will come).
func (l *outputLog) readFrom(from, limit uint64) (chunks []outputChunk, next, dropped uint64, grew <-chan struct{}, closed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if from < l.start {
		dropped = l.start - from
		from = l.start
	}
	off, next := l.start, from
	for _, c := range l.chunks {
		n := uint64(len(c.data))
		if off+n <= next {
			off += n
			continue
		}
		if limit == 0 {
			break
		}
		data := c.data[next-off:]
		data = data[:min(uint64(len(data)), limit)]
		chunks = append(chunks, outputChunk{stream: c.stream, data: bytes.Clone(data), time: c.time})
		limit -= uint64(len(data))
		next += uint64(len(data))
		off += n
	}
	return chunks, next, dropped, l.grew, l.closed
}

// size is the offset after the last byte written.
func (l *outputLog) size() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.end
}

// logQuery is what a reader of the log asks for (Guest.logs' parameters).
type logQuery struct {
	tail  int64 // the last tail lines only; < 0: all
	since int64 // output written at or after since only (Unix nanoseconds); 0: all
	skip  [2]bool
}

// startAt returns the offset a reader asking q starts reading at, and
// whether output it asks for was already dropped (the reader then reads
// from 0, and readFrom says how much).
//
// since selects whole chunks, by the time of their first byte. tail
// counts lines, newline-terminated but for a last unterminated one, in
// the streams q does not skip, after since.
func (l *outputLog) startAt(q logQuery) (off uint64, lost bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	first, off := 0, l.start
	for first < len(l.chunks) && l.chunks[first].time < q.since {
		off += uint64(len(l.chunks[first].data))
		first++
	}
	sinceLost := l.start > 0 && (q.since == 0 || q.since <= l.evicted)
	if q.tail == 0 {
		return l.end, false
	}
	if q.tail < 0 {
		return off, off == l.start && sinceLost
	}
	lines, end := int64(0), l.end
	last := true // the next byte seen is the last one selected
	for i := len(l.chunks) - 1; i >= first; i-- {
		c := l.chunks[i]
		end -= uint64(len(c.data))
		if q.skip[c.stream] {
			continue
		}
		d := c.data
		if last && len(d) > 0 {
			last = false
			if d[len(d)-1] == '\n' {
				d = d[:len(d)-1] // it ends the last line
			}
		}
		for {
			j := bytes.LastIndexByte(d, '\n')
			if j < 0 {
				break
			}
			if lines++; lines == q.tail {
				return end + uint64(j) + 1, false
			}
			d = d[:j]
		}
	}
	return off, off == l.start && sinceLost
}

// streamWriter is the io.Writer a guest's stdout or stderr writes into. It
// is safe for concurrent use (the log's lock orders writes, the sink sends
// them in that order), as a caps.StopWriter must be.
type streamWriter struct {
	log    *outputLog
	stream stream
	sink   *outputSink // nil when no client is attached
}

func (w *streamWriter) Write(p []byte) (int, error) { return w.WriteUntil(p, nil, nil) }

// WriteUntil writes p to the kept log and to the attached client, whose
// acknowledgement it may wait for until revoked or ended is closed
// (caps.StopWriter).
func (w *streamWriter) WriteUntil(p []byte, revoked, ended <-chan struct{}) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	now, turn := w.log.record(w.stream, p, w.sink)
	if w.sink != nil {
		w.sink.write(turn, w.stream, p, now, writeStops{revoked, ended})
	}
	return len(p), nil
}
