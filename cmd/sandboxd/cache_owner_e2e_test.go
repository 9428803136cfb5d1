package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A compilation cache another user can write is refused: by run given it
// as --cache-dir (status 1), by run finding its default cache so (the
// guest compiled in memory, with a warning), and by serve finding its
// state directory's cache so (status 1). Each used it, and would have run
// the machine code that user put there.
func TestACompilationCacheAnotherUserCanWriteIsRefused(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Fatal("this test gives a directory to another uid, which needs root")
	}
	exit300 := guest(t, guests+"exit300.wat")
	home := privateDir(t)
	others := filepath.Join(home, ".cache", "sandboxd") // the default cache of run with this HOME
	state := filepath.Join(privateDir(t), "state")
	for _, d := range []string{others, filepath.Join(state, "cache")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, 12345, 12345); err != nil {
			t.Fatal(err)
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "XDG_CACHE_HOME=") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	env = append(env, "HOME="+home)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--cache-dir", others, exit300}, exitFailure, "compilation cache " + others + " belongs to uid 12345"},
		{[]string{"run", exit300}, 255, "compiling in memory"},
		{[]string{"serve", "--state", state, "--socket", filepath.Join(privateDir(t), "s.sock")}, exitFailure, "compilation cache " + filepath.Join(state, "cache") + " belongs to uid 12345"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		cmd := exec.CommandContext(ctx, bin, c.args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		_ = cmd.Run()
		cancel()
		if code := cmd.ProcessState.ExitCode(); code != c.code || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d saying %q", c.args, code, stderr.String(), c.code, c.want)
		}
	}
}
