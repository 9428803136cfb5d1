package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// sandboxdIn runs the binary with args in directory dir, as a user who
// typed relative paths there would.
func sandboxdIn(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return runBinaryIn(t, dir, bin, "", args...)
}

// README's `--grant file:./out.log:create` makes the file when it is
// missing (0600), opens an existing one without clobbering it, and leaves
// nothing behind when the launch fails; under run and launch alike.
func TestFileCreateGrantMakesTheFileAndRemovesItWhenTheLaunchFails(t *testing.T) {
	t.Parallel()
	w := guest(t, "cmd/sandboxd/testdata/write_fd3.wat")
	d := serveDaemon(t, bin, "")
	for _, verb := range []string{"run", "launch"} {
		dir := t.TempDir()
		args := func(more ...string) []string {
			if verb == "launch" {
				return append([]string{"launch", "--socket", d.socket}, more...)
			}
			return append([]string{"run"}, more...)
		}
		out := filepath.Join(dir, "out.log")

		// Without :create a missing file is refused, saying how to have it made.
		r := sandboxdIn(t, dir, args("--grant", "file:./out.log", w)...)
		if r.code != exitGrant || !strings.Contains(r.stderr, "add :create to the grant") {
			t.Fatalf("%s without :create: code %d, stderr %q", verb, r.code, r.stderr)
		}
		r = sandboxdIn(t, dir, args("--grant", "file:./out.log:create", w)...)
		if r.code != 0 {
			t.Fatalf("%s --grant file:./out.log:create: code %d, stderr %q", verb, r.code, r.stderr)
		}
		fi, err := os.Stat(out)
		if b, _ := os.ReadFile(out); err != nil || string(b) != "hello\n" || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: out.log is %q (%v, %v); want what the guest wrote, mode 0600", verb, b, fi.Mode(), err)
		}
		// An existing file is opened as it is: not truncated.
		if err := os.WriteFile(out, []byte("0123456789\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if r = sandboxdIn(t, dir, args("--grant", "file:./out.log:create", w)...); r.code != 0 {
			t.Fatalf("%s with an existing file: code %d, stderr %q", verb, r.code, r.stderr)
		}
		if b, _ := os.ReadFile(out); string(b) != "hello\n6789\n" {
			t.Fatalf("%s: the existing file became %q; want it written over from its start, not truncated", verb, b)
		}
		// A later grant that fails removes the file the first made.
		r = sandboxdIn(t, dir, args("--grant", "file:./new.log:create", "--grant", "dir:./missing", w)...)
		if r.code != exitGrant || !strings.Contains(r.stderr, "missing does not exist") {
			t.Fatalf("%s with a failing grant: code %d, stderr %q", verb, r.code, r.stderr)
		}
		if _, err := os.Lstat(filepath.Join(dir, "new.log")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: a failed launch left the file its grant created: %v", verb, err)
		}
		// The file existed before: a failed launch leaves it.
		r = sandboxdIn(t, dir, args("--grant", "file:./out.log:create", "--grant", "dir:./missing", w)...)
		if _, err := os.Stat(out); r.code != exitGrant || err != nil {
			t.Fatalf("%s: a failed launch with an existing file: code %d, %v", verb, r.code, err)
		}
	}
}

// A daemon running as root gives the file it creates to the principal
// that asked for it.
func TestFileCreateGrantGivesTheFileToTheLaunchingUser(t *testing.T) {
	t.Parallel()
	pdir := filepath.Join(privateDir(t), "policy")
	outDir := privateDir(t)
	writePolicy(t, pdir, "worker.hcl", `
grant "worker-out" {
  resources = ["file:`+outDir+`"]
  subject {
    uids = [`+strconv.Itoa(worker)+`]
  }
}
`)
	d := serveDaemon(t, bin, "", "--policy", pdir)
	shared := d.shareWithOthers(t)
	w := filepath.Join(shared, "write_fd3.wasm")
	copyFile(t, guest(t, "cmd/sandboxd/testdata/write_fd3.wat"), w, 0o644)
	out := filepath.Join(outDir, "out.log")
	r := d.cliAs(t, shared, worker, "launch", "--grant", "file:"+out+":create", w)
	if r.code != 0 {
		t.Fatalf("launch as uid %d: code %d, stderr %q", worker, r.code, r.stderr)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != worker || st.Gid != worker || fi.Mode().Perm() != 0o600 {
		t.Fatalf("created %s is owned by %d:%d, mode %v; want %d:%d, 0600", out, st.Uid, st.Gid, fi.Mode(), worker, worker)
	}
}

// launch --grant dir:data, to a daemon without a policy, says how to
// grant the directory data where the user is (dir:./data, which launch
// makes absolute), which then works. It said to give an absolute path,
// as if a relative one could not be given.
func TestABareWordGrantWithoutAPolicySaysHowToGrantTheDirectoryHere(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	if err := os.Mkdir(filepath.Join(work, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := serveDaemon(t, bin, "")
	hello := guest(t, "abi/testdata/guests/hello.wat")
	r := sandboxdIn(t, work, "launch", "--socket", d.socket, "--grant", "dir:data", hello)
	if r.code != exitGrant || !strings.Contains(r.stderr, "dir:./data") {
		t.Fatalf("launch --grant dir:data: code %d, stderr %q, want a grant failure naming dir:./data", r.code, r.stderr)
	}
	if r := sandboxdIn(t, work, "launch", "--socket", d.socket, "--grant", "dir:./data", hello); r.code != 7 {
		t.Fatalf("launch --grant dir:./data: code %d, stderr %q, want hello's 7", r.code, r.stderr)
	}
}
