package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sandboxd/sandboxd/caps"
	"golang.org/x/sys/unix"
)

// linkedTree is a policy's view of the host: public is granted to alice,
// public/private is denied to everyone, and outside is named by no rule.
// Links beneath public lead to private and outside.
type linkedTree struct {
	s                      *Supervisor
	pub, priv, outside     string
	alice                  Principal
	holder                 *caps.Holder
	toPriv, toOut, toInner string // links beneath public
}

func newLinkedTree(t *testing.T) *linkedTree {
	t.Helper()
	top := t.TempDir()
	lt := &linkedTree{
		s:   newSupervisor(t),
		pub: filepath.Join(top, "public"), outside: filepath.Join(top, "outside"),
		alice: Principal{UID: 1000, GID: 1000, Name: "alice"},
	}
	lt.priv = filepath.Join(lt.pub, "private")
	lt.holder = ClientHolder("conn-alice", lt.alice)
	for _, d := range []string{lt.priv, filepath.Join(lt.pub, "inner"), lt.outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(lt.priv, "p.txt"), filepath.Join(lt.outside, "o.txt")} {
		if err := os.WriteFile(f, []byte("not alice's"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lt.toPriv, lt.toOut, lt.toInner = filepath.Join(lt.pub, "p"), filepath.Join(lt.pub, "o"), filepath.Join(lt.pub, "i")
	for link, target := range map[string]string{lt.toPriv: lt.priv, lt.toOut: lt.outside, lt.toInner: "inner"} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	lt.s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
grant "public" {
  resources = ["dir:%[1]s", "file:%[1]s"]
  subject {
    users = ["alice"]
  }
}
deny "private" {
  resources = ["dir:%[2]s", "file:%[2]s"]
}
`, lt.pub, lt.priv)))
	return lt
}

func (lt *linkedTree) mint(t *testing.T, grant string) (*caps.Cap, error) {
	t.Helper()
	return lt.s.Mint(lt.holder, lt.alice, mustGrant(t, grant), "test")
}

// A symbolic link beneath a path the policy allows is decided on where it
// leads: a link to a denied directory or to one no rule names is refused,
// like the directory itself.
func TestPolicyDecidesOnWhereASymbolicLinkLeads(t *testing.T) {
	lt := newLinkedTree(t)
	for _, grant := range []string{
		"dir:" + lt.toPriv, "dir:" + lt.toOut,
		"file:" + filepath.Join(lt.toPriv, "p.txt"), "file:" + filepath.Join(lt.toOut, "o.txt") + ":ro",
	} {
		c, err := lt.mint(t, grant)
		if !IsPolicyDenial(err) {
			if c != nil {
				lt.s.Kernel().Revoke(c, "test over")
			}
			t.Errorf("%s: %v; want a policy denial", grant, err)
			continue
		}
		if !strings.Contains(err.Error(), lt.priv) && !strings.Contains(err.Error(), lt.outside) {
			t.Errorf("%s: %q does not name where the link leads", grant, err)
		}
	}
	// A link that stays beneath public is allowed, and opens its target.
	c, err := lt.mint(t, "dir:"+lt.toInner)
	if err != nil {
		t.Fatalf("a link within the allowed directory: %v", err)
	}
	if got := c.Resource().(*caps.Dir).HostPath(); got != filepath.Join(lt.pub, "inner") {
		t.Fatalf("opened %s, want the link's target", got)
	}
}

// A :create grant through a linked directory is decided on the
// directory the link leads to, and nothing is created when it is refused.
func TestCreateThroughASymbolicLinkIsDecidedWhereItLeads(t *testing.T) {
	lt := newLinkedTree(t)
	made := filepath.Join(lt.outside, "made")
	if _, err := lt.mint(t, "file:"+filepath.Join(lt.toOut, "made")+":create"); !IsPolicyDenial(err) {
		t.Fatalf("create through a link to outside: %v; want a policy denial", err)
	}
	if _, err := os.Lstat(made); err == nil {
		t.Fatalf("%s was created", made)
	}
	c, err := lt.mint(t, "file:"+filepath.Join(lt.toInner, "made")+":create")
	if err != nil {
		t.Fatalf("create through a link within the allowed directory: %v", err)
	}
	defer lt.s.Kernel().Revoke(c, "test over")
	if _, err := os.Stat(filepath.Join(lt.pub, "inner", "made")); err != nil {
		t.Fatal(err)
	}
}

// A path that names nothing yet beneath a link is decided on beneath the
// link's target too: refused by the policy, naming where it leads, not
// allowed and then found changed at the open.
func TestAMissingPathBeneathALinkIsDecidedWhereItLeads(t *testing.T) {
	lt := newLinkedTree(t)
	for _, grant := range []string{
		"dir:" + filepath.Join(lt.toOut, "missing"),
		"file:" + filepath.Join(lt.toOut, "missing") + ":ro",
		"file:" + filepath.Join(lt.toOut, "nodir", "x") + ":create",
	} {
		_, err := lt.mint(t, grant)
		if !IsPolicyDenial(err) || !strings.Contains(err.Error(), lt.outside) {
			t.Errorf("%s: %v; want a policy denial naming %s", grant, err, lt.outside)
		}
	}
}

// Once a policy has decided on a resolved path, the path is opened only if
// it still has no symbolic link in it: a link planted after the decision,
// in the place of a directory on the path or of its last element, fails the
// open rather than being followed, with openat2 and, where it is
// unavailable, one element at a time.
func TestAnExactGrantRefusesALinkPlantedAfterTheDecision(t *testing.T) {
	for _, errno := range []unix.Errno{0, unix.ENOSYS, unix.EPERM} {
		name := "openat2"
		if errno != 0 {
			name = "without openat2: " + unix.ErrnoName(errno)
		}
		t.Run(name, func(t *testing.T) {
			lt := newLinkedTree(t)
			if errno != 0 {
				withoutOpenat2(t, errno)
			}
			refusesPlantedLinks(t, lt)
		})
	}
}

// refusesPlantedLinks checks that exact grants through links planted
// beneath lt.pub, to lt.outside, fail saying the path changed, and that no
// :create made a file where a link leads.
func refusesPlantedLinks(t *testing.T, lt *linkedTree) {
	t.Helper()
	target := filepath.Join(lt.pub, "swapped")
	links := map[string]string{
		target:                              lt.outside,
		filepath.Join(lt.pub, "linked.txt"): filepath.Join(lt.outside, "o.txt"),
		filepath.Join(lt.pub, "dangling"):   filepath.Join(lt.outside, "made"),
	}
	for link, to := range links {
		if err := os.Symlink(to, link); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []Grant{
		{Kind: GrantDir, Source: target, Name: "d", exact: true},
		{Kind: GrantFile, Source: filepath.Join(target, "o.txt"), Name: "f", ReadOnly: true, exact: true},
		{Kind: GrantFile, Source: filepath.Join(target, "new"), Name: "n", Create: true, exact: true},
		{Kind: GrantFile, Source: filepath.Join(lt.pub, "linked.txt"), Name: "l", exact: true},
		{Kind: GrantFile, Source: filepath.Join(lt.pub, "dangling"), Name: "c", Create: true, exact: true},
	} {
		r, err := g.setupPath()
		if err == nil {
			_ = r.res.Close()
			t.Errorf("%s %s: opened through a symbolic link", g.Kind, g.Source)
			continue
		}
		if !strings.Contains(err.Error(), "changed while it was being opened") {
			t.Errorf("%s %s: %v; want it to say the path changed", g.Kind, g.Source, err)
		}
	}
	for _, name := range []string{"new", "made"} {
		if _, err := os.Lstat(filepath.Join(lt.outside, name)); err == nil {
			t.Errorf("a create followed a link: %s was made", filepath.Join(lt.outside, name))
		}
	}
}

// A path is decided on where it leads, and a deny rule written for the
// path as asked still applies: an operator who writes a rule through a
// link does not see it silently stop matching. It covers where the link
// led when the policy was put in force too: the real path is the same
// directory.
func TestADenyRuleOnThePathAsAskedStillApplies(t *testing.T) {
	s := newSupervisor(t)
	_, real, alias := linkedDir(t)
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
grant "real" {
  resources = ["dir:%s"]
}
deny "alias" {
  resources = ["dir:%s"]
}
`, real, alias)))
	alice := Principal{UID: 1000, GID: 1000, Name: "alice"}
	h := ClientHolder("conn-alice", alice)
	if _, err := s.Mint(h, alice, mustGrant(t, "dir:"+real), "test"); !IsPolicyDenial(err) || !strings.Contains(err.Error(), `"alias"`) {
		t.Fatalf("the real path the denied link leads to: %v; want that rule's denial", err)
	}
	if _, err := s.Mint(h, alice, mustGrant(t, "dir:"+filepath.Join(alias, ".")), "test"); !IsPolicyDenial(err) || !strings.Contains(err.Error(), `"alias"`) {
		t.Fatalf("through the link a deny rule names: %v; want that rule's denial", err)
	}
}

// A deny rule written for the path as granted also governs what is
// derived from the grant (delegations) and what a reloaded policy would
// no longer grant (NotAllowedBy).
func TestADenyRuleOnThePathAsGrantedGovernsDelegationAndReload(t *testing.T) {
	s := newSupervisor(t)
	_, real, alias := linkedDir(t)
	policy := func(deny string) string {
		return fmt.Sprintf(`
grant "real" {
  resources = ["dir:%[1]s"]
}
delegate "pass-real" {
  resources = ["dir:%[1]s"]
  max_depth = 2
}
deny "alias" {
  resources = ["dir:%[2]s"]
  on        = [%[3]s]
}
`, real, alias, deny)
	}
	s.SetPolicy(mustPolicy(t, policy(`"delegate"`)))
	g, err := launchSpin(t, s, nil, "dir:"+alias)
	if err != nil {
		t.Fatalf("the grant through the link (the deny is on delegations only): %v", err)
	}
	granted := g.Handles()[3].Cap
	b, i := granted.Rights()
	if _, err := s.Kernel().Derive(granted, caps.Derivation{Holder: &caps.Holder{ID: "other"}, Edge: caps.EdgeDelegate, Base: b, Inheriting: i}); !IsPolicyDenial(err) {
		t.Fatalf("delegating what was granted through the link: %v; want the deny rule's denial", err)
	}
	if out := s.NotAllowedBy(mustPolicy(t, policy(`"grant"`))); len(out) != 1 || out[0].Cap != granted.ID() {
		t.Fatalf("NotAllowedBy a policy that denies the path as granted: %+v; want the grant", out)
	}
}

// A grant made through a link while no policy is loaded is judged, once
// one is, by where the link leads: a policy that denies the real path
// lists it among what it would not grant.
func TestAGrantMadeWithoutAPolicyIsJudgedWhereItLeads(t *testing.T) {
	s := newSupervisor(t)
	top, real, alias := linkedDir(t)
	g, err := launchSpin(t, s, nil, "dir:"+alias)
	if err != nil {
		t.Fatal(err)
	}
	p := mustPolicy(t, fmt.Sprintf(`
grant "top" {
  resources = ["dir:%s"]
}
deny "real" {
  resources = ["dir:%s"]
}
`, top, real))
	if out := s.NotAllowedBy(p); len(out) != 1 || out[0].Cap != g.Handles()[3].Cap.ID() {
		t.Fatalf("NotAllowedBy a policy that denies where the grant leads: %+v; want the grant", out)
	}
}

// linkedDir makes a directory top/real and a link top/alias to it.
func linkedDir(t *testing.T) (top, real, alias string) {
	t.Helper()
	top = t.TempDir()
	real, alias = filepath.Join(top, "real"), filepath.Join(top, "alias")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, alias); err != nil {
		t.Fatal(err)
	}
	return top, real, alias
}

// withoutOpenat2 makes openat2 fail with errno, as it does on a kernel
// before Linux 5.6 (ENOSYS) or under a seccomp profile that refuses it
// (EPERM), until the test ends. It returns how many calls it has failed.
func withoutOpenat2(t *testing.T, errno unix.Errno) *atomic.Int32 {
	t.Helper()
	saved, calls := openat2, new(atomic.Int32)
	openat2 = func(int, string, *unix.OpenHow) (int, error) {
		calls.Add(1)
		return -1, errno
	}
	t.Cleanup(func() { openat2 = saved })
	return calls
}

// Where openat2 is unavailable, the grants that must follow no link (here
// under a policy, and under a deny list without one) are opened one path
// element at a time instead: a dir grant, a file grant read-write and
// read-only, and a :create grant, which makes its file (0600) and, for a
// file that exists, opens it as it is.
func TestExactGrantsOpenWithoutOpenat2(t *testing.T) {
	for _, errno := range []unix.Errno{unix.ENOSYS, unix.EPERM} {
		t.Run(unix.ErrnoName(errno), func(t *testing.T) {
			lt := newLinkedTree(t)
			calls := withoutOpenat2(t, errno)
			inner := filepath.Join(lt.pub, "inner")
			kept := filepath.Join(inner, "kept.txt")
			if err := os.WriteFile(kept, []byte("kept"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, grant := range []string{
				"dir:" + inner, "file:" + kept, "file:" + kept + ":ro",
				"file:" + filepath.Join(inner, "new") + ":create", "file:" + kept + ":create",
			} {
				c, err := lt.mint(t, grant)
				if err != nil {
					t.Errorf("%s: %v", grant, err)
					continue
				}
				if f, ok := c.Resource().(*caps.File); ok {
					checkHostFile(t, grant, f.OS(), strings.HasSuffix(grant, ":ro"))
				}
				lt.s.Kernel().Revoke(c, "test over")
			}
			if fi, err := os.Lstat(filepath.Join(inner, "new")); err != nil || fi.Mode() != 0o600 {
				t.Errorf("the :create grant's file: %v, %v; want a 0600 regular file", fi, err)
			}
			if b, err := os.ReadFile(kept); err != nil || string(b) != "kept" {
				t.Errorf("a :create grant of an existing file changed it: %q, %v", b, err)
			}
			s := newSupervisor(t) // no policy
			pg, err := s.authorize(grantee{by: lt.alice, deny: mustDenyList(t, "dir:"+lt.priv)}, mustGrant(t, "dir:"+inner))
			if err != nil || !pg.grant.exact {
				t.Fatalf("a dir grant under a deny list: %v, exact %v; want it allowed, to be opened following no link", err, pg.grant.exact)
			}
			r, err := s.open(context.Background(), lt.alice, pg.grant)
			if err != nil {
				t.Errorf("a dir grant under a deny list: %v", err)
			} else {
				_ = r.res.Close()
			}
			if calls.Load() == 0 {
				t.Fatal("openat2 was not called: the test tried nothing")
			}
		})
	}
}

// checkHostFile checks that f, a file grant's host file, is close-on-exec
// and open read-only or read-write as the grant asks.
func checkHostFile(t *testing.T, grant string, f *os.File, ro bool) {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fdf, fl int
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		if fdf, ferr = unix.FcntlInt(fd, unix.F_GETFD, 0); ferr == nil {
			fl, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0)
		}
	}); err != nil || ferr != nil {
		t.Fatalf("%s: fcntl: %v %v", grant, err, ferr)
	}
	if fdf&unix.FD_CLOEXEC == 0 {
		t.Errorf("%s: the host file is not close-on-exec", grant)
	}
	if want := map[bool]int{true: unix.O_RDONLY, false: unix.O_RDWR}[ro]; fl&unix.O_ACCMODE != want {
		t.Errorf("%s: the host file is open %#x, want %#x", grant, fl&unix.O_ACCMODE, want)
	}
}
