package audit

import (
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/policies"
)

// prunedGuestLog is a log whose guest g-b (module b.wasm, uid 1000) was
// started, and granted a directory, in records a prune then removed; after
// the prune g-b passes a copy of its grant to g-c (c.wasm), launched
// after it. It returns the log's path.
func prunedGuestLog(t *testing.T) string {
	t.Helper()
	k, l, path, root := boundedKernel(t, 8192, false)
	churn(t, k, root, 30) // past the first file, which a prune keeps
	d, err := caps.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, c := &caps.Holder{ID: "g-b"}, &caps.Holder{ID: "g-c"}
	base, inh := caps.GrantRights(caps.KindDirectory, true)
	grant := k.MintBy(ByText(1000, "alice"), b, d, base, inh, "data", "dir:/srv/b=data:ro")
	start := func(id, module string, sha byte) {
		_, err := l.Append(Record{Type: TypeGuestStart, Guest: &GuestRecord{ID: id, Module: module, SHA256: strings.Repeat(string("0123456789abcdef"[sha]), 64), Principal: "alice", UID: 1000}})
		if err != nil {
			t.Fatal(err)
		}
	}
	start("g-b", "b.wasm", 0xb)
	churn(t, k, root, 300)
	l.maxTotal = 8192
	if err := l.prune(); err != nil {
		t.Fatal(err)
	}
	if cp, _, err := ReadCheckpoint(path); err != nil || cp == nil {
		t.Fatalf("no checkpoint: %v", err)
	}
	if _, err := k.Derive(grant, caps.Derivation{Edge: caps.EdgeDelegate, Name: "data", Base: base, Inheriting: inh, Origin: "cap:" + string(grant.ID())}); err != nil {
		t.Fatal(err)
	}
	for _, x := range k.Snapshot() {
		if x.Parent == grant.ID() {
			cx, _ := k.Lookup(x.ID)
			if err := k.Adopt(cx, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	start("g-c", "c.wasm", 0xc)
	return path
}

// A guest whose start and grant a prune removed still gets its rules:
// the checkpoint stands for them. policy suggest --from-audit read only
// the records left, and wrote no rule for it.
func TestSuggestOfAPrunedLogGoesOnFromItsCheckpoint(t *testing.T) {
	path := prunedGuestLog(t)
	out, p := suggested(t, path)
	shaB, shaC := strings.Repeat("b", 64), strings.Repeat("c", 64)
	var grant, del bool
	for _, r := range p.Rules() {
		if r.Module == nil || len(r.Module.SHA256) != 1 || r.Module.SHA256[0] != shaB {
			continue
		}
		switch r.Type {
		case policies.TypeGrant:
			grant = r.Subject != nil && len(r.Subject.UIDs) == 1 && r.Subject.UIDs[0] == 1000
		case policies.TypeDelegate:
			del = r.To != nil && len(r.To.SHA256) == 1 && r.To.SHA256[0] == shaC
		}
	}
	if !grant || !del {
		t.Errorf("want a grant rule for b.wasm (uid 1000) and a delegate rule from it to c.wasm (grant %v, delegate %v):\n%s", grant, del, out)
	}
	if out, err := Suggest(path, "g-b"); err != nil || !strings.Contains(out, shaB) {
		t.Errorf("Suggest --guest g-b: %v\n%s", err, out)
	}
}

// adoptedMeanwhileLog is a log whose first file (which a prune keeps)
// holds g-b's grant and its delegation of a copy to g-c, and whose
// records a prune removed hold g-c's adoption of that copy; after the
// prune g-c passes the copy on to g-e, or, with closed, g-c closes the
// copy before the prune and g-b passes g-c a second one after it. It
// returns the log's path.
func adoptedMeanwhileLog(t *testing.T, closed bool) string {
	t.Helper()
	// A first file with room for the grant and the copy's delegation.
	k, l, path := kernelLogging(t, Options{MaxFileBytes: 4096})
	d, err := caps.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rbase, rinh := caps.GrantRights(caps.KindDirectory, false)
	root := k.MintBy(ByText(0, "root"), &caps.Holder{ID: "g-a"}, d, rbase, rinh, "data", "dir:/srv=data")
	base, inh := caps.GrantRights(caps.KindDirectory, true)
	grant := k.MintBy(ByText(1000, "alice"), &caps.Holder{ID: "g-b"}, d, base, inh, "data", "dir:/srv/b=data:ro")
	pass := func(from *caps.Cap, to string) *caps.Cap {
		c, err := k.Derive(from, caps.Derivation{Edge: caps.EdgeDelegate, Name: "data", Base: base, Inheriting: inh, Origin: "cap:" + string(from.ID())})
		if err != nil {
			t.Fatal(err)
		}
		churn(t, k, root, 30) // past the first file, which a prune keeps
		if err := k.Adopt(c, &caps.Holder{ID: to}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	cp1 := pass(grant, "g-c")
	if closed {
		k.Close(cp1)
	}
	churn(t, k, root, 300)
	l.maxTotal = 8192
	if err := l.prune(); err != nil {
		t.Fatal(err)
	}
	cp, _, err := ReadCheckpoint(path)
	// The delegation is record 4 (after the open and two grants), the
	// adoption past the 60 records of a churn of 30.
	if err != nil || cp == nil || cp.FromSeq <= 4 || cp.FromSeq > 60 {
		t.Fatalf("want a checkpoint standing for records from before the adoption on, past the delegation: %v, %v", cp, err)
	}
	for _, s := range []struct {
		id, module string
		sha        byte
	}{{"g-b", "b.wasm", 0xb}, {"g-c", "c.wasm", 0xc}, {"g-e", "e.wasm", 0xe}} {
		g := &GuestRecord{ID: s.id, Module: s.module, SHA256: strings.Repeat(string("0123456789abcdef"[s.sha]), 64), Principal: "alice", UID: 1000}
		if _, err := l.Append(Record{Type: TypeGuestStart, Guest: g}); err != nil {
			t.Fatal(err)
		}
	}
	if closed {
		pass(grant, "g-c")
	} else {
		pass(cp1, "g-e")
	}
	return path
}

// A copy delegated in the first file and adopted in records a prune
// removed is held by its recipient from the checkpoint on: what that
// recipient passes on after the prune counts for it. suggest
// --from-audit kept the copy in flight, so g-c's delegation of it made
// no rule, and a policy written from it would refuse that delegation.
func TestSuggestOfAPrunedLogKnowsWhoAdoptedACopyMeanwhile(t *testing.T) {
	path := adoptedMeanwhileLog(t, false)
	out, p := suggested(t, path)
	shaC, shaE := strings.Repeat("c", 64), strings.Repeat("e", 64)
	for _, r := range p.Rules() {
		if r.Type == policies.TypeDelegate && r.Module != nil && len(r.Module.SHA256) == 1 && r.Module.SHA256[0] == shaC {
			if r.To == nil || len(r.To.SHA256) != 1 || r.To.SHA256[0] != shaE {
				t.Errorf("the delegate rule for c.wasm should pass to e.wasm only:\n%s", out)
			}
			return
		}
	}
	t.Errorf("no delegate rule for c.wasm, which passed on its copy to e.wasm after the prune:\n%s", out)
}

// suggested is the policy Suggest writes for the log at path, as text and
// loaded.
func suggested(t *testing.T, path string) (string, *policies.Policy) {
	t.Helper()
	out, err := Suggest(path, "")
	if err != nil {
		t.Fatalf("Suggest: %v\n%s", err, out)
	}
	p, err := policies.Parse("suggested.hcl", []byte(out))
	if err != nil {
		t.Fatalf("the suggestion does not load: %v\n%s", err, out)
	}
	return out, p
}

// A copy closed in records a prune removed is no live copy from the
// checkpoint on: a copy passed on after the prune is the only one, and
// max_copies is 1. suggest --from-audit kept counting the closed copy,
// and wrote max_copies = 2.
func TestSuggestOfAPrunedLogLetsGoOfACopyClosedMeanwhile(t *testing.T) {
	out, p := suggested(t, adoptedMeanwhileLog(t, true))
	shaB := strings.Repeat("b", 64)
	for _, r := range p.Rules() {
		if r.Type == policies.TypeDelegate && r.Module != nil && len(r.Module.SHA256) == 1 && r.Module.SHA256[0] == shaB {
			if r.MaxCopies != 1 {
				t.Errorf("the delegate rule for b.wasm allows %d copies, want 1:\n%s", r.MaxCopies, out)
			}
			return
		}
	}
	t.Errorf("no delegate rule for b.wasm:\n%s", out)
}
