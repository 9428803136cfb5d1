package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/caps"
	"github.com/sandboxd/sandboxd/internal/socktest"
	"github.com/sandboxd/sandboxd/policies"
)

// A declared path's links are resolved when the policy is put in force.
// Someone who can write the directory above it (a guest with a writable
// grant of it, say) and puts a link in its place cannot move the next
// grant elsewhere: the grant is refused, naming where the path led then
// and leads now, until the policy is put in force again.
func TestDeclaredPathsLeadWhereTheyLedWhenThePolicyWasLoaded(t *testing.T) {
	s := newSupervisor(t)
	area, elsewhere := t.TempDir(), t.TempDir()
	reports := filepath.Join(area, "reports")
	if err := os.Mkdir(reports, 0o755); err != nil {
		t.Fatal(err)
	}
	sockDir := filepath.Join(area, "run")
	if err := os.Mkdir(sockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(sockDir, "db.sock")
	l, err := net.Listen("unix", db)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	other, err := net.Listen("unix", filepath.Join(elsewhere, "other.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	policy := mustPolicy(t, fmt.Sprintf(`
resource "dir" "reports" {
  path = "%s"
}
resource "sock" "db" {
  unix = "%s"
}
grant "all" {
  resources = ["dir:reports", "sock:db"]
}
`, reports, db))
	s.SetPolicy(policy)
	if _, err := launchSpin(t, s, nil, "dir:reports", "sock:db"); err != nil {
		t.Fatalf("grants of the paths as they were: %v", err)
	}
	// The directory and the socket's directory are moved aside, and links
	// to elsewhere put in their place.
	for _, p := range []string{reports, sockDir} {
		if err := os.Rename(p, p+".old"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(elsewhere, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("other.sock", filepath.Join(elsewhere, "db.sock")); err != nil {
		t.Fatal(err)
	}
	for _, grant := range []string{"dir:reports", "sock:db"} {
		_, err := launchSpin(t, s, nil, grant)
		if err == nil || !strings.Contains(err.Error(), "when the policy was loaded") || !strings.Contains(err.Error(), "reload the policy") {
			t.Fatalf("%s through a link put in its place: %v, want it refused as moved since the policy was loaded", grant, err)
		}
	}
	// Put in force again, the policy follows the links as they are now.
	s.SetPolicy(policy)
	if _, err := launchSpin(t, s, nil, "dir:reports"); err != nil {
		t.Fatalf("dir:reports after the policy was put in force again: %v", err)
	}
}

// A listen resource's unix path is bound in the directory it led to when
// the policy was put in force, and nowhere else: a link put in the place
// of a directory on it (by a guest with a writable dir grant above it)
// between the grant's resolution and its bind neither has the daemon
// remove a stale socket file of the same name where the link leads nor
// bind there. The grant is refused as moved since the policy was loaded.
func TestAListenResourceIsBoundWhereItsPathLedWhenThePolicyWasLoaded(t *testing.T) {
	s := newSupervisor(t)
	area, elsewhere := t.TempDir(), t.TempDir()
	app := filepath.Join(area, "app")
	if err := os.Mkdir(app, 0o755); err != nil {
		t.Fatal(err)
	}
	decoy := staleSocket(t, filepath.Join(elsewhere, "x.sock"))
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
resource "listen" "x" {
  unix = "%s"
}
grant "all" {
  resources = ["listen:x"]
}
`, filepath.Join(app, "x.sock"))))
	g, err := launchSpin(t, s, nil, "listen:x")
	if err != nil {
		t.Fatalf("listen:x at the path as it was: %v", err)
	}
	if d := g.Handles()[3].Cap.Info().Resource; d != "listen unix "+filepath.Join(app, "x.sock") {
		t.Fatalf("listen:x described as %q, want it bound at %s", d, filepath.Join(app, "x.sock"))
	}
	g.Kill("bound")
	<-g.Done()

	onUnixPinned(t, func() { swapForLink(t, app, elsewhere) })
	_, err = launchSpin(t, s, nil, "listen:x")
	decoy.check(t)
	if err == nil || !strings.Contains(err.Error(), "when the policy was loaded") || !strings.Contains(err.Error(), "reload the policy") {
		t.Fatalf("listen:x through a link put in place of its directory: %v, want it refused as moved since the policy was loaded", err)
	}
}

// An inline unix listen grant is bound in the directory its path led to
// when the grant was resolved: a link put in the place of a directory on
// it before the bind is followed neither to remove a stale socket file
// nor to bind.
func TestAnInlineUnixListenGrantIsBoundWhereItsPathLedWhenResolved(t *testing.T) {
	area, elsewhere := t.TempDir(), t.TempDir()
	app := filepath.Join(area, "app")
	if err := os.Mkdir(app, 0o755); err != nil {
		t.Fatal(err)
	}
	decoy := staleSocket(t, filepath.Join(elsewhere, "x.sock"))
	onUnixPinned(t, func() { swapForLink(t, app, elsewhere) })
	g := mustGrant(t, "listen:unix:"+filepath.Join(app, "x.sock")+"=x")
	r, err := g.setup(context.Background(), nil)
	if err == nil {
		defer r.res.Close()
	}
	decoy.check(t)
	if err == nil || !strings.Contains(err.Error(), "symbolic link") || !strings.Contains(err.Error(), "try again") {
		t.Fatalf("listen:unix through a link put in place of its directory: %v, want it refused as changed meanwhile", err)
	}
}

// A listen grant's socket file is bound, and a stale one removed, in the
// directory of its path only: a symbolic link in the place of the socket
// file itself (which bind(2) would not follow either), planted before
// the path was resolved by a guest with a writable dir grant of that
// directory, is not followed to remove a stale socket where it leads and
// bind there, be the path inline, a policy's listen resource (the link
// there when the policy was loaded) or Options.Sockets'. The grant fails,
// saying the path is not a socket.
func TestAUnixListenGrantFollowsNoLinkInThePlaceOfItsSocketFile(t *testing.T) {
	for _, how := range []string{"inline", "policy", "Options.Sockets"} {
		t.Run(how, func(t *testing.T) {
			area, elsewhere := t.TempDir(), t.TempDir()
			path := filepath.Join(area, "web.sock")
			decoy := staleSocket(t, filepath.Join(elsewhere, "other.sock"))
			if err := os.Symlink(decoy.path, path); err != nil {
				t.Fatal(err)
			}
			grant, sockets := "listen:web", sockResolver(nil)
			switch how {
			case "inline":
				grant = "listen:unix:" + path + "=web"
			case "policy":
				s := newSupervisor(t)
				s.SetPolicy(mustPolicy(t, fmt.Sprintf("resource \"listen\" \"web\" {\n  unix = %q\n}\n", path)))
				sockets = s.socketResolver()
			case "Options.Sockets":
				sockets = resolvingLinks(resolver(map[string]SockTarget{"listen:web": {Network: "unix", Address: path}}))
			}
			r, err := mustGrant(t, grant).setup(context.Background(), sockets)
			if err == nil {
				r.res.Close()
			}
			decoy.check(t)
			if err == nil || !strings.Contains(err.Error(), path+": it exists and is not a socket") {
				t.Errorf("%s with a link in the place of its socket file: %v, want it refused as not a socket", grant, err)
			}
		})
	}
}

// onUnixPinned has f run once, the next time a unix sock or listen
// grant's path has been resolved, before anything is done at it.
func onUnixPinned(t *testing.T, f func()) {
	unixPinned = func() {
		unixPinned = nil
		f()
	}
	t.Cleanup(func() { unixPinned = nil })
}

// swapForLink moves dir aside (to dir.old) and puts a symbolic link to
// target in its place.
func swapForLink(t *testing.T, dir, target string) {
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Error(err)
	}
	if err := os.Symlink(target, dir); err != nil {
		t.Error(err)
	}
}

// aStaleSocket is a socket file nothing listens on.
type aStaleSocket struct {
	path string
	ino  uint64
}

// staleSocket leaves a socket file at path that nothing listens on, with
// a second (hard) link to it beside it, so that its inode, which check
// compares, is not freed for reuse should the file be removed.
func staleSocket(t *testing.T, path string) aStaleSocket {
	t.Helper()
	socktest.LeaveStale(t, path)
	if err := os.Link(path, path+".kept"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return aStaleSocket{path: path, ino: fi.Sys().(*syscall.Stat_t).Ino}
}

// check reports an error unless the stale socket file is where it was,
// as it was: neither removed nor replaced, and nothing listens on it.
func (s aStaleSocket) check(t *testing.T) {
	t.Helper()
	fi, err := os.Lstat(s.path)
	if err != nil {
		t.Errorf("the stale socket file where the link leads: %v, want it left alone", err)
		return
	}
	if ino := fi.Sys().(*syscall.Stat_t).Ino; ino != s.ino || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("the stale socket file %s, where the link leads, was removed and replaced (inode %d, was %d; mode %v)", s.path, ino, s.ino, fi.Mode())
	}
	if c, err := net.Dial("unix", s.path); err == nil {
		c.Close()
		t.Errorf("the daemon listens at %s, where the link leads", s.path)
	}
}

// A sock resource's unix path is connected to where it led when the
// policy was put in force, and nowhere else: a link put in the place of a
// directory on it (by a guest with a writable dir grant above it) between
// the grant's check and its connection leads neither the connection nor
// a dialer to another socket the daemon can reach (its own control socket
// among them). The grant is refused as moved since the policy was loaded.
func TestASockResourceConnectsWhereItsPathLedWhenThePolicyWasLoaded(t *testing.T) {
	for _, grant := range []string{"sock:db", "sock:db:dial"} {
		t.Run(grant, func(t *testing.T) {
			area, elsewhere := t.TempDir(), t.TempDir()
			app := filepath.Join(area, "app")
			if err := os.Mkdir(app, 0o755); err != nil {
				t.Fatal(err)
			}
			listenUnixSocket(t, filepath.Join(app, "db.sock"))
			decoy := listenUnixSocket(t, filepath.Join(elsewhere, "db.sock"))
			s := newSupervisor(t)
			s.SetPolicy(unixDBPolicy(t, filepath.Join(app, "db.sock")))
			r, err := mustGrant(t, grant).setup(context.Background(), s.socketResolver())
			if err != nil {
				t.Fatalf("%s at the path as it was: %v", grant, err)
			}
			connectThrough(t, r.res)

			onUnixPinned(t, func() { swapForLink(t, app, elsewhere) })
			r, err = mustGrant(t, grant).setup(context.Background(), s.socketResolver())
			if err == nil {
				connectThrough(t, r.res)
			}
			socktest.Unreached(t, decoy, HangGuard)
			if err == nil || !strings.Contains(err.Error(), "when the policy was loaded") || !strings.Contains(err.Error(), "reload the policy") {
				t.Fatalf("%s through a link put in place of its directory: %v, want it refused as moved since the policy was loaded", grant, err)
			}
		})
	}
}

// A sock resource's dialer makes every connection in the directory its
// path led to when the policy was put in force: a link put in the place
// of that directory after the dialer was granted is not followed.
func TestASockDialerConnectsWhereItsPathLedWhenGranted(t *testing.T) {
	area, elsewhere := t.TempDir(), t.TempDir()
	app := filepath.Join(area, "app")
	if err := os.Mkdir(app, 0o755); err != nil {
		t.Fatal(err)
	}
	granted := listenUnixSocket(t, filepath.Join(app, "db.sock"))
	decoy := listenUnixSocket(t, filepath.Join(elsewhere, "db.sock"))
	s := newSupervisor(t)
	s.SetPolicy(unixDBPolicy(t, filepath.Join(app, "db.sock")))
	r, err := mustGrant(t, "sock:db:dial").setup(context.Background(), s.socketResolver())
	if err != nil {
		t.Fatal(err)
	}
	swapForLink(t, app, elsewhere)
	connectThrough(t, r.res)
	socktest.Unreached(t, decoy, HangGuard)
	granted.(*net.UnixListener).SetDeadline(time.Now().Add(HangGuard))
	if c, err := granted.Accept(); err != nil {
		t.Fatalf("the granted server had no connection from the dialer: %v", err)
	} else {
		c.Close()
	}
}

// An inline unix sock grant connects where its path led when the grant
// was resolved: a link put in the place of a directory on it before the
// connection, or before a dialer is made, is not followed.
func TestAnInlineUnixSockGrantConnectsWhereItsPathLedWhenResolved(t *testing.T) {
	for _, option := range []string{"", ":dial"} {
		t.Run("sock:unix:PATH=db"+option, func(t *testing.T) {
			area, elsewhere := t.TempDir(), t.TempDir()
			app := filepath.Join(area, "app")
			if err := os.Mkdir(app, 0o755); err != nil {
				t.Fatal(err)
			}
			listenUnixSocket(t, filepath.Join(app, "db.sock"))
			decoy := listenUnixSocket(t, filepath.Join(elsewhere, "db.sock"))
			onUnixPinned(t, func() { swapForLink(t, app, elsewhere) })
			r, err := mustGrant(t, "sock:unix:"+filepath.Join(app, "db.sock")+"=db"+option).setup(context.Background(), nil)
			if err == nil {
				connectThrough(t, r.res)
			}
			socktest.Unreached(t, decoy, HangGuard)
			if err == nil || !strings.Contains(err.Error(), "when the grant was being set up") || !strings.Contains(err.Error(), "try again") {
				t.Fatalf("sock:unix%s through a link put in place of its directory: %v, want it refused as changed meanwhile", option, err)
			}
		})
	}
}

// listenUnixSocket listens on a unix socket at path until the test ends.
func listenUnixSocket(t *testing.T, path string) net.Listener {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// connectThrough makes one connection through res, a sock grant's
// resource (a connection is one already; a dialer is asked for one), and
// closes it and res.
func connectThrough(t *testing.T, res caps.Resource) {
	t.Helper()
	defer res.Close()
	d, ok := res.(*caps.Dialer)
	if !ok {
		return
	}
	for {
		conn, err := d.Accept()
		if err == nil {
			conn.Close()
			return
		}
		if !errors.Is(err, caps.EAGAIN) {
			t.Fatalf("accept on the dialer: %v", err)
		}
		w := caps.NewWaiter()
		if ready, cancel := d.Poll(caps.EventRead, w); ready&caps.EventRead == 0 {
			select {
			case <-w.C():
			case <-time.After(HangGuard):
				t.Fatal("the dialer's attempt did not finish")
			}
			cancel()
		}
	}
}

// A policy's deny rule written through a symbolic link, or naming a
// resource declared through one, also stops an inline grant of where the
// link led when the policy was put in force, and of a directory that
// contains it.
func TestAPolicyDenyCoversWhereItsLinkLedWhenThePolicyWasLoaded(t *testing.T) {
	s := newSupervisor(t)
	area := t.TempDir()
	for _, d := range []string{"private", "reports", "public"} {
		if err := os.Mkdir(filepath.Join(area, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, to := range map[string]string{"link": "private", "reports-link": "reports"} {
		if err := os.Symlink(filepath.Join(area, to), filepath.Join(area, link)); err != nil {
			t.Fatal(err)
		}
	}
	s.SetPolicy(mustPolicy(t, fmt.Sprintf(`
resource "dir" "reports" {
  path = "%[1]s/reports-link"
}
grant "all" {
  resources = ["dir:/", "dir:reports"]
}
deny "by-path" {
  resources = ["dir:%[1]s/link"]
}
deny "by-name" {
  resources = ["dir:reports"]
}
`, area)))
	for grant, rule := range map[string]string{
		"dir:" + area + "/private":   "by-path",
		"dir:" + area + "/reports/x": "by-name",
		"dir:" + area:                "",
	} {
		if grant == "dir:"+area+"/reports/x" {
			if err := os.MkdirAll(filepath.Join(area, "reports", "x"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		_, err := launchSpin(t, s, nil, grant)
		if !IsPolicyDenial(err) || !strings.Contains(err.Error(), `denied by deny "`+rule) {
			t.Errorf("--grant %s: %v, want denied by deny %q", grant, err, rule)
		}
	}
	if _, err := launchSpin(t, s, nil, "dir:"+area+"/public"); err != nil {
		t.Errorf("--grant of a directory beside them: %v", err)
	}
}

// unixDBPolicy is a policy declaring sock:db at the unix socket path and
// granting it.
func unixDBPolicy(t *testing.T, path string) *policies.Policy {
	t.Helper()
	return mustPolicy(t, fmt.Sprintf(`
resource "sock" "db" {
  unix = "%s"
}
grant "all" {
  resources = ["sock:db"]
}`, path))
}
