package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/policies"
)

// denyTree makes, in a temporary directory with its links resolved,
// srv/private and srv/public, and a symbolic link named link to
// srv/private; it returns the directory.
func denyTree(t *testing.T) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"srv/private", "srv/public"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "srv/private"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A selector is a host path as the launcher wrote it, which may lead
// elsewhere through a symbolic link: the list covers where it leads too,
// so the link's target, and a directory holding it, are refused as a
// grant through the link is.
func TestADenyListCoversWhereASelectorsLinkLeads(t *testing.T) {
	dir := denyTree(t)
	s := newSupervisor(t)
	l := mustDenyList(t, "dir:"+dir+"/link")
	for _, grant := range []string{"dir:" + dir + "/srv/private", "dir:" + dir + "/srv", "file:" + dir + "/srv/private/key", "dir:" + dir + "/link"} {
		_, err := launchDenied(t, s, l, grant)
		if !IsPolicyDenial(err) || !strings.Contains(err.Error(), "is denied by --deny dir:"+dir+"/link") {
			t.Errorf("launch with --grant %s: %v, want it denied by --deny dir:%s/link", grant, err, dir)
		}
	}
	if _, err := launchDenied(t, s, l, "dir:"+dir+"/srv/public"); err != nil {
		t.Fatalf("a grant beside the link's target: %v", err)
	}
}

// linkPolicy declares dir:current at dir/link, a symbolic link to
// srv/private, and grants it and anything beneath dir.
func linkPolicy(t *testing.T, dir string) *policies.Policy {
	return mustPolicy(t, fmt.Sprintf(`
resource "dir" "current" {
  path = "%s/link"
}
grant "all" {
  resources = ["dir:current", "dir:%s"]
}
`, dir, dir))
}

// A selector naming a policy's dir resource declared through a symbolic
// link covers where the link led when the policy was put in force, which
// is what a grant of the resource opens: granted as a host path, or in a
// directory granted, it is refused too.
func TestADenyListNamingAResourceCoversWhereItsLinkLeads(t *testing.T) {
	dir := denyTree(t)
	s := newSupervisor(t)
	s.SetPolicy(linkPolicy(t, dir))
	l := mustDenyList(t, "dir:current")
	for _, grant := range []string{"dir:" + dir + "/srv/private", "dir:" + dir + "/srv"} {
		_, err := launchDenied(t, s, l, grant)
		if !IsPolicyDenial(err) || !strings.Contains(err.Error(), "is denied by --deny dir:current") {
			t.Errorf("launch --deny dir:current --grant %s: %v, want it denied by the deny list", grant, err)
		}
	}
	if _, err := launchDenied(t, s, l, "dir:"+dir+"/srv/public"); err != nil {
		t.Fatalf("a grant beside the resource: %v", err)
	}
}

// A grant of a named dir resource opens where its declared path led when
// the policy was put in force: the deny list judges that place too.
func TestADenyListJudgesANamedGrantWhereItIsOpened(t *testing.T) {
	dir := denyTree(t)
	s := newSupervisor(t)
	s.SetPolicy(linkPolicy(t, dir))
	for _, deny := range []string{"dir:" + dir + "/srv/private", "dir:" + dir + "/srv"} {
		_, err := launchDenied(t, s, mustDenyList(t, deny), "dir:current")
		if !IsPolicyDenial(err) || !strings.Contains(err.Error(), "is denied by --deny "+deny) {
			t.Errorf("launch --deny %s --grant dir:current: %v, want it denied by the deny list", deny, err)
		}
	}
	if _, err := launchDenied(t, s, mustDenyList(t, "dir:"+dir+"/srv/public"), "dir:current"); err != nil {
		t.Fatalf("a grant of the resource beside the denied directory: %v", err)
	}
}

// A capability granted from a named resource reaches where the resource
// was when it was granted: a reload that declares the name elsewhere does
// not take it out of a selector of that place.
func TestADenyListJudgesANamedGrantWhereItWasOpenedAfterAReload(t *testing.T) {
	dir := denyTree(t)
	s := newSupervisor(t)
	declare := func(path string) {
		s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
resource "dir" "reports" {
  path = "%s"
}
grant "reports" {
  resources = ["dir:reports"]
}
delegate "pass-reports" {
  resources = ["dir:reports"]
  max_depth = 2
}
`, path)))
	}
	declare(dir + "/srv/private")
	a, err := launchSpin(t, s, nil, "dir:reports")
	if err != nil {
		t.Fatal(err)
	}
	granted := a.Handles()[3].Cap
	declare(dir + "/srv/public")
	b, err := launchDenied(t, s, mustDenyList(t, "dir:"+dir+"/srv/private"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.SendCap(context.Background(), granted, "reports")
	if !IsPolicyDenial(err) || !strings.Contains(err.Error(), "--deny dir:"+dir+"/srv/private") {
		t.Fatalf("passing on a grant opened in the denied directory, its name since declared elsewhere: %v, want a denial", err)
	}
}

// Without a policy a grant's host path is judged by the deny list as its
// links lead when it is checked; what is then opened must be that place:
// a link put in its place after the check makes the grant fail rather
// than open what the list denies.
func TestADenyListGrantOpensWhatItJudged(t *testing.T) {
	dir := denyTree(t)
	data := filepath.Join(dir, "srv/public")
	s := newSupervisor(t)
	alice := Principal{UID: 1000, GID: 1000, Name: "alice"}
	pg, err := s.authorize(grantee{by: alice, deny: mustDenyList(t, "dir:"+dir+"/srv/private")}, mustGrant(t, "dir:"+data))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(data); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "srv/private"), data); err != nil {
		t.Fatal(err)
	}
	r, err := s.open(context.Background(), alice, pg.grant)
	if err == nil {
		_ = r.res.Close()
		t.Fatalf("a grant judged as %s opened it after a link to the directory --deny covers took its place", data)
	}
	if !strings.Contains(err.Error(), "changed while it was being opened") {
		t.Fatalf("the grant failed with %v, want it to say the path changed", err)
	}
}

// Without a policy a dir or file grant is always a host path, so a
// selector naming a dir or file resource could deny nothing: a launch
// with one is refused, saying how to write the path, rather than run
// with a list that protects nothing.
func TestADenyListNamingAHostResourceNeedsAPolicy(t *testing.T) {
	dir := denyTree(t)
	s := newSupervisor(t)
	for _, sel := range []string{"dir:private", "file:key*"} {
		_, err := launchDenied(t, s, mustDenyList(t, sel), "dir:"+dir+"/srv")
		var se *SpecError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "--deny \""+sel+"\" names a") {
			t.Errorf("launch --deny %s without a policy: %v, want it refused as a request naming the selector", sel, err)
		}
	}
	if _, err := launchDenied(t, s, mustDenyList(t, "sock:db", "chan:jobs"), "dir:"+dir+"/srv"); err != nil {
		t.Fatalf("sock and chan names need no policy: %v", err)
	}
	s.SetPolicy(linkPolicy(t, dir))
	if _, err := launchDenied(t, s, mustDenyList(t, "dir:private"), "dir:"+dir+"/srv/public"); err != nil {
		t.Fatalf("a dir name under a policy: %v", err)
	}
}

// A file a guest creates or opens beneath a granted directory is derived
// from the directory's grant, and judged by it: it is not passed to a
// guest whose list covers the directory.
func TestADenyListJudgesAFileMadeBeneathAGrantByTheGrant(t *testing.T) {
	dir := denyTree(t)
	s := newSupervisor(t)
	a, err := launchSpin(t, s, nil, "dir:"+dir+"/srv/public=pub")
	if err != nil {
		t.Fatal(err)
	}
	pub := a.Handles()[3].Cap
	f, err := os.Create(filepath.Join(dir, "srv/public/made"))
	if err != nil {
		t.Fatal(err)
	}
	made, err := s.Kernel().Derive(pub, caps.Derivation{Holder: a.holder, Edge: caps.EdgeOpen, Name: "made", Base: caps.RightFDRead, Resource: caps.NewFile(f, "made")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := launchDenied(t, s, mustDenyList(t, "dir:"+dir+"/srv/public"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.SendCap(context.Background(), made, "made"); !IsPolicyDenial(err) || !strings.Contains(err.Error(), "--deny dir:"+dir+"/srv/public") {
		t.Fatalf("a file made beneath the covered directory: %v, want it denied", err)
	}
}
