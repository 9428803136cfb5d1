package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/client"
)

// logTypes reads the records of the log at path: their types, and the
// ids of the capabilities they describe.
func logTypes(t *testing.T, path string) (types map[string]int, capIDs map[string]string) {
	t.Helper()
	types, capIDs = map[string]int{}, map[string]string{}
	err := audit.Scan(path, func(r audit.Record, _ audit.Pos) error {
		types[r.Type]++
		if r.Cap != nil && capIDs[r.Cap.ID] == "" {
			capIDs[r.Cap.ID] = r.Type
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return types, capIDs
}

func TestRunAuditWritesAVerifiableLogOfChannelDelegations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "run.jsonl")
	r := sandboxd(t, "", "run", "--audit", log, "--grant", "dir:"+dir+"=data", guest(t, "cmd/sandboxd/testdata/relay.c"))
	if r.code != 0 || r.stdout != "hop1 00 hop2 00\n" {
		t.Fatalf("run: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	types, _ := logTypes(t, log)
	// relay.c sends its grant over its own channel twice: two delegations
	// in flight, each adopted by the guest on receipt.
	for typ, n := range map[string]int{"open": 1, "guest-start": 1, "guest-exit": 1, "create": 2, "delegate": 2, "adopt": 2} {
		if types[typ] != n {
			t.Errorf("%d %s records, want %d (all: %v)", types[typ], typ, n, types)
		}
	}
	if r := sandboxd(t, "", "audit", "verify", "--log", log); r.code != 0 || !strings.HasPrefix(r.stdout, "ok: ") {
		t.Fatalf("verify: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	checkOfflineQueries(t, log, dir)

	// An edited record is named by file and line, with exit 1.
	data, _ := os.ReadFile(log)
	lines := bytes.SplitAfter(data, []byte("\n"))
	lines[3] = bytes.Replace(lines[3], []byte(`"name":"stderr"`), []byte(`"name":"stdErr"`), 1)
	if err := os.WriteFile(log, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	r = sandboxd(t, "", "audit", "verify", "--log", log)
	if r.code != exitFailure {
		t.Fatalf("verify of an edited log: code %d stdout %q", r.code, r.stdout)
	}
	oneLine(t, r.stderr, log+":4 (seq 4): the record was changed after it was written")
}

// audit verify --head checks a head an earlier verify printed: the log
// that wrote it extends it; the same log with its last record cut off,
// whose chain is intact, does not, and verify says so with exit 1. A
// head in another form is a usage error naming the form.
func TestAuditVerifyChecksAKeptHead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "run.jsonl")
	if r := sandboxd(t, "", "run", "--audit", log, "--grant", "dir:"+dir+"=data", guest(t, "cmd/sandboxd/testdata/relay.c")); r.code != 0 {
		t.Fatalf("run: code %d stderr %q", r.code, r.stderr)
	}
	r := sandboxd(t, "", "audit", "verify", "--log", log, "--json")
	var rep struct {
		HeadSeq uint64 `json:"head_seq"`
		Head    string
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.HeadSeq < 2 {
		t.Fatalf("verify --json: %+v %v (stdout %q, stderr %q)", rep, err, r.stdout, r.stderr)
	}
	head := fmt.Sprintf("%d:%s", rep.HeadSeq, rep.Head)
	r = sandboxd(t, "", "audit", "verify", "--log", log, "--head", head)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("ok: the log extends the head kept, seq %d", rep.HeadSeq)) {
		t.Fatalf("verify --head of the log that wrote it: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	data, _ := os.ReadFile(log)
	lines := bytes.SplitAfter(data, []byte("\n"))
	if err := os.WriteFile(log, bytes.Join(lines[:len(lines)-2], nil), 0o600); err != nil { // the last record cut off
		t.Fatal(err)
	}
	if r := sandboxd(t, "", "audit", "verify", "--log", log); r.code != 0 {
		t.Fatalf("verify without the head: code %d stderr %q, want the chain intact", r.code, r.stderr)
	}
	r = sandboxd(t, "", "audit", "verify", "--log", log, "--head", head)
	if r.code != exitFailure || !strings.Contains(r.stderr, fmt.Sprintf("records %d to %d were cut off its end", rep.HeadSeq, rep.HeadSeq)) {
		t.Fatalf("verify --head of the log cut short: code %d stdout %q stderr %q, want exit 1 and its end cut off", r.code, r.stdout, r.stderr)
	}
	r = sandboxd(t, "", "audit", "verify", "--log", log, "--head", rep.Head)
	if r.code != exitUsage || !strings.Contains(r.stderr, "SEQ:SHA256") {
		t.Fatalf("verify --head HASH alone: code %d stderr %q, want a usage error naming SEQ:SHA256", r.code, r.stderr)
	}
}

// audit runs `sandboxd audit SUB` against d.
func (d *daemonProc) audit(t *testing.T, sub string, args ...string) result {
	t.Helper()
	return sandboxd(t, "", append([]string{"audit", sub, "--socket", d.socket}, args...)...)
}

// checkOfflineQueries asks the log of a finished run, with no daemon:
// nothing reaches dir now, and as of the guest's start the guest did.
func checkOfflineQueries(t *testing.T, log, dir string) {
	t.Helper()
	var start audit.Record
	_ = audit.Scan(log, func(r audit.Record, _ audit.Pos) error {
		if r.Type == audit.TypeGuestStart {
			start = r
		}
		return nil
	})
	if r := sandboxd(t, "", "audit", "who-can", "--log", log, "dir:"+dir); r.code != 0 || r.stdout != "no live capability reaches it\n" {
		t.Fatalf("who-can after the run: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	at := start.Time.Format(time.RFC3339Nano)
	r := sandboxd(t, "", "audit", "who-can", "--log", log, "--at", at, "--json", "dir:"+dir)
	var reach []audit.Reach
	if err := json.Unmarshal([]byte(r.stdout), &reach); err != nil || len(reach) != 1 || reach[0].Holder != start.Guest.ID {
		t.Fatalf("who-can as of the start: %+v %v (stdout %q, stderr %q)", reach, err, r.stdout, r.stderr)
	}
	if r := sandboxd(t, "", "audit", "trace", "--log", log, "cnosuchcap"); r.code != exitFailure {
		t.Fatalf("trace of an unknown capability: code %d", r.code)
	} else {
		oneLine(t, r.stderr, "no capability cnosuchcap in the graph")
	}
}

// launchHolding launches recv_hold.c detached on d and grants it file,
// returning the guest's id and the granted capability's.
func launchHolding(t *testing.T, d *daemonProc, file string) (id, capID string) {
	t.Helper()
	r := d.cli(t, "launch", "--detach", guest(t, "daemon/testdata/server/recv_hold.c"))
	if r.code != 0 {
		t.Fatalf("launch: code %d stderr %q", r.code, r.stderr)
	}
	id = strings.TrimSpace(r.stdout)
	r = d.cli(t, "grant", id, "--grant", "file:"+file+"=held")
	if r.code != 0 {
		t.Fatalf("grant: code %d stderr %q", r.code, r.stderr)
	}
	capID, _, _ = strings.Cut(r.stdout, "\t")
	return id, capID
}

func TestDaemonAnswersAuditQueriesLiveAndAsOfATime(t *testing.T) {
	d := serveDaemon(t, bin, "")
	file := filepath.Join(privateDir(t), "held")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	id, capID := launchHolding(t, d, file)

	r := d.audit(t, "who-can", "file:"+file)
	if r.code != 0 || r.stdout != id+" (recv_hold.wasm) holds "+capID+" (rights "+rightsOf(t, d, capID)+")\n  via grant "+capID+"@"+id+"\n" {
		t.Fatalf("who-can: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = d.audit(t, "what-if", "--revoke", capID)
	if r.code != 0 || r.stdout != "revoking "+capID+" would cut off 1 capability held by "+id+": "+capID+"\n" {
		t.Fatalf("what-if: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = d.audit(t, "trace", "--json", capID)
	var steps []audit.Step
	if err := json.Unmarshal([]byte(r.stdout), &steps); err != nil || len(steps) != 1 || steps[0].Holder != id || steps[0].Origin != "file:"+file {
		t.Fatalf("trace: %+v %v (stdout %q, stderr %q)", steps, err, r.stdout, r.stderr)
	}
	r = d.audit(t, "graph", "--format", "dot")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "digraph sandboxd {") || !strings.Contains(r.stdout, `"`+capID+`"`) {
		t.Fatalf("graph --format dot: code %d stdout %q", r.code, r.stdout)
	}

	before := time.Now().UTC().Format(time.RFC3339Nano)
	if r := d.cli(t, "revoke", capID); r.code != 0 {
		t.Fatalf("revoke: %q", r.stderr)
	}
	if r := d.audit(t, "who-can", "file:"+file); r.stdout != "no live capability reaches it\n" {
		t.Fatalf("who-can after the revocation: %q", r.stdout)
	}
	if r := d.audit(t, "who-can", "--at", before, "file:"+file); !strings.HasPrefix(r.stdout, id+" (recv_hold.wasm) holds "+capID) {
		t.Fatalf("who-can as of before the revocation: %q %q", r.stdout, r.stderr)
	}
	r = sandboxd(t, "", "audit", "log", "--state", d.state, "--cap", capID)
	if !strings.Contains(r.stdout, " grant ") || !strings.Contains(r.stdout, " revoke ") {
		t.Fatalf("audit log --cap: %q %q", r.stdout, r.stderr)
	}
	if r := sandboxd(t, "", "audit", "verify", "--state", d.state); r.code != 0 {
		t.Fatalf("verify: %q %q", r.stdout, r.stderr)
	}
}

// rightsOf is the base rights of capability id in the daemon's audit
// graph (audit graph --format json).
func rightsOf(t *testing.T, d *daemonProc, id string) string {
	t.Helper()
	r := d.audit(t, "graph", "--format", "json")
	var doc audit.GraphDoc
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("graph --format json: %v (%q)", err, r.stdout)
	}
	for _, n := range doc.Caps {
		if n.ID == id {
			return n.Base
		}
	}
	t.Fatalf("capability %s not in the graph", id)
	return ""
}

// A daemon killed with SIGKILL in the middle of a burst of concurrent
// grants, derivations and delegations has every one it acknowledged in
// its audit log, and the log verifies once a daemon has opened it again.
func TestDaemonKilledMidBurstKeepsEveryAcknowledgedRecord(t *testing.T) {
	d := serveDaemon(t, bin, "")
	dir := privateDir(t)
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	id, _ := launchHolding(t, d, filepath.Join(dir, "f"))
	ctx := context.Background()

	var mu sync.Mutex
	var acked []string
	enough := make(chan struct{})
	ack := func(id string) {
		mu.Lock()
		defer mu.Unlock()
		acked = append(acked, id)
		if len(acked) == 300 {
			close(enough)
		}
	}
	var wg sync.WaitGroup
	var killed atomic.Bool
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := burst(ctx, d.socket, dir, id, ack); !killed.Load() {
				t.Errorf("burst failed before the kill: %v", err)
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(hangGuard):
		t.Fatal("the burst never reached 300 acknowledged operations")
	}
	killed.Store(true)
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.exited
	d.code = 0 // killed by the test; the cleanup's check is for SIGTERM
	wg.Wait()

	// A daemon opening the log again cuts off a record the kill left half
	// written, and continues the chain.
	d2 := serveDaemon(t, bin, d.state)
	if code := d2.stop(t); code != 0 {
		t.Fatalf("restarted daemon exited %d", code)
	}
	r := sandboxd(t, "", "audit", "verify", "--state", d.state)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ok: ") || strings.Contains(r.stdout, "incomplete") {
		t.Fatalf("verify after the kill: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	_, logged := logTypes(t, filepath.Join(d.state, "audit.jsonl"))
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d operations acknowledged before or during the kill", len(acked))
	for _, c := range acked {
		if logged[c] == "" {
			t.Errorf("acknowledged capability %s is not in the audit log", c)
		}
	}
}

// burst mints, restricts and delegates capabilities through its own
// connection until a call fails (the daemon is gone), calling ack with the
// id of each capability the daemon acknowledged. Delegations to the
// guest fail once its supervisor channel is full: they are not counted.
func burst(ctx context.Context, socket, dir, guestID string, ack func(string)) error {
	cl, err := client.Dial(ctx, socket)
	if err != nil {
		return err
	}
	defer cl.Close()
	g, err := cl.Guest(ctx, guestID)
	if err != nil {
		return err
	}
	defer g.Release()
	for {
		c, err := cl.Mint(ctx, "dir:"+dir+"=d")
		if err != nil {
			return err
		}
		ack(c.ID())
		nc, err := c.Restrict(ctx, uint64(caps.RightFileOpen|caps.RightFileReaddir), 0)
		if err != nil {
			return err
		}
		ack(nc.ID())
		if info, err := nc.Delegate(ctx, g, "d"); err == nil {
			ack(info.ID)
		}
		nc.Release()
		c.Release()
	}
}

// The policy suggested from a run's audit log, loaded, allows the same
// run and denies a wider one.
func TestPolicySuggestedFromAuditAllowsTheSameRunAndDeniesAWiderOne(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "run.jsonl")
	relay := guest(t, "cmd/sandboxd/testdata/relay.c")
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if r := sandboxd(t, "", "run", "--audit", log, "--grant", "dir:"+data+"=data", relay); r.code != 0 {
		t.Fatalf("learning run: code %d stderr %q", r.code, r.stderr)
	}
	r := sandboxd(t, "", "policy", "suggest", "--from-audit", "--log", log)
	if r.code != 0 {
		t.Fatalf("suggest: code %d stderr %q", r.code, r.stderr)
	}
	// relay.c passes its grant on twice over its own channel: a second
	// hop, with two copies alive.
	for _, want := range []string{`resources = ["dir:` + data + `"]`, "max_depth  = 2", "max_copies = 2", "uids = [" + strconv.Itoa(os.Getuid()) + "]"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the suggested policy lacks %q:\n%s", want, r.stdout)
		}
	}
	policy := filepath.Join(dir, "suggested.hcl")
	if err := os.WriteFile(policy, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := sandboxd(t, "", "run", "--policy", policy, "--grant", "dir:"+data+"=data", relay); r.code != 0 || r.stdout != "hop1 00 hop2 00\n" {
		t.Fatalf("the same run under the suggested policy: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = sandboxd(t, "", "run", "--policy", policy, "--grant", "dir:"+dir+"=data", relay)
	if r.code != exitGrant {
		t.Fatalf("a wider grant under the suggested policy: code %d stdout %q", r.code, r.stdout)
	}
	oneLine(t, r.stderr, "denied by policy: no grant rule allows dir:"+dir)
}

// A module's name and a grant's path are text one user chose and others
// read in the audit's answers (root's, of every user's guests): who-can
// and graph print their control characters escaped, as trace does.
func TestAuditAnswersPrintModuleNamesAndPathsEscaped(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	wasm, err := os.ReadFile(guest(t, "daemon/testdata/server/recv_hold.c"))
	if err != nil {
		t.Fatal(err)
	}
	const module, shown = "x\x1b]0;pwned\a.wasm", `x\x1b]0;pwned\a.wasm`
	mod := filepath.Join(privateDir(t), module)
	file := filepath.Join(privateDir(t), "held\x1b[2J")
	for _, f := range []struct {
		path string
		data []byte
	}{{mod, wasm}, {file, nil}} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := d.cli(t, "launch", "--detach", mod)
	if r.code != 0 {
		t.Fatalf("launch: code %d stderr %q", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	if r := d.cli(t, "grant", id, "--grant", "file:"+file+"=held"); r.code != 0 {
		t.Fatalf("grant: code %d stderr %q", r.code, r.stderr)
	}
	for _, args := range [][]string{{"who-can", "file:" + file}, {"graph"}, {"graph", "--format", "dot"}} {
		r := d.audit(t, args[0], args[1:]...)
		if r.code != 0 || strings.ContainsAny(r.stdout+r.stderr, "\x1b\a") || !strings.Contains(r.stdout, shown) {
			t.Errorf("audit %v: code %d, stdout %q, stderr %q; want the module named %s", args, r.code, r.stdout, r.stderr, shown)
		}
	}
}

// A capability sent on a channel and not received yet is shown in flight
// on that channel, with who can receive it: the holders of the channel's
// other end. The sender, granted chan:jobs first, sends its directory on
// it and exits; the guest granted chan:jobs next holds the other end and
// does not read. The graph showed the copy held by "(in flight)" alone,
// and who-can listed it with no holder and nobody to receive it.
func TestAuditShowsACapabilityInFlightWithWhoCanReceiveIt(t *testing.T) {
	t.Parallel()
	d, data, recv := sendADirectoryNobodyReceives(t)
	got := whoCanInFlight(t, d.audit(t, "who-can", "--json", "dir:"+data))
	if got.Holder != "" || got.InFlight == nil || len(got.Receivers) != 1 || got.Receivers[0].Holder != recv {
		t.Fatalf("who-can: %+v, want the copy in flight, to be received by %s", got, recv)
	}
	r := d.audit(t, "who-can", "dir:"+data)
	if !strings.Contains(r.stdout, "in flight on ") || !strings.Contains(r.stdout, "to be received by "+recv+" (idle.wasm)") {
		t.Fatalf("who-can: %q, want the copy in flight and its receiver", r.stdout)
	}
	r = d.audit(t, "graph")
	if line := lastLineWith(r.stdout, got.Cap); !strings.Contains(line, "held by (in flight on ") || !strings.Contains(line, "to be received by "+recv) {
		t.Fatalf("graph line of %s: %q, want it in flight on the channel, to be received by %s\n%s", got.Cap, line, recv, r.stdout)
	}
	checkTraceAndDotOfInFlight(t, d, got, recv)
	// Replayed from the log, the same.
	r = sandboxd(t, "", "audit", "who-can", "--log", filepath.Join(d.state, "audit.jsonl"), "--json", "dir:"+data)
	if got := whoCanInFlight(t, r); len(got.Receivers) != 1 || got.Receivers[0].Holder != recv {
		t.Fatalf("who-can --log: %+v (%q %q)", got, r.stdout, r.stderr)
	}
}

// inFlightReach is who-can --json's reach, or trace --json's step, as far
// as the tests of capabilities in flight read them.
type inFlightReach struct {
	Holder    string
	Cap       string
	InFlight  *struct{ Chan uint64 } `json:"in_flight"`
	Receivers []struct{ Holder string }
}

// sendADirectoryNobodyReceives serves a daemon whose policy lets a guest
// pass on its grant of a directory (data) on the channel jobs, launches
// one that sends it (chan_send_fd4.c) and one that holds the other end
// and never reads it (recv, idle.wat).
func sendADirectoryNobodyReceives(t *testing.T) (d *daemonProc, data, recv string) {
	t.Helper()
	pdir := filepath.Join(privateDir(t), "policy")
	data = privateDir(t)
	writePolicy(t, pdir, "jobs.hcl", `
resource "chan" "jobs" {}
grant "jobs" {
  resources = ["chan:jobs"]
}
grant "data" {
  resources = ["dir:`+data+`"]
}
delegate "pass" {
  resources = ["dir:`+data+`"]
  max_depth = 1
}
`)
	d = serveDaemon(t, bin, "", "--policy", pdir)
	if r := d.cli(t, "launch", "--grant", "chan:jobs", "--grant", "dir:"+data+"=data", guest(t, "cmd/sandboxd/testdata/chan_send_fd4.c")); r.code != 0 {
		t.Fatalf("launch the sender: code %d, stderr %q", r.code, r.stderr)
	}
	r := d.cli(t, "launch", "--detach", "--grant", "chan:jobs", guest(t, "daemon/testdata/guests/idle.wat"))
	if r.code != 0 {
		t.Fatalf("launch the receiver: code %d, stderr %q", r.code, r.stderr)
	}
	return d, data, strings.TrimSpace(r.stdout)
}

// whoCanInFlight is the one reach of who-can --json's answer r.
func whoCanInFlight(t *testing.T, r result) inFlightReach {
	t.Helper()
	var reach []inFlightReach
	if err := json.Unmarshal([]byte(r.stdout), &reach); err != nil || len(reach) != 1 {
		t.Fatalf("who-can: %+v %v (stdout %q, stderr %q), want the copy in flight", reach, err, r.stdout, r.stderr)
	}
	return reach[0]
}

// lastLineWith is the last line of text that contains s.
func lastLineWith(text, s string) string {
	var line string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			line = l
		}
	}
	return line
}

// checkTraceAndDotOfInFlight checks that the trace's last step of got, a
// copy in flight to recv, and the dot graph's cluster of it, say where it
// is and who can receive it; they said "held by -" and "(in flight)".
func checkTraceAndDotOfInFlight(t *testing.T, d *daemonProc, got inFlightReach, recv string) {
	t.Helper()
	r := d.audit(t, "trace", got.Cap)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "held by (in flight on channel ") || !strings.Contains(last, "to be received by "+recv+" (idle.wasm)") {
		t.Fatalf("trace %s: %q, want its last step in flight on the channel, to be received by %s", got.Cap, r.stdout, recv)
	}
	r = d.audit(t, "trace", "--json", got.Cap)
	var steps []inFlightReach
	if err := json.Unmarshal([]byte(r.stdout), &steps); err != nil || len(steps) == 0 {
		t.Fatalf("trace --json: %v (stdout %q, stderr %q)", err, r.stdout, r.stderr)
	}
	if last := steps[len(steps)-1]; last.Cap != got.Cap || last.InFlight == nil || last.InFlight.Chan != got.InFlight.Chan || len(last.Receivers) != 1 || last.Receivers[0].Holder != recv {
		t.Fatalf("trace --json's last step %+v, want %s in flight on channel %d, to be received by %s", last, got.Cap, got.InFlight.Chan, recv)
	}
	r = d.audit(t, "graph", "--format", "dot")
	if cluster := dotClusterOf(r.stdout, got.Cap); !strings.Contains(cluster, "in flight on channel ") || !strings.Contains(cluster, "to be received by "+recv) {
		t.Fatalf("dot: the cluster of %s is labelled %q, want the channel it is in flight on and its receiver\n%s", got.Cap, cluster, r.stdout)
	}
}

// dotClusterOf is the label line of the dot graph's cluster that holds
// node id.
func dotClusterOf(dot, id string) string {
	var cluster string
	for _, l := range strings.Split(dot, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "label=") {
			cluster = l
		}
		if strings.Contains(l, `"`+id+`" [`) {
			break
		}
	}
	return cluster
}
