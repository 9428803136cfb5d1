package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
)

// kernelWithLog returns a kernel whose every event is appended to a new
// log, and the log's path.
func kernelWithLog(t *testing.T) (*caps.Kernel, *Log, string) {
	return kernelLogging(t, Options{})
}

// kernelLogging returns a kernel whose every event is appended to a new
// log opened with opts, the log and its path.
func kernelLogging(t testing.TB, opts Options) (*caps.Kernel, *Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	k := caps.NewKernel(func(e caps.Event) {
		if r, ok := FromEvent(e); ok {
			if _, err := l.Append(r); err != nil {
				t.Errorf("append: %v", err)
			}
		}
	})
	return k, l, path
}

// sameGraph fails unless the two graphs hold the same capabilities with
// the same public description, tree and flags.
func sameGraph(t *testing.T, live, replayed *Graph) {
	t.Helper()
	a, b := live.Doc().Caps, replayed.Doc().Caps
	if len(a) != len(b) {
		t.Fatalf("live graph has %d capabilities, replayed %d:\nlive:\n%s\nreplayed:\n%s", len(a), len(b), text(live), text(replayed))
	}
	for i := range a {
		if !reflect.DeepEqual(a[i].CapRecord, b[i].CapRecord) || a[i].Revoked != b[i].Revoked || a[i].Closed != b[i].Closed {
			t.Fatalf("capability %d differs:\nlive     %+v\nreplayed %+v", i, *a[i], *b[i])
		}
	}
}

func text(g *Graph) string {
	var b bytes.Buffer
	_ = g.Render(&b, "text")
	return b.String()
}

// buildGraph makes a small delegation graph in k: a directory granted to
// a, a file opened beneath it, the directory delegated to b (narrowed),
// passed on to c in flight and adopted, and b's channel.
func buildGraph(t *testing.T, k *caps.Kernel, dir string) (grant, toB, toC *caps.Cap) {
	t.Helper()
	a, b, c := &caps.Holder{ID: "g-a"}, &caps.Holder{ID: "g-b"}, &caps.Holder{ID: "g-c"}
	d, err := caps.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	base, inh := caps.GrantRights(caps.KindDirectory, false)
	grant = k.MintBy(ByText(0, "root"), a, d, base, inh, "data", "dir:"+dir+"=data")
	f, err := d.Open("x", caps.OpenFlags{Read: true, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Derive(grant, caps.Derivation{Holder: a, Edge: caps.EdgeOpen, Name: "x", Base: caps.RightFDRead, Resource: f}); err != nil {
		t.Fatal(err)
	}
	ro := caps.RightFileOpen | caps.RightFDRead | caps.RightFileReaddir
	if toB, err = k.Derive(grant, caps.Derivation{Holder: b, Edge: caps.EdgeDelegate, Name: "data", Base: ro & base, Inheriting: caps.RightFDRead}); err != nil {
		t.Fatal(err)
	}
	if toC, err = k.Derive(toB, caps.Derivation{Edge: caps.EdgeDelegate, Name: "data", Base: caps.RightFileOpen | caps.RightFileReaddir}); err != nil {
		t.Fatal(err)
	}
	k.Adopt(toC, c)
	e1, _ := caps.NewChannelPair(true, "b-chan")
	k.Create(b, e1, caps.RightsAll, 0, "chan", "fd_create2")
	return grant, toB, toC
}

func TestReplayedGraphEqualsTheLiveOne(t *testing.T) {
	k, l, path := kernelWithLog(t)
	grant, toB, toC := buildGraph(t, k, t.TempDir())
	check := func(step string) {
		t.Helper()
		replayed, err := Replay(path, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s:\n%s", step, text(replayed))
		sameGraph(t, FromSnapshot(k.Snapshot(), nil), replayed)
	}
	check("built")
	if err := toC.Narrow(caps.RightFileOpen, 0); err != nil {
		t.Fatal(err)
	}
	check("narrowed")
	k.Close(grant) // its children keep it tracked
	check("grant closed")
	r := k.Revoke(toB, "test")
	if len(r.Revoked) != 2 {
		t.Fatalf("receipt %+v", r)
	}
	check("revoked")
	k.Close(toC)
	k.Close(toB)
	check("closed")
	l.Close()
	if rep := mustVerify(t, path); rep.Bad != nil {
		t.Fatalf("verify: %v", rep.Bad)
	}
}

func TestQueriesAnswerFromTheGraph(t *testing.T) {
	k, _, path := kernelWithLog(t)
	dir := t.TempDir()
	grant, toB, toC := buildGraph(t, k, dir)
	g, err := Replay(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	chain, err := g.Trace(string(toC.ID()))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range chain {
		got = append(got, s.Cap+"@"+s.Holder+"/"+s.Edge+ByLine(s.By, s.ByUID))
	}
	want := []string{string(grant.ID()) + "@g-a/grant by root (uid 0)", string(toB.ID()) + "@g-b/delegate", string(toC.ID()) + "@g-c/delegate"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("trace %v, want %v", got, want)
	}

	holders := func(rs []Reach) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Holder+":"+r.Cap)
		}
		return out
	}
	wantDir := []string{"g-a:" + string(grant.ID()), "g-b:" + string(toB.ID()), "g-c:" + string(toC.ID())}
	for _, q := range []string{"dir:" + dir, "dir " + dir, dir} {
		if got := holders(g.WhoCan(q)); !reflect.DeepEqual(got, wantDir) {
			t.Fatalf("who-can %q: %v, want %v", q, got, wantDir)
		}
	}
	// A file beneath the directory is reached through every copy of it,
	// and through the file opened from it.
	if got := g.WhoCan(filepath.Join(dir, "x")); len(got) != 4 {
		t.Fatalf("who-can of the file: %v, want the 3 directory copies and the file", holders(got))
	}
	if got := g.WhoCan("/elsewhere"); len(got) != 0 {
		t.Fatalf("who-can /elsewhere: %v", holders(got))
	}

	cut, err := g.WhatIf(string(toB.ID()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cut.Revoked, []string{string(toB.ID()), string(toC.ID())}) || !reflect.DeepEqual(cut.Holders, []string{"g-b", "g-c"}) {
		t.Fatalf("what-if %+v", cut)
	}
	// What-if changes nothing; the revocation then cuts exactly that.
	r := k.Revoke(toB, "after what-if")
	if len(r.Revoked) != len(cut.Revoked) || !reflect.DeepEqual(r.Holders, cut.Holders) {
		t.Fatalf("receipt %+v, what-if said %+v", r, cut)
	}
	if _, err := g.Trace("c-none"); err == nil {
		t.Fatal("trace of an unknown capability succeeded")
	}
}

func TestReplayAsOfATime(t *testing.T) {
	k, _, path := kernelWithLog(t)
	grant, _, _ := buildGraph(t, k, t.TempDir())
	var before Record
	_ = Scan(path, func(r Record, _ Pos) error { before = r; return nil })
	k.Revoke(grant, "later")
	then, err := Replay(path, before.Time)
	if err != nil {
		t.Fatal(err)
	}
	now, err := Replay(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	n1, _ := then.Node(string(grant.ID()))
	n2, _ := now.Node(string(grant.ID()))
	if n1 == nil || n2 == nil || n1.Revoked || !n2.Revoked {
		t.Fatalf("as of before the revocation: %+v; now: %+v", n1, n2)
	}
}

func TestRenderFormats(t *testing.T) {
	k, _, path := kernelWithLog(t)
	grant, toB, _ := buildGraph(t, k, t.TempDir())
	k.Revoke(toB, "x")
	g, err := Replay(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var dot, js, txt bytes.Buffer
	for f, w := range map[string]*bytes.Buffer{"dot": &dot, "json": &js, "text": &txt} {
		if err := g.Render(w, f); err != nil {
			t.Fatal(err)
		}
	}
	edge := `"` + string(grant.ID()) + `" -> "` + string(toB.ID()) + `"`
	if !strings.HasPrefix(dot.String(), "digraph sandboxd {") || !strings.Contains(dot.String(), edge) || !strings.Contains(dot.String(), "color=red") {
		t.Fatalf("dot:\n%s", dot.String())
	}
	// A grant's box says where it came from and who made it, as the
	// text line does; a derived capability's says neither.
	for _, want := range []string{`from \"dir:`, `by root (uid 0)`} {
		if !strings.Contains(dot.String(), want) {
			t.Fatalf("dot lacks %s:\n%s", want, dot.String())
		}
	}
	if strings.Count(dot.String(), "by root") != 1 {
		t.Fatalf("dot names who made a grant on other boxes too:\n%s", dot.String())
	}
	if !strings.Contains(js.String(), `"revoked": true`) || !strings.Contains(txt.String(), "REVOKED") {
		t.Fatalf("json:\n%s\ntext:\n%s", js.String(), txt.String())
	}
	if err := g.Render(os.Stdout, "svg"); err == nil {
		t.Fatal("unknown format accepted")
	}
}

func TestNoTokenInTheLog(t *testing.T) {
	k, l, path := kernelWithLog(t)
	grant, toB, _ := buildGraph(t, k, t.TempDir())
	l.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*caps.Cap{grant, toB} {
		tok := c.Token()
		if bytes.Contains(data, []byte(tok.String())) || bytes.Contains(data, []byte(tok.Hash())) {
			t.Fatalf("the log holds %s's token or its hash", c.ID())
		}
	}
}

func TestGrantSourceReadsTheGrantGrammarsEscapes(t *testing.T) {
	for text, want := range map[string]string{
		"dir:/srv/data=data:ro":         "/srv/data",
		"dir:/srv/data":                 "/srv/data",
		`dir:/a\=b=name`:                "/a=b",
		`file:/x\:ro`:                   "/x:ro",
		"sock:db":                       "db",
		"sock:db:dial":                  "db",
		`sock:db\:dial`:                 "db:dial",
		"file:/srv/notes:create":        "/srv/notes",
		"cap:c1:rights=fd_read,fd_seek": "c1",
	} {
		if _, got := grantSource(text); got != want {
			t.Errorf("grantSource(%q) = %q, want %q", text, got, want)
		}
	}
}

// Concurrent derivations, delegations, closes and revocations: once they
// are over, the graph replayed from the log is the kernel's, whatever
// order their records reached the log in.
func TestReplayEqualsTheLiveGraphAfterConcurrentChanges(t *testing.T) {
	k, l, path := kernelWithLog(t)
	d, err := caps.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base, inh := caps.GrantRights(caps.KindDirectory, false)
	root := k.Mint(&caps.Holder{ID: "g-root"}, d, base, inh, "d", "dir:/x")
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := &caps.Holder{ID: fmt.Sprintf("g-%d", w)}
			for i := 0; i < 50; i++ {
				mid, err := k.Derive(root, caps.Derivation{Holder: h, Edge: caps.EdgeDelegate, Base: caps.RightFileOpen})
				if err != nil {
					continue // revoked meanwhile: nothing to record
				}
				leaf, err := k.Derive(mid, caps.Derivation{Holder: h, Edge: caps.EdgeDup, Base: caps.RightFileOpen})
				switch {
				case i%3 == 0:
					k.Revoke(mid, "worker")
				case i%3 == 1 && err == nil:
					k.Close(mid) // leaf keeps it tracked
				case err == nil:
					k.Close(leaf)
				}
			}
		}()
	}
	wg.Wait()
	l.Close()
	replayed, err := Replay(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sameGraph(t, FromSnapshot(k.Snapshot(), nil), replayed)
}

// The kernel records a change after making it, outside its lock: two
// concurrent changes can reach the log in the other order. Replay gives
// the graph the kernel has either way.
func TestReplayHandlesRecordsThatCrossed(t *testing.T) {
	rec := func(typ, id, parent string) Record {
		return Record{Type: typ, Cap: &CapRecord{ID: id, Parent: parent, Kind: "dir", Edge: "delegate", Holder: "g-1"}}
	}
	g := NewGraph()
	g.Apply(rec(TypeGrant, "p", ""))
	// p was closed after the kernel linked c under it, but its close was
	// recorded first: p stays tracked, as c's parent.
	g.Apply(rec(TypeClose, "p", ""))
	g.Apply(rec(TypeDelegate, "c", "p"))
	// d was derived under c before c's revocation cut it off, but the
	// revocation was recorded first.
	g.Apply(Record{Type: TypeRevoke, Cap: &CapRecord{ID: "c"}, Receipt: &ReceiptRecord{Root: "c", Revoked: []string{"c", "d"}}})
	g.Apply(rec(TypeDelegate, "d", "c"))
	var got []string
	for _, n := range g.Nodes() {
		got = append(got, fmt.Sprintf("%s<%s revoked=%v closed=%v", n.ID, n.Parent, n.Revoked, n.Closed))
	}
	want := []string{"p< revoked=false closed=true", "c<p revoked=true closed=false", "d<c revoked=true closed=false"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("graph %q, want %q", got, want)
	}
}

func TestRecentForgetsOnlyOldEntries(t *testing.T) {
	var r recent[int]
	for i := 0; i < 3*recentWindow; i++ {
		r.put(strconv.Itoa(i), i+1)
	}
	if r.get("0") != 0 || r.get(strconv.Itoa(3*recentWindow-1)) != 3*recentWindow || r.get(strconv.Itoa(2*recentWindow)) != 2*recentWindow+1 {
		t.Fatal("recent kept an old entry or lost a recent one")
	}
	r.remove(strconv.Itoa(2 * recentWindow))
	if r.get(strconv.Itoa(2*recentWindow)) != 0 {
		t.Fatal("removed entry still there")
	}
}

func TestShutdownEndsTheRunUntilTheNextOpen(t *testing.T) {
	g := NewGraph()
	grant := func(id, holder string) Record {
		return Record{Type: TypeGrant, Cap: &CapRecord{ID: id, Kind: "dir", Holder: holder, Base: "fd_read", Edge: "grant"}}
	}
	g.Apply(Record{Type: TypeOpen})
	g.Apply(grant("c1", "g-1"))
	g.Apply(Record{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-1"}})
	g.Apply(Record{Type: TypeShutdown, Running: 1})
	// A record the shutdown crossed changes nothing.
	g.Apply(grant("c2", "g-2"))
	g.Apply(Record{Type: TypeGuestStart, Guest: &GuestRecord{ID: "g-2"}})
	if n := len(g.Nodes()); n != 0 || g.Holder("g-1").Running || g.Holder("g-2").Running {
		t.Fatalf("after a shutdown: %d capabilities, g-1 running %v, g-2 running %v; want nothing live", n, g.Holder("g-1").Running, g.Holder("g-2").Running)
	}
	g.Apply(Record{Type: TypeOpen})
	g.Apply(grant("c3", "g-3"))
	if n := len(g.Nodes()); n != 1 {
		t.Fatalf("after the next open: %d capabilities, want the one granted since", n)
	}
}

// The kernel splices a closed dup or open capability out of the tree,
// giving its children to its parent; the replayed graph does the same.
func TestReplayedGraphSplicesClosedCopiesAsTheKernelDoes(t *testing.T) {
	k, _, path := kernelWithLog(t)
	dir := t.TempDir()
	grant, toB, _ := buildGraph(t, k, dir)
	b, i := grant.Rights()
	a := grant.Holder()
	d1, err := k.Derive(grant, caps.Derivation{Holder: a, Edge: caps.EdgeDup, Name: "data", Base: b, Inheriting: i})
	if err != nil {
		t.Fatal(err)
	}
	d2, err := k.Derive(d1, caps.Derivation{Holder: a, Edge: caps.EdgeDup, Name: "data", Base: b, Inheriting: i})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := caps.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := k.Derive(d2, caps.Derivation{Holder: a, Edge: caps.EdgeOpen, Name: ".", Base: caps.RightFileOpen, Inheriting: caps.RightFDRead, Resource: sub})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Derive(opened, caps.Derivation{Holder: a, Edge: caps.EdgeDup, Name: ".", Base: caps.RightFileOpen}); err != nil {
		t.Fatal(err)
	}
	k.Close(d1)
	k.Close(d2)
	k.Close(opened)
	live := FromSnapshot(k.Snapshot(), nil)
	replayed, err := Replay(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sameGraph(t, live, replayed)
	for _, id := range []caps.ID{d1.ID(), d2.ID(), opened.ID()} {
		if _, err := replayed.Trace(string(id)); err == nil {
			t.Errorf("closed copy %s is still in the graph:\n%s", id, text(replayed))
		}
	}
	kids := replayed.nodes[string(grant.ID())].children
	if len(kids) != 3 || kids[string(toB.ID())] == nil {
		t.Errorf("the grant has %d children, want 3 (the file, b's copy, and the dup of the opened directory, spliced up through three closed copies):\n%s", len(kids), text(replayed))
	}
}

// A copy closed while its revocation waits for an operation on it is
// spliced out by the kernel as by the replay, though the close is logged
// before the revocation.
func TestReplayedGraphSplicesACopyClosedDuringItsRevocation(t *testing.T) {
	k, _, path := kernelWithLog(t)
	grant, _, _ := buildGraph(t, k, t.TempDir())
	b, i := grant.Rights()
	a := grant.Holder()
	d1, err := k.Derive(grant, caps.Derivation{Holder: a, Edge: caps.EdgeDup, Name: "data", Base: b, Inheriting: i})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Derive(d1, caps.Derivation{Holder: a, Edge: caps.EdgeDup, Name: "data", Base: b, Inheriting: i}); err != nil {
		t.Fatal(err)
	}
	if err := d1.Acquire(caps.RightFileOpen, 0); err != nil {
		t.Fatal(err)
	}
	revoked := make(chan struct{})
	go func() { k.Revoke(d1, "test"); close(revoked) }()
	<-d1.Done() // revoked; the revocation waits for the operation
	k.Close(d1)
	d1.Release()
	<-revoked
	replayed, err := Replay(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sameGraph(t, FromSnapshot(k.Snapshot(), nil), replayed)
}

// A corrupt or forged log can name a capability as its own parent (its
// chain of hashes is no defence: anyone can compute one). Replaying it
// must not make the capability its own ancestor, or trace and what-if
// would never return.
func TestACapabilityNamedItsOwnParentIsNotItsOwnAncestor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(Record{Type: TypeGrant, Cap: &CapRecord{ID: "cx", Kind: "dir", Holder: "g-1", Base: "fd_read", Edge: "grant", Parent: "cx", Resource: "dir /srv"}}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	g, err := Replay(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	n := g.nodes["cx"]
	for x := n.parent; x != nil; x = x.parent {
		if x == n {
			t.Fatal("cx is its own ancestor: trace and what-if would loop")
		}
	}
	if _, err := g.Trace("cx"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.WhatIf("cx"); err != nil {
		t.Fatal(err)
	}
}

// The text graph is one capability a line: a newline in a host path (a
// directory a guest made and opened) or in a module's name cannot start a
// line of its own that reads as another capability.
func TestTextGraphKeepsForeignTextOnItsLine(t *testing.T) {
	forged := "\nc0000000000000bad grant dir \"root\" held by g-000000000000 rights all [dir /]"
	g := FromDoc(GraphDoc{
		Holders: []HolderInfo{{ID: "g-1", Module: "m.wasm" + forged}},
		Caps: []*Node{
			{CapRecord: CapRecord{ID: "c1", Kind: "dir", Holder: "g-1", Edge: "grant", Base: "file_open", Resource: "dir /srv"}},
			{CapRecord: CapRecord{ID: "c2", Kind: "dir", Holder: "g-1", Parent: "c1", Edge: "open", Base: "file_open", Resource: "dir /srv/x" + forged}},
		},
	})
	var b bytes.Buffer
	if err := g.Render(&b, "text"); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n"); len(lines) != 2 {
		t.Fatalf("text graph of 2 capabilities in %d lines:\n%s", len(lines), b.String())
	}
}

// A directory reached through a symbolic link reaches where the link
// leads: a guest that opened "link" (to real) beneath its grant and let
// the grant go can still reach real, and who-can says so; so does a
// grant of the link itself, asked about by the path it leads to.
func TestWhoCanFollowsSymbolicLinks(t *testing.T) {
	top := t.TempDir()
	if err := os.Mkdir(filepath.Join(top, "real"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(top, "link")); err != nil {
		t.Fatal(err)
	}
	g := FromDoc(GraphDoc{Caps: []*Node{
		{CapRecord: CapRecord{ID: "c1", Kind: "dir", Holder: "g-1", Edge: "grant", Base: "file_open", Origin: "dir:" + top, Resource: "dir " + top}, Closed: true},
		{CapRecord: CapRecord{ID: "c2", Kind: "dir", Holder: "g-1", Parent: "c1", Edge: "open", Base: "file_open", Resource: "dir " + filepath.Join(top, "link")}},
		{CapRecord: CapRecord{ID: "c3", Kind: "dir", Holder: "g-2", Edge: "grant", Base: "file_open", Origin: "dir:" + filepath.Join(top, "link"), Resource: "dir " + filepath.Join(top, "link")}},
	}})
	for _, q := range []string{filepath.Join(top, "real", "a.csv"), "dir:" + filepath.Join(top, "real")} {
		var got []string
		for _, r := range g.WhoCan(q) {
			got = append(got, r.Cap)
		}
		if strings.Join(got, " ") != "c2 c3" {
			t.Errorf("who-can %s: %v, want c2 and c3, each through the link", q, got)
		}
	}
}

// A declared resource asked for by name (dir:reports) is reached as its
// path is: by the grants of it by name, by those of its path, and by a
// directory above it, as who-can of its path answers.
func TestWhoCanANamedDirectoryAsItsPath(t *testing.T) {
	g := FromDoc(GraphDoc{Caps: []*Node{
		{CapRecord: CapRecord{ID: "c1", Kind: "dir", Holder: "g-1", Edge: "grant", Base: "file_open", Origin: "dir:reports:ro", Resource: "dir /srv/reports"}},
		{CapRecord: CapRecord{ID: "c2", Kind: "dir", Holder: "g-2", Edge: "grant", Base: "file_open", Origin: "dir:/srv/reports=/r", Resource: "dir /srv/reports"}},
		{CapRecord: CapRecord{ID: "c3", Kind: "dir", Holder: "g-3", Edge: "grant", Base: "file_open", Origin: "dir:/srv", Resource: "dir /srv"}},
		{CapRecord: CapRecord{ID: "c4", Kind: "dir", Holder: "g-4", Edge: "grant", Base: "file_open", Origin: "dir:/srv/other", Resource: "dir /srv/other"}},
		{CapRecord: CapRecord{ID: "c5", Kind: "file", Holder: "g-1", Parent: "c1", Edge: "open", Base: "fd_read", Resource: "file /srv/reports/q1.csv"}},
	}})
	for _, q := range []string{"dir:reports", "dir:/srv/reports"} {
		var got []string
		for _, r := range g.WhoCan(q) {
			got = append(got, r.Cap)
		}
		if strings.Join(got, " ") != "c1 c2 c3" {
			t.Errorf("who-can %s: %v, want c1, c2 and c3", q, got)
		}
	}
}

// A symbolic link beneath a granted directory that leads out of it does
// not take the grant with it: the kernel refuses to open through it
// (ENOTCAPABLE), so a path through the link is reached only by who
// reaches where it leads, whatever the path's name says.
func TestWhoCanNotThroughALinkLeadingOutOfTheDirectory(t *testing.T) {
	top := t.TempDir()
	for _, d := range []string{"data", "outside"} {
		if err := os.Mkdir(filepath.Join(top, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../outside", filepath.Join(top, "data", "esc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".", filepath.Join(top, "data", "here")); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(top, "data")
	g := FromDoc(GraphDoc{Caps: []*Node{
		{CapRecord: CapRecord{ID: "c1", Kind: "dir", Holder: "g-1", Edge: "grant", Base: "file_open", Origin: "dir:" + data, Resource: "dir " + data}},
		{CapRecord: CapRecord{ID: "c2", Kind: "dir", Holder: "g-2", Edge: "grant", Base: "file_open", Origin: "dir:" + filepath.Join(top, "outside"), Resource: "dir " + filepath.Join(top, "outside")}},
	}})
	for q, want := range map[string]string{
		filepath.Join(data, "esc", "passwd"):           "c2",
		"file:" + filepath.Join(data, "esc", "passwd"): "c2",
		"dir:" + filepath.Join(data, "esc"):            "c2",
		filepath.Join(data, "here", "q1.csv"):          "c1",
		filepath.Join(data, "q1.csv"):                  "c1",
	} {
		var got []string
		for _, r := range g.WhoCan(q) {
			got = append(got, r.Cap)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("who-can %s: %v, want %s", q, got, want)
		}
	}
}

// A socket is asked for by its address as a grant names it
// (sock:tcp:HOST:PORT, listen:HOST:PORT, sock:unix:PATH) or as its
// resource reads: who-can names every holder that can reach that
// address, whatever the grant was called: a connection to it, a dialer
// of it (by name or by an address it resolved to) and the connections
// that dialer made, passed on or not, and a listener at the port it was
// bound at.
func TestWhoCanASocketByItsAddress(t *testing.T) {
	g := FromDoc(GraphDoc{Caps: []*Node{
		{CapRecord: CapRecord{ID: "c1", Kind: "socket", Holder: "g-1", Edge: "grant", Base: "fd_read", Origin: "sock:db", Resource: "sock tcp 127.0.0.1:6379"}},
		{CapRecord: CapRecord{ID: "c2", Kind: "dial", Holder: "g-2", Edge: "grant", Base: "sock_accept", Origin: "sock:tcp:127.0.0.1:6379:dial", Resource: "dial tcp 127.0.0.1:6379"}},
		{CapRecord: CapRecord{ID: "c3", Kind: "socket", Holder: "g-2", Parent: "c2", Edge: "accept", Base: "fd_read", Resource: "sock tcp 127.0.0.1:6379"}},
		{CapRecord: CapRecord{ID: "c4", Kind: "socket", Holder: "g-3", Parent: "c3", Edge: "delegate", Base: "fd_read", Resource: "sock tcp 127.0.0.1:6379"}},
		{CapRecord: CapRecord{ID: "c5", Kind: "listen", Holder: "g-4", Edge: "grant", Base: "sock_accept", Origin: "listen:127.0.0.1:0", Resource: "listen tcp 127.0.0.1:41234"}},
		{CapRecord: CapRecord{ID: "c6", Kind: "socket", Holder: "g-4", Parent: "c5", Edge: "accept", Base: "fd_read", Resource: "sock tcp 127.0.0.1:41234 from 127.0.0.1:5555"}},
		{CapRecord: CapRecord{ID: "c7", Kind: "dial", Holder: "g-5", Edge: "grant", Base: "sock_accept", Origin: "sock:search:dial", Resource: "dial tcp search.internal:9200 (10.0.0.7, ::1)"}},
		{CapRecord: CapRecord{ID: "c8", Kind: "socket", Holder: "g-6", Edge: "grant", Base: "fd_read", Origin: "sock:app", Resource: "sock unix /run/app.sock"}},
	}})
	for q, want := range map[string]string{
		"sock:tcp:127.0.0.1:6379":       "c1 c2 c3 c4",
		"sock tcp 127.0.0.1:6379":       "c1 c2 c3 c4",
		"listen:127.0.0.1:41234":        "c5",
		"listen:tcp:127.0.0.1:41234":    "c5",
		"listen:127.0.0.1:0":            "c5",
		"sock:tcp:search.internal:9200": "c7",
		"sock:tcp:10.0.0.7:9200":        "c7",
		"sock:tcp:[::1]:9200":           "c7",
		"sock:unix:/run/app.sock":       "c8",
		"/run/app.sock":                 "c8",
		"/run/../run/app.sock":          "c8",
		"sock:db":                       "c1 c2 c3 c4",
		"sock:search":                   "c7",
		"sock:tcp:127.0.0.1:6380":       "",
	} {
		var got []string
		for _, r := range g.WhoCan(q) {
			got = append(got, r.Cap)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("who-can %s: %v, want %q", q, got, want)
		}
	}
}
