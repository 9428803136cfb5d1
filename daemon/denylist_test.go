package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/internal/socktest"
	"github.com/sandboxd/sandboxd/policies"
)

func mustDenyList(t *testing.T, sels ...string) *policies.DenyList {
	t.Helper()
	l, err := policies.ParseDenyList(sels)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// launchDenied launches the spinning guest as launchSpin does, with deny
// list l.
func launchDenied(t *testing.T, s *Supervisor, l *policies.DenyList, grants ...string) (*Guest, error) {
	t.Helper()
	return launchSpinAs(t, s, LaunchSpec{Deny: l}, grants...)
}

// A deny list wins over any grant, with or without a policy: a grant of
// what it covers, or of a directory containing it, is refused before
// anything is opened, at launch and while the guest runs.
func TestADenyListRefusesGrantsThatReachWhatItDenies(t *testing.T) {
	dir := t.TempDir()
	private := filepath.Join(dir, "private")
	if err := os.Mkdir(private, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "public"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := newSupervisor(t)
	l := mustDenyList(t, "dir:"+private, "sock:*")
	for _, grant := range []string{"dir:" + dir, "file:" + private + "/key", "sock:tcp:127.0.0.1:9=db"} {
		_, err := launchDenied(t, s, l, grant)
		if !IsPolicyDenial(err) || !strings.Contains(err.Error(), "is denied by --deny ") {
			t.Errorf("launch with --grant %s: %v, want it denied by the deny list", grant, err)
		}
	}
	if n := len(s.Kernel().Snapshot()); n != 0 {
		t.Fatalf("denied launches minted %d capabilities", n)
	}
	g, err := launchDenied(t, s, l, "dir:"+dir+"/public")
	if err != nil {
		t.Fatalf("a grant beside the denied path: %v", err)
	}
	_, err = g.Grant(context.Background(), Principal{UID: 1000, GID: 1000, Name: "alice"}, mustGrant(t, "dir:"+dir))
	if !IsPolicyDenial(err) || !strings.Contains(err.Error(), "it contains dir:"+private) {
		t.Fatalf("a live grant of the directory above: %v, want it denied, saying what it contains", err)
	}
}

// What another holder passes to a guest is judged by the guest's deny
// list too, whoever passes it and however.
func TestADenyListRefusesDelegationsToTheGuest(t *testing.T) {
	dir := t.TempDir()
	s := newSupervisor(t)
	a, err := launchSpin(t, s, nil, "dir:"+dir+"=data")
	if err != nil {
		t.Fatal(err)
	}
	granted := a.Handles()[3].Cap
	b, err := launchDenied(t, s, mustDenyList(t, "dir:"+filepath.Dir(dir)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.SendCap(context.Background(), granted, "data"); !IsPolicyDenial(err) || !strings.Contains(err.Error(), "--deny dir:"+filepath.Dir(dir)) {
		t.Fatalf("delegation to a guest denying its directory: %v, want a denial naming the --deny", err)
	}
	// A guest b spawns is bound by b's list: handing it the copy fails.
	child := &caps.Holder{ID: b.ID() + "-child", Parent: b.holder}
	rb, ri := granted.Rights()
	if _, err := s.Kernel().Derive(granted, caps.Derivation{For: child, Edge: caps.EdgeSpawn, Base: rb, Inheriting: ri}); !IsPolicyDenial(err) {
		t.Fatalf("a handle for a child of the guest: %v, want a denial", err)
	}
	spec := LaunchSpec{
		Principal: Principal{UID: 1000, GID: 1000, Name: "alice"}, Module: compile(t, s, guests+"spin.wat"),
		Deny: mustDenyList(t, "dir:"+dir), Delegations: []Delegation{{From: granted}},
	}
	if _, err := s.Launch(context.Background(), spec); !IsPolicyDenial(err) {
		t.Fatalf("a launch delegating what its deny list covers: %v, want a denial", err)
	}
	c, err := launchSpin(t, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendCap(context.Background(), granted, "data"); err != nil {
		t.Fatalf("delegation to a guest without a deny list: %v", err)
	}
}

// recvWAT receives one message with room for four handles on its fd 3
// (chan:pipe) and exits with 10 × the handles it got plus the message's
// flags (1: some handles did not arrive), or 100 + the errno.
const recvWAT = `(module
  (import "sandboxd" "sock_recv" (func $recv (param i32 i32 i32) (result i32)))
  (import "sandboxd" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $e i32)
    (i32.store (i32.const 100) (i32.const 200)) ;; one iovec of 16 bytes
    (i32.store (i32.const 104) (i32.const 16))
    (i32.store (i32.const 0) (i32.const 100))   ;; recv_in: data
    (i32.store (i32.const 4) (i32.const 1))
    (i32.store (i32.const 8) (i32.const 300))   ;; fds, room for 4
    (i32.store (i32.const 12) (i32.const 4))
    (i32.store16 (i32.const 16) (i32.const 0))
    (local.set $e (call $recv (i32.const 3) (i32.const 0) (i32.const 64)))
    (if (local.get $e) (then (call $exit (i32.add (i32.const 100) (local.get $e)))))
    (call $exit (i32.add
      (i32.mul (i32.load (i32.const 68)) (i32.const 10))
      (i32.load16_u (i32.const 112))))))`

// recvFromSender launches recvWAT on chan:pipe with deny list l, then
// sendDirWAT sending a directory handle on the same channel, and returns
// the receiver's exit code.
func recvFromSender(t *testing.T, l *policies.DenyList) uint32 {
	t.Helper()
	s := newSupervisor(t)
	dir := t.TempDir()
	p := Principal{UID: 1000, GID: 1000, Name: "alice"}
	recv, err := s.Compile(context.Background(), "recv.wat", abitest.WATText(t, recvWAT))
	if err != nil {
		t.Fatal(err)
	}
	send, err := s.Compile(context.Background(), "send.wat", abitest.WATText(t, sendDirWAT))
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Launch(context.Background(), LaunchSpec{Principal: p, Module: recv, Deny: l, Grants: []Grant{mustGrant(t, "chan:pipe")}})
	if err != nil {
		t.Fatal(err)
	}
	sender, err := s.Launch(context.Background(), LaunchSpec{Principal: p, Module: send, Grants: []Grant{mustGrant(t, "dir:"+dir+"=data"), mustGrant(t, "chan:pipe")}})
	if err != nil {
		t.Fatal(err)
	}
	if e := exitCode(t, sender); e != 0 {
		t.Fatalf("the sender's sock_send: errno %d", e)
	}
	return exitCode(t, r)
}

// A handle sent on a channel goes to whoever reads it, which the sender
// does not know: the reader's deny list refuses it on arrival, and the
// message arrives without it, flagged as missing handles.
func TestADenyListRefusesAHandleSentOnAChannelOnArrival(t *testing.T) {
	if got := recvFromSender(t, nil); got != 10 {
		t.Fatalf("a reader without a deny list: exit %d, want 10 (one handle, no flags)", got)
	}
	if got := recvFromSender(t, mustDenyList(t, "dir:/")); got != 1 {
		t.Fatalf("a reader denying dir:/: exit %d, want 1 (no handle, FDS_TRUNCATED)", got)
	}
}

// A refusal by a deny list is a decision record, naming the selector as
// its rule and who asked.
func TestADenyListsRefusalIsAuditedAsADecision(t *testing.T) {
	s, path := newAuditedSupervisor(t)
	dir := t.TempDir()
	_, err := launchDenied(t, s, mustDenyList(t, "dir:/nowhere", "dir:"+dir+"/x"), "dir:"+dir)
	if !IsPolicyDenial(err) {
		t.Fatalf("launch: %v, want a denial", err)
	}
	l := mustDenyList(t, "dir:/nowhere")
	g, err := launchDenied(t, s, l)
	if err != nil {
		t.Fatal(err)
	}
	var decided, started bool
	want := `deny "dir:` + dir + `/x" (--deny:2)`
	for _, r := range records(t, path) {
		switch {
		case r.Type == audit.TypeGuestStart && r.Guest.ID == g.ID():
			started = slices.Equal(r.Guest.Deny, l.Selectors())
		case r.Type == audit.TypeDecision:
			d := r.Decision
			if d.Allowed || d.Op != "grant" || d.Rule != want || d.Resource != "dir:"+dir || d.Subject != "alice" || !strings.Contains(d.Reason, "--deny dir:"+dir+"/x") {
				t.Fatalf("decision record %+v: want grant of dir:%s denied by %s, asked by alice", d, dir, want)
			}
			decided = true
		}
	}
	if !decided || !started {
		t.Fatalf("decision record of the refused grant: %v; guest-start record with the deny list: %v", decided, started)
	}
}

// A reload that declares a resource a guest's deny list names where the
// guest already holds a grant is reported as a live capability the
// reloaded policy would not give it, naming the --deny.
func TestNotAllowedByListsAGrantAReloadBringsUnderTheGuestsDenyList(t *testing.T) {
	s := newSupervisor(t)
	a, b := t.TempDir(), t.TempDir()
	declare := func(at string) *policies.Policy { return reportsAt(t, at) }
	s.SetPolicy(declare(a))
	g, err := launchDenied(t, s, mustDenyList(t, "dir:reports"), "dir:"+b)
	if err != nil {
		t.Fatal(err)
	}
	if ds := s.NotAllowedBy(s.Policy()); len(ds) != 0 {
		t.Fatalf("before the reload: %+v, want nothing", ds)
	}
	s.SetPolicy(declare(b))
	ds := s.NotAllowedBy(s.Policy())
	if len(ds) != 1 || ds[0].Guest != g.ID() || !strings.Contains(ds[0].Reason, "--deny dir:reports") {
		t.Fatalf("after reports moved to the guest's grant: %+v, want its grant, denied by its --deny", ds)
	}
}

// A unix socket is a file on the host: a deny list's dir or file path
// covers the socket file of a sock or listen grant beneath it, inline or
// declared by the policy, before anything is connected or bound.
func TestADenyListCoversUnixSocketFilesBeneathItsPaths(t *testing.T) {
	dir := t.TempDir()
	private := filepath.Join(dir, "private")
	if err := os.Mkdir(private, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(private, "db.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := newSupervisor(t)
	deny := mustDenyList(t, "dir:"+private)
	for _, grant := range []string{"sock:unix:" + sock + "=db", "sock:unix:" + sock + "=db:dial", "listen:unix:" + filepath.Join(private, "l.sock") + "=l"} {
		if _, err := launchDenied(t, s, deny, grant); !IsPolicyDenial(err) || !strings.Contains(err.Error(), "is denied by --deny dir:"+private) {
			t.Errorf("--grant %s: %v, want it denied by the deny list", grant, err)
		}
	}
	if _, err := os.Stat(filepath.Join(private, "l.sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a denied listen grant bound its socket: %v", err)
	}
	s.SetPolicy(unixDBPolicy(t, sock))
	if _, err := launchDenied(t, s, deny, "sock:db"); !IsPolicyDenial(err) || !strings.Contains(err.Error(), "--deny dir:"+private) {
		t.Errorf("--grant sock:db, declared beneath the denied path: %v, want it denied", err)
	}
	if _, err := launchDenied(t, s, mustDenyList(t, "dir:"+filepath.Join(dir, "other")), "sock:db"); err != nil {
		t.Errorf("--grant sock:db beside the denied path: %v", err)
	}
}

// A reload between a launch's delegations and the guest adopting them
// can bring one under the guest's deny list: the launch fails, rather
// than start the guest with a closed handle where the delegation was.
func TestALaunchFailsWhenAReloadBringsItsDelegationUnderItsDenyList(t *testing.T) {
	s := newSupervisor(t)
	a, b := t.TempDir(), t.TempDir()
	declare := func(at string) *policies.Policy {
		return reportsAt(t, at, `
delegate "pass" {
  resources = ["dir:/"]
  max_depth = 2
}`)
	}
	s.SetPolicy(declare(a))
	x, err := launchSpin(t, s, nil, "dir:"+b+"=data")
	if err != nil {
		t.Fatal(err)
	}
	from := x.Handles()[3].Cap
	launchOpened = func() { s.SetPolicy(declare(b)) }
	defer func() { launchOpened = nil }()
	g, err := launchSpinAs(t, s, LaunchSpec{Deny: mustDenyList(t, "dir:reports"), Delegations: []Delegation{{From: from}}})
	if err == nil {
		t.Fatalf("the launch started guest %s with handles %v, want it refused", g.ID(), g.Handles())
	}
	if !IsPolicyDenial(err) || !strings.Contains(err.Error(), "--deny dir:reports") {
		t.Fatalf("launch: %v, want the deny list's refusal", err)
	}
}

// reportsAt is a policy declaring dir:reports at path at, granting any
// dir, with the rules of extra.
func reportsAt(t *testing.T, at string, extra ...string) *policies.Policy {
	t.Helper()
	return mustPolicy(t, fmt.Sprintf(`
resource "dir" "reports" {
  path = "%s"
}
grant "all" {
  resources = ["dir:/"]
}
%s`, at, strings.Join(extra, "\n")))
}

// An inline unix socket grant under a deny list connects where it was
// judged: a link put in the place of its directory between the judgement
// and the connection (a guest with a writable grant above it could) fails
// the grant rather than reach a socket in the denied directory.
func TestADenyListSocketGrantConnectsWhereItWasJudged(t *testing.T) {
	dir := t.TempDir()
	private, app := filepath.Join(dir, "private"), filepath.Join(dir, "app")
	for _, d := range []string{private, app} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	decoy := listenUnixSocket(t, filepath.Join(private, "db.sock"))
	listenUnixSocket(t, filepath.Join(app, "db.sock"))
	s := newSupervisor(t)
	policyAuthorized = func() { swapForLink(t, app, private) }
	defer func() { policyAuthorized = nil }()
	_, err := launchDenied(t, s, mustDenyList(t, "dir:"+private), "sock:unix:"+filepath.Join(app, "db.sock")+"=db")
	socktest.Unreached(t, decoy, HangGuard)
	if err == nil || !strings.Contains(err.Error(), "try again") {
		t.Fatalf("a grant whose directory became a link to the denied one after it was judged: %v, want it refused as changed", err)
	}
}
