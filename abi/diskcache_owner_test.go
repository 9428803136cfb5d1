package abi

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A cache directory another user can write, or whose subdirectories one
// can, was used: wazero loads machine code from it as it finds it (its
// NewCompilationCacheWithDir leaves guarding the directory to its caller),
// so that user could have the process run code of their own. The runtime
// refuses such a directory, naming it and why. (The test runs as root,
// which may give a directory to another uid.)
func TestACacheDirAnotherUserCanWriteIsRefused(t *testing.T) {
	const other = 12345
	codeDir := "wazero-" + wazeroVersion() + "-" + runtime.GOARCH + "-" + runtime.GOOS
	for name, c := range map[string]struct {
		sub, want string
		mode      os.FileMode
		uid       int
	}{
		"another user's":                 {uid: other, want: "belongs to uid 12345"},
		"writable by others":             {mode: 0o777, want: "writable by other users"},
		"code directory another user's":  {sub: codeDir, uid: other, want: "belongs to uid 12345"},
		"rewrites writable by its group": {sub: "rewritten", mode: 0o770, want: "writable by other users"},
		"no-debug-info another user's":   {sub: "no-debug-info", uid: other, want: "belongs to uid 12345"},
	} {
		t.Run(name, func(t *testing.T) {
			if os.Geteuid() != 0 {
				t.Fatal("this test gives a directory to another uid: run it as root")
			}
			dir := t.TempDir()
			p := filepath.Join(dir, c.sub)
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
			if c.uid != 0 {
				if err := os.Chown(p, c.uid, c.uid); err != nil {
					t.Fatal(err)
				}
			}
			if c.mode != 0 {
				if err := os.Chmod(p, c.mode); err != nil {
					t.Fatal(err)
				}
			}
			rt, err := NewRuntime(context.Background(), Config{CacheDir: dir})
			if err == nil {
				rt.Close(context.Background())
				t.Fatalf("a runtime over %s (%s) started", p, name)
			}
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to name %s and say %q", err, p, c.want)
			}
		})
	}
}
