package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// runWithGroups runs the binary with args as uid 0 holding gid 0 and the
// supplementary groups given, whatever the user database says of uid 0's
// groups, and returns its exit status and stderr. It needs root.
func runWithGroups(t *testing.T, groups []uint32, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cacheHome)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: groups}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("sandboxd %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// policy explain, without --as, judges the invoking user as run --policy
// does: with the groups the process holds, not those the user database
// lists (a group joined since the session began, or taken up with sg).
func TestPolicyExplainJudgesTheInvokingUserWithTheGroupsRunDoes(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test runs sandboxd with a group its user is not listed in, which needs root")
	}
	pdir, data := privateDir(t), privateDir(t)
	writePolicy(t, pdir, "g.hcl", `
grant "group" {
  resources = ["dir:`+data+`"]
  subject {
    gids = [4242]
  }
}
`)
	policy := filepath.Join(pdir, "g.hcl")
	hello := guest(t, "abi/testdata/guests/hello.wat")
	if code, stderr := runWithGroups(t, []uint32{4242}, "run", "--policy", policy, "--grant", "dir:"+data, hello); code != 7 {
		t.Fatalf("run in group 4242: code %d, stderr %q; want the grant allowed and hello run", code, stderr)
	}
	if code, stderr := runWithGroups(t, []uint32{4242}, "policy", "explain", "--policy", policy, "--grant", "dir:"+data, hello); code != exitOK {
		t.Fatalf("policy explain in group 4242: code %d, stderr %q; want allowed, as run decided", code, stderr)
	}
	if code, _ := runWithGroups(t, nil, "policy", "explain", "--policy", policy, "--grant", "dir:"+data, hello); code != exitFailure {
		t.Fatalf("policy explain outside group 4242: code %d, want denied", code)
	}
}
