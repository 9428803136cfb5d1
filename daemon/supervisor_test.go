package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sandboxd/sandboxd/abi"
	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/internal/ctxtest"
)

const guests = "daemon/testdata/guests/"

func newSupervisor(t *testing.T) *Supervisor {
	t.Helper()
	s, err := New(context.Background(), Options{CacheDir: testCache})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), HangGuard)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// newLoggingSupervisor is a supervisor logging at info level to logs.
func newLoggingSupervisor(t *testing.T, logs io.Writer) *Supervisor {
	t.Helper()
	s, err := New(context.Background(), Options{CacheDir: testCache, Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), HangGuard)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

func compile(t *testing.T, s *Supervisor, rel string) *abi.Module {
	t.Helper()
	m, err := s.Compile(context.Background(), filepath.Base(rel), abitest.WAT(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// spawnSelf compiles testdata/guests/spawn_spin_exit.wat, which spawns
// itself, and writes it to a file (self) for its file: grant; the module
// is released when the test ends.
func spawnSelf(t *testing.T, s *Supervisor) (*abi.Module, string) {
	t.Helper()
	m := compile(t, s, guests+"spawn_spin_exit.wat")
	t.Cleanup(m.Release)
	self := filepath.Join(t.TempDir(), "spawn_spin_exit.wasm")
	if err := os.WriteFile(self, abitest.WAT(t, guests+"spawn_spin_exit.wat"), 0o644); err != nil {
		t.Fatal(err)
	}
	return m, self
}

func mustGrant(t *testing.T, text string) Grant {
	t.Helper()
	g, err := ParseGrant(text)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// waitExit waits for g with a deadline, so that a guest that fails to die
// fails the test instead of hanging it.
func waitExit(t *testing.T, g *Guest, within time.Duration) abi.ExitStatus {
	t.Helper()
	select {
	case <-g.Done():
		return g.Wait()
	case <-time.After(within):
		g.Kill("test deadline")
		t.Fatalf("guest %s still running after %v", g.ID(), within)
		return abi.ExitStatus{}
	}
}

// exitCode waits for g and returns the code it exited with, failing the
// test if it trapped or was killed rather than exiting by itself.
func exitCode(t *testing.T, g *Guest) uint32 {
	t.Helper()
	st := waitExit(t, g, HangGuard)
	if st.Trap != nil || st.Killed != "" {
		t.Fatalf("guest %s did not exit by itself: %+v", g.ID(), st)
	}
	return st.Code
}

// openFDsUnder lists this process's open fds whose target is dir or lies
// beneath it.
func openFDsUnder(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && (target == dir || strings.HasPrefix(target, dir+"/")) {
			out = append(out, e.Name()+" -> "+target)
		}
	}
	return out
}

func TestLaunchWithMissingDirStartsNothingAndLeaksNothing(t *testing.T) {
	s := newSupervisor(t)
	m := compile(t, s, guests+"spin.wat")
	ok := t.TempDir()
	if err := os.WriteFile(filepath.Join(ok, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "nope")
	grants := []Grant{mustGrant(t, "dir:"+ok+"=ok"), mustGrant(t, "file:"+filepath.Join(ok, "f")), mustGrant(t, "dir:"+missing)}

	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Grants: grants})
	if err == nil {
		g.Kill("test")
		t.Fatal("Launch with a missing directory succeeded")
	}
	var ge *GrantError
	if !errors.As(err, &ge) || ge.Grant != grants[2] {
		t.Fatalf("error %v does not name the missing grant", err)
	}
	if !strings.Contains(err.Error(), missing+" does not exist") {
		t.Errorf("error %q does not say the directory is missing", err)
	}
	if n := len(s.Guests()); n != 0 {
		t.Errorf("%d guests listed after a failed launch", n)
	}
	if snap := s.Kernel().Snapshot(); len(snap) != 0 {
		t.Errorf("failed launch minted capabilities: %+v", snap)
	}
	if open := openFDsUnder(t, ok); len(open) != 0 {
		t.Errorf("the grants that did open leaked host fds: %v", open)
	}
}

func TestLaunchRejectsInvalidSpecsBeforeStartingAnything(t *testing.T) {
	s := newSupervisor(t)
	m := compile(t, s, guests+"spin.wat")
	hello := compile(t, s, "abi/testdata/guests/hello.wat") // one page of memory
	dir := t.TempDir()
	cases := []struct {
		name string
		spec LaunchSpec
		says string
	}{
		{"no module", LaunchSpec{}, "no module"},
		{"memory below the module's", LaunchSpec{Module: hello, MemoryLimit: 1024}, "hello.wat needs 65536 bytes of memory to start, more than the memory limit of 1024"},
		{"negative timeout", LaunchSpec{Module: m, Timeout: -time.Second}, "negative"},
		{"memory above 4GiB", LaunchSpec{Module: m, MemoryLimit: MaxMemoryLimit + 1}, "above the wasm32 maximum"},
		{"too few fds", LaunchSpec{Module: m, MaxFDs: 3, Grants: []Grant{mustGrant(t, "dir:"+dir)}}, "allow at least 4"},
		{"env without =", LaunchSpec{Module: m, Env: []string{"NOVALUE"}}, "not KEY=VALUE"},
		{"env with empty key", LaunchSpec{Module: m, Env: []string{"=v"}}, "not KEY=VALUE"},
		{"NUL in argument", LaunchSpec{Module: m, Args: []string{"a\x00b"}}, "NUL"},
		{"duplicate names", LaunchSpec{Module: m, Grants: []Grant{mustGrant(t, "dir:"+dir+"=d"), mustGrant(t, "dir:"+dir+"=d")}}, `name "d" is already taken`},
		{"grant named like stdio", LaunchSpec{Module: m, Grants: []Grant{mustGrant(t, "dir:"+dir+"=stdout")}}, `name "stdout" is already taken`},
		{"grant named like the supervisor channel", LaunchSpec{Module: m, SupervisorChannel: true, Grants: []Grant{mustGrant(t, "dir:"+dir+"=supervisor")}}, `name "supervisor" is already taken`},
	}
	for _, c := range cases {
		g, err := s.Launch(context.Background(), c.spec)
		if err == nil {
			g.Kill("test")
			t.Errorf("%s: Launch succeeded", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: error %q, want it to say %q", c.name, err, c.says)
		}
	}
	if n := len(s.Guests()); n != 0 {
		t.Errorf("%d guests listed after rejected launches", n)
	}
	if snap := s.Kernel().Snapshot(); len(snap) != 0 {
		t.Errorf("rejected launches minted capabilities: %+v", snap)
	}
}

func TestTimeoutKillsSpinningGuest(t *testing.T) {
	s := newSupervisor(t)
	m := compile(t, s, guests+"spin.wat")
	start := time.Now()
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, g, HangGuard)
	if st.Killed != "timeout" {
		t.Fatalf("status %+v, want killed by timeout", st)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("guest ended after %v, before its timeout", took)
	}
	if running, got := g.Status(); running || got.Killed != "timeout" {
		t.Errorf("Status() = %v, %+v after exit", running, got)
	}
}

func TestTimeoutEndsGuestBlockedInPoll(t *testing.T) {
	s := newSupervisor(t)
	m := compile(t, s, guests+"sleep_poll.wat")
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, g, HangGuard)
	if st.Killed != "timeout" {
		t.Fatalf("status %+v, want the hour-long poll ended by the timeout (exit code is poll's errno if poll failed)", st)
	}
}

func TestKillEndsGuestBlockedReadingStdin(t *testing.T) {
	s := newSupervisor(t)
	g := catReadingStdin(t, s)
	if running, _ := g.Status(); !running {
		t.Fatalf("guest exited before it was killed: %+v", g.Wait())
	}
	g.Kill("operator")
	if st := waitExit(t, g, HangGuard); st.Killed != "operator" {
		t.Fatalf("status %+v, want killed with reason operator", st)
	}
}

// A guest's end kills the guests it spawned, and the launched guest is
// done once they have ended: spinning ones stop at their loop checks, and
// one blocked reading the stdin it was handed, a host read its kill
// cannot interrupt, is ended by closing that stdin. The guest exits with 7
// once both children have started; they spin after one read of stdin,
// which an empty stdin answers at once and a pipe never written does not.
func TestGuestsSpawnedEndWhenTheirParentExits(t *testing.T) {
	s := newSupervisor(t)
	m, self := spawnSelf(t, s)
	pr, pw := io.Pipe() // nothing is ever written: a read blocks
	defer pw.Close()
	for _, stdin := range []io.Reader{nil, pr} {
		var stdout abitest.Buffer
		g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Grants: []Grant{mustGrant(t, "file:"+self)}, Stdin: stdin, Stdout: &stdout})
		if err != nil {
			t.Fatal(err)
		}
		// HangGuard is a hang guard: the tree ends within milliseconds of
		// the exit, or never.
		st := waitExit(t, g, HangGuard)
		if st.Err() != nil || st.Code != 7 || stdout.String() != "children spinning\n" {
			t.Fatalf("stdin %T: status %+v, stdout %q; want exit 7 and \"children spinning\\n\"", stdin, st, stdout.String())
		}
		if snap := s.Kernel().Snapshot(); len(snap) != 0 {
			t.Fatalf("stdin %T: %d capabilities still open once the guest is done: its children did not end", stdin, len(snap))
		}
	}
}

func TestStdioPassesThrough(t *testing.T) {
	s := newSupervisor(t)
	m := compile(t, s, guests+"cat.wat")
	in := strings.Repeat("a line of input\n", 1000) // more than one read
	var stdout, stderr bytes.Buffer
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Stdin: strings.NewReader(in), Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, g, HangGuard); st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v", st)
	}
	if stdout.String() != in {
		t.Errorf("stdout has %d bytes, want the %d bytes of stdin", stdout.Len(), len(in))
	}
	if stderr.String() != "done\n" {
		t.Errorf("stderr = %q", stderr.String())
	}
}

// readSpy is a stdin that records whether anything read from it.
type readSpy struct {
	mu   sync.Mutex
	read bool
}

func (r *readSpy) Read(p []byte) (int, error) {
	r.mu.Lock()
	r.read = true
	r.mu.Unlock()
	return 0, io.EOF
}

func TestGuestThatNeverReadsStdinTakesNothingFromIt(t *testing.T) {
	s := newSupervisor(t)
	m, err := s.Compile(context.Background(), "hello.wat", abitest.WAT(t, "abi/testdata/guests/hello.wat"))
	if err != nil {
		t.Fatal(err)
	}
	spy := &readSpy{}
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Stdin: spy})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, g, HangGuard); st.Code != 7 {
		t.Fatalf("status %+v", st)
	}
	spy.mu.Lock()
	defer spy.mu.Unlock()
	if spy.read {
		t.Error("stdin was read although the guest never read it")
	}
}

func TestNilStdioIsEmptyStdinAndDiscardedOutput(t *testing.T) {
	s := newSupervisor(t)
	m := compile(t, s, guests+"cat.wat")
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, g, HangGuard); st.Err() != nil || st.Code != 0 {
		t.Fatalf("status %+v, want exit 0 at end of the empty stdin", st)
	}
}

func TestHandlesAreStdioThenGrantsInOrder(t *testing.T) {
	s := newSupervisor(t)
	m := compile(t, s, guests+"spin.wat")
	dir := t.TempDir()
	file := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	grants := []Grant{mustGrant(t, "dir:"+dir+"=data:ro"), mustGrant(t, "file:"+file)}
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Grants: grants, Principal: Principal{UID: 1000, Name: "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(g.ID(), "g-") {
		t.Errorf("guest id %q", g.ID())
	}
	if got, ok := s.Guest(g.ID()); !ok || got != g {
		t.Errorf("Guest(%q) = %v, %v", g.ID(), got, ok)
	}
	dirB, dirI := caps.GrantRights(caps.KindDirectory, true)
	fileB, fileI := caps.GrantRights(caps.KindFile, false)
	type handle struct {
		fd        uint32
		name      string
		kind      caps.Kind
		base, inh caps.Rights
		origin    string
		holder    string // id and label
	}
	holder := g.ID() + " spin.wat"
	want := []handle{
		{0, "stdin", caps.KindStdio, caps.RightsTTYBase &^ caps.RightFDWrite, 0, "launch", holder},
		{1, "stdout", caps.KindStdio, caps.RightsTTYBase &^ caps.RightFDRead, 0, "launch", holder},
		{2, "stderr", caps.KindStdio, caps.RightsTTYBase &^ caps.RightFDRead, 0, "launch", holder},
		{3, "data", caps.KindDirectory, dirB, dirI, grants[0].String(), holder},
		{4, "notes.txt", caps.KindFile, fileB, fileI, grants[1].String(), holder},
	}
	hs := g.Handles()
	if len(hs) != len(want) {
		t.Fatalf("%d handles, want %d", len(hs), len(want))
	}
	for i, h := range hs {
		got := handle{fd: h.FD, name: h.Cap.Name(), kind: h.Cap.Kind(), origin: h.Cap.Origin()}
		got.base, got.inh = h.Cap.Rights()
		if hd := h.Cap.Holder(); hd != nil {
			got.holder = hd.ID + " " + hd.Label
		}
		if got != want[i] {
			t.Errorf("handle %d = %+v, want %+v", i, got, want[i])
		}
	}
	if hs[3].Cap.Info().Resource != "dir "+dir {
		t.Errorf("dir resource %q", hs[3].Cap.Info().Resource)
	}

	g.Kill("done")
	if st := waitExit(t, g, HangGuard); st.Killed != "done" {
		t.Fatalf("status %+v", st)
	}
	if n := len(g.Handles()); n != 0 {
		t.Errorf("%d handles left after exit", n)
	}
	if snap := s.Kernel().Snapshot(); len(snap) != 0 {
		t.Errorf("capabilities still tracked after the guest exited: %+v", snap)
	}
}

func TestRevokeCutsOffGrantedHandle(t *testing.T) {
	s := newSupervisor(t)
	m := compile(t, s, guests+"write_until_denied.wat")
	file := filepath.Join(t.TempDir(), "out.txt")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Grants: []Grant{mustGrant(t, "file:"+file+"=out")}})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(HangGuard); ; time.Sleep(5 * time.Millisecond) {
		if b, _ := os.ReadFile(file); string(b) == "x" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("guest never wrote through its grant")
		}
	}
	c := g.Handles()[3].Cap
	r, err := s.Revoke(c.ID(), "test revocation")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Revoked) != 1 || r.Revoked[0] != c.ID() || len(r.Holders) != 1 || r.Holders[0] != g.ID() {
		t.Errorf("receipt %+v, want exactly %s held by %s", r, c.ID(), g.ID())
	}
	if st := waitExit(t, g, HangGuard); st.Code != uint32(caps.ENOTCAPABLE) {
		t.Fatalf("status %+v, want exit %d (ENOTCAPABLE from the revoked handle)", st, caps.ENOTCAPABLE)
	}
	if _, err := s.Revoke("c00000000deadbeef", "x"); err == nil || !strings.Contains(err.Error(), "no capability") {
		t.Errorf("Revoke of an unknown id: %v", err)
	}
}

func TestASecondRevokeSaysWhenAndWhyTheFirstCutItOff(t *testing.T) {
	s := newSupervisor(t)
	root, err := s.Mint(ClientHolder("alice", Principal{}), Principal{}, Grant{Kind: GrantDir, Source: t.TempDir(), Name: "d"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	base, inh := root.Rights()
	child, err := s.Kernel().Derive(root, caps.Derivation{Holder: ClientHolder("bob", Principal{}), Edge: caps.EdgeDelegate, Name: "d", Base: base, Inheriting: inh})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Revoke(root.ID(), "first"); err != nil || len(r.Revoked) != 2 {
		t.Fatalf("revoke: %+v, %v", r, err)
	}
	for id, want := range map[caps.ID]string{
		root.ID():  "capability " + string(root.ID()) + " was already revoked at ",
		child.ID(): "capability " + string(child.ID()) + " was already revoked with " + string(root.ID()) + " at ",
	} {
		_, err := s.Revoke(id, "again")
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "(first)") {
			t.Errorf("second revoke of %s: %v, want %q and the first reason", id, err, want)
		}
	}
}

func TestMemoryLimitBoundsGrowth(t *testing.T) {
	s := newSupervisor(t)
	m := compile(t, s, guests+"grow.wat")
	for _, c := range []struct {
		limit uint64
		code  uint32
	}{{1 << 20, 1}, {0, 0}, {16 << 20, 0}} {
		g, err := s.Launch(context.Background(), LaunchSpec{Module: m, MemoryLimit: c.limit})
		if err != nil {
			t.Fatal(err)
		}
		if st := waitExit(t, g, HangGuard); st.Err() != nil || st.Code != c.code {
			t.Errorf("limit %d: status %+v, want exit %d", c.limit, st, c.code)
		}
	}
}

func TestCloseKillsRunningGuestsAndRefusesLaunches(t *testing.T) {
	s, err := New(context.Background(), Options{CacheDir: testCache})
	if err != nil {
		t.Fatal(err)
	}
	m := compile(t, s, guests+"spin.wat")
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), HangGuard)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if running, st := g.Status(); running || st.Killed != "supervisor shutting down" {
		t.Errorf("after Close: running=%v status %+v", running, st)
	}
	if _, err := s.Launch(context.Background(), LaunchSpec{Module: m}); err == nil || !strings.Contains(err.Error(), "shut down") {
		t.Errorf("Launch after Close: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestConcurrentLaunchesRunIndependently(t *testing.T) {
	s := newSupervisor(t)
	m, err := s.Compile(context.Background(), "hello.wat", abitest.WAT(t, "abi/testdata/guests/hello.wat"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	ids := make([]string, n)
	outs := make([]bytes.Buffer, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Stdout: &outs[i]})
			if err != nil {
				errs[i] = err
				return
			}
			ids[i] = g.ID()
			if st := g.Wait(); st.Code != 7 || st.Err() != nil {
				errs[i] = errors.New("unexpected status")
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("guest %d: %v", i, errs[i])
		}
		if seen[ids[i]] {
			t.Errorf("guest id %s given twice", ids[i])
		}
		seen[ids[i]] = true
		if outs[i].String() != "hello\n" {
			t.Errorf("guest %d stdout %q", i, outs[i].String())
		}
	}
	if got := len(s.Guests()); got != n {
		t.Errorf("Guests() lists %d, want the %d exited guests", got, n)
	}
}

func TestGuestContextsDetachFromTheSupervisorsOnceGuestsEnd(t *testing.T) {
	s := newSupervisor(t)
	children := ctxtest.Count(s.ctx)
	s.ctx = children // before any launch: nothing else reads it yet

	spin, err := s.Launch(context.Background(), LaunchSpec{Module: compile(t, s, guests+"spin.wat")})
	if err != nil {
		t.Fatal(err)
	}
	// The guest's context, and once its program runs, the hook that stops
	// its loops when the supervisor's context ends (abi Guest.runOnce).
	if n := children.Live(); n < 1 || n > 2 {
		t.Fatalf("%d contexts attached to the supervisor's while one guest runs, want 1 or 2 (its own and its loop hook)", n)
	}
	spin.Kill("test")
	waitExit(t, spin, HangGuard)

	m := compile(t, s, guests+"exit300.wat")
	// The timeout only has to be set: the guest exits at once, far within
	// it.
	for _, timeout := range []time.Duration{0, HangGuard} {
		for range 3 {
			g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			if st := waitExit(t, g, HangGuard); st.Code != 300 {
				t.Fatalf("status %+v, want exit code 300", st)
			}
		}
	}
	if n := children.Live(); n != 0 {
		t.Errorf("%d guest contexts still attached to the supervisor's after every guest ended, want 0: they stay until Close", n)
	}
}

// readerFunc is an io.Reader that calls itself.
type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

// A guest's end time is recorded with its exit status: from the moment
// Status reports it ended, Ended is set (the server's Info reports both,
// and a client that has seen the guest's Wait return reads them at once).
func TestEndedIsSetWithTheExitStatus(t *testing.T) {
	s := newSupervisor(t)
	g, err := s.Launch(context.Background(), LaunchSpec{Module: compile(t, s, guests+"spin.wat")})
	if err != nil {
		t.Fatal(err)
	}
	if running, _ := g.Status(); !running || !g.Ended().IsZero() {
		t.Fatalf("a running guest: running %v, ended %v", running, g.Ended())
	}
	type state struct {
		running bool
		ended   time.Time
	}
	seen := make(chan state, 1)
	if !g.AfterDone(func() {
		running, _ := g.Status()
		seen <- state{running, g.Ended()}
	}) {
		t.Fatal("AfterDone refused a running guest")
	}
	g.Kill("test")
	waitExit(t, g, HangGuard)
	got := <-seen
	if got.running || got.ended.IsZero() || got.ended.Before(g.Started()) {
		t.Fatalf("at Done: running %v, ended %v (started %v)", got.running, got.ended, g.Started())
	}
}

// A handle table too small for what the launch gives says what it must
// hold, each part named as it is: it said "1 grants and 1 other
// handles" for one grant and the supervisor channel.
func TestATableTooSmallForTheLaunchSaysWhatItMustHold(t *testing.T) {
	s := newSupervisor(t)
	m := compile(t, s, guests+"spin.wat")
	defer m.Release()
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		grants  []Grant
		channel bool
		want    string
	}{
		{[]Grant{mustGrant(t, "file:"+file)}, true, "max fds 4 leaves no room for 3 stdio handles, 1 grant and the supervisor channel: allow at least 5"},
		{[]Grant{mustGrant(t, "file:"+file), mustGrant(t, "file:"+file+"=g")}, false, "max fds 4 leaves no room for 3 stdio handles and 2 grants: allow at least 5"},
	} {
		_, err := s.Launch(context.Background(), LaunchSpec{Module: m, MaxFDs: 4, Grants: c.grants, SupervisorChannel: c.channel})
		if err == nil || err.Error() != c.want {
			t.Errorf("launch: %v, want %q", err, c.want)
		}
	}
}
