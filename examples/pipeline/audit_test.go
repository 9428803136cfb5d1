package pipeline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/policies"
)

// openLog opens a new audit log, closed after the supervisor that
// records into it (cleanups run last registered first).
func openLog(t *testing.T) (*audit.Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("closing the audit log: %v", err)
		}
	})
	return l, path
}

// waitRecord waits until the log at path holds a record for which match
// is true, and returns it.
func waitRecord(t *testing.T, path, what string, match func(audit.Record) bool) audit.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	var found *audit.Record
	errFound := errors.New("found")
	err := audit.Follow(ctx, path, 5*time.Millisecond, func(r audit.Record, _ audit.Pos) error {
		if match(r) {
			found = &r
			return errFound
		}
		return nil
	})
	if found == nil {
		t.Fatalf("no record of %s in the log after %s (%v)", what, hangGuard, err)
	}
	return *found
}

func graphText(g *audit.Graph) string {
	var b bytes.Buffer
	_ = g.Render(&b, "text")
	return b.String()
}

// settle waits until the log holds every record enqueued so far, and
// returns the graph rebuilt from it, failing unless it is the live one
// (the kernel's snapshot and the supervisor's guests).
func settle(t *testing.T, p *pipeline, l *audit.Log, path string) *audit.Graph {
	t.Helper()
	seq, _ := l.Head()
	if err := l.Wait(seq); err != nil {
		t.Fatal(err)
	}
	replayed, err := audit.Replay(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	live, err := p.sup.AuditGraph(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := live.Doc(), replayed.Doc()
	if len(a.Caps) != len(b.Caps) {
		t.Fatalf("live graph: %d capabilities, replayed from the log: %d\nlive:\n%s\nreplayed:\n%s", len(a.Caps), len(b.Caps), graphText(live), graphText(replayed))
	}
	for i := range a.Caps {
		if !reflect.DeepEqual(*a.Caps[i], *b.Caps[i]) {
			t.Fatalf("capability %d:\nlive     %+v\nreplayed %+v", i, *a.Caps[i], *b.Caps[i])
		}
	}
	if !reflect.DeepEqual(a.Holders, b.Holders) {
		t.Fatalf("holders:\nlive     %+v\nreplayed %+v", a.Holders, b.Holders)
	}
	return replayed
}

// lentChain returns the ids from the fetcher's grant down to the parser's
// handle on the lent directory, as the kernel has them.
func lentChain(t *testing.T, p *pipeline) []string {
	t.Helper()
	var lent *caps.Cap
	for _, e := range p.parser.Handles() {
		if e.Cap.Kind() == caps.KindDirectory {
			lent = e.Cap
		}
	}
	if lent == nil {
		t.Fatal("the parser holds no directory")
	}
	var ids []string
	for c := lent; c != nil; c = c.Parent() {
		ids = append([]string{string(c.ID())}, ids...)
	}
	return ids
}

// wantSteps fails unless steps go down ids, with these edges and holders.
func wantSteps(t *testing.T, what string, steps []audit.Step, ids, edges, holders []string) {
	t.Helper()
	var gotIDs, gotEdges, gotHolders []string
	for _, s := range steps {
		gotIDs, gotEdges, gotHolders = append(gotIDs, s.Cap), append(gotEdges, s.Edge), append(gotHolders, s.Holder)
	}
	if !slices.Equal(gotIDs, ids) || !slices.Equal(gotEdges, edges) || !slices.Equal(gotHolders, holders) {
		t.Errorf("%s: chain %v edges %v holders %v\nwant     %v edges %v holders %v", what, gotIDs, gotEdges, gotHolders, ids, edges, holders)
	}
}

// TestAuditedPipeline runs the pipeline with an audit log and checks
// what the log says of it: the graph rebuilt from the log is the live
// one; who-can, trace and what-if answer exactly; what-if foretells the
// real revocation's receipt; and the policy suggested from the log
// allows the same run and denies wider ones.
func TestAuditedPipeline(t *testing.T) {
	l, path := openLog(t)
	p := startWith(t, setup{step: true, opts: daemon.Options{Audit: l}})
	p.storeOut.waitFor(t, "store: serving")
	p.fetcherIn.Write([]byte("\n"))
	p.fetcherOut.waitFor(t, "parsed a.txt: 3 words")
	p.fetcherIn.Write([]byte("\n"))
	p.fetcherOut.waitFor(t, "parsed b.txt: 2 words")
	// The fetcher waits for its next line, the parser and store for calls.
	// The one change still to come is the parser letting go of the
	// GuestHandle it installed (released after Parser.open returned).
	chain := lentChain(t, p)
	if len(chain) != 5 {
		t.Fatalf("the parser's directory descends from %v, want grant, open, handOver, delegate, install", chain)
	}
	waitRecord(t, path, "the close of the parser's GuestHandle", func(r audit.Record) bool {
		return r.Type == audit.TypeClose && r.Cap.ID == chain[3]
	})
	g := settle(t, p, l, path)
	checkPassedOn(t, p, g)
	checkQueries(t, p, g, chain)
	cut, err := g.WhatIf(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	checkRevocation(t, p, l, path, cut)
	checkSuggestedPolicy(t, p, path)
}

// checkPassedOn checks the graph rebuilt from the log for what crossed
// between the guests: the lent directory, passed in a Cap'n Proto call,
// and the two services obtained on channel pipeline, each a delegate
// copy of the serving guest's own.
func checkPassedOn(t *testing.T, p *pipeline, g *audit.Graph) {
	t.Helper()
	type service struct{ server, client string }
	want := map[string]service{"store": {p.store.ID(), p.parser.ID()}, "parser": {p.parser.ID(), p.fetcher.ID()}}
	got := map[string]service{}
	for _, n := range g.Nodes() {
		if n.Kind != "service" || n.Edge != "delegate" {
			continue
		}
		parent, ok := g.Node(n.Parent)
		if !ok || parent.Edge != "create" || n.Origin != "obtained as "+n.Name+" on chan:pipeline" {
			t.Errorf("service copy %s: origin %q, parent %+v", n.ID, n.Origin, parent)
			continue
		}
		got[n.Name] = service{parent.Holder, n.Holder}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("services passed on chan:pipeline (server, client): %v, want %v\n%s", got, want, graphText(g))
	}
}

// checkQueries asks who-can and trace about the fetcher's directory,
// the subdirectory it lent and the store's, and checks every answer.
func checkQueries(t *testing.T, p *pipeline, g *audit.Graph, chain []string) {
	t.Helper()
	F, P := p.fetcher.ID(), p.parser.ID()
	steps, err := g.Trace(chain[4])
	if err != nil {
		t.Fatal(err)
	}
	wantSteps(t, "trace of the parser's copy", steps, chain,
		[]string{"grant", "open", "dup", "delegate", "dup"}, []string{F, F, F, P, P})
	if o := steps[0].Origin; o != "dir:"+p.in+"=input:ro" {
		t.Errorf("the grant's origin is %q", o)
	}
	if o := steps[3].Origin; o != "passed in a call by "+F+" to parser of "+P || !steps[3].Closed {
		t.Errorf("the copy passed in Parser.open: origin %q, closed %v (the parser installed it and let go)", o, steps[3].Closed)
	}
	for _, s := range steps[2:] {
		if strings.Contains(s.Rights, "file_create_file") || s.Resource != "dir "+filepath.Join(p.in, "docs") {
			t.Errorf("step %s lends more than the subdirectory, read-only: rights %s, %s", s.Cap, s.Rights, s.Resource)
		}
	}
	who := func(resource string, want [][]string, holders []string) {
		t.Helper()
		reach := g.WhoCan(resource)
		if len(reach) != len(want) {
			t.Fatalf("who-can %s: %d holders, want %d: %+v", resource, len(reach), len(want), reach)
		}
		for i, r := range reach {
			if r.Holder != holders[i] || r.Cap != want[i][len(want[i])-1] {
				t.Errorf("who-can %s #%d: %s holds %s, want %s holding %s", resource, i, r.Holder, r.Cap, holders[i], want[i][len(want[i])-1])
			}
			var ids []string
			for _, s := range r.Chain {
				ids = append(ids, s.Cap)
			}
			if !slices.Equal(ids, want[i]) {
				t.Errorf("who-can %s #%d: chain %v, want %v", resource, i, ids, want[i])
			}
		}
	}
	// The whole directory: only the fetcher's grant reaches it.
	who("dir:"+p.in, [][]string{chain[:1]}, []string{F})
	// The subdirectory: the grant above it, the fetcher's handle on it and
	// the copy it handed over, and the parser's installed copy (the
	// GuestHandle it came in is closed: it reaches nothing).
	who("dir:"+filepath.Join(p.in, "docs"), [][]string{chain[:1], chain[:2], chain[:3], chain}, []string{F, F, F, P})
	// The store's directory: the store alone.
	reach := g.WhoCan("dir:" + p.out)
	if len(reach) != 1 || reach[0].Holder != p.store.ID() || len(reach[0].Chain) != 1 || reach[0].Chain[0].Edge != "grant" {
		t.Errorf("who-can dir:%s: %+v, want the store's grant alone", p.out, reach)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// checkRevocation revokes the fetcher's grant, as what-if said it would
// cut: the receipt and the log's revoke record list the same
// capabilities and holders, the graph rebuilt from the log is still the
// live one, and the parser's next read fails.
func checkRevocation(t *testing.T, p *pipeline, l *audit.Log, path string, cut audit.Cut) {
	t.Helper()
	chain := lentChain(t, p)
	if cut.Root != chain[0] || !slices.Equal(sorted(cut.Revoked), sorted(chain)) ||
		!slices.Equal(sorted(cut.Holders), sorted([]string{p.fetcher.ID(), p.parser.ID()})) {
		t.Errorf("what-if --revoke %s: %+v\nwant the chain %v, held by the fetcher and the parser", chain[0], cut, chain)
	}
	r, err := p.sup.Revoke(caps.ID(chain[0]), "test: the fetcher's documents are withdrawn")
	if err != nil {
		t.Fatal(err)
	}
	var revoked []string
	for _, id := range r.Revoked {
		revoked = append(revoked, string(id))
	}
	if !slices.Equal(sorted(revoked), sorted(cut.Revoked)) || !slices.Equal(sorted(r.Holders), sorted(cut.Holders)) {
		t.Errorf("the revocation cut %v held by %v; what-if said %v held by %v", revoked, r.Holders, cut.Revoked, cut.Holders)
	}
	rec := waitRecord(t, path, "the revocation", func(rec audit.Record) bool {
		return rec.Type == audit.TypeRevoke && rec.Receipt != nil && rec.Receipt.Root == chain[0]
	})
	if !slices.Equal(rec.Receipt.Revoked, revoked) || !slices.Equal(rec.Receipt.Holders, r.Holders) {
		t.Errorf("the log's receipt %+v differs from the revocation's %+v", *rec.Receipt, r)
	}
	g := settle(t, p, l, path)
	if reach := g.WhoCan(filepath.Join(p.in, "docs")); len(reach) != 0 {
		t.Errorf("after the revocation, who-can the subdirectory: %+v, want nobody", reach)
	}
	p.fetcherIn.Write([]byte("\n"))
	p.parserOut.waitFor(t, "parser: read c.txt: not capable (ENOTCAPABLE)")
	if code := p.waitExit(t, p.fetcher); code != 1 {
		t.Errorf("fetcher exited %d, want 1 (its parse failed)\n%s", code, p.fetcherOut)
	}
}

// checkSuggestedPolicy loads the policy suggested from the log at path,
// runs the pipeline again under it, and checks that wider grants are
// denied.
func checkSuggestedPolicy(t *testing.T, p *pipeline, path string) {
	t.Helper()
	text, err := audit.Suggest(path, "")
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policies.Parse("suggested.hcl", []byte(text))
	if err != nil {
		t.Fatalf("the suggested policy does not load: %v\n%s", err, text)
	}
	for _, name := range []string{"a.txt", "b.txt"} {
		if err := os.Remove(filepath.Join(p.out, name)); err != nil {
			t.Fatal(err)
		}
	}
	l, path2 := openLog(t)
	q := startWith(t, setup{opts: daemon.Options{Policy: pol, Audit: l}, in: p.in, out: p.out})
	if code := q.waitExit(t, q.fetcher); code != 0 {
		t.Fatalf("under the suggested policy the fetcher exited %d\n%s\nparser:\n%s\npolicy:\n%s", code, q.fetcherOut, q.parserOut, text)
	}
	for name, want := range map[string]string{"a.txt": "a.txt: 3 words\n", "b.txt": "b.txt: 2 words\n", "c.txt": "c.txt: 1 words\n"} {
		got, err := os.ReadFile(filepath.Join(p.out, name))
		if err != nil || string(got) != want {
			t.Errorf("under the suggested policy out/%s = %q, %v; want %q", name, got, err, want)
		}
	}
	checkDecisions(t, path2)
	// Wider than the run it was learnt from: the store's writable
	// directory to the parser, the input directory to the store, the
	// directory above the input to the fetcher.
	for _, c := range []struct{ module, grant string }{
		{"parser", "dir:" + p.out + "=out"},
		{"store", "dir:" + p.in + "=out"},
		{"fetcher", "dir:" + filepath.Dir(p.in) + "=input:ro"},
	} {
		_, err := q.tryLaunch(t, c.module, newOutput(), nil, []string{"docs"}, c.grant)
		if !daemon.IsPolicyDenial(err) || !strings.Contains(err.Error(), "default deny") {
			t.Errorf("%s given %s under the suggested policy: %v, want a denial by default", c.module, c.grant, err)
		}
	}
}

// checkDecisions checks that the log at path records the policy allowing
// every grant and the lending of the subdirectory, and denying nothing.
func checkDecisions(t *testing.T, path string) {
	t.Helper()
	var grants, lent int
	err := audit.Scan(path, func(r audit.Record, _ audit.Pos) error {
		if r.Type != audit.TypeDecision {
			return nil
		}
		d := r.Decision
		switch {
		case !d.Allowed:
			t.Errorf("denied under the suggested policy: %+v", *d)
		case d.Op == "grant":
			grants++
		case d.Op == "delegate" && strings.HasPrefix(d.Rule, `delegate "fetcher-pass-dir-`):
			lent++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// dir and chan for the fetcher and the store, chan for the parser.
	if grants != 5 || lent != 1 {
		t.Errorf("decisions: %d grants, %d lendings allowed; want 5 and 1", grants, lent)
	}
}
