package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/policies"
)

// newAuditedSupervisor returns a supervisor recording into a new audit
// log, and the log's path. The log is closed after the supervisor.
func newAuditedSupervisor(t *testing.T) (*Supervisor, string) {
	t.Helper()
	s, l, path := openAuditedSupervisor(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), HangGuard)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Errorf("closing the audit log: %v", err)
		}
	})
	return s, path
}

// openAuditedSupervisor is a supervisor recording in a new audit log,
// the log and its path; closing both is the caller's.
func openAuditedSupervisor(t *testing.T) (*Supervisor, *audit.Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Options{Audit: l})
	if err != nil {
		t.Fatal(err)
	}
	return s, l, path
}

// records reads the log at path.
func records(t *testing.T, path string) []audit.Record {
	t.Helper()
	var out []audit.Record
	if err := audit.Scan(path, func(r audit.Record, _ audit.Pos) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// liveEqualsReplay fails unless the graph replayed from the log at path
// is the kernel's.
func liveEqualsReplay(t *testing.T, s *Supervisor, path string) *audit.Graph {
	t.Helper()
	replayed, err := audit.Replay(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	live, err := s.AuditGraph(time.Time{}) // the kernel's, with what the supervisor records of channels
	if err != nil {
		t.Fatal(err)
	}
	a, b := live.Doc().Caps, replayed.Doc().Caps
	if len(a) != len(b) {
		t.Fatalf("live graph: %d capabilities, replayed from the log: %d", len(a), len(b))
	}
	for i := range a {
		if !reflect.DeepEqual(*a[i], *b[i]) {
			t.Fatalf("capability %d:\nlive     %+v\nreplayed %+v", i, *a[i], *b[i])
		}
	}
	return replayed
}

func TestAuditRecordsLaunchDelegationRevocationAndExit(t *testing.T) {
	s, path := newAuditedSupervisor(t)
	dir := t.TempDir()
	a, err := launchSpin(t, s, nil, "dir:"+dir+"=data")
	if err != nil {
		t.Fatal(err)
	}
	b, err := launchSpin(t, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	granted := a.Handles()[3].Cap
	sent, err := b.SendCap(context.Background(), granted, "data")
	if err != nil {
		t.Fatal(err)
	}
	g := liveEqualsReplay(t, s, path)
	chain, err := g.Trace(string(sent.ID()))
	if err != nil || len(chain) != 2 || chain[0].Holder != a.ID() || chain[1].Holder != b.ID() || chain[1].Edge != "delegate" {
		t.Fatalf("trace of the delegated copy: %+v, %v", chain, err)
	}

	r, err := s.Revoke(granted.ID(), "test")
	if err != nil {
		t.Fatal(err)
	}
	liveEqualsReplay(t, s, path)
	a.Kill("test over")
	<-a.Done()
	b.Kill("test over")
	<-b.Done()
	liveEqualsReplay(t, s, path)

	var types []string
	var revoke *audit.ReceiptRecord
	for _, rec := range records(t, path) {
		types = append(types, rec.Type)
		if rec.Type == audit.TypeRevoke {
			revoke = rec.Receipt
		}
	}
	all := strings.Join(types, ",")
	for _, want := range []string{"open", "grant", "guest-start", "delegate", "revoke", "close", "guest-exit"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %s record in %s", want, all)
		}
	}
	if revoke == nil || len(revoke.Revoked) != len(r.Revoked) || revoke.Reason != "test" {
		t.Fatalf("revoke record %+v, receipt %+v", revoke, r)
	}
	if rep, err := audit.Verify(path); err != nil || rep.Bad != nil {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

func TestAuditRecordsPolicyDecisionsWithTheirRule(t *testing.T) {
	s, path := newAuditedSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
grant "data" {
  resources = ["dir:%s"]
  rights    = ["file_open", "file_readdir"]
  subject {
    users = ["alice"]
  }
}
`, dir)))
	a, err := launchSpin(t, s, nil, "dir:"+dir+"=data")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := launchSpin(t, s, nil, "dir:"+t.TempDir()+"=other"); !IsPolicyDenial(err) {
		t.Fatalf("grant outside the policy: %v", err)
	}
	b, err := launchSpin(t, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.SendCap(context.Background(), a.Handles()[3].Cap, "data"); !IsPolicyDenial(err) {
		t.Fatalf("delegation without a delegate rule: %v", err)
	}
	var got []string
	for _, rec := range records(t, path) {
		if d := rec.Decision; d != nil {
			got = append(got, fmt.Sprintf("%s %v %s", d.Op, d.Allowed, d.Rule))
		}
	}
	want := []string{
		`grant true grant "data" (test.hcl:2)`,
		"grant false default deny",
		"delegate false default deny",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decisions %q, want %q", got, want)
	}
}

// supervisorLoggingABatchAFile is a supervisor whose audit log starts a
// new file for each batch it writes, so that a directory made where one
// of those files goes makes that batch, and the log, fail.
func supervisorLoggingABatchAFile(t *testing.T) (*Supervisor, *audit.Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.Open(path, audit.Options{MaxFileBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s, err := New(context.Background(), Options{Audit: l})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s, l, path
}

// When the audit log cannot be written, no guest starts and nothing is
// granted or passed on: none of it could be recorded.
func TestAuditLogFailureRefusesLaunchesGrantsAndDelegations(t *testing.T) {
	s, _, path := supervisorLoggingABatchAFile(t)
	// The next batch goes to a new file, and a directory is in its way.
	if err := os.Mkdir(path+".1", 0o700); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i := 0; i < 2; i++ { // the failing launch, and one after it
		_, err := launchSpin(t, s, nil, "dir:"+dir+"=data")
		if !IsAuditFailure(err) || !strings.Contains(err.Error(), "the audit log cannot be written") {
			t.Fatalf("launch %d with a failed audit log: %v", i, err)
		}
	}
	if gs := s.Guests(); len(gs) != 0 {
		t.Fatalf("%d guests listed after launches the log could not record", len(gs))
	}
	holder := ClientHolder("client", Principal{})
	if _, err := s.Mint(holder, Principal{}, mustGrant(t, "dir:"+dir), "test"); !IsAuditFailure(err) {
		t.Fatalf("mint with a failed audit log: %v", err)
	}
	d, err := caps.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Kernel().Mint(holder, d, caps.RightFileOpen, 0, "d", "test")
	_, err = s.Kernel().Derive(c, caps.Derivation{Holder: &caps.Holder{ID: "g-other"}, Edge: caps.EdgeDelegate, Base: caps.RightFileOpen})
	if !IsAuditFailure(err) || !errors.Is(err, caps.ENOTCAPABLE) {
		t.Fatalf("delegation with a failed audit log: %v", err)
	}
}

// Once the log cannot be written, what a guest makes within its own
// handles (an open or a dup beneath a grant, an object it creates) cannot
// be recorded either: it is revoked as it is made, so the handle the call
// returns answers every call with ENOTCAPABLE. Nothing usable is held that
// the log does not show.
func TestAuditLogFailureRevokesWhatAGuestMakesItself(t *testing.T) {
	s, l, path := supervisorLoggingABatchAFile(t)
	d, err := caps.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	holder := &caps.Holder{ID: "g-maker"}
	dir := s.Kernel().Mint(holder, d, caps.RightFileOpen, caps.RightFDRead, "d", "test")
	// Each batch goes to a file of its own; a directory is in the way of
	// the one after the next, so the next batch fails to move on.
	if err := os.Mkdir(path+".2", 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Kernel().Derive(dir, caps.Derivation{Holder: holder, Edge: caps.EdgeOpen}); err != nil {
		t.Fatal(err)
	}
	if l.Err() == nil {
		t.Fatal("the log has not failed: the test did not make it fail")
	}
	opened, err := s.Kernel().Derive(dir, caps.Derivation{Holder: holder, Edge: caps.EdgeOpen, Inheriting: caps.RightFDRead})
	if err != nil {
		t.Fatal(err)
	}
	if !opened.Revoked() {
		t.Error("a capability derived within a holder's own grant after the log failed is live, and in no record")
	}
	made := s.Kernel().Create(holder, caps.NewByteObject(), caps.RightsByteObjectBase, 0, "", "fd_create1")
	if !made.Revoked() {
		t.Error("an object created after the log failed is live, and in no record")
	}
	if dir.Revoked() {
		t.Error("the grant recorded before the failure was revoked too")
	}
}

// A capability in flight when the log fails (sent, not yet received) is
// revoked as its receiver adopts it: the adopt record that would name its
// holder cannot be written, and the log would show it held by no one.
func TestAuditLogFailureRevokesWhatIsReceivedAfterIt(t *testing.T) {
	s, l, path := supervisorLoggingABatchAFile(t)
	d, err := caps.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sender, receiver := &caps.Holder{ID: "g-sender"}, &caps.Holder{ID: "g-receiver"}
	dir := s.Kernel().Mint(sender, d, caps.RightFileOpen, caps.RightFDRead, "d", "test")
	sent, err := s.Kernel().Derive(dir, caps.Derivation{Edge: caps.EdgeDelegate, Base: caps.RightFileOpen, Inheriting: caps.RightFDRead})
	if err != nil {
		t.Fatal(err)
	}
	// Each batch goes to a file of its own; a directory is in the way of
	// the one after the next, so the next batch fails to move on (two
	// batches, the grant's and the send's, came before).
	if err := os.Mkdir(path+".3", 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Kernel().Derive(dir, caps.Derivation{Holder: sender, Edge: caps.EdgeOpen}); err != nil {
		t.Fatal(err)
	}
	if l.Err() == nil {
		t.Fatal("the log has not failed: the test did not make it fail")
	}
	s.Kernel().Adopt(sent, receiver)
	if !sent.Revoked() {
		t.Error("a capability received after the log failed is live, and its holder in no record")
	}
	if dir.Revoked() {
		t.Error("the grant recorded before the failure was revoked too")
	}
}

// A guest that replaces its program (proc_exec) once the audit log cannot
// be written ends before the new program runs, as a launch whose start
// cannot be recorded never runs: its guest-exec record, which the log
// would show the new program by, is lost. The program ran, unrecorded,
// while the log named the one launched.
func TestAuditLogFailureEndsAGuestBeforeTheProgramItExecsRuns(t *testing.T) {
	s, l, path := supervisorLoggingABatchAFile(t)
	next := filepath.Join(t.TempDir(), "hello.wasm") // exits 7
	if err := os.WriteFile(next, abitest.WAT(t, "abi/testdata/guests/hello.wat"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdin, start := io.Pipe()
	defer start.Close()
	g, err := s.Launch(context.Background(), LaunchSpec{Module: compile(t, s, guests+"exec_fd3.wat"), Grants: []Grant{mustGrant(t, "file:"+next)}, Stdin: stdin})
	if err != nil {
		t.Fatal(err)
	}
	// Every file the log could move on to is a directory: the next
	// batch fails.
	for i := 1; i <= 64; i++ {
		_ = os.Mkdir(audit.FilePath(path, i), 0o700)
	}
	s.Kernel().Create(&caps.Holder{ID: "g-other"}, caps.NewByteObject(), caps.RightsByteObjectBase, 0, "", "fd_create1")
	if l.Err() == nil {
		t.Fatal("the log has not failed: the test did not make it fail")
	}
	if _, err := start.Write([]byte{1}); err != nil { // it execs hello.wasm
		t.Fatal(err)
	}
	st := waitExit(t, g, HangGuard)
	if st.Code == 7 || !strings.Contains(st.Killed, "audit log") {
		t.Fatalf("status %+v: want the guest killed for the audit log before the program it execs runs (that one exits 7)", st)
	}
}

// A lease that runs out is recorded: the revocation with its receipt,
// then a lease-expired record naming the capability.
func TestAuditRecordsLeaseExpiry(t *testing.T) {
	s, path := newAuditedSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
grant "brief" {
  resources = ["dir:%s"]
  ttl       = "20ms"
}
`, dir)))
	g, err := launchSpin(t, s, nil, "dir:"+dir+"=data")
	if err != nil {
		t.Fatal(err)
	}
	c := g.Handles()[3].Cap
	found := errors.New("found")
	var revoke *audit.ReceiptRecord
	ctx, cancel := context.WithTimeout(context.Background(), HangGuard) // only a hang reaches it
	defer cancel()
	err = audit.Follow(ctx, path, time.Millisecond, func(r audit.Record, _ audit.Pos) error {
		switch {
		case r.Type == audit.TypeRevoke && r.Cap.ID == string(c.ID()):
			revoke = r.Receipt
		case r.Type == audit.TypeLeaseExpired && r.Cap.ID == string(c.ID()):
			return found
		}
		return nil
	})
	if !errors.Is(err, found) {
		t.Fatalf("no lease-expired record for %s (%v)", c.ID(), err)
	}
	if revoke == nil || !strings.HasPrefix(revoke.Reason, "lease expired") || len(revoke.Revoked) != 1 {
		t.Fatalf("revoke record before it: %+v", revoke)
	}
}

// Handles given at launch (delegations) and to spawned children are
// recorded on their paths: a delegate record in flight adopted by the new
// guest, and spawn records held by the children.
func TestAuditRecordsLaunchDelegationsAndSpawns(t *testing.T) {
	s, path := newAuditedSupervisor(t)
	m, self := spawnSelf(t, s)
	from, err := s.Mint(ClientHolder("client", Principal{}), Principal{}, mustGrant(t, "dir:"+t.TempDir()), "test")
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Grants: []Grant{mustGrant(t, "file:"+self)}, Delegations: []Delegation{{From: from, Name: "given"}}})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, g, HangGuard); st.Code != 7 {
		t.Fatalf("status %+v", st)
	}
	var delegated, adopted bool
	spawns := map[string]bool{} // holders of spawn records
	for _, r := range records(t, path) {
		switch {
		case r.Type == audit.TypeDelegate && r.Cap.Parent == string(from.ID()) && r.Cap.Holder == "":
			delegated = true
		case r.Type == audit.TypeAdopt && r.Cap.Name == "given" && r.Cap.Holder == g.ID():
			adopted = true
		case r.Type == audit.TypeSpawn:
			spawns[r.Cap.Holder] = true
		}
	}
	if !delegated || !adopted || len(spawns) != 2 {
		t.Fatalf("delegated at launch %v, adopted %v, spawn records held by %v (want two children)", delegated, adopted, spawns)
	}
	liveEqualsReplay(t, s, path)
}

func TestCloseWithRunningGuestsWritesOneShutdownRecordForThemAll(t *testing.T) {
	s, path := newAuditedSupervisor(t)
	m := compile(t, s, guests+"idle.wat")
	defer m.Release()
	gs := launchIdle(t, s, m, 3)
	ctx, cancel := context.WithTimeout(context.Background(), HangGuard)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		if st := g.Wait(); st.Killed != errShutdown.Error() {
			t.Errorf("guest %s: %+v, want killed by the shutdown", g.ID(), st)
		}
	}
	recs := records(t, path)
	last := recs[len(recs)-1]
	if last.Type != audit.TypeShutdown || last.Running != 3 {
		t.Fatalf("last record %+v, want a shutdown with 3 running", last)
	}
	for _, r := range recs {
		if r.Type == audit.TypeGuestExit || r.Type == audit.TypeClose {
			t.Errorf("%s record %+v: the shutdown record stands for the guests' ends", r.Type, r)
		}
	}
	g, err := audit.Replay(path, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(g.Nodes()); n != 0 {
		t.Errorf("the graph replayed after the shutdown holds %d capabilities, want none", n)
	}
}

// Abandon, serve's shutdown before it exits, records one shutdown record
// for the guests it leaves running, without a guest that has ended, and
// refuses launches; the log may then close while those guests still run
// (serve closes it before the process's exit ends them): nothing they do
// is recorded, and nothing fails.
func TestAbandonRecordsTheShutdownOfTheGuestsLeftRunning(t *testing.T) {
	s, l, path := openAuditedSupervisor(t)
	m := compile(t, s, guests+"idle.wat")
	defer m.Release()
	gs := launchIdle(t, s, m, 4)
	killAll(t, gs[3:]) // ended, and its end recorded, before the shutdown
	if n := s.Abandon(); n != 3 {
		t.Fatalf("Abandon left %d guests running, want 3", n)
	}
	if _, err := s.Launch(context.Background(), LaunchSpec{Module: m}); err == nil {
		t.Fatal("a launch after Abandon succeeded")
	}
	recs := records(t, path)
	if last := recs[len(recs)-1]; last.Type != audit.TypeShutdown || last.Running != 3 {
		t.Fatalf("last record %+v, want a shutdown with 3 running", last)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), HangGuard)
	defer cancel()
	if err := s.Close(ctx); err != nil { // in serve, the exit
		t.Fatal(err)
	}
	for _, g := range gs[:3] {
		if st := g.Wait(); st.Killed != errShutdown.Error() {
			t.Errorf("guest %s: %+v, want killed by the shutdown", g.ID(), st)
		}
	}
	if s.auditFailed.Load() {
		t.Error("the audit log failed: a record was written after the shutdown record")
	}
	if got := records(t, path); len(got) != len(recs) {
		t.Errorf("%d records after the shutdown record", len(got)-len(recs))
	}
}

// `audit who-can KIND:NAME` names a declared resource as a grant names it
// (docs/AUDIT.md), whatever the grant's option: a guest launched with
// `dir:reports:ro`, `sock:db:dial` and `sock:db=conn` holds both resources, and
// is listed for each. The grants are recorded as asked (by name, with
// their options), and the audit package reads back the grammar
// Grant.String writes.
func TestWhoCanFindsDeclaredResourcesGrantedWithAnyOption(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := newSupervisor(t)
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
resource "dir" "reports" {
  path = %q
}
resource "sock" "db" {
  tcp = %q
}
grant "all" {
  resources = ["dir:reports", "sock:db"]
}
`, t.TempDir(), ln.Addr().String())))
	g, err := launchSpin(t, s, nil, "dir:reports:ro", "sock:db:dial", "sock:db=conn")
	if err != nil {
		t.Fatal(err)
	}
	graph := audit.FromSnapshot(s.Kernel().Snapshot(), nil)
	for resource, fds := range map[string][]int{"dir:reports": {3}, "sock:db": {4, 5}} {
		got := graph.WhoCan(resource)
		var want []string
		for _, fd := range fds {
			want = append(want, string(g.Handles()[fd].Cap.ID()))
		}
		var ids []string
		for _, r := range got {
			ids = append(ids, r.Cap)
		}
		slices.Sort(ids)
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			var origins []string
			for _, fd := range fds {
				origins = append(origins, g.Handles()[fd].Cap.Origin())
			}
			t.Errorf("who-can %s = %v; want %v (granted as %q)", resource, ids, want, origins)
		}
	}
}

// A grant the policy made a lease is suggested as one: the policy learnt
// from the log gives the same module the same resource for no longer
// than it had it.
func TestSuggestedPolicyKeepsTheLeaseOfAGrant(t *testing.T) {
	s, path := newAuditedSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
grant "leased" {
  resources = ["dir:%s"]
  ttl       = "1h"
}
`, dir)))
	if _, err := launchSpin(t, s, nil, "dir:"+dir+"=data"); err != nil {
		t.Fatal(err)
	}
	out, err := audit.Suggest(path, "")
	if err != nil {
		t.Fatalf("Suggest: %v\n%s", err, out)
	}
	p, err := policies.Parse("suggested.hcl", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	var ttls []time.Duration
	for _, r := range p.Rules() {
		ttls = append(ttls, r.TTL)
	}
	if len(ttls) != 1 || ttls[0] != time.Hour {
		t.Fatalf("suggested rules with leases %v, want one of 1h:\n%s", ttls, out)
	}
}

// A delegation the policy made a lease is suggested as one: the policy
// learnt from the log lets the module pass the resource on for no longer
// than its copies lasted.
func TestSuggestedPolicyKeepsTheLeaseOfADelegation(t *testing.T) {
	s, path := newAuditedSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
grant "data" {
  resources = ["dir:%s"]
}
delegate "lend" {
  resources = ["dir:%s"]
  max_depth = 1
  ttl       = "15m"
}
`, dir, dir)))
	a, err := launchSpin(t, s, nil, "dir:"+dir+"=data")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Launch(context.Background(), LaunchSpec{
		Principal: Principal{UID: 1000, GID: 1000, Name: "alice"}, Module: compile(t, s, guests+"spin.wat"),
		Delegations: []Delegation{{From: a.Handles()[3].Cap, Name: "data"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Kill("test over"); <-b.Done() })
	out, err := audit.Suggest(path, "")
	if err != nil {
		t.Fatalf("Suggest: %v\n%s", err, out)
	}
	p, err := policies.Parse("suggested.hcl", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range p.Rules() {
		if r.Type == policies.TypeDelegate && r.TTL != 15*time.Minute {
			t.Fatalf("delegate rule %s with lease %v, want 15m:\n%s", r.Name, r.TTL, out)
		}
	}
}

// A copy delegated at launch goes to a known recipient, the guest
// launched: the delegate rule suggested for it names that guest's module
// in a to block, as for any launched recipient, and allows no other.
func TestSuggestedPolicyNamesTheRecipientOfALaunchDelegation(t *testing.T) {
	s, path := newAuditedSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
grant "data" {
  resources = ["dir:%s"]
}
delegate "lend" {
  resources = ["dir:%s"]
  max_depth = 1
}
`, dir, dir)))
	a, err := launchSpin(t, s, nil, "dir:"+dir+"=data")
	if err != nil {
		t.Fatal(err)
	}
	idle := compile(t, s, guests+"idle.wat")
	b, err := s.Launch(context.Background(), LaunchSpec{
		Principal: Principal{UID: 1000, GID: 1000, Name: "alice"}, Module: idle,
		Delegations: []Delegation{{From: a.Handles()[3].Cap, Name: "data"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Kill("test over"); <-b.Done() })
	out, err := audit.Suggest(path, "")
	if err != nil {
		t.Fatalf("Suggest: %v\n%s", err, out)
	}
	p, err := policies.Parse("suggested.hcl", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	lend := policies.Request{Op: policies.OpDelegate, Kind: "dir", Path: dir, Depth: 1, Module: policies.Module{SHA256: a.Module().HashString()}}
	for to, allowed := range map[string]bool{idle.HashString(): true, a.Module().HashString(): false} {
		lend.To = policies.Module{SHA256: to}
		if d := policies.Evaluate(p, lend); d.Allowed != allowed {
			t.Errorf("delegation to %s: allowed %v, want %v:\n%s\n%s", to, d.Allowed, allowed, d.Explain(), out)
		}
	}
}

// grantRecordOf is the cap of the grant record of capability id in the
// log at path, as the line holds it: the fields a reader of the file
// sees, whatever this package's types make of them.
func grantRecordOf(t *testing.T, path string, id caps.ID) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r struct {
			Type string         `json:"type"`
			Cap  map[string]any `json:"cap"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if r.Type == audit.TypeGrant && r.Cap["id"] == string(id) {
			return r.Cap
		}
	}
	t.Fatalf("no grant record of %s in the log", id)
	return nil
}

// Every grant's record names the user who made it, by name and uid: a
// live grant by root to a guest alice launched names root, not alice (the
// launcher, whom the guest-start record names); the launch's own grants
// name alice; a capability bob mints for himself names bob. The graph,
// live and replayed, and a trace say the same.
func TestAuditRecordsTheUserWhoMadeEachGrant(t *testing.T) {
	s, path := newAuditedSupervisor(t)
	g, err := launchSpin(t, s, nil, "dir:"+t.TempDir()+"=launched") // launched by alice, uid 1000
	if err != nil {
		t.Fatal(err)
	}
	live, err := g.Grant(context.Background(), Principal{UID: 0, GID: 0, Name: "root"}, mustGrant(t, "dir:"+t.TempDir()+"=live"))
	if err != nil {
		t.Fatal(err)
	}
	bob := Principal{UID: 1001, GID: 1001, Name: "bob"}
	minted, err := s.Mint(ClientHolder("uid:1001", bob), bob, mustGrant(t, "dir:"+t.TempDir()), "test")
	if err != nil {
		t.Fatal(err)
	}
	unnamed, err := g.Grant(context.Background(), Principal{UID: 4242, GID: 4242}, mustGrant(t, "dir:"+t.TempDir()+"=unnamed"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cap *caps.Cap
		by  string
		uid float64
	}{
		{g.Handles()[3].Cap, "alice", 1000},
		{live, "root", 0},
		{minted, "bob", 1001},
		{unnamed, "uid:4242", 4242},
	} {
		rec := grantRecordOf(t, path, c.cap.ID())
		if rec["by"] != c.by || rec["by_uid"] != c.uid {
			t.Errorf("grant record of %s (%s): by %v, by_uid %v; want %q, %v", c.cap.ID(), c.cap.Origin(), rec["by"], rec["by_uid"], c.by, c.uid)
		}
	}
	replayed := liveEqualsReplay(t, s, path)
	chain, err := replayed.Trace(string(live.ID()))
	if err != nil {
		t.Fatal(err)
	}
	step, err := json.Marshal(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(step), `"by":"root","by_uid":0`) {
		t.Errorf("trace of the live grant: %s; want it made by root, uid 0", step)
	}
}

// A grant made live by another user than the guest's launcher is
// suggested for the user who made it: root granting alice's guest a
// directory yields a rule for uid 0, under which alice may not grant her
// guest the directory herself (the log shows no grant of hers).
func TestSuggestedPolicyGrantsALiveGrantForTheUserWhoMadeIt(t *testing.T) {
	s, path := newAuditedSupervisor(t)
	dir := t.TempDir()
	g, err := launchSpin(t, s, nil) // launched by alice, uid 1000
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Grant(context.Background(), Principal{Name: "root"}, mustGrant(t, "dir:"+dir+"=data")); err != nil {
		t.Fatal(err)
	}
	out, err := audit.Suggest(path, "")
	if err != nil {
		t.Fatalf("Suggest: %v\n%s", err, out)
	}
	p, err := policies.Parse("suggested.hcl", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	req := policies.Request{Op: policies.OpGrant, Kind: "dir", Path: caps.RealPath(dir), Module: policies.Module{SHA256: g.Module().HashString()}}
	for uid, allowed := range map[uint32]bool{0: true, 1000: false} {
		req.Subject = policies.Subject{UID: uid}
		if d := policies.Evaluate(p, req); d.Allowed != allowed {
			t.Errorf("grant by uid %d: allowed %v, want %v (%s):\n%s", uid, d.Allowed, allowed, d.Explain(), out)
		}
	}
}

// A spawned child's module is recorded: a guest-spawn record names the
// child, its module (name and sha256), the guest that spawned it and the
// launcher's uid, before the first record of a handle it is given, so
// that the graph shows the child's module and policy suggest can write
// rules for what the child passes on. Before it, the child was a bare
// holder id.
func TestAuditRecordsTheModuleOfASpawnedChild(t *testing.T) {
	s, path := newAuditedSupervisor(t)
	m, self := spawnSelf(t, s)
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Principal: Principal{UID: 4242}, Grants: []Grant{mustGrant(t, "file:"+self)}})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, g, HangGuard); st.Code != 7 {
		t.Fatalf("status %+v", st)
	}
	spawned := map[string]*audit.GuestRecord{}
	for _, r := range records(t, path) {
		switch {
		case r.Type == audit.TypeGuestSpawn:
			spawned[r.Guest.ID] = r.Guest
		case r.Type == audit.TypeSpawn && spawned[r.Cap.Holder] == nil:
			t.Errorf("spawn record %+v before any guest-spawn record of its holder", *r.Cap)
		}
	}
	if len(spawned) != 2 {
		t.Fatalf("guest-spawn records %v, want one per child (two)", spawned)
	}
	for id, c := range spawned {
		if c.Module != "spawn_spin_exit.wasm" || c.SHA256 != m.HashString() || c.Parent != g.ID() || c.UID != 4242 {
			t.Errorf("guest-spawn record of %s: %+v, want module spawn_spin_exit.wasm %s, parent %s, uid 4242", id, *c, m.HashString(), g.ID())
		}
	}
	replayed := liveEqualsReplay(t, s, path)
	for id := range spawned {
		if h := replayed.Holder(id); h.Module != "spawn_spin_exit.wasm" || h.Parent != g.ID() || h.Running {
			t.Errorf("the graph's holder %s: %+v, want the child's module, its parent, not running (its parent has exited)", id, h)
		}
	}
}

// The live graph (Supervisor.AuditGraph) names a running spawned child's
// module and parent, as the graph replayed from its guest-spawn record
// does, and who-can lists the child, with its module, for the copy of the
// grant it was handed. The live graph knew only launched guests.
func TestLiveGraphShowsARunningSpawnedChildsModule(t *testing.T) {
	s, path := newAuditedSupervisor(t)
	wasm := abitest.WAT(t, guests+"spawn_hold.wat")
	self := filepath.Join(t.TempDir(), "spawn_hold.wasm")
	if err := os.WriteFile(self, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := s.Compile(context.Background(), "spawn_hold.wasm", wasm)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	started := make(chan struct{}, 1)
	stdin, hold := io.Pipe()
	defer hold.Close()
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Grants: []Grant{mustGrant(t, "file:"+self)}, Stdin: stdin, Stdout: &startedWriter{started: started}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { g.Kill("test over"); <-g.Done() }()
	select {
	case <-started:
	case <-g.Done():
		t.Fatalf("the guest ended before it spawned: %+v", g.Wait())
	}
	child := g.ID() + ".1"
	live, err := s.AuditGraph(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	replayed := liveEqualsReplay(t, s, path)
	for name, gr := range map[string]*audit.Graph{"live": live, "replayed": replayed} {
		if h := gr.Holder(child); h.Module != "spawn_hold.wasm" || h.Parent != g.ID() || !h.Running || h.SHA256 != m.HashString() {
			t.Errorf("%s graph's holder %s: %+v, want module spawn_hold.wasm, parent %s, running", name, child, h, g.ID())
		}
	}
	var found bool
	for _, r := range live.WhoCan("file:" + self) {
		found = found || r.Holder == child && r.Module == "spawn_hold.wasm"
	}
	if !found {
		t.Errorf("who-can file:%s does not list the child %s (spawn_hold.wasm): %+v", self, child, live.WhoCan("file:"+self))
	}
}

// A spawned child that replaces its program (proc_exec) is recorded as
// a launched guest's exec is, before the program it execs runs: the log,
// the graph replayed from it and the live graph know the child as the
// module it runs now. Nothing recorded it, and both graphs named the
// module it was spawned with.
func TestAuditRecordsASpawnedChildsExec(t *testing.T) {
	s, path := newAuditedSupervisor(t)
	g, stdin, stdout, nextHash := launchSpawnExec(t, s)
	if _, err := stdin.Write([]byte{1}); err != nil { // the child execs
		t.Fatal(err)
	}
	if line, err := stdout.ReadString('\n'); line != "child execed\n" { // and the program it execed has run
		t.Fatalf("the guest wrote %q (%v), want \"child execed\": status %+v", line, err, g.Wait())
	}
	child := g.ID() + ".1"
	var spawned, execed bool
	for _, r := range records(t, path) {
		switch {
		case r.Type == audit.TypeGuestSpawn && r.Guest.ID == child:
			spawned = true
		case r.Type == audit.TypeGuestExec && r.Guest.ID == child:
			if !spawned {
				t.Errorf("the child's guest-exec record %+v comes before its guest-spawn record", *r.Guest)
			}
			execed = true
			if r.Guest.Module != "byte_spin.wasm" || r.Guest.SHA256 != nextHash || r.Guest.Parent != g.ID() {
				t.Errorf("the child's guest-exec record %+v, want module byte_spin.wasm %s, parent %s", *r.Guest, nextHash, g.ID())
			}
		}
	}
	if !execed {
		t.Fatalf("no guest-exec record of the child %s", child)
	}
	live, err := s.AuditGraph(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	replayed := liveEqualsReplay(t, s, path)
	for name, gr := range map[string]*audit.Graph{"live": live, "replayed": replayed} {
		if h := gr.Holder(child); h.Module != "byte_spin.wasm" || h.SHA256 != nextHash || h.Parent != g.ID() || !h.Running {
			t.Errorf("%s graph's holder %s: %+v, want module byte_spin.wasm %s, parent %s, running", name, child, h, nextHash, g.ID())
		}
	}
}

// launchSpawnExec launches testdata/guests/spawn_exec.wat, whose child
// execs byte_spin.wat once a byte is written to stdin, waits until it has
// spawned the child, and returns the stdin to write that byte to, its
// stdout, and byte_spin's hash. The guest is killed when the test ends.
func launchSpawnExec(t *testing.T, s *Supervisor) (g *Guest, stdin io.Writer, stdout *bufio.Reader, nextHash string) {
	t.Helper()
	dir := t.TempDir()
	self, next := filepath.Join(dir, "spawn_exec.wasm"), filepath.Join(dir, "byte_spin.wasm")
	for file, src := range map[string]string{self: "spawn_exec.wat", next: "byte_spin.wat"} {
		if err := os.WriteFile(file, abitest.WAT(t, guests+src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nm := compile(t, s, guests+"byte_spin.wat")
	nextHash = nm.HashString()
	nm.Release()
	m := compile(t, s, guests+"spawn_exec.wat")
	t.Cleanup(m.Release)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	t.Cleanup(func() { inW.Close(); outR.Close() })
	g, err := s.Launch(context.Background(), LaunchSpec{Module: m, Grants: []Grant{mustGrant(t, "file:"+self), mustGrant(t, "file:"+next)}, Stdin: inR, Stdout: outW})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Kill("test over"); <-g.Done() })
	stdout = bufio.NewReader(outR)
	if line, err := stdout.ReadString('\n'); line != "spawned\n" {
		t.Fatalf("the guest wrote %q (%v), want \"spawned\": status %+v", line, err, g.Wait())
	}
	return g, inW, stdout, nextHash
}

// A spawned child whose proc_exec the audit log cannot record ends before
// the program it execs runs, as a launched guest does: nothing runs that
// the log does not show. The child ran it unrecorded.
func TestAuditLogFailureEndsASpawnedChildBeforeTheProgramItExecsRuns(t *testing.T) {
	s, l, path := supervisorLoggingABatchAFile(t)
	g, stdin, _, _ := launchSpawnExec(t, s)
	// The parent has spawned the child; the log fails before the byte
	// that lets the child exec is written.
	for i := 1; i <= 64; i++ {
		_ = os.Mkdir(audit.FilePath(path, i), 0o700)
	}
	s.Kernel().Create(&caps.Holder{ID: "g-other"}, caps.NewByteObject(), caps.RightsByteObjectBase, 0, "", "fd_create1")
	if l.Err() == nil {
		t.Fatal("the log has not failed: the test did not make it fail")
	}
	if _, err := stdin.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	// Had byte_spin run, its byte would have reached the parent, which
	// would be writing "child execed" to a stdout nobody reads.
	st := waitExit(t, g, HangGuard)
	if st.Code != 3 {
		t.Fatalf("status %+v: want 3, the parent's read of a channel whose other end closed as the child ended", st)
	}
}

// A spawned child that replaces its program once the shutdown record is
// written (Abandon: guests may run on until the process exits) ends
// before the program it execs runs, as a launch then is refused: the
// shutdown record names the guests running, not a program one of them
// starts after it. The exec was recorded as nothing, and the program ran.
func TestAnExecAfterTheShutdownRecordEndsTheChildBeforeItsProgramRuns(t *testing.T) {
	s, path := newAuditedSupervisor(t)
	g, stdin, stdout, _ := launchSpawnExec(t, s)
	if running := s.Abandon(); running != 1 {
		t.Fatalf("Abandon: %d guests running, want 1", running)
	}
	if _, err := stdin.Write([]byte{1}); err != nil { // the child execs
		t.Fatal(err)
	}
	// Had byte_spin run, the parent would write "child execed", read
	// stdin to its end and exit 0.
	stdin.(io.Closer).Close()
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	st := waitExit(t, g, HangGuard)
	if st.Code != 3 {
		t.Errorf("status %+v: want 3, the parent's read of a channel whose other end closed as the child ended", st)
	}
	for _, r := range records(t, path) {
		if r.Type == audit.TypeGuestExec {
			t.Errorf("a guest-exec record after the shutdown record: %+v", *r.Guest)
		}
	}
}

// The daemon's live who-can of a declared resource by name answers once
// the guest granted it by that name has ended: the policy says where it
// is, and the guest granted the directory above it is listed. It
// answered only while a grant by that name was live.
func TestLiveWhoCanByNameAnswersAfterItsGrantEnded(t *testing.T) {
	s, _ := newAuditedSupervisor(t)
	top := t.TempDir()
	reports := filepath.Join(top, "reports")
	if err := os.Mkdir(reports, 0o700); err != nil {
		t.Fatal(err)
	}
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
resource "dir" "reports" {
  path = %q
}
grant "reports" {
  resources = ["dir:reports", "dir:%s"]
}
`, reports, top)))
	a, err := launchSpin(t, s, nil, "dir:reports")
	if err != nil {
		t.Fatal(err)
	}
	b, err := launchSpin(t, s, nil, "dir:"+top)
	if err != nil {
		t.Fatal(err)
	}
	killAll(t, []*Guest{a})
	g, err := s.AuditGraph(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := g.Answer(audit.QueryWhoCan, "dir:reports")
	if err != nil {
		t.Fatal(err)
	}
	if r := doc.([]audit.Reach); len(r) != 1 || r[0].Holder != b.ID() {
		t.Errorf("who-can dir:reports once %s has ended: %+v, want %s, granted %s above it", a.ID(), r, b.ID(), top)
	}
}
