package audit

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tamperings are edits by hand of a log of an open record and grants c0…
// c4 (lines 1 to 6), each with the line a reader must name and the grant
// it must never pass on (edited, it is a grant the writer never made).
var tamperings = []struct {
	name   string
	tamper func([][]byte) [][]byte
	line   int
	reason string
}{
	{"edited", func(ls [][]byte) [][]byte {
		ls[3] = bytes.Replace(ls[3], []byte(`"c2"`), []byte(`"c9"`), 1)
		return ls
	}, 4, "changed after it was written"},
	{"deleted", func(ls [][]byte) [][]byte { return append(ls[:3:3], ls[4:]...) }, 4, "deleted"},
	{"reordered", func(ls [][]byte) [][]byte {
		ls[3], ls[4] = ls[4], ls[3]
		return ls
	}, 4, "deleted or moved"},
	{"repeated", func(ls [][]byte) [][]byte { return append(ls[:4:4], ls[3:]...) }, 5, "reordered or repeated"},
	// The deletion hides the edit: no record after the edited one shows it
	// unchanged, so it is not passed on either.
	{"edited, and the next deleted", func(ls [][]byte) [][]byte {
		ls[3] = bytes.Replace(ls[3], []byte(`"c2"`), []byte(`"c9"`), 1)
		return append(ls[:4:4], ls[5:]...)
	}, 5, "deleted"},
	{"a torn line before the last", func(ls [][]byte) [][]byte {
		ls[2] = ls[2][:len(ls[2])/2]
		return ls
	}, 3, "not a JSON record"},
}

// The readers that answer from a log (Scan, and Replay, which audit
// graph, who-can, trace and what-if --log use, and the daemon's --at)
// checked nothing of its chain: a log edited by hand was answered from as
// if it were whole, the edited grant c9 in the graph. They fail, naming
// the first bad place as verify does, and pass on no record from it on.
func TestReadersOfATamperedLogSayWhereItBreaks(t *testing.T) {
	for _, tc := range tamperings {
		t.Run(tc.name, func(t *testing.T) {
			path := writeLog(t, 5, Options{})
			rewrite(t, path, tc.tamper(lines(t, path)))
			var seen []string
			err := Scan(path, func(r Record, p Pos) error {
				if p.Line >= tc.line || r.Cap != nil && r.Cap.ID == "c9" {
					t.Errorf("Scan passed on %s (%s) of a log broken at line %d", p, r.Type, tc.line)
				}
				seen = append(seen, p.String())
				return nil
			})
			at := path + ":" + strconv.Itoa(tc.line)
			if err == nil || !strings.Contains(err.Error(), at) || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("Scan: %v (after %v), want an error naming %s: %q", err, seen, at, tc.reason)
			}
			for _, when := range []time.Time{{}, time.Now().Add(time.Hour)} {
				g, err := Replay(path, when)
				if err == nil || !strings.Contains(err.Error(), at) {
					t.Errorf("Replay(%v): %v, want an error naming %s", when, err, at)
				}
				if g != nil {
					if _, ok := g.Node("c9"); ok {
						t.Errorf("Replay(%v) holds the edited grant c9", when)
					}
				}
			}
		})
	}
}

// A file of the log missing in the middle: the readers used to go on past
// the gap as if the records in it had never been.
func TestReadersOfALogWithAMiddleFileRemovedSayWhere(t *testing.T) {
	path := writeLog(t, 50, Options{MaxFileBytes: 1024})
	files := Files(path)
	if err := os.Rename(files[len(files)-1], files[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := Replay(path, time.Time{}); err == nil || !strings.Contains(err.Error(), files[1]+":1") {
		t.Fatalf("Replay: %v, want an error naming %s:1", err, files[1])
	}
}

// audit log --follow printed an edited log as if it were whole. It reads
// past a gap (files moved aside, or a prune), as documented, but a record
// edited, moved back or repeated among the records it reads ends it with
// an error naming the place, as verify does.
func TestFollowOfAnEditedLogSaysWhere(t *testing.T) {
	for _, tc := range tamperings {
		if tc.name == "deleted" || tc.name == "a torn line before the last" {
			continue // a gap Follow reads past; a line Follow reports as not a record
		}
		t.Run(tc.name, func(t *testing.T) {
			path := writeLog(t, 5, Options{})
			rewrite(t, path, tc.tamper(lines(t, path)))
			tl := newTail(path)
			_, err := tl.read(func(r Record, p Pos) error {
				if p.Line >= tc.line || r.Cap != nil && r.Cap.ID == "c9" {
					t.Errorf("follow passed on %s (%s) of a log broken at line %d", p, r.Type, tc.line)
				}
				return nil
			})
			at := path + ":" + strconv.Itoa(tc.line)
			if err == nil || !strings.Contains(err.Error(), at) || !errors.Is(err, ErrBroken) {
				t.Fatalf("follow: %v, want the log broken at %s", err, at)
			}
		})
	}
}

// A prune removes the record that held the hash of the first file's last
// record (its next one's prev): verify and the readers passed an edit of
// that record, which nothing else in the log covered, as whole. The
// checkpoint keeps that hash (from_prev), and the edit is found there.
func TestAnEditOfTheFirstFilesLastRecordInAPrunedLogIsFound(t *testing.T) {
	path := writeLog(t, 400, Options{MaxFileBytes: 2048, MaxTotalBytes: 8192})
	if cp, _, err := ReadCheckpoint(path); err != nil || cp == nil {
		t.Fatalf("the log was not pruned: checkpoint %v, %v", cp, err)
	}
	ls := lines(t, path)
	if len(ls[len(ls)-1]) == 0 {
		ls = ls[:len(ls)-1]
	}
	last := len(ls) // the first file's last line
	ls[last-1] = bytes.Replace(ls[last-1], []byte(`"fd_read"`), []byte(`"fd_write"`), 1)
	rewrite(t, path, ls)
	at := path + ":" + strconv.Itoa(last)
	if rep, err := Verify(path); err != nil || rep.Bad == nil || rep.Bad.Pos.String() != at {
		t.Errorf("Verify: %v, %+v; want the log broken at %s", err, rep.Bad, at)
	}
	err := Scan(path, func(r Record, p Pos) error {
		if r.Cap != nil && r.Cap.Base == "fd_write" {
			t.Errorf("Scan passed on the edited record at %s", p)
		}
		return nil
	})
	if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), at) {
		t.Errorf("Scan: %v, want the log broken at %s", err, at)
	}
}
