package server

import (
	"math"
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
