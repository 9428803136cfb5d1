package pipeline

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/daemon/guestrpc"
)

// hangGuard bounds waits that only a hang reaches: every wait here is for
// an event (a line of output, an exit), which a loaded machine delivers
// in seconds at most; minutes means the pipeline is stuck.
const hangGuard = 3 * time.Minute

var (
	buildOnce sync.Once
	modules   map[string][]byte
	cacheDir  string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pipeline-cache")
	if err != nil {
		panic(err)
	}
	cacheDir = dir // compiled once, loaded by each test's supervisor
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// output collects a guest's output and lets a test wait for a line.
type output struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{}
	exited  <-chan struct{} // the guest's Done, once launched
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b.Write(p)
	close(o.changed)
	o.changed = make(chan struct{})
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// waitFor waits until the output contains s.
func (o *output) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(hangGuard)
	for {
		o.mu.Lock()
		has, changed := strings.Contains(o.b.String(), s), o.changed
		o.mu.Unlock()
		if has {
			return
		}
		select {
		case <-changed:
		case <-o.exited:
			if !strings.Contains(o.String(), s) {
				t.Fatalf("the guest exited without writing %q:\n%s", s, o.String())
			}
			return
		case <-deadline:
			t.Fatalf("no %q in the output after %s:\n%s", s, hangGuard, o.String())
		}
	}
}

// pipeline is one run: a supervisor with the guest-facing server, the
// documents, and the three guests.
type pipeline struct {
	sup                    *daemon.Supervisor
	in, out                string
	store, parser, fetcher *daemon.Guest
	storeOut, parserOut    *output
	fetcherOut             *output
	fetcherIn              *io.PipeWriter
}

func start(t *testing.T, step bool) *pipeline {
	t.Helper()
	return startWith(t, setup{step: step})
}

// setup is how one run is started: start's defaults when zero.
type setup struct {
	step    bool           // the fetcher waits for a line on stdin before each document
	opts    daemon.Options // the supervisor's options (CacheDir is set)
	in, out string         // the documents and the store's directory; new ones when ""
	sub     string         // the subdirectory lent to the parser; "docs" when ""
}

func startWith(t *testing.T, cfg setup) *pipeline {
	t.Helper()
	buildOnce.Do(func() {
		modules = map[string][]byte{}
		for _, n := range []string{"store", "parser", "fetcher"} {
			modules[n] = abitest.Go(t, "examples/pipeline/"+n)
		}
	})
	opts := cfg.opts
	opts.CacheDir = cacheDir
	sup, err := daemon.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	sup.SetPeerServer(guestrpc.New(sup, guestrpc.Options{}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		_ = sup.Close(ctx)
	})
	p := &pipeline{sup: sup, in: cfg.in, out: cfg.out, storeOut: newOutput(), parserOut: newOutput(), fetcherOut: newOutput()}
	if p.in == "" {
		p.in = t.TempDir()
		writeFile(t, filepath.Join(p.in, "secret.txt"), "not for the parser")
		writeFile(t, filepath.Join(p.in, "docs", "a.txt"), "one two three")
		writeFile(t, filepath.Join(p.in, "docs", "b.txt"), "four five")
		writeFile(t, filepath.Join(p.in, "docs", "c.txt"), "six")
	}
	if p.out == "" {
		p.out = t.TempDir()
	}
	sub := cfg.sub
	if sub == "" {
		sub = "docs"
	}
	// Launched in the order that needs waiting most: each obtains a
	// service that is published after it asks.
	var stdin io.Reader
	var args []string
	if cfg.step {
		var r *io.PipeReader
		r, p.fetcherIn = io.Pipe()
		stdin, args = r, []string{"-step"}
		t.Cleanup(func() { _ = p.fetcherIn.Close() })
	}
	p.fetcher = p.launch(t, "fetcher", p.fetcherOut, stdin, append(args, sub), "dir:"+p.in+"=input:ro", "chan:pipeline")
	p.parser = p.launch(t, "parser", p.parserOut, nil, nil, "chan:pipeline")
	p.store = p.launch(t, "store", p.storeOut, nil, nil, "dir:"+p.out+"=out", "chan:pipeline")
	return p
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (p *pipeline) launch(t *testing.T, name string, out *output, stdin io.Reader, args []string, grants ...string) *daemon.Guest {
	t.Helper()
	g, err := p.tryLaunch(t, name, out, stdin, args, grants...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// tryLaunch launches the module name with grants, and returns why the
// supervisor refused to when it did.
func (p *pipeline) tryLaunch(t *testing.T, name string, out *output, stdin io.Reader, args []string, grants ...string) (*daemon.Guest, error) {
	t.Helper()
	ctx := context.Background()
	m, err := p.sup.Compile(ctx, name+".wasm", modules[name])
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	spec := daemon.LaunchSpec{
		Principal: daemon.Principal{UID: uint32(os.Getuid())}, Module: m, SupervisorChannel: true,
		Args: args, Stdin: stdin, Stdout: out, Stderr: out,
	}
	for _, text := range grants {
		gr, err := daemon.ParseGrant(text)
		if err != nil {
			t.Fatal(err)
		}
		spec.Grants = append(spec.Grants, gr)
	}
	g, err := p.sup.Launch(ctx, spec)
	if err != nil {
		return nil, err
	}
	out.exited = g.Done()
	t.Cleanup(func() { g.Kill("test over"); <-g.Done() })
	return g, nil
}

func (p *pipeline) waitExit(t *testing.T, g *daemon.Guest) int {
	t.Helper()
	select {
	case <-g.Done():
	case <-time.After(hangGuard):
		t.Fatalf("guest %s still running after %s", g.ID(), hangGuard)
	}
	_, st := g.Status()
	return int(st.Code)
}

func TestPipelineStoresEverySummaryAndTheParserHoldsOnlyWhatItWasLent(t *testing.T) {
	p := start(t, false)
	if code := p.waitExit(t, p.fetcher); code != 0 {
		t.Fatalf("fetcher exited %d\nfetcher:\n%s\nparser:\n%s\nstore:\n%s", code, p.fetcherOut, p.parserOut, p.storeOut)
	}
	for name, want := range map[string]string{"a.txt": "a.txt: 3 words\n", "b.txt": "b.txt: 2 words\n", "c.txt": "c.txt: 1 words\n"} {
		got, err := os.ReadFile(filepath.Join(p.out, name))
		if err != nil || string(got) != want {
			t.Errorf("out/%s = %q, %v; want %q", name, got, err, want)
		}
	}
	// The parser could not read outside the lent subdirectory, nor write in it.
	p.parserOut.waitFor(t, "outside the directory: not capable")
	p.parserOut.waitFor(t, "writing into it: not capable")
	if _, err := os.Stat(filepath.Join(p.in, "docs", "scribble.txt")); err == nil {
		t.Error("the parser created a file in the fetcher's directory")
	}
	// Nobody holds more than it needs: the parser's only directory is the
	// lent one, read-only, a descendant of the fetcher's grant.
	var lent []caps.Entry
	for _, e := range p.parser.Handles() {
		if e.Cap.Kind() == caps.KindDirectory {
			lent = append(lent, e)
		}
	}
	if len(lent) != 1 {
		t.Fatalf("parser holds %d directories, want the one lent to it", len(lent))
	}
	if lent[0].Cap.Check(caps.RightFileCreateFile, 0) == nil || lent[0].Cap.Check(0, caps.RightFDWrite) == nil {
		t.Error("the parser's lent directory allows writing")
	}
	grant := p.grantOf(t, p.fetcher, "input")
	if lent[0].Cap.Root() != grant {
		t.Errorf("the parser's directory descends from %s, not the fetcher's grant %s", lent[0].Cap.Root().ID(), grant.ID())
	}
}

// grantOf returns the capability g was granted as name, from the kernel's
// graph: it stays there, closed, after g has exited, while anything
// derived from it is open.
func (p *pipeline) grantOf(t *testing.T, g *daemon.Guest, name string) *caps.Cap {
	t.Helper()
	for _, in := range p.sup.Kernel().Snapshot() {
		if in.Holder == g.ID() && in.Name == name && in.Edge == caps.EdgeGrant {
			c, _ := p.sup.Kernel().Lookup(in.ID)
			return c
		}
	}
	t.Fatalf("guest %s was granted no %q", g.ID(), name)
	return nil
}

func TestRevokingTheFetchersGrantCutsTheParsersCopyMidRun(t *testing.T) {
	p := start(t, true)
	p.storeOut.waitFor(t, "store: serving")
	p.fetcherIn.Write([]byte("\n"))
	p.fetcherOut.waitFor(t, "parsed a.txt: 3 words")
	grant := p.grantOf(t, p.fetcher, "input")
	if _, err := p.sup.Revoke(grant.ID(), "test: the fetcher's documents are withdrawn"); err != nil {
		t.Fatal(err)
	}
	p.fetcherIn.Write([]byte("\n"))
	if code := p.waitExit(t, p.fetcher); code != 1 {
		t.Fatalf("fetcher exited %d, want 1 (its parse failed)\n%s", code, p.fetcherOut)
	}
	p.parserOut.waitFor(t, "parser: read b.txt: not capable (ENOTCAPABLE)")
	if !strings.Contains(p.fetcherOut.String(), "parse b.txt failed") {
		t.Errorf("fetcher output:\n%s", p.fetcherOut)
	}
	if running, _ := p.parser.Status(); !running {
		t.Errorf("the parser did not survive the revocation:\n%s", p.parserOut)
	}
	if _, err := os.Stat(filepath.Join(p.out, "b.txt")); err == nil {
		t.Error("b.txt was stored after the revocation")
	}
}

// killStoreMidRun starts a stepped pipeline, kills the store after the
// first document and waits until the second one's put has failed and the
// fetcher has exited 1.
func killStoreMidRun(t *testing.T) *pipeline {
	t.Helper()
	p := start(t, true)
	p.storeOut.waitFor(t, "store: serving")
	p.fetcherIn.Write([]byte("\n"))
	p.fetcherOut.waitFor(t, "parsed a.txt: 3 words")
	p.store.Kill("test: the store goes away")
	<-p.store.Done()
	p.fetcherIn.Write([]byte("\n"))
	if code := p.waitExit(t, p.fetcher); code != 1 {
		t.Fatalf("fetcher exited %d, want 1\n%s", code, p.fetcherOut)
	}
	p.parserOut.waitFor(t, "parser: put b.txt:")
	return p
}

func TestKillingTheStoreFailsThePutWithAClearException(t *testing.T) {
	p := killStoreMidRun(t)
	out := p.parserOut.String()
	if !strings.Contains(out, "is gone") || !strings.Contains(out, p.store.ID()) {
		t.Errorf("the parser's put failed without saying the store is gone:\n%s", out)
	}
}

// A store started again after the first was killed serves the parser:
// the put that found the store gone failed with a disconnected exception,
// on which the parser obtains the store again, and a new fetcher's
// documents are stored by the new store.
func TestARestartedStoreServesTheParserAgain(t *testing.T) {
	p := killStoreMidRun(t)
	storeOut := newOutput()
	p.launch(t, "store", storeOut, nil, nil, "dir:"+p.out+"=out", "chan:pipeline")
	p.parserOut.waitFor(t, "parser: obtained the store again")
	fetcherOut := newOutput()
	fetcher := p.launch(t, "fetcher", fetcherOut, nil, []string{"docs"}, "dir:"+p.in+"=input:ro", "chan:pipeline")
	if code := p.waitExit(t, fetcher); code != 0 {
		t.Fatalf("the second fetcher exited %d\nfetcher:\n%s\nparser:\n%s\nstore:\n%s", code, fetcherOut, p.parserOut, storeOut)
	}
	if got, err := os.ReadFile(filepath.Join(p.out, "b.txt")); err != nil || string(got) != "b.txt: 2 words\n" {
		t.Fatalf("out/b.txt = %q, %v after the store was started again", got, err)
	}
}
