package abi_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
)

// graphLog records the kernel's events for assertions after a run.
type graphLog struct {
	mu     sync.Mutex
	events []caps.Event
}

func (l *graphLog) observe(e caps.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *graphLog) all(typ caps.EventType) []caps.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []caps.Event
	for _, e := range l.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// observedHarness is a harness whose kernel reports every change.
func observedHarness(t *testing.T) (*harness, *graphLog) {
	h := newHarness(t)
	log := &graphLog{}
	h.k = caps.NewKernel(log.observe)
	return h, log
}

// grantModule puts a module handle for wasm in tbl (rights proc_exec and
// file_stat_fget), as a supervisor grants a guest the power to spawn it.
func (h *harness) grantModule(t testing.TB, tbl *caps.Table, name string, wasm []byte) *caps.Cap {
	t.Helper()
	m, err := h.rt.Compile(context.Background(), name, wasm)
	if err != nil {
		t.Fatal(err)
	}
	b, i := caps.GrantRights(caps.KindModule, false)
	c := h.k.Mint(tbl.Holder(), abi.NewModuleResource(m), b, i, name, "test grant")
	if _, err := tbl.Insert(c); err != nil {
		t.Fatal(err)
	}
	return c
}

const delegationWant = `narrow: ok
spawn: ok
send file: ok
child: argdata child
child: table 0=dir 1=dgram 2=EBADF
child: describe dir: ok edge spawn kind dir
child: dir may open for writing: no
child: read notes: ok the notes
child: create: ENOTCAPABLE
child: open for writing: ENOTCAPABLE
child: open inner: ok
child: received: ok 'here is a file' with 1 handle(s) at fd 4
child: sent file: ok the notes file
child: write sent file: ENOTCAPABLE
revoke dir: ok
revoke file: ok
child: after: read inner ENOTCAPABLE
child: after: read notes ENOTCAPABLE
child: after: open ENOTCAPABLE
child: after: read sent file ENOTCAPABLE
child: after: describe dir ENOTCAPABLE
child: after: table 0=ENOTCAPABLE 2=ENOTCAPABLE 3=ENOTCAPABLE 4=ENOTCAPABLE
child: still here
child: after: channel ok
child exited: ok events 1 error ok signal 0 code 7
parent reopen: ok
parent file: ok the notes
`

// The delegation scenario end to end: a parent guest spawns a child with
// a narrowed, revocable directory and a channel end, sends it a revocable
// file over the channel, and revokes both. The child can use exactly what
// it was given (reads yes, writes ENOTCAPABLE, nothing else in its table)
// and, after the revocation, nothing derived from either forwarder
// (including files it opened beneath the directory) works any more. The
// kernel's graph records every edge and both receipts name the child.
func TestRevokeCutsOffDelegatedHandles(t *testing.T) {
	h, log := observedHarness(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "notes.txt"), "the notes")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sub", "inner.txt"), "inner")

	tbl := h.table("deleg")
	dirCap := h.grantDir(t, tbl, dir, "data", false)
	h.grantModule(t, tbl, "child", abitest.C(t, "abi/testdata/guests/deleg/child.c"))
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	g := h.start(t, ctx, abitest.C(t, "abi/testdata/guests/deleg/parent.c"), tbl, nil)
	st := g.Wait()
	if st.Err() != nil || st.Code != 0 {
		t.Fatalf("parent status %+v\nstdout:\n%s", st, h.stdout.String())
	}
	if got := h.stdout.String(); got != delegationWant {
		t.Fatalf("stdout differs from the expected run:\n%s", lineDiff(got, delegationWant))
	}
	if _, err := os.Stat(filepath.Join(dir, "new.txt")); !os.IsNotExist(err) {
		t.Fatal("the child created a file through a read-only handle")
	}
	const child = "deleg.1"
	t.Run("what the child was derived", func(t *testing.T) { checkChildDerived(t, log, child) })
	t.Run("the file it adopted", func(t *testing.T) { checkChildAdopted(t, log, child) })
	t.Run("both revocations reach it", func(t *testing.T) {
		checkRevocations(t, log, child)
		if dirCap.Revoked() {
			t.Fatal("the parent's own grant was revoked")
		}
	})
	t.Run("nothing is left in the graph", func(t *testing.T) {
		for _, in := range h.k.Snapshot() {
			t.Errorf("left in the graph: %s %s held by %q (closed %v)", in.ID, in.Kind, in.Holder, in.Closed)
		}
	})
}

// checkChildDerived: the child was derived the directory and the channel
// at spawn and opened two files, and its directory cannot write.
func checkChildDerived(t *testing.T, log *graphLog, child string) {
	var edges []string
	for _, e := range log.all(caps.EventDerive) {
		if e.Cap.Holder != child {
			continue
		}
		in := e.Cap
		edges = append(edges, in.Edge.String()+":"+in.Kind.String())
		if in.Edge == caps.EdgeSpawn && in.Kind == caps.KindDirectory &&
			(in.Inheriting.Has(caps.RightFDWrite) || in.Base.Has(caps.RightFileCreateFile)) {
			t.Errorf("the child's directory can write: %v / %v", in.Base, in.Inheriting)
		}
	}
	slices.Sort(edges)
	if want := []string{"open:file", "open:file", "spawn:chan", "spawn:dir"}; !slices.Equal(edges, want) {
		t.Fatalf("capabilities derived for the child: %v, want %v", edges, want)
	}
}

// checkChildAdopted: the child adopted one delegated file, without
// fd_write.
func checkChildAdopted(t *testing.T, log *graphLog, child string) {
	adopted := log.all(caps.EventAdopt)
	if len(adopted) != 1 || adopted[0].Cap.Holder != child || adopted[0].Cap.Edge != caps.EdgeDelegate || adopted[0].Cap.Kind != caps.KindFile {
		t.Fatalf("adoptions %+v, want the child adopting one delegated file", adopted)
	}
	if adopted[0].Cap.Base.Has(caps.RightFDWrite) {
		t.Fatal("the delegated file gained fd_write")
	}
	if o := adopted[0].Cap.Origin; !strings.HasPrefix(o, "sent on c") {
		t.Fatalf("the delegated file's origin is %q: want the channel it was sent on", o)
	}
}

// checkRevocations: two revocations, each reaching the parent's forwarder
// and the child: for the directory the forwarder, the child's copy and the
// two files the child opened beneath it; for the file the forwarder and
// the child's copy.
func checkRevocations(t *testing.T, log *graphLog, child string) {
	revs := log.all(caps.EventRevoke)
	if len(revs) != 2 {
		t.Fatalf("%d revocations, want 2", len(revs))
	}
	sizes := []int{len(revs[0].Receipt.Revoked), len(revs[1].Receipt.Revoked)}
	if !slices.Equal(sizes, []int{4, 2}) {
		t.Fatalf("revocations cut off %v capabilities, want [4 2]", sizes)
	}
	for _, r := range revs {
		hs := slices.Clone(r.Receipt.Holders)
		slices.Sort(hs)
		if !slices.Equal(hs, []string{"deleg", child}) {
			t.Fatalf("receipt holders %v", hs)
		}
	}
}
