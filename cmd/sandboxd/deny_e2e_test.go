package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run --deny wins over run's own grants, with no policy: a directory
// holding what it denies is refused before anything runs, a path written
// relative to the working directory is judged where it leads, and one
// beside it is given.
func TestRunDenyFlagStopsWhatReachesIt(t *testing.T) {
	t.Parallel()
	work := privateDir(t)
	for _, d := range []string{"data/pub", "data/private"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hello := guest(t, "abi/testdata/guests/hello.wat")
	if r := sandboxdIn(t, work, "run", "--deny", "dir:./data/private", "--grant", "dir:data/pub", hello); r.code != 7 || r.stdout != "hello\n" {
		t.Fatalf("run with a directory beside the denied one: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r := sandboxdIn(t, work, "run", "--deny", "dir:./data/private", "--grant", "dir:data", hello)
	if r.code != exitGrant || r.stdout != "" {
		t.Fatalf("run with the directory above the denied one: code %d, stdout %q, stderr %q; want %d and nothing run", r.code, r.stdout, r.stderr, exitGrant)
	}
	private := filepath.Join(work, "data/private")
	oneLine(t, r.stderr, `sandboxd: grant "dir:data": dir:`+filepath.Join(work, "data")+" is denied by --deny dir:"+private+": it contains dir:"+private+", which a handle on it would reach")
	r = sandboxdIn(t, work, "run", "--deny", "sock:*", "--grant", "sock:tcp:127.0.0.1:9=db", hello)
	if r.code != exitGrant || !strings.Contains(r.stderr, "a sock of an inline address is denied by --deny sock:*") {
		t.Fatalf("run with an inline socket under --deny sock:*: code %d, stderr %q", r.code, r.stderr)
	}
}

func TestDenyFlagUsageErrors(t *testing.T) {
	t.Parallel()
	hello := guest(t, "abi/testdata/guests/hello.wat")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--deny", "reports", hello}, `--deny "reports": want KIND:NAME, KIND:GLOB or dir|file:/PATH`},
		{[]string{"run", "--deny", "disk:x", hello}, `--deny "disk:x": unknown resource kind "disk"`},
		{[]string{"run", "--deny", "sock:/run/db.sock", hello}, "a host-path prefix applies to dir and file only"},
		{[]string{"run", "--deny", "dir:reports", hello}, `--deny "dir:reports" names a dir resource of a policy, and run has no --policy: give a path (dir:./reports)`},
		{[]string{"launch", "--deny", "chan:a=b", hello}, `--deny "chan:a=b": name "a=b" may not contain`},
	} {
		r := sandboxd(t, "", c.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: code %d, stderr %q; want %d saying %q", c.args, r.code, r.stderr, exitUsage, c.want)
		}
	}
}

// Through the daemon, a --deny naming a resource of the daemon's policy
// covers the path the policy declares for it, and so the directory
// above it; the selectors reach the daemon with the launch.
func TestDaemonLaunchDenyFlagCoversAPolicyResourcesPath(t *testing.T) {
	t.Parallel()
	pdir, data := filepath.Join(privateDir(t), "policy"), privateDir(t)
	reports := filepath.Join(data, "reports")
	if err := os.Mkdir(reports, 0o755); err != nil {
		t.Fatal(err)
	}
	writePolicy(t, pdir, "p.hcl", `
resource "dir" "reports" {
  path = "`+reports+`"
}
grant "all" {
  resources = ["dir:/", "dir:reports"]
}
`)
	d := serveDaemon(t, bin, "", "--policy", pdir)
	hello := guest(t, "abi/testdata/guests/hello.wat")
	if r := d.cli(t, "launch", "--grant", "dir:"+data, hello); r.code != 7 {
		t.Fatalf("launch without --deny: code %d, stderr %q", r.code, r.stderr)
	}
	r := d.cli(t, "launch", "--deny", "dir:reports", "--grant", "dir:"+data, hello)
	if r.code != exitGrant || r.stdout != "" {
		t.Fatalf("launch --deny dir:reports with the directory above it: code %d, stdout %q, stderr %q; want %d", r.code, r.stdout, r.stderr, exitGrant)
	}
	oneLine(t, r.stderr, "is denied by --deny dir:reports: it contains dir:reports ("+reports+"), which a handle on it would reach")
	if r := d.cli(t, "launch", "--deny", "dir:reports", "--grant", "dir:reports", hello); r.code != exitGrant || !strings.Contains(r.stderr, "dir:reports is denied by --deny dir:reports") {
		t.Fatalf("launch --deny dir:reports --grant dir:reports: code %d, stderr %q", r.code, r.stderr)
	}
	// inspect shows the list a guest was launched with.
	r = d.cli(t, "launch", "--detach", "--deny", "dir:reports", "--deny", "sock:*", guest(t, "daemon/testdata/guests/spin.wat"))
	if r.code != 0 {
		t.Fatalf("launch --detach --deny: code %d, stderr %q", r.code, r.stderr)
	}
	if r := d.cli(t, "inspect", strings.TrimSpace(r.stdout)); !strings.Contains(r.stdout, "\ndeny:       dir:reports sock:*\n") {
		t.Fatalf("inspect of a guest launched with --deny: %q, want its deny row", r.stdout)
	}
	// A capability passed on at launch is judged by what it was granted
	// from.
	spin := d.launchSpin(t, "dir:"+reports+"=r")
	id := d.capsJSON(t, spin)["r"].Cap.ID
	r = d.cli(t, "launch", "--deny", "dir:"+data, "--grant", "cap:"+string(id), hello)
	if r.code != exitGrant || !strings.Contains(r.stderr, "dir:"+reports+" is denied by --deny dir:"+data) {
		t.Fatalf("launch --deny with a cap: grant of what it covers: code %d, stderr %q; want %d", r.code, r.stderr, exitGrant)
	}
}

// A daemon without a policy refuses a launch whose --deny names a dir
// resource, which could deny nothing there, as run does: status 2,
// saying how to write a path, and nothing run.
func TestDaemonLaunchDenyNamingAResourceWithoutAPolicy(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	hello := guest(t, "abi/testdata/guests/hello.wat")
	r := d.cli(t, "launch", "--deny", "dir:private", "--grant", "dir:"+privateDir(t), hello)
	if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, `--deny "dir:private" names a dir resource of a policy, and the daemon has no policy: give a path (dir:./private)`) {
		t.Fatalf("launch --deny dir:private without a policy: code %d, stdout %q, stderr %q; want %d", r.code, r.stdout, r.stderr, exitUsage)
	}
}

// No grant connects a guest to the daemon's own control socket, which
// would act with the daemon's credentials: not by its path, nor through
// a link to it.
func TestDaemonRefusesASockGrantOfItsOwnControlSocket(t *testing.T) {
	t.Parallel()
	d := serveDaemon(t, bin, "")
	link := filepath.Join(privateDir(t), "ctl.sock")
	if err := os.Symlink(d.socket, link); err != nil {
		t.Fatal(err)
	}
	hello := guest(t, "abi/testdata/guests/hello.wat")
	for _, path := range []string{d.socket, link} {
		r := d.cli(t, "launch", "--grant", "sock:unix:"+path+"=ctl", hello)
		if r.code != exitGrant || !strings.Contains(r.stderr, "it is the daemon's own control socket, which no grant may reach") {
			t.Errorf("launch --grant sock:unix:%s: code %d, stderr %q; want %d, refused", path, r.code, r.stderr, exitGrant)
		}
	}
}
