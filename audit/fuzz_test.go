package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzVerifyReader feeds arbitrary bytes to the verifier as a log. It
// must never panic, must name a line that exists when it finds a bad
// record, and must count as good only complete lines that parse.
func FuzzVerifyReader(f *testing.F) {
	f.Add([]byte(`{"v":1,"seq":1,"time":"2026-01-01T00:00:00Z","type":"open","prev":""}` + "\n"))
	f.Add([]byte(`{"v":1,"seq":1,"type":"open","prev":""}` + "\n" + `{"v":1,"seq":2,"type":"grant","prev":"00"}` + "\n"))
	f.Add([]byte(`{"v":2,"seq":1,"type":"open"}`))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := VerifyReader(bytes.NewReader(data), "fuzz")
		if err != nil {
			t.Fatalf("reading from memory failed: %v", err)
		}
		n := bytes.Count(data, []byte{'\n'})
		if len(data) > 0 && data[len(data)-1] != '\n' {
			n++
		}
		if rep.Records > n {
			t.Fatalf("%d good records in %d lines", rep.Records, n)
		}
		if rep.Bad != nil && (rep.Bad.Pos.Line < 1 || rep.Bad.Pos.Line > n) {
			t.Fatalf("bad line %d of %d", rep.Bad.Pos.Line, n)
		}
		if rep.Bad == nil && rep.Torn == nil && rep.Records != n {
			t.Fatalf("clean report of %d records for %d lines", rep.Records, n)
		}
	})
}

// FuzzParseRecord checks that a line that parses holds a record of this
// version with a type and seq, and that parsing never panics.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"v":1,"seq":3,"time":"2026-01-01T00:00:00Z","type":"revoke","prev":"ab","receipt":{"root":"c1","revoked":["c1","c2"],"took_ns":5}}`))
	f.Add([]byte(`{"v":1,"seq":1,"type":"grant","cap":{"id":"c","kind":"dir","base":"fd_read|bit60","inheriting":"none","edge":"grant"}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseRecord(line)
		if err != nil {
			return
		}
		if r.V != Version || r.Type == "" || r.Seq == 0 {
			t.Fatalf("accepted %+v", r)
		}
		if r.Cap != nil {
			_, _ = ParseRights(r.Cap.Base)
		}
	})
}

// FuzzQueries runs what `sandboxd audit` and `policy suggest` do on a log
// (replay it, then trace, what-if and who-can on each capability in it;
// suggest a policy from it) on any bytes: each answers or says what is
// wrong, and none panics or loops, whatever a corrupt or forged log holds.
func FuzzQueries(f *testing.F) {
	f.Add([]byte(`{"v":1,"seq":1,"type":"grant","cap":{"id":"cx","kind":"dir","holder":"g-1","base":"fd_read","inheriting":"none","edge":"grant","parent":"cx","origin":"dir:/srv","resource":"dir /srv"}}` + "\n"))
	f.Add([]byte(`{"v":1,"seq":1,"type":"guest-start","guest":{"id":"g-1","module":"m.wasm","sha256":"ab"}}` + "\n" +
		`{"v":1,"seq":2,"type":"grant","cap":{"id":"c1","kind":"dial","name":"db","holder":"g-1","base":"fd_read","inheriting":"none","edge":"grant","origin":"sock:db:dial","resource":"dial 127.0.0.1:1"}}` + "\n" +
		`{"v":1,"seq":3,"type":"delegate","cap":{"id":"c2","kind":"dial","holder":"g-2","base":"fd_read","inheriting":"none","edge":"delegate","parent":"c1"}}` + "\n" +
		`{"v":1,"seq":4,"type":"guest-exec","guest":{"id":"g-1","module":"n.wasm","sha256":"cd"}}` + "\n" +
		`{"v":1,"seq":5,"type":"revoke","cap":{"id":"c1","kind":"dial","base":"fd_read","inheriting":"none","edge":"grant"},"receipt":{"root":"c1","revoked":["c1","c2"]}}` + "\n"))
	f.Add([]byte(`{"v":1,"seq":1,"type":"grant"}` + "\n" + `{"v":1,"seq":2,"type":"guest-exec"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		askAll(path)
	})
}

// FuzzCheckpoint reads a pruned log beside any checkpoint file (a log
// handed over for inspection holds what its sender chose): verify, replay
// and the queries each answer or say what is wrong, and none panics or
// loops.
func FuzzCheckpoint(f *testing.F) {
	src := prunedLog(f)
	seed, err := os.ReadFile(CheckpointPath(src))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"v":1,"from_seq":1,"seq":1,"hash":"","graph":{"caps":[{"id":"a","parent":"b"},{"id":"b","parent":"a"}]}}`))
	f.Add([]byte(`{"v":1,"from_seq":99,"seq":2,"graph":{}}`))
	files := Files(src)
	f.Fuzz(func(t *testing.T, cp []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "audit.jsonl")
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(name)), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(CheckpointPath(path), cp, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _ = Verify(path)
		askAll(path)
	})
}

// askAll replays the log at path and asks every query of each capability
// in it, then suggests a policy from it, as `sandboxd audit` and `policy
// suggest` do.
func askAll(path string) {
	if g, err := Replay(path, time.Time{}); err == nil {
		for id := range g.nodes {
			_, _ = g.Trace(id)
			_, _ = g.WhatIf(id)
			_ = g.WhoCan("dir:" + id)
		}
	}
	_, _ = Suggest(path, "")
}
