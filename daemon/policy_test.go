package daemon

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/abi/abitest"
	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/policies"
)

func mustPolicy(t testing.TB, text string) *policies.Policy {
	t.Helper()
	p, err := policies.Parse("test.hcl", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// launchSpin launches the spinning guest with grants, labels and a
// supervisor channel, for principal uid 1000.
func launchSpin(t *testing.T, s *Supervisor, labels map[string]string, grants ...string) (*Guest, error) {
	t.Helper()
	return launchSpinAs(t, s, LaunchSpec{Labels: labels}, grants...)
}

// launchSpinAs is launchSpin of spec, with its principal, module and
// supervisor channel set as launchSpin sets them.
func launchSpinAs(t *testing.T, s *Supervisor, spec LaunchSpec, grants ...string) (*Guest, error) {
	t.Helper()
	spec.Principal = Principal{UID: 1000, GID: 1000, Name: "alice"}
	spec.Module = compile(t, s, guests+"spin.wat")
	spec.SupervisorChannel = true
	for _, g := range grants {
		spec.Grants = append(spec.Grants, mustGrant(t, g))
	}
	g, err := s.Launch(context.Background(), spec)
	if err == nil {
		t.Cleanup(func() { g.Kill("test over"); <-g.Done() })
	}
	return g, err
}

func TestPolicyClipsGrantedRightsAndDecidesDelegationByRecipient(t *testing.T) {
	s := newSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
grant "data" {
  resources = ["dir:%s"]
  rights    = ["file_open", "fd_read", "file_readdir"]
  subject {
    users = ["alice"]
  }
}
delegate "to-readers" {
  resources = ["dir:%s"]
  max_depth = 1
  rights    = ["file_open", "fd_read"]
  to {
    labels = { role = "reader" }
  }
}
`, dir, dir)))

	a, err := launchSpin(t, s, nil, "dir:"+dir+"=data")
	if err != nil {
		t.Fatal(err)
	}
	granted := a.Handles()[3].Cap
	if b, i := granted.Rights(); b&^(caps.RightFileOpen|caps.RightFDRead|caps.RightFileReaddir) != 0 || i&^(caps.RightFileOpen|caps.RightFDRead|caps.RightFileReaddir) != 0 {
		t.Fatalf("granted rights %v / %v exceed the rule's ceiling", b, i)
	}

	reader, err := launchSpin(t, s, map[string]string{"role": "reader"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := reader.SendCap(context.Background(), granted, "data")
	if err != nil {
		t.Fatalf("delegation to a reader: %v", err)
	}
	if b, _ := c.Rights(); b&^(caps.RightFileOpen|caps.RightFDRead) != 0 {
		t.Fatalf("delegated rights %v exceed the delegate rule's ceiling", b)
	}
	if c.Depth() != 1 {
		t.Fatalf("depth %d, want 1", c.Depth())
	}

	other, err := launchSpin(t, s, map[string]string{"role": "writer"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.SendCap(context.Background(), granted, "data")
	if !IsPolicyDenial(err) || !strings.Contains(err.Error(), "default deny") {
		t.Fatalf("delegation to a non-reader: %v, want a policy denial", err)
	}
	// The reader may not pass its copy on: max_depth is 1.
	_, err = other.SendCap(context.Background(), c, "data")
	if !IsPolicyDenial(err) {
		t.Fatalf("second hop: %v, want a policy denial", err)
	}
}

func TestPolicyDeniesGrantsBeforeOpeningAnything(t *testing.T) {
	s := newSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, `resource "chan" "jobs" {}`))
	_, err := launchSpin(t, s, nil, "dir:"+dir, "chan:jobs")
	if !IsPolicyDenial(err) || !strings.Contains(err.Error(), "no grant rule allows dir:"+dir) {
		t.Fatalf("launch: %v, want the first grant denied by default", err)
	}
	if fds := openFDsUnder(t, dir); len(fds) != 0 {
		t.Fatalf("a denied launch left %v open", fds)
	}
	if n := len(s.Kernel().Snapshot()); n != 0 {
		t.Fatalf("a denied launch minted %d capabilities", n)
	}
}

func TestPolicyNamedDirResourceOpensItsPathReadOnly(t *testing.T) {
	s := newSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
resource "dir" "reports" {
  path      = "%s"
  read_only = true
}
grant "reports" {
  resources = ["dir:reports"]
}
`, dir)))
	g, err := launchSpin(t, s, nil, "dir:reports")
	if err != nil {
		t.Fatal(err)
	}
	c := g.Handles()[3].Cap
	if b, i := c.Rights(); (b|i)&caps.RightsWriteMask != 0 {
		t.Fatalf("a read_only resource was granted write rights: %v / %v", b, i)
	}
	if !strings.Contains(c.Info().Resource, dir) {
		t.Fatalf("the grant opened %q, want %s", c.Info().Resource, dir)
	}
}

func TestNotAllowedByListsLiveGrantsANewPolicyWouldRefuse(t *testing.T) {
	s := newSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`grant "d" {
  resources = ["dir:%s"]
}`, dir)))
	g, err := launchSpin(t, s, nil, "dir:"+dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.NotAllowedBy(s.Policy()); len(got) != 0 {
		t.Fatalf("the policy in force disallows %v", got)
	}
	got := s.NotAllowedBy(mustPolicy(t, `resource "chan" "x" {}`))
	if len(got) != 1 || got[0].Guest != g.ID() || got[0].Cap != g.Handles()[3].Cap.ID() {
		t.Fatalf("NotAllowedBy = %+v, want the guest's one grant", got)
	}
}

// A reloaded policy that still grants the resource, but with fewer rights
// or as a lease, would not grant the live capability as it is: it holds
// rights the new rule does not give, and no end.
func TestNotAllowedByListsLiveGrantsBeyondANewRulesRightsOrLease(t *testing.T) {
	s := newSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`grant "d" {
  resources = ["dir:%s"]
}`, dir)))
	g, err := launchSpin(t, s, nil, "dir:"+dir)
	if err != nil {
		t.Fatal(err)
	}
	want := g.Handles()[3].Cap.ID()
	for name, rule := range map[string]string{
		"read only": `read_only = true`,
		"rights":    `rights = ["file_open", "fd_read"]`,
		"lease":     `ttl = "1h"`,
	} {
		got := s.NotAllowedBy(mustPolicy(t, fmt.Sprintf("grant \"d\" {\n  resources = [\"dir:%s\"]\n  %s\n}\n", dir, rule)))
		if len(got) != 1 || got[0].Cap != want {
			t.Errorf("%s: NotAllowedBy = %+v, want the guest's grant %s", name, got, want)
		}
	}
}

// A grant made to a running guest that it has not received yet is live
// all the same: a reload judges it too.
func TestNotAllowedByListsGrantsWaitingOnTheSupervisorChannel(t *testing.T) {
	s := newSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`grant "d" {
  resources = ["dir:%s"]
}`, dir)))
	g, err := launchSpin(t, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := g.Grant(context.Background(), g.Principal(), mustGrant(t, "dir:"+dir))
	if err != nil {
		t.Fatal(err)
	}
	got := s.NotAllowedBy(mustPolicy(t, `resource "chan" "x" {}`))
	if len(got) != 1 || got[0].Cap != c.ID() {
		t.Fatalf("NotAllowedBy = %+v, want the grant %s the guest has yet to receive", got, c.ID())
	}
}

// A grant made to a running guest is judged again as the user who made
// it, not as the guest's launcher: the policy that allowed it allows it
// still.
func TestNotAllowedByJudgesALiveGrantAsItsGranter(t *testing.T) {
	s := newSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`grant "root-only" {
  resources = ["dir:%s"]
  subject {
    uids = [0]
  }
}`, dir)))
	g, err := launchSpin(t, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := g.Grant(context.Background(), Principal{Name: "root"}, mustGrant(t, "dir:"+dir))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.NotAllowedBy(s.Policy()); len(got) != 0 {
		t.Fatalf("the policy that allowed root's grant %s to alice's guest disallows %+v", c.ID(), got)
	}
}

// A reloaded policy that declares a named resource somewhere else would
// not grant the live capability opened where the old one said: it is
// reported.
func TestNotAllowedByListsANamedResourceDeclaredElsewhere(t *testing.T) {
	s := newSupervisor(t)
	declare := func(dir string) *policies.Policy {
		return mustPolicy(t, fmt.Sprintf(`resource "dir" "reports" {
  path = "%s"
}
grant "reports" {
  resources = ["dir:reports"]
}`, dir))
	}
	old := declare(t.TempDir())
	s.SetPolicy(old)
	g, err := launchSpin(t, s, nil, "dir:reports")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.NotAllowedBy(old); len(got) != 0 {
		t.Fatalf("the policy in force disallows %+v", got)
	}
	got := s.NotAllowedBy(declare(t.TempDir()))
	if len(got) != 1 || got[0].Cap != g.Handles()[3].Cap.ID() {
		t.Fatalf("NotAllowedBy = %+v, want the grant of the old dir:reports", got)
	}
}

// oneCopyPolicy grants dir and lets one copy of it be passed on at a
// time, one hop away.
func oneCopyPolicy(t *testing.T, dir string) *policies.Policy {
	return mustPolicy(t, fmt.Sprintf(`
grant "data" {
  resources = ["dir:%s"]
}
delegate "one-copy" {
  resources  = ["dir:%s"]
  max_depth  = 1
  max_copies = 1
}
`, dir, dir))
}

func TestPolicyFanOutCountsLiveCopies(t *testing.T) {
	s := newSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(oneCopyPolicy(t, dir))
	a, err := launchSpin(t, s, nil, "dir:"+dir)
	if err != nil {
		t.Fatal(err)
	}
	granted := a.Handles()[3].Cap
	b, err := launchSpin(t, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := b.SendCap(context.Background(), granted, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.SendCap(context.Background(), granted, "d2"); !IsPolicyDenial(err) || !strings.Contains(err.Error(), "max_copies") {
		t.Fatalf("second live copy: %v, want a denial naming max_copies", err)
	}
	s.Kernel().Revoke(first, "test")
	if _, err := b.SendCap(context.Background(), granted, "d3"); err != nil {
		t.Fatalf("a copy after the first was revoked: %v", err)
	}
}

// A lease longer than the time the kernel can write in nanoseconds (past
// the year 2262) ends in the future, not before the grant was made.
func TestPolicyVeryLongLeaseEndsInTheFuture(t *testing.T) {
	s := newSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`grant "d" {
  resources = ["dir:%s"]
  ttl       = "2200000h"
}`, dir)))
	g, err := launchSpin(t, s, nil, "dir:"+dir)
	if err != nil {
		t.Fatal(err)
	}
	c := g.Handles()[3].Cap
	if end := c.Expires(); !end.After(time.Now()) {
		t.Fatalf("a lease of 2200000h ends at %v", end)
	}
}

// A guest that dups its grant and closes the handle it was given holds
// the grant still, as the dup: a reload that would not grant it reports
// it.
func TestNotAllowedByListsAGrantLiveOnlyAsItsDup(t *testing.T) {
	s := newSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`grant "d" {
  resources = ["dir:%s"]
}`, dir)))
	wrote := make(chan struct{})
	g, err := s.Launch(context.Background(), LaunchSpec{
		Principal: Principal{UID: 1000, GID: 1000, Name: "alice"}, Module: compile(t, s, guests+"dup_close_fd3.wat"),
		Grants: []Grant{mustGrant(t, "dir:"+dir)}, Stdout: closeOnWrite(wrote),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Kill("test over"); <-g.Done() })
	select {
	case <-wrote:
	case <-time.After(60 * time.Second):
		t.Fatal("the guest has not dup'd and closed its grant after 60s")
	}
	var grant caps.ID
	for _, e := range g.Handles() {
		if e.Cap.Parent() != nil {
			grant = e.Cap.Root().ID()
		}
	}
	got := s.NotAllowedBy(mustPolicy(t, `resource "chan" "x" {}`))
	if len(got) != 1 || got[0].Guest != g.ID() || got[0].Cap != grant {
		t.Fatalf("NotAllowedBy = %+v, want the grant %s, which the guest holds as a dup", got, grant)
	}
}

// A grant whose guest passed a copy on and closed its own handle is live
// through the copy: a reload that would not grant it reports it, as the
// grant of the guest it was made to.
func TestNotAllowedByListsAGrantLiveOnlyInACopyPassedOn(t *testing.T) {
	s := newSupervisor(t)
	dir := t.TempDir()
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`grant "d" {
  resources = ["dir:%s"]
}
delegate "pass" {
  resources = ["dir:%s"]
  max_depth = 1
}`, dir, dir)))
	stdin, feed := io.Pipe()
	wrote := make(chan struct{})
	a, err := s.Launch(context.Background(), LaunchSpec{
		Principal: Principal{UID: 1000, GID: 1000, Name: "alice"}, Module: compile(t, s, guests+"close_fd3.wat"),
		Grants: []Grant{mustGrant(t, "dir:"+dir)}, Stdin: stdin, Stdout: closeOnWrite(wrote),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { feed.Close(); a.Kill("test over"); <-a.Done() })
	grant := a.Handles()[3].Cap
	b, err := s.Launch(context.Background(), LaunchSpec{
		Principal: Principal{UID: 1000, GID: 1000, Name: "alice"}, Module: compile(t, s, guests+"spin.wat"),
		Delegations: []Delegation{{From: grant, Name: "given"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Kill("test over"); <-b.Done() })
	if _, err := feed.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wrote:
	case <-time.After(60 * time.Second):
		t.Fatal("the guest has not closed its grant after 60s")
	}
	got := s.NotAllowedBy(mustPolicy(t, `resource "chan" "x" {}`))
	if len(got) != 1 || got[0].Guest != a.ID() || got[0].Cap != grant.ID() {
		t.Fatalf("NotAllowedBy = %+v, want %s's grant %s, live in %s's copy", got, a.ID(), grant.ID(), b.ID())
	}
}

// A grant decided under one policy and set up after a reload put another
// in force is judged by the new one once the guest holds it: the reload's
// NotAllowedBy looked before it was held, and saw nothing.
func TestAGrantSetUpAcrossAReloadIsJudgedByTheNewPolicy(t *testing.T) {
	var logs abitest.Buffer
	s := newLoggingSupervisor(t, &logs)
	dir := t.TempDir()
	allow := mustPolicy(t, fmt.Sprintf("grant \"d\" {\n  resources = [\"dir:%s\"]\n}\n", dir))
	deny := mustPolicy(t, `resource "chan" "x" {}`)
	var reloads [][]Disallowed
	reloadOnce := func() {
		policyAuthorized = nil
		s.SetPolicy(deny) // as serve's SIGHUP does
		reloads = append(reloads, s.NotAllowedBy(deny))
	}
	t.Cleanup(func() { policyAuthorized = nil })

	s.SetPolicy(allow)
	policyAuthorized = reloadOnce
	g, err := launchSpin(t, s, nil, "dir:"+dir)
	if err != nil {
		t.Fatal(err)
	}
	launched := g.Handles()[3].Cap.ID()

	s.SetPolicy(allow)
	policyAuthorized = reloadOnce
	live, err := g.Grant(context.Background(), g.Principal(), mustGrant(t, "dir:"+dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(reloads) != 2 || len(reloads[0]) != 0 || len(reloads[1]) != 1 || reloads[1][0].Cap != launched {
		t.Fatalf("the reloads saw %+v: want nothing, then the grant of the launch only", reloads)
	}
	for _, id := range []caps.ID{launched, live.ID()} {
		if !strings.Contains(logs.String(), ReloadWarning) || !strings.Contains(logs.String(), "cap="+string(id)) {
			t.Errorf("no warning of %s, set up across the reload, in the log:\n%s", id, logs.String())
		}
	}
}
