package server

import (
	"math"
	"runtime"
	"strings"
	"testing"
)

// readAll returns the kept output after offset from as "o:…" / "e:…"
// pieces, and what readFrom reports with it.
func readAll(l *outputLog, from uint64) (string, uint64, uint64, bool) {
	chunks, next, dropped, _, closed := l.readFrom(from, math.MaxUint64)
	return printChunks(chunks, [2]bool{}), next, dropped, closed
}

// printChunks prints each chunk of a stream skip does not name as
// "o:DATA|" (stdout) or "e:DATA|" (stderr).
func printChunks(chunks []outputChunk, skip [2]bool) string {
	var b strings.Builder
	for _, c := range chunks {
		if skip[c.stream] {
			continue
		}
		if c.stream == streamStderr {
			b.WriteString("e:")
		} else {
			b.WriteString("o:")
		}
		b.Write(c.data)
		b.WriteByte('|')
	}
	return b.String()
}

func TestOutputLogKeepsOrderAcrossStreamsAndCoalescesWrites(t *testing.T) {
	l := newOutputLog(1024)
	l.writeAt(streamStdout, []byte("a"), 1)
	l.writeAt(streamStdout, []byte("b"), 1)
	l.writeAt(streamStderr, []byte("E"), 1)
	l.writeAt(streamStdout, []byte("c"), 1)
	got, next, dropped, closed := readAll(l, 0)
	if got != "o:ab|e:E|o:c|" || next != 4 || dropped != 0 || closed {
		t.Fatalf("read %q next %d dropped %d closed %v", got, next, dropped, closed)
	}
	// A reader resuming mid-chunk gets only what it has not seen.
	if got, _, _, _ := readAll(l, 1); got != "o:b|e:E|o:c|" {
		t.Fatalf("from 1: %q", got)
	}
}

func TestOutputLogDropsTheOldestAndSaysHowMuch(t *testing.T) {
	l := newOutputLog(8)
	l.writeAt(streamStdout, []byte("0123"), 1)
	l.writeAt(streamStderr, []byte("4567"), 1)
	l.writeAt(streamStdout, []byte("89"), 1)
	got, next, dropped, _ := readAll(l, 0)
	if got != "o:23|e:4567|o:89|" || next != 10 || dropped != 2 {
		t.Fatalf("read %q next %d dropped %d", got, next, dropped)
	}
	// One write larger than the whole log keeps only its tail.
	l.writeAt(streamStderr, []byte("abcdefghijklmnop"), 1)
	got, next, dropped, _ = readAll(l, 10)
	if got != "e:ijklmnop|" || next != 26 || dropped != 8 {
		t.Fatalf("after a huge write: %q next %d dropped %d", got, next, dropped)
	}
}

func TestOutputLogWakesFollowersAndEndsAtClose(t *testing.T) {
	l := newOutputLog(0)
	_, next, _, grew, _ := l.readFrom(0, math.MaxUint64)
	l.writeAt(streamStdout, []byte("x"), 1)
	select {
	case <-grew:
	default:
		t.Fatal("a write did not wake the follower")
	}
	_, _, _, grew, _ = l.readFrom(next, math.MaxUint64)
	l.close()
	select {
	case <-grew:
	default:
		t.Fatal("close did not wake the follower")
	}
	l.writeAt(streamStdout, []byte("late"), 1)
	if got, _, _, closed := readAll(l, 0); got != "o:x|" || !closed {
		t.Fatalf("after close: %q closed %v", got, closed)
	}
}

// readQuery returns what a reader asking q gets, as readAll prints it,
// and whether it is told output it asked for was dropped.
func readQuery(l *outputLog, q logQuery) (string, bool) {
	off, lost := l.startAt(q)
	if lost {
		off = 0
	}
	chunks, _, dropped, _, _ := l.readFrom(off, math.MaxUint64)
	return printChunks(chunks, q.skip), dropped > 0
}

func TestOutputLogTailSinceAndStreams(t *testing.T) {
	l := newOutputLog(1024)
	l.writeAt(streamStdout, []byte("one\ntwo\n"), 10)
	l.writeAt(streamStderr, []byte("err1\n"), 20)
	l.writeAt(streamStdout, []byte("three\nfour"), 30)
	// Writes further apart than coalesceWindow stay apart, each with its time.
	l.writeAt(streamStdout, []byte("!\n"), 30+coalesceWindow)
	all := logQuery{tail: -1}
	cases := []struct {
		q    logQuery
		want string
	}{
		{all, "o:one\ntwo\n|e:err1\n|o:three\nfour|o:!\n|"},
		{logQuery{tail: 0}, ""},
		{logQuery{tail: 1}, "o:four|o:!\n|"},
		{logQuery{tail: 2}, "o:three\nfour|o:!\n|"},
		{logQuery{tail: 3}, "e:err1\n|o:three\nfour|o:!\n|"},
		{logQuery{tail: 99}, "o:one\ntwo\n|e:err1\n|o:three\nfour|o:!\n|"},
		{logQuery{tail: 2, skip: [2]bool{streamStdout: true}}, "e:err1\n|"},
		{logQuery{tail: 3, skip: [2]bool{streamStderr: true}}, "o:two\n|o:three\nfour|o:!\n|"},
		{logQuery{tail: -1, since: 20}, "e:err1\n|o:three\nfour|o:!\n|"},
		{logQuery{tail: -1, since: 21}, "o:three\nfour|o:!\n|"},
		{logQuery{tail: 5, since: 21}, "o:three\nfour|o:!\n|"},
		{logQuery{tail: -1, since: 1 << 62}, ""},
	}
	for _, c := range cases {
		if got, lost := readQuery(l, c.q); got != c.want || lost {
			t.Errorf("%+v: %q (lost %v), want %q", c.q, got, lost, c.want)
		}
	}
	// An unterminated last line counts as one.
	u := newOutputLog(1024)
	u.writeAt(streamStdout, []byte("a\nb\nc"), 1)
	if got, _ := readQuery(u, logQuery{tail: 1}); got != "o:c|" {
		t.Errorf("tail 1 of a\\nb\\nc: %q", got)
	}
}

func TestOutputLogSaysWhenAskedForOutputWasDropped(t *testing.T) {
	const w = coalesceWindow // writes this far apart are chunks of their own
	l := newOutputLog(8)
	l.writeAt(streamStdout, []byte("old1\n"), 10*w)
	l.writeAt(streamStdout, []byte("new1\n"), 20*w)
	l.writeAt(streamStdout, []byte("new2\n"), 30*w) // drops old1 and part of new1
	for _, c := range []struct {
		q    logQuery
		lost bool
	}{
		{logQuery{tail: -1}, true},
		{logQuery{tail: 99}, true},
		{logQuery{tail: 1}, false},
		{logQuery{tail: -1, since: 20 * w}, true}, // new1 was cut
		{logQuery{tail: -1, since: 25 * w}, false},
	} {
		if _, lost := readQuery(l, c.q); lost != c.lost {
			t.Errorf("%+v: lost %v, want %v", c.q, lost, c.lost)
		}
	}
}

// readFrom with a limit returns the output a piece at a time, cutting a
// chunk where the limit falls, and the offset the next piece starts at.
func TestOutputLogReadsInPiecesOfALimit(t *testing.T) {
	l := newOutputLog(0)
	l.writeAt(streamStdout, []byte("abcd"), 1)
	l.writeAt(streamStderr, []byte("efg"), 1)
	var got strings.Builder
	for off := uint64(0); ; {
		chunks, next, _, _, _ := l.readFrom(off, 3)
		if len(chunks) == 0 {
			break
		}
		got.WriteString(printChunks(chunks, [2]bool{}))
		off = next
	}
	if want := "o:abc|o:d|e:ef|e:g|"; got.String() != want {
		t.Fatalf("read in pieces of 3: %q, want %q", got.String(), want)
	}
}

// heapAfter returns the bytes the heap holds after f has run and a
// collection, f's results still reachable through keep.
func heapAfter(f func() any) (uint64, any) {
	var ms runtime.MemStats
	kept := f()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, kept
}

// A guest's output kept for `logs` holds at most twice --log-bytes of the
// daemon's memory (plus a little), however it writes: output written a
// byte at a time to alternate streams, or a byte at a time more than
// coalesceWindow apart, is a piece per byte, each of which the daemon
// keeps with its stream and time. Each kept 1 byte of output in some 300
// bytes of memory, so that a 1 MiB log held some 300 MiB.
func TestOutputLogOfTinyWritesHoldsAtMostTwiceItsBound(t *testing.T) {
	const max = 64 << 10
	bound := uint64(2*max + minLogMemory)
	writes := map[string]func(l *outputLog, i int){
		"alternate streams": func(l *outputLog, i int) { l.writeAt(stream(i%2), []byte{'x'}, 1) },
		"a byte apart":      func(l *outputLog, i int) { l.writeAt(streamStdout, []byte{'x'}, int64(i)*2*coalesceWindow) },
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			before, _ := heapAfter(func() any { return nil })
			after, kept := heapAfter(func() any {
				l := newOutputLog(max)
				for i := range 4 * max {
					write(l, i)
				}
				return l
			})
			l := kept.(*outputLog)
			// Real memory: the pieces' buffers and the slice of them. Allow
			// twice the bound for what the count cannot see (size classes).
			if grew := int64(after) - int64(before); grew > int64(2*bound) {
				t.Errorf("a log of %d bytes (%d kept, %d pieces) grew the heap by %d bytes, more than twice its bound of %d",
					max, l.end-l.start, len(l.chunks), grew, bound)
			}
			t.Logf("%d bytes kept in %d pieces grew the heap by %d bytes", l.end-l.start, len(l.chunks), int64(after)-int64(before))
			if l.held > bound {
				t.Errorf("the log counts %d bytes held, past its bound of %d", l.held, bound)
			}
			if got, _, _, _ := readAll(l, l.end-1); got == "" {
				t.Errorf("the newest output is not kept")
			}
		})
	}
}

// Output in pieces of a line or more keeps all of --log-bytes: what a
// piece costs beside its bytes only bounds logs of tiny pieces.
func TestOutputLogOfLinesKeepsItsWholeBound(t *testing.T) {
	const max = 256 << 10
	l := newOutputLog(max)
	line := []byte(strings.Repeat("y", 79) + "\n")
	for i := range 10 * max / len(line) {
		l.writeAt(stream(i%2), line, int64(i)*2*coalesceWindow)
	}
	if kept := l.end - l.start; kept != max {
		t.Fatalf("a log of %d bytes of 80-byte lines keeps %d bytes", max, kept)
	}
}
