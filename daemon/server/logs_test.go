package server

import (
	"strings"
	"testing"
)

// readAll returns the kept output after offset from as "o:…" / "e:…"
// pieces, and what readFrom reports with it.
func readAll(l *outputLog, from uint64) (string, uint64, uint64, bool) {
	chunks, next, dropped, _, closed := l.readFrom(from)
	var b strings.Builder
	for _, c := range chunks {
		if c.stream == streamStderr {
			b.WriteString("e:")
		} else {
			b.WriteString("o:")
		}
		b.Write(c.data)
		b.WriteByte('|')
	}
	return b.String(), next, dropped, closed
}

func TestOutputLogKeepsOrderAcrossStreamsAndCoalescesWrites(t *testing.T) {
	l := newOutputLog(1024)
	l.write(streamStdout, []byte("a"))
	l.write(streamStdout, []byte("b"))
	l.write(streamStderr, []byte("E"))
	l.write(streamStdout, []byte("c"))
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
	l.write(streamStdout, []byte("0123"))
	l.write(streamStderr, []byte("4567"))
	l.write(streamStdout, []byte("89"))
	got, next, dropped, _ := readAll(l, 0)
	if got != "o:23|e:4567|o:89|" || next != 10 || dropped != 2 {
		t.Fatalf("read %q next %d dropped %d", got, next, dropped)
	}
	// One write larger than the whole log keeps only its tail.
	l.write(streamStderr, []byte("abcdefghijklmnop"))
	got, next, dropped, _ = readAll(l, 10)
	if got != "e:ijklmnop|" || next != 26 || dropped != 8 {
		t.Fatalf("after a huge write: %q next %d dropped %d", got, next, dropped)
	}
}

func TestOutputLogWakesFollowersAndEndsAtClose(t *testing.T) {
	l := newOutputLog(0)
	_, next, _, grew, _ := l.readFrom(0)
	l.write(streamStdout, []byte("x"))
	select {
	case <-grew:
	default:
		t.Fatal("a write did not wake the follower")
	}
	_, _, _, grew, _ = l.readFrom(next)
	l.close()
	select {
	case <-grew:
	default:
		t.Fatal("close did not wake the follower")
	}
	l.write(streamStdout, []byte("late"))
	if got, _, _, closed := readAll(l, 0); got != "o:x|" || !closed {
		t.Fatalf("after close: %q closed %v", got, closed)
	}
}
