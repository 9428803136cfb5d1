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
	out, err := Suggest(path, "")
	if err != nil {
		t.Fatalf("Suggest: %v\n%s", err, out)
	}
	p, err := policies.Parse("suggested.hcl", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
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
