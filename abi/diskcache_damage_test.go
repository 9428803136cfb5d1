package abi

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// damageChildEnv names the cache directory TestCacheDamageChild runs its
// module from, in a process of its own: a damaged file must not take a
// process down, and if it does, only the child goes.
const damageChildEnv = "SANDBOXD_TEST_DAMAGED_CACHE"

// TestCacheDamageChild compiles and runs exitWASM(9) from the cache
// directory damageChildEnv names, logging what the runtime warns of to
// stderr. Without the variable it is not a child, and does nothing.
func TestCacheDamageChild(t *testing.T) {
	dir := os.Getenv(damageChildEnv)
	if dir == "" {
		return
	}
	var logs logBuffer
	rt := cacheRuntime(t, dir, 0, &logs)
	runExit(t, rt, exitWASM(t, 9), 9).Release()
	os.Stderr.WriteString(logs.String())
}

// cacheDamages are ways a file of the compilation cache can be found
// damaged, each applied to the code file at path (whose header, before the
// offsets of its functions, is hdr bytes long).
var cacheDamages = map[string]func(t *testing.T, path string, hdr int){
	// A bit flipped in the offset of the first function: wazero checks its
	// machine code against a checksum, not the table that points into it,
	// and ran the code from the wrong place (the process died, SIGSEGV).
	"offset flipped": func(t *testing.T, path string, hdr int) { flipByte(t, path, hdr, 0x10) },
	"count flipped":  func(t *testing.T, path string, hdr int) { flipByte(t, path, hdr-1, 0x40) },
	"code flipped":   func(t *testing.T, path string, hdr int) { flipByte(t, path, -40, 0x01) },
	"truncated": func(t *testing.T, path string, hdr int) {
		if err := os.Truncate(path, int64(hdr+4)); err != nil {
			t.Fatal(err)
		}
	},
	"a directory": func(t *testing.T, path string, _ int) {
		replace(t, path, func() error { return os.Mkdir(path, 0o700) })
	},
	"a fifo": func(t *testing.T, path string, _ int) {
		replace(t, path, func() error { return unix.Mkfifo(path, 0o600) })
	},
	"a symlink": func(t *testing.T, path string, _ int) {
		replace(t, path, func() error { return os.Symlink("/dev/zero", path) })
	},
	// A process that stopped between wazero's write and the seal's, or an
	// earlier sandboxd, left code without a seal: it is not loaded (here
	// it would crash the process), and is compiled anew, as an info.
	"unsealed": func(t *testing.T, path string, hdr int) {
		flipByte(t, path, hdr, 0x10)
		if err := os.Remove(path + sealSuffix); err != nil {
			t.Fatal(err)
		}
	},
}

func flipByte(t *testing.T, path string, at int, bit byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if at < 0 {
		at += len(b)
	}
	b[at] ^= bit
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func replace(t *testing.T, path string, make func() error) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := make(); err != nil {
		t.Fatal(err)
	}
}

// A compiled code file damaged in the cache, however, is compiled anew
// with a warning: the process neither dies nor hangs (a FIFO in its place
// was opened and waited on for ever), and the module runs as compiled.
func TestADamagedCodeFileNeverCrashesOrHangsTheProcess(t *testing.T) {
	for name, damage := range cacheDamages {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			runExit(t, cacheRuntime(t, dir, 0, nil), exitWASM(t, 9), 9).Release()
			code := codeFileOf(t, dir)
			b, err := os.ReadFile(code)
			if err != nil {
				t.Fatal(err)
			}
			damage(t, code, 6+1+int(b[6])+4) // magic, version's length and text, function count
			out, err := runDamageChild(t, dir)
			if err != nil {
				t.Fatalf("the process loading the damaged cache: %v; output:\n%s", err, out)
			}
			if !strings.Contains(out, "[WARN]") && name != "unsealed" {
				t.Errorf("no warning of the damaged file; output:\n%s", out)
			}
			if fi, err := os.Lstat(code); err != nil || !fi.Mode().IsRegular() {
				t.Errorf("the module's code was not kept anew: %v %v", fi, err)
			} else if seal, err := sealCode(code); err != nil || !sealMatches(code, seal) {
				t.Errorf("the module's code kept anew has no seal that matches it (%q, %v)", seal, err)
			}
		})
	}
}

// codeFileOf is the one compiled code file under dir.
func codeFileOf(t *testing.T, dir string) string {
	t.Helper()
	var code []string
	for f := range cacheFiles(t, dir) {
		if filepath.Base(filepath.Dir(f)) != "rewritten" && !strings.HasSuffix(f, sealSuffix) {
			code = append(code, f)
		}
	}
	if len(code) != 1 {
		t.Fatalf("compiled code files %v, want one", code)
	}
	return code[0]
}

// runDamageChild runs TestCacheDamageChild on dir, within a bound no load
// reaches: past it, the child is taken to hang.
func runDamageChild(t *testing.T, dir string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCacheDamageChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), damageChildEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// A kept rewrite damaged so that it still compiles (here a bit of the
// exit code's constant flipped: 9 became 8) used to be compiled and run
// as it was: the guest exited 8. It is rewritten anew, with a warning.
func TestADamagedRewriteThatStillCompilesIsRewrittenAnew(t *testing.T) {
	dir := t.TempDir()
	runExit(t, cacheRuntime(t, dir, 0, nil), exitWASM(t, 9), 9).Release()
	rewrites, err := filepath.Glob(filepath.Join(dir, "rewritten", "*.wasm"))
	if err != nil || len(rewrites) != 1 {
		t.Fatalf("kept rewrites %v (%v), want one", rewrites, err)
	}
	b, err := os.ReadFile(rewrites[0])
	if err != nil {
		t.Fatal(err)
	}
	exit := []byte{0x41, 0x09, 0x10, 0x00} // i32.const 9; call $exit
	if bytes.Count(b, exit) != 1 {
		t.Fatalf("the rewrite holds %q %d times, want once", exit, bytes.Count(b, exit))
	}
	b[bytes.Index(b, exit)+1] = 0x08
	if err := os.WriteFile(rewrites[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	runExit(t, cacheRuntime(t, dir, 0, &logs), exitWASM(t, 9), 9).Release()
	if !strings.Contains(logs.String(), "[WARN]") {
		t.Errorf("no warning of the damaged rewrite; log:\n%s", logs.String())
	}
}

func sealMatches(code, seal string) bool {
	b, err := os.ReadFile(code + sealSuffix)
	return err == nil && string(b) == seal
}
